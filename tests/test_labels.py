"""Tag schemes and conlleval's chunk definition."""
from __future__ import annotations

import pytest

import ner_utils as nu


@pytest.mark.parametrize("tags, spans", [
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]),
    (["B-PER", "I-PER", "B-PER"], [("PER", 0, 2), ("PER", 2, 3)]),  # adjacent B- of the same type
    (["O", "I-ORG", "I-ORG"], [("ORG", 1, 3)]),  # I- after O starts a chunk
    (["B-ORG", "I-LOC", "I-LOC"], [("ORG", 0, 1), ("LOC", 1, 3)]),  # type change inside a span
    (["S-PER", "B-LOC", "E-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3), ("LOC", 3, 4)]),  # IOBES
    ([], []),
    (["O", "O"], []),
])
def test_get_spans_follows_conlleval(tags, spans):
    assert nu.get_spans(tags) == spans


def test_iob1_to_iob2_examples():
    assert nu.iob1_to_iob2(["I-LOC", "O", "I-PER", "B-PER", "I-PER"]) == ["B-LOC", "O", "B-PER", "B-PER", "I-PER"]
    assert nu.iob1_to_iob2(["I-ORG", "I-LOC"]) == ["B-ORG", "B-LOC"]
    assert nu.iob1_to_iob2(["S-PER", "B-LOC", "I-LOC", "E-LOC"]) == ["B-PER", "B-LOC", "I-LOC", "I-LOC"]


@pytest.mark.parametrize("tags", [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "B-ORG", "I-ORG"], ["O"], []])
def test_iob1_to_iob2_leaves_iob2_unchanged(tags):
    assert nu.iob1_to_iob2(tags) == tags


def test_iob1_to_iob2_random_sequences_keep_chunks():
    import random

    rng = random.Random(7)
    alphabet = ["O"] + [f"{p}-{t}" for p in "BIES" for t in ("PER", "LOC")]
    for _ in range(2000):
        tags = [rng.choice(alphabet) for _ in range(rng.randint(0, 12))]
        converted = nu.iob1_to_iob2(tags)
        assert nu.get_spans(converted) == nu.get_spans(tags)
        assert nu.iob1_to_iob2(converted) == converted
        assert all(t[:2] in ("O", "B-", "I-") for t in converted)


def test_tag_scheme():
    assert nu.tag_scheme([nu.Sentence(["a", "b"], ["B-PER", "I-PER"])]) == "IOB2"
    assert nu.tag_scheme([nu.Sentence(["a"], ["O"]), nu.Sentence(["a", "b"], ["I-PER", "B-PER"])]) == "IOB1"
    assert nu.tag_scheme([nu.Sentence(["a"], ["S-PER"])]) == "IOBES"


def test_labels_are_the_nine_iob2_tags():
    assert nu.LABELS == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def test_get_spans_says_how_it_reads_e_and_s_tags_which_conlleval_pl_does_not_know():
    """conlleval.pl knows no S-: it joins S-PER S-PER into one chunk; get_spans reads IOBES (two chunks), as the
    Python port of conlleval does, and its docstring says so rather than claiming conlleval.pl's reading."""
    import doctest

    assert nu.get_spans(["S-PER", "S-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]
    doc = nu.get_spans.__doc__
    assert "exactly as conlleval" not in doc and "S-" in doc and "E-" in doc and "conlleval.pl" in doc
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(nu.get_spans, globs={"get_spans": nu.get_spans}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
