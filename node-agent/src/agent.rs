//! The standalone agent: sensor, pipeline and output, until a deadline or a signal.

use std::{
    io::Write,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use vigil_detection::FindingType;

use crate::{
    detect::{
        Outcome,
        host::{DetectionOptions, DetectionRunner, SetupError, build_detector},
        report,
    },
    event::{Clock, Event},
    metrics::{Gauge, Telemetry},
    pipeline::{Limits, Pipeline, PipelineStats},
    proctable,
    response::{Responder, ResponseConfig, ResponseStartError},
    sensor::{
        HookCounters, HookStatus, HostSetup, Sensor, SensorError, SensorOptions,
        reader::{MergeStats, Reader},
    },
    tracked::TrackedTable,
};

/// How events are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line.
    Json,
    /// One readable line per event.
    Text,
}

/// What `node-agent run` does.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Sensor settings.
    pub sensor: SensorOptions,
    /// Stop after this long; `None` runs until SIGINT/SIGTERM.
    pub duration: Option<Duration>,
    /// Output format.
    pub format: OutputFormat,
    /// Longest a record waits in the ring buffer without a wake-up.
    pub poll: Duration,
    /// Cache bounds.
    pub limits: Limits,
    /// Where `/proc` is (a host mount inside a container).
    pub proc_root: PathBuf,
    /// The host's cgroup v2 hierarchy, when not this mount namespace's own (a host mount
    /// inside a container); found from `/proc/self/mountinfo` when `None`.
    pub cgroup_root: Option<PathBuf>,
    /// Run detection on every event; `None` turns it off.
    pub detection: Option<DetectionOptions>,
    /// Print new findings instead of events on stdout.
    pub findings_only: bool,
    /// Where the run loop publishes what `/metrics` and `/healthz` report, when served.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Sinks new findings are delivered to (`--integrations`, or the policy in cluster mode).
    pub sinks: Option<crate::sinks::SinksOptions>,
    /// Opt-in automated response (`--response FILE`; in a cluster, `spec.response`).
    pub response: Option<ResponseConfig>,
}

/// How often the run loop reads the kernel counters for the endpoint and the drop check.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);
/// How often new drops are logged at most (standalone mode reported them only at exit).
const DROPS_LOG_EVERY: Duration = Duration::from_secs(10);

/// Why the agent stopped early.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The sensor did not start.
    #[error(transparent)]
    Sensor(#[from] SensorError),
    /// The ring buffer was missing or could not be polled.
    #[error("cannot read the event ring buffer: {0}")]
    Ring(String),
    /// Writing events failed (a closed pipe, a full disk).
    #[error("cannot write events: {0}")]
    Output(#[source] std::io::Error),
    /// Detection could not start (rules, intel, suppression or store).
    #[error(transparent)]
    Detection(#[from] SetupError),
    /// Automated response could not start.
    #[error(transparent)]
    Response(#[from] ResponseStartError),
    /// Automated response was asked for without detection, which it acts on.
    #[error(
        "automated response acts on findings, and detection is off (--no-detection): drop \
         --no-detection or --response"
    )]
    ResponseWithoutDetection,
}

/// The summary printed when the agent stops.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Seconds the agent ran.
    pub seconds: f64,
    /// What start-up found.
    pub host: HostSetup,
    /// Each hook's state.
    pub hooks: Vec<HookStatus>,
    /// Each hook's kernel counters.
    pub counters: Vec<HookCounterLine>,
    /// What user space counted.
    pub pipeline: PipelineStats,
    /// Processes seeded from /proc at start.
    pub seeded_processes: usize,
    /// Events per second over the run.
    pub events_per_second: f64,
    /// Records the kernel could not deliver (ring buffer full), all hooks.
    pub dropped: u64,
    /// Merging the ring buffers' records into one order (with more than one ring): records
    /// held for a later drain, and those that went out of order.
    pub ring_merge: MergeStats,
    /// Who the agent is in the kernel, and what was aimed at it.
    pub self_protection: SelfProtection,
    /// Every table of user-space state the workload can grow, against its bounds, and what each
    /// shed to stay there.
    pub tracked: Vec<TrackedTable>,
    /// The executable hash cache and the background hasher: hits, files hashed, deferred,
    /// skipped.
    pub hashing: crate::exe_hash::ExeHashStats,
    /// The directory-entry sensor (fanotify): records, queue overflows, directories marked and
    /// left unmarked; absent when it did not start (see its hook status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dirents: Option<crate::sensor::dirents::DirentStats>,
}

