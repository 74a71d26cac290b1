//! Training curves as a self-contained SVG: training and validation loss over updates, and
//! validation BLEU and chrF, read back from `metrics.jsonl`.

use crate::model_dir::{self, ModelDir};
use std::fmt::Write as _;

use crate::error::{Error, Result};

/// One series of (update, value) points.
struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

fn panel(svg: &mut String, top: f64, title: &str, series: &[Series]) {
    let (left, width, height) = (60.0, 620.0, 200.0);
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let _ = writeln!(svg, r#"<text x="{left}" y="{}" font-size="14" font-weight="bold">{title}</text>"#, top - 8.0);
    let _ =
        writeln!(svg, r##"<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>"##);
    if all.is_empty() {
        let _ = writeln!(svg, r#"<text x="{}" y="{}" font-size="12">no data yet</text>"#, left + 10.0, top + 20.0);
        return;
    }
    let (x0, x1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (xs, ys) = ((x1 - x0).max(1e-9), (y1 - y0).max(1e-9));
    let px = |x: f64| left + (x - x0) / xs * width;
    let py = |y: f64| top + height - (y - y0) / ys * height;
    for (value, y) in [(y0, py(y0)), (y1, py(y1))] {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{value:.3}</text>"#,
            left - 4.0,
            y + 4.0
        );
    }
    for (value, x) in [(x0, px(x0)), (x1, px(x1))] {
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{}" font-size="11" text-anchor="middle">{value:.0}</text>"#,
            top + height + 14.0
        );
    }
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        let ly = top + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{ly}" font-size="12" fill="{}">{}</text>"#,
            left + width - 110.0,
            s.color,
            s.name
        );
    }
}

/// Renders the curves of `metrics` (JSON lines) as SVG text.
pub fn curves_svg(metrics: &str) -> String {
    let mut train_loss = Vec::new();
    let (mut valid_loss, mut bleu, mut chrf) = (Vec::new(), Vec::new(), Vec::new());
    for line in metrics.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let Some(update) = v["update"].as_f64() else { continue };
        match v["kind"].as_str() {
            Some("train") => train_loss.extend(v["loss"].as_f64().map(|l| (update, l))),
            Some("valid") => {
                valid_loss.extend(v["loss"].as_f64().map(|l| (update, l)));
                bleu.extend(v["bleu"].as_f64().map(|b| (update, b)));
                chrf.extend(v["chrf"].as_f64().map(|c| (update, c)));
            }
            _ => {}
        }
    }
    let mut svg =
        String::from(r#"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="560" font-family="sans-serif">"#);
    svg.push('\n');
    panel(
        &mut svg,
        40.0,
        "Loss per target token (x: updates)",
        &[
            Series { name: "training (smoothed)", color: "#1f77b4", points: train_loss },
            Series { name: "validation (nll)", color: "#d62728", points: valid_loss },
        ],
    );
    panel(
        &mut svg,
        320.0,
        "Validation BLEU and chrF (x: updates)",
        &[
            Series { name: "BLEU", color: "#2ca02c", points: bleu },
            Series { name: "chrF", color: "#9467bd", points: chrf },
        ],
    );
    svg.push_str("</svg>\n");
    svg
}

/// Writes `curves.svg` beside `metrics.jsonl` in a model directory (empty panels while there
/// is no metrics file yet).
pub fn write_curves(dir: &ModelDir) -> Result<()> {
    let metrics_path = dir.file(model_dir::METRICS);
    let metrics = match std::fs::read_to_string(&metrics_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(&metrics_path, e)),
    };
    model_dir::write_atomic(&dir.file(model_dir::CURVES), curves_svg(&metrics).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_series_from_the_metrics() {
        let metrics = r#"{"kind":"train","update":1,"loss":9.0}
{"kind":"train","update":2,"loss":7.5}
{"kind":"valid","update":2,"loss":7.0,"bleu":1.5,"chrf":10.0}
{"kind":"train","update":3,"loss":6.0}
{"kind":"valid","update":3,"loss":6.5,"bleu":4.0,"chrf":20.0}
not json
"#;
        let svg = curves_svg(metrics);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        for label in ["training (smoothed)", "validation (nll)", "BLEU", "chrF"] {
            assert!(svg.contains(label), "{label}");
        }
        assert!(curves_svg("").contains("no data yet"));
    }
}
