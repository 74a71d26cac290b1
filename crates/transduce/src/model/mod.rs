//! The encoder-decoder Transformer.

pub mod attention;
pub mod candidates;
pub mod config;
pub mod context;
pub mod decoder;
pub mod embedding;
pub mod encoder;
pub mod layers;
pub mod params;
pub mod position_bias;
pub mod seq2seq;
pub mod source_memory;
pub mod state;
pub mod weights;

pub use attention::{AttentionKind, KeyValues, Record};
pub use candidates::Candidates;
pub use config::{ModelConfig, Preset};
pub use context::{Ctx, Fork, Mode};
pub use decoder::DecoderLayerAttention;
pub use encoder::Memory;
pub use seq2seq::Seq2Seq;
pub use source_memory::{CrossMemory, SourceMemory};
pub use state::DecoderState;
pub use weights::{load_model, TrainableModel};
