//! The container finding types from real containers, and a real container life cycle that
//! raises nothing. The agent runs on the host, in this process (as in the other root tests);
//! the containers are podman's, with runc, from an image built here FROM scratch out of host
//! binaries (`sh`, `mount`, `nsenter`, `vigil-trigger`). Each finding must name the container
//! by the id, name and image podman gave it: the agent reads them from podman's own state.
//!
//! Needs root and podman with runc (`scripts/bootstrap.sh`); without them each test says
//! `skipped` and passes, except under `CI`, where it fails.
//!
//! What the test VM does not allow, and how the tests do the technique instead: it refuses
//! mounting a block device (EACCES, on the host too), so the host directory a container mounts
//! is a bind mount of a host volume rather than the host's disk; pid 1's namespaces are closed
//! to root, so `nsenter -t 1` fails after its exec, which is what the finding is about.

mod support;

use std::os::unix::fs::MetadataExt as _;
use std::{
    collections::BTreeMap,
    os::{
        linux::net::SocketAddrExt,
        unix::{
            fs::PermissionsExt,
            net::{SocketAddr, UnixListener},
        },
    },
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use node_agent::{
    collector::{Collector, ReplayTable, unique_name},
    detect::Detector,
    event::Event,
    sensor::SensorOptions,
};
use support::podman::{Scratch, copy_with_libraries, podman, podman_ok, podman_or_skip, ulimits};
use vigil_crds::finding::{Finding, SeverityLabel};

const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");
/// Generous, for a busy shared machine; a passing run returns as soon as the events are in.
const WAIT: Duration = Duration::from_secs(60);

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    Collector::start(SensorOptions::default()).expect("the sensor starts as root")
});

fn detector() -> Detector {
    support::detection::builtin_detector()
}

/// Findings of every event the agent has seen so far, in the order they were first raised.
fn detect_all() -> Vec<Finding> {
    let mut d = detector();
    // What the agent's detector looks processes up in: the pipeline's table, as it stood at
    // each event (pids wrap on a busy machine: the table at the end can name a later process).
    let mut table = ReplayTable::default();
    let mut by_id: BTreeMap<String, (usize, Finding)> = BTreeMap::new();
    for (event, view) in AGENT.replay() {
        table.saw(view.as_ref());
        for outcome in d.process(&event, &table) {
            let n = by_id.len();
            by_id
                .entry(outcome.finding.id.clone())
                .and_modify(|(_, f)| *f = outcome.finding.clone())
                .or_insert((n, outcome.finding));
        }
    }
    let mut found: Vec<(usize, Finding)> = by_id.into_values().collect();
    found.sort_by_key(|(n, _)| *n);
    found.into_iter().map(|(_, f)| f).collect()
}

