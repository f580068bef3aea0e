"""Convert the official SMPL pickle (chumpy objects, scipy sparse matrices) to the npz layout.

chumpy is not needed: a custom unpickler maps every ``chumpy.*`` class to a placeholder that
keeps the pickled state, and the concrete array of a ``Ch`` is its state's ``x``.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from lightning_hmd.body import model_files
from lightning_hmd.body.model_files import (
    COCOPLUS_REGRESSOR_FILENAME,
    GENDERS,
    H36M_REGRESSOR_FILENAME,
    MEAN_PARAMS_FILENAME,
    META_KEY,
)
from lightning_hmd.errors import ConfigError, DataError, MissingPathError

SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
COCOPLUS_PICKLE_KEY = "cocoplus_regressor"


class ChumpyPlaceholder:
    """Stands in for any chumpy class while unpickling; keeps the pickled state as a dict."""

    chumpy_class = "chumpy.?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = state if isinstance(state, dict) else {"_raw": state}


def _placeholder_class(module: str, name: str) -> type:
    return type(name, (ChumpyPlaceholder,), {"chumpy_class": f"{module}.{name}"})


class _SMPLUnpickler(pickle.Unpickler):
    """Resolves chumpy classes to placeholders and old module paths to their current homes."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _placeholder_class(module, name)
        if module.startswith("scipy.sparse"):
            import scipy.sparse

            if hasattr(scipy.sparse, name):
                return getattr(scipy.sparse, name)
        if module.startswith("numpy.core") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core" + module[len("numpy.core") :]
        return super().find_class(module, name)


_BINARY_OPS = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply}


def to_array(value: Any, key: str) -> np.ndarray:
    """The concrete ndarray of a pickled value: ndarray, scipy sparse, or chumpy placeholder.

    Plain ``Ch`` objects hold their array under ``x``; ``add``/``subtract``/``multiply`` of
    such objects are evaluated. Anything else raises ValueError naming ``key`` and the class.
    """
    if isinstance(value, ChumpyPlaceholder):
        state = value.state
        if "x" in state:
            return to_array(state["x"], key)
        op = value.chumpy_class.rsplit(".", 1)[-1]
        if op in _BINARY_OPS and "a" in state and "b" in state:
            return _BINARY_OPS[op](to_array(state["a"], key), to_array(state["b"], key))
        raise DataError(
            f"key {key!r} is a {value.chumpy_class} object with no concrete value "
            f"(state keys {sorted(state)}); convert the file with chumpy installed "
            "(e.g. smplx's tools/clean_ch.py) and retry"
        )
    if hasattr(value, "toarray"):  # scipy sparse
        return np.asarray(value.toarray())
    return np.asarray(value)


def read_smpl_pickle(pkl_path: str | Path) -> dict[str, Any]:
    """Unpickle an official SMPL/HMR model file without chumpy (values are not converted)."""
    with open(pkl_path, "rb") as f:
        return _SMPLUnpickler(f, encoding="latin1").load()


def infer_gender(pkl_path: str | Path, gender: str | None = None) -> str:
    """``gender`` if given, else from the file name (neutral / female / male, f / m)."""
    if gender is not None:
        if gender not in GENDERS:
            raise ConfigError(f"gender must be one of {GENDERS}, got {gender!r}")
        return gender
    stem = Path(pkl_path).stem.lower()
    for candidate in ("neutral", "female", "male"):  # "female" before "male"
        if candidate in stem:
            return candidate
    match = re.search(r"(?:^|[_\-.])([fm])(?:$|[_\-.])", stem)
    if match:
        return {"f": "female", "m": "male"}[match.group(1)]
    raise ConfigError(f"cannot infer the gender from {Path(pkl_path).name!r}; pass gender=")


