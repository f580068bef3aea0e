"""``evaluate --predictions``: HMMR's, VIBE's and TCMR's saved outputs, written as those
codebases write them, scored against our ground truth by the same scorer as our models."""

from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pytest
import torch
from fixtures.clips import clip

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.commands import main
from lightning_hmd.data.schema import make_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.evaluation.external import PredictionsError, read_predictions, score_predictions
from lightning_hmd.evaluation.outputs import outputs_from_prediction, truth_of
from lightning_hmd.evaluation.predict import ClipPrediction
from lightning_hmd.evaluation.protocols import HMMR, TCMR, VIBE
from lightning_hmd.evaluation.scorer import score_track, summarise
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.structures import SMPLParams

# (sequence, track id, frames, first frame number in the video)
TRACKS = [("downtown_walk_00", 0, 40, 0), ("downtown_walk_00", 1, 25, 7), ("office_00", 0, 33, 3)]


@pytest.fixture(scope="module")
def body(synthetic_body_dir):
    return BodyModel.from_dir(synthetic_body_dir)


@pytest.fixture(scope="module")
def gt_set(tmp_path_factory, body):
    """A 3DPW-like test set whose GT joints are the body model's joints of its SMPL labels."""
    out = tmp_path_factory.mktemp("gt") / "test"
    rng = np.random.default_rng(0)
    samples = {}
    with ShardSetWriter(out, "test", 2, source="test") as w:
        for i, (seq, track, n, first) in enumerate(TRACKS):
            s = clip("3dpw", "test", i, n, with_3d=True)
            s.sequence, s.track_id = seq, track
            s.frame_index = np.arange(first, first + n, dtype=np.int32)
            pose = (0.3 * rng.normal(size=(n, 72))).astype(np.float32)
            s.pose, s.betas = pose, rng.normal(size=10).astype(np.float32)
            with torch.no_grad():
                rot = axis_angle_to_matrix(torch.from_numpy(pose).view(n, 24, 3))
                joints = body(rot, torch.from_numpy(s.betas).expand(n, 10)).joints
            s.joints3d = joints[:, :14].numpy()
            w.write(s, make_key("3dpw", seq, track, 0))
            samples[(seq, track)] = s
    return out, samples


def _predicted(samples, noise, seed=1):
    """Predicted SMPL parameters per track: the labels plus noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, s in samples.items():
        n = s.num_frames
        pose = s.pose + noise * rng.normal(size=s.pose.shape).astype(np.float32)
        betas = np.tile(s.betas, (n, 1)) + noise * rng.normal(size=(n, 10)).astype(np.float32)
        out[key] = (pose.astype(np.float32), betas.astype(np.float32))
    return out


def write_hmmr_cache(folder, samples, preds):
    """HMMR's evaluation cache: predictions_cache/<load_dir>/<dataset>-<vid>-P<p_id>.pkl of
    Tester.predict_all_images' dict (plus tf_path and p_id), verts split into -verts.pkl."""
    folder.mkdir(parents=True)
    for (seq, track), (pose, betas) in preds.items():
        n = len(pose)
        rot = axis_angle_to_matrix(torch.from_numpy(pose).view(n, 24, 3)).numpy()
        data = {
            "cams": np.ones((n, 3), np.float32), "joints": np.zeros((n, 25, 3), np.float32),
            "kps": np.zeros((n, 25, 2), np.float32), "poses": rot, "shapes": betas,
            "omegas": np.zeros((n, 85), np.float32),
            "joints_delta": np.zeros((n, 2, 25, 3), np.float32),
            "tf_path": f"tf_records/3dpw/test/{seq}.tfrecord", "p_id": track,
        }  # fmt: skip
        with open(folder / f"3dpw-{seq}-P{track}.pkl", "wb") as f:
            pickle.dump(data, f)
        with open(folder / f"3dpw-{seq}-P{track}-verts.pkl", "wb") as f:
            pickle.dump({"verts": np.zeros((n, 5, 3), np.float32)}, f)


def write_hmmr_demo(folder, preds):
    """HMMR's demo: demo_output/<video>/hmmr_output.pkl, <video>_<track>/ for tracks > 0."""
    for (seq, track), (pose, betas) in preds.items():
        d = folder / (seq if track == 0 else f"{seq}_{track}")
        d.mkdir(parents=True)
        n = len(pose)
        rot = axis_angle_to_matrix(torch.from_numpy(pose).view(n, 24, 3)).numpy()
        with open(d / "hmmr_output.pkl", "wb") as f:
            pickle.dump({"poses": rot, "shapes": betas, "cams": np.ones((n, 3))}, f, protocol=2)


