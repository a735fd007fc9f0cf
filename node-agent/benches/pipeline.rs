//! The agent's user-space cost per exec of an exec storm: the records one short-lived process
//! leaves (fork, exec, exit) decoded and turned into events by the pipeline (process table,
//! uuids, lineage, the executable answered from the exe-object cache), run through detection
//! with the built-in rules and default intel, and printed as JSON lines into a sink, as
//! `node-agent run --format json` does. One core, no kernel: the records are built here the
//! way the kernel lays them out.
//!
//! `cargo bench -p node-agent --bench pipeline` (figures in docs/PERFORMANCE.md).
//!
//! Three passes, each over a fresh pipeline: the pipeline alone, the pipeline and detection,
//! and all three. The storm's process is a child of a worker with a shell, a login and init
//! above it, as `vigil-bench exec` runs it.

#[path = "support/detector.rs"]
mod detector;

use detector::bench_detector;
use std::{
    hint::black_box,
    io::{self, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use node_agent::{
    agent::{OutputFormat, write_event},
    detect::RuleSet,
    event::Clock,
    pipeline::{Limits, Pipeline},
};
use node_agent_common::{
    EventHeader, ExecEvent, ExitEvent, ForkEvent, TaskIdentity, decode::bytes_of, kind,
};
use vigil_detection::{DgaModel, IntelConfig, SharedIntel};

/// Processes per pass (three records each).
const PROCESSES: u32 = 100_000;
const RUNS: usize = 5;
/// The storm's worker, and its ancestors (pid, parent, comm).
const WORKER: u32 = 500;
const ANCESTORS: [(u32, u32, &str); 4] = [
    (1, 0, "systemd"),
    (300, 1, "sshd"),
    (400, 300, "bash"),
    (WORKER, 400, "vigil-bench"),
];

/// A record's bytes in 8-byte aligned memory, as the ring buffer holds them.
fn record<T: node_agent_common::decode::Plain>(value: &T) -> Vec<u64> {
    let bytes = bytes_of(value);
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    // SAFETY: `words` holds at least `bytes.len()` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr().cast::<u8>(), bytes.len())
    };
    words
}

fn as_bytes(words: &[u64], len: usize) -> &[u8] {
    // SAFETY: the u64s' memory viewed as bytes, `len` at most its size.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) }
}

/// Where the storm runs: this process's namespaces and cgroup, the host's, as the kernel
/// would report them for a storm started from this shell.
#[derive(Clone, Copy)]
struct Place {
    pid_ns: u32,
    mnt_ns: u32,
    cgroup_id: u64,
}

impl Place {
    fn here() -> Self {
        let ns = |kind| {
            node_agent::container::namespace_inode(Path::new("/proc"), "self", kind).unwrap_or(0)
        };
        let cgroup_id = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|text| {
                let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.to_owned();
                let root = node_agent::sensor::cgroup2_root()?;
                let dir = root.join(path.trim_start_matches('/'));
                std::fs::metadata(dir).ok().map(|m| m.ino())
            })
            .unwrap_or(0);
        Self {
            pid_ns: ns("pid"),
            mnt_ns: ns("mnt"),
            cgroup_id,
        }
    }
}

fn task(place: Place, pid: u32, ppid: u32, comm: &str) -> TaskIdentity {
    let mut t = TaskIdentity {
        pid,
        tgid: pid,
        ppid,
        uid: 1000,
        gid: 1000,
        euid: 1000,
        egid: 1000,
        pid_ns: place.pid_ns,
        mnt_ns: place.mnt_ns,
        cgroup_id: place.cgroup_id,
        start_time_ns: u64::from(pid) * 1_000,
        ..TaskIdentity::default()
    };
    let n = comm.len().min(t.comm.len() - 1);
    t.comm[..n].copy_from_slice(&comm.as_bytes()[..n]);
    t
}

/// The executable every exec of the storm runs: this benchmark's own binary, so that the first
/// exec record (made with this process's pid) resolves it through `/proc/<pid>/exe` and the rest
/// are answered from the exe-object cache, as a storm of one program is.
struct Program {
    path: String,
    ino: u64,
}

fn exec_record(t: TaskIdentity, program: &Program, ktime_ns: u64) -> Vec<u64> {
    // SAFETY: ExecEvent is a `#[repr(C)]` struct of integers and byte arrays, for which all
    // zero bytes is a valid value (the kernel sends such records zero-filled).
    let mut ev: ExecEvent = unsafe { std::mem::zeroed() };
    ev.header = EventHeader {
        kind: kind::EXEC,
        _pad: 0,
        size: std::mem::size_of::<ExecEvent>() as u32,
        ktime_ns,
    };
    ev.task = t;
    ev.exe_ino = program.ino;
    ev.exe_dev = 0x0080_0001;
    ev.exe_nlink = 1;
    ev.exe_object.mnt = 0xffff_8880_0100_0000;
    ev.exe_object.dentry = 0xffff_8880_0200_0000;
    ev.exe_object.ctime_sec = 1_700_000_000;
    let filename = program.path.as_bytes();
    ev.filename[..filename.len()].copy_from_slice(filename);
    ev.filename_len = filename.len() as u32;
    let argv = b"true\0--storm\0";
    ev.argv[..argv.len()].copy_from_slice(argv);
    ev.argv_len = argv.len() as u32;
    // `/home/bench`, leaf first.
    let cwd = b"bench\0home\0";
    ev.cwd[..cwd.len()].copy_from_slice(cwd);
    ev.cwd_len = cwd.len() as u32;
    ev.cwd_depth = 2;
    // stdin, stdout, stderr: /dev/null (character devices).
    ev.stdio_types = 0x0002_0202;
    record(&ev)
}