/// The agent's self-protection: its identity in the kernel and the tampering seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfProtection {
    /// The agent's identity, as the kernel's programs filter and watch it.
    pub identity: Option<crate::sensor::SelfIdentity>,
    /// `SecurityAgentTampered` occurrences since the agent started (detection on).
    pub tampering: u64,
    /// The latest one's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_tampering: Option<String>,
}

/// One hook's counters, named.
#[derive(Clone, Debug, Serialize)]
pub struct HookCounterLine {
    /// Hook name.
    pub hook: &'static str,
    /// Counters.
    #[serde(flatten)]
    pub counters: HookCounters,
}

impl Health {
    /// A few readable lines.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "vigil: ran {:.1}s on kernel {}, {} records ({:.0}/s), {} dropped, {} undecodable\n",
            self.seconds,
            self.host.kernel,
            self.pipeline.records,
            self.events_per_second,
            self.dropped,
            self.pipeline.decode_errors
        );
        for hook in &self.hooks {
            let counters = self.counters.iter().find(|c| c.hook == hook.hook);
            match counters {
                Some(c) => out.push_str(&format!(
                    "  {hook}: sent {} dropped {} errors {} filtered {} folded {} unresolved {}\n",
                    c.counters.sent,
                    c.counters.dropped,
                    c.counters.errors,
                    c.counters.filtered,
                    c.counters.folded,
                    c.counters.unresolved
                )),
                None => out.push_str(&format!("  {hook}\n")),
            }
        }
        if self.host.rings > 1 {
            out.push_str(&format!(
                "  {} ring buffers of {} KiB: {} records held for a later read, {} late, {} forced out of order\n",
                self.host.rings,
                self.host.ring_bytes / 1024,
                self.ring_merge.held,
                self.ring_merge.late,
                self.ring_merge.forced
            ));
        }
        if let Some(d) = &self.dirents {
            out.push_str(&format!(
                "  file_dirents: {} directories marked, {} left unmarked, {} queue overflows\n",
                d.marks, d.unmarked, d.overflows
            ));
        }
        out
    }
}

/// What a deployment around the agent (cluster mode) plugs into the run loop. Every method runs
/// on the loop's thread, between ring-buffer drains; the defaults do nothing.
pub trait RunHooks {
    /// Once, when the sensor runs and detection is set up.
    fn started(&mut self, _detection: Option<&mut DetectionRunner>) {}
    /// Every detection outcome: new, repeated or archived.
    fn on_outcome(&mut self, _outcome: &Outcome) {}
    /// After every drain (about every poll interval): periodic work. `health` gives the current
    /// summary (it reads the kernel counters: call it sparingly).
    fn tick(&mut self, _health: &dyn Fn() -> Health, _detection: Option<&mut DetectionRunner>) {}
    /// Gauges of the deployment for `/metrics` (cluster mode: spool depth, heartbeat age).
    fn gauges(&self) -> Vec<Gauge> {
        Vec::new()
    }
}

/// Logs drops while the agent runs, at most every [`DROPS_LOG_EVERY`], with the hooks that
/// dropped: a sensor that loses events must say so when it happens, not only at exit.
#[derive(Default)]
struct DropWatch {
    logged: u64,
    last_log: Option<Instant>,
}

