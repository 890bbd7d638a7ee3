"""ADR vs ALP-GMM vs PLR vs uniform DR on PandaReach with dynamics + actuation randomization.

Every teacher works in the same task space (the "wide box" below, which is also ADR's hard limits; ADR starts at
the nominal values). Each (teacher, seed) trains SAC + HER for the same number of env steps, then is evaluated
deterministically on one fixed, seeded held-out set of parameter vectors drawn uniformly from the wide box (wider
than every initial range) and on the nominal simulator. Success rates get bootstrap 95 % CIs over episodes.

    nice -n 10 .venv/bin/python benchmarks/curricula_compare.py --steps 12000 --seeds 0 --jobs 2
"""
from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

ENV_ID, EPISODE_STEPS, N_ENVS = "sim2real/PandaReach-v0", 30, 2
# name: (wide box low, high, ADR delta)
BOX: dict[str, tuple[float, float, float]] = {
    "dynamics.actuator.strength": (0.3, 1.7, 0.1),
    "dynamics.joint.damping": (0.0, 3.0, 0.25),
    "dynamics.joint.friction": (0.0, 3.0, 0.25),
    "dynamics.gravity.z": (-2.0, 2.0, 0.25),
    "actuation.latency": (0.0, 4.0, 1.0),
    "actuation.noise_std": (0.0, 0.3, 0.03),
}
TEACHERS: dict[str, dict[str, Any]] = {
    "uniform": {"name": "uniform"},
    "adr": {"name": "adr", "p_b": 0.5, "buffer_size": 5, "t_high": 0.8, "t_low": 0.4, "metric": "success",
            "delta": {n: d for n, (_, _, d) in BOX.items()}},
    "alp_gmm": {"name": "alp_gmm", "metric": "return", "fit_rate": 50, "bootstrap": 100, "random_ratio": 0.2,
                "k_max": 6},
    "plr": {"name": "plr", "score": "success", "capacity": 64, "min_fill": 16, "replay_prob": 0.8,
            "temperature": 0.3, "staleness_coef": 0.3},
}


def wide_space():
    """The benchmark's ParamSpace: the BOX params with range = hard limits = the wide box."""
    from randomizers.params import ParamSpace
    from randomizers.registry import default_space

    base = default_space("dynamics", "actuation").select(list(BOX))
    return ParamSpace.from_dict([{"name": n, "range": [lo, hi], "hard_limits": [lo, hi]}
                                 for n, (lo, hi, _) in BOX.items()], defaults=base)


def make_env():
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor

    import sim2real.envs  # noqa: F401
    from randomizers.wrappers import ActuationRandomizer, DynamicsRandomizer

    space = wide_space()
    env = gym.make(ENV_ID, max_episode_steps=EPISODE_STEPS)
    env = ActuationRandomizer(DynamicsRandomizer(env, space=space.prefixed("dynamics.")),
                              space=space.prefixed("actuation."))
    return Monitor(env, info_keywords=("is_success",))


def heldout(n: int, seed: int) -> list[dict[str, Any]]:
    """Fixed held-out parameter vectors, uniform over the wide box."""
    return [wide_space().sample(np.random.default_rng([seed, j])) for j in range(n)]


def evaluate(model, vectors: list[dict[str, Any] | None], seed: int) -> list[bool]:
    """One deterministic episode per vector (None = randomization off), goal seeded by the vector's index."""
    env = make_env()
    out = []
    try:
        for j, values in enumerate(vectors):
            env.get_wrapper_attr("set_randomization_enabled")(values is not None)
            if values is not None:
                env.get_wrapper_attr("set_randomization_values")(values)
            obs, info = env.reset(seed=seed + j)
            done = False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            out.append(bool(info["is_success"]))
    finally:
        env.close()
    return out


