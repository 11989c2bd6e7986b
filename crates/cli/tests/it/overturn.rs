//! Issue 23 item 7, measured: contested outcomes simulated on the shipped sample with
//! a known truth (`simulate --contested-out`), and their overturn rates by star at
//! opening and by reason code in the evaluation report (`train --cases`), `evaluate
//! --cases` and a snapshot's monitoring (`rate --cases`); a file that is not a
//! decided-cases file is refused naming the file and the column.

use crate::batch::run;
use fastrefund_batch::tables::load_history;
use fastrefund_core::domain::Outcome;
use fastrefund_simulate::SimulateOptions;
use fastrefund_simulate::contested::contested_for;
use std::collections::HashMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    fastrefund_testkit::repo_root()
}

fn champion_path() -> PathBuf {
    fastrefund_snapshot::registry::Registry::new(root().join("models"))
        .champion_model()
        .unwrap()
}

fn opts() -> SimulateOptions {
    SimulateOptions {
        from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        to: None,
        rerate_days: 30,
        merchant_wait_hours: None,
        parcel_cost: "12.00".parse().unwrap(),
    }
}

#[test]
fn contested_outcomes_on_the_sample_carry_the_truth_and_the_star_at_opening() {
    let h = load_history(&root().join("data/sample")).unwrap();
    let card = fastrefund_snapshot::load_model(&champion_path())
        .unwrap()
        .check()
        .unwrap();
    let to = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let c = contested_for(&h, &card, &opts(), to, 1).unwrap();
    let s = &c.summary;
    assert_eq!(s.decided as usize, c.rows.len());
    assert!(c.rows.len() >= 50, "{s:?}");
    // The same seed gives the same cases; another seed, others.
    assert_eq!(
        contested_for(&h, &card, &opts(), to, 1).unwrap().rows,
        c.rows
    );
    assert_ne!(
        contested_for(&h, &card, &opts(), to, 2).unwrap().rows,
        c.rows
    );

    // The truth: a loss was the merchant's fault exactly when the merchant misreported
    // an intact or merchant-fault return; otherwise it was the history's own loss.
    let returns =
        fastrefund_batch::history_returns::returns_in_window(&h, i64::MIN, i64::MAX).unwrap();
    let outcome: HashMap<u64, Outcome> = returns
        .iter()
        .filter_map(|r| r.outcome.map(|(o, _)| (r.return_id, o)))
        .collect();
    let (from, end) = (
        chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap(),
        chrono::DateTime::parse_from_rfc3339("2026-06-30T00:00:00Z").unwrap(),
    );
    for r in &c.rows {
        let rid = r.return_id.unwrap();
        let o = outcome[&rid];
        let truth = r.merchant_at_fault.unwrap();
        assert_eq!(
            truth,
            matches!(o, Outcome::MerchantFault | Outcome::ReceivedOk),
            "return {rid}: {o:?}"
        );
        assert!(truth || o.is_buyer_loss(), "return {rid}: {o:?}");
        let d = &r.dispute;
        assert!(d.opened_at >= from && d.decided_at.unwrap() < end, "{d:?}");
        assert!(d.decided_at.unwrap() > d.opened_at);
        assert_eq!(r.case_kind, "outcome");
    }
    // Most contested losses were rated (the buyer was known at opening), with a reason.
    let rated = c.rows.iter().filter(|r| r.star_at_open.is_some()).count();
    assert!(
        rated * 10 >= c.rows.len() * 9,
        "{rated} of {}",
        c.rows.len()
    );
    assert!(c.rows.iter().any(|r| r.reason_code.is_some()));
    // Reviewers are mostly right: what they overturned was mostly the merchant's fault.
    assert!(
        s.overturned_merchant_at_fault * 10 >= s.overturned * 7,
        "{s:?}"
    );
    assert!(
        s.merchant_at_fault > 0 && s.merchant_at_fault < s.decided,
        "{s:?}"
    );
}

