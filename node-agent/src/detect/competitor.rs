//! Competing miners killed through a process-list pipeline, as miner droppers' scripts do
//! first: `ps aux | grep -v grep | grep xmrig | awk '{print $2}' | xargs -r kill -9`,
//! `pgrep kinsing | xargs kill`. No single argv holds both the miner's name (grep's, pgrep's)
//! and the kill (xargs'); the exec records hold the pipes between them (the same inode on both
//! ends of each). A filter or process search naming a miner (`behaviour.minerNames`) marks the
//! pipe it writes; filters pass the mark on (`behaviour.pidFilters`); `xargs` running `kill`,
//! `pkill` or `killall` on a marked pipe raises `exec-miner-competitor-kill`, the rule that
//! `pkill -f xmrig` raises. The stages exec in any order: a pipe's readers and downstream pipes
//! wait in a bounded table until its mark arrives.

use std::path::PathBuf;

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    behaviour::Behaviour,
    bounded::FifoMap,
    redact::redacted_command_line,
    technique::{Raises, Stopped, actor, draft, listed, program_identity, technique},
};
use crate::event::{ActivityInfo, ExecInfo, ProcessRef};

/// Pipes remembered; the oldest go first.
pub(crate) const MAX_PIPES: usize = 1024;
/// Downstream pipes and waiting killers kept per pipe.
const MAX_PER_PIPE: usize = 4;
/// Pipes followed downstream from one that got its mark.
const MAX_CHAIN: usize = 16;

/// Programs that list processes by name (their operand is the name searched for).
const SEARCHES: &[&str] = &["pgrep", "pidof"];
/// Programs that kill what `xargs` hands them.
const KILLERS: &[&str] = &["kill", "pkill", "killall"];

/// An `xargs` waiting for its pipe's mark.
#[derive(Debug, Clone)]
struct Killer {
    process: ProcessRef,
    exe: PathBuf,
    argv: Vec<String>,
}

#[derive(Debug, Default)]
struct Pipe {
    /// The miner named upstream, and the command that named it.
    miner: Option<(String, String)>,
    downstream: Vec<u64>,
    killers: Vec<Killer>,
}

/// Pipes of process-list pipelines, by inode.
#[derive(Debug)]
pub(crate) struct KillPipes {
    pipes: FifoMap<u64, Pipe>,
}

impl Default for KillPipes {
    fn default() -> Self {
        Self {
            pipes: FifoMap::new(MAX_PIPES),
        }
    }
}

impl KillPipes {
    /// Entries held and entries dropped for room.
    pub(crate) fn tracked(&self) -> (usize, u64) {
        (self.pipes.len(), self.pipes.evicted())
    }

    /// Marks `ino` and the pipes downstream of it; the killers waiting there, taken out.
    fn mark(&mut self, ino: u64, miner: (String, String)) -> Vec<(Killer, (String, String))> {
        let mut out = Vec::new();
        let mut todo = vec![ino];
        let mut seen = 0;
        while let Some(ino) = todo.pop() {
            seen += 1;
            if seen > MAX_CHAIN {
                break;
            }
            let p = self.pipes.get_or_default(ino);
            if p.miner.is_some() {
                continue;
            }
            p.miner = Some(miner.clone());
            out.extend(
                std::mem::take(&mut p.killers)
                    .into_iter()
                    .map(|k| (k, miner.clone())),
            );
            todo.extend(p.downstream.iter().copied());
        }
        out
    }
}

/// The miner a command names among its operands, by a whole word of one (`xmrig`, `[x]mrig`
/// as grep patterns are written to miss grep itself, `kdevtmpfsi|kinsing`).
fn names_miner<'a>(b: &'a Behaviour, argv: &[String]) -> Option<&'a str> {
    argv.iter().skip(1).find_map(|a| {
        let plain: String = a
            .chars()
            .filter(|c| !matches!(c, '[' | ']'))
            .collect::<String>()
            .to_ascii_lowercase();
        plain
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
            .filter(|w| !w.is_empty())
            .find_map(|w| {
                b.miner_names
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(w))
                    .map(String::as_str)
            })
    })
}

/// An exec on a pipe: a search naming a miner marks its output, a filter links its input to
/// its output, and `xargs` running a killer on a marked pipe raises.
pub(crate) fn check_exec(
    d: &Detector,
    table: &mut KillPipes,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if e.stdin_pipe.is_none() && e.stdout_pipe.is_none() {
        return Vec::new();
    }
    let b = d.rules.behaviour();
    let name = program_identity(d, e);
    let mut raised = Vec::new();
    if let Some(out) = e.stdout_pipe {
        let filter = listed(&b.pid_filters, name);
        let search = SEARCHES.contains(&name);
        if filter || search {
            // A search of a listing (`grep xmrig` reading a pipe) or a process search; a grep
            // of a file is no list of processes.
            let named = (search || e.stdin_pipe.is_some())
                .then(|| names_miner(b, &e.argv))
                .flatten()
                .map(|m| (m.to_owned(), redacted_command_line(&e.argv)));
            let upstream = e.stdin_pipe.filter(|&i| i != out && filter).and_then(|i| {
                let p = table.pipes.get_or_default(i);
                if !p.downstream.contains(&out) && p.downstream.len() < MAX_PER_PIPE {
                    p.downstream.push(out);
                }
                p.miner.clone()
            });
            if let Some(miner) = named.or(upstream) {
                raised.extend(table.mark(out, miner));
            }
        }
    }
    if let Some(inp) = e.stdin_pipe
        && name == "xargs"
        && e.argv.iter().skip(1).any(|a| {
            let word = super::basename(a);
            KILLERS.contains(&word)
        })
    {
        let killer = Killer {
            process: e.process.clone(),
            exe: e.exe.clone(),
            argv: e.argv.clone(),
        };
        let p = table.pipes.get_or_default(inp);
        match p.miner.clone() {
            Some(miner) => raised.push((killer, miner)),
            None if p.killers.len() < MAX_PER_PIPE => p.killers.push(killer),
            None => {}
        }
    }
    raised
        .into_iter()
        .map(|(k, miner)| finding(d, &k, miner, lookup))
        .collect()
}

