//! Table tests of the behavioural types: one firing case per type and its benign look-alikes.

use std::{path::PathBuf, sync::Arc};

use vigil_detection::{FindingType, SharedIntel, ThreatIntel};

use super::*;
use crate::{
    container::{Container, Runtime as ContainerRuntime},
    event::{ActivityInfo, ExecInfo, FileInfo, NetInfo, ProcessRef, Writer},
    sensitive::{Category, MatchKind},
};

fn detector() -> Detector {
    let mut sensitive = SensitivePaths::default();
    sensitive
        .add("/srv/watched/", MatchKind::Prefix, Category::Persistence)
        .unwrap();
    Detector::new(
        Arc::new(SharedIntel::new(ThreatIntel::empty())),
        None,
        RuleSet::builtin().unwrap(),
        Vec::new(),
        DetectorConfig {
            host: HostDetails {
                hostname: "node-a".into(),
                ..HostDetails::default()
            },
            ..DetectorConfig::default()
        },
        Clock::with_offset(1_700_000_000_000_000_000),
    )
    .with_sensitive_paths(sensitive)
}

fn container() -> Option<Container> {
    Some(Container {
        id: "cd".repeat(32),
        runtime: ContainerRuntime::Docker,
        pod_uid: None,
        cgroup: "/system.slice/docker-x.scope".into(),
    })
}

fn proc_ref(pid: u32, comm: &str) -> ProcessRef {
    ProcessRef {
        pid,
        tid: pid,
        ppid: 100,
        comm: comm.into(),
        start_time_ns: u64::from(pid) * 1000,
        uuid: format!("uuid-{pid}"),
        host_namespaces: true,
        ..ProcessRef::default()
    }
}

fn writer(comm: &str) -> Writer {
    Writer {
        pid: 77,
        uid: 1000,
        comm: comm.into(),
        time: "2026-11-27T09:59:00Z".into(),
    }
}

fn exec_event(exe: &str, f: impl FnOnce(&mut ExecInfo)) -> Event {
    let mut e = ExecInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: proc_ref(4242, super::basename(exe)),
        filename: exe.into(),
        exe: PathBuf::from(exe),
        argv: vec![exe.into()],
        argv_truncated: false,
        cwd: Some(PathBuf::from("/tmp")),
        cwd_truncated: false,
        exe_inode: 1,
        exe_dev: 1,
        sha256: None,
        sha256_error: None,
        lineage: Vec::new(),
        fileless: false,
        exe_deleted: false,
        written_by: None,
        stdio_sockets: Vec::new(),
        ld_preload: None,
        ld_library_path: None,
        env_truncated: false,
        setuid: false,
    };
    f(&mut e);
    Event::Exec(Box::new(e))
}

fn file_event(operation: &'static str, path: &str, f: impl FnOnce(&mut FileInfo)) -> Event {
    let mut e = FileInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: proc_ref(5000, "sh"),
        operation,
        path: path.into(),
        resolved_path: Some(PathBuf::from(path)),
        path2: None,
        resolved_path2: None,
        ret: 3,
        error: None,
        open_flags: (operation == "openWrite").then(|| "1101".into()),
        mode: None,
        owner: None,
        inode: Some(9),
        matched_by: vec!["prefix"],
        proc_mem_pid: None,
        sysctl_value: None,
        truncated: false,
    };
    f(&mut e);
    Event::File(e)
}

fn activity(operation: &'static str, f: impl FnOnce(&mut ActivityInfo)) -> Event {
    let mut a = ActivityInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: proc_ref(6000, "tool"),
        operation,
        ..ActivityInfo::default()
    };
    f(&mut a);
    Event::Activity(a)
}

fn types(d: &mut Detector, event: &Event) -> Vec<String> {
    d.process(event, &NoLookup)
        .into_iter()
        .map(|o| o.finding.finding_type)
        .collect()
}

/// One event and the types it must raise (empty: none).
type Case = (&'static str, Event, &'static [FindingType]);

