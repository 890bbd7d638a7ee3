"""Join a Ray cluster, or start a small private one on this machine, with the toolkit's defaults.

Defaults: no dashboard, no usage statistics, a 200 MB object store and, for the private instance, a node address
on the loopback network. Ray rewrites the literal ``127.0.0.1``/``localhost`` to the machine's network address
(so that other machines can reach the node), hence the private node and the tests' nodes use ``127.0.0.2``,
``127.0.0.3``: loopback addresses Ray leaves as they are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sim2real.errors import UserError

PRIVATE_NODE_IP = "127.0.0.2"
"""Loopback address of a private Ray node (Ray keeps it; it would replace 127.0.0.1)."""
OBJECT_STORE_BYTES = 200 * 1024 * 1024
"""Object store of a private Ray instance (bytes); observations and results are small."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`UserError` naming the extra that installs it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
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
    ray = import_ray()
    if ray.is_initialized():
        return RayConnection(address, owned=False)
    options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(address="local", num_cpus=max(1, int(round(num_cpus))), object_store_memory=OBJECT_STORE_BYTES,
                     _node_ip_address=PRIVATE_NODE_IP, **options)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = address or "a private instance"
        raise UserError(f"ray.address: could not connect to {where}: {str(err).splitlines()[0]}") from None
    return RayConnection(address, owned=True)


def cluster_cpus() -> float:
    """Logical CPUs of the connected cluster (alive nodes)."""
    import ray

    return float(ray.cluster_resources().get("CPU", 0.0))
