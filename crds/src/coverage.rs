//! The coverage reason taxonomy: why a node the policy selects is not really covered.
//!
//! Shared by the operator (which decides) and the agent (which reports the agent-side reasons in its
//! Lease), so both speak the same words. A node's `issue` is rendered `IssueType: detail`.

use std::fmt;

/// Why a node is not healthy, most fundamental first.
#[derive(Debug, Clone, PartialEq)]
pub enum CoverageIssue {
    /// The node itself is not Ready.
    NodeNotReady {
        /// The node's Ready condition reason/message.
        detail: String,
    },
    /// Another policy already covers the node.
    PolicyConflict {
        /// The policy that owns the node.
        other_policy: String,
    },
    /// No agent pod exists on the node (Automated) and no agent Lease either.
    AgentPodMissing,
    /// The agent pod cannot be scheduled or started.
    AgentPodPending {
        /// The scheduler's or kubelet's reason, e.g. `Insufficient cpu`.
        reason: String,
    },
    /// The agent container keeps restarting.
    AgentCrashLooping {
        /// Restart count.
        restarts: i32,
        /// Last termination reason.
        detail: String,
    },
    /// The agent's Lease is missing or expired.
    AgentNotReporting {
        /// Since when, or that it never reported.
        detail: String,
    },
    /// The kernel cannot run the sensor (no BTF, too old).
    KernelUnsupported {
        /// What the agent found.
        detail: String,
    },
    /// The agent runs and reports, but could not start its sensors.
    AgentFailed {
        /// The agent's own error.
        detail: String,
    },
    /// Some eBPF probe failed to load or attach.
    ProbeLoadFailed {
        /// Probe name.
        probe: String,
        /// Loader error.
        detail: String,
    },
    /// The agent drops more events than the policy allows.
    EventsDropped {
        /// Percentage of events dropped.
        percent: f64,
        /// The policy's threshold.
        threshold: f64,
    },
    /// Another process tampered with the agent (its eBPF maps or links, signals, ptrace, its
    /// binary or configuration): what it reports can no longer be trusted until it restarts.
    AgentTampered {
        /// How often, and the latest occurrence.
        detail: String,
    },
}

impl CoverageIssue {
    /// The issue type, the part before the colon.
    pub fn issue_type(&self) -> &'static str {
        match self {
            Self::NodeNotReady { .. } => "NodeNotReady",
            Self::PolicyConflict { .. } => "PolicyConflict",
            Self::AgentPodMissing => "AgentPodMissing",
            Self::AgentPodPending { .. } => "AgentPodPending",
            Self::AgentCrashLooping { .. } => "AgentCrashLooping",
            Self::AgentNotReporting { .. } => "AgentNotReporting",
            Self::KernelUnsupported { .. } => "KernelUnsupported",
            Self::AgentFailed { .. } => "AgentFailed",
            Self::ProbeLoadFailed { .. } => "ProbeLoadFailed",
            Self::EventsDropped { .. } => "EventsDropped",
            Self::AgentTampered { .. } => "AgentTampered",
        }
    }

    /// Whether the agent still counts as covering the node (it reports, but unhealthily).
    pub fn agent_reporting(&self) -> bool {
        matches!(
            self,
            Self::KernelUnsupported { .. }
                | Self::AgentFailed { .. }
                | Self::ProbeLoadFailed { .. }
                | Self::EventsDropped { .. }
                | Self::AgentTampered { .. }
        )
    }
}

impl fmt::Display for CoverageIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.issue_type())?;
        match self {
            Self::NodeNotReady { detail }
            | Self::AgentNotReporting { detail }
            | Self::KernelUnsupported { detail }
            | Self::AgentFailed { detail }
            | Self::AgentTampered { detail } => f.write_str(detail),
            Self::PolicyConflict { other_policy } => {
                write!(f, "node is already covered by policy {other_policy}")
            }
            Self::AgentPodMissing => f.write_str("no agent pod on the node"),
            Self::AgentPodPending { reason } => f.write_str(reason),
            Self::AgentCrashLooping { restarts, detail } => {
                write!(f, "{restarts} restarts, last: {detail}")
            }
            Self::ProbeLoadFailed { probe, detail } => write!(f, "{probe}: {detail}"),
            Self::EventsDropped { percent, threshold } => {
                write!(
                    f,
                    "{percent:.2}% of events dropped (threshold {threshold}%)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_render_type_colon_detail() {
        let table = [
            (
                CoverageIssue::AgentPodPending {
                    reason: "0/3 nodes: Insufficient cpu".into(),
                },
                "AgentPodPending: 0/3 nodes: Insufficient cpu",
            ),
            (
                CoverageIssue::EventsDropped {
                    percent: 2.5,
                    threshold: 1.0,
                },
                "EventsDropped: 2.50% of events dropped (threshold 1%)",
            ),
            (
                CoverageIssue::AgentPodMissing,
                "AgentPodMissing: no agent pod on the node",
            ),
            (
                CoverageIssue::ProbeLoadFailed {
                    probe: "lsm_file_open".into(),
                    detail: "EINVAL".into(),
                },
                "ProbeLoadFailed: lsm_file_open: EINVAL",
            ),
        ];
        for (issue, want) in table {
            assert_eq!(issue.to_string(), want);
        }
    }
}
