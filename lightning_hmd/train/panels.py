"""Periodic image panels: frames of a training clip with ground-truth (green) and predicted
(red) 2D keypoints, logged to the run's logger (W&B or TensorBoard) or written as PNG files
(``images/`` of the run directory for the CSV logger)."""

from __future__ import annotations

from pathlib import Path

import cv2
import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from lightning_hmd.body.joints import LSP14_LIMBS
from lightning_hmd.geometry.camera import project_weak_perspective

PANEL_FRAMES = 4
PANEL_SIZE = 160  # pixels per frame in the panel


def draw_skeleton(image: np.ndarray, kp: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Draw LSP-14 limbs of normalised keypoints ``kp`` (K, 2 or 3) on ``image`` in place;
    keypoints with a zero visibility (third column) are left out."""
    size = image.shape[0]
    with np.errstate(invalid="ignore"):
        px = np.nan_to_num((np.asarray(kp[:, :2]) + 1.0) * size / 2.0).round().astype(int)
    vis = np.ones(len(kp), bool) if kp.shape[1] < 3 else kp[:, 2] > 0
    vis &= np.isfinite(kp[:, :2]).all(axis=1)
    px = np.where(vis[:, None], px, 0)
    for a, b in LSP14_LIMBS:
        if vis[a] and vis[b]:
            cv2.line(image, tuple(px[a]), tuple(px[b]), colour, 2, cv2.LINE_AA)


def keypoint_panel(images: np.ndarray | None, gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """A strip of frames (H, F * H, 3) uint8 with GT and predicted skeletons.

    Args:
        images: (F, S, S, 3) uint8 crops, or None (features-only data: a grey canvas).
        gt: (F, K, 3) GT keypoints, normalised crop coordinates with visibility.
        pred: (F, K, 2) predicted keypoints, normalised crop coordinates.
    """
    tiles = []
    for f in range(len(gt)):
        if images is None:
            tile = np.full((PANEL_SIZE, PANEL_SIZE, 3), 96, np.uint8)
        else:
            tile = cv2.resize(images[f], (PANEL_SIZE, PANEL_SIZE), interpolation=cv2.INTER_LINEAR)
        draw_skeleton(tile, gt[f], (0, 220, 0))
        draw_skeleton(tile, pred[f], (230, 0, 0))
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


class KeypointPanels(Callback):
    """Every ``every`` batches (rank 0): a panel of the first clip of the batch."""

    def __init__(self, every: int, out_dir: Path) -> None:
        self.every, self.out_dir = every, Path(out_dir)
        self._done_at = 0  # batches_done of the last panel (skipped batches do not count)

    @torch.no_grad()
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        n = int(module.batches_done)
        if not self.every or n % self.every or n == self._done_at or not trainer.is_global_zero:
            return
        self._done_at = n
        clips = batch.clips
        t = np.linspace(0, clips.kp2d.shape[1] - 1, PANEL_FRAMES).astype(int)
        first = type(clips)(**{k: None if v is None else v[:1] for k, v in vars(clips).items()})
        was_training = module.training
        module.eval()
        pred = module(first).pred.current
        module.train(was_training)
        joints = module.body(pred.pose_rotmat, pred.betas, joints_only=True).joints
        xy = project_weak_perspective(joints, pred.cam)[0, t].float().cpu().numpy()
        images = None
        if clips.images is not None:
            frames = clips.images[0, t]
            if frames.dtype != torch.uint8:
                frames = ((frames + 1) * 127.5).clamp(0, 255).to(torch.uint8)
            images = frames.permute(0, 2, 3, 1).cpu().numpy()
        panel = keypoint_panel(images, clips.kp2d[0, t].float().cpu().numpy(), xy)
        self._log(trainer, panel, n)

    def _log(self, trainer: pl.Trainer, panel: np.ndarray, n: int) -> None:
        logger = trainer.logger
        if isinstance(logger, WandbLogger):
            logger.log_image(key="train/keypoints", images=[panel], step=n)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image("train/keypoints", panel, n, dataformats="HWC")
        else:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"keypoints_batch{n:08d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
