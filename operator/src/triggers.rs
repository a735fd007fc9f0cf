//! What wakes the policy controller. A change of a node, an agent pod, a heartbeat Lease or an
//! agent DaemonSet wakes only the policy it concerns, and only when it changes something the
//! coverage assessment reads: a Lease renewal that carries the same health wakes nothing, and
//! neither does a node status update that only moves heartbeat times.
//!
//! Time passing can make a node Unhealthy without any event (its Lease expires); each policy
//! requeues itself for that (see `policy_controller`). A Lease renewed again after a gap that
//! may have let it expire does wake its policy, so a recovery shows at once.
//!
//! [`ChangeFilter`] remembers a digest per object (a few dozen bytes), [`coalesce`] merges the
//! wake-ups of a short period into one per policy. Unlike kube's debounce, which restarts its wait
//! on every new trigger and so never fires while triggers keep coming (5,000 nodes renew a Lease
//! every 20 seconds, 250 a second), it fires at the end of each period.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    time::Duration,
};

use futures::{Stream, StreamExt, stream};
use k8s_openapi::api::{
    apps::v1::DaemonSet,
    coordination::v1::Lease,
    core::v1::{Node, Pod},
};
use kube::{ResourceExt, runtime::watcher};
use vigil_crds::{
    RuntimeMonitoringPolicy,
    lease::{NODE_LABEL, POLICY_LABEL, read_heartbeat},
};

use crate::{
    Stores,
    facts::{AgentPodFacts, NodeFacts},
};

/// Period over which [`coalesce`] merges wake-ups.
pub const COALESCE_PERIOD: Duration = Duration::from_secs(2);
/// Lease validity assumed when a Lease does not say.
const DEFAULT_LEASE_SECONDS: i64 = 60;

/// What a [`ChangeFilter`] keeps of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Hash of what the coverage assessment reads from the object.
    pub digest: u64,
    /// What the object concerns: a node name (nodes, Leases) or a policy name (pods,
    /// DaemonSets).
    pub subject: String,
    /// Renewal time of a Lease, in seconds.
    pub renewed: Option<i64>,
    /// Validity of a Lease renewal, in seconds.
    pub valid_for: i64,
}

impl Seen {
    /// A plain digest of an object that is not a Lease.
    pub fn of(digest: u64, subject: String) -> Self {
        Self {
            digest,
            subject,
            renewed: None,
            valid_for: DEFAULT_LEASE_SECONDS,
        }
    }

    /// Whether going from `self` to `new` may change some node's coverage.
    fn matters(&self, new: &Seen) -> bool {
        let late = match (self.renewed, new.renewed) {
            // A gap longer than half the validity may have let the Lease expire meanwhile.
            (Some(old), Some(now)) => now - old > new.valid_for / 2,
            (None, None) => false,
            _ => true,
        };
        self.digest != new.digest || self.subject != new.subject || late
    }
}

/// Digests of the objects of one watch, by object name, to tell changes that matter.
#[derive(Debug, Default)]
pub struct ChangeFilter {
    seen: HashMap<String, Seen>,
    /// Names listed since the watch restarted, to find objects deleted while it was down.
    relisting: Option<HashSet<String>>,
}

impl ChangeFilter {
    /// The subjects `event` may change, each once: empty when nothing the assessment reads
    /// changed. `read` names the object and digests it (`None`: ignore the object).
    pub fn on_event<K>(
        &mut self,
        event: &watcher::Event<K>,
        read: impl Fn(&K) -> Option<(String, Seen)>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        match event {
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                if let Some((name, new)) = read(obj) {
                    if let (Some(listed), watcher::Event::InitApply(_)) =
                        (self.relisting.as_mut(), event)
                    {
                        listed.insert(name.clone());
                    }
                    match self.seen.get(&name) {
                        Some(old) if !old.matters(&new) => {}
                        Some(old) => {
                            out.push(old.subject.clone());
                            out.push(new.subject.clone());
                        }
                        None => out.push(new.subject.clone()),
                    }
                    self.seen.insert(name, new);
                }
            }
            watcher::Event::Delete(obj) => {
                if let Some((name, _)) = read(obj)
                    && let Some(old) = self.seen.remove(&name)
                {
                    out.push(old.subject);
                }
            }
            watcher::Event::Init => self.relisting = Some(HashSet::new()),
            watcher::Event::InitDone => {
                if let Some(listed) = self.relisting.take() {
                    let gone: Vec<String> = self
                        .seen
                        .keys()
                        .filter(|k| !listed.contains(*k))
                        .cloned()
                        .collect();
                    for name in gone {
                        if let Some(old) = self.seen.remove(&name) {
                            out.push(old.subject);
                        }
                    }
                }
            }
        }
        let mut unique = HashSet::new();
        out.retain(|s| unique.insert(s.clone()));
        out
    }

    /// Objects remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no object is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A node: what placement and coverage read (labels, readiness, kernel, OS); its subject is
