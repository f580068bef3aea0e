"""The streaming reader in one process: training windows, mixing, mocap, determinism, whole
evaluation tracks, bad samples."""

from __future__ import annotations

import io
import tarfile
from collections import Counter

import numpy as np
import pytest
import torch
from fixtures.clips import (
    FEAT_DIM,
    clip,
    cut_shard_inside,
    write_clip_set,
    write_mocap_set,
    write_track_set,
)

from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import (
    ReaderError,
    batch_counts,
    build_train_loader,
    check_same_encoder,
    num_fake_poses,
)
from lightning_hmd.data.schema import make_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.whole_tracks import TrackItem, build_track_loader
from lightning_hmd.models.build import build_generator
from lightning_hmd.objective import collect_fakes

T = 6


# 9 tracks of 20 chunks over 5 uneven shards (boundaries at 7, 10, 15, 16); track 2 (chunks
# at positions 3..7) crosses the shard boundary at 7, track 4 (9..11) the one at 10, track 6
# (13..16) those at 15 and 16. Over 4 slots (2 ranks x 2 workers) the slot boundaries 5, 10
# and 15 fall inside tracks 2, 4 and 6 and move to 8, 12 and 17.
TRACKS = [[6, 13], [4], [20, 9, 7, 6, 13], [4], [20, 9, 7], [6], [13, 4, 20, 9], [7], [6, 13]]
TRACK_SHARDS = [7, 3, 5, 1, 4]


def track_loader(dirs, **kw):
    args = dict(num_workers=0, rank=0, world_size=1, inputs="features", img_size=16)
    args.update(kw)
    return build_track_loader(dirs, **args)


def track_frames(tracks) -> dict[str, list[int]]:
    """{first chunk key: the frame indices of the whole track}."""
    return {k: np.concatenate([c.frame_index for c in chunks]).tolist()
            for k, chunks in tracks.items()}  # fmt: skip


def delivered_tracks(loader) -> dict[str, list[TrackItem]]:
    got: dict[str, list[TrackItem]] = {}
    for item in loader:
        got.setdefault(item.key, []).append(item)
    return got


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


def test_every_track_is_delivered_once_with_all_its_frames(tmp_path):
    tracks = write_track_set(tmp_path / "val", TRACKS, TRACK_SHARDS)
    got = delivered_tracks(track_loader([tmp_path / "val"]))
    assert {k: len(items) for k, items in got.items()} == dict.fromkeys(tracks, 1)
    frames = track_frames(tracks)
    for key, (item,) in got.items():
        chunks = tracks[key]
        n = sum(c.num_frames for c in chunks)
        assert n == sum(TRACKS[list(tracks).index(key)])
        assert item.phi.shape == (n, FEAT_DIM) and item.phi.dtype == np.float16  # as stored
        np.testing.assert_array_equal(item.phi, np.concatenate([c.phi for c in chunks]))
        assert item.sample.num_frames == n and item.sample.phi is None
        assert item.sample.frame_index.tolist() == frames[key]
        np.testing.assert_array_equal(
            item.sample.joints3d, np.concatenate([c.joints3d for c in chunks])
        )
        assert item.images is None and item.slot == 0
    assert len(got[make_key("synthetic", "seq001", 0, 0)][0].phi) == 20 + 9 + 7 + 6 + 13


def test_a_track_shorter_than_seq_len_is_delivered_whole(tmp_path):
    """No padding: a 4-frame track (training windows are T = 6) comes back as 4 frames."""
    (key,) = write_clip_set(tmp_path / "val", [1], [4])
    (item,) = list(track_loader([tmp_path / "val"]))
    assert item.key == key
    assert item.sample.num_frames == 4 and item.phi.shape == (4, FEAT_DIM)
    assert item.sample.frame_index.tolist() == [0, 1, 2, 3]


