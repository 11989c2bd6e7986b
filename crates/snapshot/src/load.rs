//! Loading and checking a snapshot with the `parquet` crate (not polars), so that the
//! service builds without the batch stack.

use super::{MODEL_FILE, Manifest, RATINGS_FILE, SnapshotError, io, ratings};
use fastrefund_core::domain::{BuyerId, Star};
use fastrefund_core::scoring::{MAX_REASONS, MISSING_SUFFIX, Model, Points, ReasonRef, Scorecard};
use parquet::basic::Type as PhysicalType;
use parquet::column::reader::{ColumnReader, get_typed_column_reader};
use parquet::data_type::{ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const NO_REASON: u16 = u16::MAX;
/// Set in a packed reason when the feature's value was missing (features < 2^12).
const MISSING_BIT: u16 = 0x8000;

fn pack(r: ReasonRef) -> u16 {
    r.feature | if r.missing { MISSING_BIT } else { 0 }
}

fn unpack(x: u16) -> Option<ReasonRef> {
    (x != NO_REASON).then_some(ReasonRef {
        feature: x & !MISSING_BIT,
        missing: x & MISSING_BIT != 0,
    })
}

/// One buyer's rating as loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerRating {
    pub star: Star,
    pub score: i32,
    /// The features that cost the most points, worst first.
    pub reasons: [Option<ReasonRef>; MAX_REASONS],
    /// The challenger's star, when the snapshot carries one (shadow mode).
    pub challenger_star: Option<Star>,
}

/// A loaded, checked snapshot: the ratings of every buyer, packed and sorted by id.
#[derive(Debug)]
pub struct Ratings {
    pub manifest: Manifest,
    model: Arc<Scorecard>,
    ids: Vec<u64>,
    scores: Vec<i32>,
    stars: Vec<u8>,
    reasons: Vec<[u16; MAX_REASONS]>,
    /// The challenger's stars (0 = none), when the snapshot carries them.
    challenger: Option<Vec<u8>>,
    /// Each buyer's points per feature (`n_features` a buyer, in model order;
    /// [`MISSING_POINTS`] for a missing value), when the snapshot carries them.
    points: Option<Vec<i16>>,
}

/// A missing value in the packed points (it earns the feature's missing points).
const MISSING_POINTS: i16 = i16::MIN;

