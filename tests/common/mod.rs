//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod hf;
pub mod server;

use candle_core::{DType, Device, Tensor};
use transduce::model::config::{Dropout, ModelConfig, NormPlacement, Positions, Preset, Tying, Vocab};
use transduce::model::TrainableModel;

/// A tiny model with random weights: vocab 23, d 16, 2 heads, 2+2 layers, no dropout.
pub fn tiny_config(placement: NormPlacement) -> ModelConfig {
    let mut c = ModelConfig::preset(Preset::Tiny, 23);
    c.d_model = 16;
    c.heads = 2;
    c.ffn_dim = 24;
    c.dropout = Dropout::uniform(0.0);
    c.norm_placement = placement;
    c.max_positions = 40;
    c
}

/// The same with separate vocabularies, learned positions and no tying: the other branches.
pub fn tiny_config_untied(placement: NormPlacement) -> ModelConfig {
    let mut c = tiny_config(placement);
    c.vocab = Vocab::Separate { source: 23, target: 19 };
    c.tying = Tying::None;
    c.positions = Positions::Learned;
    c
}

pub fn model(config: &ModelConfig, dtype: DType) -> TrainableModel {
    TrainableModel::init(config, 7, dtype, &Device::Cpu).unwrap()
}

pub fn ids(rows: &[&[u32]]) -> Tensor {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
}

pub fn ones_mask(b: usize, s: usize) -> Tensor {
    Tensor::ones((b, s), DType::U8, &Device::Cpu).unwrap()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// A scratch directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("transduce-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn write_gz(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.0.join(name);
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What an optional peer or data set is, and the switch that makes it required.
///
/// A test that needs something outside the repository asks [`optional`]: found, it runs;
/// missing, it says so and skips, unless the switch is set (`.ci/run` sets them), when it fails.
pub struct Requirement {
    pub what: &'static str,
    /// `TRANSDUCE_REQUIRE_<NAME>`
    pub switch: &'static str,
    /// How to provide it.
    pub hint: &'static str,
}

pub const SHARED: Requirement = Requirement {
    what: "../shared (Multi30k, the shared Marian model)",
    switch: "TRANSDUCE_REQUIRE_SHARED",
    hint: "set TRANSDUCE_SHARED to the shared directory",
};

pub const CT2: Requirement = Requirement {
    what: "a Python with ctranslate2 and sentencepiece",
    switch: "TRANSDUCE_REQUIRE_CT2",
    hint: "python3 -m venv .venv-ct2 && .venv-ct2/bin/pip install -r tools/requirements-ct2.txt",
};

pub const TRANSFORMERS: Requirement = Requirement {
    what: "a Python with transformers and torch",
    switch: "TRANSDUCE_REQUIRE_TRANSFORMERS",
    hint: "python3 -m venv .venv-hf && .venv-hf/bin/pip install -r tools/requirements-hf.txt (several GB)",
};

pub const BROWSER: Requirement =
    Requirement { what: "headless Chromium", switch: "TRANSDUCE_REQUIRE_BROWSER", hint: "apt-get install chromium" };

/// A headless-capable Chromium on the PATH, or `None` (and a skip message, or a failure under
/// TRANSDUCE_REQUIRE_BROWSER).
pub fn browser() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
    optional(&BROWSER, found)
}

/// `found`, or `None` with a message that the test is skipped; fails instead when the
/// requirement's switch is set.
pub fn optional<T>(req: &Requirement, found: Option<T>) -> Option<T> {
    if found.is_none() {
        assert!(
            std::env::var_os(req.switch).is_none(),
            "{} is required ({} is set) but missing: {}",
            req.what,
            req.switch,
            req.hint
        );
        eprintln!("skipped: no {} ({}; {} makes this a failure)", req.what, req.hint, req.switch);
    }
    found
}

/// The repository's root.
pub fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny Hugging Face Marian fixture (`tests/fixtures/hf_marian/tiny`).
pub fn tiny_hf() -> std::path::PathBuf {
    root().join("tests/fixtures/hf_marian/tiny")
}

