//! The pods of this node, so findings carry their pod, workload and container context.
//!
//! [`PodIndex`] keeps, per pod, only what a finding needs (name, namespace, uid, labels, service
//! account, host namespaces, hostPath volumes, owner workload, and per container its name, image
//! and security flags), and maps the runtime container ids of the pod status to them. Deleted
//! pods stay as tombstones for a while, because the sensor's events about a container's last
//! moments arrive after the API server has forgotten the pod.
//!
//! [`enrich_resource`] is the pure lookup the detector's findings go through; [`watch_pods`] is
//! the edge that keeps the index current from the API server.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    pin::pin,
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use k8s_openapi::{
    api::core::v1::{ContainerStatus, Pod, SecurityContext},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt as _, watcher},
};
use tracing::{debug, info, warn};
use vigil_crds::finding::{PodDetails, Resource, WorkloadDetails};

use crate::container::image_prefix;

/// Tombstones kept at most, whatever the retention: a node that churns through short-lived pods
/// (CronJobs, CI runners) must not grow the index without bound. The oldest go first.
pub const MAX_TOMBSTONES: usize = 1024;

/// How often [`watch_pods`] drops expired tombstones when no pod event arrives to do it.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);

/// The label the Deployment controller puts on a ReplicaSet's pods; the ReplicaSet's name is
/// `<deployment>-<value>`.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The annotation of a static pod's mirror: its value is the uid the kubelet (and so the cgroup
/// path) uses for the pod, which differs from the mirror object's `metadata.uid`.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Container ids of this node's pods -> pod and container; pod uid -> pod.
#[derive(Debug)]
pub struct PodIndex {
    retain_deleted: Duration,
    /// Pod uid -> pod, live or tombstoned.
    pods: HashMap<String, PodEntry>,
    /// Runtime container id (lower-case, without the `containerd://` scheme) -> container.
    containers: HashMap<String, ContainerRef>,
    /// Static pod uid (as in the cgroup path) -> mirror pod uid.
    aliases: HashMap<String, String>,
    /// Deleted pods, oldest first: (when, uid).
    tombstones: VecDeque<(Instant, String)>,
    /// Whether a full list has been applied.
    synced: bool,
}

/// What the index keeps of one pod.
#[derive(Clone, Debug, PartialEq)]
struct PodEntry {
    details: PodDetails,
    containers: Vec<ContainerSpec>,
    /// The runtime ids this pod has in `PodIndex::containers`.
    ids: Vec<String>,
    /// The static pod uid, for a mirror pod.
    alias: Option<String>,
    deleted_at: Option<Instant>,
}

/// What the index keeps of one container of a pod spec (regular, init or ephemeral).
#[derive(Clone, Debug, PartialEq)]
struct ContainerSpec {
    name: String,
    /// The spec's image, or the status' when the spec has none.
    image: Option<String>,
    privileged: Option<bool>,
    allow_privilege_escalation: Option<bool>,
}

/// One runtime container id's owner.
#[derive(Clone, Debug, PartialEq)]
struct ContainerRef {
    pod_uid: String,
    name: String,
    image_id: Option<String>,
    /// `containerd`, `docker`, `cri-o`: the scheme of the status' container id.
    runtime: String,
}

impl PodIndex {
    /// An empty index that keeps deleted pods for `retain_deleted` (and at most
    /// [`MAX_TOMBSTONES`] of them).
    pub fn new(retain_deleted: Duration) -> Self {
        Self {
            retain_deleted,
            pods: HashMap::new(),
            containers: HashMap::new(),
            aliases: HashMap::new(),
            tombstones: VecDeque::new(),
            synced: false,
        }
    }

    /// Adds or updates a pod (an ADDED or MODIFIED watch event). A pod without a uid is
    /// ignored (the API server always sets one). Container ids the pod status no longer reports
    /// are forgotten.
    pub fn apply(&mut self, pod: &Pod, now: Instant) {
        self.expire(now);
        let Some(entry) = pod_entry(pod) else {
            debug!(pod = ?pod.metadata.name, "pod without uid ignored");
            return;
        };
        let uid = entry.details.uid.clone().unwrap_or_default();
        let refs = container_refs(pod, &uid);
        self.remove(&uid);
        let mut entry = entry;
        entry.ids = refs.iter().map(|(id, _)| id.clone()).collect();
        for (id, r) in refs {
            self.containers.insert(id, r);
        }
        if let Some(alias) = &entry.alias {
            self.aliases.insert(alias.clone(), uid.clone());
        }
        self.pods.insert(uid, entry);
    }

    /// Marks a pod deleted (a DELETED watch event): it is still found for `retain_deleted`,
    /// then dropped. The pod's last state (e.g. final container statuses) is applied first.
    pub fn delete(&mut self, pod: &Pod, now: Instant) {
        let Some(uid) = uid_key(pod) else {
            return;
        };
        self.apply(pod, now);
        self.tombstone(&uid, now);
        self.expire(now);
    }

