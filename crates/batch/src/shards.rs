//! A history too big to hold, split by buyer into shards on disk, so that `rate` and
//! `features` work through it one shard at a time with memory set by the shard count,
//! not by the size of the history.
//!
//! **Split** (one pass over the input, [`split`]): each table file is read a slice of
//! [`CHUNK_ROWS`] rows at a time (a CSV file streamed in batches of about as many by
//! polars' streaming engine, never read whole), checked and normalised exactly as
//! [`crate::tables::load_history`] does, tagged with its file and row, and each row
//! appended to shard `buyer_id mod N` of its table. Nothing assumes the input is sorted
//! by buyer: real histories arrive in time order, split by day. Every buyer's orders,
//! returns and disputes land in one shard, so per-buyer features need no other shard.
//!
//! **Checks**, the same as for a history held whole, with the same messages:
//! - ids unique: proven in the same pass when every table's ids rise (as exports
//!   usually do); otherwise each id range `id mod N` is read back from the input and
//!   sorted on its own, so no hash of every id is ever held;
//! - each return's and dispute's order exists and belongs to its buyer: checked shard
//!   by shard; an order missing from its buyer's shard is looked up in the whole orders
//!   table only to word the error (unknown order, or another buyer's order).
//!
//! **Global statistics** (the category norms) are sums over shards, taken in a first
//! pass over them; see [`crate::rate`].
//!
//! The shards live in a temporary folder (dropped with the [`Sharded`]) written with
//! LZ4; put it on a disk with room for about the input's size (`--work-dir`).

use crate::features::{add_category_counts, category_counts, category_norms};
use crate::tables::{
    DataError, History, Table, hash_file, is_csv, normalised, parquet_rows, read_err, read_part,
    scan_file, scan_table, table_files,
};
use fastrefund_core::cols;
use polars::prelude::*;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows read from an input file at a time while splitting.
pub const CHUNK_ROWS: u64 = 2_000_000;

/// Column of a shard: the index of the input file the row came from.
const FILE_COL: &str = "__file";
/// Column of a shard: the row's 0-based index in its input file.
const ROW_COL: &str = "__row";
const SHARD_COL: &str = "__shard";

const TABLES: [Table; 4] = [
    Table::Orders,
    Table::Returns,
    Table::Disputes,
    Table::Buyers,
];

/// Where the buyers to rate come from: a history held whole, or one split by buyer into
/// shards on disk and worked through one shard at a time.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Whole(&'a History),
    Sharded(&'a Sharded),
}

impl Source<'_> {
    pub fn parts(&self) -> u32 {
        match self {
            Source::Whole(_) => 1,
            Source::Sharded(s) => s.shards(),
        }
    }

    pub fn part(&self, k: u32) -> Result<std::borrow::Cow<'_, History>, DataError> {
        Ok(match self {
            Source::Whole(h) => std::borrow::Cow::Borrowed(*h),
            Source::Sharded(s) => std::borrow::Cow::Owned(s.part(k)?),
        })
    }

    pub fn fingerprint(&self) -> &str {
        match self {
            Source::Whole(h) => &h.fingerprint,
            Source::Sharded(s) => s.fingerprint(),
        }
    }

    /// The category norms `card` rates with: those frozen in the model, or (a model
    /// without them) those of the whole history as of `t` ([`Source::norms`]).
    pub fn norms_for(
        &self,
        t: i64,
        card: &fastrefund_core::scoring::Scorecard,
    ) -> Result<DataFrame, DataError> {
        let frozen = &card.model().category_norms;
        if frozen.is_empty() {
            return self.norms(t);
        }
        crate::features::frozen_norms(frozen).map_err(|e| read_err("category norms", e))
    }

    /// The category norms of the whole history as of `t`: each part's counts, summed.
    pub fn norms(&self, t: i64) -> Result<DataFrame, DataError> {
        let _s = tracing::info_span!("category_norms", parts = self.parts()).entered();
        let mut counts: Option<DataFrame> = None;
        for k in 0..self.parts() {
            let part = match self {
                Source::Whole(h) => category_counts(h, t),
                // Only the columns the counts read.
                Source::Sharded(s) => category_counts(&s.counts_part(k)?, t),
            };
            let e = |e: PolarsError| read_err("category counts", e);
            counts = Some(match counts {
                None => part.collect().map_err(e)?,
                Some(c) => add_category_counts(c.lazy(), part)
                    .and_then(|l| l.collect())
                    .map_err(e)?,
            });
        }
        let counts = counts.unwrap_or_default();
        category_norms(counts.lazy())
            .collect()
            .map_err(|e| read_err("category norms", e))
    }
}

