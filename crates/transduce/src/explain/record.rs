//! What the explainer shows for one sentence, recorded from the model: tokens, attention of
//! every layer and head, the encoder's context map, and the decoder's candidates at each step.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::pca::project_2d;
use crate::data::Batch;
use crate::error::Result;
use crate::model::{Ctx, Record};
use crate::search::DecodeOptions;
use crate::translate::align::{average_heads, hard_links, word_of_pieces};
use crate::translate::{Input, Translator};

/// One decoder step: the most probable next tokens and the one taken.
#[derive(Debug, Clone, Serialize)]
pub struct StepChoice {
    /// (token, probability), most probable first.
    pub candidates: Vec<(String, f32)>,
    pub chosen: String,
    pub chosen_probability: f32,
}

/// Attention maps: `[layer][head][query][key]`.
pub type Maps = Vec<Vec<Vec<Vec<f32>>>>;

/// Everything about one sentence's translation that the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub source: String,
    pub translation: String,
    /// Source subword pieces, `</s>` last.
    pub source_tokens: Vec<String>,
    /// Output pieces, `</s>` last: what each decoder step wrote.
    pub target_tokens: Vec<String>,
    /// What each decoder step read: `<s>` then the output pieces.
    pub decoder_inputs: Vec<String>,
    /// Encoder self-attention `[layer][head][source][source]`.
    pub encoder_attention: Maps,
    /// Masked decoder self-attention `[layer][head][step][step]`.
    pub decoder_self_attention: Maps,
    /// Cross-attention `[layer][head][step][source]`.
    pub cross_attention: Maps,
    /// The encoder's output vectors projected to 2-D (PCA), one point per source token.
    pub context_map: Vec<[f32; 2]>,
    /// Share of variance of the two components.
    pub context_variance: [f32; 2],
    /// Cross-attention of the last layer averaged over heads, `[step][source]`.
    pub alignment: Vec<Vec<f32>>,
    pub steps: Vec<StepChoice>,
}

/// `[1, heads, q, k]` per layer -> nested vectors.
fn maps(layers: &[Tensor]) -> Result<Maps> {
    layers
        .iter()
        .map(|t| t.squeeze(0)?.to_dtype(DType::F32)?.to_vec3::<f32>())
        .collect::<candle_core::Result<Maps>>()
        .map_err(Into::into)
}

/// Translates `sentence` with `opts` and records how the model did it (the chosen output is
/// re-read teacher-forced, which equals the step-by-step computation).
pub fn explain(translator: &Translator, sentence: &str, opts: &DecodeOptions, top_k: usize) -> Result<Explanation> {
    explain_input(translator, &Input::new(sentence, 0), opts, top_k)
}

/// [`explain`] of one input (a multilingual model's languages in `input.direction`): the
/// language tokens appear as what they are, the source's first token and the decoder's first
/// (forced) step.
pub fn explain_input(
    translator: &Translator,
    input: &Input,
    opts: &DecodeOptions,
    top_k: usize,
) -> Result<Explanation> {
    let model = &translator.model;
    let tok = &translator.tokenizers;
    let special = model.config.special;
    let sentence = input.text;
    let translation = translator.translate_inputs(std::slice::from_ref(input), opts)?.remove(0);
    let output = translation.best();
    let prepared = translator.prepare(input)?;
    let ids = &prepared.ids[..];
    let device = translator.device().clone();
    let (src, mask) = Batch::sources(&[ids], special, &device)?;
    let ctx = Ctx::eval();
    let memory = model.encode_with(&src, &mask, Record::Probabilities, &ctx)?;
    // the target-language token, the translation, EOS
    let written: Vec<u32> = prepared.prefix[..prepared.target_tags]
        .iter()
        .chain(&output.tokens)
        .copied()
        .chain(std::iter::once(special.eos))
        .collect();
    let inputs: Vec<u32> =
        std::iter::once(special.decoder_start).chain(written[..written.len() - 1].iter().copied()).collect();
    let tgt = Tensor::new(inputs.as_slice(), &device)?.unsqueeze(0)?;
    let out = model.decode_with(&tgt, None, &memory, Record::Probabilities, &ctx)?;
    let probs = crate::kernels::softmax_last_dim(&model.logits(&out.hidden, &ctx)?)?.squeeze(0)?;
    let probs: Vec<Vec<f32>> = probs.to_dtype(DType::F32)?.to_vec2()?;
    let piece = |id: u32| tok.target.id_pieces(&[id]).remove(0);
    let steps = probs
        .iter()
        .zip(&written)
        .map(|(row, &chosen)| {
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            StepChoice {
                candidates: order.iter().take(top_k).map(|&i| (piece(i as u32), row[i])).collect(),
                chosen: piece(chosen),
                chosen_probability: row[chosen as usize],
            }
        })
        .collect();
    let states: Vec<Vec<f32>> = memory.states.squeeze(0)?.to_dtype(DType::F32)?.to_vec2()?;
    let (context_map, context_variance) = project_2d(&states);
    let self_maps: Vec<Tensor> = out.attention.iter().map(|a| a.self_attn.clone()).collect();
    let cross_maps: Vec<Tensor> = out.attention.iter().map(|a| a.cross_attn.clone()).collect();
    let last = cross_maps.last().expect("a decoder has layers").squeeze(0)?.mean(0)?;
    let mut source_tokens = tok.source.id_pieces(ids);
    source_tokens.push("</s>".into());
    let mut decoder_inputs = vec!["<s>".to_string()];
    decoder_inputs.extend(tok.target.id_pieces(&inputs[1..]));
    let mut target_tokens = tok.target.id_pieces(&written[..written.len() - 1]);
    target_tokens.push("</s>".into());
    Ok(Explanation {
        source: sentence.to_string(),
        translation: output.text.clone(),
        source_tokens,
        target_tokens,
        decoder_inputs,
        encoder_attention: maps(&memory.attention)?,
        decoder_self_attention: maps(&self_maps)?,
        cross_attention: maps(&cross_maps)?,
        context_map,
        context_variance,
        alignment: last.to_dtype(DType::F32)?.to_vec2()?,
        steps,
    })
}

