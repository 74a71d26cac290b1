//! Model directories of other toolkits, read and written: Hugging Face Marian (OPUS-MT),
//! M2M-100 / NLLB-200 and T5 / mT5 / MADLAD-400.

pub mod hf_config;
pub mod hf_family;
pub mod hf_m2m100;
pub mod hf_marian;
pub mod hf_t5;
pub mod int8;
