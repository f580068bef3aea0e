"""A synthetic, SMPL-compatible body model for tests and smoke runs (not SMPL, not derived from it).

The mesh is a union of closed tubes around a T-pose skeleton on the SMPL 24-joint tree
(:mod:`lightning_hmd.body.synth_mesh`: 6890 vertices, y up, facing +z, +x on the body's
left, pelvis at the origin, about 1.74 m tall). Skinning weights, joint regressors, 10 shape
directions and pose correctives are built here from that geometry, then made exactly
mirror-symmetric; see :func:`write_synthetic_model`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from lightning_hmd.body.joints import (
    H36M_FLIP_PERM,
    H36M_JOINT_NAMES,
    KEYPOINT_FLIP_PERM,
    KEYPOINT_NAMES,
    NUM_SMPL_JOINTS,
    SMPL_FLIP_PERM,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
)
from lightning_hmd.body.model_files import (
    COCOPLUS_REGRESSOR_FILENAME,
    H36M_REGRESSOR_FILENAME,
    MEAN_PARAMS_FILENAME,
    META_KEY,
    NUM_BETAS,
    SYNTHETIC_SOURCE,
    meta_array,
    save_npy,
    save_npz,
    smpl_filename,
)
from lightning_hmd.body.synth_mesh import (
    JOINT_INDEX,
    LEFT_PARTS,
    Part,
    bone_ends,
    mirror,
    rname,
    skeleton,
    template_mesh,
)


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(V, J) distance from points (V, 3) to segments a[j]-b[j] (J, 3)."""
    ab = b - a  # (J, 3)
    ap = points[:, None] - a[None]  # (V, J, 3)
    t = np.clip(np.einsum("vjc,jc->vj", ap, ab) / np.maximum((ab**2).sum(-1), 1e-12), 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1)


