//! An in-process agent on a background thread that keeps recent events in memory: the harness
//! of the root integration tests and of the benchmarks ("run this, expect that").

use std::{
    collections::VecDeque,
    path::Path,
    sync::{
        Arc, Condvar, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use node_agent_common::stats::Hook;

use crate::{
    agent::boot_id,
    event::{Clock, Event},
    pipeline::{Limits, Pipeline, PipelineStats},
    sensor::{HookCounters, HookStatus, Sensor, SensorOptions, reader::Reader},
};

/// Events kept; older ones are dropped from memory (not from the count).
const KEEP: usize = 200_000;

#[derive(Default)]
struct Shared {
    events: VecDeque<Event>,
    counters: Vec<(Hook, HookCounters)>,
    stats: PipelineStats,
}

/// A running in-process agent.
pub struct Collector {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    hooks: Vec<HookStatus>,
}

/// The collector could not start.
#[derive(Debug, thiserror::Error)]
#[error("the in-process agent did not start: {0}")]
pub struct CollectorError(pub String);

impl Collector {
    /// Starts the sensor and a reader thread; returns once every hook is attached.
    pub fn start(options: SensorOptions) -> Result<Self, CollectorError> {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Vec<HookStatus>, String>>();
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("vigil-collector".into())
                .spawn(move || collect(options, shared, stop, ready_tx))
                .map_err(|e| CollectorError(e.to_string()))?
        };
        let hooks = ready_rx
            .recv()
            .map_err(|_| CollectorError("the collector thread ended before starting".into()))?
            .map_err(CollectorError)?;
        Ok(Self {
            shared,
            stop,
            thread: Some(thread),
            hooks,
        })
    }

    /// Hook states at start-up.
    pub fn hooks(&self) -> &[HookStatus] {
        &self.hooks
    }

    /// Waits until an event matching `pred` arrives (or already has), up to `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.shared;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(event) = guard.events.iter().find(|e| pred(e)) {
                return Some(event.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cond
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Every event kept so far that matches `pred`.
    pub fn matching(&self, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
        let (lock, _) = &*self.shared;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        guard.events.iter().filter(|e| pred(e)).cloned().collect()
    }

    /// The kernel counters as of the last drain.
    pub fn counters(&self) -> Vec<(Hook, HookCounters)> {
        let (lock, _) = &*self.shared;
        lock.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counters
            .clone()
    }

    /// The pipeline counters as of the last drain.
    pub fn stats(&self) -> PipelineStats {
        let (lock, _) = &*self.shared;
        lock.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats
            .clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn collect(
    options: SensorOptions,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<Vec<HookStatus>, String>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("tokio runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let mut sensor = match Sensor::start(&options) {
            Ok(sensor) => sensor,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let Some(ring) = sensor.take_events() else {
            let _ = ready.send(Err("no EVENTS ring buffer".into()));
            return;
        };
        let mut reader = match Reader::new(ring, Duration::from_millis(5)) {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let mut pipeline = Pipeline::new(Clock::now(), boot_id(), Limits::default());
        if let Err(e) = pipeline.seed(Path::new("/proc")) {
            tracing::warn!(error = %e, "seeding from /proc failed");
        }
        let _ = ready.send(Ok(sensor.hooks().to_vec()));
        let (lock, cond) = &*shared;
        while !stop.load(Ordering::Relaxed) {
            let mut batch = Vec::new();
            let drained = tokio::time::timeout(
                Duration::from_millis(50),
                reader.drain(|bytes| {
                    if let Some(event) = pipeline.handle(bytes) {
                        batch.push(event);
                    }
                }),
            )
            .await;
            if let Ok(Err(e)) = drained {
                tracing::error!(error = %e, "ring buffer read failed");
                break;
            }
            let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
            for event in batch {
                if guard.events.len() == KEEP {
                    guard.events.pop_front();
                }
                guard.events.push_back(event);
            }
            guard.counters = sensor.counters();
            guard.stats = pipeline.stats().clone();
            drop(guard);
            cond.notify_all();
        }
    });
}
