//! Behavioural findings from the sensor-breadth events: exec context (new binaries, fileless
//! execution), file operations on the sensitive-path set and kernel-level activity (ptrace,
//! process memory writes, userfaultfd, modules, mounts, library loads, runtime sockets).
//!
//! The knowledge (which programs legitimately write what, runtime sockets and binaries,
//! debuggers, container runtimes) is data: the `behaviour:` section of the rules files
//! (`node-agent/rules/behaviour.yaml`), merged across files like the exec rules.

use std::path::{Path, PathBuf};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde::Deserialize;
use vigil_crds::finding::{ProcessDetails, ResourceRole, RuntimeContext};
use vigil_detection::FindingType;

use super::{Candidate, Detector, ProcessLookup, RuleError, basename, path_basename};
use crate::{
    event::{ActivityInfo, ExecInfo, FileInfo, NetInfo, ProcessRef, Writer},
    sensitive::Category,
};

/// The cgroup v1 file that makes the kernel run the release agent when the cgroup empties.
const NOTIFY_ON_RELEASE: &str = "notify_on_release";

/// One `behaviour:` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct BehaviourSpec {
    #[serde(default)]
    host_build_writers: Vec<String>,
    #[serde(default)]
    runtime_sockets: Vec<String>,
    #[serde(default)]
    runtime_binaries: Vec<String>,
    #[serde(default)]
    runtime_binary_updaters: Vec<String>,
    #[serde(default)]
    release_agent_names: Vec<String>,
    #[serde(default)]
    container_mounters: Vec<String>,
    #[serde(default)]
    host_fs_types: Vec<String>,
    #[serde(default)]
    debuggers: Vec<String>,
    #[serde(default)]
    userfaultfd_users: Vec<String>,
    #[serde(default)]
    sensitive_files: SensitiveFilesSpec,
    #[serde(default)]
    host_new_files: Option<HostNewFiles>,
    #[serde(default)]
    package_managers: Vec<String>,
    #[serde(default)]
    persistence_locations: Vec<PersistenceSpec>,
    #[serde(default)]
    crontab_programs: Vec<String>,
    #[serde(default)]
    at_programs: Vec<String>,
    #[serde(default)]
    history_files: Vec<String>,
    #[serde(default)]
    disk_editors: Vec<String>,
    #[serde(default)]
    wiped_logs: Vec<String>,
    #[serde(default)]
    wiped_log_names: Vec<String>,
    #[serde(default)]
    log_owners: Vec<String>,
    #[serde(default)]
    credential_readers: Vec<String>,
    #[serde(default)]
    log_overwriters: Vec<String>,
    #[serde(default)]
    shells: Vec<String>,
    #[serde(default)]
    interpreters: Vec<String>,
    #[serde(default)]
    shell_parents: Vec<String>,
    #[serde(default)]
    shell_wrappers: Vec<String>,
    #[serde(default)]
    web_servers: Vec<String>,
    #[serde(default)]
    web_server_helpers: Vec<String>,
    #[serde(default)]
    miner_names: Vec<String>,
    #[serde(default)]
    daemon_names: Vec<String>,
    #[serde(default)]
    pid_filters: Vec<String>,
    #[serde(default)]
    database_servers: Vec<String>,
    #[serde(default)]
    database_server_helpers: Vec<String>,
    #[serde(default)]
    sudoers_owners: Vec<String>,
    #[serde(default)]
    set_id_makers: Vec<String>,
    #[serde(default)]
    authentication_programs: Vec<String>,
    #[serde(default)]
    memory_exec_dirs: Vec<String>,
    #[serde(default)]
    memory_state_dirs: Vec<String>,
    #[serde(default)]
    memory_exec_installed: Vec<String>,
    #[serde(default)]
    world_writable_exec_dirs: Vec<String>,
    #[serde(default)]
    system_library_dirs: Vec<String>,
    #[serde(default)]
    hidden_exec_dirs: Vec<String>,
    #[serde(default)]
    hidden_exec_allowed: Vec<String>,
    #[serde(default)]
    downloaders: Vec<String>,
    #[serde(default)]
    network_relays: Vec<String>,
    #[serde(default)]
    decoders: Vec<Decoder>,
    #[serde(default)]
    pipe_filters: Vec<String>,
    #[serde(default)]
    security_agents: Vec<String>,
}

/// A program that turns encoded text back into what it encodes, and the arguments that make it
/// decode (`base64 -d`, `openssl enc -d`, `xxd -r`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Decoder {
    /// Executable name (version suffix dropped, as for `shells`).
    pub program: String,
    /// Arguments that mean "decode" exactly as written (`-d`, `--decode`, `-revert`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Single-letter flags that mean "decode" inside a cluster of short flags (`-di`).
    #[serde(default)]
    pub letters: Vec<char>,
}

impl Decoder {
    /// Whether this argument vector makes the program decode: one of `args`, or a cluster of
    /// short flags holding one of `letters`; always, when neither is listed (`uudecode`).
    pub fn decodes(&self, argv: &[String]) -> bool {
        if self.args.is_empty() && self.letters.is_empty() {
            return true;
        }
        argv.iter().skip(1).any(|a| {
            self.args.iter().any(|x| x == a)
                || (a.starts_with('-')
                    && !a.starts_with("--")
                    && a[1..].chars().all(|c| c.is_ascii_alphanumeric())
                    && a[1..].chars().any(|c| self.letters.contains(&c)))
        })
    }
}

/// What NewBinaryExecuted and NewLibraryLoaded raise for a file written on the host (not in a
/// container): GuardDuty defines both for containers, whose image should not change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostNewFiles {
    /// Nothing on the host (the default).
    #[default]
    Off,
    /// Low-severity findings on the host; build output (`hostBuildWriters`) still exempt.
    Low,
    /// Medium, as in a container; build output still exempt.
    Medium,
}

/// What a persistence location is for (the finding's technique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistenceKind {
    /// cron tables and directories (MITRE T1053.003).
    Cron,
    /// systemd units and timers, generators, sleep and shutdown hooks (T1543.002, T1053.006).
    Systemd,
    /// init scripts, rc.local and upstart jobs (T1037.004).
    Init,
    /// Shell start-up files, system-wide and in home directories (T1546.004).
    Shell,
    /// XDG autostart entries, run when a desktop session starts (T1547.013).
    Autostart,
    /// udev rules: a `RUN+=` program runs as root on a device event (T1546.017).
    Udev,
    /// Message-of-the-day scripts, run as root at every ssh login (T1037).
    Motd,
    /// Kernel modules loaded at boot (T1547.006).
    Modules,
    /// The login environment every PAM session reads (`/etc/environment`; T1546.004,
    /// T1574.006 through `LD_PRELOAD`).
    Environment,
    /// `at` and `batch` jobs (T1053.002).
    At,
    /// SSH authorized keys: a key added there logs in as the account (T1098.004).
    Ssh,
    /// The package manager's hooks and maintainer scripts: an APT hook (`APT::Update::Pre-Invoke`
    /// in `/etc/apt/apt.conf.d/`), a script in dpkg's `/var/lib/dpkg/info/`, a yum or dnf plugin,
    /// a pacman hook, all run as root at the next install or update (T1546.016).
    Package,
    /// Pluggable authentication: a module in PAM's module directories or a service's
    /// configuration in `/etc/pam.d/`, loaded into every login (T1556.003).
    Pam,
    /// What runs before the system is up: a dracut module built into the initramfs, a GRUB
    /// configuration or generator script (the kernel command line) (T1542, T1037).
    Boot,
    /// Scripts the network managers run as root when an interface changes state:
    /// NetworkManager's and networkd-dispatcher's dispatcher directories, ifupdown's and
    /// dhclient's hooks (T1546).
    Network,
    /// A D-Bus service the bus starts on demand, as root for the system bus, and the bus's
    /// policy that lets a name be owned (T1543, T1546).
    Dbus,
    /// Python's start-up hooks, `sitecustomize.py` and `usercustomize.py`, imported by every
    /// interpreter that starts (T1546.018).
    Python,
    /// Git hooks: a program of a hook's name in a repository's `hooks` directory, run by git as
    /// whoever commits, checks out, merges or pushes there (T1546).
    Git,
    /// sshd's login scripts: `~/.ssh/rc` of an account, else the system's `/etc/ssh/sshrc`, run
    /// by sshd as the account at every ssh login, before its shell or command (T1546).
    Sshrc,
    /// logrotate's configuration: its `prerotate`, `postrotate`, `firstaction` and
    /// `lastaction` scripts run as root at every rotation, daily from a timer or cron (T1053).
    Logrotate,
    /// A browser's managed policy (an extension force-installed), a native messaging host
    /// (a program an extension starts) or an external extension, in the system-wide places
    /// Chrome, Chromium, Edge and Firefox read at their next start (T1176).
    Browser,
    /// An editor's start-up files and plugins: Vim's `.vimrc` and `~/.vim/plugin/`, Neovim's
    /// `init.vim` and `init.lua`, Emacs's `.emacs` and `.emacs.d/init.el`, run as the account at
    /// every start of the editor (T1546).
    Editor,
    /// The name service switch: a module named in `/etc/nsswitch.conf` is loaded into every
    /// program that looks up an account, group or host, sshd and login among them (T1556).
    Nss,
}

