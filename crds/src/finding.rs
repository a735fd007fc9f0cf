//! The finding document: what the agent writes and the operator shows, close to GuardDuty's
//! Runtime Monitoring finding format so existing runbooks and routing keep working.
//!
//! The same struct is the spec of the namespaced `RuntimeFinding` custom resource.

use std::{collections::BTreeMap, fmt};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits;

/// Version of the finding schema this crate writes.
pub const SCHEMA_VERSION: &str = "1.0";

/// One finding: repeated activity with the same type, resource and key context updates `count`
/// and `eventLastSeen` of one finding instead of creating new ones.
#[expect(
    clippy::duplicated_attributes,
    reason = "every kube printcolumn(...) repeats its type_ key"
)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vigil.dev",
    version = "v1alpha1",
    kind = "RuntimeFinding",
    namespaced,
    shortname = "rf",
    category = "vigil",
    status = "RuntimeFindingStatus",
    derive = "PartialEq",
    doc = "A runtime threat finding, in the workload's namespace or the operator's namespace for host findings.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Severity", type_ = "string", json_path = ".spec.severityLabel"),
    printcolumn(
        name = "Resource",
        type_ = "string",
        json_path = ".spec.resource.displayName"
    ),
    printcolumn(name = "Count", type_ = "integer", json_path = ".spec.count"),
    printcolumn(name = "Last Seen", type_ = "date", json_path = ".spec.eventLastSeen"),
    printcolumn(name = "Archived", type_ = "boolean", json_path = ".status.archived")
)]
#[x_kube(validation = Rule::new("(self.severityLabel == 'Low' && self.severity < 4.0) || (self.severityLabel == 'Medium' && self.severity >= 4.0 && self.severity < 7.0) || (self.severityLabel == 'High' && self.severity >= 7.0 && self.severity < 9.0) || (self.severityLabel == 'Critical' && self.severity >= 9.0)").message("severityLabel must match severity: Low 1-3.9, Medium 4-6.9, High 7-8.9, Critical 9-10"))]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Unique, stable id of the finding.
    #[schemars(length(min = 1, max = limits::FINDING_ID))]
    pub id: String,
    /// Finding schema version, [`SCHEMA_VERSION`] for this crate.
    pub schema_version: String,
    /// The GuardDuty finding type, exactly, e.g. `Execution:Runtime/NewBinaryExecuted`.
    #[serde(rename = "type")]
    #[schemars(length(max = limits::FINDING_TYPE), regex(pattern = limits::FINDING_TYPE_PATTERN))]
    pub finding_type: String,
    /// Short summary.
    pub title: String,
    /// What happened and why it matters.
    pub description: String,
    /// Severity score, 1.0 to 10.0.
    #[schemars(range(min = 1.0, max = 10.0))]
    pub severity: f64,
    /// Label derived from `severity`.
    pub severity_label: SeverityLabel,
    /// When the finding was first written.
    pub created_at: Time,
    /// When the finding was last updated.
    pub updated_at: Time,
    /// The affected host, container and pod.
    pub resource: Resource,
    /// Whether the resource acted or was acted upon.
    pub resource_role: ResourceRole,
    /// Times the activity was seen.
    #[schemars(range(min = 1))]
    pub count: u64,
    /// First occurrence.
    pub event_first_seen: Time,
    /// Latest occurrence.
    pub event_last_seen: Time,
    /// The process that acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessDetails>,
    /// Type-specific details.
    #[serde(default)]
    pub context: RuntimeContext,
    /// Network connection, for network finding types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkAction>,
    /// DNS request, for DNS finding types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsAction>,
    /// Threat-intelligence evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Archived findings are kept and marked, never deleted.
    #[serde(default)]
    pub archived: bool,
    /// What automated response did about it (docs/RESPONSE.md), oldest first; absent when
    /// nothing was done or configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::ACTIONS_TAKEN))]
    pub actions_taken: Vec<ActionTaken>,
}

/// One automated response action recorded on a finding.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActionTaken {
    /// The action.
    pub action: ResponseAction,
    /// When it was taken (or would have been, in dry run).
    pub time: Time,
    /// How it ended.
    pub outcome: ActionOutcome,
    /// What happened, for a person: e.g. `killed pid 4242 (start time checked)`.
    #[schemars(length(max = limits::ACTION_RESULT))]
    pub result: String,
}

