//! The console over the cluster backend, at the HTTP level: the backend's reflectors list and
//! watch a mock API server (RuntimeFindings, NodeCoverages, Leases, Nodes, policies, rules), its
//! writes land there, and a stand-in API server answers TokenReviews and SubjectAccessReviews
//! (alice may do everything, carol may only patch RuntimeFindings, bob nothing).

#[path = "../../node-agent/tests/support/mock_api.rs"]
#[allow(dead_code, reason = "shared test support; this test uses part of it")]
mod mock_api;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use k8s_openapi::api::core::v1::ConfigMap;
use mock_api::MockApi;
use serde_json::{Value, json};
use tower::ServiceExt;
use vigil_console::ConsoleOptions;
use vigil_crds::{NodeCoverage, RuntimeFinding, SuppressionRule};
use vigil_operator::console::{ClusterBackend, ConsoleStores, KubeGate};

const NS: &str = "vigil-system";
const HOST: &str = "localhost:8765";

fn finding(id: &str, ns: &str, pod: &str, process: &str, remote: &str, severity: f64) -> Value {
    let label = match severity {
        s if s >= 9.0 => "Critical",
        s if s >= 7.0 => "High",
        s if s >= 4.0 => "Medium",
        _ => "Low",
    };
    json!({
        "apiVersion": "vigil.dev/v1alpha1", "kind": "RuntimeFinding",
        "metadata": {"name": id, "namespace": ns},
        "spec": {
            "id": id, "schemaVersion": "1.0", "type": "Backdoor:Runtime/C&CActivity.B",
            "title": format!("{process} talked to {remote}"), "description": "d",
            "severity": severity, "severityLabel": label,
            "createdAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-01T10:00:00Z",
            "resource": {"displayName": format!("{ns}/{pod}/app"),
                "host": {"hostname": "node-a", "nodeName": "node-a"},
                "pod": {"name": pod, "namespace": ns},
                "container": {"name": "app", "id": "c1", "image": "shop:1"}},
            "resourceRole": "ACTOR", "count": 3,
            "eventFirstSeen": "2026-12-01T10:00:00Z", "eventLastSeen": "2026-12-01T11:00:00Z",
            "process": {"name": process, "executablePath": format!("/usr/bin/{process}"), "pid": 42},
            "context": {"additional": {"mitreTechniques": "T1071"}},
            "network": {"connectionDirection": "OUTBOUND", "protocol": "TCP",
                "remoteIp": remote, "remotePort": 443}
        }
    })
}