    /// Replaces the index by a full list (a relist): the listed pods are applied, the ones that
    /// vanished become tombstones.
    pub fn replace_all(&mut self, pods: Vec<Pod>, now: Instant) {
        let mut listed = HashSet::with_capacity(pods.len());
        for pod in &pods {
            self.apply(pod, now);
            listed.extend(uid_key(pod));
        }
        self.retain_listed(&listed, now);
    }

    /// Ends a relist whose pods were [`apply`](Self::apply)'d one by one: every live pod whose
    /// uid is not in `listed` (lower-case uids) becomes a tombstone.
    pub fn retain_listed(&mut self, listed: &HashSet<String>, now: Instant) {
        let vanished: Vec<String> = self
            .pods
            .iter()
            .filter(|(uid, e)| e.deleted_at.is_none() && !listed.contains(*uid))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in vanished {
            self.tombstone(&uid, now);
        }
        self.synced = true;
        self.expire(now);
    }

    /// Drops tombstones older than the retention, and the oldest beyond [`MAX_TOMBSTONES`].
    pub fn expire(&mut self, now: Instant) {
        while let Some((at, uid)) = self.tombstones.front() {
            let expired = now.saturating_duration_since(*at) > self.retain_deleted;
            if !expired && self.tombstones.len() <= MAX_TOMBSTONES {
                break;
            }
            let (at, uid) = (*at, uid.clone());
            self.tombstones.pop_front();
            // A revived pod (re-applied after its delete) or a newer delete is not this one.
            if self.pods.get(&uid).and_then(|e| e.deleted_at) == Some(at) {
                self.remove(&uid);
            }
        }
    }

    /// Pods known, tombstones included.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// Whether no pod is known.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Deleted pods still kept.
    pub fn tombstones(&self) -> usize {
        self.pods
            .values()
            .filter(|e| e.deleted_at.is_some())
            .count()
    }

    /// Runtime container ids known.
    pub fn container_ids(&self) -> usize {
        self.containers.len()
    }

    /// Whether a full list of the node's pods has been applied (enrichment before that may miss
    /// pods that exist).
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The pod of a uid, as the cgroup path names it (a static pod's uid finds its mirror).
    pub fn pod(&self, uid: &str) -> Option<&PodDetails> {
        self.entry_by_uid(uid).map(|e| &e.details)
    }

    fn entry_by_uid(&self, uid: &str) -> Option<&PodEntry> {
        let uid = uid.to_ascii_lowercase();
        self.pods
            .get(&uid)
            .or_else(|| self.aliases.get(&uid).and_then(|u| self.pods.get(u)))
    }

    fn tombstone(&mut self, uid: &str, now: Instant) {
        if let Some(entry) = self.pods.get_mut(uid)
            && entry.deleted_at.is_none()
        {
            entry.deleted_at = Some(now);
            self.tombstones.push_back((now, uid.to_owned()));
        }
    }

    /// Removes a pod and its container ids and alias.
    fn remove(&mut self, uid: &str) {
        let Some(entry) = self.pods.remove(uid) else {
            return;
        };
        for id in entry.ids {
            if self.containers.get(&id).is_some_and(|r| r.pod_uid == uid) {
                self.containers.remove(&id);
            }
        }
        if let Some(alias) = entry.alias
            && self.aliases.get(&alias).is_some_and(|u| u == uid)
        {
            self.aliases.remove(&alias);
        }
    }
}

/// Fills `resource.pod`, `resource.container` (name, image, imagePrefix, imageId, privileged,
/// allowPrivilegeEscalation) and `displayName` from the index. `resource.container.id` is the
/// runtime's 64-hex id (as from the cgroup), pod statuses say `containerd://<id>`,
/// `docker://<id>`, `cri-o://<id>`. When the container is unknown but the cgroup gave a pod
/// uid that the index knows, fill the pod at least. When nothing is known, leave what the
/// cgroup/runtime gave (id, runtime) untouched.
///
/// The container id and runtime are never overwritten (the runtime is filled from the status'
/// scheme only when the cgroup did not tell it). The container id wins over `pod_uid` when both
/// are known: ids are unique, and a static pod's cgroup uid is not its mirror's.
pub fn enrich_resource(index: &PodIndex, resource: &mut Resource, pod_uid: Option<&str>) {
    let by_id = resource
        .container
        .as_ref()
        .and_then(|c| index.containers.get(&c.id.trim().to_ascii_lowercase()))
        .and_then(|r| Some((index.pods.get(&r.pod_uid)?, r)));
    let (pod, container) = match by_id {
        Some((pod, r)) => (pod, Some(r)),
        None => match pod_uid.and_then(|uid| index.entry_by_uid(uid)) {
            Some(pod) => (pod, None),
            None => return,
        },
    };
    if let (Some(r), Some(details)) = (container, resource.container.as_mut()) {
        let spec = pod.containers.iter().find(|c| c.name == r.name);
        details.name = r.name.clone();
        details.image = spec.and_then(|s| s.image.clone());
        details.image_prefix = details.image.as_deref().map(image_prefix);
        details.image_id = r.image_id.clone();
        details.privileged = spec.and_then(|s| s.privileged);
        details.allow_privilege_escalation = spec.and_then(|s| s.allow_privilege_escalation);
        if details.container_runtime.is_none() {
            details.container_runtime = Some(r.runtime.clone());
        }
    }
    resource.pod = Some(pod.details.clone());
    resource.display_name = Resource::display_name_for(
        &resource.host,
        resource.container.as_ref(),
        resource.pod.as_ref(),
    );
}

/// Splits a pod status' container id (`containerd://<id>`, `docker://<id>`, `cri-o://<id>`)
/// into the runtime and the lower-case id; `None` when either part is empty or there is no
/// scheme.
pub fn parse_status_container_id(status_id: &str) -> Option<(&str, String)> {
    let (runtime, id) = status_id.trim().split_once("://")?;
    let id = id.trim_matches('/');
    (!runtime.is_empty() && !id.is_empty()).then(|| (runtime, id.to_ascii_lowercase()))
}

/// The workload that owns a pod, from its controller owner reference (or its first owner
/// reference when none is marked controller). A ReplicaSet named `<deployment>-<hash>`, where
/// `<hash>` is the pod's `pod-template-hash` label, is reported as its Deployment (without a
/// uid: the pod does not carry the Deployment's). A Job is reported as the Job even when a
/// CronJob created it: `<cronjob>-<n>` is a naming habit, not something the pod proves.
/// `None` for a bare pod.
pub fn workload_of(pod: &Pod) -> Option<WorkloadDetails> {
    let owners = pod.metadata.owner_references.as_deref().unwrap_or_default();
    let owner: &OwnerReference = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())?;
    if owner.kind == "ReplicaSet"
        && let Some(hash) = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH))
            .filter(|h| !h.is_empty())
        && let Some(deployment) = owner
            .name
            .strip_suffix(hash.as_str())
            .and_then(|n| n.strip_suffix('-'))
            .filter(|n| !n.is_empty())
    {
        return Some(WorkloadDetails {
            kind: "Deployment".to_owned(),
            name: deployment.to_owned(),
            uid: None,
        });
    }
    Some(WorkloadDetails {
        kind: owner.kind.clone(),
        name: owner.name.clone(),
        uid: (!owner.uid.is_empty()).then(|| owner.uid.clone()),
    })
}

