"""`seqcast train`'s pipeline: the manifest of the artifact it writes appears once, last and
complete, so a service watching the directory loads it once, with its metrics."""

from __future__ import annotations

import json
from pathlib import Path

from watchers import ManifestWatcher

from model.artifact import MANIFEST, ONNX_INT8, load_artifact, sha256_of
from model.data import load_log
from model.pipeline import train_artifact
from model.synth import write_csv
from model.train import TrainConfig


def test_the_manifest_is_written_once_last_and_with_the_metrics(tmp_path: Path) -> None:
    csv = tmp_path / "shoppers.csv"
    write_csv(csv, 120, 3)
    data = load_log(csv, "taobao", progress=False)
    out = tmp_path / "artifact"
    watcher = ManifestWatcher(out)
    watcher.start()
    try:
        evaluation = train_artifact(
            data, out, TrainConfig.preset("tiny", max_epochs=1), baselines=False, int8=True,
            progress=False,
        )
    finally:
        watcher.done.set()
        watcher.join()
    assert len(watcher.seen) == 1, watcher.seen
    (metrics,) = watcher.seen.values()
    assert metrics["n_test_points"] == evaluation["n_test_points"]
    assert metrics["purchase"] == json.loads(json.dumps(evaluation["model"]["purchase"]))
    manifest_mtime = (out / MANIFEST).stat().st_mtime_ns
    others = [p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST]
    assert others and all(p.stat().st_mtime_ns <= manifest_mtime for p in others)
    manifest = load_artifact(out, int8=True).manifest
    assert manifest.onnx_int8_sha256 == sha256_of(out / ONNX_INT8)
    assert "data" in manifest.extra and "split" in manifest.extra
