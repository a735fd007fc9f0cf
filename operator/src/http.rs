//! `/metrics` (Prometheus text) and `/healthz`.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};

use crate::Metrics;

/// The HTTP routes.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics)
}

async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
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
        metrics.failure("suppression", "api_forbidden");
        assert_eq!(
            get(router(metrics.clone()), "/healthz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        let (status, text) = get(router(metrics), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("vigil_operator_reconcile_failures_total{controller=\"suppression\",error=\"api_forbidden\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
