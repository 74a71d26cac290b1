//! Seeing inside a model: recorded attention (encoder self-attention, masked decoder
//! self-attention, cross-attention), the encoder's context map, the decoder's choices step by
//! step, word alignments, and the self-contained HTML/SVG page that shows them.

pub mod html;
pub mod pca;
pub mod record;
pub mod svg;

pub use record::{
    explain, explain_input, forced_attention, forced_attention_input, Explanation, ForcedAttention, StepChoice,
};
