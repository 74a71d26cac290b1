//! Translating text with a model directory: load, tokenize, batch by token budget over
//! sentences sorted by length, search, detokenize, align, restore input order.

pub mod align;
pub mod length_groups;
pub mod scheduler;
pub mod shortlist;
pub mod stream;

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::data::Batch;
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::model::attention::padding_bias;
use crate::model::{Candidates, Ctx, Memory, Record, Seq2Seq};
use crate::model_dir::ModelDir;
use crate::search::{decode, Alignment, Combination, DecodeOptions, EncodedBatch, Ensemble, Hypothesis, Target};
use crate::text::languages::{Direction, LanguageTokens};
use crate::text::Tokenizers;
use crate::workers::Workers;
use align::{hard_links, word_of_pieces};
use shortlist::{PieceIds, Shortlist};

/// A model directory ready to translate. `Send + Sync`: threads may share one translator and
/// translate at once (each call gets the outputs it would get alone).
pub struct Translator {
    pub model: Seq2Seq,
    pub tokenizers: Tokenizers,
    /// The ensemble's other models ([`Translator::load_ensemble`]), of `model`'s vocabulary;
    /// empty for one model.
    members: Vec<Seq2Seq>,
    /// How an ensemble combines its models' next-token distributions.
    combination: Combination,
    /// Where the model's tensors live.
    device: Device,
    /// Fused CPU kernels or the reference compositions, for every op.
    kernels: Kernels,
    /// The translator's own thread pool (`LoadOptions::threads`), or none: the caller's.
    pool: Option<rayon::ThreadPool>,
    /// Batches translated at once (see [`Translator::set_workers`]).
    workers: Workers,
    /// The target tokens each sentence may produce, from its source (see
    /// [`Translator::set_shortlist`]); `None`: the whole vocabulary.
    shortlist: Option<Arc<Shortlist>>,
}

/// How [`Translator::load_with`] loads a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the model's tensors live (the fused kernels run on the CPU; elsewhere the
    /// reference compositions run).
    pub device: Device,
    /// The floating-point type of the weights and activations (the fused kernels run in f32).
    pub dtype: DType,
    pub quantization: Quantization,
    /// Threads of the translator's own pool; `None` uses the pool of the calling thread
    /// (rayon's global pool unless the caller installed another).
    pub threads: Option<usize>,
    /// The fused CPU kernels (where they apply) or the plain-candle reference for every op.
    pub kernels: Kernels,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            dtype: DType::F32,
            quantization: Quantization::AsStored,
            threads: None,
            kernels: Kernels::Fused,
        }
    }
}

/// Which arithmetic the model's linear layers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantization {
    /// As the weights file stores them (int8 if written by `transduce quantize`, else f32).
    #[default]
    AsStored,
    /// Int8 with per-row scales, quantizing a floating-point model at load.
    Int8,
}

crate::choices!(Quantization, "quantization", { AsStored => "as-stored", Int8 => "int8" });

/// One sentence to translate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input<'a> {
    pub text: &'a str,
    /// Target text the translation must start with.
    pub prefix: Option<&'a str>,
    /// The sentence's random stream for sampling: its position in the whole input, so a
    /// sentence samples the same whatever it is batched with.
    pub stream: u64,
    /// Source and target language, for a multilingual model (M2M-100, NLLB-200), which needs
    /// them; models without language tokens ignore them.
    pub direction: Option<Direction<'a>>,
}

impl<'a> Input<'a> {
    /// `text` on random stream `stream`, without prefix or languages.
    pub fn new(text: &'a str, stream: u64) -> Self {
        Input { text, prefix: None, stream, direction: None }
    }
}

/// One output of a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub text: String,
    pub tokens: Vec<u32>,
    /// The search's score (length-penalised for beam search; 0 for an empty input).
    pub score: f32,
    /// Log-probability of each token, EOS last.
    pub token_scores: Vec<f32>,
    /// `(source word, target word)` links from cross-attention, when asked for.
    pub alignment: Option<Vec<(usize, usize)>>,
}

/// The translation of one input line.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// Best first: one output, or beam search's n-best.
    pub outputs: Vec<Output>,
    /// Whether the input was cut to the model's longest sequence.
    pub truncated: bool,
}

