"""``sim2real bench rl2-bandits|rl2-mdp``: RL² reproductions next to the paper's tables.

Without ``--eval-only`` each setting is trained (resuming from ``--run-dir``) and its weights are
written to the zoo; with it the shipped weights in ``policies/zoo`` are re-evaluated. Baselines are
always recomputed. Results can be written as JSON (``--json``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from sim2real.arguments import seed
from sim2real.errors import UserError

BANDIT_DEFAULT = "10x5,10x10,10x50,100x5,100x10,100x50"
MDP_DEFAULT = "10,25,50"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run a reproducible benchmark")
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", parser_class=type(parser))
    for name, default, helptext in (
            ("rl2-bandits", BANDIT_DEFAULT, "RL² on Bernoulli bandits (settings NxK: pulls x arms)"),
            ("rl2-mdp", MDP_DEFAULT, "RL² on random tabular MDPs (settings N: episodes per trial)")):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--configs", default=default, help=f"comma-separated settings (default {default})")
        p.add_argument("--eval-only", action="store_true", help="evaluate the shipped zoo weights, no training")
        p.add_argument("--policy-of", default=None, metavar="SETTING",
                       help="with --eval-only: evaluate the shipped policy of another setting on these trials, e.g. "
                            "--configs 500x5 --policy-of 100x5 (bandits need the same arms)")
        p.add_argument("--trials", type=int, default=1000, help="evaluation trials per setting (default 1000)")
        p.add_argument("--steps", type=int, default=None, help="override the recipe's training env steps")
        p.add_argument("--envs", type=int, default=None,
                       help="override the recipe's parallel trials per update (training only)")
        p.add_argument("--task-critic", action="store_true",
                       help="train with a privileged critic that also sees the true task (arm probabilities, or the "
                            "MDP's optimal Q-values) and the time left; the actor and the exported policy never do")
        p.add_argument("--init-from", type=Path, default=None, metavar="PT",
                       help="start training from these weights instead of from scratch, e.g. a policy trained on "
                            "shorter trials (policies/zoo/mdp_n10.pt, which also needs --task-critic); the network "
                            "must match the recipe's")
        p.add_argument("--lr", type=float, default=None, help="override the recipe's initial learning rate")
        p.add_argument("--gamma", type=float, default=None,
                       help="override the recipe's discount per step (e.g. closer to 1 for trials longer than 100 steps)")
        p.add_argument("--critic-warmup", type=int, default=None, metavar="STEPS",
                       help="train only the critic for the first STEPS env steps (useful with --init-from)")
        p.add_argument("--seed", type=seed, default=0, help="training seed (default 0)")
        p.add_argument("--run-dir", type=Path, default=Path("runs/bench"), help="training runs (default runs/bench)")
        p.add_argument("--zoo", type=Path, default=None, help="zoo folder (default: policies/zoo)")
        p.add_argument("--skip-baselines", action="store_true", help="only evaluate RL²")
        p.add_argument("--baselines-only", action="store_true", help="no RL² training or evaluation")
        p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
        p.set_defaults(handler=_handle, bench_kind=name)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def _parse_settings(kind: str, text: str) -> list[tuple[int, ...]]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            parts = tuple(int(x) for x in item.lower().split("x"))
        except ValueError:
            parts = ()
        if kind == "rl2-bandits" and (len(parts) != 2 or parts[0] < 1 or parts[1] < 2):
            raise UserError(f"--configs: bandit settings are NxK (pulls >= 1 x arms >= 2), got {item!r}")
        if kind == "rl2-mdp" and (len(parts) != 1 or parts[0] < 1):
            raise UserError(f"--configs: MDP settings are episodes per trial (integer >= 1), got {item!r}")
        out.append(parts)
    if not out:
        raise UserError("--configs: give at least one setting")
    return out


def _handle(args: argparse.Namespace) -> int:
    from policies.errors import ConfigError, PolicyFileError

    if args.trials < 2:
        raise UserError(f"--trials: expected an integer >= 2, got {args.trials}")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps: expected an integer >= 1, got {args.steps}")
    if args.critic_warmup is not None and args.critic_warmup < 0:
        raise UserError(f"--critic-warmup: expected an integer >= 0, got {args.critic_warmup}")
    if args.envs is not None and args.envs < 1:
        raise UserError(f"--envs: expected an integer >= 1, got {args.envs}")
    for flag, used in (("--envs", args.envs is not None), ("--task-critic", args.task_critic),
                       ("--init-from", args.init_from is not None), ("--lr", args.lr is not None),
                       ("--gamma", args.gamma is not None),
                       ("--critic-warmup", args.critic_warmup is not None)):
        if used and (args.eval_only or args.baselines_only):
            raise UserError(f"{flag}: only applies to training (not with --eval-only or --baselines-only)")
    if args.baselines_only and (args.skip_baselines or args.eval_only):
        raise UserError("--baselines-only: cannot be combined with --skip-baselines or --eval-only")
    settings = _parse_settings(args.bench_kind, args.configs)
    args.policy_setting = None  # the parsed --policy-of
    if args.init_from is not None and len(settings) > 1:
        raise UserError("--init-from: give one setting in --configs (the weights fit one network and one set of spaces)")
    if args.policy_of is not None:
        if not args.eval_only or args.baselines_only:
            raise UserError("--policy-of: only applies to --eval-only (it evaluates shipped weights)")
        parsed = _parse_settings(args.bench_kind, args.policy_of)
        if len(parsed) != 1:
            raise UserError(f"--policy-of: give one setting, got {args.policy_of!r}")
        source = parsed[0]
        other_arms = [s for s in settings if s[1:] != source[1:]]
        if other_arms:
            raise UserError(f"--policy-of {args.policy_of}: a policy for {source[1]} arms cannot play "
                            f"{other_arms[0][1]}-armed bandits")
        args.policy_setting = source
    try:
        return _run(args, settings)
    except (ConfigError, PolicyFileError) as err:
        raise UserError(str(err)) from None


def _run(args: argparse.Namespace, settings: list[tuple[int, ...]]) -> int:
    from rich.console import Console
    from rich.table import Table

    from policies import meta_bench as mb
    from policies.errors import ConfigError
    from sim2real.progress import progress_bars

    console = Console()
    zoo = args.zoo or mb.ZOO
    bandits = args.bench_kind == "rl2-bandits"
    naming = mb.bandit_name if bandits else mb.mdp_name
    names = [naming(*(args.policy_setting or s)) for s in settings]
    if args.eval_only and not args.baselines_only:
        missing = [n for n in names if not (zoo / f"{n}.pt").exists()]
        if len(missing) == len(names):
            have = sorted(p.stem for p in Path(zoo).glob("*.pt")) or ["none"]
            raise UserError(f"--configs: no shipped weights for {', '.join(names)} in {zoo}; "
                            f"available: {', '.join(have)}")
    table = Table(title=f"{args.bench_kind}: total reward per trial, mean ± SE over {args.trials} trials")
    for col in ("setting", "method", "this repo", "paper"):
        table.add_column(col)
    results: dict[str, Any] = {}
    with progress_bars(console=console) as bars:
        overall = bars.add(f"{args.bench_kind} settings", total=len(settings))
        for setting, name in zip(settings, names):
            label = "n={},k={}".format(*setting) if bandits else f"n={setting[0]}"
            if args.policy_setting:
                label += f" (policy of n={args.policy_setting[0]})"
            entry: dict[str, Any] = {}
            if not (args.eval_only or args.baselines_only):
                cfg = mb.bandit_config(*setting, total_steps=args.steps, seed=args.seed) if bandits \
                    else mb.mdp_config(setting[0], total_steps=args.steps, seed=args.seed)
                if args.envs is not None:
                    cfg = dataclasses.replace(cfg, num_envs=args.envs)
                    try:
                        cfg.validate()
                    except ConfigError as err:
                        raise UserError(f"--envs {args.envs}: does not fit the recipe: {err}") from None
                for flag, key, value, allowed in (("--lr", "learning_rate", args.lr, "(0, 1)"),
                                                  ("--gamma", "gamma", args.gamma, "[0, 1]")):
                    if value is not None:
                        cfg = dataclasses.replace(cfg, **{key: value})
                        try:
                            cfg.validate()
                        except ConfigError:
                            raise UserError(f"{flag}: expected a number in {allowed}, got {value}") from None
                if args.task_critic:
                    cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, critic_keys=(mb.TASK_KEY,)))
                if args.init_from is not None:
                    cfg = dataclasses.replace(cfg, init_from=str(args.init_from))
                if args.critic_warmup is not None:
                    cfg = dataclasses.replace(cfg, critic_warmup_steps=args.critic_warmup)
                privileged = mb.uses_task_features(cfg)
                env = mb.bandit_env(*setting, cfg.num_envs, args.seed, privileged) if bandits \
                    else mb.mdp_env(setting[0], cfg.num_envs, args.seed, privileged)
                task = bars.add(f"training {name}", total=cfg.total_steps)
                on_it = lambda s: bars.update(task, completed=int(s["global_step"]),  # noqa: E731
                                              status=f"trial return {s.get('trial_return_mean', float('nan')):.2f}")
                cmd = f"sim2real bench {args.bench_kind} --configs {args.configs} --seed {args.seed}" + \
                    (f" --steps {args.steps}" if args.steps else "") + (f" --envs {args.envs}" if args.envs else "") + \
                    (" --task-critic" if args.task_critic else "") + \
                    (f" --init-from {args.init_from}" if args.init_from else "") + \
                    (f" --lr {args.lr}" if args.lr else "") + \
                    (f" --gamma {args.gamma}" if args.gamma is not None else "") + \
                    (f" --critic-warmup {args.critic_warmup}" if args.critic_warmup is not None else "")
                result = mb.train(name, cfg, env, args.run_dir, zoo, on_it, command=cmd,
                                  env_description=mb.env_description(args.bench_kind, setting))
                entry["train_wall_time_s"] = result.wall_time_s
                entry["train_env_steps"] = result.global_step
            ours: dict[str, tuple[float, float]] = {}
            if not args.baselines_only and (zoo / f"{name}.pt").exists():
                bars.update(overall, status=f"{label}: RL² on {args.trials} trials")
                eval_env = mb.bandit_env(*setting, args.trials, 12345) if bandits \
                    else mb.mdp_env(setting[0], args.trials, 12345)
                ours.update(mb.evaluate_zoo(name, eval_env, zoo))
                card = mb.zoo_card(name, zoo)
                if card:
                    entry["model_card"] = card
            if not args.skip_baselines:
                bars.update(overall, status=f"{label}: baselines on {args.trials} trials")
                t0 = time.perf_counter()
                base, notes = mb.bandit_baselines(*setting, args.trials) if bandits \
                    else mb.mdp_baselines(setting[0], args.trials)
                ours.update(base)
                entry["baseline_notes"] = notes
                entry["baseline_time_s"] = time.perf_counter() - t0
            paper = mb.paper_bandit_row(*setting) if bandits and tuple(setting) in mb.PAPER_BANDITS else \
                mb.PAPER_MDP.get(setting[0], {}) if not bandits else {}
            for row in mb.format_rows(label, ours, paper):
                table.add_row(*row)
            table.add_section()
            entry["results"] = {k: {"mean": m, "se": se} for k, (m, se) in ours.items()}
            entry["paper"] = paper
            if args.policy_setting:
                entry["policy"] = name
            results[naming(*setting)] = entry
            bars.update(overall, advance=1, status=f"{label} done")
    console.print(table)
    if args.json:
        from policies.checkpoint import atomic_write_text
        atomic_write_text(json.dumps(results, indent=2) + "\n", args.json)
    return 0


def main_rl2(kind: str, argv: Sequence[str]) -> int:
    """Entry point for ``benchmarks/rl2_*.py``: the same as ``sim2real bench <kind> ...``."""
    from sim2real.cli import main

    return main(["bench", kind, *argv])


if __name__ == "__main__":
    sys.exit(main_rl2(sys.argv[1], sys.argv[2:]))
