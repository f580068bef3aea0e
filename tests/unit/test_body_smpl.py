"""BodyModel: joints-only equals the full forward; leading dims; no body state in checkpoints."""

from __future__ import annotations

import io

import numpy as np
import pytest
import smplx
import torch
from smplx.lbs import batch_rodrigues
from torch import nn

from lightning_hmd.body import model_files
from lightning_hmd.body.smpl import BodyModel, BodyOutput, exclude_from_ddp


@pytest.fixture(scope="module")
def body(synthetic_body_dir) -> BodyModel:
    return BodyModel.from_dir(synthetic_body_dir)


def random_pose(*lead: int, scale: float = 0.6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    n = int(np.prod(lead))
    rotmat = batch_rodrigues(scale * torch.randn(n * 24, 3, generator=gen)).view(*lead, 24, 3, 3)
    betas = 1.5 * torch.randn(*lead, 10, generator=gen)
    return rotmat, betas


def test_full_forward_shapes(body):
    out = body(*random_pose(4))
    assert isinstance(out, BodyOutput)
    assert out.joints.shape == (4, 25, 3)
    assert out.smpl_joints.shape == (4, 24, 3)
    assert out.h36m_joints.shape == (4, 17, 3)
    assert out.vertices.shape == (4, 6890, 3)
    assert body.faces.shape == (13720, 3) and body.faces.dtype == torch.long


def test_joints_only_equals_full_forward(body):
    rotmat, betas = random_pose(16)
    with torch.no_grad():
        full = body(rotmat, betas)
        fast = body(rotmat, betas, joints_only=True)
    assert fast.vertices is None
    for name in ("joints", "smpl_joints", "h36m_joints"):
        diff = (getattr(full, name) - getattr(fast, name)).abs().max()
        assert diff < 1e-5, (name, diff)


def test_joints_only_gradients_match(body):
    grads = []
    for joints_only in (False, True):
        rotmat, betas = random_pose(3, seed=1)
        rotmat.requires_grad_(True)
        betas.requires_grad_(True)
        body(rotmat, betas, joints_only=joints_only).joints.square().sum().backward()
        grads.append((rotmat.grad, betas.grad))
    for full, fast in zip(*grads, strict=True):
        assert torch.isfinite(fast).all()
        torch.testing.assert_close(fast, full, atol=1e-4, rtol=1e-4)


def test_smpl_joints_are_smplx_layer_joints(body, synthetic_body_dir):
    arrays = model_files.load_smpl_arrays(synthetic_body_dir)
    layer = smplx.SMPLLayer(model_path="", data_struct=smplx.utils.Struct(**arrays))
    rotmat, betas = random_pose(2)
    with torch.no_grad():
        ref = layer(betas=betas, global_orient=rotmat[:, :1], body_pose=rotmat[:, 1:])
        out = body(rotmat, betas)
    torch.testing.assert_close(out.smpl_joints, ref.joints[:, :24])
    torch.testing.assert_close(out.vertices, ref.vertices)


def test_leading_dims_are_restored(body):
    rotmat, betas = random_pose(2, 3)
    with torch.no_grad():
        out = body(rotmat, betas)
        fast = body(rotmat, betas, joints_only=True)
        flat = body(rotmat.reshape(6, 24, 3, 3), betas.reshape(6, 10))
    assert out.joints.shape == fast.joints.shape == (2, 3, 25, 3)
    assert out.vertices.shape == (2, 3, 6890, 3)
    assert out.h36m_joints.shape == (2, 3, 17, 3)
    torch.testing.assert_close(out.joints.reshape(6, 25, 3), flat.joints)
    shared = body(rotmat, betas[:, :1], joints_only=True)  # one shape per clip, broadcast over T
    assert shared.joints.shape == (2, 3, 25, 3)


def test_single_pose_without_batch_dims(body):
    with torch.no_grad():
        out = body(torch.eye(3).expand(24, 3, 3), torch.zeros(10), joints_only=True)
    assert out.joints.shape == (25, 3) and out.smpl_joints.shape == (24, 3)


def test_rest_pose_joints_are_the_regressed_template(body, synthetic_body_dir):
    arrays = model_files.load_smpl_arrays(synthetic_body_dir)
    cocoplus = model_files.load_regressor(synthetic_body_dir, "cocoplus")
    with torch.no_grad():
        out = body(torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 10), joints_only=True)
    expected = cocoplus.astype(np.float64) @ arrays["v_template"]
    np.testing.assert_allclose(out.joints[0].numpy(), expected, atol=1e-5)


