"""Behaviour cloning of the scripted experimenter into a learner's policy ("Which is heavier?", issue 24).

Neither RL² nor PPO learned to reach and push the blocks from the sparse answer reward in 100k steps (they settle on
an early guess first; BENCHMARKS.md, "Physics experiments"). This script starts a learner from demonstrations
instead: it plays the scripted poke-until-sure experimenter (:class:`sim2real.tasks.experiment_scripted.PokeAll`)
on the launch file's randomized env, executing its tool motion with Gaussian noise (by default in every episode; the
labels stay the expert's clean actions, so the clone sees and learns to recover from its own drift; DART, Laskey et
al. 2017), and fits the policy's mean action to the expert's by mean squared error, masked to the steps of each
episode. The answer step is weighted up: it is one step in ~35, and everything the experiment is for.

* ``policy: rl2`` launch file: the GRU actor of :class:`policies.actor_critic.RecurrentActorCritic` is unrolled
  over whole episodes with the RL² inputs it sees when it acts (previous executed action, reward, done); written as
  an RL² run (``checkpoint.pt`` + ``launch.yaml``): evaluate it with ``benchmarks/heavier_behaviour.py --run``, or
  fine-tune it with recurrent PPO through ``rl2.init_from``.
* ``policy: mlp`` (PPO) launch file: the feed-forward baseline, fitted step by step on the same demonstrations;
  written as an SB3 run (``final/model.zip`` + ``launch.yaml``).

    python benchmarks/heavier_clone.py so101_heavier_rl2_bc --demos runs/heavier_demos.npz --out runs/heavier_bc_rl2
    python benchmarks/heavier_clone.py so101_heavier_ppo --demos runs/heavier_demos.npz --out runs/heavier_bc_ppo
"""
from __future__ import annotations

import argparse
import io
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import sim2real  # noqa: F401  (registers the environments)
from sim2real.env_factory import make_env_fn
from sim2real.errors import UserError
from sim2real.launch import dump, resolve
from sim2real.tasks.experiment_scripted import PokeAll

STOP_RATIO = 2.0  # the cloned experimenter answers once a poked block outweighs the others by this (as benchmarked)
LABEL_LIMIT = 0.97  # expert actions are ±1; a tanh-squashed mean is fitted to ±0.97 (finite pre-activation)


@dataclass
class Demonstrations:
    """Whole episodes, padded to the budget: observations (E, T, D), executed actions (E, T, A) (what the env got,
    the next step's previous-action input), labels (E, T, A), valid steps (E, T) and the expert's success rate.

    A label is the expert's clean action, except that while it does not answer its scores are its running belief
    (:func:`belief`) instead of the all −1 it sends: the scores are ignored while the gate is shut, so this
    changes no behaviour, and it asks the memory at every step what the answer step alone would ask once."""

    observations: np.ndarray
    executed: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    success_rate: float

    def save(self, path: str) -> None:
        from policies.checkpoint import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(buffer, observations=self.observations, executed=self.executed, labels=self.labels,
                 valid=self.valid, success_rate=np.array(self.success_rate))
        atomic_write_bytes(buffer.getvalue(), path)

    @classmethod
    def load(cls, path: str) -> "Demonstrations":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["observations"], data["executed"], data["labels"], data["valid"],
                           float(data["success_rate"]))
        except (OSError, KeyError, ValueError) as err:
            raise UserError(f"{path}: not a demonstrations file written by heavier_clone.py ({err})") from None

    @property
    def answer_steps(self) -> np.ndarray:
        """(E, T) 1 at each episode's last step (its answer, or the budget's end)."""
        last = self.valid.sum(axis=1).astype(int) - 1
        out = np.zeros_like(self.valid)
        out[np.arange(len(last)), last] = 1.0
        return out


def belief(felt: np.ndarray) -> np.ndarray:
    """Answer scores (+1 / −1) of the block that pushed back hardest so far; all −1 before any push."""
    scores = np.full(len(felt), -1.0, np.float32)
    if felt.max() > 0.0:
        scores[int(np.argmax(felt))] = 1.0
    return scores


