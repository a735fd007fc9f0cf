//! Self-protection, for real: a root agent with its eBPF programs, and other processes that
//! write its maps with bpftool, stop it with a signal, trace it, write its configuration; the
//! benign variants (read-only enumeration, `kill -0`, its parent's SIGTERM) raise nothing. And
//! the agent in a pid namespace of its own (no hostPID) still filters itself and nothing else.

mod support;

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");
const TAMPERED: &str = "DefenseEvasion:Runtime/SecurityAgentTampered";
/// Loading and verifying every program takes seconds, far more on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const FINDING_TIMEOUT: Duration = Duration::from_secs(60);

/// A running agent, its output collected line by line.
struct Agent {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Its process id as the host sees it, from its start-up log.
    pid: u32,
    /// Its own process id (in its pid namespace).
    own_pid: u32,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    lines
}

/// `key=value` of a log line.
fn field(line: &str, key: &str) -> Option<u32> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim_matches('"').parse().ok())
}

impl Agent {
    /// Starts `command` (the agent, or a wrapper that runs it) and waits until its sensors run.
    fn start(mut command: Command) -> Agent {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .env("RUST_LOG", "info")
            .spawn()
            .expect("start node-agent");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = stderr
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.contains("the agent's identity in the kernel"))
                .cloned();
            if let Some(line) = ready {
                let pid = field(&line, "pid").expect("pid= in the identity line");
                let own_pid = field(&line, "own_pid").expect("own_pid= in the identity line");
                return Agent {
                    child,
                    stdout,
                    stderr,
                    pid,
                    own_pid,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the agent exited ({status}) before its sensors ran: {}",
                    stderr.lock().expect("lines").join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not start within {START_TIMEOUT:?}: {}",
                stderr.lock().expect("lines").join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Findings printed so far (`--findings-only`).
    fn findings(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .expect("lines")
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("type").is_some())
            .collect()
    }

    /// Waits for a tampering finding with this `tamperMethod`.
    fn wait_tampering(&self, method: &str) -> Value {
        let deadline = Instant::now() + FINDING_TIMEOUT;
        loop {
            if let Some(f) = self
                .findings()
                .into_iter()
                .find(|f| f["type"] == TAMPERED && find_key(f, "tamperMethod") == Some(method))
            {
                return f;
            }
            assert!(
                Instant::now() < deadline,
                "no {TAMPERED} with tamperMethod {method}; findings: {:?}",
                self.findings()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn tampering(&self) -> Vec<Value> {
        self.findings()
            .into_iter()
            .filter(|f| f["type"] == TAMPERED)
            .collect()
    }

    /// Stops the agent with SIGTERM (from its parent, this test, unless a wrapper started it)
    /// and returns its health summary.
    fn stop(mut self) -> Value {
        // SAFETY: kill(2) on the agent this test started.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for the agent");
        // The reader threads end with the pipes.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = self
                .stderr
                .lock()
                .expect("lines")
                .iter()
                .rev()
                .find_map(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()
                        .filter(|v| v.get("selfProtection").is_some())
                });
            if let Some(h) = health {
                assert!(status.success(), "the agent failed: {status}");
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "no health summary ({status}): {}",
                self.stderr.lock().expect("lines").join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first string value under `key`, anywhere in `v`.
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match v {
        Value::Object(map) => map.iter().find_map(|(k, value)| {
            if k == key {
                value.as_str()
            } else {
                find_key(value, key)
            }
        }),
        Value::Array(items) => items.iter().find_map(|i| find_key(i, key)),
        _ => None,
    }
}

fn agent_command(extra: &[&str]) -> Command {
    let mut c = Command::new(AGENT);
    c.args(["run", "--no-store", "--findings-only", "--health-json"])
        .args(extra);
    c
}

fn root_or_skip(test: &str) -> bool {
    node_agent::collector::root_or_skip(test)
}

/// The tool's path, or `None` (the test then skips, and fails under CI).
fn tool_or_skip(test: &str, names: &[&str]) -> Option<PathBuf> {
    let found = names.iter().map(Path::new).find(|p| p.exists());
    if found.is_none() {
        let message = format!(
            "{test}: skipped: needs {} (scripts/bootstrap.sh installs it)",
            names[0]
        );
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("{message}");
    }
    found.map(Path::to_path_buf)
}

/// The ids of the agent's maps whose fdinfo says `key_size`, `value_size`, `max_entries`.
fn agent_map_ids(pid: u32, key: u32, value: u32, entries: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        if get("key_size") == Some(key)
            && get("value_size") == Some(value)
            && get("max_entries") == Some(entries)
            && let Some(id) = get("map_id")
        {
            ids.push(id);
        }
    }
    ids
}

fn run(program: &Path, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
}

#[test]
fn bpftool_writing_an_agent_map_is_tampering_and_listing_is_not() {
    let test = "bpftool_writing_an_agent_map_is_tampering_and_listing_is_not";
    if !root_or_skip(test) {
        return;
    }
    let Some(bpftool) = tool_or_skip(test, &["/usr/sbin/bpftool", "/usr/bin/bpftool"]) else {
        return;
    };
    let agent = Agent::start(agent_command(&[]));
    // Read-only enumeration, as an administrator does: every object is opened by id.
    for args in [
        &["prog", "show"][..],
        &["map", "show"][..],
        &["link", "show"][..],
    ] {
        let out = run(&bpftool, args);
        assert!(out.status.success(), "bpftool {args:?}: {out:?}");
    }
    // The agent's AGENT_OBJECTS map (hash, 8-byte keys, 4-byte values, 1024 entries): adding a
    // made-up entry is harmless to the agent and is a write all the same.
    let ids = agent_map_ids(agent.pid, 8, 4, 1024);
    assert_eq!(
        ids.len(),
        1,
        "one AGENT_OBJECTS map among the agent's fds: {ids:?}"
    );
    let id = ids[0].to_string();
    let key = ["1", "2", "3", "4", "5", "6", "7", "8"];
    let mut args = vec!["map", "update", "id", &id, "key"];
    args.extend(key);
    args.extend(["value", "1", "0", "0", "0"]);
    let out = run(&bpftool, &args);
    assert!(out.status.success(), "bpftool map update: {out:?}");
    let finding = agent.wait_tampering("bpf");
    assert_eq!(
        find_key(&finding, "bpfCommand"),
        Some("BPF_MAP_UPDATE_ELEM")
    );
    assert_eq!(
        find_key(&finding, "bpfObject"),
        Some(format!("map {id}").as_str())
    );
    let listing = agent.tampering();
    assert_eq!(
        listing.len(),
        1,
        "the listing raised nothing, the update one finding: {listing:?}"
    );
    let health = agent.stop();
    assert!(
        health["selfProtection"]["tampering"].as_u64() >= Some(1),
        "{}",
        health["selfProtection"]
    );
}

#[test]
fn a_stop_signal_from_another_process_is_tampering_and_kill_0_and_the_parent_are_not() {
    let test = "a_stop_signal_from_another_process_is_tampering_and_kill_0_and_the_parent_are_not";
    if !root_or_skip(test) {
        return;
    }
    let agent = Agent::start(agent_command(&[]));
    let pid = agent.pid.to_string();
    // kill -0 only asks whether the process exists: no signal is generated.
    let probe = Command::new("/bin/sh")
        .args(["-c", &format!("kill -0 {pid}")])
        .status()
        .expect("kill -0");
    assert!(probe.success());
    // SIGSTOP from a shell that is not the agent's supervisor; the stopped agent reports it once
    // it runs again (SIGCONT is never reported).
    let stop = Command::new("/bin/sh")
        .args(["-c", &format!("kill -STOP {pid}; kill -CONT {pid}")])
        .status()
        .expect("kill -STOP");
    assert!(stop.success());
    let finding = agent.wait_tampering("signal");
    assert_eq!(find_key(&finding, "signal"), Some("SIGSTOP"));
    assert_eq!(agent.tampering().len(), 1, "{:?}", agent.tampering());
    // The parent's SIGTERM (this test, as systemd or the container runtime would) is a stop,
    // not tampering: still one occurrence at exit.
    let health = agent.stop();
    assert_eq!(
        health["selfProtection"]["tampering"], 1,
        "{}",
        health["selfProtection"]
    );
}

/// Findings of one rule (`context.additional.ruleId`) printed so far.
fn with_rule(agent: &Agent, rule: &str) -> Vec<Value> {
    agent
        .findings()
        .into_iter()
        .filter(|f| find_key(f, "ruleId") == Some(rule))
        .collect()
}

/// Waits until a finding satisfies `pred`.
fn wait_finding(agent: &Agent, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + FINDING_TIMEOUT;
    loop {
        if let Some(f) = agent.findings().into_iter().find(|f| pred(f)) {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "no finding for {what}; findings: {:?}",
            agent.findings()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stopping_signals_to_another_security_agent_are_reported_however_sent() {
    let test = "stopping_signals_to_another_security_agent_are_reported_however_sent";
    if !root_or_skip(test) {
        return;
    }
    const KILLED: &str = "behaviour-security-agent-killed";
    // Stand-ins for two agents of `behaviour.securityAgents`: copies of sleep named as them
    // (the kernel resolves the executable; the list is by its name).
    let dir = std::env::temp_dir().join(format!("vigil-guarded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let falco = dir.join("falco");
    let osqueryd = dir.join("osqueryd");
    for copy in [&falco, &osqueryd] {
        std::fs::copy("/bin/sleep", copy).expect("copy sleep");
    }
    // One runs before the agent starts (found in /proc), the other after (found at exec).
    let mut before =
        support::spawn::spawn(Command::new(&falco).arg("600")).expect("start the first agent");
    let agent = Agent::start(agent_command(&[]));
    let mut after =
        support::spawn::spawn(Command::new(&osqueryd).arg("600")).expect("start the second agent");
    // Its exec from /tmp raises a Low finding: by then the pipeline has seen it (and, before
    // reading any record, the processes in /proc).
    let osqueryd_path = osqueryd.to_str().expect("utf-8 path").to_owned();
    wait_finding(&agent, "the second agent's exec", |f| {
        f["process"]["executablePath"] == osqueryd_path.as_str()
    });
    // Benign: a shell stopping the agent it started, and signals that stop nothing.
    let benign = format!(
        "{} 600 & child=$!; kill -TERM $child; wait; kill -CONT {}; kill -0 {}",
        falco.display(),
        before.id(),
        after.id()
    );
    let status = Command::new("/bin/sh")
        .args(["-c", &benign])
        .status()
        .expect("benign signals");
    assert!(status.success());
    // The attacks: a shell's kill builtin by pid, and an interpreter's kill.
    let status = Command::new("/bin/sh")
        .args(["-c", &format!("kill -9 {}", before.id())])
        .status()
        .expect("kill -9");
    assert!(status.success());
    let status = Command::new("perl")
        .args(["-e", &format!("kill 'TERM', {}", after.id())])
        .status()
        .expect("perl kill");
    assert!(status.success());
    let _ = before.wait();
    let _ = after.wait();
    for (pid, signal, exe) in [
        (before.id(), "SIGKILL", &falco),
        (after.id(), "SIGTERM", &osqueryd),
    ] {
        let f = wait_finding(&agent, &format!("{signal} to pid {pid}"), |f| {
            find_key(f, "ruleId") == Some(KILLED)
                && find_key(f, "targetPid") == Some(&pid.to_string())
        });
        assert_eq!(f["type"], "DefenseEvasion:Runtime/SuspiciousCommand", "{f}");
        assert_eq!(find_key(&f, "signal"), Some(signal), "{f}");
        assert_eq!(find_key(&f, "targetExecutable"), exe.to_str(), "{f}");
    }
    // Only those two: not the child its shell stopped, not SIGCONT nor kill -0.
    let killed = with_rule(&agent, KILLED);
    assert_eq!(killed.len(), 2, "{killed:?}");
    let health = agent.stop();
    let guarded = health["tracked"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "guardedProcesses"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(guarded["shed"], 0, "{health}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Competing miners killed however their ids were found (`kill -9 $(pgrep -x xmrig)`: the
/// shell's builtin, no pipe into `xargs`; an interpreter's `os.kill`): the pipeline guards
/// processes whose executable has a miner's name, and the kernel reports their stopping
/// signals. The shell that started a miner stopping it, and the same kill of a program with
/// another name, raise nothing.
#[test]
fn competing_miners_killed_however_their_ids_were_found() {
    let test = "competing_miners_killed_however_their_ids_were_found";
    if !root_or_skip(test) {
        return;
    }
    const COMPETITOR: &str = "behaviour-miner-competitor-kill";
    let dir = std::env::temp_dir().join(format!("vigil-miners-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let xmrig = dir.join("xmrig");
    let kdevtmpfsi = dir.join("kdevtmpfsi");
    let worker = dir.join("worker");
    for copy in [&xmrig, &kdevtmpfsi, &worker] {
        std::fs::copy("/bin/sleep", copy).expect("copy sleep");
    }
    // One runs before the agent starts (found in /proc), the others after (found at exec).
    let mut before = support::spawn::spawn(Command::new(&xmrig).arg("600")).expect("xmrig");
    let agent = Agent::start(agent_command(&[]));
    let mut after = support::spawn::spawn(Command::new(&kdevtmpfsi).arg("600")).expect("kdev");
    let mut other = support::spawn::spawn(Command::new(&worker).arg("600")).expect("worker");
    // Their execs from /tmp raise a Low finding each: by then the pipeline has seen them.
    for program in [&kdevtmpfsi, &worker] {
        let path = program.to_str().expect("utf-8 path").to_owned();
        wait_finding(&agent, &format!("the exec of {path}"), |f| {
            f["process"]["executablePath"] == path.as_str()
        });
    }
    // Benign: a shell stopping the miner it started; a kill of a program of another name.
    let benign = format!(
        "{} 600 & child=$!; kill -9 $child; wait; kill -9 {}",
        xmrig.display(),
        other.id()
    );
    let status = Command::new("/bin/sh")
        .args(["-c", &benign])
        .status()
        .expect("benign kills");
    assert!(status.success(), "{benign}: {status}");
    // The attacks.
    let status = Command::new("/bin/sh")
        .args(["-c", "kill -9 $(pgrep -x xmrig)"])
        .status()
        .expect("kill -9 $(pgrep -x xmrig)");
    assert!(status.success(), "kill -9 $(pgrep -x xmrig): {status}");
    let status = Command::new("python3")
        .args([
            "-c",
            &format!("import os, signal; os.kill({}, signal.SIGTERM)", after.id()),
        ])
        .status()
        .expect("os.kill");
    assert!(status.success(), "os.kill: {status}");
    let _ = before.wait();
    let _ = after.wait();
    let _ = other.wait();
    for (pid, signal, exe) in [
        (before.id(), "SIGKILL", &xmrig),
        (after.id(), "SIGTERM", &kdevtmpfsi),
    ] {
        let f = wait_finding(&agent, &format!("{signal} to pid {pid}"), |f| {
            find_key(f, "ruleId") == Some(COMPETITOR)
                && find_key(f, "targetPid") == Some(&pid.to_string())
        });
        assert_eq!(f["type"], "Execution:Runtime/SuspiciousCommand", "{f}");
        assert_eq!(find_key(&f, "signal"), Some(signal), "{f}");
        assert_eq!(find_key(&f, "targetExecutable"), exe.to_str(), "{f}");
    }
    // Only those two: not the child its shell stopped, not the worker.
    let killed = with_rule(&agent, COMPETITOR);
    assert_eq!(killed.len(), 2, "{killed:?}");
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A python program that sends `request` to `pool` and then waits to be killed; its stdout
/// says when the request is sent.
fn speaking_to(pool: std::net::SocketAddr, request: &str) -> Child {
    let script = format!(
        "import socket, sys, time\n\
         s = socket.create_connection(('{}', {}))\n\
         s.sendall({request:?}.encode())\n\
         print('sent', flush=True)\n\
         time.sleep(600)\n",
        pool.ip(),
        pool.port()
    );
    let mut child = support::spawn::spawn(
        Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::piped()),
    )
    .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "sent", "{script}");
    child
}

#[test]
fn a_miner_found_by_its_stratum_is_guarded_whatever_its_name() {
    let test = "a_miner_found_by_its_stratum_is_guarded_whatever_its_name";
    if !root_or_skip(test) {
        return;
    }
    const COMPETITOR: &str = "behaviour-miner-competitor-kill";
    // A pool on loopback that takes connections and reads whatever comes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let pool = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut &stream, &mut std::io::sink());
            });
        }
    });
    let agent = Agent::start(agent_command(&[]));
    // Ordinary JSON-RPC first, then stratum: the same interpreter, neither named like a miner.
    let mut client = speaking_to(
        pool,
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"eth_blockNumber\",\"params\":[]}\n",
    );
    let mut miner = speaking_to(
        pool,
        "{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cpuminer/2.5.1\"]}\n",
    );
    let pid = miner.id();
    let found = wait_finding(&agent, &format!("the stratum of pid {pid}"), |f| {
        f["type"] == "CryptoCurrency:Runtime/BitcoinTool.B" && f["process"]["pid"] == pid
    });
    assert_eq!(find_key(&found, "stratumMethod"), Some("mining.subscribe"));
    // A competitor's kill, from a process that is neither its parent nor its program; and the
    // same kill of the program that spoke ordinary JSON-RPC.
    for target in [client.id(), pid] {
        let kill = format!("kill -9 {target}");
        let status = Command::new("/bin/sh")
            .args(["-c", &kill])
            .status()
            .expect("sh");
        assert!(status.success(), "{kill}: {status}");
    }
    let _ = client.wait();
    let _ = miner.wait();
    let f = wait_finding(&agent, &format!("SIGKILL to pid {pid}"), |f| {
        find_key(f, "ruleId") == Some(COMPETITOR)
            && find_key(f, "targetPid") == Some(&pid.to_string())
    });
    assert_eq!(find_key(&f, "minerBy"), Some("behaviour"), "{f}");
    assert_eq!(find_key(&f, "signal"), Some("SIGKILL"), "{f}");
    // Only the miner's: the JSON-RPC client was not one.
    let killed = with_rule(&agent, COMPETITOR);
    assert_eq!(killed.len(), 1, "{killed:?}");
    agent.stop();
}

#[test]
fn tracing_the_agent_is_tampering() {
    let test = "tracing_the_agent_is_tampering";
    if !root_or_skip(test) {
        return;
    }
    let Some(strace) = tool_or_skip(test, &["/usr/bin/strace"]) else {
        return;
    };
    let agent = Agent::start(agent_command(&[]));
    // strace attaches (PTRACE_SEIZE), sees one syscall and detaches when its own child exits:
    // `-e trace=none` with a short timeout keeps the agent stopped as briefly as possible.
    let out = Command::new("timeout")
        .args(["-s", "INT", "2", strace.to_str().unwrap_or("strace")])
        .args(["-e", "trace=none", "-p", &agent.pid.to_string()])
        .output()
        .expect("strace -p");
    assert!(
        out.status.code().is_some(),
        "strace ended by a signal: {out:?}"
    );
    let finding = agent.wait_tampering("ptrace");
    assert_eq!(find_key(&finding, "ptraceRequest"), Some("PTRACE_SEIZE"));
    agent.stop();
}

#[test]
fn writing_the_agents_configuration_is_tampering_and_other_files_are_not() {
    let test = "writing_the_agents_configuration_is_tampering_and_other_files_are_not";
    if !root_or_skip(test) {
        return;
    }
    let base = std::env::temp_dir().join(format!("vigil-selfprotect-{}", std::process::id()));
    let rules = base.join("rules");
    let other = base.join("other");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::create_dir_all(&other).expect("other dir");
    let agent = Agent::start(agent_command(&[
        "--rules-dir",
        rules.to_str().expect("utf-8 path"),
    ]));
    std::fs::write(other.join("notes.yaml"), "unrelated: true\n").expect("write elsewhere");
    std::fs::write(rules.join("planted.yaml"), "rules: []\n").expect("write a rule file");
    let finding = agent.wait_tampering("file");
    let planted = rules.join("planted.yaml");
    assert_eq!(
        find_key(&finding, "agentFile"),
        Some(planted.to_str().expect("utf-8 path"))
    );
    let all = agent.tampering();
    assert_eq!(all.len(), 1, "only the agent's file: {all:?}");
    agent.stop();
    let _ = std::fs::remove_dir_all(&base);
}

/// The agent runs in a pid namespace of its own with a pid that, on the host, belongs to a
/// process of this test: that process is watched (an agent filtering by its own pid number would
/// miss it), and the agent's own activity is still filtered.
#[test]
fn in_its_own_pid_namespace_the_agent_filters_itself_and_not_the_hosts_process_with_its_pid() {
    let test =
        "in_its_own_pid_namespace_the_agent_filters_itself_and_not_the_hosts_process_with_its_pid";
    if !root_or_skip(test) {
        return;
    }
    let Some(unshare) = tool_or_skip(test, &["/usr/bin/unshare"]) else {
        return;
    };
    // The host process: waits for a line, then execs `echo` with a marker.
    let marker = format!("vigil-pidns-marker-{}", std::process::id());
    let mut host = Command::new("/bin/sh")
        .args(["-c", &format!("read line; exec /bin/echo {marker}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the host process");
    let host_pid = host.id();
    // In the new namespace the shell is pid 1; the next pid it hands out is the host
    // process's number.
    let script = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid && \"$0\" \"$@\"",
        host_pid - 1
    );
    let mut command = Command::new(unshare);
    command
        .args(["--pid", "--fork", "--mount-proc", "/bin/sh", "-c", &script])
        .args([AGENT, "run", "--no-detection", "--health-json"]);
    let agent = Agent::start(command);
    assert_eq!(
        agent.own_pid, host_pid,
        "the agent has the host process's pid number in its namespace"
    );
    assert_ne!(
        agent.pid, host_pid,
        "the kernel knows the agent by another pid"
    );
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", agent.pid)).expect("the agent's status");
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().collect::<Vec<_>>())
        .expect("NSpid");
    assert_eq!(
        nspid,
        [agent.pid.to_string(), host_pid.to_string()],
        "the identity learned from the kernel is the agent's"
    );
    host.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("wake the host process");
    let _ = host.wait();
    let deadline = Instant::now() + FINDING_TIMEOUT;
    loop {
        let seen = agent.stdout.lock().expect("lines").iter().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|e| {
                e["kind"] == "exec"
                    && e["process"]["pid"] == host_pid
                    && e.to_string().contains(&marker)
            })
        });
        if seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the host process {host_pid} (the agent's own pid number) was not watched"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let own = agent.pid;
    let health = agent.stop();
    assert_eq!(health["selfProtection"]["identity"]["source"], "kernel");
    assert_eq!(health["selfProtection"]["identity"]["pid"], own);
    // The agent's own bpf(2) calls (reading its counters) were recognised as its own.
    let bpf = health["counters"]
        .as_array()
        .and_then(|c| c.iter().find(|h| h["hook"] == "bpf_agent"))
        .cloned()
        .unwrap_or_default();
    assert!(
        bpf["filtered"].as_u64() > Some(0),
        "the agent's own calls were filtered: {bpf}"
    );
}
