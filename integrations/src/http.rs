//! The sinks that POST over HTTP(S): webhook, Slack, Splunk HEC and OTLP logs. Building the
//! request is pure ([`HttpSink::request`]); sending is hyper's pooled client with rustls.
//!
//! | kind | where | body | authentication |
//! |---|---|---|---|
//! | webhook | the URL | the document in `format` (`application/cloudevents+json` for CloudEvents) | `X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body>` |
//! | slack | the URL (an incoming webhook) | `{"text": ...}` for people | the URL itself |
//! | splunk-hec | `/services/collector/event` unless the URL has a path | `{"time","host","source","sourcetype","event"}` | `Authorization: Splunk <token>` |
//! | otlp | `/v1/logs` unless the URL has a path | `ExportLogsServiceRequest` (JSON) | `Authorization: Bearer <token>` when a secret is set |

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};
use sha2::Sha256;
use vigil_crds::finding::{Finding, SeverityLabel};

use crate::{
    config::{Secret, SinkConfig, SinkConfigError, SinkKind},
    format::{Format, Origin, content_type, render},
    sink::{SendFuture, Sink, SinkError},
};

/// The webhook signature header.
pub const SIGNATURE_HEADER: &str = "x-vigil-signature";
/// The header naming the finding (receivers deduplicate on it: delivery is at least once).
pub const FINDING_ID_HEADER: &str = "x-vigil-finding-id";
/// Splunk HEC's event endpoint.
pub const HEC_EVENT_PATH: &str = "/services/collector/event";
/// OTLP/HTTP's logs endpoint.
pub const OTLP_LOGS_PATH: &str = "/v1/logs";
/// Most bytes of an error answer kept for the log.
const ANSWER_KEPT: usize = 512;

