"""Word-level prediction from a token-classification model."""
from __future__ import annotations

import pytest
import torch

import ner_utils as nu


def test_predict_returns_one_tag_per_word_in_input_order(tiny):
    model, tok = tiny
    sentences = [nu.Sentence(w.split(), []) for w in
                 ["john lives in berlin", "a", "", "the eu and germany met in the city of berlin to call john"]]
    tags = nu.predict_tags(model, tok, sentences, batch_size=2)
    assert [len(t) for t in tags] == [4, 1, 0, 13]
    assert all(t in nu.LABELS for s in tags for t in s)
    # the same sentences one at a time give the same tags (order restored, padding harmless)
    assert [nu.predict_tags(model, tok, [s])[0] for s in sentences] == tags


def test_predict_uses_eval_mode_without_gradients_and_restores_training_mode(tiny):
    model, tok = tiny
    seen = {}

    def hook(module, args, output):
        seen["training"] = module.training
        seen["grad"] = torch.is_grad_enabled()

    handle = model.register_forward_hook(hook)
    model.train()
    try:
        first = nu.predict_tags(model, tok, [nu.Sentence(["john", "met"], [])])
        second = nu.predict_tags(model, tok, [nu.Sentence(["john", "met"], [])])
    finally:
        handle.remove()
    assert seen == {"training": False, "grad": False}
    assert model.training and first == second  # dropout off: deterministic
    model.eval()


def test_predict_matches_argmax_of_first_piece_logits(tiny):
    model, tok = tiny
    words = ["angela", "merkel", "visited", "berlin"]
    enc = tok(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**{k: v for k, v in enc.items() if k != "token_type_ids"}).logits[0]
    firsts = [enc.word_ids().index(i) for i in range(len(words))]
    expected = [model.config.id2label[int(logits[p].argmax())] for p in firsts]
    assert nu.predict_tags(model, tok, [nu.Sentence(words, [])], decode="argmax", precision="no") == [expected]


@pytest.mark.real_data
def test_every_testb_word_gets_a_prediction(real_splits, tiny):
    model, tok = tiny
    tags = nu.predict_tags(model, tok, real_splits["testb"], batch_size=128)
    assert sum(len(t) for t in tags) == 46435
    assert [len(t) for t in tags] == [len(s.words) for s in real_splits["testb"]]


def test_bf16_autocast_prediction_agrees_with_fp32_on_shapes(tiny, monkeypatch):
    monkeypatch.setattr(nu, "cpu_has_bf16", lambda: True)  # bf16 autocast runs (emulated) on any CPU
    model, tok = tiny
    sentences = [nu.Sentence("john lives in berlin".split(), [])]
    fp32 = nu.word_log_probs(model, tok, sentences, precision="no")[0]
    bf16 = nu.word_log_probs(model, tok, sentences, precision="bf16")[0]
    assert fp32.shape == bf16.shape and torch.allclose(fp32, bf16, atol=0.1)


def test_token_budget_and_sentence_count_batching_predict_the_same(tiny):
    from conftest import synthetic_splits
    model, tok = tiny
    sentences = synthetic_splits(0, 40)["testa"]
    by_count = nu.word_log_probs(model, tok, sentences, batch_size=7, precision="no")
    for budget in (16, 100, 100_000):
        by_tokens = nu.word_log_probs(model, tok, sentences, max_tokens=budget, precision="no")
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(by_count, by_tokens))
