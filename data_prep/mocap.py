"""``mocap``: SMPL poses and shapes for the adversarial prior, to mocap shards.

Source layouts (either or both below SRC):

- HMR's neutrMosh pickles: ``neutrSMPL_CMU/**/*.pkl``, ``neutrSMPL_H3.6/**/*.pkl`` and
  ``neutrSMPL_jointLim/**/*.pkl``; each pickle is a dict with ``poses`` (N, 72) and ``betas``
  (10,) (or (N, 10)). As HMMR's ``src/datasets/smpl_to_tfrecords.py``, Human3.6M subjects S9
  and S11 (the test subjects) are left out.
- AMASS: ``**/*_poses.npz`` with ``poses`` (N, 156) SMPL+H axis-angle, ``betas`` (16,) and
  ``mocap_framerate``; the body joints (first 66 values) become the SMPL pose with the two
  hand joints at rest, the first 10 betas the shape.

Each source is written as its own set ``OUT/mocap_<source>`` (``cmu``, ``h36m``,
``jointlim``, ``amass``), which ``data.mocap_dirs`` lists. The poses keep their order: each
names its file (relative to the source folder, as ``sequence``) and its index among the
file's written poses (``frame``), so that windows of consecutive poses can be cut for a
motion discriminator (``model.discriminator=motion``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_prep.common import LayoutError, load_pickle, require_keys, write_mocap
from lightning_hmd.body.joints import NUM_BETAS, POSE_DIM
from lightning_hmd.data.manifest import Manifest
from lightning_hmd.data.schema import MocapSample
from lightning_hmd.errors import ConfigError, DataError

NAME = "mocap"
NEUTRMOSH = {"cmu": "neutrSMPL_CMU", "h36m": "neutrSMPL_H3.6", "jointlim": "neutrSMPL_jointLim"}
EXCLUDED_H36M_SUBJECTS = ("S9", "S11")
AMASS_BODY_DIM = 66  # 22 SMPL+H body joints; SMPL's two hand joints are set to rest


def _excluded(path: Path, source: str) -> bool:
    return source == "h36m" and any(
        re.fullmatch(rf"{s}(_.*)?", part) for part in path.parts for s in EXCLUDED_H36M_SUBJECTS
    )


def _pose_betas(poses: np.ndarray, betas: np.ndarray, where: Path) -> Iterator[tuple]:
    poses = np.asarray(poses, np.float32)
    if poses.ndim != 2 or poses.shape[1] != POSE_DIM:
        raise DataError(f"{where}: 'poses' has shape {poses.shape}, expected (N, {POSE_DIM})")
    betas = np.asarray(betas, np.float32)
    if betas.ndim == 1:
        betas = np.broadcast_to(betas, (len(poses), betas.shape[0]))
    if betas.shape[0] != len(poses) or betas.shape[1] < NUM_BETAS:
        raise DataError(
            f"{where}: 'betas' has shape {betas.shape}, expected ({NUM_BETAS},) or "
            f"({len(poses)}, {NUM_BETAS})"
        )
    yield from zip(poses, betas[:, :NUM_BETAS], strict=True)


def neutrmosh_samples(folder: Path, source: str, stride: int = 1) -> Iterator[MocapSample]:
    """Poses of one neutrMosh source folder, files in sorted order, every ``stride``-th."""
    for path in sorted(folder.rglob("*.pkl")):
        if _excluded(path.relative_to(folder), source):
            continue
        res = require_keys(load_pickle(path), ("poses", "betas"), path)
        name = path.relative_to(folder).with_suffix("").as_posix()
        poses = list(_pose_betas(res["poses"], res["betas"], path))[::stride]
        for i, (pose, betas) in enumerate(poses):
            yield MocapSample(pose.copy(), betas.copy(), source, sequence=name, frame=i)


def amass_samples(
    files: list[Path], stride: int = 1, root: Path | None = None
) -> Iterator[MocapSample]:
    """Body poses of AMASS ``*_poses.npz`` files, every ``stride``-th frame, each named by
    its file (relative to ``root``) and its index among the file's written poses."""
    for path in files:
        name = (path.relative_to(root) if root else path).with_suffix("").as_posix()
        with np.load(path, allow_pickle=False) as f:
            res = require_keys(dict(f), ("poses", "betas"), path)
        poses = np.asarray(res["poses"], np.float32)
        if poses.ndim != 2 or poses.shape[1] < AMASS_BODY_DIM:
            raise DataError(
                f"{path}: 'poses' has shape {poses.shape}, expected (N, >= {AMASS_BODY_DIM})"
            )
        smpl = np.zeros((len(poses), POSE_DIM), np.float32)
        smpl[:, :AMASS_BODY_DIM] = poses[:, :AMASS_BODY_DIM]
        poses = list(_pose_betas(smpl, res["betas"], path))[::stride]
        for i, (pose, betas) in enumerate(poses):
            yield MocapSample(pose.copy(), betas.copy(), "amass", sequence=name, frame=i)


def convert(
    src: Path,
    out: Path,
    *,
    stride: int = 1,
    shard_size: int = 1000,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Manifest]:
    """Convert every mocap source found below ``src``; returns manifests by set name."""
    src = Path(src)
    if not src.is_dir():
        raise LayoutError(f"{src}: not a folder")
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    manifests: dict[str, Manifest] = {}
    for source, folder in NEUTRMOSH.items():
        if (src / folder).is_dir():
            manifests[f"mocap_{source}"] = write_mocap(
                out,
                neutrmosh_samples(src / folder, source, stride),
                name=f"mocap_{source}",
                source=f"neutrMosh {folder}",
                shard_size=shard_size,
                overwrite=overwrite,
                progress=progress,
            )
    amass = sorted(src.rglob("*_poses.npz"))
    if amass:
        manifests["mocap_amass"] = write_mocap(
            out,
            amass_samples(amass, stride, src),
            name="mocap_amass",
            source="AMASS",
            shard_size=shard_size,
            overwrite=overwrite,
            progress=progress,
        )
    if not manifests:
        raise LayoutError(
            f"{src}: no mocap found; expected {', '.join(n + '/' for n in NEUTRMOSH.values())} "
            "(HMR neutrMosh pickles) or AMASS **/*_poses.npz files"
        )
    return manifests
