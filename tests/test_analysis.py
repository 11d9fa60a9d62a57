"""Error analysis and the notebook's tables."""
from __future__ import annotations

import pytest

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


def test_sentence_tables_have_one_row_per_word_and_the_example_has_a_split_word(tiny):
    _, tok = tiny
    plain = _s("john met angela in berlin", ["B-PER", "O", "B-PER", "O", "B-LOC"])  # every word is in the vocabulary
    assert nu.sentence_table(plain).values.tolist() == [[w, t] for w, t in zip(plain.words, plain.tags)]
    split = _s("john met qz in berlin city", ["B-PER", "O", "B-PER", "O", "B-LOC", "O"])
    short = _s("john qz", ["B-PER", "O"])  # a split word, but under five words
    no_entity = _s("met qz in the city", ["O"] * 5)
    assert any(len(tok.tokenize(w)) > 1 for w in split.words) and not any(len(tok.tokenize(w)) > 1 for w in plain.words)
    assert nu.sentence_with_split_word(tok, [short, no_entity, plain, split]) is split
    assert nu.sentence_with_split_word(tok, [short, plain]) is plain  # no split word anywhere: the first with an entity
    assert nu.sentence_with_split_word(tok, [short]) is short
    with pytest.raises(ValueError, match="no sentences"):
        nu.sentence_with_split_word(tok, [])


def test_summary_and_sota_tables():
    scores = nu.span_scores([["B-PER", "O"]], [["B-PER", "O"]])
    metrics = {"model": "m", "train_seconds": 120, "testa": scores, "testb": scores}
    table = nu.summary_table(metrics)
    assert table.loc["eng.testb", "F1"] == 100.0 and list(table.columns) == ["precision", "recall", "F1"]
    sota = nu.sota_table({"f1": 0.9, "low": 0.89, "high": 0.91}, "m", 22_000_000)
    assert len(sota) == len(nu.SOTA) + 1 and sota.index.name is None
    assert sota.iloc[0]["work"] == "Devlin et al. (2019)"  # the BERT paper first, the groups in the report's order
    assert list(dict.fromkeys(sota.index)) == ["the BERT paper", "bert-base-cased reproductions", nu.TOP, "earlier",
                                               "this notebook"]
    ours = sota.loc["this notebook"]
    assert (ours["eng.testb F1"], ours["system"]) == (90.0, "m, 22M, not bert-base-cased")
    assert "89.00-91.00" in ours["how obtained"]
    assert nu.sota_table({"f1": 0.9, "low": 0.89, "high": 0.91}, nu.BASE_MODEL).loc["this notebook", "system"] == \
        "all-mpnet-base-v2, not BERT"
    assert nu.sota_table({"f1": 0.9, "low": 0.89, "high": 0.91}, "bert-base-cased").loc["this notebook", "system"] == \
        "bert-base-cased"


def test_plots_return_figures(tiny):
    import matplotlib
    matplotlib.use("Agg")
    scores = {"testa": nu.span_scores([["B-PER"]], [["B-PER"]]), "testb": nu.span_scores([["B-LOC"]], [["O"]])}
    ax = nu.plot_f1_by_type(scores).axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [f"eng.{split}" for split in scores]
    assert [label.get_text() for label in ax.get_yticklabels()][0] == "overall"  # overall first, then each type
    assert sorted(float(t.get_text()) for t in ax.texts) == sorted(round(100 * by_type[k]["f1"], 1) for by_type in scores.values()
                                                                    for k in by_type)  # every F1 labelled
    sentences = [_s("a b", ["B-PER", "O"])]
    assert nu.plot_confusion(nu.type_confusion(sentences, [["B-LOC", "O"]])).axes
    result = nu.TrainResult(model="m", config={}, model_info={}, losses=[1.0 / (i + 1) for i in range(120)],
                            testa_f1_per_epoch=[0.5, 0.7], best_epoch=2, train_seconds=1, wall_seconds=1,
                            tokens_per_second=1, peak_memory_mb=1, testa=scores["testa"], testb=scores["testb"])
    assert len(nu.plot_training(result).axes) == 2
    table = nu.scores_table(scores)
    assert table.index.get_level_values("type")[-1] == "overall" and list(table.columns[:3]) == ["gold", "predicted", "correct"]
    assert (table.xs("overall", level="type")["correct"] == [scores[s]["overall"]["correct"] for s in scores]).all()


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
    assert table.count("<tr>") == 2 and ">1</td>" in table and ">ORG</span>" in table


def test_every_published_row_says_how_its_figure_was_obtained_and_its_conditions():
    sota = nu.sota_table({"f1": 0.9, "low": 0.89, "high": 0.91}, "m")
    assert sota["how obtained"].str.len().min() > 0 and set(sota["context"]) <= {"document", "sentence", "not stated"}
    flair = sota[sota["work"] == "Akbik et al. (2018)"].iloc[0]
    assert flair["trained on"].startswith("train+dev") and flair["how obtained"] == "mean of 5 runs"
    assert "weighted" in sota[sota["work"] == "kamalkraj (2019)"].iloc[0]["how obtained"]
    assert sota[sota["system"] == "BERT-base, 110M"].iloc[0]["how obtained"] == "mean of 5 restarts; eng.testa 96.4"
    assert all(row.testa is None for row in nu.SOTA if row.group != "the BERT paper")


