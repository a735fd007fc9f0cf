//! One change, one event: the same rename, link, symlink or removal seen by both file sensors.
//!
//! The `file_change` tracepoints report a change in a sensitive directory when the path the
//! process passed names it; fanotify (`file_dirents`) reports every change in the marked
//! directories, whatever path reached them. A plain `mv job /etc/cron.d/job` is seen by both,
//! in either order (two sources, two queues). Each change is keyed by (pid, operation, the
//! real path it changed), and the two sources' records are paired by key: a record whose key
//! has an unpaired record from the other source waiting is that change again and is dropped;
//! otherwise it passes and waits for its pair. Pairing is by count, never by time: whichever
//! source comes first passes, the other is dropped, and a change seen by one source only
//! passes once. The table is bounded; the oldest unpaired entries are shed first (counted).

use std::{
    collections::{HashMap, VecDeque},
    path::{Path, PathBuf},
};

use crate::{event::FileInfo, sensitive::SensitivePaths, tracked::TrackedTable};

/// Unpaired changes kept at most.
pub const MAX_PENDING: usize = 4_096;

/// Which sensor a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The syscall tracepoints (`file_change`).
    Kernel,
    /// fanotify (`file_dirents`).
    Dirents,
}

/// What identifies one change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChangeKey {
    /// The acting process.
    pub pid: u32,
    /// `rename`, `link`, `symlink`, `unlink`, `chmod`, `chown`.
    pub operation: &'static str,
    /// The real path changed: the new name of a rename or link when the sensitive-path set
    /// names it, else the old name; the name a symlink or unlink made or removed.
    pub path: PathBuf,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Unpaired records, by source (kernel, dirents).
    unpaired: [u32; 2],
    /// Insertion number, to tell a live entry from a stale place in the order.
    seq: u64,
}

/// The pairing table.
#[derive(Debug)]
pub struct ChangePairs {
    sensitive: SensitivePaths,
    /// Directories as the sensitive-path set names them, with their real paths.
    aliases: Vec<(PathBuf, PathBuf)>,
    pending: HashMap<ChangeKey, Pending>,
    order: VecDeque<(u64, ChangeKey)>,
    seq: u64,
    max: usize,
    shed: u64,
    duplicates: u64,
}

impl ChangePairs {
    /// A table for `sensitive`, with the aliases of its directories (see
    /// [`crate::sensor::dirents::DirentWatch::aliases`]).
    pub fn new(sensitive: SensitivePaths, aliases: Vec<(PathBuf, PathBuf)>) -> Self {
        Self::with_bound(sensitive, aliases, MAX_PENDING)
    }

    /// The same, holding at most `max` unpaired changes.
    pub fn with_bound(
        sensitive: SensitivePaths,
        aliases: Vec<(PathBuf, PathBuf)>,
        max: usize,
    ) -> Self {
        Self {
            sensitive,
            aliases,
            pending: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            max: max.max(1),
            shed: 0,
            duplicates: 0,
        }
    }

    /// The real path of a path made absolute from a string: a directory alias replaced by the
    /// directory it is.
    fn real(&self, path: &Path) -> PathBuf {
        for (alias, real) in &self.aliases {
            if let Ok(rest) = path.strip_prefix(alias) {
                return real.join(rest);
            }
        }
        path.to_owned()
    }

    /// The key of a file record, `None` for what only one sensor reports (opens, failed calls).
    pub fn key(&self, f: &FileInfo) -> Option<ChangeKey> {
        if f.ret < 0 {
            return None;
        }
        let sensitive = |p: &Option<PathBuf>| {
            p.as_deref()
                .filter(|p| self.sensitive.classify(&self.real(p)).is_some())
                .map(|p| self.real(p))
        };
        let path = match f.operation {
            "rename" => sensitive(&f.resolved_path2).or_else(|| sensitive(&f.resolved_path)),
            "link" => f.resolved_path2.as_deref().map(|p| self.real(p)),
            "symlink" | "unlink" | "chmod" | "chown" => {
                f.resolved_path.as_deref().map(|p| self.real(p))
            }
            _ => None,
        }?;
        Some(ChangeKey {
            pid: f.process.pid,
            operation: f.operation,
            path,
        })
    }

    /// Whether the record from `source` is a change not yet reported (true: pass it on) or
    /// the other sensor's record of one already reported (false: drop it).
    pub fn admit(&mut self, f: &FileInfo, source: Source) -> bool {
        let Some(key) = self.key(f) else {
            return true;
        };
        let (mine, other) = match source {
            Source::Kernel => (0, 1),
            Source::Dirents => (1, 0),
        };
        if let Some(p) = self.pending.get_mut(&key) {
            if p.unpaired[other] > 0 {
                p.unpaired[other] -= 1;
                if p.unpaired == [0, 0] {
                    self.pending.remove(&key);
                }
                self.duplicates += 1;
                return false;
            }
            p.unpaired[mine] = p.unpaired[mine].saturating_add(1);
            return true;
        }
        while self.pending.len() >= self.max {
            let Some((seq, old)) = self.order.pop_front() else {
                break;
            };
            if self.pending.get(&old).is_some_and(|p| p.seq == seq) {
                self.pending.remove(&old);
                self.shed += 1;
            }
        }
        self.seq += 1;
        let mut unpaired = [0, 0];
        unpaired[mine] = 1;
        self.pending.insert(
            key.clone(),
            Pending {
                unpaired,
                seq: self.seq,
            },
        );
        self.order.push_back((self.seq, key));
        if self.order.len() > 2 * self.max {
            let pending = &self.pending;
            self.order
                .retain(|(seq, k)| pending.get(k).is_some_and(|p| p.seq == *seq));
        }
        true
    }