def _point_regressor(
    verts: np.ndarray, candidates: np.ndarray, target: np.ndarray, k: int, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Convex weights over the ``k`` candidate vertices nearest to ``target``.

    Gaussian weights by distance; when ``exact``, they are exponentially tilted
    (w_i ∝ g_i exp(λ·v_i), λ from a few Newton steps) so that their weighted mean equals the
    target, which works for points inside the body. Surface landmarks keep the Gaussian
    weights (their mean lies just under the surface). Returns (vertex ids (k,), weights (k,)).
    """
    dist = np.linalg.norm(verts[candidates] - target, axis=1)
    order = np.argsort(dist, kind="stable")[:k]
    idx, d = candidates[order], dist[order]
    log_w = -0.5 * (d / max(d.max() / 2, 1e-3)) ** 2
    x = verts[idx] - target  # (k, 3)
    lam = np.zeros(3)
    for _ in range(100 if exact else 0):
        s = log_w + x @ lam
        w = np.exp(s - s.max())
        w /= w.sum()
        mean = w @ x
        if np.linalg.norm(mean) < 1e-10:
            break
        cov = (x * w[:, None]).T @ x - np.outer(mean, mean) + 1e-12 * np.eye(3)
        step = np.linalg.solve(cov, mean)
        lam -= step * min(1.0, 20.0 / max(np.linalg.norm(step), 1e-12))
    s = log_w + x @ lam
    w = np.exp(s - s.max())
    return idx, w / w.sum()


# Regressor joint -> (target in left/centre coordinates, parts read, vertex count, exact):
# ``exact`` targets lie inside the body and are hit exactly; the others are surface landmarks.
_FOOT = ("l_foot",)
_COCOPLUS_SPEC = {
    "l_heel": ((0.105, -0.935, -0.07), _FOOT, 16, False),
    "l_knee": ((0.10, -0.47, 0.0), ("l_thigh", "l_shin"), 60, True),
    "l_hip": ((0.09, -0.10, 0.0), ("torso", "l_thigh"), 100, True),
    "l_wrist": ((0.68, 0.435, -0.01), ("l_forearm", "l_hand"), 40, True),
    "l_elbow": ((0.43, 0.435, -0.02), ("l_upper_arm", "l_forearm"), 50, True),
    "l_shoulder": ((0.18, 0.435, -0.01), ("torso", "l_upper_arm"), 60, True),
    "neck": ((0.0, 0.49, 0.0), ("torso", "neck"), 60, True),
    "head_top": ((0.0, 0.79, 0.01), ("head",), 16, False),
    "nose": ((0.0, 0.655, 0.10), ("head",), 12, False),
    "l_eye": ((0.032, 0.69, 0.085), ("head",), 12, False),
    "l_ear": ((0.076, 0.665, 0.01), ("head",), 12, False),
    "l_big_toe": ((0.09, -0.905, 0.17), _FOOT, 12, False),
    "l_small_toe": ((0.14, -0.905, 0.125), _FOOT, 12, False),
    "l_ankle": ((0.10, -0.86, -0.025), ("l_shin", "l_foot"), 40, True),
}
# SMPL joint -> (parts its J_regressor row reads, vertex count); targets from the skeleton.
_SMPL_JOINT_PARTS = {
    "pelvis": (("torso",), 80),
    "l_hip": (("torso", "l_thigh"), 100),
    "spine1": (("torso",), 80),
    "l_knee": (("l_thigh", "l_shin"), 60),
    "spine2": (("torso",), 80),
    "l_ankle": (("l_shin", "l_foot"), 40),
    "spine3": (("torso",), 80),
    "l_foot": (_FOOT, 40),
    "neck": (("torso", "neck"), 60),
    "l_collar": (("torso",), 80),
    "head": (("head", "neck"), 60),
    "l_shoulder": (("torso", "l_upper_arm"), 60),
    "l_elbow": (("l_upper_arm", "l_forearm"), 50),
    "l_wrist": (("l_forearm", "l_hand"), 40),
    "l_hand": (("l_hand",), 30),
}
_H36M_SPEC = {
    "pelvis": ((0.0, -0.05, 0.0), ("torso", "l_thigh", "r_thigh"), 60, True),
    "l_hip": ((0.09, -0.08, 0.0), ("torso", "l_thigh"), 100, True),
    "l_knee": _COCOPLUS_SPEC["l_knee"],
    "l_ankle": _COCOPLUS_SPEC["l_ankle"],
    "spine": ((0.0, 0.22, 0.0), ("torso",), 60, True),
    "thorax": ((0.0, 0.44, 0.0), ("torso",), 60, True),
    "neck_nose": ((0.0, 0.62, 0.04), ("head", "neck"), 40, True),
    "head_top": ((0.0, 0.78, 0.01), ("head",), 16, False),
    "l_shoulder": _COCOPLUS_SPEC["l_shoulder"],
    "l_elbow": _COCOPLUS_SPEC["l_elbow"],
    "l_wrist": _COCOPLUS_SPEC["l_wrist"],
}


def _regressor(
    names: tuple[str, ...],
    spec: dict,
    verts: np.ndarray,
    part_of: np.ndarray,
    part_names: list[str],
) -> np.ndarray:
    """(len(names), V) sparse regressor with rows summing to 1."""
    reg = np.zeros((len(names), len(verts)))
    for row, name in enumerate(names):
        is_right = name.startswith("r_")
        target, parts, k, exact = spec["l_" + name[2:] if is_right else name]
        if is_right:
            target, parts = mirror(target), tuple(rname(p) for p in parts)
        ids = [part_names.index(p) for p in parts]
        candidates = np.flatnonzero(np.isin(part_of, ids))
        idx, w = _point_regressor(verts, candidates, np.array(target, float), k, exact)
        reg[row, idx] = w
    return reg / reg.sum(1, keepdims=True)


def _skinning_weights(
    verts: np.ndarray,
    part_of: np.ndarray,
    parts: list[Part],
    bone_a: np.ndarray,
    bone_b: np.ndarray,
    tau: float = 0.012,
) -> np.ndarray:
    """(V, 24) softmax of -distance/tau to the bones a part may follow; rows sum to 1."""
    dist = _segment_distance(verts, bone_a, bone_b)  # (V, 24)
    bias = np.full((len(parts), len(SMPL_JOINT_NAMES)), np.inf)
    for i, part in enumerate(parts):
        for name in part.joints:
            bias[i, JOINT_INDEX[name]] = 0.0
        for name, extra in part.penalties:
            bias[i, JOINT_INDEX[name]] = extra
    logits = -(dist + bias[part_of]) / tau
    w = np.exp(logits - logits.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    w[w < 1e-3] = 0.0
    return w / w.sum(1, keepdims=True)


def _shape_directions(
    verts: np.ndarray, radial: np.ndarray, part_of: np.ndarray, part_names: list[str]
) -> np.ndarray:
    """(V, 3, 10) displacement per unit beta: height, girth, leg/arm/torso length, widths..."""
    x, y, z = verts.T
    sx = np.sign(x)
    ramp = lambda v: np.clip(v, 0.0, 1.0)  # noqa: E731
    in_parts = lambda *names: np.isin(part_of, [part_names.index(n) for n in names])  # noqa: E731
    limbs = in_parts(*[p.name for p in LEFT_PARTS], *[rname(p.name) for p in LEFT_PARTS])
    head = in_parts("head")
    head_centre = np.array([0.0, 0.6675, 0.01])
    dirs = np.zeros((len(verts), 3, NUM_BETAS))
    dirs[:, :, 0] = 0.05 * verts  # overall size: about +8.7 cm height per unit
    dirs[:, :, 1] = 0.12 * radial  # girth
    dirs[:, 1, 2] = -0.06 * ramp((-0.075 - y) / 0.785)  # leg length
    dirs[:, 0, 3] = 0.05 * sx * ramp((np.abs(x) - 0.18) / 0.6)  # arm length
    dirs[:, 1, 4] = 0.05 * ramp(y / 0.5)  # torso length
    dirs[:, 0, 5] = 0.03 * sx * ramp(np.abs(x) / 0.18) * ramp((y - 0.2) / 0.2)  # shoulders
    dirs[:, 0, 6] = 0.025 * sx * ramp(np.abs(x) / 0.1) * ramp((0.1 - y) / 0.2)  # hips
    belly = in_parts("torso") * ramp(z / 0.1) * np.exp(-0.5 * ((y - 0.1) / 0.12) ** 2)
    dirs[:, 2, 7] = 0.04 * belly  # belly
    dirs[:, :, 8] = 0.1 * head[:, None] * (verts - head_centre)  # head size
    dirs[:, :, 9] = 0.15 * limbs[:, None] * radial - 0.05 * (~limbs)[:, None] * radial
    return dirs


def _pose_directions(
    verts: np.ndarray, weights: np.ndarray, joints: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(V, 3, 207) small random correctives local to each joint (about 1 cm per unit)."""
    parents = np.array(SMPL_PARENTS)
    local = np.clip(weights[:, 1:] + weights[:, parents[1:]], 0.0, 1.0)  # (V, 23)
    rel = (verts[:, None] - joints[None, 1:]) / 0.1  # (V, 23, 3)
    a = rng.normal(0.0, 0.004, size=(23, 9, 3))
    b = rng.normal(0.0, 0.004, size=(23, 9, 3, 3))
    offsets = a[None] + np.einsum("jkcd,vjd->vjkc", b, rel)  # (V, 23, 9, 3)
    offsets *= local[:, :, None, None]
    return offsets.transpose(0, 3, 1, 2).reshape(len(verts), 3, 207)


class _Mirror:
    """Makes the model exactly mirror-symmetric in x = 0, so that a reflected pose (left/right
    joints swapped, axis-angle y and z negated) gives the mirrored mesh and joints.

    ``m`` maps each vertex to its mirror image (the template's vertex set is symmetric by
    construction); each array is averaged with its reflection, which makes it equivariant.
    """

    SIGN = np.array([-1.0, 1.0, 1.0])

    def __init__(self, verts: np.ndarray) -> None:
        dist, self.m = cKDTree(verts).query(verts * self.SIGN)
        if dist.max() > 1e-9 or not (self.m[self.m] == np.arange(len(verts))).all():
            raise AssertionError("synthetic template is not mirror-symmetric")

    def points(self, x: np.ndarray) -> np.ndarray:
        """(V, 3, ...) per-vertex vectors: x[m(v)] = S x[v]."""
        sign = self.SIGN.reshape(3, *([1] * (x.ndim - 2)))
        return (x + sign * x[self.m]) / 2

    def regressor(self, reg: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
        """(J, V) rows: reg[perm[j], m(v)] = reg[j, v]."""
        mirrored = np.empty_like(reg)
        mirrored[np.ix_(list(perm), self.m)] = reg
        return (reg + mirrored) / 2

    def posedirs(self, p: np.ndarray) -> np.ndarray:
        """(V, 3, 23 * 9): P[m(v), c, perm(j), a, b] = s_c s_a s_b P[v, c, j, a, b]."""
        q = p.reshape(len(p), 3, NUM_SMPL_JOINTS - 1, 3, 3)
        s = self.SIGN
        signed = (
            q
            * s[None, :, None, None, None]
            * s[None, None, None, :, None]
            * s[None, None, None, None]
        )
        perm = [SMPL_FLIP_PERM[j + 1] - 1 for j in range(NUM_SMPL_JOINTS - 1)]
        mirrored = np.empty_like(q)
        mirrored[np.ix_(self.m, range(3), perm)] = signed
        return ((q + mirrored) / 2).reshape(p.shape)


def mean_pose() -> np.ndarray:
    """(72,) axis-angle mean pose: the root rotated by pi about x, as in HMR's mean parameters
    (``HMRTrainer.load_mean_param``, ``src/trainer.py``; an upright person in camera
    coordinates, y down), the shoulders rotated so the arms point down-ish, everything else
    zero."""
    pose = np.zeros((len(SMPL_JOINT_NAMES), 3))
    pose[0, 0] = np.pi
    pose[JOINT_INDEX["l_shoulder"], 2] = -0.5  # +x arm rotates towards -y
    pose[JOINT_INDEX["r_shoulder"], 2] = 0.5
    return pose.reshape(-1)


def build_synthetic_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """All arrays of the synthetic model, keyed like the files (see ``model_files``).

    Returns SMPL keys (``v_template``, ``shapedirs``, ``posedirs``, ``J_regressor``,
    ``weights``, ``kintree_table``, ``f``, ``meta``) plus ``cocoplus`` (25, V), ``h36m``
    (17, V), ``mean_pose`` (72,) and ``mean_shape`` (10,). Float arrays are float32.
    """
    mesh = template_mesh()
    verts, part_of, part_names = mesh.verts, mesh.part_of, mesh.part_names
    targets = skeleton()
    smpl_spec = {
        name: (tuple(targets[JOINT_INDEX[name]]), read, k, True)
        for name, (read, k) in _SMPL_JOINT_PARTS.items()
    }
    J_regressor = _regressor(SMPL_JOINT_NAMES, smpl_spec, verts, part_of, part_names)
    joints = J_regressor @ verts  # (24, 3) regressed skeleton, used for skinning
    ends = bone_ends(joints)
    weights = _skinning_weights(verts, part_of, mesh.skin_parts, joints, ends)
    rng = np.random.default_rng(seed)
    f32 = np.float32
    cocoplus = _regressor(KEYPOINT_NAMES, _COCOPLUS_SPEC, verts, part_of, part_names)
    h36m = _regressor(H36M_JOINT_NAMES, _H36M_SPEC, verts, part_of, part_names)
    shapedirs = _shape_directions(verts, mesh.radial, part_of, part_names)
    sym = _Mirror(verts)
    return {
        "v_template": sym.points(verts).astype(f32),
        "shapedirs": sym.points(shapedirs).astype(f32),
        "posedirs": sym.posedirs(_pose_directions(verts, weights, joints, rng)).astype(f32),
        "J_regressor": sym.regressor(J_regressor, SMPL_FLIP_PERM).astype(f32),
        "weights": sym.regressor(weights.T, SMPL_FLIP_PERM).T.astype(f32),
        "kintree_table": np.stack([np.array(SMPL_PARENTS), np.arange(len(SMPL_PARENTS))]),
        "f": mesh.faces.astype(np.int32),
        META_KEY: meta_array(source=SYNTHETIC_SOURCE, seed=seed, generator=__name__),
        "cocoplus": sym.regressor(cocoplus, KEYPOINT_FLIP_PERM).astype(f32),
        "h36m": sym.regressor(h36m, H36M_FLIP_PERM).astype(f32),
        "mean_pose": mean_pose().astype(f32),
        "mean_shape": np.zeros(NUM_BETAS, f32),
    }


def write_synthetic_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the synthetic model into ``out_dir`` in the ``model_files`` layout; return out_dir.

    Files: ``SMPL_NEUTRAL.npz`` (meta source "synthetic, not SMPL"), ``J_regressor_cocoplus.npy``
    (25, V), ``J_regressor_h36m.npy`` (17, V), ``mean_params.npz``. Byte-identical for equal seeds.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = build_synthetic_arrays(seed)
    save_npy(out / COCOPLUS_REGRESSOR_FILENAME, arrays.pop("cocoplus"))
    save_npy(out / H36M_REGRESSOR_FILENAME, arrays.pop("h36m"))
    save_npz(
        out / MEAN_PARAMS_FILENAME,
        {"pose": arrays.pop("mean_pose"), "shape": arrays.pop("mean_shape")},
    )
    save_npz(out / smpl_filename("neutral"), arrays)
    return out


__all__ = ["build_synthetic_arrays", "mean_pose", "write_synthetic_model"]