/// An automated response action.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ResponseAction {
    /// Connections to the address refused in the kernel.
    DenyConnection,
    /// The offending process killed.
    KillProcess,
    /// The pod labelled for quarantine (deny-all NetworkPolicy).
    IsolatePod,
}

/// How an action ended.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ActionOutcome {
    /// Done.
    Succeeded,
    /// Dry run: recorded, not done.
    DryRun,
    /// Not done on purpose (rate limit, the target already gone, a different process).
    Skipped,
    /// Tried and failed.
    Failed,
}

/// Severity label, from the score.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum SeverityLabel {
    /// 1.0 to 3.9.
    Low,
    /// 4.0 to 6.9.
    Medium,
    /// 7.0 to 8.9.
    High,
    /// 9.0 to 10.0.
    Critical,
}

/// A severity score outside 1.0..=10.0.
#[derive(Debug, Error, PartialEq)]
#[error("severity {0} is outside 1.0..=10.0")]
pub struct SeverityOutOfRange(pub f64);

impl SeverityLabel {
    /// The label of a score, as GuardDuty assigns it.
    pub fn from_score(score: f64) -> Result<Self, SeverityOutOfRange> {
        if !(1.0..=10.0).contains(&score) {
            return Err(SeverityOutOfRange(score));
        }
        Ok(if score < 4.0 {
            Self::Low
        } else if score < 7.0 {
            Self::Medium
        } else if score < 9.0 {
            Self::High
        } else {
            Self::Critical
        })
    }
}

impl fmt::Display for SeverityLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
        })
    }
}

/// ACTOR or TARGET.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceRole {
    /// The resource performed the activity.
    Actor,
    /// The resource was acted upon.
    Target,
}

/// The affected resource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `namespace/pod/container` for container findings, the host name otherwise; shown by
    /// `kubectl get runtimefindings`.
    pub display_name: String,
    /// The host.
    pub host: HostDetails,
    /// The container, when the activity happened in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerDetails>,
    /// The pod, when the container belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodDetails>,
}

impl Resource {
    /// The display name for this host, pod and container.
    pub fn display_name_for(
        host: &HostDetails,
        container: Option<&ContainerDetails>,
        pod: Option<&PodDetails>,
    ) -> String {
        match (pod, container) {
            (Some(p), Some(c)) => format!("{}/{}/{}", p.namespace, p.name, c.name),
            (Some(p), None) => format!("{}/{}", p.namespace, p.name),
            (None, Some(c)) => format!("{}/{}", host.hostname, c.name),
            (None, None) => host.hostname.clone(),
        }
    }
}

/// Host details.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HostDetails {
    /// Host name.
    pub hostname: String,
    /// Kubernetes node name, when the host is a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// Operating system name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_image: Option<String>,
}

/// Container details.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDetails {
    /// Container name.
    pub name: String,
    /// Runtime container id.
    pub id: String,
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image reference without tag or digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_prefix: Option<String>,
    /// Container runtime, e.g. `containerd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<String>,
    /// Whether the container runs privileged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// The image the runtime actually ran, as the pod status reports it (usually with its
    /// digest, e.g. `registry.example/shop/web@sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `securityContext.allowPrivilegeEscalation` as declared; absent when the pod spec leaves it
    /// unset, which Kubernetes runs as allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
}

/// Pod details.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodDetails {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Pod labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The pod's service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Whether the pod uses the host's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Whether the pod uses the host's pid namespace (`hostPID`, spelled as in the pod spec).
    #[serde(rename = "hostPID", default, skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    /// Whether the pod uses the host's IPC namespace (`hostIPC`, spelled as in the pod spec).
    #[serde(rename = "hostIPC", default, skip_serializing_if = "Option::is_none")]
    pub host_ipc: Option<bool>,
    /// Host paths mounted through `hostPath` volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_path_volumes: Vec<String>,
    /// The workload that owns the pod (a Deployment rather than its ReplicaSet); absent for a
    /// bare pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadDetails>,
}

