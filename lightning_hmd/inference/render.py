"""Headless overlays of predictions: the mesh on the original frames (optionally with a side
view), written as MP4 with PyAV and as PNG frames.

The mesh is placed at each frame's predicted translation in the pinhole camera the
predictions were made for (``TrackPrediction.focal``, principal point at the image centre)
and rendered with pyrender (OSMesa or EGL, no display); the side view turns each body 90
degrees about the vertical axis through its own centre.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from lightning_hmd.data.synth.render import BodyRenderer
from lightning_hmd.inference.frames import FrameSource
from lightning_hmd.inference.predict import TrackPrediction

PALETTE = np.array(
    [[0.65, 0.74, 0.86], [0.9, 0.6, 0.5], [0.6, 0.85, 0.6], [0.85, 0.8, 0.5], [0.75, 0.6, 0.85]]
)
SIDE = Rotation.from_euler("y", 90, degrees=True).as_matrix()


def _posed(pred: TrackPrediction, i: int, side: bool) -> np.ndarray:
    v = pred.vertices[i] + pred.translation[i]
    if side:
        centre = v.mean(axis=0)
        v = (v - centre) @ SIDE.T + centre
    return v


def overlay_frames(
    source: FrameSource,
    preds: Sequence[TrackPrediction],
    faces: np.ndarray,
    side_view: bool = False,
    progress: bool = True,
) -> Iterator[np.ndarray]:
    """(H, W', 3) uint8 frames: the meshes of every track over each input frame (and, with
    ``side_view``, the same meshes turned to the side on a grey background to the right)."""
    if any(p.vertices is None for p in preds):
        raise ValueError("rendering needs the predictions' vertices (predict with vertices)")
    focal = preds[0].focal if preds else float(max(source.width, source.height))
    renderer = BodyRenderer(faces, (source.width, source.height), focal)
    index = [{int(f): i for i, f in enumerate(p.frames)} for p in preds]
    try:
        for f, frame in enumerate(
            tqdm(
                source.frames(),
                total=source.count,
                unit="frame",
                desc="render",
                disable=not progress,
            )
        ):
            views = [(frame, False)]
            if side_view:
                views.append((np.full_like(frame, 200), True))
            out = []
            for background, side in views:
                image = background
                # far bodies first, so nearer ones cover them
                here = sorted(
                    (
                        (p.translation[idx[f], 2], k)
                        for k, (p, idx) in enumerate(zip(preds, index, strict=True))
                        if f in idx
                    ),
                    reverse=True,
                )
                for _, k in here:
                    verts = _posed(preds[k], index[k][f], side)
                    image, _ = renderer.render(verts, PALETTE[k % len(PALETTE)], image)
                out.append(image)
            yield np.concatenate(out, axis=1)
    finally:
        renderer.close()


def write_video(frames: Iterator[np.ndarray], path: Path, fps: float) -> int:
    """Encode RGB frames as H.264 MP4 (yuv420p, sides cut to even) with PyAV; written under a
    temporary name and renamed when complete. Returns the frame count."""
    import av

    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    n = 0
    with av.open(str(tmp), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
                stream = container.add_stream("libx264", rate=round(fps))
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
            container.mux(stream.encode(image))
            n += 1
        if stream is not None:
            container.mux(stream.encode())
    tmp.replace(path)
    return n


def write_pngs(frames: Iterator[np.ndarray], folder: Path) -> Iterator[np.ndarray]:
    """Pass frames through, also writing ``folder/frame000000.png`` ..."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame{i:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        yield frame
