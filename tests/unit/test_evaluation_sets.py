"""``evaluate`` names an evaluation set it cannot score (missing, or empty, as a conversion's
split that ended without tracks) before it loads the model: one line, exit 2."""

from __future__ import annotations

import pytest
import torch
from fixtures.clips import write_clip_set
from fixtures.datasets import write_penn_action

import lightning_hmd.train.module as module_of_models
from lightning_hmd.commands import main
from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.evaluation.run import check_sets


@pytest.fixture
def ckpt(tmp_path, monkeypatch):
    """A checkpoint's config; building or loading a model fails the test."""

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(module_of_models, "HMMRModule", no_model)
    monkeypatch.setattr(module_of_models, "load_weights", no_model)
    cfg = load_config("tiny", overrides=["model.init_checkpoint=none"])
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": to_container(cfg)}}, path)
    return path


def _fails(capsys, *args: object) -> str:
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lightning-hmd: error: "), err
    return err


def test_an_empty_set_among_others_is_named(tmp_path, ckpt, capsys):
    good, empty = tmp_path / "good", tmp_path / "empty"
    write_clip_set(good, [2], [10], split="test")
    with ShardSetWriter(empty, "test", 4, source="a conversion without tracks"):
        pass
    err = _fails(capsys, "evaluate", "--ckpt", ckpt, "--set", good, "--set", empty,
                 "--out", tmp_path / "ev")  # fmt: skip
    assert f"{empty}: the evaluation set is empty (its manifest lists 0 samples)" in err
    assert not (tmp_path / "ev").exists()
    check_sets([good])  # a set with samples passes


def test_a_penn_action_split_that_ended_empty_is_named(tmp_path, ckpt, capsys):
    # one official test video: it is validation, the test split has no video
    write_penn_action(tmp_path / "Penn_Action", {"0001": (60, 1), "0002": (60, -1)})
    out = tmp_path / "penn"
    args = ["data", "convert", "penn-action", tmp_path / "Penn_Action", "--out", out]
    assert main([str(a) for a in [*args, "--no-progress"]]) == 0
    capsys.readouterr()
    err = _fails(capsys, "evaluate", "--ckpt", ckpt, "--set", out / "val", "--set", out / "test")
    assert f"{out / 'test'}: no such evaluation set (not a folder)" in err
    with pytest.raises(ValueError, match="no evaluation set"):
        check_sets([])
