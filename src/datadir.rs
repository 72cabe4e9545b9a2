//! The data directory's permissions: everything in it (telemetry, tokens'
//! hashes, the audit log) is for the owner alone.
//!
//! A new directory is created `0700` and every database file (with its
//! `-wal` and `-shm` companions) set to `0600`; an existing directory that
//! other users may write is refused, since they could replace the
//! databases or plant their own.

use std::path::Path;

/// The audit log's file in the data directory.
pub const AUDIT_FILE_NAME: &str = "audit.db";

/// Creates `dir` (mode 0700, parents as needed) or checks an existing one.
pub fn prepare(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(format!("{} is not a directory", dir.display())),
        Ok(m) => check_not_shared(dir, &m),
        Err(_) => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))
        }
    }
}

#[cfg(unix)]
fn check_not_shared(dir: &Path, m: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = m.permissions().mode();
    // A sticky directory (such as /tmp) lets others create files but not
    // replace ours; still refused, the data dir must be our own.
    if mode & 0o022 != 0 {
        return Err(format!(
            "data directory {} is writable by other users (mode {:o}); run `chmod go-w {}` or choose another --data-dir",
            dir.display(),
            mode & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_not_shared(_dir: &Path, _m: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Sets a database file and its `-wal`/`-shm` files to mode 0600.
pub fn restrict(db: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = db;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn new_dirs_are_private_and_shared_ones_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        prepare(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare(&dir).unwrap_err();
        assert!(err.contains("writable by other users"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        let db = dir.join("x.db");
        std::fs::write(&db, b"").unwrap();
        restrict(&db);
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
