//! The behavioural finding types against real behaviour on this machine: each test does the
//! thing (runs a freshly written binary, loads a freshly written library, writes into another
//! process, mounts from a container, touches the runtime socket or binary, modifies a sensitive
//! file), takes the events the sensors produced for that process tree, runs them through a
//! detector and expects exactly the finding; a benign variant of the same activity expects none.
//!
//! Root only (eBPF). The real /etc files are never written: sensitive files are temporary
//! prefixes added to the sensitive-path set with a category, plus one log file of our own
//! under /var/log. "Containers" are a runtime-named cgroup (`docker-<id>.scope`), as in
//! `sensor_breadth.rs`. Scratch programs live under the build's own temporary directory, not
//! /tmp: running a program from /tmp is a finding of its own (`detection_techniques.rs`).

mod support;

use std::{
    collections::BTreeMap,
    os::unix::{fs::PermissionsExt, net::UnixListener, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use node_agent::{
    collector::Collector,
    collector::root_or_skip as privileged,
    detect::{Detector, NoLookup},
    event::Event,
    sensitive::{Category, MatchKind, SensitivePaths},
    sensor::SensorOptions,
};
use vigil_crds::finding::{Finding, SeverityLabel};

/// An upper bound, not a duration: on a loaded 2-core machine 10 s was not enough.
const WAIT: Duration = Duration::from_secs(60);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");

/// Temporary directories added to the sensitive-path set, one per category.
static WATCHED: LazyLock<[(PathBuf, Category); 3]> = LazyLock::new(|| {
    let base = std::env::temp_dir().join(format!("vigil-dbw-{}", std::process::id()));
    let dirs = [
        (base.join("persist"), Category::Persistence),
        (base.join("privesc"), Category::PrivilegeEscalation),
        (base.join("evasion"), Category::DefenseEvasion),
    ];
    for (d, _) in &dirs {
        std::fs::create_dir_all(d).expect("watched dir");
    }
    dirs
});

fn sensitive() -> SensitivePaths {
    let mut set = SensitivePaths::default();
    for (dir, category) in WATCHED.iter() {
        set.add(&format!("{}/", dir.display()), MatchKind::Prefix, *category)
            .expect("a valid prefix");
    }
    set
}

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    Collector::start(SensorOptions {
        sensitive: sensitive(),
        ..SensorOptions::default()
    })
    .expect("the sensor starts as root")
});

