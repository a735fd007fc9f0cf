//! Draining the ring buffers: on a wake-up from the kernel, or on a short timer for the records
//! that were submitted without one (the programs batch wake-ups, see `wakeup_bytes`).
//!
//! The programs write to the ring of their CPU's group (`node_agent_common::maps`). One ring is
//! read in place, in its own order. Several are merged by the records' boot-clock stamps
//! (`EventHeader::ktime_ns`): a process's fork, exec and exit can land in different rings, and
//! the pipeline must see them in the order they happened. A record stamped late in one drain
//! may still be joined by an earlier one that another CPU reserved but had not committed when
//! its ring was read, so the merge holds back what is younger than the drain's start less
//! [`COMMIT_MARGIN`] until the next drain ([`Merge`]).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use node_agent_common::EventHeader;
use serde::Serialize;
use tokio::io::{Interest, unix::AsyncFd};

/// Records handed out by one drain at most. Past it the caller's loop runs its other work
/// (flushes, the heartbeat, deliveries, signals) before it reads on: a producer that keeps the
/// ring buffers full cannot hold the loop in the reader. 16,384 records take a few milliseconds.
/// With several rings each one is read for its share of it.
pub const DRAIN_BUDGET: usize = 16_384;

/// The longest a program is taken to need from reserving a record to submitting it. A program
/// fills its record within microseconds with migration disabled, but a program on a syscall
/// tracepoint can be preempted (recent kernels run them faultable); a record committed later
/// than this after it was stamped may reach the pipeline after a younger record of another ring,
/// and is counted ([`MergeStats::late`]).
pub const COMMIT_MARGIN: Duration = Duration::from_millis(2);

/// Most bytes of records the merge holds back. Held records are normally the last
/// [`COMMIT_MARGIN`] of the storm; more accumulate only when one ring is read behind the others
/// (its share of the budget ran out). Past this the oldest go out anyway, counted
/// ([`MergeStats::forced`]).
pub const HOLD_BYTES: usize = 4 << 20;

/// Most bytes of records one drain of several rings copies (each ring its share): a storm of
/// exec records (a few KiB each) would otherwise have a drain of [`DRAIN_BUDGET`] records copy
/// tens of MiB at once. A ring stopped by its share counts as read behind, so what it still
/// holds keeps the others' younger records back ([`Merge`]).
pub const DRAIN_BYTES: usize = 2 << 20;

/// Reads records from the ring buffers.
pub struct Reader {
    rings: AsyncFd<Rings>,
    poll: Duration,
    merge: Merge,
}

/// The rings and one epoll instance over them all: one readiness to wait on, whichever ring
/// the kernel woke.
struct Rings {
    epoll: OwnedFd,
    rings: Vec<RingBuf<MapData>>,
}

impl AsRawFd for Rings {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }
}

impl Reader {
    /// Wraps the ring buffers (at least one); `poll` bounds how long a record can wait without
    /// a wake-up.
    pub fn new(rings: Vec<RingBuf<MapData>>, poll: Duration) -> io::Result<Self> {
        if rings.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no ring buffer to read",
            ));
        }
        let epoll = epoll_over(&rings)?;
        // SAFETY: `Rings` owns the epoll fd and keeps it open, unchanged, for as long as the
        // AsyncFd owns the `Rings`.
        let rings =
            unsafe { AsyncFd::register_with_interest(Rings { epoll, rings }, Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?;
        Ok(Self {
            rings,
            poll,
            merge: Merge::new(COMMIT_MARGIN.as_nanos() as u64, HOLD_BYTES, DRAIN_BYTES),
        })
    }

    /// How many ring buffers are read.
    pub fn rings(&self) -> usize {
        self.rings.get_ref().rings.len()
    }

    /// What merging the rings took: records held back, and the few out of order.
    pub fn merge_stats(&self) -> MergeStats {
        self.merge.stats
    }

    /// Waits for a wake-up or the poll timer, then hands the waiting records to `each`
    /// (valid only during the call), at most [`DRAIN_BUDGET`] of them. Returns how many there
    /// were. When the budget ran out the rings stay marked readable, so the next call returns
    /// at once with the rest.
    pub async fn drain<F: FnMut(&[u8])>(&mut self, mut each: F) -> io::Result<usize> {
        let merge = &mut self.merge;
        tokio::select! {
            guard = self.rings.readable_mut() => {
                let mut guard = guard?;
                let (n, more) = drain_now(guard.get_inner_mut(), merge, &mut each);
                if !more {
                    guard.clear_ready();
                }
                Ok(n)
            }
            () = tokio::time::sleep(next_drain_in(merge, self.poll, crate::container::boot_ns())) => {
                Ok(drain_now(self.rings.get_mut(), merge, &mut each).0)
            }
        }
    }

    /// The last drain, without waiting: hands the waiting records to `each`, at most
    /// [`DRAIN_BUDGET`], and with them what the merge held back for a later drain (as far as
    /// the rings were read: a ring read only for its share still bounds what goes out).
    pub fn drain_ready<F: FnMut(&[u8])>(&mut self, mut each: F) -> usize {
        drain_at(self.rings.get_mut(), &mut self.merge, u64::MAX, &mut each).0
    }
}

