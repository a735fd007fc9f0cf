//! Vigil's web console: a findings table with a GuardDuty-style filter bar, the finding detail
//! with its process tree and actions, coverage, usage and settings. Server-rendered HTML (maud)
//! with the stylesheet and a small progressive-enhancement script embedded in the binary.
//!
//! The pages draw from one [`Backend`]; the host backend (the agent's SQLite store) lives in
//! `node-agent`, which depends on this crate.
//!
//! Security: every response carries a Content-Security-Policy that allows no inline script and
//! no other origin; every POST needs the CSRF token the pages embed (random per process);
//! requests whose `Host` is not one the console answers to are refused (DNS rebinding); the
//! server can be read-only, with the reason shown on every page.

pub mod backend;
pub mod charts;
pub mod pages;
pub mod query;
pub mod suppress;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
pub use backend::*;
use k8s_openapi::jiff::Timestamp;
use maud::Markup;

/// The stylesheet, embedded.
const CSS: &str = include_str!("../assets/console.css");
/// The progressive-enhancement script, embedded (the pages work without it).
const JS: &str = include_str!("../assets/console.js");

/// The Content-Security-Policy of every response: this origin's script and style files only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Days on the summary chart.
const SUMMARY_DAYS: u32 = 14;

/// How the console runs.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// `None`: actions allowed; `Some(why)`: read-only, and why (shown on every page).
    pub read_only: Option<String>,
    /// Host names (without port) the console answers to; empty: any.
    pub allowed_hosts: Vec<String>,
    /// Default price per vCPU-hour on the usage page.
    pub price_per_vcpu_hour: f64,
}

impl ConsoleOptions {
    /// Options for a console listening on `addr`: actions only on a loopback address, and only
    /// loopback host names accepted there.
    pub fn for_listen_address(addr: SocketAddr) -> Self {
        let loopback = addr.ip().is_loopback();
        Self {
            read_only: (!loopback).then(|| {
                format!(
                    "the console listens on {addr}, not a loopback address; actions need a loopback listener"
                )
            }),
            allowed_hosts: if loopback {
                vec![
                    "localhost".into(),
                    "127.0.0.1".into(),
                    "[::1]".into(),
                    addr.ip().to_string(),
                ]
            } else {
                Vec::new()
            },
            price_per_vcpu_hour: 0.0,
        }
    }
}

#[derive(Clone)]
struct AppState {
    backend: Arc<dyn Backend>,
    options: Arc<ConsoleOptions>,
    csrf: Arc<str>,
    kind: Arc<str>,
    name: Arc<str>,
}

/// Why the console could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No CSRF token could be made.
    #[error("cannot draw a CSRF token from the operating system: {0}")]
    Random(getrandom::Error),
    /// The listener failed.
    #[error("serving the console: {0}")]
    Serve(#[source] std::io::Error),
}

/// The router of the console over `backend`.
pub fn router(backend: Arc<dyn Backend>, options: ConsoleOptions) -> Result<Router, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ConsoleError::Random)?;
    let csrf: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let (kind, name) = backend.describe();
    let state = AppState {
        backend,
        options: Arc::new(options),
        csrf: csrf.into(),
        kind: kind.into(),
        name: name.into(),
    };
    Ok(Router::new()
        .route("/", get(summary))
        .route("/findings", get(findings))
        .route("/findings/{id}", get(finding))
        .route("/findings/{id}/archive", post(archive))
        .route(
            "/findings/{id}/suppress",
            get(suppress_form).post(suppress_create),
        )
        .route("/coverage", get(coverage))
        .route("/usage", get(usage))
        .route("/settings", get(settings))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state))
}

/// Serves the console on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ConsoleError::Serve)
}

