//! Several ring buffers (one per CPU group): a process's records land in the ring of the CPU
//! each happened on, and the pipeline must still see them in the order they happened. The
//! agent here writes to two rings (`--rings 2`: even CPUs to one, odd CPUs to the other).
//!
//! These load eBPF programs and need root, and two CPUs to run on. Without them they say so and
//! stop; under CI (`CI` set) a missing privilege fails the test instead. Other work may run on
//! the machine meanwhile: the tests look only at their own processes.

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use node_agent::{
    collector::{Collector, root_or_skip as privileged},
    event::Event,
    sensor::SensorOptions,
};
use node_agent_common::stats::Hook;

const WAIT: Duration = Duration::from_secs(20);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    Collector::start(SensorOptions {
        rings: Some(2),
        ..SensorOptions::default()
    })
    .expect("the sensor starts as root")
});

/// An even and an odd CPU this process may run on (their records go to different rings), or
/// `None`, said, when there are not both.
fn cpus_of_both_rings(test: &str) -> Option<(usize, usize)> {
    // SAFETY: a zeroed cpu_set_t is valid; the call fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the set is ours and of the size given.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity");
    // SAFETY: reads of our own set.
    let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    let even = allowed.iter().copied().find(|c| c % 2 == 0);
    let odd = allowed.iter().copied().find(|c| c % 2 == 1);
    match (even, odd) {
        (Some(even), Some(odd)) => Some((even, odd)),
        _ => {
            eprintln!(
                "SKIPPED {test}: needs an even and an odd CPU to run on, this process may use {allowed:?}; not run"
            );
            None
        }
    }
}

/// What the pipeline saw of `pid`, a child of `parent`: "fork", "exec", "exit" in the order
/// they were handed to it.
fn lifecycle(events: &[Event], parent: u32, pid: u32) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Fork(f) if f.process.pid == parent && f.child_pid == pid => Some("fork"),
            Event::Exec(x) if x.process.pid == pid && x.process.ppid == parent => Some("exec"),
            Event::Exit(x) if x.process.pid == pid && x.process.ppid == parent => Some("exit"),
            _ => None,
        })
        .collect()
}

/// Fork, exec, exit, in that order; repeated when the pids came round again (other work on
/// the machine forks too, and pids wrap at `pid_max`).
fn in_order(seen: &[&str]) -> bool {
    !seen.is_empty() && seen.chunks(3).all(|c| c == ["fork", "exec", "exit"])
}

#[test]
fn fork_exec_and_exit_on_cpus_of_different_rings_arrive_in_order() {
    const TEST: &str = "fork_exec_and_exit_on_cpus_of_different_rings_arrive_in_order";
    if !privileged(TEST) {
        return;
    }
    let Some((even, odd)) = cpus_of_both_rings(TEST) else {
        return;
    };
    assert_eq!(AGENT.rings(), 2);
    // Forked in one ring's group, exec'd in the other's, exited back in the first: each step
    // crosses rings, both ways round.
    let mut runs = Vec::new();
    for _ in 0..10 {
        for cpus in [(even, odd, even), (odd, even, odd)] {
            let (fork, exec, exit) = cpus;
            let out = Command::new(TRIGGER)
                .args([
                    "cross-cpu",
                    &fork.to_string(),
                    &exec.to_string(),
                    &exit.to_string(),
                ])
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .expect("run vigil-trigger");
            assert!(
                out.status.success(),
                "cross-cpu {fork} {exec} {exit} failed"
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let pids: Vec<u32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            let [parent, pid] = pids[..] else {
                panic!("cross-cpu printed {text:?}, not two pids");
            };
            runs.push((cpus, parent, pid));
        }
    }
    for ((fork, exec, exit), parent, pid) in runs {
        let seen = AGENT.wait_for(
            WAIT,
            |e| matches!(e, Event::Exit(x) if x.process.pid == pid && x.process.ppid == parent),
        );
        assert!(seen.is_some(), "no exit of {pid} (forked by {parent})");
        let events = AGENT.matching(|e| e.process().pid == pid || e.process().pid == parent);
        let seen = lifecycle(&events, parent, pid);
        assert!(
            in_order(&seen),
            "pid {pid}, forked on CPU {fork}, exec'd on CPU {exec}, exited on CPU {exit}: seen {seen:?}"
        );
    }
}

#[test]
fn an_exec_storm_over_both_rings_loses_nothing_and_keeps_each_process_in_order() {
    const TEST: &str =
        "an_exec_storm_over_both_rings_loses_nothing_and_keeps_each_process_in_order";
    if !privileged(TEST) {
        return;
    }
    if cpus_of_both_rings(TEST).is_none() {
        return;
    }
    assert_eq!(AGENT.rings(), 2);
    let before = dropped();
    // Two threads fork and exec /bin/true as fast as they can for 3 s; the scheduler spreads
    // the children over both CPUs.
    let out = Command::new(TRIGGER)
        .args(["exec-storm", "3", "2"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run vigil-trigger");
    assert!(out.status.success(), "exec-storm failed");
    let me = std::process::id();
    let storm = AGENT
        .wait_for(WAIT, |e| {
            matches!(e, Event::Exec(x) if x.process.ppid == me && x.argv.get(1).is_some_and(|a| a == "exec-storm"))
        })
        .map(|e| e.process().pid)
        .expect("the storm's exec arrives");
    // Its own exit comes after every record of its children.
    assert!(
        AGENT
            .wait_for(
                WAIT,
                |e| matches!(e, Event::Exit(x) if x.process.pid == storm && x.process.ppid == me)
            )
            .is_some(),
        "the storm's exit arrives"
    );
    // Every child exited before the storm was reaped, so in a merged order their records all
    // came before this exit: no waiting for stragglers from the other ring.
    let after = dropped();
    for hook in [Hook::Exec, Hook::Fork, Hook::Exit] {
        let count = |counts: &HashMap<Hook, u64>| counts.get(&hook).copied().unwrap_or(0);
        assert_eq!(
            count(&after) - count(&before),
            0,
            "{} records dropped during the storm",
            hook.name()
        );
    }
    let events = AGENT.matching(|_| true);
    let mut children: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Fork(f) if f.process.pid == storm => Some(f.child_pid),
            _ => None,
        })
        .collect();
    children.sort_unstable();
    children.dedup();
    assert!(
        children.len() > 100,
        "the storm forked {} children",
        children.len()
    );
    let out_of_order: Vec<_> = children
        .iter()
        .map(|&pid| (pid, lifecycle(&events, storm, pid)))
        .filter(|(_, seen)| !in_order(seen))
        .collect();
    eprintln!(
        "{} children of the storm; ring merge: {:?}",
        children.len(),
        AGENT.ring_merge()
    );
    assert!(
        out_of_order.is_empty(),
        "{} of {} children not seen fork, exec, exit in order: {:?}",
        out_of_order.len(),
        children.len(),
        &out_of_order[..out_of_order.len().min(10)]
    );
}

fn dropped() -> HashMap<Hook, u64> {
    AGENT
        .counters()
        .into_iter()
        .map(|(hook, c)| (hook, c.dropped))
        .collect()
}
