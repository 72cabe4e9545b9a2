//! `tokentally backup DIR`: a consistent copy of the data directory's
//! databases (telemetry and tokens, audit log) made with SQLite's online
//! backup, so a running server keeps writing meanwhile: the copy is the
//! state at one moment, every committed transaction up to it included.
//! The copy is checked (`PRAGMA quick_check`) and kept for the owner alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// What one backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The source has no store.
    #[error("{0} holds no tokentally store")]
    NoStore(String),
    /// The destination already holds a backup (never overwritten).
    #[error("{0} already exists; choose an empty or new directory")]
    Exists(String),
    /// The destination directory cannot be used.
    #[error("{0}")]
    Destination(String),
    /// SQLite failed.
    #[error("{file}: {source}")]
    Sqlite {
        /// Which file.
        file: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The copy did not check out.
    #[error("the copy of {0} failed its integrity check: {1}")]
    Corrupt(String, String),
}

/// Pages copied per step; between steps the source is free for writers.
const PAGES_PER_STEP: std::os::raw::c_int = 4096;

/// Copies the databases of `data_dir` into `dest` (created 0700 if
/// missing), calling `progress(file, remaining, total)` (in pages) as it
/// goes. Refuses to overwrite an existing copy.
pub fn backup(
    data_dir: &Path,
    dest: &Path,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<Vec<Copied>, BackupError> {
    let store = data_dir.join(super::DB_FILE_NAME);
    if !store.is_file() {
        return Err(BackupError::NoStore(data_dir.display().to_string()));
    }
    if dest.canonicalize().ok() == data_dir.canonicalize().ok() {
        return Err(BackupError::Destination(
            "the backup directory must not be the data directory".into(),
        ));
    }
    crate::datadir::prepare(dest).map_err(BackupError::Destination)?;
    let files = [super::DB_FILE_NAME, crate::datadir::AUDIT_FILE_NAME];
    for name in files {
        let target = dest.join(name);
        if target.exists() {
            return Err(BackupError::Exists(target.display().to_string()));
        }
    }
    let mut copied = Vec::new();
    for name in files {
        let source = data_dir.join(name);
        if !source.is_file() {
            continue;
        }
        let target = dest.join(name);
        let err = |source| BackupError::Sqlite {
            file: name.to_string(),
            source,
        };
        let from = Connection::open_with_flags(
            &source,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        from.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        let mut to = Connection::open(&target).map_err(err)?;
        crate::datadir::restrict(&target);
        {
            let b = rusqlite::backup::Backup::new(&from, &mut to).map_err(err)?;
            loop {
                let step = b.step(PAGES_PER_STEP).map_err(err)?;
                let p = b.progress();
                progress(
                    name,
                    u64::try_from(p.remaining).unwrap_or(0),
                    u64::try_from(p.pagecount).unwrap_or(0),
                );
                match step {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => {}
                    // A writer holds the source for a moment: wait, go on.
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        let check: String = to
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(BackupError::Corrupt(name.to_string(), check));
        }
        drop(to);
        let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        copied.push(Copied {
            path: target,
            bytes,
        });
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(path: &Path, sql: &str) -> i64 {
        let c = Connection::open(path).unwrap_or_else(|e| unreachable!("{e}"));
        c.query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn a_copy_holds_every_committed_row_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let data = dir.path().join("data");
        let conn =
            super::super::open_admin_connection(&data).unwrap_or_else(|e| unreachable!("{e}"));
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let dest = dir.path().join("copy");
        let mut seen = 0;
        let copied =
            backup(&data, &dest, |_, _, _| seen += 1).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(copied.len(), 1, "no audit log in this data dir");
        assert!(seen >= 1);
        assert_eq!(
            rows(&dest.join("tokentally.db"), "SELECT count(*) FROM t"),
            3
        );
        // Written while the source stays open: a second copy elsewhere sees the new row.
        conn.execute("INSERT INTO t VALUES (4)", [])
            .unwrap_or_else(|e| unreachable!("{e}"));
        let again = backup(&data, &dest, |_, _, _| {});
        assert!(matches!(again, Err(BackupError::Exists(_))), "{again:?}");
        let dest2 = dir.path().join("copy2");
        backup(&data, &dest2, |_, _, _| {}).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            rows(&dest2.join("tokentally.db"), "SELECT count(*) FROM t"),
            4
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| {
                std::fs::metadata(p)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0)
            };
            assert_eq!(mode(&dest2), 0o700);
            assert_eq!(mode(&dest2.join("tokentally.db")), 0o600);
        }
        let none = backup(
            &dir.path().join("nothing"),
            &dir.path().join("c3"),
            |_, _, _| {},
        );
        assert!(matches!(none, Err(BackupError::NoStore(_))));
        assert!(matches!(
            backup(&data, &data, |_, _, _| {}),
            Err(BackupError::Destination(_))
        ));
    }
}
