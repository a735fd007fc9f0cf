//! The response configuration, validated once: the host's `--response` file or the policy's
//! `spec.response` (the same document, [`ResponseSpec`]), turned into typed settings.

use std::{collections::BTreeSet, path::Path, time::Duration};

use vigil_crds::response::{DenyScope, ResponseMode, ResponseSpec};
use vigil_detection::FindingType;

/// Whether actions are taken or only recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Record what would be done; do nothing.
    DryRun,
    /// Act.
    Enforce,
}

impl From<ResponseMode> for Mode {
    fn from(m: ResponseMode) -> Self {
        match m {
            ResponseMode::DryRun => Mode::DryRun,
            ResponseMode::Enforce => Mode::Enforce,
        }
    }
}

/// Which threat lists the deny action takes its addresses from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreatListChoice {
    /// Lists chosen by name.
    pub names: BTreeSet<String>,
    /// Lists chosen by a finding type they raise.
    pub finding_types: BTreeSet<FindingType>,
}

impl ThreatListChoice {
    /// Whether the list `name`, which raises `feeds`, is chosen.
    pub fn selects(&self, name: &str, feeds: &[FindingType]) -> bool {
        self.names.contains(name) || feeds.iter().any(|t| self.finding_types.contains(t))
    }
}

/// The kernel deny action's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenyConfig {
    /// Where the addresses come from.
    pub lists: ThreatListChoice,
    /// The whole host, or pod by pod.
    pub scope: DenyScope,
}

/// Validated response settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseConfig {
    /// Act or only record.
    pub mode: Mode,
    /// Namespaces never acted in.
    pub exclude_namespaces: BTreeSet<String>,
    /// Actions allowed per window.
    pub max_actions: u32,
    /// The rate-limit window.
    pub window: Duration,
    /// Kernel deny, if configured.
    pub deny: Option<DenyConfig>,
    /// Finding types whose process is killed.
    pub kill: BTreeSet<FindingType>,
    /// Finding types whose pod is quarantined.
    pub isolate: BTreeSet<FindingType>,
}

/// A response configuration that cannot be used. Each message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ResponseConfigError {
    /// The file could not be read.
    #[error("cannot read the response configuration {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not fit the schema (the message names the field).
    #[error("the response configuration {path} is invalid: {source}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// serde's error, with the field and line.
        #[source]
        source: serde_yaml::Error,
    },
    /// A finding type is not one Vigil knows.
    #[error("{field}: unknown finding type {value:?} (docs/FINDINGS.md lists them)")]
    UnknownFindingType {
        /// The field, e.g. `kill.findingTypes[0]`.
        field: String,
        /// The value.
        value: String,
    },
    /// A value is out of range or empty.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

fn types(field: &str, values: &[String]) -> Result<BTreeSet<FindingType>, ResponseConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.parse::<FindingType>()
                .map_err(|_| ResponseConfigError::UnknownFindingType {
                    field: format!("{field}[{i}]"),
                    value: v.clone(),
                })
        })
        .collect()
}