fn nonce() -> String {
    node_agent::collector::unique_name("vb")
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("vigil-dbh-{tag}-{}", nonce()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes a file this test created, when dropped.
struct Created(PathBuf);

impl Drop for Created {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

fn sh(script: &str) -> u32 {
    run(Command::new("/bin/sh").args(["-c", script]))
}

fn trigger(args: &[&str]) -> (u32, String) {
    run_out(Command::new(TRIGGER).args(args))
}

/// Every event of the process tree rooted at `root`, once it has exited (see
/// `Collector::tree_events`).
fn tree_events(root: u32) -> Vec<Event> {
    AGENT
        .tree_events(root, WAIT)
        .unwrap_or_else(|| panic!("no exec and exit of {root} within {WAIT:?}"))
}

fn detector() -> Detector {
    support::detection::builtin_detector().with_sensitive_paths(sensitive())
}

fn detect(root: u32) -> Vec<Finding> {
    let mut d = detector();
    let mut by_id: BTreeMap<String, Finding> = BTreeMap::new();
    for event in tree_events(root) {
        for outcome in d.process(&event, &NoLookup) {
            by_id.insert(outcome.finding.id.clone(), outcome.finding);
        }
    }
    by_id.into_values().collect()
}

fn types(found: &[Finding]) -> Vec<&str> {
    found.iter().map(|f| f.finding_type.as_str()).collect()
}

fn none(found: &[Finding], what: &str) {
    assert_eq!(types(found), Vec::<&str>::new(), "{what}");
}

#[test]
fn a_binary_copied_then_run_is_new_in_a_container_and_not_on_the_host() {
    if !privileged("a_binary_copied_then_run_is_new_in_a_container_and_not_on_the_host") {
        return;
    }
    let dir = Scratch::new("newbin");
    let dropper = dir.path("dropper");
    let script = format!("cp /bin/true {dropper} && {dropper} x; true");
    let container = FakeContainer::new();
    let pid = container.run("/bin/sh", &["-c", script.as_str()]);
    let found = detect(pid);
    assert_eq!(types(&found), ["Execution:Runtime/NewBinaryExecuted"]);
    let f = &found[0];
    assert_eq!(f.severity_label, SeverityLabel::Medium);
    assert_eq!(f.context.file_path.as_deref(), Some(dropper.as_str()));
    let m = f.context.modifying_process.as_ref().expect("modifier");
    assert_eq!(m.name, "cp");
    assert!(f.context.modified_at.is_some());
    assert!(f.resource.container.is_some());

    // On the host GuardDuty's type does not apply (off by default).
    let _ = std::fs::remove_file(&dropper);
    none(&detect(sh(&script)), "a copied binary run on the host");
    std::fs::write(dir.0.join("tiny.c"), "int main(void) { return 0; }\n").expect("tiny.c");
    let pid = sh(&format!(
        "cd {} && cc -o tiny tiny.c && ./tiny; true",
        dir.0.display()
    ));
    none(&detect(pid), "cc then ./tiny: linked by ld on the host");
}

#[test]
fn a_library_copied_then_loaded_in_a_container_is_new_and_on_the_host_is_not() {
    if !privileged("a_library_copied_then_loaded_in_a_container_is_new_and_on_the_host_is_not") {
        return;
    }
    let dir = Scratch::new("newlib");
    std::fs::write(
        dir.0.join("lib.c"),
        "int vigil_answer(void) { return 42; }\n",
    )
    .expect("lib.c");
    std::fs::write(
        dir.0.join("loader.c"),
        "#include <dlfcn.h>\nint main(int c, char **v) { return c > 1 && dlopen(v[1], RTLD_NOW) ? 0 : 1; }\n",
    )
    .expect("loader.c");
    let built = sh(&format!(
        "cd {} && cc -shared -fPIC -o libbuilt.so lib.c && cc -o loader loader.c -ldl && \
         cp libbuilt.so libcopied.so",
        dir.0.display()
    ));
    assert!(
        tree_events(built)
            .iter()
            .any(|e| matches!(e, Event::Exec(x) if x.argv.first().is_some_and(|a| a == "cp")))
    );
    let loader = dir.path("loader");
    // Rewritten by this process, which the agent does not observe: the loader itself is not
    // new (in a container nothing is exempt, not even ld's output).
    let program = std::fs::read(&loader).expect("read loader");
    std::fs::write(&loader, program).expect("rewrite loader");
    let container = FakeContainer::new();
    let copied = dir.path("libcopied.so");
    let pid = container.run(&loader, &[copied.as_str()]);
    let found = detect(pid);
    assert_eq!(types(&found), ["Execution:Runtime/NewLibraryLoaded"]);
    let m = found[0]
        .context
        .modifying_process
        .as_ref()
        .expect("modifier");
    assert_eq!(m.name, "cp");
    let inode = std::fs::metadata(dir.0.join("libcopied.so"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m).to_string())
        .expect("stat");
    assert_eq!(
        found[0].context.additional.get("libraryInode"),
        Some(&inode)
    );

    let (pid, _) = run_out(Command::new(&loader).arg(&copied));
    none(&detect(pid), "a copied library loaded on the host");
    let (pid, _) = run_out(Command::new(&loader).arg(dir.path("libbuilt.so")));
    none(&detect(pid), "a library linked by ld on the host");
}

#[test]
fn execution_from_a_memfd_is_fileless() {
    if !privileged("execution_from_a_memfd_is_fileless") {
        return;
    }
    let (pid, _) = trigger(&["memfd-exec"]);
    let found = detect(pid);
    assert_eq!(types(&found), ["DefenseEvasion:Runtime/FilelessExecution"]);
    assert_eq!(
        found[0]
            .context
            .additional
            .get("executableOrigin")
            .map(String::as_str),
        Some("memfd")
    );
    let pid = run(&mut Command::new("/bin/true"));
    none(&detect(pid), "a binary on disk");

    // A dropper that writes itself a program, unlinks it and runs it from the open file:
    // fileless (deleted) and, as it was just written, in a container a new binary.
    let dir = Scratch::new("deleted");
    let (pid, _) = trigger(&["deleted-exec", &dir.path("gone")]);
    assert_eq!(
        types(&detect(pid)),
        ["DefenseEvasion:Runtime/FilelessExecution"],
        "on the host"
    );
    let container = FakeContainer::new();
    let gone = dir.path("gone");
    let pid = container.run(TRIGGER, &["deleted-exec", gone.as_str()]);
    let found = detect(pid);
    let mut got = types(&found);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "DefenseEvasion:Runtime/FilelessExecution",
            "Execution:Runtime/NewBinaryExecuted"
        ]
    );
    let fileless = found
        .iter()
        .find(|f| f.finding_type == "DefenseEvasion:Runtime/FilelessExecution")
        .expect("fileless");
    assert_eq!(
        fileless
            .context
            .additional
            .get("executableOrigin")
            .map(String::as_str),
        Some("deleted")
    );
    let new = found
        .iter()
        .find(|f| f.finding_type == "Execution:Runtime/NewBinaryExecuted")
        .expect("new binary");
    assert_eq!(
        new.context.modifying_process.as_ref().map(|m| m.pid),
        Some(pid),
        "the dropper wrote it"
    );
}

#[test]
fn writing_another_process_memory_through_proc_is_injection() {
    if !privileged("writing_another_process_memory_through_proc_is_injection") {
        return;
    }
    let (pid, child) = trigger(&["proc-mem"]);
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["DefenseEvasion:Runtime/ProcessInjection.Proc"]
    );
    assert_eq!(found[0].severity_label, SeverityLabel::High);
    assert_eq!(found[0].context.additional.get("targetPid"), Some(&child));
    let (pid, _) = trigger(&["proc-mem-self"]);
    none(&detect(pid), "its own memory");
}

