"""Exports of a track's predictions for other tools: SMPL parameters (AMASS-style ``.npz``),
the mesh sequence (one OBJ per frame, written by trimesh) and the skeleton animation as BVH.

Frames: the SMPL parameters and meshes stay in the prediction's camera frame (x right, y
down, z forward; ``translation`` places the body in it). BVH is written in a y-up frame, the
camera frame turned 180 degrees about x (x right, y up, z towards the camera), as Blender and
game engines expect, in metres, with an upright rest skeleton (SMPL's rest offsets).

BVH is written here because no maintained Python package writes it (the ``bvh`` package on
PyPI only reads; the tests read our files back with it). The skeleton is SMPL's 24-joint
tree with the rest offsets of the track's mean shape; each joint's rotation is SMPL's local
rotation, as ``Zrotation Xrotation Yrotation`` Euler angles in degrees (R = Rz Rx Ry).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.inference.predict import TrackPrediction

SMPL_JOINT_NAMES = (
    "Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle",
    "Spine3", "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder",
    "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand",
)  # fmt: skip
Y_UP = np.diag([1.0, -1.0, -1.0])  # camera frame (y down, z forward) -> y up, z backward


def export_smpl_npz(pred: TrackPrediction, path: Path, fps: float) -> None:
    """AMASS-style SMPL parameters: ``poses`` (T, 72) axis-angle, ``betas`` (10,) the track's
    mean shape (per frame in ``betas_per_frame``), ``trans`` (T, 3) metres added to the
    model's output, ``mocap_framerate``, ``gender`` (neutral), ``frames``."""
    t = len(pred.frames)
    betas = pred.current.betas.numpy()
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(
        tmp,
        poses=pred.current.pose_aa.numpy().reshape(t, 72),
        betas=betas.mean(0),
        betas_per_frame=betas,
        trans=pred.translation,
        mocap_framerate=np.float64(fps),
        gender=np.array("neutral"),
        frames=pred.frames,
    )
    tmp.replace(path)


def export_obj_sequence(pred: TrackPrediction, faces: np.ndarray, folder: Path) -> list[Path]:
    """``frame<NNNNNN>.obj`` per frame (frame numbers of the input), vertices placed at the
    frame's translation."""
    import trimesh

    if pred.vertices is None:
        raise ValueError("the mesh export needs the predictions' vertices")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(pred.frames):
        mesh = trimesh.Trimesh(pred.vertices[i] + pred.translation[i], faces, process=False)
        path = folder / f"frame{int(f):06d}.obj"
        mesh.export(path)
        paths.append(path)
    return paths


def rest_joints(body: BodyModel, betas: np.ndarray) -> np.ndarray:
    """(24, 3) SMPL joints of the rest pose for one shape."""
    eye = torch.eye(3).expand(1, 24, 3, 3)
    with torch.no_grad():
        out = body(eye, torch.as_tensor(betas, dtype=torch.float32)[None], joints_only=True)
    return out.smpl_joints[0].numpy().astype(np.float64)


def bvh_text(pred: TrackPrediction, rest: np.ndarray, parents: np.ndarray, fps: float) -> str:
    """The BVH file of a track (module docstring): hierarchy from ``rest`` (24, 3) and
    ``parents`` (24,), one motion line per frame."""
    children: dict[int, list[int]] = {j: [] for j in range(24)}
    for j in range(1, 24):
        children[int(parents[j])].append(j)
    lines = ["HIERARCHY"]
    order: list[int] = []  # the hierarchy's depth-first order, which the motion lines follow

    def joint(j: int, depth: int) -> None:
        order.append(j)
        pad = "  " * depth
        offset = rest[j] - rest[parents[j]] if j else np.zeros(3)
        head = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{pad}{head} {SMPL_JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        channels = "Xposition Yposition Zposition " if j == 0 else ""
        n = 6 if j == 0 else 3
        lines.append(f"{pad}  CHANNELS {n} {channels}Zrotation Xrotation Yrotation")
        for c in children[j]:
            joint(c, depth + 1)
        if not children[j]:  # an end site one tenth of the bone on, for viewers
            tip = 0.1 * offset if np.linalg.norm(offset) > 0 else np.array([0.0, 0.05, 0.0])
            lines.extend(
                [
                    f"{pad}  End Site",
                    f"{pad}  {{",
                    f"{pad}    OFFSET {tip[0]:.6f} {tip[1]:.6f} {tip[2]:.6f}",
                    f"{pad}  }}",
                ]
            )
        lines.append(f"{pad}}}")

    joint(0, 0)
    rot = pred.current.pose_rotmat.numpy().astype(np.float64).copy()  # (T, 24, 3, 3)
    t = len(rot)
    # offsets stay in SMPL's rest frame (y up: an upright rest skeleton); the root's rotation
    # takes it into the camera frame, then Y_UP turns that to y up; local rotations are SMPL's
    rot[:, 0] = Y_UP @ rot[:, 0]
    euler = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True)
    euler = euler.reshape(t, 24, 3)
    root = (rest[0] + pred.translation) @ Y_UP.T  # (T, 3)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / fps:.6f}"]
    for i in range(t):
        values = [*root[i], *euler[i, order].reshape(-1)]
        lines.append(" ".join(f"{v:.6f}" for v in values))
    return "\n".join(lines) + "\n"


def export_bvh(pred: TrackPrediction, body: BodyModel, path: Path, fps: float) -> None:
    """Write the track's skeleton animation (module docstring)."""
    rest = rest_joints(body, pred.current.betas.numpy().mean(0))
    parents = body.smpl.parents.numpy()
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(bvh_text(pred, rest, parents, fps))
    tmp.replace(path)