/// The workload that owns a pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDetails {
    /// Kind, e.g. `Deployment`, `DaemonSet`, `StatefulSet`, `Job`.
    pub kind: String,
    /// Name, in the pod's namespace.
    pub name: String,
    /// UID, when known: the owner reference gives it for the direct owner; a Deployment found
    /// through its ReplicaSet has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// The value that stands for an unknown user id in memory ([`u32::MAX`], never a real id: the
/// kernel's `(uid_t)-1`); documents leave the field out instead.
pub const UNKNOWN_ID: u32 = u32::MAX;

fn unknown_id() -> u32 {
    UNKNOWN_ID
}

fn is_unknown_id(id: &u32) -> bool {
    *id == UNKNOWN_ID
}

/// The value that stands for an unknown time in memory (the epoch); documents leave it out.
pub fn unknown_time() -> Time {
    Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

fn is_zero_port(port: &u16) -> bool {
    *port == 0
}

/// Whether a time stands for unknown: the epoch's second. Documents keep whole seconds, so a
/// time within that second (a damaged or hand-made document can hold `00:00:00.5Z`) is written
/// as the epoch and reads back as unknown; it is unknown from the start, so a document read and
/// written again is the same.
pub fn is_unknown_time(t: &Time) -> bool {
    // Whole seconds towards the past, as the document's "%S" writes them: -0.5 s is 23:59:59.
    t.0.as_second() == 0 && t.0.subsec_nanosecond() >= 0
}

/// The process that acted, with its ancestry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessDetails {
    /// Process name (comm).
    pub name: String,
    /// Absolute path of the executable; absent when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub executable_path: String,
    /// SHA-256 of the executable, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable_sha256: Option<String>,
    /// Pid in the host pid namespace.
    pub pid: u32,
    /// Pid in the process' own pid namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_pid: Option<u32>,
    /// Real user id; absent when unknown.
    #[serde(default = "unknown_id", skip_serializing_if = "is_unknown_id")]
    pub uid: u32,
    /// Effective user id; absent when unknown (the writer of a file: its sensor records the
    /// real uid only).
    #[serde(default = "unknown_id", skip_serializing_if = "is_unknown_id")]
    pub euid: u32,
    /// User name, when resolvable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd: Option<String>,
    /// Process start time; absent when unknown.
    #[serde(default = "unknown_time", skip_serializing_if = "is_unknown_time")]
    pub start_time: Time,
    /// Stable process id across pid reuse; absent when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// `uuid` of the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<String>,
    /// Ancestors, parent first, up to the init process.
    #[serde(default)]
    pub lineage: Vec<LineageEntry>,
}

/// One ancestor.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LineageEntry {
    /// Process name.
    pub name: String,
    /// Executable path; absent when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub executable_path: String,
    /// Pid in the host pid namespace.
    pub pid: u32,
    /// Pid in its own pid namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_pid: Option<u32>,
    /// Real user id; absent when unknown.
    #[serde(default = "unknown_id", skip_serializing_if = "is_unknown_id")]
    pub uid: u32,
    /// Effective user id; absent when unknown.
    #[serde(default = "unknown_id", skip_serializing_if = "is_unknown_id")]
    pub euid: u32,
    /// Start time; absent when unknown.
    #[serde(default = "unknown_time", skip_serializing_if = "is_unknown_time")]
    pub start_time: Time,
    /// Stable process id; absent when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// Parent's stable process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<String>,
}

/// Type-specific fields; each finding type fills the ones it needs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeContext {
    /// The process acted upon (e.g. ptrace target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_process: Option<ProcessDetails>,
    /// The process that modified something (e.g. a binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifying_process: Option<ProcessDetails>,
    /// When the modification happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<Time>,
    /// File involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// What was done to the file, e.g. `write`, `unlink`, `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_operation: Option<String>,
    /// Kernel module name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_name: Option<String>,
    /// Kernel module SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
    /// Mount source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_source: Option<String>,
    /// Mount target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_target: Option<String>,
    /// Unix socket path (e.g. the Docker socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// `LD_PRELOAD` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ld_preload_value: Option<String>,
    /// Tool name, e.g. `xmrig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Tool category, e.g. `Coin miner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_category: Option<String>,
    /// One example command line, secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line_example: Option<String>,
    /// Free-form additional type-specific fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional: BTreeMap<String, String>,
}

