"""Reading CoNLL files and loading the three CoNLL-2003 splits."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import ner_utils as nu
from conftest import IOB1_TEXT, IOB2_TAGS, make_split_folder, to_two_columns, write


def test_read_conll_four_columns_keeps_tags_and_documents(iob1_file):
    sentences = nu.read_conll(iob1_file)
    assert [s.words for s in sentences][0] == ["Zorblat", "rejects", "Quennish", "call", "."]
    assert sentences[1].tags == ["I-PER", "I-PER", "I-LOC", "B-LOC", "O"]  # exactly as in the file
    assert [s.doc for s in sentences] == [0, 0, 1]
    assert all(nu.DOCSTART not in s.words for s in sentences)


@pytest.mark.parametrize("transform", [
    lambda t: t,
    to_two_columns,
    lambda t: t.replace(" ", "\t"),
    lambda t: t.replace("\n", "\r\n"),
    lambda t: "\ufeff" + t,
    lambda t: t.replace("\n", "  \t\n"),
    lambda t: t.rstrip("\n"),  # no final newline
], ids=["4col", "2col", "tabs", "crlf", "bom", "trailing-space", "no-final-newline"])
def test_read_conll_accepts_common_variants(tmp_path, transform):
    path = write(tmp_path / "f.txt", transform(IOB1_TEXT))
    sentences = nu.read_conll(path)
    assert [s.words for s in sentences] == [s.words for s in nu.parse_conll(IOB1_TEXT.encode())]
    assert [s.tags for s in sentences] == [s.tags for s in nu.parse_conll(IOB1_TEXT.encode())]
    assert [s.doc for s in sentences] == [0, 0, 1]


def test_file_without_docstart_is_one_document(tmp_path):
    text = "A B-PER\nb O\n\nC B-LOC\n"
    sentences = nu.read_conll(write(tmp_path / "x", text))
    assert [(s.words, s.doc) for s in sentences] == [(["A", "b"], 0), (["C"], 0)]


def test_docstart_without_blank_line_still_ends_the_sentence(tmp_path):
    sentences = nu.read_conll(write(tmp_path / "x", "A B-PER\n-DOCSTART- O\nC B-LOC\n"))
    assert [(s.words, s.doc) for s in sentences] == [(["A"], 0), (["C"], 1)]


def test_empty_documents_and_many_blank_lines(tmp_path):
    text = "\n\n-DOCSTART- O\n\n-DOCSTART- O\n\n\n\nA B-PER\n\n\n"
    sentences = nu.read_conll(write(tmp_path / "x", text))
    assert [(s.words, s.doc) for s in sentences] == [(["A"], 1)]


@pytest.mark.parametrize("text, line, found", [
    ("A NNP I-PER\nB NNP O\nC O\n", 3, "found 2 columns"),
    ("A NNP I-PER\n\nB NNP X-PER\n", 3, "found tag 'X-PER'"),
    ("A I-\n", 1, "found tag 'I-'"),
    ("A per\n", 1, "found tag 'per'"),
    ("lonely\n", 1, "found 1 column"),
    ("", 1, "empty file"),
    ("\n \n\r\n", 1, "empty file"),
    ("-DOCSTART- -X- -X- O\n\n", 2, "no sentence"),
])
def test_bad_input_names_file_line_found_and_expected(tmp_path, text, line, found):
    path = write(tmp_path / "bad.conll", text)
    with pytest.raises(nu.ConllFormatError) as err:
        nu.read_conll(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ")
    assert found in message and "expected" in message
    assert isinstance(err.value, ValueError)


def test_non_utf8_bytes_raise_with_line(tmp_path):
    path = write(tmp_path / "latin1.conll", "A B-PER\n\nM\xfcnchen B-LOC\n".encode("latin-1"))
    with pytest.raises(nu.ConllFormatError, match=r"latin1\.conll:3: found byte 0xfc.*expected .*UTF-8"):
        nu.read_conll(path)


def test_error_in_last_line_returns_nothing_partial(tmp_path):
    path = write(tmp_path / "x", IOB1_TEXT + "\nbroken line here too many\n")
    with pytest.raises(nu.ConllFormatError, match=r":25: found 5 columns"):
        nu.read_conll(path)


def test_load_conll2003_from_folder_converts_to_iob2(tmp_path):
    splits = nu.load_conll2003(make_split_folder(tmp_path / "data"))
    assert set(splits) == {"train", "testa", "testb"}
    for sentences in splits.values():
        assert [s.tags for s in sentences] == IOB2_TAGS
        assert [s.doc for s in sentences] == [0, 0, 1]


def test_load_conll2003_iob2_and_iobes_inputs_give_the_same_result(tmp_path):
    iob2 = "\n\n".join("\n".join(f"w{i} {t}" for i, t in enumerate(tags)) for tags in IOB2_TAGS)
    iobes_tags = [["S-ORG", "O", "S-MISC", "O", "O"], ["B-PER", "E-PER", "S-LOC", "S-LOC", "O"],
                  ["S-PER", "O", "S-PER", "O", "B-LOC", "E-LOC", "O"]]
    iobes = "\n\n".join("\n".join(f"w{i} {t}" for i, t in enumerate(tags)) for tags in iobes_tags)
    for text in (iob2, iobes):
        splits = nu.load_conll2003(make_split_folder(tmp_path / str(hash(text)), text))
        assert [s.tags for s in splits["testb"]] == IOB2_TAGS


def test_load_conll2003_from_zip_at_any_depth(tmp_path):
    archive = tmp_path / "conll_2003_ner.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(f"__MACOSX/deep/._{name}", b"\x00\x05junk")
            zf.writestr(f"outer/conll_2003_ner/{name}", IOB1_TEXT)
    splits = nu.load_conll2003(archive)
    assert [s.tags for s in splits["train"]] == IOB2_TAGS


def test_load_conll2003_finds_a_zip_inside_the_folder(tmp_path):
    folder = tmp_path / "conll_2003_ner"
    folder.mkdir()
    with zipfile.ZipFile(folder / "conll_2003_ner.zip", "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(name, IOB1_TEXT)
    assert len(nu.load_conll2003(folder)["testa"]) == 3


def test_load_conll2003_nested_folder(tmp_path):
    make_split_folder(tmp_path / "a" / "conll_2003_ner")
    assert len(nu.load_conll2003(tmp_path)["testb"]) == 3


def test_zip_errors_name_the_member(tmp_path):
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(f"x/{name}", "A B-PER\nB\n")
    with pytest.raises(nu.ConllFormatError, match=r"d\.zip:x/eng\.train:2: found 1 column"):
        nu.load_conll2003(archive)


def test_missing_split_names_file_and_places(tmp_path):
    folder = tmp_path / "data"
    write(folder / "eng.train", IOB1_TEXT)
    write(folder / "eng.testa", IOB1_TEXT)
    with pytest.raises(nu.DataNotFoundError) as err:
        nu.load_conll2003(folder)
    assert "eng.testb" in str(err.value) and str(folder) in str(err.value)
    assert "eng.train" not in str(err.value).split("not found")[0]
    assert isinstance(err.value, FileNotFoundError)


def test_missing_folder_and_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("CONLL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(nu.DataNotFoundError, match=r"CONLL_DIR.*nowhere.*does not exist"):
        nu.load_conll2003()
    monkeypatch.setenv("CONLL_DIR", str(make_split_folder(tmp_path / "d")))
    assert len(nu.load_conll2003()["train"]) == 3
    monkeypatch.delenv("CONLL_DIR")
    monkeypatch.setattr(nu, "DEFAULT_DATA_DIR", tmp_path / "absent")
    monkeypatch.chdir(tmp_path / "d")  # the files at the top of the working folder
    assert len(nu.load_conll2003()["train"]) == 3
    (tmp_path / "bare").mkdir()
    monkeypatch.chdir(tmp_path / "bare")
    with pytest.raises(nu.DataNotFoundError, match=r"default places.*absent.*does not exist.*bare/ \(top level\)"):
        nu.load_conll2003()


def test_read_splits_keeps_the_original_tags(tmp_path):
    raw = nu.read_splits(make_split_folder(tmp_path / "d"))
    assert raw["train"][1].tags == ["I-PER", "I-PER", "I-LOC", "B-LOC", "O"]


def test_unknown_type_names_the_full_path_the_tags_own_line_and_the_tag_as_written(tmp_path):
    """Review item 10: not the base name, the sentence's first line and the IOB2 form ('B-DATE')."""
    folder = make_split_folder(tmp_path / "d")
    write(folder / "eng.testb", "-DOCSTART- -X- -X- O\n\nA NNP I-NP O\nB NNP I-NP I-LOC\n\nC NNP I-NP O\n"
                                "D NNP I-NP O\nE NNP I-NP I-DATE\n")
    with pytest.raises(nu.ConllFormatError) as err:
        nu.load_conll2003(folder)
    assert str(err.value).startswith(f"{(folder / 'eng.testb').resolve()}:8: found tag 'I-DATE'; expected O or ")
    assert "B-DATE" not in str(err.value)
    archive = tmp_path / "z.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(f"in/{name}", IOB1_TEXT if name != "eng.testa" else "A B-PER\nB I-DATE\n")
    with pytest.raises(nu.ConllFormatError, match=r"z\.zip:in/eng\.testa:2: found tag 'I-DATE'"):
        nu.load_conll2003(archive)