#[test]
fn ptrace_attach_is_injection_traceme_is_anti_debugging_and_strace_is_neither() {
    if !privileged("ptrace_attach_is_injection_traceme_is_anti_debugging_and_strace_is_neither") {
        return;
    }
    let (pid, child) = trigger(&["ptrace-attach"]);
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["DefenseEvasion:Runtime/ProcessInjection.Ptrace"]
    );
    assert_eq!(found[0].context.additional.get("targetPid"), Some(&child));
    assert_eq!(
        found[0]
            .context
            .additional
            .get("ptraceRequest")
            .map(String::as_str),
        Some("PTRACE_ATTACH")
    );

    let (pid, _) = trigger(&["ptrace-traceme"]);
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["DefenseEvasion:Runtime/PtraceAntiDebugging"]
    );
    assert_eq!(found[0].severity_label, SeverityLabel::Low);

    // A refused attach (nobody against init) is still the attempt.
    let pid = run(Command::new(TRIGGER)
        .args(["ptrace-attach-pid", "1"])
        .uid(65534)
        .gid(65534));
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["DefenseEvasion:Runtime/ProcessInjection.Ptrace"],
        "refused attach"
    );
    assert_eq!(
        found[0]
            .context
            .additional
            .get("result")
            .map(String::as_str),
        Some("EPERM")
    );
    // strace running a program: it seizes its own child, its probes call PTRACE_TRACEME.
    let pid = run(Command::new("strace").args(["-f", "-o", "/dev/null", "/bin/true"]));
    let events = tree_events(pid);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Activity(a) if a.operation == "ptrace")),
        "strace used ptrace"
    );
    let mut d = detector();
    let found: Vec<String> = events
        .iter()
        .flat_map(|e| d.process(e, &NoLookup))
        .map(|o| o.finding.finding_type)
        .collect();
    assert!(found.is_empty(), "strace CMD: {found:?}");
}

#[test]
fn process_vm_writev_into_another_process_is_injection() {
    if !privileged("process_vm_writev_into_another_process_is_injection") {
        return;
    }
    let (pid, child) = trigger(&["vm-write"]);
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite"]
    );
    assert_eq!(found[0].context.additional.get("targetPid"), Some(&child));
    let (pid, _) = trigger(&["vm-write-self"]);
    none(&detect(pid), "into itself");
}

