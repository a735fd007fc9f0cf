//! `/metrics` (Prometheus text format) and `/healthz` of the agent.
//!
//! The run loop publishes a [`Snapshot`] into a shared [`Telemetry`] (counters at most once a
//! second, the loop's heartbeat on every pass); a small HTTP server on a thread of its own
//! answers from it, so a stalled run loop is reported as stalled rather than not answered.
//! Rendering is pure ([`render`], [`health_check`]).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use vigil_crds::finding::SeverityLabel;

use crate::{agent::Health, sensor::HookState, tracked::TrackedTable};

/// How long the run loop may go without a pass before `/healthz` says it is stalled. The loop
/// passes at least every poll interval (10 ms by default) even on an idle host.
pub const LOOP_STALE_AFTER: Duration = Duration::from_secs(30);
/// Port of the metrics endpoint in cluster mode, where it is on by default.
pub const DEFAULT_CLUSTER_PORT: u16 = 9464;

/// A cluster-mode gauge: name (without the `vigil_agent_` prefix), help text, value.
pub type Gauge = (&'static str, &'static str, f64);

/// What the endpoint reports, as of the run loop's last update.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The run's summary: hooks, kernel counters, pipeline counters.
    pub health: Option<Health>,
    /// New findings since the start, by type and severity label.
    pub findings: BTreeMap<(String, SeverityLabel), u64>,
    /// When the run loop last passed.
    pub last_loop: Option<Instant>,
    /// Extra gauges from the deployment (cluster mode: spool depth, heartbeat age).
    pub gauges: Vec<Gauge>,
    /// Each running sink's delivery figures.
    pub sinks: Vec<crate::sinks::SinkStats>,
    /// Configured sinks that are not running (a mistake in their configuration, an unopenable
    /// queue), when integrations are configured.
    pub sinks_left_out: Option<usize>,
}

/// The snapshot shared between the run loop and the HTTP server.
#[derive(Debug, Default)]
pub struct Telemetry {
    snapshot: Mutex<Snapshot>,
}

