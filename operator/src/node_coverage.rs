//! Per-node coverage objects (`NodeCoverage`, one per node): what to write, what to delete, which
//! changes are transitions worth an Event, and the short list of unhealthy nodes a policy status
//! keeps.
//!
//! Pure: the controller passes in the assessment, what it knows of each node's object and the
//! time. An object is written only when something a person looks at changes (status, issue type,
//! agent, kernel, hooks, policy), so a Lease renewal that changes nothing writes nothing. The
//! issue's detail can change with every renewal (the percentage of dropped events), so a change
//! of the detail alone is written at most every [`DETAIL_REFRESH`].

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use vigil_crds::{
    NodeCoverageSpec, limits,
    policy::{CoverageStatus, CoverageSummary, UnhealthyNode},
};

use crate::coverage::{Assessment, NodeAssessment};

/// How long a write is trusted over the object cache, which learns of it through its watch a
/// moment later. After that the cache is the truth: an object someone deleted or edited is
/// written again.
pub const STORE_LAG: Duration = Duration::from_secs(60);
/// Least time between two writes of a node's object that only change the issue's detail.
pub const DETAIL_REFRESH: Duration = Duration::from_secs(300);
/// Transitions of one reconcile recorded as one Event each; the rest are summed up in one Event
/// per reason, so a zone going down records tens of Events, not thousands.
pub const MAX_NODE_EVENTS: usize = 50;
/// Node names a summary Event names.
const SUMMARY_NAMES: usize = 10;

/// What the operator last did to one node's object.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Wrote this spec, which the cache may not have yet.
    Applied(NodeCoverageSpec),
    /// Wrote it for this policy longer than [`STORE_LAG`] ago: the cache has it (or someone
    /// changed it since), so only the time is kept.
    Settled {
        /// The policy it was written for.
        policy: String,
    },
    /// Deleted it.
    Deleted,
}

/// What the operator last did to one node's object, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// What.
    pub what: Write,
    /// When.
    pub at: Timestamp,
}

/// The operator's own writes of `NodeCoverage` objects, by node. One small entry per node it
/// reports (the spec itself only until the cache has caught up; deletions are forgotten once
/// the cache agrees), so it is bounded by the node count.
#[derive(Debug, Default)]
pub struct WriteLog {
    by_node: HashMap<String, Written>,
}

impl WriteLog {
    /// The last write for `node`.
    pub fn get(&self, node: &str) -> Option<&Written> {
        self.by_node.get(node)
    }

    /// Records that `spec` was written for `node` at `at` (`None`: the object was deleted).
    pub fn record(&mut self, node: &str, spec: Option<NodeCoverageSpec>, at: Timestamp) {
        let what = spec.map_or(Write::Deleted, Write::Applied);
        self.by_node.insert(node.to_owned(), Written { what, at });
    }

    /// Nodes with an entry.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.by_node.keys().map(String::as_str)
    }

    /// Drops the specs written longer than [`STORE_LAG`] ago (keeping when), and forgets
    /// deletions that the cache has seen (`in_cache` is false for the node) or that are that old.
    pub fn prune(&mut self, now: Timestamp, in_cache: impl Fn(&str) -> bool) {
        self.by_node.retain(|node, w| {
            let settled = age(w.at, now) >= STORE_LAG;
            match &w.what {
                Write::Applied(spec) if settled => {
                    w.what = Write::Settled {
                        policy: spec.policy.clone(),
                    };
                    true
                }
                Write::Applied(_) | Write::Settled { .. } => true,
                Write::Deleted => in_cache(node) && !settled,
            }
        });
    }

    /// Forgets the writes for `policy`, which is gone (its objects are garbage-collected with it).
    pub fn forget_policy(&mut self, policy: &str) {
        self.by_node.retain(|_, w| match &w.what {
            Write::Applied(spec) => spec.policy != policy,
            Write::Settled { policy: p } => p != policy,
            Write::Deleted => true,
        });
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    /// Entries that still hold a spec (written less than [`STORE_LAG`] ago, as of the last
    /// [`WriteLog::prune`]).
    pub fn holding_specs(&self) -> usize {
        self.by_node
            .values()
            .filter(|w| matches!(w.what, Write::Applied(_)))
            .count()
    }
}

fn age(then: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(then.duration_until(now)).unwrap_or(Duration::ZERO)
}

