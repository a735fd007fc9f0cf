//! The agent configuration the operator writes into the agent ConfigMap (`agent.yaml`), so the
//! agent reads exactly what the operator renders.

use serde::{Deserialize, Serialize};

use crate::{finding::SeverityLabel, policy::RuntimeMonitoringPolicySpec};

/// Key of the configuration in the agent ConfigMap.
pub const CONFIG_KEY: &str = "agent.yaml";
/// Where the agent container finds the ConfigMap.
pub const CONFIG_DIR: &str = "/etc/vigil";
/// Where referenced list ConfigMaps are mounted, one directory per ConfigMap.
pub const LISTS_DIR: &str = "/etc/vigil/lists";

/// Configuration of one agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentConfig {
    /// Policy the agent runs under; goes into its heartbeat Lease label.
    pub policy: String,
    /// Enabled finding types; empty means all.
    pub enabled_finding_types: Vec<String>,
    /// Findings at or above this severity are also recorded as Kubernetes Events.
    pub event_min_severity: SeverityLabel,
    /// Seconds between publishing updated findings.
    pub publishing_frequency_seconds: u64,
    /// Heartbeat Lease settings.
    pub heartbeat: HeartbeatConfig,
    /// Threat-intelligence list files.
    pub threat_intel_lists: Vec<ListFile>,
    /// Trusted IP list files.
    pub trusted_ip_lists: Vec<ListFile>,
    /// Sinks new findings are delivered to, with secrets as the files the DaemonSet mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<crate::integrations::IntegrationsDocument>,
    /// Automated response, as the policy sets it; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<crate::response::ResponseSpec>,
}

/// How the agent renews its heartbeat Lease (see [`crate::lease`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// `spec.leaseDurationSeconds` to write.
    pub lease_duration_seconds: i32,
    /// Seconds between renewals: a third of the duration, so two renewals may fail.
    pub renew_interval_seconds: u32,
}

/// A list file inside the agent container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListFile {
    /// List name reported in evidence.
    pub list_name: String,
    /// Absolute path of the file.
    pub path: String,
}

impl AgentConfig {
    /// The configuration for `policy` with agents in `namespace`.
    pub fn for_policy(policy: &str, spec: &RuntimeMonitoringPolicySpec, namespace: &str) -> Self {
        let timeout = spec.coverage.heartbeat_timeout_seconds;
        let lists = |refs: &[crate::policy::ListReference]| {
            refs.iter()
                .map(|r| ListFile {
                    list_name: r.list_name.clone(),
                    path: format!("{LISTS_DIR}/{}/{}", r.config_map_name, r.key),
                })
                .collect()
        };
        Self {
            policy: policy.to_owned(),
            enabled_finding_types: spec.findings.enabled_types.clone(),
            event_min_severity: spec.findings.event_min_severity,
            publishing_frequency_seconds: spec.findings.publishing_frequency.seconds(),
            heartbeat: HeartbeatConfig {
                namespace: namespace.to_owned(),
                lease_duration_seconds: i32::try_from(timeout).unwrap_or(i32::MAX),
                renew_interval_seconds: (timeout / 3).max(1),
            },
            threat_intel_lists: lists(&spec.threat_intel_lists),
            trusted_ip_lists: lists(&spec.trusted_ip_lists),
            integrations: spec
                .integrations
                .as_ref()
                .map(crate::integrations::IntegrationsSpec::to_document),
            response: spec.response.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_follows_policy() {
        let spec: RuntimeMonitoringPolicySpec = serde_json::from_value(serde_json::json!({
            "coverage": {"heartbeatTimeoutSeconds": 90},
            "threatIntelLists": [{"listName": "feodo", "configMapName": "intel", "key": "ips.txt"}],
            "findings": {"publishingFrequency": "ONE_HOUR"}
        }))
        .unwrap();
        let cfg = AgentConfig::for_policy("p", &spec, "vigil-system");
        assert_eq!(cfg.heartbeat.renew_interval_seconds, 30);
        assert_eq!(cfg.heartbeat.lease_duration_seconds, 90);
        assert_eq!(cfg.publishing_frequency_seconds, 3600);
        assert_eq!(
            cfg.threat_intel_lists[0].path,
            "/etc/vigil/lists/intel/ips.txt"
        );
    }
}
