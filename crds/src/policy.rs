//! `RuntimeMonitoringPolicy`: which nodes are monitored, how the agent runs there, and what the
//! operator observed about coverage.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::Toleration,
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{Condition, Time},
    },
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{finding::SeverityLabel, limits, schema::bound_strings};

/// Agent image used when a policy does not name one.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/vigil-dev/vigil-agent:0.1.0";

/// Desired state of runtime monitoring for a set of nodes.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vigil.dev",
    version = "v1alpha1",
    kind = "RuntimeMonitoringPolicy",
    shortname = "rmp",
    category = "vigil",
    status = "RuntimeMonitoringPolicyStatus",
    derive = "PartialEq",
    validation = Rule::new("size(self.metadata.name) <= 50").message("policy names are at most 50 characters: they become label values and object names"),
    doc = "Rolls the Vigil agent out to the selected nodes (or tracks a user-run agent) and reports per-node coverage.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.agentManagement"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Compatible",
        type_ = "integer",
        json_path = ".status.coverage.compatibleNodes"
    ),
    printcolumn(
        name = "Covered",
        type_ = "integer",
        json_path = ".status.coverage.coveredNodes"
    ),
    printcolumn(
        name = "Healthy",
        type_ = "integer",
        json_path = ".status.coverage.healthyNodes"
    ),
    printcolumn(
        name = "Unhealthy",
        type_ = "integer",
        json_path = ".status.coverage.unhealthyNodes"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeMonitoringPolicySpec {
    /// `Automated`: the operator runs the agent DaemonSet. `Manual`: the user runs the agent and
    /// the operator only tracks coverage.
    #[serde(default)]
    pub agent_management: AgentManagement,
    /// Nodes whose labels contain all of these pairs are selected. Empty selects every Linux node.
    #[serde(default)]
    #[schemars(extend("maxProperties" = limits::NODE_SELECTOR_PAIRS), inner(length(max = limits::LABEL_VALUE)))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) > 0 && size(k) <= 317)").message("node selector keys must be non-empty label keys of at most 317 characters"))]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations given to the agent pods, so tainted nodes can be covered too.
    #[serde(default)]
    #[schemars(schema_with = "bounded_tolerations")]
    #[x_kube(validation = Rule::new("self.all(t, !has(t.tolerationSeconds) || t.effect == 'NoExecute')").message("tolerationSeconds is only allowed with effect NoExecute"))]
    pub tolerations: Vec<Toleration>,
    /// How the agent container runs.
    #[serde(default)]
    pub agent: AgentSpec,
    /// Which findings are produced and surfaced.
    #[serde(default)]
    pub findings: FindingsSpec,
    /// When a node counts as covered and healthy.
    #[serde(default)]
    pub coverage: CoverageSpec,
    /// ConfigMaps holding threat-intelligence lists (one indicator per line).
    #[serde(default)]
    #[schemars(length(max = limits::LISTS))]
    pub threat_intel_lists: Vec<ListReference>,
    /// ConfigMaps holding trusted IP lists (one address or CIDR per line).
    #[serde(default)]
    #[schemars(length(max = limits::LISTS))]
    pub trusted_ip_lists: Vec<ListReference>,
    /// Where every agent also delivers its new findings (webhook, Slack, Splunk HEC, OTLP, ...),
    /// at least once through an on-disk queue per sink; secrets by reference to Secrets in the
    /// agent's namespace (docs/INTEGRATIONS.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<crate::integrations::IntegrationsSpec>,
    /// Opt-in automated response (deny, kill, isolate); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<crate::response::ResponseSpec>,
}

/// Who runs the agent.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AgentManagement {
    /// The operator renders and owns the agent DaemonSet.
    #[default]
    Automated,
    /// The user runs the agent; the operator only tracks coverage.
    Manual,
}

/// Image pull policy of the agent container.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull only when the image is missing on the node.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The string Kubernetes expects in `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// The agent container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Agent image reference.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = limits::IMAGE_REFERENCE), regex(pattern = limits::IMAGE_REFERENCE_PATTERN))]
    pub image: String,
    /// Agent image pull policy.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    /// CPU and memory budget of the agent container.
    #[serde(default)]
    pub resources: AgentResources,
    /// Give the agent CAP_SYS_RESOURCE so it can lift RLIMIT_MEMLOCK, which kernels before 5.11
    /// charge eBPF maps to. Off by default: newer kernels do not need it, and some nodes' runtimes
    /// refuse to start a container that asks for it.
    #[serde(default)]
    pub raise_memlock_limit: bool,
    /// Priority class of the agent pods; a high one keeps the agent from being evicted first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::DNS_SUBDOMAIN), regex(pattern = limits::DNS_SUBDOMAIN_PATTERN))]
    pub priority_class_name: Option<String>,
}

