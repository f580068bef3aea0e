"""The synthetic dataset: determinism, label consistency, rendering, resume, CLI."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace

import numpy as np
import pytest
import torch

from lightning_hmd.body.joints import SMPL_JOINT_NAMES
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.commands import main
from lightning_hmd.data.check import check_shards
from lightning_hmd.data.manifest import read_manifest
from lightning_hmd.data.synth import make as make_mod
from lightning_hmd.data.synth import motion as motion_mod
from lightning_hmd.data.synth.make import make_synthetic_dataset, pose_motion, project
from lightning_hmd.data.synth.motion import make_motion
from lightning_hmd.data.synth.spec import SynthSpec
from lightning_hmd.geometry.rotations import axis_angle_to_matrix

SPEC = SynthSpec(clips=3, val_clips=1, test_clips=1, frames=12, mocap=30, render=False)


def members(tar_path):
    with tarfile.open(tar_path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def npy(data):
    return np.load(io.BytesIO(data), allow_pickle=False)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, synthetic_body_dir):
    a = make_synthetic_dataset(tmp_path / "a", SPEC, synthetic_body_dir, progress=False)
    b = make_synthetic_dataset(tmp_path / "b", SPEC, synthetic_body_dir, progress=False)
    c = make_synthetic_dataset(
        tmp_path / "c", replace(SPEC, seed=1), synthetic_body_dir, progress=False
    )
    for name in ("train", "val", "test", "mocap"):
        assert [s.sha256 for s in a[name].shards] == [s.sha256 for s in b[name].shards]
        assert [s.sha256 for s in a[name].shards] != [s.sha256 for s in c[name].shards]
    assert a["train"].total_samples == 3 and a["mocap"].total_samples == 30
    assert check_shards(tmp_path / "a").ok


def test_labels_agree_with_the_body_model(tmp_path, synthetic_body_dir):
    make_synthetic_dataset(tmp_path, SPEC, synthetic_body_dir, progress=False)
    m = members(tmp_path / "train" / "train-000000.tar")
    key = sorted(m)[0].split(".")[0]
    pose, betas = npy(m[f"{key}.pose.npy"]), npy(m[f"{key}.betas.npy"])
    joints3d = npy(m[f"{key}.joints3d.npy"])
    body = BodyModel.from_dir(synthetic_body_dir)
    t = len(pose)
    with torch.no_grad():
        out = body(
            axis_angle_to_matrix(torch.from_numpy(pose).view(t, 24, 3)),
            torch.from_numpy(betas).expand(t, -1),
        )
    lsp = out.joints[:, :14].numpy()
    # equal up to the per-frame translation
    rel = lambda j: j - j[:, 2:4].mean(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(rel(joints3d), rel(lsp), atol=1e-4)
    # pose within the limits: knees bend one way only
    assert (pose.reshape(t, 24, 3)[:, [4, 5], 0] >= -1e-6).all()


def test_keypoints_map_back_to_the_projection(tmp_path, synthetic_body_dir):
    spec = replace(SPEC, kp_noise=0.0, occlusion=0.0)
    make_synthetic_dataset(tmp_path, spec, synthetic_body_dir, progress=False)
    m = members(tmp_path / "val" / "val-000000.tar")
    key = sorted(m)[0].split(".")[0]
    kp = npy(m[f"{key}.kp2d.npy"])
    box = npy(m[f"{key}.crop_box.npy"])
    # crop-normalised -> original pixels: x = x0 + (x_norm + 1) / 2 * (x1 - x0)
    xy = box[:, None, :2] + (kp[..., :2] + 1) / 2 * (box[:, None, 2:] - box[:, None, :2])
    rng = np.random.default_rng([spec.seed, 1, 0])
    motion = make_motion(spec.frames, rng, spec.fps)
    posed = pose_motion(BodyModel.from_dir(synthetic_body_dir), motion)
    want = project(posed.keypoints, spec.focal, spec.image_size)
    vis = kp[..., 2] > 0
    assert vis.mean() > 0.5
    assert np.abs(xy - want)[vis].max() < 0.05


def test_interrupted_run_resumes_to_the_same_bytes(tmp_path, synthetic_body_dir, monkeypatch):
    spec = replace(SPEC, clips=5, shard_size=2)
    whole = make_synthetic_dataset(tmp_path / "whole", spec, synthetic_body_dir, progress=False)
    real = make_mod.make_track
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(make_mod, "make_track", failing)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_dataset(tmp_path / "cut", spec, synthetic_body_dir, progress=False)
    assert not (tmp_path / "cut" / "train" / "manifest.json").exists()
    assert not list((tmp_path / "cut" / "train").glob("*.tmp"))
    monkeypatch.setattr(make_mod, "make_track", real)
    again = make_synthetic_dataset(tmp_path / "cut", spec, synthetic_body_dir, progress=False)
    for name in whole:
        assert again[name].to_json() == whole[name].to_json()
    assert check_shards(tmp_path / "cut").ok


def test_cli_writes_checked_sets_and_the_body_model(tmp_path, capsys):
    args = [
        "data",
        "synth",
        "--out",
        str(tmp_path),
        "--clips",
        "2",
        "--val-clips",
        "1",
        "--test-clips",
        "1",
        "--frames",
        "10",
        "--mocap",
        "20",
        "--no-render",
        "--no-progress",
    ]
    assert main(args) == 0
    assert "synthetic data written" in capsys.readouterr().out
    assert (tmp_path / "body_model" / "SMPL_NEUTRAL.npz").is_file()
    assert read_manifest(tmp_path / "train").total_samples == 2
    assert main(["data", "check", str(tmp_path)]) == 0


def test_rendered_silhouette_matches_the_projected_mesh(offscreen_gl, synthetic_body_dir):
    from lightning_hmd.data.synth.render import BodyRenderer

    body = BodyModel.from_dir(synthetic_body_dir)
    spec = SynthSpec()
    motion = make_motion(3, np.random.default_rng(5), 30.0)
    posed = pose_motion(body, motion)
    renderer = BodyRenderer(body.faces.numpy(), spec.image_size, spec.focal)
    try:
        bg = np.zeros((spec.image_size, spec.image_size, 3), np.uint8)
        image, mask = renderer.render(posed.vertices[0], np.array([0.8, 0.7, 0.6]), bg)
    finally:
        renderer.close()
    uv = project(posed.vertices[0], spec.focal, spec.image_size)
    ys, xs = np.nonzero(mask)
    assert abs(xs.min() - uv[:, 0].min()) <= 1.0 and abs(xs.max() - uv[:, 0].max()) <= 1.0
    assert abs(ys.min() - uv[:, 1].min()) <= 1.0 and abs(ys.max() - uv[:, 1].max()) <= 1.0
    assert (image[mask].sum(-1) > 0).all() and (image[~mask] == 0).all()
    # every projected vertex falls on (or next to) a covered pixel
    px = np.clip(np.round(uv).astype(int), 0, spec.image_size - 1)
    near = (
        mask
        | np.roll(mask, 1, 0)
        | np.roll(mask, -1, 0)
        | np.roll(mask, 1, 1)
        | np.roll(mask, -1, 1)
    )
    assert near[px[:, 1], px[:, 0]].mean() > 0.99


def test_rendered_dataset_passes_check(offscreen_gl, tmp_path, synthetic_body_dir):
    spec = replace(SPEC, render=True, clips=2)
    make_synthetic_dataset(tmp_path, spec, synthetic_body_dir, progress=False)
    m = members(tmp_path / "train" / "train-000000.tar")
    frames = read_manifest(tmp_path / "train").shards[0].frames
    assert sum(name.endswith(".jpg") for name in m) == frames > spec.frames
    assert check_shards(tmp_path).ok


def test_part_colours_mark_left_right_and_front_back(synthetic_body_dir):
    from lightning_hmd.data.synth.appearance import body_parts, part_colours

    body = BodyModel.from_dir(synthetic_body_dir)
    weights, rest = body.smpl.lbs_weights.numpy(), body.smpl.v_template.numpy()
    colours = part_colours(weights, rest, np.random.default_rng(0))
    assert colours.shape == (len(rest), 3) and colours.min() >= 0 and colours.max() <= 1
    part = body_parts(weights)
    names = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}

    def mean(joint, extra=None):
        sel = part == names[joint] if extra is None else (part == names[joint]) & extra
        return colours[sel].mean(0)

    for a, b in (("l_elbow", "r_elbow"), ("l_knee", "r_knee")):
        assert np.abs(mean(a) - mean(b)).sum() > 0.5  # left and right limbs differ
    front = rest[:, 2] > np.median(rest[part == names["head"], 2])
    assert np.abs(mean("head", front) - mean("head", ~front)).sum() > 1.0  # face vs hair
    other = part_colours(weights, rest, np.random.default_rng(1))
    assert not np.allclose(other[part == names["spine2"]], colours[part == names["spine2"]])


def test_renders_of_a_turned_body_differ_and_programs_are_compiled_once(
    offscreen_gl, synthetic_body_dir
):
    """A body seen from the front and from behind gives different pictures (the part
    colours), and rendering many frames does not grow pyrender's program cache."""
    from scipy.spatial.transform import Rotation

    from lightning_hmd.data.synth.appearance import part_colours
    from lightning_hmd.data.synth.render import BodyRenderer

    body = BodyModel.from_dir(synthetic_body_dir)
    spec = SynthSpec()
    colours = part_colours(
        body.smpl.lbs_weights.numpy(), body.smpl.v_template.numpy(), np.random.default_rng(0)
    )
    pictures = []
    renderer = BodyRenderer(body.faces.numpy(), spec.image_size, spec.focal)
    try:
        bg = np.zeros((spec.image_size, spec.image_size, 3), np.uint8)
        for yaw in (0.0, np.pi, 0.0, np.pi):
            rot = Rotation.from_euler("y", yaw) * Rotation.from_rotvec([np.pi, 0, 0])
            verts = rot.apply(body.smpl.v_template.numpy()) + np.array([0.0, 0.0, 7.0])
            pictures.append(renderer.render(verts, colours, bg))
        programs = len(renderer.renderer._renderer._program_cache._program_cache)
        from OpenGL import contextdata

        stored = sum(len(storage) for storage in contextdata.STORAGES)
    finally:
        renderer.close()
    (front, mask_f), (back, mask_b) = pictures[:2]
    both = mask_f & mask_b
    assert both.sum() > 200
    assert np.abs(front[both].astype(int) - back[both].astype(int)).mean() > 20
    np.testing.assert_array_equal(pictures[2][0], front)  # deterministic
    assert programs == 1
    assert stored == 0  # PyOpenGL's per-context storage does not grow with every frame