/// How to hold a history: whole, or split into shards to keep within a memory budget.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The peak memory to aim for, in GiB; a history whose working set would pass half
    /// of it is split.
    pub memory_gib: f64,
    /// Exactly this many shards (1: whole); overrides `memory_gib`.
    pub shards: Option<u32>,
    /// Where the shards are written.
    pub work_dir: PathBuf,
}

impl Plan {
    /// The plan of a command that writes `out`: the shards go in `work_dir`, or beside
    /// `out` when it is not given.
    pub fn beside(
        out: &Path,
        memory_gib: MemoryGib,
        shards: Option<u32>,
        work_dir: Option<PathBuf>,
    ) -> Plan {
        Plan {
            memory_gib: memory_gib.0,
            shards,
            work_dir: work_dir.unwrap_or_else(|| {
                out.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."))
            }),
        }
    }
}

/// A memory budget in GiB as `--memory-gib` gives it: a finite number of at least 0.25
/// (less cannot hold one slice of a file); anything else is refused, naming it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryGib(pub f64);

impl std::str::FromStr for MemoryGib {
    type Err = String;
    fn from_str(s: &str) -> Result<MemoryGib, String> {
        match s.trim().parse::<f64>() {
            Ok(g) if g.is_finite() && g >= 0.25 => Ok(MemoryGib(g)),
            _ => Err(format!(
                "{s:?} is not a memory budget in GiB of at least 0.25"
            )),
        }
    }
}

impl std::fmt::Display for MemoryGib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            memory_gib: 4.0,
            shards: None,
            work_dir: PathBuf::from("."),
        }
    }
}

/// A history opened as a [`Plan`] says.
pub enum Opened {
    Whole(History),
    Sharded(Sharded),
}

impl Opened {
    /// Reads and checks the history in `data`, whole or split into shards.
    pub fn open(data: &Path, plan: &Plan) -> Result<Opened, DataError> {
        let n = match plan.shards {
            Some(n) => n.max(1),
            None => {
                let budget = (plan.memory_gib.max(0.25) * 0.5 * (1u64 << 30) as f64) as u64;
                shards_for(data, budget)?
            }
        };
        if n == 1 {
            return Ok(Opened::Whole(crate::tables::load_history(data)?));
        }
        tracing::info!(shards = n, work = %plan.work_dir.display(), "splitting the history by buyer into shards on disk");
        Ok(Opened::Sharded(split(data, n, &plan.work_dir)?))
    }

    pub fn source(&self) -> Source<'_> {
        match self {
            Opened::Whole(h) => Source::Whole(h),
            Opened::Sharded(s) => Source::Sharded(s),
        }
    }
}

/// A history split by buyer into shards on disk.
pub struct Sharded {
    dir: tempfile::TempDir,
    shards: u32,
    fingerprint: String,
    has_buyers: bool,
}

impl Sharded {
    /// How many shards.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// SHA-256 over the input files' names and bytes (the same as a whole history's).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn path(&self, table: Table, k: u32) -> PathBuf {
        shard_path(self.dir.path(), table, k)
    }

    /// Shard `k` as a history: every buyer with `buyer_id mod shards == k`.
    pub fn part(&self, k: u32) -> Result<History, DataError> {
        let read = |t: Table| self.read(t, k, None);
        Ok(History {
            orders: read(Table::Orders)?,
            returns: read(Table::Returns)?,
            disputes: read(Table::Disputes)?,
            buyers: if self.has_buyers {
                Some(read(Table::Buyers)?)
            } else {
                None
            },
            fingerprint: self.fingerprint.clone(),
        })
    }
}

