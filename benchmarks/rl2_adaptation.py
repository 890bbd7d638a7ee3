"""Adaptation within a trial: does the return rise from the first to the last episode in one sampled world?

Runs the same seeded trials (common random numbers) for an RL² run (``policy: rl2``) and a feed-forward SB3 run
trained on the same randomized task. In each trial the randomizers sample one world, then the policy plays
``episodes_per_trial`` episodes in it (``options={"randomize": False}`` between them); the RL² policy keeps its
hidden state across them, the feed-forward policy has none. A control row plays the RL² policy again with its
hidden state reset before every episode: what memory of the world is worth, with the network held fixed. Reports
the mean return per episode index with bootstrap 95 % confidence intervals, the paired last − first difference and
the memory gain (RL² minus its memory-reset self, per episode), and plots them.

    python benchmarks/rl2_adaptation.py --rl2 RUN_DIR --mlp RUN_DIR [--trials 200] \
        --out benchmarks/figures/rl2_adaptation.png
    # the shipped policy instead of a run directory:
    python benchmarks/rl2_adaptation.py --rl2 policies/zoo/panda_reach_rl2_adapt.pt \
        --rl2-launch launch/panda_reach_rl2_adapt.yaml --mlp RUN_DIR
"""
from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim2real.env_factory import make_env_fn  # noqa: E402
from sim2real.launch import resolve  # noqa: E402
from sim2real.policy_files import load_policy  # noqa: E402


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, n: int = 4000) -> tuple[float, float]:
    means = rng.choice(values, size=(n, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


ROTATION = "actuation.action_rotation"


def play_trials(act, reset_policy, observe, config: dict, trials: int, episodes: int,
                seed: int, forget_between_episodes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Returns (trials, episodes) episode returns and each trial's command-frame yaw (rad; 0 when not randomized).

    ``forget_between_episodes`` calls ``reset_policy`` before every episode, not only at the trial start: the
    control that wipes an RL² policy's memory of the world it has just acted in."""
    env = make_env_fn(config, rank=0, seed_offset=0)()
    out = np.zeros((trials, episodes))
    yaw = np.zeros(trials)
    try:
        for trial in range(trials):
            reset_policy()
            for episode in range(episodes):
                if forget_between_episodes and episode > 0:
                    reset_policy()
                options = None if episode == 0 else {"randomize": False}
                obs, info = env.reset(seed=seed + trial if episode == 0 else None, options=options)
                yaw[trial] = float(info.get("randomization", {}).get(ROTATION, 0.0))
                done, total = False, 0.0
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(act(obs))
                    done = terminated or truncated
                    observe(float(reward), terminated, truncated)
                    total += float(reward)
                out[trial, episode] = total
    finally:
        env.close()
    return out, yaw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rl2", required=True, help="run directory of a policy: rl2 run, or a zoo .pt file")
    parser.add_argument("--rl2-launch", default=None, help="launch file of a zoo .pt (default: RUN_DIR/launch.yaml)")
    parser.add_argument("--mlp", required=True, help="run directory of a feed-forward SB3 run")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=500_000)
    parser.add_argument("--out", default="benchmarks/figures/rl2_adaptation.png")
    args = parser.parse_args()

    # One loader for both (sim2real.policy_files): a run, checkpoint or export; --rl2-launch where none is recorded
    runner, rl2_config = load_policy(args.rl2, resolve(args.rl2_launch) if args.rl2_launch else None)
    episodes = runner.batch.episodes_per_trial
    rl2, yaw = play_trials(runner.act, runner.reset_trial, runner.observe, rl2_config, args.trials, episodes, args.seed)
    # Control: the same network and trials, its hidden state reset before every episode (no memory of the world).
    wiped, _ = play_trials(runner.act, runner.reset_trial, runner.observe, rl2_config, args.trials, episodes,
                           args.seed, forget_between_episodes=True)

    model, mlp_config = load_policy(args.mlp, None)
    # Same randomized task and seeds as the RL² run; only the policy differs (and no privileged critic key).
    mlp, _ = play_trials(model.act, model.reset_trial, model.observe,
                         {**rl2_config, "critic_sees_world": False}, args.trials, episodes, args.seed)

    rng = np.random.default_rng(0)
    summary = {}
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    algo = mlp_config.get("algo") or {}
    mlp_name = f"feed-forward ({str(algo.get('name', 'mlp')).upper()}{' + HER' if algo.get('her') else ''})"
    rows = (("RL² (GRU)", rl2), ("RL², memory reset every episode", wiped), (mlp_name, mlp))
    for row, (name, returns) in enumerate(rows):
        means = returns.mean(axis=0)
        cis = np.array([bootstrap_ci(returns[:, k], rng) for k in range(episodes)])
        gain = returns[:, -1] - returns[:, 0]
        summary[name] = {"mean_per_episode": means.tolist(), "ci95_per_episode": cis.tolist(),
                         "last_minus_first": float(gain.mean()), "last_minus_first_ci95": bootstrap_ci(gain, rng)}
        if np.any(yaw):  # where the policy fails: small vs large command-frame yaw (|θ| < or ≥ π/2)
            large = np.abs(yaw) >= np.pi / 2
            summary[name]["mean_per_episode_by_yaw"] = {
                "abs_yaw_below_pi_2": returns[~large].mean(axis=0).tolist(),
                "abs_yaw_above_pi_2": returns[large].mean(axis=0).tolist(), "trials_above_pi_2": int(large.sum())}
        x = np.arange(1, episodes + 1) + 0.06 * (row - 1)  # side by side, not on top of each other
        ax.errorbar(x, means, yerr=[means - cis[:, 0], cis[:, 1] - means], marker="o", capsize=4, label=name)
        lo, hi = summary[name]["last_minus_first_ci95"]
        print(f"{name:32s} per-episode return {np.round(means, 2).tolist()}  last−first {gain.mean():+.2f} "
              f"[{lo:+.2f}, {hi:+.2f}]")
        if "mean_per_episode_by_yaw" in summary[name]:
            by = summary[name]["mean_per_episode_by_yaw"]
            print(f"{'':32s} |θ| < π/2: {np.round(by['abs_yaw_below_pi_2'], 2).tolist()}  |θ| ≥ π/2 "
                  f"({by['trials_above_pi_2']} trials): {np.round(by['abs_yaw_above_pi_2'], 2).tolist()}")
    # What memory of the world is worth, per episode and trial: the RL² policy minus its memory-reset self on the
    # same world, goal and start (episode 1 is identical by construction), free of the goal draws' noise.
    gain = rl2 - wiped
    later = gain[:, 1:].mean(axis=1)
    summary["memory_gain"] = {"per_episode": gain.mean(axis=0).tolist(),
                              "ci95_per_episode": [bootstrap_ci(gain[:, k], rng) for k in range(episodes)],
                              "episodes_2_on": float(later.mean()), "episodes_2_on_ci95": bootstrap_ci(later, rng)}
    lo, hi = summary["memory_gain"]["episodes_2_on_ci95"]
    print(f"{'memory gain (RL² − reset)':32s} per episode {np.round(gain.mean(axis=0), 3).tolist()}  episodes 2+ "
          f"{later.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
    if np.any(yaw):
        large = np.abs(yaw) >= np.pi / 2
        summary["memory_gain"]["per_episode_by_yaw"] = {"abs_yaw_below_pi_2": gain[~large].mean(axis=0).tolist(),
                                                        "abs_yaw_above_pi_2": gain[large].mean(axis=0).tolist()}
        print(f"{'':32s} |θ| < π/2: {np.round(gain[~large].mean(axis=0), 3).tolist()}  |θ| ≥ π/2: "
              f"{np.round(gain[large].mean(axis=0), 3).tolist()}")
    ax.set_xlabel("episode within the trial (same sampled world)")
    ax.set_ylabel("episode return (dense, −Σ distance)")
    ax.set_xticks(range(1, episodes + 1))
    ax.legend()
    ax.grid(alpha=0.3)
    randomized = [p["name"] for g in rl2_config.get("randomizers") or [] for p in g.get("params") or []
                  if "range" in p and p["range"][0] != p["range"][1]]
    ax.set_title(f"{rl2_config['name']}: {', '.join(randomized)}\n{args.trials} trials, 95 % bootstrap CI",
                 fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=110)
    with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as handle:
        json.dump({"trials": args.trials, "episodes_per_trial": episodes, "rl2": args.rl2, "mlp": args.mlp,
                   "seed": args.seed, **summary}, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
