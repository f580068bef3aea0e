"""``lightning-hmd predict``: input, tracks, model, predictions, exports and renders, in the
order that lets bad input fail before long work: the paths (input, tracks, checkpoint, output
folder) are checked before any heavy module is imported, and the tracks and the checkpoint
before any frame is decoded. Importing this module loads no model code."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lightning_hmd.errors import ConfigError
from lightning_hmd.inference.inputs import (
    check_frames_input,
    check_model_files,
    check_out_dir,
    check_tracks_input,
)

if TYPE_CHECKING:
    from lightning_hmd.body.smpl import BodyModel
    from lightning_hmd.inference.frames import FrameSource
    from lightning_hmd.inference.predict import TrackPrediction
    from lightning_hmd.inference.tracks import PersonTrack
    from lightning_hmd.structures import SMPLParams

FORMATS = ("npz", "hmmr-pkl")
EXPORTS = ("smpl", "obj", "bvh")  # AMASS-style npz, an OBJ per frame, BVH skeleton animation


def _arrays(params: SMPLParams, prefix: str = "") -> dict[str, np.ndarray]:
    return {
        f"{prefix}pose_rotmat": params.pose_rotmat.numpy(),
        f"{prefix}pose_aa": params.pose_aa.numpy(),
        f"{prefix}betas": params.betas.numpy(),
        f"{prefix}cam": params.cam.numpy(),
    }


def save_npz(pred: TrackPrediction, path: Path, source: FrameSource) -> None:
    """``predictions.npz`` of one track (keys in the README; Δt predictions as
    ``dt+5/pose_aa`` ...). Written under a temporary name and renamed."""
    arrays = {
        "frames": pred.frames,
        "fps": np.float64(source.fps),
        "image_size": np.array([source.width, source.height]),
        "focal": np.float64(pred.focal),
        "box_center": pred.box_center,
        "box_scale": pred.box_scale,
        **_arrays(pred.current),
        "joints3d": pred.joints3d,
        "keypoints2d": pred.keypoints2d,
        "translation": pred.translation,
    }
    for dt, params in pred.deltas.items():
        arrays.update(_arrays(params, f"dt{dt:+d}/"))
    if pred.vertices is not None:
        arrays["vertices"] = pred.vertices
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def save_hmmr_pkl(pred: TrackPrediction, path: Path) -> None:
    """HMMR's ``hmmr_output.pkl`` fields (written by ``predict_on_tracks`` in
    ``demo_video.py``, keys of ``Tester.make_fetch_dict`` in ``src/evaluation/tester.py``):
    ``cams`` (T, 3), ``joints`` (T, J, 3), ``kps`` (T, J, 2, normalised crop coordinates),
    ``poses`` (T, 24, 3, 3), ``shapes`` (T, 10), ``verts`` (T, V, 3), ``omegas`` (T, 85:
    camera, pose, shape)."""
    if pred.vertices is None:
        raise ConfigError("the hmmr-pkl format holds vertices: predict with vertices")
    cur = pred.current
    data = {
        "cams": pred.cam,
        "joints": pred.joints3d,
        "kps": pred.kps_crop,
        "poses": cur.pose_rotmat.numpy(),
        "shapes": cur.betas.numpy(),
        "verts": pred.vertices,
        "omegas": cur.to_theta().numpy(),
    }
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=2)
    tmp.replace(path)


def write_exports(
    pred: TrackPrediction, body: BodyModel, folder: Path, fps: float, exports: Sequence[str]
) -> None:
    """The asked-for exports of one track into its folder."""
    from lightning_hmd.inference.export import export_bvh, export_obj_sequence, export_smpl_npz

    if "smpl" in exports:
        export_smpl_npz(pred, folder / "smpl.npz", fps)
    if "obj" in exports:
        export_obj_sequence(pred, body.faces.numpy(), folder / "mesh")
    if "bvh" in exports:
        export_bvh(pred, body, folder / "skeleton.bvh", fps)


def track_dir_name(track_id: str) -> str:
    return "track_" + re.sub(r"[^A-Za-z0-9_.-]+", "-", track_id)


def check_predict_inputs(
    input_path: str | Path,
    ckpt: str | Path,
    out: str | Path,
    tracks_path: str | Path | None = None,
    encoder: str | Path | None = None,
    formats: Sequence[str] = ("npz",),
    exports: Sequence[str] = (),
) -> None:
    """What :func:`run_predict` can check without loading anything: the options, and that
    the input, the tracks, the checkpoint (and encoder weights) exist and are readable and
    the output folder can be written.

    Raises:
        ValueError: an unknown format or export.
        InputError: the first path that fails, named.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ConfigError(f"--format {', '.join(sorted(unknown))}: not one of {', '.join(FORMATS)}")
    unknown = set(exports) - set(EXPORTS)
    if unknown:
        raise ConfigError(f"--export {', '.join(sorted(unknown))}: not one of {', '.join(EXPORTS)}")
    check_frames_input(input_path)
    if tracks_path is not None:
        check_tracks_input(tracks_path)
    check_model_files(ckpt, encoder)
    check_out_dir(out)


