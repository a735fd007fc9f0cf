//! `vigil-bench`: what the agent costs, measured against the same workload without it.
//!
//! Each workload runs in rounds that alternate untraced and traced (the agent running as a
//! separate process, printing JSON to /dev/null), so drift on a shared machine hits both sides;
//! the figures are medians and the slowdown is their ratio. It also reports the agent's CPU per
//! 1,000 events, its peak RSS and every dropped record. Run as root, from a release build:
//!
//!   cargo build --release -p node-agent --bins && target/release/vigil-bench all
//!
//! Loopback only. No assertion is made on the numbers: they are printed for docs/PERFORMANCE.md.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use node_agent::{collector::Collector, sensor::SensorOptions};
use node_agent_common::stats::Hook;

const USAGE: &str = "usage: vigil-bench <exec|connect|files|memory|latency|ring|build|hostile|all> [--rounds N] [--seconds S] [--workers 1,2,4,...] [--agent-arg ARG]...";

struct Settings {
    rounds: usize,
    seconds: u64,
    bin_dir: PathBuf,
    /// Extra arguments for the agent (a sensitive-path file for the file benchmarks).
    agent_args: Vec<String>,
    /// Parallel workloads of the exec and connect storms, one figure each: how the cost grows
    /// with the number of CPUs busy. By default 1, 2, 4, ... up to the core count.
    workers: Vec<u32>,
}

/// 1, 2, 4, ... up to `cores`, and `cores` itself when it is not a power of two.
fn default_workers(cores: u32) -> Vec<u32> {
    let cores = cores.max(1);
    let mut counts: Vec<u32> = std::iter::successors(Some(1u32), |n| n.checked_mul(2))
        .take_while(|&n| n <= cores)
        .collect();
    if counts.last() != Some(&cores) {
        counts.push(cores);
    }
    counts
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(what) = args.first().cloned() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let mut settings = Settings {
        rounds: 5,
        seconds: 5,
        bin_dir: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(".")),
        agent_args: Vec::new(),
        workers: default_workers(
            std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
        ),
    };
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let raw = rest.next();
        if let ("--agent-arg", Some(arg)) = (flag.as_str(), raw) {
            // Extra agent arguments, for breakdowns (`--agent-arg --no-detection`).
            settings.agent_args.push(arg.clone());
            continue;
        }
        if let ("--workers", Some(list)) = (flag.as_str(), raw) {
            let parsed: Result<Vec<u32>, _> = list.split(',').map(str::parse).collect();
            match parsed {
                Ok(w) if !w.is_empty() && w.iter().all(|&n| n > 0) => settings.workers = w,
                _ => {
                    eprintln!("vigil-bench: --workers {list}: want counts like 1,2,4\n{USAGE}");
                    return ExitCode::FAILURE;
                }
            }
            continue;
        }
        let value = raw.and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--rounds", Some(v)) => settings.rounds = v.max(1) as usize,
            ("--seconds", Some(v)) => settings.seconds = v.max(1),
            _ => {
                eprintln!("vigil-bench: bad argument {flag}\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("vigil-bench: needs root (it loads the agent's eBPF programs)");
        return ExitCode::FAILURE;
    }
    let result = match what.as_str() {
        "exec" => exec(&settings),
        "connect" => connect(&settings),
        "files" => files(&settings),
        "memory" => memory(&settings),
        "latency" => latency(&settings),
        "ring" => ring(&settings),
        "build" => build(&settings),
        "hostile" => hostile(&settings),
        "all" => exec(&settings)
            .and_then(|()| connect(&settings))
            .and_then(|()| files(&settings))
            .and_then(|()| memory(&settings))
            .and_then(|()| latency(&settings))
            .and_then(|()| ring(&settings))
            .and_then(|()| build(&settings)),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The agent as a separate process.
struct Agent {
    child: Child,
    stderr: Option<JoinHandle<Vec<String>>>,
    /// CPU seconds spent starting up (loading programs, intel, seeding): not per-event cost.
    startup_cpu: f64,
}

/// What the agent said and used over one traced run.
#[derive(Default, Clone, Copy)]
struct AgentUse {
    cpu_seconds: f64,
    peak_rss_kib: u64,
    records: u64,
    /// Repeats the kernel counted instead of sending (`--repeat-window-ms`).
    folded: u64,
    dropped: u64,
    /// Bytes held by the agent's bounded tables at the end, and entries they shed.
    tracked_bytes: u64,
    tracked_shed: u64,
}

impl Agent {
    fn start(settings: &Settings) -> Result<Self, String> {
        let mut child = Command::new(settings.bin_dir.join("node-agent"))
            .args(["run", "--format", "json", "--health-json"])
            .args(&settings.agent_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting node-agent: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut active = 0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // One "sensor" line per hook, whatever its state, once start-up is over.
                if line.contains(" sensor ") && line.contains("hook=") {
                    active += 1;
                    if active == Hook::ALL.len() {
                        let _ = ready_tx.send(());
                    }
                }
                lines.push(line);
            }
            lines
        });
        ready_rx
            // Loading and verifying the programs takes seconds, and much longer on a machine
            // busy with builds.
            .recv_timeout(Duration::from_secs(120))
            .map_err(|_| "node-agent did not report its hooks within 120 s".to_owned())?;
        let (startup_cpu, _) = proc_usage(child.id())?;
        Ok(Self {
            child,
            stderr: Some(reader),
            startup_cpu,
        })
    }

    fn stop(mut self) -> Result<AgentUse, String> {
        let pid = self.child.id();
        let (cpu_seconds, peak_rss_kib) = proc_usage(pid)?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        self.child.wait().map_err(|e| e.to_string())?;
        let lines = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let health = lines
            .iter()
            .rev()
            .find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .filter(|v| v.get("pipeline").is_some())
            })
            .ok_or("node-agent printed no health summary")?;
        report_rings_and_drops(&health);
        Ok(AgentUse {
            cpu_seconds: (cpu_seconds - self.startup_cpu).max(0.0),
            peak_rss_kib,
            records: health["pipeline"]["records"].as_u64().unwrap_or(0),
            folded: health["counters"]
                .as_array()
                .map(|lines| lines.iter().filter_map(|l| l["folded"].as_u64()).sum())
                .unwrap_or(0),
            dropped: health["dropped"].as_u64().unwrap_or(0),
            tracked_bytes: sum_tracked(&health, "bytes"),
            tracked_shed: sum_tracked(&health, "shed"),
        })
    }
}

