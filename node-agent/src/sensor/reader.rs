//! Draining the ring buffer: on a wake-up from the kernel, or on a short timer for the records
//! that were submitted without one (the programs batch wake-ups, see `wakeup_bytes`).

use std::{io, time::Duration};

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

/// Records handed out by one drain at most. Past it the caller's loop runs its other work
/// (flushes, the heartbeat, deliveries, signals) before it reads on: a producer that keeps the
/// ring buffer full cannot hold the loop in the reader. 16,384 records take a few milliseconds.
pub const DRAIN_BUDGET: usize = 16_384;

/// Reads records from the ring buffer in place.
pub struct Reader {
    ring: AsyncFd<RingBuf<MapData>>,
    poll: Duration,
}

impl Reader {
    /// Wraps the ring buffer; `poll` bounds how long a record can wait without a wake-up.
    pub fn new(ring: RingBuf<MapData>, poll: Duration) -> io::Result<Self> {
        // SAFETY: the RingBuf owns its map fd and keeps it open, unchanged, for as long as the
        // AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self { ring, poll })
    }

    /// Waits for a wake-up or the poll timer, then hands the waiting records to `each`
    /// (borrowed from the ring, valid only during the call), at most [`DRAIN_BUDGET`] of them.
    /// Returns how many there were. When the budget ran out the ring stays marked readable, so
    /// the next call returns at once with the rest.
    pub async fn drain<F: FnMut(&[u8])>(&mut self, mut each: F) -> io::Result<usize> {
        tokio::select! {
            guard = self.ring.readable_mut() => {
                let mut guard = guard?;
                let (n, more) = drain_now(guard.get_inner_mut(), &mut each);
                if !more {
                    guard.clear_ready();
                }
                Ok(n)
            }
            () = tokio::time::sleep(self.poll) => {
                Ok(drain_now(self.ring.get_mut(), &mut each).0)
            }
        }
    }

    /// Hands the waiting records to `each` without waiting, at most [`DRAIN_BUDGET`].
    pub fn drain_ready<F: FnMut(&[u8])>(&mut self, mut each: F) -> usize {
        drain_now(self.ring.get_mut(), &mut each).0
    }
}

/// How many records were handed out, and whether the budget ran out before the ring did.
fn drain_now<F: FnMut(&[u8])>(ring: &mut RingBuf<MapData>, each: &mut F) -> (usize, bool) {
    budgeted(DRAIN_BUDGET, || match ring.next() {
        Some(item) => {
            each(&item);
            true
        }
        None => false,
    })
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

#[cfg(test)]
mod tests {
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
}
