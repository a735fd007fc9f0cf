//! Programs whose file is deleted while they run, from a memory-backed or world-writable
//! directory (`cp x /tmp/s; /tmp/s & rm /tmp/s`, a dropper that starts its payload and removes
//! it): the exec record shows a file on disk, and the removal happens in a directory the file
//! sensors do not watch. What runs is then left only in memory.
//!
//! Each process exec'd from one of those directories (the built-in rules' `memoryExecDirs` and
//! `worldWritableExecDirs`, decided by the pipeline) is remembered with the inode the kernel
//! exec'd, until it execs again or exits. At most every [`POLL_EVERY`] the table is checked
//! against what the kernel holds: `/proc/<pid>/exe` leads to the running inode itself, whatever
//! its name says (a file may be named `x (deleted)`), and a link count of 0 means no directory
//! holds it any more. Such a process is reported once. Files deleted and recreated under the
//! same name are a different inode: the running one still counts as deleted.
//!
//! Only these directories are watched: a package upgrade replaces installed programs while
//! they run (their old inodes have no links either), and nothing is installed in `/tmp`.
//! The table holds live processes only and is bounded ([`MAX_WATCHED`]); past the bound new
//! processes are not watched and are counted (`shed` of the `deletedExecutables` table). A
//! process that deletes its file and exits before the next check is not seen.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// The inode a process runs and its link count, through `/proc/<pid>/exe` under `proc_root`.
pub fn running_inode(proc_root: &Path, pid: u32) -> Option<(u64, u64)> {
    std::fs::metadata(proc_root.join(pid.to_string()).join("exe"))
        .ok()
        .map(|m| (m.ino(), m.nlink()))
}

/// Processes watched at most.
pub const MAX_WATCHED: usize = 1_024;

/// How often the watched processes' executables are checked.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// A watched process: the image it exec'd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// The process's start time (boot ns), with its pid its identity.
    pub start_time_ns: u64,
    /// The executable's path as resolved at exec.
    pub exe: PathBuf,
    /// The inode the kernel exec'd.
    pub ino: u64,
}

/// The watch table.
#[derive(Debug, Default)]
pub struct DeletionWatch {
    by_pid: crate::PidMap<u32, Watched>,
    shed: u64,
    last_poll: Option<Instant>,
}

impl DeletionWatch {
    /// An exec: watched when `watch` (its file is in one of the directories), otherwise a
    /// process that was watched runs another image now.
    pub fn on_exec(&mut self, pid: u32, watched: Option<Watched>) {
        match watched {
            Some(w) if w.ino != 0 => {
                if self.by_pid.len() >= MAX_WATCHED && !self.by_pid.contains_key(&pid) {
                    self.shed += 1;
                    return;
                }
                self.by_pid.insert(pid, w);
            }
            _ => {
                if !self.by_pid.is_empty() {
                    self.by_pid.remove(&pid);
                }
            }
        }
    }

    /// A process ended.
    pub fn on_exit(&mut self, pid: u32) {
        if !self.by_pid.is_empty() {
            self.by_pid.remove(&pid);
        }
    }

    /// The watched processes whose executable has no link left, each reported once; processes
    /// gone or running another inode are forgotten. Does nothing until [`POLL_EVERY`] has
    /// passed since the last check. `running`: a pid's running inode and its link count
    /// (`None`: the process is gone), [`running_inode`] or the hash cache's careful version.
    pub fn poll(
        &mut self,
        now: Instant,
        running: impl FnMut(u32) -> Option<(u64, u64)>,
    ) -> Vec<(u32, Watched)> {
        if self.by_pid.is_empty()
            || self
                .last_poll
                .is_some_and(|t| now.duration_since(t) < POLL_EVERY)
        {
            return Vec::new();
        }
        self.last_poll = Some(now);
        self.check(running)
    }

