//! Findings to the configured sinks, at least once, in both modes.
//!
//! Each sink has its own on-disk queue ([`crate::spool`], `<dir>/<name>.db`) and its own task:
//! the run loop [`Delivery::submit`]s every new, unarchived finding to the queues whose filter
//! it passes (a SQLite write, never a network wait), and each task sends the oldest waiting
//! finding until the sink accepts it. A failed attempt is counted in the queue's file and retried
//! after an exponential backoff; after `maxAttempts` (or at once when the error is permanent,
//! such as a 400) the finding is dead-lettered: removed and counted. A queue holds at most
//! `maxQueued` findings; beyond that the oldest of the lowest severity goes (counted as
//! evicted). What was queued survives an agent restart and is sent then; a finding whose
//! success the agent did not record before it stopped is sent again (at least once: receivers
//! deduplicate on the finding id).
//!
//! A sink that fails (a bad configuration, an unopenable queue, a receiver that is down) is
//! reported and left behind; detection and the other sinks go on.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize};
use tokio::{sync::Notify, task::JoinHandle};
use vigil_crds::finding::{Finding, SeverityLabel};
use vigil_integrations::{
    config::{DeliverySettings, Integrations, SinkConfigError, SinkFilter, SinkKind},
    sink::{Sink, SinkError},
};

use crate::spool::{Spool, SpoolEntry, SpoolError, SpoolLimits};

/// Bytes of findings one sink's queue may hold (with `maxQueued` entries, whichever comes first).
pub const MAX_QUEUE_BYTES: u64 = 64 * 1024 * 1024;

/// What a sink's queue holds: the finding, as detection raised it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(transparent)]
pub struct SinkEntry {
    /// The finding.
    pub finding: Finding,
}

impl SpoolEntry for SinkEntry {
    fn key(&self) -> String {
        self.finding.id.clone()
    }

    fn severity(&self) -> SeverityLabel {
        self.finding.severity_label
    }

    fn describe(&self) -> String {
        format!("finding {}", self.finding.id)
    }
}

/// What delivery needs: the validated configuration and where the queues live.
#[derive(Clone, Debug)]
pub struct SinksOptions {
    /// The sinks and the delivery settings.
    pub integrations: Integrations,
    /// The directory of the queues (`<name>.db` each).
    pub dir: PathBuf,
}

/// Why a sink was left out when delivery started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its configuration could not be turned into a sink.
    #[error(transparent)]
    Config(#[from] SinkConfigError),
    /// Its queue could not be opened.
    #[error("sink {sink}: cannot open its queue: {source}")]
    Queue {
        /// The sink.
        sink: String,
        /// The spool's error (names the file).
        #[source]
        source: SpoolError,
    },
}

/// Counters of one sink since the agent started.
#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    evicted: AtomicU64,
    queue_errors: AtomicU64,
}

/// One sink's figures, for `/metrics` and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// The sink's name.
    pub sink: String,
    /// Its kind (`webhook`, ...).
    pub kind: &'static str,
    /// Findings the receiver accepted, since the start.
    pub delivered: u64,
    /// Failed attempts, since the start.
    pub failed: u64,
    /// Findings given up on, since the start.
    pub dead_lettered: u64,
    /// Findings given up on since the queue file was created.
    pub dead_lettered_total: u64,
    /// Findings pushed out of a full queue, since the start.
    pub evicted: u64,
    /// Queue read or write failures, since the start.
    pub queue_errors: u64,
    /// Findings waiting now.
    pub queued: u64,
}

struct Queue {
    name: String,
    kind: SinkKind,
    filter: SinkFilter,
    spool: Arc<Mutex<Spool<SinkEntry>>>,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

fn lock<E: SpoolEntry>(spool: &Mutex<Spool<E>>) -> MutexGuard<'_, Spool<E>> {
    // The spool's state is in SQLite; a panic elsewhere cannot leave it half-updated in memory
    // in a way the next transaction would not correct.
    spool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running delivery: one queue and one task per sink.
pub struct Delivery {
    queues: Vec<Queue>,
    left_out: usize,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field(
                "sinks",
                &self.queues.iter().map(|q| &q.name).collect::<Vec<_>>(),
            )
            .field("left_out", &self.left_out)
            .finish()
    }
}

impl Delivery {
    /// Builds every configured sink, opens its queue and starts its task on the current tokio
    /// runtime. Sinks that fail are left out and returned with why (the configuration's own
    /// errors included); the others run.
    pub fn start(options: &SinksOptions) -> (Self, Vec<StartError>) {
        let mut errors: Vec<StartError> = Vec::new();
        let mut sinks: Vec<(Box<dyn Sink>, SinkKind, SinkFilter)> = Vec::new();
        for config in &options.integrations.sinks {
            match vigil_integrations::sink::build(config, &options.integrations.origin) {
                Ok(sink) => sinks.push((sink, config.kind, config.filter.clone())),
                Err(e) => errors.push(e.into()),
            }
        }
        let (mut delivery, more) =
            Self::start_sinks(sinks, options.integrations.delivery, &options.dir);
        errors.extend(more);
        delivery.left_out = errors.len() + options.integrations.errors.len();
        (delivery, errors)
    }

