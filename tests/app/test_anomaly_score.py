"""The served anomaly score flags scripted windows as well as improbable ones, on the real
demo model through real HTTP: identical bursts, random items, the generator's bots and
injected scripts stand out; ordinary synthetic shoppers (shoppers the model never saw) do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from model.artifact import load_artifact
from model.synth import simulate

pytestmark = pytest.mark.slow

T0 = 1_512_200_000


def _event(item: str, category: str, behavior: str, ts: float) -> dict[str, Any]:
    return {"item_id": item, "category_id": category, "behavior": behavior, "timestamp": ts}


def _scores(client: TestClient, windows: list[list[dict[str, Any]]]) -> np.ndarray:
    """Each window's served score, in requests of at most 1,000 events (the default limit)."""
    got: list[float] = []
    batch: list[list[dict[str, Any]]] = []
    for k, window in enumerate(windows):
        batch.append(window)
        if k + 1 == len(windows) or sum(map(len, batch)) + len(windows[k + 1]) > 1000:
            body = {"sequences": [{"events": w} for w in batch], "top_k": 1}
            r = client.post("/v1/predict", json=body)
            assert r.status_code == 200, r.text
            got += [p["anomaly"]["percentile"] for p in r.json()["predictions"]]
            batch = []
    return np.array(got)


def _synthetic_windows(length: int) -> tuple[list[list[dict[str, Any]]], list[bool]]:
    """Windows of `length` events ending every 5th event of each user of a synthetic log of
    the demo model's shop (seed 0: the same catalogue) but other shoppers (another number
    of users draws other bots, and every user after them differs), and whether each is a
    bot's."""
    s = simulate(200, seed=0)
    lg = s.log
    names = ("view", "fav", "cart", "buy")
    events = [_event(str(lg.item_ids[i]), str(lg.category_ids[c]), names[b], float(t))
              for i, c, b, t in zip(lg.item, lg.category, lg.behavior, lg.ts, strict=True)]
    starts, ends = lg.user_bounds()
    windows, bot = [], []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        is_bot = str(lg.user_ids[lg.user[start]]) in s.bots
        for last in range(start + 4, end, 5):
            windows.append(events[max(start, last + 1 - length) : last + 1])
            bot.append(is_bot)
    return windows, bot


def _scripts(artifact: Path, rng: np.random.Generator) -> list[list[dict[str, Any]]]:
    """Injected scripted windows: bursts of one event, near-identical bursts (one item,
    view and fav in turn), a crawler of random items one a second, and a metronome of
    popular-looking items every 30 s."""
    a = load_artifact(artifact)
    items, cats = a.items.ids, a.categories.ids
    out = []
    for k in range(20):
        item, cat = items[int(rng.integers(len(items)))], cats[k % len(cats)]
        out.append([_event(item, cat, "view", T0 + s) for s in range(30)])
        out.append([_event(item, cat, ("view", "fav")[s % 2], T0 + 2 * s) for s in range(30)])
        out.append([_event(items[int(rng.integers(len(items)))], cats[int(rng.integers(len(cats)))],
                           "view", T0 + s) for s in range(30)])
        out.append([_event(items[(k + s) % 50], cats[(k + s) % 5], "view", T0 + 30 * s)
                    for s in range(30)])
    return out


def test_an_identical_burst_and_random_items_score_high(
    client: TestClient, demo_artifact: Path
) -> None:
    a = load_artifact(demo_artifact)
    items, cats = a.items.ids, a.categories.ids
    burst = [_event(items[5], cats[0], "view", T0 + s) for s in range(50)]
    rng = np.random.default_rng(0)
    # Random items at a person's pace (lognormal gaps around 25 s): only the model's
    # surprise can tell.
    times = T0 + np.cumsum(np.clip(rng.lognormal(np.log(25), 0.9, 50), 1, 900)).astype(int)
    random_items = [_event(items[int(rng.integers(len(items)))],
                           cats[int(rng.integers(len(cats)))], "view", float(t)) for t in times]
    burst_score, random_score = _scores(client, [burst, random_items])
    assert burst_score >= 0.99
    assert random_score >= 0.95


def test_bots_and_scripts_stand_out_from_ordinary_shoppers(
    client: TestClient, demo_artifact: Path
) -> None:
    length = load_artifact(demo_artifact).manifest.features.window_len
    windows, bot = _synthetic_windows(length)
    scores = _scores(client, windows)
    is_bot = np.array(bot)
    people, bots = scores[~is_bot], scores[is_bot]
    scripts = _scores(client, _scripts(demo_artifact, np.random.default_rng(1)))
    assert len(bots) > 50 and len(people) > 1000
    # Ordinary windows score evenly, as the validation windows do: mostly low.
    assert np.median(people) < 0.7
    assert (people >= 0.99).mean() < 0.05
    # The generator's bots (random items, 0-1 s apart) and every injected script: flagged.
    assert (bots >= 0.99).mean() > 0.95
    assert (scripts >= 0.99).mean() > 0.95
    flagged = np.r_[bots, scripts]
    auc = roc_auc_score(np.r_[np.zeros(len(people)), np.ones(len(flagged))],
                        np.r_[people, flagged])
    assert auc >= 0.95
