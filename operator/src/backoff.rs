//! When to retry an object whose reconcile failed, and which failures retrying cannot fix.
//!
//! Pure: the time comes in as an argument, so the tables below need no clock. The controllers
//! keep one [`Backoff`] in [`crate::Context`]: `Context::settle` records each outcome, the error
//! policy requeues after the recorded delay, and `Context::backoff_wait` makes watch-triggered
//! reconciles wait it out too. kube's scheduler runs the earlier of a requeue and a trigger, so
//! the error policy alone would not slow a controller that its watches keep waking.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::jiff::Timestamp;

/// Delay after the first transient failure of an object.
pub const BASE_DELAY: Duration = Duration::from_secs(2);
/// Longest delay, and the delay after a failure retrying cannot fix: a change of the object
/// triggers a reconcile at once anyway, and a fix elsewhere (RBAC, the CRD) is seen within this.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// Objects whose failures are remembered at most; see [`Backoff::failed`] for what goes first.
pub const CAPACITY: usize = 1024;

/// Whether an API answer with HTTP status `code` is a failure that retrying the same request
/// cannot fix (400 Bad Request, 403 Forbidden, 413 Too Large, 422 Invalid, ...), as opposed to
/// one that may pass later: 401 (credentials are refreshed), 404 (the namespace or the CRD may
/// appear), 408, 409 Conflict, 410 Gone, 425, 429 Too Many Requests, and every 5xx.
pub fn is_permanent_status(code: u16) -> bool {
    match code {
        401 | 404 | 408 | 409 | 410 | 425 | 429 => false,
        400..=499 => true,
        _ => false,
    }
}

/// What [`Backoff::failed`] decided about one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Consecutive failures of the object at this generation, this one included.
    pub failures: u32,
    /// When to try again.
    pub retry_in: Duration,
    /// A permanent failure not yet reported for this object, generation and reason: log it,
    /// record the Event and the condition now, and only now.
    pub report: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    generation: Option<i64>,
    delay: Duration,
    retry_at: Timestamp,
    /// Reason of the permanent failure last reported at this generation.
    reported: Option<String>,
}

/// Consecutive failures per object. The delay doubles from `base` per failure up to `max`, a
/// permanent failure waits `max` at once, and a success forgets the object. Bounded: at most
/// `capacity` objects are remembered.
#[derive(Debug)]
pub struct Backoff<K> {
    base: Duration,
    max: Duration,
    capacity: usize,
    entries: BTreeMap<K, Entry>,
}

impl<K: Ord + Clone> Default for Backoff<K> {
    fn default() -> Self {
        Self::new(BASE_DELAY, MAX_DELAY, CAPACITY)
    }
}