fn invalid(path: &Path, message: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn check_sum(path: &Path, bytes: &[u8], expected: &str) -> Result<(), SnapshotError> {
    let found = super::sha256_hex(bytes);
    if found != expected {
        return Err(SnapshotError::Checksum {
            path: path.display().to_string(),
            expected: expected.to_string(),
            found,
        });
    }
    Ok(())
}

/// Values of one column chunk, with definition levels when the column is nullable.
fn read_chunk<T: DataType>(
    rg: &dyn RowGroupReader,
    i: usize,
    rows: usize,
    path: &Path,
) -> Result<(Vec<T::T>, Vec<i16>), SnapshotError>
where
    T::T: Default + Clone,
{
    let reader: ColumnReader = rg.get_column_reader(i).map_err(|e| io(path, e))?;
    let mut r = get_typed_column_reader::<T>(reader);
    let mut vals: Vec<T::T> = Vec::with_capacity(rows);
    let mut defs: Vec<i16> = Vec::with_capacity(rows);
    let mut got = 0;
    while got < rows {
        let (records, _, _) = r
            .read_records(rows - got, Some(&mut defs), None, &mut vals)
            .map_err(|e| io(path, e))?;
        if records == 0 {
            break;
        }
        got += records;
    }
    if got != rows {
        return Err(invalid(
            path,
            format!("column {i} has {got} values, expected {rows}"),
        ));
    }
    Ok((vals, defs))
}

/// A required column: every level defined.
fn required<T: Copy>(
    vals: Vec<T>,
    defs: &[i16],
    max_def: i16,
    name: &str,
    path: &Path,
) -> Result<Vec<T>, SnapshotError> {
    if max_def > 0 && defs.iter().any(|d| *d < max_def) {
        return Err(invalid(path, format!("column `{name}` has missing values")));
    }
    Ok(vals)
}

/// The model of a snapshot, checked against its manifest (checksum and version).
fn checked_model(
    manifest: &Manifest,
    model_bytes: &[u8],
    dir: &Path,
) -> Result<Scorecard, SnapshotError> {
    let model_path = dir.join(MODEL_FILE);
    check_sum(&model_path, model_bytes, &manifest.model_sha256)?;
    let text = std::str::from_utf8(model_bytes).map_err(|e| io(&model_path, e))?;
    let model = Model::from_json(text, &model_path.display().to_string())?.check()?;
    if model.version() != manifest.model_version {
        return Err(invalid(
            &model_path,
            format!(
                "model version {} differs from the manifest's {}",
                model.version(),
                manifest.model_version
            ),
        ));
    }
    Ok(model)
}

/// What measuring drift against a snapshot needs: its manifest (with the distributions
/// it recorded) and its model, checked against each other. Its ratings are not read, so
/// a baseline of any size costs a model's worth of memory.
#[derive(Debug)]
pub struct Baseline {
    pub manifest: Manifest,
    model: Scorecard,
}

impl Baseline {
    /// Loads the manifest and model of the snapshot in `dir`.
    pub fn load(dir: &Path) -> Result<Baseline, SnapshotError> {
        let manifest = Manifest::load(dir)?;
        let model_path = dir.join(MODEL_FILE);
        let model_bytes = std::fs::read(&model_path).map_err(|e| io(&model_path, e))?;
        let model = checked_model(&manifest, &model_bytes, dir)?;
        Ok(Baseline { manifest, model })
    }

    pub fn model(&self) -> &Scorecard {
        &self.model
    }
}

impl Ratings {
    /// Loads and checks the snapshot in `dir`.
    pub fn load(dir: &Path) -> Result<Ratings, SnapshotError> {
        let manifest = Manifest::load(dir)?;
        let model_path = dir.join(MODEL_FILE);
        let model_bytes = std::fs::read(&model_path).map_err(|e| io(&model_path, e))?;
        let path = dir.join(RATINGS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        Ratings::from_parts(manifest, &model_bytes, bytes::Bytes::from(bytes), dir)
    }

    /// Checks and loads a snapshot from its three files' contents; `dir` names them in
    /// errors.
    pub fn from_parts(
        manifest: Manifest,
        model_bytes: &[u8],
        ratings: bytes::Bytes,
        dir: &Path,
    ) -> Result<Ratings, SnapshotError> {
        let model = checked_model(&manifest, model_bytes, dir)?;
        let path = dir.join(RATINGS_FILE);
        check_sum(&path, &ratings, &manifest.ratings_sha256)?;
        let reader = SerializedFileReader::new(ratings).map_err(|e| io(&path, e))?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let find = |name: &str, ty: PhysicalType| -> Result<(usize, i16), SnapshotError> {
            let (i, c) = schema
                .columns()
                .iter()
                .enumerate()
                .find(|(_, c)| c.name() == name)
                .ok_or_else(|| invalid(&path, format!("no column `{name}`")))?;
            if c.physical_type() != ty {
                return Err(invalid(
                    &path,
                    format!(
                        "column `{name}` is {:?}, expected {ty:?}",
                        c.physical_type()
                    ),
                ));
            }
            Ok((i, c.max_def_level()))
        };
        let (id_col, id_def) = find(ratings::BUYER_ID, PhysicalType::INT64)?;
        let (star_col, star_def) = find(ratings::STAR, PhysicalType::INT32)?;
        let (score_col, score_def) = find(ratings::SCORE, PhysicalType::INT32)?;
        let reason_cols: Vec<(usize, i16)> = (1..=MAX_REASONS)
            .map(|k| find(&ratings::reason_column(k), PhysicalType::BYTE_ARRAY))
            .collect::<Result<_, _>>()?;
        find(ratings::AS_OF, PhysicalType::INT32)?;
        find(ratings::MODEL_VERSION, PhysicalType::BYTE_ARRAY)?;
        let challenger_col = match manifest.challenger_version {
            Some(_) => Some(find(ratings::CHALLENGER_STAR, PhysicalType::INT32)?),
            None => None,
        };
        // The points columns: every feature's, or none (a snapshot from before them).
        let n_features = model.n_features();
        let points_names: Vec<String> = model.feature_names().map(ratings::points_column).collect();
        let has_points = schema
            .columns()
            .iter()
            .any(|c| c.name().starts_with(ratings::POINTS_PREFIX));
        let points_cols: Vec<(usize, i16)> = if has_points {
            points_names
                .iter()
                .map(|name| find(name, PhysicalType::INT32))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let mut points: Vec<i16> = Vec::new();

        // Every code a rating may carry: each feature's, with and without the suffix.
        let code_index: HashMap<String, u16> = (0..model.n_features())
            .flat_map(|j| {
                let code = &model.reason(j).code;
                [code.clone(), format!("{code}{MISSING_SUFFIX}")]
            })
            .filter_map(|c| model.reason_by_code(&c).map(|r| (c, pack(r))))
            .collect();
        let total = usize::try_from(manifest.rows).unwrap_or(usize::MAX);
        let mut rows: Vec<(u64, i32, u8, [u16; MAX_REASONS], u8, usize)> =
            Vec::with_capacity(total.min(1 << 28));
        for g in 0..reader.num_row_groups() {
            let rg = reader.get_row_group(g).map_err(|e| io(&path, e))?;
            let n = usize::try_from(rg.metadata().num_rows()).unwrap_or(0);
            let (ids, d) = read_chunk::<Int64Type>(rg.as_ref(), id_col, n, &path)?;
            let ids = required(ids, &d, id_def, ratings::BUYER_ID, &path)?;
            let (stars, d) = read_chunk::<Int32Type>(rg.as_ref(), star_col, n, &path)?;
            let stars = required(stars, &d, star_def, ratings::STAR, &path)?;
            let (scores, d) = read_chunk::<Int32Type>(rg.as_ref(), score_col, n, &path)?;
            let scores = required(scores, &d, score_def, ratings::SCORE, &path)?;
            let challenger = match challenger_col {
                Some((col, max_def)) => {
                    let (vals, defs) = read_chunk::<Int32Type>(rg.as_ref(), col, n, &path)?;
                    let vals = required(vals, &defs, max_def, ratings::CHALLENGER_STAR, &path)?;
                    if let Some(v) = vals.iter().find(|v| !(1..=5).contains(*v)) {
                        return Err(invalid(
                            &path,
                            format!("challenger star {v} is outside 1..=5"),
                        ));
                    }
                    vals.into_iter().map(|v| v as u8).collect()
                }
                None => vec![0u8; n],
            };
            if has_points {
                let mut chunk = vec![MISSING_POINTS; n * n_features];
                for (j, (col, max_def)) in points_cols.iter().enumerate() {
                    let (vals, defs) = read_chunk::<Int32Type>(rg.as_ref(), *col, n, &path)?;
                    let mut it = vals.iter();
                    for r in 0..n {
                        let present = *max_def == 0 || defs.get(r).is_some_and(|d| d == max_def);
                        if !present {
                            continue;
                        }
                        let v = *it
                            .next()
                            .ok_or_else(|| invalid(&path, "points column is short"))?;
                        chunk[r * n_features + j] = i16::try_from(v)
                            .ok()
                            .filter(|v| *v != MISSING_POINTS)
                            .ok_or_else(|| {
                                invalid(
                                    &path,
                                    format!(
                                        "row {}: `{}` is {v}, outside the points a snapshot keeps (±32,767)",
                                        rows.len() + r + 1,
                                        points_names[j]
                                    ),
                                )
                            })?;
                    }
                }
                points.extend_from_slice(&chunk);
            }
            let mut reasons = vec![[NO_REASON; MAX_REASONS]; n];
            for (k, (col, max_def)) in reason_cols.iter().enumerate() {
                let (vals, defs) = read_chunk::<ByteArrayType>(rg.as_ref(), *col, n, &path)?;
                let mut it = vals.iter();
                for (r, slot) in reasons.iter_mut().enumerate() {
                    let present = *max_def == 0 || defs.get(r).is_some_and(|d| d == max_def);
                    if !present {
                        continue;
                    }
                    let v = it
                        .next()
                        .ok_or_else(|| invalid(&path, "reason column is short"))?;
                    let code = v.as_utf8().map_err(|e| io(&path, e))?;
                    slot[k] = *code_index.get(code).ok_or_else(|| {
                        invalid(
                            &path,
                            format!(
                                "reason code {code:?} is not a feature of model {}",
                                model.version()
                            ),
                        )
                    })?;
                }
            }
            for r in 0..n {
                let star = u8::try_from(stars[r])
                    .ok()
                    .and_then(|s| Star::try_from(s).ok())
                    .ok_or_else(|| {
                        invalid(
                            &path,
                            format!("row {}: star {} is outside 1..=5", rows.len() + 1, stars[r]),
                        )
                    })?;
                let expected = model.model().stars.star_of(scores[r]);
                if star != expected {
                    return Err(invalid(
                        &path,
                        format!(
                            "row {}: star {} does not match score {} under the model's cut-offs ({})",
                            rows.len() + 1,
                            star.get(),
                            scores[r],
                            expected.get()
                        ),
                    ));
                }
                let at = rows.len();
                rows.push((
                    ids[r] as u64,
                    scores[r],
                    star.get(),
                    reasons[r],
                    challenger[r],
                    at,
                ));
            }
        }
        if rows.is_empty() {
            return Err(invalid(
                &path,
                "the snapshot rates no buyer; an empty snapshot is never served",
            ));
        }
        if rows.len() as u64 != manifest.rows {
            return Err(invalid(
                &path,
                format!("{} rows, the manifest says {}", rows.len(), manifest.rows),
            ));
        }
        let mut counts = [0u64; 5];
        for r in &rows {
            counts[usize::from(r.2 - 1)] += 1;
        }
        if counts != manifest.star_counts {
            return Err(invalid(
                &path,
                format!(
                    "star counts {counts:?} differ from the manifest's {:?}",
                    manifest.star_counts
                ),
            ));
        }
        let in_order = rows.windows(2).all(|w| w[0].0 < w[1].0);
        if !in_order {
            rows.sort_unstable_by_key(|r| r.0);
            if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(invalid(&path, format!("buyer {} is rated twice", w[0].0)));
            }
        }
        let has_challenger = manifest.challenger_version.is_some();
        let mut out = Ratings {
            manifest,
            model: Arc::new(model),
            ids: Vec::with_capacity(rows.len()),
            scores: Vec::with_capacity(rows.len()),
            stars: Vec::with_capacity(rows.len()),
            reasons: Vec::with_capacity(rows.len()),
            challenger: has_challenger.then(|| Vec::with_capacity(rows.len())),
            // Rows already in buyer order (as `rate` writes them) keep their points as
            // read; otherwise they are laid out again in the sorted order below.
            points: match (has_points, in_order) {
                (false, _) => None,
                (true, true) => Some(std::mem::take(&mut points)),
                (true, false) => Some(Vec::with_capacity(points.len())),
            },
        };
        for (id, score, star, reasons, ch, at) in rows {
            if let (Some(p), false) = (&mut out.points, in_order) {
                p.extend_from_slice(&points[at * n_features..(at + 1) * n_features]);
            }
            out.ids.push(id);
            out.scores.push(score);
            out.stars.push(star);
            out.reasons.push(reasons);
            if let Some(c) = &mut out.challenger {
                c.push(ch);
            }
        }
        Ok(out)
    }

    /// The rating of a buyer, if the snapshot knows them.
    pub fn get(&self, buyer: BuyerId) -> Option<BuyerRating> {
        let i = self.ids.binary_search(&buyer.0).ok()?;
        let r = self.reasons[i];
        Some(BuyerRating {
            star: Star::try_from(self.stars[i]).unwrap_or(Star::MIN),
            score: self.scores[i],
            reasons: r.map(unpack),
            challenger_star: self
                .challenger
                .as_ref()
                .and_then(|c| Star::try_from(c[i]).ok()),
        })
    }

    /// A buyer's points per feature, as rated (before any strike), when the snapshot
    /// carries them and knows the buyer: what a struck reason is scored again from.
    pub fn points(&self, buyer: BuyerId) -> Option<Points> {
        let all = self.points.as_ref()?;
        let i = self.ids.binary_search(&buyer.0).ok()?;
        let n = self.model.n_features();
        let (points, missing) = all[i * n..(i + 1) * n]
            .iter()
            .enumerate()
            .map(|(j, p)| match *p {
                MISSING_POINTS => (self.model.missing_points(j), true),
                p => (i32::from(p), false),
            })
            .unzip();
        Some(Points { points, missing })
    }

    /// Buyers rated.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The model that scored the snapshot.
    pub fn model(&self) -> &Arc<Scorecard> {
        &self.model
    }

    /// Bytes held per buyer by the packed table (for the memory benchmark), without
    /// and with a challenger's stars.
    pub const BYTES_PER_BUYER: usize =
        std::mem::size_of::<u64>() + std::mem::size_of::<i32>() + 1 + 2 * MAX_REASONS;

    /// The first `n` buyer ids (for examples and load tests).
    pub fn sample_ids(&self, n: usize) -> &[u64] {
        &self.ids[..n.min(self.ids.len())]
    }
}