/// Cross-attention of a given translation, read teacher-forced, with the word of each piece.
#[derive(Debug, Clone)]
pub struct ForcedAttention {
    /// `[layer][head][target token (EOS last)][source token (EOS last)]`.
    pub cross_attention: Maps,
    pub source_words: Vec<usize>,
    pub target_words: Vec<usize>,
}

impl ForcedAttention {
    /// Hard word links from `layer` (heads averaged; all when `heads` is empty).
    pub fn links(&self, layer: usize, heads: &[usize]) -> Vec<(usize, usize)> {
        match self.cross_attention.get(layer) {
            Some(maps) => hard_links(&average_heads(maps, heads), &self.source_words, &self.target_words),
            None => Vec::new(),
        }
    }
}

/// Reads `target` as the translation of `source` and records the cross-attention.
pub fn forced_attention(translator: &Translator, source: &str, target: &str) -> Result<ForcedAttention> {
    forced_attention_input(translator, &Input::new(source, 0), target)
}

/// [`forced_attention`] of one input (a multilingual model's languages in `input.direction`):
/// the language tokens are read but left out of the maps, so word indices count the text's.
pub fn forced_attention_input(translator: &Translator, input: &Input, target: &str) -> Result<ForcedAttention> {
    let model = &translator.model;
    let tok = &translator.tokenizers;
    let special = model.config.special;
    let max = model.config.max_positions - 1;
    let prepared = translator.prepare(input)?;
    let (source_tags, tags) = (prepared.source_tags, prepared.target_tags);
    let src_ids = &prepared.ids[..];
    let mut tgt_ids: Vec<u32> = prepared.prefix[..tags].to_vec();
    tgt_ids.extend(tok.target.encode(target)?);
    tgt_ids.truncate(max - 1);
    let device = Device::Cpu;
    let (src, mask) = Batch::sources(&[src_ids], special, &device)?;
    let ctx = Ctx::eval();
    let memory = model.encode_with(&src, &mask, Record::Nothing, &ctx)?;
    let inputs: Vec<u32> = std::iter::once(special.decoder_start).chain(tgt_ids.iter().copied()).collect();
    let tgt = Tensor::new(inputs.as_slice(), &device)?.unsqueeze(0)?;
    let out = model.decode_with(&tgt, None, &memory, Record::Probabilities, &ctx)?;
    let cross: Vec<Tensor> = out.attention.iter().map(|a| a.cross_attn.clone()).collect();
    // [layer][head][target][source] without the language tokens' rows and columns
    let mut maps = maps(&cross)?;
    for row in maps.iter_mut().flatten() {
        row.drain(..tags.min(row.len()));
        row.iter_mut().for_each(|r| drop(r.drain(..source_tags.min(r.len()))));
    }
    Ok(ForcedAttention {
        cross_attention: maps,
        source_words: word_of_pieces(&tok.source.id_pieces(&src_ids[source_tags..])),
        target_words: word_of_pieces(&tok.target.id_pieces(&tgt_ids[tags..])),
    })
}
