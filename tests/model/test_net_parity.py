"""Reference versus fast paths of the network, with every parameter randomised.

`SeqNet.forward` computes every head's full distribution at every position: the reference.
Training (`forward` with targets: losses gathered at the targets), the exported `Scorer`
(the last position, calibrated, plus the per-event surprise) and ONNX Runtime on the
exported file compute the same numbers another way. Every parameter is drawn at random -
biases, norms, the recency scores, the embeddings' padding rows - because zero-initialised
biases hide exactly the bugs these paths can have (a padded token that embeds to a bias,
an encoder without a mask). The same windows are scored with several amounts of left
padding, which must not change any answer.

Tolerances, all float32:
- torch vs torch (reference, loss, Scorer, other paddings): the same operations on the same
  numbers in another order or shape (a (B, T, V) softmax vs a gathered log-softmax, all
  queries' attention vs the last query's, reductions over more padded columns). Each
  differs by a few ulps of its largest intermediate (~1e-7 relative for values of order
  1-10), log() and the layer stack amplify that by at most a few tens: 1e-5 absolute and
  relative is tight enough that any real mismatch (a wrong position, a missing mask, a
  padded token leaking into the GRU state: all 1e-2 or more here) fails.
- ONNX Runtime vs torch: fused kernels (LayerNorm, GELU, MatMul+Add, GRU) with their own
  summation order; the export's own check, `model.export.PARITY_TOLERANCE` relative to
  max(1, |value|), whose docstring justifies it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from model.artifact import OUTPUT_NAMES
from model.export import PARITY_TOLERANCE, export_onnx
from model.features import INPUT_NAMES
from model.net.config import NetConfig
from model.net.network import SeqNet, Targets
from model.net.scorer import Scorer, item_vectors

SIZES = {"item": 40, "category": 12, "behavior": 5, "gap": 19, "hour": 25, "weekday": 8}
WINDOW = 10
LENGTHS = (6, 3, 1, 5)  # real events of each window; padded to 6, 8 and 10 columns
TOL = {"atol": 1e-5, "rtol": 1e-5}


def _randomised(encoder: str) -> SeqNet:
    torch.manual_seed(11)
    cfg = NetConfig(
        n_items=SIZES["item"], n_categories=SIZES["category"], n_gaps=SIZES["gap"],
        window_len=WINDOW, d_model=16, n_layers=2, n_heads=2, dropout=0.0, encoder=encoder,
        copy=True, behavior_stats=True,
    )
    net = SeqNet(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.5)
    return net.eval()


def _windows(seed: int = 3) -> list[list[Tensor]]:
    """Each window as its INPUT_NAMES rows of real events (values >= 1)."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randint(1, SIZES[name], (n,), generator=g) for name in INPUT_NAMES]
            for n in LENGTHS]


def _padded(windows: list[list[Tensor]], width: int) -> list[Tensor]:
    """The windows left-padded to width, as the (B, width) inputs."""
    return [
        torch.stack([F.pad(w[k], (width - len(w[k]), 0)) for w in windows])
        for k in range(len(INPUT_NAMES))
    ]


def _targets(x: list[Tensor]) -> Targets:
    """Next events inside each window as targets; 0/1 labels at the real positions, drawn
    from the events themselves (so they move with the padding)."""
    item, category, behavior = x[0], x[1], x[2]
    real = item > 0
    has_next = real[:, :-1] & real[:, 1:]
    none = torch.full((item.shape[0], 1), -1)

    def nxt(v: Tensor) -> Tensor:
        return torch.cat([torch.where(has_next, v[:, 1:], -1), none], dim=1)

    purchase = torch.where(real, item % 2, -1)
    returns = torch.where(real, category % 2, -1)
    return Targets(nxt(behavior - 1), nxt(category), nxt(item), purchase, returns)


