#!/usr/bin/env bash
# The prepared GPU check, in device calls of under 600 s each (by the parts' times on an H200, 2026-12-04):
#   gpu_check.sh          the notebook top to bottom (real data, the embedded checkpoint, its recipe; 143 s); one fp16
#                         epoch, and one bf16 epoch where the GPU computes bf16 natively, with testa F1 and word
#                         pieces/s (70 s); profile_step.py and compile_speed.py (about 120 s);
#   gpu_check.sh --speed  train_speed.py --device cuda: full epochs of this loop, the HF Trainer with bf16 and a
#                         BERT-base-sized model, each in its own process (about 250 s);
#   gpu_check.sh --tests  the fast unit tests (CI runs them on the CPU; about 370 s there), if device time is left.
# Results go to one folder, $OUT (default gpu-check/), with a summary in $OUT/summary.txt (--speed and --tests append
# to it). Models and checkpoints go to /tmp: the device returns only small files, and a few 90 MB models under $OUT
# would return nothing.
#
# Here (after `make test` built .venv):
#     ../shared/gpu-kit/make_bundle.sh && benchmarks/gpu_check.sh --prepare     # adds the seqeval wheel to .gpu/
# On the lent machine (device tool), from the project root, carry=[".gpu"], timeout_s=600, one call each:
#     source .gpu/setup.sh && bash benchmarks/gpu_check.sh
#     source .gpu/setup.sh && bash benchmarks/gpu_check.sh --speed
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --prepare ]]; then   # seqeval ships as an sdist only: build its wheel here, the device has no network
  [[ -d .gpu/whl ]] || { echo "no .gpu/whl: run ../shared/gpu-kit/make_bundle.sh first"; exit 1; }
  .venv/bin/python -m pip wheel -q --no-deps -w .gpu/whl seqeval==1.2.2 && ls .gpu/whl | grep -i seqeval
  exit $?
fi
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
RUNS=${RUNS:-/tmp/gpu-check-runs}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false NER_OUTPUT="$RUNS/notebook-run"

if [[ ${1:-} == --speed ]]; then
  # full epochs side by side: this loop, the HF Trainer with bf16, a BERT-base-sized random model (DEVICE_SPEED line)
  timeout 560 python3 benchmarks/train_speed.py --device cuda --out "$RUNS/speed" > "$OUT/train_speed.txt" 2>&1
  echo "train_speed: exit $?; $(grep -m1 '^DEVICE_SPEED' "$OUT/train_speed.txt")" >> "$OUT/summary.txt"
  cat "$OUT/summary.txt"
  exit 0
fi
if [[ ${1:-} == --tests ]]; then
  timeout 560 python3 -m pytest -q -m "not slow" -p no:cacheprovider tests > "$OUT/tests.log" 2>&1
  echo "unit tests: exit $?; $(tail -1 "$OUT/tests.log")" >> "$OUT/summary.txt"
  cat "$OUT/summary.txt"
  exit 0
fi
{ nvidia-smi --query-gpu=name,compute_cap,memory.total --format=csv,noheader; } > "$OUT/summary.txt" 2>&1

rm -rf "$RUNS/notebook-run"   # a warm machine keeps /tmp between calls: never report an earlier run's F1
start=$(date +%s)
python3 -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 --output-dir "$OUT" \
  --output notebook_gpu.ipynb assignment_2_question_1.ipynb > "$OUT/notebook.log" 2>&1
nb_rc=$? nb_s=$(( $(date +%s) - start ))
nb_f1=$(python3 - "$RUNS/notebook-run/metrics.json" 2>&1 <<'PY' | tail -1
import json, sys
m = json.load(open(sys.argv[1]))
print(f"{m['model']}, {m['precision']}: eng.testa {100 * m['testa_f1']:.2f}, eng.testb {100 * m['testb_f1']:.2f}")
PY
)
echo "notebook: exit $nb_rc in $nb_s s; $nb_f1" >> "$OUT/summary.txt"

python3 - "$RUNS" >> "$OUT/summary.txt" 2> "$OUT/epochs.log" <<'PY'
"""One epoch of the embedded recipe per precision the GPU computes natively."""
import json, sys
import ner_utils as nu

out = sys.argv[1]
splits = nu.load_conll2003()
native = ["fp16"] + (["bf16"] if nu.resolve_precision("auto") == "bf16" else [])
for precision in native:
    config = nu.TrainConfig(model=nu.EMBEDDED_MODEL, epochs=1, mixed_precision=precision, progress=False,
                            output_dir=f"{out}/epoch-{precision}")
    r = nu.train(config, splits)
    line = {"precision": precision, "testa_f1": round(100 * r.testa["overall"]["f1"], 2),
            "testb_f1": round(100 * r.testb["overall"]["f1"], 2), "train_seconds": round(r.train_seconds, 1),
            "word_pieces_per_s": round(r.tokens_per_second), "wall_seconds": round(r.wall_seconds, 1)}
    print("EPOCH", json.dumps(line), flush=True)
if "bf16" not in native:
    print("EPOCH bf16 skipped: this GPU has no native bf16 (compute capability < 8.0)")
PY
echo "epochs: exit $?" >> "$OUT/summary.txt"

# the speed issue's GPU figures: where a step's time goes, and whether torch.compile pays here
python3 benchmarks/profile_step.py --steps 40 > "$OUT/profile.txt" 2>&1
echo "profile: exit $?; $(grep -m1 'word pieces/s' "$OUT/profile.txt")" >> "$OUT/summary.txt"
python3 benchmarks/compile_speed.py --steps 200 > "$OUT/compile.txt" 2>&1
echo "compile: exit $?; $(grep -m1 '^COMPILE' "$OUT/compile.txt")" >> "$OUT/summary.txt"

cat "$OUT/summary.txt"
