"""Training and evaluation speed: this project's loop against the Hugging Face Trainer recipe.

Three recipes train the embedded default checkpoint (all-MiniLM-L6-v2) on the same first sentences of the
real eng.train, each in its own process (so peak memory is its own), on this machine:

  1. ours     - ner_utils.train as a user gets it: length-grouped, dynamically padded batches, fused AdamW,
                mixed_precision="auto" (bf16 autocast on a CPU with native bf16, as here), batch 16, lr 5e-5
  2. trainer  - the run_ner-style HF Trainer: DataCollatorForTokenClassification, batch 16, lr 5e-5,
                no length grouping, evaluation batch 8 (run_ner's defaults)
  3. pad128   - the seed notebook: every sentence padded to 128 pieces, batch 16, lr 5e-5 (HF Trainer)

Explanation rows: ours in fp32 (no autocast) and ours at batch 32. Each trains for --steps optimizer
steps, then predicts eng.testa + eng.testb in full (timed) and scores eng.testa span F1.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/train_speed.py --steps 150

The last line is machine-readable:
    SPEEDUP train_tokens_per_s_vs_trainer=X.XX eval_time_vs_trainer=Y.YY

Full epochs on a device (the speed issue's GPU measurement; warm-up is counted, not skipped):

    CONLL_DIR=... python benchmarks/train_speed.py --device cuda            # or auto; cpu works too (slow:
                                                                           # add --max-train-sentences for a smoke check)

  1. epochs-ours    - ner_utils.train, the embedded recipe (batch 32, lr 1e-4, casing, Viterbi), --epochs epochs,
                      mixed_precision="auto" (bf16 on compute capability >= 8.0); per-epoch seconds, and
                      eng.testa + eng.testb prediction timed twice (first and second call)
  2. epochs-trainer - the HF Trainer at the same batch and lr with bf16=True (fp16 where bf16 is not native),
                      --trainer-epochs epochs (default 2), per-epoch seconds from a callback
  3. epochs-bertbase - a randomly initialised BERT-base-sized encoder (12 x 768) through ner_utils.train,
                      --bert-epochs epochs

Its last line is machine-readable:
    DEVICE_SPEED device=.. ours_steady_tps=.. ours_first_epoch_ratio=.. trainer_steady_tps=.. ours_vs_trainer=..
    predict_s=.. bertbase_steady_tps=..
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ner_utils as nu  # noqa: E402

LABEL2ID = {label: i for i, label in enumerate(nu.LABELS)}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(splits, steps: int, batch: int, precision: str, out: Path) -> dict:
    config = nu.TrainConfig(model=str(nu.embedded_model_path()), epochs=1, lr=5e-5, batch_size=batch,
                            max_train_sentences=steps * batch, max_eval_sentences=1, output_dir=str(out),
                            mixed_precision=precision, word_shapes="off", decode="argmax", progress=False)
    result = nu.train(config, splits)
    model, tok = nu.load_model(str(out), fallback=False)
    model.config.ner_decode = "argmax"
    start = time.perf_counter()
    pred = {s: nu.predict_tags(model, tok, splits[s], batch_size=64, precision=precision)
            for s in ("testa", "testb")}
    eval_s = time.perf_counter() - start
    tokens = sum(len(f["input_ids"]) for f in nu.encode(tok, splits["train"][:steps * batch], LABEL2ID))
    return {"train_s": result.train_seconds, "real_tokens": tokens,
            "tokens_per_s": result.tokens_per_second, "eval_s": eval_s,
            "testa_f1": nu.span_scores([s.tags for s in splits["testa"]], pred["testa"])["overall"]["f1"],
            "peak_mb": _peak_mb()}


def _trainer_features(tok, sentences, pad_to: int | None):
    feats = []
    for s in sentences:
        enc = tok(s.words, is_split_into_words=True, truncation=True, max_length=pad_to or 512,
                  padding="max_length" if pad_to else False)
        labels = nu.align_labels(enc.word_ids(), [LABEL2ID[t] for t in s.tags]) if s.tags else None
        f = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if labels is not None:
            f["labels"] = labels
        feats.append(f)
    return feats


def run_trainer(splits, steps: int, batch: int, pad_to: int | None, out: Path) -> dict:
    import numpy as np
    import torch
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    model, tok = nu.load_model(str(nu.embedded_model_path()), fallback=False)
    train_sents = splits["train"][:steps * batch]
    train_feats = _trainer_features(tok, train_sents, pad_to)
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch, per_device_eval_batch_size=8,
                             learning_rate=5e-5, num_train_epochs=1, max_steps=steps, report_to="none",
                             save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
                             use_cpu=True, seed=42, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=train_feats,
                      data_collator=DataCollatorForTokenClassification(tok))
    metrics = trainer.train().metrics
    real = sum(sum(f["attention_mask"]) for f in train_feats)
    start = time.perf_counter()
    pred = {}
    for split in ("testa", "testb"):
        feats = _trainer_features(tok, splits[split], pad_to)
        for f, s in zip(feats, splits[split]):
            f["labels"] = nu.align_labels(tok(s.words, is_split_into_words=True, truncation=True,
                                              max_length=pad_to or 512).word_ids(), [0] * len(s.words))
        output = trainer.predict(feats)
        logits = output.predictions
        tags = []
        for row, labels in zip(np.argmax(logits, -1), output.label_ids):
            tags.append([nu.LABELS[p] for p, l in zip(row, labels) if l != -100])
        pred[split] = tags
    eval_s = time.perf_counter() - start
    gold = [s.tags for s in splits["testa"]]
    # a word truncated away by the 128-piece recipe counts as O, as in the seed notebook
    testa = [p + ["O"] * (len(g) - len(p)) for p, g in zip(pred["testa"], gold)]
    return {"train_s": metrics["train_runtime"], "real_tokens": real, "tokens_per_s": real / metrics["train_runtime"],
            "eval_s": eval_s, "testa_f1": nu.span_scores(gold, testa)["overall"]["f1"], "peak_mb": _peak_mb()}


def run_trainer_full(splits, out: Path, epochs: int = 3) -> dict:
    """The accuracy anchor: the run_ner-style Trainer for full epochs (batch 16, lr 5e-5, fp32), argmax."""
    import numpy as np
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    model, tok = nu.load_model(str(nu.embedded_model_path()), fallback=False)
    feats = _trainer_features(tok, splits["train"], None)
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=16, per_device_eval_batch_size=8,
                             learning_rate=5e-5, num_train_epochs=epochs, report_to="none", save_strategy="no",
                             eval_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=feats, data_collator=DataCollatorForTokenClassification(tok))
    runtime = trainer.train().metrics["train_runtime"]
    row = {"train_seconds": runtime, "tokens_per_second": epochs * sum(sum(f["attention_mask"]) for f in feats) / runtime}
    for split in ("testa", "testb"):
        tags = nu.predict_tags(model, tok, splits[split], decode="argmax", precision="no")
        row[split] = nu.span_scores([s.tags for s in splits[split]], tags)["overall"]["f1"]
    return row


def padding_report(sentences) -> dict:
    """Padded positions per real token for the three batching schemes, on the embedded tokenizer."""
    import random

    _, tok = nu.load_model(str(nu.embedded_model_path()), fallback=False)
    lengths = [len(f["input_ids"]) for f in nu.encode(tok, sentences, LABEL2ID)]
    order = list(range(len(lengths)))
    random.Random(0).shuffle(order)
    real = sum(lengths)
    grouped = sum(len(b) * max(lengths[i] for i in b) for b in nu.batch_order(lengths, 16, seed=0)) / real
    rand = sum(len(order[k:k + 16]) * max(lengths[i] for i in order[k:k + 16]) for k in range(0, len(order), 16)) / real
    return {"grouped": grouped, "random": rand, "pad128": 128 * len(lengths) / real}


def _steady(epoch_seconds: list[float], tokens_per_epoch: float) -> dict:
    """Steady-state word pieces/s (epochs after the first; the only epoch if there is one) and first/later ratio."""
    later = epoch_seconds[1:] or epoch_seconds
    mean_later = sum(later) / len(later)
    return {"epoch_seconds": [round(x, 2) for x in epoch_seconds], "tokens_per_epoch": tokens_per_epoch,
            "steady_tokens_per_s": tokens_per_epoch / mean_later,
            "all_epochs_tokens_per_s": tokens_per_epoch * len(epoch_seconds) / sum(epoch_seconds),
            "first_epoch_ratio": epoch_seconds[0] / mean_later if len(epoch_seconds) > 1 else None}


def run_epochs_ours(splits, model_path: str, epochs: int, cap: int | None, out: Path, lr: float = 1e-4,
                    time_prediction: bool = True) -> dict:
    """Full epochs of ner_utils.train (the embedded recipe's knobs) and timed prediction of testa + testb."""
    import torch

    config = nu.TrainConfig(model=model_path, epochs=epochs, lr=lr, batch_size=32, word_shapes="on", decode="viterbi",
                            context=0, max_train_sentences=cap, max_eval_sentences=cap,
                            output_dir=str(out), progress=False)
    r = nu.train(config, splits)
    row = _steady(r.epoch_seconds, r.tokens_per_second * r.train_seconds / epochs)
    row.update(precision=r.precision, testa_f1=r.testa["overall"]["f1"], peak_mb=r.peak_memory_mb)
    if not time_prediction:
        return row
    model, tok = nu.load_model(str(out), fallback=False)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    for key in ("predict_s_first", "predict_s"):  # a fresh model object: the first call may pay lazy loading
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        for split in ("testa", "testb"):
            nu.predict_tags(model, tok, splits[split])
        row[key] = time.perf_counter() - start
    return row


def run_epochs_trainer(splits, epochs: int, cap: int | None, out: Path) -> dict:
    """The HF Trainer at batch 32, lr 1e-4, with bf16 (fp16 where bf16 is not native), per-epoch seconds."""
    import torch
    from transformers import DataCollatorForTokenClassification, Trainer, TrainerCallback, TrainingArguments

    precision = nu.resolve_precision("auto")
    model, tok = nu.load_model(str(nu.embedded_model_path()), fallback=False)
    feats = _trainer_features(tok, splits["train"][:cap], None)

    class EpochClock(TrainerCallback):
        def __init__(self):
            self.seconds, self.start = [], 0.0

        def _now(self):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_epoch_begin(self, *args, **kwargs):
            self.start = self._now()

        def on_epoch_end(self, *args, **kwargs):
            self.seconds.append(self._now() - self.start)

    clock = EpochClock()
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=32, learning_rate=1e-4,
                             num_train_epochs=epochs, report_to="none", save_strategy="no", eval_strategy="no",
                             logging_strategy="no", disable_tqdm=True, use_cpu=not torch.cuda.is_available(), seed=42,
                             bf16=precision == "bf16", fp16=precision == "fp16", dataloader_num_workers=0)
    Trainer(model=model, args=args, train_dataset=feats, data_collator=DataCollatorForTokenClassification(tok),
            callbacks=[clock]).train()
    row = _steady(clock.seconds, sum(sum(f["attention_mask"]) for f in feats))
    row.update(precision=precision, peak_mb=_peak_mb())
    return row


