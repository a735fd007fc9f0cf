//! The command line on bad input and in bad conditions: one clear paragraph, a failing exit
//! code, never a panic.

use std::process::{Command, Output};

const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn no_panic(out: &Output) {
    let text = stderr(out);
    assert!(!text.contains("panicked"), "the agent panicked: {text}");
}

#[test]
fn missing_btf_names_the_path_and_the_fix() {
    let out = Command::new(AGENT)
        .args(["probe", "--btf-path", "/nonexistent/vmlinux"])
        .output()
        .expect("run node-agent");
    assert!(!out.status.success());
    no_panic(&out);
    let text = stderr(&out);
    // As root the BTF check fails; as another user the privilege check fails first.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        assert!(text.contains("/nonexistent/vmlinux"), "{text}");
        assert!(text.contains("CONFIG_DEBUG_INFO_BTF"), "{text}");
    } else {
        assert!(text.contains("CAP_BPF"), "{text}");
    }
}

#[test]
fn unknown_hook_is_rejected_with_the_list_of_hooks() {
    let out = Command::new(AGENT)
        .args(["run", "--disable-hook", "bogus", "--duration", "1s"])
        .output()
        .expect("run node-agent");
    assert!(!out.status.success());
    no_panic(&out);
    let text = stderr(&out);
    assert!(text.contains("--disable-hook bogus"), "{text}");
    assert!(text.contains("dns_ingress"), "{text}");
}

#[test]
fn a_ring_count_the_programs_cannot_use_is_a_usage_error() {
    for bad in ["0", "3", "32", "many"] {
        let out = Command::new(AGENT)
            .args(["run", "--rings", bad, "--duration", "1s"])
            .output()
            .expect("run node-agent");
        assert_eq!(
            out.status.code(),
            Some(2),
            "--rings {bad}: clap's usage error code"
        );
        let text = stderr(&out);
        assert!(text.contains("--rings"), "{text}");
        assert!(text.contains("power of two from 1 to 16"), "{text}");
    }
}

#[test]
fn bad_duration_is_a_usage_error() {
    let out = Command::new(AGENT)
        .args(["run", "--duration", "soon"])
        .output()
        .expect("run node-agent");
    assert_eq!(out.status.code(), Some(2), "clap's usage error code");
    assert!(stderr(&out).contains("--duration"), "{}", stderr(&out));
}

#[test]
fn unprivileged_user_gets_the_privilege_paragraph() {
    // Drop to nobody when root (setpriv is in util-linux, on every Debian); otherwise we
    // already are unprivileged.
    // SAFETY: geteuid cannot fail.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps",
            "-all",
            "--",
            AGENT,
        ]);
        c
    } else {
        Command::new(AGENT)
    };
    let out = cmd
        .args(["run", "--duration", "1s"])
        .output()
        .expect("run node-agent");
    assert!(!out.status.success());
    no_panic(&out);
    let text = stderr(&out);
    assert!(
        text.contains("uid 65534") || unsafe { libc::geteuid() } != 0,
        "{text}"
    );
    assert!(text.contains("CAP_BPF") && text.contains("root"), "{text}");
}

