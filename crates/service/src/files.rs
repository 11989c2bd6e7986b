//! Reading the files an operator names at start or in a reload (the policy, a snapshot's
//! three files): regular files only, each under a size cap, anything else refused naming
//! the path. `{"policy": "/dev/zero"}` used to be read without end on a blocking thread
//! until memory ran out, and a named pipe pinned a thread until someone wrote to it.
//!
//! The file is opened without blocking (a FIFO's open would otherwise wait for a
//! writer), its type and size are checked on the open descriptor (so a file swapped
//! after a check is still the one checked), and at most the cap is read even if it
//! grows meanwhile.

use fastrefund_core::policy::Policy;
use fastrefund_snapshot::{Manifest, PolicyFileError, Ratings, SnapshotError};
use std::io::Read;
use std::path::Path;

/// Largest policy file read, in bytes (1 MiB; the shipped one is under 3 KiB).
pub const MAX_POLICY_BYTES: u64 = 1 << 20;
/// Largest `manifest.json` read, in bytes (16 MiB; the sample's is under 3 KiB).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Largest `model.json` read, in bytes (64 MiB; the sample's is under 20 KiB).
pub const MAX_MODEL_BYTES: u64 = 64 << 20;
/// Largest `ratings.parquet` read, in bytes (4 GiB; 10M buyers take 38 MiB).
pub const MAX_RATINGS_BYTES: u64 = 4 << 30;

/// What is at a path, in words, when it is not a regular file.
fn kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        return "a directory";
    }
    "not a regular file"
}

#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    // NONBLOCK: opening a FIFO does not wait for a writer; a regular file ignores it.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// The bytes of the regular file at `path`, refused (with a message that names the
/// path and why, never the contents) when it is anything else or larger than `cap`.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let named = |why: String| format!("{}: {why}", path.display());
    let file = open(path).map_err(|e| named(e.to_string()))?;
    let meta = file.metadata().map_err(|e| named(e.to_string()))?;
    if !meta.is_file() {
        return Err(named(format!(
            "{}; only a regular file is read",
            kind(meta.file_type())
        )));
    }
    let too_big = |n: u64| named(format!("{n} bytes is more than the {cap} read at most"));
    if meta.len() > cap {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| named(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn text(path: &Path, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

/// Reads and checks a policy file (see [`read_capped`]).
pub fn load_policy(path: &Path) -> Result<Policy, PolicyFileError> {
    let io = |message: String| PolicyFileError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(message),
    };
    let text = read_capped(path, MAX_POLICY_BYTES)
        .and_then(|b| text(path, b))
        .map_err(io)?;
    Ok(Policy::from_toml(&text, &path.display().to_string())?)
}

/// Loads and checks the snapshot in `dir`, each of its files read as [`read_capped`]
/// says.
pub fn load_ratings(dir: &Path) -> Result<Ratings, SnapshotError> {
    let read = |name: &str, cap: u64| {
        let path = dir.join(name);
        read_capped(&path, cap).map_err(|message| SnapshotError::Io {
            path: path.display().to_string(),
            message,
        })
    };
    let manifest_path = dir.join(fastrefund_snapshot::MANIFEST_FILE);
    let manifest = read(fastrefund_snapshot::MANIFEST_FILE, MAX_MANIFEST_BYTES)?;
    let manifest = text(&manifest_path, manifest).map_err(|message| SnapshotError::Io {
        path: manifest_path.display().to_string(),
        message,
    })?;
    let manifest = Manifest::from_json(&manifest, &manifest_path)?;
    let model = read(fastrefund_snapshot::MODEL_FILE, MAX_MODEL_BYTES)?;
    let ratings = read(fastrefund_snapshot::RATINGS_FILE, MAX_RATINGS_BYTES)?;
    Ratings::from_parts(manifest, &model, bytes::Bytes::from(ratings), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_under_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, "x = 1\n").unwrap();
        assert_eq!(read_capped(&f, 6).unwrap(), b"x = 1\n");
        let e = read_capped(&f, 5).unwrap_err();
        assert!(e.contains("p.toml") && e.contains("6 bytes"), "{e}");
        let e = read_capped(dir.path(), 1 << 20).unwrap_err();
        assert!(e.contains("directory"), "{e}");
        let e = read_capped(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.contains("/dev/zero") && e.contains("device"), "{e}");
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_capped(&fifo, 1 << 20).unwrap_err();
        assert!(e.contains("pipe") && e.contains("FIFO"), "{e}");
        let e = read_capped(&dir.path().join("missing"), 1 << 20).unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }
}
