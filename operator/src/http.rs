//! `/metrics` (Prometheus text), `/healthz` (whether this replica does its work, see
//! [`crate::health`]) and `/livez` (the process answers).

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};

use k8s_openapi::jiff::Timestamp;

use crate::{Metrics, health::Health};

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The HTTP routes.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/livez", get(|| async { "ok" }))
        .with_state(Shared { metrics, health })
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

async fn metrics_handler(State(Shared { metrics, .. }): State<Shared>) -> impl IntoResponse {
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
        let res = router
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
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
        let app = || router(metrics.clone(), health.clone());
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
}
