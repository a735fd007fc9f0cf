//! `/metrics` (Prometheus text), `/healthz` (whether this replica does its work, see
//! [`crate::health`]) and `/livez` (the process answers).

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use kube::Client;

use k8s_openapi::jiff::Timestamp;

use crate::{
    Metrics,
    health::Health,
    kube_auth::{self, Access, AuthError},
};

/// Who may read `/metrics`.
#[derive(Clone, Default)]
pub enum MetricsAuth {
    /// Anyone who can reach the address.
    #[default]
    None,
    /// A caller with a bearer token the API server authenticates (TokenReview) and authorizes
    /// for `get` on the non-resource URL `/metrics` (SubjectAccessReview), as kube-rbac-proxy does.
    Kubernetes(Client),
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    auth: MetricsAuth,
}

/// The HTTP routes.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>, auth: MetricsAuth) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/livez", get(|| async { "ok" }))
        .with_state(Shared {
            metrics,
            health,
            auth,
        })
}

/// `Ok` when the caller may read `/metrics`, else the status and why.
async fn authorize(auth: &MetricsAuth, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let MetricsAuth::Kubernetes(client) = auth else {
        return Ok(());
    };
    let unauthorized = |why: &str| (StatusCode::UNAUTHORIZED, why.to_owned());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    let refused = |e: AuthError| match e {
        AuthError::InvalidToken => unauthorized("the token is not valid"),
        unavailable => (StatusCode::SERVICE_UNAVAILABLE, unavailable.to_string()),
    };
    let user = kube_auth::authenticate(client, token)
        .await
        .map_err(refused)?;
    let access = Access::Url {
        path: "/metrics".to_owned(),
        verb: "get".to_owned(),
    };
    if kube_auth::authorized(client, &user, &access)
        .await
        .map_err(refused)?
    {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            format!("{} may not get /metrics", kube_auth::user_name(&user)),
        ))
    }
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    let report = shared.health.report(Timestamp::now());
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, report.text)
}

async fn metrics_handler(
    State(Shared { metrics, auth, .. }): State<Shared>,
    headers: HeaderMap,
) -> axum::response::Response {
    if let Err(refused) = authorize(&auth, &headers).await {
        return refused.into_response();
    }
    match metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        get_as(router, path, None).await
    }

    /// GET `path`, with `token` as a bearer token when given.
    async fn get_as(router: Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = axum::http::Request::get(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = router
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn healthz_and_metrics_answer() {
        let metrics = Arc::new(Metrics::default());
        let health = Arc::new(Health::default());
        metrics.failure("suppression", "api_forbidden");
        let app = || router(metrics.clone(), health.clone(), MetricsAuth::None);
        assert_eq!(
            get(app(), "/healthz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "starting".to_owned())
        );
        assert_eq!(
            get(app(), "/livez").await,
            (StatusCode::OK, "ok".to_owned())
        );
        health.set_phase(crate::health::Phase::Running);
        health.set_caches_ready(|| true);
        assert_eq!(
            get(app(), "/healthz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        let (status, text) = get(app(), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("vigil_operator_reconcile_failures_total{controller=\"suppression\",error=\"api_forbidden\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    /// A stand-in API server answering TokenReviews (`good` is alice, `denied` is bob, anything
    /// else unauthenticated) and SubjectAccessReviews (alice may get /metrics); every review
    /// body it saw goes to `seen`.
    fn review_server(seen: Arc<std::sync::Mutex<Vec<serde_json::Value>>>) -> kube::Client {
        use kube::client::Body as KubeBody;
        let (service, mut handle) =
            tower_test::mock::pair::<http::Request<KubeBody>, http::Response<KubeBody>>();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let path = req.uri().path().to_owned();
                let bytes = req.into_body().collect_bytes().await.unwrap();
                let mut body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                seen.lock().unwrap().push(body.clone());
                if path.ends_with("/tokenreviews") {
                    body["status"] = match body["spec"]["token"].as_str() {
                        Some("good") => {
                            serde_json::json!({"authenticated": true, "user": {"username": "alice", "groups": ["ops"]}})
                        }
                        Some("denied") => {
                            serde_json::json!({"authenticated": true, "user": {"username": "bob"}})
                        }
                        _ => serde_json::json!({"authenticated": false}),
                    };
                } else {
                    let spec = &body["spec"];
                    let allowed = spec["user"] == "alice"
                        && spec["nonResourceAttributes"]["path"] == "/metrics"
                        && spec["nonResourceAttributes"]["verb"] == "get";
                    body["status"] = serde_json::json!({"allowed": allowed});
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

    #[tokio::test]
    async fn metrics_behind_kubernetes_auth_need_a_token_the_api_server_authorizes() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let auth = MetricsAuth::Kubernetes(review_server(seen.clone()));
        let app = || {
            router(
                Arc::new(Metrics::default()),
                Arc::new(Health::default()),
                auth.clone(),
            )
        };
        let (status, text) = get_as(app(), "/metrics", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        assert!(seen.lock().unwrap().is_empty(), "no token, no review");
        let (status, _) = get_as(app(), "/metrics", Some("forged")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, text) = get_as(app(), "/metrics", Some("denied")).await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::FORBIDDEN, "bob may not get /metrics")
        );
        let (status, text) = get_as(app(), "/metrics", Some("good")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(text.ends_with("# EOF\n"));
        // The access review asked about alice, with her groups, for get /metrics.
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last["spec"]["user"], "alice");
        assert_eq!(last["spec"]["groups"][0], "ops");
        assert_eq!(last["spec"]["nonResourceAttributes"]["path"], "/metrics");
    }
}
