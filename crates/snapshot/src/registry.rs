//! The model registry: a folder (`models/` by default) with one sub-folder per model
//! version, named by the version, holding `model.json` (with its data fingerprint,
//! parameters and metrics), `evaluation.json`, the report and the challenger, plus:
//!
//! - `CHAMPION`: one line, the version in service. `rate` and `simulate` use it when no
//!   model is named. Written atomically (temporary file, fsync, rename, fsync of the
//!   folder), so a crash leaves the old champion or the new one, never half a name.
//! - `promotions.jsonl`: an append-only log of every promotion (when, from, to), so a
//!   team can see which model served when.
//!
//! A model is promoted only if its folder name matches its `model_version` and its
//! artifact passes [`fastrefund_core::scoring::Model::check`]: a broken or misplaced model can
//! never become the champion. No polars here: the registry builds without the batch
//! stack.

use crate::files::{ModelFileError, load_model};
use chrono::{DateTime, NaiveDate, Utc};
use fastrefund_core::scoring::ModelError;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file naming the champion.
pub const CHAMPION_FILE: &str = "CHAMPION";
/// The promotion log.
pub const PROMOTIONS_FILE: &str = "promotions.jsonl";
/// The artifact inside each version's folder.
pub const MODEL_FILE: &str = "model.json";

/// Why the registry cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no model {version:?} in {dir} (models there: {known})")]
    NoSuchModel {
        version: String,
        dir: String,
        known: String,
    },
    #[error("{dir} names no champion: promote one with `fastrefund models promote VERSION`")]
    NoChampion { dir: String },
    #[error(
        "{path} holds model {found:?}, not {expected:?}: a model's folder is named by its version"
    )]
    Misplaced {
        path: String,
        expected: String,
        found: String,
    },
    #[error(
        "{path} cannot be read ({source}), so the folder is not replaced: move it away or remove it, then train again"
    )]
    UnreadableOld {
        path: String,
        source: ModelFileError,
    },
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
}

