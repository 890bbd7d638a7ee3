"""Join a Ray cluster, or start a small private one on this machine, with the toolkit's defaults.

Defaults: no dashboard, no usage statistics, a 200 MB object store and, for the private instance, a node on
``127.0.0.1`` whose servers listen on loopback only, and workers at the driver's priority (Ray renices its workers
by +15 by default, which on a busy machine starves the env actors a synchronous learner waits for).

Ray's gRPC servers (GCS, raylet, workers) listen on every interface unless the node address is literally
``127.0.0.1``, and Ray's Python side rewrites that literal to the machine's network address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` was in the environment when ``ray`` was imported (it then takes 127.0.0.1 as
this machine's address). So the private instance, and a driver joining a cluster at ``127.0.0.1``/``localhost``, set
that variable before the first ``import ray``.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from sim2real.errors import UserError

LOOPBACK_IP = "127.0.0.1"
"""Node address of a private Ray instance: the one address for which Ray's servers listen on loopback only."""
LOCAL_ADDRESS_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's environment switch (read at import): ``0`` keeps 127.0.0.1 as this machine's node address."""
OBJECT_STORE_BYTES = 200 * 1024 * 1024
"""Object store of a private Ray instance (bytes); observations and results are small."""


def import_ray(loopback: bool = False) -> Any:
    """The ``ray`` module, or a :class:`UserError` naming the extra that installs it. ``loopback``: this process
    will start or join a node on 127.0.0.1 (see the module docstring); it has effect only before Ray's first import."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if loopback and "ray" not in sys.modules:
        os.environ.setdefault(LOCAL_ADDRESS_SWITCH, "0")
    try:
        import ray
    except ImportError:
        raise UserError("backend ray: Ray is not installed (pip install 'sim2real[ray]')") from None
    return ray


@dataclass
class RayConnection:
    """A Ray driver connection; ``owned`` when this process started it (then :meth:`release` shuts it down)."""

    address: str | None
    owned: bool

    def release(self) -> None:
        if self.owned:
            import ray

            ray.shutdown()
            self.owned = False


def connect(address: str | None, num_cpus: float = 1.0) -> RayConnection:
    """Use the Ray instance this process is already connected to, else join ``address`` (``host:port`` of a head
    node, or ``auto``: the one started on this machine with ``ray start``), else start a private instance with
    ``num_cpus`` logical CPUs. A cluster that cannot be reached is a :class:`UserError`."""
    ray = import_ray(loopback=_is_loopback(address))
    if ray.is_initialized():
        return RayConnection(address, owned=False)
    if address and address != "auto":
        _probe(address)
    options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(address="local", num_cpus=max(1, int(round(num_cpus))), object_store_memory=OBJECT_STORE_BYTES,
                     _node_ip_address=LOOPBACK_IP, _system_config={"worker_niceness": 0}, **options)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = address or "a private instance"
        raise UserError(f"ray.address: could not connect to {where}: {str(err).splitlines()[0]}") from None
    if address is None and ray.util.get_node_ip_address() != LOOPBACK_IP:
        print(f"ray: warning: Ray was imported before sim2real's Ray backend, so this private instance took node "
              f"address {ray.util.get_node_ip_address()} and its servers listen on every interface (set "
              f"{LOCAL_ADDRESS_SWITCH}=0 before importing ray to keep them on loopback)", file=sys.stderr, flush=True)
    return RayConnection(address, owned=True)


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """A :class:`UserError` unless something accepts TCP connections at ``address`` (``host:port``) within
    ``timeout_s``: Ray itself retries an unreachable head for minutes before it gives up."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"ray.address: {address!r} is not HOST:PORT (or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise UserError(f"ray.address: no Ray head answers at {address} ({err.strerror or err})") from None


def _is_loopback(address: str | None) -> bool:
    """Whether ``address`` (None: a private instance) is a node on 127.0.0.1 of this machine."""
    if address is None:
        return True
    return address.rsplit(":", 1)[0].strip("[]") in ("127.0.0.1", "localhost")


def node_name() -> str:
    """Name of the node this Ray process runs on: its address and the first 8 hex digits of its node id (several
    nodes can share an address on one machine)."""
    import ray

    return f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:8]}"


def cluster_cpus() -> float:
    """Logical CPUs of the connected cluster (alive nodes)."""
    import ray

    return float(ray.cluster_resources().get("CPU", 0.0))
