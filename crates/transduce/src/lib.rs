//! transduce: encoder-decoder Transformers for sequence-to-sequence tasks.
//!
//! The encoder reads the whole source at once (bidirectional self-attention) into a memory,
//! the "context map". The decoder writes the output one token at a time: masked (causal)
//! self-attention over what it has written, cross-attention into the memory.
//!
//! This crate is what other programs embed (the `transduce` command, a server, Python bindings):
//! it has no command-line, progress-bar or signal dependencies and changes nothing
//! process-wide; options are checked with typed errors that name them ([`Error::Option`]).
//!
//! Translating with a model directory ([`ModelDir`]: transduce's own, int8, or Hugging Face
//! Marian):
//!
//! ```
//! use transduce::search::{BeamOptions, Strategy};
//! use transduce::{DecodeOptions, LoadOptions, ModelDir, Quantization, Translator};
//!
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/hf_marian/tiny");
//! let format = ModelDir::open(dir)?.format(); // detected once: Native, NativeInt8 or HfMarian
//! let translator = Translator::load_with(
//!     dir.as_ref(),
//!     LoadOptions { quantization: Quantization::Int8, threads: Some(2), ..LoadOptions::default() },
//! )?; // CPU and f32 by default; its own pool of 2 threads here
//! let opts = DecodeOptions {
//!     strategy: Strategy::Beam(BeamOptions { beam: 4, n_best: 2, ..BeamOptions::default() }),
//!     ..DecodeOptions::default()
//! };
//! let translations = translator.translate(&["Une femme aime le chien."], &opts)?;
//! let best = translations[0].best(); // text, tokens, score, token scores, alignment
//! assert_eq!(translations[0].outputs.len(), 2); // the n-best
//! # let _ = (format, best);
//! # Ok::<(), transduce::Error>(())
//! ```
//!
//! Model directories of one vocabulary (e.g. trained with different seeds) translate as one
//! ensemble with [`Translator::load_ensemble`]: each step combines their next-token
//! distributions ([`search::Combination`]).
//!
//! Below the translator, the model itself:
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use transduce::data::Batch;
//! use transduce::model::{ModelConfig, Preset, TrainableModel};
//! use transduce::search::greedy;
//!
//! let device = Device::Cpu;
//! let config = ModelConfig::preset(Preset::Tiny, 100); // shared vocabulary of 100 ids
//! let model = TrainableModel::init(&config, 42, DType::F32, &device)?.model;
//! let pairs: Vec<(&[u32], &[u32])> = vec![(&[5, 6, 7], &[8, 9]), (&[10, 11], &[12, 13, 14])];
//! let batch = Batch::new(&pairs, vec![0, 1], config.special, &device)?; // pads, appends EOS, shifts
//!
//! let memory = model.encode(&batch.src, &batch.src_mask)?; // encode once: [2, 4, 32]
//! let logits = model.decode(&batch.tgt_in, &memory)?;      // teacher-forced: [2, 4, 100]
//! assert_eq!(logits.dims(), &[2, 4, 100]);
//!
//! let mut state = model.start(&memory, 1)?;                // or step by step, with a K/V cache
//! let start = Tensor::new(&[config.special.decoder_start; 2], &device)?;
//! let step = model.decode_step(&start, &mut state)?;       // [2, 100]
//! assert_eq!(step.dims(), &[2, 100]);
//!
//! let outputs = greedy(&model, &memory, 20)?;              // token ids per sentence, stops at EOS
//! assert_eq!(outputs.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod choice;
pub mod convert;
pub mod data;
pub mod error;
pub mod eval;
pub mod explain;
pub mod kernels;
pub mod model;
pub mod model_dir;
pub mod search;
pub mod text;
pub mod train;
pub mod translate;
pub mod workers;

pub use error::{Error, Result};
pub use model::{ModelConfig, Preset, Seq2Seq};
pub use model_dir::ModelDir;
pub use search::DecodeOptions;
pub use train::{train, TrainConfig};
pub use translate::{Input, LoadOptions, Output, Quantization, Translation, Translator};
pub use workers::Workers;
