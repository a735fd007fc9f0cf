//! A fake cluster of any size for the scale test and the coverage benchmark: nodes, agent pods and
//! heartbeat Leases in the caches the controllers read, a settable clock, and a mock API server
//! that answers every request and counts requests and bytes by kind.
//!
//! The mock plays the watch too: a `NodeCoverage` it accepts lands in the operator's cache, and
//! the policy it holds carries the last status written, as the real watches would deliver them.

#![allow(dead_code, reason = "each user (test, bench) takes what it needs")]

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        coordination::v1::Lease,
        core::v1::{Node, Pod},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, Time},
    jiff::Timestamp,
};
use kube::{
    Client,
    client::Body,
    core::DeserializeGuard,
    runtime::{
        controller::Action,
        events::{Recorder, Reporter},
        reflector::{self, store::Writer},
        watcher,
    },
};
use serde_json::{Value, json};
use vigil_crds::{
    NodeCoverage, RuntimeFinding, RuntimeMonitoringPolicy,
    lease::{AgentHealth, HEALTH_SCHEMA_VERSION, Renewal, agent_lease},
};
use vigil_operator::{Context, Error, Metrics, Stores, facts, policy_controller};

/// Namespace of the agents.
pub const NS: &str = "vigil-system";
/// The simulation's time zero.
pub const T0: i64 = 1_800_000_000;
/// The one policy of the fake cluster.
pub const POLICY: &str = "all-linux";

/// What a request did, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `PATCH .../runtimemonitoringpolicies/<p>/status`.
    PolicyStatus,
    /// `PATCH` or `DELETE .../nodecoverages/<node>`.
    NodeCoverage,
    /// `POST` or `PATCH .../events`.
    Event,
    /// Server-side applies of the agent objects (ConfigMap, DaemonSet).
    AgentObject,
    /// Anything else.
    Other,
}

impl Kind {
    fn of(method: &Method, path: &str) -> Self {
        if path.contains("/runtimemonitoringpolicies/") && path.ends_with("/status") {
            Self::PolicyStatus
        } else if path.contains("/nodecoverages/") {
            Self::NodeCoverage
        } else if path.contains("/events") {
            Self::Event
        } else if method == Method::PATCH {
            Self::AgentObject
        } else {
            Self::Other
        }
    }

    /// For reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::PolicyStatus => "policy status writes",
            Self::NodeCoverage => "NodeCoverage writes",
            Self::Event => "Events",
            Self::AgentObject => "agent object applies",
            Self::Other => "other requests",
        }
    }
}

/// Requests and request-body bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Requests.
    pub requests: u64,
    /// Bytes of the request bodies.
    pub bytes: u64,
}

#[derive(Default)]
struct Server {
    counts: BTreeMap<(Kind, String), Count>,
    policy: Value,
    largest_status: usize,
    coverage_cache: Option<Writer<DeserializeGuard<NodeCoverage>>>,
    daemon_set_cache: Option<Writer<DaemonSet>>,
    daemon_set_status: Value,
}

/// The mock API server.
#[derive(Clone)]
pub struct MockApi(Arc<Mutex<Server>>);

impl MockApi {
    /// Counts by kind and method, e.g. `(NodeCoverage, "PATCH")`.
    pub fn counts(&self) -> BTreeMap<(Kind, String), Count> {
        self.0.lock().unwrap().counts.clone()
    }

    /// Counts by kind, all methods together.
    pub fn by_kind(&self) -> BTreeMap<Kind, Count> {
        let mut out: BTreeMap<Kind, Count> = BTreeMap::new();
        for ((kind, _), c) in self.counts() {
            let e = out.entry(kind).or_default();
            e.requests += c.requests;
            e.bytes += c.bytes;
        }
        out
    }

    /// Forgets the counts.
    pub fn reset(&self) {
        self.0.lock().unwrap().counts.clear();
    }

    /// The policy as the API server holds it, with the last status written.
    pub fn policy(&self) -> RuntimeMonitoringPolicy {
        serde_json::from_value(self.0.lock().unwrap().policy.clone()).unwrap()
    }

    /// Bytes of the largest status patch body seen.
    pub fn largest_status(&self) -> usize {
        self.0.lock().unwrap().largest_status
    }

