"""Answer accuracy and experimenting behaviour vs difficulty on "Which is heavier?" (issue 24).

For each agent — a random answer, the scripted poke-all experimenter and its adaptive variant (answers once a block
stands out), and any trained runs given (RL² and a
feed-forward SB3 policy, loaded through the one policy loader) — play ``--episodes`` episodes at each difficulty
(``experiment.difficulty`` pinned; the other experiment Params drawn at their default ranges) on the same seeds,
and report per difficulty — trained runs with their mean action and with sampled actions (their gate may need
the noise to open) — accuracy (Wilson 95 % CI), the fraction of episodes answered within the budget, the
number of blocks poked before answering (mean over answered episodes; Denil et al.'s behavioural measure) and the
steps used. Writes JSON (``--out``) and prints a markdown table.

    python benchmarks/heavier_behaviour.py --env sim2real/SO101Heavier-v0 --episodes 60 \\
        --run rl2=RUN_DIR --run ppo=RUN_DIR [--out benchmarks/results/heavier_behaviour.json]
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import sim2real  # noqa: F401  (registers the environments)
from sim2real.envs.experiment_env import ExperimentRandomizer
from sim2real.evaluation.stats import wilson_ci
from sim2real.io import atomic_write_json
from sim2real.tasks.experiment_scripted import KnockDown, PokeAll, RandomAnswer
from sim2real.tasks.experiments import Heavier

EVAL_SEED = 10_000
DIFFICULTIES = (0.0, 0.25, 0.5, 0.75, 1.0)
STOP_RATIO = 2.0  # the adaptive scripted experimenter answers once a poked block outweighs the others by this


class Agent:
    """What one episode needs from a player: ``start()`` at the episode's start, ``act(obs)``, ``observe(...)``."""

    def __init__(self, start: Callable[[], None], act: Callable[[np.ndarray], np.ndarray],
                 observe: Callable[[float, bool, bool], None] = lambda r, te, tr: None) -> None:
        self.start, self.act, self.observe = start, act, observe


def scripted_agent(player: Any) -> Agent:
    return Agent(player.reset, player.act)


def run_agent(path: str, sample: bool) -> Agent:
    """A trained run (RL² or SB3) through :func:`sim2real.policy_files.load_policy`, one trial per episode; its
    mean action, or with ``sample`` actions drawn from its distribution (as in training; seeded)."""
    from sim2real.policy_files import load_policy

    policy, _ = load_policy(path, None)
    batch = policy.batch
    if sample and hasattr(batch, "runners"):  # RL²: every runner samples
        batch.runners[0].deterministic = False
    elif sample:  # stable-baselines3
        import torch

        torch.manual_seed(0)
        return Agent(lambda: None, lambda obs: batch.model.predict(obs[None], deterministic=False)[0][0])
    return Agent(policy.reset_trial, policy.act, policy.observe)


def play(env: ExperimentRandomizer, agent: Agent, difficulty: float, episodes: int, seed: int) -> list[dict[str, Any]]:
    """``episodes`` episodes at ``difficulty``; one record (correct, answered, poked, steps) per episode."""
    env.set_randomization_values({"experiment.difficulty": difficulty})
    records = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        agent.start()
        steps, done = 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs))
            agent.observe(float(reward), terminated, truncated)
            steps, done = steps + 1, terminated or truncated
        records.append({"correct": bool(reward > 0), "answered": bool(info["answered"]),
                        "poked": int(info["poked"]), "steps": steps})
    return records


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    correct = sum(r["correct"] for r in records)
    answered = [r for r in records if r["answered"]]
    accuracy = wilson_ci(correct, len(records))
    return {"accuracy": accuracy.as_dict(), "answered": len(answered) / len(records),
            "poked_before_answer": float(np.mean([r["poked"] for r in answered])) if answered else None,
            "steps": float(np.mean([r["steps"] for r in records])), "episodes": len(records)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="sim2real/SO101Heavier-v0")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--difficulties", type=float, nargs="+", default=list(DIFFICULTIES))
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="a trained run to evaluate (repeatable)")
    parser.add_argument("--out", default="benchmarks/results/heavier_behaviour.json")
    parser.add_argument("--skip-baselines", action="store_true", help="only the --run policies")
    args = parser.parse_args(argv)
    env = ExperimentRandomizer(gym.make(args.env))
    task = env.unwrapped.task
    agents: dict[str, Agent] = {"random answer": scripted_agent(RandomAnswer(task, np.random.default_rng(0)))}
    if isinstance(task, Heavier):
        agents["scripted poke-all"] = scripted_agent(PokeAll(task))
        until_sure = PokeAll(task, stop_ratio=STOP_RATIO)
        agents[f"scripted poke-until-sure (ratio {STOP_RATIO:g})"] = scripted_agent(until_sure)
    else:
        agents["scripted knock-down"] = scripted_agent(KnockDown(task))
    if args.skip_baselines:
        agents.clear()
    for item in args.run:
        name, _, path = item.partition("=")
        agents[f"{name} (mean action)"] = run_agent(path, sample=False)
        agents[f"{name} (sampled)"] = run_agent(path, sample=True)
    results: dict[str, Any] = {"env": args.env, "episodes": args.episodes, "seed": EVAL_SEED, "agents": {}}
    print("| agent | difficulty | accuracy (95 % CI) | answered | blocks poked before answering | steps |")
    print("|---|---|---|---|---|---|")
    for name, agent in agents.items():
        rows = {}
        for difficulty in args.difficulties:
            row = rows[str(difficulty)] = summarize(play(env, agent, difficulty, args.episodes, EVAL_SEED))
            acc, poked = row["accuracy"], row["poked_before_answer"]
            print(f"| {name} | {difficulty:.2f} | {acc['value']:.2f} [{acc['ci_low']:.2f}, {acc['ci_high']:.2f}] | "
                  f"{row['answered']:.2f} | {'-' if poked is None else f'{poked:.2f}'} | {row['steps']:.1f} |",
                  flush=True)
        results["agents"][name] = rows
    atomic_write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
