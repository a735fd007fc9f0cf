//! The second round of sensors against real behaviour: sensitive files, written-then-executed
//! binaries, fileless execution, process injection, kernel and escape primitives, privilege
//! changes and exec context. Root only (see `privileged`), like `sensors.rs`.

use std::{
    io::Read,
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use node_agent::{
    collector::Collector,
    collector::root_or_skip as privileged,
    event::{ActivityInfo, Event, ExecInfo, FileInfo},
    sensitive::{Category, MatchKind, SensitivePaths},
    sensor::SensorOptions,
};

const WAIT: Duration = Duration::from_secs(10);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");

/// A directory the test configures as a sensitive prefix.
static WATCHED: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("vigil-watched-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the watched directory");
    dir
});

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    let mut sensitive = SensitivePaths::default();
    sensitive
        .add(
            &format!("{}/", WATCHED.display()),
            MatchKind::Prefix,
            Category::Persistence,
        )
        .expect("a valid prefix");
    Collector::start(SensorOptions {
        sensitive,
        ..SensorOptions::default()
    })
    .expect("the sensor starts as root")
});

fn sh(script: &str) -> u32 {
    let mut child = Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id();
    assert!(
        child.wait().expect("wait").success(),
        "sh -c {script:?} failed"
    );
    pid
}

