//! Technique classes recognised from what processes do, not from the command lines that asked
//! for it: persistence written into cron, at, systemd (units and generators), init, XDG autostart,
//! udev, motd and boot-time module locations, shell start-up files and the login environment, and
//! `at` jobs queued; defence evasion (shell
//! history removed or truncated, the journal and system logs wiped, ASLR switched off, a library
//! preloaded from outside the system's library directories); execution from memory-backed and
//! world-writable directories, scripts handed to an interpreter included; interactive shells
//! started by interpreters and by programs that are neither shells nor terminals.
//!
//! Programs are identified by what the kernel recorded: the resolved path of the executable
//! (`/proc/<pid>/exe` at exec), the path exec'd (a script's, for an interpreted program) and the
//! executables of the ancestors. Never by `comm`, which a process sets as it likes. The
//! knowledge (locations, owners, shells, interpreters, directories) is data in the `behaviour:`
//! section of the rules files (`node-agent/rules/behaviour.yaml`).

use std::path::{Path, PathBuf};

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    behaviour::{Behaviour, Draft, OwnersReach, PersistenceKind, Place, candidate},
    path_basename,
    redact::redacted_command_line,
};
use crate::event::{
    ActivityInfo, ExecInfo, FileInfo, ProcessRef, ProgramContent, normalize, resolve_exe,
};

/// `O_APPEND` and `O_TRUNC` of Linux (octal).
const O_APPEND: u32 = 0o2000;
const O_TRUNC: u32 = 0o1000;

/// Where the value ASLR is switched with lives.
const RANDOMIZE_VA_SPACE: &str = "/proc/sys/kernel/randomize_va_space";

/// Where `additional.ruleOrigin` says these checks come from.
const ORIGIN: &str = "builtin:behaviour";

/// A program as the kernel recorded it.
#[derive(Debug, Default)]
pub(super) struct Actor {
    /// Resolved path of the executable.
    pub(super) exe: Option<PathBuf>,
    /// The path exec'd, made absolute (a script for an interpreted program; a link's name).
    pub(super) exec_path: Option<PathBuf>,
    /// Ancestors, parent first: executable and path exec'd when the detector saw that exec.
    pub(super) ancestors: Vec<(Option<PathBuf>, Option<PathBuf>)>,
}

/// How far up the lineage a list of programs reaches.
#[derive(Clone, Copy)]
enum Reach {
    /// The program and every ancestor (a package manager's maintainer scripts).
    Lineage,
    /// The program and its parent (the editor `systemctl edit` runs).
    Parent,
}

impl Actor {
    /// Whether this program, or an ancestor within `reach`, is one of `paths`.
    fn is_one_of(&self, paths: &[String], reach: Reach) -> bool {
        let hit = |p: &Option<PathBuf>| {
            p.as_deref()
                .and_then(Path::to_str)
                .is_some_and(|p| paths.iter().any(|x| x == p))
        };
        let depth = match reach {
            Reach::Lineage => self.ancestors.len(),
            Reach::Parent => 1,
        };
        hit(&self.exe)
            || hit(&self.exec_path)
            || self
                .ancestors
                .iter()
                .take(depth)
                .any(|(e, x)| hit(e) || hit(x))
    }

    /// The executable's name without a version suffix (`python3.11` is `python`).
    fn name(&self) -> Option<String> {
        self.exe
            .as_deref()
            .map(|e| program_name(path_basename(e)).to_owned())
    }
}

/// A program name without its version (`python3.11`, `perl5.36`, `php8.2`: `python`, `perl`,
/// `php`), so one list entry covers every installed version.
pub(super) fn program_name(basename: &str) -> &str {
    basename.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
}

/// The program an exec runs, by its executable's name without a version; busybox runs as the
/// applet argv[0] names (`sh`, `wget`).
pub(super) fn program_run(e: &ExecInfo) -> &str {
    let exe_name = program_name(path_basename(&e.exe));
    if exe_name == "busybox" {
        e.argv
            .first()
            .map(|a| program_name(super::basename(a)))
            .unwrap_or(exe_name)
    } else {
        exe_name
    }
}

/// The program an exec runs, as [`program_run`] names it, unless no behaviour list knows that
/// name and the executable has the bytes of an installed program one does know (the
/// detector's tool hashes): a renamed or copied `curl`, `bash` or `python3.11`
/// (`cp /bin/bash /tmp/kworker`) is still that program to every check that asks what runs.
pub(super) fn program_identity<'a>(d: &'a Detector, e: &'a ExecInfo) -> &'a str {
    let by_name = program_run(e);
    // Every exec passes here: the hash lookup first (most executables are no installed tool,
    // and an installed tool run by its own name needs nothing more), the lists only then.
    match e
        .sha256
        .as_ref()
        .and_then(|digest| d.tool_hashes.get(digest))
        .map(|tool| program_name(tool))
    {
        Some(tool)
            if tool != by_name
                && !d.rules.behaviour().knows_program(by_name)
                && d.rules.behaviour().knows_program(tool) =>
        {
            tool
        }
        _ => by_name,
    }
}

/// An ancestor's program as [`program_identity`] names an exec's: by its executable's name,
/// or, when no list knows that name, by the bytes its exec had (the detector's memory of it,
/// the same process by its uuid) when those are an installed program's a list knows.
fn ancestor_identity<'a>(d: &'a Detector, pid: u32, uuid: Option<&str>, exe: &'a Path) -> &'a str {
    let by_name = program_name(path_basename(exe));
    let b = d.rules.behaviour();
    if b.knows_program(by_name) {
        return by_name;
    }
    uuid.and_then(|uuid| d.procs.get(&pid).filter(|r| r.uuid == uuid))
        .and_then(|r| r.sha256.as_ref())
        .and_then(|digest| d.tool_hashes.get(digest))
        .map(|tool| program_name(tool))
        .filter(|tool| b.knows_program(tool))
        .unwrap_or(by_name)
}

/// Whether a program name (see [`program_name`]) is on a list of names.
pub(super) fn listed(list: &[String], name: &str) -> bool {
    list.iter().any(|n| program_name(n) == name)
}

/// Forks followed up from a process that did not exec to the one that did.
const MAX_FORK_HOPS: usize = 8;

/// The acting process: from its exec (the detector's memory), else the pipeline's table; a
/// process that forked without exec'ing is its nearest exec'ing forebear's image.
pub(super) fn actor(d: &Detector, p: &ProcessRef, lookup: &dyn ProcessLookup) -> Actor {
    let ancestors_of = |lineage: &[crate::event::Ancestor]| {
        lineage
            .iter()
            .map(|a| {
                let exec_path = d
                    .procs
                    .get(&a.pid)
                    .filter(|r| r.uuid == a.uuid)
                    .and_then(|r| r.exec_path.clone());
                (a.exe.clone(), exec_path)
            })
            .collect::<Vec<_>>()
    };
    if let Some(r) = d
        .procs
        .get(&p.pid)
        .filter(|r| r.start_time_ns == p.start_time_ns && r.exe.is_some())
    {
        return Actor {
            exe: r.exe.clone(),
            exec_path: r.exec_path.clone(),
            ancestors: ancestors_of(&r.lineage),
        };
    }
    if let Some(k) = lookup
        .get(p.pid)
        .filter(|k| k.start_time_ns == p.start_time_ns)
    {
        return Actor {
            exe: k.exe.clone(),
            exec_path: None,
            ancestors: ancestors_of(&d.walk_lineage(k.ppid, lookup)),
        };
    }
    // Forked, not exec'd (since the agent started): the image of the nearest forebear that
    // exec'd, through the forks seen (`runc init` forks twice before it mounts anything).
    let mut parent = d.parents.get(&p.pid).copied().unwrap_or(p.ppid);
    for _ in 0..MAX_FORK_HOPS {
        if d.procs.get(&parent).is_some_and(|r| r.exe.is_some()) {
            break;
        }
        match d.parents.get(&parent) {
            Some(&up) if up != parent => parent = up,
            _ => break,
        }
    }
    match d.procs.get(&parent).filter(|r| r.exe.is_some()) {
        Some(r) => {
            let mut ancestors = vec![(r.exe.clone(), r.exec_path.clone())];
            ancestors.extend(ancestors_of(&r.lineage));
            Actor {
                exe: r.exe.clone(),
                exec_path: r.exec_path.clone(),
                ancestors,
            }
        }
        None => Actor::default(),
    }
}

/// The context of a finding about a shell and the program that started it: the shell's command
/// line, redacted, and the starter's executable and pid.
fn shell_started_context(e: &ExecInfo, parent_exe: &str, parent_pid: u32) -> RuntimeContext {
    let mut context = RuntimeContext {
        command_line_example: Some(redacted_command_line(&e.argv)),
        ..RuntimeContext::default()
    };
    let add = &mut context.additional;
    add.insert("shellStartedBy".into(), parent_exe.to_owned());
    add.insert("shellStarterPid".into(), parent_pid.to_string());
    context
}

/// What a check raises: the type, the check's id (`additional.ruleId`), its ATT&CK techniques
/// and its score (the type's default when `None`).
pub(super) struct Raises {
    pub(super) finding_type: FindingType,
    pub(super) rule: &'static str,
    pub(super) mitre: &'static str,
    pub(super) severity: Option<f64>,
}

/// A finding of these checks: `ruleId`, `ruleOrigin` and `mitreTechniques` as exec rules have.
pub(super) fn technique(
    d: &Detector,
    p: &ProcessRef,
    lookup: &dyn ProcessLookup,
    raises: Raises,
    mut draft: Draft,
) -> Candidate {
    let additional = &mut draft.context.additional;
    additional.insert("ruleId".into(), raises.rule.to_owned());
    additional.insert("ruleOrigin".into(), ORIGIN.to_owned());
    additional.insert("mitreTechniques".into(), raises.mitre.to_owned());
    draft.finding_type = raises.finding_type;
    // Each check's findings are its own: two checks raising the same type about the same file
    // (a downloaded script run from /tmp is both `behaviour-download-exec`, High, and
    // `behaviour-exec-from-world-writable-dir`, Low) must not share an id, or the second is
    // folded into the first as a repeat and never shown.
    draft.key = format!("{}\0{}", raises.rule, draft.key);
    let mut c = candidate(d, p, lookup, draft);
    if let Some(s) = raises.severity {
        c.severity = s;
    }
    c
}

pub(super) fn draft(
    title: &'static str,
    description: String,
    key: String,
    context: RuntimeContext,
) -> Draft {
    Draft {
        // Set by `technique` from its `Raises`.
        finding_type: FindingType::ExecutionSuspiciousCommand,
        title,
        description,
        key,
        context,
    }
}

/// A directory list entry (ending in `/`) that holds `path`.
fn under<'a>(dirs: &'a [String], path: &str) -> Option<&'a str> {
    dirs.iter()
        .find(|d| path.starts_with(d.as_str()))
        .map(String::as_str)
}

// --- exec ----------------------------------------------------------------------------------

/// Checks of one exec. `previous`: the image this process ran before it, when the detector saw
/// its exec (a process re-exec'ing in place).
pub(crate) fn check_exec(
    d: &Detector,
    e: &ExecInfo,
    previous: Option<&Path>,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let b = d.rules.behaviour();
    let mut out = Vec::new();
    out.extend(exec_from_writable_dir(d, b, e, lookup));
    out.extend(interactive_shell(d, b, e, previous, lookup));
    out.extend(loader_inputs(d, b, e, lookup));
    out.extend(crontab_install(d, b, e, lookup));
    out.extend(at_queue(d, b, e, lookup));
    out.extend(argv_padding(d, e, lookup));
    out.extend(hidden_program(d, b, e, lookup));
    out.extend(masquerading(d, b, e, lookup));
    out.extend(disk_editor_in_container(d, b, e, lookup));
    out.extend(glibc_tunables(d, e, lookup));
    out.extend(empty_argv0(d, e, lookup));
    out.extend(loader_proxy(d, e, lookup));
    out.extend(kernel_helper(d, e, lookup));
    out.extend(super::served::recon(d, e, lookup));
    out
}

/// ldd, which runs the dynamic loader on a program to list its libraries (`ld.so --verify`,
/// then `ld.so PROGRAM` in its tracing mode, which loads and never runs it). Trusted by the
/// path of the script it runs as, where only root can write.
const LOADER_TRACERS: [&str; 2] = ["/usr/bin/ldd", "/bin/ldd"];

/// Whether an executable's name is the dynamic loader's (`ld-linux-x86-64.so.2`,
/// `ld-linux-aarch64.so.1`, `ld-linux.so.2`, `ld64.so.2`, `ld-musl-x86_64.so.1`, `ld.so.1`).
fn is_dynamic_loader(name: &str) -> bool {
    ((name.starts_with("ld-linux") || name.starts_with("ld-musl-") || name.starts_with("ld64.so"))
        && name.contains(".so"))
        || name == "ld.so"
        || name.starts_with("ld.so.")
}

/// The dynamic loader's own command line (`ld.so [OPTION]... PROGRAM [ARG]...`).
struct LoaderCommand<'a> {
    /// Its options that take a value, in order (`--preload`, `/tmp/x.so`).
    options: Vec<(&'a str, &'a str)>,
    /// The program it is asked to run: its first operand after its options. None when it only
    /// lists, verifies or prints (`--list`, `--verify`, `--help`, `--version`,
    /// `--list-tunables`, `--list-diagnostics`) or names no program.
    program: Option<&'a str>,
}

/// The loader's options and program from its arguments (without argv[0]).
fn loader_command(args: &[String]) -> LoaderCommand<'_> {
    let (mut options, mut listing) = (Vec::new(), false);
    let mut args = args.iter();
    let program = loop {
        let Some(a) = args.next() else {
            break None;
        };
        match a.as_str() {
            "--list" | "--verify" | "--help" | "--version" | "--list-tunables"
            | "--list-diagnostics" => listing = true,
            "--library-path"
            | "--inhibit-rpath"
            | "--audit"
            | "--preload"
            | "--argv0"
            | "--glibc-hwcaps-prepend"
            | "--glibc-hwcaps-mask" => {
                if let Some(value) = args.next() {
                    options.push((a.as_str(), value.as_str()));
                }
            }
            "--" => break args.next().map(String::as_str),
            opt if opt.starts_with("--") => {}
            program => break Some(program),
        }
    };
    LoaderCommand {
        options,
        program: program.filter(|_| !listing),
    }
}

/// Whether the program the kernel ran is the dynamic loader itself (by the executable the
/// kernel ran, never `comm` or argv[0]).
fn runs_the_loader(e: &ExecInfo) -> bool {
    !e.fileless && is_dynamic_loader(path_basename(&e.exe))
}

/// A program run through the dynamic loader (`/lib64/ld-linux-x86-64.so.2 /bin/sh`): the
/// kernel execs the loader, which maps the program itself, so no exec names the program that
/// runs (GTFOBins' `ld.so`, Elastic's "System Binary Proxy Execution via ld.so"), and a file on
/// a `noexec` mount runs anyway. The loader is known by the executable the kernel ran, never by
/// `comm`; ldd and its children, and the loader's listing modes, are not this.
fn loader_proxy(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    if !runs_the_loader(e) {
        return None;
    }
    let program = loader_command(e.argv.get(1..)?).program?;
    let tracers: Vec<String> = LOADER_TRACERS.iter().map(|t| (*t).to_owned()).collect();
    if actor(d, &e.process, lookup).is_one_of(&tracers, Reach::Lineage) {
        return None;
    }
    let exe = e.exe.display().to_string();
    let mut context = exec_context(e, exe.clone());
    context
        .additional
        .insert("loadedProgram".into(), program.to_owned());
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-loader-proxy",
            mitre: "T1218,T1574",
            severity: Some(5.0),
        },
        draft(
            "A program was run through the dynamic loader",
            format!(
                "Process {} (pid {}) ran {program} through the dynamic loader {exe}: no exec \
                 names the program it runs.",
                e.process.comm, e.process.pid
            ),
            format!("{exe}\0{program}"),
            context,
        ),
    ))
}

/// A program started with `GLIBC_TUNABLES` set: the variable the dynamic loader parses before
/// anything else, whose parsing bug gave root through any setuid program (CVE-2023-4911,
/// Looney Tunables). High for a setuid program (the exploit's shape), Low otherwise: some
/// services tune malloc with it, and children inherit it.
fn glibc_tunables(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    if !e.glibc_tunables {
        return None;
    }
    let exe = e.exe.display().to_string();
    let mut context = exec_context(e, exe.clone());
    context
        .additional
        .insert("environment".into(), "GLIBC_TUNABLES".into());
    if e.setuid {
        context.additional.insert("setuid".into(), "true".into());
    }
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-glibc-tunables",
            mitre: "T1068,T1574.006",
            severity: Some(if e.setuid { 8.0 } else { 3.0 }),
        },
        draft(
            "A program was started with GLIBC_TUNABLES set",
            format!(
                "Process {} (pid {}) ran {exe} with GLIBC_TUNABLES in its environment{}.",
                e.process.comm,
                e.process.pid,
                if e.setuid {
                    ", as a setuid program (CVE-2023-4911)"
                } else {
                    ""
                }
            ),
            exe,
            context,
        ),
    ))
}

/// A program exec'd with no arguments at all, or with an empty `argv[0]`, as the kernel holds
/// its argument vector (since Linux 5.18 the kernel turns an empty vector into one empty
/// string): PwnKit (CVE-2021-4034) runs `pkexec` so, to make it read its environment as its
/// arguments. No shell, library or service execs that way. High for a setuid or setgid file
/// (the exploit's shape, whatever the program is called) or an exec that changed the effective
/// uid; Medium otherwise.
fn empty_argv0(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    if !e.argv0_empty {
        return None;
    }
    let exe = e.exe.display().to_string();
    let set_id = e.exe_set_id || e.setuid;
    let mut context = exec_context(e, exe.clone());
    context.additional.insert(
        "argumentVector".into(),
        if e.argv.is_empty() {
            "empty".into()
        } else {
            "emptyFirstArgument".into()
        },
    );
    if set_id {
        context.additional.insert("setId".into(), "true".into());
    }
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-exec-empty-argv",
            mitre: "T1068",
            severity: Some(if set_id { 8.0 } else { 5.0 }),
        },
        draft(
            "A program was started without arguments, not even its name",
            format!(
                "Process {} (pid {}) ran {exe} with an empty argv[0]{}.",
                e.process.comm,
                e.process.pid,
                if set_id {
                    ", as a setuid or setgid program (the shape of CVE-2021-4034, PwnKit)"
                } else {
                    ""
                }
            ),
            exe,
            context,
        ),
    ))
}

/// A file-system debugger run in a container (`debugfs /dev/sda1` in a privileged one): it
/// reads and writes the host's disk below its file system, past every mount and permission
/// (T1611). By the executable's name as the kernel ran it; on the host it is an
/// administrator's recovery tool.
fn disk_editor_in_container(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    e.process.container.as_ref()?;
    let exe = e.exe.to_str()?;
    let name = path_basename(&e.exe);
    if !b.disk_editors.iter().any(|n| n == name) {
        return None;
    }
    let context = exec_context(e, exe.to_owned());
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-disk-editor-in-container",
            mitre: "T1611,T1006",
            severity: None,
        },
        draft(
            "A file-system debugger ran in a container",
            format!(
                "Process {} (pid {}) ran {exe} in a container: it reads and writes a disk below \
                 its file system, the host's when the container can open it.",
                e.process.comm, e.process.pid
            ),
            exe.to_owned(),
            context,
        ),
    ))
}

/// The first hidden component of `path` (a name starting with `.`, not one of the names
/// programs make for their own use), with what precedes it.
fn hidden_component<'a>(b: &Behaviour, path: &'a str) -> Option<&'a str> {
    path.split('/').find(|c| {
        c.starts_with('.')
            && *c != "."
            && *c != ".."
            && !b
                .hidden_exec_allowed
                .iter()
                .any(|a| c.starts_with(a.as_str()))
    })
}

