"""A two-node Ray cluster on this machine's loopback address (two "machines" on 127.0.0.1), started with Ray's
``ray start`` (through ``ray_start_loopback.py``, which keeps the address 127.0.0.1), one CPU per node; every process
it started is killed afterwards. Nothing it starts listens beyond loopback (``test_nothing_listens_beyond_loopback``)."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim2real.ray_backend.cluster import LOCAL_ADDRESS_SWITCH, LOOPBACK_IP

START_LIMIT_S = 240.0
LAUNCHER = Path(__file__).with_name("ray_start_loopback.py")
os.environ.setdefault(LOCAL_ADDRESS_SWITCH, "0")  # this process (the driver) joins a cluster on 127.0.0.1


@dataclass
class LoopbackCluster:
    address: str  # head host:port
    nodes: tuple[str, str]  # node names (address/node id), head first
    processes: tuple[subprocess.Popen, ...]  # the two `ray start --block` processes (session leaders)

    def pids(self) -> set[int]:
        """Every live process the two nodes started (their servers and workers)."""
        return {pid for process in self.processes for pid in _session_members(process.pid)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK_IP, 0))
        return sock.getsockname()[1]


def _session_members(session: int) -> list[int]:
    """Processes of a session (ray start's node processes, raylet workers included), from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:
                members.append(int(entry.name))
    return members


def _ray_start(args: list[str], log: Path, auth: dict[str, str]) -> subprocess.Popen:
    common = ["--block", f"--node-ip-address={LOOPBACK_IP}", "--num-cpus=1",
              f"--object-store-memory={100 * 1024 * 1024}", "--disable-usage-stats"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    env.pop(LOCAL_ADDRESS_SWITCH, None)  # `ray start --address` refuses to run with it; the launcher keeps 127.0.0.1
    return subprocess.Popen([sys.executable, str(LAUNCHER), "start", *args, *common], start_new_session=True,
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)



def _reload_auth() -> None:
    """Make this process's Ray read the authentication settings of the environment again (it caches them)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _stop(process: subprocess.Popen) -> None:
    for pid in _session_members(process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def loopback_cluster(tmp_path_factory) -> LoopbackCluster:
    """Head node and a second node joined with ``ray start --address``, both on 127.0.0.1; this process is
    connected to it as the driver. The cluster takes only this fixture's token (Ray's token authentication)."""
    import ray

    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {key: os.environ.get(key) for key in auth}
    os.environ.update(auth)  # the driver (this process) presents the same token
    _reload_auth()
    logs = tmp_path_factory.mktemp("ray_logs")
    port = _free_port()
    address = f"{LOOPBACK_IP}:{port}"
    started: list[subprocess.Popen] = []
    try:
        started.append(_ray_start(["--head", f"--port={port}", "--include-dashboard=false"], logs / "head.log", auth))
        started.append(_ray_start([f"--address={address}"], logs / "worker.log", auth))
        deadline = time.monotonic() + START_LIMIT_S
        while not ray.is_initialized():
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        while len(alive := [n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, (logs / "worker.log").read_text()[-2000:]
            time.sleep(0.3)
        alive.sort(key=lambda n: not n["Resources"].get("node:__internal_head__"))
        names = tuple(f"{n['NodeManagerAddress']}/{n['NodeID'][:8]}" for n in alive)
        yield LoopbackCluster(address, names, tuple(started))
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for process in started:
            _stop(process)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_auth()
