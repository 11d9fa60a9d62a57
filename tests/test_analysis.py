"""Error analysis and the notebook's tables."""
from __future__ import annotations

import ner_utils as nu
from conftest import ROOT


def _s(words, tags):
    return nu.Sentence(words.split(), tags)


def test_span_errors_classifies_each_kind():
    sentences = [_s("a b c d e f g", ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "O"])]
    pred = [["B-PER", "O", "O", "B-ORG", "O", "O", "B-MISC"]]
    errors = nu.span_errors(sentences, pred)
    got = sorted(zip(errors["kind"], errors["gold"], errors["pred"]))
    assert got == [("missed", "f", ""), ("spurious", "", "g"), ("wrong boundary", "a b", "a"),
                   ("wrong type", "d", "d")]
    assert set(errors.columns) == {"kind", "gold_type", "pred_type", "gold", "pred", "sentence"}


def test_no_errors_gives_an_empty_table():
    sentences = [_s("a b", ["B-PER", "O"])]
    assert len(nu.span_errors(sentences, [["B-PER", "O"]])) == 0


def test_type_confusion_counts_pairs_missed_and_spurious():
    sentences = [_s("a b c d", ["B-PER", "O", "B-LOC", "O"]), _s("e f", ["B-ORG", "O"])]
    pred = [["B-PER", "O", "B-ORG", "B-MISC"], ["O", "O"]]
    table = nu.type_confusion(sentences, pred)
    assert table.loc["PER", "PER"] == 1 and table.loc["LOC", "ORG"] == 1
    assert table.loc["ORG", "-"] == 1 and table.loc["-", "MISC"] == 1
    assert int(table.values.sum()) == 4


def test_mark_entities_and_examples():
    assert nu.mark_entities(["Angela", "Merkel", "visited", "Berlin"], ["B-PER", "I-PER", "O", "B-LOC"]) == \
        "[Angela Merkel]PER visited [Berlin]LOC"
    sentences = [_s("a b", ["B-PER", "O"]), _s("c d", ["O", "O"]), _s("e", ["B-LOC"])]
    pred = [["B-PER", "O"], ["B-ORG", "O"], ["O"]]
    table = nu.error_examples(sentences, pred, n=10)
    assert list(table.index) == [1, 2]
    assert table.loc[1, "predicted"] == "[c]ORG d"


def test_iob_example_shows_the_b_tag_conversion():
    raw = [_s("x y", ["I-PER", "O"]), _s("Italian Cup winners", ["I-MISC", "B-MISC", "O"])]
    table = nu.iob_example(raw, [nu.Sentence(s.words, nu.iob1_to_iob2(s.tags)) for s in raw])
    assert table["IOB2 (loaded)"].tolist() == ["B-MISC", "B-MISC", "O"]


def test_alignment_table_marks_ignored_pieces(tiny):
    _, tok = tiny
    table = nu.alignment_table(tok, _s("john qz", ["B-PER", "O"]), {l: i for i, l in enumerate(nu.LABELS)})
    assert table["piece"].tolist() == ["[CLS]", "john", "q", "##z", "[SEP]"]
    assert table["label_id"].tolist() == [-100, 1, 0, -100, -100]
    assert table["word_id"].tolist() == ["None", "0", "1", "1", "None"]


def test_summary_and_sota_tables():
    scores = nu.span_scores([["B-PER", "O"]], [["B-PER", "O"]])
    metrics = {"model": "m", "train_seconds": 120, "testa": scores, "testb": scores}
    table = nu.summary_table(metrics)
    assert table.loc["eng.testb", "F1"] == 100.0 and table.loc["eng.testa", "training time"] == "2.0 min"
    sota = nu.sota_table(0.9, "m", 22_000_000)
    assert sota["eng.testb F1"].is_monotonic_decreasing
    assert sota.loc[sota["work"] == "this run", "eng.testb F1"].item() == 90.0
    assert len(sota) == len(nu.SOTA) + 1