def test_worker_processes_write_the_same_bytes(offscreen_gl, tmp_path, synthetic_body_dir):
    spec = replace(SPEC, render=True, clips=3, shard_size=2)
    one = make_synthetic_dataset(tmp_path / "one", spec, synthetic_body_dir, progress=False)
    two = make_synthetic_dataset(
        tmp_path / "two", spec, synthetic_body_dir, progress=False, workers=2
    )
    for name in one:
        assert two[name].to_json() == one[name].to_json()
    assert check_shards(tmp_path / "two").ok


def test_training_tracks_can_be_shorter_than_the_others(tmp_path, synthetic_body_dir):
    spec = replace(SPEC, train_frames=7)
    got = make_synthetic_dataset(tmp_path / "short", spec, synthetic_body_dir, progress=False)
    full = make_synthetic_dataset(tmp_path / "full", SPEC, synthetic_body_dir, progress=False)
    assert [e.frames for s in got["train"].shards for e in s.entries] == [7, 7, 7]
    assert [e.frames for s in got["test"].shards for e in s.entries] == [12]
    # the other splits are the same tracks byte for byte
    for name in ("val", "test", "mocap"):
        assert [s.sha256 for s in got[name].shards] == [s.sha256 for s in full[name].shards]
    assert spec.frames_of("train") == 7 and spec.frames_of("val") == 12
    assert SPEC.frames_of("train") == 12


