"""The network's contract: shapes, causality, the surprise output, copy heads, the
optimizer groups (padding invariance against the reference: test_net_parity.py)."""

from __future__ import annotations

import pytest
import torch

from model.features import INPUT_NAMES
from model.net.config import NetConfig
from model.net.network import SeqNet, behavior_stats
from model.net.scorer import Scorer

SIZES = {"item": 50, "category": 12, "behavior": 5, "gap": 19, "hour": 25, "weekday": 8}


ENCODERS = ["transformer", "gru", "transformer+copy", "transformer+copy+stats", "gru+stats"]


def _net(encoder: str) -> SeqNet:
    """A small network; "+copy" adds the pointer heads (NetConfig.copy), "+stats" the
    prefix behavior counts (NetConfig.behavior_stats)."""
    torch.manual_seed(0)
    name, *flags = encoder.split("+")
    cfg = NetConfig(n_items=50, n_categories=12, n_gaps=19, window_len=10, d_model=16,
                    n_layers=2, n_heads=2, encoder=name, copy="copy" in flags,
                    behavior_stats="stats" in flags)
    return SeqNet(cfg).eval()


def _inputs(batch: int, length: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, SIZES[name], (batch, length), generator=g) for name in INPUT_NAMES]


@pytest.mark.parametrize("encoder", ENCODERS)
def test_output_shapes(encoder: str) -> None:
    net = _net(encoder)
    out = net(*_inputs(3, 7))
    assert out.behavior.shape == (3, 7, 4)
    assert out.purchase.shape == out.returns.shape == (3, 7)
    assert out.category.shape == (3, 7, 12)
    assert out.item.shape == (3, 7, 50)
    scored = Scorer(net).eval()(*_inputs(3, 7))
    d = net.cfg.d_model
    assert [tuple(t.shape) for t in scored] == [(3, 4), (3,), (3,), (3, 12), (3, d + 1), (3,),
                                                (3, 7), (3, 7)]
    torch.testing.assert_close(scored[0].sum(dim=1), torch.ones(3))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_later_events_do_not_change_earlier_positions(encoder: str) -> None:
    net = _net(encoder)
    x = _inputs(2, 8)
    changed = [t.clone() for t in x]
    for t, name in zip(changed, INPUT_NAMES, strict=True):
        t[:, 5:] = (t[:, 5:] % (SIZES[name] - 1)) + 1  # different, still valid
    a, b = net(*x), net(*changed)
    torch.testing.assert_close(a.behavior[:, :5], b.behavior[:, :5])
    torch.testing.assert_close(a.category[:, :5], b.category[:, :5])
    assert not torch.allclose(a.behavior[:, 5:], b.behavior[:, 5:])


def test_a_single_event_window_has_zero_surprise() -> None:
    scored = Scorer(_net("transformer")).eval()(*_inputs(2, 1))
    assert scored[-1].tolist() == [[0.0], [0.0]]


def test_batch_rows_are_independent() -> None:
    net = _net("transformer")
    x = _inputs(4, 6)
    alone = net(*[t[1:2] for t in x])
    together = net(*x)
    torch.testing.assert_close(alone.behavior, together.behavior[1:2], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("encoder", ["transformer", "transformer+copy"])
def test_surprise_is_the_negative_log_probability_of_each_event(encoder: str) -> None:
    net = _net(encoder)
    x = _inputs(1, 5)
    x = [torch.cat([torch.zeros(1, 2, dtype=torch.int64), t], dim=1) for t in x]  # 2 pads
    surprise = Scorer(net).eval()(*x)[-1][0]
    out = net(*x)
    item, category, behavior = x[0][0], x[1][0], x[2][0]
    assert item[2] > 0
    assert surprise[:3].tolist() == [0.0, 0.0, 0.0]  # padding, then the window's first event
    for t in range(3, 7):
        p_b = torch.softmax(out.behavior[0, t - 1], dim=-1)[behavior[t] - 1]
        p_c = torch.softmax(out.category[0, t - 1], dim=-1)[category[t]]
        expected = -(torch.log(p_b) + torch.log(p_c))
        torch.testing.assert_close(surprise[t], expected, atol=1e-5, rtol=1e-5)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="encoder"):
        NetConfig(n_items=5, n_categories=5, n_gaps=5, encoder="lstm")
    with pytest.raises(ValueError, match="multiple of n_heads"):
        NetConfig(n_items=5, n_categories=5, n_gaps=5, d_model=30, n_heads=4)


