//! Safetensors weights whose names mirror the module tree, loaded with every name and shape
//! checked against the config before a model is built.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{var_builder::SimpleBackend, Init, VarBuilder, VarMap};
use safetensors::tensor::TensorView;

use super::config::ModelConfig;
use super::params::SeededInit;
use super::seq2seq::Seq2Seq;
use crate::error::{Error, Result};
use crate::kernels::int8::{quantize_row, Int8Matrix};

/// Records the name and shape of every parameter a model asks for.
#[derive(Default)]
struct ShapeRecorder(Mutex<BTreeMap<String, Shape>>);

impl SimpleBackend for ShapeRecorder {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0.lock().expect("recorder lock").insert(name.to_string(), s.clone());
        // a zero-stride stand-in: recording a big model's shapes allocates nothing
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("parameter {name}: requested without a shape")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// Name and shape of every parameter of a model with this config, sorted by name.
pub fn parameter_shapes(config: &ModelConfig) -> Result<BTreeMap<String, Shape>> {
    let recorder = std::sync::Arc::new(ShapeRecorder::default());
    struct Shared(std::sync::Arc<ShapeRecorder>);
    impl SimpleBackend for Shared {
        fn get(&self, s: Shape, n: &str, h: Init, dt: DType, dev: &Device) -> candle_core::Result<Tensor> {
            self.0.get(s, n, h, dt, dev)
        }
        fn get_unchecked(&self, n: &str, dt: DType, dev: &Device) -> candle_core::Result<Tensor> {
            self.0.get_unchecked(n, dt, dev)
        }
        fn contains_tensor(&self, n: &str) -> bool {
            self.0.contains_tensor(n)
        }
    }
    let vb = VarBuilder::from_backend(Box::new(Shared(recorder.clone())), DType::F32, Device::Cpu);
    Seq2Seq::new(config, vb)?;
    let shapes = recorder.0.lock().expect("recorder lock").clone();
    Ok(shapes)
}

/// Checks `tensors` against the parameters of `config`: every expected name present with the
/// expected shape, nothing unexpected. The error lists every problem, by tensor name.
pub fn check_tensors(config: &ModelConfig, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let expected = parameter_shapes(config)?;
    let mut problems = Vec::new();
    for (name, shape) in &expected {
        match tensors.get(name) {
            None => problems.push(format!("missing tensor `{name}` (expected shape {:?})", shape.dims())),
            Some(t) if t.shape() != shape => {
                problems.push(format!("tensor `{name}` has shape {:?}, the config needs {:?}", t.dims(), shape.dims()))
            }
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<_> = tensors.keys().filter(|n| !expected.contains_key(*n)).collect();
    unexpected.sort();
    problems.extend(unexpected.into_iter().map(|n| format!("unexpected tensor `{n}`")));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Weights { path: path.to_path_buf(), why: problems.join("; ") })
    }
}

/// How a weights file stores its matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Floating point (f32, or what the file holds).
    Float,
    /// Every matrix in int8 with one f32 scale per row (`<name>_scale`), written by
    /// `transduce quantize`; the rest in f32.
    Int8,
}

/// An open safetensors file with its JSON header read (bounded: at most 100 MB, within the file).
struct StoredHeader {
    file: std::fs::File,
    file_len: u64,
    /// Bytes of the JSON header (after the 8-byte length).
    header_len: u64,
    /// Tensor name (or `__metadata__`) -> its entry.
    entries: HashMap<String, serde_json::Value>,
}

fn unreadable(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Weights { path: path.to_path_buf(), why: format!("not a readable safetensors file: {e}") }
}

fn read_header(path: &Path) -> Result<StoredHeader> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).map_err(|e| unreadable(path, &e))?;
    let n = u64::from_le_bytes(n);
    if n > 100_000_000 || 8 + n > file_len {
        return Err(unreadable(path, &format!("header of {n} bytes in a file of {file_len}")));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(|e| unreadable(path, &e))?;
    let entries = serde_json::from_slice(&header).map_err(|e| unreadable(path, &format!("header: {e}")))?;
    Ok(StoredHeader { file, file_len, header_len: n, entries })
}

/// Whether the safetensors file at `path` was written by `transduce quantize` (its header's
/// metadata says `"transduce": "int8"`), reading the header only; false if there is no file.
pub fn stores_int8(path: &Path) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let header = read_header(path)?;
    Ok(header.entries.get("__metadata__").and_then(|m| m.get("transduce")).and_then(|v| v.as_str()) == Some("int8"))
}

