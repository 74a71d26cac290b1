//! The encoder-decoder model: `encode` once, then `decode` (teacher-forced) or `decode_step`
//! (cached, one token per call).

use std::collections::HashMap;

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::attention::{padding_bias, Record};
use super::config::{ModelConfig, OutputBias, OutputScale, Tying};
use super::context::Ctx;
use super::decoder::{CrossInputs, Decoder, DecoderOutput};
use super::embedding::{embedding_table, Start};
use super::encoder::{Encoder, Memory};
use super::layers::{Linear, Packing, TableRows};
use super::source_memory::CrossMemory;
use super::state::{DecoderState, SelfCache};
use crate::kernels::largest::Largest;
use crate::kernels::step_attention::StepCache;

#[derive(Debug, Clone)]
pub struct Seq2Seq {
    pub config: ModelConfig,
    pub encoder: Encoder,
    pub decoder: Decoder,
    /// Output projection: weight [tgt_vocab, d] (possibly the decoder's embedding table), bias
    /// \[tgt_vocab\].
    pub lm_head: Linear,
}

impl Seq2Seq {
    /// Builds the model from a `VarBuilder` whose names mirror the module tree:
    /// `encoder.layers.0.self_attn.q_proj.weight`, `decoder.layers.1.cross_attn_norm.bias`, ...
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle_core::Error::wrap)?;
        let (sv, tv, d) = (config.vocab.source(), config.vocab.target(), config.d_model);
        let (enc_tokens, dec_tokens, lm_head) = match config.tying {
            Tying::All => {
                let t = embedding_table(vb.pp("shared"), sv, d)?;
                (t.clone(), t.clone(), t)
            }
            Tying::Inputs => {
                let t = embedding_table(vb.pp("shared"), sv, d)?;
                (t.clone(), t, embedding_table(vb.pp("lm_head"), tv, d)?)
            }
            Tying::DecoderInputOutput => {
                let dec = embedding_table(vb.pp("decoder.embed_tokens"), tv, d)?;
                (embedding_table(vb.pp("encoder.embed_tokens"), sv, d)?, dec.clone(), dec)
            }
            Tying::None => (
                embedding_table(vb.pp("encoder.embed_tokens"), sv, d)?,
                embedding_table(vb.pp("decoder.embed_tokens"), tv, d)?,
                embedding_table(vb.pp("lm_head"), tv, d)?,
            ),
        };
        let lm_bias = match config.output_bias {
            OutputBias::Learned => vb.pp("lm_head").get_with_hints(tv, "bias", Init::Const(0.0))?,
            // a constant, not a parameter: never stored, never trained
            OutputBias::None => Tensor::zeros(tv, vb.dtype(), vb.device())?,
        };
        Ok(Seq2Seq {
            config: config.clone(),
            encoder: Encoder::new(vb.pp("encoder"), enc_tokens, config)?,
            decoder: Decoder::new(vb.pp("decoder"), dec_tokens, config)?,
            lm_head: Linear::from_parts(lm_head, lm_bias, table_name(config).unwrap_or("lm_head.weight").into())?,
        })
    }

    /// `f` on every linear layer: the encoder's, the decoder's and the output projection.
    fn for_each_linear(&mut self, mut f: impl FnMut(&mut Linear) -> Result<()>) -> Result<()> {
        for layer in &mut self.encoder.layers {
            layer.for_each_linear(&mut f)?;
        }
        for layer in &mut self.decoder.layers {
            layer.for_each_linear(&mut f)?;
        }
        f(&mut self.lm_head)
    }

    /// Lays out weights for fast decoding (each f32 CPU weight packed once in the column panels
    /// the inference products read). A snapshot: use it on a model that is done training, or on
    /// a clone.
    pub fn prepare_inference(&mut self) -> Result<()> {
        self.for_each_linear(|l| l.prepare_inference())
    }

    /// Drops each linear layer's weight tensor where an inference copy holds it (after
    /// [`Seq2Seq::prepare_inference`] or [`Seq2Seq::quantize_int8`]): for a model that only
    /// translates, one copy of every matrix less in memory. Training it afterwards is an error.
    pub fn release_weights(&mut self) -> Result<()> {
        self.for_each_linear(|l| {
            l.release_weight();
            Ok(())
        })
    }

    /// Runs every linear layer, the output projection included, in int8 (per-row scales):
    /// see [`crate::kernels::int8`]. Token embeddings take the values an int8 table stores
    /// (so a model quantized at load and one stored in int8 compute the same); lookups, layer
    /// norms and attention stay f32.
    pub fn quantize_int8(&mut self) -> Result<()> {
        for embeddings in [&mut self.encoder.embeddings, &mut self.decoder.embeddings] {
            embeddings.tokens = crate::kernels::int8::round_trip(&embeddings.tokens)?;
        }
        self.for_each_linear(|l| l.quantize_int8())
    }

    /// Makes a model that only translates, one layer at a time so that memory never holds two
    /// copies of the weights: each linear layer packed (or quantized, with `int8`) and its
    /// weight dropped at once; a tied embedding table then reads its rows from the output
    /// projection's copy and is dropped too. Training it afterwards is an error.
    pub fn prepare_for_translation(&mut self, int8: bool) -> Result<()> {
        let prepare_as = |l: &mut Linear, packing: Packing| -> Result<()> {
            match int8 {
                true => l.quantize_int8()?,
                false => l.prepare_inference_as(packing)?,
            }
            l.release_weight();
            Ok(())
        };
        // the output projection in halves: greedy search reads its high halves alone
        prepare_as(&mut self.lm_head, Packing::Halves)?;
        let prepare = |l: &mut Linear| prepare_as(l, Packing::Panels);
        self.share_tied_rows(int8)?;
        for layer in &mut self.encoder.layers {
            layer.for_each_linear(prepare)?;
        }
        for layer in &mut self.decoder.layers {
            layer.for_each_linear(prepare)?;
        }
        Ok(())
    }

    /// Installs the inference copies a loader packed or quantized tensor by tensor
    /// (`packed`: parameter name -> rows) and drops the weights they replace; a tied table reads
    /// its rows from the output projection's copy, other tables take int8's values with `int8`.
    pub fn install_inference(&mut self, mut packed: HashMap<String, TableRows>, int8: bool) -> Result<()> {
        let mut install = |l: &mut Linear| -> Result<()> {
            match packed.remove(&l.name) {
                Some(rows) => l.set_inference(rows),
                None => candle_core::bail!("no inference copy of {}", l.name),
            }
        };
        install(&mut self.lm_head)?;
        for layer in &mut self.encoder.layers {
            layer.for_each_linear(&mut install)?;
        }
        for layer in &mut self.decoder.layers {
            layer.for_each_linear(&mut install)?;
        }
        self.share_tied_rows(int8)
    }

    /// Tied embedding tables read their rows from the output projection's inference copy (and
    /// are dropped); the others take int8's values with `int8`.
    fn share_tied_rows(&mut self, int8: bool) -> Result<()> {
        let rows = self.lm_head.inference_rows();
        let (encoder_tied, decoder_tied) = match self.config.tying {
            Tying::All => (true, true),
            Tying::DecoderInputOutput => (false, true),
            Tying::Inputs | Tying::None => (false, false),
        };
        for (embeddings, tied) in
            [(&mut self.encoder.embeddings, encoder_tied), (&mut self.decoder.embeddings, decoder_tied)]
        {
            match (&rows, tied) {
                (Some(rows), true) => embeddings.read_rows_from(rows.clone())?,
                // int8 models look up the values an int8 table stores
                _ if int8 => embeddings.tokens = crate::kernels::int8::round_trip(&embeddings.tokens)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// src: [b, s] u32; src_mask: [b, s] (1 = token, 0 = padding) -> memory [b, s, d]
    pub fn encode(&self, src: &Tensor, src_mask: &Tensor) -> Result<Memory> {
        self.encoder.forward(src, src_mask, Record::Nothing, &Ctx::eval())
    }

    /// `encode` with an explicit context and, optionally, self-attention recording.
    pub fn encode_with(&self, src: &Tensor, src_mask: &Tensor, record: Record, ctx: &Ctx) -> Result<Memory> {
        self.encoder.forward(src, src_mask, record, ctx)
    }

    /// Teacher-forced decoding. tgt_in: [b, t] u32 -> logits [b, t, tgt_vocab]
    pub fn decode(&self, tgt_in: &Tensor, memory: &Memory) -> Result<Tensor> {
        let out = self.decode_with(tgt_in, None, memory, Record::Nothing, &Ctx::eval())?;
        self.logits(&out.hidden, &Ctx::eval())
    }

    /// Teacher-forced decoder hidden states with an explicit context.
    ///
    /// tgt_mask: optional [b, t] (1 = token) masking padded target keys; right-padded targets
    /// need none (the causal mask already hides later positions).
    pub fn decode_with(
        &self,
        tgt_in: &Tensor,
        tgt_mask: Option<&Tensor>,
        memory: &Memory,
        record: Record,
        ctx: &Ctx,
    ) -> Result<DecoderOutput> {
        let cross_memory =
            CrossMemory::Batched { kv: self.decoder.cross_kv(&memory.states, ctx)?, bias: memory.bias.clone() };
        let self_bias = tgt_mask.map(|m| padding_bias(m, memory.states.dtype())).transpose()?;
        let rows_of = vec![1; memory.bias.dim(0)?];
        let cross = CrossInputs { memory: &cross_memory, rows_of: &rows_of, self_bias: self_bias.as_ref() };
        let mut caches = vec![SelfCache::Empty; self.decoder.layers.len()];
        self.decoder.forward(tgt_in, 0, &mut caches, &cross, record, ctx)
    }

    /// hidden: [.., d] -> logits [.., tgt_vocab]
    pub fn logits(&self, hidden: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        self.lm_head.forward(&self.output_input(hidden)?, ctx)
    }

    /// hidden: [rows, d] -> logits [rows, tgt_vocab] as a row-major f32 vector (what a
    /// decoding step reads), without a copy out of a tensor where the inference kernels run.
    pub fn logits_rows(&self, hidden: &Tensor, ctx: &Ctx) -> Result<Vec<f32>> {
        self.logits_rows_into(hidden, ctx, Vec::new())
    }

    /// [`Seq2Seq::logits_rows`] into `out`'s memory (an earlier step's logits, handed back).
    pub fn logits_rows_into(&self, hidden: &Tensor, ctx: &Ctx, out: Vec<f32>) -> Result<Vec<f32>> {
        self.lm_head.forward_rows_into(&self.output_input(hidden)?, ctx, out)
    }

    /// [`Seq2Seq::logits_rows`] through `head`, an output projection onto some target ids
    /// ([`Seq2Seq::output_rows`]): [rows, ids] row-major.
    pub fn logits_rows_with(&self, hidden: &Tensor, head: &Linear, ctx: &Ctx) -> Result<Vec<f32>> {
        head.forward_rows(&self.output_input(hidden)?, ctx)
    }

    /// hidden: [rows, d] -> per row, the largest logit's id among those not in `banned[row]`,
    /// from the output projection's high halves ([`crate::kernels::largest`]), or `None` where
    /// the projection is not packed so (int8, training, the reference kernels).
    pub fn largest_logits(&self, hidden: &Tensor, banned: &[&[u32]], ctx: &Ctx) -> Result<Option<Vec<Largest>>> {
        self.lm_head.largest_outputs(&self.output_input(hidden)?, banned, ctx)
    }

    /// The output projection onto target ids `ids` alone (a vocabulary shortlist's).
    pub fn output_rows(&self, ids: &[u32]) -> Result<Linear> {
        self.lm_head.select_rows(ids)
    }

    /// What the output projection reads: `hidden`, rescaled by `output_scale`.
    fn output_input(&self, hidden: &Tensor) -> Result<Tensor> {
        match self.config.output_scale {
            OutputScale::None => Ok(hidden.clone()),
            OutputScale::InverseSqrtDModel => hidden * (self.config.d_model as f64).powf(-0.5),
        }
    }

    /// Training forward: logits [b, t, tgt_vocab] for a batch.
    pub fn forward(&self, src: &Tensor, src_mask: &Tensor, tgt_in: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let memory = self.encode_with(src, src_mask, Record::Nothing, ctx)?;
        let out = self.decode_with(tgt_in, None, &memory, Record::Nothing, ctx)?;
        self.logits(&out.hidden, ctx)
    }

    /// The training forward on the positions a loss reads: of `tgt_out` [b, t] u32, the `n`
    /// that are not `pad`, in row-major order -> (logits [n, tgt_vocab], their targets \[n\]).
    ///
    /// The same logits as [`Seq2Seq::forward`]'s rows at those positions: the decoder runs on
    /// the whole padded batch, but the output projection and softmax, the costliest layer
    /// (`tgt_vocab` outputs a position), skip the padding rows, whose loss is zero anyway.
    pub fn forward_targets(
        &self,
        src: &Tensor,
        src_mask: &Tensor,
        tgt_in: &Tensor,
        tgt_out: &Tensor,
        pad: u32,
        ctx: &Ctx,
    ) -> Result<(Tensor, Tensor)> {
        let memory = self.encode_with(src, src_mask, Record::Nothing, ctx)?;
        let hidden = self.decode_with(tgt_in, None, &memory, Record::Nothing, ctx)?.hidden;
        let (b, t, d) = hidden.dims3()?;
        let (hidden, targets) = (hidden.reshape((b * t, d))?, tgt_out.flatten_all()?);
        let ids = targets.to_vec1::<u32>()?;
        let kept: Vec<u32> = (0..ids.len()).filter(|&i| ids[i] != pad).map(|i| i as u32).collect();
        if kept.len() == ids.len() || kept.is_empty() {
            // nothing to skip, or nothing to read (every row stays: a loss of no tokens is 0)
            return Ok((self.logits(&hidden, ctx)?, targets));
        }
        let n = kept.len();
        let kept = Tensor::from_vec(kept, n, tgt_out.device())?;
        Ok((self.logits(&hidden.index_select(&kept, 0)?, ctx)?, targets.index_select(&kept, 0)?))
    }

    /// A fresh decoder state for `memory`, with `group` decoder rows per source sentence
    /// (the beam size). Cross-attention keys/values are projected here, once.
    pub fn start(&self, memory: &Memory, group: usize) -> Result<DecoderState> {
        self.start_with(memory, group, &Ctx::eval())
    }

    /// [`Seq2Seq::start`] for the kernels of `ctx`: the fused CPU step kernels keep keys and
    /// values per step ([`StepCache`]); the reference compositions a growing tensor cache. Steps
    /// taken on the state must use the same kernels.
    pub fn start_with(&self, memory: &Memory, group: usize, ctx: &Ctx) -> Result<DecoderState> {
        if group == 0 {
            candle_core::bail!("start: a group of 0 rows per sentence");
        }
        // the step kernels read each source's own memory in place; the reference, batch tensors
        let (cache, cross) = match ctx.kernels.fused_for(&memory.states) {
            true => {
                let positions = self.decoder.position_bias.as_ref().map(|p| p.steps()).transpose()?;
                let cache =
                    StepCache::new(self.config.attention_dim(), self.config.head_dim()).with_position_bias(positions);
                let layers: Vec<_> = self.decoder.layers.iter().map(|l| &l.cross_attn).collect();
                (SelfCache::Steps(cache), CrossMemory::project_per_source(&memory.states, &memory.bias, &layers, ctx)?)
            }
            false => {
                let kv = self.decoder.cross_kv(&memory.states, ctx)?;
                (SelfCache::Empty, CrossMemory::Batched { kv, bias: memory.bias.clone() })
            }
        };
        Ok(DecoderState {
            self_kv: vec![cache; self.decoder.layers.len()],
            cross,
            group,
            rows_of: vec![group; memory.bias.dim(0)?],
            device: memory.states.device().clone(),
            written: vec![0; memory.bias.dim(0)?],
            candidates: None,
            spare_logits: Vec::new(),
        })
    }

    /// One decoding step. last: \[rows\] u32 (the previous output token, or the start token)
    /// -> logits [rows, tgt_vocab]; extends `state` by one position.
    pub fn decode_step(&self, last: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let ctx = Ctx::eval();
        let out = self.decode_step_with(last, state, Record::Nothing, &ctx)?;
        self.logits(&out.hidden.squeeze(1)?, &ctx)
    }

    /// `decode_step` returning hidden states [rows, 1, d] and, optionally, attention.
    pub fn decode_step_with(
        &self,
        last: &Tensor,
        state: &mut DecoderState,
        record: Record,
        ctx: &Ctx,
    ) -> Result<DecoderOutput> {
        let rows = last.dim(0)?;
        if rows != state.rows()? {
            candle_core::bail!("decode_step: {rows} tokens for a state of {} rows", state.rows()?);
        }
        let cross = CrossInputs { memory: &state.cross, rows_of: &state.rows_of, self_bias: None };
        let ids = last.reshape((rows, 1))?;
        let start = match state.row_positions() {
            Some(rows) => Start::PerRow(Tensor::new(rows, last.device())?),
            None => Start::Shared(state.step()),
        };
        let out = self.decoder.forward_from(&ids, &start, &mut state.self_kv, &cross, record, ctx)?;
        state.advance();
        Ok(out)
    }
}

/// The parameter name of the embedding table the output projection is tied to, if any.
pub fn table_name(config: &ModelConfig) -> Option<&'static str> {
    match config.tying {
        Tying::All => Some("shared.weight"),
        Tying::DecoderInputOutput => Some("decoder.embed_tokens.weight"),
        Tying::Inputs | Tying::None => None,
    }
}
