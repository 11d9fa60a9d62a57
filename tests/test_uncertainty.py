"""Bootstrap intervals over documents, paired comparisons, and CoNLL++."""
from __future__ import annotations

import json
import random

import pytest

import ner_utils as nu


def _docs(n_docs: int, right: int, seed: int = 0) -> tuple[list[nu.Sentence], list[list[str]]]:
    """n_docs documents of 10 one-entity sentences; ``right`` of each document's 10 are predicted correctly."""
    rng, gold, pred = random.Random(seed), [], []
    for d in range(n_docs):
        for k in range(10):
            gold.append(nu.Sentence(["Leeds", "won"], ["B-ORG", "O"], doc=d))
            pred.append(["B-ORG", "O"] if (k + rng.randrange(10)) % 10 < right else ["B-LOC", "O"])
    return gold, pred


def test_bootstrap_of_identical_documents_has_no_width():
    gold = [nu.Sentence(["a", "b"], ["B-PER", "O"], doc=d) for d in range(5)]
    pred = [["B-PER", "B-LOC"] for _ in range(5)]  # each document: 1 gold, 2 predicted, 1 correct
    ci = nu.bootstrap_f1(gold, pred, n=200)
    assert ci["f1"] == pytest.approx(2 / 3) and ci["low"] == pytest.approx(2 / 3) and ci["high"] == pytest.approx(2 / 3)


def test_bootstrap_known_case_two_documents():
    """Document A all right (2 gold, 2 correct), document B all wrong (2 gold, 2 wrong): resamples AA, AB, BA, BB give
    F1 1, 0.5, 0.5, 0, so the 95% interval spans 0 to 1 and the observed F1 is 0.5."""
    gold = [nu.Sentence(["x", "y"], ["B-PER", "B-LOC"], doc=d) for d in (0, 1)]
    pred = [["B-PER", "B-LOC"], ["B-ORG", "B-ORG"]]
    ci = nu.bootstrap_f1(gold, pred, n=4000)
    assert ci == {"f1": 0.5, "low": 0.0, "high": 1.0}


def test_bootstrap_is_deterministic_under_a_seed_and_varies_with_it():
    gold, pred = _docs(30, 8)
    assert nu.bootstrap_f1(gold, pred, seed=3) == nu.bootstrap_f1(gold, pred, seed=3)
    assert nu.bootstrap_f1(gold, pred, seed=3) != nu.bootstrap_f1(gold, pred, seed=4)
    assert nu.paired_bootstrap(gold, pred, pred, seed=1) == nu.paired_bootstrap(gold, pred, pred, seed=1)


def test_the_interval_narrows_as_the_documents_grow():
    widths = []
    for n_docs in (10, 40, 160):
        gold, pred = _docs(n_docs, 8)
        ci = nu.bootstrap_f1(gold, pred)
        assert ci["low"] <= ci["f1"] <= ci["high"]
        widths.append(ci["high"] - ci["low"])
    assert widths[0] > widths[1] > widths[2] > 0


