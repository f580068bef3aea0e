"""3dpw converter on a fixture in 3DPW's published layout (Python 2 style pickles)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from fixtures.datasets import read_set, to_original_pixels, write_3dpw

from data_prep import threedpw
from lightning_hmd.body.model_files import load_smpl_arrays, save_npz, smpl_filename
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.commands import main
from lightning_hmd.geometry.rotations import axis_angle_to_matrix

SHIFT = np.linspace(-1, 1, 10)  # the male model's template = neutral template + S @ SHIFT


@pytest.fixture(scope="module")
def gendered_body_dir(tmp_path_factory, synthetic_body_dir):
    """The synthetic body model plus a "male" model whose shape space is the neutral one
    offset by known betas, so the neutral fit of male betas b is exactly b + SHIFT."""
    out = tmp_path_factory.mktemp("gendered")
    for f in synthetic_body_dir.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    arrays = load_smpl_arrays(out, "neutral")
    arrays["v_template"] = arrays["v_template"] + arrays["shapedirs"][..., :10] @ SHIFT
    save_npz(out / smpl_filename("male"), arrays)
    return out


def test_conversion_with_the_body_model(tmp_path, gendered_body_dir, capsys):
    src, out = tmp_path / "3DPW", tmp_path / "out"
    seqs = write_3dpw(src, {"train": ["courtyard_a"], "validation": ["b"], "test": ["c"]})
    args = ["data", "convert", "3dpw", str(src), "--out", str(out), "--no-progress",
            "--body-model-dir", str(gendered_body_dir)]  # fmt: skip
    assert main(args) == 0
    male = BodyModel.from_dir(gendered_body_dir, "male")
    for split, name in (("train", "courtyard_a"), ("val", "b"), ("test", "c")):
        samples = read_set(out / split)
        seq = seqs[name]
        # the invalid camera pose at frame 6 splits the person into two tracks
        assert [s.track_id for s in samples] == [0, 1]
        np.testing.assert_array_equal(samples[0].frame_index, np.arange(0, 6))
        np.testing.assert_array_equal(samples[1].frame_index, np.arange(7, 12))
        for s in samples:
            idx = s.frame_index
            coco = np.transpose(seq["poses2d"][0][idx], (0, 2, 1))
            kp = to_original_pixels(s)[:, list(threedpw.COCO18_TO_KEYPOINT)]
            np.testing.assert_allclose(kp[:, :14], coco[:, :14, :2], atol=1e-3)
            vis = s.kp2d[:, list(threedpw.COCO18_TO_KEYPOINT), 2]
            assert vis[:, :14].all() and not vis[:, 14:].any()  # face confidences 0.05 < 0.1
            np.testing.assert_allclose(s.betas, seq["betas"][0] + SHIFT, atol=1e-4)
            # identity camera rotation: the pose is unchanged
            np.testing.assert_allclose(s.pose, seq["poses"][0][idx], atol=1e-5)
            rot = axis_angle_to_matrix(
                torch.tensor(seq["poses"][0][idx], dtype=torch.float32).view(-1, 24, 3)
            )
            with torch.no_grad():
                posed = male(rot.view(-1, 24, 3, 3), torch.tensor(seq["betas"][0]).float())
            expected = posed.joints[:, :14].numpy() + seq["trans"][0][idx, None] + [0.1, -0.2, 0]
            np.testing.assert_allclose(s.joints3d, expected, atol=1e-5)
    assert main(["data", "check", str(out)]) == 0
    assert "OK: no problems" in capsys.readouterr().out


def test_camera_rotation_moves_pose_and_joints_together(synthetic_body_dir):
    """Joints in camera coordinates are the camera-frame pose's joints up to one offset."""
    model = BodyModel.from_dir(synthetic_body_dir)
    rng = np.random.default_rng(0)
    pose, betas, trans = rng.normal(0, 0.3, (3, 72)), rng.normal(0, 1, 10), rng.normal(0, 1, (3, 3))
    cam = np.tile(np.eye(4), (3, 1, 1))
    cam[:, :3, :3] = axis_angle_to_matrix(torch.tensor(rng.normal(0, 1, (3, 3)))).numpy()
    cam[:, :3, 3] = rng.normal(0, 1, (3, 3))
    joints = threedpw.joints_in_camera(model, pose, betas, trans, cam)
    pose_cam = threedpw.camera_frame(pose, cam)
    rot = axis_angle_to_matrix(torch.tensor(pose_cam).view(-1, 24, 3)).float()
    with torch.no_grad():
        direct = model(rot, torch.tensor(betas).float()).joints[:, :14].numpy()
    offset = joints - direct
    np.testing.assert_allclose(offset, offset[:, :1].repeat(14, 1), atol=1e-4)


def test_without_a_body_model_only_2d_is_written(tmp_path):
    src = tmp_path / "3DPW"
    write_3dpw(src, {"test": ["c"]}, n=4)
    manifests = threedpw.convert(src, tmp_path / "out", progress=False)
    assert manifests["train"].total_samples == 0
    (first, _) = read_set(tmp_path / "out" / "test")
    assert first.joints3d is None and first.pose is None
    assert "2D keypoints only" in manifests["test"].source


def test_pickles_that_run_code_are_refused(tmp_path):
    src = tmp_path / "3DPW"
    write_3dpw(src, {"test": ["c"]}, n=4)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (src / "sequenceFiles" / "test" / "c.pkl").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(ValueError, match="c.pkl: not a readable pickle.*builtins.print"):
        threedpw.convert(src, tmp_path / "out", progress=False)
