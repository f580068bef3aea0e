"""Axis-angle and 6D <-> rotation matrix for any leading dims ``...``.

Both directions delegate to ``roma`` rather than re-deriving Rodrigues' formula. roma switches to
a first-order expansion below a small angle, so the zero rotation has finite, exact gradients.
"""

from __future__ import annotations

import roma
from torch import Tensor

from lightning_hmd.geometry._checks import check_trailing


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """Rotation vectors (axis * angle in radians) to rotation matrices.

    Args:
        aa: (..., 3) axis-angle.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    check_trailing(aa, "aa", (3,))
    return roma.rotvec_to_rotmat(aa)


def matrix_to_axis_angle(R: Tensor) -> Tensor:
    """Rotation matrices to rotation vectors with angle in [0, pi].

    Args:
        R: (..., 3, 3) rotation matrices.

    Returns:
        (..., 3) axis-angle.
    """
    check_trailing(R, "R", (3, 3))
    return roma.rotmat_to_rotvec(R)


def matrix_to_rot6d(R: Tensor) -> Tensor:
    """Rotation matrices to the continuous 6D representation of Zhou et al. (CVPR 2019):
    the first two columns, flattened row by row.

    Args:
        R: (..., 3, 3) rotation matrices.

    Returns:
        (..., 6) as ``R[..., :, :2]`` flattened.
    """
    check_trailing(R, "R", (3, 3))
    return R[..., :, :2].flatten(-2)


def rot6d_to_matrix(x: Tensor) -> Tensor:
    """The 6D representation back to rotation matrices (Gram-Schmidt on the two columns,
    ``roma.special_gramschmidt``); any 6-vector with independent columns maps to a rotation.

    Args:
        x: (..., 6) as written by :func:`matrix_to_rot6d`.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    check_trailing(x, "x", (6,))
    return roma.special_gramschmidt(x.unflatten(-1, (3, 2)))
