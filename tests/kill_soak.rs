//! `transduce train` killed with SIGKILL again and again (during updates, during validation and
//! while a checkpoint is being written) and resumed each time ends with the weights, optimizer
//! state and `metrics.jsonl` of a run that was never interrupted; no partial checkpoint is ever
//! listed or loaded.
//!
//! `TRANSDUCE_SOAK_KILLS` sets how many kills (4 by default, as CI runs it; `tools/reliability.sh`
//! runs 20), `TRANSDUCE_SOAK_SEED` the moments chosen.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const UPDATES: usize = 30;
const VALID_EVERY: usize = 5;

fn train_args(src: &str, tgt: &str, valid: (&str, &str), out: &Path, keep_last: &str) -> Vec<String> {
    [
        "train",
        "--src",
        src,
        "--tgt",
        tgt,
        "--valid-src",
        valid.0,
        "--valid-tgt",
        valid.1,
        "--out",
        out.to_str().unwrap(),
        "--preset",
        "tiny",
        "--vocab-size",
        "300",
        "--max-tokens",
        "400",
        "--max-updates",
        &UPDATES.to_string(),
        "--valid-every",
        &VALID_EVERY.to_string(),
        "--log-every",
        "1",
        "--keep-last",
        keep_last,
        "--seed",
        "5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn spawn(args: &[String], resume: bool) -> Child {
    Command::new(env!("CARGO_BIN_EXE_transduce"))
        .args(args)
        .args(if resume { &["--resume"][..] } else { &[] })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the transduce binary runs")
}

/// The moment a kill aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// A random delay after the start: mostly updates (or start-up).
    Random,
    /// A validation run: the train record of a validation update is the last line of the log.
    Validation,
    /// A checkpoint being written: a `.partial` directory exists.
    CheckpointWrite,
}

fn partial_exists(out: &Path) -> bool {
    std::fs::read_dir(out.join("checkpoints"))
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().extension().is_some_and(|x| x == "partial")))
        .unwrap_or(false)
}

fn validating(out: &Path) -> bool {
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap_or_default();
    let Some(last) = text.lines().last() else { return false };
    let Ok(record) = serde_json::from_str::<serde_json::Value>(last) else { return false };
    record["kind"] == "train" && record["update"].as_u64().is_some_and(|u| (u as usize).is_multiple_of(VALID_EVERY))
}

/// Kills `child` at `moment`; whether it was still running when killed.
fn kill_at(child: &mut Child, out: &Path, moment: Moment, delay: Duration) -> bool {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = match moment {
            Moment::Random => started.elapsed() >= delay,
            Moment::Validation => validating(out),
            Moment::CheckpointWrite => partial_exists(out),
        };
        if now || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    true
}

/// The records of `metrics.jsonl` without their wall-clock times.
fn records(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let mut r: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("metrics.jsonl line {l:?}: {e}"));
            r.as_object_mut().unwrap().remove("elapsed_s");
            r
        })
        .collect()
}

/// Every finished checkpoint of `out` is byte for byte the reference run's of the same update.
fn checkpoints_match(out: &Path, reference: &Path) -> usize {
    let dir = transduce::ModelDir::open(out).map(|d| d.checkpoints().unwrap()).unwrap_or_default();
    for checkpoint in &dir {
        let name = checkpoint.path.file_name().unwrap();
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let (a, b) = (checkpoint.path.join(file), reference.join("checkpoints").join(name).join(file));
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{} differs from the reference",
                a.display()
            );
        }
    }
    dir.len()
}

#[test]
fn sigkill_at_any_moment_then_resume_gives_the_uninterrupted_run() {
    let kills: usize = std::env::var("TRANSDUCE_SOAK_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(4);
    let mut seed: u64 = std::env::var("TRANSDUCE_SOAK_SEED").ok().and_then(|k| k.parse().ok()).unwrap_or(1);
    let dir = common::TempDir::new("kill-soak");
    let (src, tgt) = common::varied_corpus(&dir.0, "train", 1500);
    let valid = common::varied_corpus(&dir.0, "valid", 200);
    let valid = (valid.0.as_str(), valid.1.as_str());

    let reference = dir.0.join("reference");
    let started = Instant::now();
    let status = spawn(&train_args(&src, &tgt, valid, &reference, "1000"), false).wait().unwrap();
    assert!(status.success());
    let run_time = started.elapsed();

    let out: PathBuf = dir.0.join("killed");
    let args = train_args(&src, &tgt, valid, &out, "2");
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let moments = [Moment::Random, Moment::Validation, Moment::CheckpointWrite];
    let (mut killed, mut attempts, mut hit) = (0, 0, [0usize; 3]);
    while killed < kills && attempts < kills * 4 {
        attempts += 1;
        let which = killed % moments.len();
        let delay = Duration::from_millis(next(run_time.as_millis() as u64 + 1));
        let mut child = spawn(&args, attempts > 1);
        if kill_at(&mut child, &out, moments[which], delay) {
            killed += 1;
            hit[which] += 1;
            // what the kill left: only finished checkpoints are listed, each the reference's
            checkpoints_match(&out, &reference);
        } else {
            // it finished first: train again from scratch so the kills still land mid-run
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
    assert_eq!(killed, kills, "{attempts} attempts");
    let status = spawn(&args, true).wait().unwrap();
    assert!(status.success());
    eprintln!(
        "{killed} kills (random moment {}, validation {}, checkpoint write {}) in {attempts} attempts; seed {}",
        hit[0],
        hit[1],
        hit[2],
        std::env::var("TRANSDUCE_SOAK_SEED").unwrap_or_else(|_| "1".into())
    );

    assert!(checkpoints_match(&out, &reference) >= 1);
    let last = format!("checkpoints/update-{UPDATES:09}");
    for file in
        ["model.safetensors".to_string(), format!("{last}/model.safetensors"), format!("{last}/optimizer.safetensors")]
    {
        assert!(
            std::fs::read(out.join(&file)).unwrap() == std::fs::read(reference.join(&file)).unwrap(),
            "{file} differs"
        );
    }
    // each update logged once, with the uninterrupted run's values
    let (got, want) = (records(&out), records(&reference));
    assert_eq!(got.len(), UPDATES + UPDATES / VALID_EVERY);
    assert_eq!(got, want);
}
