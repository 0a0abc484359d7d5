"""The exported model under ONNX Runtime: the inference path shared by the service, the
exporter's parity check and the evaluator. No PyTorch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from model.artifact import ONNX_INT8, Artifact
from model.features import Event, Features, featurize_windows

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")

Outputs = dict[str, np.ndarray]


class OnnxModel:
    """An artifact's network in an ONNX Runtime session.

    Asks for the providers in order and keeps only those this onnxruntime build has;
    `providers` tells which ones the session actually uses, so a fall-back to CPU is visible.
    """

    def __init__(
        self,
        artifact: Artifact,
        providers: Sequence[str] = PREFERRED_PROVIDERS,
        *,
        int8: bool = False,
        intra_op_threads: int = 0,
    ) -> None:
        self.artifact = artifact
        path = artifact.path / ONNX_INT8 if int8 else artifact.onnx_path
        available = set(ort.get_available_providers())
        wanted = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=wanted)
        self.providers: list[str] = self.session.get_providers()
        missing = [p for p in providers if p not in self.providers]
        if missing:
            log.warning("onnxruntime: asked for %s, running on %s", list(providers), self.providers)
        self._outputs = list(artifact.manifest.outputs)

    def run(self, features: Features) -> Outputs:
        """One model call on a featurized batch (B, T); returns every named output."""
        feeds = {name: features[name] for name in self.artifact.manifest.inputs}
        values = self.session.run(self._outputs, feeds)
        return dict(zip(self._outputs, values, strict=True))

    def featurize(self, windows: Sequence[Sequence[Event]]) -> Features:
        a = self.artifact
        return featurize_windows(windows, a.manifest.features, a.items, a.categories)

    def score(self, windows: Sequence[Sequence[Event]]) -> Outputs:
        """Raw events -> outputs, exactly as the service computes them. Windows must be
        non-empty (an empty window has no model answer: use the manifest's priors)."""
        if any(len(w) == 0 for w in windows):
            raise ValueError("every window needs at least one event")
        return self.run(self.featurize(windows))
