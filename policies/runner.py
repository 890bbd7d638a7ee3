"""Deployment runtime: :class:`PolicyRunner` acts from an exported RL² policy, one observation at a time.

It owns the hidden state and the RL² inputs (previous action, reward and done flag). Per control step::

    runner.reset_trial()                 # new environment / robot session: state and inputs to zero
    action = runner.act(obs)             # obs: array, or dict of arrays, without batch dimension
    runner.observe(reward, episode_done) # what that action earned; episode_done=True at inner-episode ends

Loading never unpickles arbitrary objects: backends are ``torch`` (a tensors-only checkpoint, ``.pt`` or an export
folder's ``policy.pt``, read with ``torch.load(weights_only=True)``; the default), ``torchscript`` (``policy.ts``)
and ``onnx`` (``policy.onnx``, needs onnxruntime), the latter two with their ``policy.json`` and only when asked for.
A TorchScript archive is a program, not data (PyTorch's security policy says to treat it as code): load it only
from a maker you trust.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch

from policies.checkpoint import load_policy
from policies.errors import PolicyFileError
from policies.export import META_FILE, ONNX_FILE, TORCHSCRIPT_FILE, WEIGHTS_FILE
from policies.spaces import OBS_KEY, PolicySpec, first_prev_action, prev_action_input, raw_to_env_action

Backend = Literal["torch", "torchscript", "onnx"]
StepFn = Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray]]  # inputs → (dist_params, hidden_out)


class PolicyRunner:
    """Act with an RL² policy; see the module docstring for the call sequence.

    Args:
        step: the backend's one-step function on batch-1 numpy inputs.
        spec: observation order and action mapping.
        hidden_shape: (S, H) of the hidden state.
        deterministic: take the distribution's mode (default) instead of sampling.
        seed: seed of the sampling generator (only used when ``deterministic`` is False).
    """

    def __init__(self, step: StepFn, spec: PolicySpec, hidden_shape: tuple[int, int], backend: str,
                 deterministic: bool = True, seed: int = 0) -> None:
        self._step = step
        self.spec = spec
        self.backend = backend
        self.hidden_shape = hidden_shape
        self.deterministic = deterministic
        self._gen = torch.Generator().manual_seed(seed)
        self.reset_trial()

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, backend: Backend | None = None, **kwargs: Any) -> "PolicyRunner":
        """Load from a checkpoint file (``.pt``) or an export folder (``policy.json`` + graphs).

        ``backend`` defaults to ``torch`` (the tensors-only checkpoint: the file, or the folder's ``policy.pt``);
        ``torchscript`` and ``onnx`` run the folder's graphs. Raises :class:`PolicyFileError` for anything that
        cannot be loaded safely.
        """
        path = Path(path)
        if path.is_file() and path.name != META_FILE:
            if backend not in (None, "torch"):
                raise PolicyFileError(f"backend: a checkpoint file runs on the torch backend, not {backend!r}")
            return cls.from_model(*load_policy(path)[:1], **kwargs)
        folder = path.parent if path.name == META_FILE else path
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise PolicyFileError(f"policy: {path} is neither a checkpoint file nor a folder with {META_FILE}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            spec = PolicySpec.from_dict(meta["spec"])
            hidden_shape = (int(meta["hidden_shape"][0]), int(meta["hidden_shape"][1]))
        except (ValueError, KeyError, TypeError, RecursionError) as err:  # RecursionError: JSON nested too deeply
            raise PolicyFileError(f"policy: {meta_path} is not a valid policy description: {err}") from None
        backend = backend or "torch"
        if backend == "torch":
            if not (folder / WEIGHTS_FILE).is_file():
                raise PolicyFileError(f"policy: {folder} has no {WEIGHTS_FILE} (tensors-only weights; export it "
                                      f"again); its graphs are programs and run only with backend='torchscript' "
                                      f"or 'onnx'")
            return cls.load(folder / WEIGHTS_FILE, **kwargs)
        if backend == "torchscript":
            step = _torchscript_step(folder / TORCHSCRIPT_FILE)
        elif backend == "onnx":
            step = _onnx_step(folder / ONNX_FILE)
        else:
            raise PolicyFileError(f"backend: an export folder runs on torch, torchscript or onnx, not {backend!r}")
        return cls(step, spec, hidden_shape, backend, **kwargs)

    @classmethod
    def from_model(cls, model: Any, **kwargs: Any) -> "PolicyRunner":
        """Run an in-memory :class:`~policies.actor_critic.RecurrentActorCritic` (its actor alone if asymmetric,
        as exported)."""
        from policies.export import exported_spec, hidden_layers

        model = model.eval()
        spec = exported_spec(model)
        keys = [p.key for p in spec.obs_parts]

        @torch.no_grad()
        def step(inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            t = [torch.from_numpy(x) for x in inputs]
            obs = dict(zip(keys, t[: len(keys)]))
            out = model.actor_step(obs, *t[len(keys):]) if model.asymmetric else model.step(obs, *t[len(keys):])
            return out[0].numpy(), out[-1].numpy()

        return cls(step, spec, (hidden_layers(model), model.cfg.hidden_size), "torch", **kwargs)

    # -- acting --------------------------------------------------------------------------------
    def reset_trial(self) -> None:
        """Start a new trial: zero hidden state, no previous action, reward 0, done flag 0."""
        self.hidden = np.zeros((self.hidden_shape[0], 1, self.hidden_shape[1]), np.float32)
        self.prev_action = first_prev_action(1, self.spec.action).numpy()
        self.prev_reward = np.zeros(1, np.float32)
        self.prev_done = np.zeros(1, np.float32)

    def act(self, obs: Any) -> np.ndarray | int:
        """Action for ``obs`` (env units: an int for discrete spaces, a float32 array for Box)."""
        if not isinstance(obs, Mapping):
            obs = {OBS_KEY: obs}
        try:
            parts = [np.asarray(obs[p.key], np.float32).reshape(1, *p.shape) for p in self.spec.obs_parts]
        except (KeyError, ValueError) as err:
            expected = ", ".join(f"{p.key}{list(p.shape)}" for p in self.spec.obs_parts)
            raise ValueError(f"obs: expected {expected}; got {err}") from None
        params, self.hidden = self._step(parts + [self.prev_action, self.prev_reward, self.prev_done, self.hidden])
        params_t = torch.from_numpy(np.ascontiguousarray(params))
        act = self.spec.action
        if self.deterministic:
            raw = params_t.argmax(-1) if act.discrete else params_t[:, : act.n]
        elif act.discrete:
            raw = torch.multinomial(torch.softmax(params_t, -1), 1, generator=self._gen).squeeze(1)
        else:
            mean, log_std = params_t.split(act.n, dim=-1)
            raw = mean + log_std.exp() * torch.randn(mean.shape, generator=self._gen)
        self.prev_action = prev_action_input(raw, act).numpy().astype(np.float32)
        self.prev_reward[:] = 0.0
        self.prev_done[:] = 0.0
        env_action = raw_to_env_action(raw, act)[0]
        return int(env_action) if act.discrete else env_action.numpy().astype(np.float32)

    def observe(self, reward: float, episode_done: bool = False) -> None:
        """Record the reward of the last action and whether it ended an inner episode (next step's inputs)."""
        self.prev_reward[:] = float(reward)
        self.prev_done[:] = float(bool(episode_done))


def _torchscript_step(path: Path) -> StepFn:
    if not path.is_file():
        raise PolicyFileError(f"policy: {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is still the CPU runtime we ship
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as err:
        raise PolicyFileError(f"policy: {path} is not a TorchScript archive: {str(err).splitlines()[0]}") from None
    module.eval()

    @torch.no_grad()
    def step(inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        outputs = module(*[torch.from_numpy(x) for x in inputs])  # (params, [value,] hidden)
        return outputs[0].numpy(), outputs[-1].numpy()

    return step


def _onnx_step(path: Path) -> StepFn:
    if not path.is_file():
        raise PolicyFileError(f"policy: {path} does not exist")
    try:
        import onnxruntime as ort
    except ImportError:
        raise PolicyFileError("backend: onnx needs onnxruntime (pip install 'sim2real[onnx]')") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise PolicyFileError(f"policy: {path} is not a loadable ONNX graph: {str(err).splitlines()[0]}") from None
    names = [i.name for i in session.get_inputs()]

    def step(inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        outputs = session.run(None, dict(zip(names, inputs)))  # (params, [value,] hidden)
        return outputs[0], outputs[-1]

    return step