def test_plots_return_figures(tiny):
    import matplotlib
    matplotlib.use("Agg")
    scores = {"testa": nu.span_scores([["B-PER"]], [["B-PER"]]), "testb": nu.span_scores([["B-LOC"]], [["O"]])}
    assert nu.plot_f1_by_type(scores).axes
    sentences = [_s("a b", ["B-PER", "O"])]
    assert nu.plot_confusion(nu.type_confusion(sentences, [["B-LOC", "O"]])).axes
    result = nu.TrainResult(model="m", config={}, model_info={}, losses=[1.0 / (i + 1) for i in range(120)],
                            testa_f1_per_epoch=[0.5, 0.7], best_epoch=2, train_seconds=1, wall_seconds=1,
                            tokens_per_second=1, peak_memory_mb=1, testa=scores["testa"], testb=scores["testb"])
    assert len(nu.plot_training(result).axes) == 2
    assert "PER" in nu.scores_table(scores).index.get_level_values("type")


def _random_predictions(sentences, seed=0, rate=0.3):
    import random
    rng = random.Random(seed)
    pred = []
    for s in sentences:
        pred.append([rng.choice(nu.LABELS) if rng.random() < rate else t for t in s.tags])
    return pred


def test_type_confusion_counts_what_conlleval_and_span_errors_count():
    """Diagonal = conlleval 'correct' per type; off-diagonal = 'wrong type'; a gold row sums to its gold count."""
    import random
    rng = random.Random(3)
    kinds = ["PER", "ORG", "LOC", "MISC"]
    sentences = []
    for _ in range(200):
        tags = []
        for _ in range(rng.randint(1, 12)):
            tags.append("O" if rng.random() < 0.5 else f"{'B' if not tags or tags[-1] == 'O' or rng.random() < 0.5 else 'I'}-"
                        f"{rng.choice(kinds) if not tags or tags[-1] == 'O' else tags[-1][2:]}")
        sentences.append(nu.Sentence([f"w{i}" for i in range(len(tags))], tags))
    pred = _random_predictions(sentences)
    table = nu.type_confusion(sentences, pred)
    scores = nu.span_scores([s.tags for s in sentences], pred)
    errors = nu.span_errors(sentences, pred)
    for kind in kinds:
        assert table.loc[kind, kind] == scores[kind]["correct"]
        assert table.loc[kind].sum() == scores[kind]["gold"]
        wrong_type = errors[(errors.kind == "wrong type") & (errors.gold_type == kind)]
        assert table.loc[kind, [k for k in kinds if k != kind]].sum() == len(wrong_type)
        assert table.loc[kind, "boundary"] == len(errors[(errors.kind == "wrong boundary") & (errors.gold_type == kind)])
    assert table.loc["-"].sum() == (errors.kind == "spurious").sum()


def test_entity_html_colours_each_span_and_escapes_text():
    html = nu.entity_html(["<b>Angela", "Merkel", "visited", "Berlin", "&"], ["B-PER", "I-PER", "O", "B-LOC", "O"])
    assert html.count("<mark") == 2 and "&lt;b&gt;Angela Merkel" in html and html.endswith("&amp;")
    assert nu.ENTITY_COLOURS["PER"] in html and nu.ENTITY_COLOURS["LOC"] in html and ">PER</span>" in html
    assert nu.entity_html(["a"], ["O"]) == "a"
    sentences = [_s("a b", ["B-PER", "O"]), _s("c d", ["O", "O"])]
    table = nu.error_examples_html(sentences, [["B-PER", "O"], ["B-ORG", "O"]])
    assert table.count("<tr>") == 2 and "#1" in table and ">ORG</span>" in table


def test_sota_table_marks_train_plus_dev_rows_and_parameters_to_one_decimal():
    sota = nu.sota_table(0.9, "m", 22_566_000)
    assert sota.loc[sota["work"] == "Akbik et al. (2018)", "trained on"].item() == "train+dev"
    assert sota.loc[sota["work"] == "this run", "model"].item() == "m, 22.6M parameters"