    /// Records dropped as the other sensor's copy of a change.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The table against its bound.
    pub fn tracked(&self) -> TrackedTable {
        TrackedTable::by_entries(
            "fileChangePairs",
            self.pending.len() as u64,
            self.max as u64,
            self.shed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ProcessRef;

    fn change(pid: u32, operation: &'static str, from: Option<&str>, to: Option<&str>) -> FileInfo {
        FileInfo {
            time: String::new(),
            process: ProcessRef {
                pid,
                ..ProcessRef::default()
            },
            operation,
            path: from.unwrap_or_default().to_owned(),
            resolved_path: from.map(PathBuf::from),
            path2: to.map(str::to_owned),
            resolved_path2: to.map(PathBuf::from),
            ret: 0,
            error: None,
            open_flags: None,
            mode: None,
            owner: None,
            inode: None,
            matched_by: Vec::new(),
            proc_mem_pid: None,
            sysctl_value: None,
            sysctl_setting: None,
            sysctl_by_hook: false,
            git_config: None,
            sysctl_file: None,
            accounts_changed: None,
            hashes_owner: None,
            program_written: None,
            written_by: None,
            truncated: false,
        }
    }

    fn pairs() -> ChangePairs {
        ChangePairs::new(
            SensitivePaths::default(),
            vec![(
                PathBuf::from("/lib/systemd/system"),
                PathBuf::from("/usr/lib/systemd/system"),
            )],
        )
    }

    #[test]
    fn one_change_passes_once_whichever_sensor_comes_first() {
        let kernel = change(7, "rename", Some("/tmp/job"), Some("/etc/cron.d/job"));
        // fanotify does not know the old name of a file moved in from an unmarked directory.
        let dirent = change(7, "rename", None, Some("/etc/cron.d/job"));
        for first_kernel in [true, false] {
            let mut p = pairs();
            let (a, b) = if first_kernel {
                ((&kernel, Source::Kernel), (&dirent, Source::Dirents))
            } else {
                ((&dirent, Source::Dirents), (&kernel, Source::Kernel))
            };
            assert!(p.admit(a.0, a.1));
            assert!(!p.admit(b.0, b.1), "the second copy is dropped");
            assert_eq!(p.duplicates(), 1);
            assert_eq!(p.tracked().entries, 0, "a paired change leaves nothing");
            // The same change made again is a new change.
            assert!(p.admit(b.0, b.1));
            assert!(!p.admit(a.0, a.1));
        }
    }

    #[test]
    fn changes_seen_by_one_sensor_pass_every_time() {
        let mut p = pairs();
        // Through a symbolic link to the directory: fanotify only, twice.
        let dirent = change(9, "link", None, Some("/etc/cron.d/x"));
        assert!(p.admit(&dirent, Source::Dirents));
        assert!(p.admit(&dirent, Source::Dirents));
        // Then the kernel's copies of both arrive late: each pairs with one.
        let kernel = change(9, "link", Some("/tmp/x"), Some("/etc/cron.d/x"));
        assert!(!p.admit(&kernel, Source::Kernel));
        assert!(!p.admit(&kernel, Source::Kernel));
        assert!(
            p.admit(&kernel, Source::Kernel),
            "a third is a third change"
        );
        // Another process, another operation, or another file is another change.
        assert!(p.admit(
            &change(10, "link", None, Some("/etc/cron.d/x")),
            Source::Dirents
        ));
        assert!(p.admit(
            &change(9, "unlink", Some("/etc/cron.d/x"), None),
            Source::Dirents
        ));
    }

    #[test]
    fn keys_use_the_real_directory_and_the_sensitive_name() {
        let p = pairs();
        let kernel = change(
            1,
            "rename",
            Some("/tmp/u"),
            Some("/lib/systemd/system/evil.service"),
        );
        assert_eq!(
            p.key(&kernel).map(|k| k.path),
            Some(PathBuf::from("/usr/lib/systemd/system/evil.service"))
        );
        // A file moved out: the old name is the sensitive one, for both sensors.
        let out = change(1, "rename", Some("/etc/passwd"), Some("/etc/passwd.bak"));
        assert_eq!(
            p.key(&out).map(|k| k.path),
            Some(PathBuf::from("/etc/passwd"))
        );
        let failed = FileInfo {
            ret: -2,
            ..change(1, "unlink", Some("/etc/cron.d/x"), None)
        };
        assert_eq!(p.key(&failed), None, "a failed call changed nothing");
        assert_eq!(
            p.key(&change(1, "openWrite", Some("/etc/passwd"), None)),
            None
        );
        assert_eq!(
            p.key(&change(
                1,
                "chmod",
                Some("/lib/systemd/system/x.service"),
                None
            ))
            .map(|k| k.path),
            Some(PathBuf::from("/usr/lib/systemd/system/x.service"))
        );
    }

    #[test]
    fn the_table_is_bounded_and_sheds_the_oldest() {
        let mut p = ChangePairs::with_bound(SensitivePaths::default(), Vec::new(), 3);
        for i in 0..10 {
            let path = format!("/etc/cron.d/{i}");
            assert!(p.admit(&change(1, "unlink", Some(&path), None), Source::Kernel));
        }
        let t = p.tracked();
        assert_eq!((t.entries, t.max_entries, t.shed), (3, 3, 7));
        assert!(t.within_bounds());
        // The newest are still paired; the shed one passes again.
        assert!(!p.admit(
            &change(1, "unlink", Some("/etc/cron.d/9"), None),
            Source::Dirents
        ));
        assert!(p.admit(
            &change(1, "unlink", Some("/etc/cron.d/0"), None),
            Source::Dirents
        ));
        assert!(p.order.len() <= 2 * 3 + 1);
    }
}
