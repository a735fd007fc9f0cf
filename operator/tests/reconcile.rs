//! Reconciler tests against a mock API server that asserts every request's method, path and body
//! (the controller-rs `ApiServerVerifier` pattern). Together they cover every step of the opt-in
//! end-to-end suite in `tests/`: apply a policy, add a node, see the DaemonSet and status, renew a
//! Lease, see Healthy, stop renewing, see Unhealthy with its reason, archive a finding by rule.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{Node, NodeCondition, NodeStatus, NodeSystemInfo, Pod, PodSpec, PodStatus},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time},
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
    NodeCoverage, RuntimeFinding, RuntimeMonitoringPolicy, SuppressionRule,
    lease::{AgentHealth, HEALTH_SCHEMA_VERSION, Renewal, agent_lease},
};
use vigil_operator::{
    Context, Error, Metrics, Stores,
    finding_gc::{self, GcLimits},
    policy_controller, suppression_controller,
};

const NS: &str = "vigil-system";
const T0: i64 = 1_800_000_000;
const POLICIES: &str = "/apis/vigil.dev/v1alpha1/runtimemonitoringpolicies";
const NODE_COVERAGES: &str = "/apis/vigil.dev/v1alpha1/nodecoverages";

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The mock API server: each `expect_*` takes the next request, asserts it and answers.
struct ApiServerVerifier(Handle);

/// One request as the operator sent it.
struct Seen {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

impl ApiServerVerifier {
    async fn next(&mut self) -> (Seen, tower_test::mock::SendResponse<Response<Body>>) {
        let (req, send) = tokio::time::timeout(Duration::from_secs(10), self.0.next_request())
            .await
            .expect("the operator sent no further request")
            .expect("service not called");
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (
            Seen {
                method,
                path,
                query,
                body,
            },
            send,
        )
    }

    fn reply(send: tower_test::mock::SendResponse<Response<Body>>, code: StatusCode, body: &Value) {
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(body).unwrap()))
                .unwrap(),
        );
    }

    /// A server-side apply by the operator's field manager to `path`; answers with the applied
    /// object, passed through `answer`.
    async fn expect_apply(&mut self, path: &str, answer: impl FnOnce(Value) -> Value) -> Value {
        let (seen, send) = self.next().await;
        assert_eq!((seen.method.as_str(), seen.path.as_str()), ("PATCH", path));
        assert!(
            seen.query.contains("fieldManager=vigil-operator") && seen.query.contains("force=true"),
            "{}",
            seen.query
        );
        Self::reply(send, StatusCode::OK, &answer(seen.body.clone()));
        seen.body
    }

    /// An Event on a policy or rule, created or (repeated) patched; returns its body.
    async fn expect_event(&mut self, reason: &str) -> Value {
        let (seen, send) = self.next().await;
        assert!(
            seen.path
                .starts_with("/apis/events.k8s.io/v1/namespaces/default/events"),
            "{} {}",
            seen.method,
            seen.path
        );
        assert!(
            matches!(seen.method, Method::POST | Method::PATCH),
            "{}",
            seen.method
        );
        assert_eq!(seen.body["reason"], reason, "{}", seen.body);
        Self::reply(send, StatusCode::OK, &seen.body);
        seen.body
    }

    /// A request answered with an API error.
    async fn expect_error(&mut self, method: Method, path: &str, code: StatusCode, reason: &str) {
        let (seen, send) = self.next().await;
        assert_eq!((&seen.method, seen.path.as_str()), (&method, path));
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{reason} by test"), "reason": reason, "code": code.as_u16()});
        Self::reply(send, code, &status);
    }

    async fn expect_json_patch(&mut self, path: &str, answer: &Value) -> Value {
        let (seen, send) = self.next().await;
        assert_eq!((seen.method.as_str(), seen.path.as_str()), ("PATCH", path));
        Self::reply(send, StatusCode::OK, answer);
        seen.body
    }

    /// A read of the agent's ServiceAccount, which the chart ships; answered as found.
    async fn expect_service_account_check(&mut self, name: &str) {
        let (seen, send) = self.next().await;
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            (
                "GET",
                format!("/api/v1/namespaces/{NS}/serviceaccounts/{name}").as_str()
            )
        );
        Self::reply(
            send,
            StatusCode::OK,
            &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": NS}}),
        );
    }

    /// The agent objects of `policy` (ConfigMap and DaemonSet, after the check that the agent's
    /// ServiceAccount exists), in apply order; returns the applied bodies by kind. Nothing else:
    /// no ServiceAccount or RBAC object is ever written.
    async fn expect_agent_objects(
        &mut self,
        policy: &str,
        ds_status: Value,
    ) -> BTreeMap<String, Value> {
        self.expect_service_account_check("vigil-agent").await;
        let name = format!("vigil-agent-{policy}");
        let paths = [
            (
                "ConfigMap",
                format!("/api/v1/namespaces/{NS}/configmaps/{name}"),
            ),
            (
                "DaemonSet",
                format!("/apis/apps/v1/namespaces/{NS}/daemonsets/{name}"),
            ),
        ];
        let mut bodies = BTreeMap::new();
        for (kind, path) in paths {
            let status = ds_status.clone();
            let body = self
                .expect_apply(&path, |mut b| {
                    if kind == "DaemonSet" {
                        b["metadata"]["generation"] = json!(1);
                        b["status"] = status;
                    }
                    b
                })
                .await;
            assert_eq!(body["kind"], kind);
            assert_eq!(
                body["metadata"]["ownerReferences"][0]["kind"],
                "RuntimeMonitoringPolicy"
            );
            assert_eq!(body["metadata"]["ownerReferences"][0]["controller"], true);
            bodies.insert(kind.to_owned(), body);
        }
        bodies
    }

    /// The status patch of a policy; answers with the policy carrying that status.
    async fn expect_policy_status(&mut self, policy: &RuntimeMonitoringPolicy) -> Value {
        let name = policy.metadata.name.clone().unwrap();
        let mut answer = serde_json::to_value(policy).unwrap();
        let body = self
            .expect_apply(&format!("{POLICIES}/{name}/status"), |b| {
                answer["status"] = b["status"].clone();
                answer
            })
            .await;
        assert_eq!(body["apiVersion"], "vigil.dev/v1alpha1");
        assert_eq!(body["kind"], "RuntimeMonitoringPolicy");
        body["status"].clone()
    }

    /// Server-side applies of the `NodeCoverage` objects of `nodes`, in any order. Each is
    /// answered, and put in `cache` as its watch would. Returns the specs by node.
    async fn expect_node_coverage(
        &mut self,
        cache: &mut Writer<DeserializeGuard<NodeCoverage>>,
        nodes: &[&str],
    ) -> BTreeMap<String, Value> {
        let mut specs = BTreeMap::new();
        for _ in nodes {
            let (seen, send) = self.next().await;
            let node = seen
                .path
                .strip_prefix(&format!("{NODE_COVERAGES}/"))
                .unwrap_or_else(|| panic!("{} {}: not a NodeCoverage", seen.method, seen.path))
                .to_owned();
            assert!(nodes.contains(&node.as_str()), "{node} not in {nodes:?}");
            assert_eq!(seen.method, Method::PATCH);
            assert!(
                seen.query.contains("fieldManager=vigil-operator"),
                "{}",
                seen.query
            );
            let b = &seen.body;
            assert_eq!(
                (b["apiVersion"].as_str(), b["kind"].as_str()),
                (Some("vigil.dev/v1alpha1"), Some("NodeCoverage"))
            );
            assert_eq!(b["metadata"]["name"], node.as_str());
            assert_eq!(
                b["metadata"]["labels"]["vigil.dev/policy"],
                b["spec"]["policy"]
            );
            assert_eq!(
                b["metadata"]["labels"]["vigil.dev/coverage"],
                b["spec"]["status"]
            );
            assert_eq!(
                b["metadata"]["ownerReferences"][0]["kind"],
                "RuntimeMonitoringPolicy"
            );
            for volatile in ["lastHeartbeat", "eventsPerSecond", "droppedEvents"] {
                assert!(b["spec"].get(volatile).is_none(), "{volatile} in {b}");
            }
            let mut stored = b.clone();
            stored["metadata"]["uid"] = json!(format!("uid-{node}"));
            Self::reply(send, StatusCode::OK, &stored);
            cache.apply_watcher_event(&watcher::Event::Apply(
                serde_json::from_value(stored).unwrap(),
            ));
            assert!(
                specs.insert(node.clone(), b["spec"].clone()).is_none(),
                "{node} twice"
            );
        }
        specs
    }

    /// The deletion of the `NodeCoverage` object of `node`, removed from `cache` as its watch
    /// would.
    async fn expect_node_coverage_deleted(
        &mut self,
        cache: &mut Writer<DeserializeGuard<NodeCoverage>>,
        node: &str,
    ) {
        let (seen, send) = self.next().await;
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("DELETE", format!("{NODE_COVERAGES}/{node}").as_str())
        );
        let gone: DeserializeGuard<NodeCoverage> = serde_json::from_value(json!({
            "apiVersion": "vigil.dev/v1alpha1", "kind": "NodeCoverage", "metadata": {"name": node},
            "spec": {"policy": "x", "status": "Healthy", "covered": true, "since": "2027-01-15T08:00:00Z"}
        }))
        .unwrap();
        Self::reply(
            send,
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
        );
        cache.apply_watcher_event(&watcher::Event::Delete(gone));
    }

    /// Asserts that no request is pending, i.e. the reconcile made no call beyond those expected.
    fn assert_idle(&mut self) {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut next = Box::pin(self.0.next_request());
        assert!(
            std::future::Future::poll(next.as_mut(), &mut cx).is_pending(),
            "unexpected extra request"
        );
    }
}