fn trigger(args: &[&str]) -> (u32, String) {
    let child = Command::new(TRIGGER)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn trigger");
    let pid = child.id();
    let out = child.wait_with_output().expect("trigger output");
    assert!(out.status.success(), "vigil-trigger {args:?} failed");
    (pid, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn file_event(pred: impl Fn(&FileInfo) -> bool) -> FileInfo {
    match AGENT.wait_for(WAIT, |e| matches!(e, Event::File(f) if pred(f))) {
        Some(Event::File(f)) => f,
        other => panic!("no matching file event within {WAIT:?}: {other:?}"),
    }
}

fn activity(pid: u32, operation: &str) -> ActivityInfo {
    match AGENT.wait_for(
        WAIT,
        |e| matches!(e, Event::Activity(a) if a.process.pid == pid && a.operation == operation),
    ) {
        Some(Event::Activity(a)) => a,
        other => panic!("no {operation} activity from {pid} within {WAIT:?}: {other:?}"),
    }
}

fn exec_by(pred: impl Fn(&ExecInfo) -> bool) -> Box<ExecInfo> {
    match AGENT.wait_for(WAIT, |e| matches!(e, Event::Exec(x) if pred(x))) {
        Some(Event::Exec(x)) => x,
        other => panic!("no matching exec within {WAIT:?}: {other:?}"),
    }
}

fn watched(name: &str) -> PathBuf {
    WATCHED.join(name)
}

#[test]
fn writes_renames_links_and_unlinks_under_a_sensitive_prefix() {
    if !privileged("writes_renames_links_and_unlinks_under_a_sensitive_prefix") {
        return;
    }
    LazyLock::force(&AGENT);
    let (a, b, l, s) = (
        watched("cfg-a"),
        watched("cfg-b"),
        watched("cfg-link"),
        watched("cfg-sym"),
    );
    let pid = sh(&format!(
        "echo x > {a}; mv {a} {b}; ln {b} {l}; ln -s {b} {s}; rm {l} {s}",
        a = a.display(),
        b = b.display(),
        l = l.display(),
        s = s.display()
    ));
    let open = file_event(|f| {
        (f.process.ppid == pid || f.process.pid == pid) && f.operation == "openWrite"
    });
    assert_eq!(open.resolved_path.as_deref(), Some(a.as_path()));
    assert!(open.ret >= 0 && open.inode.is_some());
    assert!(open.matched_by.contains(&"prefix"));
    let rename = file_event(|f| f.operation == "rename" && f.path == a.display().to_string());
    assert_eq!(
        rename.path2.as_deref(),
        Some(b.display().to_string().as_str())
    );
    assert_eq!(rename.ret, 0);
    let link = file_event(|f| {
        f.operation == "link" && f.path2.as_deref() == Some(l.display().to_string().as_str())
    });
    assert_eq!(link.ret, 0);
    let sym = file_event(|f| f.operation == "symlink" && f.path == s.display().to_string());
    assert_eq!(
        sym.path2.as_deref(),
        Some(b.display().to_string().as_str()),
        "the symlink's target"
    );
    for gone in [&l, &s] {
        let unlink = file_event(|f| {
            f.operation == "unlink" && f.resolved_path.as_deref() == Some(gone.as_path())
        });
        assert_eq!(unlink.ret, 0);
    }
}

#[test]
fn chmod_adding_execute_is_reported_and_plain_chmod_is_not() {
    if !privileged("chmod_adding_execute_is_reported_and_plain_chmod_is_not") {
        return;
    }
    LazyLock::force(&AGENT);
    let plain = watched("mode-plain");
    let exec = watched("mode-exec");
    std::fs::write(&plain, "x").expect("write");
    std::fs::write(&exec, "x").expect("write");
    sh(&format!(
        "chmod 0640 {}; chmod 4755 {}",
        plain.display(),
        exec.display()
    ));
    let event = file_event(|f| {
        f.operation == "chmod" && f.resolved_path.as_deref() == Some(exec.as_path())
    });
    assert_eq!(event.mode.as_deref(), Some("4755"));
    assert!(
        AGENT.matching(|e| matches!(e, Event::File(f) if f.operation == "chmod" && f.resolved_path.as_deref() == Some(plain.as_path()))).is_empty(),
        "chmod without x, setuid or setgid bits is not sensitive"
    );
}

#[test]
fn relative_write_to_authorized_keys_is_caught_by_name_and_resolved() {
    if !privileged("relative_write_to_authorized_keys_is_caught_by_name_and_resolved") {
        return;
    }
    LazyLock::force(&AGENT);
    let dir = std::env::temp_dir().join(format!("vigil-home-{}/.ssh", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    sh(&format!(
        "cd {} && echo ssh-ed25519 AAAA >> authorized_keys",
        dir.display()
    ));
    let event = file_event(|f| f.path == "authorized_keys" && f.operation == "openWrite");
    assert!(event.matched_by.contains(&"name"));
    assert_eq!(
        event.resolved_path.as_deref(),
        Some(dir.join("authorized_keys").as_path())
    );
    let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
}

#[test]
fn ordinary_writes_outside_the_set_are_not_reported() {
    if !privileged("ordinary_writes_outside_the_set_are_not_reported") {
        return;
    }
    LazyLock::force(&AGENT);
    let scratch = std::env::temp_dir().join(format!("vigil-scratch-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("mkdir");
    let file = scratch.join("notes.txt");
    let pid = sh(&format!(
        "echo a > {f}; mv {f} {f}.1; rm {f}.1",
        f = file.display()
    ));
    // The exit of sh is after its children: once seen, any file record would be there too.
    assert!(
        AGENT
            .wait_for(
                WAIT,
                |e| matches!(e, Event::Exit(x) if x.process.pid == pid)
            )
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(100));
    let leaked = AGENT.matching(
        |e| matches!(e, Event::File(f) if f.path.contains(&*scratch.display().to_string())),
    );
    assert!(
        leaked.is_empty(),
        "writes outside the sensitive set were reported: {leaked:?}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn a_new_binary_executed_carries_its_writer() {
    if !privileged("a_new_binary_executed_carries_its_writer") {
        return;
    }
    LazyLock::force(&AGENT);
    let bin = std::env::temp_dir().join(format!("vigil-newbin-{}", std::process::id()));
    let cp = Command::new("cp")
        .arg("/bin/true")
        .arg(&bin)
        .spawn()
        .expect("cp");
    let writer_pid = cp.id();
    assert!(cp.wait_with_output().expect("cp").status.success());
    let run = Command::new(&bin)
        .arg("fresh")
        .spawn()
        .expect("run the new binary");
    let pid = run.id();
    run.wait_with_output().expect("wait");
    let exec = exec_by(|x| x.process.pid == pid);
    let writer = exec
        .written_by
        .as_ref()
        .expect("the exec is marked as a written file");
    assert_eq!(writer.pid, writer_pid);
    assert_eq!(writer.comm, "cp");
    // An old binary is not marked.
    let old = Command::new("/bin/true").arg("old").spawn().expect("true");
    let old_pid = old.id();
    old.wait_with_output().expect("wait");
    assert!(exec_by(|x| x.process.pid == old_pid).written_by.is_none());
    let _ = std::fs::remove_file(&bin);
}

#[test]
fn memfd_execution_is_fileless() {
    if !privileged("memfd_execution_is_fileless") {
        return;
    }
    LazyLock::force(&AGENT);
    let child = Command::new(TRIGGER)
        .arg("memfd-exec")
        .spawn()
        .expect("spawn");
    let pid = child.id();
    child.wait_with_output().expect("wait");
    let created = activity(pid, "memfdCreate");
    assert_eq!(created.name.as_deref(), Some("vigil-fileless"));
    assert!(created.ret >= 0);
    let exec = exec_by(|x| {
        x.process.pid == pid && x.argv.first().map(String::as_str) == Some("vigil-fileless")
    });
    assert!(exec.fileless, "exec from a memfd is flagged: {exec:?}");
}

#[test]
fn ptrace_attach_and_traceme() {
    if !privileged("ptrace_attach_and_traceme") {
        return;
    }
    LazyLock::force(&AGENT);
    let (pid, child) = trigger(&["ptrace-attach"]);
    let attach = activity(pid, "ptrace");
    assert_eq!(attach.request.as_deref(), Some("PTRACE_ATTACH"));
    assert_eq!(attach.target_pid.map(|p| p.to_string()), Some(child));
    assert_eq!(attach.ret, 0);
    let (pid, _) = trigger(&["ptrace-traceme"]);
    let me = activity(pid, "ptrace");
    assert_eq!(me.request.as_deref(), Some("PTRACE_TRACEME"));
    assert_eq!(me.target_pid, None);
}

#[test]
fn process_vm_writev_into_a_child() {
    if !privileged("process_vm_writev_into_a_child") {
        return;
    }
    LazyLock::force(&AGENT);
    let (pid, child) = trigger(&["vm-write"]);
    let write = activity(pid, "processVmWritev");
    assert_eq!(write.target_pid.map(|p| p.to_string()), Some(child));
    assert_eq!(write.ret, 8, "eight bytes written");
}

#[test]
fn opening_another_process_memory_for_write() {
    if !privileged("opening_another_process_memory_for_write") {
        return;
    }
    LazyLock::force(&AGENT);
    let (pid, child) = trigger(&["proc-mem"]);
    let open = file_event(|f| f.process.pid == pid && f.matched_by.contains(&"procMem"));
    assert_eq!(open.proc_mem_pid.map(|p| p.to_string()), Some(child));
    assert!(open.ret >= 0);
}

#[test]
fn userfaultfd_is_reported() {
    if !privileged("userfaultfd_is_reported") {
        return;
    }
    LazyLock::force(&AGENT);
    let (pid, _) = trigger(&["userfaultfd"]);
    assert!(activity(pid, "userfaultfd").ret >= 0);
}

#[test]
fn bind_mount_in_a_new_mount_namespace() {
    if !privileged("bind_mount_in_a_new_mount_namespace") {
        return;
    }
    LazyLock::force(&AGENT);
    let src = std::env::temp_dir().join(format!("vigil-mnt-src-{}", std::process::id()));
    let dst = std::env::temp_dir().join(format!("vigil-mnt-dst-{}", std::process::id()));
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::create_dir_all(&dst).expect("mkdir");
    let (pid, _) = trigger(&[
        "bind-mount",
        &src.display().to_string(),
        &dst.display().to_string(),
    ]);
    let unshare = activity(pid, "unshare");
    assert_eq!(unshare.namespaces, vec!["mnt"]);
    let host_mnt_ns: u32 = std::fs::read_link("/proc/self/ns/mnt")
        .expect("own mount namespace")
        .to_string_lossy()
        .trim_start_matches("mnt:[")
        .trim_end_matches(']')
        .parse()
        .expect("namespace inode");
    assert_ne!(
        unshare.process.mnt_ns, host_mnt_ns,
        "after unshare the process is in a new namespace"
    );
    let binds: Vec<ActivityInfo> = AGENT
        .matching(
            |e| matches!(e, Event::Activity(a) if a.process.pid == pid && a.operation == "mount"),
        )
        .into_iter()
        .filter_map(|e| {
            if let Event::Activity(a) = e {
                Some(a)
            } else {
                None
            }
        })
        .collect();
    let bind = binds
        .iter()
        .find(|a| a.source.as_deref() == Some(&*src.display().to_string()))
        .unwrap_or_else(|| panic!("no bind mount among {binds:?}"));
    assert_eq!(bind.target.as_deref(), Some(&*dst.display().to_string()));
    assert_eq!(bind.flags.map(|f| f & libc::MS_BIND), Some(libc::MS_BIND));
    assert_eq!(bind.ret, 0);
    assert_ne!(
        bind.process.mnt_ns, host_mnt_ns,
        "the mount happened in the new namespace"
    );
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir_all(&dst);
}

#[test]
fn setuid_root_helper_run_by_an_unprivileged_user() {
    if !privileged("setuid_root_helper_run_by_an_unprivileged_user") {
        return;
    }
    LazyLock::force(&AGENT);
    // A root-owned setuid copy of the trigger, in a directory nobody can reach.
    let dir = std::env::temp_dir().join(format!("vigil-suid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let helper = dir.join("suid-helper");
    std::fs::copy(TRIGGER, &helper).expect("copy");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755)).expect("setuid bit");
    let child = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(&helper)
        .args(["setresuid", "0"])
        .spawn()
        .expect("setpriv");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "the setuid helper ran");
    let exec = exec_by(|x| x.process.pid == pid && x.exe == helper);
    assert!(
        exec.setuid,
        "uid {} euid {}",
        exec.process.uid, exec.process.euid
    );
    assert_eq!((exec.process.uid, exec.process.euid), (65534, 0));
    // setpriv itself called setresuid(65534, ...) in this process before the exec: take the
    // helper's call, the one asking for root.
    let change = match AGENT.wait_for(WAIT, |e| {
        matches!(e, Event::Activity(a) if a.process.pid == pid && a.operation == "setresuid" && a.requested == vec![0, 0, 0])
    }) {
        Some(Event::Activity(a)) => a,
        other => panic!("no setresuid(0, 0, 0) from {pid}: {other:?}"),
    };
    assert_eq!(change.before.map(|b| (b[0], b[1])), Some((65534, 0)));
    assert_eq!(
        (change.process.uid, change.process.euid),
        (0, 0),
        "after: root"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exec_with_ld_preload_reports_the_value() {
    if !privileged("exec_with_ld_preload_reports_the_value") {
        return;
    }
    LazyLock::force(&AGENT);
    let marker = format!("vigil-preload-{}", std::process::id());
    let child = Command::new("/bin/true")
        .arg(&marker)
        .env("LD_PRELOAD", "/nonexistent/vigil-preload.so")
        .env("LD_LIBRARY_PATH", "/opt/vigil/lib")
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    child.wait_with_output().expect("wait");
    let exec = exec_by(|x| x.process.pid == pid);
    assert_eq!(
        exec.ld_preload.as_deref(),
        Some("/nonexistent/vigil-preload.so")
    );
    assert_eq!(exec.ld_library_path.as_deref(), Some("/opt/vigil/lib"));
    let plain = Command::new("/bin/true")
        .env_remove("LD_PRELOAD")
        .spawn()
        .expect("spawn");
    let plain_pid = plain.id();
    plain.wait_with_output().expect("wait");
    assert_eq!(exec_by(|x| x.process.pid == plain_pid).ld_preload, None);
    // LD_AUDIT shares LD_PRELOAD's buffer in the record; LD_PRELOAD keeps it when both are
    // set, and LD_AUDIT is flagged as set but not read.
    let run_with = |vars: &[(&str, &str)]| {
        let mut cmd = Command::new("/bin/true");
        cmd.env_remove("LD_PRELOAD").env_remove("LD_AUDIT");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.stderr(Stdio::null()).spawn().expect("spawn");
        let pid = child.id();
        child.wait_with_output().expect("wait");
        exec_by(|x| x.process.pid == pid)
    };
    let audited = run_with(&[("LD_AUDIT", "/nonexistent/vigil-audit.so")]);
    assert_eq!(
        audited.ld_audit.as_deref(),
        Some("/nonexistent/vigil-audit.so")
    );
    assert_eq!(audited.ld_preload, None);
    assert!(!audited.ld_audit_unread);
    let both = run_with(&[
        ("LD_PRELOAD", "/nonexistent/vigil-preload.so"),
        ("LD_AUDIT", "/nonexistent/vigil-audit.so"),
    ]);
    assert_eq!(
        both.ld_preload.as_deref(),
        Some("/nonexistent/vigil-preload.so")
    );
    assert_eq!(both.ld_audit, None);
    assert!(both.ld_audit_unread);
}

#[test]
fn shell_with_a_socket_for_stdio() {
    if !privileged("shell_with_a_socket_for_stdio") {
        return;
    }
    LazyLock::force(&AGENT);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accept = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let child = Command::new(TRIGGER)
        .args(["revshell", &addr.to_string()])
        .spawn()
        .expect("spawn");
    let pid = child.id();
    child.wait_with_output().expect("wait");
    accept.join().expect("listener");
    let dup = activity(pid, "dupSocket");
    assert_eq!(dup.socket.as_ref().and_then(|s| s.remote), Some(addr));
    let exec = exec_by(|x| x.process.pid == pid && x.filename == "/bin/sh");
    let fds: Vec<u8> = exec.stdio_sockets.iter().map(|s| s.fd).collect();
    assert_eq!(
        fds,
        vec![0, 1, 2],
        "all three standard streams are the socket: {exec:?}"
    );
    assert!(exec.stdio_sockets.iter().all(|s| s.remote == Some(addr)));
}

#[test]
fn module_loading_is_tested_where_the_kernel_allows_it() {
    if !privileged("module_loading_is_tested_where_the_kernel_allows_it") {
        return;
    }
    let module = AGENT
        .hooks()
        .iter()
        .find(|h| h.hook == "module")
        .expect("module hook")
        .clone();
    let modules_dir = Path::new("/proc/modules");
    if !modules_dir.exists() {
        // No loadable-module support: the sensor must say so, not pretend.
        assert!(
            matches!(module.state, node_agent::sensor::HookState::Unsupported(_)),
            "without module support the hook reports why: {module}"
        );
        eprintln!("NOT TESTED module load: this kernel has no loadable-module support ({module})");
        return;
    }
    eprintln!(
        "NOT TESTED module load: loading a stock module would change the host kernel ({module})"
    );
}

/// A cgroup made for one test under the cgroup v2 root, removed on drop.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn a_process_in_new_namespaces_and_a_runtime_cgroup_is_a_container() {
    if !privileged("a_process_in_new_namespaces_and_a_runtime_cgroup_is_a_container") {
        return;
    }
    LazyLock::force(&AGENT);
    let root = node_agent::sensor::cgroup2_root().expect("cgroup v2 is mounted (hybrid or pure)");
    let id = format!("{:0>64x}", u128::from(std::process::id()) << 64 | 0xc0ffee);
    let cgroup = TestCgroup(
        root.join(format!("vigil-test-{}", std::process::id()))
            .join(format!("docker-{id}.scope")),
    );
    std::fs::create_dir_all(&cgroup.0).expect("create a cgroup");
    let marker = format!("vigil-container-{}", std::process::id());
    // Join the cgroup, then exec into new pid and mount namespaces (util-linux unshare).
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec unshare --pid --mount --fork /bin/true {marker}",
        cgroup.0.display()
    );
    sh(&script);
    // unshare itself execs with the marker in its argv too: take /bin/true's exec.
    let exec = exec_by(|x| x.argv.contains(&marker) && x.filename == "/bin/true");
    let container = exec
        .process
        .container
        .as_ref()
        .unwrap_or_else(|| panic!("no container context: {:?}", exec.process));
    assert_eq!(container.id, id);
    assert_eq!(container.runtime, node_agent::container::Runtime::Docker);
    assert!(
        !exec.process.host_namespaces,
        "new pid and mount namespaces"
    );
    // And an ordinary process is on the host.
    let host = Command::new("/bin/true").spawn().expect("spawn");
    let host_pid = host.id();
    host.wait_with_output().expect("wait");
    let plain = exec_by(|x| x.process.pid == host_pid);
    assert!(plain.process.container.is_none());
    assert!(plain.process.host_namespaces);
}

#[test]
fn a_write_is_matched_on_the_file_it_opened_not_the_string_passed() {
    if !privileged("a_write_is_matched_on_the_file_it_opened_not_the_string_passed") {
        return;
    }
    LazyLock::force(&AGENT);
    // A directory outside the watched one holding a symbolic link into it.
    let outside = std::env::temp_dir().join(format!("vigil-outside-{}", std::process::id()));
    std::fs::create_dir_all(&outside).expect("mkdir");
    let link = outside.join("link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&*WATCHED, &link).expect("symlink");
    let w = WATCHED.display().to_string();
    let cases = [
        ("via-link", format!("echo x > {}/via-link", link.display())),
        (
            "slashes",
            format!("echo x > {}//slashes", w.replace('/', "//")),
        ),
        (
            "dots",
            format!(
                "echo x > {w}/./../{}/./dots",
                WATCHED.file_name().expect("name").to_string_lossy()
            ),
        ),
        ("relative", format!("cd {w} && echo x > relative")),
        (
            "proc-root",
            format!("echo x > /proc/self/root{w}/proc-root"),
        ),
    ];
    for (name, script) in &cases {
        let pid = sh(script);
        let want = watched(name);
        let event = file_event(|f| {
            (f.process.pid == pid || f.process.ppid == pid)
                && f.operation == "openWrite"
                && f.resolved_path.as_deref() == Some(want.as_path())
        });
        assert!(event.matched_by.contains(&"prefix"), "{name}: {event:?}");
        assert!(event.ret >= 0, "{name}: {event:?}");
    }
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn a_path_too_deep_to_walk_is_counted_and_still_matched() {
    if !privileged("a_path_too_deep_to_walk_is_counted_and_still_matched") {
        return;
    }
    LazyLock::force(&AGENT);
    let unresolved = || {
        AGENT
            .counters()
            .into_iter()
            .find(|(h, _)| *h == node_agent_common::Hook::FileOpen)
            .map(|(_, c)| c.unresolved)
            .unwrap_or(0)
    };
    let before = unresolved();
    // Deeper than the kernel's walk (32 components): matched by name, counted as unresolved.
    let top = std::env::temp_dir().join(format!("vigil-deep-{}", std::process::id()));
    let deep = (0..40).fold(top.clone(), |p, i| p.join(format!("d{i}")));
    std::fs::create_dir_all(&deep).expect("mkdir -p");
    let keys = deep.join("authorized_keys");
    let pid = sh(&format!("echo ssh-ed25519 AAAA > {}", keys.display()));
    let event = file_event(|f| f.process.pid == pid && f.operation == "openWrite");
    assert!(event.matched_by.contains(&"name"), "{event:?}");
    assert_eq!(event.resolved_path.as_deref(), Some(keys.as_path()));
    // The counters are read when the ring buffer is drained: wait for a drain that has it.
    let deadline = std::time::Instant::now() + WAIT;
    while unresolved() <= before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(unresolved() > before, "the truncated walk was not counted");
    let _ = std::fs::remove_dir_all(&top);
}

#[test]
fn a_fanotify_queue_overflow_is_counted_not_silent() {
    if !privileged("a_fanotify_queue_overflow_is_counted_not_silent") {
        return;
    }
    use node_agent::sensor::dirents::{DirentOp, DirentWatch};
    // A directory of its own, watched by a sensor of its own that nothing reads meanwhile.
    let dir = std::env::temp_dir().join(format!("vigil-overflow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut set = SensitivePaths { entries: vec![] };
    set.add(
        &format!("{}/", dir.display()),
        MatchKind::Prefix,
        Category::Persistence,
    )
    .expect("a valid prefix");
    // Pid 0: no process is the agent here, so this test's own changes are reported.
    let mut watch = DirentWatch::start(&set, 0, Path::new("/")).expect("fanotify starts as root");
    let queue: usize = std::fs::read_to_string("/proc/sys/fs/fanotify/max_queued_events")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(16_384);
    assert!(
        queue <= 1 << 20,
        "max_queued_events is {queue}: this test would create that many files"
    );
    // One event per hard link (distinct names: fanotify merges none), more than the queue
    // holds.
    let source = std::env::temp_dir().join(format!("vigil-overflow-src-{}", std::process::id()));
    std::fs::write(&source, b"x").expect("source");
    let links = queue + 1_000;
    for i in 0..links {
        std::fs::hard_link(&source, dir.join(i.to_string())).expect("link");
    }
    let mut linked = 0usize;
    while watch.read_ready(|c| {
        if c.op == DirentOp::Linked {
            linked += 1;
        }
    }) > 0
    {}
    let stats = watch.counters().snapshot();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&source);
    assert_eq!(stats.overflows, 1, "{stats:?}");
    assert!(
        linked > 0 && linked < links,
        "the queued links are reported, the rest lost: {linked} of {links}"
    );
    assert!(stats.events as usize <= queue + 1, "{stats:?}");
}

#[test]
fn directories_made_in_a_watched_one_are_watched_and_their_marks_go_with_them() {
    if !privileged("directories_made_in_a_watched_one_are_watched_and_their_marks_go_with_them") {
        return;
    }
    use node_agent::sensor::dirents::{DirentOp, DirentWatch};
    let dir = std::env::temp_dir().join(format!("vigil-subdirs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut set = SensitivePaths { entries: vec![] };
    set.add(
        &format!("{}/", dir.display()),
        MatchKind::Prefix,
        Category::Persistence,
    )
    .expect("a valid prefix");
    let mut watch = DirentWatch::start(&set, 0, Path::new("/")).expect("fanotify starts as root");
    let marks = || watch.counters().snapshot().marks;
    assert_eq!(marks(), 1);
    let drain = |watch: &mut DirentWatch| {
        let mut seen = Vec::new();
        while watch.read_ready(|c| seen.push(c)) > 0 {}
        seen
    };
    // Made after the start: marked as they appear, and a link made in one is seen.
    for i in 0..5 {
        std::fs::create_dir(dir.join(format!("d{i}"))).expect("mkdir");
    }
    drain(&mut watch);
    assert_eq!(watch.counters().snapshot().marks, 6);
    let source = dir.join("d0").join("f");
    std::fs::write(&source, b"x").expect("write");
    std::fs::hard_link(&source, dir.join("d4").join("g")).expect("link");
    let seen = drain(&mut watch);
    assert!(
        seen.iter()
            .any(|c| c.op == DirentOp::Linked && c.path == Some(dir.join("d4").join("g"))),
        "{seen:?}"
    );
    for i in 0..5 {
        std::fs::remove_dir_all(dir.join(format!("d{i}"))).expect("rmdir");
    }
    drain(&mut watch);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        watch.counters().snapshot().marks,
        1,
        "the removed ones' marks are gone"
    );
}

#[test]
fn a_write_open_that_ends_on_another_cpu_is_reported() {
    if !privileged("a_write_open_that_ends_on_another_cpu_is_reported") {
        return;
    }
    // The pending state between a syscall's entry and exit is kept per thread, in one map
    // for all CPUs (`node_agent_common::maps`): an entry made on one CPU must be found and
    // freed from another.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        let message = "a_write_open_that_ends_on_another_cpu_is_reported: needs two CPUs; \
                       not run on this machine";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("SKIPPED {message}");
        return;
    }
    LazyLock::force(&AGENT);
    let fifo = watched(&format!(
        "fifo-{}",
        node_agent::collector::unique_name("cpu")
    ));
    let (pid, out) = trigger(&["fifo-migrate", &fifo.display().to_string()]);
    let cpus: Vec<&str> = out.split_whitespace().collect();
    assert!(
        cpus.len() == 3 && cpus[0] != cpus[1],
        "the open's entry and exit ran on different CPUs: {out}"
    );
    let tid: u32 = cpus[2].parse().expect("the writer's thread id");
    let event = file_event(|f| {
        f.process.pid == pid
            && f.operation == "openWrite"
            && f.path
                .ends_with(fifo.file_name().expect("a name").to_string_lossy().as_ref())
    });
    assert_eq!(event.process.tid, tid, "{event:?}");
    assert_eq!(event.resolved_path.as_deref(), Some(fifo.as_path()));
    assert!(event.ret >= 0, "{event:?}");
}

#[test]
fn directory_changes_are_watched_on_the_host_root_the_agent_reaches_and_named_as_the_host_names_them()
 {
    let test = "directory_changes_are_watched_on_the_host_root_the_agent_reaches_and_named_as_the_host_names_them";
    if !privileged(test) {
        return;
    }
    use node_agent::sensor::dirents::{DirentOp, DirentWatch};
    // An agent in a container of its own reaches the host's files through
    // `<proc-root>/1/root`: here a scratch directory stands for that root, holding its own
    // `etc/cron.d`. The watch marks that one, not this machine's `/etc/cron.d`, and names what
    // changes in it by the host's path.
    let root = std::env::temp_dir().join(format!("vigil-hostroot-{}", std::process::id()));
    let cron = root.join("etc/cron.d");
    std::fs::create_dir_all(&cron).expect("mkdir");
    let mut set = SensitivePaths { entries: vec![] };
    set.add("/etc/cron.d/", MatchKind::Prefix, Category::Persistence)
        .expect("a valid prefix");
    let mut watch = DirentWatch::start(&set, 0, &root).expect("fanotify starts as root");
    assert_eq!(watch.counters().snapshot().marks, 1);
    assert!(watch.aliases().is_empty(), "{:?}", watch.aliases());
    // A file linked in through the host root, and one moved into this machine's own
    // `/etc/cron.d` (not the host root the watch was given).
    let source = root.join("payload");
    std::fs::write(&source, b"* * * * * root true\n").expect("write");
    std::fs::hard_link(&source, cron.join("job")).expect("link");
    let own = Path::new("/etc/cron.d").join(format!("vigil-hostroot-{}", std::process::id()));
    std::fs::write(&own, b"# vigil test\n").expect("write /etc/cron.d");
    let _ = std::fs::remove_file(&own);
    let mut seen = Vec::new();
    while watch.read_ready(|c| seen.push(c)) > 0 {}
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        seen.iter()
            .any(|c| c.op == DirentOp::Linked
                && c.path.as_deref() == Some(Path::new("/etc/cron.d/job"))),
        "the link is named by the host's path: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|c| c.path.as_deref() != Some(own.as_path())),
        "the machine's own /etc/cron.d is not watched: {seen:?}"
    );
}

#[test]
fn without_cap_sys_admin_the_directory_sensor_says_why_it_is_off() {
    let test = "without_cap_sys_admin_the_directory_sensor_says_why_it_is_off";
    if !privileged(test) {
        return;
    }
    use std::os::unix::process::CommandExt;
    // The agent's pod has no CAP_SYS_ADMIN (operator/src/render.rs). fanotify would still start
    // there, as an unprivileged listener that is told no other process's pid.
    let mut probe = Command::new(env!("CARGO_BIN_EXE_node-agent"));
    probe.arg("probe");
    // SAFETY: prctl is async-signal-safe; it only drops a capability of the child.
    unsafe {
        probe.pre_exec(|| {
            if libc::prctl(libc::PR_CAPBSET_DROP, 21, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = probe.output().expect("run node-agent probe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).expect("a JSON report");
    let hooks = report["hooks"].as_array().expect("hooks");
    let state = |name: &str| {
        hooks
            .iter()
            .find(|h| h["hook"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {text}"))
    };
    let dirents = state("file_dirents");
    assert_eq!(dirents["state"], "unsupported", "{dirents}");
    assert!(
        dirents["reason"]
            .as_str()
            .is_some_and(|r| r.contains("CAP_SYS_ADMIN")),
        "{dirents}"
    );
    // The eBPF sensors do not need it.
    assert_eq!(state("exec")["state"], "active", "{text}");
    assert_eq!(state("file_change")["state"], "active", "{text}");
}