def collect(config: dict[str, Any], episodes: int, noise: float, noisy_fraction: float, seed: int) -> Demonstrations:
    """Play ``episodes`` poke-until-sure episodes on the launch file's env; in a ``noisy_fraction`` of them the tool
    motion gets N(0, ``noise``) per component (in action units) before it is executed."""
    env = make_env_fn(config, 0)()
    budget = int(config["env"]["max_episode_steps"])
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    expert = PokeAll(env.unwrapped.task, stop_ratio=STOP_RATIO)
    motion = env.unwrapped.controller.action_dim  # the tool-motion components; the answer part follows
    rng = np.random.default_rng(seed)
    obs_all = np.zeros((episodes, budget, obs_dim), np.float32)
    executed, labels = np.zeros((episodes, budget, act_dim), np.float32), np.zeros((episodes, budget, act_dim), np.float32)
    valid, successes = np.zeros((episodes, budget), np.float32), []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        expert.reset()
        sigma = noise if rng.random() < noisy_fraction else 0.0
        for t in range(budget):
            action = expert.act(obs)
            label = action.copy()
            if action[motion] <= 0.0:  # not answering: the scores say which block the expert holds heaviest so far
                label[motion + 1:] = belief(expert.felt)
            action[:motion] = np.clip(action[:motion] + rng.normal(0.0, sigma, motion), -1.0, 1.0)
            obs_all[episode, t], executed[episode, t], labels[episode, t], valid[episode, t] = obs, action, label, 1.0
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                successes.append(bool(info["is_success"]))
                break
    env.close()
    return Demonstrations(obs_all, executed, labels, valid, float(np.mean(successes)))


def _weights(demos: Demonstrations, answer_weight: float) -> torch.Tensor:
    return torch.as_tensor(demos.valid * (1.0 + (answer_weight - 1.0) * demos.answer_steps))


def clone_rl2(config: dict[str, Any], demos: Demonstrations, iterations: int, batch: int, lr: float,
              answer_weight: float, seed: int) -> tuple[Any, Any, Any, float]:
    """Fit the RL² actor's squashed mean action to the labels over whole episodes (one trial each). Returns the
    model (its observation normaliser set from the demonstrations), its config, its spec and the last loss."""
    from policies.actor_critic import RecurrentActorCritic
    from policies.config import RL2Config
    from policies.spaces import make_spec
    from sim2real.launch.loader import rl2_settings

    cfg = RL2Config.from_dict(rl2_settings(config))
    env = make_env_fn(config, 0)()
    spec = make_spec(env.observation_space, env.action_space, cfg.network.squash)
    env.close()
    torch.manual_seed(seed)
    model = RecurrentActorCritic(spec, cfg.network)
    key = spec.obs_parts[0].key
    obs = torch.as_tensor(demos.observations).transpose(0, 1)  # (T, E, D)
    valid_rows = torch.as_tensor(demos.valid).transpose(0, 1).reshape(-1).bool()
    model.encoder.obs_norm.update(obs.reshape(-1, obs.shape[-1])[valid_rows])
    model.reward_norm.update(torch.zeros(int(valid_rows.sum()), 1))  # every previous reward inside an episode is 0
    executed = torch.as_tensor(demos.executed).transpose(0, 1)
    prev_action = torch.cat([torch.zeros_like(executed[:1]), executed[:-1]])  # zero at the trial's first step
    labels = torch.as_tensor(np.clip(demos.labels, -LABEL_LIMIT, LABEL_LIMIT)).transpose(0, 1)
    weights = _weights(demos, answer_weight).transpose(0, 1)
    T, E = weights.shape
    starts = torch.zeros(T, E)
    starts[0] = 1.0
    zeros = torch.zeros(T, E)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    loss = torch.zeros(())
    model.train()
    for _ in range(iterations):
        idx = torch.randint(0, E, (batch,), generator=gen)
        params, _, _ = model.unroll({key: obs[:, idx]}, prev_action[:, idx], zeros[:, idx], zeros[:, idx],
                                    model.initial_state(batch), starts[:, idx])
        mean = torch.tanh(params[..., :spec.action.n])
        w = weights[:, idx]
        loss = ((mean - labels[:, idx]).pow(2).mean(-1) * w).sum() / w.sum()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    return model, cfg, spec, float(loss.detach())


