//! Compact storage for a snapshot's indicators, sized exactly once built.
//!
//! - [`ExactSet`]: fixed-size keys (an IPv4 address as a `u32`, IPv6 as a `u128`, a SHA-256
//!   digest as `[u8; 32]`) in one array, grouped into buckets by a hash of the key and sorted
//!   within each: a lookup reads two neighbouring index slots and binary-searches the few keys
//!   of its bucket (none, for most misses), however the keys cluster.
//! - [`RangeSet`]: CIDR blocks flattened into sorted, disjoint intervals (nested and
//!   overlapping blocks split where the set of lists changes), indexed by their top bits: a
//!   lookup finds the interval that holds the address the same way.
//! - [`DomainSet`]: every name once in a byte arena (length, list class, name), found through
//!   a hash table of 4-byte arena offsets. A hash probe per label keeps the parent-domain
//!   walk as fast as before; the arena replaces a 16-byte entry per name.
//!
//! Which lists hold an indicator is a class id, one byte while there are at most 256 distinct
//! combinations of lists (the built-in lists have a few dozen), indexing a table of list masks,
//! instead of a `u64` per indicator.
//!
//! Builders collect compact items (a key and a list index) and sort or intern them in
//! [`ExactBuilder::build`], [`RangeBuilder::build`] and [`DomainBuilder::build`]; no map of
//! owned strings is ever made.

use std::{fmt, hash::BuildHasher};

use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashTable};

use crate::{indicator::MAX_DOMAIN_LEN, intel::BuildError};

/// A list index (below 64) as its bit in a list mask.
fn bit(list: u8) -> u64 {
    1u64 << (list & 63)
}

/// Heap bytes of a boxed slice.
fn slice_bytes<T>(s: &[T]) -> usize {
    std::mem::size_of_val(s)
}

/// Build-time table of the distinct list masks in use; class 0 is the empty mask.
#[derive(Debug)]
struct Interner {
    masks: Vec<u64>,
    index: HashMap<u64, u32, RandomState>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut index = HashMap::default();
        index.insert(0, 0);
        Self {
            masks: vec![0],
            index,
        }
    }
}

impl Interner {
    fn intern(&mut self, mask: u64) -> u32 {
        let masks = &mut self.masks;
        // A class per distinct mask, so never more classes than indicators: u32 is enough.
        let next = u32::try_from(masks.len()).unwrap_or(u32::MAX);
        *self.index.entry(mask).or_insert_with(|| {
            masks.push(mask);
            next
        })
    }

    fn mask(&self, class: u32) -> u64 {
        self.masks.get(class as usize).copied().unwrap_or(0)
    }

    fn len(&self) -> usize {
        self.masks.len()
    }
}

/// One class id per key, as narrow as the number of classes allows.
#[derive(Default)]
enum ClassIds {
    #[default]
    Empty,
    U8(Box<[u8]>),
    U16(Box<[u16]>),
    U32(Box<[u32]>),
}

/// The distinct list masks and, for each key, which of them it has.
#[derive(Default)]
struct Classes {
    masks: Box<[u64]>,
    ids: ClassIds,
}

impl Classes {
    fn new(interner: Interner, ids: Vec<u32>) -> Self {
        let ids = match interner.len() {
            0..=0x100 => ClassIds::U8(ids.into_iter().map(|c| c as u8).collect()),
            0x101..=0x1_0000 => ClassIds::U16(ids.into_iter().map(|c| c as u16).collect()),
            _ => ClassIds::U32(ids.into_boxed_slice()),
        };
        Self {
            masks: interner.masks.into_boxed_slice(),
            ids,
        }
    }

    fn mask(&self, i: usize) -> u64 {
        let class = match &self.ids {
            ClassIds::Empty => None,
            ClassIds::U8(ids) => ids.get(i).map(|&c| usize::from(c)),
            ClassIds::U16(ids) => ids.get(i).map(|&c| usize::from(c)),
            ClassIds::U32(ids) => ids.get(i).map(|&c| c as usize),
        };
        class.and_then(|c| self.masks.get(c)).copied().unwrap_or(0)
    }

    fn heap_bytes(&self) -> usize {
        slice_bytes(&self.masks)
            + match &self.ids {
                ClassIds::Empty => 0,
                ClassIds::U8(ids) => slice_bytes(ids),
                ClassIds::U16(ids) => slice_bytes(ids),
                ClassIds::U32(ids) => slice_bytes(ids),
            }
    }
}

