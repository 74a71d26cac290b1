//! `transduce train`, `transduce average` and `transduce tokenize` from the command line.

mod common;

use std::path::{Path, PathBuf};

fn transduce(args: &[&str]) -> (bool, String) {
    let (ok, _, stderr) = common::transduce(args, b"");
    (ok, stderr)
}

fn corpus(dir: &Path) -> (String, String) {
    let words = [("chat", "cat"), ("chien", "dog"), ("voit", "sees"), ("le", "the"), ("rouge", "red")];
    let (mut s, mut t) = (String::new(), String::new());
    for i in 0..200usize {
        let idx: Vec<usize> = (0..(2 + i % 5)).map(|k| (i * 7 + k * 3) % words.len()).collect();
        s += &(idx.iter().map(|&j| words[j].0).collect::<Vec<_>>().join(" ") + "\n");
        t += &(idx.iter().map(|&j| words[j].1).collect::<Vec<_>>().join(" ") + "\n");
    }
    let (sp, tp) = (dir.join("train.fr"), dir.join("train.en"));
    std::fs::write(&sp, s).unwrap();
    std::fs::write(&tp, t).unwrap();
    (sp.to_str().unwrap().into(), tp.to_str().unwrap().into())
}

#[test]
fn trains_resumes_and_averages() {
    let dir: PathBuf = std::env::temp_dir().join(format!("transduce-cli-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (src, tgt) = corpus(&dir);
    let out = dir.join("model");
    let out_s = out.to_str().unwrap();
    let common = [
        "train",
        "--src",
        &src,
        "--tgt",
        &tgt,
        "--valid-src",
        &src,
        "--valid-tgt",
        &tgt,
        "--out",
        out_s,
        "--preset",
        "tiny",
        "--vocab-size",
        "30",
        "--max-tokens",
        "100",
        "--valid-every",
        "2",
        "--warmup",
        "2",
    ];
    let (ok, err) = transduce(&[&common[..], &["--max-updates", "4", "--src-lang", "fr", "--tgt-lang", "en"]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("stopped (MaxUpdates) after 4 updates"), "{err}");
    assert!(err.contains("last validation: loss"), "{err}");
    // the languages are recorded where `transduce serve` reads them
    let languages = transduce::ModelDir::open(&out).unwrap().languages().unwrap().unwrap();
    assert_eq!((languages.source.as_str(), languages.target.as_str()), ("fr", "en"));
    let (ok, err) = transduce(&[&common[..], &["--src-lang", "fr"]].concat());
    assert!(!ok && err.contains("--tgt-lang"), "{err}");
    // a fresh run never trains over another run's checkpoints, nor rewrites its options
    let recorded = std::fs::read(out.join("training.json")).unwrap();
    let (ok, err) = transduce(&[&common[..], &["--max-updates", "6"]].concat());
    assert!(!ok && err.contains("holds the checkpoints of a training run") && err.contains("--resume"), "{err}");
    assert_eq!(std::fs::read(out.join("training.json")).unwrap(), recorded, "training.json rewritten by a refused run");
    let (ok, err) = transduce(&[&common[..], &["--max-updates", "6", "--resume"]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("after 6 updates"), "{err}");
    let training: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    assert_eq!(training["max_updates"], 6);
    assert_eq!(training["preset"], "tiny");
    // the optimiser's defaults: decay 0.1 over the weight matrices
    assert_eq!(training["adam"]["weight_decay"], serde_json::json!(0.1), "{training}");
    assert_eq!(training["adam"]["weight_decay_scope"], serde_json::json!("matrices"), "{training}");

    // bad options are refused before any work, the flag or the file's key named
    let (ok, err) = transduce(&[&common[..], &["--keep-last", "0"]].concat());
    assert!(!ok && err.contains("--keep-last: must be at least 1"), "{err}");
    let toml = dir.join("bad.toml");
    std::fs::write(&toml, "[model]\nlayer = 2\n").unwrap();
    let (ok, err) = transduce(&[&common[..], &["--config", toml.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("bad.toml") && err.contains("layer"), "{err}");
    let (ok, err) = transduce(&["average", out_s, "--last", "0"]);
    assert!(!ok && err.contains("--last"), "{err}");

    let (ok, err) = transduce(&["average", out_s, "--last", "2"]);
    assert!(ok, "{err}");
    assert!(err.contains("averaged 2 checkpoints"), "{err}");

    // translate: one output line per input line, in order; an empty line stays empty
    let input = dir.join("input.fr");
    std::fs::write(&input, "le chat voit\n\nchien rouge\n").unwrap();
    let output = dir.join("output.en");
    let (ok, err) = transduce(&[
        "translate",
        "-m",
        out_s,
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--beam",
        "3",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<String> = std::fs::read_to_string(&output).unwrap().lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1], "");
    let (ok, err) = transduce(&["translate", "-m", dir.join("nope").to_str().unwrap()]);
    assert!(!ok && err.contains("not a model directory"), "{err}");

    // a TOML config: known keys are taken, unknown ones named
    let toml = dir.join("train.toml");
    std::fs::write(&toml, "lr = 0.001\nbogus_option = 3\n").unwrap();
    let (ok, err) = transduce(&[&common[..], &["--config", toml.to_str().unwrap()]].concat());
    assert!(!ok);
    assert!(err.contains("unknown field `bogus_option`"), "{err}");

    // architecture from the TOML file and the command line; optional fields too
    std::fs::write(&toml, "dropout = 0.2\n[model]\nd_model = 16\nencoder_layers = 1\n").unwrap();
    let shaped = dir.join("shaped");
    let mut args = common.to_vec();
    args[10] = shaped.to_str().unwrap();
    let (ok, err) = transduce(
        &[
            &args[..],
            &[
                "--config",
                toml.to_str().unwrap(),
                "--decoder-layers",
                "3",
                "--norm",
                "post",
                "--attention-dropout",
                "0.05",
                "--r-drop",
                "0.5",
                "--weight-decay",
                "0.05",
                "--weight-decay-scope",
                "all",
                "--max-updates",
                "1",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shaped.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (&config["d_model"], &config["encoder_layers"], &config["decoder_layers"]),
        (&serde_json::json!(16), &serde_json::json!(1), &serde_json::json!(3))
    );
    assert_eq!(
        (&config["norm_placement"], &config["final_norm"]),
        (&serde_json::json!("post"), &serde_json::json!("none"))
    );
    assert!((config["dropout"]["residual"].as_f64().unwrap() - 0.2).abs() < 1e-6, "{config}");
    assert!((config["dropout"]["attention"].as_f64().unwrap() - 0.05).abs() < 1e-6, "{config}");
    assert_eq!(config["dropout"]["ffn"], serde_json::json!(0.0), "by default: {config}");
    let training: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shaped.join("training.json")).unwrap()).unwrap();
    assert_eq!(training["r_drop"], serde_json::json!(0.5), "{training}");
    assert_eq!(training["adam"]["weight_decay"], serde_json::json!(0.05), "{training}");
    assert_eq!(training["adam"]["weight_decay_scope"], serde_json::json!("all"), "{training}");
    let (ok, err) = transduce(&[&args[..], &["--weight-decay=-0.1"]].concat());
    assert!(!ok && err.contains("--weight-decay: -0.1 is not a number >= 0"), "{err}");
    std::fs::write(&toml, "[model]\nwidth = 16\n").unwrap();
    let (ok, err) = transduce(&[&args[..], &["--config", toml.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("unknown field `width`"), "{err}");

    // misaligned files
    let short = dir.join("short.en");
    std::fs::write(&short, "one line\n").unwrap();
    let out2 = dir.join("model2");
    let (ok, err) = transduce(&[
        "train",
        "--src",
        &src,
        "--tgt",
        short.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--preset",
        "tiny",
        "--vocab-size",
        "30",
        "--max-updates",
        "2",
    ]);
    assert!(!ok);
    assert!(err.contains("train.fr has 200 lines but") && err.contains("short.en has 1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trains_from_a_tsv_file() {
    let dir: PathBuf = std::env::temp_dir().join(format!("transduce-cli-tsv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (src, tgt) = corpus(&dir);
    let (s, t) = (std::fs::read_to_string(src).unwrap(), std::fs::read_to_string(tgt).unwrap());
    let tsv: String = s.lines().zip(t.lines()).map(|(a, b)| format!("{a}\t{b}\n")).collect();
    let tsv_path = dir.join("train.tsv");
    std::fs::write(&tsv_path, tsv).unwrap();
    let out = dir.join("model");
    let tsv_s = tsv_path.to_str().unwrap();
    let args = [
        "train",
        "--tsv",
        tsv_s,
        "--valid-tsv",
        tsv_s,
        "--out",
        out.to_str().unwrap(),
        "--preset",
        "tiny",
        "--vocab-size",
        "30",
        "--max-tokens",
        "100",
        "--valid-every",
        "2",
        "--max-updates",
        "2",
    ];
    let (ok, err) = transduce(&args);
    assert!(ok, "{err}");
    assert!(err.contains("after 2 updates"), "{err}");
    let training: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    assert_eq!(training["train"]["tsv"], tsv_s);
    // --tsv excludes --src
    let (ok, err) = transduce(&[&args[..], &["--src", tsv_s]].concat());
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two runs from scratch with the same data, flags and seed write the same `tokenizer.json`
/// (for both subword models) and bit-identical weights, optimizer state and logged losses.
#[test]
fn the_same_seed_reproduces_tokenizer_weights_and_losses() {
    let dir = common::TempDir::new("cli-train-reproducible");
    let (src, tgt) = common::varied_corpus(&dir.0, "varied", 1500);
    for subword in ["unigram", "bpe"] {
        let run = |name: &str| {
            let out = dir.0.join(format!("{subword}-{name}"));
            let (ok, err) = transduce(&[
                "train",
                "--src",
                &src,
                "--tgt",
                &tgt,
                "--out",
                out.to_str().unwrap(),
                "--preset",
                "tiny",
                "--subword",
                subword,
                "--vocab-size",
                "300",
                "--max-tokens",
                "400",
                "--max-updates",
                "6",
                "--log-every",
                "1",
                "--seed",
                "11",
            ]);
            assert!(ok, "{err}");
            out
        };
        let (a, b) = (run("a"), run("b"));
        let files = [
            "tokenizer.json",
            "model.safetensors",
            "checkpoints/update-000000006/model.safetensors",
            "checkpoints/update-000000006/optimizer.safetensors",
        ];
        for file in files {
            let (x, y) = (std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap());
            assert!(x == y, "{subword}: {file} differs between two runs with the same seed");
        }
        let losses = |dir: &Path| -> Vec<serde_json::Value> {
            let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap().get("loss").cloned())
                .collect()
        };
        assert_eq!(losses(&a).len(), 6, "{subword}: one logged loss per update");
        assert_eq!(losses(&a), losses(&b), "{subword}");
    }
}

/// The learning rate of every update, from `metrics.jsonl` (logged at every update).
fn logged_rates(model: &Path) -> Vec<f64> {
    common::metrics_records(model, "train").iter().map(|r| r["lr"].as_f64().unwrap()).collect()
}

#[test]
fn the_learning_rate_follows_the_schedule_over_the_budget() {
    let dir = common::TempDir::new("cli-train-schedule");
    let (src, tgt) = corpus(&dir.0);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.0.join(name);
        let base = ["train", "--src", &src, "--tgt", &tgt, "--out", out.to_str().unwrap(), "--preset", "tiny"];
        let rest = ["--vocab-size", "30", "--max-tokens", "100", "--lr", "1e-3", "--warmup", "2", "--log-every", "1"];
        let (ok, err) = transduce(&[&base[..], &rest[..], extra].concat());
        (ok, err, out)
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.max(1e-12);

    // by default a budget gets a cosine: warm-up, then down to 5 % at the last update
    let (ok, err, out) = run("cosine", &["--max-updates", "12"]);
    assert!(ok, "{err}");
    let rates = logged_rates(&out);
    assert_eq!(rates.len(), 12);
    assert!(close(rates[0], 5e-4) && close(rates[1], 1e-3), "{rates:?}");
    assert!(close(rates[6], 1e-3 * (0.05 + 0.95 * 0.5)), "halfway: {rates:?}");
    assert!(close(rates[11], 5e-5), "the floor at the end: {rates:?}");
    assert!(rates[1..].windows(2).all(|w| w[1] < w[0]), "{rates:?}");

    // the floor is an option
    let (ok, err, out) = run("floor", &["--max-updates", "12", "--lr-floor", "0.2"]);
    assert!(ok, "{err}");
    assert!(close(*logged_rates(&out).last().unwrap(), 2e-4));

    // inverse square root when asked (and when there is no budget)
    let (ok, err, out) = run("inverse-sqrt", &["--max-updates", "8", "--lr-schedule", "inverse-sqrt"]);
    assert!(ok, "{err}");
    assert!(close(logged_rates(&out)[7], 1e-3 * (2.0f64 / 8.0).sqrt()));

    // a wall-time budget: the cosine follows the clock and ends near its floor
    let (ok, err, out) = run("clock", &["--max-time", "4s"]);
    assert!(ok, "{err}");
    let rates = logged_rates(&out);
    assert!(rates.len() > 20, "{} updates", rates.len());
    assert!(*rates.last().unwrap() < 1.5e-4, "near 5e-5 at the end of the time: {:?}", rates.last());
    assert!(rates[1..].windows(2).all(|w| w[1] <= w[0]), "never rises after warm-up");

    // a cosine needs a budget
    let (ok, err, _) = run("no-budget", &["--lr-schedule", "cosine"]);
    assert!(!ok && err.contains("lr-schedule") && err.contains("max-updates"), "{err}");
}

#[test]
fn a_rising_dropout_starts_low_reaches_the_dropout_and_needs_a_budget() {
    let dir = common::TempDir::new("cli-train-dropout-ramp");
    let (src, tgt) = corpus(&dir.0);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.0.join(name);
        let base = ["train", "--src", &src, "--tgt", &tgt, "--out", out.to_str().unwrap(), "--preset", "tiny"];
        let rest = ["--vocab-size", "30", "--max-tokens", "100", "--dropout", "0.4", "--log-every", "1"];
        let (ok, err) = transduce(&[&base[..], &rest[..], extra].concat());
        (ok, err, out)
    };
    let records = |out: &Path| common::metrics_records(out, "train");
    let column =
        |out: &Path, key: &str| -> Vec<f64> { records(out).iter().map(|r| r[key].as_f64().unwrap()).collect() };

    // 10 updates, the dropout level from the 6th: 0.1 at the first, 0.16 at the second
    let (ok, err, ramp) =
        run("ramp", &["--max-updates", "10", "--dropout-start", "0.1", "--dropout-rise-until", "0.5"]);
    assert!(ok, "{err}");
    let doses = column(&ramp, "dropout");
    assert_eq!(doses.len(), 10);
    let expected = [0.1, 0.16, 0.22, 0.28, 0.34, 0.4, 0.4, 0.4, 0.4, 0.4];
    assert!(doses.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-4), "{doses:?}");
    let training: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ramp.join("training.json")).unwrap()).unwrap();
    let saved = &training["dropout_ramp"];
    assert!((saved["start"].as_f64().unwrap() - 0.1).abs() < 1e-6 && saved["until"] == 0.5, "{training}");

    // the masks follow the ramp: a ramp that starts at the dropout is the plain run, update by
    // update; one that starts lower is not (the same seed, so the same batches)
    let (ok, err, plain) = run("plain", &["--max-updates", "3"]);
    assert!(ok, "{err}");
    assert!(records(&plain).iter().all(|r| r.get("dropout").is_none()), "logged only with a ramp");
    let (ok, err, level) = run("level", &["--max-updates", "3", "--dropout-start", "0.4"]);
    assert!(ok, "{err}");
    assert_eq!(column(&level, "loss"), column(&plain, "loss"));
    assert_ne!(column(&ramp, "loss")[0], column(&plain, "loss")[0]);

    // refused, naming the flag: no budget, a ramp that falls, a fraction out of range
    let (ok, err, _) = run("no-budget", &["--dropout-start", "0.1"]);
    assert!(!ok && err.contains("--dropout-start") && err.contains("--max-time"), "{err}");
    let (ok, err, _) = run("falls", &["--max-updates", "3", "--dropout-start", "0.5"]);
    assert!(!ok && err.contains("--dropout-start") && err.contains("only rises"), "{err}");
    let (ok, err, _) = run("until", &["--max-updates", "3", "--dropout-start", "0.1", "--dropout-rise-until", "0"]);
    assert!(!ok && err.contains("--dropout-rise-until"), "{err}");
}

#[test]
fn bench_train_corpus_times_the_trainers_batches_and_writes_them() {
    let dir = common::TempDir::new("cli-bench-corpus");
    let (src, tgt) = corpus(&dir.0);
    let model = dir.0.join("model");
    let base = ["train", "--src", &src, "--tgt", &tgt, "--out", model.to_str().unwrap(), "--preset", "tiny"];
    let (ok, err) = transduce(&[&base[..], &["--vocab-size", "30", "--max-updates", "1"]].concat());
    assert!(ok, "{err}");
    let tokenizer = model.join("tokenizer.json");
    let written = dir.0.join("batches.jsonl");
    let args = [
        "bench",
        "train-corpus",
        "--src",
        &src,
        "--tgt",
        &tgt,
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--preset",
        "tiny",
        "--max-tokens",
        "60",
        "--batches",
        "5",
        "--write-batches",
        written.to_str().unwrap(),
    ];
    let (ok, stdout, stderr) = common::transduce(&args, b"");
    assert!(ok, "{stderr}");
    let figure: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(figure["figure"], "train_corpus");
    assert_eq!(figure["steps"], 5);
    assert!(figure["tgt_tokens_per_s"].as_f64().unwrap() > 0.0);

    // 3 warm-up batches and the 5 timed ones, each within the budget, of the corpus' sentences
    let batches: Vec<serde_json::Value> =
        std::fs::read_to_string(&written).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(batches.len(), 8);
    let lens = |b: &serde_json::Value, side: &str| -> Vec<usize> {
        b[side].as_array().unwrap().iter().map(|r| r.as_array().unwrap().len()).collect()
    };
    let mut timed_tokens = 0;
    for (i, b) in batches.iter().enumerate() {
        let (s, t) = (lens(b, "src"), lens(b, "tgt"));
        let longest = s.iter().zip(&t).map(|(a, b)| a.max(b) + 1).max().unwrap();
        assert!(s.len() == 1 || s.len() * longest <= 60, "batch {i}: {} rows of {longest}", s.len());
        if i >= 3 {
            timed_tokens += t.iter().map(|n| n + 1).sum::<usize>();
        }
    }
    assert_eq!(figure["tgt_tokens"], timed_tokens, "the figure counts the timed batches' target tokens");

    // the same seed gives the same batches; a missing tokenizer is named
    let again = dir.0.join("again.jsonl");
    let mut args2 = args.to_vec();
    let last = args2.len() - 1;
    args2[last] = again.to_str().unwrap();
    assert!(common::transduce(&args2, b"").0);
    assert_eq!(std::fs::read(&written).unwrap(), std::fs::read(&again).unwrap());
    let missing = dir.0.join("nope.json");
    let mut args3 = args.to_vec();
    args3[7] = missing.to_str().unwrap();
    let (ok, _, stderr) = common::transduce(&args3, b"");
    assert!(!ok && stderr.contains("nope.json"), "{stderr}");
}

#[test]
fn bench_gemm_times_the_shapes_asked_for_and_names_a_bad_one() {
    let (ok, stdout, stderr) = common::transduce(&["bench", "gemm", "--shape", "3x16x70"], b"");
    assert!(ok, "{stderr}");
    let figures: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let products: Vec<_> = figures.iter().filter(|f| f["shape"] == "3x16x70").map(|f| f["figure"].clone()).collect();
    assert_eq!(products, ["matmul_f32", "matmul_f32_panel", "matmul_int8"], "{stdout}");
    // the peaks are null where the CPU lacks the instructions
    let peak = |f: &serde_json::Value| f["figure"].as_str().is_some_and(|name| name.starts_with("peak_"));
    assert!(figures.iter().all(|f| peak(f) || f["gflops"].as_f64().unwrap() > 0.0), "{stdout}");
    let last: Vec<_> = figures[figures.len() - 2..].iter().map(|f| f["figure"].clone()).collect();
    assert_eq!(last, ["peak_f32", "peak_int8"], "{stdout}");
    for bad in ["3x16", "3x0x70", "axbxc"] {
        let (ok, _, stderr) = common::transduce(&["bench", "gemm", "--shape", bad], b"");
        assert!(!ok && stderr.contains(bad) && stderr.contains("MxKxN"), "{bad}: {stderr}");
    }
}

#[test]
fn tokenize_writes_the_best_or_drawn_segmentations_of_each_line() {
    let dir = common::TempDir::new("cli-tokenize");
    let (src, tgt) = corpus(&dir.0);
    let model = dir.0.join("model");
    let m = model.to_str().unwrap();
    let base = ["train", "--src", &src, "--tgt", &tgt, "--out", m, "--preset", "tiny"];
    let (ok, err) = transduce(&[&base[..], &["--vocab-size", "40", "--max-updates", "1"]].concat());
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&src).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let run = |extra: &[&str]| -> (String, String) {
        let (ok, out, err) = common::transduce(&[&["tokenize", "-m", m][..], extra].concat(), text.as_bytes());
        assert!(ok, "{extra:?}: {err}");
        (out, err)
    };
    // the pieces put back together are the line
    let joined = |out: &str| -> Vec<String> {
        out.lines().map(|l| l.split(' ').collect::<String>().replace('▁', " ").trim().to_string()).collect()
    };
    let counts = |out: &str| -> Vec<usize> { out.lines().map(|l| l.split(' ').count()).collect() };

    let (best, err) = run(&[]);
    assert_eq!(joined(&best), lines);
    let total: usize = counts(&best).iter().sum();
    assert!(err.contains(&format!("tokenized {} lines of standard input into {total} pieces", lines.len())), "{err}");
    let (ids, _) = run(&["--output-format", "id", "--side", "target"]);
    assert_eq!(counts(&ids), counts(&best), "one id for each piece; the joint vocabulary serves both sides");
    assert!(ids.split_whitespace().all(|id| id.parse::<u32>().is_ok_and(|i| i < 40)), "{ids}");

    // drawn segmentations: the same text in other (more, shorter) pieces, fixed by the seed
    let (drawn, _) = run(&["--subword-sampling", "0.1"]);
    assert_eq!(joined(&drawn), lines);
    let differ = best.lines().zip(drawn.lines()).filter(|(b, d)| b != d).count();
    assert!(differ > lines.len() / 2, "{differ} of {} lines drawn differently", lines.len());
    assert!(counts(&drawn).iter().sum::<usize>() > total);
    assert_eq!(run(&["--subword-sampling", "0.1"]).0, drawn, "the same seed draws the same");
    assert_ne!(run(&["--subword-sampling", "0.1", "--seed", "2"]).0, drawn);
    let (sharp, _) = run(&["--subword-sampling", "1000"]);
    assert_eq!(sharp, best, "a large α draws the most likely segmentation");

    // what cannot be done is named
    let fail = |args: &[&str], stdin: &[u8], expect: &[&str]| {
        let (ok, _, err) = common::transduce(args, stdin);
        assert!(!ok && expect.iter().all(|e| err.contains(e)), "{args:?}: {err}");
    };
    fail(
        &["tokenize", "-m", m, "--subword-sampling=-1"],
        b"le chat\n",
        &["--subword-sampling", "-1 is not a positive"],
    );
    fail(&["tokenize", "-m", m], b"le chat\n\xff\n", &["standard input: line 2", "UTF-8"]);
    let marian = common::tiny_hf();
    let marian = marian.to_str().unwrap();
    fail(&["tokenize", "-m", marian, "--subword-sampling", "0.1"], b"le chat\n", &["--subword-sampling", "unigram"]);
    let (ok, out, err) = common::transduce(&["tokenize", "-m", marian, "--side", "target"], b"le chat\n");
    assert!(ok && out.lines().count() == 1 && !out.trim().is_empty(), "{err}");
}
