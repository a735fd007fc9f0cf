//! The NATS JetStream sink: each finding is published to a subject that a stream captures, and
//! counts as delivered once JetStream acknowledges it stored. The message id (`Nats-Msg-Id`)
//! is the finding's [`update_id`](crate::format::update_id), so a redelivery of the same update
//! within the stream's duplicate window is stored once.

use std::{path::PathBuf, time::Duration};

use async_nats::{
    ConnectOptions,
    jetstream::{self, Context, message::PublishMessage, stream},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::Mutex;
use vigil_crds::finding::Finding;

use crate::format::{self, Format, FormatError, Origin};

fn default_subject() -> String {
    "vigil.findings".to_owned()
}

/// The NATS-specific settings of a sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URL(s), e.g. `nats://127.0.0.1:4222` (`tls://` for TLS); comma-separated for a
    /// cluster.
    pub url: String,
    /// Subject the findings are published to, `vigil.findings` by default.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// A stream to create (capturing `subject`) when it does not exist; when absent, a stream
    /// that captures the subject must exist, or every publish fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// NATS credentials file (JWT and nkey seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
    /// PEM CA file for a TLS server; requires TLS when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Why a finding was not stored by JetStream.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The subject cannot be published to.
    #[error(
        "subject {0:?} is not a publishable NATS subject (no spaces, wildcards or empty tokens)"
    )]
    Subject(String),
    /// The finding could not be rendered.
    #[error("rendering the finding")]
    Format(#[from] FormatError),
    /// The credentials file could not be read.
    #[error("reading credentials file {}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No connection to the server.
    #[error("connecting to {url}")]
    Connect {
        /// The server.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The stream could not be created or looked up.
    #[error("creating stream {stream}")]
    Stream {
        /// The stream.
        stream: String,
        /// The client's error.
        #[source]
        source: jetstream::context::CreateStreamError,
    },
    /// Publishing, or waiting for JetStream's acknowledgement, failed (no stream captures the
    /// subject, the server is down, the acknowledgement timed out).
    #[error("publishing to {subject}")]
    Publish {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: jetstream::context::PublishError,
    },
}

/// What JetStream answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The stream that stored the finding.
    pub stream: String,
    /// Its sequence number there.
    pub sequence: u64,
    /// JetStream had this update already (same `Nats-Msg-Id` within the duplicate window).
    pub duplicate: bool,
}

/// A configured JetStream destination; connects on first use, then the client reconnects by
/// itself.
pub struct NatsSink {
    settings: NatsSettings,
    format: Format,
    origin: Origin,
    timeout: Duration,
    context: Mutex<Option<Context>>,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("settings", &self.settings)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Whether NATS accepts `subject` for a publish: dot-separated non-empty tokens of printable
/// characters other than the wildcards.
fn publishable(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && token.chars().all(|c| c.is_ascii_graphic())
        })
}

impl NatsSink {
    /// Checks the settings without connecting: an unreachable server is a failed delivery,
    /// retried, not a bad setting.
    pub fn new(
        settings: NatsSettings,
        format: Format,
        origin: Origin,
        timeout: Duration,
    ) -> Result<Self, NatsError> {
        if !publishable(&settings.subject) {
            return Err(NatsError::Subject(settings.subject));
        }
        format.check_origin(&origin)?;
        Ok(Self {
            settings,
            format,
            origin,
            timeout,
            context: Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<Context, NatsError> {
        let s = &self.settings;
        let mut options = ConnectOptions::new()
            .name("vigil")
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout));
        if let Some(path) = &s.credentials_file {
            options =
                options
                    .credentials_file(path)
                    .await
                    .map_err(|source| NatsError::Credentials {
                        path: path.clone(),
                        source,
                    })?;
        }
        if let Some(ca) = &s.ca_file {
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        let client =
            options
                .connect(s.url.as_str())
                .await
                .map_err(|source| NatsError::Connect {
                    url: s.url.clone(),
                    source,
                })?;
        let context = jetstream::new(client);
        if let Some(name) = &s.stream {
            context
                .get_or_create_stream(stream::Config {
                    name: name.clone(),
                    subjects: vec![s.subject.clone()],
                    ..stream::Config::default()
                })
                .await
                .map_err(|source| NatsError::Stream {
                    stream: name.clone(),
                    source,
                })?;
        }
        Ok(context)
    }

    /// Publishes one finding and waits for JetStream to store it.
    pub async fn send(&self, finding: &Finding) -> Result<Stored, NatsError> {
        let payload = serde_json::to_vec(&format::render(self.format, finding, &self.origin)?)
            .map_err(FormatError::from)?;
        let context = {
            let mut slot = self.context.lock().await;
            match slot.as_ref() {
                Some(context) => context.clone(),
                None => slot.insert(self.connect().await?).clone(),
            }
        };
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(format::update_id(finding))
            .header("Content-Type", format::content_type(self.format))
            .header("Vigil-Finding-Type", finding.finding_type.as_str())
            .header(
                "Vigil-Severity",
                finding.severity_label.to_string().as_str(),
            );
        let subject = &self.settings.subject;
        let publish_error = |source| NatsError::Publish {
            subject: subject.clone(),
            source,
        };
        let ack = context
            .send_publish(subject.clone(), publish)
            .await
            .map_err(publish_error)?
            .await
            .map_err(publish_error)?;
        Ok(Stored {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_that_can_be_published_to() {
        for (subject, ok) in [
            ("vigil.findings", true),
            ("vigil.findings.high", true),
            ("vigil", true),
            ("", false),
            ("vigil..x", false),
            ("vigil.*", false),
            ("vigil.>", false),
            ("vigil findings", false),
        ] {
            assert_eq!(publishable(subject), ok, "{subject:?}");
        }
        let settings = NatsSettings {
            url: "nats://127.0.0.1:4222".into(),
            subject: "a.*".into(),
            stream: None,
            credentials_file: None,
            ca_file: None,
        };
        let err = NatsSink::new(
            settings,
            Format::Vigil,
            Origin::default(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"a.*\""), "{err}");
    }

    #[test]
    fn settings_default_the_subject_and_refuse_unknown_fields() {
        let s: NatsSettings =
            serde_json::from_value(serde_json::json!({"url": "nats://127.0.0.1:4222"})).unwrap();
        assert_eq!(s.subject, "vigil.findings");
        assert!(
            serde_json::from_value::<NatsSettings>(
                serde_json::json!({"url": "nats://x:1", "subjekt": "a"})
            )
            .is_err()
        );
    }
}
