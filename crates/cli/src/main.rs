//! The `fastrefund` command: parses the command line, starts logging, dispatches.

use anyhow::Result;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fastrefund",
    version,
    about = "Buyer star ratings and fast-refund eligibility"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the eligibility API (with no options: the built-in sample snapshot and the
    /// default policy on 127.0.0.1:8080).
    Serve(fastrefund_service::cli::ServeArgs),
    /// The model registry: list the trained models, promote one to champion.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Write every return the service decided, in the `returns` table shape (.parquet or .csv).
    ExportOutcomes {
        /// The ledger: a SQLite file, or a PostgreSQL URL (`postgres://USER@HOST:PORT/DB`).
        #[arg(long)]
        ledger: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write every decided case in the `disputes` table shape (.parquet or .csv), so that
    /// the next rating reads reviewers' decisions as it reads disputes; then the columns
    /// the overturn rates need (case_kind, return_id, star_at_open, reason_code,
    /// merchant_at_fault: docs/input-types.md). With --overrides, also the reasons
    /// struck by rating cases the buyers won, for `rate --overrides`.
    ExportCases {
        /// The ledger: a SQLite file, or a PostgreSQL URL (`postgres://USER@HOST:PORT/DB`).
        #[arg(long)]
        ledger: PathBuf,
        /// The decided cases (.parquet or .csv); may be left out with --overrides.
        #[arg(long, required_unless_present = "overrides")]
        out: Option<PathBuf>,
        /// Also write the overrides file (.parquet or .csv): one row per reason struck
        /// by a rating case the buyer won (case_id, buyer_id, reason_code,
        /// points_at_open, decided_at), for `rate --overrides`.
        #[arg(long)]
        overrides: Option<PathBuf>,
        /// The ratings snapshot that was in service when the cases were opened: each
        /// buyer's star there is `star_at_open`, its first reason `reason_code` (without
        /// it both are left empty).
        #[arg(long)]
        snapshot: Option<PathBuf>,
    },
    /// Generate a synthetic purchase and return history with a known truth.
    Generate {
        /// Number of buyers.
        #[arg(long, default_value_t = 2000)]
        buyers: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output folder (orders, returns, disputes, buyers, truth .parquet).
        #[arg(long)]
        out: PathBuf,
        /// First day of the history.
        #[arg(long, default_value = "2025-01-01")]
        start: NaiveDate,
        /// Day after the last day of the history.
        #[arg(long, default_value = "2026-06-30")]
        end: NaiveDate,
    },
    /// Write every buyer's features (and label) as of a date to a Parquet file.
    Features {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        as_of: NaiveDate,
        #[arg(long)]
        out: PathBuf,
        /// Compute the features as this model rates them: with the category norms frozen
        /// in it (default: the norms of the history itself).
        #[arg(long)]
        model: Option<PathBuf>,
        #[command(flatten)]
        parts: PartsArgs,
    },
    /// Write the whole of `rate` as one SQL query (Spark or DuckDB) over the contract's
    /// tables `orders`, `returns`, `disputes` and `buyers`; its result has the columns of
    /// ratings.parquet.
    ExportSql {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        as_of: NaiveDate,
        /// spark or duckdb.
        #[arg(long, default_value = "spark")]
        dialect: fastrefund_batch::sql::Dialect,
        /// Write the script here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Rate only the buyers with buyer_id % N = K (K/N, e.g. 0/8): run the N scripts
        /// one after the other on an engine that cannot hold every buyer at once.
        #[arg(long, value_name = "K/N")]
        buyer_shard: Option<fastrefund_batch::sql::BuyerShard>,
        /// Also read a table `overrides` (the file `export-cases --overrides` writes) and
        /// strike those reasons, as `rate --overrides` does.
        #[arg(long)]
        overrides: bool,
    },
    /// Train a scorecard on a history (--data) or on any labelled table (--table).
    Train(Box<TrainArgs>),
    /// Score a labelled table (or a history as of a date) with a model and report AUC, KS, Gini, Brier.
    Evaluate {
        #[arg(long)]
        model: PathBuf,
        /// A labelled table (Parquet or CSV).
        #[arg(
            long,
            conflicts_with = "data",
            required_unless_present = "data",
            requires = "label"
        )]
        table: Option<PathBuf>,
        /// The label column of --table (0/1, 1 = bad).
        #[arg(long, requires = "table")]
        label: Option<String>,
        /// A history folder, evaluated as of --as-of.
        #[arg(long, requires = "as_of")]
        data: Option<PathBuf>,
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Print {"auc", "ks", "gini", "brier", "rows"} as JSON (with --cases, and "cases").
        #[arg(long)]
        json: bool,
        /// A decided-cases file (export-cases or simulate --contested-out): also report
        /// the overturn rates by star at opening and by reason code.
        #[arg(long)]
        cases: Option<PathBuf>,
    },
    /// Score every buyer as of a date and publish a ratings snapshot atomically.
    Rate(RateArgs),
    /// Replay a history's return requests against a running service (demo, feedback loop, load).
    Replay(ReplayArgs),
    /// Replay a history's return requests under the current policy and model and under a
    /// candidate, side by side: instant share, value advanced, expected and realised
    /// loss, hours saved, per star and per category (Markdown on stdout; JSON, Markdown
    /// and SVG figures in --out).
    Simulate(SimulateArgs),
    /// Compare a snapshot's stars with the generator's hidden truth (synthetic data only).
    Judge {
        /// The generated history (for truth.parquet).
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        snapshot: PathBuf,
        /// Folder for star-by-type.json and star-by-type.svg.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `simulate`'s options: at least one of the candidate's (clap refuses a run with none:
/// nothing to compare); simulate checks their values ([`fastrefund_simulate::SimulateOptions::check`]).
#[derive(clap::Args)]
#[command(group(
    clap::ArgGroup::new("candidate")
        .args(["candidate_policy", "candidate_model", "candidate_min_star"])
        .required(true)
        .multiple(true)
))]
struct SimulateArgs {
    /// The history whose returns are replayed.
    #[arg(long)]
    data: PathBuf,
    /// First day replayed (buyers are rated as of this day, then every --rerate-days).
    #[arg(long)]
    from: NaiveDate,
    /// Day after the last replayed (default: the end of the history).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// The current policy (default: the shipped policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The current model (default: the registry's champion).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value = "models")]
    registry: PathBuf,
    /// The candidate policy (default: the current one).
    #[arg(long)]
    candidate_policy: Option<PathBuf>,
    /// The candidate model (default: the current one).
    #[arg(long)]
    candidate_model: Option<PathBuf>,
    /// Shortcut: the candidate is the (candidate or current) policy with this minimum star.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    candidate_min_star: Option<u8>,
    /// Rate the buyers again every this many days.
    #[arg(long, default_value_t = 30)]
    rerate_days: u32,
    /// Hours of waiting an instant answer saves (default: the policy's merchant deadline, 72 h).
    #[arg(long)]
    merchant_wait_hours: Option<f64>,
    /// What one return parcel costs (courier, warehouse check, restocking), which a
    /// refund without return saves: a decimal amount such as 12.00.
    #[arg(long, default_value = "12.00")]
    parcel_cost: fastrefund_core::domain::Money,
    /// Folder for simulation.json, simulation.md and the figures.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write contested outcomes for a demo (.parquet or .csv, the decided-cases
    /// shape): merchants misreport some losses, buyers contest, reviewers decide, with
    /// the truth in `merchant_at_fault` (see docs/data-team.md); buyers rated with the
    /// current model.
    #[arg(long)]
    contested_out: Option<PathBuf>,
    /// The seed of the contested outcomes.
    #[arg(long, default_value_t = 1, requires = "contested_out")]
    contested_seed: u64,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Every model in the registry, newest first, with its metrics; `*` marks the champion.
    List {
        #[arg(long, default_value = "models")]
        registry: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a version the champion (the model `rate` and `simulate` use by default),
    /// after checking its artifact; logged in promotions.jsonl.
    Promote {
        version: String,
        #[arg(long, default_value = "models")]
        registry: PathBuf,
    },
}

#[derive(clap::Args)]
struct RateArgs {
    #[arg(long)]
    data: PathBuf,
    /// The model (default: the registry's champion).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The model registry the champion comes from.
    #[arg(long, default_value = "models")]
    registry: PathBuf,
    #[arg(long)]
    as_of: NaiveDate,
    #[arg(long)]
    out: PathBuf,
    /// Also rate every buyer with this challenger (e.g. the `challenger.json` that
    /// `train` writes beside the model): the service then runs it in shadow.
    #[arg(long)]
    challenger: Option<PathBuf>,
    /// Snapshot in service to measure drift against (default: the one at --out).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Refuse to publish when the score PSI against the baseline passes this.
    #[arg(long, default_value_t = 0.25)]
    max_psi: f64,
    /// Publish even past --max-psi.
    #[arg(long)]
    force: bool,
    /// A decided-cases file (export-cases or simulate --contested-out) of the cases
    /// decided under the snapshot in service: the snapshot carries their overturn rates
    /// by star at opening and by reason code (`cases.json`, `cases.svg`).
    #[arg(long)]
    cases: Option<PathBuf>,
    /// The reasons struck by rating cases the buyers won (export-cases --overrides,
    /// .parquet or .csv): each such buyer is published with the reason struck, as the
    /// service already serves them (the points_<feature> columns stay unstruck).
    #[arg(long)]
    overrides: Option<PathBuf>,
    #[command(flatten)]
    parts: PartsArgs,
}

/// How a history too big to hold is worked through.
#[derive(clap::Args)]
struct PartsArgs {
    /// The peak memory to aim for, in GiB. A history whose working set would pass half
    /// of it is split by buyer into shards on disk and rated one shard at a time.
    #[arg(long, default_value = "4")]
    memory_gib: fastrefund_batch::shards::MemoryGib,
    /// Split into exactly this many shards (1: hold the history whole); overrides
    /// --memory-gib.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    shards: Option<u32>,
    /// Where the shards are written (about the input's size; default: beside --out).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The history whose returns are replayed.
    #[arg(long)]
    data: PathBuf,
    /// Base URL of the service.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The refund-service token.
    #[arg(long, env = "FASTREFUND_API_TOKEN", hide_env_values = true)]
    token: String,
    /// Replay returns asked on or after this day (default: the first).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// ... and before this day (default: all).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Requests in flight (at least 1).
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
    /// Buyers who keep not shipping after advances (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    not_shipping: Vec<u64>,
    /// Do not send outcomes.
    #[arg(long)]
    no_outcomes: bool,
    /// At most this many returns.
    #[arg(long)]
    limit: Option<usize>,
}

/// `train`'s options: each parses itself (the per-feature ones by
/// [`fastrefund_train::options`]), the trainer's parameters default to
/// [`fastrefund_train::TrainParams::default`], and the trainer checks them.
#[derive(clap::Args)]
struct TrainArgs {
    /// A history folder: buyer features as of --as-of, tested out of time.
    #[arg(
        long,
        conflicts_with = "table",
        required_unless_present = "table",
        requires = "as_of"
    )]
    data: Option<PathBuf>,
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// As-of date of the out-of-time test (default: --as-of + 90 days).
    #[arg(long)]
    test_as_of: Option<NaiveDate>,
    /// Any table (Parquet or CSV) with a 0/1 label column; text columns are categorical.
    #[arg(long, requires = "label")]
    table: Option<PathBuf>,
    /// The label column of --table (1 = bad).
    #[arg(long)]
    label: Option<String>,
    /// Share of --table rows held out for testing (seeded random split).
    #[arg(long, default_value_t = 0.3)]
    test_fraction: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Columns of --table that are not features (comma-separated).
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Out-of-time split of --table: rows with this column >= --split-at are the test set.
    #[arg(long, requires = "split_at")]
    split_column: Option<String>,
    #[arg(long)]
    split_at: Option<String>,
    /// Where model.json and the evaluation go.
    #[arg(
        long,
        required_unless_present = "registry",
        conflicts_with = "registry"
    )]
    out: Option<PathBuf>,
    /// Write into this registry as <REGISTRY>/<version>/ instead (e.g. `models`).
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Most bins per feature.
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().max_bins)]
    max_bins: usize,
    /// Score at the base odds.
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().base_score)]
    base_score: f64,
    /// Points to double the odds.
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().pdo)]
    pdo: f64,
    /// Of two features whose WOE correlate more than this, keep the one with more IV.
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().max_correlation)]
    max_correlation: f64,
    /// Drop features with less information value.
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().min_iv)]
    min_iv: f64,
    /// Least training rows in a bin (with the least share, 1%).
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().min_bin_rows)]
    min_bin_rows: usize,
    /// Do not train the challenger (bagged trees) beside the scorecard.
    #[arg(long)]
    no_challenger: bool,
    /// With --data: fit on a seeded sample (--seed) of this many buyers of the
    /// performance population; the out-of-time test still scores every buyer.
    #[arg(long, requires = "data")]
    sample_buyers: Option<u64>,
    /// With --data: buyers of the training history the promises to honest buyers are
    /// tried on (one more return of each kind added to each; see docs/promises.md).
    #[arg(long, requires = "data", default_value_t = 5000)]
    promise_sample: usize,
    /// Publish the model even if it breaks a promise to honest buyers (the report says so).
    #[arg(long)]
    force: bool,
    /// A decided-cases file (export-cases or simulate --contested-out): the report gains
    /// a `cases` section, the overturn rates by star at opening and by reason code.
    #[arg(long)]
    cases: Option<PathBuf>,
    /// A feature's monotonic trend, FEATURE=TREND (repeatable): auto_asc_desc (the
    /// default), auto (also peak or valley when a bend earns 10% more IV), ascending,
    /// descending, peak, valley, none.
    #[arg(long = "trend", value_name = "FEATURE=TREND")]
    trends: Vec<fastrefund_train::options::FeatureTrend>,
    /// Special values with a bin of their own, FEATURE=V1,V2 (repeatable; `*` = every
    /// numeric feature), e.g. `--special '*=-999'`.
    #[arg(long = "special", value_name = "FEATURE=VALUES")]
    specials: Vec<fastrefund_train::options::FeatureNumbers>,
    /// Split points to cut a feature's bins at, FEATURE=S1,S2,… increasing (repeatable).
    #[arg(long = "splits", value_name = "FEATURE=POINTS")]
    splits: Vec<fastrefund_train::options::FeatureNumbers>,
    /// The bin that takes a category never seen in training: other (the pool of rare
    /// categories), missing, worst.
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().unseen_category)]
    unseen_category: fastrefund_train::UnseenCategory,
    /// Merge adjacent bins whose bad rates differ by less than this (e.g. 0.01).
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().min_bad_rate_diff)]
    min_bad_rate_diff: f64,
    /// How a monotone trend's bins are chosen from the pre-bins: greedy or optimal (the
    /// most information value under the same constraints, exactly).
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().binning)]
    binning: fastrefund_train::BinningSearch,
    /// How numeric values are cut into pre-bins: quantile or cart (optbinning's: a
    /// Gini tree's leaves, each at least 5% of the rows).
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().prebinning)]
    prebinning: fastrefund_train::Prebinning,
    /// A feature whose coefficient has the wrong sign: drop (refit without it, so every
    /// feature's points rise with its evidence) or keep (as optbinning does).
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().wrong_signs)]
    wrong_signs: fastrefund_train::WrongSigns,
    /// Rank features by iv or quality (optbinning's quality score) for the correlation
    /// filter and --max-features.
    #[arg(long, default_value_t = fastrefund_train::TrainParams::default().selection)]
    select: fastrefund_train::Selection,
    /// Keep at most this many features, the best by --select.
    #[arg(long)]
    max_features: Option<usize>,
    #[command(flatten)]
    parts: PartsArgs,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    fastrefund_service::cli::init_logging(!matches!(cli.command, Command::Serve(_)))?;
    match cli.command {
        Command::Serve(a) => fastrefund_service::cli::run(a),
        Command::ExportOutcomes { ledger, out } => export_outcomes(&ledger, &out),
        Command::ExportCases {
            ledger,
            out,
            overrides,
            snapshot,
        } => export_cases(
            &ledger,
            out.as_deref(),
            overrides.as_deref(),
            snapshot.as_deref(),
        ),
        Command::Models { command } => models(command),
        Command::Generate {
            buyers,
            seed,
            out,
            start,
            end,
        } => batch::generate(buyers, seed, start, end, &out),
        Command::Features {
            data,
            as_of,
            out,
            model,
            parts,
        } => batch::features(&data, as_of, &out, model.as_deref(), &parts),
        Command::ExportSql {
            model,
            as_of,
            dialect,
            out,
            buyer_shard,
            overrides,
        } => batch::export_sql(
            &model,
            as_of,
            dialect,
            out.as_deref(),
            buyer_shard,
            overrides,
        ),
        Command::Train(a) => batch::train(*a),
        Command::Evaluate {
            model,
            table,
            label,
            data,
            as_of,
            json,
            cases,
        } => batch::evaluate(&model, table, label, data, as_of, json, cases.as_deref()),
        Command::Rate(a) => batch::rate(a),
        Command::Replay(a) => batch::replay(a),
        Command::Simulate(a) => batch::simulate(a),
        Command::Judge {
            data,
            snapshot,
            out,
        } => batch::judge(&data, &snapshot, out.as_deref()),
    }
}