/// Writers of the caches the controllers read, and a settable clock.
struct Harness {
    ctx: Arc<Context>,
    nodes: Writer<Node>,
    pods: Writer<Pod>,
    leases: Writer<Lease>,
    policies: Writer<DeserializeGuard<RuntimeMonitoringPolicy>>,
    findings: Writer<DeserializeGuard<RuntimeFinding>>,
    node_coverage: Writer<DeserializeGuard<NodeCoverage>>,
    now: Arc<Mutex<i64>>,
}

fn harness() -> (Harness, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (nodes_s, nodes) = reflector::store();
    let (pods_s, pods) = reflector::store();
    let (leases_s, leases) = reflector::store();
    let (policies_s, policies) = reflector::store();
    let (findings_s, findings) = reflector::store();
    let (node_coverage_s, node_coverage) = reflector::store();
    // The agent DaemonSet is never cached here, so every reconcile applies the agent objects.
    let (daemon_sets_s, mut daemon_sets) = reflector::store();
    daemon_sets.apply_watcher_event(&watcher::Event::InitDone);
    let now = Arc::new(Mutex::new(T0));
    let (mut nodes, mut pods, mut leases, mut policies, mut findings, mut node_coverage) =
        (nodes, pods, leases, policies, findings, node_coverage);
    // The caches have completed their first (empty) list.
    nodes.apply_watcher_event(&watcher::Event::InitDone);
    pods.apply_watcher_event(&watcher::Event::InitDone);
    leases.apply_watcher_event(&watcher::Event::InitDone);
    policies.apply_watcher_event(&watcher::Event::InitDone);
    findings.apply_watcher_event(&watcher::Event::InitDone);
    node_coverage.apply_watcher_event(&watcher::Event::InitDone);
    let clock_now = now.clone();
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "vigil-operator".into(),
                instance: Some("test".into()),
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
            node_coverage: node_coverage_s,
            daemon_sets: daemon_sets_s,
        },
        clock: Arc::new(move || Timestamp::from_second(*clock_now.lock().unwrap()).unwrap()),
        failures: Default::default(),
        coverage_log: Default::default(),
        agent_objects: Default::default(),
        agent_images: vigil_operator::image_policy::ImageAllowList::new([
            vigil_operator::image_policy::DEFAULT_AGENT_REPOSITORY,
        ])
        .unwrap(),
    });
    (
        Harness {
            ctx,
            nodes,
            pods,
            leases,
            policies,
            findings,
            node_coverage,
            now,
        },
        ApiServerVerifier(handle),
    )
}

fn node(name: &str, labels: &[(&str, &str)], ready: bool) -> Node {
    let mut l: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.insert("kubernetes.io/os".into(), "linux".into());
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(l),
            ..ObjectMeta::default()
        },
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                reason: Some(
                    if ready {
                        "KubeletReady"
                    } else {
                        "KubeletNotReady"
                    }
                    .into(),
                ),
                ..NodeCondition::default()
            }]),
            node_info: Some(NodeSystemInfo {
                kernel_version: "6.8.0".into(),
                operating_system: "linux".into(),
                ..NodeSystemInfo::default()
            }),
            ..NodeStatus::default()
        }),
        ..Node::default()
    }
}