/// Whether the safetensors file at `path` holds a tensor `name` (reading the header only).
pub fn stores_tensor(path: &Path, name: &str) -> Result<bool> {
    Ok(read_header(path)?.entries.contains_key(name))
}

/// One tensor as read: f32 values in their own buffer, an f32 matrix quantized row by row as it
/// was read, or a view of the bytes of another dtype.
enum StoredBytes<'a> {
    F32(Vec<f32>, Vec<usize>),
    Quantized { q: Vec<i8>, scales: Vec<f32>, rows: usize, cols: usize },
    View(TensorView<'a>),
}

/// Rows of an f32 matrix read at a time when it is quantized as it is read (16 MiB of f32).
const QUANTIZE_CHUNK_BYTES: usize = 16 << 20;

/// Reads an f32 matrix [rows, cols] (little-endian, `rows * cols * 4` bytes at the reader's
/// position) `chunk_rows` rows at a time, each row quantized as [`Int8Matrix::quantize`] does
/// ([`quantize_row`]): the int8 values and the per-row scales, never the whole f32 matrix. A
/// non-finite value is named by its element index.
fn read_quantized_rows(
    reader: &mut impl std::io::Read,
    rows: usize,
    cols: usize,
    chunk_rows: usize,
) -> std::result::Result<(Vec<i8>, Vec<f32>), QuantizeReadError> {
    let chunk_rows = chunk_rows.clamp(1, rows.max(1));
    let mut q = vec![0i8; rows * cols];
    let mut scales = Vec::with_capacity(rows);
    let mut buf = vec![0f32; chunk_rows * cols];
    let mut done = 0;
    while done < rows {
        let n = chunk_rows.min(rows - done);
        let chunk = &mut buf[..n * cols];
        // SAFETY: the f32 buffer viewed as its bytes (any bit pattern is a valid f32)
        let bytes = unsafe { std::slice::from_raw_parts_mut(chunk.as_mut_ptr().cast::<u8>(), chunk.len() * 4) };
        reader.read_exact(bytes).map_err(QuantizeReadError::Io)?;
        if let Some(i) = chunk.iter().position(|v| !v.is_finite()) {
            return Err(QuantizeReadError::NonFinite { element: done * cols + i, value: chunk[i] });
        }
        let out = &mut q[done * cols..(done + n) * cols];
        scales.extend(chunk.chunks_exact(cols).zip(out.chunks_exact_mut(cols)).map(|(r, o)| quantize_row(r, o)));
        done += n;
    }
    Ok((q, scales))
}

/// Why [`read_quantized_rows`] stopped.
#[derive(Debug)]
enum QuantizeReadError {
    Io(std::io::Error),
    NonFinite { element: usize, value: f32 },
}

