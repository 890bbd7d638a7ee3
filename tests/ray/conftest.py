"""A two-node Ray cluster on this machine's loopback network (two "machines": nodes 127.0.0.2 and 127.0.0.3),
started with ``ray start`` as a user would, one CPU per node; every process it started is killed afterwards."""
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

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
START_LIMIT_S = 240.0


@dataclass
class LoopbackCluster:
    address: str  # head host:port
    nodes: tuple[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HEAD_IP, 0))
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
    ray = str(Path(sys.executable).with_name("ray"))
    common = ["--block", "--num-cpus=1", f"--object-store-memory={100 * 1024 * 1024}", "--disable-usage-stats"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    return subprocess.Popen([ray, "start", *args, *common], start_new_session=True, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


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
    """Head node on 127.0.0.2, a second node on 127.0.0.3 joined with ``ray start --address``; this process is
    connected to it as the driver. The cluster takes only this fixture's token (Ray's token authentication)."""
    import ray

    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {key: os.environ.get(key) for key in auth}
    os.environ.update(auth)  # the driver (this process) presents the same token
    _reload_auth()
    logs = tmp_path_factory.mktemp("ray_logs")
    port = _free_port()
    address = f"{HEAD_IP}:{port}"
    started: list[subprocess.Popen] = []
    try:
        started.append(_ray_start(["--head", f"--node-ip-address={HEAD_IP}", f"--port={port}",
                                   "--include-dashboard=false"], logs / "head.log", auth))
        started.append(_ray_start([f"--address={address}", f"--node-ip-address={WORKER_IP}"], logs / "worker.log",
                                  auth))
        deadline = time.monotonic() + START_LIMIT_S
        while not ray.is_initialized():
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, (logs / "worker.log").read_text()[-2000:]
            time.sleep(0.3)
        yield LoopbackCluster(address, (HEAD_IP, WORKER_IP))
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
