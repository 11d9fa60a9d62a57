"""The helpers of benchmarks/cpu_levers.py whose figures the benchmark README quotes."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def levers():
    spec = importlib.util.spec_from_file_location("cpu_levers", ROOT / "benchmarks" / "cpu_levers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _features(lengths):
    return [{"input_ids": [7] * n} for n in lengths]


def test_padding_table_rounds_widths_up_to_each_multiple(levers):
    rows = levers.padding_table(_features([5] * 10), batch_size=4)
    assert [(m, round(r, 6), w) for m, r, w in rows] == [(1, 1.0, 1), (8, 1.6, 1), (16, 3.2, 1), (32, 6.4, 1)]


def test_padding_grows_and_widths_shrink_with_the_multiple(levers):
    rng = random.Random(1)
    rows = levers.padding_table(_features([rng.randint(2, 90) for _ in range(500)]), batch_size=32)
    ratios, widths = [r for _, r, _ in rows], [w for _, _, w in rows]
    assert ratios[0] >= 1.0 and ratios == sorted(ratios) and ratios[-1] > ratios[0]
    assert widths == sorted(widths, reverse=True) and widths[-1] <= 3  # 90 pieces at most: widths 32, 64, 96


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cheap_dropout_keeps_each_value_with_probability_1_minus_p_and_rescales(levers, p):
    torch.manual_seed(0)
    x = torch.full((1000, 1001), 2.0)  # an odd size: the last 64-bit draw is cut
    y = levers.cheap_dropout(p).train()(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.002  # std of the rate: about 0.0005
    assert torch.allclose(y[kept], torch.tensor(2.0 / (1 - p)))
    assert abs(y.mean().item() - 2.0) < 0.01  # the expectation is kept


def test_cheap_dropout_is_seeded_and_off_in_eval_mode_or_at_p_0(levers):
    x = torch.randn(3, 7, 5)
    torch.manual_seed(3)
    a = levers.cheap_dropout(0.1).train()(x)
    torch.manual_seed(3)
    assert torch.equal(a, levers.cheap_dropout(0.1).train()(x))
    assert levers.cheap_dropout(0.1).eval()(x) is x
    assert levers.cheap_dropout(0.0).train()(x) is x


def test_step_matmul_flops_counts_every_encoder_weight_three_times(levers):
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=40)
    encoder = BertModel(config).encoder
    weights = sum(m.weight.numel() for m in encoder.modules() if isinstance(m, torch.nn.Linear))
    # forward 2 FLOPs per weight per position, backward twice that
    assert levers.step_matmul_flops(config, 10) == 3 * 2 * 10 * weights


def test_cheap_dropout_at_p_1_drops_everything(levers):
    x = torch.randn(4, 5, requires_grad=True)
    y = levers.cheap_dropout(1.0).train()(x)
    assert torch.equal(y, torch.zeros(4, 5))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(4, 5))