/// Calls `f` on every tensor of a safetensors file in storage order, reading each one's bytes
/// by itself (header checked as `safetensors` does: offsets contiguous, within the file, and
/// matching each tensor's dtype and shape). An f32 matrix that `quantize` names comes as int8,
/// quantized row by row while it is read ([`read_quantized_rows`]).
fn for_each_stored_tensor(
    path: &Path,
    wanted: &dyn Fn(&str) -> bool,
    quantize: &dyn Fn(&str) -> bool,
    mut f: impl FnMut(String, StoredBytes) -> Result<()>,
) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let bad = |why: String| Error::Weights { path: path.to_path_buf(), why };
    let unreadable = |e: &dyn std::fmt::Display| unreadable(path, e);
    let StoredHeader { mut file, file_len, header_len: n, entries } = read_header(path)?;
    let mut infos = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if name != "__metadata__" {
            let info: safetensors::tensor::TensorInfo =
                serde_json::from_value(value).map_err(|e| unreadable(&format!("tensor `{name}`: {e}")))?;
            infos.push((name, info));
        }
    }
    infos.sort_by_key(|(_, info)| info.data_offsets);
    let data_len = file_len - 8 - n;
    // the last tensor's end says how long the file must be
    let needed = infos.iter().map(|(_, info)| info.data_offsets.1 as u64).max().unwrap_or(0);
    if needed > data_len {
        return Err(bad(format!(
            "truncated: the header needs {} bytes, the file has {file_len} ({} missing)",
            8 + n + needed,
            needed - data_len
        )));
    }
    let mut end = 0;
    // bytes of tensors read since freed memory was last given back
    let mut since_release = 0;
    for (name, info) in infos {
        let (start, stop) = info.data_offsets;
        if start != end || stop < start || stop as u64 > data_len {
            return Err(unreadable(&format!("tensor `{name}`: data offsets {start}..{stop} (expected from {end})")));
        }
        end = stop;
        if !wanted(&name) {
            continue;
        }
        file.seek(SeekFrom::Start(8 + n + start as u64)).map_err(|e| Error::io(path, e))?;
        // checked: a hostile shape must not size an allocation (the byte range is within the file)
        let elements = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let fits = elements.and_then(|e| e.checked_mul(4)) == Some(stop - start);
        let little_f32 = info.dtype == safetensors::Dtype::F32 && fits && cfg!(target_endian = "little");
        if let (true, &[rows, cols]) = (little_f32 && quantize(&name), &info.shape[..]) {
            if rows > 0 && cols > 0 {
                let chunk_rows = QUANTIZE_CHUNK_BYTES / (4 * cols);
                let (q, scales) = read_quantized_rows(&mut file, rows, cols, chunk_rows).map_err(|e| match e {
                    QuantizeReadError::Io(e) => Error::io(path, e),
                    QuantizeReadError::NonFinite { element, value } => {
                        bad(format!("tensor `{name}`: element {element} is {value}; weights must be finite"))
                    }
                })?;
                f(name, StoredBytes::Quantized { q, scales, rows, cols })?;
                since_release = release_freed_memory(since_release + stop - start);
                continue;
            }
        }
        if little_f32 {
            let elements = (stop - start) / 4;
            // straight into the tensor's own buffer: a big table is never held twice
            let mut values = vec![0f32; elements];
            // SAFETY: the f32 buffer viewed as its bytes (any bit pattern is a valid f32)
            let bytes = unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), elements * 4) };
            file.read_exact(bytes).map_err(|e| Error::io(path, e))?;
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("tensor `{name}`: element {i} is {}; weights must be finite", values[i])));
            }
            f(name, StoredBytes::F32(values, info.shape))?;
            since_release = release_freed_memory(since_release + stop - start);
            continue;
        }
        let mut bytes = vec![0u8; stop - start];
        file.read_exact(&mut bytes).map_err(|e| Error::io(path, e))?;
        let view = TensorView::new(info.dtype, info.shape, &bytes).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        f(name, StoredBytes::View(view))?;
        drop(bytes);
        since_release = release_freed_memory(since_release + stop - start);
    }
    if end as u64 != data_len {
        return Err(unreadable(&format!("{} bytes of tensor data, the header accounts for {end}", data_len)));
    }
    Ok(())
}

/// Suffix of the per-row scales `<name>_scale` \[rows\] of an int8 matrix `<name>`.
pub const INT8_SCALE_SUFFIX: &str = "_scale";

/// Reads a safetensors file into a name -> tensor map (int8 matrices dequantized).
pub fn read_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    Ok(read_weights_file(path, device)?.0)
}

/// One stored tensor: floating point, or an int8 matrix with its per-row scales.
pub enum Stored {
    Float(Tensor),
    Int8 { q: Vec<i8>, scales: Vec<f32>, rows: usize, cols: usize },
}

impl Stored {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Stored::Float(t) => t.dims().to_vec(),
            Stored::Int8 { rows, cols, .. } => vec![*rows, *cols],
        }
    }

    /// As a tensor (an int8 matrix dequantized: `scale * q`, exactly what
    /// [`Int8Matrix::quantize`] turns back into the stored values).
    pub fn into_tensor(self, device: &Device) -> Result<Tensor> {
        match self {
            Stored::Float(t) => Ok(t),
            Stored::Int8 { q, scales, rows, cols } => {
                let w = Int8Matrix::from_quantized(&q, scales, rows, cols).dequantize();
                Ok(Tensor::from_vec(w, (rows, cols), device)?)
            }
        }
    }
}