/// its name.
pub fn node_seen(node: &Node) -> Option<(String, Seen)> {
    let f = NodeFacts::from_node(node)?;
    let digest = hash_of(&(&f.labels, &f.not_ready, &f.kernel_version, f.linux));
    Some((f.name.clone(), Seen::of(digest, f.name)))
}

/// An agent pod: its state as coverage reads it; its subject is its policy (label
/// `vigil.dev/policy`).
pub fn pod_seen(pod: &Pod) -> Option<(String, Seen)> {
    let policy = pod.labels().get(POLICY_LABEL)?.clone();
    let f = AgentPodFacts::from_pod(pod);
    let digest = hash_of(&(
        &f.node,
        &f.phase,
        &f.unschedulable,
        &f.waiting,
        f.restarts,
        &f.last_termination,
    ));
    Some((pod.name_any(), Seen::of(digest, policy)))
}

/// A heartbeat Lease: the health as coverage reads it, not the rates that change with every
/// renewal (only whether drops exceed `max_dropped_percent` of the Lease's policy); its subject is
/// its node.
pub fn lease_seen(
    lease: &Lease,
    max_dropped_percent: impl Fn(Option<&str>) -> f64,
) -> Option<(String, Seen)> {
    let node = lease.labels().get(NODE_LABEL)?.clone();
    let spec = lease.spec.as_ref();
    let digest = match read_heartbeat(lease) {
        Ok(h) => {
            let m = &h.health;
            let over = m.dropped_percent() > max_dropped_percent(h.policy.as_deref());
            let failures: Vec<(&str, &str)> = m
                .probe_failures
                .iter()
                .map(|f| (f.probe.as_str(), f.error.as_str()))
                .collect();
            hash_of(&(
                &m.agent_version,
                &m.kernel_version,
                m.btf_available,
                m.sensors_running,
                &m.active_hooks,
                failures,
                m.last_error.as_ref().filter(|_| !m.sensors_running),
                over,
            ))
        }
        // A Lease off the contract counts as no heartbeat; its digest changes when it is fixed.
        Err(_) => hash_of(&"invalid"),
    };
    let seen = Seen {
        digest,
        subject: node,
        renewed: spec
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.as_second()),
        valid_for: spec
            .and_then(|s| s.lease_duration_seconds)
            .map_or(DEFAULT_LEASE_SECONDS, i64::from),
    };
    Some((lease.name_any(), seen))
}

/// An agent DaemonSet: its generation and rollout counts; its subject is the policy that owns it.
pub fn daemon_set_seen(ds: &DaemonSet) -> Option<(String, Seen)> {
    let kind = <RuntimeMonitoringPolicy as kube::Resource>::kind(&());
    let policy = ds
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == kind)?
        .name
        .clone();
    let st = ds.status.as_ref();
    let digest = hash_of(&(
        ds.metadata.generation,
        st.map(|s| s.desired_number_scheduled),
        st.and_then(|s| s.updated_number_scheduled),
        st.and_then(|s| s.number_available),
        st.and_then(|s| s.observed_generation),
    ));
    Some((ds.name_any(), Seen::of(digest, policy)))
}