/// On stderr, when the agent wrote to several ring buffers or dropped records: how many rings,
/// what their merge held back or let out of order, and which hooks dropped.
fn report_rings_and_drops(health: &serde_json::Value) {
    let rings = health["host"]["rings"].as_u64().unwrap_or(1);
    if rings > 1 {
        let merge = &health["ringMerge"];
        eprintln!(
            "  agent: {rings} ring buffers; merge held {} records for a later drain, {} late, {} forced",
            merge["held"], merge["late"], merge["forced"]
        );
    }
    let dropped: Vec<String> = health["counters"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter(|l| l["dropped"].as_u64().unwrap_or(0) > 0)
                .map(|l| format!("{} {}", l["hook"].as_str().unwrap_or("?"), l["dropped"]))
                .collect()
        })
        .unwrap_or_default();
    if !dropped.is_empty() {
        eprintln!("  agent: dropped by hook: {}", dropped.join(", "));
    }
}

/// `field` summed over the health summary's tracked tables.
fn sum_tracked(health: &serde_json::Value, field: &str) -> u64 {
    health["tracked"]
        .as_array()
        .map(|tables| tables.iter().filter_map(|t| t[field].as_u64()).sum())
        .unwrap_or(0)
}

/// The hostile workloads of issue 12, each against an agent of its own (detection on, default
/// intel): the agent's RSS after start-up and its peak while the workload ran, and what its
/// bounded tables held and shed. The bounds themselves are asserted by `tests/hostile.rs`.
fn hostile(settings: &Settings) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("vigil-bench-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let d = dir.to_string_lossy().into_owned();
    let workloads: [(&str, Vec<&str>); 5] = [
        (
            "argv flood: 20,000 execs of /bin/true with 1,000 arguments",
            vec!["argv-flood", "20000", "1000"],
        ),
        ("pid churn: 50,000 forks", vec!["fork-churn", "50000"]),
        (
            "DNS flood: 60,000 queries for distinct 246-byte names, each answered",
            vec!["dns-flood", "60000"],
        ),
        (
            "file-creation flood: 70,000 files",
            vec!["file-flood", &d, "70000"],
        ),
        (
            "huge executables: 20 files of 100 MiB",
            vec!["huge-exec", &d, "100", "20"],
        ),
    ];
    let mut result = Ok(());
    for (label, args) in workloads {
        let agent = Agent::start(settings)?;
        let start_rss = rss_kib(agent.child.id());
        let out = Command::new(settings.bin_dir.join("vigil-trigger"))
            .args(&args)
            .output()
            .map_err(|e| format!("vigil-trigger: {e}"));
        let used = agent.stop()?;
        match out {
            Ok(o) if o.status.success() => println!(
                "{label}: RSS {:.1} MiB after start-up, peak {:.1} MiB; tracked tables {:.1} MiB at the end, {} entries shed; {} records, {} dropped",
                start_rss as f64 / 1024.0,
                used.peak_rss_kib as f64 / 1024.0,
                used.tracked_bytes as f64 / 1048576.0,
                used.tracked_shed,
                used.records,
                used.dropped
            ),
            Ok(o) => {
                result = Err(format!(
                    "vigil-trigger {args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
                break;
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Resident memory of a process now (KiB), 0 when it cannot be read.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) and peak RSS of a process.
fn proc_usage(pid: u32) -> Result<(f64, u64), String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let after_comm = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .ok_or("bad /proc stat")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Ok((ticks as f64 / hz, hwm))
}

/// Resident memory of a process from `/proc/PID/status`, in KiB.
struct Resident {
    rss: u64,
    anon: u64,
    file: u64,
}

fn proc_memory(pid: u32) -> Result<Resident, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Resident {
        rss: field("VmRSS:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Runs `workload` untraced and traced, alternating, prints the comparison and returns the
/// slowdown (untraced median / traced median).
fn compare(
    settings: &Settings,
    name: &str,
    unit: &str,
    mut workload: impl FnMut() -> Result<f64, String>,
) -> Result<f64, String> {
    let mut plain = Vec::new();
    let mut traced = Vec::new();
    let mut uses = Vec::new();
    for round in 0..settings.rounds {
        // ABBA order, so slow drift of the machine hits both sides alike.
        let traced_first = round % 2 == 1;
        for traced_now in [traced_first, !traced_first] {
            if traced_now {
                let agent = Agent::start(settings)?;
                let rate = workload();
                let used = agent.stop()?;
                traced.push(rate?);
                uses.push(used);
            } else {
                plain.push(workload()?);
            }
        }
    }
    let p = median(&mut plain.clone());
    let t = median(&mut traced.clone());
    let records: u64 = uses.iter().map(|u| u.records).sum();
    let folded: u64 = uses.iter().map(|u| u.folded).sum();
    // Per event seen: a repeat counted in the kernel was an event too, if a cheap one.
    let events = records + folded;
    let cpu: f64 = uses.iter().map(|u| u.cpu_seconds).sum();
    let dropped: u64 = uses.iter().map(|u| u.dropped).sum();
    let rss = uses.iter().map(|u| u.peak_rss_kib).max().unwrap_or(0);
    let slowdown = if t > 0.0 { p / t } else { f64::INFINITY };
    println!(
        "{name}: untraced {p:.0} {unit} (runs {}), traced {t:.0} {unit} (runs {}), slowdown {:.3}x; \
         agent: {records} records, {folded} repeats counted in the kernel, {dropped} dropped, \
         {:.3} ms CPU per 1000 events, peak RSS {:.1} MiB",
        fmt_runs(&plain),
        fmt_runs(&traced),
        slowdown,
        if events > 0 {
            cpu * 1000.0 / (events as f64 / 1000.0)
        } else {
            0.0
        },
        rss as f64 / 1024.0
    );
    Ok(slowdown)
}

/// One line with the slowdown at each worker count and how far the largest count is from the
/// 2-worker figure (the flatness target of issue 15: within 0.05 on a 16-core machine).
fn print_sweep(name: &str, sweep: &[(u32, f64)]) {
    if sweep.len() < 2 {
        return;
    }
    let figures: Vec<String> = sweep
        .iter()
        .map(|(workers, slowdown)| format!("{workers}: {slowdown:.3}x"))
        .collect();
    let two = sweep.iter().find(|(w, _)| *w == 2).map(|(_, s)| *s);
    let most = sweep.iter().max_by_key(|(w, _)| *w).copied();
    let against_two = match (two, most) {
        (Some(two), Some((workers, slowdown))) if workers > 2 => {
            format!(
                "; at {workers} workers {:+.3} against 2 workers",
                slowdown - two
            )
        }
        _ => String::new(),
    };
    println!(
        "{name} slowdown per worker count: {}{against_two}",
        figures.join(", ")
    );
}

fn fmt_runs(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn trigger_rate(settings: &Settings, args: &[&str]) -> Result<f64, String> {
    let out = Command::new(settings.bin_dir.join("vigil-trigger"))
        .args(args)
        .output()
        .map_err(|e| format!("vigil-trigger: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "vigil-trigger {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("vigil-trigger output: {e}"))
}

fn exec(settings: &Settings) -> Result<(), String> {
    let seconds = settings.seconds.to_string();
    let mut sweep = Vec::new();
    for &workers in &settings.workers {
        let count = workers.to_string();
        let slowdown = compare(
            settings,
            &format!("exec storm, {workers} worker(s)"),
            "exec/s",
            || trigger_rate(settings, &["exec-storm", &seconds, &count]),
        )?;
        sweep.push((workers, slowdown));
    }
    print_sweep("exec storm", &sweep);
    Ok(())
}

/// `workers` copies of a trigger run at once; their rates summed.
fn parallel_rate(settings: &Settings, workers: u32, args: &[&str]) -> Result<f64, String> {
    let children: Vec<Child> = (0..workers)
        .map(|_| {
            Command::new(settings.bin_dir.join("vigil-trigger"))
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("vigil-trigger: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut total = 0.0;
    for child in children {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("vigil-trigger: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "vigil-trigger {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        total += String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .map_err(|e| format!("vigil-trigger output: {e}"))?;
    }
    Ok(total)
}

fn connect(settings: &Settings) -> Result<(), String> {
    // The listener is a process of its own (std's backlog of 128 overflows under the storm,
    // and both sides of the storm are then traced, as on a real host).
    let seconds = settings.seconds.to_string();
    let listen_for =
        (settings.workers.len() as u64 * settings.rounds as u64 * 2 * (settings.seconds + 30))
            .to_string();
    let mut listener = Command::new(settings.bin_dir.join("vigil-trigger"))
        .args(["listen", "127.0.0.1:0", &listen_for])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("vigil-trigger listen: {e}"))?;
    let mut first = String::new();
    BufReader::new(listener.stdout.take().ok_or("no stdout")?)
        .read_line(&mut first)
        .map_err(|e| e.to_string())?;
    let addr = first.trim().to_owned();
    let mut result = Ok(());
    let mut sweep = Vec::new();
    for &workers in &settings.workers {
        match compare(
            settings,
            &format!("loopback TCP connect storm, {workers} client(s)"),
            "connect/s",
            || parallel_rate(settings, workers, &["connect-storm", &addr, &seconds]),
        ) {
            Ok(slowdown) => sweep.push((workers, slowdown)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    print_sweep("loopback TCP connect storm", &sweep);
    let _ = listener.kill();
    let _ = listener.wait();
    result
}

/// File storms: read-only opens (filtered at the first test in the kernel), writes outside the
/// sensitive set (remembered for written-then-executed, not reported), and writes inside it
/// (every one reported).
fn files(settings: &Settings) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("vigil-bench-files-{}", std::process::id()));
    let inside = dir.join("watched");
    let outside = dir.join("plain");
    for d in [&inside, &outside] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let config = dir.join("sensitive.yaml");
    std::fs::write(
        &config,
        format!(
            "entries:\n  - pattern: {}/\n    match: prefix\n    category: persistence\n",
            inside.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let with_set = Settings {
        rounds: settings.rounds,
        seconds: settings.seconds,
        bin_dir: settings.bin_dir.clone(),
        agent_args: vec!["--sensitive-paths".into(), config.display().to_string()],
        workers: settings.workers.clone(),
    };
    let seconds = settings.seconds.to_string();
    compare(&with_set, "read-only open storm", "opens/s", || {
        trigger_rate(settings, &["open-storm", &seconds])
    })?;
    let outside_dir = outside.display().to_string();
    compare(
        &with_set,
        "write storm outside the sensitive set",
        "opens/s",
        || trigger_rate(settings, &["write-storm", &outside_dir, &seconds]),
    )?;
    let inside_dir = inside.display().to_string();
    compare(
        &with_set,
        "write storm inside the sensitive set",
        "opens/s",
        || trigger_rate(settings, &["write-storm", &inside_dir, &seconds]),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The agent's memory: resident set after start-up and a short exec storm, and its peak, with
/// detection (default intel loaded) and without.
fn memory(settings: &Settings) -> Result<(), String> {
    for (label, args) in [
        ("sensors + detection with default intel", vec![]),
        (
            "sensors only (--no-detection)",
            vec!["--no-detection".to_owned()],
        ),
    ] {
        let with = Settings {
            rounds: 1,
            seconds: settings.seconds,
            bin_dir: settings.bin_dir.clone(),
            agent_args: settings.agent_args.iter().cloned().chain(args).collect(),
            workers: settings.workers.clone(),
        };
        let agent = Agent::start(&with)?;
        // The hooks are logged just before the process table is seeded and the free heap
        // handed back: let that finish.
        std::thread::sleep(Duration::from_millis(500));
        let started = proc_memory(agent.child.id())?;
        trigger_rate(
            settings,
            &["exec-storm", &settings.seconds.to_string(), "1"],
        )?;
        let stormed = proc_memory(agent.child.id())?;
        let used = agent.stop()?;
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "memory, {label}: after start-up RSS {:.1} MiB (anonymous {:.1}, file-backed {:.1}); \
             after a {}s exec storm RSS {:.1} MiB (anonymous {:.1}, file-backed {:.1}: binary \
             pages and the ring buffer, which is mapped twice); peak (VmHWM) {:.1} MiB",
            mib(started.rss),
            mib(started.anon),
            mib(started.file),
            settings.seconds,
            mib(stormed.rss),
            mib(stormed.anon),
            mib(stormed.file),
            mib(used.peak_rss_kib)
        );
    }
    Ok(())
}

/// From a behaviour to its finding: the bench copies `/bin/true` to a new path and runs it (a
/// NewBinaryExecuted finding, new for every path; the agent gets a rules file that turns the
/// type on for the host, where it is off by default), and times from just before the spawn to
/// the moment the agent prints the finding (`--findings-only`). The agent prints a finding once
/// detection has made it and put it in the store's batch, which is written to the database
/// within `store::FLUSH_AFTER` plus one reader poll.
fn latency(settings: &Settings) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("vigil-bench-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join("findings.db");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).map_err(|e| e.to_string())?;
    std::fs::write(
        rules.join("host-new-files.yaml"),
        "behaviour:\n  hostNewFiles: medium\n",
    )
    .map_err(|e| e.to_string())?;
    let mut child = Command::new(settings.bin_dir.join("node-agent"))
        .args(["run", "--findings-only", "--format", "json", "--db"])
        .arg(&db)
        .arg("--rules-dir")
        .arg(&rules)
        .args(&settings.agent_args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting node-agent: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut hooks = 0;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(" sensor ") && line.contains("hook=") {
                hooks += 1;
                if hooks == Hook::ALL.len() {
                    let _ = ready_tx.send(());
                }
            }
        }
    });
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (seen_tx, seen_rx) = mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(finding) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if finding["type"] == "Execution:Runtime/NewBinaryExecuted" {
                let path = finding["context"]["filePath"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let _ = seen_tx.send((path, Instant::now()));
            }
        }
    });
    let result = (|| {
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "node-agent did not report its hooks within 60 s".to_owned())?;
        let samples = (settings.rounds * 40).max(20);
        let mut latencies = Vec::with_capacity(samples);
        for i in 0..samples {
            let bin = dir.join(format!("new-binary-{i}"));
            let cp = Command::new("cp")
                .arg("/bin/true")
                .arg(&bin)
                .status()
                .map_err(|e| e.to_string())?;
            if !cp.success() {
                return Err("cp failed".to_owned());
            }
            let started = Instant::now();
            Command::new(&bin).status().map_err(|e| e.to_string())?;
            let wanted = bin.display().to_string();
            loop {
                let (path, at) = seen_rx
                    .recv_timeout(Duration::from_secs(10))
                    .map_err(|_| format!("no finding for {wanted} within 10 s"))?;
                if path == wanted {
                    latencies.push(at.duration_since(started).as_secs_f64() * 1000.0);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        latencies.sort_by(f64::total_cmp);
        let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        println!(
            "latency, behaviour to printed finding ({} NewBinaryExecuted findings): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            pick(0.50),
            pick(0.99),
            latencies[latencies.len() - 1]
        );
        Ok(())
    })();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Kernel to user space: the synthetic program emits bursts of 128-byte records on each
/// `getpgid` of this process while the in-process reader drains them.
/// Runs with the agent's batched wake-ups, then with a wake-up per record for comparison.
fn ring(settings: &Settings) -> Result<(), String> {
    for wakeup_bytes in [SensorOptions::default().wakeup_bytes, 0] {
        println!("ring buffer, wake-up after {wakeup_bytes} bytes waiting (0: every record):");
        ring_with(settings, wakeup_bytes)?;
    }
    Ok(())
}

/// The ring count given to the agent (`--agent-arg --rings=N`), for the in-process benchmarks.
fn agent_rings(settings: &Settings) -> Result<Option<u32>, String> {
    let mut args = settings.agent_args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--rings") {
            Some("") => args.next().map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => continue,
        };
        return value
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("--agent-arg {arg}: want --rings=N"));
    }
    Ok(None)
}

fn ring_with(settings: &Settings, wakeup_bytes: u32) -> Result<(), String> {
    let options = SensorOptions {
        synthetic: true,
        wakeup_bytes,
        rings: agent_rings(settings)?,
        disabled: Hook::ALL.iter().map(|h| h.name().to_owned()).collect(),
        ..SensorOptions::default()
    };
    let agent = Collector::start(options).map_err(|e| e.to_string())?;
    println!("  {} ring buffer(s)", agent.rings());
    for round in 0..settings.rounds {
        let base_delivered = agent.stats().synthetic;
        let base = counters(&agent);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(settings.seconds);
        let mut calls: u64 = 0;
        while Instant::now() < deadline {
            // SAFETY: getpgid(0) has no preconditions.
            unsafe { libc::getpgid(0) };
            calls += 1;
        }
        let produce_secs = started.elapsed().as_secs_f64();
        // Let the reader catch up with what was sent.
        let (sent, dropped) = loop {
            let (sent, dropped) = counters(&agent);
            if agent.stats().synthetic - base_delivered >= sent - base.0
                || started.elapsed() > Duration::from_secs(settings.seconds + 10)
            {
                break (sent - base.0, dropped - base.1);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let delivered = agent.stats().synthetic - base_delivered;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  round {}: {calls} bursts in {produce_secs:.2}s, {sent} records sent, {delivered} delivered in {secs:.2}s = {:.0} records/s, {dropped} dropped ({:.2}%)",
            round + 1,
            delivered as f64 / secs,
            100.0 * dropped as f64 / (sent + dropped).max(1) as f64
        );
    }
    Ok(())
}

fn counters(agent: &Collector) -> (u64, u64) {
    agent
        .counters()
        .into_iter()
        .find(|(hook, _)| *hook == Hook::Synthetic)
        .map(|(_, c)| (c.sent, c.dropped))
        .unwrap_or((0, 0))
}

/// A real workload: a clean `cargo build` of a small crate graph (node-agent-common with its
/// user-space dependencies), offline.
fn build(settings: &Settings) -> Result<(), String> {
    let workspace = settings
        .bin_dir
        .ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .ok_or("run from the workspace's target directory")?
        .to_path_buf();
    let target = std::env::temp_dir().join("vigil-bench-build");
    let quick = Settings {
        rounds: settings.rounds.min(3),
        seconds: settings.seconds,
        bin_dir: settings.bin_dir.clone(),
        agent_args: Vec::new(),
        workers: settings.workers.clone(),
    };
    compare(&quick, "clean cargo build", "builds/hour", || {
        let _ = std::fs::remove_dir_all(&target);
        let started = Instant::now();
        let status = Command::new("cargo")
            .args([
                "build",
                "--offline",
                "-q",
                "-p",
                "node-agent-common",
                "--features",
                "user",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(&workspace)
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !status.success() {
            return Err("cargo build failed".into());
        }
        Ok(3600.0 / started.elapsed().as_secs_f64())
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::default_workers;

    #[test]
    fn workers_double_up_to_the_core_count_and_end_on_it() {
        assert_eq!(default_workers(0), vec![1]);
        assert_eq!(default_workers(1), vec![1]);
        assert_eq!(default_workers(2), vec![1, 2]);
        assert_eq!(default_workers(6), vec![1, 2, 4, 6]);
        assert_eq!(default_workers(16), vec![1, 2, 4, 8, 16]);
        assert_eq!(default_workers(96), vec![1, 2, 4, 8, 16, 32, 64, 96]);
    }
}