    /// [`DeletionWatch::poll`]'s decision.
    fn check(&mut self, mut running: impl FnMut(u32) -> Option<(u64, u64)>) -> Vec<(u32, Watched)> {
        let mut deleted = Vec::new();
        self.by_pid.retain(|&pid, w| match running(pid) {
            Some((ino, links)) if ino == w.ino => {
                if links == 0 {
                    deleted.push((pid, w.clone()));
                    false
                } else {
                    true
                }
            }
            _ => false,
        });
        deleted.sort_unstable_by_key(|(pid, _)| *pid);
        deleted
    }

    /// The table's size and bound, for the agent's health.
    pub fn tracked(&self) -> crate::tracked::TrackedTable {
        crate::tracked::TrackedTable::by_entries(
            "deletedExecutables",
            self.by_pid.len() as u64,
            MAX_WATCHED as u64,
            self.shed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(ino: u64) -> Option<Watched> {
        Some(Watched {
            start_time_ns: 1,
            exe: PathBuf::from("/tmp/s"),
            ino,
        })
    }

    #[test]
    fn a_watched_inode_without_links_is_reported_once_and_others_are_forgotten() {
        let mut w = DeletionWatch::default();
        w.on_exec(10, watched(100)); // deleted
        w.on_exec(11, watched(101)); // still linked
        w.on_exec(12, watched(102)); // gone
        w.on_exec(13, watched(103)); // runs another inode now (missed re-exec)
        w.on_exec(14, watched(104));
        w.on_exec(14, None); // exec'd something outside the directories
        let running = |pid| match pid {
            10 => Some((100, 0)),
            11 => Some((101, 1)),
            13 => Some((999, 0)),
            14 => Some((104, 0)),
            _ => None,
        };
        let found = w.check(running);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 10);
        assert_eq!(found[0].1.exe, Path::new("/tmp/s"));
        assert!(w.check(running).is_empty(), "reported once");
        assert_eq!(w.tracked().entries, 1, "only the linked one is left");
        w.on_exit(11);
        assert_eq!(w.tracked().entries, 0);
    }

    #[test]
    fn the_table_is_bounded_and_counts_what_it_could_not_watch() {
        let mut w = DeletionWatch::default();
        for pid in 0..(MAX_WATCHED as u32 + 5) {
            w.on_exec(pid, watched(u64::from(pid) + 1));
        }
        let t = w.tracked();
        assert_eq!(t.entries, MAX_WATCHED as u64);
        assert_eq!(t.shed, 5);
        // A watched pid exec'ing again is replaced in place, not refused.
        w.on_exec(0, watched(7));
        assert_eq!(w.tracked().shed, 5);
        // An unknown inode is not watched (the kernel could not read the exe).
        w.on_exit(1);
        w.on_exec(1, watched(0));
        assert_eq!(w.tracked().entries, MAX_WATCHED as u64 - 1);
    }

    #[test]
    fn nothing_is_read_before_the_poll_interval() {
        let mut w = DeletionWatch::default();
        w.on_exec(u32::MAX, watched(5));
        let now = Instant::now();
        let proc = |pid| running_inode(Path::new("/proc"), pid);
        // No such process: forgotten on the first poll.
        assert!(w.poll(now, proc).is_empty());
        assert_eq!(w.tracked().entries, 0);
        w.on_exec(u32::MAX, watched(5));
        assert!(w.poll(now, proc).is_empty());
        assert_eq!(
            w.tracked().entries,
            1,
            "not checked again within the interval"
        );
        assert!(w.poll(now + POLL_EVERY, proc).is_empty());
        assert_eq!(w.tracked().entries, 0);
        // This process: its executable is linked.
        let me = std::process::id();
        let (ino, links) = proc(me).expect("our own executable");
        assert!(links > 0);
        w.on_exec(me, watched(ino));
        assert!(w.poll(now + POLL_EVERY * 2, proc).is_empty());
        assert_eq!(w.tracked().entries, 1, "still watched while it runs linked");
    }
}
