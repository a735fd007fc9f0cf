//! Coverage: Leases, agent pods and node state to Healthy/Unhealthy per node, with a reason.

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use vigil_crds::{
    coverage::CoverageIssue,
    lease::Heartbeat,
    policy::{AgentManagement, CoverageStatus, RuntimeMonitoringPolicySpec},
};

use crate::{
    facts::{AgentPodFacts, NodeFacts},
    leader::MAX_CLOCK_SKEW_SECONDS,
};

/// Waiting reasons that mean the image cannot be pulled.
const IMAGE_PULL_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// The coverage of one node at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeAssessment {
    /// Node name.
    pub node: String,
    /// `None` when healthy.
    pub issue: Option<CoverageIssue>,
    /// Whether the agent's heartbeat Lease is fresh.
    pub covered: bool,
    /// Agent version from its Lease, fresh or not.
    pub agent_version: Option<String>,
    /// Kernel release, from the agent or else from the node.
    pub kernel_version: Option<String>,
    /// The agent's attached hooks, `None` when it never reported.
    pub active_hooks: Option<Vec<String>>,
}

impl NodeAssessment {
    /// Healthy when there is no issue.
    pub fn status(&self) -> CoverageStatus {
        if self.issue.is_none() {
            CoverageStatus::Healthy
        } else {
            CoverageStatus::Unhealthy
        }
    }
}

/// Node counts of one policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Nodes the policy selects that can run the agent.
    pub compatible: u32,
    /// Compatible nodes with a fresh Lease.
    pub covered: u32,
    /// Compatible nodes without an issue.
    pub healthy: u32,
    /// Compatible nodes with an issue.
    pub unhealthy: u32,
}

/// Assessed coverage of every compatible node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assessment {
    /// One per compatible node, sorted by name.
    pub nodes: Vec<NodeAssessment>,
    /// Counts.
    pub totals: Totals,
}

/// Assess the coverage of `nodes` (the policy's compatible nodes) at `now`. Linear in the number
/// of nodes, pods and heartbeats: each node finds its pod and its Lease through an index.
pub fn assess(
    spec: &RuntimeMonitoringPolicySpec,
    nodes: &[NodeFacts],
    pods: &[AgentPodFacts],
    heartbeats: &[Heartbeat],
    now: Timestamp,
) -> Assessment {
    // The newest Lease of each node (there is one per node unless a name was hashed). A renewal
    // stamped in the future never outranks a believable one: whoever can write a Lease could
    // otherwise hide the node's real heartbeat behind a forged one.
    let mut latest: HashMap<&str, &Heartbeat> = HashMap::with_capacity(heartbeats.len());
    for h in heartbeats {
        let renew = |h: &Heartbeat| (!from_the_future(h, now), h.renew_time.as_ref().map(|t| t.0));
        latest
            .entry(h.node.as_str())
            .and_modify(|old| {
                if renew(h) > renew(old) {
                    *old = h;
                }
            })
            .or_insert(h);
    }
    // The first agent pod listed on each node.
    let mut pod_on: HashMap<&str, &AgentPodFacts> = HashMap::with_capacity(pods.len());
    for p in pods {
        if let Some(node) = p.node.as_deref() {
            pod_on.entry(node).or_insert(p);
        }
    }
    let mut sorted: Vec<&NodeFacts> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Assessment::default();
    for node in sorted {
        let heartbeat = latest.get(node.name.as_str()).copied();
        let fresh = heartbeat.filter(|h| is_fresh(h, spec.coverage.heartbeat_timeout_seconds, now));
        let pod = pod_on.get(node.name.as_str()).copied();
        let issue = node_issue(spec, node, pod, heartbeat, fresh, now);
        let t = &mut out.totals;
        t.compatible += 1;
        if fresh.is_some() {
            t.covered += 1;
        }
        if issue.is_none() {
            t.healthy += 1;
        } else {
            t.unhealthy += 1;
        }
        let health = heartbeat.map(|h| &h.health);
        out.nodes.push(NodeAssessment {
            node: node.name.clone(),
            issue,
            covered: fresh.is_some(),
            agent_version: health.map(|h| h.agent_version.clone()),
            kernel_version: health
                .map(|h| h.kernel_version.clone())
                .or_else(|| node.kernel_version.clone()),
            active_hooks: health.map(|h| h.active_hooks.clone()),
        });
    }
    out
}

