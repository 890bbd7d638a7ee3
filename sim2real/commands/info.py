"""``sim2real info``: robots, tasks, registered environments and launch files."""
from __future__ import annotations

import argparse
import glob
import os


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("info", help="list robots, tasks, environments and launch files")
    parser.add_argument("--launch-dir", default="launch", help="where to look for launch files (default ./launch)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from robots.registry import ROBOTS
    from sim2real.envs import ARM_ENVS, registered_ids
    from sim2real.tasks import TASKS

    console = Console()
    robots = Table("robot", "joints", "gripper", "control rate", "description", title="Robots")
    for name, factory in ROBOTS.items():
        spec = factory()
        robots.add_row(name, str(len(spec.joints)), "yes" if spec.has_gripper else "no",
                       f"{spec.control_rate_hz:g} Hz", spec.description)
    console.print(robots)
    console.print("Tasks: " + ", ".join(TASKS))
    envs = Table("environment id", "robot", "task", title="Registered environments")
    for env_id in registered_ids():
        robot, task = ARM_ENVS.get(env_id, ("", ""))
        envs.add_row(env_id, robot, task)
    console.print(envs)
    files = sorted(glob.glob(os.path.join(args.launch_dir, "*.yaml")))
    console.print(f"Launch files in {args.launch_dir}/: " + (", ".join(os.path.basename(f) for f in files) or "none"))
    return 0