impl Telemetry {
    /// Runs `f` on the snapshot.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.snapshot.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// A copy of the snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Whether the agent is healthy at `now`: its sensors run (some hook active) and its run loop
/// passed within [`LOOP_STALE_AFTER`]. The text says why not.
pub fn health_check(snapshot: &Snapshot, now: Instant) -> Result<String, String> {
    let Some(health) = &snapshot.health else {
        return Err("starting: the sensors are not running yet".into());
    };
    let active = health
        .hooks
        .iter()
        .filter(|h| matches!(h.state, HookState::Active))
        .count();
    if active == 0 {
        return Err("no sensor hook is active".into());
    }
    match snapshot.last_loop {
        Some(at) if now.saturating_duration_since(at) <= LOOP_STALE_AFTER => Ok(format!(
            "ok: {active} hooks active, {} records, {} dropped",
            health.pipeline.records, health.dropped
        )),
        Some(at) => Err(format!(
            "the event loop has not run for {:.0}s",
            now.saturating_duration_since(at).as_secs_f64()
        )),
        None => Err("the event loop has not run yet".into()),
    }
}

/// Escapes a label value for the text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The snapshot in the Prometheus text exposition format, with the process's resident memory
/// (`rss_bytes`) and the loop's age as of `now`.
pub fn render(snapshot: &Snapshot, now: Instant, rss_bytes: Option<u64>) -> String {
    let mut out = String::new();
    let mut lines: Vec<String> = Vec::new();
    if let Some(h) = &snapshot.health {
        let name = family(
            &mut out,
            "vigil_agent_hook_records_total",
            "counter",
            "Records per sensor hook by outcome: sent, dropped (ring buffer full), errors, filtered, folded (repeats counted in the kernel), unresolved (paths the kernel could not walk from its objects, matched by the string or the file name instead).",
        );
        for c in &h.counters {
            for (outcome, value) in [
                ("sent", c.counters.sent),
                ("dropped", c.counters.dropped),
                ("errors", c.counters.errors),
                ("filtered", c.counters.filtered),
                ("folded", c.counters.folded),
                ("unresolved", c.counters.unresolved),
            ] {
                lines.push(format!(
                    "{name}{{hook=\"{}\",outcome=\"{outcome}\"}} {value}",
                    label(c.hook)
                ));
            }
        }
        flush(&mut out, &mut lines);
        let name = family(
            &mut out,
            "vigil_agent_hook_active",
            "gauge",
            "1 when the sensor hook is attached, 0 when disabled, not needed, unsupported or failed.",
        );
        for hook in &h.hooks {
            let active = u8::from(matches!(hook.state, HookState::Active));
            lines.push(format!(
                "{name}{{hook=\"{}\",mechanism=\"{}\"}} {active}",
                label(hook.hook),
                label(hook.mechanism)
            ));
        }
        flush(&mut out, &mut lines);
        for (metric, kind, help, value) in [
            (
                "vigil_agent_tracked_entries",
                "gauge",
                "Entries held by each bounded table of the agent's state.",
                (|t: &TrackedTable| Some(t.entries)) as fn(&TrackedTable) -> Option<u64>,
            ),
            (
                "vigil_agent_tracked_max_entries",
                "gauge",
                "The most entries each table may hold.",
                |t| Some(t.max_entries),
            ),
            (
                "vigil_agent_tracked_bytes",
                "gauge",
                "Bytes held by each table that accounts its bytes (strings and paths included).",
                |t| t.bytes,
            ),
            (
                "vigil_agent_tracked_max_bytes",
                "gauge",
                "The most bytes each table may hold.",
                |t| t.max_bytes,
            ),
            (
                "vigil_agent_tracked_shed_total",
                "counter",
                "Entries each table dropped to stay within its bounds.",
                |t| Some(t.shed),
            ),
        ] {
            let name = family(&mut out, metric, kind, help);
            for t in &h.tracked {
                if let Some(v) = value(t) {
                    lines.push(format!("{name}{{table=\"{}\"}} {v}", label(t.table)));
                }
            }
            flush(&mut out, &mut lines);
        }
        for (metric, kind, help, value) in [
            (
                "vigil_agent_records_total",
                "counter",
                "Records decoded from the ring buffer.",
                h.pipeline.records as f64,
            ),
            (
                "vigil_agent_dropped_records_total",
                "counter",
                "Records the kernel could not deliver, all hooks.",
                h.dropped as f64,
            ),
            (
                "vigil_agent_decode_errors_total",
                "counter",
                "Records that did not decode (agent and eBPF object disagree).",
                h.pipeline.decode_errors as f64,
            ),
            (
                "vigil_agent_events_per_second",
                "gauge",
                "Events per second over the run.",
                h.events_per_second,
            ),
            (
                "vigil_agent_uptime_seconds",
                "gauge",
                "Seconds since the agent started.",
                h.seconds,
            ),
            (
                "vigil_agent_tampering_total",
                "counter",
                "Times another process tampered with the agent (SecurityAgentTampered); the \
                 node's coverage is AgentTampered while above 0.",
                h.self_protection.tampering as f64,
            ),
        ] {
            let name = family(&mut out, metric, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    let name = family(
        &mut out,
        "vigil_agent_findings_total",
        "counter",
        "New findings since the agent started, by type and severity.",
    );
    for ((finding_type, severity), count) in &snapshot.findings {
        lines.push(format!(
            "{name}{{type=\"{}\",severity=\"{severity}\"}} {count}",
            label(finding_type)
        ));
    }
    flush(&mut out, &mut lines);
    if let Some(rss) = rss_bytes {
        let name = family(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the agent.",
        );
        let _ = writeln!(out, "{name} {rss}");
    }
    if let Some(at) = snapshot.last_loop {
        let name = family(
            &mut out,
            "vigil_agent_event_loop_age_seconds",
            "gauge",
            "Seconds since the event loop last ran (it runs at least every poll interval).",
        );
        let _ = writeln!(
            out,
            "{name} {}",
            now.saturating_duration_since(at).as_secs_f64()
        );
    }
    for (metric, help, value) in &snapshot.gauges {
        let name = family(&mut out, &format!("vigil_agent_{metric}"), "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    render_sinks(&mut out, snapshot);
    out
}

fn render_sinks(out: &mut String, snapshot: &Snapshot) {
    type Value = fn(&crate::sinks::SinkStats) -> u64;
    let families: [(&str, &str, &str, Value); 6] = [
        (
            "vigil_agent_sink_delivered_total",
            "counter",
            "Findings the sink's receiver accepted, since the agent started.",
            |s| s.delivered,
        ),
        (
            "vigil_agent_sink_failed_attempts_total",
            "counter",
            "Failed delivery attempts (each is retried with backoff until maxAttempts), since the agent started.",
            |s| s.failed,
        ),
        (
            "vigil_agent_sink_dead_lettered_total",
            "counter",
            "Findings given up on after maxAttempts or a permanent error, since the agent started.",
            |s| s.dead_lettered,
        ),
        (
            "vigil_agent_sink_evicted_total",
            "counter",
            "Findings pushed out of a full queue (oldest of the lowest severity), since the agent started.",
            |s| s.evicted,
        ),
        (
            "vigil_agent_sink_queue_errors_total",
            "counter",
            "Queue (SQLite) read or write failures, since the agent started.",
            |s| s.queue_errors,
        ),
        (
            "vigil_agent_sink_queued",
            "gauge",
            "Findings waiting for the sink now (kept across restarts).",
            |s| s.queued,
        ),
    ];
    if snapshot.sinks.is_empty() && snapshot.sinks_left_out.is_none() {
        return;
    }
    for (metric, kind, help, value) in families {
        let name = family(out, metric, kind, help);
        for s in &snapshot.sinks {
            let _ = writeln!(
                out,
                "{name}{{sink=\"{}\",type=\"{}\"}} {}",
                label(&s.sink),
                label(s.kind),
                value(s)
            );
        }
    }
    if let Some(n) = snapshot.sinks_left_out {
        let name = family(
            out,
            "vigil_agent_sinks_left_out",
            "gauge",
            "Configured sinks that are not running (the log says why for each).",
        );
        let _ = writeln!(out, "{name} {n}");
    }
}

/// Writes a family's HELP and TYPE lines; returns its name.
fn family(out: &mut String, name: &str, kind: &str, help: &str) -> String {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    name.to_owned()
}

fn flush(out: &mut String, lines: &mut Vec<String>) {
    for line in lines.drain(..) {
        out.push_str(&line);
        out.push('\n');
    }
}

/// Resident memory of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions and only reads configuration.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("metrics endpoint: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The thread or its runtime could not start.
    #[error("metrics endpoint: cannot start its thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Serves `/metrics` and `/healthz` on `addr` from a thread of its own until the process ends.
/// Returns the address bound (port 0 picks one).
pub fn serve(addr: SocketAddr, telemetry: Arc<Telemetry>) -> Result<SocketAddr, ServeError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind { addr, source })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(ServeError::Thread)?;
    std::thread::Builder::new()
        .name("vigil-metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(error) => {
                        tracing::error!(%error, "metrics endpoint stopped");
                        return;
                    }
                };
                let router = axum::Router::new()
                    .route("/metrics", axum::routing::get(metrics_handler))
                    .route("/healthz", axum::routing::get(healthz_handler))
                    .with_state(telemetry);
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!(%error, "metrics endpoint stopped");
                }
            });
        })
        .map_err(ServeError::Thread)?;
    tracing::info!(addr = %bound, "serving /metrics and /healthz");
    Ok(bound)
}

