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