fn agent_pod(policy: &str, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("vigil-agent-{policy}-{node}")),
            namespace: Some(NS.into()),
            labels: Some(BTreeMap::from([(
                "vigil.dev/policy".to_owned(),
                policy.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
    }
}

fn heartbeat(node: &str, at: i64) -> Lease {
    let health = AgentHealth {
        schema_version: HEALTH_SCHEMA_VERSION,
        agent_version: "0.1.0".into(),
        kernel_version: "6.8.0".into(),
        btf_available: true,
        active_hooks: vec!["sched_process_exec".into()],
        probe_failures: vec![],
        events_per_second: 50.0,
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
    };
    agent_lease(
        &Renewal {
            node,
            namespace: NS,
            policy: "all-linux",
            holder: "agent",
            renew_time: MicroTime(Timestamp::from_second(at).unwrap()),
            lease_duration_seconds: 60,
        },
        &health,
    )
    .unwrap()
}

fn policy(name: &str, spec: Value, created: i64) -> RuntimeMonitoringPolicy {
    let mut p = RuntimeMonitoringPolicy::new(name, serde_json::from_value(spec).unwrap());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.generation = Some(1);
    p.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    p.metadata.finalizers = Some(vec![policy_controller::FINALIZER.into()]);
    p
}

impl Harness {
    fn add<K: kube::Resource + Clone>(w: &mut Writer<K>, obj: K)
    where
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        w.apply_watcher_event(&watcher::Event::Apply(obj));
    }

    fn remember(&mut self, p: &RuntimeMonitoringPolicy) {
        Self::add(&mut self.policies, DeserializeGuard(Ok(p.clone())));
    }

    async fn reconcile_policy(
        &self,
        p: &RuntimeMonitoringPolicy,
    ) -> tokio::task::JoinHandle<Result<Action, Error>> {
        let guard = Arc::new(DeserializeGuard(Ok(p.clone())));
        tokio::spawn(policy_controller::reconcile(guard, self.ctx.clone()))
    }
}

async fn done(task: tokio::task::JoinHandle<Result<Action, Error>>) -> Result<Action, Error> {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("reconcile did not finish")
        .unwrap()
}

fn ds_done(n: i32) -> Value {
    json!({"desiredNumberScheduled": n, "updatedNumberScheduled": n, "numberAvailable": n, "observedGeneration": 1,
           "currentNumberScheduled": n, "numberMisscheduled": 0, "numberReady": n})
}

fn with_status(p: &RuntimeMonitoringPolicy, status: &Value) -> RuntimeMonitoringPolicy {
    let mut v = serde_json::to_value(p).unwrap();
    v["status"] = status.clone();
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn new_policy_gets_the_finalizer_first() {
    let (mut h, mut api) = harness();
    let mut p = policy("all-linux", json!({}), T0 - 100);
    p.metadata.finalizers = None;
    h.remember(&p);
    let task = h.reconcile_policy(&p).await;
    let mut answered = serde_json::to_value(&p).unwrap();
    answered["metadata"]["finalizers"] = json!([policy_controller::FINALIZER]);
    let patch = api
        .expect_json_patch(&format!("{POLICIES}/all-linux"), &answered)
        .await;
    assert_eq!(
        patch[1],
        json!({"op": "add", "path": "/metadata/finalizers", "value": [policy_controller::FINALIZER]})
    );
    assert_eq!(done(task).await.unwrap(), Action::await_change());
    api.assert_idle();
}

/// The end-to-end flow, step by step, against the mock API server.
#[tokio::test]
async fn policy_flow_rollout_heartbeat_expiry_and_new_node() {
    let (mut h, mut api) = harness();
    let p = policy("all-linux", json!({}), T0 - 100);
    h.remember(&p);
    Harness::add(&mut h.nodes, node("node-a", &[], true));

    // Apply: agent objects, the node's NodeCoverage, then status. No agent yet.
    let task = h.reconcile_policy(&p).await;
    let objs = api.expect_agent_objects("all-linux", ds_done(1)).await;
    let pod = &objs["DaemonSet"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "vigil-agent");
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["containers"][0]["securityContext"]["privileged"], false);
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    let a = &api
        .expect_node_coverage(&mut h.node_coverage, &["node-a"])
        .await["node-a"];
    assert_eq!(
        (&a["policy"], &a["status"], &a["issueType"], &a["covered"]),
        (
            &json!("all-linux"),
            &json!("Unhealthy"),
            &json!("AgentPodMissing"),
            &json!(false)
        )
    );
    assert_eq!(a["issue"], "AgentPodMissing: no agent pod on the node");
    assert_eq!(a["kernelVersion"], "6.8.0");
    assert_eq!(a["since"], "2027-01-15T08:00:00Z");
    let ev = api.expect_event("AgentPodMissing").await;
    assert!(ev["note"].as_str().unwrap().contains("node-a"), "{ev}");
    api.expect_event("AgentDeployed").await;
    let status = api.expect_policy_status(&p).await;
    assert_eq!(status["coverage"]["compatibleNodes"], 1);
    assert_eq!(status["coverage"]["healthyNodes"], 0);
    assert_eq!(
        status["coverage"]["unhealthy"],
        json!([{"nodeName": "node-a", "issue": "AgentPodMissing: no agent pod on the node",
                "since": "2027-01-15T08:00:00Z"}])
    );
    assert_eq!(status["coverage"]["unhealthyNotListed"], 0);
    assert!(status["coverage"].get("nodes").is_none(), "{status}");
    assert_eq!(status["observedGeneration"], 1);
    let requeue = done(task).await.unwrap();
    assert_eq!(requeue, Action::requeue(Duration::from_secs(30)));
    let p = with_status(&p, &status);

    // The agent pod runs and renews its Lease: Healthy, Ready.
    Harness::add(&mut h.pods, agent_pod("all-linux", "node-a"));
    Harness::add(&mut h.leases, heartbeat("node-a", T0 - 5));
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    let a = &api
        .expect_node_coverage(&mut h.node_coverage, &["node-a"])
        .await["node-a"];
    assert_eq!(
        (&a["status"], &a["covered"], &a["agentVersion"]),
        (&json!("Healthy"), &json!(true), &json!("0.1.0"))
    );
    assert_eq!(a["activeHooks"], json!(["sched_process_exec"]));
    assert_eq!(a["activeHookCount"], 1);
    assert!(a.get("issue").is_none(), "{a}");
    api.expect_event("NodeHealthy").await;
    let status = api.expect_policy_status(&p).await;
    assert_eq!(status["coverage"]["healthyNodes"], 1);
    assert_eq!(status["coverage"]["coveredNodes"], 1);
    assert_eq!(status["coverage"]["unhealthy"], json!([]));
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    done(task).await.unwrap();
    let p = with_status(&p, &status);

    // Nothing changed: the agent objects are re-applied, no NodeCoverage write, no Event, no
    // status write.
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    done(task).await.unwrap();
    api.assert_idle();

    // The agent renews its Lease with other rates: still nothing to write.
    let mut busier = heartbeat("node-a", T0 + 15);
    busier
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .values_mut()
        .for_each(|h| *h = h.replace("\"eventsPerSecond\":50.0", "\"eventsPerSecond\":900.0"));
    assert!(format!("{busier:?}").contains("900"));
    Harness::add(&mut h.leases, busier);
    *h.now.lock().unwrap() = T0 + 20;
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    done(task).await.unwrap();
    api.assert_idle();

    // The agent stops renewing: past the timeout the node is Unhealthy with its reason.
    *h.now.lock().unwrap() = T0 + 120;
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    let a = &api
        .expect_node_coverage(&mut h.node_coverage, &["node-a"])
        .await["node-a"];
    assert_eq!(
        (&a["status"], &a["issueType"], &a["covered"], &a["since"]),
        (
            &json!("Unhealthy"),
            &json!("AgentNotReporting"),
            &json!(false),
            &json!("2027-01-15T08:02:00Z")
        )
    );
    assert_eq!(a["agentVersion"], "0.1.0", "the last agent seen");
    let ev = api.expect_event("AgentNotReporting").await;
    assert_eq!(ev["type"], "Warning");
    let status = api.expect_policy_status(&p).await;
    let issue = status["coverage"]["unhealthy"][0]["issue"]
        .as_str()
        .unwrap();
    assert!(
        issue.starts_with("AgentNotReporting: last heartbeat at"),
        "{issue}"
    );
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap();
    assert_eq!(degraded["status"], "True");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .starts_with("1 unhealthy; first: node-a: AgentNotReporting"),
        "{degraded}"
    );
    done(task).await.unwrap();
    let p = with_status(&p, &status);

    // A node joins: it gets its object (pending agent) and the rollout is reported.
    Harness::add(&mut h.nodes, node("node-b", &[], true));
    Harness::add(&mut h.leases, heartbeat("node-a", T0 + 119));
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects(
        "all-linux",
        json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 1, "numberAvailable": 1, "observedGeneration": 1,
               "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 1}),
    )
    .await;
    let written = api
        .expect_node_coverage(&mut h.node_coverage, &["node-a", "node-b"])
        .await;
    assert_eq!(written["node-a"]["status"], "Healthy");
    assert_eq!(written["node-b"]["issueType"], "AgentPodMissing");
    api.expect_event("NodeHealthy").await;
    api.expect_event("AgentPodMissing").await;
    api.expect_event("RollingOut").await;
    let status = api.expect_policy_status(&p).await;
    assert_eq!(status["coverage"]["compatibleNodes"], 2);
    let progressing = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(progressing["status"], "True");
    done(task).await.unwrap();
    api.assert_idle();
    let p = with_status(&p, &status);

    // node-b leaves the policy (another OS): its object is deleted, node-a's left alone.
    let mut windows = node("node-b", &[], true);
    windows
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("kubernetes.io/os".into(), "windows".into());
    Harness::add(&mut h.nodes, windows);
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    api.expect_node_coverage_deleted(&mut h.node_coverage, "node-b")
        .await;
    api.expect_event("RolloutComplete").await;
    let status = api.expect_policy_status(&p).await;
    assert_eq!(status["coverage"]["compatibleNodes"], 1);
    done(task).await.unwrap();
    api.assert_idle();

    let text = h.ctx.metrics.render().unwrap();
    assert!(
        text.contains(r#"vigil_operator_coverage_nodes{policy="all-linux",state="compatible"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"vigil_operator_coverage_transitions_total{policy="all-linux",to="Unhealthy",issue="AgentNotReporting"} 1"#), "{text}");
}

#[tokio::test]
async fn unschedulable_agent_reports_the_scheduler_reason() {
    let (mut h, mut api) = harness();
    let p = policy("all-linux", json!({}), T0 - 100);
    h.remember(&p);
    Harness::add(&mut h.nodes, node("node-a", &[], true));
    let mut pending = agent_pod("all-linux", "node-a");
    pending.spec.as_mut().unwrap().node_name = None;
    pending.spec.as_mut().unwrap().affinity = serde_json::from_value(json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}]}}})).unwrap();
    pending.status = serde_json::from_value(
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient memory."}]}),
    )
    .unwrap();
    Harness::add(&mut h.pods, pending);
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    let a = &api
        .expect_node_coverage(&mut h.node_coverage, &["node-a"])
        .await["node-a"];
    assert_eq!(
        a["issue"],
        "AgentPodPending: 0/1 nodes are available: 1 Insufficient memory."
    );
    api.expect_event("AgentPodPending").await;
    api.expect_event("AgentDeployed").await;
    let status = api.expect_policy_status(&p).await;
    assert_eq!(
        status["coverage"]["unhealthy"][0]["issue"],
        "AgentPodPending: 0/1 nodes are available: 1 Insufficient memory."
    );
    done(task).await.unwrap();
}