/// A fixed-size key that sorts like the value it stands for.
pub(crate) trait Key: Copy + Ord {
    /// Log2 of the buckets per key in an exact set, about: wide keys, whose index slot is
    /// small beside them, get about two buckets per key, so that most misses find an empty
    /// bucket and compare no key at all.
    const BUCKETS_PER_KEY_LOG2: i32;

    /// The key's 64 most significant bits, in the same order as the keys.
    fn top64(&self) -> u64;

    /// 64 well-mixed bits of the key, to spread clustered keys (IPv6 addresses share their
    /// first bits) over the buckets of an exact set evenly.
    fn mix64(&self) -> u64;
}

/// Fibonacci hashing: the top bits of the product depend on every bit of `x`.
fn fibonacci(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Key for u32 {
    const BUCKETS_PER_KEY_LOG2: i32 = -1;

    fn top64(&self) -> u64 {
        u64::from(*self) << 32
    }

    fn mix64(&self) -> u64 {
        fibonacci(u64::from(*self))
    }
}

impl Key for u128 {
    const BUCKETS_PER_KEY_LOG2: i32 = 1;

    fn top64(&self) -> u64 {
        (*self >> 64) as u64
    }

    fn mix64(&self) -> u64 {
        fibonacci((*self >> 64) as u64 ^ (*self as u64).rotate_left(32))
    }
}

impl Key for [u8; 32] {
    const BUCKETS_PER_KEY_LOG2: i32 = 1;

    fn top64(&self) -> u64 {
        let mut top = [0u8; 8];
        top.copy_from_slice(&self[..8]);
        u64::from_be_bytes(top)
    }

    fn mix64(&self) -> u64 {
        // A digest is already uniformly spread.
        self.top64()
    }
}

/// An address key, for intervals: its successor.
pub(crate) trait RangeKey: Key {
    /// The next key, `None` after the last one.
    fn succ(self) -> Option<Self>;
}

impl RangeKey for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl RangeKey for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// How keys are spread over the buckets of a [`SortedKeys`] index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Spread {
    /// By their top bits: buckets follow the keys' order, so predecessors can be found.
    #[default]
    Ordered,
    /// By [`Key::mix64`]: even buckets whatever the keys, for exact lookups only.
    Hashed,
}

/// Index bits for `n` keys, about `2^buckets_per_key_log2` buckets a key; none for fewer than
/// two keys, or when positions would not fit in `u32` (one bucket, whose keys are then
/// simply sorted).
fn index_bits(n: usize, buckets_per_key_log2: i32) -> u32 {
    if n < 2 || u32::try_from(n).is_err() {
        return 0;
    }
    let log2 = (usize::BITS - 1).saturating_sub(n.leading_zeros());
    log2.saturating_add_signed(buckets_per_key_log2).min(24)
}

/// Keys grouped by bucket (in bucket order, each bucket sorted), with where each bucket
/// starts: a lookup reads two neighbouring index slots and binary-searches a few keys.
struct SortedKeys<K> {
    keys: Box<[K]>,
    /// `buckets[b]` is where bucket `b` starts; one extra entry holds the length. Empty when
    /// there are too many keys for `u32` positions: then the whole array is one bucket.
    buckets: Box<[u32]>,
    bits: u32,
    spread: Spread,
}

impl<K> Default for SortedKeys<K> {
    fn default() -> Self {
        Self {
            keys: Box::default(),
            buckets: Box::default(),
            bits: 0,
            spread: Spread::Ordered,
        }
    }
}

impl<K: Key> SortedKeys<K> {
    fn bucket_of(key: &K, bits: u32, spread: Spread) -> usize {
        let x = match spread {
            Spread::Ordered => key.top64(),
            Spread::Hashed => key.mix64(),
        };
        match bits {
            0 => 0,
            b => (x >> (64 - b)) as usize,
        }
    }