def _person_tracks(
    source: FrameSource,
    tracks_path: str | Path | None,
    box: Sequence[float] | None,
    frame_base: int,
    echo: Callable[[str], None],
) -> list[PersonTrack]:
    """The tracks to predict: those of the tracks file, else one person in ``box`` (or the
    whole frame) on every frame."""
    from lightning_hmd.inference.tracks import box_track, read_tracks

    if tracks_path is not None:
        tracks = read_tracks(tracks_path, source.names, frame_base)
        echo(f"{len(tracks)} track(s) from {tracks_path}")
        return tracks
    tracks = [box_track(box, source.width, source.height, source.count)]
    where = f"box {tuple(box)}" if box is not None else "the whole frame"
    echo(f"no tracks file: one person in {where} on every frame")
    return tracks


def _write_track_outputs(
    pred: TrackPrediction,
    folder: Path,
    source: FrameSource,
    body: BodyModel,
    formats: Sequence[str],
    exports: Sequence[str],
) -> dict:
    """One track's predictions (``formats``) and ``exports`` into ``folder``; returns the
    track's entry of ``summary.json``."""
    folder.mkdir(exist_ok=True)
    if "npz" in formats:
        save_npz(pred, folder / "predictions.npz", source)
    if "hmmr-pkl" in formats:
        save_hmmr_pkl(pred, folder / "hmmr_output.pkl")
    write_exports(pred, body, folder, source.fps, exports)
    return {"dir": folder.name, "first_frame": int(pred.frames[0]), "frames": len(pred.frames)}


def _render_overlay(
    source: FrameSource,
    preds: Sequence[TrackPrediction],
    body: BodyModel,
    out: Path,
    side_view: bool,
    pngs: bool,
    progress: bool,
    echo: Callable[[str], None],
) -> None:
    """``overlay.mp4`` (and, with ``pngs``, ``frames/``): the meshes drawn over the input."""
    from lightning_hmd.inference.render import overlay_frames, write_pngs, write_video

    frames = overlay_frames(source, preds, body.faces.numpy(), side_view, progress)
    if pngs:
        frames = write_pngs(frames, out / "frames")
    n = write_video(frames, out / "overlay.mp4", source.fps)
    echo(f"wrote {out / 'overlay.mp4'} ({n} frames)")


def run_predict(
    input_path: str | Path,
    ckpt: str | Path,
    out: str | Path,
    tracks_path: str | Path | None = None,
    box: Sequence[float] | None = None,
    encoder: str | Path | None = None,
    overrides: Sequence[str] = (),
    focal: float | None = None,
    mode: str = "temporal",
    formats: Sequence[str] = ("npz",),
    exports: Sequence[str] = (),
    render: bool = False,
    side_view: bool = False,
    pngs: bool = False,
    frame_base: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[TrackPrediction]:
    """Predict every track of a video or frame folder and write the outputs to ``out``:
    ``track_<id>/predictions.npz`` (and ``hmmr_output.pkl``, ``smpl.npz``, ``mesh/*.obj``,
    ``skeleton.bvh``), ``overlay.mp4``, ``frames/``, ``summary.json``."""
    check_predict_inputs(input_path, ckpt, out, tracks_path, encoder, formats, exports)
    from lightning_hmd.inference.frames import open_frames
    from lightning_hmd.inference.predict import load_predictor, predict_tracks

    source = open_frames(input_path)
    tracks = _person_tracks(source, tracks_path, box, frame_base, echo)
    predictor = load_predictor(ckpt, overrides, encoder)
    need_vertices = render or "hmmr-pkl" in formats or "obj" in exports
    preds = predict_tracks(predictor, source, tracks, focal, mode, need_vertices, progress, echo)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "input": str(input_path),
        "checkpoint": str(ckpt),
        "mode": mode,
        "frames": source.count,
        "fps": source.fps,
        "tracks": {},
    }
    for p in preds:
        folder = out / track_dir_name(p.track_id)
        entry = _write_track_outputs(p, folder, source, predictor.body, formats, exports)
        summary["tracks"][p.track_id] = entry
    if render:
        _render_overlay(source, preds, predictor.body, out, side_view, pngs, progress, echo)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(f"wrote {len(preds)} track(s) to {out}")
    return preds
