"""Keypoint panels draw the skeletons where the keypoints are."""

from __future__ import annotations

import numpy as np

from lightning_hmd.train.panels import PANEL_SIZE, keypoint_panel


def test_limbs_are_drawn_at_the_keypoints_in_their_colours():
    gt = np.zeros((2, 25, 3), np.float32)
    gt[:, 0] = [-0.5, 0.5, 1]  # r_ankle
    gt[:, 1] = [-0.5, -0.5, 1]  # r_knee: a vertical limb at x = -0.5
    pred = np.zeros((2, 25, 2), np.float32)
    pred[:, 6] = [0.5, -0.5]  # r_wrist
    pred[:, 7] = [0.5, 0.5]  # r_elbow: a vertical limb at x = +0.5
    panel = keypoint_panel(None, gt, pred)
    assert panel.shape == (PANEL_SIZE, 2 * PANEL_SIZE, 3)
    q = PANEL_SIZE // 4
    mid = PANEL_SIZE // 2
    for f in range(2):
        left, right = panel[mid, f * PANEL_SIZE + q], panel[mid, f * PANEL_SIZE + 3 * q]
        assert left[1] > 200 and left[0] < 50  # green GT limb
        assert right[0] > 200 and right[1] < 50  # red predicted limb
    assert (panel[5, 5] == 96).all()  # the rest of the grey canvas is untouched
    # an invisible GT keypoint draws nothing
    gt[:, 1, 2] = 0
    assert (keypoint_panel(None, gt, np.zeros((2, 25, 2)))[mid, q] == 96).all()


def test_non_finite_predictions_draw_nothing():
    gt = np.zeros((1, 25, 3), np.float32)
    pred = np.full((1, 25, 2), np.nan, np.float32)
    panel = keypoint_panel(None, gt, pred)
    assert (panel == 96).all()
