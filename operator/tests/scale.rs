//! Coverage at scale: a policy over 5,000 fake nodes against a mock API server that answers every
//! request and counts them. The policy status stays small, a Lease renewal that changes nothing
//! writes nothing and wakes nothing, and one node going bad is one object write, one Event and one
//! status write. Counts and sizes only, never wall-clock time.

mod support;

use std::time::Duration;

use kube::runtime::{controller::Action, watcher};
use support::{Cluster, Count, Kind, T0, health, node_name};
use vigil_crds::{lease::ProbeFailure, policy::CoverageStatus};
use vigil_operator::triggers::{ChangeFilter, lease_seen};

const NODES: usize = 5000;
/// What the status of a 5,000-node policy may weigh at most; the old per-node list weighed about
/// 250 bytes a node (1.25 MB here).
const STATUS_BOUND: usize = 16 * 1024;

fn count(c: &Cluster, kind: Kind) -> Count {
    c.api.by_kind().get(&kind).copied().unwrap_or_default()
}

#[tokio::test]
async fn five_thousand_nodes_small_status_and_quiet_renewals() {
    let mut c = Cluster::new(NODES);

    // First reconcile: one object per node, one status, at most 50 per-node Events + summaries.
    c.at(T0);
    let action = c.reconcile().await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    assert_eq!(count(&c, Kind::NodeCoverage).requests, NODES as u64);
    assert_eq!(count(&c, Kind::PolicyStatus).requests, 1);
    let events = count(&c, Kind::Event).requests;
    assert!(
        (50..=55).contains(&events),
        "{events} Events for 5,000 new nodes"
    );
    let status = c.api.policy().status.unwrap();
    assert_eq!(status.coverage.compatible_nodes, NODES as u32);
    assert_eq!(status.coverage.healthy_nodes, NODES as u32);
    let bytes = c.api.largest_status();
    eprintln!("status patch, 5,000 nodes healthy: {bytes} bytes");
    assert!(bytes < STATUS_BOUND, "status patch of {bytes} bytes");
    let objects = c.ctx.stores.node_coverage.state();
    assert_eq!(objects.len(), NODES);
    assert!(objects.iter().all(|o| {
        o.0.as_ref()
            .is_ok_and(|o| o.spec.status == CoverageStatus::Healthy)
    }));

    // Every agent renews (20 s later, other rates): the filter passes no trigger, and a
    // reconcile anyway (the periodic one) writes nothing.
    let mut filter = ChangeFilter::default();
    for i in 0..NODES {
        let l = support::lease(i, T0 - (i % 20) as i64, &health());
        filter.on_event(&watcher::Event::Apply(l), |l| lease_seen(l, |_| 1.0));
    }
    let mut busy = health();
    busy.events_per_second = 4000.0;
    busy.dropped_events_total = 12;
    let mut woken = 0;
    for i in 0..NODES {
        let l = c.renew(i, T0 + 20 - (i % 20) as i64, &busy);
        woken += filter
            .on_event(&watcher::Event::Apply(l), |l| lease_seen(l, |_| 1.0))
            .len();
    }
    assert_eq!(woken, 0, "renewals that change nothing wake nothing");
    c.api.reset();
    c.at(T0 + 20);
    c.reconcile().await.unwrap();
    // Not even the agent objects: rendered the same, DaemonSet cached, applied 20 s ago.
    let requests: u64 = c.api.by_kind().values().map(|c| c.requests).sum();
    assert_eq!(requests, 0, "{:?}", c.api.counts());

    // One agent loses a hook: it wakes the policy, which writes that node's object, one Event and
    // the status (one more unhealthy node, listed).
    let mut broken = health();
    broken.probe_failures = vec![ProbeFailure {
        probe: "security_file_open".into(),
        error: "EPERM".into(),
    }];
    let l = c.renew(42, T0 + 30, &broken);
    let woken = filter.on_event(&watcher::Event::Apply(l), |l| lease_seen(l, |_| 1.0));
    assert_eq!(woken, [node_name(42)]);
    c.api.reset();
    c.at(T0 + 32);
    c.reconcile().await.unwrap();
    let by_kind = c.api.by_kind();
    assert_eq!(by_kind[&Kind::NodeCoverage].requests, 1);
    assert_eq!(by_kind[&Kind::Event].requests, 1);
    assert_eq!(by_kind[&Kind::PolicyStatus].requests, 1);
    let status = c.api.policy().status.unwrap();
    assert_eq!(status.coverage.unhealthy_nodes, 1);
    assert_eq!(status.coverage.unhealthy[0].node_name, node_name(42));
    assert_eq!(
        status.coverage.unhealthy[0].issue,
        "ProbeLoadFailed: security_file_open: EPERM"
    );
}

#[tokio::test]
async fn with_every_node_unhealthy_the_status_lists_fifty() {
    let c = Cluster::new(NODES);
    // Three minutes without a renewal: every Lease has expired.
    c.at(T0 + 180);
    c.reconcile().await.unwrap();
    let status = c.api.policy().status.unwrap();
    assert_eq!(status.coverage.unhealthy_nodes, NODES as u32);
    assert_eq!(status.coverage.unhealthy.len(), 50);
    assert_eq!(status.coverage.unhealthy_not_listed, NODES as u32 - 50);
    let mut names: Vec<&str> = status
        .coverage
        .unhealthy
        .iter()
        .map(|n| n.node_name.as_str())
        .collect();
    let listed = names.clone();
    names.sort();
    assert_eq!(names, listed, "sorted by name");
    let bytes = c.api.largest_status();
    eprintln!("status patch, 5,000 nodes unhealthy: {bytes} bytes");
    assert!(bytes < STATUS_BOUND, "status patch of {bytes} bytes");
    // 50 Events one by one, then one per reason for the other 4,950.
    let events = count(&c, Kind::Event).requests;
    assert!((51..=53).contains(&events), "{events} Events");
}