def test_cr_only_line_ends_read_like_unix_ones(tmp_path):
    """Review item 5: old Mac files (\\r alone) were one sentence of one word."""
    path = write(tmp_path / "mac.txt", IOB1_TEXT.replace("\n", "\r"))
    sentences = nu.read_conll(path)
    assert [s.words for s in sentences] == [s.words for s in nu.parse_conll(IOB1_TEXT.encode())]
    assert [(s.doc, s.line) for s in sentences] == [(s.doc, s.line) for s in nu.parse_conll(IOB1_TEXT.encode())]
    with pytest.raises(nu.ConllFormatError, match=r"mac2\.txt:4: found 1 column"):
        nu.read_conll(write(tmp_path / "mac2.txt", "-DOCSTART- O\r\rA B-PER\rlonely\r"))
    mixed = nu.read_conll(write(tmp_path / "mixed.txt", "A B-PER\r\nB O\rC O\n\rD B-LOC\n"))
    assert [s.words for s in mixed] == [["A", "B", "C"], ["D"]]


@pytest.mark.parametrize("data, line, what", [
    ("\ufeffA B-PER\n".encode("utf-16-le"), 1, "a UTF-16 byte-order mark: a UTF-16 file"),
    ("\ufeffA B-PER\n".encode("utf-16-be"), 1, "a UTF-16 byte-order mark: a UTF-16 file"),
    ("A B-PER\nB O\n".encode("utf-16-le"), 1, "NUL bytes (0x00): a UTF-16 or binary file"),
    (b"A B-PER\nB O\nC\x00 O\n", 3, "NUL bytes (0x00): a UTF-16 or binary file"),
])
def test_a_utf16_file_is_named_as_such(tmp_path, data, line, what):
    """Review item 12: UTF-16 got the advice to convert from latin1."""
    with pytest.raises(nu.ConllFormatError) as err:
        nu.read_conll(write(tmp_path / "u16.txt", data))
    assert f"u16.txt:{line}: found {what}" in str(err.value) and "iconv -f utf-16 -t utf-8" in str(err.value)
    assert "latin1" not in str(err.value)


