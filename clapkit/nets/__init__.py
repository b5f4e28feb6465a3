"""Torch building blocks of CLAP: preprocessing, views, encoders, heads, losses.

Read top to bottom: :mod:`~clapkit.nets.preprocess` (pixel scaling, cropping),
:mod:`~clapkit.nets.augment` (random views), :mod:`~clapkit.nets.encoders` (input →
v_A, v_B), :mod:`~clapkit.nets.heads` (estimator, decoders), :mod:`~clapkit.nets.scl`
(the network and its config) and :mod:`~clapkit.nets.losses` (SCL and refit losses).
The one resumable training loop every network shares (seeding, checkpoints, stop
signal, progress) is :mod:`clapkit.nets.training`; its checkpoint files are
:mod:`clapkit.nets.checkpoint`.
"""

from clapkit.nets.augment import DIHEDRAL_ELEMENTS, apply_dihedral, feature_jitter, random_dihedral
from clapkit.nets.encoders import CompactEncoder, InceptionEncoder, MLPEncoder
from clapkit.nets.heads import Estimator, FeatureDecoder, ImageDecoder
from clapkit.nets.losses import (
    SCL_LOSSES,
    SCLLossWeights,
    cdf_w1_times_ce,
    contrastive_term,
    cross_entropy,
    random_partners,
    scl_loss,
    scl_loss_published,
    symmetric_cross_entropy,
)
from clapkit.nets.preprocess import center_crop, scale_pixels
from clapkit.nets.scl import NetConfig, SCLNet, build_net

__all__ = [
    "DIHEDRAL_ELEMENTS",
    "SCL_LOSSES",
    "CompactEncoder",
    "Estimator",
    "FeatureDecoder",
    "ImageDecoder",
    "InceptionEncoder",
    "MLPEncoder",
    "NetConfig",
    "SCLLossWeights",
    "SCLNet",
    "apply_dihedral",
    "build_net",
    "cdf_w1_times_ce",
    "center_crop",
    "contrastive_term",
    "cross_entropy",
    "feature_jitter",
    "random_dihedral",
    "random_partners",
    "scale_pixels",
    "scl_loss",
    "scl_loss_published",
    "symmetric_cross_entropy",
]
