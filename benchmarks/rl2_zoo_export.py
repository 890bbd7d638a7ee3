"""Ship a trained robot-task RL² run (``policy: rl2``) in ``policies/zoo/``: tensors-only weights and a model card.

The card holds the launch file (as resolved for the run), seed, env steps, iterations, training wall time, the
machine, the command and, when given, the evaluation summary written by ``benchmarks/rl2_adaptation.py``.

    python benchmarks/rl2_zoo_export.py --run /tmp/r4/rl2_adapt --name panda_reach_rl2_adapt \
        --launch launch/panda_reach_rl2_adapt.yaml --eval benchmarks/figures/rl2_adaptation.json \
        --command "sim2real train launch/panda_reach_rl2_adapt.yaml --run-dir /tmp/r4/rl2_adapt"
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from policies.checkpoint import atomic_torch_save, atomic_write_text, safe_load

ZOO = Path(__file__).resolve().parents[1] / "policies" / "zoo"


def model_card(name: str, run: Path, data: dict[str, Any], launch: str, command: str,
               evaluation: dict[str, Any] | None, machine: str) -> dict[str, Any]:
    """The card of a zoo entry made from ``run`` (checkpoint ``data`` already safe-loaded)."""
    resolved = yaml.safe_load((run / "launch.yaml").read_text())
    rows = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    card: dict[str, Any] = {
        "name": name, "env": resolved["env"], "randomizers": resolved.get("randomizers"), "launch_file": launch,
        "config": data["config"], "seed": resolved["seed"], "env_steps": int(data["global_step"]),
        "iterations": int(data["iteration"]), "train_wall_time_s": round(float(data["wall_time_s"]), 1),
        "machine": machine,
        "command": command, "last_train_trial_return": rows[-1].get("trial_return_mean") if rows else None,
    }
    if evaluation is not None:
        card["evaluation"] = evaluation
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory of a policy: rl2 run")
    parser.add_argument("--name", required=True, help="zoo entry name (files <name>.pt and <name>.json)")
    parser.add_argument("--launch", required=True, help="the launch file the run was started from")
    parser.add_argument("--command", required=True, help="the exact training command (for the card)")
    parser.add_argument("--eval", type=Path, default=None, help="JSON written by benchmarks/rl2_adaptation.py")
    parser.add_argument("--machine", default="2 shared CPU cores, torch threads = 1",
                        help="where and how it trained (for the card), e.g. load average and nice level")
    parser.add_argument("--zoo", type=Path, default=ZOO)
    args = parser.parse_args()

    data = safe_load(args.run / "checkpoint.pt")
    atomic_torch_save({"model": data["model"], "config": data["config"], "spec": data["spec"]},
                      args.zoo / f"{args.name}.pt")
    evaluation = json.loads(args.eval.read_text()) if args.eval else None
    card = model_card(args.name, args.run, data, args.launch, args.command, evaluation, args.machine)
    atomic_write_text(json.dumps(card, indent=2) + "\n", args.zoo / f"{args.name}.json")
    print(f"wrote {args.zoo / (args.name + '.pt')} and its model card")


if __name__ == "__main__":
    main()
