//! The NATS JetStream sink against Debian's nats-server with JetStream, started by each test
//! on a loopback port it picks: acknowledged publishes, deduplication by `Nats-Msg-Id`, a
//! subject no stream captures, and a server restarted between two deliveries.

mod support;

use std::{path::PathBuf, process::Command, time::Duration};

use async_nats::jetstream;
use support::{
    Daemon, TempDir, certificates, chain, configure, program, sample, variant, wait_for,
};
use vigil_integrations::{
    format::{self, Format, Origin},
    nats::NatsSink,
    sink::{self as sinks, Sink},
};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

struct NatsServer {
    daemon: Daemon,
    dir: TempDir,
    port: u16,
}

impl NatsServer {
    /// nats-server -js on 127.0.0.1, on a port it picks (read from its ports file) unless
    /// `port` is given; the store in `dir`.
    fn start(server: &PathBuf, dir: TempDir, port: Option<u16>) -> Self {
        Self::start_with(server, dir, port, &[])
    }

    fn start_with(server: &PathBuf, dir: TempDir, port: Option<u16>, extra: &[&str]) -> Self {
        let ports = dir.path("ports");
        let _ = std::fs::remove_dir_all(&ports);
        std::fs::create_dir_all(&ports).expect("ports directory");
        let log = dir.path("nats-server.log");
        let mut daemon = Daemon::spawn(
            "nats-server",
            Command::new(server)
                .args(["-js", "-a", "127.0.0.1", "-p"])
                .arg(port.map_or("-1".to_owned(), |p| p.to_string()))
                .arg("-sd")
                .arg(dir.path("store"))
                .arg("--ports_file_dir")
                .arg(&ports)
                .args(extra),
            &log,
        );
        // The ports file appears once the server listens: {"nats": ["nats://127.0.0.1:N"], ...}
        let port = wait_for("nats-server's ports file", || {
            daemon.assert_running(&log);
            let file = std::fs::read_dir(&ports).ok()?.flatten().next()?.path();
            let text = std::fs::read_to_string(file).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v["nats"][0]
                .as_str()?
                .rsplit(':')
                .next()?
                .parse::<u16>()
                .ok()
        });
        Self { daemon, dir, port }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// A NATS sink from its configuration, as the agent makes it.
fn sink(yaml: &str) -> NatsSink {
    let (config, origin) = configure(yaml);
    NatsSink::from_config(&config, &origin).expect("a valid nats sink")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn findings_are_stored_once_per_update_with_their_message_id() {
    let Some(bin) = program(
        NATS_SERVER,
        "nats-server",
        "findings_are_stored_once_per_update",
    ) else {
        return;
    };
    let server = NatsServer::start(&bin, TempDir::new("nats-dedup"), None);
    let sink = sink(&format!(
        "sinks: [{{name: stream, type: nats, url: '{}', format: ocsf, stream: VIGIL}}]",
        server.url()
    ));
    let first = sample();
    let mut repeated = sample();
    repeated.count += 1;
    runtime().block_on(async {
        let a = sink.publish(&first).await.expect("stored");
        assert_eq!(
            (a.stream.as_str(), a.sequence, a.duplicate),
            ("VIGIL", 1, false)
        );
        // The same update again (a redelivery): JetStream keeps the first.
        let b = sink.publish(&first).await.expect("acknowledged");
        assert!(b.duplicate, "{b:?}");
        assert_eq!(b.sequence, 1);
        // A new update of the finding is a new message.
        let c = sink.publish(&repeated).await.expect("stored");
        assert_eq!((c.sequence, c.duplicate), (2, false));

        // Read back what the stream holds.
        let client = async_nats::connect(server.url())
            .await
            .expect("reader connects");
        let js = jetstream::new(client);
        let mut stream = js.get_stream("VIGIL").await.expect("the stream exists");
        let info = stream.info().await.expect("stream info");
        assert_eq!(info.state.messages, 2);
        for (seq, finding) in [(1, &first), (2, &repeated)] {
            let msg = stream.get_raw_message(seq).await.expect("stored message");
            assert_eq!(msg.subject.as_str(), "vigil.findings");
            let id = msg
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned());
            assert_eq!(id.as_deref(), Some(format::update_id(finding).as_str()));
            assert_eq!(
                msg.headers.get("Vigil-Finding-Type").map(|v| v.as_str()),
                Some("Execution:Runtime/NewBinaryExecuted")
            );
            let doc: serde_json::Value =
                serde_json::from_slice(&msg.payload).expect("the payload is JSON");
            assert_eq!(
                doc,
                format::render(Format::Ocsf, finding, &Origin::default()).unwrap()
            );
        }
    });
}

#[test]
fn a_subject_no_stream_captures_is_an_error_not_a_silent_loss() {
    let Some(bin) = program(NATS_SERVER, "nats-server", "a_subject_no_stream_captures") else {
        return;
    };
    let server = NatsServer::start(&bin, TempDir::new("nats-nostream"), None);
    // Through the agent's own path: the YAML, its validation, sink::build.
    let (config, origin) = configure(&format!(
        "sinks: [{{name: stream, type: nats, url: '{}', subject: vigil.nowhere}}]",
        server.url()
    ));
    let sink = sinks::build(&config, &origin).expect("a nats sink");
    match runtime().block_on(sink.send(&sample())) {
        Err(e) => {
            assert!(!e.is_permanent(), "a stream may be created later: {e}");
            assert!(
                chain(&e).contains("publishing to vigil.nowhere"),
                "{}",
                chain(&e)
            );
        }
        Ok(()) => panic!("nothing stores the subject"),
    }
}

#[test]
fn a_restarted_server_stores_the_retried_finding_and_keeps_the_first() {
    let Some(bin) = program(NATS_SERVER, "nats-server", "a_restarted_server_stores") else {
        return;
    };
    let mut server = NatsServer::start(&bin, TempDir::new("nats-restart"), None);
    let port = server.port;
    let sink = sink(&format!(
        "sinks: [{{name: stream, type: nats, url: '{}', stream: VIGIL}}]",
        server.url()
    ));
    let rt = runtime();
    let before = variant("before", 1, "before");
    let during = variant("during", 1, "during");
    rt.block_on(sink.send(&before)).expect("stored");
    server.daemon.stop();
    // The delivery engine bounds an attempt with its timeout; so does the test.
    let down = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), sink.publish(&during)).await
    });
    assert!(!matches!(down, Ok(Ok(_))), "the server is down: {down:?}");
    // Back on the same port with the same store: the client reconnects by itself; the retry
    // (as the delivery loop would do) succeeds once it has.
    let NatsServer { dir, .. } = server;
    let server = NatsServer::start(&bin, dir, Some(port));
    let stored = wait_for("the retried publish to be stored", || {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), sink.publish(&during)).await
        })
        .ok()?
        .ok()
    });
    // The publish that failed while the server was down may still have been sent: the client
    // keeps what it could not write and flushes it on reconnect. Either way the stream holds
    // the finding once (counted below), the retry being a duplicate of it or the first copy.
    assert_eq!(stored.stream, "VIGIL");
    // Redelivering the first finding's update after the restart stays a duplicate: the
    // deduplication state is in the stream's store.
    let again = rt.block_on(sink.publish(&before)).expect("acknowledged");
    assert!(again.duplicate, "{again:?}");
    let messages = rt.block_on(async {
        let client = async_nats::connect(server.url())
            .await
            .expect("reader connects");
        let mut stream = jetstream::new(client)
            .get_stream("VIGIL")
            .await
            .expect("the stream survived");
        stream.info().await.expect("stream info").state.messages
    });
    assert_eq!(messages, 2, "before and during, each once");
}

