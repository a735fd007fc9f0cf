//! The syslog sink against a real rsyslog from Debian, started by each test on a loopback port
//! with its own configuration file: RFC 5424 over TCP and TLS (gtls), octet-counting framing,
//! JSON and CEF payloads, and a receiver restarted between two deliveries.

mod support;

use std::{path::PathBuf, process::Command};

use support::{
    Daemon, TempDir, certificates, chain, configure, program, sample, variant, wait_for,
};
use vigil_integrations::{
    format::{self, Format, Origin},
    sink::{self as sinks, Sink},
    syslog::{SyslogSink, wire},
};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// One field per `|`, the message last: what the test reads back.
const TEMPLATE: &str = r#"template(name="fields" type="list") {
  property(name="pri") constant(value="|")
  property(name="timereported" dateFormat="rfc3339") constant(value="|")
  property(name="hostname") constant(value="|")
  property(name="app-name") constant(value="|")
  property(name="procid") constant(value="|")
  property(name="msgid") constant(value="|")
  property(name="msg") constant(value="\n")
}"#;

struct Rsyslog {
    daemon: Daemon,
    dir: TempDir,
    port: u16,
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Rsyslog {
    /// Starts rsyslogd on 127.0.0.1, on a port it picks itself (`port="0"`, written to a file)
    /// unless `port` is given.
    fn start(rsyslogd: &PathBuf, dir: TempDir, tls: bool, port: Option<u16>) -> Self {
        // A restart in the same directory keeps the certificates the sink trusts.
        let tls = tls.then(|| {
            let ca = dir.path("server-ca.pem");
            if ca.exists() {
                (ca, dir.path("server-cert.pem"), dir.path("server-key.pem"))
            } else {
                certificates(&dir, "server-")
            }
        });
        let mut global = format!(
            r#"workDirectory="{}" maxMessageSize="256k""#,
            dir.0.display()
        );
        let mut module = String::new();
        if let Some((ca, cert, key)) = &tls {
            global.push_str(&format!(
                r#" defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{}" defaultNetstreamDriverCertFile="{}" defaultNetstreamDriverKeyFile="{}""#,
                ca.display(),
                cert.display(),
                key.display()
            ));
            module =
                r#" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon""#
                    .to_owned();
        }
        let port_file = dir.path("port");
        let _ = std::fs::remove_file(&port_file);
        let conf = format!(
            "global({global})\nmodule(load=\"imtcp\"{module})\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" listenPortFileName=\"{}\")\n\
             {TEMPLATE}\naction(type=\"omfile\" file=\"{}\" template=\"fields\")\n",
            port.unwrap_or(0),
            port_file.display(),
            dir.path("out.log").display()
        );
        let conf_file = dir.path("rsyslog.conf");
        std::fs::write(&conf_file, conf).expect("rsyslog.conf");
        let log = dir.path("rsyslogd.log");
        let mut daemon = Daemon::spawn(
            "rsyslogd",
            Command::new(rsyslogd)
                .arg("-n")
                .arg("-f")
                .arg(&conf_file)
                .arg("-i")
                .arg(dir.path("rsyslogd.pid")),
            &log,
        );
        let port = match port {
            // rsyslog writes the port file only for a port it picked: probe the given one.
            Some(port) => wait_for("rsyslogd listening", || {
                daemon.assert_running(&log);
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(|_| port)
            }),
            None => wait_for("rsyslogd's port file", || {
                daemon.assert_running(&log);
                std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|p| p.trim().parse::<u16>().ok())
            }),
        };
        Self {
            daemon,
            dir,
            port,
            tls,
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The lines of the output file once there are `n` of them.
    fn lines(&mut self, n: usize) -> Vec<String> {
        let out = self.dir.path("out.log");
        let log = self.dir.path("rsyslogd.log");
        let daemon = &mut self.daemon;
        wait_for(&format!("{n} lines from rsyslogd"), || {
            daemon.assert_running(&log);
            let text = std::fs::read_to_string(&out).ok()?;
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            (lines.len() >= n).then_some(lines)
        })
    }
}

/// `pri|time|host|app|procid|msgid|msg` split in seven, the message keeping its own `|`.
fn fields(line: &str) -> Vec<&str> {
    line.splitn(7, '|').collect()
}

/// A syslog sink from its configuration, as the agent makes it.
fn sink(yaml: &str) -> SyslogSink {
    let (config, origin) = configure(yaml);
    SyslogSink::from_config(&config, &origin).expect("a valid syslog sink")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn json_findings_arrive_as_rfc5424_messages_over_tcp() {
    let Some(rsyslogd) = program(RSYSLOGD, "rsyslog", "json_findings_arrive_as_rfc5424") else {
        return;
    };
    let mut rsyslog = Rsyslog::start(&rsyslogd, TempDir::new("rsyslog-json"), false, None);
    // Through the agent's own path: the YAML, its validation, sink::build.
    let (config, origin) = configure(&format!(
        "sinks: [{{name: siem, type: syslog, url: 'tcp://{}', format: guardduty}}]",
        rsyslog.address()
    ));
    let sink = sinks::build(&config, &origin).expect("a syslog sink");
    assert_eq!(sink.name(), "siem");
    // A long description: a message far past the 1 KiB / 8 KiB that LF-framed or UDP syslog
    // would keep, with a newline and a `|` inside.
    let long = format!("first line\nsecond | {}", "x".repeat(40_000));
    let findings = [sample(), variant("second-finding", 7, &long)];
    runtime().block_on(async {
        for f in &findings {
            sink.send(f).await.expect("delivered");
        }
    });
    let lines = rsyslog.lines(2);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for (line, finding) in lines.iter().zip(&findings) {
        let f = fields(line);
        assert_eq!(f.len(), 7, "{line}");
        // auth (4) * 8 + warning (4): a Medium finding.
        assert_eq!(f[0], "36");
        assert_eq!(f[1], "2026-11-27T10:05:00.000000Z");
        assert_eq!(f[2], "node-a");
        assert_eq!(f[3], "vigil");
        assert_eq!(f[4], std::process::id().to_string());
        assert_eq!(f[5], "finding");
        let doc: serde_json::Value = serde_json::from_str(f[6]).expect("the message is JSON");
        assert_eq!(
            doc,
            format::render(Format::GuardDuty, finding, &Origin::default()).unwrap()
        );
    }
    assert!(lines[1].len() > 40_000);
}

#[test]
fn cef_over_tls_reaches_rsyslog_and_an_unknown_ca_is_refused() {
    let Some(rsyslogd) = program(RSYSLOGD, "rsyslog", "cef_over_tls_reaches_rsyslog") else {
        return;
    };
    let mut rsyslog = Rsyslog::start(&rsyslogd, TempDir::new("rsyslog-tls"), true, None);
    let (ca, _, _) = rsyslog.tls.clone().expect("TLS files");
    let good = sink(&format!(
        "sinks: [{{name: siem, type: syslog, url: 'tls://localhost:{}', payload: cef, facility: local4, caFile: '{}'}}]",
        rsyslog.port,
        ca.display()
    ));
    // A CA that did not sign the receiver's certificate.
    let other = TempDir::new("rsyslog-other-ca");
    let (other_ca, _, _) = certificates(&other, "other-");
    let untrusted = sink(&format!(
        "sinks: [{{name: siem, type: syslog, url: 'tls://127.0.0.1:{}', payload: cef, caFile: '{}'}}]",
        rsyslog.port,
        other_ca.display()
    ));
    let mut finding = sample();
    finding.title = "pipe | and back\\slash".into();
    finding.description = "key=value\nnext".into();
    let second = variant("second-over-tls", 2, "the second finding");
    let refused = runtime().block_on(async {
        good.send(&finding).await.expect("delivered over TLS");
        // The receiver's TLS 1.3 session tickets wait on the connection: they are read, and
        // the connection is kept.
        good.send(&second).await.expect("delivered over TLS");
        untrusted.send(&finding).await
    });
    assert_eq!(good.connections_opened(), 1);
    match refused {
        Err(e) => {
            assert!(!e.is_permanent(), "retried: {e}");
            assert!(chain(&e).contains("TLS handshake"), "{}", chain(&e));
        }
        Ok(()) => panic!("an unknown CA must be refused"),
    }
    let lines = rsyslog.lines(2);
    assert_eq!(
        lines.len(),
        2,
        "only the trusted sink's findings: {lines:#?}"
    );
    assert_eq!(fields(&lines[1])[6], wire::cef(&second));
    let f = fields(&lines[0]);
    assert_eq!(f[6], wire::cef(&finding));
    assert!(
        f[6].contains(r"|pipe \| and back\\slash|5|"),
        "header escaped: {}",
        f[6]
    );
    assert!(f[6].contains(r"msg=key\=value\nnext"), "{}", f[6]);
}

#[test]
fn a_restarted_receiver_gets_the_next_finding_on_a_new_connection() {
    restart(false);
}

#[test]
fn a_restarted_tls_receiver_gets_the_next_finding_on_a_new_connection() {
    restart(true);
}

fn restart(tls: bool) {
    let Some(rsyslogd) = program(RSYSLOGD, "rsyslog", "a_restarted_receiver_gets") else {
        return;
    };
    let mut rsyslog = Rsyslog::start(&rsyslogd, TempDir::new("rsyslog-restart"), tls, None);
    let port = rsyslog.port;
    let sink = sink(&match &rsyslog.tls {
        Some((ca, _, _)) => format!(
            "sinks: [{{name: siem, type: syslog, url: 'tls://127.0.0.1:{}', caFile: '{}'}}]",
            rsyslog.port,
            ca.display()
        ),
        None => format!(
            "sinks: [{{name: siem, type: syslog, url: 'tcp://127.0.0.1:{}'}}]",
            rsyslog.port
        ),
    });
    let rt = runtime();
    rt.block_on(sink.send(&variant("before", 1, "before")))
        .expect("delivered");
    rsyslog.lines(1);
    // The receiver goes away: the open connection is closed by the peer, and nobody listens.
    rsyslog.daemon.stop();
    let down = rt.block_on(sink.send(&variant("while-down", 1, "while down")));
    assert!(down.is_err(), "nobody listens: {down:?}");
    // Back on the same port (with the same output file): the sink reconnects.
    let rsyslog_tls = rsyslog.tls.is_some();
    let Rsyslog { dir, .. } = rsyslog;
    let mut rsyslog = Rsyslog::start(&rsyslogd, dir, rsyslog_tls, Some(port));
    rt.block_on(sink.send(&variant("while-down", 1, "retried")))
        .expect("delivered after the restart");
    rt.block_on(sink.send(&variant("after", 1, "after")))
        .expect("delivered on the new connection");
    let ids: Vec<String> = rsyslog
        .lines(3)
        .iter()
        .map(|l| {
            let doc: serde_json::Value = serde_json::from_str(fields(l)[6]).expect("JSON");
            doc["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(ids, ["before", "while-down", "after"]);
    assert_eq!(
        sink.connections_opened(),
        2,
        "one before, one after the restart"
    );
}
