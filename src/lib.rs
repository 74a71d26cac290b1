//! transduce: encoder-decoder Transformers for sequence-to-sequence tasks.
//!
//! The encoder reads the whole source at once (bidirectional self-attention) into a memory,
//! the "context map". The decoder writes the output one token at a time: masked (causal)
//! self-attention over what it has written, cross-attention into the memory.
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

pub mod bench;
pub mod convert;
pub mod data;
pub mod demo;
pub mod error;
pub mod eval;
pub mod explain;
pub mod kernels;
pub mod model;
pub mod runtime;
pub mod search;
pub mod text;
pub mod train;
pub mod translate;

pub use error::{Error, Result};
pub use model::{ModelConfig, Preset, Seq2Seq};