/// The mock cluster: three findings (one archived by a rule), two covered nodes (one healthy
/// with a heartbeat, one not reporting), a third node no policy covers, a policy naming a
/// trusted list, a rule.
fn cluster() -> MockApi {
    let api = MockApi::start();
    api.register::<NodeCoverage>(false);
    api.put_json(
        "runtimefindings.vigil.dev",
        finding("f-shop-1", "shop", "web-1", "nc", "203.0.113.7", 8.0),
    );
    api.put_json(
        "runtimefindings.vigil.dev",
        finding("f-shop-2", "shop", "web-2", "curl", "198.51.100.4", 5.0),
    );
    let mut archived = finding("f-bank-1", "bank", "api-1", "nc", "203.0.113.8", 9.5);
    archived["status"] = json!({"archived": true, "archivedBy": "quiet-nc"});
    api.put_json("runtimefindings.vigil.dev", archived);
    for (node, cpus) in [("node-a", "4"), ("node-b", "2000m"), ("node-c", "8")] {
        api.put_json(
            "nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
                "status": {"capacity": {"cpu": cpus, "memory": "8Gi"},
                    "nodeInfo": {"kernelVersion": "6.8.0", "machineID": "", "systemUUID": "", "bootID": "",
                        "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "",
                        "operatingSystem": "linux", "architecture": "amd64", "osImage": ""}}}),
        );
    }
    api.put_json(
        "nodecoverages.vigil.dev",
        json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "NodeCoverage", "metadata": {"name": "node-a"},
            "spec": {"policy": "all-linux", "status": "Healthy", "covered": true,
                "since": "2026-12-01T00:00:00Z", "agentVersion": "0.1.0", "kernelVersion": "6.8.0",
                "activeHookCount": 12}}),
    );
    api.put_json(
        "nodecoverages.vigil.dev",
        json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "NodeCoverage", "metadata": {"name": "node-b"},
            "spec": {"policy": "all-linux", "status": "Unhealthy", "covered": false,
                "since": "2026-12-01T00:00:00Z", "issueType": "AgentNotReporting",
                "issue": "AgentNotReporting: no heartbeat for 10 minutes"}}),
    );
    let health = json!({"schemaVersion": 1, "agentVersion": "0.1.0", "kernelVersion": "6.8.0",
        "btfAvailable": true, "eventsPerSecond": 123.5, "droppedEventsPerSecond": 0.0,
        "droppedEventsTotal": 17});
    api.put_json(
        "leases",
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "vigil-agent-node-a", "namespace": NS,
                "labels": {"vigil.dev/node": "node-a", "vigil.dev/policy": "all-linux",
                    "app.kubernetes.io/component": "agent-heartbeat"},
                "annotations": {"vigil.dev/agent-health": health.to_string()}},
            "spec": {"holderIdentity": "agent-x", "renewTime": "2026-12-04T23:59:00.000000Z",
                "leaseDurationSeconds": 60}}),
    );
    api.put_json(
        "runtimemonitoringpolicies.vigil.dev",
        json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "RuntimeMonitoringPolicy",
            "metadata": {"name": "all-linux"},
            "spec": {"trustedIpLists": [{"listName": "corporate-egress",
                "configMapName": "vigil-trusted-ips", "key": "egress.txt"}]}}),
    );
    api.put_json(
        "suppressionrules.vigil.dev",
        json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "SuppressionRule",
            "metadata": {"name": "quiet-nc"},
            "spec": {"description": "nc in bank", "criteria": {"criterion": {"process.name": {"equals": ["nc"]}}}},
            "status": {"matchedFindings": 2, "archivedFindings": 1}}),
    );
    api
}

