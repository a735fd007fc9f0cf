//! Exec rules as data: `node-agent/rules/*.yaml` (built in) and any `*.yaml` in a rules
//! directory, loaded and validated once at start.
//!
//! A rules file is a YAML map with a `rules` list (and, optionally, `metadataNames`: host names
//! that legitimately resolve to the instance metadata address; `localResolvers`: executable
//! paths of caching DNS resolvers). Each rule:
//!
//! ```yaml
//! rules:
//!   - id: tool-nmap                            # unique across all files
//!     type: Execution:Runtime/SuspiciousTool   # exact GuardDuty type
//!     severity: 5                              # optional, 1-10; default: the type's default
//!     mitre: [T1046]                           # ATT&CK technique ids
//!     description: Network scanner
//!     tool: {name: nmap, category: Network scanner}   # optional context
//!     match:                                   # every condition given must hold
//!       exe: [nmap]            # basename of the executable, of the path exec'd or of argv[0]
//!       notExe: [sudo]         # none of those basenames is one of these
//!       cmdline: ['-sS\b']     # some regex matches the command line (argv joined by spaces)
//!       notCmdline: []         # no regex matches it
//!       parent: [nginx]        # basename of the parent's executable or its comm
//!       elevated: true         # effective uid 0 with a real uid that is not
//!       stdioSocket: true      # stdin and stdout are connected IP sockets
//! ```

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use regex::{RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use vigil_detection::FindingType;

/// The rules compiled into the agent: `(file name, text)`.
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    ("tools.yaml", include_str!("../../rules/tools.yaml")),
    ("commands.yaml", include_str!("../../rules/commands.yaml")),
    ("miners.yaml", include_str!("../../rules/miners.yaml")),
    ("shells.yaml", include_str!("../../rules/shells.yaml")),
    ("privilege.yaml", include_str!("../../rules/privilege.yaml")),
    ("network.yaml", include_str!("../../rules/network.yaml")),
    ("behaviour.yaml", include_str!("../../rules/behaviour.yaml")),
];

/// Finding types an exec rule may raise: the ones an exec event alone can show.
pub const EXEC_RULE_TYPES: &[FindingType] = &[
    FindingType::ExecutionSuspiciousTool,
    FindingType::ExecutionSuspiciousCommand,
    FindingType::DefenseEvasionSuspiciousCommand,
    FindingType::DiscoverySuspiciousCommand,
    FindingType::PersistenceSuspiciousCommand,
    FindingType::PrivilegeEscalationSuspiciousCommand,
    FindingType::ImpactCryptoMinerExecuted,
    FindingType::ExecutionSuspiciousShellCreated,
    FindingType::PrivilegeEscalationElevationToRoot,
    FindingType::ExecutionReverseShell,
    // Another process's memory named as dd's output: the attempt shows in the exec (the kernel
    // reports the open itself, refused or not).
    FindingType::DefenseEvasionProcessInjectionProc,
];