impl DropWatch {
    fn check(&mut self, health: &Health, now: Instant) {
        if health.dropped <= self.logged
            || self
                .last_log
                .is_some_and(|t| now.duration_since(t) < DROPS_LOG_EVERY)
        {
            return;
        }
        let by_hook: Vec<String> = health
            .counters
            .iter()
            .filter(|c| c.counters.dropped > 0)
            .map(|c| format!("{}={}", c.hook, c.counters.dropped))
            .collect();
        tracing::warn!(
            dropped = health.dropped,
            new = health.dropped - self.logged,
            hooks = %by_hook.join(","),
            "the kernel dropped records: the ring buffer was full"
        );
        self.logged = health.dropped;
        self.last_log = Some(now);
    }
}

/// No hooks: the standalone agent.
pub struct Standalone;

impl RunHooks for Standalone {}

/// Reads `/proc/sys/kernel/random/boot_id` (empty when unreadable: uuids then depend on the pid
/// and start time alone).
pub fn boot_id() -> String {
    proctable::read_boot_id().unwrap_or_default()
}

/// Runs the agent until the deadline or a signal, printing events to `out`.
pub async fn run<W: Write>(options: &RunOptions, out: &mut W) -> Result<Health, AgentError> {
    run_with(options, out, &mut Standalone).await
}

