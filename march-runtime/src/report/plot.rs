//! The report's figures, as SVG and PNG: validation loss against tokens (mean
//! line, min–max band over seeds, each evaluation marked), final loss
//! against parameters, and a forest plot of each variant's Δ against its
//! control.
//!
//! Text is drawn with a bundled font (DejaVu Sans, `assets/`), registered
//! with plotters' `ab_glyph` backend: no system fonts or libraries needed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::Comparison;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Make the bundled font the `sans-serif` of plotters (once per process).
/// Anything drawing text with plotters in a march process needs it, e.g.
/// criterion's HTML plots in the benches.
pub fn register_font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the bundled font could not be loaded"))
    }
}

const SIZE: (u32, u32) = (1000, 640);

/// Write every figure as SVG and PNG into `out`; returns the files written.
pub fn write_all(cmp: &Comparison, out: &Path) -> Result<Vec<PathBuf>> {
    register_font()?;
    let mut written = Vec::new();
    if cmp.variants.is_empty() {
        return Ok(written);
    }
    let compared = cmp.variants.iter().any(|v| v.vs_control.is_some());
    let names = ["val_loss", "final_loss_vs_params", "delta_vs_control"];
    for name in names
        .into_iter()
        .filter(|&n| compared || n != "delta_vs_control")
    {
        // drawn into temporary files, renamed into place when whole
        let svg = crate::files::tmp_path(&out.join(format!("{name}.svg")));
        let png = out.join(format!(".{name}.{}.tmp.png", std::process::id()));
        let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        let drawn = match name {
            "val_loss" => {
                curves(SVGBackend::new(&svg, SIZE).into_drawing_area(), cmp).and_then(|()| {
                    curves(
                        BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area(),
                        cmp,
                    )
                })
            }
            "delta_vs_control" => forest(SVGBackend::new(&svg, SIZE).into_drawing_area(), cmp)
                .and_then(|()| {
                    forest(
                        BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area(),
                        cmp,
                    )
                }),
            _ => loss_vs_params(SVGBackend::new(&svg, SIZE).into_drawing_area(), cmp).and_then(
                |()| {
                    let area = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
                    loss_vs_params(area, cmp)
                },
            ),
        }
        .map_err(|e| e.to_string())
        .and_then(|()| write_png(&png, &pixels).map_err(|e| e.to_string()));
        drawn.map_err(|e| {
            let _ = std::fs::remove_file(&svg);
            let _ = std::fs::remove_file(&png);
            anyhow!("drawing {} in {}: {e}", name, out.display())
        })?;
        for (tmp, ext) in [(svg, "svg"), (png, "png")] {
            let path = out.join(format!("{name}.{ext}"));
            std::fs::rename(&tmp, &path)
                .map_err(crate::files::io_error)
                .with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Encode an RGB image of [`SIZE`] as PNG (8 bits per channel, fast
/// deflate, an adaptive filter per row: the settings plotters' own encoder,
/// through the `image` crate, used; the `png` crate alone builds in a
/// fraction of the time).
fn write_png(path: &Path, rgb: &[u8]) -> Result<(), png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::FilterType::Sub);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(std::fs::write(path, bytes)?)
}

fn color(i: usize) -> RGBColor {
    // Tableau 10, then Palette99
    const T10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    match T10.get(i) {
        Some(&(r, g, b)) => RGBColor(r, g, b),
        None => {
            let c = Palette99::pick(i).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

fn pad(lo: f64, hi: f64, frac: f64) -> std::ops::Range<f64> {
    // nothing finite to show (plotters refuses a range that is not)
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return 0.0..1.0;
    }
    // a single value still gets a visible range around it
    let span = (hi - lo).max(hi.abs() * 0.05).max(1e-9);
    (lo - frac * span)..(hi + frac * span)
}

/// Axis labels in the unit that suits the axis' largest value.
fn tokens_label(max: f64) -> impl Fn(&f64) -> String {
    move |x: &f64| {
        if max >= 1e7 {
            format!("{:.0}M", x / 1e6)
        } else if max >= 1e6 {
            format!("{:.1}M", x / 1e6)
        } else if max >= 1e4 {
            format!("{:.0}k", x / 1e3)
        } else {
            format!("{x:.0}")
        }
    }
}

/// Validation loss against tokens: a mean line and a min–max band per variant.
/// The first evaluation (the untrained model) is left out of the y range so the
/// differences that matter stay visible.
fn curves<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    cmp: &Comparison,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let pts = cmp
        .variants
        .iter()
        .flat_map(|v| v.curve.iter().filter(|p| p.tokens > 0));
    let (mut x1, mut y0, mut y1) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for p in pts {
        x1 = x1.max(p.tokens as f64);
        y0 = y0.min(p.min);
        y1 = y1.max(p.max);
    }
    if !y0.is_finite() {
        // only step-0 evaluations: show them
        for p in cmp.variants.iter().flat_map(|v| &v.curve) {
            y0 = y0.min(p.min);
            y1 = y1.max(p.max);
        }
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Validation loss (mean over seeds, band: min–max)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x1 * 1.02, pad(y0, y1, 0.05))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("training tokens")
        .y_desc("validation loss (nats)")
        .x_label_formatter(&tokens_label(x1))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for (i, v) in cmp.variants.iter().enumerate() {
        let c = color(i);
        let shown: Vec<_> = v
            .curve
            .iter()
            .filter(|p| p.tokens > 0 || v.curve.len() == 1)
            .collect();
        if v.seeds.len() > 1 {
            let band: Vec<(f64, f64)> = shown
                .iter()
                .map(|p| (p.tokens as f64, p.max))
                .chain(shown.iter().rev().map(|p| (p.tokens as f64, p.min)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(band, c.mix(0.15))))
                .map_err(e)?;
        }
        chart
            .draw_series(LineSeries::new(
                shown.iter().map(|p| (p.tokens as f64, p.mean)),
                c.stroke_width(2),
            ))
            .map_err(e)?
            .label(format!("{} (n={})", v.variant, v.seeds.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        // each evaluation marked
        chart
            .draw_series(
                shown
                    .iter()
                    .map(|p| Circle::new((p.tokens as f64, p.mean), 2, c.filled())),
            )
            .map_err(e)?;
    }
    finish(&mut chart, &root)
}

/// Final validation loss (mean ± std over seeds) against total parameters.
fn loss_vs_params<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    cmp: &Comparison,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let sd = |s: &super::stats::Summary| s.std.unwrap_or(0.0);
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for v in &cmp.variants {
        let x = v.params_total as f64;
        let s = &v.final_val_loss;
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(s.mean - sd(s)).min(s.min);
        y1 = y1.max(s.mean + sd(s)).max(s.max);
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Final validation loss against parameters (mean ± std over seeds)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(pad(x0, x1, 0.08), pad(y0, y1, 0.08))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("parameters (total)")
        .y_desc("final validation loss (nats)")
        .x_label_formatter(&|x| format!("{:.2}M", x / 1e6))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for (i, v) in cmp.variants.iter().enumerate() {
        let c = color(i);
        let x = v.params_total as f64;
        let s = v.final_val_loss;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, s.mean - sd(&s)), (x, s.mean + sd(&s))],
                c.stroke_width(2),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Circle::new((x, s.mean), 5, c.filled())))
            .map_err(e)?
            .label(format!("{} (n={})", v.variant, v.seeds.len()))
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
    }
    finish(&mut chart, &root)
}

/// A forest plot: each variant's Δ against its control (final validation
/// loss, the variant's minus the control's) with its 95% interval, one row
/// per comparison; a filled dot survives Holm's correction, a hollow one
/// does not.
fn forest<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    cmp: &Comparison,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let rows: Vec<(usize, &super::VariantResult, super::stats::Welch)> = cmp
        .variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.vs_control.map(|w| (i, v, w)))
        .collect();
    let (mut x0, mut x1) = (0.0f64, 0.0f64);
    for (_, _, w) in &rows {
        if w.ci_low.is_finite() && w.ci_high.is_finite() {
            x0 = x0.min(w.ci_low);
            x1 = x1.max(w.ci_high);
        }
    }
    let n = rows.len();
    let label_of = |y: &f64| -> String {
        let k = y.round();
        if (y - k).abs() > 1e-6 || k < 0.0 || k as usize >= n {
            return String::new();
        }
        // the first comparison at the top
        let (_, v, _) = &rows[n - 1 - k as usize];
        format!("{} − {}", v.variant, v.control.as_deref().unwrap_or("?"))
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Δ final validation loss against the control (95% CI; filled: survives Holm)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(420)
        .build_cartesian_2d(pad(x0, x1, 0.08), -0.5..(n as f64 - 0.5))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("Δ loss (nats): variant − control")
        .y_labels(n.max(1))
        .y_label_formatter(&label_of)
        .disable_y_mesh()
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
            BLACK.mix(0.5).stroke_width(1),
        )))
        .map_err(e)?;
    for (k, (i, v, w)) in rows.iter().enumerate() {
        let y = (n - 1 - k) as f64;
        let c = color(*i);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(w.ci_low, y), (w.ci_high, y)],
                c.stroke_width(2),
            )))
            .map_err(e)?;
        let style = if v.holm.is_some_and(|h| h.survives) {
            c.filled()
        } else {
            c.stroke_width(2)
        };
        chart
            .draw_series(std::iter::once(Circle::new((w.diff, y), 5, style)))
            .map_err(e)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// The legend and the final write, the same for every figure.
fn finish<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
