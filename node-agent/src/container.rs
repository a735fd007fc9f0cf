//! Container context from cgroups and namespaces: which container (and runtime, and pod) a
//! process runs in, and whether it shares the host's namespaces.
//!
//! The kernel gives each record the cgroup v2 id (the inode of the cgroup's directory); this
//! module maps ids to paths by walking the cgroup v2 hierarchy (cached, bounded, rebuilt when an
//! id is unknown, at most once a second) and reads container ids out of the path the way
//! runtimes name their cgroups. On hybrid hosts, where runtimes may use only v1 hierarchies,
//! `/proc/<pid>/cgroup` of a live process is read too.
//!
//! The container's name and image come from the runtime's own state on the host's disk
//! ([`RuntimeState`]): podman's `containers.json`, docker's `config.v2.json`, the OCI spec of a
//! containerd task or a CRI-O container with the CRI's annotations. They are read once per
//! container (a few tries while a starting container's state is being written), within a
//! budget of reads per second, so a burst of new containers cannot hold the reader.

use std::{
    collections::{HashMap, VecDeque},
    fs,
    io::Read,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

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
    /// What the runtime's state says about it (name, image), when readable.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_described"
    )]
    pub described: Option<Arc<Described>>,
}

fn serialize_described<S: serde::Serializer>(
    described: &Option<Arc<Described>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    described.as_deref().serialize(serializer)
}

/// What a runtime's state on the host says about a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Described {
    /// Its name: podman's and docker's container name, the CRI's container name in its pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The image reference it was created from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The pod's name (CRI annotations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The pod's namespace (CRI annotations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    /// Whether it runs privileged, where the runtime records it (podman, docker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
}

/// An image reference without its tag and digest: `registry:5000/shop/web:1.2@sha256:..` ->
/// `registry:5000/shop/web` (a colon before the last `/` is a registry port, not a tag).
pub fn image_prefix(image: &str) -> String {
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    let name_start = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[name_start..].find(':') {
        Some(colon) => without_digest[..name_start + colon].to_owned(),
        None => without_digest.to_owned(),
    }
}

/// `CLOCK_BOOTTIME` in ns, the clock of the kernel's records.
pub(crate) fn boot_ns() -> u64 {
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
        described: None,
    })
}

/// Namespace inode of `/proc/<pid>/ns/<kind>`.
pub fn namespace_inode(proc_root: &Path, pid: &str, kind: &str) -> Option<u32> {
    let link = fs::read_link(proc_root.join(pid).join("ns").join(kind)).ok()?;
    let text = link.to_str()?;
    text.split_once('[')?.1.strip_suffix(']')?.parse().ok()
}

/// Largest runtime state file read: podman's `containers.json` lists every container of the
/// host (about 600 bytes each), the others describe one.
const MAX_STATE_FILE: u64 = 16 << 20;

/// A JSON file of a runtime's state, `None` when missing, too large or not what was expected.
fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let file = fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > MAX_STATE_FILE {
        tracing::debug!(path = %path.display(), len, "runtime state file too large: not read");
        return None;
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_STATE_FILE).read_to_end(&mut bytes).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "unreadable runtime state file");
            None
        }
    }
}

