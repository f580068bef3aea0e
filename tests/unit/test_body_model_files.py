"""Model-directory layout: errors name the file, key and shapes; writers are deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_hmd.body import model_files
from lightning_hmd.body.joints import SMPL_PARENTS


def tiny_arrays(V: int = 8) -> dict[str, np.ndarray]:
    """Structurally valid SMPL arrays for a V-vertex mesh (values meaningless)."""
    rng = np.random.default_rng(0)
    return {
        "v_template": rng.normal(size=(V, 3)),
        "shapedirs": rng.normal(size=(V, 3, 10)),
        "posedirs": rng.normal(size=(V, 3, 207)),
        "J_regressor": np.full((24, V), 1.0 / V),
        "weights": np.full((V, 24), 1.0 / 24),
        "kintree_table": np.stack([np.array(SMPL_PARENTS), np.arange(24)]),
        "f": np.array([[0, 1, 2], [2, 3, 0]], np.int32),
    }


def write_tiny(tmp_path, **changes) -> dict:
    arrays = {**tiny_arrays(), **changes}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    model_files.save_npz(tmp_path / "SMPL_NEUTRAL.npz", arrays)
    return arrays


def test_missing_directory_explains_how_to_get_the_model(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        model_files.load_smpl_arrays(missing)
    msg = str(err.value)
    assert str(missing / "SMPL_NEUTRAL.npz") in msg
    assert "smpl.is.tue.mpg.de" in msg
    assert "lightning-hmd body convert" in msg and "lightning-hmd body synth" in msg


def test_missing_gender_file_names_it(tmp_path):
    write_tiny(tmp_path)
    with pytest.raises(FileNotFoundError, match="SMPL_FEMALE.npz"):
        model_files.load_smpl_arrays(tmp_path, gender="female")
    with pytest.raises(ValueError, match="gender"):
        model_files.smpl_filename("other")


def test_valid_tiny_model_loads(tmp_path):
    written = write_tiny(tmp_path, meta=model_files.meta_array(source="test"))
    loaded = model_files.load_smpl_arrays(tmp_path)
    assert set(loaded) == set(written)
    np.testing.assert_array_equal(loaded["posedirs"], written["posedirs"])
    assert model_files.read_meta(loaded) == {"source": "test"}


def test_missing_key_is_named_with_its_shape(tmp_path):
    write_tiny(tmp_path, posedirs=None)
    with pytest.raises(ValueError, match=r"'posedirs' \(V, 3, 207\)") as err:
        model_files.load_smpl_arrays(tmp_path)
    assert "SMPL_NEUTRAL.npz" in str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("posedirs", np.zeros((8, 3, 200)),
         r"'posedirs' has shape \(8, 3, 200\), expected \(V=8, 3, 207\)"),
        ("shapedirs", np.zeros((8, 3, 4)), r"'shapedirs' has shape \(8, 3, 4\)"),
        ("J_regressor", np.zeros((24, 9)),
         r"'J_regressor' has shape \(24, 9\), expected \(24, V=8\)"),
        ("weights", np.zeros((8, 23)), r"'weights' has shape \(8, 23\)"),
        ("v_template", np.zeros((8, 2)), r"'v_template' has shape \(8, 2\), expected \(V, 3\)"),
        ("kintree_table", np.zeros((2, 24), np.int64), "kintree_table"),
        ("f", np.array([[0, 1, 8]]), "'f' has vertex indices outside"),
    ],
)  # fmt: skip
def test_invalid_arrays_are_rejected(tmp_path, key, value, expected):
    write_tiny(tmp_path, **{key: value})
    with pytest.raises(ValueError, match=expected):
        model_files.load_smpl_arrays(tmp_path)


def test_regressor_loading(tmp_path):
    assert model_files.load_regressor(tmp_path, "cocoplus", required=False) is None
    with pytest.raises(FileNotFoundError, match="J_regressor_h36m.npy"):
        model_files.load_regressor(tmp_path, "h36m", required=True)
    model_files.save_npy(tmp_path / model_files.COCOPLUS_REGRESSOR_FILENAME, np.zeros((25, 8)))
    assert model_files.load_regressor(tmp_path, "cocoplus", num_vertices=8).shape == (25, 8)
    with pytest.raises(ValueError, match=r"cocoplus.*\(25, 8\).*expected \(25, V=9\)"):
        model_files.load_regressor(tmp_path, "cocoplus", num_vertices=9)
    model_files.save_npy(tmp_path / model_files.H36M_REGRESSOR_FILENAME, np.zeros((16, 8)))
    with pytest.raises(ValueError, match="h36m"):
        model_files.load_regressor(tmp_path, "h36m")


def test_mean_params(tmp_path):
    with pytest.raises(FileNotFoundError, match="mean_params.npz"):
        model_files.load_mean_params(tmp_path)
    path = tmp_path / model_files.MEAN_PARAMS_FILENAME
    model_files.save_npz(path, {"pose": np.arange(72.0), "shape": np.ones(10)})
    pose, shape = model_files.load_mean_params(tmp_path)
    np.testing.assert_array_equal(pose, np.arange(72.0))
    model_files.save_npz(path, {"pose": np.zeros(69), "shape": np.ones(10)})
    with pytest.raises(ValueError, match=r"'pose' has shape \(69,\), expected \(72,\)"):
        model_files.load_mean_params(tmp_path)


def test_save_npz_is_deterministic_atomic_and_numpy_readable(tmp_path):
    arrays = {"a": np.arange(5.0), "b": np.array("text")}
    first = model_files.save_npz(tmp_path / "x.npz", arrays).read_bytes()
    second = model_files.save_npz(tmp_path / "x.npz", arrays).read_bytes()
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]  # no temporary files left
    with np.load(tmp_path / "x.npz") as data:
        np.testing.assert_array_equal(data["a"], arrays["a"])
        assert str(data["b"]) == "text"