/// [`run`] with hooks around the loop.
pub async fn run_with<W: Write, H: RunHooks>(
    options: &RunOptions,
    out: &mut W,
    hooks: &mut H,
) -> Result<Health, AgentError> {
    let started = Instant::now();
    // Stop signals are watched from the start: a service manager that stops the agent while it
    // loads (programs, intel, the process table, tool hashes) gets a clean stop with the health
    // summary, not the default action's kill.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| AgentError::Ring(format!("cannot watch SIGTERM: {e}")))?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| AgentError::Ring(format!("cannot watch SIGINT: {e}")))?;
    // The sensor first, the threat intel after it: the eBPF loader's transient memory (BTF,
    // the object's sections) is freed before the lists load, so the two do not add up into
    // the agent's peak (docs/PERFORMANCE.md, "Memory"). Records wait in the ring buffer
    // meanwhile (the load takes a fraction of a second; the reader starts after the process
    // table is seeded in any case). The store opens once the sensor runs, so that a missing
    // privilege is reported as such rather than as an unwritable database.
    let mut sensor = Sensor::start(&options.sensor)?;
    let identity = sensor.identity();
    tracing::info!(
        pid = identity.pid,
        parent = identity.parent_pid,
        own_pid = identity.own_pid,
        source = ?identity.source,
        "the agent's identity in the kernel"
    );
    let detector = match &options.detection {
        Some(d) => {
            let (detector, report) = build_detector(d, Clock::now(), boot_id())?;
            // Findings classify file events with the very set the kernel filters with.
            let detector = detector.with_sensitive_paths(options.sensor.sensitive.clone());
            for m in &report.malformed {
                tracing::warn!(%m, "skipped threat-intel entry");
            }
            tracing::info!(
                rules = detector.rules().rules().len(),
                database = ?d.database,
                "detection on"
            );
            Some((detector, d))
        }
        None => None,
    };
    let detection = std::cell::RefCell::new(match detector {
        Some((mut detector, d)) => {
            detector.set_agent(crate::detect::selfprotect::AgentSelf {
                pid: identity.pid,
                parent_pid: identity.parent_pid,
                files: options.sensor.agent_files.clone(),
            });
            Some(DetectionRunner::new(detector, d)?)
        }
        None => None,
    });
    let protection = std::cell::RefCell::new(SelfProtection {
        identity: Some(identity),
        ..SelfProtection::default()
    });
    if let Some(config) = options.response.clone() {
        let mut detection = detection.borrow_mut();
        let d = detection
            .as_mut()
            .ok_or(AgentError::ResponseWithoutDetection)?;
        let cgroup_root = match &options.cgroup_root {
            Some(root) => Some(crate::sensor::unified_cgroup(root)),
            None => sensor.setup().cgroup2_root.clone(),
        };
        let responder = Responder::start(
            config,
            &d.detector().intel().snapshot(),
            options.proc_root.clone(),
            cgroup_root,
            boot_id(),
        )?;
        for hook in responder.hooks() {
            tracing::info!(hook = hook.hook, mechanism = hook.mechanism, state = ?hook.state, "response");
        }
        d.set_responder(responder);
    }
    hooks.started(detection.borrow_mut().as_mut());
    // Sinks start once detection runs, on this loop's runtime; their tasks run while the loop
    // waits for records. A sink that cannot start is reported and left out.
    let delivery = match (&options.sinks, detection.borrow().is_some()) {
        (Some(sinks), true) => {
            for e in &sinks.integrations.errors {
                tracing::error!(sink = e.sink(), error = %e, "sink left out");
            }
            let (delivery, errors) = crate::sinks::Delivery::start(sinks);
            for e in &errors {
                tracing::error!(error = %e, "sink left out");
            }
            tracing::info!(sinks = ?delivery.sinks(), dir = %sinks.dir.display(), "delivering findings");
            Some(delivery)
        }
        (Some(_), false) => {
            tracing::warn!(
                "integrations are configured but detection is off: no findings to deliver"
            );
            None
        }
        (None, _) => None,
    };
    let hooks = std::cell::RefCell::new(hooks);
    for hook in sensor.hooks() {
        tracing::info!(hook = hook.hook, mechanism = hook.mechanism, state = ?hook.state, "sensor");
    }
    if detection.borrow().is_some() {
        for u in sensor.unreachable_finding_types() {
            tracing::warn!(
                finding_type = u.finding_type,
                missing = %u.missing.join("; "),
                "this finding type cannot fire: a hook it needs is not active"
            );
        }
    }
    // The host's security agents and programs named like miners, whose stopping signals the
    // kernel reports: only with detection on (nothing else reads those records).
    let guarded = detection.borrow().as_ref().and_then(|runner| {
        let b = runner.detector().rules().behaviour();
        sensor.take_guarded(b.security_agents.clone(), b.miner_names.clone())
    });
    let mut pipeline = Pipeline::new(Clock::now(), boot_id(), options.limits)
        .with_host_paths(options.proc_root.clone(), options.cgroup_root.clone())
        .with_written_files(
            sensor.take_written(),
            detection
                .borrow()
                .as_ref()
                .map(|runner| runner.detector().shared_rules()),
        )
        .with_guarded(guarded)
        .with_sysctl_hook(sensor.is_active(node_agent_common::stats::Hook::Sysctl));
    let seeded = match pipeline.seed(&options.proc_root) {
        Ok(n) => n,
        Err(error) => {
            tracing::warn!(%error, "could not seed the process table from /proc");
            0
        }
    };
    // Directory-entry changes from fanotify, read after each drain of the ring buffer (a
    // non-blocking read: at most the poll interval late) and paired with the ring's records.
    let mut dirents = sensor.take_dirents();
    if let Some(watch) = &dirents {
        pipeline =
            pipeline.with_dirents(options.sensor.sensitive.clone(), watch.aliases().to_vec());
    }
    let rings = sensor.take_rings().ok_or_else(|| {
        AgentError::Ring("an EVENTS ring buffer map is missing from the eBPF object".into())
    })?;
    let mut reader =
        Reader::new(rings, options.poll).map_err(|e| AgentError::Ring(e.to_string()))?;
    // Start-up is over: what the intel load, the eBPF loader and the seeding freed goes back
    // to the kernel instead of staying resident in the heap.
    crate::memory::release_free_memory();

    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut write_error: Option<std::io::Error> = None;
    let format = options.format;
    let findings_only = options.findings_only;
    // SIGHUP reloads threat intel and suppression rules; the reload runs before the next event.
    let reload = std::cell::Cell::new(false);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| AgentError::Ring(format!("cannot watch SIGHUP: {e}")))?;
    let emit = |event: Event,
                pipeline: &mut Pipeline,
                out: &mut W,
                write_error: &mut Option<std::io::Error>| {
        let mut detection = detection.borrow_mut();
        if reload.take()
            && let Some(d) = detection.as_mut()
        {
            match d.reload() {
                Ok(report) => tracing::info!(
                    malformed = report.malformed_total,
                    "reloaded threat intel and suppression rules"
                ),
                Err(error) => {
                    tracing::warn!(%error, "reload failed; the previous intel and rules stay")
                }
            }
        }
        let outcomes = detection
            .as_mut()
            .map(|d| d.on_event(&event, pipeline.processes()))
            .unwrap_or_default();
        // A process found to be a miner is guarded from here on, whatever it is called.
        for o in &outcomes {
            if let Some((pid, uuid)) = crate::detect::miner_process(&o.finding) {
                pipeline.guard_miner(pid, uuid);
            }
        }
        for o in &outcomes {
            if o.finding.finding_type == FindingType::DefenseEvasionSecurityAgentTampered.as_str() {
                let mut p = protection.borrow_mut();
                p.tampering += 1;
                p.last_tampering = Some(o.finding.description.clone());
                tracing::error!(id = %o.finding.id, "the agent is being tampered with: {}", o.finding.description);
            }
        }
        if let Some(t) = &options.telemetry
            && outcomes.iter().any(|o| o.new)
        {
            t.update(|s| {
                for o in outcomes.iter().filter(|o| o.new) {
                    let key = (o.finding.finding_type.clone(), o.finding.severity_label);
                    *s.findings.entry(key).or_default() += 1;
                }
            });
        }
        if let Some(d) = &delivery {
            for o in outcomes.iter().filter(|o| o.is_shown()) {
                d.submit(&o.finding);
            }
        }
        if !outcomes.is_empty() {
            let mut hooks = hooks.borrow_mut();
            for o in &outcomes {
                hooks.on_outcome(o);
            }
        }
        let findings: Vec<_> = outcomes
            .into_iter()
            .filter(Outcome::is_shown)
            .map(|o| o.finding)
            .collect();
        if write_error.is_some() {
            return;
        }
        let written = if findings_only {
            findings
                .iter()
                .try_for_each(|f| write_finding(out, f, format))
        } else {
            for f in &findings {
                tracing::warn!(id = %f.id, r#type = %f.finding_type, severity = f.severity, "finding: {}", f.title);
            }
            write_event(out, &event, format)
        };
        if let Err(e) = written {
            *write_error = Some(e);
        }
    };
    let mut counters_read = Instant::now();
    let mut drops = DropWatch::default();
    loop {
        let stop = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            drained = reader.drain(|bytes| {
                if let Some(event) = pipeline.handle(bytes) {
                    emit(event, &mut pipeline, out, &mut write_error);
                }
            }) => {
                drained.map_err(|e| AgentError::Ring(e.to_string()))?;
                if let Some(watch) = dirents.as_mut() {
                    watch.read_ready(|change| {
                        if let Some(event) = pipeline.handle_dirent(&change) {
                            emit(event, &mut pipeline, out, &mut write_error);
                        }
                    });
                }
                for event in pipeline.deleted_executables() {
                    emit(event, &mut pipeline, out, &mut write_error);
                }
                out.flush().map_err(AgentError::Output)?;
                let mut detection = detection.borrow_mut();
                if let Some(d) = detection.as_mut() {
                    d.flush_if_due();
                }
                let detector_tables = detection
                    .as_ref()
                    .map(|d| d.detector().tracked())
                    .unwrap_or_default();
                let ring_merge = reader.merge_stats();
                let current = || {
                    health(
                        &sensor,
                        &pipeline,
                        seeded,
                        started.elapsed(),
                        &protection.borrow(),
                        &detector_tables,
                        ring_merge,
                    )
                };
                hooks.borrow_mut().tick(&current, detection.as_mut());
                let now = Instant::now();
                if let Some(t) = &options.telemetry {
                    t.update(|s| s.last_loop = Some(now));
                }
                if now.duration_since(counters_read) >= COUNTERS_EVERY {
                    counters_read = now;
                    let summary = current();
                    drops.check(&summary, now);
                    if let Some(t) = &options.telemetry {
                        let gauges = hooks.borrow().gauges();
                        let sinks = delivery.as_ref().map(|d| d.stats()).unwrap_or_default();
                        let left_out = delivery.as_ref().map(|d| d.left_out());
                        t.update(|s| {
                            s.health = Some(summary);
                            s.gauges = gauges;
                            s.sinks = sinks;
                            s.sinks_left_out = left_out;
                        });
                    }
                }
            }
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => reload.set(true),
            () = stop => break,
        }
        if let Some(e) = write_error.take() {
            return Err(AgentError::Output(e));
        }
    }
    reader.drain_ready(|bytes| {
        if let Some(event) = pipeline.handle(bytes) {
            emit(event, &mut pipeline, out, &mut write_error);
        }
    });
    if let Some(watch) = dirents.as_mut() {
        watch.read_ready(|change| {
            if let Some(event) = pipeline.handle_dirent(&change) {
                emit(event, &mut pipeline, out, &mut write_error);
            }
        });
    }
    if let Some(e) = write_error.take() {
        return Err(AgentError::Output(e));
    }
    out.flush().map_err(AgentError::Output)?;
    if let Some(d) = detection.borrow().as_ref() {
        let stats = d.detector().stats();
        tracing::info!(
            events = stats.events,
            new_findings = stats.new_findings,
            repeats = stats.repeats,
            archived = stats.archived,
            store_errors = d.store_errors(),
            store = ?d.store_stats(),
            "detection summary"
        );
    }
    let detector_tables = detection
        .borrow()
        .as_ref()
        .map(|d| d.detector().tracked())
        .unwrap_or_default();
    let summary = health(
        &sensor,
        &pipeline,
        seeded,
        started.elapsed(),
        &protection.borrow(),
        &detector_tables,
        reader.merge_stats(),
    );
    Ok(summary)
}