/// A program run from a hidden file or directory in a system, memory-backed or world-writable
/// directory (`mkdir /tmp/.x; cp payload /tmp/.x/.y; /tmp/.x/.y`; miners hide in
/// `/usr/lib/.cache` and `/dev/shm/.x`), T1564.001. By the binary's resolved path only: a
/// script exec'd through a link (`node_modules/.bin/x`) is its interpreter's business.
fn hidden_program(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    // Only a path known to be the file the kernel ran (hashed by its inode): when the process
    // is gone before the agent reads it, the path exec'd stands in, and for a script that is
    // the script, not the binary.
    if e.fileless || e.sha256.is_none() {
        return None;
    }
    let exe = e.exe.to_str()?;
    let dir = under(&b.hidden_exec_dirs, exe)?;
    let hidden = hidden_component(b, &exe[dir.len()..])?;
    let mut context = exec_context(e, exe.to_owned());
    context
        .additional
        .insert("hiddenName".into(), hidden.to_owned());
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-hidden-program",
            mitre: "T1564.001",
            severity: Some(5.0),
        },
        draft(
            "A program ran from a hidden file or directory",
            format!(
                "Process {} (pid {}) ran {exe}, hidden behind the name {hidden} in {dir}.",
                e.process.comm, e.process.pid
            ),
            exe.to_owned(),
            context,
        ),
    ))
}

/// Whether `name` is a shell's, or a restricted shell's (`rbash`), or `su`'s (`-su` is the
/// argv[0] some `su` give a login shell).
fn shell_like(b: &Behaviour, name: &str) -> bool {
    listed(&b.shells, name)
        || listed(&b.shells, name.strip_prefix('r').unwrap_or(name))
        || name == "su"
}

/// A path component made to pass for another in a listing (T1036.005, T1036.006): only dots
/// and blanks but neither `.` nor `..` (`mkdir ~/...`: the directory looks like the current or
/// the parent one), or a name ending in a blank (`init `, shown as `init`). No installer or
/// build makes either, so they are judged anywhere, homes included (unlike hidden names).
fn imitating_component(path: &str) -> Option<&str> {
    path.split('/').find(|c| {
        let dots_and_blanks =
            c.contains('.') && c.chars().all(|ch| ch == '.' || ch.is_whitespace());
        (dots_and_blanks && *c != "." && *c != "..") || c.ends_with(char::is_whitespace)
    })
}

/// A process dressed up as another (T1036): an argv[0] shaped like a kernel thread's name
/// (`exec -a '[kworker/0:1]' sh`: kernel threads never exec, so no program is started with
/// one); a shell started with another program's name as argv[0] (`exec -a sshd bash`; login
/// shells' `-bash` and `sh` for dash are shells' names); a copy of a shell whose file is named
/// like another program (`cp /bin/sh /tmp/sshd`: the executable's SHA-256 is that of the
/// installed shell). The executable is the resolved path the kernel ran, never `comm`.
fn masquerading(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    if e.fileless {
        return None;
    }
    let arg0 = e.argv.first()?;
    let exe_name = program_name(path_basename(&e.exe));
    let arg0_name = program_name(super::basename(arg0.trim_start_matches('-')));
    let content = e
        .sha256
        .and_then(|digest| d.tool_hashes.get(&digest))
        .map(|n| program_name(n));
    let trimmed = arg0.trim();
    // The file the kernel ran and the path exec'd (a `#!` script's, a link's).
    let imitation = [e.exe.to_str(), Some(e.filename.as_str())]
        .into_iter()
        .flatten()
        .find_map(imitating_component);
    let (how, severity) = if imitation.is_some() {
        (
            "a file or directory name that imitates another (`...`, a trailing space)",
            5.0,
        )
    } else if trimmed.len() > 2 && trimmed.starts_with('[') && trimmed.ends_with(']') {
        ("an argv[0] shaped like a kernel thread's name", 7.0)
    } else if kernel_thread_file_name(path_basename(&e.exe)) {
        ("an executable file named like a kernel thread", 7.0)
    } else if library_file_name(path_basename(&e.exe)) {
        ("an executable file named like a shared library", 7.0)
    } else if listed(&b.shells, exe_name) && !shell_like(b, arg0_name) && arg0_name != exe_name {
        ("a shell started under another program's name", 5.0)
    } else if let Some(content) = content
        && listed(&b.shells, content)
        && !shell_like(b, exe_name)
    {
        ("a copy of a shell under another program's name", 5.0)
    } else if daemon_name(b, path_basename(&e.exe))
        && e.exe.to_str().is_some_and(|exe| placed_dir(b, exe))
    {
        (
            "an executable file named like a system daemon, in a memory-backed or \
             world-writable directory",
            5.0,
        )
    } else {
        return None;
    };
    let exe = e.exe.display().to_string();
    let mut context = exec_context(e, exe.clone());
    context.additional.insert("masquerade".into(), how.into());
    context.additional.insert("argv0".into(), arg0.clone());
    if let Some(name) = imitation {
        context
            .additional
            .insert("imitatingName".into(), format!("{name:?}"));
    }
    if let Some(content) = content {
        context
            .additional
            .insert("contentOf".into(), content.to_owned());
    }
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-masquerading",
            mitre: "T1036.004,T1036.005,T1036.006",
            severity: Some(severity),
        },
        draft(
            "A process is dressed up as another program",
            format!(
                "Process {} (pid {}) runs {exe} as `{arg0}`: {how}.",
                e.process.comm, e.process.pid
            ),
            format!("{exe}\0{arg0}"),
            context,
        ),
    ))
}

/// Kernel threads' names, less their numbers (`kswapd0`, `kworker/0:2`), that miner and botnet
/// droppers give their files (Outlaw's `kswapd0`, XorDDoS's and Kinsing's `kworker` copies).
/// Kernel threads are never exec'd from a file and no package installs a program so named; the
/// generic words among them (`migration`, `writeback`, `watchdog`, a real daemon) are left out.
const KERNEL_THREAD_NAMES: &[&str] = &[
    "kworker",
    "kthreadd",
    "kswapd",
    "ksoftirqd",
    "kdevtmpfs",
    "khugepaged",
    "kauditd",
    "kcompactd",
    "kblockd",
    "ksmd",
    "khungtaskd",
    "kthrotld",
    "kintegrityd",
    "rcu_sched",
    "rcu_preempt",
    "rcu_gp",
    "jbd",
];

/// Whether an executable's file name, or a thread's name, is shaped like a kernel thread's:
/// bracketed (`[kthreadd]`) or a kernel thread's name with its numbers and `/`, `:` suffix
/// (`kswapd0`, `kworker`, `kworker/1:1`).
fn kernel_thread_file_name(name: &str) -> bool {
    if name.len() > 2 && name.starts_with('[') && name.ends_with(']') {
        return true;
    }
    let stem = name
        .split([':', '/'])
        .next()
        .unwrap_or(name)
        .trim_end_matches(|c: char| c.is_ascii_digit());
    KERNEL_THREAD_NAMES.contains(&stem)
}

/// A name as the kernel holds it for a process: its first 15 bytes (`TASK_COMM_LEN`, less the
/// terminating zero), `systemd-journal` for `systemd-journald`.
fn comm_of(name: &str) -> &str {
    name.get(..15).unwrap_or(name)
}

/// Whether `name` (a process name, or a file name as exec would make it one) is one of the
/// system's daemons (`behaviour.daemonNames`, as the kernel holds them).
fn daemon_name(b: &Behaviour, name: &str) -> bool {
    let comm = comm_of(name);
    b.daemon_names.iter().any(|n| n == comm)
}

/// Whether an executable's file name is a shared library's (`libudev.so.6`, `libfoo.so`):
/// XorDDoS and its kin copy themselves to `/lib/libudev.so.6` and run that. glibc's own
/// runnable libraries (`libc.so.6` prints its version) are left out; the dynamic loader's names
/// start with `ld`, not `lib`.
fn library_file_name(name: &str) -> bool {
    const RUNNABLE: &[&str] = &["libc.so.6", "libpthread.so.0", "libc.musl-x86_64.so.1"];
    let Some(rest) = name.strip_prefix("lib") else {
        return false;
    };
    let Some((stem, version)) = rest.split_once(".so") else {
        return false;
    };
    !stem.is_empty()
        && !RUNNABLE.contains(&name)
        && (version.is_empty()
            || version.strip_prefix('.').is_some_and(|v| {
                v.split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }))
}

/// A run of one repeated character at least this long in a command line too long for the
/// exec record is padding.
pub(super) const PADDING_RUN: usize = 512;

/// The longest run of one repeated byte in the arguments joined by spaces (empty arguments
/// padding a command line count as spaces too), with the byte.
fn longest_run(argv: &[String]) -> (usize, u8) {
    let (mut best, mut best_byte) = (0, 0);
    let (mut run, mut prev) = (0, None);
    let bytes = argv
        .iter()
        .enumerate()
        .flat_map(|(i, a)| (i > 0).then_some(b' ').into_iter().chain(a.bytes()));
    for b in bytes {
        run = if prev == Some(b) { run + 1 } else { 1 };
        prev = Some(b);
        if run > best {
            (best, best_byte) = (run, b);
        }
    }
    (best, best_byte)
}

/// A command line longer than the exec record holds, padded with a long run of one character:
/// the padding pushes what follows it past what sensors keep (the kernel now keeps the end
/// too, so the command rules still see it). Medium: there is no ordinary reason for both.
fn argv_padding(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    if !e.argv_truncated {
        return None;
    }
    let (run, byte) = longest_run(&e.argv);
    if run < PADDING_RUN {
        return None;
    }
    let shown = if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("0x{byte:02x}")
    };
    let mut context = RuntimeContext {
        command_line_example: Some(redacted_command_line(&collapse_runs(&e.argv))),
        ..RuntimeContext::default()
    };
    context
        .additional
        .insert("argvPadding".into(), format!("{run} x {shown}"));
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-argv-padding",
            mitre: "T1027",
            severity: Some(5.0),
        },
        draft(
            "A command line was padded past what sensors record",
            format!(
                "Process {} (pid {}) was exec'd with a command line longer than the exec \
                 record keeps, padded with {run} repetitions of {shown}.",
                e.process.comm, e.process.pid
            ),
            String::new(),
            context,
        ),
    ))
}

/// The arguments with every run of a repeated character longer than 16 cut to 16 and a note
/// of how many were left out, for showing a padded command line.
fn collapse_runs(argv: &[String]) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let mut out = String::new();
            let mut chars = a.chars().peekable();
            while let Some(c) = chars.next() {
                let mut n = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    n += 1;
                }
                if n > 16 {
                    out.extend(std::iter::repeat_n(c, 16));
                    out.push_str(&format!("[... {} more]", n - 16));
                } else {
                    out.extend(std::iter::repeat_n(c, n));
                }
            }
            out
        })
        .collect()
}

/// The file a shell or interpreter runs, from its arguments: the first operand that is not an
/// option or an option's value, or the file an inline program loads and runs as code
/// (`python3 -c "exec(open('x.py').read())"`: [`inline_loaded_file`]). `None` when it runs a
/// command string that loads nothing (`-c`, `-e`, `-m`, ...) or reads standard input.
fn script_operand<'a>(b: &Behaviour, name: &str, argv: &'a [String]) -> Option<&'a str> {
    match operand(b, name, argv) {
        Operand::Script(s) => Some(s),
        Operand::Runs(_) => inline_program(b, name, argv).and_then(|p| inline_loaded_file(name, p)),
        Operand::Nothing => None,
    }
}

/// The file an inline program (`text`, run by interpreter `name`) loads and runs as code, as
/// its text names it in a string literal: python's `exec(open(PATH).read())`,
/// `exec(compile(open(PATH)...))` and `runpy.run_path(PATH)`, ruby's `load`, node's `require` of
/// a path, php's `include` and `require`. A module by name (`require('fs')`, `require 'json'`)
/// is no file. perl's `do FILE` and a shell's `. FILE` are seen by the kernel as they read it.
fn inline_loaded_file<'a>(name: &str, text: &'a str) -> Option<&'a str> {
    let calls: &[&str] = match name {
        "python" => &["exec(open(", "exec(compile(open(", "run_path("],
        "ruby" => &[
            "load(",
            "load ",
            "require_relative(",
            "require_relative ",
            "require(",
            "require ",
        ],
        "node" | "nodejs" | "bun" | "deno" => &["require(", "import("],
        "php" => &[
            "include(",
            "include ",
            "include_once(",
            "include_once ",
            "require(",
            "require ",
            "require_once(",
            "require_once ",
        ],
        _ => return None,
    };
    let a_path = |p: &str| {
        !p.is_empty()
            && (name == "python"
                || p.starts_with('/')
                || p.starts_with("./")
                || p.starts_with("../")
                || (name == "ruby" && p.ends_with(".rb"))
                || (name == "php" && p.ends_with(".php")))
    };
    for call in calls {
        let mut rest = text;
        while let Some(at) = rest.find(call) {
            rest = &rest[at + call.len()..];
            let after = rest.trim_start();
            let Some(quote) = after
                .chars()
                .next()
                .filter(|c| matches!(c, '\'' | '"' | '`'))
            else {
                continue;
            };
            let body = &after[1..];
            if let Some(end) = body.find(quote)
                && a_path(&body[..end])
            {
                return Some(&body[..end]);
            }
        }
    }
    None
}

/// What a shell's or interpreter's arguments say it runs.
enum Operand<'a> {
    /// This file.
    Script(&'a str),
    /// What this option says (`-c`, `-e`, `-m`, `-s`, `-`, or a cluster holding one).
    Runs(&'a str),
    /// Nothing named: standard input.
    Nothing,
}

/// Where a shell or interpreter takes the program it runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProgramInput<'a> {
    /// Standard input: no operand, `-s`, `-`, `/dev/stdin`.
    Stdin,
    /// An inherited file descriptor its operand names (`/dev/fd/63`, `/proc/self/fd/63`).
    Fd(u32),
    /// A script file.
    Script(&'a str),
    /// A command string or a module (`-c`, `-e`, `-m`).
    Command,
}

/// The script file a shell or interpreter exec runs from its operand (`sh x.sh`, `python3 -u
/// x.py`), as written in argv; `None` for anything else (a command string, standard input, a
/// program that is neither). The program is the one argv[0] names, busybox by its applet, as
/// for the checks of writable directories.
pub(crate) fn script_operand_of<'a>(b: &Behaviour, argv: &'a [String]) -> Option<&'a str> {
    let name = argv
        .first()
        .map(|a| program_name(super::basename(a).trim_start_matches('-')))?;
    if !listed(&b.shells, name) && !listed(&b.interpreters, name) {
        return None;
    }
    match program_input(b, name, argv) {
        ProgramInput::Script(s) => Some(s),
        // A command string that loads a file as code (`exec(open('x.py').read())`).
        ProgramInput::Command => script_operand(b, name, argv),
        ProgramInput::Stdin | ProgramInput::Fd(_) => None,
    }
}

/// A shell or interpreter whose arguments say it reads its program on standard input.
pub(crate) fn reads_program_on_stdin(b: &Behaviour, argv: &[String]) -> bool {
    let Some(name) = argv
        .first()
        .map(|a| program_name(super::basename(a).trim_start_matches('-')))
    else {
        return false;
    };
    (listed(&b.shells, name) || listed(&b.interpreters, name))
        && matches!(program_input(b, name, argv), ProgramInput::Stdin)
}

/// Where the program a shell or interpreter runs comes from, from its arguments.
pub(super) fn program_input<'a>(b: &Behaviour, name: &str, argv: &'a [String]) -> ProgramInput<'a> {
    match operand(b, name, argv) {
        Operand::Script(s) => match fd_operand(s) {
            Some(0) => ProgramInput::Stdin,
            Some(fd) => ProgramInput::Fd(fd),
            None if s == "-" => ProgramInput::Stdin,
            None => ProgramInput::Script(s),
        },
        Operand::Runs(flag) => {
            let shell = listed(&b.shells, name);
            let short = flag.starts_with('-') && !flag.starts_with("--");
            if flag == "-" || (shell && short && flag.contains('s') && !flag.contains('c')) {
                ProgramInput::Stdin
            } else {
                ProgramInput::Command
            }
        }
        Operand::Nothing => ProgramInput::Stdin,
    }
}

/// Whether a shell or interpreter runs a program written inline in its arguments (`python3 -c
/// CODE`, `perl -e`, `ruby -e`, `node -e`, `php -r`, `bash -c`), not a module (`python3 -m pip`)
/// nor a file.
pub(super) fn runs_inline_program(b: &Behaviour, name: &str, argv: &[String]) -> bool {
    if !listed(&b.shells, name) && !listed(&b.interpreters, name) {
        return false;
    }
    match operand(b, name, argv) {
        Operand::Runs(flag) => {
            program_input(b, name, argv) == ProgramInput::Command
                && !(name == "python" && flag.starts_with('-') && flag.ends_with('m'))
        }
        _ => false,
    }
}

/// The program text an inline runner was given: the argument after its `-c`, `-e` (or a cluster
/// holding one), when [`runs_inline_program`] says it runs one.
pub(super) fn inline_program<'a>(b: &Behaviour, name: &str, argv: &'a [String]) -> Option<&'a str> {
    if !runs_inline_program(b, name, argv) {
        return None;
    }
    let Operand::Runs(flag) = operand(b, name, argv) else {
        return None;
    };
    let at = argv.iter().position(|a| std::ptr::eq(a.as_str(), flag))?;
    argv.get(at + 1).map(String::as_str)
}

/// The file descriptor a path names through `/dev/fd`, `/proc/self/fd` or `/dev/stdin`.
fn fd_operand(path: &str) -> Option<u32> {
    if path == "/dev/stdin" {
        return Some(0);
    }
    ["/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"]
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .and_then(|n| n.parse().ok())
}

fn operand<'a>(b: &Behaviour, name: &str, argv: &'a [String]) -> Operand<'a> {
    let shell = listed(&b.shells, name);
    // Options that take the next argument as their value, and options after which the program
    // runs something other than a file.
    let (with_value, runs_other): (&[&str], &[&str]) = match name {
        _ if shell => (
            &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"],
            &["-c", "-s"],
        ),
        "python" => (&["-W", "-X", "-Q"], &["-c", "-m", "-"]),
        "perl" => (&["-I", "-M", "-m", "-x"], &["-e", "-E"]),
        "ruby" => (&["-I", "-r", "-C", "-E"], &["-e"]),
        "node" | "nodejs" | "bun" | "deno" => (
            &["-r", "--require", "--import"],
            &["-e", "-p", "--eval", "--print"],
        ),
        "php" => (&["-d", "-c", "-z"], &["-r", "-R", "-B", "-E"]),
        "lua" | "luajit" => (&["-l"], &["-e"]),
        _ => (&[], &["-e", "-c"]),
    };
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "--" {
            return args
                .next()
                .map_or(Operand::Nothing, |s| Operand::Script(s.as_str()));
        }
        if runs_other.contains(&a.as_str()) {
            return Operand::Runs(a.as_str());
        }
        if with_value.contains(&a.as_str()) {
            args.next();
            continue;
        }
        if a.starts_with('-') || (shell && a.starts_with('+')) {
            // Combined single-letter flags: `bash -lc CMD` and `python3 -uc CMD` run a
            // command, `bash -ex FILE` does not.
            let cluster = !a.starts_with("--") && a.len() > 2;
            if cluster
                && runs_other
                    .iter()
                    .filter(|r| r.len() == 2)
                    .any(|r| a[1..].contains(&r[1..]))
            {
                return Operand::Runs(a.as_str());
            }
            continue;
        }
        return Operand::Script(a.as_str());
    }
    Operand::Nothing
}

