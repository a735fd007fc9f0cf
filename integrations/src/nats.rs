//! The NATS JetStream sink: each finding is published to a subject that a stream captures, and
//! counts as delivered once JetStream acknowledges it stored. The message id (`Nats-Msg-Id`)
//! is the finding's [`update_id`](crate::format::update_id), so a redelivery of the same update
//! within the stream's duplicate window is stored once.

use std::{path::PathBuf, time::Duration};

use async_nats::{
    ConnectOptions,
    jetstream::{self, Context, message::PublishMessage, stream},
};
use thiserror::Error;
use tokio::sync::Mutex;
use vigil_crds::finding::Finding;

use crate::{
    config::{SinkConfig, SinkConfigError},
    format::{self, Format, FormatError, Origin},
    sink::{SendFuture, Sink, SinkError},
};

/// The subject when none is configured.
pub const DEFAULT_SUBJECT: &str = "vigil.findings";

/// How long connecting or waiting for an acknowledgement may take inside one attempt (the
/// delivery engine bounds the whole attempt with its own `timeoutMillis`).
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How the sink authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// A credentials file's contents (user JWT and nkey seed).
    Credentials(String),
    /// A token.
    Token(String),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Credentials(_) => "Credentials(..)",
            Self::Token(_) => "Token(..)",
        })
    }
}

impl NatsAuth {
    /// The secret of a NATS sink: a credentials file (it holds a `NATS USER JWT` block) or a
    /// token.
    pub fn from_secret(secret: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(secret).ok()?.trim();
        if text.is_empty() {
            None
        } else if text.contains("BEGIN NATS USER JWT") {
            Some(Self::Credentials(text.to_owned()))
        } else {
            Some(Self::Token(text.to_owned()))
        }
    }
}

/// The settings of a NATS sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsSettings {
    /// Server URL, e.g. `nats://127.0.0.1:4222` (`tls://` for TLS).
    pub url: String,
    /// Subject the findings are published to.
    pub subject: String,
    /// A stream to create (capturing `subject`) when it does not exist; when absent, a stream
    /// that captures the subject must exist, or every publish fails.
    pub stream: Option<String>,
    /// Credentials or token.
    pub auth: Option<NatsAuth>,
    /// PEM CA file for a TLS server; requires TLS when set.
    pub ca_file: Option<PathBuf>,
}

impl NatsSettings {
    /// The settings of a validated `nats` sink; `None` when its secret is neither credentials
    /// nor a token (not UTF-8, or blank).
    pub fn from_config(config: &SinkConfig) -> Option<Self> {
        let auth = match &config.secret {
            Some(secret) => Some(NatsAuth::from_secret(secret.expose())?),
            None => None,
        };
        Some(Self {
            url: config.url.to_string(),
            subject: config
                .options
                .subject
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
            stream: config.options.stream.clone(),
            auth,
            ca_file: config.options.ca_file.clone(),
        })
    }
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
    /// The credentials could not be parsed.
    #[error("the credentials in secretFile")]
    Credentials(#[source] std::io::Error),
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
    name: String,
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
pub(crate) fn publishable(subject: &str) -> bool {
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
        name: &str,
        settings: NatsSettings,
        format: Format,
        origin: Origin,
        timeout: Duration,
    ) -> Result<Self, NatsError> {
        if !publishable(&settings.subject) {
            return Err(NatsError::Subject(settings.subject));
        }
        format.check_origin(&origin)?;
        if let Some(NatsAuth::Credentials(creds)) = &settings.auth {
            // Parse once now, so that bad credentials are a configuration error.
            ConnectOptions::with_credentials(creds).map_err(NatsError::Credentials)?;
        }
        Ok(Self {
            name: name.to_owned(),
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
        match &s.auth {
            Some(NatsAuth::Credentials(creds)) => {
                options = options.credentials(creds).map_err(NatsError::Credentials)?;
            }
            Some(NatsAuth::Token(token)) => options = options.token(token.clone()),
            None => {}
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

    /// A sink for a validated `nats` configuration.
    pub fn from_config(config: &SinkConfig, origin: &Origin) -> Result<Self, SinkConfigError> {
        let bad = |field, problem| SinkConfigError::BadOption {
            sink: config.name.clone(),
            field,
            problem,
        };
        let settings = NatsSettings::from_config(config).ok_or_else(|| {
            bad(
                "secretFile",
                "neither a NATS credentials file nor a token".to_owned(),
            )
        })?;
        Self::new(
            &config.name,
            settings,
            config.format,
            origin.clone(),
            IO_TIMEOUT,
        )
        .map_err(|e| {
            let field = match &e {
                NatsError::Credentials(_) => "secretFile",
                NatsError::Subject(_) => "subject",
                _ => "format",
            };
            bad(field, crate::syslog::error_chain(&e))
        })
    }

    /// The server, without credentials (the configuration's URL has none: they come from the
    /// secret).
    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// Publishes one finding and waits for JetStream to store it.
    pub async fn publish(&self, finding: &Finding) -> Result<Stored, NatsError> {
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

impl Sink for NatsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, finding: &'a Finding) -> SendFuture<'a> {
        Box::pin(async move {
            match self.publish(finding).await {
                Ok(_) => Ok(()),
                Err(NatsError::Format(e)) => Err(SinkError::Format(e)),
                Err(e) => Err(SinkError::Connect {
                    endpoint: format!("nats {}", self.url()),
                    source: Box::new(e),
                }),
            }
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
            auth: None,
            ca_file: None,
        };
        let err = NatsSink::new(
            "n",
            settings,
            Format::Vigil,
            Origin::default(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"a.*\""), "{err}");
    }

    #[test]
    fn secrets_are_credentials_or_tokens_and_never_printed() {
        let creds = "-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n";
        assert!(matches!(
            NatsAuth::from_secret(creds.as_bytes()),
            Some(NatsAuth::Credentials(_))
        ));
        let token = NatsAuth::from_secret(b"s3cret-token\n");
        assert_eq!(token, Some(NatsAuth::Token("s3cret-token".into())));
        assert_eq!(format!("{token:?}"), "Some(Token(..))");
        assert_eq!(NatsAuth::from_secret(b"  \n"), None);
        assert_eq!(NatsAuth::from_secret(&[0xff, 0xfe]), None);
        // Credentials that do not parse are refused when the sink is made.
        let settings = NatsSettings {
            url: "nats://127.0.0.1:4222".into(),
            subject: DEFAULT_SUBJECT.into(),
            stream: None,
            auth: Some(NatsAuth::Credentials(creds.into())),
            ca_file: None,
        };
        let err = NatsSink::new(
            "n",
            settings,
            Format::Vigil,
            Origin::default(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, NatsError::Credentials(_)), "{err}");
    }
}
