"""What could still make the training step faster on this CPU? The levers left after the speed work, measured side
by side in one process on the notebook's recipe (embedded all-MiniLM-L6-v2, batch 32, casing feature, bf16 autocast
where native, fused AdamW, clipping), on the same real eng.train batches, and the ceiling the matrix products set.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/cpu_levers.py --steps 60 --rounds 3

1. Padding: padded positions per real word piece on all of eng.train for length-grouped batches of 32 with widths
   rounded up to multiples of 1, 8, 16 and 32 pieces, and how many widths an epoch sees.
2. Levers, each a fresh model from the same seed; every round runs each lever once, in an order rotated from round to
   round, so a change in the machine's speed hits all; the ratio to the recipe is taken within each round, and the
   table gives the median of those ratios:
   the step as ``ner_utils`` trains (widths as they are); widths padded to multiples of 16 (the GPU setting); the
   word-piece embedding frozen (no dense gradient, clipping or AdamW update for its 11.7M values); dropout masks drawn
   16 bits at a time from 64-bit random integers instead of ``bernoulli_`` (the same keep probability); attention
   dropout off (SDPA may then pick its CPU flash kernel). Only the first is the recipe: the others change what is
   computed (padding, which weights learn, the random stream), so they would need the accuracy benchmark's seeds.
3. Ceiling: the bf16 matrix-product rate of this machine on the step's own shapes (a probe), the time the step's
   matrix products would take at that rate, and so the most any cut of everything else could give.

Last line: ``CPU_LEVERS best_lever=NAME best_ratio=X.XX matmul_share=Y.YY ceiling=Z.ZZ``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ner_utils as nu  # noqa: E402

LEVERS = {
    "recipe": "the step as ner_utils trains (widths as they are)",
    "pad16": "widths padded to multiples of 16 (the GPU setting)",
    "frozen-embeddings": "word-piece embedding frozen",
    "cheap-dropout-masks": "dropout masks from 64-bit random integers (hidden dropouts)",
    "no-attention-dropout": "attention dropout off (SDPA's CPU kernel choice)",
}


def padding_table(features: list[dict], batch_size: int = 32) -> list[tuple[int, float, int]]:
    """(multiple, padded positions per real word piece, distinct widths) for an epoch of length-grouped batches."""
    lengths = [len(f["input_ids"]) for f in features]
    batches = nu.batch_order(lengths, batch_size, seed=0)
    longest = [max(lengths[i] for i in b) for b in batches]
    rows = []
    for multiple in (1, 8, 16, 32):
        widths = [-(-w // multiple) * multiple for w in longest]
        padded = sum(w * len(b) for w, b in zip(widths, batches))
        rows.append((multiple, padded / sum(lengths), len(set(widths))))
    return rows


def cheap_dropout(p: float):
    """A dropout module whose keep mask compares 16-bit chunks of 64-bit random integers with p (three chunks per
    draw: ``random_`` fills the low 63 bits), a third of the draws and none of ``bernoulli_``'s per-element cost."""
    import torch

    class CheapDropout(torch.nn.Module):
        def forward(self, x):
            if not self.training or p == 0:
                return x
            if p == 1:
                return x * 0
            n = x.numel()
            draws = torch.empty(-(-n // 3), dtype=torch.int64, device=x.device).random_()
            chunks = draws.view(torch.int16).view(-1, 4)[:, :3].reshape(-1)[:n].view(x.shape)
            return x * (chunks >= -32768 + round(p * 65536)) * (1.0 / (1.0 - p))

    return CheapDropout()


def build(lever: str, seed: int = 0):
    """(model, optimizer, scheduler) for one lever, from the same seed."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    model, _ = nu.load_model(nu.EMBEDDED_MODEL)
    nu.add_word_shapes(model)
    if lever == "frozen-embeddings":
        model.get_input_embeddings().weight.requires_grad_(False)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if not isinstance(child, torch.nn.Dropout):
                continue
            in_attention = name.endswith("attention.self")
            if lever == "no-attention-dropout" and in_attention:
                child.p = 0.0
            if lever == "cheap-dropout-masks" and not in_attention:  # attention dropout happens inside SDPA
                setattr(module, child_name, cheap_dropout(child.p))
    model.train()
    optimizer = nu._optimizer(model, nu.TrainConfig(model=nu.EMBEDDED_MODEL, lr=1e-4, batch_size=32))
    return model, optimizer, get_linear_schedule_with_warmup(optimizer, 10, 10_000)


def words_per_second(lever: str, batches: dict[int, list[dict]], warmup: int, autocast) -> float:
    """Real word pieces per second over the timed batches (after ``warmup`` steps) of one lever."""
    import torch

    model, optimizer, scheduler = build(lever)
    todo = batches[16 if lever == "pad16" else 1]

    def step(batch: dict) -> None:
        inputs = nu._model_inputs(batch, "cpu", shapes=True)
        with autocast:
            loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in todo[:warmup]:
        step(batch)
    timed = todo[warmup:]
    start = time.perf_counter()
    for batch in timed:
        step(batch)
    return sum(int(b["attention_mask"].sum()) for b in timed) / (time.perf_counter() - start)


def step_matmul_flops(config, positions: float) -> float:
    """Multiply-add FLOPs of one training step's matrix products (forward, and backward at twice the forward) for
    ``positions`` padded positions: per layer Q, K, V, output (4 h^2) and the feed-forward (2 h i). Attention scores
    and mixing (4 L h for a width L, about 2% at CoNLL's widths) and the classifier (9 labels) are left out, so the
    floor is a slight underestimate."""
    return config.num_hidden_layers * layer_matmul_flops(positions, config.hidden_size, config.intermediate_size)


def layer_matmul_flops(positions: float, h: int, i: int) -> float:
    """FLOPs of one layer's matrix products in a training step: forward 2 per weight per position, backward twice."""
    return 3 * 2 * positions * (4 * h * h + 2 * h * i)


def matmul_probe(n: int, h: int, i: int, dtype) -> float:
    """FLOP/s of this machine's matrix products on one step's shapes (n positions): the four h x h and the two
    h x i products of a layer, forward (addmm) and both backward products, repeated."""
    import torch

    shapes = [(h, h)] * 4 + [(h, i), (i, h)]
    tensors = [(torch.randn(n, a, dtype=dtype), torch.randn(b, a, dtype=dtype), torch.randn(b, dtype=dtype),
                torch.randn(n, b, dtype=dtype)) for a, b in shapes]

    def layer() -> None:
        for x, w, bias, g in tensors:
            torch.addmm(bias, x, w.t())
            g @ w
            g.t() @ x

    for _ in range(3):
        layer()
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        layer()
    seconds = (time.perf_counter() - start) / reps
    return layer_matmul_flops(n, h, i) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per lever and round (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levers", default=",".join(LEVERS))
    args = parser.parse_args()
    levers = args.levers.split(",")
    unknown = [lever for lever in levers if lever not in LEVERS]
    if unknown or levers[0] != "recipe":
        parser.error(f"--levers: the first must be 'recipe', each one of {list(LEVERS)}; got {args.levers!r}")
    import torch

    precision = nu.resolve_precision("auto", "cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast("cpu", dtype=dtype) if dtype else torch.autocast("cpu", enabled=False)
    model, tok = nu.load_model(nu.EMBEDDED_MODEL)
    label2id = {label: i for i, label in enumerate(nu.LABELS)}
    train = nu.load_conll2003()["train"]
    features = nu.encode(tok, train, label2id)
    print(f"machine: {nu.environment_info()['device']}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"precision {precision}\n")
    print("Padding on all of eng.train, length-grouped batches of 32:\n")
    print("| widths rounded up to a multiple of | padded positions per real word piece | widths in an epoch |")
    print("| ---: | ---: | ---: |")
    for multiple, ratio, widths in padding_table(features):
        print(f"| {multiple} | {ratio:.3f} | {widths} |")

    n_batches = args.warmup + args.steps
    sample = features[: 32 * n_batches * 2]
    batches = {m: nu.make_batches(sample, 32, seed=0, pad_token_id=tok.pad_token_id, pad_to_multiple_of=m)[:n_batches]
               for m in (1, 16)}
    speeds: dict[str, list[float]] = {lever: [] for lever in levers}
    for r in range(args.rounds):
        for lever in levers[r % len(levers):] + levers[:r % len(levers)]:  # no lever always first
            speeds[lever].append(words_per_second(lever, batches, args.warmup, autocast))
            print(f"round {r + 1} {lever:22s} {speeds[lever][-1]:,.0f} word pieces/s", flush=True)
    base = statistics.mean(speeds["recipe"])
    ratios = {lever: [s / b for s, b in zip(speeds[lever], speeds["recipe"])] for lever in levers}
    print(f"\n{args.steps} timed steps of batch 32 per lever and round, {args.rounds} rounds\n")
    print("| lever | word pieces/s (mean of rounds) | vs the recipe (median of rounds) | each round |\n"
          "| --- | ---: | ---: | --- |")
    for lever in levers:
        print(f"| {LEVERS[lever]} | {statistics.mean(speeds[lever]):,.0f} | {statistics.median(ratios[lever]):.2f}x "
              f"| {', '.join(f'{x:.2f}' for x in ratios[lever])} |")

    timed = batches[1][args.warmup:]
    positions = statistics.mean(int(b["input_ids"].numel()) for b in timed)
    real = statistics.mean(int(b["attention_mask"].sum()) for b in timed)
    cfg = model.config
    flops = step_matmul_flops(cfg, positions)
    rate = matmul_probe(round(positions), cfg.hidden_size, cfg.intermediate_size, dtype or torch.float32)
    step_s = real / base
    floor_s = flops / rate
    print(f"\nCeiling: a step has {positions:.0f} padded positions ({real:.0f} real word pieces) and "
          f"{flops / 1e9:.1f} GFLOP of matrix products; this machine runs them at {rate / 1e9:.0f} GFLOP/s "
          f"(probe on the step's shapes), so they take at least {1000 * floor_s:.0f} ms of the "
          f"{1000 * step_s:.0f} ms step ({floor_s / step_s:.0%}). With everything else free the step would be "
          f"{step_s / floor_s:.2f}x faster.")
    best = max(levers[1:] or levers, key=lambda lever: statistics.median(ratios[lever]))
    print(f"\nCPU_LEVERS best_lever={best} best_ratio={statistics.median(ratios[best]):.2f} "
          f"matmul_share={floor_s / step_s:.2f} ceiling={step_s / floor_s:.2f}")


if __name__ == "__main__":
    main()