def convert_smpl_pickle(
    pkl_path: str | Path,
    out_dir: str | Path,
    mean_params_h5: str | Path | None = None,
    h36m_regressor: str | Path | None = None,
    gender: str | None = None,
) -> Path:
    """Write ``SMPL_<GENDER>.npz`` (and the optional files) into ``out_dir``; return out_dir.

    Args:
        pkl_path: official SMPL pickle (e.g. ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``) or
            HMR's ``neutral_smpl_with_cocoplustoesankles_reg.pkl`` (``SMPL_MODEL_PATH`` of
            HMMR's ``src/config.py``), whose sparse (25, V) ``cocoplus_regressor`` is written to
            ``J_regressor_cocoplus.npy``.
        out_dir: model directory (layout in :mod:`model_files`).
        mean_params_h5: HMR's ``neutral_smpl_meanwjoints.h5`` (read by
            ``Tester.load_mean_params`` in HMMR's ``src/evaluation/tester.py``; datasets
            ``pose`` (72,) and ``shape`` (10,)), written to ``mean_params.npz``.
        h36m_regressor: a (17, V) ``.npy`` regressor, copied to ``J_regressor_h36m.npy``.
        gender: overrides the gender inferred from the file name.

    Every file is written under a temporary name and renamed, so a partial file never looks
    complete.
    """
    pkl_path, out = Path(pkl_path), Path(out_dir)
    if not pkl_path.is_file():
        raise MissingPathError(f"SMPL pickle not found: {pkl_path}. " + model_files.HOW_TO_OBTAIN)
    gender = infer_gender(pkl_path, gender)
    raw = read_smpl_pickle(pkl_path)
    missing = [k for k in SMPL_KEYS if k not in raw]
    if missing:
        raise DataError(f"{pkl_path}: missing key(s) {missing}; found {sorted(raw)}")
    arrays = {k: to_array(raw[k], k) for k in SMPL_KEYS}
    num_vertices = model_files.validate_smpl_arrays(arrays, pkl_path)
    written = []

    if COCOPLUS_PICKLE_KEY in raw:
        cocoplus = to_array(raw[COCOPLUS_PICKLE_KEY], COCOPLUS_PICKLE_KEY)
        _check_regressor(cocoplus, "cocoplus", num_vertices, pkl_path)
        model_files.save_npy(out / COCOPLUS_REGRESSOR_FILENAME, cocoplus)
        written.append(COCOPLUS_REGRESSOR_FILENAME)
    if h36m_regressor is not None:
        h36m = to_array(np.load(h36m_regressor, allow_pickle=False), "h36m")
        _check_regressor(h36m, "h36m", num_vertices, Path(h36m_regressor))
        model_files.save_npy(out / H36M_REGRESSOR_FILENAME, h36m)
        written.append(H36M_REGRESSOR_FILENAME)
    if mean_params_h5 is not None:
        pose, shape = read_mean_params_h5(mean_params_h5)
        model_files.save_npz(out / MEAN_PARAMS_FILENAME, {"pose": pose, "shape": shape})
        written.append(MEAN_PARAMS_FILENAME)

    arrays[META_KEY] = model_files.meta_array(
        source=f"converted from {pkl_path.name}",
        gender=gender,
        dropped_keys=sorted(set(raw) - set(SMPL_KEYS) - {COCOPLUS_PICKLE_KEY}),
        extra_files=written,
    )
    model_files.save_npz(out / model_files.smpl_filename(gender), arrays)
    return out


def _check_regressor(reg: np.ndarray, name: str, num_vertices: int, source: Path) -> None:
    K = model_files.REGRESSOR_NUM_JOINTS[name]
    if reg.shape != (K, num_vertices):
        raise DataError(
            f"{source}: {name} regressor has shape {reg.shape}, expected ({K}, V={num_vertices})"
        )


def read_mean_params_h5(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """HMR's mean parameters (``neutral_smpl_meanwjoints.h5``, read by
    ``Tester.load_mean_params`` in HMMR's ``src/evaluation/tester.py``): datasets ``pose``
    (72,) and ``shape`` (10,)."""
    import h5py

    with h5py.File(path, "r") as f:
        for key, size in (("pose", 72), ("shape", 10)):
            if key not in f or f[key].size != size:
                found = tuple(f[key].shape) if key in f else "missing"
                raise DataError(f"{path}: dataset {key!r} must hold {size} values, got {found}")
        return np.asarray(f["pose"]).reshape(72), np.asarray(f["shape"]).reshape(10)
