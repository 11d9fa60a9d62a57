"""Two cores, two processes? The notebook recipe's training step (embedded all-MiniLM-L6-v2, global batch 32, casing
feature, bf16 autocast where native) in one process with 2 threads against two processes of 1 thread each, every
batch of 32 split in two halves of 16 and the gradients averaged by DistributedDataParallel (gloo), on the same
real eng.train batches; and the two processes again with the word-piece embedding frozen (a smaller all-reduce).

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/cpu_two_processes.py --steps 60 --rounds 2

In one process, dropout's random numbers and many small kernels run on one core while the other waits; two
processes run those side by side, but all-reduce every gradient and each run clipping and the optimizer step on one
thread. Last line:
``TWO_PROCESSES ratio=X.XX frozen_ratio=Y.YY`` (word pieces/s of the two processes over the one).
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

SETUPS = {"one": "1 process x 2 threads", "two": "2 processes x 1 thread (DDP, gloo)",
          "two-frozen": "2 processes x 1 thread, word-piece embedding frozen"}


def half(batch: dict, rank: int, world: int) -> dict:
    """Rows rank, rank + world, ... of a batch, cut to their own longest member."""
    part = {k: batch[k][rank::world] for k in ("input_ids", "attention_mask", "labels", "shape_ids")}
    width = int(part["attention_mask"].sum(1).max())
    return {k: v[:, :width].contiguous() for k, v in part.items()}


def worker(rank: int, world: int, setup: str, steps: int, warmup: int, port: int, out) -> None:
    """Train ``warmup + steps`` steps as one of ``world`` processes; rank 0 puts the timed word pieces/s in ``out``."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(2 // world)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model, tok = nu.load_model(nu.EMBEDDED_MODEL)
    nu.add_word_shapes(model)
    if setup == "two-frozen":
        model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    step_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = nu._optimizer(model, nu.TrainConfig(model=nu.EMBEDDED_MODEL, lr=1e-4, batch_size=32))
    precision = nu.resolve_precision("auto", "cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    label2id = {label: i for i, label in enumerate(nu.LABELS)}
    sentences = nu.load_conll2003()["train"][: 32 * (warmup + steps) * 2]
    batches = nu.make_batches(nu.encode(tok, sentences, label2id), 32, seed=0,
                              pad_token_id=tok.pad_token_id)[: warmup + steps]

    def step(batch: dict) -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = step_model(**half(batch, rank, world)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:warmup]:
        step(batch)
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    if world > 1:
        dist.barrier()
    if rank == 0:
        out.put(sum(int(b["attention_mask"].sum()) for b in batches[warmup:]) / (time.perf_counter() - start))
    if world > 1:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(setup: str, steps: int, warmup: int, limit_s: float = 1800) -> float:
    """Rank 0's word pieces/s. If a process fails, or no result comes within ``limit_s``, every process is stopped and
    the benchmark exits with an error."""
    import queue

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    world = 1 if setup == "one" else 2
    port = free_port()
    procs = [ctx.Process(target=worker, args=(rank, world, setup, steps, warmup, port, out)) for rank in range(world)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + limit_s
    try:
        while True:
            try:
                speed = out.get(timeout=5)
                break
            except queue.Empty:
                failed = [p.exitcode for p in procs if p.exitcode]
                if failed:
                    raise SystemExit(f"{setup}: a process exited with code {failed[0]} before reporting")
                if all(p.exitcode == 0 for p in procs):  # rank 0 may have put its result just after the wait
                    speed = out.get(timeout=5)
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{setup}: no result after {limit_s:.0f} s")
        for p in procs:
            p.join(60)
            if p.exitcode:
                raise SystemExit(f"{setup}: a process exited with code {p.exitcode}")
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(10)
    return speed


BERNOULLI_SHAPE = (32, 19, 384)  # one step's hidden states: batch x mean width x hidden


def bernoulli_ms(threads: int, shape: tuple[int, ...] = BERNOULLI_SHAPE, reps: int = 200) -> float:
    """Milliseconds of one ``bernoulli_`` (dropout's random mask) on one step's hidden states, with ``threads``."""
    import torch

    torch.set_num_threads(threads)
    x = torch.empty(shape)
    x.bernoulli_(0.9)
    start = time.perf_counter()
    for _ in range(reps):
        x.bernoulli_(0.9)
    return (time.perf_counter() - start) / reps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch

    threads = torch.get_num_threads()
    one, two = bernoulli_ms(1), bernoulli_ms(2)
    torch.set_num_threads(threads)
    print(f"bernoulli_ on one step's hidden states ({' x '.join(map(str, BERNOULLI_SHAPE))}): {one:.2f} ms at 1 thread, "
          f"{two:.2f} ms at 2 threads")
    speeds: dict[str, list[float]] = {setup: [] for setup in SETUPS}
    for r in range(args.rounds):
        for setup in SETUPS:
            speeds[setup].append(measure(setup, args.steps, args.warmup))
            print(f"round {r + 1} {SETUPS[setup]}: {speeds[setup][-1]:,.0f} word pieces/s", flush=True)
    base = statistics.mean(speeds["one"])
    print(f"\n{nu.environment_info()['device']}; {args.steps} timed steps of global batch 32, {args.rounds} rounds\n")
    print("| setup | word pieces/s | vs one process |\n| --- | ---: | ---: |")
    for setup, label in SETUPS.items():
        print(f"| {label} | {statistics.mean(speeds[setup]):,.0f} | {statistics.mean(speeds[setup]) / base:.2f}x |")
    print(f"\nTWO_PROCESSES ratio={statistics.mean(speeds['two']) / base:.2f} "
          f"frozen_ratio={statistics.mean(speeds['two-frozen']) / base:.2f}")


if __name__ == "__main__":
    main()