#[test]
fn userfaultfd_by_root_and_a_refused_one_by_nobody_are_reported() {
    if !privileged("userfaultfd_by_root_and_a_refused_one_by_nobody_are_reported") {
        return;
    }
    let (pid, _) = trigger(&["userfaultfd"]);
    assert_eq!(
        types(&detect(pid)),
        ["PrivilegeEscalation:Runtime/UserfaultfdUsage"]
    );
    let unprivileged = std::fs::read_to_string("/proc/sys/vm/unprivileged_userfaultfd")
        .map(|t| t.trim() == "0")
        .unwrap_or(false);
    if unprivileged {
        let pid = run(Command::new(TRIGGER)
            .arg("userfaultfd")
            .uid(65534)
            .gid(65534));
        let events = tree_events(pid);
        let call = events.iter().find_map(|e| match e {
            Event::Activity(a) if a.operation == "userfaultfd" => Some(a.ret),
            _ => None,
        });
        assert!(call.is_some_and(|r| r < 0), "refused for nobody: {call:?}");
        let found = detect(pid);
        assert_eq!(
            types(&found),
            ["PrivilegeEscalation:Runtime/UserfaultfdUsage"],
            "the attempt counts"
        );
        assert_eq!(
            found[0]
                .context
                .additional
                .get("result")
                .map(String::as_str),
            Some("EPERM")
        );
    } else {
        eprintln!("NOT TESTED refused userfaultfd: vm.unprivileged_userfaultfd is not 0");
    }
}

/// A runtime-named cgroup (`docker-<id>.scope`) under the cgroup v2 root, removed on drop.
struct FakeContainer {
    dir: PathBuf,
    id: String,
}

impl FakeContainer {
    fn new() -> Self {
        let root = node_agent::sensor::cgroup2_root().expect("cgroup v2 is mounted");
        let n = nonce();
        let id = format!(
            "{:0>64x}",
            u128::from(std::process::id()) << 64 | u128::from(n.len() as u32) << 32 | 0xdec0de
        );
        let dir = root
            .join(format!("vigil-dbh-{n}"))
            .join(format!("docker-{id}.scope"));
        std::fs::create_dir_all(&dir).expect("create a cgroup");
        // The container resolver rescans the hierarchy at most once a second.
        std::thread::sleep(Duration::from_millis(1100));
        Self { dir, id }
    }

    /// Runs `program args` inside the cgroup (the shell joins it, then execs the program).
    fn run(&self, program: &str, args: &[&str]) -> u32 {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
            self.dir.display()
        );
        run(Command::new("/bin/sh")
            .args(["-c", &script, program])
            .args(args))
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn a_container_bind_mounting_a_host_directory() {
    if !privileged("a_container_bind_mounting_a_host_directory") {
        return;
    }
    let src = Scratch::new("mnt-src");
    let dst = Scratch::new("mnt-dst");
    let (s, t) = (src.0.display().to_string(), dst.0.display().to_string());
    let container = FakeContainer::new();
    let pid = container.run(TRIGGER, &["bind-mount", &s, &t]);
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["PrivilegeEscalation:Runtime/ContainerMountsHostDirectory"]
    );
    let f = &found[0];
    assert_eq!(f.context.mount_source.as_deref(), Some(s.as_str()));
    assert_eq!(f.context.mount_target.as_deref(), Some(t.as_str()));
    assert_eq!(
        f.resource.container.as_ref().map(|c| c.id.as_str()),
        Some(container.id.as_str())
    );

    let pid = container.run(TRIGGER, &["tmpfs-mount", &t]);
    none(&detect(pid), "a tmpfs in the container");
    let (pid, _) = trigger(&["bind-mount", &s, &t]);
    none(&detect(pid), "the same bind mount on the host");
}

#[test]
fn a_container_connecting_to_the_docker_socket() {
    if !privileged("a_container_connecting_to_the_docker_socket") {
        return;
    }
    let socket = Path::new("/run/docker.sock");
    if socket.exists() {
        eprintln!("NOT TESTED docker socket: /run/docker.sock exists and is left alone");
        return;
    }
    let listener = UnixListener::bind(socket).expect("bind /run/docker.sock");
    let _cleanup = Created(socket.to_path_buf());
    let accept = std::thread::spawn(move || {
        for _ in 0..3 {
            if listener.accept().is_err() {
                break;
            }
        }
    });
    let container = FakeContainer::new();
    let pid = container.run(TRIGGER, &["unix-connect", "/run/docker.sock"]);
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["PrivilegeEscalation:Runtime/DockerSocketAccessed"]
    );
    assert_eq!(
        found[0].context.socket_path.as_deref(),
        Some("/run/docker.sock")
    );

    let (pid, _) = trigger(&["unix-connect", "/run/docker.sock"]);
    none(&detect(pid), "the docker CLI's connect on the host");
    let other = Scratch::new("sock");
    let other_path = other.path("app.sock");
    let _app = UnixListener::bind(&other_path).expect("bind");
    let pid = container.run(TRIGGER, &["unix-connect", &other_path]);
    none(&detect(pid), "another socket from the container");
    // Unblock the accept thread.
    let _ = std::os::unix::net::UnixStream::connect(socket);
    let _ = accept.join();
}