fn models(command: ModelsCommand) -> Result<()> {
    use fastrefund_snapshot::registry::{Listed, Registry};
    match command {
        ModelsCommand::List { registry, json } => {
            let r = Registry::new(registry);
            let list = r.list()?;
            if json {
                for l in &list {
                    match l {
                        Listed::Model(e) => println!("{}", serde_json::to_string(e)?),
                        Listed::Broken { folder, error } => {
                            println!("{}", serde_json::json!({"folder": folder, "error": error}))
                        }
                    }
                }
                return Ok(());
            }
            if list.is_empty() {
                println!("no models in {}", r.dir().display());
                return Ok(());
            }
            print!("{}", fastrefund_snapshot::registry::table(&list));
            Ok(())
        }
        ModelsCommand::Promote { version, registry } => {
            let r = Registry::new(registry);
            let p = r.promote(&version, chrono::Utc::now())?;
            match &p.from {
                Some(old) if *old == p.to => println!("{} is already the champion", p.to),
                Some(old) => println!("champion: {} (was {old})", p.to),
                None => println!("champion: {}", p.to),
            }
            println!(
                "publish its ratings with: fastrefund rate --data DIR --as-of DATE --out SNAPSHOT_DIR"
            );
            Ok(())
        }
    }
}

/// Runs `read` on a runtime of its own.
fn block_on<T>(
    read: impl std::future::Future<Output = Result<T, fastrefund_store::LedgerError>>,
) -> Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(read)?)
}