    /// `keys` must be distinct, ordered by bucket ([`Self::bucket_of`] with `bits` and
    /// `spread`) and sorted within each bucket; `bits` from [`index_bits`] for at least as
    /// many keys.
    fn new(keys: Vec<K>, bits: u32, spread: Spread) -> Self {
        let mut counts = vec![0u32; (1usize << bits) + 1];
        let fits = u32::try_from(keys.len()).is_ok();
        if fits {
            for key in &keys {
                if let Some(count) = counts.get_mut(Self::bucket_of(key, bits, spread) + 1) {
                    *count += 1;
                }
            }
            for b in 1..counts.len() {
                counts[b] += counts[b - 1];
            }
        }
        Self {
            keys: keys.into_boxed_slice(),
            // Without positions the keys are one bucket, sorted as `bits` = 0 sorted them.
            buckets: if fits { counts } else { Vec::new() }.into_boxed_slice(),
            bits,
            spread,
        }
    }

    /// The keys of the bucket of `key`, and the position of the first of them.
    fn bucket(&self, key: &K) -> (usize, &[K]) {
        if self.buckets.is_empty() {
            return (0, &self.keys);
        }
        let b = Self::bucket_of(key, self.bits, self.spread);
        let lo = self.buckets.get(b).map_or(0, |&p| p as usize);
        let hi = self.buckets.get(b + 1).map_or(lo, |&p| p as usize);
        (lo, self.keys.get(lo..hi).unwrap_or(&[]))
    }

    fn find(&self, key: &K) -> Option<usize> {
        let (lo, keys) = self.bucket(key);
        keys.binary_search(key).ok().map(|i| lo + i)
    }

    /// The position of the last key at most `key`; the keys must be [`Spread::Ordered`].
    fn predecessor(&self, key: &K) -> Option<usize> {
        debug_assert_eq!(self.spread, Spread::Ordered);
        // Keys before the bucket have smaller top bits, so they are all smaller than `key`.
        let (lo, keys) = self.bucket(key);
        (lo + keys.partition_point(|k| k <= key)).checked_sub(1)
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn heap_bytes(&self) -> usize {
        slice_bytes(&self.keys) + slice_bytes(&self.buckets)
    }
}

/// Collects `(key, list)` pairs for an [`ExactSet`].
#[derive(Debug)]
pub(crate) struct ExactBuilder<K> {
    items: Vec<(K, u8)>,
}

impl<K> Default for ExactBuilder<K> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<K: Key> ExactBuilder<K> {
    pub(crate) fn push(&mut self, key: K, list: u8) {
        self.items.push((key, list));
    }

    pub(crate) fn build(self) -> ExactSet<K> {
        let mut items = self.items;
        // Two to four IPv4 addresses a bucket, half a wider key (fewer once repeated keys
        // merge); equal keys stay together.
        let bits = index_bits(items.len(), K::BUCKETS_PER_KEY_LOG2);
        let bucket = |k: &K| SortedKeys::bucket_of(k, bits, Spread::Hashed);
        items.sort_unstable_by(|a, b| (bucket(&a.0), a).cmp(&(bucket(&b.0), b)));
        let distinct = items.chunk_by(|a, b| a.0 == b.0).count();
        let mut keys = Vec::with_capacity(distinct);
        let mut ids = Vec::with_capacity(distinct);
        let mut interner = Interner::default();
        for group in items.chunk_by(|a, b| a.0 == b.0) {
            if let Some(&(key, _)) = group.first() {
                keys.push(key);
                ids.push(interner.intern(group.iter().fold(0, |m, &(_, l)| m | bit(l))));
            }
        }
        drop(items);
        ExactSet {
            keys: SortedKeys::new(keys, bits, Spread::Hashed),
            classes: Classes::new(interner, ids),
        }
    }
}

/// Distinct fixed-size keys, each with the lists that hold it.
#[derive(Default)]
pub(crate) struct ExactSet<K> {
    keys: SortedKeys<K>,
    classes: Classes,
}

impl<K: Key> ExactSet<K> {
    /// The mask of the lists that hold `key`.
    pub(crate) fn get(&self, key: &K) -> u64 {
        if self.keys.len() == 0 {
            return 0;
        }
        self.keys.find(key).map_or(0, |i| self.classes.mask(i))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Every key with the mask of the lists that hold it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, u64)> + '_ {
        self.keys
            .keys
            .iter()
            .enumerate()
            .map(|(i, key)| (*key, self.classes.mask(i)))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes() + self.classes.heap_bytes()
    }
}

impl<K> fmt::Debug for ExactSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactSet")
            .field("keys", &self.keys.keys.len())
            .finish_non_exhaustive()
    }
}