/// What the operator knows of one node's object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// The object's spec as far as the operator knows, `None` when there is none.
    pub spec: Option<&'a NodeCoverageSpec>,
    /// When the operator last wrote it, if it did since it started.
    pub written_at: Option<Timestamp>,
}

/// What is known of a node's object: what the operator wrote, while the cache may not have it yet
/// ([`STORE_LAG`]); else what the cache holds.
pub fn known<'a>(
    written: Option<&'a Written>,
    cached: Option<&'a NodeCoverageSpec>,
    now: Timestamp,
) -> Known<'a> {
    let written_at = written
        .filter(|w| !matches!(w.what, Write::Deleted))
        .map(|w| w.at);
    let recent = written.filter(|w| age(w.at, now) < STORE_LAG);
    let spec = match recent.map(|w| &w.what) {
        Some(Write::Applied(spec)) => Some(spec),
        Some(Write::Deleted) => None,
        Some(Write::Settled { .. }) | None => cached,
    };
    Known { spec, written_at }
}

/// A change of one node's coverage worth telling people.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Node name.
    pub node: String,
    /// New status.
    pub to: CoverageStatus,
    /// New issue type, when unhealthy.
    pub issue_type: Option<String>,
    /// New issue text, when unhealthy.
    pub issue: Option<String>,
    /// Whether the node is new to the policy.
    pub new_node: bool,
}

/// The decision for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    /// Node name (the object's name).
    pub node: String,
    /// The object as it stands after this reconcile: the new content when `write`, else what is
    /// there (whose detail may lag by up to [`DETAIL_REFRESH`]).
    pub spec: NodeCoverageSpec,
    /// Whether to write it.
    pub write: bool,
    /// The transition to report once the write succeeded.
    pub transition: Option<Transition>,
}

/// Everything one reconcile does to the `NodeCoverage` objects of one policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// One per compatible node, sorted by name.
    pub nodes: Vec<NodePlan>,
    /// Nodes whose object belongs to the policy but that left it, sorted.
    pub delete: Vec<String>,
}

impl Plan {
    /// Objects to write.
    pub fn writes(&self) -> impl Iterator<Item = &NodePlan> {
        self.nodes.iter().filter(|n| n.write)
    }
}

fn desired(
    policy: &str,
    a: &NodeAssessment,
    previous: Option<&NodeCoverageSpec>,
    now: Timestamp,
) -> NodeCoverageSpec {
    let status = a.status();
    let issue_type = a.issue.as_ref().map(|i| i.issue_type().to_owned());
    let since = previous
        .filter(|p| p.status == status && p.issue_type == issue_type)
        .map_or(Time(now), |p| p.since.clone());
    let mut hooks = a.active_hooks.clone();
    if let Some(h) = hooks.as_mut() {
        h.sort();
        h.dedup();
    }
    let max_hooks = usize::try_from(limits::ACTIVE_HOOKS).unwrap_or(usize::MAX);
    NodeCoverageSpec {
        policy: policy.to_owned(),
        status,
        covered: a.covered,
        issue_type,
        issue: a
            .issue
            .as_ref()
            .map(|i| limits::clip(&i.to_string(), limits::ISSUE)),
        since,
        agent_version: a
            .agent_version
            .as_deref()
            .map(|v| limits::clip(v, limits::VERSION)),
        kernel_version: a
            .kernel_version
            .as_deref()
            .map(|v| limits::clip(v, limits::VERSION)),
        active_hook_count: hooks
            .as_ref()
            .map(|h| u32::try_from(h.len()).unwrap_or(u32::MAX)),
        active_hooks: hooks
            .unwrap_or_default()
            .iter()
            .take(max_hooks)
            .map(|h| limits::clip(h, limits::HOOK_NAME))
            .collect(),
    }
}

/// Whether `desired` must be written over `previous`: it is new, something other than the
/// issue's detail changed, or the detail changed and the last write is [`DETAIL_REFRESH`] old.
fn needs_write(
    previous: Option<&NodeCoverageSpec>,
    desired: &NodeCoverageSpec,
    written_at: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    let Some(p) = previous else { return true };
    if p == desired {
        return false;
    }
    let same_but_detail = NodeCoverageSpec {
        issue: desired.issue.clone(),
        ..p.clone()
    } == *desired;
    !same_but_detail || written_at.is_none_or(|at| age(at, now) >= DETAIL_REFRESH)
}

