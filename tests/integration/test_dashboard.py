"""The dashboard in a real browser: a tiny sweep's runs through ``lightning-hmd dashboard``
(TensorBoard on 127.0.0.1), one row per trial with its metric through TensorBoard's HParams
HTTP API, and the HParams view rendered by headless Chromium, its screenshot saved."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import require
from PIL import Image
from test_sweep_agents import GRID

from lightning_hmd.experiments.sweep_agent import run_agent
from lightning_hmd.experiments.sweeps import load_sweep
from lightning_hmd.train.run_dir import read_summary

METRIC = "val/pa_mpjpe"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_hparams_view_shows_one_row_per_trial(synth_dir, tmp_path):
    browser = chromium()
    require(browser is not None, "chromium not installed (Debian: chromium); see Makefile")
    path = tmp_path / "dash.yaml"
    path.write_text(GRID.replace("agents_grid", "dash"))  # 2 x 2 trials
    over = [
        f"body.model_dir={synth_dir / 'body_model'}",
        f"data.train_sets=[{synth_dir / 'train'}]",
        f"data.val_sets=[{synth_dir / 'val'}]",
        f"data.mocap_sets=[{synth_dir / 'mocap'}]",
        "data.num_workers=0",
        f"run.root={tmp_path / 'runs'}",
        "trainer.max_batches=2",
        "trainer.val_every_batches=2",
        "trainer.ckpt_every_batches=2",
        "trainer.image_every_batches=0",
        "trainer.progress_bar=false",
        "logger.kind=csv",  # the HParams record is written whatever the logger
    ]
    ran = run_agent(load_sweep(path), overrides=over, echo=lambda _: None)
    assert [t.state for t in ran] == ["complete"] * 4

    port = _free_port()
    cmd = [sys.executable, "-m", "lightning_hmd", "dashboard", str(tmp_path / "runs"),
           "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        deadline = time.time() + 120
        while not line.startswith("dashboard at "):
            assert time.time() < deadline and server.poll() is None, "the dashboard did not start"
            line = server.stdout.readline()
        address = line.split()[2]
        assert address == f"http://127.0.0.1:{port}/#hparams"
        base = f"http://127.0.0.1:{port}/data/plugin/hparams"

        # the dashboard's own API: one session group per trial, with its swept values and metric
        experiment = _post(f"{base}/experiment", {"experimentName": ""})
        hparams = {h["name"] for h in experiment["hparamInfos"]}
        assert hparams == {"model.temporal.num_blocks", "model.delta_t", "seed", "protocol"}
        assert METRIC in {m["name"]["tag"] for m in experiment["metricInfos"]}
        columns = [{"hparam": h, "includeInResult": True} for h in sorted(hparams)]
        columns.append({"metric": {"tag": METRIC, "group": ""}, "includeInResult": True})
        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        groups = _post(f"{base}/session_groups", {
            "experimentName": "", "allowedStatuses": statuses, "colParams": columns,
            "startIndex": 0, "sliceSize": 100,
        })["sessionGroups"]  # fmt: skip
        rows = {}
        for g in groups:
            (value,) = [m["value"] for m in g["metricValues"] if m["name"]["tag"] == METRIC]
            rows[g["name"].split("/")[-2]] = (g["hparams"], value)  # <root>/<run>/hparams
        assert sorted(rows) == [f"dash-t{n:03d}" for n in range(4)]
        for trial in ran:
            values, metric = rows[trial.run_dir.name]
            assert metric == pytest.approx(read_summary(trial.run_dir)["metrics"][METRIC], rel=1e-6)
            record = json.loads((trial.run_dir / "sweep.json").read_text())["params"]
            assert values["model.temporal.num_blocks"] == record["model.temporal.num_blocks"]
            assert values["model.delta_t"] == str(record["model.delta_t"])
            assert values["protocol"] == "hmmr"

        # a real browser renders the HParams view (its table lives in shadow DOM, which a DOM
        # dump leaves out: the rows are asserted through the API above, the picture is kept)
        shot = tmp_path / "hparams.png"
        flags = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1500,900",
                 "--virtual-time-budget=20000"]  # fmt: skip
        subprocess.run([*flags, f"--screenshot={shot}", address], capture_output=True,
                       timeout=180, check=True)  # fmt: skip
        with Image.open(shot) as picture:
            assert picture.format == "PNG" and picture.size == (1500, 900)
            assert len(picture.convert("RGB").getcolors(1 << 20)) > 50  # not a blank page
        keep = os.environ.get("LIGHTNING_HMD_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / "dashboard_hparams.png")
        print(f"screenshot: {shot}; rows: {rows}")
    finally:
        server.terminate()
        server.wait(timeout=30)
