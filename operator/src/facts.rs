//! What the operator needs to know about nodes and agent pods, extracted once from the API objects
//! so the decisions ([`crate::placement`], [`crate::coverage`]) are plain functions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};

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
