"""Inference: the exported model behind a `Predictor` with an explicit life (`predictor`),
the loaded-model slot (`slot`) and the checks a model passes before it serves (`checks`),
the micro-batcher (`batcher`) and the decoding of outputs into answers (`decode`)."""