def test_sota_answer_leads_with_the_recipes_mean_and_says_where_each_figure_lies():
    testa = {"f1": 0.957, "low": 0.951, "high": 0.962}
    mean = {"runs": 3, "precision": "in 32-bit floats", "testa": 95.73, "testb": 91.534}
    wide = nu.sota_answer(testa, {"f1": 0.9156, "low": 0.905, "high": 0.925}, mean, nu.BASE_MODEL).split("\n")
    assert wide[0] == ("**In short** (span F1 on eng.testb): the 3 runs of this recipe in 32-bit floats average "
                       "**91.53**; this run scores 91.56 (95% interval 90.50-92.50, from resampling the test set). This "
                       "run (all-mpnet-base-v2, not BERT) is level with BERT-base in the BERT paper, level with the "
                       "independent reproductions and below the large document-level systems (below or above only where "
                       "every figure of the group lies outside its 95% interval). No published system's predictions are "
                       "available, so no gap is tested on the same resamples.")
    assert wide[2] == ("- **The BERT paper** reports 92.40 for BERT-base (mean of 5 restarts, with document context). "
                       "The recipe's mean is 0.87 points below 92.40 (11% more errors).")  # inside: left to the seeds
    assert wide[3] == ("- **On eng.testa**, the development set that chose the epoch, the BERT paper reports 96.40. The "
                       "recipe's mean is 0.67 points below 96.40 (19% more errors). This run (95.70) is 0.70 points below "
                       "96.40 (19% more errors); 96.40 lies outside its 95% interval (95.10-96.20), so the gap is more "
                       "than the development set's sampling noise.")  # this run's own gap, where the figure is outside
    assert wide[4] == ("- **3 independent reproductions of BERT-base**, none reporting document context, report 91.20 "
                       "(mean of 10 runs), 91.37 (best run) and 91.87 (how obtained not stated). The recipe's mean is "
                       "0.33 points above 91.20, 0.16 above 91.37, 0.34 below 91.87. kamalkraj's 91.35 (one run's "
                       "support-weighted mean of the per-type F1) is not a micro-averaged span F1 and is left out.")
    assert wide[5] == ("- **Large document-level systems** report ACE 94.60 (first on the Papers with Code leaderboard, "
                       "entries to 2024), LUKE-large 94.30 and FLERT 94.09; two of them are 4-5 times BERT-base's size. "
                       "The recipe's mean is 2.56-3.07 points below them (43-57% more errors). This run (91.56) is "
                       "2.53-3.04 points below them (43-56% more errors); they lie outside its 95% interval "
                       "(90.50-92.50), so the gaps are more than the test set's sampling noise.")
    assert len(wide) == 6
    asked = nu.sota_answer(testa, {"f1": 0.9156, "low": 0.905, "high": 0.925}, mean, "bert-base-cased")
    assert "This run is level with" in asked and "not b" not in asked.lower()  # the model asked for: nothing to say
    mini = nu.sota_answer(testa, {"f1": 0.9156, "low": 0.905, "high": 0.925}, mean, nu.EMBEDDED_MODEL)
    assert "This run (all-MiniLM-L6-v2, not bert-base-cased) is level with" in mini
    narrow = nu.sota_answer(testa, {"f1": 0.9156, "low": 0.913, "high": 0.919})
    assert "recipe's mean" not in narrow and " average " not in narrow and "this run scores **91.56**" in narrow
    assert "This run is below BERT-base in the BERT paper, level with the independent" in narrow
    assert ("context). This run (91.56) is 0.84 points below 92.40 (11% more errors); 92.40 lies outside its 95% "
            "interval (91.30-91.90), so the gap is more than the test set's sampling noise.") in narrow  # said once
    assert ("This run is 0.19 points above 91.37, 0.31 below 91.87. This run (91.56) is 0.36 points above 91.20 (4% fewer "
            "errors); 91.20 lies outside its 95% interval") in narrow  # 91.20 < 91.30: only it is named as outside
    assert "level with the independent reproductions" in narrow  # not every figure of the group lies outside
    top_inside = nu.sota_answer(testa, {"f1": 0.9356, "low": 0.92, "high": 0.9425})
    assert top_inside.endswith("This run is 0.53 points below 94.09 (9% more errors). This run (93.56) is 0.74-1.04 "
                               "points below 94.30 and 94.60 (13-19% more errors); 94.30 and 94.60 lie outside its 95% "
                               "interval (92.00-94.25), so the gaps are more than the test set's sampling noise.")  # 94.09 inside
    two_inside = nu.sota_answer(testa, {"f1": 0.935, "low": 0.92, "high": 0.944})
    assert ("This run is 0.59-0.80 points below 94.09 and 94.30 (10-14% more errors). This run (93.50) is 1.10 points "
            "below 94.60 (20% more errors)") in two_inside
    above = nu.sota_answer(testa, {"f1": 0.9450, "low": 0.935, "high": 0.955})
    assert above.endswith("This run is 0.41 points above 94.09, 0.20 above 94.30, 0.10 below 94.60.")  # all inside
    assert "level with the large document-level systems" in above
    assert nu._distance(91.37, [91.2, 91.37, 91.87]) == "0.17 points above 91.20, level with 91.37, 0.50 below 91.87"
    assert nu._distance(91.2, [91.2, 91.37]) == "level with 91.20, 0.17 points below 91.37"  # never "0.00 points below"
    assert nu._distance(91.37, [91.2, 91.37]) == "0.17 points above 91.20, level with 91.37"  # lowest figure first
    assert nu._distance(91.5, [91.8, 91.2, 91.2]) == "0.30 points above 91.20, 0.30 below 91.80"  # sorted, once
    assert nu._distance(91.55, [91.2, 91.37, 91.87]) == "0.35 points above 91.20, 0.18 above 91.37, 0.32 below 91.87"
    assert nu._distance(91.0, [92.4]) == "1.40 points below it"
    assert nu._distance(91.2049, [91.1951]) == "level with it"  # compared as printed, as _gap does
    assert nu._distance(91.6, [91.2, 91.2001]) == "0.40 points above it"  # one figure as printed
    assert nu._distance(91.2, [91.2]) == "level with it" and nu._distance(91.2, [91.2, 91.2]) == "level with it"
    assert "This run is 0.48-1.15 points above them (6-13% fewer errors)." in nu.sota_answer(
        testa, {"f1": 0.9235, "low": 0.91, "high": 0.93})
    assert "errors)" not in nu._gap_to(91.5, [91.2, 91.8], [91.2, 91.8])  # both sides: no one share of errors


def test_verdict_says_below_or_above_only_where_every_run_or_the_interval_does():
    interval = {"f1": 0.915, "low": 0.905, "high": 0.925}
    assert nu._verdict([92.4], [91.5, 91.9], interval) == "below"
    assert nu._verdict([92.4], [91.5, 92.5], interval) == "level with"  # one run above it
    assert nu._verdict([91.2, 91.37], [91.5, 91.9], interval) == "above"
    assert nu._verdict([91.2, 91.87], [91.5, 91.9], interval) == "level with"
    assert nu._verdict([92.4], [], interval) == "level with"  # inside the interval, no runs
    assert nu._verdict([94.6, 94.09], [], interval) == "below" and nu._verdict([90.0], [], interval) == "above"
    assert nu._verdict([91.9], [91.9], interval) == "level with"  # equal as printed


