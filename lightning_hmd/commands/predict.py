"""``lightning-hmd predict`` (a trained model on a video or frame folder) and
``lightning-hmd hallucinate`` (past, present and future poses from one image)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning_hmd.commands.args import add_model_args, add_overrides, box


def run_predict(ns: argparse.Namespace) -> int:
    from lightning_hmd.inference.run import run_predict

    run_predict(
        ns.input,
        ns.ckpt,
        ns.out,
        tracks_path=ns.tracks,
        box=ns.box,
        encoder=ns.encoder,
        overrides=ns.overrides,
        focal=ns.focal,
        mode=ns.mode,
        formats=ns.format or ["npz"],
        exports=ns.export or [],
        render=not ns.no_render,
        side_view=ns.side_view,
        pngs=ns.png,
        frame_base=ns.frame_base,
        progress=not ns.no_progress,
    )
    return 0


def run_hallucinate(ns: argparse.Namespace) -> int:
    from lightning_hmd.inference.inputs import check_image_input, check_model_files, check_out_dir

    # the paths before the heavy imports and the model
    check_image_input(ns.image)
    check_model_files(ns.ckpt, ns.encoder)
    check_out_dir(ns.out)
    import cv2

    from lightning_hmd.inference.hallucinate import (
        hallucinate,
        picture,
        read_image,
        save_hallucination,
    )
    from lightning_hmd.inference.predict import load_predictor

    image = read_image(ns.image)
    predictor = load_predictor(ns.ckpt, ns.overrides, ns.encoder)
    poses, crop = hallucinate(predictor, image, ns.box)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    save_hallucination(poses, out / "hallucinated.npz")
    strip = picture(predictor, image, crop, poses)
    cv2.imwrite(str(out / "hallucinated.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    offsets = ", ".join(f"{dt:+d}" for dt in sorted(poses))
    print(f"offsets {offsets}: wrote {out / 'hallucinated.npz'} and {out / 'hallucinated.png'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="a trained model on a video or frame folder: predictions per track, an overlay",
        description="Tracks: AlphaPose/PoseFlow JSON, an OpenPose BODY_25 JSON folder, "
        "COCO/PoseTrack keypoints with track_id, or MOTChallenge boxes (frame,id,x,y,w,h). "
        "Without --tracks one person in --box, or the whole frame, on every frame. The "
        "config is the checkpoint's; key=value overrides change it.",
    )
    add_model_args(p)
    p.add_argument("--tracks", default=None, help="tracks file or OpenPose folder")
    p.add_argument("--box", type=box, default=None, help="x0,y0,x1,y1 pixels, without --tracks")
    p.add_argument("--out", default="predictions", help="output folder")
    p.add_argument(
        "--focal",
        type=float,
        default=None,
        help="focal length in pixels for translations (default: max(W, H))",
    )
    p.add_argument("--mode", choices=("temporal", "hallucinator"), default="temporal")
    p.add_argument(
        "--format", action="append", choices=("npz", "hmmr-pkl"), help="repeatable; default npz"
    )
    p.add_argument(
        "--export",
        action="append",
        choices=("smpl", "obj", "bvh"),
        help="repeatable: smpl.npz (AMASS-style), mesh/*.obj, skeleton.bvh",
    )
    p.add_argument("--no-render", action="store_true", help="skip overlay.mp4")
    p.add_argument("--side-view", action="store_true", help="overlay with a side view")
    p.add_argument("--png", action="store_true", help="also write the overlay frames as PNG")
    p.add_argument(
        "--frame-base",
        type=int,
        default=0,
        help="number of the first frame in the tracks file's frame names",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("input", metavar="INPUT", help="a video file (PyAV) or a folder of frames")
    add_overrides(p)
    p.set_defaults(func=run_predict)

    p = sub.add_parser(
        "hallucinate",
        help="past, present and future poses of the person in one image (the hallucinator)",
    )
    add_model_args(p)
    p.add_argument(
        "--box", type=box, default=None, help="x0,y0,x1,y1 pixels (default: the whole image)"
    )
    p.add_argument("--out", default="hallucinated", help="output folder")
    p.add_argument("image", metavar="IMAGE")
    add_overrides(p)
    p.set_defaults(func=run_hallucinate)
