//! The explainer page: one self-contained HTML file (inline CSS, SVG and script; no network)
//! showing, per sentence, the encoder's attention and context map, and the decoder step by step
//! with its masked self-attention, cross-attention and the resulting alignment.

use std::fmt::Write;

use super::record::{Explanation, Maps};
use super::svg::{escape, heatmap, scatter, Marks, Masking};

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-bottom: .3em; }
.legend { background: #f6f8fa; border-left: 4px solid #1f77b4; padding: .5em 1em; font-size: .92em; }
.tokens span { display: inline-block; background: #eef; border-radius: 3px; padding: 0 .35em; margin: 0 .15em; font-family: monospace; }
.controls { margin: .4em 0; font-size: .9em; } .controls select { margin-right: 1em; }
.maps svg.heatmap { display: none; } .maps svg.heatmap.shown { display: inline-block; }
table.steps { border-collapse: collapse; font-size: .9em; } table.steps td, table.steps th { border-bottom: 1px solid #eee; padding: .15em .5em; text-align: left; vertical-align: top; }
.cand { display: inline-block; margin-right: .6em; font-family: monospace; } .cand.chosen { font-weight: bold; color: #d62728; }
.bar { display: inline-block; height: .6em; background: #1f77b4; margin-left: .2em; vertical-align: middle; }
.row { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
"#;

/// Shows the heatmaps whose data-layer and data-head match each view's selects.
const SCRIPT: &str = r#"
function refresh(view) {
  var layer = view.querySelector('select.layer').value;
  var head = view.querySelector('select.head').value;
  view.querySelectorAll('svg.heatmap').forEach(function (svg) {
    var on = svg.getAttribute('data-layer') === layer && svg.getAttribute('data-head') === head;
    svg.classList.toggle('shown', on);
  });
}
document.querySelectorAll('.maps').forEach(function (view) {
  view.querySelectorAll('select').forEach(function (s) { s.addEventListener('change', function () { refresh(view); }); });
  refresh(view);
});
document.body.setAttribute('data-ready', 'yes');
"#;

/// Per layer, the head maps followed by their mean ("avg").
fn with_average(maps: &Maps) -> Vec<Vec<(String, Vec<Vec<f32>>)>> {
    maps.iter()
        .map(|heads| {
            let mut out: Vec<(String, Vec<Vec<f32>>)> =
                heads.iter().enumerate().map(|(h, m)| (h.to_string(), m.clone())).collect();
            if let Some(first) = heads.first() {
                let n = heads.len() as f32;
                let mean = first
                    .iter()
                    .enumerate()
                    .map(|(i, row)| (0..row.len()).map(|j| heads.iter().map(|m| m[i][j]).sum::<f32>() / n).collect())
                    .collect();
                out.push(("avg".into(), mean));
            }
            out
        })
        .collect()
}

/// A view with layer/head pickers over one heatmap per (layer, head).
fn maps_view(out: &mut String, maps: &Maps, rows: &[String], cols: &[String], masking: Masking) {
    let layers = with_average(maps);
    let heads = maps.first().map_or(0, Vec::len);
    out.push_str(r#"<div class="maps"><div class="controls">layer <select class="layer">"#);
    for l in 0..layers.len() {
        let selected = if l + 1 == layers.len() { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{l}"{selected}>{}</option>"#, l + 1);
    }
    out.push_str(r#"</select>head <select class="head"><option value="avg" selected>average</option>"#);
    for h in 0..heads {
        let _ = write!(out, r#"<option value="{h}">{}</option>"#, h + 1);
    }
    out.push_str("</select></div>");
    for (l, heads) in layers.iter().enumerate() {
        for (h, m) in heads {
            out.push_str(&heatmap(
                m,
                rows,
                cols,
                masking,
                Marks::None,
                &format!(r#"data-layer="{l}" data-head="{h}""#),
            ));
        }
    }
    out.push_str("</div>");
}

fn tokens(out: &mut String, tokens: &[String]) {
    out.push_str(r#"<div class="tokens">"#);
    for t in tokens {
        let _ = write!(out, "<span>{}</span>", escape(t));
    }
    out.push_str("</div>");
}

/// The page for `explanations`.
pub fn page(explanations: &[Explanation], model_name: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>transduce explain: {}</title><style>{STYLE}</style></head><body>",
        escape(model_name)
    );
    let _ = write!(s, "<h1>Inside the translation model <code>{}</code></h1>", escape(model_name));
    s.push_str(
        r#"<p class="legend">The <b>encoder</b> reads the whole source sentence at once: every source token attends to every other (full squares), and its outputs form the <b>context map</b>, one vector per source token. The <b>decoder</b> then writes one token at a time: its <b>masked self-attention</b> sees only the tokens already written (the hatched upper triangle is masked, never looked at), and its <b>cross-attention</b> queries the context map to find the source words that matter for the next token. Darker cells mean more attention; each row sums to 1. Pick a layer and a head (or their average) above each map.</p>"#,
    );
    for (n, e) in explanations.iter().enumerate() {
        let _ = write!(s, "<h2>{}. {} → {}</h2>", n + 1, escape(&e.source), escape(&e.translation));
        s.push_str("<h3>Encoder: source tokens</h3>");
        tokens(&mut s, &e.source_tokens);
        s.push_str(r#"<div class="row"><div><h3>Encoder self-attention</h3><p class="legend">Row: a source token; column: the token it reads. Bidirectional: nothing is masked.</p>"#);
        maps_view(&mut s, &e.encoder_attention, &e.source_tokens, &e.source_tokens, Masking::None);
        s.push_str(r#"</div><div><h3>Context map</h3><p class="legend">The encoder's output vectors projected to two dimensions (principal components): tokens used alike lie close together.</p>"#);
        let caption = format!(
            "PCA: {:.0}% + {:.0}% of the variance",
            e.context_variance[0] * 100.0,
            e.context_variance[1] * 100.0
        );
        s.push_str(&scatter(&e.context_map, &e.source_tokens, &caption));
        s.push_str("</div></div>");
        s.push_str(r#"<h3>Decoder, step by step</h3><p class="legend">At each step the decoder reads the token it wrote last and proposes the next one; the most probable candidates are listed with their probabilities, the chosen one in red.</p><table class="steps"><tr><th>step</th><th>reads</th><th>candidates</th></tr>"#);
        for (i, step) in e.steps.iter().enumerate() {
            let _ = write!(s, "<tr><td>{}</td><td><code>{}</code></td><td>", i + 1, escape(&e.decoder_inputs[i]));
            for (tok, p) in &step.candidates {
                let class = if *tok == step.chosen { "cand chosen" } else { "cand" };
                let _ = write!(
                    s,
                    r#"<span class="{class}">{} {:.2}<span class="bar" style="width:{:.0}px"></span></span>"#,
                    escape(tok),
                    p,
                    p * 40.0
                );
            }
            if !step.candidates.iter().any(|(t, _)| *t == step.chosen) {
                let _ = write!(
                    s,
                    r#"<span class="cand chosen">{} {:.2}</span>"#,
                    escape(&step.chosen),
                    step.chosen_probability
                );
            }
            s.push_str("</td></tr>");
        }
        s.push_str("</table>");
        s.push_str(r#"<div class="row"><div><h3>Masked self-attention</h3><p class="legend">Row: the step's input token; column: earlier inputs it reads. The upper triangle is masked: a step never sees the future.</p>"#);
        maps_view(&mut s, &e.decoder_self_attention, &e.decoder_inputs, &e.decoder_inputs, Masking::Causal);
        s.push_str(r#"</div><div><h3>Cross-attention</h3><p class="legend">Row: the token being written; column: the source token it consults.</p>"#);
        maps_view(&mut s, &e.cross_attention, &e.target_tokens, &e.source_tokens, Masking::None);
        s.push_str(r#"</div></div><h3>Alignment</h3><p class="legend">Cross-attention of the last layer averaged over heads; the circle marks each written token's most-attended source token.</p>"#);
        s.push_str(&heatmap(
            &e.alignment,
            &e.target_tokens,
            &e.source_tokens,
            Masking::None,
            Marks::RowMax,
            r#"data-view="alignment""#,
        ));
    }
    let _ = write!(s, "<script>{SCRIPT}</script></body></html>");
    s
}

/// Number of heatmaps [`page`] draws for `e`: per layer, each head and the average, for the
/// three attention kinds, plus the alignment.
pub fn heatmap_count(e: &Explanation) -> usize {
    let count = |m: &Maps| m.iter().map(|heads| heads.len() + 1).sum::<usize>();
    count(&e.encoder_attention) + count(&e.decoder_self_attention) + count(&e.cross_attention) + 1
}

/// Writes the page to `path` and, beside it, each sentence's context map and alignment as SVG
/// files (`<stem>-<n>-context.svg`, `<stem>-<n>-alignment.svg`). Returns the files written.
pub fn write(
    path: &std::path::Path,
    explanations: &[Explanation],
    model_name: &str,
) -> crate::error::Result<Vec<std::path::PathBuf>> {
    use crate::error::Error;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("explain");
    let mut files = vec![path.to_path_buf()];
    std::fs::write(path, page(explanations, model_name)).map_err(|e| Error::io(path, e))?;
    for (n, e) in explanations.iter().enumerate() {
        let context = dir.join(format!("{stem}-{}-context.svg", n + 1));
        let svg = scatter(&e.context_map, &e.source_tokens, &e.source);
        std::fs::write(&context, svg).map_err(|err| Error::io(&context, err))?;
        let alignment = dir.join(format!("{stem}-{}-alignment.svg", n + 1));
        let svg = heatmap(&e.alignment, &e.target_tokens, &e.source_tokens, Masking::None, Marks::RowMax, "");
        std::fs::write(&alignment, svg).map_err(|err| Error::io(&alignment, err))?;
        files.extend([context, alignment]);
    }
    Ok(files)
}
