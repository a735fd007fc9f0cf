//! Network services written in an interpreter (a python, node, ruby, perl or Java web
//! application: gunicorn, uvicorn, flask, express, Tomcat), known by what they do rather than by
//! name: their executable is the interpreter's, which also runs every script on the host, so
//! the `webServers` list cannot name them. A process of an interpreter that accepted a TCP
//! connection serves the network; a shell it then has run a command string, and a
//! reconnaissance program it runs (`id`, `whoami`, `uname`), are a web shell's
//! (`behaviour-shell-from-web-server`, `behaviour-web-server-recon`), as they are for the web
//! servers known by name.

use vigil_detection::FindingType;

use std::path::Path;

use super::{
    Candidate, Detector, ProcessLookup,
    behaviour::Behaviour,
    bounded::FifoMap,
    path_basename,
    technique::{
        Raises, draft, exec_context, listed, program_identity, program_name, starter, technique,
    },
};
use crate::event::{ExecInfo, NetInfo};

/// Serving interpreters remembered, first in first out; an entry goes when its process execs
/// something else or exits.
pub(crate) const MAX_SERVERS: usize = 1024;

/// Reconnaissance programs a web shell runs first (Sigma's "Linux Webshell Indicators", the
/// same list as the exec rule `exec-web-server-recon` for the web servers known by name).
const RECON: &[&str] = &[
    "whoami", "id", "uname", "hostname", "ifconfig", "netstat", "ss", "route", "iptables",
    "crontab", "w",
];

/// Interpreters' processes that accepted a TCP connection, by pid, with their uuid.
#[derive(Debug)]
pub(crate) struct Servers {
    serving: FifoMap<u32, String>,
}

impl Default for Servers {
    fn default() -> Self {
        Self {
            serving: FifoMap::new(MAX_SERVERS),
        }
    }
}

impl Servers {
    /// An accepted connection: the process serves the network when it is an interpreter's.
    pub(crate) fn on_accept(&mut self, b: &Behaviour, n: &NetInfo, exe: Option<&Path>) {
        if n.ret < 0 || n.protocol != "tcp" || !matches!(n.family, "inet" | "inet6") {
            return;
        }
        let Some(exe) = exe else {
            return;
        };
        let name = program_name(path_basename(exe));
        if !listed(&b.interpreters, name) {
            return;
        }
        if self
            .serving
            .get(&n.process.pid)
            .is_some_and(|uuid| *uuid == n.process.uuid)
        {
            return;
        }
        self.serving.insert(n.process.pid, n.process.uuid.clone());
    }

    /// Whether the process `pid` (of `uuid`, when known) accepted a TCP connection.
    pub(crate) fn serves(&self, pid: u32, uuid: Option<&str>) -> bool {
        self.serving
            .get(&pid)
            .is_some_and(|u| uuid.is_none_or(|uuid| uuid.is_empty() || u == uuid))
    }

    /// The process ran something else, or exited.
    pub(crate) fn forget(&mut self, pid: u32) {
        self.serving.remove(&pid);
    }

    /// Entries held and entries dropped for room.
    pub(crate) fn tracked(&self) -> (usize, u64) {
        (self.serving.len(), self.serving.evicted())
    }
}

/// A reconnaissance program run by a serving interpreter, directly (`subprocess.run(["id"])`,
/// `Runtime.exec("id")`) or through shells (`sh -c id`, which may exec it in place).
pub(crate) fn recon(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    let b = d.rules.behaviour();
    let name = program_identity(d, e);
    if !RECON.contains(&name) {
        return None;
    }
    // The program that wanted it run, through shells (`sh -c 'id; ...'` forks for `id`).
    let (pid, exe, _, uuid) = starter(d, b, e, None)?;
    if !d.servers.serves(pid, uuid) {
        return None;
    }
    let server_exe = exe.display().to_string();
    let program = e.exe.display().to_string();
    let mut context = exec_context(e, program.clone());
    context
        .additional
        .insert("serverExecutable".into(), server_exe.clone());
    context
        .additional
        .insert("serverPid".into(), pid.to_string());
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionSuspiciousCommand,
            rule: "behaviour-web-server-recon",
            mitre: "T1505.003,T1033,T1082",
            severity: Some(7.0),
        },
        draft(
            "A network service runs a reconnaissance command (a web shell)",
            format!(
                "Process {} (pid {}) ran {program} for {server_exe} (pid {pid}), an \
                 interpreter's process that accepted network connections.",
                e.process.comm, e.process.pid
            ),
            format!("{server_exe}\0{program}"),
            context,
        ),
    ))
}
