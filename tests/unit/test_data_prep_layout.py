"""Every converter pointed at the wrong folder fails at once, naming the layout it expected."""

from __future__ import annotations

import pytest

from data_prep.common import LayoutError
from lightning_hmd.commands import main
from lightning_hmd.commands.data import converter_names, load_converter

EXPECTED = {
    "hmmr-tfrecord": "tfrecord",
    "penn-action": "labels/<video>.mat",
    "3dpw": "sequenceFiles",
    "h36m": "D3_Positions_mono",
    "mocap": "neutrSMPL_CMU",
}


def test_every_converter_module_is_registered_by_its_name():
    assert converter_names() == sorted(EXPECTED)
    assert all(name == load_converter(name).NAME for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wrong_folder_names_the_expected_layout(name, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"")
    with pytest.raises(LayoutError, match=EXPECTED[name]):
        load_converter(name).convert(tmp_path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_reports_layout_and_unknown_options(tmp_path, capsys):
    assert main(["data", "convert", "3dpw", str(tmp_path), "--out", str(tmp_path / "o")]) != 0
    assert "sequenceFiles" in capsys.readouterr().err
    args = ["data", "convert", "mocap", str(tmp_path), "--out", str(tmp_path / "o"),
            "--chunk-len", "10"]  # fmt: skip
    assert main(args) != 0
    assert "has no option chunk_len" in capsys.readouterr().err