/// A rules file or rule that cannot be used. Every variant names the file; rule errors name the
/// rule id and the field.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a rules document (the parser's message has line and column).
    #[error("{file}: {source}")]
    Parse {
        /// The file.
        file: String,
        /// What the parser said.
        #[source]
        source: serde_yaml::Error,
    },
    /// One field of one rule is wrong.
    #[error("{file}: rule {rule}: {field}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The rule id (`#<n>` when the id itself is missing).
        rule: String,
        /// The field, e.g. `match.cmdline[2]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Two rules share an id.
    #[error("{file}: rule {rule}: id is already used in {first}")]
    DuplicateId {
        /// The file of the second rule.
        file: String,
        /// The id.
        rule: String,
        /// The file of the first rule.
        first: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
    #[serde(default)]
    metadata_names: Vec<String>,
    #[serde(default)]
    local_resolvers: Vec<PathBuf>,
    #[serde(default)]
    behaviour: super::behaviour::BehaviourSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleSpec {
    #[serde(default)]
    id: String,
    #[serde(rename = "type")]
    finding_type: String,
    #[serde(default)]
    severity: Option<f64>,
    #[serde(default)]
    mitre: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tool: Option<ToolSpec>,
    #[serde(rename = "match")]
    matcher: MatchSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolSpec {
    name: String,
    category: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MatchSpec {
    #[serde(default)]
    exe: Vec<String>,
    #[serde(default)]
    not_exe: Vec<String>,
    #[serde(default)]
    cmdline: Vec<String>,
    #[serde(default)]
    not_cmdline: Vec<String>,
    #[serde(default)]
    parent: Vec<String>,
    #[serde(default)]
    elevated: Option<bool>,
    #[serde(default)]
    stdio_socket: Option<bool>,
    /// Also judge each line of a shell script the agent reads at its shell's exec, as if the
    /// shell ran it with `-c`: shell builtins (`unset HISTFILE`, `set +o history`) exec
    /// nothing, so a script's line is the only place they show.
    #[serde(default)]
    script_lines: bool,
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// The finding type it raises.
    pub finding_type: FindingType,
    /// Severity score, 1.0 to 10.0.
    pub severity: f64,
    /// MITRE ATT&CK technique ids.
    pub mitre: Vec<String>,
    /// What the rule detects.
    pub description: String,
    /// Tool name and category, for the finding context.
    pub tool: Option<(String, String)>,
    /// The file it came from (`builtin:<name>` for built-in rules).
    pub origin: String,
    exe: Vec<String>,
    not_exe: Vec<String>,
    cmdline: Option<RegexSet>,
    not_cmdline: Option<RegexSet>,
    parent: Vec<String>,
    elevated: Option<bool>,
    stdio_socket: Option<bool>,
    /// Judged on a shell script's lines too (`match.scriptLines`).
    pub script_lines: bool,
}

/// Bytes one rule field's compiled patterns may take (`match.cmdline`, `match.notCmdline`): the
/// agent keeps every rule compiled for its lifetime, so a pattern whose automaton is huge
/// (`(?i)\w{1000}` is megabytes: Unicode classes, repeated) is refused with its field named.
/// The largest built-in field is under half of it.
pub const MAX_PATTERN_BYTES: usize = 1 << 20;

/// Lines of one script kept for the `scriptLines` rules.
pub const MAX_SCRIPT_LINES: usize = 4;
/// Bytes kept of each such line.
pub const MAX_SCRIPT_LINE_BYTES: usize = 256;

/// What an exec looks like to a rule.
#[derive(Debug, Clone, Copy)]
pub struct ExecFacts<'a> {
    /// Basename of the executable.
    pub exe_name: &'a str,
    /// Basename of `argv[0]` (a busybox applet, a symlink name).
    pub argv0_name: &'a str,
    /// Basename of the path given to exec (a script, where the executable is its interpreter).
    pub filename_name: &'a str,
    /// The name of the installed program whose bytes the executable has (a renamed or copied
    /// tool: its SHA-256 is that of `/usr/bin/<name>`), or "".
    pub content_name: &'a str,
    /// The command line, arguments joined by spaces.
    pub cmdline: &'a str,
    /// Basename of the parent's executable, when known.
    pub parent_exe_name: &'a str,
    /// The parent's comm.
    pub parent_comm: &'a str,
    /// Effective uid 0 while the real uid is not.
    pub elevated: bool,
    /// Standard input and output are connected IP sockets.
    pub stdio_socket: bool,
}

impl<'a> ExecFacts<'a> {
    /// A line of a script run by the shell named `shell`, as `shell -c LINE` looks to a rule.
    pub fn script_line(shell: &'a str, line: &'a str) -> Self {
        Self {
            exe_name: shell,
            argv0_name: shell,
            filename_name: "",
            content_name: "",
            cmdline: line,
            parent_exe_name: "",
            parent_comm: "",
            elevated: false,
            stdio_socket: false,
        }
    }

    fn names(&self) -> [&str; 4] {
        [
            self.exe_name,
            self.filename_name,
            self.argv0_name,
            self.content_name,
        ]
    }
}

impl Rule {
    /// Whether every condition of the rule holds for this exec.
    pub fn matches(&self, exec: &ExecFacts<'_>) -> bool {
        // An empty name (no content name) never equals a rule's (non-empty) entry.
        let names = exec.names();
        if !self.exe.is_empty() && !self.exe.iter().any(|e| names.contains(&e.as_str())) {
            return false;
        }
        if self.not_exe.iter().any(|e| names.contains(&e.as_str())) {
            return false;
        }
        if let Some(elevated) = self.elevated
            && elevated != exec.elevated
        {
            return false;
        }
        if let Some(stdio) = self.stdio_socket
            && stdio != exec.stdio_socket
        {
            return false;
        }
        if !self.parent.is_empty()
            && !self
                .parent
                .iter()
                .any(|p| p == exec.parent_exe_name || p == exec.parent_comm)
        {
            return false;
        }
        if let Some(set) = &self.cmdline
            && !set.is_match(exec.cmdline)
        {
            return false;
        }
        if let Some(set) = &self.not_cmdline
            && set.is_match(exec.cmdline)
        {
            return false;
        }
        true
    }
}

/// Every rule, indexed by executable name so an exec only tests the rules that can match it.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_exe: HashMap<String, Vec<usize>>,
    any_exe: Vec<usize>,
    metadata_names: HashSet<String>,
    local_resolvers: HashSet<PathBuf>,
    behaviour: super::behaviour::Behaviour,
}

impl RuleSet {
    /// The built-in rules.
    pub fn builtin() -> Result<Self, RuleError> {
        let mut set = RuleLoader::default();
        for (name, text) in BUILTIN_RULES {
            set.add_text(&format!("builtin:{name}"), text)?;
        }
        Ok(set.finish())
    }

    /// The built-in rules, compiled once per test binary: a detector per case would otherwise
    /// compile several hundred patterns each time.
    #[cfg(test)]
    pub(crate) fn builtin_shared() -> Self {
        static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
        RULES
            .get_or_init(|| RuleSet::builtin().expect("built-in rules"))
            .clone()
    }

    /// The built-in rules (when `builtin`) plus every `*.yaml` file of `dir`, in name order.
    pub fn load(builtin: bool, dir: Option<&Path>) -> Result<Self, RuleError> {
        let mut set = RuleLoader::default();
        if builtin {
            for (name, text) in BUILTIN_RULES {
                set.add_text(&format!("builtin:{name}"), text)?;
            }
        }
        if let Some(dir) = dir {
            let read_err = |source| RuleError::Read {
                file: dir.display().to_string(),
                source,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(read_err)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            for file in files {
                let name = file.display().to_string();
                let text = std::fs::read_to_string(&file).map_err(|source| RuleError::Read {
                    file: name.clone(),
                    source,
                })?;
                set.add_text(&name, &text)?;
            }
        }
        Ok(set.finish())
    }

    /// Rules from one document, for tests and tools.
    pub fn from_text(file: &str, text: &str) -> Result<Self, RuleError> {
        let mut set = RuleLoader::default();
        set.add_text(file, text)?;
        Ok(set.finish())
    }

    /// Every rule, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that match an exec, in load order.
    pub fn matching<'s>(&'s self, exec: &ExecFacts<'_>) -> Vec<&'s Rule> {
        let mut hits: Vec<usize> = Vec::new();
        for name in exec.names() {
            if let Some(ids) = self.by_exe.get(name) {
                hits.extend(ids);
            }
        }
        hits.extend(&self.any_exe);
        hits.sort_unstable();
        hits.dedup();
        hits.into_iter()
            .filter_map(|i| self.rules.get(i))
            .filter(|r| r.matches(exec))
            .collect()
    }

    /// The lines of a shell script (its text, run by the shell named `shell`) that a
    /// `scriptLines` rule matches, taken as `shell -c LINE` would be: each trimmed, comments
    /// and blank lines skipped, at most [`MAX_SCRIPT_LINES`] of [`MAX_SCRIPT_LINE_BYTES`] each.
    /// Without such a rule nothing is read.
    pub fn script_lines_matching(&self, shell: &str, text: &str) -> Vec<String> {
        let rules: Vec<&Rule> = self.rules.iter().filter(|r| r.script_lines).collect();
        if rules.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let facts = ExecFacts::script_line(shell, line);
            if rules.iter().any(|r| r.matches(&facts)) {
                let mut cut = line.len().min(MAX_SCRIPT_LINE_BYTES);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(line[..cut].to_owned());
                if out.len() >= MAX_SCRIPT_LINES {
                    break;
                }
            }
        }
        out
    }

    /// Every executable name a rule asks for (`match.exe`): the programs whose installed
    /// copies are worth recognising by content.
    pub fn exe_names(&self) -> impl Iterator<Item = &str> {
        self.by_exe.keys().map(String::as_str)
    }

    /// Every program the rules and the behaviour lists know by name: what the agent hashes as
    /// installed at start (`crate::tool_hashes`), so that a renamed copy is still the program.
    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        self.exe_names().chain(self.behaviour.program_names())
    }

    /// The knowledge of the behavioural types (`behaviour:` sections, merged).
    pub fn behaviour(&self) -> &super::behaviour::Behaviour {
        &self.behaviour
    }

    /// Whether `name` may legitimately resolve to the instance metadata address.
    pub fn is_metadata_name(&self, name: &str) -> bool {
        self.metadata_names.contains(name)
    }

    /// Whether `exe` (the resolved path of a running executable) is a caching DNS resolver's.
    pub fn is_local_resolver(&self, exe: &Path) -> bool {
        self.local_resolvers.contains(exe)
    }
}

