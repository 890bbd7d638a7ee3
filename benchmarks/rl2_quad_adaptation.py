"""RL² on a quadcopter (issue 19 item 5): adaptation within a trial on held-out dynamics, RL² vs feed-forward.

The PandaReach experiment of ``rl2_adaptation.py`` on the Crazyflie hover: in each seeded trial the quadrotor
randomizer samples one vehicle (mass, kf, motor time constant, latency, wind, ...), then each policy flies
``episodes_per_trial`` episodes in it (``options={"randomize": False}`` between them) in the PyBullet env. Rows: the
RL² policy (GRU memory kept across the trial), the same network with its memory reset before every episode (what
memory of the vehicle is worth) and a feed-forward policy trained on the same worlds and budget. Conditions:
``train`` (the launch file's ranges) and ``heldout-dynamics`` (every quadrotor range widened around nominal by
``sim2real eval``'s factor, :func:`sim2real.evaluation.conditions.heldout_dynamics_config`). All rows of a condition
share the trials (common random numbers); deterministic actions.

Per episode index: mean return with a 95 % bootstrap CI, hold RMS (m, position error after the first second, over
episodes that did not crash) and the fraction of episodes that ended in a crash or out of bounds; the paired
last − first return difference and the memory gain (RL² − its memory-reset self) with 95 % bootstrap CIs.

    nice -n 5 .venv/bin/python benchmarks/rl2_quad_adaptation.py --rl2 RUN_DIR --mlp RUN_DIR --trials 100 \\
        --json benchmarks/results/rl2_quad_adaptation.json
    # the shipped policy instead of a run directory:
    ... --rl2 policies/zoo/crazyflie_hover_rl2_dr.pt --rl2-launch launch/crazyflie_hover_rl2_dr.yaml
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rl2_adaptation import bootstrap_ci  # noqa: E402  (the PandaReach experiment's interval)

from sim2real.env_factory import make_env_fn  # noqa: E402
from sim2real.evaluation.conditions import condition_config  # noqa: E402
from sim2real.io import atomic_write_json  # noqa: E402
from sim2real.launch import resolve  # noqa: E402
from sim2real.policy_files import load_policy  # noqa: E402

CONTROL_HZ = 48  # policy steps per second (max_episode_steps 240 = 5 s)


def fly_trials(policy, config: dict, trials: int, episodes: int, seed: int,
               forget_between_episodes: bool = False) -> dict[str, np.ndarray]:
    """(trials, episodes) arrays: ``return``, ``hold_rms_m`` (after the first second; NaN for a crashed episode)
    and ``crashed`` (the episode ended on a termination, not the time limit)."""
    env = make_env_fn(config, rank=0, seed_offset=0)()
    out = {key: np.zeros((trials, episodes)) for key in ("return", "hold_rms_m", "crashed")}
    try:
        for trial in range(trials):
            policy.reset_trial()
            for episode in range(episodes):
                if forget_between_episodes and episode > 0:
                    policy.reset_trial()
                options = None if episode == 0 else {"randomize": False}
                obs, _ = env.reset(seed=seed + trial if episode == 0 else None, options=options)
                done, total, errors, terminated = False, 0.0, [], False
                while not done:
                    obs, reward, terminated, truncated, info = env.step(policy.act(obs))
                    done = terminated or truncated
                    policy.observe(float(reward), terminated, truncated)
                    total += float(reward)
                    errors.append(float(info["position_error"]))
                held = np.asarray(errors[CONTROL_HZ:])
                out["return"][trial, episode] = total
                out["crashed"][trial, episode] = float(terminated)
                out["hold_rms_m"][trial, episode] = float(np.sqrt(np.mean(held ** 2))) \
                    if len(held) and not terminated else np.nan
    finally:
        env.close()
    return out


def summarize(flights: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
    returns = flights["return"]
    gain = returns[:, -1] - returns[:, 0]
    return {"return_per_episode": returns.mean(axis=0).tolist(),
            "return_ci95_per_episode": [bootstrap_ci(returns[:, k], rng) for k in range(returns.shape[1])],
            "last_minus_first": float(gain.mean()), "last_minus_first_ci95": bootstrap_ci(gain, rng),
            "hold_rms_m_per_episode": np.nanmean(flights["hold_rms_m"], axis=0).tolist(),
            "crash_fraction_per_episode": flights["crashed"].mean(axis=0).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rl2", required=True, help="policy: rl2 run directory, or a zoo .pt with --rl2-launch")
    parser.add_argument("--rl2-launch", default=None, help="launch file of a zoo .pt (default: RUN_DIR/launch.yaml)")
    parser.add_argument("--mlp", required=True, help="feed-forward run directory trained on the same worlds")
    parser.add_argument("--conditions", default="heldout-dynamics,train")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=500_000, help="first trial seed (training never uses these)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    rl2, rl2_config = load_policy(args.rl2, resolve(args.rl2_launch) if args.rl2_launch else None)
    mlp, _ = load_policy(args.mlp, None)
    episodes = rl2.batch.episodes_per_trial
    rng = np.random.default_rng(0)
    report: dict = {"rl2": args.rl2, "mlp": args.mlp, "trials": args.trials, "seed": args.seed,
                    "episodes_per_trial": episodes, "conditions": {}}
    for condition in args.conditions.split(","):
        config = condition_config(condition, rl2_config)
        rows = {"RL² (GRU)": fly_trials(rl2, config, args.trials, episodes, args.seed),
                "RL², memory reset every episode": fly_trials(rl2, config, args.trials, episodes, args.seed, True),
                "feed-forward (PPO)": fly_trials(mlp, config, args.trials, episodes, args.seed)}
        summary = {name: summarize(flights, rng) for name, flights in rows.items()}
        memory = rows["RL² (GRU)"]["return"] - rows["RL², memory reset every episode"]["return"]
        later = memory[:, 1:].mean(axis=1)
        summary["memory_gain"] = {"per_episode": memory.mean(axis=0).tolist(), "episodes_2_on": float(later.mean()),
                                  "episodes_2_on_ci95": bootstrap_ci(later, rng)}
        summary["ranges"] = {p["name"]: p["range"] for entry in config.get("randomizers") or []
                             if entry.get("group") == "quadrotor" for p in entry.get("params") or []}
        report["conditions"][condition] = summary
        print(f"== {condition} ({args.trials} trials x {episodes} episodes)")
        for name in rows:
            s = summary[name]
            lo, hi = s["last_minus_first_ci95"]
            print(f"{name:34s} return {np.round(s['return_per_episode'], 1).tolist()}  last−first "
                  f"{s['last_minus_first']:+.1f} [{lo:+.1f}, {hi:+.1f}]  hold RMS m "
                  f"{np.round(s['hold_rms_m_per_episode'], 3).tolist()}  crashed "
                  f"{np.round(s['crash_fraction_per_episode'], 2).tolist()}", flush=True)
        lo, hi = summary["memory_gain"]["episodes_2_on_ci95"]
        print(f"{'memory gain (RL² − reset)':34s} {np.round(memory.mean(axis=0), 2).tolist()}  episodes 2+ "
              f"{later.mean():+.2f} [{lo:+.2f}, {hi:+.2f}]", flush=True)
    report["load_average"] = os.getloadavg()
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
