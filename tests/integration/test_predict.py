"""``lightning-hmd predict`` on a rendered video with known motion, from every tracks format:
the same people found, outputs consistent with the crops' geometry, HMMR's pickle, an
overlay video; bad input named before the work starts."""

from __future__ import annotations

import pickle

import av
import numpy as np
import pytest
import torch
from fixtures.video import (
    FOCAL,
    HEIGHT,
    WIDTH,
    make_video,
    write_alphapose,
    write_mot,
    write_openpose,
    write_poseflow,
    write_posetrack,
)

from lightning_hmd.commands import main

FRAMES = 30


@pytest.fixture(scope="module")
def model(tmp_path_factory, offscreen_gl):
    """A tiny model trained briefly on synthetic data (the pipeline's checks do not need a
    good one) and the body model it uses."""
    root = tmp_path_factory.mktemp("model")
    data = root / "data"
    args = ["data", "synth", "--out", str(data), "--clips", "4", "--val-clips", "1",
            "--test-clips", "1", "--frames", "16", "--mocap", "100", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    over = [f"body.model_dir={data / 'body_model'}", f"data.train_sets=[{data / 'train'}]",
            "data.val_sets=[]", f"data.mocap_sets=[{data / 'mocap'}]", f"run.root={root}",
            "run.name=m", "trainer.max_batches=4", "trainer.image_every_batches=0",
            "trainer.progress_bar=false"]  # fmt: skip
    assert main(["train", "--preset", "tiny", *over]) == 0
    return root / "m" / "checkpoints" / "last.ckpt", data / "body_model"


@pytest.fixture(scope="module")
def video(tmp_path_factory, model):
    out = tmp_path_factory.mktemp("video")
    people = make_video(model[1], out, frames=FRAMES)
    tracks = {
        "alphapose": write_alphapose(people, out / "alphapose-results.json"),
        "poseflow": write_poseflow(people, out / "alphapose-results-forvis-tracked.json"),
        "openpose": write_openpose(people, out / "openpose"),
        "posetrack": write_posetrack(people, out / "posetrack.json"),
        "mot": write_mot(people, out / "gt.txt"),
    }
    return out, people, tracks


def _predict(model, source, out, *extra):
    ckpt, body = model
    args = ["predict", str(source), "--ckpt", str(ckpt), "--out", str(out), "--no-progress",
            "--focal", str(FOCAL), *extra, f"body.model_dir={body}"]  # fmt: skip
    assert main(args) == 0
    return {d.name: dict(np.load(d / "predictions.npz")) for d in sorted(out.glob("track_*"))}


def _left_first(preds):
    return sorted(preds.values(), key=lambda p: p["box_center"][0, 0])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_predict_from_every_tracks_format(model, video, tmp_path):
    out, people, tracks = video
    ref = _predict(model, out / "video.mp4", tmp_path / "alphapose", "--tracks",
                   str(tracks["alphapose"]), "--format", "npz", "--format", "hmmr-pkl",
                   "--side-view", "--export", "smpl", "--export", "obj",
                   "--export", "bvh")  # fmt: skip
    assert len(ref) == 2
    for p in ref.values():
        assert p["pose_rotmat"].shape == (FRAMES, 24, 3, 3) and p["betas"].shape == (FRAMES, 10)
        assert p["joints3d"].shape[:2] == p["keypoints2d"].shape[:2] == (FRAMES, 25)
        assert {"dt-2/pose_aa", "dt+2/pose_aa"} <= set(p)  # the tiny model's Δt heads
        # the translation puts the body where the crop's camera put it: exactly so in the
        # plane z = 0 of the body's frame (elsewhere perspective within the body differs)
        flat = p["joints3d"] * (1.0, 1.0, 0.0) + p["translation"][:, None]
        proj = FOCAL * flat[..., :2] / flat[..., 2:3] + ((WIDTH - 1) / 2, (HEIGHT - 1) / 2)
        np.testing.assert_allclose(proj, p["keypoints2d"], atol=1e-3)
        # the keypoints stay in the person's box (an untrained model still predicts a body
        # near the crop's centre)
        dist = np.linalg.norm(p["keypoints2d"].mean(1) - p["box_center"], axis=-1)
        assert dist.max() < 150 / p["box_scale"].min()
    # HMMR's pickle: its field names, the same numbers
    with open(tmp_path / "alphapose" / "track_0" / "hmmr_output.pkl", "rb") as f:
        pkl = pickle.load(f)
    assert set(pkl) == {"cams", "joints", "kps", "poses", "shapes", "verts", "omegas"}
    p0 = ref["track_0"]
    np.testing.assert_allclose(pkl["omegas"][:, 3:75], p0["pose_aa"].reshape(FRAMES, 72))
    np.testing.assert_allclose(pkl["joints"], p0["joints3d"])
    assert pkl["verts"].shape[0] == FRAMES and pkl["kps"].shape == (FRAMES, 25, 2)
    exported = tmp_path / "alphapose" / "track_0"  # (read back in tests/unit/test_inference_export)
    assert len(list((exported / "mesh").glob("frame*.obj"))) == FRAMES
    assert (exported / "skeleton.bvh").read_text().count("\n") > FRAMES
    np.testing.assert_allclose(np.load(exported / "smpl.npz")["trans"], p0["translation"])
    # the same people from the other keypoint formats and from boxes: the same predictions
    for fmt in ("poseflow", "openpose", "mot"):
        got = _predict(model, out / "video.mp4", tmp_path / fmt, "--tracks", str(tracks[fmt]),
                       "--no-render")  # fmt: skip
        tol = {"rtol": 1e-4, "atol": 1e-3}
        for a, b in zip(_left_first(ref), _left_first(got), strict=True):
            for key in ("box_center", "box_scale", "joints3d", "keypoints2d"):
                np.testing.assert_allclose(b[key], a[key], **tol, err_msg=f"{fmt} {key}")
    got = _predict(model, out / "video.mp4", tmp_path / "pt", "--tracks", str(tracks["posetrack"]),
                   "--no-render")  # fmt: skip
    assert len(got) == 2  # 17 COCO keypoints: slightly other boxes, the same two people
    # the overlay: input frames with the meshes, and the side view
    with av.open(str(tmp_path / "alphapose" / "overlay.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == FRAMES and frames[0].shape == (HEIGHT, 2 * WIDTH, 3)
    with av.open(str(out / "video.mp4")) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    changed = np.abs(frames[0][:, :WIDTH].astype(int) - first).max(-1) > 40
    assert changed.sum() > 200  # the meshes cover the people
    side = frames[0][:, WIDTH:]
    assert (np.abs(side.astype(int) - 200).max(-1) > 40).sum() > 200


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_frame_folder_whole_frame_and_bad_input(model, video, tmp_path, capsys):
    out, people, tracks = video
    got = _predict(model, out / "frames", tmp_path / "folder", "--tracks",
                   str(tracks["alphapose"]), "--no-render")  # fmt: skip
    assert len(got) == 2
    got = _predict(model, out / "frames", tmp_path / "box", "--box", "0,0,160,240", "--no-render")
    assert "one person in box (0.0, 0.0, 160.0, 240.0) on every frame" in capsys.readouterr().out
    (p,) = got.values()
    np.testing.assert_allclose(p["box_center"], np.tile([80.0, 120.0], (FRAMES, 1)), atol=1e-6)
    ckpt, body = model

    def fails(*args):
        code = main(["predict", *map(str, args), "--no-progress", f"body.model_dir={body}"])
        assert code == 2
        return capsys.readouterr().err

    (tmp_path / "broken.mp4").write_bytes(b"\x00\x01not a video" * 100)
    assert "broken.mp4: not a readable video" in fails(tmp_path / "broken.mp4", "--ckpt", ckpt)
    (tmp_path / "empty").mkdir()
    assert "empty: no images" in fails(tmp_path / "empty", "--ckpt", ckpt)
    assert "is not inside the 320 x 240 frame" in fails(out / "frames", "--ckpt", ckpt,
                                                        "--box", "0,0,400,100")  # fmt: skip
    (tmp_path / "x.json").write_text('{"what": 1}')
    err = fails(out / "frames", "--ckpt", ckpt, "--tracks", tmp_path / "x.json")
    assert "x.json: unknown tracks format" in err
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    err = fails(out / "frames", "--ckpt", tmp_path / "other.ckpt")
    assert "other.ckpt: not a lightning_hmd checkpoint" in err
    blob = torch.load(ckpt, weights_only=True)  # weights of another model than its config's
    blob["hyper_parameters"]["config"]["model"]["regressor_hidden"] = 16
    torch.save(blob, tmp_path / "mismatch.ckpt")
    err = fails(out / "frames", "--ckpt", tmp_path / "mismatch.ckpt")
    assert "mismatch.ckpt: does not match the configured model" in err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_hallucinate_one_image(model, video, tmp_path, capsys):
    out, people, tracks = video
    ckpt, body = model
    box = "170,60,300,230"
    args = ["hallucinate", str(out / "frames" / "000010.png"), "--ckpt", str(ckpt), "--box", box,
            "--out", str(tmp_path / "hal"), f"body.model_dir={body}"]  # fmt: skip
    assert main(args) == 0
    assert "offsets -2, +0, +2" in capsys.readouterr().out
    d = np.load(tmp_path / "hal" / "hallucinated.npz")
    assert list(d["offsets"]) == [-2, 0, 2] and d["dt+2/pose_aa"].shape == (24, 3)
    import cv2

    strip = cv2.imread(str(tmp_path / "hal" / "hallucinated.png"))
    assert strip.shape == (224, 3 * 224, 3)
    # the same crop through `predict --mode hallucinator`: the same current and future poses
    got = _predict(model, out / "frames", tmp_path / "p", "--box", box, "--mode", "hallucinator",
                   "--no-render")  # fmt: skip
    (p,) = got.values()
    np.testing.assert_allclose(p["pose_aa"][10], d["dt+0/pose_aa"], atol=1e-5)
    np.testing.assert_allclose(p["dt+2/pose_aa"][10], d["dt+2/pose_aa"], atol=1e-5)
    args[args.index(box)] = "0,0,330,100"
    assert main(args) == 2
    assert "is not inside the 320 x 240 image" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_model_trained_on_synthetic_data_finds_the_people(offscreen_gl, tmp_path, capsys):
    """The stated error: with every tracks format, a single-frame model trained briefly on
    synthetic data (the quickstart's HMR stage, 300 batches of 32 frames from 64 clips)
    predicts the two rendered people's 14 LSP joints with an MPJPE (pelvis-aligned) at most
    85 % of the mean pose's. (Its PA-MPJPE is not yet below the mean pose's at this budget;
    the quickstart's models reach PA-MPJPE 132-138 mm on this video against the mean pose's
    165-167 mm: benchmarks/results/predict_throughput.md.)"""
    from lightning_hmd.body.model_files import load_mean_params
    from lightning_hmd.body.smpl import BodyModel
    from lightning_hmd.experiments.quickstart import HMR_STAGE
    from lightning_hmd.geometry.rotations import axis_angle_to_matrix
    from lightning_hmd.metrics import mpjpe, pa_mpjpe

    data = tmp_path / "data"
    synth = ["data", "synth", "--out", str(data), "--clips", "64", "--val-clips", "0",
             "--test-clips", "1", "--frames", "16", "--mocap", "100", "--no-progress"]  # fmt: skip
    assert main(synth) == 0
    body_dir = data / "body_model"
    over = [*HMR_STAGE, f"body.model_dir={body_dir}", f"data.train_sets=[{data / 'train'}]",
            "data.val_sets=[]", f"data.mocap_sets=[{data / 'mocap'}]", f"run.root={tmp_path}",
            "run.name=hmr", "trainer.max_batches=300", "data.batch_size=32",
            "optim.warmup_batches=20", "trainer.ckpt_every_batches=0",
            "trainer.image_every_batches=0", "trainer.progress_bar=false",
            "logger.kind=csv"]  # fmt: skip
    assert main(["train", "--preset", "quickstart", *over]) == 0
    people = make_video(body_dir, tmp_path / "video", frames=FRAMES)
    writers = {"alphapose": write_alphapose, "poseflow": write_poseflow,
               "openpose": write_openpose, "posetrack": write_posetrack,
               "mot": write_mot}  # fmt: skip
    body = BodyModel.from_dir(body_dir)
    pose, shape = load_mean_params(body_dir)
    pose = torch.as_tensor(pose, dtype=torch.float32).view(24, 3).clone()
    pose[0] = torch.tensor([np.pi, 0.0, 0.0])  # upright, facing the camera
    with torch.no_grad():
        mean = body(axis_angle_to_matrix(pose)[None], torch.as_tensor(shape).float()[None],
                    joints_only=True).joints[0, :14]  # fmt: skip
    model = (tmp_path / "hmr" / "checkpoints" / "last.ckpt", body_dir)
    for fmt, write in writers.items():
        target = tmp_path / fmt
        source = write(people, target if fmt == "openpose" else target.with_suffix(
            ".txt" if fmt == "mot" else ".json"))  # fmt: skip
        got = _predict(model, tmp_path / "video" / "video.mp4", tmp_path / f"out_{fmt}",
                       "--tracks", str(source), "--no-render")  # fmt: skip
        for pred, person in zip(_left_first(got), people, strict=True):
            joints = torch.from_numpy(pred["joints3d"][:, :14]).float()
            truth = torch.from_numpy(person.lsp14).float()
            err, base = float(mpjpe(joints, truth).mean()), float(mpjpe(mean.expand_as(truth),
                                                                        truth).mean())  # fmt: skip
            pa = float(pa_mpjpe(joints, truth).mean())
            print(f"{fmt}: MPJPE {err:.1f} mm (mean pose {base:.1f}), PA-MPJPE {pa:.1f} mm")
            assert err <= 0.85 * base, (fmt, err, base)