/// Plans the `NodeCoverage` objects of `policy` from its `assessment`. `known` tells what is
/// known of a node's object ([`known`]); `reported` lists the nodes that have, or may have, an
/// object (the cache and the write log), from which those of this policy that are no longer
/// assessed are deleted.
pub fn plan<'a>(
    policy: &str,
    assessment: &Assessment,
    known: impl Fn(&str) -> Known<'a>,
    reported: impl IntoIterator<Item = &'a str>,
    now: Timestamp,
) -> Plan {
    let mut out = Plan::default();
    for a in &assessment.nodes {
        let k = known(&a.node);
        // An object of another policy is a node new to this one.
        let previous = k.spec.filter(|s| s.policy == policy);
        let spec = desired(policy, a, previous, now);
        let write = needs_write(k.spec, &spec, k.written_at, now);
        let transition = match previous {
            Some(p) if p.status == spec.status && p.issue_type == spec.issue_type => None,
            _ => Some(Transition {
                node: a.node.clone(),
                to: spec.status,
                issue_type: spec.issue_type.clone(),
                issue: spec.issue.clone(),
                new_node: previous.is_none(),
            }),
        };
        let spec = match k.spec {
            Some(p) if !write => p.clone(),
            _ => spec,
        };
        out.nodes.push(NodePlan {
            node: a.node.clone(),
            spec,
            write,
            transition,
        });
    }
    let assessed: BTreeSet<&str> = assessment.nodes.iter().map(|a| a.node.as_str()).collect();
    let gone: BTreeSet<&str> = reported
        .into_iter()
        .filter(|n| !assessed.contains(n))
        .filter(|n| known(n).spec.is_some_and(|s| s.policy == policy))
        .collect();
    out.delete = gone.into_iter().map(str::to_owned).collect();
    out
}

/// The coverage summary of a policy status: the counts and the first
/// [`limits::UNHEALTHY_LISTED`] unhealthy nodes by name, from the objects as they stand.
pub fn summary(assessment: &Assessment, nodes: &[NodePlan]) -> CoverageSummary {
    let max = usize::try_from(limits::UNHEALTHY_LISTED).unwrap_or(usize::MAX);
    let mut unhealthy: Vec<&NodePlan> = nodes
        .iter()
        .filter(|n| n.spec.status == CoverageStatus::Unhealthy)
        .collect();
    unhealthy.sort_by(|a, b| a.node.cmp(&b.node));
    let not_listed = unhealthy.len().saturating_sub(max);
    let t = assessment.totals;
    CoverageSummary {
        compatible_nodes: t.compatible,
        covered_nodes: t.covered,
        healthy_nodes: t.healthy,
        unhealthy_nodes: t.unhealthy,
        unhealthy: unhealthy
            .into_iter()
            .take(max)
            .map(|n| UnhealthyNode {
                node_name: n.node.clone(),
                issue: n.spec.issue.clone().unwrap_or_default(),
                since: Some(n.spec.since.clone()),
            })
            .collect(),
        unhealthy_not_listed: u32::try_from(not_listed).unwrap_or(u32::MAX),
    }
}

/// One Event to record on the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// Warning for an issue, else Normal.
    pub warning: bool,
    /// `NodeHealthy` or the issue type.
    pub reason: String,
    /// For people.
    pub note: String,
}

fn reason(t: &Transition) -> String {
    match t.to {
        CoverageStatus::Healthy => "NodeHealthy".to_owned(),
        CoverageStatus::Unhealthy => t
            .issue_type
            .clone()
            .unwrap_or_else(|| "NodeUnhealthy".to_owned()),
    }
}