def test_sota_gaps_give_every_figure_against_this_run_and_the_recipes_mean():
    testa, testb = {"f1": 0.957, "low": 0.951, "high": 0.962}, {"f1": 0.9156, "low": 0.905, "high": 0.925}
    mean = {"runs": 3, "precision": "in 32-bit floats", "testa": 95.73, "testb": 91.534}
    gaps = nu.sota_gaps(testa, testb, mean)
    assert len(gaps) == 2 + sum(row.group in ("the BERT paper", "bert-base-cased reproductions", nu.TOP)
                                and row.span_f1 for row in nu.SOTA)
    assert "kamalkraj (2019)" not in set(gaps["work"])  # a support-weighted average, not a span F1
    dev = gaps[gaps["set"] == "eng.testa"].iloc[0]
    assert dev.name == "BERT-base, 110M" and dev["published F1"] == 96.4 and dev["mean of the 3 runs minus it"] == "-0.67"
    assert list(gaps.columns) == ["work", "set", "published F1", "mean of the 3 runs minus it"]  # no runs: no count
    allanj = gaps[gaps["work"] == "allanj (GitHub)"].iloc[0]
    assert allanj["mean of the 3 runs minus it"] == "-0.34"
    close = nu.sota_gaps(testa, {"f1": 0.9183, "low": 0.905, "high": 0.925})
    assert close[close["work"] == "allanj (GitHub)"].iloc[0]["this run minus it"] == "-0.04"
    assert not any(column.startswith("mean of") for column in close.columns)  # no runs to average: this run's gap
    only_b = nu.sota_gaps(testa, {"f1": 0.9183, "low": 0.905, "high": 0.925}, mean | {"every_testb": [91.5, 91.6]})
    assert list(only_b.columns)[-2:] == ["mean of the 3 runs minus it", "runs of the recipe above it"]  # grouped


def test_inside_reads_the_interval_as_printed():
    assert nu._inside({"low": 0.9, "high": 0.92}, 91.0) and nu._inside({"low": 0.9, "high": 0.92}, 92.0)
    assert not nu._inside({"low": 0.9, "high": 0.92}, 92.5) and not nu._inside({"low": 0.9, "high": 0.92}, 89.0)
    assert nu._inside({"low": 0.9105, "high": 0.923996}, 92.4)  # 92.40 as printed: inside
    assert not nu._inside({"low": 0.9105, "high": 0.923949}, 92.4)  # 92.39 as printed: outside


def test_a_gap_is_given_in_points_and_in_errors():
    assert nu._gap(91.57, 92.4) == "0.83 points below 92.40 (11% more errors)"
    assert nu._gap(92.4, 91.57) == "0.83 points above 91.57 (10% fewer errors)"  # 7.60 errors against 8.43
    assert nu._gap(92.398, 92.4) == nu._gap(92.4, 92.4) == "equal to 92.40"  # equal as printed
    assert nu._gap(99, 100) == "1.00 points below 100.00"


def test_conclusion_says_the_result_where_it_stands_and_what_differs_from_berts_set_up():
    metrics = {"model": nu.BASE_MODEL, "parameters": 108_900_000, "fallback": True, "asked": "bert-base-cased",
               "testa_f1": 0.9572, "testb_f1": 0.9156}
    testa, testb = {"f1": 0.9572, "low": 0.951, "high": 0.962}, {"f1": 0.9156, "low": 0.91, "high": 0.92}
    mean = {"runs": 3, "precision": "in 32-bit floats", "testa": 95.73, "testb": 91.534}
    lines = nu.conclusion(metrics, testa, testb, mean).split("\n")
    assert lines == [
        "- **Result.** all-mpnet-base-v2 (108.9M parameters, a stand-in for bert-base-cased, not BERT) reaches **95.72** "
        "span F1 on eng.testa and **91.56** on eng.testb; the 3 runs of its recipe in 32-bit floats average **91.53** on "
        "eng.testb.",
        "- **Against the state of the art** (section 10, eng.testb):",
        "  - BERT-base in the BERT paper (92.40): **below**; this run is 0.84 points below 92.40 (11% more errors); "
        "92.40 lies outside this run's 95% interval.",
        "  - The 3 independent reproductions (91.20-91.87): **level with**; this run is 0.36 points above 91.20, 0.19 "
        "above 91.37, 0.31 below 91.87.",  # all inside the interval: nothing said of it
        "  - Large document-level systems (94.09-94.60): **below**; this run is 2.53-3.04 points below them; the "
        "figures all lie outside this run's 95% interval.",
        "- **What separates this run from BERT-base's set-up:** the encoder (all-mpnet-base-v2, not bert-base-cased) "
        "and no document context; sections 7 and 10 say what is measured of each."]
    assert "stand-in" not in nu.conclusion(metrics | {"fallback": False}, testa, testb)
    assert "average" not in nu.conclusion(metrics, testa, testb)  # no group of runs: no mean
    assert ("this run is 0.36 points above 91.20, 0.19 above 91.37, 0.31 below 91.87; 91.20 lies outside this run's 95% "
            "interval." in nu.conclusion(metrics, testa, testb | {"low": 0.9125}, mean))  # 91.20 outside
    bert = metrics | {"model": "bert-base-cased", "fallback": False}
    assert nu.conclusion(bert, testa, testb).endswith("set-up:** no document context; sections 7 and 10 say what is "
                                                      "measured of each.")
    assert "set-up" not in nu.conclusion(bert | {"config": {"context": True}}, testa, testb)  # nothing differs
    recipe = {"context": 0, "lr": 1e-4, "epochs": 4, "decode": "viterbi", "word_shapes": "on"}
    assert nu.conclusion(bert | {"config": recipe, "recipe": "base"}, testa, testb).endswith(
        "set-up:** no document context and the fine-tuning recipe (learning rate 1e-4, above the BERT paper's grid of "
        "2e-5 to 5e-5; 4 epochs, a number not tuned; BIO-constrained Viterbi decoding; a casing feature); sections 7 "
        "and 10 say what is measured of each.")
    cased = bert | {"cased": True, "recipe": "bert-base"}
    auto = {"context": 0, "lr": 5e-5, "epochs": 3, "decode": "viterbi", "word_shapes": "auto"}
    assert nu.conclusion(cased | {"config": auto}, testa, testb).endswith(
        "(3 epochs, a number not tuned; BIO-constrained Viterbi decoding); sections 7 and 10 say what is measured of "
        "each.")  # "auto" on a cased checkpoint: no casing feature
    assert "a casing feature" in nu.conclusion(cased | {"cased": False, "config": auto}, testa, testb)
    assert "casing" not in nu.conclusion(cased | {"config": auto | {"word_shapes": "off"}}, testa, testb)
    mini = {"context": 0, "lr": 1e-4, "epochs": 6, "decode": "argmax", "word_shapes": "off"}
    assert "(learning rate 1e-4, above the BERT paper's grid of 2e-5 to 5e-5; 6 epochs, outside the BERT paper's 2 to " \
           "4)" in nu.conclusion(cased | {"recipe": "embedded", "config": mini}, testa, testb)
    assert "1e-5, below the BERT paper's grid" in nu.conclusion(cased | {"config": auto | {"lr": 1e-5}}, testa, testb)
    assert "not tuned" not in nu.conclusion(cased | {"recipe": "embedded", "config": auto}, testa, testb)
    assert "(1 epoch, outside the BERT paper's 2 to 4" in nu.conclusion(bert | {"config": {"lr": 5e-5, "epochs": 1}},
                                                                        testa, testb)


