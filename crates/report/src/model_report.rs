//! The evaluation report written next to every trained model: one self-contained
//! HTML file (`report.html`, figures inlined), the figures as SVG (`figures/`) and the
//! numbers as CSV, beside `evaluation.json`.

use super::plot::{self, Line, STAR_COLOURS};
use super::{ReportError, io};
use fastrefund_core::scoring::{FeatureKind, Scorecard};
use fastrefund_train::evaluation::{Evaluation, FairnessRow, PromiseCheck, Promises};
use plotters::style::RGBColor;
use std::fmt::Write as _;
use std::path::Path;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn write(path: &Path, body: &str) -> Result<(), ReportError> {
    std::fs::write(path, body).map_err(|e| io(path, e))
}

/// Writes `report.html`, `figures/*.svg` and `*.csv` into `out`.
pub fn model_report(card: &Scorecard, e: &Evaluation, out: &Path) -> Result<(), ReportError> {
    let figs = out.join("figures");
    std::fs::create_dir_all(&figs).map_err(|er| io(&figs, er))?;
    let m = card.model();
    let mut figures: Vec<(String, String, String)> = Vec::new(); // (file, title, svg)

    // ROC, champion and challenger.
    let mut roc = vec![Line {
        name: "scorecard (champion)",
        points: e.roc.iter().map(|p| (p[0], p[1])).collect(),
        colour: BLUE,
    }];
    if let Some(c) = &e.challenger {
        roc.push(Line {
            name: "bagged trees (challenger)",
            points: c.roc.iter().map(|p| (p[0], p[1])).collect(),
            colour: ORANGE,
        });
    }
    figures.push((
        "roc.svg".into(),
        "ROC curve (test split)".into(),
        plot::lines(
            "ROC curve, test split",
            "false positive rate",
            "true positive rate",
            &roc,
            true,
        )?,
    ));
    // KS.
    let ks = [
        Line {
            name: "bads",
            points: e.ks_curve.iter().map(|p| (p[0], p[1])).collect(),
            colour: RGBColor(214, 39, 40),
        },
        Line {
            name: "goods",
            points: e.ks_curve.iter().map(|p| (p[0], p[2])).collect(),
            colour: GREEN,
        },
    ];
    figures.push((
        "ks.svg".into(),
        format!("KS curve: largest gap {:.3}", e.test.ks),
        plot::lines(
            &format!("Cumulative share by score (KS = {:.3})", e.test.ks),
            "score",
            "cumulative share at or below",
            &ks,
            false,
        )?,
    ));
    // Calibration.
    let cal = [
        Line {
            name: "observed bad rate",
            points: e
                .calibration
                .iter()
                .map(|r| (r.predicted_bad_rate, r.observed_bad_rate))
                .collect(),
            colour: BLUE,
        },
        Line {
            name: "perfect calibration",
            points: {
                let hi = e
                    .calibration
                    .iter()
                    .map(|r| r.predicted_bad_rate.max(r.observed_bad_rate))
                    .fold(0.0, f64::max);
                vec![(0.0, 0.0), (hi, hi)]
            },
            colour: RGBColor(150, 150, 150),
        },
    ];
    figures.push((
        "calibration.svg".into(),
        "Calibration by score decile (test split)".into(),
        plot::lines(
            "Predicted vs observed bad rate, by score decile",
            "predicted bad rate",
            "observed bad rate",
            &cal,
            false,
        )?,
    ));
    // Stars.
    let labels: Vec<String> = e
        .test
        .stars
        .iter()
        .map(|s| format!("{}★", s.star))
        .collect();
    let pop: Vec<f64> = e.test.stars.iter().map(|s| 100.0 * s.share).collect();
    let bad: Vec<f64> = e.test.stars.iter().map(|s| 100.0 * s.bad_rate).collect();
    figures.push((
        "stars.svg".into(),
        "Population and bad rate by star (test split)".into(),
        plot::bars_with_line(
            "Population and bad rate by star, test split",
            &labels,
            ("population (%)", &pop),
            Some(("bad rate (%)", &bad)),
            Some(&STAR_COLOURS),
        )?,
    ));
    // Score distribution.
    let centres: Vec<f64> = e
        .score_distribution
        .edges
        .windows(2)
        .map(|w| (w[0] + w[1]) / 2.0)
        .collect();
    let over_centres = |name, shares: &[f64], colour| Line {
        name,
        points: centres
            .iter()
            .copied()
            .zip(shares.iter().copied())
            .collect(),
        colour,
    };
    let dist = [
        over_centres("goods", &e.score_distribution.goods, GREEN),
        over_centres("bads", &e.score_distribution.bads, RGBColor(214, 39, 40)),
    ];
    figures.push((
        "score_distribution.svg".into(),
        "Score distribution of goods and bads (test split)".into(),
        plot::lines(
            "Score distribution, goods vs bads (test split)",
            "score",
            "share of class",
            &dist,
            false,
        )?,
    ));
    // Information value.
    let mut iv: Vec<(String, f64, bool)> = e
        .information_value
        .iter()
        .map(|r| (r.feature.clone(), r.iv, r.kept))
        .collect();
    iv.sort_by(|a, b| b.1.total_cmp(&a.1));
    figures.push((
        "information_value.svg".into(),
        "Information value per feature (green: in the model)".into(),
        plot::hbars(
            "Information value per feature (green: kept)",
            &iv,
            "information value",
        )?,
    ));
    // Bins of every model feature.
    for f in &m.features {
        let bins: Vec<_> = f
            .bins
            .iter()
            .filter(|b| b.count > 0 || !b.missing)
            .collect();
        let labels: Vec<String> = bins.iter().map(|b| b.label.clone()).collect();
        let woe: Vec<f64> = bins.iter().map(|b| b.woe).collect();
        let rate: Vec<f64> = bins
            .iter()
            .map(|b| {
                if b.count > 0 {
                    100.0 * b.bads as f64 / b.count as f64
                } else {
                    0.0
                }
            })
            .collect();
        figures.push((
            format!("bins-{}.svg", f.name),
            format!("{}: WOE and bad rate by bin", f.name),
            plot::bars_with_line(
                &format!("{}: weight of evidence and bad rate by bin", f.name),
                &labels,
                ("WOE", &woe),
                Some(("bad rate (%)", &rate)),
                None,
            )?,
        ));
    }
    if !e.fairness.is_empty() {
        let rows: Vec<(String, f64, bool)> = e
            .fairness
            .iter()
            .map(|r| {
                (
                    format!("{}: {}", r.dimension, r.group),
                    r.adverse_impact_ratio,
                    !r.flagged,
                )
            })
            .collect();
        figures.push((
            "fairness.svg".into(),
            "Adverse-impact ratio by group: share at ≥ 3★ against the best-treated group (green: ≥ 0.8)".into(),
            plot::hbars(
                "Adverse-impact ratio by group (green: at least 0.8)",
                &rows,
                "adverse-impact ratio",
            )?,
        ));
    }
    if let Some(p) = &e.promises {
        let bands: Vec<_> = p
            .check
            .honest_by_orders
            .iter()
            .filter(|b| b.buyers > 0)
            .collect();
        let labels: Vec<String> = bands.iter().map(|b| b.orders_365.clone()).collect();
        let down: Vec<f64> = bands.iter().map(|b| 100.0 * b.star_down_share).collect();
        let pts: Vec<f64> = bands.iter().map(|b| b.mean_points_lost).collect();
        figures.push((
            "honest_return.svg".into(),
            "One more honest return, by orders in the last year: share whose star fell (never by two), and mean points lost".into(),
            plot::bars_with_line(
                "One more honest return, by orders in the last 365 days",
                &labels,
                ("star fell by one (%)", &down),
                Some(("mean points lost", &pts)),
                None,
            )?,
        ));
    }
    if let Some(o) = &e.cases {
        figures.push((
            "cases.svg".into(),
            "Cases overturned by star at opening and by reason code (grey: too often)".into(),
            crate::cases::cases_svg(o)?,
        ));
        write(&out.join("cases.csv"), &crate::cases::cases_csv(o))?;
    }
    for (file, _, svg) in &figures {
        write(&figs.join(file), svg)?;
    }
    if !e.fairness.is_empty() {
        let mut csv = String::from(
            "dimension,group,buyers,share_at_3_stars,bad_rate,adverse_impact_ratio,flagged\n",
        );
        for r in &e.fairness {
            let _ = writeln!(
                csv,
                "{},\"{}\",{},{:.6},{:.6},{:.6},{}",
                r.dimension,
                r.group.replace('"', "'"),
                r.buyers,
                r.share_at_min_star,
                r.bad_rate,
                r.adverse_impact_ratio,
                r.flagged
            );
        }
        write(&out.join("fairness.csv"), &csv)?;
    }
    if let Some(p) = &e.promises {
        let mut csv = String::from(
            "model,variant,buyers,score_up,score_moved,lost_0,lost_1,lost_2,lost_3,lost_4,fell_below_floor\n",
        );
        let challenger = e
            .challenger
            .as_ref()
            .and_then(|c| c.promises.as_ref())
            .map(|c| ("challenger", c));
        for (model, check) in std::iter::once(("champion", &p.check)).chain(challenger) {
            for v in &check.variants {
                let l = v.stars_lost;
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    model,
                    v.variant,
                    v.buyers,
                    v.score_up,
                    v.score_moved,
                    l[0],
                    l[1],
                    l[2],
                    l[3],
                    l[4],
                    v.fell_below_floor
                );
            }
        }
        write(&out.join("promises.csv"), &csv)?;
    }

    // CSVs.
    let mut stars_csv = String::from("split,star,count,bads,bad_rate,share,min_score\n");
    for (split, rows) in [
        ("train", e.train.as_ref().map(|t| &t.stars)),
        ("test", Some(&e.test.stars)),
    ] {
        for s in rows.into_iter().flatten() {
            let _ = writeln!(
                stars_csv,
                "{split},{},{},{},{:.6},{:.6},{}",
                s.star,
                s.count,
                s.bads,
                s.bad_rate,
                s.share,
                s.min_score.map(|v| v.to_string()).unwrap_or_default()
            );
        }
    }
    write(&out.join("stars.csv"), &stars_csv)?;
    let mut cal_csv =
        String::from("min_score,max_score,count,predicted_bad_rate,observed_bad_rate\n");
    for r in &e.calibration {
        let _ = writeln!(
            cal_csv,
            "{},{},{},{:.6},{:.6}",
            r.min_score, r.max_score, r.count, r.predicted_bad_rate, r.observed_bad_rate
        );
    }
    write(&out.join("calibration.csv"), &cal_csv)?;
    let mut iv_csv = String::from("feature,information_value,kept\n");
    for (f, v, k) in &iv {
        let _ = writeln!(iv_csv, "{f},{v:.6},{k}");
    }
    write(&out.join("information_value.csv"), &iv_csv)?;
    let mut bins_csv = String::from("feature,bin,count,bads,bad_rate,woe,points\n");
    for f in &m.features {
        for b in &f.bins {
            let rate = if b.count > 0 {
                b.bads as f64 / b.count as f64
            } else {
                0.0
            };
            let _ = writeln!(
                bins_csv,
                "{},\"{}\",{},{},{rate:.6},{:.6},{}",
                f.name,
                b.label.replace('"', "'"),
                b.count,
                b.bads,
                b.woe,
                b.points
            );
        }
    }
    write(&out.join("bins.csv"), &bins_csv)?;
    let mut roc_csv = String::from("model,fpr,tpr\n");
    for p in &e.roc {
        let _ = writeln!(roc_csv, "champion,{:.6},{:.6}", p[0], p[1]);
    }
    if let Some(c) = &e.challenger {
        for p in &c.roc {
            let _ = writeln!(roc_csv, "challenger,{:.6},{:.6}", p[0], p[1]);
        }
    }
    write(&out.join("roc.csv"), &roc_csv)?;

    write(&out.join("report.html"), &html(card, e, &figures))?;
    Ok(())
}