#[derive(Default)]
struct RuleLoader {
    rules: Vec<Rule>,
    seen: HashMap<String, String>,
    metadata_names: HashSet<String>,
    local_resolvers: HashSet<PathBuf>,
    behaviour: super::behaviour::Behaviour,
}

impl RuleLoader {
    fn add_text(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        let parsed: RuleFile = serde_yaml::from_str(text).map_err(|source| RuleError::Parse {
            file: file.to_owned(),
            source,
        })?;
        for (index, spec) in parsed.rules.into_iter().enumerate() {
            let rule = compile(file, index, spec)?;
            if let Some(first) = self.seen.get(&rule.id) {
                return Err(RuleError::DuplicateId {
                    file: file.to_owned(),
                    rule: rule.id,
                    first: first.clone(),
                });
            }
            self.seen.insert(rule.id.clone(), file.to_owned());
            self.rules.push(rule);
        }
        for name in parsed.metadata_names {
            self.metadata_names
                .insert(name.trim_end_matches('.').to_ascii_lowercase());
        }
        for (i, exe) in parsed.local_resolvers.into_iter().enumerate() {
            if !exe.is_absolute() {
                return Err(RuleError::Invalid {
                    file: file.to_owned(),
                    rule: "localResolvers".into(),
                    field: format!("localResolvers[{i}]"),
                    message: format!("{}: must be an absolute path", exe.display()),
                });
            }
            self.local_resolvers.insert(exe);
        }
        self.behaviour.merge(file, parsed.behaviour)?;
        Ok(())
    }