#[test]
fn tls_and_a_token_from_the_secret_file() {
    let Some(bin) = program(
        NATS_SERVER,
        "nats-server",
        "tls_and_a_token_from_the_secret_file",
    ) else {
        return;
    };
    let dir = TempDir::new("nats-tls");
    let (ca, cert, key) = certificates(&dir, "server-");
    let token_file = dir.path("token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token file");
    let wrong_file = dir.path("wrong");
    std::fs::write(&wrong_file, "not-the-token\n").expect("token file");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let server = NatsServer::start_with(
        &bin,
        dir,
        None,
        &[
            "--tls",
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
            "--auth",
            "s3cret-token",
        ],
    );
    let yaml = |secret: &std::path::Path| {
        format!(
            "sinks: [{{name: stream, type: nats, url: 'tls://127.0.0.1:{}', caFile: '{}', secretFile: '{}', stream: VIGIL}}]",
            server.port,
            ca.display(),
            secret.display()
        )
    };
    let good = sink(&yaml(&token_file));
    let wrong = sink(&yaml(&wrong_file));
    let rt = runtime();
    let stored = rt
        .block_on(good.publish(&sample()))
        .expect("stored over TLS");
    assert_eq!((stored.stream.as_str(), stored.sequence), ("VIGIL", 1));
    let refused = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), wrong.publish(&sample())).await
    });
    match refused {
        Ok(Err(e)) => assert!(chain(&e).contains("connecting to"), "{}", chain(&e)),
        other => panic!("a wrong token must be refused: {other:?}"),
    }
}