def test_seed_summary_keeps_precisions_apart_and_the_mean_takes_the_largest_group():
    import pandas as pd

    seeds = pd.DataFrame({"run": ["stored", "stored", "stored", "this run"], "seed": [0, 1, 42, 42],
                          "mixed precision": ["none (32-bit floats)"] * 3 + ["bf16"],
                          "eng.testa F1": [95.69, 95.78, 95.72, 95.30], "eng.testb F1": [91.55, 91.54, 91.56, 91.91]})
    assert nu.seed_summary(seeds) == [
        "32-bit floats: 3 runs (seeds 0, 1, 42), eng.testb mean 91.55, std 0.01, min 91.54, max 91.56",
        "bf16 mixed precision: 1 run (seed 42, this run), eng.testb 91.91",
        "bf16 mixed precision minus 32-bit floats: +0.36 in mean eng.testb F1 (1 run against 3: one run cannot "
        "separate precision from seed)",  # 91.91 - 91.55
        "all 4 runs, in any precision: eng.testb from 91.54 to 91.91; with 3 runs or fewer per precision a std is rough, "
        "so section 10 compares every run with each figure",  # the spread across precisions, beside the thin 0.01, unpooled
        "this run's F1 among the 4 runs, in any precision: on eng.testa, the lowest; on eng.testb, the highest"]
    assert nu.seed_summary(seeds.iloc[[2, 3]].assign(**{"mixed precision": "bf16"})) == [
        "bf16 mixed precision: 2 runs (seeds 42, 42; this run is seed 42), eng.testb mean 91.73, std 0.25, min 91.56, "
        "max 91.91", "this run's F1 among the 2 runs, in any precision: on eng.testa, the lowest; on eng.testb, the highest"]
    middle = seeds.assign(**{"eng.testb F1": [91.55, 91.54, 91.56, 91.545]})
    assert nu.seed_summary(middle)[-1].endswith("on eng.testb, 2 above it, 1 below")
    assert nu.seed_summary(middle.assign(**{"eng.testb F1": [91.55, 91.54, 91.56, 91.5]}))[-1].endswith("on eng.testb, the lowest")
    assert "among" not in " ".join(nu.seed_summary(seeds.iloc[[3]]))  # this run alone: no rank
    assert "among" not in " ".join(nu.seed_summary(seeds.iloc[:3]))  # no run of this notebook: no rank
    many = pd.concat([seeds.iloc[:3]] * 2 + [seeds.iloc[[3]]] * 4, ignore_index=True)  # 6 and 4 runs
    assert "all 10 runs, in any precision: eng.testb from 91.54 to 91.91" in nu.seed_summary(many)
    assert "rough" not in " ".join(nu.seed_summary(many))  # enough runs per precision for a std
    assert not any(line.startswith("all ") for line in nu.seed_summary(seeds.iloc[:3]))  # one precision: its own line
    tied = seeds.assign(**{"eng.testb F1": [91.6, 91.5, 91.91, 91.91]})
    assert nu.seed_summary(tied)[-1].endswith("on eng.testb, 0 above it, 2 below, 1 equal")  # a tie is not "the highest"
    assert nu.seed_summary(seeds.iloc[[3]].assign(**{"eng.testb F1": float("nan")})) == []  # no F1 at all: nothing
    mean = nu.recipe_mean(seeds)
    assert mean["runs"] == 3 and mean["precision"] == "in 32-bit floats" and round(mean["testb"], 2) == 91.55
    assert round(mean["testa"], 2) == 95.73
    assert nu.recipe_mean(seeds.iloc[[0, 3]]) is None  # one run in each precision: nothing to average
    tie = pd.concat([seeds.iloc[[0, 1]], seeds.iloc[[3, 3]].assign(run=["this run", "stored"], seed=[42, 7])])
    assert nu.recipe_mean(tie)["precision"] == "in bf16 mixed precision"  # a tie: the group holding this run
    assert nu.seed_summary(seeds.iloc[:0]) == [] and nu.recipe_mean(seeds.iloc[:0]) is None
    missing = seeds.assign(**{"eng.testb F1": [91.55, float("nan"), 91.56, 91.91]})  # a run whose F1 is missing
    assert nu.seed_summary(missing)[0].startswith("32-bit floats: 2 runs (seeds 0, 42), eng.testb mean 91.56")
    assert nu.recipe_mean(missing)["runs"] == 2
    assert nu.recipe_mean(missing.assign(**{"eng.testb F1": [91.55, float("nan"), float("nan"), 91.91]})) is None


def test_every_public_name_exists():
    assert [name for name in nu.__all__ if not hasattr(nu, name)] == []


def test_group_findings_say_which_side_scores_higher_and_where_the_errors_gather():
    import pandas as pd

    groups = pd.DataFrame({"sentences": [10, 90, 30, 70], "gold entities": [20, 180, 50, 150],
                           "span errors": [8, 12, 2, 18], "F1": [80.0, 93.5, 96.0, 90.25]},
                          index=["all-caps", "not all-caps", "results line", "not results line"])
    assert nu.group_findings(groups) == [
        "all-caps: F1 80.00 against 93.50 for the rest, 13.50 points lower; it holds 40% of the span errors and 10% of "
        "the gold entities: errors gather there.",
        "results line: F1 96.00 against 90.25 for the rest, 5.75 points higher; it holds 10% of the span errors and 25% "
        "of the gold entities: errors do not gather there."]
    reordered = nu.group_findings(groups.sort_values("F1"))  # the rows in any order
    assert sorted(reordered) == sorted(nu.group_findings(groups))
    groups.loc["results line", ["sentences", "gold entities", "span errors", "F1"]] = [0, 0, 0, 0.0]
    groups.loc["all-caps", "F1"] = 93.5
    assert nu.group_findings(groups) == [
        "all-caps: F1 93.50 against 93.50 for the rest, the same; it holds 40% of the span errors and 10% of the gold "
        "entities: errors gather there.",
        "results line: no gold entity falls in this group, so there is nothing to compare."]


