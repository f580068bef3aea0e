"""Checkpoints are read with weights_only=True everywhere, and a bad one is one clear line
naming the file, for every command that takes one."""

from __future__ import annotations

import pytest
import torch

from lightning_hmd.checkpoint import CheckpointError, checkpoint_config, load_checkpoint
from lightning_hmd.commands import main


class _Payload:
    """Unpickling this runs ``open(path, "w")``: the marker file appears if it ever runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_files(tmp_path):
    torch.save({"state_dict": {}, "x": _Payload(tmp_path / "ran")}, tmp_path / "hostile.ckpt")
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "hyper_parameters": {"config": {}}}, good)
    (tmp_path / "truncated.ckpt").write_bytes(good.read_bytes()[:300])
    (tmp_path / "empty.ckpt").write_bytes(b"")
    torch.save([1, 2], tmp_path / "list.ckpt")
    return ["hostile", "truncated", "empty", "list"]


def test_bad_checkpoints_are_named_and_no_payload_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # the default would be off
    for name in _bad_files(tmp_path):
        with pytest.raises(CheckpointError, match=f"{name}.ckpt: not a"):
            load_checkpoint(tmp_path / f"{name}.ckpt")
        with pytest.raises(CheckpointError, match=f"{name}.ckpt: not a"):
            load_checkpoint(tmp_path / f"{name}.ckpt", mmap=True)
    assert not (tmp_path / "ran").exists()
    with pytest.raises(CheckpointError, match="nope.ckpt: no such checkpoint"):
        load_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="no hyper_parameters.config"):
        torch.save({"state_dict": {}}, tmp_path / "bare.ckpt")
        checkpoint_config(tmp_path / "bare.ckpt")


def test_commands_print_one_line_for_a_bad_checkpoint(tmp_path, capsys, synthetic_body_dir):
    names = _bad_files(tmp_path)
    for name in names:
        path = tmp_path / f"{name}.ckpt"
        for args in (
            ["evaluate", "--ckpt", str(path), "--set", str(tmp_path)],
            ["data", "features", "--in", str(tmp_path), "--out", str(tmp_path / "o"),
             "--weights", str(path), "--encoder", "small_cnn", "--feat-dim", "8"],
        ):  # fmt: skip
            assert main(args) == 2, args
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("lightning-hmd: error: ") and name in err[0]
    assert not (tmp_path / "ran").exists()
