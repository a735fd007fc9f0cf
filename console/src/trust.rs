//! "Add the remote address to a trusted list": which address or block a person may add from a
//! finding. Trusted lists silence network findings for their addresses (docs/DETECTION.md), so
//! what goes in is checked: an IP address or a CIDR block that contains the finding's remote
//! address, no wider than a /24 (IPv4) or a /64 (IPv6) unless the person confirms it.

use std::{fmt, net::IpAddr};

/// Widest IPv4 block added without confirmation.
pub const WIDEST_V4: u8 = 24;
/// Widest IPv6 block added without confirmation.
pub const WIDEST_V6: u8 = 64;

/// An address or block, written canonically (`203.0.113.9`, `203.0.113.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedNet {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length (32 or 128 for one address).
    pub prefix: u8,
}

impl TrustedNet {
    /// One address.
    pub fn single(addr: IpAddr) -> Self {
        let addr = canonical(addr);
        Self {
            addr,
            prefix: max_prefix(addr),
        }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask_v4(u32::from(a), self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => mask_v6(u128::from(a), self.prefix) == u128::from(n),
            _ => false,
        }
    }

    /// Wider than [`WIDEST_V4`] / [`WIDEST_V6`].
    pub fn is_wide(&self) -> bool {
        match self.addr {
            IpAddr::V4(_) => self.prefix < WIDEST_V4,
            IpAddr::V6(_) => self.prefix < WIDEST_V6,
        }
    }
}

impl fmt::Display for TrustedNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Why an address cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The finding has no remote address.
    #[error("this finding has no remote address to trust")]
    NoRemote,
    /// Not an address or a block.
    #[error("{0:?} is not an IP address or a CIDR block (203.0.113.9, 203.0.113.0/24)")]
    Unparsable(String),
    /// Host bits set in a block.
    #[error("{given} has bits set past the prefix; the block is {canonical}")]
    HostBits {
        /// As given.
        given: String,
        /// The block meant.
        canonical: String,
    },
    /// Does not contain the finding's address.
    #[error("{net} does not contain the finding's remote address {remote}")]
    Outside {
        /// The block.
        net: String,
        /// The finding's address.
        remote: String,
    },
    /// Wider than allowed without confirmation.
    #[error(
        "{0} is wider than a /{WIDEST_V4} (IPv4) or /{WIDEST_V6} (IPv6): tick \"I mean the whole block\" to add it"
    )]
    TooWide(String),
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn mask_v4(a: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask_v6(a: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(prefix)))
    }
}

/// Parses an address or a CIDR block as written.
pub fn parse(text: &str) -> Result<TrustedNet, TrustError> {
    let text = text.trim();
    let bad = || TrustError::Unparsable(text.chars().take(80).collect());
    let (addr, prefix) = match text.split_once('/') {
        None => {
            return text
                .parse::<IpAddr>()
                .map(TrustedNet::single)
                .map_err(|_| bad());
        }
        Some((a, p)) => (
            a.parse::<IpAddr>().map_err(|_| bad())?,
            p.parse::<u8>().map_err(|_| bad())?,
        ),
    };
    // An IPv4-mapped block is an IPv4 block.
    let (addr, prefix) = match (addr, canonical(addr)) {
        (IpAddr::V6(_), IpAddr::V4(v4)) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
        _ => (addr, prefix),
    };
    if prefix > max_prefix(addr) {
        return Err(bad());
    }
    let net = match addr {
        IpAddr::V4(a) => IpAddr::V4(mask_v4(u32::from(a), prefix).into()),
        IpAddr::V6(a) => IpAddr::V6(mask_v6(u128::from(a), prefix).into()),
    };
    let parsed = TrustedNet { addr: net, prefix };
    if net != addr {
        return Err(TrustError::HostBits {
            given: text.to_owned(),
            canonical: parsed.to_string(),
        });
    }
    Ok(parsed)
}

