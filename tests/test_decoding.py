"""BIO-constrained Viterbi decoding and document context."""
from __future__ import annotations

import itertools
import random

import pytest
import torch

import ner_utils as nu

LABEL2ID = {label: i for i, label in enumerate(nu.LABELS)}


def _valid(tags):
    return all(not t.startswith("I-") or (p != "O" and p[2:] == t[2:]) for p, t in zip(["O"] + tags[:-1], tags))


def test_viterbi_never_emits_invalid_transitions():
    gen = torch.Generator().manual_seed(0)
    for n in range(1, 30):
        logp = torch.randn(n, len(nu.LABELS), generator=gen).log_softmax(-1)
        assert _valid(nu.viterbi_decode(logp, nu.LABELS))


def test_viterbi_equals_argmax_when_argmax_is_valid():
    rng = random.Random(1)
    for _ in range(200):
        tags = nu.iob1_to_iob2([rng.choice(nu.LABELS) for _ in range(rng.randint(1, 12))])
        logp = torch.full((len(tags), len(nu.LABELS)), -5.0)
        for i, t in enumerate(tags):
            logp[i, LABEL2ID[t]] = -0.1 - rng.random()
        assert nu.viterbi_decode(logp, nu.LABELS) == tags


def test_viterbi_is_the_best_valid_path_by_brute_force():
    gen = torch.Generator().manual_seed(3)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    for _ in range(20):
        logp = torch.randn(4, len(labels), generator=gen).log_softmax(-1)
        best = max((p for p in itertools.product(range(len(labels)), repeat=4) if _valid([labels[i] for i in p])),
                   key=lambda p: sum(logp[t, i] for t, i in enumerate(p)))
        assert nu.viterbi_decode(logp, labels) == [labels[i] for i in best]


def test_predict_tags_decode_options(tiny):
    model, tok = tiny
    sentences = [nu.Sentence("john met angela merkel in berlin".split(), [])] * 3
    viterbi = nu.predict_tags(model, tok, sentences, decode="viterbi")
    assert all(_valid(t) for t in viterbi)
    with pytest.raises(ValueError, match="decode='beam'"):
        nu.predict_tags(model, tok, sentences, decode="beam")


def _doc(words_per_sentence, doc=0):
    return [nu.Sentence(w.split(), ["O"] * len(w.split()), doc) for w in words_per_sentence]


def test_context_pieces_never_receive_labels_or_predictions(tiny):
    model, tok = tiny
    sentences = _doc(["john lives in berlin", "the eu met", "angela merkel"]) + _doc(["berlin and germany"], doc=1)
    sentences[1].tags = ["O", "B-ORG", "O"]
    plain = nu.encode(tok, sentences, LABEL2ID)
    wide = nu.encode(tok, sentences, LABEL2ID, context=3)
    for p, w in zip(plain, wide, strict=True):
        assert p["sentence"] == w["sentence"]
        # labelled pieces: exactly the sentence's own words, with the same labels
        assert [x for x in w["labels"] if x != -100] == [x for x in p["labels"] if x != -100]
        assert [x for x in w["word_index"] if x >= 0] == [x for x in p["word_index"] if x >= 0]
        assert len(w["input_ids"]) >= len(p["input_ids"])
    # sentence 1 sees 3 words of sentence 0 on the left and the 2 of sentence 2 on the right, nothing of doc 1
    middle = wide[1]
    pieces = tok.convert_ids_to_tokens(middle["input_ids"])
    assert " ".join(pieces).startswith("[CLS] lives in berlin the eu met angela merkel")
    assert "germany" not in pieces
    # the last sentence of doc 0 must not see doc 1
    assert "germany" not in tok.convert_ids_to_tokens(wide[2]["input_ids"])
    # predictions: one per word, context or not
    model.config.ner_context = 3
    try:
        tags = nu.predict_tags(model, tok, sentences)
    finally:
        model.config.ner_context = 0
    assert [len(t) for t in tags] == [len(s.words) for s in sentences]


def test_context_respects_the_length_limit(tiny):
    _, tok = tiny
    sentences = _doc(["john " * 20, "eu " * 20, "berlin " * 20])
    for f in nu.encode(tok, sentences, LABEL2ID, max_length=30, context=64):
        assert len(f["input_ids"]) <= 30
        assert sum(1 for x in f["labels"] if x != -100) == 20


def test_context_pieces_cap_the_context_not_the_sentence(tiny):
    _, tok = tiny
    sentences = _doc(["john lives in berlin", "the eu met", "angela merkel visited germany"])
    plain = nu.encode(tok, sentences, LABEL2ID)
    wide = nu.encode(tok, sentences, LABEL2ID, context=3)
    assert nu.encode(tok, sentences, LABEL2ID, context=3, context_pieces=None) == wide
    assert nu.encode(tok, sentences, LABEL2ID, context=3, context_pieces=10_000) == wide
    capped = nu.encode(tok, sentences, LABEL2ID, context=3, context_pieces=2)
    for p, w, c in zip(plain, wide, capped, strict=True):
        own = len(p["input_ids"])
        assert own <= len(c["input_ids"]) <= own + 2 * 2 and len(c["input_ids"]) <= len(w["input_ids"])
        assert [x for x in c["labels"] if x != -100] == [x for x in p["labels"] if x != -100]
        assert [x for x in c["word_index"] if x >= 0] == [x for x in p["word_index"] if x >= 0]
    # the middle sentence: 2 pieces each side, the nearest ones ("berlin" and "angela merkel" are one piece each)
    pieces = tok.convert_ids_to_tokens(capped[1]["input_ids"])
    assert " ".join(pieces).startswith("[CLS] in berlin the eu met angela merkel [SEP]")
    assert nu.encode(tok, sentences, LABEL2ID, context=0, context_pieces=2) == plain
    with pytest.raises(ValueError, match="context_pieces=0"):
        nu.encode(tok, sentences, LABEL2ID, context=3, context_pieces=0)


def test_context_at_prediction_time_overrides_the_models_own(tiny):
    """predict_tags(context=K) on a model trained without context equals the model told to use K, and K=0 is the
    plain sentence-only prediction."""
    model, tok = tiny
    sentences = _doc(["john lives in berlin", "the eu met", "angela merkel"])
    assert getattr(model.config, "ner_context", 0) == 0
    plain = nu.word_log_probs(model, tok, sentences)
    explicit = nu.word_log_probs(model, tok, sentences, context=3)
    model.config.ner_context = 3
    try:
        own = nu.word_log_probs(model, tok, sentences)
        zero = nu.word_log_probs(model, tok, sentences, context=0)
    finally:
        model.config.ner_context = 0
    assert all(torch.equal(a, b) for a, b in zip(explicit, own))
    assert all(torch.equal(a, b) for a, b in zip(zero, plain))
    assert not all(torch.equal(a, b) for a, b in zip(explicit, plain))  # context does change the scores
    labels = nu._labels_in_order(model)
    assert nu.predict_tags(model, tok, sentences, decode="argmax", context=3) == [
        [labels[int(k)] for k in s.argmax(-1)] for s in explicit]
