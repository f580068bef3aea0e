"""Person tracks from the files people already have.

Formats (detected from the file):

- **AlphaPose** ``alphapose-results.json``: a list of detections ``{"image_id": "12.jpg",
  "keypoints": [x, y, score] * K, "idx": track}`` (``idx`` from ``--pose_track``; without
  it detections are linked by box overlap);
- **PoseFlow** ``alphapose-results-forvis-tracked.json``: ``{"12.jpg": [{"keypoints": ...,
  "idx": track}, ...], ...}`` (HMMR's demo input, read by ``get_labels_poseflow`` in
  ``demo_video.py``);
- **OpenPose** BODY_25 JSON folder: one ``<name>_<frame>_keypoints.json`` per frame with
  ``people[].pose_keypoints_2d`` (OpenPose does not track: people are linked by box overlap);
- **COCO-style keypoints with track ids** (PoseTrack): ``{"images": [...], "annotations":
  [{"image_id", "track_id", "keypoints"}]}``, frames in the images' order;
- **plain boxes** in the MOTChallenge text format (DeepSORT, ByteTrack...): lines
  ``frame, id, left, top, width, height, ...`` with 1-based frames.

Frames named by image files are matched to the input's frames by name, then by the number
in the name (``frame_number``; ``frame_base`` is the number of the first frame, 0 unless the
frames were dumped 1-based).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_hmd.data.cropping import PERSON_HEIGHT_PX, BoxParams, box_from_keypoints
from lightning_hmd.inference.frames import InputError, frame_number

# HMMR's demo (``predict_on_tracks``, ``demo_video.py``): keypoints with a score above 0.1
# make the box
VIS_THRESHOLD = 0.1
LINK_IOU = 0.3  # untracked detections join the track whose last box overlaps this much


class TracksError(InputError):
    """A tracks file that cannot be used: names the file and the problem."""


@dataclass
class PersonTrack:
    """One person over the frames where it was seen.

    Attributes:
        track_id: the file's id (as text).
        frames: (T,) frame indices, increasing.
        keypoints: (T, K, 3) pixels and scores, or None (boxes only).
        boxes: (T, 4) ``x0, y0, x1, y1`` pixels, or None (keypoints only).
    """

    track_id: str
    frames: np.ndarray
    keypoints: np.ndarray | None = None
    boxes: np.ndarray | None = None

    def box_params(self, num_frames: int) -> BoxParams:
        """Per-frame boxes over all ``num_frames`` (NaN where the person was not seen): from
        the keypoints as HMMR (``kp_to_bbox_param``, ``src/util/smooth_bbox.py``: diagonal of
        the visible keypoints' box is 150 px), or from a detection box (its diagonal made
        150 px)."""
        center = np.full((num_frames, 2), np.nan)
        scale = np.full(num_frames, np.nan)
        if self.keypoints is not None:
            found = box_from_keypoints(self.keypoints, VIS_THRESHOLD)
            center[self.frames], scale[self.frames] = found.center, found.scale
        else:
            b = np.asarray(self.boxes, np.float64)
            diag = np.linalg.norm(b[:, 2:] - b[:, :2], axis=1)
            center[self.frames] = (b[:, :2] + b[:, 2:]) / 2
            with np.errstate(divide="ignore"):
                scale[self.frames] = np.where(diag > 0, PERSON_HEIGHT_PX / diag, np.nan)
        return BoxParams(center=center, scale=scale)


def box_track(
    box: Sequence[float] | None, width: int, height: int, frames: int, what: str = "frame"
) -> PersonTrack:
    """One person in ``box`` (``x0, y0, x1, y1`` pixels; default the whole picture) on each of
    ``frames`` frames.

    Raises:
        InputError: a box that is empty or not inside the ``width`` x ``height`` picture.
    """
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, width - 1.0, height - 1.0)
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"--box {x0},{y0},{x1},{y1}: x1 > x0 and y1 > y0 needed")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise InputError(f"--box {x0},{y0},{x1},{y1} is not inside the {width} x {height} {what}")
    boxes = np.tile(np.array([x0, y0, x1, y1], np.float64), (frames, 1))
    return PersonTrack("0", np.arange(frames), boxes=boxes)


def _box(kp: np.ndarray) -> np.ndarray:
    vis = kp[:, 2] > VIS_THRESHOLD
    if not vis.any():
        return np.full(4, np.nan)
    xy = kp[vis, :2]
    return np.concatenate([xy.min(0), xy.max(0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)
    return inter / union if union > 0 else 0.0


def link_by_overlap(detections: dict[int, list[np.ndarray]]) -> list[dict[int, np.ndarray]]:
    """Untracked per-frame keypoints -> tracks: each detection joins the track whose box in
    the previous frame overlaps it most (IoU >= ``LINK_IOU``, greedy, best pairs first), or
    starts a new track. A simple tracker for files that have none (OpenPose)."""
    tracks: list[dict[int, np.ndarray]] = []
    open_: list[int] = []  # tracks seen in the previous frame
    for f in sorted(detections):
        dets = detections[f]
        boxes = [_box(d) for d in dets]
        scores = []
        for t in open_:
            last = _box(tracks[t][max(tracks[t])])
            for i, b in enumerate(boxes):
                if np.isfinite(b).all() and np.isfinite(last).all():
                    scores.append((_iou(last, b), t, i))
        taken_t, taken_i, seen = set(), set(), []
        for score, t, i in sorted(scores, reverse=True):
            if score < LINK_IOU or t in taken_t or i in taken_i:
                continue
            tracks[t][f] = dets[i]
            taken_t.add(t)
            taken_i.add(i)
            seen.append(t)
        for i, d in enumerate(dets):
            if i not in taken_i:
                tracks.append({f: d})
                seen.append(len(tracks) - 1)
        open_ = seen
    return tracks


def _keypoints(values: Sequence[float], where: str) -> np.ndarray:
    kp = np.asarray(values, np.float64)
    if kp.size == 0 or kp.size % 3:
        raise TracksError(f"{where}: keypoints must be [x, y, score] * K, got {kp.size} values")
    return kp.reshape(-1, 3)


class _FrameIndex:
    """Frame names (or numbers) of a tracks file -> indices of the input's frames."""

    def __init__(self, names: Sequence[str], frame_base: int, path: Path) -> None:
        self.by_name = {n: i for i, n in enumerate(names)}
        self.count, self.base, self.path = len(names), frame_base, path

    def __call__(self, name: str | int) -> int:
        if isinstance(name, str) and Path(name).name in self.by_name:
            return self.by_name[Path(name).name]
        number = name if isinstance(name, int) else frame_number(name)
        if number is None:
            raise TracksError(f"{self.path}: frame {name!r} has no frame number")
        index = number - self.base
        if not 0 <= index < self.count:
            raise TracksError(
                f"{self.path}: frame {name!r} is outside the input's {self.count} frames "
                f"(frame_base {self.base})"
            )
        return index


