//! The documents a finding is rendered as for other systems: Vigil's own finding document,
//! GuardDuty's finding JSON, the AWS Security Finding Format (ASFF), an OCSF Detection Finding
//! and a CloudEvents 1.0 envelope. Pure functions of the finding and where it comes from.
//!
//! Values Vigil does not know (an unknown user id, an unknown time, an account that was not
//! configured) are left out of every document, never written as placeholders; a format that
//! cannot be rendered without one (ASFF needs an account and a region) is an error that names
//! the missing field.

mod asff;
mod attack;
mod cloudevents;
mod guardduty;
mod json;
mod ocsf;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use vigil_crds::finding::Finding;

pub use self::ocsf::{OCSF_PROFILES, OCSF_VERSION};

/// A document format a sink can send.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Vigil's own finding document (the RuntimeFinding spec).
    Vigil,
    /// GuardDuty's GetFindings JSON for runtime findings.
    GuardDuty,
    /// AWS Security Finding Format (Security Hub `BatchImportFindings`).
    Asff,
    /// OCSF Detection Finding (class 2004), schema version [`OCSF_VERSION`].
    Ocsf,
    /// CloudEvents 1.0, structured mode, with Vigil's document as `data`.
    CloudEvents,
}

impl Format {
    /// Every format.
    pub const ALL: [Self; 5] = [
        Self::Vigil,
        Self::GuardDuty,
        Self::Asff,
        Self::Ocsf,
        Self::CloudEvents,
    ];

    /// The name used in configuration (`format: guardduty`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Vigil => "vigil",
            Self::GuardDuty => "guardduty",
            Self::Asff => "asff",
            Self::Ocsf => "ocsf",
            Self::CloudEvents => "cloudevents",
        }
    }

    /// Checks, once at start, that `origin` has what this format needs; the error names the
    /// missing field so a sink's configuration can be refused before any finding is lost.
    pub fn check_origin(self, origin: &Origin) -> Result<(), FormatError> {
        if self == Self::Asff {
            asff::check_origin(origin)?;
        }
        Ok(())
    }
}

/// The `Content-Type` of a rendered document of `format` (serialised with `serde_json`).
pub const fn content_type(format: Format) -> &'static str {
    match format {
        Format::CloudEvents => cloudevents::CONTENT_TYPE,
        Format::Vigil | Format::GuardDuty | Format::Asff | Format::Ocsf => "application/json",
    }
}

/// Where findings come from: what the formats that name an account, region or product need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Account the finding is attributed to, when the user configured one (GuardDuty's
    /// `AccountId`, ASFF's `AwsAccountId`, OCSF's `metadata.tenant_uid`).
    pub account_id: Option<String>,
    /// Region, when the user configured one (e.g. `eu-west-1`).
    pub region: Option<String>,
    /// Cluster name in cluster mode.
    pub cluster: Option<String>,
}

impl Origin {
    /// The AWS partition of the region: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`,
    /// `aws` otherwise; `None` without a region.
    pub fn partition(&self) -> Option<&'static str> {
        let region = self.region.as_deref()?;
        Some(if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else if region.starts_with("us-iso-") {
            "aws-iso"
        } else if region.starts_with("us-isob-") {
            "aws-iso-b"
        } else {
            "aws"
        })
    }
}

/// Why a finding could not be rendered.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The format needs a value of the origin that was not configured.
    #[error("the {format} format needs `{field}` to be configured")]
    MissingOrigin {
        /// The format.
        format: &'static str,
        /// The missing field, as configured.
        field: &'static str,
    },
    /// The finding did not serialise.
    #[error("serialising the finding")]
    Json(#[from] serde_json::Error),
}

/// Renders `finding` as `format`.
pub fn render(
    format: Format,
    finding: &Finding,
    origin: &Origin,
) -> Result<serde_json::Value, FormatError> {
    match format {
        Format::Vigil => Ok(serde_json::to_value(finding)?),
        Format::GuardDuty => Ok(guardduty::render(finding, origin)),
        Format::Asff => asff::render(finding, origin),
        Format::Ocsf => Ok(ocsf::render(finding, origin)),
        Format::CloudEvents => cloudevents::render(finding, origin),
    }
}

