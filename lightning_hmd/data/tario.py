"""Reading shard tars safely: members grouped into samples by webdataset, nothing unpickled.

Shared by ``data check``, ``data features`` and the streaming reader. The members of a shard
are listed by :func:`tar_members`, a stage in webdataset's file-sample format
(``{"fname", "data", "__url__"}``), and grouped into samples by webdataset's own
``group_by_keys``. The listing stage is written here rather than taken from webdataset's
``tar_file_iterator`` because that one reads every member whole before anything can look at
it (a 400 MB member is 400 MB of memory) and drops links and devices without a trace; this
one checks each header first: unsafe names (absolute, ``..``, a directory part), links and
devices, members the schema does not know, duplicates and members larger than the schema
allows (:func:`lightning_hmd.data.schema.member_limit`) are reported, never read. Members of
samples the caller does not want are not read either (their data is ``None``).

Problems travel inside the sample they belong to, as an extra entry ``__problem_<n>__``; a
member that belongs to no sample (its name is unsafe) is reported on its own, beside the
grouping. Members are
bytes; only :mod:`lightning_hmd.data.schema` decodes them (numpy without pickle, JSON, JPEG).
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from webdataset.tariterators import group_by_keys

from lightning_hmd.data.schema import is_known_member, member_limit, split_member_name

PROBLEM = re.compile(r"^__problem_\d+__$")
DEFAULT_FRAMES = 10_000  # frame count assumed for limits of a sample the manifest lacks


@dataclass
class Problem:
    """One problem: where (set directory, shard file, sample key) and what."""

    where: str
    message: str
    key: str | None = None

    def __str__(self) -> str:
        key = f" [{self.key}]" if self.key else ""
        return f"{self.where}{key}: {self.message}"


class TarReadError(Exception):
    """A tar-level fault that stops reading the shard."""


@dataclass
class RawSample:
    """One sample as grouped from a shard: its key, members (name after the key -> bytes;
    None where not read) and the problems found in its headers. ``key`` is None for a member
    that belongs to no sample (``problems`` says why)."""

    key: str | None
    members: dict[str, bytes | None] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    read: bool = True  # False: the caller did not want it, no member data was read


def _unsafe_name(name: str) -> str | None:
    """Why a tar member name is unsafe, or ``None`` when it is fine."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"absolute member path {name!r}"
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        return f"member path {name!r} escapes the shard ('..')"
    if len(parts) > 1:
        return f"member path {name!r} has a directory part (keys hold no '/')"
    if "." not in name:
        return f"member {name!r} has no extension"
    return None


def _header_problem(
    info: tarfile.TarInfo, member: str, kind: str, seen: set[str], frames: int
) -> str | None:
    """Why a member of a sample must not be read, judged from its header, or None.

    Checked in this order: not a regular file, unknown to the schema, a duplicate within its
    sample (``seen``: the sample's members so far), larger than the schema allows for a
    sample of ``frames`` frames. A regular member the schema knows joins ``seen`` (an
    oversized one too, so a second copy of it reads as a duplicate).
    """
    name = info.name
    if not info.isreg():
        return f"member {name!r} is not a regular file"
    if not is_known_member(member, kind):
        return f"unknown member kind {name!r} (not in the schema)"
    if member in seen:
        return f"duplicate member {name!r}"
    seen.add(member)
    limit = member_limit(member, frames)
    if info.size > limit:
        return f"member {name!r} of {info.size} bytes is larger than the schema allows ({limit})"
    return None


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    """The data of a regular member, all ``info.size`` bytes of it.

    Raises:
        TarReadError: the tar ends inside the member.
    """
    f = tar.extractfile(info)
    data = f.read() if f is not None else b""
    if len(data) != info.size:
        raise TarReadError(f"member {info.name!r} is truncated")
    return data