    fn answer(&self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Value) {
        let mut s = self.0.lock().unwrap();
        let kind = Kind::of(method, path);
        let c = s.counts.entry((kind, method.to_string())).or_default();
        c.requests += 1;
        c.bytes += body.len() as u64;
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).unwrap()
        };
        match (kind, method) {
            (Kind::PolicyStatus, _) => {
                s.largest_status = s
                    .largest_status
                    .max(serde_json::to_vec(&body).unwrap().len());
                s.policy["status"] = body["status"].clone();
                (StatusCode::OK, s.policy.clone())
            }
            (Kind::NodeCoverage, &Method::PATCH) => {
                let mut stored = body;
                let name = stored["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                stored["metadata"]["uid"] = json!(format!("uid-{name}"));
                let guard: DeserializeGuard<NodeCoverage> =
                    serde_json::from_value(stored.clone()).unwrap();
                if let Some(w) = s.coverage_cache.as_mut() {
                    w.apply_watcher_event(&watcher::Event::Apply(guard));
                }
                (StatusCode::OK, stored)
            }
            (Kind::NodeCoverage, &Method::DELETE) => {
                let name = path.rsplit('/').next().unwrap_or_default();
                let gone: DeserializeGuard<NodeCoverage> = serde_json::from_value(json!({
                    "apiVersion": "vigil.dev/v1alpha1", "kind": "NodeCoverage",
                    "metadata": {"name": name},
                    "spec": {"policy": POLICY, "status": "Healthy", "covered": true, "since": "2027-01-15T08:00:00Z"}
                }))
                .unwrap();
                if let Some(w) = s.coverage_cache.as_mut() {
                    w.apply_watcher_event(&watcher::Event::Delete(gone));
                }
                (
                    StatusCode::OK,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                )
            }
            (Kind::AgentObject, _) if path.contains("/daemonsets/") => {
                let mut ds = body;
                ds["metadata"]["generation"] = json!(1);
                ds["status"] = s.daemon_set_status.clone();
                let typed: DaemonSet = serde_json::from_value(ds.clone()).unwrap();
                if let Some(w) = s.daemon_set_cache.as_mut() {
                    w.apply_watcher_event(&watcher::Event::Apply(typed));
                }
                (StatusCode::OK, ds)
            }
            (Kind::Event | Kind::AgentObject, _) => (StatusCode::OK, body),
            // The agent's ServiceAccount, which the chart installs, exists.
            (Kind::Other, &Method::GET) if path.contains("/serviceaccounts/") => (
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": path.rsplit('/').next().unwrap_or_default(), "namespace": NS}}),
            ),
            (Kind::NodeCoverage | Kind::Other, _) => (
                StatusCode::NOT_FOUND,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "reason": "NotFound", "code": 404, "message": "not found"}),
            ),
        }
    }
}

/// The fake cluster: caches, clock and the mock API server behind the operator's [`Context`].
pub struct Cluster {
    /// The operator's context.
    pub ctx: Arc<Context>,
    /// The mock API server.
    pub api: MockApi,
    /// Node cache writer.
    pub nodes: Writer<Node>,
    /// Agent pod cache writer.
    pub pods: Writer<Pod>,
    /// Lease cache writer.
    pub leases: Writer<Lease>,
    /// Policy cache writer.
    pub policies: Writer<DeserializeGuard<RuntimeMonitoringPolicy>>,
    /// Current time, seconds since the epoch.
    pub now: Arc<Mutex<i64>>,
    /// Number of nodes.
    pub size: usize,
}

/// Name of node `i`.
pub fn node_name(i: usize) -> String {
    format!(
        "ip-10-{}-{}-{}.eu-west-1.compute.internal",
        i / 65536,
        (i / 256) % 256,
        i % 256
    )
}

