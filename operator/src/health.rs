//! What `/healthz` says, truthfully: whether this replica is doing its work. Starting, caches not
//! yet listed, a watch failing for longer than [`WATCH_FAILURE_GRACE_SECONDS`], or controllers
//! that stopped are all "not ok", each with its reason; a follower waiting for leadership is ok
//! (it is doing what it should). `/livez` stays a plain "the process answers".

use std::{collections::BTreeMap, sync::Mutex};

use k8s_openapi::jiff::Timestamp;

/// How long a watch may keep failing (the API server unreachable, RBAC taken away) before
/// `/healthz` says so. Shorter failures are retried by the watcher's backoff and pass.
pub const WATCH_FAILURE_GRACE_SECONDS: i64 = 60;

/// Longest error text kept per watch.
const ERROR_BYTES: usize = 300;

/// Where the replica is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not yet leading or running.
    Starting,
    /// Waiting for the leader Lease (another replica leads).
    Standby,
    /// Running the controllers.
    Running,
    /// The controllers stopped (shutdown, or lost leadership).
    Stopped,
}

/// The answer of `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// 200 when true, 503 otherwise.
    pub ok: bool,
    /// `ok`, `standby: ...`, or one line per reason.
    pub text: String,
}

type CachesReady = Box<dyn Fn() -> bool + Send + Sync>;

/// Shared between the watches, the controllers and the HTTP server.
pub struct Health {
    state: Mutex<State>,
    caches_ready: Mutex<Option<CachesReady>>,
}

struct State {
    phase: Phase,
    /// Per watch: since when it has failed without a success in between, and the last error.
    failing: BTreeMap<&'static str, (Timestamp, String)>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                phase: Phase::Starting,
                failing: BTreeMap::new(),
            }),
            caches_ready: Mutex::new(None),
        }
    }
}

impl Health {
    /// Records the replica's phase.
    pub fn set_phase(&self, phase: Phase) {
        self.with_state(|s| s.phase = phase);
    }

    /// Sets how to tell whether every cache has completed its first list.
    pub fn set_caches_ready(&self, ready: impl Fn() -> bool + Send + Sync + 'static) {
        if let Ok(mut slot) = self.caches_ready.lock() {
            *slot = Some(Box::new(ready));
        }
    }

    /// A watch delivered an event: whatever failed before has recovered.
    pub fn watch_ok(&self, watch: &'static str) {
        self.with_state(|s| {
            s.failing.remove(watch);
        });
    }

    /// A watch failed at `now`; the first failure of a run is kept as its start.
    pub fn watch_failed(&self, watch: &'static str, error: &dyn std::fmt::Display, now: Timestamp) {
        let mut text = error.to_string();
        if text.len() > ERROR_BYTES {
            let mut cut = ERROR_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        self.with_state(|s| {
            let entry = s.failing.entry(watch).or_insert((now, String::new()));
            entry.1 = text;
        });
    }

    /// The answer at `now`.
    pub fn report(&self, now: Timestamp) -> Report {
        let caches_ready = self
            .caches_ready
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().map(|ready| ready()));
        let Ok(state) = self.state.lock() else {
            return Report {
                ok: false,
                text: "health state poisoned".to_owned(),
            };
        };
        assess(state.phase, caches_ready, &state.failing, now)
    }

    fn with_state(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }
}

/// The pure rule behind [`Health::report`].
fn assess(
    phase: Phase,
    caches_ready: Option<bool>,
    failing: &BTreeMap<&'static str, (Timestamp, String)>,
    now: Timestamp,
) -> Report {
    let mut reasons = Vec::new();
    match phase {
        Phase::Starting => reasons.push("starting".to_owned()),
        Phase::Standby => {
            return Report {
                ok: true,
                text: "standby: waiting for the leader Lease".to_owned(),
            };
        }
        Phase::Stopped => reasons.push("controllers stopped".to_owned()),
        Phase::Running => {
            if caches_ready != Some(true) {
                reasons.push("caches have not finished their first list".to_owned());
            }
        }
    }
    for (watch, (since, error)) in failing {
        if now.as_second().saturating_sub(since.as_second()) > WATCH_FAILURE_GRACE_SECONDS {
            reasons.push(format!("watch of {watch} failing since {since}: {error}"));
        }
    }
    if reasons.is_empty() {
        Report {
            ok: true,
            text: "ok".to_owned(),
        }
    } else {
        Report {
            ok: false,
            text: reasons.join("\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn healthz_says_what_is_wrong() {
        let h = Health::default();
        assert_eq!(
            h.report(at(0)),
            Report {
                ok: false,
                text: "starting".into()
            }
        );
        h.set_phase(Phase::Standby);
        assert!(h.report(at(0)).ok, "a follower is doing what it should");
        h.set_phase(Phase::Running);
        let r = h.report(at(0));
        assert!(!r.ok && r.text.contains("first list"), "{r:?}");
        let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = ready.clone();
        h.set_caches_ready(move || flag.load(std::sync::atomic::Ordering::Relaxed));
        assert_eq!(
            h.report(at(0)),
            Report {
                ok: true,
                text: "ok".into()
            }
        );
        // A short failure is the watcher's backoff at work; a long one is reported.
        h.watch_failed("nodes", &"403 Forbidden", at(0));
        h.watch_failed("nodes", &"connection refused", at(30));
        assert!(h.report(at(WATCH_FAILURE_GRACE_SECONDS)).ok);
        let r = h.report(at(WATCH_FAILURE_GRACE_SECONDS + 1));
        assert!(!r.ok, "{r:?}");
        assert!(
            r.text.contains("watch of nodes failing since")
                && r.text.contains("connection refused"),
            "{}",
            r.text
        );
        // Recovery clears it, and a new failure starts a new run.
        h.watch_ok("nodes");
        assert!(h.report(at(500)).ok);
        h.watch_failed("nodes", &"timeout", at(500));
        assert!(h.report(at(520)).ok);
        h.set_phase(Phase::Stopped);
        let r = h.report(at(520));
        assert!(!r.ok && r.text.contains("controllers stopped"), "{r:?}");
        ready.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let h = Health::default();
        h.set_phase(Phase::Running);
        h.set_caches_ready(|| true);
        h.watch_failed("pods", &"é".repeat(400), at(0));
        let r = h.report(at(WATCH_FAILURE_GRACE_SECONDS + 1));
        assert!(!r.ok);
        assert!(r.text.len() < 400, "{}", r.text.len());
    }
}
