//! A history too big to hold is rated in shards: the same ratings, the same checks.

use super::batch::run;
use polars::prelude::*;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A generated history of `buyers` buyers (seed `seed`) in `out`.
fn generate(buyers: u32, seed: u32, out: &Path) {
    ok(&[
        "generate",
        "--buyers",
        &buyers.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        s(out),
    ]);
}

fn read(p: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(p).unwrap())
        .finish()
        .unwrap()
}

fn write(p: &Path, df: &mut DataFrame) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    ParquetWriter::new(std::fs::File::create(p).unwrap())
        .finish(df)
        .unwrap();
}

/// The history laid out as real exports are: each table in time order, one file per
/// month (so neither buyers nor ids arrive in order).
fn relay_by_month(src: &Path, dst: &Path) {
    for (t, at) in [
        ("orders", "ordered_at"),
        ("returns", "requested_at"),
        ("disputes", "opened_at"),
    ] {
        let df = read(&src.join(format!("{t}.parquet")))
            .lazy()
            .sort([at], SortMultipleOptions::default())
            .with_column(col(at).dt().strftime("%Y-%m").alias("__month"))
            .collect()
            .unwrap();
        for part in df.partition_by(["__month"], true).unwrap() {
            let month = part
                .column("__month")
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .unwrap()
                .to_string();
            let mut part = part.drop("__month").unwrap();
            write(&dst.join(t).join(format!("{month}.parquet")), &mut part);
        }
    }
    std::fs::copy(src.join("buyers.parquet"), dst.join("buyers.parquet")).unwrap();
}

/// `rate` of `data` into `out` with the sample's model, as of `as_of`, with `extra`.
fn rate_with(data: &Path, out: &Path, as_of: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "rate",
        "--data",
        s(data),
        "--model",
        "data/snapshot/model.json",
        "--as-of",
        as_of,
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// `rate` as of 2026-06-30 with `--shards`, forced past the drift gate.
fn rate_run(data: &Path, out: &Path, shards: &str) -> std::process::Output {
    rate_with(data, out, "2026-06-30", &["--shards", shards, "--force"])
}

fn rate(data: &Path, out: &Path, shards: &str) {
    let o = rate_run(data, out, shards);
    assert!(
        o.status.success(),
        "rate --shards {shards} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn sorted_ratings(snap: &Path) -> DataFrame {
    read(&snap.join("ratings.parquet"))
        .sort(["buyer_id"], SortMultipleOptions::default())
        .unwrap()
}

fn manifest(snap: &Path) -> serde_json::Value {
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    // The rows are written shard by shard, so the file's bytes (not its rows) differ.
    for k in ["created_at", "ratings_sha256"] {
        m.as_object_mut().unwrap().remove(k);
    }
    m
}

#[test]
fn a_history_split_by_month_and_rated_in_shards_equals_it_rated_whole() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("gen");
    generate(3000, 9, &generated);
    let data = dir.path().join("data");
    relay_by_month(&generated, &data);
    let whole = dir.path().join("whole");
    let sharded = dir.path().join("sharded");
    rate(&data, &whole, "1");
    rate(&data, &sharded, "5");
    let (a, b) = (sorted_ratings(&whole), sorted_ratings(&sharded));
    assert_eq!(a.height(), 3000);
    assert!(a.equals_missing(&b), "whole:\n{a}\nsharded:\n{b}");
    assert_eq!(manifest(&whole), manifest(&sharded));
    // And the history as generated (one file per table) rates the same buyers the same.
    let original = dir.path().join("original");
    rate(&generated, &original, "3");
    assert!(sorted_ratings(&original).equals_missing(&a));
    // No shard is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("shards"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `rate`'s error with the history whole and in shards: the same message.
fn errors(data: &Path, out: &Path) -> (String, String) {
    let e = |shards: &str| {
        let o = rate_run(data, out, shards);
        assert!(
            !o.status.success(),
            "rate --shards {shards} accepted a bad history"
        );
        let text = String::from_utf8_lossy(&o.stderr).into_owned();
        text.lines()
            .find(|l| l.contains("row"))
            .unwrap_or(&text)
            .to_string()
    };
    (e("1"), e("4"))
}

#[test]
fn a_history_in_shards_is_refused_for_the_same_faults_with_the_same_words() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("gen");
    generate(400, 4, &generated);
    let orders = read(&generated.join("orders.parquet"));
    let returns = read(&generated.join("returns.parquet"));
    let ids = |df: &DataFrame, c: &str| -> Vec<u64> {
        df.column(c)
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let (order_ids, order_buyers) = (ids(&orders, "order_id"), ids(&orders, "buyer_id"));
    let return_buyers = ids(&returns, "buyer_id");
    // An order of a buyer in another shard than the first return's buyer.
    let other = order_buyers
        .iter()
        .position(|b| b % 4 != return_buyers[0] % 4)
        .unwrap();
    type Fault<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Fault)> = vec![
        (
            "another buyer's order",
            Box::new(|d: &Path| {
                let mut r = returns.clone();
                let mut o = ids(&r, "order_id");
                o[0] = order_ids[other];
                r.with_column(Column::new("order_id".into(), o)).unwrap();
                write(&d.join("returns.parquet"), &mut r);
            }),
        ),
        (
            "an unknown order",
            Box::new(|d: &Path| {
                let mut r = returns.clone();
                let mut o = ids(&r, "order_id");
                o[3] = u64::MAX - 1;
                r.with_column(Column::new("order_id".into(), o)).unwrap();
                write(&d.join("returns.parquet"), &mut r);
            }),
        ),
        (
            "an order id used twice, by two buyers, out of order",
            Box::new(|d: &Path| {
                let mut o = orders.clone();
                let mut v = ids(&o, "order_id");
                let n = v.len();
                v[n - 1] = v[other.min(n - 2)];
                o.with_column(Column::new("order_id".into(), v)).unwrap();
                write(&d.join("orders.parquet"), &mut o);
            }),
        ),
    ];
    for (i, (what, fault)) in cases.iter().enumerate() {
        let d = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&d).unwrap();
        for t in ["orders", "returns", "disputes", "buyers"] {
            std::fs::copy(
                generated.join(format!("{t}.parquet")),
                d.join(format!("{t}.parquet")),
            )
            .unwrap();
        }
        fault(&d);
        let (whole, sharded) = errors(&d, &dir.path().join(format!("out{i}")));
        assert!(whole.contains("row"), "{what}: {whole}");
        assert_eq!(whole, sharded, "{what}");
    }
}

