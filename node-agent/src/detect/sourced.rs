//! Scripts a running shell reads as code: `. x.sh` and `source x.sh` run a downloaded script or
//! one in a memory-backed directory without any exec, so neither the exec checks nor the pipe
//! table see them.
//!
//! The kernel sends a shell's read-only open of a regular file that another process wrote since
//! the agent started, or that lives on a memory-backed file system (`openScript`), and, when the
//! same shell then `dup2`s that fd, a `redirect`: `< file`, `while read ...; done < file`,
//! `mapfile < file` read the file as data. Sourcing reads the file and closes it. So an open is
//! held here until the shell shows what it did: a `redirect` drops it; the shell's next fork,
//! exec, exit or script open judges it (a sourced script's commands fork, or the shell exits).
//! A held open is judged as the exec'd forms are: written by a process that ran a downloader
//! (`behaviour-download-exec`), or in a memory-backed directory
//! (`behaviour-exec-from-memory-dir`), with `executedFile: script read by a running shell`.

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    bounded::FifoMap,
    path_basename,
    pipes::PipeTable,
    technique::{Raises, actor, draft, listed, program_name, technique},
};
use crate::event::{ExecInfo, FileInfo, ForkInfo};

/// Opens held at once (one per shell process: a shell's next open judges its last).
pub(crate) const MAX_HELD: usize = 1_024;
/// busybox processes remembered as running a shell applet.
const MAX_BUSYBOX_SHELLS: usize = 4_096;

/// What `executedFile` says of these scripts.
const WHAT: &str = "script read by a running shell";
/// ... when an interpreter read it (`perl -e 'do "x.pl"'`).
const WHAT_INTERPRETER: &str = "script read by a running interpreter";

/// Interpreters, besides the shells, whose reads of code (`do FILE`, `require`) and of data the
/// kernel tells apart (the kernel marks them too: `SensorOptions::default_shells`). python's
/// `exec(open(f).read())` and `json.load(open(f))` make the same syscalls, so python is not.
pub const SOURCING_INTERPRETERS: &[&str] = &["perl"];

/// Shells' opens waiting for what the shell did with the file.
#[derive(Debug)]
pub(crate) struct SourcedTable {
    held: FifoMap<u32, FileInfo>,
    /// busybox processes whose applet is a shell (`sh`, `ash`): the kernel marks every busybox.
    busybox_shells: FifoMap<u32, ()>,
}

impl Default for SourcedTable {
    fn default() -> Self {
        Self {
            held: FifoMap::new(MAX_HELD),
            busybox_shells: FifoMap::new(MAX_BUSYBOX_SHELLS),
        }
    }
}

impl SourcedTable {
    /// Opens held now, and how many were dropped unjudged to stay within the bound.
    pub(crate) fn held(&self) -> (usize, u64) {
        (self.held.len(), self.held.evicted())
    }
}

/// A process ran something new: judge what it held first (its old image opened it), then note
/// whether a busybox now runs a shell applet.
pub(crate) fn on_exec(
    d: &Detector,
    table: &mut SourcedTable,
    pipes: &PipeTable,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let found = judge_held(d, table, pipes, e.process.pid, lookup);
    let pid = e.process.pid;
    let exe = program_name(path_basename(&e.exe));
    let applet = e
        .argv
        .first()
        .map(|a| program_name(super::basename(a).trim_start_matches('-')))
        .unwrap_or_default();
    if exe == "busybox" && listed(&d.rules.behaviour().shells, applet) {
        table.busybox_shells.insert(pid, ());
    } else {
        table.busybox_shells.remove(&pid);
    }
    found
}

/// A fork: the parent's held open is judged (a sourced script's first command forks); a
/// busybox shell's child is one too.
pub(crate) fn on_fork(
    d: &Detector,
    table: &mut SourcedTable,
    pipes: &PipeTable,
    f: &ForkInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if table.busybox_shells.contains_key(&f.process.pid) {
        table.busybox_shells.insert(f.child_pid, ());
    } else {
        table.busybox_shells.remove(&f.child_pid);
    }
    judge_held(d, table, pipes, f.process.pid, lookup)
}

/// An exit: whatever the process held is judged now.
pub(crate) fn on_exit(
    d: &Detector,
    table: &mut SourcedTable,
    pipes: &PipeTable,
    pid: u32,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let found = judge_held(d, table, pipes, pid, lookup);
    table.busybox_shells.remove(&pid);
    found
}

