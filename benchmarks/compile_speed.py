"""Does torch.compile pay on this machine? The notebook recipe's training step (embedded all-MiniLM-L6-v2,
batch 32, casing feature, bf16 autocast where native, widths padded to multiples of 16) eager and compiled,
on the same real eng.train batches, in one process.

    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/compile_speed.py --steps 120
    CONLL_DIR=../shared/conll_2003_ner .venv/bin/python benchmarks/compile_speed.py --steps 120 --static

``dynamic=True`` (the default here, and what ``TrainConfig(compile="on")`` uses) compiles one graph for every width;
``--static`` compiles one specialised graph per width, the best case for the compiled step and the dearest to compile.

Prints the compile time (first steps of the compiled model, until every width bucket was seen), the steady
word pieces/s of each, and the break-even: how many steps the compiled step needs to win its compile time back,
against the 2,634 steps of a 6-epoch run. The last line is machine-readable:
    COMPILE speedup=X.XX compile_s=Y break_even_steps=Z
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

STEPS_6_EPOCHS = 6 * 439


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="timed steps for each of eager and compiled")
    parser.add_argument("--static", action="store_true",
                        help="compile with dynamic=False: one specialised graph per batch width")
    args = parser.parse_args()
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = nu.resolve_precision("auto", device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    label2id = {label: i for i, label in enumerate(nu.LABELS)}
    sentences = nu.load_conll2003()["train"]
    _, tok = nu.load_model(nu.EMBEDDED_MODEL)
    features = nu.encode(tok, sentences, label2id)
    batches = nu.make_batches(features, 32, seed=0, pad_token_id=tok.pad_token_id, pad_to_multiple_of=16, max_width=512)
    widths = sorted({b["input_ids"].shape[1] for b in batches})
    print(f"{len(batches)} batches of 32, {len(widths)} widths: {widths}")

    def run(compiled: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        model, _ = nu.load_model(nu.EMBEDDED_MODEL)
        nu.add_word_shapes(model)
        model.to(device).train()
        optimizer = nu.build_optimizer(model, 1e-4, 0.01)
        step_model = torch.compile(model, dynamic=not args.static) if compiled else model

        def step(batch: dict) -> None:
            inputs = nu.model_inputs(batch, device, shapes=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = step_model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()

        # warm-up: one batch of every width (compiles every shape the run will see), timed
        start = time.perf_counter()
        for w in widths:
            step(next(b for b in batches if b["input_ids"].shape[1] == w))
        warm = time.perf_counter() - start
        timed = batches[: args.steps]
        tokens = sum(int(b["attention_mask"].sum()) for b in timed)
        start = time.perf_counter()
        for b in timed:
            step(b)
        return warm, tokens / (time.perf_counter() - start)

    eager_warm, eager = run(False)
    compiled_warm, compiled = run(True)
    tokens_per_step = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
    compile_s = compiled_warm - eager_warm
    saved_per_step = tokens_per_step / eager - tokens_per_step / compiled
    break_even = compile_s / saved_per_step if saved_per_step > 0 else float("inf")
    print(f"device {device}, precision {precision}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"torch.compile(dynamic={not args.static})")
    print(f"eager:    {eager:,.0f} word pieces/s (warm-up over {len(widths)} widths {eager_warm:.1f} s)")
    print(f"compiled: {compiled:,.0f} word pieces/s (warm-up over {len(widths)} widths {compiled_warm:.1f} s)")
    print(f"a 6-epoch run ({STEPS_6_EPOCHS} steps): eager {STEPS_6_EPOCHS * tokens_per_step / eager:.0f} s, "
          f"compiled {compile_s + STEPS_6_EPOCHS * tokens_per_step / compiled:.0f} s including compilation")
    print(f"COMPILE speedup={compiled / eager:.2f} compile_s={compile_s:.0f} break_even_steps={break_even:.0f}")


if __name__ == "__main__":
    main()
