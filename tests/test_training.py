"""The training loop: determinism, best epoch by testa, checkpoints and resume, saved models, 2 processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ner_utils as nu
from conftest import ROOT, synthetic_splits


def _config(model_dir, out, **kw):
    base = dict(model=str(model_dir), epochs=2, batch_size=8, lr=1e-3, output_dir=str(out), progress=False)
    return nu.TrainConfig(**(base | kw))


def _weights(folder):
    model, _ = nu.load_model(str(folder), fallback=False)
    return model.state_dict()


def test_config_defaults_are_the_usual_recipe():
    c = nu.TrainConfig()
    assert (c.model, c.epochs, c.lr, c.batch_size, c.warmup_ratio, c.weight_decay, c.max_grad_norm, c.seed) == (
        "bert-base-cased", 3, 5e-5, 32, 0.1, 0.01, 1.0, 42)
    assert c.mixed_precision == "auto" and nu._mixed_precision("auto") in ("no", "bf16", "fp16")
    if not torch.cuda.is_available():
        assert nu._mixed_precision("auto") == ("bf16" if nu.cpu_has_bf16() else "no")
    assert nu._mixed_precision("no") == "no"


def test_optimizer_skips_decay_on_bias_and_layernorm(tiny):
    model, _ = tiny
    decay, no_decay = nu._optimizer(model, nu.TrainConfig()).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert not any(names[id(p)].endswith("bias") for p in decay["params"])


def test_train_end_to_end_writes_model_metrics_and_checkpoint(tmp_path, tiny_model_dir):
    result = nu.train(_config(tiny_model_dir, tmp_path / "run", epochs=3), synthetic_splits())
    steps_per_epoch = 160 // 8
    assert len(result.losses) == 3 * steps_per_epoch
    assert len(result.testa_f1_per_epoch) == 3
    assert result.best_epoch == 1 + result.testa_f1_per_epoch.index(max(result.testa_f1_per_epoch))
    assert result.testa["overall"]["f1"] == pytest.approx(max(result.testa_f1_per_epoch))  # best weights kept
    assert result.losses[-1] < result.losses[0]
    assert result.tokens_per_second > 0 and result.train_seconds > 0 and result.peak_memory_mb > 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"testa_f1", "testb_f1", "train_seconds", "model"} <= set(metrics)
    assert metrics["testb"]["PER"]["gold"] == result.testb["PER"]["gold"]
    assert (tmp_path / "run" / "config.json").exists() and (tmp_path / "run" / "tokenizer.json").exists()
    ckpt = tmp_path / "run" / "checkpoint-last"
    assert {p.name for p in ckpt.iterdir()} >= {"model.pt", "optimizer.pt", "scheduler.pt", "rng.pt", "state.json"}
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == 3
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_best_epoch_weights_are_restored(tmp_path, tiny_model_dir, monkeypatch):
    scores = iter([0.5, 0.9, 0.1])  # epoch 2 is best on testa
    real = nu.span_scores

    def fake(gold, pred):
        s = real(gold, pred)
        if fake.per_epoch:
            s["overall"]["f1"] = next(scores)
        return s
    fake.per_epoch = True
    monkeypatch.setattr(nu, "span_scores", fake)
    real_ckpt = nu._save_checkpoint
    saved = {}

    def spy(folder, model, optimizer, scheduler, state, best):
        saved[state["epoch"]] = {k: v.clone() for k, v in model.state_dict().items()}
        if state["epoch"] == 3:
            fake.per_epoch = False
        return real_ckpt(folder, model, optimizer, scheduler, state, best)
    monkeypatch.setattr(nu, "_save_checkpoint", spy)
    result = nu.train(_config(tiny_model_dir, tmp_path / "run", epochs=3), synthetic_splits())
    assert result.best_epoch == 2
    final = _weights(tmp_path / "run")
    assert all(torch.equal(final[k], saved[2][k]) for k in saved[2])
    assert (tmp_path / "run" / "checkpoint-last" / "best.pt").exists()


def test_same_seed_same_predictions_different_seed_differs(tmp_path, tiny_model_dir):
    a = nu.train(_config(tiny_model_dir, tmp_path / "a", epochs=1), synthetic_splits())
    b = nu.train(_config(tiny_model_dir, tmp_path / "b", epochs=1), synthetic_splits())
    c = nu.train(_config(tiny_model_dir, tmp_path / "c", epochs=1, seed=7), synthetic_splits())
    assert a.losses == b.losses and a.testb_pred == b.testb_pred
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.losses != c.losses


class Disconnect(Exception):
    pass


def test_resume_after_a_disconnect_gives_identical_weights(tmp_path, tiny_model_dir, monkeypatch):
    straight = nu.train(_config(tiny_model_dir, tmp_path / "straight"), synthetic_splits())
    real = nu._save_checkpoint

    def crash_after_first_epoch(*args):
        real(*args)
        raise Disconnect
    monkeypatch.setattr(nu, "_save_checkpoint", crash_after_first_epoch)
    with pytest.raises(Disconnect):
        nu.train(_config(tiny_model_dir, tmp_path / "resumed"), synthetic_splits())
    monkeypatch.setattr(nu, "_save_checkpoint", real)
    resumed = nu.train(_config(tiny_model_dir, tmp_path / "resumed"), synthetic_splits(), resume=True)
    assert resumed.losses == straight.losses
    assert resumed.testa_f1_per_epoch == straight.testa_f1_per_epoch
    assert resumed.testb_pred == straight.testb_pred
    ws, wr = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert all(torch.equal(ws[k], wr[k]) for k in ws)


def test_resume_without_checkpoint_says_so_and_starts(tmp_path, tiny_model_dir, capsys):
    nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), synthetic_splits(), resume=True)
    assert "no checkpoint" in capsys.readouterr().out


def test_corrupt_or_mismatched_checkpoint_is_a_clear_error(tmp_path, tiny_model_dir):
    nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), synthetic_splits())
    with pytest.raises(nu.CheckpointError, match=r"belongs to another run \(lr: checkpoint 0.001 vs this run 0.002"):
        nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1, lr=2e-3), synthetic_splits(), resume=True)
    other = tmp_path / "other-model"
    from conftest import build_tiny_model
    build_tiny_model(other)
    with pytest.raises(nu.CheckpointError, match="belongs to another run.*model"):
        nu.train(_config(other, tmp_path / "r", epochs=1), synthetic_splits(), resume=True)
    (tmp_path / "r" / "checkpoint-last" / "optimizer.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(nu.CheckpointError, match="corrupt checkpoint"):
        nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), synthetic_splits(), resume=True)


def test_saved_model_works_in_a_transformers_pipeline(tmp_path, tiny_model_dir):
    from transformers import pipeline

    nu.train(_config(tiny_model_dir, tmp_path / "p", epochs=6, word_shapes="off", lr=3e-3), synthetic_splits(320))
    ner = pipeline("token-classification", model=str(tmp_path / "p"), aggregation_strategy="first", device="cpu")
    found = {(e["word"], e["entity_group"]) for e in ner("john lives in berlin")}
    assert found == {("john", "PER"), ("berlin", "LOC")}


def test_casing_model_saves_and_predicts_after_reload(tmp_path, tiny_model_dir):
    result = nu.train(_config(tiny_model_dir, tmp_path / "s", epochs=1), synthetic_splits())
    model, tok = nu.load_model(str(tmp_path / "s"), fallback=False)
    assert nu.uses_word_shapes(model) and model.config.ner_decode == "viterbi"
    assert nu.predict_tags(model, tok, synthetic_splits()["testb"]) == result.testb_pred


def test_document_context_training_runs(tmp_path, tiny_model_dir):
    result = nu.train(_config(tiny_model_dir, tmp_path / "ctx", epochs=1, context=8), synthetic_splits())
    model, tok = nu.load_model(str(tmp_path / "ctx"), fallback=False)
    assert model.config.ner_context == 8
    assert nu.predict_tags(model, tok, synthetic_splits()["testb"]) == result.testb_pred


@pytest.mark.slow
def test_two_processes_on_cpu_end_with_the_same_weights(tmp_path, tiny_model_dir):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           str(ROOT / "tests" / "scripts" / "ddp_train.py"), str(tiny_model_dir), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["steps"] == 2 * (96 // 8 // 2)  # the epoch's batches are split between the two processes
    assert all(torch.equal(r0["weights"][k], r1["weights"][k]) for k in r0["weights"])
    single = nu.train(_config(tiny_model_dir, tmp_path / "one"), synthetic_splits(96, 16))
    assert len(single.losses) == 2 * r0["steps"]