impl Translation {
    /// The translation of a blank input: one empty output.
    fn blank(prepared: &Prepared) -> Self {
        let empty =
            Output { text: String::new(), tokens: Vec::new(), score: 0.0, token_scores: Vec::new(), alignment: None };
        Translation { outputs: vec![empty], truncated: prepared.truncated }
    }

    pub fn best(&self) -> &Output {
        &self.outputs[0]
    }

    pub fn text(&self) -> &str {
        &self.best().text
    }
}

/// A sentence tokenized for the model.
pub(crate) struct Prepared {
    /// Source ids (a multilingual model's source-language token first), cut to the model's
    /// longest sequence.
    pub ids: Vec<u32>,
    /// Target ids the output must start with (a multilingual model's target-language token
    /// first).
    pub prefix: Vec<u32>,
    /// Language tokens leading `ids` (0 or 1).
    pub source_tags: usize,
    /// Language tokens leading `prefix` (0 or 1).
    pub target_tags: usize,
    pub truncated: bool,
}

impl Prepared {
    /// Whether the sentence has nothing to translate (it stays blank).
    pub fn is_blank(&self, input: &Input) -> bool {
        self.ids.len() <= self.source_tags || input.text.trim().is_empty()
    }

    /// The search's view of the sentence: `opts`' length limits (counted without the
    /// language tokens) and its prefix.
    pub fn target(&self, opts: &DecodeOptions) -> Target<'_> {
        Target {
            max_len: opts.max_len_for(self.ids.len() - self.source_tags) + self.target_tags,
            prefix: &self.prefix,
            tags: self.target_tags,
        }
    }
}

