"""Converting an SMPL-style pickle with chumpy objects, without chumpy installed."""

from __future__ import annotations

import contextlib
import pickle
import sys
import types

import h5py
import numpy as np
import pytest
import scipy.sparse
import torch

from lightning_hmd.body import model_files
from lightning_hmd.body.convert import (
    ChumpyPlaceholder,
    convert_smpl_pickle,
    infer_gender,
    read_smpl_pickle,
    to_array,
)
from lightning_hmd.body.smpl import BodyModel


class _FakeCh:
    """Pickles like ``chumpy.ch.Ch``: state is the instance dict, with the array under 'x'."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False

    def __getstate__(self) -> dict:
        return dict(self.__dict__)


class _FakeAdd:
    """Pickles like ``chumpy.ch_ops.add`` with operands a and b."""

    def __init__(self, a, b) -> None:
        self.a, self.b = a, b
        self._dirty_vars = set()


class _FakeSelect:
    """A chumpy op with no concrete value in its state."""

    def __init__(self, a) -> None:
        self.a = a


@contextlib.contextmanager
def fake_chumpy():
    """Temporarily register modules chumpy, chumpy.ch and chumpy.ch_ops holding the fakes."""
    modules = {name: types.ModuleType(name) for name in ("chumpy", "chumpy.ch", "chumpy.ch_ops")}
    for cls, module, name in (
        (_FakeCh, "chumpy.ch", "Ch"),
        (_FakeAdd, "chumpy.ch_ops", "add"),
        (_FakeSelect, "chumpy.reordering", "Select"),
    ):
        cls.__module__, cls.__qualname__, cls.__name__ = module, name, name
        modules.setdefault(module, types.ModuleType(module))
        setattr(modules[module], name, cls)
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def dumps_with_fake_chumpy(obj) -> bytes:
    with fake_chumpy():
        return pickle.dumps(obj, protocol=2)


@pytest.fixture(scope="module")
def smpl_like_pickle(synthetic_body_dir, tmp_path_factory):
    """An HMR-style pickle built from the synthetic model's arrays, and what it holds."""
    arrays = model_files.load_smpl_arrays(synthetic_body_dir)
    cocoplus = model_files.load_regressor(synthetic_body_dir, "cocoplus")
    kintree = arrays["kintree_table"].astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the official files
    expected = {
        "v_template": arrays["v_template"],
        "shapedirs": arrays["shapedirs"],
        "posedirs": arrays["posedirs"],
        "J_regressor": arrays["J_regressor"],
        "weights": arrays["weights"],
        "kintree_table": kintree,
        "f": arrays["f"].astype(np.uint32),
    }
    content = {
        **expected,
        "shapedirs": _FakeCh(arrays["shapedirs"]),
        "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"]),
        "cocoplus_regressor": scipy.sparse.csc_matrix(cocoplus),
        "J": _FakeCh(arrays["J_regressor"] @ arrays["v_template"]),
        "weights_prior": arrays["weights"].copy(),
        "J_regressor_prior": scipy.sparse.csc_matrix(arrays["J_regressor"]),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    path = tmp_path_factory.mktemp("pkl") / "neutral_smpl_with_cocoplustoesankles_reg.pkl"
    path.write_bytes(dumps_with_fake_chumpy(content))
    assert "chumpy" not in sys.modules
    return path, expected, cocoplus


def test_convert_reproduces_the_arrays(smpl_like_pickle, tmp_path):
    pkl, expected, cocoplus = smpl_like_pickle
    pose, shape = np.linspace(-1, 1, 72), np.linspace(0, 1, 10)
    with h5py.File(tmp_path / "neutral_smpl_meanwjoints.h5", "w") as f:
        f["pose"], f["shape"] = pose, shape
    h36m = np.full((17, 6890), 1.0 / 6890, np.float32)
    np.save(tmp_path / "h36m.npy", h36m)

    out = convert_smpl_pickle(
        pkl,
        tmp_path / "model",
        mean_params_h5=tmp_path / "neutral_smpl_meanwjoints.h5",
        h36m_regressor=tmp_path / "h36m.npy",
    )
    arrays = model_files.load_smpl_arrays(out)
    for key, value in expected.items():
        assert arrays[key].dtype == value.dtype, key
        np.testing.assert_array_equal(arrays[key], value, err_msg=key)
    meta = model_files.read_meta(arrays)
    assert meta["source"] == f"converted from {pkl.name}" and meta["gender"] == "neutral"
    assert "bs_style" in meta["dropped_keys"]
    np.testing.assert_array_equal(model_files.load_regressor(out, "cocoplus"), cocoplus)
    np.testing.assert_array_equal(model_files.load_regressor(out, "h36m"), h36m)
    got_pose, got_shape = model_files.load_mean_params(out)
    np.testing.assert_array_equal(got_pose, pose)
    np.testing.assert_array_equal(got_shape, shape)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_converted_model_poses_like_the_original(smpl_like_pickle, synthetic_body_dir, tmp_path):
    out = convert_smpl_pickle(smpl_like_pickle[0], tmp_path)
    rotmat = torch.eye(3).expand(1, 24, 3, 3).clone()
    rotmat[0, 18] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        a = BodyModel.from_dir(out, extra_regressors=("cocoplus",))(rotmat, torch.ones(1, 10), True)
        b = BodyModel.from_dir(synthetic_body_dir)(rotmat, torch.ones(1, 10), True)
    torch.testing.assert_close(a.joints, b.joints)


def test_chumpy_ops_are_evaluated_or_rejected(tmp_path):
    a, b = np.arange(3.0), np.ones(3)
    path = tmp_path / "ops.pkl"
    path.write_bytes(
        dumps_with_fake_chumpy({"sum": _FakeAdd(_FakeCh(a), _FakeCh(b)), "sel": _FakeSelect(a)})
    )
    loaded = read_smpl_pickle(path)
    assert isinstance(loaded["sum"], ChumpyPlaceholder)
    np.testing.assert_array_equal(to_array(loaded["sum"], "sum"), a + b)
    with pytest.raises(ValueError, match=r"'sel' is a chumpy\.reordering\.Select object"):
        to_array(loaded["sel"], "sel")


def test_missing_pickle_explains_how_to_convert(tmp_path):
    missing = tmp_path / "SMPL_NEUTRAL.pkl"
    with pytest.raises(FileNotFoundError) as err:
        convert_smpl_pickle(missing, tmp_path / "out")
    assert str(missing) in str(err.value) and "body convert" in str(err.value)


def test_missing_key_is_named(tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((4, 3))}, protocol=2))
    assert set(read_smpl_pickle(path)) == {"v_template"}
    with pytest.raises(ValueError, match="posedirs"):
        convert_smpl_pickle(path, tmp_path / "out")


@pytest.mark.parametrize(
    ("name", "gender"),
    [
        ("basicModel_neutral_lbs_10_207_0_v1.0.0.pkl", "neutral"),
        ("basicModel_f_lbs_10_207_0_v1.0.0.pkl", "female"),
        ("basicmodel_m_lbs_10_207_0_v1.1.0.pkl", "male"),
        ("SMPL_FEMALE.pkl", "female"),
        ("SMPL_MALE.pkl", "male"),
        ("neutral_smpl_with_cocoplustoesankles_reg.pkl", "neutral"),
    ],
)
def test_gender_from_file_name(name, gender):
    assert infer_gender(name) == gender


def test_gender_argument_and_unknown_name():
    assert infer_gender("model.pkl", "male") == "male"
    with pytest.raises(ValueError, match="gender"):
        infer_gender("model.pkl")
