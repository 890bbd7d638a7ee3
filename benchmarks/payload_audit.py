"""Audit: a payload file at every entry point that loads a policy; counts the payloads that ran (markers created).

Each payload, when unpickled, creates a marker file. The SB3 payloads sit in the model zip's ``data`` JSON (the
cloudpickle entries SB3's own ``load`` unpickles: schedule, policy class, spaces, train frequency, buffer class, last
observation and an entry SB3 never wrote); the others are pickles in ``policy.pth`` or an RL² ``.pt``, and vision
pipelines pointing outside their folder. Every entry point runs in-process through the CLI (``sim2real ...``) and
its outcome (exit code or exception type) is recorded next to whether the marker appeared.

    python benchmarks/payload_audit.py [--run RUN_DIR]
    # without --run: trains a 300-step SO-101 Reach run (SAC + HER) in a temporary folder first (~20 s)

Prints JSON: per entry point ``code_ran`` and ``outcome``, then ``entry_points`` and ``code_ran`` in total.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import cloudpickle
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
ZOO_VISION = REPO / "policies" / "zoo" / "so101_reach_vision"
PAYLOAD_KEYS = ("lr_schedule", "policy_class", "observation_space", "action_space", "train_freq",
                "replay_buffer_class", "_last_obs", "an_entry_sb3_never_wrote")


class CreatesMarker:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def rewrite_zip(zip_path: Path, replace: dict[str, bytes]) -> None:
    """Rewrite the zip in place with the entries in ``replace`` swapped for (or added as) new bytes."""
    tmp = zip_path.with_name(zip_path.name + ".tmp")
    with zipfile.ZipFile(zip_path) as old, zipfile.ZipFile(tmp, "w") as new:
        for name in old.namelist():
            new.writestr(name, replace.get(name, old.read(name)))
        for name in set(replace) - set(old.namelist()):
            new.writestr(name, replace[name])
    os.replace(tmp, zip_path)


def poison_data(zip_path: Path, marker: Path, keys: tuple[str, ...] = PAYLOAD_KEYS) -> None:
    """Put a cloudpickle payload creating ``marker`` into ``keys`` of an SB3 zip's ``data`` JSON (in place)."""
    with zipfile.ZipFile(zip_path) as archive:
        data = json.loads(archive.read("data"))
    payload = base64.b64encode(cloudpickle.dumps(CreatesMarker(str(marker)))).decode()
    data.update({key: {":serialized:": payload} for key in keys})
    rewrite_zip(zip_path, {"data": json.dumps(data).encode()})


def poison_pth(zip_path: Path, marker: Path) -> None:
    """Replace an SB3 zip's ``policy.pth`` with a torch.save of an object whose unpickling creates ``marker``."""
    buffer = io.BytesIO()
    torch.save({"mlp_extractor": CreatesMarker(str(marker))}, buffer)
    rewrite_zip(zip_path, {"policy.pth": buffer.getvalue()})


def poison_run(run: Path, marker: Path) -> None:
    """Every model zip of a run (final and checkpoints) gets the ``data`` payload."""
    for zip_path in run.rglob("model.zip"):
        poison_data(zip_path, marker)


def copy_run(run: Path, dst: Path) -> Path:
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("tb"))
    return dst


def _pipeline_to(work: Path, reference: Callable[[Path, Path], str]) -> Path:
    """A copy of the zoo's Reach vision pipeline whose ``state_policy`` is ``reference(folder, outside_run)``."""
    folder = Path(shutil.copytree(ZOO_VISION, work / "pipe"))
    shutil.rmtree(folder / "state")
    spec = json.loads((folder / "pipeline.json").read_text())
    spec["state_policy"] = reference(folder, work / "elsewhere")
    (folder / "pipeline.json").write_text(json.dumps(spec))
    return folder


def _linked_state(folder: Path, outside: Path) -> str:
    os.symlink(outside, folder / "state")
    return "state"


EVAL = ["--conditions", "train", "--episodes", "1", "--videos", "0", "--n-envs", "1"]


