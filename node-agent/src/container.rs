//! Container context from cgroups and namespaces: which container (and runtime, and pod) a
//! process runs in, and whether it shares the host's namespaces.
//!
//! The kernel gives each record the cgroup v2 id (the inode of the cgroup's directory); this
//! module maps ids to paths by walking the cgroup v2 hierarchy (cached, bounded, rebuilt when an
//! id is unknown, at most once a second) and reads container ids out of the path the way
//! runtimes name their cgroups. On hybrid hosts, where runtimes may use only v1 hierarchies,
//! `/proc/<pid>/cgroup` of a live process is read too.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use serde::Serialize;

/// Container runtimes recognised from cgroup names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// `docker-<id>.scope`, `/docker/<id>`.
    Docker,
    /// `cri-containerd-<id>.scope`, or a 64-hex leaf under `kubepods`.
    Containerd,
    /// `crio-<id>.scope`.
    Crio,
    /// `libpod-<id>.scope`.
    Podman,
}

/// The container a process runs in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The 64-hex container id.
    pub id: String,
    /// Its runtime.
    pub runtime: Runtime,
    /// The Kubernetes pod uid, when the cgroup path names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The cgroup path it was read from.
    pub cgroup: String,
}

/// `CLOCK_BOOTTIME` in ns, the clock of the kernel's records.
fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads a container out of a cgroup path, as runtimes name them (systemd and cgroupfs drivers).
pub fn parse_cgroup_path(path: &str) -> Option<Container> {
    let pod_uid = path.split('/').find_map(|part| {
        let part = part.strip_suffix(".slice").unwrap_or(part);
        let rest = part
            .rsplit("-pod")
            .next()
            .filter(|_| part.contains("-pod"))
            .or_else(|| part.strip_prefix("pod"))?;
        let uid = rest.replace('_', "-");
        (uid.len() == 36).then_some(uid)
    });
    let mut found = None;
    for part in path.split('/').rev() {
        let scoped = part.strip_suffix(".scope").unwrap_or(part);
        let candidates: [(&str, Runtime); 5] = [
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::Crio),
            ("libpod-", Runtime::Podman),
            ("", Runtime::Docker),
        ];
        for (prefix, runtime) in candidates {
            if let Some(id) = scoped.strip_prefix(prefix).filter(|id| is_container_id(id)) {
                let runtime = if prefix.is_empty() {
                    // A bare id: `/docker/<id>` is Docker, under `kubepods` it is the CRI's.
                    if path.contains("kubepods") {
                        Runtime::Containerd
                    } else {
                        Runtime::Docker
                    }
                } else {
                    runtime
                };
                found = Some((id.to_owned(), runtime));
                break;
            }
        }
        if found.is_some() {
            break;
        }
    }
    let (id, runtime) = found?;
    Some(Container {
        id,
        runtime,
        pod_uid,
        cgroup: path.to_owned(),
    })
}

/// Namespace inode of `/proc/<pid>/ns/<kind>`.
pub fn namespace_inode(proc_root: &Path, pid: &str, kind: &str) -> Option<u32> {
    let link = fs::read_link(proc_root.join(pid).join("ns").join(kind)).ok()?;
    let text = link.to_str()?;
    text.split_once('[')?.1.strip_suffix(']')?.parse().ok()
}

/// Resolves cgroup ids to container context.
pub struct ContainerResolver {
    root: Option<PathBuf>,
    proc_root: PathBuf,
    paths: HashMap<u64, String>,
    by_cgroup: HashMap<u64, Option<Container>>,
    by_pid_ns: HashMap<u32, Option<Container>>,
    /// When the last scan started, boot-time ns.
    last_scan_ns: u64,
    /// The host's pid and mount namespaces (those of pid 1).
    pub host_pid_ns: Option<u32>,
    /// See `host_pid_ns`.
    pub host_mnt_ns: Option<u32>,
    max_entries: usize,
}

impl ContainerResolver {
    /// A resolver over the cgroup v2 hierarchy at `root` (none: only `/proc/<pid>/cgroup`).
    pub fn new(root: Option<PathBuf>, proc_root: PathBuf) -> Self {
        // The host's namespaces are init's; where init's are hidden (a sandbox that denies
        // reading pid 1's links), the agent's own, which it runs in on a host.
        let host = |kind| {
            namespace_inode(&proc_root, "1", kind)
                .or_else(|| namespace_inode(&proc_root, "self", kind))
        };
        let host_pid_ns = host("pid");
        let host_mnt_ns = host("mnt");
        Self {
            root,
            proc_root,
            paths: HashMap::new(),
            by_cgroup: HashMap::new(),
            by_pid_ns: HashMap::new(),
            last_scan_ns: 0,
            host_pid_ns,
            host_mnt_ns,
            max_entries: 65_536,
        }
    }

    /// Whether the namespaces are the host's.
    pub fn in_host_namespaces(&self, pid_ns: u32, mnt_ns: u32) -> bool {
        Some(pid_ns) == self.host_pid_ns && Some(mnt_ns) == self.host_mnt_ns
    }

