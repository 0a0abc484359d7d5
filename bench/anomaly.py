"""How well the anomaly score separates scripted windows from real shoppers' on a log.

    python bench/anomaly.py --artifact artifacts/taobao \
        --data ../shared/datasets/taobao_users/UserBehavior.csv --format taobao

Real windows: a seeded sample of --points test points of the log (the split the artifact
was trained with), each point's window as the service would hold it. Flagged windows: the
bots of `model.synth` (views 0-1 s apart) moved onto random ids of the artifact's catalogue,
and injected scripts on its ids - identical bursts, near-identical bursts (one item, view and
fav in turn), a crawler of random items one a second, a metronome of items every 30 s.
Scored as the service scores them (`OnnxModel` and `model.anomaly.AnomalyScorer`); prints
each group's median score and share at 0.99 or more, and the ROC AUC of real vs flagged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.anomaly import AnomalyScorer  # noqa: E402
from model.artifact import Artifact, load_artifact  # noqa: E402
from model.data import load_log  # noqa: E402
from model.features import Behavior, Event  # noqa: E402
from model.runtime import OnnxModel  # noqa: E402
from model.sequences import SplitConfig  # noqa: E402
from model.sequences import test_points as points_of  # noqa: E402
from model.synth import simulate  # noqa: E402

T0 = 1_512_200_000.0


def real_windows(artifact: Artifact, data: Path, fmt: str, n: int) -> list[list[Event]]:
    log = load_log(data, fmt, progress=False).log
    split_info = artifact.manifest.extra.get("split", {})
    split = SplitConfig(
        test_fraction=float(split_info.get("test_fraction", SplitConfig.test_fraction)),
        val_fraction=float(split_info.get("val_fraction", SplitConfig.val_fraction)),
    ).apply(log)
    m = artifact.manifest
    points = points_of(log, split, m.features.window_len, m.horizon_seconds,
                       m.return_gap_seconds).sample(n, 0)
    return [log.events(int(s), int(s + k)) for s, k in zip(points.start, points.length,
                                                             strict=True)]


def flagged_windows(artifact: Artifact, length: int) -> list[list[Event]]:
    rng = np.random.default_rng(0)
    items, cats = artifact.items.ids, artifact.categories.ids

    def any_item() -> str:
        return items[int(rng.integers(len(items)))]

    def any_category() -> str:
        return cats[int(rng.integers(len(cats)))]

    synthetic = simulate(200, seed=0)
    lg = synthetic.log
    bot_rows = np.flatnonzero(np.isin(lg.user_ids[lg.user], synthetic.bots))
    out = []
    for user in np.unique(lg.user[bot_rows]):
        ts = lg.ts[bot_rows[lg.user[bot_rows] == user]]
        for end in range(length, len(ts), 5):
            out.append([Event(any_item(), any_category(), Behavior.VIEW, float(t))
                        for t in ts[end - length : end]])
    for k in range(50):
        item, cat = any_item(), any_category()
        out.append([Event(item, cat, Behavior.VIEW, T0 + s) for s in range(length)])
        out.append([Event(item, cat, (Behavior.VIEW, Behavior.FAV)[s % 2], T0 + 2 * s)
                    for s in range(length)])
        out.append([Event(any_item(), any_category(), Behavior.VIEW, T0 + s)
                    for s in range(length)])
        out.append([Event(items[(k + s) % 50], cats[(k + s) % 5], Behavior.VIEW, T0 + 30 * s)
                    for s in range(length)])
    return out


def scores(model: OnnxModel, scorer: AnomalyScorer, windows: list[list[Event]]) -> np.ndarray:
    got = []
    for lo in range(0, len(windows), 256):
        features = model.featurize(windows[lo : lo + 256])
        _, score = scorer.scores(features, model.run(features)["event_surprise"])
        got.append(score)
    out = np.concatenate(got)
    return out[~np.isnan(out)]  # windows of one event have no score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--format", default="taobao")
    parser.add_argument("--points", type=int, default=5000)
    args = parser.parse_args()
    artifact = load_artifact(args.artifact)
    m = artifact.manifest
    model = OnnxModel(artifact)
    scorer = AnomalyScorer(m.surprise_quantiles, m.anomaly_quantiles, m.features)
    real = scores(model, scorer, real_windows(artifact, args.data, args.format, args.points))
    flagged = scores(model, scorer, flagged_windows(artifact, m.features.window_len))
    for name, s in (("real", real), ("flagged", flagged)):
        print(f"{name}: {len(s)} windows, median {np.median(s):.3f}, "
              f"share >= 0.99 {np.mean(s >= 0.99):.3f}")
    auc = roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(flagged))], np.r_[real, flagged])
    print(f"ROC AUC real vs flagged: {auc:.4f}")


if __name__ == "__main__":
    main()
