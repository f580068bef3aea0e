"""Validate shard sets against their manifests (``lightning-hmd data check DIR``).

For every shard listed in a manifest: the file exists, its size and sha256 match and it
ends with the tar end marker; then its samples are read by the training and evaluation
reader itself (:func:`lightning_hmd.data.stream.read_span` over the whole shard), so that
``data check`` reports exactly what the reader would skip, each problem with shard, sample
key and reason: unsafe, unknown, duplicate and oversize members, schema violations (shape,
dtype, non-finite values, unreadable members), members that differ from the manifest's
sha256 of the sample, JPEG frames that do not decode (every frame is decoded, unless
``quick``), duplicate and foreign samples, listed samples the shard lacks, a tar that breaks.
The sample and frame counts, and each sample's dataset and split, must match the manifest.
Files of the split that the manifest does not list, and leftover ``*.tmp`` files, are
reported too. Nothing is unpickled: members are read as bytes and decoded by
:mod:`lightning_hmd.data.schema`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lightning_hmd.data.assign import ShardRef, ShardSpan
from lightning_hmd.data.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    read_manifest,
    sha256_file,
)
from lightning_hmd.data.schema import SCHEMA_VERSION, num_frames_of
from lightning_hmd.data.shards import TMP_SUFFIX
from lightning_hmd.data.skips import SkipCounter
from lightning_hmd.data.stream import read_span
from lightning_hmd.data.tario import Problem

MAX_PROBLEMS_PER_SHARD = 20


@dataclass
class ShardRow:
    """One checked shard: counts expected by the manifest and found in the file."""

    set_dir: str
    name: str
    expected_samples: int
    samples: int = 0
    expected_frames: int = 0
    frames: int = 0
    bytes: int = 0
    checksum_ok: bool = False
    problems: int = 0

    @property
    def ok(self) -> bool:
        return self.problems == 0


@dataclass
class CheckReport:
    """Rows per shard and every problem found; ``ok`` when there is none."""

    root: str
    sets: list[str] = field(default_factory=list)
    rows: list[ShardRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_shards(self) -> list[str]:
        return [
            f"{r.set_dir}/{r.name}" if r.set_dir != "." else r.name for r in self.rows if not r.ok
        ]


def _has_end_marker(path: Path) -> bool:
    """Whether a tar file ends with the end-of-archive marker (1024 zero bytes at least)."""
    size = path.stat().st_size
    if size < 1024 or size % 512:
        return False
    with open(path, "rb") as f:
        f.seek(size - 1024)
        return f.read(1024) == bytes(1024)


class _Problems(SkipCounter):
    """The reader's skips as problems of the report (not logged: the report lists them)."""

    def __init__(self, problem) -> None:  # noqa: ANN001
        super().__init__()
        self._problem = problem

    def skip(self, reason: str, shard: Path | str, where: str, detail: str, n: int = 1) -> None:
        lost = f" ({n} samples)" if n > 1 else ""
        self._problem(f"{reason}{lost}: {detail}", where)


def _check_shard(
    set_dir: Path, manifest: Manifest, row: ShardRow, report: CheckReport, decode_frames: bool
) -> None:
    path = set_dir / row.name
    where = row.name if row.set_dir == "." else f"{row.set_dir}/{row.name}"

    def problem(message: str, key: str | None = None) -> None:
        row.problems += 1
        if row.problems <= MAX_PROBLEMS_PER_SHARD:
            report.problems.append(Problem(where, message, key))

    entry = next(s for s in manifest.shards if s.name == row.name)
    if not path.is_file():
        problem("shard file is missing")
        return
    row.bytes = path.stat().st_size
    if row.bytes != entry.bytes:
        problem(f"size {row.bytes} bytes, manifest says {entry.bytes}")
    row.checksum_ok = sha256_file(path) == entry.sha256
    if not row.checksum_ok:
        problem("sha256 checksum differs from the manifest")
    if not _has_end_marker(path):
        problem("no end-of-archive marker (two zero blocks): the tar is truncated")
    if len(entry.entries) != entry.samples or sum(e.frames for e in entry.entries) != entry.frames:
        problem(
            f"the manifest's sample list ({len(entry.entries)} samples, "
            f"{sum(e.frames for e in entry.entries)} frames) disagrees with its counts "
            f"({entry.samples} samples, {entry.frames} frames)"
        )
    span = ShardSpan(
        ShardRef(path, entry.samples, entry.frames, entry.entries), 0, len(entry.entries)
    )
    frames = {e.key: e.frames for e in entry.entries}
    # every listed sample is either read intact here or reported by the reader
    for read in read_span(span, manifest.kind, _Problems(problem), decode_frames=decode_frames):
        row.samples += 1
        n = num_frames_of(read.sample)
        row.frames += n
        if n != frames[read.key]:
            problem(f"{n} frames, manifest says {frames[read.key]}", read.key)
        if read.sample.dataset != manifest.dataset:
            problem(
                f"dataset {read.sample.dataset!r}, manifest says {manifest.dataset!r}", read.key
            )
        if manifest.kind == "clip" and read.sample.split != manifest.split:
            problem(f"split {read.sample.split!r}, manifest says {manifest.split!r}", read.key)