async fn metrics_handler(
    axum::extract::State(telemetry): axum::extract::State<Arc<Telemetry>>,
) -> impl axum::response::IntoResponse {
    let text = render(&telemetry.snapshot(), Instant::now(), rss_bytes());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn healthz_handler(
    axum::extract::State(telemetry): axum::extract::State<Arc<Telemetry>>,
) -> (axum::http::StatusCode, String) {
    match health_check(&telemetry.snapshot(), Instant::now()) {
        Ok(text) => (axum::http::StatusCode::OK, text),
        Err(text) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        agent::HookCounterLine,
        sensor::{HookCounters, HookStatus, HostSetup},
    };

    fn health(active: bool) -> Health {
        Health {
            seconds: 12.0,
            host: HostSetup::default(),
            hooks: vec![HookStatus {
                hook: "exec",
                mechanism: "tp_btf",
                state: if active {
                    HookState::Active
                } else {
                    HookState::Failed("Operation not permitted".into())
                },
            }],
            counters: vec![HookCounterLine {
                hook: "exec",
                counters: HookCounters {
                    sent: 40,
                    dropped: 2,
                    ..HookCounters::default()
                },
            }],
            pipeline: Default::default(),
            seeded_processes: 0,
            events_per_second: 3.5,
            dropped: 2,
            ring_merge: Default::default(),
            self_protection: crate::agent::SelfProtection {
                tampering: 1,
                ..Default::default()
            },
            tracked: vec![crate::tracked::TrackedTable {
                table: "processes",
                entries: 12,
                max_entries: 65_536,
                bytes: Some(4_096),
                max_bytes: Some(16 << 20),
                shed: 3,
            }],
            hashing: Default::default(),
            dirents: None,
        }
    }

    #[test]
    fn metrics_carry_each_sinks_figures() {
        let now = Instant::now();
        let mut snapshot = Snapshot::default();
        assert!(!render(&snapshot, now, None).contains("vigil_agent_sink"));
        snapshot.sinks = vec![crate::sinks::SinkStats {
            sink: "siem".into(),
            kind: "webhook",
            delivered: 5,
            failed: 3,
            dead_lettered: 1,
            dead_lettered_total: 4,
            evicted: 2,
            queue_errors: 0,
            queued: 7,
        }];
        snapshot.sinks_left_out = Some(1);
        let text = render(&snapshot, now, None);
        for want in [
            "vigil_agent_sink_delivered_total{sink=\"siem\",type=\"webhook\"} 5",
            "vigil_agent_sink_failed_attempts_total{sink=\"siem\",type=\"webhook\"} 3",
            "vigil_agent_sink_dead_lettered_total{sink=\"siem\",type=\"webhook\"} 1",
            "vigil_agent_sink_evicted_total{sink=\"siem\",type=\"webhook\"} 2",
            "vigil_agent_sink_queued{sink=\"siem\",type=\"webhook\"} 7",
            "# TYPE vigil_agent_sink_queued gauge",
            "vigil_agent_sinks_left_out 1",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }

    #[test]
    fn metrics_carry_hooks_findings_memory_and_gauges() {
        let now = Instant::now();
        let mut snapshot = Snapshot {
            health: Some(health(true)),
            last_loop: Some(now),
            gauges: vec![("spool_depth", "Actions waiting.", 7.0)],
            ..Snapshot::default()
        };
        snapshot.findings.insert(
            ("Execution:Runtime/ReverseShell".into(), SeverityLabel::High),
            3,
        );
        let text = render(&snapshot, now, Some(4096));
        for want in [
            "vigil_agent_hook_records_total{hook=\"exec\",outcome=\"sent\"} 40",
            "vigil_agent_hook_records_total{hook=\"exec\",outcome=\"dropped\"} 2",
            "vigil_agent_hook_active{hook=\"exec\",mechanism=\"tp_btf\"} 1",
            "vigil_agent_dropped_records_total 2",
            "vigil_agent_events_per_second 3.5",
            "vigil_agent_tampering_total 1",
            "vigil_agent_findings_total{type=\"Execution:Runtime/ReverseShell\",severity=\"High\"} 3",
            "process_resident_memory_bytes 4096",
            "vigil_agent_tracked_entries{table=\"processes\"} 12",
            "vigil_agent_tracked_bytes{table=\"processes\"} 4096",
            "vigil_agent_tracked_max_bytes{table=\"processes\"} 16777216",
            "vigil_agent_tracked_shed_total{table=\"processes\"} 3",
            "# TYPE vigil_agent_tracked_shed_total counter",
            "# TYPE vigil_agent_spool_depth gauge\nvigil_agent_spool_depth 7",
            "vigil_agent_event_loop_age_seconds 0",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // Every sample belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let metric = line.split(['{', ' ']).next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {metric} ")), "{line}");
        }
    }

    #[test]
    fn healthz_reflects_the_sensors_and_the_event_loop() {
        let now = Instant::now();
        let mut snapshot = Snapshot::default();
        assert!(
            health_check(&snapshot, now)
                .unwrap_err()
                .contains("starting")
        );
        snapshot.health = Some(health(false));
        snapshot.last_loop = Some(now);
        assert!(
            health_check(&snapshot, now)
                .unwrap_err()
                .contains("no sensor hook")
        );
        snapshot.health = Some(health(true));
        assert!(health_check(&snapshot, now).is_ok());
        let later = now + LOOP_STALE_AFTER + Duration::from_secs(5);
        assert!(
            health_check(&snapshot, later)
                .unwrap_err()
                .contains("has not run for 35s")
        );
    }

    #[test]
    fn the_endpoint_answers_over_http() {
        let telemetry = Arc::new(Telemetry::default());
        telemetry.update(|s| {
            s.health = Some(health(true));
            s.last_loop = Some(Instant::now());
        });
        let addr = serve("127.0.0.1:0".parse().unwrap(), telemetry.clone()).unwrap();
        let get = |path: &str| {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        };
        let healthz = get("/healthz");
        assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
        let metrics = get("/metrics");
        assert!(
            metrics.contains("vigil_agent_hook_active{hook=\"exec\""),
            "{metrics}"
        );
        let long_ago = Instant::now().checked_sub(LOOP_STALE_AFTER * 2);
        telemetry.update(|s| s.last_loop = long_ago);
        let stalled = get("/healthz");
        assert!(stalled.starts_with("HTTP/1.1 503"), "{stalled}");
    }
}
