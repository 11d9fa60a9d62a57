"""Where document context's training time goes: word pieces per eng.train epoch for each context setting.

Context multiplies the pieces a training step reads; this counts them (tokenizer only, no model run) for K words
each side, with and without a cap of P pieces each side (``context_pieces``), against the sentences alone.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/context_pieces.py

Writes benchmarks/results/context-pieces.json (accuracy.py --report turns it into a table).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ner_utils as nu  # noqa: E402

SETTINGS = ((16, None), (32, None), (64, None), (64, 32), (64, 48), (64, 64))  # (K words, cap in pieces or None)
DROPOUT = 0.5  # TrainConfig.context_dropout: half the sentences of a context epoch are seen without context


def count_pieces(tokenizer, sentences, length: int, settings=SETTINGS, dropout: float = DROPOUT) -> list[dict]:
    """One dict per setting: pieces per epoch, their ratio to the sentences alone, the expected ratio of a
    context epoch with ``dropout``, and the longest and mean feature length in pieces (``length``: the model's limit)."""
    plain = sum(len(f["input_ids"]) for f in nu.encode(tokenizer, sentences, None, length))
    rows = []
    for k, cap in settings:
        lengths = [len(f["input_ids"]) for f in nu.encode(tokenizer, sentences, None, length, context=k, context_pieces=cap)]
        ratio = sum(lengths) / plain
        rows.append({"context": k, "context_pieces": cap, "pieces": sum(lengths), "ratio": ratio,
                     "epoch_ratio": dropout + (1 - dropout) * ratio, "mean_length": statistics.mean(lengths),
                     "max_length": max(lengths), "plain_pieces": plain})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    model, tokenizer = nu.load_model(str(nu.embedded_model_path()), fallback=False)
    rows = count_pieces(tokenizer, nu.load_conll2003()["train"], nu.max_pieces(tokenizer, model))
    for r in rows:
        print(f"K={r['context']:>2} cap={r['context_pieces']}: {r['pieces']:,} pieces ({r['ratio']:.2f}x the sentences; "
              f"{r['epoch_ratio']:.2f}x with context dropout {DROPOUT}); mean length {r['mean_length']:.0f}, "
              f"max {r['max_length']}", flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "context-pieces.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
