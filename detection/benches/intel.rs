//! Threat-intel benchmarks: load time of about one million indicators, lookup cost per kind,
//! DGA scoring cost, and the agent's RSS with the default (built-in) intel loaded.
//!
//! Run: `cargo bench -p vigil-detection --bench intel`. Reads the curated lists from
//! `$VIGIL_SHARED_INTEL` or `<repo>/../shared/threat-intel`. Each figure is the median of
//! several rounds; lookups are also compared with a `std::collections::HashSet<String>` probe
//! (the obvious baseline) measured in the same process.

use std::{
    collections::HashSet,
    hint::black_box,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use vigil_detection::{
    DgaModel, FindingType, IndicatorKind, IntelConfig, ListFormat, ListSource, ThreatIntel,
    corpus::entries, indicator::parse_sha256, load,
};

fn shared_dir() -> PathBuf {
    std::env::var_os("VIGIL_SHARED_INTEL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/threat-intel"),
        PathBuf::from,
    )
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median nanoseconds per query of `f` over `queries`, over `rounds` rounds.
fn per_query<Q>(queries: &[Q], rounds: usize, mut f: impl FnMut(&Q) -> bool) -> (f64, usize) {
    let mut hits = 0;
    let samples = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            hits = queries.iter().filter(|q| f(black_box(q))).count();
            start.elapsed()
        })
        .collect();
    (
        median(samples).as_nanos() as f64 / queries.len() as f64,
        hits,
    )
}