    /// The cgroup path of an id seen at `seen_ns` (boot time), relative to the v2 root
    /// (`/system.slice/x.scope`). An unknown id means a cgroup newer than the last scan: the
    /// index is rebuilt unless the last scan started after the event (then the cgroup was
    /// already gone). A cgroup cannot be removed while it holds a process, so unknown ids come
    /// only from new cgroups and each costs at most one scan.
    pub fn cgroup_path(&mut self, cgroup_id: u64, seen_ns: u64) -> Option<String> {
        if let Some(path) = self.paths.get(&cgroup_id) {
            return Some(path.clone());
        }
        if self.last_scan_ns <= seen_ns {
            self.rescan();
        }
        self.paths.get(&cgroup_id).cloned()
    }

    /// Rebuilds the id -> path index (cgroups come and go with containers).
    pub fn rescan(&mut self) {
        self.last_scan_ns = boot_ns();
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut paths = HashMap::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            if paths.len() >= self.max_entries {
                break;
            }
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            let rel = dir
                .strip_prefix(&root)
                .map(|p| format!("/{}", p.display()))
                .unwrap_or_default();
            paths.insert(meta.ino(), if rel == "/" { "/".to_owned() } else { rel });
            if let Ok(entries) = fs::read_dir(&dir) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        self.paths = paths;
    }

    /// The container of a process: from its cgroup v2 id, else (a process outside the host's
    /// namespaces, on a host whose runtime uses v1 cgroups) from `/proc/<pid>/cgroup`, once per
    /// pid namespace. Cached; the caches are dropped whole when they grow past their bound.
    pub fn container(
        &mut self,
        cgroup_id: u64,
        seen_ns: u64,
        pid: u32,
        pid_ns: u32,
        host_namespaces: bool,
    ) -> Option<Container> {
        if self.by_cgroup.len() > self.max_entries || self.by_pid_ns.len() > self.max_entries {
            self.by_cgroup.clear();
            self.by_pid_ns.clear();
        }
        match self.by_cgroup.get(&cgroup_id) {
            Some(Some(c)) => return Some(c.clone()),
            Some(None) => {}
            None => {
                if let Some(path) = self.cgroup_path(cgroup_id, seen_ns) {
                    let c = parse_cgroup_path(&path);
                    self.by_cgroup.insert(cgroup_id, c.clone());
                    if c.is_some() {
                        return c;
                    }
                }
            }
        }
        if host_namespaces {
            return None;
        }
        if let Some(c) = self.by_pid_ns.get(&pid_ns) {
            return c.clone();
        }
        let text = fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        let c = text
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .find_map(parse_cgroup_path);
        self.by_pid_ns.insert(pid_ns, c.clone());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1d0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";

    #[test]
    fn runtimes_are_read_from_their_cgroup_names() {
        let cases = [
            (
                format!("/system.slice/docker-{ID}.scope"),
                Runtime::Docker,
                None,
            ),
            (format!("/docker/{ID}"), Runtime::Docker, None),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_1111_2222_3333_444455556666.slice/cri-containerd-{ID}.scope"
                ),
                Runtime::Containerd,
                Some("1a2b3c4d-1111-2222-3333-444455556666"),
            ),
            (
                format!("/kubepods/besteffort/pod1a2b3c4d-1111-2222-3333-444455556666/{ID}"),
                Runtime::Containerd,
                Some("1a2b3c4d-1111-2222-3333-444455556666"),
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope"),
                Runtime::Podman,
                None,
            ),
            (
                format!("/system.slice/crio-{ID}.scope"),
                Runtime::Crio,
                None,
            ),
        ];
        for (path, runtime, pod) in cases {
            let c = parse_cgroup_path(&path).unwrap_or_else(|| panic!("no container in {path}"));
            assert_eq!(c.id, ID, "{path}");
            assert_eq!(c.runtime, runtime, "{path}");
            assert_eq!(c.pod_uid.as_deref(), pod, "{path}");
        }
    }

    #[test]
    fn host_cgroups_are_not_containers() {
        for path in [
            "/",
            "/system.slice/ssh.service",
            "/user.slice/user-1000.slice/session-3.scope",
            "/docker/short",
        ] {
            assert_eq!(parse_cgroup_path(path), None, "{path}");
        }
    }

    #[test]
    fn this_process_is_in_the_host_namespaces_and_its_cgroup_resolves() {
        let root = crate::sensor::cgroup2_root();
        let mut resolver = ContainerResolver::new(root.clone(), PathBuf::from("/proc"));
        let pid_ns = namespace_inode(Path::new("/proc"), "self", "pid").expect("own pid ns");
        let mnt_ns = namespace_inode(Path::new("/proc"), "self", "mnt").expect("own mnt ns");
        assert!(
            resolver.in_host_namespaces(pid_ns, mnt_ns),
            "tests run in the host namespaces"
        );
        let root = root.expect("cgroup v2 is mounted here");
        let ino = fs::metadata(&root).expect("root").ino();
        assert_eq!(resolver.cgroup_path(ino, boot_ns()).as_deref(), Some("/"));
    }
}