/// Node `i` as a cloud node object would look: labels, conditions, node info, images and
/// managed fields (the operator's cache drops most of that, see `facts::slim_node`).
pub fn fake_node(i: usize, ready: bool, heartbeat: i64) -> Node {
    let name = node_name(i);
    let at = Timestamp::from_second(heartbeat).unwrap().to_string();
    let condition = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": format!("{type_} {reason}"),
               "lastHeartbeatTime": at, "lastTransitionTime": "2027-01-01T00:00:00Z"})
    };
    let images: Vec<Value> = (0..25)
        .map(|k| {
            json!({"names": [format!("registry.example.com/team-{k}/service-{k}@sha256:{:064x}", k * 7919 + i),
                             format!("registry.example.com/team-{k}/service-{k}:v1.{k}.0")],
                   "sizeBytes": 50_000_000 + k * 1_000_000})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "uid": format!("node-uid-{i}"), "resourceVersion": format!("{}", 1000 + i),
            "labels": {
                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name, "beta.kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m6i.2xlarge",
                "topology.kubernetes.io/region": "eu-west-1",
                "topology.kubernetes.io/zone": format!("eu-west-1{}", ["a", "b", "c"][i % 3]),
                "eks.amazonaws.com/nodegroup": format!("pool-{}", i % 8)
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            "managedFields": [
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": at,
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {}, "f:images": {}, "f:nodeInfo": {}}}}
            ]
        },
        "spec": {"providerID": format!("aws:///eu-west-1a/i-{i:017x}"), "podCIDR": "10.1.0.0/24"},
        "status": {
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID"),
                if ready { condition("Ready", "True", "KubeletReady") }
                else { condition("Ready", "False", "KubeletNotReady") }
            ],
            "addresses": [{"type": "InternalIP", "address": format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)},
                          {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "8", "memory": "32386520Ki", "pods": "58", "ephemeral-storage": "83873772Ki"},
            "allocatable": {"cpu": "7910m", "memory": "31369752Ki", "pods": "58", "ephemeral-storage": "76224326324"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kernelVersion": "6.1.140-154.222.amzn2023.x86_64", "operatingSystem": "linux",
                "architecture": "amd64", "osImage": "Amazon Linux 2023", "containerRuntimeVersion": "containerd://1.7.27",
                "kubeletVersion": "v1.33.1", "kubeProxyVersion": "v1.33.1", "machineID": format!("{i:032x}"),
                "systemUUID": format!("ec2{i:029x}"), "bootID": format!("{i:032x}")},
            "images": images
        }
    }))
    .unwrap()
}

/// The agent pod of node `i`.
pub fn agent_pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("vigil-agent-{POLICY}-{i:05x}"), "namespace": NS,
                     "labels": {"app.kubernetes.io/name": "vigil-agent", "vigil.dev/policy": POLICY}},
        "spec": {"nodeName": node_name(i), "containers": [{"name": "agent", "image": "vigil-agent:0.1.0"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "agent", "image": "vigil-agent:0.1.0",
            "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}
    }))
    .unwrap()
}

/// The health a working agent reports.
pub fn health() -> AgentHealth {
    AgentHealth {
        schema_version: HEALTH_SCHEMA_VERSION,
        agent_version: "0.1.0".into(),
        kernel_version: "6.1.140-154.222.amzn2023.x86_64".into(),
        btf_available: true,
        active_hooks: [
            "sched_process_exec",
            "sched_process_exit",
            "sched_process_fork",
            "security_bprm_check",
            "security_file_open",
            "security_inode_unlink",
            "security_inode_rename",
            "security_socket_connect",
            "inet_csk_accept",
            "security_ptrace_access_check",
            "memfd_create",
            "security_sb_mount",
            "security_kernel_module_request",
            "cgroup_skb_dns",
            "cgroup_sock_create",
            "security_task_kill",
            "commit_creds",
            "security_bpf",
            "security_file_mprotect",
        ]
        .map(str::to_owned)
        .to_vec(),
        probe_failures: vec![],
        events_per_second: 120.0,
        dropped_events_per_second: 0.0,
        dropped_events_total: 0,
        dropped_since_last_renewal: 0,
        sensors_running: true,
        last_error: None,
        publishing: None,
        tampering_total: 0,
        last_tampering: None,
        tracked_bytes: 0,
        tracked_shed_total: 0,
    }
}

/// The Lease node `i`'s agent writes at `at`.
pub fn lease(i: usize, at: i64, health: &AgentHealth) -> Lease {
    agent_lease(
        &Renewal {
            node: &node_name(i),
            namespace: NS,
            policy: POLICY,
            holder: &format!("vigil-agent-{POLICY}-{i:05x}"),
            renew_time: MicroTime(Timestamp::from_second(at).unwrap()),
            lease_duration_seconds: 60,
        },
        health,
    )
    .unwrap()
}

