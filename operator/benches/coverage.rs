//! Coverage at scale, measured: `cargo bench -p vigil-operator --bench coverage`.
//!
//! 5,000 fake nodes (override with `VIGIL_BENCH_NODES`), each with an agent pod and a heartbeat
//! Lease in the operator's caches, one policy, and a mock API server that answers every request
//! and counts requests and bytes (operator/tests/support). Ten simulated minutes, driven by the
//! injected clock (no sleeps): every agent renews its Lease every 20 s; 25 agents die at 2:00 and
//! come back at 5:00; 5 agents report a failed probe from 3:20 to 5:20; 10 agents drop events
//! above the threshold from 7:30 to 9:30 (a different percentage every renewal); one node is
//! NotReady from 6:40 to 7:40; every node's status is updated by its kubelet every 5 minutes
//! (heartbeat times only).
//!
//! Wake-ups go through the operator's own filter (`triggers::ChangeFilter` and
//! `triggers::policies_for_node`), merged over `triggers::COALESCE_PERIOD` as the controller does,
//! plus the periodic requeue the reconcile asks for and the wake-up its own status write causes.
//!
//! Reported: the policy status size (and what the previous per-node list would weigh, rebuilt from
//! the same coverage), API writes per simulated minute by kind, wake-ups before and after the
//! filter, and memory (peak RSS of this process, and the bytes of what the caches hold).

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::BTreeMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use k8s_openapi::{api::core::v1::Node, jiff::Timestamp};
use kube::{
    ResourceExt,
    runtime::{controller::Action, watcher},
};
use serde_json::json;
use support::{Cluster, Count, Kind, POLICY, T0, fake_node, health, node_name};
use vigil_crds::lease::ProbeFailure;
use vigil_operator::{
    coverage::assess,
    facts::NodeFacts,
    triggers::{self, ChangeFilter},
};

/// Counts the bytes this process holds on the heap (live and peak), so the report can tell what
/// the caches and the operator keep from what the allocator has not returned to the system.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap() -> u64 {
    LIVE.load(Ordering::Relaxed) as u64
}

const MINUTES: i64 = 10;
const RENEW_EVERY: i64 = 20;

