//! An in-process agent on a background thread that keeps recent events in memory: the harness
//! of the root integration tests and of the benchmarks ("run this, expect that").

use std::{
    collections::{HashMap, VecDeque},
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
    detect::{KnownProcess, ProcessLookup},
    event::{Clock, Event},
    pipeline::{Limits, Pipeline, PipelineStats},
    sensor::{
        HookCounters, HookStatus, Sensor, SensorOptions,
        reader::{MergeStats, Reader},
    },
};

/// The environment variable that sets the ring count of collectors whose options leave it to
/// the machine (and of the agents the `hostile` tests start).
pub const TEST_RINGS: &str = "VIGIL_TEST_RINGS";

/// Events kept; older ones are dropped from memory (not from the count).
const KEEP: usize = 200_000;

#[derive(Default)]
struct Shared {
    events: VecDeque<Event>,
    /// For each event in `events`, the pipeline's table entry of the process an exec or fork
    /// made, right after it ([`Collector::replay`]).
    views: VecDeque<Option<KnownProcess>>,
    /// The pipeline's table entry of each process when it was first forked or exec'd:
    /// what the agent's detector looks processes up in ([`Collector::lookup`]).
    processes: HashMap<u32, KnownProcess>,
    counters: Vec<(Hook, HookCounters)>,
    stats: PipelineStats,
    ring_merge: MergeStats,
}

/// A running in-process agent.
pub struct Collector {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    hooks: Vec<HookStatus>,
    rings: usize,
}

/// The collector could not start.
#[derive(Debug, thiserror::Error)]
#[error("the in-process agent did not start: {0}")]
pub struct CollectorError(pub String);

