//! Pod quarantine against a mock API server that asserts every request: the deny-all
//! NetworkPolicy appears when a pod of the namespace carries `vigil.dev/quarantined=true` and
//! disappears when no pod does any more.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::{Client, client::Body};
use serde_json::{Value, json};
use vigil_operator::quarantine::{self, QuarantineState};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const PODS: &str = "/api/v1/namespaces/shop/pods";
const POLICY: &str = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/vigil-quarantine";

struct Seen {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

async fn next(handle: &mut Handle) -> (Seen, tower_test::mock::SendResponse<Response<Body>>) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(30), handle.next_request())
        .await
        .expect("the operator sent no further request")
        .expect("service not called");
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let bytes = req.into_body().collect_bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
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
            .body(Body::from(serde_json::to_vec(body).expect("json")))
            .expect("response"),
    );
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"vigil.dev/quarantined": "true"}}})
}

/// The pod list with the quarantine selector, answered with `pods`.
async fn expect_pod_list(handle: &mut Handle, pods: Vec<Value>) {
    let (seen, send) = next(handle).await;
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", PODS));
    assert!(
        seen.query
            .contains("labelSelector=vigil.dev%2Fquarantined%3Dtrue"),
        "{}",
        seen.query
    );
    reply(
        send,
        StatusCode::OK,
        &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}),
    );
}

#[tokio::test]
async fn the_network_policy_appears_and_disappears_with_the_label() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");

    // A pod is labelled: the deny-all policy is applied.
    let task = tokio::spawn({
        let client = client.clone();
        async move { quarantine::reconcile_namespace(&client, "shop").await }
    });
    expect_pod_list(&mut handle, vec![pod("web-1")]).await;
    let (seen, send) = next(&mut handle).await;
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("PATCH", POLICY)
    );
    assert!(
        seen.query.contains("fieldManager=vigil-operator") && seen.query.contains("force=true"),
        "{}",
        seen.query
    );
    assert_eq!(seen.body["kind"], "NetworkPolicy");
    assert_eq!(
        seen.body["spec"]["podSelector"],
        json!({"matchLabels": {"vigil.dev/quarantined": "true"}})
    );
    assert_eq!(
        seen.body["spec"]["policyTypes"],
        json!(["Ingress", "Egress"])
    );
    assert!(
        seen.body["spec"].get("ingress").is_none_or(Value::is_null),
        "{}",
        seen.body
    );
    assert!(
        seen.body["spec"].get("egress").is_none_or(Value::is_null),
        "{}",
        seen.body
    );
    reply(send, StatusCode::OK, &seen.body);
    assert_eq!(
        task.await.expect("join").expect("reconcile"),
        QuarantineState::Isolated(1)
    );

    // The label is removed: no pod is selected, the policy is deleted.
    let task = tokio::spawn({
        let client = client.clone();
        async move { quarantine::reconcile_namespace(&client, "shop").await }
    });
    expect_pod_list(&mut handle, vec![]).await;
    let (seen, send) = next(&mut handle).await;
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("DELETE", POLICY)
    );
    reply(
        send,
        StatusCode::OK,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    );
    assert_eq!(
        task.await.expect("join").expect("reconcile"),
        QuarantineState::Lifted
    );

    // Already gone: a 404 on delete is the desired state, not an error.
    let task = tokio::spawn({
        let client = client.clone();
        async move { quarantine::reconcile_namespace(&client, "shop").await }
    });
    expect_pod_list(&mut handle, vec![]).await;
    let (seen, send) = next(&mut handle).await;
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("DELETE", POLICY)
    );
    reply(
        send,
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "not found"}),
    );
    assert_eq!(
        task.await.expect("join").expect("reconcile"),
        QuarantineState::Lifted
    );
}