#[test]
fn overturn_rates_reach_the_report_evaluate_and_the_snapshot_and_bad_files_are_named() {
    let w = tempfile::tempdir().unwrap();
    let p = |f: &str| w.path().join(f).to_str().unwrap().to_string();
    let champion = champion_path();
    let champion = champion.to_str().unwrap();
    let cases = p("cases.csv");
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(&[
        "simulate",
        "--data",
        "data/sample",
        "--from",
        "2026-01-01",
        "--candidate-min-star",
        "4",
        "--contested-out",
        &cases,
    ]);
    let rows = std::fs::read_to_string(&cases).unwrap().lines().count() - 1;
    assert!(rows >= 50, "{rows}");

    // evaluate: the section in JSON beside the metrics, and in words.
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "evaluate",
        "--model",
        champion,
        "--data",
        "data/sample",
        "--as-of",
        "2026-01-01",
        "--json",
        "--cases",
        &cases,
    ]))
    .unwrap();
    assert!(json["auc"].as_f64().unwrap() > 0.5);
    let c = &json["cases"];
    assert_eq!(c["all"]["decided"], rows);
    let by_star = c["by_star"].as_array().unwrap();
    assert_eq!(by_star[0]["group"], "1★");
    let decided: u64 = by_star.iter().map(|r| r["decided"].as_u64().unwrap()).sum();
    assert_eq!(decided as usize, rows);
    let text = ok(&[
        "evaluate",
        "--model",
        champion,
        "--data",
        "data/sample",
        "--as-of",
        "2026-01-01",
        "--cases",
        &cases,
    ]);
    assert!(
        text.contains("decided cases:") && text.contains("overturned"),
        "{text}"
    );
    // Where a star is high, the words say the model is wrong there.
    for r in by_star.iter().filter(|r| r["high"] == true) {
        let said = format!(
            "The model is wrong too often at {}",
            r["group"].as_str().unwrap()
        );
        assert!(text.contains(&said), "{said} not in {text}");
    }

    // rate: cases.json and cases.svg in the snapshot, beside drift.
    let snap = p("snap");
    ok(&[
        "rate",
        "--data",
        "data/sample",
        "--model",
        champion,
        "--as-of",
        "2026-06-30",
        "--out",
        &snap,
        "--baseline",
        "data/snapshot",
        "--cases",
        &cases,
    ]);
    let in_snap: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("snap/cases.json")).unwrap())
            .unwrap();
    assert_eq!(in_snap["all"], c["all"]);
    assert!(
        std::fs::read_to_string(w.path().join("snap/cases.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    // train: the report's section, its figure and CSV, and evaluation.json.
    let model = p("model");
    ok(&[
        "train",
        "--data",
        "data/sample",
        "--as-of",
        "2026-01-01",
        "--out",
        &model,
        "--no-challenger",
        "--promise-sample",
        "200",
        "--cases",
        &cases,
    ]);
    let html = std::fs::read_to_string(w.path().join("model/report.html")).unwrap();
    assert!(
        html.contains("<h2>Cases: overturn rates</h2>"),
        "no cases section"
    );
    assert!(html.contains("figures/cases.svg"));
    assert!(w.path().join("model/figures/cases.svg").is_file());
    let csv = std::fs::read_to_string(w.path().join("model/cases.csv")).unwrap();
    assert!(csv.starts_with("by,group,decided,"), "{csv}");
    let eval: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join("model/evaluation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(eval["cases"]["all"], c["all"]);

    // A bare disputes file, or no file: named, and nothing is published or trained.
    let fails = |args: &[&str], says: &[&str]| {
        let o = run(args);
        assert!(!o.status.success(), "{args:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        for s in says {
            assert!(e.contains(s), "{args:?}: {s} not in {e}");
        }
    };
    let disputes = "data/sample/disputes.parquet";
    fails(
        &[
            "rate",
            "--data",
            "data/sample",
            "--model",
            champion,
            "--as-of",
            "2026-06-30",
            "--out",
            &p("snap2"),
            "--cases",
            disputes,
        ],
        &[disputes, "missing column `star_at_open`"],
    );
    assert!(!w.path().join("snap2").exists());
    fails(
        &[
            "train",
            "--data",
            "data/sample",
            "--as-of",
            "2026-01-01",
            "--out",
            &p("model2"),
            "--no-challenger",
            "--cases",
            disputes,
        ],
        &[disputes, "`star_at_open`"],
    );
    assert!(!w.path().join("model2/model.json").exists());
    let missing = p("nope.csv");
    fails(
        &[
            "evaluate",
            "--model",
            champion,
            "--data",
            "data/sample",
            "--as-of",
            "2026-01-01",
            "--cases",
            &missing,
        ],
        &[&missing],
    );
}

/// Two outcome cases decided through the service (one won by the buyer, one by the
/// merchant); `export-cases --snapshot` writes them with the star and first reason the
/// buyers had in the snapshot in service, and `evaluate --cases` counts them there.
#[tokio::test(flavor = "multi_thread")]
async fn export_cases_writes_the_star_at_opening_from_the_snapshot_in_service() {
    use fastrefund_testkit::{REVIEWER, json_of, request, spawn_app};
    use serde_json::json;
    let app = spawn_app().await;
    let as_reviewer = |path: String, body: serde_json::Value| {
        let (client, base) = (app.client.clone(), app.base.clone());
        async move {
            json_of(
                client
                    .post(format!("{base}{path}"))
                    .bearer_auth(REVIEWER)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let mut buyers = Vec::new();
    for (rid, star, verdict) in [(51, 4, "buyer_won"), (52, 5, "merchant_won")] {
        let buyer = app.buyer_with_star(star);
        buyers.push((buyer, star, verdict));
        let mut r = request(rid, buyer);
        r["amount"] = json!("40.00");
        r["tracking_number"] = json!(format!("SFOVERTURN{rid}"));
        let (s, d) = json_of(app.post("/v1/eligibility", &r).await).await;
        assert_eq!((s, &d["advanced_refund"]), (200, &json!(true)), "{d}");
        let (s, d) = json_of(
            app.post(
                &format!("/v1/returns/{rid}/outcome"),
                &json!({"outcome": "received_mismatch", "at": "2026-07-05T00:00:00Z"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{d}");
        let (s, case) = json_of(
            app.post(
                "/v1/cases",
                &json!({"kind": "outcome", "buyer_id": buyer, "return_id": rid,
                        "opened_by": "buyer", "statement": "It left sealed."}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{case}");
        let id = case["case_id"].as_u64().unwrap();
        let (s, d) = as_reviewer(
            format!("/review/cases/{id}/claim"),
            json!({"reviewer": "li.wei"}),
        )
        .await;
        assert_eq!(s, 200, "{d}");
        let (s, d) = as_reviewer(
            format!("/review/cases/{id}/decision"),
            json!({"reviewer": "li.wei", "decision": verdict, "note": "photos"}),
        )
        .await;
        assert_eq!((s, d["decision"].as_str()), (200, Some(verdict)), "{d}");
    }

    let ledger = app.dir.path().join("ledger.sqlite");
    let w = tempfile::tempdir().unwrap();
    let out = w.path().join("cases.csv");
    let (ledger, out_s) = (ledger.to_str().unwrap(), out.to_str().unwrap());
    let ran = run(&[
        "export-cases",
        "--ledger",
        ledger,
        "--out",
        out_s,
        "--snapshot",
        "data/snapshot",
    ]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "dispute_id,order_id,buyer_id,opened_at,decided_at,decision,fraud_flag,case_kind,return_id,star_at_open,reason_code,merchant_at_fault"
    );
    let snapshot = fastrefund_snapshot::Ratings::load(&root().join("data/snapshot")).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    for ((buyer, star, verdict), row) in buyers.iter().zip(&rows) {
        let rated = snapshot
            .get(fastrefund_core::domain::BuyerId(*buyer))
            .unwrap();
        let reason = rated.reasons[0]
            .map(|r| r.code(snapshot.model()))
            .unwrap_or_default();
        assert_eq!(row[2], buyer.to_string(), "{text}");
        assert_eq!(row[5], *verdict, "{text}");
        assert_eq!(
            (row[7], row[9], row[10], row[11]),
            ("outcome", &*star.to_string(), &*reason, ""),
            "{text}"
        );
    }
    // The file is both: a disputes table for the next rating, and --cases for evaluate.
    let json: serde_json::Value = serde_json::from_slice(
        &run(&[
            "evaluate",
            "--model",
            "data/snapshot/model.json",
            "--data",
            "data/sample",
            "--as-of",
            "2026-01-01",
            "--json",
            "--cases",
            out_s,
        ])
        .stdout,
    )
    .unwrap();
    let by_star = &json["cases"]["by_star"];
    assert_eq!(
        (&by_star[3]["decided"], &by_star[3]["buyer_won"]),
        (&json!(1), &json!(1)),
        "{json}"
    );
    assert_eq!(
        (&by_star[4]["decided"], &by_star[4]["merchant_won"]),
        (&json!(1), &json!(1)),
        "{json}"
    );

    // Without the snapshot, the star is left empty and counted as unknown.
    let ran = run(&["export-cases", "--ledger", ledger, "--out", out_s]);
    assert!(ran.status.success());
    let o = fastrefund_batch::cases::overturns(&out).unwrap();
    assert_eq!(
        o.by_star.last().map(|r| (r.group.as_str(), r.decided)),
        Some(("star unknown", 2))
    );
}
