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


def test_config_defaults_leave_the_recipe_fields_to_the_model(monkeypatch):
    monkeypatch.delenv("NER_MODEL", raising=False)
    c = nu.TrainConfig()
    assert (c.model, c.warmup_ratio, c.weight_decay, c.max_grad_norm, c.seed, c.mixed_precision) == (
        "bert-base-cased", 0.1, 0.01, 1.0, 42, "auto")
    assert all(getattr(c, name) is None for name in nu.RECIPE_FIELDS)


# Every field with values that must be refused when the config is built (and one that must be accepted).
BAD_VALUES = {
    "model": ["", "  ", None, 3],
    "epochs": [0, -1, 1.5, True, "3"],
    "lr": [0, 0.0, -1, -1e-5, float("nan"), float("inf"), 1.0, "1e-4", True],
    "batch_size": [0, -8, 2.0, True],
    "warmup_ratio": [-0.1, 1.0, 2, float("nan"), None],
    "weight_decay": [-0.01, float("inf"), None],
    "max_grad_norm": [-1.0, float("nan"), None],
    "seed": [-1, 2**32, 1.5, None, True],
    "max_train_sentences": [0, -5, 2.5, True],
    "max_eval_sentences": [0, -1, "all"],
    "output_dir": ["", "   ", None],
    "mixed_precision": ["fp32", "BF16", "", None, True],
    "eval_max_tokens": [0, -1, None, 1.0],
    "word_shapes": ["yes", "", True],
    "context": [-1, 1.5, True],
    "context_dropout": [-0.1, 1.1, float("nan"), None],
    "decode": ["crf", "", True],
    "progress": ["yes", 1, None],
    "pad_to_multiple_of": [0, 3, 128, -16, True, 16.0],
    "compile": ["yes", True, None, ""],
}
GOOD_VALUES = {"model": "x", "epochs": 1, "lr": 1e-4, "batch_size": 1, "warmup_ratio": 0.0, "weight_decay": 0.0,
               "max_grad_norm": 0.0, "seed": 0, "max_train_sentences": 1, "max_eval_sentences": None,
               "output_dir": "o", "mixed_precision": "no", "eval_max_tokens": 1, "word_shapes": "off", "context": 0,
               "context_dropout": 1.0, "decode": "argmax", "progress": False,
               "pad_to_multiple_of": 64, "compile": "off"}


def test_every_config_field_is_covered_here():
    from dataclasses import fields
    assert {f.name for f in fields(nu.TrainConfig)} == set(BAD_VALUES) == set(GOOD_VALUES)


@pytest.mark.parametrize("name, value", [(n, v) for n, values in BAD_VALUES.items() for v in values])
def test_an_impossible_setting_is_refused_naming_field_value_and_what_is_allowed(name, value):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{name}=.* is not allowed; expected "):
        nu.TrainConfig(**{name: value})


def test_the_boundary_values_are_accepted():
    assert nu.TrainConfig(**GOOD_VALUES).epochs == 1
    assert nu.TrainConfig(context=16, context_dropout=0.99).context_dropout == 0.99


def test_context_that_no_training_sentence_sees_is_refused():
    """context_dropout=1.0 drops the context from every training sentence; evaluation and the saved model would
    still read it. Refused when the config is built, and when a recipe brings the context."""
    with pytest.raises(ValueError, match=r"TrainConfig\.context_dropout=1\.0 with context=8 is not allowed"):
        nu.TrainConfig(context=8, context_dropout=1.0)
    assert nu.TrainConfig(context=0, context_dropout=1.0).context == 0
    from dataclasses import replace
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(nu.RECIPES, "embedded", replace(nu.RECIPES["embedded"], context=16))
        with pytest.raises(ValueError, match="context_dropout=1.0 with context=16"):
            nu.resolve_config(nu.TrainConfig(context_dropout=1.0), _Fake("all-MiniLM-L6-v2", False, 6, 384))


