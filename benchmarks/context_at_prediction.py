"""Document context at prediction time only: a trained model scored with K words of context each side.

Measures whether context needs training or helps a model that never saw it (FLERT's question), and what it
costs at prediction. Models are accuracy.py's saved rows (benchmarks/out/ROW).

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/context_at_prediction.py final6-s42 final6-s7

Writes benchmarks/results/predict-context-ROW.json per model and prints one line per (model, K).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ner_utils as nu  # noqa: E402

KS = (0, 16, 32, 64)


def score_row(name: str, splits: dict, ks=KS) -> dict:
    """testa/testb span F1 (the model's own decoding) and prediction seconds for each context K."""
    model, tok = nu.load_model(str(HERE / "out" / name), fallback=False)
    row = {"model": name, "trained_context": getattr(model.config, "ner_context", 0), "by_k": {}}
    for k in ks:
        entry = {}
        for split in ("testa", "testb"):
            start = time.perf_counter()
            pred = nu.predict_tags(model, tok, splits[split], context=k)  # precision "auto", as accuracy.py's rows
            entry[f"{split}_seconds"] = time.perf_counter() - start
            entry[split] = nu.span_scores([s.tags for s in splits[split]], pred)["overall"]["f1"]
        row["by_k"][str(k)] = entry
        print(f"{name} K={k}: testa {100 * entry['testa']:.2f} testb {100 * entry['testb']:.2f} "
              f"({entry['testa_seconds'] + entry['testb_seconds']:.1f} s to predict both)", flush=True)
    (HERE / "results" / f"predict-context-{name}.json").write_text(json.dumps(row, indent=1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rows", nargs="+", help="saved accuracy.py rows under benchmarks/out/")
    parser.add_argument("--ks", default=",".join(map(str, KS)), help="context sizes, comma-separated (default: %(default)s)")
    args = parser.parse_args()
    splits = nu.load_conll2003()
    for name in args.rows:
        score_row(name, splits, [int(k) for k in args.ks.split(",")])


if __name__ == "__main__":
    main()
