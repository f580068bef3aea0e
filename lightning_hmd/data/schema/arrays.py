"""Numpy members: written and read without pickle, checked for dtype, shape and finite values."""

from __future__ import annotations

import io

import numpy as np

from lightning_hmd.data.schema.members import SchemaError


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _load_npy(member: str, data: bytes) -> np.ndarray:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SchemaError(f"{member}: expected bytes, got {type(data).__name__}")
    try:
        return np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except Exception as err:  # any parse failure of a hostile or truncated member
        raise SchemaError(f"{member}: not a readable numpy array without pickle ({err})") from err


def _fmt_shape(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_array(
    member: str, array: object, dtype: np.dtype | type, shape: tuple[int | str | None, ...]
) -> np.ndarray:
    """Check dtype, shape (``None`` = any size >= 1) and finite values of one array."""
    if not isinstance(array, np.ndarray):
        raise SchemaError(f"{member}: expected a numpy array, got {type(array).__name__}")
    want = np.dtype(dtype)
    if array.dtype != want:
        raise SchemaError(f"{member}: expected dtype {want}, got {array.dtype}")
    ok = array.ndim == len(shape) and all(
        (s is None and a >= 1) or a == s for a, s in zip(array.shape, shape, strict=False)
    )
    if not ok:
        expected = _fmt_shape(tuple("*" if s is None else s for s in shape))
        raise SchemaError(
            f"{member}: expected shape {expected}, got {_fmt_shape(tuple(array.shape))}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise SchemaError(f"{member}: {bad} non-finite value(s) (NaN or inf)")
    return array