def test_the_removed_knobs_are_gone():
    """Issue 18: context in the last epochs, weight averaging, the context cap and prediction-time context."""
    import inspect
    names = {f.name for f in __import__("dataclasses").fields(nu.TrainConfig)}
    assert not names & {"context_epochs", "average_last", "context_pieces"}
    assert not hasattr(nu, "uses_context") and not hasattr(nu, "averaged_weights")
    assert "context" not in inspect.signature(nu.predict_tags).parameters
    assert "context" not in inspect.signature(nu.word_log_probs).parameters
    assert "context_pieces" not in inspect.signature(nu.encode).parameters


class _Fake:
    def __init__(self, model, cased, layers, hidden):
        from types import SimpleNamespace
        self.ner_info = {"model": model, "cased": cased}
        self.config = SimpleNamespace(num_hidden_layers=layers, hidden_size=hidden)


def test_the_recipe_follows_the_model_and_explicit_fields_win():
    assert nu.choose_recipe(_Fake("all-MiniLM-L6-v2", False, 6, 384))[0] == "embedded"
    assert nu.choose_recipe(_Fake("bert-base-cased", True, 12, 768))[0] == "bert-base"
    assert nu.choose_recipe(_Fake("some/roberta-base", True, 12, 768))[0] == "bert-base"
    assert nu.choose_recipe(_Fake("bert-base-uncased", False, 12, 768))[0] == "conservative"
    assert nu.choose_recipe(_Fake("bert-large-cased", True, 24, 1024))[0] == "conservative"
    embedded = nu.RECIPES["embedded"]
    assert (embedded.lr, embedded.batch_size, embedded.epochs, embedded.word_shapes, embedded.decode) == (
        1e-4, 32, 6, "on", "viterbi")
    base = nu.RECIPES["bert-base"]
    assert (base.lr, base.batch_size, base.epochs) == (5e-5, 32, 3)
    resolved, key, why = nu.resolve_config(nu.TrainConfig(epochs=2), _Fake("all-MiniLM-L6-v2", False, 6, 384))
    assert key == "embedded" and "embedded" in why
    assert (resolved.epochs, resolved.lr, resolved.batch_size, resolved.word_shapes) == (2, 1e-4, 32, "on")


def test_the_cli_and_a_default_config_train_the_same_recipe(monkeypatch):
    monkeypatch.delenv("NER_MODEL", raising=False)
    args = nu.build_parser().parse_args(["train"])
    assert nu._config_from_args(args) == nu.TrainConfig()
    args = nu.build_parser().parse_args(["train", "--lr", "2e-5", "--epochs", "4"])
    assert (nu._config_from_args(args).lr, nu._config_from_args(args).epochs) == (2e-5, 4)


def _gpu(monkeypatch, major, minor, name):
    from types import SimpleNamespace
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index=0: SimpleNamespace(major=major, minor=minor, name=name))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # as on a T4


def test_precision_on_a_t4_is_fp16_and_bf16_is_refused(monkeypatch):
    _gpu(monkeypatch, 7, 5, "Tesla T4")
    assert nu.resolve_precision("auto") == "fp16"
    assert nu.resolve_precision("fp16") == "fp16" and nu.resolve_precision("no") == "no"
    with pytest.raises(ValueError, match=r"'bf16' asked, but the GPU Tesla T4 \(compute capability 7\.5\)"):
        nu.resolve_precision("bf16")


def test_precision_on_an_ampere_or_later_gpu_is_bf16(monkeypatch):
    _gpu(monkeypatch, 8, 0, "NVIDIA A100")
    assert nu.resolve_precision("auto") == "bf16"
    assert nu.resolve_precision("fp16") == "fp16" and nu.resolve_precision("bf16") == "bf16"


def test_precision_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(nu, "cpu_has_bf16", lambda: True)
    assert nu.resolve_precision("auto") == "bf16" and nu.resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="'fp16' asked, but this CPU"):
        nu.resolve_precision("fp16")
    monkeypatch.setattr(nu, "cpu_has_bf16", lambda: False)
    assert nu.resolve_precision("auto") == "no"
    with pytest.raises(ValueError, match="'bf16' asked, but this CPU .*use 'auto' \\(here: 'no'\\)"):
        nu.resolve_precision("bf16")
    with pytest.raises(ValueError, match="expected one of"):
        nu.resolve_precision("fp32")
    assert nu.resolve_precision("auto", device="cpu") == "no"


