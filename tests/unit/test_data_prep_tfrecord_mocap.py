"""hmmr-tfrecord and mocap converters on fixtures in the released formats."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.clips import jpeg_frames
from fixtures.datasets import (
    read_set,
    write_amass,
    write_hmmr_mocap,
    write_hmmr_tfrecord,
    write_neutrmosh,
)

from data_prep import hmmr_tfrecord, mocap
from data_prep.common import LayoutError
from lightning_hmd.commands import main


def _track(n: int, seed: int, *, pixels: bool, smpl: bool, joints: bool, phis: bool) -> dict:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-0.9, 0.9, (n, 25, 3))
    kp[..., 2] = rng.uniform(size=(n, 25)) > 0.3
    if pixels:
        kp[..., :2] = (kp[..., :2] + 1) * 112
    return {
        "n": n,
        "kp": kp,
        "jpegs": jpeg_frames(n, seed, size=224),
        "poses": rng.normal(0, 0.2, (n, 72)) if smpl else None,
        "shape": rng.normal(0, 1, 10),
        "gt3ds": rng.normal(0, 0.5, (n, 14, 3)) if joints else None,
        "phis": rng.normal(0, 1, (n, 2048)) if phis else None,
        "start": 7,
    }


def test_tracks_and_mocap_convert_with_their_labels(tmp_path, capsys):
    src, out = tmp_path / "tf_records", tmp_path / "out"
    train = [
        _track(6, 0, pixels=False, smpl=True, joints=True, phis=True),
        _track(5, 1, pixels=False, smpl=False, joints=False, phis=True),
    ]
    test = [_track(4, 2, pixels=True, smpl=False, joints=True, phis=False)]
    write_hmmr_tfrecord(src / "insta_variety" / "train" / "train_000.tfrecord", train,
                        precomputed=True)  # fmt: skip
    write_hmmr_tfrecord(src / "h36m" / "test" / "S9_000.tfrecord", test, precomputed=False)
    poses, shapes = np.random.default_rng(3).normal(0, 1, (2, 5, 72))[0], np.ones((5, 10))
    write_hmmr_mocap(src / "mocap_neutrMosh" / "neutrSMPL_CMU_0.tfrecord", poses, shapes)
    args = ["data", "convert", "hmmr-tfrecord", str(src), "--out", str(out), "--no-progress"]
    assert main(args) == 0

    got = read_set(out / "insta-variety" / "train")
    assert len(got) == 2
    for sample, t in zip(got, train, strict=True):
        vis = t["kp"][..., 2] > 0
        np.testing.assert_allclose(sample.kp2d[..., 2], vis)
        np.testing.assert_allclose(sample.kp2d[vis][:, :2], t["kp"][vis][:, :2], atol=1e-6)
        assert not sample.kp2d[~vis].any()  # invisible keypoints are zero
        np.testing.assert_allclose(sample.phi, t["phis"].astype(np.float16))
        assert sample.encoder_id == hmmr_tfrecord.HMR_ENCODER_ID
        assert sample.jpeg == t["jpegs"]
    assert got[0].pose is not None and got[0].joints3d is not None
    np.testing.assert_allclose(got[0].pose, train[0]["poses"], atol=1e-6)
    np.testing.assert_allclose(got[0].betas, train[0]["shape"], atol=1e-6)
    np.testing.assert_allclose(got[0].joints3d, train[0]["gt3ds"], atol=1e-6)
    assert got[1].pose is None and got[1].joints3d is None

    (sample,) = read_set(out / "h36m" / "test")
    t = test[0]
    vis = t["kp"][..., 2] > 0
    # test records hold crop pixels: normalised as 2 x / 224 - 1
    np.testing.assert_allclose(sample.kp2d[vis][:, :2], t["kp"][vis][:, :2] / 112 - 1, atol=1e-6)
    np.testing.assert_array_equal(sample.frame_index, np.arange(7, 11))
    assert sample.phi is None and sample.pose is None
    # the crop is 224 px around centre (320, 240) of an image scaled by 0.5
    np.testing.assert_allclose(sample.crop_box[0], [416, 256, 864, 704])

    cmu = read_set(out / "mocap_cmu")
    np.testing.assert_allclose(np.stack([m.pose for m in cmu]), poses, atol=1e-6)
    assert main(["data", "check", str(out)]) == 0
    assert "OK: no problems" in capsys.readouterr().out


def test_truncated_tfrecord_is_named(tmp_path):
    path = tmp_path / "x" / "train" / "a.tfrecord"
    write_hmmr_tfrecord(path, [_track(3, 0, pixels=False, smpl=False, joints=False, phis=True)],
                        precomputed=True)  # fmt: skip
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="a.tfrecord"):
        hmmr_tfrecord.convert(tmp_path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "x" / "train" / "manifest.json").exists()


def test_mocap_sources_exclusions_and_amass(tmp_path, capsys):
    src, out = tmp_path / "mocap", tmp_path / "out"
    mosh = write_neutrmosh(src, {
        "neutrSMPL_CMU/01/01_01.pkl": 4,
        "neutrSMPL_H3.6/S1/Walking.pkl": 3,
        "neutrSMPL_H3.6/S9/Walking.pkl": 3,  # test subject: left out
        "neutrSMPL_H3.6/S11_x/Eating.pkl": 2,  # test subject: left out
        "neutrSMPL_jointLim/lim.pkl": 2,
    })  # fmt: skip
    amass = write_amass(src / "AMASS", {"CMU/02/02_01_poses.npz": 6})
    args = ["data", "convert", "mocap", str(src), "--out", str(out), "--no-progress",
            "--set", "stride=2"]  # fmt: skip
    assert main(args) == 0
    h36m = read_set(out / "mocap_h36m")
    expected = mosh["neutrSMPL_H3.6/S1/Walking.pkl"]
    np.testing.assert_allclose([m.pose for m in h36m], expected["poses"][::2], atol=1e-6)
    np.testing.assert_allclose(h36m[0].betas, expected["betas"], atol=1e-6)
    assert len(read_set(out / "mocap_cmu")) == 2 and len(read_set(out / "mocap_jointlim")) == 1
    got = read_set(out / "mocap_amass")
    a = amass["CMU/02/02_01_poses.npz"]
    assert len(got) == 3
    np.testing.assert_allclose(got[1].pose[:66], a["poses"][2, :66], atol=1e-6)
    assert not got[1].pose[66:].any()  # SMPL's hand joints at rest
    np.testing.assert_allclose(got[1].betas, a["betas"][:10], atol=1e-6)
    assert {m.dataset for m in got} == {"amass"}
    # frame order kept: each pose names its file and its index among the written poses
    name = "AMASS/CMU/02/02_01_poses"
    assert [(m.sequence, m.frame) for m in got] == [(name, i) for i in range(3)]
    cmu = read_set(out / "mocap_cmu")
    assert [(m.sequence, m.frame) for m in cmu] == [("01/01_01", 0), ("01/01_01", 1)]
    assert main(["data", "check", str(out)]) == 0
    with pytest.raises(LayoutError, match="no mocap found"):
        mocap.convert(tmp_path / "out", tmp_path / "o2")


def _released_layout(src):
    """A root in the released layout: one track set and two mocap sources."""
    track = _track(4, 5, pixels=False, smpl=False, joints=False, phis=True)
    write_hmmr_tfrecord(src / "insta_variety" / "train" / "train_000.tfrecord", [track],
                        precomputed=True)  # fmt: skip
    rng = np.random.default_rng(4)
    mocap_dir = src / "mocap_neutrMosh"
    write_hmmr_mocap(mocap_dir / "neutrSMPL_CMU_0.tfrecord", rng.normal(0, 1, (3, 72)),
                     np.ones((3, 10)))  # fmt: skip
    write_hmmr_mocap(mocap_dir / "neutrSMPL_H3.6_0.tfrecord", rng.normal(0, 1, (2, 72)),
                     np.zeros((2, 10)))  # fmt: skip
    return mocap_dir


def _poses(out, name):
    return np.stack([m.pose for m in read_set(out / name)])


def test_the_mocap_folder_itself_converts_as_the_root_does(tmp_path, capsys):
    src = tmp_path / "tf_records"
    mocap_dir = _released_layout(src)
    root = hmmr_tfrecord.convert(src, tmp_path / "root", progress=False)
    assert sorted(root) == ["insta-variety/train", "mocap_cmu", "mocap_h36m"]
    args = ["data", "convert", "hmmr-tfrecord", str(mocap_dir), "--out", str(tmp_path / "m"),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["mocap_cmu", "mocap_h36m"]
    for name in ("mocap_cmu", "mocap_h36m"):
        np.testing.assert_array_equal(_poses(tmp_path / "m", name), _poses(tmp_path / "root", name))
    # symmetrically a dataset's folder, or one split of it, converts that set alone
    for i, folder in enumerate((src / "insta_variety", src / "insta_variety" / "train")):
        got = hmmr_tfrecord.convert(folder, tmp_path / f"d{i}", progress=False)
        assert sorted(got) == ["insta-variety/train"]
        (a,) = read_set(tmp_path / f"d{i}" / "insta-variety" / "train")
        (b,) = read_set(tmp_path / "root" / "insta-variety" / "train")
        assert a.jpeg == b.jpeg and a.sequence == b.sequence
        np.testing.assert_array_equal(a.phi, b.phi)


def test_a_folder_without_released_tfrecords_is_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match=r"empty: no \*.tfrecord file below it; expected"):
        hmmr_tfrecord.convert(tmp_path / "empty", tmp_path / "out", progress=False)
    stray = tmp_path / "stray"
    write_hmmr_mocap(stray / "poses" / "other_0.tfrecord", np.zeros((1, 72)), np.zeros((1, 10)))
    args = ["data", "convert", "hmmr-tfrecord", str(stray), "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{stray}: 1 *.tfrecord file(s)" in err
    assert "poses/other_0.tfrecord" in err and "mocap_neutrMosh" in err
    assert not (tmp_path / "out").exists()