def _from_keypoint_dict(tracks: dict[str, dict[int, np.ndarray]]) -> list[PersonTrack]:
    out = []
    for tid, by_frame in tracks.items():
        frames = np.array(sorted(by_frame), np.int64)
        k = {v.shape[0] for v in by_frame.values()}
        if len(k) != 1:
            raise TracksError(f"track {tid}: keypoint counts differ between frames ({k})")
        out.append(PersonTrack(tid, frames, np.stack([by_frame[f] for f in frames])))
    return out


def _linked(detections: dict[int, list[np.ndarray]]) -> list[PersonTrack]:
    return _from_keypoint_dict({str(i): t for i, t in enumerate(link_by_overlap(detections))})


def _alphapose(items: list, index: _FrameIndex, path: Path) -> list[PersonTrack]:
    tracked: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    untracked: dict[int, list[np.ndarray]] = defaultdict(list)
    for n, det in enumerate(items):
        if not isinstance(det, dict) or "keypoints" not in det or "image_id" not in det:
            raise TracksError(
                f"{path}: entry {n} is not an AlphaPose detection (image_id, " "keypoints)"
            )
        f = index(det["image_id"])
        kp = _keypoints(det["keypoints"], f"{path}: entry {n}")
        idx = det.get("idx")
        if isinstance(idx, list):  # AlphaPose writes idx as a one-element list in some versions
            idx = idx[0] if len(idx) == 1 else None
        if idx is None:
            untracked[f].append(kp)
        else:
            tracked[str(idx)][f] = kp
    return _from_keypoint_dict(tracked) + _linked(untracked)