/// An executable, a script run directly or a script handed to an interpreter, in a
/// memory-backed or world-writable directory.
fn exec_from_writable_dir(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    if e.fileless {
        // A memfd: FilelessExecution says it.
        return None;
    }
    // Borrowed when the path is UTF-8 (nearly always): every exec passes here.
    let exe = e.exe.to_string_lossy();
    // A `#!` script: the kernel ran the interpreter named on its first line and put the path
    // exec'd after it in argv (`[interpreter, (argument,) script, ...]`). A symbolic link exec'd
    // (a venv's `bin/python3`) is not a script.
    let shebang = e.argv.iter().skip(1).take(2).any(|a| *a == e.filename);
    // The program whose arguments say which script it runs: argv[0] as the kernel recorded it
    // (for a `#!` script, the interpreter of its first line). `exec -a` can hide it.
    let name = e
        .argv
        .first()
        .map(|a| program_name(super::basename(a).trim_start_matches('-')))
        .unwrap_or_default();
    let interpreter = listed(&b.shells, name) || listed(&b.interpreters, name);
    let script = interpreter
        .then(|| script_operand(b, name, &e.argv))
        .flatten()
        .map(|s| {
            normalize(&resolve_exe(s, e.cwd.as_deref()))
                .display()
                .to_string()
        });
    // The file that runs: the binary, else the script exec'd (#!), else the script operand,
    // else the file on standard input a shell reads its program from (`sh < /tmp/x.sh`).
    let from_script = || {
        script
            .as_deref()
            .and_then(|s| {
                placed(b, s).map(|at| (s.to_owned(), "script passed to an interpreter", at))
            })
            .or_else(|| {
                let s = e.stdin_script.as_deref()?.to_str()?;
                placed(b, s).map(|at| (s.to_owned(), "script read on standard input", at))
            })
    };
    let (file, what, (dir, memory)) = placed(b, &exe)
        .map(|at| (exe.clone().into_owned(), "binary", at))
        .or_else(|| {
            if !shebang {
                return None;
            }
            let exec_path = normalize(&resolve_exe(&e.filename, e.cwd.as_deref()))
                .display()
                .to_string();
            (exec_path != exe)
                .then(|| placed(b, &exec_path).map(|at| (exec_path.clone(), "script", at)))
                .flatten()
        })
        .or_else(from_script)?;
    // Memory-backed directories hold nothing installed: Medium everywhere. World-writable
    // ones hold build and test programs on a developer's host (Low there), never in a
    // container's image (Medium).
    let severity = if memory || e.process.container.is_some() {
        6.0
    } else {
        3.0
    };
    let mut context = exec_context(e, file.clone());
    context
        .additional
        .insert("executionDirectory".into(), dir.to_owned());
    context
        .additional
        .insert("executedFile".into(), what.into());
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionSuspiciousCommand,
            rule: if memory {
                "behaviour-exec-from-memory-dir"
            } else {
                "behaviour-exec-from-world-writable-dir"
            },
            mitre: "T1059,T1036.005",
            severity: Some(severity),
        },
        draft(
            if memory {
                "A program ran from a memory-backed directory"
            } else {
                "A program ran from a world-writable directory"
            },
            format!(
                "Process {} (pid {}) ran {file} ({what}) from {dir}.",
                e.process.comm, e.process.pid
            ),
            file,
            context,
        ),
    ))
}

/// The directory list entry holding `path`, and whether it is memory-backed.
fn placed<'a>(b: &'a Behaviour, path: &str) -> Option<(&'a str, bool)> {
    memory_dir(b, path)
        .map(|d| (d, true))
        .or_else(|| under(&b.world_writable_exec_dirs, path).map(|d| (d, false)))
}

/// The memory-backed directory (`memoryExecDirs`, `memoryStateDirs`) holding the program
/// `path`, unless the system put it there (`memoryExecInstalled`).
fn memory_dir<'a>(b: &'a Behaviour, path: &str) -> Option<&'a str> {
    if under(&b.memory_exec_installed, path).is_some() {
        return None;
    }
    under(&b.memory_exec_dirs, path).or_else(|| under(&b.memory_state_dirs, path))
}

/// Whether `path` is in a memory-backed or world-writable directory.
pub(crate) fn placed_dir(b: &Behaviour, path: &str) -> bool {
    placed(b, path).is_some()
}

/// Whether a shell starts interactively: no command string (`-c`), no script, and commands
/// not coming from a pipe or a file (standard input as the kernel saw it at exec, or `-s`),
/// unless `-i` says so. `curl ... | sh` and `base64 -d | sh` are not interactive shells.
fn interactive(b: &Behaviour, name: &str, argv: &[String], stdin: Option<&str>) -> bool {
    let (mut explicit, mut from_stdin) = (false, matches!(stdin, Some("pipe" | "file")));
    for a in argv.iter().skip(1) {
        if a == "--" {
            break;
        }
        if a.starts_with('-') && !a.starts_with("--") {
            if a.contains('c') {
                return false;
            }
            from_stdin |= a.contains('s');
            explicit |= a.contains('i');
        }
    }
    if explicit {
        return script_operand(b, name, argv).is_none();
    }
    !from_stdin && script_operand(b, name, argv).is_none()
}

/// The program that wanted an exec run, looking through shells and wrappers: first the image
/// this process ran before the exec (`perl -e 'exec "/bin/sh"'` replaces perl with the shell in
/// the same process, whose parent is perl's), then its ancestors (at most eight). Its pid,
/// executable, program name and uuid; `None` at the first one whose executable is unknown
/// (nothing to judge by, never by its comm).
pub(super) fn starter<'a>(
    d: &'a Detector,
    b: &Behaviour,
    e: &'a ExecInfo,
    previous: Option<&'a Path>,
) -> Option<(u32, &'a Path, &'a str, Option<&'a str>)> {
    let before = previous.map(|exe| (e.process.pid, Some(exe), None));
    let ancestors = e
        .lineage
        .iter()
        .take(8)
        .map(|a| (a.pid, a.exe.as_deref(), Some(a.uuid.as_str())));
    for (pid, exe, uuid) in before.into_iter().chain(ancestors) {
        let exe = exe?;
        let n = ancestor_identity(d, pid, uuid, exe);
        if !listed(&b.shells, n) && !listed(&b.shell_wrappers, n) {
            return Some((pid, exe, n, uuid));
        }
    }
    None
}

/// An interactive shell whose nearest ancestor that is not a shell (nor a wrapper such as
/// `script` or `env`) is an interpreter, or a program that does not start shells for people
/// (a terminal, a login, a multiplexer, init, a container runtime).
fn interactive_shell(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    previous: Option<&Path>,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let name = program_identity(d, e);
    if !listed(&b.shells, name) || e.argv_truncated {
        return None;
    }
    // Not interactive: only a command string a web or database server had a shell run counts
    // (below).
    let command = if interactive(b, name, &e.argv, e.stdin) {
        None
    } else {
        Some(command_string(&e.argv)?)
    };
    let (parent_pid, parent_exe, parent_name, parent_uuid) = starter(d, b, e, previous)?;
    if let Some(command) = command {
        return server_shell(
            d,
            b,
            e,
            command,
            (parent_pid, parent_exe, parent_name, parent_uuid),
            lookup,
        );
    }
    let by_interpreter = listed(&b.interpreters, parent_name);
    // A program that starts shells for people, by name, where programs are installed: a copy
    // named `sshd` or `tmux` in `/tmp` or `/dev/shm` is no terminal.
    if !by_interpreter
        && listed(&b.shell_parents, parent_name)
        && parent_exe.to_str().is_none_or(|p| placed(b, p).is_none())
    {
        return None;
    }
    let parent_exe = parent_exe.display().to_string();
    let context = shell_started_context(e, &parent_exe, parent_pid);
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionSuspiciousShellCreated,
            rule: if by_interpreter {
                "behaviour-shell-from-interpreter"
            } else {
                "behaviour-shell-from-program"
            },
            mitre: "T1059.004",
            severity: None,
        },
        draft(
            if by_interpreter {
                "An interpreter started an interactive shell"
            } else {
                "A program that is not a shell or terminal started an interactive shell"
            },
            format!(
                "Process {} (pid {}) is an interactive shell started by {parent_exe} (pid {}).",
                e.process.comm, e.process.pid, parent_pid
            ),
            parent_exe,
            context,
        ),
    ))
}

/// The command string of `sh -c STRING` (the operand after the option cluster holding `c`).
fn command_string(argv: &[String]) -> Option<&str> {
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "--" || !a.starts_with('-') || a.starts_with("--") {
            return None;
        }
        if a.contains('c') {
            return args.next().map(String::as_str);
        }
    }
    None
}

/// Whether a server's command string only runs one of its known helpers (`helpers`): PHP's
/// `mail()` pipes into `sendmail -t -i` through `sh -c`, Apache's piped logs run `rotatelogs` or
/// `cronolog` (with `exec` in front), MariaDB's Galera runs `wsrep_sst_rsync ...`. One simple
/// command, nothing a shell would expand or chain.
fn server_helper(helpers: &[String], command: &str) -> bool {
    let command = command.trim();
    let command = command
        .strip_prefix("exec ")
        .unwrap_or(command)
        .trim_start();
    if command.contains([';', '|', '&', '`', '$', '(', ')', '<', '>', '\n']) {
        return false;
    }
    command
        .split_whitespace()
        .next()
        .is_some_and(|w| listed(helpers, program_name(path_basename(Path::new(w)))))
}

/// Whether a command string names a PostgreSQL write-ahead-log file, as the commands PostgreSQL
/// runs to archive and restore its log do once it has put in their `%p`, `%f` and `%r`: a
/// segment (24 hex digits, maybe `.partial` or `.NNNNNNNN.backup` after it), a timeline's
/// history (`00000002.history`), or the names recovery restores into (`RECOVERYXLOG`,
/// `RECOVERYHISTORY`). `archive_command`, `restore_command`, `archive_cleanup_command` and
/// `recovery_end_command` mean nothing without them; an injected command has none unless its
/// author writes one in (the residual miss, docs/EFFICACY.md).
fn names_wal_file(command: &str) -> bool {
    command
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '.')
        .any(|word| {
            let stem = word.split('.').next().unwrap_or(word);
            let hex = |w: &str, n: usize| {
                w.len() == n
                    && w.bytes()
                        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
            };
            hex(stem, 24)
                || (hex(stem, 8) && word.ends_with(".history"))
                || word == "RECOVERYXLOG"
                || word == "RECOVERYHISTORY"
        })
}

/// A shell a server had run a command string (`sh -c 'id; uname -a'`), with the rule it raises.
///
/// Web servers (`webServers`): PHP's `system()`, `exec()`, `shell_exec()`, `passthru()`,
/// `popen()` and backticks, a CGI's or a template's injection, all reach the shell this way
/// (T1505.003, T1190; Tracee's "web server spawned a shell"). A web server runs no shell in its
/// ordinary work but for its helpers (`webServerHelpers`: `sendmail` for PHP's `mail()`,
/// `rotatelogs` for piped logs). Scripts run as CGI programs are not command strings.
///
/// Database servers (`databaseServers`): PostgreSQL's `COPY ... FROM PROGRAM` (and `TO
/// PROGRAM`) runs its string through `sh -c` in the backend serving the query, as does a
/// `sys_exec()` UDF loaded into MySQL (T1190, T1059.004; Elastic's "remote code execution via
/// PostgreSQL"). The server's own shells are PostgreSQL's archiving and recovery commands,
/// which name a WAL file (`names_wal_file`), and the helpers in `databaseServerHelpers` run
/// alone (`true` as a do-nothing `archive_command`, Galera's state transfer scripts).
///
/// GuardDuty's type for a shell started by a network service, at its default, Low.
fn server_shell(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    command: &str,
    (parent_pid, parent_exe, parent_name, parent_uuid): (u32, &Path, &str, Option<&str>),
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let (rule, mitre, title, server) = if listed(&b.web_servers, parent_name) {
        if server_helper(&b.web_server_helpers, command) {
            return None;
        }
        (
            "behaviour-shell-from-web-server",
            "T1505.003,T1059.004",
            "A web server had a shell run a command",
            "web server",
        )
    } else if listed(&b.interpreters, parent_name) && d.servers.serves(parent_pid, parent_uuid) {
        // A web application in an interpreter (`served`): known by the connections it
        // accepted, not by name.
        (
            "behaviour-shell-from-web-server",
            "T1505.003,T1059.004",
            "A web server had a shell run a command",
            "network service run by an interpreter (it accepted TCP connections)",
        )
    } else if listed(&b.database_servers, parent_name) {
        if server_helper(&b.database_server_helpers, command) || names_wal_file(command) {
            return None;
        }
        (
            "behaviour-shell-from-database-server",
            "T1190,T1059.004",
            "A database server had a shell run a command",
            "database server",
        )
    } else {
        return None;
    };
    let parent_exe = parent_exe.display().to_string();
    let context = shell_started_context(e, &parent_exe, parent_pid);
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionSuspiciousShellCreated,
            rule,
            mitre,
            severity: None,
        },
        draft(
            title,
            format!(
                "Process {} (pid {}) is a shell running a command for the {server} \
                 {parent_exe} (pid {parent_pid}).",
                e.process.comm, e.process.pid
            ),
            parent_exe,
            context,
        ),
    ))
}

/// One of the dynamic loader's inputs that choose the code a program runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoaderInput {
    /// `LD_PRELOAD`, `ld.so --preload`: libraries mapped before the program's own.
    Preload,
    /// `LD_AUDIT`, `ld.so --audit`: libraries the loader calls at every symbol binding.
    Audit,
    /// `LD_LIBRARY_PATH`, `ld.so --library-path`: directories searched before the system's.
    LibraryPath,
}

impl LoaderInput {
    /// The environment variable.
    fn variable(self) -> &'static str {
        match self {
            Self::Preload => "LD_PRELOAD",
            Self::Audit => "LD_AUDIT",
            Self::LibraryPath => "LD_LIBRARY_PATH",
        }
    }

    /// The loader's option for the same input.
    fn from_option(option: &str) -> Option<Self> {
        match option {
            "--preload" => Some(Self::Preload),
            "--audit" => Some(Self::Audit),
            "--library-path" => Some(Self::LibraryPath),
            _ => None,
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Self::Preload => "behaviour-ld-preload",
            Self::Audit => "behaviour-ld-audit",
            Self::LibraryPath => "behaviour-ld-library-path",
        }
    }

    /// The `additional` field holding the value, and the start of the finding's key.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Preload => ("ldPreload", "ld-preload"),
            Self::Audit => ("ldAudit", "ld-audit"),
            Self::LibraryPath => ("ldLibraryPath", "ld-library-path"),
        }
    }
}

/// A loader input as one exec gave it: from the environment, or as an option on the command
/// line of the loader run as the program.
struct LoaderSetting<'a> {
    input: LoaderInput,
    value: &'a str,
    /// The loader's option (`--preload`); None for the environment variable.
    option: Option<&'a str>,
}

impl LoaderSetting<'_> {
    /// How the exec gave it, for a description.
    fn given(&self, e: &ExecInfo) -> String {
        match self.option {
            Some(option) => format!(
                "ran the dynamic loader {} with {option} {}",
                e.exe.display(),
                self.value
            ),
            None => format!("was exec'd with {}={}", self.input.variable(), self.value),
        }
    }
}

/// The loader inputs of one exec: `LD_PRELOAD`, `LD_AUDIT` and `LD_LIBRARY_PATH` as the
/// kernel took them from the environment, and `--preload`, `--audit`, `--library-path` when
/// the program is the loader itself (`ld.so --preload LIB PROGRAM`).
fn loader_settings(e: &ExecInfo) -> Vec<LoaderSetting<'_>> {
    let mut out: Vec<LoaderSetting<'_>> = [
        (LoaderInput::Preload, &e.ld_preload),
        (LoaderInput::Audit, &e.ld_audit),
        (LoaderInput::LibraryPath, &e.ld_library_path),
    ]
    .into_iter()
    .filter_map(|(input, value)| {
        Some(LoaderSetting {
            input,
            value: value.as_deref()?,
            option: None,
        })
    })
    .collect();
    if runs_the_loader(e) {
        let args = e.argv.get(1..).unwrap_or_default();
        out.extend(
            loader_command(args)
                .options
                .into_iter()
                .filter_map(|(option, value)| {
                    Some(LoaderSetting {
                        input: LoaderInput::from_option(option)?,
                        value,
                        option: Some(option),
                    })
                }),
        );
    }
    out
}

/// The dynamic loader told, by the environment or on its own command line, to run a library
/// from outside the system's library directories (`LD_PRELOAD`, `LD_AUDIT`, `--preload`,
/// `--audit`), or to search a memory-backed or world-writable directory first
/// (`LD_LIBRARY_PATH`, `--library-path`): T1574.006. One check over the loader's inputs,
/// each kind with its rule.
fn loader_inputs(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for setting in loader_settings(e) {
        match setting.input {
            LoaderInput::Preload | LoaderInput::Audit => {
                out.extend(loaded_libraries(d, b, e, lookup, &setting));
            }
            LoaderInput::LibraryPath => out.extend(library_search_path(d, b, e, lookup, &setting)),
        }
    }
    out.extend(audit_beside_preload(d, e, lookup));
    out
}

/// The context of a finding about one of the loader's inputs: the value under its field name,
/// the loader's option when it came as one, and GuardDuty's `ldPreloadValue` for the variable.
fn loader_context(
    e: &ExecInfo,
    setting: &LoaderSetting<'_>,
    field: &str,
    path: &str,
) -> RuntimeContext {
    let mut context = exec_context(e, path.to_owned());
    context
        .additional
        .insert(field.into(), setting.value.to_owned());
    match setting.option {
        Some(option) => {
            context
                .additional
                .insert("loaderOption".into(), option.to_owned());
        }
        None if matches!(setting.input, LoaderInput::Preload) => {
            context.ld_preload_value = Some(setting.value.to_owned());
        }
        None => {}
    }
    context
}

/// `LD_PRELOAD`/`LD_AUDIT` (or `--preload`/`--audit`) naming a library outside the system's
/// library directories: High from a memory-backed or world-writable directory, else Medium,
/// the same for both (an auditor runs at least as early and sees every binding). Bare names
/// are looked up in the system's directories.
fn loaded_libraries(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
    setting: &LoaderSetting<'_>,
) -> Vec<Candidate> {
    // LD_PRELOAD splits at blanks and `:`; LD_AUDIT at `:` only.
    let separators: &[char] = match setting.input {
        LoaderInput::Audit => &[':'],
        _ => &[':', ' ', '\t'],
    };
    let (field, key) = setting.input.names();
    let mut out = Vec::new();
    for lib in setting.value.split(separators).filter(|l| l.contains('/')) {
        let path = normalize(&resolve_exe(lib, e.cwd.as_deref()))
            .display()
            .to_string();
        if under(&b.system_library_dirs, &path).is_some() {
            continue;
        }
        let writable = placed(b, &path).is_some();
        let context = loader_context(e, setting, field, &path);
        let (title, what) = match setting.input {
            LoaderInput::Audit => (
                "A program was started with an audit library from outside the system's \
                 library directories",
                "is run by the loader with a hook into every symbol binding of the program",
            ),
            _ => (
                "A program was started with a library preloaded from outside the system's \
                 library directories",
                "is loaded into it before its own libraries",
            ),
        };
        let mut c = technique(
            d,
            &e.process,
            lookup,
            Raises {
                finding_type: FindingType::DefenseEvasionSuspiciousCommand,
                rule: setting.input.rule(),
                mitre: "T1574.006",
                severity: Some(if writable { 8.0 } else { 5.0 }),
            },
            draft(
                title,
                format!(
                    "Process {} (pid {}) {}: {path} {what}.",
                    e.process.comm,
                    e.process.pid,
                    setting.given(e)
                ),
                String::new(),
                context,
            ),
        );
        // Every program the preloading environment starts carries it: one finding per library,
        // the variable and the loader's option alike.
        c.key = format!("{key}\0{path}");
        out.push(c);
    }
    out
}

