"""ner_utils: fine-tune a BERT-family encoder for CoNLL-2003 named-entity recognition.

One module, sectioned in the order data flows:

    data -> labels -> encoding -> batching -> prediction -> scoring

Everything a notebook cell needs is a small function here, so tests can reach it.
torch, transformers and pandas are imported lazily: ``import ner_utils`` stays fast.
"""
from __future__ import annotations

import codecs
import os
import random
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    import pandas as pd
    import torch

__all__ = [
    "Sentence", "ConllFormatError", "DataNotFoundError", "read_conll", "parse_conll", "load_conll2003",
    "iob1_to_iob2", "tag_scheme", "get_spans", "LABELS", "ENTITY_TYPES", "dataset_stats",
    "align_labels", "encode", "make_batches", "predict_tags", "span_scores", "conlleval_report",
]

# =============================================================================================
# Data: reading CoNLL files
# =============================================================================================

SPLIT_FILES = {"train": "eng.train", "testa": "eng.testa", "testb": "eng.testb"}
DOCSTART = "-DOCSTART-"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "conll_2003_ner"
_TAG_RE = re.compile(r"^(?:O|[BIES]-\S+)$")


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


def _decode_utf8(data: bytes, name: str) -> str:
    """Decode UTF-8 (a leading BOM is dropped); bad bytes raise with their line number."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConllFormatError(
            f"{name}:{line}: found byte 0x{data[err.start]:02x}, which is not UTF-8; "
            "expected a UTF-8 text file (re-encode it, e.g. `iconv -f latin1 -t utf-8`)"
        ) from None


def parse_conll(data: bytes, name: str = "<bytes>") -> list[Sentence]:
    """Parse CoNLL bytes into sentences (word = first column, tag = last); ``name`` prefixes errors.

    >>> [s.words for s in parse_conll(b"-DOCSTART- O\\n\\nEU B-ORG\\nrejects O\\n")]
    [['EU', 'rejects']]
    """
    lines = _decode_utf8(data, name).split("\n")
    if not any(line.strip() for line in lines):
        raise ConllFormatError(f"{name}:1: found an empty file; expected lines of 'word ... NER-tag'")
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    n_cols: int | None = None
    doc, first_line = -1, 0

    def flush() -> None:
        nonlocal words, tags, doc
        if words:
            doc = max(doc, 0)
            sentences.append(Sentence(words, tags, doc, first_line))
            words, tags = [], []

    for number, raw in enumerate(lines, start=1):
        cols = raw.split()
        if not cols:
            flush()
            continue
        if cols[0] == DOCSTART:
            flush()
            doc += 1
            continue
        if n_cols is None:
            if len(cols) < 2:
                raise ConllFormatError(
                    f"{name}:{number}: found 1 column ({raw.strip()!r}); expected at least 2: word ... NER-tag")
            n_cols = len(cols)
        elif len(cols) != n_cols:
            raise ConllFormatError(
                f"{name}:{number}: found {len(cols)} columns ({raw.strip()!r}); expected {n_cols} like the "
                "file's first token line")
        tag = cols[-1]
        if not _TAG_RE.match(tag):
            raise ConllFormatError(
                f"{name}:{number}: found tag {tag!r}; expected O or B-/I-/E-/S- followed by a type (e.g. I-PER)")
        if not words:
            first_line = number
        words.append(cols[0])
        tags.append(tag)
    flush()
    if not sentences:
        raise ConllFormatError(
            f"{name}:{len(lines) - (lines[-1] == '')}: found no sentence (only -DOCSTART- and blank lines); "
            "expected at least one 'word ... NER-tag' line")
    return sentences


def read_conll(path: str | os.PathLike) -> list[Sentence]:
    """Read a CoNLL file (4-column original or 2-column ``word tag``); tags are kept as written."""
    return parse_conll(Path(path).read_bytes(), str(path))


def _split_sources(source: str | os.PathLike | None) -> tuple[Path, str]:
    """Resolve ``source`` (None -> $CONLL_DIR -> conll_2003_ner/ beside this module) and say how."""
    if source is not None:
        return Path(source).expanduser(), "the given source"
    if os.environ.get("CONLL_DIR"):
        return Path(os.environ["CONLL_DIR"]).expanduser(), "$CONLL_DIR"
    return DEFAULT_DATA_DIR, "the default folder (CONLL_DIR is not set)"


def _zip_member(zf: zipfile.ZipFile, filename: str) -> str | None:
    """The shallowest member of ``zf`` called ``filename`` (macOS ``__MACOSX`` copies ignored)."""
    hits = [n for n in zf.namelist()
            if PurePosixPath(n).name == filename and "__MACOSX" not in PurePosixPath(n).parts]
    return min(hits, key=lambda n: (n.count("/"), n)) if hits else None


def _read_split_files(source: str | os.PathLike | None) -> dict[str, list[Sentence]]:
    """Read eng.train/testa/testb from a folder (any depth) or a zip (any depth), raw tags."""
    root, how = _split_sources(source)
    root = root.resolve()
    raw: dict[str, list[Sentence]] = {}
    looked: list[str] = []
    zips: list[Path] = []
    if root.is_file() and zipfile.is_zipfile(root):
        zips = [root]
    elif root.is_dir():
        looked.append(f"{root}/ and its subfolders")
        for split, filename in SPLIT_FILES.items():
            found = sorted(root.rglob(filename), key=lambda p: (len(p.parts), str(p)))
            if found:
                raw[split] = read_conll(found[0])
        if len(raw) < len(SPLIT_FILES):
            zips = sorted(root.glob("*.zip"))
    else:
        looked.append(f"{root} ({'not a zip file' if root.exists() else 'does not exist'})")
    for zpath in zips:
        looked.append(f"{zpath} (zip, any depth)")
        with zipfile.ZipFile(zpath) as zf:
            for split, filename in SPLIT_FILES.items():
                member = None if split in raw else _zip_member(zf, filename)
                if member:
                    raw[split] = parse_conll(zf.read(member), f"{zpath}:{member}")
    missing = [f for s, f in SPLIT_FILES.items() if s not in raw]
    if missing:
        raise DataNotFoundError(
            f"CoNLL-2003 file(s) {', '.join(missing)} not found; looked in ({how}): {'; '.join(looked)}. "
            "Unzip the course's conll_2003_ner.zip into conll_2003_ner/ or set CONLL_DIR to its folder.")
    return raw


def load_conll2003(source: str | os.PathLike | None = None) -> dict[str, list[Sentence]]:
    """Load {"train", "testa", "testb"} with tags converted to IOB2 and checked against ``LABELS``.

    ``source`` is a folder or the course's zip; None means $CONLL_DIR, else conll_2003_ner/ here.
    """
    splits = _read_split_files(source)
    known = set(LABELS)
    for split, sentences in splits.items():
        for s in sentences:
            s.tags = iob1_to_iob2(s.tags)
            bad = [t for t in s.tags if t not in known]
            if bad:
                raise ConllFormatError(
                    f"{SPLIT_FILES[split]}:{s.line}: found tag {bad[0]!r} (as IOB2); expected one of {LABELS} "
                    "(tags are never mapped silently)")
    return splits


# =============================================================================================
# Labels: the tag scheme and conlleval's chunk definition
# =============================================================================================

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
ENTITY_TYPES = ["LOC", "MISC", "ORG", "PER"]


def _split_tag(tag: str) -> tuple[str, str]:
    """('B', 'PER') for 'B-PER', ('O', '') for 'O' (conlleval's ``^([^-]*)-(.*)$``)."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def _chunk_ends(prev: str, tag: str, prev_kind: str, kind: str) -> bool:
    """conlleval's endOfChunk: did a chunk end between the previous and the current word?"""
    return (prev in ("E", "S")
            or (prev in ("B", "I") and tag in ("B", "S", "O"))
            or (prev != "O" and prev_kind != kind))


def _chunk_starts(prev: str, tag: str, prev_kind: str, kind: str) -> bool:
    """conlleval's startOfChunk: did a chunk start at the current word?"""
    return (tag in ("B", "S")
            or (prev in ("E", "S", "O") and tag in ("E", "I"))
            or (tag != "O" and prev_kind != kind))


def get_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Chunks exactly as conlleval (2004-01-26) finds them: (type, start, end-exclusive).

    Works on IOB1, IOB2 and IOBES alike.
    >>> get_spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"])
    [('PER', 0, 2), ('PER', 2, 3), ('LOC', 4, 5)]
    """
    spans: list[tuple[str, int, int]] = []
    prev, prev_kind, start = "O", "", -1
    for i, tag_str in enumerate([*tags, "O"]):
        tag, kind = _split_tag(tag_str)
        if start >= 0 and _chunk_ends(prev, tag, prev_kind, kind):
            spans.append((prev_kind, start, i))
            start = -1
        if _chunk_starts(prev, tag, prev_kind, kind):
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


def dataset_stats(splits: dict[str, list[Sentence]]) -> "pd.DataFrame":
    """One row per split: documents, sentences, tokens, entities, and entities per type."""
    import pandas as pd

    rows = {}
    for name, sentences in splits.items():
        kinds = Counter(kind for s in sentences for kind, _, _ in get_spans(s.tags))
        row = {"docs": len({s.doc for s in sentences}), "sentences": len(sentences),
               "tokens": sum(len(s.words) for s in sentences), "entities": sum(kinds.values())}
        row.update({kind: kinds.get(kind, 0) for kind in sorted(set(ENTITY_TYPES) | set(kinds))})
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)


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


def max_pieces(tokenizer: Any, model: Any = None) -> int:
    """The longest input (special tokens included) the tokenizer and model accept, capped at 512."""
    limits = [512, int(min(getattr(tokenizer, "model_max_length", 512) or 512, 10**6))]
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if positions:
        limits.append(int(positions))
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


def encode(tokenizer: Any, sentences: Sequence[Sentence], label2id: dict[str, int] | None,
           max_length: int | None = None) -> list[dict[str, Any]]:
    """Tokenise sentences into features: input_ids, labels, word_index (piece -> word or -1), sentence.

    Uses the fast tokenizer with ``is_split_into_words=True`` and ``word_ids()``. A sentence longer than
    ``max_length`` pieces becomes several windows of whole words, so every word keeps its first piece.
    A word the tokenizer turns into no piece at all (a control character) is encoded as the unknown token.
    ``label2id=None`` (raw text) gives all labels -100.
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

    plan: list[tuple[int, int, int]] = []  # (sentence, first word, end word)
    for i, c in enumerate(counts):
        plan.extend((i, a, b) for a, b in _windows(c, budget))
    if not plan:
        return []
    enc = tokenizer([word_lists[i][a:b] for i, a, b in plan], is_split_into_words=True,
                    truncation=True, max_length=max_length)
    features = []
    for j, (i, a, b) in enumerate(plan):
        word_ids = enc.word_ids(j)
        if label2id is None:
            label_ids = [IGNORE_INDEX] * (b - a)
        else:
            try:
                label_ids = [label2id[t] for t in sentences[i].tags[a:b]]
            except KeyError as err:
                raise ValueError(f"sentence {i} (line {sentences[i].line}): tag {err.args[0]!r} is not one of "
                                 f"the model's labels {list(label2id)}") from None
        labels = align_labels(word_ids, label_ids)
        first = align_labels(word_ids, list(range(a, b)))
        features.append({"input_ids": list(enc["input_ids"][j]), "labels": labels,
                         "word_index": [w if w != IGNORE_INDEX else -1 for w in first], "sentence": i})
    return features


# =============================================================================================
# Batching: group similar lengths, pad each batch only to its longest member
# =============================================================================================


def collate(features: Sequence[dict[str, Any]], pad_token_id: int = 0) -> dict[str, Any]:
    """Pad a list of features to their longest member: input_ids, attention_mask, labels, word_index."""
    import torch

    width = max(len(f["input_ids"]) for f in features)

    def padded(key: str, value: int) -> "torch.Tensor":
        return torch.tensor([f[key] + [value] * (width - len(f[key])) for f in features], dtype=torch.long)

    return {"input_ids": padded("input_ids", pad_token_id),
            "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                            for f in features], dtype=torch.long),
            "labels": padded("labels", IGNORE_INDEX),
            "word_index": padded("word_index", -1)}


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


def make_batches(features: Sequence[dict[str, Any]], batch_size: int = 32, shuffle: bool = True,
                 seed: int = 0, pad_token_id: int = 0) -> list[dict[str, Any]]:
    """Length-grouped, dynamically padded batches; each carries ``index``, its features' positions."""
    order = batch_order([len(f["input_ids"]) for f in features], batch_size, shuffle, seed)
    batches = []
    for idx in order:
        batch = collate([features[i] for i in idx], pad_token_id)
        batch["index"] = idx
        batches.append(batch)
    return batches


def padding_ratio(batches: Sequence[dict[str, Any]]) -> float:
    """Padded positions per real token over a list of batches (1.0 means no padding)."""
    total = sum(b["attention_mask"].numel() for b in batches)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    return total / max(real, 1)


# =============================================================================================
# Prediction: word-level tags from a token-classification model
# =============================================================================================


def _id2label(model: Any) -> dict[int, str]:
    return {int(k): v for k, v in model.config.id2label.items()}


def word_log_probs(model: Any, tokenizer: Any, sentences: Sequence[Sentence], batch_size: int = 64,
                   device: Any = None) -> list["torch.Tensor"]:
    """Per sentence, a [words x labels] tensor of log-probabilities read at each word's first piece."""
    import torch

    device = torch.device(device) if device is not None else next(model.parameters()).device
    features = encode(tokenizer, sentences, None, max_pieces(tokenizer, model))
    n_labels = len(model.config.id2label)
    scores = [torch.full((len(s.words), n_labels), float("nan")) for s in sentences]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in make_batches(features, batch_size, shuffle=False,
                                      pad_token_id=tokenizer.pad_token_id or 0):
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits
                logp = logits.float().log_softmax(-1).cpu()
                for row, fi in enumerate(batch["index"]):
                    where = batch["word_index"][row] >= 0
                    scores[features[fi]["sentence"]][batch["word_index"][row][where]] = logp[row][where]
    finally:
        model.train(was_training)
    for i, s in enumerate(scores):
        if s.isnan().any():  # pragma: no cover - would be a bug in encode()
            raise RuntimeError(f"sentence {i}: some words received no prediction")
    return scores


def predict_tags(model: Any, tokenizer: Any, sentences: Sequence[Sentence], batch_size: int = 64,
                 device: Any = None) -> list[list[str]]:
    """One predicted tag per word, sentences in input order (eval mode, no gradients)."""
    id2label = _id2label(model)
    scores = word_log_probs(model, tokenizer, sentences, batch_size, device)
    return [[id2label[int(k)] for k in s.argmax(-1)] if len(s) else [] for s in scores]


# =============================================================================================
# Scoring: conlleval-exact span precision / recall / F1
# =============================================================================================


def _as_sentences(tags: Sequence[Any]) -> list[list[str]]:
    """Accept a list of sentences' tags, or one flat list of tags."""
    return [list(tags)] if tags and isinstance(tags[0], str) else [list(t) for t in tags]


def _prf(correct: int, gold: int, pred: int) -> dict[str, float | int]:
    precision = correct / pred if pred else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "gold": gold, "pred": pred, "correct": correct}


