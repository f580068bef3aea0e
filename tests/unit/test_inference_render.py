"""Headless rendering of a mesh against its own projected silhouette, and the MP4 writer."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.synth.render import BodyRenderer
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.inference.render import write_video

W, H, F = 320, 240, 400.0


def _silhouette(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Pixels whose centre lies in a projected triangle (pinhole, principal point at the
    image centre, pixel centres on integers), rasterised with OpenCV on an 8x finer grid and
    sampled at the pixel centres: independent of OpenGL."""
    k = 8
    xy = F * vertices[:, :2] / vertices[:, 2:3] + ((W - 1) / 2, (H - 1) / 2)
    fine = np.zeros((H * k, W * k), np.uint8)
    tri = np.round((xy[faces] * k + k / 2) * 16).astype(np.int32)  # 4 fractional bits
    for t in tri:  # one by one: fillPoly would XOR overlapping triangles
        cv2.fillConvexPoly(fine, t, 1, lineType=cv2.LINE_8, shift=4)
    return fine[k // 2 :: k, k // 2 :: k].astype(bool)


def test_mesh_pixels_match_the_projected_silhouette(synthetic_body_dir, offscreen_gl):
    body = BodyModel.from_dir(synthetic_body_dir)
    pose = torch.zeros(1, 24, 3)
    pose[0, 0] = torch.tensor([np.pi, 0.0, 0.0])  # upright in the camera frame (y down)
    pose[0, 16], pose[0, 17] = torch.tensor([0, 0, -1.0]), torch.tensor([0, 0, 1.0])
    with torch.no_grad():
        verts = body(axis_angle_to_matrix(pose), torch.zeros(1, 10)).vertices[0].numpy()
    verts = verts + np.array([0.9, 0.3, 5.0])  # off the image centre: a wrong principal point shows
    faces = body.faces.numpy()
    renderer = BodyRenderer(faces, (W, H), F)
    try:
        image, mask = renderer.render(
            verts, np.array([0.8, 0.3, 0.3]), np.zeros((H, W, 3), np.uint8)
        )
    finally:
        renderer.close()
    assert image.shape == (H, W, 3) and mask.shape == (H, W)
    truth = _silhouette(verts, faces)
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert truth.sum() > 2000 and iou > 0.97, iou
    assert (image[mask] > 0).any(axis=-1).all() and not image[~mask].any()


def test_a_sphere_lands_where_the_pinhole_puts_it(offscreen_gl):
    """Sub-pixel placement in a non-square image: the rendered disc's centroid equals the
    rasterised silhouette's (a half-pixel or principal-point error would show)."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    renderer = BodyRenderer(sphere.faces, (W, H), F)
    try:
        for centre in ([0.9, 0.3, 5.0], [-0.7, -0.5, 4.0]):
            verts = sphere.vertices + np.array(centre)
            _, mask = renderer.render(verts, np.ones(3), np.zeros((H, W, 3), np.uint8))
            truth = _silhouette(verts, sphere.faces)
            (ys, xs), (ty, tx) = np.nonzero(mask), np.nonzero(truth)
            assert abs(xs.mean() - tx.mean()) < 0.1 and abs(ys.mean() - ty.mean()) < 0.1
            assert abs(int(mask.sum()) - int(truth.sum())) < 0.02 * truth.sum()
    finally:
        renderer.close()


def test_video_written_and_read_back(tmp_path):
    import av

    rng = np.random.default_rng(0)
    frames = [np.full((61, 81, 3), 40 * i, np.uint8) for i in range(5)]
    frames[2][10:30, 10:30] = rng.integers(0, 255, (20, 20, 3))
    assert write_video(iter(frames), tmp_path / "v.mp4", 12.5) == 5
    assert not list(tmp_path.glob("*.partial*"))
    with av.open(str(tmp_path / "v.mp4")) as c:
        back = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        rate = c.streams.video[0].average_rate
    assert len(back) == 5 and back[0].shape == (60, 80, 3)  # sides cut to even for yuv420p
    assert rate == 12 or rate == 13
    for i in (0, 1, 3, 4):
        assert abs(float(back[i].mean()) - 40 * i) < 3
