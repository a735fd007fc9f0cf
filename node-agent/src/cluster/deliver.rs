//! Sending the spool to the API server, in order, through outages.
//!
//! One entry at a time, oldest first (head of line: a finding's updates and Events reach the
//! cluster in the order they were made). Retryable failures (no connection, 5xx, 429, 408, 401,
//! a 409 conflict on an apply, a 404 for a path the server does not serve yet, e.g. the CRD not
//! installed) back off exponentially and retry the same entry; `Retry-After` (header or the
//! Status' `retryAfterSeconds`) is honoured. Permanent refusals (400, 403, 404 of a namespace or
//! object, 413, 422, ...) are logged with the entry, counted as rejected and acknowledged, so one
//! bad entry cannot wedge the queue. A 409 on an Event creation means an earlier attempt already
//! created it (the name is deterministic): acknowledged.

use std::{
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::events::v1::Event;
use kube::{
    Client, Resource as _,
    api::{Patch, PatchParams, PostParams},
    client::Body,
    core::{Request, Status},
};
use vigil_crds::{RuntimeFinding, finding::RuntimeFindingStatus, lease::PublishingHealth};

use super::{
    publish::{Action, PublishStats, runtime_finding_object},
    spool::{Spool, SpoolError},
};

/// Field manager of the agent's server-side applies unless told otherwise.
pub const DEFAULT_FIELD_MANAGER: &str = "vigil-node-agent";
/// First retry delay.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Longest retry delay (and longest `Retry-After` honoured).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Most of an error body kept in messages.
const MESSAGE_MAX: usize = 300;

/// What delivery counted; shared with the heartbeat.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// RuntimeFinding applies the API server accepted.
    pub findings_written: AtomicU64,
    /// Events the API server created.
    pub events_written: AtomicU64,
    /// Events found already created (409 on a retried creation).
    pub already_delivered: AtomicU64,
    /// Retries after retryable failures.
    pub retries: AtomicU64,
    /// Entries refused for good (4xx), logged and dropped.
    pub rejected: AtomicU64,
    /// Spool read or write failures (including corrupt entries dropped).
    pub spool_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`DeliveryStats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliverySnapshot {
    /// RuntimeFinding applies accepted.
    pub findings_written: u64,
    /// Events created.
    pub events_written: u64,
    /// Events found already created.
    pub already_delivered: u64,
    /// Retries.
    pub retries: u64,
    /// Entries refused for good.
    pub rejected: u64,
    /// Spool failures.
    pub spool_errors: u64,
    /// The latest failure, if any.
    pub last_error: Option<String>,
}

impl DeliveryStats {
    /// The counters now.
    pub fn snapshot(&self) -> DeliverySnapshot {
        DeliverySnapshot {
            findings_written: self.findings_written.load(Ordering::Relaxed),
            events_written: self.events_written.load(Ordering::Relaxed),
            already_delivered: self.already_delivered.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            spool_errors: self.spool_errors.load(Ordering::Relaxed),
            last_error: self.last_error(),
        }
    }

    /// The latest delivery failure (retryable or not), if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_last_error(&self, error: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The heartbeat's view of publishing, from the publisher's and delivery's counters and the
/// spool's state.
pub fn publishing_health(
    publish: &PublishStats,
    delivery: &DeliverySnapshot,
    spool_pending: u64,
    spool_lost: u64,
) -> PublishingHealth {
    PublishingHealth {
        findings_published: delivery.findings_written,
        findings_over_cap: publish.over_cap_findings,
        events_over_cap: publish.over_cap_events,
        spool_pending,
        spool_lost,
        rejected: delivery.rejected,
    }
}

/// How delivery behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverOptions {
    /// Field manager of the server-side applies and creations.
    pub field_manager: String,
    /// First retry delay; doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay; also caps a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl DeliverOptions {
    /// The defaults with `field_manager`.
    pub fn new(field_manager: &str) -> Self {
        Self {
            field_manager: field_manager.to_owned(),
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

/// What became of one attempt to send an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted.
    Delivered,
    /// An Event that already exists: an earlier attempt created it.
    AlreadyDelivered,
    /// Refused for good: log, count, drop.
    Rejected {
        /// HTTP status.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// Try the same entry again.
    Retry {
        /// When the server asked to be retried, if it said.
        after: Option<Duration>,
        /// Why, for logs and the heartbeat.
        reason: String,
    },
}

/// Exponential backoff between `min` and `max`.
#[derive(Debug, Clone)]
struct Backoff {
    min: Duration,
    max: Duration,
    current: Option<Duration>,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            current: None,
        }
    }

    fn next(&mut self) -> Duration {
        let d = self
            .current
            .map_or(self.min, |c| c.saturating_mul(2).min(self.max));
        self.current = Some(d);
        d
    }

    fn reset(&mut self) {
        self.current = None;
    }
}

fn lock(spool: &Mutex<Spool>) -> MutexGuard<'_, Spool> {
    spool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends spool entries in order until the spool is empty, then waits for `wake` (whoever pushes
/// to the spool calls `wake.notify_one()`), forever. See the module doc for what is retried and
/// what is dropped.
pub async fn run(
    client: Client,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<tokio::sync::Notify>,
    stats: Arc<DeliveryStats>,
    field_manager: &str,
) {
    run_with(
        client,
        spool,
        wake,
        stats,
        DeliverOptions::new(field_manager),
    )
    .await;
}

/// [`run`] with explicit options.
pub async fn run_with(
    client: Client,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<tokio::sync::Notify>,
    stats: Arc<DeliveryStats>,
    options: DeliverOptions,
) {
    loop {
        deliver_pending(&client, &spool, &stats, &options).await;
        wake.notified().await;
    }
}

/// Sends spool entries in order until the spool is empty; returns how many entries were
/// settled (delivered, found delivered, or rejected). Retries forever while the API server
/// fails.
pub async fn deliver_pending(
    client: &Client,
    spool: &Mutex<Spool>,
    stats: &DeliveryStats,
    options: &DeliverOptions,
) -> u64 {
    let mut backoff = Backoff::new(options.min_backoff, options.max_backoff);
    let mut settled = 0;
    let mut failing: u64 = 0;
    loop {
        let head = lock(spool).peek();
        let (seq, action) = match head {
            Ok(Some(head)) => head,
            Ok(None) => return settled,
            Err(error @ SpoolError::Corrupt { .. }) => {
                tracing::error!(%error, "spool entry dropped");
                DeliveryStats::inc(&stats.spool_errors);
                stats.set_last_error(error.to_string());
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "cannot read the spool; retrying");
                DeliveryStats::inc(&stats.spool_errors);
                stats.set_last_error(error.to_string());
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
        };
        let outcome = send(client, &action, &options.field_manager).await;
        match outcome {
            SendOutcome::Delivered | SendOutcome::AlreadyDelivered => {
                let counter = match (&outcome, &action) {
                    (SendOutcome::AlreadyDelivered, _) => &stats.already_delivered,
                    (_, Action::Apply { .. }) => &stats.findings_written,
                    (_, Action::Event { .. }) => &stats.events_written,
                };
                DeliveryStats::inc(counter);
                if failing > 0 {
                    tracing::info!(retries = failing, "the API server accepts findings again");
                    failing = 0;
                }
                backoff.reset();
            }
            SendOutcome::Rejected { code, message } => {
                let entry = serde_json::to_string(&action).unwrap_or_default();
                tracing::warn!(
                    what = %action.describe(),
                    code,
                    %message,
                    %entry,
                    "the API server refused a spool entry; dropped"
                );
                DeliveryStats::inc(&stats.rejected);
                stats.set_last_error(format!("{}: {code} {message}", action.describe()));
            }
            SendOutcome::Retry { after, reason } => {
                DeliveryStats::inc(&stats.retries);
                stats.set_last_error(format!("{}: {reason}", action.describe()));
                let delay = after.map_or_else(|| backoff.next(), |a| a.min(options.max_backoff));
                if failing == 0 {
                    tracing::warn!(what = %action.describe(), %reason, ?delay, "delivery failed; retrying");
                } else {
                    tracing::debug!(what = %action.describe(), %reason, ?delay, retries = failing, "delivery failed again; retrying");
                }
                failing += 1;
                tokio::time::sleep(delay).await;
                continue;
            }
        }
        settled += 1;
        let acked = lock(spool).ack(seq);
        if let Err(error) = acked {
            // The entry stays and is sent again: applies are idempotent, Events meet 409.
            tracing::error!(%error, "cannot remove a delivered entry from the spool");
            DeliveryStats::inc(&stats.spool_errors);
            stats.set_last_error(error.to_string());
            tokio::time::sleep(backoff.next()).await;
        }
    }
}

/// Sends one action: the RuntimeFinding's server-side apply (then its status when archived), or
/// the Event's creation.
pub async fn send(client: &Client, action: &Action, field_manager: &str) -> SendOutcome {
    match action {
        Action::Apply {
            namespace,
            name,
            finding,
            archived_by,
            archived_at,
        } => {
            let request = Request::new(RuntimeFinding::url_path(&(), Some(namespace)));
            let params = PatchParams::apply(field_manager).force();
            let object = runtime_finding_object(namespace, name, finding);
            let spec = request.patch(name, &params, &Patch::Apply(&object));
            let outcome = match spec {
                Ok(http) => execute(client, http, false).await,
                Err(e) => return build_error(&e),
            };
            let Some(rule) = archived_by else {
                return outcome;
            };
            if outcome != SendOutcome::Delivered {
                return outcome;
            }
            let status = serde_json::json!({
                "apiVersion": RuntimeFinding::api_version(&()),
                "kind": RuntimeFinding::kind(&()),
                "status": RuntimeFindingStatus {
                    archived: true,
                    archived_by: Some(rule.clone()),
                    archived_at: Some(archived_at.clone().unwrap_or_else(|| finding.updated_at.clone())),
                },
            });
            match request.patch_subresource("status", name, &params, &Patch::Apply(&status)) {
                Ok(http) => execute(client, http, false).await,
                Err(e) => build_error(&e),
            }
        }
        Action::Event { namespace, event } => {
            let request = Request::new(Event::url_path(&(), Some(namespace)));
            let params = PostParams {
                field_manager: Some(field_manager.to_owned()),
                ..PostParams::default()
            };
            let body = match serde_json::to_vec(event) {
                Ok(b) => b,
                Err(e) => {
                    return SendOutcome::Rejected {
                        code: 0,
                        message: format!("cannot serialise the Event: {e}"),
                    };
                }
            };
            match request.create(&params, body) {
                Ok(http) => execute(client, http, true).await,
                Err(e) => build_error(&e),
            }
        }
    }
}

/// A request that cannot even be built (e.g. an invalid name) never will be.
fn build_error(e: &kube::core::request::Error) -> SendOutcome {
    SendOutcome::Rejected {
        code: 0,
        message: format!("cannot build the request: {e}"),
    }
}

async fn execute(
    client: &Client,
    request: http::Request<Vec<u8>>,
    event_create: bool,
) -> SendOutcome {
    let response = match client.send(request.map(Body::from)).await {
        Ok(r) => r,
        Err(e) => {
            return SendOutcome::Retry {
                after: None,
                reason: format!("request failed: {e}"),
            };
        }
    };
    let code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Read the body in full, also on success, so the connection can be reused.
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    classify(code, retry_after, &body, event_create)
}

/// What an API server answer means for the entry: `code` the HTTP status, `retry_after` from the
/// header, `body` the response body (a `Status` for errors), `event_create` whether the request
/// created an Event.
pub fn classify(
    code: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    event_create: bool,
) -> SendOutcome {
    if (200..300).contains(&code) {
        return SendOutcome::Delivered;
    }
    let status: Option<Status> = serde_json::from_slice(body).ok();
    let message = match &status {
        Some(s) if !s.message.is_empty() => s.message.clone(),
        _ => {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(MESSAGE_MAX).collect()
        }
    };
    let retry_after = retry_after.or_else(|| {
        status
            .as_ref()
            .and_then(|s| s.details.as_ref())
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(u64::from(s)))
    });
    // A 404 naming what is missing (a namespace, the object) is permanent; a bare one means the
    // server does not serve the path (yet): the CRD is not installed.
    let names_missing = status
        .as_ref()
        .and_then(|s| s.details.as_ref())
        .is_some_and(|d| !d.kind.is_empty());
    let retry = |reason: &str| SendOutcome::Retry {
        after: retry_after,
        reason: format!("{code} {reason}: {message}"),
    };
    match code {
        409 if event_create => SendOutcome::AlreadyDelivered,
        401 => retry("unauthorized (credentials may be renewing)"),
        404 if !names_missing => retry("path not served"),
        408 | 409 | 429 => retry("transient"),
        400..=499 => SendOutcome::Rejected { code, message },
        _ => retry("server error"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use http::{Method, Response, StatusCode};
    use serde_json::{Value, json};

    use super::*;
    use crate::cluster::{
        publish::{
            Publisher,
            tests::{config, finding},
        },
        spool::SpoolLimits,
    };

    type Handle = tower_test::mock::Handle<http::Request<Body>, Response<Body>>;
    type Send = tower_test::mock::SendResponse<Response<Body>>;

    /// One request as delivery sent it.
    #[derive(Debug)]
    struct Seen {
        method: Method,
        path: String,
        query: String,
        body: Value,
        at: tokio::time::Instant,
    }

    async fn next(handle: &mut Handle) -> (Seen, Send) {
        let (req, send) = tokio::time::timeout(Duration::from_secs(600), handle.next_request())
            .await
            .expect("delivery sent no further request")
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
        let seen = Seen {
            method,
            path,
            query,
            body,
            at: tokio::time::Instant::now(),
        };
        (seen, send)
    }

    fn reply(send: Send, code: StatusCode, headers: &[(&str, &str)], body: &Value) {
        let mut b = Response::builder().status(code);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        send.send_response(
            b.body(Body::from(serde_json::to_vec(body).unwrap()))
                .unwrap(),
        );
    }

    fn status(code: u16, reason: &str, details: Value) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{reason} by test"), "reason": reason, "code": code, "details": details})
    }

    /// A spool in a directory of its own, removed with the returned guard.
    fn temp_spool(name: &str) -> (tempfile::TempDir, Arc<Mutex<Spool>>) {
        let (dir, path) = crate::scratch_path(&format!("vigil-deliver-{name}-"), "spool.db");
        let spool = Spool::open(&path, SpoolLimits::default()).unwrap();
        (dir, Arc::new(Mutex::new(spool)))
    }

    fn options() -> DeliverOptions {
        DeliverOptions::new("vigil-test")
    }

    /// The mock API, the spool, the stats, the delivery task and the actions spooled.
    type Setup = (
        Handle,
        Arc<Mutex<Spool>>,
        Arc<DeliveryStats>,
        tokio::task::JoinHandle<u64>,
        Vec<Action>,
    );

    /// Three findings (the second with an Event) pushed to a spool, and the delivery task.
    fn setup(name: &str, archived: bool) -> Setup {
        let (_scratch, spool) = temp_spool(name);
        let mut p = Publisher::new(config());
        let now = Instant::now();
        let mut actions = Vec::new();
        actions.extend(p.on_finding(&finding("a", 5.0, Some(("shop", "web-1"))), true, None, now));
        actions.extend(p.on_finding(&finding("b", 9.0, Some(("shop", "web-1"))), true, None, now));
        let mut c = finding("c", 5.0, None);
        c.archived = archived;
        actions.extend(p.on_finding(&c, true, archived.then_some("allow-ci"), now));
        for a in &actions {
            lock(&spool).push(a).unwrap();
        }
        let (service, handle) = tower_test::mock::pair::<http::Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let stats = Arc::new(DeliveryStats::default());
        let task = {
            let (spool, stats) = (spool.clone(), stats.clone());
            tokio::spawn(async move { deliver_pending(&client, &spool, &stats, &options()).await })
        };
        (handle, spool, stats, task, actions)
    }

    const FINDINGS: &str = "/apis/vigil.dev/v1alpha1/namespaces";
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces";

    #[tokio::test(start_paused = true)]
    async fn outage_then_throttling_then_success_keeps_order_and_delivers_all() {
        let (mut api, spool, stats, task, actions) = setup("outage", false);
        assert_eq!(actions.len(), 4);
        let first = format!("{FINDINGS}/shop/runtimefindings/finding-a");
        // 500 twice: backoff 200 ms then 400 ms, same entry.
        let (s0, send) = next(&mut api).await;
        assert_eq!(
            (s0.method.as_str(), s0.path.as_str()),
            ("PATCH", first.as_str())
        );
        reply(
            send,
            StatusCode::INTERNAL_SERVER_ERROR,
            &[],
            &status(500, "InternalError", json!({})),
        );
        let (s1, send) = next(&mut api).await;
        assert_eq!(s1.path, first);
        assert_eq!(s1.at - s0.at, Duration::from_millis(200));
        reply(send, StatusCode::SERVICE_UNAVAILABLE, &[], &Value::Null);
        let (s2, send) = next(&mut api).await;
        assert_eq!(s2.path, first);
        assert_eq!(s2.at - s1.at, Duration::from_millis(400));
        // 429 with Retry-After: the server's delay wins over the backoff.
        reply(
            send,
            StatusCode::TOO_MANY_REQUESTS,
            &[("Retry-After", "7")],
            &status(429, "TooManyRequests", json!({})),
        );
        let (s3, send) = next(&mut api).await;
        assert_eq!(s3.path, first);
        assert_eq!(s3.at - s2.at, Duration::from_secs(7));
        // Accepted: the apply is a forced server-side apply of the whole object.
        assert!(
            s3.query.contains("fieldManager=vigil-test") && s3.query.contains("force=true"),
            "{}",
            s3.query
        );
        assert_eq!(s3.body["kind"], "RuntimeFinding");
        assert_eq!(s3.body["apiVersion"], "vigil.dev/v1alpha1");
        assert_eq!(s3.body["metadata"]["namespace"], "shop");
        assert_eq!(s3.body["spec"]["id"], "a");
        assert_eq!(
            s3.body["metadata"]["labels"]["vigil.dev/severity"],
            "Medium"
        );
        assert_eq!(s3.body["metadata"]["labels"]["vigil.dev/node"], "node-a");
        assert!(s3.body.get("status").is_none(), "{}", s3.body);
        reply(send, StatusCode::OK, &[], &s3.body);
        // The rest, in order, without delay.
        let mut order = Vec::new();
        for _ in 0..3 {
            let (seen, send) = next(&mut api).await;
            assert_eq!(seen.at, s3.at, "no backoff after success");
            order.push(format!("{} {}", seen.method, seen.path));
            reply(send, StatusCode::CREATED, &[], &seen.body);
        }
        let event = actions[2].key();
        let event_name = event.rsplit('/').next().unwrap();
        assert_eq!(
            order,
            [
                format!("PATCH {FINDINGS}/shop/runtimefindings/finding-b"),
                format!("POST {EVENTS}/shop/events"),
                format!("PATCH {FINDINGS}/vigil-system/runtimefindings/finding-c"),
            ]
        );
        assert!(event_name.starts_with("finding-b."), "{event_name}");
        assert_eq!(task.await.unwrap(), 4);
        assert!(lock(&spool).is_empty());
        let s = stats.snapshot();
        assert_eq!(
            (s.findings_written, s.events_written, s.retries, s.rejected),
            (3, 1, 3, 0)
        );
        assert!(s.last_error.unwrap().contains("429"));
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessable_entry_is_counted_rejected_and_skipped() {
        let (mut api, spool, stats, task, _) = setup("reject", false);
        let (seen, send) = next(&mut api).await;
        assert!(seen.path.ends_with("/finding-a"));
        reply(
            send,
            StatusCode::UNPROCESSABLE_ENTITY,
            &[],
            &status(422, "Invalid", json!({"kind": "RuntimeFinding"})),
        );
        // The next entry goes at once; finding-a is not retried.
        let (next_seen, send) = next(&mut api).await;
        assert!(next_seen.path.ends_with("/finding-b"), "{}", next_seen.path);
        assert_eq!(next_seen.at, seen.at);
        reply(send, StatusCode::OK, &[], &next_seen.body);
        for _ in 0..2 {
            let (seen, send) = next(&mut api).await;
            assert!(!seen.path.ends_with("/finding-a"));
            reply(send, StatusCode::OK, &[], &seen.body);
        }
        assert_eq!(task.await.unwrap(), 4);
        assert!(lock(&spool).is_empty());
        let s = stats.snapshot();
        assert_eq!((s.rejected, s.findings_written, s.retries), (1, 2, 0));
        assert!(s.last_error.unwrap().contains("422"));
    }

    #[tokio::test(start_paused = true)]
    async fn conflict_on_event_creation_is_acked() {
        let (mut api, spool, stats, task, _) = setup("conflict", false);
        for _ in 0..2 {
            let (seen, send) = next(&mut api).await;
            assert_eq!(seen.method, Method::PATCH);
            reply(send, StatusCode::OK, &[], &seen.body);
        }
        let (seen, send) = next(&mut api).await;
        assert_eq!(seen.method, Method::POST);
        assert!(seen.path.starts_with(EVENTS));
        assert_eq!(seen.body["kind"], "Event");
        assert_eq!(seen.body["reason"], "ExecutionRuntimeNewBinaryExecuted");
        assert!(
            seen.query.contains("fieldManager=vigil-test"),
            "{}",
            seen.query
        );
        reply(
            send,
            StatusCode::CONFLICT,
            &[],
            &status(409, "AlreadyExists", json!({"kind": "events"})),
        );
        let (seen, send) = next(&mut api).await;
        assert!(seen.path.ends_with("/finding-c"));
        reply(send, StatusCode::OK, &[], &seen.body);
        assert_eq!(task.await.unwrap(), 4);
        assert!(lock(&spool).is_empty());
        let s = stats.snapshot();
        assert_eq!(
            (s.already_delivered, s.events_written, s.rejected, s.retries),
            (1, 0, 0, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn archived_finding_gets_its_status_applied() {
        let (mut api, _spool, _stats, task, _) = setup("archived", true);
        // finding-a, finding-b: no status; the Event of b.
        for _ in 0..3 {
            let (seen, send) = next(&mut api).await;
            assert!(!seen.path.ends_with("/status"), "{}", seen.path);
            reply(send, StatusCode::OK, &[], &seen.body);
        }
        let (spec, send) = next(&mut api).await;
        assert_eq!(
            spec.path,
            format!("{FINDINGS}/vigil-system/runtimefindings/finding-c")
        );
        assert_eq!(spec.body["spec"]["archived"], true);
        reply(send, StatusCode::OK, &[], &spec.body);
        let (st, send) = next(&mut api).await;
        assert_eq!(st.method, Method::PATCH);
        assert_eq!(
            st.path,
            format!("{FINDINGS}/vigil-system/runtimefindings/finding-c/status")
        );
        assert!(st.query.contains("force=true"), "{}", st.query);
        assert_eq!(st.body["status"]["archived"], true);
        assert_eq!(st.body["status"]["archivedBy"], "allow-ci");
        assert_eq!(st.body["status"]["archivedAt"], "2026-11-27T10:00:00Z");
        // A failing status write retries the whole entry (the spec apply is idempotent).
        reply(send, StatusCode::BAD_GATEWAY, &[], &Value::Null);
        let (again, send) = next(&mut api).await;
        assert_eq!(again.path, spec.path);
        reply(send, StatusCode::OK, &[], &again.body);
        let (st, send) = next(&mut api).await;
        assert!(st.path.ends_with("/status"));
        reply(send, StatusCode::OK, &[], &st.body);
        assert_eq!(task.await.unwrap(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_the_maximum() {
        let (mut api, _spool, _stats, task, _) = setup("backoff", false);
        let mut gaps = Vec::new();
        let (mut last, send) = next(&mut api).await;
        reply(send, StatusCode::INTERNAL_SERVER_ERROR, &[], &Value::Null);
        for _ in 0..10 {
            let (seen, send) = next(&mut api).await;
            gaps.push((seen.at - last.at).as_millis());
            reply(send, StatusCode::INTERNAL_SERVER_ERROR, &[], &Value::Null);
            last = seen;
        }
        assert_eq!(
            gaps,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn run_waits_for_wake_and_delivers_new_entries() {
        let (_scratch, spool) = temp_spool("wake");
        let (service, mut api) = tower_test::mock::pair::<http::Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let stats = Arc::new(DeliveryStats::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(run(
            client,
            spool.clone(),
            wake.clone(),
            stats.clone(),
            "fm",
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut p = Publisher::new(config());
        for a in p.on_finding(&finding("w", 5.0, None), true, None, Instant::now()) {
            lock(&spool).push(&a).unwrap();
        }
        wake.notify_one();
        let (seen, send) = next(&mut api).await;
        assert!(seen.path.ends_with("/finding-w"));
        reply(send, StatusCode::OK, &[], &seen.body);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(lock(&spool).is_empty());
        assert_eq!(stats.snapshot().findings_written, 1);
        task.abort();
    }

    #[test]
    fn classification_table() {
        let ns_missing = status(
            404,
            "NotFound",
            json!({"name": "gone", "kind": "namespaces"}),
        );
        let not_served = status(404, "NotFound", json!({}));
        let throttled = status(429, "TooManyRequests", json!({"retryAfterSeconds": 3}));
        let bytes = |v: &Value| serde_json::to_vec(v).unwrap();
        // (code, Retry-After header, body, event creation, want: "ok" / "dup" / "rej" / "retry <after>")
        type Row = (u16, Option<u64>, Vec<u8>, bool, &'static str);
        let table: Vec<Row> = vec![
            (200, None, vec![], false, "ok"),
            (201, None, vec![], true, "ok"),
            (
                409,
                None,
                bytes(&status(409, "AlreadyExists", json!({}))),
                true,
                "dup",
            ),
            (
                409,
                None,
                bytes(&status(409, "Conflict", json!({}))),
                false,
                "retry -",
            ),
            (
                400,
                None,
                bytes(&status(400, "BadRequest", json!({}))),
                false,
                "rej",
            ),
            (
                403,
                None,
                bytes(&status(
                    403,
                    "Forbidden",
                    json!({"kind": "runtimefindings"}),
                )),
                false,
                "rej",
            ),
            (404, None, bytes(&ns_missing), false, "rej"),
            (404, None, bytes(&not_served), false, "retry -"),
            (404, None, b"404 page not found".to_vec(), false, "retry -"),
            (413, None, vec![], false, "rej"),
            (
                422,
                None,
                bytes(&status(422, "Invalid", json!({"kind": "RuntimeFinding"}))),
                false,
                "rej",
            ),
            (401, None, vec![], false, "retry -"),
            (408, None, vec![], false, "retry -"),
            (429, Some(5), vec![], false, "retry 5"),
            (429, None, bytes(&throttled), false, "retry 3"),
            (429, Some(1), bytes(&throttled), false, "retry 1"),
            (500, None, b"oops".to_vec(), false, "retry -"),
            (503, Some(2), vec![], true, "retry 2"),
        ];
        for (code, header, body, event, want) in table {
            let got = match classify(code, header.map(Duration::from_secs), &body, event) {
                SendOutcome::Delivered => "ok".to_owned(),
                SendOutcome::AlreadyDelivered => "dup".to_owned(),
                SendOutcome::Rejected { .. } => "rej".to_owned(),
                SendOutcome::Retry { after, .. } => {
                    format!(
                        "retry {}",
                        after.map_or("-".to_owned(), |a| a.as_secs().to_string())
                    )
                }
            };
            assert_eq!(got, want, "code {code}, header {header:?}, event {event}");
        }
        let SendOutcome::Rejected { message, .. } = classify(404, None, &bytes(&ns_missing), false)
        else {
            panic!("not rejected")
        };
        assert_eq!(message, "NotFound by test");
    }

    #[test]
    fn health_takes_counters_from_each_part() {
        let publish = PublishStats {
            over_cap_findings: 4,
            over_cap_events: 5,
            ..PublishStats::default()
        };
        let delivery = DeliverySnapshot {
            findings_written: 7,
            rejected: 2,
            ..DeliverySnapshot::default()
        };
        assert_eq!(
            publishing_health(&publish, &delivery, 3, 1),
            PublishingHealth {
                findings_published: 7,
                findings_over_cap: 4,
                events_over_cap: 5,
                spool_pending: 3,
                spool_lost: 1,
                rejected: 2,
            }
        );
    }
}
