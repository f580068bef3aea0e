"""Shard schema: exact round trips, keys, and rejection of bad members."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from lightning_hmd.data.schema import (
    SCHEMA_VERSION,
    ClipSample,
    MocapSample,
    SchemaError,
    decode_clip,
    decode_mocap,
    encode_clip,
    encode_mocap,
    make_key,
    make_mocap_key,
    split_member_name,
)

JPEG = b"\xff\xd8\xff\xe0fake-jpeg-payload\xff\xd9"


def make_clip(T: int = 5, *, full: bool = True, seed: int = 0, split: str = "train") -> ClipSample:
    """A tiny clip of T frames; ``full`` adds every optional member."""
    rng = np.random.default_rng(seed)
    kp2d = rng.uniform(-1, 1, (T, 25, 3)).astype(np.float32)
    kp2d[..., 2] = rng.integers(0, 2, (T, 25))
    x0 = rng.uniform(0, 100, T)
    y0 = rng.uniform(0, 100, T)
    box = np.stack([x0, y0, x0 + 50, y0 + 80], axis=1).astype(np.float32)
    clip = ClipSample(
        dataset="synthetic",
        split=split,
        sequence=f"seq{seed}",
        track_id=seed % 3,
        fps=25.0,
        kp2d=kp2d,
        crop_box=box,
        crop_scale=rng.uniform(0.5, 2, T).astype(np.float32),
        frame_index=np.arange(T, dtype=np.int32) * 2 + seed,
        chunk=seed,
    )
    if full:
        clip.phi = rng.normal(size=(T, 16)).astype(np.float16)
        clip.encoder_id = "resnet50-hmr"
        clip.jpeg = [JPEG + bytes([i]) for i in range(T)]
        clip.joints3d = rng.normal(size=(T, 14, 3)).astype(np.float32)
        clip.pose = rng.normal(size=(T, 72)).astype(np.float32)
        clip.betas = rng.normal(size=(10,)).astype(np.float32)
    return clip


def assert_clips_equal(a: ClipSample, b: ClipSample) -> None:
    for name in ("dataset", "split", "sequence", "track_id", "chunk", "fps", "encoder_id"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.jpeg == b.jpeg
    assert a.schema_version == b.schema_version == SCHEMA_VERSION
    for name in (
        "kp2d",
        "crop_box",
        "crop_scale",
        "frame_index",
        "phi",
        "joints3d",
        "pose",
        "betas",
    ):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
        else:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x, y), name


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("full", [True, False])
def test_clip_round_trip_exact(full: bool) -> None:
    clip = make_clip(full=full)
    members = encode_clip(clip, "synthetic__seq0__t0000_c0000")
    assert members["__key__"] == "synthetic__seq0__t0000_c0000"
    if full:
        assert "f000004.jpg" in members and "phi.npy" in members
        assert clip.has_smpl and clip.has_3d_joints
    else:
        assert set(members) == {
            "__key__", "meta.json", "kp2d.npy", "crop_box.npy", "crop_scale.npy",
            "frame_index.npy",
        }  # fmt: skip
    decoded = decode_clip(members)
    assert_clips_equal(clip, decoded)
    assert encode_clip(decoded, "synthetic__seq0__t0000_c0000") == members


def test_mocap_round_trip_exact() -> None:
    rng = np.random.default_rng(1)
    m = MocapSample(
        pose=rng.normal(size=72).astype(np.float32),
        betas=rng.normal(size=10).astype(np.float32),
        dataset="cmu",
    )
    out = decode_mocap(encode_mocap(m, make_mocap_key("cmu", 7)))
    assert np.array_equal(out.pose, m.pose) and np.array_equal(out.betas, m.betas)
    assert out.dataset == "cmu"
    assert (out.sequence, out.frame) == ("", -1)  # order unknown
    assert set(json.loads(encode_mocap(m, "cmu__m7")["meta.json"])) == {"dataset", "schema_version"}
    with pytest.raises(SchemaError, match=r"pose\.npy: expected shape \(72,\), got \(24, 3\)"):
        encode_mocap(MocapSample(m.pose.reshape(24, 3), m.betas), "cmu__m000000000")


def test_mocap_order_round_trips_and_is_checked() -> None:
    pose, betas = np.zeros(72, np.float32), np.zeros(10, np.float32)
    m = MocapSample(pose, betas, "cmu", sequence="01/01_01", frame=12)
    out = decode_mocap(encode_mocap(m, "cmu__m1"))
    assert (out.sequence, out.frame) == ("01/01_01", 12)
    for sequence, frame in (("a", -1), ("", 3), ("a", -2), ("a", True)):
        with pytest.raises(SchemaError, match="meta.json"):
            encode_mocap(MocapSample(pose, betas, "cmu", sequence=sequence, frame=frame), "k")


def test_make_key() -> None:
    assert make_key("penn-action", "0001", 0, 3) == "penn-action__0001__t0000_c0003"
    k1 = make_key("h36m", "S9_Directions 1.54138969", 0, 0)
    k2 = make_key("h36m", "S9_Directions-1-54138969", 0, 0)
    assert "." not in k1 and " " not in k1 and k1 != k2
    for bad in [("H36M", "s", 0, 0), ("a__b", "s", 0, 0), ("h36m", "", 0, 0), ("h36m", "s", -1, 0)]:
        with pytest.raises(SchemaError):
            make_key(*bad)
    with pytest.raises(SchemaError, match="longer than"):
        make_key("h36m", "x" * 300, 0, 0)


def test_split_member_name_at_the_first_dot() -> None:
    assert split_member_name("h36m__S9__t0000_c0000.f000003.jpg") == (
        "h36m__S9__t0000_c0000",
        "f000003.jpg",
    )
    with pytest.raises(SchemaError, match="no '.<member>' suffix"):
        split_member_name("no_suffix")


def test_bad_shape_named() -> None:
    clip = make_clip()
    clip.kp2d = clip.kp2d[:, :14]
    with pytest.raises(
        SchemaError, match=r"kp2d\.npy: expected shape \(\*, 25, 3\), got \(5, 14, 3\)"
    ):
        encode_clip(clip, "k")
    members = encode_clip(make_clip(), "k")
    members["joints3d.npy"] = npy(np.zeros((4, 14, 3), np.float32))
    with pytest.raises(
        SchemaError, match=r"joints3d\.npy: expected shape \(5, 14, 3\), got \(4, 14, 3\)"
    ):
        decode_clip(members)
    members = encode_clip(make_clip(), "k")
    members["phi.npy"] = npy(np.zeros((5, 16), np.float32))
    with pytest.raises(SchemaError, match=r"phi\.npy: expected dtype float16, got float32"):
        decode_clip(members)


def test_nan_named() -> None:
    members = encode_clip(make_clip(), "k")
    pose = np.zeros((5, 72), np.float32)
    pose[2, 3] = np.nan
    members["pose.npy"] = npy(pose)
    with pytest.raises(SchemaError, match=r"pose\.npy: 1 non-finite"):
        decode_clip(members)


@pytest.mark.parametrize("name", ["evil.pyd", "x.pickle", "frames.pth", "f12.jpg", "notes.txt"])
def test_unknown_member_rejected(name: str) -> None:
    members = encode_clip(make_clip(), "k")
    members[name] = b"\x80\x04K\x01."
    with pytest.raises(SchemaError, match=f"unknown member '{name}'"):
        decode_clip(members)


def test_pickled_npy_never_loaded() -> None:
    members = encode_clip(make_clip(), "k")
    members["kp2d.npy"] = npy(np.array([{"a": 1}], dtype=object))
    with pytest.raises(SchemaError, match=r"kp2d\.npy: not a readable numpy array without pickle"):
        decode_clip(members)


def test_missing_and_inconsistent_members() -> None:
    members = encode_clip(make_clip(), "k")
    del members["crop_box.npy"]
    with pytest.raises(SchemaError, match=r"missing member crop_box\.npy"):
        decode_clip(members)
    members = encode_clip(make_clip(), "k")
    del members["betas.npy"]
    with pytest.raises(SchemaError, match="betas"):
        decode_clip(members)
    members = encode_clip(make_clip(), "k")
    del members["f000002.jpg"]
    with pytest.raises(SchemaError, match="JPEG"):
        decode_clip(members)
    members = encode_clip(make_clip(), "k")
    members["meta.json"] = members["meta.json"].replace(
        b'"schema_version":1', b'"schema_version":2'
    )
    with pytest.raises(SchemaError, match="schema_version expected 1, got 2"):
        decode_clip(members)


def test_clip_rejected_in_mocap_decoder() -> None:
    with pytest.raises(SchemaError, match="unknown member 'kp2d.npy'"):
        decode_mocap(encode_clip(make_clip(), "k"))
