"""The synthetic body model: loads in smplx, human-like geometry, sparse regressors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import smplx
import torch

from lightning_hmd.body import model_files
from lightning_hmd.body.joints import H36M_JOINT_NAMES, KEYPOINT_NAMES, SMPL_JOINT_NAMES
from lightning_hmd.body.synth import build_synthetic_arrays, write_synthetic_model


@pytest.fixture(scope="module")
def arrays(synthetic_body_dir):
    return model_files.load_smpl_arrays(synthetic_body_dir)


@pytest.fixture(scope="module")
def layer(arrays):
    return smplx.SMPLLayer(model_path="", data_struct=smplx.utils.Struct(**arrays))


def _height(vertices: torch.Tensor) -> float:
    return float(vertices[..., 1].max() - vertices[..., 1].min())


def test_plain_smplx_smpl_loads_npz(synthetic_body_dir):
    npz = synthetic_body_dir / model_files.smpl_filename("neutral")
    model = smplx.SMPL(
        model_path=str(synthetic_body_dir), data_struct=smplx.utils.Struct(**np.load(npz))
    )
    with torch.no_grad():
        out = model()
    assert out.vertices.shape == (1, 6890, 3)
    assert out.joints.shape == (1, 45, 3)  # 24 SMPL joints, then smplx's 21 vertex joints
    assert 1.6 < _height(out.vertices) < 1.8


def test_smplx_layer_joints_match_regressor(layer, arrays):
    with torch.no_grad():
        out = layer()
    expected = arrays["J_regressor"].astype(np.float64) @ arrays["v_template"]
    np.testing.assert_allclose(out.joints[0, :24].numpy(), expected, atol=1e-5)
    assert out.vertices.shape == (1, 6890, 3)


def test_meta_says_synthetic(arrays):
    assert model_files.read_meta(arrays)["source"] == model_files.SYNTHETIC_SOURCE


def test_beta0_changes_height_monotonically(layer):
    betas = torch.zeros(5, 10)
    betas[:, 0] = torch.linspace(-2, 2, 5)
    with torch.no_grad():
        verts = layer(betas=betas).vertices
    heights = [_height(v) for v in verts]
    assert all(b > a + 0.05 for a, b in itertools.pairwise(heights)), heights


def test_every_shape_direction_moves_vertices_and_joints(layer):
    betas = torch.eye(10) * 2.0
    with torch.no_grad():
        zero = layer(betas=torch.zeros(1, 10))
        out = layer(betas=betas)
    moved = (out.vertices - zero.vertices).norm(dim=-1).amax(dim=-1)  # (10,)
    assert (moved > 0.01).all(), moved
    leg_before = (zero.joints[0, 7] - zero.joints[0, 1]).norm()  # l_ankle - l_hip
    leg_after = (out.joints[2, 7] - out.joints[2, 1]).norm()
    assert leg_after > leg_before + 0.05  # beta 2 lengthens the legs


def test_write_is_deterministic(tmp_path, synthetic_body_dir):
    second = write_synthetic_model(tmp_path / "again", seed=0)
    names = sorted(p.name for p in synthetic_body_dir.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (synthetic_body_dir / name).read_bytes() == (second / name).read_bytes(), name


def test_seed_changes_pose_correctives_only():
    a, b = build_synthetic_arrays(0), build_synthetic_arrays(1)
    assert not np.array_equal(a["posedirs"], b["posedirs"])
    np.testing.assert_array_equal(a["v_template"], b["v_template"])


def test_mesh_is_closed_and_valid(arrays):
    faces = arrays["f"].astype(np.int64)
    assert faces.min() == 0 and faces.max() == 6889
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # every edge borders exactly two triangles


def test_weights_and_regressors_are_convex_and_sparse(synthetic_body_dir, arrays):
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(arrays["J_regressor"].sum(1), 1.0, atol=1e-5)
    for name, num in (("cocoplus", 25), ("h36m", 17)):
        reg = model_files.load_regressor(synthetic_body_dir, name, required=True)
        assert reg.shape == (num, 6890)
        assert (reg >= 0).all()
        np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-5)
        nnz = (reg > 0).sum(1)
        assert ((nnz >= 10) & (nnz <= 200)).all(), nnz  # centre rows: union with their mirror


def test_mean_params_are_plausible(synthetic_body_dir):
    pose, shape = model_files.load_mean_params(synthetic_body_dir)
    assert pose.shape == (72,) and shape.shape == (10,)
    # HMR's convention: the root turned by pi about x, so the mean body stands upright in
    # camera coordinates (y down), as the synthetic data's people do
    np.testing.assert_allclose(pose[:3], [np.pi, 0.0, 0.0], atol=1e-6)
    np.testing.assert_array_equal(shape, 0.0)
    assert 0 < np.abs(pose[3:]).max() < 1.0


def _check_sides(names, points):
    for name, (x, _, _) in zip(names, points, strict=True):
        if name.startswith("l_"):
            assert x > 0.02, name  # SMPL convention: +x is the body's left
        elif name.startswith("r_"):
            assert x < -0.02, name
        else:
            assert abs(x) < 0.01, name


def test_joints_lie_where_their_names_say(synthetic_body_dir, arrays):
    v = arrays["v_template"].astype(np.float64)
    kp = model_files.load_regressor(synthetic_body_dir, "cocoplus") @ v  # (25, 3)
    h36m = model_files.load_regressor(synthetic_body_dir, "h36m") @ v  # (17, 3)
    smpl = arrays["J_regressor"] @ v  # (24, 3)
    for names, points in ((KEYPOINT_NAMES, kp), (H36M_JOINT_NAMES, h36m), (SMPL_JOINT_NAMES, smpl)):
        _check_sides(names, points)
    k = {n: p for n, p in zip(KEYPOINT_NAMES, kp, strict=True)}
    assert k["head_top"][1] == kp[:, 1].max()
    assert {k["r_heel"][1], k["l_heel"][1]} == {kp[:, 1].min()}
    assert k["head_top"][1] > k["nose"][1] > k["neck"][1] > k["r_hip"][1] > k["r_knee"][1]
    assert k["r_knee"][1] > k["r_ankle"][1] > k["r_heel"][1]
    assert k["r_shoulder"][0] > k["r_elbow"][0] > k["r_wrist"][0]  # T-pose: arm along -x
    assert k["nose"][2] > k["l_ear"][2] and k["l_eye"][2] > k["l_ear"][2]  # facing +z
    assert k["l_big_toe"][2] > k["l_ankle"][2] > k["l_heel"][2]
    np.testing.assert_allclose(smpl[0], 0.0, atol=0.02)  # pelvis at the origin
