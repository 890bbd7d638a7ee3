"""``sim2real info``: robots, tasks, registered environments and launch files."""
from __future__ import annotations

import argparse
import glob
import os


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("info", help="list robots, tasks, environments and launch files")
    parser.add_argument("--launch-dir", help="list the launch files of this folder instead of the shipped ones")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from robots.registry import ROBOTS
    from sim2real.envs import ARM_ENVS, registered_ids
    from sim2real.launch.files import launch_names, reality_names, shipped_dir
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
    if args.launch_dir is not None:
        files = sorted(glob.glob(os.path.join(args.launch_dir, "*.yaml")))
        console.print(f"Launch files in {args.launch_dir}/: "
                      + (", ".join(os.path.basename(f) for f in files) or "none"))
        return 0
    folder = shipped_dir()
    console.print(f"Launch files ({folder}; give a name or a path): " + ", ".join(launch_names()))
    console.print(f"Reality profiles ({folder / 'realities'}; --reality NAME or path): " + ", ".join(reality_names()))
    return 0