def write_vibe(folder, samples, preds, name="vibe_output.pkl", shuffle=False):
    """VIBE's / TCMR's demo.py: joblib.dump({person_id: output_dict}) per video folder."""
    by_video = {}
    for (seq, track), (pose, betas) in preds.items():
        n = len(pose)
        frames = samples[(seq, track)].frame_index.astype(np.int64)
        order = np.random.default_rng(track).permutation(n) if shuffle else np.arange(n)
        by_video.setdefault(seq, {})[track] = {
            "pred_cam": np.ones((n, 3), np.float32)[order],
            "orig_cam": np.ones((n, 4), np.float32)[order],
            "verts": np.zeros((n, 6890, 3), np.float32)[order],
            "pose": pose[order], "betas": betas[order],
            "joints3d": np.zeros((n, 49, 3), np.float32)[order],
            "joints2d": None, "bboxes": np.ones((n, 4), np.float32)[order],
            "frame_ids": frames[order],
        }  # fmt: skip
    for seq, results in by_video.items():
        (folder / seq).mkdir(parents=True, exist_ok=True)
        joblib.dump(results, folder / seq / name)


def _direct(samples, preds, body, protocol, T):
    """The same parameters through our own prediction path: the scores must be identical."""
    from lightning_hmd.evaluation.windows import make_plan

    scores = []
    for (seq, track), (pose, betas) in sorted(preds.items()):
        s = samples[(seq, track)]
        f = np.flatnonzero(make_plan(protocol.windowing, s.num_frames, T, 0).predicted)
        aa = torch.from_numpy(pose[f]).view(-1, 24, 3)
        params = SMPLParams(torch.zeros(len(f), 3), aa, axis_angle_to_matrix(aa),
                            torch.from_numpy(betas[f]))  # fmt: skip
        out = outputs_from_prediction(ClipPrediction(params, {}, f), body, mesh=True,
                                      tpose=True, keypoints=False)  # fmt: skip
        key = make_key("3dpw", seq, track, 0)
        scores.append(score_track(out, truth_of(s, key, body, mesh=True, tpose=True),
                                  protocol, 224))  # fmt: skip
    return summarise(scores, protocol).metrics


@pytest.mark.parametrize("fmt", ["hmmr-cache", "hmmr-demo", "vibe", "tcmr"])
def test_each_format_scores_like_our_own_predictions(tmp_path, gt_set, body, fmt):
    set_dir, samples = gt_set
    preds = _predicted(samples, 0.05)
    folder = tmp_path / "preds"
    if fmt == "hmmr-cache":
        write_hmmr_cache(folder / "hmmr_model.ckpt-1119816", samples, preds)
    elif fmt == "hmmr-demo":
        write_hmmr_demo(folder, preds)
    else:
        write_vibe(folder, samples, preds, f"{fmt}_output.pkl", shuffle=True)
    name = fmt.split("-")[0]
    read = read_predictions(folder, name, {s for s, _ in samples})
    assert sorted(read) == sorted(samples)
    for protocol, T in ((HMMR, 20), (VIBE, 16), (TCMR, 16)):
        scores, skipped, unmatched = score_predictions(
            read, [set_dir], body, protocol, seq_len=T, img_size=224
        )
        got = summarise(scores, protocol).metrics
        want = _direct(samples, preds, body, protocol, T)
        assert got.keys() == want.keys() and not skipped and not unmatched
        for k, v in want.items():
            if v is None:  # 2D metrics: not scored for another codebase's crops
                assert got[k] is None and k in ("kp", "kp_pa", "pck"), k
                continue
            assert got[k] == pytest.approx(v, rel=1e-5, abs=1e-6), (protocol.name, k)
        assert got["mpjpe"] > 1.0 and got["pve"] > 1.0


def test_the_truth_scores_zero(tmp_path, gt_set, body):
    set_dir, samples = gt_set
    write_vibe(tmp_path, samples, _predicted(samples, 0.0))
    read = read_predictions(tmp_path, "vibe", {s for s, _ in samples})
    scores, _, _ = score_predictions(read, [set_dir], body, VIBE, seq_len=16, img_size=224)
    m = summarise(scores, VIBE).metrics
    for k in ("mpjpe", "pa_mpjpe", "pve", "accel_error", "vel_error"):
        assert m[k] == pytest.approx(0.0, abs=1e-2), k


