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
FINAL6 = BEST | {"epochs": 6}
# Issue 11: document context on top of final6, each run also scoring the mean of its last epochs' weights on
# eng.testa (kept only if it beats every single epoch there). Rows "NAME-sSEED"; explored on seed 42 first.
CONTEXT = {
    "ctx16": ("final6 + context K=16 (all epochs, dropout 0.5) + mean of last 2 epochs", FINAL6 | {
        "context": 16, "average_last": 2}),
    "ctx16l2": ("final6 + context K=16 in the last 2 epochs only (dropout 0.5) + mean of last 2 epochs", FINAL6 | {
        "context": 16, "context_epochs": 2, "average_last": 2}),
    "ctx32": ("final6 + context K=32 (all epochs, dropout 0.5) + mean of last 2 epochs", FINAL6 | {
        "context": 32, "average_last": 2}),
    "ctx64": ("final6 + context K=64 (all epochs, dropout 0.5) + mean of last 2 epochs", FINAL6 | {
        "context": 64, "average_last": 2}),
    "ctx64p32": ("as `ctx64`, context capped at 32 word pieces each side", FINAL6 | {
        "context": 64, "context_pieces": 32, "average_last": 2}),
}
ROWS.update({f"{name}-s{s}": (f"{text}; seed {s}", overrides | {"seed": s})
             for name, (text, overrides) in CONTEXT.items() for s in FINAL_SEEDS})
OPTIONAL = {f"{name}-s{s}" for name in CONTEXT for s in FINAL_SEEDS}  # listed only when run
FINAL = "final6"  # the first accuracy step's recipe (its goal was 89.5)
# recipes run over all FINAL_SEEDS; the notebook default is the one with the higher mean eng.testa F1
CANDIDATES = {FINAL: "sentence-level, the first accuracy step",
              "ctx16l2": "document context K=16 in the last 2 epochs + mean of the last 2 epochs"}
