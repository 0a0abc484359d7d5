"""Choosing calibrators (`model.calibrate`) and applying them (`model.calibration`): the
choice never raises the ECE on the held-apart half, even where temperature scaling would."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.isotonic import IsotonicRegression

from model.calibrate import calibrate, halves, head_reliability, network_probabilities
from model.calibration import BinaryCalibrator, Calibrators, SoftmaxCalibrator
from model.metrics import reliability


def _held_apart_ece(logits: torch.Tensor, labels: torch.Tensor, c: Calibrators,
                    head: str) -> tuple[float, float]:
    """ECE of the held-apart half before and after `c`."""
    _, choose = halves(len(labels))
    p = network_probabilities(logits[torch.from_numpy(choose)])
    y = labels.numpy()[choose]
    return (head_reliability(p, y).ece, head_reliability(c.head(head).apply(p), y).ece)


def test_the_chooser_does_not_pick_temperature_scaling_where_it_hurts() -> None:
    """Most points are calibrated as they are (p = 0.1); a tenth are wildly overconfident
    (logit 8, yet half positive). Minimising the NLL, a temperature softens everything to
    tame the outliers and pushes the calibrated majority towards 0.5: its ECE is higher than
    doing nothing. Isotonic regression maps the outliers alone."""
    rng = np.random.default_rng(1)
    n = 4000
    outlier = rng.uniform(size=n) < 0.1
    z = np.where(outlier, 8.0, np.log(0.1 / 0.9) + rng.normal(0, 0.05, n))
    y = np.where(outlier, rng.uniform(size=n) < 0.5, rng.uniform(size=n) < 0.1)
    logits, labels = torch.tensor(z), torch.tensor(y.astype(np.int64))
    calibration = calibrate({"purchase": (logits, labels)})
    tried = calibration.candidates["purchase"]
    assert tried["temperature"] > tried["none"] + 0.02  # the data really punishes it
    assert calibration.chosen["purchase"] not in ("temperature", "none")
    before, after = _held_apart_ece(logits, labels, calibration.calibrators, "purchase")
    assert calibration.ece_before["purchase"] == pytest.approx(before)
    assert calibration.ece_after["purchase"] == pytest.approx(after)
    assert after < before / 2


def test_on_a_calibrated_head_the_choice_is_no_worse_than_none() -> None:
    """Labels drawn from the network's own probabilities: the candidates only fit noise,
    and whichever wins is no worse than the network's own on the held-apart half."""
    rng = np.random.default_rng(2)
    z = rng.normal(-1.0, 1.5, 3000)
    y = rng.uniform(size=len(z)) < 1 / (1 + np.exp(-z))
    calibration = calibrate({"return": (torch.tensor(z), torch.tensor(y.astype(np.int64)))})
    assert calibration.ece_after["return"] <= calibration.ece_before["return"]
    assert calibration.ece_before["return"] == calibration.candidates["return"]["none"]


def test_behavior_softmax_gets_temperature_and_bias_for_a_shifted_prior() -> None:
    """An overconfident network that also under-predicts class 3: temperature + per-class
    bias fixes both, and the top-label ECE on the held-apart half falls."""
    rng = np.random.default_rng(3)
    n = 4000
    true_logits = rng.normal(0, 1, (n, 4)) + np.array([2.0, 0.0, 0.0, 0.5])
    p = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    net_logits = 3.0 * (true_logits - np.array([0.0, 0.0, 0.0, 1.0]))
    calibration = calibrate({"behavior": (torch.tensor(net_logits), torch.tensor(y))})
    assert calibration.chosen["behavior"] in ("temperature", "temperature_bias")
    assert calibration.ece_after["behavior"] < calibration.ece_before["behavior"] / 2
    if calibration.chosen["behavior"] == "temperature_bias":
        assert len(calibration.calibrators.behavior.bias) == 4


def test_too_few_points_keep_the_identity() -> None:
    calibration = calibrate({"purchase": (torch.zeros(10), torch.ones(10, dtype=torch.int64))})
    assert calibration.calibrators == Calibrators()
    assert calibration.before == {} and calibration.candidates == {}


def test_the_shipped_isotonic_table_answers_like_scikit_learn() -> None:
    """The service applies the trainer's isotonic fit from its table with np.interp; that is
    scikit-learn's own prediction rule (linear between breakpoints, flat outside)."""
    rng = np.random.default_rng(4)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p**2).astype(float)
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    table = BinaryCalibrator(kind="isotonic", x=fitted.X_thresholds_.tolist(),
                             y=fitted.y_thresholds_.tolist())
    probe = np.concatenate([rng.uniform(size=200), [0.0, 1.0, -0.5, 1.5]])
    np.testing.assert_allclose(table.apply(probe), fitted.predict(probe), atol=1e-12)


def test_maps_compute_what_their_docstring_says_and_survive_the_manifest() -> None:
    p = np.array([0.02, 0.3, 0.97], dtype=np.float32)
    z = np.log(p / (1 - p)).astype(np.float64)
    platt = BinaryCalibrator(kind="platt", temperature=2.0, bias=-0.5)
    np.testing.assert_allclose(platt.apply(p), 1 / (1 + np.exp(-(z / 2.0 - 0.5))), rtol=1e-6)
    probs = np.array([[0.7, 0.1, 0.1, 0.1]])
    soft = SoftmaxCalibrator(kind="temperature_bias", temperature=2.0, bias=[0, 0, 0, 1.0])
    want = np.exp(np.log(probs) / 2 + [0, 0, 0, 1.0])
    np.testing.assert_allclose(soft.apply(probs), want / want.sum(), rtol=1e-9)
    c = Calibrators.model_validate({"behavior": soft, "purchase": platt, "return": platt})
    again = Calibrators.model_validate_json(c.model_dump_json(by_alias=True))
    assert again == c and again.return_.kind == "platt"
    outputs = {"purchase_prob": p, "category_logits": np.ones(3, dtype=np.float32)}
    served = c.apply(outputs)
    assert served["purchase_prob"].dtype == np.float32
    assert served["category_logits"] is outputs["category_logits"]
    with pytest.raises(ValueError, match="isotonic"):
        BinaryCalibrator(kind="isotonic", x=[0.5], y=[0.5])
    assert reliability(np.array([0.5]), np.array([1])).ece == pytest.approx(0.5)