impl Sharded {
    fn read(&self, t: Table, k: u32, columns: Option<&[&str]>) -> Result<DataFrame, DataError> {
        let p = self.path(t, k);
        let label = p.display().to_string();
        let f = File::open(&p).map_err(|e| read_err(&label, e))?;
        ParquetReader::new(f)
            .with_columns(columns.map(|c| c.iter().map(|s| s.to_string()).collect()))
            .finish()
            .map_err(|e| read_err(&label, e))
    }

    /// Shard `k` with only what [`category_counts`] reads.
    fn counts_part(&self, k: u32) -> Result<History, DataError> {
        use cols::*;
        Ok(History {
            orders: self.read(
                Table::Orders,
                k,
                Some(&[ORDER_ID, CATEGORY, STATUS, ORDERED_AT, DELIVERED_AT]),
            )?,
            returns: self.read(
                Table::Returns,
                k,
                Some(&[ORDER_ID, REQUESTED_AT, OUTCOME, OUTCOME_AT, AMOUNT]),
            )?,
            disputes: self.read(Table::Disputes, k, Some(&[cols::BUYER_ID]))?,
            buyers: None,
            fingerprint: self.fingerprint.clone(),
        })
    }
}

fn shard_path(dir: &Path, table: Table, k: u32) -> PathBuf {
    dir.join(format!("{}-{k:05}.parquet", table.name()))
}

/// The files of one input table.
struct Inputs {
    files: Vec<PathBuf>,
}

impl Inputs {
    fn locate(&self, file: u32, row: u64) -> (String, u64) {
        let label = self
            .files
            .get(file as usize)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "?".into());
        (label, row + 1)
    }
}

/// Splits the history in `data` into `shards` shards by buyer, in a temporary folder
/// under `work`, checking it as [`crate::tables::load_history`] does.
pub fn split(data: &Path, shards: u32, work: &Path) -> Result<Sharded, DataError> {
    split_in(data, shards, work, CHUNK_ROWS)
}

/// [`split`], reading `chunk_rows` rows of an input file at a time.
fn split_in(data: &Path, shards: u32, work: &Path, chunk_rows: u64) -> Result<Sharded, DataError> {
    let _s = tracing::info_span!("split", data = %data.display(), shards).entered();
    let shards = shards.max(1);
    std::fs::create_dir_all(work).map_err(|e| read_err(&work.display().to_string(), e))?;
    let dir = tempfile::Builder::new()
        .prefix(".fastrefund-shards-")
        .tempdir_in(work)
        .map_err(|e| read_err(&work.display().to_string(), e))?;
    // The fingerprint (every input file's name and bytes, in table order) is hashed on
    // a thread of its own while the files are split.
    let mut all_files: Vec<PathBuf> = Vec::new();
    for t in TABLES {
        all_files.extend(table_files(data, t)?);
    }
    let hashing = std::thread::spawn(move || -> Result<String, DataError> {
        let mut hasher = Sha256::new();
        for f in &all_files {
            hash_file(f, &mut hasher)?;
        }
        Ok(hex::encode(hasher.finalize()))
    });
    let mut inputs = Vec::new();
    let mut has_buyers = false;
    for table in TABLES {
        let files = table_files(data, table)?;
        if files.is_empty() {
            if table == Table::Buyers {
                continue;
            }
            return Err(DataError::MissingTable {
                dir: data.display().to_string(),
                table: table.name(),
            });
        }
        has_buyers |= table == Table::Buyers;
        let increasing = split_table(table, &files, shards, chunk_rows, dir.path())?;
        let input = Inputs { files };
        if !increasing {
            check_unique(table, &input, shards)?;
        }
        inputs.push((table, input));
    }
    let sharded = Sharded {
        dir,
        shards,
        fingerprint: hashing
            .join()
            .map_err(|_| read_err(&data.display().to_string(), "hashing the input failed"))??,
        has_buyers,
    };
    let find = |t: Table| inputs.iter().find(|(x, _)| *x == t).map(|(_, i)| i);
    if let (Some(orders), Some(returns), Some(disputes)) = (
        find(Table::Orders),
        find(Table::Returns),
        find(Table::Disputes),
    ) {
        check_orders(&sharded, orders, returns, Table::Returns, "return")?;
        check_orders(&sharded, orders, disputes, Table::Disputes, "dispute")?;
    }
    Ok(sharded)
}

