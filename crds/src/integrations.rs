//! Where findings are delivered besides `RuntimeFinding` objects: a policy's
//! `spec.integrations` ([`IntegrationsSpec`], secrets only by reference to Kubernetes Secrets),
//! and the document the agent reads ([`IntegrationsDocument`]): the host's `--integrations` file,
//! or the same document carried in the agent configuration the operator renders, with each
//! Secret reference turned into the file the DaemonSet mounts it as.
//!
//! The agent validates the document (`vigil_integrations::config`); the schema here bounds every
//! string and list so the API server refuses what the agent would.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{finding::SeverityLabel, limits};

/// Where the DaemonSet mounts referenced Secrets: `<dir>/<secret name>/<key>`.
pub const SECRETS_DIR: &str = "/etc/vigil/secrets";

/// A policy's sinks.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationsSpec {
    /// The account findings are attributed to (GuardDuty's `AccountId`, ASFF's `AwsAccountId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = "^[A-Za-z0-9]+$"))]
    pub account_id: Option<String>,
    /// The region, e.g. `eu-west-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = "^[a-z0-9-]+$"))]
    pub region: Option<String>,
    /// Where findings go, by unique name. Each sink has its own on-disk queue on every node.
    #[serde(default)]
    #[schemars(length(max = limits::SINKS), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub sinks: Vec<SinkSpec>,
    /// Retries and bounds shared by every sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryDocument>,
}

/// The kind of a sink.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum SinkType {
    /// JSON POST signed with HMAC-SHA256 (`X-Vigil-Signature`).
    Webhook,
    /// Slack incoming webhook.
    Slack,
    /// Splunk HTTP Event Collector.
    SplunkHec,
    /// RFC 5424 syslog over TCP or TLS.
    Syslog,
    /// OpenTelemetry logs over HTTP.
    Otlp,
    /// NATS JetStream.
    Nats,
}

impl SinkType {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [SinkType; 6] = [
        Self::Webhook,
        Self::Slack,
        Self::SplunkHec,
        Self::Syslog,
        Self::Otlp,
        Self::Nats,
    ];

    /// The name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::SplunkHec => "splunk-hec",
            Self::Syslog => "syslog",
            Self::Otlp => "otlp",
            Self::Nats => "nats",
        }
    }

    /// The URL schemes this kind accepts.
    pub fn schemes(self) -> &'static [&'static str] {
        match self {
            Self::Webhook | Self::Slack | Self::SplunkHec | Self::Otlp => &["http", "https"],
            Self::Syslog => &["tcp", "tls"],
            Self::Nats => &["nats", "tls"],
        }
    }

    /// Whether the kind needs a secret (`Some(true)`), may have one (`Some(false)`) or takes
    /// none (`None`).
    pub fn secret(self) -> Option<bool> {
        match self {
            Self::Webhook | Self::SplunkHec => Some(true),
            Self::Otlp | Self::Nats => Some(false),
            Self::Slack | Self::Syslog => None,
        }
    }

    /// Whether `format` applies (a Slack message is text for people).
    pub fn has_format(self) -> bool {
        !matches!(self, Self::Slack)
    }
}

impl std::fmt::Display for SinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SinkType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or(())
    }
}

/// A document format.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// Vigil's finding document.
    Vigil,
    /// GuardDuty's finding JSON.
    GuardDuty,
    /// AWS Security Finding Format (needs `accountId` and `region`).
    Asff,
    /// OCSF Detection Finding.
    Ocsf,
    /// CloudEvents 1.0, structured.
    CloudEvents,
}

impl SinkFormat {
    /// The name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vigil => "vigil",
            Self::GuardDuty => "guardduty",
            Self::Asff => "asff",
            Self::Ocsf => "ocsf",
            Self::CloudEvents => "cloudevents",
        }
    }
}

/// A key of a Secret in the agent's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// The Secret, in the namespace the agent DaemonSet runs in.
    #[schemars(length(min = 1, max = limits::DNS_SUBDOMAIN), regex(pattern = limits::DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// The key inside the Secret.
    #[schemars(length(min = 1, max = limits::DNS_SUBDOMAIN), regex(pattern = limits::CONFIG_MAP_KEY_PATTERN))]
    pub key: String,
}