/// How long the reader waits without a wake-up: the poll, or less when the merge holds
/// records back that the clock will release sooner (their stamp plus [`COMMIT_MARGIN`]). A
/// record seldom comes with a wake-up (they are batched), so without this a record held by the
/// margin waited a whole poll more: 10 ms for a lone exec on a quiet machine.
fn next_drain_in(merge: &Merge, poll: Duration, now: u64) -> Duration {
    match merge.releasable_at() {
        Some(at) => Duration::from_nanos(at.saturating_sub(now))
            .max(MIN_WAIT)
            .min(poll),
        None => poll,
    }
}

/// The shortest wait for held records: a drain costs a system call per ring, so a record
/// released a little late is cheaper than a reader spinning on the clock.
const MIN_WAIT: Duration = Duration::from_micros(200);

fn epoll_over(rings: &[RingBuf<MapData>]) -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the result is checked.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
    for (i, ring) in rings.iter().enumerate() {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: both fds are open; the event is ours.
        if unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                ring.as_raw_fd(),
                &mut event,
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(epoll)
}

/// How many records were handed out, and whether work is left (a ring's share of the budget
/// ran out, or the merge has more to hand out than the budget allowed).
fn drain_now<F: FnMut(&[u8])>(rings: &mut Rings, merge: &mut Merge, each: &mut F) -> (usize, bool) {
    drain_at(rings, merge, crate::container::boot_ns(), each)
}

/// A drain as if it started at `now` (boot clock, ns).
fn drain_at<F: FnMut(&[u8])>(
    rings: &mut Rings,
    merge: &mut Merge,
    now: u64,
    each: &mut F,
) -> (usize, bool) {
    let rings = &mut rings.rings;
    if let [ring] = rings.as_mut_slice() {
        // One ring: its order is the order, read in place.
        return budgeted(DRAIN_BUDGET, || match ring.next() {
            Some(item) => {
                each(&item);
                true
            }
            None => false,
        });
    }
    merge.drain(
        rings.len(),
        now,
        DRAIN_BUDGET,
        |i, take| match rings[i].next() {
            Some(item) => {
                take(&item);
                true
            }
            None => false,
        },
        each,
    )
}

/// Calls `one` (which handles one record, false when there was none) up to `budget` times:
/// how many it handled, and whether it stopped for the budget.
fn budgeted(budget: usize, mut one: impl FnMut() -> bool) -> (usize, bool) {
    let mut n = 0;
    while n < budget {
        if !one() {
            return (n, false);
        }
        n += 1;
    }
    (n, true)
}

/// What merging several rings took, since the reader started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeStats {
    /// Records held back for a later drain, because a record of another ring reserved before
    /// them might not have been committed yet (once per drain they waited through).
    pub held: u64,
    /// Records read after a younger record of another ring had gone out: committed more than
    /// [`COMMIT_MARGIN`] after they were stamped. They go out at once, out of order.
    pub late: u64,
    /// Records handed out before all rings had caught up with them, because the records held
    /// back reached [`HOLD_BYTES`] while one ring was read behind the others.
    pub forced: u64,
}

/// Where a held record's bytes are in the arena.
#[derive(Clone, Copy, Debug)]
struct Held {
    stamp: u64,
    start: usize,
    len: usize,
}