#[tokio::test]
async fn later_policy_on_the_same_node_reports_conflict_and_stays_off_it() {
    let (mut h, mut api) = harness();
    let older = policy("all-linux", json!({}), T0 - 1000);
    let gpu = policy("gpu", json!({"nodeSelector": {"pool": "gpu"}}), T0 - 10);
    h.remember(&older);
    h.remember(&gpu);
    Harness::add(&mut h.nodes, node("node-a", &[], true));
    Harness::add(&mut h.nodes, node("node-g", &[("pool", "gpu")], true));

    let task = h.reconcile_policy(&gpu).await;
    let objs = api.expect_agent_objects("gpu", ds_done(0)).await;
    let terms = &objs["DaemonSet"]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    assert_eq!(
        terms[0]["matchFields"][0],
        json!({"key": "metadata.name", "operator": "NotIn", "values": ["node-g"]})
    );
    let ev = api.expect_event("PolicyConflict").await;
    assert!(
        ev["note"]
            .as_str()
            .unwrap()
            .contains("node-g (covered by all-linux)"),
        "{ev}"
    );
    api.expect_event("AgentDeployed").await;
    let status = api.expect_policy_status(&gpu).await;
    assert_eq!(status["coverage"]["compatibleNodes"], 0);
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PolicyConflict"))
    );
    done(task).await.unwrap();
}

#[tokio::test]
async fn deletion_runs_cleanup_then_removes_the_finalizer() {
    let (mut h, mut api) = harness();
    let mut p = policy("all-linux", json!({}), T0 - 100);
    p.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(T0).unwrap()));
    h.remember(&p);
    let task = h.reconcile_policy(&p).await;
    api.expect_event("PolicyDeleted").await;
    let mut answered = serde_json::to_value(&p).unwrap();
    answered["metadata"]["finalizers"] = json!([]);
    let patch = api
        .expect_json_patch(&format!("{POLICIES}/all-linux"), &answered)
        .await;
    assert_eq!(
        patch[0],
        json!({"op": "test", "path": "/metadata/finalizers/0", "value": policy_controller::FINALIZER})
    );
    assert_eq!(
        patch[1],
        json!({"op": "remove", "path": "/metadata/finalizers/0"})
    );
    assert_eq!(done(task).await.unwrap(), Action::await_change());
    api.assert_idle();
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn policy_error_policy(h: &Harness, p: &RuntimeMonitoringPolicy, err: &Error) -> Action {
    policy_controller::error_policy(
        Arc::new(DeserializeGuard(Ok(p.clone()))),
        err,
        h.ctx.clone(),
    )
}

/// Warnings logged on this thread while the guard lives (the tests' runtime has one thread).
struct Warnings {
    buf: Arc<Mutex<Vec<u8>>>,
    _subscriber: tracing::subscriber::DefaultGuard,
}

impl Warnings {
    fn capture() -> Self {
        #[derive(Clone)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        Self {
            buf,
            _subscriber: tracing::subscriber::set_default(subscriber),
        }
    }

    fn count(&self, message: &str) -> usize {
        String::from_utf8_lossy(&self.buf.lock().unwrap())
            .lines()
            .filter(|l| l.contains(message))
            .count()
    }
}

const REJECTED_LOG: &str = "reconcile rejected, retrying cannot fix it";

