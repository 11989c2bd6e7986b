//! The drift figure a snapshot carries beside `drift.json`.

use crate::ReportError;
use fastrefund_snapshot::drift::DriftReport;

/// SVG bars of the per-feature PSI, and the score and star PSI.
pub fn drift_svg(r: &DriftReport) -> Result<String, ReportError> {
    let mut rows: Vec<(String, f64, bool)> = vec![
        ("score".into(), r.score_psi, r.score_psi < 0.25),
        ("stars".into(), r.star_psi, r.star_psi < 0.25),
    ];
    rows.extend(r.features.iter().map(|(f, p)| (f.clone(), *p, *p < 0.25)));
    crate::plot::hbars(
        &format!(
            "PSI against {} (as of {}); grey: above 0.25",
            r.baseline_model_version, r.baseline_as_of
        ),
        &rows,
        "population stability index",
    )
}

/// [`drift_svg`] in the shape `rate` takes (`fastrefund_batch::rate::DriftFigure`).
pub fn drift_figure(r: &DriftReport) -> Result<String, String> {
    drift_svg(r).map_err(|e| e.to_string())
}
