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

pub mod access;
pub mod backend;
pub mod charts;
pub mod memory;
pub mod pages;
pub mod query;
pub mod suppress;
pub mod trust;

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{FromRequestParts, Path, RawQuery, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
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
#[derive(Clone)]
pub struct ConsoleOptions {
    /// `None`: actions allowed (subject to the gate); `Some(why)`: read-only for everyone, and
    /// why (shown on every page).
    pub read_only: Option<String>,
    /// Host names (without port) the console answers to; empty: any.
    pub allowed_hosts: Vec<String>,
    /// Default price per vCPU-hour on the usage page.
    pub price_per_vcpu_hour: f64,
    /// Decides per request who may act (a cluster's API server); `None`: everyone who reaches a
    /// console that is not read-only.
    pub gate: Option<Arc<dyn access::Gate>>,
}

impl std::fmt::Debug for ConsoleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleOptions")
            .field("read_only", &self.read_only)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("price_per_vcpu_hour", &self.price_per_vcpu_hour)
            .field("gate", &self.gate.is_some())
            .finish()
    }
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
            gate: None,
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
    /// This request's reason it cannot act (the console's, else the gate's), if any.
    read_only: Option<Arc<str>>,
    /// Whether this request carries a token (only with a gate).
    session: pages::Session,
}

/// The state as it stands for one request: the gate's read-only reason and session worked out
/// from its headers.
struct Req(AppState);

impl FromRequestParts<AppState> for Req {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let mut s = state.clone();
        if let (None, Some(gate)) = (&s.read_only, &s.options.gate) {
            s.read_only = gate.read_only(&parts.headers).map(Into::into);
            s.session = if access::bearer_token(&parts.headers).is_some() {
                pages::Session::SignedIn
            } else {
                pages::Session::SignedOut
            };
        }
        Ok(Req(s))
    }
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
        read_only: options.read_only.as_deref().map(Into::into),
        options: Arc::new(options),
        csrf: csrf.into(),
        kind: kind.into(),
        name: name.into(),
        session: pages::Session::None,
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
        .route("/findings/{id}/trust", get(trust_form).post(trust_add))
        .route("/session", post(sign_in))
        .route("/session/end", post(sign_out))
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
    Unauthenticated(String),
    #[error("{0}")]
    GateUnavailable(String),
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
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::GateUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            StatusCode::UNAUTHORIZED => "Not signed in",
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
        read_only: state.read_only.as_deref(),
        csrf: &state.csrf,
        session: state.session,
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

async fn not_found(Req(state): Req, uri: axum::http::Uri) -> Response {
    Failure::new(PageError::NotFound(uri.path().to_owned()), state).into_response()
}

async fn summary(Req(state): Req) -> PageResult {
    let now = Timestamp::now();
    let (s, nodes) = call(&state, move |b| {
        Ok((b.summary(now, SUMMARY_DAYS)?, b.coverage(now)?))
    })
    .await?;
    Ok(page(&state, "Summary", "/", pages::summary(&s, &nodes)).into_response())
}