fn export_outcomes(ledger: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let rows = block_on(fastrefund_stores::export_returns(ledger))?;
    match out.extension().and_then(|e| e.to_str()) {
        Some("csv") => fastrefund_stores::csv::write_csv(&rows, out)?,
        Some("parquet") => fastrefund_batch::export::write_parquet(&rows, out)?,
        _ => anyhow::bail!("--out must end in .parquet or .csv"),
    }
    tracing::info!(returns = rows.len(), advanced = rows.iter().filter(|r| r.advanced).count(), out = %out.display(), "outcomes exported");
    Ok(())
}

fn export_cases(
    ledger: &std::path::Path,
    out: Option<&std::path::Path>,
    overrides: Option<&std::path::Path>,
    snapshot: Option<&std::path::Path>,
) -> Result<()> {
    use fastrefund_batch::cases::{CaseRow, write_cases};
    use fastrefund_batch::overrides::{strikes_of, write_overrides};
    // The snapshot first: a bad one stops the export before the ledger is read.
    let at_open = snapshot
        .map(fastrefund_snapshot::Ratings::load)
        .transpose()?;
    let cases = block_on(fastrefund_stores::export_cases(ledger))?;
    if let Some(path) = overrides {
        let strikes = strikes_of(&cases);
        write_overrides(&strikes, path)?;
        tracing::info!(decided = cases.len(), strikes = strikes.len(), out = %path.display(), "reasons struck by rating cases the buyers won exported, for rate --overrides");
    }
    let Some(out) = out else {
        return Ok(());
    };
    let rows: Vec<CaseRow> = cases
        .iter()
        .filter_map(|c| CaseRow::of(c, at_open.as_ref()))
        .collect();
    write_cases(&rows, out)?;
    let rated = rows.iter().filter(|r| r.star_at_open.is_some()).count();
    tracing::info!(decided = cases.len(), exported = rows.len(), with_star_at_open = rated, out = %out.display(), "cases exported as disputes (a case about no order is not a dispute)");
    if at_open.is_none() {
        tracing::warn!(
            "no --snapshot: star_at_open and reason_code are left empty, so the overturn rates will count these cases under `star unknown`"
        );
    }
    Ok(())
}

