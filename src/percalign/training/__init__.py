"""Small-scale model zoo: the paper's training recipes on laptop-sized data.

Recipes: standard, adversarial (PGD L2 / Linf), TRADES, SimCLR (optionally with adversarial
views) and supervised training with SimCLR augmentations; architectures scaled to small
images; checkpoints saved to the zoo and loadable by name everywhere.
"""

from percalign.models.archs import ARCHS, build_arch
from percalign.training.config import RECIPES, TrainConfig
from percalign.training.trainer import EpochReport, evaluate, train
from percalign.training.zoo import read_meta, save_checkpoint, zoo_dir

__all__ = [
    "ARCHS",
    "RECIPES",
    "EpochReport",
    "TrainConfig",
    "build_arch",
    "evaluate",
    "read_meta",
    "save_checkpoint",
    "train",
    "zoo_dir",
]
