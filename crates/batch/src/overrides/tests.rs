//! The overrides file round-trips, bad files are refused naming the file, row and
//! column, and a strike corrects its buyer's rating and no one else's.

use super::*;
use crate::scores::PointsTable;
use chrono::TimeZone;

fn strike(case_id: u64, buyer: u64, code: &str, points_at_open: i32) -> Strike {
    Strike {
        case_id,
        buyer_id: BuyerId(buyer),
        reason_code: code.to_string(),
        points_at_open,
        decided_at: Utc.with_ymd_and_hms(2026, 7, 2, 9, 30, 15).unwrap(),
    }
}

fn strikes() -> Vec<Strike> {
    vec![
        strike(1 << 62, 100_001, "days_since_last_bad", -42),
        strike((1 << 62) + 7, 100_001, "slow_ship_365:missing", 3),
        // A contested code is any text a case accepted: written so it reads back.
        strike((1 << 62) + 9, 100_002, "odd, \"quoted\" code", 0),
    ]
}

fn all(o: &Overrides) -> Vec<Strike> {
    let mut v: Vec<Strike> = o.by_buyer.values().flatten().cloned().collect();
    v.sort_by_key(|s| s.case_id);
    v
}

#[test]
fn an_overrides_file_reads_back_the_same_in_parquet_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["parquet", "csv"] {
        let p = dir.path().join(format!("overrides.{ext}"));
        write_overrides(&strikes(), &p).unwrap();
        let back = read_overrides(&p).unwrap();
        assert_eq!(all(&back), strikes(), "{ext}");
        assert_eq!((back.len(), back.buyers()), (3, 2), "{ext}");
        assert_eq!(back.of(BuyerId(100_001)).len(), 2, "{ext}");
        assert!(back.of(BuyerId(5)).is_empty(), "{ext}");
        let names: Vec<String> = tables::scan_file(&p)
            .unwrap()
            .collect_schema()
            .unwrap()
            .iter_names()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, COLUMNS, "{ext}");
    }
    // An empty file (no strike) is a file with the columns and no rows.
    let p = dir.path().join("none.csv");
    write_overrides(&[], &p).unwrap();
    assert!(read_overrides(&p).unwrap().is_empty());
    assert!(matches!(
        write_overrides(&[], &dir.path().join("overrides.json")),
        Err(WriteError::Extension { .. })
    ));
}

#[test]
fn only_rating_cases_the_buyer_won_on_a_reason_are_strikes() {
    use fastrefund_core::cases::{CaseKind, CaseState, Contested, Party, Verdict};
    let at = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
    let case = |id: u64, kind, verdict, contested: bool| Case {
        case_id: id,
        kind,
        buyer_id: BuyerId(9),
        return_id: None,
        order_id: None,
        opened_by: Party::Buyer,
        opened_at: at,
        respond_by: None,
        responded_at: None,
        decide_by: at,
        breached: false,
        contested: contested.then(|| Contested {
            reason_code: "returns_90".into(),
            points: -5,
        }),
        state: CaseState::Decided {
            verdict,
            reviewer: "li".into(),
            note: "n".into(),
            at,
            corrected_outcome: None,
        },
    };
    let cases = [
        case(4, CaseKind::Rating, Verdict::BuyerWon, true),
        case(2, CaseKind::Rating, Verdict::BuyerWon, true),
        case(3, CaseKind::Rating, Verdict::MerchantWon, true),
        case(5, CaseKind::Rating, Verdict::BuyerWon, false),
        case(6, CaseKind::Outcome, Verdict::BuyerWon, false),
    ];
    let s = strikes_of(&cases);
    assert_eq!(s.iter().map(|s| s.case_id).collect::<Vec<_>>(), [2, 4]);
    assert_eq!((s[0].points_at_open, s[0].decided_at), (-5, at));
}

