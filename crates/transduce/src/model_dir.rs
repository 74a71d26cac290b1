//! A model directory: the one place that knows which files a model is made of, detects the
//! format once (transduce's own, int8, Hugging Face Marian, M2M-100 / NLLB-200, T5 / mT5 /
//! MADLAD-400), loads configuration, tokenizers and
//! weights from it, and writes files atomically.
//!
//! ```text
//! config.json          model configuration (transduce's, or a Hugging Face MarianConfig)
//! model.safetensors    weights (f32, or int8 with per-row scales)
//! tokenizer.json       joint vocabulary, or source_/target_tokenizer.json,
//!                      or (Marian) source.spm, target.spm, vocab.json [, target_vocab.json]
//! training.json        training options          metrics.jsonl   one line per log / validation
//! curves.svg           loss and scores           checkpoints/update-NNNNNNNNN/
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::convert::{hf_m2m100, hf_marian, hf_t5};
use crate::error::{read_json, Error, Result};
use crate::kernels::cpu::with_f32;
use crate::kernels::int8::Int8Matrix;
use crate::model::layers::{Packing, TableRows};
use crate::model::seq2seq::table_name;
use crate::model::weights::{
    check_tensors, model_from_tensors, parameter_shapes, read_weights_file, stores_int8, stream_weights_file,
    Precision, Stored,
};
use crate::model::{ModelConfig, Seq2Seq};
use crate::text::{marian::MarianVocab, SubwordTokenizer, Tokenizers};

/// The languages a model translates between (codes as the model names them, e.g. ISO 639-1).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Languages {
    pub source: String,
    pub target: String,
}

/// The configuration: transduce's [`ModelConfig`] or a Hugging Face `config.json`.
pub const CONFIG: &str = "config.json";
/// The weights.
pub const WEIGHTS: &str = "model.safetensors";
/// The shards of a big checkpoint: `{"weight_map": {tensor: file}}`.
pub const SHARDED_WEIGHTS_INDEX: &str = "model.safetensors.index.json";
/// A PyTorch pickle, which transduce does not read.
pub const PYTORCH_WEIGHTS: &str = "pytorch_model.bin";
/// A joint vocabulary (Hugging Face `tokenizers` format).
pub const JOINT_TOKENIZER: &str = "tokenizer.json";
/// Per-side vocabularies.
pub const SOURCE_TOKENIZER: &str = "source_tokenizer.json";
pub const TARGET_TOKENIZER: &str = "target_tokenizer.json";
/// A Marian (OPUS-MT) tokenizer: SentencePiece models and the model vocabulary
/// (`target_vocab.json` only when the vocabularies are separate).
pub const MARIAN_SOURCE_SPM: &str = "source.spm";
pub const MARIAN_TARGET_SPM: &str = "target.spm";
pub const MARIAN_VOCAB: &str = "vocab.json";
pub const MARIAN_TARGET_VOCAB: &str = "target_vocab.json";
/// Hugging Face's tokenizer settings and special tokens, and generation defaults.
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const SPECIAL_TOKENS_MAP: &str = "special_tokens_map.json";
pub const GENERATION_CONFIG: &str = "generation_config.json";
/// What `transduce train` writes beside the model.
pub const TRAINING: &str = "training.json";
pub const METRICS: &str = "metrics.jsonl";
pub const CURVES: &str = "curves.svg";
pub const CHECKPOINTS: &str = "checkpoints";

/// Tokenizer files of every kind, in the order [`ModelDir::tokenizers`] looks for them.
pub const TOKENIZER_FILES: [&str; 7] = [
    JOINT_TOKENIZER,
    SOURCE_TOKENIZER,
    TARGET_TOKENIZER,
    MARIAN_SOURCE_SPM,
    MARIAN_TARGET_SPM,
    MARIAN_VOCAB,
    MARIAN_TARGET_VOCAB,
];