/// What went wrong with a request; each becomes a page naming it.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("{0}")]
    BadQuery(#[from] query::QueryError),
    #[error("{0}")]
    BadForm(String),
    #[error("no finding with id {0:?}")]
    NoFinding(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("the request could not be completed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("no page at {0}")]
    NotFound(String),
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadQuery(_) | Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::NoFinding(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Backend(BackendError::Rejected(_)) => StatusCode::CONFLICT,
            Self::Backend(BackendError::Unavailable(_)) => StatusCode::NOT_IMPLEMENTED,
            Self::Backend(_) | Self::Join(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A failed request: the error and what is needed to draw its page (boxed: it travels in
/// every handler's `Result`).
struct Failure(Box<(PageError, AppState)>);

impl Failure {
    fn new(error: PageError, state: AppState) -> Self {
        Self(Box::new((error, state)))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (error, state) = *self.0;
        let status = error.status();
        if status.is_server_error() {
            tracing::error!(%error, "console request failed");
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::CONFLICT => "Not done",
            _ => "Error",
        };
        let back = match &error {
            PageError::BadQuery(_) => Some(("/findings", "Back to all findings")),
            PageError::NoFinding(_) => Some(("/findings", "Back to the findings")),
            _ => Some(("/", "Back to the summary")),
        };
        let body = pages::error_body(&error.to_string(), back);
        (status, page(&state, title, "", body)).into_response()
    }
}

type PageResult = Result<Response, Failure>;

fn frame(state: &AppState) -> pages::Frame<'_> {
    pages::Frame {
        kind: &state.kind,
        name: &state.name,
        read_only: state.options.read_only.as_deref(),
        csrf: &state.csrf,
    }
}

fn page(state: &AppState, title: &str, active: &str, body: Markup) -> Html<String> {
    Html(pages::layout(&frame(state), title, active, body).into_string())
}

/// Runs a backend call on the blocking pool.
async fn call<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Backend) -> Result<T, BackendError> + Send + 'static,
) -> Result<T, Failure> {
    let backend = state.backend.clone();
    match tokio::task::spawn_blocking(move || f(backend.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure::new(e.into(), state.clone())),
        Err(e) => Err(Failure::new(e.into(), state.clone())),
    }
}

/// Host check, CSRF-free GETs, and the security headers on every answer.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.options.allowed_hosts.is_empty() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = host_name(host);
        if !state.options.allowed_hosts.iter().any(|h| h == name) {
            let mut r = (
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this console answers to {} only, not to host {host:?}",
                    state.options.allowed_hosts.join(", ")
                ),
            )
                .into_response();
            security_headers(r.headers_mut());
            return r;
        }
    }
    let mut response = next.run(request).await;
    security_headers(response.headers_mut());
    response
}

fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    }
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

async fn not_found(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    Failure::new(PageError::NotFound(uri.path().to_owned()), state).into_response()
}

async fn summary(State(state): State<AppState>) -> PageResult {
    let now = Timestamp::now();
    let (s, nodes) = call(&state, move |b| {
        Ok((b.summary(now, SUMMARY_DAYS)?, b.coverage(now)?))
    })
    .await?;
    Ok(page(&state, "Summary", "/", pages::summary(&s, &nodes)).into_response())
}

async fn findings(State(state): State<AppState>, RawQuery(raw): RawQuery) -> PageResult {
    let now = Timestamp::now();
    let parsed = query::parse(raw.as_deref().unwrap_or(""), now)
        .map_err(|e| Failure::new(e.into(), state.clone()))?;
    if parsed.added {
        return Ok(Redirect::to(&parsed.query.href()).into_response());
    }
    let q = parsed.query;
    let q2 = q.clone();
    let found = call(&state, move |b| b.findings(&q2, now)).await?;
    Ok(page(&state, "Findings", "/findings", pages::findings(&q, &found)).into_response())
}

async fn load(state: &AppState, id: String) -> Result<FindingRecord, Failure> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Failure::new(PageError::NoFinding(id), state.clone()));
    }
    let wanted = id.clone();
    call(state, move |b| b.finding(&wanted))
        .await?
        .ok_or_else(|| Failure::new(PageError::NoFinding(id), state.clone()))
}

async fn finding(State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let r = load(&state, id).await?;
    let raw = serde_json::to_string_pretty(&r.finding)
        .map_err(|e| Failure::new(PageError::BadForm(e.to_string()), state.clone()))?;
    let title = r.finding.title.clone();
    let body = pages::finding(&r, &frame(&state), &raw);
    Ok(page(&state, &title, "/findings", body).into_response())
}

/// The fields of a urlencoded body, keys repeated as sent.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An action is allowed: not read-only, the CSRF token matches, and a browser's `Origin` (when
/// sent) is this console.
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    fields: &[(String, String)],
) -> Result<(), Failure> {
    let deny = |why: &str| {
        Err(Failure::new(
            PageError::Forbidden(why.to_owned()),
            state.clone(),
        ))
    };
    if let Some(why) = &state.options.read_only {
        return deny(&format!("the console is read-only: {why}"));
    }
    let token = field(fields, "csrf").unwrap_or("");
    if !constant_time_eq(token.as_bytes(), state.csrf.as_bytes()) {
        return deny("the form's CSRF token is missing or stale: reload the page and try again");
    }
    if let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()),
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) {
        let origin_host = origin.split("://").nth(1).unwrap_or("");
        if origin != "null" && origin_host != host {
            return deny(&format!("a form from {origin} cannot act on this console"));
        }
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = form_fields(&body);
    authorize(&state, &headers, &fields)?;
    let archived = match field(&fields, "archived") {
        Some("true") => true,
        Some("false") => false,
        other => {
            return Err(Failure::new(
                PageError::BadForm(format!(
                    "field `archived` must be true or false, not {:?}",
                    other.unwrap_or("missing")
                )),
                state,
            ));
        }
    };
    load(&state, id.clone()).await?;
    let wanted = id.clone();
    call(&state, move |b| b.set_archived(&wanted, archived))
        .await?
        .ok_or_else(|| Failure::new(PageError::NoFinding(id.clone()), state.clone()))?;
    Ok(Redirect::to(&format!("/findings/{id}")).into_response())
}

