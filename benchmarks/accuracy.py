"""Accuracy ablation on the real data: casing features, document context, BIO-constrained decoding.

Every row fine-tunes the embedded default checkpoint (all-MiniLM-L6-v2) on the full real eng.train and
scores conlleval span F1 on eng.testa and eng.testb. Choices (features, learning rate, epochs, batch) are
made on eng.testa only; eng.testb is reported, never used to choose.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --only plain-bf16
    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --report

Each row writes benchmarks/results/ROW.json; --report turns all present rows into benchmarks/RESULTS.md
and prints the machine-readable last line:
    ACCURACY anchor_testb=..  best_testb_mean=..  best_testb_std=..  best_train_seconds=..  anchor_train_seconds=..
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ner_utils as nu  # noqa: E402

RESULTS = HERE / "results"
FINAL_SEEDS = (0, 1, 2, 7, 42)  # 42 is the notebook's seed, 7 the CLI check's
PLAIN = dict(lr=5e-5, batch_size=16, epochs=3, word_shapes="off", context=0, decode="argmax")
BEST = dict(lr=1e-4, batch_size=32, epochs=4, word_shapes="on", context=0, decode="viterbi", mixed_precision="bf16")

# row -> (description, TrainConfig overrides); "anchor" is the HF Trainer
ROWS = {
    "anchor": ("HF Trainer (run_ner-style), batch 16, lr 5e-5, 3 epochs, fp32", None),
    "plain": ("this loop, batch 16, lr 5e-5, 3 epochs, fp32", PLAIN | {"mixed_precision": "no"}),
    "plain-bf16": ("this loop, as `plain` with bf16 autocast", PLAIN | {"mixed_precision": "bf16"}),
    "shapes": ("`plain-bf16` + casing features", PLAIN | {"mixed_precision": "bf16", "word_shapes": "on"}),
    "context16": ("`plain-bf16` + document context K=16", PLAIN | {"mixed_precision": "bf16", "context": 16}),
    **{f"best-s{s}": (f"casing + Viterbi + lr 1e-4, batch 32, 4 epochs, bf16; seed {s}", BEST | {"seed": s})
       for s in (0, 1, 2)},
    # 6 epochs: chosen because seed 0 beat the 4-epoch recipe on eng.testa (94.01 against 93.62)
    **{f"final6-s{s}": (f"final: as `best` with 6 epochs; seed {s}", BEST | {"seed": s, "epochs": 6})
       for s in FINAL_SEEDS},
}
FINAL = "final6"
GOAL_TESTB = 89.5


def run_row(name: str) -> dict:
    splits = nu.load_conll2003()
    gold = {s: [x.tags for x in splits[s]] for s in ("testa", "testb")}
    out = HERE / "out" / name
    if name == "anchor":
        from train_speed import run_trainer_full
        row = run_trainer_full(splits, out)
    else:
        overrides = ROWS[name][1]
        config = nu.TrainConfig(model=str(nu.embedded_model_path()), output_dir=str(out), progress=False,
                                **({"seed": 0} | overrides))
        result = nu.train(config, splits)
        model, tok = nu.load_model(str(out), fallback=False)
        row = {"train_seconds": result.train_seconds, "tokens_per_second": result.tokens_per_second,
               "testa_f1_per_epoch": result.testa_f1_per_epoch, "best_epoch": result.best_epoch,
               "config": {k: v for k, v in result.config.items() if k in nu._RESUME_KEYS or k in ("decode", "mixed_precision")}}
        for decode in ("argmax", "viterbi"):
            for split in ("testa", "testb"):
                pred = nu.predict_tags(model, tok, splits[split], decode=decode, precision=config.mixed_precision)
                row[f"{split}_{decode}"] = nu.span_scores(gold[split], pred)["overall"]["f1"]
        row["testa"], row["testb"] = row[f"testa_{config.decode}"], row[f"testb_{config.decode}"]
    row.update(name=name, description=ROWS[name][0], finished=time.strftime("%Y-%m-%d %H:%M"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(row, indent=1))
    return row


def _machine() -> str:
    import torch
    import transformers
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return (f"{cpu}, {os.cpu_count()} cores (torch {torch.__version__}, {torch.get_num_threads()} threads), "
            f"transformers {transformers.__version__}, Python {platform.python_version()}")


def report() -> str:
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    lines = ["# Accuracy ablation (real CoNLL-2003, embedded all-MiniLM-L6-v2)", "",
             f"Machine: {_machine()}.", "",
             "Every row trains on the full eng.train. **eng.testb was never used to choose anything**: the best epoch",
             "of each run is picked by eng.testa, and features and recipe were compared on eng.testa.", "",
             "Command (one row at a time, then the table):", "",
             "    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --only ROW",
             "    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --report", "",
             "testa/testb F1 use the row's own decoding; the next two columns give both decodings of the same model.",
             "",
             "| row | recipe | testa F1 | testb F1 | testa argmax / Viterbi | testb argmax / Viterbi | train s | tokens/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in ROWS:
        if name not in rows:
            lines.append(f"| {name} | {ROWS[name][0]} | not run | | | | | |")
            continue
        r = rows[name]
        both = [f"{100 * r[f'{split}_argmax']:.2f} / {100 * r[f'{split}_viterbi']:.2f}" if f"{split}_viterbi" in r
                else "(argmax only)" for split in ("testa", "testb")]
        lines.append(f"| {name} | {r['description']} | {100 * r['testa']:.2f} | {100 * r['testb']:.2f} | {both[0]} | "
                     f"{both[1]} | {r['train_seconds']:.0f} | {r['tokens_per_second']:.0f} |")
    lines += ["", "Notes: `plain-bf16` and `shapes` ran before the loop switched to fused AdamW (their tokens/s are a little",
              "lower for it) and scored their final predictions in fp32; all later rows use fused AdamW and bf16",
              "prediction. The Trainer anchor is scored with the same first-piece argmax as `predict_tags(decode=\"argmax\")`.",
              "`final6-s1` shared the CPU with a unit-test run for about two minutes, which inflates its training seconds.",
              "`final6-s7` and `final6-s42` ran on a later day when this machine ran about 40% slower (for the old and",
              "the new loop alike, benchmarks/README.md), with the reorganised loop and token-budget prediction: compare",
              "their F1, not their seconds.",
              "The 6-epoch `final6` recipe replaced the 4-epoch `best` one because its seed 0 scored higher on eng.testa."]
    best = [rows[f"{FINAL}-s{s}"] for s in FINAL_SEEDS if f"{FINAL}-s{s}" in rows]
    seeds = [s for s in FINAL_SEEDS if f"{FINAL}-s{s}" in rows]
    summary = ""
    if best and "anchor" in rows:
        tb = [100 * r["testb"] for r in best]
        ta = [100 * r["testa"] for r in best]
        std = statistics.stdev(tb) if len(tb) > 1 else 0.0
        verdict = "reached" if statistics.mean(tb) >= GOAL_TESTB else "**not reached**"
        lines += ["", f"Goal: eng.testb F1 >= {GOAL_TESTB} as a mean over seeds, in no more training time than the anchor: "
                  f"{verdict} ({statistics.mean(tb):.2f}).", f"Final combination over {len(best)} seed(s) "
                  f"({', '.join(map(str, seeds))}): testa {statistics.mean(ta):.2f} ± "
                  f"{statistics.stdev(ta) if len(ta) > 1 else 0.0:.2f}, testb {statistics.mean(tb):.2f} ± {std:.2f} "
                  f"(mean ± std), testb min {min(tb):.2f} max {max(tb):.2f}, "
                  f"{statistics.mean(r['train_seconds'] for r in best):.0f} s training each, against the "
                  f"anchor's {100 * rows['anchor']['testb']:.2f} testb in {rows['anchor']['train_seconds']:.0f} s."]
        summary = (f"ACCURACY anchor_testb={100 * rows['anchor']['testb']:.2f}  best_testb_mean={statistics.mean(tb):.2f}  "
                   f"best_testb_std={std:.2f}  best_testb_min={min(tb):.2f}  seeds={','.join(map(str, seeds))}  "
                   f"best_train_seconds={statistics.mean(r['train_seconds'] for r in best):.0f}  "
                   f"anchor_train_seconds={rows['anchor']['train_seconds']:.0f}")
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    return "\n".join(lines) + ("\n\n" + summary if summary else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"run one row: {', '.join(ROWS)}")
    parser.add_argument("--report", action="store_true", help="write RESULTS.md from the rows run so far")
    args = parser.parse_args()
    if args.only:
        for name in args.only.split(","):
            print(json.dumps(run_row(name)), flush=True)
    if args.report or not args.only:
        if not args.only and not args.report:
            for name in ROWS:
                run_row(name)
        print(report())


if __name__ == "__main__":
    main()