impl SecretKeyReference {
    /// The file the agent reads the secret from.
    pub fn path(&self) -> String {
        format!("{SECRETS_DIR}/{}/{}", self.name, self.key)
    }
}

/// One sink of a policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SinkSpec {
    /// Unique name: lower-case letters, digits and `-` (it names the sink's queue and metrics).
    #[schemars(length(min = 1, max = limits::SINK_NAME), regex(pattern = limits::SINK_NAME_PATTERN))]
    pub name: String,
    /// `webhook`, `slack`, `splunk-hec`, `syslog`, `otlp` or `nats`.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// Where to deliver (`http(s)://` for the HTTP kinds, `tcp://`/`tls://` for syslog,
    /// `nats://`/`tls://` for NATS). A Slack webhook URL is a credential: whoever can read the
    /// policy can read it.
    #[schemars(length(min = 1, max = limits::URL))]
    pub url: String,
    /// The Secret key holding the webhook signing key, the Splunk HEC token or the OTLP/NATS
    /// token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
    /// Document format (default `vigil`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SinkFormat>,
    /// Least severity delivered (default `Low`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<SeverityLabel>,
    /// Only these finding types; every type when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::SINK_FILTER_VALUES), inner(length(max = limits::FINDING_TYPE), regex(pattern = limits::FINDING_TYPE_PATTERN)))]
    pub finding_types: Vec<String>,
    /// Only findings of pods in these namespaces; every finding when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::SINK_FILTER_VALUES), inner(length(min = 1, max = limits::LABEL_VALUE), regex(pattern = limits::SINK_NAME_PATTERN)))]
    pub namespaces: Vec<String>,
    /// syslog: `json` (the finding in `format`; the default) or `cef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(json|cef)$"), length(max = 4))]
    pub payload: Option<String>,
    /// syslog: the facility (`auth` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = "^(kern|user|daemon|auth|authpriv|audit|alert|local[0-7])$"),
        length(max = 8)
    )]
    pub facility: Option<String>,
    /// syslog and NATS over TLS: the Secret key holding the PEM CA certificates to trust; the
    /// system's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyReference>,
    /// NATS: the subject findings are published to (`vigil.findings` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = "^[!-~]+$"))]
    pub subject: Option<String>,
    /// NATS: a JetStream stream to create, capturing `subject`, when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = "^[!-~]+$"))]
    pub stream: Option<String>,
}

/// The integrations document the agent reads: the host's `--integrations` file, and
/// `integrations` of the agent configuration in a cluster. Nothing is validated here.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationsDocument {
    /// The account findings are attributed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The sinks.
    #[serde(default)]
    pub sinks: Vec<SinkDocument>,
    /// Delivery settings shared by every sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryDocument>,
}

/// One sink as written in the document.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkDocument {
    /// Unique name.
    #[serde(default)]
    pub name: String,
    /// `webhook`, `slack`, `splunk-hec`, `syslog`, `otlp` or `nats`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Where to deliver.
    #[serde(default)]
    pub url: String,
    /// File holding the secret (webhook signing key, Splunk HEC token, OTLP bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// Document format; `vigil` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Least severity delivered; `Low` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<String>,
    /// Only these finding types; every type when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finding_types: Vec<String>,
    /// Only pod findings in these namespaces; every finding when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// syslog: `json` (the finding in `format`; the default) or `cef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// syslog: the facility (`auth` by default; `kern`, `user`, `daemon`, `authpriv`, `audit`,
    /// `alert`, `local0`..`local7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<String>,
    /// syslog and NATS over TLS: PEM file of the CA certificates to trust; the system's when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// NATS: the subject findings are published to (`vigil.findings` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// NATS: a JetStream stream to create, capturing `subject`, when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

