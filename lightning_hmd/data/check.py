"""Validate shard sets against their manifests (``lightning-hmd data check DIR``).

For every shard listed in a manifest: the file exists, its size and sha256 match, it is a
readable tar whose members are plain files with safe names (no absolute path, no ``..``,
no ``/``) and schema member names only, every sample decodes with valid shapes, dtypes and
finite values, and the sample and frame counts match. Files of the split that the
manifest does not list, and leftover ``*.tmp`` files, are reported too. Nothing is
unpickled: members are read as bytes and decoded by :mod:`lightning_hmd.data.schema`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lightning_hmd.data.schema import (
    SCHEMA_VERSION,
    SchemaError,
    decode_clip,
    decode_mocap,
    num_frames_of,
)
from lightning_hmd.data.shards import (
    MANIFEST_NAME,
    TMP_SUFFIX,
    Manifest,
    ManifestError,
    read_manifest,
    sha256_file,
)
from lightning_hmd.data.tario import Problem, TarReadError, iter_shard_members

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


def _check_shard(set_dir: Path, manifest: Manifest, row: ShardRow, report: CheckReport) -> None:
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
    decode = decode_mocap if manifest.kind == "mocap" else decode_clip
    try:
        for key, members, member_problems in iter_shard_members(path, manifest.kind):
            for p in member_problems:
                problem(p.message, p.key)
            if member_problems:
                continue
            try:
                sample = decode(members)
            except SchemaError as err:
                problem(str(err), key)
                continue
            row.samples += 1
            row.frames += num_frames_of(sample)
            if sample.dataset != manifest.dataset:
                problem(f"dataset {sample.dataset!r}, manifest says {manifest.dataset!r}", key)
            if manifest.kind == "clip" and sample.split != manifest.split:
                problem(f"split {sample.split!r}, manifest says {manifest.split!r}", key)
    except TarReadError as err:
        problem(str(err))
    if row.samples != entry.samples:
        problem(f"{row.samples} valid samples, manifest says {entry.samples}")
    if row.frames != entry.frames:
        problem(f"{row.frames} frames in valid samples, manifest says {entry.frames}")


def _check_set(root: Path, set_dir: Path, report: CheckReport) -> None:
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
        _check_shard(set_dir, manifest, row, report)
    listed = set(names)
    stray = re.compile(rf"^{re.escape(manifest.split)}-\d{{6}}\.tar(\{TMP_SUFFIX})?$")
    for p in sorted(set_dir.iterdir()):
        if p.name.endswith(TMP_SUFFIX) or (stray.match(p.name) and p.name not in listed):
            prefix = f"{rel}/" if rel != "." else ""
            report.problems.append(
                Problem(f"{prefix}{p.name}", "file is not listed in the manifest")
            )


def check_shards(directory: str | Path) -> CheckReport:
    """Check the shard set in ``directory``, or every set below it.

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
        _check_set(root, set_dir, report)
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