mod batch {
    use super::*;
    use anyhow::Context;
    use fastrefund_batch::progress;
    use std::path::Path;

    pub fn generate(
        buyers: u64,
        seed: u64,
        start: NaiveDate,
        end: NaiveDate,
        out: &Path,
    ) -> Result<()> {
        let synth = fastrefund_synth::SynthParams {
            buyers,
            seed,
            start,
            end,
            ..Default::default()
        }
        .check()?;
        let bar = progress::bar(buyers, "buyers");
        let s = synth.generate(out, &|done| bar.set_position(done))?;
        bar.finish_and_clear();
        tracing::info!(
            buyers = s.buyers,
            orders = s.orders,
            returns = s.returns,
            disputes = s.disputes,
            out = %out.display(),
            "history generated"
        );
        Ok(())
    }

    impl PartsArgs {
        /// The plan for a command writing `out`.
        fn plan(&self, out: &Path) -> fastrefund_batch::shards::Plan {
            fastrefund_batch::shards::Plan::beside(
                out,
                self.memory_gib,
                self.shards,
                self.work_dir.clone(),
            )
        }
    }

    pub fn features(
        data: &Path,
        as_of: NaiveDate,
        out: &Path,
        model: Option<&Path>,
        parts: &PartsArgs,
    ) -> Result<()> {
        use fastrefund_batch::features;
        let card = model
            .map(|m| {
                fastrefund_snapshot::load_model(m)?
                    .check()
                    .map_err(anyhow::Error::from)
            })
            .transpose()?;
        let sp = progress::spinner("reading and checking the history");
        let opened = fastrefund_batch::shards::Opened::open(data, &parts.plan(out))?;
        sp.set_message("computing features");
        let buyers = fastrefund_batch::feature_table::write_labelled_features(
            opened.source(),
            features::date_micros(as_of),
            out,
            card.as_ref(),
        )?;
        sp.finish_and_clear();
        tracing::info!(buyers, out = %out.display(), "features written");
        Ok(())
    }

