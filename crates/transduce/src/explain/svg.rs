//! SVG drawings: attention heatmaps with token labels, and a labelled scatter plot.

use std::fmt::Write;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// How the cells above the diagonal are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    None,
    /// Decoder self-attention: cells above the diagonal are masked (drawn hatched).
    Causal,
}

/// Which cells get a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    None,
    /// Each row's largest cell (the most-attended key).
    RowMax,
}

const CELL: usize = 22;

/// A heatmap of `weights[row][col]` in [0, 1], rows labelled down the left, columns along the
/// top; `class` and `data` attributes let the page pick which maps to show.
pub fn heatmap(
    weights: &[Vec<f32>],
    rows: &[String],
    cols: &[String],
    masking: Masking,
    marks: Marks,
    attributes: &str,
) -> String {
    let label_w = 8 + 7 * rows.iter().map(|r| r.chars().count()).max().unwrap_or(1).min(14);
    let label_h = 8 + 7 * cols.iter().map(|c| c.chars().count()).max().unwrap_or(1).min(14);
    let (w, h) = (label_w + CELL * cols.len() + 4, label_h + CELL * rows.len() + 4);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" {attributes} width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    s.push_str(
        r##"<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="4" stroke="#ccc" stroke-width="1.5"/></pattern></defs>"##,
    );
    for (j, c) in cols.iter().enumerate() {
        let x = label_w + j * CELL + CELL / 2;
        let _ = write!(
            s,
            r#"<text class="col-label" x="{x}" y="{}" transform="rotate(-60 {x} {})" >{}</text>"#,
            label_h - 4,
            label_h - 4,
            escape(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = label_h + i * CELL;
        let _ = write!(
            s,
            r#"<text class="row-label" x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 4,
            y + CELL / 2 + 4,
            escape(r)
        );
        let row = weights.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let best = row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b }).0;
        for (j, col) in cols.iter().enumerate() {
            let x = label_w + j * CELL;
            let v = row.get(j).copied().unwrap_or(0.0).clamp(0.0, 1.0);
            if masking == Masking::Causal && j > i {
                let _ = write!(
                    s,
                    r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="url(#hatch)" stroke="#eee"/>"##
                );
                continue;
            }
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="rgb(31,119,180)" fill-opacity="{v:.3}" stroke="#eee"><title>{} → {}: {v:.3}</title></rect>"##,
                escape(r),
                escape(col)
            );
            if marks == Marks::RowMax && j == best {
                let _ = write!(
                    s,
                    r##"<circle class="mark" cx="{}" cy="{}" r="4" fill="none" stroke="#d62728" stroke-width="2"/>"##,
                    x + CELL / 2,
                    y + CELL / 2
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// A scatter plot of labelled 2-D points, scaled to fit.
pub fn scatter(points: &[[f32; 2]], labels: &[String], caption: &str) -> String {
    let (w, h, pad) = (420.0f32, 320.0f32, 40.0f32);
    let range = |k: usize| {
        let lo = points.iter().map(|p| p[k]).fold(f32::INFINITY, f32::min);
        let hi = points.iter().map(|p| p[k]).fold(f32::NEG_INFINITY, f32::max);
        (lo, (hi - lo).max(1e-6))
    };
    let ((x0, xr), (y0, yr)) = (range(0), range(1));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="context-map" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#fafafa" stroke="#ddd"/>"##);
    for (p, label) in points.iter().zip(labels) {
        let x = pad + (p[0] - x0) / xr * (w - 2.0 * pad);
        let y = h - pad - (p[1] - y0) / yr * (h - 2.0 * pad);
        let _ = write!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#ff7f0e"/><text class="point-label" x="{:.1}" y="{:.1}">{}</text>"##,
            x + 6.0,
            y - 6.0,
            escape(label)
        );
    }
    let _ = write!(s, r##"<text x="8" y="{}" fill="#666">{}</text>"##, h - 8.0, escape(caption));
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmaps_label_cells_mask_and_mark() {
        let w = vec![vec![1.0, 0.0], vec![0.3, 0.7]];
        let labels = vec!["<s>".to_string(), "aime".to_string()];
        let svg = heatmap(&w, &labels, &labels, Masking::Causal, Marks::RowMax, r#"data-layer="0""#);
        assert!(svg.contains("&lt;s&gt;") && svg.contains(">aime<"));
        assert_eq!(svg.matches("url(#hatch)").count(), 1, "one cell above the diagonal");
        assert_eq!(svg.matches(r#"class="mark""#).count(), 2, "one mark per row");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