#[tokio::test]
async fn forbidden_apply_is_reported_counted_by_kind_and_retried_slowly() {
    let (mut h, mut api) = harness();
    let p = policy("all-linux", json!({}), T0 - 100);
    h.remember(&p);
    let task = h.reconcile_policy(&p).await;
    api.expect_service_account_check("vigil-agent").await;
    api.expect_error(
        Method::PATCH,
        &format!("/api/v1/namespaces/{NS}/configmaps/vigil-agent-all-linux"),
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    let ev = api.expect_event("ApplyRejected").await;
    assert_eq!(ev["type"], "Warning");
    // The policy never had a status: the condition goes into an empty one.
    let status = api.expect_policy_status(&p).await;
    let degraded = condition(&status, "Degraded");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("ApplyRejected"))
    );
    assert_eq!(
        degraded["message"],
        "apply ConfigMap vigil-agent-all-linux: 403 Forbidden: Forbidden by test"
    );
    let err = done(task).await.unwrap_err();
    assert_eq!(err.metric_label(), "api_forbidden");
    assert_eq!(
        policy_error_policy(&h, &p, &err),
        Action::requeue(Duration::from_secs(300))
    );
    api.assert_idle();
    let text = h.ctx.metrics.render().unwrap();
    assert!(text.contains(r#"vigil_operator_reconcile_failures_total{controller="policy",error="api_forbidden"} 1"#), "{text}");
}

/// Whoever can create a policy chooses its agent image, which runs with node-level rights: an
/// image outside the operator's allow-list is refused before anything is applied.
#[tokio::test]
async fn an_agent_image_outside_the_allow_list_is_refused_before_anything_is_applied() {
    let (mut h, mut api) = harness();
    let p = policy(
        "all-linux",
        json!({"agent": {"image": "ghcr.io/vigil-dev/vigil-agent-evil:0.1.0"}}),
        T0 - 100,
    );
    h.remember(&p);
    let task = h.reconcile_policy(&p).await;
    let ev = api.expect_event("ImageNotAllowed").await;
    assert_eq!(ev["type"], "Warning");
    let status = api.expect_policy_status(&p).await;
    let degraded = condition(&status, "Degraded");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("ImageNotAllowed"))
    );
    let message = degraded["message"].as_str().unwrap();
    assert!(
        message.contains("\"ghcr.io/vigil-dev/vigil-agent-evil:0.1.0\" is not allowed")
            && message.contains("ghcr.io/vigil-dev/vigil-agent"),
        "{message}"
    );
    let err = done(task).await.unwrap_err();
    assert_eq!(err.metric_label(), "image_not_allowed");
    assert_eq!(
        policy_error_policy(&h, &p, &err),
        Action::requeue(Duration::from_secs(300))
    );
    // No ServiceAccount, role, ConfigMap or DaemonSet was written.
    api.assert_idle();
}

/// The agent's identity and rights come with the chart. Without its ServiceAccount the
/// DaemonSet could start no pod: the policy says what to install, and nothing is applied.
#[tokio::test]
async fn a_missing_agent_service_account_is_reported_naming_what_to_install() {
    let isolate = json!({"findingTypes": ["Execution:Runtime/ReverseShell"]});
    // (policy spec, ServiceAccount looked up, a fragment of the message)
    let table = [
        (
            json!({}),
            "vigil-agent",
            "install or upgrade the Vigil chart in this namespace",
        ),
        (
            json!({"response": {"mode": "enforce", "isolate": isolate}}),
            "vigil-responder",
            "agentResponder.enabled=true",
        ),
    ];
    for (spec, sa, hint) in table {
        let (mut h, mut api) = harness();
        let p = policy("all-linux", spec, T0 - 100);
        h.remember(&p);
        let task = h.reconcile_policy(&p).await;
        api.expect_error(
            Method::GET,
            &format!("/api/v1/namespaces/{NS}/serviceaccounts/{sa}"),
            StatusCode::NOT_FOUND,
            "NotFound",
        )
        .await;
        let ev = api.expect_event("AgentRbacMissing").await;
        assert_eq!(ev["type"], "Warning");
        let status = api.expect_policy_status(&p).await;
        let degraded = condition(&status, "Degraded");
        assert_eq!(
            (degraded["status"].as_str(), degraded["reason"].as_str()),
            (Some("True"), Some("AgentRbacMissing"))
        );
        let message = degraded["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("ServiceAccount {NS}/{sa} does not exist: "))
                && message.contains(hint),
            "{message}"
        );
        assert_eq!(ev["note"], message);
        let err = done(task).await.unwrap_err();
        assert_eq!(err.metric_label(), "agent_rbac_missing");
        assert_eq!(
            policy_error_policy(&h, &p, &err),
            Action::requeue(Duration::from_secs(300))
        );
        // No ConfigMap or DaemonSet was written.
        api.assert_idle();
    }
}

/// A policy that isolates pods in enforce mode runs as the responder; its objects are the same
/// two, and still no RBAC object is written.
#[tokio::test]
async fn an_isolating_policy_runs_as_the_responder_and_writes_no_rbac() {
    let (mut h, mut api) = harness();
    let p = policy(
        "all-linux",
        json!({"response": {"mode": "enforce", "isolate": {"findingTypes": ["Execution:Runtime/ReverseShell"]}}}),
        T0 - 100,
    );
    h.remember(&p);
    let task = h.reconcile_policy(&p).await;
    api.expect_service_account_check("vigil-responder").await;
    let name = "vigil-agent-all-linux";
    api.expect_apply(&format!("/api/v1/namespaces/{NS}/configmaps/{name}"), |b| b)
        .await;
    let ds = api
        .expect_apply(
            &format!("/apis/apps/v1/namespaces/{NS}/daemonsets/{name}"),
            |mut b| {
                b["metadata"]["generation"] = json!(1);
                b["status"] = ds_done(0);
                b
            },
        )
        .await;
    assert_eq!(
        ds["spec"]["template"]["spec"]["serviceAccountName"],
        "vigil-responder"
    );
    api.expect_event("AgentDeployed").await;
    api.expect_policy_status(&p).await;
    done(task).await.unwrap();
    api.assert_idle();
}