def test_the_summary_is_read_from_the_saved_run_and_shown_or_refreshed(tmp_path, monkeypatch):
    import IPython.display

    assert nu.read_metrics(tmp_path) is None
    scores = nu.span_scores([["B-PER", "O"]], [["B-PER", "O"]])
    metrics = {"model": "m", "testa_f1": 1.0, "testb_f1": 1.0, "testa": scores, "testb": scores,
               "config": {"seed": 0}}
    (tmp_path / "metrics.json").write_text(__import__("json").dumps(metrics))
    assert nu.read_metrics(tmp_path) == metrics
    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda item, display_id: calls.append(("show", display_id)))
    monkeypatch.setattr(IPython.display, "update_display", lambda item, display_id: calls.append(("update", display_id)))
    nu.show_summary(None)
    nu.show_summary(metrics, update=True)
    assert calls == [("show", "run-summary"), ("show", "results-summary"), ("update", "run-summary"),
                     ("update", "results-summary")]


def _write_rows(folder, name, runs, precision="no"):
    import json
    for seed, (a, b) in runs.items():
        (folder / f"{name}-s{seed}.json").write_text(json.dumps(
            {"config": {"seed": seed}, "testa": a, "testb": b, "testa_argmax": a - 0.01, "testb_argmax": b - 0.01,
             "precision": precision, "train_seconds": 600}))


def test_results_table_counts_this_run_as_a_seed_only_at_the_rows_precision(tmp_path):
    _write_rows(tmp_path, "r", {0: (0.95, 0.91), 1: (0.94, 0.92)})
    run = {"config": {"seed": 42}, "testa_f1": 0.96, "testb_f1": 0.93, "precision": "no", "train_seconds": 1200}
    rows = [("model", "r", ""), ("argmax", "r", "argmax"), ("absent", "x", "")]
    table = nu.results_table(rows, tmp_path, this_run=("r", run))
    assert table.index.tolist() == ["model", "argmax"] and table.index.name is None  # no row not run, no empty header
    assert table.loc["model", "seeds"] == 3 and table.loc["model", "eng.testb F1"] == "92.00 ± 1.00"
    assert table.loc["model", "mixed precision"] == "none (32-bit floats)"
    assert table.loc["argmax", "seeds"] == 2 and table.loc["argmax", "eng.testa F1"] == "93.50 ± 0.71"
    fp16 = nu.results_table(rows, tmp_path, this_run=("r", run | {"precision": "fp16"}))  # a GPU run: not the same
    assert fp16.loc["model", "seeds"] == 2
    again = nu.results_table(rows, tmp_path, this_run=("r", run | {"config": {"seed": 1}}))  # its seed has a file
    assert again.loc["model", "seeds"] == 2 and again.loc["model", "eng.testb F1"] == "91.50 ± 0.71"
    single = nu.results_table([("one", "r-s0", "")], tmp_path)
    assert single.loc["one", "eng.testb F1"] == "91.00"  # one seed is shown as itself, no ± and no range


def test_results_table_averages_the_f1s_as_the_seed_table_prints_them(tmp_path):
    _write_rows(tmp_path, "r", {0: (0.95, 0.915449), 1: (0.95, 0.915449), 2: (0.95, 0.916749)})  # 91.54, 91.54, 91.67
    table = nu.results_table([("model", "r", "")], tmp_path)
    assert table.loc["model", "eng.testb F1"] == "91.58 ± 0.08"  # unrounded, the mean would print 91.59


def test_precision_phrase_says_the_mixed_precision_in_words():
    assert nu.precision_phrase("no") == "in 32-bit floats"
    assert nu.precision_phrase("bf16") == "in bf16 mixed precision" and nu.precision_phrase("fp16") == "in fp16 mixed precision"
    assert nu.precision_phrase("fp8") == "in fp8"


def _metrics(recipe="base", precision="bf16", seed=42, **config):
    fields = {name: getattr(nu.RECIPES[recipe], name) for name in nu.RECIPE_FIELDS}
    return {"recipe": recipe, "precision": precision, "testa_f1": 0.96, "testb_f1": 0.92, "train_seconds": 60,
            "config": fields | {"seed": seed, "max_train_sentences": None, "max_eval_sentences": None} | config}


def test_follows_recipe_is_false_for_capped_or_changed_runs():
    assert nu.follows_recipe(_metrics())
    assert not nu.follows_recipe(_metrics(max_train_sentences=300))
    assert not nu.follows_recipe(_metrics(lr=3e-5)) and not nu.follows_recipe(_metrics(recipe="conservative") | {
        "recipe": "nonexistent"})


def test_ablation_and_seed_tables_place_this_run_by_recipe_and_precision(tmp_path):
    _write_rows(tmp_path, "mpnet-lr1e4", {0: (0.957, 0.9155), 42: (0.9572, 0.9156)})
    table = nu.ablation_table(_metrics(), tmp_path)
    bf16 = nu.ABLATION[7][0]
    assert table.loc[bf16, "seeds"] == 1 and table.loc[bf16, "eng.testb F1"] == "92.00"
    assert table.index.name is None and list(table.columns[-2:]) == ["compared with", "what else changed"]
    assert list(table.columns[:3]) == ["seeds", "eng.testa F1", "eng.testb F1"]  # the scores first
    assert table.loc[nu.ABLATION[6][0], "what else changed"] == nu.ABLATION[6][1]
    assert table.loc[bf16, "compared with"] == ""
    assert table.loc[nu.ABLATION[6][0], "compared with"] == f"{nu.ABLATION[3][0]} (not run)"  # no MiniLM rows here
    (tmp_path / "more").mkdir()
    _write_rows(tmp_path / "more", "mpnet-lr1e4", {0: (0.957, 0.9155)})
    _write_rows(tmp_path / "more", "final6", {0: (0.94, 0.9)})
    full = nu.ablation_table(_metrics(), tmp_path / "more")
    assert full.loc[nu.ABLATION[6][0], "compared with"] == "" and full.index[0] == nu.ABLATION[3][0]
    assert full.loc[nu.ABLATION[3][0], "compared with"] == f"{nu.ABLATION[2][0]} (not run)"
    assert table.loc[nu.ABLATION[6][0], "seeds"] == 2  # the fp32 line does not take a bf16 run
    assert bf16 not in nu.ablation_table(_metrics(max_eval_sentences=10), tmp_path).index
    seeds = nu.seed_table(_metrics(), tmp_path)
    assert seeds["seed"].tolist() == [0, 42, 42] and seeds["run"].tolist() == ["earlier run", "earlier run", "this run"]
    assert seeds["mixed precision"].tolist() == ["none (32-bit floats)", "none (32-bit floats)", "bf16"]
    import json
    (tmp_path / "final6-s42.json").write_text(json.dumps({"config": {"seed": 42, "mixed_precision": "bf16"},
                                                           "testa": 0.94, "testb": 0.9}))  # an older row: no "precision"
    mini = _metrics("embedded")
    assert nu.seed_table(mini, tmp_path)["mixed precision"].tolist() == ["bf16"]  # its seed and precision: already there
    assert nu.ablation_table(mini | {"config": mini["config"] | {"seed": 5}}, tmp_path).loc[nu.ABLATION[3][0], "seeds"] == 2
    assert len(nu.seed_table(_metrics(precision="no"), tmp_path)) == 2  # the same seed and precision: already there
    assert len(nu.seed_table(_metrics(), tmp_path / "absent")) == 1


