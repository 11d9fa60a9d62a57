"""The base-sized offline encoder, all-mpnet-base-v2: getting it (parts, SHA-256, the name), and the whole
pipeline on a tiny random MPNet (no token_type_ids, <s>/</s>/<pad>=1, positions offset by 2)."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

import ner_utils as nu
from conftest import build_tiny_mpnet, synthetic_splits


def _config(model, out, **kw):
    base = dict(model=str(model), epochs=2, batch_size=8, lr=1e-3, output_dir=str(out), progress=False)
    return nu.TrainConfig(**(base | kw))


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory) -> Path:
    return build_tiny_mpnet(tmp_path_factory.mktemp("tiny-mpnet"))


def _fake_parts(tmp_path: Path, model_dir: Path, n: int = 5, compression: int = zipfile.ZIP_STORED,
                damage: str | None = None) -> list[Path]:
    """The upstream layout: a zip holding all-mpnet-base-v2/ (with a desktop.ini), cut into n pieces. The published
    zip is deflated (ZIP_DEFLATED); ``damage``: the member whose first compressed byte is spoilt."""
    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w", compression) as zf:
        zf.writestr("all-mpnet-base-v2/", b"")
        for f in model_dir.iterdir():
            zf.write(f, f"all-mpnet-base-v2/{f.name}")
        zf.writestr("all-mpnet-base-v2/desktop.ini", b"[.ShellClassInfo]")
    data = bytearray(archive.read_bytes())
    if damage:
        with zipfile.ZipFile(archive) as zf:
            offset = zf.getinfo(f"all-mpnet-base-v2/{damage}").header_offset
        offset += 30 + int.from_bytes(data[offset + 26:offset + 28], "little") + int.from_bytes(
            data[offset + 28:offset + 30], "little")  # past the local header: the member's first deflate block
        data[offset] = 0xFF  # a block of the reserved type 3: zlib.error, not a CRC mismatch (BadZipFile)
    size = -(-len(data) // n)
    parts = []
    for i in range(n):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(data[i * size:(i + 1) * size])
        parts.append(part)
    return parts


@pytest.fixture
def installed(tmp_path, tiny_mpnet, monkeypatch):
    """A tiny MPNet 'installed' as five parts, with its own SHA-256 as the expected one; an empty model cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "parts").mkdir()
    parts = _fake_parts(tmp_path / "parts", tiny_mpnet)
    monkeypatch.setattr(nu, "_part_files", lambda: parts)
    digest = hashlib.sha256((tiny_mpnet / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setattr(nu, "BASE_MODEL_SHA256", digest)
    nu._sha256.cache_clear()
    return tmp_path / "cache" / "ner_utils" / "all-mpnet-base-v2"


def test_without_the_parts_the_name_says_how_to_install_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(nu, "BASE_MODEL_PARTS", ["no-such-package-part-001"])
    for fallback in (True, False):  # asked for by name: never replaced by another checkpoint
        with pytest.raises(nu.ModelLoadError) as err:
            nu.load_model("all-mpnet-base-v2", fallback=fallback)
        message = str(err.value)
        assert "\n" not in message and "not installed" in message and "make mpnet" in message
        assert "--no-deps" in message
    assert nu.main(["predict", "--model", "all-mpnet-base-v2", "x"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "cache" / "ner_utils" / "all-mpnet-base-v2").exists()


def test_the_parts_are_reassembled_once_checked_and_loaded_by_name(installed, tiny_mpnet, capsys):
    model, tok = nu.load_model("all-mpnet-base-v2")
    assert "reassembling 5 parts" in capsys.readouterr().err
    assert model.ner_info["model"] == "all-mpnet-base-v2" and model.ner_info["fallback"] is False
    assert type(model).__name__ == "MPNetForTokenClassification" and not model.ner_info["cased"]
    assert sorted(p.name for p in installed.iterdir()) == sorted(p.name for p in tiny_mpnet.iterdir())  # no desktop.ini
    assert not list(installed.parent.glob("*.tmp"))
    nu.load_model("all-mpnet-base-v2")
    assert "reassembling" not in capsys.readouterr().err  # once
    key, recipe, _ = nu.choose_recipe(model)
    assert key == "base" and "chosen on eng.testa" in recipe.source and recipe.word_shapes == "on"


def test_a_wrong_sha256_refuses_and_loads_nothing(installed, monkeypatch):
    """During reassembly the weights are checked in a temporary folder that is gone when the error is read: the
    message names the installed parts and the reinstall that fixes them, not that folder."""
    monkeypatch.setattr(nu, "BASE_MODEL_SHA256", "0" * 64)
    with pytest.raises(nu.ModelLoadError, match=r"the installed parts of all-mpnet-base-v2 .* do not hold its model "
                                                r"\(model\.safetensors has SHA-256 [0-9a-f]{64}, expected 0{64}\); "
                                                r"reinstall them with .*--force-reinstall") as err:
        nu.load_model("all-mpnet-base-v2")
    assert ".tmp" not in str(err.value) and "delete" not in str(err.value) and "\n" not in str(err.value)
    assert not installed.exists() and not list(installed.parent.glob("*"))  # nothing half-written


def test_weights_changed_after_assembly_are_refused(installed):
    nu.base_model_path()
    weights = installed / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(nu.ModelLoadError, match="refusing to load it; delete .*all-mpnet-base-v2"):
        nu.load_model("all-mpnet-base-v2")
    with pytest.raises(nu.ModelLoadError, match="refusing"):  # nor used as the fallback
        nu.load_model("bert-base-cased")


def test_once_assembled_it_is_the_offline_fallback(installed, capsys, monkeypatch):
    monkeypatch.delenv("NER_MODEL", raising=False)
    nu.base_model_path()
    model, _ = nu.load_model("bert-base-cased")
    assert model.ner_info["model"] == "all-mpnet-base-v2" and model.ner_info["fallback"] is True
    assert "using all-mpnet-base-v2, installed locally" in capsys.readouterr().err
    assert nu.load_model("all-MiniLM-L6-v2")[0].ner_info["model"] == "all-MiniLM-L6-v2"  # by name: still MiniLM


def test_mpnet_features_have_its_specials_and_no_token_type_ids(tiny_mpnet):
    model, tok = nu.load_model(str(tiny_mpnet), fallback=False)
    assert tok.pad_token_id == 1 and nu.max_pieces(tok, model) == 64  # 66 positions, 2 reserved by MPNet
    label2id = {label: i for i, label in enumerate(nu.LABELS)}
    [f] = nu.encode(tok, [nu.Sentence(["john", "lives", "in", "berlin"], ["B-PER", "O", "O", "B-LOC"])], label2id)
    assert tok.convert_ids_to_tokens(f["input_ids"]) == ["<s>", "john", "lives", "in", "berlin", "</s>"]
    assert "token_type_ids" not in f
    batch = nu.collate([f, {**f, "input_ids": f["input_ids"][:3], "labels": f["labels"][:3],
                            "word_index": f["word_index"][:3], "shape_ids": f["shape_ids"][:3]}], tok.pad_token_id)
    assert batch["input_ids"][1, 3:].tolist() == [1, 1, 1]
    long = [nu.Sentence(["john"] * 200, ["B-PER"] + ["I-PER"] * 199)]
    assert all(len(x["input_ids"]) <= 64 for x in nu.encode(tok, long, label2id))
    assert len(nu.predict_tags(model, tok, long)[0]) == 200


def test_windows_stay_within_512_pieces_for_mpnets_514_positions():
    """MPNet (like RoBERTa) numbers positions from 2: 514 position embeddings hold 512 pieces."""
    from types import SimpleNamespace
    tok = SimpleNamespace(model_max_length=512)
    assert nu.max_pieces(tok, SimpleNamespace(config=SimpleNamespace(max_position_embeddings=514))) == 512
    assert nu.max_pieces(SimpleNamespace(model_max_length=10**30), SimpleNamespace(config=SimpleNamespace(
        max_position_embeddings=514))) == 512  # a tokenizer without a limit


def test_windows_leave_out_the_two_offset_positions_below_512(tmp_path):
    """Positions 0 and 1 (pad) are never used: 130 position embeddings hold 128 pieces, and a long sentence with a
    tokenizer that states no limit is windowed instead of indexing past the table."""
    folder = build_tiny_mpnet(tmp_path / "m", max_positions=128)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg | {"model_max_length": 10**30}))
    model, tok = nu.load_model(str(folder), fallback=False)
    assert model.config.max_position_embeddings == 130 and nu.max_pieces(tok, model) == 128
    long = [nu.Sentence(["john"] * 300, ["B-PER"] + ["I-PER"] * 299)]
    assert len(nu.predict_tags(model, tok, long)[0]) == 300


def test_mpnet_trains_with_casing_viterbi_and_context_and_resumes_identically(tmp_path, tiny_mpnet, monkeypatch):
    from test_training import _disconnect_after_first_epoch

    cfg = dict(word_shapes="on", decode="viterbi", context=4)
    straight = nu.train(_config(tiny_mpnet, tmp_path / "straight", **cfg), synthetic_splits())
    assert straight.losses[-1] < straight.losses[0] and straight.recipe == "conservative"
    _disconnect_after_first_epoch(monkeypatch, _config(tiny_mpnet, tmp_path / "resumed", **cfg))
    resumed = nu.train(_config(tiny_mpnet, tmp_path / "resumed", **cfg), synthetic_splits(), resume=True)
    assert resumed.losses == straight.losses and resumed.testb_pred == straight.testb_pred
    model, tok = nu.load_model(str(tmp_path / "resumed"), fallback=False, trained=True)
    assert nu.uses_word_shapes(model) and (model.config.ner_context, model.config.ner_decode) == (4, "viterbi")
    assert nu.predict_tags(model, tok, synthetic_splits()["testb"]) == straight.testb_pred  # the save/load round trip


def test_an_mpnet_tagger_works_in_a_transformers_pipeline(tmp_path, tiny_mpnet):
    from transformers import pipeline

    nu.train(_config(tiny_mpnet, tmp_path / "p", epochs=6, word_shapes="off", lr=3e-3), synthetic_splits(320))
    ner = pipeline("token-classification", model=str(tmp_path / "p"), aggregation_strategy="first", device="cpu")
    assert {(e["word"], e["entity_group"]) for e in ner("john lives in berlin")} == {("john", "PER"), ("berlin", "LOC")}


def test_broken_parts_say_how_to_reinstall_and_leave_nothing(installed, tmp_path, monkeypatch):
    junk = tmp_path / "junk.001"
    junk.write_bytes(b"not a zip at all")
    monkeypatch.setattr(nu, "_part_files", lambda: [junk])
    with pytest.raises(nu.ModelLoadError, match=r"do not hold its model \(BadZipFile.*--force-reinstall"):
        nu.load_model("all-mpnet-base-v2")
    assert not installed.parent.exists() or not list(installed.parent.iterdir())


def test_a_second_assembly_keeps_the_first_copy(installed):
    """Two processes (every rank of a multi-process run) may assemble at once: the one that finishes second keeps
    the first one's folder, and neither fails."""
    first = nu.base_model_path()
    stamp = (first / "config.json").stat().st_mtime_ns
    nu._assemble_base_model(first)  # as a process that started before the first one finished
    assert (first / "config.json").stat().st_mtime_ns == stamp and not list(first.parent.glob("*.tmp"))


def test_deflated_parts_assemble_and_a_damaged_one_says_how_to_reinstall(installed, tmp_path, tiny_mpnet,
                                                                       monkeypatch):
    """The published zip is deflated: damage there surfaces as zlib.error (or EOFError), not BadZipFile."""
    (tmp_path / "deflated").mkdir()
    parts = _fake_parts(tmp_path / "deflated", tiny_mpnet, compression=zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(nu, "_part_files", lambda: parts)
    assert (nu.base_model_path() / "model.safetensors").read_bytes() == (tiny_mpnet / "model.safetensors").read_bytes()
    import shutil
    shutil.rmtree(installed)
    (tmp_path / "damaged").mkdir()
    damaged = _fake_parts(tmp_path / "damaged", tiny_mpnet, compression=zipfile.ZIP_DEFLATED,
                          damage="model.safetensors")
    monkeypatch.setattr(nu, "_part_files", lambda: damaged)
    with pytest.raises(nu.ModelLoadError, match=r"do not hold its model \(error: .*invalid block type\); reinstall "
                                                r"them with .*--force-reinstall") as err:
        nu.load_model("all-mpnet-base-v2")
    assert "\n" not in str(err.value)
    assert not installed.exists() and not list(installed.parent.glob("*.tmp"))


def test_a_killed_reassemblys_folder_is_removed_by_a_later_run_and_a_running_ones_is_kept(installed):
    """A reassembly killed (out of memory, a Colab restart) leaves ~2 x 440 MB in a temporary folder named by its
    process: a later run removes it once that process is gone; a running process's folder (here: this process's,
    or one of another machine sharing the cache) is never touched. Unnamed ones (older versions) go after hours."""
    import os
    import re
    import socket
    import subprocess
    import sys
    import time

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(gone.stdout)
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())  # as the folders are named: PID@HOST
    parent = installed.parent
    killed = parent / f"all-mpnet-base-v2.{dead_pid}@{host}.k1ll3d.tmp"
    running = parent / f"all-mpnet-base-v2.{os.getpid()}@{host}.runn1ng.tmp"
    elsewhere = parent / f"all-mpnet-base-v2.{dead_pid}@another-machine.els3wh.tmp"
    old_unnamed, new_unnamed = parent / "all-mpnet-base-v2.abc123xy.tmp", parent / "all-mpnet-base-v2.zz9_q0.tmp"
    for tmp in (killed, running, elsewhere, old_unnamed, new_unnamed):
        (tmp / "model").mkdir(parents=True)
        (tmp / "joined.zip").write_bytes(b"part of a zip")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_unnamed, (two_days_ago, two_days_ago))
    twenty_minutes_ago = time.time() - 1200
    os.utime(killed, (twenty_minutes_ago, twenty_minutes_ago))
    just_started = parent / f"all-mpnet-base-v2.{dead_pid}@{host}.n3wpid.tmp"  # a fresh folder: maybe another PID
    (just_started / "model").mkdir(parents=True)  # namespace with the same host name; kept for 10 minutes
    nu.base_model_path()
    assert not killed.exists() and not old_unnamed.exists()
    assert running.exists() and elsewhere.exists() and new_unnamed.exists() and just_started.exists()
    assert sorted(p.name for p in parent.glob("*.tmp")) == sorted(p.name for p in (running, elsewhere, new_unnamed,
                                                                                   just_started))
