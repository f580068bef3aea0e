"""The streaming reader in one process: windows, mixing, mocap, determinism, bad samples."""

from __future__ import annotations

import io
import tarfile
from collections import Counter

import numpy as np
import pytest
import torch
from fixtures.clips import FEAT_DIM, clip, write_clip_set, write_mocap_set

from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import (
    ReaderError,
    batch_counts,
    build_eval_loader,
    build_train_loader,
    check_same_encoder,
    num_fake_poses,
)
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.windows import strided_windows
from lightning_hmd.models.build import build_generator
from lightning_hmd.objective import collect_fakes

T = 6


def expected_windows(keys: dict[str, int], seq_len: int = T) -> Counter:
    return Counter(
        (k, w.start) for k, n in keys.items() for w in strided_windows(max(n, seq_len), seq_len)
    )


def eval_loader(dirs, **kw):
    args = dict(batch_size=4, seq_len=T, num_workers=0, rank=0, world_size=1, inputs="features")
    args.update(kw)
    return build_eval_loader(dirs, img_size=16, **args)


def train_loader(sources, weights, mocap=(), **kw):
    args = dict(
        batch_size=4,
        seq_len=T,
        num_workers=0,
        rank=0,
        world_size=1,
        seed=0,
        inputs="features",
        img_size=16,
        augment=AugmentConfig(),
        num_fake_poses=10,
    )
    args.update(kw)
    return build_train_loader(sources, weights, mocap, **args)


def delivered(loader) -> Counter:
    got = Counter()
    for b in loader:
        got.update(zip(b.info.key, b.info.start.tolist(), strict=True))
    return got


def test_eval_delivers_every_window_once_and_owns_every_frame_once(tmp_path):
    keys = write_clip_set(tmp_path / "val", [3, 1, 2], [6, 13, 4, 20])
    loader = eval_loader([tmp_path / "val"])
    got, owned = Counter(), Counter()
    for b in loader:
        assert b.clips.phi.shape[1:] == (T, FEAT_DIM) and b.clips.phi.dtype == torch.float16
        for i, key in enumerate(b.info.key):
            got[(key, int(b.info.start[i]))] += 1
            frames = b.info.frame_index[i][b.info.owned[i]].tolist()
            owned.update((key, f) for f in frames)
    assert got == expected_windows(keys)
    assert owned == Counter((k, f) for k, n in keys.items() for f in range(n))


def test_short_clip_is_padded_with_a_valid_mask(tmp_path):
    write_clip_set(tmp_path / "val", [1], [4])
    (b,) = list(eval_loader([tmp_path / "val"]))
    assert b.info.valid[0].tolist() == [False, True, True, True, True, False]
    assert b.info.owned[0].tolist() == b.info.valid[0].tolist()
    assert b.info.frame_index[0].tolist() == [0, 0, 1, 2, 3, 3]


def test_batch_counts_largest_remainder():
    assert batch_counts([0.5, 0.25, 0.25], 8) == [4, 2, 2]
    assert batch_counts([1, 1, 1], 8) == [3, 3, 2]
    assert batch_counts([2, 1], 5) == [3, 2]  # 3.33, 1.67 -> remainder to the second
    assert sum(batch_counts([0.1, 0.7, 0.2], 7)) == 7
    with pytest.raises(ValueError, match="weights must be > 0"):
        batch_counts([1, 0], 4)


def test_mixing_mocap_and_labels_per_batch(tmp_path):
    write_clip_set(tmp_path / "h36m", [5], [8, 12], dataset="h36m", split="train")
    write_clip_set(
        tmp_path / "penn", [4], [7, 9], dataset="penn-action", split="train", with_3d=False
    )
    write_mocap_set(tmp_path / "mocap", 40)
    loader = train_loader(
        [tmp_path / "h36m", tmp_path / "penn"],
        [0.5, 0.5],
        [tmp_path / "mocap"],
        batches_per_epoch=5,
    )
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    for b in batches:
        assert Counter(b.info.dataset) == {"h36m": 2, "penn-action": 2}
        assert b.clips.has_3d_joints.tolist() == [1.0, 1.0, 0.0, 0.0]
        assert b.clips.joints3d[2:].abs().sum() == 0
        assert b.mocap.pose_aa.shape == (10, 24, 3) and b.mocap.betas.shape == (10, 10)
        assert b.clips.kp2d.shape == (4, T, 25, 3)