def test_smooth_noise_has_unit_spread_at_every_track_length():
    """Dividing by a short track's own spread inflated it (at sigma 8, about 4x for 22
    frames): the process's spread is the filter's, the same for 6 frames and 400."""
    rng = np.random.default_rng(0)
    for t in (6, 22, 400):
        x = np.concatenate([motion_mod._smooth_noise(rng, t, 50, 8.0) for _ in range(100)])
        assert x.std() == pytest.approx(1.0, abs=0.03), t
        assert abs(x.mean()) < 0.05


def test_motions_of_every_length_come_from_one_distribution():
    """Training tracks, test tracks and mocap differ in length; their poses must not: the
    mean random joint angle (away from rest) and the per-frame speed agree for 20- and
    100-frame motions, while the drift grows with the length (it accumulates per frame)."""

    def stats(t: int) -> np.ndarray:
        rng = np.random.default_rng(1)
        rest = motion_mod._rest_body(t)[:, 1:]
        angle, speed, drift = [], [], []
        for _ in range(300):
            body = motion_mod.random_pose(t, rng)[:, 1:]
            angle.append(np.abs(body - rest).mean())
            speed.append(np.abs(np.diff(body, axis=0)).mean())
            m = make_motion(t, rng, 30.0)
            drift.append(np.abs(m.translation[-1, :2] - m.translation[0, :2]).mean())
        return np.array([np.mean(angle), np.mean(speed), np.mean(drift)])

    short, long = stats(20), stats(100)
    assert short[:2] == pytest.approx(long[:2], rel=0.05)
    assert long[2] > 2.0 * short[2]  # drift of 100 frames: a longer walk than of 20


