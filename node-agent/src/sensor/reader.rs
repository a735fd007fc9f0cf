//! Draining the ring buffer: on a wake-up from the kernel, or on a short timer for the records
//! that were submitted without one (the programs batch wake-ups, see `wakeup_bytes`).

use std::{io, time::Duration};

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

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

    /// Waits for a wake-up or the poll timer, then hands every waiting record to `each`
    /// (borrowed from the ring, valid only during the call). Returns how many there were.
    pub async fn drain<F: FnMut(&[u8])>(&mut self, mut each: F) -> io::Result<usize> {
        tokio::select! {
            guard = self.ring.readable_mut() => {
                let mut guard = guard?;
                let n = drain_now(guard.get_inner_mut(), &mut each);
                guard.clear_ready();
                Ok(n)
            }
            () = tokio::time::sleep(self.poll) => {
                Ok(drain_now(self.ring.get_mut(), &mut each))
            }
        }
    }

    /// Hands every waiting record to `each` without waiting.
    pub fn drain_ready<F: FnMut(&[u8])>(&mut self, mut each: F) -> usize {
        drain_now(self.ring.get_mut(), &mut each)
    }
}

fn drain_now<F: FnMut(&[u8])>(ring: &mut RingBuf<MapData>, each: &mut F) -> usize {
    let mut n = 0;
    while let Some(item) = ring.next() {
        each(&item);
        n += 1;
    }
    n
}