/// A heartbeat renewed within the timeout, and not after `now` beyond the clock skew allowed
/// between nodes: a Lease renewed "a year from now" keeps no node covered.
fn is_fresh(h: &Heartbeat, timeout_seconds: u32, now: Timestamp) -> bool {
    !from_the_future(h, now)
        && h.renew_time.as_ref().is_some_and(|t| {
            let age = now.as_second().saturating_sub(t.0.as_second());
            age <= i64::from(timeout_seconds)
        })
}

/// Whether the Lease claims a renewal later than `now` plus the clock skew allowed.
fn from_the_future(h: &Heartbeat, now: Timestamp) -> bool {
    h.renew_time
        .as_ref()
        .is_some_and(|t| t.0.as_second() > now.as_second().saturating_add(MAX_CLOCK_SKEW_SECONDS))
}

/// The most fundamental issue of one node, `None` when healthy.
fn node_issue(
    spec: &RuntimeMonitoringPolicySpec,
    node: &NodeFacts,
    pod: Option<&AgentPodFacts>,
    heartbeat: Option<&Heartbeat>,
    fresh: Option<&Heartbeat>,
    now: Timestamp,
) -> Option<CoverageIssue> {
    if let Some(detail) = &node.not_ready {
        return Some(CoverageIssue::NodeNotReady {
            detail: detail.clone(),
        });
    }
    // A crash-looping agent may still hold a fresh Lease from before the crash; the pod state is
    // the newer truth.
    if let Some(p) = pod
        && let Some((reason, _)) = &p.waiting
        && reason == "CrashLoopBackOff"
    {
        // The agent's own word on why it stopped, when its last Lease carries one.
        let agent_error = heartbeat
            .filter(|h| !h.health.sensors_running)
            .and_then(|h| h.health.last_error.clone());
        return Some(CoverageIssue::AgentCrashLooping {
            restarts: p.restarts,
            detail: agent_error
                .or_else(|| p.last_termination.clone())
                .unwrap_or_else(|| reason.clone()),
        });
    }
    if let Some(h) = fresh {
        let health = &h.health;
        if !health.btf_available {
            return Some(CoverageIssue::KernelUnsupported {
                detail: format!(
                    "kernel {} has no BTF (/sys/kernel/btf/vmlinux)",
                    health.kernel_version
                ),
            });
        }
        if !health.sensors_running {
            return Some(CoverageIssue::AgentFailed {
                detail: health
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the agent could not start its sensors".into()),
            });
        }
        // Before probes and drops: what a tampered agent reports is not to be trusted.
        if health.tampering_total > 0 {
            return Some(CoverageIssue::AgentTampered {
                detail: format!(
                    "{} tampering event(s) since the agent started, latest: {}",
                    health.tampering_total,
                    health.last_tampering.as_deref().unwrap_or("not described")
                ),
            });
        }
        if let Some(f) = health.probe_failures.first() {
            return Some(CoverageIssue::ProbeLoadFailed {
                probe: f.probe.clone(),
                detail: f.error.clone(),
            });
        }
        let percent = health.dropped_percent();
        if percent > spec.coverage.max_dropped_events_percent {
            return Some(CoverageIssue::EventsDropped {
                percent,
                threshold: spec.coverage.max_dropped_events_percent,
            });
        }
        return None;
    }
    if spec.agent_management == AgentManagement::Automated {
        match pod {
            None => return Some(CoverageIssue::AgentPodMissing),
            Some(p) => {
                if let Some(msg) = &p.unschedulable {
                    return Some(CoverageIssue::AgentPodPending {
                        reason: msg.clone(),
                    });
                }
                if let Some((reason, message)) = &p.waiting
                    && IMAGE_PULL_REASONS.contains(&reason.as_str())
                {
                    return Some(CoverageIssue::AgentPodPending {
                        reason: format!("{reason}: {message}"),
                    });
                }
                if p.restarts
                    >= i32::try_from(spec.coverage.crash_loop_restarts).unwrap_or(i32::MAX)
                    && p.phase != "Running"
                {
                    return Some(CoverageIssue::AgentCrashLooping {
                        restarts: p.restarts,
                        detail: p
                            .last_termination
                            .clone()
                            .unwrap_or_else(|| p.phase.clone()),
                    });
                }
                if p.phase == "Pending" {
                    let why = p
                        .waiting
                        .as_ref()
                        .map_or_else(|| "pod is pending".to_owned(), |(r, m)| format!("{r}: {m}"));
                    return Some(CoverageIssue::AgentPodPending { reason: why });
                }
            }
        }
    }
    let detail = match heartbeat.and_then(|h| h.renew_time.as_ref()) {
        Some(t) if heartbeat.is_some_and(|h| from_the_future(h, now)) => format!(
            "the agent Lease claims a heartbeat at {}, in the future: ignored (a forged Lease, or a \
             node clock more than {MAX_CLOCK_SKEW_SECONDS} s ahead)",
            t.0
        ),
        Some(t) => format!("last heartbeat at {}", t.0),
        None => "agent has never reported".to_owned(),
    };
    Some(CoverageIssue::AgentNotReporting { detail })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use vigil_crds::lease::{AgentHealth, HEALTH_SCHEMA_VERSION, ProbeFailure};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn spec(mode: AgentManagement) -> RuntimeMonitoringPolicySpec {
        let mut s: RuntimeMonitoringPolicySpec = serde_json::from_str("{}").unwrap();
        s.agent_management = mode;
        s
    }

    fn node(name: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            labels: BTreeMap::new(),
            not_ready: None,
            kernel_version: Some("6.1.0".into()),
            linux: true,
        }
    }

    fn health() -> AgentHealth {
        AgentHealth {
            schema_version: HEALTH_SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            kernel_version: "6.8.0".into(),
            btf_available: true,
            active_hooks: vec!["exec".into(), "connect".into()],
            probe_failures: vec![],
            events_per_second: 100.0,
            dropped_events_per_second: 0.0,
            dropped_events_total: 0,
            dropped_since_last_renewal: 0,
            sensors_running: true,
            last_error: None,
            publishing: None,
            tampering_total: 0,
            last_tampering: None,
            tracked_bytes: 0,
            tracked_shed_total: 0,
        }
    }

    fn hb(node: &str, age: i64, health: AgentHealth) -> Heartbeat {
        Heartbeat {
            node: node.into(),
            policy: Some("p".into()),
            holder: Some("agent".into()),
            renew_time: Some(MicroTime(Timestamp::from_second(NOW - age).unwrap())),
            lease_duration_seconds: Some(60),
            health,
        }
    }

    fn pod(node: &str, phase: &str) -> AgentPodFacts {
        AgentPodFacts {
            name: format!("agent-{node}"),
            node: Some(node.into()),
            phase: phase.into(),
            ..Default::default()
        }
    }

    fn one(
        spec: &RuntimeMonitoringPolicySpec,
        n: NodeFacts,
        pods: Vec<AgentPodFacts>,
        hbs: Vec<Heartbeat>,
    ) -> Option<String> {
        let a = assess(
            spec,
            &[n],
            &pods,
            &hbs,
            Timestamp::from_second(NOW).unwrap(),
        );
        a.nodes[0].issue.as_ref().map(|i| i.issue_type().to_owned())
    }

    /// (name, spec, node, agent pods, heartbeats, expected issue type)
    type Case<'a> = (
        &'a str,
        &'a RuntimeMonitoringPolicySpec,
        NodeFacts,
        Vec<AgentPodFacts>,
        Vec<Heartbeat>,
        Option<&'a str>,
    );

    #[test]
    fn reason_taxonomy_table() {
        let auto = spec(AgentManagement::Automated);
        let manual = spec(AgentManagement::Manual);
        let mut not_ready = node("n");
        not_ready.not_ready = Some("Ready=False KubeletNotReady: PLEG".into());
        let mut no_btf = health();
        no_btf.btf_available = false;
        let mut probe = health();
        probe.probe_failures = vec![ProbeFailure {
            probe: "lsm_bprm".into(),
            error: "EPERM".into(),
        }];
        let mut failed = health();
        failed.sensors_running = false;
        failed.last_error = Some("not root: the agent needs CAP_BPF and CAP_PERFMON".into());
        let mut drops = health();
        drops.dropped_events_per_second = 5.0;
        let mut tampered = health();
        tampered.tampering_total = 2;
        tampered.last_tampering = Some("Process sh (pid 9) sent SIGSTOP to the agent".into());
        let mut tampered_and_probe = probe.clone();
        tampered_and_probe.tampering_total = 1;
        let mut pending = pod("n", "Pending");
        pending.unschedulable = Some("0/3 nodes are available: 1 Insufficient cpu.".into());
        let mut looping = pod("n", "Running");
        looping.waiting = Some(("CrashLoopBackOff".into(), "back-off".into()));
        looping.restarts = 5;
        let mut pulling = pod("n", "Pending");
        pulling.waiting = Some(("ImagePullBackOff".into(), "not found".into()));

        let table: Vec<Case<'_>> = vec![
            (
                "tampered agent",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 5, tampered)],
                Some("AgentTampered"),
            ),
            (
                "tampering before a failed probe",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 5, tampered_and_probe)],
                Some("AgentTampered"),
            ),
            (
                "healthy",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 5, health())],
                None,
            ),
            (
                "manual healthy without pod",
                &manual,
                node("n"),
                vec![],
                vec![hb("n", 5, health())],
                None,
            ),
            (
                "node not ready wins",
                &auto,
                not_ready,
                vec![],
                vec![hb("n", 5, health())],
                Some("NodeNotReady"),
            ),
            (
                "stale lease, pod running",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 600, health())],
                Some("AgentNotReporting"),
            ),
            (
                "never reported, manual",
                &manual,
                node("n"),
                vec![],
                vec![],
                Some("AgentNotReporting"),
            ),
            (
                "no pod",
                &auto,
                node("n"),
                vec![],
                vec![],
                Some("AgentPodMissing"),
            ),
            (
                "unschedulable",
                &auto,
                node("n"),
                vec![pending],
                vec![],
                Some("AgentPodPending"),
            ),
            (
                "image pull",
                &auto,
                node("n"),
                vec![pulling],
                vec![],
                Some("AgentPodPending"),
            ),
            (
                "crash loop beats fresh lease",
                &auto,
                node("n"),
                vec![looping],
                vec![hb("n", 5, health())],
                Some("AgentCrashLooping"),
            ),
            (
                "no btf",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 5, no_btf)],
                Some("KernelUnsupported"),
            ),
            (
                "sensors could not start",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 5, failed.clone())],
                Some("AgentFailed"),
            ),
            (
                "probe failed",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 5, probe)],
                Some("ProbeLoadFailed"),
            ),
            (
                "drops above threshold",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("n", 5, drops)],
                Some("EventsDropped"),
            ),
            (
                "other node's lease",
                &auto,
                node("n"),
                vec![pod("n", "Running")],
                vec![hb("m", 5, health())],
                Some("AgentNotReporting"),
            ),
        ];
        for (name, spec, n, pods, hbs, want) in table {
            assert_eq!(one(spec, n, pods, hbs).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn crash_loop_reports_the_agents_own_error() {
        let mut looping = pod("n", "Running");
        looping.waiting = Some(("CrashLoopBackOff".into(), "back-off".into()));
        looping.restarts = 3;
        looping.last_termination = Some("Error (exit 1)".into());
        let mut failed = health();
        failed.sensors_running = false;
        failed.last_error = Some("kernel BTF missing at /sys/kernel/btf/vmlinux".into());
        let a = assess(
            &spec(AgentManagement::Automated),
            &[node("n")],
            &[looping.clone()],
            &[hb("n", 5, failed)],
            Timestamp::from_second(NOW).unwrap(),
        );
        assert_eq!(
            a.nodes[0]
                .issue
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some(
                "AgentCrashLooping: 3 restarts, last: kernel BTF missing at /sys/kernel/btf/vmlinux"
            )
        );
        // Without the agent's word, the kubelet's termination reason.
        let a = assess(
            &spec(AgentManagement::Automated),
            &[node("n")],
            &[looping],
            &[hb("n", 5, health())],
            Timestamp::from_second(NOW).unwrap(),
        );
        assert_eq!(
            a.nodes[0]
                .issue
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("AgentCrashLooping: 3 restarts, last: Error (exit 1)")
        );
    }

    #[test]
    fn unschedulable_keeps_scheduler_message() {
        let mut pending = pod("n", "Pending");
        pending.unschedulable = Some("0/3 nodes are available: 1 Insufficient memory.".into());
        let a = assess(
            &spec(AgentManagement::Automated),
            &[node("n")],
            &[pending],
            &[],
            Timestamp::from_second(NOW).unwrap(),
        );
        assert_eq!(
            a.nodes[0]
                .issue
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("AgentPodPending: 0/3 nodes are available: 1 Insufficient memory.")
        );
    }

    #[test]
    fn totals_count_covered_healthy_and_unhealthy() {
        let mut no_btf = health();
        no_btf.btf_available = false;
        let nodes = [node("c"), node("a"), node("b")];
        let a = assess(
            &spec(AgentManagement::Automated),
            &nodes,
            &[pod("a", "Running"), pod("b", "Running")],
            &[hb("a", 1, health()), hb("b", 1, no_btf)],
            Timestamp::from_second(NOW).unwrap(),
        );
        assert_eq!(
            a.totals,
            Totals {
                compatible: 3,
                covered: 2,
                healthy: 1,
                unhealthy: 2
            }
        );
        assert_eq!(
            a.nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(a.nodes[0].active_hooks.as_ref().map(Vec::len), Some(2));
        assert_eq!(a.nodes[0].status(), CoverageStatus::Healthy);
        assert_eq!(a.nodes[1].status(), CoverageStatus::Unhealthy);
        assert!(a.nodes[1].covered, "an unhealthy agent still reports");
        assert!(!a.nodes[2].covered);
        assert_eq!(
            a.nodes[2].kernel_version.as_deref(),
            Some("6.1.0"),
            "kernel falls back to the node's"
        );
    }

    #[test]
    fn the_newest_lease_of_a_node_counts() {
        let mut old = health();
        old.btf_available = false;
        let a = assess(
            &spec(AgentManagement::Manual),
            &[node("n")],
            &[],
            &[hb("n", 5, health()), hb("n", 500, old.clone())],
            Timestamp::from_second(NOW).unwrap(),
        );
        assert_eq!(a.nodes[0].issue, None);
        let a = assess(
            &spec(AgentManagement::Manual),
            &[node("n")],
            &[],
            &[hb("n", 500, health()), hb("n", 5, old)],
            Timestamp::from_second(NOW).unwrap(),
        );
        assert_eq!(
            a.nodes[0].issue.as_ref().map(CoverageIssue::issue_type),
            Some("KernelUnsupported")
        );
    }

    #[test]
    fn a_heartbeat_from_the_future_covers_nothing() {
        let at = Timestamp::from_second(NOW).unwrap();
        // A year ahead, with no agent pod: not covered, and the issue says why.
        let forged = hb("n", -365 * 24 * 3600, health());
        let a = assess(
            &spec(AgentManagement::Manual),
            &[node("n")],
            &[],
            std::slice::from_ref(&forged),
            at,
        );
        assert!(!a.nodes[0].covered);
        match &a.nodes[0].issue {
            Some(CoverageIssue::AgentNotReporting { detail }) => {
                assert!(detail.contains("in the future"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((a.totals.covered, a.totals.healthy), (0, 0));
        // Nor does it hide the node's real, believable heartbeat.
        let a = assess(
            &spec(AgentManagement::Manual),
            &[node("n")],
            &[],
            &[forged, hb("n", 5, health())],
            at,
        );
        assert!(a.nodes[0].covered);
        assert_eq!(a.nodes[0].issue, None);
        // Clock skew within the allowance still counts.
        let a = assess(
            &spec(AgentManagement::Manual),
            &[node("n")],
            &[],
            &[hb("n", -MAX_CLOCK_SKEW_SECONDS, health())],
            at,
        );
        assert!(a.nodes[0].covered);
        let a = assess(
            &spec(AgentManagement::Manual),
            &[node("n")],
            &[],
            &[hb("n", -MAX_CLOCK_SKEW_SECONDS - 1, health())],
            at,
        );
        assert!(!a.nodes[0].covered);
    }
}