/// A stopping signal another process sent a miner (the kernel's `signalMiner`: the pipeline
/// guards processes whose executable has a name of `behaviour.minerNames`, and those a miner
/// finding was raised for, [`miner_process`]), however the ids were found: `kill -9 $(pgrep
/// xmrig)`, a loop over `ps`, `killall`, an interpreter's `os.kill`, the owner of a pool's port
/// in `netstat`. The same rule as the pipelines above; not when the signal is routine
/// ([`Stopped`]: the miner's parent or supervisor, its own program).
pub(crate) fn check_signal(
    d: &Detector,
    a: &ActivityInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let stop = Stopped::of(d, a, lookup)?;
    let target_exe = stop.target_exe.as_deref()?;
    let miner = super::basename(target_exe.to_str()?).to_owned();
    // As the pipeline guards by name: without case.
    let named = d
        .rules
        .behaviour()
        .miner_names
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&miner));
    let why = if named {
        "a miner's name"
    } else {
        "a process found to be a miner by what it did"
    };
    let p = &a.process;
    let exe = actor(d, p, lookup)
        .exe
        .map(|e| e.display().to_string())
        .unwrap_or_default();
    let mut context = RuntimeContext {
        target_process: super::behaviour::target_process(d, stop.target, lookup),
        ..RuntimeContext::default()
    };
    let add = &mut context.additional;
    add.insert("minerName".into(), miner.clone());
    add.insert("targetPid".into(), stop.target.to_string());
    add.insert("targetExecutable".into(), target_exe.display().to_string());
    add.insert("signal".into(), stop.signal.clone());
    add.insert("signalCode".into(), stop.code.to_string());
    add.insert(
        "minerBy".into(),
        (if named { "name" } else { "behaviour" }).into(),
    );
    Some(technique(
        d,
        p,
        lookup,
        RAISES,
        draft(
            "Other cryptocurrency miners are killed by name (what miner droppers do first)",
            format!(
                "Process {} (pid {}) sent {} to pid {}, which runs {} ({why}).",
                p.comm,
                p.pid,
                stop.signal,
                stop.target,
                target_exe.display()
            ),
            format!("{exe}\0{miner}"),
            context,
        ),
    ))
}

/// The process a finding says is a miner by what it did (pid and uuid): connecting to a
/// listed pool or speaking stratum (`CryptoCurrency:Runtime/BitcoinTool.B`), or a miner's
/// executable, options or pool URL at its exec (`Impact:Runtime/CryptoMinerExecuted`). The
/// agent guards it like a program named like a miner, so that a competitor's signal to
/// `/tmp/.x/sysupdate` is reported as one to `xmrig` is. A name queried
/// (`BitcoinTool.B!DNS`) is left out: resolvers and caches query for others.
pub fn miner_process(f: &vigil_crds::finding::Finding) -> Option<(u32, &str)> {
    let miner = [
        FindingType::CryptoCurrencyBitcoinToolB,
        FindingType::ImpactCryptoMinerExecuted,
    ]
    .iter()
    .any(|t| t.as_str() == f.finding_type);
    let p = f.process.as_ref().filter(|_| miner)?;
    (p.pid != 0 && !p.uuid.is_empty()).then_some((p.pid, p.uuid.as_str()))
}

/// What a competitor killed raises, whichever way it was seen.
const RAISES: Raises = Raises {
    finding_type: FindingType::ExecutionSuspiciousCommand,
    rule: "behaviour-miner-competitor-kill",
    mitre: "T1489,T1496",
    severity: Some(5.0),
};

fn finding(
    d: &Detector,
    k: &Killer,
    (miner, search): (String, String),
    lookup: &dyn ProcessLookup,
) -> Candidate {
    let command = redacted_command_line(&k.argv);
    let exe = k.exe.display().to_string();
    let mut context = RuntimeContext {
        command_line_example: Some(command.clone()),
        ..RuntimeContext::default()
    };
    context.additional.insert("minerName".into(), miner.clone());
    context.additional.insert("processSearch".into(), search);
    technique(
        d,
        &k.process,
        lookup,
        RAISES,
        draft(
            "Other cryptocurrency miners are killed by name (what miner droppers do first)",
            format!(
                "Process {} (pid {}) ran `{command}` on the process ids a search for {miner} \
                 found.",
                k.process.comm, k.process.pid
            ),
            format!("{exe}\0{miner}"),
            context,
        ),
    )
}
