//! Issue 23 in the batch: `rate` keeps each buyer's points per feature
//! (`points_<feature>`), which score back to the star it wrote; a rating case the buyer
//! won on a reason, exported by `export-cases --overrides`, strikes that reason in the
//! next `rate --overrides` for that buyer only, whole and in shards; and a bad overrides
//! file is refused naming what is wrong.

use crate::batch::run;
use chrono::TimeZone;
use fastrefund_core::cases::{
    CaseDeadlines, CaseKind, Command, Contested, Opening, Party, Strike, Verdict, corrected,
};
use fastrefund_core::domain::BuyerId;
use fastrefund_core::scoring::Scored;
use fastrefund_snapshot::Ratings;
use fastrefund_snapshot::ratings::{POINTS_PREFIX, points_column};
use fastrefund_store::{CaseAnswer, CaseCall};
use polars::prelude::*;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `rate` of the shipped sample with its model as of 2026-06-30 into `out`, with `extra`.
fn rate(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "rate",
        "--data",
        "data/sample",
        "--model",
        "data/snapshot/model.json",
        "--as-of",
        "2026-06-30",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn rate_ok(out: &Path, extra: &[&str]) {
    let o = rate(out, extra);
    assert!(
        o.status.success(),
        "rate {extra:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `ratings.parquet`, sorted by buyer.
fn ratings(snap: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(snap.join("ratings.parquet")).unwrap())
        .finish()
        .unwrap()
        .sort(["buyer_id"], SortMultipleOptions::default())
        .unwrap()
}

fn ids(df: &DataFrame) -> Vec<u64> {
    df.column("buyer_id")
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

/// The rating as the snapshot's reader gives it.
fn rating_of(r: &Ratings, b: u64) -> (u8, i32, [Option<String>; 4]) {
    let x = r.get(BuyerId(b)).unwrap();
    (
        x.star.get(),
        x.score,
        x.reasons.map(|c| c.map(|c| c.code(r.model()))),
    )
}

fn as_rating(r: &Ratings, x: &Scored) -> (u8, i32, [Option<String>; 4]) {
    (
        x.star.get(),
        x.score,
        x.reasons.map(|c| c.map(|c| c.code(r.model()))),
    )
}

/// Every buyer of the snapshot at `snap` has points for every feature of its model,
/// and those points score to the star, score and reasons written.
fn points_score_back(snap: &Path) {
    let r = Ratings::load(snap).unwrap();
    let df = ratings(snap);
    let names: Vec<String> = r.model().feature_names().map(points_column).collect();
    let have: Vec<String> = df
        .get_column_names()
        .iter()
        .filter(|n| n.starts_with(POINTS_PREFIX))
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        have,
        names,
        "{}: the points columns, in model order",
        s(snap)
    );
    for name in &names {
        assert_eq!(df.column(name).unwrap().dtype(), &DataType::Int32);
    }
    let all = ids(&df);
    assert_eq!(all.len(), r.len());
    for b in all {
        let p = r.points(BuyerId(b)).expect("points");
        let scored = r.model().score_points(&p).unwrap();
        assert_eq!(as_rating(&r, &scored), rating_of(&r, b), "buyer {b}");
    }
}

#[test]
fn every_buyers_points_score_back_to_the_rating_written_whole_in_shards_and_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, sharded) = (dir.path().join("whole"), dir.path().join("sharded"));
    rate_ok(&whole, &["--shards", "1"]);
    rate_ok(&sharded, &["--shards", "3"]);
    assert!(ratings(&whole).equals_missing(&ratings(&sharded)));
    points_score_back(&whole);
    // The sample built into the service carries them too (scripts/refresh-sample.sh).
    points_score_back(&fastrefund_testkit::repo_root().join("data/snapshot"));
    // A missing value is a null, and reads back as missing.
    let df = ratings(&whole);
    let nulls: usize = df
        .columns()
        .iter()
        .filter(|c| c.name().starts_with(POINTS_PREFIX))
        .map(|c| c.null_count())
        .sum();
    assert!(nulls > 0, "the sample has buyers with missing values");
}

