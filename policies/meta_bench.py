"""RL² reproductions (Duan et al. 2016): training recipes, zoo files, evaluation and the comparison tables.

Used by ``sim2real bench rl2-bandits|rl2-mdp`` and ``benchmarks/rl2_*.py``. Paper numbers are copied from
the RL² paper's tables 1 and 2 (via ../shared/reference/rl2.md).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from policies.baselines.bandits import (bayes_optimal_value, epsilon_greedy_policy, gittins_policy, gittins_table,
                                        greedy_policy, optimistic_thompson_policy, random_policy, run_bandit_policy,
                                        thompson_policy, ucb1_policy)
from policies.baselines.mdp import run_mdp_baseline
from policies.checkpoint import atomic_torch_save, atomic_write_text, load_policy, safe_load
from policies.config import NetworkConfig, RL2Config
from policies.envs import BernoulliBanditVecEnv, TabularMDPVecEnv
from policies.envs.base import TASK_KEY
from policies.evaluate import evaluate_policy
from policies.ppo import TrainResult, train_rl2

ZOO = Path(__file__).resolve().parent / "zoo"

BANDIT_COLUMNS = ("Random", "Gittins", "TS", "OTS", "UCB1", "eps-Greedy", "Greedy", "RL2")
PAPER_BANDITS: dict[tuple[int, int], tuple[float, ...]] = {
    (10, 5): (5.0, 6.6, 5.7, 6.5, 6.7, 6.6, 6.6, 6.7),
    (10, 10): (5.0, 6.6, 5.5, 6.2, 6.7, 6.6, 6.6, 6.7),
    (10, 50): (5.1, 6.5, 5.2, 5.5, 6.6, 6.5, 6.5, 6.8),
    (100, 5): (49.9, 78.3, 74.7, 77.9, 78.0, 75.4, 74.8, 78.7),
    (100, 10): (49.9, 82.8, 76.7, 81.4, 82.4, 77.4, 77.1, 83.5),
    (100, 50): (49.8, 85.2, 64.5, 67.7, 84.3, 78.3, 78.0, 84.9),
    (500, 5): (249.8, 405.8, 402.0, 406.7, 405.8, 388.2, 380.6, 401.6),
    (500, 10): (249.0, 437.8, 429.5, 438.9, 437.1, 408.0, 395.0, 432.5),
    (500, 50): (249.6, 463.7, 427.2, 437.6, 457.6, 413.6, 402.8, 438.9),
}
MDP_COLUMNS = ("Random", "PSRL", "eps-Greedy", "Greedy", "RL2")
PAPER_MDP: dict[int, dict[str, float]] = {
    10: {"Random": 100.1, "PSRL": 138.1, "eps-Greedy": 132.8, "Greedy": 134.8, "RL2": 156.2},
    25: {"Random": 250.2, "PSRL": 408.8, "eps-Greedy": 377.3, "Greedy": 368.8, "RL2": 445.7},
    50: {"Random": 499.7, "PSRL": 904.4, "eps-Greedy": 823.3, "Greedy": 769.3, "RL2": 936.1},
    75: {"Random": 749.9, "PSRL": 1417.1, "eps-Greedy": 1293.9, "Greedy": 1172.9, "RL2": 1428.8},
    100: {"Random": 999.4, "PSRL": 1939.5, "eps-Greedy": 1778.2, "Greedy": 1578.5, "RL2": 1913.7},
}
GITTINS_GAMMA = {10: 0.9, 100: 0.98, 500: 0.99}
EPSILONS = (0.0, 0.01, 0.05, 0.1, 0.2)
UCB_CS = (0.05, 0.1, 0.2, 0.5, 1.0)


def bandit_config(n: int, k: int, total_steps: int | None = None, seed: int = 0) -> RL2Config:
    """Training recipe for an (n pulls, k arms) bandit: GRU 128, separate actor/critic, γ 0.99, λ 0.3."""
    envs = max(16, (2560 // n) // 4 * 4)  # a multiple of 4 keeps the minibatch split exact
    steps = total_steps or (4_000_000 if n <= 10 else 20_000_000)
    return RL2Config(
        network=NetworkConfig(hidden_size=128, embed_size=64, encoder_sizes=()),
        total_steps=steps, num_envs=envs, rollout_steps=5 * n if n <= 10 else n, seq_len=n if n <= 50 else 50,
        epochs=4, num_minibatches=4, learning_rate=1e-3, gamma=0.99 if n <= 100 else 0.995, gae_lambda=0.3,
        ent_coef=0.01, max_grad_norm=0.5, seed=seed, checkpoint_every=20, log_every=5)


def mdp_config(n: int, total_steps: int | None = None, seed: int = 0) -> RL2Config:
    """Training recipe for tabular MDPs with ``n`` episodes of 10 steps per trial."""
    T = 10 * n
    return RL2Config(
        network=NetworkConfig(hidden_size=128, embed_size=64, encoder_sizes=(32,)),
        total_steps=total_steps or 20_000_000, num_envs=max(16, (25600 // T) // 16 * 16), rollout_steps=T, seq_len=min(T, 50),
        epochs=4, num_minibatches=16, learning_rate=1e-3, gamma=0.99, gae_lambda=0.3, ent_coef=0.01,
        max_grad_norm=0.5, seed=seed, checkpoint_every=20, log_every=5)


def parse_bandit_setting(text: str) -> tuple[int, int]:
    """``"100x10"`` → (100 pulls, 10 arms); ``ValueError`` for anything else."""
    pulls, arms = (int(v) for v in text.lower().split("x"))
    return pulls, arms


def bandit_name(n: int, k: int) -> str:
    return f"bandit_n{n}_k{k}"


def mdp_name(n: int) -> str:
    return f"mdp_n{n}"


def train(name: str, cfg: RL2Config, env: Any, run_dir: Path, zoo: Path = ZOO,
          on_iteration: Callable[[dict[str, float]], None] | None = None, command: str = "",
          env_description: str = "") -> TrainResult:
    """Train (resuming from ``run_dir``), then write ``zoo/<name>.pt`` (weights only) and its model card."""
    torch.set_num_threads(cfg.torch_threads)
    result = train_rl2(cfg, None, run_dir / name, vec_env=env, on_iteration=on_iteration)
    data = safe_load(result.checkpoint)
    write_zoo_entry(name, data, zoo, env=env_description, env_steps=result.global_step,
                    iterations=int(data["iteration"]), train_wall_time_s=round(result.wall_time_s, 1), command=command,
                    last_train_trial_return=result.stats.get("trial_return_mean"))
    return result


def write_zoo_entry(name: str, data: dict[str, Any], zoo: Path = ZOO, **card: Any) -> None:
    """Write ``zoo/<name>.pt`` (the weights, config and spec of a safe-loaded checkpoint or snapshot ``data``) and its
    model card ``zoo/<name>.json`` (name, config, seed, machine, plus ``card``'s fields)."""
    atomic_torch_save({"model": data["model"], "config": data["config"], "spec": data["spec"]}, zoo / f"{name}.pt")
    full = {"name": name, "env": card.pop("env", ""), "config": data["config"], "seed": data["config"]["seed"],
            "machine": "2 shared CPU cores, torch threads = 1", **card}
    atomic_write_text(json.dumps(full, indent=2) + "\n", zoo / f"{name}.json")


def mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(len(x)))


