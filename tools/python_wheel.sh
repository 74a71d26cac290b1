#!/usr/bin/env bash
# Builds the Python package's wheel with maturin (in the workspace's target directory, so the
# library compiled for `cargo build --release` is reused) and installs it into .venv-python
# beside pytest, Ray Data and sacrebleu (python/requirements-test.txt). `cargo test --release`
# then runs the package's pytest suite (tests/python_package.rs). Run it again after changing
# python/ or the library.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-python/bin/python ]; then
    python3 -m venv .venv-python
    .venv-python/bin/pip install -q -r python/requirements-test.txt
fi
rm -rf target/wheels
.venv-python/bin/maturin build --release -m python/Cargo.toml -o target/wheels
.venv-python/bin/pip install -q --force-reinstall --no-deps target/wheels/transduce-*.whl
