"""The per-rank topology line: host, address, and the rendezvous every rank joined."""

from __future__ import annotations

import socket

from lightning_hmd.train.topology import resolve, topology_line


def test_single_process_names_its_host_only(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "localhost")
    line = topology_line(0, 1, 0, 0, {"MASTER_ADDR": "elsewhere", "MASTER_PORT": "1"})
    assert line == "rank 0/1 on localhost (node 0, local rank 0, 127.0.0.1)"


def test_a_rank_of_a_job_names_the_rendezvous(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "localhost")
    env = {"MASTER_ADDR": "localhost", "MASTER_PORT": "15012"}
    line = topology_line(3, 4, 1, 1, env)
    # no process group in this process: the backend is not known
    assert line == (
        "rank 3/4 on localhost (node 1, local rank 1, 127.0.0.1): "
        "rendezvous localhost:15012 (127.0.0.1), ?"
    )


def test_an_unresolvable_name_shows_a_question_mark():
    assert resolve("no-such-host.invalid") == "?"