def test_train_can_be_called_again_in_one_process_with_other_precisions(tmp_path, tiny_model_dir, monkeypatch):
    """A notebook re-runs the training cell after changing a knob: bf16, then fp32, then bf16 again."""
    monkeypatch.setattr(nu, "cpu_has_bf16", lambda: True)
    splits = synthetic_splits(48, 8)
    runs = [nu.train(_config(tiny_model_dir, tmp_path / f"r{i}", epochs=1, mixed_precision=mp), splits)
            for i, mp in enumerate(["bf16", "no", "bf16"])]
    assert [r.precision for r in runs] == ["bf16", "no", "bf16"]
    assert runs[2].losses == runs[0].losses and runs[2].testb_pred == runs[0].testb_pred
    assert runs[1].losses != runs[0].losses  # fp32 really ran in fp32
    w0, w2 = _weights(tmp_path / "r0"), _weights(tmp_path / "r2")
    assert all(torch.equal(w0[k], w2[k]) for k in w0)


def test_optimizer_skips_decay_on_bias_and_layernorm(tiny):
    model, _ = tiny
    decay, no_decay = nu.build_optimizer(model, 5e-5, 0.01).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert not any(names[id(p)].endswith("bias") for p in decay["params"])


@pytest.mark.parametrize("n_batches, world", [(1, 2), (5, 3), (34, 3), (4, 4), (7, 1), (3, 8)])
def test_every_batch_is_seen_once_and_every_process_steps_alike(n_batches, world):
    shards = [nu.shard_batches(list(range(n_batches)), rank, world) for rank in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n_batches // world)
    assert set().union(*map(set, shards)) == set(range(n_batches))
    assert sum(len(s) for s in shards) - n_batches < world  # only the padding repeats


def test_100_sentences_on_3_processes_see_all_100():
    batches = nu.batch_order([5] * 100, 8)
    seen = [i for rank in range(3) for b in nu.shard_batches(batches, rank, 3) for i in b]
    assert set(seen) == set(range(100))


def test_train_end_to_end_writes_model_metrics_and_checkpoint(tmp_path, tiny_model_dir):
    result = nu.train(_config(tiny_model_dir, tmp_path / "run", epochs=3), synthetic_splits())
    steps_per_epoch = 160 // 8
    assert len(result.losses) == 3 * steps_per_epoch
    assert len(result.testa_f1_per_epoch) == 3
    assert result.best_epoch == 1 + result.testa_f1_per_epoch.index(max(result.testa_f1_per_epoch))
    assert result.testa["overall"]["f1"] == pytest.approx(max(result.testa_f1_per_epoch))  # best weights kept
    assert result.losses[-1] < result.losses[0]
    assert result.tokens_per_second > 0 and result.train_seconds > 0 and result.peak_memory_mb > 0
    assert len(result.epoch_seconds) == 3 and sum(result.epoch_seconds) == pytest.approx(result.train_seconds)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"testa_f1", "testb_f1", "train_seconds", "model", "epoch_seconds", "precision"} <= set(metrics)
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

    def spy(folder, model, optimizer, scheduler, state, *rest):
        saved[state["epoch"]] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}  # as saved
        if state["epoch"] == 3:
            fake.per_epoch = False
        return real_ckpt(folder, model, optimizer, scheduler, state, *rest)
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


def _disconnect_after_first_epoch(monkeypatch, config):
    """Train ``config`` until its first checkpoint is written, then fail as a lost Colab runtime would."""
    real = nu._save_checkpoint

    def crash_after_first_epoch(*args):
        real(*args)
        raise Disconnect
    monkeypatch.setattr(nu, "_save_checkpoint", crash_after_first_epoch)
    with pytest.raises(Disconnect):
        nu.train(config, synthetic_splits())
    monkeypatch.setattr(nu, "_save_checkpoint", real)


