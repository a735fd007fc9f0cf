//! What the receiver tests share: findings, programs from Debian started on loopback with
//! their own files, test certificates.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vigil_crds::finding::{Finding, RuntimeFinding};

/// How long a program may take to come up or a receiver to write what it got; generous, as
/// the machine may be busy: tests wait for a condition, never for a time.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `examples/findings/sample-finding.yaml`.
pub fn sample() -> Finding {
    let rf: RuntimeFinding = serde_yaml::from_str(include_str!(
        "../../../examples/findings/sample-finding.yaml"
    ))
    .expect("the sample finding parses");
    rf.spec
}

/// The sample with another id, count and description (e.g. a long one).
pub fn variant(id: &str, count: u64, description: &str) -> Finding {
    let mut v = serde_json::to_value(sample()).expect("the sample serialises");
    v["id"] = json!(id);
    v["count"] = json!(count);
    v["description"] = Value::from(description);
    serde_json::from_value(v).expect("the variant parses")
}

/// The program at `path`, or `None` when it is not installed: then the test says so (and
/// fails under `CI`, where scripts/bootstrap.sh must have installed it).
pub fn program(path: &str, package: &str, test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.is_file() {
        return Some(p);
    }
    let why = format!("{path} is missing: install Debian's {package} (scripts/bootstrap.sh does)");
    assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
    eprintln!("NOT RUN: {test}: {why}");
    None
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
pub struct Daemon {
    pub child: Child,
    pub name: &'static str,
}

impl Daemon {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { child, name }
    }

    /// Kills it and waits until it is gone.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Panics with the log when it has exited.
    pub fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}): {}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` until it gives a value, for at most [`PATIENCE`].
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files in `dir`:
/// `ca.pem`, `cert.pem`, `key.pem`.
pub fn certificates(dir: &TempDir, prefix: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("Vigil test CA {prefix}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let paths = (
        dir.path(&format!("{prefix}ca.pem")),
        dir.path(&format!("{prefix}cert.pem")),
        dir.path(&format!("{prefix}key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).expect("ca.pem");
    std::fs::write(&paths.1, cert.pem()).expect("cert.pem");
    std::fs::write(&paths.2, key.serialize_pem()).expect("key.pem");
    paths
}

/// The one sink of an integrations document (YAML), validated as the agent does.
pub fn configure(
    yaml: &str,
) -> (
    vigil_integrations::config::SinkConfig,
    vigil_integrations::format::Origin,
) {
    let doc: vigil_integrations::config::IntegrationsDocument =
        serde_yaml::from_str(yaml).expect("the test's YAML parses");
    let mut integrations =
        vigil_integrations::config::validate(&doc, Path::new("test.yaml")).expect("valid file");
    assert!(integrations.errors.is_empty(), "{:?}", integrations.errors);
    assert_eq!(integrations.sinks.len(), 1);
    (integrations.sinks.remove(0), integrations.origin)
}

/// An error and its sources on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
