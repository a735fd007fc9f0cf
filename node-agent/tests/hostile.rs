//! Hostile workloads against a real agent (root, real eBPF; issue 12): an argv flood, pid churn,
//! a DNS flood, a file-creation flood and huge executables. Each runs against an agent of its
//! own, which then stops and prints its health summary; the test asserts that every table of
//! the agent's state stayed within its bounds (bytes and entries), that the workload really
//! pushed the table it aims at (it filled up, or shed entries and counted them), and that the
//! agent kept up. What each costs in resident memory is measured by `vigil-bench hostile`
//! (docs/PERFORMANCE.md).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Mutex, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use node_agent_common::stats::Hook;
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");

/// One agent at a time: each workload is judged against the agent that saw it alone.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Agent {
    child: Child,
    stderr: Option<JoinHandle<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// An agent with detection on (its own findings store), started and attached.
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("findings.db");
        let mut child = Command::new(AGENT)
            .args([
                "run",
                "--format",
                "json",
                "--findings-only",
                "--health-json",
            ])
            .arg("--db")
            .arg(&db)
            .args(
                std::env::var(node_agent::collector::TEST_RINGS)
                    .map(|rings| format!("--rings={rings}")),
            )
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node-agent");
        let stderr = child.stderr.take().expect("stderr");
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut hooks = 0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // One "sensor" line per hook, whatever its state, once start-up is over.
                if line.contains(" sensor ") && line.contains("hook=") {
                    hooks += 1;
                    if hooks == Hook::ALL.len() {
                        let _ = ready_tx.send(());
                    }
                }
                lines.push(line);
            }
            lines
        });
        // Loading and verifying the programs takes seconds, more on a busy machine; this only
        // bounds a hang.
        if ready_rx.recv_timeout(Duration::from_secs(300)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            let lines = reader.join().unwrap_or_default();
            panic!("node-agent did not attach its hooks:\n{}", lines.join("\n"));
        }
        Self {
            child,
            stderr: Some(reader),
            _dir: dir,
        }
    }

    /// Stops the agent (SIGTERM, as a service manager does) and returns its health summary.
    fn stop(mut self) -> Value {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for node-agent");
        let lines = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            status.success(),
            "node-agent: {status}\n{}",
            lines.join("\n")
        );
        lines
            .iter()
            .rev()
            .find_map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .filter(|v| v.get("tracked").is_some())
            })
            .unwrap_or_else(|| panic!("no health summary:\n{}", lines.join("\n")))
    }
}

