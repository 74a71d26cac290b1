"""Type stubs of transduce's native module (``transduce._native``)."""

import os
import pathlib
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, TypedDict, Union

from typing_extensions import Unpack

_Path = Union[str, os.PathLike[str]]
_Search = Literal["beam", "greedy", "sample"]
_Penalty = Literal["gnmt", "average", "power", "none"]
_BeamRule = Literal["heuristic", "exact", "hugging-face", "ctranslate2"]

__version__: str

class SearchOptions(TypedDict, total=False):
    """The search keywords (the command line's flags with underscores); left out: beam search,
    beam 4, and the command line's other defaults (`explain`: greedy)."""

    search: _Search
    beam: int
    n_best: int
    length_penalty: Union[_Penalty, float]
    alpha: float
    beam_rule: _BeamRule
    temperature: float
    top_k: int
    top_p: float
    seed: int
    max_len: int
    max_len_ratio: Optional[float]
    min_len: int
    no_repeat_ngram: int
    repetition_penalty: float

class OptionError(ValueError):
    """An option out of its range or at odds with another; ``option`` names it."""

    option: str

class InputError(ValueError):
    """Input the library cannot take (a line, a corpus, a configuration key)."""

class ModelError(ValueError):
    """A model directory whose configuration or weights are wrong."""

class FileError(OSError):
    """A file that cannot be read or written (``filename``, ``errno``)."""

class TensorError(RuntimeError):
    """A tensor operation failed inside the model."""

class Output:
    """One hypothesis of a sentence."""

    text: str
    tokens: List[int]
    score: Optional[float]
    token_scores: Optional[List[float]]
    alignment: Optional[List[Tuple[int, int]]]
    def to_dict(self) -> Dict[str, Any]: ...

class Translation:
    """The translation of one input: the best output's fields and the n-best."""

    @property
    def text(self) -> str: ...
    @property
    def tokens(self) -> List[int]: ...
    @property
    def score(self) -> Optional[float]: ...
    @property
    def token_scores(self) -> Optional[List[float]]: ...
    @property
    def alignment(self) -> Optional[List[Tuple[int, int]]]: ...
    @property
    def n_best(self) -> List[Output]: ...
    @property
    def truncated(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

class Translator:
    """A model directory (transduce, int8 or Hugging Face Marian) loaded for translation."""

    def __init__(
        self,
        path: _Path,
        quantization: Optional[Literal["as-stored", "int8"]] = None,
        threads: Optional[int] = None,
        workers: int = 1,
        ensemble: Optional[Sequence[_Path]] = None,
        ensemble_mode: Literal["linear", "log-linear"] = "linear",
    ) -> None: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    @property
    def languages(self) -> Optional[Tuple[str, str]]: ...
    @property
    def language_codes(self) -> Optional[List[str]]: ...
    def translate(
        self,
        texts: Sequence[str],
        *,
        source_lang: Optional[str] = None,
        target_lang: Optional[str] = None,
        prefix: Union[None, str, Sequence[Optional[str]]] = None,
        scores: Literal["include", "omit"] = "include",
        return_scores: bool = False,
        return_alignments: bool = False,
        alignment_layer: Optional[int] = None,
        max_tokens: int = 4096,
        **options: Unpack[SearchOptions],
    ) -> List[Translation]: ...
    def translate_file(
        self,
        source: _Path,
        target: _Path,
        *,
        source_lang: Optional[str] = None,
        target_lang: Optional[str] = None,
        format: Literal["text", "jsonl", "nbest", "pharaoh"] = "text",
        prefix: Optional[str] = None,
        prefix_file: Optional[_Path] = None,
        scores: Literal["include", "omit"] = "include",
        return_scores: bool = False,
        return_alignments: bool = False,
        alignment_layer: Optional[int] = None,
        window: int = 2000,
        max_tokens: int = 4096,
        progress: Optional[Callable[[int], Any]] = None,
        **options: Unpack[SearchOptions],
    ) -> Dict[str, Any]: ...

def explain(translator: Translator, sentence: str, *, top_k: int = 5, **options: Unpack[SearchOptions]) -> Dict[str, Any]:
    """The explainer's data for one sentence (greedy unless search keywords say otherwise)."""

def explain_page(
    translator: Translator,
    sentences: Sequence[str],
    *,
    path: Optional[_Path] = None,
    top_k: int = 5,
    **options: Unpack[SearchOptions],
) -> str:
    """The explainer's self-contained HTML page; with ``path``, also written there."""

class BleuScore:
    score: float
    precisions: List[float]
    bp: float
    sys_len: int
    ref_len: int
    counts: List[int]
    totals: List[int]
    def __float__(self) -> float: ...

class ChrfScore:
    score: float
    def __float__(self) -> float: ...

def bleu(
    hypotheses: Sequence[str], references: Union[Sequence[str], Sequence[Sequence[str]]], *, lowercase: bool = False
) -> BleuScore: ...
def chrf(
    hypotheses: Sequence[str], references: Union[Sequence[str], Sequence[Sequence[str]]], *, lowercase: bool = False
) -> ChrfScore: ...

class TrainConfig:
    """A training run's options (the command line's flags with underscores, or training.json's keys)."""

    def __init__(
        self,
        out: _Path,
        train: Union[_Path, Tuple[_Path, _Path]],
        valid: Union[None, _Path, Tuple[_Path, _Path]] = None,
        *,
        config: Optional[_Path] = None,
        **options: Any,
    ) -> None: ...
    @property
    def out(self) -> pathlib.Path: ...
    def to_dict(self) -> Dict[str, Any]: ...

def train(
    config: TrainConfig, *, resume: bool = False, callback: Optional[Callable[[Dict[str, Any]], Any]] = None
) -> Dict[str, Any]:
    """Trains until a limit, early stopping or Ctrl-C (which saves a checkpoint and returns)."""

def _lines(data: bytes, name: str) -> List[str]:
    """A file's bytes (plain or gzip) split into lines as the library reads files."""

def import_hf(source: _Path, out: _Path) -> Dict[str, Any]: ...
def export_hf(model: _Path, out: _Path) -> Dict[str, Any]: ...
def quantize(source: _Path, out: _Path) -> Dict[str, Any]: ...
