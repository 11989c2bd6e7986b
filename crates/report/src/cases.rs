//! The `cases` section: how often reviewers overturn what the rating held against
//! buyers, by the star they had when they opened the case and by its reason code
//! ([`fastrefund_train::overturn`]). One figure (`cases.svg`), one table (`cases.csv`)
//! and the section of `report.html`; `rate --cases` puts the figure and
//! `cases.json` in the snapshot beside `drift.json`.

use crate::ReportError;
use fastrefund_train::overturn::{OverturnRow, Overturns};
use std::fmt::Write as _;

fn label(r: &OverturnRow) -> String {
    format!("{} ({} cases)", r.group, r.decided)
}

/// Horizontal bars of the overturn rate (%), each star at opening, then each reason
/// code; a star called out as too often overturned is grey.
pub fn cases_svg(o: &Overturns) -> Result<String, ReportError> {
    let mut rows: Vec<(String, f64, bool)> = o
        .by_star
        .iter()
        .map(|r| (label(r), 100.0 * r.overturn_rate, !r.high))
        .collect();
    rows.extend(o.by_reason.iter().map(|r| {
        (
            format!("reason {}", label(r)),
            100.0 * r.overturn_rate,
            true,
        )
    }));
    crate::plot::hbars(
        &format!(
            "Cases overturned (buyer won or split): {:.0}% of {}; grey: a star at ≥ {:.0}% of ≥ {} cases",
            100.0 * o.all.overturn_rate,
            o.all.decided,
            100.0 * o.high_overturn_rate,
            o.min_cases
        ),
        &rows,
        "overturn rate (%), by star at opening, then by reason code",
    )
}

/// [`cases_svg`] in the shape `rate` takes (`fastrefund_batch::rate::CasesFigure`).
pub fn cases_figure(o: &Overturns) -> Result<String, String> {
    cases_svg(o).map_err(|e| e.to_string())
}

/// The rows as CSV: `by,group,decided,buyer_won,split,merchant_won,overturn_rate,high`.
pub fn cases_csv(o: &Overturns) -> String {
    let mut csv =
        String::from("by,group,decided,buyer_won,split,merchant_won,overturn_rate,high\n");
    let all = std::iter::once(("all", &o.all));
    let stars = o.by_star.iter().map(|r| ("star", r));
    let reasons = o.by_reason.iter().map(|r| ("reason", r));
    for (by, r) in all.chain(stars).chain(reasons) {
        let _ = writeln!(
            csv,
            "{by},{},{},{},{},{},{:.6},{}",
            r.group, r.decided, r.buyer_won, r.split, r.merchant_won, r.overturn_rate, r.high
        );
    }
    csv
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn table(title: &str, rows: &[OverturnRow]) -> String {
    let mut body = String::new();
    for r in rows {
        let _ = write!(
            body,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td></tr>",
            if r.high { " class=\"flag\"" } else { "" },
            esc(&r.group),
            r.decided,
            r.buyer_won,
            r.split,
            r.merchant_won,
            100.0 * r.overturn_rate
        );
    }
    format!(
        "<table><tr><th>{title}</th><th>decided</th><th>buyer won</th><th>split</th><th>merchant won</th><th>overturned</th></tr>{body}</table>"
    )
}

/// The section of `report.html`.
pub(crate) fn cases_html(o: &Overturns) -> String {
    let findings: String = o
        .findings
        .iter()
        .map(|f| format!("<li>{}</li>", esc(f)))
        .collect();
    format!(
        "<h2>Cases: overturn rates</h2>\
         <p>Decided cases from <code>{source}</code>: a case is overturned when the buyer won it or it was split. \
         By the star the buyer had when the case was opened, and by the first reason code of that star. \
         A star whose cases are overturned at {limit:.0}% or more (over at least {min} cases) is called out: \
         a model whose losses are often overturned is wrong. Also in <code>cases.csv</code> and <code>figures/cases.svg</code>.</p>\
         <ul>{findings}</ul>{stars}{reasons}",
        source = esc(&o.source),
        limit = 100.0 * o.high_overturn_rate,
        min = o.min_cases,
        stars = table("star at opening", &o.by_star),
        reasons = table("reason code", &o.by_reason),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastrefund_core::cases::Verdict;
    use fastrefund_core::domain::Star;
    use fastrefund_train::overturn::DecidedCase;

    fn overturns() -> Overturns {
        let cases: Vec<DecidedCase> = (0..40)
            .map(|i| DecidedCase {
                verdict: if i % 2 == 0 {
                    Verdict::BuyerWon
                } else {
                    Verdict::MerchantWon
                },
                star: Some(Star::try_from(if i < 30 { 1u8 } else { 4 }).unwrap()),
                reason: Some(
                    if i < 20 {
                        "returns_90"
                    } else {
                        "slow_ship_365"
                    }
                    .into(),
                ),
            })
            .collect();
        Overturns::of("cases.parquet", &cases)
    }

    #[test]
    fn a_star_too_often_overturned_is_flagged_in_the_table_and_said_in_words() {
        let o = overturns();
        let html = cases_html(&o);
        assert!(
            html.contains("<tr class=\"flag\"><td>1★</td><td>30</td>"),
            "{html}"
        );
        assert!(
            html.contains("The model is wrong too often at 1★: 15 of 30 cases"),
            "{html}"
        );
        let svg = cases_svg(&o).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("1★ (30 cases)"),
            "{svg}"
        );
        let csv = cases_csv(&o);
        assert!(
            csv.contains("\nstar,1★,30,15,0,15,0.500000,true\n"),
            "{csv}"
        );
        assert!(
            csv.contains("\nreason,returns_90,20,10,0,10,0.500000,false\n"),
            "{csv}"
        );
    }
}