/// Reads a safetensors file; int8 matrices come back dequantized (`scale * q`, exactly what
/// [`Int8Matrix::quantize`] turns back into the stored values) and the precision says so.
pub fn read_weights_file(path: &Path, device: &Device) -> Result<(HashMap<String, Tensor>, Precision)> {
    let mut tensors = HashMap::new();
    let precision = stream_weights_file(path, device, &|_| true, &|_| false, &mut |name, stored| {
        tensors.insert(name, stored.into_tensor(device)?);
        Ok(())
    })?;
    Ok((tensors, precision))
}

/// Gives the pages of freed buffers back to the system once `bytes` of tensors were read and
/// consumed since the last time (64 MiB: rarely enough that re-faulting the pages costs little);
/// returns the bytes read since. The allocator keeps freed memory for reuse, and tensors of
/// mixed sizes read one after another (4 and 16 MiB at NLLB-600M's shapes) leave it scattered
/// through the heap, resident and never used again: ~100 MiB once such a model is loaded
/// (measured with `malloc_stats`: 1.42 GB in use of 1.58 GB held).
fn release_freed_memory(bytes: usize) -> usize {
    if bytes < 64 << 20 {
        return bytes;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    0
}

/// Hands the tensors of a safetensors file that `wanted` accepts to `take` one at a time, so
/// that loading never holds more than one stored tensor besides what `take` keeps: float
/// tensors in file order, then the int8 matrices with their scales `<name>_scale`. The f32
/// matrices that `quantize` names come as [`Stored::Int8`], quantized row by row as they are
/// read (what [`Int8Matrix::quantize`] gives), so an int8 model loaded from f32 weights never
/// holds a whole f32 matrix (NLLB's 1 GB embedding table).
pub fn stream_weights_file(
    path: &Path,
    device: &Device,
    wanted: &dyn Fn(&str) -> bool,
    quantize: &dyn Fn(&str) -> bool,
    take: &mut dyn FnMut(String, Stored) -> Result<()>,
) -> Result<Precision> {
    let bad = |why: String| Error::Weights { path: path.to_path_buf(), why };
    let mut int8 = Vec::new();
    let mut scales: HashMap<String, Tensor> = HashMap::new();
    let wanted_or_scale = |name: &str| wanted(name) || name.strip_suffix(INT8_SCALE_SUFFIX).is_some_and(wanted);
    for_each_stored_tensor(path, &wanted_or_scale, quantize, |name, stored| {
        let view = match stored {
            StoredBytes::Quantized { q, scales, rows, cols } => {
                return take(name, Stored::Int8 { q, scales, rows, cols })
            }
            StoredBytes::F32(values, shape) => {
                let t = Tensor::from_vec(values, shape, device)?;
                if name.ends_with(INT8_SCALE_SUFFIX) {
                    scales.insert(name, t);
                    return Ok(());
                }
                return take(name, Stored::Float(t));
            }
            StoredBytes::View(view) => view,
        };
        if view.dtype() == safetensors::Dtype::I8 {
            int8.push((name, view.shape().to_vec(), view.data().iter().map(|&b| b as i8).collect::<Vec<i8>>()));
        } else {
            let t = view.load(device).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            if !t.dtype().is_float() {
                return Err(bad(format!(
                    "tensor `{name}` is {:?}; weights are floating point (or int8 matrices)",
                    view.dtype()
                )));
            }
            // NaN and infinities survive a sum
            if !t.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?.is_finite() {
                return Err(bad(format!("tensor `{name}` holds NaN or infinite values; weights must be finite")));
            }
            match name.ends_with(INT8_SCALE_SUFFIX) {
                // held until the matrices are read (a scale of no int8 matrix goes on as a tensor)
                true => drop(scales.insert(name, t)),
                false => take(name, Stored::Float(t))?,
            }
        }
        Ok(())
    })?;
    let precision = if int8.is_empty() { Precision::Float } else { Precision::Int8 };
    for (name, shape, q) in int8 {
        let &[rows, cols] = &shape[..] else {
            return Err(bad(format!("int8 tensor `{name}` has shape {shape:?}; only matrices are stored in int8")));
        };
        let scale_name = format!("{name}{INT8_SCALE_SUFFIX}");
        let s = scales
            .remove(&scale_name)
            .ok_or_else(|| bad(format!("int8 tensor `{name}` has no scales `{scale_name}`")))?;
        if s.dims() != [rows] {
            return Err(bad(format!("`{scale_name}` has shape {:?}, `{name}` needs [{rows}]", s.dims())));
        }
        let scales = s.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        take(name, Stored::Int8 { q, scales, rows, cols })?;
    }
    // a scale whose matrix this call does not want belongs to that matrix's call; the rest
    // are tensors of their own
    let own = |n: &str| wanted(n) && n.strip_suffix(INT8_SCALE_SUFFIX).is_none_or(wanted);
    for (name, t) in scales.into_iter().filter(|(n, _)| own(n)) {
        take(name, Stored::Float(t))?;
    }
    Ok(precision)
}

/// Writes `tensors` with every matrix named `*weight` in int8 (per-row scales), learned
/// positions and the rest in f32; returns (matrices quantized, tensors kept in f32).
pub fn write_int8(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<(usize, usize)> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut buffers: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let (mut quantized, mut kept) = (0, 0);
    for name in names {
        let t = tensors[name].to_dtype(DType::F32)?;
        let f32_bytes = |t: &Tensor| -> Result<Vec<u8>> {
            Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect())
        };
        match t.dims() {
            // the matrices inference runs in int8 (a position table or T5's position bias stays f32)
            &[n, k]
                if name.ends_with("weight") && !name.contains("embed_positions") && !name.contains("relative_bias") =>
            {
                let q = Int8Matrix::quantize(&t.flatten_all()?.to_vec1::<f32>()?, n, k);
                let (values, scales) = q.unpack();
                buffers.push((
                    name.clone(),
                    safetensors::Dtype::I8,
                    vec![n, k],
                    values.iter().map(|&v| v as u8).collect(),
                ));
                let scales = Tensor::from_vec(scales, n, &Device::Cpu)?;
                buffers.push((
                    format!("{name}{INT8_SCALE_SUFFIX}"),
                    safetensors::Dtype::F32,
                    vec![n],
                    f32_bytes(&scales)?,
                ));
                quantized += 1;
            }
            dims => {
                buffers.push((name.clone(), safetensors::Dtype::F32, dims.to_vec(), f32_bytes(&t)?));
                kept += 1;
            }
        }
    }
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, data)| Ok((name.clone(), TensorView::new(*dtype, shape.clone(), data)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::Weights { path: path.to_path_buf(), why: e.to_string() })?;
    let metadata =
        Some(HashMap::from([("format".to_string(), "pt".to_string()), ("transduce".to_string(), "int8".to_string())]));
    safetensors::serialize_to_file(views, metadata, path)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), why: e.to_string() })?;
    Ok((quantized, kept))
}