def test_track_images_are_centre_crops_of_every_frame(tmp_path):
    from lightning_hmd.data.augment import center_crop
    from lightning_hmd.data.stream import decode_jpegs

    tracks = write_track_set(tmp_path / "val", [[5, 3], [4]], [2, 1], jpeg=True)
    got = delivered_tracks(track_loader([tmp_path / "val"], inputs="images"))
    assert list(got) == list(tracks)
    shapes = [(it.images.shape, it.images.dtype, it.phi) for (it,) in got.values()]
    assert shapes == [((8, 3, 16, 16), np.uint8, None), ((4, 3, 16, 16), np.uint8, None)]
    for key, (item,) in got.items():
        crops = [center_crop(c, decode_jpegs(c.jpeg), 16)[1] for c in tracks[key]]
        np.testing.assert_array_equal(item.images, np.concatenate(crops).transpose(0, 3, 1, 2))
        assert item.sample.jpeg is None


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
        list(track_loader([tmp_path / "val"], inputs="images"))


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
    cut_shard_inside(shards[1], 2)  # truncated mid-shard: ks[6] and ks[7] lost
    for num_workers in (0, 2):
        loader = track_loader([tmp_path / "val"], num_workers=num_workers)
        got = delivered_tracks(loader)
        counts = loader.collect().counts()
        assert counts == {
            "non_finite": 1,
            "wrong_shape": 1,
            "unknown_member": 1,
            "unsafe_member": 1,
            "truncated_tar": 2,
        }
        # ks[3] itself is fine: only the escaping member is dropped.
        assert {k: len(v) for k, v in got.items()} == dict.fromkeys([ks[3], ks[4], ks[5]], 1)
        # nothing vanishes silently: delivered + skipped (minus the stray member) = all samples
        assert len(got) + sum(counts.values()) - 1 == len(keys)


def test_a_corrupt_chunk_costs_only_its_frames(tmp_path):
    """A non-finite chunk in the middle of a 5-chunk track: the rest of the track arrives as
    the pieces before and after it, every other track whole; the chunk is counted."""
    tracks = write_track_set(tmp_path / "val", TRACKS, TRACK_SHARDS)
    bad = make_key("synthetic", "seq001", 0, 2)  # track 2, chunk 2 (position 5)

    def edit(name, data):
        if name == f"{bad}.phi.npy":
            a = np.load(io.BytesIO(data))
            a[3, 1] = np.inf
            return [(name, npy(a))]
        return [(name, data)]

    rewrite_shard(sorted((tmp_path / "val").glob("*.tar"))[0], edit)
    for rank in range(2):
        loader = track_loader([tmp_path / "val"], rank=rank, world_size=2, num_workers=2)
        if rank == 0:
            got = delivered_tracks(loader)
            counts = Counter(loader.collect().counts())
        else:
            for key, items in delivered_tracks(loader).items():
                got.setdefault(key, []).extend(items)
            counts.update(loader.collect().counts())
    assert counts == {"non_finite": 1}
    first = make_key("synthetic", "seq001", 0, 0)
    after = make_key("synthetic", "seq001", 0, 3)
    assert {k: len(v) for k, v in got.items()} == {**dict.fromkeys(tracks, 1), after: 1}
    assert got[first][0].sample.frame_index.tolist() == track_frames(tracks)[first][:29]
    assert got[after][0].sample.frame_index.tolist() == track_frames(tracks)[first][36:]


def test_a_source_with_nothing_valid_raises_instead_of_hanging(tmp_path):
    write_clip_set(tmp_path / "tr", [2], [T], split="train")
    for shard in (tmp_path / "tr").glob("*.tar"):
        shard.write_bytes(b"not a tar at all" * 10)
    loader = train_loader([tmp_path / "tr"], [1.0], batches_per_epoch=1)
    with pytest.raises(ReaderError, match="no intact clip sample"):
        list(loader)


def test_tracks_split_over_two_ranks_with_two_workers_each(tmp_path):
    tracks = write_track_set(tmp_path / "val", TRACKS, TRACK_SHARDS)
    got: dict[str, list[TrackItem]] = {}
    for rank in range(2):
        loader = track_loader([tmp_path / "val"], rank=rank, world_size=2, num_workers=2)
        for key, items in delivered_tracks(loader).items():
            got.setdefault(key, []).extend(items)
        assert loader.collect().counts() == {}
    assert {k: len(v) for k, v in got.items()} == dict.fromkeys(tracks, 1)
    frames = track_frames(tracks)
    assert {k: v[0].sample.frame_index.tolist() for k, v in got.items()} == frames
    # slot ranges [0, 8), [8, 12), [12, 17), [17, 20): tracks 0-2, 3-4, 5-6, 7-8
    slots = [got[k][0].slot for k in tracks]
    assert slots == [0, 0, 0, 1, 1, 2, 2, 3, 3]