async fn findings(Req(state): Req, RawQuery(raw): RawQuery) -> PageResult {
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

async fn finding(Req(state): Req, Path(id): Path<String>) -> PageResult {
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

/// An action is allowed: not read-only, the CSRF token matches, a browser's `Origin` (when
/// sent) is this console, and the gate (if any) lets this caller do it.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    fields: &[(String, String)],
    action: access::Action<'_>,
) -> Result<(), Failure> {
    if let Some(why) = &state.read_only {
        return Err(Failure::new(
            PageError::Forbidden(format!("the console is read-only: {why}")),
            state.clone(),
        ));
    }
    same_origin(state, headers, fields)?;
    if let Some(gate) = &state.options.gate {
        gate.check(headers, action).await.map_err(|d| {
            let e = match d {
                access::Denied::Unauthenticated(why) => PageError::Unauthenticated(why),
                access::Denied::Forbidden(why) => PageError::Forbidden(why),
                access::Denied::Unavailable(why) => PageError::GateUnavailable(why),
            };
            Failure::new(e, state.clone())
        })?;
    }
    Ok(())
}

/// The form came from this console: the CSRF token matches and a browser's `Origin` (when
/// sent) is this console.
fn same_origin(
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
    Req(state): Req,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = form_fields(&body);
    authorize(
        &state,
        &headers,
        &fields,
        access::Action::Archive { finding: &id },
    )
    .await?;
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
    Req(state): Req,
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
    Req(state): Req,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = form_fields(&body);
    authorize(&state, &headers, &fields, access::Action::Suppress).await?;
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

/// The trust form's choices: the address or block checked against the finding, the list.
struct TrustForm {
    remote: Option<String>,
    net_text: String,
    confirm_wide: bool,
    list: Option<String>,
    net: Result<trust::TrustedNet, String>,
}

fn trust_from(r: &FindingRecord, fields: &[(String, String)]) -> TrustForm {
    let remote = r.finding.network.as_ref().map(|n| n.remote_ip.clone());
    let net_text = field(fields, "net")
        .map(str::to_owned)
        .or_else(|| remote.clone())
        .unwrap_or_default();
    let confirm_wide = field(fields, "wide") == Some("yes");
    let net = trust::validate(remote.as_deref(), Some(&net_text), confirm_wide)
        .map_err(|e| e.to_string());
    TrustForm {
        remote,
        net_text,
        confirm_wide,
        list: field(fields, "list").map(str::to_owned),
        net,
    }
}

async fn trust_form(
    Req(state): Req,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let r = load(&state, id).await?;
    let fields = form_fields(raw.as_deref().unwrap_or("").as_bytes());
    let form = trust_from(&r, &fields);
    let targets = match &form.net {
        Ok(net) => {
            let net = *net;
            call(&state, move |b| b.trust_targets(&net))
                .await
                .map_err(|f| f.0.0.to_string())
        }
        Err(why) => Err(why.clone()),
    };
    let body = pages::trust(
        &r,
        &frame(&state),
        &pages::TrustView {
            remote: form.remote.as_deref(),
            net_text: &form.net_text,
            confirm_wide: form.confirm_wide,
            list: form.list.as_deref(),
            net: form
                .net
                .as_ref()
                .map(ToString::to_string)
                .map_err(Clone::clone),
            targets,
        },
    );
    Ok(page(
        &state,
        "Add the remote address to a trusted list",
        "/findings",
        body,
    )
    .into_response())
}

async fn trust_add(
    Req(state): Req,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = form_fields(&body);
    let list = field(&fields, "list").unwrap_or("").to_owned();
    if list.is_empty() {
        return Err(Failure::new(
            PageError::BadForm("choose the trusted list to add the address to".into()),
            state,
        ));
    }
    authorize(
        &state,
        &headers,
        &fields,
        access::Action::Trust { list: &list },
    )
    .await?;
    let r = load(&state, id).await?;
    let net = trust_from(&r, &fields)
        .net
        .map_err(|why| Failure::new(PageError::BadForm(why), state.clone()))?;
    let note = format!(
        "Added by the Vigil console on {} from finding {} ({})",
        pages::time(&Timestamp::now()),
        r.finding.id,
        r.finding.finding_type
    );
    let wanted = list.clone();
    let added = call(&state, move |b| b.add_trusted(&wanted, &net, &note)).await?;
    tracing::info!(list = %added.name, location = %added.location, %net, finding = %r.finding.id, "address added to a trusted list from the console");
    let qs = form_urlencoded::Serializer::new(String::new())
        .append_pair("trusted", &net.to_string())
        .append_pair("list", &added.name)
        .finish();
    Ok(Redirect::to(&format!("/settings?{qs}#trusted-lists")).into_response())
}

/// Signs a browser in: the token (checked with the gate) goes into an HttpOnly, SameSite=Strict
/// cookie, so a browser behind `kubectl port-forward` can act as the token's owner.
async fn sign_in(Req(state): Req, headers: HeaderMap, body: Bytes) -> PageResult {
    let fields = form_fields(&body);
    same_origin(&state, &headers, &fields)?;
    let Some(gate) = state.options.gate.clone() else {
        return Err(Failure::new(
            PageError::NotFound("/session (this console has no sign-in)".into()),
            state,
        ));
    };
    let token = field(&fields, "token").unwrap_or("").trim().to_owned();
    if !access::cookie_safe(&token) {
        return Err(Failure::new(
            PageError::BadForm("paste a bearer token (printable characters, at most 8 KiB)".into()),
            state,
        ));
    }
    let user = gate.who(&token).await.map_err(|d| {
        let e = match d {
            access::Denied::Unauthenticated(why) => PageError::Unauthenticated(why),
            access::Denied::Forbidden(why) => PageError::Forbidden(why),
            access::Denied::Unavailable(why) => PageError::GateUnavailable(why),
        };
        Failure::new(e, state.clone())
    })?;
    tracing::info!(%user, "signed in to the console");
    let mut r = Redirect::to("/").into_response();
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800",
        access::TOKEN_COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

async fn sign_out(Req(state): Req, headers: HeaderMap, body: Bytes) -> PageResult {
    let fields = form_fields(&body);
    same_origin(&state, &headers, &fields)?;
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("vigil-token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}

async fn coverage(Req(state): Req, RawQuery(raw): RawQuery) -> PageResult {
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

async fn usage(Req(state): Req, RawQuery(raw): RawQuery) -> PageResult {
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

async fn settings(Req(state): Req, RawQuery(raw): RawQuery) -> PageResult {
    let fields = form_fields(raw.as_deref().unwrap_or("").as_bytes());
    let s = call(&state, |b| b.settings()).await?;
    let created = field(&fields, "created").filter(|n| suppress::valid_name(n));
    let trusted = match (field(&fields, "trusted"), field(&fields, "list")) {
        (Some(net), Some(list)) => trust::parse(net).ok().map(|n| (n, list)),
        _ => None,
    };
    Ok(page(
        &state,
        "Settings",
        "/settings",
        pages::settings(&s, created, trusted),
    )
    .into_response())
}