/// Loads a model for inference (weights laid out for decoding) from a checked safetensors file.
/// A file written in int8 loads as an int8 model.
pub fn load_model(config: &ModelConfig, path: &Path, dtype: DType, device: &Device) -> Result<Seq2Seq> {
    let (tensors, precision) = read_weights_file(path, device)?;
    check_tensors(config, &tensors, path)?;
    let mut model = model_from_tensors(config, tensors, dtype, device)?;
    if precision == Precision::Int8 {
        model.quantize_int8()?;
    }
    Ok(model)
}

/// An inference model over checked tensors (named as [`parameter_shapes`] lists them).
pub fn model_from_tensors(
    config: &ModelConfig,
    tensors: HashMap<String, Tensor>,
    dtype: DType,
    device: &Device,
) -> Result<Seq2Seq> {
    let tensors = tensors.into_iter().map(|(n, t)| Ok((n, t.to_dtype(dtype)?))).collect::<candle_core::Result<_>>()?;
    let mut model = Seq2Seq::new(config, VarBuilder::from_tensors(tensors, dtype, device))?;
    model.prepare_inference()?;
    Ok(model)
}

/// A trainable model: its parameters live in `varmap`.
pub struct TrainableModel {
    pub model: Seq2Seq,
    pub varmap: VarMap,
}

impl TrainableModel {
    /// Fresh parameters drawn from `seed`.
    pub fn init(config: &ModelConfig, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let model = Seq2Seq::new(config, SeededInit::var_builder(&varmap, seed, dtype, device))?;
        Ok(TrainableModel { model, varmap })
    }

    /// Parameters read from a checked safetensors file.
    pub fn load(config: &ModelConfig, path: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let tensors = read_safetensors(path, device)?;
        check_tensors(config, &tensors, path)?;
        Self::from_tensors(config, &tensors, dtype, device)
    }