/// An entry of podman's (containers/storage's) `containers.json`.
#[derive(Deserialize)]
struct StorageContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    /// The image id.
    #[serde(default)]
    image: String,
    /// JSON text with libpod's `image-name` and `name`.
    #[serde(default)]
    metadata: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct StorageMetadata {
    #[serde(default)]
    image_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Docker's `config.v2.json`: `Name` is `/<name>`, `Config.Image` the reference it was run with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerConfig {
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: DockerRunConfig,
    /// The image id (`sha256:...`).
    #[serde(default)]
    image: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DockerRunConfig {
    #[serde(default)]
    image: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerHostConfig {
    #[serde(default)]
    privileged: bool,
}

/// The part of an OCI runtime spec (`config.json`) read: its annotations.
#[derive(Deserialize)]
struct OciSpec {
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// containers/storage's graph root and run root: podman's and CRI-O's state.
const STORAGE_GRAPH: &str = "var/lib/containers/storage";
const STORAGE_RUN: &str = "run/containers/storage";
/// containerd's task state, one directory per namespace (`k8s.io`, `moby`, `default`).
const CONTAINERD_TASKS: &str = "run/containerd/io.containerd.runtime.v2.task";
const DOCKER_CONTAINERS: &str = "var/lib/docker/containers";

/// Reads containers' names and images from the runtimes' state under a host root (`/` on the
/// host; `/proc/1/root` through the host's `/proc` when the agent runs in a container).
pub struct RuntimeState {
    root: PathBuf,
    /// podman's `containers.json`, parsed, with the modification time it was read at.
    storage: Option<(SystemTime, HashMap<String, Described>)>,
}

impl RuntimeState {
    /// State under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            storage: None,
        }
    }

    /// The host root: `/` when the agent shares init's mount namespace, else init's root
    /// through `proc_root` (needs CAP_SYS_PTRACE over init, which the agent has).
    pub fn host_root(proc_root: &Path) -> PathBuf {
        let init = namespace_inode(proc_root, "1", "mnt");
        let own = namespace_inode(Path::new("/proc"), "self", "mnt");
        match init {
            Some(init) if Some(init) != own => proc_root.join("1").join("root"),
            _ => PathBuf::from("/"),
        }
    }

    /// What the runtime's state says about container `id`, `None` where nothing is readable.
    /// A bare id under `kubepods` may be containerd's or CRI-O's: both are looked at.
    pub fn describe(&mut self, id: &str, runtime: Runtime) -> Option<Described> {
        match runtime {
            Runtime::Podman => self.podman(id),
            Runtime::Docker => self.docker(id),
            Runtime::Containerd => self.containerd(id).or_else(|| self.crio(id)),
            Runtime::Crio => self.crio(id).or_else(|| self.containerd(id)),
        }
    }

    /// podman: names and image from containers/storage's `containers.json` (libpod's own
    /// database is BoltDB or SQLite); privileged from the container's OCI spec annotation.
    fn podman(&mut self, id: &str) -> Option<Described> {
        let path = self
            .root
            .join(STORAGE_GRAPH)
            .join("overlay-containers/containers.json");
        let modified = fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        let fresh = self.storage.as_ref().is_some_and(|(at, _)| *at == modified);
        if !fresh {
            let list: Vec<StorageContainer> = read_json(&path)?;
            let by_id = list
                .into_iter()
                .map(|c| {
                    let meta: StorageMetadata =
                        serde_json::from_str(&c.metadata).unwrap_or_default();
                    let image = meta
                        .image_name
                        .filter(|n| !n.is_empty())
                        .or_else(|| (!c.image.is_empty()).then_some(c.image));
                    let described = Described {
                        name: c.names.into_iter().next().or(meta.name),
                        image,
                        ..Described::default()
                    };
                    (c.id, described)
                })
                .collect();
            self.storage = Some((modified, by_id));
        }
        let mut described = self.storage.as_ref()?.1.get(id)?.clone();
        let spec: Option<OciSpec> = read_json(
            &self
                .root
                .join(STORAGE_GRAPH)
                .join("overlay-containers")
                .join(id)
                .join("userdata/config.json"),
        );
        described.privileged = spec
            .and_then(|s| {
                s.annotations
                    .get("io.podman.annotations.privileged")
                    .cloned()
            })
            .map(|v| v.eq_ignore_ascii_case("true"));
        Some(described)
    }

    /// docker: `config.v2.json` and `hostconfig.json` of the container.
    fn docker(&self, id: &str) -> Option<Described> {
        let dir = self.root.join(DOCKER_CONTAINERS).join(id);
        let config: DockerConfig = read_json(&dir.join("config.v2.json"))?;
        let host: Option<DockerHostConfig> = read_json(&dir.join("hostconfig.json"));
        let image = if config.config.image.is_empty() {
            config.image
        } else {
            config.config.image
        };
        Some(Described {
            name: non_empty(config.name.trim_start_matches('/')),
            image: non_empty(&image),
            privileged: host.map(|h| h.privileged),
            ..Described::default()
        })
    }

    /// containerd: the task's OCI spec, with the CRI plugin's annotations (or nerdctl's name).
    fn containerd(&self, id: &str) -> Option<Described> {
        let tasks = self.root.join(CONTAINERD_TASKS);
        let spec = fs::read_dir(&tasks)
            .ok()?
            .flatten()
            .take(64)
            .find_map(|ns| read_json::<OciSpec>(&ns.path().join(id).join("config.json")))?;
        let a = |key: &str| spec.annotations.get(key).and_then(|v| non_empty(v));
        Some(Described {
            name: a("io.kubernetes.cri.container-name").or_else(|| a("nerdctl/name")),
            image: a("io.kubernetes.cri.image-name"),
            pod_name: a("io.kubernetes.cri.sandbox-name"),
            pod_namespace: a("io.kubernetes.cri.sandbox-namespace"),
            privileged: None,
        })
    }

    /// CRI-O: the container's OCI spec in containers/storage, with CRI-O's annotations.
    fn crio(&self, id: &str) -> Option<Described> {
        let spec = [STORAGE_RUN, STORAGE_GRAPH].into_iter().find_map(|base| {
            read_json::<OciSpec>(
                &self
                    .root
                    .join(base)
                    .join("overlay-containers")
                    .join(id)
                    .join("userdata/config.json"),
            )
        })?;
        let a = |key: &str| spec.annotations.get(key).and_then(|v| non_empty(v));
        // podman writes its specs there too, without these annotations.
        let name = a("io.kubernetes.container.name")?;
        Some(Described {
            name: Some(name),
            image: a("io.kubernetes.cri-o.ImageName"),
            pod_name: a("io.kubernetes.pod.name"),
            pod_namespace: a("io.kubernetes.pod.namespace"),
            privileged: None,
        })
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Resolves cgroup ids to container context.
pub struct ContainerResolver {
    root: Option<PathBuf>,
    proc_root: PathBuf,
    paths: HashMap<u64, String>,
    /// Cgroups the kernel reported as made (`cgroup_mkdir`), oldest first: known even once
    /// removed, which a scan cannot see. At most [`MADE_CGROUPS`]; ids are never reused.
    made: HashMap<u64, String>,
    made_order: VecDeque<u64>,
    by_cgroup: HashMap<u64, Option<Container>>,
    by_pid_ns: HashMap<u32, Option<Container>>,
    /// When the last scan started, boot-time ns.
    last_scan_ns: u64,
    state: RuntimeState,
    /// Runtime state by container id: found, or not (yet) and when to look again.
    described: HashMap<String, Lookup>,
    /// State reads in the current second: `(second, reads)`.
    reads: (u64, u32),
    /// The host's pid and mount namespaces (those of pid 1).
    pub host_pid_ns: Option<u32>,
    /// See `host_pid_ns`.
    pub host_mnt_ns: Option<u32>,
    /// The host's root directory as `(st_dev, st_ino)`: init's, else the agent's own.
    host_root: Option<(u64, u64)>,
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
        let host_root = ["1", "self"]
            .into_iter()
            .find_map(|pid| fs::metadata(proc_root.join(pid).join("root")).ok())
            .map(|m| (m.dev(), m.ino()));
        Self {
            root,
            paths: HashMap::new(),
            made: HashMap::new(),
            made_order: VecDeque::new(),
            by_cgroup: HashMap::new(),
            by_pid_ns: HashMap::new(),
            last_scan_ns: 0,
            state: RuntimeState::new(RuntimeState::host_root(&proc_root)),
            described: HashMap::new(),
            reads: (0, 0),
            proc_root,
            host_pid_ns,
            host_mnt_ns,
            host_root,
            max_entries: 65_536,
        }
    }

    /// Reads the runtimes' state under `root` in place of the host root found from `/proc`.
    pub fn with_state_root(mut self, root: PathBuf) -> Self {
        self.state = RuntimeState::new(root);
        self
    }

    /// The host's namespaces a successful `setns` joined: the namespace's inode (`inode`) is
    /// the host's mount or pid namespace; for a pidfd (`fd_name` says `pidfd`: it names a
    /// process, not a namespace), the mount namespace asked for (`asked`) and the caller's
    /// mount namespace after the call being the host's. The pid namespace counts only for a
    /// caller whose own (`pid_ns`, which setns does not change) is not the host's already. A
    /// runtime that has not entered a container's mount namespace yet is still in the host's
    /// while it joins the container's others: the namespace joined decides, never the mount
    /// namespace the caller happens to be in.
    pub fn host_namespaces_joined(
        &self,
        inode: Option<u64>,
        fd_name: Option<&str>,
        asked: &[&str],
        mnt_ns_after: u32,
        pid_ns: u32,
    ) -> Vec<&'static str> {
        let is = |ns: Option<u32>| ns.is_some_and(|ns| inode == Some(u64::from(ns)));
        let pidfd = fd_name.is_some_and(|n| n.contains("pidfd"));
        let mut joined = Vec::new();
        if is(self.host_mnt_ns)
            || (pidfd && asked.contains(&"mnt") && Some(mnt_ns_after) == self.host_mnt_ns)
        {
            joined.push("mnt");
        }
        if is(self.host_pid_ns) && Some(pid_ns) != self.host_pid_ns {
            joined.push("pid");
        }
        joined
    }

    /// Whether process `pid`, in a mount namespace other than the host's (`mnt_ns`), has the
    /// host's root directory for its own: a container process that `chroot`ed into the host's
    /// filesystem mounted inside it (`-v /:/host`, then `chroot /host sh`). `root` is the
    /// root directory the exec record carries (`(device, inode)`, read by the kernel at exec:
    /// no race with the process's exit); without it (a kernel whose BTF lacks an offset),
    /// `/proc/<pid>/root` while the process runs. Never from a command line. Only for a
    /// program on the host root's filesystem (`exe_dev`, the device of the file the kernel
    /// ran): a container's own programs lie on its image's. Runtimes exec their `init` in the
    /// host's mount namespace, before they enter the container's, so they never count.
    pub fn runs_in_host_root(
        &self,
        pid: u32,
        mnt_ns: u32,
        exe_dev: u64,
        root: Option<(u64, u64)>,
    ) -> bool {
        let Some(host_root) = self.host_root else {
            return false;
        };
        if exe_dev != host_root.0 || Some(mnt_ns) == self.host_mnt_ns {
            return false;
        }
        match root {
            Some(root) => root == host_root,
            None => fs::metadata(self.proc_root.join(pid.to_string()).join("root"))
                .is_ok_and(|m| (m.dev(), m.ino()) == host_root),
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
        if let Some(path) = self
            .paths
            .get(&cgroup_id)
            .or_else(|| self.made.get(&cgroup_id))
        {
            return Some(path.clone());
        }
        if self.last_scan_ns <= seen_ns {
            self.rescan();
        }
        self.paths.get(&cgroup_id).cloned()
    }

    /// A cgroup the kernel made (`cgroup_mkdir` in the unified hierarchy), with its path from
    /// the hierarchy's root. Kept after the cgroup is gone, so that the records of a container
    /// that ran for a moment, read once it was removed, still name it.
    pub fn on_cgroup_made(&mut self, cgroup_id: u64, path: String) {
        if self.made.insert(cgroup_id, path).is_none() {
            self.made_order.push_back(cgroup_id);
        }
        while self.made_order.len() > MADE_CGROUPS {
            if let Some(old) = self.made_order.pop_front() {
                self.made.remove(&old);
            }
        }
    }

    /// The processes still in cgroup `cgroup_id` (its `cgroup.procs`, the first 64 KiB), in the
    /// kernel's numbering as the resolver's hierarchy shows it; empty when the cgroup is gone.
    pub fn cgroup_procs(&mut self, cgroup_id: u64, seen_ns: u64) -> Vec<u32> {
        use std::io::Read;
        let (Some(rel), Some(root)) = (self.cgroup_path(cgroup_id, seen_ns), self.root.clone())
        else {
            return Vec::new();
        };
        let mut text = String::new();
        let read = fs::File::open(root.join(rel.trim_start_matches('/')).join("cgroup.procs"))
            .and_then(|f| f.take(64 * 1024).read_to_string(&mut text));
        if read.is_err() {
            return Vec::new();
        }
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
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
        let found = self.container_of(cgroup_id, seen_ns, pid, pid_ns, host_namespaces)?;
        Some(self.describe(found, seen_ns))
    }

    fn container_of(
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

    /// Adds the runtime's description to `c`: from the cache, else read from the runtime's
    /// state, within [`STATE_READS_PER_SECOND`]. A container whose state is not there yet (it
    /// is starting) is looked at again after [`RETRY_NS`], [`STATE_TRIES`] times in all.
    fn describe(&mut self, mut c: Container, seen_ns: u64) -> Container {
        let tries = match self.described.get(&c.id) {
            Some(Lookup::Found(d)) => {
                c.described = Some(d.clone());
                return c;
            }
            Some(Lookup::Missing { tries, retry_ns }) => {
                if *tries >= STATE_TRIES || seen_ns < *retry_ns {
                    return c;
                }
                *tries
            }
            None => 0,
        };
        let second = seen_ns / 1_000_000_000;
        if self.reads.0 != second {
            self.reads = (second, 0);
        }
        if self.reads.1 >= STATE_READS_PER_SECOND {
            return c;
        }
        self.reads.1 += 1;
        if self.described.len() >= self.max_entries {
            self.described.clear();
        }
        let entry = match self.state.describe(&c.id, c.runtime) {
            Some(d) => {
                let d = Arc::new(d);
                c.described = Some(d.clone());
                Lookup::Found(d)
            }
            None => Lookup::Missing {
                tries: tries + 1,
                retry_ns: seen_ns.saturating_add(RETRY_NS),
            },
        };
        self.described.insert(c.id.clone(), entry);
        c
    }
}

/// Cgroups kept from the kernel's reports of them being made: one is needed for as long as the
/// records of its processes can wait in the ring, and a node makes far fewer than this in that
/// time. Cgroup ids (kernfs node ids) are never reused, so an old entry is never wrong, only
/// unused.
pub const MADE_CGROUPS: usize = 16_384;
/// Runtime state reads a second at most, over all containers.
pub const STATE_READS_PER_SECOND: u32 = 32;
/// Reads of one container's state at most while it is not there.
pub const STATE_TRIES: u32 = 3;
/// Time between them.
pub const RETRY_NS: u64 = 500_000_000;

/// A container's runtime state, as far as it was read.
enum Lookup {
    Found(Arc<Described>),
    Missing { tries: u32, retry_ns: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1d0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";

    /// Path shapes as each runtime makes them, with the systemd and the cgroupfs cgroup driver,
    /// in a pure v2 hierarchy (`0::<path>` of `/proc/<pid>/cgroup`) and in the v1 hierarchies of a
    /// hybrid host (`4:memory:<path>`; the same path the v2 `unified` one shows where the
    /// runtime uses it, as on this test VM).
    #[test]
    fn runtimes_are_read_from_their_cgroup_names() {
        let pod = "1a2b3c4d-1111-2222-3333-444455556666";
        let pod_ = pod.replace('-', "_");
        let cases = [
            // docker: systemd driver, cgroupfs driver, rootless.
            (
                format!("/system.slice/docker-{ID}.scope"),
                Runtime::Docker,
                None,
            ),
            (format!("/docker/{ID}"), Runtime::Docker, None),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/docker-{ID}.scope"),
                Runtime::Docker,
                None,
            ),
            // containerd's CRI: systemd driver (each QoS class), cgroupfs driver.
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_}.slice/cri-containerd-{ID}.scope"
                ),
                Runtime::Containerd,
                Some(pod),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{pod_}.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
                Some(pod),
            ),
            (
                format!("/kubepods/besteffort/pod{pod}/{ID}"),
                Runtime::Containerd,
                Some(pod),
            ),
            (
                format!("/kubepods/pod{pod}/{ID}"),
                Runtime::Containerd,
                Some(pod),
            ),
            // kind and other nested nodes put the kubelet's tree under their own.
            (
                format!(
                    "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{pod_}.slice/cri-containerd-{ID}.scope"
                ),
                Runtime::Containerd,
                Some(pod),
            ),
            // CRI-O: systemd driver, cgroupfs driver.
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod_}.slice/crio-{ID}.scope"
                ),
                Runtime::Crio,
                Some(pod),
            ),
            (
                format!("/kubepods/burstable/pod{pod}/crio-{ID}"),
                Runtime::Crio,
                Some(pod),
            ),
            (
                format!("/system.slice/crio-{ID}.scope"),
                Runtime::Crio,
                None,
            ),
            // podman: systemd driver (alone, in a pod, with the `container` leaf of a split
            // cgroup), cgroupfs driver (this VM: `/libpod_parent/libpod-<id>`).
            (
                format!("/machine.slice/libpod-{ID}.scope"),
                Runtime::Podman,
                None,
            ),
            (
                format!(
                    "/machine.slice/machine-libpod_pod_{}.slice/libpod-{ID}.scope",
                    &ID[..32]
                ),
                Runtime::Podman,
                None,
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                Runtime::Podman,
                None,
            ),
            (format!("/libpod_parent/libpod-{ID}"), Runtime::Podman, None),
        ];
        for (path, runtime, pod) in cases {
            let c = parse_cgroup_path(&path).unwrap_or_else(|| panic!("no container in {path}"));
            assert_eq!(c.id, ID, "{path}");
            assert_eq!(c.runtime, runtime, "{path}");
            assert_eq!(c.pod_uid.as_deref(), pod, "{path}");
            // The same path read out of `/proc/<pid>/cgroup` on a pure v2 and a hybrid host.
            for line in [format!("0::{path}"), format!("4:memory:{path}")] {
                let from_line = line.splitn(3, ':').nth(2).and_then(parse_cgroup_path);
                assert_eq!(from_line.map(|c| c.id), Some(ID.to_owned()), "{line}");
            }
        }
    }

    #[test]
    fn host_cgroups_and_runtime_monitors_are_not_containers() {
        for path in [
            "/".to_owned(),
            "/system.slice/ssh.service".to_owned(),
            "/user.slice/user-1000.slice/session-3.scope".to_owned(),
            "/docker/short".to_owned(),
            // conmon, the runtimes' monitor process, runs beside the container, on the host.
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/kubepods.slice/kubepods-pod1a2b_1111.slice/crio-conmon-{ID}.scope"),
            "/libpod_parent/conmon".to_owned(),
            "/system.slice/containerd.service".to_owned(),
            "/kubepods.slice/kubepods-besteffort.slice".to_owned(),
        ] {
            assert_eq!(parse_cgroup_path(&path), None, "{path}");
        }
    }

    /// A host root with each runtime's state files, shaped as the runtimes write them.
    fn state_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        // podman 4: containers/storage's list, and the container's OCI spec.
        let metadata = serde_json::json!({
            "image-name": "localhost/shop/web:1.2",
            "image-id": "50877b459e19",
            "name": "web",
            "created-at": 1_796_431_275
        })
        .to_string();
        write(
            "var/lib/containers/storage/overlay-containers/containers.json",
            &serde_json::json!([{
                "id": ID,
                "names": ["web"],
                "image": "50877b459e19636af4e42325b9c62a58f124df31d6371b74b00c39a1d2232f0b",
                "layer": "3dc0ed70",
                "metadata": metadata,
                "created": "2026-12-05T00:41:15.997758916Z",
                "flags": {"MountLabel": "", "ProcessLabel": ""}
            }])
            .to_string(),
        );
        write(
            &format!("var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
            r#"{"ociVersion":"1.0.2-dev","annotations":{"io.container.manager":"libpod","io.podman.annotations.privileged":"TRUE"}}"#,
        );
        // docker 24.
        write(
            &format!("var/lib/docker/containers/{DOCKER}/config.v2.json"),
            &serde_json::json!({
                "ID": DOCKER,
                "Name": "/db",
                "Image": "sha256:0c629ce1300a",
                "Config": {"Image": "postgres:16", "Hostname": "4f1d"},
                "State": {"Running": true, "Pid": 4242}
            })
            .to_string(),
        );
        write(
            &format!("var/lib/docker/containers/{DOCKER}/hostconfig.json"),
            r#"{"Privileged":false,"NetworkMode":"bridge"}"#,
        );
        // containerd 1.7 with the CRI plugin.
        write(
            &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{CRI}/config.json"),
            &serde_json::json!({
                "ociVersion": "1.1.0",
                "annotations": {
                    "io.kubernetes.cri.container-type": "container",
                    "io.kubernetes.cri.container-name": "api",
                    "io.kubernetes.cri.image-name": "registry.example/shop/api:3",
                    "io.kubernetes.cri.sandbox-id": "aa",
                    "io.kubernetes.cri.sandbox-name": "api-7d4b9c-xk2p",
                    "io.kubernetes.cri.sandbox-namespace": "shop",
                    "io.kubernetes.cri.sandbox-uid": "1a2b3c4d-1111-2222-3333-444455556666"
                }
            })
            .to_string(),
        );
        // CRI-O 1.28.
        write(
            &format!("run/containers/storage/overlay-containers/{CRIO}/userdata/config.json"),
            &serde_json::json!({
                "ociVersion": "1.0.2-dev",
                "annotations": {
                    "io.kubernetes.container.name": "worker",
                    "io.kubernetes.cri-o.ImageName": "quay.io/shop/worker:5",
                    "io.kubernetes.cri-o.ContainerType": "container",
                    "io.kubernetes.pod.name": "worker-0",
                    "io.kubernetes.pod.namespace": "jobs"
                }
            })
            .to_string(),
        );
        root
    }

    const DOCKER: &str = "d0c0000000000000000000000000000000000000000000000000000000000001";
    const CRI: &str = "c0c0000000000000000000000000000000000000000000000000000000000002";
    const CRIO: &str = "c0d0000000000000000000000000000000000000000000000000000000000003";

    #[test]
    fn names_and_images_are_read_from_each_runtimes_state() {
        let root = state_root();
        let mut state = RuntimeState::new(root.path().to_owned());
        let s = |v: &str| Some(v.to_owned());
        let cases = [
            (
                ID,
                Runtime::Podman,
                Described {
                    name: s("web"),
                    image: s("localhost/shop/web:1.2"),
                    privileged: Some(true),
                    ..Described::default()
                },
            ),
            (
                DOCKER,
                Runtime::Docker,
                Described {
                    name: s("db"),
                    image: s("postgres:16"),
                    privileged: Some(false),
                    ..Described::default()
                },
            ),
            (
                CRI,
                Runtime::Containerd,
                Described {
                    name: s("api"),
                    image: s("registry.example/shop/api:3"),
                    pod_name: s("api-7d4b9c-xk2p"),
                    pod_namespace: s("shop"),
                    privileged: None,
                },
            ),
            (
                CRIO,
                Runtime::Crio,
                Described {
                    name: s("worker"),
                    image: s("quay.io/shop/worker:5"),
                    pod_name: s("worker-0"),
                    pod_namespace: s("jobs"),
                    privileged: None,
                },
            ),
            // A bare id under kubepods is classified containerd's; CRI-O's state is read too.
            (
                CRIO,
                Runtime::Containerd,
                Described {
                    name: s("worker"),
                    image: s("quay.io/shop/worker:5"),
                    pod_name: s("worker-0"),
                    pod_namespace: s("jobs"),
                    privileged: None,
                },
            ),
        ];
        for (id, runtime, want) in cases {
            assert_eq!(state.describe(id, runtime), Some(want), "{runtime:?} {id}");
        }
        // Unknown ids, and a podman spec (no CRI-O annotations) read as CRI-O's: nothing.
        assert_eq!(state.describe(&"e".repeat(64), Runtime::Docker), None);
        assert_eq!(state.describe(&"e".repeat(64), Runtime::Podman), None);
        assert_eq!(state.describe(ID, Runtime::Crio), None);
        // Nothing at all under an empty root.
        let empty = tempfile::tempdir().unwrap();
        let mut none = RuntimeState::new(empty.path().to_owned());
        for runtime in [
            Runtime::Podman,
            Runtime::Docker,
            Runtime::Containerd,
            Runtime::Crio,
        ] {
            assert_eq!(none.describe(ID, runtime), None);
        }
    }

    #[test]
    fn unreadable_state_is_no_description_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(DOCKER_CONTAINERS).join(DOCKER);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.v2.json"), "{not json").unwrap();
        let list = root.path().join(STORAGE_GRAPH).join("overlay-containers");
        fs::create_dir_all(&list).unwrap();
        fs::write(list.join("containers.json"), r#"{"not": "a list"}"#).unwrap();
        let mut state = RuntimeState::new(root.path().to_owned());
        assert_eq!(state.describe(DOCKER, Runtime::Docker), None);
        assert_eq!(state.describe(ID, Runtime::Podman), None);
    }

    #[test]
    fn state_is_read_once_per_container_and_retried_while_it_is_missing() {
        let root = state_root();
        let cgroups = tempfile::tempdir().unwrap();
        let dir = cgroups
            .path()
            .join(format!("machine.slice/libpod-{ID}.scope"));
        fs::create_dir_all(&dir).unwrap();
        let cgroup_id = fs::metadata(&dir).unwrap().ino();
        let mut resolver =
            ContainerResolver::new(Some(cgroups.path().to_owned()), PathBuf::from("/proc"))
                .with_state_root(root.path().to_owned());
        let t = boot_ns();
        let c = resolver
            .container(cgroup_id, t, 1, 0, false)
            .expect("a podman container");
        assert_eq!(c.described.as_ref().unwrap().name.as_deref(), Some("web"));
        // Cached: the state may go (the container was removed) and the name stays.
        fs::remove_dir_all(root.path().join(STORAGE_GRAPH)).unwrap();
        let c = resolver.container(cgroup_id, t + 1, 1, 0, false).unwrap();
        assert_eq!(
            c.described.as_ref().unwrap().image.as_deref(),
            Some("localhost/shop/web:1.2")
        );

        // A container whose state is not written yet: looked at again after RETRY_NS, and
        // not before, STATE_TRIES times at most.
        let dir = cgroups
            .path()
            .join(format!("system.slice/docker-{DOCKER}.scope"));
        fs::create_dir_all(&dir).unwrap();
        let docker_id = fs::metadata(&dir).unwrap().ino();
        let docker_state = root.path().join(DOCKER_CONTAINERS);
        fs::rename(&docker_state, root.path().join("docker-later")).unwrap();
        let t = boot_ns();
        let c = resolver.container(docker_id, t, 1, 0, false).unwrap();
        assert_eq!(c.described, None);
        fs::rename(root.path().join("docker-later"), &docker_state).unwrap();
        let c = resolver
            .container(docker_id, t + RETRY_NS - 1, 1, 0, false)
            .unwrap();
        assert_eq!(c.described, None, "not looked at again before RETRY_NS");
        let c = resolver
            .container(docker_id, t + RETRY_NS, 1, 0, false)
            .unwrap();
        assert_eq!(c.described.unwrap().name.as_deref(), Some("db"));
    }

    #[test]
    fn state_reads_are_budgeted_per_second() {
        let cgroups = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        let mut resolver =
            ContainerResolver::new(Some(cgroups.path().to_owned()), PathBuf::from("/proc"))
                .with_state_root(empty.path().to_owned());
        let t = boot_ns() / 1_000_000_000 * 1_000_000_000;
        let mut ids = Vec::new();
        for n in 0..STATE_READS_PER_SECOND + 8 {
            let dir = cgroups.path().join(format!("docker/{n:064x}"));
            fs::create_dir_all(&dir).unwrap();
            ids.push(fs::metadata(&dir).unwrap().ino());
        }
        for &id in &ids {
            assert!(resolver.container(id, t, 1, 0, false).is_some());
        }
        assert_eq!(resolver.reads, (t / 1_000_000_000, STATE_READS_PER_SECOND));
        assert_eq!(resolver.described.len(), STATE_READS_PER_SECOND as usize);
        // The next second, the rest are read.
        for &id in &ids[STATE_READS_PER_SECOND as usize..] {
            resolver.container(id, t + 1_000_000_000, 1, 0, false);
        }
        assert_eq!(resolver.described.len(), ids.len());
    }

    #[test]
    fn image_prefix_drops_tag_and_digest() {
        let table = [
            ("nginx", "nginx"),
            ("nginx:1.25", "nginx"),
            ("registry.example/shop/web:1.2", "registry.example/shop/web"),
            ("registry:5000/app", "registry:5000/app"),
            ("registry:5000/app:1", "registry:5000/app"),
            ("repo/app@sha256:abcd", "repo/app"),
            ("repo/app:1@sha256:abcd", "repo/app"),
        ];
        for (image, want) in table {
            assert_eq!(image_prefix(image), want, "{image}");
        }
    }

    #[test]
    fn a_container_process_runs_in_the_host_root_only_when_its_root_is_the_host_s() {
        // A /proc of links: init's root and a chrooted process's lead to the same directory,
        // another process's to a directory of its own (a container's image).
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (host, image) = (dir.join("host"), dir.join("image"));
        for d in [&host, &image] {
            fs::create_dir_all(d).unwrap();
        }
        for (pid, root) in [("1", &host), ("42", &host), ("43", &image)] {
            fs::create_dir_all(dir.join("proc").join(pid).join("ns")).unwrap();
            std::os::unix::fs::symlink(root, dir.join("proc").join(pid).join("root")).unwrap();
        }
        std::os::unix::fs::symlink("mnt:[4026531841]", dir.join("proc/1/ns/mnt")).unwrap();
        let r = ContainerResolver::new(None, dir.join("proc"));
        let host_dev = fs::metadata(&host).unwrap().dev();
        let container_mnt = 4026532500;
        assert!(r.runs_in_host_root(42, container_mnt, host_dev, None));
        // Its root is its own; the program is not on the host root's device (no stat made);
        // the host's mount namespace (a runtime's `init` before it enters the container's);
        // a process gone.
        assert!(!r.runs_in_host_root(43, container_mnt, host_dev, None));
        assert!(!r.runs_in_host_root(42, container_mnt, host_dev + 1, None));
        assert!(!r.runs_in_host_root(42, 4026531841, host_dev, None));
        assert!(!r.runs_in_host_root(44, container_mnt, host_dev, None));
        // The root the exec record carries decides, with no stat: a process gone (44) whose
        // record says the host's root counts; one whose record says another root does not,
        // whatever its /proc link says now.
        let host_ino = fs::metadata(&host).unwrap().ino();
        assert!(r.runs_in_host_root(44, container_mnt, host_dev, Some((host_dev, host_ino))));
        assert!(!r.runs_in_host_root(42, container_mnt, host_dev, Some((host_dev, host_ino + 1))));
        // Without a readable host root, never.
        let blind = ContainerResolver::new(None, PathBuf::from("/nonexistent"));
        assert!(!blind.runs_in_host_root(42, container_mnt, host_dev, None));
    }

    #[test]
    fn setns_into_the_host_namespaces_is_named_by_inode_or_by_the_mount_namespace_after() {
        let mut r = ContainerResolver::new(None, PathBuf::from("/nonexistent"));
        r.host_mnt_ns = Some(4026531841);
        r.host_pid_ns = Some(4026531836);
        let container_mnt = 4026532500;
        let container_pid = 4026532501;
        let file = Some("mnt:[4026531841]");
        // nsenter --mount=/proc/1/ns/mnt: the host's mount namespace's inode.
        assert_eq!(
            r.host_namespaces_joined(Some(4026531841), file, &[], 4026531841, container_pid),
            ["mnt"]
        );
        // A pidfd asking for the mount namespace: no namespace inode, the mount namespace
        // after the call says it.
        assert_eq!(
            r.host_namespaces_joined(
                Some(77),
                Some("anon_inode:[pidfd]"),
                &["mnt", "pid"],
                4026531841,
                container_pid
            ),
            ["mnt"]
        );
        // A runtime still in the host's mount namespace joining the container's network
        // namespace (runc init of `podman exec`): nothing.
        assert!(
            r.host_namespaces_joined(
                Some(4026532600),
                Some("net:[4026532600]"),
                &["net"],
                4026531841,
                container_pid
            )
            .is_empty()
        );
        // The host's pid namespace from a container of its own pid namespace.
        assert_eq!(
            r.host_namespaces_joined(Some(4026531836), None, &[], container_mnt, container_pid),
            ["pid"]
        );
        // ... but not for a container that shares the host's pid namespace already.
        assert!(
            r.host_namespaces_joined(Some(4026531836), None, &[], container_mnt, 4026531836)
                .is_empty()
        );
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

    #[test]
    fn a_cgroup_reported_as_made_is_known_after_it_is_gone_and_the_oldest_are_let_go() {
        // A hierarchy that never held the cgroup (it came and went before any scan).
        let cgroups = tempfile::tempdir().unwrap();
        let mut resolver =
            ContainerResolver::new(Some(cgroups.path().to_owned()), PathBuf::from("/proc"));
        let t = boot_ns();
        assert!(resolver.container(7, t, 1, 0, true).is_none(), "unknown");
        // The kernel's report comes before the records of the processes in it.
        resolver.on_cgroup_made(7, format!("/libpod_parent/libpod-{ID}"));
        let c = resolver
            .container(7, t, 1, 0, true)
            .expect("a podman container");
        assert_eq!((c.id.as_str(), c.runtime), (ID, Runtime::Podman));
        // A pod's container, its path sent in two parts and joined.
        let pod = "kubepods-besteffort-pod0f8e7d6c_5b4a_3928_1706_f5e4d3c2b1a0.slice";
        resolver.on_cgroup_made(
            8,
            format!("/kubepods.slice/kubepods-besteffort.slice/{pod}/cri-containerd-{ID}.scope"),
        );
        let c = resolver
            .container(8, t, 1, 0, true)
            .expect("a pod's container");
        assert_eq!(c.runtime, Runtime::Containerd);
        assert_eq!(
            c.pod_uid.as_deref(),
            Some("0f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0")
        );
        // Bounded: the oldest reports are let go first.
        for id in 100..100 + MADE_CGROUPS as u64 {
            resolver.on_cgroup_made(id, format!("/system.slice/docker-{DOCKER}.scope"));
        }
        assert!(resolver.made.len() <= MADE_CGROUPS);
        assert_eq!(resolver.cgroup_path(8, 0), None, "let go");
        assert!(
            resolver
                .cgroup_path(100 + MADE_CGROUPS as u64 - 1, 0)
                .is_some()
        );
    }
}