def test_run_summary_says_what_ran_and_why(tmp_path):
    metrics = _metrics() | {"model": nu.BASE_MODEL, "parameters": 108_900_000, "fallback": True,
                            "asked": "bert-base-cased"}
    text = nu.run_summary(metrics)
    assert text.startswith("**This notebook's run** fine-tuned **all-mpnet-base-v2**: span F1 96.00 on eng.testa, the "
                           "development set that chose the epoch, and 92.00 on the test set eng.testb")
    assert "average" not in text
    mean = {"runs": 3, "precision": "in 32-bit floats", "testa": 95.73, "testb": 91.554}
    assert "(sections 4-5). The 3 runs of its recipe in 32-bit floats average **91.55** on eng.testb (section 6)." in \
        nu.run_summary(metrics, mean)
    assert "`bert-base-cased`, which could not be loaded where it ran" in text and "108.9M parameters" in text and "not BERT" in text
    assert text.endswith("\n\n**For comparison** (section 10), on eng.testb: 92.40 for BERT-base in the BERT paper (with "
                         "document context), 91.20 (mean of 10 runs) to 91.87 (how obtained not stated) for independent "
                         "reproductions, and 94.60 at the top.")
    other = nu.run_summary(metrics | {"model": "my-encoder"})
    assert "fell back to my-encoder, installed there: a checkpoint of 108.9M parameters, not described here." in other  # "installed" once
    unsized = nu.run_summary({k: v for k, v in metrics.items() if k != "parameters"} | {"model": "my-encoder"})
    assert "installed there: a checkpoint not described here." in unsized  # no "?M parameters"
    own = nu.run_summary(metrics | {"model": "bert-base-cased", "fallback": False})
    assert "fell back" not in own and "short check" not in own
    short = nu.run_summary(_metrics(max_train_sentences=300, epochs=1) | {"model": "m"})
    assert "a short check only** (300 training sentences, 1 epoch(s))" in short and "For comparison" not in short
    assert "average" not in nu.run_summary(_metrics(max_train_sentences=300, epochs=1) | {"model": "m"}, mean)


def test_runtime_config_applies_the_output_folder_and_the_environment(monkeypatch):
    from pathlib import Path
    config = nu.TrainConfig(model="bert-base-cased")
    for var in ("NER_MODEL", "NER_EPOCHS"):
        monkeypatch.delenv(var, raising=False)
    plain = nu.runtime_config(config, {"output_dir": Path("out/x"), "smoke": False})
    assert (plain.output_dir, plain.model, plain.epochs, plain.max_train_sentences) == ("out/x", "bert-base-cased", None,
                                                                                       None)
    monkeypatch.setenv("NER_MODEL", "m")
    monkeypatch.setenv("NER_EPOCHS", "2")
    short = nu.runtime_config(config, {"output_dir": Path("o"), "smoke": True})
    assert (short.model, short.epochs, short.max_train_sentences, short.max_eval_sentences) == ("m", 2, 300, 300)


def test_show_code_shows_the_live_source_as_plain_text():
    from IPython.core.formatters import DisplayFormatter
    data, _ = DisplayFormatter().format(nu.show_code(nu.align_labels, nu.get_spans))
    assert data["text/plain"].startswith("def align_labels(") and "\n\n\ndef get_spans(" in data["text/plain"]
    assert data["text/markdown"] == f"```python\n{data['text/plain']}\n```" and "text/html" not in data


def test_error_groups_and_unseen_names():
    train = [_s("Leeds beat Hull", ["B-ORG", "O", "B-ORG"]), _s("in Paris", ["O", "B-LOC"])]
    test = [_s("JAPAN GET LUCKY WIN", ["B-LOC", "O", "O", "O"]), _s("Leeds 2 Bury 1 .", ["B-ORG", "O", "B-ORG", "O", "O"]),
            _s("Paris and Rome", ["B-LOC", "O", "B-LOC"])]
    pred = [["O", "O", "O", "O"], ["B-LOC", "O", "B-ORG", "O", "O"], ["B-LOC", "O", "B-LOC"]]
    assert [nu.is_all_caps(s) for s in test] == [True, False, False]
    assert [nu.is_results_line(s) for s in test] == [False, True, False]
    assert not nu.is_all_caps(_s("EU", ["B-ORG"])) and not nu.is_results_line(_s("in 1996 .", ["O", "O", "O"]))
    groups = nu.scores_by_group(test, pred, {"all-caps": nu.is_all_caps})
    assert groups.loc["all-caps"].tolist() == [1, 4.0, 1, 0, 0, 1, 0.0, 0.0]
    assert groups.loc["not all-caps", "span errors"] == 1 and groups.loc["not all-caps", "words per sentence"] == 4.0
    assert groups.loc["not all-caps", ["gold entities", "predicted", "correct"]].tolist() == [4, 4, 3]
    assert groups.loc["not all-caps", "F1"] == 75.0
    assert groups.loc["not all-caps", "F1 at the group's lengths"] == 50.0  # only the 4-7 word sentence counts
    assert nu.group_findings(groups) == [
        "all-caps: F1 0.00 against 75.00 for the rest, 75.00 points lower; weighted to the group's sentence lengths (4.0 "
        "words on average against 4.0), the rest scores 50.00: at equal lengths the group is 50.00 points lower; it "
        "holds 50% of the span errors and 20% of the gold entities: errors gather there."]
    unseen = nu.unseen_entities(train, {"t": test})
    assert unseen.loc["LOC", "t"] == 66.7 and unseen.loc["ORG", "t"] == 50.0 and unseen.loc["all", "t"] == 60.0
    assert unseen.loc["PER", "t"] == 0.0  # no PER entity: 0, not a division by zero
    recall = nu.recall_by_novelty(train, test, pred)
    assert recall.loc["seen in eng.train"].tolist() == [2, 1, 50.0] and recall.loc["unseen"].tolist() == [3, 2, 66.67]
    assert nu.novelty_finding(recall) == "recall on unseen names: 66.67 against 50.00 on seen ones, 16.67 points higher"
    assert nu.novelty_finding(recall.assign(recall=[50.0, 50.0])).endswith("on seen ones, the same")
    nothing_seen = nu.recall_by_novelty([], test, pred)
    assert nothing_seen.loc["seen in eng.train", "recall"] != nothing_seen.loc["seen in eng.train", "recall"]  # NaN
    assert nu.novelty_finding(nothing_seen) == "no seen gold names: nothing to compare"


