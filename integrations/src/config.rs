//! The integrations configuration: which sinks findings go to, what each one receives, and how
//! delivery retries. On a host it is the file of `node-agent run --integrations FILE`; in a
//! cluster the operator renders the same document from the policy's `spec.integrations`.
//!
//! ```yaml
//! accountId: "123456789012"     # optional: the account and region the formats name
//! region: eu-west-1             #   (asff needs both)
//! sinks:
//!   - name: siem                 # lower-case letters, digits and '-'; unique
//!     type: webhook              # webhook | slack | splunk-hec | syslog | otlp | nats
//!     url: http://127.0.0.1:9999/hook
//!     secretFile: /etc/vigil/webhook.key
//!     format: vigil              # vigil | guardduty | asff | ocsf | cloudevents
//!     minSeverity: Medium        # Low | Medium | High | Critical
//!     findingTypes: []           # empty: every type
//!     namespaces: []             # empty: every finding; otherwise pod findings in these only
//!   - name: siem-syslog          # syslog and nats take their own settings (docs/INTEGRATIONS.md)
//!     type: syslog
//!     url: tls://siem.example:6514
//!     payload: cef               # json | cef
//!     facility: local4
//!     caFile: /etc/vigil/siem-ca.pem
//! delivery:                      # optional; these are the defaults
//!   maxAttempts: 10
//!   initialBackoffMillis: 1000
//!   maxBackoffMillis: 300000
//!   maxQueued: 10000
//!   timeoutMillis: 10000
//! ```
//!
//! Validation is per sink: a sink with a mistake is reported ([`SinkConfigError`], naming the
//! sink and the field) and left out, and the others run. Only a file that cannot be read or
//! parsed at all fails as a whole ([`ConfigError`]).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use thiserror::Error;
use vigil_crds::finding::{Finding, SeverityLabel};

use crate::{
    format::{Format, FormatError, Origin},
    syslog::{Facility, Payload},
};

/// Most sinks in one configuration.
pub const MAX_SINKS: usize = 32;
/// Most characters of a sink name (it names the sink's spool file and its metrics).
pub const MAX_NAME: usize = 63;
/// Most characters of a URL.
pub const MAX_URL: usize = 2048;
/// Most entries of `findingTypes` and of `namespaces`.
pub const MAX_FILTER_VALUES: usize = 64;
/// Most bytes of a secret file.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// Most attempts at one finding before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 1000;
/// Most findings waiting per sink.
pub const MAX_QUEUED: u64 = 1_000_000;

/// The document as written (shared with the agent configuration a cluster's operator renders):
/// field names as in YAML, nothing validated yet.
pub use vigil_crds::integrations::{DeliveryDocument, IntegrationsDocument, SinkDocument};

/// The kind of a sink: one type for the host file and the policy's `spec.integrations`.
pub use vigil_crds::integrations::SinkType as SinkKind;

/// A secret read from a file; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from bytes (tests, and secrets that do not come from a file).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Which findings a sink receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkFilter {
    /// Least severity.
    pub min_severity: SeverityLabel,
    /// Only these types; every type when empty.
    pub finding_types: BTreeSet<String>,
    /// Only pod findings in these namespaces; every finding when empty.
    pub namespaces: BTreeSet<String>,
}

impl Default for SinkFilter {
    fn default() -> Self {
        Self {
            min_severity: SeverityLabel::Low,
            finding_types: BTreeSet::new(),
            namespaces: BTreeSet::new(),
        }
    }
}

impl SinkFilter {
    /// Whether `finding` goes to the sink. Archived findings never do.
    pub fn matches(&self, finding: &Finding) -> bool {
        !finding.archived
            && finding.severity_label >= self.min_severity
            && (self.finding_types.is_empty() || self.finding_types.contains(&finding.finding_type))
            && (self.namespaces.is_empty()
                || finding
                    .resource
                    .pod
                    .as_ref()
                    .is_some_and(|p| self.namespaces.contains(&p.namespace)))
    }
}

/// One validated sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkConfig {
    /// Unique name: lower-case letters, digits and `-`.
    pub name: String,
    /// The kind.
    pub kind: SinkKind,
    /// Where to deliver, parsed.
    pub url: http::Uri,
    /// The secret, read from `secretFile`.
    pub secret: Option<Secret>,
    /// Document format.
    pub format: Format,
    /// Which findings it receives.
    pub filter: SinkFilter,
    /// The settings of syslog and NATS sinks (defaults for the other kinds).
    pub options: SinkOptions,
}