/// Writes `body` as `overrides.csv` and returns `read_overrides`' error.
fn refused(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("overrides.csv");
    std::fs::write(&p, body).unwrap();
    match read_overrides(&p) {
        Ok(o) => panic!("accepted {body:?}: {o:?}"),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "case_id,buyer_id,reason_code,points_at_open,decided_at\n";

#[test]
fn bad_overrides_files_are_refused_naming_the_file_row_and_column() {
    let row = "7,100001,returns_90,-12,2026-07-02T09:30:00Z\n";
    let cases: [(String, &str); 9] = [
        (
            "case_id,buyer_id,reason_code,decided_at\n7,1,returns_90,2026-07-02\n".into(),
            "overrides.csv: missing column `points_at_open` (the overrides table needs: case_id, buyer_id, reason_code, points_at_open, decided_at",
        ),
        (
            format!("{HEAD}{row}x7,100001,returns_90,-12,2026-07-02T09:30:00Z\n"),
            "overrides.csv, row 2: column `case_id`: \"x7\" is not an unsigned integer id",
        ),
        (
            format!("{HEAD}{row}8,-3,returns_90,-12,2026-07-02T09:30:00Z\n"),
            "overrides.csv, row 2: column `buyer_id`: \"-3\" is not an unsigned integer id",
        ),
        (
            format!("{HEAD}{row}8,100001,,-12,2026-07-02T09:30:00Z\n"),
            "overrides.csv, row 2: column `reason_code`: missing value",
        ),
        (
            format!("{HEAD}{row}8,100001,returns_90,twelve,2026-07-02T09:30:00Z\n"),
            "overrides.csv, row 2: column `points_at_open`: \"twelve\" is not an integer of points",
        ),
        (
            format!("{HEAD}{row}8,100001,returns_90,3000000000,2026-07-02T09:30:00Z\n"),
            "overrides.csv, row 2: column `points_at_open`: \"3000000000\" is not an integer of points",
        ),
        (
            format!("{HEAD}{row}8,100001,returns_90,1,2026-02-30T09:30:00Z\n"),
            "overrides.csv, row 2: column `decided_at`: \"2026-02-30T09:30:00Z\" is not a timestamp",
        ),
        (
            format!("{HEAD}{row}8,100001,returns_90,1,\n"),
            "overrides.csv, row 2: column `decided_at`: missing value",
        ),
        (
            format!("{HEAD}{row}{row}"),
            "overrides.csv, row 2: duplicate case_id 7 (already in ",
        ),
    ];
    for (body, want) in cases {
        let e = refused(&body);
        assert!(e.contains(want), "{body:?}:\n{e}\nwant: {want}");
    }
}

#[test]
fn a_float_of_points_in_parquet_is_a_wrong_type_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("overrides.parquet");
    let mut df = overrides_frame(&strikes()).unwrap();
    df.with_column(Column::new(POINTS_AT_OPEN.into(), vec![1.5f64, 2.0, 3.0]))
        .unwrap();
    ParquetWriter::new(std::fs::File::create(&p).unwrap())
        .finish(&mut df)
        .unwrap();
    let e = read_overrides(&p).unwrap_err().to_string();
    assert!(
        e.contains("overrides.parquet: column `points_at_open` has type f64; expected an integer"),
        "{e}"
    );
    // Any integer type in range reads; one out of range is named by its row.
    df.with_column(Column::new(POINTS_AT_OPEN.into(), vec![1i64, -2, 1 << 40]))
        .unwrap();
    ParquetWriter::new(std::fs::File::create(&p).unwrap())
        .finish(&mut df)
        .unwrap();
    let e = read_overrides(&p).unwrap_err().to_string();
    assert!(
        e.contains("overrides.parquet, row 3: column `points_at_open`: 1099511627776 is outside a 32-bit integer"),
        "{e}"
    );
}

fn card() -> fastrefund_snapshot::LoadedModel {
    fastrefund_snapshot::load_checked_model(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/snapshot/model.json"),
    )
    .unwrap()
}

#[test]
fn a_strike_corrects_its_buyers_rating_only_and_leaves_the_points_as_scored() {
    let model = card();
    let card = model.card();
    let nf = card.n_features();
    // Three buyers with the same values: every feature missing but the first.
    let mut values = vec![f64::NAN; nf];
    values[0] = 30.0;
    let pm = card.points_numeric(&values).unwrap();
    let scored = card.score_points(&pm).unwrap();
    let first = scored.reasons[0].expect("a buyer with missing values has a reason");
    let code = first.code(card);
    let at_open = pm.points[usize::from(first.feature)];
    let points = PointsTable::from_flat(nf, pm.points.repeat(3), pm.missing.repeat(3)).unwrap();
    let mut s = Scores {
        buyer_ids: vec![1, 2, 3],
        scored: vec![scored; 3],
        points: points.clone(),
        features: DataFrame::empty(),
    };
    let o = Overrides::new(
        "test",
        vec![
            strike(10, 1, &code, at_open),
            // Worse evidence since (the buyer's points now are fewer): nothing struck.
            strike(11, 3, &code, at_open + 1),
            // A buyer not rated.
            strike(12, 99, &code, at_open),
        ],
    );
    let mut applied = Applied::default();
    o.apply(card, &mut s, &mut applied).unwrap();
    let (want, by) = corrected(card, &pm, o.of(BuyerId(1))).unwrap().unwrap();
    assert_eq!(by, vec![10]);
    assert_ne!(want, scored);
    assert_eq!(s.scored, vec![want, scored, scored]);
    assert_eq!(s.points, points);
    assert_eq!(
        (
            applied.buyers_with_strikes.len(),
            applied.buyers_struck,
            applied.strikes_held
        ),
        (2, 1, 1)
    );
}