/// The policies whose coverage a change on `node` may concern: those selecting it now, and the
/// one its `NodeCoverage` object names (which may have just lost it).
pub fn policies_for_node(node: &str, stores: &Stores) -> BTreeSet<String> {
    use kube::runtime::reflector::ObjectRef;
    let mut out = BTreeSet::new();
    if let Some(facts) = stores
        .nodes
        .get(&ObjectRef::new(node))
        .and_then(|n| NodeFacts::from_node(&n))
        .filter(|f| f.linux)
    {
        for guard in stores.policies.state() {
            if let Ok(p) = &guard.0
                && p.spec.selects(&facts.labels)
            {
                out.insert(p.name_any());
            }
        }
    }
    if let Some(guard) = stores.node_coverage.get(&ObjectRef::new(node))
        && let Ok(c) = &guard.0
    {
        out.insert(c.spec.policy.clone());
    }
    out
}

/// The threshold of dropped events of `policy`, or the default when it is unknown.
pub fn max_dropped_percent(stores: &Stores, policy: Option<&str>) -> f64 {
    use kube::runtime::reflector::ObjectRef;
    policy
        .and_then(|p| stores.policies.get(&ObjectRef::new(p)))
        .and_then(|g| {
            g.0.as_ref()
                .ok()
                .map(|p| p.spec.coverage.max_dropped_events_percent)
        })
        .unwrap_or_else(|| vigil_crds::policy::CoverageSpec::default().max_dropped_events_percent)
}