/// Type, process and context of each finding, for failure messages.
fn explain(found: &[Finding]) -> String {
    found
        .iter()
        .map(|f| {
            let p = f.process.as_ref();
            format!(
                "{} by {:?} (pid {:?}, lineage {:?}): {:?}",
                f.finding_type.as_str(),
                p.map(|p| p.executable_path.as_str()),
                p.map(|p| p.pid),
                p.map(|p| p
                    .lineage
                    .iter()
                    .map(|l| l.executable_path.clone())
                    .collect::<Vec<_>>()),
                f.context
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// No finding, or a failure that explains each.
fn none(found: &[Finding], what: &str) {
    assert!(
        found.is_empty(),
        "{what}:\n{}\nthe agent's events of these pids:\n{}",
        explain(found),
        events_of_pids(found)
    );
}

/// Every event the agent has of the findings' process ids, and what its table says of them: a
/// failure shows what the detector was given.
fn events_of_pids(found: &[Finding]) -> String {
    let pids: std::collections::BTreeSet<u32> = found
        .iter()
        .filter_map(|f| f.process.as_ref().map(|p| p.pid))
        .collect();
    let lookup = AGENT.lookup();
    pids.iter()
        .map(|&pid| {
            let events: Vec<String> = AGENT
                .matching(|e| e.process().pid == pid)
                .iter()
                .map(|e| {
                    let p = e.process();
                    format!("  {} {} start {} {e:?}", p.comm, p.pid, p.start_time_ns)
                        .chars()
                        .take(600)
                        .collect()
                })
                .collect();
            format!(
                "pid {pid}: table at the end {:?}\n{}",
                node_agent::detect::ProcessLookup::get(&lookup, pid),
                events.join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn types(found: &[Finding]) -> Vec<&str> {
    found.iter().map(|f| f.finding_type.as_str()).collect()
}

fn in_container(e: &Event, id: &str) -> bool {
    e.process().container.as_ref().is_some_and(|c| c.id == id)
}

/// The image the tests run: `sh`, `mount`, `umount`, `mkdir`, `rmdir`, `mknod`, `nsenter`,
/// `chroot`, `true`, `sleep`, `cp` and `vigil-trigger` with their libraries, and empty `/mnt`, `/cg`, `/hostdir`,
/// `/tmp`.
fn build_image(scratch: &mut Scratch, tag: &str) -> String {
    let context = scratch.path("image");
    let rootfs = context.join("rootfs");
    for (binary, dest) in [
        ("/bin/sh", "bin/sh"),
        ("/bin/mount", "bin/mount"),
        ("/bin/umount", "bin/umount"),
        ("/bin/mkdir", "bin/mkdir"),
        ("/bin/rmdir", "bin/rmdir"),
        ("/bin/mknod", "bin/mknod"),
        ("/usr/bin/nsenter", "usr/bin/nsenter"),
        ("/usr/sbin/chroot", "usr/sbin/chroot"),
        ("/bin/true", "bin/true"),
        ("/bin/sleep", "bin/sleep"),
        ("/bin/cp", "bin/cp"),
        (TRIGGER, "usr/bin/vigil-trigger"),
    ] {
        copy_with_libraries(Path::new(binary), &rootfs, dest);
    }
    for dir in ["mnt", "cg", "hostdir", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    let image = format!("localhost/{}:{tag}", unique_name("vigil-ctr"));
    // A file only this image has, so that its layer is its own: images of the same files share
    // one layer in podman's storage, and a test that writes a program in its container (the
    // self-exe test's `/bin/true`) would then have written the file another test's container
    // runs, whose exec the agent judges as a new binary.
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/vigil-image"), &image).unwrap();
    scratch.build_image(&context, &image);
    image
}

/// A container that ran a command: started with `options` around a long-lived process (as
/// workloads are), the command executed in it with `podman exec`, whatever its outcome.
///
/// Long-lived, as workloads are; a container that is gone before the agent reads its first
/// record is the business of `a_container_gone_before_the_agent_reads_it_is_still_named`.
struct Ran {
    id: String,
    name: String,
}

fn run_in(scratch: &mut Scratch, options: &[&str], image: &str, command: &[&str]) -> Ran {
    LazyLock::force(&AGENT);
    let (id, name) = scratch.run_detached(options, image);
    let mut args = vec!["exec", name.as_str()];
    args.extend(command);
    let out = podman(&args);
    eprintln!(
        "{command:?} in {name}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ran { id, name }
}

/// The findings of a container's events, once the process named `comm` has exited in it.
fn findings_of(ran: &Ran, comm: &str) -> Vec<Finding> {
    let exited = AGENT.wait_for(WAIT, |e| {
        matches!(e, Event::Exit(x) if x.process.comm == comm) && in_container(e, &ran.id)
    });
    if exited.is_none() {
        let seen: Vec<String> = AGENT
            .matching(|e| e.process().comm == comm)
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        panic!(
            "no exit of {comm} in container {} ({}) within {WAIT:?}; events of {comm}:\n{}",
            ran.name,
            ran.id,
            seen.join("\n")
        );
    }
    of_container(&ran.id)
}

/// The findings about container `id`, from every event seen so far, as the agent sees them: the
/// runtime's work before the container exists (the exec of `runc init` on the host) tells who
/// acts inside it.
fn of_container(id: &str) -> Vec<Finding> {
    detect_all()
        .into_iter()
        .filter(|f| f.resource.container.as_ref().is_some_and(|c| c.id == id))
        .collect()
}

/// The one finding of `finding_type` in `found`, which must name the container as podman does.
fn the_finding<'a>(
    found: &'a [Finding],
    finding_type: &str,
    ran: &Ran,
    image: &str,
) -> &'a Finding {
    let f = found
        .iter()
        .find(|f| f.finding_type.as_str() == finding_type)
        .unwrap_or_else(|| panic!("no {finding_type} in {:?}", types(found)));
    let c = f.resource.container.as_ref().expect("container details");
    assert_eq!(c.id, ran.id, "{finding_type}");
    assert_eq!(
        c.name, ran.name,
        "{finding_type}: the container's name from podman's state"
    );
    assert_eq!(
        c.image.as_deref(),
        Some(image),
        "{finding_type}: the image podman ran"
    );
    assert_eq!(c.container_runtime.as_deref(), Some("podman"));
    f
}

/// A scratch directory on the host outside /tmp (running programs from /tmp is a finding).
fn host_dir(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name(tag));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The rule id and severity of the one finding of `rule` in `found`.
fn by_rule<'a>(found: &'a [Finding], rule: &str) -> &'a Finding {
    let hits: Vec<&Finding> = found
        .iter()
        .filter(|f| f.context.additional.get("ruleId").map(String::as_str) == Some(rule))
        .collect();
    assert_eq!(hits.len(), 1, "one {rule}:\n{}", explain(found));
    hits[0]
}

/// Shocker (CDK's `cap-dac-read-search`): `open_by_handle_at` from a container given
/// CAP_DAC_READ_SEARCH opens the host's root directory by its handle (inode 2 of the file
/// system a volume is on), whatever the container's root; without the capability (and no seccomp
/// filter) the kernel refuses it, and the attempt still counts. A block device made in a container (`mknod b`,
/// the way to the host's disk) likewise; a FIFO made there is nothing, and so are the devices
/// runc makes for a privileged container (`--privileged` alone).
#[test]
fn a_file_opened_by_handle_and_a_block_device_made_in_a_container() {
    let test = "a_file_opened_by_handle_and_a_block_device_made_in_a_container";
    if !podman_or_skip(test) {
        return;
    }
    let mut scratch = Scratch::new("vigil-ctr-handle");
    let image = build_image(&mut scratch, "handle");
    let host = RemoveDir(host_dir("vigil-ctr-handle"));
    let volume = format!("{}:/hostdir", host.0.display());
    let (dir, root) = (
        std::fs::metadata(&host.0).expect("the volume"),
        std::fs::metadata("/").expect("/"),
    );
    // Inode 2 of the volume's file system is the host's root directory.
    let volume_on_root = dir.dev() == root.dev() && root.ino() == 2;
    const HANDLE: &str = "behaviour-container-open-by-handle";
    const BLOCK: &str = "behaviour-container-block-device-made";

    // With the capability: the host's root directory, opened through the volume's file system.
    let ran = run_in(
        &mut scratch,
        &["--cap-add", "DAC_READ_SEARCH", "--volume", &volume],
        &image,
        &["/usr/bin/vigil-trigger", "open-by-handle", "/hostdir"],
    );
    let found = findings_of(&ran, "vigil-trigger");
    let f = by_rule(&found, HANDLE);
    assert_eq!(
        f.finding_type.as_str(),
        "PrivilegeEscalation:Runtime/SuspiciousCommand"
    );
    assert_eq!(
        f.context.additional.get("fileHandle").map(String::as_str),
        Some("type 1, 8 bytes: 0200000000000000")
    );
    // The volume is on the host's root file system here (ext4: inode 2 is its root); elsewhere
    // the handle may be stale, and the attempt is what is asserted.
    if volume_on_root {
        assert_eq!(f.severity, 8.0, "opened: {:?}", f.context.additional);
        assert_eq!(
            f.context.additional.get("openedInode").map(String::as_str),
            Some("2")
        );
        assert_eq!(
            f.context.additional.get("openedName").map(String::as_str),
            Some("/")
        );
    } else {
        eprintln!("{test}: the volume is not on an ext4 root here; checking the attempt only");
    }
    // Without it: refused (EPERM), still the attempt, at Medium. Without the capability the
    // runtime's default seccomp profile refuses the call before any tracepoint runs (no record
    // at all), so this container runs unconfined.
    let ran = run_in(
        &mut scratch,
        &["--security-opt", "seccomp=unconfined", "--volume", &volume],
        &image,
        &["/usr/bin/vigil-trigger", "open-by-handle", "/hostdir"],
    );
    let found = findings_of(&ran, "vigil-trigger");
    let f = by_rule(&found, HANDLE);
    assert_eq!(f.severity, 5.0);
    assert_eq!(
        f.context.additional.get("result").map(String::as_str),
        Some("EPERM")
    );

    // A block device made with CAP_MKNOD (Docker gives it by default): High.
    let ran = run_in(
        &mut scratch,
        &["--cap-add", "MKNOD"],
        &image,
        &["/bin/mknod", "/tmp/disk", "b", "8", "0"],
    );
    let found = findings_of(&ran, "mknod");
    let f = by_rule(&found, BLOCK);
    assert_eq!(f.severity, 8.0, "{:?}", f.context.additional);
    assert_eq!(
        f.context.additional.get("blockDevice").map(String::as_str),
        Some("8:0")
    );
    assert_eq!(f.context.file_path.as_deref(), Some("/tmp/disk"));
    // Without it: refused, Medium.
    let ran = run_in(
        &mut scratch,
        &["--cap-drop", "MKNOD"],
        &image,
        &["/bin/mknod", "/tmp/disk", "b", "8", "0"],
    );
    let found = findings_of(&ran, "mknod");
    assert_eq!(by_rule(&found, BLOCK).severity, 5.0);
    // Benign twins: a FIFO made in a container; a privileged container, whose devices runc
    // makes.
    let ran = run_in(
        &mut scratch,
        &["--cap-add", "MKNOD"],
        &image,
        &["/bin/mknod", "/tmp/fifo", "p"],
    );
    none(&findings_of(&ran, "mknod"), "a FIFO made in a container");
    let ran = run_in(&mut scratch, &["--privileged"], &image, &["/bin/true"]);
    none(
        &findings_of(&ran, "true"),
        "a privileged container's devices, made by runc",
    );
}

/// CVE-2019-5736's first step in a real container (Metasploit's `docker_runc_escape` rewrites
/// the container's `/bin/sh`; here `/bin/true`, which is not running): the program made a
/// script whose interpreter is `/proc/self/exe`, so that the runtime's next `exec` of it runs
/// the runtime again inside the container. Raised as the runtime-escape type, naming the
/// container; a script with a real interpreter written the same way is not.
#[test]
fn a_program_made_a_script_of_its_callers_own_executable_in_a_container() {
    let test = "a_program_made_a_script_of_its_callers_own_executable_in_a_container";
    if !podman_or_skip(test) {
        return;
    }
    const RULE: &str = "behaviour-self-exe-interpreter";
    let mut scratch = Scratch::new("vigil-ctr-selfexe");
    let image = build_image(&mut scratch, "selfexe");
    let ran = run_in(
        &mut scratch,
        &[],
        &image,
        &["/bin/sh", "-c", "echo '#!/proc/self/exe' > /bin/true"],
    );
    let found = findings_of(&ran, "sh");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/RuncContainerEscape",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.additional.get("ruleId").map(String::as_str),
        Some(RULE)
    );
    assert_eq!(f.severity, 8.0);
    assert_eq!(f.context.file_path.as_deref(), Some("/bin/true"));
    // A wrapper with a real interpreter: the program replaced, not the trap.
    let ran = run_in(
        &mut scratch,
        &[],
        &image,
        &["/bin/sh", "-c", "echo '#!/bin/sh' > /bin/true"],
    );
    let found = findings_of(&ran, "sh");
    assert!(
        found
            .iter()
            .all(|f| f.context.additional.get("ruleId").map(String::as_str) != Some(RULE)),
        "{}",
        explain(&found)
    );
}

/// Two replicas of one image on one node: a program replaced in one container (written in its
/// upper layer, the image's file copied up) is new there, and only there: the other container
/// runs the image's file, which nobody wrote.
#[test]
fn a_program_replaced_in_one_replica_is_new_only_in_that_replica() {
    let test = "a_program_replaced_in_one_replica_is_new_only_in_that_replica";
    if !podman_or_skip(test) {
        return;
    }
    const NEW: &str = "Execution:Runtime/NewBinaryExecuted";
    let mut scratch = Scratch::new("vigil-ctr-replicas");
    let image = build_image(&mut scratch, "replicas");
    let replaced = run_in(
        &mut scratch,
        &[],
        &image,
        &["/bin/sh", "-c", "cp /bin/sleep /bin/true && /bin/true 0"],
    );
    let found = findings_of(&replaced, "true");
    let f = the_finding(&found, NEW, &replaced, &image);
    assert_eq!(
        f.process.as_ref().map(|p| p.executable_path.as_str()),
        Some("/bin/true"),
        "{}",
        explain(&found)
    );
    let other = run_in(&mut scratch, &[], &image, &["/bin/true"]);
    let found = findings_of(&other, "true");
    assert!(
        found.iter().all(|f| f.finding_type.as_str() != NEW),
        "the other replica's /bin/true is the image's:\n{}",
        explain(&found)
    );
}

/// A binary the host put in a container's file system before the container started came with
/// the container (as its image did): none of the new-file types. One copied in while it runs
/// (`podman cp`) is new. Both writes go through the container's own overlay mount (`podman
/// mount`, which `podman start` keeps using), the device and inode numbers the container's
/// exec reads: the key of the kernel's written-files map matches in both cases, and only the
/// time of the write against the container's first process tells them apart. The same test
/// covers a key an earlier container's overlay left behind (seen in CI: reused anonymous device
/// and inode numbers made a layer file of a later container look written).
#[test]
fn a_binary_put_in_before_the_start_came_with_the_container_one_copied_in_after_is_new() {
    let test = "a_binary_put_in_before_the_start_came_with_the_container";
    if !podman_or_skip(test) {
        return;
    }
    LazyLock::force(&AGENT);
    let mut scratch = Scratch::new("vigil-ctr-before");
    let image = build_image(&mut scratch, "before");
    let name = unique_name("vigil-ctr");
    scratch.containers.push(name.clone());
    let limits = ulimits();
    let mut args = vec!["create", "--name", name.as_str(), "--network", "none"];
    args.extend(limits.iter().map(String::as_str));
    // Run by a shell that stays: a container gone at once cannot be resolved (its cgroup is).
    args.extend([
        image.as_str(),
        "/bin/sh",
        "-c",
        "/usr/bin/early; exec /bin/sleep 600",
    ]);
    let id = podman_ok(&args);
    let merged = PathBuf::from(podman_ok(&["mount", &name]));
    // Written by `cp`, a process of its own (the agent ignores this test process's files).
    let cp = Command::new("cp")
        .arg("/bin/true")
        .arg(merged.join("usr/bin/early"))
        .status()
        .unwrap();
    assert!(cp.success(), "cp into {}", merged.display());
    podman_ok(&["start", &name]);
    let early = Ran {
        id: id.clone(),
        name: name.clone(),
    };
    let found = findings_of(&early, "early");
    assert!(
        AGENT
            .matching(|e| matches!(e, Event::Exec(x) if x.process.comm == "early"
                && x.written_by.is_none())
                && in_container(e, &id))
            .len()
            == 1,
        "the exec of /usr/bin/early in {name}, its pre-start writer set aside"
    );
    none(&found, "a binary put in before the container started");
    let _ = podman(&["umount", &name]);

    // Copied in while the container runs, then run: new.
    let ran = run_in(&mut scratch, &[], &image, &["/bin/true"]);
    podman_ok(&["cp", "/bin/true", &format!("{}:/usr/bin/late", ran.name)]);
    let out = podman(&["exec", &ran.name, "/usr/bin/late"]);
    assert!(out.status.success(), "/usr/bin/late: {}", out.status);
    let found = findings_of(&ran, "late");
    let f = the_finding(&found, "Execution:Runtime/NewBinaryExecuted", &ran, &image);
    assert_eq!(
        f.process.as_ref().map(|p| p.executable_path.as_str()),
        Some("/usr/bin/late"),
        "{}",
        explain(&found)
    );
}

#[test]
fn escape_techniques_from_real_containers_name_the_container() {
    let test = "escape_techniques_from_real_containers";
    if !podman_or_skip(test) {
        return;
    }
    let mut scratch = Scratch::new("vigil-ctr-escape");
    let image = build_image(&mut scratch, "escape");
    let host = RemoveDir(host_dir("vigil-ctr-host"));

    // DockerSocketAccessed: a socket the test listens on, mounted as the container's
    // /var/run/docker.sock (as `-v /var/run/docker.sock:/var/run/docker.sock` does).
    let docker_sock = host.0.join("docker.sock");
    let app_sock = host.0.join("app.sock");
    let listeners = [&docker_sock, &app_sock].map(|p| UnixListener::bind(p).expect("bind"));
    for l in &listeners {
        l.set_nonblocking(true).unwrap();
    }
    let ran = run_in(
        &mut scratch,
        &[
            "--volume",
            &format!("{}:/var/run/docker.sock", docker_sock.display()),
        ],
        &image,
        &[
            "/usr/bin/vigil-trigger",
            "unix-connect",
            "/var/run/docker.sock",
        ],
    );
    let found = findings_of(&ran, "vigil-trigger");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/DockerSocketAccessed",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.socket_path.as_deref(),
        Some("/var/run/docker.sock")
    );
    let ran = run_in(
        &mut scratch,
        &["--volume", &format!("{}:/run/app.sock", app_sock.display())],
        &image,
        &["/usr/bin/vigil-trigger", "unix-connect", "/run/app.sock"],
    );
    none(
        &findings_of(&ran, "vigil-trigger"),
        "another socket from a container",
    );
    drop(listeners);

    // ContainerMountsHostDirectory: a privileged container bind-mounts a host directory it
    // was given; a tmpfs of its own is nothing.
    let shared = host.0.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let ran = run_in(
        &mut scratch,
        &[
            "--privileged",
            "--volume",
            &format!("{}:/hostdir", shared.display()),
        ],
        &image,
        &["/bin/mount", "--bind", "/hostdir", "/mnt"],
    );
    let found = findings_of(&ran, "mount");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        &ran,
        &image,
    );
    assert_eq!(f.context.mount_source.as_deref(), Some("/hostdir"));
    assert_eq!(f.context.mount_target.as_deref(), Some("/mnt"));
    assert_eq!(
        f.resource.container.as_ref().unwrap().privileged,
        Some(true)
    );
    let ran = run_in(
        &mut scratch,
        &["--privileged"],
        &image,
        &["/bin/mount", "-t", "tmpfs", "tmpfs", "/mnt"],
    );
    none(
        &findings_of(&ran, "mount"),
        "a tmpfs in a privileged container",
    );
    // GuardDuty's tester (`ContainerMountsHostDirectory.sh`): a host path with a file system
    // type that does not exist, from a container without privileges: refused, still the type.
    let ran = run_in(
        &mut scratch,
        &[],
        &image,
        &["/bin/mount", "-t", "tempfs-test", "/etc/", "/tmp/"],
    );
    let found = findings_of(&ran, "mount");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        &ran,
        &image,
    );
    // mount(8) passes the source canonicalised.
    assert_eq!(f.context.mount_source.as_deref(), Some("/etc"));
    assert!(
        f.context.additional.contains_key("result"),
        "the refusal: {:?}",
        f.context.additional
    );

    // The nsenter escape: a privileged container sharing the host's pid namespace enters
    // init's namespaces (the closest type the rules have: SuspiciousCommand).
    let ran = run_in(
        &mut scratch,
        &["--privileged", "--pid", "host"],
        &image,
        &[
            "/usr/bin/nsenter",
            "-t",
            "1",
            "-m",
            "-u",
            "-n",
            "-i",
            "/bin/true",
        ],
    );
    let found = findings_of(&ran, "nsenter");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        &ran,
        &image,
    );
    assert!(
        f.process
            .as_ref()
            .is_some_and(|p| p.executable_path == "/usr/bin/nsenter"),
        "{:?}",
        f.process
    );

    // The same escape by behaviour, whatever names the namespace: a process of the container
    // joins the host's mount namespace with setns. Here init's namespace files are refused
    // even to the host's root (the VM's pid 1 is protected), so the container enters those
    // of a host process the test started, by pid and by namespace file.
    let mut host_process = Command::new("/bin/sleep")
        .arg("600")
        .spawn()
        .expect("start a host process");
    let host_pid = host_process.id().to_string();
    let by_file = format!("--mount=/proc/{host_pid}/ns/mnt");
    for command in [
        vec![
            "/usr/bin/nsenter",
            "-t",
            host_pid.as_str(),
            "-m",
            "/bin/true",
        ],
        vec!["/usr/bin/nsenter", by_file.as_str(), "--", "/bin/true"],
    ] {
        let ran = run_in(
            &mut scratch,
            &["--privileged", "--pid", "host"],
            &image,
            &command,
        );
        // nsenter execs the command in place once in (no fork without -p): `true` exits.
        let found = findings_of(&ran, "true");
        let f = found
            .iter()
            .find(|f| {
                f.context.additional.get("ruleId").map(String::as_str)
                    == Some("behaviour-container-joins-host-namespace")
            })
            .unwrap_or_else(|| panic!("{command:?}: no setns finding in {:?}", types(&found)));
        assert_eq!(
            f.context
                .additional
                .get("hostNamespacesJoined")
                .map(String::as_str),
            Some("mnt"),
            "{command:?}: the pid namespace is the host's already (--pid host)"
        );
        assert_eq!(
            f.resource.container.as_ref().map(|c| c.id.as_str()),
            Some(ran.id.as_str())
        );
    }
    let _ = host_process.kill();
    let _ = host_process.wait();

    // The chroot escape: a container given the host's root (`-v /:/host`) chroots into it and
    // runs the host's programs. What counts is the process's root directory as the kernel
    // holds it at exec (the exec record carries it), so even a program that is gone at once
    // (`/bin/true`) is seen. Running a host program through the volume without the chroot is
    // nothing: its root is the container's.
    let (id, name) = scratch.run_detached(&["--volume", "/:/host"], &image);
    let host_root = |f: &Finding| {
        f.context.additional.get("ruleId").map(String::as_str)
            == Some("behaviour-container-host-root")
    };
    for (command, chrooted) in [
        (&["/host/bin/true"][..], false),
        (&["/usr/sbin/chroot", "/host", "/bin/true"][..], true),
    ] {
        let mut args = vec!["exec", name.as_str()];
        args.extend(command);
        let out = podman(&args);
        assert!(out.status.success(), "{command:?}: {out:?}");
        // The exec of true itself (chroot execs it), and its exit.
        let exec = AGENT
            .wait_for(WAIT, |e| {
                matches!(e, Event::Exec(x) if x.process.comm == "true"
                    && x.argv.first().map(String::as_str) == command.last().copied()
                    && x.host_root == chrooted)
                    && in_container(e, &id)
            })
            .is_some();
        assert!(
            exec,
            "{command:?}: no exec of true with host_root {chrooted}"
        );
        let found = of_container(&id);
        assert_eq!(
            found.iter().any(host_root),
            chrooted,
            "{command:?}: {:?}",
            types(&found)
        );
    }
    let found = of_container(&id);
    let f = found.iter().find(|f| host_root(f)).expect("the finding");
    assert_eq!(
        f.finding_type.as_str(),
        "PrivilegeEscalation:Runtime/SuspiciousCommand"
    );
    assert_eq!(f.severity_label, SeverityLabel::Medium);

    // RuncContainerEscape: a container given the host's runtime binary directory overwrites
    // runc (a copy of /bin/true the test made, not the host's runc); reading it is nothing.
    let sbin = host.0.join("sbin");
    std::fs::create_dir_all(&sbin).unwrap();
    std::fs::copy("/bin/true", sbin.join("runc")).unwrap();
    let volume = format!("{}:/usr/local/sbin", sbin.display());
    let ran = run_in(
        &mut scratch,
        &["--volume", &volume],
        &image,
        &["/bin/sh", "-c", "echo '#' >> /usr/local/sbin/runc"],
    );
    let found = findings_of(&ran, "sh");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/RuncContainerEscape",
        &ran,
        &image,
    );
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.file_path.as_deref(), Some("/usr/local/sbin/runc"));
    let ran = run_in(
        &mut scratch,
        &["--volume", &volume],
        &image,
        &["/bin/sh", "-c", "read x < /usr/local/sbin/runc; true"],
    );
    none(&findings_of(&ran, "sh"), "reading the runtime binary");

    // CGroupsReleaseAgentModified on a real cgroupfs: a privileged container mounts a cgroup
    // v1 hierarchy and sets its release agent (a named hierarchy of its own, so the host's
    // controllers are left alone; it goes with the unmount). Setting notify_on_release, the
    // other half of the escape (Tracee's signature), raises the type too; reading the release
    // agent is nothing.
    let hierarchy = unique_name("vigil");
    let ran = run_in(
        &mut scratch,
        &["--privileged"],
        &image,
        &[
            "/bin/sh",
            "-c",
            &format!(
                "mount -t cgroup -o none,name={hierarchy} cgroup /cg && echo /x > /cg/release_agent; \
                 umount /cg"
            ),
        ],
    );
    let found = findings_of(&ran, "sh");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        &ran,
        &image,
    );
    assert_eq!(f.context.file_path.as_deref(), Some("/cg/release_agent"));
    let ran = run_in(
        &mut scratch,
        &["--privileged"],
        &image,
        &[
            "/bin/sh",
            "-c",
            &format!(
                "mount -t cgroup -o none,name={hierarchy}b cgroup /cg && read x < /cg/release_agent; \
                 umount /cg"
            ),
        ],
    );
    none(&findings_of(&ran, "sh"), "reading the release agent");
    let ran = run_in(
        &mut scratch,
        &["--privileged"],
        &image,
        &[
            "/bin/sh",
            "-c",
            &format!(
                "mount -t cgroup -o none,name={hierarchy}c cgroup /cg && mkdir /cg/x \
                 && echo 1 > /cg/x/notify_on_release; rmdir /cg/x; umount /cg"
            ),
        ],
    );
    let found = findings_of(&ran, "sh");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.file_path.as_deref(),
        Some("/cg/x/notify_on_release")
    );

    // The core_pattern escape: a privileged container pipes the host's core dumps into a
    // program of its own (the kernel runs it as root in the host's namespaces on the next
    // crash). The setting is put back when the test ends; the program named does not exist.
    let core = "/proc/sys/kernel/core_pattern";
    let was = std::fs::read_to_string(core).expect("read core_pattern");
    let _restore = RestoreCorePattern(was.trim_end_matches('\n').to_owned());
    let ran = run_in(
        &mut scratch,
        &["--privileged"],
        &image,
        &[
            "/bin/sh",
            "-c",
            &format!("echo '|/tmp/vigil-no-such-handler %p' > {core}"),
        ],
    );
    let found = findings_of(&ran, "sh");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.additional.get("ruleId").map(String::as_str),
        Some("behaviour-core-pattern-handler")
    );
    assert_eq!(f.severity_label, SeverityLabel::High);
}

