"""conlleval-exact span scoring, checked by hand and against the PyPI conlleval port."""
from __future__ import annotations

import random

import pytest

import ner_utils as nu

conlleval = pytest.importorskip("conlleval", reason="the test-only reference scorer (pip install conlleval==0.2)")


def test_gold_against_gold_is_perfect():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-MISC"]]
    scores = nu.span_scores(gold, gold)
    assert scores["overall"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "gold": 3, "pred": 3, "correct": 3}
    assert scores["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 0, "pred": 0, "correct": 0}
    assert set(scores) == {"overall", "LOC", "MISC", "ORG", "PER"}


def test_iob1_and_iob2_score_identically():
    iob1 = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]
    iob2 = [["B-PER", "I-PER", "B-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "I-PER", "O", "B-LOC"]]
    assert nu.span_scores(iob1, pred) == nu.span_scores(iob2, pred)
    assert nu.span_scores(iob1, iob2)["overall"]["f1"] == 1.0


def test_adjacent_b_of_same_type_is_two_spans():
    s = nu.span_scores([["B-PER", "B-PER"]], [["B-PER", "I-PER"]])
    assert (s["PER"]["gold"], s["PER"]["pred"], s["PER"]["correct"]) == (2, 1, 0)


def test_i_after_o_starts_a_span():
    s = nu.span_scores([["O", "B-ORG", "I-ORG"]], [["O", "I-ORG", "I-ORG"]])
    assert s["overall"]["f1"] == 1.0


def test_type_change_inside_a_span():
    s = nu.span_scores([["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-LOC", "I-LOC"]])
    assert s["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "pred": 1, "correct": 0}
    assert s["LOC"]["pred"] == 1 and s["overall"]["pred"] == 2


def test_partial_credit_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O", "O"]]
    s = nu.span_scores(gold, pred)["overall"]
    assert (s["gold"], s["pred"], s["correct"]) == (3, 2, 1)
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))


def test_empty_predictions_give_zero_precision_without_crash():
    s = nu.span_scores([["B-PER", "O"]], [["O", "O"]])
    assert s["overall"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "pred": 0, "correct": 0}
    assert "precision:   0.00%" in nu.conlleval_report([["B-PER", "O"]], [["O", "O"]])


def test_spans_never_cross_sentences_and_flat_input_is_accepted():
    assert nu.span_scores([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])["overall"]["gold"] == 2
    assert nu.span_scores(["B-PER", "I-PER"], ["B-PER", "I-PER"])["overall"]["gold"] == 1


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        nu.span_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        nu.span_scores([["O"], ["O"]], [["O"]])


def _reference(gold: list[list[str]], pred: list[list[str]]) -> dict:
    lines = []
    for g, p in zip(gold, pred):
        lines += [f"w {a} {b}" for a, b in zip(g, p)] + [""]
    return conlleval.evaluate(lines)


def _corrupt(tags: list[str], rng: random.Random, rate: float) -> list[str]:
    alphabet = nu.LABELS + ["I-PER", "I-LOC"]
    return [rng.choice(alphabet) if rng.random() < rate else t for t in tags]


def test_report_format_matches_the_reference_port():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "B-MISC", "I-MISC", "O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "B-MISC", "O", "O", "B-LOC"]]
    assert nu.conlleval_report(gold, pred) == conlleval.report(_reference(gold, pred))
    assert nu.conlleval_report(gold, pred).splitlines()[0] == "processed 8 tokens with 4 phrases; found: 4 phrases; correct: 1."


@pytest.mark.real_data
@pytest.mark.slow
def test_agrees_with_conlleval_on_200_corrupted_copies_of_testb(real_raw):
    """Original IOB1 gold of eng.testb against 200 randomly corrupted predictions."""
    rng = random.Random(2003)
    gold = [s.tags for s in real_raw["testb"]]
    for trial in range(200):
        rate = rng.choice([0.01, 0.05, 0.2, 0.5])
        pred = [_corrupt(t, rng, rate) for t in gold]
        if trial % 3 == 0:
            pred = [nu.iob1_to_iob2(t) for t in pred]
        ours = nu.span_scores(gold, pred)
        ref = _reference(gold, pred)
        ref_overall = ref["overall"]["chunks"]
        assert (ours["overall"]["gold"], ours["overall"]["pred"], ours["overall"]["correct"]) == (
            ref_overall["stats"]["gold"], ref_overall["stats"]["pred"], ref_overall["stats"]["correct"])
        assert ours["overall"]["f1"] == pytest.approx(ref_overall["evals"]["f1"], abs=1e-12)
        for kind, ref_slot in ref["slots"]["chunks"].items():
            assert (ours[kind]["gold"], ours[kind]["pred"], ours[kind]["correct"]) == (
                ref_slot["stats"]["gold"], ref_slot["stats"]["pred"], ref_slot["stats"]["correct"])
            if ref_slot["stats"]["pred"]:  # the port reports precision 1.0 for no prediction; conlleval.pl says 0
                assert ours[kind]["precision"] == pytest.approx(ref_slot["evals"]["prec"], abs=1e-12)
                assert ours[kind]["recall"] == pytest.approx(ref_slot["evals"]["rec"], abs=1e-12)
                assert ours[kind]["f1"] == pytest.approx(ref_slot["evals"]["f1"], abs=1e-12)
        if trial < 20:
            assert nu.conlleval_report(gold, pred) == conlleval.report(ref)


@pytest.mark.real_data
def test_agrees_with_seqeval_default_mode_on_corrupted_copies_of_testb_in_iob2(real_splits):
    """seqeval (default, conlleval-compatible mode) and span_scores give the same P/R/F1, overall and per type."""
    from seqeval.metrics import classification_report, f1_score

    rng = random.Random(7)
    gold = [s.tags for s in real_splits["testb"]]
    for trial in range(30):
        pred = [_corrupt(t, rng, rng.choice([0.01, 0.05, 0.2, 0.5])) for t in gold]
        if trial % 2:
            pred = [nu.iob1_to_iob2(t) for t in pred]  # well-formed IOB2 half the time, raw corruption otherwise
        ours = nu.span_scores(gold, pred)
        assert ours["overall"]["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
        theirs = classification_report(gold, pred, output_dict=True, zero_division=0)
        for kind in nu.ENTITY_TYPES:
            assert ours[kind]["gold"] == theirs[kind]["support"]
            for ours_key, their_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
                assert ours[kind][ours_key] == pytest.approx(theirs[kind][their_key], abs=1e-12)


def test_span_scores_says_how_it_reads_e_and_s_tags():
    """Not 'as conlleval reads them': conlleval.pl knows no S-; the chunks are get_spans's (IOBES-aware)."""
    doc = nu.span_scores.__doc__
    assert "as conlleval reads them" not in doc and "get_spans" in doc and "S-" in doc
    assert nu.span_scores([["S-PER", "S-PER"]], [["B-PER", "I-PER"]])["overall"]["correct"] == 0