fn main() -> Result<()> {
    let shared = shared_dir();
    if !shared.join("c2-domains.txt").is_file() {
        bail!(
            "the curated lists are missing: expected {}/c2-domains.txt (set VIGIL_SHARED_INTEL)",
            shared.display()
        );
    }

    // 1. RSS with the default intel, measured first in a fresh process.
    let rss_before = rss_kib();
    let start = Instant::now();
    let (builtin, report) = load(&IntelConfig::default())?;
    let builtin_load = start.elapsed();
    let rss_after = rss_kib();
    let (ips, domains, hashes) = builtin.distinct_indicators();
    println!("== default (built-in) intel");
    println!(
        "  lists {}, indicators: {ips} IP networks, {domains} domains, {hashes} SHA-256; malformed {}",
        builtin.lists().len(),
        report.malformed_total
    );
    println!(
        "  load (gunzip + parse + index): {:.1} ms",
        builtin_load.as_secs_f64() * 1e3
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "  RSS before {:.1} MiB, after {:.1} MiB (+{:.1} MiB)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after - before) as f64 / 1024.0
        );
    }
    let model = DgaModel::builtin()?;
    if let Some(after_model) = rss_kib() {
        println!(
            "  RSS with the DGA model too: {:.1} MiB",
            after_model as f64 / 1024.0
        );
    }
    drop(builtin);

    // 2. Loading about one million indicators from files.
    let big = IntelConfig {
        builtin: false,
        lists: vec![
            ListSource {
                name: "c2-domains".into(),
                path: shared.join("c2-domains.txt"),
                format: ListFormat::PlainText(IndicatorKind::Domain),
                feeds: vec![FindingType::BackdoorCcActivityBDns],
            },
            ListSource {
                name: "c2-ips".into(),
                path: shared.join("c2-ips.txt"),
                format: ListFormat::PlainText(IndicatorKind::Ip),
                feeds: vec![FindingType::BackdoorCcActivityB],
            },
        ],
        trusted_ips: vec![],
    };
    let mut samples = Vec::new();
    let mut total = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let (intel, report) = load(&big)?;
        samples.push(start.elapsed());
        total = intel.lists().iter().map(|l| l.indicators).sum::<usize>();
        if report.malformed_total != 0 {
            bail!("unexpected malformed lines: {:?}", report.malformed.first());
        }
        drop(black_box(intel));
    }
    let load_1m = median(samples);
    let domains_text = std::fs::read_to_string(shared.join("c2-domains.txt"))?;
    let mut baseline = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let set: HashSet<String> = entries(&domains_text)
            .into_iter()
            .map(|e| e.value.to_owned())
            .collect();
        baseline.push(start.elapsed());
        drop(black_box(set));
    }
    println!("\n== load c2-domains.txt + c2-ips.txt ({total} indicators, from page cache)");
    println!(
        "  median of 5: {:.0} ms ({:.0} ns/indicator)",
        load_1m.as_secs_f64() * 1e3,
        load_1m.as_nanos() as f64 / total as f64
    );
    println!(
        "  baseline HashSet<String> of the 947k domain lines (no validation, no IPs): {:.0} ms",
        median(baseline).as_secs_f64() * 1e3
    );

    // 3. Lookups against the full default deployment: built-in lists plus c2-domains.
    let mut full_config = IntelConfig::default();
    full_config.lists.push(big.lists[0].clone());
    let (intel, _) = load(&full_config)?;
    let c2_domains: Vec<&str> = entries(&domains_text)
        .into_iter()
        .step_by(9)
        .map(|e| e.value)
        .take(100_000)
        .collect();
    let sub_domains: Vec<String> = c2_domains.iter().map(|d| format!("www.{d}")).collect();
    let benign_text = std::fs::read_to_string(shared.join("benign-top-domains.txt"))
        .context("benign-top-domains.txt")?;
    let benign: Vec<String> = entries(&benign_text)
        .into_iter()
        .map(|e| format!("www.{}", e.value))
        .collect();
    let ips_text = std::fs::read_to_string(shared.join("c2-ips.txt"))?;
    let c2_ips: Vec<IpAddr> = entries(&ips_text)
        .into_iter()
        .filter_map(|e| e.value.parse().ok())
        .step_by(2)
        .take(50_000)
        .collect();
    // A fixed linear congruential sequence: reproducible, spread over the whole space.
    let mut x = 0x2545_f491_u32;
    let random_v4: Vec<IpAddr> = (0..100_000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            IpAddr::V4(Ipv4Addr::from(x))
        })
        .collect();
    let random_v6: Vec<IpAddr> = random_v4
        .iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => IpAddr::V6(Ipv6Addr::from(
                0x2a00_0000_0000_0000_0000_0000_0000_0000u128 | u128::from(u32::from(*v4)) << 32,
            )),
            v6 => *v6,
        })
        .collect();
    let sha_text = std::fs::read_to_string(shared.join("malware-sha256.txt"))?;
    let sha_hits: Vec<[u8; 32]> = entries(&sha_text)
        .into_iter()
        .filter_map(|e| parse_sha256(e.value).ok())
        .collect();
    let sha_misses: Vec<[u8; 32]> = sha_hits
        .iter()
        .map(|h| {
            let mut m = *h;
            m[31] ^= 0x5a;
            m
        })
        .collect();
    let std_set: HashSet<&str> = entries(&domains_text)
        .into_iter()
        .map(|e| e.value)
        .collect();

    let rounds = 7;
    println!("\n== lookups (built-in lists + c2-domains; ns per query, median of {rounds})");
    let rows: Vec<(&str, (f64, usize), usize)> = vec![
        (
            "domain, listed (exact)",
            per_query(&c2_domains, rounds, |d| !intel.lookup_domain(d).is_empty()),
            c2_domains.len(),
        ),
        (
            "domain, subdomain of listed (www.)",
            per_query(&sub_domains, rounds, |d| !intel.lookup_domain(d).is_empty()),
            sub_domains.len(),
        ),
        (
            "domain, benign www.<top-100k> (miss)",
            per_query(&benign, rounds, |d| !intel.lookup_domain(d).is_empty()),
            benign.len(),
        ),
        (
            "baseline std HashSet<&str>::contains, listed",
            per_query(&c2_domains, rounds, |d| std_set.contains(d)),
            c2_domains.len(),
        ),
        (
            "IPv4, listed",
            per_query(&c2_ips, rounds, |ip| !intel.lookup_ip(*ip).is_empty()),
            c2_ips.len(),
        ),
        (
            "IPv4, random (mostly miss)",
            per_query(&random_v4, rounds, |ip| !intel.lookup_ip(*ip).is_empty()),
            random_v4.len(),
        ),
        (
            "IPv6, random (miss)",
            per_query(&random_v6, rounds, |ip| !intel.lookup_ip(*ip).is_empty()),
            random_v6.len(),
        ),
        (
            "is_trusted_ip (no trusted lists)",
            per_query(&random_v4, rounds, |ip| intel.is_trusted_ip(*ip)),
            random_v4.len(),
        ),
        (
            "SHA-256, listed",
            per_query(&sha_hits, rounds, |h| !intel.lookup_sha256(h).is_empty()),
            sha_hits.len(),
        ),
        (
            "SHA-256, miss",
            per_query(&sha_misses, rounds, |h| !intel.lookup_sha256(h).is_empty()),
            sha_misses.len(),
        ),
        (
            "DGA is_dga, benign www.<top-100k>",
            per_query(&benign, rounds, |d| model.is_dga(d)),
            benign.len(),
        ),
    ];
    for (name, (ns, hits), n) in &rows {
        println!("  {name:<46} {ns:>7.1} ns   ({hits} of {n} matched)");
    }
    if let (Some((_, (ours, _), _)), Some((_, (std_ns, _), _))) = (rows.first(), rows.get(3)) {
        println!(
            "  exact-domain lookup vs std HashSet: {:.2}x",
            ours / std_ns
        );
    }
    drop(black_box(ThreatIntel::empty()));
    Ok(())
}
