"""Length-grouped, dynamically padded batches."""
from __future__ import annotations

import random

import pytest

import ner_utils as nu


def _features(lengths):
    return [{"input_ids": [7] * n, "labels": [1] * n, "word_index": list(range(n)), "sentence": i}
            for i, n in enumerate(lengths)]


def test_each_batch_is_padded_only_to_its_longest_member():
    feats = _features([5, 3, 9, 2])
    [batch] = nu.make_batches(feats, batch_size=4, shuffle=False)
    assert batch["input_ids"].shape == (4, 9)
    assert batch["attention_mask"].sum().item() == 19
    assert batch["index"] == [2, 0, 1, 3]
    row = batch["index"].index(3)
    assert batch["labels"][row].tolist() == [1, 1] + [-100] * 7
    assert batch["word_index"][row].tolist()[2:] == [-1] * 7


def test_every_feature_is_in_exactly_one_batch_and_order_is_reproducible():
    rng = random.Random(0)
    feats = _features([rng.randint(3, 120) for _ in range(1000)])
    a = nu.make_batches(feats, batch_size=16, seed=3)
    b = nu.make_batches(feats, batch_size=16, seed=3)
    c = nu.make_batches(feats, batch_size=16, seed=4)
    assert sorted(i for batch in a for i in batch["index"]) == list(range(1000))
    assert [x["index"] for x in a] == [x["index"] for x in b]
    assert [x["index"] for x in a] != [x["index"] for x in c]
    assert max(len(x["index"]) for x in a) == 16


def test_length_grouping_cuts_padding_against_random_batches():
    rng = random.Random(1)
    lengths = [rng.randint(3, 120) for _ in range(2000)]
    grouped = nu.padding_ratio(nu.make_batches(_features(lengths), batch_size=16, seed=0))
    plain = nu.padding_ratio([nu.collate(_features(lengths[i:i + 16])) for i in range(0, 2000, 16)])
    assert grouped < 1.05 < plain


def test_pad_token_id_is_used():
    [batch] = nu.make_batches(_features([1, 3]), batch_size=2, shuffle=False, pad_token_id=99)
    assert batch["input_ids"][1].tolist() == [7, 99, 99]


@pytest.mark.real_data
def test_real_train_padding_is_near_one(real_splits, tiny):
    _, tok = tiny
    feats = nu.encode(tok, real_splits["train"], {l: i for i, l in enumerate(nu.LABELS)}, max_length=64)
    ratio = nu.padding_ratio(nu.make_batches(feats, batch_size=32, seed=0))
    to_128 = 128 * len(feats) / sum(len(f["input_ids"]) for f in feats)
    assert ratio < 1.1 and to_128 > 2.5 * ratio


def test_token_budget_batches_stay_within_budget_and_cover_everything():
    import random
    lengths = [random.Random(i).randint(3, 120) for i in range(500)]
    batches = nu.token_budget_order(lengths, max_tokens=1024)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(len(b) * max(lengths[i] for i in b) <= 1024 or len(b) == 1 for b in batches)
    assert [lengths[b[0]] for b in batches] == sorted((lengths[b[0]] for b in batches), reverse=True)
    assert nu.token_budget_order([2000, 5], 100) == [[0], [1]]  # a sentence over the budget goes alone


def test_collate_rounds_widths_up_but_never_past_the_limit():
    batch = nu.collate(_features([5, 17]), pad_to_multiple_of=16)
    assert batch["input_ids"].shape == (2, 32) and int(batch["attention_mask"].sum()) == 22
    assert nu.collate(_features([60]), pad_to_multiple_of=16, max_width=64)["input_ids"].shape == (1, 64)
    assert nu.collate(_features([62]), pad_to_multiple_of=32, max_width=64)["input_ids"].shape == (1, 64)
    assert nu.collate(_features([50]), pad_to_multiple_of=64, max_width=60)["input_ids"].shape == (1, 60)
    assert (batch["labels"][0, 5:] == -100).all() and (batch["word_index"][0, 5:] == -1).all()
