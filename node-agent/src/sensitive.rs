//! The sensitive-path set: what the file sensor reports, and what each path means.
//!
//! The kernel filters with two maps loaded from here (absolute prefixes and exact paths in an
//! LPM trie, file names in a hash set); user space then matches the resolved path again, here,
//! to say which entry (and so which category) it hit.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Longest prefix or exact path the kernel compares (its LPM key; the NUL counts).
pub const MAX_PATH_BYTES: usize = 127;
/// Longest file name the kernel compares (its hash key; the NUL counts).
pub const MAX_NAME_BYTES: usize = 31;

/// Entries the kernel's prefix trie (exact paths and prefixes) holds
/// (`node-agent-ebpf/src/files.rs`, `SENSITIVE_PREFIXES`).
pub const KERNEL_PREFIX_ENTRIES: usize = 1_024;
/// Entries the kernel's name set holds (`SENSITIVE_NAMES`).
pub const KERNEL_NAME_ENTRIES: usize = 1_024;

/// The set stops growing with home directories here, a quarter of the kernel's prefix trie
/// short of full.
pub const HOME_DIRS_BOUND: usize = 768;

/// Persistence directories in every home directory, as prefixes under it.
const HOME_PERSISTENCE_DIRS: [&str; 4] = [
    ".config/systemd/user/",
    ".config/autostart/",
    ".config/autostart-scripts/",
    ".vim/plugin/",
];

/// Home directories of the accounts in a `passwd` file that can own files (not `/`, not
/// `/nonexistent`), for [`SensitivePaths::with_user_persistence_dirs`]. An unreadable file gives none.
pub fn home_directories(passwd: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(passwd) else {
        return Vec::new();
    };
    let mut homes: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(':').nth(5))
        .filter(|h| h.starts_with('/') && *h != "/" && !h.starts_with("/nonexistent"))
        .map(PathBuf::from)
        .collect();
    homes.sort();
    homes.dedup();
    homes
}

/// How an entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    /// This absolute path exactly.
    Exact,
    /// Everything under this absolute prefix (usually a directory ending in `/`).
    Prefix,
    /// A file with this name in any directory (`authorized_keys`, `.bashrc`).
    Name,
}

/// What tampering with the path is evidence of (the GuardDuty finding family it feeds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Something that runs later on its own: cron, systemd, init, shell start-up, ssh keys.
    Persistence,
    /// Accounts, sudo, PAM, the loader, container runtimes and sockets.
    PrivilegeEscalation,
    /// Logs, audit configuration, shell history.
    DefenseEvasion,
}

/// One entry of the set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitivePath {
    /// The path, prefix or name.
    pub pattern: String,
    /// How it matches.
    #[serde(rename = "match")]
    pub kind: MatchKind,
    /// What it means.
    pub category: Category,
}

/// The whole set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitivePaths {
    /// The entries.
    pub entries: Vec<SensitivePath>,
}