/// CDK's and deepce's container escapes that reach the host through something other than a
/// host directory mounted (`cdk run shim-pwn`, `rewrite-cgroup-devices`, `mount-procfs`), and
/// the kernel running the escape's payload: each from a real container, with its benign twin.
#[test]
fn container_toolkit_escapes_through_the_shim_socket_and_the_host_s_procfs() {
    let test = "container_toolkit_escapes";
    if !podman_or_skip(test) {
        return;
    }
    let mut scratch = Scratch::new("vigil-ctr-toolkit");
    let image = build_image(&mut scratch, "toolkit");

    // shim-pwn (CVE-2020-15257): a container on the host's network reaches a containerd
    // shim's abstract socket (a listener of the test's, under the shims' names); another
    // abstract socket is nothing.
    let shim = format!("/containerd-shim/{}/shim.sock", unique_name("vigil"));
    let other = format!("/{}/app.sock", unique_name("vigil"));
    let listeners = [&shim, &other].map(|name| {
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        UnixListener::bind_addr(&addr).expect("bind")
    });
    let ran = run_in(
        &mut scratch,
        &["--network", "host"],
        &image,
        &[
            "/usr/bin/vigil-trigger",
            "unix-connect",
            &format!("@{shim}"),
        ],
    );
    let found = findings_of(&ran, "vigil-trigger");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/DockerSocketAccessed",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.socket_path.as_deref(),
        Some(format!("@{shim}").as_str())
    );
    let ran = run_in(
        &mut scratch,
        &["--network", "host"],
        &image,
        &[
            "/usr/bin/vigil-trigger",
            "unix-connect",
            &format!("@{other}"),
        ],
    );
    let found = findings_of(&ran, "vigil-trigger");
    none(
        &found,
        "another abstract socket from a container on the host's network",
    );
    drop(listeners);

    // rewrite-cgroup-devices: a container with CAP_SYS_ADMIN mounts cgroup v1's devices
    // hierarchy and allows itself every device in its own cgroup (then it would `mknod` the
    // host's disk); runc writing the same lists from the host for every container raises
    // nothing (`container_life_cycle_raises_nothing_at_medium_or_above`).
    let ran = run_in(
        &mut scratch,
        &["--cap-add", "SYS_ADMIN"],
        &image,
        &[
            "/bin/sh",
            "-c",
            "mount -t cgroup -o devices devices /cg && \
             while IFS=: read -r n c p; do \
               [ \"$c\" = devices ] && echo a > \"/cg$p/devices.allow\"; \
             done < /proc/self/cgroup; umount /cg",
        ],
    );
    let found = findings_of(&ran, "sh");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.additional.get("ruleId").map(String::as_str),
        Some("behaviour-container-devices-allowed")
    );
    assert!(
        f.context
            .file_path
            .as_deref()
            .is_some_and(|p| p.starts_with("/cg/") && p.ends_with("/devices.allow")),
        "{:?}",
        f.context.file_path
    );

    // mount-procfs: a container given the host's /proc (`-v /proc:/host_proc`, no privilege)
    // pipes the host's core dumps into a program in its own file system, then crashes: the
    // kernel runs that program on the host. The program is the image's `true`; the setting is
    // put back when the test ends.
    let core = "/proc/sys/kernel/core_pattern";
    let was = std::fs::read_to_string(core).expect("read core_pattern");
    let _restore = RestoreCorePattern(was.trim_end_matches('\n').to_owned());
    let (id, name) = scratch.run_detached(&["--volume", "/proc:/host_proc"], &image);
    let ran = Ran { id, name };
    let merged = podman_ok(&[
        "inspect",
        "--format",
        "{{.GraphDriver.Data.MergedDir}}",
        &ran.name,
    ]);
    let handler = format!("{merged}/bin/true");
    let out = podman(&[
        "exec",
        &ran.name,
        "/bin/sh",
        "-c",
        &format!("echo '|{handler} %p' > /host_proc/sys/kernel/core_pattern"),
    ]);
    assert!(out.status.success(), "the write: {out:?}");
    let found = findings_of(&ran, "sh");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.additional.get("ruleId").map(String::as_str),
        Some("behaviour-core-pattern-handler")
    );
    assert_eq!(
        f.context
            .additional
            .get("writtenThrough")
            .map(String::as_str),
        Some("/host_proc/sys/kernel/core_pattern")
    );
    assert_eq!(
        f.context.additional.get("coreHandler").map(String::as_str),
        Some(handler.as_str())
    );
    assert_eq!(f.severity_label, SeverityLabel::High);
    let _ = podman(&["exec", &ran.name, "/usr/bin/vigil-trigger", "crash"]);
    let helper = kernel_helper_findings(&handler);
    let f = helper
        .first()
        .unwrap_or_else(|| panic!("no finding about the kernel running {handler}"));
    assert_eq!(
        f.finding_type.as_str(),
        "PrivilegeEscalation:Runtime/SuspiciousCommand"
    );
    assert_eq!(
        f.context.additional.get("helperOrigin").map(String::as_str),
        Some("containerStorage")
    );
    assert_eq!(f.severity_label, SeverityLabel::High);

    // The benign twin: the distribution's kind of handler, a program in a system directory,
    // run by the kernel for a crash on the host, raises nothing.
    std::fs::write(core, "|/bin/true %p").expect("set core_pattern");
    let crashed = Command::new(TRIGGER).arg("crash").status().expect("crash");
    assert!(!crashed.success());
    assert!(
        AGENT
            .wait_for(WAIT, |e| matches!(e, Event::Exec(x)
                if x.process.ppid == 2 && x.filename == "/bin/true"))
            .is_some(),
        "no exec of the kernel's /bin/true"
    );
    let raised = kernel_helper_findings("/bin/true");
    none(&raised, "the kernel running a handler in /bin");
}