def run_one(method: str, seed: int, steps: int, out_dir: str, n_heldout: int) -> dict[str, Any]:
    import torch
    from stable_baselines3 import SAC, HerReplayBuffer
    from stable_baselines3.common.vec_env import DummyVecEnv

    from randomizers.curricula import build_teacher
    from randomizers.curricula.sb3 import CurriculumCallback

    torch.set_num_threads(1)
    run_dir = os.path.join(out_dir, f"{method}-s{seed}")
    os.makedirs(run_dir, exist_ok=True)
    for stale in ("curriculum_history.jsonl",):
        if os.path.exists(os.path.join(run_dir, stale)):
            os.remove(os.path.join(run_dir, stale))
    teacher = build_teacher(TEACHERS[method], wide_space(), n_envs=N_ENVS, seed=seed)
    env = DummyVecEnv([make_env] * N_ENVS)
    env.seed(seed)
    model = SAC("MultiInputPolicy", env, learning_rate=1e-3, gamma=0.95, batch_size=256, buffer_size=200_000,
                learning_starts=1000, tau=0.05, policy_kwargs={"net_arch": [256, 256]},
                replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                seed=seed, device="cpu", verbose=0)
    callback = CurriculumCallback(teacher, run_dir=run_dir)
    t0 = time.time()
    model.learn(steps, callback=callback)
    train_s = time.time() - t0
    env.close()
    held = evaluate(model, heldout(n_heldout, 12345), seed=50_000)
    nominal = evaluate(model, [None] * 20, seed=60_000)
    result = {"method": method, "seed": seed, "steps": steps, "train_s": train_s, "heldout": held,
              "nominal": nominal, "episodes": teacher.episodes, "final_entropy_npd": teacher.entropy(),
              "final_ranges": teacher.ranges(), "metrics": teacher.metrics()}
    with open(os.path.join(run_dir, "result.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    print(f"{method} seed {seed}: held-out {np.mean(held):.0%}  nominal {np.mean(nominal):.0%}  "
          f"({train_s:.0f} s, {teacher.episodes} episodes)", flush=True)
    return result


def bootstrap_ci(runs: list[list[bool]] | list[list[float]], n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean success and 95 % CI of a two-level percentile bootstrap: resample the training seeds, then the
    episodes within each resampled seed, so the interval covers training-seed variance as well as episodes."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(r, float) for r in runs]
    picks = rng.integers(0, len(arrays), (n, len(arrays)))
    means = np.empty(n)
    for b in range(n):
        means[b] = np.mean([rng.choice(arrays[i], len(arrays[i])).mean() for i in picks[b]])
    return float(np.mean([a.mean() for a in arrays])), float(np.percentile(means, 2.5)), \
        float(np.percentile(means, 97.5))


def paired_gap_ci(a: list[list[bool]], b: list[list[bool]]) -> tuple[float, float, float]:
    """Mean success gap a - b and its 95 % CI: the same two-level bootstrap over the per-episode differences
    (episode j of a seed uses held-out vector j for every teacher, so episodes pair up)."""
    return bootstrap_ci([list(np.asarray(x, float) - np.asarray(y, float)) for x, y in zip(a, b)])


def report(results: list[dict[str, Any]], out_dir: str, fig_dir: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from randomizers.curricula.store import read_history
    from sim2real.commands.curriculum import plot_history, series

    rows = ["| teacher | held-out success (95 % CI) | per seed | vs uniform (95 % CI) | nominal success (95 % CI) "
            "| episodes | final entropy (npd) |", "|---|---|---|---|---|---|---|"]
    by_seed = {m: {r["seed"]: r for r in results if r["method"] == m} for m in TEACHERS}
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for k, method in enumerate(TEACHERS):
        rs = [r for r in results if r["method"] == method]
        if not rs:
            continue
        m, lo, hi = bootstrap_ci([r["heldout"] for r in rs])
        nm, nlo, nhi = bootstrap_ci([r["nominal"] for r in rs])
        ent = np.mean([r["final_entropy_npd"] for r in rs])
        per_seed = ", ".join(f"{np.mean(r['heldout']):.0%}" for r in sorted(rs, key=lambda r: r["seed"]))
        shared = sorted(set(by_seed[method]) & set(by_seed.get("uniform", {})))
        gap = "—"
        if method != "uniform" and shared:
            g, glo, ghi = paired_gap_ci([by_seed[method][s]["heldout"] for s in shared],
                                        [by_seed["uniform"][s]["heldout"] for s in shared])
            gap = f"{100 * g:+.0f} [{100 * glo:+.0f}, {100 * ghi:+.0f}] pts"
        rows.append(f"| {method} | {m:.0%} [{lo:.0%}, {hi:.0%}] ({len(rs)} seeds × {len(rs[0]['heldout'])}) | "
                    f"{per_seed} | {gap} | {nm:.0%} [{nlo:.0%}, {nhi:.0%}] | "
                    f"{np.mean([r['episodes'] for r in rs]):.0f} | {ent:.2f} |")
        ax.errorbar([k], [100 * m], yerr=[[100 * (m - lo)], [100 * (hi - m)]], fmt="o", capsize=4)
    ax.set_xticks(range(len(TEACHERS)), list(TEACHERS))
    ax.set_ylabel("held-out success (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.set_title("PandaReach, wide held-out dynamics + actuation (95 % CI over seeds and episodes)", fontsize=9)
    fig.tight_layout()
    os.makedirs(fig_dir, exist_ok=True)
    fig.savefig(os.path.join(fig_dir, "curricula_heldout_success.png"), dpi=110)
    plt.close(fig)
    for r in results:
        if r["method"] == "adr":
            history = read_history(os.path.join(out_dir, f"adr-s{r['seed']}", "curriculum_history.jsonl"))
            plot_history(history, os.path.join(fig_dir, f"curricula_adr_ranges_s{r['seed']}.png"),
                         title=f"ADR ranges, seed {r['seed']}")
            _, entropy = series(history)
            rows.append(f"\nADR seed {r['seed']} entropy (env steps, npd over moved dims): "
                        + ", ".join(f"{int(t)}: {h:.2f}" for t, h in entropy[:: max(1, len(entropy) // 12)]
                                    if np.isfinite(h)))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12_000, help="env steps per (teacher, seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=list(TEACHERS), choices=list(TEACHERS))
    parser.add_argument("--heldout", type=int, default=60, help="held-out parameter vectors")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out-dir", default="runs/curricula_compare")
    parser.add_argument("--fig-dir", default="benchmarks/figures")
    parser.add_argument("--report-only", action="store_true",
                        help="no training: tabulate the result.json files already in --out-dir")
    args = parser.parse_args()
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    if args.report_only:
        paths = [os.path.join(args.out_dir, f"{m}-s{s}", "result.json") for m, s in jobs]
        results = []
        for path in paths:
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    results.append(json.load(handle))
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(run_one, *zip(*[(m, s, args.steps, args.out_dir, args.heldout) for m, s in jobs])))
    with open(os.path.join(args.out_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    print(report(results, args.out_dir, args.fig_dir))


if __name__ == "__main__":
    main()