/// Writes one table's rows into its shards; returns whether the ids rose strictly
/// through the whole table.
fn split_table(
    table: Table,
    files: &[PathBuf],
    shards: u32,
    chunk_rows: u64,
    dir: &Path,
) -> Result<bool, DataError> {
    // Reading, checking and partitioning a slice overlaps with encoding and writing the
    // one before: one slice in flight, so memory holds two slices at most.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Pieces>(1);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_pieces(table, files, shards, chunk_rows, tx));
        let written = write_pieces(table, shards, dir, rx);
        let (increasing, schema) = reader
            .join()
            .map_err(|_| read_err(table.name(), "the thread reading the input panicked"))??;
        let writers = written?;
        let schema = schema.unwrap_or_default();
        for (k, w) in writers.into_iter().enumerate() {
            let p = shard_path(dir, table, k as u32);
            let e = |e: PolarsError| read_err(&p.display().to_string(), e);
            match w {
                Some(w) => {
                    w.finish().map_err(e)?;
                }
                None => {
                    let mut w = shard_writer(dir, table, k as u32, &schema)?;
                    w.write_batch(&DataFrame::empty_with_schema(&schema))
                        .map_err(e)?;
                    w.finish().map_err(e)?;
                }
            }
        }
        Ok(increasing)
    })
}

/// One slice of an input file, checked and split: its label, and each shard's rows.
type Pieces = (String, Vec<Option<DataFrame>>);

/// Reads each file a slice at a time, checks it, tags its rows with file and row, and
/// sends each slice split by shard. Returns whether the ids rose strictly through the
/// whole table, and the shards' schema. Stops early if the writer has gone.
fn read_pieces(
    table: Table,
    files: &[PathBuf],
    shards: u32,
    chunk_rows: u64,
    tx: std::sync::mpsc::SyncSender<Pieces>,
) -> Result<(bool, Option<Schema>), DataError> {
    let mut schema: Option<Schema> = None;
    let mut last: Option<u64> = None;
    let mut increasing = true;
    for (fi, f) in files.iter().enumerate() {
        let label = f.display().to_string();
        let e = |e: PolarsError| read_err(&label, e);
        let mut each = |mut df: DataFrame, offset: u64| -> Result<bool, DataError> {
            let h = df.height() as u64;
            if increasing {
                for v in df.column(table.key()).map_err(e)?.u64().map_err(e)?.iter() {
                    let Some(v) = v else { continue };
                    if last.is_some_and(|l| l >= v) {
                        increasing = false;
                        break;
                    }
                    last = Some(v);
                }
            }
            let shard: Vec<u32> = df
                .column(cols::BUYER_ID)
                .map_err(e)?
                .u64()
                .map_err(e)?
                .iter()
                .map(|b| (b.unwrap_or(0) % u64::from(shards)) as u32)
                .collect();
            df.with_column(Column::new(FILE_COL.into(), vec![fi as u32; h as usize]))
                .map_err(e)?;
            df.with_column(Column::new(
                ROW_COL.into(),
                (offset..offset + h).collect::<Vec<u64>>(),
            ))
            .map_err(e)?;
            if schema.is_none() {
                schema = Some(df.schema().as_ref().clone());
            }
            df.with_column(Column::new(SHARD_COL.into(), shard))
                .map_err(e)?;
            let mut pieces: Vec<Option<DataFrame>> = (0..shards).map(|_| None).collect();
            for piece in df.partition_by([SHARD_COL], true).map_err(e)? {
                let k = piece
                    .column(SHARD_COL)
                    .map_err(e)?
                    .u32()
                    .map_err(e)?
                    .get(0)
                    .unwrap_or(0);
                pieces[k as usize] = Some(piece.drop(SHARD_COL).map_err(e)?);
            }
            // A closed channel: the writer failed, and reports why.
            Ok(tx.send((label.clone(), pieces)).is_ok())
        };
        if !for_each_slice(f, table, chunk_rows, &mut each)? {
            break;
        }
    }
    Ok((increasing, schema))
}

