//! A ratings snapshot: the folder `rate` publishes and the service loads.
//!
//! ```text
//! SNAPSHOT_DIR/
//!   ratings.parquet   buyer_id, star (1–5), score, reason_1 … reason_4, as_of, model_version
//!                     (the columns: [`ratings`])
//!   model.json        the model that scored it (so reason codes can be put in words)
//!   manifest.json     rows, star counts, as_of, model version, SHA-256 of both files
//! ```
//!
//! **Publishing is atomic** ([`publish_dir`]): everything is written and fsynced into a
//! sibling temporary folder, which is then swapped with the old one in a single
//! `renameat2(RENAME_EXCHANGE)`; a run that fails before that leaves the previous
//! snapshot untouched, and a reader never sees half of each.
//!
//! **Loading checks everything** ([`Ratings::load`]): the manifest's checksums, the
//! model's schema and version, the Parquet schema, the row count and star counts, that
//! every star is what the model's cut-offs give for the score, and that no buyer
//! appears twice. The loaded table is compact (sorted ids and packed columns, 17 bytes
//! a buyer) and looked up by binary search.

pub mod drift;
pub mod files;
mod load;
pub mod ratings;
pub mod registry;

pub use files::{
    LoadedModel, ModelFileError, PolicyFileError, load_checked_model, load_model, load_policy,
};
pub use load::{Baseline, BuyerRating, Ratings};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const RATINGS_FILE: &str = "ratings.parquet";
pub const MODEL_FILE: &str = "model.json";
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest schema this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Why a snapshot cannot be published or used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: invalid manifest: {message}")]
    Manifest { path: String, message: String },
    #[error("{path}: checksum mismatch: the manifest says {expected}, the file hashes to {found}")]
    Checksum {
        path: String,
        expected: String,
        found: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{0}")]
    Model(#[from] fastrefund_core::scoring::ModelError),
}

fn io(path: &Path, e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    /// Buyers in `ratings.parquet`.
    pub rows: u64,
    /// Buyers per star, 1★ first.
    pub star_counts: [u64; 5],
    /// Features as of this date.
    pub as_of: NaiveDate,
    pub model_version: String,
    /// SHA-256 of `ratings.parquet`.
    pub ratings_sha256: String,
    /// SHA-256 of `model.json`.
    pub model_sha256: String,
    /// SHA-256 of the input history.
    pub data_fingerprint: String,
    pub created_at: DateTime<Utc>,
    /// Drift against the snapshot this one replaced, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<serde_json::Value>,
    /// The distributions the next snapshot's drift is measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// The challenger whose stars are in `challenger_star`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenger_version: Option<String>,
}

/// Score, star and feature distributions of a snapshot (for the population stability
/// index of the next one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Inner edges of the score deciles: a score below `score_edges[k]` (and not below
    /// the previous edge) falls in bin `k`.
    pub score_edges: Vec<i32>,
    /// Share of buyers in each score bin (`score_edges.len() + 1` of them).
    pub score_shares: Vec<f64>,
    /// Share of buyers at each star, 1★ first.
    pub star_shares: [f64; 5],
    /// For every model feature, the share of buyers in each of its bins (with one more
    /// slot for missing values when the feature has no missing bin).
    pub features: std::collections::BTreeMap<String, Vec<f64>>,
}

impl Manifest {
    /// Reads `manifest.json` from a snapshot folder.
    pub fn load(dir: &Path) -> Result<Manifest, SnapshotError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        Manifest::from_json(&text, &path)
    }

    /// Parses a manifest; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Manifest, SnapshotError> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| SnapshotError::Manifest {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if m.manifest_version != MANIFEST_VERSION {
            return Err(SnapshotError::Manifest {
                path: path.display().to_string(),
                message: format!(
                    "manifest_version {} is not supported (this build reads {MANIFEST_VERSION})",
                    m.manifest_version
                ),
            });
        }
        Ok(m)
    }
}

