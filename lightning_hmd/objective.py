"""HMMR's objective: every named, unweighted loss term of one generator/discriminator step.

Composes the pure losses of :mod:`lightning_hmd.losses` over a :class:`GeneratorOutput`
(HMMR's ``src/trainer_sequence_fc.py`` and ``src/ops.py``):

- per prediction source (the movie strip, and its hallucination under the ``hal`` qualifier):
  current-frame ``kp2d`` (predicted camera), ``joints3d``, ``smpl``; and for every offset Δt the
  same three under ``dt±Δt``, on the overlapping frames, with the optimal camera for 2D;
- ``shape_const`` over the main current-frame shapes; ``hallucinate`` (Phi vs Phi_hat);
- ``shape_prior`` and ``adv`` over ALL predicted shapes / poses (main, deltas, hallucinated):
  per frame for HMMR's pose discriminator, per window of T frames of one prediction source
  for VIBE's motion discriminator (``model.discriminator=motion``).

Weights are applied elsewhere, once (:func:`lightning_hmd.losses.weighted_sum`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from lightning_hmd.body.smpl import KEYPOINTS, BodyModel
from lightning_hmd.errors import ConfigError
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.losses import (
    ADV,
    DISC,
    HAL,
    HALLUCINATE,
    JOINTS3D,
    KP2D,
    SHAPE_CONST,
    SHAPE_PRIOR,
    SMPL,
    delta_kp2d_loss,
    dt_qualifier,
    gt_overlap,
    hallucination_loss,
    joints3d_loss,
    kp2d_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    pred_overlap,
    shape_constancy_loss,
    shape_prior_loss,
    smpl_loss,
    term_name,
)
from lightning_hmd.structures import (
    GeneratorOutput,
    MocapBatch,
    MocapWindows,
    Predictions,
    SequenceBatch,
    SMPLParams,
)


@dataclass
class Fakes:
    """Every predicted pose and shape, flattened for the discriminator.

    Attributes:
        pose_rotmat: (M, 24, 3, 3) with M = N·T, N = B·(1 + #Δt)·(2 if hallucinating else 1)
            windows (one per sequence and prediction source) of T frames, window-major.
        betas: (M, 10).
        seq_len: T, the frames of each window (what a motion discriminator judges).
    """

    pose_rotmat: Tensor
    betas: Tensor
    seq_len: int = 1

    def detach(self) -> Fakes:
        return Fakes(self.pose_rotmat.detach(), self.betas.detach(), self.seq_len)

    def windows(self) -> Tensor:
        """(N, T, 24, 3, 3): the poses as windows of consecutive predicted frames."""
        return rearrange(self.pose_rotmat, "(n t) j r c -> n t j r c", t=self.seq_len)


def judge_fakes(discriminator: nn.Module, fakes: Fakes) -> Tensor:
    """Logits of the fakes: (M, L) per frame, or (N, 1) per window for a discriminator that
    judges windows (``judges_windows``: VIBE's motion discriminator)."""
    if getattr(discriminator, "judges_windows", False):
        return discriminator(fakes.windows())
    return discriminator(fakes.pose_rotmat, fakes.betas)


def judge_real(discriminator: nn.Module, mocap: MocapBatch | MocapWindows) -> Tensor:
    """Logits of the mocap: single poses for a per-frame discriminator, windows of
    consecutive poses (``data.seq_len`` frames) for one that judges windows.

    Raises:
        ConfigError: mocap of the other form than the discriminator judges.
    """
    windows = getattr(discriminator, "judges_windows", False)
    if windows != isinstance(mocap, MocapWindows):
        want = "windows of consecutive poses" if windows else "single poses"
        raise ConfigError(
            f"the discriminator judges {want} but the batch's mocap is "
            f"{type(mocap).__name__} {tuple(mocap.pose_aa.shape)}: model.discriminator and "
            "the loader's mocap windows (train/data.py mocap_count) disagree"
        )
    real_rotmat = axis_angle_to_matrix(mocap.pose_aa)  # (M, 24, 3, 3) or (N, W, 24, 3, 3)
    return discriminator(real_rotmat) if windows else discriminator(real_rotmat, mocap.betas)


def all_params(out: GeneratorOutput) -> list[SMPLParams]:
    """Every prediction of ``out``: main current, main deltas, hallucinated current and deltas."""
    sources = [out.pred] + ([out.hallucinated] if out.hallucinated is not None else [])
    return [p for src in sources for p in (src.current, *src.deltas.values())]


def collect_fakes(out: GeneratorOutput) -> Fakes:
    """Concatenate all predicted poses and shapes (HMMR's
    ``HMRSequenceTrainer.compute_losses_prior``, ``src/trainer_sequence_fc.py``)."""
    params = all_params(out)
    rotmats = [rearrange(p.pose_rotmat, "b t j r c -> (b t) j r c") for p in params]
    betas = [rearrange(p.betas, "b t s -> (b t) s") for p in params]
    seq_len = params[0].betas.shape[1]
    return Fakes(torch.cat(rotmats), torch.cat(betas), seq_len)  # (M, 24, 3, 3), (M, 10)


def _frame_terms(
    params: SMPLParams, joints: Tensor, batch: SequenceBatch, gt_rotmat: Tensor, quals: tuple
) -> dict[str, Tensor]:
    """Current-frame supervision: 2D with the predicted camera, 3D joints, SMPL."""
    pred_xy = project_weak_perspective(joints, params.cam)  # (B, T, K, 2)
    return {
        term_name(KP2D, *quals): kp2d_loss(pred_xy, batch.kp2d),
        term_name(JOINTS3D, *quals): joints3d_loss(joints, batch.joints3d, batch.has_3d_joints),
        term_name(SMPL, *quals): smpl_loss(
            params.pose_rotmat, gt_rotmat, params.betas, batch.betas[:, None], batch.has_smpl
        ),
    }


def _delta_terms(
    params: SMPLParams,
    joints: Tensor,
    batch: SequenceBatch,
    gt_rotmat: Tensor,
    dt: int,
    quals: tuple,
) -> dict[str, Tensor]:
    """Prediction at t for t+dt against GT at t+dt, on the overlapping frames (optimal camera)."""
    quals = (*quals, dt_qualifier(dt))
    joints3d = joints3d_loss(
        pred_overlap(joints, dt), gt_overlap(batch.joints3d, dt), batch.has_3d_joints
    )
    smpl = smpl_loss(
        pred_overlap(params.pose_rotmat, dt),
        gt_overlap(gt_rotmat, dt),
        pred_overlap(params.betas, dt),
        batch.betas[:, None],
        batch.has_smpl,
    )
    return {
        term_name(KP2D, *quals): delta_kp2d_loss(joints, batch.kp2d, dt),
        term_name(JOINTS3D, *quals): joints3d,
        term_name(SMPL, *quals): smpl,
    }


def supervised_terms(
    preds: Predictions, batch: SequenceBatch, body: BodyModel, quals: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    """2D, 3D-joint and SMPL terms of one prediction source (current frame and every Δt)."""
    gt_rotmat = axis_angle_to_matrix(batch.pose_aa)  # (B, T, 24, 3, 3)
    cur = preds.current
    joints = body(
        cur.pose_rotmat, cur.betas, joints_only=True, regressors=KEYPOINTS
    ).joints  # (B, T, K, 3)
    terms = _frame_terms(cur, joints, batch, gt_rotmat, quals)
    for dt, params in preds.deltas.items():
        joints_dt = body(
            params.pose_rotmat, params.betas, joints_only=True, regressors=KEYPOINTS
        ).joints
        terms.update(_delta_terms(params, joints_dt, batch, gt_rotmat, dt, quals))
    return terms


def generator_terms(
    out: GeneratorOutput,
    batch: SequenceBatch,
    body: BodyModel,
    discriminator: nn.Module | None,
) -> tuple[dict[str, Tensor], Fakes]:
    """All unweighted generator terms, and the fakes for the discriminator step; without a
    discriminator (a run without the adversarial prior) no adversarial term.

    Returns:
        (terms, fakes): terms named as in :mod:`lightning_hmd.losses.weighting`; fakes with
        gradients attached (detach them for the discriminator update).
    """
    terms = supervised_terms(out.pred, batch, body)
    terms[term_name(SHAPE_CONST)] = shape_constancy_loss(out.pred.current.betas)
    if out.hallucinated is not None and out.hallucinated_strip is not None:
        terms.update(supervised_terms(out.hallucinated, batch, body, (HAL,)))
        terms[term_name(HALLUCINATE)] = hallucination_loss(out.movie_strip, out.hallucinated_strip)
    fakes = collect_fakes(out)
    terms[term_name(SHAPE_PRIOR)] = shape_prior_loss(fakes.betas)
    if discriminator is not None:
        terms[term_name(ADV)] = lsgan_generator_loss(judge_fakes(discriminator, fakes))
    return terms, fakes


def discriminator_terms(
    discriminator: nn.Module, fakes: Fakes, mocap: MocapBatch | MocapWindows
) -> dict[str, Tensor]:
    """LSGAN terms on detached fakes against mocap reals: ``disc/real``, ``disc/fake``
    (per frame, or per window with a motion discriminator: VIBE's
    ``batch_adv_disc_l2_loss``, ``lib/core/loss.py``, is the same means)."""
    real = judge_real(discriminator, mocap)
    fake = judge_fakes(discriminator, fakes.detach())
    parts = lsgan_discriminator_loss(real, fake)
    return {term_name(DISC, "real"): parts.real, term_name(DISC, "fake"): parts.fake}