/// A pod's uid as the index keys it (lower-case, like cgroup paths); `None` when it has none.
fn uid_key(pod: &Pod) -> Option<String> {
    pod.metadata
        .uid
        .as_deref()
        .map(|u| u.trim().to_ascii_lowercase())
        .filter(|u| !u.is_empty())
}

/// The pod details and container specs of a pod; `None` without a uid.
fn pod_entry(pod: &Pod) -> Option<PodEntry> {
    let meta = &pod.metadata;
    let uid = uid_key(pod)?;
    let spec = pod.spec.as_ref();
    let statuses = all_statuses(pod);
    let status_image = |name: &str| {
        statuses
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.image.clone())
            .filter(|i| !i.is_empty())
    };
    let container =
        |name: &str, image: Option<&String>, sc: Option<&SecurityContext>| ContainerSpec {
            name: name.to_owned(),
            image: image
                .filter(|i| !i.is_empty())
                .cloned()
                .or_else(|| status_image(name)),
            privileged: sc.and_then(|s| s.privileged),
            allow_privilege_escalation: sc.and_then(|s| s.allow_privilege_escalation),
        };
    let mut containers = Vec::new();
    if let Some(spec) = spec {
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
        {
            containers.push(container(
                &c.name,
                c.image.as_ref(),
                c.security_context.as_ref(),
            ));
        }
        for c in spec.ephemeral_containers.iter().flatten() {
            containers.push(container(
                &c.name,
                c.image.as_ref(),
                c.security_context.as_ref(),
            ));
        }
    }
    let details = PodDetails {
        name: meta.name.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        uid: Some(uid.clone()),
        labels: meta.labels.clone().unwrap_or_default(),
        service_account_name: spec.and_then(|s| {
            s.service_account_name
                .clone()
                .or_else(|| s.service_account.clone())
        }),
        host_network: spec.map(|s| s.host_network.unwrap_or(false)),
        host_pid: spec.map(|s| s.host_pid.unwrap_or(false)),
        host_ipc: spec.map(|s| s.host_ipc.unwrap_or(false)),
        host_path_volumes: spec
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|v| v.host_path.as_ref().map(|h| h.path.clone()))
            .collect(),
        workload: workload_of(pod),
    };
    let alias = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty() && *a != uid);
    Some(PodEntry {
        details,
        containers,
        ids: Vec::new(),
        alias,
        deleted_at: None,
    })
}

/// Init, regular and ephemeral container statuses.
fn all_statuses(pod: &Pod) -> Vec<&ContainerStatus> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .chain(status.ephemeral_container_statuses.iter().flatten())
        .collect()
}