/// The first `n` lines of the fixture corpus beside it (French-like lines of every length).
pub fn tiny_corpus(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(tiny_hf().join("../corpus.txt")).unwrap();
    let lines: Vec<String> = text.lines().take(n).map(str::to_string).collect();
    assert_eq!(lines.len(), n, "the fixture corpus is too short");
    lines
}

/// The team's shared directory (`TRANSDUCE_SHARED`, else `../shared` beside the repository),
/// when `relative` exists in it.
pub fn shared(relative: &str) -> Option<std::path::PathBuf> {
    let base =
        std::env::var_os("TRANSDUCE_SHARED").map(std::path::PathBuf::from).unwrap_or_else(|| root().join("../shared"));
    let path = base.join(relative);
    optional(&SHARED, path.exists().then_some(path))
}

/// The Multi30k directory (`TRANSDUCE_DATA`, else `data/multi30k` of the shared directory).
pub fn multi30k() -> Option<std::path::PathBuf> {
    match std::env::var_os("TRANSDUCE_DATA") {
        Some(dir) => Some(std::path::PathBuf::from(dir)),
        None => shared("data/multi30k/val.en.gz").map(|p| p.parent().expect("a file in a directory").to_path_buf()),
    }
}

/// Runs the `transduce` binary with `args` and `stdin`: (success, stdout, stderr).
pub fn transduce(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_transduce"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the transduce binary runs");
    // the command may fail before reading its input
    let _ = child.stdin.take().expect("piped").write_all(stdin);
    let out = child.wait_with_output().expect("the transduce binary ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Source and target words of the word-for-word corpus: each source word has one translation.
pub const SRC: [&str; 11] =
    ["le", "chat", "chien", "mange", "voit", "une", "pomme", "maison", "grand", "petit", "rouge"];
pub const TGT: [&str; 11] = ["the", "cat", "dog", "eats", "sees", "an", "apple", "house", "big", "small", "red"];

/// `n` random sentences of `words` (a range of lengths) and their word-for-word translations.
pub fn word_for_word(n: usize, words: std::ops::Range<usize>, seed: u64) -> Vec<(String, String)> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let idx: Vec<usize> = (0..rng.gen_range(words.clone())).map(|_| rng.gen_range(0..SRC.len())).collect();
            let join = |w: &[&str]| idx.iter().map(|&i| w[i]).collect::<Vec<_>>().join(" ");
            (join(&SRC), join(&TGT))
        })
        .collect()
}

/// `expected` entries of a fixture, checked before a test zips them with its own cases (a
/// fixture of the wrong length would otherwise pass silently).
pub fn fixture_len<T>(items: &[T], expected: usize, name: &str) {
    assert_eq!(items.len(), expected, "fixture {name}: {} entries, the test expects {expected}", items.len());
}

/// A parallel corpus of made-up words over a skewed alphabet with rare accented letters (so the
/// unigram trainer prunes characters and scores tie), from a fixed linear congruential generator.
pub fn varied_corpus(dir: &std::path::Path, name: &str, lines: usize) -> (String, String) {
    let alphabet: Vec<char> = "eeeeaaaiiinnnsssttrrlouémdcpvgbhfqàèùçêôûîœjkwxyz".chars().collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let (mut s, mut t) = (String::new(), String::new());
    for _ in 0..lines {
        for side in [&mut s, &mut t] {
            let words: Vec<String> = (0..2 + next(8))
                .map(|_| (0..1 + next(7)).map(|_| alphabet[next(alphabet.len()).min(next(alphabet.len()))]).collect())
                .collect();
            *side += &(words.join(" ") + "\n");
        }
    }
    let (sp, tp) = (dir.join(format!("{name}.fr")), dir.join(format!("{name}.en")));
    std::fs::write(&sp, s).unwrap();
    std::fs::write(&tp, t).unwrap();
    (sp.to_str().unwrap().into(), tp.to_str().unwrap().into())
}

/// The records of a model directory's `metrics.jsonl` of one kind (`train`, `valid`).
#[allow(dead_code)]
pub fn metrics_records(model: &std::path::Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(model.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == kind)
        .collect()
}
