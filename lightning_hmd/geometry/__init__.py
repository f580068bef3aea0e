"""Pure tensor geometry: rotations, weak-perspective camera, alignment, left/right flips."""

from lightning_hmd.geometry.alignment import (
    SimilarityTransform,
    align_by_pelvis,
    pelvis,
    similarity_procrustes,
    similarity_transform,
)
from lightning_hmd.geometry.camera import (
    optimal_camera,
    project_weak_perspective,
    weak_perspective_to_translation,
)
from lightning_hmd.geometry.flip import (
    flip_joints_3d,
    flip_keypoints_2d,
    flip_keypoints_2d_pixels,
    flip_smpl_pose,
    flip_smpl_rotmat,
)
from lightning_hmd.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "SimilarityTransform",
    "align_by_pelvis",
    "axis_angle_to_matrix",
    "flip_joints_3d",
    "flip_keypoints_2d",
    "flip_keypoints_2d_pixels",
    "flip_smpl_pose",
    "flip_smpl_rotmat",
    "matrix_to_axis_angle",
    "optimal_camera",
    "pelvis",
    "project_weak_perspective",
    "similarity_procrustes",
    "similarity_transform",
    "weak_perspective_to_translation",
]