def test_benchmark_runs_reads_the_accuracy_results(tmp_path):
    import json
    for seed, (a, b) in enumerate([(0.94, 0.896), (0.939, 0.8972)]):
        (tmp_path / f"final6-s{seed}.json").write_text(json.dumps({"config": {"seed": seed}, "testa": a, "testb": b}))
    (tmp_path / "other.json").write_text("{}")
    runs = nu.benchmark_runs(tmp_path, "final6-s")
    assert runs["run"].tolist() == ["final6-s0", "final6-s1"] and runs["testb F1"].tolist() == [89.6, 89.72]
    assert len(nu.benchmark_runs(tmp_path / "absent")) == 0


def test_confusion_pairs_add_both_directions():
    sentences = [_s("a b c", ["B-LOC", "B-ORG", "B-PER"])]
    table = nu.type_confusion(sentences, [["B-ORG", "B-LOC", "B-ORG"]])
    pairs = nu.confusion_pairs(table)
    assert pairs["LOC/ORG"] == 2 and pairs["ORG/PER"] == 1 and pairs.index[0] == "LOC/ORG"
    assert int(pairs.sum()) == 3


def test_a_wrong_boundary_shows_the_longest_overlap_then_the_leftmost_whatever_the_hash_seed():
    """Review item 13: overlap[0] from a set changed with PYTHONHASHSEED."""
    import subprocess
    import sys
    words = "a b c d e f g h".split()
    gold = nu.Sentence(words, ["O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O"])  # b..f
    cases = [(["B-LOC", "I-LOC", "O", "B-PER", "I-PER", "I-PER", "O", "O"], "d e f", "PER"),  # overlaps 1 and 3
             (["O", "B-LOC", "I-LOC", "O", "B-PER", "I-PER", "O", "O"], "b c", "LOC"),  # 2 and 2: the leftmost
             (["O", "O", "B-MISC", "O", "B-PER", "O", "B-LOC", "I-LOC"], "c", "MISC")]  # 1, 1 and 1
    for pred, text, kind in cases:
        row = nu.span_errors([gold], [pred]).iloc[0]
        assert (row["kind"], row["pred"], row["pred_type"]) == ("wrong boundary", text, kind)
    code = ("import sys; sys.path.insert(0, '.'); import ner_utils as nu; s = nu.Sentence(list('abcdefgh'), "
            "['O','B-ORG','I-ORG','I-ORG','I-ORG','I-ORG','O','O']); "
            "print(nu.span_errors([s], [['O','B-LOC','I-LOC','O','B-PER','I-PER','O','O']]).iloc[0]['pred'])")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                           env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout for seed in range(6)}
    assert seen == {"b c\n"}


def test_results_table_counts_this_run_as_a_seed_only_at_the_rows_precision(tmp_path):
    import json
    for seed, (a, b) in enumerate([(0.95, 0.91), (0.94, 0.92)]):
        (tmp_path / f"r-s{seed}.json").write_text(json.dumps(
            {"config": {"seed": seed}, "testa": a, "testb": b, "testa_argmax": a - 0.01, "testb_argmax": b - 0.01,
             "precision": "no", "train_seconds": 600}))
    run = {"config": {"seed": 42}, "testa_f1": 0.96, "testb_f1": 0.93, "precision": "no", "train_seconds": 1200}
    rows = [("model", "r", ""), ("argmax", "r", "argmax"), ("absent", "x", "")]
    table = nu.results_table(rows, tmp_path, this_run=("r", run))
    assert table.index.tolist() == ["model", "argmax"]  # a row not run is left out
    assert table.loc["model", "seeds"] == 3 and table.loc["model", "eng.testb F1"] == "92.00 ± 1.00"
    assert table.loc["model", "training (min)"] == 13.3
    assert table.loc["argmax", "seeds"] == 2 and table.loc["argmax", "eng.testa F1"] == "93.50 ± 0.71"
    fp16 = nu.results_table(rows, tmp_path, this_run=("r", run | {"precision": "fp16"}))  # a GPU run: not the same
    assert fp16.loc["model", "seeds"] == 2 and fp16.loc["model", "training (min)"] == 10.0
    again = nu.results_table(rows, tmp_path, this_run=("r", run | {"config": {"seed": 1}}))  # its seed has a file
    assert again.loc["model", "seeds"] == 2 and again.loc["model", "eng.testb F1"] == "91.50 ± 0.71"