/// The `behaviour-kernel-helper-program` findings about `program`, once the kernel has run it.
fn kernel_helper_findings(program: &str) -> Vec<Finding> {
    AGENT.wait_for(
        WAIT,
        |e| matches!(e, Event::Exec(x) if x.process.ppid == 2 && x.filename == program),
    );
    detect_all()
        .into_iter()
        .filter(|f| {
            f.context.additional.get("ruleId").map(String::as_str)
                == Some("behaviour-kernel-helper-program")
                && f.context.additional.get("kernelHelper").map(String::as_str) == Some(program)
        })
        .collect()
}

/// Puts the host's core_pattern back as it was.
struct RestoreCorePattern(String);

impl Drop for RestoreCorePattern {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/core_pattern", &self.0);
    }
}

/// `podman --runtime runc ARGS` as a child of this process, which must succeed; its pid (the
/// root of the runtime's process tree for this step) and stdout.
fn step(roots: &mut Vec<(u32, String)>, args: &[&str]) -> String {
    let child = Command::new("podman")
        .args(["--runtime", "runc"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    roots.push((child.id(), format!("podman {}", args.join(" "))));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "podman {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs a copy of `program` installed at `at`, removed afterwards.
fn run_installed(roots: &mut Vec<(u32, String)>, program: &str, at: &Path, args: &[&str]) {
    std::fs::copy(program, at).unwrap();
    let child = support::spawn::spawn(Command::new(at).args(args));
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            let _ = std::fs::remove_file(at);
            panic!("{}: {e}", at.display());
        }
    };
    roots.push((
        child.id(),
        format!("{program} as {} {}", at.display(), args.join(" ")),
    ));
    let out = child.wait_with_output();
    let _ = std::fs::remove_file(at);
    let out = out.unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", out.status);
}

/// The runtime's own work raises nothing at Medium or above: images built (with a `RUN`
/// step, which runs a container) and imported, a container created, started, exec'd into,
/// its logs read, stopped, restarted, stopped and removed, one run with `--rm`, the images
/// removed; and the kubelet's links of container logs under /var/log/containers, made and
/// removed by `/usr/local/bin/kubelet` (a copy of `ln`, of `rm`: no kubelet runs here). Every
/// event of each step's process tree (podman, conmon, runc, the containers' processes, the
/// cleanup podman that conmon starts) goes through one detector.
#[test]
fn container_life_cycle_raises_nothing_at_medium_or_above() {
    let test = "container_life_cycle_raises_nothing";
    if !podman_or_skip(test) {
        return;
    }
    LazyLock::force(&AGENT);
    let mut scratch = Scratch::new("vigil-ctr-life");
    let host = RemoveDir(host_dir("vigil-ctr-life"));
    let mut roots: Vec<(u32, String)> = Vec::new();
    let limits = ulimits();
    let limits: Vec<&str> = limits.iter().map(String::as_str).collect();

    // Images: FROM scratch, one built on it with a RUN step, one imported from a tarball.
    let base = build_image(&mut scratch, "base");
    let context = scratch.path("derived");
    std::fs::write(
        context.join("Containerfile"),
        format!("FROM {base}\nRUN [\"/bin/sh\", \"-c\", \"echo built > /built\"]\n"),
    )
    .unwrap();
    let derived = format!("localhost/{}:derived", unique_name("vigil-ctr"));
    scratch.images.push(derived.clone());
    let mut args = vec!["build", "--quiet", "--tag", derived.as_str()];
    args.extend(&limits);
    args.push(context.to_str().unwrap());
    step(&mut roots, &args);
    let tarball = scratch.dir.join("rootfs.tar");
    let rootfs = scratch.dir.join("image/rootfs");
    let tar = Command::new("tar")
        .args([
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(tar.success(), "tar of the rootfs");
    let imported = format!("localhost/{}:imported", unique_name("vigil-ctr"));
    scratch.images.push(imported.clone());
    step(
        &mut roots,
        &["import", "--quiet", tarball.to_str().unwrap(), &imported],
    );

    // A container through its life, with a volume and its log file.
    let data = host.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let name = unique_name("vigil-ctr");
    scratch.containers.push(name.clone());
    let volume = format!("{}:/data", data.display());
    let mut args = vec!["create", "--name", name.as_str(), "--volume", &volume];
    args.extend(&limits);
    args.extend([
        "--log-driver",
        "k8s-file",
        derived.as_str(),
        "/bin/sh",
        "-c",
    ]);
    args.push("echo started; echo hello > /data/out; exec /bin/sleep 600");
    let id = step(&mut roots, &args);
    step(&mut roots, &["start", &name]);
    step(
        &mut roots,
        &[
            "exec",
            &name,
            "/bin/sh",
            "-c",
            "echo x >> /data/out; read x < /built",
        ],
    );
    step(&mut roots, &["logs", &name]);
    step(&mut roots, &["stop", "--time", "1", &name]);
    step(&mut roots, &["start", &name]);
    step(&mut roots, &["stop", "--time", "1", &name]);
    step(&mut roots, &["rm", &name]);
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(&limits);
    args.extend([imported.as_str(), "/bin/true"]);
    step(&mut roots, &args);
    step(&mut roots, &["rmi", &derived, &imported]);

    // The kubelet's links of container logs (made where missing, removed after).
    let made: Vec<&Path> = ["/var/log/containers", "/var/log/pods"]
        .into_iter()
        .map(Path::new)
        .filter(|d| !d.exists())
        .collect();
    for d in &made {
        std::fs::create_dir_all(d).unwrap();
    }
    let pod_dir = Path::new("/var/log/pods").join(unique_name("vigil-test_web-0_"));
    std::fs::create_dir_all(pod_dir.join("web")).unwrap();
    let log = pod_dir.join("web/0.log");
    std::fs::write(&log, "").unwrap();
    let link = Path::new("/var/log/containers")
        .join(format!("{}_vigil-test_web-{id}.log", unique_name("web-0")));
    // Allow-lists go by the executable's path: the stand-in kubelet is installed where a
    // kubelet is (a name in a system directory), unless one is there already.
    let kubelet = Path::new("/usr/local/bin/kubelet");
    if kubelet.exists() {
        eprintln!(
            "{test}: NOT TESTED: the kubelet's log links ({} exists; the test installs its stand-in there)",
            kubelet.display()
        );
    } else {
        run_installed(
            &mut roots,
            "/bin/ln",
            kubelet,
            &["-s", log.to_str().unwrap(), link.to_str().unwrap()],
        );
        run_installed(&mut roots, "/bin/rm", kubelet, &[link.to_str().unwrap()]);
    }
    let _ = std::fs::remove_dir_all(&pod_dir);
    for d in made.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }

    let mut events = Vec::new();
    for (pid, what) in &roots {
        let tree = AGENT
            .tree_events(*pid, WAIT)
            .unwrap_or_else(|| panic!("no exec and exit of {what} (pid {pid}) within {WAIT:?}"));
        eprintln!("{test}: {what}: {} events", tree.len());
        events.extend(tree);
    }
    let in_ours = events.iter().filter(|e| in_container(e, &id)).count();
    assert!(
        in_ours > 0,
        "no event of the container {id} was attributed to it"
    );
    // Every event seen so far goes to the detector, as in the agent; the findings kept are
    // those of the container and of the runtime's process trees.
    let pids: std::collections::BTreeSet<u32> = events.iter().map(|e| e.process().pid).collect();
    let found: Vec<Finding> = detect_all()
        .into_iter()
        .filter(|f| {
            f.resource.container.as_ref().is_some_and(|c| c.id == id)
                || f.process.as_ref().is_some_and(|p| pids.contains(&p.pid))
        })
        .collect();
    eprintln!(
        "{test}: {} events, findings:\n{}",
        events.len(),
        explain(&found)
    );
    let medium: Vec<Finding> = found
        .into_iter()
        .filter(|f| f.severity_label >= SeverityLabel::Medium)
        .collect();
    none(&medium, "the runtime's own work at Medium or above");
}

/// Falco's "Debugfs Launched in Privileged Container": `debugfs` run in a container raises
/// `behaviour-disk-editor-in-container` (PrivilegeEscalation:Runtime/SuspiciousCommand) naming
/// the container, whatever it is asked to do (here only its version: the test opens no disk).
#[test]
fn a_file_system_debugger_run_in_a_container() {
    let test = "a_file_system_debugger_run_in_a_container";
    if !podman_or_skip(test) {
        return;
    }
    let debugfs = ["/usr/sbin/debugfs", "/sbin/debugfs"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(debugfs) = debugfs else {
        let message = format!("{test}: needs debugfs (e2fsprogs) on the host; not run");
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("skipped: {message}");
        return;
    };
    let mut scratch = Scratch::new("vigil-ctr-debugfs");
    let context = scratch.path("image");
    let rootfs = context.join("rootfs");
    copy_with_libraries(Path::new("/bin/sleep"), &rootfs, "bin/sleep");
    copy_with_libraries(Path::new(debugfs), &rootfs, "usr/sbin/debugfs");
    let image = format!("localhost/{}:debugfs", unique_name("vigil-ctr"));
    scratch.build_image(&context, &image);
    let ran = run_in(
        &mut scratch,
        &["--privileged"],
        &image,
        &["/usr/sbin/debugfs", "-V"],
    );
    let found = findings_of(&ran, "debugfs");
    let f = the_finding(
        &found,
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        &ran,
        &image,
    );
    assert_eq!(
        f.context.additional.get("ruleId").map(String::as_str),
        Some("behaviour-disk-editor-in-container"),
        "{}",
        explain(&found)
    );
    assert_eq!(f.severity_label, SeverityLabel::Medium);
}

/// `podman run --rm` of `script` (`/bin/sh -c`) in `image`, without a network, with `agent`
/// stopped (its parent's SIGSTOP) while the container runs when given: the container's id
/// (podman's `--cidfile`), once podman has removed it.
fn run_removed(scratch: &Scratch, image: &str, script: &str, agent: Option<&Child>) -> String {
    let cidfile = scratch.dir.join(format!("cid-{}", unique_name("run")));
    let name = unique_name("vigil-ctr-rm");
    let limits = ulimits();
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        name.as_str(),
        "--cidfile",
        cidfile.to_str().unwrap(),
    ];
    args.extend(limits.iter().map(String::as_str));
    args.extend([image, "/bin/sh", "-c", script]);
    if let Some(agent) = agent {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(agent.id() as i32, libc::SIGSTOP) };
    }
    let out = podman(&args);
    if let Some(agent) = agent {
        // SAFETY: as above.
        unsafe { libc::kill(agent.id() as i32, libc::SIGCONT) };
    }
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = std::fs::read_to_string(&cidfile).expect("podman wrote the container's id");
    let id = id.trim().to_owned();
    assert!(
        podman(&["container", "exists", &id]).status.code() == Some(1),
        "the container is removed"
    );
    id
}

/// A container that runs for a moment and is removed (`podman run --rm`), as an attack
/// simulation runs one, through the agent binary. The agent reads records in batches, so it
/// usually reads such a container's execs once the container and its cgroup are gone, and
/// the test makes that certain by stopping the agent (its parent's SIGSTOP is no tampering)
/// while the container runs. The kernel reports each cgroup as it is made (`cgroup_mkdir`), so
/// the agent still knows the container its processes ran in: the binary written and run in it
/// is `NewBinaryExecuted` (a type for containers only) naming the container podman made.
/// Without that report the cgroup's id led nowhere and the exec passed as the host's.
#[test]
fn a_container_gone_before_the_agent_reads_it_is_still_named() {
    let test = "a_container_gone_before_the_agent_reads_it_is_still_named";
    if !podman_or_skip(test) {
        return;
    }
    let mut scratch = Scratch::new("vigil-ctr-gone");
    let image = build_image(&mut scratch, "gone");
    let (mut agent, rx) = support::detection::agent_attached(
        &["--no-store", "--duration", "600s"],
        &scratch.path("agent"),
    );
    let id = run_removed(
        &scratch,
        &image,
        "cp /bin/true /tmp/dropped && /tmp/dropped",
        Some(&agent),
    );
    let id = id.as_str();
    let mut found = None;
    let mut seen = Vec::new();
    while let Ok(f) = rx.recv_timeout(WAIT) {
        if f.finding_type.as_str() == "Execution:Runtime/NewBinaryExecuted"
            && f.process.as_ref().map(|p| p.executable_path.as_str()) == Some("/tmp/dropped")
        {
            found = Some(f);
            break;
        }
        seen.push(f);
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let _ = agent.wait();
    let f = found.unwrap_or_else(|| {
        panic!(
            "no NewBinaryExecuted for /tmp/dropped in {id}; the agent reported:\n{}",
            explain(&seen)
        )
    });
    let container = f
        .resource
        .container
        .as_ref()
        .expect("the finding names a container");
    assert_eq!(container.id, id, "{}", explain(std::slice::from_ref(&f)));
}

/// podman removing a container deletes the files its processes wrote from the container's
/// layer, as the host names them (`/var/lib/containers/storage/overlay/ID/diff/root/...`): a
/// shell's history and start-up file among them. That is the engine cleaning up, not the host's
/// history removed or its `.bashrc` changed; before this was told apart, every `--rm` container
/// whose shell kept a history raised `behaviour-history-tampered` (Medium) for podman on the
/// host. The container's own write of its `.bashrc` is still reported, naming the container.
#[test]
fn a_container_removed_by_its_engine_is_not_the_hosts_files_changed() {
    let test = "a_container_removed_by_its_engine_is_not_the_hosts_files_changed";
    if !podman_or_skip(test) {
        return;
    }
    let mut scratch = Scratch::new("vigil-ctr-removed");
    let image = build_image(&mut scratch, "removed");
    let (mut agent, rx) = support::detection::agent_attached(
        &["--no-store", "--duration", "600s"],
        &scratch.path("agent"),
    );
    let id = run_removed(
        &scratch,
        &image,
        "mkdir -p /root && echo 'ls -la' > /root/.bash_history && echo 'alias x=true' >> /root/.bashrc",
        None,
    );
    // A marker run after the removal: a tool known by name, from the host.
    let marker = scratch.path("marker").join("nmap");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::copy(std::fs::canonicalize("/bin/true").unwrap(), &marker).unwrap();
    std::fs::set_permissions(&marker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = Command::new(&marker).status();
    let mut seen = Vec::new();
    let mut marked = false;
    while let Ok(f) = rx.recv_timeout(WAIT) {
        let is_marker = f.context.additional.get("ruleId").map(String::as_str) == Some("tool-nmap");
        seen.push(f);
        if is_marker {
            marked = true;
            break;
        }
    }
    // Records of the removal read after the marker's, whatever the order the CPUs wrote them.
    while let Ok(f) = rx.recv_timeout(Duration::from_secs(3)) {
        seen.push(f);
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let _ = agent.wait();
    assert!(marked, "the marker was not reported:\n{}", explain(&seen));
    let in_container = seen.iter().any(|f| {
        f.resource.container.as_ref().is_some_and(|c| c.id == id)
            && f.context.file_path.as_deref() == Some("/root/.bashrc")
    });
    assert!(
        in_container,
        "the container's own .bashrc write names the container:\n{}",
        explain(&seen)
    );
    let layer: Vec<&Finding> = seen
        .iter()
        .filter(|f| {
            f.context
                .file_path
                .as_deref()
                .is_some_and(|p| p.contains(&id[..12]) || p.starts_with("/var/lib/containers/"))
        })
        .collect();
    assert!(
        layer.is_empty(),
        "the engine's removal of the container's layer raised findings:\n{}",
        explain(&layer.into_iter().cloned().collect::<Vec<_>>())
    );
}