def test_frame_count_mismatch_and_missing_keys_are_named(tmp_path, gt_set, body):
    set_dir, samples = gt_set
    seqs = {s for s, _ in samples}
    preds = _predicted(samples, 0.0)
    short = dict(preds)
    pose, betas = short[("office_00", 0)]
    short[("office_00", 0)] = (pose[:-2], betas[:-2])
    write_hmmr_cache(tmp_path / "h", samples, short)
    read = read_predictions(tmp_path / "h", "hmmr", seqs)
    with pytest.raises(
        PredictionsError,
        match=r"3dpw-office_00-P0.pkl for 'office_00' track "
        r"0: frame-count mismatch: 31 predicted frames, the track has 33",
    ):
        score_predictions(read, [set_dir], body, HMMR, seq_len=20, img_size=224)

    write_vibe(tmp_path / "v", samples, short)
    read = read_predictions(tmp_path / "v", "vibe", seqs)
    with pytest.raises(
        PredictionsError,
        match=r"office_00/vibe_output.pkl \[person 0\] for "
        r"'office_00' track 0: frame-count mismatch: 2 of the track's 33 frames "
        r"have no prediction \(frame_ids lack \[34, 35\]\)",
    ):
        score_predictions(read, [set_dir], body, HMMR, seq_len=16, img_size=224)

    data = joblib.load(tmp_path / "v" / "office_00" / "vibe_output.pkl")
    del data[0]["frame_ids"]
    joblib.dump(data, tmp_path / "v" / "office_00" / "vibe_output.pkl")
    with pytest.raises(PredictionsError, match=r"\[person 0\]: missing key 'frame_ids'"):
        read_predictions(tmp_path / "v", "vibe", seqs)

    with open(tmp_path / "h" / "3dpw-office_00-P0.pkl", "wb") as f:
        pickle.dump({"poses": np.zeros((33, 24, 3)), "shapes": np.zeros((33, 10))}, f)
    with pytest.raises(
        PredictionsError, match=r"'poses' has shape \(33, 24, 3\), expected " r"\(N, 24, 3, 3\)"
    ):
        read_predictions(tmp_path / "h", "hmmr", seqs)

    partial = {k: v for k, v in preds.items() if k != ("downtown_walk_00", 1)}
    write_vibe(tmp_path / "p", samples, partial)
    read = read_predictions(tmp_path / "p", "vibe", seqs)
    with pytest.raises(
        PredictionsError, match="no predictions for 1 track.*'downtown_walk_00' " "track 1"
    ):
        score_predictions(read, [set_dir], body, VIBE, seq_len=16, img_size=224)
    with pytest.raises(PredictionsError, match="names no sequence of the set"):
        read_predictions(tmp_path / "p", "vibe", {"other"})


def test_a_pickle_that_would_run_code_is_refused(tmp_path, gt_set):
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    folder = tmp_path / "office_00"
    folder.mkdir()
    joblib.dump({0: {"pose": Payload()}}, folder / "tcmr_output.pkl")
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        read_predictions(tmp_path, "tcmr", {"office_00"})


def test_the_command_line_writes_the_protocol_card(tmp_path, gt_set, synthetic_body_dir):
    set_dir, samples = gt_set
    write_vibe(tmp_path / "vibe", samples, _predicted(samples, 0.05))
    out = tmp_path / "eval"
    args = ["evaluate", "--predictions", str(tmp_path / "vibe"), "--format", "vibe", "--set",
            str(set_dir), "--protocol", "vibe", "--out", str(out),
            f"body.model_dir={synthetic_body_dir}"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["protocol"]["name"] == "vibe" and "windowing" in result["protocol"]["card"]
    assert result["format"] == "vibe" and result["seq_len"] == 16
    assert result["num_tracks"] == 3 and result["num_scored_frames"] == 32 + 16 + 32
    rows = (out / "per_sequence.csv").read_text().splitlines()
    assert rows[0].startswith("protocol,dataset,sequence,tracks") and len(rows) == 3
    assert rows[1].startswith("vibe,3dpw,downtown_walk_00,2,65,48,")
    assert main(["evaluate", "--predictions", str(tmp_path / "vibe"), "--set", str(set_dir),
                 f"body.model_dir={synthetic_body_dir}"]) == 2  # no --format  # fmt: skip


@pytest.mark.parametrize("seq_len", ["0", "-3"])
def test_a_seq_len_below_one_is_refused_naming_the_flag(
    tmp_path, gt_set, synthetic_body_dir, capsys, seq_len
):
    set_dir, samples = gt_set
    write_vibe(tmp_path / "vibe", samples, _predicted(samples, 0.05))
    out = tmp_path / "eval"
    args = ["evaluate", "--predictions", str(tmp_path / "vibe"), "--format", "vibe", "--set",
            str(set_dir), "--seq-len", seq_len, "--out", str(out),
            f"body.model_dir={synthetic_body_dir}"]  # fmt: skip
    assert main(args) == 2  # not the format's default window length in its place
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"lightning-hmd: error: --seq-len {seq_len}: ")
    assert not out.exists()