    fn finish(self) -> RuleSet {
        let mut by_exe: HashMap<String, Vec<usize>> = HashMap::new();
        let mut any_exe = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.exe.is_empty() {
                any_exe.push(i);
            }
            for exe in &rule.exe {
                by_exe.entry(exe.clone()).or_default().push(i);
            }
        }
        RuleSet {
            rules: self.rules,
            by_exe,
            any_exe,
            metadata_names: self.metadata_names,
            local_resolvers: self.local_resolvers,
            behaviour: self.behaviour,
        }
    }
}

/// The default score of a type's default severity: the middle of GuardDuty's bands, as
/// GuardDuty itself assigns (Low 2, Medium 5, High 8).
pub fn default_score(finding_type: FindingType) -> f64 {
    match finding_type.default_severity().or_medium() {
        vigil_detection::Severity::Low => 2.0,
        vigil_detection::Severity::Medium => 5.0,
        vigil_detection::Severity::High => 8.0,
    }
}

fn compile(file: &str, index: usize, spec: RuleSpec) -> Result<Rule, RuleError> {
    let rule_name = if spec.id.is_empty() {
        format!("#{}", index + 1)
    } else {
        spec.id.clone()
    };
    let invalid = |field: &str, message: String| RuleError::Invalid {
        file: file.to_owned(),
        rule: rule_name.clone(),
        field: field.to_owned(),
        message,
    };
    if spec.id.is_empty() {
        return Err(invalid("id", "is required".into()));
    }
    if !spec
        .id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(invalid(
            "id",
            "may hold only letters, digits, '-', '_' and '.'".into(),
        ));
    }
    let finding_type: FindingType = spec
        .finding_type
        .parse()
        .map_err(|e: vigil_detection::UnknownFindingType| invalid("type", e.to_string()))?;
    if !EXEC_RULE_TYPES.contains(&finding_type) {
        return Err(invalid(
            "type",
            format!(
                "{finding_type} cannot be raised by an exec rule (allowed: {})",
                EXEC_RULE_TYPES
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let severity = match spec.severity {
        Some(s) if (1.0..=10.0).contains(&s) => s,
        Some(s) => {
            return Err(invalid("severity", format!("{s} is outside 1.0..=10.0")));
        }
        None => default_score(finding_type),
    };
    if spec.mitre.is_empty() {
        return Err(invalid(
            "mitre",
            "at least one ATT&CK technique id is required".into(),
        ));
    }
    for (i, tag) in spec.mitre.iter().enumerate() {
        if !is_technique_id(tag) {
            return Err(invalid(
                &format!("mitre[{i}]"),
                format!("{tag:?} is not a technique id like T1046 or T1059.004"),
            ));
        }
    }
    if spec.description.trim().is_empty() {
        return Err(invalid("description", "is required".into()));
    }
    let m = spec.matcher;
    for (i, exe) in m.exe.iter().enumerate() {
        if exe.is_empty() || exe.contains('/') {
            return Err(invalid(
                &format!("match.exe[{i}]"),
                format!("{exe:?} must be a file name without '/'"),
            ));
        }
    }
    for (i, exe) in m.not_exe.iter().enumerate() {
        if exe.is_empty() || exe.contains('/') {
            return Err(invalid(
                &format!("match.notExe[{i}]"),
                format!("{exe:?} must be a file name without '/'"),
            ));
        }
    }
    for (i, p) in m.parent.iter().enumerate() {
        if p.is_empty() || p.contains('/') {
            return Err(invalid(
                &format!("match.parent[{i}]"),
                format!("{p:?} must be a file name without '/'"),
            ));
        }
    }
    let regex_set = |field: &str, patterns: &[String]| -> Result<Option<RegexSet>, RuleError> {
        if patterns.is_empty() {
            return Ok(None);
        }
        for (i, p) in patterns.iter().enumerate() {
            RegexBuilder::new(p)
                .size_limit(MAX_PATTERN_BYTES)
                .build()
                .map_err(|e| invalid(&format!("{field}[{i}]"), e.to_string()))?;
        }
        RegexSetBuilder::new(patterns)
            .size_limit(MAX_PATTERN_BYTES)
            .build()
            .map(Some)
            .map_err(|e| invalid(field, e.to_string()))
    };
    let cmdline = regex_set("match.cmdline", &m.cmdline)?;
    let not_cmdline = regex_set("match.notCmdline", &m.not_cmdline)?;
    if m.script_lines && cmdline.is_none() {
        return Err(invalid(
            "match.scriptLines",
            "needs match.cmdline: it would match every line of every script".into(),
        ));
    }
    if m.exe.is_empty()
        && cmdline.is_none()
        && m.parent.is_empty()
        && m.elevated.is_none()
        && m.stdio_socket.is_none()
    {
        return Err(invalid(
            "match",
            "needs exe, cmdline, parent, elevated or stdioSocket: it would match every exec".into(),
        ));
    }
    let tool = match spec.tool {
        Some(t) if t.name.trim().is_empty() => {
            return Err(invalid("tool.name", "is empty".into()));
        }
        Some(t) if t.category.trim().is_empty() => {
            return Err(invalid("tool.category", "is empty".into()));
        }
        Some(t) => Some((t.name, t.category)),
        None => None,
    };
    Ok(Rule {
        id: spec.id,
        finding_type,
        severity,
        mitre: spec.mitre,
        description: spec.description,
        tool,
        origin: file.to_owned(),
        exe: m.exe,
        not_exe: m.not_exe,
        cmdline,
        not_cmdline,
        parent: m.parent,
        elevated: m.elevated,
        stdio_socket: m.stdio_socket,
        script_lines: m.script_lines,
    })
}

/// `T` and four digits, optionally `.` and three digits.
fn is_technique_id(tag: &str) -> bool {
    let b = tag.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..5]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..9]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(exe: &'a str, cmdline: &'a str) -> ExecFacts<'a> {
        ExecFacts {
            exe_name: exe,
            argv0_name: exe,
            filename_name: exe,
            cmdline,
            parent_exe_name: "bash",
            parent_comm: "bash",
            content_name: "",
            elevated: false,
            stdio_socket: false,
        }
    }

    #[test]
    fn builtin_rules_load() {
        let set = RuleSet::builtin().expect("built-in rules are valid");
        assert!(set.rules().len() >= 40, "{}", set.rules().len());
        // SuspiciousShellCreated is raised from the lineage's executables (detect/technique.rs);
        // rules files may still raise it.
        for t in EXEC_RULE_TYPES
            .iter()
            .filter(|t| **t != FindingType::ExecutionSuspiciousShellCreated)
        {
            assert!(
                set.rules().iter().any(|r| r.finding_type == *t),
                "no built-in rule raises {t}"
            );
        }
    }

    #[test]
    fn errors_name_file_rule_and_field() {
        let cases = [
            (
                "rules:\n  - id: a\n    type: Execution:Runtime/Nope\n    mitre: [T1000]\n    description: d\n    match: {exe: [x]}\n",
                "rule a: type",
            ),
            (
                "rules:\n  - id: a\n    type: Execution:Runtime/SuspiciousTool\n    mitre: [T1000]\n    description: d\n    match: {cmdline: ['(']}\n",
                "rule a: match.cmdline[0]",
            ),
            (
                "rules:\n  - id: a\n    type: Execution:Runtime/SuspiciousTool\n    mitre: [T1000]\n    description: d\n    match: {cmdline: [x, '(?i)\\w{1000}']}\n",
                "rule a: match.cmdline[1]",
            ),
            (
                "rules:\n  - id: a\n    type: Execution:Runtime/SuspiciousTool\n    mitre: [X1]\n    description: d\n    match: {exe: [x]}\n",
                "rule a: mitre[0]",
            ),
            (
                "rules:\n  - id: a\n    type: Execution:Runtime/SuspiciousTool\n    severity: 11\n    mitre: [T1000]\n    description: d\n    match: {exe: [x]}\n",
                "rule a: severity",
            ),
            (
                "rules:\n  - id: a\n    type: Execution:Runtime/SuspiciousTool\n    mitre: [T1000]\n    description: d\n    match: {}\n",
                "rule a: match",
            ),
            (
                "rules:\n  - type: Execution:Runtime/SuspiciousTool\n    mitre: [T1000]\n    description: d\n    match: {exe: [x]}\n",
                "rule #1: id",
            ),
            (
                "rules:\n  - id: a\n    type: DefenseEvasion:Runtime/KernelModuleLoaded\n    mitre: [T1000]\n    description: d\n    match: {exe: [x]}\n",
                "rule a: type",
            ),
            (
                "rules:\n  - id: a\n    type: Execution:Runtime/SuspiciousTool\n    mitre: [T1000]\n    description: d\n    match: {exe: [/bin/x]}\n",
                "rule a: match.exe[0]",
            ),
        ];
        for (text, want) in cases {
            let err = RuleSet::from_text("my.yaml", text).unwrap_err().to_string();
            assert!(err.starts_with("my.yaml: "), "{err}");
            assert!(err.contains(want), "{want:?} not in {err}");
        }
        let err = RuleSet::from_text("my.yaml", "rules:\n  - id: a\n    typo: 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("my.yaml") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn duplicate_ids_across_files_are_rejected() {
        let dir = std::env::temp_dir().join(format!("vigil-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("extra.yaml"),
            "rules:\n  - id: tool-nmap\n    type: Execution:Runtime/SuspiciousTool\n    mitre: [T1046]\n    description: d\n    match: {exe: [nmap2]}\n",
        )
        .unwrap();
        let err = RuleSet::load(true, Some(&dir)).unwrap_err().to_string();
        assert!(
            err.contains("extra.yaml: rule tool-nmap: id is already used in builtin:tools.yaml"),
            "{err}"
        );
        std::fs::write(
            dir.join("extra.yaml"),
            "rules:\n  - id: my-tool\n    type: Execution:Runtime/SuspiciousTool\n    mitre: [T1046]\n    description: d\n    match: {exe: [mytool]}\n",
        )
        .unwrap();
        let set = RuleSet::load(true, Some(&dir)).unwrap();
        assert_eq!(set.matching(&facts("mytool", "mytool"))[0].id, "my-tool");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn conditions_all_hold() {
        let set = RuleSet::from_text(
            "t.yaml",
            "rules:\n  - id: a\n    type: Execution:Runtime/SuspiciousShellCreated\n    mitre: [T1059]\n    description: d\n    match: {exe: [sh], parent: [nginx], notCmdline: [' -c ']}\n",
        )
        .unwrap();
        let mut f = facts("sh", "sh -i");
        assert!(set.matching(&f).is_empty(), "parent bash");
        f.parent_comm = "nginx";
        assert_eq!(set.matching(&f).len(), 1);
        f.cmdline = "sh -c true";
        assert!(set.matching(&f).is_empty(), "notCmdline");
    }

    #[test]
    fn script_lines_are_judged_by_the_rules_that_ask_for_them() {
        let yaml = "rules:\n  - id: lines\n    type: DefenseEvasion:Runtime/SuspiciousCommand\n    mitre: [T1070.003]\n    description: d\n    match: {exe: [bash], cmdline: ['unset\\s+HISTFILE'], scriptLines: true}\n  - id: argv-only\n    type: DefenseEvasion:Runtime/SuspiciousCommand\n    mitre: [T1070.003]\n    description: d\n    match: {exe: [bash], cmdline: ['set \\+o']}\n";
        let set = RuleSet::from_text("t.yaml", yaml).expect("rules load");
        let text = "#!/bin/bash\n# unset HISTFILE\n\n   unset HISTFILE  \nset +o history\n";
        assert_eq!(set.script_lines_matching("bash", text), ["unset HISTFILE"]);
        assert!(set.script_lines_matching("dash", text).is_empty(), "exe");
        let many = "unset HISTFILE\n".repeat(10);
        assert_eq!(
            set.script_lines_matching("bash", &many).len(),
            MAX_SCRIPT_LINES
        );
        let long = format!("unset HISTFILE {}", "é".repeat(300));
        assert!(set.script_lines_matching("bash", &long)[0].len() <= MAX_SCRIPT_LINE_BYTES);
        let none = RuleSet::from_text(
            "t.yaml",
            "rules:\n  - id: a\n    type: DefenseEvasion:Runtime/SuspiciousCommand\n    mitre: [T1070]\n    description: d\n    match: {exe: [bash], cmdline: ['x']}\n",
        )
        .expect("rules load");
        assert!(none.script_lines_matching("bash", "x\n").is_empty());
        let err = RuleSet::from_text(
            "t.yaml",
            "rules:\n  - id: a\n    type: DefenseEvasion:Runtime/SuspiciousCommand\n    mitre: [T1070]\n    description: d\n    match: {exe: [bash], scriptLines: true}\n",
        )
        .expect_err("scriptLines without cmdline");
        assert!(err.to_string().contains("match.scriptLines"), "{err}");
    }
}
