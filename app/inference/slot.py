"""The loaded-model slot: one artifact, opened in ONNX Runtime with its item index (memory
-mapped, `model.retrieval.ItemIndex`) and checked, swapped as a whole.

A new artifact becomes a `LoadedModel` only through `load_model`, which refuses (with
`ArtifactRejected` and the reason) any artifact that fails to load, to open or its checks.
The reason a client reads names no directory; the log gets the whole error.
With `int8` the slot serves the artifact's quantized sibling, verified by its own checksum.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.errors import ArtifactRejected
from app.inference.checks import check_model
from model.anomaly import AnomalyScorer
from model.artifact import MANIFEST, Artifact, ArtifactError, load_artifact
from model.retrieval import ItemIndex
from model.runtime import OnnxModel

Signature = tuple[int, int, int]


def manifest_signature(artifact_dir: Path) -> Signature | None:
    """What changes when a new manifest is written (it is written last, by rename)."""
    try:
        st = (artifact_dir / MANIFEST).stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True)
class LoadedModel:
    """One loaded artifact: swapped as a whole, never mutated."""

    model: OnnxModel
    items: ItemIndex
    signature: Signature | None
    loaded_at: datetime
    anomaly: AnomalyScorer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        manifest = self.artifact.manifest
        object.__setattr__(self, "anomaly", AnomalyScorer(
            manifest.surprise_quantiles, manifest.anomaly_quantiles, manifest.features))

    @property
    def artifact(self) -> Artifact:
        return self.model.artifact

    @property
    def version(self) -> str:
        return self.artifact.manifest.model_version

    @property
    def onnx_file(self) -> str:
        """The model file served: model.onnx, or model.int8.onnx (SEQCAST_INT8)."""
        return self.model.path.name

    @property
    def provider(self) -> str:
        return self.model.providers[0]

    @property
    def on_cpu(self) -> bool:
        return self.provider == "CPUExecutionProvider"


def _rejected(artifact_dir: Path, what: str, exc: Exception) -> ArtifactRejected:
    """The refusal: the log reads the whole error; a client reads it without the artifact
    directory's path (the names of the files in it stay)."""
    text = str(exc)
    for prefix in (f"{artifact_dir}: ", f"{artifact_dir}{os.sep}", str(artifact_dir)):
        text = text.replace(prefix, "")
    return ArtifactRejected(f"{what} ({artifact_dir}): {exc}", public_message=f"{what}: {text}")


def load_model(
    artifact_dir: Path, providers: Sequence[str], threads: int, *, int8: bool = False
) -> LoadedModel:
    """Load, open and check the artifact in `artifact_dir` (blocking: run it off the loop);
    `int8` opens its model.int8.onnx instead of model.onnx."""
    signature = manifest_signature(artifact_dir)
    try:
        artifact = load_artifact(artifact_dir, verify=True, int8=int8)
    except (ArtifactError, OSError, KeyError, TypeError, ValueError) as exc:
        raise _rejected(artifact_dir, "cannot load the artifact", exc) from exc
    try:
        model = OnnxModel(artifact, providers, int8=int8, intra_op_threads=threads)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise _rejected(artifact_dir, "onnxruntime cannot open the model", exc) from exc
    try:
        items = ItemIndex.open(artifact, threads)
    except Exception as exc:  # numpy, onnxruntime and faiss raise their own exception types
        raise _rejected(artifact_dir, "cannot open the item index", exc) from exc
    try:
        check_model(model, items)
    except ArtifactRejected:
        raise
    except Exception as exc:  # a model that fails to run is refused, whatever the error
        raise _rejected(artifact_dir, "the model fails on check windows", exc) from exc
    return LoadedModel(model, items, signature, datetime.now(UTC))
