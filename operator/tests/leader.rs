//! Leader election against a mock API server: create when absent, take over an expired Lease with
//! a compare-and-swap replace, follow a valid holder, and lose a race on 409.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use k8s_openapi::jiff::Timestamp;
use kube::{Client, client::Body};
use serde_json::{Value, json};
use vigil_operator::leader::Elector;

const PATH: &str =
    "/apis/coordination.k8s.io/v1/namespaces/vigil-system/leases/vigil-operator-leader";
const NOW: i64 = 1_800_000_000;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

async fn answer(
    handle: &mut Handle,
    method: &str,
    path: &str,
    code: StatusCode,
    body: Value,
) -> Value {
    let (req, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("no request")
        .expect("closed");
    assert_eq!((req.method().as_str(), req.uri().path()), (method, path));
    let bytes = req.into_body().collect_bytes().await.unwrap();
    send.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    }
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404})
}

fn lease(holder: &str, renewed: &str, rv: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": "vigil-operator-leader", "namespace": "vigil-system", "resourceVersion": rv},
           "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed, "leaseTransitions": 2}})
}

fn elector() -> (Elector, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    (
        Elector::new(client, "vigil-system", "vigil-operator-leader", "me", 15),
        handle,
    )
}

fn now() -> Timestamp {
    Timestamp::from_second(NOW).unwrap()
}

#[tokio::test]
async fn absent_lease_is_created() {
    let (e, mut h) = elector();
    let task = tokio::spawn(async move { e.try_acquire_or_renew(now()).await });
    answer(&mut h, "GET", PATH, StatusCode::NOT_FOUND, not_found()).await;
    let created = answer(
        &mut h,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/vigil-system/leases",
        StatusCode::CREATED,
        lease("me", "2027-01-15T08:00:00.000000Z", "1"),
    )
    .await;
    assert_eq!(created["spec"]["holderIdentity"], "me");
    assert_eq!(created["spec"]["leaseDurationSeconds"], 15);
    assert!(task.await.unwrap().unwrap());
}

#[tokio::test]
async fn expired_lease_is_taken_over_with_its_resource_version() {
    let (e, mut h) = elector();
    let task = tokio::spawn(async move { e.try_acquire_or_renew(now()).await });
    // Renewed 60 s before NOW with a 15 s duration: expired.
    answer(
        &mut h,
        "GET",
        PATH,
        StatusCode::OK,
        lease("other", "2027-01-15T07:59:00.000000Z", "41"),
    )
    .await;
    let replaced = answer(
        &mut h,
        "PUT",
        PATH,
        StatusCode::OK,
        lease("me", "2027-01-15T08:00:00.000000Z", "42"),
    )
    .await;
    assert_eq!(
        replaced["metadata"]["resourceVersion"], "41",
        "replace must be a compare-and-swap"
    );
    assert_eq!(replaced["spec"]["holderIdentity"], "me");
    assert_eq!(replaced["spec"]["leaseTransitions"], 3);
    assert!(task.await.unwrap().unwrap());
}

#[tokio::test]
async fn valid_foreign_lease_is_followed_without_writing() {
    let (e, mut h) = elector();
    let task = tokio::spawn(async move { e.try_acquire_or_renew(now()).await });
    answer(
        &mut h,
        "GET",
        PATH,
        StatusCode::OK,
        lease("other", "2027-01-15T07:59:59.000000Z", "41"),
    )
    .await;
    assert!(!task.await.unwrap().unwrap());
}

#[tokio::test]
async fn lost_race_on_conflict_is_not_leadership() {
    let (e, mut h) = elector();
    let task = tokio::spawn(async move { e.try_acquire_or_renew(now()).await });
    answer(
        &mut h,
        "GET",
        PATH,
        StatusCode::OK,
        lease("me", "2027-01-15T07:59:59.000000Z", "41"),
    )
    .await;
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Conflict", "code": 409});
    answer(&mut h, "PUT", PATH, StatusCode::CONFLICT, conflict).await;
    assert!(!task.await.unwrap().unwrap());
}