/// `LD_AUDIT` set beside `LD_PRELOAD`: the exec record keeps one value of the two (the
/// preload's, as before `LD_AUDIT` was read), so the audit library is not known. Medium: an
/// attacker could hide an auditor behind a system library's preload, and the pair is rare
/// otherwise.
fn audit_beside_preload(
    d: &Detector,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    if !e.ld_audit_unread {
        return None;
    }
    let exe = e.exe.display().to_string();
    let mut context = exec_context(e, exe.clone());
    context
        .additional
        .insert("ldAudit".into(), "(set, not read)".into());
    if let Some(preload) = &e.ld_preload {
        context
            .additional
            .insert("ldPreload".into(), preload.clone());
    }
    let mut c = technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: LoaderInput::Audit.rule(),
            mitre: "T1574.006",
            severity: Some(5.0),
        },
        draft(
            "A program was started with LD_AUDIT and LD_PRELOAD both set",
            format!(
                "Process {} (pid {}) ran {exe} with LD_AUDIT and LD_PRELOAD set: the sensor \
                 kept LD_PRELOAD's value, the audit library is not known.",
                e.process.comm, e.process.pid
            ),
            String::new(),
            context,
        ),
    );
    c.key = format!("ld-audit-unread\0{exe}");
    Some(c)
}

/// `LD_LIBRARY_PATH` (or `--library-path`) naming a memory-backed or world-writable
/// directory: the loader looks there first for every library the program needs, so a
/// `libc.so.6` dropped there runs in it (T1574.006 without `LD_PRELOAD`). A directory
/// elsewhere (a build tree under `/root` or `/home`, `/opt/app/lib`) is how builds and
/// vendored programs run, and raises nothing. A world-writable one is Low on the host, as
/// running from there is: cargo points it at its target directory for rustc and build
/// scripts, and builds in `/tmp` are common.
fn library_search_path(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
    setting: &LoaderSetting<'_>,
) -> Vec<Candidate> {
    let value = setting.value;
    let (field, key) = setting.input.names();
    let mut out = Vec::new();
    // The loader reads `:` and `;` as separators. An empty entry is the working directory, but
    // it is mostly a stray separator (`$LD_LIBRARY_PATH:/opt/x` with the variable unset): not
    // followed, nor are the mount points of AppImages (`/tmp/.mount_X/usr/lib`, which set it
    // so) and the other names of `hiddenExecAllowed`.
    for dir in value.split([':', ';']).filter(|d| !d.is_empty()) {
        let mut path = normalize(&resolve_exe(dir, e.cwd.as_deref()))
            .display()
            .to_string();
        if !path.ends_with('/') {
            path.push('/');
        }
        // `memoryExecDirs` and `worldWritableExecDirs`, not all of `/run/`: NixOS puts its
        // graphics and system libraries there (`/run/opengl-driver/lib`).
        let memory = under(&b.memory_exec_dirs, &path).is_some();
        if !memory && under(&b.world_writable_exec_dirs, &path).is_none() {
            continue;
        }
        let severity = if memory {
            8.0
        } else if e.process.container.is_some() {
            5.0
        } else {
            3.0
        };
        if path.split('/').any(|part| {
            b.hidden_exec_allowed
                .iter()
                .any(|allowed| part.starts_with(allowed.as_str()))
        }) {
            continue;
        }
        let context = loader_context(e, setting, field, &path);
        let mut c = technique(
            d,
            &e.process,
            lookup,
            Raises {
                finding_type: FindingType::DefenseEvasionSuspiciousCommand,
                rule: setting.input.rule(),
                mitre: "T1574.006",
                severity: Some(severity),
            },
            draft(
                "A program was started with its libraries searched for first in a writable directory",
                format!(
                    "Process {} (pid {}) {}: the loader takes its libraries from {path} before \
                     the system's.",
                    e.process.comm,
                    e.process.pid,
                    setting.given(e)
                ),
                String::new(),
                context,
            ),
        );
        // As for LD_PRELOAD: one finding per directory, whatever runs with it.
        c.key = format!("{key}\0{path}");
        out.push(c);
    }
    out
}

/// A stopping signal another process sent one of the host's security agents (the kernel's
/// `signalGuarded`: the target runs an executable of `behaviour.securityAgents`), however it
/// was sent: `kill -9 $(pidof falco)`, the shell's `kill` builtin, `os.kill` (no argv names the
/// agent). Not when the kernel raised it (a fault, a terminal's Ctrl-C), nor from the host's
/// init, a supervisor (systemd stopping the unit: `systemctl stop` is the command rule's), the
/// agent's parent (its watchdog, `timeout`), a process running the agent's own program, or a
/// package manager's lineage (an upgrade restarting it).
pub(super) fn check_activity(
    d: &Detector,
    a: &ActivityInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    match a.operation {
        "signalGuarded" => security_agent_stopped(d, a, lookup),
        "signalMiner" => super::competitor::check_signal(d, a, lookup),
        "rename" => renamed_as_another(d, a, lookup),
        _ => None,
    }
}

/// A thread of a program renaming itself (`prctl(PR_SET_NAME)`, a procfs comm file) to a
/// kernel thread's name (`[kworker/1:1]`, `kswapd0`) or a system daemon's (`sshd`, `crond`,
/// `behaviour.daemonNames`): what miners and backdoors do so that `ps` and `top` list them
/// among the kernel's threads or the system's services. Kernel threads never call prctl; a
/// daemon has its name from its exec, and programs name their threads after their work
/// (`tokio-runtime-w`, `C2 CompilerThre`), never so. A daemon's name counts for the main
/// thread only, the name `ps` lists the process by: the JVM gives each native thread its Java
/// thread's name, which may well be `cron`. A daemon naming its own threads so (its executable
/// has the name, or starts with it and a dash: `sshd-session`) is itself. The name is the one
/// the kernel holds after the call, and the executable is the one the kernel ran.
fn renamed_as_another(
    d: &Detector,
    a: &ActivityInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    if a.ret != 0 {
        return None;
    }
    let new = a.name.as_deref()?;
    let old = a.source.as_deref().unwrap_or_default();
    let p = &a.process;
    let exe = actor(d, p, lookup).exe;
    let (imitated, severity) = if kernel_thread_file_name(new) {
        if kernel_thread_file_name(old) {
            return None;
        }
        ("a kernel thread's name", 7.0)
    } else if daemon_name(d.rules.behaviour(), new)
        && old != new
        && a.target_pid.unwrap_or(p.tid) == p.pid
    {
        // Its executable unknown, whose name it is cannot be told.
        let own = path_basename(exe.as_deref()?);
        if comm_of(own) == new || own.strip_prefix(new).is_some_and(|r| r.starts_with('-')) {
            return None;
        }
        ("a system daemon's name", 5.0)
    } else {
        return None;
    };
    let exe = exe.map(|e| e.display().to_string()).unwrap_or_default();
    let mut context = RuntimeContext {
        file_path: (!exe.is_empty()).then(|| exe.clone()),
        ..RuntimeContext::default()
    };
    let how = a.request.as_deref().unwrap_or("prctl(PR_SET_NAME)");
    // The renamed thread: the caller, or another thread of its process (a procfs comm file).
    let thread = a.target_pid.unwrap_or(p.tid);
    let add = &mut context.additional;
    add.insert(
        "masquerade".into(),
        format!("a thread renamed to {imitated} ({how})"),
    );
    add.insert("nameBefore".into(), old.to_owned());
    add.insert("nameAfter".into(), new.to_owned());
    add.insert("threadId".into(), thread.to_string());
    Some(technique(
        d,
        p,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-masquerading",
            mitre: "T1036.004",
            severity: Some(severity),
        },
        draft(
            "A process is dressed up as another program",
            format!(
                "Process {exe} (pid {}) renamed its thread {thread} from `{old}` to `{new}`, \
                 {imitated} ({how}).",
                p.pid
            ),
            format!("{exe}\0rename\0{new}"),
            context,
        ),
    ))
}

/// Another security agent on the host stopped by a signal (`GUARDED`).
fn security_agent_stopped(
    d: &Detector,
    a: &ActivityInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let stop = Stopped::of(d, a, lookup)?;
    let (target, code) = (stop.target, stop.code);
    let p = &a.process;
    let signal = stop.signal;
    let target_exe = stop
        .target_exe
        .map(|e| e.display().to_string())
        .unwrap_or_default();
    let mut context = RuntimeContext {
        target_process: super::behaviour::target_process(d, target, lookup),
        ..RuntimeContext::default()
    };
    let add = &mut context.additional;
    add.insert("targetPid".into(), target.to_string());
    add.insert("targetExecutable".into(), target_exe.clone());
    add.insert("signal".into(), signal.clone());
    add.insert("signalCode".into(), code.to_string());
    Some(technique(
        d,
        p,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-security-agent-killed",
            mitre: "T1562.001",
            severity: Some(8.0),
        },
        draft(
            "A process sent a stopping signal to a security agent",
            format!(
                "Process {} (pid {}) sent {signal} to pid {target}, which runs the security \
                 agent {target_exe}.",
                p.comm, p.pid
            ),
            target_exe,
            context,
        ),
    ))
}

/// A stopping signal another process sent a guarded process (`signalGuarded`, `signalMiner`),
/// unless it is routine: raised by the kernel (a fault, a terminal's Ctrl-C), sent by the host's
/// init or a supervisor (systemd stopping a unit), by the target's parent (its watchdog,
/// `timeout`, the shell that started it), by a process running the target's own program, or
/// from a package manager's lineage (an upgrade restarting it).
pub(super) struct Stopped {
    pub target: u32,
    pub target_exe: Option<std::path::PathBuf>,
    pub signal: String,
    pub code: i32,
}

impl Stopped {
    pub(super) fn of(d: &Detector, a: &ActivityInfo, lookup: &dyn ProcessLookup) -> Option<Self> {
        let aimed = a.aimed_at_agent.as_deref()?;
        let target = a.target_pid?;
        let p = &a.process;
        let code = aimed.signal_code.unwrap_or(0);
        if code > 0 || p.pid == 1 || p.pid == target {
            return None;
        }
        let sender = actor(d, p, lookup);
        let target_exe = lookup
            .get(target)
            .and_then(|k| k.exe)
            .or_else(|| d.procs.get(&target).and_then(|r| r.exe.clone()));
        if sender
            .exe
            .as_deref()
            .is_some_and(super::selfprotect::is_supervisor)
            || (sender.exe.is_some() && sender.exe == target_exe)
            || super::behaviour::parent_of(d, target, lookup) == Some(p.pid)
            || sender.is_one_of(&d.rules.behaviour().package_managers, Reach::Lineage)
        {
            return None;
        }
        Some(Self {
            target,
            target_exe,
            signal: aimed.signal.clone().unwrap_or_default(),
            code,
        })
    }
}

/// `crontab FILE` or `crontab -`: a table installed without an editor (what scripts and
/// droppers do; `crontab -e`, `-l` and `-r` do not install from elsewhere).
fn crontab_install(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let exe = e.exe.to_string_lossy();
    if !b.crontab_programs.iter().any(|p| *p == exe) {
        return None;
    }
    let mut args = e.argv.iter().skip(1);
    let mut source = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-u" | "-n" => {
                args.next();
            }
            "-" => source = Some("standard input".to_owned()),
            a if a.starts_with('-') => {
                if a.contains(['l', 'r', 'e', 'V', 'T', 'h', 'c']) {
                    return None;
                }
            }
            file => source = Some(file.to_owned()),
        }
    }
    let source = source.unwrap_or_else(|| "standard input".to_owned());
    let mut context = RuntimeContext {
        command_line_example: Some(redacted_command_line(&e.argv)),
        ..RuntimeContext::default()
    };
    context
        .additional
        .insert("persistenceKind".into(), "cron".into());
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::PersistenceSuspiciousCommand,
            rule: "behaviour-persistence-crontab-install",
            mitre: "T1053.003",
            severity: None,
        },
        draft(
            "A crontab was installed from a file or standard input",
            format!(
                "Process {} (pid {}) installed a cron table from {source}.",
                e.process.comm, e.process.pid
            ),
            "crontab-install".into(),
            context,
        ),
    ))
}

/// `at` or `batch` queueing a job: what it read (a file or standard input) runs later, as the
/// account, from the spool (`atq`, `atrm`, `at -l`, `-r`, `-d` and `-c` queue nothing).
fn at_queue(
    d: &Detector,
    b: &Behaviour,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let exe = e.exe.to_string_lossy();
    if !b.at_programs.iter().any(|p| *p == exe) {
        return None;
    }
    let queue = at_queues(&e.argv)?;
    let mut context = RuntimeContext {
        command_line_example: Some(redacted_command_line(&e.argv)),
        ..RuntimeContext::default()
    };
    context.additional.insert(
        "persistenceKind".into(),
        PersistenceKind::At.as_str().into(),
    );
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::PersistenceSuspiciousCommand,
            rule: "behaviour-persistence-at",
            mitre: "T1053.002",
            severity: None,
        },
        draft(
            "A job was queued with at",
            format!(
                "Process {} (pid {}) queued an at job from {} to run {}.",
                e.process.comm, e.process.pid, queue.source, queue.when
            ),
            "at-queue".into(),
            context,
        ),
    ))
}

/// What an `at` command line queues.
#[derive(Debug, PartialEq, Eq)]
struct AtJob {
    /// The job's commands: a file (`-f`) or standard input.
    source: String,
    /// The time asked for, as given (`now + 1 minute`), or when the load allows (`batch`).
    when: String,
}

/// Reads an `at` argument vector as at(1) does (options `q:f:t:MmbvlrdhVc`). The program picks
/// its mode by the name it was run as (`atq` and `atrm` are links to it): argv[0] is what it
/// does, whatever the executable is called. `None`: nothing is queued.
fn at_queues(argv: &[String]) -> Option<AtJob> {
    let invoked = argv.first().map(|a| path_basename(Path::new(a)))?;
    let mut batch = match invoked {
        "atq" | "atrm" => return None,
        "batch" => true,
        _ => false,
    };
    let mut source = None;
    let mut time = None;
    let mut operands = Vec::new();
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "--" {
            operands.extend(args.by_ref().cloned());
            break;
        }
        let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            operands.push(a.clone());
            continue;
        };
        for (i, c) in flags.char_indices() {
            match c {
                // Listing, removing or printing jobs.
                'l' | 'r' | 'd' | 'c' => return None,
                'b' => batch = true,
                'q' | 'f' | 't' => {
                    let rest = &flags[i + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        args.next().cloned()
                    } else {
                        Some(rest.to_owned())
                    };
                    match c {
                        'f' => source = value,
                        't' => time = value,
                        _ => {}
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    let when = if !operands.is_empty() {
        operands.join(" ")
    } else if let Some(t) = time {
        t
    } else if batch {
        "when the load allows (batch)".to_owned()
    } else {
        // No time: at refuses ("Garbled time").
        return None;
    };
    Some(AtJob {
        source: source.unwrap_or_else(|| "standard input".to_owned()),
        when,
    })
}

// --- files ---------------------------------------------------------------------------------

/// Checks of one file operation.
pub(crate) fn check_file(d: &Detector, f: &FileInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let b = d.rules.behaviour();
    let mut out = Vec::new();
    if f.operation == "openRead" {
        // Nothing changed; the hashes may have been read.
        out.extend(password_hashes_read(d, b, f, lookup));
        return out;
    }
    if f.ret < 0 {
        // Nothing changed.
        return out;
    }
    let flags = f
        .open_flags
        .as_deref()
        .and_then(|t| u32::from_str_radix(t, 8).ok())
        .unwrap_or(0);
    let actor = actor(d, &f.process, lookup);
    out.extend(persistence_write(d, b, f, &actor, lookup));
    out.extend(history_tampered(d, b, f, flags, &actor, lookup));
    out.extend(logs_wiped(d, b, f, flags, &actor, lookup));
    out.extend(aslr_off(d, f, lookup));
    out.extend(hardening_weakened(d, f, lookup));
    out.extend(core_pattern_handler(d, f, lookup));
    out.extend(container_devices_allowed(d, f, lookup));
    out.extend(preload_file_written(d, b, f, &actor, lookup));
    out.extend(gconv_modules_written(d, b, f, &actor, lookup));
    out.extend(logging_config_changed(d, b, f, &actor, lookup));
    out.extend(sudoers_written(d, b, f, &actor, lookup));
    out.extend(account_grants_added(d, f, lookup));
    out.extend(system_binary_replaced(d, b, f, &actor, lookup));
    out.extend(self_exe_interpreter_written(d, f, lookup));
    out.extend(set_id_program_made(d, b, f, &actor, lookup));
    out.extend(loader_modified(d, b, f, &actor, lookup));
    out.extend(git_command_set(d, b, f, &actor, lookup));
    out.extend(sysctl_file_weakened(d, b, f, &actor, lookup));
    out.extend(password_hashes_exposed(d, f, lookup));
    out
}

fn text(p: Option<&PathBuf>) -> Option<String> {
    p.map(|p| p.display().to_string())
}

/// The context of a finding about an exec: the file it concerns and the command line, redacted.
pub(super) fn exec_context(e: &ExecInfo, file: String) -> RuntimeContext {
    RuntimeContext {
        file_path: Some(file),
        command_line_example: Some(redacted_command_line(&e.argv)),
        ..RuntimeContext::default()
    }
}

/// The path a file operation makes: the file opened for writing, a new symbolic link, the
/// destination of a rename or hard link (moving a file out of a place makes nothing there);
/// and the file itself for the `also` operations a check counts too (`chmod`, `unlink`).
fn made_path<'a>(f: &'a FileInfo, also: &[&str]) -> Option<&'a PathBuf> {
    match f.operation {
        "openWrite" | "symlink" => f.resolved_path.as_ref(),
        "rename" | "link" => f.resolved_path2.as_ref(),
        op if also.contains(&op) => f.resolved_path.as_ref(),
        _ => None,
    }
}

fn file_context(f: &FileInfo, path: &str) -> RuntimeContext {
    RuntimeContext {
        file_path: Some(path.to_owned()),
        file_operation: Some(f.operation.to_owned()),
        ..RuntimeContext::default()
    }
}

/// A file created, replaced, linked or made executable in a cron, systemd or init location or a
/// shell start-up file by anything but a package manager (or its children) and the location's
/// own tools.
fn persistence_write(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    // The path the operation makes: an opened or chmod'ed file, a new link, the destination of
    // a rename or hard link (moving a file out of a location persists nothing).
    let path = text(made_path(f, &["chmod"]))?;
    // The most specific location that holds the path (`/var/spool/cron/atjobs/` is `at`'s,
    // inside cron's spool).
    let location = b
        .persistence_locations
        .iter()
        .filter(|l| l.place.contains(&path))
        .max_by_key(|l| l.place.specificity())?;
    let owners_reach = match location.owners_reach {
        OwnersReach::Children => Reach::Parent,
        OwnersReach::Descendants => Reach::Lineage,
    };
    // An owner's link to a unit outside systemd's own directories installs that file as a unit
    // (`systemctl link /root/x.service`, `systemctl enable /opt/x/x.service`): not its routine
    // work of enabling what is installed.
    let foreign_unit = (location.kind == PersistenceKind::Systemd)
        .then(|| unit_linked_from_outside(f, &path))
        .flatten();
    if actor.is_one_of(&b.package_managers, Reach::Lineage)
        || (actor.is_one_of(&location.owners, owners_reach) && foreign_unit.is_none())
    {
        return None;
    }
    let kind = location.kind.as_str();
    let (rule, mitre, what) = match location.kind {
        PersistenceKind::Cron => ("behaviour-persistence-cron", "T1053.003", "a cron table"),
        PersistenceKind::Systemd => (
            "behaviour-persistence-systemd",
            "T1543.002,T1053.006",
            "a systemd unit, generator, or sleep or shutdown hook",
        ),
        PersistenceKind::Init => ("behaviour-persistence-init", "T1037.004", "an init script"),
        PersistenceKind::Shell => (
            "behaviour-persistence-shell-startup",
            "T1546.004",
            "a shell start-up file",
        ),
        PersistenceKind::Autostart => (
            "behaviour-persistence-autostart",
            "T1547.013",
            "an XDG autostart entry",
        ),
        PersistenceKind::Udev => (
            "behaviour-persistence-udev",
            "T1546.017",
            "a udev rule (its RUN+= programs run as root on device events)",
        ),
        PersistenceKind::Motd => (
            "behaviour-persistence-motd",
            "T1037",
            "a message-of-the-day script (run as root at every login)",
        ),
        PersistenceKind::Modules => (
            "behaviour-persistence-modules",
            "T1547.006",
            "the list of kernel modules loaded at boot",
        ),
        PersistenceKind::Environment => (
            "behaviour-persistence-environment",
            "T1546.004,T1574.006",
            "the login environment of every session",
        ),
        PersistenceKind::At => ("behaviour-persistence-at", "T1053.002", "an at job"),
        PersistenceKind::Package => (
            "behaviour-persistence-package-hook",
            "T1546.016",
            "a package manager hook or maintainer script (run as root at the next install or update)",
        ),
        PersistenceKind::Ssh => (
            "behaviour-persistence-ssh-keys",
            "T1098.004",
            "an SSH authorized keys file (a key added there logs in as the account)",
        ),
        PersistenceKind::Pam => (
            "behaviour-persistence-pam",
            "T1556.003",
            "a PAM module or service configuration (loaded into every login, as root)",
        ),
        PersistenceKind::Boot => (
            "behaviour-persistence-boot",
            "T1542,T1037",
            "what runs before the system is up (a dracut module, a GRUB setting or generator \
             script, the initramfs image)",
        ),
        PersistenceKind::Network => (
            "behaviour-persistence-network-hook",
            "T1546",
            "a network hook script (run as root when an interface changes state)",
        ),
        PersistenceKind::Dbus => (
            "behaviour-persistence-dbus",
            "T1543,T1546",
            "a D-Bus service or bus policy (the bus starts the service on demand)",
        ),
        PersistenceKind::Python => (
            "behaviour-persistence-python-hook",
            "T1546.018",
            "a Python start-up hook (imported by every interpreter that starts)",
        ),
        PersistenceKind::Git => (
            "behaviour-persistence-git-hook",
            "T1546",
            "a git hook (git runs it as whoever commits, checks out, merges or pushes there)",
        ),
        PersistenceKind::Sshrc => (
            "behaviour-persistence-ssh-rc",
            "T1546",
            "an sshd login script (run as the account at every ssh login, before its shell)",
        ),
        PersistenceKind::Logrotate => (
            "behaviour-persistence-logrotate",
            "T1053",
            "a logrotate configuration (its rotation scripts run as root at every rotation)",
        ),
        PersistenceKind::Browser => (
            "behaviour-persistence-browser",
            "T1176",
            "a browser policy, native messaging host or external extension (read at the browser's next start)",
        ),
        PersistenceKind::Editor => (
            "behaviour-persistence-editor-startup",
            "T1546",
            "an editor's start-up file or plugin (run as the account at every start of the editor)",
        ),
        PersistenceKind::Nss => (
            "behaviour-persistence-nss",
            "T1556",
            "the name service switch (the modules it names are loaded into every program that \
             looks up an account or a host)",
        ),
    };
    let mut context = file_context(f, &path);
    context
        .additional
        .insert("persistenceKind".into(), kind.into());
    let who = match &foreign_unit {
        Some(target) => format!(
            "The link points at {target}, outside systemd's unit directories: a file installed \
             as a unit."
        ),
        None => "Neither a package manager nor the location's tool did it.".to_owned(),
    };
    if let Some(target) = foreign_unit {
        context.additional.insert("linkTarget".into(), target);
    }
    // Developers' hook managers (pre-commit, husky, lefthook) install git hooks as ordinary
    // work, from interpreters no list can tell from an attacker's: Low, the rest the type's.
    let severity = (rule == "behaviour-persistence-git-hook").then_some(3.0);
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PersistenceSuspiciousCommand,
            rule,
            mitre,
            severity,
        },
        draft(
            "A process wrote a persistence location",
            format!(
                "Process {} (pid {}) wrote {path} ({}), {what}: it runs again later on its \
                 own. {who}",
                f.process.comm, f.process.pid, f.operation
            ),
            path,
            context,
        ),
    ))
}