def test_resume_after_a_disconnect_gives_identical_weights(tmp_path, tiny_model_dir, monkeypatch):
    straight = nu.train(_config(tiny_model_dir, tmp_path / "straight"), synthetic_splits())
    _disconnect_after_first_epoch(monkeypatch, _config(tiny_model_dir, tmp_path / "resumed"))
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
    for change in ({"decode": "argmax"}, {"max_eval_sentences": 10}, {"pad_to_multiple_of": 4}):  # 1 on CPU, 16 on GPU
        with pytest.raises(nu.CheckpointError, match=f"belongs to another run.*{next(iter(change))}"):
            nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1, **change), synthetic_splits(), resume=True)
    with pytest.raises(nu.CheckpointError, match="belongs to another run.*data: checkpoint"):
        nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), synthetic_splits(seed=1), resume=True)
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


@pytest.mark.slow
def test_two_processes_with_a_single_batch_finish(tmp_path, tiny_model_dir):
    """8 sentences at batch 8 on 2 processes: one batch for two processes used to hang in all-reduce."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           str(ROOT / "tests" / "scripts" / "ddp_train.py"), str(tiny_model_dir), str(tmp_path), "8"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == 2  # one step per epoch on each process
    assert all(torch.equal(r0["weights"][k], r1["weights"][k]) for k in r0["weights"])


def test_precision_is_read_from_this_process_gpu_not_gpu_0(monkeypatch):
    """A T4 as GPU 0 and an A100 as GPU 1: "cuda" means the current device (or LOCAL_RANK under torchrun)."""
    from types import SimpleNamespace
    gpus = {0: SimpleNamespace(major=7, minor=5, name="Tesla T4"), 1: SimpleNamespace(major=8, minor=0, name="A100")}
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: gpus[index])
    assert nu.resolve_precision("auto") == "bf16" and nu.resolve_precision("auto", "cuda") == "bf16"
    assert nu.resolve_precision("auto", "cuda:0") == "fp16"
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert nu.resolve_precision("auto") == "fp16"


def test_config_accepts_numpy_numbers_and_paths_and_stores_plain_types(tmp_path):
    import numpy as np
    c = nu.TrainConfig(model=tmp_path, epochs=np.int64(3), lr=np.float32(1e-4), batch_size=np.int32(16), seed=np.uint32(7),
                       output_dir=tmp_path / "out", pad_to_multiple_of=np.int64(16), eval_max_tokens=np.int64(512))
    assert (type(c.epochs), type(c.lr), type(c.batch_size), type(c.seed), type(c.pad_to_multiple_of)) == (
        int, float, int, int, int)
    assert c.model == str(tmp_path) and c.output_dir == str(tmp_path / "out")
    json.dumps(dataclasses_asdict(c))


def dataclasses_asdict(c):
    from dataclasses import asdict
    return asdict(c)


def test_resume_auto_resumes_a_matching_run_and_restarts_a_changed_one(tmp_path, tiny_model_dir, capsys):
    """The Colab training cell re-run after a knob changed: no CheckpointError, a fresh run, and it says so."""
    splits = synthetic_splits(48, 8)
    nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), splits)
    changed = nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1, lr=5e-4), splits, resume="auto")
    assert "not resuming" in capsys.readouterr().out and changed.resumed_from_epoch == 0
    fresh = nu.train(_config(tiny_model_dir, tmp_path / "fresh", epochs=1, lr=5e-4), splits)
    assert changed.losses == fresh.losses
    again = nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=2, lr=5e-4), splits, resume="auto")
    assert "not resuming" in capsys.readouterr().out  # epochs differ: another run
    same = nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=2, lr=5e-4), splits, resume="auto")
    assert same.resumed_from_epoch == 2 and same.losses == again.losses
    with pytest.raises(nu.CheckpointError):
        nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=2, lr=1e-3), splits, resume=True)
    with pytest.raises(ValueError, match="resume="):
        nu.train(_config(tiny_model_dir, tmp_path / "r"), splits, resume="yes")


def test_a_token_classifier_without_label2id_trains(tmp_path, tiny_model_dir):
    import shutil
    folder = tmp_path / "no-label2id"
    shutil.copytree(tiny_model_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["BertForTokenClassification"]
    cfg["id2label"] = {str(i): l for i, l in enumerate(reversed(nu.LABELS))}
    cfg["label2id"] = {f"LABEL_{i}": i for i in range(len(nu.LABELS))}  # stale, as after a hand edit of id2label
    (folder / "config.json").write_text(json.dumps(cfg))
    result = nu.train(_config(folder, tmp_path / "run", epochs=1), synthetic_splits(48, 8))
    assert all(t in nu.LABELS for p in result.testb_pred for t in p)
    model, _ = nu.load_model(str(tmp_path / "run"), fallback=False)
    assert [model.config.id2label[i] for i in range(9)] == list(reversed(nu.LABELS))


def test_bucketed_widths_train_the_same_model(tmp_path, tiny_model_dir):
    """Padding to multiples of 16 changes the shapes, not the result (fp32: equal up to float rounding)."""
    import shutil
    folder = tmp_path / "no-dropout"  # dropout masks are drawn over the padded shape: switch it off to compare
    shutil.copytree(tiny_model_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (folder / "config.json").write_text(json.dumps(cfg))
    splits = synthetic_splits(64, 8)
    a = nu.train(_config(folder, tmp_path / "a", epochs=1, mixed_precision="no", pad_to_multiple_of=1), splits)
    b = nu.train(_config(folder, tmp_path / "b", epochs=1, mixed_precision="no", pad_to_multiple_of=16), splits)
    assert a.losses == pytest.approx(b.losses, rel=1e-4) and a.testb_pred == b.testb_pred


def test_compile_setting_is_checked_and_auto_is_off():
    assert nu.resolve_compile("auto") is False and nu.resolve_compile("on") is True
    with pytest.raises(ValueError, match="compile"):
        nu.resolve_compile("maybe")




# --- review items: explicit settings win, precision and processes in the resume identity, fp16 loss scaling ------


def test_an_explicit_word_shapes_off_removes_a_checkpoints_casing_embedding(tmp_path, tiny_model_dir):
    """Review item 1: fine-tuning a folder trained with the casing feature, word_shapes="off" trained without
    shape_ids but evaluated and saved with the loaded embedding."""
    first = nu.train(_config(tiny_model_dir, tmp_path / "shaped", epochs=1, word_shapes="on"), synthetic_splits())
    assert first.config["word_shapes"] == "on"
    again = nu.train(_config(tmp_path / "shaped", tmp_path / "plain", epochs=1, word_shapes="off"), synthetic_splits())
    model, tok = nu.load_model(str(tmp_path / "plain"), fallback=False, trained=True)
    assert not nu.uses_word_shapes(model) and model.config.ner_word_shapes is False
    assert nu.SHAPE_KEY not in model.state_dict()
    assert nu.predict_tags(model, tok, synthetic_splits()["testb"]) == again.testb_pred  # trained = predicted


def test_word_shapes_auto_follows_the_casing_of_the_checkpoint_not_its_embedding(tiny):
    model, _ = tiny
    import copy
    m = nu.add_word_shapes(copy.deepcopy(model))
    m.ner_info = {"cased": True}
    assert nu._set_word_shapes(m, "auto") is False and not nu.uses_word_shapes(m)
    m.ner_info = {"cased": False}
    assert nu._set_word_shapes(m, "auto") is True and nu.uses_word_shapes(m)
    assert nu._set_word_shapes(m, "off") is False and not hasattr(m, "shape_embeddings")
    x = torch.tensor([[2, 10, 11, 3]])
    assert torch.equal(m(input_ids=x).logits, model(input_ids=x).logits)  # the hook went with it


def test_resume_under_another_precision_is_another_run(tmp_path, tiny_model_dir, monkeypatch):
    """Review item 9: an fp32 run resumed under bf16 reported bf16 for a run that was half fp32."""
    monkeypatch.setattr(nu, "cpu_has_bf16", lambda: True)
    _disconnect_after_first_epoch(monkeypatch, _config(tiny_model_dir, tmp_path / "r", mixed_precision="no"))
    with pytest.raises(nu.CheckpointError, match="precision: checkpoint 'no' vs this run 'bf16'"):
        nu.train(_config(tiny_model_dir, tmp_path / "r", mixed_precision="auto"), synthetic_splits(), resume=True)
    done = nu.train(_config(tiny_model_dir, tmp_path / "r", mixed_precision="no"), synthetic_splits(), resume=True)
    assert done.resumed_from_epoch == 1 and done.precision == "no"
    written = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert written["resumed_from_epoch"] == 1 and written["precision"] == "no"  # metrics.json says it was resumed


def test_resume_with_another_number_of_processes_is_another_run(tmp_path, tiny_model_dir, monkeypatch):
    """The schedule's total steps depend on the number of processes: resuming with another count is refused."""
    _disconnect_after_first_epoch(monkeypatch, _config(tiny_model_dir, tmp_path / "r"))
    state_file = tmp_path / "r" / "checkpoint-last" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["identity"]["processes"] == 1
    state["identity"]["processes"] = 2
    state_file.write_text(json.dumps(state))
    with pytest.raises(nu.CheckpointError, match="processes: checkpoint 2 vs this run 1"):
        nu.train(_config(tiny_model_dir, tmp_path / "r"), synthetic_splits(), resume=True)