/// A buyer of `r` whose first reason, struck with the points it earned, changes their
/// star; with that strike's code and points.
fn buyer_whose_star_a_strike_changes(r: &Ratings, all: &[u64]) -> (u64, String, i32) {
    all.iter()
        .find_map(|&b| {
            let rated = r.get(BuyerId(b))?;
            let first = rated.reasons[0]?;
            let p = r.points(BuyerId(b))?;
            let code = first.code(r.model());
            let at_open = p.points[usize::from(first.feature)];
            let strike = strike(1, b, &code, at_open);
            let (scored, _) = corrected(r.model(), &p, &[strike]).ok()??;
            (scored.star != rated.star).then_some((b, code, at_open))
        })
        .expect("a buyer whose first reason costs them a star")
}

fn strike(case_id: u64, b: u64, code: &str, at_open: i32) -> Strike {
    Strike {
        case_id,
        buyer_id: BuyerId(b),
        reason_code: code.to_string(),
        points_at_open: at_open,
        decided_at: chrono::Utc.with_ymd_and_hms(2026, 7, 3, 0, 0, 0).unwrap(),
    }
}

/// Opens a rating case of `buyer` contesting `code` (which earned `points`), and has a
/// reviewer decide it `verdict`; returns the case id.
async fn decided_rating_case(
    ledger: &fastrefund_ledger::Ledger,
    buyer: u64,
    code: &str,
    points: i32,
    verdict: Verdict,
) -> u64 {
    let d = CaseDeadlines::default();
    let now = chrono::Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap();
    let one = |a: CaseAnswer| match a {
        CaseAnswer::One(v) => v.case,
        other => panic!("one case expected, got {other:?}"),
    };
    let opening = Opening {
        kind: CaseKind::Rating,
        buyer_id: BuyerId(buyer),
        return_id: None,
        order_id: None,
        opened_by: Party::Buyer,
        statement: "Those returns were the courier's losses.".into(),
        evidence: Vec::new(),
        contested: Some(Contested {
            reason_code: code.to_string(),
            points,
        }),
    };
    let case = one(ledger.cases(CaseCall::Open(opening), d, now).await.unwrap());
    for command in [
        Command::Claim {
            reviewer: "li.wei".into(),
        },
        Command::Decide {
            reviewer: "li.wei".into(),
            verdict,
            note: "the courier's scans".into(),
            outcome: None,
        },
    ] {
        let step = CaseCall::Step {
            case_id: case.case_id,
            command,
        };
        one(ledger.cases(step, d, now).await.unwrap());
    }
    case.case_id
}

fn without(df: &DataFrame, b: u64) -> DataFrame {
    df.clone()
        .lazy()
        .filter(col("buyer_id").neq(lit(b)))
        .collect()
        .unwrap()
}

fn row(df: &DataFrame, b: u64) -> DataFrame {
    df.clone()
        .lazy()
        .filter(col("buyer_id").eq(lit(b)))
        .collect()
        .unwrap()
}

fn points_only(df: &DataFrame) -> DataFrame {
    let names = df
        .get_column_names()
        .into_iter()
        .filter(|n| *n == "buyer_id" || n.starts_with(POINTS_PREFIX))
        .cloned();
    df.select(names).unwrap()
}

