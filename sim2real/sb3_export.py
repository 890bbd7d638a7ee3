"""Export a stable-baselines3 model's deterministic actor to TorchScript or ONNX.

The graph computes what ``model.predict(obs, deterministic=True)`` returns, for a batch::

    (obs_<key>..., in the model's observation-space key order) -> action   (B, A) float32, in the action space

``obs_<key>`` is (B, *shape) float32 as the model sees it (images channel-first, values 0-255: SB3 transposes and
scales inside, and the graph scales too). PPO's action is the Gaussian's mean clipped to the action space; SAC's
and TD3's is the squashed actor output rescaled to it. ``sb3_policy.json`` beside the graph names the inputs, their
shapes, the output and the action bounds (no pickles anywhere).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

META_FILE = "sb3_policy.json"
FILES = {"torchscript": "policy.ts", "onnx": "policy.onnx"}


class DeterministicActor(nn.Module):
    """The deterministic action of an SB3 policy from positional observation tensors (trace- and ONNX-friendly)."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.policy = policy
        space = policy.observation_space
        self.keys = list(space.spaces) if isinstance(space, gym.spaces.Dict) else []
        low, high = policy.action_space.low, policy.action_space.high
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        obs: Any = dict(zip(self.keys, inputs)) if self.keys else inputs[0]
        action = self.policy._predict(obs, deterministic=True)
        if self.policy.squash_output:  # tanh output in [-1, 1] → the action space
            return self.low + 0.5 * (action + 1.0) * (self.high - self.low)
        return torch.maximum(torch.minimum(action, self.high), self.low)


def input_shapes(policy: Any) -> dict[str, list[int]]:
    """``obs_<key>`` → per-sample shape, in the order the graph takes them."""
    space = policy.observation_space
    spaces = space.spaces if isinstance(space, gym.spaces.Dict) else {"obs": space}
    return {f"obs_{key}": list(s.shape) for key, s in spaces.items()}


def export_sb3(model: Any, out_dir: str | Path, formats: tuple[str, ...]) -> Path:
    """Write the deterministic actor of ``model`` as the requested ``formats`` (``torchscript``, ``onnx``) and
    ``sb3_policy.json`` into ``out_dir``; returns the folder."""
    unknown = set(formats) - set(FILES)
    if unknown or not formats:
        raise ValueError(f"formats: allowed {', '.join(FILES)}; got {sorted(unknown) or 'none'}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = model.policy.to("cpu").eval()
    graph = DeterministicActor(policy).eval()
    shapes = input_shapes(policy)
    inputs = tuple(torch.zeros(1, *shape) for shape in shapes.values())
    names = list(shapes)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and legacy-exporter chatter
        if "torchscript" in formats:
            traced = torch.jit.trace(graph, inputs, check_trace=False)
            tmp = out_dir / f".{FILES['torchscript']}.tmp"
            torch.jit.save(traced, str(tmp))
            tmp.replace(out_dir / FILES["torchscript"])
        if "onnx" in formats:
            tmp = out_dir / f".{FILES['onnx']}.tmp"
            torch.onnx.export(graph, inputs, str(tmp), input_names=names, output_names=["action"],
                              dynamic_axes={name: {0: "batch"} for name in names + ["action"]}, opset_version=17,
                              dynamo=False)
            tmp.replace(out_dir / FILES["onnx"])
    meta = {"kind": "stable-baselines3 deterministic actor", "algo": type(model).__name__.lower(),
            "inputs": shapes, "output": "action", "action_low": np.asarray(policy.action_space.low).tolist(),
            "action_high": np.asarray(policy.action_space.high).tolist(),
            "files": {f: FILES[f] for f in formats}}
    tmp = out_dir / f".{META_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out_dir / META_FILE)
    return out_dir
