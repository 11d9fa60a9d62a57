"""Word pieces, first-piece labels and windows for long sentences."""
from __future__ import annotations

import pytest

import ner_utils as nu

LABEL2ID = {label: i for i, label in enumerate(nu.LABELS)}


def test_align_labels_first_piece_only():
    assert nu.align_labels([None, 0, 0, 1, 2, 2, 2, None], [5, 0, 1]) == [-100, 5, -100, 0, 1, -100, -100, -100]
    assert nu.align_labels([None, None], []) == [-100, -100]


def test_encode_matches_the_tokenizer_word_ids(tiny):
    _, tok = tiny
    sentence = nu.Sentence(["Angela", "Merkel", "visited", "Berlin", "."], ["B-PER", "I-PER", "O", "B-LOC", "O"])
    [feature] = nu.encode(tok, [sentence], LABEL2ID)
    enc = tok(sentence.words, is_split_into_words=True)
    assert feature["input_ids"] == enc["input_ids"]
    assert feature["labels"] == nu.align_labels(enc.word_ids(), [LABEL2ID[t] for t in sentence.tags])
    labelled = [i for i, label in enumerate(feature["labels"]) if label != -100]
    assert [feature["word_index"][i] for i in labelled] == [0, 1, 2, 3, 4]
    assert feature["labels"][0] == -100 and feature["labels"][-1] == -100


def test_sentence_of_600_words_is_split_into_windows_and_nothing_is_dropped(tiny):
    model, tok = tiny
    words = [["john", "Xylophonic", "in", "Berlin", "7"][i % 5] for i in range(600)]
    sentence = nu.Sentence(words, [["B-PER", "O", "O", "B-LOC", "O"][i % 5] for i in range(600)])
    features = nu.encode(tok, [sentence], LABEL2ID, max_length=64)
    assert len(features) > 1 and all(len(f["input_ids"]) <= 64 for f in features)
    covered = [w for f in features for w in f["word_index"] if w >= 0]
    assert covered == list(range(600))  # each word exactly once, in order
    labels = [label for f in features for label in f["labels"] if label != -100]
    assert labels == [LABEL2ID[t] for t in sentence.tags]
    tags = nu.predict_tags(model, tok, [sentence])
    assert len(tags) == 1 and len(tags[0]) == 600 and set(tags[0]) <= set(nu.LABELS)


def test_one_word_longer_than_the_window_keeps_its_first_piece(tiny):
    _, tok = tiny
    sentence = nu.Sentence(["a", "q" * 40 + "z" * 100, "b"], ["O", "B-MISC", "O"])
    features = nu.encode(tok, [sentence], LABEL2ID, max_length=16)
    assert all(len(f["input_ids"]) <= 16 for f in features)
    assert [w for f in features for w in f["word_index"] if w >= 0] == [0, 1, 2]


def test_words_without_pieces_become_unknown_tokens(tiny):
    model, tok = tiny
    sentence = nu.Sentence(["john", "\u200b", "\x00", "berlin"], ["B-PER", "O", "O", "B-LOC"])
    [feature] = nu.encode(tok, [sentence], LABEL2ID)
    assert [w for w in feature["word_index"] if w >= 0] == [0, 1, 2, 3]
    assert tok.unk_token_id in feature["input_ids"]
    assert len(nu.predict_tags(model, tok, [sentence])[0]) == 4


def test_unknown_label_is_a_clear_error(tiny):
    _, tok = tiny
    with pytest.raises(ValueError, match="tag 'B-DATE' is not one of the model's labels"):
        nu.encode(tok, [nu.Sentence(["a"], ["B-DATE"])], LABEL2ID)


def test_raw_text_without_tags_encodes_with_ignored_labels(tiny):
    _, tok = tiny
    [feature] = nu.encode(tok, [nu.Sentence(["john", "met"], [])], None)
    assert set(feature["labels"]) == {-100}


def test_empty_sentences_give_no_feature(tiny):
    _, tok = tiny
    assert nu.encode(tok, [nu.Sentence([], [])], LABEL2ID) == []
    assert nu.encode(tok, [], LABEL2ID) == []
