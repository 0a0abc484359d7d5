"""Training: an EventLog and a time split in, a calibrated TrainedModel out (`fit`).

    config        TrainConfig and its presets
    vocab         which raw ids get their own embedding row
    batches       the indexed log, its windows, per-position targets
    dataset       what a run trains and validates on
    frequencies   output-bias start, negative-sampling proposal, priors
    inference     the batched no-grad loop over featurized windows
    validation    validation points, their losses, calibration on them
    distributed   device, DDP placement, users sharded across torchrun's ranks
    checkpoint    self-describing checkpoints and warm starts
    trained       TrainedModel
    loop          fit: the epoch loop and early stopping
"""

from model.presets import PRESETS
from model.train.config import TrainConfig
from model.train.loop import fit
from model.train.trained import TrainedModel

__all__ = ["PRESETS", "TrainConfig", "TrainedModel", "fit"]
