"""SO-101 Push through the HAL, the safety layer and the Dynamixel emulator: the cube lives in an emulated workspace
and moves only where the measured arm pushes it."""
from __future__ import annotations

import os

import numpy as np
import pytest

from sim2real.deploy.log import read_log
from sim2real.envs import env_task
from sim2real.tasks.scripted import ScriptedExpert

TINY_PUSH = """name: so101_push_tiny
env:
  id: sim2real/SO101Push-v0
  obs_mode: {obs_mode}
  control_mode: ee
  reward_type: sparse
algo:
  name: ppo
  n_steps: 64
  batch_size: 32
  n_epochs: 1
  net_arch: [32, 32]
n_envs: 1
budget:
  total_timesteps: 64
eval:
  every_steps: 64
  episodes: 1
checkpoint:
  every_steps: 64
seed: 0
"""
PUSH = {"env": {"id": "sim2real/SO101Push-v0", "obs_mode": "state", "control_mode": "ee", "reward_type": "sparse",
                "max_episode_steps": 50}}


class Pusher(ScriptedExpert):
    """The toolkit's scripted Push controller, recording every observation it is given."""

    def __init__(self) -> None:
        super().__init__(env_task("sim2real/SO101Push-v0"))
        self.seen: list[dict[str, np.ndarray]] = []

    def act_batch(self, observations: list[dict[str, np.ndarray]]) -> np.ndarray:
        self.seen.extend(observations)
        return super().act_batch(observations)


def test_push_runs_in_the_emulated_condition_and_the_cube_is_what_is_measured(tmp_path):
    from sim2real.evaluation.emulated import check_emulatable, run_emulated

    check_emulatable(PUSH)
    policy = Pusher()
    episodes, facts = run_emulated(policy, PUSH, episodes=2, seed=3, workdir=str(tmp_path))
    assert facts["trips"] == [] and facts["camera"] is None
    assert len(episodes) == 2 and all(np.isfinite(e.final_distance) for e in episodes)
    moved, progress = [], []  # m the cube moved; final / initial distance to the goal
    for i, episode in enumerate(episodes):
        records = read_log(os.path.join(facts["logs"], f"deploy_log_{i:03d}.jsonl"))
        steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
        goal = np.array(next(r for r in records if r["type"] == "episode")["goal"])
        # the observations of this episode (each episode's loop first warms the policy up with one untimed call)
        seen = policy.seen[i * (1 + len(steps)) + 1: (i + 1) * (1 + len(steps))]
        cubes = np.array([o["achieved_goal"] for o in seen])
        assert np.allclose(cubes, [o["observation"][6:9] for o in seen])  # achieved goal = the cube
        assert np.allclose([o["desired_goal"] for o in seen], goal, atol=1e-6)
        # the loop's distances are the cube's, not the tool's
        distances = np.array([s["distance"] for s in steps])
        assert np.allclose(distances, np.linalg.norm(cubes - goal, axis=1), atol=1e-5)
        tools = np.array([s["ee"] for s in steps])
        assert np.abs(distances - np.linalg.norm(tools - goal, axis=1)).max() > 0.02
        # the final distance is read one period after the last step: the cube barely moves in 40 ms
        assert episode.final_distance == pytest.approx(distances[-1], abs=0.02)
        assert cubes[0][2] == pytest.approx(0.0125, abs=1e-3)  # placed on the table
        moved.append(float(np.linalg.norm(cubes[-1][:2] - cubes[0][:2])))
        progress.append(episode.final_distance / float(np.linalg.norm(cubes[0] - goal)))
    assert max(moved) > 0.01, moved  # the arm pushed the cube ...
    assert min(progress) < 0.5, progress  # ... toward the goal


def test_emulated_condition_refuses_tasks_the_emulator_cannot_stand_in_for():
    from sim2real.errors import UserError
    from sim2real.evaluation.emulated import check_emulatable

    check_emulatable({"env": {"id": "sim2real/SO101PushObjectPosition-v0"}})
    with pytest.raises(UserError, match="reach and push tasks only") as refused:
        check_emulatable({"env": {"id": "sim2real/SO101PickAndPlace-v0"}})
    assert "\n" not in str(refused.value)


@pytest.fixture(scope="module")
def tiny_push(tmp_path_factory):
    """Factory: a 64-step PPO Push run directory (state or rgb observations; it pushes nothing on purpose)."""
    from sim2real.cli import main

    runs: dict[str, str] = {}

    def make(obs_mode: str) -> str:
        if obs_mode not in runs:
            root = tmp_path_factory.mktemp(f"push_{obs_mode}")
            launch = root / "launch.yaml"
            launch.write_text(TINY_PUSH.format(obs_mode=obs_mode) + f"output_dir: {root}\n")
            assert main(["train", str(launch), "--run-dir", str(root / "run")]) == 0
            runs[obs_mode] = str(root / "run")
        return runs[obs_mode]

    return make


def test_a_push_camera_policy_deploys_on_the_emulated_arm_with_the_cube_in_its_workspace(tiny_push, emulator,
                                                                                       calibration_file, tmp_path,
                                                                                       capsys):
    from sim2real.cli import main

    em = emulator("dynamixel")
    log = tmp_path / "log.jsonl"
    code = main(["deploy", tiny_push("rgb"), "--driver", "dynamixel", "--port", em.port, "--calibration",
                 calibration_file, "--camera", "render", "--episodes", "2", "--steps", "10", "--overrun-periods", "5",
                 "--log", str(log)])
    assert code == 0, capsys.readouterr().out
    records = read_log(str(log))
    episodes = [r for r in records if r["type"] == "episode"]
    steps = [r for r in records if r["type"] == "step" and r["phase"] == "policy"]
    assert len(episodes) == 2 and len(steps) == 20 and all(0.0 <= s["image_age"] < 0.2 for s in steps)
    for s in steps:  # the distance is the cube's, not the tool's; the cube starts off the goal (never solved)
        goal = np.array(episodes[s["episode"]]["goal"])
        assert abs(s["distance"] - float(np.linalg.norm(np.array(s["ee"]) - goal))) > 1e-3
        assert s["step"] > 0 or s["distance"] >= 0.03
    assert len({round(s["image_mean"], 3) for s in steps}) > 1


def test_push_without_a_camera_or_with_fixed_goals_is_refused_in_one_line(tiny_push, calibration_file, capsys):
    from sim2real.cli import main

    state = tiny_push("state")
    assert main(["deploy", state, "--driver", "dynamixel", "--port", "/dev/null", "--calibration",
                 calibration_file]) == 2
    err = capsys.readouterr().err.strip()
    assert "no object tracker" in err and "\n" not in err
    assert main(["deploy", tiny_push("rgb"), "--driver", "dynamixel", "--port", "/dev/null", "--calibration",
                 calibration_file, "--camera", "render", "--goal=-0.06,0,0.0125"]) == 2
    err = capsys.readouterr().err.strip()
    assert "fixed goals are for reach" in err and "\n" not in err
