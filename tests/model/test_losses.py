"""The item and category heads' training loss: the sampled softmax against the full one,
and the row-wise update of the tables it reads."""

from __future__ import annotations

import torch

from model.net.config import NetConfig
from model.net.losses import Negatives, target_logp
from model.net.network import SeqNet, Targets
from model.train.config import TrainConfig
from model.train.frequencies import Proposal
from model.train.loop import Optimizer


def _layer(vocab: int, n: int, d: int = 4) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    query = torch.randn(n, d, generator=g)
    table = torch.randn(vocab, d, generator=g)
    bias = torch.randn(vocab, 1, generator=g)
    target = torch.randint(0, vocab, (n,), generator=g)
    return query, table, bias, target


def test_the_sampled_normaliser_is_unbiased_for_the_full_softmax() -> None:
    """1 / p_sampled(target) = Z_hat / exp(s_target), and Z_hat is an importance-sampling
    estimate of the full normaliser: over many draws its mean is 1 / p_full(target). The
    proposal is far from the softmax, so without the logQ correction the mean would be off
    by far more than the 3% allowed (without it: 170% here)."""
    vocab = 7
    query, table, bias, target = _layer(vocab, n=5)
    full = target_logp(query, table, bias, target, None)
    counts = torch.arange(1, vocab + 1, dtype=torch.float64)
    proposal = Proposal(torch.arange(vocab).repeat_interleave(counts.long()).numpy(), vocab,
                        torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    draws = torch.stack([target_logp(query, table, bias, target, proposal.sample(16, gen))
                         for _ in range(2_000)])  # (draws, N)
    torch.testing.assert_close(torch.exp(-draws).mean(0), torch.exp(-full), rtol=0.03, atol=0)
    assert bool((draws.mean(0) > full).all())  # Jensen: log of an unbiased Z_hat is low


def test_every_row_as_a_negative_once_is_the_full_softmax() -> None:
    vocab = 6
    query, table, bias, target = _layer(vocab, n=4)
    every = torch.arange(vocab)
    uniform = Negatives(every, torch.full((vocab,), -torch.log(torch.tensor(6.0)).item()))
    torch.testing.assert_close(target_logp(query, table, bias, target, uniform),
                               target_logp(query, table, bias, target, None))


def test_a_sampled_step_updates_only_the_rows_it_read() -> None:
    """Rows of the item and category tables that are neither in the batch's windows, its
    targets nor its negatives (for the output biases: neither targets nor negatives) are
    bit-identical after a step; the rows read moved. A dense AdamW step would move every
    row (its moments are dense)."""
    torch.manual_seed(0)
    net = SeqNet(NetConfig(n_items=200, n_categories=40, n_gaps=19, window_len=6, d_model=16,
                           n_layers=1, n_heads=2, copy=True, behavior_stats=True))
    optimizer = Optimizer.of(net, TrainConfig.preset("tiny", warmup_steps=1))
    g = torch.Generator().manual_seed(2)
    item = torch.randint(1, 30, (4, 6), generator=g)
    category = torch.randint(1, 8, (4, 6), generator=g)
    other = [torch.randint(1, 5, (4, 6), generator=g) for _ in range(4)]
    targets = Targets(torch.randint(0, 4, (4, 6), generator=g),
                      torch.randint(1, 8, (4, 6), generator=g),
                      torch.randint(30, 40, (4, 6), generator=g),
                      torch.randint(0, 2, (4, 6), generator=g),
                      torch.randint(0, 2, (4, 6), generator=g))
    item_negatives = Negatives(torch.tensor([50, 60, 61]), torch.full((3,), -5.0))
    category_negatives = Negatives(torch.tensor([20, 21]), torch.full((2,), -3.0))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for _ in range(2):  # the second step also runs on moments the first one left
        loss = net(item, category, *other, targets, item_negatives, category_negatives)
        optimizer.step(loss.sum(), net.parameters(), grad_clip=1.0)
    scored_items = torch.cat([targets.item.flatten(), item_negatives.rows])
    scored_categories = torch.cat([targets.category.flatten(), category_negatives.rows])
    for name, read in (("item_emb.weight", torch.cat([item.flatten(), scored_items])),
                       ("item_bias_rows.weight", scored_items),
                       ("category_emb.weight", torch.cat([category.flatten(), scored_categories])),
                       ("category_bias_rows.weight", scored_categories)):
        untouched = torch.ones(len(before[name]), dtype=torch.bool)
        untouched[read] = False
        after = dict(net.named_parameters())[name].detach()
        assert torch.equal(after[untouched], before[name][untouched]), name
        moved = (after[read.unique()] != before[name][read.unique()]).any(-1)
        assert bool(moved.all()), name
