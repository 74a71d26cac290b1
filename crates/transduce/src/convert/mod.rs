//! Model directories of other toolkits, read and written: Hugging Face Marian (OPUS-MT).

pub mod hf_config;
pub mod hf_m2m100;
pub mod hf_marian;
pub mod int8;