impl Collector {
    /// Starts the sensor and a reader thread; returns once every hook is attached.
    ///
    /// Options that leave the ring count to the machine take it from `VIGIL_TEST_RINGS` when
    /// that is set: a whole test suite can run over several ring buffers on a small machine.
    pub fn start(mut options: SensorOptions) -> Result<Self, CollectorError> {
        if options.rings.is_none()
            && let Some(value) = std::env::var_os(TEST_RINGS)
        {
            let rings = value.to_str().and_then(|v| v.parse().ok()).ok_or_else(|| {
                CollectorError(format!("{TEST_RINGS}={value:?}: want a ring count"))
            })?;
            options.rings = Some(rings);
        }
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(Vec<HookStatus>, usize), String>>();
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("vigil-collector".into())
                .spawn(move || collect(options, shared, stop, ready_tx))
                .map_err(|e| CollectorError(e.to_string()))?
        };
        let (hooks, rings) = ready_rx
            .recv()
            .map_err(|_| CollectorError("the collector thread ended before starting".into()))?
            .map_err(CollectorError)?;
        Ok(Self {
            shared,
            stop,
            thread: Some(thread),
            hooks,
            rings,
        })
    }

    /// The processes the pipeline's table held when they exec'd or were forked (the agent's
    /// detector looks processes up in that table: this is the same view, after the fact).
    pub fn lookup(&self) -> SeenProcesses {
        let (lock, _) = &*self.shared;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        SeenProcesses(guard.processes.clone())
    }

    /// Hook states at start-up.
    pub fn hooks(&self) -> &[HookStatus] {
        &self.hooks
    }

    /// How many ring buffers the programs write to.
    pub fn rings(&self) -> usize {
        self.rings
    }

    /// What merging the ring buffers' records took, as of the last drain.
    pub fn ring_merge(&self) -> MergeStats {
        let (lock, _) = &*self.shared;
        lock.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ring_merge
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

    /// Every event kept so far, in order, each with the pipeline's table entry of the process
    /// an exec or fork made (right after that record; `None` for other events): replayed
    /// through a [`ReplayTable`], a detector looks each event's processes up as the agent's
    /// did at that moment. [`Collector::lookup`] is the table at the end, where a pid reused
    /// since (pids wrap on a busy machine) names the later process.
    pub fn replay(&self) -> Vec<(Event, Option<KnownProcess>)> {
        let (lock, _) = &*self.shared;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        guard
            .events
            .iter()
            .cloned()
            .zip(guard.views.iter().cloned())
            .collect()
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
    ready: mpsc::Sender<Result<(Vec<HookStatus>, usize), String>>,
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
        let Some(rings) = sensor.take_rings() else {
            let _ = ready.send(Err("no EVENTS ring buffer".into()));
            return;
        };
        let mut reader = match Reader::new(rings, Duration::from_millis(5)) {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let mut pipeline = Pipeline::new(Clock::now(), boot_id(), Limits::default())
            .with_written_files(sensor.take_written(), None)
            .with_sysctl_hook(sensor.is_active(node_agent_common::stats::Hook::Sysctl));
        let mut dirents = sensor.take_dirents();
        if let Some(watch) = &dirents {
            pipeline = pipeline.with_dirents(options.sensitive.clone(), watch.aliases().to_vec());
        }
        if let Err(e) = pipeline.seed(Path::new("/proc")) {
            tracing::warn!(error = %e, "seeding from /proc failed");
        }
        let _ = ready.send(Ok((sensor.hooks().to_vec(), reader.rings())));
        let (lock, cond) = &*shared;
        while !stop.load(Ordering::Relaxed) {
            let mut batch = Vec::new();
            let drained = tokio::time::timeout(
                Duration::from_millis(50),
                reader.drain(|bytes| {
                    if let Some(event) = pipeline.handle(bytes) {
                        // The table's entry as it stands right after this record (a later exec
                        // in the same batch must not overwrite what a fork left).
                        let pid = match &event {
                            Event::Exec(x) => Some(x.process.pid),
                            Event::Fork(f) => Some(f.child_pid),
                            _ => None,
                        };
                        let known =
                            pid.and_then(|pid| ProcessLookup::get(pipeline.processes(), pid));
                        batch.push((event, known));
                    }
                }),
            )
            .await;
            if let Ok(Err(e)) = drained {
                tracing::error!(error = %e, "ring buffer read failed");
                break;
            }
            // After the ring: a change fanotify queued before a process's exit is read in the
            // same batch as that exit (a test that waits for the exit sees the change too).
            if let Some(watch) = dirents.as_mut() {
                watch.read_ready(|change| {
                    if let Some(event) = pipeline.handle_dirent(&change) {
                        batch.push((event, None));
                    }
                });
            }
            batch.extend(
                pipeline
                    .deleted_executables()
                    .into_iter()
                    .map(|e| (e, None)),
            );
            let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
            for (event, known) in batch {
                // The first view of a pid wins: a process that forked and later exec'd keeps
                // the image it had when it was forked (a replay looks it up for what it did
                // before its exec; its exec itself tells the detector the rest).
                if let Some(known) = &known
                    && guard
                        .processes
                        .get(&known.pid)
                        .is_none_or(|k| k.start_time_ns != known.start_time_ns)
                {
                    if guard.processes.len() >= KEEP {
                        guard.processes.clear();
                    }
                    guard.processes.insert(known.pid, known.clone());
                }
                if guard.events.len() == KEEP {
                    guard.events.pop_front();
                    guard.views.pop_front();
                }
                guard.events.push_back(event);
                guard.views.push_back(known);
            }
            guard.counters = sensor.counters();
            guard.stats = pipeline.stats().clone();
            guard.ring_merge = reader.merge_stats();
            drop(guard);
            cond.notify_all();
        }
    });
}

/// The process table as it stood at each event of a [`Collector::replay`]: feed it each
/// event's entry ([`ReplayTable::saw`]) before the detector looks at the event.
#[derive(Default)]
pub struct ReplayTable(HashMap<u32, KnownProcess>);

