//! Killing the process behind a finding, and only that process.
//!
//! The finding names its process by pid and by a uuid built from the boot id, the pid and the
//! start time the kernel recorded (`proctable::process_uuid`). Before signalling, the process
//! now at that pid is pinned with a pidfd and its start time read from `/proc`: when the uuid
//! does not match, the pid belongs to a later process and nothing is sent. Signalling through
//! the pidfd closes the race between the check and the kill: if the pinned process exits and
//! its pid is reused after the check, the signal goes nowhere (`ESRCH`) instead of to the new
//! process. The agent itself, pid 1 and pid 0 are never killed.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

use crate::proctable;

/// What the kill action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// SIGKILL was delivered to the process.
    Killed,
    /// Dry run: the process is the one of the finding and would have been killed.
    WouldKill,
    /// The process had already exited.
    Gone,
    /// The pid now belongs to another process (a later start time): left alone.
    NotSameProcess {
        /// The start time of the process now at the pid, ns since boot.
        found_start_ns: u64,
    },
    /// Never killed: the reason (pid 0 or 1, the agent itself, no process identity).
    Refused(&'static str),
}

/// The kill could not be attempted.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// `pidfd_open` or `pidfd_send_signal` failed for another reason than the process being gone.
    #[error("cannot signal pid {pid}: {source}")]
    Signal {
        /// The pid.
        pid: u32,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `/proc/<pid>/stat` could not be read or parsed.
    #[error("cannot read the start time of pid {pid}: {source}")]
    StartTime {
        /// The pid.
        pid: u32,
        /// The error.
        #[source]
        source: proctable::ProcTableError,
    },
}

/// Whether the process that started at `observed_start_ns` with pid `pid` is the one named by
/// `uuid` (the finding's `process.uuid`).
pub fn same_process(boot_id: &str, pid: u32, uuid: &str, observed_start_ns: u64) -> bool {
    !uuid.is_empty() && proctable::process_uuid(boot_id, pid, observed_start_ns) == uuid
}

fn is_gone(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ESRCH)
}

/// Kills the process `pid` if it is still the process `uuid`; in `dry_run` only checks.
/// `proc_root` is the host's `/proc` (a host mount inside a container).
pub fn kill_process(
    proc_root: &Path,
    boot_id: &str,
    pid: u32,
    uuid: &str,
    dry_run: bool,
) -> Result<KillOutcome, KillError> {
    if pid <= 1 {
        return Ok(KillOutcome::Refused("pid 0 and 1 are never killed"));
    }
    if pid == std::process::id() {
        return Ok(KillOutcome::Refused("the agent never kills itself"));
    }
    if uuid.is_empty() {
        return Ok(KillOutcome::Refused(
            "the finding has no process identity (uuid) to check the pid against",
        ));
    }
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if is_gone(&e) => return Ok(KillOutcome::Gone),
        Err(source) => return Err(KillError::Signal { pid, source }),
    };
    let start = match proctable::read_start_time_ns(proc_root, pid) {
        Ok(start) => start,
        Err(proctable::ProcTableError::Read { source, .. })
            if source.kind() == io::ErrorKind::NotFound =>
        {
            return Ok(KillOutcome::Gone);
        }
        Err(source) => return Err(KillError::StartTime { pid, source }),
    };
    if !same_process(boot_id, pid, uuid, start) {
        return Ok(KillOutcome::NotSameProcess {
            found_start_ns: start,
        });
    }
    if dry_run {
        return Ok(KillOutcome::WouldKill);
    }
    match pidfd_send_signal(&pidfd, libc::SIGKILL) {
        Ok(()) => Ok(KillOutcome::Killed),
        Err(e) if is_gone(&e) => Ok(KillOutcome::Gone),
        Err(source) => Err(KillError::Signal { pid, source }),
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{os::unix::process::ExitStatusExt, process::Command};

    use super::*;

    const BOOT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    #[test]
    fn a_later_process_with_the_same_pid_is_not_the_same() {
        let tick = 1_000_000_000 / proctable::clock_ticks_per_second();
        let uuid = proctable::process_uuid(BOOT, 4242, 1_000 * tick);
        assert!(same_process(BOOT, 4242, &uuid, 1_000 * tick));
        // The same pid, started later: a recycled pid.
        assert!(!same_process(BOOT, 4242, &uuid, 5_000 * tick));
        // Another pid with the same start.
        assert!(!same_process(BOOT, 4243, &uuid, 1_000 * tick));
        // No identity never matches.
        assert!(!same_process(BOOT, 4242, "", 1_000 * tick));
    }

    #[test]
    fn the_process_of_the_finding_is_killed_and_a_pid_reuser_is_not() {
        let boot = proctable::read_boot_id().unwrap_or_else(|_| BOOT.to_owned());
        let proc_root = Path::new("/proc");
        let mut child = Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let start = proctable::read_start_time_ns(proc_root, pid).expect("start time");
        let tick = 1_000_000_000 / proctable::clock_ticks_per_second();
        // The finding was about an earlier process that had this pid: nothing is sent.
        let earlier = proctable::process_uuid(&boot, pid, start.saturating_sub(100 * tick));
        let outcome = kill_process(proc_root, &boot, pid, &earlier, false).expect("check");
        assert_eq!(
            outcome,
            KillOutcome::NotSameProcess {
                found_start_ns: start
            }
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the reuser still runs"
        );
        // Dry run checks and leaves it.
        let uuid = proctable::process_uuid(&boot, pid, start);
        assert_eq!(
            kill_process(proc_root, &boot, pid, &uuid, true).expect("dry run"),
            KillOutcome::WouldKill
        );
        assert!(child.try_wait().expect("try_wait").is_none());
        // The process itself is killed, and is gone.
        assert_eq!(
            kill_process(proc_root, &boot, pid, &uuid, false).expect("kill"),
            KillOutcome::Killed
        );
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: the pid is free (or already another process's, which is not killed).
        assert!(matches!(
            kill_process(proc_root, &boot, pid, &uuid, false).expect("again"),
            KillOutcome::Gone | KillOutcome::NotSameProcess { .. }
        ));
    }

    #[test]
    fn the_agent_and_init_are_never_killed() {
        assert!(matches!(
            kill_process(Path::new("/proc"), BOOT, 1, "x", false),
            Ok(KillOutcome::Refused(_))
        ));
        assert!(matches!(
            kill_process(Path::new("/proc"), BOOT, std::process::id(), "x", false),
            Ok(KillOutcome::Refused(_))
        ));
    }
}