impl PersistenceKind {
    /// The name in `persistenceKind` and in the rules files.
    pub fn as_str(self) -> &'static str {
        match self {
            PersistenceKind::Cron => "cron",
            PersistenceKind::Systemd => "systemd",
            PersistenceKind::Init => "init",
            PersistenceKind::Shell => "shell",
            PersistenceKind::Autostart => "autostart",
            PersistenceKind::Udev => "udev",
            PersistenceKind::Motd => "motd",
            PersistenceKind::Modules => "modules",
            PersistenceKind::Environment => "environment",
            PersistenceKind::At => "at",
            PersistenceKind::Ssh => "ssh",
            PersistenceKind::Package => "package",
            PersistenceKind::Pam => "pam",
            PersistenceKind::Boot => "boot",
            PersistenceKind::Network => "network",
            PersistenceKind::Dbus => "dbus",
            PersistenceKind::Python => "python",
            PersistenceKind::Git => "git",
            PersistenceKind::Sshrc => "sshrc",
            PersistenceKind::Logrotate => "logrotate",
            PersistenceKind::Browser => "browser",
            PersistenceKind::Editor => "editor",
            PersistenceKind::Nss => "nss",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PersistenceSpec {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    home: Option<String>,
    kind: PersistenceKind,
    #[serde(default)]
    owners: Vec<String>,
    #[serde(default)]
    owners_reach: OwnersReach,
}

/// How far down from an owner of a persistence location its trust reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnersReach {
    /// The owner and its children (`systemctl edit` runs an editor).
    #[default]
    Children,
    /// The owner and every descendant, as a package manager's: an image builder's shell
    /// scripts write through subshells, compressors and `mv` (`update-initramfs` ->
    /// `mkinitramfs` -> a subshell's redirection).
    Descendants,
}

/// Where a write makes something run later, and the tool whose job that write is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistenceLocation {
    /// An absolute path (a prefix when it ends in `/`, a prefix of file names when it ends in
    /// `*`), or a path under any home directory.
    pub place: Place,
    /// What runs from there.
    pub kind: PersistenceKind,
    /// Executables (resolved paths) that own the location, besides the package managers.
    pub owners: Vec<String>,
    /// Whether the owners' trust reaches their children or all their descendants.
    pub owners_reach: OwnersReach,
}

/// A location in the file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// This absolute path; everything under it when it ends in `/`; every file whose path
    /// starts with it when it ends in `*` (`/boot/initrd.img-*`).
    Path(String),
    /// This directory relative to a home directory (`.config/systemd/user/`), in any home; a
    /// relative path that does not end in '/' is a file with that ending in any directory: a
    /// file name (`.bashrc`), or a name in a directory of that name (`hooks/pre-commit`), as
    /// the sensitive-path set matches the name.
    Home(String),
}

impl Place {
    /// How specific the place is: of two that hold a path, the longer one names it
    /// (`/var/spool/cron/atjobs/` inside `/var/spool/cron/`).
    pub fn specificity(&self) -> usize {
        match self {
            Place::Path(p) | Place::Home(p) => p.len(),
        }
    }