def write_rl2_run(out: str, config: dict[str, Any], model: Any, cfg: Any, spec: Any) -> None:
    """An RL² run directory the policy loader and ``rl2.init_from`` read: ``checkpoint.pt`` at step 0."""
    from policies.checkpoint import atomic_torch_save

    os.makedirs(out, exist_ok=True)
    atomic_torch_save({"model": model.state_dict(), "config": cfg.to_dict(), "spec": spec.to_dict(),
                       "iteration": 0, "global_step": 0, "wall_time_s": 0.0}, os.path.join(out, "checkpoint.pt"))
    dump(config, os.path.join(out, "launch.yaml"))


def clone_mlp(config: dict[str, Any], demos: Demonstrations, iterations: int, batch: int, lr: float,
              answer_weight: float, seed: int, out: str) -> float:
    """Fit the SB3 feed-forward policy's mean action to the labels, step by step (it has no memory); write the run
    (``final/model.zip`` + ``launch.yaml``). Returns the last loss."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sim2real.sb3_safe_load import build_model

    torch.manual_seed(seed)
    venv = DummyVecEnv([make_env_fn(config, 0)])
    model = build_model(config, venv, None)
    policy = model.policy
    rows = demos.valid.reshape(-1) > 0
    obs = torch.as_tensor(demos.observations.reshape(-1, demos.observations.shape[-1])[rows])
    labels = torch.as_tensor(demos.labels.reshape(-1, demos.labels.shape[-1])[rows])
    weights = _weights(demos, answer_weight).reshape(-1)[torch.as_tensor(rows)]
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    loss = torch.zeros(())
    policy.set_training_mode(True)
    for _ in range(iterations):
        idx = torch.randint(0, len(obs), (batch,), generator=gen)
        mean = policy.get_distribution(obs[idx]).distribution.mean
        w = weights[idx]
        loss = ((mean - labels[idx]).pow(2).mean(-1) * w).sum() / w.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.set_training_mode(False)
    os.makedirs(os.path.join(out, "final"), exist_ok=True)
    model.save(os.path.join(out, "final", "model.zip"))
    dump(config, os.path.join(out, "launch.yaml"))
    venv.close()
    return float(loss.detach())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("launch", help="a Heavier launch file, policy rl2 or mlp (PPO)")
    parser.add_argument("--episodes", type=int, default=1500, help="demonstration episodes")
    parser.add_argument("--noise", type=float, default=0.2, help="std of the executed tool motion's noise (action units)")
    parser.add_argument("--noisy-fraction", type=float, default=1.0, help="share of the episodes played with noise")
    parser.add_argument("--iterations", type=int, default=3000, help="Adam steps")
    parser.add_argument("--batch", type=int, default=32, help="episodes (RL²) per step; x 35 steps for the MLP")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--answer-weight", type=float, default=10.0, help="loss weight of each episode's last step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demos", help="an .npz of demonstrations: read when it exists, else collected and written "
                                        "(the RL² and feed-forward clones then learn from the same episodes)")
    parser.add_argument("--out", required=True, help="run directory to write")
    args = parser.parse_args(argv)
    config = resolve(args.launch)
    if not config["env"]["id"].endswith("Heavier-v0"):
        raise UserError(f"{args.launch}: env.id must be a Heavier env, got {config['env']['id']}")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if args.demos and os.path.isfile(args.demos):
        demos = Demonstrations.load(args.demos)
        print(f"{len(demos.valid)} demonstrations ({int(demos.valid.sum())} steps) from {args.demos}", flush=True)
    else:
        demos = collect(config, args.episodes, args.noise, args.noisy_fraction, seed=20_000 + args.seed)
        print(f"{args.episodes} demonstrations ({int(demos.valid.sum())} steps) in {time.perf_counter() - t0:.0f} s; "
              f"expert success {demos.success_rate:.2f}", flush=True)
        if args.demos:
            demos.save(args.demos)
    t1 = time.perf_counter()
    if config["policy"] == "rl2":
        model, cfg, spec, loss = clone_rl2(config, demos, args.iterations, args.batch, args.lr, args.answer_weight,
                                           args.seed)
        write_rl2_run(args.out, config, model, cfg, spec)
    else:
        loss = clone_mlp(config, demos, args.iterations, args.batch * 35, args.lr, args.answer_weight, args.seed,
                         args.out)
    print(f"cloned in {time.perf_counter() - t1:.0f} s, last loss {loss:.4f}; wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
