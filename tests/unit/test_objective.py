"""HMMR objective composition: term names, zero at ground truth, masks, gradient routing."""

from __future__ import annotations

import pytest
import torch

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.config import load_config
from lightning_hmd.data.synth.batches import smooth_poses, synthetic_mocap_batch
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.losses import weighted_sum
from lightning_hmd.models.build import build_discriminator, build_generator
from lightning_hmd.objective import (
    collect_fakes,
    discriminator_terms,
    generator_terms,
    supervised_terms,
)
from lightning_hmd.structures import GeneratorOutput, Predictions, SequenceBatch, SMPLParams

B, T, D = 2, 6, 16
OFFSETS = (-2, 3)


@pytest.fixture(scope="module")
def body(synthetic_body_dir):
    return BodyModel.from_dir(synthetic_body_dir)


@pytest.fixture(scope="module")
def gt(body):
    """A fully labelled clip pair and the camera its 2D keypoints were projected with."""
    gen = torch.Generator().manual_seed(3)
    pose = smooth_poses(B, T, gen)
    betas = 0.3 * torch.randn(B, 10, generator=gen)
    cam = torch.tensor([[1.0, 0.05, -0.1], [0.8, -0.02, 0.03]]).view(B, 1, 3).expand(B, T, 3)
    with torch.no_grad():
        joints = body(axis_angle_to_matrix(pose), betas[:, None], joints_only=True).joints
    xy = project_weak_perspective(joints, cam)
    kp2d = torch.cat([xy, torch.ones(B, T, 25, 1)], -1)
    batch = SequenceBatch(
        kp2d=kp2d,
        joints3d=joints[..., :14, :],
        pose_aa=pose,
        betas=betas,
        has_3d_joints=torch.ones(B),
        has_smpl=torch.ones(B),
        phi=torch.zeros(B, T, D),
    )
    return batch, cam


def _params(pose_aa, betas, cam):
    return SMPLParams(cam, pose_aa, axis_angle_to_matrix(pose_aa), betas)


def _shifted(x, dt):
    """x at frame t + dt for every t (edge frames repeated where t + dt leaves the clip)."""
    idx = (torch.arange(T) + dt).clamp(0, T - 1)
    return x[:, idx]


def _gt_output(batch, cam):
    betas = batch.betas[:, None].expand(B, T, 10)
    current = _params(batch.pose_aa, betas, cam)
    deltas = {dt: _params(_shifted(batch.pose_aa, dt), betas, cam) for dt in OFFSETS}
    preds = Predictions(current, deltas)
    return GeneratorOutput(batch.phi, batch.phi, preds, batch.phi.clone(), preds)


def test_supervised_terms_are_zero_at_ground_truth(body, gt):
    batch, cam = gt
    terms = supervised_terms(_gt_output(batch, cam).pred, batch, body)
    assert set(terms) == {
        f"{base}{q}" for base in ("kp2d", "joints3d", "smpl") for q in ("", "/dt-2", "/dt+3")
    }
    for name, value in terms.items():
        assert float(value) == pytest.approx(0.0, abs=1e-6), name


def test_generator_terms_names_and_fake_count(body, gt):
    batch, cam = gt
    cfg = load_config("tiny", overrides=[f"model.feat_dim={D}", "model.temporal.num_groups=4"])
    disc = build_discriminator(cfg.model)
    out = _gt_output(batch, cam)
    terms, fakes = generator_terms(out, batch, body, disc)
    hal = {k for k in terms if k.split("/")[1:2] == ["hal"]}
    assert len(hal) == 3 * (1 + len(OFFSETS))
    assert {"shape_const", "hallucinate", "shape_prior", "adv"} <= set(terms)
    assert float(terms["shape_const"]) == 0.0  # one shape per clip
    assert float(terms["hallucinate"]) == 0.0  # identical strips
    # fakes: main + deltas, twice (hallucinated): B*T*(1 + #dt)*2
    assert fakes.pose_rotmat.shape == (B * T * 3 * 2, 24, 3, 3)
    assert float(terms["shape_prior"]) == pytest.approx(float((batch.betas**2).mean()), rel=1e-5)


def test_2d_only_clips_ignore_3d_labels(body, gt):
    batch, cam = gt
    out = _gt_output(batch, cam)
    noisy = SequenceBatch(**{**batch.__dict__})
    noisy.has_3d_joints = torch.tensor([1.0, 0.0])
    noisy.has_smpl = torch.tensor([1.0, 0.0])
    noisy.joints3d = batch.joints3d.clone()
    noisy.joints3d[1, :, 0] += 2.0  # garbage on the unlabelled clip (survives pelvis alignment)
    noisy.pose_aa = batch.pose_aa.clone()
    noisy.pose_aa[1] = 0.0
    terms = supervised_terms(out.pred, noisy, body)
    for name in ("joints3d", "smpl", "joints3d/dt+3", "smpl/dt-2"):
        assert float(terms[name]) == pytest.approx(0.0, abs=1e-6), name
    # the same garbage on a labelled clip is seen: joint 0 of clip 1 off by 2 m in x, y, z
    # -> 0.5 * (3 coords * 2^2 per frame) / (2 clips * 14 joints * 3 coords) = 1/14
    noisy.has_3d_joints = torch.ones(B)
    got = float(supervised_terms(out.pred, noisy, body)["joints3d"])
    assert got == pytest.approx(1 / 14, rel=1e-4)


def test_gradients_reach_generator_and_discriminator_step_only_touches_discriminator(body, gt):
    batch, _ = gt
    cfg = load_config(
        "tiny",
        overrides=[f"model.feat_dim={D}", "model.temporal.num_groups=4", "model.delta_t=[-2,3]"],
    )
    generator = build_generator(
        cfg.model, torch.zeros(24, 3), torch.zeros(10), with_image_encoder=False
    )
    disc = build_discriminator(cfg.model)
    batch.phi = torch.randn(B, T, D)
    out = generator(phi=batch.phi)
    terms, fakes = generator_terms(out, batch, body, disc)
    weighted_sum(terms, cfg.loss.weights).backward()
    for name, p in generator.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    generator.zero_grad(set_to_none=True)
    disc.zero_grad(set_to_none=True)
    mocap = synthetic_mocap_batch(fakes.betas.shape[0], torch.Generator().manual_seed(0))
    d_terms = discriminator_terms(disc, fakes, mocap)
    assert set(d_terms) == {"disc/real", "disc/fake"}
    weighted_sum(d_terms, cfg.loss.weights).backward()
    assert all(p.grad is None for p in generator.parameters())
    assert all(p.grad is not None for p in disc.parameters())


def test_collect_fakes_without_hallucination_or_deltas(gt):
    batch, cam = gt
    out = _gt_output(batch, cam)
    out = GeneratorOutput(out.phi, out.movie_strip, Predictions(out.pred.current, {}))
    assert collect_fakes(out).pose_rotmat.shape == (B * T, 24, 3, 3)