impl Translator {
    /// A model directory ([`ModelDir`]: transduce, int8 or a Hugging Face family) on the CPU in
    /// f32, weights quantized as stored, on the caller's threads.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with(dir, LoadOptions::default())
    }

    /// [`Translator::load`] with the device, dtype, quantization and threads of `opts`.
    pub fn load_with(dir: &Path, opts: LoadOptions) -> Result<Self> {
        if opts.threads == Some(0) {
            return Err(Error::option("threads", "must be at least 1"));
        }
        if opts.quantization == Quantization::Int8 && (!opts.device.is_cpu() || opts.dtype != DType::F32) {
            return Err(Error::option("quantization", "int8 runs on the CPU with an f32 model"));
        }
        let (model, tokenizers) = load_model(dir, &opts)?;
        let pool = opts
            .threads
            .map(|n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|t| format!("transduce-translator-{t}"))
                    .build()
                    .map_err(|e| Error::Input(format!("cannot start {n} translation threads: {e}")))
            })
            .transpose()?;
        Ok(Translator {
            model,
            tokenizers,
            members: Vec::new(),
            combination: Combination::default(),
            device: opts.device,
            kernels: opts.kernels,
            pool,
            workers: Workers::default(),
            shortlist: None,
        })
    }

    /// An ensemble of model directories ([`crate::search::ensemble`]) that translates as one
    /// model: each step's next-token distribution combines theirs (`combination`). The
    /// directories must share one vocabulary, piece for piece, and its special tokens (as
    /// models trained on the same corpus with the same tokenizer options do); the first's
    /// tokenizers and configuration serve all. One directory is [`Translator::load_with`].
    pub fn load_ensemble<P: AsRef<Path>>(dirs: &[P], opts: LoadOptions, combination: Combination) -> Result<Self> {
        let Some((first, others)) = dirs.split_first() else {
            return Err(Error::option("model", "an ensemble needs at least one model directory"));
        };
        let mut translator = Self::load_with(first.as_ref(), opts.clone())?;
        translator.combination = combination;
        for dir in others {
            let (model, tokenizers) = load_model(dir.as_ref(), &opts)?;
            same_vocabulary(&translator, (first.as_ref(), dir.as_ref()), &model, &tokenizers)?;
            translator.members.push(model);
        }
        Ok(translator)
    }

    /// Models decoding together: 1, or an ensemble's size.
    pub fn models(&self) -> usize {
        1 + self.members.len()
    }

    /// The longest source (language tokens included) every model of the ensemble takes.
    pub fn max_source_tokens(&self) -> usize {
        self.all_models().map(|m| m.config.max_positions).min().unwrap_or(self.model.config.max_positions) - 1
    }

    /// `model`, then the ensemble's others.
    fn all_models(&self) -> impl Iterator<Item = &Seq2Seq> {
        std::iter::once(&self.model).chain(&self.members)
    }

    /// Decodes each sentence over its shortlist's candidates only ([`shortlist`]: its source
    /// tokens' targets, the tokens always allowed, its prefix, EOS and `<unk>`), or over the
    /// whole vocabulary (`None`). Faster where the vocabulary is large. Outputs change where the
    /// full search would pick a token outside the list and, in beam search, where hypotheses'
    /// scores are normalised over fewer tokens; a list of every token changes nothing.
    pub fn set_shortlist(&mut self, shortlist: Option<Shortlist>) {
        self.shortlist = shortlist.map(Arc::new);
    }

    /// Reads a shortlist ([`shortlist`]'s format, CTranslate2's `vmap.txt`) in this model's
    /// subword pieces.
    pub fn read_shortlist(&self, path: &Path) -> Result<Shortlist> {
        let (source, target) = self.piece_ids();
        Shortlist::read(path, &source, &target)
    }

    /// Measures a shortlist from parallel sentences in this model's tokens ([`Shortlist::build`]).
    pub fn build_shortlist(
        &self,
        sources: &[String],
        targets: &[String],
        frequent: usize,
        per_token: usize,
    ) -> Result<Shortlist> {
        if sources.len() != targets.len() {
            return Err(Error::Input(format!("{} source sentences, {} targets", sources.len(), targets.len())));
        }
        let encode = |t: &crate::text::SubwordTokenizer, lines: &[String]| {
            self.install(|| {
                use rayon::prelude::*;
                lines.par_iter().map(|l| t.encode(l)).collect::<Result<Vec<_>>>()
            })
        };
        let src = encode(&self.tokenizers.source, sources)?;
        let tgt = encode(&self.tokenizers.target, targets)?;
        Ok(Shortlist::build(src.iter().zip(&tgt).map(|(s, t)| (&s[..], &t[..])), frequent, per_token))
    }

    /// The piece of each id and back, of the source and the target vocabularies.
    pub fn piece_ids(&self) -> (PieceIds, PieceIds) {
        let side = |t: &crate::text::SubwordTokenizer, n: usize| {
            PieceIds::new(t.id_pieces(&(0..n as u32).collect::<Vec<_>>()))
        };
        let vocab = &self.model.config.vocab;
        let source = &self.tokenizers.source;
        let target = &self.tokenizers.target;
        (side(source, vocab.source().min(source.vocab_size())), side(target, vocab.target().min(target.vocab_size())))
    }

    /// Each sentence's target candidates under the shortlist, if there is one.
    pub(crate) fn candidates(&self, sentences: &[&Prepared]) -> Option<Candidates> {
        let list = self.shortlist.as_ref()?;
        let special = self.model.config.special;
        Some(Candidates::new(
            sentences
                .iter()
                .map(|p| {
                    let extra: Vec<u32> =
                        [special.eos, special.unk].into_iter().chain(p.prefix.iter().copied()).collect();
                    list.candidates(&p.ids, &extra)
                })
                .collect(),
        ))
    }

    /// Translates `lines` in order (sentence `i` samples from stream `i`).
    pub fn translate(&self, lines: &[&str], opts: &DecodeOptions) -> Result<Vec<Translation>> {
        let inputs: Vec<Input> = lines.iter().enumerate().map(|(i, &text)| Input::new(text, i as u64)).collect();
        self.translate_inputs(&inputs, opts)
    }

    /// Translates `n` batches at once, each on its own share of the threads (1: one batch at a
    /// time on all of them). Outputs do not change, only throughput: more workers suit files,
    /// one suits latency.
    pub fn set_workers(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::option("workers", "must be at least 1"));
        }
        let workers =
            || Workers::new(n).map_err(|e| Error::Input(format!("cannot start {n} translation workers: {e}")));
        // the workers share the translator's threads
        self.workers = match &self.pool {
            Some(pool) => pool.install(workers)?,
            None => workers()?,
        };
        Ok(())
    }

    /// Where the model's tensors live.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Translates `inputs` in order, batching sentences of similar length up to
    /// `opts.max_tokens` source tokens (padding and beam copies included).
    pub fn translate_inputs(&self, inputs: &[Input], opts: &DecodeOptions) -> Result<Vec<Translation>> {
        Ok(self.translate_groups(&[inputs], opts)?.pop().unwrap_or_default())
    }

    /// [`Translator::translate_inputs`] on each group: groups never share a batch (a caller's
    /// own batching), but all their batches are spread over the workers.
    pub fn translate_groups(&self, groups: &[&[Input]], opts: &DecodeOptions) -> Result<Vec<Vec<Translation>>> {
        self.check(opts)?;
        self.install(|| self.translate_groups_here(groups, opts))
    }

    /// Refuses options this model cannot decode with, naming the option.
    pub fn check(&self, opts: &DecodeOptions) -> Result<()> {
        opts.validate()?;
        let layers = self.all_models().map(|m| m.decoder.layers.len()).min().unwrap_or(0);
        if let Alignment::Layer(l) = opts.alignment {
            if l >= layers {
                return Err(Error::option(
                    "alignment_layer",
                    format!("{l}: the decoder has {layers} layers (0..{layers})"),
                ));
            }
        }
        Ok(())
    }

    /// [`Translator::translate_groups`] on the current thread pool.
    fn translate_groups_here(&self, groups: &[&[Input]], opts: &DecodeOptions) -> Result<Vec<Vec<Translation>>> {
        let prepared: Vec<Vec<Prepared>> = groups
            .iter()
            .map(|inputs| inputs.iter().map(|input| self.prepare(input)).collect::<Result<Vec<_>>>())
            .collect::<Result<_>>()?;
        // (group, sentences of the batch)
        let mut batches: Vec<(usize, Vec<usize>)> = Vec::new();
        for (g, (inputs, prepared)) in groups.iter().zip(&prepared).enumerate() {
            // blank lines stay blank
            let mut order: Vec<usize> = (0..inputs.len()).filter(|&i| !prepared[i].is_blank(&inputs[i])).collect();
            order.sort_by_key(|&i| prepared[i].ids.len());
            // rows per sentence in the search (beam copies)
            let copies = opts.group();
            let mut start = 0;
            while start < order.len() {
                // lengths rise along `order`: the last sentence of a batch is its longest
                let mut end = start + 1;
                while end < order.len()
                    && (end + 1 - start) * copies * (prepared[order[end]].ids.len() + 1) <= opts.max_tokens
                {
                    end += 1;
                }
                batches.push((g, order[start..end].to_vec()));
                start = end;
            }
        }
        let results =
            self.workers.map(&batches, |(g, chunk)| self.translate_batch(groups[*g], &prepared[*g], chunk, opts))?;
        let mut out: Vec<Vec<Translation>> =
            prepared.iter().map(|group| group.iter().map(Translation::blank).collect()).collect();
        for ((g, chunk), outputs) in batches.iter().zip(results) {
            for (&i, outputs) in chunk.iter().zip(outputs) {
                out[*g][i].outputs = outputs;
            }
        }
        Ok(out)
    }

    /// The language codes a multilingual model accepts (`None` for other models).
    pub fn languages(&self) -> Option<&LanguageTokens> {
        self.tokenizers.target.languages()
    }

    /// Tokenizes one input: `[source language] text` and `[target language] prefix` for a
    /// multilingual model.
    pub(crate) fn prepare(&self, input: &Input) -> Result<Prepared> {
        let max_src = self.max_source_tokens();
        let (mut ids, mut prefix) = (Vec::new(), Vec::new());
        if let Some(languages) = self.tokenizers.source.languages() {
            let direction = input.direction.ok_or_else(|| languages.direction_needed("target_lang"))?;
            let tags = languages.tags(direction, ("source_lang", "target_lang"))?;
            (ids, prefix) = (tags.source, tags.target);
        }
        let (source_tags, target_tags) = (ids.len(), prefix.len());
        ids.extend(self.tokenizers.source.encode(input.text)?);
        let truncated = ids.len() > max_src;
        ids.truncate(max_src);
        if let Some(p) = input.prefix {
            prefix.extend(self.tokenizers.target.encode(p)?);
        }
        Ok(Prepared { ids, prefix, source_tags, target_tags, truncated })
    }

    /// Encodes source sentences (ids without EOS) into one memory padded to the longest,
    /// encoding sources of similar length together ([`length_groups`]) so that the encoder
    /// does not run on the padding a batch of mixed lengths would need.
    pub(crate) fn encode(&self, sources: &[&[u32]]) -> Result<Memory> {
        self.encode_with(&self.model, sources)
    }

    /// [`Translator::encode`] by one model of the ensemble.
    fn encode_with(&self, model: &Seq2Seq, sources: &[&[u32]]) -> Result<Memory> {
        let (src, mask) = Batch::sources(sources, model.config.special, &self.device)?;
        let ctx = Ctx::eval().with_kernels(self.kernels);
        let lengths: Vec<usize> = sources.iter().map(|s| s.len() + 1).collect();
        let groups = length_groups::length_groups(&lengths, length_groups::GROUP_COST_ROWS);
        if groups.len() <= 1 {
            return Ok(model.encode_with(&src, &mask, Record::Nothing, &ctx)?);
        }
        let longest = src.dim(1)?;
        let mut states = Vec::with_capacity(groups.len());
        // where each source's row lands in the groups' concatenation
        let mut row_of = vec![0u32; sources.len()];
        for (row, &i) in groups.iter().flatten().enumerate() {
            row_of[i] = row as u32;
        }
        for group in &groups {
            let members: Vec<&[u32]> = group.iter().map(|&i| sources[i]).collect();
            let (src, mask) = Batch::sources(&members, model.config.special, &self.device)?;
            let memory = model.encode_with(&src, &mask, Record::Nothing, &ctx)?;
            let s = memory.states.dim(1)?;
            states.push(memory.states.pad_with_zeros(1, 0, longest - s)?);
        }
        let order = Tensor::new(row_of, &self.device)?;
        let states = Tensor::cat(&states, 0)?.index_select(&order, 0)?;
        let bias = padding_bias(&mask, states.dtype())?;
        Ok(Memory { states, mask, bias, attention: Vec::new() })
    }

    /// The search's view of the model decoding `memory`.
    pub(crate) fn stepper<'a>(&'a self, memory: &'a Memory) -> EncodedBatch<'a> {
        EncodedBatch::with_kernels(&self.model, memory, self.kernels)
    }

    /// Runs `f` on the translator's own threads, or the caller's.
    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// The outputs of sentences `chunk` of `inputs`, searched as one batch.
    fn translate_batch(
        &self,
        inputs: &[Input],
        prepared: &[Prepared],
        chunk: &[usize],
        opts: &DecodeOptions,
    ) -> Result<Vec<Vec<Output>>> {
        let sources: Vec<&[u32]> = chunk.iter().map(|&i| &prepared[i].ids[..]).collect();
        let candidates = self.candidates(&chunk.iter().map(|&i| &prepared[i]).collect::<Vec<_>>());
        let targets: Vec<Target> = chunk.iter().map(|&i| prepared[i].target(opts)).collect();
        let streams: Vec<u64> = chunk.iter().map(|&i| inputs[i].stream).collect();
        let hyps = if self.members.is_empty() {
            let memory = self.encode(&sources)?;
            decode(&self.stepper(&memory).with_candidates(candidates), &targets, &streams, opts)?
        } else {
            let memories = self.all_models().map(|m| self.encode_with(m, &sources)).collect::<Result<Vec<_>>>()?;
            let steppers: Vec<EncodedBatch> = self
                .all_models()
                .zip(&memories)
                .map(|(m, memory)| {
                    EncodedBatch::with_kernels(m, memory, self.kernels).with_candidates(candidates.clone())
                })
                .collect();
            decode(&Ensemble::new(steppers, self.combination)?, &targets, &streams, opts)?
        };
        chunk.iter().zip(hyps).map(|(&i, hyps)| self.outputs(&prepared[i], hyps, opts)).collect()
    }

    /// A sentence's outputs from its hypotheses.
    pub(crate) fn outputs(
        &self,
        prepared: &Prepared,
        hyps: Vec<Hypothesis>,
        opts: &DecodeOptions,
    ) -> Result<Vec<Output>> {
        let source_words = match opts.alignment {
            Alignment::Off => None,
            _ => Some(word_of_pieces(&self.tokenizers.source.id_pieces(&prepared.ids[prepared.source_tags..]))),
        };
        hyps.into_iter().map(|h| self.output(h, prepared, source_words.as_deref())).collect()
    }

    /// `source_words`: the word of each source piece, when alignments are asked for. The
    /// prepared target's language token is not part of the output, nor are the attention
    /// columns of the source's language token.
    fn output(&self, mut h: Hypothesis, prepared: &Prepared, source_words: Option<&[usize]>) -> Result<Output> {
        let tags = prepared.target_tags.min(h.tokens.len());
        h.tokens.drain(..tags);
        h.token_logp.drain(..tags.min(h.token_logp.len()));
        h.attention.drain(..tags.min(h.attention.len()));
        let source_tags = prepared.source_tags;
        h.attention.iter_mut().for_each(|row| drop(row.drain(..source_tags.min(row.len()))));
        let alignment = source_words.map(|source_words| {
            let target_words = word_of_pieces(&self.tokenizers.target.id_pieces(&h.tokens));
            hard_links(&h.attention, source_words, &target_words)
        });
        Ok(Output {
            text: self.tokenizers.target.decode(&h.tokens)?,
            tokens: h.tokens,
            score: h.score,
            token_scores: h.token_logp,
            alignment,
        })
    }
}