def evaluate_zoo(name: str, env: Any, zoo: Path = ZOO) -> dict[str, tuple[float, float]]:
    """RL² trial returns (mean, SE) with sampled and with argmax actions, for ``zoo/<name>.pt``."""
    model, _ = load_policy(zoo / f"{name}.pt")
    torch.manual_seed(0)
    out = {"RL2": mean_se(evaluate_policy(model, env, seed=10_000))}
    out["RL2 argmax"] = mean_se(evaluate_policy(model, env, deterministic=True, seed=10_000))
    return out


def _tuned(make: Callable[[float], Any], grid: tuple[float, ...], k: int, n: int, trials: int) -> tuple[float, Any]:
    """Pick the grid value with the best mean on separate tuning trials (seed 999)."""
    scores = [run_bandit_policy(make(v), k, n, trials, seed=999).mean() for v in grid]
    best = grid[int(np.argmax(scores))]
    return best, make(best)


def bandit_baselines(n: int, k: int, trials: int, seed: int = 0) -> tuple[dict[str, tuple[float, float]], dict]:
    """Baseline trial returns (mean, SE); ε and UCB's c tuned on separate trials. Returns (results, notes)."""
    eps, eps_policy = _tuned(epsilon_greedy_policy, EPSILONS, k, n, trials)
    c, ucb = _tuned(ucb1_policy, UCB_CS, k, n, trials)
    policies = {"Random": random_policy, "TS": thompson_policy, "OTS": optimistic_thompson_policy, "UCB1": ucb,
                "eps-Greedy": eps_policy, "Greedy": greedy_policy}
    gamma = GITTINS_GAMMA.get(n)
    if gamma is not None and n <= 100:
        policies["Gittins"] = gittins_policy(gittins_table(n, gamma))
    out = {name: mean_se(run_bandit_policy(p, k, n, trials, seed=seed)) for name, p in policies.items()}
    notes: dict[str, Any] = {"epsilon": eps, "ucb_c": c, "gittins_gamma": gamma if "Gittins" in out else None}
    if n <= 30:
        out["Bayes-optimal (exact)"] = (bayes_optimal_value(n, k), 0.0)
    return out, notes