/// The runtime ids of a pod's containers: the current instance and the last terminated one
/// (a restarted container's previous instance, whose late events still name this container).
fn container_refs(pod: &Pod, pod_uid: &str) -> Vec<(String, ContainerRef)> {
    let mut refs: Vec<(String, ContainerRef)> = Vec::new();
    for status in all_statuses(pod) {
        let image_id = Some(status.image_id.clone()).filter(|i| !i.is_empty());
        let current = status.container_id.as_deref();
        let previous = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.container_id.as_deref());
        for (status_id, is_current) in [(current, true), (previous, false)] {
            let Some((runtime, id)) = status_id.and_then(parse_status_container_id) else {
                continue;
            };
            if refs.iter().any(|(known, _)| *known == id) {
                continue;
            }
            refs.push((
                id,
                ContainerRef {
                    pod_uid: pod_uid.to_owned(),
                    name: status.name.clone(),
                    // The status' imageID is the current instance's.
                    image_id: if is_current { image_id.clone() } else { None },
                    runtime: runtime.to_owned(),
                },
            ));
        }
    }
    refs
}

/// Feeds `kube::runtime::watcher` events into a [`PodIndex`]: applies, deletes, and ends each
/// relist (`Init` .. `InitDone`) by tombstoning what was not listed. Pods listed during a relist
/// are applied at once, so enrichment does not wait for the end of a long list.
#[derive(Debug, Default)]
pub struct PodWatchApplier {
    /// Uids listed since the last `Init`, while a relist runs.
    listed: Option<HashSet<String>>,
}

impl PodWatchApplier {
    /// A fresh applier (no relist in progress).
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one watcher event to `index`.
    pub fn on_event(&mut self, index: &mut PodIndex, event: watcher::Event<Pod>, now: Instant) {
        match event {
            watcher::Event::Apply(pod) => index.apply(&pod, now),
            watcher::Event::Delete(pod) => index.delete(&pod, now),
            watcher::Event::Init => self.listed = Some(HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(listed), Some(uid)) = (self.listed.as_mut(), uid_key(&pod)) {
                    listed.insert(uid);
                }
                index.apply(&pod, now);
            }
            watcher::Event::InitDone => {
                // An InitDone without its Init (never sent by the watcher) must not tombstone
                // every pod.
                if let Some(listed) = self.listed.take() {
                    index.retain_listed(&listed, now);
                    debug!(
                        pods = listed.len(),
                        indexed = index.len(),
                        "pod index relisted"
                    );
                }
            }
        }
    }
}