def test_the_schedule_does_not_move_when_the_loss_scaler_skips_a_step():
    """Suspicion: with fp16 the scheduler stepped when the scaler skipped an overflowing step (Accelerate's
    step_was_skipped stays False with a fused AdamW, which skips inside its own kernel)."""
    from types import SimpleNamespace

    class Scaler:  # overflows on the 2nd and 3rd steps: the scale halves, the weights stay
        def __init__(self):
            self.scale, self.calls = 1024.0, 0

        def get_scale(self):
            return self.scale

        def step(self):
            self.calls += 1
            self.scale *= 0.5 if self.calls in (2, 3) else 1

    scaler, scheduled = Scaler(), []
    loss = torch.tensor(1.0, requires_grad=True)
    run = SimpleNamespace(
        step_model=lambda **kw: SimpleNamespace(loss=loss * 2), config=SimpleNamespace(max_grad_norm=0),
        acc=SimpleNamespace(scaler=scaler, backward=lambda l: l.backward()),
        optimizer=SimpleNamespace(step=scaler.step, zero_grad=lambda set_to_none: None),
        scheduler=SimpleNamespace(step=lambda: scheduled.append(scaler.calls)))
    for _ in range(5):
        nu.train_step(run, {})
    assert scheduled == [1, 4, 5]
    run.acc.scaler = None
    nu.train_step(run, {})
    assert scheduled == [1, 4, 5, 6]  # no scaler (bf16, fp32): every step moves the schedule


