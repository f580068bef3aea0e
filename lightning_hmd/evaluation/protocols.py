"""Named evaluation protocols: the rules that turn per-frame predictions into reported numbers.

Papers of the field score "the same" metrics under different rules (which frames count, how
predictions are windowed, whether joints are pelvis-aligned before acceleration, how frames
are averaged), and the numbers are not comparable across rules. A :class:`Protocol` names one
set of rules; :data:`PROTOCOLS` holds those of the original codebases, each rule written out
in its ``card``, which every result file carries.

- ``hmmr``: akanazawa/human_dynamics, ``src/evaluation/eval.py``, ``eval_util.py`` and
  ``tester.py`` (``Tester.predict_all_images``).
- ``vibe``: mkocabas/VIBE, ``eval.py``, ``lib/core/evaluate.py`` (``Evaluator``),
  ``lib/utils/eval_utils.py`` and ``lib/dataset/dataset_3d.py`` (``split_into_chunks``).
- ``tcmr``: hongsukchoi/TCMR_RELEASE, ``evaluate.py`` and ``lib/data_utils/_img_utils.py``
  (``split_into_chunks`` with ``stride=1``).

All three use the 14 LSP joints with the pelvis at the middle of the hips (LSP indices 2, 3)
and report millimetres; the 3D joints are the body model's LSP regressor on both sides (the
ground truth as the shards store it), so the joint definition is the same for every model
scored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from lightning_hmd.errors import ConfigError


class Windowing(str, Enum):
    """How a temporal model's per-frame predictions are made (:mod:`.windows`)."""

    CENTRE = "centre"  # HMMR: overlapping windows, each frame from a window's centre
    CHUNKS = "chunks"  # VIBE: non-overlapping windows, the tail that fills none dropped
    SLIDING = "sliding"  # TCMR: one window per frame with the frame in the middle


class Averaging(str, Enum):
    VIDEO = "video"  # mean per video (all its tracks pooled), then mean over videos
    FRAME = "frame"  # every scored frame of every track pooled


class Frame(str, Enum):
    """The joints temporal metrics (acceleration, velocity, jerk) are computed on."""

    RAW = "raw"  # as predicted / as labelled (HMMR: GT keeps its camera-frame trajectory)
    PELVIS = "pelvis"  # each frame pelvis-aligned first


# Metric names, units and meaning (the same in every protocol; the card says which apply).
METRIC_DOC = {
    "mpjpe": "mm, mean per-joint position error after pelvis alignment",
    "pa_mpjpe": "mm, MPJPE after similarity Procrustes (scale, rotation, translation)",
    "pve": "mm, per-vertex error of the posed mesh, no alignment (frames with SMPL labels)",
    "pve_tpose": "mm, per-vertex error of the zero-pose mesh (shape only; HMMR mesh_tpose)",
    "kp": "px, 2D keypoint error over visible keypoints",
    "kp_pa": "px, 2D keypoint error after the optimal 2D scale and translation",
    "pck": "fraction of visible keypoints within 0.05 x img_size px after that 2D fit",
    "accel": "mm/frame^2, magnitude of the predicted joints' acceleration (no GT)",
    "accel_error": "mm/frame^2, |accel_pred - accel_gt| mean over joints",
    "vel_error": "mm/frame, |velocity_pred - velocity_gt| mean over joints",
    "jitter": "mm/frame^3, magnitude of the predicted joints' jerk (third difference)",
}


@dataclass(frozen=True)
class Protocol:
    """One set of scoring rules.

    Attributes:
        name: the protocol's name (``eval.protocol``, ``--protocol``).
        windowing: how predictions are windowed (:class:`Windowing`).
        min_visible_3d: 3D metrics count only frames with more than this many of the 14 LSP
            keypoints visible (the sum of their visibilities), and a temporal window is
            dropped when one of its frames does not; None: every frame counts.
        min_visible_2d: 2D metrics count frames with at least this many visible keypoints.
        averaging: :class:`Averaging`.
        temporal_frame: joints of the temporal metrics (:class:`Frame`).
        concatenated_accel: ``accel`` and ``accel_error`` over each dataset's tracks
            concatenated into one stream (windows cross track boundaries), as VIBE's evaluator.
        metrics: the metrics reported, in order (Δt errors come after them).
        card: every rule in words, written into each result file.
    """

    name: str
    windowing: Windowing
    min_visible_3d: int | None
    min_visible_2d: int
    averaging: Averaging
    temporal_frame: Frame
    concatenated_accel: bool
    metrics: tuple[str, ...]
    card: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict:
        """``{"name": ..., "card": {...}}`` for result files and run summaries."""
        return {"name": self.name, "card": dict(self.card)}


_TEMPORAL = ("accel", "accel_error", "vel_error", "jitter")