/// Where systemd's unit files live system-wide (and, for a user's links, in that user's home:
/// `.config/systemd/`, `.local/share/systemd/`): what systemctl links to when it enables or
/// masks a unit.
const SYSTEMD_UNIT_HOMES: &[&str] = &[
    "/etc/systemd/",
    "/run/systemd/",
    "/lib/systemd/",
    "/usr/lib/systemd/",
    "/usr/local/lib/systemd/",
    "/usr/share/systemd/",
    "/etc/xdg/systemd/",
];

/// For a symbolic link made in a systemd location: its target, made absolute against the
/// link's directory, when it is outside every unit directory and not `/dev/null` (a masked
/// unit).
fn unit_linked_from_outside(f: &FileInfo, link: &str) -> Option<String> {
    if f.operation != "symlink" {
        return None;
    }
    let target = Path::new(f.path2.as_deref()?);
    let absolute = match Path::new(link).parent() {
        Some(dir) if target.is_relative() => normalize(&dir.join(target)),
        _ => normalize(target),
    };
    let text = absolute.display().to_string();
    // A user's unit linked within that user's own unit directories (`systemctl --user
    // enable`): the home is what precedes `/.config/systemd/` in the link's path, so a
    // `/tmp/.config/systemd/` target does not pass for one.
    let in_own_home = link.find("/.config/systemd/").is_some_and(|i| {
        let home = &link[..i];
        ["/.config/systemd/", "/.local/share/systemd/"]
            .iter()
            .any(|d| text.starts_with(&format!("{home}{d}")))
    });
    if text == "/dev/null" || in_own_home || SYSTEMD_UNIT_HOMES.iter().any(|h| text.starts_with(h))
    {
        return None;
    }
    Some(text)
}

/// A shell history file removed, truncated, overwritten, or replaced by a link. Shells write
/// their own history by appending or through a temporary file renamed over it (bash, zsh); a
/// truncating open is a redirection (`: > ~/.bash_history`), whoever makes it.
fn history_tampered(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    flags: u32,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let is_history = |p: Option<&PathBuf>| {
        p.and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .is_some_and(|n| b.history_files.iter().any(|h| h == n))
    };
    let shell = actor.name().is_some_and(|n| listed(&b.shells, &n));
    let (path, how) = match f.operation {
        "unlink" if is_history(f.resolved_path.as_ref()) => (f.resolved_path.as_ref(), "removed"),
        "symlink" if is_history(f.resolved_path.as_ref()) => {
            (f.resolved_path.as_ref(), "replaced by a symbolic link")
        }
        "rename" if !shell && is_history(f.resolved_path.as_ref()) => {
            (f.resolved_path.as_ref(), "moved away")
        }
        "rename" | "link" if !shell && is_history(f.resolved_path2.as_ref()) => {
            (f.resolved_path2.as_ref(), "replaced")
        }
        "openWrite" if is_history(f.resolved_path.as_ref()) && flags & O_TRUNC != 0 => {
            (f.resolved_path.as_ref(), "truncated")
        }
        "openWrite" if is_history(f.resolved_path.as_ref()) && !shell && flags & O_APPEND == 0 => {
            (f.resolved_path.as_ref(), "overwritten")
        }
        _ => return None,
    };
    let path = text(path)?;
    let mut context = file_context(f, &path);
    context.additional.insert("tampering".into(), how.into());
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-history-tampered",
            mitre: "T1070.003",
            severity: Some(5.0),
        },
        draft(
            "Shell history was removed or truncated",
            format!(
                "Process {} (pid {}) {how} the shell history {path} ({}).",
                f.process.comm, f.process.pid, f.operation
            ),
            path,
            context,
        ),
    ))
}

/// The journal or a system log removed, truncated or overwritten by anything but the programs
/// that write and rotate logs (journald, logrotate, syslog daemons) and package managers.
/// `journalctl --vacuum-*` is such a removal.
fn logs_wiped(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    flags: u32,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = text(f.resolved_path.as_ref())?;
    let journal = (path.starts_with("/var/log/journal/") || path.starts_with("/run/log/journal/"))
        && (path.ends_with(".journal") || path.ends_with(".journal~"));
    let system_log = b.wiped_logs.iter().any(|l| {
        if l.ends_with('/') {
            path.starts_with(l.as_str())
        } else {
            path == *l
        }
    });
    // A system log's name elsewhere (`/falco-event-generator-x/syslog`, a chroot's logs): the
    // same tampering, less sure to be the system's log, so Medium rather than High.
    let log_by_name = !journal
        && !system_log
        && b.wiped_log_names
            .iter()
            .any(|n| n == path_basename(Path::new(&path)));
    if !journal && !system_log && !log_by_name {
        return None;
    }
    let overwriter = actor
        .exe
        .as_deref()
        .is_some_and(|e| b.log_overwriters.iter().any(|o| o == path_basename(e)));
    let how = match f.operation {
        "unlink" => "removed",
        "rename" => "moved away",
        "symlink" => "replaced by a symbolic link",
        "openWrite" if flags & O_TRUNC != 0 => "truncated",
        "openWrite" if overwriter && flags & O_APPEND == 0 => "overwritten",
        _ => return None,
    };
    if actor.is_one_of(&b.log_owners, Reach::Parent)
        || actor.is_one_of(&b.package_managers, Reach::Lineage)
    {
        return None;
    }
    let mut context = file_context(f, &path);
    context.additional.insert("tampering".into(), how.into());
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: if journal {
                "behaviour-journal-wiped"
            } else {
                "behaviour-logs-wiped"
            },
            mitre: "T1070.002",
            severity: Some(if log_by_name { 5.0 } else { 8.0 }),
        },
        draft(
            if journal {
                "The systemd journal was vacuumed or removed"
            } else {
                "A system log was removed or truncated"
            },
            format!(
                "Process {} (pid {}) {how} {path} ({}).",
                f.process.comm, f.process.pid, f.operation
            ),
            path,
            context,
        ),
    ))
}

/// The files that hold the password hashes, and their backups.
const PASSWORD_HASHES: [&str; 4] = [
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
];

/// The password hashes opened for reading (the kernel's `credentials` record: the file the open
/// returned, whatever path, shell redirection or program led there; a refused open is the
/// attempt) by a program whose job it is not: logins, PAM services and the account tools read
/// them (`credentialReaders`, or their parent), as do package managers' maintainer scripts.
/// The same check as the command rule `discovery-shadow-read` (`cat /etc/shadow`), from what
/// the kernel saw: a shell's `while read` loop, `python3 -c 'open(...)'`, a renamed `cat`.
fn password_hashes_read(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = text(f.resolved_path.as_ref())?;
    if !PASSWORD_HASHES.contains(&path.as_str()) {
        return None;
    }
    let actor = actor(d, &f.process, lookup);
    if actor.is_one_of(&b.credential_readers, Reach::Parent)
        || actor.is_one_of(&b.package_managers, Reach::Lineage)
    {
        return None;
    }
    let mut context = file_context(f, &path);
    if let Some(error) = &f.error {
        context.additional.insert("result".into(), error.clone());
    }
    let refused = f
        .error
        .as_deref()
        .map(|e| format!(" (refused: {e})"))
        .unwrap_or_default();
    let mut c = technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DiscoverySuspiciousCommand,
            rule: SHADOW_READ_RULE,
            mitre: "T1003.008",
            severity: Some(5.0),
        },
        draft(
            "The password hashes were read",
            format!(
                "Process {} (pid {}) opened {path} for reading{refused}.",
                f.process.comm, f.process.pid
            ),
            String::new(),
            context,
        ),
    );
    // The command rule's key (rule, then executable): `cat /etc/shadow` is one finding, seen
    // by its command line and by its open.
    if let Some(p) = &c.process {
        c.key = format!("{SHADOW_READ_RULE}\0{}", p.executable_path);
    }
    Some(c)
}

/// The id of the command rule (`rules/commands.yaml`) and of the check that read the hashes.
const SHADOW_READ_RULE: &str = "discovery-shadow-read";

/// `/proc/sys/kernel/randomize_va_space` written with a value below 2 (full randomisation):
/// as written (the `sysctl` hook's record, so a value put back at once does not hide it) or,
/// where that hook does not run, as read right after the write; a write whose value could not
/// be read is reported too, as Medium.
fn aslr_off(d: &Detector, f: &FileInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    if !setting_written(f) || setting_path(f) != Some(Path::new(RANDOMIZE_VA_SPACE)) {
        return None;
    }
    let value = f.sysctl_value.as_deref();
    // The kernel takes any integer: 0 is off, 2 and above are full randomisation, 1 (and a
    // negative value) leave the heap unrandomised. Anything else it refuses (a value as
    // written, in the hook's record, may be that).
    if value.is_some_and(|v| v.parse::<i64>().is_ok_and(|n| n >= 2) || v.parse::<i64>().is_err()) {
        return None;
    }
    let mut context = file_context(f, RANDOMIZE_VA_SPACE);
    if let Some(v) = value {
        context.additional.insert("value".into(), v.to_owned());
    }
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-aslr-disabled",
            mitre: "T1562.001",
            severity: Some(if value.is_some() { 8.0 } else { 5.0 }),
        },
        draft(
            "Address space layout randomisation was weakened",
            format!(
                "Process {} (pid {}) wrote {RANDOMIZE_VA_SPACE}{}.",
                f.process.comm,
                f.process.pid,
                match (value, f.operation) {
                    (Some(v), "sysctlWrite") => format!(": it wrote {v} (2 is full randomisation)"),
                    (Some(v), _) => format!(": it now reads {v} (2 is full randomisation)"),
                    (None, _) => ", whose value could not be read".into(),
                }
            ),
            RANDOMIZE_VA_SPACE.into(),
            context,
        ),
    ))
}

/// Whether `f` is a write of a kernel setting for the setting checks to judge: the `sysctl`
/// hook's record of the write (`sysctlWrite`, the value as written), or, where that hook does
/// not run, an open for writing (the value read back once the writer closed it). With the hook,
/// the open is left to its record: one finding per write, and a value put back at once does not
/// hide the one written first.
fn setting_written(f: &FileInfo) -> bool {
    match f.operation {
        "sysctlWrite" => true,
        "openWrite" => !f.sysctl_by_hook,
        _ => false,
    }
}

/// The setting under `/proc/sys` a write reached: the one named through another procfs mount
/// (`sysctl_setting`: `/host_proc/sys/kernel/core_pattern` is the host's
/// `/proc/sys/kernel/core_pattern`), else the path written.
fn setting_path(f: &FileInfo) -> Option<&Path> {
    f.sysctl_setting.as_deref().or(f.resolved_path.as_deref())
}

/// Whether a setting's value is `expected`, as text or as the same integer (`00`, `+1`).
fn same_number(value: &str, expected: &str) -> bool {
    value == expected
        || matches!((value.parse::<i64>(), expected.parse::<i64>()), (Ok(a), Ok(b)) if a == b)
}

/// The loader's list of libraries preloaded into every program.
/// The audit and system logging configuration (prefixes when ending in `/`): what the audit
/// daemon records and sends, what the syslog daemons and journald keep.
const LOGGING_CONFIG: &[&str] = &[
    "/etc/audit/",
    "/etc/audisp/",
    "/etc/libaudit.conf",
    "/etc/rsyslog.conf",
    "/etc/rsyslog.d/",
    "/etc/syslog.conf",
    "/etc/syslog-ng/",
    "/etc/systemd/journald.conf",
    "/etc/systemd/journald.conf.d/",
];

/// The audit rules compiler writes `/etc/audit/audit.rules` from `rules.d`.
const AUDIT_RULES_TOOLS: &[&str] = &["/usr/sbin/augenrules", "/sbin/augenrules"];

/// Audit or logging configuration written, replaced or removed by anything but a package
/// manager (or its children), the daemons themselves and the audit rules compiler
/// (`sed -i '$ a ...' /etc/rsyslog.conf`, Atomic Red Team's T1562.006): what is logged is
/// changed before the attack goes on (T1562.006). Medium: administrators change it too, and an
/// editor's change raises it as well (only `SensitiveFileModified` did before).
fn logging_config_changed(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = text(made_path(f, &["unlink"]))?;
    let listed = LOGGING_CONFIG.iter().any(|c| {
        if c.ends_with('/') {
            path.starts_with(c)
        } else {
            path == *c
        }
    });
    let audit_rules_tool = actor
        .exe
        .as_deref()
        .and_then(Path::to_str)
        .is_some_and(|e| AUDIT_RULES_TOOLS.contains(&e));
    if !listed
        || audit_rules_tool
        || actor.is_one_of(&b.package_managers, Reach::Lineage)
        || actor.is_one_of(&b.log_owners, Reach::Parent)
    {
        return None;
    }
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-logging-config-changed",
            mitre: "T1562.006",
            severity: Some(5.0),
        },
        draft(
            "Audit or logging configuration was changed",
            format!(
                "Process {} (pid {}) changed {path} ({}): what the system records is configured \
                 there.",
                f.process.comm, f.process.pid, f.operation
            ),
            path.clone(),
            file_context(f, &path),
        ),
    ))
}

const LD_SO_PRELOAD: &str = "/etc/ld.so.preload";

/// `/etc/ld.so.preload` written, replaced or linked by anything but a package manager (or its
/// children): every program started afterwards loads what it names (T1574.006). The command
/// rule `evasion-ld-preload-file` sees it only in a shell's argv; this sees the file, however it
/// was written (a script line, `cp`, `tee`, an interpreter).
fn preload_file_written(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = made_path(f, &[])?;
    if path != Path::new(LD_SO_PRELOAD) || actor.is_one_of(&b.package_managers, Reach::Lineage) {
        return None;
    }
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-ld-preload-file",
            mitre: "T1574.006",
            severity: Some(8.0),
        },
        draft(
            "The loader's preload list was written",
            format!(
                "Process {} (pid {}) wrote {LD_SO_PRELOAD} ({}): every program started from now \
                 on loads the libraries it names.",
                f.process.comm, f.process.pid, f.operation
            ),
            LD_SO_PRELOAD.into(),
            file_context(f, LD_SO_PRELOAD),
        ),
    ))
}

/// The name of iconv's module list: a directory holding a file of this name, put in
/// `GCONV_PATH`, makes glibc load the shared objects it names when a program converts a
/// character set.
pub(crate) const GCONV_MODULES: &str = "gconv-modules";

/// Whether `path` is in a directory where the C library keeps its own iconv modules
/// (`/usr/lib/x86_64-linux-gnu/gconv/`, `/usr/lib64/gconv/`, `/usr/lib/gconv/`).
fn system_gconv_dir(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let dir = if dir.file_name().is_some_and(|n| n == "gconv-modules.d") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    dir.file_name().is_some_and(|n| n == "gconv")
        && [
            "/usr/lib/",
            "/usr/lib64/",
            "/usr/lib32/",
            "/lib/",
            "/lib64/",
        ]
        .iter()
        .any(|p| dir.starts_with(p))
}

/// A `gconv-modules` file written, renamed or linked into place outside the C library's own
/// module directories, by anything but a package manager (or its children): the staging of
/// PwnKit (CVE-2021-4034) and of every `GCONV_PATH` attack, a module list that makes a
/// program (a setuid one, fooled into taking the variable) load a shared object of the
/// attacker's. No program writes one outside those directories in ordinary work. High.
fn gconv_modules_written(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = made_path(f, &[])?;
    if path.file_name().is_none_or(|n| n != GCONV_MODULES)
        || system_gconv_dir(path)
        || actor.is_one_of(&b.package_managers, Reach::Lineage)
    {
        return None;
    }
    let shown = path.display().to_string();
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-gconv-modules-written",
            mitre: "T1068,T1574.006",
            severity: Some(8.0),
        },
        draft(
            "An iconv module list was written outside the C library's directories",
            format!(
                "Process {} (pid {}) wrote {shown} ({}): with its directory in GCONV_PATH, a \
                 program converting a character set loads the shared objects it names (PwnKit's \
                 staging, CVE-2021-4034).",
                f.process.comm, f.process.pid, f.operation
            ),
            shown.clone(),
            file_context(f, &shown),
        ),
    ))
}