def test_the_loss_scalers_state_is_checkpointed_and_resumed(tmp_path, tiny_model_dir, monkeypatch):
    """Suspicion: a T4 (fp16) run resumed after a disconnect started with a fresh scale."""
    real = nu._accelerator

    def with_scaler(precision):  # the CPU has no fp16: a scaler as fp16 on a GPU has, on an fp32 run
        acc = real(precision)
        acc.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=3)
        return acc
    monkeypatch.setattr(nu, "_accelerator", with_scaler)
    straight = nu.train(_config(tiny_model_dir, tmp_path / "straight"), synthetic_splits())
    _disconnect_after_first_epoch(monkeypatch, _config(tiny_model_dir, tmp_path / "resumed"))
    resumed = nu.train(_config(tiny_model_dir, tmp_path / "resumed"), synthetic_splits(), resume=True)
    a, b = (torch.load(tmp_path / r / "checkpoint-last" / "scaler.pt", weights_only=True) for r in ("straight", "resumed"))
    assert a["scale"] > 2.0 ** 10 and a == b  # the scale grew over 40 steps, and the resumed run continued it
    assert resumed.losses == straight.losses


def test_precision_under_torchrun_with_one_visible_gpu_per_process_asks_that_gpu(monkeypatch):
    """Suspicion: LOCAL_RANK=1 with CUDA_VISIBLE_DEVICES set per rank named GPU 1 of a process that sees one GPU."""
    from types import SimpleNamespace
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: asked.append(index) or SimpleNamespace(major=8, minor=0, name="A100"))
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert nu.resolve_precision("auto") == "bf16" and asked == [0]


