//! Every fuzz target of `tests/fuzz/targets.rs` for a short bounded time: first the committed
//! corpus (`tests/fuzz/corpus/<target>/`: seeds and every input a fuzzing run found), then
//! random mutations of it. A panic fails the test and saves the input under
//! `target/fuzz-failures/`; an input that runs longer than 20 s aborts the process, also saving it.
//!
//! `TRANSDUCE_FUZZ_SECONDS` sets the mutation time per target (3 s by default, as CI runs it);
//! `TRANSDUCE_FUZZ_TARGET` runs one target alone.
//! The long coverage-guided runs are libFuzzer's: `tools/fuzz.sh`.

#[path = "fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The seeds of `target`: the committed corpus, then the fixtures a target starts from.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.sort();
    files.extend(fixture_seeds(target).into_iter().map(|p| root.join("tests/fixtures").join(p)));
    files.into_iter().map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())).collect()
}

/// Fixture files that are seeds of `target` (kept where they are, listed in
/// `tests/fuzz/seeds_from_fixtures.txt`).
fn fixture_seeds(target: &str) -> Vec<String> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds_from_fixtures.txt");
    let text = std::fs::read_to_string(&list).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(' '))
        .filter(|(t, _)| *t == target)
        .map(|(_, path)| path.trim().to_string())
        .collect()
}

/// One mutation of `input` (bit flips, byte runs, numbers at the edges, splices with `other`).
fn mutate(input: &[u8], other: &[u8], next: &mut impl FnMut(usize) -> usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + next(4) {
        let len = out.len();
        match next(7) {
            0 if len > 0 => {
                let at = next(len);
                out[at] ^= 1 << next(8);
            }
            1 if len > 0 => {
                let at = next(len);
                out[at] = [0, 0xff, b'"', b'<', b'\n', b'\t', b'{', b'9'][next(8)];
            }
            2 if len > 0 => {
                let (at, n) = (next(len), 1 + next(64));
                out.drain(at..(at + n).min(len));
            }
            3 if len > 0 => {
                let (at, n) = (next(len), 1 + next(64));
                let run: Vec<u8> = out[at..(at + n).min(len)].to_vec();
                let to = next(len + 1);
                out.splice(to..to, run.iter().copied().cycle().take(run.len() * (1 + next(8))));
            }
            4 => {
                let edges: [u64; 6] = [0, 1, u32::MAX as u64, u64::MAX, 1 << 40, i64::MAX as u64];
                let bytes = edges[next(edges.len())].to_le_bytes();
                let at = next(len.saturating_sub(8) + 1);
                for (i, b) in bytes.iter().enumerate().take(len.saturating_sub(at)) {
                    out[at + i] = *b;
                }
            }
            5 if !other.is_empty() => {
                let (at, from) = (next(len + 1), next(other.len()));
                let n = next(other.len() - from + 1);
                out.splice(at..at, other[from..from + n].iter().copied());
            }
            _ => {
                let digits = format!("{}", [0i64, -1, 4096, 1 << 31, i64::MAX][next(5)]);
                let at = next(len + 1);
                out.splice(at..at, digits.bytes());
            }
        }
    }
    out
}

fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("{target}-{hash:016x}"));
    std::fs::write(&path, input).unwrap();
    path
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations() {
    let seconds: f64 = std::env::var("TRANSDUCE_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    // the watchdog: an input running longer than 20 s is a hang
    let current: Arc<Mutex<(String, Vec<u8>)>> = Arc::default();
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    let clock = Instant::now();
    {
        let (current, started_ms) = (current.clone(), started_ms.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let since = started_ms.load(Ordering::SeqCst);
            if since != u64::MAX && clock.elapsed().as_millis() as u64 > since + 20_000 {
                let (target, input) = current.lock().unwrap().clone();
                let saved = save_failure(&target, &input);
                eprintln!("{target}: an input ran over 20 s (a hang); saved as {}", saved.display());
                std::process::abort();
            }
        });
    }
    let mut report = Vec::new();
    // TRANSDUCE_FUZZ_TARGET=name runs that target alone
    let chosen: Vec<&targets::Target> = match std::env::var("TRANSDUCE_FUZZ_TARGET") {
        Ok(name) => {
            vec![targets::target(&name).unwrap_or_else(|| panic!("TRANSDUCE_FUZZ_TARGET={name}: no such target"))]
        }
        Err(_) => targets::TARGETS.iter().collect(),
    };
    for target in chosen {
        let seeds = corpus(target.name);
        assert!(!seeds.is_empty(), "{}: no seeds", target.name);
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ target.name.len() as u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        let run = |input: &[u8], what: &str| {
            *current.lock().unwrap() = (target.name.to_string(), input.to_vec());
            started_ms.store(clock.elapsed().as_millis() as u64, Ordering::SeqCst);
            let outcome = std::panic::catch_unwind(|| (target.run)(input));
            started_ms.store(u64::MAX, Ordering::SeqCst);
            if outcome.is_err() {
                let saved = save_failure(target.name, input);
                panic!("{}: {what} panicked; the input is saved as {}", target.name, saved.display());
            }
        };
        for (name, seed) in &seeds {
            run(seed, name);
        }
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        let mut executions = 0usize;
        while Instant::now() < until {
            let (a, b) = (next(seeds.len()), next(seeds.len()));
            let input = mutate(&seeds[a].1, &seeds[b].1, &mut next);
            run(&input, "a mutation");
            executions += 1;
        }
        report.push(format!("{} {} seeds + {executions} mutations", target.name, seeds.len()));
    }
    eprintln!("{}", report.join("\n"));
}

/// The inputs fuzzing found that made `tokenizers` panic (a corrupt precompiled normaliser, at
/// load and at encoding) are errors naming the file.
#[test]
fn found_tokenizer_inputs_are_errors_naming_the_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/tokenizer_json");
    let dir = std::env::temp_dir().join(format!("transduce-fuzz-regressions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["regression-precompiled-base64-panics", "regression-precompiled-trie-encode-panics"] {
        let path = dir.join("tokenizer.json");
        std::fs::copy(root.join(name), &path).unwrap();
        let outcome = transduce::text::SubwordTokenizer::load_pretrained(&path).and_then(|t| t.encode("le chat"));
        let error = format!("{:#}", outcome.expect_err(name));
        eprintln!("{name}: {error}");
        assert!(error.contains("tokenizer.json"), "{name}: {error}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
