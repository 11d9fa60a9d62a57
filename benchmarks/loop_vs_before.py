"""This loop against the loop before the speed work (ner_utils.py of commit 7890d24, loaded from git), side by
side in one process on this machine: training word pieces/s on the notebook recipe (embedded all-MiniLM-L6-v2,
batch 32, casing feature, bf16 where native) and the time to predict all of eng.testa + eng.testb.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/loop_vs_before.py --steps 120 --rounds 2

Rounds alternate before/after so that a change in the machine's speed hits both. Last line:
    LOOP train_speedup=X.XX eval_speedup=Y.YY
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
BEFORE = "7890d24"

import ner_utils as after  # noqa: E402


def load_before():
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ner_utils_before.py"
    path.write_text(subprocess.run(["git", "show", f"{BEFORE}:ner_utils.py"], cwd=ROOT, capture_output=True, text=True,
                                   check=True).stdout)
    spec = importlib.util.spec_from_file_location("ner_utils_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ner_utils_before"] = module
    spec.loader.exec_module(module)
    return module


def measure(nu, splits, steps: int) -> tuple[float, float]:
    """(training word pieces/s over ``steps`` steps, seconds to predict testa + testb with the trained model)."""
    config = nu.TrainConfig(model=str(after.embedded_model_path()), epochs=1, lr=1e-4, batch_size=32,
                            word_shapes="on", decode="viterbi", context=0, max_train_sentences=32 * steps,
                            max_eval_sentences=1, output_dir=str(ROOT / "benchmarks" / "out" / "loop"),
                            mixed_precision="auto", progress=False)
    result = nu.train(config, splits)
    model, tok = nu.load_model(config.output_dir, fallback=False)
    start = time.perf_counter()
    for split in ("testa", "testb"):
        nu.predict_tags(model, tok, splits[split])
    return result.tokens_per_second, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import statistics

    import torch

    before = load_before()
    splits = after.load_conll2003()
    rows = {"before": [], "after": []}
    for r in range(args.rounds):
        for name, module in (("before", before), ("after", after)):
            speed, eval_s = measure(module, splits, args.steps)
            rows[name].append((speed, eval_s))
            print(f"round {r + 1} {name:6s}: train {speed:,.0f} word pieces/s, predict testa+testb {eval_s:.1f} s", flush=True)
    mean = {k: (statistics.mean(s for s, _ in v), statistics.mean(e for _, e in v)) for k, v in rows.items()}
    print(f"\nmachine: {after.environment_info()['device']}, torch {torch.__version__}, precision "
          f"{after.resolve_precision('auto')}; {args.steps} steps of batch 32 per round")
    print("| loop | train word pieces/s | predict testa+testb (s) |\n| --- | ---: | ---: |")
    for k, (speed, eval_s) in mean.items():
        print(f"| {k} ({BEFORE if k == 'before' else 'this commit'}) | {speed:,.0f} | {eval_s:.1f} |")
    print(f"\nLOOP train_speedup={mean['after'][0] / mean['before'][0]:.2f} "
          f"eval_speedup={mean['before'][1] / mean['after'][1]:.2f}")


if __name__ == "__main__":
    main()
