"""The template mesh of the synthetic body model (:mod:`lightning_hmd.body.synth`).

A union of closed tubes (torso, neck, head, upper/lower limbs, hands, feet) around a T-pose
skeleton on the SMPL 24-joint tree: 6890 vertices (so smplx's default extra-joint vertex ids
are valid), y up, facing +z, +x on the body's left, pelvis at the origin, about 1.74 m tall.
The left parts are given; the right parts mirror them in x = 0. Besides the vertices and faces,
:func:`template_mesh` says which part each vertex belongs to and which joints each part may
follow, from which the model's weights and regressors are built.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lightning_hmd.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS

NUM_VERTICES = 6890
JOINT_INDEX = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

# Left and centre joints of the T-pose skeleton (metres); right joints mirror x.
_LEFT_SKELETON: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.0, 0.0),
    "l_hip": (0.085, -0.075, 0.0),
    "spine1": (0.0, 0.11, 0.0),
    "l_knee": (0.10, -0.47, 0.0),
    "spine2": (0.0, 0.24, 0.0),
    "l_ankle": (0.10, -0.86, -0.025),
    "spine3": (0.0, 0.30, 0.0),
    "l_foot": (0.115, -0.915, 0.095),
    "neck": (0.0, 0.50, 0.0),
    "l_collar": (0.075, 0.41, 0.0),
    "head": (0.0, 0.58, 0.01),
    "l_shoulder": (0.175, 0.435, -0.01),
    "l_elbow": (0.43, 0.435, -0.02),
    "l_wrist": (0.68, 0.435, -0.01),
    "l_hand": (0.765, 0.435, -0.01),
}
# Where the bone of each leaf joint ends (toe tip, head top, fingertips).
_LEFT_LEAF_ENDS = {
    "l_foot": (0.115, -0.91, 0.18),
    "head": (0.0, 0.80, 0.01),
    "l_hand": (0.86, 0.435, -0.01),
}


def mirror(p: tuple[float, float, float]) -> tuple[float, float, float]:
    """The point reflected in x = 0, the body's plane of symmetry."""
    return (-p[0], p[1], p[2])


def rname(name: str) -> str:
    """The right-side name of a left joint or part (``l_*`` -> ``r_*``); others unchanged."""
    return "r_" + name[2:] if name.startswith("l_") else name


def skeleton() -> np.ndarray:
    """(24, 3) T-pose joint targets."""
    joints = np.zeros((len(SMPL_JOINT_NAMES), 3))
    for name, p in _LEFT_SKELETON.items():
        joints[JOINT_INDEX[name]] = p
        joints[JOINT_INDEX[rname(name)]] = mirror(p)
    return joints


def bone_ends(joints: np.ndarray) -> np.ndarray:
    """(24, 3) far end of the bone that each joint rotates (its main child, or a leaf tip)."""
    ends = np.zeros_like(joints)
    main_child = {"pelvis": "spine1", "spine3": "neck", "neck": "head"}
    for j, name in enumerate(SMPL_JOINT_NAMES):
        children = [c for c, p in enumerate(SMPL_PARENTS) if p == j]
        left = name if not name.startswith("r_") else "l_" + name[2:]
        if left in _LEFT_LEAF_ENDS:
            end = _LEFT_LEAF_ENDS[left]
            ends[j] = end if left == name else mirror(end)
        elif name in main_child:
            ends[j] = joints[JOINT_INDEX[main_child[name]]]
        else:
            ends[j] = joints[children[0]]
    return ends


@dataclass(frozen=True)
class Part:
    """A closed tube from p0 to p1 with an elliptical cross-section profile."""

    name: str
    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    profile: tuple[tuple[float, float, float], ...]  # (t along axis, radius along u, along w)
    rings: int
    segments: int
    u_ref: tuple[float, float, float]
    exponent: float  # cross-section scale sin(theta)**exponent: small = flat-ended cylinder
    joints: tuple[str, ...]  # joints allowed to skin this part
    penalties: tuple[tuple[str, float], ...] = ()  # extra distance (m) for some joints


_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
_CENTRE_PARTS = (
    Part(
        "torso", (0, -0.16, 0), (0, 0.53, 0),
        ((0, 0.15, 0.105), (0.35, 0.135, 0.095), (0.65, 0.165, 0.11), (0.85, 0.175, 0.10),
         (1, 0.12, 0.08)),
        52, 48, _X, 0.25,
        ("pelvis", "spine1", "spine2", "spine3", "neck", "l_collar", "r_collar", "l_hip",
         "r_hip", "l_shoulder", "r_shoulder"),
        (("l_hip", 0.05), ("r_hip", 0.05), ("l_shoulder", 0.03), ("r_shoulder", 0.03)),
    ),
    Part("neck", (0, 0.46, 0), (0, 0.62, 0), ((0, 0.055, 0.055), (1, 0.05, 0.055)),
         7, 20, _X, 0.3, ("spine3", "neck", "head")),
    Part("head", (0, 0.535, 0.01), (0, 0.80, 0.01), ((0, 0.078, 0.095), (1, 0.078, 0.095)),
         24, 24, _X, 0.7, ("neck", "head")),
)  # fmt: skip
LEFT_PARTS = (
    Part("l_upper_arm", (0.14, 0.435, -0.01), (0.46, 0.435, -0.02),
         ((0, 0.052, 0.055), (1, 0.042, 0.042)), 20, 16, _Y, 0.25,
         ("l_collar", "l_shoulder", "l_elbow")),
    Part("l_forearm", (0.40, 0.435, -0.02), (0.71, 0.435, -0.01),
         ((0, 0.042, 0.045), (1, 0.030, 0.035)), 20, 14, _Y, 0.25,
         ("l_shoulder", "l_elbow", "l_wrist")),
    Part("l_hand", (0.66, 0.435, -0.01), (0.86, 0.435, -0.01),
         ((0, 0.018, 0.042), (1, 0.015, 0.045)), 10, 12, _Y, 0.5,
         ("l_elbow", "l_wrist", "l_hand")),
    Part("l_thigh", (0.09, -0.02, 0), (0.10, -0.51, 0),
         ((0, 0.085, 0.085), (1, 0.055, 0.058)), 24, 20, _X, 0.25,
         ("pelvis", "l_hip", "l_knee"), (("pelvis", 0.05),)),
    Part("l_shin", (0.10, -0.43, 0), (0.10, -0.89, -0.02),
         ((0, 0.055, 0.06), (1, 0.038, 0.04)), 24, 18, _X, 0.25,
         ("l_hip", "l_knee", "l_ankle")),
    Part("l_foot", (0.105, -0.895, -0.08), (0.115, -0.905, 0.18),
         ((0, 0.040, 0.035), (0.6, 0.048, 0.035), (1, 0.045, 0.03)), 12, 16, _X, 0.4,
         ("l_knee", "l_ankle", "l_foot")),
)  # fmt: skip


