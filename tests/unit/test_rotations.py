"""Axis-angle <-> rotation matrix: values, round trips, shapes, zero-rotation gradients."""

from __future__ import annotations

import math

import pytest
import roma
import torch

from lightning_hmd.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle


def test_quarter_turn_about_z_is_known_matrix():
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(R, expected, atol=1e-6, rtol=0)


def test_round_trip_and_shapes_with_leading_dims():
    g = torch.Generator().manual_seed(0)
    axis = torch.nn.functional.normalize(
        torch.randn(2, 5, 3, generator=g, dtype=torch.float64), dim=-1
    )
    angle = torch.rand(2, 5, 1, generator=g, dtype=torch.float64) * 3.0  # < pi: unique axis-angle
    aa = axis * angle
    R = axis_angle_to_matrix(aa)
    assert R.shape == (2, 5, 3, 3)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=R.dtype).expand_as(R))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(2, 5, dtype=R.dtype))
    back = matrix_to_axis_angle(R)
    assert back.shape == (2, 5, 3)
    torch.testing.assert_close(back, aa)


def test_zero_rotation_gradient_is_finite_and_first_order():
    aa = torch.zeros(3, requires_grad=True)
    W = torch.arange(9.0).reshape(3, 3)
    (axis_angle_to_matrix(aa) * W).sum().backward()
    # R ~ I + [aa]_x, so d/d aa_x = W[2,1] - W[1,2] = 7 - 5, d/d aa_y = W[0,2] - W[2,0] = 2 - 6,
    # d/d aa_z = W[1,0] - W[0,1] = 3 - 1.
    torch.testing.assert_close(aa.grad, torch.tensor([2.0, -4.0, 2.0]))


def test_identity_matrix_to_axis_angle_is_zero_with_finite_gradient():
    R = torch.eye(3).repeat(4, 1, 1).requires_grad_()
    aa = matrix_to_axis_angle(R)
    torch.testing.assert_close(aa, torch.zeros(4, 3))
    aa.sum().backward()
    assert torch.isfinite(R.grad).all()


@pytest.mark.parametrize(
    ("fn", "bad", "name"),
    [
        (axis_angle_to_matrix, torch.zeros(5, 4), "aa"),
        (matrix_to_axis_angle, torch.zeros(5, 3, 4), "R"),
    ],
)
def test_bad_shapes_raise_naming_the_argument(fn, bad, name):
    with pytest.raises(ValueError, match=rf"{name} must have shape .*got \({bad.shape[0]}"):
        fn(bad)


def test_rot6d_round_trip_and_orthonormalisation():
    from lightning_hmd.geometry.rotations import matrix_to_rot6d, rot6d_to_matrix

    torch.manual_seed(0)
    R = roma.random_rotmat(50)
    six = matrix_to_rot6d(R)
    assert six.shape == (50, 6)
    torch.testing.assert_close(six.view(50, 3, 2), R[:, :, :2])
    torch.testing.assert_close(rot6d_to_matrix(six), R, atol=1e-5, rtol=0)
    # any 6-vector with independent columns becomes a proper rotation
    M = rot6d_to_matrix(torch.randn(50, 6))
    torch.testing.assert_close(
        M @ M.transpose(-1, -2), torch.eye(3).expand(50, 3, 3), atol=1e-5, rtol=0
    )
    assert torch.allclose(torch.linalg.det(M), torch.ones(50), atol=1e-5)
