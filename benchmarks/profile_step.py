"""Where one training step's time goes: torch.profiler over the notebook's recipe (embedded all-MiniLM-L6-v2,
batch 32, bf16 autocast where native, casing feature), on real eng.train batches.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/profile_step.py --steps 40

The step is cut into the phases of the training step of ``ner_utils.train`` (data to device, forward, backward, clipping,
optimizer + scheduler, the loss read-back) with ``record_function``; "python/other" is wall time the phases do not
cover. Prints a markdown table of ms per step per phase, then the operators with the most self time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ner_utils as nu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="profiled steps (after --warmup steps)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(0)
    device = torch.device(args.device)
    precision = nu.resolve_precision("auto", device)
    model, tok = nu.load_model(nu.EMBEDDED_MODEL)
    nu.add_word_shapes(model)
    model.to(device).train()
    config = nu.TrainConfig(model=nu.EMBEDDED_MODEL, lr=1e-4, batch_size=32)
    optimizer = nu.build_optimizer(model, config.lr, config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, 10, 10_000)
    label2id = {label: i for i, label in enumerate(nu.LABELS)}
    sentences = nu.load_conll2003()["train"][: 32 * (args.steps + args.warmup)]
    batches = nu.make_batches(nu.encode(tok, sentences, label2id), 32, seed=0, pad_token_id=tok.pad_token_id)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)

    def step(batch: dict) -> float:
        with record_function("phase: data to device"):
            inputs = nu.model_inputs(batch, device, shapes=True)
        with record_function("phase: forward"), autocast:
            loss = model(**inputs).loss
        with record_function("phase: backward"):
            loss.backward()
        with record_function("phase: clip grad norm"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        with record_function("phase: optimizer + scheduler"):
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        with record_function("phase: loss.item() (sync)"):
            return loss.item()

    for batch in batches[: args.warmup]:
        step(batch)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[args.warmup:args.warmup + args.steps])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for batch in batches[args.warmup:args.warmup + args.steps]:
            step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
    n = args.steps
    events = {e.key: e for e in prof.key_averages() if e.key.startswith("phase: ")}
    print(f"device: {nu.environment_info()['device'] if device.type == 'cpu' else torch.cuda.get_device_name(0)}; "
          f"precision {precision}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"{n} steps of batch 32, {tokens / n:.0f} real word pieces per step; {tokens / wall:,.0f} word pieces/s "
          "under the profiler\n")
    print("| phase | ms / step | share of the step |\n| --- | ---: | ---: |")
    covered = 0.0
    for name, event in sorted(events.items(), key=lambda kv: -kv[1].cpu_time_total):
        ms = event.cpu_time_total / 1000 / n
        covered += ms
        print(f"| {name[7:]} | {ms:.1f} | {100 * ms / (1000 * wall / n):.0f}% |")
    other = 1000 * wall / n - covered
    print(f"| python/other (not in a phase) | {other:.1f} | {100 * other / (1000 * wall / n):.0f}% |")
    print(f"| **whole step** | **{1000 * wall / n:.1f}** | 100% |\n")
    print("Operators with the most self time (all phases):\n")
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=48))


if __name__ == "__main__":
    main()
