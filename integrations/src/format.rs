//! The documents a finding is rendered as for other systems: Vigil's own finding document, and
//! (in progress) GuardDuty's finding JSON, ASFF, OCSF Detection Finding and a CloudEvents 1.0
//! envelope. Pure functions of the finding and where it comes from.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vigil_crds::finding::Finding;

/// A document format a sink can send.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Vigil's own finding document (the RuntimeFinding spec).
    Vigil,
    /// GuardDuty's GetFindings JSON for runtime findings.
    GuardDuty,
    /// AWS Security Finding Format (Security Hub).
    Asff,
    /// OCSF Detection Finding (class 2004).
    Ocsf,
    /// CloudEvents 1.0, structured mode, with Vigil's document as `data`.
    CloudEvents,
}

/// Where findings come from: what the formats that name an account, region or product need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Account the finding is attributed to, when the user configured one.
    pub account_id: Option<String>,
    /// Region, when the user configured one.
    pub region: Option<String>,
    /// Cluster name in cluster mode.
    pub cluster: Option<String>,
}

/// Why a finding could not be rendered.
#[derive(Debug, Error)]
pub enum FormatError {
    /// The format is not rendered yet.
    #[error("the {0:?} format is not available yet")]
    Unavailable(Format),
    /// The finding did not serialise.
    #[error("serialising the finding")]
    Json(#[from] serde_json::Error),
}

/// Renders `finding` as `format`.
pub fn render(
    format: Format,
    finding: &Finding,
    _origin: &Origin,
) -> Result<serde_json::Value, FormatError> {
    match format {
        Format::Vigil => Ok(serde_json::to_value(finding)?),
        other => Err(FormatError::Unavailable(other)),
    }
}
