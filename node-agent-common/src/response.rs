//! The kernel deny hook's maps (`vigil-response` object): what user space writes and reads.
//!
//! `DENY_V4` and `DENY_V6` are LPM tries keyed by address (network byte order) with a prefix
//! length; the value is the bit mask of the threat lists that hold the network. `DENY_MODE`
//! (one `u32`) says whether a hit is refused (`MODE_ENFORCE`) or only counted (`MODE_DRY_RUN`).
//! `DENY_STATS` (per-CPU `u64`s) counts, at the slots below, what the hook did.

/// A hit is counted, the connect goes ahead.
pub const MODE_DRY_RUN: u32 = 0;
/// A hit is refused: `connect(2)` returns `EPERM`.
pub const MODE_ENFORCE: u32 = 1;

/// IPv4 networks the deny map holds at most.
pub const DENY_V4_ENTRIES: u32 = 65_536;
/// IPv6 networks the deny map holds at most.
pub const DENY_V6_ENTRIES: u32 = 16_384;

/// `DENY_STATS` slot: connects the hook looked at.
pub const STAT_CHECKED: u32 = 0;
/// `DENY_STATS` slot: connects refused (enforce).
pub const STAT_DENIED: u32 = 1;
/// `DENY_STATS` slot: connects that would have been refused (dry run).
pub const STAT_WOULD_DENY: u32 = 2;
/// Slots in `DENY_STATS`.
pub const STAT_SLOTS: u32 = 3;