def test_training_is_deterministic_and_set_epoch_reshuffles(tmp_path):
    write_clip_set(tmp_path / "tr", [6, 5], [8, 15, 11], split="train")

    def order(epoch):
        loader = train_loader([tmp_path / "tr"], [1.0], batches_per_epoch=4)
        loader.set_epoch(epoch)
        return [(k, int(s)) for b in loader for k, s in zip(b.info.key, b.info.start, strict=False)]

    assert order(0) == order(0)
    assert order(0) != order(1)


def test_num_fake_poses_matches_collect_fakes():
    from lightning_hmd.config import load_config

    for deltas, hal in [([], False), ([-5, 5], True), ([-3], True), ([-5, 5, 7], False)]:
        cfg = load_config("tiny", [], [f"model.delta_t={deltas}", f"model.hallucinator={hal}"])
        gen = build_generator(cfg.model, torch.zeros(24, 3), torch.zeros(10), False)
        out = gen(phi=torch.randn(3, cfg.data.seq_len, cfg.model.feat_dim))
        m = collect_fakes(out).betas.shape[0]
        assert m == num_fake_poses(3, cfg.data.seq_len, len(deltas), hal)


def test_images_are_decoded_augmented_and_scaled(tmp_path):
    write_clip_set(tmp_path / "tr", [3], [8], split="train", jpeg=True)
    loader = train_loader([tmp_path / "tr"], [1.0], batches_per_epoch=2, inputs="images")
    b = next(iter(loader))
    assert b.clips.phi is None
    assert b.clips.images.shape == (4, T, 3, 16, 16)
    assert b.clips.images.dtype == torch.uint8  # normalised by the generator on the device


def test_features_input_without_phi_is_a_clear_error(tmp_path):
    write_clip_set(tmp_path / "val", [2], [8])
    with pytest.raises(ReaderError, match=r"data.inputs=images but the sample has no JPEG"):
        list(eval_loader([tmp_path / "val"], inputs="images"))


def test_mixed_encoders_are_refused(tmp_path):
    write_clip_set(tmp_path / "a", [1], [8])
    assert check_same_encoder([tmp_path / "a"]) == "test-encoder"
    b = clip("synthetic", "val", 0, 8, with_3d=False)
    b.encoder_id = "other"
    with ShardSetWriter(tmp_path / "b", "val", 4, source="t") as w:
        w.write(b, "synthetic__x__t0000_c0000")
    with pytest.raises(ReaderError, match="different encoders"):
        check_same_encoder([tmp_path / "a", tmp_path / "b"])


# ----------------------------------------------------------------------------- bad samples


def rewrite_shard(path, edit):
    """Rewrite a tar member by member through ``edit(name, data) -> [(name, data)]``."""
    with tarfile.open(path) as src:
        items = [(m.name, src.extractfile(m).read()) for m in src.getmembers()]
    with tarfile.open(path, "w") as out:
        for name, data in items:
            for n, d in edit(name, data):
                info = tarfile.TarInfo(n)
                info.size = len(d)
                out.addfile(info, io.BytesIO(d))


def npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_corrupt_samples_are_skipped_and_counted_by_reason(tmp_path):
    keys = write_clip_set(tmp_path / "val", [4, 4], [T])
    shards = sorted((tmp_path / "val").glob("*.tar"))
    ks = list(keys)

    def edit0(name, data):
        key, member = name.split(".", 1)
        if key == ks[0] and member == "joints3d.npy":
            a = np.load(io.BytesIO(data))
            a[0, 0, 0] = np.nan
            return [(name, npy(a))]
        if key == ks[1] and member == "kp2d.npy":
            return [(name, npy(np.zeros((T, 24, 3), np.float32)))]
        if key == ks[2] and member == "meta.json":
            return [(name, data), (f"{key}.extra.pyd", b"cos\nsystem\n(S'echo owned'\ntR.")]
        if key == ks[3] and member == "meta.json":
            return [(name, data), ("../escape.npy", npy(np.zeros(2)))]
        return [(name, data)]

    rewrite_shard(shards[0], edit0)
    data = shards[1].read_bytes()
    shards[1].write_bytes(data[: len(data) // 2])  # truncated mid-shard
    loader = eval_loader([tmp_path / "val"])
    got = delivered(loader)
    counts = loader.stats.totals()
    assert counts["non_finite"] == 1
    assert counts["wrong_shape"] == 1
    assert counts["unknown_member"] == 1
    assert counts["unsafe_member"] == 1
    assert counts["truncated_tar"] >= 1
    lost = counts["truncated_tar"] + counts.get("missing_member", 0)  # the cut sample
    # ks[3] itself is fine: only the escaping member is dropped.
    assert {k for k, _ in got} == {ks[3], *ks[4 : 8 - lost]}
    # nothing vanishes silently: delivered + skipped (minus the stray member) = all samples
    assert len({k for k, _ in got}) + sum(counts.values()) - 1 == len(keys)


def test_a_source_with_nothing_valid_raises_instead_of_hanging(tmp_path):
    write_clip_set(tmp_path / "tr", [2], [T], split="train")
    for shard in (tmp_path / "tr").glob("*.tar"):
        shard.write_bytes(b"not a tar at all" * 10)
    loader = train_loader([tmp_path / "tr"], [1.0], batches_per_epoch=1)
    with pytest.raises(ReaderError, match="no valid clip sample"):
        list(loader)


def test_eval_split_over_two_ranks_with_two_workers_each(tmp_path):
    keys = write_clip_set(tmp_path / "val", [7, 3, 5, 1, 4], [6, 13, 4, 20, 9])
    got = Counter()
    for rank in range(2):
        got += delivered(eval_loader([tmp_path / "val"], rank=rank, world_size=2, num_workers=2))
    assert got == expected_windows(keys)


def test_mocap_banks_split_the_poses_over_slots_and_draw_reproducibly(tmp_path):
    from lightning_hmd.data.assign import read_sets
    from lightning_hmd.data.loader import MocapBank
    from lightning_hmd.data.stream import SkipCounter

    write_mocap_set(tmp_path / "mocap", 50, shard_size=7)
    shards = read_sets([tmp_path / "mocap"], "mocap")[1]
    banks = [MocapBank(shards, slot, 4, SkipCounter()) for slot in range(4)]
    poses = torch.cat([b.batch.pose_aa.reshape(len(b), 72) for b in banks])
    assert poses.shape[0] == 50  # every pose in exactly one slot's bank
    assert torch.unique(poses, dim=0).shape[0] == 50
    a = banks[1].draw(100, np.random.default_rng(3))
    b = banks[1].draw(100, np.random.default_rng(3))
    torch.testing.assert_close(a.pose_aa, b.pose_aa)
    assert a.pose_aa.shape == (100, 24, 3) and a.betas.shape == (100, 10)
    assert len(torch.unique(a.pose_aa.reshape(100, 72), dim=0)) == len(banks[1])


def test_training_takes_n_over_t_uniform_windows_per_clip_and_pass(tmp_path):
    keys = write_clip_set(tmp_path / "train", [5, 5], [4 * T], split="train")
    passes = 12
    loader = train_loader([tmp_path / "train"], [1.0], batch_size=5, batches_per_epoch=8 * passes)
    per_key, starts, distinct = Counter(), [], []
    for b in loader:
        per_key.update(b.info.key)
        starts += b.info.start.tolist()
        distinct.append(len(set(b.info.key)))
    assert np.mean(distinct) > 4.0  # one clip's 4 windows are spread over batches
    # 4 windows per clip and pass; the 64-window buffer holds back at most 63 of them
    assert sum(per_key.values()) == 40 * passes
    assert set(per_key) == set(keys)
    assert all(abs(c - 4 * passes) <= 16 for c in per_key.values()), per_key
    counts = np.bincount(starts, minlength=3 * T + 1)  # uniform over 0..3T
    assert len(counts) == 3 * T + 1 and counts.min() > 0
    assert abs(np.mean(starts) - 1.5 * T) < 1.0


def test_packed_batches_survive_the_trip_from_workers_unchanged(tmp_path):
    from lightning_hmd.data.transport import pack, unpack

    write_clip_set(tmp_path / "val", [4], [T + 3])
    write_mocap_set(tmp_path / "mocap", 20)
    (batch,) = list(train_loader([tmp_path / "val"], [1.0], [tmp_path / "mocap"],
                                 batches_per_epoch=1))  # fmt: skip
    packed = pack(batch)
    back = unpack(packed)
    for path, (dtype, shape, _) in packed.layout.items():
        a, b = batch, back
        for name in path:
            a, b = getattr(a, name), getattr(b, name)
        assert b.dtype == dtype and tuple(b.shape) == shape
        assert b.untyped_storage().data_ptr() == packed.buffer.untyped_storage().data_ptr()
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert back.info.key == batch.info.key and back.clips.images is None
    assert {p[0] for p in packed.layout} == {"clips", "info", "mocap"}

    # through real worker processes the batches are the same as in-process ones
    def windows(loader):
        return {
            (k, int(s)): (phi, kp)
            for b in loader
            for k, s, phi, kp in zip(b.info.key, b.info.start, b.clips.phi, b.clips.kp2d,
                                     strict=True)
        }  # fmt: skip

    in_process = windows(eval_loader([tmp_path / "val"]))
    workers = windows(eval_loader([tmp_path / "val"], num_workers=2))
    assert in_process.keys() == workers.keys() and len(workers) == 8
    for key, (phi, kp) in in_process.items():
        torch.testing.assert_close(workers[key][0], phi, rtol=0, atol=0)
        torch.testing.assert_close(workers[key][1], kp, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skips_after_a_slots_last_batch_are_still_counted(tmp_path, num_workers):
    """A slot whose last samples are all bad yields no batch after them: its final counts
    reach the loader's stats anyway."""
    keys = write_clip_set(tmp_path / "val", [8], [T])
    (shard,) = (tmp_path / "val").glob("*.tar")
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) * 3 // 4])  # the last samples of the second slot
    loader = eval_loader([tmp_path / "val"], num_workers=num_workers, batch_size=2)
    got = {k for k, _ in delivered(loader)}
    counts = loader.stats.totals()
    assert sum(counts.values()) >= 1
    assert len(got) + sum(counts.values()) == len(keys)


def test_a_restored_loader_continues_where_the_saved_one_stopped(tmp_path):
    write_clip_set(tmp_path / "tr", [6], [2 * T], split="train")

    def loader():
        return train_loader([tmp_path / "tr"], [1.0], batch_size=2, batches_per_epoch=5)

    whole = loader()
    first = [b.info for b in whole]  # epoch 0
    second = [b.info for b in whole]  # epoch 1
    a = loader()
    it = iter(a)
    for _ in range(3):
        next(it)
    state = a.state_dict()
    assert state == {"epoch": 0, "delivered": 3}
    b = loader()
    b.load_state_dict(state)
    rest = [x.info for x in b]
    assert [(i.key, i.start.tolist()) for i in rest] == [
        (i.key, i.start.tolist()) for i in first[3:]
    ]
    # after the restored epoch, the next one is epoch 1 from its start
    assert [i.key for i in (x.info for x in b)] == [i.key for i in second]
    # a position saved at an epoch's end points at the next epoch's start
    c = loader()
    list(c)
    assert c.state_dict() == {"epoch": 1, "delivered": 0}


def test_single_frame_batches_mix_many_clips(tmp_path):
    """With T = 1 each 40-frame clip puts 40 windows in the window buffer; the automatic
    buffer (16 windows per batch sequence) still fills a 16-window batch from many clips,
    not from one or two clips whose frames are nearly the same picture."""
    write_clip_set(tmp_path / "tr", [16, 16, 16, 16], [40], split="train")
    loader = train_loader([tmp_path / "tr"], [1.0], batch_size=16, seq_len=1, batches_per_epoch=8)
    distinct = [len(set(b.info.key)) for b in loader]
    assert min(distinct) >= 8, distinct


def _stored_phi(set_dir):
    from lightning_hmd.data.stream import SkipCounter
    from lightning_hmd.evaluation.run import read_clips

    return {
        r.key: np.asarray(r.sample.phi, np.float32) for r in read_clips([set_dir], SkipCounter())
    }


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_feature_noise_is_added_to_training_features_only(tmp_path, noise):
    write_clip_set(tmp_path / "tr", [4], [12, 9], split="train")
    stored = _stored_phi(tmp_path / "tr")
    loader = train_loader(
        [tmp_path / "tr"], [1.0], batches_per_epoch=6, augment=AugmentConfig(feature_noise=noise)
    )
    diffs = []
    for b in loader:
        for i, (key, start) in enumerate(zip(b.info.key, b.info.start.tolist(), strict=True)):
            diffs.append(b.clips.phi[i].numpy() - stored[key][start : start + T])
    d = np.stack(diffs)  # (windows, T, D): the noise drawn per frame and feature
    assert d.shape == (24, T, FEAT_DIM)
    if noise == 0.0:
        assert np.abs(d).max() == 0.0
    else:
        assert abs(d.std() - noise) < 0.05 and abs(d.mean()) < 0.05
        assert np.abs(np.diff(d, axis=1)).mean() > 0.5  # independent per frame, not per window
    # evaluation windows (12 and 9 frames: no padding at T = 6) carry the stored features
    for b in eval_loader([tmp_path / "tr"]):
        for i, (key, start) in enumerate(zip(b.info.key, b.info.start.tolist(), strict=True)):
            np.testing.assert_array_equal(b.clips.phi[i].numpy(), stored[key][start : start + T])