/// How a model directory stores its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// transduce's `config.json` and f32 (or other floating-point) weights.
    Native,
    /// transduce's `config.json`, matrices in int8 with per-row scales (`transduce quantize`).
    NativeInt8,
    /// A Hugging Face Marian (OPUS-MT) directory, converted as it loads.
    HfMarian,
    /// A Hugging Face M2M-100 or NLLB-200 directory (`model_type: m2m_100`), converted as it loads.
    HfM2m100,
    /// A Hugging Face T5, mT5 or MADLAD-400 directory (`model_type: t5` / `mt5`), converted as
    /// it loads.
    HfT5,
}

impl Format {
    /// Whether the weights are stored in int8.
    pub fn is_int8(self) -> bool {
        self == Format::NativeInt8
    }
}

/// A model directory whose format has been detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir {
    path: PathBuf,
    format: Format,
}

impl ModelDir {
    /// Opens an existing model directory and detects its format from `config.json` (its
    /// `model_type`) and the weights file's header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            let absent = std::io::Error::new(std::io::ErrorKind::NotFound, "not a model directory: no such directory");
            return Err(Error::io(&path, absent));
        }
        if !path.is_dir() {
            return Err(Error::Input(format!("{}: not a model directory", path.display())));
        }
        check_links(&path)?;
        let config = path.join(CONFIG);
        let value: Value = read_json(&config)?;
        let format = match value.get("model_type").and_then(Value::as_str) {
            Some("marian") => Format::HfMarian,
            Some("m2m_100") => Format::HfM2m100,
            Some(t) if hf_t5::is_family(t) => Format::HfT5,
            Some(other) => {
                return Err(Error::Input(format!(
                    "{}: model_type `{other}` is not a family transduce reads (it reads transduce models and \
                     Hugging Face `marian`, `m2m_100` (M2M-100, NLLB-200), `t5` and `mt5` (T5, mT5, \
                     MADLAD-400))",
                    config.display()
                )))
            }
            None if stores_int8(&path.join(WEIGHTS))? => Format::NativeInt8,
            None => Format::Native,
        };
        Ok(ModelDir { path, format })
    }

    /// A directory to write a transduce model into, created if absent.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(ModelDir { path, format: Format::Native })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// `name` inside the directory (one of this module's file names).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.file(CONFIG)
    }

    pub fn weights_path(&self) -> PathBuf {
        self.file(WEIGHTS)
    }

    /// Whether the weights file exists (a directory being trained may not have one yet).
    pub fn has_weights(&self) -> bool {
        self.weights_path().exists()
    }

    /// The model configuration, converted from Marian's where needed.
    pub fn config(&self) -> Result<ModelConfig> {
        match self.format {
            Format::Native | Format::NativeInt8 => ModelConfig::load(&self.config_path()),
            Format::HfMarian => hf_marian::read_config(self),
            Format::HfM2m100 => hf_m2m100::read_config(self),
            Format::HfT5 => hf_t5::read_config(self),
        }
    }

    /// Every weight under transduce's names, checked against `config` (int8 matrices
    /// dequantized), and how the file stores them.
    pub fn tensors(&self, config: &ModelConfig, device: &Device) -> Result<(HashMap<String, Tensor>, Precision)> {
        match self.format {
            Format::Native | Format::NativeInt8 => {
                let path = self.weights_path();
                let (tensors, precision) = read_weights_file(&path, device)?;
                check_tensors(config, &tensors, &path)?;
                Ok((tensors, precision))
            }
            Format::HfMarian | Format::HfM2m100 | Format::HfT5 => {
                Ok((hf_marian::read_weights(self, config, device)?, Precision::Float))
            }
        }
    }

    /// The model for inference (weights laid out for decoding; int8 if stored so).
    pub fn load_model(&self, dtype: DType, device: &Device) -> Result<Seq2Seq> {
        let config = self.config()?;
        let (tensors, precision) = self.tensors(&config, device)?;
        let mut model = model_from_tensors(&config, tensors, dtype, device)?;
        if precision == Precision::Int8 {
            model.quantize_int8()?;
        }
        Ok(model)
    }

    /// The model for a translator, in int8 when stored so or when `int8` asks; it cannot train.
    /// On the CPU in f32 the weights stream in tensor by tensor, each matrix packed (or
    /// quantized) as it arrives and a tied embedding table first, so that loading never holds
    /// much more than the model it builds; elsewhere the model is built, then laid out layer by
    /// layer ([`Seq2Seq::prepare_for_translation`]).
    pub fn load_for_translation(&self, dtype: DType, device: &Device, int8: bool) -> Result<Seq2Seq> {
        let config = self.config()?;
        if !(device.is_cpu() && dtype == DType::F32) {
            let (tensors, precision) = self.tensors(&config, device)?;
            let tensors: HashMap<String, Tensor> =
                tensors.into_iter().map(|(n, t)| Ok((n, t.to_dtype(dtype)?))).collect::<candle_core::Result<_>>()?;
            let mut model = Seq2Seq::new(&config, candle_nn::VarBuilder::from_tensors(tensors, dtype, device))?;
            model.prepare_for_translation(int8 || precision == Precision::Int8)?;
            return Ok(model);
        }
        let quantize = int8 || self.format == Format::NativeInt8;
        let shapes = parameter_shapes(&config)?;
        let table = table_name(&config);
        let output = table.unwrap_or("lm_head.weight");
        let is_matrix = |name: &str| {
            name == "lm_head.weight"
                || Some(name) == table
                || ([".q_proj.", ".k_proj.", ".v_proj.", ".out_proj.", ".fc1.", ".fc2.", ".ffn.up."]
                    .iter()
                    .any(|p| name.contains(p))
                    && name.ends_with(".weight"))
        };
        let mut packed: HashMap<String, TableRows> = HashMap::new();
        let mut kept: HashMap<String, Tensor> = HashMap::new();
        let mut copies = Vec::new();
        let weights = self.weights_path();
        let mut take = |name: String, stored: Stored| -> Result<()> {
            if !is_matrix(&name) {
                kept.insert(name, stored.into_tensor(device)?);
                return Ok(());
            }
            let rows = match stored {
                Stored::Int8 { q, scales, rows, cols } => {
                    TableRows::Int8(Arc::new(Int8Matrix::from_quantized(&q, scales, rows, cols)))
                }
                Stored::Float(t) => {
                    let (n, k) = t.dims2()?;
                    let packing = match (quantize, name == output) {
                        (true, _) => Packing::Int8,
                        // greedy search reads the output projection's high halves alone
                        (false, true) => Packing::Halves,
                        (false, false) => Packing::Panels,
                    };
                    with_f32(&t, |w| TableRows::pack(w, n, k, packing))?
                }
            };
            packed.insert(name, rows);
            Ok(())
        };
        // the tied table first: packed before anything else is read
        let first = |name: &str| Some(name) == table;
        let rest = |name: &str| Some(name) != table;
        // in int8, each f32 matrix is quantized as it is read (what Packing::Int8 gives)
        let quantized_as_read = |name: &str| quantize && is_matrix(name);
        for wanted in [&first as &dyn Fn(&str) -> bool, &rest] {
            match self.format {
                Format::Native | Format::NativeInt8 => {
                    stream_weights_file(&weights, device, wanted, &quantized_as_read, &mut take)?;
                }
                Format::HfMarian | Format::HfM2m100 | Format::HfT5 => {
                    copies.extend(hf_marian::stream_weights(
                        self,
                        &config,
                        device,
                        wanted,
                        &quantized_as_read,
                        &mut take,
                    )?);
                }
            }
        }
        let mut problems: Vec<String> = copies
            .iter()
            .filter(|c| {
                !packed.get(c.tied_to).is_some_and(|rows| with_f32(&c.tensor, |w| rows.holds(w)).unwrap_or(false))
            })
            .map(|c| c.differs())
            .collect();
        for (name, shape) in &shapes {
            let stored =
                packed.get(name).map(|r| r.shape()).or_else(|| kept.get(name).map(|t| t.dims2().unwrap_or((0, 0))));
            match (stored, kept.get(name)) {
                (None, _) => problems.push(format!("missing tensor `{name}` (expected shape {:?})", shape.dims())),
                (_, Some(t)) if t.dims() != shape.dims() => problems.push(format!(
                    "tensor `{name}` has shape {:?}, the config needs {:?}",
                    t.dims(),
                    shape.dims()
                )),
                (Some(dims), None) if [dims.0, dims.1] != shape.dims() => problems.push(format!(
                    "tensor `{name}` has shape {:?}, the config needs {:?}",
                    [dims.0, dims.1],
                    shape.dims()
                )),
                _ => {}
            }
        }
        let mut unexpected: Vec<&String> =
            packed.keys().chain(kept.keys()).filter(|n| !shapes.contains_key(*n)).collect();
        unexpected.sort();
        problems.extend(unexpected.into_iter().map(|n| format!("unexpected tensor `{n}`")));
        if !problems.is_empty() {
            return Err(Error::Weights { path: weights, why: problems.join("; ") });
        }
        // the packed matrices' places hold zero-stride stand-ins of their shape (no memory)
        for name in packed.keys() {
            let stand_in = Tensor::zeros((1, 1), dtype, device)?.broadcast_as(shapes[name].clone())?;
            kept.insert(name.clone(), stand_in);
        }
        let mut model = Seq2Seq::new(&config, candle_nn::VarBuilder::from_tensors(kept, dtype, device))?;
        model.install_inference(packed, quantize)?;
        Ok(model)
    }

    /// The languages the model translates between, from `tokenizer_config.json`'s
    /// `source_lang` and `target_lang` (Hugging Face Marian's convention, which `transduce
    /// train --src-lang/--tgt-lang` follows); `None` when the directory does not say.
    pub fn languages(&self) -> Result<Option<Languages>> {
        let path = self.file(TOKENIZER_CONFIG);
        if !path.exists() {
            return Ok(None);
        }
        let value: Value = read_json(&path)?;
        let field = |name: &str| -> Result<Option<String>> {
            match value.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(code)) if !code.trim().is_empty() => Ok(Some(code.trim().to_string())),
                Some(other) => Err(Error::Input(format!(
                    "{}: field {name}: expected a language code, found {other}",
                    path.display()
                ))),
            }
        };
        Ok(match (field("source_lang")?, field("target_lang")?) {
            (Some(source), Some(target)) => Some(Languages { source, target }),
            _ => None,
        })
    }

    /// Records the languages in `tokenizer_config.json` (kept with its other fields).
    pub fn set_languages(&self, languages: &Languages) -> Result<()> {
        let path = self.file(TOKENIZER_CONFIG);
        let mut value: Value = match path.exists() {
            true => read_json(&path)?,
            false => Value::Object(Default::default()),
        };
        let Some(fields) = value.as_object_mut() else {
            return Err(Error::Input(format!("{}: not a JSON object", path.display())));
        };
        fields.insert("source_lang".into(), Value::String(languages.source.clone()));
        fields.insert("target_lang".into(), Value::String(languages.target.clone()));
        let text = serde_json::to_string_pretty(&value).map_err(|e| Error::json(&path, e))?;
        write_atomic(&path, text.as_bytes())
    }

    /// `tokenizer.json`, or else `source.spm` + `target.spm` + `vocab.json` (Marian), or else
    /// `source_tokenizer.json` and `target_tokenizer.json`.
    pub fn tokenizers(&self) -> Result<Tokenizers> {
        if self.format == Format::HfM2m100 || hf_m2m100::has_family_tokenizer(self)? {
            return hf_m2m100::tokenizers(self);
        }
        if self.format == Format::HfT5 || hf_t5::has_family_tokenizer(self)? {
            return hf_t5::tokenizers(self);
        }
        let joint = self.file(JOINT_TOKENIZER);
        if joint.exists() {
            let t = Arc::new(SubwordTokenizer::load(&joint)?);
            return Ok(Tokenizers { source: t.clone(), target: t });
        }
        if self.file(MARIAN_SOURCE_SPM).exists() {
            let (source_spm, target_spm) = (self.file(MARIAN_SOURCE_SPM), self.file(MARIAN_TARGET_SPM));
            let vocab = self.file(MARIAN_VOCAB);
            let separate = self.file(MARIAN_TARGET_VOCAB);
            let source = MarianVocab::load(&source_spm, &source_spm, &vocab)?;
            // MarianTokenizer joins target pieces with the source model unless the vocabularies are separate
            let target = match separate.exists() {
                true => MarianVocab::load(&target_spm, &target_spm, &separate)?,
                false => MarianVocab::load(&target_spm, &source_spm, &vocab)?,
            };
            return Ok(Tokenizers {
                source: Arc::new(SubwordTokenizer::marian(source)),
                target: Arc::new(SubwordTokenizer::marian(target)),
            });
        }
        let (source, target) = (self.file(SOURCE_TOKENIZER), self.file(TARGET_TOKENIZER));
        if !source.exists() && !target.exists() {
            return Err(Error::Input(format!(
                "{}: no tokenizer ({JOINT_TOKENIZER}, {SOURCE_TOKENIZER} and {TARGET_TOKENIZER}, or {MARIAN_SOURCE_SPM} \
                 and {MARIAN_VOCAB})",
                self.path.display()
            )));
        }
        Ok(Tokenizers {
            source: Arc::new(SubwordTokenizer::load(&source)?),
            target: Arc::new(SubwordTokenizer::load(&target)?),
        })
    }

    /// Copies the files named in `names` that exist here into `to`; returns those copied.
    pub fn copy_files(&self, names: &[&str], to: &ModelDir) -> Result<Vec<String>> {
        let mut copied = Vec::new();
        for name in names {
            let from = self.file(name);
            if from.exists() {
                std::fs::copy(&from, to.file(name)).map_err(|e| Error::io(&from, e))?;
                copied.push(name.to_string());
            }
        }
        Ok(copied)
    }

    /// Finished checkpoints, oldest first (`.partial` directories of an interrupted write are
    /// never among them).
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let dir = self.file(CHECKPOINTS);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_none())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("update-")))
            .collect();
        found.sort();
        Ok(found.into_iter().map(|path| Checkpoint { path }).collect())
    }

    /// The checkpoint of update `updates` (which may not exist yet).
    pub fn checkpoint(&self, updates: usize) -> Checkpoint {
        Checkpoint { path: self.file(CHECKPOINTS).join(format!("update-{updates:09}")) }
    }
}