def _tube(part: Part, mirrored: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (n, 3), faces (2n-4, 3) with outward orientation, axis points (n, 3)."""
    p0, p1 = np.array(part.p0, float), np.array(part.p1, float)
    axis = p1 - p0
    d = axis / np.linalg.norm(axis)
    u = np.array(part.u_ref) - np.dot(part.u_ref, d) * d
    u /= np.linalg.norm(u)
    w = np.cross(d, u)
    theta = np.pi * (np.arange(part.rings) + 1) / (part.rings + 1)
    t = (1 - np.cos(theta)) / 2  # (R,) position along the axis, 0..1
    centres = p0 + t[:, None] * axis  # (R, 3)
    scale = np.sin(theta) ** part.exponent
    prof = np.array(part.profile)
    ru = np.interp(t, prof[:, 0], prof[:, 1]) * scale
    rw = np.interp(t, prof[:, 0], prof[:, 2]) * scale
    phi = 2 * np.pi * np.arange(part.segments) / part.segments
    ring = (
        ru[:, None, None] * np.cos(phi)[None, :, None] * u
        + rw[:, None, None] * np.sin(phi)[None, :, None] * w
    )  # (R, G, 3)
    verts = np.concatenate([(centres[:, None] + ring).reshape(-1, 3), p0[None], p1[None]])
    axis_pts = np.concatenate([np.repeat(centres, part.segments, 0), p0[None], p1[None]])

    R, G = part.rings, part.segments
    i, k = np.meshgrid(np.arange(R - 1), np.arange(G), indexing="ij")
    a, b = i * G + k, i * G + (k + 1) % G
    c, e = a + G, b + G
    quads = np.concatenate(
        [np.stack([a, c, e], -1).reshape(-1, 3), np.stack([a, e, b], -1).reshape(-1, 3)]
    )
    k = np.arange(G)
    bottom = np.stack([np.full(G, R * G), (k + 1) % G, k], -1)
    top = np.stack([np.full(G, R * G + 1), (R - 1) * G + k, (R - 1) * G + (k + 1) % G], -1)
    faces = np.concatenate([quads, bottom, top])
    if mirrored:
        verts[:, 0] *= -1
        axis_pts[:, 0] *= -1
    tri = verts[faces]
    if np.einsum("fi,fi->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) < 0:
        faces = faces[:, ::-1]
    return verts, faces, axis_pts


def _parts() -> list[tuple[Part, bool]]:
    """Every part with its mirror flag: centre parts, left parts, then their mirrors."""
    return [(p, False) for p in _CENTRE_PARTS + LEFT_PARTS] + [(p, True) for p in LEFT_PARTS]


def _right_side_joints(part: Part) -> Part:
    """``part`` with its joints and penalties renamed to the right side."""
    return replace(
        part,
        joints=tuple(rname(n) for n in part.joints),
        penalties=tuple((rname(n), e) for n, e in part.penalties),
    )


@dataclass(frozen=True)
class TemplateMesh:
    """The T-pose template and, per vertex, its part."""

    verts: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) vertex ids, outward orientation
    radial: np.ndarray  # (V, 3) offset of each vertex from its tube's axis
    part_of: np.ndarray  # (V,) index into part_names
    part_names: list[str]  # mirrored parts carry right-side names
    skin_parts: list[Part]  # per part: the joints it may follow (right side for mirrored parts)


def template_mesh() -> TemplateMesh:
    """Every part's tube, concatenated in the order of :func:`_parts`."""
    parts = _parts()
    part_names = [rname(p.name) if m else p.name for p, m in parts]
    verts, faces, axis_pts, part_of = [], [], [], []
    offset = 0
    for i, (part, mirrored) in enumerate(parts):
        v, f, a = _tube(part, mirrored)
        verts.append(v)
        faces.append(f + offset)
        axis_pts.append(a)
        part_of.append(np.full(len(v), i))
        offset += len(v)
    verts = np.concatenate(verts)
    assert len(verts) == NUM_VERTICES, len(verts)
    # Mirrored parts skin to the right-side joints.
    skin_parts = [_right_side_joints(p) if m else p for p, m in parts]
    return TemplateMesh(
        verts=verts,
        faces=np.concatenate(faces),
        radial=verts - np.concatenate(axis_pts),
        part_of=np.concatenate(part_of),
        part_names=part_names,
        skin_parts=skin_parts,
    )
