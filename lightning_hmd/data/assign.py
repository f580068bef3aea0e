"""Which samples each (rank, loader worker) reads: pure functions over the manifests.

Every rank and every DataLoader worker is one *slot* (``world_size * max(num_workers, 1)`` in
all). Rank and world size are passed explicitly by the caller: WebDataset's own splitters
(``split_by_node``, ``split_by_worker``) read them from the environment or
``torch.distributed`` and split whole shards, which under Lightning's launchers can make every
rank read everything and leaves ranks uneven when shards are few. The global list of samples
(the manifests' sample keys, shard by shard, in manifest order) is cut into one contiguous
range per slot, so every slot agrees on the plan without talking to the others and each
sample key belongs to exactly one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning_hmd.data.manifest import Manifest, SampleEntry, read_manifest
from lightning_hmd.errors import DataError


@dataclass(frozen=True)
class ShardRef:
    """One shard file with the counts and the samples (keys, frames, digests) its manifest
    gives, in the order written."""

    path: Path
    samples: int
    frames: int
    entries: tuple[SampleEntry, ...] = ()

    @property
    def keys(self) -> list[str]:
        return [e.key for e in self.entries]


@dataclass(frozen=True)
class ShardSpan:
    """Samples ``[start, stop)`` (positions in the manifest's list of the shard) of one
    shard."""

    shard: ShardRef
    start: int
    stop: int

    @property
    def entries(self) -> tuple[SampleEntry, ...]:
        return self.shard.entries[self.start : self.stop]


def read_manifests(dirs: Sequence[str | Path], kind: str) -> list[Manifest]:
    """The manifests of shard set directories, each checked to be of ``kind``.

    Raises:
        ManifestError: a directory without a valid manifest.
        ValueError: a set of another kind (``clip`` or ``mocap``) than ``kind``.
    """
    manifests = []
    for d in dirs:
        m = read_manifest(d)
        if m.kind != kind:
            raise DataError(f"{d}: expected a {kind} shard set, manifest says {m.kind!r}")
        manifests.append(m)
    return manifests


def _shard_refs(dirs: Sequence[str | Path], manifests: Sequence[Manifest]) -> list[ShardRef]:
    return [
        ShardRef(Path(d) / s.name, s.samples, s.frames, s.entries)
        for d, m in zip(dirs, manifests, strict=True)
        for s in m.shards
    ]


def read_shards(dirs: Sequence[str | Path], kind: str) -> list[ShardRef]:
    """The shards of shard set directories in order (set by set, each in manifest order).

    Raises:
        ManifestError: a directory without a valid manifest.
        ValueError: a set of another kind (``clip`` or ``mocap``) than ``kind``.
    """
    return _shard_refs(dirs, read_manifests(dirs, kind))


def slot_index(rank: int, world_size: int, worker: int, num_workers: int) -> tuple[int, int]:
    """(slot, number of slots) of a loader worker; ``num_workers=0`` reads in the main process."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world_size {world_size}")
    per_rank = max(num_workers, 1)
    if not 0 <= worker < per_rank:
        raise ValueError(f"worker {worker} is outside {per_rank} workers")
    return rank * per_rank + worker, world_size * per_rank


def slot_range(total: int, slot: int, num_slots: int) -> tuple[int, int]:
    """The contiguous global sample range ``[lo, hi)`` of one slot (sizes differ by <= 1)."""
    return slot * total // num_slots, (slot + 1) * total // num_slots


def spans(shards: Sequence[ShardRef], lo: int, hi: int) -> list[ShardSpan]:
    """The parts of the shards that global samples ``[lo, hi)`` fall in."""
    out, offset = [], 0
    for shard in shards:
        a, b = max(lo, offset), min(hi, offset + shard.samples)
        if a < b:
            out.append(ShardSpan(shard, a - offset, b - offset))
        offset += shard.samples
    return out


def train_spans(shards: Sequence[ShardRef], slot: int, num_slots: int) -> list[ShardSpan]:
    """A training slot's samples: its range, or, with fewer samples than slots, one sample
    (``slot mod total``) so no slot is starved (training streams repeat anyway)."""
    total = sum(s.samples for s in shards)
    if total == 0:
        raise DataError("the training shard sets hold no samples")
    lo, hi = slot_range(total, slot, num_slots)
    if lo == hi:
        lo = slot % total
        hi = lo + 1
    return spans(shards, lo, hi)