/// SHA-256 of a byte string, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Publishes a folder atomically: `fill` writes the files into a fresh temporary folder
/// beside `out`; when it succeeds every file is fsynced and the folder swapped into
/// place in one step. On any failure nothing at `out` changes.
pub fn publish_dir<E: From<SnapshotError>>(
    out: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    let result = fill(&tmp).and_then(|()| {
        sync_dir_files(&tmp)?;
        swap_into_place(&tmp, out, &parent)?;
        Ok(())
    });
    // After a swap `tmp` holds the old snapshot; after a failure, the partial new one.
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn sync_dir_files(dir: &Path) -> Result<(), SnapshotError> {
    fsync_dir(dir).map_err(|(p, e)| io(&p, e))
}

/// fsyncs every entry of `dir`, then `dir` itself (what a folder about to be renamed
/// into place holds is on disk first); on failure, the path and why.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    for e in std::fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))? {
        let p = e.map_err(|e| (dir.to_path_buf(), e))?.path();
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(|e| (p, e))?;
    }
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| (dir.to_path_buf(), e))
}

fn swap_into_place(tmp: &Path, out: &Path, parent: &Path) -> Result<(), SnapshotError> {
    if out.exists() {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            tmp,
            rustix::fs::CWD,
            out,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| io(out, format!("cannot swap in the new snapshot: {e}")))?;
    } else {
        std::fs::rename(tmp, out).map_err(|e| io(out, e))?;
    }
    std::fs::File::open(parent)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(parent, e))
}

impl fastrefund_core::ledger::StarLookup for Ratings {
    fn star(
        &self,
        buyer: fastrefund_core::domain::BuyerId,
    ) -> Option<fastrefund_core::domain::Star> {
        self.get(buyer).map(|r| r.star)
    }
    fn rated_as_of(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        rating_cutoff(self.manifest.as_of)
    }
}

/// The instant a snapshot rated as of `as_of` stops seeing: the start of that day (UTC).
fn rating_cutoff(as_of: chrono::NaiveDate) -> Option<chrono::DateTime<chrono::Utc>> {
    as_of.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_publish_leaves_the_previous_folder_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("snap");
        publish_dir::<SnapshotError>(&out, |d| {
            std::fs::write(d.join("a.txt"), "first").map_err(|e| io(d, e))
        })
        .unwrap();
        let r = publish_dir::<SnapshotError>(&out, |d| {
            std::fs::write(d.join("a.txt"), "second").map_err(|e| io(d, e))?;
            Err(io(d, "the run failed half-way"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "first");
        // No temporary folder is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
        publish_dir::<SnapshotError>(&out, |d| {
            std::fs::write(d.join("b.txt"), "third").map_err(|e| io(d, e))
        })
        .unwrap();
        assert!(
            !out.join("a.txt").exists(),
            "the old files are replaced, not merged"
        );
        assert_eq!(std::fs::read_to_string(out.join("b.txt")).unwrap(), "third");
    }

    #[test]
    fn a_drift_baseline_reads_the_manifest_and_model_but_not_the_ratings() {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/snapshot");
        let dir = tempfile::tempdir().unwrap();
        for f in [MANIFEST_FILE, MODEL_FILE] {
            std::fs::copy(Path::new(shipped).join(f), dir.path().join(f)).unwrap();
        }
        // No ratings at all: a baseline of 20M buyers costs what one of 2,000 does.
        let b = Baseline::load(dir.path()).unwrap();
        assert_eq!(b.model().version(), b.manifest.model_version);
        assert!(b.manifest.distribution.is_some());
        // The model must still be the manifest's.
        let model = dir.path().join(MODEL_FILE);
        let text = std::fs::read_to_string(&model).unwrap();
        std::fs::write(&model, text.replacen("\"intercept\"", "\"intercept\" ", 1)).unwrap();
        let e = Baseline::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("model.json"), "{e}");
    }
}
