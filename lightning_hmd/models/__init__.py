"""Networks: image encoders, temporal encoder, IEF heads, hallucinator, discriminators.

Components take explicit constructor arguments; :mod:`lightning_hmd.models.build` is the only
module that reads ``cfg.model``.
"""

from lightning_hmd.models.build import build_discriminator, build_generator
from lightning_hmd.models.discriminator import Discriminator, PoseDiscriminator, ShapeDiscriminator
from lightning_hmd.models.encoders import ImageEncoder, build_image_encoder
from lightning_hmd.models.generator import HMMRGenerator, delta_key, delta_offset
from lightning_hmd.models.hallucinator import Hallucinator
from lightning_hmd.models.regressor import DeltaHead, IEFRegressor, SMPLHead
from lightning_hmd.models.resnet_v2 import ResNetV2
from lightning_hmd.models.summary import format_parameter_counts, parameter_counts
from lightning_hmd.models.temporal import TemporalEncoder

__all__ = [
    "DeltaHead",
    "Discriminator",
    "HMMRGenerator",
    "Hallucinator",
    "IEFRegressor",
    "ImageEncoder",
    "PoseDiscriminator",
    "ResNetV2",
    "SMPLHead",
    "ShapeDiscriminator",
    "TemporalEncoder",
    "build_discriminator",
    "build_generator",
    "build_image_encoder",
    "delta_key",
    "delta_offset",
    "format_parameter_counts",
    "parameter_counts",
]