/// Settings only some kinds take, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkOptions {
    /// syslog: what the message carries.
    pub payload: Payload,
    /// syslog: the facility.
    pub facility: Facility,
    /// syslog and NATS over TLS: the CA certificates to trust; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// NATS: the subject.
    pub subject: Option<String>,
    /// NATS: the stream to create when missing.
    pub stream: Option<String>,
}

/// How delivery retries, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Attempts at one finding before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Wait after the first failure.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Most findings waiting per sink.
    pub max_queued: u64,
    /// Longest one attempt may take.
    pub timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_queued: 10_000,
            timeout: Duration::from_secs(10),
        }
    }
}

impl DeliverySettings {
    /// The wait after `failures` failed attempts in a row (1 for the first): the initial backoff
    /// doubled per further failure, at most the maximum.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.initial_backoff
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_backoff)
    }
}

/// A configuration whose sinks were validated one by one.
#[derive(Clone, Debug, Default)]
pub struct Integrations {
    /// The sinks without mistakes.
    pub sinks: Vec<SinkConfig>,
    /// Delivery settings.
    pub delivery: DeliverySettings,
    /// What the formats name as the findings' origin (the agent adds the cluster name in
    /// cluster mode).
    pub origin: Origin,
    /// What was wrong with the other sinks (they are left out). Shared: the options holding a
    /// configuration are cloned, an I/O error cannot be.
    pub errors: Vec<std::sync::Arc<SinkConfigError>>,
}

