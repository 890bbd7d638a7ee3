"""Export an RL² policy to TorchScript and ONNX with explicit hidden-state inputs and outputs.

Both graphs compute one step::

    (obs_<key>..., prev_action, prev_reward, prev_done, hidden) -> (dist_params, value, hidden_out)

Shapes (B = batch): ``obs_<key>`` (B, *shape) float32 in ``spec.obs_parts`` order; ``prev_action``
(B, A_in) (discrete: the index as float, −1 at a trial start; Box: the action in [−1, 1]);
``prev_reward`` (B,); ``prev_done`` (B,) ∈ {0, 1}; ``hidden`` (S, B, H). ``dist_params`` are logits
(discrete) or cat(mean, log_std) of the raw Gaussian. Observation/reward normalisation is inside.
A ``policy.json`` next to the graphs holds the spec and shapes (no pickles anywhere), and ``policy.pt`` the
weights as a tensors-only checkpoint (:mod:`policies.checkpoint`): what :class:`~policies.runner.PolicyRunner` loads
by default, because a TorchScript archive is a program (PyTorch's security policy: treat it as code) and runs only
when asked for.

An asymmetric actor-critic (``network.critic_keys``) is exported as its actor alone::

    (obs_<actor key>..., prev_action, prev_reward, prev_done, hidden) -> (dist_params, hidden_out)

with ``hidden`` the actor's state only and the spec listing only the actor's observation keys, so a deployment
needs no privileged state. ``policy.json`` names the outputs (``output_names``).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from policies.actor_critic import RecurrentActorCritic
from policies.checkpoint import atomic_torch_save, atomic_write_text
from policies.config import RL2Config
from policies.spaces import PolicySpec

FORMAT_VERSION = 1
META_FILE = "policy.json"
TORCHSCRIPT_FILE = "policy.ts"
WEIGHTS_FILE = "policy.pt"  # tensors-only checkpoint (model state dict + config + spec)
ONNX_FILE = "policy.onnx"


class StepGraph(nn.Module):
    """One policy step with positional tensor inputs (trace- and ONNX-friendly); the actor alone when the model
    is asymmetric."""

    def __init__(self, model: RecurrentActorCritic) -> None:
        super().__init__()
        self.model = model
        self.keys = [p.key for p in exported_spec(model).obs_parts]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.keys)
        obs = dict(zip(self.keys, inputs[:n]))
        prev_action, prev_reward, prev_done, hidden = inputs[n:]
        if self.model.asymmetric:
            return self.model.actor_step(obs, prev_action, prev_reward, prev_done, hidden)
        return self.model.step(obs, prev_action, prev_reward, prev_done, hidden)


def exported_spec(model: RecurrentActorCritic) -> PolicySpec:
    """What a deployment feeds: every observation key, or the actor's keys for an asymmetric model."""
    return model.actor_spec if model.asymmetric else model.spec


def hidden_layers(model: RecurrentActorCritic) -> int:
    """First dimension of the exported graph's hidden state."""
    return model.actor_state_layers if model.asymmetric else model.state_layers


def input_names(model: RecurrentActorCritic) -> list[str]:
    return [f"obs_{p.key}" for p in exported_spec(model).obs_parts] + ["prev_action", "prev_reward", "prev_done",
                                                                       "hidden"]


OUTPUT_NAMES = ["dist_params", "value", "hidden_out"]
ACTOR_OUTPUT_NAMES = ["dist_params", "hidden_out"]


def output_names(model: RecurrentActorCritic) -> list[str]:
    return ACTOR_OUTPUT_NAMES if model.asymmetric else OUTPUT_NAMES


def example_inputs(model: RecurrentActorCritic, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Zero inputs of the right shapes (a trial's first step)."""
    from policies.spaces import first_prev_action

    obs = [torch.zeros(batch, *p.shape) for p in exported_spec(model).obs_parts]
    hidden = torch.zeros(hidden_layers(model), batch, model.cfg.hidden_size)
    return (*obs, first_prev_action(batch, model.spec.action), torch.zeros(batch), torch.zeros(batch), hidden)


def export_policy(model: RecurrentActorCritic, out_dir: str | Path,
                  formats: Sequence[str] = ("torchscript", "onnx")) -> Path:
    """Write ``policy.json``, the tensors-only ``policy.pt`` and the requested graphs (``policy.ts``,
    ``policy.onnx``) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unknown = set(formats) - {"torchscript", "onnx"}
    if unknown:
        raise ValueError(f"formats: allowed torchscript, onnx; got {sorted(unknown)}")
    model = model.eval()
    graph = StepGraph(model).eval()
    inputs = example_inputs(model)
    names = input_names(model)
    atomic_torch_save({"model": model.state_dict(), "config": RL2Config(network=model.cfg).to_dict(),
                       "spec": model.spec.to_dict()}, out_dir / WEIGHTS_FILE)
    files: dict[str, str] = {"torch": WEIGHTS_FILE}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / legacy-exporter chatter; inputs carry the hidden state
        if "torchscript" in formats:
            traced = torch.jit.trace(graph, inputs, check_trace=False)
            tmp = out_dir / f".{TORCHSCRIPT_FILE}.tmp"
            torch.jit.save(traced, str(tmp))
            tmp.replace(out_dir / TORCHSCRIPT_FILE)
            files["torchscript"] = TORCHSCRIPT_FILE
        if "onnx" in formats:
            tmp = out_dir / f".{ONNX_FILE}.tmp"
            outputs = output_names(model)
            batch_axes = {name: {0: "batch"} for name in names + outputs if name not in ("hidden", "hidden_out")}
            batch_axes.update({"hidden": {1: "batch"}, "hidden_out": {1: "batch"}})
            torch.onnx.export(graph, inputs, str(tmp), input_names=names, output_names=outputs,
                              dynamic_axes=batch_axes, opset_version=17, dynamo=False)
            tmp.replace(out_dir / ONNX_FILE)
            files["onnx"] = ONNX_FILE
    meta = {"format_version": FORMAT_VERSION, "spec": exported_spec(model).to_dict(), "files": files,
            "input_names": names, "output_names": output_names(model),
            "hidden_shape": [hidden_layers(model), model.cfg.hidden_size], "network": asdict(model.cfg)}
    atomic_write_text(json.dumps(meta, indent=2) + "\n", out_dir / META_FILE)
    return out_dir