impl ReplayTable {
    /// The table as it is after an event whose entry is `view`.
    pub fn saw(&mut self, view: Option<&KnownProcess>) {
        if let Some(known) = view {
            self.0.insert(known.pid, known.clone());
        }
    }
}

impl ProcessLookup for ReplayTable {
    fn get(&self, pid: u32) -> Option<KnownProcess> {
        self.0.get(&pid).cloned()
    }
}

/// A [`ProcessLookup`] over what a [`Collector`] saw.
pub struct SeenProcesses(HashMap<u32, KnownProcess>);

impl ProcessLookup for SeenProcesses {
    fn get(&self, pid: u32) -> Option<KnownProcess> {
        self.0.get(&pid).cloned()
    }
}

/// For root-only tests: true when this process may load eBPF programs. Otherwise it prints why
/// the test did not run and returns false, except under CI (`CI` set), where a missing privilege
/// fails the test: CI runs as root and must never pass by skipping.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let message =
        format!("{test}: needs root to load eBPF programs; not run (run the tests as root)");
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("SKIPPED {message}");
    false
}

impl Collector {
    /// Every event of the process tree rooted at `root` (a child of this process), once `root`
    /// has exited: its own events and those of its descendants, from its last exec. `None` when
    /// that exec and exit did not arrive within `timeout`.
    ///
    /// The tree starts at the root's exec, not at the fork that made it: the sensors skip the
    /// agent's own tasks, and in tests the agent is this process. Pids are reused, so the last
    /// exec by `root` with this process as parent is the one, and its exit is the one with the
    /// same start time.
    ///
    /// Once the exit is in, the tree is collected once more a moment later: the rings are
    /// merged by time with a margin of milliseconds ([`crate::sensor::reader::COMMIT_MARGIN`]),
    /// and a record a CPU was kept from committing for longer (a busy virtual machine's vCPU
    /// descheduled between reserve and submit) is handed out after the exit that followed it.
    pub fn tree_events(&self, root: u32, timeout: Duration) -> Option<Vec<Event>> {
        let me = std::process::id();
        let deadline = Instant::now() + timeout;
        let mut settled = false;
        loop {
            let pids = std::cell::RefCell::new(std::collections::HashSet::from([root]));
            // Loose pass: anything that may belong to a tree rooted at this pid.
            let loose = self.matching(|e| {
                let mut pids = pids.borrow_mut();
                match e {
                    Event::Fork(f) if pids.contains(&f.process.pid) => {
                        pids.insert(f.child_pid);
                        true
                    }
                    _ => pids.contains(&e.process().pid),
                }
            });
            let start = loose.iter().rposition(
                |e| matches!(e, Event::Exec(x) if x.process.pid == root && x.process.ppid == me),
            );
            if let Some(start) = start {
                let started = loose[start].process().start_time_ns;
                let exited = loose[start..].iter().any(|e| {
                    matches!(e, Event::Exit(x) if x.process.pid == root && x.process.start_time_ns == started)
                });
                if exited && !settled {
                    settled = true;
                    std::thread::sleep(LATE_RECORD_GRACE);
                    continue;
                }
                if exited {
                    let mut tree = std::collections::HashSet::from([root]);
                    return Some(
                        loose[start..]
                            .iter()
                            .filter(|e| {
                                if let Event::Fork(f) = e
                                    && tree.contains(&f.process.pid)
                                {
                                    tree.insert(f.child_pid);
                                }
                                tree.contains(&e.process().pid)
                            })
                            .cloned()
                            .collect(),
                    );
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How long [`Collector::tree_events`] waits after a tree's exit for its records committed late.
const LATE_RECORD_GRACE: Duration = Duration::from_millis(150);

/// A name no other test run uses (`<tag><pid>x<time>`): markers in argv, temp paths, netns names.
pub fn unique_name(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}{}x{}", std::process::id(), t % 1_000_000_007)
}