def mdp_baselines(n: int, trials: int, seed: int = 0) -> tuple[dict[str, tuple[float, float]], dict]:
    """MDP baseline trial returns (mean, SE); ε tuned on separate trials (seed 999)."""
    scores = [run_mdp_baseline("epsilon_greedy", n, max(100, trials // 4), seed=999, epsilon=e).mean()
              for e in EPSILONS[1:]]
    eps = EPSILONS[1:][int(np.argmax(scores))]
    out = {"Random": mean_se(run_mdp_baseline("random", n, trials, seed)),
           "PSRL": mean_se(run_mdp_baseline("psrl", n, trials, seed)),
           "eps-Greedy": mean_se(run_mdp_baseline("epsilon_greedy", n, trials, seed, epsilon=eps)),
           "Greedy": mean_se(run_mdp_baseline("greedy", n, trials, seed))}
    return out, {"epsilon": eps}


def env_description(kind: str, setting: tuple[int, ...]) -> str:
    """One line naming the training environment of a zoo file (for its model card)."""
    if kind == "rl2-bandits":
        return f"BernoulliBanditVecEnv(k={setting[1]}, n={setting[0]}): p ~ U(0,1), {setting[0]} pulls per trial"
    return (f"TabularMDPVecEnv(n={setting[0]}): 10 states, 5 actions, 10-step episodes from state 0, "
            f"Dirichlet(1) transitions, rewards N(N(1,1), 1)")


def uses_task_features(cfg: RL2Config) -> bool:
    """True when the recipe's critic reads the envs' privileged task features (``network.critic_keys: [task]``)."""
    return TASK_KEY in cfg.network.critic_keys


def bandit_env(n: int, k: int, trials: int, seed: int, privileged: bool = False) -> BernoulliBanditVecEnv:
    return BernoulliBanditVecEnv(trials, k, n, seed=seed, privileged=privileged)


def mdp_env(n: int, trials: int, seed: int, privileged: bool = False) -> TabularMDPVecEnv:
    return TabularMDPVecEnv(trials, n, seed=seed, privileged=privileged)


def format_rows(title: str, ours: dict[str, tuple[float, float]], paper: dict[str, float]) -> list[list[str]]:
    """Rows ``[column, ours ± SE, paper]`` for one benchmark setting."""
    rows = []
    for col in list(paper) + [c for c in ours if c not in paper]:
        mine = ours.get(col)
        rows.append([title, col, "—" if mine is None else f"{mine[0]:.2f} ± {mine[1]:.2f}",
                     f"{paper[col]:.1f}" if col in paper else "—"])
    return rows


def paper_bandit_row(n: int, k: int) -> dict[str, float]:
    return dict(zip(BANDIT_COLUMNS, PAPER_BANDITS[(n, k)]))


def zoo_card(name: str, zoo: Path = ZOO) -> dict[str, Any] | None:
    path = zoo / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