#[test]
fn a_write_to_the_runc_binary_is_an_escape_attempt() {
    if !privileged("a_write_to_the_runc_binary_is_an_escape_attempt") {
        return;
    }
    let runc = Path::new("/usr/local/sbin/runc");
    if runc.exists() {
        eprintln!("NOT TESTED runc: /usr/local/sbin/runc exists and is left alone");
        return;
    }
    std::fs::create_dir_all("/usr/local/sbin").expect("/usr/local/sbin");
    // Created by this process: the agent's own tasks are not observed.
    std::fs::write(runc, "#!/bin/sh\n").expect("create runc");
    let _cleanup = Created(runc.to_path_buf());
    let pid = sh("echo '# overwritten' >> /usr/local/sbin/runc");
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["PrivilegeEscalation:Runtime/RuncContainerEscape"]
    );
    assert_eq!(found[0].severity_label, SeverityLabel::High);
    assert_eq!(
        found[0].context.file_path.as_deref(),
        Some("/usr/local/sbin/runc")
    );
    let pid = sh("cat /usr/local/sbin/runc >/dev/null");
    none(&detect(pid), "reading runc");
}

#[test]
fn a_write_to_a_release_agent_file() {
    if !privileged("a_write_to_a_release_agent_file") {
        return;
    }
    let dir = Scratch::new("cg");
    let agent = dir.path("release_agent");
    let pid = sh(&format!("echo /tmp/payload > {agent}"));
    let found = detect(pid);
    assert_eq!(
        types(&found),
        ["PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified"]
    );
    assert_eq!(found[0].context.file_path.as_deref(), Some(agent.as_str()));
    let pid = sh(&format!(
        "cat {agent} >/dev/null; echo x > {}",
        dir.path("notify_on_release")
    ));
    none(&detect(pid), "reading it, writing a neighbour");
    // Removed, as a runtime removes a container layer holding one (after Falco's action):
    // no release agent changes, and cgroupfs files cannot be removed.
    let pid = sh(&format!("rm -f {agent}"));
    none(&detect(pid), "removing a file named release_agent");
}

#[test]
fn sensitive_files_of_each_category_and_ordinary_log_appends() {
    if !privileged("sensitive_files_of_each_category_and_ordinary_log_appends") {
        return;
    }
    LazyLock::force(&AGENT);
    let want = [
        "Persistence:Runtime/SensitiveFileModified",
        "PrivilegeEscalation:Runtime/SensitiveFileModified",
        "DefenseEvasion:Runtime/SensitiveFileModified",
    ];
    for ((dir, _), t) in WATCHED.iter().zip(want) {
        let file = dir.join(format!("cfg-{}", nonce()));
        let pid = sh(&format!("echo x > {}", file.display()));
        let found = detect(pid);
        assert_eq!(types(&found), [t], "{}", file.display());
        assert_eq!(
            found[0].context.file_path.as_deref(),
            Some(file.display().to_string().as_str())
        );
        assert_eq!(
            found[0].context.file_operation.as_deref(),
            Some("openWrite")
        );
        // Read back: nothing; a refused write (nobody, root's 0755 directory): nothing.
        let pid = sh(&format!("cat {} >/dev/null", file.display()));
        none(&detect(pid), "a read");
        let pid = run(Command::new("/bin/sh")
            .args(["-c", &format!("echo y > {}/denied; true", dir.display())])
            .uid(65534)
            .gid(65534));
        none(&detect(pid), "a refused write");
    }

    // A log of our own under /var/log: appends are logging, truncation is tampering.
    let log = PathBuf::from(format!("/var/log/vigil-test-{}.log", nonce()));
    let _cleanup = Created(log.clone());
    let pid = sh(&format!(
        "echo started >> {l}; echo working >> {l}",
        l = log.display()
    ));
    none(&detect(pid), "appends to a log");
    let pid = sh(&format!(": > {}", log.display()));
    assert_eq!(
        types(&detect(pid)),
        ["DefenseEvasion:Runtime/SensitiveFileModified"],
        "log truncated"
    );
    // Only this test writes under the watched prefixes.
    if let Some(base) = WATCHED[0].0.parent() {
        let _ = std::fs::remove_dir_all(base);
    }
}
