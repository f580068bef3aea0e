"""Feature extraction: phi of the centre crops, batched, resumable."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_data_schema import make_clip

from lightning_hmd.commands import main
from lightning_hmd.data.check import check_shards
from lightning_hmd.data.features import (
    FeatureError,
    build_feature_encoder,
    centre_crop_clip,
    decode_frames,
    extract_features,
    to_tensor,
)
from lightning_hmd.data.manifest import read_manifest
from lightning_hmd.data.schema import decode_clip, make_key
from lightning_hmd.data.shards import ShardSetWriter

SIZE = 64


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _image_clip(seed: int, t: int, stored: int = SIZE) -> object:
    rng = np.random.default_rng(seed)
    clip = make_clip(T=t, full=False, seed=seed)
    clip.jpeg = [_jpeg(rng.integers(0, 255, (stored, stored, 3), dtype=np.uint8)) for _ in range(t)]
    return clip


def _write(root: Path, clips: list, per_shard: int = 2) -> None:
    with ShardSetWriter(root / "train", "train", per_shard, "unit") as w:
        for c in clips:
            w.write(c, make_key(c.dataset, c.sequence, c.track_id, c.chunk))


def _read_all(set_dir: Path) -> dict:
    out = {}
    for entry in read_manifest(set_dir).shards:
        groups: dict[str, dict[str, bytes]] = {}
        with tarfile.open(set_dir / entry.name) as tar:
            for info in tar.getmembers():
                key, member = info.name.split(".", 1)
                groups.setdefault(key, {})[member] = tar.extractfile(info).read()
        out.update({k: decode_clip(v) for k, v in groups.items()})
    return out


@pytest.fixture(scope="module")
def encoder() -> tuple:
    return build_feature_encoder("resnet50_v2", 32, None, seed=0)


def test_features_equal_the_encoder_on_each_frame(tmp_path: Path, encoder: tuple) -> None:
    net, enc_id = encoder
    clips = [_image_clip(i, t) for i, t in enumerate([3, 5, 2])]
    _write(tmp_path / "in", clips)
    manifests = extract_features(
        tmp_path / "in", tmp_path / "out", net, enc_id, img_size=SIZE, batch_frames=4,
        progress=False,
    )  # fmt: skip
    assert list(manifests) == ["train"] and manifests["train"].total_frames == 10
    assert check_shards(tmp_path / "out").ok
    got = _read_all(tmp_path / "out" / "train")
    assert enc_id == "resnet50_v2-d32-init0"
    for c in clips:
        out = got[make_key(c.dataset, c.sequence, c.track_id, c.chunk)]
        assert out.encoder_id == enc_id and out.phi.dtype == np.float16
        assert out.phi.shape == (c.num_frames, 32) and out.jpeg is None
        with torch.inference_mode():
            want = net.eval()(to_tensor(decode_frames(c.jpeg))).numpy()
        np.testing.assert_allclose(out.phi.astype(np.float32), want, rtol=2e-3, atol=2e-3)
        np.testing.assert_array_equal(out.kp2d, c.kp2d)  # stored crop == encoder crop


def test_resume_after_a_failure_gives_the_same_shards(tmp_path: Path, encoder: tuple) -> None:
    net, enc_id = encoder
    clips = [_image_clip(i, 3) for i in range(5)]
    _write(tmp_path / "in", clips, per_shard=1)
    extract_features(tmp_path / "in", tmp_path / "ref", net, enc_id, img_size=SIZE,
                     batch_frames=3, progress=False)  # fmt: skip

    calls = []
    fail_at = [3]

    class Failing(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(len(x))
            if len(calls) == fail_at[0]:
                raise RuntimeError("killed")
            return net(x)

    with pytest.raises(RuntimeError, match="killed"):
        extract_features(tmp_path / "in", tmp_path / "run", Failing(), enc_id, img_size=SIZE,
                         batch_frames=3, progress=False)  # fmt: skip
    assert not (tmp_path / "run" / "train" / "manifest.json").exists()
    calls.clear()
    fail_at[0] = 0
    extract_features(tmp_path / "in", tmp_path / "run", Failing(), enc_id, img_size=SIZE,
                     batch_frames=3, progress=False)  # fmt: skip
    assert len(calls) == 3  # two clips were kept; the other three are encoded now
    ref, run = read_manifest(tmp_path / "ref" / "train"), read_manifest(tmp_path / "run" / "train")
    assert [s.sha256 for s in run.shards] == [s.sha256 for s in ref.shards]
    # a second re-run finds the complete set and encodes nothing
    calls.clear()
    extract_features(tmp_path / "in", tmp_path / "run", Failing(), enc_id, img_size=SIZE,
                     progress=False)  # fmt: skip
    assert calls == []


def test_centre_crop_keeps_keypoints_on_their_pixels() -> None:
    clip = make_clip(T=1, full=False)
    img = np.zeros((1, 300, 300, 3), np.uint8)
    img[0, 200, 100] = 255  # x=100, y=200 in the stored crop
    clip.kp2d[:] = 0
    clip.kp2d[0, 0] = [2 * 100 / 300 - 1, 2 * 200 / 300 - 1, 1]
    clip.kp2d[0, 1] = [0.99, -0.99, 1]  # near a corner: outside the 224 centre crop
    clip.crop_box = np.array([[0, 0, 600, 600]], np.float32)
    out, crops = centre_crop_clip(replace(clip), img, 224)
    assert crops.shape == (1, 224, 224, 3)
    y, x = np.unravel_index(np.argmax(crops[0, ..., 0]), (224, 224))
    kx, ky = (out.kp2d[0, 0, :2] + 1) * 112
    assert abs(kx - x) <= 1 and abs(ky - y) <= 1 and out.kp2d[0, 0, 2] == 1
    np.testing.assert_array_equal(out.kp2d[0, 1], [0, 0, 0])
    np.testing.assert_allclose(out.crop_box[0], [76, 76, 524, 524])  # 224/300 of the side


def test_clips_without_frames_are_an_error(tmp_path: Path, encoder: tuple) -> None:
    _write(tmp_path / "in", [make_clip(T=2, full=False)])
    with pytest.raises(FeatureError, match="no JPEG frames"):
        extract_features(tmp_path / "in", tmp_path / "out", *encoder, img_size=SIZE,
                         progress=False)  # fmt: skip
    with pytest.raises(FeatureError, match="no shard set"):
        extract_features(tmp_path / "nothing", tmp_path / "o2", *encoder, img_size=SIZE)


def test_cli_features(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path / "in", [_image_clip(0, 2)])
    rc = main(["data", "features", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
               "--preset", "tiny", "--feat-dim", "32", "--no-progress"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "train: clip synthetic/train: 1 shards, 1 samples, 2 frames" in out
    assert "resnet50_v2-d32-init0" in out
    assert main(["data", "check", str(tmp_path / "out")]) == 0


def test_augmented_copies_are_the_jittered_crops_and_resume_identically(
    tmp_path: Path, encoder: tuple
) -> None:
    from lightning_hmd.config_tree import AugmentConfig
    from lightning_hmd.data.augment import apply_jitter, sample_jitter

    net, enc_id = encoder
    clips = [_image_clip(i, 4) for i in range(3)]
    _write(tmp_path / "in", clips, per_shard=1)
    with ShardSetWriter(tmp_path / "in" / "test", "test", 1, "unit") as w:
        w.write(replace(clips[0], split="test"), "held_out")
    aug = AugmentConfig(enabled=True, scale_max=0.3, trans_max=20.0, flip_prob=0.5)
    kw = dict(img_size=SIZE, batch_frames=5, progress=False, augment=aug, copies=3, seed=7)
    manifests = extract_features(tmp_path / "in", tmp_path / "out", net, enc_id, **kw)
    assert manifests["train"].total_frames == 3 * 3 * 4  # three copies of each training clip
    assert manifests["test"].total_frames == 4  # evaluation sets are never augmented
    got = _read_all(tmp_path / "out" / "train")
    key = make_key(clips[1].dataset, clips[1].sequence, clips[1].track_id, clips[1].chunk)
    assert sorted(k for k in got if k.startswith(key)) == [f"{key}_aug{c}" for c in range(3)]
    # copy 2 is the jitter drawn from (seed, key, copy): recompute it independently
    import zlib

    rng = np.random.default_rng([7, zlib.crc32(key.encode()), 2])
    jitter = sample_jitter(4, aug, rng, SIZE)
    want_clip, crops = apply_jitter(clips[1], decode_frames(clips[1].jpeg), jitter, SIZE)
    out = got[f"{key}_aug2"]
    np.testing.assert_array_equal(out.kp2d, want_clip.kp2d)
    with torch.inference_mode():
        want = net.eval()(to_tensor(crops)).numpy()
    np.testing.assert_allclose(out.phi.astype(np.float32), want, rtol=2e-3, atol=2e-3)
    # per-frame jitter: the copies differ from the centre crop and from each other
    phis = [got[f"{key}_aug{c}"].phi for c in range(3)]
    assert not np.allclose(phis[0], phis[1]) and not np.allclose(phis[1], phis[2])
    # the crop box is what the frame shows: scale s shows 1/s of the stored crop's side
    side = (clips[1].crop_box[:, 2] - clips[1].crop_box[:, 0]) / jitter.scale
    np.testing.assert_allclose(out.crop_box[:, 2] - out.crop_box[:, 0], side, rtol=1e-4)
    # a second conversion writes the same shards (the draws are seeded, not random)
    extract_features(tmp_path / "in", tmp_path / "again", net, enc_id, **kw)
    a, b = read_manifest(tmp_path / "out" / "train"), read_manifest(tmp_path / "again" / "train")
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
    with pytest.raises(FeatureError, match="3 copies need augmentation"):
        extract_features(tmp_path / "in", tmp_path / "x", net, enc_id, img_size=SIZE, copies=3)


def test_encoder_weights_from_an_hmr_init_file(tmp_path: Path) -> None:
    from lightning_hmd.models.encoders import build_image_encoder
    from lightning_hmd.models.hmr_init import HMRInitError, save_hmr_init

    torch.manual_seed(3)
    holder = torch.nn.Module()
    holder.image_encoder = build_image_encoder("small_cnn", 16)
    path = save_hmr_init(holder, tmp_path / "hmr.pt", source="test", parts=["encoder"])
    net, enc_id = build_feature_encoder("small_cnn", 16, path, seed=0)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.inference_mode():
        torch.testing.assert_close(net.eval()(x), holder.image_encoder.eval()(x))
    assert enc_id.startswith("small_cnn-d16-")
    empty = torch.nn.Module()
    empty.smpl_head = torch.nn.Linear(2, 2)
    save_hmr_init(empty, tmp_path / "no_enc.pt", source="test", parts=[])
    with pytest.raises(HMRInitError, match="holds no image encoder"):
        build_feature_encoder("small_cnn", 16, tmp_path / "no_enc.pt", seed=0)