def _poseflow(data: dict, index: _FrameIndex, path: Path) -> list[PersonTrack]:
    tracked: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for name, dets in data.items():
        f = index(name)
        for det in dets:
            tracked[str(det["idx"])][f] = _keypoints(det["keypoints"], f"{path}: {name}")
    return _from_keypoint_dict(tracked)


def _coco(data: dict, path: Path) -> list[PersonTrack]:
    images = data.get("images") or []
    order = sorted(images, key=lambda im: (im.get("frame_id", im.get("id")), im.get("id")))
    frame_of = {im["id"]: i for i, im in enumerate(order)}
    tracked: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for n, ann in enumerate(data["annotations"]):
        if "track_id" not in ann or ann.get("image_id") not in frame_of:
            raise TracksError(f"{path}: annotation {n} has no track_id or an unknown image_id")
        kp = _keypoints(ann.get("keypoints") or [], f"{path}: annotation {n}")
        if (kp[:, 2] > 0).any():
            tracked[str(ann["track_id"])][frame_of[ann["image_id"]]] = kp
    return _from_keypoint_dict(tracked)


def _openpose(folder: Path, index: _FrameIndex) -> list[PersonTrack]:
    files = sorted(folder.glob("*_keypoints.json"))
    detections: dict[int, list[np.ndarray]] = defaultdict(list)
    for p in files:
        number = frame_number(p.name.removesuffix("_keypoints.json"))
        f = index(number if number is not None else p.name)
        for person in json.loads(p.read_text()).get("people", []):
            kp = _keypoints(person.get("pose_keypoints_2d") or [], str(p))
            if (kp[:, 2] > VIS_THRESHOLD).any():
                detections[f].append(kp)
    return _linked(detections)


def _mot(path: Path, index: _FrameIndex) -> list[PersonTrack]:
    rows: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        try:
            frame, tid = int(float(parts[0])), str(int(float(parts[1])))
            x, y, w, h = map(float, parts[2:6])
        except (ValueError, IndexError):
            raise TracksError(
                f"{path}: line {n} is not 'frame, id, left, top, width, height'"
            ) from None
        rows[tid][index(frame - 1 + index.base)] = np.array([x, y, x + w, y + h])
    tracks = []
    for tid, by_frame in rows.items():
        frames = np.array(sorted(by_frame), np.int64)
        tracks.append(PersonTrack(tid, frames, boxes=np.stack([by_frame[f] for f in frames])))
    return tracks


def read_tracks(
    path: str | Path, frame_names: Sequence[str], frame_base: int = 0
) -> list[PersonTrack]:
    """Every person track of a tracks file or folder (format detected), longest first.

    Raises:
        TracksError: unknown format, malformed entries, frames outside the input, or no
            person at all.
    """
    path = Path(path)
    if not path.exists():
        raise TracksError(f"{path}: no such tracks file or folder")
    index = _FrameIndex(frame_names, frame_base, path)
    if path.is_dir():
        if not any(path.glob("*_keypoints.json")):
            raise TracksError(f"{path}: a folder of tracks must hold OpenPose *_keypoints.json")
        tracks = _openpose(path, index)
    elif path.suffix.lower() in (".txt", ".csv"):
        tracks = _mot(path, index)
    else:
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TracksError(f"{path}: not JSON ({e}) nor a MOT .txt/.csv") from None
        if isinstance(data, list):
            tracks = _alphapose(data, index, path)
        elif isinstance(data, dict) and "annotations" in data:
            tracks = _coco(data, path)
        elif isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            tracks = _poseflow(data, index, path)
        else:
            raise TracksError(
                f"{path}: unknown tracks format (expected AlphaPose, PoseFlow, COCO/PoseTrack "
                "JSON, an OpenPose folder or MOT boxes)"
            )
    if not tracks:
        raise TracksError(f"{path}: no person in the tracks file")
    return sorted(tracks, key=lambda t: (-len(t.frames), t.track_id))
