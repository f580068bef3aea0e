"""W&B offline runs read without a server: config, summary and history of
``wandb/offline-run-<time>-<id>/run-<id>.wandb``.

wandb writes these transaction logs with its Go core and ships no Python reader of them
any more (``wandb sync`` uploads them; the old ``wandb.sdk.internal.datastore`` is gone), so
the framing is read here: a 7-byte W&B header, then LevelDB's log format (32 KiB blocks of
records, each with a CRC-32 over its type byte and data, split into FIRST/MIDDLE/LAST pieces
across blocks; https://github.com/google/leveldb/blob/main/doc/log_format.md). Each record is
a ``wandb.proto.wandb_internal_pb2.Record``, decoded with wandb's own protobuf classes.

A run that was resumed (a requeued SLURM job, a restarted process) has one offline
directory per process, all with the same run id; :func:`offline_runs` joins them in order.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lightning_hmd.errors import DataError

HEADER = b":W&B" + struct.pack("<H", 0xBEE1) + b"\x00"  # ident, magic, version 0
BLOCK = 32 * 1024
RECORD_HEADER = 7  # crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
OFFLINE_GLOB = "offline-run-*"


class OfflineLogError(DataError):
    """A file that is not a W&B transaction log."""


@dataclass
class OfflineRun:
    """One run's records, joined over its offline directories (oldest first)."""

    run_id: str
    paths: list[Path] = field(default_factory=list)
    group: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    corrupt: int = 0  # records dropped: bad checksum or a truncated tail (a killed process)


def read_payloads(path: Path) -> tuple[list[bytes], int]:
    """The records' bytes of one log, and how many were dropped as corrupt.

    Raises:
        OfflineLogError: the file does not start with the W&B header.
    """
    data = Path(path).read_bytes()
    if not data.startswith(HEADER):
        raise OfflineLogError(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    payloads: list[bytes] = []
    corrupt, pos, pending = 0, len(HEADER), None
    while pos + RECORD_HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < RECORD_HEADER:  # the block's zero padding
            pos += room
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        body = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind == 0 and length == 0:  # zero-filled rest of a block
            continue
        if len(body) < length or zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
            corrupt += 1
            pending = None
            if len(body) < length:
                break
            continue
        if kind == FULL:
            payloads.append(body)
        elif kind == FIRST:
            pending = bytearray(body)
        elif kind in (MIDDLE, LAST) and pending is not None:
            pending += body
            if kind == LAST:
                payloads.append(bytes(pending))
                pending = None
        else:
            corrupt += 1
    return payloads, corrupt + (pending is not None)


def _items(items) -> Iterator[tuple[str, object]]:  # noqa: ANN001
    for item in items:
        key = item.key or "/".join(item.nested_key)
        yield key, json.loads(item.value_json) if item.value_json else None


def read_run(log: Path, run: OfflineRun | None = None) -> OfflineRun:
    """Add the records of one ``run-<id>.wandb`` to ``run`` (a new one when None)."""
    from wandb.proto import wandb_internal_pb2

    payloads, corrupt = read_payloads(log)
    run = run or OfflineRun(run_id="")
    run.paths.append(Path(log).parent)
    run.corrupt += corrupt
    for payload in payloads:
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(payload)
        except Exception:
            run.corrupt += 1
            continue
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id = record.run.run_id or run.run_id
            run.group = record.run.run_group or run.group
            run.tags = list(record.run.tags) or run.tags
            run.config.update(_items(record.run.config.update))
        elif kind == "config":
            run.config.update(_items(record.config.update))
        elif kind == "history":
            run.history.append(dict(_items(record.history.item)))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
    run.config.pop("_wandb", None)  # wandb's own bookkeeping
    return run


def offline_runs(folder: Path) -> dict[str, OfflineRun]:
    """Every run below ``folder`` (a ``wandb`` folder, a run directory holding one, or one
    offline directory), offline directories of the same run id joined oldest first (their
    names start with the start time)."""
    folder = Path(folder)
    logs = sorted(folder.rglob("run-*.wandb"), key=lambda p: p.parent.name)
    runs: dict[str, OfflineRun] = {}
    for log in logs:
        if not log.parent.name.startswith("offline-run-"):
            continue  # latest-run is a link to one of them
        run_id = log.stem.removeprefix("run-")
        runs[run_id] = read_run(log, runs.get(run_id, OfflineRun(run_id=run_id)))
    return runs