    pub fn export_sql(
        model: &Path,
        as_of: NaiveDate,
        dialect: fastrefund_batch::sql::Dialect,
        out: Option<&Path>,
        shard: Option<fastrefund_batch::sql::BuyerShard>,
        overrides: bool,
    ) -> Result<()> {
        let card = fastrefund_snapshot::load_model(model)?.check()?;
        let sql = fastrefund_batch::sql::rating_sql(&card, as_of, dialect, shard, overrides)?;
        match out {
            Some(p) => {
                std::fs::write(p, &sql).with_context(|| format!("cannot write {}", p.display()))?;
                tracing::info!(out = %p.display(), ?dialect, "rating SQL written");
            }
            None => {
                use std::io::Write;
                std::io::stdout().lock().write_all(sql.as_bytes())?;
            }
        }
        Ok(())
    }

    pub fn train(a: TrainArgs) -> Result<()> {
        use fastrefund_batch::training;
        use fastrefund_snapshot::registry::{MODEL_FILE, Registry};
        // The options as parsed (their defaults are the trainer's); the trainer checks them.
        let per_feature = |o: Vec<fastrefund_train::options::FeatureNumbers>| {
            o.into_iter().map(|x| (x.feature, x.value.0)).collect()
        };
        let params = fastrefund_train::TrainParams {
            max_bins: a.max_bins,
            base_score: a.base_score,
            pdo: a.pdo,
            max_correlation: a.max_correlation,
            min_iv: a.min_iv,
            min_bin_rows: a.min_bin_rows,
            unseen_category: a.unseen_category,
            min_bad_rate_diff: a.min_bad_rate_diff,
            binning: a.binning,
            prebinning: a.prebinning,
            wrong_signs: a.wrong_signs,
            selection: a.select,
            max_features: a.max_features,
            monotonic_trend: a.trends.into_iter().map(|t| (t.feature, t.value)).collect(),
            special_codes: per_feature(a.specials),
            user_splits: per_feature(a.splits),
            ..Default::default()
        };
        // A bad cases file stops the run before the training.
        let cases = a
            .cases
            .as_deref()
            .map(fastrefund_batch::cases::overturns)
            .transpose()?;
        let sp = progress::spinner("training");
        let (data, table, registry, out) = (a.data, a.table, a.registry, a.out);
        // Trains into `dir` and draws the evaluation report beside the model.
        let train_into = |dir: &Path| -> Result<training::Trained> {
            let trained = match (data, table) {
                (Some(data), _) => training::train_history(&training::HistoryTraining {
                    data,
                    as_of: a.as_of.context("--as-of is required with --data")?,
                    test_as_of: a.test_as_of,
                    out: dir.to_path_buf(),
                    params,
                    challenger: (!a.no_challenger).then(Default::default),
                    sample_buyers: a.sample_buyers,
                    sample_seed: a.seed,
                    plan: a.parts.plan(dir),
                    promise_sample: a.promise_sample,
                    force: a.force,
                })?,
                (None, Some(table)) => training::train_table(&training::TableTraining {
                    table,
                    label: a.label.context("--label is required with --table")?,
                    out: dir.to_path_buf(),
                    test_fraction: a.test_fraction,
                    seed: a.seed,
                    exclude: a.exclude,
                    split_column: a.split_column.zip(a.split_at),
                    params,
                    challenger: (!a.no_challenger).then(Default::default),
                })?,
                (None, None) => anyhow::bail!("give --data or --table"),
            };
            let mut trained = trained;
            if let Some(c) = cases {
                trained.with_cases(dir, c)?;
            }
            fastrefund_report::model_report(&trained.card, &trained.evaluation, dir)?;
            Ok(trained)
        };
        let (trained, model_path) = match (&out, &registry) {
            (Some(o), _) => {
                let t = train_into(o)?;
                let p = t.model_path.clone();
                (t, p)
            }
            (None, Some(r)) => {
                let mut trained = None;
                let dest = Registry::new(r).publish(|dir| -> Result<()> {
                    trained = Some(train_into(dir)?);
                    Ok(())
                })?;
                let t = trained.context("training wrote no model")?;
                tracing::info!(
                    "registered; make it the champion with: fastrefund models promote {} --registry {}",
                    t.evaluation.model_version,
                    r.display()
                );
                (t, dest.join(MODEL_FILE))
            }
            (None, None) => anyhow::bail!("give --out or --registry"),
        };
        sp.finish_and_clear();
        let e = &trained.evaluation;
        for n in &e.notes {
            tracing::warn!("{n}");
        }
        if let Some(c) = &e.cases {
            say_cases(c);
        }
        tracing::info!(
            model = %model_path.display(),
            version = %e.model_version,
            features = trained.card.n_features(),
            test_auc = format!("{:.4}", e.test.auc),
            test_ks = format!("{:.4}", e.test.ks),
            train_auc = format!("{:.4}", e.train.as_ref().map(|m| m.auc).unwrap_or(f64::NAN)),
            "model trained"
        );
        println!(
            "{}",
            serde_json::to_string_pretty(&fastrefund_train::evaluation::Summary::from(&e.test))?
        );
        Ok(())
    }