/// The tolerations list with a bound on its length and on every string in a toleration, which
/// the `tolerationSeconds` rule reaches.
fn bounded_tolerations(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Toleration>>();
    schema.insert("maxItems".into(), limits::TOLERATIONS.into());
    if let Some(item) = schema.get_mut("items") {
        bound_strings(item, limits::LABEL_KEY);
    }
    schema
}

fn default_image() -> String {
    DEFAULT_AGENT_IMAGE.to_owned()
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            image: default_image(),
            image_pull_policy: PullPolicy::default(),
            resources: AgentResources::default(),
            raise_memlock_limit: false,
            priority_class_name: None,
        }
    }
}

/// Requests and limits of the agent container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentResources {
    /// Guaranteed share; defaults to 200m CPU and 256Mi, as GuardDuty's agent.
    #[serde(default = "default_requests")]
    pub requests: CpuMemory,
    /// Hard cap; defaults to 1 CPU and 1Gi, as GuardDuty's agent.
    #[serde(default = "default_limits")]
    pub limits: CpuMemory,
}

impl Default for AgentResources {
    fn default() -> Self {
        Self {
            requests: default_requests(),
            limits: default_limits(),
        }
    }
}

fn default_requests() -> CpuMemory {
    CpuMemory {
        cpu: Quantity("200m".into()),
        memory: Quantity("256Mi".into()),
    }
}

fn default_limits() -> CpuMemory {
    CpuMemory {
        cpu: Quantity("1".into()),
        memory: Quantity("1Gi".into()),
    }
}

/// A CPU and memory amount.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CpuMemory {
    /// CPU, e.g. `200m`.
    pub cpu: Quantity,
    /// Memory, e.g. `256Mi`.
    pub memory: Quantity,
}

/// Which findings are produced and which become Kubernetes Events.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingsSpec {
    /// GuardDuty finding type strings to enable, e.g. `Execution:Runtime/NewBinaryExecuted`.
    /// Empty enables every type the agent knows.
    #[serde(default)]
    #[schemars(length(max = limits::ENABLED_TYPES), inner(length(max = limits::FINDING_TYPE), regex(pattern = limits::FINDING_TYPE_PATTERN)))]
    pub enabled_types: Vec<String>,
    /// Findings at or above this severity are also recorded as Kubernetes Events.
    #[serde(default = "default_event_severity")]
    pub event_min_severity: SeverityLabel,
    /// How often updated findings are published.
    #[serde(default)]
    pub publishing_frequency: PublishingFrequency,
}

fn default_event_severity() -> SeverityLabel {
    SeverityLabel::High
}

impl Default for FindingsSpec {
    fn default() -> Self {
        Self {
            enabled_types: Vec::new(),
            event_min_severity: default_event_severity(),
            publishing_frequency: PublishingFrequency::default(),
        }
    }
}

/// Finding publishing frequency, the three choices GuardDuty offers.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PublishingFrequency {
    /// Every 15 minutes.
    #[default]
    FifteenMinutes,
    /// Every hour.
    OneHour,
    /// Every 6 hours.
    SixHours,
}

impl PublishingFrequency {
    /// The period in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Self::FifteenMinutes => 15 * 60,
            Self::OneHour => 60 * 60,
            Self::SixHours => 6 * 60 * 60,
        }
    }
}

/// Thresholds that decide whether a covered node is healthy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CoverageSpec {
    /// An agent whose Lease was not renewed for this long is "not reporting".
    #[serde(default = "default_heartbeat_timeout")]
    #[schemars(range(min = 10, max = 3600))]
    pub heartbeat_timeout_seconds: u32,
    /// A node dropping more than this percentage of its events is unhealthy.
    #[serde(default = "default_max_dropped_percent")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub max_dropped_events_percent: f64,
    /// An agent container restarted at least this often and currently waiting is crash-looping.
    #[serde(default = "default_crash_loop_restarts")]
    pub crash_loop_restarts: u32,
}

fn default_heartbeat_timeout() -> u32 {
    60
}

fn default_max_dropped_percent() -> f64 {
    1.0
}

fn default_crash_loop_restarts() -> u32 {
    3
}

impl Default for CoverageSpec {
    fn default() -> Self {
        Self {
            heartbeat_timeout_seconds: default_heartbeat_timeout(),
            max_dropped_events_percent: default_max_dropped_percent(),
            crash_loop_restarts: default_crash_loop_restarts(),
        }
    }
}

/// A key of a ConfigMap holding a list.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListReference {
    /// Name the list is reported under in findings' evidence.
    #[schemars(length(min = 1, max = limits::SHORT_NAME))]
    pub list_name: String,
    /// ConfigMap name, in the operator's namespace.
    #[schemars(length(min = 1, max = limits::DNS_SUBDOMAIN), regex(pattern = limits::DNS_SUBDOMAIN_PATTERN))]
    pub config_map_name: String,
    /// Key inside the ConfigMap.
    #[schemars(length(min = 1, max = limits::DNS_SUBDOMAIN), regex(pattern = limits::CONFIG_MAP_KEY_PATTERN))]
    pub key: String,
}

