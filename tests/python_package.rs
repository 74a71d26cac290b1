//! The Python package (python/): its pytest suite — translate and translate_file against the
//! `transduce` command, errors, the GIL released, scores against sacrebleu, training, the
//! conversions, explain, and Ray with two actors — run against the wheel that
//! `tools/python_wheel.sh` built and installed into `.venv-python`. `.ci/run` runs that script
//! and sets TRANSDUCE_REQUIRE_PYTHON, so there this fails instead of skipping.

mod common;

use std::path::Path;
use std::time::SystemTime;

use common::{optional, root, Requirement};

const PYTHON: Requirement = Requirement {
    what: "the transduce wheel installed in .venv-python",
    switch: "TRANSDUCE_REQUIRE_PYTHON",
    hint: "tools/python_wheel.sh",
};

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> SystemTime {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { newest(&p) } else { p.metadata().unwrap().modified().unwrap() })
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

#[test]
fn python_package_pytest_suite() {
    let python = root().join(".venv-python/bin/python");
    let Some(python) = optional(&PYTHON, python.exists().then_some(python)) else {
        return;
    };
    // the installed native module, which must be newer than the sources it was built from
    let out = std::process::Command::new(&python)
        .args(["-c", "import transduce._native as m; print(m.__file__)"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "no transduce in .venv-python: run tools/python_wheel.sh\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let module = String::from_utf8(out.stdout).unwrap();
    let built = Path::new(module.trim()).metadata().unwrap().modified().unwrap();
    for sources in ["python/src", "python/transduce", "crates/transduce/src"] {
        assert!(
            newest(&root().join(sources)) <= built,
            "the installed wheel is older than {sources}: run tools/python_wheel.sh"
        );
    }
    let status = std::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "python/tests"])
        .current_dir(root())
        .env("TRANSDUCE_BIN", env!("CARGO_BIN_EXE_transduce"))
        // the repository's python/ must not shadow the installed package
        .env("PYTHONSAFEPATH", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the Python package's tests failed (their output is above)");
}
