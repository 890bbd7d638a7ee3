"""PolicyRunner latency per control step for a 128-unit GRU RL² policy (batch 1, one thread).

Usage: nice -n 10 python benchmarks/rl2_latency.py [--steps 20000] [--hidden 128] [--obs-dim 32] [--act-dim 7]
Prints p50/p90/p99/max in ms for the torch (in-memory), TorchScript and ONNX backends, as JSON: ``wall_*`` is
the latency of ``act`` (includes time the OS gave to other processes), ``cpu_*`` the calling thread's CPU
time (what the policy itself costs; insensitive to other load on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from gymnasium import spaces

from policies.actor_critic import RecurrentActorCritic
from policies.config import NetworkConfig
from policies.export import export_policy
from policies.runner import PolicyRunner
from policies.spaces import make_spec


def measure(runner: PolicyRunner, obs_space: spaces.Space, steps: int) -> dict[str, float]:
    obs_space.seed(0)
    obs = [obs_space.sample() for _ in range(256)]
    for i in range(500):  # warm-up
        runner.act(obs[i % 256])
    lat = np.empty(steps)
    cpu = np.empty(steps)
    for i in range(steps):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter()
        runner.act(obs[i % 256])
        lat[i] = time.perf_counter() - t0
        cpu[i] = (time.thread_time_ns() - c0) * 1e-9
        runner.observe(0.5, episode_done=i % 10 == 9)
        if i % 100 == 99:
            runner.reset_trial()
    out = {}
    for prefix, x in (("wall", lat * 1e3), ("cpu", cpu * 1e3)):
        for p in (50, 90, 99):
            out[f"{prefix}_p{p}_ms"] = round(float(np.percentile(x, p)), 4)
        out[f"{prefix}_max_ms"] = round(float(x.max()), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--obs-dim", type=int, default=32)
    parser.add_argument("--act-dim", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    obs_space = spaces.Box(-1.0, 1.0, (args.obs_dim,), np.float32)
    cfg = NetworkConfig(hidden_size=args.hidden, embed_size=64, encoder_sizes=(64,))
    model = RecurrentActorCritic(make_spec(obs_space, spaces.Box(-1.0, 1.0, (args.act_dim,))), cfg).eval()
    results = {"policy": f"GRU {args.hidden}, separate actor/critic GRUs, obs {args.obs_dim}, Box({args.act_dim})",
               "steps": args.steps, "torch_threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        export_policy(model, tmp)
        results["torch"] = measure(PolicyRunner.from_model(model), obs_space, args.steps)
        results["torchscript"] = measure(PolicyRunner.load(tmp, backend="torchscript"), obs_space, args.steps)
        results["onnx"] = measure(PolicyRunner.load(tmp, backend="onnx"), obs_space, args.steps)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
