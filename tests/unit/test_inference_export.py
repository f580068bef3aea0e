"""Exports read back by independent readers (numpy, trimesh, the ``bvh`` parser) and checked
against the prediction they came from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.inference.export import (
    SMPL_JOINT_NAMES,
    Y_UP,
    export_bvh,
    export_obj_sequence,
    export_smpl_npz,
)
from lightning_hmd.inference.predict import TrackPrediction
from lightning_hmd.structures import SMPLParams

T = 5


@pytest.fixture(scope="module")
def track(synthetic_body_dir):
    body = BodyModel.from_dir(synthetic_body_dir)
    g = torch.Generator().manual_seed(0)
    pose = 0.3 * torch.randn(T, 24, 3, generator=g)
    pose[:, 0] = torch.tensor([np.pi, 0.0, 0.0]) + 0.2 * torch.randn(T, 3, generator=g)
    rotmat = axis_angle_to_matrix(pose)
    betas = torch.randn(1, 10, generator=g) + 0.1 * torch.randn(T, 10, generator=g)
    with torch.no_grad():
        out = body(rotmat, betas)
    translation = np.array([0.3, -0.2, 6.0]) + 0.05 * np.random.default_rng(0).normal(size=(T, 3))
    pred = TrackPrediction(
        track_id="7", frames=np.arange(10, 10 + T), box_center=np.zeros((T, 2)),
        box_scale=np.ones(T), cam=np.ones((T, 3)),
        current=SMPLParams(torch.ones(T, 3), pose, rotmat, betas), deltas={},
        joints3d=out.joints.numpy(), keypoints2d=np.zeros((T, 25, 2)),
        kps_crop=np.zeros((T, 25, 2)), translation=translation, focal=500.0,
        vertices=out.vertices.numpy(),
    )  # fmt: skip
    return pred, body


def test_smpl_npz_reproduces_the_mesh(track, tmp_path):
    pred, body = track
    export_smpl_npz(pred, tmp_path / "smpl.npz", 25.0)
    d = np.load(tmp_path / "smpl.npz")
    assert (
        d["poses"].shape == (T, 72) and d["betas"].shape == (10,) and str(d["gender"]) == "neutral"
    )
    assert float(d["mocap_framerate"]) == 25.0 and list(d["frames"]) == list(pred.frames)
    rot = axis_angle_to_matrix(torch.from_numpy(d["poses"]).float().view(T, 24, 3))
    with torch.no_grad():
        verts = body(rot, torch.from_numpy(d["betas_per_frame"]).float()).vertices.numpy()
    placed = pred.vertices + pred.translation[:, None]
    np.testing.assert_allclose(verts + d["trans"][:, None], placed, atol=1e-5)


def test_obj_frames_hold_the_placed_meshes(track, tmp_path):
    import trimesh

    pred, body = track
    paths = export_obj_sequence(pred, body.faces.numpy(), tmp_path / "mesh")
    assert [p.name for p in paths] == [f"frame{f:06d}.obj" for f in range(10, 10 + T)]
    for i, p in enumerate(paths):
        mesh = trimesh.load(p, process=False)
        np.testing.assert_allclose(mesh.vertices, pred.vertices[i] + pred.translation[i], atol=1e-5)
        np.testing.assert_array_equal(mesh.faces, body.faces.numpy())


def test_bvh_forward_kinematics_gives_the_joints(track, tmp_path):
    from bvh import Bvh

    pred, body = track
    export_bvh(pred, body, tmp_path / "s.bvh", 25.0)
    with open(tmp_path / "s.bvh") as f:
        mocap = Bvh(f.read())
    assert sorted(mocap.get_joints_names()) == sorted(SMPL_JOINT_NAMES)  # depth-first order
    assert mocap.nframes == T and mocap.frame_time == pytest.approx(0.04)
    # forward kinematics from the parsed file alone
    names = mocap.get_joints_names()
    parent = {n: mocap.joint_parent(n).name if mocap.joint_parent(n) else None for n in names}
    got = np.zeros((T, 24, 3))
    for i in range(T):
        glob, pos = {}, {}
        for n in names:
            zxy = [mocap.frame_joint_channel(i, n, c) for c in ("Zrotation", "Xrotation",
                                                                 "Yrotation")]  # fmt: skip
            local = Rotation.from_euler("ZXY", zxy, degrees=True).as_matrix()
            offset = np.array(mocap.joint_offset(n))
            if parent[n] is None:
                pos[n] = np.array([mocap.frame_joint_channel(i, n, c)
                                   for c in ("Xposition", "Yposition", "Zposition")])  # fmt: skip
                glob[n] = local
            else:
                pos[n] = pos[parent[n]] + glob[parent[n]] @ offset
                glob[n] = glob[parent[n]] @ local
        got[i] = [pos[n] for n in SMPL_JOINT_NAMES]
    # the SMPL joints of the track's mean shape, placed, in the y-up frame
    betas = pred.current.betas.mean(0, keepdim=True)
    with torch.no_grad():
        joints = body(pred.current.pose_rotmat, betas, joints_only=True).smpl_joints.numpy()
    want = (joints + pred.translation[:, None]) @ Y_UP.T
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert (want[:, 15, 1] > want[:, 0, 1]).mean() > 0.5  # y up: the head mostly above the pelvis