#[test]
fn root_probe_reports_every_hook() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "root_probe_reports_every_hook needs root"
        );
        eprintln!("SKIPPED root_probe_reports_every_hook: needs root");
        return;
    }
    let out = Command::new(AGENT)
        .arg("probe")
        .output()
        .expect("run node-agent");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("probe prints JSON");
    let hooks = report["hooks"].as_array().expect("hooks array");
    // Every eBPF hook, and the directory-entry sensor (fanotify), which is not one.
    assert_eq!(hooks.len(), node_agent_common::stats::Hook::ALL.len() + 1);
    assert!(
        hooks
            .iter()
            .any(|h| h["hook"] == "file_dirents" && h["mechanism"] == "fanotify"),
        "{hooks:?}"
    );
    for hook in hooks {
        // A kernel without a syscall (no loadable modules here) reports the hook unsupported.
        assert!(
            hook["state"] == "active" || hook["state"] == "unsupported",
            "{hook}"
        );
        assert!(hook["mechanism"].is_string());
    }
    assert!(
        report["host"]["kernel"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
}

/// Loading the programs takes seconds; records that arrive before the reader runs wait in the
/// ring buffer. Every program is therefore verified before any is attached, so an agent that
/// starts on a busy host (here an exec storm) loses nothing at start-up.
#[test]
fn an_agent_started_during_an_exec_storm_drops_nothing() {
    if !node_agent::collector::root_or_skip("an_agent_started_during_an_exec_storm_drops_nothing") {
        return;
    }
    // The storm outlasts the agent (it is killed once the agent has stopped): on a busy machine
    // verifying the programs alone can take longer than any fixed storm would run.
    let mut storm = Command::new(env!("CARGO_BIN_EXE_vigil-trigger"))
        .args(["exec-storm", "600", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the exec storm");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = Command::new(AGENT)
        .args([
            "run",
            "--duration",
            "4s",
            "--no-detection",
            "--format",
            "json",
            "--health-json",
        ])
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run node-agent");
    let _ = storm.kill();
    let _ = storm.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    let health: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .expect("a JSON health summary on stderr");
    let exec = health["counters"]
        .as_array()
        .and_then(|c| c.iter().find(|h| h["hook"] == "exec"))
        .expect("exec counters")
        .clone();
    assert!(
        exec["sent"].as_u64().unwrap_or(0) > 100,
        "the storm was seen: {exec}"
    );
    assert_eq!(
        health["dropped"], 0,
        "dropped at start-up: {}",
        health["counters"]
    );
}

/// GET `path` from `addr`; `None` while nothing listens there yet.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn a_running_agent_serves_its_metrics_and_a_truthful_healthz() {
    if !node_agent::collector::root_or_skip(
        "a_running_agent_serves_its_metrics_and_a_truthful_healthz",
    ) {
        return;
    }
    // A free loopback port: bind one, note it, let it go.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let agent = Command::new(AGENT)
        .args([
            "run",
            "--no-detection",
            "--duration",
            "300s",
            "--format",
            "json",
        ])
        .args(["--metrics-addr", &addr.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start node-agent");
    // Until the sensors run, /healthz says the agent is starting (503); then 200.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let healthy = loop {
        match http_get(addr, "/healthz") {
            Some(r) if r.starts_with("HTTP/1.1 200") => break r,
            Some(r) => assert!(
                r.starts_with("HTTP/1.1 503") && r.contains("starting"),
                "{r}"
            ),
            None => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never became healthy"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(healthy.contains("hooks active"), "{healthy}");
    // Something to count: a few execs, then the counters move.
    for _ in 0..5 {
        let _ = Command::new("/bin/true").status();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let metrics = loop {
        let m = http_get(addr, "/metrics").unwrap_or_default();
        let sent = m
            .lines()
            .find(|l| {
                l.starts_with("vigil_agent_hook_records_total{hook=\"exec\",outcome=\"sent\"}")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if sent >= 5 {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "exec counter never moved:\n{m}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for want in [
        "vigil_agent_hook_active{hook=\"exec\",mechanism=",
        "process_resident_memory_bytes ",
        "vigil_agent_event_loop_age_seconds ",
        "vigil_agent_dropped_records_total ",
    ] {
        assert!(metrics.contains(want), "missing {want}:\n{metrics}");
    }
    // SIGINT stops it cleanly.
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(agent.id() as i32, libc::SIGINT) };
    let out = agent.wait_with_output().expect("agent output");
    no_panic(&out);
}

/// A stop while the agent is still starting (a service manager stopping it, a test that is
/// done) is a clean stop: exit code 0 and the health summary, not the default action's kill.
/// The signal goes out at the first line the agent logs once its sensor runs, while the threat
/// intel, the process table and the tool hashes are still loading.
#[test]
fn an_agent_stopped_while_it_starts_exits_cleanly_with_its_summary() {
    if !node_agent::collector::root_or_skip(
        "an_agent_stopped_while_it_starts_exits_cleanly_with_its_summary",
    ) {
        return;
    }
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut agent = Command::new(AGENT)
        .args([
            "run",
            "--format",
            "json",
            "--findings-only",
            "--health-json",
        ])
        .arg("--db")
        .arg(dir.path().join("findings.db"))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start node-agent");
    let stderr = agent.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    let mut signalled = false;
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        if !signalled && line.contains("the agent's identity in the kernel") {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
            signalled = true;
        }
        lines.push(line);
    }
    let status = agent.wait().expect("wait for node-agent");
    let text = lines.join("\n");
    assert!(signalled, "the agent never said its sensor runs:\n{text}");
    assert!(status.success(), "{status}:\n{text}");
    assert!(
        lines
            .iter()
            .any(|l| serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v.get("tracked").is_some())),
        "no health summary:\n{text}"
    );
}

#[test]
fn unknown_finding_type_is_rejected_with_the_list_of_types() {
    let out = Command::new(AGENT)
        .args([
            "run",
            "--disable-finding",
            "Execution:Runtime/NoSuchThing",
            "--duration",
            "1s",
        ])
        .output()
        .expect("run node-agent");
    assert!(!out.status.success());
    no_panic(&out);
    let text = stderr(&out);
    assert!(
        text.contains("--disable-finding \"Execution:Runtime/NoSuchThing\""),
        "{text}"
    );
    assert!(text.contains("no such finding type"), "{text}");
    assert!(
        text.contains("Execution:Runtime/NewLibraryLoaded"),
        "{text}"
    );
}

#[test]
fn an_unknown_finding_type_in_the_settings_file_is_rejected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = dir.path().join("vigil.yaml");
    std::fs::write(
        &settings,
        "disable-finding:\n  - Execution:Runtime/NewLibraryLoaded\n  - Trojan:Runtime/Nope\n",
    )
    .unwrap();
    let out = Command::new(AGENT)
        .args(["run", "--duration", "1s", "--settings"])
        .arg(&settings)
        .output()
        .expect("run node-agent");
    assert!(!out.status.success());
    no_panic(&out);
    let text = stderr(&out);
    assert!(text.contains("\"Trojan:Runtime/Nope\""), "{text}");
    assert!(text.contains("settings file"), "{text}");
    assert!(text.contains("Trojan:Runtime/DropPoint"), "{text}");
}

/// The hooks of a `probe` report or a health summary, by name: (state, reason).
fn hook_states(hooks: &serde_json::Value) -> std::collections::BTreeMap<String, (String, String)> {
    hooks
        .as_array()
        .expect("hooks array")
        .iter()
        .map(|h| {
            (
                h["hook"].as_str().unwrap_or_default().to_owned(),
                (
                    h["state"].as_str().unwrap_or_default().to_owned(),
                    h["reason"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

#[test]
fn root_probe_for_findings_only_leaves_off_the_hooks_of_disabled_types() {
    if !node_agent::collector::root_or_skip(
        "root_probe_for_findings_only_leaves_off_the_hooks_of_disabled_types",
    ) {
        return;
    }
    let probe = |extra: &[&str]| {
        let out = Command::new(AGENT)
            .args([
                "probe",
                "--disable-finding",
                "Execution:Runtime/NewLibraryLoaded",
            ])
            .args(extra)
            .output()
            .expect("run node-agent");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("probe prints JSON")
    };
    let report = probe(&["--findings-only"]);
    let states = hook_states(&report["hooks"]);
    let (state, reason) = &states["library_load"];
    assert_eq!(state, "notNeeded", "{states:?}");
    assert!(
        reason.contains("disabled: Execution:Runtime/NewLibraryLoaded"),
        "{reason}"
    );
    // Hooks no type reads are left off too, saying so (privilege feeds ElevationToRoot,
    // namespace PrivilegeEscalation:Runtime/SuspiciousCommand, dup ReverseShell).
    assert_eq!(states["memfd"].0, "notNeeded", "memfd: {states:?}");
    assert!(states["memfd"].1.contains("no finding type"), "{states:?}");
    assert_eq!(
        states["dup"].0, "active",
        "dup feeds ReverseShell: {states:?}"
    );
    // Every other hook attaches (or this kernel lacks it: no loadable modules here).
    for (hook, (state, _)) in &states {
        if hook == "library_load" || ["memfd", "namespace", "dup"].contains(&hook.as_str()) {
            continue;
        }
        assert!(
            state == "active" || state == "unsupported",
            "{hook}: {states:?}"
        );
    }
    assert_eq!(states["file_open"].0, "active");
    assert_eq!(states["exec"].0, "active");
    // A disabled type is off by choice, not a type that cannot fire.
    let cannot = report["findingTypesThatCannotFire"].to_string();
    assert!(!cannot.contains("NewLibraryLoaded"), "{cannot}");

    // Events printed: every hook is needed.
    let states = hook_states(&probe(&[])["hooks"]);
    assert!(
        states
            .values()
            .all(|(s, _)| s == "active" || s == "unsupported"),
        "{states:?}"
    );
}

#[test]
fn root_run_takes_disable_finding_from_the_settings_file() {
    if !node_agent::collector::root_or_skip("root_run_takes_disable_finding_from_the_settings_file")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = dir.path().join("vigil.yaml");
    std::fs::write(
        &settings,
        "findings-only: true\nno-store: true\ndisable-finding:\n  - Execution:Runtime/NewLibraryLoaded\n  - CryptoCurrency:Runtime/BitcoinTool.B\n",
    )
    .unwrap();
    let out = Command::new(AGENT)
        .args(["run", "--duration", "1s", "--health-json", "--settings"])
        .arg(&settings)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run node-agent");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    let health: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .expect("a JSON health summary on stderr");
    let states = hook_states(&health["hooks"]);
    assert_eq!(states["library_load"].0, "notNeeded", "{states:?}");
    // Stratum on the wire feeds BitcoinTool.B alone; connects feed other types.
    assert_eq!(states["stream_egress"].0, "notNeeded", "{states:?}");
    assert!(
        states["stream_egress"]
            .1
            .contains("CryptoCurrency:Runtime/BitcoinTool.B"),
        "{states:?}"
    );
    assert_eq!(states["connect"].0, "active", "{states:?}");
}
