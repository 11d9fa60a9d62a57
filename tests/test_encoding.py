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


def test_a_word_without_pieces_keeps_its_own_shape_not_that_of_unk(tiny):
    _, tok = tiny
    sentence = nu.Sentence(["john", "\u200b", "berlin"], ["B-PER", "O", "B-LOC"])
    [feature] = nu.encode(tok, [sentence], LABEL2ID)
    shapes = {w: s for w, s in zip(feature["word_index"], feature["shape_ids"]) if w >= 0}
    assert nu.SHAPES[shapes[1]] == "punct/other"  # "[UNK]" would read as ALLCAPS
    assert shapes == {0: nu.word_shape("john"), 1: nu.word_shape("\u200b"), 2: nu.word_shape("berlin")}


def test_context_side_stops_at_its_first_word_that_does_not_fit():
    """Never skip the nearest word for a farther one: context must stay contiguous with the sentence."""
    doc = [nu.Sentence(["a", "b", "c"], ["O"] * 3, doc=0), nu.Sentence(["x"], ["O"], doc=0),
           nu.Sentence(["d", "e"], ["O"] * 2, doc=0)]
    counts = [[1, 1, 5], [1], [1, 1]]
    left, right = nu._context_words(doc, counts, 1, k=8, room=4)
    assert left == [] and right == [(2, 0), (2, 1)]
    left, right = nu._context_words(doc, counts, 1, k=8, room=20)
    assert left == [(0, 0), (0, 1), (0, 2)] and right == [(2, 0), (2, 1)]
    left, right = nu._context_words(doc, [[1, 1, 1], [1], [3, 1]], 1, k=8, room=3)
    assert left == [(0, 0), (0, 1), (0, 2)] and right == []  # the right side stops at d (3 pieces); the left goes on


def test_context_words_are_contiguous_on_real_sized_documents(tiny):
    """Each context is the nearest words in reading order: a suffix of the left text, a prefix of the right."""
    _, tok = tiny
    import random
    rng = random.Random(0)
    vocab = ["john", "berlin", "merkel", "the", "visited", "angela", "germany"]
    doc = [nu.Sentence([rng.choice(vocab) for _ in range(rng.randint(1, 9))], [], doc=0) for _ in range(30)]
    counts = nu._piece_counts(tok, [s.words for s in doc])
    for i in range(len(doc)):
        left, right = nu._context_words(doc, counts, i, k=12, room=20)
        before = [(j, w) for j in range(i) for w in range(len(doc[j].words))]
        after = [(j, w) for j in range(i + 1, len(doc)) for w in range(len(doc[j].words))]
        assert left == before[len(before) - len(left):] and right == after[:len(right)]
        assert sum(counts[j][w] for j, w in left + right) <= 20
