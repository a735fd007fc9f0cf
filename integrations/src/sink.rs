//! The [`Sink`] trait: one destination findings are delivered to, one finding at a time.
//!
//! A sink only sends. Everything around it (the filter, the on-disk queue, retries with backoff,
//! the dead-letter count, metrics) is the delivery engine's, so a new sink is one type with one
//! method. The engine calls [`Sink::send`] with the oldest finding waiting for that sink and
//!
//! - on `Ok(())` removes the finding from the queue (the receiver has it);
//! - on an error that [`SinkError::is_permanent`] dead-letters it at once (sending the same
//!   bytes again cannot succeed: a document the format cannot render, a 400 answer);
//! - on any other error waits (exponential backoff) and sends the same finding again, until the
//!   configured number of attempts is spent, then dead-letters it.
//!
//! Delivery is at least once: a sink may be asked to send a finding it already sent (the agent
//! stopped before it recorded the success), so receivers should deduplicate on the finding id.
//! The engine bounds each attempt with a timeout and never runs two sends of one sink at once.

use std::{future::Future, pin::Pin};

use thiserror::Error;
use vigil_crds::finding::Finding;

use crate::{
    config::{SinkConfig, SinkConfigError, SinkKind},
    format::FormatError,
};

/// What [`Sink::send`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// A destination for findings.
pub trait Sink: Send + Sync {
    /// The sink's name from the configuration (its queue, logs and metrics use it).
    fn name(&self) -> &str;

    /// Delivers `finding`; resolves to `Ok(())` once the receiver has accepted it.
    fn send<'a>(&'a self, finding: &'a Finding) -> SendFuture<'a>;
}

/// Why a send failed.
#[derive(Debug, Error)]
pub enum SinkError {
    /// The finding could not be rendered in the sink's format (permanent).
    #[error("cannot render the finding: {0}")]
    Format(#[from] FormatError),
    /// The receiver could not be reached or the connection broke.
    #[error("cannot reach {endpoint}: {source}")]
    Connect {
        /// The endpoint, without credentials.
        endpoint: String,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The receiver answered with an error status. 408, 429 and 5xx are worth retrying; other
    /// statuses are permanent.
    #[error("{endpoint} answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The endpoint, without credentials.
        endpoint: String,
        /// The status.
        status: http::StatusCode,
        /// The start of the answer's body, for the log.
        body: String,
    },
    /// The receiver accepted the request but said the finding was not taken (Splunk's `code`).
    #[error("{endpoint} refused the finding: {reason}")]
    Refused {
        /// The endpoint, without credentials.
        endpoint: String,
        /// What the receiver said.
        reason: String,
        /// Whether sending again can help.
        permanent: bool,
    },
    /// The request could not be built (a header value the configuration produced).
    #[error("cannot build the request to {endpoint}: {source}")]
    Request {
        /// The endpoint, without credentials.
        endpoint: String,
        /// The error.
        #[source]
        source: http::Error,
    },
    /// The attempt took longer than the configured timeout.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Other I/O on the sink's own connection (syslog, NATS).
    #[error("{endpoint}: {source}")]
    Io {
        /// The endpoint, without credentials.
        endpoint: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl SinkError {
    /// Whether sending the same finding again cannot succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Format(_) | Self::Request { .. } => true,
            Self::Status { status, .. } => {
                status.is_client_error()
                    && *status != http::StatusCode::REQUEST_TIMEOUT
                    && *status != http::StatusCode::TOO_MANY_REQUESTS
            }
            Self::Refused { permanent, .. } => *permanent,
            Self::Connect { .. } | Self::Io { .. } | Self::Timeout(_) => false,
        }
    }
}

/// The sink a validated configuration describes. A syslog or NATS sink whose certificate files
/// or credentials do not parse is refused with [`SinkConfigError::BadOption`].
pub fn build(
    config: &SinkConfig,
    origin: &crate::format::Origin,
) -> Result<Box<dyn Sink>, SinkConfigError> {
    match config.kind {
        SinkKind::Webhook | SinkKind::Slack | SinkKind::SplunkHec | SinkKind::Otlp => Ok(Box::new(
            crate::http::HttpSink::new(config, origin.clone())?,
        )),
        SinkKind::Syslog => Ok(Box::new(crate::syslog::SyslogSink::from_config(
            config, origin,
        )?)),
        SinkKind::Nats => Ok(Box::new(crate::nats::NatsSink::from_config(
            config, origin,
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanence_by_status() {
        let status = |code: u16| SinkError::Status {
            endpoint: "x".into(),
            status: http::StatusCode::from_u16(code).unwrap(),
            body: String::new(),
        };
        for (code, permanent) in [
            (400, true),
            (401, true),
            (404, true),
            (408, false),
            (413, true),
            (429, false),
            (500, false),
            (503, false),
        ] {
            assert_eq!(status(code).is_permanent(), permanent, "{code}");
        }
        let connect = SinkError::Connect {
            endpoint: "x".into(),
            source: "refused".into(),
        };
        assert!(!connect.is_permanent());
    }
}
