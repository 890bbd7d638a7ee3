"""``ray start`` for a node on 127.0.0.1 of this machine, for the two-node loopback test cluster.

Ray's ``ray start`` rewrites the node address 127.0.0.1 to the machine's network address, and then its servers
listen on every interface; for a worker node the environment switch that keeps 127.0.0.1 (see
``sim2real.ray_backend.cluster``) also refuses to start. This launcher runs Ray's own ``ray start`` with that
rewrite turned off, so both test nodes are on 127.0.0.1 and listen on loopback only.
Usage: ``python ray_start_loopback.py ARGS...`` (the arguments of ``ray start``).
"""
import sys

import ray._private.services as services
from ray.scripts.scripts import main

services.resolve_ip_for_localhost = lambda host: host

if __name__ == "__main__":
    sys.argv[0] = "ray"
    sys.exit(main())