/// Emits each distinct item of `input` once per `period`: the first item opens a period, the
/// items that arrive during it are merged, and all are emitted, in arrival order, when it ends.
/// A steady stream of triggers thus yields one wake-up per period, never none.
pub fn coalesce<T>(
    input: impl Stream<Item = T> + Send + 'static,
    period: Duration,
) -> impl Stream<Item = T> + Send
where
    T: Eq + Hash + Clone + Send + 'static,
{
    struct State<S, T> {
        input: std::pin::Pin<Box<S>>,
        pending: Vec<T>,
        members: HashSet<T>,
        ends: Option<tokio::time::Instant>,
        done: bool,
    }
    impl<S, T: Eq + Hash + Clone> State<S, T> {
        fn add(&mut self, item: T, period: Duration) {
            if self.members.insert(item.clone()) {
                self.pending.push(item);
            }
            self.ends
                .get_or_insert_with(|| tokio::time::Instant::now() + period);
        }
    }
    let state = State {
        input: Box::pin(input),
        pending: Vec::new(),
        members: HashSet::new(),
        ends: None,
        done: false,
    };
    stream::unfold(state, move |mut st| async move {
        loop {
            match st.ends {
                None if st.done => return None,
                None => match st.input.next().await {
                    Some(item) => st.add(item, period),
                    None => st.done = true,
                },
                Some(ends) => {
                    tokio::select! {
                        item = st.input.next(), if !st.done => match item {
                            Some(item) => st.add(item, period),
                            None => st.done = true,
                        },
                        () = tokio::time::sleep_until(ends) => {
                            st.ends = None;
                            st.members.clear();
                            let batch = std::mem::take(&mut st.pending);
                            return Some((batch, st));
                        }
                    }
                }
            }
        }
    })
    .flat_map(stream::iter)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::{
        api::{
            apps::v1::DaemonSetStatus,
            core::v1::{NodeCondition, NodeStatus, NodeSystemInfo, PodStatus},
        },
        apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference},
        jiff::Timestamp,
    };
    use vigil_crds::lease::{AgentHealth, HEALTH_SCHEMA_VERSION, Renewal, agent_lease};

    use super::*;

    const T0: i64 = 1_800_000_000;

    fn node(name: &str, pool: &str, ready: bool, heartbeat: i64) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([
                    ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                    ("pool".to_owned(), pool.to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_heartbeat_time: Some(
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            Timestamp::from_second(T0 + heartbeat).unwrap(),
                        ),
                    ),
                    ..NodeCondition::default()
                }]),
                node_info: Some(NodeSystemInfo {
                    kernel_version: "6.8.0".into(),
                    operating_system: "linux".into(),
                    ..NodeSystemInfo::default()
                }),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    fn health() -> AgentHealth {
        AgentHealth {
            schema_version: HEALTH_SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            kernel_version: "6.8.0".into(),
            btf_available: true,
            active_hooks: vec!["exec".into()],
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

    fn lease(node: &str, at: i64, health: &AgentHealth) -> Lease {
        agent_lease(
            &Renewal {
                node,
                namespace: "vigil-system",
                policy: "p",
                holder: "agent",
                renew_time: MicroTime(Timestamp::from_second(T0 + at).unwrap()),
                lease_duration_seconds: 60,
            },
            health,
        )
        .unwrap()
    }

    fn lease_event(f: &mut ChangeFilter, ev: watcher::Event<Lease>) -> Vec<String> {
        f.on_event(&ev, |l| lease_seen(l, |_| 1.0))
    }

    #[test]
    fn lease_renewals_wake_only_on_health_changes_and_late_renewals() {
        let mut f = ChangeFilter::default();
        let mut busy = health();
        busy.events_per_second = 9000.0;
        busy.dropped_events_total = 7;
        let mut dropping = health();
        dropping.dropped_events_per_second = 5.0;
        let mut lost_hook = health();
        lost_hook.active_hooks.clear();
        // (case, renewal time, health, wakes)
        let steps = [
            ("first sight", 0, health(), true),
            ("renewed, same health", 20, health(), false),
            ("renewed, other rates", 40, busy, false),
            ("drops over the threshold", 60, dropping.clone(), true),
            ("still over", 80, dropping, false),
            ("a hook lost", 100, lost_hook.clone(), true),
            (
                "renewed after a gap (may have expired)",
                200,
                lost_hook,
                true,
            ),
            ("back to normal", 220, health(), true),
        ];
        for (case, at, h, wakes) in steps {
            let got = lease_event(&mut f, watcher::Event::Apply(lease("n1", at, &h)));
            assert_eq!(
                got,
                if wakes { vec!["n1".to_owned()] } else { vec![] },
                "{case}"
            );
        }
        assert_eq!(
            lease_event(&mut f, watcher::Event::Delete(lease("n1", 220, &health()))),
            ["n1"]
        );
        assert!(f.is_empty());
    }

    #[test]
    fn node_updates_wake_on_labels_readiness_and_kernel_only() {
        let mut f = ChangeFilter::default();
        let mut ev = |n: Node| f.on_event(&watcher::Event::Apply(n), node_seen);
        assert_eq!(ev(node("a", "cpu", true, 0)), ["a"]);
        assert!(
            ev(node("a", "cpu", true, 300)).is_empty(),
            "heartbeat time only"
        );
        assert_eq!(ev(node("a", "gpu", true, 300)), ["a"]);
        assert_eq!(ev(node("a", "gpu", false, 600)), ["a"]);
    }

    #[test]
    fn relists_report_objects_deleted_while_the_watch_was_down() {
        let mut f = ChangeFilter::default();
        for n in ["a", "b"] {
            f.on_event(&watcher::Event::Apply(node(n, "cpu", true, 0)), node_seen);
        }
        let mut relist = Vec::new();
        for ev in [
            watcher::Event::Init,
            watcher::Event::InitApply(node("a", "cpu", true, 30)),
            watcher::Event::InitDone,
        ] {
            relist.extend(f.on_event(&ev, node_seen));
        }
        assert_eq!(relist, ["b"]);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn pods_and_daemon_sets_wake_their_policy() {
        let pod = |phase: &str, restarts: i32| Pod {
            metadata: ObjectMeta {
                name: Some("vigil-agent-p-x1".into()),
                labels: Some(BTreeMap::from([(POLICY_LABEL.to_owned(), "p".to_owned())])),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: Some(vec![k8s_openapi::api::core::v1::ContainerStatus {
                    restart_count: restarts,
                    ..Default::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        let mut f = ChangeFilter::default();
        let mut ev = |p: Pod| f.on_event(&watcher::Event::Apply(p), pod_seen);
        assert_eq!(ev(pod("Pending", 0)), ["p"]);
        assert!(ev(pod("Pending", 0)).is_empty());
        assert_eq!(ev(pod("Running", 0)), ["p"]);
        assert_eq!(ev(pod("Running", 1)), ["p"]);

        let ds = |updated: i32| DaemonSet {
            metadata: ObjectMeta {
                name: Some("vigil-agent-p".into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "vigil.dev/v1alpha1".into(),
                    kind: "RuntimeMonitoringPolicy".into(),
                    name: "p".into(),
                    uid: "u".into(),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            status: Some(DaemonSetStatus {
                updated_number_scheduled: Some(updated),
                ..DaemonSetStatus::default()
            }),
            ..DaemonSet::default()
        };
        let mut f = ChangeFilter::default();
        assert_eq!(
            f.on_event(&watcher::Event::Apply(ds(1)), daemon_set_seen),
            ["p"]
        );
        assert!(
            f.on_event(&watcher::Event::Apply(ds(1)), daemon_set_seen)
                .is_empty()
        );
        assert_eq!(
            f.on_event(&watcher::Event::Apply(ds(2)), daemon_set_seen),
            ["p"]
        );
    }

    #[test]
    fn a_node_change_concerns_the_policies_selecting_it_and_the_one_reporting_it() {
        use kube::{core::DeserializeGuard, runtime::reflector};
        use vigil_crds::NodeCoverage;

        let (nodes, mut nodes_w) = reflector::store::<Node>();
        let (policies, mut policies_w) =
            reflector::store::<DeserializeGuard<RuntimeMonitoringPolicy>>();
        let (node_coverage, mut coverage_w) = reflector::store::<DeserializeGuard<NodeCoverage>>();
        let stores = Stores {
            nodes,
            pods: reflector::store().0,
            leases: reflector::store().0,
            policies,
            findings: reflector::store().0,
            node_coverage,
            daemon_sets: reflector::store().0,
        };
        let policy = |name: &str, selector: serde_json::Value| {
            DeserializeGuard(Ok(RuntimeMonitoringPolicy::new(
                name,
                serde_json::from_value(serde_json::json!({ "nodeSelector": selector })).unwrap(),
            )))
        };
        for p in [
            policy("all", serde_json::json!({})),
            policy("gpu", serde_json::json!({"pool": "gpu"})),
            policy("cpu", serde_json::json!({"pool": "cpu"})),
        ] {
            policies_w.apply_watcher_event(&watcher::Event::Apply(p));
        }
        nodes_w.apply_watcher_event(&watcher::Event::Apply(node("a", "gpu", true, 0)));
        let names = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        assert_eq!(names(policies_for_node("a", &stores)), ["all", "gpu"]);
        // Relabelled from cpu: the policy whose NodeCoverage names the node hears of it too.
        let reported: DeserializeGuard<NodeCoverage> = serde_json::from_value(serde_json::json!({
            "apiVersion": "vigil.dev/v1alpha1", "kind": "NodeCoverage", "metadata": {"name": "a"},
            "spec": {"policy": "cpu", "status": "Healthy", "covered": true, "since": "2027-01-15T08:00:00Z"}
        }))
        .unwrap();
        coverage_w.apply_watcher_event(&watcher::Event::Apply(reported));
        assert_eq!(
            names(policies_for_node("a", &stores)),
            ["all", "cpu", "gpu"]
        );
        // A node gone from the cache: only the reporting policy.
        assert!(policies_for_node("gone", &stores).is_empty());
        nodes_w.apply_watcher_event(&watcher::Event::Delete(node("a", "gpu", true, 0)));
        assert_eq!(names(policies_for_node("a", &stores)), ["cpu"]);
        assert_eq!(max_dropped_percent(&stores, Some("gpu")), 1.0);
        assert_eq!(max_dropped_percent(&stores, Some("unknown")), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn coalesce_merges_a_period_and_never_starves() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<&'static str>();
        let mut out = Box::pin(coalesce(rx, Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        // A trigger every 100 ms for 5 s, alternating two policies.
        let feeder = tokio::spawn(async move {
            for i in 0..50 {
                tx.unbounded_send(if i % 2 == 0 { "p" } else { "q" })
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut got = Vec::new();
        while let Some(item) = out.next().await {
            got.push((item, (tokio::time::Instant::now() - start).as_secs()));
        }
        feeder.await.unwrap();
        assert_eq!(
            got,
            [("p", 2), ("q", 2), ("p", 4), ("q", 4), ("p", 6), ("q", 6)]
        );
    }
}
