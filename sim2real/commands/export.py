"""``sim2real export POLICY --format onnx|torchscript``: a trained policy as a graph for deployment runtimes."""
from __future__ import annotations

import argparse
import os

FORMATS = ("onnx", "torchscript")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export a trained policy to ONNX or TorchScript",
                            description="Export a policy's graph. RL² (run, .pt checkpoint or export folder): one "
                                        "step with explicit hidden-state inputs and outputs, policy.json and the "
                                        "tensors-only policy.pt beside it (what `eval` and `deploy` load). "
                                        "stable-baselines3 (run or model .zip): the deterministic actor, "
                                        "observations in, action out, described by sb3_policy.json.")
    parser.add_argument("policy", help="RL² run directory, .pt checkpoint or export folder; SB3 run directory or "
                                       "model .zip")
    parser.add_argument("--format", action="append", choices=FORMATS, required=True,
                        help="graph format (repeatable: --format onnx --format torchscript)")
    parser.add_argument("--launch", help="launch file the policy was trained with (default: the one it records)")
    parser.add_argument("--out", help="output folder (default: POLICY-export beside the policy)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.errors import UserError
    from sim2real.launch import dump, resolve
    from sim2real.policy_files import load_batch_policy, policy_kind, rl2_weights

    kind = policy_kind(args.policy)
    if kind == "vision pipeline":
        raise UserError(f"{args.policy}: a vision pipeline exports as its parts (perception CNN and state policy), "
                        "not as one graph: export its state policy's run")
    formats = tuple(dict.fromkeys(args.format))
    out = args.out or os.path.normpath(args.policy).removesuffix(".zip").removesuffix(".pt") + "-export"
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out}: exists and is not a folder")
    config = resolve(args.launch) if args.launch else None
    policy, config = load_batch_policy(args.policy, config)  # checks the file and its launch file
    if kind.startswith("RL²"):
        from policies.checkpoint import load_policy
        from policies.export import WEIGHTS_FILE, export_policy

        weights = rl2_weights(args.policy, kind)
        model, _ = load_policy(os.path.join(weights, WEIGHTS_FILE) if os.path.isdir(weights) else weights)
        folder = export_policy(model, out, formats)
    else:
        from sim2real.sb3_export import export_sb3

        folder = export_sb3(policy.model, out, formats)  # type: ignore[attr-defined]
    dump(config, os.path.join(str(folder), "launch.yaml"))  # eval and deploy find the task and robot here
    print(f"exported {kind} ({', '.join(formats)}) to {folder}")
    return 0
