//! Opt-in automated response: `spec.response` of a `RuntimeMonitoringPolicy`, carried to the
//! agents in their configuration, and the host agent's `--response` file (the same document).
//!
//! Nothing is done unless an action is listed, and `mode` defaults to `dryRun`: actions are then
//! recorded on the finding as what would have been done, and nothing is denied, killed or
//! isolated. docs/RESPONSE.md explains each action and its safety rails.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits;

/// Namespaces the agent never acts in unless `excludeNamespaces` says otherwise.
pub const DEFAULT_EXCLUDED_NAMESPACES: &[&str] = &["kube-system"];

/// The label that quarantines a pod: the operator applies a deny-all NetworkPolicy to pods
/// that carry it with the value `true`, and removes the policy when the label goes.
pub const QUARANTINE_LABEL: &str = "vigil.dev/quarantined";

/// Automated response settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseSpec {
    /// `dryRun` (default): record what would be done, do nothing. `enforce`: act.
    #[serde(default)]
    pub mode: ResponseMode,
    /// Namespaces never acted in (their findings are still reported). Defaults to
    /// `[kube-system]`; an explicit empty list acts everywhere.
    #[serde(default = "default_excluded_namespaces")]
    #[schemars(length(max = limits::RESPONSE_NAMESPACES), inner(length(min = 1, max = limits::LABEL_VALUE), regex(pattern = limits::NAMESPACE_PATTERN)))]
    pub exclude_namespaces: Vec<String>,
    /// At most this many actions per window, per agent; findings past the limit are recorded
    /// with the action `rateLimited`.
    #[serde(default)]
    pub rate_limit: RateLimitSpec,
    /// Deny in the kernel connections to addresses on the chosen threat lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<DenySpec>,
    /// Kill the process behind findings of these types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<ActionTypes>,
    /// Label the pod behind findings of these types `vigil.dev/quarantined=true`; the operator
    /// then isolates it with a NetworkPolicy (cluster only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolate: Option<ActionTypes>,
}

fn default_excluded_namespaces() -> Vec<String> {
    DEFAULT_EXCLUDED_NAMESPACES
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

impl Default for ResponseSpec {
    fn default() -> Self {
        Self {
            mode: ResponseMode::default(),
            exclude_namespaces: default_excluded_namespaces(),
            rate_limit: RateLimitSpec::default(),
            deny: None,
            kill: None,
            isolate: None,
        }
    }
}

/// Whether actions are taken or only recorded.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ResponseMode {
    /// Record what would be done; do nothing.
    #[default]
    DryRun,
    /// Act.
    Enforce,
}

/// How many actions an agent may take in a window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Actions allowed per window.
    #[serde(default = "default_max_actions")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_actions: u32,
    /// The window, in seconds.
    #[serde(default = "default_per_seconds")]
    #[schemars(range(min = 1, max = 86400))]
    pub per_seconds: u32,
}

fn default_max_actions() -> u32 {
    10
}

fn default_per_seconds() -> u32 {
    60
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self {
            max_actions: default_max_actions(),
            per_seconds: default_per_seconds(),
        }
    }
}

/// The kernel deny action.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenySpec {
    /// Threat lists, by name, whose addresses are denied.
    #[serde(default)]
    #[schemars(length(max = limits::LISTS), inner(length(min = 1, max = limits::SHORT_NAME)))]
    pub threat_lists: Vec<String>,
    /// Every threat list that raises one of these finding types is denied too (e.g.
    /// `Backdoor:Runtime/C&CActivity.B`, `CryptoCurrency:Runtime/BitcoinTool.B`,
    /// `UnauthorizedAccess:Runtime/TorClient`).
    #[serde(default)]
    #[schemars(length(max = limits::ENABLED_TYPES), inner(length(max = limits::FINDING_TYPE), regex(pattern = limits::FINDING_TYPE_PATTERN)))]
    pub finding_types: Vec<String>,
    /// `host`: every process on the node (the cgroup v2 root). `pod`: only pods with a finding
    /// from these lists, from that finding on (their cgroup).
    #[serde(default)]
    pub scope: DenyScope,
}

/// Where the deny hook applies.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum DenyScope {
    /// Every process of the host.
    #[default]
    Host,
    /// One pod at a time, once it had a finding.
    Pod,
}

/// The finding types an action applies to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionTypes {
    /// GuardDuty finding types, e.g. `Impact:Runtime/CryptoMinerExecuted`.
    #[schemars(length(min = 1, max = limits::ENABLED_TYPES), inner(length(max = limits::FINDING_TYPE), regex(pattern = limits::FINDING_TYPE_PATTERN)))]
    pub finding_types: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_dry_run_and_kube_system_excluded() {
        let spec: ResponseSpec =
            serde_yaml::from_str("kill:\n  findingTypes: [Impact:Runtime/CryptoMinerExecuted]\n")
                .unwrap();
        assert_eq!(spec.mode, ResponseMode::DryRun);
        assert_eq!(spec.exclude_namespaces, vec!["kube-system".to_owned()]);
        assert_eq!(spec.rate_limit, RateLimitSpec::default());
        assert!(spec.deny.is_none());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let err = serde_yaml::from_str::<ResponseSpec>("mode: enforce\nkil: {}\n").unwrap_err();
        assert!(err.to_string().contains("kil"), "{err}");
        let err = serde_yaml::from_str::<ResponseSpec>("mode: enforced\n").unwrap_err();
        assert!(err.to_string().contains("enforced"), "{err}");
    }
}
