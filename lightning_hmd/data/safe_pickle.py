"""Pickles of numpy arrays read without running code: plain pickles and joblib dumps.

Public datasets (3DPW, HMR's neutrMosh) and other codebases' outputs (HMMR's prediction
pickles, VIBE's and TCMR's ``joblib.dump`` results) hold only numpy arrays, numbers, strings
and builtin containers. Unpickling runs whatever globals a file names, so these readers
resolve an allow-list of numpy reconstruction helpers and refuse every other global: a
tampered file raises instead of running code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from lightning_hmd.errors import DataError

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    ("collections", "OrderedDict"),
}
# joblib writes each array as a wrapper object followed by the array's raw bytes
_JOBLIB_GLOBALS = {("joblib.numpy_pickle", "NumpyArrayWrapper")}
_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError)


def _refuse(module: str, name: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays)")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise _refuse(module, name)


def load_pickle(path: Path) -> object:
    """A pickle of numpy arrays and builtin containers (Python 2 pickles included).

    Raises:
        ValueError: naming the file when it is not such a pickle.
    """
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding="latin1").load()
    except _ERRORS as err:
        raise DataError(f"{path}: not a readable pickle of arrays ({err})") from err


def load_joblib(path: Path) -> object:
    """A ``joblib.dump`` file (any compression) of numpy arrays and builtin containers.

    joblib's own ``load`` unpickles without restriction; this reader uses joblib's array
    unpickler with the allow-list above. Joblib files older than joblib 0.10 are refused.

    Raises:
        ValueError: naming the file when it is not such a file.
    """
    from joblib import numpy_pickle

    class _Restricted(numpy_pickle.NumpyUnpickler):
        def find_class(self, module: str, name: str) -> object:
            if (module, name) in _SAFE_GLOBALS | _JOBLIB_GLOBALS:
                return super().find_class(module, name)
            raise _refuse(module, name)

    try:
        # joblib's private helper undoes its compression wrappers (zlib, gzip, lzma...)
        with (
            open(path, "rb") as f,
            numpy_pickle._validate_fileobject_and_memmap(f, str(path), None) as (fobj, _),
        ):
            if isinstance(fobj, str):
                raise DataError("a joblib file of a version before 0.10")
            return _Restricted(str(path), fobj, ensure_native_byte_order=True).load()
    except _ERRORS as err:
        raise DataError(f"{path}: not a readable joblib file of arrays ({err})") from err