/// Collects `(first, last, list)` intervals for a [`RangeSet`].
#[derive(Debug)]
pub(crate) struct RangeBuilder<K> {
    items: Vec<(K, K, u8)>,
}

impl<K> Default for RangeBuilder<K> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<K: RangeKey> RangeBuilder<K> {
    /// Adds the interval `first..=last` to `list`.
    pub(crate) fn push(&mut self, first: K, last: K, list: u8) {
        self.items.push((first, last, list));
    }

    /// The set, and how many distinct intervals went into it.
    pub(crate) fn build(self) -> (RangeSet<K>, usize) {
        let mut items = self.items;
        items.sort_unstable();
        let distinct = items.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)).count();
        // Sweep the interval ends in order, counting per list how many intervals cover the
        // position; a new interval of the set starts wherever the covering lists change.
        let mut events: Vec<(K, bool, u8)> = Vec::with_capacity(items.len() * 2);
        for &(first, last, list) in &items {
            events.push((first, true, list));
            if let Some(after) = last.succ() {
                events.push((after, false, list));
            }
        }
        drop(items);
        events.sort_unstable_by_key(|e| e.0);
        let mut covering = [0u32; 64];
        let mut starts = Vec::new();
        let mut ids = Vec::new();
        let mut interner = Interner::default();
        let mut current = 0u64;
        for group in events.chunk_by(|a, b| a.0 == b.0) {
            for &(_, opens, list) in group {
                let count = &mut covering[usize::from(list & 63)];
                *count = if opens {
                    count.saturating_add(1)
                } else {
                    count.saturating_sub(1)
                };
            }
            let mask = covering
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .fold(0u64, |m, (list, _)| m | 1 << list);
            if let Some(&(at, _, _)) = group.first()
                && mask != current
            {
                starts.push(at);
                ids.push(interner.intern(mask));
                current = mask;
            }
        }
        // About eight interval starts a bucket.
        let bits = index_bits(starts.len(), -3);
        let set = RangeSet {
            starts: SortedKeys::new(starts, bits, Spread::Ordered),
            classes: Classes::new(interner, ids),
        };
        (set, distinct)
    }
}

/// Disjoint intervals of keys, each with the lists that cover it (none for gaps).
#[derive(Default)]
pub(crate) struct RangeSet<K> {
    starts: SortedKeys<K>,
    classes: Classes,
}

impl<K: RangeKey> RangeSet<K> {
    /// The mask of the lists with an interval that holds `key`.
    pub(crate) fn get(&self, key: &K) -> u64 {
        if self.starts.len() == 0 {
            return 0;
        }
        self.starts
            .predecessor(key)
            .map_or(0, |i| self.classes.mask(i))
    }

    /// The intervals some list covers, in order: first key, the start of the next interval
    /// (`None`: this one runs to the last key), and the lists' mask.
    pub(crate) fn intervals(&self) -> impl Iterator<Item = (K, Option<K>, u64)> + '_ {
        let starts = &self.starts.keys;
        starts
            .iter()
            .enumerate()
            .map(move |(i, first)| (*first, starts.get(i + 1).copied(), self.classes.mask(i)))
            .filter(|(_, _, mask)| *mask != 0)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.starts.heap_bytes() + self.classes.heap_bytes()
    }
}

impl<K> fmt::Debug for RangeSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeSet")
            .field("intervals", &self.starts.keys.len())
            .finish_non_exhaustive()
    }
}

/// Bytes a class id takes in a domain record, for this many classes.
fn class_width(classes: usize) -> usize {
    match classes {
        0..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        _ => 4,
    }
}

/// The name of the record at `offset`: `[length][class: width bytes][name]`.
fn record_name(arena: &[u8], offset: u32, width: usize) -> &[u8] {
    let at = offset as usize;
    let len = usize::from(arena.get(at).copied().unwrap_or(0));
    let start = at + 1 + width;
    arena.get(start..start + len).unwrap_or(&[])
}