/// The integrations file could not be used at all.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the integrations configuration: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the YAML document described in docs/INTEGRATIONS.md.
    #[error("{path}: not an integrations configuration: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error, with its line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// More sinks than [`MAX_SINKS`].
    #[error("{path}: {count} sinks, at most {MAX_SINKS} are allowed")]
    TooManySinks {
        /// The file.
        path: PathBuf,
        /// How many there are.
        count: usize,
    },
    /// The account id or region is not one.
    #[error("{path}: {field}: {problem}")]
    Origin {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// A delivery setting is out of range.
    #[error("{path}: delivery.{field}: {problem}")]
    Delivery {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

/// What is wrong with one sink. `sink` is its name, or `sinks[N]` when it has no usable name.
#[derive(Debug, Error)]
pub enum SinkConfigError {
    /// The name is missing, too long or not lower-case letters, digits and `-`.
    #[error(
        "sink {sink}: name {name:?}: must be 1 to {MAX_NAME} lower-case letters, digits and '-', starting and ending with a letter or digit"
    )]
    BadName {
        /// The sink.
        sink: String,
        /// The name as written.
        name: String,
    },
    /// Another sink has the same name.
    #[error("sink {sink}: name: another sink is already called {sink}")]
    DuplicateName {
        /// The sink.
        sink: String,
    },
    /// The type is not one of the known ones.
    #[error(
        "sink {sink}: type {value:?}: unknown; the types are webhook, slack, splunk-hec, syslog, otlp, nats"
    )]
    UnknownType {
        /// The sink.
        sink: String,
        /// The type as written.
        value: String,
    },
    /// The type is known but this build has no implementation of it yet.
    #[error("sink {sink}: type {kind}: not available in this build of the agent")]
    Unavailable {
        /// The sink.
        sink: String,
        /// The kind.
        kind: SinkKind,
    },
    /// The URL does not parse, or lacks a host.
    #[error("sink {sink}: url {url:?}: {problem}")]
    BadUrl {
        /// The sink.
        sink: String,
        /// The URL as written.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// The kind needs a secret and none was given.
    #[error("sink {sink}: secretFile: a {kind} sink needs one ({purpose})")]
    MissingSecret {
        /// The sink.
        sink: String,
        /// The kind.
        kind: SinkKind,
        /// What the secret is for.
        purpose: &'static str,
    },
    /// A secret was given to a kind that uses none.
    #[error("sink {sink}: secretFile: a {kind} sink uses no secret")]
    UnusedSecret {
        /// The sink.
        sink: String,
        /// The kind.
        kind: SinkKind,
    },
    /// The secret file could not be read.
    #[error("sink {sink}: secretFile {path}: cannot read it: {source}")]
    UnreadableSecret {
        /// The sink.
        sink: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The secret file is empty or too large.
    #[error("sink {sink}: secretFile {path}: {problem}")]
    BadSecret {
        /// The sink.
        sink: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// The format is unknown.
    #[error(
        "sink {sink}: format {value:?}: unknown; the formats are vigil, guardduty, asff, ocsf, cloudevents"
    )]
    UnknownFormat {
        /// The sink.
        sink: String,
        /// The format as written.
        value: String,
    },
    /// The format needs an origin value the configuration lacks (ASFF: `accountId`, `region`).
    #[error("sink {sink}: format: {source}")]
    FormatOrigin {
        /// The sink.
        sink: String,
        /// What the format needs.
        #[source]
        source: FormatError,
    },
    /// A format was given to a kind that has its own message (Slack).
    #[error("sink {sink}: format: a {kind} sink sends its own message; leave format out")]
    UnusedFormat {
        /// The sink.
        sink: String,
        /// The kind.
        kind: SinkKind,
    },
    /// The severity is not Low, Medium, High or Critical.
    #[error("sink {sink}: minSeverity {value:?}: must be Low, Medium, High or Critical")]
    UnknownSeverity {
        /// The sink.
        sink: String,
        /// The severity as written.
        value: String,
    },
    /// A finding type does not look like one (`Tactic:Runtime/Name`).
    #[error("sink {sink}: findingTypes: {value:?} is not a finding type (Tactic:Runtime/Name)")]
    BadFindingType {
        /// The sink.
        sink: String,
        /// The value.
        value: String,
    },
    /// A namespace is not a Kubernetes namespace name.
    #[error("sink {sink}: namespaces: {value:?} is not a namespace name")]
    BadNamespace {
        /// The sink.
        sink: String,
        /// The value.
        value: String,
    },
    /// A setting of a kind's own (syslog's `payload`, `facility`, `caFile`; NATS's `subject`,
    /// `stream`, `caFile`) is wrong, or given to a kind that does not take it.
    #[error("sink {sink}: {field}: {problem}")]
    BadOption {
        /// The sink.
        sink: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A list has too many values.
    #[error("sink {sink}: {field}: {count} values, at most {MAX_FILTER_VALUES}")]
    TooManyValues {
        /// The sink.
        sink: String,
        /// The field.
        field: &'static str,
        /// How many.
        count: usize,
    },
}

impl SinkConfigError {
    /// The sink the error is about (its name, or `sinks[N]`).
    pub fn sink(&self) -> &str {
        match self {
            Self::BadName { sink, .. }
            | Self::DuplicateName { sink }
            | Self::UnknownType { sink, .. }
            | Self::Unavailable { sink, .. }
            | Self::BadUrl { sink, .. }
            | Self::MissingSecret { sink, .. }
            | Self::UnusedSecret { sink, .. }
            | Self::UnreadableSecret { sink, .. }
            | Self::BadSecret { sink, .. }
            | Self::UnknownFormat { sink, .. }
            | Self::UnusedFormat { sink, .. }
            | Self::FormatOrigin { sink, .. }
            | Self::UnknownSeverity { sink, .. }
            | Self::BadFindingType { sink, .. }
            | Self::BadNamespace { sink, .. }
            | Self::BadOption { sink, .. }
            | Self::TooManyValues { sink, .. } => sink,
        }
    }
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Integrations, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let document: IntegrationsDocument =
        serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    validate(&document, path)
}

/// Validates `document` (read from `path`, which only names it in errors). Secret files are read
/// now.
pub fn validate(document: &IntegrationsDocument, path: &Path) -> Result<Integrations, ConfigError> {
    if document.sinks.len() > MAX_SINKS {
        return Err(ConfigError::TooManySinks {
            path: path.to_path_buf(),
            count: document.sinks.len(),
        });
    }
    let delivery = delivery_settings(document.delivery.as_ref(), path)?;
    let origin = origin(document, path)?;
    let mut out = Integrations {
        delivery,
        origin,
        ..Default::default()
    };
    let mut names = BTreeSet::new();
    for (i, sink) in document.sinks.iter().enumerate() {
        match validate_sink(sink, i, &out.origin) {
            Ok(config) if !names.insert(config.name.clone()) => {
                out.errors
                    .push(SinkConfigError::DuplicateName { sink: config.name }.into());
            }
            Ok(config) => out.sinks.push(config),
            Err(e) => {
                // A later sink of the same name is still a duplicate of this one.
                if is_name(&sink.name) {
                    names.insert(sink.name.clone());
                }
                out.errors.push(e.into());
            }
        }
    }
    Ok(out)
}

fn origin(document: &IntegrationsDocument, path: &Path) -> Result<Origin, ConfigError> {
    let bad = |field, problem| ConfigError::Origin {
        path: path.to_path_buf(),
        field,
        problem,
    };
    if let Some(a) = &document.account_id
        && (a.is_empty() || a.len() > 64 || !a.bytes().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(bad("accountId", "must be 1 to 64 letters and digits"));
    }
    if let Some(r) = &document.region
        && (r.is_empty()
            || r.len() > 64
            || !r
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'))
    {
        return Err(bad(
            "region",
            "must be 1 to 64 lower-case letters, digits and '-'",
        ));
    }
    Ok(Origin {
        account_id: document.account_id.clone(),
        region: document.region.clone(),
        cluster: None,
    })
}

fn delivery_settings(
    doc: Option<&DeliveryDocument>,
    path: &Path,
) -> Result<DeliverySettings, ConfigError> {
    let mut s = DeliverySettings::default();
    let Some(doc) = doc else { return Ok(s) };
    let bad = |field, problem| ConfigError::Delivery {
        path: path.to_path_buf(),
        field,
        problem,
    };
    if let Some(n) = doc.max_attempts {
        if !(1..=MAX_ATTEMPTS).contains(&n) {
            return Err(bad("maxAttempts", "must be 1 to 1000"));
        }
        s.max_attempts = n;
    }
    if let Some(ms) = doc.initial_backoff_millis {
        if !(1..=3_600_000).contains(&ms) {
            return Err(bad("initialBackoffMillis", "must be 1 to 3600000"));
        }
        s.initial_backoff = Duration::from_millis(ms);
    }
    if let Some(ms) = doc.max_backoff_millis {
        if !(1..=86_400_000).contains(&ms) {
            return Err(bad("maxBackoffMillis", "must be 1 to 86400000"));
        }
        s.max_backoff = Duration::from_millis(ms);
    }
    if s.max_backoff < s.initial_backoff {
        return Err(bad(
            "maxBackoffMillis",
            "must be at least initialBackoffMillis",
        ));
    }
    if let Some(n) = doc.max_queued {
        if !(1..=MAX_QUEUED).contains(&n) {
            return Err(bad("maxQueued", "must be 1 to 1000000"));
        }
        s.max_queued = n;
    }
    if let Some(ms) = doc.timeout_millis {
        if !(1..=600_000).contains(&ms) {
            return Err(bad("timeoutMillis", "must be 1 to 600000"));
        }
        s.timeout = Duration::from_millis(ms);
    }
    Ok(s)
}

/// Lower-case letters, digits and `-`, starting and ending with a letter or digit (a DNS label):
/// safe as a file name and a metrics label.
fn is_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_finding_type(value: &str) -> bool {
    let Some((tactic, rest)) = value.split_once(":Runtime/") else {
        return false;
    };
    !tactic.is_empty()
        && tactic.bytes().all(|c| c.is_ascii_alphabetic())
        && !rest.is_empty()
        && value.len() <= 128
        && rest.bytes().all(|c| c.is_ascii_graphic())
}

fn validate_sink(
    doc: &SinkDocument,
    index: usize,
    origin: &Origin,
) -> Result<SinkConfig, SinkConfigError> {
    let sink = if is_name(&doc.name) {
        doc.name.clone()
    } else {
        let sink = format!("sinks[{index}]");
        return Err(SinkConfigError::BadName {
            sink,
            name: doc.name.clone(),
        });
    };
    let kind: SinkKind = doc
        .kind
        .parse()
        .map_err(|()| SinkConfigError::UnknownType {
            sink: sink.clone(),
            value: doc.kind.clone(),
        })?;
    let url = parse_url(&sink, kind, &doc.url)?;
    let secret = match (&doc.secret_file, kind.secret()) {
        (None, Some(true)) => {
            return Err(SinkConfigError::MissingSecret {
                sink,
                kind,
                purpose: match kind {
                    SinkKind::SplunkHec => "the HEC token",
                    _ => "the key the body is signed with",
                },
            });
        }
        (Some(_), None) => return Err(SinkConfigError::UnusedSecret { sink, kind }),
        (Some(file), _) => Some(read_secret(&sink, Path::new(file))?),
        (None, _) => None,
    };
    let format =
        match doc.format.as_deref() {
            None => Format::Vigil,
            Some(_) if !kind.has_format() => {
                return Err(SinkConfigError::UnusedFormat { sink, kind });
            }
            Some(text) => serde_json::from_value(serde_json::Value::String(text.to_owned()))
                .map_err(|_| SinkConfigError::UnknownFormat {
                    sink: sink.clone(),
                    value: text.to_owned(),
                })?,
        };
    if let Err(source) = format.check_origin(origin) {
        return Err(SinkConfigError::FormatOrigin { sink, source });
    }
    let min_severity =
        match doc.min_severity.as_deref() {
            None => SeverityLabel::Low,
            Some(text) => serde_json::from_value(serde_json::Value::String(text.to_owned()))
                .map_err(|_| SinkConfigError::UnknownSeverity {
                    sink: sink.clone(),
                    value: text.to_owned(),
                })?,
        };
    for (field, values) in [
        ("findingTypes", &doc.finding_types),
        ("namespaces", &doc.namespaces),
    ] {
        if values.len() > MAX_FILTER_VALUES {
            return Err(SinkConfigError::TooManyValues {
                sink,
                field,
                count: values.len(),
            });
        }
    }
    if let Some(bad) = doc.finding_types.iter().find(|t| !is_finding_type(t)) {
        return Err(SinkConfigError::BadFindingType {
            sink,
            value: bad.clone(),
        });
    }
    if let Some(bad) = doc.namespaces.iter().find(|n| !is_name(n)) {
        return Err(SinkConfigError::BadNamespace {
            sink,
            value: bad.clone(),
        });
    }
    let options = sink_options(&sink, kind, &url, doc)?;
    Ok(SinkConfig {
        name: sink,
        kind,
        url,
        secret,
        format,
        filter: SinkFilter {
            min_severity,
            finding_types: doc.finding_types.iter().cloned().collect(),
            namespaces: doc.namespaces.iter().cloned().collect(),
        },
        options,
    })
}

/// The settings of syslog and NATS sinks: each only where it applies.
fn sink_options(
    sink: &str,
    kind: SinkKind,
    url: &http::Uri,
    doc: &SinkDocument,
) -> Result<SinkOptions, SinkConfigError> {
    let bad = |field, problem: String| SinkConfigError::BadOption {
        sink: sink.to_owned(),
        field,
        problem,
    };
    let unused = |field| bad(field, format!("a {kind} sink does not take it"));
    let tls = url.scheme_str() == Some("tls");
    let mut options = SinkOptions::default();
    for (field, value, kinds) in [
        ("payload", &doc.payload, &[SinkKind::Syslog][..]),
        ("facility", &doc.facility, &[SinkKind::Syslog][..]),
        (
            "caFile",
            &doc.ca_file,
            &[SinkKind::Syslog, SinkKind::Nats][..],
        ),
        ("subject", &doc.subject, &[SinkKind::Nats][..]),
        ("stream", &doc.stream, &[SinkKind::Nats][..]),
    ] {
        if value.is_some() && !kinds.contains(&kind) {
            return Err(unused(field));
        }
    }
    if let Some(text) = &doc.payload {
        options.payload = serde_json::from_value(serde_json::Value::String(text.clone()))
            .map_err(|_| bad("payload", format!("{text:?}: must be json or cef")))?;
        if options.payload == Payload::Cef && doc.format.is_some() {
            return Err(bad(
                "format",
                "a syslog sink with payload cef sends CEF; leave format out".into(),
            ));
        }
    }
    if let Some(text) = &doc.facility {
        options.facility = serde_json::from_value(serde_json::Value::String(text.clone()))
            .map_err(|_| {
                bad(
                    "facility",
                    format!("{text:?}: must be kern, user, daemon, auth, authpriv, audit, alert or local0 to local7"),
                )
            })?;
    }
    if let Some(path) = &doc.ca_file {
        if kind == SinkKind::Syslog && !tls {
            return Err(bad("caFile", "needs a tls:// url".into()));
        }
        if path.is_empty() {
            return Err(bad("caFile", "empty".into()));
        }
        options.ca_file = Some(PathBuf::from(path));
    }
    if let Some(subject) = &doc.subject {
        if !crate::nats::publishable(subject) {
            return Err(bad(
                "subject",
                format!(
                    "{subject:?}: not a NATS subject to publish to (dot-separated tokens, no spaces or wildcards)"
                ),
            ));
        }
        options.subject = Some(subject.clone());
    }
    if let Some(stream) = &doc.stream {
        let valid = !stream.is_empty()
            && stream.len() <= 255
            && stream
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '/' | '\\'));
        if !valid {
            return Err(bad(
                "stream",
                format!(
                    "{stream:?}: not a JetStream stream name (no spaces, '.', '*', '>', '/' or '\\')"
                ),
            ));
        }
        options.stream = Some(stream.clone());
    }
    Ok(options)
}

