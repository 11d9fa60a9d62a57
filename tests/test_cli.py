"""python -m ner_utils train / evaluate / predict."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import ner_utils as nu
from conftest import ROOT, synthetic_splits


def _write_conll(folder, splits):
    folder.mkdir(parents=True, exist_ok=True)
    for split, name in nu.SPLIT_FILES.items():
        docs, lines = None, []
        for s in splits[split]:
            if s.doc != docs:
                lines += ["-DOCSTART- -X- -X- O", ""]
                docs = s.doc
            lines += [f"{w} NN I-NP {t}" for w, t in zip(s.words, s.tags)] + [""]
        (folder / name).write_text("\n".join(lines))
    return folder


def _run(*args):
    return subprocess.run([sys.executable, "-m", "ner_utils", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("cli")
    data = _write_conll(root / "data", synthetic_splits())
    out = root / "model"
    code = nu.main(["train", "--data", str(data), "--model", str(tiny_model_dir), "--epochs", "2",
                    "--output", str(out), "--seed", "1", "--max-eval-sentences", "20", "--lr", "0.002",
                    "--batch-size", "8"])
    assert code == 0
    return data, out


def test_train_prints_reports_and_writes_metrics(trained, capsys):
    _, out = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"testa_f1", "testb_f1", "train_seconds", "model", "testa", "testb"} <= set(metrics)
    assert metrics["testb"]["overall"]["gold"] == sum(len(nu.get_spans(s.tags)) for s in synthetic_splits()["testb"][:20])
    assert set(metrics["testb"]) >= {"LOC", "MISC", "ORG", "PER", "overall"}


def test_evaluate_writes_conlleval_file_with_every_word(trained, tmp_path, capsys):
    data, model = trained
    assert nu.main(["evaluate", "--model", str(model), "--data", str(data), "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "processed 112 tokens" in printed or "processed" in printed
    lines = (tmp_path / "predictions.testb.txt").read_text().split("\n")
    testb = nu.load_conll2003(data)["testb"]
    rows = [line.split() for line in lines if line]
    assert len(rows) == sum(len(s.words) for s in testb)
    assert all(len(r) == 3 for r in rows)
    assert lines.count("") == len(testb) + 1  # one blank after every sentence, plus the final newline
    gold = [r[1] for r in rows]
    assert gold == [t for s in testb for t in s.tags]
    report = printed.split("\n", 1)[1]
    pred = [[r[2] for r in rows][sum(len(x.words) for x in testb[:i]):][:len(s.words)] for i, s in enumerate(testb)]
    assert nu.conlleval_report([s.tags for s in testb], pred) == report


def test_evaluate_defaults_to_the_model_folder(trained, capsys):
    data, model = trained
    assert nu.main(["evaluate", "--model", str(model), "--data", str(data), "--split", "testa"]) == 0
    assert (model / "predictions.testa.txt").exists()


def test_predict_prints_entities(trained, capsys):
    _, model = trained
    assert nu.main(["predict", "--model", str(model), "john lives in berlin.", "The EU met."]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "john lives in berlin ."
    assert "The EU met ." in out


def test_help_on_each_command():
    for args in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"]):
        done = _run(*args)
        assert done.returncode == 0 and "usage:" in done.stdout


@pytest.mark.parametrize("args", [[], ["train", "--epochs", "x"], ["evaluate"], ["fly"], ["predict", "--model", "m"]])
def test_bad_arguments_exit_2_with_usage(args):
    done = _run(*args)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_missing_data_is_one_clear_line_without_traceback(tmp_path):
    done = _run("train", "--data", str(tmp_path / "nowhere"), "--model", "x", "--epochs", "1")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: CoNLL-2003 file(s) eng.train, eng.testa, eng.testb not found")


def test_tokenize_text():
    assert nu.tokenize_text("Angela Merkel visited Berlin.") == ["Angela", "Merkel", "visited", "Berlin", "."]
    assert nu.tokenize_text("U.S. stocks rose 2.5% (Reuters)") == ["U.S.", "stocks", "rose", "2.5", "%", "(", "Reuters", ")"]


@pytest.mark.parametrize("flags, field", [(["--epochs", "0"], "epochs"), (["--batch-size", "0"], "batch_size"),
                                          (["--lr", "0"], "lr"), (["--lr", "-1"], "lr"),
                                          (["--max-train-sentences", "-5"], "max_train_sentences"),
                                          (["--max-eval-sentences", "0"], "max_eval_sentences"),
                                          (["--seed", "-3"], "seed"), (["--context", "-1"], "context"),
                                          (["--model", ""], "model"), (["--output", ""], "output_dir")])
def test_impossible_train_settings_are_a_usage_error_before_anything_is_loaded(flags, field, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        nu.main(["train", "--data", str(tmp_path / "no-data"), "--output", str(out), *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"TrainConfig.{field}=" in err and "expected" in err
    assert not (tmp_path / "out").exists() or flags[0] == "--output"


def test_predict_makes_each_text_its_own_document(trained, monkeypatch, capsys):
    _, out = trained
    seen = []
    real = nu.predict_tags

    def spy(model, tokenizer, sentences, *args, **kwargs):
        seen.extend(s.doc for s in sentences)
        return real(model, tokenizer, sentences, *args, **kwargs)
    monkeypatch.setattr(nu, "predict_tags", spy)
    assert nu.main(["predict", "--model", str(out), "john lives in berlin", "the eu", "angela merkel"]) == 0
    assert seen == [0, 1, 2]


def test_a_precision_the_hardware_lacks_is_a_usage_error(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("fp16 is possible on this machine's GPU")
    with pytest.raises(SystemExit) as stop:
        nu.main(["train", "--data", str(tmp_path / "no-data"), "--output", str(tmp_path / "out"),
                 "--mixed-precision", "fp16"])
    assert stop.value.code == 2 and "'fp16' asked, but this CPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_removed_flags_are_usage_errors():
    for flag in ("--context-epochs", "--context-pieces", "--average-last"):
        with pytest.raises(SystemExit) as stop:
            nu.build_parser().parse_args(["train", flag, "2"])
        assert stop.value.code == 2


def test_evaluate_and_predict_refuse_a_model_without_a_trained_head(tmp_path, tiny_model_dir):
    """Review item 3: a bare encoder (or the embedded checkpoint) got a random head, and an F1 was printed."""
    from conftest import build_bare_encoder
    encoder = build_bare_encoder(tmp_path / "encoder", tiny_model_dir)
    data = _write_conll(tmp_path / "data", synthetic_splits(n_train=8, n_eval=4))
    for args in (["evaluate", "--model", str(encoder), "--data", str(data)], ["predict", "--model", str(encoder), "x"],
                 ["predict", "--model", "all-MiniLM-L6-v2", "john lives in berlin"]):
        done = _run(*args)
        assert done.returncode == 1 and "processed" not in done.stdout and "(no entities)" not in done.stdout
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ") and "is not a trained CoNLL-2003 tagger" in done.stderr
        assert done.stderr.count("not a trained") == 1 and "could not load" not in done.stderr  # said once
    assert not (encoder / "predictions.testb.txt").exists()


def test_predict_normalises_decomposed_accents(trained, capsys):
    """Review item 8: "José" typed as e + U+0301 became ['Jose', '́']."""
    assert nu.tokenize_text("Jose\u0301 Mourinho") == ["Jos\u00e9", "Mourinho"]
    _, out = trained
    assert nu.main(["predict", "--model", str(out), "Jose\u0301 lives in berlin"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "Jos\u00e9 lives in berlin"