def test_zips_are_found_in_subfolders_and_the_message_says_where_it_looked(tmp_path):
    """Review item 11: the docstring promised zips at any depth, the search took the top level only."""
    deep = tmp_path / "data" / "a" / "b"
    deep.mkdir(parents=True)
    with zipfile.ZipFile(deep / "conll.zip", "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(name, IOB1_TEXT)
    assert len(nu.load_conll2003(tmp_path / "data")["testb"]) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(nu.DataNotFoundError, match=r"empty/ and its subfolders \(files and zips\)"):
        nu.load_conll2003(tmp_path / "empty")


@pytest.mark.real_data
def test_real_data_counts_match_the_data_card(real_splits):
    stats = nu.dataset_stats(real_splits)
    expected = {
        "train": dict(docs=946, sentences=14041, tokens=203621, entities=23499, LOC=7140, MISC=3438, ORG=6321, PER=6600),
        "testa": dict(docs=216, sentences=3250, tokens=51362, entities=5942, LOC=1837, MISC=922, ORG=1341, PER=1842),
        "testb": dict(docs=231, sentences=3453, tokens=46435, entities=5648, LOC=1668, MISC=702, ORG=1661, PER=1617),
    }
    assert stats.to_dict(orient="index") == expected


@pytest.mark.real_data
def test_real_data_checksums_and_scheme(real_raw):
    import hashlib

    from conftest import REAL_DATA
    md5 = {name: hashlib.md5((REAL_DATA / name).read_bytes()).hexdigest() for name in nu.SPLIT_FILES.values()}
    assert md5 == {"eng.train": "3a210f021c55246dd4770d5e8900459b", "eng.testa": "6c7190f319002a14439b367692b9074e",
                   "eng.testb": "854904a60413a99540ea53de980b62c9"}
    assert {split: nu.tag_scheme(s) for split, s in real_raw.items()} == dict.fromkeys(nu.SPLIT_FILES, "IOB1")


@pytest.mark.real_data
def test_real_iob2_conversion_keeps_every_conlleval_chunk(real_raw, real_splits):
    for split in nu.SPLIT_FILES:
        assert nu.tag_scheme(real_splits[split]) == "IOB2"
        for raw, converted in zip(real_raw[split], real_splits[split], strict=True):
            assert raw.words == converted.words
            assert nu.get_spans(raw.tags) == nu.get_spans(converted.tags)
        gold = [s.tags for s in real_raw[split]]
        assert nu.span_scores(gold, [s.tags for s in real_splits[split]])["overall"]["f1"] == 1.0


def _course_zip(path, top_folder: str = "conll_2003_ner/"):
    with zipfile.ZipFile(path, "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(top_folder + name, IOB1_TEXT)
    return path


@pytest.mark.parametrize("top_folder", ["conll_2003_ner/", ""])
@pytest.mark.parametrize("where", ["beside the notebook", "inside conll_2003_ner/", "cloned repo, zip beside"])
def test_default_search_finds_the_course_zip_wherever_a_student_puts_it(tmp_path, monkeypatch, top_folder, where):
    """Colab: the zip uploaded beside the notebook or into conll_2003_ner/, with or without a top folder, and a
    cloned repository whose conll_2003_ner/ holds only the data card."""
    monkeypatch.delenv("CONLL_DIR", raising=False)
    monkeypatch.setattr(nu, "DEFAULT_DATA_DIR", tmp_path / "module" / "conll_2003_ner")
    work = tmp_path / "content"
    work.mkdir()
    monkeypatch.chdir(work)
    if where == "inside conll_2003_ner/":
        (work / "conll_2003_ner").mkdir()
        _course_zip(work / "conll_2003_ner" / "conll_2003_ner.zip", top_folder)
    else:
        _course_zip(work / "conll_2003_ner (1).zip", top_folder)  # Colab renames a second upload
        if where == "cloned repo, zip beside":
            write(work / "conll_2003_ner" / "README.md", "# data card only\n")
    splits = nu.load_conll2003()
    assert [s.tags for s in splits["testb"]] == IOB2_TAGS


def test_a_zip_without_the_splits_is_passed_over(tmp_path, monkeypatch):
    monkeypatch.delenv("CONLL_DIR", raising=False)
    monkeypatch.setattr(nu, "DEFAULT_DATA_DIR", tmp_path / "absent")
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile(tmp_path / "a-other.zip", "w") as zf:
        zf.writestr("notes.txt", "nothing here")
    _course_zip(tmp_path / "b-course.zip", "")
    assert len(nu.load_conll2003()["train"]) == 3


def test_columns_split_on_ascii_spaces_and_tabs_only():
    """U+00A0 and other Unicode spaces stay inside a token (str.split() would add a column)."""
    text = "1\xa0000 CD I-NP O\nNew\u2009York NNP I-NP I-LOC\nfoo\u3000bar NN I-NP O\n.\t.\tO\tO\n"
    [sentence] = nu.parse_conll(text.encode())
    assert sentence.words == ["1\xa0000", "New\u2009York", "foo\u3000bar", "."]


def test_column_error_names_the_bad_line_and_the_line_that_set_the_count():
    text = "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ extra I-NP I-MISC\n"
    with pytest.raises(nu.ConllFormatError, match=r"<bytes>:3: found 5 columns .*expected 4 like line 1"):
        nu.parse_conll(text.encode())


def test_zip_members_named_with_backslashes_are_read_as_paths(tmp_path):
    """Some Windows zip tools write conll_2003_ner\\eng.train: the member is found (and named as written)."""
    archive = tmp_path / "conll_2003_ner.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(f"__MACOSX\\conll_2003_ner\\._{name}", b"\x00\x05junk")
            zf.writestr(f"outer\\conll_2003_ner\\{name}", IOB1_TEXT.replace("Zorblat", "Deeper"))
            zf.writestr(f"conll_2003_ner\\{name}", IOB1_TEXT)
    splits = nu.load_conll2003(archive)
    assert [s.tags for s in splits["train"]] == IOB2_TAGS and splits["train"][0].words[0] == "Zorblat"
    assert splits["testb"][0].source == f"{archive}:conll_2003_ner\\eng.testb"