/// A memory figure of this process from /proc (Linux), in bytes: `VmHWM` (peak resident set) or
/// `VmRSS` (current).
fn proc_memory(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time this thread has run, from /proc (Linux): unlike wall time, it does not grow when
/// other processes share the machine.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

fn peak_rss() -> Option<u64> {
    proc_memory("VmHWM:")
}

fn json_bytes<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> usize {
    items
        .into_iter()
        .map(|i| serde_json::to_vec(&i).map_or(0, |v| v.len()))
        .sum()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The per-node list the policy status carried before (one entry per compatible node, with
/// heartbeat time and rates), rebuilt from the same coverage: its size is the "before".
fn previous_status_bytes(c: &Cluster, now: i64) -> usize {
    let policy = c.api.policy();
    let nodes: Vec<NodeFacts> = c
        .ctx
        .stores
        .nodes
        .state()
        .iter()
        .filter_map(|n| NodeFacts::from_node(n))
        .collect();
    let heartbeats: Vec<_> = c
        .ctx
        .stores
        .leases
        .state()
        .iter()
        .filter_map(|l| vigil_crds::lease::read_heartbeat(l).ok())
        .collect();
    let at = Timestamp::from_second(now).unwrap();
    let a = assess(&policy.spec, &nodes, &[], &heartbeats, at);
    let by_node: BTreeMap<&str, &vigil_crds::lease::Heartbeat> =
        heartbeats.iter().map(|h| (h.node.as_str(), h)).collect();
    let list: Vec<_> = a
        .nodes
        .iter()
        .map(|n| {
            let h = by_node.get(n.node.as_str());
            json!({
                "nodeName": n.node,
                "status": n.status().as_str(),
                "issue": n.issue.as_ref().map(ToString::to_string),
                "agentVersion": n.agent_version,
                "kernelVersion": n.kernel_version,
                "activeHooks": n.active_hooks.as_ref().map(Vec::len),
                "eventsPerSecond": h.map(|h| h.health.events_per_second),
                "droppedEvents": h.map(|h| h.health.dropped_events_total),
                "lastHeartbeat": h.and_then(|h| h.renew_time.as_ref()).map(|t| t.0.to_string()),
            })
        })
        .collect();
    let mut status = serde_json::to_value(policy.status.unwrap_or_default()).unwrap();
    status["coverage"]["nodes"] = json!(list);
    status["coverage"]
        .as_object_mut()
        .unwrap()
        .remove("unhealthy");
    serde_json::to_vec(&json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "RuntimeMonitoringPolicy", "status": status}))
        .unwrap()
        .len()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let size: usize = std::env::var("VIGIL_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rss_at_start = peak_rss();
    let setup = Instant::now();
    let mut c = Cluster::new(size);
    let rss_after_setup = proc_memory("VmRSS:");
    let heap_after_setup = heap();
    println!(
        "coverage bench: {size} nodes, {MINUTES} simulated minutes, 1 policy (set-up {:.1?})",
        setup.elapsed()
    );

    let dead = 0..25.min(size);
    let probe_broken = 100.min(size)..105.min(size);
    let dropping = 1000.min(size)..1010.min(size);
    let not_ready = 4000.min(size.saturating_sub(1));
    let mut leases = ChangeFilter::default();
    let mut nodes = ChangeFilter::default();
    let threshold = |c: &Cluster| {
        let stores = c.ctx.stores.clone();
        move |p: Option<&str>| triggers::max_dropped_percent(&stores, p)
    };
    // What the watches delivered before the simulation starts (the initial list).
    for l in c.ctx.stores.leases.state() {
        leases.on_event(&watcher::Event::InitApply((*l).clone()), |l| {
            triggers::lease_seen(l, threshold(&c))
        });
    }
    for n in c.ctx.stores.nodes.state() {
        nodes.on_event(
            &watcher::Event::InitApply((*n).clone()),
            triggers::node_seen,
        );
    }

    let mut per_minute: Vec<BTreeMap<Kind, Count>> = Vec::new();
    let mut last_counts: BTreeMap<Kind, Count> = BTreeMap::new();
    let (mut lease_events, mut node_events, mut wakeups) = (0_u64, 0_u64, 0_u64);
    let mut reconciles = 0_u64;
    let mut reconcile_time = Duration::ZERO;
    let mut first_reconcile = Duration::ZERO;
    let (mut cpu_first, mut cpu_rest) = (Duration::ZERO, Duration::ZERO);
    let mut rss_after_first = None;
    let mut heap_after_first = 0;
    let run = Instant::now();
    let mut next_requeue = T0;
    let mut pending_until: Option<i64> = Some(T0); // the initial list wakes the policy
    let period = triggers::COALESCE_PERIOD.as_secs() as i64;
    let mut status_writes_seen = 0;
    let mut largest_status = 0;

    for t in T0..T0 + MINUTES * 60 {
        c.at(t);
        let s = t - T0;
        // Lease renewals.
        let mut woken: Vec<String> = Vec::new();
        for i in 0..size {
            if (t - i as i64).rem_euclid(RENEW_EVERY) != 0 {
                continue;
            }
            if dead.contains(&i) && (120..300).contains(&s) {
                continue;
            }
            let mut h = health();
            if probe_broken.contains(&i) && (200..320).contains(&s) {
                h.probe_failures = vec![ProbeFailure {
                    probe: "security_file_open".into(),
                    error: "EPERM".into(),
                }];
            }
            if dropping.contains(&i) && (450..570).contains(&s) {
                h.dropped_events_per_second = 2.0 + (s % 7) as f64;
            }
            h.events_per_second = 100.0 + ((t + i as i64) % 50) as f64;
            let l = c.renew(i, t, &h);
            lease_events += 1;
            woken.extend(leases.on_event(&watcher::Event::Apply(l), |l| {
                triggers::lease_seen(l, threshold(&c))
            }));
        }
        // Kubelet status updates (every 5 minutes a node) and the NotReady node.
        for i in 0..size {
            let update = (t - i as i64).rem_euclid(300) == 0;
            let flips = i == not_ready && (s == 400 || s == 460);
            if !update && !flips {
                continue;
            }
            let ready = !(i == not_ready && (400..460).contains(&s));
            let node: Node = fake_node(i, ready, t);
            let mut slim = node.clone();
            vigil_operator::facts::slim_node(&mut slim);
            node_events += 1;
            woken.extend(nodes.on_event(&watcher::Event::Apply(slim), triggers::node_seen));
            c.set_node(node);
        }
        for node in woken {
            for p in triggers::policies_for_node(&node, &c.ctx.stores) {
                assert_eq!(p, POLICY);
                wakeups += 1;
                pending_until.get_or_insert(t + period);
            }
        }

        let due = pending_until.is_some_and(|u| t >= u) || t >= next_requeue;
        if due {
            pending_until = None;
            let before = c
                .api
                .by_kind()
                .get(&Kind::PolicyStatus)
                .map_or(0, |c| c.requests);
            let started = Instant::now();
            let cpu_started = thread_cpu().unwrap_or_default();
            let action = c.reconcile().await.expect("reconcile");
            let cpu = thread_cpu().unwrap_or_default().saturating_sub(cpu_started);
            if reconciles == 0 {
                cpu_first = cpu;
            } else {
                cpu_rest += cpu;
            }
            if reconciles == 0 {
                first_reconcile = started.elapsed();
                rss_after_first = peak_rss();
                heap_after_first = heap();
            } else {
                reconcile_time += started.elapsed();
            }
            reconciles += 1;
            let after = c
                .api
                .by_kind()
                .get(&Kind::PolicyStatus)
                .map_or(0, |c| c.requests);
            if after > before {
                // The status write comes back through the policy watch and wakes the policy.
                pending_until = Some(t + 1);
                status_writes_seen += 1;
                largest_status = largest_status.max(c.api.largest_status());
            }
            // Half the heartbeat timeout (60 s by default): the expiry check.
            assert_eq!(action, Action::requeue(Duration::from_secs(30)));
            let secs = 30;
            next_requeue = t + secs;
        }
        if (s + 1) % 60 == 0 {
            let now = c.api.by_kind();
            let mut minute = BTreeMap::new();
            for (k, v) in &now {
                let was = last_counts.get(k).copied().unwrap_or_default();
                minute.insert(
                    *k,
                    Count {
                        requests: v.requests - was.requests,
                        bytes: v.bytes - was.bytes,
                    },
                );
            }
            per_minute.push(minute);
            last_counts = now;
        }
    }

    // Report.
    let policy = c.api.policy();
    let status = policy.status.clone().unwrap_or_default();
    let status_bytes = serde_json::to_vec(&status).unwrap().len();
    let object_bytes = serde_json::to_vec(&policy).unwrap().len();
    let before_bytes = previous_status_bytes(&c, T0 + MINUTES * 60);
    println!();
    println!("policy status");
    println!(
        "  after:  {status_bytes} bytes (whole object {object_bytes}; largest status patch {largest_status})"
    );
    println!(
        "  before: {before_bytes} bytes (per-node list, rebuilt from the same coverage; {:.0}x)",
        before_bytes as f64 / status_bytes as f64
    );
    println!(
        "  at the end: {} compatible, {} healthy, {} unhealthy, {} listed",
        status.coverage.compatible_nodes,
        status.coverage.healthy_nodes,
        status.coverage.unhealthy_nodes,
        status.coverage.unhealthy.len()
    );

    println!();
    println!("API requests per simulated minute (requests / request bytes)");
    let kinds = [
        Kind::PolicyStatus,
        Kind::NodeCoverage,
        Kind::Event,
        Kind::AgentObject,
        Kind::Other,
    ];
    print!("  {:<6}", "minute");
    for k in kinds {
        print!(" | {:>24}", k.label());
    }
    println!();
    for (m, minute) in per_minute.iter().enumerate() {
        print!("  {:<6}", m + 1);
        for k in kinds {
            let c = minute.get(&k).copied().unwrap_or_default();
            print!(" | {:>24}", format!("{} / {}", c.requests, c.bytes));
        }
        println!();
    }
    let steady: Vec<&BTreeMap<Kind, Count>> = per_minute.iter().skip(1).collect();
    print!("  {:<6}", "avg 2+");
    for k in kinds {
        let total: u64 = steady
            .iter()
            .map(|m| m.get(&k).map_or(0, |c| c.requests))
            .sum();
        print!(
            " | {:>24}",
            format!("{:.1}", total as f64 / steady.len().max(1) as f64)
        );
    }
    println!();
    let others = reconciles.saturating_sub(1).max(1) as f64;
    println!(
        "  ({status_writes_seen} status writes, {reconciles} reconciles; a reconcile takes (CPU / wall): the first {:.0} / {:.0} ms, the others {:.1} / {:.1} ms on average (the mock's work included); whole run {:.1?})",
        cpu_first.as_secs_f64() * 1000.0,
        first_reconcile.as_secs_f64() * 1000.0,
        cpu_rest.as_secs_f64() * 1000.0 / others,
        reconcile_time.as_secs_f64() * 1000.0 / others,
        run.elapsed()
    );

    println!();
    println!("wake-ups");
    println!(
        "  watch events: {lease_events} Lease renewals, {node_events} node updates ({:.0} a minute)",
        (lease_events + node_events) as f64 / MINUTES as f64
    );
    println!(
        "  before: every event woke every policy ({} wake-ups)",
        lease_events + node_events
    );
    println!("  after:  {wakeups} wake-ups of the policy concerned, {reconciles} reconciles");

    println!();
    println!("memory");
    let nodes_bytes = json_bytes(c.ctx.stores.nodes.state().iter().map(|n| (**n).clone()));
    let raw_node = serde_json::to_vec(&fake_node(0, true, T0)).unwrap().len();
    let pods_bytes = json_bytes(c.ctx.stores.pods.state().iter().map(|p| (**p).clone()));
    let leases_bytes = json_bytes(c.ctx.stores.leases.state().iter().map(|l| (**l).clone()));
    let coverage_bytes = json_bytes(
        c.ctx
            .stores
            .node_coverage
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().cloned()),
    );
    println!(
        "  caches (JSON bytes): nodes {} ({} a node; {} unslimmed), pods {}, Leases {}, NodeCoverage {}",
        mib(nodes_bytes as u64),
        nodes_bytes / size.max(1),
        mib((raw_node * size) as u64),
        mib(pods_bytes as u64),
        mib(leases_bytes as u64),
        mib(coverage_bytes as u64),
    );
    let (log_entries, log_specs) = {
        let log = c.ctx.coverage_log();
        (log.len(), log.holding_specs())
    };
    println!(
        "  operator tables: NodeCoverage write log {log_entries} entries ({log_specs} with a spec), Lease filter {} entries, node filter {} entries",
        leases.len(),
        nodes.len()
    );
    println!(
        "  heap held (live bytes): caches of nodes, pods and Leases filled {}, after the first reconcile {}, at the end {}; peak {}",
        mib(heap_after_setup),
        mib(heap_after_first),
        mib(heap()),
        mib(PEAK.load(Ordering::Relaxed) as u64)
    );
    match (peak_rss(), rss_at_start, proc_memory("VmRSS:")) {
        (Some(peak), Some(start), Some(now)) => println!(
            "  RSS of this process: at start {}, with the node, pod and Lease caches filled {}, peak after the first reconcile (5,000 NodeCoverage creates) {}, at the end {} (peak {})",
            mib(start),
            rss_after_setup.map_or_else(|| "?".to_owned(), mib),
            rss_after_first.map_or_else(|| "?".to_owned(), mib),
            mib(now),
            mib(peak)
        ),
        _ => println!("  RSS: not available (no /proc/self/status)"),
    }
    let objects = c.ctx.stores.node_coverage.state();
    let example = objects
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .find(|o| o.name_any() == node_name(0));
    if let Some(o) = example {
        println!();
        println!(
            "one NodeCoverage: {} bytes as written",
            serde_json::to_vec(o).unwrap().len()
        );
    }
}