/// The policies that say who may become root, and the program each belongs to: sudo's file and
/// the directory it includes (`@includedir /etc/sudoers.d`), doas's file (OpenBSD's sudo, packaged
/// by the distributions), polkit's JavaScript rules and its older `.pkla` authorities (a rule
/// returning `polkit.Result.YES` lets a user run `pkexec` and every privileged D-Bus action
/// without a password). A path ending in '/' is a directory: a file in it.
const ELEVATION_POLICIES: &[(&str, &str)] = &[
    ("/etc/sudoers", "sudo"),
    ("/etc/sudoers.d/", "sudo"),
    ("/etc/doas.conf", "doas"),
    ("/usr/local/etc/doas.conf", "doas"),
    ("/etc/polkit-1/rules.d/", "polkit"),
    ("/usr/share/polkit-1/rules.d/", "polkit"),
    ("/etc/polkit-1/localauthority/", "polkit"),
    ("/var/lib/polkit-1/localauthority/", "polkit"),
    // The local authority's configuration: `AdminIdentities=unix-user:NAME` makes NAME an
    // administrator for every action that asks for one.
    ("/etc/polkit-1/localauthority.conf.d/", "polkit"),
];

/// The policy a path is part of, if any.
fn elevation_policy(path: &str) -> Option<&'static str> {
    ELEVATION_POLICIES.iter().find_map(|&(place, policy)| {
        let hit = if place.ends_with('/') {
            path.strip_prefix(place)
                .is_some_and(|rest| !rest.is_empty())
        } else {
            path == place
        };
        hit.then_some(policy)
    })
}

/// An elevation policy (sudo's, doas's, polkit's rules) written, replaced or linked by anything
/// but a package manager (or its children) and `sudoersOwners` (`visudo` and `vidoas`, which
/// check the syntax, write a temporary file and rename it over the policy): a line such as
/// `user ALL=(ALL) NOPASSWD:ALL`, `permit nopass user as root` or a polkit rule returning YES
/// gives root to whoever the attacker controls (T1548.003, T1548). The command rule
/// `privesc-sudoers-write` sees sudo's only in a shell's argv; this sees the file, however it
/// was written (a script line, `tee`, `cp`, `sed -i`, `dd`, an interpreter, a relative path).
fn sudoers_written(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = text(made_path(f, &[]))?;
    let policy = elevation_policy(&path)?;
    if actor.is_one_of(&b.package_managers, Reach::Lineage)
        || actor.is_one_of(&b.sudoers_owners, Reach::Parent)
    {
        return None;
    }
    let (title, mitre, what) = match policy {
        "sudo" => (
            "The sudo policy was written",
            "T1548.003",
            "without visudo: the sudo policy says who may run what as root",
        ),
        "doas" => (
            "The doas policy was written",
            "T1548.003",
            "without vidoas: the doas policy says who may run what as root",
        ),
        _ => (
            "A polkit rule was written",
            "T1548",
            "and no package installed it: polkit's rules say who may run pkexec and the system \
             services' privileged actions",
        ),
    };
    let mut context = file_context(f, &path);
    context.additional.insert("policy".into(), policy.into());
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-sudoers-modified",
            mitre,
            severity: Some(5.0),
        },
        draft(
            title,
            format!(
                "Process {} (pid {}) wrote {path} ({}) {what}.",
                f.process.comm, f.process.pid, f.operation
            ),
            path.clone(),
            context,
        ),
    ))
}

/// What a change to an account file granted, as the pipeline read the file back after the
/// write, rename or link and compared it with its last read ([`super::accounts`]), whatever
/// program wrote it (`echo >>`, `sed -i`, an interpreter, `cp` or `mv` of an edited copy,
/// `useradd -o -u 0`, `usermod -aG sudo`): never from a command line. One finding per grant:
/// - a second root account: a name given uid 0 in `/etc/passwd` (T1136.001), High;
/// - an account that needs no password: an empty password field in `/etc/passwd` or
///   `/etc/shadow` (`x::0:0:...`, `passwd -d`; T1098), High for a uid-0 account, else Medium;
/// - a member added to an administrators' group in `/etc/group` (`sudo`, `wheel`, `admin`,
///   `root`; T1098), Medium: the account tools do this for an operator too, and the grant is
///   still the finding (suppress by writer where it is routine).
fn account_grants_added(d: &Detector, f: &FileInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let Some(changes) = f.accounts_changed.as_ref() else {
        return Vec::new();
    };
    let path = text(made_path(f, &[])).unwrap_or_else(|| f.path.clone());
    let raise =
        |raises: Raises, key: String, title: &'static str, what: String, extra: &[(&str, &str)]| {
            let mut context = file_context(f, &path);
            for (k, v) in extra {
                context.additional.insert((*k).into(), (*v).into());
            }
            let mut c = technique(
                d,
                &f.process,
                lookup,
                raises,
                draft(
                    title,
                    format!(
                        "Process {} (pid {}) changed {path} ({}): {what}.",
                        f.process.comm, f.process.pid, f.operation
                    ),
                    path.clone(),
                    context,
                ),
            );
            c.key = key;
            c
        };
    let mut out = Vec::new();
    for name in &changes.root_added {
        out.push(raise(
            Raises {
                finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
                rule: "behaviour-root-account-added",
                mitre: "T1136.001",
                severity: Some(8.0),
            },
            format!("root-account\0{name}"),
            "A second account with uid 0 (root) was added",
            format!("it now gives uid 0 to the account {name}, which logs in as root"),
            &[("account", name)],
        ));
    }
    for account in &changes.passwordless_added {
        let name = &account.name;
        out.push(raise(
            Raises {
                finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
                rule: "behaviour-passwordless-account",
                mitre: "T1098",
                severity: Some(if account.root { 8.0 } else { 5.0 }),
            },
            format!("passwordless\0{name}"),
            "An account now needs no password",
            format!(
                "the password field of the account {name}{} is now empty: it logs in with no \
                 password",
                if account.root { " (uid 0)" } else { "" }
            ),
            &[("account", name)],
        ));
    }
    for m in &changes.admin_members_added {
        out.push(raise(
            Raises {
                finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
                rule: "behaviour-admin-group-member-added",
                mitre: "T1098",
                severity: Some(5.0),
            },
            format!("admin-group\0{}\0{}", m.group, m.member),
            "An account was added to an administrators' group",
            format!(
                "the account {} is now a member of the group {}, whose members administer the \
                 system",
                m.member, m.group
            ),
            &[("account", &m.member), ("group", &m.group)],
        ));
    }
    out
}

/// The directories of the system's own programs (the sensitive-path set has them, so the kernel
/// reports writes, renames and links there), and whether programs sit in subdirectories of
/// each (`/usr/libexec/openssh/sshd-session`). `/usr/local/bin` and `/usr/local/sbin` are not
/// here: `make install`, `pip` and `npm -g` install there as root as their job.
const SYSTEM_BINARY_DIRS: &[(&str, bool)] = &[
    ("/usr/bin/", false),
    ("/usr/sbin/", false),
    ("/bin/", false),
    ("/sbin/", false),
    ("/usr/libexec/", true),
    ("/usr/lib/openssh/", false),
];

/// The system program directory `path` is a program of, and the program's path inside it;
/// `None` outside them (a file in a directory under `/usr/bin` is none).
pub fn system_program_dir(path: &str) -> Option<(&'static str, &str)> {
    SYSTEM_BINARY_DIRS.iter().find_map(|(dir, nested)| {
        path.strip_prefix(*dir)
            .filter(|rest| {
                !rest.is_empty()
                    && !rest.ends_with('/')
                    && (*nested || !rest.contains('/'))
                    && !rest
                        .split('/')
                        .any(|c| c.is_empty() || c == "." || c == "..")
            })
            .map(|rest| (*dir, rest))
    })
}

/// `S_ISUID` and `S_ISGID`.
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;

/// A program in a system program directory written, replaced or linked by anything but a
/// package manager (or its children: maintainer scripts, `update-alternatives` run by one) and
/// the directory's writers (`sensitiveFiles.exempt`: update-alternatives, dpkg-divert), known by
/// the executables of the lineage, never `comm`: `cp /tmp/x /usr/bin/sudo`, `mv x
/// /usr/sbin/sshd`, `cat > /usr/bin/sudo` (a wrapper that logs the password and runs the real
/// one), a new program dropped there (`install -m 4755 x /usr/bin/y`). Every user who runs the
/// name runs the attacker's program, root included (T1554). High when the program takes
/// passwords or grants privileges (`authenticationPrograms`), was setuid or setgid when the
/// agent started, or is setuid or setgid now; Medium otherwise.
fn system_binary_replaced(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = text(made_path(f, &[]))?;
    let (dir, rest) = system_program_dir(&path)?;
    let name = path_basename(Path::new(rest));
    // The container runtime's binaries have their own type (RuncContainerEscape).
    if b.runtime_binaries.iter().any(|n| n == name)
        || actor.is_one_of(&b.package_managers, Reach::Lineage)
    {
        return None;
    }
    if let Some(x) = b.exemption(dir)
        && super::behaviour::identified(
            &x.writers,
            &super::behaviour::actor_paths(d, &f.process, lookup),
        )
    {
        return None;
    }
    let mode = f.program_written.map(|w| w.mode).unwrap_or(0);
    let privileged = if b.authentication_programs.iter().any(|n| n == name) {
        Some("authentication")
    } else if mode & S_ISUID != 0 {
        Some("setuid")
    } else if mode & S_ISGID != 0 {
        Some("setgid")
    } else if d.config.privileged_programs.contains(Path::new(&path)) {
        Some("wasSetuid")
    } else {
        None
    };
    let mut context = file_context(f, &path);
    let add = &mut context.additional;
    add.insert("systemBinaryDir".into(), dir.to_owned());
    if let Some(exe) = text(actor.exe.as_ref()) {
        add.insert("writerExecutable".into(), exe);
    }
    if let Some(w) = f.program_written {
        add.insert("programContent".into(), w.content.as_str().into());
    }
    if let Some(p) = privileged {
        add.insert("privilegedProgram".into(), p.into());
    }
    let script = f.program_written.is_some_and(|w| {
        matches!(
            w.content,
            ProgramContent::Script | ProgramContent::SelfExeScript
        )
    });
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PersistenceSuspiciousCommand,
            rule: "behaviour-system-binary-replaced",
            mitre: "T1554",
            severity: Some(if privileged.is_some() { 8.0 } else { 5.0 }),
        },
        draft(
            "A program in a system binary directory was written by something other than a package manager",
            format!(
                "Process {} (pid {}) wrote {path} ({}{}): whoever runs that name runs what was \
                 written, and no package manager installed it.{}",
                f.process.comm,
                f.process.pid,
                f.operation,
                if script { ", a script" } else { "" },
                match privileged {
                    Some("authentication") =>
                        " It is a program that takes passwords or grants privileges.",
                    Some("wasSetuid") => " The program there was setuid or setgid.",
                    Some(_) => " It is setuid or setgid.",
                    None => "",
                }
            ),
            path.clone(),
            context,
        ),
    ))
}

/// A program in a system program directory rewritten as a script whose interpreter is
/// `/proc/self/exe` (`ProgramContent::SelfExeScript`), by anyone: CVE-2019-5736's first step
/// (Metasploit's `docker_runc_escape`). In a container, the runtime's next `exec` of that
/// program (`docker exec CONTAINER /bin/sh`) runs the runtime's own binary again as the
/// interpreter, inside the container, which then opens it through `/proc/PID/exe` and
/// overwrites the host's runc. No package installs such a script, and it runs nothing of its
/// own. High, the runtime-escape type, in a container and on the host alike (a host's program
/// rewritten so is the same trap for whatever runs it); `behaviour-system-binary-replaced`
/// says the program was replaced.
fn self_exe_interpreter_written(
    d: &Detector,
    f: &FileInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let written = f.program_written?;
    if written.content != ProgramContent::SelfExeScript {
        return None;
    }
    let path = text(made_path(f, &[]))?;
    system_program_dir(&path)?;
    let mut context = file_context(f, &path);
    context
        .additional
        .insert("programContent".into(), written.content.as_str().into());
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationRuncContainerEscape,
            rule: "behaviour-self-exe-interpreter",
            mitre: "T1611",
            severity: Some(8.0),
        },
        draft(
            "A system program was made a script that runs its caller's own executable",
            format!(
                "Process {} (pid {}){} wrote {path} as a script whose interpreter is                  /proc/self/exe: whatever runs that name next runs its own executable again,                  the way a container reaches the runtime's binary (CVE-2019-5736).",
                f.process.comm,
                f.process.pid,
                if f.process.container.is_some() {
                    " in a container"
                } else {
                    ""
                }
            ),
            path.clone(),
            context,
        ),
    ))
}

/// A regular file given a setuid or setgid mode, wherever it is, by anything but a package
/// manager (or its children) and the programs that unpack image layers (`setIdMakers`): the
/// way root is kept for later (`cp /bin/bash /tmp/.x; chmod u+s /tmp/.x`), by any program
/// (`install -m 4755`, python's `os.chmod`, perl's `chmod`, an `open` that creates the file
/// with the mode), not only the `chmod` command whose arguments `privesc-setuid-bit` reads
/// (T1548.001). The kernel reports the mode asked for (`setId`); the pipeline reads the file's
/// mode back, so a bit the kernel refused or cleared raises nothing, and a directory (a setgid
/// one shares its group) is no program. Medium; High in a system program directory, where
/// everyone's `PATH` leads.
fn set_id_program_made(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    if !f.matched_by.contains(&"setId") {
        return None;
    }
    let w = f.program_written?;
    let bits = match (w.mode & S_ISUID != 0, w.mode & S_ISGID != 0) {
        (true, true) => "setuid and setgid",
        (true, false) => "setuid",
        (false, true) => "setgid",
        (false, false) => return None,
    };
    if actor.is_one_of(&b.package_managers, Reach::Lineage)
        || actor.is_one_of(&b.set_id_makers, Reach::Lineage)
    {
        return None;
    }
    let path = text(f.resolved_path.as_ref())?;
    // A program that was set-id when the agent started, given a mode again by a chmod
    // (`chmod 4755 /usr/bin/sudo` by a configuration tool; `chmod g-w` keeps the bit, since the
    // kernel sees the whole mode asked for): nothing was made set-id. A program replaced there
    // is `behaviour-system-binary-replaced`'s, High.
    if f.operation == "chmod" && d.config.privileged_programs.contains(Path::new(&path)) {
        return None;
    }
    let system = system_program_dir(&path).is_some();
    let mut context = file_context(f, &path);
    let add = &mut context.additional;
    add.insert("setIdBits".into(), bits.into());
    add.insert("fileOwnerUid".into(), w.uid.to_string());
    add.insert("fileMode".into(), format!("{:o}", w.mode & 0o7777));
    add.insert("programContent".into(), w.content.as_str().into());
    if let Some(exe) = text(actor.exe.as_ref()) {
        add.insert("writerExecutable".into(), exe);
    }
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-setid-program-made",
            mitre: "T1548.001",
            severity: Some(if system { 8.0 } else { 5.0 }),
        },
        draft(
            "A file was made setuid or setgid by something other than a package manager",
            format!(
                "Process {} (pid {}) made {path} {bits} ({}, owner uid {}): whoever runs it runs \
                 it with its owner's or group's rights.{}",
                f.process.comm,
                f.process.pid,
                f.operation,
                w.uid,
                if system {
                    " It is in a system program directory."
                } else {
                    ""
                }
            ),
            path.clone(),
            context,
        ),
    ))
}

/// Library directories the dynamic loader is installed in, as the kernel names the file it
/// opened (`/lib64/ld-linux-x86-64.so.2` is a link into `/usr/lib/x86_64-linux-gnu/` on a
/// merged-/usr system; both forms are here for the others).
const LOADER_DIRS: &[&str] = &[
    "/lib/",
    "/lib64/",
    "/lib32/",
    "/libx32/",
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/lib32/",
    "/usr/libx32/",
];

/// Whether a file name is a dynamic loader's: `ld-*.so*` or `ld.so*` (glibc's
/// `ld-linux-x86-64.so.2`, `ld-linux-aarch64.so.1`, `ld-linux.so.2`, musl's
/// `ld-musl-x86_64.so.1`, ppc64's `ld64.so.2`).
pub(super) fn is_loader_name(name: &str) -> bool {
    // `ld.so.preload`, `ld.so.conf` and `ld.so.cache` are the loader's files, not loaders.
    let versioned = |rest: &str| {
        rest.is_empty()
            || rest
                .strip_prefix('.')
                .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    (name.starts_with("ld-") && name.contains(".so"))
        || name.strip_prefix("ld.so").is_some_and(versioned)
        || name.strip_prefix("ld64.so").is_some_and(versioned)
}

/// Whether `path` is a dynamic loader: a loader's name in a system library directory.
pub(super) fn is_loader(path: &str) -> bool {
    is_loader_name(path_basename(Path::new(path)))
        && !path.split('/').any(|c| c == "..")
        && LOADER_DIRS.iter().any(|d| path.starts_with(d))
}

/// The loader's search path configuration (`ldconfig` builds the cache every program's
/// libraries are found through from these).
const LD_SO_CONF: &str = "/etc/ld.so.conf";
const LD_SO_CONF_DIR: &str = "/etc/ld.so.conf.d/";

/// The dynamic loader itself, or the configuration of where it finds libraries, written,
/// replaced or linked by anything but a package manager (or its children: a libc upgrade
/// unpacks `ld-linux-x86-64.so.2` and renames it into place): the loader runs before every
/// dynamically linked program, so a changed loader, or a directory of the attacker's put ahead
/// of the system's, runs the attacker's code in all of them (T1574.006; Tracee's "default
/// loader modification"). The loader: High; its search path: Medium (administrators add
/// directories for software they install by hand).
fn loader_modified(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = text(made_path(f, &[]))?;
    let loader = is_loader(&path);
    let config = path == LD_SO_CONF
        || path
            .strip_prefix(LD_SO_CONF_DIR)
            .is_some_and(|rest| !rest.is_empty());
    if !(loader || config) || actor.is_one_of(&b.package_managers, Reach::Lineage) {
        return None;
    }
    let (rule, severity, title, what) = if loader {
        (
            "behaviour-loader-modified",
            8.0,
            "The dynamic loader was modified",
            "the dynamic loader, which runs before every dynamically linked program",
        )
    } else {
        (
            "behaviour-loader-config-modified",
            5.0,
            "The dynamic loader's library path was changed",
            "the loader's library search path: a directory named there is searched for every \
             program's libraries",
        )
    };
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule,
            mitre: "T1574.006",
            severity: Some(severity),
        },
        draft(
            title,
            format!(
                "Process {} (pid {}) wrote {path} ({}), {what}.",
                f.process.comm, f.process.pid, f.operation
            ),
            path.clone(),
            file_context(f, &path),
        ),
    ))
}

/// Kernel hardening settings besides ASLR, with the values that switch each off: what an
/// attacker sets before reading kernel addresses (`kptr_restrict`, `dmesg_restrict`), attaching
/// to other processes (`ptrace_scope`), using the interfaces exploits need (`bpf`,
/// `userfaultfd`, every perf event with `perf_event_paranoid` -1, page zero mapped with
/// `mmap_min_addr` 0) or following links planted in world-writable directories
/// (`protected_symlinks`, `protected_hardlinks`). The kernel's semantics, not configuration.
const HARDENING: &[(&str, &[&str])] = &[
    ("/proc/sys/kernel/kptr_restrict", &["0"]),
    ("/proc/sys/kernel/dmesg_restrict", &["0"]),
    ("/proc/sys/kernel/yama/ptrace_scope", &["0"]),
    ("/proc/sys/kernel/unprivileged_bpf_disabled", &["0"]),
    ("/proc/sys/vm/unprivileged_userfaultfd", &["1"]),
    ("/proc/sys/kernel/perf_event_paranoid", &["-1"]),
    ("/proc/sys/vm/mmap_min_addr", &["0"]),
    ("/proc/sys/fs/protected_symlinks", &["0"]),
    ("/proc/sys/fs/protected_hardlinks", &["0"]),
];