/// Calls `each` with every slice of a table file, checked and normalised as
/// [`crate::tables::load_history`] does, and the index of its first row in the file: a
/// Parquet file `chunk_rows` rows at a time by row range, a CSV file streamed in batches
/// of about as many rows by polars' streaming engine, so neither is ever held whole.
/// `each` returns false to stop; so does this.
fn for_each_slice(
    f: &Path,
    table: Table,
    chunk_rows: u64,
    each: &mut dyn FnMut(DataFrame, u64) -> Result<bool, DataError>,
) -> Result<bool, DataError> {
    let label = f.display().to_string();
    if !is_csv(f) {
        let n = parquet_rows(f)?;
        for o in (0..n.max(1)).step_by(chunk_rows.max(1) as usize) {
            if !each(read_part(f, table, Some((o, chunk_rows)))?, o)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<DataFrame>(1);
    let sink = scan_table(f, table)?
        .sink_batches(
            // Stops the scan once the receiver is gone.
            PlanCallback::new(move |df: DataFrame| Ok(tx.send(df).is_err())),
            true,
            // Text until normalised: a quarter of the rows keeps a slice's bytes near a
            // Parquet slice's (1M buyers as CSV: 6.3 GiB peak read whole, 3.7 GiB in
            // slices of 2M rows, 2.4 GiB in slices of 500k, as from Parquet).
            std::num::NonZeroUsize::new((chunk_rows / 4).max(1) as usize),
        )
        .map_err(|e| read_err(&label, e))?;
    std::thread::scope(|scope| {
        let runner = scope.spawn(move || sink.collect_with_engine(Engine::Streaming).map(|_| ()));
        let mut offset = 0;
        let mut outcome = Ok(true);
        // `rx` is consumed here, so a scan still sending stops at its next batch.
        for raw in rx {
            let h = raw.height() as u64;
            match normalised(&raw, table, &label, offset).and_then(|df| each(df, offset)) {
                Ok(true) => offset += h,
                other => {
                    outcome = other;
                    break;
                }
            }
        }
        let ran = runner
            .join()
            .map_err(|_| read_err(&label, "the thread reading the CSV file panicked"))?;
        let go_on = outcome?;
        ran.map_err(|e| read_err(&label, e))?;
        if go_on && offset == 0 {
            // No rows: the empty table still gives the shards their schema.
            let empty = scan_table(f, table)?
                .limit(0)
                .collect()
                .map_err(|e| read_err(&label, e))?;
            return each(normalised(&empty, table, &label, 0)?, 0);
        }
        Ok(go_on)
    })
}

/// Appends each slice's pieces to their shards' files, encoding the shards in parallel.
fn write_pieces(
    table: Table,
    shards: u32,
    dir: &Path,
    rx: std::sync::mpsc::Receiver<Pieces>,
) -> Result<Vec<Option<polars::io::parquet::write::BatchedWriter<File>>>, DataError> {
    use rayon::prelude::*;
    let mut writers: Vec<Option<polars::io::parquet::write::BatchedWriter<File>>> =
        (0..shards).map(|_| None).collect();
    for (label, pieces) in rx {
        let e = |e: PolarsError| read_err(&label, e);
        writers
            .par_iter_mut()
            .zip(pieces.into_par_iter())
            .enumerate()
            .try_for_each(|(k, (slot, piece))| -> Result<(), DataError> {
                let Some(piece) = piece else { return Ok(()) };
                let w = match slot {
                    Some(w) => w,
                    slot => slot.insert(shard_writer(dir, table, k as u32, piece.schema())?),
                };
                w.write_batch(&piece).map_err(e)
            })?;
    }
    Ok(writers)
}

fn shard_writer(
    dir: &Path,
    table: Table,
    k: u32,
    schema: &Schema,
) -> Result<polars::io::parquet::write::BatchedWriter<File>, DataError> {
    let p = shard_path(dir, table, k);
    let label = p.display().to_string();
    let f = File::create(&p).map_err(|e| read_err(&label, e))?;
    ParquetWriter::new(f)
        .with_compression(ParquetCompression::Lz4Raw)
        .batched(schema)
        .map_err(|e| read_err(&label, e))
}

/// Refuses a repeated id in a table whose ids do not rise: each id range
/// `id mod shards` is read back from the input and sorted on its own. Reports the
/// repeat whose second row comes first, as the whole-history check does.
fn check_unique(table: Table, input: &Inputs, shards: u32) -> Result<(), DataError> {
    let _s = tracing::info_span!("check_unique", table = table.name()).entered();
    let key = table.key();
    // (first occurrence, second occurrence, id), occurrences as (file, row).
    type Repeat = ((u32, u64), (u32, u64), u64);
    let mut worst: Option<Repeat> = None;
    for k in 0..shards {
        let mut frames = Vec::new();
        for (fi, f) in input.files.iter().enumerate() {
            let label = f.display().to_string();
            let e = |e: PolarsError| read_err(&label, e);
            let ids = scan_file(f)?
                .select([col(key).strict_cast(DataType::UInt64).alias(key)])
                .with_row_index(ROW_COL, None)
                .filter((col(key) % lit(u64::from(shards))).eq(lit(u64::from(k))))
                .with_column(lit(fi as u32).cast(DataType::UInt32).alias(FILE_COL))
                .collect()
                .map_err(e)?;
            frames.push(ids.lazy());
        }
        let all = concat(frames, UnionArgs::default())
            .and_then(|lf| {
                lf.sort([key, FILE_COL, ROW_COL], SortMultipleOptions::default())
                    .collect()
            })
            .map_err(|e| read_err(table.name(), e))?;
        let e = |e: PolarsError| read_err(table.name(), e);
        let ids = all.column(key).map_err(e)?.u64().map_err(e)?;
        let files = all.column(FILE_COL).map_err(e)?.u32().map_err(e)?;
        let rows = all.column(ROW_COL).map_err(e)?.idx().map_err(e)?;
        for i in 1..all.height() {
            if ids.get(i).is_some() && ids.get(i) == ids.get(i - 1) {
                let first = (
                    files.get(i - 1).unwrap_or(0),
                    rows.get(i - 1).unwrap_or(0) as u64,
                );
                let second = (files.get(i).unwrap_or(0), rows.get(i).unwrap_or(0) as u64);
                if worst.is_none_or(|w| second < w.1) {
                    worst = Some((first, second, ids.get(i).unwrap_or(0)));
                }
            }
        }
    }
    if let Some((first, second, value)) = worst {
        let (first_file, first_row) = input.locate(first.0, first.1);
        let (file, row) = input.locate(second.0, second.1);
        return Err(DataError::Duplicate {
            file,
            row,
            column: key,
            value,
            first_file,
            first_row,
        });
    }
    Ok(())
}

/// Refuses a return or dispute whose order is unknown or another buyer's, naming the
/// first such row of the table.
fn check_orders(
    sharded: &Sharded,
    orders: &Inputs,
    table_input: &Inputs,
    table: Table,
    what: &'static str,
) -> Result<(), DataError> {
    let _s = tracing::info_span!("check_orders", table = table.name()).entered();
    let key = table.key();
    const OWNER: &str = "__order_buyer";
    // (file, row, id, order, buyer, the order's buyer in the same shard)
    let mut first: Option<(u32, u64, u64, u64, u64, Option<u64>)> = None;
    for k in 0..sharded.shards {
        let read = |t: Table, columns: &[&str]| -> Result<LazyFrame, DataError> {
            let p = sharded.path(t, k);
            let pl_path = PlRefPath::new(p.to_string_lossy().into_owned());
            Ok(LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default())
                .map_err(|e| read_err(&p.display().to_string(), e))?
                .select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>()))
        };
        let bad = read(
            table,
            &[key, cols::ORDER_ID, cols::BUYER_ID, FILE_COL, ROW_COL],
        )?
        .join(
            read(Table::Orders, &[cols::ORDER_ID, cols::BUYER_ID])?
                .select([col(cols::ORDER_ID), col(cols::BUYER_ID).alias(OWNER)]),
            [col(cols::ORDER_ID)],
            [col(cols::ORDER_ID)],
            JoinArgs::new(JoinType::Left),
        )
        .filter(col(OWNER).is_null().or(col(OWNER).neq(col(cols::BUYER_ID))))
        .sort([FILE_COL, ROW_COL], SortMultipleOptions::default())
        .limit(1)
        .collect()
        .map_err(|e| read_err(table.name(), e))?;
        if bad.height() == 0 {
            continue;
        }
        let e = |e: PolarsError| read_err(table.name(), e);
        let u = |c: &str| -> Result<u64, DataError> {
            Ok(bad
                .column(c)
                .map_err(e)?
                .u64()
                .map_err(e)?
                .get(0)
                .unwrap_or(0))
        };
        let file = bad
            .column(FILE_COL)
            .map_err(e)?
            .u32()
            .map_err(e)?
            .get(0)
            .unwrap_or(0);
        let row = u(ROW_COL)?;
        let owner = bad.column(OWNER).map_err(e)?.u64().map_err(e)?.get(0);
        if first.is_none_or(|f| (file, row) < (f.0, f.1)) {
            first = Some((
                file,
                row,
                u(key)?,
                u(cols::ORDER_ID)?,
                u(cols::BUYER_ID)?,
                owner,
            ));
        }
    }
    let Some((file, row, id, order_id, buyer_id, owner)) = first else {
        return Ok(());
    };
    // Not in the buyer's shard: look for the order in the whole table to say why.
    let owner = match owner {
        Some(o) => Some(o),
        None => order_owner(orders, order_id)?,
    };
    let (file, row) = table_input.locate(file, row);
    Err(match owner {
        None => DataError::UnknownOrder {
            file,
            row,
            what,
            id,
            order_id,
        },
        Some(order_buyer) => DataError::BuyerMismatch {
            file,
            row,
            what,
            id,
            buyer_id,
            order_id,
            order_buyer,
        },
    })
}