fn metric_row(name: &str, auc: f64, ks: f64, gini: f64, brier: f64, rows: String) -> String {
    format!(
        "<tr><td>{name}</td><td>{auc:.4}</td><td>{ks:.4}</td><td>{gini:.4}</td><td>{brier:.5}</td><td>{rows}</td></tr>"
    )
}

fn html(card: &Scorecard, e: &Evaluation, figures: &[(String, String, String)]) -> String {
    let m = card.model();
    let mut metrics = String::new();
    if let Some(t) = &e.train {
        metrics += &metric_row(
            "scorecard, train",
            t.auc,
            t.ks,
            t.gini,
            t.brier,
            format!("{} ({} bad)", t.rows, t.bads),
        );
    }
    metrics += &metric_row(
        "scorecard, test",
        e.test.auc,
        e.test.ks,
        e.test.gini,
        e.test.brier,
        format!("{} ({} bad)", e.test.rows, e.test.bads),
    );
    if let Some(c) = &e.challenger {
        metrics += &metric_row(
            &format!("challenger ({}), test", esc(&c.kind)),
            c.auc,
            c.ks,
            c.gini,
            c.brier,
            format!("train AUC {:.4}", c.train_auc),
        );
    }
    let mut stars = String::new();
    for s in &e.test.stars {
        let _ = write!(
            stars,
            "<tr><td>{}★</td><td>{}</td><td>{:.1}%</td><td>{:.2}%</td><td>{}</td></tr>",
            s.star,
            s.count,
            100.0 * s.share,
            100.0 * s.bad_rate,
            s.min_score
                .map(|v| format!("≥ {v}"))
                .unwrap_or_else(|| "—".into())
        );
    }
    let mut features = String::new();
    for f in &m.features {
        let kind = match f.kind {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Categorical => "categorical",
        };
        let mut bins = String::new();
        for b in &f.bins {
            let rate = if b.count > 0 {
                format!("{:.2}%", 100.0 * b.bads as f64 / b.count as f64)
            } else {
                "—".into()
            };
            let _ = write!(
                bins,
                "<tr><td>{}</td><td>{}</td><td>{rate}</td><td>{:+.3}</td><td>{}</td></tr>",
                esc(&b.label),
                b.count,
                b.woe,
                b.points
            );
        }
        let _ = write!(
            features,
            "<details><summary><b>{}</b> — IV {:.3}, coefficient {:+.3}, {kind}{}</summary><p>{}</p>\
             <table><tr><th>bin</th><th>rows</th><th>bad rate</th><th>WOE</th><th>points</th></tr>{bins}</table></details>",
            esc(&f.name),
            f.information_value,
            f.coefficient,
            f.monotone
                .map(|t| format!(", monotone {t:?}").to_lowercase())
                .unwrap_or_default(),
            esc(&f.description)
        );
    }
    let promises = e
        .promises
        .as_ref()
        .map(|p| {
            let challenger = e
                .challenger
                .as_ref()
                .and_then(|c| c.promises.as_ref())
                .map(challenger_promises_html)
                .unwrap_or_default();
            promises_html(p) + &challenger
        })
        .unwrap_or_default();
    let fairness = fairness_html(&e.fairness);
    let cases = e
        .cases
        .as_ref()
        .map(crate::cases::cases_html)
        .unwrap_or_default();
    let notes: String = e
        .notes
        .iter()
        .map(|n| format!("<li>{}</li>", esc(n)))
        .collect();
    let figs: String = figures
        .iter()
        .map(|(file, title, svg)| {
            format!(
                "<figure><figcaption>{}</figcaption>{svg}<p class=\"meta\">figures/{}</p></figure>",
                esc(title),
                esc(file)
            )
        })
        .collect();
    let t = &m.training;
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model report {version}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 24px auto; padding: 0 16px; color: #1d2330; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }} td, th {{ border: 1px solid #d8dbe3; padding: 4px 10px; text-align: right; }}
th {{ background: #f0f2f7; }} td:first-child, th:first-child {{ text-align: left; }}
figure {{ margin: 24px 0; }} figcaption {{ font-weight: 600; margin-bottom: 6px; }} svg {{ max-width: 100%; height: auto; }}
.meta {{ color: #69708a; font-size: .85rem; }} details {{ margin: 6px 0; }} tr.flag td {{ background: #fdecea; }}
</style></head><body>
<h1>Model report</h1>
<p class="meta">{version} · created {created} · split {split}{as_of} · data {fp}</p>
<h2>Discrimination and calibration</h2>
<table><tr><th>model, split</th><th>AUC</th><th>KS</th><th>Gini</th><th>Brier</th><th>rows</th></tr>{metrics}</table>
<h2>Stars (test split)</h2>
<table><tr><th>star</th><th>buyers</th><th>share</th><th>bad rate</th><th>score</th></tr>{stars}</table>
{promises}
{fairness}
{cases}
<h2>Notes</h2><ul>{notes}</ul>
<h2>Features, bins, weight of evidence and points</h2>
<p>Scaling: {base} points at odds {odds}:1, {pdo} points to double the odds. Label: {label}.</p>
{features}
<h2>Figures</h2>
{figs}
</body></html>
"#,
        version = esc(&m.model_version),
        created = m.created_at.format("%Y-%m-%d %H:%M UTC"),
        split = esc(&t.split),
        as_of = t
            .as_of
            .map(|d| format!(
                ", features as of {d}{}",
                t.test_as_of
                    .map(|x| format!(", tested as of {x}"))
                    .unwrap_or_default()
            ))
            .unwrap_or_default(),
        fp = esc(&t.data_fingerprint[..t.data_fingerprint.len().min(12)]),
        base = m.scaling.base_score,
        odds = m.scaling.base_odds,
        pdo = m.scaling.pdo,
        label = esc(&t.label),
    )
}

/// The rows of the added-return table.
fn variant_rows(c: &PromiseCheck) -> String {
    let mut rows = String::new();
    for v in &c.variants {
        let l = v.stars_lost;
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.variant,
            v.buyers,
            v.score_up,
            v.score_moved,
            l[0],
            l[1],
            l[2] + l[3] + l[4],
            v.fell_below_floor
        );
    }
    rows
}

/// The challenger, tried the same way: it runs in shadow only, so what it breaks is
/// shown, not refused.
fn challenger_promises_html(c: &PromiseCheck) -> String {
    let verdict = if c.violations.is_empty() {
        "<p><b>The challenger keeps every promise too.</b></p>".to_string()
    } else {
        format!(
            "<p><b>The challenger breaks promises</b>, so its AUC is not a like-for-like reason to replace the champion:</p><ul>{}</ul>",
            c.violations
                .iter()
                .map(|b| format!("<li>{}</li>", esc(b)))
                .collect::<String>()
        )
    };
    format!(
        "<h3>The challenger, tried the same way</h3>{verdict}\
         <table><tr><th>added return</th><th>buyers</th><th>score rose</th><th>score moved</th><th>no star lost</th><th>1 star lost</th><th>2+ stars lost</th><th>fell below {floor}★</th></tr>{rows}</table>",
        floor = c.floor_star,
        rows = variant_rows(c),
    )
}

fn promises_html(p: &Promises) -> String {
    let c = &p.check;
    let rows = variant_rows(c);
    let mut bands = String::new();
    for b in c.honest_by_orders.iter().filter(|b| b.buyers > 0) {
        let _ = write!(
            bands,
            "<tr><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.2}</td></tr>",
            esc(&b.orders_365),
            b.buyers,
            100.0 * b.star_down_share,
            b.mean_points_lost
        );
    }
    let broken: Vec<&String> = p.table_violations.iter().chain(&c.violations).collect();
    let verdict = if broken.is_empty() {
        "<p><b>Every promise holds.</b></p>".to_string()
    } else {
        format!(
            "<p><b>Broken promises{}:</b></p><ul>{}</ul>",
            if p.forced {
                " (published with --force)"
            } else {
                ""
            },
            broken
                .iter()
                .map(|b| format!("<li>{}</li>", esc(b)))
                .collect::<String>()
        )
    };
    format!(
        "<h2>Promises to honest buyers</h2>\
         <p>Returning never pays; one honest return (asked within 2 days of delivery, shipped within 2 days, received intact) costs at most one star and never the floor star ({floor}); a merchant-fault return, or an outcome corrected in the buyer's favour, changes nothing. \
         By the points table, one honest return costs at most <b>{cost}</b> points; the narrowest star band above the floor is {band} points wide.</p>{verdict}\
         <p>Tried on {n} buyers of the training history as of {as_of}, each given one more return of each kind; the merchant-fault correction on {tried} buyers with a bad outcome ({differs} differ).</p>\
         <table><tr><th>added return</th><th>buyers</th><th>score rose</th><th>score moved</th><th>no star lost</th><th>1 star lost</th><th>2+ stars lost</th><th>fell below {floor}★</th></tr>{rows}</table>\
         <p>One more honest return, by orders in the last 365 days:</p>\
         <table><tr><th>orders</th><th>buyers</th><th>star fell</th><th>mean points lost</th></tr>{bands}</table>",
        floor = p
            .floor_star
            .map(|f| format!("{f}★"))
            .unwrap_or_else(|| "none".into()),
        cost = p.honest_cost_bound,
        band = p
            .narrowest_band
            .map(|b| b.to_string())
            .unwrap_or_else(|| "—".into()),
        n = c.sampled_buyers,
        as_of = esc(&c.as_of),
        tried = c.corrected_tried,
        differs = c.corrected_differs,
    )
}

fn fairness_html(rows: &[FairnessRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut body = String::new();
    for r in rows {
        let _ = write!(
            body,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.2}%</td><td>{:.3}</td><td>{}</td></tr>",
            if r.flagged { " class=\"flag\"" } else { "" },
            esc(&r.dimension),
            esc(&r.group),
            r.buyers,
            100.0 * r.share_at_min_star,
            100.0 * r.bad_rate,
            r.adverse_impact_ratio,
            if r.flagged { "below 0.8" } else { "" }
        );
    }
    format!(
        "<h2>Fairness by group (test population)</h2>\
         <p>Share at or above 3★ (instant release), bad rate, and the adverse-impact ratio against the best-treated group of the same dimension; groups below 0.8 are flagged for review (groups under 30 buyers are not flagged). A flag asks a question: groups can differ in risk, and the bad rate beside it says whether they do. Also in <code>fairness.csv</code> and <code>figures/fairness.svg</code>.</p>\
         <table><tr><th>dimension</th><th>group</th><th>buyers</th><th>at ≥ 3★</th><th>bad rate</th><th>adverse-impact ratio</th><th>flag</th></tr>{body}</table>"
    )
}
