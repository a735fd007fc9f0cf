//! A map the workload can grow, bounded by construction: at most `capacity` entries, and a new
//! key past that evicts the oldest key inserted (first in, first out), never the whole table. A
//! table that is cleared when full lets a flood erase what was learnt before it (a C&C address's
//! domain, a query a resolver forwarded); eviction by age loses only the oldest entries.

use std::{
    borrow::Borrow,
    collections::{HashMap, VecDeque},
    hash::Hash,
};

/// A first-in-first-out bounded map.
#[derive(Debug)]
pub(crate) struct FifoMap<K, V> {
    map: HashMap<K, V>,
    /// Keys in insertion order; may hold keys removed since (skipped when evicting, dropped when
    /// the queue grows past twice the capacity).
    order: VecDeque<K>,
    capacity: usize,
    evicted: u64,
}

impl<K: Hash + Eq + Clone, V> FifoMap<K, V> {
    /// An empty map holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            evicted: 0,
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_mut(key)
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.map.keys()
    }

    /// Entries evicted so far to make room.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let v = self.map.remove(key);
        if self.order.len() > 2 * self.capacity {
            let map = &self.map;
            self.order.retain(|k| map.contains_key::<K>(k));
        }
        v
    }

    /// Removes and returns the oldest entry.
    pub(crate) fn pop_oldest(&mut self) -> Option<(K, V)> {
        while let Some(old) = self.order.pop_front() {
            if let Some(v) = self.map.remove(&old) {
                self.evicted += 1;
                return Some((old, v));
            }
        }
        None
    }

    /// The value of `key`, a default one inserted (evicting the oldest in a full map) when
    /// missing.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        if !self.map.contains_key(&key) {
            self.insert(key.clone(), V::default());
        }
        // Present after the insert (the capacity is at least one).
        self.map.entry(key).or_default()
    }

    /// Inserts or replaces; a new key in a full map first evicts the oldest. Returns what was
    /// evicted, if anything, so the caller can account for it.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(v) = self.map.get_mut(&key) {
            *v = value;
            return None;
        }
        let mut out = None;
        while self.map.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.map.remove(&old) {
                self.evicted += 1;
                out = Some((old, v));
            }
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_evicts_the_oldest_key_only() {
        let mut m = FifoMap::new(3);
        for k in 0..3 {
            assert!(m.insert(k, k * 10).is_none());
        }
        // Replacing keeps the size and evicts nothing.
        assert!(m.insert(1, 11).is_none());
        assert_eq!(m.insert(3, 30), Some((0, 0)));
        assert_eq!((m.len(), m.evicted()), (3, 1));
        assert_eq!(m.get(&0), None);
        assert_eq!(m.get(&1), Some(&11));
        assert_eq!(m.get(&3), Some(&30));
    }

    #[test]
    fn removed_keys_are_skipped_and_the_queue_stays_bounded() {
        let mut m = FifoMap::new(2);
        for k in 0..10_000u32 {
            m.insert(k, ());
            m.remove(&k);
        }
        assert_eq!(m.len(), 0);
        assert!(m.order.len() <= 2 * 2 + 1, "{}", m.order.len());
        m.insert(1, ());
        m.insert(2, ());
        assert_eq!(m.insert(3, ()), Some((1, ())));
    }
}