fn model_without_time(dir: &Path) -> serde_json::Value {
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("created_at");
    m
}

#[test]
fn training_in_shards_and_on_a_seeded_sample_does_not_depend_on_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("gen");
    generate(3000, 12, &generated);
    let train = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "train",
            "--data",
            s(&generated),
            "--as-of",
            "2026-01-01",
            "--out",
            s(&out),
            "--no-challenger",
        ];
        args.extend_from_slice(extra);
        ok(&args);
        model_without_time(&out)
    };
    // The same model whether the history is held whole or in shards...
    let whole = train("whole", &["--shards", "1"]);
    assert_eq!(whole, train("sharded", &["--shards", "4"]));
    // ... and the same seeded sample of buyers, fitted, however the history is split.
    let sample = train("sample1", &["--shards", "1", "--sample-buyers", "500"]);
    assert_eq!(
        sample,
        train("sample3", &["--shards", "3", "--sample-buyers", "500"])
    );
    assert_ne!(sample["model_version"], whole["model_version"]);
    let m = &sample["metrics"];
    // Fitted on 500 buyers, tested out of time on every buyer of the test window.
    assert_eq!(m["train"]["rows"], 500);
    assert_eq!(m["test"]["rows"], whole["metrics"]["test"]["rows"]);
    // Another seed, another sample.
    let other = train(
        "sample-seed",
        &["--shards", "1", "--sample-buyers", "500", "--seed", "2"],
    );
    assert_ne!(other["features"], sample["features"]);
}

#[test]
fn the_drift_gate_refuses_a_shifted_snapshot_whole_and_in_shards_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    let sample = Path::new("data/sample");
    let rate_as_of = |as_of: &str, extra: &[&str]| rate_with(sample, &snap, as_of, extra);
    assert!(rate_as_of("2026-06-30", &[]).status.success());
    let before = std::fs::read(snap.join("manifest.json")).unwrap();
    // Three months earlier the scores are elsewhere: past a tight PSI bar, refused.
    for shards in ["1", "2"] {
        let o = rate_as_of("2026-03-31", &["--max-psi", "0.001", "--shards", shards]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "--shards {shards}: published past the bar"
        );
        assert!(e.contains("moved too far"), "{e}");
        assert_eq!(std::fs::read(snap.join("manifest.json")).unwrap(), before);
    }
    // The same run, forced, publishes and records the drift.
    let o = rate_as_of(
        "2026-03-31",
        &["--max-psi", "0.001", "--shards", "2", "--force"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(snap.join("drift.json").is_file());
    assert_ne!(std::fs::read(snap.join("manifest.json")).unwrap(), before);
}
