//! `NodeCoverage`: the coverage of one node, one cluster-scoped object per node named after it.
//!
//! The operator writes these; a policy's status only keeps the totals and the first unhealthy
//! nodes, so it stays small in a cluster of any size. An object holds what a person looks at
//! (status, issue, since when, agent and kernel, hooks) and nothing that changes on every
//! heartbeat: the Lease (`kubectl get lease -n <ns> vigil-agent-<node>`) has the renewal time and
//! the event rates. It is owned by its policy (garbage-collected with it) and deleted when the
//! node leaves the policy.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{limits, policy::CoverageStatus};

/// Label naming the policy that covers the node (also in `spec.policy`), for
/// `kubectl get ncov -l vigil.dev/policy=<policy>`.
pub const POLICY_LABEL: &str = crate::lease::POLICY_LABEL;
/// Label carrying `Healthy` or `Unhealthy`, for `kubectl get ncov -l vigil.dev/coverage=Unhealthy`.
pub const COVERAGE_LABEL: &str = "vigil.dev/coverage";

/// The coverage of one node by one policy.
#[expect(
    clippy::duplicated_attributes,
    reason = "every kube printcolumn(...) repeats its type_ key"
)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vigil.dev",
    version = "v1alpha1",
    kind = "NodeCoverage",
    shortname = "ncov",
    category = "vigil",
    derive = "PartialEq",
    doc = "Coverage of one node (the object is named after the node), written by the operator for the policy that covers the node.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(name = "Status", type_ = "string", json_path = ".spec.status"),
    printcolumn(name = "Issue", type_ = "string", json_path = ".spec.issueType"),
    printcolumn(name = "Agent", type_ = "string", json_path = ".spec.agentVersion"),
    printcolumn(name = "Kernel", type_ = "string", json_path = ".spec.kernelVersion"),
    printcolumn(name = "Hooks", type_ = "integer", json_path = ".spec.activeHookCount"),
    printcolumn(name = "Since", type_ = "date", json_path = ".spec.since"),
    printcolumn(
        name = "Detail",
        type_ = "string",
        json_path = ".spec.issue",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NodeCoverageSpec {
    /// The policy that covers the node.
    #[schemars(length(max = limits::LABEL_VALUE))]
    pub policy: String,
    /// Healthy or Unhealthy.
    pub status: CoverageStatus,
    /// Whether an agent reports from the node (its heartbeat Lease is fresh); a covered node can
    /// still be unhealthy, e.g. with a probe that failed to load.
    pub covered: bool,
    /// The issue type when unhealthy, e.g. `AgentNotReporting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::ISSUE_TYPE))]
    pub issue_type: Option<String>,
    /// `IssueType: detail` when unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::ISSUE))]
    pub issue: Option<String>,
    /// When the status or the issue type last changed.
    pub since: Time,
    /// Agent version, from its Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::VERSION))]
    pub agent_version: Option<String>,
    /// Kernel release, from the agent or else from the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::VERSION))]
    pub kernel_version: Option<String>,
    /// Number of attached eBPF hooks, when the agent reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_hook_count: Option<u32>,
    /// The attached eBPF hooks, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::ACTIVE_HOOKS), inner(length(max = limits::HOOK_NAME)))]
    pub active_hooks: Vec<String>,
}

impl NodeCoverageSpec {
    /// The labels the object carries: [`POLICY_LABEL`] and [`COVERAGE_LABEL`].
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (POLICY_LABEL.to_owned(), self.policy.clone()),
            (COVERAGE_LABEL.to_owned(), self.status.as_str().to_owned()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    #[test]
    fn spec_round_trips_and_labels_say_policy_and_status() {
        let spec = NodeCoverageSpec {
            policy: "all-linux".into(),
            status: CoverageStatus::Unhealthy,
            covered: false,
            issue_type: Some("AgentNotReporting".into()),
            issue: Some("AgentNotReporting: agent has never reported".into()),
            since: Time(Timestamp::from_second(1_800_000_000).unwrap()),
            agent_version: None,
            kernel_version: Some("6.8.0".into()),
            active_hook_count: None,
            active_hooks: vec![],
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["status"], "Unhealthy");
        assert!(json.get("activeHooks").is_none(), "{json}");
        let back: NodeCoverageSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        assert_eq!(
            spec.labels(),
            BTreeMap::from([
                ("vigil.dev/policy".to_owned(), "all-linux".to_owned()),
                ("vigil.dev/coverage".to_owned(), "Unhealthy".to_owned()),
            ])
        );
    }
}
