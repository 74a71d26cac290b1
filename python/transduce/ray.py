"""Translating corpora on Ray: every actor loads the model once and translates batches on its
share of the cores; the output comes back in input order.

    import ray, transduce.ray
    ray.init(num_cpus=2)                        # or ray.init(address="auto") on a cluster
    transduce.ray.translate_file("test.fr.gz", "test.en", "models/fr-en", actors=2, beam=4)

On a cluster the model directory and the input must be at the same path on every node (a
shared file system), or the input on storage Ray reads (``s3://...``). The pieces compose with
any Ray Data pipeline: :func:`read_lines` (lines exactly as ``transduce translate`` reads
them), :func:`translate_dataset` (``map_batches`` over :class:`TranslatorActor`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ._native import Translator, _lines

try:
    import ray
    import ray.data
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("transduce.ray needs Ray Data: pip install 'transduce[ray]'") from e

__all__ = ["TranslatorActor", "read_lines", "translate_dataset", "translate_file"]

PathLike = Union[str, "os.PathLike[str]"]


def _split_lines(row: Dict[str, Any]) -> List[Dict[str, str]]:
    """One file's bytes (plain or gzip) as lines, split by the library as ``transduce translate``
    reads files (``str.splitlines`` would also split on form feeds and Unicode separators and
    misalign the output)."""
    return [{"text": line} for line in _lines(row["bytes"], str(row.get("path", "input")))]


def read_lines(paths: Union[PathLike, List[PathLike]], *, rows_per_block: int = 64) -> "ray.data.Dataset":
    """The lines of text files (plain or gzip) as a dataset with a ``text`` column, empty lines
    kept, in blocks of ``rows_per_block`` rows so that several actors share one file.

    The dataset is materialized (held in Ray's object store, which spills to disk): actors
    that hold every CPU would otherwise starve the reading tasks that feed them."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    ds = ray.data.read_binary_files([os.fspath(p) for p in paths], include_paths=True)
    return ds.flat_map(_split_lines).repartition(target_num_rows_per_block=rows_per_block).materialize()


class TranslatorActor:
    """A Ray Data callable class: loads ``model`` once with ``threads`` threads, then adds
    ``translation`` and ``score`` (unless ``scores="omit"``) to each batch, translating the
    ``column`` column with the keywords of :meth:`transduce.Translator.translate`."""

    def __init__(
        self,
        model: str,
        *,
        threads: int = 1,
        quantization: Optional[str] = None,
        column: str = "text",
        **options: Any,
    ) -> None:
        self.translator = Translator(model, quantization=quantization, threads=threads)
        self.column = column
        self.options = options

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        texts = [str(t) for t in batch[self.column]]
        results = self.translator.translate(texts, **self.options)
        out = dict(batch)
        out["translation"] = np.array([r.text for r in results], dtype=object)
        if self.options.get("scores", "include") != "omit":
            out["score"] = np.array([r.score for r in results], dtype=np.float32)
        return out


def translate_dataset(
    dataset: "ray.data.Dataset",
    model: PathLike,
    *,
    actors: int = 2,
    threads_per_actor: int = 1,
    batch_size: int = 64,
    column: str = "text",
    quantization: Optional[str] = None,
    **options: Any,
) -> "ray.data.Dataset":
    """``dataset`` with ``translation`` and ``score`` columns: ``actors`` actors, each holding
    the model and ``threads_per_actor`` cores (its Ray ``num_cpus``), translating
    ``batch_size`` rows at a time. The search keywords are those of ``Translator.translate``."""
    return dataset.map_batches(
        TranslatorActor,
        fn_constructor_kwargs=dict(
            model=os.fspath(model), threads=threads_per_actor, quantization=quantization, column=column, **options
        ),
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=threads_per_actor,
        batch_size=batch_size,
        batch_format="numpy",
    )


def translate_file(
    source: Union[PathLike, List[PathLike]],
    target: PathLike,
    model: PathLike,
    *,
    actors: int = 2,
    threads_per_actor: int = 1,
    batch_size: int = 64,
    format: str = "text",
    quantization: Optional[str] = None,
    **options: Any,
) -> Dict[str, int]:
    """Translates the lines of ``source`` (one file or several, plain or gzip) into ``target``
    in input order, as ``text`` (one translation per line, what ``transduce translate``
    writes) or ``jsonl`` (``{"id", "source", "text", "score"}`` per line; no ``score`` with
    ``scores="omit"``). Returns ``{"lines": n}``."""
    if format not in ("text", "jsonl"):
        raise ValueError(f"format: unknown output format `{format}`: expected one of text, jsonl")
    if format == "text":
        # text shows no scores: greedy search then need not normalise over the vocabulary
        options.setdefault("scores", "omit")
    context = ray.data.DataContext.get_current()
    kept = context.execution_options.preserve_order
    context.execution_options.preserve_order = True
    try:
        lines = read_lines(source, rows_per_block=batch_size)
        translated = translate_dataset(
            lines,
            model,
            actors=actors,
            threads_per_actor=threads_per_actor,
            batch_size=batch_size,
            quantization=quantization,
            **options,
        )
        n = 0
        with open(target, "w", encoding="utf-8", newline="\n") as out:
            for batch in translated.iter_batches(batch_size=batch_size, batch_format="numpy"):
                for i, (text, translation) in enumerate(zip(batch["text"], batch["translation"])):
                    if format == "text":
                        out.write(f"{translation}\n")
                    else:
                        entry = {"id": n, "source": str(text), "text": str(translation)}
                        if "score" in batch:
                            entry["score"] = float(batch["score"][i])
                        out.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    n += 1
        return {"lines": n}
    finally:
        context.execution_options.preserve_order = kept
