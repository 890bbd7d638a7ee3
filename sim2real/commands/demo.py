"""``sim2real demo``: the README's main job on the embedded defaults.

Trains Panda Reach (SAC + HER, state observations) briefly, evaluates it, prints the success rate and where the
run was written.
"""
from __future__ import annotations

import argparse

DEMO_OVERRIDES = ("name=demo_panda_reach", "budget.total_timesteps=8000", "eval.every_steps=2000",
                  "eval.episodes=10", "checkpoint.every_steps=4000")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="train Panda Reach briefly on the embedded defaults and evaluate it")
    parser.add_argument("overrides", nargs="*", help="dotted overrides on top of the demo defaults")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes (default 50)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.launch import resolve
    from sim2real.train import evaluate_run, train

    config = resolve(None, (*DEMO_OVERRIDES, *args.overrides))
    print(f"training {config['env']['id']} with {config['algo']['name'].upper()} for "
          f"{config['budget']['total_timesteps']} steps on {config['n_envs']} environments", flush=True)
    run_dir = train(config)
    result = evaluate_run(run_dir, args.episodes)
    print(f"success rate {result.success_rate:.1%} over {result.episodes} episodes "
          f"(mean return {result.mean_return:.2f})")
    print(f"run written to {run_dir}")
    return 0