def test_copy_heads_put_probability_on_the_window() -> None:
    """With the gate shut on the generator, the item and category outputs are exactly the
    copy distribution: log-probabilities over the window's own rows, the floor elsewhere;
    and the last position's scores agree with the per-position mixture of forward()."""
    net = _net("transformer+copy")
    x = _inputs(2, 6)
    x = [torch.cat([torch.zeros(2, 3, dtype=torch.int64), t], dim=1) for t in x]  # 3 pads
    with torch.no_grad():
        for head in (net.item_copy, net.category_copy):
            head.gate.weight.zero_()
            head.gate.bias.fill_(-30.0)  # g = sigmoid(-30): all mass on the copy
    scored = Scorer(net).eval()(*x)
    category = scored[3]
    with torch.no_grad():  # the item head's whole-vocabulary mixture (the served reference)
        item = net.last_scores(net.encode(*x), x[0], x[1])[1]
    for row in range(2):
        for logp, ids in ((item[row], x[0][row, 3:]), (category[row], x[1][row, 3:])):
            p = logp.exp()
            torch.testing.assert_close(p.sum(), torch.tensor(1.0), atol=1e-5, rtol=0)
            inside = torch.zeros_like(p, dtype=torch.bool)
            inside[ids] = True
            assert bool((p[inside] > 1e-6).all())
            assert bool((p[~inside] < 1e-12).all())
    torch.testing.assert_close(net(*x).category[:, -1], category, atol=1e-5, rtol=1e-5)


def test_behavior_stats_count_the_prefix() -> None:
    # left padding, then view, fav, view, buy (behavior input codes are 1 + Behavior)
    stats = behavior_stats(torch.tensor([[0, 0, 1, 2, 1, 4]]))[0]
    assert stats.shape == (6, 8)
    torch.testing.assert_close(stats[:2], torch.zeros(2, 8))
    counts = torch.expm1(stats[:, :4])
    torch.testing.assert_close(counts[-1], torch.tensor([2.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(counts[3], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(stats[-1, 4:], torch.tensor([0.5, 0.25, 0.0, 0.25]))


def test_optimizer_decays_matrices_only_and_updates_the_tables_row_wise() -> None:
    net = _net("transformer+copy+stats")
    dense, rows = net.configure_optimizers(lr=1e-3, weight_decay=0.1)
    decay, no_decay = dense.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in net.named_parameters()}
    assert all(p.dim() >= 2 and "emb" not in names[id(p)] for p in decay["params"])
    assert isinstance(rows, torch.optim.SparseAdam)
    assert {names[id(p)] for p in rows.param_groups[0]["params"]} == {
        "item_emb.weight", "item_bias_rows.weight", "category_emb.weight",
        "category_bias_rows.weight"}
    assert len(decay["params"]) + len(no_decay["params"]) + 4 == len(names)
    assert net.item_bias.shape == (50,) and net.category_bias.shape == (12,)
    assert net.item_bias.data_ptr() == net.item_bias_rows.weight.data_ptr()


@pytest.mark.parametrize("encoder", ["transformer", "transformer+copy+stats"])
def test_last_target_logp_is_the_last_scores_log_softmax_at_the_target(encoder: str) -> None:
    net = _net(encoder)
    inputs = _inputs(3, 7)
    target = torch.tensor([0, 17, 49])
    with torch.no_grad():
        hidden = net.encode(*inputs)
        item, category = inputs[0], inputs[1]
        for head, window, rows in (("item", item, target), ("category", category, target % 12)):
            scores = net.last_head_scores(head, hidden, item, window).log_softmax(-1)
            expected = scores.gather(1, rows[:, None]).squeeze(1)
            torch.testing.assert_close(
                net.last_target_logp(head, hidden, item, window, rows), expected)