    /// [`Delivery::start`] with sinks already built (tests bring their own).
    pub fn start_sinks(
        sinks: Vec<(Box<dyn Sink>, SinkKind, SinkFilter)>,
        settings: DeliverySettings,
        dir: &Path,
    ) -> (Self, Vec<StartError>) {
        let mut queues = Vec::new();
        let mut errors = Vec::new();
        for (sink, kind, filter) in sinks {
            let name = sink.name().to_owned();
            let limits = SpoolLimits {
                max_entries: settings.max_queued,
                max_bytes: MAX_QUEUE_BYTES,
            };
            let spool = match Spool::<SinkEntry>::open(&dir.join(format!("{name}.db")), limits) {
                Ok(s) => s,
                Err(source) => {
                    errors.push(StartError::Queue { sink: name, source });
                    continue;
                }
            };
            if !spool.is_empty() {
                tracing::info!(sink = %name, queued = spool.len(), "findings from before the restart wait for this sink");
            }
            let spool = Arc::new(Mutex::new(spool));
            let wake = Arc::new(Notify::new());
            let counters = Arc::new(Counters::default());
            let task = tokio::spawn(run_queue(
                sink,
                spool.clone(),
                wake.clone(),
                counters.clone(),
                settings,
            ));
            queues.push(Queue {
                name,
                kind,
                filter,
                spool,
                wake,
                counters,
                task,
            });
        }
        let left_out = errors.len();
        (Self { queues, left_out }, errors)
    }

    /// Queues `finding` for every sink whose filter it passes; returns how many. Never waits on
    /// the network; a queue that cannot be written is logged and counted.
    pub fn submit(&self, finding: &Finding) -> usize {
        let mut queued = 0;
        let entry = SinkEntry {
            finding: finding.clone(),
        };
        for q in self.queues.iter().filter(|q| q.filter.matches(finding)) {
            let pushed = lock(&q.spool).push(&entry);
            match pushed {
                Ok(outcome) => {
                    q.counters
                        .evicted
                        .fetch_add(outcome.evicted, Ordering::Relaxed);
                    if outcome.stored {
                        queued += 1;
                        q.wake.notify_one();
                    }
                }
                Err(error) => {
                    q.counters.queue_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(sink = %q.name, id = %finding.id, %error, "cannot queue the finding for this sink");
                }
            }
        }
        queued
    }

    /// The running sinks' names.
    pub fn sinks(&self) -> Vec<&str> {
        self.queues.iter().map(|q| q.name.as_str()).collect()
    }

    /// Configured sinks that are not running (their errors were returned by `start`).
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// Every running sink's figures.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.queues
            .iter()
            .map(|q| {
                let (queued, dead_lettered_total) = {
                    let s = lock(&q.spool);
                    (s.len(), s.dead_lettered_total())
                };
                let c = &q.counters;
                SinkStats {
                    sink: q.name.clone(),
                    kind: q.kind.name(),
                    delivered: c.delivered.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
                    dead_lettered_total,
                    evicted: c.evicted.load(Ordering::Relaxed),
                    queue_errors: c.queue_errors.load(Ordering::Relaxed),
                    queued,
                }
            })
            .collect()
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // A send cut short stays queued and is sent again after the restart.
        for q in &self.queues {
            q.task.abort();
        }
    }
}

/// One sink's task: the oldest waiting finding until it is accepted or given up on.
async fn run_queue(
    sink: Box<dyn Sink>,
    spool: Arc<Mutex<Spool<SinkEntry>>>,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
    settings: DeliverySettings,
) {
    let name = sink.name().to_owned();
    loop {
        let head = lock(&spool).peek();
        let (seq, entry) = match head {
            Ok(Some(head)) => head,
            Ok(None) => {
                wake.notified().await;
                continue;
            }
            Err(error @ SpoolError::Corrupt { .. }) => {
                counters.queue_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %name, %error, "dropped a damaged queue entry");
                continue;
            }
            Err(error) => {
                counters.queue_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %name, %error, "cannot read the queue; trying again");
                tokio::time::sleep(settings.max_backoff).await;
                continue;
            }
        };
        let id = entry.finding.id.clone();
        let sent = match tokio::time::timeout(settings.timeout, sink.send(&entry.finding)).await {
            Ok(result) => result,
            Err(_) => Err(SinkError::Timeout(settings.timeout)),
        };
        match sent {
            Ok(()) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = lock(&spool).ack(seq) {
                    // Sent again later: at least once.
                    counters.queue_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(sink = %name, %id, %error, "delivered, but cannot remove it from the queue");
                }
                tracing::debug!(sink = %name, %id, "delivered");
            }
            Err(error) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                let attempts = match lock(&spool).record_failure(seq) {
                    Ok(n) => n,
                    Err(e) => {
                        counters.queue_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(sink = %name, %id, error = %e, "cannot count the failed attempt");
                        settings.max_attempts
                    }
                };
                if error.is_permanent() || attempts >= settings.max_attempts {
                    let removed = lock(&spool).dead_letter(seq);
                    match removed {
                        Ok(_) => {
                            counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(
                                sink = %name, %id, attempts, permanent = error.is_permanent(), %error,
                                "gave up on delivering this finding (dead-lettered; it stays in the findings store)"
                            );
                        }
                        Err(e) => {
                            counters.queue_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(sink = %name, %id, error = %e, "cannot dead-letter the finding");
                            tokio::time::sleep(settings.max_backoff).await;
                        }
                    }
                } else {
                    let wait = settings.backoff(attempts);
                    tracing::warn!(
                        sink = %name, %id, attempts, max_attempts = settings.max_attempts,
                        retry_in_ms = wait.as_millis() as u64, %error,
                        "delivery failed; will retry"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// The default directory of the sink queues beside the findings database (or `/var/lib/vigil`).
pub fn default_dir(database: Option<&Path>) -> PathBuf {
    database
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/var/lib/vigil"))
        .join("sinks")
}