/// Watches the pods of `node` (field selector spec.nodeName) with kube::runtime::watcher and
/// keeps `index` current; logs and retries on errors (watcher's default backoff); never returns
/// unless the stream ends.
pub async fn watch_pods(client: Client, node: String, index: Arc<RwLock<PodIndex>>) {
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut stream = pin!(watcher(api, config).default_backoff());
    let mut applier = PodWatchApplier::new();
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(node = %node, "watching this node's pods");
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(event)) => {
                    let mut index = index.write().unwrap_or_else(PoisonError::into_inner);
                    applier.on_event(&mut index, event, Instant::now());
                }
                Some(Err(error)) => {
                    warn!(node = %node, %error, "pod watch failed; retrying with backoff");
                }
                None => {
                    warn!(node = %node, "pod watch stream ended");
                    return;
                }
            },
            _ = expire.tick() => {
                index
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expire(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use vigil_crds::finding::{ContainerDetails, HostDetails};

    use super::*;

    const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const ID_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const ID_D: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    const ID_E: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    const UID: &str = "0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    const RETAIN: Duration = Duration::from_secs(300);

    fn pod_json(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    /// A Deployment's pod with an init container, a sidecar, an ephemeral debug container,
    /// statuses for each (one restarted), hostPath volumes and host namespaces.
    fn web_pod() -> Pod {
        pod_json(json!({
            "metadata": {
                "name": "web-7d4b9c6f5-x2x9q",
                "namespace": "shop",
                "uid": UID,
                "labels": {"app": "web", "pod-template-hash": "7d4b9c6f5"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c6f5",
                    "uid": "11111111-2222-3333-4444-555555555555", "controller": true
                }]
            },
            "spec": {
                "serviceAccountName": "web-sa",
                "hostNetwork": true,
                "hostPID": false,
                "volumes": [
                    {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}},
                    {"name": "cfg", "configMap": {"name": "web"}},
                    {"name": "logs", "hostPath": {"path": "/var/log", "type": "Directory"}}
                ],
                "initContainers": [{"name": "migrate", "image": "registry.example/shop/migrate:3"}],
                "containers": [
                    {"name": "web", "image": "registry.example/shop/web:1.2",
                     "securityContext": {"privileged": true, "allowPrivilegeEscalation": true}},
                    {"name": "proxy", "image": "envoyproxy/envoy:v1.30@sha256:abcd",
                     "securityContext": {"allowPrivilegeEscalation": false}}
                ],
                "ephemeralContainers": [{"name": "debugger", "image": "busybox"}]
            },
            "status": {
                "initContainerStatuses": [{
                    "name": "migrate", "image": "registry.example/shop/migrate:3",
                    "imageID": "registry.example/shop/migrate@sha256:1111", "ready": true,
                    "restartCount": 0, "containerID": format!("cri-o://{ID_C}")
                }],
                "containerStatuses": [
                    {"name": "web", "image": "registry.example/shop/web:1.2",
                     "imageID": "registry.example/shop/web@sha256:2222", "ready": true,
                     "restartCount": 1, "containerID": format!("containerd://{ID_A}"),
                     "lastState": {"terminated": {"exitCode": 137,
                                                  "containerID": format!("containerd://{ID_E}")}}},
                    {"name": "proxy", "image": "docker.io/envoyproxy/envoy:v1.30",
                     "imageID": "docker-pullable://envoyproxy/envoy@sha256:abcd", "ready": true,
                     "restartCount": 0, "containerID": format!("docker://{}", ID_B.to_uppercase())}
                ],
                "ephemeralContainerStatuses": [{
                    "name": "debugger", "image": "docker.io/library/busybox:latest",
                    "imageID": "", "ready": false, "restartCount": 0,
                    "containerID": format!("containerd://{ID_D}")
                }]
            }
        }))
    }

    fn bare_pod(name: &str, uid: &str, container_id: Option<&str>) -> Pod {
        let mut status = json!({});
        if let Some(id) = container_id {
            status = json!({"containerStatuses": [{
                "name": "main", "image": "alpine:3", "imageID": "alpine@sha256:33",
                "ready": true, "restartCount": 0, "containerID": format!("containerd://{id}")
            }]});
        }
        pod_json(json!({
            "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "main", "image": "alpine:3"}]},
            "status": status
        }))
    }

    /// A resource as the detector builds it from the cgroup: short id as name, runtime set.
    fn cgroup_resource(id: &str, runtime: Option<&str>) -> Resource {
        let host = HostDetails {
            hostname: "node-a".into(),
            ..Default::default()
        };
        let container = ContainerDetails {
            name: id.chars().take(12).collect(),
            id: id.to_owned(),
            container_runtime: runtime.map(str::to_owned),
            ..Default::default()
        };
        Resource {
            display_name: Resource::display_name_for(&host, Some(&container), None),
            host,
            container: Some(container),
            pod: None,
        }
    }

    fn index_with(pods: &[Pod], now: Instant) -> PodIndex {
        let mut index = PodIndex::new(RETAIN);
        for p in pods {
            index.apply(p, now);
        }
        index
    }

    fn owners(kind: &str, name: &str, labels: Value) -> Pod {
        pod_json(json!({
            "metadata": {
                "name": "p", "namespace": "ns", "uid": UID, "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name,
                                     "uid": "owner-uid", "controller": true}]
            }
        }))
    }

    fn workload(kind: &str, name: &str, uid: Option<&str>) -> Option<WorkloadDetails> {
        Some(WorkloadDetails {
            kind: kind.into(),
            name: name.into(),
            uid: uid.map(str::to_owned),
        })
    }

    #[test]
    fn workload_mapping_table() {
        let hash = json!({"pod-template-hash": "7d4b9c6f5"});
        let table: Vec<(&str, Pod, Option<WorkloadDetails>)> = vec![
            (
                "ReplicaSet of a Deployment",
                owners("ReplicaSet", "web-7d4b9c6f5", hash.clone()),
                workload("Deployment", "web", None),
            ),
            (
                "Deployment name with dashes",
                owners("ReplicaSet", "shop-web-api-7d4b9c6f5", hash.clone()),
                workload("Deployment", "shop-web-api", None),
            ),
            (
                "bare ReplicaSet (no pod-template-hash)",
                owners("ReplicaSet", "web-7d4b9c6f5", json!({"app": "web"})),
                workload("ReplicaSet", "web-7d4b9c6f5", Some("owner-uid")),
            ),
            (
                "hash label that is not the name's suffix",
                owners("ReplicaSet", "web-other", hash.clone()),
                workload("ReplicaSet", "web-other", Some("owner-uid")),
            ),
            (
                "ReplicaSet named only the hash",
                owners("ReplicaSet", "-7d4b9c6f5", hash.clone()),
                workload("ReplicaSet", "-7d4b9c6f5", Some("owner-uid")),
            ),
            (
                "DaemonSet",
                owners("DaemonSet", "vigil-agent", json!({})),
                workload("DaemonSet", "vigil-agent", Some("owner-uid")),
            ),
            (
                "StatefulSet",
                owners("StatefulSet", "db", json!({})),
                workload("StatefulSet", "db", Some("owner-uid")),
            ),
            (
                "Job of a CronJob stays the Job",
                owners("Job", "backup-28930140", json!({})),
                workload("Job", "backup-28930140", Some("owner-uid")),
            ),
            (
                "mirror pod owned by its Node",
                owners("Node", "node-a", json!({})),
                workload("Node", "node-a", Some("owner-uid")),
            ),
            ("bare pod", bare_pod("p", UID, None), None),
        ];
        for (case, pod, want) in table {
            assert_eq!(workload_of(&pod), want, "{case}");
        }
    }

    #[test]
    fn workload_prefers_the_controller_owner() {
        let pod = pod_json(json!({
            "metadata": {"name": "p", "uid": UID, "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u1"},
                {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u2",
                 "controller": true}
            ]}
        }));
        assert_eq!(workload_of(&pod), workload("Job", "j", Some("u2")));
        let uncontrolled = pod_json(json!({
            "metadata": {"name": "p", "uid": UID, "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": ""}
            ]}
        }));
        assert_eq!(
            workload_of(&uncontrolled),
            workload("ConfigMap", "cm", None)
        );
    }

    #[test]
    fn status_container_ids_table() {
        let table = [
            ("containerd://ABCdef", Some(("containerd", "abcdef"))),
            ("docker://0123", Some(("docker", "0123"))),
            ("cri-o://4567", Some(("cri-o", "4567"))),
            (" containerd://89/ ", Some(("containerd", "89"))),
            ("containerd://", None),
            ("://abc", None),
            ("abc", None),
            ("", None),
        ];
        for (input, want) in table {
            let got = parse_status_container_id(input);
            assert_eq!(
                got.as_ref().map(|(r, i)| (*r, i.as_str())),
                want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn enrichment_by_container_id_for_each_kind_and_runtime() {
        let now = Instant::now();
        let index = index_with(&[web_pod()], now);
        assert_eq!(index.container_ids(), 5, "4 current + 1 previous instance");
        // (cgroup id, runtime the cgroup told, name, image, image id, privileged, APE, runtime)
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<bool>,
            Option<bool>,
            &'a str,
        );
        let table: [Row; 5] = [
            (
                ID_A,
                None,
                "web",
                Some("registry.example/shop/web:1.2"),
                Some("registry.example/shop/web@sha256:2222"),
                Some(true),
                Some(true),
                "containerd",
            ),
            (
                ID_B,
                Some("docker"),
                "proxy",
                Some("envoyproxy/envoy:v1.30@sha256:abcd"),
                Some("docker-pullable://envoyproxy/envoy@sha256:abcd"),
                None,
                Some(false),
                "docker",
            ),
            (
                ID_C,
                None,
                "migrate",
                Some("registry.example/shop/migrate:3"),
                Some("registry.example/shop/migrate@sha256:1111"),
                None,
                None,
                "cri-o",
            ),
            (
                ID_D,
                Some("containerd"),
                "debugger",
                Some("busybox"),
                None,
                None,
                None,
                "containerd",
            ),
            // The restarted container's previous instance.
            (
                ID_E,
                None,
                "web",
                Some("registry.example/shop/web:1.2"),
                None,
                Some(true),
                Some(true),
                "containerd",
            ),
        ];
        for (id, cgroup_runtime, name, image, image_id, privileged, ape, runtime) in table {
            let mut resource = cgroup_resource(id, cgroup_runtime);
            enrich_resource(&index, &mut resource, None);
            let c = resource.container.as_ref().unwrap();
            assert_eq!(c.id, id, "id kept");
            assert_eq!(c.name, name, "{id}");
            assert_eq!(c.image.as_deref(), image, "{name}");
            assert_eq!(c.image_prefix, image.map(image_prefix), "{name}");
            assert_eq!(c.image_id.as_deref(), image_id, "{name}");
            assert_eq!(c.privileged, privileged, "{name}");
            assert_eq!(c.allow_privilege_escalation, ape, "{name}");
            assert_eq!(c.container_runtime.as_deref(), Some(runtime), "{name}");
            assert_eq!(
                resource.display_name,
                format!("shop/web-7d4b9c6f5-x2x9q/{name}")
            );
            let p = resource.pod.as_ref().unwrap();
            assert_eq!(p.uid.as_deref(), Some(UID));
        }
    }

    #[test]
    fn enrichment_fills_every_pod_field() {
        let index = index_with(&[web_pod()], Instant::now());
        let mut resource = cgroup_resource(ID_A, Some("containerd"));
        enrich_resource(&index, &mut resource, Some(UID));
        let want = PodDetails {
            name: "web-7d4b9c6f5-x2x9q".into(),
            namespace: "shop".into(),
            uid: Some(UID.into()),
            labels: [("app", "web"), ("pod-template-hash", "7d4b9c6f5")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            service_account_name: Some("web-sa".into()),
            host_network: Some(true),
            host_pid: Some(false),
            host_ipc: Some(false),
            host_path_volumes: vec!["/var/run/docker.sock".into(), "/var/log".into()],
            workload: workload("Deployment", "web", None),
        };
        assert_eq!(resource.pod, Some(want));
    }

    #[test]
    fn unknown_container_of_a_known_pod_gets_the_pod_only() {
        let index = index_with(&[web_pod()], Instant::now());
        let unknown = "9".repeat(64);
        let mut resource = cgroup_resource(&unknown, Some("containerd"));
        let before = resource.container.clone();
        enrich_resource(&index, &mut resource, Some(&UID.to_uppercase()));
        assert_eq!(
            resource.container, before,
            "container left as the cgroup gave it"
        );
        assert_eq!(
            resource.pod.as_ref().map(|p| p.name.as_str()),
            Some("web-7d4b9c6f5-x2x9q")
        );
        assert_eq!(
            resource.display_name,
            format!("shop/web-7d4b9c6f5-x2x9q/{}", &unknown[..12])
        );
    }

    #[test]
    fn nothing_known_leaves_the_resource_untouched() {
        let index = index_with(&[web_pod()], Instant::now());
        let unknown = "9".repeat(64);
        for pod_uid in [None, Some("ffffffff-1c2d-4e5f-8a9b-0c1d2e3f4a5b")] {
            let mut resource = cgroup_resource(&unknown, Some("cri-o"));
            let before = resource.clone();
            enrich_resource(&index, &mut resource, pod_uid);
            assert_eq!(resource, before, "{pod_uid:?}");
        }
        // A host process: no container, no pod uid.
        let mut host = cgroup_resource(ID_A, None);
        host.container = None;
        host.display_name = "node-a".into();
        let before = host.clone();
        enrich_resource(&index, &mut host, None);
        assert_eq!(host, before);
    }

    #[test]
    fn container_id_wins_over_pod_uid_and_static_pods_are_found_by_cgroup_uid() {
        let static_uid = "5e9f1c2d3a4b5c6d7e8f9a0b1c2d3e4f";
        let mut mirror = bare_pod("etcd-node-a", UID, Some(ID_A));
        mirror.metadata.annotations = Some(
            [(MIRROR_ANNOTATION.to_owned(), static_uid.to_owned())]
                .into_iter()
                .collect(),
        );
        let other = bare_pod("other", "22222222-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Some(ID_B));
        let index = index_with(&[mirror, other], Instant::now());
        // The cgroup names the static pod uid; the id is known: the id decides.
        let mut by_id = cgroup_resource(ID_A, None);
        enrich_resource(&index, &mut by_id, Some(static_uid));
        assert_eq!(by_id.display_name, "default/etcd-node-a/main");
        // Only the static uid: the mirror is found through the annotation.
        let mut by_alias = cgroup_resource(&"9".repeat(64), None);
        enrich_resource(&index, &mut by_alias, Some(static_uid));
        assert_eq!(
            by_alias.pod.as_ref().map(|p| p.name.as_str()),
            Some("etcd-node-a")
        );
        assert_eq!(
            index.pod(static_uid).map(|p| p.uid.as_deref()),
            Some(Some(UID))
        );
    }

    #[test]
    fn status_updates_forget_ids_no_longer_reported() {
        let now = Instant::now();
        let mut index = index_with(&[bare_pod("p", UID, Some(ID_A))], now);
        index.apply(&bare_pod("p", UID, Some(ID_B)), now);
        assert_eq!(index.container_ids(), 1);
        let mut old = cgroup_resource(ID_A, None);
        enrich_resource(&index, &mut old, None);
        assert_eq!(old.pod, None, "an id the status dropped is not kept");
        let mut new = cgroup_resource(ID_B, None);
        enrich_resource(&index, &mut new, None);
        assert_eq!(new.display_name, "default/p/main");
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn pending_pod_without_statuses_is_found_by_uid() {
        let index = index_with(&[bare_pod("p", UID, None)], Instant::now());
        assert_eq!(index.container_ids(), 0);
        let mut resource = cgroup_resource(ID_A, None);
        enrich_resource(&index, &mut resource, Some(UID));
        assert_eq!(resource.display_name, format!("default/p/{}", &ID_A[..12]));
    }

    #[test]
    fn tombstones_answer_until_they_expire() {
        let t0 = Instant::now();
        let mut index = index_with(&[bare_pod("p", UID, Some(ID_A))], t0);
        index.delete(
            &bare_pod("p", UID, Some(ID_A)),
            t0 + Duration::from_secs(10),
        );
        assert_eq!((index.len(), index.tombstones()), (1, 1));

        let mut resource = cgroup_resource(ID_A, None);
        index.expire(t0 + Duration::from_secs(10) + RETAIN);
        enrich_resource(&index, &mut resource, None);
        assert_eq!(
            resource.display_name, "default/p/main",
            "still within retention"
        );

        index.expire(t0 + Duration::from_secs(11) + RETAIN);
        assert!(index.is_empty());
        assert_eq!(index.container_ids(), 0);
        let mut resource = cgroup_resource(ID_A, None);
        let before = resource.clone();
        enrich_resource(&index, &mut resource, Some(UID));
        assert_eq!(resource, before, "expired tombstone forgotten");
    }

    #[test]
    fn any_later_change_expires_old_tombstones() {
        let t0 = Instant::now();
        let mut index = index_with(&[bare_pod("gone", UID, Some(ID_A))], t0);
        index.delete(&bare_pod("gone", UID, Some(ID_A)), t0);
        let later = t0 + RETAIN + Duration::from_secs(1);
        index.apply(
            &bare_pod("new", "33333333-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Some(ID_B)),
            later,
        );
        assert_eq!((index.len(), index.tombstones()), (1, 0));
        assert!(index.pod(UID).is_none());
    }

    #[test]
    fn tombstones_are_capped() {
        let t0 = Instant::now();
        let mut index = PodIndex::new(Duration::from_secs(3600));
        for i in 0..MAX_TOMBSTONES + 5 {
            let uid = format!("{i:08}-0000-4000-8000-000000000000");
            let pod = bare_pod(&format!("job-{i}"), &uid, None);
            index.apply(&pod, t0);
            index.delete(&pod, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(index.len(), MAX_TOMBSTONES);
        assert_eq!(index.tombstones(), MAX_TOMBSTONES);
        assert!(index.pod("00000000-0000-4000-8000-000000000000").is_none());
        assert!(
            index
                .pod(&format!(
                    "{:08}-0000-4000-8000-000000000000",
                    MAX_TOMBSTONES + 4
                ))
                .is_some()
        );
    }

    #[test]
    fn a_pod_applied_again_after_delete_is_not_expired_by_its_old_tombstone() {
        let t0 = Instant::now();
        let pod = bare_pod("p", UID, Some(ID_A));
        let mut index = index_with(std::slice::from_ref(&pod), t0);
        index.delete(&pod, t0);
        index.apply(&pod, t0 + Duration::from_secs(1));
        index.expire(t0 + RETAIN * 2);
        assert_eq!((index.len(), index.tombstones()), (1, 0));
    }

    #[test]
    fn relist_tombstones_what_vanished() {
        let t0 = Instant::now();
        let kept = bare_pod("kept", UID, Some(ID_A));
        let gone = bare_pod("gone", "44444444-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Some(ID_B));
        let mut index = index_with(&[kept.clone(), gone], t0);
        assert!(!index.is_synced());
        index.replace_all(vec![kept], t0);
        assert!(index.is_synced());
        assert_eq!((index.len(), index.tombstones()), (2, 1));
        index.expire(t0 + RETAIN + Duration::from_secs(1));
        assert_eq!(index.len(), 1);
        assert!(index.pod(UID).is_some());
    }

    #[test]
    fn watcher_events_keep_the_index_current() {
        let t0 = Instant::now();
        let a = bare_pod("a", UID, Some(ID_A));
        let b = bare_pod("b", "55555555-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Some(ID_B));
        let c = bare_pod("c", "66666666-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Some(ID_C));
        let mut index = PodIndex::new(RETAIN);
        let mut applier = PodWatchApplier::new();
        applier.on_event(&mut index, watcher::Event::Init, t0);
        applier.on_event(&mut index, watcher::Event::InitApply(a.clone()), t0);
        assert_eq!(index.len(), 1, "listed pods are usable before InitDone");
        applier.on_event(&mut index, watcher::Event::InitApply(b.clone()), t0);
        applier.on_event(&mut index, watcher::Event::InitDone, t0);
        assert!(index.is_synced());
        applier.on_event(&mut index, watcher::Event::Apply(c), t0);
        applier.on_event(&mut index, watcher::Event::Delete(a), t0);
        assert_eq!((index.len(), index.tombstones()), (3, 1));
        // A re-list after a watch error that no longer has b.
        applier.on_event(&mut index, watcher::Event::Init, t0);
        applier.on_event(
            &mut index,
            watcher::Event::InitApply(bare_pod(
                "c",
                "66666666-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
                Some(ID_C),
            )),
            t0,
        );
        applier.on_event(&mut index, watcher::Event::InitDone, t0);
        assert_eq!(index.tombstones(), 2, "a and b");
        assert!(index.pod("55555555-1c2d-4e5f-8a9b-0c1d2e3f4a5b").is_some());
        index.expire(t0 + RETAIN + Duration::from_secs(1));
        assert_eq!(index.len(), 1);
        // A stray InitDone without Init does not wipe the index.
        applier.on_event(&mut index, watcher::Event::InitDone, t0);
        assert_eq!((index.len(), index.tombstones()), (1, 0));
    }

    #[test]
    fn pods_without_uid_are_ignored() {
        let mut pod = bare_pod("p", UID, Some(ID_A));
        pod.metadata.uid = None;
        let mut index = PodIndex::new(RETAIN);
        index.apply(&pod, Instant::now());
        index.delete(&pod, Instant::now());
        assert!(index.is_empty());
        assert_eq!(index.container_ids(), 0);
    }
}