/// Delivery settings, in a policy and in the document.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryDocument {
    /// Attempts at one finding before it is dead-lettered (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_attempts: Option<u32>,
    /// Wait after the first failure, doubled after each further one (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3_600_000))]
    pub initial_backoff_millis: Option<u64>,
    /// Longest wait between attempts (default 300000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86_400_000))]
    pub max_backoff_millis: Option<u64>,
    /// Most findings waiting per sink and node; beyond it the oldest of the lowest severity goes
    /// (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_queued: Option<u64>,
    /// Longest one attempt may take (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_millis: Option<u64>,
}

impl IntegrationsSpec {
    /// The document the agent reads: each `secretRef` becomes the file the DaemonSet mounts it
    /// as ([`SecretKeyReference::path`]).
    pub fn to_document(&self) -> IntegrationsDocument {
        IntegrationsDocument {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            sinks: self
                .sinks
                .iter()
                .map(|s| SinkDocument {
                    name: s.name.clone(),
                    kind: s.kind.name().to_owned(),
                    url: s.url.clone(),
                    secret_file: s.secret_ref.as_ref().map(SecretKeyReference::path),
                    format: s.format.map(|f| f.as_str().to_owned()),
                    min_severity: s.min_severity.map(|l| format!("{l:?}")),
                    finding_types: s.finding_types.clone(),
                    namespaces: s.namespaces.clone(),
                    payload: s.payload.clone(),
                    facility: s.facility.clone(),
                    ca_file: s.ca_secret_ref.as_ref().map(SecretKeyReference::path),
                    subject: s.subject.clone(),
                    stream: s.stream.clone(),
                })
                .collect(),
            delivery: self.delivery.clone(),
        }
    }

    /// The Secret keys the sinks reference (secrets and CA certificates), each once.
    pub fn secret_references(&self) -> std::collections::BTreeSet<(&str, &str)> {
        self.sinks
            .iter()
            .flat_map(|s| s.secret_ref.iter().chain(&s.ca_secret_ref))
            .map(|r| (r.name.as_str(), r.key.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_the_mounted_secret_files() {
        let spec: IntegrationsSpec = serde_json::from_value(serde_json::json!({
            "region": "eu-west-1",
            "sinks": [
                {"name": "siem", "type": "webhook", "url": "https://siem.example/hook",
                 "secretRef": {"name": "vigil-sinks", "key": "webhook"},
                 "format": "cloudevents", "minSeverity": "High",
                 "namespaces": ["shop"]},
                {"name": "splunk", "type": "splunk-hec", "url": "https://splunk:8088",
                 "secretRef": {"name": "vigil-sinks", "key": "hec"}},
                {"name": "chat", "type": "slack", "url": "https://hooks.slack.example/x"},
                {"name": "bus", "type": "nats", "url": "tls://nats:4222", "subject": "vigil.eu",
                 "caSecretRef": {"name": "nats-ca", "key": "ca.pem"}}
            ],
            "delivery": {"maxAttempts": 5}
        }))
        .unwrap();
        let doc = spec.to_document();
        let yaml = serde_yaml::to_string(&doc).unwrap();
        let back: IntegrationsDocument = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, doc);
        let siem = &doc.sinks[0];
        assert_eq!(siem.kind, "webhook");
        assert_eq!(
            siem.secret_file.as_deref(),
            Some("/etc/vigil/secrets/vigil-sinks/webhook")
        );
        assert_eq!(siem.format.as_deref(), Some("cloudevents"));
        assert_eq!(siem.min_severity.as_deref(), Some("High"));
        assert_eq!(doc.sinks[1].kind, "splunk-hec");
        assert_eq!(doc.sinks[2].secret_file, None);
        assert_eq!(
            doc.sinks[3].ca_file.as_deref(),
            Some("/etc/vigil/secrets/nats-ca/ca.pem")
        );
        assert_eq!(doc.sinks[3].subject.as_deref(), Some("vigil.eu"));
        assert_eq!(doc.delivery.as_ref().unwrap().max_attempts, Some(5));
        assert_eq!(
            spec.secret_references().into_iter().collect::<Vec<_>>(),
            [
                ("nats-ca", "ca.pem"),
                ("vigil-sinks", "hec"),
                ("vigil-sinks", "webhook")
            ]
        );
    }
}