def test_resampling_is_by_document_not_by_sentence():
    """The same sentences grouped in 2 documents vary more than when each is its own document."""
    gold, pred = _docs(20, 5)
    by_sentence = [nu.Sentence(s.words, s.tags, doc=i) for i, s in enumerate(gold)]
    grouped = [nu.Sentence(s.words, s.tags, doc=i // 100) for i, s in enumerate(gold)]
    pred_grouped = [["B-ORG", "O"] if i < 100 else ["B-LOC", "O"] for i in range(200)]
    wide, narrow = nu.bootstrap_f1(grouped, pred_grouped), nu.bootstrap_f1(by_sentence, pred_grouped)
    assert wide["high"] - wide["low"] > 2 * (narrow["high"] - narrow["low"])


def test_paired_bootstrap_sees_a_consistent_difference_and_not_a_tie():
    gold, good = _docs(40, 9)
    _, bad = _docs(40, 6, seed=1)
    test = nu.paired_bootstrap(gold, good, bad)
    assert test["difference"] > 0 and test["low"] > 0 and test["a_better"] > 0.99
    same = nu.paired_bootstrap(gold, good, good)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0, "a_better": 0.5}  # every resample a tie
    one_doc = [nu.Sentence(s.words, s.tags, doc=0) for s in gold]
    with pytest.raises(ValueError, match="one document: resampling documents needs at least 2"):
        nu.bootstrap_f1(one_doc, good)
    with pytest.raises(ValueError, match="gold sentences"):
        nu.paired_bootstrap(gold, good, bad[:-1])


def test_saved_predictions_and_paired_table(tmp_path, monkeypatch):
    gold, good = _docs(20, 9)
    _, bad = _docs(20, 5, seed=2)
    (tmp_path / "final6-repeat-s42.json").write_text(json.dumps({"testb_pred": [" ".join(t) for t in bad]}))
    (tmp_path / "mpnet-ctx32-s42.json").write_text(json.dumps({"testa": 0.9}))  # kept no predictions
    assert nu.saved_predictions("final6-repeat-s42", tmp_path) == bad
    assert nu.saved_predictions("mpnet-ctx32-s42", tmp_path) is None and nu.saved_predictions("x", tmp_path) is None
    table = nu.paired_table(gold, good, tmp_path)
    assert table.index.tolist() == [label + ", hardware not recorded" for label, name in nu.PAIRED
                                    if name == "final6-repeat-s42"]  # its JSON names no device
    assert "trained on" not in table.columns  # where it trained is in its label, not a column of CPU names
    row = table.iloc[0]
    assert row["difference"] == pytest.approx(row["this run F1"] - row["its F1"], abs=0.01) and row["difference"] > 0
    assert row["95% interval"].startswith("+") and row["this run wins"] == "100% of resamples"
    n_gold, predicted, correct, _, _ = nu.span_counts([g.tags for g in gold], bad)
    assert row["its spans: correct / predicted"] == f"{sum(correct.values()):,} / {sum(predicted.values()):,}"
    c, p = (int(x.replace(",", "")) for x in row["its spans: correct / predicted"].split(" / "))
    assert round(100 * 2 * c / (sum(n_gold.values()) + p), 2) == round(row["its F1"], 2)  # its F1, from the counts
    assert len(nu.paired_table(gold[:50], good[:50], tmp_path)) == 1  # a capped test set compares its first sentences
    assert nu.paired_table(gold, bad, tmp_path).empty  # the stored run is this very run: nothing to compare
    monkeypatch.setattr(nu, "environment_info", lambda *args: {"device": "CPU: AMD EPYC, 2 cores"})
    for device, said in (("CPU: Intel Xeon, 2 cores", ", trained on another CPU"), ("CPU: AMD EPYC, 4 cores", ""),
                         ("NVIDIA T4", ", trained on other hardware"), ("", ", hardware not recorded")):
        (tmp_path / "final6-repeat-s42.json").write_text(json.dumps({"testb_pred": [" ".join(t) for t in bad],
                                                                     "device": device}))
        assert nu.paired_table(gold, good, tmp_path).index[0] == nu.PAIRED[1][0] + said
    assert nu._elsewhere("CPU: AMD EPYC, 2 cores", "NVIDIA H100") == ", trained on other hardware"


TESTB = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\n"
CORRECTED = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP B-LOC\n"


def test_conllpp_is_read_checked_and_scored(tmp_path, monkeypatch):
    monkeypatch.delenv("CONLLPP", raising=False)
    monkeypatch.chdir(tmp_path)
    testb = nu.as_iob2({"testb": nu.parse_conll(TESTB.encode())})["testb"]
    (tmp_path / "fixed.txt").write_text(CORRECTED)
    corrected = nu.read_conllpp(testb, tmp_path / "fixed.txt")
    assert [s.tags for s in corrected] == [["B-ORG", "O"], ["B-PER", "B-LOC"]]
    table = nu.conllpp_table(testb, [s.tags for s in testb], corrected)
    assert table.loc["this run"].tolist() == [100.0, 40.0, -60.0]  # 3 gold spans now, 1 of 2 predicted right
    assert table.loc["ELMo (Peters et al., 2018), re-run by Wang, Z. et al. (2019), mean of 5"].tolist() == [92.28, 93.42, 1.14]
    assert len(nu.read_conllpp(testb[:1], tmp_path / "fixed.txt")) == 1
    (tmp_path / "other.txt").write_text(CORRECTED.replace("Blackburn", "Smith"))
    with pytest.raises(nu.ConllFormatError, match=r"other.txt:6: sentence 1 has other words"):
        nu.read_conllpp(testb, tmp_path / "other.txt")
    monkeypatch.setenv("CONLLPP", str(tmp_path / "fixed.txt"))
    assert nu.find_conllpp() == tmp_path / "fixed.txt"
    assert nu.read_conllpp(testb, tmp_path / "absent.txt") is None  # a file named but absent: None, no other copy


def test_conllpp_published_pairs_are_the_crossweigh_readme_table():
    """The seven (original, corrected) pairs equal the table that ../shared/conllpp/README.md copies from CrossWeigh."""
    import re
    from pathlib import Path

    readme = Path(nu.__file__).resolve().parent.parent / "shared" / "conllpp" / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} is absent (the reference copy sits beside the project)")
    rows = re.findall(r"^\| ([^|]+) \| ([\d.]+) ± [\d.]+ \| ([\d.]+) ± [\d.]+ \|$", readme.read_text(), re.M)
    assert [(a, b) for _, a, b in nu.CONLLPP_PUBLISHED] == [(float(a), float(b)) for _, a, b in rows]
    assert len(rows) == 7

    def tagger(name: str) -> str:
        return name.split(" (")[0].replace("-", " ").lower()  # "Pooled-Flair" and "Pooled Flair (Akbik ...)" agree
    assert [tagger(name) for name, _, _ in nu.CONLLPP_PUBLISHED] == [tagger(name) for name, _, _ in rows]


def test_conllpp_change_is_the_difference_of_the_printed_figures(monkeypatch):
    sentences = [nu.Sentence(["a"], ["B-PER"], doc=0)]
    f1 = iter([0.91914, 0.93126])  # unrounded: 1.212; as printed: 93.13 - 91.91 = 1.22
    monkeypatch.setattr(nu, "span_scores", lambda gold, pred: {"overall": {"f1": next(f1)}})
    row = nu.conllpp_table(sentences, [["B-PER"]], sentences).loc["this run"]
    assert row.tolist() == [91.91, 93.13, 1.22]