fn trigger(args: &[&str]) -> String {
    let out = Command::new(TRIGGER)
        .args(args)
        .output()
        .expect("run vigil-trigger");
    assert!(
        out.status.success(),
        "vigil-trigger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every table within its bounds; returns the one named `name`.
fn tables_within_bounds(health: &Value, name: &str) -> Value {
    let tables = health["tracked"].as_array().expect("tracked tables");
    for t in tables {
        let entries = t["entries"].as_u64().expect("entries");
        let max = t["maxEntries"].as_u64().expect("maxEntries");
        assert!(entries <= max, "over its entry bound: {t}");
        if let (Some(bytes), Some(max)) = (t["bytes"].as_u64(), t["maxBytes"].as_u64()) {
            assert!(bytes <= max, "over its byte bound: {t}");
        }
    }
    tables
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {tables:?}"))
        .clone()
}

fn counter(health: &Value, hook: &str, field: &str) -> u64 {
    health["counters"]
        .as_array()
        .and_then(|c| c.iter().find(|h| h["hook"] == hook))
        .and_then(|h| h[field].as_u64())
        .unwrap_or(0)
}

/// 6,000 execs with 1,000 arguments each (the issue's `/bin/true $(printf 'a %.0s' {1..1000})`
/// loop, shorter): each process table entry keeps at most 4 KiB of its command line, and the
/// table as a whole stays within its 16 MiB, shedding (and counting) the oldest exited entries.
#[test]
fn an_argv_flood_stays_within_the_process_table_byte_bound() {
    if !node_agent::collector::root_or_skip(
        "an_argv_flood_stays_within_the_process_table_byte_bound",
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = Agent::start(&[]);
    trigger(&["argv-flood", "6000", "1000"]);
    let health = agent.stop();
    let processes = tables_within_bounds(&health, "processes");
    let sent = counter(&health, "exec", "sent");
    let dropped = counter(&health, "exec", "dropped");
    assert!(
        sent + dropped >= 6000,
        "every exec of the flood was recorded or counted as dropped: {sent} + {dropped}"
    );
    // 6,000 entries of about 4 KiB each do not fit in 16 MiB: the table filled and shed.
    assert!(
        processes["shed"].as_u64().unwrap_or(0) > 0,
        "the table shed entries and counted them: {processes}"
    );
    let bytes = processes["bytes"].as_u64().unwrap_or(0);
    let max = processes["maxBytes"].as_u64().unwrap_or(0);
    assert!(bytes > max / 2, "the flood filled the table: {processes}");
}

/// 12,000 short-lived children with a process table of 4,096 (1,024 exited kept): the table
/// never holds more, and every exited entry it let go is counted.
#[test]
fn pid_churn_is_shed_oldest_exited_first_and_counted() {
    if !node_agent::collector::root_or_skip("pid_churn_is_shed_oldest_exited_first_and_counted") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = Agent::start(&["--max-processes", "4096"]);
    trigger(&["fork-churn", "12000"]);
    let health = agent.stop();
    let processes = tables_within_bounds(&health, "processes");
    assert_eq!(processes["maxEntries"], 4096, "{processes}");
    let forks = counter(&health, "fork", "sent");
    let dropped = counter(&health, "fork", "dropped");
    assert!(
        forks + dropped >= 12_000,
        "every fork of the churn was recorded or counted as dropped: {forks} + {dropped}"
    );
    // At most 4,096 of the children the agent saw are kept: the rest were shed and counted.
    let shed = processes["shed"].as_u64().unwrap_or(0);
    assert!(shed + 4096 >= forks, "{forks} forks seen: {processes}");
}

/// 30,000 A queries for distinct 246-byte names, each answered with a distinct address: the
/// DNS tables (names asked, answers, DGA-flagged names, resolvers) stay within their byte bound
/// (about 10 MiB), the oldest entries make way, and the evictions are counted.
#[test]
fn a_dns_flood_stays_within_the_dns_byte_bound() {
    if !node_agent::collector::root_or_skip("a_dns_flood_stays_within_the_dns_byte_bound") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = Agent::start(&[]);
    let answered = trigger(&["dns-flood", "30000"]);
    let health = agent.stop();
    let dns = tables_within_bounds(&health, "dns");
    // Each query and answer was recorded or counted as dropped (a flood this fast can outrun
    // the reader on a busy machine; the drops are counted, not silent).
    for hook in ["dns_egress", "dns_ingress"] {
        let sent = counter(&health, hook, "sent");
        let dropped = counter(&health, hook, "dropped");
        assert!(
            sent + dropped >= 30_000,
            "{hook}: {sent} sent + {dropped} dropped ({answered} answered)"
        );
    }
    // Every name asked and every address answered that reached the detector is either held or
    // was shed and counted (other processes' DNS on a busy machine may repeat a name: a margin
    // of 1,000). 60,000 distinct names and addresses are more than the tables hold.
    let messages = health["pipeline"]["dns"].as_u64().unwrap_or(0);
    let entries = dns["entries"].as_u64().unwrap_or(0);
    let shed = dns["shed"].as_u64().unwrap_or(0);
    assert!(
        entries + shed + 1_000 >= messages,
        "{messages} DNS messages, tables: {dns}"
    );
    assert!(
        messages < 24_576 || shed > 0,
        "{messages} DNS messages: {dns}"
    );
}

/// 70,000 files created (the written-files map in the kernel holds 65,536): nothing in user
/// space grows with them, and the agent keeps up.
#[test]
fn a_file_creation_flood_grows_nothing_in_user_space() {
    if !node_agent::collector::root_or_skip("a_file_creation_flood_grows_nothing_in_user_space") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = Agent::start(&[]);
    trigger(&["file-flood", dir.path().to_str().expect("utf-8"), "70000"]);
    let health = agent.stop();
    let processes = tables_within_bounds(&health, "processes");
    // The flood is one process: the process table holds what the host runs, not the files.
    assert!(
        processes["bytes"].as_u64().unwrap_or(u64::MAX) < 4 << 20,
        "{processes}"
    );
    let dns = tables_within_bounds(&health, "dns");
    assert!(dns["bytes"].as_u64().unwrap_or(u64::MAX) < 1 << 20, "{dns}");
}

/// Ten executables of 40 MiB, each a file not hashed before: hashing leaves the reader
/// thread (files over 16 MiB go to the background hasher with its bounded queue), the hash cache
/// stays within its bound, and every exec is still recorded.
#[test]
fn huge_executables_are_hashed_off_the_reader_within_bounds() {
    if !node_agent::collector::root_or_skip(
        "huge_executables_are_hashed_off_the_reader_within_bounds",
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = Agent::start(&[]);
    trigger(&[
        "huge-exec",
        dir.path().to_str().expect("utf-8"),
        "100",
        "20",
    ]);
    let health = agent.stop();
    let hashes = tables_within_bounds(&health, "exeHashes");
    let hashing = &health["hashing"];
    let deferred = hashing["deferred"].as_u64().unwrap_or(0);
    let skipped = hashing["backgroundDropped"].as_u64().unwrap_or(0);
    assert!(
        deferred + skipped >= 10,
        "every huge file went to the background hasher or was skipped and counted: {hashing} {hashes}"
    );
    assert!(counter(&health, "exec", "sent") >= 10);
}