fn invalid(field: &str, problem: &str) -> ResponseConfigError {
    ResponseConfigError::Invalid {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

impl ResponseConfig {
    /// Reads and validates a host's `--response` file.
    pub fn from_file(path: &Path) -> Result<Self, ResponseConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResponseConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let spec: ResponseSpec =
            serde_yaml::from_str(&text).map_err(|source| ResponseConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
        Self::from_spec(&spec)
    }

    /// Validates the document (what the CRD schema checks in a cluster, checked again here
    /// for the host file, and the finding types against the catalogue).
    pub fn from_spec(spec: &ResponseSpec) -> Result<Self, ResponseConfigError> {
        let rate = spec.rate_limit;
        if !(1..=10_000).contains(&rate.max_actions) {
            return Err(invalid("rateLimit.maxActions", "must be 1 to 10000"));
        }
        if !(1..=86_400).contains(&rate.per_seconds) {
            return Err(invalid("rateLimit.perSeconds", "must be 1 to 86400"));
        }
        for (i, ns) in spec.exclude_namespaces.iter().enumerate() {
            if ns.is_empty() || ns.len() > 63 {
                return Err(invalid(
                    &format!("excludeNamespaces[{i}]"),
                    "must be a namespace name of 1 to 63 characters",
                ));
            }
        }
        let deny = match &spec.deny {
            None => None,
            Some(d) => {
                let lists = ThreatListChoice {
                    names: d.threat_lists.iter().cloned().collect(),
                    finding_types: types("deny.findingTypes", &d.finding_types)?,
                };
                if lists.names.is_empty() && lists.finding_types.is_empty() {
                    return Err(invalid(
                        "deny",
                        "names no threat list: set deny.threatLists or deny.findingTypes",
                    ));
                }
                if let Some(i) = d.threat_lists.iter().position(String::is_empty) {
                    return Err(invalid(&format!("deny.threatLists[{i}]"), "is empty"));
                }
                Some(DenyConfig {
                    lists,
                    scope: d.scope,
                })
            }
        };
        let action = |name: &str, a: &Option<vigil_crds::response::ActionTypes>| match a {
            None => Ok(BTreeSet::new()),
            Some(a) if a.finding_types.is_empty() => Err(invalid(
                &format!("{name}.findingTypes"),
                "is empty: list the finding types to act on, or leave the action out",
            )),
            Some(a) => types(&format!("{name}.findingTypes"), &a.finding_types),
        };
        Ok(Self {
            mode: spec.mode.into(),
            exclude_namespaces: spec.exclude_namespaces.iter().cloned().collect(),
            max_actions: rate.max_actions,
            window: Duration::from_secs(u64::from(rate.per_seconds)),
            deny,
            kill: action("kill", &spec.kill)?,
            isolate: action("isolate", &spec.isolate)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ResponseConfig, ResponseConfigError> {
        let spec: ResponseSpec =
            serde_yaml::from_str(yaml).map_err(|source| ResponseConfigError::Parse {
                path: "t.yaml".into(),
                source,
            })?;
        ResponseConfig::from_spec(&spec)
    }

    #[test]
    fn a_full_configuration_is_typed() {
        let c = parse(
            "mode: enforce\nrateLimit: {maxActions: 3, perSeconds: 10}\ndeny:\n  threatLists: [my-c2]\n  findingTypes: [UnauthorizedAccess:Runtime/TorClient]\nkill:\n  findingTypes: [Impact:Runtime/CryptoMinerExecuted, Execution:Runtime/ReverseShell]\n",
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.max_actions, 3);
        assert_eq!(c.window, Duration::from_secs(10));
        assert!(c.exclude_namespaces.contains("kube-system"));
        let deny = c.deny.unwrap();
        assert!(deny.lists.selects("my-c2", &[]));
        assert!(
            deny.lists
                .selects("tor", &[FindingType::UnauthorizedAccessTorClient])
        );
        assert!(
            !deny
                .lists
                .selects("other", &[FindingType::BackdoorCcActivityB])
        );
        assert!(c.kill.contains(&FindingType::ExecutionReverseShell));
        assert!(c.isolate.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("kill:\n  findingTypes: [Impact:Runtime/NoSuchThing]\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("kill.findingTypes[0]: unknown finding type"),
            "{e}"
        );
        let e = parse("deny: {}\n").unwrap_err();
        assert!(
            e.to_string().starts_with("deny: names no threat list"),
            "{e}"
        );
        let e = parse("rateLimit: {maxActions: 0}\n").unwrap_err();
        assert!(e.to_string().starts_with("rateLimit.maxActions"), "{e}");
        let e = parse("kill:\n  findingTypes: []\n").unwrap_err();
        assert!(
            e.to_string().starts_with("kill.findingTypes: is empty"),
            "{e}"
        );
        let e = parse("mode: yes\n").unwrap_err();
        assert!(e.to_string().contains("mode"), "{e}");
        let e = parse("excludeNamespaces: ['']\n").unwrap_err();
        assert!(e.to_string().starts_with("excludeNamespaces[0]"), "{e}");
    }
}