fn star_counts(snap: &Path) -> Vec<u64> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    m["star_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_rating_case_strikes_its_reason_in_the_next_rate_for_that_buyer_only() {
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before");
    rate_ok(&before, &["--shards", "1"]);
    let r = Ratings::load(&before).unwrap();
    let before_df = ratings(&before);
    let all = ids(&before_df);
    let (won, code, at_open) = buyer_whose_star_a_strike_changes(&r, &all);
    let lost = *all.iter().find(|&&b| b != won).unwrap();

    // The reviewer decides for one buyer and against another, in the ledger.
    let ledger_path = dir.path().join("ledger.sqlite");
    let ledger = fastrefund_ledger::Ledger::open(&ledger_path).unwrap();
    let won_case = decided_rating_case(&ledger, won, &code, at_open, Verdict::BuyerWon).await;
    decided_rating_case(&ledger, lost, &code, at_open, Verdict::MerchantWon).await;
    drop(ledger);

    // export-cases --overrides: the one strike, in CSV (alone) and in Parquet (with
    // the decided cases beside it).
    let csv = dir.path().join("overrides.csv");
    let o = run(&[
        "export-cases",
        "--ledger",
        s(&ledger_path),
        "--overrides",
        s(&csv),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "case_id,buyer_id,reason_code,points_at_open,decided_at"
    );
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].starts_with(&format!(
            "{won_case},{won},{code},{at_open},2026-07-01T08:00:00"
        )),
        "{text}"
    );
    let parquet = dir.path().join("overrides.parquet");
    let cases = dir.path().join("cases.csv");
    let o = run(&[
        "export-cases",
        "--ledger",
        s(&ledger_path),
        "--out",
        s(&cases),
        "--overrides",
        s(&parquet),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(cases.is_file());

    // rate --overrides, whole from the CSV and in shards from the Parquet file; a
    // strike of a buyer not in the history is no error.
    let mut text = text;
    text.push_str("99,999999999,returns_90,-5,2026-07-02T00:00:00Z\n");
    std::fs::write(&csv, text).unwrap();
    let (whole, sharded) = (dir.path().join("whole"), dir.path().join("sharded"));
    rate_ok(&whole, &["--shards", "1", "--overrides", s(&csv)]);
    rate_ok(&sharded, &["--shards", "3", "--overrides", s(&parquet)]);
    let after = ratings(&whole);
    assert!(after.equals_missing(&ratings(&sharded)));

    // The buyer who won gets exactly the corrected rating...
    let struck = Ratings::load(&whole).unwrap();
    let p = r.points(BuyerId(won)).unwrap();
    let (want, by) = corrected(r.model(), &p, &[strike(won_case, won, &code, at_open)])
        .unwrap()
        .unwrap();
    assert_eq!(by, vec![won_case]);
    assert_eq!(rating_of(&struck, won), as_rating(&r, &want));
    assert_ne!(rating_of(&struck, won), rating_of(&r, won));
    // ... with the same points (unstruck), and no other buyer changes at all.
    assert_eq!(struck.points(BuyerId(won)), Some(p));
    assert!(points_only(&after).equals_missing(&points_only(&before_df)));
    assert!(without(&after, won).equals_missing(&without(&before_df, won)));
    assert_eq!(row(&after, won).height(), 1);
    // The manifest counts the struck star (the loader checks it against the file).
    let (mut counts, moved) = (star_counts(&before), star_counts(&whole));
    counts[usize::from(r.get(BuyerId(won)).unwrap().star.get()) - 1] -= 1;
    counts[usize::from(want.star.get()) - 1] += 1;
    assert_eq!(moved, counts);
    assert_eq!(star_counts(&sharded), counts);
}

#[test]
fn a_bad_overrides_file_is_refused_naming_the_file_row_and_column_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap");
    let head = "case_id,buyer_id,reason_code,points_at_open,decided_at\n";
    for (name, body, want) in [
        (
            "missing.csv",
            "case_id,buyer_id,reason_code,decided_at\n1,100001,returns_90,2026-07-02\n".to_string(),
            "missing.csv: missing column `points_at_open`",
        ),
        (
            "points.csv",
            format!("{head}1,100001,returns_90,1.5,2026-07-02T00:00:00Z\n"),
            "points.csv, row 1: column `points_at_open`: \"1.5\" is not an integer",
        ),
        (
            "id.csv",
            format!(
                "{head}1,100001,returns_90,-3,2026-07-02T00:00:00Z\n2,buyer,returns_90,-3,2026-07-02T00:00:00Z\n"
            ),
            "id.csv, row 2: column `buyer_id`: \"buyer\" is not an unsigned integer id",
        ),
        (
            "twice.csv",
            format!(
                "{head}1,100001,returns_90,-3,2026-07-02T00:00:00Z\n1,100002,returns_90,-3,2026-07-02T00:00:00Z\n"
            ),
            "twice.csv, row 2: duplicate case_id 1",
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let o = rate(&out, &["--overrides", s(&p)]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name} was accepted");
        assert!(e.contains(want), "{name}: {e}");
        assert!(!out.exists(), "{name}: a snapshot was published");
    }
    // export-cases needs somewhere to write.
    let o = run(&["export-cases", "--ledger", s(&dir.path().join("l.sqlite"))]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out"));
}

/// The end-to-end check: a buyer's star before a rating case, after a reviewer
/// decides it for them (the service, at once), and after the next `rate` (the batch,
/// from `export-cases --overrides`) is one corrected star, with the same score and
/// reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_star_after_the_decision_and_after_the_next_rate_are_the_same_corrected_star() {
    use fastrefund_testkit::{API, REVIEWER, json_of};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before");
    rate_ok(&before, &[]);
    let app = fastrefund_testkit::spawn_app_with(
        fastrefund_core::policy::Policy::default(),
        Some(before.clone()),
    )
    .await;
    let r = Ratings::load(&before).unwrap();
    let (buyer, code, _) = buyer_whose_star_a_strike_changes(&r, &ids(&ratings(&before)));
    let rating = async || {
        let path = format!("/v1/buyers/{buyer}/rating");
        json_of(app.get(&path, Some(API)).await).await.1
    };
    let star_before = rating().await;
    assert_eq!(
        star_before["star"],
        json!(r.get(BuyerId(buyer)).unwrap().star.get())
    );

    // The buyer contests their first reason; a reviewer decides for them.
    let open = json!({"kind": "rating", "buyer_id": buyer, "opened_by": "buyer",
                      "statement": "Those were the courier's losses.", "reason_code": code});
    let (status, case) = json_of(app.post("/v1/cases", &open).await).await;
    assert_eq!(status, 201, "{case}");
    let id = case["case_id"].as_u64().unwrap();
    for (path, body) in [
        ("claim", json!({"reviewer": "li.wei"})),
        (
            "decision",
            json!({"reviewer": "li.wei", "decision": "buyer_won", "note": "the courier's scans"}),
        ),
    ] {
        let r = app
            .client
            .post(format!("{}/review/cases/{id}/{path}", app.base))
            .bearer_auth(REVIEWER)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let served = rating().await;
    assert_ne!(served["star"], star_before["star"], "{served}");
    assert_eq!(served["corrected_by_cases"], json!([id]));

    // The batch side: the strike from the ledger (read while the service runs), then
    // the next rate.
    let ledger = app.dir.path().join("ledger.sqlite");
    let overrides = dir.path().join("overrides.csv");
    let o = run(&[
        "export-cases",
        "--ledger",
        s(&ledger),
        "--overrides",
        s(&overrides),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let next = dir.path().join("next");
    rate_ok(&next, &["--overrides", s(&overrides)]);
    let rated = Ratings::load(&next).unwrap();
    let (star, score, reasons) = rating_of(&rated, buyer);
    assert_eq!(served["star"], json!(star));
    assert_eq!(served["score"], json!(score));
    let served_reasons: Vec<String> = served["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap().to_string())
        .collect();
    let rated_reasons: Vec<String> = reasons.into_iter().flatten().collect();
    assert_eq!(served_reasons, rated_reasons);

    // And the service on the next snapshot answers the same star (the strike, applied
    // again to a snapshot rated with it, changes nothing).
    app.state.reload(Some(Some(next)), None).await.unwrap();
    let again = rating().await;
    assert_eq!(
        (&again["star"], &again["score"]),
        (&served["star"], &served["score"])
    );
}
