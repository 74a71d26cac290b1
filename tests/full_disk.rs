//! Writing on a full filesystem: training's checkpoints and weights, a translation's output file
//! and standard output, averaged weights. Each gives a clear error naming what it could not
//! write, leaves the previous checkpoint whole and loadable, and training resumes once there is
//! space again, ending where an uninterrupted run ends.
//!
//! The filesystem is a small tmpfs mounted in a user and mount namespace of its own
//! (`unshare --user --map-root-user --mount`), so the test needs no privileges and leaves no
//! mount behind.

mod common;

use std::path::Path;
use std::process::Command;

const INNER: &str = "TRANSDUCE_FULL_DISK_NAMESPACE";

#[test]
fn a_full_disk_gives_clear_errors_and_loses_nothing() {
    let exe = std::env::current_exe().unwrap();
    let run = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(&exe)
        .args(["--ignored", "--exact", "on_a_small_tmpfs", "--nocapture", "--test-threads", "1"])
        .env(INNER, "1")
        .output()
        .expect("unshare (util-linux) runs: the test mounts its small filesystem in a namespace of its own");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    eprintln!("{stderr}");
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
}

fn transduce(args: &[&str]) -> (bool, String) {
    let (ok, _, stderr) = common::transduce(args, b"");
    (ok, stderr)
}

/// Bytes still free on the filesystem of `path`.
fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: statvfs fills the zeroed struct it is given; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut stat) }, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

/// Fills the filesystem of `dir` up to `leave` free bytes with a file `filler`.
fn fill(dir: &Path, leave: u64) -> std::path::PathBuf {
    let filler = dir.join("filler");
    let size = free_bytes(dir).saturating_sub(leave);
    std::fs::write(&filler, vec![0u8; size as usize]).unwrap();
    filler
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".tmp") || name.ends_with(".partial") || name.ends_with(".replaced") {
            found.push(entry.display().to_string());
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}

#[test]
#[ignore = "run by a_full_disk_gives_clear_errors_and_loses_nothing inside a mount namespace of its own"]
fn on_a_small_tmpfs() {
    assert!(std::env::var(INNER).is_ok(), "mounts a filesystem: run a_full_disk_gives_clear_errors_and_loses_nothing");
    let dir = common::TempDir::new("full-disk");
    let (src, tgt) = common::varied_corpus(&dir.0, "train", 600);
    let fs = dir.0.join("small");
    std::fs::create_dir_all(&fs).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(&fs).status().unwrap();
    assert!(mounted.success(), "mounting a tmpfs in the namespace");

    let train = |out: &Path, updates: &str, resume: bool| {
        let mut args = vec![
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
            out.to_str().unwrap(),
            "--preset",
            "tiny",
            "--vocab-size",
            "300",
            "--max-tokens",
            "400",
            "--max-updates",
            updates,
            "--valid-every",
            "2",
            "--keep-last",
            "2",
            "--seed",
            "3",
        ];
        if resume {
            args.push("--resume");
        }
        transduce(&args)
    };
    // the uninterrupted run, on a disk with room
    let reference = dir.0.join("reference");
    let (ok, err) = train(&reference, "8", false);
    assert!(ok, "{err}");

    // four updates fit; then the disk fills up
    let model = fs.join("model");
    let (ok, err) = train(&model, "4", false);
    assert!(ok, "{err}");
    let last = model.join("checkpoints/update-000000004");
    let saved: Vec<Vec<u8>> = ["model.safetensors", "optimizer.safetensors", "state.json"]
        .iter()
        .map(|f| std::fs::read(last.join(f)).unwrap())
        .collect();
    let filler = fill(&fs, 64 * 1024);

    let (ok, err) = train(&model, "8", true);
    assert!(!ok, "training on a full disk fails");
    assert!(err.contains("No space left on device") && err.contains(model.to_str().unwrap()), "{err}");
    eprintln!("train on a full disk: {}", err.lines().last().unwrap_or(""));
    assert_eq!(leftovers(&model), Vec::<String>::new(), "partial files are removed");
    let again: Vec<Vec<u8>> = ["model.safetensors", "optimizer.safetensors", "state.json"]
        .iter()
        .map(|f| std::fs::read(last.join(f)).unwrap())
        .collect();
    assert!(saved == again, "the last checkpoint is kept as it was");
    let listed = transduce::ModelDir::open(&model).unwrap().checkpoints().unwrap();
    assert_eq!(listed.last().unwrap().path, last);

    // the model still translates; an output file or standard output on the full disk fails clearly
    let input = dir.0.join("input.fr");
    std::fs::write(&input, std::fs::read_to_string(&src).unwrap().repeat(20)).unwrap();
    let output = fs.join("out.en");
    let (ok, err) = transduce(&[
        "translate",
        "-m",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--beam",
        "1",
    ]);
    assert!(!ok, "translating onto a full disk fails");
    assert!(err.contains("No space left on device") && err.contains("out.en"), "{err}");
    eprintln!("translate --output on a full disk: {}", err.lines().last().unwrap_or(""));
    let full = std::fs::File::options().write(true).open("/dev/full").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_transduce"))
        .args(["translate", "-m", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--beam", "1"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "translating onto /dev/full fails");
    assert!(err.contains("No space left on device") && err.contains("standard output"), "{err}");
    eprintln!("translate > /dev/full: {}", err.lines().last().unwrap_or(""));
    std::fs::remove_file(&output).ok();

    // averaging writes the weights through a temporary file: the old ones stay
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    std::fs::write(
        &filler,
        vec![0u8; (std::fs::metadata(&filler).unwrap().len() + free_bytes(&fs)) as usize - 16 * 1024],
    )
    .unwrap();
    let (ok, err) = transduce(&["average", model.to_str().unwrap(), "--last", "2"]);
    assert!(!ok && err.contains("No space left on device") && err.contains("model.safetensors"), "{err}");
    eprintln!("average on a full disk: {}", err.lines().last().unwrap_or(""));
    assert!(std::fs::read(model.join("model.safetensors")).unwrap() == weights);
    assert_eq!(leftovers(&model), Vec::<String>::new());

    // space again: the run resumes and ends as the uninterrupted one
    std::fs::remove_file(&filler).unwrap();
    let (ok, err) = train(&model, "8", true);
    assert!(ok, "{err}");
    for file in ["checkpoints/update-000000008/model.safetensors", "checkpoints/update-000000008/optimizer.safetensors"]
    {
        assert!(std::fs::read(model.join(file)).unwrap() == std::fs::read(reference.join(file)).unwrap(), "{file}");
    }
    Command::new("umount").arg(&fs).status().unwrap();
}
