//! The immutable threat-intelligence snapshot and the builder that fills it.
//!
//! Lookups are pure and allocation-free: each indicator maps to a 64-bit mask of the lists that
//! contain it, and a lookup returns the union of the masks it hits. The indicators are kept in
//! the compact, exactly sized structures of [`crate::store`]; [`ThreatIntel::heap_bytes`] says
//! what they take.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{
    finding_type::FindingType,
    indicator::{Indicator, IndicatorKind, IpNet, MAX_DOMAIN_LEN, v4_mask, v6_mask},
    store::{DomainBuilder, DomainSet, ExactBuilder, ExactSet, RangeBuilder, RangeSet},
};

/// Most lists one snapshot can hold (threat lists and trusted-IP lists are counted apart):
/// membership is a bit in a `u64`, which keeps every entry small and lookups branch-free.
pub const MAX_LISTS: usize = 64;

/// How a list is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    /// A STIX 2.1 bundle of indicator objects (IP, domain and SHA-256 patterns).
    Stix,
    /// Plain text, one indicator of this kind per line, `#` starts a comment. Written as the
    /// kind alone in configuration: `ip`, `domain` or `sha256`.
    #[serde(untagged)]
    PlainText(IndicatorKind),
}

/// What is known about one list: enough to explain a match in a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListInfo {
    /// Name given in the configuration, unique within a snapshot.
    pub name: String,
    /// How the list was stored.
    pub format: ListFormat,
    /// Finding types a match in this list raises; empty for context-only lists.
    pub feeds: Vec<FindingType>,
    /// Where it was loaded from: a file path or `builtin:<file>`.
    pub origin: String,
    /// Indicators accepted from it.
    pub indicators: usize,
}

/// Index of a list within a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListId(u8);

/// The lists an indicator matched. Iterates over [`ListInfo`]s without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Matches<'a> {
    mask: u64,
    lists: &'a [ListInfo],
}

impl<'a> Matches<'a> {
    /// No list matched.
    pub fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// The matching lists as a bit mask: bit `i` is the list at index `i` of
    /// [`ThreatIntel::lists`].
    pub fn mask(&self) -> u64 {
        self.mask
    }

    /// Number of lists that matched.
    pub fn len(&self) -> usize {
        self.mask.count_ones() as usize
    }

    /// Whether the list with this name matched.
    pub fn contains(&self, name: &str) -> bool {
        let mut all = *self;
        all.any(|l| l.name == name)
    }

    /// Every finding type fed by the matching lists (a type can repeat if two lists feed it).
    pub fn finding_types(self) -> impl Iterator<Item = FindingType> + 'a {
        self.flat_map(|l| l.feeds.iter().copied())
    }
}

impl<'a> Iterator for Matches<'a> {
    type Item = &'a ListInfo;

    fn next(&mut self) -> Option<Self::Item> {
        while self.mask != 0 {
            let index = self.mask.trailing_zeros() as usize;
            self.mask &= self.mask - 1;
            if let Some(list) = self.lists.get(index) {
                return Some(list);
            }
        }
        None
    }
}

/// IP networks of both families: single addresses as sorted keys, CIDR blocks as sorted
/// intervals.
#[derive(Debug, Default)]
struct IpSet {
    v4: ExactSet<u32>,
    v4_blocks: RangeSet<u32>,
    v6: ExactSet<u128>,
    v6_blocks: RangeSet<u128>,
    /// Distinct networks (address and prefix), blocks and single addresses together.
    networks: usize,
}

impl IpSet {
    fn get(&self, ip: IpAddr) -> u64 {
        if self.networks == 0 {
            return 0;
        }
        match canonical(ip) {
            IpAddr::V4(a) => {
                let key = u32::from(a);
                self.v4.get(&key) | self.v4_blocks.get(&key)
            }
            IpAddr::V6(a) => {
                let key = u128::from(a);
                self.v6.get(&key) | self.v6_blocks.get(&key)
            }
        }
    }

    fn len(&self) -> usize {
        self.networks
    }

    fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v4_blocks.heap_bytes()
            + self.v6.heap_bytes()
            + self.v6_blocks.heap_bytes()
    }
}

/// Collects networks for an [`IpSet`].
#[derive(Debug, Default)]
struct IpSetBuilder {
    v4: ExactBuilder<u32>,
    v4_blocks: RangeBuilder<u32>,
    v6: ExactBuilder<u128>,
    v6_blocks: RangeBuilder<u128>,
}

impl IpSetBuilder {
    fn insert(&mut self, net: IpNet, list: ListId) {
        match net.addr() {
            IpAddr::V4(a) if net.prefix() >= 32 => self.v4.push(u32::from(a), list.0),
            IpAddr::V4(a) => {
                let first = u32::from(a);
                self.v4_blocks
                    .push(first, first | !v4_mask(net.prefix()), list.0);
            }
            IpAddr::V6(a) if net.prefix() >= 128 => self.v6.push(u128::from(a), list.0),
            IpAddr::V6(a) => {
                let first = u128::from(a);
                self.v6_blocks
                    .push(first, first | !v6_mask(net.prefix()), list.0);
            }
        }
    }

    fn build(self) -> IpSet {
        let (v4_blocks, v4_block_count) = self.v4_blocks.build();
        let (v6_blocks, v6_block_count) = self.v6_blocks.build();
        let (v4, v6) = (self.v4.build(), self.v6.build());
        IpSet {
            networks: v4.len() + v6.len() + v4_block_count + v6_block_count,
            v4,
            v4_blocks,
            v6,
            v6_blocks,
        }
    }
}

/// The fewest CIDR blocks that cover `first..=last` in a `bits`-wide address space: each
/// block as (address, prefix length).
fn cidr_blocks(first: u128, last: u128, bits: u32) -> Vec<(u128, u8)> {
    let mut blocks = Vec::new();
    let mut cur = first;
    while cur <= last {
        // The largest block aligned at `cur` that ends at or before `last`.
        let mut size = cur.trailing_zeros().min(bits);
        let block_last = |size: u32| {
            if size >= 128 {
                u128::MAX
            } else {
                cur | ((1u128 << size) - 1)
            }
        };
        while size > 0 && block_last(size) > last {
            size -= 1;
        }
        // `bits - size` is at most 128.
        blocks.push((cur, (bits - size) as u8));
        match block_last(size).checked_add(1) {
            Some(next) if block_last(size) < last => cur = next,
            _ => break,
        }
    }
    blocks
}

/// IPv4-mapped IPv6 addresses (what a dual-stack socket reports) are looked up as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A snapshot cannot take more input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// More than [`MAX_LISTS`] threat lists or trusted-IP lists.
    #[error(
        "list {name:?} is one too many: a snapshot holds at most {MAX_LISTS} lists of each sort"
    )]
    TooManyLists {
        /// The list that did not fit.
        name: String,
    },
    /// Two lists have the same name.
    #[error("list name {name:?} is used twice; list names must be unique")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// The domain names add up to more than 4 GiB.
    #[error("domain names exceed 4 GiB in total")]
    DomainArenaFull,
}

/// Fills a [`ThreatIntel`] snapshot list by list.
#[derive(Debug, Default)]
pub struct IntelBuilder {
    lists: Vec<ListInfo>,
    trusted: Vec<ListInfo>,
    domains: DomainBuilder,
    ips: IpSetBuilder,
    hashes: ExactBuilder<[u8; 32]>,
    trusted_ips: IpSetBuilder,
}