    pub fn evaluate(
        model: &Path,
        table: Option<PathBuf>,
        label: Option<String>,
        data: Option<PathBuf>,
        as_of: Option<NaiveDate>,
        json: bool,
        cases: Option<&Path>,
    ) -> Result<()> {
        use fastrefund_batch::training;
        let cases = cases.map(fastrefund_batch::cases::overturns).transpose()?;
        let m = match (table, data) {
            (Some(t), _) => training::evaluate_table(
                model,
                &t,
                &label.context("--label is required with --table")?,
            )?,
            (None, Some(d)) => training::evaluate_history(
                model,
                &d,
                as_of.context("--as-of is required with --data")?,
            )?,
            (None, None) => anyhow::bail!("give --table or --data"),
        };
        if json {
            let mut v = serde_json::to_value(fastrefund_train::evaluation::Summary::from(&m))?;
            if let (Some(c), Some(o)) = (&cases, v.as_object_mut()) {
                o.insert("cases".into(), serde_json::to_value(c)?);
            }
            println!("{}", serde_json::to_string(&v)?);
        } else {
            println!(
                "rows {}  bads {}  AUC {:.4}  KS {:.4}  Gini {:.4}  Brier {:.5}",
                m.rows, m.bads, m.auc, m.ks, m.gini, m.brier
            );
            for s in &m.stars {
                println!(
                    "  {}★  {:>8} buyers ({:>5.1}%)  bad rate {:.4}",
                    s.star,
                    s.count,
                    100.0 * s.share,
                    s.bad_rate
                );
            }
            if let Some(c) = &cases {
                println!("cases ({})", c.source);
                for r in &c.by_star {
                    println!(
                        "  {:<14} {:>6} decided  overturned {:>5.1}%{}",
                        r.group,
                        r.decided,
                        100.0 * r.overturn_rate,
                        if r.high { "  (too often)" } else { "" }
                    );
                }
                for f in &c.findings {
                    println!("  {f}");
                }
            }
        }
        Ok(())
    }