def test_train_reads_raw_iob1_splits_as_load_conll2003_does(tmp_path, tiny_model_dir):
    """Suspicion: train() took read_splits' IOB1 tags as they were and decoded them with IOB2 Viterbi."""
    from conftest import make_split_folder
    folder = make_split_folder(tmp_path / "data")
    raw, loaded = nu.read_splits(folder), nu.load_conll2003(folder)
    assert nu.tag_scheme(raw["train"]) == "IOB1"
    a = nu.train(_config(tiny_model_dir, tmp_path / "a", epochs=1), raw)
    b = nu.train(_config(tiny_model_dir, tmp_path / "b", epochs=1), loaded)
    assert a.losses == b.losses and a.testb == b.testb
    assert [s.tags for s in a.testb_sentences] == [s.tags for s in loaded["testb"]]
    assert nu.tag_scheme(raw["train"]) == "IOB1"  # the caller's sentences are not changed


def test_a_checkpoint_of_the_version_before_resumes_and_one_with_a_removed_knob_does_not(tmp_path, tiny_model_dir,
                                                                                          monkeypatch):
    """A checkpoint written before precision, processes and the model folder's fingerprint were recorded (and with the
    removed knobs at their defaults) still resumes; one that trained with a removed knob is another run."""
    _disconnect_after_first_epoch(monkeypatch, _config(tiny_model_dir, tmp_path / "r"))
    state_file = tmp_path / "r" / "checkpoint-last" / "state.json"
    state = json.loads(state_file.read_text())
    for key in ("precision", "processes", "model_files"):
        del state["identity"][key]
    state["identity"] |= {"context_epochs": None, "average_last": 0, "context_pieces": None}
    state_file.write_text(json.dumps(state))
    assert nu.train(_config(tiny_model_dir, tmp_path / "r"), synthetic_splits(), resume=True).resumed_from_epoch == 1
    _disconnect_after_first_epoch(monkeypatch, _config(tiny_model_dir, tmp_path / "r2"))
    state = json.loads((tmp_path / "r2" / "checkpoint-last" / "state.json").read_text())
    state["identity"]["average_last"] = 2
    (tmp_path / "r2" / "checkpoint-last" / "state.json").write_text(json.dumps(state))
    with pytest.raises(nu.CheckpointError, match="average_last: checkpoint 2, a knob this version no longer has"):
        nu.train(_config(tiny_model_dir, tmp_path / "r2"), synthetic_splits(), resume=True)


def test_a_model_saved_with_the_removed_context_cap_is_refused(tmp_path, tiny_model_dir):
    nu.train(_config(tiny_model_dir, tmp_path / "m", epochs=1, context=4), synthetic_splits(48, 8))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps(config | {"ner_context_pieces": 2}))
    for fallback in (False, True):  # refused, never swapped for an offline checkpoint
        with pytest.raises(nu.ModelLoadError, match="older ner_utils with a cap on context word pieces"):
            nu.load_model(str(tmp_path / "m"), fallback=fallback)


def test_a_model_folder_whose_weights_changed_does_not_resume(tmp_path, tiny_model_dir, monkeypatch):
    """The checkpoint records a fingerprint of a local model folder (config.json, weight files' sizes and times): the
    same path with other weights is another run, refused by resume=True and restarted by resume="auto"."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    _disconnect_after_first_epoch(monkeypatch, _config(folder, tmp_path / "r"))
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v + 0.01 for k, v in weights.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(nu.CheckpointError,
                       match=r"belongs to another run \(model_files: checkpoint '[0-9a-f]+' vs this run '[0-9a-f]+'\)"):
        nu.train(_config(folder, tmp_path / "r"), synthetic_splits(), resume=True)
    assert nu.train(_config(folder, tmp_path / "r"), synthetic_splits(), resume="auto").resumed_from_epoch == 0


def test_metrics_json_is_replaced_whole_or_not_at_all(tmp_path, tiny_model_dir, monkeypatch):
    """A process killed while writing metrics.json leaves the earlier one readable (the notebook's summary reads it)."""
    nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), synthetic_splits())
    metrics = tmp_path / "r" / "metrics.json"
    before = json.loads(metrics.read_text())
    real_write_text = Path.write_text

    def killed_halfway(path, text, *args, **kwargs):
        if path.name.startswith("metrics.json"):
            real_write_text(path, text[:len(text) // 2], *args, **kwargs)
            raise KeyboardInterrupt("killed while writing")
        return real_write_text(path, text, *args, **kwargs)
    monkeypatch.setattr(Path, "write_text", killed_halfway)
    with pytest.raises(KeyboardInterrupt):  # resumed after its last epoch: only the final save and metrics.json
        nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), synthetic_splits(), resume=True)
    assert json.loads(metrics.read_text()) == before
    monkeypatch.setattr(Path, "write_text", real_write_text)
    nu.train(_config(tiny_model_dir, tmp_path / "r", epochs=1), synthetic_splits(), resume=True)
    assert json.loads(metrics.read_text())["resumed_from_epoch"] == 1 and not list((tmp_path / "r").glob("*.tmp"))