impl IntelBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    fn check_name(&self, name: &str) -> Result<(), BuildError> {
        if self
            .lists
            .iter()
            .chain(&self.trusted)
            .any(|l| l.name == name)
        {
            return Err(BuildError::DuplicateName {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Registers a threat list; its indicators are then added with [`Self::insert`].
    pub fn add_list(
        &mut self,
        name: &str,
        format: ListFormat,
        feeds: Vec<FindingType>,
        origin: &str,
    ) -> Result<ListId, BuildError> {
        self.check_name(name)?;
        let id = u8::try_from(self.lists.len())
            .ok()
            .filter(|&i| usize::from(i) < MAX_LISTS)
            .ok_or_else(|| BuildError::TooManyLists {
                name: name.to_owned(),
            })?;
        self.lists.push(ListInfo {
            name: name.to_owned(),
            format,
            feeds,
            origin: origin.to_owned(),
            indicators: 0,
        });
        Ok(ListId(id))
    }

    /// Registers a trusted-IP list; its networks are then added with [`Self::insert_trusted`].
    pub fn add_trusted_list(&mut self, name: &str, origin: &str) -> Result<ListId, BuildError> {
        self.check_name(name)?;
        let id = u8::try_from(self.trusted.len())
            .ok()
            .filter(|&i| usize::from(i) < MAX_LISTS)
            .ok_or_else(|| BuildError::TooManyLists {
                name: name.to_owned(),
            })?;
        self.trusted.push(ListInfo {
            name: name.to_owned(),
            format: ListFormat::PlainText(IndicatorKind::Ip),
            feeds: Vec::new(),
            origin: origin.to_owned(),
            indicators: 0,
        });
        Ok(ListId(id))
    }

    /// Sizes the domain table for about `entries` more names of `bytes` total length, so that
    /// loading a big list does not rehash repeatedly. The snapshot is sized exactly whatever
    /// was reserved.
    pub fn reserve_domains(&mut self, entries: usize, bytes: usize) {
        self.domains.reserve(entries, bytes);
    }

    /// Adds one indicator to a threat list.
    pub fn insert(&mut self, list: ListId, indicator: &Indicator<'_>) -> Result<(), BuildError> {
        match indicator {
            Indicator::Ip(net) => self.ips.insert(*net, list),
            Indicator::Domain(name) => self.domains.insert(name, list.0)?,
            Indicator::Sha256(digest) => self.hashes.push(*digest, list.0),
        }
        if let Some(info) = self.lists.get_mut(usize::from(list.0)) {
            info.indicators += 1;
        }
        Ok(())
    }

    /// Adds one network to a trusted-IP list.
    pub fn insert_trusted(&mut self, list: ListId, net: IpNet) {
        self.trusted_ips.insert(net, list);
        if let Some(info) = self.trusted.get_mut(usize::from(list.0)) {
            info.indicators += 1;
        }
    }

    /// Freezes the builder into a snapshot: sorts, deduplicates and packs each kind of
    /// indicator in turn, freeing what the builder held for it before the next.
    pub fn build(self) -> ThreatIntel {
        let Self {
            lists,
            trusted,
            domains,
            ips,
            hashes,
            trusted_ips,
        } = self;
        let domains = domains.build();
        let ips = ips.build();
        let hashes = hashes.build();
        let trusted_ips = trusted_ips.build();
        ThreatIntel {
            lists,
            trusted,
            domains,
            ips,
            hashes,
            trusted_ips,
        }
    }
}

/// An immutable set of threat lists and trusted-IP lists. Lookups never allocate, block or do
/// I/O; share it behind an `Arc` (see [`crate::SharedIntel`]).
#[derive(Debug, Default)]
pub struct ThreatIntel {
    lists: Vec<ListInfo>,
    trusted: Vec<ListInfo>,
    domains: DomainSet,
    ips: IpSet,
    hashes: ExactSet<[u8; 32]>,
    trusted_ips: IpSet,
}

impl ThreatIntel {
    /// A snapshot with no lists: every lookup misses.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The threat lists, in load order.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// The trusted-IP lists, in load order.
    pub fn trusted_lists(&self) -> &[ListInfo] {
        &self.trusted
    }

    /// Distinct indicators stored, by kind: (IP networks, domains, SHA-256 digests).
    pub fn distinct_indicators(&self) -> (usize, usize, usize) {
        (self.ips.len(), self.domains.len(), self.hashes.len())
    }

    /// Heap bytes the snapshot holds: the indicator structures (computed from their sizes, not
    /// measured) and the lists' descriptions.
    pub fn heap_bytes(&self) -> usize {
        let info = |l: &ListInfo| {
            std::mem::size_of::<ListInfo>()
                + l.name.capacity()
                + l.origin.capacity()
                + l.feeds.capacity() * std::mem::size_of::<FindingType>()
        };
        self.domains.heap_bytes()
            + self.ips.heap_bytes()
            + self.hashes.heap_bytes()
            + self.trusted_ips.heap_bytes()
            + self
                .lists
                .iter()
                .chain(&self.trusted)
                .map(info)
                .sum::<usize>()
    }

    fn matches(&self, mask: u64) -> Matches<'_> {
        Matches {
            mask,
            lists: &self.lists,
        }
    }

    /// The threat lists that contain `ip`, exactly or in a CIDR block. A trusted address
    /// matches nothing: trusted-IP lists silence network findings for their addresses.
    pub fn lookup_ip(&self, ip: IpAddr) -> Matches<'_> {
        if self.is_trusted_ip(ip) {
            return self.matches(0);
        }
        self.matches(self.ips.get(ip))
    }

    /// Every IP network on the threat lists, as CIDR blocks, with the lists that hold it: what
    /// a kernel deny map is filled from. Blocks that overlapped in the lists come out split
    /// where the set of lists changes, so each address is in one block. Single addresses on a
    /// trusted-IP list are left out; a listed CIDR block is given whole even when a trusted
    /// address falls inside it.
    pub fn ip_networks(&self) -> impl Iterator<Item = (IpNet, Matches<'_>)> + '_ {
        let v4_exact = self
            .ips
            .v4
            .iter()
            .map(|(a, mask)| (u128::from(a), u128::from(a), mask, 32));
        let v4_blocks = self.ips.v4_blocks.intervals().map(|(first, next, mask)| {
            let last = next.map_or(u32::MAX, |n| n.wrapping_sub(1));
            (u128::from(first), u128::from(last), mask, 32)
        });
        let v6_exact = self.ips.v6.iter().map(|(a, mask)| (a, a, mask, 128));
        let v6_blocks = self.ips.v6_blocks.intervals().map(|(first, next, mask)| {
            let last = next.map_or(u128::MAX, |n| n.wrapping_sub(1));
            (first, last, mask, 128)
        });
        v4_exact
            .chain(v4_blocks)
            .chain(v6_exact)
            .chain(v6_blocks)
            .flat_map(|(first, last, mask, bits)| {
                cidr_blocks(first, last, bits)
                    .into_iter()
                    .map(move |(addr, prefix)| (addr, prefix, mask, bits))
            })
            .filter_map(|(addr, prefix, mask, bits)| {
                let ip = if bits == 32 {
                    IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(addr).ok()?))
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::from(addr))
                };
                let single = u32::from(prefix) == bits;
                if single && self.is_trusted_ip(ip) {
                    return None;
                }
                Some((IpNet::new(ip, prefix).ok()?, self.matches(mask)))
            })
    }

    /// Whether `ip` is on a trusted-IP list.
    pub fn is_trusted_ip(&self, ip: IpAddr) -> bool {
        self.trusted_ips.get(ip) != 0
    }

    /// The threat lists that contain `name` or one of its parent domains. Case-insensitive; a
    /// trailing dot is allowed. Names that are not valid DNS names match nothing.
    pub fn lookup_domain(&self, name: &str) -> Matches<'_> {
        let name = name.trim();
        let name = name.strip_suffix('.').unwrap_or(name);
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_DOMAIN_LEN {
            return self.matches(0);
        }
        // Lowercase on the stack: no allocation on the hot path.
        let mut buf = [0u8; MAX_DOMAIN_LEN];
        let lower = &mut buf[..bytes.len()];
        lower.copy_from_slice(bytes);
        lower.make_ascii_lowercase();
        let mut mask = self.domains.get(lower);
        for (i, &b) in lower.iter().enumerate() {
            if b == b'.' {
                mask |= self.domains.get(&lower[i + 1..]);
            }
        }
        self.matches(mask)
    }

    /// The threat lists that contain this SHA-256 digest.
    pub fn lookup_sha256(&self, digest: &[u8; 32]) -> Matches<'_> {
        self.matches(self.hashes.get(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intel() -> ThreatIntel {
        let mut b = IntelBuilder::new();
        let c2 = b
            .add_list(
                "c2",
                ListFormat::PlainText(IndicatorKind::Domain),
                vec![FindingType::BackdoorCcActivityBDns],
                "test",
            )
            .unwrap();
        let ips = b
            .add_list(
                "bad-ips",
                ListFormat::PlainText(IndicatorKind::Ip),
                vec![FindingType::BackdoorCcActivityB],
                "test",
            )
            .unwrap();
        let both = b
            .add_list("both", ListFormat::Stix, vec![], "test")
            .unwrap();
        for d in ["evil.example", "deep.sub.bad.test"] {
            b.insert(c2, &Indicator::Domain(d.into())).unwrap();
        }
        b.insert(both, &Indicator::Domain("evil.example".into()))
            .unwrap();
        for n in [
            "192.0.2.1",
            "198.51.100.0/24",
            "2001:db8::/32",
            "203.0.113.9",
        ] {
            b.insert(ips, &Indicator::Ip(n.parse().unwrap())).unwrap();
        }
        b.insert(both, &Indicator::Sha256([7; 32])).unwrap();
        let trusted = b.add_trusted_list("office", "test").unwrap();
        b.insert_trusted(trusted, "203.0.113.0/28".parse().unwrap());
        b.build()
    }

    #[test]
    fn domain_matches_itself_and_subdomains_case_insensitively() {
        let t = intel();
        let m = t.lookup_domain("evil.example");
        assert_eq!(m.len(), 2);
        assert!(m.contains("c2") && m.contains("both"));
        assert!(t.lookup_domain("WWW.Evil.Example.").contains("c2"));
        assert!(t.lookup_domain("a.deep.sub.bad.test").contains("c2"));
        assert!(t.lookup_domain("sub.bad.test").is_empty());
        assert!(t.lookup_domain("notevil.example").is_empty());
        assert!(t.lookup_domain("example").is_empty());
        assert!(t.lookup_domain("").is_empty());
        assert!(t.lookup_domain(&"a.".repeat(200)).is_empty());
    }

    #[test]
    fn ip_networks_lists_every_network_once_without_trusted_addresses() {
        let t = intel();
        let mut nets: Vec<(String, bool)> = t
            .ip_networks()
            .map(|(net, lists)| {
                (
                    format!("{}/{}", net.addr(), net.prefix()),
                    lists.contains("bad-ips"),
                )
            })
            .collect();
        nets.sort();
        assert_eq!(
            nets,
            vec![
                ("192.0.2.1/32".to_owned(), true),
                ("198.51.100.0/24".to_owned(), true),
                ("2001:db8::/32".to_owned(), true),
            ]
        );
    }

    #[test]
    fn overlapping_blocks_split_where_the_lists_change() {
        let mut b = IntelBuilder::new();
        let wide = b
            .add_list(
                "wide",
                ListFormat::PlainText(IndicatorKind::Ip),
                vec![],
                "t",
            )
            .unwrap();
        let narrow = b
            .add_list(
                "narrow",
                ListFormat::PlainText(IndicatorKind::Ip),
                vec![],
                "t",
            )
            .unwrap();
        b.insert(wide, &Indicator::Ip("10.0.0.0/8".parse().unwrap()))
            .unwrap();
        b.insert(narrow, &Indicator::Ip("10.1.0.0/16".parse().unwrap()))
            .unwrap();
        let t = b.build();
        let nets: Vec<(IpNet, usize)> = t.ip_networks().map(|(n, m)| (n, m.len())).collect();
        // Every address of 10/8 is in exactly one block, with the lists lookup_ip gives.
        let total: u64 = nets.iter().map(|(n, _)| 1u64 << (32 - n.prefix())).sum();
        assert_eq!(total, 1 << 24);
        for (net, lists) in &nets {
            assert_eq!(t.lookup_ip(net.addr()).len(), *lists, "{net:?}");
        }
        assert!(nets.iter().any(|(n, l)| n.prefix() == 16 && *l == 2));
        assert!(nets.len() <= 9, "{nets:?}");
    }

    #[test]
    fn cidr_blocks_cover_a_range_exactly() {
        assert_eq!(
            cidr_blocks(1, 6, 32),
            vec![(1, 32), (2, 31), (4, 31), (6, 32)]
        );
        assert_eq!(cidr_blocks(0, u128::from(u32::MAX), 32), vec![(0, 0)]);
        assert_eq!(cidr_blocks(0, u128::MAX, 128), vec![(0, 0)]);
        assert_eq!(
            cidr_blocks(u128::MAX, u128::MAX, 128),
            vec![(u128::MAX, 128)]
        );
    }

    #[test]
    fn ip_matches_exact_and_cidr_and_mapped() {
        let t = intel();
        assert!(
            t.lookup_ip("192.0.2.1".parse().unwrap())
                .contains("bad-ips")
        );
        assert!(t.lookup_ip("192.0.2.2".parse().unwrap()).is_empty());
        assert!(
            t.lookup_ip("198.51.100.200".parse().unwrap())
                .contains("bad-ips")
        );
        assert!(
            t.lookup_ip("::ffff:198.51.100.1".parse().unwrap())
                .contains("bad-ips")
        );
        assert!(
            t.lookup_ip("2001:db8:1::5".parse().unwrap())
                .contains("bad-ips")
        );
        assert!(t.lookup_ip("2001:db9::5".parse().unwrap()).is_empty());
        let types: Vec<_> = t
            .lookup_ip("192.0.2.1".parse().unwrap())
            .finding_types()
            .collect();
        assert_eq!(types, vec![FindingType::BackdoorCcActivityB]);
    }

    #[test]
    fn trusted_ips_silence_matches() {
        let t = intel();
        let ip = "203.0.113.9".parse().unwrap();
        assert!(t.is_trusted_ip(ip));
        assert!(t.lookup_ip(ip).is_empty());
        assert!(!t.is_trusted_ip("203.0.113.16".parse().unwrap()));
    }

    #[test]
    fn sha256_lookup() {
        let t = intel();
        assert!(t.lookup_sha256(&[7; 32]).contains("both"));
        assert!(t.lookup_sha256(&[8; 32]).is_empty());
        assert_eq!(t.distinct_indicators(), (4, 2, 1));
        assert_eq!(t.lists()[0].indicators, 2);
    }

    /// Lookups agree with a linear scan over random networks of every prefix length.
    #[test]
    fn ip_lookup_matches_a_naive_scan() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut b = IntelBuilder::new();
        let list = b
            .add_list("l", ListFormat::PlainText(IndicatorKind::Ip), vec![], "t")
            .unwrap();
        let mut nets = Vec::new();
        for _ in 0..2_000 {
            let prefix = 20 + (next() % 13) as u8;
            // Cluster addresses in 10.0.0.0/12-ish space so that probes hit and miss.
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0x000f_ffff));
            let net = IpNet::new(IpAddr::V4(addr), prefix).unwrap();
            b.insert(list, &Indicator::Ip(net)).unwrap();
            nets.push(net);
        }
        let t = b.build();
        let contains = |net: &IpNet, ip: u32| match net.addr() {
            IpAddr::V4(a) => ip & v4_mask(net.prefix()) == u32::from(a),
            IpAddr::V6(_) => false,
        };
        let mut hits = 0;
        for _ in 0..20_000 {
            let ip = 0x0a00_0000 | (next() as u32 & 0x001f_ffff);
            let expected = nets.iter().any(|n| contains(n, ip));
            let got = !t
                .lookup_ip(IpAddr::V4(std::net::Ipv4Addr::from(ip)))
                .is_empty();
            assert_eq!(got, expected, "{}", std::net::Ipv4Addr::from(ip));
            hits += usize::from(got);
        }
        assert!(hits > 1_000 && hits < 19_000, "{hits}");
    }

    /// Lookups give exactly the lists a linear scan finds, over several lists of addresses and
    /// blocks of every prefix length (nested, overlapping and repeated across lists), in both
    /// families, with a trusted list on top.
    #[test]
    fn ip_lookup_gives_the_lists_of_a_naive_scan() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut b = IntelBuilder::new();
        let lists: Vec<ListId> = (0..5)
            .map(|i| {
                let format = ListFormat::PlainText(IndicatorKind::Ip);
                b.add_list(&format!("l{i}"), format, vec![], "t").unwrap()
            })
            .collect();
        let trusted = b.add_trusted_list("office", "t").unwrap();
        // Addresses in 10.0.0.0/12 and 2001:db8::/108, so that blocks nest and probes hit.
        let v4 = |bits: u64| {
            IpAddr::V4(std::net::Ipv4Addr::from(
                0x0a00_0000 | (bits as u32 & 0xf_ffff),
            ))
        };
        let v6 = |bits: u64| {
            IpAddr::V6(std::net::Ipv6Addr::from(
                0x2001_0db8_u128 << 96 | u128::from(bits as u32 & 0xf_ffff),
            ))
        };
        let mut nets: Vec<(IpNet, usize)> = Vec::new();
        for _ in 0..3_000 {
            let r = next();
            let list = (r % 5) as usize;
            let net = if r & 8 == 0 {
                IpNet::new(
                    v4(next()),
                    [32, 32, 31, 30, 28, 26, 24, 22][(r >> 4) as usize % 8],
                )
            } else {
                IpNet::new(
                    v6(next()),
                    [128, 128, 127, 126, 124, 122, 120, 118][(r >> 4) as usize % 8],
                )
            }
            .unwrap();
            b.insert(lists[list], &Indicator::Ip(net)).unwrap();
            nets.push((net, list));
        }
        let mut trusted_nets = Vec::new();
        for _ in 0..20 {
            let net = IpNet::new(v4(next()), 28).unwrap();
            b.insert_trusted(trusted, net);
            trusted_nets.push(net);
        }
        let t = b.build();
        let contains = |net: &IpNet, ip: IpAddr| match (net.addr(), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & v4_mask(net.prefix()) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                u128::from(a) & v6_mask(net.prefix()) == u128::from(n)
            }
            _ => false,
        };
        let (mut hits, mut trusted_hits) = (0, 0);
        for i in 0..10_000 {
            let ip = if i % 2 == 0 { v4(next()) } else { v6(next()) };
            let is_trusted = trusted_nets.iter().any(|n| contains(n, ip));
            assert_eq!(t.is_trusted_ip(ip), is_trusted, "{ip}");
            let mut expected: Vec<String> = nets
                .iter()
                .filter(|(n, _)| !is_trusted && contains(n, ip))
                .map(|(_, l)| format!("l{l}"))
                .collect();
            expected.sort();
            expected.dedup();
            let got: Vec<String> = t.lookup_ip(ip).map(|l| l.name.clone()).collect();
            assert_eq!(got, expected, "{ip}");
            hits += usize::from(!got.is_empty());
            trusted_hits += usize::from(is_trusted);
        }
        assert!(hits > 1_000 && hits < 9_000, "{hits}");
        assert!(trusted_hits > 0, "{trusted_hits}");
        let distinct: std::collections::HashSet<IpNet> = nets.iter().map(|(n, _)| *n).collect();
        assert_eq!(t.distinct_indicators().0, distinct.len());
    }

    #[test]
    fn rejects_duplicate_names_and_too_many_lists() {
        let mut b = IntelBuilder::new();
        for i in 0..MAX_LISTS {
            b.add_list(&format!("l{i}"), ListFormat::Stix, vec![], "t")
                .unwrap();
        }
        assert_eq!(
            b.add_list("extra", ListFormat::Stix, vec![], "t"),
            Err(BuildError::TooManyLists {
                name: "extra".into()
            })
        );
        assert_eq!(
            b.add_trusted_list("l3", "t"),
            Err(BuildError::DuplicateName { name: "l3".into() })
        );
    }
}