fn io(path: &Path, source: std::io::Error) -> RegistryError {
    RegistryError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One registered model, as `models list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub version: String,
    pub champion: bool,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub as_of: Option<NaiveDate>,
    pub data_fingerprint: String,
    pub features: usize,
    pub train_auc: Option<f64>,
    pub test_auc: Option<f64>,
    pub test_ks: Option<f64>,
    /// `report.html` is in the folder.
    pub report: bool,
    /// `challenger.json` is in the folder.
    pub challenger: bool,
}

/// A folder of the registry: a model, or why it cannot be read.
#[derive(Debug)]
pub enum Listed {
    Model(Box<Entry>),
    Broken { folder: String, error: String },
}

/// One line of `promotions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Promotion {
    pub at: DateTime<Utc>,
    pub from: Option<String>,
    pub to: String,
}

/// A registry folder.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    pub fn new(dir: impl Into<PathBuf>) -> Registry {
        Registry { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of a version.
    pub fn folder(&self, version: &str) -> PathBuf {
        self.dir.join(version)
    }

    /// The version in service, if one is named.
    pub fn champion(&self) -> Result<Option<String>, RegistryError> {
        let path = self.dir.join(CHAMPION_FILE);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// The champion's `model.json`, checked to exist.
    pub fn champion_model(&self) -> Result<PathBuf, RegistryError> {
        let version = self.champion()?.ok_or_else(|| RegistryError::NoChampion {
            dir: self.dir.display().to_string(),
        })?;
        self.model_path(&version)
    }

    /// The `model.json` of a registered version.
    pub fn model_path(&self, version: &str) -> Result<PathBuf, RegistryError> {
        let path = self.folder(version).join(MODEL_FILE);
        if is_plain_name(version) && path.is_file() {
            return Ok(path);
        }
        Err(RegistryError::NoSuchModel {
            version: version.to_string(),
            dir: self.dir.display().to_string(),
            known: self.versions()?.join(", "),
        })
    }

    fn versions(&self) -> Result<Vec<String>, RegistryError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| io(&self.dir, e))?;
            if e.path().join(MODEL_FILE).is_file() {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every folder holding a `model.json`, newest first (by training time); folders
    /// whose model cannot be read are listed with the error.
    pub fn list(&self) -> Result<Vec<Listed>, RegistryError> {
        let champion = self.champion()?;
        let mut out: Vec<Listed> = Vec::new();
        for folder in self.versions()? {
            let dir = self.folder(&folder);
            let entry =
                load_model(&dir.join(MODEL_FILE)).and_then(|m| -> Result<Entry, ModelFileError> {
                    let features = m.features.len();
                    let card = m.check()?;
                    let m = card.model();
                    Ok(Entry {
                        version: m.model_version.clone(),
                        champion: champion.as_deref() == Some(m.model_version.as_str()),
                        kind: m.kind.clone(),
                        created_at: m.created_at,
                        as_of: m.training.as_of,
                        data_fingerprint: m.training.data_fingerprint.clone(),
                        features,
                        train_auc: m.metrics.train.as_ref().map(|s| s.auc),
                        test_auc: m.metrics.test.as_ref().map(|s| s.auc),
                        test_ks: m.metrics.test.as_ref().map(|s| s.ks),
                        report: dir.join("report.html").is_file(),
                        challenger: dir.join("challenger.json").is_file(),
                    })
                });
            out.push(match entry {
                Ok(e) if e.version != folder => Listed::Broken {
                    error: format!("holds model {:?}: folder and version differ", e.version),
                    folder,
                },
                Ok(e) => Listed::Model(Box::new(e)),
                Err(e) => Listed::Broken {
                    folder,
                    error: e.to_string(),
                },
            });
        }
        out.sort_by(|a, b| match (a, b) {
            (Listed::Model(a), Listed::Model(b)) => b.created_at.cmp(&a.created_at),
            (Listed::Model(_), Listed::Broken { .. }) => std::cmp::Ordering::Less,
            (Listed::Broken { .. }, Listed::Model(_)) => std::cmp::Ordering::Greater,
            (Listed::Broken { folder: a, .. }, Listed::Broken { folder: b, .. }) => a.cmp(b),
        });
        Ok(out)
    }

    /// Makes `version` the champion, after checking its artifact, and logs it.
    pub fn promote(&self, version: &str, now: DateTime<Utc>) -> Result<Promotion, RegistryError> {
        let path = self.model_path(version)?;
        let card = load_model(&path)?.check()?;
        if card.version() != version {
            return Err(RegistryError::Misplaced {
                path: path.display().to_string(),
                expected: version.to_string(),
                found: card.version().to_string(),
            });
        }
        let from = self.champion()?;
        write_atomic(&self.dir, CHAMPION_FILE, format!("{version}\n").as_bytes())?;
        let p = Promotion {
            at: now,
            from,
            to: version.to_string(),
        };
        let log = self.dir.join(PROMOTIONS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| io(&log, e))?;
        let line = serde_json::to_string(&p).map_err(|e| io(&log, std::io::Error::other(e)))?;
        writeln!(f, "{line}")
            .and_then(|_| f.sync_data())
            .map_err(|e| io(&log, e))?;
        Ok(p)
    }

    /// Files a new model, shaped like [`crate::publish_dir`]: `fill` writes the model's
    /// files (`model.json` and whatever goes with it) into a fresh staging folder inside
    /// the registry; when it succeeds the folder is synced and installed as
    /// `<dir>/<version>` ([`Registry::install`]), and its path returned. On any failure
    /// the staging folder is removed: the registry never holds a half-written model.
    pub fn publish<E: From<RegistryError>>(
        &self,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<PathBuf, E> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let staging = self
            .dir
            .join(format!(".training-{}-{stamp}", std::process::id()));
        std::fs::create_dir(&staging).map_err(|e| io(&staging, e))?;
        let result = fill(&staging).and_then(|()| {
            crate::fsync_dir(&staging).map_err(|(p, e)| io(&p, e))?;
            Ok(self.install(&staging)?)
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }

    /// Moves a freshly trained model folder into the registry as `<dir>/<version>`.
    /// Refuses to overwrite a different model under the same name; the same model
    /// (same version, hence same data and parameters) replaces the old folder. An old
    /// folder whose model cannot be read is refused too, never deleted: what it holds
    /// is unknown (a registry's folders are installed whole, so someone put it there).
    pub fn install(&self, trained: &Path) -> Result<PathBuf, RegistryError> {
        let card = load_model(&trained.join(MODEL_FILE))?.check()?;
        let version = card.version().to_string();
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let dest = self.folder(&version);
        if dest.exists() {
            let old = dest.join(MODEL_FILE);
            let m = load_model(&old).map_err(|source| RegistryError::UnreadableOld {
                path: old.display().to_string(),
                source,
            })?;
            if m.model_version != version {
                return Err(RegistryError::Misplaced {
                    path: old.display().to_string(),
                    expected: version,
                    found: m.model_version,
                });
            }
            std::fs::remove_dir_all(&dest).map_err(|e| io(&dest, e))?;
        }
        std::fs::rename(trained, &dest).map_err(|e| io(&dest, e))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&self.dir, e))?;
        Ok(dest)
    }
}

/// The `models list` table: one line per folder, the champion marked `*`, a folder that
/// cannot be read marked `!` with why.
pub fn table(list: &[Listed]) -> String {
    use std::fmt::Write;
    let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = format!(
        "  {:<36} {:<10} {:<17} {:>8} {:>9} {:>9} {:>7} {:<9} {:<6} {:<10}\n",
        "version",
        "as_of",
        "trained",
        "features",
        "train_auc",
        "test_auc",
        "test_ks",
        "data",
        "report",
        "challenger"
    );
    for l in list {
        // Writing to a String cannot fail.
        let _ = match l {
            Listed::Model(e) => writeln!(
                out,
                "{} {:<36} {:<10} {:<17} {:>8} {:>9} {:>9} {:>7} {:<9} {:<6} {:<10}",
                if e.champion { "*" } else { " " },
                e.version,
                e.as_of.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
                e.created_at.format("%Y-%m-%d %H:%M"),
                e.features,
                f(e.train_auc),
                f(e.test_auc),
                f(e.test_ks),
                e.data_fingerprint.get(..8).unwrap_or(&e.data_fingerprint),
                yes(e.report),
                yes(e.challenger),
            ),
            Listed::Broken { folder, error } => {
                writeln!(out, "! {folder:<36} cannot be read: {error}")
            }
        };
    }
    out
}

fn is_plain_name(v: &str) -> bool {
    !v.is_empty()
        && v != "."
        && v != ".."
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Writes `dir/name` so that a crash leaves either the old file or the new one.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RegistryError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    /// A registry holding a copy of the shipped champion.
    fn copy() -> (tempfile::TempDir, Registry, String) {
        let dir = tempfile::tempdir().unwrap();
        let src = Registry::new(shipped());
        let v = src.champion().unwrap().unwrap();
        std::fs::create_dir_all(dir.path().join(&v)).unwrap();
        std::fs::copy(
            src.model_path(&v).unwrap(),
            dir.path().join(&v).join(MODEL_FILE),
        )
        .unwrap();
        let r = Registry::new(dir.path().to_path_buf());
        (dir, r, v)
    }

    #[test]
    fn the_shipped_champion_is_listed_and_readable() {
        let r = Registry::new(shipped());
        let v = r.champion().unwrap().unwrap();
        let list = r.list().unwrap();
        let champ = list
            .iter()
            .find_map(|l| match l {
                Listed::Model(e) if e.champion => Some(e),
                _ => None,
            })
            .unwrap();
        assert_eq!(champ.version, v);
        assert!(champ.test_auc.unwrap() > 0.5);
        assert!(champ.report, "the champion ships its report");
    }

    #[test]
    fn promote_names_the_champion_and_logs_it() {
        let (dir, r, v) = copy();
        assert_eq!(r.champion().unwrap(), None);
        assert!(matches!(
            r.champion_model(),
            Err(RegistryError::NoChampion { .. })
        ));
        let p = r.promote(&v, Utc::now()).unwrap();
        assert_eq!((p.from, p.to.as_str()), (None, v.as_str()));
        assert_eq!(r.champion().unwrap().as_deref(), Some(v.as_str()));
        assert_eq!(
            r.champion_model().unwrap(),
            dir.path().join(&v).join(MODEL_FILE)
        );
        r.promote(&v, Utc::now()).unwrap();
        let log = std::fs::read_to_string(dir.path().join(PROMOTIONS_FILE)).unwrap();
        let lines: Vec<Promotion> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].from.as_deref(), Some(v.as_str()));
    }

    #[test]
    fn unknown_misplaced_or_broken_models_are_never_promoted() {
        let (dir, r, v) = copy();
        let err = r.promote("nope", Utc::now()).unwrap_err().to_string();
        assert!(
            err.contains("no model \"nope\"") && err.contains(&v),
            "{err}"
        );
        assert!(r.promote("../etc", Utc::now()).is_err());
        // A copy under another name.
        std::fs::create_dir_all(dir.path().join("renamed")).unwrap();
        std::fs::copy(
            dir.path().join(&v).join(MODEL_FILE),
            dir.path().join("renamed").join(MODEL_FILE),
        )
        .unwrap();
        let err = r.promote("renamed", Utc::now()).unwrap_err().to_string();
        assert!(err.contains("not \"renamed\""), "{err}");
        // A truncated artifact.
        std::fs::create_dir_all(dir.path().join("broken")).unwrap();
        std::fs::write(dir.path().join("broken").join(MODEL_FILE), "{\"schema").unwrap();
        assert!(r.promote("broken", Utc::now()).is_err());
        assert_eq!(r.champion().unwrap(), None, "nothing was promoted");
        let list = r.list().unwrap();
        assert_eq!(list.len(), 3);
        assert!(matches!(&list[0], Listed::Model(e) if e.version == v));
        assert!(list[1..].iter().all(|l| matches!(l, Listed::Broken { .. })));
    }

    #[test]
    fn install_moves_a_trained_folder_under_its_version() {
        let (dir, r, v) = copy();
        let trained = tempfile::tempdir_in(dir.path()).unwrap().keep();
        std::fs::copy(
            dir.path().join(&v).join(MODEL_FILE),
            trained.join(MODEL_FILE),
        )
        .unwrap();
        let dest = r.install(&trained).unwrap();
        assert_eq!(dest, dir.path().join(&v));
        assert!(!trained.exists());
        assert!(dest.join(MODEL_FILE).is_file());
    }

    /// A folder under the new model's version whose model cannot be read is kept and
    /// the install refused, naming the file; the same model again replaces its folder.
    #[test]
    fn install_keeps_an_unreadable_old_model_and_says_so() {
        let (dir, r, v) = copy();
        let stage = || {
            let trained = tempfile::tempdir_in(dir.path()).unwrap().keep();
            std::fs::copy(
                Registry::new(shipped()).model_path(&v).unwrap(),
                trained.join(MODEL_FILE),
            )
            .unwrap();
            trained
        };
        // The same model again: replaced.
        r.install(&stage()).unwrap();
        let old = dir.path().join(&v).join(MODEL_FILE);
        std::fs::write(&old, "{\"schema").unwrap();
        std::fs::write(dir.path().join(&v).join("notes.txt"), "kept").unwrap();
        let trained = stage();
        let err = r.install(&trained).unwrap_err();
        assert!(matches!(err, RegistryError::UnreadableOld { .. }), "{err}");
        assert!(
            err.to_string().contains(&old.display().to_string()),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "{\"schema");
        assert!(dir.path().join(&v).join("notes.txt").is_file());
        assert!(
            trained.join(MODEL_FILE).is_file(),
            "the new model is left where it was"
        );
    }
}
