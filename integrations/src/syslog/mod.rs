//! The syslog sink: one RFC 5424 message per finding over TCP or TLS (RFC 5425), framed by
//! octet counting, with the finding as JSON (in the sink's format) or as a CEF event.

pub mod transport;
pub mod wire;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use thiserror::Error;
use tokio::sync::Mutex;
use vigil_crds::finding::Finding;

pub use self::{
    transport::{Connection, Endpoint, TlsOptions, TransportError},
    wire::{Facility, Payload},
};
use crate::{
    config::{SinkConfig, SinkConfigError},
    format::{self, Format, FormatError, Origin},
    sink::{SendFuture, Sink, SinkError},
};

/// An error and its sources, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How long connecting or writing may take inside one attempt (the delivery engine bounds the
/// whole attempt with its own `timeoutMillis`).
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings of a syslog sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSettings {
    /// The receiver, `host:port` (RFC 5425 uses 6514 for TLS).
    pub address: String,
    /// TLS; plain TCP when absent.
    pub tls: Option<TlsOptions>,
    /// `json` (the finding in the sink's `format`) or `cef`.
    pub payload: Payload,
    /// Syslog facility.
    pub facility: Facility,
}

impl SyslogSettings {
    /// The settings of a validated `syslog` sink: `tcp://host:port` or `tls://host:port`.
    pub fn from_config(config: &SinkConfig) -> Self {
        let host = config.url.host().unwrap_or_default();
        let port = config.url.port_u16().unwrap_or(DEFAULT_PORT);
        let tls = (config.url.scheme_str() == Some("tls")).then(|| TlsOptions {
            ca_file: config.options.ca_file.clone(),
            ..TlsOptions::default()
        });
        Self {
            address: format!("{host}:{port}"),
            tls,
            payload: config.options.payload,
            facility: config.options.facility,
        }
    }
}

/// RFC 6587's customary port; the configuration requires one anyway.
const DEFAULT_PORT: u16 = 514;

/// Why a finding was not delivered to the syslog receiver.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SyslogError {
    /// The finding could not be rendered.
    #[error("rendering the finding")]
    Format(#[from] FormatError),
    /// Connecting or writing failed; the next delivery reconnects.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A configured syslog receiver, with its connection (opened on first use, reopened after a
/// failure or a close by the receiver).
#[derive(Debug)]
pub struct SyslogSink {
    name: String,
    endpoint: Endpoint,
    payload: Payload,
    facility: Facility,
    format: Format,
    origin: Origin,
    connection: Mutex<Option<Connection>>,
    connections_opened: AtomicU64,
}

impl SyslogSink {
    /// Checks the settings (the address, the TLS files, what `format` needs) without
    /// connecting: an unreachable receiver is a failed delivery, retried, not a bad setting.
    pub fn new(
        name: &str,
        settings: &SyslogSettings,
        format: Format,
        origin: Origin,
        timeout: Duration,
    ) -> Result<Self, SyslogError> {
        if settings.payload == Payload::Json {
            format.check_origin(&origin)?;
        }
        Ok(Self {
            name: name.to_owned(),
            endpoint: Endpoint::new(&settings.address, settings.tls.as_ref(), timeout)?,
            payload: settings.payload,
            facility: settings.facility,
            format,
            origin,
            connection: Mutex::new(None),
            connections_opened: AtomicU64::new(0),
        })
    }

    /// The bytes one finding is sent as: an octet-counted RFC 5424 message.
    pub fn encode(&self, finding: &Finding) -> Result<Vec<u8>, SyslogError> {
        let msg = match self.payload {
            Payload::Json => format::render(self.format, finding, &self.origin)?.to_string(),
            Payload::Cef => wire::cef(finding),
        };
        Ok(wire::frame(&wire::message(
            finding,
            self.facility,
            std::process::id(),
            &msg,
        )))
    }

    /// A sink for a validated `syslog` configuration.
    pub fn from_config(config: &SinkConfig, origin: &Origin) -> Result<Self, SinkConfigError> {
        Self::new(
            &config.name,
            &SyslogSettings::from_config(config),
            config.format,
            origin.clone(),
            IO_TIMEOUT,
        )
        .map_err(|e| SinkConfigError::BadOption {
            sink: config.name.clone(),
            field: match &e {
                SyslogError::Format(_) => "format",
                SyslogError::Transport(_) => "caFile",
            },
            problem: error_chain(&e),
        })
    }

    /// Sends one finding. `Ok` once the frame is written to a connection the receiver had not
    /// closed; an error drops the connection so that the retry opens a new one.
    pub async fn send_finding(&self, finding: &Finding) -> Result<(), SyslogError> {
        let frame = self.encode(finding)?;
        let mut slot = self.connection.lock().await;
        // Out of the slot while in use: if the attempt is abandoned (the delivery engine's
        // timeout) in the middle of a frame, the connection goes with it instead of carrying
        // half a frame into the next message.
        let reusable = match slot.take() {
            Some(mut conn) => (!conn.closed_by_peer().await).then_some(conn),
            None => None,
        };
        let mut conn = match reusable {
            Some(conn) => conn,
            None => {
                let conn = self.endpoint.connect().await?;
                self.connections_opened.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        conn.write(&frame).await?;
        *slot = Some(conn);
        Ok(())
    }

    /// Connections opened so far (one, unless the receiver closed or lost one).
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// The receiver's address.
    pub fn address(&self) -> &str {
        self.endpoint.address()
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, finding: &'a Finding) -> SendFuture<'a> {
        Box::pin(async move {
            self.send_finding(finding).await.map_err(|e| match e {
                SyslogError::Format(e) => SinkError::Format(e),
                SyslogError::Transport(e) => SinkError::Connect {
                    endpoint: format!("syslog {}", self.address()),
                    source: Box::new(e),
                },
            })
        })
    }
}