/// Merges the records of several rings by their stamps. Pure: the rings are a closure, the
/// clock a number.
///
/// The rule: a record stamped at `t` is committed by `t + margin` at the latest, and no
/// record is stamped before it was reserved. So when a drain starts at `now`, everything
/// stamped up to `now - margin` is committed, and a ring read until it had nothing left has
/// given all of it. A ring whose share of the budget ran out first still holds records, all
/// reserved after the newest one read from it (stamped `newest`), so stamped after
/// `newest - margin`. Records up to the smaller of those bounds (the cutoff) go out in stamp
/// order; the rest wait. Every record read later is stamped after the cutoff, so nothing that
/// went out is overtaken.
pub struct Merge {
    margin: u64,
    hold_bytes: usize,
    drain_bytes: usize,
    arena: Vec<u8>,
    held: Vec<Held>,
    /// The highest cutoff so far: a record read stamped at or below it is late.
    released_to: u64,
    stats: MergeStats,
}

impl Merge {
    /// A merge assuming a record is committed within `margin` ns of its stamp, holding at most
    /// `hold_bytes` of records and copying about `drain_bytes` at most per drain (a ring stops
    /// after the record that reaches its share).
    pub fn new(margin: u64, hold_bytes: usize, drain_bytes: usize) -> Self {
        Self {
            margin,
            hold_bytes,
            drain_bytes,
            arena: Vec::new(),
            held: Vec::new(),
            released_to: 0,
            stats: MergeStats::default(),
        }
    }

    /// Counters since the start.
    pub fn stats(&self) -> MergeStats {
        self.stats
    }

    /// Records waiting for a later drain.
    pub fn waiting(&self) -> usize {
        self.held.len()
    }

    /// When (boot clock, ns) the oldest record held back may go out, if one is held: every
    /// record reserved before it is committed by then.
    pub fn releasable_at(&self) -> Option<u64> {
        self.held
            .iter()
            .map(|h| h.stamp)
            .min()
            .map(|stamp| stamp.saturating_add(self.margin))
    }

    /// One drain of `rings` rings started at `now` (boot clock, ns): reads each ring for its
    /// share of `budget` (`read(ring, take)` passes one record to `take`, false when the ring
    /// had none), then hands what all rings have caught up with to `each`, oldest first, at
    /// most `budget`. Returns how many went out and whether work is left.
    pub fn drain(
        &mut self,
        rings: usize,
        now: u64,
        budget: usize,
        mut read: impl FnMut(usize, &mut dyn FnMut(&[u8])) -> bool,
        each: &mut impl FnMut(&[u8]),
    ) -> (usize, bool) {
        let share = (budget / rings.max(1)).max(1);
        let byte_share = (self.drain_bytes / rings.max(1)).max(1);
        let mut cutoff = now.saturating_sub(self.margin);
        let mut behind = false;
        for ring in 0..rings {
            let mut newest = 0u64;
            let mut copied = 0usize;
            let (_, cut_short) = budgeted(share, || {
                copied < byte_share
                    && read(ring, &mut |bytes| {
                        let stamp = stamp_of(bytes);
                        newest = newest.max(stamp);
                        copied += bytes.len();
                        self.hold(stamp, bytes);
                    })
            });
            let cut_short = cut_short || copied >= byte_share;
            if cut_short {
                behind = true;
                cutoff = cutoff.min(newest.saturating_sub(self.margin));
            }
        }
        let (n, more) = self.release(cutoff, budget, each);
        (n, more || behind)
    }

    fn hold(&mut self, stamp: u64, bytes: &[u8]) {
        if stamp <= self.released_to {
            self.stats.late += 1;
        }
        self.held.push(Held {
            stamp,
            start: self.arena.len(),
            len: bytes.len(),
        });
        self.arena.extend_from_slice(bytes);
    }

    /// Hands out the held records stamped up to `cutoff`, oldest first, at most `budget`, and
    /// the oldest beyond it while more than the hold limit is held.
    fn release(
        &mut self,
        cutoff: u64,
        budget: usize,
        each: &mut impl FnMut(&[u8]),
    ) -> (usize, bool) {
        self.released_to = self.released_to.max(cutoff);
        // Oldest first. A stable sort: what each ring gave is nearly in order already, so this
        // merges a few runs, and records with the same stamp keep the order they were read in.
        self.held.sort_by_key(|h| h.stamp);
        let mut held_bytes: usize = self.held.iter().map(|h| h.len).sum();
        let mut n = 0;
        for h in &self.held {
            if n == budget {
                break;
            }
            if h.stamp > self.released_to {
                if held_bytes <= self.hold_bytes {
                    break;
                }
                self.stats.forced += 1;
                self.released_to = h.stamp;
            }
            held_bytes -= h.len;
            each(&self.arena[h.start..h.start + h.len]);
            n += 1;
        }
        self.held.drain(..n);
        let more = self
            .held
            .first()
            .is_some_and(|h| h.stamp <= self.released_to);
        self.stats.held += self.held.len() as u64;
        self.compact();
        (n, more)
    }

