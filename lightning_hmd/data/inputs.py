"""Model inputs from decoded samples: stored features (the one feature set a run reads), or
JPEG crops decoded, augmented for training and centre-cropped for evaluation."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lightning_hmd.data.augment import AugmentConfig, augment_clip, center_crop
from lightning_hmd.data.batch import WindowItem
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.data.stream import FeatureSetError, Read, decode_jpegs, select_features
from lightning_hmd.errors import DataError
from lightning_hmd.modes import Inputs


class ReaderError(DataError, RuntimeError):
    """The reader cannot go on (no valid sample, a missing input member, mixed encoders)."""


@dataclass(frozen=True)
class WindowMaker:
    """Turns decoded windows into model inputs: features as stored (the feature set
    ``features`` names, ``data.features``), or JPEG crops (augmented for training,
    centre-cropped for evaluation)."""

    inputs: str  # an Inputs value; stored as the Inputs member
    img_size: int
    augment: AugmentConfig | None  # None: evaluation crop
    features: str = ""  # inputs=features: the encoder id to read; "": the only set held

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", Inputs.parse(self.inputs, "data.inputs"))

    @property
    def read_features(self) -> str | None:
        """The ``features`` argument of :func:`lightning_hmd.data.stream.read_span` that
        keeps only the set this maker reads (None with images: every set kept, the extra
        ones dropped by :meth:`select`)."""
        return self.features if self.inputs == Inputs.features else None

    def select(self, sample: ClipSample) -> ClipSample:
        """The clip with only what the model reads: with features the one set of
        ``features`` (:func:`select_features`), with images no extra feature set."""
        if self.inputs == Inputs.features:
            return select_features(sample, self.features)
        return replace(sample, more_phi={}) if sample.more_phi else sample

    def check(self, read: Read) -> None:
        """Raise :class:`ReaderError` when the read cannot feed the model; otherwise leave
        on its sample only the feature set the model reads (:meth:`select`; the reader's
        samples are fresh per read, so the other sets are dropped before windows are cut
        from it and never reach a batch)."""
        s = read.sample
        member = "phi" if self.inputs == Inputs.features else "JPEG frames"
        if (s.phi if self.inputs == Inputs.features else s.jpeg) is None:
            raise ReaderError(
                f"{read.shard} [{read.key}]: data.inputs={self.inputs} but the sample has no "
                f"{member}; run `lightning-hmd data features` or change data.inputs"
            )
        try:
            chosen = self.select(s)
        except FeatureSetError as err:
            raise ReaderError(f"{read.shard} [{read.key}]: {err}") from None
        if chosen is not s:
            s.phi, s.encoder_id, s.more_phi = chosen.phi, chosen.encoder_id, chosen.more_phi

    def make(
        self,
        sample: ClipSample,
        key: str,
        start: int,
        rng: np.random.Generator | None,
        stored: np.ndarray | None = None,
    ) -> WindowItem:
        """One window's inputs; ``stored``: its JPEG crops already decoded ((T, S, S, 3)
        uint8), else they are decoded here (raising ``UndecodableFrameError``)."""
        images = None
        sample = self.select(sample)  # as it is when check() selected already
        training = self.augment is not None and rng is not None
        if self.inputs == Inputs.images:
            stored = decode_jpegs(sample.jpeg) if stored is None else stored
            if training:
                sample, images = augment_clip(sample, stored, self.augment, rng, self.img_size)
            else:
                sample, images = center_crop(sample, stored, self.img_size)
        elif training and self.augment.feature_noise > 0 and sample.phi is not None:
            phi = np.asarray(sample.phi, dtype=np.float32)
            noise = rng.normal(0.0, self.augment.feature_noise, phi.shape).astype(np.float32)
            sample = replace(sample, phi=phi + noise)
        sample = replace(sample, jpeg=None)
        return WindowItem(sample, key, start, images)