/// A status the API server rejects (422 Invalid) used to be retried about 100 times a second.
/// Now: one Warning Event, one `Degraded` condition in the last accepted status, one warning in
/// the log, five minutes between tries whatever wakes the controller, and a clean slate after the
/// write is accepted. The counts are of requests the mock API server saw.
#[tokio::test]
async fn rejected_status_write_is_reported_once_and_retried_slowly() {
    let warnings = Warnings::capture();
    let (mut h, mut api) = harness();
    let status_path = format!("{POLICIES}/all-linux/status");
    let p = policy("all-linux", json!({}), T0 - 100);
    h.remember(&p);

    // A first status is accepted.
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(0)).await;
    api.expect_event("AgentDeployed").await;
    let accepted = api.expect_policy_status(&p).await;
    done(task).await.unwrap();
    let p = with_status(&p, &accepted);

    // A node joins; the new status is rejected. Reported: an Event, then Degraded in the status
    // the server last accepted (still without the node).
    Harness::add(&mut h.nodes, node("node-a", &[], true));
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    api.expect_node_coverage(&mut h.node_coverage, &["node-a"])
        .await;
    api.expect_event("AgentPodMissing").await;
    api.expect_error(
        Method::PATCH,
        &status_path,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    let ev = api.expect_event("StatusWriteRejected").await;
    assert_eq!(ev["type"], "Warning");
    assert_eq!(
        ev["note"],
        "patch status RuntimeMonitoringPolicy all-linux: 422 Invalid: Invalid by test"
    );
    let reported = api.expect_policy_status(&p).await;
    assert_eq!(reported["coverage"], accepted["coverage"]);
    assert_eq!(reported["observedGeneration"], 1);
    let degraded = condition(&reported, "Degraded");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("StatusWriteRejected"))
    );
    assert_eq!(degraded["message"], ev["note"]);
    assert_eq!(condition(&reported, "Ready"), condition(&accepted, "Ready"));
    let err = done(task).await.unwrap_err();
    assert_eq!(err.metric_label(), "api_invalid");
    assert_eq!(
        policy_error_policy(&h, &p, &err),
        Action::requeue(Duration::from_secs(300))
    );
    api.assert_idle();
    assert_eq!(warnings.count(REJECTED_LOG), 1);

    // The condition write changes the policy, so its watch triggers a reconcile at once (as do
    // Lease renewals and node changes): it waits out the backoff without a single request.
    let p = with_status(&p, &reported);
    for _ in 0..3 {
        let task = h.reconcile_policy(&p).await;
        assert_eq!(
            done(task).await.unwrap(),
            Action::requeue(Duration::from_secs(300))
        );
        api.assert_idle();
    }
    *h.now.lock().unwrap() = T0 + 120;
    let task = h.reconcile_policy(&p).await;
    assert_eq!(
        done(task).await.unwrap(),
        Action::requeue(Duration::from_secs(180))
    );
    api.assert_idle();

    // Five minutes on, the retry is rejected again: no second Event, condition or warning (the
    // node's transition was reported with its NodeCoverage object, once).
    *h.now.lock().unwrap() = T0 + 300;
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    api.expect_error(
        Method::PATCH,
        &status_path,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    let err = done(task).await.unwrap_err();
    assert_eq!(
        policy_error_policy(&h, &p, &err),
        Action::requeue(Duration::from_secs(300))
    );
    api.assert_idle();
    assert_eq!(warnings.count(REJECTED_LOG), 1);
    let text = h.ctx.metrics.render().unwrap();
    assert!(
        text.contains(
            r#"vigil_operator_reconcile_failures_total{controller="policy",error="api_invalid"} 2"#
        ),
        "{text}"
    );

    // The write is accepted: Degraded now says what the coverage says, and the backoff is
    // forgotten, so the next (transient) failure waits 2 seconds, not 5 minutes.
    *h.now.lock().unwrap() = T0 + 600;
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(1)).await;
    let status = api.expect_policy_status(&p).await;
    assert_eq!(condition(&status, "Degraded")["reason"], "NodesUnhealthy");
    done(task).await.unwrap();
    let p = with_status(&p, &status);
    let task = h.reconcile_policy(&p).await;
    api.expect_error(
        Method::GET,
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/vigil-agent"),
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
    )
    .await;
    let err = done(task).await.unwrap_err();
    assert_eq!(
        policy_error_policy(&h, &p, &err),
        Action::requeue(Duration::from_secs(2))
    );
    api.assert_idle();
    assert_eq!(warnings.count(REJECTED_LOG), 1);
}

#[tokio::test]
async fn status_of_a_policy_deleted_meanwhile_is_not_an_error() {
    let (mut h, mut api) = harness();
    let p = policy("all-linux", json!({}), T0 - 100);
    h.remember(&p);
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(0)).await;
    api.expect_event("AgentDeployed").await;
    api.expect_error(
        Method::PATCH,
        &format!("{POLICIES}/all-linux/status"),
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    assert_eq!(
        done(task).await.unwrap(),
        Action::requeue(Duration::from_secs(30))
    );
    api.assert_idle();
}

#[tokio::test]
async fn transient_errors_back_off_exponentially_without_reports() {
    let warnings = Warnings::capture();
    let (mut h, mut api) = harness();
    let mut p = policy("all-linux", json!({}), T0 - 100);
    h.remember(&p);
    let sa = format!("/api/v1/namespaces/{NS}/serviceaccounts/vigil-agent");
    // (time of the try, retry in)
    for (t, retry_in) in [(0, 2), (2, 4), (6, 8), (14, 16)] {
        *h.now.lock().unwrap() = T0 + t;
        let task = h.reconcile_policy(&p).await;
        api.expect_error(
            Method::GET,
            &sa,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
        )
        .await;
        let err = done(task).await.unwrap_err();
        assert_eq!(
            policy_error_policy(&h, &p, &err),
            Action::requeue(Duration::from_secs(retry_in)),
            "at {t}"
        );
        // Triggered meanwhile: no request, the rest of the wait.
        let task = h.reconcile_policy(&p).await;
        assert_eq!(
            done(task).await.unwrap(),
            Action::requeue(Duration::from_secs(retry_in))
        );
        api.assert_idle();
    }
    assert_eq!(warnings.count("reconcile failed, backing off"), 4);
    assert_eq!(warnings.count(REJECTED_LOG), 0);

    // An edit of the policy is looked at at once, and counts afresh.
    p.metadata.generation = Some(2);
    *h.now.lock().unwrap() = T0 + 15;
    let task = h.reconcile_policy(&p).await;
    api.expect_error(
        Method::GET,
        &sa,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
    )
    .await;
    let err = done(task).await.unwrap_err();
    assert_eq!(
        policy_error_policy(&h, &p, &err),
        Action::requeue(Duration::from_secs(2))
    );
    api.assert_idle();
}

#[tokio::test]
async fn rejected_archive_is_reported_on_the_rule_once() {
    let (mut h, mut api) = harness();
    Harness::add(
        &mut h.findings,
        DeserializeGuard(Ok(finding("f-curl", "shop", "/usr/bin/curl"))),
    );
    let r = rule(json!({"process.executablePath": {"equals": ["/usr/bin/curl"]}}));
    let guard = Arc::new(DeserializeGuard(Ok(r.clone())));
    let finding_status = "/apis/vigil.dev/v1alpha1/namespaces/shop/runtimefindings/f-curl/status";
    let task = tokio::spawn(suppression_controller::reconcile(
        guard.clone(),
        h.ctx.clone(),
    ));
    api.expect_error(
        Method::PATCH,
        finding_status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    api.expect_event("StatusWriteRejected").await;
    let status = api
        .expect_apply(
            "/apis/vigil.dev/v1alpha1/suppressionrules/curl-in-web/status",
            |b| {
                let mut v = serde_json::to_value(&r).unwrap();
                v["status"] = b["status"].clone();
                v
            },
        )
        .await["status"]
        .clone();
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded["reason"], "StatusWriteRejected");
    assert_eq!(degraded["observedGeneration"], 2);
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .starts_with("patch status RuntimeFinding f-curl: 422 Invalid"),
        "{degraded}"
    );
    let err = done(task).await.unwrap_err();
    assert_eq!(
        suppression_controller::error_policy(guard.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(300))
    );
    api.assert_idle();

    // Five minutes on, rejected again: nothing more is reported.
    *h.now.lock().unwrap() = T0 + 300;
    let task = tokio::spawn(suppression_controller::reconcile(
        guard.clone(),
        h.ctx.clone(),
    ));
    api.expect_error(
        Method::PATCH,
        finding_status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
    )
    .await;
    done(task).await.unwrap_err();
    api.assert_idle();
}

