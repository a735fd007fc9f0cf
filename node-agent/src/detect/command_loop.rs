//! Reverse shells that are an interpreter's loop: the interpreter connects out and runs each
//! line the peer sends as a command, capturing the output to send back, with no shell on the
//! socket and no socket on any command's standard streams: tclsh's `while {[gets $s c] >= 0}
//! {puts $s [exec {*}$c]}` (revshells.com's Tcl form), perl's `while(<$s>){print $s `$_`}`,
//! python's `s.recv` fed to `subprocess.run(..., shell=True, capture_output=True)`.
//!
//! What the kernel shows: an interpreter's established connect to an IP peer, then children it
//! runs with their standard output on a pipe (the interpreter reads it). A line read from a
//! stream and run verbatim keeps its newline: perl's backticks and python's `shell=True` hand
//! `sh -c "id\n"` to the shell, which no program written to run a command gives it. tclsh's
//! `exec` splits the line itself and runs the program with no shell; tclsh (and wish) are no
//! tool of a server's: after a connect out, any program tclsh runs with its output captured is
//! taken for the loop's. Any other interpreter that talks to a service and then runs `git` or
//! `df` (a monitoring plugin, a deploy tool, a one-liner that fetches and then lists) is not;
//! perl's backticks drop the newline and run a line with no shell syntax (`id`) themselves,
//! so perl's loop is seen only for lines the shell runs (`id;`, `ls | head`).

use std::net::SocketAddr;

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    bounded::FifoMap,
    path_basename,
    redact::redacted_command_line,
    technique::{Raises, draft, listed, program_identity, program_name, technique},
};
use crate::event::{ExecInfo, NetInfo};

/// Interpreters remembered with an established connect out.
pub(crate) const MAX_CONNECTED: usize = 1024;

/// Interpreters that run another program only by an `exec` of their own: after a connect out,
/// any program they run with its output captured is taken for a command loop's.
const TCL: &[&str] = &["tclsh", "wish"];

/// An interpreter that connected out.
#[derive(Debug)]
struct Connected {
    uuid: String,
    peer: SocketAddr,
    exe: String,
}

/// Interpreters with an established connect to an IP peer, by pid, first in first out; the
/// entry goes when the process execs something else or exits.
#[derive(Debug)]
pub(crate) struct CommandLoops {
    connected: FifoMap<u32, Connected>,
}

impl Default for CommandLoops {
    fn default() -> Self {
        Self {
            connected: FifoMap::new(MAX_CONNECTED),
        }
    }
}

impl CommandLoops {
    /// Remembers an interpreter's established (or in progress) connect to an IP peer. `exe`:
    /// the connecting process's executable, as the detector remembers its exec.
    pub(crate) fn on_connect(
        &mut self,
        b: &super::behaviour::Behaviour,
        n: &NetInfo,
        exe: Option<&std::path::Path>,
    ) {
        let connected =
            n.ret == 0 || (n.error.as_deref() == Some("EINPROGRESS") && n.outcome.is_none());
        let Some(peer) = n.remote else { return };
        if !connected || peer.port() == 0 || !matches!(n.family, "inet" | "inet6") {
            return;
        }
        let Some(exe) = exe else { return };
        let name = program_name(path_basename(exe));
        if !listed(&b.interpreters, name) {
            return;
        }
        self.connected.insert(
            n.process.pid,
            Connected {
                uuid: n.process.uuid.clone(),
                peer,
                exe: exe.display().to_string(),
            },
        );
    }

    /// The process exec'd or exited: its image's connects are no longer its own.
    pub(crate) fn forget(&mut self, pid: u32) {
        self.connected.remove(&pid);
    }

    /// Entries held and evicted.
    pub(crate) fn tracked(&self) -> (usize, u64) {
        (self.connected.len(), self.connected.evicted())
    }
}

/// The command string a shell is given with `-c` (`sh -c CMD`, `bash -c CMD`), if any.
pub(super) fn command_string(argv: &[String]) -> Option<&str> {
    let at = argv.iter().skip(1).position(|a| a == "-c")? + 2;
    argv.get(at).map(String::as_str)
}

/// A program an interpreter runs with its output captured (its standard output a pipe) after
/// the interpreter connected out: a shell given a command line that still ends with the
/// newline of the line it was read as, or any program tclsh or wish runs.
pub(crate) fn check_exec(
    d: &Detector,
    table: &CommandLoops,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    e.stdout_pipe?;
    let parent = e.lineage.first()?;
    let holder = table
        .connected
        .get(&parent.pid)
        .filter(|c| c.uuid.is_empty() || parent.uuid.is_empty() || c.uuid == parent.uuid)?;
    let b = d.rules.behaviour();
    let interpreter = program_name(path_basename(std::path::Path::new(&holder.exe)));
    let name = program_identity(d, e);
    let line = listed(&b.shells, name)
        .then(|| command_string(&e.argv))
        .flatten()
        .filter(|c| c.ends_with('\n') && !c.trim().is_empty() && !c.trim().contains('\n'));
    if line.is_none() && !TCL.contains(&interpreter) {
        return None;
    }
    let mut context = RuntimeContext {
        command_line_example: Some(redacted_command_line(&e.argv)),
        ..RuntimeContext::default()
    };
    let a = &mut context.additional;
    a.insert("interpreter".into(), holder.exe.clone());
    a.insert("interpreterPid".into(), parent.pid.to_string());
    a.insert("connectedTo".into(), holder.peer.to_string());
    a.insert(
        "commandFrom".into(),
        if line.is_some() {
            "a line run verbatim by a shell".into()
        } else {
            "the interpreter's own exec".into()
        },
    );
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionReverseShell,
            rule: "behaviour-reverse-shell-command-loop",
            mitre: "T1059,T1095",
            severity: Some(8.0),
        },
        draft(
            "An interpreter connected out runs commands and captures their output",
            format!(
                "Process {} (pid {}) was started by {} (pid {}), which is connected to {}, with \
                 its output captured by the interpreter{}: the loop of a reverse shell that runs \
                 what the peer sends.",
                e.process.comm,
                e.process.pid,
                holder.exe,
                parent.pid,
                holder.peer,
                if line.is_some() {
                    ", given a line that still ends with its newline"
                } else {
                    ""
                }
            ),
            format!("{}\0{}", holder.exe, holder.peer.ip()),
            context,
        ),
    ))
}