fn delay(base: Duration, max: Duration, failures: u32, permanent: bool) -> Duration {
    if permanent {
        return max;
    }
    let factor = 1_u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

impl<K: Ord + Clone> Backoff<K> {
    /// A table with these delays, remembering at most `capacity` (at least one) objects.
    pub fn new(base: Duration, max: Duration, capacity: usize) -> Self {
        Self {
            base,
            max: max.max(base),
            capacity: capacity.max(1),
            entries: BTreeMap::new(),
        }
    }

    /// Records a failure of `key` at `generation` and `now`. `permanent` is the reason of a
    /// failure retrying cannot fix, `None` for a transient one. A new generation starts the
    /// count, and the reporting, afresh.
    ///
    /// A new object in a full table first drops the entries whose retry is overdue by more than
    /// `max` (their object was deleted, or succeeded unseen), then, if the table is still full,
    /// the entry due soonest: that object merely starts again from `base`.
    pub fn failed(
        &mut self,
        key: K,
        generation: Option<i64>,
        permanent: Option<&str>,
        now: Timestamp,
    ) -> Failure {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let (base, max) = (self.base, self.max);
        let entry = self.entries.entry(key).or_insert(Entry {
            failures: 0,
            generation,
            delay: Duration::ZERO,
            retry_at: now,
            reported: None,
        });
        if entry.generation != generation {
            entry.failures = 0;
            entry.generation = generation;
            entry.reported = None;
        }
        entry.failures = entry.failures.saturating_add(1);
        let report = permanent.is_some_and(|reason| entry.reported.as_deref() != Some(reason));
        if let Some(reason) = permanent.filter(|_| report) {
            entry.reported = Some(reason.to_owned());
        }
        entry.delay = delay(base, max, entry.failures, permanent.is_some());
        entry.retry_at = now.checked_add(entry.delay).unwrap_or(Timestamp::MAX);
        Failure {
            failures: entry.failures,
            retry_in: entry.delay,
            report,
        }
    }

    fn make_room(&mut self, now: Timestamp) {
        let max = self.max;
        self.entries.retain(|_, e| {
            e.retry_at
                .checked_add(max)
                .map_or(true, |stale_at| now < stale_at)
        });
        if self.entries.len() >= self.capacity {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.retry_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = soonest {
                self.entries.remove(&k);
            }
        }
    }

    /// `key` reconciled: forget its failures (a later failure starts from `base` again).
    pub fn succeeded(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// How much longer `key` at `generation` must wait before its next attempt, `None` when it
    /// may go now: it has no failure on record, the wait is over, or its generation changed
    /// (the user edited it, which deserves a prompt look). Never more than `max`, so a clock
    /// stepping back cannot stall an object.
    pub fn wait(&self, key: &K, generation: Option<i64>, now: Timestamp) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if entry.generation != generation {
            return None;
        }
        let left = Duration::try_from(now.duration_until(entry.retry_at)).ok()?;
        (!left.is_zero()).then(|| left.min(self.max))
    }

    /// The delay recorded by the last [`Backoff::failed`] of `key`.
    pub fn retry_in(&self, key: &K) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }

    /// Objects remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no object is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn table() -> Backoff<&'static str> {
        Backoff::new(2 * S, 300 * S, 4)
    }

    #[test]
    fn permanent_status_codes() {
        // (code, permanent)
        let table = [
            (400, true),
            (401, false),
            (403, true),
            (404, false),
            (405, true),
            (408, false),
            (409, false),
            (410, false),
            (413, true),
            (415, true),
            (422, true),
            (429, false),
            (500, false),
            (503, false),
            (504, false),
            (0, false),
        ];
        for (code, permanent) in table {
            assert_eq!(is_permanent_status(code), permanent, "{code}");
        }
    }

    #[test]
    fn transient_failures_double_up_to_the_cap() {
        let mut b = table();
        let delays: Vec<u64> = (0..10)
            .map(|i| b.failed("p", Some(1), None, at(i)).retry_in.as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        // No overflow however long it fails.
        for i in 0..100 {
            b.failed("p", Some(1), None, at(i));
        }
        assert_eq!(b.retry_in(&"p"), Some(300 * S));
    }

    #[test]
    fn objects_back_off_independently() {
        let mut b = table();
        b.failed("a", Some(1), None, at(0));
        b.failed("a", Some(1), None, at(2));
        assert_eq!(b.failed("b", Some(1), None, at(3)).retry_in, 2 * S);
        assert_eq!(b.failed("a", Some(1), None, at(6)).retry_in, 8 * S);
    }

    #[test]
    fn success_resets() {
        let mut b = table();
        b.failed("p", Some(1), None, at(0));
        b.failed("p", Some(1), None, at(2));
        b.succeeded(&"p");
        assert!(b.is_empty());
        assert_eq!(b.wait(&"p", Some(1), at(3)), None);
        assert_eq!(b.failed("p", Some(1), None, at(3)).retry_in, 2 * S);
    }

    #[test]
    fn permanent_failures_wait_the_cap_and_report_once_per_generation_and_reason() {
        let mut b = table();
        // (time, generation, permanent reason, failures, retry in, report)
        let steps = [
            (0, 1, Some("StatusWriteRejected/Invalid"), 1, 300, true),
            (300, 1, Some("StatusWriteRejected/Invalid"), 2, 300, false),
            (600, 1, None, 3, 8, false),
            (608, 1, Some("StatusWriteRejected/Invalid"), 4, 300, false),
            (908, 1, Some("ApplyRejected/Forbidden"), 5, 300, true),
            (1208, 1, Some("StatusWriteRejected/Invalid"), 6, 300, true),
            // The user edits the object: counted and reported afresh.
            (1210, 2, Some("StatusWriteRejected/Invalid"), 1, 300, true),
            (1510, 2, None, 2, 4, false),
        ];
        for (t, generation, reason, failures, retry_in, report) in steps {
            let f = b.failed("p", Some(generation), reason, at(t));
            assert_eq!(
                f,
                Failure {
                    failures,
                    retry_in: retry_in * S,
                    report
                },
                "at {t}"
            );
        }
        b.succeeded(&"p");
        assert!(
            b.failed("p", Some(2), Some("StatusWriteRejected/Invalid"), at(2000))
                .report,
            "a failure after a success is a new episode"
        );
    }

    #[test]
    fn wait_until_the_retry_unless_the_generation_changed() {
        let mut b = table();
        b.failed("p", Some(1), None, at(0));
        b.failed("p", Some(1), None, at(2)); // retry at 6
        // (time, generation, wait)
        let table = [
            (2, Some(1), Some(4 * S)),
            (5, Some(1), Some(S)),
            (6, Some(1), None),
            (7, Some(1), None),
            (3, Some(2), None),
            (3, None, None),
        ];
        for (t, generation, wait) in table {
            assert_eq!(
                b.wait(&"p", generation, at(t)),
                wait,
                "at {t} gen {generation:?}"
            );
        }
        assert_eq!(b.wait(&"other", Some(1), at(3)), None);
        // The wall clock steps back an hour: still no longer than the cap.
        assert_eq!(b.wait(&"p", Some(1), at(-3600)), Some(300 * S));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut b = table();
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            b.failed(k, Some(1), None, at(i as i64));
        }
        b.failed("a", Some(1), None, at(10)); // a: retry at 14, the others at 3..=5
        assert_eq!(b.len(), 4);
        // Full: the one due soonest ("b", at 3) makes room.
        b.failed("e", Some(1), None, at(20));
        assert_eq!(b.len(), 4);
        assert_eq!(b.retry_in(&"b"), None);
        assert_eq!(b.retry_in(&"a"), Some(4 * S));
        // Long after, every entry is stale (deleted objects): all go at the next new object.
        b.failed("f", Some(1), None, at(10_000));
        assert_eq!(b.len(), 1);
        // Many objects failing at once never grow it past the capacity.
        let mut big: Backoff<u32> = Backoff::new(2 * S, 300 * S, 16);
        for i in 0..1000 {
            big.failed(i, Some(1), None, at(0));
        }
        assert_eq!(big.len(), 16);
    }
}