GOAL_TESTB = 90.0  # the accuracy issue's goal: mean eng.testb over five seeds, in no more time than the anchor


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
               "train_tokens": result.tokens_per_second * result.train_seconds,
               "testa_f1_per_epoch": result.testa_f1_per_epoch, "best_epoch": result.best_epoch,
               "average_testa": result.average_testa_f1, "averaged": result.averaged,
               "config": {k: v for k, v in result.config.items() if k in nu._RESUME_KEYS or k in ("decode", "mixed_precision")}}
        labels, row["predict_seconds"] = nu._labels_in_order(model), 0.0
        for split in ("testa", "testb"):  # one forward pass per split (the model's own context), both decodings
            start = time.perf_counter()
            scores = nu.word_log_probs(model, tok, splits[split], precision=config.mixed_precision)
            own = nu.decode_tags(scores, labels, result.config["decode"])
            row["predict_seconds"] += time.perf_counter() - start  # what predict_tags costs: forward + decoding
            for decode in ("argmax", "viterbi"):
                pred = own if decode == result.config["decode"] else nu.decode_tags(scores, labels, decode)
                row[f"{split}_{decode}"] = nu.span_scores(gold[split], pred)["overall"]["f1"]
        row["testa"], row["testb"] = row[f"testa_{result.config['decode']}"], row[f"testb_{result.config['decode']}"]
        if getattr(model.config, "ner_context", 0):  # the same model with its context switched off
            for split in ("testa", "testb"):
                pred = nu.predict_tags(model, tok, splits[split], precision=config.mixed_precision, context=0)
                row[f"{split}_no_context"] = nu.span_scores(gold[split], pred)["overall"]["f1"]
    row.update(name=name, description=ROWS[name][0], finished=time.strftime("%Y-%m-%d %H:%M"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(row, indent=1))
    return row


def seed_summary(rows: dict, group: str | None) -> dict:
    """Mean, std (n-1), min and max over the seeds of one recipe (rows GROUP-sSEED); {} if none ran."""
    runs = [(s, rows[f"{group}-s{s}"]) for s in FINAL_SEEDS if group and f"{group}-s{s}" in rows]
    if not runs:
        return {}
    tb, ta = [100 * r["testb"] for _, r in runs], [100 * r["testa"] for _, r in runs]
    sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
    return {"n": len(runs), "seeds": ",".join(str(s) for s, _ in runs), "testb_mean": statistics.mean(tb),
            "testb_std": sd(tb), "testb_min": min(tb), "testb_max": max(tb), "testa_mean": statistics.mean(ta),
            "testa_std": sd(ta), "seconds": statistics.mean(r["train_seconds"] for _, r in runs),
            "seconds_max": max(r["train_seconds"] for _, r in runs)}


def context_table(rows: dict) -> list[str]:
    """Markdown lines: the context and averaging rows beside final6 of the same seed."""
    done = [name for name in ROWS if name in OPTIONAL and name in rows]
    if not done:
        return []
    lines = ["", "## Document context and weight averaging (final6 + ...)", "",
             "Each run also scores the mean of its last epochs' weights on eng.testa; that mean becomes the final model",
             "only if it beats every single epoch there (\"kept\"). \"no ctx\" scores the same model with its context",
             "switched off at prediction. \"pieces\" is the word pieces trained, against final6 of the same seed.",
             "Prediction seconds cover eng.testa + eng.testb with the model's own context.", "",
             "| row | recipe | testa F1 | testb F1 | best epoch testa | mean of last testa | testa / testb no ctx "
             "| train s | tokens/s | pieces | predict s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in done:
        r = rows[name]
        base = rows.get(f"{FINAL}-s{r['config']['seed']}", {})
        pieces = (f"{r['train_tokens'] / (base['tokens_per_second'] * base['train_seconds']):.2f}×" if base
                  else f"{r['train_tokens'] / 1e6:.1f}M")
        avg = ("" if r.get("average_testa") is None
               else f"{100 * r['average_testa']:.2f} ({'kept' if r['averaged'] else 'not kept'})")
        no_ctx = (f"{100 * r['testa_no_context']:.2f} / {100 * r['testb_no_context']:.2f}"
                  if "testa_no_context" in r else "")
        lines.append(f"| {name} | {r['description']} | {100 * r['testa']:.2f} | {100 * r['testb']:.2f} | "
                     f"{100 * max(r['testa_f1_per_epoch']):.2f} | {avg} | {no_ctx} | {r['train_seconds']:.0f} | "
                     f"{r['tokens_per_second']:.0f} | {pieces} | {r.get('predict_seconds', 0):.0f} |")
    return lines


def no_time_limit_row(rows: dict) -> str | None:
    """The seed-42 row (final6 or any context row) with the highest eng.testa F1, time not counted."""
    names = [n for n in rows if n == f"{FINAL}-s42" or (n in OPTIONAL and n.endswith("-s42"))]
    return max(names, key=lambda n: rows[n]["testa"]) if names else None


def pieces_table() -> list[str]:
    """Markdown lines from results/context-pieces.json (benchmarks/context_pieces.py), if it was run."""
    path = RESULTS / "context-pieces.json"
    if not path.exists():
        return []
    found = json.loads(path.read_text())
    if not found:
        return []
    lines = ["", "## Where context's time goes: word pieces per eng.train epoch", "",
             f"`benchmarks/context_pieces.py` (tokenizer only). The sentences alone are {found[0]['plain_pieces']:,} "
             "pieces; a context epoch with context dropout 0.5 reads about half its sentences without context. "
             "A step's time grows at least with its pieces (attention a little faster).", "",
             "| K words each side | cap (pieces each side) | pieces | x sentences | x per context epoch (dropout 0.5) "
             "| mean / max length |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['context']} | {r['context_pieces'] or 'none'} | {r['pieces']:,} | {r['ratio']:.2f} | "
              f"{r['epoch_ratio']:.2f} | {r['mean_length']:.0f} / {r['max_length']} |" for r in found]
    return lines


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
        if name in OPTIONAL:
            continue
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
              "The 6-epoch `final6` recipe replaced the 4-epoch `best` one because its seed 0 scored higher on eng.testa.",
              "The context rows ran on the slower day, like `final6-s7`/`final6-s42`: their seconds compare with those two",
              "rows (655 s), and with the anchor's 882 s, measured on the faster day, only conservatively (on that day",
              "`final6` took 421 s on average, so the anchor took 2.1x `final6`).",
              "Context was explored on seed 42 (`ctx16-s42`, every epoch; `ctx16l2-s42`, last 2 epochs), chosen on eng.testa",
              "against `final6-s42`, and the variant sized for the anchor's time then ran the other four seeds. The",
              "notebook default is the recipe, among those within the anchor's training time, with the higher five-seed",
              "eng.testa mean. In raw seconds `ctx16l2` (920 s on average) is over the anchor's 882 s; on the same day",
              "its five runs averaged about 1.4x `final6-s42`'s 655 s (`ctx16l2-s42` alone 1.33x), while the anchor took",
              "about 2.1x `final6` on its day, so day-adjusted it would fit. Its eng.testa mean is 0.04 above `final6`'s",
              "either way, inside one standard deviation of both, for about 1.4x the training time: `final6` stays the default.",
              "`ctx16l2-s0` and `ctx16l2-s1` shared the CPU with a low-priority (nice 19) unit-test run, which adds a",
              "little to their seconds; `ctx16l2-s7` shared it for two minutes with a normal-priority test run. The context rows scored every epoch's eng.testa with K=16, including the epochs",
              "trained without context; the loop now scores those without context (as trained). Every context row's",
              "best epoch was a context epoch (5 or 6), which both versions score alike, so the rows stand.",
              "`ctx64-s42` and `ctx64p32-s42` ran later on the same day as `final6-s42` (the slower speed). During the",
              "first epoch of `ctx64-s42` (842 s, against 586-637 s for each later one) short unit-test runs shared the",
              "CPU for about three minutes; its training seconds are a little high for it."]
    lines += context_table(rows) + pieces_table()
    summary = ""
    if "anchor" in rows:
        anchor = rows["anchor"]
        stats = {group: seed_summary(rows, group) for group in CANDIDATES}
        # the notebook default: of the recipes run over all seeds within the anchor's training time, the higher mean
        # eng.testa F1 (eng.testb is never used to choose)
        full = {g: st for g, st in stats.items() if st and st["n"] == len(FINAL_SEEDS)
                and st["seconds"] <= anchor["train_seconds"]}
        default = max(full, key=lambda g: full[g]["testa_mean"]) if full else None
        for group, st in stats.items():
            if not st:
                continue
            verdict = ("reached" if st["testb_mean"] >= GOAL_TESTB
                       else f"**not reached** ({GOAL_TESTB - st['testb_mean']:.2f} short)")
            within = "within" if st["seconds"] <= anchor["train_seconds"] else "**over**"
            lines += ["", f"**{group}** ({CANDIDATES[group]}){' - the notebook default' if group == default else ''}, "
                      f"over {st['n']} seed(s) ({st['seeds']}): testa {st['testa_mean']:.2f} ± {st['testa_std']:.2f}, "
                      f"testb {st['testb_mean']:.2f} ± {st['testb_std']:.2f} (mean ± std), testb min {st['testb_min']:.2f} "
                      f"max {st['testb_max']:.2f}, {st['seconds']:.0f} s training each (max {st['seconds_max']:.0f} s; "
                      f"{within} the anchor's {anchor['train_seconds']:.0f} s), against the anchor's "
                      f"{100 * anchor['testb']:.2f} testb. Goal eng.testb mean >= {GOAL_TESTB}: {verdict}."]
        best = no_time_limit_row(rows)
        if best and f"{FINAL}-s42" in rows:
            r, spread, base = rows[best], stats[FINAL], rows[f"{FINAL}-s42"]
            day = "same day" if r["finished"][:10] == base["finished"][:10] else "another day"
            seed42 = [n for n in ROWS if n in rows and (n == f"{FINAL}-s42" or (n in OPTIONAL and n.endswith("-s42")))]
            lines += ["", f"**No time limit:** of the seed-42 rows ({', '.join(f'`{n}`' for n in seed42)}), "
                      f"the highest eng.testa is `{best}` ({ROWS[best][0]}): testa {100 * r['testa']:.2f}, testb "
                      f"{100 * r['testb']:.2f}, in {r['train_seconds']:.0f} s of training "
                      f"({r['train_seconds'] / base['train_seconds']:.2f}x `{FINAL}-s42`, {day}). One seed only"
                      + (f": against the seed-to-seed spread of `{FINAL}` (testb std {spread['testb_std']:.2f}), a gap "
                         "of a few tenths between single runs is not a measured difference." if spread.get("n", 0) >= 2
                         else ".")]
        if default:
            st = stats[default]
            lines += ["", f"The notebook default is the candidate within the anchor's training time with the higher "
                      f"five-seed eng.testa mean: **{default}**."]
            summary = (f"ACCURACY anchor_testb={100 * anchor['testb']:.2f}  best={default}  "
                       f"best_testb_mean={st['testb_mean']:.2f}  best_testb_std={st['testb_std']:.2f}  "
                       f"best_testb_min={st['testb_min']:.2f}  seeds={st['seeds']}  "
                       f"best_train_seconds={st['seconds']:.0f}  anchor_train_seconds={anchor['train_seconds']:.0f}")
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
