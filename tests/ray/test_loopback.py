"""Nothing a Ray node of ours starts listens beyond loopback: the two-node test cluster and the private instance that
`sim2real train/eval/sweep` start without `ray.address`. Listening sockets are read from /proc (Linux)."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from /proc")

LISTENING = {"tcp": "0A", "tcp6": "0A", "udp": "07", "udp6": "07"}  # TCP LISTEN; UDP unconnected (bound)


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A /proc/net local address (host byte order per 32-bit word) as an IP address."""
    words = [bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8)]
    address = ipaddress.ip_address(b"".join(words))
    return address.ipv4_mapped or address if isinstance(address, ipaddress.IPv6Address) else address


def listening_addresses(pids: set[int]) -> list[str]:
    """``address:port`` of every listening TCP socket and bound UDP socket the processes ``pids`` hold."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:  # the process ended, or is not ours
            continue
    found = []
    for table, state in LISTENING.items():
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and fields[9] in inodes:
                host, port = fields[1].split(":")
                found.append(f"{_address(host)}:{int(port, 16)}")
    return found


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (from /proc's parent links)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    family, grown = {root}, True
    while grown:
        below = {pid for pid, parent in parents.items() if parent in family} - family
        family |= below
        grown = bool(below)
    return family


def _non_loopback(addresses: list[str]) -> list[str]:
    return [a for a in addresses if not ipaddress.ip_address(a.rsplit(":", 1)[0]).is_loopback]


def test_address_decoding_reads_both_families():
    assert str(_address("0100007F")) == "127.0.0.1" and str(_address("00000000")) == "0.0.0.0"
    assert str(_address("0000000000000000FFFF00000100007F")) == "127.0.0.1"  # ::ffff:127.0.0.1
    assert str(_address("00000000000000000000000001000000")) == "::1"
    assert _non_loopback(["127.0.0.1:6379", "0.0.0.0:6379", "::1:80", "192.0.2.2:1"]) == ["0.0.0.0:6379",
                                                                                           "192.0.2.2:1"]


def test_the_two_node_cluster_listens_on_loopback_only(loopback_cluster):
    addresses = listening_addresses(loopback_cluster.pids())
    port = loopback_cluster.address.rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}" in addresses  # the head's GCS: the scan sees the cluster's servers
    assert len(addresses) >= 4 and not _non_loopback(addresses), addresses


PRIVATE_INSTANCE = """
import sys
from sim2real.ray_backend.cluster import connect, node_name
connection = connect(None)  # imports ray
import ray
print(ray.get(ray.remote(node_name).remote()), flush=True)
sys.stdin.readline()
connection.release()
"""


def test_a_private_instance_listens_on_loopback_only():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # as from a user's shell
    child = subprocess.Popen([sys.executable, "-c", PRIVATE_INSTANCE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        node = child.stdout.readline().strip()
        assert node.startswith("127.0.0.1/"), (node, child.stderr.read() if child.poll() is not None else "")
        addresses = listening_addresses(descendants(child.pid))
        assert len(addresses) >= 3 and not _non_loopback(addresses), addresses
    finally:
        child.communicate("\n", timeout=120)