/// The summary of a run.
pub fn health(
    sensor: &Sensor,
    pipeline: &Pipeline,
    seeded: usize,
    elapsed: Duration,
    protection: &SelfProtection,
    detector_tables: &[TrackedTable],
    ring_merge: MergeStats,
) -> Health {
    let mut counters: Vec<HookCounterLine> = sensor
        .counters()
        .into_iter()
        .map(|(hook, counters)| HookCounterLine {
            hook: hook.name(),
            counters,
        })
        .collect();
    // fanotify's: changes reported, its queue's overflows as drops, records whose directory
    // could not be resolved, the agent's own changes as filtered (all of them in `dirents`).
    if let Some(d) = sensor.dirent_stats() {
        counters.push(HookCounterLine {
            hook: crate::sensor::dirents::HOOK_NAME,
            counters: HookCounters {
                sent: d.reported,
                dropped: d.overflows,
                errors: 0,
                filtered: d.own,
                folded: 0,
                unresolved: d.unresolved,
            },
        });
    }
    let seconds = elapsed.as_secs_f64();
    Health {
        seconds,
        host: sensor.setup().clone(),
        hooks: sensor.hooks().to_vec(),
        dropped: counters.iter().map(|c| c.counters.dropped).sum(),
        ring_merge,
        counters,
        pipeline: pipeline.stats().clone(),
        seeded_processes: seeded,
        events_per_second: if seconds > 0.0 {
            pipeline.stats().records as f64 / seconds
        } else {
            0.0
        },
        self_protection: protection.clone(),
        tracked: [
            pipeline.processes().tracked(),
            pipeline.hash_tracked(),
            pipeline.stream_senders_tracked(),
            pipeline.deletions_tracked(),
        ]
        .into_iter()
        .chain(pipeline.written_tracked())
        .chain(pipeline.guarded_tracked())
        .chain(sensor.dns_sockets_tracked())
        .chain(pipeline.pairs_tracked())
        .chain(detector_tables.iter().cloned())
        .collect(),
        hashing: pipeline.hash_stats(),
        dirents: sensor.dirent_stats(),
    }
}

