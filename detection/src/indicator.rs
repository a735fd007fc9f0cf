//! Parsing and normalising single indicators: IP addresses and CIDR blocks, domain names and
//! SHA-256 digests, as they appear in plain-text lists and STIX patterns.

use std::{
    borrow::Cow,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use serde::{Deserialize, Serialize};

/// What a plain-text list holds, one indicator per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    /// IPv4 or IPv6 addresses, or CIDR blocks of either.
    Ip,
    /// Domain names; an entry also matches every subdomain.
    Domain,
    /// SHA-256 digests of files, in hexadecimal.
    Sha256,
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ip => "ip",
            Self::Domain => "domain",
            Self::Sha256 => "sha256",
        })
    }
}

/// An IP network: an address and a prefix length. A single address is a /32 (IPv4) or /128
/// (IPv6) network. Host bits are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network containing `addr` with the given prefix length; host bits are cleared.
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are stored as IPv4 so that they match
    /// IPv4 lookups.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, IndicatorError> {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (IpAddr::V6(v6), prefix),
            },
            v4 => (v4, prefix),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(IndicatorError::PrefixTooLong { prefix, max });
        }
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & v4_mask(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & v6_mask(prefix))),
        };
        Ok(Self { addr, prefix })
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = IndicatorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => {
                let prefix = prefix
                    .parse::<u8>()
                    .map_err(|_| IndicatorError::InvalidPrefix {
                        value: s.to_owned(),
                    })?;
                (addr, Some(prefix))
            }
            None => (s, None),
        };
        let addr = addr_text
            .parse::<IpAddr>()
            .map_err(|_| IndicatorError::InvalidIp {
                value: s.to_owned(),
            })?;
        let prefix = prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        Self::new(addr, prefix)
    }
}

/// Mask with the top `prefix` bits of an IPv4 address set.
pub(crate) fn v4_mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// Mask with the top `prefix` bits of an IPv6 address set.
pub(crate) fn v6_mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// Why one indicator could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndicatorError {
    /// Not an IPv4 or IPv6 address.
    #[error("{value:?} is not an IP address or CIDR block")]
    InvalidIp {
        /// The text as found.
        value: String,
    },
    /// The part after `/` is not a number.
    #[error("{value:?} has an invalid prefix length")]
    InvalidPrefix {
        /// The text as found.
        value: String,
    },
    /// The prefix is longer than the address.
    #[error("prefix /{prefix} is longer than the address (at most /{max})")]
    PrefixTooLong {
        /// The prefix length found.
        prefix: u8,
        /// The longest prefix for this address family.
        max: u8,
    },
    /// Not a syntactically valid domain name.
    #[error("{value:?} is not a domain name: {reason}")]
    InvalidDomain {
        /// The text as found.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Not 64 hexadecimal digits.
    #[error("{value:?} is not a SHA-256 digest (expected 64 hexadecimal digits)")]
    InvalidSha256 {
        /// The text as found.
        value: String,
    },
}

/// Longest domain name DNS allows, without the trailing dot.
pub const MAX_DOMAIN_LEN: usize = 253;

/// Normalises a domain for storage and lookup: ASCII lowercase, without a trailing dot and
/// without a leading `*.` wildcard (an entry matches its subdomains anyway). Borrows when the
/// input is already normal, which is the common case for curated lists.
pub fn normalize_domain(text: &str) -> Result<Cow<'_, str>, IndicatorError> {
    let invalid = |reason| IndicatorError::InvalidDomain {
        value: text.to_owned(),
        reason,
    };
    let mut name = text.strip_suffix('.').unwrap_or(text);
    name = name.strip_prefix("*.").unwrap_or(name);
    if name.is_empty() {
        return Err(invalid("empty name"));
    }
    if name.len() > MAX_DOMAIN_LEN {
        return Err(invalid("longer than 253 characters"));
    }
    let mut needs_lowercase = false;
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label"));
        }
        if label.len() > 63 {
            return Err(invalid("label longer than 63 characters"));
        }
        for b in label.bytes() {
            match b {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
                b'A'..=b'Z' => needs_lowercase = true,
                _ => return Err(invalid("character other than letters, digits, '-' or '_'")),
            }
        }
    }
    Ok(if needs_lowercase {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    })
}

/// Parses a SHA-256 digest from 64 hexadecimal digits (either case).
pub fn parse_sha256(text: &str) -> Result<[u8; 32], IndicatorError> {
    let invalid = || IndicatorError::InvalidSha256 {
        value: text.to_owned(),
    };
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(invalid());
    }
    let mut digest = [0u8; 32];
    for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = hex_value(pair[0]).ok_or_else(invalid)?;
        let lo = hex_value(pair[1]).ok_or_else(invalid)?;
        *out = hi << 4 | lo;
    }
    Ok(digest)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One parsed indicator, ready to insert into a [`crate::IntelBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indicator<'a> {
    /// An address or CIDR block.
    Ip(IpNet),
    /// A normalised domain name.
    Domain(Cow<'a, str>),
    /// A SHA-256 digest.
    Sha256([u8; 32]),
}

impl<'a> Indicator<'a> {
    /// Parses `text` as an indicator of the given kind.
    pub fn parse(kind: IndicatorKind, text: &'a str) -> Result<Self, IndicatorError> {
        match kind {
            IndicatorKind::Ip => text.parse().map(Indicator::Ip),
            IndicatorKind::Domain => normalize_domain(text).map(Indicator::Domain),
            IndicatorKind::Sha256 => parse_sha256(text).map(Indicator::Sha256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_cidrs() {
        let net: IpNet = "192.0.2.7".parse().unwrap();
        assert_eq!(net.prefix(), 32);
        let net: IpNet = "198.51.100.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "198.51.100.0/24");
        let net: IpNet = "2001:db8::1/32".parse().unwrap();
        assert_eq!(net.to_string(), "2001:db8::/32");
        let mapped: IpNet = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.0.2.1/32");
    }

    #[test]
    fn rejects_bad_addresses() {
        assert!(matches!(
            "300.1.1.1".parse::<IpNet>(),
            Err(IndicatorError::InvalidIp { .. })
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<IpNet>(),
            Err(IndicatorError::PrefixTooLong {
                prefix: 33,
                max: 32
            })
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<IpNet>(),
            Err(IndicatorError::InvalidPrefix { .. })
        ));
        assert!("1.2.3.4:80".parse::<IpNet>().is_err());
    }

    #[test]
    fn normalises_domains() {
        assert_eq!(normalize_domain("Example.COM.").unwrap(), "example.com");
        assert_eq!(normalize_domain("*.evil.net").unwrap(), "evil.net");
        assert!(matches!(
            normalize_domain("already.normal"),
            Ok(Cow::Borrowed("already.normal"))
        ));
        assert!(normalize_domain("bad..name").is_err());
        assert!(normalize_domain("host/path").is_err());
        assert!(normalize_domain("").is_err());
        assert!(normalize_domain(&"a".repeat(64)).is_err());
        assert!(normalize_domain(&["abc"; 70].join(".")).is_err());
    }

    #[test]
    fn parses_sha256() {
        let text = "FFE88D3012C15A680A506F0382264EA763FF2D426BF4AD3CAF03111D47D9A80C";
        let digest = parse_sha256(text).unwrap();
        assert_eq!(digest[0], 0xff);
        assert_eq!(digest[31], 0x0c);
        assert!(parse_sha256(&text[1..]).is_err());
        assert!(parse_sha256(&text.replace('F', "g")).is_err());
    }
}