def test_short_tracks_keep_the_person_in_view(synthetic_body_dir):
    """6-frame tracks: with the spread of each track's own noise, 2 of these 400 flung the
    body out of the frame (no visible keypoint, so no box: writing the track failed)."""
    body = BodyModel.from_dir(synthetic_body_dir)
    spec = replace(SPEC, clips=400, train_frames=6, seed=1)
    seen = [
        make_mod.make_track(body, "train", i, spec, None).kp2d[..., 2].sum()
        for i in range(spec.clips)
    ]
    assert min(seen) > 0


def test_the_renderer_draws_what_pyrender_draws_from_a_trimesh(offscreen_gl, synthetic_body_dir):
    """The mesh built from the arrays renders byte-identical frames to pyrender's own
    ``Mesh.from_trimesh(..., smooth=False)`` of the same vertices and colours."""
    import pyrender
    import trimesh

    from lightning_hmd.data.synth.appearance import part_colours
    from lightning_hmd.data.synth.render import BodyRenderer

    body = BodyModel.from_dir(synthetic_body_dir)
    spec = SynthSpec()
    rng = np.random.default_rng(4)
    posed = pose_motion(body, make_motion(4, rng, 30.0))
    colours = part_colours(body.smpl.lbs_weights.numpy(), body.smpl.v_template.numpy(), rng)
    bg = make_mod._background(rng, spec.image_size)
    renderer = BodyRenderer(body.faces.numpy(), spec.image_size, spec.focal)

    def by_trimesh(vertices, colour) -> np.ndarray:
        per_vertex = colour.ndim == 2
        mesh = trimesh.Trimesh(
            vertices * np.array([1.0, -1.0, -1.0]),
            body.faces.numpy(),
            vertex_colors=(colour * 255).round().astype(np.uint8) if per_vertex else None,
            process=False,
        )
        material = None if per_vertex else pyrender.MetallicRoughnessMaterial(
            baseColorFactor=[*map(float, colour), 1.0], metallicFactor=0.1, roughnessFactor=0.8
        )  # fmt: skip
        node = renderer.scene.add(pyrender.Mesh.from_trimesh(mesh, material, smooth=False))
        rgb, depth = renderer.renderer.render(renderer.scene)
        renderer.scene.remove_node(node)
        return np.where((depth > 0)[..., None], rgb, bg).astype(np.uint8)

    try:
        for vertices in posed.vertices:
            for colour in (colours, np.array([0.8, 0.5, 0.3])):
                ours, mask = renderer.render(vertices, colour, bg)
                assert mask.sum() > 100
                np.testing.assert_array_equal(ours, by_trimesh(vertices, colour))
    finally:
        renderer.close()
