"""Converters from the public datasets' original layouts to lightning_hmd clip and mocap shards.

Each converter module exposes ``NAME``, a docstring describing the source layout it expects,
and ``convert(src, out, **options) -> dict[str, Manifest]``. ``lightning-hmd data convert
NAME SRC --out DIR`` looks the module up in :data:`CONVERTERS`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

CONVERTERS: dict[str, str] = {
    "hmmr-tfrecord": "data_prep.hmmr_tfrecord",
    "penn-action": "data_prep.penn_action",
    "3dpw": "data_prep.threedpw",
    "h36m": "data_prep.h36m",
    "mocap": "data_prep.mocap",
}


def converter(name: str) -> ModuleType:
    """The converter module registered under ``name``; ``KeyError`` lists the known names."""
    if name not in CONVERTERS:
        raise KeyError(f"unknown converter {name!r}; known: {', '.join(sorted(CONVERTERS))}")
    return importlib.import_module(CONVERTERS[name])