/// The buyer of `order_id`, from the input orders files (read as stored: this only
/// words an error about data already checked).
fn order_owner(orders: &Inputs, order_id: u64) -> Result<Option<u64>, DataError> {
    for f in &orders.files {
        let label = f.display().to_string();
        let df = scan_file(f)?
            .select([
                col(cols::ORDER_ID).strict_cast(DataType::UInt64),
                col(cols::BUYER_ID).strict_cast(DataType::UInt64),
            ])
            .filter(col(cols::ORDER_ID).eq(lit(order_id)))
            .collect()
            .map_err(|e| read_err(&label, e))?;
        if let Some(b) = df
            .column(cols::BUYER_ID)
            .ok()
            .and_then(|c| c.u64().ok().and_then(|c| c.iter().flatten().next()))
        {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// The number of shards that keeps one shard's work within `budget` bytes, from the
/// input's row count: about [`BYTES_PER_ROW`] per input row while features are computed
/// (measured: 4.5 GiB for the 1M-buyer history's 18.6M orders and their returns).
pub fn shards_for(data: &Path, budget: u64) -> Result<u32, DataError> {
    let mut rows = 0u64;
    for table in TABLES {
        for f in table_files(data, table)? {
            rows += if is_csv(&f) {
                // Counting a CSV's rows would take a pass over it: its size over 64
                // bytes a row estimates them on the safe side (the generator's rows
                // are about 105 bytes as CSV, so more shards, never fewer).
                std::fs::metadata(&f)
                    .map_err(|e| read_err(&f.display().to_string(), e))?
                    .len()
                    / 64
            } else {
                parquet_rows(&f)?
            };
        }
    }
    let need = rows.saturating_mul(BYTES_PER_ROW);
    Ok(need.div_ceil(budget.max(1)).clamp(1, 4096) as u32)
}

/// Working memory per input row while one part's features are computed.
pub const BYTES_PER_ROW: u64 = 220;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample")
    }

    /// The shipped sample's tables, written as CSV files into `dir`.
    fn sample_as_csv(dir: &Path) {
        for t in TABLES {
            let p = sample().join(format!("{}.parquet", t.name()));
            let mut df = ParquetReader::new(File::open(p).unwrap()).finish().unwrap();
            let mut f = File::create(dir.join(format!("{}.csv", t.name()))).unwrap();
            CsvWriter::new(&mut f).finish(&mut df).unwrap();
        }
    }

    fn shards_of(s: &Sharded, t: Table) -> Vec<DataFrame> {
        (0..s.shards())
            .map(|k| {
                let df = s.read(t, k, None).unwrap();
                df.drop(FILE_COL).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_csv_file_is_streamed_in_slices_and_split_as_its_parquet_twin() {
        let csv = tempfile::tempdir().unwrap();
        sample_as_csv(csv.path());
        let orders = csv.path().join("orders.csv");
        let rows = parquet_rows(&sample().join("orders.parquet")).unwrap();

        // Many slices, each starting where the one before ended.
        let mut slices = 0;
        let mut next = 0;
        let mut each = |df: DataFrame, offset: u64| -> Result<bool, DataError> {
            assert_eq!(offset, next);
            assert!(df.height() <= 1000, "a slice of {} rows", df.height());
            next += df.height() as u64;
            slices += 1;
            Ok(true)
        };
        assert!(for_each_slice(&orders, Table::Orders, 1000, &mut each).unwrap());
        assert_eq!(next, rows);
        assert!(slices >= rows / 1000, "{slices} slices of {rows} rows");

        // Split from CSV slices of 97 rows, the shards hold what the Parquet files give.
        let work = tempfile::tempdir().unwrap();
        let from_csv = split_in(csv.path(), 3, work.path(), 97).unwrap();
        let from_parquet = split_in(&sample(), 3, work.path(), CHUNK_ROWS).unwrap();
        for t in TABLES {
            let (a, b) = (shards_of(&from_csv, t), shards_of(&from_parquet, t));
            for (k, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!(a.height() > 0, "{} shard {k} is empty", t.name());
                assert!(a.equals_missing(b), "{} shard {k}:\n{a}\n{b}", t.name());
            }
        }
    }

    #[test]
    fn a_bad_value_deep_in_a_streamed_csv_is_named_by_its_row() {
        let csv = tempfile::tempdir().unwrap();
        sample_as_csv(csv.path());
        // Break the 1,234th return's amount.
        let p = csv.path().join("returns.csv");
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let amount = header.iter().position(|c| *c == cols::AMOUNT).unwrap();
        let mut fields: Vec<String> = lines[1234].split(',').map(str::to_string).collect();
        fields[amount] = "-5.00".into();
        lines[1234] = fields.join(",");
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let work = tempfile::tempdir().unwrap();
        let whole = crate::tables::load_history(csv.path())
            .err()
            .unwrap()
            .to_string();
        let sliced = split_in(csv.path(), 3, work.path(), 100)
            .err()
            .unwrap()
            .to_string();
        assert!(whole.contains("row 1234"), "{whole}");
        assert_eq!(sliced, whole);
    }
}