/// Direction of a connection.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionDirection {
    /// The process connected out.
    Outbound,
    /// A peer connected in.
    Inbound,
}

/// A network connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAction {
    /// Direction.
    pub connection_direction: ConnectionDirection,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// Local address; absent when unknown (the sensors record the remote end).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_ip: String,
    /// Local port; absent when unknown.
    #[serde(default, skip_serializing_if = "is_zero_port")]
    pub local_port: u16,
    /// Remote address.
    pub remote_ip: String,
    /// Remote port.
    pub remote_port: u16,
    /// Remote domain, when known from DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_domain: Option<String>,
}

/// A DNS request.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DnsAction {
    /// Queried domain.
    pub domain: String,
    /// `UDP` or `TCP`.
    pub protocol: String,
}

/// Evidence from threat intelligence.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Matching list entries.
    #[serde(default)]
    pub threat_intelligence_details: Vec<ThreatIntelligenceDetail>,
}

/// One threat-list match.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThreatIntelligenceDetail {
    /// Name of the list that matched.
    pub threat_list_name: String,
    /// The indicator that matched (domain, IP, hash).
    pub indicator: String,
}

/// Observed state of a `RuntimeFinding`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeFindingStatus {
    /// Archived by a suppression rule.
    #[serde(default)]
    pub archived: bool,
    /// The SuppressionRule that archived it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_by: Option<String>,
    /// When it was archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<Time>,
}

impl Finding {
    /// Whether the finding is archived, in its document or by a suppression rule.
    pub fn is_archived(&self, status: Option<&RuntimeFindingStatus>) -> bool {
        self.archived || status.is_some_and(|s| s.archived)
    }

