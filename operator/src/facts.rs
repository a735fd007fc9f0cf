//! What the operator needs to know about nodes and agent pods, extracted once from the API objects
//! so the decisions ([`crate::placement`], [`crate::coverage`]) are plain functions.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Node, NodeStatus, Pod, PodSpec},
};

/// Label carrying the node's operating system.
pub const OS_LABEL: &str = "kubernetes.io/os";

/// Facts about one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// `None` when Ready, else the reason and message of the Ready condition.
    pub not_ready: Option<String>,
    /// Kernel release from the node status.
    pub kernel_version: Option<String>,
    /// Whether the node runs Linux.
    pub linux: bool,
}

impl NodeFacts {
    /// Extract the facts of a node; `None` for a node without a name.
    pub fn from_node(node: &Node) -> Option<Self> {
        let name = node.metadata.name.clone()?;
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let status = node.status.as_ref();
        let info = status.and_then(|s| s.node_info.as_ref());
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
        let not_ready = match ready {
            Some(c) if c.status == "True" => None,
            Some(c) => Some(format!(
                "Ready={} {}: {}",
                c.status,
                c.reason.as_deref().unwrap_or("Unknown"),
                c.message.as_deref().unwrap_or("")
            )),
            None => Some("node reports no Ready condition".to_owned()),
        };
        let linux = labels.get(OS_LABEL).map_or_else(
            || info.is_some_and(|i| i.operating_system == "linux"),
            |os| os == "linux",
        );
        Some(Self {
            name,
            labels,
            not_ready,
            kernel_version: info.map(|i| i.kernel_version.clone()),
            linux,
        })
    }
}

/// Facts about one agent pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentPodFacts {
    /// Pod name.
    pub name: String,
    /// The node it runs on, or the node the DaemonSet targets while it is pending.
    pub node: Option<String>,
    /// `Pending`, `Running`, ...
    pub phase: String,
    /// The scheduler's message when the pod cannot be scheduled.
    pub unschedulable: Option<String>,
    /// Reason and message of the agent container's waiting state.
    pub waiting: Option<(String, String)>,
    /// Restarts of the agent container.
    pub restarts: i32,
    /// Reason of the agent container's last termination.
    pub last_termination: Option<String>,
}

impl AgentPodFacts {
    /// Extract the facts of an agent pod.
    pub fn from_pod(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        // A pending DaemonSet pod has no nodeName yet; its target node is in the affinity the
        // DaemonSet controller writes.
        let node = spec.and_then(|s| s.node_name.clone()).or_else(|| {
            spec.and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|na| {
                    na.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .and_then(|sel| {
                    sel.node_selector_terms.iter().find_map(|t| {
                        t.match_fields.as_ref()?.iter().find_map(|f| {
                            (f.key == "metadata.name" && f.operator == "In")
                                .then(|| f.values.as_ref()?.first().cloned())
                                .flatten()
                        })
                    })
                })
        });
        let unschedulable = status.and_then(|s| s.conditions.as_ref()).and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                .map(|c| {
                    c.message
                        .clone()
                        .or_else(|| c.reason.clone())
                        .unwrap_or_else(|| "Unschedulable".to_owned())
                })
        });
        let container = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first());
        let waiting = container
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| Some((w.reason.clone()?, w.message.clone().unwrap_or_default())));
        let last_termination = container
            .and_then(|c| c.last_state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .map(|t| match (&t.reason, &t.message) {
                (Some(r), Some(m)) => format!("{r} (exit {}): {m}", t.exit_code),
                (Some(r), None) => format!("{r} (exit {})", t.exit_code),
                _ => format!("exit {}", t.exit_code),
            });
        Self {
            name: pod.metadata.name.clone().unwrap_or_default(),
            node,
            phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
            unschedulable,
            waiting,
            restarts: container.map_or(0, |c| c.restart_count),
            last_termination,
        }
    }
}

/// Drops from a watched node what [`NodeFacts`] and the console do not read (managed fields,
/// annotations, the spec, images, volumes, addresses, capacity but the CPUs), so the cache of a large cluster stays small: the
/// image list alone is often most of a node object.
pub fn slim_node(node: &mut Node) {
    node.metadata.managed_fields = None;
    node.metadata.annotations = None;
    node.spec = None;
    if let Some(status) = node.status.take() {
        node.status = Some(NodeStatus {
            conditions: status
                .conditions
                .map(|cs| cs.into_iter().filter(|c| c.type_ == "Ready").collect()),
            node_info: status.node_info,
            // The console's usage page counts vCPUs.
            capacity: status
                .capacity
                .map(|c| c.into_iter().filter(|(k, _)| k == "cpu").collect()),
            ..NodeStatus::default()
        });
    }
}

/// Drops from a watched agent pod what [`AgentPodFacts`] does not read (managed fields,
/// annotations, containers, volumes).
pub fn slim_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    if let Some(spec) = pod.spec.take() {
        pod.spec = Some(PodSpec {
            node_name: spec.node_name,
            affinity: spec.affinity,
            ..PodSpec::default()
        });
    }
}

/// Drops a watched Lease's managed fields.
pub fn slim_lease(lease: &mut Lease) {
    lease.metadata.managed_fields = None;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn slimming_keeps_every_fact() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"kubernetes.io/os": "linux", "pool": "gpu"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "PLEG"}],
                "nodeInfo": {"kernelVersion": "6.8.0", "operatingSystem": "linux", "architecture": "amd64",
                    "bootID": "", "containerRuntimeVersion": "", "kubeProxyVersion": "", "kubeletVersion": "",
                    "machineID": "", "osImage": "", "systemUUID": ""},
                "images": [{"names": ["registry.example/app@sha256:0123"], "sizeBytes": 1000}],
                "capacity": {"cpu": "4"}}
        }))
        .unwrap();
        let mut slim = node.clone();
        slim_node(&mut slim);
        assert_eq!(NodeFacts::from_node(&slim), NodeFacts::from_node(&node));
        let before = serde_json::to_vec(&node).unwrap().len();
        let after = serde_json::to_vec(&slim).unwrap().len();
        assert!(after < before, "{after} < {before}");
        assert!(slim.status.unwrap().images.is_none());

        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "a", "labels": {"vigil.dev/policy": "p"}, "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "agent", "image": "i", "env": [{"name": "A", "value": "B"}]}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/1 nodes"}],
                "containerStatuses": [{"name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
        }))
        .unwrap();
        let mut slim = pod.clone();
        slim_pod(&mut slim);
        assert_eq!(
            AgentPodFacts::from_pod(&slim),
            AgentPodFacts::from_pod(&pod)
        );
        assert_eq!(AgentPodFacts::from_pod(&slim).node.as_deref(), Some("n1"));
        assert!(slim.spec.unwrap().containers.is_empty());
    }
}
