"""Joint orders, the pelvis definition and left/right flip permutations, defined once.

HMMR keypoint order (25, "cocoplus" regressor), from the original code (the joint names in
``flip_image``, HMMR's ``src/util/data_utils.py``):
the first 14 are the LSP order; "Heel" slots 0/5 hold the LSP ankles.
"""

from __future__ import annotations

KEYPOINT_NAMES: tuple[str, ...] = (
    "r_heel",  # 0 (LSP right ankle)
    "r_knee",  # 1
    "r_hip",  # 2
    "l_hip",  # 3
    "l_knee",  # 4
    "l_heel",  # 5 (LSP left ankle)
    "r_wrist",  # 6
    "r_elbow",  # 7
    "r_shoulder",  # 8
    "l_shoulder",  # 9
    "l_elbow",  # 10
    "l_wrist",  # 11
    "neck",  # 12
    "head_top",  # 13
    "nose",  # 14
    "l_eye",  # 15
    "r_eye",  # 16
    "l_ear",  # 17
    "r_ear",  # 18
    "l_big_toe",  # 19
    "r_big_toe",  # 20
    "l_small_toe",  # 21
    "r_small_toe",  # 22
    "l_ankle",  # 23
    "r_ankle",  # 24
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)  # 25
NUM_LSP_JOINTS = 14
# The 14 LSP joints by name (the first 14 keypoints, whose heel slots hold the ankles).
LSP14_NAMES: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
    "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top",
)  # fmt: skip
# The limbs of the LSP-14 skeleton, as pairs of joint indices (legs, arms, torso, head).
LSP14_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11), (2, 3),
    (8, 12), (9, 12), (12, 13), (2, 8), (3, 9),
)  # fmt: skip
# pelvis = midpoint of these two (HMMR's ``align_by_pelvis``, ``src/evaluation/eval_util.py``)
R_HIP, L_HIP = 2, 3

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",  # 0
    "l_hip",  # 1
    "r_hip",  # 2
    "spine1",  # 3
    "l_knee",  # 4
    "r_knee",  # 5
    "spine2",  # 6
    "l_ankle",  # 7
    "r_ankle",  # 8
    "spine3",  # 9
    "l_foot",  # 10
    "r_foot",  # 11
    "neck",  # 12
    "l_collar",  # 13
    "r_collar",  # 14
    "head",  # 15
    "l_shoulder",  # 16
    "r_shoulder",  # 17
    "l_elbow",  # 18
    "r_elbow",  # 19
    "l_wrist",  # 20
    "r_wrist",  # 21
    "l_hand",  # 22
    "r_hand",  # 23
)
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip
NUM_SMPL_JOINTS = len(SMPL_PARENTS)  # 24
POSE_DIM = 3 * NUM_SMPL_JOINTS  # 72: axis-angle per joint, joint 0 = global rotation
NUM_BETAS = 10  # shape coefficients used throughout (HMR/HMMR)

H36M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
    "thorax", "neck_nose", "head_top", "l_shoulder", "l_elbow", "l_wrist",
    "r_shoulder", "r_elbow", "r_wrist",
)  # fmt: skip
# H36M 17-joint indices that give the 14 LSP joints (``_COMMON_JOINT_IDS`` of HMMR's
# ``src/datasets/h36/read_human36m.py``).
H36M_TO_LSP14: tuple[int, ...] = (3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10)


def _swap_lr(name: str) -> str:
    if name.startswith("l_"):
        return "r_" + name[2:]
    if name.startswith("r_"):
        return "l_" + name[2:]
    return name


def flip_permutation(names: tuple[str, ...]) -> tuple[int, ...]:
    """Index permutation that swaps every ``l_*`` joint with its ``r_*`` partner."""
    index = {n: i for i, n in enumerate(names)}
    return tuple(index[_swap_lr(n)] for n in names)


KEYPOINT_FLIP_PERM = flip_permutation(KEYPOINT_NAMES)
LSP14_FLIP_PERM = flip_permutation(KEYPOINT_NAMES[:NUM_LSP_JOINTS])
SMPL_FLIP_PERM = flip_permutation(SMPL_JOINT_NAMES)
H36M_FLIP_PERM = flip_permutation(H36M_JOINT_NAMES)
