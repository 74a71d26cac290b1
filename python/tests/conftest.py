"""Shared fixtures of the Python package's tests: the repository's tiny Hugging Face Marian
model, the `transduce` command (the reference the bindings must equal) and ../shared, which is
required (not skipped) when TRANSDUCE_REQUIRE_SHARED=1, as in the Rust tests."""

import os
import subprocess
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "fixtures" / "hf_marian" / "tiny"
SHARED = Path(os.environ.get("TRANSDUCE_SHARED", REPO.parent / "shared"))

SENTENCES = [
    "Une femme aime le chien.",
    "Deux hommes regardent un parc.",
    "",
    "Le chat noir dort sur le canapé rouge près de la fenêtre ouverte.",
    "Je t'aime .",
    "Des enfants jouent dans l'eau.",
]


@pytest.fixture(scope="session")
def tiny() -> Path:
    return TINY


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `transduce` binary built by `cargo build --release` (or TRANSDUCE_BIN)."""
    path = Path(os.environ.get("TRANSDUCE_BIN", REPO / "target" / "release" / "transduce"))
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build --release` first (or set TRANSDUCE_BIN)")
    return path


def run_cli(cli: Path, *args: str, stdin: str = "") -> str:
    """Runs the command and returns its standard output (failing the test with its stderr)."""
    done = subprocess.run([str(cli), *args], input=stdin, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def shared(relative: str) -> Path:
    """A path under ../shared: skipped without it, a failure when TRANSDUCE_REQUIRE_SHARED=1."""
    path = SHARED / relative
    if path.exists():
        return path
    message = f"{path} is missing (the team's shared data and models beside the checkout)"
    if os.environ.get("TRANSDUCE_REQUIRE_SHARED") == "1":
        pytest.fail(message + " and TRANSDUCE_REQUIRE_SHARED=1")
    pytest.skip(message)


def write_lines(path: Path, lines: List[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
