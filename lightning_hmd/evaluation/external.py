"""``lightning-hmd evaluate --predictions``: other codebases' saved outputs scored against this
package's ground truth, under the same protocols and scorer as this package's models.

Formats (each as its codebase writes it):

- ``hmmr`` (akanazawa/human_dynamics): the evaluation's prediction cache,
  ``<dataset>-<sequence>-P<track>.pkl`` (``src/evaluation/prediction.py:
  get_pred_path_name``), or the demo's ``<sequence>/hmmr_output.pkl`` (track 0) and
  ``<sequence>_<track>/hmmr_output.pkl`` (``demo_video.py: predict_on_tracks``): pickles of
  ``poses`` (N, 24, 3, 3) rotation matrices and ``shapes`` (N, 10), one row per frame of the
  track in order (``Tester.predict_all_images``, ``src/evaluation/tester.py``).
- ``vibe`` / ``tcmr`` (mkocabas/VIBE, hongsukchoi/TCMR_RELEASE ``demo.py``):
  ``<sequence>/vibe_output.pkl`` / ``tcmr_output.pkl`` (or ``<sequence>.pkl``), a
  ``joblib.dump`` of ``{person_id: {"pose": (N, 72) axis-angle, "betas": (N, 10),
  "frame_ids": (N,) frame numbers, "joints3d", "verts", "pred_cam", ...}}``; person ids are
  the tracks' ids, frame ids their ``frame_index``.

The predictions' SMPL parameters go through this package's body model, so joints and meshes
have the ground truth's definitions for every codebase; 2D metrics are not scored (each
codebase projects into crops of its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.assign import read_shards
from lightning_hmd.data.safe_pickle import load_joblib, load_pickle
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.data.skips import SkipCounter
from lightning_hmd.data.whole_tracks import read_tracks
from lightning_hmd.errors import DataError
from lightning_hmd.evaluation.outputs import outputs_from_prediction, truth_of
from lightning_hmd.evaluation.predict import ClipPrediction
from lightning_hmd.evaluation.protocols import Protocol
from lightning_hmd.evaluation.run import wants_mesh
from lightning_hmd.evaluation.scorer import TrackScore, score_track
from lightning_hmd.evaluation.windows import make_plan
from lightning_hmd.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lightning_hmd.structures import SMPLParams

FORMATS = ("hmmr", "vibe", "tcmr")
OUTPUT_FILE = {"hmmr": "hmmr_output.pkl", "vibe": "vibe_output.pkl", "tcmr": "tcmr_output.pkl"}
# the window length each codebase was trained and evaluated with (VIBE and TCMR: 16)
DEFAULT_SEQ_LEN = {"hmmr": 20, "vibe": 16, "tcmr": 16}
_HMMR_CACHE = re.compile(r"^(?P<dataset>[^-]+)-(?P<sequence>.+)-P(?P<track>\d+)\.pkl$")
_SUFFIXED = re.compile(r"^(?P<sequence>.+)_(?P<track>\d+)$")


class PredictionsError(DataError):
    """Predictions that cannot be read or matched to the ground truth (names the file)."""


@dataclass
class ExternalTrack:
    """One track's predicted SMPL parameters.

    Attributes:
        source: the file (and person id) they come from.
        pose_rotmat: (M, 24, 3, 3) rotations.
        betas: (M, 10) shapes.
        frame_ids: (M,) frame numbers of the rows, or None: one row per frame of the track.
    """

    source: str
    pose_rotmat: torch.Tensor
    betas: torch.Tensor
    frame_ids: np.ndarray | None


def _array(data: dict, key: str, shape: tuple, where: str) -> np.ndarray:
    """``data[key]`` as float32 of ``shape`` (None: any size; first entry: frames)."""
    if key not in data:
        raise PredictionsError(f"{where}: missing key {key!r}; has {sorted(map(str, data))}")
    arr = np.asarray(data[key])
    if arr.ndim != len(shape) or any(
        s is not None and a != s for a, s in zip(arr.shape, shape, strict=True)
    ):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise PredictionsError(f"{where}: {key!r} has shape {arr.shape}, expected {want}")
    return arr.astype(np.float32)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise PredictionsError(f"--predictions {path}: no such file or folder")
    return sorted(p for p in path.rglob("*.pkl") if not p.name.endswith("-verts.pkl"))


def _hmmr_track(file: Path, sequences: set[str]) -> tuple[str, int]:
    m = _HMMR_CACHE.match(file.name)
    if m:
        return m["sequence"], int(m["track"])
    if file.name == OUTPUT_FILE["hmmr"]:
        folder = file.parent.name
        if folder in sequences:
            return folder, 0
        s = _SUFFIXED.match(folder)
        if s and s["sequence"] in sequences:
            return s["sequence"], int(s["track"])
        raise PredictionsError(
            f"{file}: its folder {folder!r} names no sequence of the set (expected "
            "<sequence>/hmmr_output.pkl or <sequence>_<track>/hmmr_output.pkl)"
        )
    raise PredictionsError(
        f"{file}: not an HMMR prediction file (<dataset>-<sequence>-P<track>.pkl from the "
        "evaluation, or <sequence>[_<track>]/hmmr_output.pkl from the demo)"
    )


def _read_hmmr(files: Iterable[Path], sequences: set[str]) -> dict:
    out = {}
    for file in files:
        where = str(file)
        data = load_pickle(file)
        if not isinstance(data, dict):
            raise PredictionsError(f"{where}: expected a dict, got {type(data).__name__}")
        poses = _array(data, "poses", (None, 24, 3, 3), where)
        shapes = _array(data, "shapes", (len(poses), 10), where)
        out[_hmmr_track(file, sequences)] = ExternalTrack(
            where, torch.from_numpy(poses), torch.from_numpy(shapes), None
        )
    return out


def _read_vibe(files: Iterable[Path], fmt: str, sequences: set[str]) -> dict:
    out = {}
    for file in files:
        sequence = file.parent.name if file.name == OUTPUT_FILE[fmt] else file.stem
        if sequence not in sequences:
            raise PredictionsError(
                f"{file}: names no sequence of the set ({sequence!r}; expected "
                f"<sequence>/{OUTPUT_FILE[fmt]} or <sequence>.pkl)"
            )
        data = load_joblib(file)
        if not isinstance(data, dict):
            raise PredictionsError(
                f"{file}: expected a dict of person ids, got " f"{type(data).__name__}"
            )
        for person, res in data.items():
            where = f"{file} [person {person}]"
            if not isinstance(res, dict):
                raise PredictionsError(f"{where}: expected a dict, got {type(res).__name__}")
            pose = _array(res, "pose", (None, 72), where)
            betas = _array(res, "betas", (len(pose), 10), where)
            frames = _array(res, "frame_ids", (len(pose),), where).astype(np.int64)
            rot = axis_angle_to_matrix(torch.from_numpy(pose).view(-1, 24, 3))
            out[(sequence, int(person))] = ExternalTrack(
                where, rot, torch.from_numpy(betas), frames
            )
    return out


def read_predictions(path: str | Path, fmt: str, sequences: set[str]) -> dict:
    """``{(sequence, track_id): ExternalTrack}`` of a file or a folder of ``fmt`` files."""
    if fmt not in FORMATS:
        raise PredictionsError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    files = _files(Path(path))
    if not files:
        raise PredictionsError(f"--predictions {path}: no .pkl files")
    if fmt == "hmmr":
        return _read_hmmr(files, sequences)
    return _read_vibe(files, fmt, sequences)


def _rows(track: ExternalTrack, sample: ClipSample) -> np.ndarray:
    """(N,) row of ``track`` for each frame of ``sample``."""
    n = sample.num_frames
    where = f"{track.source} for {sample.sequence!r} track {sample.track_id}"
    if track.frame_ids is None:
        if len(track.betas) != n:
            raise PredictionsError(
                f"{where}: frame-count mismatch: {len(track.betas)} predicted frames, the "
                f"track has {n}"
            )
        return np.arange(n)
    row = {int(f): i for i, f in enumerate(track.frame_ids)}
    missing = [int(f) for f in sample.frame_index if int(f) not in row]
    if missing:
        raise PredictionsError(
            f"{where}: frame-count mismatch: {len(missing)} of the track's {n} frames have no "
            f"prediction (frame_ids lack {missing[:5]}{' ...' if len(missing) > 5 else ''})"
        )
    return np.asarray([row[int(f)] for f in sample.frame_index])


def score_predictions(
    predictions: dict,
    set_dirs: Sequence[str | Path],
    body: BodyModel,
    protocol: Protocol,
    *,
    seq_len: int,
    img_size: int,
) -> tuple[list[TrackScore], dict[str, int], list[str]]:
    """Score every track of ``set_dirs`` with ``predictions``; returns the scores, the
    skipped-sample counts and the prediction entries that matched no track.

    Raises:
        PredictionsError: a track without predictions, or with frames they do not cover.
    """
    shards = read_shards(list(set_dirs), "clip")
    counter = SkipCounter()
    scores, used, missing = [], set(), []
    posed, tpose = wants_mesh(protocol)
    for read in read_tracks(shards, 0, sum(s.samples for s in shards), counter):
        s = read.sample
        track = predictions.get((s.sequence, int(s.track_id)))
        if track is None:
            missing.append(f"{s.sequence!r} track {s.track_id}")
            continue
        used.add((s.sequence, int(s.track_id)))
        rows = _rows(track, s)
        frames = np.flatnonzero(make_plan(protocol.windowing, s.num_frames, seq_len, 0).predicted)
        rot = track.pose_rotmat[rows[frames]]
        betas = track.betas[rows[frames]]
        params = SMPLParams(torch.zeros(len(frames), 3), matrix_to_axis_angle(rot), rot, betas)
        mesh = posed and s.pose is not None
        out = outputs_from_prediction(
            ClipPrediction(params, {}, frames),
            body,
            mesh=mesh,
            tpose=tpose and mesh,
            keypoints=False,
        )
        truth = truth_of(s, read.key, body, mesh=mesh, tpose=tpose and mesh)
        scores.append(score_track(out, truth, protocol, img_size))
    if missing:
        raise PredictionsError(
            f"no predictions for {len(missing)} track(s) of the set: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    if not scores:
        raise PredictionsError(
            f"{', '.join(map(str, set_dirs))}: no track to score (skipped: {dict(counter.counts)})"
        )
    unmatched = sorted(f"{seq!r} track {t}" for seq, t in set(predictions) - used)
    return scores, dict(counter.counts), unmatched