/// `openScript` is held (the shell's earlier one judged first), `redirect` drops the open it
/// names.
pub(crate) fn on_file(
    d: &Detector,
    table: &mut SourcedTable,
    pipes: &PipeTable,
    f: &FileInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let pid = f.process.pid;
    match f.operation {
        "openScript" if f.ret >= 0 => {
            let found = judge_held(d, table, pipes, pid, lookup);
            table.held.insert(pid, f.clone());
            found
        }
        "redirect" => {
            if table.held.get(&pid).is_some_and(|h| h.inode == f.inode) {
                table.held.remove(&pid);
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn judge_held(
    d: &Detector,
    table: &mut SourcedTable,
    pipes: &PipeTable,
    pid: u32,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let Some(f) = table.held.remove(&pid) else {
        return Vec::new();
    };
    judge(d, table, pipes, &f, lookup).into_iter().collect()
}

/// A script the shell read and did not redirect: downloaded, or in a memory-backed directory.
fn judge(
    d: &Detector,
    table: &SourcedTable,
    pipes: &PipeTable,
    f: &FileInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let b = d.rules.behaviour();
    let a = actor(d, &f.process, lookup);
    let name = a
        .exe
        .as_deref()
        .map(|e| program_name(path_basename(e)))
        .unwrap_or_default();
    let shell = listed(&b.shells, name)
        || (name == "busybox" && table.busybox_shells.contains_key(&f.process.pid));
    let what = if shell {
        WHAT
    } else if SOURCING_INTERPRETERS.contains(&name) {
        WHAT_INTERPRETER
    } else {
        return None;
    };
    if f.matched_by.contains(&"pipe") {
        // A pipe read as the program: what wrote into it decides, through the exec records.
        let shell_exe = a.exe.clone().unwrap_or_default();
        return super::pipes::sourced_from(
            d, pipes, f.inode?, &f.process, &shell_exe, &f.path, lookup,
        );
    }
    let path = f.resolved_path.as_deref()?.display().to_string();
    let mut context = RuntimeContext {
        file_path: Some(path.clone()),
        ..RuntimeContext::default()
    };
    let shell_exe = a
        .exe
        .as_deref()
        .map(|e| e.display().to_string())
        .unwrap_or_default();
    if let Some(w) = &f.written_by
        && let Some((downloader, command_line)) = pipes.downloader(w.pid)
    {
        let downloader = downloader.display().to_string();
        let add = &mut context.additional;
        add.insert("downloadedBy".into(), downloader.clone());
        add.insert("downloaderPid".into(), w.pid.to_string());
        add.insert("downloaderCommandLine".into(), command_line.to_owned());
        add.insert("executedFile".into(), what.into());
        return Some(technique(
            d,
            &f.process,
            lookup,
            Raises {
                finding_type: FindingType::ExecutionSuspiciousCommand,
                rule: "behaviour-download-exec",
                mitre: "T1105,T1059.004",
                // As the exec'd forms: a download run.
                severity: Some(8.0),
            },
            draft(
                "A program that a downloader wrote was executed",
                format!(
                    "Process {} (pid {}, {shell_exe}) read {path} as a script ({what}), which \
                     {downloader} wrote: {command_line}.",
                    f.process.comm, f.process.pid
                ),
                path,
                context,
            ),
        ));
    }
    if !f.matched_by.contains(&"memoryFs") {
        return None;
    }
    let dir = b
        .memory_exec_dirs
        .iter()
        .find(|dir| path.starts_with(dir.as_str()))?;
    context
        .additional
        .insert("executionDirectory".into(), dir.clone());
    context
        .additional
        .insert("executedFile".into(), what.into());
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionSuspiciousCommand,
            rule: "behaviour-exec-from-memory-dir",
            mitre: "T1059,T1036.005",
            // As the exec'd forms: memory-backed directories hold nothing installed.
            severity: Some(6.0),
        },
        draft(
            "A program ran from a memory-backed directory",
            format!(
                "Process {} (pid {}, {shell_exe}) read {path} as a script ({what}) from {dir}.",
                f.process.comm, f.process.pid
            ),
            path.clone(),
            context,
        ),
    ))
}
