"""Body-model directory layout: the only module that reads (and writes) body-model files.

Layout of a model directory ``DIR`` (V vertices, S shape directions, F faces)::

    DIR/SMPL_NEUTRAL.npz          official SMPL keys (also SMPL_MALE.npz / SMPL_FEMALE.npz)
        v_template   (V, 3)       template mesh, T-pose, y up, metres
        shapedirs    (V, 3, S)    shape blend shapes, S >= 10
        posedirs     (V, 3, 207)  pose-corrective blend shapes, 207 = 23 joints x 9
        J_regressor  (24, V)      dense; rows sum to 1
        weights      (V, 24)      skinning weights; rows sum to 1
        kintree_table (2, 24)     row 0: parent of each joint (SMPL tree)
        f            (F, 3)       triangle vertex indices
        meta         ()           JSON string, e.g. {"source": "synthetic, not SMPL"}
    DIR/J_regressor_cocoplus.npy  (25, V) HMR's 25-keypoint regressor (optional)
    DIR/J_regressor_h36m.npy      (17, V) Human3.6M joint regressor (optional)
    DIR/mean_params.npz           pose (72,), shape (10,): the regressor's initial estimate

Writers use :func:`save_npz` / :func:`save_npy`, which are byte-deterministic and atomic.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from lightning_hmd.body.joints import (
    H36M_JOINT_NAMES,
    NUM_BETAS,
    NUM_KEYPOINTS,
    NUM_SMPL_JOINTS,
    SMPL_PARENTS,
)
from lightning_hmd.errors import ConfigError, DataError, MissingPathError

NUM_POSE_BASIS = 9 * (NUM_SMPL_JOINTS - 1)  # 207
NUM_H36M_JOINTS = len(H36M_JOINT_NAMES)  # 17

GENDERS = ("neutral", "male", "female")
COCOPLUS_REGRESSOR_FILENAME = "J_regressor_cocoplus.npy"
H36M_REGRESSOR_FILENAME = "J_regressor_h36m.npy"
MEAN_PARAMS_FILENAME = "mean_params.npz"
META_KEY = "meta"
SYNTHETIC_SOURCE = "synthetic, not SMPL"

RegressorName = Literal["cocoplus", "h36m"]
REGRESSOR_FILENAMES: dict[str, str] = {
    "cocoplus": COCOPLUS_REGRESSOR_FILENAME,
    "h36m": H36M_REGRESSOR_FILENAME,
}
REGRESSOR_NUM_JOINTS: dict[str, int] = {"cocoplus": NUM_KEYPOINTS, "h36m": NUM_H36M_JOINTS}

HOW_TO_OBTAIN = (
    "Download SMPL from https://smpl.is.tue.mpg.de (registration required), then run "
    "`lightning-hmd body convert SMPL_NEUTRAL.pkl --out DIR` (HMR's "
    "neutral_smpl_with_cocoplustoesankles_reg.pkl also provides the 25-joint cocoplus "
    "regressor; pass its neutral_smpl_meanwjoints.h5 for the mean parameters). "
    "For tests and smoke runs, `lightning-hmd body synth --out DIR` writes a synthetic "
    "stand-in with the same layout."
)


def smpl_filename(gender: str = "neutral") -> str:
    """File name of the SMPL arrays for ``gender``: ``SMPL_NEUTRAL.npz`` etc."""
    if gender not in GENDERS:
        raise ConfigError(f"gender must be one of {GENDERS}, got {gender!r}")
    return f"SMPL_{gender.upper()}.npz"


def _require_file(path: Path, what: str) -> Path:
    if not path.parent.is_dir():
        raise MissingPathError(
            f"Body model directory {path.parent} does not exist (looked for {what} at {path}). "
            + HOW_TO_OBTAIN
        )
    if not path.is_file():
        raise MissingPathError(f"Missing {what}: expected {path}. " + HOW_TO_OBTAIN)
    return path


def _shape_error(path: Path, key: str, expected: str, actual: tuple[int, ...]) -> ValueError:
    return ValueError(f"{path}: key {key!r} has shape {actual}, expected {expected}")


def validate_smpl_arrays(arrays: Mapping[str, np.ndarray], source: str | Path = "<arrays>") -> int:
    """Check keys and shapes of SMPL arrays; return the number of vertices V.

    Raises:
        ValueError: naming ``source``, the key, the expected and the actual shape.
    """
    path = Path(source)
    expected = {
        "v_template": "(V, 3)",
        "shapedirs": f"(V, 3, S>={NUM_BETAS})",
        "posedirs": f"(V, 3, {NUM_POSE_BASIS})",
        "J_regressor": f"({NUM_SMPL_JOINTS}, V)",
        "weights": f"(V, {NUM_SMPL_JOINTS})",
        "kintree_table": f"(2, {NUM_SMPL_JOINTS})",
        "f": "(F, 3)",
    }
    missing = [k for k in expected if k not in arrays]
    if missing:
        detail = ", ".join(f"{k!r} {expected[k]}" for k in missing)
        raise DataError(f"{path}: missing key(s) {detail}; found {sorted(arrays)}")
    v_template = np.asarray(arrays["v_template"])
    if v_template.ndim != 2 or v_template.shape[1] != 3:
        raise _shape_error(path, "v_template", expected["v_template"], v_template.shape)
    V = v_template.shape[0]
    checks = {
        "shapedirs": lambda s: len(s) == 3 and s[:2] == (V, 3) and s[2] >= NUM_BETAS,
        "posedirs": lambda s: s == (V, 3, NUM_POSE_BASIS),
        "J_regressor": lambda s: s == (NUM_SMPL_JOINTS, V),
        "weights": lambda s: s == (V, NUM_SMPL_JOINTS),
        "kintree_table": lambda s: s == (2, NUM_SMPL_JOINTS),
        "f": lambda s: len(s) == 2 and s[1] == 3,
    }
    for key, ok in checks.items():
        shape = tuple(np.shape(arrays[key]))
        if not ok(shape):
            raise _shape_error(path, key, expected[key].replace("V", f"V={V}"), shape)
    parents = np.asarray(arrays["kintree_table"])[0].astype(np.int64)
    if tuple(parents[1:]) != SMPL_PARENTS[1:]:
        raise DataError(
            f"{path}: key 'kintree_table' row 0 (parents) is {tuple(parents)}, "
            f"expected the SMPL tree {SMPL_PARENTS}"
        )
    faces = np.asarray(arrays["f"])
    if faces.size and (faces.min() < 0 or faces.max() >= V):
        raise DataError(f"{path}: key 'f' has vertex indices outside [0, {V})")
    return V


def load_smpl_arrays(model_dir: str | Path, gender: str = "neutral") -> dict[str, np.ndarray]:
    """Read and validate ``DIR/SMPL_<GENDER>.npz``.

    Returns:
        dict with ``v_template (V, 3)``, ``shapedirs (V, 3, S)``, ``posedirs (V, 3, 207)``,
        ``J_regressor (24, V)``, ``weights (V, 24)``, ``kintree_table (2, 24)``, ``f (F, 3)``
        and, when stored, ``meta`` (0-d string array).

    Raises:
        FileNotFoundError: the directory or file is missing (the message says how to get it).
        ValueError: a key is missing or has the wrong shape.
    """
    path = _require_file(Path(model_dir) / smpl_filename(gender), "SMPL model arrays")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    validate_smpl_arrays(arrays, path)
    return arrays


def read_meta(arrays: Mapping[str, np.ndarray]) -> dict:
    """Decode the ``meta`` JSON string of loaded SMPL arrays ({} if absent)."""
    if META_KEY not in arrays:
        return {}
    return json.loads(str(np.asarray(arrays[META_KEY])[()]))


def load_regressor(
    model_dir: str | Path,
    name: RegressorName,
    required: bool = False,
    num_vertices: int | None = None,
) -> np.ndarray | None:
    """Read an extra joint regressor: ``cocoplus`` (25, V) or ``h36m`` (17, V).

    Returns None when the file is absent and ``required`` is False.

    Raises:
        FileNotFoundError: the file is absent and ``required`` is True.
        ValueError: wrong shape (or wrong V when ``num_vertices`` is given).
    """
    if name not in REGRESSOR_FILENAMES:
        raise ConfigError(
            f"regressor name must be one of {tuple(REGRESSOR_FILENAMES)}, got {name!r}"
        )
    path = Path(model_dir) / REGRESSOR_FILENAMES[name]
    if not path.is_file():
        if required:
            _require_file(path, f"{name} joint regressor")
        return None
    regressor = np.load(path, allow_pickle=False)
    K = REGRESSOR_NUM_JOINTS[name]
    V = (
        num_vertices
        if num_vertices is not None
        else (regressor.shape[-1] if regressor.ndim else -1)
    )
    if regressor.shape != (K, V):
        raise _shape_error(path, name, f"({K}, V={V})", regressor.shape)
    return regressor


def load_mean_params(model_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``DIR/mean_params.npz``: the mean pose (72,) (axis-angle) and shape (10,)."""
    path = _require_file(Path(model_dir) / MEAN_PARAMS_FILENAME, "mean parameters")
    with np.load(path, allow_pickle=False) as data:
        for key, shape in (("pose", (3 * NUM_SMPL_JOINTS,)), ("shape", (NUM_BETAS,))):
            if key not in data.files:
                raise DataError(f"{path}: missing key {key!r} (expected shape {shape})")
            if data[key].shape != shape:
                raise _shape_error(path, key, str(shape), data[key].shape)
        return data["pose"].copy(), data["shape"].copy()


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write via ``write(file_object)`` to a temporary name, then rename onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write an uncompressed ``.npz`` atomically and byte-deterministically.

    ``np.savez`` stamps each member with the current time; this writer uses a fixed
    timestamp, so equal arrays give identical files.
    """

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED) as zf:
            for key, value in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)

    return _atomic_write(Path(path), write)


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write one ``.npy`` file atomically."""
    return _atomic_write(
        Path(path), lambda f: np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)
    )


def meta_array(**meta: object) -> np.ndarray:
    """The ``meta`` entry: a 0-d string array holding sorted-key JSON."""
    return np.array(json.dumps(meta, sort_keys=True))
