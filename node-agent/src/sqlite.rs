//! Opening the agent's SQLite files (the findings store, the cluster delivery spool) one way:
//! the directory created, WAL journal (readers while the agent writes), a busy timeout, the
//! schema applied.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::Connection;

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

/// Opens (creating if needed) the database at `path` and applies `schema`.
pub fn open(path: &Path, durability: Durability, schema: &str) -> Result<Connection, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let sql = |action| {
        let path = path.to_path_buf();
        move |source| OpenError::Sqlite {
            path,
            action,
            source,
        }
    };
    let conn = Connection::open(path).map_err(sql("open"))?;
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