#[test]
fn every_behavioural_type_fires_on_its_case_and_not_on_the_benign_ones() {
    use FindingType as T;
    let cases: Vec<Case> = vec![
        (
            "binary written by cp, then run",
            exec_event("/tmp/dropper", |e| e.written_by = Some(writer("cp"))),
            &[T::ExecutionNewBinaryExecuted],
        ),
        (
            "binary linked by ld on the host (build output)",
            exec_event("/home/dev/a.out", |e| e.written_by = Some(writer("ld"))),
            &[],
        ),
        (
            "binary linked by ld inside a container (drift from the image)",
            exec_event("/app/a.out", |e| {
                e.written_by = Some(writer("ld"));
                e.process.container = container();
            }),
            &[T::ExecutionNewBinaryExecuted],
        ),
        ("an old binary", exec_event("/usr/bin/true", |_| {}), &[]),
        (
            "memfd exec",
            exec_event("/memfd:x (deleted)", |e| e.fileless = true),
            &[T::DefenseEvasionFilelessExecution],
        ),
        (
            "deleted exe",
            exec_event("/tmp/gone", |e| e.exe_deleted = true),
            &[T::DefenseEvasionFilelessExecution],
        ),
        (
            "library written by cp, mapped executable",
            activity("libraryLoad", |a| {
                a.inode = Some(55);
                a.written_by = Some(writer("cp"));
            }),
            &[T::ExecutionNewLibraryLoaded],
        ),
        (
            "library linked by ld on the host",
            activity("libraryLoad", |a| a.written_by = Some(writer("ld"))),
            &[],
        ),
        (
            "another process's memory opened for writing",
            file_event("openWrite", "/proc/77/mem", |f| {
                f.matched_by = vec!["procMem"];
                f.proc_mem_pid = Some(77);
            }),
            &[T::DefenseEvasionProcessInjectionProc],
        ),
        (
            "own memory (/proc/self/mem)",
            file_event("openWrite", "/proc/self/mem", |f| {
                f.matched_by = vec!["procMem"];
            }),
            &[],
        ),
        (
            "own memory by pid",
            file_event("openWrite", "/proc/5000/mem", |f| {
                f.matched_by = vec!["procMem"];
                f.proc_mem_pid = Some(5000);
            }),
            &[],
        ),
        (
            "ptrace attach",
            activity("ptrace", |a| {
                a.request = Some("PTRACE_ATTACH".into());
                a.target_pid = Some(77);
            }),
            &[T::DefenseEvasionProcessInjectionPtrace],
        ),
        (
            "ptrace poke",
            activity("ptrace", |a| {
                a.request = Some("PTRACE_POKETEXT".into());
                a.target_pid = Some(77);
            }),
            &[T::DefenseEvasionProcessInjectionPtrace],
        ),
        (
            "refused attach",
            activity("ptrace", |a| {
                a.request = Some("PTRACE_ATTACH".into());
                a.target_pid = Some(1);
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[],
        ),
        (
            "traceme",
            activity("ptrace", |a| a.request = Some("PTRACE_TRACEME".into())),
            &[T::DefenseEvasionPtraceAntiDebugging],
        ),
        (
            "vm write into another",
            activity("processVmWritev", |a| {
                a.target_pid = Some(77);
                a.ret = 8;
            }),
            &[T::DefenseEvasionProcessInjectionVirtualMemoryWrite],
        ),
        (
            "vm write into itself",
            activity("processVmWritev", |a| {
                a.target_pid = Some(6000);
                a.ret = 8;
            }),
            &[],
        ),
        (
            "userfaultfd",
            activity("userfaultfd", |a| a.ret = 3),
            &[T::PrivilegeEscalationUserfaultfdUsage],
        ),
        (
            "userfaultfd refused",
            activity("userfaultfd", |a| {
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[],
        ),
        (
            "userfaultfd by criu",
            activity("userfaultfd", |a| {
                a.ret = 3;
                a.process.comm = "criu".into();
            }),
            &[],
        ),
        (
            "finit_module",
            activity("finitModule", |a| a.name = Some("evil.ko".into())),
            &[T::DefenseEvasionKernelModuleLoaded],
        ),
        (
            "init_module",
            activity("initModule", |_| {}),
            &[T::DefenseEvasionKernelModuleLoaded],
        ),
        (
            "refused module",
            activity("finitModule", |a| a.ret = -1),
            &[],
        ),
        (
            "bind mount of a host directory in a container",
            activity("mount", |a| {
                a.process.container = container();
                a.source = Some("/etc".into());
                a.target = Some("/mnt/host-etc".into());
                a.flags = Some(0x1000);
            }),
            &[T::PrivilegeEscalationContainerMountsHostDirectory],
        ),
        (
            "host disk mounted in a container",
            activity("mount", |a| {
                a.process.container = container();
                a.source = Some("/dev/sda1".into());
                a.target = Some("/mnt".into());
                a.fs_type = Some("ext4".into());
                a.flags = Some(0);
            }),
            &[T::PrivilegeEscalationContainerMountsHostDirectory],
        ),
        (
            "tmpfs in a container",
            activity("mount", |a| {
                a.process.container = container();
                a.source = Some("tmpfs".into());
                a.target = Some("/mnt".into());
                a.fs_type = Some("tmpfs".into());
                a.flags = Some(0);
            }),
            &[],
        ),
        (
            "propagation change in a container",
            activity("mount", |a| {
                a.process.container = container();
                a.source = Some("none".into());
                a.target = Some("/".into());
                a.flags = Some(0x4000 | 0x40000);
            }),
            &[],
        ),
        (
            "runc setting up the container's volumes",
            activity("mount", |a| {
                a.process.container = container();
                a.process.comm = "runc:[2:INIT]".into();
                a.source = Some("/var/lib/docker/volumes/v/_data".into());
                a.target = Some("/data".into());
                a.flags = Some(0x1000);
            }),
            &[],
        ),
        (
            "bind mount on the host",
            activity("mount", |a| {
                a.source = Some("/etc".into());
                a.target = Some("/mnt".into());
                a.flags = Some(0x1000);
            }),
            &[],
        ),
        (
            "docker socket from a container",
            Event::Connect(unix_connect("/run/docker.sock", container())),
            &[T::PrivilegeEscalationDockerSocketAccessed],
        ),
        (
            "docker socket from the host",
            Event::Connect(unix_connect("/run/docker.sock", None)),
            &[],
        ),
        (
            "another socket from a container",
            Event::Connect(unix_connect("/run/app.sock", container())),
            &[],
        ),
        (
            "docker socket chmod from a container",
            file_event("chmod", "/var/run/docker.sock", |f| {
                f.process.container = container();
            }),
            &[T::PrivilegeEscalationDockerSocketAccessed],
        ),
        (
            "runc overwritten",
            file_event("openWrite", "/usr/bin/runc", |_| {}),
            &[T::PrivilegeEscalationRuncContainerEscape],
        ),
        (
            "runc overwrite refused (still the attempt)",
            file_event("openWrite", "/usr/local/sbin/runc", |f| {
                f.ret = -26;
                f.error = Some("ETXTBSY".into());
            }),
            &[T::PrivilegeEscalationRuncContainerEscape],
        ),
        (
            "runc upgraded by dpkg",
            file_event("rename", "/usr/bin/runc.dpkg-new", |f| {
                f.process.comm = "dpkg".into();
                f.path2 = Some("/usr/bin/runc".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/bin/runc"));
            }),
            &[],
        ),
        (
            "release_agent written",
            file_event("openWrite", "/sys/fs/cgroup/rdma/release_agent", |_| {}),
            &[T::PrivilegeEscalationCGroupsReleaseAgentModified],
        ),
        (
            "cron file",
            file_event("openWrite", "/etc/cron.d/evil", |_| {}),
            &[T::PersistenceSensitiveFileModified],
        ),
        (
            "sudoers",
            file_event("openWrite", "/etc/sudoers.d/90-evil", |_| {}),
            &[T::PrivilegeEscalationSensitiveFileModified],
        ),
        (
            "passwd replaced by a rename",
            file_event("rename", "/tmp/passwd.new", |f| {
                f.path2 = Some("/etc/passwd".into());
                f.resolved_path2 = Some(PathBuf::from("/etc/passwd"));
            }),
            &[T::PrivilegeEscalationSensitiveFileModified],
        ),
        (
            "passwd by useradd",
            file_event("openWrite", "/etc/passwd", |f| {
                f.process.comm = "useradd".into();
            }),
            &[],
        ),
        (
            "log truncated",
            file_event("openWrite", "/var/log/auth.log", |_| {}),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "log deleted",
            file_event("unlink", "/var/log/auth.log", |f| f.ret = 0),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "log appended by a daemon",
            file_event("openWrite", "/var/log/app.log", |f| {
                f.open_flags = Some("2101".into());
            }),
            &[],
        ),
        (
            "wtmp written at an offset by sshd",
            file_event("openWrite", "/var/log/wtmp", |f| {
                f.process.comm = "sshd".into();
                f.open_flags = Some("100001".into());
            }),
            &[],
        ),
        (
            "a unit enabled by systemctl",
            file_event(
                "symlink",
                "/etc/systemd/system/multi-user.target.wants/x.service",
                |f| {
                    f.process.comm = "systemctl".into();
                    f.ret = 0;
                },
            ),
            &[],
        ),
        (
            "a unit written by an editor",
            file_event("openWrite", "/etc/systemd/system/x.service", |f| {
                f.process.comm = "vim".into();
            }),
            &[FindingType::PersistenceSensitiveFileModified],
        ),
        (
            "log rotated by logrotate",
            file_event("rename", "/var/log/syslog", |f| {
                f.process.comm = "logrotate".into();
                f.path2 = Some("/var/log/syslog.1".into());
                f.resolved_path2 = Some(PathBuf::from("/var/log/syslog.1"));
            }),
            &[],
        ),
        (
            "history written by bash",
            file_event("openWrite", "/root/.bash_history", |f| {
                f.process.comm = "bash".into();
                f.matched_by = vec!["name"];
            }),
            &[],
        ),
        (
            "history wiped by another program",
            file_event("openWrite", "/root/.bash_history", |f| {
                f.process.comm = "cp".into();
                f.matched_by = vec!["name"];
            }),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "unit file installed by dpkg",
            file_event("openWrite", "/lib/systemd/system/x.service", |f| {
                f.process.comm = "dpkg".into();
            }),
            &[],
        ),
        (
            "failed write to shadow",
            file_event("openWrite", "/etc/shadow", |f| {
                f.ret = -13;
                f.error = Some("EACCES".into());
            }),
            &[],
        ),
        (
            "an added prefix keeps its category",
            file_event("openWrite", "/srv/watched/cfg", |_| {}),
            &[T::PersistenceSensitiveFileModified],
        ),
        (
            "a path outside the set",
            file_event("openWrite", "/srv/other/cfg", |_| {}),
            &[],
        ),
    ];
    let mut fired: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (name, event, want) in &cases {
        let mut d = detector();
        let got = types(&mut d, event);
        let want: Vec<String> = want.iter().map(|t| t.as_str().to_owned()).collect();
        assert_eq!(got, want, "{name}");
        fired.extend(want);
    }
    for t in [
        T::ExecutionNewBinaryExecuted,
        T::ExecutionNewLibraryLoaded,
        T::DefenseEvasionFilelessExecution,
        T::DefenseEvasionProcessInjectionProc,
        T::DefenseEvasionProcessInjectionPtrace,
        T::DefenseEvasionProcessInjectionVirtualMemoryWrite,
        T::DefenseEvasionPtraceAntiDebugging,
        T::PrivilegeEscalationUserfaultfdUsage,
        T::DefenseEvasionKernelModuleLoaded,
        T::PrivilegeEscalationContainerMountsHostDirectory,
        T::PrivilegeEscalationDockerSocketAccessed,
        T::PrivilegeEscalationRuncContainerEscape,
        T::PrivilegeEscalationCGroupsReleaseAgentModified,
        T::PersistenceSensitiveFileModified,
        T::PrivilegeEscalationSensitiveFileModified,
        T::DefenseEvasionSensitiveFileModified,
    ] {
        assert!(fired.contains(t.as_str()), "no case fires {t}");
    }
}

fn unix_connect(path: &str, container: Option<Container>) -> NetInfo {
    let mut process = proc_ref(7000, "curl");
    process.container = container;
    NetInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process,
        ret: 0,
        error: None,
        fd: 3,
        family: "unix",
        protocol: "unknown",
        remote: None,
        unix_path: Some(path.into()),
        repeats: 0,
    }
}

#[test]
fn contexts_name_the_modifier_the_target_the_mount_and_the_file() {
    let mut d = detector();
    let out = d.process(
        &exec_event("/tmp/dropper", |e| e.written_by = Some(writer("cp"))),
        &NoLookup,
    );
    let f = &out[0].finding;
    assert_eq!(f.severity_label, SeverityLabel::Medium);
    let m = f.context.modifying_process.as_ref().unwrap();
    assert_eq!((m.pid, m.name.as_str(), m.uid), (77, "cp", 1000));
    assert_eq!(f.context.file_path.as_deref(), Some("/tmp/dropper"));
    assert_eq!(
        f.context.modified_at.as_ref().map(|t| t.0.to_string()),
        Some("2026-11-27T09:59:00Z".into())
    );

    struct Table;
    impl ProcessLookup for Table {
        fn get(&self, pid: u32) -> Option<KnownProcess> {
            (pid == 77).then(|| KnownProcess {
                pid: 77,
                ppid: 1,
                start_time_ns: 5,
                comm: "victim".into(),
                exe: Some(PathBuf::from("/usr/bin/victim")),
                sha256: None,
                cwd: None,
                uid: 0,
                euid: 0,
            })
        }
    }
    let out = d.process(
        &activity("processVmWritev", |a| {
            a.target_pid = Some(77);
            a.ret = 8;
        }),
        &Table,
    );
    let f = &out[0].finding;
    assert_eq!(f.severity_label, SeverityLabel::High);
    let t = f.context.target_process.as_ref().unwrap();
    assert_eq!(
        (t.pid, t.name.as_str(), t.executable_path.as_str()),
        (77, "victim", "/usr/bin/victim")
    );
    assert_eq!(f.context.additional["targetPid"], "77");

    let out = d.process(
        &activity("mount", |a| {
            a.process.container = container();
            a.source = Some("/".into());
            a.target = Some("/host".into());
            a.flags = Some(0x1000);
        }),
        &NoLookup,
    );
    let f = &out[0].finding;
    assert_eq!(
        (
            f.context.mount_source.as_deref(),
            f.context.mount_target.as_deref()
        ),
        (Some("/"), Some("/host"))
    );
    assert!(f.resource.container.is_some());

    let out = d.process(
        &file_event("openWrite", "/etc/cron.d/evil", |_| {}),
        &NoLookup,
    );
    let f = &out[0].finding;
    assert_eq!(
        (
            f.context.file_path.as_deref(),
            f.context.file_operation.as_deref()
        ),
        (Some("/etc/cron.d/evil"), Some("openWrite"))
    );
    assert_eq!(f.context.additional["sensitivePattern"], "/etc/cron.d/");
    assert_eq!(
        d.process(
            &activity("ptrace", |a| a.request = Some("PTRACE_TRACEME".into())),
            &NoLookup
        )[0]
        .finding
        .severity_label,
        SeverityLabel::Low
    );
}

#[test]
fn repeats_aggregate_and_other_files_are_other_findings() {
    let mut d = detector();
    let e = file_event("openWrite", "/etc/cron.d/evil", |_| {});
    let first = d.process(&e, &NoLookup);
    let again = d.process(&e, &NoLookup);
    assert!(first[0].new && !again[0].new);
    assert_eq!(again[0].finding.count, 2);
    let other = d.process(
        &file_event("openWrite", "/etc/cron.d/other", |_| {}),
        &NoLookup,
    );
    assert!(other[0].new);
}

#[test]
fn traceme_under_a_debugger_is_ordinary() {
    let mut d = detector();
    // strace exec'd (the detector remembers it), then its child asks to be traced.
    let strace = exec_event("/usr/bin/strace", |e| e.process = proc_ref(100, "strace"));
    assert!(d.process(&strace, &NoLookup).is_empty());
    let traceme = activity("ptrace", |a| {
        a.request = Some("PTRACE_TRACEME".into());
        a.process.ppid = 100;
    });
    assert!(types(&mut d, &traceme).is_empty());
    // strace seizing the child it forked: a debugging session.
    let fork = Event::Fork(crate::event::ForkInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: proc_ref(100, "strace"),
        child_pid: 101,
    });
    assert!(d.process(&fork, &NoLookup).is_empty());
    let seize = |target: u32| {
        activity("ptrace", move |a| {
            a.process = proc_ref(100, "strace");
            a.request = Some("PTRACE_SEIZE".into());
            a.target_pid = Some(target);
        })
    };
    assert!(types(&mut d, &seize(101)).is_empty());
    // strace -p on a process it did not start: injection-capable, reported.
    assert_eq!(
        types(&mut d, &seize(555)),
        ["DefenseEvasion:Runtime/ProcessInjection.Ptrace"]
    );
}

#[test]
fn behaviour_sections_merge_and_bad_entries_are_named() {
    let set = RuleSet::from_text(
        "mine.yaml",
        "behaviour:\n  debuggers: [mydbg]\n  sensitiveFiles:\n    exempt:\n      - pattern: /etc/passwd\n        writers: [myadm]\n",
    )
    .unwrap();
    assert_eq!(set.behaviour().debuggers, ["mydbg"]);
    let cases = [
        (
            "behaviour:\n  runtimeSockets: [run/x.sock]\n",
            "behaviour.runtimeSockets[0]",
        ),
        (
            "behaviour:\n  debuggers: [/usr/bin/gdb]\n",
            "behaviour.debuggers[0]",
        ),
        (
            "behaviour:\n  sensitiveFiles:\n    exempt:\n      - pattern: /etc/passwd\n",
            "behaviour.sensitiveFiles.exempt[0]",
        ),
    ];
    for (text, field) in cases {
        let err = RuleSet::from_text("mine.yaml", text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("mine.yaml: ") && err.contains(field),
            "{err}"
        );
    }
    let err = RuleSet::from_text("mine.yaml", "behaviour:\n  debugers: [x]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("debugers") && err.contains("line 2"), "{err}");
    let builtin = RuleSet::builtin().unwrap();
    assert!(
        builtin
            .behaviour()
            .runtime_sockets
            .contains(&"/run/docker.sock".to_owned())
    );
    assert!(
        builtin
            .behaviour()
            .host_build_writers
            .contains(&"ld".to_owned())
    );
}