/// The class id of the record at `offset`.
fn record_class(arena: &[u8], offset: u32, width: usize) -> u32 {
    let start = offset as usize + 1;
    match arena.get(start..start + width) {
        Some(&[a]) => u32::from(a),
        Some(&[a, b]) => u32::from(u16::from_le_bytes([a, b])),
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Appends a record for `name` with class `class`.
fn push_record(arena: &mut Vec<u8>, name: &[u8], class: u32, width: usize) {
    arena.push(name.len() as u8);
    arena.extend_from_slice(class.to_le_bytes().get(..width).unwrap_or(&[]));
    arena.extend_from_slice(name);
}

/// Collects domain names for a [`DomainSet`], already in its final layout: each distinct
/// name once in the arena, found again through the table to merge the lists that hold it.
#[derive(Debug)]
pub(crate) struct DomainBuilder {
    arena: Vec<u8>,
    table: HashTable<u32>,
    state: RandomState,
    interner: Interner,
    width: usize,
}

impl Default for DomainBuilder {
    fn default() -> Self {
        Self {
            arena: Vec::new(),
            table: HashTable::new(),
            state: RandomState::default(),
            interner: Interner::default(),
            width: 1,
        }
    }
}

impl DomainBuilder {
    /// Adds `name` (normalised) to `list`. Names longer than a DNS name can be are left out:
    /// no lookup could match them.
    pub(crate) fn insert(&mut self, name: &str, list: u8) -> Result<(), BuildError> {
        if name.len() > MAX_DOMAIN_LEN {
            return Ok(());
        }
        let name = name.as_bytes();
        let hash = self.state.hash_one(name);
        let width = self.width;
        let arena = &self.arena;
        let found = self
            .table
            .find(hash, |&o| record_name(arena, o, width) == name)
            .copied();
        let class = match found {
            Some(offset) => {
                let class = record_class(&self.arena, offset, width);
                self.interner.intern(self.interner.mask(class) | bit(list))
            }
            None => self.interner.intern(bit(list)),
        };
        let mut found = found;
        if class_width(self.interner.len()) > self.width {
            self.widen(class_width(self.interner.len()))?;
            // The records moved: find this one again.
            let (arena, width) = (&self.arena, self.width);
            found = found.and_then(|_| {
                self.table
                    .find(hash, |&o| record_name(arena, o, width) == name)
                    .copied()
            });
        }
        let width = self.width;
        if let Some(offset) = found {
            let start = offset as usize + 1;
            let bytes = class.to_le_bytes();
            if let (Some(slot), Some(bytes)) =
                (self.arena.get_mut(start..start + width), bytes.get(..width))
            {
                slot.copy_from_slice(bytes);
            }
            return Ok(());
        }
        let offset = u32::try_from(self.arena.len())
            .ok()
            .filter(|o| o.checked_add((1 + width + name.len()) as u32).is_some())
            .ok_or(BuildError::DomainArenaFull)?;
        push_record(&mut self.arena, name, class, width);
        let (arena, state) = (&self.arena, &self.state);
        self.table.insert_unique(hash, offset, |&o| {
            state.hash_one(record_name(arena, o, width))
        });
        Ok(())
    }

    /// Rewrites every record with wider class ids and indexes them again: only once a
    /// snapshot has more than 256 (then 65,536) distinct combinations of lists.
    fn widen(&mut self, width: usize) -> Result<(), BuildError> {
        let grown = self.arena.len() + self.table.len() * width.saturating_sub(self.width);
        if u32::try_from(grown).is_err() {
            return Err(BuildError::DomainArenaFull);
        }
        let old = std::mem::take(&mut self.arena);
        let mut arena = Vec::with_capacity(grown);
        let mut table = HashTable::with_capacity(self.table.len());
        let mut offset = 0usize;
        while offset < old.len() {
            let name = record_name(&old, offset as u32, self.width);
            let class = record_class(&old, offset as u32, self.width);
            let at = arena.len() as u32;
            push_record(&mut arena, name, class, width);
            table.insert_unique(self.state.hash_one(name), at, |&o| {
                self.state.hash_one(record_name(&arena, o, width))
            });
            offset += 1 + self.width + name.len();
        }
        self.arena = arena;
        self.table = table;
        self.width = width;
        Ok(())
    }

    /// Room for about `entries` more names of `bytes` in all.
    pub(crate) fn reserve(&mut self, entries: usize, bytes: usize) {
        self.arena
            .reserve(bytes.saturating_add(entries.saturating_mul(1 + self.width)));
        let (arena, state, width) = (&self.arena, &self.state, self.width);
        self.table
            .reserve(entries, |&o| state.hash_one(record_name(arena, o, width)));
    }

    /// Frees the slack of the arena and the table.
    pub(crate) fn build(self) -> DomainSet {
        let Self {
            arena,
            mut table,
            state,
            interner,
            width,
        } = self;
        let arena = arena.into_boxed_slice();
        table.shrink_to_fit(|&o| state.hash_one(record_name(&arena, o, width)));
        DomainSet {
            arena,
            table,
            masks: interner.masks.into_boxed_slice(),
            width,
            state,
        }
    }
}

/// Distinct domain names, each with the lists that hold it.
#[derive(Default)]
pub(crate) struct DomainSet {
    /// `[length][class: width bytes][name]` records.
    arena: Box<[u8]>,
    table: HashTable<u32>,
    masks: Box<[u64]>,
    width: usize,
    state: RandomState,
}

impl DomainSet {
    /// The mask of the lists that hold exactly `name`.
    pub(crate) fn get(&self, name: &[u8]) -> u64 {
        let arena = &self.arena;
        self.table
            .find(self.state.hash_one(name), |&o| {
                record_name(arena, o, self.width) == name
            })
            .and_then(|&o| {
                let class = record_class(arena, o, self.width);
                self.masks.get(class as usize)
            })
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        slice_bytes(&self.arena) + self.table.allocation_size() + slice_bytes(&self.masks)
    }
}

impl fmt::Debug for DomainSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainSet")
            .field("names", &self.table.len())
            .field("arena_bytes", &self.arena.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_set_merges_lists_and_finds_every_key() {
        let mut b = ExactBuilder::default();
        for k in (0..5_000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
            b.push(k, (k % 3) as u8);
        }
        b.push(7u32.wrapping_mul(2_654_435_761), 5);
        let set = b.build();
        assert_eq!(set.len(), 5_000);
        for k in (0..5_000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
            assert_ne!(set.get(&k) & bit((k % 3) as u8), 0, "{k}");
            assert_eq!(set.get(&k.wrapping_add(1)), 0);
        }
        let seven = 7u32.wrapping_mul(2_654_435_761);
        assert_eq!(set.get(&seven), bit((seven % 3) as u8) | bit(5));
        assert_eq!(ExactSet::<u32>::default().get(&1), 0);
    }

    #[test]
    fn range_set_splits_nested_and_overlapping_intervals() {
        let mut b = RangeBuilder::default();
        b.push(10u32, 100, 0);
        b.push(20, 30, 1);
        b.push(25, 200, 2);
        b.push(20, 30, 1);
        b.push(u32::MAX - 5, u32::MAX, 3);
        let (set, distinct) = b.build();
        assert_eq!(distinct, 4);
        let naive = |k: u32| {
            [
                (10, 100, 0),
                (20, 30, 1),
                (25, 200, 2),
                (u32::MAX - 5, u32::MAX, 3),
            ]
            .iter()
            .filter(|(f, l, _)| (*f..=*l).contains(&k))
            .fold(0, |m, (_, _, list)| m | bit(*list))
        };
        for k in (0..300).chain(u32::MAX - 10..=u32::MAX) {
            assert_eq!(set.get(&k), naive(k), "{k}");
        }
    }

    #[test]
    fn domain_set_dedups_across_lists_and_narrows_classes() {
        let mut b = DomainBuilder::default();
        b.insert("evil.example", 0).unwrap();
        b.insert("other.test", 1).unwrap();
        b.insert("evil.example", 3).unwrap();
        b.insert("", 2).unwrap();
        b.insert(&"a".repeat(300), 2).unwrap();
        let set = b.build();
        assert_eq!(set.len(), 3);
        assert_eq!(set.width, 1);
        assert_eq!(set.get(b"evil.example"), bit(0) | bit(3));
        assert_eq!(set.get(b"other.test"), bit(1));
        assert_eq!(set.get(b""), bit(2));
        assert_eq!(set.get(b"evil.exampl"), 0);
    }

    #[test]
    fn domain_set_with_many_classes_uses_wider_ids() {
        // 64 lists and names in many distinct combinations of them: more than 256 classes.
        let mut b = DomainBuilder::default();
        for i in 0..1_000u64 {
            let name = format!("n{i}.example");
            let mask = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for list in 0..64u8 {
                if mask & bit(list) != 0 {
                    b.insert(&name, list).unwrap();
                }
            }
        }
        let set = b.build();
        assert_eq!(set.width, 2);
        for i in 0..1_000u64 {
            let mask = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            assert_eq!(set.get(format!("n{i}.example").as_bytes()), mask);
        }
    }
}