def test_track_loader_is_deterministic(tmp_path):
    write_track_set(tmp_path / "val", TRACKS, TRACK_SHARDS)

    def run():
        loader = track_loader([tmp_path / "val"], num_workers=2)
        return [(it.key, it.slot, it.phi.tobytes(), it.sample.kp2d.tobytes()) for it in loader]

    first = run()
    assert len(first) == 9 and first == run()


def test_mocap_banks_split_the_poses_over_slots_and_draw_reproducibly(tmp_path):
    from lightning_hmd.data.assign import read_shards
    from lightning_hmd.data.skips import SkipCounter
    from lightning_hmd.data.train_stream import MocapBank

    write_mocap_set(tmp_path / "mocap", 50, shard_size=7)
    shards = read_shards([tmp_path / "mocap"], "mocap")
    banks = [MocapBank(shards, slot, 4, SkipCounter()) for slot in range(4)]
    poses = torch.cat([b.batch.pose_aa.reshape(len(b), 72) for b in banks])
    assert poses.shape[0] == 50  # every pose in exactly one slot's bank
    assert torch.unique(poses, dim=0).shape[0] == 50
    a = banks[1].draw(100, np.random.default_rng(3))
    b = banks[1].draw(100, np.random.default_rng(3))
    torch.testing.assert_close(a.pose_aa, b.pose_aa)
    assert a.pose_aa.shape == (100, 24, 3) and a.betas.shape == (100, 10)
    assert len(torch.unique(a.pose_aa.reshape(100, 72), dim=0)) == len(banks[1])