def entry_points(run: Path) -> dict[str, Callable[[Path, Path], list[str]]]:
    """name → (work folder, marker) → the CLI arguments, after planting the payload under ``work``."""
    def payload_run(work: Path, marker: Path) -> Path:
        poison_run(copy_run(run, work / "run"), marker)
        return work / "run"

    def eval_run(work, marker):
        return ["eval", str(payload_run(work, marker)), *EVAL, "--out", str(work / "r")]

    def eval_zip(work, marker):
        target = payload_run(work, marker)
        return ["eval", str(target / "final" / "model.zip"), "--launch", str(target / "launch.yaml"), *EVAL,
                "--out", str(work / "r")]

    def deploy_run(work, marker):
        return ["deploy", str(payload_run(work, marker)), "--driver", "dynamixel", "--port", str(work / "no-port")]

    def train_resume(work, marker):
        target = copy_run(run, work / "run")
        shutil.rmtree(target / "final")
        launch = yaml.safe_load((target / "launch.yaml").read_text())
        launch["budget"]["total_timesteps"] += 50
        (target / "launch.yaml").write_text(yaml.safe_dump(launch))
        poison_run(target, marker)
        return ["train", "--resume", str(target)]

    def pipeline_model(work, marker):
        folder = Path(shutil.copytree(ZOO_VISION, work / "pipe"))
        poison_data(folder / "state" / "final" / "model.zip", marker)
        return ["eval", str(folder), *EVAL, "--out", str(work / "r")]

    def pipeline_outside(reference):
        def plant(work, marker):
            poison_run(copy_run(run, work / "elsewhere"), marker)
            return ["eval", str(_pipeline_to(work, reference)), *EVAL, "--out", str(work / "r")]
        return plant

    def pth_pickle(work, marker):
        target = copy_run(run, work / "run")
        poison_pth(target / "final" / "model.zip", marker)
        return ["eval", str(target / "final" / "model.zip"), "--launch", str(target / "launch.yaml"), *EVAL,
                "--out", str(work / "r")]

    def rl2_pickle(work, marker):
        (work / "policy.pt").write_bytes(pickle.dumps({"model": CreatesMarker(str(marker)), "config": {},
                                                       "spec": {}}))
        return ["deploy", str(work / "policy.pt"), "--launch", str(run / "launch.yaml"), "--driver", "dynamixel",
                "--port", str(work / "no-port")]

    return {"eval RUN": eval_run, "eval X.zip --launch": eval_zip, "deploy RUN": deploy_run,
            "train --resume RUN": train_resume, "eval PIPELINE (payload state model)": pipeline_model,
            "eval PIPELINE (absolute state_policy)": pipeline_outside(lambda folder, out: str(out)),
            "eval PIPELINE (../ state_policy)": pipeline_outside(lambda folder, out: "../elsewhere"),
            "eval PIPELINE (state symlinked outside)": pipeline_outside(_linked_state),
            "eval X.zip --launch (pickle in policy.pth)": pth_pickle,
            "deploy RL2.pt --launch (pickle)": rl2_pickle}


def audit(run: Path) -> dict:
    from sim2real.cli import main

    results = {}
    for name, plant in entry_points(run).items():
        with tempfile.TemporaryDirectory() as tmp:
            work, marker = Path(tmp), Path(tmp) / "code-ran"
            args = plant(work, marker)
            sink = io.StringIO()
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    outcome = f"exit {main(args)}"
            except BaseException as err:  # noqa: BLE001  (what today's code raises is part of the finding)
                outcome = f"raised {type(err).__name__}"
            lines = sink.getvalue().strip().splitlines()
            results[name] = {"code_ran": marker.exists(), "outcome": outcome,
                             "last_line": lines[-1][:200] if lines else ""}
    return {"entries": results, "entry_points": len(results),
            "code_ran": sum(r["code_ran"] for r in results.values())}


def tiny_run(root: Path) -> Path:
    from sim2real.launch import resolve
    from sim2real.train import train

    config = resolve(str(REPO / "launch" / "demo_so101_reach.yaml"),
                     [f"output_dir={root}", "budget.total_timesteps=300", "eval.every_steps=300", "eval.episodes=2",
                      "checkpoint.every_steps=300", "algo.learning_starts=100"])
    return Path(train(config, run_dir=str(root / "run"), progress=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained SB3 run directory with a checkpoint (default: train a tiny one)")
    args = parser.parse_args()
    os.chdir(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(sys.stderr):  # training chatter stays off the JSON
            run = Path(args.run) if args.run else tiny_run(Path(tmp))
        print(json.dumps(audit(run), indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
