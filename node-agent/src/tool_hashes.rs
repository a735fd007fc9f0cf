//! The SHA-256 of the programs the exec rules and the behaviour lists name, as installed on this host, so that a
//! renamed or copied tool (`cp /usr/bin/socat /tmp/x`) or a hard link to one is still that tool
//! (issue 11, item 3). Computed once at start from the system program directories, bounded in
//! files and bytes; the detector matches every exec's hash against them
//! (`Detector::with_tool_hashes`).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

use sha2::{Digest as _, Sha256};

use crate::exe_hash::Digest;

/// Where installed programs are looked for, in order.
pub const PROGRAM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];
/// At most this many distinct files are hashed.
pub const MAX_FILES: usize = 256;
/// Files larger than this are not hashed (64 MiB).
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;
/// At most this many bytes are read in all (512 MiB).
pub const MAX_TOTAL_BYTES: u64 = 512 * 1024 * 1024;
/// A file that more names lead to is a multi-call binary (busybox, toybox): its bytes say
/// nothing about which program runs, so it is left out.
pub const MULTI_CALL_NAMES: usize = 4;

/// What [`installed`] found.
#[derive(Debug, Default)]
pub struct ToolHashes {
    /// Each installed program's SHA-256 with the name a rule knows it by.
    pub by_digest: HashMap<Digest, String>,
    /// Files left out: multi-call binaries, files over the size or count bounds, unreadable.
    pub skipped: usize,
}

/// Hashes the programs called `names` found in `dirs` (symbolic links followed: `nc` is often a
/// link to `nc.openbsd`), and the versioned programs of those names (`python3.11`, `perl5.36.0`,
/// `php8.2` for `python`, `perl`, `php`: a list names a program once, for every version). Several
/// names leading to one file share it; more than [`MULTI_CALL_NAMES`] make it a multi-call
/// binary, which is skipped. A file is known by a name that leads to it exactly when one does
/// (a rule's `python3`), else by the versioned program's list name.
pub fn installed<'a>(names: impl IntoIterator<Item = &'a str>, dirs: &[&Path]) -> ToolHashes {
    let wanted: BTreeSet<&str> = names.into_iter().collect();
    // Each file with the names that lead to it exactly, and the names of its versions.
    let mut files: BTreeMap<PathBuf, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for dir in dirs {
        for name in &wanted {
            if let Ok(real) = std::fs::canonicalize(dir.join(name))
                && real.is_file()
            {
                files.entry(real).or_default().0.insert((*name).to_owned());
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.take(MAX_DIR_ENTRIES).flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let program = without_version(file_name);
            if program.len() == file_name.len() || !wanted.contains(program) {
                continue;
            }
            if let Ok(real) = std::fs::canonicalize(entry.path())
                && real.is_file()
            {
                files.entry(real).or_default().1.insert(program.to_owned());
            }
        }
    }
    let mut out = ToolHashes::default();
    let mut total = 0u64;
    let mut hashed = 0usize;
    for (path, (exact, versioned)) in files {
        let size = std::fs::metadata(&path)
            .map(|m| m.len())
            .unwrap_or(u64::MAX);
        if exact.len() > MULTI_CALL_NAMES
            || size > MAX_FILE_SIZE
            || hashed >= MAX_FILES
            || total.saturating_add(size) > MAX_TOTAL_BYTES
        {
            out.skipped += 1;
            continue;
        }
        let Some(digest) = sha256(&path) else {
            out.skipped += 1;
            continue;
        };
        hashed += 1;
        total += size;
        // The first name in order: every name of one file is in the same rules' lists.
        if let Some(name) = exact
            .into_iter()
            .next()
            .or_else(|| versioned.into_iter().next())
        {
            out.by_digest.entry(digest).or_insert(name);
        }
    }
    out
}

/// Entries read from one program directory at most while looking for versioned programs
/// (a distribution's `/usr/bin` holds a few thousand).
pub const MAX_DIR_ENTRIES: usize = 65_536;

/// A program's name without a version suffix (`python3.11`: `python`), as the detector's lists
/// name programs (`detect::technique::program_name`).
fn without_version(file_name: &str) -> &str {
    file_name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
}

/// [`installed`] over [`PROGRAM_DIRS`].
pub fn installed_on_host<'a>(names: impl IntoIterator<Item = &'a str>) -> ToolHashes {
    let dirs: Vec<&Path> = PROGRAM_DIRS.iter().map(Path::new).collect();
    installed(names, &dirs)
}

fn sha256(path: &Path) -> Option<Digest> {
    let mut file = File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(Digest(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// Each program found, by the name it is known by.
    fn by_name(found: &ToolHashes) -> BTreeMap<&str, Digest> {
        found
            .by_digest
            .iter()
            .map(|(d, n)| (n.as_str(), *d))
            .collect()
    }

    #[test]
    fn programs_by_content_links_followed_and_multi_call_binaries_left_out() {
        let dir = std::env::temp_dir().join(format!("vigil-tool-hashes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("nc.openbsd"), b"netcat bytes").unwrap();
        symlink(dir.join("nc.openbsd"), dir.join("nc")).unwrap();
        std::fs::write(dir.join("socat"), b"socat bytes").unwrap();
        std::fs::write(dir.join("busybox"), b"busybox bytes").unwrap();
        for applet in ["sh", "wget", "telnet", "ash", "httpd"] {
            symlink(dir.join("busybox"), dir.join(applet)).unwrap();
        }
        let names = [
            "nc",
            "nc.openbsd",
            "socat",
            "nmap",
            "sh",
            "wget",
            "telnet",
            "ash",
            "httpd",
        ];
        let found = installed(names, &[dir.as_path()]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            by_name(&found),
            BTreeMap::from([
                ("nc", Digest::of(b"netcat bytes")),
                ("socat", Digest::of(b"socat bytes")),
            ])
        );
        assert_eq!(found.skipped, 1, "busybox, reached by five names");
    }

    #[test]
    fn versioned_programs_are_known_by_their_list_name_unless_a_name_leads_to_them() {
        let dir = std::env::temp_dir().join(format!("vigil-tool-versions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("python3.11"), b"python bytes").unwrap();
        symlink(dir.join("python3.11"), dir.join("python3")).unwrap();
        std::fs::write(dir.join("perl5.36.0"), b"perl bytes").unwrap();
        std::fs::write(dir.join("php8.2"), b"php bytes").unwrap();
        // No list names ruby.
        std::fs::write(dir.join("ruby3.1"), b"ruby bytes").unwrap();
        std::fs::write(dir.join("bash"), b"bash bytes").unwrap();
        // Not a version of a listed program.
        std::fs::write(dir.join("perlbug"), b"perlbug bytes").unwrap();
        let found = installed(
            ["python", "python3", "perl", "php", "bash"],
            &[dir.as_path()],
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            by_name(&found),
            BTreeMap::from([
                // `python3` leads to the file exactly: the rules' name wins over the list's.
                ("python3", Digest::of(b"python bytes")),
                ("perl", Digest::of(b"perl bytes")),
                ("php", Digest::of(b"php bytes")),
                ("bash", Digest::of(b"bash bytes")),
            ])
        );
        assert_eq!(found.skipped, 0);
    }
}