    /// Whether an absolute path is this place or under it.
    pub fn contains(&self, path: &str) -> bool {
        match self {
            Place::Path(p) if p.ends_with('/') => path.starts_with(p.as_str()),
            Place::Path(p) if p.ends_with('*') => p
                .strip_suffix('*')
                .is_some_and(|start| path.starts_with(start) && path.len() > start.len()),
            Place::Path(p) => path == p,
            Place::Home(h) if !h.ends_with('/') => path
                .strip_suffix(h.as_str())
                .is_some_and(|dir| dir.len() > 1 && dir.ends_with('/')),
            Place::Home(h) => path
                .match_indices(h.as_str())
                .any(|(i, _)| i > 1 && path.as_bytes()[i - 1] == b'/' && path.len() > i + h.len()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SensitiveFilesSpec {
    #[serde(default)]
    trusted_writers: Vec<String>,
    #[serde(default)]
    exempt: Vec<ExemptSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExemptSpec {
    pattern: String,
    #[serde(default)]
    appends: bool,
    #[serde(default)]
    writers: Vec<String>,
}

/// What one entry of the sensitive-path set tolerates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensitiveExemption {
    /// Opens for appending (`O_APPEND` without `O_TRUNC`) are ordinary (logs, histories).
    pub appends: bool,
    /// Programs whose changes to the entry are their job.
    pub writers: Vec<String>,
}

/// The merged knowledge of the behavioural types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Host programs whose written files are build or install output.
    pub host_build_writers: Vec<String>,
    /// Container runtime API sockets: a path, or a directory or abstract-name prefix ending in
    /// `/` (containerd's shims listen under `/run/containerd/s/`, and before 1.4 on abstract
    /// names `@/containerd-shim/...`).
    pub runtime_sockets: Vec<String>,
    /// Container runtime binaries, by file name.
    pub runtime_binaries: Vec<String>,
    /// Programs that legitimately replace runtime binaries.
    pub runtime_binary_updaters: Vec<String>,
    /// cgroup release-agent file names.
    pub release_agent_names: Vec<String>,
    /// Programs that set up container mounts.
    pub container_mounters: Vec<String>,
    /// Disk file-system types.
    pub host_fs_types: Vec<String>,
    /// Debuggers (tracers of a `PTRACE_TRACEME` child).
    pub debuggers: Vec<String>,
    /// Legitimate userfaultfd users.
    pub userfaultfd_users: Vec<String>,
    /// Writers trusted for every sensitive file.
    pub sensitive_trusted_writers: Vec<String>,
    /// Per sensitive-set pattern.
    pub sensitive_exempt: Vec<(String, SensitiveExemption)>,
    /// NewBinaryExecuted and NewLibraryLoaded on the host (the last file that sets it wins).
    pub host_new_files: HostNewFiles,
    /// Package managers, by the resolved path of their executable or of the script exec'd:
    /// what they and their children write is installation.
    pub package_managers: Vec<String>,
    /// cron, systemd and init locations.
    pub persistence_locations: Vec<PersistenceLocation>,
    /// `crontab` programs (resolved paths): a table installed from a file or standard input.
    pub crontab_programs: Vec<String>,
    /// `at` programs (resolved paths): a job queued to run later.
    pub at_programs: Vec<String>,
    /// Shell history file names.
    pub history_files: Vec<String>,
    /// File-system debuggers (executable names) that read and write a disk under its file
    /// system: run in a container, the host's disk.
    pub disk_editors: Vec<String>,
    /// System logs whose removal or truncation is wiping (prefix when ending in `/`).
    pub wiped_logs: Vec<String>,
    /// Names of system logs, wiped wherever they are (a chroot's, a copy's, a log directory
    /// elsewhere).
    pub wiped_log_names: Vec<String>,
    /// Programs (resolved paths) that rotate, vacuum and write the system logs.
    pub log_owners: Vec<String>,
    /// Programs (resolved paths, or the scripts run) that read the password hashes as their
    /// job: logins, PAM services, the account tools.
    pub credential_readers: Vec<String>,
    /// Programs (by executable name) that overwrite a file in place without truncating it.
    pub log_overwriters: Vec<String>,
    /// The host's security agents, by executable name: a stopping signal another process
    /// sends one is reported by the kernel (the `GUARDED` map, kept by the pipeline).
    pub security_agents: Vec<String>,
    /// Shells, by executable name.
    pub shells: Vec<String>,
    /// Script interpreters, by executable name without its version (`python3.11` is `python`).
    pub interpreters: Vec<String>,
    /// Programs that start interactive shells as their job (terminals, logins, multiplexers,
    /// init, container runtimes), by executable name.
    pub shell_parents: Vec<String>,
    /// Programs that run a shell on someone else's behalf and are looked through (`script`,
    /// `env`, `setsid`), by executable name.
    pub shell_wrappers: Vec<String>,
    /// Web servers and the PHP process managers they hand requests to, by executable name: a
    /// shell they have run a command string is a web shell's.
    pub web_servers: Vec<String>,
    /// Programs a web server runs through `sh -c` in its ordinary work (`sendmail` for PHP's
    /// `mail()`, `rotatelogs` for piped logs), by executable name.
    pub web_server_helpers: Vec<String>,
    /// Names miner campaigns' programs have (`xmrig`, `kinsing`, `kdevtmpfsi`): a process
    /// search naming one whose ids reach `xargs kill` is a competitor killed.
    pub miner_names: Vec<String>,
    /// The system's daemons as the kernel holds a process's name (15 bytes): a thread renamed
    /// to one by another program, or a file so named run from a memory-backed or
    /// world-writable directory, is dressed up as it.
    pub daemon_names: Vec<String>,
    /// Programs that pass on the lines of a process listing (`grep`, `awk`, `cut`), by
    /// executable name: between a search and `xargs kill`.
    pub pid_filters: Vec<String>,
    /// Database servers, by executable name: a shell they have run a command string is an
    /// injected query's (`COPY ... FROM PROGRAM`), unless it archives or restores their log.
    pub database_servers: Vec<String>,
    /// Programs a database server runs alone through `sh -c` in its ordinary work (`true` as a
    /// do-nothing `archive_command`, Galera's state transfer scripts), by executable name.
    pub database_server_helpers: Vec<String>,
    /// Programs (resolved paths) that write the sudo policy as their job (`visudo`).
    pub sudoers_owners: Vec<String>,
    /// Programs (resolved paths) that give files setuid and setgid modes as their job,
    /// besides package managers: container engines unpacking image layers.
    pub set_id_makers: Vec<String>,
    /// Programs that take passwords or grant privileges, by file name in a system program
    /// directory (`sudo`, `sshd`): one replaced there is High.
    pub authentication_programs: Vec<String>,
    /// Memory-backed directories (prefixes): nothing is installed there.
    pub memory_exec_dirs: Vec<String>,
    /// Memory-backed state directories (prefixes: `/run/`): a program run there is placed, a
    /// file a shell sources there is not (state files such as flannel's `subnet.env`).
    pub memory_state_dirs: Vec<String>,
    /// Directories inside those (prefixes) where the system itself puts programs (NixOS's
    /// setuid wrappers in `/run/wrappers/`).
    pub memory_exec_installed: Vec<String>,
    /// World-writable directories (prefixes).
    pub world_writable_exec_dirs: Vec<String>,
    /// Library directories an `LD_PRELOAD` may name without a finding (prefixes).
    pub system_library_dirs: Vec<String>,
    /// Directories (prefixes) where a program whose path has a hidden component (a name
    /// starting with `.`) is hiding: system, memory-backed and world-writable ones.
    pub hidden_exec_dirs: Vec<String>,
    /// Hidden names programs make for their own use (`.tmp` of Rust's tempfile, `.mount_` of
    /// AppImage), by prefix: a path component starting with one of these is not hiding.
    pub hidden_exec_allowed: Vec<String>,
    /// Programs that fetch from the network, by executable name: what they write into a pipe a
    /// shell reads, or into a file that is then run, is downloaded code.
    pub downloaders: Vec<String>,
    /// Programs that relay a network connection to their standard output, by executable name:
    /// a shell reading its program from what they write takes commands from a remote peer.
    pub network_relays: Vec<String>,
    /// Programs that decode, with the arguments that make them.
    pub decoders: Vec<Decoder>,
    /// Programs a stream passes through (copied, decompressed, edited), by executable name: the
    /// origin of what they write is the origin of what they read.
    pub pipe_filters: Vec<String>,
}

impl Behaviour {
    /// The programs the lists of what runs name (shells, interpreters, downloaders, relays,
    /// decoders, filters): the agent hashes them as installed, so that a renamed copy is still
    /// the program (`technique::program_identity`).
    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        [
            &self.shells,
            &self.interpreters,
            &self.downloaders,
            &self.pipe_filters,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(self.network_relays.iter().map(|r| relay_program(r).0))
        .chain(self.decoders.iter().map(|x| x.program.as_str()))
    }

    /// Whether a list of what runs names the program (see [`Self::program_names`]), by its name
    /// without a version.
    pub fn knows_program(&self, name: &str) -> bool {
        self.program_names()
            .any(|listed| super::technique::program_name(listed) == name)
    }
}

/// A `networkRelays` entry: the program, and the subcommand that makes it a relay when the
/// entry names one (`openssl s_client`: openssl is a relay only as a TLS client).
pub(crate) fn relay_program(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once(' ') {
        Some((program, subcommand)) => (program, Some(subcommand.trim())),
        None => (entry, None),
    }
}

impl Behaviour {
    /// Whether `path` (a unix socket's path, `@...` for an abstract name) is a container
    /// runtime's API socket: an entry exactly, or under an entry that ends in `/`.
    pub fn is_runtime_socket(&self, path: &str) -> bool {
        self.runtime_sockets.iter().any(|s| {
            s == path
                || (s.ends_with('/') && path.starts_with(s.as_str()) && !path.contains("/../"))
        })
    }

    /// Adds one file's section; an entry that cannot be used is refused with its field.
    pub(crate) fn merge(&mut self, file: &str, spec: BehaviourSpec) -> Result<(), RuleError> {
        let invalid = |field: String, message: &str| RuleError::Invalid {
            file: file.to_owned(),
            rule: "behaviour".into(),
            field,
            message: message.to_owned(),
        };
        for (i, s) in spec.runtime_sockets.iter().enumerate() {
            if !s.starts_with('/') && !s.starts_with("@/") {
                return Err(invalid(
                    format!("behaviour.runtimeSockets[{i}]"),
                    "must be an absolute path, or an abstract name written `@/...`",
                ));
            }
        }
        // Programs: a name (of a program in a system directory) or an absolute path.
        let mut programs = vec![
            ("hostBuildWriters".to_owned(), &spec.host_build_writers),
            (
                "runtimeBinaryUpdaters".to_owned(),
                &spec.runtime_binary_updaters,
            ),
            ("containerMounters".to_owned(), &spec.container_mounters),
            ("debuggers".to_owned(), &spec.debuggers),
            ("userfaultfdUsers".to_owned(), &spec.userfaultfd_users),
            (
                "sensitiveFiles.trustedWriters".to_owned(),
                &spec.sensitive_files.trusted_writers,
            ),
        ];
        for (i, e) in spec.sensitive_files.exempt.iter().enumerate() {
            programs.push((format!("sensitiveFiles.exempt[{i}].writers"), &e.writers));
        }
        for (field, list) in programs {
            for (i, n) in list.iter().enumerate() {
                let name = !n.is_empty() && !n.contains('/');
                let path = n.starts_with('/') && !n.ends_with('/');
                if !(name || path) {
                    return Err(invalid(
                        format!("behaviour.{field}[{i}]"),
                        "must be a program name without '/' or an absolute path",
                    ));
                }
            }
        }
        let names = [
            ("runtimeBinaries", &spec.runtime_binaries),
            ("releaseAgentNames", &spec.release_agent_names),
            ("wipedLogNames", &spec.wiped_log_names),
            ("hostFsTypes", &spec.host_fs_types),
            ("securityAgents", &spec.security_agents),
            ("authenticationPrograms", &spec.authentication_programs),
        ];
        for (field, list) in names {
            for (i, n) in list.iter().enumerate() {
                if n.is_empty() || n.contains('/') {
                    return Err(invalid(
                        format!("behaviour.{field}[{i}]"),
                        "must be a name without '/'",
                    ));
                }
            }
        }
        let absolute = [
            ("packageManagers", &spec.package_managers),
            ("crontabPrograms", &spec.crontab_programs),
            ("atPrograms", &spec.at_programs),
            ("sudoersOwners", &spec.sudoers_owners),
            ("setIdMakers", &spec.set_id_makers),
            ("wipedLogs", &spec.wiped_logs),
            ("logOwners", &spec.log_owners),
            ("credentialReaders", &spec.credential_readers),
            ("memoryExecDirs", &spec.memory_exec_dirs),
            ("memoryStateDirs", &spec.memory_state_dirs),
            ("memoryExecInstalled", &spec.memory_exec_installed),
            ("worldWritableExecDirs", &spec.world_writable_exec_dirs),
            ("systemLibraryDirs", &spec.system_library_dirs),
            ("hiddenExecDirs", &spec.hidden_exec_dirs),
        ];
        for (field, list) in absolute {
            for (i, p) in list.iter().enumerate() {
                if !p.starts_with('/') {
                    return Err(invalid(
                        format!("behaviour.{field}[{i}]"),
                        "must be an absolute path",
                    ));
                }
            }
        }
        let dirs = [
            ("memoryExecDirs", &spec.memory_exec_dirs),
            ("memoryStateDirs", &spec.memory_state_dirs),
            ("memoryExecInstalled", &spec.memory_exec_installed),
            ("worldWritableExecDirs", &spec.world_writable_exec_dirs),
            ("systemLibraryDirs", &spec.system_library_dirs),
            ("hiddenExecDirs", &spec.hidden_exec_dirs),
        ];
        for (field, list) in dirs {
            for (i, p) in list.iter().enumerate() {
                if !p.ends_with('/') {
                    return Err(invalid(
                        format!("behaviour.{field}[{i}]"),
                        "must be a directory, ending in '/'",
                    ));
                }
            }
        }
        let names = [
            ("historyFiles", &spec.history_files),
            ("diskEditors", &spec.disk_editors),
            ("logOverwriters", &spec.log_overwriters),
            ("shells", &spec.shells),
            ("interpreters", &spec.interpreters),
            ("shellParents", &spec.shell_parents),
            ("shellWrappers", &spec.shell_wrappers),
            ("webServers", &spec.web_servers),
            ("webServerHelpers", &spec.web_server_helpers),
            ("minerNames", &spec.miner_names),
            ("daemonNames", &spec.daemon_names),
            ("pidFilters", &spec.pid_filters),
            ("databaseServers", &spec.database_servers),
            ("databaseServerHelpers", &spec.database_server_helpers),
            ("downloaders", &spec.downloaders),
            ("networkRelays", &spec.network_relays),
            ("pipeFilters", &spec.pipe_filters),
            ("hiddenExecAllowed", &spec.hidden_exec_allowed),
        ];
        for (field, list) in names {
            for (i, n) in list.iter().enumerate() {
                if n.is_empty() || n.contains('/') {
                    return Err(invalid(
                        format!("behaviour.{field}[{i}]"),
                        "must be a name without '/'",
                    ));
                }
            }
        }
        if let Some(i) = spec.daemon_names.iter().position(|n| n.len() > 15) {
            return Err(invalid(
                format!("behaviour.daemonNames[{i}]"),
                "must be at most 15 bytes: the kernel keeps no more of a process's name",
            ));
        }
        for (i, d) in spec.decoders.iter().enumerate() {
            if d.program.is_empty() || d.program.contains('/') {
                return Err(invalid(
                    format!("behaviour.decoders[{i}].program"),
                    "must be a name without '/'",
                ));
            }
        }
        let mut locations = Vec::new();
        for (i, l) in spec.persistence_locations.into_iter().enumerate() {
            let field = format!("behaviour.persistenceLocations[{i}]");
            let place = match (l.path, l.home) {
                (Some(p), None)
                    if p.starts_with('/')
                        && p.len() > 1
                        && !p.trim_end_matches('*').contains('*') =>
                {
                    Place::Path(p)
                }
                (None, Some(h))
                    if !h.starts_with('/')
                        && !h.is_empty()
                        && !h.split('/').any(|c| c == "." || c == "..") =>
                {
                    Place::Home(h)
                }
                (Some(_), None) => {
                    return Err(invalid(
                        format!("{field}.path"),
                        "must be an absolute path ('*' only at its end)",
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        format!("{field}.home"),
                        "must be a directory relative to a home directory, ending in '/', \
                         or the end of a file's path (a file name, `hooks/pre-commit`)",
                    ));
                }
                _ => return Err(invalid(field, "needs exactly one of path and home")),
            };
            for (j, o) in l.owners.iter().enumerate() {
                if !o.starts_with('/') {
                    return Err(invalid(
                        format!("{field}.owners[{j}]"),
                        "must be an absolute path",
                    ));
                }
            }
            locations.push(PersistenceLocation {
                place,
                kind: l.kind,
                owners: l.owners,
                owners_reach: l.owners_reach,
            });
        }
        for (i, e) in spec.sensitive_files.exempt.iter().enumerate() {
            if e.pattern.is_empty() {
                return Err(invalid(
                    format!("behaviour.sensitiveFiles.exempt[{i}].pattern"),
                    "is empty",
                ));
            }
            if !e.appends && e.writers.is_empty() {
                return Err(invalid(
                    format!("behaviour.sensitiveFiles.exempt[{i}]"),
                    "needs appends or writers: it would exempt nothing",
                ));
            }
        }
        self.host_build_writers.extend(spec.host_build_writers);
        self.runtime_sockets.extend(spec.runtime_sockets);
        self.runtime_binaries.extend(spec.runtime_binaries);
        self.runtime_binary_updaters
            .extend(spec.runtime_binary_updaters);
        self.release_agent_names.extend(spec.release_agent_names);
        self.container_mounters.extend(spec.container_mounters);
        self.host_fs_types.extend(spec.host_fs_types);
        self.debuggers.extend(spec.debuggers);
        self.userfaultfd_users.extend(spec.userfaultfd_users);
        self.sensitive_trusted_writers
            .extend(spec.sensitive_files.trusted_writers);
        if let Some(h) = spec.host_new_files {
            self.host_new_files = h;
        }
        self.package_managers.extend(spec.package_managers);
        self.persistence_locations.extend(locations);
        self.crontab_programs.extend(spec.crontab_programs);
        self.at_programs.extend(spec.at_programs);
        self.history_files.extend(spec.history_files);
        self.disk_editors.extend(spec.disk_editors);
        self.wiped_logs.extend(spec.wiped_logs);
        self.wiped_log_names.extend(spec.wiped_log_names);
        self.log_owners.extend(spec.log_owners);
        self.credential_readers.extend(spec.credential_readers);
        self.log_overwriters.extend(spec.log_overwriters);
        self.security_agents.extend(spec.security_agents);
        self.shells.extend(spec.shells);
        self.interpreters.extend(spec.interpreters);
        self.shell_parents.extend(spec.shell_parents);
        self.shell_wrappers.extend(spec.shell_wrappers);
        self.web_servers.extend(spec.web_servers);
        self.web_server_helpers.extend(spec.web_server_helpers);
        self.miner_names.extend(spec.miner_names);
        self.daemon_names.extend(spec.daemon_names);
        self.pid_filters.extend(spec.pid_filters);
        self.database_servers.extend(spec.database_servers);
        self.database_server_helpers
            .extend(spec.database_server_helpers);
        self.sudoers_owners.extend(spec.sudoers_owners);
        self.set_id_makers.extend(spec.set_id_makers);
        self.authentication_programs
            .extend(spec.authentication_programs);
        self.memory_exec_dirs.extend(spec.memory_exec_dirs);
        self.memory_state_dirs.extend(spec.memory_state_dirs);
        self.memory_exec_installed
            .extend(spec.memory_exec_installed);
        self.world_writable_exec_dirs
            .extend(spec.world_writable_exec_dirs);
        self.system_library_dirs.extend(spec.system_library_dirs);
        self.hidden_exec_dirs.extend(spec.hidden_exec_dirs);
        self.hidden_exec_allowed.extend(spec.hidden_exec_allowed);
        self.downloaders.extend(spec.downloaders);
        self.network_relays.extend(spec.network_relays);
        self.decoders.extend(spec.decoders);
        self.pipe_filters.extend(spec.pipe_filters);
        for e in spec.sensitive_files.exempt {
            match self
                .sensitive_exempt
                .iter_mut()
                .find(|(p, _)| *p == e.pattern)
            {
                Some((_, x)) => {
                    x.appends |= e.appends;
                    x.writers.extend(e.writers);
                }
                None => self.sensitive_exempt.push((
                    e.pattern,
                    SensitiveExemption {
                        appends: e.appends,
                        writers: e.writers,
                    },
                )),
            }
        }
        Ok(())
    }

    pub(super) fn exemption(&self, pattern: &str) -> Option<&SensitiveExemption> {
        // Per-home entries (`<home>/.config/systemd/user/`) share one exemption, written
        // `~/.config/systemd/user/`.
        let in_any_home = pattern
            .find("/.config/")
            .map(|i| format!("~{}", &pattern[i..]));
        self.sensitive_exempt
            .iter()
            .find(|(p, _)| p == pattern || in_any_home.as_deref() == Some(p.as_str()))
            .map(|(_, x)| x)
    }
}

/// Directories only root installs programs into. A list entry given by name (no `/`) matches a
/// program installed there under that file name, never a copy elsewhere (`cp /bin/true
/// /tmp/dpkg`) and never a process that renamed itself (`printf dpkg > /proc/self/comm`).
const SYSTEM_PROGRAM_DIRS: &[&str] = &[
    "/usr/bin/",
    "/usr/sbin/",
    "/bin/",
    "/sbin/",
    "/usr/local/bin/",
    "/usr/local/sbin/",
    "/usr/lib/",
    "/usr/libexec/",
    "/lib/",
    "/usr/local/lib/",
];

/// Whether a program, by the paths the kernel recorded for it (the resolved executable and,
/// for a script, the script exec'd: `deb-systemd-helper` is perl running a script), is on a
/// list: an absolute entry matches one of the paths exactly, a name matches the file name of
/// one installed in a [`SYSTEM_PROGRAM_DIRS`] directory. Never by `comm`.
pub(super) fn identified(list: &[String], paths: &[PathBuf]) -> bool {
    paths.iter().filter_map(|p| p.to_str()).any(|path| {
        let system = SYSTEM_PROGRAM_DIRS.iter().any(|d| path.starts_with(d));
        let name = basename(path);
        list.iter().any(|entry| {
            if entry.starts_with('/') {
                entry == path
            } else {
                system && entry == name
            }
        })
    })
}

/// The acting process's identity: its resolved executable and the path it exec'd (a forked
/// process that did not exec is its parent's image), as [`super::technique`] finds them.
pub(super) fn actor_paths(
    d: &Detector,
    p: &ProcessRef,
    lookup: &dyn ProcessLookup,
) -> Vec<PathBuf> {
    let a = super::technique::actor(d, p, lookup);
    a.exe.into_iter().chain(a.exec_path).collect()
}

/// A process's identity by pid alone (a file's writer, a tracer's parent): the pipeline's table,
/// else the detector's memory of its exec.
fn paths_of(d: &Detector, pid: u32, lookup: &dyn ProcessLookup) -> Vec<PathBuf> {
    if let Some(k) = lookup.get(pid) {
        let mut paths: Vec<PathBuf> = k.exe.into_iter().collect();
        if let Some(x) = d
            .procs
            .get(&pid)
            .filter(|r| r.start_time_ns == k.start_time_ns)
            .and_then(|r| r.exec_path.clone())
        {
            paths.push(x);
        }
        return paths;
    }
    d.procs
        .get(&pid)
        .map(|r| r.exe.iter().chain(r.exec_path.iter()).cloned().collect())
        .unwrap_or_default()
}

/// A finding about the acting process with its type's default severity.
pub(super) struct Draft {
    pub(super) finding_type: FindingType,
    pub(super) title: &'static str,
    pub(super) description: String,
    pub(super) key: String,
    pub(super) context: RuntimeContext,
}

pub(super) fn candidate(
    d: &Detector,
    p: &ProcessRef,
    lookup: &dyn ProcessLookup,
    draft: Draft,
) -> Candidate {
    let process = d.process_details(p, lookup);
    let actor = if process.executable_path.is_empty() {
        p.comm.clone()
    } else {
        process.executable_path.clone()
    };
    Candidate {
        finding_type: draft.finding_type,
        severity: super::default_severity(draft.finding_type),
        title: draft.title.to_owned(),
        description: draft.description,
        key: format!("{actor}\0{}", draft.key),
        role: ResourceRole::Actor,
        process: Some(process),
        context: draft.context,
        network: None,
        dns: None,
        evidence: Vec::new(),
        container: p.container.clone(),
    }
}

/// The writer of a file as a finding's `modifyingProcess`: what the sensor recorded, with the
/// executable when the detector saw the writer exec.
fn modifying_process(d: &Detector, w: &Writer) -> ProcessDetails {
    let remembered = d.procs.get(&w.pid);
    ProcessDetails {
        name: w.comm.clone(),
        executable_path: remembered
            .and_then(|r| r.exe.as_ref())
            .map(|e| e.display().to_string())
            .unwrap_or_default(),
        executable_sha256: None,
        pid: w.pid,
        namespace_pid: None,
        uid: w.uid,
        // The sensor records the writer's real uid only.
        euid: u32::MAX,
        user: d.config.users.get(&w.uid).cloned(),
        pwd: None,
        start_time: Time(
            remembered
                .map(|r| d.wall(r.start_time_ns))
                .unwrap_or(Timestamp::UNIX_EPOCH),
        ),
        uuid: remembered.map(|r| r.uuid.clone()).unwrap_or_default(),
        parent_uuid: None,
        lineage: Vec::new(),
    }
}

/// Another process, by pid, as a finding's `targetProcess` (when it is known).
pub(super) fn target_process(
    d: &Detector,
    pid: u32,
    lookup: &dyn ProcessLookup,
) -> Option<ProcessDetails> {
    if let Some(k) = lookup.get(pid) {
        let p = ProcessRef {
            pid,
            tid: pid,
            ppid: k.ppid,
            uid: k.uid,
            euid: k.euid,
            comm: k.comm.clone(),
            start_time_ns: k.start_time_ns,
            uuid: crate::proctable::process_uuid(&d.config.boot_id, pid, k.start_time_ns),
            ..ProcessRef::default()
        };
        return Some(d.process_details(&p, lookup));
    }
    let r = d.procs.get(&pid)?;
    let p = ProcessRef {
        pid,
        tid: pid,
        uid: r.uid,
        euid: r.euid,
        comm: r.exe.as_deref().map(path_basename).unwrap_or("").to_owned(),
        start_time_ns: r.start_time_ns,
        uuid: r.uuid.clone(),
        ..ProcessRef::default()
    };
    Some(d.process_details(&p, lookup))
}

fn with_modifier(d: &Detector, w: &Writer, mut context: RuntimeContext) -> RuntimeContext {
    context.modified_at = w.time.parse::<Timestamp>().ok().map(Time);
    context.modifying_process = Some(modifying_process(d, w));
    context
}

/// Exec context: a binary written since the agent started, or one with nothing on disk.
pub(crate) fn check_exec(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let b = d.rules.behaviour();
    let exe = e.exe.display().to_string();
    let mut out = Vec::new();
    if e.fileless || e.exe_deleted {
        let how = if e.fileless { "memfd" } else { "deleted" };
        let mut context = super::technique::exec_context(e, exe.clone());
        context
            .additional
            .insert("executableOrigin".into(), how.into());
        out.push(candidate(
            d,
            &e.process,
            lookup,
            Draft {
                finding_type: FindingType::DefenseEvasionFilelessExecution,
                title: "A process ran from memory, with no file on disk",
                description: format!(
                    "Process {} (pid {}) executed {exe}, which has no file on disk ({}).",
                    e.process.comm,
                    e.process.pid,
                    if e.fileless {
                        "a memfd"
                    } else {
                        "deleted before it ran"
                    }
                ),
                key: how.into(),
                context,
            },
        ));
    }
    // Who wrote it, from the kernel's written-files map; or, once that map had to evict
    // entries, only when it changed (its ctime): new all the same, the writer unknown.
    // Built only for a finding: redacting a command line is not free, and most execs raise none.
    let base = || super::technique::exec_context(e, exe.clone());
    let new_binary = if let Some(w) = &e.written_by {
        new_file_severity(
            b,
            e.process.container.is_some(),
            &paths_of(d, w.pid, lookup),
        )
        .map(|severity| {
            let how = format!("written by {} (pid {}) at {}", w.comm, w.pid, w.time);
            (severity, how, with_modifier(d, w, base()))
        })
    } else if let Some(changed) = &e.changed_untracked {
        new_file_severity(b, e.process.container.is_some(), &[]).map(|severity| {
            let mut context = RuntimeContext {
                modified_at: changed.parse::<Timestamp>().ok().map(Time),
                ..base()
            };
            context.additional.insert(
                "writer".into(),
                "unknown: the written-files table had evicted it".into(),
            );
            let how = format!(
                "changed at {changed}, after Vigil started; who wrote it is unknown (the \
                 kernel's table of written files had evicted older entries)"
            );
            (severity, how, context)
        })
    } else {
        None
    };
    if let Some((severity, how, context)) = new_binary {
        let mut c = candidate(
            d,
            &e.process,
            lookup,
            Draft {
                finding_type: FindingType::ExecutionNewBinaryExecuted,
                title: "A newly written binary was executed",
                description: format!(
                    "Process {} (pid {}) executed {exe}, {how}.",
                    e.process.comm, e.process.pid
                ),
                key: exe.clone(),
                context,
            },
        );
        c.severity = severity;
        out.push(c);
    }
    // A container process running with the host's root directory for its own: `chroot /host`
    // into the host's filesystem mounted in the container (`-v /:/host`, a hostPath of `/`)
    // hands it the host's files, as root in a privileged container (the pipeline read the
    // process's root from the kernel: `ExecInfo::host_root`).
    if e.host_root && e.process.container.is_some() {
        let mut context = super::technique::exec_context(e, exe.clone());
        let extra = &mut context.additional;
        extra.insert("ruleId".into(), "behaviour-container-host-root".into());
        extra.insert("ruleOrigin".into(), "builtin:behaviour".into());
        extra.insert("mitreTechniques".into(), "T1611".into());
        out.push(candidate(
            d,
            &e.process,
            lookup,
            Draft {
                finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
                title: "A container process runs in the host's root directory",
                description: format!(
                    "Process {} (pid {}) in a container executed {exe} with the host's root \
                     directory as its own (a chroot into the host's filesystem mounted in the \
                     container): it reads, writes and runs the host's files.",
                    e.process.comm, e.process.pid
                ),
                key: "hostRoot".into(),
                context,
            },
        ));
    }
    out
}

/// The score of a Low finding (the middle of GuardDuty's Low band, as defaults use).
const LOW: f64 = 2.0;

/// The severity of NewBinaryExecuted or NewLibraryLoaded for a file `w` wrote, or `None` for no
/// finding. GuardDuty defines both for containers ("a newly created or recently modified binary
/// in the container"): there nothing is exempt. On the host they are off unless `hostNewFiles`
/// turns them on, and build output (`hostBuildWriters`) stays exempt.
/// `writer`: the writer's identity ([`paths_of`]).
fn new_file_severity(b: &Behaviour, in_container: bool, writer: &[PathBuf]) -> Option<f64> {
    let medium = super::default_severity(FindingType::ExecutionNewBinaryExecuted);
    if in_container {
        return Some(medium);
    }
    if identified(&b.host_build_writers, writer) {
        return None;
    }
    match b.host_new_files {
        HostNewFiles::Off => None,
        HostNewFiles::Low => Some(LOW),
        HostNewFiles::Medium => Some(medium),
    }
}

/// Connects: a runtime API socket reached from a container.
pub(crate) fn check_connect(
    d: &Detector,
    n: &NetInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let Some(path) = n.unix_path.as_deref() else {
        return Vec::new();
    };
    if n.process.container.is_none() || !d.rules.behaviour().is_runtime_socket(path) {
        return Vec::new();
    }
    vec![docker_socket(
        d,
        &n.process,
        lookup,
        path,
        "connect",
        n.error.as_deref(),
    )]
}

fn docker_socket(
    d: &Detector,
    p: &ProcessRef,
    lookup: &dyn ProcessLookup,
    path: &str,
    operation: &str,
    error: Option<&str>,
) -> Candidate {
    let mut context = RuntimeContext {
        socket_path: Some(path.to_owned()),
        file_operation: Some(operation.to_owned()),
        ..RuntimeContext::default()
    };
    if let Some(error) = error {
        context.additional.insert("result".into(), error.to_owned());
    }
    candidate(
        d,
        p,
        lookup,
        Draft {
            finding_type: FindingType::PrivilegeEscalationDockerSocketAccessed,
            title: "A container accessed the container runtime socket",
            description: format!(
                "Process {} (pid {}) in a container used the runtime socket {path} ({operation}).",
                p.comm, p.pid
            ),
            key: path.to_owned(),
            context,
        },
    )
}

/// `O_APPEND` and `O_TRUNC` of Linux (octal 02000 and 01000).
const O_APPEND: u32 = 0o2000;
const O_TRUNC: u32 = 0o1000;
/// The access mode bits of `open` flags, and read-write.
const O_ACCMODE: u32 = 0o3;
const O_RDWR: u32 = 0o2;

/// File operations on the sensitive-path set.
pub(crate) fn check_file(d: &Detector, f: &FileInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let b = d.rules.behaviour();
    // The path the operation changes: for rename and link, the new name may be the sensitive
    // one (a file moved over /etc/passwd), so both are looked at.
    let mut paths: Vec<&Path> = f.resolved_path.iter().map(|p| p.as_path()).collect();
    if matches!(f.operation, "rename" | "link")
        && let Some(p2) = f.resolved_path2.as_deref()
    {
        paths.push(p2);
    }
    let names = actor_paths(d, &f.process, lookup);
    let mut out = Vec::new();

    // /proc/<pid>/mem of another process opened for writing (injection) or reading (a memory
    // dump). Attempts count: the result is in `additional.result`.
    if f.matched_by.contains(&"procMem") {
        if let Some(target) = f.proc_mem_pid
            && target != f.process.pid
            && !debugger_reading_its_child(d, f, &names, target, lookup)
        {
            let read = f.operation == "openRead";
            // `O_RDWR` (gdb and gcore open it so): written to and read from, a dump as well.
            let read_write = f.operation == "openWrite"
                && f.open_flags
                    .as_deref()
                    .and_then(|o| u32::from_str_radix(o, 8).ok())
                    .is_some_and(|flags| flags & O_ACCMODE == O_RDWR);
            let mut context = RuntimeContext {
                file_path: Some(f.path.clone()),
                file_operation: Some(f.operation.to_owned()),
                target_process: target_process(d, target, lookup),
                ..RuntimeContext::default()
            };
            context
                .additional
                .insert("targetPid".into(), target.to_string());
            context.additional.insert(
                "memoryAccess".into(),
                if read {
                    "read"
                } else if read_write {
                    "readWrite"
                } else {
                    "write"
                }
                .into(),
            );
            if let Some(error) = &f.error {
                context.additional.insert("result".into(), error.clone());
            }
            let refused = f
                .error
                .as_deref()
                .map(|e| format!(" (refused: {e})"))
                .unwrap_or_default();
            let (title, verb) = if read {
                (
                    "A process read another process's memory through /proc (a memory dump)",
                    "reading",
                )
            } else {
                (
                    "A process opened another process's memory for writing",
                    "writing",
                )
            };
            out.push(candidate(
                d,
                &f.process,
                lookup,
                Draft {
                    finding_type: FindingType::DefenseEvasionProcessInjectionProc,
                    title,
                    description: format!(
                        "Process {} (pid {}) opened /proc/{target}/mem for {verb}{refused}.",
                        f.process.comm, f.process.pid,
                    ),
                    key: format!("{}\0{target}", if read { "read" } else { "write" }),
                    context: context.clone(),
                },
            ));
            // A read is a memory dump too: the way credentials are taken from a running program.
            if read || read_write {
                out.push(candidate(
                    d,
                    &f.process,
                    lookup,
                    Draft {
                        finding_type: FindingType::CredentialAccessMemoryDumpCreated,
                        title: "A process dumped another process's memory",
                        description: format!(
                            "Process {} (pid {}) opened /proc/{target}/mem to read the memory of \
                             pid {target}{refused}.",
                            f.process.comm, f.process.pid,
                        ),
                        key: target.to_string(),
                        context,
                    },
                ));
            }
        }
        return out;
    }
    // Any other read-only open (the password hashes read) changed nothing: the technique checks
    // look at it.
    if f.operation == "openRead" {
        return out;
    }

    for path in paths {
        let text = path.display().to_string();
        let name = path_basename(path);
        let file_context = |error: Option<&str>| {
            let mut c = RuntimeContext {
                file_path: Some(text.clone()),
                file_operation: Some(f.operation.to_owned()),
                ..RuntimeContext::default()
            };
            if let Some(e) = error {
                c.additional.insert("result".into(), e.to_owned());
            }
            c
        };
        // Attempts count for the escape types: a refused write is still the attempt.
        if b.is_runtime_socket(&text) {
            if f.process.container.is_some() {
                out.push(docker_socket(
                    d,
                    &f.process,
                    lookup,
                    &text,
                    f.operation,
                    f.error.as_deref(),
                ));
            }
            continue;
        }
        // A removal modifies no release agent: cgroupfs files cannot be removed, and a file of
        // that name elsewhere goes away with the container layer that held it (podman
        // cleaning up after Falco's release_agent action, whose write raised already).
        if b.release_agent_names.iter().any(|n| n == name) {
            if f.operation == "unlink" {
                continue;
            }
            out.push(candidate(
                d,
                &f.process,
                lookup,
                Draft {
                    finding_type: FindingType::PrivilegeEscalationCGroupsReleaseAgentModified,
                    title: "A cgroup release agent file was modified",
                    description: format!(
                        "Process {} (pid {}) changed {text} ({}): the kernel runs the release \
                         agent as root on the host.",
                        f.process.comm, f.process.pid, f.operation
                    ),
                    key: text.clone(),
                    context: file_context(f.error.as_deref()),
                },
            ));
            continue;
        }
        // `notify_on_release` set from a container: the other half of the release-agent
        // escape (the kernel runs the hierarchy's release agent when a cgroup marked so
        // empties), which a container does in a cgroup v1 hierarchy it mounted itself
        // (Tracee's "cgroup notify_on_release modification"). On the host, init sets it on the
        // hierarchies it manages.
        if name == NOTIFY_ON_RELEASE {
            if f.operation != "unlink" && f.process.container.is_some() {
                out.push(candidate(
                    d,
                    &f.process,
                    lookup,
                    Draft {
                        finding_type: FindingType::PrivilegeEscalationCGroupsReleaseAgentModified,
                        title: "A cgroup was marked to run its release agent",
                        description: format!(
                            "Process {} (pid {}) in a container changed {text} ({}): when the \
                             cgroup empties, the kernel runs the hierarchy's release agent as \
                             root on the host.",
                            f.process.comm, f.process.pid, f.operation
                        ),
                        key: text.clone(),
                        context: file_context(f.error.as_deref()),
                    },
                ));
            }
            continue;
        }
        let in_bin_dir = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "bin" || n == "sbin");
        if in_bin_dir && b.runtime_binaries.iter().any(|n| n == name) {
            if !identified(&b.runtime_binary_updaters, &names) {
                out.push(candidate(
                    d,
                    &f.process,
                    lookup,
                    Draft {
                        finding_type: FindingType::PrivilegeEscalationRuncContainerEscape,
                        title: "A container runtime binary was modified",
                        description: format!(
                            "Process {} (pid {}) changed the container runtime binary {text} \
                             ({}).",
                            f.process.comm, f.process.pid, f.operation
                        ),
                        key: text.clone(),
                        context: file_context(f.error.as_deref()),
                    },
                ));
            }
            continue;
        }
        if f.ret < 0 {
            // Not modified.
            continue;
        }
        // cgroup v1's device lists: runtimes write them for every container they start; the
        // technique check judges a container's own write (`behaviour-container-devices-allowed`).
        if name == super::technique::DEVICES_ALLOW {
            continue;
        }
        // Kernel settings under /proc/sys are not files anyone keeps (the technique checks
        // look at the one that matters, randomize_va_space), whichever procfs mount reaches
        // them (the host's /proc given to a container: `sysctl_setting`).
        if path.starts_with("/proc/") || f.sysctl_setting.is_some() {
            continue;
        }
        // The loader's names are in the set for the technique check, which judges the
        // directory: a file of that name elsewhere (a container image's layer being unpacked
        // under the runtime's storage, a build tree) is nothing.
        if super::technique::is_loader_name(name) && !super::technique::is_loader(&text) {
            continue;
        }
        // iconv's module list is in the set for the technique check alone, which judges the
        // directory (the C library's own, or anywhere else).
        if name == super::technique::GCONV_MODULES {
            continue;
        }
        // Git's hooks and configuration are in the set for the technique checks alone, which
        // judge the place (a hook's name in a `hooks` directory, not a file named `update`
        // anywhere) and the settings written (`git config --global user.name` writes the file
        // as a backdoor's `core.pager` does).
        if super::technique::judged_by_git_checks(b, &text, name) {
            continue;
        }
        // Kernel settings files likewise: judged by the settings written.
        if super::technique::judged_by_sysctl_check(&text) {
            continue;
        }
        // A chmod of the password hashes that adds no execute or set-id bit comes for the bits
        // it gives others: `behaviour-password-hashes-exposed` judges it.
        if f.operation == "chmod"
            && super::technique::is_password_hashes(path)
            && f.mode
                .as_deref()
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .is_some_and(|m| m & 0o6111 == 0)
        {
            continue;
        }
        // A place whose owners write it through any program of theirs (an initramfs builder's
        // subshells, compressors, `cp` and `mv`) is judged by the persistence check alone,
        // which follows the lineage: a name cannot tell their `mv` from an attacker's.
        if b.persistence_locations
            .iter()
            .any(|l| l.owners_reach == OwnersReach::Descendants && l.place.contains(&text))
        {
            continue;
        }
        let Some(entry) = d.sensitive.classify(path) else {
            continue;
        };
        // The name `config` is in the set for a repository's git configuration alone: any
        // other file of that name hit by the name only is nothing.
        if super::technique::git_config_name_only(entry) {
            continue;
        }
        // Package managers install and update these files, and so do their maintainer scripts
        // (dpkg -> sh /var/lib/dpkg/info/PKG.postinst -> pam-auth-update): installation, as
        // for the persistence places. apt is not one: its hooks (`APT::Update::Pre-Invoke`,
        // `DPkg::Post-Invoke`) are its children, not dpkg's, and stay watched.
        if identified(&b.sensitive_trusted_writers, &names)
            || super::technique::installing(d, b, &f.process, lookup)
        {
            continue;
        }
        if let Some(x) = b.exemption(&entry.pattern) {
            if identified(&x.writers, &names) {
                continue;
            }
            let flags = f
                .open_flags
                .as_deref()
                .and_then(|t| u32::from_str_radix(t, 8).ok())
                .unwrap_or(0);
            if x.appends
                && f.operation == "openWrite"
                && flags & O_APPEND != 0
                && flags & O_TRUNC == 0
            {
                continue;
            }
        }
        let finding_type = match entry.category {
            Category::Persistence => FindingType::PersistenceSensitiveFileModified,
            Category::PrivilegeEscalation => FindingType::PrivilegeEscalationSensitiveFileModified,
            Category::DefenseEvasion => FindingType::DefenseEvasionSensitiveFileModified,
        };
        let mut context = file_context(None);
        context
            .additional
            .insert("sensitivePattern".into(), entry.pattern.clone());
        if let Some(flags) = &f.open_flags {
            context.additional.insert("openFlags".into(), flags.clone());
        }
        out.push(candidate(
            d,
            &f.process,
            lookup,
            Draft {
                finding_type,
                title: "A sensitive file was modified",
                description: format!(
                    "Process {} (pid {}) changed {text} ({}), matched by the sensitive-path \
                     entry {}.",
                    f.process.comm, f.process.pid, f.operation, entry.pattern
                ),
                key: text.clone(),
                context,
            },
        ));
    }
    out
}

/// Ptrace requests on another process that injection starts with: taking control, writing, and
/// PEEKUSER, the probe of a tracee that GuardDuty's own tester makes.
const PTRACE_INJECTION: &[&str] = &[
    "PTRACE_PEEKUSER",
    "PTRACE_ATTACH",
    "PTRACE_SEIZE",
    "PTRACE_POKETEXT",
    "PTRACE_POKEDATA",
    "PTRACE_POKEUSER",
    "PTRACE_SETREGS",
    "PTRACE_SETREGSET",
];

/// A bind mount of a process's own executable mounts no host directory: runc 1.1 does it at
/// every container start and exec (as `runc init`, in the container's cgroup) to protect its
/// binary from being overwritten through /proc (CVE-2019-5736).
const OWN_EXECUTABLE: &str = "/proc/self/exe";

/// `MS_BIND` and `MS_REMOUNT` of mount(2).
const MS_BIND: u64 = 0x1000;
const MS_REMOUNT: u64 = 0x20;
/// `MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED`: a propagation change, no new mount.
const MS_PROPAGATION: u64 = 0x20000 | 0x40000 | 0x80000 | 0x100000;

/// The pid whose directory in /proc a mount target is (`/proc/1234`, `/proc/1234/`,
/// `/proc//1234/.`), if it is one: a mount there hides the process from whatever lists /proc.
fn proc_pid_of(target: &str) -> Option<u32> {
    let mut parts = target.split('/').filter(|c| !c.is_empty() && *c != ".");
    if !target.starts_with('/') || parts.next() != Some("proc") {
        return None;
    }
    let pid = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(pid)
}

/// Kernel-level activity.
pub(crate) fn check_activity(
    d: &Detector,
    a: &ActivityInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let b = d.rules.behaviour();
    let p = &a.process;
    let names = actor_paths(d, p, lookup);
    let target = |pid: u32| {
        let mut context = RuntimeContext {
            target_process: target_process(d, pid, lookup),
            ..RuntimeContext::default()
        };
        context
            .additional
            .insert("targetPid".into(), pid.to_string());
        context
    };
    // Injection (ptrace, process_vm_writev), memory dumps (process_vm_readv) and userfaultfd
    // count as attempts, whatever the kernel answered (the result is in `additional.result`);
    // modules and mounts only when they happened.
    let ok = a.ret >= 0;
    let mut severity = None;
    let draft = match a.operation {
        "ptrace" => {
            let request = a.request.as_deref().unwrap_or("");
            match (request, a.target_pid) {
                ("PTRACE_TRACEME", _) => {
                    if identified(&b.debuggers, &paths_of(d, p.ppid, lookup)) {
                        return Vec::new();
                    }
                    let mut context = RuntimeContext::default();
                    context
                        .additional
                        .insert("ptraceRequest".into(), request.to_owned());
                    Draft {
                        finding_type: FindingType::DefenseEvasionPtraceAntiDebugging,
                        title: "A process used ptrace to keep debuggers away",
                        description: format!(
                            "Process {} (pid {}) called PTRACE_TRACEME outside a debugger: a \
                             process can be traced once, so this locks debuggers out.",
                            p.comm, p.pid
                        ),
                        key: request.to_owned(),
                        context,
                    }
                }
                (r, Some(t)) if t != p.pid && PTRACE_INJECTION.contains(&r) => {
                    // A debugger tracing the program it started (strace CMD, gdb --args) is
                    // a debugging session; attaching to a process it did not start is not.
                    if identified(&b.debuggers, &names) && parent_of(d, t, lookup) == Some(p.pid) {
                        return Vec::new();
                    }
                    let mut context = target(t);
                    context
                        .additional
                        .insert("ptraceRequest".into(), r.to_owned());
                    Draft {
                        finding_type: FindingType::DefenseEvasionProcessInjectionPtrace,
                        title: "A process used ptrace on another process",
                        description: format!(
                            "Process {} (pid {}) called {r} on pid {t}.",
                            p.comm, p.pid
                        ),
                        key: format!("{r}\0{t}"),
                        context,
                    }
                }
                _ => return Vec::new(),
            }
        }
        "processVmWritev" => match a.target_pid {
            Some(t) if t != p.pid => Draft {
                finding_type: FindingType::DefenseEvasionProcessInjectionVirtualMemoryWrite,
                title: "A process wrote into another process's memory",
                description: if ok {
                    format!(
                        "Process {} (pid {}) wrote {} bytes into pid {t} with process_vm_writev.",
                        p.comm, p.pid, a.ret
                    )
                } else {
                    format!(
                        "Process {} (pid {}) tried to write into pid {t} with process_vm_writev \
                         ({}).",
                        p.comm,
                        p.pid,
                        a.error.as_deref().unwrap_or("failed")
                    )
                },
                key: t.to_string(),
                context: target(t),
            },
            _ => return Vec::new(),
        },
        // Reading another process's memory without /proc: a memory dump, attempts included.
        // A debugger reading the program it started is a debugging session (as for ptrace).
        "processVmReadv" => match a.target_pid {
            Some(t) if t != p.pid => {
                if identified(&b.debuggers, &names) && parent_of(d, t, lookup) == Some(p.pid) {
                    return Vec::new();
                }
                let mut context = target(t);
                context
                    .additional
                    .insert("memoryAccess".into(), "read".into());
                context
                    .additional
                    .insert("syscall".into(), "process_vm_readv".into());
                Draft {
                    finding_type: FindingType::CredentialAccessMemoryDumpCreated,
                    title: "A process dumped another process's memory",
                    description: if ok {
                        format!(
                            "Process {} (pid {}) read {} bytes of the memory of pid {t} with \
                             process_vm_readv.",
                            p.comm, p.pid, a.ret
                        )
                    } else {
                        format!(
                            "Process {} (pid {}) tried to read the memory of pid {t} with \
                             process_vm_readv ({}).",
                            p.comm,
                            p.pid,
                            a.error.as_deref().unwrap_or("failed")
                        )
                    },
                    key: t.to_string(),
                    context,
                }
            }
            _ => return Vec::new(),
        },
        "userfaultfd" => {
            if identified(&b.userfaultfd_users, &names) {
                return Vec::new();
            }
            Draft {
                finding_type: FindingType::PrivilegeEscalationUserfaultfdUsage,
                title: "A process created a userfaultfd",
                description: format!(
                    "Process {} (pid {}) created a userfaultfd, a primitive of kernel exploits \
                     that stall the kernel on a page fault.",
                    p.comm, p.pid
                ),
                key: String::new(),
                context: RuntimeContext::default(),
            }
        }
        "initModule" | "finitModule" if ok => {
            let mut context = RuntimeContext {
                module_name: a.name.clone(),
                ..RuntimeContext::default()
            };
            if let Some(ino) = a.inode {
                context
                    .additional
                    .insert("moduleInode".into(), ino.to_string());
            }
            Draft {
                finding_type: FindingType::DefenseEvasionKernelModuleLoaded,
                title: "A kernel module was loaded",
                description: format!(
                    "Process {} (pid {}) loaded a kernel module{}.",
                    p.comm,
                    p.pid,
                    a.name
                        .as_deref()
                        .map(|n| format!(" from {n}"))
                        .unwrap_or_default()
                ),
                key: a.name.clone().unwrap_or_else(|| a.operation.to_owned()),
                context,
            }
        }
        // A mount over a process's directory in /proc (`mount --bind /tmp/empty /proc/PID`):
        // `ps`, `top` and every tool that lists /proc no longer see the process (T1564, a
        // rootkit's way without a kernel module). Nothing mounts on a pid's directory for a
        // legitimate reason; container runtimes mask /proc's files, not its pids.
        "mount" if ok && proc_pid_of(a.target.as_deref().unwrap_or("")).is_some() => {
            let target = a.target.clone().unwrap_or_default();
            let hidden = proc_pid_of(&target).unwrap_or_default();
            let source = a.source.clone().unwrap_or_default();
            let mut context = RuntimeContext {
                mount_source: (!source.is_empty()).then(|| source.clone()),
                mount_target: Some(target.clone()),
                ..RuntimeContext::default()
            };
            let extra = &mut context.additional;
            extra.insert("ruleId".into(), "behaviour-process-hidden-by-mount".into());
            extra.insert("ruleOrigin".into(), "builtin:behaviour".into());
            extra.insert("mitreTechniques".into(), "T1564".into());
            extra.insert("hiddenPid".into(), hidden.to_string());
            Draft {
                finding_type: FindingType::DefenseEvasionSuspiciousCommand,
                title: "A process was hidden by a mount over its /proc directory",
                description: format!(
                    "Process {} (pid {}) mounted {} on {target}: process {hidden} no longer \
                     shows in ps, top or anything else that reads /proc.",
                    p.comm,
                    p.pid,
                    if source.is_empty() {
                        "something"
                    } else {
                        source.as_str()
                    }
                ),
                key: format!("proc-mount\0{target}"),
                context,
            }
        }
        // A container mounting a host directory or disk. An attempt the kernel refused counts
        // too, whatever it asked for, when its source is a path: GuardDuty's own tester calls
        // `mount("/etc/", "/tmp/", "tempfs-test", 0, NULL)` from a pod, which fails (no such
        // file system type, or no privilege), and expects this type. A container process has no
        // business mounting a path; the runtimes that set its mounts up are exempt.
        "mount" if p.container.is_some() => {
            let flags = a.flags.unwrap_or(0);
            let source = a.source.as_deref().unwrap_or("");
            let fs_type = a.fs_type.as_deref().unwrap_or("");
            let bind = flags & MS_BIND != 0 && flags & MS_REMOUNT == 0;
            let disk = flags & MS_REMOUNT == 0
                && (b.host_fs_types.iter().any(|t| t == fs_type)
                    || source.starts_with("/dev/") && !fs_type.is_empty());
            let refused = !ok && flags & (MS_REMOUNT | MS_PROPAGATION) == 0;
            if !(bind || disk || refused)
                || !source.starts_with('/')
                || source == OWN_EXECUTABLE
                || identified(&b.container_mounters, &names)
            {
                return Vec::new();
            }
            let target_dir = a.target.clone().unwrap_or_default();
            let mut context = RuntimeContext {
                mount_source: Some(source.to_owned()),
                mount_target: Some(target_dir.clone()),
                ..RuntimeContext::default()
            };
            context.additional.insert(
                "mountKind".into(),
                if bind {
                    "bind"
                } else if disk {
                    "disk"
                } else {
                    "other"
                }
                .into(),
            );
            if !fs_type.is_empty() {
                context
                    .additional
                    .insert("fsType".into(), fs_type.to_owned());
            }
            Draft {
                finding_type: FindingType::PrivilegeEscalationContainerMountsHostDirectory,
                title: if ok {
                    "A container mounted a host directory"
                } else {
                    "A container tried to mount a host directory"
                },
                description: format!(
                    "Process {} (pid {}) in a container {} {source} on {target_dir}{}.",
                    p.comm,
                    p.pid,
                    if ok { "mounted" } else { "tried to mount" },
                    a.error
                        .as_deref()
                        .map(|e| format!(" (refused: {e})"))
                        .unwrap_or_default()
                ),
                key: format!("{source}\0{target_dir}"),
                context,
            }
        }
        // A process of a container joining the host's mount or pid namespace: the escape
        // `nsenter -t 1 -m -p sh` makes from a privileged container, whatever the tool or the
        // way it named the namespace (`-t PID`, `--mount=/proc/1/ns/mnt`, a pidfd). The
        // container runtimes join the container's namespaces, never the host's.
        "setns" if ok && p.container.is_some() && !a.host_namespaces_joined.is_empty() => {
            let joined = a.host_namespaces_joined.join(",");
            let mut context = RuntimeContext::default();
            let extra = &mut context.additional;
            extra.insert(
                "ruleId".into(),
                "behaviour-container-joins-host-namespace".into(),
            );
            extra.insert("ruleOrigin".into(), "builtin:behaviour".into());
            extra.insert("mitreTechniques".into(), "T1611".into());
            extra.insert("hostNamespacesJoined".into(), joined.clone());
            if let Some(ino) = a.inode {
                extra.insert("namespaceInode".into(), ino.to_string());
            }
            Draft {
                finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
                title: "A container process entered the host's namespaces",
                description: format!(
                    "Process {} (pid {}) in a container joined the host's {joined} namespace \
                     with setns: from there it sees and runs the host's files as root.",
                    p.comm, p.pid
                ),
                key: format!("setns\0{joined}"),
                context,
            }
        }
        // Shocker (CDK's `cap-dac-read-search`): a container process opening a file by handle.
        // With CAP_DAC_READ_SEARCH a handle names any inode of the file system a descriptor is
        // on, outside the container's root (inode 2 is the host's `/`), and no path is walked.
        // Nothing in a container has another use for it; an attempt the kernel refused (no
        // capability, a stale handle) counts too, at Medium. The runtimes are exempt.
        "openByHandleAt" if p.container.is_some() => {
            if identified(&b.container_mounters, &names) {
                return Vec::new();
            }
            severity = Some(if ok { 8.0 } else { 5.0 });
            let mut context = RuntimeContext::default();
            let extra = &mut context.additional;
            extra.insert("ruleId".into(), "behaviour-container-open-by-handle".into());
            extra.insert("ruleOrigin".into(), "builtin:behaviour".into());
            extra.insert("mitreTechniques".into(), "T1611".into());
            let handle = a.handle.clone().unwrap_or_default();
            extra.insert("fileHandle".into(), handle.clone());
            if let Some(name) = &a.name {
                extra.insert("openedName".into(), name.clone());
            }
            if let Some(ino) = a.inode {
                extra.insert("openedInode".into(), ino.to_string());
            }
            Draft {
                finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
                title: if ok {
                    "A container process opened a file by handle"
                } else {
                    "A container process tried to open a file by handle"
                },
                description: format!(
                    "Process {} (pid {}) in a container {} a file by handle ({handle}){}: a                      handle reaches files of the host's file system outside the container's                      root (the Shocker escape).",
                    p.comm,
                    p.pid,
                    if ok { "opened" } else { "tried to open" },
                    match (&a.name, &a.error) {
                        (Some(name), _) => format!(", inode {} named {name}", a.inode.unwrap_or(0)),
                        (None, Some(e)) => format!(" (refused: {e})"),
                        _ => String::new(),
                    }
                ),
                key: format!("handle\0{handle}"),
                context,
            }
        }
        // A block device made in a container (`mknod /dev/sda b 8 0`): the host's disk, which
        // `debugfs` or a mount then reads around every permission of the container. A runtime
        // makes the devices of a privileged container itself (runc, exempt); an attempt the
        // kernel refused (no CAP_MKNOD) counts too, at Medium.
        "mknod" if p.container.is_some() => {
            if identified(&b.container_mounters, &names) {
                return Vec::new();
            }
            severity = Some(if ok { 8.0 } else { 5.0 });
            let node = a.target.clone().unwrap_or_default();
            let device = a.device.clone().unwrap_or_default();
            let mut context = RuntimeContext {
                file_path: Some(node.clone()),
                ..RuntimeContext::default()
            };
            let extra = &mut context.additional;
            extra.insert(
                "ruleId".into(),
                "behaviour-container-block-device-made".into(),
            );
            extra.insert("ruleOrigin".into(), "builtin:behaviour".into());
            extra.insert("mitreTechniques".into(), "T1611".into());
            extra.insert("blockDevice".into(), device.clone());
            Draft {
                finding_type: FindingType::PrivilegeEscalationSuspiciousCommand,
                title: if ok {
                    "A container process made a block device"
                } else {
                    "A container process tried to make a block device"
                },
                description: format!(
                    "Process {} (pid {}) in a container {} the block device {device} as {node}{}:                      a disk's device node reads the host's file system around the container's                      permissions.",
                    p.comm,
                    p.pid,
                    if ok { "made" } else { "tried to make" },
                    a.error
                        .as_deref()
                        .map(|e| format!(" (refused: {e})"))
                        .unwrap_or_default()
                ),
                key: format!("mknod\0{device}"),
                context,
            }
        }
        "executableDeleted" => {
            // The pipeline watched this process since it exec'd a binary from a memory-backed
            // or world-writable directory, and found that inode without a link left.
            let exe = a.name.clone().unwrap_or_default();
            let mut context = RuntimeContext {
                file_path: Some(exe.clone()),
                ..RuntimeContext::default()
            };
            context
                .additional
                .insert("executableOrigin".into(), "deletedWhileRunning".into());
            Draft {
                finding_type: FindingType::DefenseEvasionFilelessExecution,
                title: "A process runs a binary deleted from disk after it started",
                description: format!(
                    "Process {} (pid {}) runs {exe}, which was removed from disk while it ran: \
                     what runs is left only in memory.",
                    p.comm, p.pid
                ),
                key: "deletedWhileRunning".into(),
                context,
            }
        }
        "libraryLoad" => {
            let Some(w) = &a.written_by else {
                return Vec::new();
            };
            let writer = paths_of(d, w.pid, lookup);
            let Some(new_file) = new_file_severity(b, p.container.is_some(), &writer) else {
                return Vec::new();
            };
            severity = Some(new_file);
            let mut context = with_modifier(d, w, RuntimeContext::default());
            if let Some(ino) = a.inode {
                context
                    .additional
                    .insert("libraryInode".into(), ino.to_string());
            }
            Draft {
                finding_type: FindingType::ExecutionNewLibraryLoaded,
                title: "A newly written library was loaded",
                description: format!(
                    "Process {} (pid {}) mapped executable a library file (inode {}) written \
                     by {} (pid {}) at {}.",
                    p.comm,
                    p.pid,
                    a.inode.map(|i| i.to_string()).unwrap_or_else(|| "?".into()),
                    w.comm,
                    w.pid,
                    w.time
                ),
                key: a.inode.map(|i| i.to_string()).unwrap_or_default(),
                context,
            }
        }
        _ => return Vec::new(),
    };
    let mut c = candidate(d, p, lookup, draft);
    if let Some(severity) = severity {
        c.severity = severity;
    }
    if let Some(error) = &a.error {
        c.context.additional.insert("result".into(), error.clone());
    }
    vec![c]
}

/// A debugger reading the memory of the program it started (gdb reads its inferior through
/// `/proc/<pid>/mem`). By the debugger's executable name, never its comm.
fn debugger_reading_its_child(
    d: &Detector,
    f: &FileInfo,
    names: &[PathBuf],
    target: u32,
    lookup: &dyn ProcessLookup,
) -> bool {
    f.operation == "openRead"
        && identified(&d.rules.behaviour().debuggers, names)
        && parent_of(d, target, lookup) == Some(f.process.pid)
}

/// The parent pid of a process: from fork events, the pipeline's table or the exec lineage.
pub(super) fn parent_of(d: &Detector, pid: u32, lookup: &dyn ProcessLookup) -> Option<u32> {
    d.parents
        .get(&pid)
        .copied()
        .or_else(|| lookup.get(pid).map(|k| k.ppid))
        .or_else(|| {
            d.procs
                .get(&pid)
                .and_then(|r| r.lineage.first())
                .map(|a| a.pid)
        })
}