    /// Parameters set to `tensors` (checked against `config`, e.g. by
    /// [`crate::model_dir::ModelDir::tensors`]).
    pub fn from_tensors(
        config: &ModelConfig,
        tensors: &HashMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let trainable = Self::init(config, 0, dtype, device)?;
        for (name, var) in trainable.varmap.data().lock().expect("varmap lock").iter() {
            let Some(t) = tensors.get(name) else {
                return Err(Error::Input(format!("no tensor for parameter `{name}`")));
            };
            var.set(&t.to_dtype(dtype)?)?;
        }
        Ok(trainable)
    }

    /// Writes all parameters (one entry per tied tensor) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.varmap.save(path).map_err(|e| Error::Weights { path: path.to_path_buf(), why: e.to_string() })
    }

    /// Parameters sorted by name, for deterministic optimizer and clipping order.
    pub fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut vars: Vec<_> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    pub fn parameter_count(&self) -> usize {
        self.named_vars().iter().map(|(_, v)| v.elem_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [rows, cols] values of both signs, one row of zeros, row magnitudes far apart.
    fn matrix(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| match i / cols {
                2 => 0.0,
                r => ((i * 37 % 19) as f32 - 9.0) * 0.013 * (r + 1) as f32,
            })
            .collect()
    }

    fn as_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn rows_quantized_as_read_equal_the_whole_matrix_quantized_in_any_chunks() {
        let (rows, cols) = (10, 6);
        let w = matrix(rows, cols);
        let whole = Int8Matrix::quantize(&w, rows, cols).unpack();
        for chunk_rows in [0, 1, 3, 7, 10, 100] {
            let got = read_quantized_rows(&mut &as_bytes(&w)[..], rows, cols, chunk_rows).unwrap();
            assert_eq!(got, whole, "chunks of {chunk_rows} rows");
        }
    }

    #[test]
    fn a_non_finite_weight_read_as_quantized_is_named_by_its_element() {
        let (rows, cols) = (10, 6);
        let mut w = matrix(rows, cols);
        w[23] = f32::NAN;
        let e = read_quantized_rows(&mut &as_bytes(&w)[..], rows, cols, 3).unwrap_err();
        assert!(matches!(e, QuantizeReadError::NonFinite { element: 23, .. }), "{e:?}");
        let short = as_bytes(&w[..20]);
        assert!(matches!(read_quantized_rows(&mut &short[..], rows, cols, 3), Err(QuantizeReadError::Io(_))));
    }

    #[test]
    fn streamed_matrices_named_for_quantization_come_as_int8_the_rest_as_stored() {
        let dir = std::env::temp_dir().join(format!("transduce-quantize-as-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.safetensors");
        let (rows, cols) = (10, 6);
        let w = matrix(rows, cols);
        let mut tensors = HashMap::new();
        tensors.insert("a.weight".to_string(), Tensor::from_vec(w.clone(), (rows, cols), &Device::Cpu).unwrap());
        tensors.insert("a.bias".to_string(), Tensor::from_vec(w[..cols].to_vec(), cols, &Device::Cpu).unwrap());
        candle_core::safetensors::save(&tensors, &path).unwrap();

        let mut got = HashMap::new();
        let quantize = |name: &str| name.ends_with(".weight") || name.ends_with(".bias");
        let precision = stream_weights_file(&path, &Device::Cpu, &|_| true, &quantize, &mut |name, stored| {
            got.insert(name, stored);
            Ok(())
        })
        .unwrap();
        // stored in f32: quantizing as read does not make the file int8
        assert_eq!(precision, Precision::Float);
        match &got["a.weight"] {
            Stored::Int8 { q, scales, rows: r, cols: c } => {
                assert_eq!((*r, *c), (rows, cols));
                assert_eq!((q.clone(), scales.clone()), Int8Matrix::quantize(&w, rows, cols).unpack());
            }
            Stored::Float(_) => panic!("a.weight was named for quantization"),
        }
        // a vector is never quantized
        assert!(matches!(&got["a.bias"], Stored::Float(t) if t.dims() == [cols]));

        tensors.insert("a.weight".to_string(), (tensors["a.weight"].clone() / 0.0).unwrap());
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let e = stream_weights_file(&path, &Device::Cpu, &|_| true, &quantize, &mut |_, _| Ok(())).unwrap_err();
        assert!(
            e.to_string().contains("tensor `a.weight`: element 0 is") && e.to_string().contains("model.safetensors"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