def tar_members(
    path: Path,
    kind: str,
    frames: Mapping[str, int] | None = None,
    wanted: Container[str] | None = None,
    loose: list[Problem] | None = None,
) -> Iterator[dict]:
    """The members of one shard as webdataset file samples, headers checked first.

    Args:
        path: the shard.
        kind: ``clip`` or ``mocap`` (which member names the schema knows).
        frames: frames per sample key (the manifest's), for the size limits; keys it lacks
            get :data:`DEFAULT_FRAMES`.
        wanted: the keys whose members are read (None: all); others come with data None.
        loose: receives the problems of members that belong to no sample (unsafe names);
            they are not passed on, so they never split a sample's run of members.

    Raises:
        TarReadError: the tar is truncated or corrupt (raised where it breaks).
    """
    try:
        with tarfile.open(path, "r:") as tar:
            yield from _list_members(tar, path, kind, frames or {}, wanted, loose)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise TarReadError(f"unreadable tar ({type(err).__name__}: {err})") from err


def _list_members(
    tar: tarfile.TarFile,
    path: Path,
    kind: str,
    frames: Mapping[str, int],
    wanted: Container[str] | None,
    loose: list[Problem] | None,
) -> Iterator[dict]:
    """:func:`tar_members` on the open ``tar``: an end-of-shard marker ``{}`` before each
    run of one key's members, then a file sample per member (a problem entry instead for a
    member whose header rules it out)."""
    url = str(path)
    current: str | None = None
    seen: set[str] = set()
    n = 0  # problems so far: each gets its own member name within its sample
    for info in tar:
        unsafe = _unsafe_name(info.name)
        if unsafe is not None:
            if loose is not None:
                loose.append(Problem(path.name, unsafe, info.name))
            continue
        key, member = split_member_name(info.name)  # a dot is there: the name is safe
        if key != current:
            # webdataset's end-of-shard marker: the grouping hands the previous sample on
            # now, before this member is read (a tar that breaks inside it loses only the
            # samples from here on)
            yield {}
            current, seen = key, set()
        message = _header_problem(info, member, kind, seen, frames.get(key, DEFAULT_FRAMES))
        if message is not None:
            n += 1
            problem = Problem(path.name, message, key)
            yield {"fname": f"{key}.__problem_{n}__", "data": problem, "__url__": url}
            continue
        data = _read_member(tar, info) if wanted is None or key in wanted else None
        yield {"fname": info.name, "data": data, "__url__": url}


def _raw(sample: dict, wanted: Container[str] | None) -> RawSample:
    key = sample["__key__"]
    members: dict[str, bytes | None] = {}
    problems: list[Problem] = []
    for name, value in sample.items():
        if PROBLEM.match(name):
            problems.append(value)
        elif not name.startswith("__"):
            members[name] = value
    return RawSample(key, members, problems, wanted is None or key in wanted)


def shard_samples(
    path: Path,
    kind: str,
    frames: Mapping[str, int] | None = None,
    wanted: Container[str] | None = None,
) -> Iterator[RawSample]:
    """The samples of one shard in tar order (see :func:`tar_members` for the arguments);
    a member of no sample comes as a sample with key None, after the sample it followed.

    A key that appears in two separate runs of members comes twice. Raises
    :class:`TarReadError` where the tar breaks (webdataset's grouping passes errors of the
    listing stage through; its own handler is left to re-raise).
    """
    loose: list[Problem] = []
    files = tar_members(path, kind, frames, wanted, loose)
    for sample in group_by_keys(files, lcase=False):
        while loose:
            yield RawSample(None, {}, [loose.pop(0)], False)
        yield _raw(sample, wanted)
    while loose:
        yield RawSample(None, {}, [loose.pop(0)], False)


def iter_shard_members(
    path: Path, kind: str
) -> Iterator[tuple[str, dict[str, bytes], list[Problem]]]:
    """``(key, members, problems)`` for every sample of a shard, every member read; a member
    of no sample comes as ``(its name, {}, [problem])``. Samples with problems must not be
    decoded; a key met in two separate runs gets a problem on its second run."""
    seen: set[str] = set()
    for raw in shard_samples(path, kind):
        if raw.key is None:
            yield raw.problems[0].key or "?", {}, raw.problems
            continue
        problems = list(raw.problems)
        if raw.key in seen:
            problems.append(
                Problem(path.name, "key appears in two separate runs of members", raw.key)
            )
        seen.add(raw.key)
        yield raw.key, dict(raw.members), problems