    /// The overturn rates' findings in the log: a star too often overturned is a warning.
    fn say_cases(c: &fastrefund_train::overturn::Overturns) {
        let high = c.high_stars().count();
        for f in &c.findings {
            if high > 0 && f.starts_with("The model is wrong") {
                tracing::warn!("{f}");
            } else {
                tracing::info!("{f}");
            }
        }
    }

    pub fn rate(a: RateArgs) -> Result<()> {
        use fastrefund_batch::rate;
        use fastrefund_train::challenger::Challenger;
        let model_path = match a.model {
            Some(m) => m,
            None => fastrefund_snapshot::registry::Registry::new(a.registry).champion_model()?,
        };
        let sp = progress::spinner("reading and checking the history");
        let model = fastrefund_snapshot::load_checked_model(&model_path)?;
        let challenger = a.challenger.as_deref().map(Challenger::load).transpose()?;
        let baseline = rate::drift_baseline(a.baseline.as_deref(), &a.out)?;
        let cases = a
            .cases
            .as_deref()
            .map(fastrefund_batch::cases::overturns)
            .transpose()?;
        // A bad overrides file stops the run before the history is read.
        let overrides = a
            .overrides
            .as_deref()
            .map(fastrefund_batch::overrides::read_overrides)
            .transpose()?;
        let opened = fastrefund_batch::shards::Opened::open(&a.data, &a.parts.plan(&a.out))?;
        let src = opened.source();
        tracing::info!(parts = src.parts(), "rating");
        sp.set_message("computing features and scoring");
        let opts = rate::RateOptions {
            challenger: challenger.as_ref(),
            baseline: baseline.as_ref(),
            max_psi: a.max_psi,
            force: a.force,
            drift_figure: Some(fastrefund_report::drift_figure),
            cases: cases.as_ref(),
            cases_figure: Some(fastrefund_report::cases_figure),
            overrides: overrides.as_ref(),
        };
        let manifest = rate::rate(src, &model, a.as_of, &a.out, &opts)?;
        sp.finish_and_clear();
        if let Some(c) = &cases {
            say_cases(c);
        }
        tracing::info!(
            buyers = manifest.rows,
            stars = ?manifest.star_counts,
            model = %manifest.model_version,
            challenger = manifest.challenger_version.as_deref().unwrap_or("none"),
            out = %a.out.display(),
            "snapshot published"
        );
        Ok(())
    }

