"""User mistakes through the real CLI (``sim2real.cli.main``): exit code 2, exactly one error line naming the flag or
launch field, nothing written where it must not be. The issue 18 "bad input" list, one case each."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim2real.cli import main
from sim2real.emulators.process import stop_process

# A valid launch file whose tiny PPO run trains in a few seconds; cases change one thing in it.
TINY = """env: {id: sim2real/SO101Reach-v0, reward_type: dense, max_episode_steps: 10}
algo: {name: ppo, n_steps: 8, batch_size: 8, n_epochs: 1, net_arch: [8]}
n_envs: 1
budget: {total_timesteps: 8}
eval: {every_steps: 1000, episodes: 1}
checkpoint: {every_steps: 1000}
"""
SAC = TINY.replace("algo: {name: ppo, n_steps: 8, batch_size: 8, n_epochs: 1, net_arch: [8]}",
                   "algo: {name: sac, batch_size: 8, net_arch: [8], learning_starts: 9}").replace(
    "reward_type: dense", "reward_type: sparse").replace("total_timesteps: 8", "total_timesteps: 12")
RPM = """env: {id: sim2real/CrazyflieHover-v0, control_mode: rpm, reward_type: dense, max_episode_steps: 20}
algo: {name: ppo, n_steps: 16, batch_size: 16, n_epochs: 1, net_arch: [8]}
n_envs: 1
budget: {total_timesteps: 16}
eval: {every_steps: 1000, episodes: 1}
checkpoint: {every_steps: 1000}
"""


@pytest.fixture(scope="module")
def rpm_run(tmp_path_factory) -> str:
    """A tiny Crazyflie hover run with motor-speed (rpm) actions, which no flight driver can carry."""
    root = tmp_path_factory.mktemp("rpm")
    (root / "launch.yaml").write_text(RPM)
    assert main(["train", str(root / "launch.yaml"), "--run-dir", str(root / "run")]) == 0
    return str(root / "run")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_run) -> str:
    """A vision pipeline for the SO-101 Reach camera env (a 1-epoch perception on 4 renders + the tiny state run)."""
    out = tmp_path_factory.mktemp("pipeline") / "p"
    assert main(["perception", "train", "launch/so101_reach_vision.yaml", "--images", "4", "--test-images", "1",
                 "--epochs", "1", "--policy", tiny_run, "--out", str(out)]) == 0
    return str(out)


@pytest.fixture
def files(tmp_path, tiny_run, rpm_run, calibration_file, pipeline) -> dict[str, str]:
    """Paths a case uses: ``file`` is a regular file (a path under it cannot be created, even as root), ``out`` a
    folder nothing may be written into, launch files with one mistake each."""
    (tmp_path / "file").write_text("a regular file")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "nested.yaml").write_text("rl2: " + "[" * 3000 + "]" * 3000 + "\n")
    (tmp_path / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    for name, source, target in (("binary_pipeline", "binary.yaml", "pipeline.json"),
                                 ("nested_pipeline", "nested.json", "pipeline.json"),
                                 ("nested_export", "nested.json", "policy.json")):
        (tmp_path / name).mkdir()
        shutil.copyfile(tmp_path / source, tmp_path / name / target)
    (tmp_path / "bare").mkdir()
    shutil.copyfile(Path(tiny_run) / "final" / "model.zip", tmp_path / "bare" / "model.zip")  # no launch.yaml beside
    out = tmp_path / "out"
    launches = {
        "name_escape": TINY + f"output_dir: {out}/a/b\nname: ../../escaped\n",
        "output_dir_file": TINY + f"output_dir: {tmp_path}/file/runs\n",
        "budget": SAC.replace("learning_starts: 9", "learning_starts: 1000") + f"output_dir: {out}\n",
        "her": SAC.replace("learning_starts: 9", "learning_starts: 3") + f"output_dir: {out}\n",
        "curriculum_options": TINY + f"output_dir: {out}\ncurriculum_options: {{p_b: 0.5}}\n",
        "visual_state": TINY + f"output_dir: {out}\nrandomizers:\n  - group: visual\n",
        "visual_quad": RPM.replace("control_mode: rpm", "obs_mode: rgb") + f"output_dir: {out}\n"
                       "randomizers:\n  - group: visual\n",
    }
    for name, text in launches.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return {"tmp": str(tmp_path), "file": str(tmp_path / "file"), "out": str(out), "run": tiny_run, "rpm": rpm_run,
            "cal": calibration_file, "log": str(out / "log.jsonl"), "pipeline": pipeline}


def _deploy(f, *extra):
    return ["deploy", f["run"], "--driver", "dynamixel", "--port", f"{f['tmp']}/no-such-port",
            "--calibration", f["cal"], "--log", f["log"], *extra]


def _eval(f, *extra):
    return ["eval", f["run"], "--conditions", "train", "--episodes", "1", "--n-envs", "1", "--videos", "0",
            "--out", f["out"], *extra]


def _perception(f, *extra):
    return ["perception", "train", "launch/so101_reach_vision.yaml", "--images", "2", "--test-images", "1",
            "--epochs", "1", *extra]


# case id → (argv from the `files` paths, text the one error line must contain)
CASES = {
    "nested-launch-yaml": (lambda f: ["train", f"{f['tmp']}/nested.yaml"], "nested deeper than"),
    "train-run-dir-under-a-file": (lambda f: ["train", "launch/so101_reach.yaml", "--run-dir", f"{f['file']}/run"],
                                   "argument --run-dir"),
    "train-run-dir-in-proc": (lambda f: ["train", "launch/so101_reach.yaml", "--run-dir", "/proc/sim2real/run"],
                              "argument --run-dir"),
    "output-dir-under-a-file": (lambda f: ["train", f"{f['tmp']}/output_dir_file.yaml"], "output_dir"),
    "eval-out-under-a-file": (lambda f: _eval(f)[:-2] + ["--out", f"{f['file']}/report"], "argument --out"),
    "deploy-log-under-a-file": (lambda f: _deploy(f)[:-2] + ["--log", f"{f['file']}/log.jsonl"], "argument --log"),
    "emulate-journal-under-a-file": (lambda f: ["emulate", "dynamixel", "--journal", f"{f['file']}/j.jsonl"],
                                     "argument --journal"),
    "emulate-crazyflie-journal-under-a-file": (
        lambda f: ["emulate", "crazyflie", "--port", "0", "--journal", f"{f['file']}/j.jsonl"], "argument --journal"),
    "emulate-link-under-a-file": (lambda f: ["emulate", "dynamixel", "--link", f"{f['file']}/tty"],
                                  "argument --link"),
    "perception-out-under-a-file": (lambda f: _perception(f, "--out", f"{f['file']}/p"), "argument --out"),
    "calibrate-out-under-a-file": (lambda f: ["calibrate", "--from-spec", "--out", f"{f['file']}/c.json"],
                                   "argument --out"),
    "emulate-robot-without-servos": (lambda f: ["emulate", "feetech", "--robot", "panda"], "--robot: robot panda"),
    "emulate-reality-binary": (lambda f: ["emulate", "dynamixel", "--reality", f"{f['tmp']}/binary.yaml"],
                               "reality profile: not UTF-8"),
    "emulate-crazyflie-reality-binary": (
        lambda f: ["emulate", "crazyflie", "--port", "0", "--reality", f"{f['tmp']}/binary.yaml"],
        "reality profile: not UTF-8"),
    "deploy-goals-file-nested": (lambda f: _deploy(f, "--goals-file", f"{f['tmp']}/nested.json"), "goals file"),
    "deploy-goals-file-binary": (lambda f: _deploy(f, "--goals-file", f"{f['tmp']}/binary.yaml"), "goals file"),
    "deploy-calibration-nested": (
        lambda f: _deploy(f)[:-4] + ["--calibration", f"{f['tmp']}/nested.json", "--log", f["log"]],
                                  "nested.json: not a calibration file"),
    "eval-seed-negative": (lambda f: _eval(f, "--seed", "-1"), "argument --seed"),
    "deploy-seed-negative": (lambda f: _deploy(f, "--seed", "-1"), "argument --seed"),
    "deploy-rate-zero": (lambda f: _deploy(f, "--rate-hz", "0"), "argument --rate-hz"),
    "deploy-steps-zero": (lambda f: _deploy(f, "--steps", "0"), "argument --steps"),
    "deploy-steps-negative": (lambda f: _deploy(f, "--steps", "-5"), "argument --steps"),
    "deploy-bus-watchdog-negative": (lambda f: _deploy(f, "--bus-watchdog", "-1"), "argument --bus-watchdog"),
    "deploy-bus-watchdog-nan": (lambda f: _deploy(f, "--bus-watchdog", "nan"), "argument --bus-watchdog"),
    "deploy-latency-nan": (lambda f: _deploy(f, "--latency-ms", "nan"), "argument --latency-ms"),
    "eval-watchdog-periods-nan": (lambda f: _eval(f, "--watchdog-periods", "nan"), "argument --watchdog-periods"),
    "name-leaves-output-dir": (lambda f: ["train", f"{f['tmp']}/name_escape.yaml"], "name: '../../escaped'"),
    "budget-below-learning-starts": (lambda f: ["train", f"{f['tmp']}/budget.yaml"], "algo.learning_starts"),
    "her-learning-starts-before-an-episode-ends": (lambda f: ["train", f"{f['tmp']}/her.yaml"],
                                                   "algo.learning_starts"),
    "curriculum-options-without-curriculum": (lambda f: ["train", f"{f['tmp']}/curriculum_options.yaml"],
                                              "curriculum_options"),
    "visual-randomizer-on-state-observations": (lambda f: ["train", f"{f['tmp']}/visual_state.yaml"],
                                                "randomizers[0] (visual)"),
    "visual-randomizer-on-a-multirotor": (lambda f: ["train", f"{f['tmp']}/visual_quad.yaml"],
                                          "randomizers[0] (visual)"),
    "eval-run-with-another-robots-launch": (lambda f: _eval(f, "--launch", "launch/panda_reach.yaml"), "--launch"),
    "eval-zip-with-another-robots-launch": (
        lambda f: ["eval", f"{f['run']}/final/model.zip", *_eval(f)[2:], "--launch", "launch/panda_reach.yaml"],
        "--launch"),
    "eval-pipeline-with-another-robots-launch": (
        lambda f: ["eval", f["pipeline"], *_eval(f)[2:], "--launch", "launch/panda_reach_rgb_dr.yaml"], "--launch"),
    "eval-pipeline-json-binary": (lambda f: ["eval", f"{f['tmp']}/binary_pipeline", *_eval(f)[2:]],
                                  "vision pipeline file: not UTF-8"),
    "eval-pipeline-json-nested": (lambda f: ["eval", f"{f['tmp']}/nested_pipeline", *_eval(f)[2:]],
                                  "vision pipeline file: nested deeper"),
    "deploy-export-policy-json-nested": (
        lambda f: ["deploy", f"{f['tmp']}/nested_export", "--launch", "launch/so101_reach.yaml", *_deploy(f)[2:]],
        "not a valid policy description"),
    "eval-bare-zip-with-another-algorithms-launch": (
        lambda f: ["eval", f"{f['tmp']}/bare/model.zip", *_eval(f)[2:], "--launch", "launch/crazyflie_hover.yaml"],
        "--launch: algo.name ppo"),
    "deploy-with-another-robots-launch": (lambda f: _deploy(f, "--launch", "launch/panda_reach.yaml"), "--launch"),
    "deploy-unknown-driver": (lambda f: _deploy(f)[:2] + ["--driver", "crazyfly"], "argument --driver"),
    "deploy-crazyflie-rpm-policy": (
        lambda f: ["deploy", f["rpm"], "--driver", "crazyflie", "--uri", "udp://127.0.0.1:9", "--log", f["log"]],
        "--driver crazyflie"),
    "eval-heldout-textures-of-a-multirotor": (
        lambda f: ["eval", f["rpm"], *_eval(f)[2:]][:3] + ["heldout-textures", *_eval(f)[4:]],
        "randomizers[0] (visual)"),
    "perception-policy-of-another-task": (lambda f: _perception(f, "--policy", f["rpm"], "--out", f["out"]),
                                          "--policy"),
    "perception-policy-missing": (lambda f: _perception(f, "--policy", "/nonexistent", "--out", f["out"]),
                                  "--policy /nonexistent"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_mistake_is_one_line_exit_2_and_writes_nothing(case, files, capsys):
    argv, names = CASES[case]
    code = main(argv(files))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and names in lines[0], (code, captured.err)
    assert lines[0].startswith("sim2real: error: ") and "Traceback" not in captured.err
    assert not Path(files["out"]).exists(), "written although the input was refused"
    assert not any(p.name.startswith("escaped") for p in Path(files["tmp"]).rglob("*"))


def test_every_deploy_driver_is_listed_in_the_refusal(files, capsys):
    assert main(_deploy(files)[:2] + ["--driver", "bogus"]) == 2
    err = capsys.readouterr().err
    assert all(f"'{driver}'" in err for driver in ("dynamixel", "feetech", "ros2", "crazyflie", "mavlink")), err


def test_cuda_without_cuda_trains_on_the_cpu_after_one_warning(files, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: nothing to warn about")
    launch = Path(files["tmp"]) / "cuda.yaml"
    launch.write_text(TINY + "device: cuda\n")
    assert main(["train", str(launch), "--run-dir", f"{files['tmp']}/cuda-run"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["sim2real: warning: device: cuda, but CUDA is not available here: training on the cpu"]


def test_emulator_on_a_non_loopback_address_warns(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "emulate", "crazyflie", "--port", "0",
                                "--host", "0.0.0.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "crazyflie emulator" in process.stdout.readline()  # serving: the warning came before this line
    finally:
        stop_process(process)
    warnings = [line for line in process.stderr.read().splitlines() if line.startswith("sim2real: warning:")]
    assert len(warnings) == 1 and "--host 0.0.0.0 is not a loopback address" in warnings[0], warnings
