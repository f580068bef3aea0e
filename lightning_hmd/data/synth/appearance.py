"""Per-vertex colours of a synthetic person: clothing by body part.

A uniformly coloured body is ambiguous in a picture: its front and back, and its left and
right limbs, look alike, so a 180-degree turn fits the image as well as the truth and a
regressor learns the average. Real people carry those cues (a face, clothes); here each body
part has its own colour: a face and hair on the head, a shirt whose front is lighter than its
back, and left and right arms and legs in distinct colours. The shirt and trousers vary per
person; the left/right and front/back marks are the same for everyone.
"""

from __future__ import annotations

import numpy as np

from lightning_hmd.body.joints import SMPL_JOINT_NAMES

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
HEAD = ("neck", "head")
TORSO = ("pelvis", "spine1", "spine2", "spine3", "l_collar", "r_collar")
ARM = ("shoulder", "elbow", "wrist", "hand")
LEG = ("hip", "knee", "ankle", "foot")
SKIN = (0.93, 0.76, 0.62)
HAIR = (0.22, 0.13, 0.08)
LIMB_MARKS = {  # sleeve / trouser-leg colours, fixed so that left and right are learnable
    ("l", ARM): (0.90, 0.15, 0.15),
    ("r", ARM): (0.15, 0.30, 0.95),
    ("l", LEG): (0.95, 0.80, 0.10),
    ("r", LEG): (0.10, 0.75, 0.35),
}
BACK_SHADE = 0.55  # the shirt's back is this fraction of its front's brightness


def body_parts(weights: np.ndarray) -> np.ndarray:
    """(V,) index of the joint that moves each vertex most, from (V, 24) skinning weights."""
    return np.asarray(weights).argmax(axis=1)


def _front(rest_vertices: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(V,) True where a vertex of ``mask`` lies in front (+z, SMPL's facing direction) of
    the middle of those vertices."""
    z = rest_vertices[:, 2]
    return mask & (z > np.median(z[mask]))


def part_colours(
    weights: np.ndarray, rest_vertices: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(V, 3) RGB in [0, 1] for one person.

    Args:
        weights: (V, 24) skinning weights of the body model.
        rest_vertices: (V, 3) template vertices (rest pose, facing +z).
        rng: draws this person's shirt and trouser colours and overall brightness.
    """
    part = body_parts(weights)
    names = np.asarray(SMPL_JOINT_NAMES)[part]
    colours = np.zeros((len(part), 3))
    shirt = rng.uniform(0.35, 0.95, 3)
    torso = np.isin(names, TORSO)
    colours[torso] = shirt * BACK_SHADE
    colours[_front(rest_vertices, torso)] = shirt
    head = np.isin(names, HEAD)
    colours[head] = HAIR
    colours[_front(rest_vertices, head)] = SKIN
    for (side, joints), colour in LIMB_MARKS.items():
        limb = np.isin(names, [f"{side}_{j}" for j in joints])
        colours[limb] = colour
    hands = np.isin(names, ["l_wrist", "r_wrist", "l_hand", "r_hand"])
    colours[hands] = SKIN
    return np.clip(colours * rng.uniform(0.8, 1.1), 0.0, 1.0)