def build_bert_base_random(folder: Path) -> str:
    """A randomly initialised 12 x 768 BERT token classifier with the embedded checkpoint's tokenizer."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    _, tok = nu.load_model(str(nu.embedded_model_path()), fallback=False)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512, num_labels=len(nu.LABELS),
                        id2label=dict(enumerate(nu.LABELS)), label2id=LABEL2ID)
    BertForTokenClassification(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return str(folder)


def run_epochs_bertbase(splits, epochs: int, cap: int | None, out: Path) -> dict:
    path = build_bert_base_random(out.with_name(out.name + "-model"))
    return run_epochs_ours(splits, path, epochs, cap, out, lr=5e-5, time_prediction=False)


DEVICE_RECIPES = {
    "epochs-ours": lambda sp, a, out: run_epochs_ours(sp, str(nu.embedded_model_path()), a.epochs, a.max_train_sentences, out),
    "epochs-trainer": lambda sp, a, out: run_epochs_trainer(sp, a.trainer_epochs, a.max_train_sentences, out),
    "epochs-bertbase": lambda sp, a, out: run_epochs_bertbase(sp, a.bert_epochs, a.max_train_sentences, out),
}


def device_report(rows: dict, device: str) -> str:
    """The full-epoch table and the DEVICE_SPEED line."""
    lines = [f"device: {device}", "",
             "| recipe | precision | epoch seconds | steady word pieces/s | first / later epochs | predict testa+testb s "
             "(first / second call) |", "| --- | --- | --- | ---: | ---: | ---: |"]
    for name, r in rows.items():
        first = f"{r['first_epoch_ratio']:.2f}" if r.get("first_epoch_ratio") else "(one epoch)"
        pred = f"{r['predict_s_first']:.2f} / {r['predict_s']:.2f}" if "predict_s" in r else ""
        lines.append(f"| {name} | {r['precision']} | {', '.join(f'{x:.1f}' for x in r['epoch_seconds'])} | "
                     f"{r['steady_tokens_per_s']:.0f} | {first} | {pred} |")
    ours, trainer, bert = rows["epochs-ours"], rows["epochs-trainer"], rows["epochs-bertbase"]
    # like for like: steady states when both ran 2+ epochs, else every epoch of both (warm-up included in both)
    key = "steady_tokens_per_s" if min(len(ours["epoch_seconds"]), len(trainer["epoch_seconds"])) > 1 \
        else "all_epochs_tokens_per_s"
    lines.append("")
    lines.append(f"ours vs Trainer compares {'steady states' if key.startswith('steady') else 'all epochs, warm-up included'}"
                 f": {ours[key]:.0f} against {trainer[key]:.0f} word pieces/s")
    lines.append(f"DEVICE_SPEED device={device.replace(' ', '_')} ours_steady_tps={ours['steady_tokens_per_s']:.0f} "
                 f"ours_first_epoch_ratio={ours['first_epoch_ratio'] or 0:.2f} "
                 f"trainer_steady_tps={trainer['steady_tokens_per_s']:.0f} "
                 f"ours_vs_trainer={ours[key] / trainer[key]:.2f} "
                 f"predict_s={ours['predict_s']:.2f} bertbase_steady_tps={bert['steady_tokens_per_s']:.0f}")
    return "\n".join(lines)


def _run_child(name: str, args, extra: list[str], env: dict | None = None) -> dict:
    """Run one recipe in its own process (its own peak memory); its JSON row is the last line it prints."""
    cmd = [sys.executable, __file__, "--one", name, "--out", args.out, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{name:10s} done: {row}", file=sys.stderr, flush=True)
    return row


def main_device(args) -> None:
    """Full epochs of the three device recipes, each in its own process, then the table and DEVICE_SPEED."""
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    env = os.environ | ({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {})
    extra = ["--epochs", str(args.epochs), "--trainer-epochs", str(args.trainer_epochs), "--bert-epochs",
             str(args.bert_epochs)] + (["--max-train-sentences", str(args.max_train_sentences)]
                                       if args.max_train_sentences else [])
    rows = {name: _run_child(name, args, extra, env) for name in DEVICE_RECIPES}
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    cap = f", first {args.max_train_sentences} sentences of eng.train" if args.max_train_sentences else ", all of eng.train"
    print(device_report(rows, name + cap))


RECIPES = {
    "ours": lambda sp, a, out: run_ours(sp, a.steps, 16, "auto", out),
    "ours-fp32": lambda sp, a, out: run_ours(sp, a.steps, 16, "no", out),
    "ours-b32": lambda sp, a, out: run_ours(sp, a.steps // 2, 32, "auto", out),
    "trainer": lambda sp, a, out: run_trainer(sp, a.steps, 16, None, out),
    "pad128": lambda sp, a, out: run_trainer(sp, a.pad_steps, 16, 128, out),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps per recipe (batch 16)")
    parser.add_argument("--pad-steps", type=int, default=60, help="steps for the slow pad-to-128 recipe")
    parser.add_argument("--recipes", default="ours,trainer,pad128,ours-fp32,ours-b32")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default=None,
                        help="full-epoch mode on this device: ours, the HF Trainer with bf16, a BERT-base-sized model")
    parser.add_argument("--epochs", type=int, default=3, help="full-epoch mode: epochs of this loop")
    parser.add_argument("--trainer-epochs", type=int, default=2, help="full-epoch mode: epochs of the Trainer")
    parser.add_argument("--bert-epochs", type=int, default=1, help="full-epoch mode: epochs of the BERT-base-sized model")
    parser.add_argument("--max-train-sentences", type=int, default=None, help="full-epoch mode: cap eng.train")
    args = parser.parse_args()
    if args.device and not args.one:
        main_device(args)
        return
    splits = nu.load_conll2003()
    if args.one:  # child process: one recipe, JSON on the last line
        recipes = DEVICE_RECIPES if args.one in DEVICE_RECIPES else RECIPES
        print(json.dumps(recipes[args.one](splits, args, Path(args.out) / args.one)))
        return
    extra = ["--steps", str(args.steps), "--pad-steps", str(args.pad_steps)]
    rows = {name: _run_child(name, args, extra) for name in args.recipes.split(",")}
    base = rows["trainer"]
    pad = padding_report(splits["train"])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import torch
    import transformers
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}, Python {platform.python_version()}; "
          f"mixed_precision='auto' resolves to {nu.resolve_precision('auto')!r} here")
    print(f"work: {args.steps} steps of batch 16 on the first sentences of eng.train (pad128: {args.pad_steps} steps); "
          "evaluation = predict all of eng.testa + eng.testb\n")
    print("| recipe | train tokens/s | s / epoch (eng.train, est.) | train speed vs Trainer | eval s (testa+testb) "
          "| eval time vs Trainer | testa F1 after these steps | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    epoch_tokens = rows["ours"]["real_tokens"] * 14041 / (args.steps * 16)
    for name, r in rows.items():
        print(f"| {name} | {r['tokens_per_s']:.0f} | {epoch_tokens / r['tokens_per_s']:.0f} | "
              f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['eval_s']:.1f} | {r['eval_s'] / base['eval_s']:.2f} | "
              f"{100 * r['testa_f1']:.2f} | {r['peak_mb']:.0f} |")
    print(f"\npadded positions per real token on all of eng.train: length-grouped batches of 16 {pad['grouped']:.3f}, "
          f"random batches of 16 padded to their longest (Trainer) {pad['random']:.3f}, everything padded to 128 "
          f"{pad['pad128']:.3f}")
    print(f"\nSPEEDUP train_tokens_per_s_vs_trainer={rows['ours']['tokens_per_s'] / base['tokens_per_s']:.2f} "
          f"eval_time_vs_trainer={rows['ours']['eval_s'] / base['eval_s']:.2f}")


if __name__ == "__main__":
    main()
