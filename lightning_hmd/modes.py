"""The named modes of the configuration tree, importable from every layer.

Each mode is a ``str`` enum, so a member equals its value (``Inputs.images == "images"``):
code compares modes with plain strings, and YAML files and ``key=value`` overrides give them
as plain strings. OmegaConf reads a string into a member by the member's *name* and writes a
member back as its name (``to_container(enum_to_str=True)``), so every member is named by its
value; the config's containers (checkpoint hyper-parameters, loggers, the run's config hash)
hold those plain strings.
"""

from __future__ import annotations

from enum import Enum

from lightning_hmd.errors import ConfigError

__all__ = [
    "DiscriminatorKind",
    "Inputs",
    "LoggerKind",
    "Mode",
    "PoseRepr",
    "Schedule",
    "TemporalKind",
]


class Mode(str, Enum):
    """A mode whose members are named by their values and print as them."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def choices(cls) -> str:
        """The values, comma separated, in declaration order."""
        return ", ".join(m.value for m in cls)

    @classmethod
    def parse(cls, value: object, key: str):
        """The member equal to ``value``.

        Raises:
            ValueError: naming ``key`` (the dotted config key) and the values allowed.
        """
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"{key} must be one of {cls.choices()}, got {value!r}") from None


class Inputs(Mode):
    """``data.inputs``: what the model reads of each frame."""

    features = "features"  # precomputed phi of the image encoder
    images = "images"  # JPEG crops, encoded by the model's own image encoder


class PoseRepr(Mode):
    """``model.pose_repr``: the pose part of theta (``models/regressor.py``)."""

    axis_angle = "axis_angle"  # HMMR: 24 x 3
    rot6d = "rot6d"  # continuous 6D: 24 x 6


class Schedule(Mode):
    """``optim.schedule``: the learning-rate schedule (``train/schedule.py``)."""

    constant = "constant"  # HMMR
    cosine = "cosine"
    step = "step"


class LoggerKind(Mode):
    """``logger.kind``: the experiment logger (``train/fit.py``)."""

    wandb = "wandb"
    csv = "csv"
    tensorboard = "tensorboard"


class TemporalKind(Mode):
    """``model.temporal.kind``: the temporal encoder (``models/temporal_registry.py``)."""

    hmmr_conv = "hmmr_conv"  # HMMR: residual 1D-conv blocks
    gru = "gru"  # VIBE: a GRU over the window, residual
    tcmr = "tcmr"  # TCMR: past, future and whole-window GRUs fused by attention
    transformer = "transformer"  # self-attention with positional encoding (causal option)
    none = "none"  # single-frame: Phi = phi


class DiscriminatorKind(Mode):
    """``model.discriminator``: the adversarial prior (``models/build.py``)."""

    pose = "pose"  # HMMR: per-frame pose (and optionally shape) discriminator
    motion = "motion"  # VIBE: a GRU with attention over windows of poses