/// A stand-in API server for the reviews: token `alice` (may do anything), `carol` (may only
/// patch runtimefindings), `bob` (may do nothing); any other token is not valid. Every
/// SubjectAccessReview spec it saw goes to `seen`.
fn reviewer(seen: Arc<Mutex<Vec<Value>>>) -> kube::Client {
    use kube::client::Body as KubeBody;
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<KubeBody>, http::Response<KubeBody>>();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let path = req.uri().path().to_owned();
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let mut body: Value = serde_json::from_slice(&bytes).unwrap();
            if path.ends_with("/tokenreviews") {
                body["status"] = match body["spec"]["token"].as_str() {
                    Some(user @ ("alice" | "bob" | "carol")) => {
                        json!({"authenticated": true, "user": {"username": user, "groups": ["ops"]}})
                    }
                    _ => json!({"authenticated": false}),
                };
            } else {
                let spec = body["spec"].clone();
                seen.lock().unwrap().push(spec.clone());
                let r = &spec["resourceAttributes"];
                let allowed = match spec["user"].as_str() {
                    Some("alice") => true,
                    Some("carol") => r["verb"] == "patch" && r["resource"] == "runtimefindings",
                    _ => false,
                };
                body["status"] = json!({"allowed": allowed});
            }
            send.send_response(
                http::Response::builder()
                    .status(201)
                    .body(KubeBody::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    kube::Client::new(service, "default")
}

struct Console {
    api: MockApi,
    router: Router,
    reviews: Arc<Mutex<Vec<Value>>>,
}

async fn console() -> Console {
    let api = cluster();
    let client = api.client();
    let (stores, watches) = ConsoleStores::watch(&client, NS);
    tokio::spawn(watches);
    // Wait (with a deadline) until every cache has its first list.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stores.findings.state().len() < 3
        || stores.node_coverage.state().len() < 2
        || stores.nodes.state().len() < 3
        || stores.leases.state().is_empty()
        || stores.policies.state().is_empty()
        || stores.rules.state().is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the console's caches did not fill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backend = Arc::new(ClusterBackend::new(client, stores, NS, "test-cluster"));
    let reviews = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(KubeGate::new(reviewer(reviews.clone()), backend.clone()));
    let options = ConsoleOptions {
        read_only: None,
        allowed_hosts: vec!["localhost".into()],
        price_per_vcpu_hour: 0.01,
        gate: Some(gate),
    };
    let router = vigil_console::router(backend, options).expect("the router");
    Console {
        api,
        router,
        reviews,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(router: &Router, path: &str, token: Option<&str>) -> Answer {
    let mut r = Request::get(path).header(header::HOST, HOST);
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    send(router, r.body(Body::empty()).unwrap()).await
}

async fn post(router: &Router, path: &str, token: Option<&str>, form: &[(&str, &str)]) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut r = Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    send(router, r.body(Body::from(body)).unwrap()).await
}

fn csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned()
}

fn row_ids(html: &str) -> Vec<String> {
    html.split("<tr data-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_read_the_reflected_objects_and_are_read_only_without_a_token() {
    let c = console().await;
    for (path, marker) in [
        ("/", "Findings by severity over time"),
        ("/findings", "findings-table"),
        ("/findings/f-shop-1", "Process lineage"),
        ("/findings/f-shop-1/suppress", "preview-count"),
        ("/findings/f-shop-1/trust", "trust-form"),
        ("/coverage", "coverage-table"),
        ("/usage", "usage-table"),
        ("/settings", "rules-table"),
    ] {
        let a = get(&c.router, path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(a.body.contains(marker), "{path} lacks {marker}");
        assert!(a.body.contains("cluster: test-cluster"), "{path}");
        // Without a token: read-only, and the page says why and offers to sign in.
        assert!(a.body.contains("id=\"read-only\""), "{path}");
        assert!(a.body.contains("kubectl port-forward"), "{path}");
        assert!(a.body.contains("id=\"sign-in\""), "{path}");
    }
    let a = get(&c.router, "/findings/f-shop-1", None).await;
    assert!(!a.body.contains("archive-button"), "no actions read-only");
    // With a token the actions show (each is checked when taken).
    let a = get(&c.router, "/findings/f-shop-1", Some("bob")).await;
    assert!(a.body.contains("archive-button") && a.body.contains("trust-link"));
    assert!(a.body.contains("id=\"sign-out\""));

    // Filters, sorting and paging run over the store.
    let ids = |raw: &str| {
        let router = c.router.clone();
        let path = format!("/findings?{raw}");
        async move { row_ids(&get(&router, &path, None).await.body) }
    };
    // Equal times: ties by id, in the same direction (as the host store orders them).
    assert_eq!(ids("").await, ["f-shop-2", "f-shop-1"]);
    assert_eq!(ids("status=archived").await, ["f-bank-1"]);
    assert_eq!(
        ids("status=all&process=nc&sort=severity&order=desc").await,
        ["f-bank-1", "f-shop-1"]
    );
    assert_eq!(ids("resource=shop/web-2").await, ["f-shop-2"]);
    assert_eq!(ids("remote=203.0.113.7").await, ["f-shop-1"]);
    assert_eq!(ids("severity=medium").await, ["f-shop-2"]);
    assert_eq!(
        ids("size=1&page=2&sort=severity&order=desc").await,
        ["f-shop-2"]
    );
    let archived = get(&c.router, "/findings/f-bank-1", None).await;
    assert!(
        archived
            .body
            .contains("by suppression rule <strong>quiet-nc"),
        "{}",
        archived.body
    );

    // Coverage: NodeCoverage objects with their heartbeat and vCPUs; an uncovered node too.
    let a = get(&c.router, "/coverage", None).await;
    assert!(
        a.body.contains("node-a") && a.body.contains("123.5"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("AgentNotReporting: no heartbeat for 10 minutes")
    );
    assert!(
        a.body
            .contains("no RuntimeMonitoringPolicy covers this node")
    );
    let a = get(&c.router, "/coverage?status=unhealthy", None).await;
    assert!(
        a.body.contains("node-b") && !a.body.contains(">node-a<"),
        "{}",
        a.body
    );
    // Usage: node-a's 4 vCPUs; the page says what is approximated.
    let a = get(&c.router, "/usage", None).await;
    assert!(
        a.body.contains("node-a") && a.body.contains("Approximate"),
        "{}",
        a.body
    );
    // Settings: the policy's trusted list, the rule with its count.
    let a = get(&c.router, "/settings", None).await;
    assert!(a.body.contains("corporate-egress"), "{}", a.body);
    assert!(a.body.contains("id=\"rule-quiet-nc\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_needs_a_token_the_api_server_authorizes_for_patch_runtimefindings() {
    let c = console().await;
    let page = get(&c.router, "/findings/f-shop-1", Some("alice")).await;
    let token = csrf(&page.body);
    let archive = |who: Option<&'static str>, csrf: String| {
        let router = c.router.clone();
        async move {
            post(
                &router,
                "/findings/f-shop-1/archive",
                who,
                &[("csrf", &csrf), ("archived", "true")],
            )
            .await
        }
    };
    // No token: read-only.
    let a = archive(None, token.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("read-only"));
    // A token the API server does not accept.
    let a = archive(Some("mallory"), token.clone()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    // Bob is known and may not.
    let a = archive(Some("bob"), token.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(
        a.body
            .contains("bob may not patch runtimefindings.vigil.dev f-shop-1 in namespace shop"),
        "{}",
        a.body
    );
    // The CSRF token is checked before anyone is asked.
    let before = c.reviews.lock().unwrap().len();
    let a = archive(Some("alice"), "stale".into()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(c.reviews.lock().unwrap().len(), before);
    // Carol may patch RuntimeFindings: archived, in the API server and on the page.
    let a = archive(Some("carol"), token.clone()).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let stored: RuntimeFinding = c.api.get(Some("shop"), "f-shop-1").expect("the finding");
    let status = stored.status.expect("a status");
    assert!(status.archived && status.archived_by.is_none());
    let review = c.reviews.lock().unwrap().last().cloned().unwrap();
    assert_eq!(review["user"], "carol");
    assert_eq!(review["groups"][0], "ops");
    assert_eq!(
        review["resourceAttributes"],
        json!({"verb": "patch", "group": "vigil.dev", "resource": "runtimefindings",
            "namespace": "shop", "name": "f-shop-1"})
    );
    let a = get(&c.router, "/findings?status=archived", None).await;
    assert_eq!(row_ids(&a.body), ["f-shop-1", "f-bank-1"]);
    // Unarchive the one a rule archived: the rule's name goes with it.
    let a = post(
        &c.router,
        "/findings/f-bank-1/archive",
        Some("carol"),
        &[("csrf", &token), ("archived", "false")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let stored: RuntimeFinding = c.api.get(Some("bank"), "f-bank-1").expect("the finding");
    let status = stored.status.expect("a status");
    assert!(!status.archived && status.archived_by.is_none());
    let a = get(&c.router, "/findings", None).await;
    assert_eq!(row_ids(&a.body), ["f-shop-2", "f-bank-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppress_creates_a_suppression_rule_when_create_is_authorized() {
    let c = console().await;
    let a = get(&c.router, "/findings/f-shop-1/suppress", Some("alice")).await;
    // type, executable and namespace are ticked: only f-shop-1 among the active ones.
    assert!(a.body.contains("id=\"preview-count\">1<"), "{}", a.body);
    let token = csrf(&a.body);
    let form = [
        ("csrf", token.as_str()),
        ("crit", "type"),
        ("crit", "process.executablePath"),
        ("name", "quiet-shop-nc"),
        ("description", "nc in the shop is a health check"),
    ];
    let a = post(
        &c.router,
        "/findings/f-shop-1/suppress",
        Some("carol"),
        &form,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(
        a.body
            .contains("carol may not create suppressionrules.vigil.dev"),
        "{}",
        a.body
    );
    assert!(
        c.api
            .get::<SuppressionRule>(None, "quiet-shop-nc")
            .is_none()
    );
    let a = post(
        &c.router,
        "/findings/f-shop-1/suppress",
        Some("alice"),
        &form,
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let rule: SuppressionRule = c.api.get(None, "quiet-shop-nc").expect("the rule");
    assert_eq!(rule.spec.description, "nc in the shop is a health check");
    assert!(
        rule.spec
            .criteria
            .criterion
            .contains_key("process.executablePath")
    );
    // The same name again is refused and named.
    let a = post(
        &c.router,
        "/findings/f-shop-1/suppress",
        Some("alice"),
        &form,
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(a.body.contains("exists already"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_address_goes_into_the_policys_trusted_list_config_map() {
    let c = console().await;
    let a = get(&c.router, "/findings/f-shop-1/trust", Some("alice")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.body
            .contains("ConfigMap vigil-system/vigil-trusted-ips, key egress.txt"),
        "{}",
        a.body
    );
    assert!(a.body.contains("created by adding"), "{}", a.body);
    let token = csrf(&a.body);
    let add = |who: &'static str, net: &'static str| {
        let router = c.router.clone();
        let token = token.clone();
        async move {
            post(
                &router,
                "/findings/f-shop-1/trust",
                Some(who),
                &[
                    ("csrf", &token),
                    ("list", "vigil-trusted-ips/egress.txt"),
                    ("net", net),
                ],
            )
            .await
        }
    };
    let a = add("carol", "203.0.113.7").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(
        a.body.contains(
            "carol may not update configmaps vigil-trusted-ips in namespace vigil-system"
        ),
        "{}",
        a.body
    );
    let a = add("alice", "203.0.0.0/16").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    // Created with the key when the ConfigMap does not exist.
    let a = add("alice", "203.0.113.7").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let cm: ConfigMap = c
        .api
        .get(Some(NS), "vigil-trusted-ips")
        .expect("the ConfigMap");
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("egress.txt"))
        .cloned()
        .unwrap();
    assert!(
        text.ends_with("from finding f-shop-1 (Backdoor:Runtime/C&CActivity.B)\n203.0.113.7\n"),
        "{text}"
    );
    // An existing ConfigMap keeps its other keys and lines.
    c.api.put_json(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "vigil-trusted-ips", "namespace": NS},
            "data": {"egress.txt": "198.51.100.0/24\n", "other.txt": "192.0.2.1\n"}}),
    );
    let a = get(&c.router, "/findings/f-shop-1/trust", Some("alice")).await;
    assert!(a.body.contains("(1 entry)"), "{}", a.body);
    let a = add("alice", "203.0.113.0/24").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let cm: ConfigMap = c
        .api
        .get(Some(NS), "vigil-trusted-ips")
        .expect("the ConfigMap");
    let data = cm.data.unwrap();
    assert!(data["egress.txt"].starts_with("198.51.100.0/24\n# Added by the Vigil console"));
    assert!(data["egress.txt"].ends_with("\n203.0.113.0/24\n"));
    assert_eq!(data["other.txt"], "192.0.2.1\n");
    let review = c.reviews.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        review["resourceAttributes"],
        json!({"verb": "update", "group": "", "resource": "configmaps",
            "namespace": NS, "name": "vigil-trusted-ips"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_keeps_a_reviewed_token_in_an_http_only_cookie() {
    let c = console().await;
    let a = get(&c.router, "/", None).await;
    let token = csrf(&a.body);
    let a = post(
        &c.router,
        "/session",
        None,
        &[("csrf", &token), ("token", "nobody")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let a = post(&c.router, "/session", None, &[("token", "alice")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no CSRF token");
    let a = post(
        &c.router,
        "/session",
        None,
        &[("csrf", &token), ("token", "alice")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let cookie = a.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("vigil-token=alice;"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    // The cookie acts as the token.
    let archive = Request::post("/findings/f-shop-2/archive")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, "vigil-token=alice")
        .body(Body::from(format!("csrf={token}&archived=true")))
        .unwrap();
    let a = send(&c.router, archive).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let a = post(&c.router, "/session/end", None, &[("csrf", &token)]).await;
    assert!(
        a.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}
