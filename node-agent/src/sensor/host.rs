//! Host preparation: privileges, RLIMIT_MEMLOCK, tracefs, and the cgroup v2 mount.

use std::{
    ffi::CString,
    fs, io,
    path::{Path, PathBuf},
};

use super::SensorError;

/// Where tracefs lives on current kernels.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// A host set-up step failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// tracefs is not mounted and mounting it failed.
    #[error(
        "tracefs is not mounted at {TRACEFS} and mounting it failed ({source}); the sensors on \
         syscall tracepoints (connect, accept, files, kernel activity) need it. Mount it \
         yourself with `mount -t tracefs nodev {TRACEFS}`, or in a container give the agent \
         CAP_SYS_ADMIN or a host mount of {TRACEFS}."
    )]
    Tracefs {
        /// The mount(2) error.
        #[source]
        source: io::Error,
    },
    /// tracefs is mounted, but this process may not look inside it (it is root's, mode 0700).
    #[error(
        "tracefs at {TRACEFS} cannot be read ({source}): it is mounted, but only root may look \
         inside it, and the sensors on syscall tracepoints (connect, accept, files, kernel \
         activity) find their tracepoints there. Run the agent as root, or grant it \
         CAP_DAC_READ_SEARCH (docs/SENSORS.md, \"Privileges\")."
    )]
    TracefsUnreadable {
        /// The error of looking inside.
        #[source]
        source: io::Error,
    },
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Capability bits (from `linux/capability.h`).
pub const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// This process's effective capabilities (`CapEff` of `/proc/self/status`; 0 when unreadable).
fn effective_capabilities() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// Whether this process has the capability `cap` in its effective set (root in a container
/// may lack some).
pub fn has_capability(cap: u32) -> bool {
    cap < 64 && effective_capabilities() & (1u64 << cap) != 0
}

/// The host's root directory as this process reaches it: `<proc_root>/1/root` when that is a
/// root other than this process's own (an agent in a container of its own, with the host's
/// pid namespace and `/proc` mounted at `proc_root`), else `/`.
pub fn host_root(proc_root: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let init_root = proc_root.join("1/root");
    let id = |p: &Path| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (id(&init_root), id(Path::new("/"))) {
        (Some(theirs), Some(ours)) if theirs != ours => init_root,
        _ => PathBuf::from("/"),
    }
}

/// Fails early, with the fix, when the process plainly cannot load eBPF.
pub fn check_privileges() -> Result<(), SensorError> {
    let euid = euid();
    if euid == 0 {
        return Ok(());
    }
    let cap_eff = effective_capabilities();
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    Err(SensorError::NotPermitted {
        euid,
        detail: format!("effective capabilities {cap_eff:#x}"),
    })
}

/// The size of a memory page (a ring buffer's smallest size).
pub fn page_size() -> usize {
    // SAFETY: no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// `uname -r`.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Raises RLIMIT_MEMLOCK for kernels before 5.11, which charge maps against it. Returns the
/// warning when that was refused: harmless on newer kernels, which use memory cgroups instead.
pub fn raise_memlock() -> Option<String> {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit struct is passed by pointer.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
    if rc == 0 {
        None
    } else {
        Some(format!(
            "setrlimit(RLIMIT_MEMLOCK, infinity) failed: {}",
            io::Error::last_os_error()
        ))
    }
}

/// Mounts tracefs at [`TRACEFS`] when it is not there. Returns whether this call mounted it.
pub fn ensure_tracefs() -> Result<bool, HostError> {
    match fs::metadata(Path::new(TRACEFS).join("events")) {
        Ok(m) if m.is_dir() => return Ok(false),
        // Mounted but closed to this process: mounting again would only fail, and confuse.
        Err(source) if source.kind() == io::ErrorKind::PermissionDenied => {
            return Err(HostError::TracefsUnreadable { source });
        }
        _ => {}
    }
    // Older set-ups expose it under debugfs only.
    if Path::new("/sys/kernel/debug/tracing/events").is_dir() {
        return Ok(false);
    }
    let source = CString::new("nodev").map_err(|e| HostError::Tracefs {
        source: io::Error::other(e),
    })?;
    let target = CString::new(TRACEFS).map_err(|e| HostError::Tracefs {
        source: io::Error::other(e),
    })?;
    let fstype = CString::new("tracefs").map_err(|e| HostError::Tracefs {
        source: io::Error::other(e),
    })?;
    // SAFETY: NUL-terminated strings live across the call; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(HostError::Tracefs {
            source: io::Error::last_os_error(),
        });
    }
    tracing::info!(path = TRACEFS, "mounted tracefs");
    Ok(true)
}

/// The cgroup v2 mount point: `/sys/fs/cgroup` on pure v2 hosts, `/sys/fs/cgroup/unified` on
/// hybrid ones, whatever `/proc/self/mountinfo` says elsewhere.
pub fn cgroup2_root() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup2_from_mountinfo(&mountinfo)
}

/// Parses `/proc/self/mountinfo` for the first cgroup2 mount.
pub fn cgroup2_from_mountinfo(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // Fields: id parent major:minor root mount-point options [optional...] - fstype source super
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        let mount_point = left.split_whitespace().nth(4)?;
        Some(PathBuf::from(unescape_mount_path(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(path: &str) -> String {
    path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_on_hybrid_and_pure_v2_hosts() {
        let hybrid = "\
25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        assert_eq!(
            cgroup2_from_mountinfo(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure = "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            cgroup2_from_mountinfo(pure),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let none = "27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        assert_eq!(cgroup2_from_mountinfo(none), None);
        let spaced = r"40 1 0:30 / /mnt/my\040cg rw - cgroup2 none rw";
        assert_eq!(
            cgroup2_from_mountinfo(spaced),
            Some(PathBuf::from("/mnt/my cg"))
        );
    }

    #[test]
    fn this_host_has_a_cgroup2_mount() {
        let root = cgroup2_root().expect("this machine mounts cgroup v2 (hybrid or pure)");
        assert!(
            root.join("cgroup.procs").exists(),
            "{} has no cgroup.procs",
            root.display()
        );
    }
}