    pub fn replay(a: ReplayArgs) -> Result<()> {
        use fastrefund_batch::{features::date_micros, tables};
        let h = tables::load_history(&a.data)?;
        let from = a.from.map(date_micros).unwrap_or(i64::MIN);
        let to = a.to.map(date_micros).unwrap_or(i64::MAX);
        let mut returns = fastrefund_batch::history_returns::returns_in_window(&h, from, to)?;
        if let Some(n) = a.limit {
            returns.truncate(n);
        }
        tracing::info!(returns = returns.len(), server = %a.server, "replaying");
        let opts = fastrefund_replay::ReplayOptions {
            base: a.server.trim_end_matches('/').to_string(),
            token: a.token,
            concurrency: a.concurrency,
            not_shipping: a.not_shipping.into_iter().collect(),
            outcomes: !a.no_outcomes,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let report = rt.block_on(fastrefund_replay::replay(returns, opts))?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        if report.errors > 0 {
            anyhow::bail!("{} replayed returns failed (see the log)", report.errors);
        }
        Ok(())
    }

    pub fn simulate(a: SimulateArgs) -> Result<()> {
        use fastrefund_core::domain::Star;
        use fastrefund_core::policy::Policy;
        use fastrefund_simulate::{Scenario, SimulateOptions, simulate};
        let options = SimulateOptions {
            from: a.from,
            to: a.to,
            rerate_days: a.rerate_days,
            merchant_wait_hours: a.merchant_wait_hours,
            parcel_cost: a.parcel_cost,
        };
        options.check()?;
        let policy = match &a.policy {
            Some(p) => fastrefund_snapshot::load_policy(p)?,
            None => Policy::default(),
        };
        let mut candidate_policy = match &a.candidate_policy {
            Some(p) => fastrefund_snapshot::load_policy(p)?,
            None => policy.clone(),
        };
        if let Some(k) = a.candidate_min_star {
            candidate_policy = candidate_policy.with_min_star(Star::try_from(k)?);
        }
        let model_path = match a.model {
            Some(m) => m,
            None => fastrefund_snapshot::registry::Registry::new(&a.registry).champion_model()?,
        };
        let model = fastrefund_snapshot::load_model(&model_path)?.check()?;
        let candidate_model = match &a.candidate_model {
            Some(m) => fastrefund_snapshot::load_model(m)?.check()?,
            None => model.clone(),
        };
        let sp = progress::spinner("reading and checking the history");
        let h = fastrefund_batch::tables::load_history(&a.data)?;
        sp.set_message("rating and replaying");
        let sim = simulate(
            &h,
            Scenario {
                name: "current",
                policy: &policy,
                model: &model,
            },
            Scenario {
                name: "candidate",
                policy: &candidate_policy,
                model: &candidate_model,
            },
            &options,
        )?;
        sp.finish_and_clear();
        if let Some(out) = &a.out {
            sim.write(out)?;
            tracing::info!(out = %out.display(), "simulation written");
        }
        print!("{}", sim.markdown());
        if let Some(path) = &a.contested_out {
            let c = fastrefund_simulate::contested::contested_for(
                &h,
                &model,
                &options,
                sim.to,
                a.contested_seed,
            )?;
            fastrefund_batch::cases::write_cases(&c.rows, path)?;
            let s = &c.summary;
            tracing::info!(
                out = %path.display(),
                seed = s.seed,
                misreported = s.misreported,
                recorded_losses = s.recorded_losses,
                contested = s.contested,
                decided = s.decided,
                merchant_at_fault = s.merchant_at_fault,
                overturned = s.overturned,
                overturned_merchant_at_fault = s.overturned_merchant_at_fault,
                "contested outcomes written"
            );
        }
        Ok(())
    }

    pub fn judge(data: &Path, snapshot: &Path, out: Option<&Path>) -> Result<()> {
        let read = fastrefund_batch::judge::truth_and_stars(data, snapshot)?;
        let r = fastrefund_report::judge(read.rows(), fastrefund_synth::hidden_type_names())?;
        println!("{}", r.table());
        if let Some(out) = out {
            r.write(out)?;
        }
        Ok(())
    }
}