/// A kernel hardening setting written and reading its weakest value once the writer closed it
/// (`sysctl -w kernel.kptr_restrict=0`, `echo 0 > /proc/sys/kernel/yama/ptrace_scope`).
/// Medium: administrators do it too, on a machine they debug.
fn hardening_weakened(d: &Detector, f: &FileInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    if !setting_written(f) {
        return None;
    }
    let path = setting_path(f)?.to_str()?;
    let (setting, weak) = HARDENING.iter().find(|(p, _)| *p == path)?;
    let value = f.sysctl_value.as_deref()?;
    if !weak.iter().any(|w| same_number(value, w)) {
        return None;
    }
    let name = setting.trim_start_matches("/proc/sys/").replace('/', ".");
    let mut context = file_context(f, setting);
    context.additional.insert("setting".into(), name.clone());
    context.additional.insert("value".into(), value.to_owned());
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::DefenseEvasionSuspiciousCommand,
            rule: "behaviour-kernel-hardening-weakened",
            mitre: "T1562.001",
            severity: Some(5.0),
        },
        draft(
            "A kernel hardening setting was switched off",
            format!(
                "Process {} (pid {}) set {name} to {value}, which switches its protection off.",
                f.process.comm, f.process.pid
            ),
            (*setting).to_owned(),
            context,
        ),
    ))
}

/// The kernel's core-dump handler setting.
const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// Directories whose programs a distribution installs as core-dump handlers
/// (`systemd-coredump`, `apport`, `abrt-hook-ccpp`): only root and the package manager write there.
const SYSTEM_PROGRAM_DIRS: &[&str] = &["/usr/", "/lib/", "/lib64/", "/bin/", "/sbin/"];

/// cgroup v1's list of the devices a cgroup's tasks may open.
pub(super) const DEVICES_ALLOW: &str = "devices.allow";

/// `devices.allow` written by a process of a container: the container widening the devices it
/// may open (CDK's rewrite-cgroup-devices and lxcfs-rw: `mount -t cgroup -o devices`, its own
/// cgroup's `devices.allow` found by inode, `echo a >` it, then `mknod` of the host's disk and
/// `debugfs` on it). Runtimes write these lists from the host for the containers they start;
/// a container writes one only to give itself devices, or when it runs containers itself
/// (Docker in Docker, privileged: a cost, suppressed by image).
fn container_devices_allowed(
    d: &Detector,
    f: &FileInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = f.resolved_path.as_deref()?;
    if f.operation != "openWrite"
        || f.process.container.is_none()
        || path.file_name().and_then(|n| n.to_str()) != Some(DEVICES_ALLOW)
    {
        return None;
    }
    let text = path.display().to_string();
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-container-devices-allowed",
            mitre: "T1611",
            severity: None,
        },
        draft(
            "A container allowed itself devices",
            format!(
                "Process {} (pid {}) in a container wrote the cgroup device list {text}: a \
                 container that widens the devices it may open can create and open the host's \
                 disks.",
                f.process.comm, f.process.pid
            ),
            text.clone(),
            file_context(f, &text),
        ),
    ))
}

/// Whether `path` is a program in one of [`SYSTEM_PROGRAM_DIRS`], named without `..`.
fn in_system_program_dir(path: &str) -> bool {
    path.starts_with('/')
        && !path.split('/').any(|c| c == "..")
        && SYSTEM_PROGRAM_DIRS.iter().any(|dir| path.starts_with(dir))
}

/// kthreadd's pid: the parent the kernel gives the programs it starts itself (user-mode
/// helpers). No process of user space has it for a parent: orphans go to init or a subreaper.
const KTHREADD: u32 = 2;

/// Where container runtimes keep containers' file systems on the host.
const CONTAINER_STORAGE: &[&str] = &[
    "/var/lib/docker/",
    "/var/lib/containers/",
    "/var/lib/containerd/",
    "/run/containerd/",
    "/var/lib/kubelet/",
    "/var/lib/rancher/",
];

/// Where container engines keep containers' layers and mounted root file systems, as the host
/// names them (docker's storage drivers, containers/storage for podman and CRI-O, containerd's
/// snapshotters and task root file systems, k3s's containerd). A file there belongs to a
/// container: written when an image is unpacked or by the container's processes, removed with
/// the container. The container's own processes name it by its path inside (`/root/.bashrc`),
/// and are judged by that; the engine unpacking an image with a `.bashrc` or removing a
/// container whose shell kept a `.bash_history` is not changing the host's files of those names.
const CONTAINER_LAYERS: &[&str] = &[
    "/var/lib/docker/overlay2/",
    "/var/lib/docker/overlay/",
    "/var/lib/docker/aufs/",
    "/var/lib/docker/btrfs/",
    "/var/lib/docker/zfs/",
    "/var/lib/docker/vfs/",
    "/var/lib/docker/fuse-overlayfs/",
    "/var/lib/docker/rootfs/",
    "/var/lib/containers/storage/",
    "/var/lib/containerd/io.containerd.snapshotter.",
    "/run/containerd/io.containerd.runtime.v2.task/",
    "/var/lib/rancher/k3s/agent/containerd/",
];

/// Rootless podman's storage, under each user's home directory.
const ROOTLESS_CONTAINER_LAYERS: &str = "/.local/share/containers/storage/";

/// Whether `path` (absolute, as the host names it, no `..`) lies in a container's layers or
/// mounted root file system ([`CONTAINER_LAYERS`]).
pub(crate) fn in_container_layers(path: &Path) -> bool {
    let Some(text) = path.to_str() else {
        return false;
    };
    text.starts_with('/')
        && !path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        && (CONTAINER_LAYERS.iter().any(|dir| text.starts_with(dir))
            || text.contains(ROOTLESS_CONTAINER_LAYERS))
}

/// A program the kernel started itself, as root in the host's namespaces (a user-mode helper:
/// a cgroup v1 `release_agent` when a cgroup empties, the `|program` of `core_pattern` when a
/// process crashes, `modprobe`, the uevent helper, `request-key`), run from outside the system
/// directories. Distributions install their helpers there (`systemd-coredump`, `apport`,
/// `/sbin/modprobe`); a helper elsewhere is the payload of a container escape that set one
/// (CDK's mount-cgroup and mount-procfs, deepce's privileged exploit: a script in the
/// container's layer, which the kernel runs by its path on the host) or a root-run hook. Seen
/// at the exec itself, whatever wrote the setting and however (a write the file sensor missed,
/// a setting made before the agent started): the kernel's exec of the helper is the escape
/// happening. The program is the file the kernel ran (a script's own path).
fn kernel_helper(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Option<Candidate> {
    if e.process.ppid != KTHREADD || in_system_program_dir(&e.filename) {
        return None;
    }
    let program = e.filename.as_str();
    let in_container_storage = CONTAINER_STORAGE.iter().any(|dir| program.starts_with(dir));
    let mut context = exec_context(e, program.to_owned());
    context
        .additional
        .insert("kernelHelper".into(), program.to_owned());
    if in_container_storage {
        context
            .additional
            .insert("helperOrigin".into(), "containerStorage".into());
    }
    Some(technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-kernel-helper-program",
            mitre: if in_container_storage {
                "T1611"
            } else {
                "T1546"
            },
            severity: Some(8.0),
        },
        draft(
            "The kernel ran a helper program from outside the system directories",
            format!(
                "The kernel started {program} itself (pid {}, a user-mode helper: a cgroup \
                 release agent, a core-dump handler or another kernel hook) as root in the \
                 host's namespaces{}.",
                e.process.pid,
                if in_container_storage {
                    "; the program lies in a container's file system, so a container set it"
                } else {
                    ""
                }
            ),
            program.to_owned(),
            context,
        ),
    ))
}

/// `/proc/sys/kernel/core_pattern` written to pipe core dumps into a program (`|/path args`), as
/// read once the writer closed it. The kernel runs that program as root in the host's
/// namespaces whenever any process crashes: from a privileged container it is the classic
/// escape (T1611), on the host a root-run hook (T1546). On the host, a distribution's handler
/// in a system directory (`systemd-coredump`, `apport`) and a plain file pattern raise nothing;
/// from a container, any write does (the setting is the host's, whatever it now reads). The
/// program is the first word after `|`, as the kernel splits it.
fn core_pattern_handler(
    d: &Detector,
    f: &FileInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    // Through `/proc`, or through a procfs mounted elsewhere (the host's `/proc` given to a
    // container: CDK's mount-procfs writes `/host_proc/sys/kernel/core_pattern`).
    let core_pattern = Some(Path::new(CORE_PATTERN));
    if !setting_written(f)
        || (f.resolved_path.as_deref() != core_pattern
            && f.sysctl_setting.as_deref() != core_pattern)
    {
        return None;
    }
    let value = f.sysctl_value.as_deref();
    let program = value
        .and_then(|v| v.strip_prefix('|'))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""));
    let in_container = f.process.container.is_some();
    if !in_container {
        match program {
            Some(p) if !in_system_program_dir(p) => {}
            _ => return None,
        }
    }
    let mut context = file_context(f, CORE_PATTERN);
    if let Some(through) = f
        .resolved_path
        .as_deref()
        .filter(|p| *p != Path::new(CORE_PATTERN))
    {
        context
            .additional
            .insert("writtenThrough".into(), through.display().to_string());
    }
    if let Some(v) = value {
        context.additional.insert("value".into(), v.to_owned());
    }
    if let Some(p) = program {
        context
            .additional
            .insert("coreHandler".into(), p.to_owned());
    }
    let what = match (value, program) {
        (Some(v), Some(p)) => format!(
            "set kernel.core_pattern to `{v}`: the kernel runs {p} as root in the host's \
             namespaces when any process crashes"
        ),
        (Some(v), None) => format!("set kernel.core_pattern, the host's, to `{v}`"),
        (None, _) => "wrote kernel.core_pattern, the host's (its value could not be read)".into(),
    };
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
            rule: "behaviour-core-pattern-handler",
            mitre: if in_container { "T1611" } else { "T1546" },
            severity: Some(8.0),
        },
        draft(
            "The kernel's core-dump handler was set",
            format!(
                "Process {} (pid {}){} {what}.",
                f.process.comm,
                f.process.pid,
                if in_container { " in a container" } else { "" }
            ),
            program.unwrap_or(CORE_PATTERN).to_owned(),
            context,
        ),
    ))
}

/// Whether a process is a package manager or runs under one (its maintainer scripts and their
/// children): what it writes is installation.
pub(super) fn installing(
    d: &Detector,
    b: &Behaviour,
    p: &ProcessRef,
    lookup: &dyn ProcessLookup,
) -> bool {
    actor(d, p, lookup).is_one_of(&b.package_managers, Reach::Lineage)
}

// --- git -------------------------------------------------------------------------------------

/// Whether a path is a git configuration file the file sensor watches for its settings: a
/// `.gitconfig` in any directory (the global one is `~/.gitconfig`), the system's
/// `/etc/gitconfig`, the XDG one (`~/.config/git/config`) and a repository's own `config`
/// (`REPO/.git/config`, a bare repository's `NAME.git/config`, a submodule's
/// `REPO/.git/modules/NAME/config`). The kernel matches the name `config` anywhere; only these
/// places are git's.
pub fn is_git_config(path: &Path) -> bool {
    if path == Path::new("/etc/gitconfig") {
        return true;
    }
    match path.file_name().and_then(|n| n.to_str()) {
        Some(".gitconfig") => true,
        Some("config") => path.parent().is_some_and(|dir| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".git"))
                || dir.ends_with(".config/git")
                || dir.to_str().is_some_and(|d| d.contains("/.git/modules/"))
        }),
        _ => false,
    }
}

/// Whether a sensitive-set hit is the git checks' alone (no `SensitiveFileModified`): a git
/// configuration file, judged by the settings written, or a name of a git hook, judged by the
/// `hooks` directory it is in (`persistence_write`, kind `git`): a file named `update`
/// elsewhere is nothing. sshd's per-account login script is a name in the set for the same
/// reason (`rc`, judged by the `.ssh` directory it is in, kind `sshrc`), and so are the
/// editors' start-up names (`init.lua`, judged by the `nvim` directory it is in, kind `editor`).
pub(super) fn judged_by_git_checks(b: &Behaviour, path: &str, name: &str) -> bool {
    is_git_config(Path::new(path))
        || b.persistence_locations.iter().any(|l| {
            matches!(
                l.kind,
                PersistenceKind::Git | PersistenceKind::Sshrc | PersistenceKind::Editor
            ) && matches!(&l.place, Place::Home(h) if h.rsplit('/').next() == Some(name))
        })
}

/// Whether a sensitive-set entry is in the set for the git checks alone and says nothing by
/// itself: the name `config` (a repository's configuration; `~/.ssh/config`, `~/.kube/config`
/// and every project's `config` are nothing to the set).
pub(super) fn git_config_name_only(entry: &crate::sensitive::SensitivePath) -> bool {
    entry.kind == crate::sensitive::MatchKind::Name && entry.pattern == "config"
}

/// Git settings whose value is a command git runs, each with when it runs it: the pager at
/// every `git log`, `diff` or `show` on a terminal, the file-system monitor at every `git
/// status` (and most other commands), the ssh command at every fetch, pull or push over ssh.
const GIT_COMMAND_SETTINGS: &[(&str, &str)] = &[
    ("core.pager", "at every git log, diff or show"),
    ("core.fsmonitor", "at every git status"),
    ("core.sshcommand", "at every fetch, pull or push over ssh"),
];

/// The settings of a git configuration text that name a command or a place git takes code
/// from, as `(section.key, value)` with the section and key lower-cased as git compares them
/// and the value without its surrounding quotes: the command settings
/// (`GIT_COMMAND_SETTINGS`), aliases (`alias.NAME`), included files (`include.path`,
/// `includeIf "COND".path`) and the hooks directory (`core.hookspath`). Section headers may
/// carry a subsection (`[core "x"]` is not `core`) and a setting on the same line (`[core]
/// pager = x`); `#` and `;` start comments.
pub(super) fn git_command_settings(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        let mut line = line.trim();
        if line.starts_with('[') {
            let Some(end) = line.find(']') else {
                continue;
            };
            section = line[1..end].trim().to_ascii_lowercase();
            line = line[end + 1..].trim();
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let name = format!("{section}.{}", key.trim().to_ascii_lowercase());
        let wanted = GIT_COMMAND_SETTINGS.iter().any(|(s, _)| *s == name)
            || name == "core.hookspath"
            || name == "include.path"
            || (section.starts_with("includeif ") && name.ends_with(".path"))
            || section == "alias";
        if !wanted {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        out.push((name, value.to_owned()));
    }
    out
}

/// Programs that have no place in a pager, a file-system monitor, an ssh command or an alias:
/// network relays and downloaders, detachers, decoders.
const GIT_COMMAND_ODD_PROGRAMS: &[&str] = &[
    "nc", "ncat", "netcat", "socat", "curl", "wget", "nohup", "setsid", "base64", "xxd",
];

/// World-writable and memory-backed directories as a command in a git setting names them (the
/// checks' lists are the behaviour file's `worldWritableExecDirs` and `memoryExecDirs`; this
/// one is for the pure shape test, which has no behaviour file).
const GIT_COMMAND_ODD_DIRS: &[&str] = &["/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/"];

/// Why a command in a git setting is a backdoor's rather than a person's: it reaches the
/// network through `/dev/tcp`, chains or backgrounds a second command (`;`, `&`, `$(...)`,
/// backquotes, a redirection: PANIX's pager is `CMD & ${PAGER:-less}`), runs a program from a
/// world-writable directory, or runs a relay, downloader, detacher or decoder. A plain pager,
/// a pipe into one (`diff-so-fancy | less --tabs=4 -RFX`), `ssh -i KEY -o OPTION` and
/// `core.fsmonitor = true` are what people set.
pub(super) fn git_command_oddity(value: &str) -> Option<&'static str> {
    if value.contains("/dev/tcp/") || value.contains("/dev/udp/") {
        return Some("it opens a connection through /dev/tcp");
    }
    if value.contains(['&', ';', '`', '>', '<', '\n']) || value.contains("$(") {
        return Some("it chains, backgrounds or redirects another command");
    }
    odd_program(value)
}

/// Why a shell alias (`alias.NAME = !COMMAND`: git runs COMMAND with `sh -c` when someone
/// types `git NAME`) is a backdoor's: the shapes of [`git_command_oddity`] but chaining,
/// substitution and redirection, which aliases are made of (`!f() { git fetch && git rebase;
/// }; f`, `!git branch -d $(git branch --merged) 2>/dev/null`): a command sent to the
/// background (a lone `&`), `/dev/tcp`, a program from a world-writable directory, a relay,
/// downloader, detacher or decoder.
pub(super) fn git_alias_oddity(command: &str) -> Option<&'static str> {
    if command.contains("/dev/tcp/") || command.contains("/dev/udp/") {
        return Some("it opens a connection through /dev/tcp");
    }
    let bytes = command.as_bytes();
    let lone_ampersand = bytes.iter().enumerate().any(|(i, &c)| {
        let near = |j: Option<usize>| j.and_then(|j| bytes.get(j)).copied();
        c == b'&'
            && !matches!(near(i.checked_sub(1)), Some(b'&' | b'>' | b'<'))
            && !matches!(near(Some(i + 1)), Some(b'&' | b'>'))
    });
    if lone_ampersand {
        return Some("it sends a command to the background");
    }
    odd_program(command)
}

/// The word shapes both command tests share: a program from a world-writable directory, or
/// one of [`GIT_COMMAND_ODD_PROGRAMS`].
fn odd_program(value: &str) -> Option<&'static str> {
    let words = value
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '|' | '\'' | '"' | ';' | '&' | '(' | ')' | '{' | '}')
        })
        .filter(|w| !w.is_empty());
    for w in words {
        if GIT_COMMAND_ODD_DIRS.iter().any(|d| w.starts_with(d)) {
            return Some("it runs a program from a world-writable directory");
        }
        let name = w.rsplit('/').next().unwrap_or(w);
        if GIT_COMMAND_ODD_PROGRAMS.contains(&name) {
            return Some("it runs a network relay, downloader, detacher or decoder");
        }
    }
    None
}

/// Whether a path a git setting names is in, or is, a world-writable or memory-backed directory
/// (`dirs`: prefixes ending in `/`).
fn git_path_in(dirs: &[String], value: &str) -> bool {
    dirs.iter()
        .any(|d| value.starts_with(d.as_str()) || value == d.trim_end_matches('/'))
}

/// Why a git setting in a configuration file is a backdoor's, with when git acts on it: a
/// command setting whose command has a backdoor's shape ([`git_command_oddity`]), a shell
/// alias likewise ([`git_alias_oddity`]; `alias.co = checkout` is a git command, not a
/// shell's), an included file or the hooks directory in a world-writable or memory-backed
/// directory (anyone there can put a pager or a hook in).
fn git_setting_oddity(
    b: &Behaviour,
    name: &str,
    value: &str,
) -> Option<(&'static str, &'static str)> {
    if let Some(&(_, when)) = GIT_COMMAND_SETTINGS.iter().find(|(s, _)| *s == name) {
        return git_command_oddity(value).map(|why| (why, when));
    }
    if name.starts_with("alias.") {
        let command = value.strip_prefix('!')?;
        return git_alias_oddity(command).map(|why| (why, "whenever someone runs that alias"));
    }
    let writable =
        git_path_in(&b.world_writable_exec_dirs, value) || git_path_in(&b.memory_exec_dirs, value);
    if !writable {
        return None;
    }
    if name == "core.hookspath" {
        return Some((
            "its hooks come from a world-writable or memory-backed directory",
            "at every commit, checkout, merge or push",
        ));
    }
    Some((
        "it takes settings (a pager, an ssh command, hooks) from a file in a world-writable or \
         memory-backed directory",
        "at every git command",
    ))
}