HMMR = Protocol(
    name="hmmr",
    windowing=Windowing.CENTRE,
    min_visible_3d=6,
    min_visible_2d=6,
    averaging=Averaging.VIDEO,
    temporal_frame=Frame.RAW,
    concatenated_accel=False,
    metrics=("mpjpe", "pa_mpjpe", "pve", "pve_tpose", "kp", "kp_pa", "pck", *_TEMPORAL),
    card={
        "source": "akanazawa/human_dynamics src/evaluation/eval.py, eval_util.py, tester.py",
        "joints": "14 LSP joints; pelvis = mid-hip (LSP 2, 3); mpjpe after pelvis alignment, "
        "pa_mpjpe after similarity Procrustes",
        "visibility": "3D metrics (mpjpe, pa_mpjpe, pve, pve_tpose) only on frames whose 14 LSP "
        "keypoint visibilities sum to more than 6; a temporal window (accel_error, vel_error) "
        "is dropped when one of its frames fails that; 2D metrics (kp, kp_pa, pck) on frames "
        "with at least 6 visible keypoints",
        "windowing": "Tester.predict_all_images: windows of T = data.seq_len frames starting "
        "m frames before the track, m = half the receptive field (at most (T-1)//2), sliding "
        "by T - 2m; each frame's prediction from the centre T - 2m outputs of its window; "
        "frames before/after the track are blank images (zero in [-1, 1]) through the image "
        "encoder, or with precomputed features the track's first/last frame repeated; chunks "
        "of a track are joined first, so a track is predicted as a whole",
        "averaging": "per video (dataset, sequence: all its tracks' frames pooled), then the "
        "mean over videos (mean_of_dict_values); the headline over every video of every set, "
        "by_dataset per set",
        "accel": "accel = mean magnitude of the predicted joints' second difference (the column "
        "HMMR's print_summary prints as accel), every window of each track, no GT",
        "accel_error": "raw joints, no alignment (predictions have no translation, the GT "
        "keeps its trajectory), per track, windows touching a failing frame dropped",
        "vel_error, jitter": "raw joints as accel_error (vel_error drops windows touching a "
        "failing frame); jitter is the predicted joints' third difference, every window",
        "pve": "posed meshes of predicted and GT SMPL parameters (GT shape per track), no "
        "alignment; pve_tpose the zero-pose meshes (mesh_posed, mesh_tpose)",
        "delta_t": "mpjpe_dt+k / pa_mpjpe_dt+k: the pose predicted at t for t+k against the GT "
        "at t+k, on target frames that pass the visibility rule",
        "units": "mm, px, mm/frame^2, mm/frame, mm/frame^3 (HMMR prints metres; x1000)",
    },
)

# VIBE's and TCMR's evaluations share their joints, frames and meshes (TCMR is built on
# VIBE's code); they differ in windowing, averaging details and where acceleration is taken.
_VIBE_LIKE = {
    "joints": "14 LSP joints (their code: J_regressor_h36m then H36M_TO_J14; here the shards' "
    "LSP-14 definition on both sides); pelvis = mid-hip (LSP 2, 3); mpjpe after pelvis "
    "alignment, pa_mpjpe after similarity Procrustes",
    "visibility": "none: every frame of every track counts",
    "vel_error, jitter": "pelvis-aligned joints, within each track",
    "pve": "posed meshes of predicted and GT SMPL parameters, no alignment",
    "delta_t": "mpjpe_dt+k / pa_mpjpe_dt+k between scored frames",
    "units": "mm, mm/frame^2, mm/frame, mm/frame^3",
}

VIBE = Protocol(
    name="vibe",
    windowing=Windowing.CHUNKS,
    min_visible_3d=None,
    min_visible_2d=6,
    averaging=Averaging.FRAME,
    temporal_frame=Frame.PELVIS,
    concatenated_accel=True,
    metrics=("mpjpe", "pa_mpjpe", "pve", *_TEMPORAL),
    card={
        "source": "mkocabas/VIBE eval.py, lib/core/evaluate.py (Evaluator), "
        "lib/utils/eval_utils.py, lib/dataset/dataset_3d.py (split_into_chunks)",
        **_VIBE_LIKE,
        "windowing": "non-overlapping windows of T = data.seq_len frames per track (VIBE: "
        "16, overlap 0 at test time); the frames after the last whole window are dropped, "
        "tracks shorter than T are dropped",
        "averaging": "every scored frame pooled (np.mean over the concatenated predictions)",
        "accel": "accel and accel_error on pelvis-aligned joints over each dataset's tracks "
        "concatenated in key order, so the windows that straddle two tracks count (as "
        "VIBE's evaluator, which concatenates every batch)",
    },
)

TCMR = Protocol(
    name="tcmr",
    windowing=Windowing.SLIDING,
    min_visible_3d=None,
    min_visible_2d=6,
    averaging=Averaging.FRAME,
    temporal_frame=Frame.PELVIS,
    concatenated_accel=False,
    metrics=("mpjpe", "pa_mpjpe", "pve", *_TEMPORAL),
    card={
        "source": "hongsukchoi/TCMR_RELEASE evaluate.py, lib/data_utils/_img_utils.py "
        "(split_into_chunks, stride 1)",
        **_VIBE_LIKE,
        "windowing": "one window of T = data.seq_len frames per frame (TCMR: 16, stride 1) with "
        "the frame at position T // 2; the first T // 2 and last T - T // 2 - 1 frames, which "
        "no such window holds, from a window of that frame repeated T times; tracks shorter "
        "than T are dropped",
        "averaging": "every scored frame pooled (per-track arrays concatenated, then the mean)",
        "accel": "accel and accel_error on pelvis-aligned joints within each track (its first "
        "and last frame have none)",
    },
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (HMMR, VIBE, TCMR)}
DEFAULT_PROTOCOL = HMMR.name


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"unknown evaluation protocol {name!r}; available: {', '.join(PROTOCOLS)}"
        ) from None
