"""``predict`` and ``hallucinate`` reject bad paths at once: one line naming the path, exit 2,
before the model is loaded and before the heavy modules are imported."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

import lightning_hmd.inference.predict as predict_module
from lightning_hmd.commands import main
from lightning_hmd.inference.inputs import InputError, check_out_dir

HEAVY = ("torch", "cv2", "av", "scipy", "lightning", "lightning_hmd.inference.predict")


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test."""

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(predict_module, "load_predictor", load)
    monkeypatch.setattr("lightning_hmd.inference.run.load_predictor", load, raising=False)


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000000.png"), np.zeros((24, 32, 3), np.uint8))
    return folder


def _fails(capsys, *args: object) -> str:
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lightning-hmd: error: "), err
    return err


def _cli(*args: object) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter that reports the heavy modules it imported."""
    code = (
        "import sys\nfrom lightning_hmd.commands import main\n"
        f"rc = main({[str(a) for a in args]!r})\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\nsys.exit(rc)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_missing_input_is_named_before_anything_heavy_is_imported(tmp_path):
    video, ckpt = tmp_path / "missing.mp4", tmp_path / "missing.ckpt"
    got = _cli("predict", video, "--ckpt", ckpt, "--out", tmp_path / "out")
    assert got.returncode == 2
    assert got.stderr == f"lightning-hmd: error: {video}: no such video file or frame folder\n"
    assert got.stdout == "[]\n"  # no torch, OpenCV, PyAV, model code
    image = tmp_path / "missing.png"
    got = _cli("hallucinate", image, "--ckpt", ckpt, "--out", tmp_path / "out")
    assert got.returncode == 2
    assert got.stderr == f"lightning-hmd: error: {image}: no such image\n"  # no OpenCV warning
    assert got.stdout == "[]\n"
    assert not (tmp_path / "out").exists()


def test_predict_checks_every_path_before_the_model(tmp_path, frames, no_model, capsys):
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"weights")
    missing = tmp_path / "missing.ckpt"
    # the input is named first, whatever else is wrong
    err = _fails(capsys, "predict", tmp_path / "nope", "--ckpt", missing)
    assert f"{tmp_path / 'nope'}: no such video file or frame folder" in err
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert f"{empty}: the video file is empty (0 bytes)" in _fails(
        capsys, "predict", empty, "--ckpt", ckpt
    )
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    err = _fails(capsys, "predict", tmp_path / "texts", "--ckpt", ckpt)
    assert "texts: no images (.png, .jpg, .jpeg, .bmp) in the folder" in err
    err = _fails(capsys, "predict", frames, "--ckpt", ckpt, "--tracks", tmp_path / "t.json")
    assert f"{tmp_path / 't.json'}: no such tracks file or folder" in err
    err = _fails(capsys, "predict", frames, "--ckpt", missing)
    assert f"--ckpt {missing}: no such checkpoint" in err
    err = _fails(capsys, "predict", frames, "--ckpt", ckpt, "--encoder", tmp_path / "enc.pt")
    assert f"--encoder {tmp_path / 'enc.pt'}: no such file" in err
    taken = tmp_path / "taken"
    taken.write_text("a file where the output folder would be")
    err = _fails(capsys, "predict", frames, "--ckpt", ckpt, "--out", taken)
    assert f"--out {taken}: not a folder" in err
    err = _fails(capsys, "predict", frames, "--ckpt", ckpt, "--out", taken / "sub")
    assert f"--out {taken / 'sub'}: not a folder ({taken} is not a folder)" in err


def test_hallucinate_checks_its_paths_before_the_model(tmp_path, frames, no_model, capsys):
    image, ckpt = frames / "000000.png", tmp_path / "m.ckpt"
    ckpt.write_bytes(b"weights")
    err = _fails(capsys, "hallucinate", frames, "--ckpt", ckpt)
    assert f"{frames}: not an image file" in err
    err = _fails(capsys, "hallucinate", image, "--ckpt", tmp_path / "missing.ckpt")
    assert f"--ckpt {tmp_path / 'missing.ckpt'}: no such checkpoint" in err
    taken = tmp_path / "taken"
    taken.touch()
    err = _fails(capsys, "hallucinate", image, "--ckpt", ckpt, "--out", taken)
    assert f"--out {taken}: not a folder" in err


def test_an_output_folder_that_can_be_made_passes(tmp_path):
    assert check_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # checked, not made
    assert check_out_dir(tmp_path) == tmp_path
    with pytest.raises(InputError, match="not a folder"):
        (tmp_path / "f").touch()
        check_out_dir(tmp_path / "f")