#[tokio::test]
async fn status_write_conflict_is_an_error() {
    let (mut h, mut api) = harness();
    let p = policy("all-linux", json!({}), T0 - 100);
    h.remember(&p);
    let task = h.reconcile_policy(&p).await;
    api.expect_agent_objects("all-linux", ds_done(0)).await;
    api.expect_event("AgentDeployed").await;
    api.expect_error(
        Method::PATCH,
        &format!("{POLICIES}/all-linux/status"),
        StatusCode::CONFLICT,
        "Conflict",
    )
    .await;
    let err = done(task).await.unwrap_err();
    assert_eq!(err.metric_label(), "api_conflict");
    assert!(format!("{:?}", err).contains("patch status"), "{err:?}");
    // A conflict may pass on the next try: no report, a short backoff.
    assert_eq!(
        policy_error_policy(&h, &p, &err),
        Action::requeue(Duration::from_secs(2))
    );
    api.assert_idle();
}

#[tokio::test]
async fn manual_mode_removes_agent_objects_and_only_tracks_coverage() {
    let (mut h, mut api) = harness();
    let p = policy("pool", json!({"agentManagement": "Manual"}), T0 - 100);
    h.remember(&p);
    Harness::add(&mut h.nodes, node("node-a", &[], true));
    Harness::add(&mut h.leases, heartbeat("node-a", T0 - 1));
    let task = h.reconcile_policy(&p).await;
    let name = "vigil-agent-pool";
    // The DaemonSet and its ConfigMap; never an RBAC object or ServiceAccount (an older
    // operator's per-policy ones go with the policy: the operator may not delete them).
    for path in [
        format!("/apis/apps/v1/namespaces/{NS}/daemonsets/{name}"),
        format!("/api/v1/namespaces/{NS}/configmaps/{name}"),
    ] {
        api.expect_error(Method::DELETE, &path, StatusCode::NOT_FOUND, "NotFound")
            .await;
    }
    api.expect_node_coverage(&mut h.node_coverage, &["node-a"])
        .await;
    api.expect_event("NodeHealthy").await;
    let status = api.expect_policy_status(&p).await;
    assert_eq!(status["coverage"]["healthyNodes"], 1);
    let progressing = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(progressing["reason"], "ManualManagement");
    done(task).await.unwrap();
    api.assert_idle();
}

#[tokio::test]
async fn malformed_policy_is_reported_not_retried() {
    let (h, mut api) = harness();
    let guard: DeserializeGuard<RuntimeMonitoringPolicy> = serde_json::from_value(json!({
        "apiVersion": "vigil.dev/v1alpha1", "kind": "RuntimeMonitoringPolicy",
        "metadata": {"name": "broken", "uid": "u"}, "spec": {"agentManagement": "Sometimes"}
    }))
    .unwrap();
    assert!(guard.0.is_err());
    let task = tokio::spawn(policy_controller::reconcile(Arc::new(guard), h.ctx.clone()));
    let ev = api.expect_event("InvalidSpec").await;
    assert_eq!(ev["regarding"]["name"], "broken");
    assert_eq!(done(task).await.unwrap(), Action::await_change());
    api.assert_idle();
}

fn finding(name: &str, ns: &str, exe: &str) -> RuntimeFinding {
    let mut f: RuntimeFinding =
        serde_yaml::from_str(include_str!("../../examples/findings/sample-finding.yaml")).unwrap();
    f.metadata.name = Some(name.into());
    f.metadata.namespace = Some(ns.into());
    f.spec.process.as_mut().unwrap().executable_path = exe.into();
    f
}

/// A finding of `severity` last seen `days` before the harness clock.
fn aged_finding(name: &str, days: i64, severity: f64) -> RuntimeFinding {
    let mut f = finding(name, "shop", "/usr/bin/curl");
    f.metadata.uid = Some(format!("uid-{name}"));
    f.spec.severity = severity;
    f.spec.severity_label = vigil_crds::finding::SeverityLabel::from_score(severity).unwrap();
    f.spec.event_last_seen = Time(Timestamp::from_second(T0 - days * 86_400).unwrap());
    f
}

#[tokio::test]
async fn findings_are_collected_by_retention_and_the_namespace_cap() {
    let (mut h, mut api) = harness();
    for (name, days, severity) in [
        ("old-critical", 100, 9.5),
        ("low-older", 3, 2.0),
        ("low-newer", 1, 2.0),
        ("high", 2, 8.0),
    ] {
        Harness::add(
            &mut h.findings,
            DeserializeGuard(Ok(aged_finding(name, days, severity))),
        );
    }
    let limits = GcLimits {
        per_namespace: 2,
        ..GcLimits::default()
    };
    let ctx = h.ctx.clone();
    let task = tokio::spawn(async move { finding_gc::collect(&ctx, limits).await });
    let mut deleted = std::collections::BTreeSet::new();
    for _ in 0..2 {
        let (seen, send) = api.next().await;
        assert_eq!(seen.method, Method::DELETE);
        let name = seen
            .path
            .strip_prefix("/apis/vigil.dev/v1alpha1/namespaces/shop/runtimefindings/")
            .unwrap_or_else(|| panic!("{}", seen.path))
            .to_owned();
        // Never a newer object that took the name meanwhile.
        assert_eq!(seen.body["preconditions"]["uid"], format!("uid-{name}"));
        ApiServerVerifier::reply(
            send,
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
        );
        deleted.insert(name);
    }
    assert_eq!(task.await.unwrap().unwrap(), 2);
    assert_eq!(
        deleted,
        ["low-older", "old-critical"].map(String::from).into(),
        "retention takes the 100-day-old one; the cap of 2 then takes the older Low, keeping High"
    );
    api.assert_idle();
    let text = h.ctx.metrics.render().unwrap();
    for reason in ["retention", "namespace_cap"] {
        assert!(
            text.contains(&format!(
                "vigil_operator_findings_collected_total{{reason=\"{reason}\"}} 1"
            )),
            "{text}"
        );
    }
}

fn rule(criteria: Value) -> SuppressionRule {
    let mut r: SuppressionRule = serde_json::from_value(json!({
        "apiVersion": "vigil.dev/v1alpha1", "kind": "SuppressionRule",
        "metadata": {"name": "curl-in-web", "uid": "r1", "generation": 2},
        "spec": {"description": "curl is part of the web image", "criteria": {"criterion": criteria}, "action": "ARCHIVE"}
    }))
    .unwrap();
    r.metadata.generation = Some(2);
    r
}