/// A bad entry or file.
#[derive(Debug, thiserror::Error)]
pub enum SensitivePathsError {
    /// The file could not be read.
    #[error("cannot read sensitive-path file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("sensitive-path file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why (serde_yaml names line and column).
        #[source]
        source: serde_yaml::Error,
    },
    /// An entry the kernel cannot use.
    #[error("sensitive-path entry {index} ({pattern:?}): {reason}")]
    Invalid {
        /// Position in the list, from 0.
        index: usize,
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

const fn entry(
    pattern: &'static str,
    kind: MatchKind,
    category: Category,
) -> (&'static str, MatchKind, Category) {
    (pattern, kind, category)
}

use Category::{
    DefenseEvasion as Evasion, Persistence as Persist, PrivilegeEscalation as Escalation,
};
use MatchKind::{Exact, Name, Prefix};

/// The built-in set.
const DEFAULTS: &[(&str, MatchKind, Category)] = &[
    entry("/etc/passwd", Exact, Escalation),
    entry("/etc/shadow", Exact, Escalation),
    entry("/etc/group", Exact, Escalation),
    entry("/etc/gshadow", Exact, Escalation),
    entry("/etc/sudoers", Exact, Escalation),
    entry("/etc/sudoers.d/", Prefix, Escalation),
    entry("/etc/pam.d/", Prefix, Escalation),
    entry("/etc/pam.conf", Exact, Escalation),
    // The name service switch: every program that looks up an account, group or host loads the
    // modules it names (`libnss_NAME.so`), sshd, login and sudo among them (T1556; persistence
    // kind `nss`).
    entry("/etc/nsswitch.conf", Exact, Persist),
    // The other elevation policies (detect/technique.rs): doas's, polkit's rules.
    entry("/etc/doas.conf", Exact, Escalation),
    entry("/usr/local/etc/doas.conf", Exact, Escalation),
    entry("/etc/polkit-1/rules.d/", Prefix, Escalation),
    entry("/usr/share/polkit-1/rules.d/", Prefix, Escalation),
    entry("/etc/polkit-1/localauthority/", Prefix, Escalation),
    entry("/var/lib/polkit-1/localauthority/", Prefix, Escalation),
    entry("/etc/polkit-1/localauthority.conf.d/", Prefix, Escalation),
    entry("/etc/security/", Prefix, Escalation),
    entry("/etc/ld.so.preload", Exact, Escalation),
    // iconv's module list, anywhere (PwnKit's `GCONV_PATH` staging): the technique check
    // judges the directory (detect/technique.rs, `behaviour-gconv-modules-written`).
    entry("gconv-modules", Name, Escalation),
    // The dynamic loader (by name: the kernel names the file opened, under /usr/lib on a
    // merged-/usr system and /lib elsewhere; detect/technique.rs checks the directory) and
    // its library search path (T1574.006).
    entry("ld-linux-x86-64.so.2", Name, Evasion),
    entry("ld-linux-aarch64.so.1", Name, Evasion),
    entry("ld-linux.so.2", Name, Evasion),
    entry("ld-linux-armhf.so.3", Name, Evasion),
    entry("ld-musl-x86_64.so.1", Name, Evasion),
    entry("ld-musl-aarch64.so.1", Name, Evasion),
    entry("ld64.so.2", Name, Evasion),
    entry("/etc/ld.so.conf", Exact, Evasion),
    entry("/etc/ld.so.conf.d/", Prefix, Evasion),
    // cgroup v1: marks a cgroup whose emptying runs the release agent (detect/behaviour.rs).
    entry("notify_on_release", Name, Escalation),
    // cgroup v1: the devices a cgroup's tasks may open (detect/technique.rs: from a container).
    entry("devices.allow", Name, Escalation),
    entry("/etc/ssh/sshd_config", Exact, Escalation),
    entry("/etc/ssh/sshd_config.d/", Prefix, Escalation),
    entry("release_agent", Name, Escalation),
    // The system's programs (detect/technique.rs: replaced by anything but a package manager).
    entry("/usr/bin/", Prefix, Evasion),
    entry("/usr/sbin/", Prefix, Evasion),
    entry("/bin/", Prefix, Evasion),
    entry("/sbin/", Prefix, Evasion),
    // Programs other programs run for them: sshd's per-session and helper programs (Debian's
    // /usr/lib/openssh, Red Hat's /usr/libexec/openssh), polkit's and PackageKit's helpers.
    entry("/usr/libexec/", Prefix, Evasion),
    entry("/usr/lib/openssh/", Prefix, Evasion),
    entry("/usr/bin/runc", Exact, Escalation),
    entry("/usr/sbin/runc", Exact, Escalation),
    entry("/usr/local/bin/runc", Exact, Escalation),
    entry("/usr/local/sbin/runc", Exact, Escalation),
    entry("/usr/bin/containerd-shim", Prefix, Escalation),
    entry("/usr/local/bin/containerd-shim", Prefix, Escalation),
    entry("/var/run/docker.sock", Exact, Escalation),
    entry("/run/docker.sock", Exact, Escalation),
    entry("/run/containerd/containerd.sock", Exact, Escalation),
    entry("/var/run/containerd/containerd.sock", Exact, Escalation),
    // Static pods: the kubelet runs every manifest in this directory, outside the API server's
    // admission and RBAC (kubeadm's control plane is written here; a manifest added is a pod
    // that comes back after each reboot, T1543, T1610).
    entry("/etc/kubernetes/manifests/", Prefix, Persist),
    entry("authorized_keys", Name, Persist),
    entry("authorized_keys2", Name, Persist),
    entry("/etc/crontab", Exact, Persist),
    entry("/etc/cron.d/", Prefix, Persist),
    entry("/etc/cron.hourly/", Prefix, Persist),
    entry("/etc/cron.daily/", Prefix, Persist),
    entry("/etc/cron.weekly/", Prefix, Persist),
    entry("/etc/cron.monthly/", Prefix, Persist),
    entry("/var/spool/cron/", Prefix, Persist),
    // busybox crond's tables (Alpine's images and hosts), one file per account.
    entry("/etc/crontabs/", Prefix, Persist),
    entry("/etc/systemd/system/", Prefix, Persist),
    entry("/etc/systemd/user/", Prefix, Persist),
    entry("/lib/systemd/system/", Prefix, Persist),
    entry("/usr/lib/systemd/system/", Prefix, Persist),
    entry("/run/systemd/system/", Prefix, Persist),
    entry("/etc/init.d/", Prefix, Persist),
    entry("/etc/rc.local", Exact, Persist),
    entry("/etc/rc.d/rc.local", Exact, Persist),
    // rc.common (sourced by BSD-style rc scripts, and by what Atomic Red Team's T1037.004 writes
    // on Linux) and Red Hat's init directory, which /etc/init.d links to there: paths are
    // resolved from the kernel's objects, so a write through the link is seen under this name.
    entry("/etc/rc.common", Exact, Persist),
    entry("/etc/rc.d/init.d/", Prefix, Persist),
    // Upstart's job definitions.
    entry("/etc/init/", Prefix, Persist),
    // The runlevel directories of links to init scripts (T1037.004), Debian's and Red Hat's.
    entry("/etc/rc0.d/", Prefix, Persist),
    entry("/etc/rc1.d/", Prefix, Persist),
    entry("/etc/rc2.d/", Prefix, Persist),
    entry("/etc/rc3.d/", Prefix, Persist),
    entry("/etc/rc4.d/", Prefix, Persist),
    entry("/etc/rc5.d/", Prefix, Persist),
    entry("/etc/rc6.d/", Prefix, Persist),
    entry("/etc/rcS.d/", Prefix, Persist),
    entry("/etc/rc.d/rc0.d/", Prefix, Persist),
    entry("/etc/rc.d/rc1.d/", Prefix, Persist),
    entry("/etc/rc.d/rc2.d/", Prefix, Persist),
    entry("/etc/rc.d/rc3.d/", Prefix, Persist),
    entry("/etc/rc.d/rc4.d/", Prefix, Persist),
    entry("/etc/rc.d/rc5.d/", Prefix, Persist),
    entry("/etc/rc.d/rc6.d/", Prefix, Persist),
    // anacron's table.
    entry("/etc/anacrontab", Exact, Persist),
    entry("/usr/local/lib/systemd/system/", Prefix, Persist),
    // Generators: systemd runs them as root at boot and at every daemon-reload.
    entry("/etc/systemd/system-generators/", Prefix, Persist),
    entry("/usr/local/lib/systemd/system-generators/", Prefix, Persist),
    entry("/lib/systemd/system-generators/", Prefix, Persist),
    entry("/usr/lib/systemd/system-generators/", Prefix, Persist),
    // Sleep and shutdown hooks: systemd runs every program there as root at suspend, resume
    // and shutdown.
    entry("/usr/lib/systemd/system-sleep/", Prefix, Persist),
    entry("/lib/systemd/system-sleep/", Prefix, Persist),
    entry("/usr/lib/systemd/system-shutdown/", Prefix, Persist),
    entry("/lib/systemd/system-shutdown/", Prefix, Persist),
    // at's spool (Debian keeps it inside cron's), and where atd writes the jobs' output.
    entry("/var/spool/cron/atjobs/", Prefix, Persist),
    entry("/var/spool/cron/atspool/", Prefix, Persist),
    entry("/var/spool/at/", Prefix, Persist),
    // Who may schedule jobs (T1053.002, .003): a user written into an allow list or taken off a
    // deny list can then queue commands that run later as that user. Packages ship them
    // (through the package manager, exempt); nothing else writes them in normal running.
    entry("/etc/at.allow", Exact, Persist),
    entry("/etc/at.deny", Exact, Persist),
    entry("/etc/cron.allow", Exact, Persist),
    entry("/etc/cron.deny", Exact, Persist),
    entry("/root/.config/systemd/user/", Prefix, Persist),
    entry("/root/.config/autostart/", Prefix, Persist),
    // KDE Plasma's autostart scripts, run at every login of the session.
    entry("/root/.config/autostart-scripts/", Prefix, Persist),
    // XDG autostart, udev rules, message-of-the-day scripts, modules loaded at boot.
    entry("/etc/xdg/autostart/", Prefix, Persist),
    entry("/etc/udev/rules.d/", Prefix, Persist),
    entry("/lib/udev/rules.d/", Prefix, Persist),
    entry("/usr/lib/udev/rules.d/", Prefix, Persist),
    // udev's runtime rules and the administrator's packaged ones: read as the others.
    entry("/run/udev/rules.d/", Prefix, Persist),
    entry("/usr/local/lib/udev/rules.d/", Prefix, Persist),
    entry("/etc/update-motd.d/", Prefix, Persist),
    entry("/etc/modules-load.d/", Prefix, Persist),
    entry("/etc/modules", Exact, Persist),
    entry("/usr/lib/modules-load.d/", Prefix, Persist),
    entry("/usr/local/lib/modules-load.d/", Prefix, Persist),
    entry("/run/modules-load.d/", Prefix, Persist),
    // modprobe's configuration: `install` lines run commands as root.
    entry("/etc/modprobe.d/", Prefix, Persist),
    entry("/usr/lib/modprobe.d/", Prefix, Persist),
    entry("/lib/modprobe.d/", Prefix, Persist),
    entry("/usr/local/lib/modprobe.d/", Prefix, Persist),
    entry("/run/modprobe.d/", Prefix, Persist),
    // The package manager's hooks and maintainer scripts, run as root at the next install or
    // update (detect/technique.rs, persistence kind `package`).
    entry("/etc/apt/apt.conf.d/", Prefix, Persist),
    entry("/etc/apt/apt.conf", Exact, Persist),
    entry("/var/lib/dpkg/info/", Prefix, Persist),
    entry("/etc/yum/pluginconf.d/", Prefix, Persist),
    entry("/usr/lib/yum-plugins/", Prefix, Persist),
    entry("/etc/dnf/plugins/", Prefix, Persist),
    entry("/etc/pacman.d/hooks/", Prefix, Persist),
    entry("/usr/share/libalpm/hooks/", Prefix, Persist),
    // PAM's module directories (persistence kind `pam`; its configuration is above).
    entry("/lib/security/", Prefix, Persist),
    entry("/lib64/security/", Prefix, Persist),
    entry("/usr/lib/security/", Prefix, Persist),
    entry("/usr/lib64/security/", Prefix, Persist),
    entry("/lib/x86_64-linux-gnu/security/", Prefix, Persist),
    entry("/usr/lib/x86_64-linux-gnu/security/", Prefix, Persist),
    entry("/lib/aarch64-linux-gnu/security/", Prefix, Persist),
    entry("/usr/lib/aarch64-linux-gnu/security/", Prefix, Persist),
    // What runs before the system is up (kind `boot`): dracut modules and configuration,
    // initramfs-tools' configuration, hooks and scripts, the kernel's install hooks, GRUB's
    // settings, generator scripts and configuration.
    entry("/lib/dracut/modules.d/", Prefix, Persist),
    entry("/usr/lib/dracut/modules.d/", Prefix, Persist),
    entry("/etc/dracut.conf", Exact, Persist),
    entry("/etc/dracut.conf.d/", Prefix, Persist),
    entry("/etc/initramfs-tools/", Prefix, Persist),
    entry("/usr/share/initramfs-tools/", Prefix, Persist),
    entry("/etc/kernel/postinst.d/", Prefix, Persist),
    entry("/etc/kernel/install.d/", Prefix, Persist),
    entry("/usr/lib/kernel/install.d/", Prefix, Persist),
    entry("/etc/default/grub", Exact, Persist),
    entry("/etc/default/grub.d/", Prefix, Persist),
    entry("/etc/sysconfig/grub", Exact, Persist),
    entry("/etc/grub.d/", Prefix, Persist),
    entry("/boot/grub/grub.cfg", Exact, Persist),
    entry("/boot/grub2/grub.cfg", Exact, Persist),
    // The initramfs images themselves (Debian's `initrd.img-VERSION`, dracut's and
    // mkinitcpio's `initramfs-VERSION.img`), by prefix: the image builders' temporary files
    // (`initrd.img-VERSION.new`) are under it too.
    entry("/boot/initrd.img-", Prefix, Persist),
    entry("/boot/initramfs-", Prefix, Persist),
    // The kernel image (`vmlinuz-VERSION`, Arch's `vmlinuz-linux`), and the EFI system
    // partition's unified kernel images and boot loaders, wherever it is mounted.
    entry("/boot/vmlinuz", Prefix, Persist),
    entry("/boot/efi/EFI/", Prefix, Persist),
    entry("/efi/EFI/", Prefix, Persist),
    entry("/boot/EFI/", Prefix, Persist),
    // Network hook scripts (kind `network`).
    entry("/etc/NetworkManager/dispatcher.d/", Prefix, Persist),
    entry("/usr/lib/NetworkManager/dispatcher.d/", Prefix, Persist),
    entry("/etc/networkd-dispatcher/", Prefix, Persist),
    entry("/usr/lib/networkd-dispatcher/", Prefix, Persist),
    entry("/etc/network/if-up.d/", Prefix, Persist),
    entry("/etc/network/if-pre-up.d/", Prefix, Persist),
    entry("/etc/network/if-down.d/", Prefix, Persist),
    entry("/etc/network/if-post-down.d/", Prefix, Persist),
    entry("/etc/dhcp/dhclient-enter-hooks.d/", Prefix, Persist),
    entry("/etc/dhcp/dhclient-exit-hooks.d/", Prefix, Persist),
    // D-Bus services started on demand and the bus policy (kind `dbus`).
    entry("/usr/share/dbus-1/system-services/", Prefix, Persist),
    entry("/usr/local/share/dbus-1/system-services/", Prefix, Persist),
    entry("/usr/share/dbus-1/services/", Prefix, Persist),
    entry("/usr/local/share/dbus-1/services/", Prefix, Persist),
    entry("/usr/share/dbus-1/system.d/", Prefix, Persist),
    entry("/usr/share/dbus-1/session.d/", Prefix, Persist),
    entry("/etc/dbus-1/system.d/", Prefix, Persist),
    entry("/etc/dbus-1/session.d/", Prefix, Persist),
    // Git: hooks by name (kind `git`: only in a `hooks` directory; a name alone raises
    // nothing), the global and system configuration (its command settings judged from what
    // was written, detect/technique.rs).
    entry("applypatch-msg", Name, Persist),
    entry("pre-applypatch", Name, Persist),
    entry("post-applypatch", Name, Persist),
    entry("pre-commit", Name, Persist),
    entry("pre-merge-commit", Name, Persist),
    entry("prepare-commit-msg", Name, Persist),
    entry("commit-msg", Name, Persist),
    entry("post-commit", Name, Persist),
    entry("pre-rebase", Name, Persist),
    entry("post-checkout", Name, Persist),
    entry("post-merge", Name, Persist),
    entry("pre-push", Name, Persist),
    entry("pre-receive", Name, Persist),
    entry("update", Name, Persist),
    entry("proc-receive", Name, Persist),
    entry("post-receive", Name, Persist),
    entry("post-update", Name, Persist),
    entry("reference-transaction", Name, Persist),
    entry("push-to-checkout", Name, Persist),
    entry("pre-auto-gc", Name, Persist),
    entry("post-rewrite", Name, Persist),
    entry("sendemail-validate", Name, Persist),
    entry("fsmonitor-watchman", Name, Persist),
    entry("post-index-change", Name, Persist),
    entry(".gitconfig", Name, Persist),
    entry("/etc/gitconfig", Exact, Persist),
    // A repository's own configuration (`REPO/.git/config`) and the XDG one
    // (`~/.config/git/config`): the name alone; user space keeps git's places
    // (`detect::is_git_config`) and raises nothing for any other file named `config`.
    entry("config", Name, Persist),
    // sshd's login scripts (kind `sshrc`): the system's, and an account's `~/.ssh/rc` by
    // name (only in a `.ssh` directory: a file named `rc` elsewhere raises nothing).
    entry("/etc/ssh/sshrc", Exact, Persist),
    entry("rc", Name, Persist),
    // logrotate's configuration (kind `logrotate`: its rotation scripts run as root).
    entry("/etc/logrotate.conf", Exact, Persist),
    entry("/etc/logrotate.d/", Prefix, Persist),
    // Browsers' system-wide policies, native messaging hosts and external extensions (kind
    // `browser`).
    entry("/etc/opt/chrome/policies/", Prefix, Persist),
    entry("/etc/chromium/policies/", Prefix, Persist),
    entry("/etc/chromium-browser/policies/", Prefix, Persist),
    entry("/etc/opt/edge/policies/", Prefix, Persist),
    entry("/etc/brave/policies/", Prefix, Persist),
    entry("/etc/firefox/policies/", Prefix, Persist),
    entry("/etc/opt/chrome/native-messaging-hosts/", Prefix, Persist),
    entry("/etc/chromium/native-messaging-hosts/", Prefix, Persist),
    entry("/etc/opt/edge/native-messaging-hosts/", Prefix, Persist),
    entry("/usr/lib/mozilla/native-messaging-hosts/", Prefix, Persist),
    entry(
        "/usr/lib64/mozilla/native-messaging-hosts/",
        Prefix,
        Persist,
    ),
    entry("/usr/share/google-chrome/extensions/", Prefix, Persist),
    entry("/usr/share/chromium/extensions/", Prefix, Persist),
    entry("/usr/share/microsoft-edge/extensions/", Prefix, Persist),
    entry("/opt/google/chrome/extensions/", Prefix, Persist),
    // Python's start-up hooks, in any directory (kind `python`).
    entry("sitecustomize.py", Name, Persist),
    entry("usercustomize.py", Name, Persist),
    // Editors' start-up files (kind `editor`), by name (`vimrc` is `~/.vim/vimrc` and the
    // system's; `init.el`, `init.vim` and `init.lua` count only in `.emacs.d` and `nvim`
    // directories, as `rc` in `.ssh`), and root's Vim plugin directory (other homes' are added
    // with their other persistence directories).
    entry(".vimrc", Name, Persist),
    entry("vimrc", Name, Persist),
    entry(".emacs", Name, Persist),
    entry("init.el", Name, Persist),
    entry("init.vim", Name, Persist),
    entry("init.lua", Name, Persist),
    entry("/etc/vim/vimrc.local", Exact, Persist),
    entry("/root/.vim/plugin/", Prefix, Persist),
    entry("/etc/profile", Exact, Persist),
    entry("/etc/profile.d/", Prefix, Persist),
    entry("/etc/bash.bashrc", Exact, Persist),
    // bash-completion's own directory of scripts, sourced by every interactive bash.
    entry("/etc/bash_completion.d/", Prefix, Persist),
    // Graphical sessions' start-up scripts (an account's by name, the system's directories)
    // and fish's start-up files (`config.fish` by name: fish's, wherever its home is).
    entry(".xsessionrc", Name, Persist),
    entry(".xprofile", Name, Persist),
    entry(".xinitrc", Name, Persist),
    entry(".xsession", Name, Persist),
    entry("/etc/X11/Xsession.d/", Prefix, Persist),
    entry("/etc/X11/xinit/xinitrc.d/", Prefix, Persist),
    entry("config.fish", Name, Persist),
    entry("/etc/fish/conf.d/", Prefix, Persist),
    entry("/etc/environment", Exact, Persist),
    // zsh's system start-up files: Debian's directory, other distributions' files.
    entry("/etc/zsh/", Prefix, Persist),
    entry("/etc/zshenv", Exact, Persist),
    entry("/etc/zprofile", Exact, Persist),
    entry("/etc/zshrc", Exact, Persist),
    entry("/etc/zlogin", Exact, Persist),
    entry("/etc/zlogout", Exact, Persist),
    entry(".bashrc", Name, Persist),
    entry(".bash_profile", Name, Persist),
    entry(".bash_login", Name, Persist),
    entry(".bash_logout", Name, Persist),
    entry(".profile", Name, Persist),
    entry(".zshrc", Name, Persist),
    entry(".zprofile", Name, Persist),
    entry(".zlogin", Name, Persist),
    entry("/var/log/", Prefix, Evasion),
    // Mail spools: overwritten to hide what cron and daemons mailed root (T1070.002, Rocke).
    // Debian's is /var/mail (/var/spool/mail links there), Red Hat's the other way round.
    entry("/var/mail/", Prefix, Evasion),
    entry("/var/spool/mail/", Prefix, Evasion),
    // Container logs: the kubelet links and rotates them, the runtimes append to them.
    entry("/var/log/containers/", Prefix, Evasion),
    entry("/var/log/pods/", Prefix, Evasion),
    entry("/run/log/journal/", Prefix, Evasion),
    // System logs by name wherever they are (detect/technique.rs, `wipedLogNames`).
    entry("syslog", Name, Evasion),
    entry("auth.log", Name, Evasion),
    entry("kern.log", Name, Evasion),
    // Kernel settings: ASLR (by name, so a relative path from /proc/sys/kernel is seen too).
    entry("randomize_va_space", Name, Evasion),
    // Other kernel hardening settings an attacker weakens (detect/technique.rs reads the value).
    entry("kptr_restrict", Name, Evasion),
    entry("dmesg_restrict", Name, Evasion),
    entry("ptrace_scope", Name, Evasion),
    entry("unprivileged_bpf_disabled", Name, Evasion),
    entry("unprivileged_userfaultfd", Name, Evasion),
    entry("perf_event_paranoid", Name, Evasion),
    entry("mmap_min_addr", Name, Evasion),
    entry("protected_symlinks", Name, Evasion),
    entry("protected_hardlinks", Name, Evasion),
    // The core-dump handler: a program piped there runs as root on the host (detect/technique.rs).
    entry("core_pattern", Name, Escalation),
    // Kernel settings files applied at boot and by `sysctl --system` (detect/technique.rs reads
    // the settings written: a hardening setting switched off there is kept for every boot).
    entry("/etc/sysctl.conf", Exact, Evasion),
    entry("/etc/sysctl.d/", Prefix, Evasion),
    entry("/run/sysctl.d/", Prefix, Evasion),
    entry("/usr/local/lib/sysctl.d/", Prefix, Evasion),
    entry("/usr/lib/sysctl.d/", Prefix, Evasion),
    entry("/lib/sysctl.d/", Prefix, Evasion),
    entry("/etc/audit/", Prefix, Evasion),
    entry("/etc/rsyslog.conf", Exact, Evasion),
    entry("/etc/rsyslog.d/", Prefix, Evasion),
    // The rest of the audit and logging configuration (detect/technique.rs, T1562.006).
    entry("/etc/audisp/", Prefix, Evasion),
    entry("/etc/libaudit.conf", Exact, Evasion),
    entry("/etc/syslog.conf", Exact, Evasion),
    entry("/etc/syslog-ng/", Prefix, Evasion),
    entry("/etc/systemd/journald.conf", Exact, Evasion),
    entry("/etc/systemd/journald.conf.d/", Prefix, Evasion),
    // The system trust store's sources: a root certificate placed there (and made trusted by
    // update-ca-certificates or update-ca-trust) lets its owner intercept TLS and sign what
    // the machine then trusts (T1553.004). Debian's and Alpine's, Red Hat's, SUSE's and
    // Arch's anchor directories; the packages' own certificates come through the package
    // manager (exempt). The generated bundles are rewritten by the updaters and not watched.
    entry("/usr/local/share/ca-certificates/", Prefix, Evasion),
    entry("/usr/share/ca-certificates/", Prefix, Evasion),
    entry("/etc/pki/ca-trust/source/anchors/", Prefix, Evasion),
    entry("/usr/share/pki/ca-trust-source/anchors/", Prefix, Evasion),
    entry("/etc/pki/trust/anchors/", Prefix, Evasion),
    entry(
        "/etc/ca-certificates/trust-source/anchors/",
        Prefix,
        Evasion,
    ),
    entry(".bash_history", Name, Evasion),
    entry(".zsh_history", Name, Evasion),
    entry(".sh_history", Name, Evasion),
    entry(".ash_history", Name, Evasion),
];

impl Default for SensitivePaths {
    fn default() -> Self {
        Self {
            entries: DEFAULTS
                .iter()
                .map(|&(pattern, kind, category)| SensitivePath {
                    pattern: pattern.to_owned(),
                    kind,
                    category,
                })
                .collect(),
        }
    }
}

impl SensitivePaths {
    /// Reads extra entries from a YAML file (`entries: [{pattern, match, category}]`) and adds
    /// them to the defaults.
    pub fn with_file(mut self, path: &Path) -> Result<Self, SensitivePathsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SensitivePathsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let extra: SensitivePaths =
            serde_yaml::from_str(&text).map_err(|source| SensitivePathsError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        self.entries.extend(extra.entries);
        self.validate()?;
        Ok(self)
    }

    /// Adds one entry (tests, callers with their own configuration).
    pub fn add(
        &mut self,
        pattern: &str,
        kind: MatchKind,
        category: Category,
    ) -> Result<(), SensitivePathsError> {
        self.entries.push(SensitivePath {
            pattern: pattern.to_owned(),
            kind,
            category,
        });
        self.validate()
    }

    /// Adds the persistence directories of each home directory (root's are built in): user
    /// systemd units (`.config/systemd/user/`), XDG autostart entries (`.config/autostart/`),
    /// KDE Plasma's autostart scripts (`.config/autostart-scripts/`) and Vim's plugins
    /// (`.vim/plugin/`).
    /// The kernel matches absolute prefixes, so homes are listed one by one; a user added later
    /// is not covered until the agent restarts. Homes that make a prefix too long for the
    /// kernel, and `/`, are skipped; the set stops growing at [`HOME_DIRS_BOUND`] entries, which
    /// leaves room in the kernel's trie for the agent's files and a `--sensitive-paths` file.
    pub fn with_user_persistence_dirs<I: IntoIterator<Item = PathBuf>>(mut self, homes: I) -> Self {
        for home in homes {
            let Some(home) = home.to_str().map(|h| h.trim_end_matches('/').to_owned()) else {
                continue;
            };
            if home.is_empty() || !home.starts_with('/') {
                continue;
            }
            for dir in HOME_PERSISTENCE_DIRS {
                let pattern = format!("{home}/{dir}");
                if pattern.len() > MAX_PATH_BYTES
                    || self.entries.iter().any(|e| e.pattern == pattern)
                    || self.entries.len() >= HOME_DIRS_BOUND
                {
                    continue;
                }
                self.entries.push(SensitivePath {
                    pattern,
                    kind: Prefix,
                    category: Persist,
                });
            }
        }
        self
    }

    /// Adds the agent's own binary and configuration (a file exactly, a directory as a prefix),
    /// so that the file sensor reports writes to them. Returns the paths added; one too long
    /// for the kernel's map, or not absolute, is left out with a warning.
    pub fn with_agent_files(mut self, files: &[PathBuf]) -> (Self, Vec<PathBuf>) {
        let mut added = Vec::new();
        for file in files {
            let Some(text) = file.to_str() else {
                continue;
            };
            let (pattern, kind) = if file.is_dir() {
                (format!("{}/", text.trim_end_matches('/')), Prefix)
            } else {
                (text.to_owned(), Exact)
            };
            if !pattern.starts_with('/') || pattern.len() > MAX_PATH_BYTES {
                tracing::warn!(path = %file.display(), "the agent's file is not watched: its path is longer than the kernel's 127 bytes");
                continue;
            }
            if !self.entries.iter().any(|e| e.pattern == pattern) {
                self.entries.push(SensitivePath {
                    pattern,
                    kind,
                    category: Category::DefenseEvasion,
                });
            }
            added.push(file.clone());
        }
        (self, added)
    }

    /// Checks every entry against what the kernel maps can hold.
    pub fn validate(&self) -> Result<(), SensitivePathsError> {
        for (index, e) in self.entries.iter().enumerate() {
            let bad = |reason| {
                Err(SensitivePathsError::Invalid {
                    index,
                    pattern: e.pattern.clone(),
                    reason,
                })
            };
            match e.kind {
                Exact | Prefix if !e.pattern.starts_with('/') => {
                    return bad("exact paths and prefixes must be absolute");
                }
                Exact | Prefix if e.pattern.len() > MAX_PATH_BYTES => {
                    return bad("longer than 127 bytes");
                }
                Name if e.pattern.is_empty() || e.pattern.contains('/') => {
                    return bad("a name is one path component, without '/'");
                }
                Name if e.pattern.len() > MAX_NAME_BYTES => {
                    return bad("names are at most 31 bytes");
                }
                _ if e.pattern.contains('\0') => return bad("contains a NUL byte"),
                _ => {}
            }
        }
        Ok(())
    }

    /// LPM trie entries: `(prefix length in bits, key bytes)`. An exact path keeps its NUL so
    /// it cannot match a longer name.
    pub fn trie_entries(&self) -> Vec<(u32, [u8; MAX_PATH_BYTES + 1])> {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, Exact | Prefix) && e.pattern.len() <= MAX_PATH_BYTES)
            .map(|e| {
                let mut key = [0u8; MAX_PATH_BYTES + 1];
                key[..e.pattern.len()].copy_from_slice(e.pattern.as_bytes());
                let bytes = e.pattern.len() + usize::from(e.kind == Exact);
                (bytes as u32 * 8, key)
            })
            .collect()
    }

    /// Hash-set keys for the names, NUL-padded.
    pub fn name_keys(&self) -> Vec<[u8; MAX_NAME_BYTES + 1]> {
        self.entries
            .iter()
            .filter(|e| e.kind == Name && e.pattern.len() <= MAX_NAME_BYTES)
            .map(|e| {
                let mut key = [0u8; MAX_NAME_BYTES + 1];
                key[..e.pattern.len()].copy_from_slice(e.pattern.as_bytes());
                key
            })
            .collect()
    }

    /// The entry an absolute path hits (the longest exact or prefix match, else a name match).
    pub fn classify(&self, path: &Path) -> Option<&SensitivePath> {
        let text = path.to_str()?;
        let name = path.file_name().and_then(|n| n.to_str());
        self.entries
            .iter()
            .filter(|e| match e.kind {
                Exact => e.pattern == text,
                Prefix => text.starts_with(&e.pattern),
                Name => Some(e.pattern.as_str()) == name,
            })
            .max_by_key(|e| if e.kind == Name { 0 } else { e.pattern.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_fit_the_kernel_maps() {
        let set = SensitivePaths::default();
        set.validate().expect("the built-in set is valid");
        assert_eq!(
            set.trie_entries().len() + set.name_keys().len(),
            set.entries.len()
        );
    }

    #[test]
    fn classify_prefers_the_longest_path_match() {
        let set = SensitivePaths::default();
        let hit = |p: &str| {
            set.classify(Path::new(p))
                .map(|e| (e.pattern.as_str(), e.category))
        };
        assert_eq!(
            hit("/etc/passwd"),
            Some(("/etc/passwd", Category::PrivilegeEscalation))
        );
        assert_eq!(
            hit("/etc/passwd-"),
            None,
            "exact paths do not match longer names"
        );
        assert_eq!(
            hit("/etc/sudoers.d/90-evil"),
            Some(("/etc/sudoers.d/", Category::PrivilegeEscalation))
        );
        assert_eq!(
            hit("/home/ann/.ssh/authorized_keys"),
            Some(("authorized_keys", Category::Persistence))
        );
        assert_eq!(
            hit("/root/.bash_history"),
            Some((".bash_history", Category::DefenseEvasion))
        );
        assert_eq!(
            hit("/var/log/auth.log"),
            Some(("/var/log/", Category::DefenseEvasion))
        );
        assert_eq!(
            hit("/usr/local/share/ca-certificates/corp-root.crt"),
            Some((
                "/usr/local/share/ca-certificates/",
                Category::DefenseEvasion
            ))
        );
        assert_eq!(
            hit("/etc/pki/ca-trust/source/anchors/evil.pem"),
            Some((
                "/etc/pki/ca-trust/source/anchors/",
                Category::DefenseEvasion
            ))
        );
        assert_eq!(
            hit("/etc/at.allow"),
            Some(("/etc/at.allow", Category::Persistence))
        );
        assert_eq!(
            hit("/etc/cron.deny"),
            Some(("/etc/cron.deny", Category::Persistence))
        );
        assert_eq!(hit("/etc/at.allow.bak"), None);
        assert_eq!(hit("/tmp/notes.txt"), None);
    }

    #[test]
    fn user_unit_dirs_come_from_home_directories() {
        let dir = std::env::temp_dir().join(format!("vigil-homes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let passwd = dir.join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/bash\nann:x:1000:1000::/home/ann:/bin/bash\n\
             nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\nodd:x:9:9::/:/bin/sh\n",
        )
        .expect("write");
        let homes = home_directories(&passwd);
        assert_eq!(homes, [PathBuf::from("/home/ann"), PathBuf::from("/root")]);
        let set = SensitivePaths::default().with_user_persistence_dirs(homes);
        set.validate().expect("valid");
        let hit = |p: &str| set.classify(Path::new(p)).map(|e| e.category);
        assert_eq!(
            hit("/home/ann/.config/systemd/user/evil.service"),
            Some(Category::Persistence)
        );
        assert_eq!(
            hit("/home/ann/.config/autostart/evil.desktop"),
            Some(Category::Persistence)
        );
        assert_eq!(hit("/home/ann/.config/other/x"), None);
        assert_eq!(
            hit("/home/ann/.config/autostart-scripts/evil.sh"),
            Some(Category::Persistence)
        );
        for root in [
            "/root/.config/systemd/user/",
            "/root/.config/autostart/",
            "/root/.config/autostart-scripts/",
            "/root/.vim/plugin/",
        ] {
            assert_eq!(
                set.entries.iter().filter(|e| e.pattern == root).count(),
                1,
                "root's {root} is built in and not added twice"
            );
        }
        assert!(home_directories(&dir.join("missing")).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn many_homes_leave_room_in_the_kernel_maps() {
        let defaults = SensitivePaths::default();
        assert!(
            defaults.trie_entries().len() < HOME_DIRS_BOUND,
            "the built-in set ({}) leaves room for home directories",
            defaults.trie_entries().len()
        );
        assert!(defaults.name_keys().len() < KERNEL_NAME_ENTRIES);
        // A host with thousands of accounts: the set stops at the bound, every built-in entry
        // is still there, and the agent's files and a file of extra entries still fit.
        let homes = (0..5_000).map(|i| PathBuf::from(format!("/home/user{i}")));
        let set = SensitivePaths::default().with_user_persistence_dirs(homes);
        assert_eq!(set.entries.len(), HOME_DIRS_BOUND);
        assert_eq!(set.entries[..defaults.entries.len()], defaults.entries[..]);
        let (set, _) = set.with_agent_files(&[PathBuf::from("/usr/bin/vigil-node-agent")]);
        assert!(set.trie_entries().len() + 200 < KERNEL_PREFIX_ENTRIES);
        // The directories of a home are added together while there is room.
        let set = SensitivePaths::default().with_user_persistence_dirs([PathBuf::from("/home/bo")]);
        let added: Vec<_> = set.entries[defaults.entries.len()..]
            .iter()
            .map(|e| e.pattern.as_str())
            .collect();
        assert_eq!(
            added,
            [
                "/home/bo/.config/systemd/user/",
                "/home/bo/.config/autostart/",
                "/home/bo/.config/autostart-scripts/",
                "/home/bo/.vim/plugin/"
            ]
        );
    }

    #[test]
    fn exact_entries_keep_their_nul_in_the_trie() {
        let set = SensitivePaths { entries: vec![] };
        let mut set = set;
        set.add("/etc/passwd", Exact, Category::PrivilegeEscalation)
            .expect("valid");
        set.add("/etc/cron.d/", Prefix, Category::Persistence)
            .expect("valid");
        let entries = set.trie_entries();
        assert_eq!(entries[0].0, 12 * 8, "11 bytes of path and its NUL");
        assert_eq!(entries[1].0, 12 * 8, "a prefix has no NUL");
    }

    #[test]
    fn bad_entries_are_named() {
        let mut set = SensitivePaths { entries: vec![] };
        let err = set
            .add("etc/passwd", Exact, Category::Persistence)
            .expect_err("relative");
        assert!(
            err.to_string().contains("entry 0") && err.to_string().contains("absolute"),
            "{err}"
        );
        let mut set = SensitivePaths { entries: vec![] };
        let err = set
            .add("a/b", Name, Category::Persistence)
            .expect_err("slash in a name");
        assert!(err.to_string().contains("one path component"), "{err}");
        let mut set = SensitivePaths { entries: vec![] };
        let long = format!("/{}", "x".repeat(200));
        assert!(set.add(&long, Prefix, Category::Persistence).is_err());
    }

    #[test]
    fn yaml_file_adds_entries_and_reports_errors_with_the_file() {
        let dir = std::env::temp_dir().join(format!("vigil-sensitive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let good = dir.join("good.yaml");
        std::fs::write(&good, "entries:\n  - pattern: /opt/app/secrets/\n    match: prefix\n    category: privilege-escalation\n").expect("write");
        let set = SensitivePaths::default().with_file(&good).expect("loads");
        assert!(set.classify(Path::new("/opt/app/secrets/key")).is_some());
        let bad = dir.join("bad.yaml");
        std::fs::write(
            &bad,
            "entries:\n  - pattern: /x\n    match: sometimes\n    category: persistence\n",
        )
        .expect("write");
        let err = SensitivePaths::default()
            .with_file(&bad)
            .expect_err("bad match kind");
        assert!(
            err.to_string().contains("bad.yaml") && err.to_string().contains("line"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