/// A model directory's model, ready to translate, and its tokenizers, checked against its
/// configuration.
fn load_model(dir: &Path, opts: &LoadOptions) -> Result<(Seq2Seq, Tokenizers)> {
    let dir = ModelDir::open(dir)?;
    // a translator never trains: the packed or int8 copies are the only ones it needs
    let model = dir.load_for_translation(opts.dtype, &opts.device, opts.quantization == Quantization::Int8)?;
    let config = &model.config;
    let tokenizers = dir.tokenizers()?;
    let sides =
        [("source", &tokenizers.source, config.vocab.source()), ("target", &tokenizers.target, config.vocab.target())];
    // a pretrained model's table may have unused rows after the tokenizer's entries (NLLB-200)
    for (side, tok, size) in sides {
        if tok.vocab_size() > size || (tok.vocab_size() < size && tok.languages().is_none()) {
            return Err(Error::Input(format!(
                "{}: the {side} tokenizer has {} entries, the model's configuration says {size}",
                dir.path().display(),
                tok.vocab_size()
            )));
        }
    }
    Ok((model, tokenizers))
}

/// Refuses an ensemble's model (`dirs.1`) whose vocabulary or special tokens differ from the
/// first model's (`dirs.0`, loaded in `first`), naming the first difference.
fn same_vocabulary(first: &Translator, dirs: (&Path, &Path), model: &Seq2Seq, tokenizers: &Tokenizers) -> Result<()> {
    let differ = |what: String| {
        Err(Error::Input(format!(
            "{}: cannot decode in an ensemble with {}: {what}",
            dirs.1.display(),
            dirs.0.display()
        )))
    };
    let (a, b) = (&first.model.config, &model.config);
    if a.vocab != b.vocab {
        return differ(format!("its vocabulary sizes are {:?}, the first model's {:?}", b.vocab, a.vocab));
    }
    if a.special != b.special {
        return differ(format!("its special tokens are {:?}, the first model's {:?}", b.special, a.special));
    }
    let sides = [
        ("source", &first.tokenizers.source, &tokenizers.source),
        ("target", &first.tokenizers.target, &tokenizers.target),
    ];
    for (side, ours, theirs) in sides {
        if ours.vocab_size() != theirs.vocab_size() {
            return differ(format!(
                "its {side} tokenizer has {} entries, the first model's {}",
                theirs.vocab_size(),
                ours.vocab_size()
            ));
        }
        let ids: Vec<u32> = (0..ours.vocab_size() as u32).collect();
        let (p, q) = (ours.id_pieces(&ids), theirs.id_pieces(&ids));
        if let Some(i) = (0..p.len()).find(|&i| p[i] != q[i]) {
            return differ(format!("its {side} piece {i} is {:?}, the first model's {:?}", q[i], p[i]));
        }
    }
    Ok(())
}
