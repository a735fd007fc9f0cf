//! Threat-intel benchmarks: the memory and load time of the default (built-in) intel, load time
//! of about one million indicators, lookup cost per kind, DGA scoring cost.
//!
//! Run: `cargo bench -p vigil-detection --bench intel`. Reads the curated lists from
//! `$VIGIL_SHARED_INTEL` or `<repo>/../shared/threat-intel` when they are there; without them
//! it measures the built-in lists alone (`detection/data/*.txt.gz`), says so, and skips what
//! needs `c2-domains.txt` and `benign-top-domains.txt`. Each figure is the median of several
//! rounds; lookups are also compared with a `std::collections::HashSet<&str>` probe (the
//! obvious baseline) measured in the same process.

use std::{
    collections::HashSet,
    hint::black_box,
    io::Read,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use flate2::read::GzDecoder;
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

/// A list's text: the curated file when the shared folder is there, else the built-in copy.
fn read_list(shared: Option<&Path>, file: &str) -> Result<String> {
    if let Some(dir) = shared {
        let path = dir.join(file);
        return std::fs::read_to_string(&path).with_context(|| path.display().to_string());
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(format!("{file}.gz"));
    let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
    let mut text = String::new();
    GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .with_context(|| path.display().to_string())?;
    Ok(text)
}

/// Fields of `/proc/self/status` in KiB: resident (all, anonymous, file-backed) and peak.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    peak: u64,
}

fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss: field("VmRSS:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
        peak: field("VmHWM:"),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
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
    let shared_path = shared_dir();
    let shared = shared_path
        .join("c2-domains.txt")
        .is_file()
        .then_some(shared_path.as_path());
    if shared.is_none() {
        println!(
            "(no curated lists at {}: built-in lists only; set VIGIL_SHARED_INTEL for the rest)",
            shared_path.display()
        );
    }

    // 1. The default intel in a fresh process: memory first, then load time.
    let before = memory();
    let start = Instant::now();
    let (builtin, report) = load(&IntelConfig::default())?;
    let first_load = start.elapsed();
    let after = memory();
    let (ips, domains, hashes) = builtin.distinct_indicators();
    println!("== default (built-in) intel");
    println!(
        "  lists {}, indicators: {ips} IP networks, {domains} domains, {hashes} SHA-256; malformed {}",
        builtin.lists().len(),
        report.malformed_total
    );
    println!(
        "  snapshot heap (ThreatIntel::heap_bytes): {:.1} MiB",
        builtin.heap_bytes() as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  RSS before {:.1} MiB, after {:.1} MiB (+{:.1} MiB: anonymous +{:.1}, file-backed +{:.1}); peak during the load +{:.1} MiB",
        mib(before.rss),
        mib(after.rss),
        mib(after.rss.saturating_sub(before.rss)),
        mib(after.anon.saturating_sub(before.anon)),
        mib(after.file.saturating_sub(before.file)),
        mib(after.peak.saturating_sub(before.rss)),
    );
    let model = DgaModel::builtin()?;
    println!("  RSS with the DGA model too: {:.1} MiB", mib(memory().rss));
    drop(builtin);
    let mut samples = vec![first_load];
    for _ in 0..4 {
        let start = Instant::now();
        let (intel, _) = load(&IntelConfig::default())?;
        samples.push(start.elapsed());
        drop(black_box(intel));
    }
    println!(
        "  load (gunzip + parse + index), median of 5: {:.1} ms",
        median(samples).as_secs_f64() * 1e3
    );

    // 2. Loading about one million indicators from files.
    let big = shared.map(|dir| IntelConfig {
        builtin: false,
        lists: vec![
            ListSource {
                name: "c2-domains".into(),
                path: dir.join("c2-domains.txt"),
                format: ListFormat::PlainText(IndicatorKind::Domain),
                feeds: vec![FindingType::BackdoorCcActivityBDns],
            },
            ListSource {
                name: "c2-ips".into(),
                path: dir.join("c2-ips.txt"),
                format: ListFormat::PlainText(IndicatorKind::Ip),
                feeds: vec![FindingType::BackdoorCcActivityB],
            },
        ],
        trusted_ips: vec![],
    });
    let domains_text = match shared {
        Some(_) => read_list(shared, "c2-domains.txt")?,
        None => read_list(None, "phishing-domains.txt")? + &read_list(None, "malware-domains.txt")?,
    };
    if let Some(big) = &big {
        let mut samples = Vec::new();
        let mut total = 0;
        for _ in 0..5 {
            let start = Instant::now();
            let (intel, report) = load(big)?;
            samples.push(start.elapsed());
            total = intel.lists().iter().map(|l| l.indicators).sum::<usize>();
            if report.malformed_total != 0 {
                bail!("unexpected malformed lines: {:?}", report.malformed.first());
            }
            drop(black_box(intel));
        }
        let load_1m = median(samples);
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
    } else {
        println!("\n== load of c2-domains.txt + c2-ips.txt: skipped (no curated lists)");
    }

    // 3. Lookups against the full default deployment: built-in lists plus c2-domains (the
    //    built-in lists alone without the curated folder).
    let mut full_config = IntelConfig::default();
    if let Some(big) = &big {
        full_config.lists.push(big.lists[0].clone());
    }
    let (intel, _) = load(&full_config)?;
    let listed: Vec<&str> = entries(&domains_text)
        .into_iter()
        .step_by(9)
        .map(|e| e.value)
        .take(100_000)
        .collect();
    let sub_domains: Vec<String> = listed.iter().map(|d| format!("www.{d}")).collect();
    let benign: Vec<String> = match shared {
        Some(_) => entries(&read_list(shared, "benign-top-domains.txt")?)
            .into_iter()
            .map(|e| format!("www.{}", e.value))
            .collect(),
        // Without the curated benign list: listed names under an unlisted label, so every
        // probe of the parent walk runs and misses.
        None => listed
            .iter()
            .map(|d| format!("www.{}x", d.replace('.', "-")) + ".com")
            .collect(),
    };
    let ips_text = read_list(shared, "c2-ips.txt")?;
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
    let sha_text = read_list(shared, "malware-sha256.txt")?;
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
    let (deployment, benign_label) = match shared {
        Some(_) => (
            "built-in lists + c2-domains",
            "domain, benign www.<top-100k> (miss)",
        ),
        None => ("built-in lists", "domain, unlisted www.<name>x.com (miss)"),
    };
    println!("\n== lookups ({deployment}; ns per query, median of {rounds})");
    let rows: Vec<(&str, (f64, usize), usize)> = vec![
        (
            "domain, listed (exact)",
            per_query(&listed, rounds, |d| !intel.lookup_domain(d).is_empty()),
            listed.len(),
        ),
        (
            "domain, subdomain of listed (www.)",
            per_query(&sub_domains, rounds, |d| !intel.lookup_domain(d).is_empty()),
            sub_domains.len(),
        ),
        (
            benign_label,
            per_query(&benign, rounds, |d| !intel.lookup_domain(d).is_empty()),
            benign.len(),
        ),
        (
            "baseline std HashSet<&str>::contains, listed",
            per_query(&listed, rounds, |d| std_set.contains(d)),
            listed.len(),
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
            "DGA is_dga, the miss names above",
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