/// Observed state of a policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeMonitoringPolicyStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Coverage totals and the unhealthy nodes.
    #[serde(default)]
    pub coverage: CoverageSummary,
    /// Findings on the covered nodes, by severity label.
    #[serde(default)]
    pub finding_counts: FindingCounts,
}

/// The condition types a policy reports.
pub mod condition_types {
    /// The agent covers every compatible node and every covered node is healthy.
    pub const READY: &str = "Ready";
    /// A rollout is in progress.
    pub const PROGRESSING: &str = "Progressing";
    /// Some compatible node is unhealthy or not covered, or the policy conflicts with another.
    pub const DEGRADED: &str = "Degraded";
}

/// Coverage totals and the unhealthy nodes. Per-node detail for every node is in the
/// [`NodeCoverage`](crate::node_coverage::NodeCoverage) objects, one per node, so this status
/// keeps the same size however many nodes the policy covers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CoverageSummary {
    /// Nodes the policy selects that can run the agent.
    pub compatible_nodes: u32,
    /// Compatible nodes where an agent is reporting.
    pub covered_nodes: u32,
    /// Covered nodes without a coverage issue.
    pub healthy_nodes: u32,
    /// Compatible nodes with a coverage issue.
    pub unhealthy_nodes: u32,
    /// The first unhealthy nodes by name, at most 50; `kubectl get ncov -l
    /// vigil.dev/coverage=Unhealthy` lists them all.
    #[serde(default)]
    #[schemars(length(max = limits::UNHEALTHY_LISTED))]
    pub unhealthy: Vec<UnhealthyNode>,
    /// Unhealthy nodes left out of `unhealthy`.
    #[serde(default)]
    pub unhealthy_not_listed: u32,
}

/// An unhealthy node, as listed in a policy status.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UnhealthyNode {
    /// Node name.
    #[schemars(length(max = limits::DNS_SUBDOMAIN))]
    pub node_name: String,
    /// `IssueType: detail`.
    #[schemars(length(max = limits::ISSUE))]
    pub issue: String,
    /// When the node turned unhealthy, or its issue type last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// Whether a node is really covered.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoverageStatus {
    /// The agent reports and has no issue.
    Healthy,
    /// See the node's `issue`.
    Unhealthy,
}

impl CoverageStatus {
    /// `Healthy` or `Unhealthy`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Unhealthy => "Unhealthy",
        }
    }
}

/// Number of findings by severity label.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FindingCounts {
    /// Low (1.0-3.9).
    pub low: u64,
    /// Medium (4.0-6.9).
    pub medium: u64,
    /// High (7.0-8.9).
    pub high: u64,
    /// Critical (9.0-10.0).
    pub critical: u64,
}

impl FindingCounts {
    /// Count one more finding of `label`.
    pub fn add(&mut self, label: SeverityLabel) {
        match label {
            SeverityLabel::Low => self.low += 1,
            SeverityLabel::Medium => self.medium += 1,
            SeverityLabel::High => self.high += 1,
            SeverityLabel::Critical => self.critical += 1,
        }
    }
}

impl RuntimeMonitoringPolicySpec {
    /// True when `labels` (a node's) satisfy the node selector.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_spec_gets_documented_defaults() {
        let spec: RuntimeMonitoringPolicySpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec.agent_management, AgentManagement::Automated);
        assert_eq!(spec.agent.image, DEFAULT_AGENT_IMAGE);
        assert_eq!(spec.agent.resources.requests.cpu.0, "200m");
        assert_eq!(spec.agent.resources.requests.memory.0, "256Mi");
        assert_eq!(spec.agent.resources.limits.cpu.0, "1");
        assert_eq!(spec.agent.resources.limits.memory.0, "1Gi");
        assert_eq!(spec.findings.event_min_severity, SeverityLabel::High);
        assert_eq!(spec.coverage.heartbeat_timeout_seconds, 60);
    }

    #[test]
    fn selector_matches_only_when_every_pair_is_present() {
        let spec: RuntimeMonitoringPolicySpec = serde_json::from_value(
            serde_json::json!({"nodeSelector": {"pool": "gpu", "os": "linux"}}),
        )
        .unwrap();
        let mut labels = BTreeMap::from([("pool".to_owned(), "gpu".to_owned())]);
        assert!(!spec.selects(&labels));
        labels.insert("os".into(), "linux".into());
        assert!(spec.selects(&labels));
        labels.insert("pool".into(), "cpu".into());
        assert!(!spec.selects(&labels));
    }
}