    /// Moves the records still held to the front of the arena.
    fn compact(&mut self) {
        if self.held.is_empty() {
            self.arena.clear();
            // A burst of held records leaves no large arena behind.
            if self.arena.capacity() > 2 * self.hold_bytes {
                self.arena.shrink_to(self.hold_bytes);
            }
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len().min(2 * self.hold_bytes));
        for h in &mut self.held {
            let start = arena.len();
            arena.extend_from_slice(&self.arena[h.start..h.start + h.len]);
            h.start = start;
        }
        self.arena = arena;
    }
}

/// A record's boot-clock stamp; 0 for a record too short to have one (the pipeline counts it
/// as malformed).
fn stamp_of(bytes: &[u8]) -> u64 {
    const AT: usize = std::mem::offset_of!(EventHeader, ktime_ns);
    bytes
        .get(AT..AT + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    #[test]
    fn a_full_ring_is_read_in_budgeted_slices() {
        // A producer that stays ahead: 50,000 records waiting.
        let mut waiting = 50_000usize;
        let mut take = || {
            budgeted(DRAIN_BUDGET, || {
                if waiting == 0 {
                    return false;
                }
                waiting -= 1;
                true
            })
        };
        assert_eq!(take(), (DRAIN_BUDGET, true));
        assert_eq!(take(), (DRAIN_BUDGET, true));
        assert_eq!(take(), (DRAIN_BUDGET, true));
        assert_eq!(take(), (50_000 - 3 * DRAIN_BUDGET, false));
        assert_eq!(take(), (0, false));
    }

    /// A record: a header with `stamp`, then `tag` (to tell records apart).
    fn record(stamp: u64, tag: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; 20];
        bytes[8..16].copy_from_slice(&stamp.to_ne_bytes());
        bytes[16..20].copy_from_slice(&tag.to_ne_bytes());
        bytes
    }

    fn tag_of(bytes: &[u8]) -> (u64, u32) {
        (
            stamp_of(bytes),
            u32::from_ne_bytes(bytes[16..20].try_into().unwrap()),
        )
    }

    /// Rings as queues of committed records.
    struct Rings(Vec<VecDeque<Vec<u8>>>);

    impl Rings {
        fn new(n: usize) -> Self {
            Self(vec![VecDeque::new(); n])
        }

        fn commit(&mut self, ring: usize, stamp: u64, tag: u32) {
            self.0[ring].push_back(record(stamp, tag));
        }

        /// One drain at `now`: the tags handed out, and whether work is left.
        fn drain(&mut self, merge: &mut Merge, now: u64, budget: usize) -> (Vec<u32>, bool) {
            let mut out = Vec::new();
            let rings = self.0.len();
            let (n, more) = merge.drain(
                rings,
                now,
                budget,
                |i, take| match self.0[i].pop_front() {
                    Some(r) => {
                        take(&r);
                        true
                    }
                    None => false,
                },
                &mut |bytes| out.push(tag_of(bytes).1),
            );
            assert_eq!(n, out.len());
            (out, more)
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn records_of_several_rings_go_out_in_stamp_order() {
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        let mut rings = Rings::new(3);
        // A fork on ring 1, the child's exec on ring 0, its exit on ring 2, and other
        // processes' records around them; each ring in its own order.
        rings.commit(0, 100 * MS + 5, 2); // exec
        rings.commit(0, 100 * MS + 9, 5);
        rings.commit(1, 100 * MS + 1, 1); // fork
        rings.commit(1, 100 * MS + 6, 3);
        rings.commit(2, 100 * MS + 7, 4); // exit
        rings.commit(2, 100 * MS + 10, 6);
        let (out, more) = rings.drain(&mut merge, 200 * MS, DRAIN_BUDGET);
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        assert!(!more);
        assert_eq!(merge.stats(), MergeStats::default());
    }

    #[test]
    fn records_younger_than_the_margin_wait_for_the_next_drain() {
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        rings.commit(0, 10 * MS, 1);
        // Stamped within the margin of the drain's start: another CPU may still be filling a
        // record stamped before it.
        rings.commit(0, 10 * MS + MS / 2, 3);
        let (out, _) = rings.drain(&mut merge, 11 * MS, DRAIN_BUDGET);
        assert_eq!(out, [1]);
        assert_eq!(merge.waiting(), 1);
        // That record is committed after the drain, on the other ring.
        rings.commit(1, 10 * MS + MS / 4, 2);
        let (out, more) = rings.drain(&mut merge, 12 * MS, DRAIN_BUDGET);
        assert_eq!(out, [2, 3]);
        assert!(!more);
        assert_eq!(merge.waiting(), 0);
        assert_eq!(merge.stats().late, 0);
        assert_eq!(merge.stats().held, 1);
    }

    #[test]
    fn a_held_record_is_read_again_when_the_margin_has_passed_not_a_poll_later() {
        let poll = Duration::from_millis(10);
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        assert_eq!(merge.releasable_at(), None);
        assert_eq!(next_drain_in(&merge, poll, 10 * MS), poll);
        let mut rings = Rings::new(2);
        // A lone record, read a quarter of the margin after its stamp: held.
        rings.commit(0, 10 * MS, 1);
        rings.commit(1, 10 * MS + MS / 2, 2);
        assert!(
            rings
                .drain(&mut merge, 10 * MS + MS / 4 * 3, DRAIN_BUDGET)
                .0
                .is_empty()
        );
        assert_eq!(merge.releasable_at(), Some(11 * MS));
        // The next drain is due when the oldest may go out, not a poll later.
        assert_eq!(
            next_drain_in(&merge, poll, 10 * MS + MS / 4 * 3),
            Duration::from_micros(250)
        );
        // Never a spin, never past the poll.
        assert_eq!(next_drain_in(&merge, poll, 11 * MS), MIN_WAIT);
        assert_eq!(next_drain_in(&merge, poll, 0), poll);
        let (out, _) = rings.drain(&mut merge, 11 * MS, DRAIN_BUDGET);
        assert_eq!(out, [1]);
        assert_eq!(merge.releasable_at(), Some(11 * MS + MS / 2));
        let (out, _) = rings.drain(&mut merge, 12 * MS, DRAIN_BUDGET);
        assert_eq!(out, [2]);
        assert_eq!(merge.releasable_at(), None);
    }

    #[test]
    fn records_with_the_same_stamp_keep_the_order_they_were_read_in() {
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        for tag in 0..5 {
            rings.commit(0, 10 * MS, tag);
        }
        rings.commit(1, 10 * MS, 5);
        rings.commit(1, 9 * MS, 6);
        let (out, _) = rings.drain(&mut merge, 20 * MS, DRAIN_BUDGET);
        assert_eq!(out, [6, 0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_last_drain_hands_out_what_was_held() {
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        rings.commit(0, 10 * MS, 1);
        rings.commit(1, 10 * MS + 1, 2);
        assert!(
            rings
                .drain(&mut merge, 10 * MS + 2, DRAIN_BUDGET)
                .0
                .is_empty()
        );
        assert_eq!(merge.waiting(), 2);
        // The agent's drain at exit (`Reader::drain_ready`).
        assert_eq!(rings.drain(&mut merge, u64::MAX, DRAIN_BUDGET).0, [1, 2]);
        assert_eq!(merge.waiting(), 0);
    }

    #[test]
    fn a_record_committed_after_its_margin_goes_out_late_and_is_counted() {
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        rings.commit(0, 10 * MS, 2);
        assert_eq!(rings.drain(&mut merge, 20 * MS, DRAIN_BUDGET).0, [2]);
        // Stamped before what went out, committed 10 ms later: cannot be put back in order.
        rings.commit(1, 9 * MS, 1);
        assert_eq!(rings.drain(&mut merge, 21 * MS, DRAIN_BUDGET).0, [1]);
        assert_eq!(merge.stats().late, 1);
    }

    #[test]
    fn a_ring_read_behind_the_others_holds_them_back() {
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        // Ring 0 has a backlog of old records, ring 1 a few recent ones.
        for i in 0..10 {
            rings.commit(0, (10 + i) * MS, i as u32);
        }
        rings.commit(1, 30 * MS, 100);
        rings.commit(1, 15 * MS + 1, 50);
        // A budget of 8: ring 0 is read for 4 of its 10 and is behind.
        let (out, more) = rings.drain(&mut merge, 100 * MS, 8);
        // Its newest read is stamped 13 ms: only what is older than 12 ms can go out.
        assert_eq!(out, [0, 1, 2]);
        assert!(more);
        let (out, more) = rings.drain(&mut merge, 101 * MS, 8);
        // Read up to 17 ms: up to 16 ms goes out, the ring-1 record at 15 ms in its place.
        assert_eq!(out, [3, 4, 5, 50, 6]);
        assert!(more);
        let (out, more) = rings.drain(&mut merge, 102 * MS, 8);
        assert_eq!(out, [7, 8, 9, 100]);
        assert!(!more);
        assert_eq!(merge.stats().late, 0);
        assert_eq!(merge.stats().forced, 0);
    }

    #[test]
    fn a_drain_hands_out_at_most_the_budget() {
        let mut merge = Merge::new(MS, HOLD_BYTES, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        for i in 0..10u32 {
            rings.commit((i % 2) as usize, (10 + u64::from(i)) * MS, i);
        }
        let mut all = Vec::new();
        let mut drains = 0;
        loop {
            let (out, more) = rings.drain(&mut merge, 100 * MS, 4);
            assert!(out.len() <= 4, "{out:?}");
            all.extend(out);
            drains += 1;
            if !more {
                break;
            }
        }
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(drains >= 3, "{drains} drains");
    }

    #[test]
    fn a_drain_copies_about_its_byte_share_and_the_rest_follow_in_order() {
        // Records are 20 bytes: a share of 30 bytes per ring stops each ring after two.
        let mut merge = Merge::new(MS, HOLD_BYTES, 60);
        let mut rings = Rings::new(2);
        for i in 0..12u32 {
            rings.commit((i % 2) as usize, (10 + u64::from(i)) * MS, i);
        }
        let mut all = Vec::new();
        let mut drains = 0;
        loop {
            let before = all.len();
            let (out, more) = rings.drain(&mut merge, 100 * MS, 1_000);
            all.extend(out);
            assert!(
                all.len() - before <= 4,
                "two records per ring at most: {all:?}"
            );
            drains += 1;
            if !more {
                break;
            }
            assert!(drains < 20, "{all:?}");
        }
        assert_eq!(all, (0..12).collect::<Vec<_>>());
        assert!(drains >= 3, "{drains} drains");
        assert_eq!(merge.stats().late, 0);
        assert_eq!(merge.stats().forced, 0);
    }

    #[test]
    fn held_records_past_the_limit_go_out_oldest_first_and_are_counted() {
        // Room for two 20-byte records.
        let mut merge = Merge::new(MS, 40, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        for i in 0..3u32 {
            rings.commit(1, (50 + u64::from(i)) * MS, 10 + i);
        }
        // Ring 0 is behind (a budget of 2: one record from each ring per drain) and keeps the
        // cutoff low.
        rings.commit(0, 10 * MS, 0);
        rings.commit(0, 11 * MS, 1);
        let (out, _) = rings.drain(&mut merge, 100 * MS, 2);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(merge.stats().forced, 0);
        // Four held (80 bytes): the one below the cutoff goes out, and the next oldest, forced.
        let (out, _) = rings.drain(&mut merge, 100 * MS, 2);
        assert_eq!(out, [0, 1]);
        assert_eq!(merge.stats().forced, 1);
        let (out, more) = rings.drain(&mut merge, 100 * MS, 2);
        assert_eq!(out, [10, 11]);
        assert!(more);
        let (out, more) = rings.drain(&mut merge, 100 * MS, 2);
        assert_eq!(out, [12]);
        assert!(!more);
        assert_eq!(merge.stats().late, 0);

        // A ring that stays behind for good: the limit keeps what is held bounded, every
        // record still goes out once, and what went out of order is counted.
        let mut merge = Merge::new(MS, 40, DRAIN_BYTES);
        let mut rings = Rings::new(2);
        for i in 0..6u32 {
            rings.commit(0, (10 + u64::from(i)) * MS, i);
            rings.commit(1, (50 + u64::from(i)) * MS, 10 + i);
        }
        let mut out = Vec::new();
        for _ in 0..8 {
            out.extend(rings.drain(&mut merge, 20 * MS, 2).0);
            assert!(merge.waiting() <= 3, "{} held", merge.waiting());
        }
        out.extend(rings.drain(&mut merge, 100 * MS, 100).0);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]);
        assert!(merge.stats().forced > 0);
        assert!(merge.stats().late > 0);
    }

    #[test]
    fn a_short_record_has_no_stamp() {
        assert_eq!(stamp_of(&[1, 2, 3]), 0);
        assert_eq!(stamp_of(&record(42, 7)), 42);
    }
}