def test_the_recipe_is_described_in_words(monkeypatch):
    monkeypatch.setattr(nu, "resolve_precision", lambda setting="auto", device=None: "bf16")
    config = nu.replace(nu.TrainConfig(), **{f: getattr(nu.RECIPES["base"], f) for f in nu.RECIPE_FIELDS})
    text = nu.describe_recipe(config, "base", "the model is all-mpnet-base-v2")
    assert text == ("recipe: all-mpnet-base-v2 (base-sized, uncased), because the model is "
                    "all-mpnet-base-v2; its settings were the small model's final recipe (chosen on eng.testa, ablation "
                    "table) with 4 epochs instead of 6, to bound the training time; the 4 epochs were not chosen by a "
                    "measurement\n"
                    "settings: learning rate 1e-4, batches of 32 sentences, 4 epochs, casing feature on, Viterbi "
                    "decoding, each sentence alone, mixed precision bf16\n"
                    "where bert-base-cased loads, it takes the recipe BERT-base, cased, a point of the fine-tuning grid "
                    "of Devlin et al. (2019, appendix A.3), from the literature, not measured here: learning rate 5e-5, "
                    "batches of 32 sentences, 3 epochs, casing feature on only for an uncased checkpoint, Viterbi "
                    "decoding, each sentence alone")
    assert "where bert-base-cased loads" not in nu.describe_recipe(config, "bert-base", "why")
    wider = nu.describe_recipe(nu.replace(config, lr=2.5e-5, context=32, decode="argmax"), "base", "why")
    assert "learning rate 2.5e-5" in wider and "argmax decoding, 32 words of document context each side" in wider
    one = nu.describe_recipe(nu.replace(config, batch_size=1, epochs=1, context=1, word_shapes="auto"), "base", "why")
    assert "batches of 1 sentence, 1 epoch, casing feature on only for an uncased checkpoint" in one
    assert "1 word of document context" in one


def test_the_schedule_warms_up_linearly_then_decays_to_zero():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = nu.build_scheduler(optimizer, steps_per_epoch=10, epochs=2, warmup_ratio=0.1)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:3] == [0.0, 0.5, 1.0] and rates[-1] == pytest.approx(1 / 18)
    assert all(a >= b for a, b in zip(rates[2:], rates[3:])) and optimizer.param_groups[0]["lr"] == 0.0


def test_the_warmup_rounds_as_ratio_times_steps_per_epoch_times_epochs():
    """0.06 x 45 x 10 is 26.999... evaluated left to right (26 warm-up steps), 27 as 0.06 x 450: the first is the rule."""
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = nu.build_scheduler(optimizer, steps_per_epoch=45, epochs=10, warmup_ratio=0.06)
    for _ in range(26):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.0)  # warm-up over after 26 steps, not 27


@pytest.mark.parametrize("main, old, expected", [(False, False, "checkpoint-last"), (False, True, "checkpoint-last.old"),
                                                 (True, True, "checkpoint-last"), (True, False, "checkpoint-last")])
def test_a_save_interrupted_between_its_two_renames_resumes_from_the_old_folder(tmp_path, main, old, expected):
    for made, name in ((main, "checkpoint-last"), (old, "checkpoint-last.old")):
        if made:
            (tmp_path / name).mkdir()
    assert nu._saved_checkpoint(tmp_path / "checkpoint-last") == tmp_path / expected
