//! SVG figures drawn with plotters.

use super::ReportError;
use plotters::coord::Shift;
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

/// Draws a figure of `size` on a white SVG canvas and returns its SVG text.
fn figure(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ReportError>,
) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        draw(&root)?;
        root.present().map_err(perr)?;
    }
    Ok(svg)
}

/// The legend box of every figure: the series' labels at `position`, on white.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(perr)
}

/// The label of a horizontal bar chart's segment: rows are listed from the top, the
/// axis counts from the bottom.
fn top_down_label(v: &SegmentValue<i32>, n: i32, name: impl Fn(usize) -> Option<String>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            name(usize::try_from(n - 1 - *i).unwrap_or(0)).unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    }
}

/// One horizontal 100% bar per row, split by star share.
pub fn stacked_star_bars(title: &str, rows: &[(String, [f64; 5])]) -> Result<String, ReportError> {
    let h = 120 + 50 * rows.len() as u32;
    figure((900, h), |root| {
        let n = rows.len() as i32;
        let mut chart = ChartBuilder::on(root)
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
            .y_label_formatter(&|v| top_down_label(v, n, |i| rows.get(i).map(|r| r.0.clone())))
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
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// A named line of (x, y) points.
pub struct Line<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
}

/// Lines on one chart, with a legend.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Line<'_>],
    diagonal: bool,
) -> Result<String, ReportError> {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for s in series {
        for (x, y) in &s.points {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y0 = y0.min(*y);
            y1 = y1.max(*y);
        }
    }
    if x0 >= x1 {
        x1 = x0 + 1.0;
    }
    if y0 >= y1 {
        y1 = y0 + 1.0;
    }
    figure((720, 480), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(perr)?;
        if diagonal {
            chart
                .draw_series(LineSeries::new(vec![(x0, y0), (x1, y1)], BLACK.mix(0.3)))
                .map_err(perr)?;
        }
        for s in series {
            let c = s.colour;
            chart
                .draw_series(LineSeries::new(s.points.clone(), c.stroke_width(2)))
                .map_err(perr)?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
}

/// Vertical bars (one value per label), optionally with a second series as a line on
/// its own axis (e.g. population bars and bad rate line).
pub fn bars_with_line(
    title: &str,
    labels: &[String],
    bars: (&str, &[f64]),
    line: Option<(&str, &[f64])>,
    colours: Option<&[RGBColor]>,
) -> Result<String, ReportError> {
    let n = labels.len().max(1);
    let bmax = bars.1.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.1;
    let bmin = bars.1.iter().copied().fold(0.0, f64::min).min(0.0) * 1.1;
    figure((720, 420), |root| {
        let chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(60)
            .y_label_area_size(60)
            .right_y_label_area_size(if line.is_some() { 60 } else { 0 })
            .build_cartesian_2d((0..n).into_segmented(), bmin..bmax)
            .map_err(perr)?;
        let lmax = line
            .map(|(_, v)| v.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.1)
            .unwrap_or(1.0);
        let mut chart = chart.set_secondary_coord((0..n).into_segmented(), 0.0..lmax);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(bars.0)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(perr)?;
        let default = [RGBColor(70, 130, 180)];
        let palette = colours.unwrap_or(&default);
        chart
            .draw_series(bars.1.iter().enumerate().map(|(i, v)| {
                let c = palette[i % palette.len()];
                let (a, b) = if *v >= 0.0 { (0.0, *v) } else { (*v, 0.0) };
                Rectangle::new(
                    [(SegmentValue::Exact(i), a), (SegmentValue::Exact(i + 1), b)],
                    c.mix(0.85).filled(),
                )
            }))
            .map_err(perr)?
            .label(bars.0)
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 6), (x + 12, y + 6)],
                    RGBColor(70, 130, 180).filled(),
                )
            });
        if let Some((name, vals)) = line {
            chart
                .configure_secondary_axes()
                .y_desc(name)
                .draw()
                .map_err(perr)?;
            chart
                .draw_secondary_series(LineSeries::new(
                    vals.iter()
                        .enumerate()
                        .map(|(i, v)| (SegmentValue::CenterOf(i), *v)),
                    RED.stroke_width(3),
                ))
                .map_err(perr)?
                .label(name)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED.stroke_width(3)));
            chart
                .draw_secondary_series(
                    vals.iter().enumerate().map(|(i, v)| {
                        Circle::new((SegmentValue::CenterOf(i), *v), 4, RED.filled())
                    }),
                )
                .map_err(perr)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Horizontal bars, largest first (e.g. information value per feature).
pub fn hbars(
    title: &str,
    rows: &[(String, f64, bool)],
    x_desc: &str,
) -> Result<String, ReportError> {
    let n = rows.len().max(1) as i32;
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let h = (80 + 28 * rows.len()) as u32;
    figure((760, h), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(230)
            .build_cartesian_2d(0.0..max, (0..n).into_segmented())
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(x_desc)
            .y_label_formatter(&|v| top_down_label(v, n, |i| rows.get(i).map(|r| r.0.clone())))
            .draw()
            .map_err(perr)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, (_, v, kept))| {
                let y = n - 1 - i as i32;
                let c = if *kept {
                    RGBColor(44, 160, 44)
                } else {
                    RGBColor(180, 180, 180)
                };
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(y)),
                        (*v, SegmentValue::Exact(y + 1)),
                    ],
                    c.filled(),
                )
            }))
            .map_err(perr)?;
        Ok(())
    })
}

/// Grouped vertical bars: one group per label, one bar per series in each group (e.g.
/// current and candidate policy, per star).
pub fn grouped_bars(
    title: &str,
    labels: &[String],
    series: &[(&str, &[f64])],
    y_desc: &str,
) -> Result<String, ReportError> {
    const PALETTE: [RGBColor; 4] = [
        RGBColor(120, 120, 120),
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
    ];
    let n = labels.len().max(1);
    let k = series.len().max(1);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.15;
    let width = (120 + 70 * n * k).clamp(600, 1400) as u32;
    figure((width, 440), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..max)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_desc)
            .draw()
            .map_err(perr)?;
        let bar = 0.8 / k as f64;
        for (s, (name, vals)) in series.iter().enumerate() {
            let c = PALETTE[s % PALETTE.len()];
            chart
                .draw_series(vals.iter().enumerate().map(|(i, v)| {
                    let x0 = i as f64 - 0.4 + bar * s as f64;
                    Rectangle::new([(x0, 0.0), (x0 + bar * 0.92, *v)], c.mix(0.9).filled())
                }))
                .map_err(perr)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], c.filled()));
        }
        let style = ("sans-serif", 15).into_font().color(&BLACK).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        for (i, l) in labels.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, 0.0));
            root.draw(&Text::new(l.clone(), (px, py + 8), style.clone()))
                .map_err(perr)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}