/// What a person may add from a finding whose remote address is `remote`: `wanted` (the form's
/// value; the remote address itself when empty), checked.
pub fn validate(
    remote: Option<&str>,
    wanted: Option<&str>,
    confirm_wide: bool,
) -> Result<TrustedNet, TrustError> {
    let remote = remote
        .and_then(|r| r.parse::<IpAddr>().ok())
        .ok_or(TrustError::NoRemote)?;
    let net = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        None => TrustedNet::single(remote),
        Some(w) => parse(w)?,
    };
    if !net.contains(remote) {
        return Err(TrustError::Outside {
            net: net.to_string(),
            remote: canonical(remote).to_string(),
        });
    }
    if net.is_wide() && !confirm_wide {
        return Err(TrustError::TooWide(net.to_string()));
    }
    Ok(net)
}

/// Whether a list's text (one address or block per line, `#` comments) already holds `net`
/// exactly.
pub fn listed(text: &str, net: &TrustedNet) -> bool {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .any(|l| parse(l).is_ok_and(|n| n == *net))
}

/// Entries of a list's text (lines that are not blank or comments).
pub fn entries(text: &str) -> u64 {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count() as u64
}

/// `text` with `net` appended on its own line, after a comment saying where it came from.
pub fn appended(text: &str, net: &TrustedNet, note: &str) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let note: String = note
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out.push_str(&format!("# {note}\n{net}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_or_a_narrow_block_containing_the_remote_is_accepted() {
        let r = Some("203.0.113.9");
        assert_eq!(validate(r, None, false).unwrap().to_string(), "203.0.113.9");
        assert_eq!(
            validate(r, Some(" "), false).unwrap().to_string(),
            "203.0.113.9"
        );
        assert_eq!(
            validate(r, Some("203.0.113.0/24"), false)
                .unwrap()
                .to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            validate(r, Some("203.0.113.8/30"), false)
                .unwrap()
                .to_string(),
            "203.0.113.8/30"
        );
        assert_eq!(
            validate(Some("::ffff:203.0.113.9"), None, false)
                .unwrap()
                .to_string(),
            "203.0.113.9"
        );
        assert_eq!(
            validate(Some("2001:db8::5"), Some("2001:db8::/64"), false)
                .unwrap()
                .to_string(),
            "2001:db8::/64"
        );
    }

    #[test]
    fn wide_blocks_need_confirmation_and_bad_input_is_named() {
        let r = Some("203.0.113.9");
        assert_eq!(
            validate(r, Some("203.0.0.0/16"), false),
            Err(TrustError::TooWide("203.0.0.0/16".into()))
        );
        assert_eq!(
            validate(r, Some("203.0.0.0/16"), true).unwrap().to_string(),
            "203.0.0.0/16"
        );
        assert!(matches!(
            validate(r, Some("0.0.0.0/0"), false),
            Err(TrustError::TooWide(_))
        ));
        assert!(matches!(
            validate(r, Some("203.0.113.9/24"), false),
            Err(TrustError::HostBits { canonical, .. }) if canonical == "203.0.113.0/24"
        ));
        assert!(matches!(
            validate(r, Some("198.51.100.7"), false),
            Err(TrustError::Outside { .. })
        ));
        assert!(matches!(
            validate(r, Some("evil.example"), false),
            Err(TrustError::Unparsable(_))
        ));
        assert!(matches!(
            validate(r, Some("203.0.113.0/33"), false),
            Err(TrustError::Unparsable(_))
        ));
        assert_eq!(validate(None, None, false), Err(TrustError::NoRemote));
        assert_eq!(
            validate(Some("not-an-ip"), None, false),
            Err(TrustError::NoRemote)
        );
        assert!(matches!(
            validate(Some("2001:db8::5"), Some("2001:db8::/48"), false),
            Err(TrustError::TooWide(_))
        ));
    }

    #[test]
    fn lists_are_appended_to_and_searched() {
        let net = parse("203.0.113.9").unwrap();
        let text = "# office\n198.51.100.0/24";
        assert!(!listed(text, &net));
        assert_eq!(entries(text), 1);
        let after = appended(text, &net, "finding f1\nsneaky");
        assert_eq!(
            after,
            "# office\n198.51.100.0/24\n# finding f1 sneaky\n203.0.113.9\n"
        );
        assert!(listed(&after, &net));
        assert_eq!(entries(&after), 2);
        assert_eq!(appended("", &net, "x"), "# x\n203.0.113.9\n");
    }
}
