"""Run by tests/test_training.py under `torchrun --nproc_per_node 2`: train a tiny BERT with gloo on CPU,
then write this rank's own final weights to OUT/rank{N}.pt."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch  # noqa: E402

import ner_utils as nu  # noqa: E402
from conftest import synthetic_splits  # noqa: E402

model_dir, out = sys.argv[1], Path(sys.argv[2])
n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 96
captured = {}
real_predict = nu.predict_tags


def capture(model, *args, **kwargs):
    """Every rank predicts testb last with its own final weights: keep them."""
    captured["weights"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return real_predict(model, *args, **kwargs)


nu.predict_tags = capture
config = nu.TrainConfig(model=model_dir, epochs=2, batch_size=8, lr=1e-3, output_dir=str(out / "run"), progress=False)
result = nu.train(config, synthetic_splits(n_train, 16))
rank = int(os.environ.get("RANK", 0))
torch.save({"weights": captured["weights"], "world": int(os.environ.get("WORLD_SIZE", 1)), "steps": len(result.losses)},
           out / f"rank{rank}.pt")