    /// A stable object name for this finding's `RuntimeFinding`, from its id: lower-case
    /// alphanumerics and dashes, at most 63 characters, so the agent can create-or-update by name.
    pub fn object_name(&self) -> String {
        let mut name: String = self
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(54);
        let name = name.trim_matches('-');
        format!("finding-{}", if name.is_empty() { "unnamed" } else { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ancestor known by its name and pid only, started at `start_time`.
    fn bare_entry(start_time: Time) -> LineageEntry {
        LineageEntry {
            name: "sh".into(),
            executable_path: String::new(),
            pid: 7,
            namespace_pid: None,
            uid: UNKNOWN_ID,
            euid: UNKNOWN_ID,
            start_time,
            uuid: String::new(),
            parent_uuid: None,
        }
    }

    #[test]
    fn unknown_ids_times_and_paths_are_left_out_and_read_back() {
        let lineage = bare_entry(unknown_time());
        let json = serde_json::to_value(&lineage).unwrap();
        assert_eq!(json, serde_json::json!({"name": "sh", "pid": 7}));
        let back: LineageEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, lineage);
        // The CRD schema does not require what may be unknown.
        let crd = serde_json::to_value(<RuntimeFinding as kube::CustomResourceExt>::crd()).unwrap();
        let process = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["process"];
        let required: Vec<&str> = process["required"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        for field in ["executablePath", "uid", "euid", "startTime", "uuid"] {
            assert!(
                !required.contains(&field),
                "{field} is required: {required:?}"
            );
        }
        assert!(required.contains(&"pid"), "{required:?}");
    }

    #[test]
    fn a_time_within_the_epochs_second_is_unknown_and_reads_back_the_same() {
        use k8s_openapi::jiff::Timestamp;
        let at = |nanos: i128| Time(Timestamp::from_nanosecond(nanos).unwrap());
        assert!(is_unknown_time(&unknown_time()));
        assert!(is_unknown_time(&at(500_000_000)));
        assert!(!is_unknown_time(&at(-500_000_000)));
        assert!(!is_unknown_time(&at(1_000_000_000)));
        // Found by the spool_entry fuzz target: written once, a start time of 00:00:00.5Z came
        // back as the epoch and was left out the second time.
        for nanos in [500_000_000, -500_000_000, 1_500_000_000] {
            let once = serde_json::to_string(&bare_entry(at(nanos))).unwrap();
            let back: LineageEntry = serde_json::from_str(&once).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), once, "{nanos} ns");
        }
    }

    #[test]
    fn severity_labels_follow_guardduty_bands() {
        let table = [
            (1.0, Some(SeverityLabel::Low)),
            (3.9, Some(SeverityLabel::Low)),
            (4.0, Some(SeverityLabel::Medium)),
            (6.9, Some(SeverityLabel::Medium)),
            (7.0, Some(SeverityLabel::High)),
            (8.9, Some(SeverityLabel::High)),
            (9.0, Some(SeverityLabel::Critical)),
            (10.0, Some(SeverityLabel::Critical)),
            (0.5, None),
            (10.1, None),
            (f64::NAN, None),
        ];
        for (score, want) in table {
            assert_eq!(SeverityLabel::from_score(score).ok(), want, "score {score}");
        }
    }

    #[test]
    fn resource_role_and_type_use_guardduty_spelling() {
        assert_eq!(serde_json::to_value(ResourceRole::Actor).unwrap(), "ACTOR");
        assert_eq!(
            serde_json::to_value(ConnectionDirection::Outbound).unwrap(),
            "OUTBOUND"
        );
    }

    #[test]
    fn object_name_is_a_dns_label() {
        let f = crate::testdata::finding();
        let name = f.object_name();
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(name.starts_with("finding-"));
    }

    #[test]
    fn pod_and_container_context_fields_are_optional_and_camel_case() {
        // A document written before these fields existed still parses, to empty values.
        let old = crate::testdata::finding();
        let pod = old.resource.pod.as_ref().unwrap();
        assert_eq!(pod.workload, None);
        assert!(pod.host_path_volumes.is_empty());
        assert_eq!(old.resource.container.as_ref().unwrap().image_id, None);
        let json = serde_json::to_value(&old.resource).unwrap();
        for absent in [
            "workload",
            "hostNetwork",
            "hostPathVolumes",
            "serviceAccountName",
        ] {
            assert!(
                json["pod"].get(absent).is_none(),
                "{absent} not written when empty"
            );
        }

        let pod = PodDetails {
            name: "web-1".into(),
            namespace: "shop".into(),
            service_account_name: Some("web".into()),
            host_network: Some(true),
            host_pid: Some(false),
            host_ipc: Some(false),
            host_path_volumes: vec!["/var/run/docker.sock".into()],
            workload: Some(WorkloadDetails {
                kind: "Deployment".into(),
                name: "web".into(),
                uid: None,
            }),
            ..Default::default()
        };
        let container = ContainerDetails {
            name: "web".into(),
            id: "abc".into(),
            image_id: Some("registry.example/web@sha256:00".into()),
            allow_privilege_escalation: Some(false),
            ..Default::default()
        };
        let pod_json = serde_json::to_value(&pod).unwrap();
        assert_eq!(
            pod_json,
            serde_json::json!({
                "name": "web-1", "namespace": "shop", "serviceAccountName": "web",
                "hostNetwork": true, "hostPID": false, "hostIPC": false,
                "hostPathVolumes": ["/var/run/docker.sock"],
                "workload": {"kind": "Deployment", "name": "web"}
            })
        );
        let container_json = serde_json::to_value(&container).unwrap();
        assert_eq!(container_json["imageId"], "registry.example/web@sha256:00");
        assert_eq!(container_json["allowPrivilegeEscalation"], false);
        assert_eq!(serde_json::from_value::<PodDetails>(pod_json).unwrap(), pod);
        assert_eq!(
            serde_json::from_value::<ContainerDetails>(container_json).unwrap(),
            container
        );
    }

    #[test]
    fn display_name_prefers_pod_context() {
        let host = HostDetails {
            hostname: "node-a".into(),
            ..Default::default()
        };
        let c = ContainerDetails {
            name: "web".into(),
            id: "abc".into(),
            ..Default::default()
        };
        let p = PodDetails {
            name: "web-1".into(),
            namespace: "shop".into(),
            ..Default::default()
        };
        assert_eq!(
            Resource::display_name_for(&host, Some(&c), Some(&p)),
            "shop/web-1/web"
        );
        assert_eq!(Resource::display_name_for(&host, None, None), "node-a");
    }
}