/// An id for this update of the finding: the same for every delivery of one update (so a
/// receiver can drop redeliveries) and different for each update (a new occurrence, a change of
/// archive state). CloudEvents' `id` and OCSF's `metadata.uid`; a sink can use it as a
/// deduplication key.
pub fn update_id(finding: &Finding) -> String {
    format!(
        "{}:{}:{}{}",
        finding.id,
        finding.count,
        finding.updated_at.0.as_millisecond(),
        if finding.archived { ":archived" } else { "" }
    )
}

/// The time, unless it is the value that stands for an unknown time (the epoch's second).
pub(crate) fn known_time(time: &Time) -> Option<Timestamp> {
    (!vigil_crds::finding::is_unknown_time(time)).then_some(time.0)
}

/// RFC 3339 in UTC with milliseconds, as AWS APIs write timestamps.
fn iso_millis(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A Vigil finding type's threat purpose (`Execution` of `Execution:Runtime/ReverseShell`).
fn threat_purpose(finding_type: &str) -> &str {
    finding_type
        .split_once(':')
        .map_or(finding_type, |(purpose, _)| purpose)
}

/// The last path component.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `context.additional[key]`, when present and not empty.
fn additional<'f>(finding: &'f Finding, key: &str) -> Option<&'f str> {
    finding
        .context
        .additional
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testdata;

    #[test]
    fn every_format_renders_the_sample_and_names_its_content_type() {
        let origin = testdata::aws_origin();
        for format in Format::ALL {
            for finding in testdata::all() {
                let doc = render(format, &finding, &origin)
                    .unwrap_or_else(|e| panic!("{format:?} of {}: {e}", finding.id));
                assert!(doc.is_object(), "{format:?}");
            }
            let ct = content_type(format);
            assert!(ct.starts_with("application/"), "{ct}");
        }
        assert_eq!(
            content_type(Format::CloudEvents),
            "application/cloudevents+json; charset=utf-8"
        );
        assert_eq!(content_type(Format::Ocsf), "application/json");
    }

    #[test]
    fn format_names_round_trip_through_serde() {
        for format in Format::ALL {
            let json = serde_json::to_value(format).unwrap();
            assert_eq!(json, format.as_str());
            assert_eq!(serde_json::from_value::<Format>(json).unwrap(), format);
        }
        assert!(serde_json::from_value::<Format>("splunk".into()).is_err());
    }

    #[test]
    fn partitions_follow_the_region() {
        let table = [
            (None, None),
            (Some("eu-west-1"), Some("aws")),
            (Some("cn-north-1"), Some("aws-cn")),
            (Some("us-gov-west-1"), Some("aws-us-gov")),
        ];
        for (region, want) in table {
            let origin = Origin {
                region: region.map(str::to_owned),
                ..Origin::default()
            };
            assert_eq!(origin.partition(), want, "{region:?}");
        }
    }

    #[test]
    fn update_ids_are_stable_per_update_and_change_with_it() {
        let f = testdata::sample();
        assert_eq!(update_id(&f), update_id(&f.clone()));
        assert_eq!(update_id(&f), "5f0c1e2a-new-binary-web-1:3:1795773900000");
        let mut repeated = f.clone();
        repeated.count += 1;
        let mut archived = f.clone();
        archived.archived = true;
        let mut later = f.clone();
        later.updated_at = Time(f.updated_at.0 + k8s_openapi::jiff::SignedDuration::from_millis(1));
        let ids = [&f, &repeated, &archived, &later].map(update_id);
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn times_are_written_with_milliseconds_and_the_epoch_is_unknown() {
        let f = testdata::sample();
        assert_eq!(iso_millis(f.created_at.0), "2026-11-27T10:00:00.000Z");
        assert_eq!(known_time(&vigil_crds::finding::unknown_time()), None);
        assert_eq!(known_time(&f.created_at), Some(f.created_at.0));
    }

    #[test]
    fn asff_needs_an_account_and_a_region_and_says_which() {
        let f = testdata::sample();
        let err = render(Format::Asff, &f, &Origin::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the asff format needs `accountId` to be configured"
        );
        let origin = Origin {
            account_id: Some("123456789012".into()),
            ..Origin::default()
        };
        let err = Format::Asff.check_origin(&origin).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the asff format needs `region` to be configured"
        );
        for format in Format::ALL {
            if format != Format::Asff {
                assert!(format.check_origin(&Origin::default()).is_ok());
                assert!(render(format, &f, &Origin::default()).is_ok());
            }
        }
    }
}