fn fork_record(parent: TaskIdentity, child: u32, ktime_ns: u64) -> Vec<u64> {
    record(&ForkEvent {
        header: EventHeader {
            kind: kind::FORK,
            _pad: 0,
            size: std::mem::size_of::<ForkEvent>() as u32,
            ktime_ns,
        },
        task: parent,
        child_tgid: child,
        _pad: 0,
        child_start_time_ns: u64::from(child) * 1_000,
    })
}

fn exit_record(t: TaskIdentity, ktime_ns: u64) -> Vec<u64> {
    record(&ExitEvent {
        header: EventHeader {
            kind: kind::EXIT,
            _pad: 0,
            size: std::mem::size_of::<ExitEvent>() as u32,
            ktime_ns,
        },
        task: t,
        exit_code: 0,
        _pad: 0,
    })
}

/// The records of a pass: the ancestors' execs, this process's exec of the program, then
/// `PROCESSES` short-lived children of the worker.
fn storm(program: &Program, place: Place) -> Vec<(Vec<u64>, usize)> {
    let mut out = Vec::new();
    let mut clock = 1_000_000u64;
    let mut tick = || {
        clock += 1_000;
        clock
    };
    let exec_size = std::mem::size_of::<ExecEvent>();
    for (pid, ppid, comm) in ANCESTORS {
        out.push((
            exec_record(task(place, pid, ppid, comm), program, tick()),
            exec_size,
        ));
    }
    out.push((
        exec_record(
            task(place, std::process::id(), WORKER, "pipeline"),
            program,
            tick(),
        ),
        exec_size,
    ));
    let worker = task(place, WORKER, 400, "vigil-bench");
    for i in 0..PROCESSES {
        // Pids wrap as the kernel's do (the default pid_max of 2^22), above the ancestors.
        let pid = 10_000 + i % 4_000_000;
        let child = task(place, pid, WORKER, "true");
        out.push((
            fork_record(worker, pid, tick()),
            std::mem::size_of::<ForkEvent>(),
        ));
        out.push((exec_record(child, program, tick()), exec_size));
        out.push((exit_record(child, tick()), std::mem::size_of::<ExitEvent>()));
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Pipeline,
    Detection,
    Printed,
}

struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    let (intel, _) = vigil_detection::load(&IntelConfig::default()).expect("default intel");
    let intel = Arc::new(SharedIntel::new(intel));
    let rules = RuleSet::builtin().expect("built-in rules");
    let dga = DgaModel::builtin().expect("DGA model");
    let path = std::env::current_exe()
        .expect("this benchmark's path")
        .canonicalize()
        .expect("this benchmark's path, resolved");
    let ino = std::fs::metadata(&path)
        .expect("this benchmark's binary")
        .ino();
    let program = Program {
        path: path.to_string_lossy().into_owned(),
        ino,
    };
    let records = storm(&program, Place::here());
    println!(
        "{} processes of an exec storm per pass (fork, exec, exit), {RUNS} runs",
        PROCESSES
    );
    for pass in [Pass::Pipeline, Pass::Detection, Pass::Printed] {
        let mut per_exec = Vec::new();
        let mut reused = 0;
        let mut bytes = 0;
        let mut events = 0u64;
        for _ in 0..RUNS {
            // As the agent builds it: the host's namespaces and cgroup root from `/proc`.
            let mut pipeline = Pipeline::new(
                Clock::with_offset(0),
                "bench-boot".into(),
                Limits::default(),
            )
            .with_host_paths(PathBuf::from("/proc"), None);
            let mut detector = bench_detector(&intel, &dga, &rules);
            let mut out = io::BufWriter::with_capacity(64 * 1024, Counting(0));
            events = 0;
            let t = Instant::now();
            for (words, len) in &records {
                let Some(event) = pipeline.handle(as_bytes(words, *len)) else {
                    continue;
                };
                events += 1;
                if pass != Pass::Pipeline {
                    black_box(detector.process(&event, pipeline.processes()));
                }
                if pass == Pass::Printed {
                    write_event(&mut out, &event, OutputFormat::Json).expect("a sink");
                }
                black_box(event);
            }
            out.flush().expect("a sink");
            per_exec.push(t.elapsed().as_nanos() as f64 / f64::from(PROCESSES));
            reused = pipeline.stats().exe_objects_reused;
            bytes = out.get_ref().0;
        }
        per_exec.sort_by(f64::total_cmp);
        let name = match pass {
            Pass::Pipeline => "pipeline",
            Pass::Detection => "pipeline + detection",
            Pass::Printed => "pipeline + detection + JSON",
        };
        println!(
            "{name:<30} {:>7.0} ns per process (median; min {:.0}, max {:.0}); {events} events, \
             {reused} executables from the exe-object cache, {} bytes printed per process",
            per_exec[RUNS / 2],
            per_exec[0],
            per_exec[RUNS - 1],
            bytes / u64::from(PROCESSES)
        );
    }
}