def test_bad_shapes_raise(body):
    with pytest.raises(ValueError, match=r"\(\.\.\., 24, 3, 3\)"):
        body(torch.zeros(2, 23, 3, 3), torch.zeros(2, 10))
    with pytest.raises(ValueError, match=r"\(\.\.\., 10\)"):
        body(torch.zeros(2, 24, 3, 3), torch.zeros(2, 8))


def test_without_extra_regressors_joints_fall_back_to_smpl(synthetic_body_dir):
    body = BodyModel(model_files.load_smpl_arrays(synthetic_body_dir), regressors={})
    rotmat, betas = random_pose(2)
    with torch.no_grad():
        full, fast = body(rotmat, betas), body(rotmat, betas, joints_only=True)
    assert full.joints.shape == (2, 24, 3) and full.h36m_joints is None
    torch.testing.assert_close(full.joints, full.smpl_joints)
    assert (full.joints - fast.joints).abs().max() < 1e-5


def test_from_dir_requires_explicitly_requested_regressors(synthetic_body_dir, tmp_path):
    arrays = model_files.load_smpl_arrays(synthetic_body_dir)
    model_files.save_npz(tmp_path / "SMPL_NEUTRAL.npz", arrays)
    assert BodyModel.from_dir(tmp_path).regressor_names == ()
    with pytest.raises(FileNotFoundError, match="J_regressor_cocoplus.npy"):
        BodyModel.from_dir(tmp_path, extra_regressors=("cocoplus",))
    with pytest.raises(ValueError, match="regressor 'h36m'"):
        BodyModel(arrays, {"h36m": np.zeros((17, 10))})


class Parent(nn.Module):
    def __init__(self, body: BodyModel) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)
        self.body = body


def test_body_tensors_never_enter_state_dict(body):
    parent = Parent(body)
    assert set(parent.state_dict()) == {"head.weight", "head.bias"}
    assert len(list(parent.body.buffers())) > 10  # they are still buffers (move with .to())
    buffer = io.BytesIO()
    torch.save(parent.state_dict(), buffer)
    assert buffer.tell() < 10_000
    fresh = Parent(body)
    fresh.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())), strict=True)
    torch.testing.assert_close(fresh.head.weight, parent.head.weight)


def test_exclude_from_ddp_lists_every_body_tensor(body):
    parent = Parent(body)
    parent._ddp_params_and_buffers_to_ignore = ["head.bias"]
    added = exclude_from_ddp(parent)
    body_names = {f"body.{name}" for name, _ in body.named_buffers()}
    assert set(added) == body_names
    assert {"body.smpl.v_template", "body.smpl.posedirs", "body.joint_template"} <= body_names
    assert set(parent._ddp_params_and_buffers_to_ignore) == body_names | {"head.bias"}
    assert not any(name.startswith("head.weight") for name in added)


def test_double_precision(body, synthetic_body_dir):
    body64 = BodyModel.from_dir(synthetic_body_dir, dtype=torch.float64)
    rotmat, betas = random_pose(3)
    with torch.no_grad():
        full = body64(rotmat.double(), betas.double())
        fast = body64(rotmat.double(), betas.double(), joints_only=True)
    assert fast.joints.dtype == torch.float64
    assert (full.joints - fast.joints).abs().max() < 1e-10


def test_joints_only_applies_only_the_regressors_asked_for(body):
    rotmat, betas = random_pose(5, seed=2)
    with torch.no_grad():
        every = body(rotmat, betas, joints_only=True)
        keypoints = body(rotmat, betas, joints_only=True, regressors=("cocoplus",))
        h36m = body(rotmat, betas, joints_only=True, regressors=("h36m",))
        none = body(rotmat, betas, joints_only=True, regressors=())
    assert torch.equal(keypoints.joints, every.joints) and keypoints.h36m_joints is None
    assert torch.equal(h36m.h36m_joints, every.h36m_joints)
    # without the keypoint regressor ``joints`` are SMPL's, as for a model without it
    assert torch.equal(h36m.joints, every.smpl_joints) and h36m.joints.shape == (5, 24, 3)
    assert torch.equal(none.joints, every.smpl_joints) and none.h36m_joints is None


def test_keypoints_only_gradients_equal_those_of_every_regressor(body):
    grads = []
    for regressors in (None, ("cocoplus",)):
        rotmat, betas = random_pose(4, seed=3)
        rotmat.requires_grad_(True)
        betas.requires_grad_(True)
        out = body(rotmat, betas, joints_only=True, regressors=regressors)
        out.joints.square().sum().backward()
        grads.append((rotmat.grad, betas.grad))
    for every, keypoints in zip(*grads, strict=True):
        torch.testing.assert_close(keypoints, every, atol=1e-6, rtol=1e-6)
