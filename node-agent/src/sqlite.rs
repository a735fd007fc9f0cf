//! Opening the agent's SQLite files (the findings store, the cluster delivery spool) one way:
//! the directory created (0700), the file readable by root alone (0600: findings hold command
//! lines and paths), WAL journal (readers while the agent writes), a busy timeout, the schema
//! applied. A damaged file (a truncated write, a full disk, an edit) is moved aside with an error
//! and a fresh one started, so the agent still starts and detects.

use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{Connection, ErrorCode};

/// How much a commit waits for the disk.
#[derive(Clone, Copy, Debug)]
pub enum Durability {
    /// `synchronous=NORMAL`: a commit may be lost on power loss, never corrupted.
    Normal,
    /// `synchronous=FULL`: a committed write survives a power loss.
    Full,
}

/// Why a database could not be opened; the callers turn it into their own error, which names
/// the file.
#[derive(Debug)]
pub enum OpenError {
    /// The directory could not be created.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// SQLite refused.
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

/// Opens (creating if needed) the database at `path` and applies `schema`. A file SQLite finds
/// damaged is renamed to `<name>.corrupt-<unix seconds>` (with its `-wal` and `-shm`) and a fresh
/// database is created in its place.
pub fn open(path: &Path, durability: Durability, schema: &str) -> Result<Connection, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let create_dir = |source| OpenError::CreateDir {
            path: dir.to_path_buf(),
            source,
        };
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(create_dir(std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "a file is in the way",
                )));
            }
            // Only directories the agent creates are made private: an existing one (say /tmp
            // for --db /tmp/findings.db) keeps its mode.
            Err(_) => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(create_dir)?,
        }
    }
    match open_checked(path, durability, schema) {
        Err(OpenError::Sqlite { source, .. }) if is_damage(&source) => {
            let aside = move_aside(path).map_err(|source| OpenError::CreateDir {
                path: path.to_path_buf(),
                source,
            })?;
            tracing::error!(
                path = %path.display(),
                moved_to = %aside.display(),
                error = %source,
                "database is damaged: moved aside, starting a fresh one"
            );
            open_checked(path, durability, schema)
        }
        other => other,
    }
}

fn open_checked(
    path: &Path,
    durability: Durability,
    schema: &str,
) -> Result<Connection, OpenError> {
    let sql = |action| {
        let path = path.to_path_buf();
        move |source| OpenError::Sqlite {
            path,
            action,
            source,
        }
    };
    let conn = Connection::open(path).map_err(sql("open"))?;
    // Before the journal files exist: SQLite gives them the database file's mode.
    if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), %error, "cannot make the database readable by its owner alone");
    }
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(sql("check integrity"))?;
    if check != "ok" {
        return Err(OpenError::Sqlite {
            path: path.to_path_buf(),
            action: "check integrity",
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            ),
        });
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql("set WAL mode"))?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(sql("set synchronous"))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sql("set busy timeout"))?;
    conn.execute_batch(schema).map_err(sql("create schema"))?;
    Ok(conn)
}

/// Whether SQLite says the file is damaged or not a database at all.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Renames the database and its journal files aside; returns the new name of the database.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let with_suffix = |p: &Path, suffix: &str| {
        let mut name = p.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let aside = with_suffix(path, &format!(".corrupt-{stamp}"));
    std::fs::rename(path, &aside)?;
    for journal in ["-wal", "-shm"] {
        let from = with_suffix(path, journal);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&aside, journal))?;
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL);";

    fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
        crate::scratch_path(&format!("vigil-sqlite-{name}-"), "state/db.sqlite")
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|m| m.mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn state_is_readable_by_its_owner_alone() {
        let (_scratch, path) = temp("modes");
        let conn = open(&path, Durability::Normal, SCHEMA).unwrap();
        conn.execute("INSERT INTO t VALUES ('a', 'b')", []).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        assert!(wal.exists());
        assert_eq!(mode(&wal), 0o600);
        drop(conn);
        // A file an older version left world-readable is tightened on the next open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open(&path, Durability::Normal, SCHEMA).unwrap());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_database_that_is_not_one_is_moved_aside_and_a_fresh_one_started() {
        let (_scratch, path) = temp("garbage");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![0xa5u8; 8192]).unwrap();
        let conn = open(&path, Durability::Normal, SCHEMA).unwrap();
        conn.execute("INSERT INTO t VALUES ('a', 'b')", []).unwrap();
        let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("db.sqlite.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let kept = std::fs::read(path.parent().unwrap().join(&aside[0])).unwrap();
        assert_eq!(
            kept,
            vec![0xa5u8; 8192],
            "the damaged file is kept as it was"
        );
    }

    #[test]
    fn a_truncated_database_is_moved_aside_and_a_fresh_one_started() {
        let (_scratch, path) = temp("truncated");
        {
            let conn = open(&path, Durability::Normal, SCHEMA).unwrap();
            let long = "x".repeat(2000);
            for i in 0..200 {
                conn.execute(
                    "INSERT INTO t VALUES (?1, ?2)",
                    rusqlite::params![i.to_string(), long],
                )
                .unwrap();
            }
            conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        }
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > 100_000, "{len}");
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len / 3).unwrap();
        drop(file);
        let conn = open(&path, Durability::Normal, SCHEMA).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "a fresh database");
        let moved = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("db.sqlite.corrupt-")
            });
        assert!(moved);
    }
}