def _span_counts(gold: Sequence[Any], pred: Sequence[Any]) -> tuple[Counter, Counter, Counter, int, int]:
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
    correct when type, start and end all match; IOB1, IOB2 and IOBES tags are read as conlleval reads them.
    >>> span_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])["overall"]["f1"]
    0.0
    """
    n_gold, n_pred, n_correct, _, _ = _span_counts(gold, pred)
    scores = {"overall": _prf(sum(n_correct.values()), sum(n_gold.values()), sum(n_pred.values()))}
    for kind in sorted(set(ENTITY_TYPES) | set(n_gold) | set(n_pred)):
        scores[kind] = _prf(n_correct[kind], n_gold[kind], n_pred[kind])
    return scores


def conlleval_report(gold: Sequence[Any], pred: Sequence[Any]) -> str:
    """The classic conlleval text report (processed-tokens line, accuracy line, one line per type)."""
    n_gold, n_pred, n_correct, tokens, tags_correct = _span_counts(gold, pred)
    overall = _prf(sum(n_correct.values()), sum(n_gold.values()), sum(n_pred.values()))
    lines = [f"processed {tokens} tokens with {overall['gold']} phrases; "
             f"found: {overall['pred']} phrases; correct: {overall['correct']}."]
    if tokens:
        lines.append(f"accuracy: {100 * tags_correct / tokens:6.2f}%; precision: {100 * overall['precision']:6.2f}%; "
                     f"recall: {100 * overall['recall']:6.2f}%; FB1: {100 * overall['f1']:6.2f}")
    for kind in sorted(set(n_gold) | set(n_pred)):
        s = _prf(n_correct[kind], n_gold[kind], n_pred[kind])
        lines.append(f"{kind:>17s}: precision: {100 * s['precision']:6.2f}%; recall: {100 * s['recall']:6.2f}%; "
                     f"FB1: {100 * s['f1']:6.2f}  {s['pred']}")
    return "\n".join(lines) + "\n"