/// Writes one finding in the chosen format, with a newline.
pub fn write_finding<W: Write>(
    out: &mut W,
    finding: &vigil_crds::finding::Finding,
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, finding).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        }
        OutputFormat::Text => writeln!(out, "{}", report::text_line(finding)),
    }
}

/// Writes one event in the chosen format, with a newline.
pub fn write_event<W: Write>(
    out: &mut W,
    event: &Event,
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, event).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        }
        OutputFormat::Text => writeln!(out, "{}", text_line(event)),
    }
}

/// One readable line for an event, control characters escaped (the workload chooses `comm`,
/// arguments and paths).
pub fn text_line(event: &Event) -> String {
    report::escape_controls(&event_line(event)).into_owned()
}

fn event_line(event: &Event) -> String {
    let p = event.process();
    let who = format!(
        "pid={} ppid={} uid={} comm={}",
        p.pid, p.ppid, p.uid, p.comm
    );
    match event {
        Event::Exec(e) => format!(
            "{} exec   {who} exe={} argv={:?} cwd={}{}",
            e.time,
            e.exe.display(),
            e.argv,
            e.cwd
                .as_ref()
                .map(|c| c.display().to_string())
                .unwrap_or_else(|| "?".into()),
            e.sha256.map(|d| format!(" sha256={d}")).unwrap_or_default()
        ),
        Event::Fork(e) => format!("{} fork   {who} child={}", e.time, e.child_pid),
        Event::Exit(e) => format!(
            "{} exit   {who} {}",
            e.time,
            match (e.exit_status, e.signal) {
                (Some(status), _) => format!("status={status}"),
                (_, Some(signal)) => format!("signal={signal}"),
                _ => String::new(),
            }
        ),
        Event::Connect(e) | Event::ConnectOutcome(e) | Event::Accept(e) => format!(
            "{} {} {who} {} {} -> {} {}{}",
            e.time,
            match event {
                Event::Connect(_) => "connect",
                Event::ConnectOutcome(_) => "outcome",
                _ => "accept ",
            },
            e.family,
            e.protocol,
            e.remote
                .map(|r| r.to_string())
                .or_else(|| e.unix_path.clone())
                .unwrap_or_else(|| "?".into()),
            e.error.clone().unwrap_or_else(|| format!("ret={}", e.ret)),
            e.outcome
                .as_ref()
                .map(|o| format!(" outcome={o}"))
                .unwrap_or_default()
        ),
        Event::Stream(e) => format!(
            "{} stream {who} tcp -> {} segment={} bytes={}{}",
            e.time,
            e.remote,
            e.segment,
            e.payload_len,
            if e.sender == "socketLock" {
                String::new()
            } else {
                format!(" sender={}", e.sender)
            }
        ),
        Event::File(e) => format!(
            "{} file   {who} {} {}{} {}",
            e.time,
            e.operation,
            e.resolved_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| e.path.clone()),
            e.path2
                .as_ref()
                .map(|p| format!(" -> {p}"))
                .unwrap_or_default(),
            e.error.clone().unwrap_or_else(|| format!("ret={}", e.ret))
        ),
        Event::Activity(e) => format!(
            "{} {:<6} {who}{}{}{}{} {}",
            e.time,
            e.operation,
            e.request
                .as_ref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default(),
            e.target_pid
                .map(|p| format!(" target={p}"))
                .unwrap_or_default(),
            e.name
                .as_ref()
                .map(|n| format!(" name={n}"))
                .unwrap_or_default(),
            e.target
                .as_ref()
                .map(|t| format!(" {} -> {t}", e.source.clone().unwrap_or_default()))
                .unwrap_or_default(),
            e.error.clone().unwrap_or_else(|| format!("ret={}", e.ret))
        ),
        Event::Dns(e) => format!(
            "{} dns    {who} {} {} via {} {}{}",
            e.time,
            e.direction,
            e.questions
                .iter()
                .map(|q| format!("{} {}", q.qtype, q.name))
                .collect::<Vec<_>>()
                .join(","),
            e.resolver,
            e.rcode.clone().unwrap_or_default(),
            e.answers
                .iter()
                .map(|a| format!(" {}={}", a.rtype, a.data))
                .collect::<String>()
        ),
    }
}
