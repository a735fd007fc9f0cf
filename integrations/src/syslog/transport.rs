//! The syslog connection: TCP, or TLS with rustls (RFC 5425), reconnected on demand.
//!
//! TCP syslog has no acknowledgement: a frame counts as delivered once the kernel took it.
//! Before each write the connection is checked for a close by the receiver (a restarted
//! collector), so that the frame goes to a fresh connection rather than into a dead one; what a
//! receiver loses when it dies after taking bytes cannot be known (RELP would be needed).

use std::{
    future::poll_fn,
    mem::MaybeUninit,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use socket2::SockRef;
use thiserror::Error;
use tokio::{
    io::{AsyncRead, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

/// TLS settings of a syslog sink.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA certificates that sign the receiver's certificate; the system's
    /// roots when absent.
    pub ca_file: Option<PathBuf>,
    /// Name to verify the receiver's certificate against; the host of the address when absent.
    pub server_name: Option<String>,
    /// PEM client certificate chain, for receivers that authenticate clients.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `certFile`.
    pub key_file: Option<PathBuf>,
}

/// Why a syslog connection could not be set up or used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A certificate or key file could not be read or parsed.
    #[error("reading {what} {}", path.display())]
    Pem {
        /// Which file (`caFile`, `certFile`, `keyFile`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parse or I/O error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM file held no certificate.
    #[error("{what} {} holds no certificate", path.display())]
    NoCertificate {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Only one of `certFile` and `keyFile` was given.
    #[error("tls.certFile and tls.keyFile go together")]
    HalfClientIdentity,
    /// The system's root certificates could not be loaded.
    #[error("no system root certificates could be loaded ({0}); set tls.caFile")]
    NoSystemRoots(String),
    /// rustls refused the configuration (a bad certificate or key).
    #[error("TLS configuration")]
    Tls(#[source] rustls::Error),
    /// The address is not `host:port`.
    #[error("address {0:?} is not host:port")]
    Address(String),
    /// The name to verify is not a DNS name or an IP address.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// The TCP connection failed.
    #[error("connecting to {address}")]
    Connect {
        /// The receiver.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {address}")]
    Handshake {
        /// The receiver.
        address: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting or writing took longer than the timeout.
    #[error("{what} {address} timed out after {timeout:?}")]
    Timeout {
        /// `connecting to` or `writing to`.
        what: &'static str,
        /// The receiver.
        address: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Writing the frame failed.
    #[error("writing to {address}")]
    Write {
        /// The receiver.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// How to reach the receiver, checked once when the sink is configured.
#[derive(Clone)]
pub struct Endpoint {
    address: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let pem = |source| TransportError::Pem {
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TransportError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

impl Endpoint {
    /// `address` is `host:port`; with `tls`, the certificates are read now, so that a bad
    /// file is a configuration error rather than a failed delivery.
    pub fn new(
        address: &str,
        tls: Option<&TlsOptions>,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let host = host_of(address).ok_or_else(|| TransportError::Address(address.to_owned()))?;
        let tls = match tls {
            None => None,
            Some(opts) => {
                let mut roots = RootCertStore::empty();
                match &opts.ca_file {
                    Some(path) => {
                        for cert in read_certs("tls.caFile", path)? {
                            roots.add(cert).map_err(TransportError::Tls)?;
                        }
                    }
                    None => {
                        let native = rustls_native_certs::load_native_certs();
                        roots.add_parsable_certificates(native.certs);
                        if roots.is_empty() {
                            let why = native
                                .errors
                                .first()
                                .map_or_else(|| "none found".to_owned(), ToString::to_string);
                            return Err(TransportError::NoSystemRoots(why));
                        }
                    }
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let builder = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(TransportError::Tls)?
                    .with_root_certificates(roots);
                let config = match (&opts.cert_file, &opts.key_file) {
                    (Some(cert), Some(key)) => {
                        let chain = read_certs("tls.certFile", cert)?;
                        let key = PrivateKeyDer::from_pem_file(key).map_err(|source| {
                            TransportError::Pem {
                                what: "tls.keyFile",
                                path: key.clone(),
                                source,
                            }
                        })?;
                        builder
                            .with_client_auth_cert(chain, key)
                            .map_err(TransportError::Tls)?
                    }
                    (None, None) => builder.with_no_client_auth(),
                    _ => return Err(TransportError::HalfClientIdentity),
                };
                let name = opts.server_name.as_deref().unwrap_or(host);
                let name = ServerName::try_from(name.to_owned())
                    .map_err(|_| TransportError::ServerName(name.to_owned()))?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Self {
            address: address.to_owned(),
            tls,
            timeout,
        })
    }

    /// The receiver's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Opens a connection (TCP, then the TLS handshake).
    pub async fn connect(&self) -> Result<Connection, TransportError> {
        let timed_out = |what| TransportError::Timeout {
            what,
            address: self.address.clone(),
            timeout: self.timeout,
        };
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| timed_out("connecting to"))?
            .map_err(|source| TransportError::Connect {
                address: self.address.clone(),
                source,
            })?;
        // Frames are written whole; no reason to hold them back.
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| timed_out("connecting to"))?
                    .map_err(|source| TransportError::Handshake {
                        address: self.address.clone(),
                        source,
                    })?;
                Stream::Tls(Box::new(tls))
            }
        };
        Ok(Connection {
            stream,
            address: self.address.clone(),
            timeout: self.timeout,
        })
    }
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> Option<&str> {
    let (host, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open connection to the receiver.
pub struct Connection {
    stream: Stream,
    address: String,
    timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Whether the receiver closed the connection (or reset it). A syslog receiver never sends
    /// application data, so the socket is asked directly (a `recv` system call, not the
    /// runtime's cached readiness, which may not have seen a close that happened while nothing
    /// ran): an end of stream or an error is a close. Over TLS the bytes it finds (session
    /// tickets, a `close_notify`) go through rustls, which says whether the stream ended.
    pub async fn closed_by_peer(&mut self) -> bool {
        // A few rounds: TLS may have handshake messages queued before the end of stream.
        for _ in 0..8 {
            match &mut self.stream {
                Stream::Plain(tcp) => {
                    // Nothing is ever expected from the receiver: read and drop what came.
                    let mut buf = [MaybeUninit::<u8>::uninit(); 512];
                    match SockRef::from(&*tcp).recv(&mut buf) {
                        Ok(0) => return true,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                        Err(_) => return true,
                    }
                }
                Stream::Tls(tls) => {
                    let mut peek = [MaybeUninit::<u8>::uninit(); 1];
                    match SockRef::from(tls.get_ref().0).peek(&mut peek) {
                        Ok(0) => return true,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                        Err(_) => return true,
                    }
                    // Bytes are there: wait until the runtime knows, then let rustls read them.
                    let ready =
                        tokio::time::timeout(self.timeout, tls.get_ref().0.readable()).await;
                    if !matches!(ready, Ok(Ok(()))) {
                        return true;
                    }
                    let mut byte = [0u8; 1];
                    let polled = poll_fn(|cx| {
                        let mut buf = ReadBuf::new(&mut byte);
                        Poll::Ready(match Pin::new(tls.as_mut()).poll_read(cx, &mut buf) {
                            Poll::Pending => Some(false),
                            Poll::Ready(Ok(())) if buf.filled().is_empty() => Some(true),
                            Poll::Ready(Ok(())) => None,
                            Poll::Ready(Err(_)) => Some(true),
                        })
                    })
                    .await;
                    match polled {
                        // Handshake messages only, consumed: look again.
                        Some(false) | None => continue,
                        Some(true) => return true,
                    }
                }
            }
        }
        false
    }

    /// Writes one frame and flushes it.
    pub async fn write(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        let address = self.address.clone();
        let write = async {
            match &mut self.stream {
                Stream::Plain(s) => {
                    s.write_all(frame).await?;
                    s.flush().await
                }
                Stream::Tls(s) => {
                    s.write_all(frame).await?;
                    s.flush().await
                }
            }
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| TransportError::Timeout {
                what: "writing to",
                address: address.clone(),
                timeout: self.timeout,
            })?
            .map_err(|source| TransportError::Write { address, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_their_hosts() {
        for (address, want) in [
            ("127.0.0.1:514", Some("127.0.0.1")),
            ("siem.example:6514", Some("siem.example")),
            ("[::1]:6514", Some("::1")),
            ("siem.example", None),
            (":514", None),
            ("host:port", None),
        ] {
            assert_eq!(host_of(address), want, "{address}");
        }
    }

    #[test]
    fn bad_tls_settings_are_configuration_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("vigil-syslog-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let opts = TlsOptions {
            ca_file: Some(empty.clone()),
            ..TlsOptions::default()
        };
        let err = Endpoint::new("127.0.0.1:6514", Some(&opts), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, TransportError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let missing = TlsOptions {
            ca_file: Some(dir.join("missing.pem")),
            ..TlsOptions::default()
        };
        let err =
            Endpoint::new("127.0.0.1:6514", Some(&missing), Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("tls.caFile"), "{err}");
        let half = TlsOptions {
            cert_file: Some(empty),
            ..TlsOptions::default()
        };
        assert!(Endpoint::new("127.0.0.1:6514", Some(&half), Duration::from_secs(1)).is_err());
        let err = Endpoint::new("nowhere", None, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.to_string(), "address \"nowhere\" is not host:port");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