/// A git configuration file (`~/.gitconfig`, `~/.config/git/config`, `/etc/gitconfig`, a
/// repository's `.git/config`) written with a setting of a backdoor's (`git_setting_oddity`:
/// a command setting or shell alias of a backdoor's shape, an include or hooks directory in
/// `/tmp` or `/dev/shm`), as read once the writer closed it: git then runs it as the user at
/// every `git log`, `status` or push (T1546; PANIX's git module). By any program but a package
/// manager: `git config core.pager '...'` writes the file as an editor or `echo >>` does, so
/// what was written decides, not who wrote it; `git config --global user.name`, a clone or a
/// fetch (the file with only a person's settings) raise nothing.
fn git_command_set(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let text = f.git_config.as_deref()?;
    let path = text_of_git_config(f)?;
    if actor.is_one_of(&b.package_managers, Reach::Lineage) {
        return None;
    }
    let (setting, value, (why, when)) = git_command_settings(text)
        .into_iter()
        .find_map(|(s, v)| git_setting_oddity(b, &s, &v).map(|odd| (s, v, odd)))?;
    let mut context = file_context(f, &path);
    context
        .additional
        .insert("persistenceKind".into(), "git".into());
    context
        .additional
        .insert("gitSetting".into(), setting.clone());
    context
        .additional
        .insert("gitCommand".into(), value.clone());
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PersistenceSuspiciousCommand,
            rule: "behaviour-persistence-git-config",
            mitre: "T1546",
            severity: None,
        },
        draft(
            "A git setting now runs a command of a backdoor's",
            format!(
                "Process {} (pid {}) wrote {path} ({}), setting {setting} to `{value}`: git acts \
                 on it as the user {when}, and {why}.",
                f.process.comm, f.process.pid, f.operation
            ),
            path,
            context,
        ),
    ))
}

/// The git configuration file an operation made (opened for writing, or renamed or linked into
/// place).
fn text_of_git_config(f: &FileInfo) -> Option<String> {
    text(made_path(f, &[])).filter(|p| is_git_config(Path::new(p)))
}

// --- password hashes given to every account -------------------------------------------------

/// Whether `path` is one of the files that hold the password hashes (`/etc/shadow`,
/// `/etc/gshadow`, their `-` backups).
pub fn is_password_hashes(path: &Path) -> bool {
    PASSWORD_HASHES.iter().any(|p| Path::new(p) == path)
}

/// `S_IROTH | S_IWOTH`.
const OTHERS_READ_OR_WRITE: u32 = 0o006;

/// The password hashes given to every account by a chmod (`chmod 0644 /etc/shadow`, `chmod o+r
/// /etc/gshadow`, python's `os.chmod`, `os.fchmod`): any user can then read (or write) root's
/// hash and crack it offline, or read it back later without root (T1222.002, staging
/// T1003.008). The mode the kernel was asked for, whatever program asked; the distributions'
/// modes (`0640 root:shadow`, `0600`, `0000`) give others nothing. Or given to one account or
/// group by a chown (`chown nobody /etc/shadow`, `chgrp users /etc/shadow` with its `0640`):
/// judged by the owner, group and mode read back after it ([`FileInfo::hashes_owner`]); the
/// distributions' owners (root, and root or `shadow` for the group) give nothing. High: no tool
/// of an administrator's makes the hashes readable by others.
fn password_hashes_exposed(
    d: &Detector,
    f: &FileInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let path = f.resolved_path.as_deref()?;
    if !is_password_hashes(path) {
        return None;
    }
    let (mode, given, to) = match f.operation {
        "chmod" => {
            let mode = u32::from_str_radix(f.mode.as_deref()?, 8).ok()?;
            if mode & OTHERS_READ_OR_WRITE == 0 {
                return None;
            }
            let given = match (mode & 0o004 != 0, mode & 0o002 != 0) {
                (true, true) => "readable and writable",
                (false, true) => "writable",
                _ => "readable",
            };
            (
                mode,
                given,
                ("others".to_owned(), "every account".to_owned()),
            )
        }
        "chown" => {
            let o = f.hashes_owner.as_ref()?;
            let mode = o.mode;
            let given = |bits: u32| match (mode & bits & 0o444 != 0, mode & bits & 0o222 != 0) {
                (true, true) => "readable and writable",
                (false, true) => "writable",
                _ => "readable",
            };
            if o.uid != 0 && mode & 0o600 != 0 {
                (
                    mode,
                    given(0o700),
                    (
                        format!("owner uid {}", o.uid),
                        format!("the account of uid {}", o.uid),
                    ),
                )
            } else if o.gid != 0 && o.group.as_deref() != Some("shadow") && mode & 0o060 != 0 {
                let group = match &o.group {
                    Some(name) => format!("{name} ({})", o.gid),
                    None => o.gid.to_string(),
                };
                (
                    mode,
                    given(0o070),
                    (
                        format!("group {group}"),
                        format!("the members of group {group}"),
                    ),
                )
            } else {
                return None;
            }
        }
        "setAcl" => {
            let o = f.hashes_owner.as_ref()?;
            let (to, bits) = acl_grant(&o.acl)?;
            let given = match (bits & 4 != 0, bits & 2 != 0) {
                (true, true) => "readable and writable",
                (false, true) => "writable",
                _ => "readable",
            };
            let who = format!("{to} (through an ACL)");
            (o.mode, given, (format!("acl {to}"), who))
        }
        _ => return None,
    };
    let path = path.display().to_string();
    let (accessible_to, who) = to;
    let mut context = file_context(f, &path);
    context
        .additional
        .insert("mode".into(), format!("{:04o}", mode & 0o7777));
    context
        .additional
        .insert("madeAccessibleTo".into(), accessible_to);
    let how = match f.operation {
        "chown" => "the owner or group",
        "setAcl" => "the access ACL",
        _ => "the mode",
    };
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: FindingType::PrivilegeEscalationSensitiveFileModified,
            rule: "behaviour-password-hashes-exposed",
            mitre: "T1222.002,T1003.008",
            severity: Some(8.0),
        },
        draft(
            "The password hashes were made accessible to other accounts",
            format!(
                "Process {} (pid {}) changed {how} of {path} ({:04o}): the password hashes are \
                 now {given} by {who}.",
                f.process.comm,
                f.process.pid,
                mode & 0o7777
            ),
            path.clone(),
            context,
        ),
    ))
}

/// The first entry of an access ACL that gives read or write to someone the distributions do
/// not: a named user other than root, a named group other than root and `shadow` (each as the
/// mask lets it), or others. Who, and the bits given.
fn acl_grant(acl: &[crate::detect::accounts::AclEntry]) -> Option<(String, u16)> {
    let mask = acl.iter().find(|e| e.tag == "mask").map(|e| e.perm);
    let effective = |perm: u16| mask.map_or(perm, |m| perm & m) & 0o6;
    acl.iter().find_map(|e| match (e.tag, e.id) {
        ("user", Some(uid)) if uid != 0 && effective(e.perm) != 0 => {
            Some((format!("uid {uid}"), effective(e.perm)))
        }
        ("group", Some(gid))
            if gid != 0 && e.name.as_deref() != Some("shadow") && effective(e.perm) != 0 =>
        {
            let name = match &e.name {
                Some(name) => format!("group {name} ({gid})"),
                None => format!("group {gid}"),
            };
            Some((name, effective(e.perm)))
        }
        ("other", _) if e.perm & 0o6 != 0 => Some(("others".to_owned(), e.perm & 0o6)),
        _ => None,
    })
}

// --- kernel settings files -----------------------------------------------------------------

/// The directories whose `.conf` files `systemd-sysctl` and `sysctl --system` apply at boot,
/// besides `/etc/sysctl.conf`.
const SYSCTL_DIRS: &[&str] = &[
    "/etc/sysctl.d/",
    "/run/sysctl.d/",
    "/usr/local/lib/sysctl.d/",
    "/usr/lib/sysctl.d/",
    "/lib/sysctl.d/",
];

/// `/etc/sysctl.conf` or a `.conf` file directly in one of [`SYSCTL_DIRS`]: what the kernel is
/// given at the next boot (`systemd-sysctl`) or `sysctl --system`.
pub fn is_sysctl_file(path: &Path) -> bool {
    if path == Path::new("/etc/sysctl.conf") {
        return true;
    }
    let Some(text) = path.to_str() else {
        return false;
    };
    SYSCTL_DIRS.iter().any(|dir| {
        text.strip_prefix(dir)
            .is_some_and(|name| !name.contains('/') && name.ends_with(".conf"))
    })
}

/// Whether a sensitive-set hit is in a kernel settings directory (or `/etc/sysctl.conf`):
/// judged by the settings written ([`sysctl_file_weakened`]), not as `SensitiveFileModified`.
/// Administrators and packages write these files for ordinary tuning (`vm.swappiness`).
pub(super) fn judged_by_sysctl_check(path: &str) -> bool {
    path == "/etc/sysctl.conf" || SYSCTL_DIRS.iter().any(|dir| path.starts_with(dir))
}

/// The settings of a sysctl configuration text, in order, each as its `/proc/sys` path and its
/// value, the grammar `sysctl.d(5)` gives: `#` and `;` start comments, a leading `-` only says
/// a failure is ignored, spaces around `=` do not count, and the first separator of the key
/// (`.` or `/`) is its separator: `kernel.yama.ptrace_scope` and `kernel/yama/ptrace_scope`
/// are one setting. A later line of the same key replaces an earlier one.
fn sysctl_file_settings(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix('-').unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_start_matches('/');
        let value = value.trim();
        if key.is_empty() {
            continue;
        }
        let path_form = key
            .find(['.', '/'])
            .is_some_and(|i| key[i..].starts_with('/'));
        let key: String = if path_form {
            key.to_owned()
        } else {
            key.chars()
                .map(|c| match c {
                    '.' => '/',
                    '/' => '.',
                    c => c,
                })
                .collect()
        };
        let path = format!("/proc/sys/{key}");
        match out.iter_mut().find(|(p, _)| *p == path) {
            Some(entry) => entry.1 = value.to_owned(),
            None => out.push((path, value.to_owned())),
        }
    }
    out
}

/// Why a setting of a sysctl file weakens the kernel, if it does: ASLR below full
/// randomisation, a hardening setting of [`HARDENING`] at its weak value, or the core-dump
/// handler piped into a program outside the system directories (as the live checks judge them).
fn weak_sysctl_setting(path: &str, value: &str) -> Option<&'static str> {
    if path == RANDOMIZE_VA_SPACE {
        return (!value.is_empty() && value != "2")
            .then_some("address space layout randomisation below full");
    }
    if path == CORE_PATTERN {
        let program = value.strip_prefix('|')?.split_whitespace().next()?;
        return (!in_system_program_dir(program))
            .then_some("core dumps piped into a program outside the system directories");
    }
    HARDENING
        .iter()
        .any(|(p, weak)| *p == path && weak.contains(&value))
        .then_some("a kernel hardening setting switched off")
}

/// A kernel settings file (`/etc/sysctl.conf`, a `.conf` file of `/etc/sysctl.d/`,
/// `/run/sysctl.d/`, `/usr/lib/sysctl.d/`, `/usr/local/lib/sysctl.d/`) written with a setting
/// that weakens the kernel, as read once the writer let go of it: the weakening kept for every
/// boot (T1562.001; a core-dump handler, T1546). Medium: nothing is weakened until the next
/// boot or `sysctl --system`, whose write of `/proc/sys` the live checks then raise. By any
/// program but a package manager (procps' and systemd's own files come through dpkg and rpm);
/// what was written decides, not who wrote it: `vm.swappiness` or `kernel.randomize_va_space =
/// 2` raise nothing.
fn sysctl_file_weakened(
    d: &Detector,
    b: &Behaviour,
    f: &FileInfo,
    actor: &Actor,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let written = f.sysctl_file.as_deref()?;
    let path = text(made_path(f, &[])).filter(|p| is_sysctl_file(Path::new(p)))?;
    if actor.is_one_of(&b.package_managers, Reach::Lineage) {
        return None;
    }
    let weak: Vec<(String, String, &str)> = sysctl_file_settings(written)
        .into_iter()
        .filter_map(|(p, v)| weak_sysctl_setting(&p, &v).map(|why| (p, v, why)))
        .collect();
    let (first, value, why) = weak.first()?;
    let name = |p: &str| p.trim_start_matches("/proc/sys/").replace('/', ".");
    let handler = *first == CORE_PATTERN;
    let mut context = file_context(f, &path);
    context.additional.insert("setting".into(), name(first));
    context.additional.insert("value".into(), value.clone());
    context.additional.insert(
        "weakSettings".into(),
        weak.iter()
            .map(|(p, v, _)| format!("{}={v}", name(p)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    Some(technique(
        d,
        &f.process,
        lookup,
        Raises {
            finding_type: if handler {
                FindingType::PrivilegeEscalationSensitiveFileModified
            } else {
                FindingType::DefenseEvasionSensitiveFileModified
            },
            rule: "behaviour-sysctl-file-weakened",
            mitre: if handler { "T1546" } else { "T1562.001" },
            severity: Some(5.0),
        },
        draft(
            "A kernel settings file now weakens the kernel at boot",
            format!(
                "Process {} (pid {}) wrote {path} ({}), setting {} to `{value}` ({why}): the \
                 kernel takes it at the next boot or `sysctl --system`.",
                f.process.comm,
                f.process.pid,
                f.operation,
                name(first)
            ),
            path.clone(),
            context,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn script_operands_follow_each_interpreter_grammar() {
        let set = super::super::RuleSet::builtin().unwrap();
        let b = set.behaviour();
        let op = |name: &str, a: &[&str]| script_operand(b, name, &argv(a)).map(str::to_owned);
        assert_eq!(
            op("sh", &["sh", "/dev/shm/x.sh"]).as_deref(),
            Some("/dev/shm/x.sh")
        );
        assert_eq!(
            op("bash", &["bash", "-x", "-o", "pipefail", "x.sh", "a"]).as_deref(),
            Some("x.sh")
        );
        assert_eq!(op("bash", &["bash", "-c", "/tmp/x"]), None);
        assert_eq!(op("bash", &["bash", "-lc", "/tmp/x"]), None);
        assert_eq!(op("sh", &["sh", "-s", "--", "a"]), None);
        assert_eq!(
            op("python", &["python3", "-u", "/tmp/x.py"]).as_deref(),
            Some("/tmp/x.py")
        );
        assert_eq!(op("python", &["python3", "-m", "http.server"]), None);
        assert_eq!(
            op("python", &["python3", "-W", "ignore", "/tmp/x.py"]).as_deref(),
            Some("/tmp/x.py")
        );
        assert_eq!(op("perl", &["perl", "-e", "print 1"]), None);
        assert_eq!(
            op("perl", &["perl", "-w", "/tmp/x.pl"]).as_deref(),
            Some("/tmp/x.pl")
        );
        assert_eq!(op("node", &["node", "--eval", "1"]), None);
        // Inline programs that load a file as code: that file.
        assert_eq!(
            op("python", &["python3", "-c", "exec(open('x.py').read())"]).as_deref(),
            Some("x.py")
        );
        assert_eq!(
            op(
                "python",
                &[
                    "python3",
                    "-c",
                    "import runpy; runpy.run_path(\"/dev/shm/y.py\")"
                ]
            )
            .as_deref(),
            Some("/dev/shm/y.py")
        );
        assert_eq!(
            op("ruby", &["ruby", "-e", "load '/tmp/x.rb'"]).as_deref(),
            Some("/tmp/x.rb")
        );
        assert_eq!(
            op("node", &["node", "-e", "require('/tmp/x.js')"]).as_deref(),
            Some("/tmp/x.js")
        );
        assert_eq!(
            op("php", &["php", "-r", "include 'x.php';"]).as_deref(),
            Some("x.php")
        );
        // Data and modules by name: nothing.
        assert_eq!(
            op(
                "python",
                &["python3", "-c", "import json; json.load(open('x.json'))"]
            ),
            None
        );
        assert_eq!(op("node", &["node", "-e", "require('fs')"]), None);
        assert_eq!(op("ruby", &["ruby", "-e", "require 'json'"]), None);
        assert_eq!(program_name("python3.11"), "python");
        assert_eq!(program_name("perl5.36.0"), "perl");
    }

    #[test]
    fn loaders_by_name_and_directory() {
        for name in [
            "ld-linux-x86-64.so.2",
            "ld-linux.so.2",
            "ld-musl-x86_64.so.1",
            "ld64.so.2",
            "ld.so",
            "ld.so.1",
        ] {
            assert!(is_loader_name(name), "{name}");
        }
        for name in [
            "ld.so.preload",
            "ld.so.conf",
            "ld.so.cache",
            "ldd",
            "libld.so",
            "ld",
        ] {
            assert!(!is_loader_name(name), "{name}");
        }
        assert!(is_loader("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
        assert!(is_loader("/lib64/ld-linux-x86-64.so.2"));
        assert!(!is_loader("/usr/lib/../../tmp/ld-linux-x86-64.so.2"));
        assert!(!is_loader("/srv/build/ld-linux-x86-64.so.2"));
        assert!(!is_loader("/etc/ld.so.preload"));
    }

    #[test]
    fn padding_is_a_long_run_of_one_character() {
        let padded = argv(&["/bin/sh", "-c", &" ".repeat(600), "; curl x | sh"]);
        assert_eq!(longest_run(&padded), (602, b' '));
        let empties: Vec<String> = std::iter::once("prog".to_owned())
            .chain(std::iter::repeat_n(String::new(), 700))
            .collect();
        assert_eq!(longest_run(&empties).0, 700);
        let distinct: Vec<String> = (0..400).map(|i| format!("--opt-{i:04}")).collect();
        assert!(longest_run(&distinct).0 < PADDING_RUN);
        assert_eq!(
            collapse_runs(&argv(&["a", &"x".repeat(40)])),
            ["a", "xxxxxxxxxxxxxxxx[... 24 more]"]
        );
    }

    #[test]
    fn interactive_means_no_command_and_no_script() {
        let set = super::super::RuleSet::builtin().unwrap();
        let b = set.behaviour();
        let i = |a: &[&str]| interactive(b, "bash", &argv(a), Some("device"));
        assert!(i(&["/bin/sh"]));
        assert!(i(&["bash", "-i"]));
        assert!(i(&["bash", "-li"]));
        assert!(i(&["bash", "--login"]));
        assert!(i(&["bash", "--init-file", "/x/integration.sh"]));
        assert!(
            i(&["sh", "-is"]),
            "-i with -s: interactive on standard input"
        );
        assert!(!i(&["sh", "-c", "true"]));
        assert!(!i(&["bash", "-ic", "true"]));
        assert!(!i(&["sh", "-s"]));
        assert!(!i(&["sh", "/tmp/x.sh"]));
        // Commands from a pipe or a file: `base64 -d | sh`, `sh < x.sh`; `-i` still says so.
        let from = |a: &[&str], stdin| interactive(b, "sh", &argv(a), stdin);
        assert!(!from(&["sh"], Some("pipe")));
        assert!(!from(&["sh"], Some("file")));
        assert!(from(&["sh", "-i"], Some("pipe")));
        assert!(from(&["sh"], Some("socket")));
        assert!(from(&["sh"], None));
    }

    #[test]
    fn home_places_match_any_home_and_only_files_inside() {
        use super::super::behaviour::Place;
        let p = Place::Home(".config/systemd/user/".into());
        assert!(p.contains("/root/.config/systemd/user/x.service"));
        assert!(p.contains("/home/ann/.config/systemd/user/default.target.wants/x.service"));
        assert!(!p.contains("/root/.config/systemd/user/"));
        assert!(!p.contains("/root/x.config/systemd/user/a"));
        // A file name: that file in any directory, not a longer name ending with it.
        let p = Place::Home(".bashrc".into());
        assert!(p.contains("/root/.bashrc") && p.contains("/home/ann/.bashrc"));
        assert!(!p.contains("/root/x.bashrc") && !p.contains("/.bashrc") && !p.contains(".bashrc"));
        assert!(!p.contains("/root/.bashrc.swp"));
        let p = Place::Path("/etc/cron.d/".into());
        assert!(p.contains("/etc/cron.d/job") && !p.contains("/etc/cron.daily/job"));
        let p = Place::Path("/etc/crontab".into());
        assert!(p.contains("/etc/crontab") && !p.contains("/etc/crontab2"));
    }
}
