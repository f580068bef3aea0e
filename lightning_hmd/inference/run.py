"""``lightning-hmd predict``: input, tracks, model, predictions, exports and renders, in the
order that lets bad input fail before long work: the paths (input, tracks, checkpoint, output
folder) are checked before any heavy module is imported, and the tracks and the checkpoint
before any frame is decoded. Importing this module loads no model code."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_hmd.errors import ConfigError
from lightning_hmd.inference.inputs import (
    check_frames_input,
    check_model_files,
    check_out_dir,
    check_tracks_input,
)

if TYPE_CHECKING:
    from lightning_hmd.body.smpl import BodyModel
    from lightning_hmd.inference.predict import TrackPrediction

FORMATS = ("npz", "hmmr-pkl")
EXPORTS = ("smpl", "obj", "bvh")  # AMASS-style npz, an OBJ per frame, BVH skeleton animation


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
    from lightning_hmd.inference.predict import (
        load_predictor,
        predict_tracks,
        save_hmmr_pkl,
        save_npz,
    )
    from lightning_hmd.inference.tracks import box_track, read_tracks

    source = open_frames(input_path)
    if tracks_path is not None:
        tracks = read_tracks(tracks_path, source.names, frame_base)
        echo(f"{len(tracks)} track(s) from {tracks_path}")
    else:
        tracks = [box_track(box, source.width, source.height, source.count)]
        where = f"box {tuple(box)}" if box is not None else "the whole frame"
        echo(f"no tracks file: one person in {where} on every frame")
    predictor = load_predictor(ckpt, overrides, encoder)
    need_vertices = render or "hmmr-pkl" in formats or "obj" in exports
    preds = predict_tracks(predictor, source, tracks, focal, mode, need_vertices, progress, echo)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"input": str(input_path), "checkpoint": str(ckpt), "mode": mode,
               "frames": source.count, "fps": source.fps, "tracks": {}}  # fmt: skip
    for p in preds:
        d = out / track_dir_name(p.track_id)
        d.mkdir(exist_ok=True)
        if "npz" in formats:
            save_npz(p, d / "predictions.npz", source)
        if "hmmr-pkl" in formats:
            save_hmmr_pkl(p, d / "hmmr_output.pkl")
        write_exports(p, predictor.body, d, source.fps, exports)
        summary["tracks"][p.track_id] = {"dir": d.name, "first_frame": int(p.frames[0]),
                                         "frames": len(p.frames)}  # fmt: skip
    if render:
        from lightning_hmd.inference.render import overlay_frames, write_pngs, write_video

        faces = predictor.body.faces.numpy()
        frames = overlay_frames(source, preds, faces, side_view, progress)
        if pngs:
            frames = write_pngs(frames, out / "frames")
        n = write_video(frames, out / "overlay.mp4", source.fps)
        echo(f"wrote {out / 'overlay.mp4'} ({n} frames)")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(f"wrote {len(preds)} track(s) to {out}")
    return preds