const USER_AGENT: &str = concat!("vigil-node-agent/", env!("CARGO_PKG_VERSION"));

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`, as in `X-Vigil-Signature`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length (long ones are hashed first), so `new_from_slice` cannot fail
    // here; the fallback keeps the function total without a panic path.
    let digest = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `header` is a valid `X-Vigil-Signature` of `body` under `secret`, compared in constant
/// time (for receivers written in Rust, and the tests).
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 {
        return false;
    }
    let mut bytes = Vec::with_capacity(32);
    for pair in hex.as_bytes().chunks(2) {
        let Some(b) = std::str::from_utf8(pair)
            .ok()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
        else {
            return false;
        };
        bytes.push(b);
    }
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            mac.verify_slice(&bytes).is_ok()
        }
        Err(_) => false,
    }
}

/// A sink that POSTs one finding per request.
pub struct HttpSink {
    name: String,
    kind: SinkKind,
    endpoint: http::Uri,
    shown: String,
    secret: Option<Secret>,
    format: Format,
    origin: Origin,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("endpoint", &self.shown)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The URL a sink posts to: the configured one, or its standard path when it has none.
fn endpoint(kind: SinkKind, url: &http::Uri) -> Result<http::Uri, http::Error> {
    let standard = match kind {
        SinkKind::SplunkHec => HEC_EVENT_PATH,
        SinkKind::Otlp => OTLP_LOGS_PATH,
        _ => return Ok(url.clone()),
    };
    if !matches!(url.path(), "" | "/") {
        return Ok(url.clone());
    }
    let mut parts = url.clone().into_parts();
    parts.path_and_query = Some(match url.query() {
        Some(q) => format!("{standard}?{q}").parse()?,
        None => standard.parse()?,
    });
    Ok(http::Uri::from_parts(parts)?)
}

/// The endpoint for logs: no credentials, no query, and no path for Slack (its path is the
/// secret).
fn shown(kind: SinkKind, url: &http::Uri) -> String {
    let host = url.host().unwrap_or_default();
    let port = url.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let path = match kind {
        SinkKind::Slack => "/…",
        _ => url.path(),
    };
    format!(
        "{}://{host}{port}{path}",
        url.scheme_str().unwrap_or("http")
    )
}

fn tls_connector() -> HttpsConnector<HttpConnector> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(b) => b,
        Err(error) => {
            // No CA certificates on this machine: plain HTTP still works, and an https sink
            // fails each attempt with the TLS error in its log line.
            tracing::warn!(%error, "no CA certificates found: https sinks cannot verify their receivers");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            match config {
                Ok(c) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(c),
                Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
            }
        }
    };
    builder.https_or_http().enable_http1().build()
}

impl HttpSink {
    /// The sink for `config` (one of the HTTP kinds).
    pub fn new(config: &SinkConfig, origin: Origin) -> Result<Self, SinkConfigError> {
        let endpoint = endpoint(config.kind, &config.url).map_err(|e| SinkConfigError::BadUrl {
            sink: config.name.clone(),
            url: config.url.to_string(),
            problem: e.to_string(),
        })?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(2)
            .build(tls_connector());
        Ok(Self {
            name: config.name.clone(),
            kind: config.kind,
            shown: shown(config.kind, &endpoint),
            endpoint,
            secret: config.secret.clone(),
            format: config.format,
            origin,
            client,
        })
    }

    /// Where the sink posts, as logged.
    pub fn shown_endpoint(&self) -> &str {
        &self.shown
    }

    /// The request for `finding`: method, URL, headers and the exact body.
    pub fn request(&self, finding: &Finding) -> Result<Request<Bytes>, SinkError> {
        let (content_type, body) = match self.kind {
            SinkKind::Webhook => {
                let doc = render(self.format, finding, &self.origin)?;
                (content_type(self.format), to_vec(&doc)?)
            }
            SinkKind::Slack => ("application/json", to_vec(&slack_message(finding))?),
            SinkKind::SplunkHec => {
                let doc = render(self.format, finding, &self.origin)?;
                ("application/json", to_vec(&hec_event(finding, doc))?)
            }
            SinkKind::Otlp => {
                let doc = render(self.format, finding, &self.origin)?;
                ("application/json", to_vec(&otlp_logs(finding, &doc)?)?)
            }
            SinkKind::Syslog | SinkKind::Nats => {
                return Err(SinkError::Refused {
                    endpoint: self.shown.clone(),
                    reason: format!("{} is not an HTTP sink", self.kind),
                    permanent: true,
                });
            }
        };
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(header::CONTENT_TYPE, content_type)
            .header(header::USER_AGENT, USER_AGENT)
            .header(FINDING_ID_HEADER, finding_id_header(&finding.id));
        match (self.kind, &self.secret) {
            (SinkKind::Webhook, Some(secret)) => {
                builder = builder.header(SIGNATURE_HEADER, signature(secret.expose(), &body));
            }
            (SinkKind::SplunkHec, Some(token)) => {
                builder = builder.header(header::AUTHORIZATION, auth("Splunk", token));
            }
            (SinkKind::Otlp, Some(token)) => {
                builder = builder.header(header::AUTHORIZATION, auth("Bearer", token));
            }
            _ => {}
        }
        builder
            .body(Bytes::from(body))
            .map_err(|source| SinkError::Request {
                endpoint: self.shown.clone(),
                source,
            })
    }

    async fn post(&self, finding: &Finding) -> Result<(), SinkError> {
        let request = self.request(finding)?.map(Full::new);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|source| SinkError::Connect {
                endpoint: self.shown.clone(),
                source: Box::new(source),
            })?;
        let status = response.status();
        if status.is_success() {
            // The answer is not needed; dropping it lets the connection go back to the pool
            // once the body has been read by hyper or the connection is closed.
            return Ok(());
        }
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while kept.len() < ANSWER_KEPT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        kept.extend_from_slice(&data[..data.len().min(ANSWER_KEPT - kept.len())]);
                    }
                }
                _ => break,
            }
        }
        Err(SinkError::Status {
            endpoint: self.shown.clone(),
            status,
            body: String::from_utf8_lossy(&kept).trim().to_owned(),
        })
    }
}

/// The finding id as a header value (ids are ASCII; anything else is dropped rather than
/// failing the request).
fn finding_id_header(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn auth(scheme: &str, token: &Secret) -> HeaderValue {
    let mut value = Vec::with_capacity(scheme.len() + 1 + token.expose().len());
    value.extend_from_slice(scheme.as_bytes());
    value.push(b' ');
    value.extend_from_slice(token.expose());
    let mut value =
        HeaderValue::from_bytes(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    value.set_sensitive(true);
    value
}

fn to_vec(value: &Value) -> Result<Vec<u8>, SinkError> {
    serde_json::to_vec(value).map_err(|e| SinkError::Format(e.into()))
}

impl Sink for HttpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, finding: &'a Finding) -> SendFuture<'a> {
        Box::pin(self.post(finding))
    }
}

/// Escapes the three characters Slack's message text treats as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: severity, type, where, what, and the id to look it up.
pub fn slack_message(finding: &Finding) -> Value {
    let icon = match finding.severity_label {
        SeverityLabel::Critical => ":rotating_light:",
        SeverityLabel::High => ":red_circle:",
        SeverityLabel::Medium => ":large_orange_circle:",
        SeverityLabel::Low => ":large_blue_circle:",
    };
    let text = format!(
        "{icon} *{:?} {}* on `{}`\n{}\n{}\nFinding `{}` (severity {:.1}, seen {} times)",
        finding.severity_label,
        slack_escape(&finding.finding_type),
        slack_escape(&finding.resource.display_name),
        slack_escape(&finding.title),
        slack_escape(&finding.description),
        slack_escape(&finding.id),
        finding.severity,
        finding.count,
    );
    json!({ "text": text })
}

/// A Splunk HEC event around `document`.
pub fn hec_event(finding: &Finding, document: Value) -> Value {
    let millis = finding.event_last_seen.0.as_millisecond();
    json!({
        // Seconds with millisecond precision, as HEC takes it.
        "time": (millis as f64) / 1000.0,
        "host": finding.resource.host.hostname,
        "source": "vigil",
        "sourcetype": "vigil:finding",
        "event": document,
    })
}

fn otlp_string(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// An OTLP `ExportLogsServiceRequest` (protobuf JSON mapping) holding one log record: the
/// document as the body (a JSON string), the severity mapped to OTLP's numbers (Low INFO,
/// Medium WARN, High ERROR, Critical FATAL), and the finding's id, type and resource as
/// attributes.
pub fn otlp_logs(finding: &Finding, document: &Value) -> Result<Value, SinkError> {
    let body = serde_json::to_string(document).map_err(|e| SinkError::Format(e.into()))?;
    let severity_number = match finding.severity_label {
        SeverityLabel::Low => 9,
        SeverityLabel::Medium => 13,
        SeverityLabel::High => 17,
        SeverityLabel::Critical => 21,
    };
    let mut resource = vec![
        otlp_string("service.name", "vigil-node-agent"),
        otlp_string("service.version", env!("CARGO_PKG_VERSION")),
        otlp_string("host.name", &finding.resource.host.hostname),
    ];
    if let Some(pod) = &finding.resource.pod {
        resource.push(otlp_string("k8s.namespace.name", &pod.namespace));
        resource.push(otlp_string("k8s.pod.name", &pod.name));
    }
    Ok(json!({
        "resourceLogs": [{
            "resource": { "attributes": resource },
            "scopeLogs": [{
                "scope": { "name": "vigil", "version": env!("CARGO_PKG_VERSION") },
                "logRecords": [{
                    // 64-bit integers are strings in the protobuf JSON mapping.
                    "timeUnixNano": finding.event_last_seen.0.as_nanosecond().to_string(),
                    "observedTimeUnixNano": finding.updated_at.0.as_nanosecond().to_string(),
                    "severityNumber": severity_number,
                    "severityText": format!("{:?}", finding.severity_label),
                    "body": { "stringValue": body },
                    "attributes": [
                        otlp_string("vigil.finding.id", &finding.id),
                        otlp_string("vigil.finding.type", &finding.finding_type),
                        otlp_string("vigil.finding.title", &finding.title),
                        {
                            "key": "vigil.finding.severity",
                            "value": { "doubleValue": finding.severity }
                        },
                        otlp_string("vigil.resource", &finding.resource.display_name),
                    ],
                }],
            }],
        }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SinkFilter;

    fn config(kind: SinkKind, url: &str, secret: Option<&str>) -> SinkConfig {
        SinkConfig {
            name: "t".into(),
            kind,
            url: url.parse().unwrap(),
            secret: secret.map(Secret::new),
            format: Format::Vigil,
            filter: SinkFilter::default(),
            options: Default::default(),
        }
    }

    #[tokio::test]
    async fn webhook_request_is_signed_over_the_exact_body() {
        let sink = HttpSink::new(
            &config(
                SinkKind::Webhook,
                "http://127.0.0.1:1/hook?x=1",
                Some("key"),
            ),
            Origin::default(),
        )
        .unwrap();
        let f = crate::sample::finding().unwrap();
        let r = sink.request(&f).unwrap();
        assert_eq!(r.uri(), "http://127.0.0.1:1/hook?x=1");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[FINDING_ID_HEADER], f.id.as_str());
        let sig = r.headers()[SIGNATURE_HEADER].to_str().unwrap();
        assert!(verify_signature(b"key", r.body(), sig));
        assert!(!verify_signature(b"other", r.body(), sig));
        let doc: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(doc, serde_json::to_value(&f).unwrap());
    }

    #[tokio::test]
    async fn webhook_sends_structured_cloudevents_when_asked() {
        let mut c = config(SinkKind::Webhook, "http://127.0.0.1:1/hook", Some("key"));
        c.format = Format::CloudEvents;
        let sink = HttpSink::new(&c, Origin::default()).unwrap();
        let f = crate::sample::finding().unwrap();
        let r = sink.request(&f).unwrap();
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/cloudevents+json"),
            "{:?}",
            r.headers()
        );
        let doc: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(doc["specversion"], "1.0");
        assert_eq!(doc["data"]["id"], f.id.as_str());
        let sig = r.headers()[SIGNATURE_HEADER].to_str().unwrap();
        assert!(verify_signature(b"key", r.body(), sig));
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(!verify_signature(b"Jefe", b"x", "sha256=zz"));
        assert!(!verify_signature(b"Jefe", b"x", "md5=00"));
    }

    #[tokio::test]
    async fn standard_paths_are_added_only_when_the_url_has_none() {
        for (kind, url, want) in [
            (
                SinkKind::SplunkHec,
                "https://splunk:8088",
                "https://splunk:8088/services/collector/event",
            ),
            (
                SinkKind::SplunkHec,
                "https://splunk:8088/custom",
                "https://splunk:8088/custom",
            ),
            (
                SinkKind::Otlp,
                "http://collector:4318/",
                "http://collector:4318/v1/logs",
            ),
            (
                SinkKind::Slack,
                "https://hooks.example/a/b",
                "https://hooks.example/a/b",
            ),
        ] {
            let sink = HttpSink::new(&config(kind, url, Some("t")), Origin::default()).unwrap();
            assert_eq!(sink.endpoint, want);
        }
        let slack = HttpSink::new(
            &config(
                SinkKind::Slack,
                "https://hooks.example/services/T0/B0/secret",
                None,
            ),
            Origin::default(),
        )
        .unwrap();
        assert!(
            !slack.shown_endpoint().contains("secret"),
            "{}",
            slack.shown_endpoint()
        );
    }

    #[tokio::test]
    async fn hec_and_otlp_carry_the_token() {
        let f = crate::sample::finding().unwrap();
        let hec = HttpSink::new(
            &config(SinkKind::SplunkHec, "http://h:8088", Some("tok")),
            Origin::default(),
        )
        .unwrap();
        let r = hec.request(&f).unwrap();
        assert_eq!(r.headers()[header::AUTHORIZATION], "Splunk tok");
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["event"]["id"], f.id.as_str());
        assert_eq!(body["sourcetype"], "vigil:finding");
        let otlp = HttpSink::new(
            &config(SinkKind::Otlp, "http://o:4318", None),
            Origin::default(),
        )
        .unwrap();
        let r = otlp.request(&f).unwrap();
        assert!(r.headers().get(header::AUTHORIZATION).is_none());
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        let record = &body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(record["severityNumber"], 13);
        let inner: Value =
            serde_json::from_str(record["body"]["stringValue"].as_str().unwrap()).unwrap();
        assert_eq!(inner["id"], f.id.as_str());
    }

    #[test]
    fn slack_text_escapes_markup_from_the_workload() {
        let mut f = crate::sample::finding().unwrap();
        f.title = "<!channel> & friends".into();
        let text = slack_message(&f)["text"].as_str().unwrap().to_owned();
        assert!(text.contains("&lt;!channel&gt; &amp; friends"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
    }
}