def _check_set(root: Path, set_dir: Path, report: CheckReport, decode_frames: bool) -> None:
    rel = set_dir.relative_to(root).as_posix() if set_dir != root else "."
    report.sets.append(rel)
    where = f"{rel}/{MANIFEST_NAME}" if rel != "." else MANIFEST_NAME
    try:
        manifest = read_manifest(set_dir)
    except ManifestError as err:
        report.problems.append(Problem(where, str(err)))
        return
    if manifest.schema_version != SCHEMA_VERSION:
        report.problems.append(
            Problem(where, f"schema_version {manifest.schema_version}, expected {SCHEMA_VERSION}")
        )
        return
    names = [s.name for s in manifest.shards]
    if len(set(names)) != len(names):
        report.problems.append(Problem(where, "a shard is listed twice"))
    for entry in manifest.shards:
        row = ShardRow(rel, entry.name, entry.samples, expected_frames=entry.frames)
        report.rows.append(row)
        _check_shard(set_dir, manifest, row, report, decode_frames)
    listed = set(names)
    stray = re.compile(rf"^{re.escape(manifest.split)}-\d{{6}}\.tar(\{TMP_SUFFIX})?$")
    for p in sorted(set_dir.iterdir()):
        if p.name.endswith(TMP_SUFFIX) or (stray.match(p.name) and p.name not in listed):
            prefix = f"{rel}/" if rel != "." else ""
            report.problems.append(
                Problem(f"{prefix}{p.name}", "file is not listed in the manifest")
            )


def check_shards(directory: str | Path, *, quick: bool = False) -> CheckReport:
    """Check the shard set in ``directory``, or every set below it; ``quick``: JPEG frames
    are checked for their header only, not decoded.

    A directory holding ``manifest.json`` is one set; otherwise every directory below it
    holding a ``manifest.json`` is checked. No manifest at all is a problem.
    """
    root = Path(directory)
    report = CheckReport(root=str(root))
    if not root.is_dir():
        report.problems.append(Problem(str(root), "not a directory"))
        return report
    if (root / MANIFEST_NAME).is_file():
        set_dirs = [root]
    else:
        set_dirs = sorted(p.parent for p in root.rglob(MANIFEST_NAME) if p.is_file())
    if not set_dirs:
        report.problems.append(Problem(str(root), f"no {MANIFEST_NAME} found"))
    for set_dir in set_dirs:
        _check_set(root, set_dir, report, not quick)
    return report


def format_report(report: CheckReport) -> str:
    """A summary table (one row per shard), totals, then every problem."""
    header = ("shard", "samples", "frames", "MiB", "sha256", "status")
    rows = [
        (
            r.name if r.set_dir == "." else f"{r.set_dir}/{r.name}",
            f"{r.samples}/{r.expected_samples}",
            f"{r.frames}/{r.expected_frames}",
            f"{r.bytes / 2**20:.2f}",
            "ok" if r.checksum_ok else "BAD",
            "ok" if r.ok else f"{r.problems} problem(s)",
        )
        for r in report.rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    out = [f"shards under {report.root}: {len(report.sets)} set(s), {len(report.rows)} shard(s)"]
    out.append(line(header))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in rows)
    samples = sum(r.samples for r in report.rows)
    frames = sum(r.frames for r in report.rows)
    out.append(f"total: {samples} samples, {frames} frames")
    if report.ok:
        out.append("OK: no problems")
    else:
        out.append(f"FAILED: {len(report.problems)} problem(s)")
        out.extend(f"  {p}" for p in report.problems)
    return "\n".join(out)
