"""Reading shard tars safely: members grouped by key, nothing unpickled, unsafe names caught.

Shared by ``data check`` and the streaming reader. Members are returned as bytes; only
:mod:`lightning_hmd.data.schema` decodes them (numpy without pickle, JSON, JPEG).
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lightning_hmd.data.schema import is_known_member


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


def _safe_member_name(name: str) -> str | None:
    """Why a tar member name is unsafe, or ``None`` when it is fine."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"absolute member path {name!r}"
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        return f"member path {name!r} escapes the shard ('..')"
    if len(parts) > 1:
        return f"member path {name!r} has a directory part (keys hold no '/')"
    return None


def iter_shard_members(
    path: Path, kind: str
) -> Iterator[tuple[str, dict[str, bytes], list[Problem]]]:
    """Group consecutive members by key, as WebDataset does; yield ``(key, members, problems)``.

    A sample with member-level problems (unsafe name, unknown kind, duplicate) comes with
    them and must not be decoded; tar-level faults (truncation, corruption) raise
    :class:`TarReadError`.
    """
    seen: set[str] = set()
    key: str | None = None
    members: dict[str, bytes] = {}
    problems: list[Problem] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                reason = _safe_member_name(info.name)
                if reason is None and not info.isfile():
                    reason = f"member {info.name!r} is not a regular file"
                if reason is None and "." not in info.name:
                    reason = f"member {info.name!r} has no extension"
                if reason is not None:
                    yield info.name, {}, [Problem(path.name, reason)]
                    continue
                k, member = info.name.split(".", 1)
                if k != key:
                    if key is not None:
                        yield key, members, problems
                    key, members, problems = k, {}, []
                    if k in seen:
                        problems.append(
                            Problem(path.name, "key appears in two separate runs of members", k)
                        )
                    seen.add(k)
                if not is_known_member(member, kind):
                    problems.append(
                        Problem(
                            path.name, f"unknown member kind {info.name!r} (not in the schema)", k
                        )
                    )
                    continue
                if member in members:
                    problems.append(Problem(path.name, f"duplicate member {info.name!r}", k))
                    continue
                f = tar.extractfile(info)
                data = f.read() if f is not None else b""
                if len(data) != info.size:
                    raise TarReadError(f"member {info.name!r} is truncated")
                members[member] = data
    except (tarfile.TarError, EOFError, OSError) as err:
        raise TarReadError(f"unreadable tar ({type(err).__name__}: {err})") from err
    if key is not None:
        yield key, members, problems