/// One checkpoint directory: weights, optimizer moments and the training state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub path: PathBuf,
}

impl Checkpoint {
    pub fn weights(&self) -> PathBuf {
        self.path.join(WEIGHTS)
    }

    pub fn optimizer(&self) -> PathBuf {
        self.path.join("optimizer.safetensors")
    }

    pub fn state(&self) -> PathBuf {
        self.path.join("state.json")
    }
}

/// Refuses a model directory whose files are symbolic links to files outside it: a link may
/// point within the directory, or, in a Hugging Face cache snapshot
/// (`models--org--name/snapshots/<revision>/`), into that repository's `blobs/`.
fn check_links(dir: &Path) -> Result<()> {
    let root = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let snapshots = root.parent().filter(|p| p.file_name().is_some_and(|n| n == "snapshots"));
    let repo = snapshots.and_then(Path::parent);
    let blobs = repo
        .filter(|r| r.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("models--")))
        .map(|r| r.join("blobs"));
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_link = path.symlink_metadata().map_err(|e| Error::io(&path, e))?.file_type().is_symlink();
        if !is_link {
            continue;
        }
        let target = path.canonicalize().map_err(|e| {
            Error::io(&path, std::io::Error::new(e.kind(), format!("a symbolic link to nothing readable: {e}")))
        })?;
        if !(target.starts_with(&root) || blobs.as_ref().is_some_and(|b| target.starts_with(b))) {
            return Err(Error::Input(format!(
                "{}: a symbolic link to {}, outside the model directory; copy the file into the directory",
                path.display(),
                target.display()
            )));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see a
/// partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_atomically(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| Error::io(tmp, e)))
}

/// Runs `write` on a temporary path beside `path`, flushes it to the disk, then renames the
/// result onto `path`. Where writing fails (a full disk), the temporary file is removed and
/// `path` is left as it was.
pub fn replace_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if let Err(e) = write(&tmp).and_then(|()| sync_file(&tmp)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Flushes a written file to the disk: some filesystems report a full disk only here.
pub fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, e))
}
