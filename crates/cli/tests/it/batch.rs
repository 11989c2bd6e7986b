//! The batch commands end to end, as a data team runs them.

use std::path::Path;
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fastrefund")
}

/// Runs `fastrefund` from the repository's root, as the README's commands are, so that
/// relative paths (`data/sample`, `models`) mean what they say there.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(fastrefund_testkit::repo_root())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "{args:?} should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn generate_train_rate_publishes_a_snapshot_and_a_bad_run_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model = dir.path().join("model");
    let snap = dir.path().join("snap");
    ok(&[
        "generate",
        "--buyers",
        "1500",
        "--seed",
        "5",
        "--out",
        s(&data),
    ]);
    for t in ["orders", "returns", "disputes", "buyers", "truth"] {
        assert!(
            data.join(format!("{t}.parquet")).is_file(),
            "{t}.parquet missing"
        );
    }
    let out = ok(&[
        "train",
        "--data",
        s(&data),
        "--as-of",
        "2026-01-01",
        "--out",
        s(&model),
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(summary["auc"].as_f64().unwrap() > 0.6, "{summary}");
    assert!(model.join("model.json").is_file() && model.join("evaluation.json").is_file());
    let m = s(&model.join("model.json")).to_string();
    ok(&[
        "rate",
        "--data",
        s(&data),
        "--model",
        &m,
        "--as-of",
        "2026-06-30",
        "--out",
        s(&snap),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["rows"], 1500);
    let ratings_before = std::fs::read(snap.join("ratings.parquet")).unwrap();

    // A broken history: the rate run fails, naming the problem, and publishes nothing.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for t in ["orders", "returns", "disputes", "buyers"] {
        std::fs::copy(
            data.join(format!("{t}.parquet")),
            broken.join(format!("{t}.parquet")),
        )
        .unwrap();
    }
    std::fs::write(
        broken.join("returns.csv"),
        "return_id,order_id,buyer_id,requested_at,reason,amount,instant,advanced,shipped_at,outcome,outcome_at\n\
         999999999,424242424242,1,2026-01-01T00:00:00Z,no_reason,1.00,false,false,,pending,\n",
    )
    .unwrap();
    let e = err(&[
        "rate",
        "--data",
        s(&broken),
        "--model",
        &m,
        "--as-of",
        "2026-06-30",
        "--out",
        s(&snap),
    ]);
    assert!(
        e.contains("returns.csv") && e.contains("order 424242424242"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(snap.join("ratings.parquet")).unwrap(),
        ratings_before
    );

    // A model file that is not a model: refused, snapshot untouched.
    let bad_model = dir.path().join("bad.json");
    std::fs::write(&bad_model, "{\"schema_version\": 99}").unwrap();
    let e = err(&[
        "rate",
        "--data",
        s(&data),
        "--model",
        s(&bad_model),
        "--as-of",
        "2026-06-30",
        "--out",
        s(&snap),
    ]);
    assert!(e.contains("schema version 99"), "{e}");
    assert_eq!(
        std::fs::read(snap.join("ratings.parquet")).unwrap(),
        ratings_before
    );

    // evaluate --json on the out-of-time date.
    let j = ok(&[
        "evaluate",
        "--model",
        &m,
        "--data",
        s(&data),
        "--as-of",
        "2026-04-01",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    for k in ["auc", "ks", "gini", "brier", "rows"] {
        assert!(v[k].is_number(), "{k} missing: {v}");
    }
}

#[test]
fn any_labelled_table_trains_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("loans.csv");
    let mut csv = String::from("id,income,region,late_payments,bad\n");
    let regions = ["north", "south", "east", "west"];
    for i in 0..3000u64 {
        let income = 1000 + (i * 7919) % 9000;
        let late = (i * 31) % 7;
        let region = regions[(i % 4) as usize];
        let risk = late as f64 * 0.12 - income as f64 / 20000.0
            + if region == "south" { 0.15 } else { 0.0 };
        let u = ((i * 2654435761) % 1000) as f64 / 1000.0;
        let bad = u8::from(u < risk.clamp(0.02, 0.9));
        let income_s = if i % 50 == 0 {
            String::new()
        } else {
            income.to_string()
        };
        csv += &format!("{i},{income_s},{region},{late},{bad}\n");
    }
    std::fs::write(&table, csv).unwrap();
    let out_dir = dir.path().join("m");
    let o = ok(&[
        "train",
        "--table",
        s(&table),
        "--label",
        "bad",
        "--exclude",
        "id",
        "--out",
        s(&out_dir),
        "--test-fraction",
        "0.3",
        "--seed",
        "3",
    ]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert!(v["auc"].as_f64().unwrap() > 0.65, "{v}");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("model.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = model["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"late_payments") && !names.contains(&"id"),
        "{names:?}"
    );
    let j = ok(&[
        "evaluate",
        "--model",
        s(&out_dir.join("model.json")),
        "--table",
        s(&table),
        "--label",
        "bad",
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(e["rows"], 3000);

    // Reproducible: the same seed gives the same bins and points.
    let again = dir.path().join("m2");
    ok(&[
        "train",
        "--table",
        s(&table),
        "--label",
        "bad",
        "--exclude",
        "id",
        "--out",
        s(&again),
        "--test-fraction",
        "0.3",
        "--seed",
        "3",
    ]);
    let m2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["features"], m2["features"]);

    // A label that is not 0/1 is named with its row.
    std::fs::write(&table, "x,bad\n1,0\n2,yes\n").unwrap();
    let e = err(&[
        "train",
        "--table",
        s(&table),
        "--label",
        "bad",
        "--out",
        s(&out_dir),
    ]);
    assert!(e.contains("row 2") && e.contains("\"yes\""), "{e}");
}

#[test]
fn bad_history_files_are_named_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let e = err(&[
        "rate",
        "--data",
        s(dir.path()),
        "--model",
        "data/snapshot/model.json",
        "--as-of",
        "2026-06-30",
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(e.contains("no orders table"), "{e}");
}
