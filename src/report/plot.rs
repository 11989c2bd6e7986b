//! SVG figures drawn with plotters.

use super::ReportError;
use plotters::prelude::*;

/// Colours of 1★ … 5★, red to green.
pub const STAR_COLOURS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(188, 189, 34),
    RGBColor(44, 160, 44),
    RGBColor(23, 120, 60),
];

fn perr(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// One horizontal 100% bar per row, split by star share.
pub fn stacked_star_bars(title: &str, rows: &[(String, [f64; 5])]) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let h = 120 + 50 * rows.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (900, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let n = rows.len() as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(230)
            .build_cartesian_2d(0f64..100f64, (0..n).into_segmented())
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("share of buyers (%)")
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => rows
                    .get(usize::try_from(n - 1 - *i).unwrap_or(0))
                    .map(|r| r.0.clone())
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(perr)?;
        for (k, colour) in STAR_COLOURS.iter().enumerate() {
            let bars = rows.iter().enumerate().map(|(i, (_, share))| {
                let left: f64 = share[..k].iter().sum::<f64>() * 100.0;
                let right = left + share[k] * 100.0;
                let y = n - 1 - i as i32;
                Rectangle::new(
                    [
                        (left, SegmentValue::Exact(y)),
                        (right, SegmentValue::Exact(y + 1)),
                    ],
                    colour.filled(),
                )
            });
            chart
                .draw_series(bars)
                .map_err(perr)?
                .label(format!("{}★", k + 1))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    Ok(svg)
}