def test_group_findings_say_which_way_the_gap_goes_at_equal_lengths():
    import pandas as pd

    groups = pd.DataFrame({"words per sentence": [3.0, 15.0], "gold entities": [10, 90], "span errors": [2, 8],
                           "F1": [66.67, 93.62], "F1 at the group's lengths": [66.67, 57.14]},
                          index=["short", "not short"])
    assert nu.group_findings(groups)[0].startswith(
        "short: F1 66.67 against 93.62 for the rest, 26.95 points lower; weighted to the group's sentence lengths (3.0 "
        "words on average against 15.0), the rest scores 57.14: at equal lengths the group is 9.53 points higher;")
    level = groups.assign(**{"F1 at the group's lengths": [66.67, 66.67]})
    assert "at equal lengths the group is level with it;" in nu.group_findings(level)[0]
    unmatched = groups.assign(**{"F1 at the group's lengths": [66.67, float("nan")]})
    assert "weighted" not in nu.group_findings(unmatched)[0]  # lengths that cannot be matched: nothing said


def test_length_matched_f1_weights_each_length_class_to_the_other_groups_share():
    rest = [_s("Paris", ["B-LOC"]), _s("a b c Leeds", ["O", "O", "O", "B-ORG"])]
    pred = [["B-LOC"], ["O", "O", "O", "B-LOC"]]
    like = [_s("ROME", ["B-LOC"])] * 3 + [_s("X Y Z HULL", ["O", "O", "O", "B-ORG"])]
    assert nu.length_matched_f1(rest, pred, like) == 0.75  # 3 x (1 of 1) + 1 x (0 of 1): 3 of 4 found and correct
    assert nu.span_scores([s.tags for s in rest], pred)["overall"]["f1"] == 0.5  # unweighted
    assert nu.length_matched_f1(rest, pred, like[3:]) == 0.0  # only the 4-word class
    empty = nu.length_matched_f1(rest, pred, [_s("a b c d e f g h", ["O"] * 8)])  # no entity in the other group
    assert empty != empty  # nan: nothing to weigh
    unmatched = like[3:] + [_s("a b c d e f g H", ["O"] * 7 + ["B-PER"])] * 9  # 9 of its 10 entities in 8-15 words
    assert nu.length_matched_f1(rest, pred, unmatched) != nu.length_matched_f1(rest, pred, unmatched)  # nan: 10% kept
    assert nu.length_matched_f1(rest, [["O"], ["O"] * 4], like) == 0.0  # nothing predicted: F1 0, not nan
    assert [nu._length_bin(_s(" ".join("w" * n), ["O"] * n)) for n in (1, 2, 3, 4, 7, 8, 16, 31, 32, 100)] == \
        [1, 2, 2, 3, 3, 4, 5, 5, 6, 6]


def test_a_published_row_without_an_eng_testa_figure_is_compared_on_eng_testb_only(monkeypatch):
    import dataclasses

    bert = dataclasses.replace(nu.SOTA[0], testa=None)
    monkeypatch.setattr(nu, "SOTA", [bert] + nu.SOTA[1:])
    testa, testb = {"f1": 0.957, "low": 0.951, "high": 0.962}, {"f1": 0.9156, "low": 0.905, "high": 0.925}
    assert (nu.sota_gaps(testa, testb)["set"] == "eng.testa").sum() == 1  # BERT-large's 96.6 only
    assert "On eng.testa" not in nu.sota_answer(testa, testb)
    assert "on eng.testa it is" not in nu.conclusion({"model": "m"}, testa, testb)


def test_the_whole_module_is_shown_folded_and_its_text_is_the_file():
    shown = nu.show_module()
    text = (ROOT / "ner_utils.py").read_text(encoding="utf-8").rstrip()
    assert repr(shown) == text  # what a replay compares: the file itself
    markdown = shown._repr_markdown_()
    assert markdown.startswith("<details><summary><code>ner_utils.py</code>, the complete module (")
    assert f"({text.count(chr(10)) + 1:,} lines): click to open</summary>\n\n```python\n" in markdown
    assert markdown.endswith("\n```\n\n</details>") and "def show_module() -> SourceCode:" in markdown
    assert nu.SourceCode("x = 1", "a title")._repr_markdown_() == (
        "<details><summary>a title</summary>\n\n```python\nx = 1\n```\n\n</details>")


def test_source_code_is_fenced_longer_than_any_backticks_inside():
    assert nu.SourceCode("x = 1")._repr_markdown_() == "```python\nx = 1\n```"
    assert nu.SourceCode('"""a ```` b"""')._repr_markdown_().startswith("`````python\n")
    assert repr(nu.SourceCode("x = 1")) == "x = 1"


def test_every_ablation_line_is_compared_with_a_line_before_it():
    changes = [line[0] for line in nu.ABLATION]
    for i, line in enumerate(nu.ABLATION):
        if len(line) > 4 and i:
            assert line[4] in changes[:i - 1], line  # named only where it is not simply the line above


