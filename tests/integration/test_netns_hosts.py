"""The tests' namespace hosts: names that resolve to their own addresses, traffic between
them over the bridge only, and nothing left behind."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from conftest import require
from fixtures.netns import HOSTS_FILE, host_command, namespace_hosts, netns_problem

LISTEN = """
import socket, sys
s = socket.create_server((socket.gethostbyname(socket.gethostname()), 7777))
print(socket.gethostname(), s.getsockname()[0], flush=True)
conn, peer = s.accept()
print(peer[0], flush=True)
"""
CONNECT = "import socket; socket.create_connection(('lhmd-t2', 7777), timeout=10).close()"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_hosts_meet_over_their_addresses_and_leave_nothing():
    problem = netns_problem()
    require(problem is None, f"no network namespaces: {problem}")
    hosts_before = HOSTS_FILE.read_text()
    with namespace_hosts(["lhmd-t1", "lhmd-t2"]) as net:
        a, b = net.hosts
        assert socket.gethostbyname("lhmd-t2") == b.address == "10.77.0.12"
        server = subprocess.Popen(host_command(b, [sys.executable, "-c", LISTEN]),
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert server.stdout.readline().split() == ["lhmd-t2", b.address]
        subprocess.run(host_command(a, [sys.executable, "-c", CONNECT]), check=True, timeout=30)
        assert server.stdout.readline().strip() == a.address  # came from lhmd-t1's stack
        server.wait(timeout=10)
        # inside, a host sees its own interfaces only: loopback and eth0 with its address
        own = subprocess.run(host_command(b, ["ip", "-o", "addr"]), capture_output=True, text=True)
        assert {line.split()[1] for line in own.stdout.splitlines()} == {"lo", "eth0"}
        assert b.address in own.stdout and a.address not in own.stdout
    assert HOSTS_FILE.read_text() == hosts_before
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "lhmd-t" not in left
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "lhmdbr0" not in links and "lhmd-v" not in links