def _reference_losses(net: SeqNet, x: list[Tensor], t: Targets) -> Tensor:
    """The training loss from forward's full per-position distributions."""
    ref = net(*x)
    at = t.behavior >= 0
    behavior = -ref.behavior.log_softmax(-1)[at].gather(1, t.behavior[at][:, None]).mean()
    category = -ref.category[at].gather(1, t.category[at][:, None]).mean()
    item = -ref.item[at].gather(1, t.item[at][:, None]).mean()
    binary = [F.binary_cross_entropy_with_logits(logits[y >= 0], y[y >= 0].float())
              for logits, y in ((ref.purchase, t.purchase), (ref.returns, t.returns))]
    return torch.stack([behavior, binary[0], binary[1], category, item])


def _reference_scores(net: SeqNet, x: list[Tensor]) -> dict[str, Tensor]:
    """The Scorer's outputs from forward's full per-position distributions; for the item
    head, the last position's whole-vocabulary mixture as "item"."""
    ref = net(*x)
    behavior_logp = ref.behavior.log_softmax(-1)  # (B, T, 4)
    category, behavior = x[1], x[2]
    b, t = torch.nonzero((behavior[:, :-1] > 0) & (behavior[:, 1:] > 0), as_tuple=True)
    surprise = torch.zeros(behavior.shape)
    surprise[b, t + 1] = -(behavior_logp[b, t, behavior[b, t + 1] - 1]
                           + ref.category[b, t, category[b, t + 1]])
    return {
        "behavior_probs": behavior_logp[:, -1].exp(),
        "purchase_prob": torch.sigmoid(ref.purchase[:, -1]),
        "return_prob": torch.sigmoid(ref.returns[:, -1]),
        "category_logits": ref.category[:, -1],
        "item": ref.item[:, -1].softmax(-1),
        "event_surprise": surprise,
    }


def _item_mixture(net: SeqNet, answers: dict[str, Tensor], item: Tensor) -> Tensor:
    """The item distribution over the vocabulary from the Scorer's item_query, item_gate
    and item_copy: g softmax(query . vectors) + (1 - g) copy scattered onto the window's
    rows."""
    logits = answers["item_query"] @ item_vectors(net).T  # (B, rows)
    gate = answers["item_gate"][:, None]
    copied = torch.zeros_like(logits).scatter_add(1, item, answers["item_copy"])
    return gate * logits.softmax(-1) + (1 - gate) * copied


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
def test_reference_loss_scorer_and_onnx_agree_whatever_the_padding(
    encoder: str, tmp_path: Path
) -> None:
    net = _randomised(encoder)
    scorer = Scorer(net).eval()
    export_onnx(scorer, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    windows = _windows()
    first: dict[str, Tensor] = {}
    with torch.no_grad():
        for width in (max(LENGTHS), max(LENGTHS) + 2, WINDOW):
            x = _padded(windows, width)
            targets = _targets(x)
            loss = net(*x, targets)
            torch.testing.assert_close(loss, _reference_losses(net, x, targets), **TOL)
            scored = scorer(*x)
            named = dict(zip(OUTPUT_NAMES, scored, strict=True))
            for name, ref in _reference_scores(net, x).items():
                fast = _item_mixture(net, named, x[0]) if name == "item" else named[name]
                torch.testing.assert_close(fast, ref, **TOL, msg=f"{encoder} {name} {width}")
            onnx = session.run(None, {k: v.numpy() for k, v in zip(INPUT_NAMES, x, strict=True)})
            for name, got, want in zip(OUTPUT_NAMES, onnx, scored, strict=True):
                error = np.abs(got - want.numpy()) / np.maximum(1.0, np.abs(want.numpy()))
                assert error.max() <= PARITY_TOLERANCE, (encoder, name, width, error.max())
            # Left padding changes no answer: the scores, the surprise of the real columns
            # (0 on the padding), and the loss.
            pad = width - max(LENGTHS)
            answers = dict(zip(OUTPUT_NAMES, scored, strict=True))
            answers["event_surprise"] = answers["event_surprise"][:, pad:]
            assert not scored[-1][:, :pad].any()
            assert not answers["item_copy"][:, :pad].any()
            answers["item_copy"] = answers["item_copy"][:, pad:]
            answers["loss"] = loss
            for name, value in answers.items():
                if name in first:
                    torch.testing.assert_close(value, first[name], **TOL,
                                               msg=f"{encoder} {name} padded to {width}")
                else:
                    first[name] = value