/// The rule the form describes (ticked criteria, name, description), or why not.
struct RuleForm {
    /// The finding's attributes, each with whether it is ticked.
    shown: Vec<(suppress::Candidate, bool)>,
    name: String,
    description: String,
    rule: Result<vigil_crds::suppression_rule::SuppressionRule, String>,
}

fn rule_from(r: &FindingRecord, fields: &[(String, String)], first_visit: bool) -> RuleForm {
    let offered = suppress::candidates(&r.finding);
    let ticked: Vec<String> = if first_visit {
        offered
            .iter()
            .filter(|c| c.default)
            .map(|c| c.path.to_owned())
            .collect()
    } else {
        fields
            .iter()
            .filter(|(k, _)| k == "crit")
            .map(|(_, v)| v.clone())
            .collect()
    };
    let short: String = r.finding.id.chars().take(12).collect();
    let name = field(fields, "name")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("console-{}", short.to_ascii_lowercase()));
    let description = field(fields, "description")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Like finding {}: {}", r.finding.id, r.finding.title));
    let rule =
        suppress::build_rule(&r.finding, &ticked, &name, &description).map_err(|e| e.to_string());
    let shown = offered
        .into_iter()
        .map(|c| {
            let on = ticked.iter().any(|t| t == c.path);
            (c, on)
        })
        .collect();
    RuleForm {
        shown,
        name,
        description,
        rule,
    }
}

async fn suppress_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let r = load(&state, id).await?;
    let fields = form_fields(raw.as_deref().unwrap_or("").as_bytes());
    let RuleForm {
        shown,
        name,
        description,
        rule,
    } = rule_from(&r, &fields, fields.is_empty());
    let (preview, yaml) = match rule {
        Ok(rule) => {
            let yaml = suppress::rule_yaml(&rule);
            let n = call(&state, move |b| b.preview_suppression(&rule)).await;
            (n.map_err(|f| f.0.0.to_string()), yaml)
        }
        Err(why) => (Err(why), String::new()),
    };
    let body = pages::suppress(
        &r,
        &frame(&state),
        &shown,
        &name,
        &description,
        preview,
        &yaml,
    );
    Ok(page(&state, "Suppress findings like this", "/findings", body).into_response())
}

async fn suppress_create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = form_fields(&body);
    authorize(&state, &headers, &fields)?;
    let r = load(&state, id).await?;
    let rule = rule_from(&r, &fields, false)
        .rule
        .map_err(|why| Failure::new(PageError::BadForm(why), state.clone()))?;
    let created = call(&state, move |b| b.create_suppression(&rule)).await?;
    let qs = form_urlencoded::Serializer::new(String::new())
        .append_pair("created", &created.name)
        .append_pair("archived", &created.archived_now.to_string())
        .finish();
    Ok(Redirect::to(&format!("/settings?{qs}#rule-{}", created.name)).into_response())
}

async fn coverage(State(state): State<AppState>, RawQuery(raw): RawQuery) -> PageResult {
    let fields = form_fields(raw.as_deref().unwrap_or("").as_bytes());
    let only_unhealthy = match field(&fields, "status") {
        None | Some("all") => false,
        Some("unhealthy") => true,
        Some(other) => {
            return Err(Failure::new(
                PageError::BadForm(format!(
                    "filter `status`: {other:?} is not valid: want unhealthy or all"
                )),
                state,
            ));
        }
    };
    let now = Timestamp::now();
    let nodes = call(&state, move |b| b.coverage(now)).await?;
    Ok(page(
        &state,
        "Coverage",
        "/coverage",
        pages::coverage(&nodes, only_unhealthy),
    )
    .into_response())
}

async fn usage(State(state): State<AppState>, RawQuery(raw): RawQuery) -> PageResult {
    let fields = form_fields(raw.as_deref().unwrap_or("").as_bytes());
    let price = match field(&fields, "price") {
        None => state.options.price_per_vcpu_hour,
        Some(p) => p
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0 && *p < 1_000.0)
            .ok_or_else(|| {
                Failure::new(
                    PageError::BadForm(format!(
                        "`price` {p:?}: want a price per vCPU-hour from 0 to 1000"
                    )),
                    state.clone(),
                )
            })?,
    };
    let now = Timestamp::now();
    let u = call(&state, move |b| b.usage(now)).await?;
    Ok(page(&state, "Usage", "/usage", pages::usage(&u, price)).into_response())
}

async fn settings(State(state): State<AppState>, RawQuery(raw): RawQuery) -> PageResult {
    let fields = form_fields(raw.as_deref().unwrap_or("").as_bytes());
    let s = call(&state, |b| b.settings()).await?;
    let created = field(&fields, "created").filter(|n| suppress::valid_name(n));
    Ok(page(
        &state,
        "Settings",
        "/settings",
        pages::settings(&s, created),
    )
    .into_response())
}