def test_a_slot_decodes_its_mocap_once_and_draws_the_same_on_every_pass(tmp_path, monkeypatch):
    from lightning_hmd.data import train_stream

    write_clip_set(tmp_path / "tr", [4], [12], split="train")
    write_mocap_set(tmp_path / "mocap", 40)
    built = []

    class Counted(train_stream.MocapBank):
        def __init__(self, *args) -> None:
            built.append(args[1:3])  # (slot, num_slots)
            super().__init__(*args)

    def epochs(loader, n):
        return [[b.mocap.pose_aa for b in loader] for _ in range(n)]

    monkeypatch.setattr(train_stream, "MocapBank", Counted)
    kept = epochs(train_loader([tmp_path / "tr"], [1.0], [tmp_path / "mocap"],
                               batches_per_epoch=2), 3)  # fmt: skip
    assert built == [(0, 1)]  # three passes, one decode
    # each pass draws what a loader decoding its mocap anew draws in that epoch
    for epoch in range(3):
        fresh = train_loader([tmp_path / "tr"], [1.0], [tmp_path / "mocap"], batches_per_epoch=2)
        fresh.set_epoch(epoch)
        for a, b in zip(kept[epoch], [b.mocap.pose_aa for b in fresh], strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(kept[0][0], kept[1][0])  # and the passes differ


def test_mocap_windows_are_consecutive_frames_of_one_recording(tmp_path):
    from lightning_hmd.data.assign import read_shards
    from lightning_hmd.data.skips import SkipCounter
    from lightning_hmd.data.train_stream import MocapBank

    # recordings of 7, 3 and 5 frames; windows of 4: starts 0-3 of rec0 and 0-1 of rec2
    write_mocap_set(tmp_path / "mocap", 0, shard_size=4, motions=[7, 3, 5])
    bank = MocapBank(read_shards([tmp_path / "mocap"], "mocap"), 0, 1, SkipCounter())
    w = bank.draw_windows(400, 4, np.random.default_rng(0))
    assert w.pose_aa.shape == (400, 4, 24, 3) and w.betas.shape == (400, 4, 10)
    rec, frame = w.pose_aa[:, :, 0, 0], w.pose_aa[:, :, 0, 1]
    assert (rec == rec[:, :1]).all()  # one recording per window
    assert (frame - frame[:, :1] == torch.arange(4.0)).all()  # consecutive, in order
    firsts = Counter(zip(rec[:, 0].tolist(), frame[:, 0].tolist(), strict=True))
    assert set(firsts) == {(0.0, f) for f in range(4)} | {(2.0, 0.0), (2.0, 1.0)}
    assert min(firsts.values()) > 400 / 6 * 0.6  # uniform over the six starts
    again = bank.draw_windows(400, 4, np.random.default_rng(0))
    torch.testing.assert_close(w.pose_aa, again.pose_aa)
    with pytest.raises(ReaderError, match="no 8 consecutive poses.*longest ordered stretch: 7"):
        bank.draw_windows(1, 8, np.random.default_rng(0))


def test_mocap_of_unknown_order_cannot_make_windows(tmp_path):
    write_clip_set(tmp_path / "tr", [4], [12], split="train")
    write_mocap_set(tmp_path / "mocap", 40)
    loader = train_loader([tmp_path / "tr"], [1.0], [tmp_path / "mocap"], mocap_window=T,
                          batches_per_epoch=2)  # fmt: skip
    with pytest.raises(ReaderError, match="longest ordered stretch: 1.*frame order"):
        next(iter(loader))


def test_training_batches_carry_mocap_windows_for_a_motion_discriminator(tmp_path):
    write_clip_set(tmp_path / "tr", [4], [12], split="train")
    write_mocap_set(tmp_path / "mocap", 0, motions=[30, 25])
    loader = train_loader([tmp_path / "tr"], [1.0], [tmp_path / "mocap"], mocap_window=T,
                          num_fake_poses=6, batches_per_epoch=2)  # fmt: skip
    for b in loader:
        assert b.mocap.pose_aa.shape == (6, T, 24, 3) and b.mocap.betas.shape == (6, T, 10)
        frame = b.mocap.pose_aa[:, :, 0, 1]
        assert (frame - frame[:, :1] == torch.arange(float(T))).all()


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

    # through real worker processes the tracks are the same as in-process ones
    def tracks(loader):
        return {it.key: (it.phi, it.sample.kp2d, it.slot) for it in loader}

    in_process = tracks(track_loader([tmp_path / "val"]))
    workers = tracks(track_loader([tmp_path / "val"], num_workers=2))
    assert in_process.keys() == workers.keys() and len(workers) == 4
    assert [workers[k][2] for k in in_process] == [0, 0, 1, 1]  # workers interleave
    for key, (phi, kp, _) in in_process.items():
        np.testing.assert_array_equal(workers[key][0], phi)
        np.testing.assert_array_equal(workers[key][1], kp)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skips_of_a_slot_that_yields_no_track_are_still_counted(tmp_path, num_workers):
    """With 2 workers the second slot's samples (4..7) are all lost, so it yields no track
    at all: its counts reach the loader's stats anyway (its final SlotReport)."""
    keys = list(write_clip_set(tmp_path / "val", [8], [T]))
    (shard,) = (tmp_path / "val").glob("*.tar")
    cut_shard_inside(shard, 4)
    loader = track_loader([tmp_path / "val"], num_workers=num_workers)
    got = delivered_tracks(loader)
    assert sorted(got) == keys[:4]
    assert {it.slot for items in got.values() for it in items} == {0}
    assert loader.collect().counts() == {"truncated_tar": 4}


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
    assert state == {"epoch": 0, "delivered": 3, "skipped": []}
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
    assert c.state_dict() == {"epoch": 1, "delivered": 0, "skipped": []}


def test_single_frame_batches_mix_many_clips(tmp_path):
    """With T = 1 each 40-frame clip puts 40 windows in the window buffer; the automatic
    buffer (16 windows per batch sequence) still fills a 16-window batch from many clips,
    not from one or two clips whose frames are nearly the same picture."""
    write_clip_set(tmp_path / "tr", [16, 16, 16, 16], [40], split="train")
    loader = train_loader([tmp_path / "tr"], [1.0], batch_size=16, seq_len=1, batches_per_epoch=8)
    distinct = [len(set(b.info.key)) for b in loader]
    assert min(distinct) >= 8, distinct


def _stored_phi(set_dir):
    from lightning_hmd.data.assign import read_shards
    from lightning_hmd.data.skips import SkipCounter
    from lightning_hmd.data.whole_tracks import read_tracks

    shards = read_shards([set_dir], "clip")
    reads = read_tracks(shards, 0, sum(s.samples for s in shards), SkipCounter())
    return {r.key: np.asarray(r.sample.phi, np.float32) for r in reads}


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
    # evaluation tracks carry the stored features
    got = {it.key: it.phi for it in track_loader([tmp_path / "tr"])}
    assert got.keys() == stored.keys() and len(got) == 4
    for key, phi in got.items():
        np.testing.assert_array_equal(phi.astype(np.float32), stored[key])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_samples_are_accounted_for_by_key_not_by_position(tmp_path, num_workers):
    """A copy of a sample at a shard's start, a foreign sample at the start of the next, and
    a sample whose bytes were flipped (still decoding): every intact listed sample arrives
    exactly once, the copy and the stranger are dropped and counted, the flipped one is
    caught by its digest."""
    keys = write_clip_set(tmp_path / "val", [4, 4], [T])
    shards = sorted((tmp_path / "val").glob("*.tar"))
    ks = list(keys)
    with tarfile.open(shards[0]) as tar:
        copy = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()
                if m.name.startswith(ks[2] + ".")]  # fmt: skip
    foreign = [(n.replace(ks[2], "synthetic__stranger__t0000_c0000"), d) for n, d in copy]

    def copy_of(key):
        with tarfile.open(shards[0]) as tar:
            return [(m.name, b"") for m in tar.getmembers() if m.name.startswith(key + ".")]

    firsts = {0: min(n for n, _ in copy_of(ks[0]))}
    rewrite_shard(shards[0], lambda n, d: (copy if n == firsts[0] else []) + [(n, d)])

    with tarfile.open(shards[1]) as tar:
        start1 = tar.getmembers()[0].name  # the first member of ks[4], the shard's first

    def edit1(name, data):
        out = []
        if name == start1:
            out += foreign
        if name == f"{ks[5]}.phi.npy":
            a = np.load(io.BytesIO(data))
            a[0, 0] = a[0, 0] + np.float16(1)  # still a valid, finite array
            data = npy(a)
        return [*out, (name, data)]

    rewrite_shard(shards[1], edit1)
    loader = track_loader([tmp_path / "val"], num_workers=num_workers)
    got = delivered_tracks(loader)
    assert {k: len(v) for k, v in got.items()} == dict.fromkeys([k for k in ks if k != ks[5]], 1)
    assert loader.collect().counts() == {
        "duplicate_sample": 1,
        "not_in_manifest": 1,
        "checksum_mismatch": 1,
    }


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_skip_is_logged_once_over_epochs(tmp_path, caplog, num_workers):
    """A damaged sample is met again on every pass (each pass is a function of the seed and
    the epoch alone) but logged and reported once: later passes start from the main
    process's log."""
    write_clip_set(tmp_path / "tr", [4], [T], split="train")
    shard = next((tmp_path / "tr").glob("*.tar"))
    wrong = npy(np.zeros((T, 24, 3), np.float32))
    rewrite_shard(shard, lambda n, d: [(n, wrong if n.endswith("seq001__t0000_c0000.kp2d.npy")
                                        else d)])  # fmt: skip
    loader = train_loader([tmp_path / "tr"], [1.0], batches_per_epoch=2, num_workers=num_workers)
    received, drain = [], loader.channel.drain

    def counting_drain():
        items = drain()
        received.extend(i for i in items if not isinstance(i, int))
        return items

    loader.channel.drain = counting_drain
    with caplog.at_level("WARNING", logger="lightning_hmd.data.skips"):
        for epoch in range(3):
            loader.set_epoch(epoch)
            assert len(list(loader)) == 2
    assert loader.collect().counts() == {"wrong_shape": 1}
    if num_workers == 0:  # workers log in their own processes
        assert sum("wrong_shape" in r.getMessage() for r in caplog.records) == 1
    assert [e.reason for e in received] == ["wrong_shape"]  # reported by the first pass only
