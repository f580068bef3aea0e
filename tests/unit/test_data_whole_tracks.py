"""Whole tracks for evaluation: chunks joined back into tracks, slots cut at track boundaries
(each track read whole by exactly one slot, also when a shard is cut short)."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from fixtures.clips import clip, cut_shard_inside, track_chunks, write_track_set

from lightning_hmd.data.assign import read_shards, slot_range
from lightning_hmd.data.schema import make_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.skips import SkipCounter
from lightning_hmd.data.stream import Read
from lightning_hmd.data.whole_tracks import (
    join_chunks,
    read_tracks,
    sequences_of,
    slot_tracks,
    track_boundary,
    track_of,
)

# 7 tracks of 14 chunks over 5 uneven shards (shard boundaries at 2, 3, 7, 10): track 1 has 4
# chunks at positions 1..4, across the shard boundaries at 2 and 3. Tracks start at
# 0, 1, 5, 7, 8, 11, 12.
CHUNKS = [[5], [4, 6, 3, 7], [6, 2], [9], [3, 3, 4], [8], [2, 5]]
SHARDS = [2, 1, 4, 3, 4]
STARTS = [0, 1, 5, 7, 8, 11, 12, 14]

# slot_range's ranges of 14 samples, each end moved to the next track start (by hand)
RANGES = {
    1: [(0, 14)],
    2: [(0, 7), (7, 14)],
    3: [(0, 5), (5, 11), (11, 14)],
    4: [(0, 5), (5, 7), (7, 11), (11, 14)],
    5: [(0, 5), (5, 5), (5, 8), (8, 11), (11, 14)],
    6: [(0, 5), (5, 5), (5, 7), (7, 11), (11, 11), (11, 14)],
    7: [(0, 5), (5, 5), (5, 7), (7, 8), (8, 11), (11, 12), (12, 14)],
}


def shards_of(set_dir: Path):
    return read_shards([set_dir], "clip")


def reads(chunks) -> list[Read]:
    return [Read(key, Path("x.tar"), s) for key, s in chunks]


def frames_of(chunks) -> int:
    return sum(s.num_frames for s in chunks)


def partition(ranges: list[tuple[int, int]], total: int) -> bool:
    """Whether consecutive ranges cover ``[0, total)`` without gaps or overlaps."""
    ends = [lo for lo, _ in ranges] + [ranges[-1][1]]
    joined = all(a[1] == b[0] for a, b in pairwise(ranges))
    return joined and ends[0] == 0 and ends[-1] == total and ends == sorted(ends)


def slot_reads(shards, num_slots: int) -> list[tuple[int, Read]]:
    counter = SkipCounter()
    return [
        (slot, r)
        for slot in range(num_slots)
        for r in read_tracks(shards, *slot_tracks(shards, slot, num_slots), counter)
    ]


def test_track_of_strips_the_chunk_index():
    assert track_of("h36m__S1-walking__t0003_c0001") == "h36m__S1-walking__t0003"
    assert track_of(make_key("penn-action", "0042", 12, 7)) == "penn-action__0042__t0012"
    assert track_of(make_key("a", "s", 1, 0)) == track_of(make_key("a", "s", 1, 9))
    assert track_of(make_key("a", "s", 1, 0)) != track_of(make_key("a", "s", 2, 0))
    # only the last _c part goes, even when the sequence name looks like a key
    assert track_of("a__x__t0001_c0002__t0003_c0004") == "a__x__t0001_c0002__t0003"
    # keys of another form are tracks of their own
    assert track_of("cmu__m000000007") == "cmu__m000000007"
    assert track_of("synthetic__x__t0001") == "synthetic__x__t0001"
    assert track_of(None) is None


def test_continuing_chunks_join_in_order_labels_and_all():
    chunks = track_chunks("synthetic", "val", 3, [5, 3, 4], first_frame=10, jpeg=True)
    (piece,) = join_chunks(reads(chunks))
    s, parts = piece.sample, [c for _, c in chunks]
    assert piece.key == "synthetic__seq003__t0000_c0000"
    assert s.num_frames == 12 and s.chunk == 0
    assert s.frame_index.tolist() == list(range(10, 22))
    for name in ("kp2d", "phi", "joints3d", "pose", "crop_box", "crop_scale"):
        joined = np.concatenate([getattr(p, name) for p in parts])
        np.testing.assert_array_equal(getattr(s, name), joined)
    np.testing.assert_array_equal(s.kp2d[5:8], parts[1].kp2d)  # chunk 1 is frames 5..7
    assert s.phi.dtype == np.float16
    assert s.jpeg == parts[0].jpeg + parts[1].jpeg + parts[2].jpeg and len(s.jpeg) == 12
    np.testing.assert_array_equal(s.betas, parts[0].betas)


def _no_labels(sample):
    sample.joints3d = sample.pose = sample.betas = None


def _other_encoder(sample):
    sample.encoder_id = "another-encoder"


def _frame_gap(sample):
    sample.frame_index = sample.frame_index + 1


def _chunk_gap(sample):
    sample.chunk += 1


@pytest.mark.parametrize("change", [_no_labels, _other_encoder, _frame_gap, _chunk_gap])
def test_chunks_that_do_not_continue_the_last_start_a_new_piece(change):
    """Chunks 1 and 2 lose their 3D labels, come from another encoder, skip a frame, or are
    numbered as if a chunk were missing between them and chunk 0."""
    chunks = track_chunks("synthetic", "val", 0, [4, 6, 5])
    for _, s in chunks[1:]:
        change(s)
    pieces = join_chunks(reads(chunks))
    assert [p.key for p in pieces] == [chunks[0][0], chunks[1][0]]
    assert [p.sample.num_frames for p in pieces] == [4, 11]
    shift = int(change is _frame_gap)
    assert pieces[1].sample.frame_index.tolist() == list(range(4 + shift, 15 + shift))


@pytest.mark.parametrize("lost", ["never written", "cut off its shard"])
def test_a_missing_middle_chunk_gives_two_pieces(tmp_path, lost):
    """Chunk 2 of 5 (the last of the first shard) is missing: chunks 0-1 and 3-4 come back
    as two pieces; a chunk lost to a cut shard is counted."""
    chunks = track_chunks("synthetic", "val", 0, [4, 6, 5, 3, 2])
    with ShardSetWriter(tmp_path / "val", "val", 3, source="test") as w:
        for c, (key, s) in enumerate(chunks):
            if c != 2 or lost != "never written":
                w.write(s, key)
    shards = shards_of(tmp_path / "val")
    if lost == "cut off its shard":
        cut_shard_inside(shards[0].path, 2)
    counter = SkipCounter()
    got = list(read_tracks(shards, 0, sum(s.samples for s in shards), counter))
    assert [r.key for r in got] == [chunks[0][0], chunks[3][0]]
    assert [r.sample.num_frames for r in got] == [10, 5]
    assert got[0].sample.frame_index.tolist() == list(range(0, 10))
    assert got[1].sample.frame_index.tolist() == list(range(15, 20))
    assert dict(counter.counts) == ({} if lost == "never written" else {"truncated_tar": 1})


def test_chunks_of_different_tracks_never_join(tmp_path):
    """Each chunk continues the last in chunk index, frames, labels and encoder, but belongs
    to another track (another track id, then another sequence)."""
    parts = []
    for i, (sequence, track) in enumerate([("seq000", 0), ("seq000", 1), ("seq001", 1)]):
        s = clip("synthetic", "val", i, 6, with_3d=True)
        s.sequence, s.track_id, s.chunk = sequence, track, i
        s.frame_index = np.arange(6 * i, 6 * i + 6, dtype=np.int32)
        parts.append((make_key("synthetic", sequence, track, i), s))
    with ShardSetWriter(tmp_path / "val", "val", 2, source="test") as w:
        for key, s in parts:
            w.write(s, key)
    shards = shards_of(tmp_path / "val")
    got = list(read_tracks(shards, 0, 3, SkipCounter()))
    assert [r.key for r in got] == [k for k, _ in parts]
    assert [r.sample.num_frames for r in got] == [6, 6, 6]
    # the same reads joined as if of one track would have made one piece of 18 frames
    assert [p.sample.num_frames for p in join_chunks(got)] == [18]


def test_the_manifest_lists_the_keys_in_order_even_when_a_shard_is_cut(tmp_path):
    tracks = write_track_set(tmp_path / "val", CHUNKS, SHARDS)
    keys = [make_key("synthetic", s.sequence, s.track_id, s.chunk)
            for chunks in tracks.values() for s in chunks]  # fmt: skip
    assert [k for shard in shards_of(tmp_path / "val") for k in shard.keys] == keys
    cut_shard_inside(shards_of(tmp_path / "val")[2].path, 2)
    assert [k for shard in shards_of(tmp_path / "val") for k in shard.keys] == keys


@pytest.mark.parametrize("num_slots", range(1, 8))
def test_slot_ranges_partition_the_set_and_never_cut_a_track(tmp_path, num_slots):
    tracks = write_track_set(tmp_path / "val", CHUNKS, SHARDS)
    shards = shards_of(tmp_path / "val")
    ranges = [slot_tracks(shards, slot, num_slots) for slot in range(num_slots)]
    assert ranges == RANGES[num_slots]
    assert partition(ranges, 14)
    assert {end for r in ranges for end in r} <= set(STARTS)
    for slot, (lo, hi) in enumerate(ranges):
        raw_lo, raw_hi = slot_range(14, slot, num_slots)
        assert lo == min(p for p in STARTS if p >= raw_lo)
        assert hi == min(p for p in STARTS if p >= raw_hi)
    got = slot_reads(shards, num_slots)
    assert Counter(r.key for _, r in got) == dict.fromkeys(tracks, 1)
    for _, r in got:
        chunks = tracks[r.key]
        assert r.sample.num_frames == frames_of(chunks)
        assert (
            r.sample.frame_index.tolist()
            == np.concatenate([c.frame_index for c in chunks]).tolist()
        )
        np.testing.assert_array_equal(r.sample.phi, np.concatenate([c.phi for c in chunks]))


def test_track_boundary_moves_to_the_next_track_start(tmp_path):
    write_track_set(tmp_path / "val", CHUNKS, SHARDS)
    shards = shards_of(tmp_path / "val")
    assert [track_boundary(shards, p) for p in range(-1, 16)] == [
        0, 0, 1, 5, 5, 5, 5, 7, 7, 8, 11, 11, 11, 12, 14, 14, 14,
    ]  # fmt: skip


@pytest.mark.parametrize("num_slots", [1, 2, 3, 4, 7])
def test_a_truncated_shard_does_not_make_slots_disagree(tmp_path, num_slots):
    """Shard 2 (positions 3..6) is cut inside its second sample: chunks 3 of track 1 and both
    chunks of track 2 are lost. Every other track arrives once and whole, track 1 as its
    first three chunks, and the 3 lost samples are counted once."""
    tracks = write_track_set(tmp_path / "val", CHUNKS, SHARDS)
    shards = shards_of(tmp_path / "val")
    cut_shard_inside(shards[2].path, 1)
    ranges = [slot_tracks(shards, slot, num_slots) for slot in range(num_slots)]
    assert partition(ranges, 14)
    got, skipped, frames = Counter(), Counter(), {}
    for slot in range(num_slots):
        counter = SkipCounter()  # one per slot, as each loader worker has its own
        for r in read_tracks(shards, *ranges[slot], counter):
            got[r.key] += 1
            frames[r.key] = r.sample.frame_index.tolist()
        skipped.update(counter.counts)
    keys = list(tracks)
    assert got == dict.fromkeys([k for i, k in enumerate(keys) if i != 2], 1)
    assert dict(skipped) == {"truncated_tar": 3}
    assert frames[keys[1]] == list(range(3, 3 + 4 + 6 + 3))  # chunks 0..2 of track 1
    for i in (0, 3, 4, 5, 6):
        assert len(frames[keys[i]]) == frames_of(tracks[keys[i]])


def test_sequences_of_lists_every_sequence(tmp_path):
    write_track_set(tmp_path / "val", CHUNKS, SHARDS)
    assert sequences_of([tmp_path / "val"]) == {"seq000", "seq001", "seq002", "seq003"}