#[tokio::test]
async fn suppression_rule_archives_matching_findings() {
    let (mut h, mut api) = harness();
    Harness::add(
        &mut h.findings,
        DeserializeGuard(Ok(finding("f-curl", "shop", "/usr/bin/curl"))),
    );
    Harness::add(
        &mut h.findings,
        DeserializeGuard(Ok(finding("f-nc", "shop", "/usr/bin/nc"))),
    );
    let r = rule(
        json!({"process.executablePath": {"matches": ["/usr/bin/cur*"]}, "resource.pod.namespace": {"equals": ["shop"]}}),
    );
    let task = tokio::spawn(suppression_controller::reconcile(
        Arc::new(DeserializeGuard(Ok(r.clone()))),
        h.ctx.clone(),
    ));
    let body = api
        .expect_apply(
            "/apis/vigil.dev/v1alpha1/namespaces/shop/runtimefindings/f-curl/status",
            |b| {
                let mut f =
                    serde_json::to_value(finding("f-curl", "shop", "/usr/bin/curl")).unwrap();
                f["status"] = b["status"].clone();
                f
            },
        )
        .await;
    assert_eq!(body["status"]["archived"], true);
    assert_eq!(body["status"]["archivedBy"], "curl-in-web");
    api.expect_event("FindingsArchived").await;
    let status = api
        .expect_apply(
            "/apis/vigil.dev/v1alpha1/suppressionrules/curl-in-web/status",
            |b| {
                let mut v = serde_json::to_value(&r).unwrap();
                v["status"] = b["status"].clone();
                v
            },
        )
        .await["status"]
        .clone();
    assert_eq!(
        (
            status["matchedFindings"].as_u64(),
            status["archivedFindings"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(status["observedGeneration"], 2);
    assert!(status["lastArchivedAt"].is_string());
    assert_eq!(status["conditions"][0]["status"], "True");
    done(task).await.unwrap();
    api.assert_idle();
    assert!(
        h.ctx
            .metrics
            .render()
            .unwrap()
            .contains(r#"vigil_operator_findings_archived_total{rule="curl-in-web"} 1"#)
    );
}

#[tokio::test]
async fn suppression_rule_skips_findings_already_archived() {
    let (mut h, mut api) = harness();
    let mut done_by_other = finding("f-curl", "shop", "/usr/bin/curl");
    done_by_other.status = Some(vigil_crds::RuntimeFindingStatus {
        archived: true,
        archived_by: Some("other".into()),
        archived_at: None,
    });
    Harness::add(&mut h.findings, DeserializeGuard(Ok(done_by_other)));
    let r = rule(json!({"process.executablePath": {"equals": ["/usr/bin/curl"]}}));
    let task = tokio::spawn(suppression_controller::reconcile(
        Arc::new(DeserializeGuard(Ok(r.clone()))),
        h.ctx.clone(),
    ));
    let status = api
        .expect_apply(
            "/apis/vigil.dev/v1alpha1/suppressionrules/curl-in-web/status",
            |b| {
                let mut v = serde_json::to_value(&r).unwrap();
                v["status"] = b["status"].clone();
                v
            },
        )
        .await["status"]
        .clone();
    assert_eq!(
        (
            status["matchedFindings"].as_u64(),
            status["archivedFindings"].as_u64()
        ),
        (Some(1), Some(0))
    );
    done(task).await.unwrap();
    api.assert_idle();
}

#[tokio::test]
async fn suppression_rule_skips_a_finding_deleted_meanwhile() {
    let (mut h, mut api) = harness();
    Harness::add(
        &mut h.findings,
        DeserializeGuard(Ok(finding("f-curl", "shop", "/usr/bin/curl"))),
    );
    let r = rule(json!({"process.executablePath": {"equals": ["/usr/bin/curl"]}}));
    let task = tokio::spawn(suppression_controller::reconcile(
        Arc::new(DeserializeGuard(Ok(r.clone()))),
        h.ctx.clone(),
    ));
    api.expect_error(
        Method::PATCH,
        "/apis/vigil.dev/v1alpha1/namespaces/shop/runtimefindings/f-curl/status",
        StatusCode::NOT_FOUND,
        "NotFound",
    )
    .await;
    // No FindingsArchived Event: nothing was archived.
    let status = api
        .expect_apply(
            "/apis/vigil.dev/v1alpha1/suppressionrules/curl-in-web/status",
            |b| {
                let mut v = serde_json::to_value(&r).unwrap();
                v["status"] = b["status"].clone();
                v
            },
        )
        .await["status"]
        .clone();
    assert_eq!(status["archivedFindings"], 0);
    assert!(status.get("lastArchivedAt").is_none(), "{status}");
    done(task).await.unwrap();
    api.assert_idle();
}

#[tokio::test]
async fn invalid_rule_is_reported_in_status_and_event() {
    let (h, mut api) = harness();
    let r = rule(json!({"process.name": {"matchesRegex": ["(unclosed"]}}));
    let task = tokio::spawn(suppression_controller::reconcile(
        Arc::new(DeserializeGuard(Ok(r.clone()))),
        h.ctx.clone(),
    ));
    let ev = api.expect_event("InvalidCriteria").await;
    assert!(
        ev["note"].as_str().unwrap().contains("process.name"),
        "{ev}"
    );
    let status = api
        .expect_apply(
            "/apis/vigil.dev/v1alpha1/suppressionrules/curl-in-web/status",
            |b| {
                let mut v = serde_json::to_value(&r).unwrap();
                v["status"] = b["status"].clone();
                v
            },
        )
        .await["status"]
        .clone();
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["conditions"][0]["reason"], "InvalidCriteria");
    assert_eq!(done(task).await.unwrap(), Action::await_change());
    api.assert_idle();
}

#[tokio::test]
async fn nothing_happens_before_the_caches_are_synced() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut api = ApiServerVerifier(handle);
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "vigil-operator".into(),
                instance: None,
            },
        ),
        metrics: Arc::new(Metrics::default()),
        namespace: NS.into(),
        stores: Stores {
            nodes: reflector::store().0,
            pods: reflector::store().0,
            leases: reflector::store().0,
            policies: reflector::store().0,
            findings: reflector::store().0,
            node_coverage: reflector::store().0,
            daemon_sets: reflector::store().0,
        },
        clock: Arc::new(|| Timestamp::from_second(T0).unwrap()),
        failures: Default::default(),
        coverage_log: Default::default(),
        agent_objects: Default::default(),
        agent_images: vigil_operator::image_policy::ImageAllowList::new([
            vigil_operator::image_policy::DEFAULT_AGENT_REPOSITORY,
        ])
        .unwrap(),
    });
    let p = policy("all-linux", json!({}), T0);
    let action = policy_controller::reconcile(Arc::new(DeserializeGuard(Ok(p))), ctx.clone())
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(2)));
    let r = rule(json!({"type": {"equals": ["x"]}}));
    let action = suppression_controller::reconcile(Arc::new(DeserializeGuard(Ok(r))), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(2)));
    api.assert_idle();
}