def test_the_recipes_runs_say_above_or_below_only_when_every_run_agrees():
    assert nu._runs_against([91.55, 91.54, 91.91], [92.4]) == "all 3 runs of the recipe score below 92.40 (the best 91.91)"
    assert nu._runs_against([91.55, 91.91], [91.2, 91.37, 91.87]) == ("both runs of the recipe score above 91.20 and "
                                                                       "91.37 (the lowest 91.55); 1 of 2 runs of the "
                                                                       "recipe scores below 91.87 (1 above)")
    assert nu._runs_against([91.55, 91.54, 91.66, 91.49, 91.91], [91.87]) == (
        "4 of 5 runs of the recipe score below 91.87 (1 above)")  # the larger side first
    assert nu._runs_against([91.9, 91.95, 91.5], [91.87]) == "2 of 3 runs of the recipe score above 91.87 (1 below)"
    assert nu._runs_against([91.874, 91.9, 91.5], [91.87]) == (
        "1 of 3 runs of the recipe scores below 91.87 (1 above, 1 equal to it)")  # a tie as printed
    assert nu._runs_against([91.87, 91.87], [91.87]) == "both runs of the recipe equal 91.87"
    assert nu._runs_against([91.87], [91.2, 91.87]) == ("the recipe's one run (91.87) scores above 91.20; the recipe's one "
                                                        "run equals 91.87")  # never "all 1 runs"
    assert nu._runs_against([95.0], [96.4, 96.4]) == "the recipe's one run (95.00) scores below 96.40"  # one figure once


def test_sota_answer_conclusion_and_gaps_set_every_run_of_the_recipe_beside_each_figure():
    testa, testb = {"f1": 0.9569, "low": 0.9472, "high": 0.9661}, {"f1": 0.9166, "low": 0.9012, "high": 0.9298}
    mean = {"runs": 3, "precision": "in 32-bit floats", "testa": 95.72, "testb": 91.58,
            "every_testa": [95.69, 95.78, 95.69, 95.73, 95.3], "every_testb": [91.55, 91.54, 91.66, 91.49, 91.91]}
    answer = nu.sota_answer(testa, testb, mean)
    assert "average **91.58**, and its 5 runs in any precision span 91.49-91.91;" in answer
    assert ("The recipe is below BERT-base in the BERT paper, level with the independent reproductions and below the "
            "large document-level systems (below or above only where all 5 runs are).") in answer
    assert ("(mean of 5 restarts, with document context). All 5 runs of the recipe score below 92.40 (the best 91.91); "
            "the recipe's mean is 0.82 points below 92.40 (11% more errors).\n") in answer  # runs first
    assert ("the BERT paper reports 96.40. All 5 runs of the recipe score below 96.40 (the best 95.78); the recipe's mean is "
            "0.68 points below 96.40 (19% more errors).\n") in answer  # 96.40 lies inside 94.72-96.61
    assert ("All 5 runs of the recipe score above 91.20 and 91.37 (the lowest 91.49); 4 of 5 runs of the recipe score "
            "below 91.87 (1 above); the recipe's mean is 0.38 points above 91.20, 0.21 above 91.37, 0.29 below "
            "91.87. kamalkraj") in answer
    assert ("All 5 runs of the recipe score below 94.09, 94.30 and 94.60 (the best 91.91); the recipe's mean is "
            "2.51-3.02 points below them (42-56% more errors). This run (91.66) is 2.43-2.94 points below them (41-54% "
            "more errors); they lie outside its 95% interval (90.12-92.98), so the gaps are more than the test set's sampling noise.") in answer  # its own gap
    assert "level with 9" not in answer
    assert " span " not in nu.sota_answer(testa, testb, mean | {"every_testb": [91.55, 91.54, 91.66]}).split("\n")[0]
    metrics = {"model": nu.BASE_MODEL, "parameters": 108_900_000, "fallback": True, "asked": "bert-base-cased"}
    lines = nu.conclusion(metrics, testa, testb, mean).split("\n")
    assert lines[2] == ("  - BERT-base in the BERT paper (92.40): **below**; all 5 runs of the recipe score below 92.40 "
                        "(the best 91.91).")
    assert lines[3] == ("  - The 3 independent reproductions (91.20-91.87): **level with**; all 5 runs of the recipe "
                        "score above 91.20 and 91.37 (the lowest 91.49); 4 of 5 runs of the recipe score below 91.87 (1 "
                        "above).")
    gaps = nu.sota_gaps(testa, testb, mean)
    assert gaps.loc["BERT-base, 110M", "runs of the recipe above it"].tolist() == ["0 of 5", "0 of 5"]  # testa, testb
    assert gaps.set_index("work").loc["allanj (GitHub)", "runs of the recipe above it"] == "1 of 5"
    assert "runs of the recipe above it" not in nu.sota_gaps(testa, testb, {k: mean[k] for k in ("runs", "testa", "testb")})


def test_mean_f1_averages_the_figures_as_printed():
    assert nu.mean_f1([91.554, 91.545]) == 91.55  # 91.55 and 91.55 (rounded half to even on the exact binary value)
    assert round(nu.mean_f1([91.555, 91.555, 91.6449]), 2) == round((round(91.555, 2) * 2 + 91.64) / 3, 2)
    import pandas as pd
    assert nu.mean_f1(pd.Series([95.69, 95.78])) == nu.mean_f1([95.69, 95.78])


def test_environment_info_reports_the_runs_mixed_precision():
    assert nu.environment_info("bf16")["mixed precision"] == "bf16"
    assert nu.environment_info("no")["mixed precision"] == "none (32-bit floats)"
    assert nu.environment_info()["mixed precision"] == nu.PRECISION_WORDS[nu.resolve_precision("auto")]


def test_recipe_mean_lists_every_run_in_any_precision():
    import pandas as pd

    seeds = pd.DataFrame({"run": ["stored", "stored", "this run"], "seed": [0, 1, 42],
                          "mixed precision": ["none (32-bit floats)", "none (32-bit floats)", "bf16"],
                          "eng.testa F1": [95.69, 95.78, 95.3], "eng.testb F1": [91.55, float("nan"), 91.91]})
    full = nu.recipe_mean(seeds.assign(**{"eng.testb F1": [91.55, 91.54, 91.91]}))
    assert full["every_testb"] == [91.55, 91.54, 91.91] and full["every_testa"] == [95.69, 95.78, 95.3]
    assert full["testb"] == nu.mean_f1([91.55, 91.54]) and full["runs"] == 2
    assert nu.recipe_mean(seeds) is None  # the run without an eng.testb F1 is left out: no group of two
