"""Issue 18: benchmarks/accuracy.py's row final6-s42 (bf16, seed 42) through the module before the change (ded9728)
and after it, per-epoch eng.testa F1; deterministic kernels so that two runs of one module match bit for bit."""
import json, os, sys, time
which, out = sys.argv[1], sys.argv[2]
if which not in ("before", "after"):
    sys.exit(f"usage: {sys.argv[0]} before|after OUT.json")
expected = os.path.abspath(os.path.join(".gpu/old" if which == "before" else ".", "ner_utils.py"))  # .gpu/old: ded9728
if not os.path.isfile(expected):
    sys.exit(f"{expected} not found: mkdir -p .gpu/old && git show ded9728:ner_utils.py > .gpu/old/ner_utils.py")
sys.path.insert(0, os.path.dirname(expected))
import torch
torch.use_deterministic_algorithms(True)
import transformers
orig = transformers.AutoModelForTokenClassification.from_pretrained.__func__
transformers.AutoModelForTokenClassification.from_pretrained = classmethod(
    lambda cls, *a, **k: orig(cls, *a, **({"attn_implementation": "eager"} | k)))
import ner_utils as nu
assert os.path.abspath(nu.__file__) == expected, f"imported {nu.__file__}, not {expected}"
splits = nu.load_conll2003()
cfg = dict(model=str(nu.embedded_model_path()), output_dir=f"/tmp/f6-{which}", progress=False, seed=42, lr=1e-4,
           batch_size=32, epochs=6, word_shapes="on", context=0, decode="viterbi", mixed_precision="bf16")
start = time.time()
r = nu.train(nu.TrainConfig(**cfg), splits)
row = {"module": which, "file": nu.__file__, "testa_f1_per_epoch": r.testa_f1_per_epoch, "best_epoch": r.best_epoch,
       "testa": r.testa["overall"]["f1"], "testb": r.testb["overall"]["f1"], "precision": r.precision,
       "losses_first": r.losses[:3], "losses_last": r.losses[-3:], "train_seconds": r.train_seconds,
       "wall_seconds": time.time() - start, "device": torch.cuda.get_device_name(0)}
json.dump(row, open(out, "w"), indent=1)
print("FINAL6", json.dumps(row), flush=True)
