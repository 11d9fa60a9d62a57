"""Model loading: local folders, $NER_MODEL, the loud offline fallback, casing, the shape feature."""
from __future__ import annotations

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
    assert "'bert-base-cased'" in err and "HF_HUB_OFFLINE" in err and "all-MiniLM-L6-v2" in err
    assert model.ner_info == {"asked": "bert-base-cased", "model": "all-MiniLM-L6-v2", "fallback": True,
                              "reason": "HF_HUB_OFFLINE=1", "parameters": nu.count_parameters(model), "cased": False}
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert 22e6 < model.ner_info["parameters"] < 23e6
    assert tok.tokenize("Paris") == ["paris"]  # an uncased checkpoint gets an uncased tokenizer
    assert model.config.id2label[1] == "B-PER"


def test_ner_model_env_wins_over_the_argument(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("NER_MODEL", str(tiny_model_dir))
    model, _ = nu.load_model("bert-base-cased")
    assert model.ner_info["model"] == str(tiny_model_dir) and model.ner_info["asked"] == str(tiny_model_dir)


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
