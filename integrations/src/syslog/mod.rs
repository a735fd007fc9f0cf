//! The syslog sink: one RFC 5424 message per finding over TCP or TLS (RFC 5425), framed by
//! octet counting, with the finding as JSON (in the sink's format) or as a CEF event.

pub mod transport;
pub mod wire;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::Mutex;
use vigil_crds::finding::Finding;

pub use self::{
    transport::{Connection, Endpoint, TlsOptions, TransportError},
    wire::{Facility, Payload},
};
use crate::format::{self, Format, FormatError, Origin};

/// The syslog-specific settings of a sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyslogSettings {
    /// The receiver, `host:port` (RFC 5425 uses 6514 for TLS).
    pub address: String,
    /// TLS; plain TCP when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
    /// `json` (the finding in the sink's `format`) or `cef`.
    #[serde(default)]
    pub payload: Payload,
    /// Syslog facility, `auth` by default.
    #[serde(default)]
    pub facility: Facility,
}

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
        settings: &SyslogSettings,
        format: Format,
        origin: Origin,
        timeout: Duration,
    ) -> Result<Self, SyslogError> {
        if settings.payload == Payload::Json {
            format.check_origin(&origin)?;
        }
        Ok(Self {
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

    /// Sends one finding. `Ok` once the frame is written to a connection the receiver had not
    /// closed; an error drops the connection so that the retry opens a new one.
    pub async fn send(&self, finding: &Finding) -> Result<(), SyslogError> {
        let frame = self.encode(finding)?;
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_mut()
            && conn.closed_by_peer().await
        {
            *slot = None;
        }
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => {
                let conn = self.endpoint.connect().await?;
                self.connections_opened.fetch_add(1, Ordering::Relaxed);
                slot.insert(conn)
            }
        };
        if let Err(e) = conn.write(&frame).await {
            *slot = None;
            return Err(e.into());
        }
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