fn parse_url(sink: &str, kind: SinkKind, text: &str) -> Result<http::Uri, SinkConfigError> {
    let bad = |problem: String| SinkConfigError::BadUrl {
        sink: sink.to_owned(),
        url: text.to_owned(),
        problem,
    };
    if text.is_empty() {
        return Err(bad("missing".into()));
    }
    if text.len() > MAX_URL {
        return Err(bad(format!("longer than {MAX_URL} characters")));
    }
    let uri: http::Uri = text.parse().map_err(|e| bad(format!("{e}")))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if !kind.schemes().contains(&scheme) {
        return Err(bad(format!(
            "a {kind} sink needs a {} URL",
            kind.schemes().join(":// or ") + "://"
        )));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    if matches!(kind, SinkKind::Syslog | SinkKind::Nats) && uri.port_u16().is_none() {
        return Err(bad("no port".into()));
    }
    Ok(uri)
}

fn read_secret(sink: &str, path: &Path) -> Result<Secret, SinkConfigError> {
    let unreadable = |source| SinkConfigError::UnreadableSecret {
        sink: sink.to_owned(),
        path: path.to_path_buf(),
        source,
    };
    let bad = |problem| SinkConfigError::BadSecret {
        sink: sink.to_owned(),
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(bad("larger than 64 KiB"));
    }
    let mut bytes = std::fs::read(path).map_err(unreadable)?;
    // `echo secret > file` and Kubernetes Secrets made from such files end in a newline that is
    // not part of the key.
    while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(bad("empty"));
    }
    Ok(Secret(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed when the guard is dropped.
    fn temp_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("vigil-integrations-config-{name}-"))
            .tempdir()
            .unwrap()
    }

    fn from_yaml(yaml: &str) -> Integrations {
        let doc: IntegrationsDocument = serde_yaml::from_str(yaml).unwrap();
        validate(&doc, Path::new("test.yaml")).unwrap()
    }

    #[test]
    fn syslog_and_nats_settings_apply_to_their_kinds_only() {
        let table: &[(&str, &[&str])] = &[
            (
                "{name: a, type: slack, url: 'http://x/', payload: cef}",
                &["payload", "slack"],
            ),
            (
                "{name: b, type: otlp, url: 'http://x/', subject: a.b}",
                &["subject", "otlp"],
            ),
            (
                "{name: c, type: syslog, url: 'tcp://x:514', payload: xml}",
                &["payload", "xml"],
            ),
            (
                "{name: d, type: syslog, url: 'tcp://x:514', facility: local9}",
                &["facility", "local9"],
            ),
            (
                "{name: e, type: syslog, url: 'tcp://x:514', caFile: /ca.pem}",
                &["caFile", "tls://"],
            ),
            (
                "{name: f, type: syslog, url: 'tcp://x:514', payload: cef, format: ocsf}",
                &["format", "cef"],
            ),
            (
                "{name: g, type: syslog, url: 'tcp://x:514', stream: S}",
                &["stream", "syslog"],
            ),
            (
                "{name: h, type: nats, url: 'nats://x:4222', subject: 'a.*'}",
                &["subject", "a.*"],
            ),
            (
                "{name: i, type: nats, url: 'nats://x:4222', stream: a.b}",
                &["stream", "a.b"],
            ),
            (
                "{name: j, type: nats, url: 'nats://x:4222', payload: cef}",
                &["payload", "nats"],
            ),
        ];
        for (sink, words) in table {
            let got = from_yaml(&format!("sinks: [{sink}]"));
            assert!(got.sinks.is_empty(), "{sink}");
            let err = got.errors[0].to_string();
            for w in *words {
                assert!(err.contains(w), "{sink}: {err} lacks {w}");
            }
        }
        let got = from_yaml(
            "sinks:\n  - {name: s, type: syslog, url: 'tls://siem:6514', payload: cef, facility: local4, caFile: /etc/ca.pem}\n  - {name: n, type: nats, url: 'nats://nats:4222', subject: vigil.eu, stream: VIGIL, format: ocsf}\n",
        );
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        let s = &got.sinks[0].options;
        assert_eq!(s.payload, Payload::Cef);
        assert_eq!(s.facility, Facility::Local4);
        assert_eq!(s.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        let n = &got.sinks[1].options;
        assert_eq!(n.subject.as_deref(), Some("vigil.eu"));
        assert_eq!(n.stream.as_deref(), Some("VIGIL"));
        assert_eq!(got.sinks[1].format, Format::Ocsf);
    }

    #[test]
    fn the_issue_example_validates() {
        let scratch = temp_dir("example");
        let dir = scratch.path();
        let key = dir.join("webhook.key");
        std::fs::write(&key, "s3cret\n").unwrap();
        let yaml = format!(
            "sinks:\n  - name: siem\n    type: webhook\n    url: http://127.0.0.1:9999/hook\n    secretFile: {}\n    format: vigil\n    minSeverity: Medium\n",
            key.display()
        );
        let got = from_yaml(&yaml);
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        assert_eq!(got.sinks.len(), 1);
        let s = &got.sinks[0];
        assert_eq!(
            (s.name.as_str(), s.kind, s.format),
            ("siem", SinkKind::Webhook, Format::Vigil)
        );
        assert_eq!(s.secret.as_ref().unwrap().expose(), b"s3cret");
        assert_eq!(s.filter.min_severity, SeverityLabel::Medium);
        assert_eq!(got.delivery, DeliverySettings::default());
    }

    #[test]
    fn each_mistake_names_the_sink_and_field_and_spares_the_others() {
        let scratch = temp_dir("mistakes");
        let dir = scratch.path();
        let key = dir.join("k");
        std::fs::write(&key, "k").unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let missing = dir.join("missing");
        let k = key.display();
        // (sink yaml, the error's sink, words the message must hold)
        let table: Vec<(String, &str, &[&str])> = vec![
            (
                "{name: a, type: carrier-pigeon, url: 'http://x/'}".into(),
                "a",
                &["type", "carrier-pigeon", "webhook"],
            ),
            (
                format!("{{name: b, type: webhook, url: 'ftp://x/', secretFile: {k}}}"),
                "b",
                &["url", "ftp://x/", "http"],
            ),
            (
                format!("{{name: c, type: webhook, url: 'http://', secretFile: {k}}}"),
                "c",
                &["url"],
            ),
            (
                "{name: d, type: webhook, url: 'http://x/'}".into(),
                "d",
                &["secretFile", "needs"],
            ),
            (
                format!(
                    "{{name: e, type: webhook, url: 'http://x/', secretFile: {}}}",
                    missing.display()
                ),
                "e",
                &["secretFile", "cannot read", "missing"],
            ),
            (
                format!(
                    "{{name: f, type: splunk-hec, url: 'http://x/', secretFile: {}}}",
                    empty.display()
                ),
                "f",
                &["secretFile", "empty"],
            ),
            (
                format!(
                    "{{name: g, type: webhook, url: 'http://x/', secretFile: {k}, format: xml}}"
                ),
                "g",
                &["format", "xml"],
            ),
            (
                format!(
                    "{{name: h, type: webhook, url: 'http://x/', secretFile: {k}, minSeverity: Severe}}"
                ),
                "h",
                &["minSeverity", "Severe"],
            ),
            (
                "{name: Bad_Name, type: slack, url: 'http://x/'}".into(),
                "sinks[8]",
                &["name", "Bad_Name"],
            ),
            (
                format!("{{name: i, type: slack, url: 'http://x/', secretFile: {k}}}"),
                "i",
                &["secretFile", "no secret"],
            ),
            (
                "{name: j, type: slack, url: 'http://x/', format: ocsf}".into(),
                "j",
                &["format"],
            ),
            (
                "{name: l, type: slack, url: 'http://x/', findingTypes: [Nope]}".into(),
                "l",
                &["findingTypes", "Nope"],
            ),
            (
                "{name: m, type: syslog, url: 'tcp://x'}".into(),
                "m",
                &["url", "port"],
            ),
            (
                format!(
                    "{{name: n, type: webhook, url: 'http://x/', secretFile: {k}, format: asff}}"
                ),
                "n",
                &["format", "asff", "accountId"],
            ),
        ];
        let mut yaml = String::from("sinks:\n");
        for (sink, _, _) in &table {
            yaml.push_str(&format!("  - {sink}\n"));
        }
        yaml.push_str("  - {name: ok, type: slack, url: 'https://hooks.example/x'}\n");
        let got = from_yaml(&yaml);
        assert_eq!(got.sinks.len(), 1, "{:?}", got.errors);
        assert_eq!(got.sinks[0].name, "ok");
        assert_eq!(got.errors.len(), table.len());
        for (error, (_, sink, words)) in got.errors.iter().zip(&table) {
            let text = error.to_string();
            assert_eq!(error.sink(), *sink, "{text}");
            assert!(text.starts_with(&format!("sink {sink}: ")), "{text}");
            for w in *words {
                assert!(text.contains(w), "{text:?} lacks {w:?}");
            }
        }
    }

    #[test]
    fn the_origin_is_validated_and_lets_asff_render() {
        let got = from_yaml(
            "accountId: '123456789012'\nregion: eu-west-1\nsinks:\n  - {name: hub, type: otlp, url: 'http://x/', format: asff}\n",
        );
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        assert_eq!(got.origin.region.as_deref(), Some("eu-west-1"));
        let doc: IntegrationsDocument = serde_yaml::from_str("region: 'EU West'\n").unwrap();
        let e = validate(&doc, Path::new("o.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("o.yaml: region: "), "{e}");
    }

    #[test]
    fn duplicate_names_are_refused_after_the_first() {
        let got = from_yaml(
            "sinks:\n  - {name: a, type: slack, url: 'http://x/'}\n  - {name: a, type: slack, url: 'http://y/'}\n",
        );
        assert_eq!(got.sinks.len(), 1);
        assert_eq!(got.sinks[0].url, "http://x/");
        assert!(
            matches!(&got.errors[..], [e] if matches!(&**e, SinkConfigError::DuplicateName { sink } if sink == "a"))
        );
    }

    #[test]
    fn whole_file_errors_name_the_file() {
        let scratch = temp_dir("file");
        let dir = scratch.path();
        let missing = dir.join("nope.yaml");
        let e = load(&missing).unwrap_err();
        assert!(e.to_string().contains("nope.yaml"), "{e}");
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "sinks:\n  - name: a\n    colour: red\n").unwrap();
        let e = load(&bad).unwrap_err();
        assert!(
            e.to_string().contains("bad.yaml") && e.to_string().contains("colour"),
            "{e}"
        );
        std::fs::write(&bad, "delivery:\n  maxAttempts: 0\n").unwrap();
        let e = load(&bad).unwrap_err();
        assert!(e.to_string().contains("delivery.maxAttempts"), "{e}");
    }

    #[test]
    fn filter_by_severity_type_and_namespace() {
        let mut f = vigil_crds::finding::Finding {
            archived: false,
            ..sample()
        };
        f.severity_label = SeverityLabel::Medium;
        let pod_ns = f.resource.pod.as_ref().map(|p| p.namespace.clone());
        let mut filter = SinkFilter::default();
        assert!(filter.matches(&f));
        filter.min_severity = SeverityLabel::High;
        assert!(!filter.matches(&f));
        filter.min_severity = SeverityLabel::Medium;
        filter.finding_types.insert("Other:Runtime/Thing".into());
        assert!(!filter.matches(&f));
        filter.finding_types.insert(f.finding_type.clone());
        assert!(filter.matches(&f));
        filter.namespaces.insert("elsewhere".into());
        assert!(!filter.matches(&f));
        if let Some(ns) = pod_ns {
            filter.namespaces.insert(ns);
            assert!(filter.matches(&f));
        }
        f.archived = true;
        assert!(!SinkFilter::default().matches(&f));
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let s = DeliverySettings {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..Default::default()
        };
        let got: Vec<u128> = (1..=6).map(|n| s.backoff(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(s.backoff(u32::MAX).as_millis(), 1000);
    }

    pub(crate) fn sample() -> Finding {
        crate::sample::finding().unwrap()
    }
}