/// The Events of `transitions`: one each for the first `max`, then one per reason for the rest,
/// naming the first few nodes.
pub fn events(transitions: &[&Transition], max: usize) -> Vec<NodeEvent> {
    let mut out: Vec<NodeEvent> = transitions
        .iter()
        .take(max)
        .map(|t| NodeEvent {
            warning: t.to == CoverageStatus::Unhealthy,
            reason: reason(t),
            note: match &t.issue {
                Some(issue) => format!("node {}: {issue}", t.node),
                None => format!("node {} is covered and healthy", t.node),
            },
        })
        .collect();
    let mut rest: BTreeMap<String, (bool, Vec<&str>)> = BTreeMap::new();
    for t in transitions.iter().skip(max) {
        rest.entry(reason(t))
            .or_insert_with(|| (t.to == CoverageStatus::Unhealthy, Vec::new()))
            .1
            .push(&t.node);
    }
    for (reason, (warning, nodes)) in rest {
        let shown = nodes
            .iter()
            .take(SUMMARY_NAMES)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if nodes.len() > SUMMARY_NAMES {
            ", …"
        } else {
            ""
        };
        let state = if warning {
            format!("turned Unhealthy ({reason})")
        } else {
            "turned Healthy".to_owned()
        };
        out.push(NodeEvent {
            warning,
            note: format!(
                "{} more nodes {state}: {shown}{more}; see kubectl get ncov",
                nodes.len()
            ),
            reason,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use vigil_crds::coverage::CoverageIssue;

    use super::*;
    use crate::coverage::Totals;

    const T0: i64 = 1_800_000_000;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(T0 + s).unwrap()
    }

    fn healthy(node: &str) -> NodeAssessment {
        NodeAssessment {
            node: node.into(),
            issue: None,
            covered: true,
            agent_version: Some("0.1.0".into()),
            kernel_version: Some("6.8.0".into()),
            active_hooks: Some(vec!["exec".into(), "connect".into()]),
        }
    }

    fn dropping(node: &str, percent: f64) -> NodeAssessment {
        NodeAssessment {
            issue: Some(CoverageIssue::EventsDropped {
                percent,
                threshold: 1.0,
            }),
            ..healthy(node)
        }
    }

    fn silent(node: &str) -> NodeAssessment {
        NodeAssessment {
            issue: Some(CoverageIssue::AgentNotReporting {
                detail: "agent has never reported".into(),
            }),
            covered: false,
            agent_version: None,
            active_hooks: None,
            ..healthy(node)
        }
    }

    fn assessment(nodes: Vec<NodeAssessment>) -> Assessment {
        let unhealthy = nodes.iter().filter(|n| n.issue.is_some()).count() as u32;
        Assessment {
            totals: Totals {
                compatible: nodes.len() as u32,
                covered: nodes.iter().filter(|n| n.covered).count() as u32,
                healthy: nodes.len() as u32 - unhealthy,
                unhealthy,
            },
            nodes,
        }
    }

    /// Plans against `objects` (node to spec, as cached) with no write log.
    fn plan_over(
        policy: &str,
        a: &Assessment,
        objects: &BTreeMap<String, NodeCoverageSpec>,
        written_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Plan {
        plan(
            policy,
            a,
            |n| Known {
                spec: objects.get(n),
                written_at,
            },
            objects.keys().map(String::as_str),
            now,
        )
    }

    fn apply(objects: &mut BTreeMap<String, NodeCoverageSpec>, p: &Plan) {
        for n in p.writes() {
            objects.insert(n.node.clone(), n.spec.clone());
        }
        for d in &p.delete {
            objects.remove(d);
        }
    }

    #[test]
    fn first_sight_writes_every_node_as_a_transition() {
        let a = assessment(vec![healthy("a"), silent("b")]);
        let p = plan_over("p", &a, &BTreeMap::new(), None, at(0));
        assert_eq!(p.writes().count(), 2);
        let b = &p.nodes[1].spec;
        assert_eq!(
            (b.status, b.issue_type.as_deref(), b.covered),
            (CoverageStatus::Unhealthy, Some("AgentNotReporting"), false)
        );
        assert_eq!(b.since, Time(at(0)));
        assert_eq!(p.nodes[0].spec.active_hooks, ["connect", "exec"], "sorted");
        assert_eq!(p.nodes[0].spec.active_hook_count, Some(2));
        assert!(
            p.nodes
                .iter()
                .all(|n| n.transition.as_ref().unwrap().new_node)
        );
    }

    #[test]
    fn only_what_people_look_at_causes_a_write() {
        let mut objects = BTreeMap::new();
        let a = assessment(vec![healthy("a"), dropping("b", 2.0)]);
        let planned = plan_over("p", &a, &objects, None, at(0));
        apply(&mut objects, &planned);

        // (case, assessment, seconds since the last write, writes, transition)
        let mut newer_agent = healthy("a");
        newer_agent.agent_version = Some("0.2.0".into());
        let mut fewer_hooks = healthy("a");
        fewer_hooks.active_hooks = Some(vec!["exec".into()]);
        let table = [
            ("the same again", healthy("a"), 10, false, false),
            ("new agent version", newer_agent, 10, true, false),
            ("a hook lost", fewer_hooks, 10, true, false),
            ("turned unhealthy", silent("a"), 10, true, true),
            (
                "detail only, soon after",
                dropping("b", 3.0),
                10,
                false,
                false,
            ),
            (
                "detail only, 5 minutes on",
                dropping("b", 3.0),
                300,
                true,
                false,
            ),
            ("the same detail", dropping("b", 2.0), 900, false, false),
            ("recovered", healthy("b"), 10, true, true),
        ];
        for (case, node, since_write, writes, transition) in table {
            let a = assessment(vec![node]);
            let p = plan(
                "p",
                &a,
                |n| Known {
                    spec: objects.get(n),
                    written_at: Some(at(0)),
                },
                [],
                at(since_write),
            );
            assert_eq!(p.nodes[0].write, writes, "{case}");
            assert_eq!(p.nodes[0].transition.is_some(), transition, "{case}");
            if !writes {
                assert_eq!(
                    Some(&p.nodes[0].spec),
                    objects.get(&p.nodes[0].node),
                    "{case}: kept as it is"
                );
            }
        }
    }

    #[test]
    fn since_moves_only_with_status_or_issue_type() {
        let mut objects = BTreeMap::new();
        let a = assessment(vec![dropping("a", 2.0)]);
        let planned = plan_over("p", &a, &objects, None, at(0));
        apply(&mut objects, &planned);
        let a = assessment(vec![dropping("a", 5.0)]);
        let p = plan_over("p", &a, &objects, Some(at(0)), at(600));
        assert!(p.nodes[0].write);
        assert_eq!(p.nodes[0].spec.since, Time(at(0)));
        apply(&mut objects, &p);
        let a = assessment(vec![silent("a")]);
        let p = plan_over("p", &a, &objects, Some(at(600)), at(700));
        assert_eq!(p.nodes[0].spec.since, Time(at(700)));
    }

    #[test]
    fn nodes_that_left_the_policy_are_deleted_other_policies_objects_kept() {
        let mut objects = BTreeMap::new();
        let a = assessment(vec![healthy("a"), healthy("b")]);
        let planned = plan_over("p", &a, &objects, None, at(0));
        apply(&mut objects, &planned);
        let other = assessment(vec![healthy("c")]);
        let planned = plan_over("q", &other, &objects, None, at(0));
        apply(&mut objects, &planned);

        let a = assessment(vec![healthy("a")]);
        let p = plan_over("p", &a, &objects, Some(at(0)), at(10));
        assert_eq!(p.delete, ["b"]);
        assert_eq!(p.writes().count(), 0);

        // Node a moves to policy q: new to q (a transition), and p no longer deletes it.
        let q = plan_over(
            "q",
            &assessment(vec![healthy("a"), healthy("c")]),
            &objects,
            None,
            at(20),
        );
        let moved = &q.nodes[0];
        assert!(moved.write && moved.transition.as_ref().unwrap().new_node);
        apply(&mut objects, &q);
        assert!(plan_over("p", &assessment(vec![]), &objects, None, at(30)).delete == ["b"]);
    }

    #[test]
    fn the_write_log_covers_the_cache_until_it_catches_up() {
        let spec = |status| NodeCoverageSpec {
            policy: "p".into(),
            status,
            covered: true,
            issue_type: None,
            issue: None,
            since: Time(at(0)),
            agent_version: None,
            kernel_version: None,
            active_hook_count: None,
            active_hooks: vec![],
        };
        let old = spec(CoverageStatus::Unhealthy);
        let new = spec(CoverageStatus::Healthy);
        let mut log = WriteLog::default();
        log.record("n", Some(new.clone()), at(0));
        // (case, cached, now, known)
        let table = [
            ("cache behind", Some(&old), 5, Some(&new)),
            ("cache caught up", Some(&new), 5, Some(&new)),
            ("cache without it, just written", None, 5, Some(&new)),
            ("deleted by someone since", None, 120, None),
            ("edited by someone since", Some(&old), 120, Some(&old)),
        ];
        for (case, cached, now, want) in table {
            let k = known(log.get("n"), cached, at(now));
            assert_eq!(k.spec, want, "{case}");
            assert_eq!(k.written_at, Some(at(0)), "{case}");
        }
        // Past STORE_LAG the spec is dropped, the time kept (for DETAIL_REFRESH).
        log.prune(at(30), |_| true);
        assert_eq!(log.holding_specs(), 1);
        log.prune(at(60), |_| true);
        assert_eq!((log.len(), log.holding_specs()), (1, 0));
        let k = known(log.get("n"), Some(&old), at(61));
        assert_eq!((k.spec, k.written_at), (Some(&old), Some(at(0))));
        // A deletion hides the cached object until the cache sees it, then is forgotten.
        log.record("n", None, at(200));
        assert_eq!(known(log.get("n"), Some(&new), at(201)).spec, None);
        assert_eq!(known(log.get("n"), Some(&new), at(201)).written_at, None);
        log.prune(at(201), |_| true);
        assert_eq!(log.len(), 1);
        log.prune(at(202), |_| false);
        assert!(log.is_empty());
        // A policy's entries go with it.
        log.record("a", Some(new.clone()), at(300));
        log.record("b", Some(new.clone()), at(300));
        log.prune(at(400), |_| true);
        log.record("b", Some(new.clone()), at(400));
        log.forget_policy("p");
        assert!(log.is_empty());
    }

    #[test]
    fn the_summary_lists_at_most_fifty_unhealthy_nodes_by_name() {
        let nodes: Vec<NodeAssessment> = (0..5000)
            .map(|i| {
                let name = format!("node-{i:05}");
                if i % 10 == 0 {
                    silent(&name)
                } else {
                    healthy(&name)
                }
            })
            .collect();
        let a = assessment(nodes);
        let p = plan_over("p", &a, &BTreeMap::new(), None, at(0));
        let s = summary(&a, &p.nodes);
        assert_eq!((s.compatible_nodes, s.unhealthy_nodes), (5000, 500));
        assert_eq!(s.unhealthy.len(), 50);
        assert_eq!(s.unhealthy_not_listed, 450);
        assert_eq!(s.unhealthy[0].node_name, "node-00000");
        assert_eq!(s.unhealthy[49].node_name, "node-00490");
        assert_eq!(
            s.unhealthy[0].issue,
            "AgentNotReporting: agent has never reported"
        );
        let bytes = serde_json::to_vec(&s).unwrap().len();
        assert!(bytes < 8 * 1024, "{bytes} bytes");
    }

    #[test]
    fn long_texts_are_cut_to_the_schema_bounds() {
        let mut n = silent("a");
        n.issue = Some(CoverageIssue::AgentFailed {
            detail: "x".repeat(5000),
        });
        n.active_hooks = Some((0..500).map(|i| format!("hook-{i:03}")).collect());
        let p = plan_over("p", &assessment(vec![n]), &BTreeMap::new(), None, at(0));
        let s = &p.nodes[0].spec;
        assert_eq!(
            s.issue.as_ref().unwrap().chars().count(),
            limits::ISSUE as usize
        );
        assert_eq!(s.active_hooks.len(), limits::ACTIVE_HOOKS as usize);
        assert_eq!(s.active_hook_count, Some(500));
    }

    #[test]
    fn events_beyond_the_cap_are_summed_up_per_reason() {
        let t = |i: usize, to| Transition {
            node: format!("n{i}"),
            to,
            issue_type: (to == CoverageStatus::Unhealthy).then(|| "AgentNotReporting".into()),
            issue: (to == CoverageStatus::Unhealthy)
                .then(|| "AgentNotReporting: last heartbeat at x".into()),
            new_node: false,
        };
        let ts: Vec<Transition> = (0..60)
            .map(|i| {
                t(
                    i,
                    if i % 2 == 0 {
                        CoverageStatus::Unhealthy
                    } else {
                        CoverageStatus::Healthy
                    },
                )
            })
            .collect();
        let refs: Vec<&Transition> = ts.iter().collect();
        let evs = events(&refs, 50);
        assert_eq!(evs.len(), 52);
        assert_eq!(evs[0].reason, "AgentNotReporting");
        assert!(evs[0].warning);
        assert_eq!(
            evs[0].note,
            "node n0: AgentNotReporting: last heartbeat at x"
        );
        assert_eq!(evs[1].note, "node n1 is covered and healthy");
        let summed: Vec<(&str, &str)> = evs[50..]
            .iter()
            .map(|e| (e.reason.as_str(), e.note.as_str()))
            .collect();
        assert_eq!(
            summed,
            [
                (
                    "AgentNotReporting",
                    "5 more nodes turned Unhealthy (AgentNotReporting): n50, n52, n54, n56, n58; see kubectl get ncov"
                ),
                (
                    "NodeHealthy",
                    "5 more nodes turned Healthy: n51, n53, n55, n57, n59; see kubectl get ncov"
                ),
            ]
        );
        assert_eq!(events(&refs[..3], 50).len(), 3);
    }
}
