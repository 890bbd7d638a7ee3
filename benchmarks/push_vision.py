"""Push from camera images: what the perception costs, separated from what the state policy costs.

For a Push vision pipeline folder, runs the same seeded episodes of the camera env (training textures and held-out
textures) with four controllers: the learned state policy and the scripted pusher (``sim2real.tasks.scripted``),
each fed either the true cube/goal positions (a perfect tracker) or the pipeline's perceived ones. Prints success
rates with bootstrap 95 % intervals, final cube-goal distances and the cube/goal localization error at the
episodes' first frames, and writes every number to ``--out`` (JSON).

    python benchmarks/push_vision.py policies/zoo/so101_push_vision --episodes 100 --out /tmp/push_vision.json
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sim2real.agents import StatelessPolicy


class TrueState(StatelessPolicy):
    """Hands a state policy the true cube and goal instead of the perceived ones (same observation layout as
    :class:`~sim2real.vision.pipeline.VisionPipeline`); reads them from the envs it is given."""

    def __init__(self, state_policy, envs: list) -> None:
        self.state_policy, self.envs = state_policy, envs

    def act_batch(self, observations):
        from sim2real.vision.pipeline import state_observation

        return self.state_policy.act_batch([
            state_observation(o["proprio"], env.unwrapped.goal, env.unwrapped.world.pose("object")[0])
            for env, o in zip(self.envs, observations)])

    def goal_estimates(self):
        return None


def _ci(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    from sim2real.evaluation.stats import bootstrap_ci

    ci = bootstrap_ci(values, rng).as_dict()
    return [ci["value"], ci["ci_low"], ci["ci_high"]]


def main() -> None:
    from sim2real.envs import env_task
    from sim2real.evaluation.conditions import condition_config
    from sim2real.evaluation.simulated import run_episodes
    from sim2real.tasks.scripted import ScriptedExpert
    from sim2real.train import make_env_fn
    from sim2real.policy_files import load_batch_policy
    from sim2real.vision.pipeline import VisionPipeline
    from sim2real.vision.training import target_errors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", help="Push vision pipeline folder")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="JSON file for every number")
    args = parser.parse_args()
    pipeline, config = load_batch_policy(args.pipeline, None)
    scripted = ScriptedExpert(env_task(config["env"]["id"]))
    seeds = [args.seed + i for i in range(args.episodes)]
    rng = np.random.default_rng(args.seed)
    rows: dict = {}
    for condition in ("train", "heldout-textures"):
        cond = condition_config(condition, config)
        for source in ("true state", "perceived"):
            for name, state_policy in (("learned", pipeline.state_policy), ("scripted", scripted)):
                started = time.time()
                envs: list = []

                def make(rank: int, _envs=envs):
                    env = make_env_fn(cond, rank)()
                    _envs.append(env)
                    return env

                policy = (VisionPipeline(pipeline.perception, state_policy, pipeline.goal_filter)
                          if source == "perceived" else TrueState(state_policy, envs))
                episodes = run_episodes(make, policy, seeds, n_envs=4)
                success = np.array([e.success for e in episodes], dtype=float)
                distance = np.array([e.final_distance for e in episodes])
                rows[f"{condition} | {name} | {source}"] = {
                    "success": _ci(success, rng), "final_distance_m": float(np.median(distance)),
                    "wall_s": round(time.time() - started, 1)}
                print(f"{condition:17s} {name:9s} {source:11s} success {100 * success.mean():5.1f} % "
                      f"[{100 * rows[f'{condition} | {name} | {source}']['success'][1]:.1f}, "
                      f"{100 * rows[f'{condition} | {name} | {source}']['success'][2]:.1f}]  median final distance "
                      f"{100 * np.median(distance):.1f} cm", flush=True)
        from sim2real.vision.dataset import render_dataset

        renders = render_dataset(cond, min(args.episodes, 200), args.seed)  # the episodes' first frames
        errors = target_errors(pipeline.perception, renders.images, renders.goals)
        rows[f"{condition} | first-frame localization error (m)"] = errors
        print(f"{condition:17s} first-frame localization error: "
              + ", ".join(f"{k} {100 * v:.2f} cm" for k, v in errors.items()), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"pipeline": args.pipeline, "episodes": args.episodes, "seed": args.seed, "rows": rows}, handle,
                      indent=1)


if __name__ == "__main__":
    main()