impl Cluster {
    /// A cluster of `size` Ready nodes, each with a running agent pod and a fresh Lease, and one
    /// Automated policy selecting them all. Nothing is reconciled yet.
    pub fn new(size: usize) -> Self {
        let api = MockApi(Arc::new(Mutex::new(Server::default())));
        let service = {
            let api = api.clone();
            tower::service_fn(move |req: Request<Body>| {
                let api = api.clone();
                async move {
                    let method = req.method().clone();
                    let path = req.uri().path().to_owned();
                    let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
                    let (code, body) = api.answer(&method, &path, &bytes);
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(code)
                            .body(Body::from(serde_json::to_vec(&body).unwrap()))
                            .unwrap(),
                    )
                }
            })
        };
        let client = Client::new(service, "default");
        let (nodes_s, mut nodes) = reflector::store();
        let (pods_s, mut pods) = reflector::store();
        let (leases_s, mut leases) = reflector::store();
        let (policies_s, mut policies) = reflector::store();
        let (findings_s, mut findings) = reflector::store::<DeserializeGuard<RuntimeFinding>>();
        let (coverage_s, mut coverage) = reflector::store();
        let (daemon_sets_s, mut daemon_sets) = reflector::store::<DaemonSet>();
        for w in [
            &mut nodes as &mut dyn InitDone,
            &mut pods,
            &mut leases,
            &mut policies,
        ] {
            w.init_done();
        }
        findings.apply_watcher_event(&watcher::Event::InitDone);
        coverage.apply_watcher_event(&watcher::Event::InitDone);
        daemon_sets.apply_watcher_event(&watcher::Event::InitDone);
        let now = Arc::new(Mutex::new(T0));
        let clock = now.clone();
        let ctx = Arc::new(Context {
            client: client.clone(),
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: "vigil-operator".into(),
                    instance: Some("bench".into()),
                },
            ),
            metrics: Arc::new(Metrics::default()),
            namespace: NS.into(),
            stores: Stores {
                nodes: nodes_s,
                pods: pods_s,
                leases: leases_s,
                policies: policies_s,
                findings: findings_s,
                node_coverage: coverage_s,
                daemon_sets: daemon_sets_s,
            },
            clock: Arc::new(move || Timestamp::from_second(*clock.lock().unwrap()).unwrap()),
            failures: Default::default(),
            coverage_log: Default::default(),
            agent_objects: Default::default(),
            agent_images: vigil_operator::image_policy::ImageAllowList::new([
                vigil_operator::image_policy::DEFAULT_AGENT_REPOSITORY,
            ])
            .unwrap(),
        });
        let mut policy =
            RuntimeMonitoringPolicy::new(POLICY, serde_json::from_value(json!({})).unwrap());
        policy.metadata.uid = Some(format!("uid-{POLICY}"));
        policy.metadata.generation = Some(1);
        policy.metadata.creation_timestamp = Some(Time(Timestamp::from_second(T0 - 3600).unwrap()));
        policy.metadata.finalizers = Some(vec![policy_controller::FINALIZER.into()]);
        {
            let mut s = api.0.lock().unwrap();
            s.policy = serde_json::to_value(&policy).unwrap();
            s.coverage_cache = Some(coverage);
            s.daemon_set_cache = Some(daemon_sets);
            let n = size as i64;
            s.daemon_set_status = json!({"desiredNumberScheduled": n, "updatedNumberScheduled": n,
                "numberAvailable": n, "observedGeneration": 1, "currentNumberScheduled": n,
                "numberMisscheduled": 0, "numberReady": n});
        }
        policies.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(policy))));
        let mut cluster = Self {
            ctx,
            api,
            nodes,
            pods,
            leases,
            policies,
            now,
            size,
        };
        let h = health();
        for i in 0..size {
            cluster.set_node(fake_node(i, true, T0));
            let mut pod = agent_pod(i);
            facts::slim_pod(&mut pod);
            cluster
                .pods
                .apply_watcher_event(&watcher::Event::Apply(pod));
            cluster.renew(i, T0 - (i % 20) as i64, &h);
        }
        cluster
    }

    /// Puts `node` in the cache, slimmed as the operator's watch does.
    pub fn set_node(&mut self, mut node: Node) {
        facts::slim_node(&mut node);
        self.nodes.apply_watcher_event(&watcher::Event::Apply(node));
    }

    /// Node `i`'s agent renews its Lease at `at` with `health`; returns the Lease as cached.
    pub fn renew(&mut self, i: usize, at: i64, health: &AgentHealth) -> Lease {
        let mut l = lease(i, at, health);
        facts::slim_lease(&mut l);
        self.leases
            .apply_watcher_event(&watcher::Event::Apply(l.clone()));
        l
    }

    /// Sets the clock.
    pub fn at(&self, t: i64) {
        *self.now.lock().unwrap() = t;
    }

    /// Reconciles the policy as the API server holds it (with its last status).
    pub async fn reconcile(&self) -> Result<Action, Error> {
        let guard = Arc::new(DeserializeGuard(Ok(self.api.policy())));
        policy_controller::reconcile(guard, self.ctx.clone()).await
    }
}

/// `InitDone` for writers of any type, to mark caches listed in one loop.
trait InitDone {
    fn init_done(&mut self);
}

impl<K> InitDone for Writer<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn init_done(&mut self) {
        self.apply_watcher_event(&watcher::Event::InitDone);
    }
}
