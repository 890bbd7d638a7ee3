"""Shared test settings (single-threaded torch and headless, seeded runs) and fixtures used across test folders."""
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> str:
    """A tiny SO-101 Reach run (SAC + HER, 300 steps); quality does not matter where it is used."""
    from sim2real.launch import resolve
    from sim2real.train import train

    root = tmp_path_factory.mktemp("eval_run")
    config = resolve("launch/demo_so101_reach.yaml", [f"output_dir={root}", "budget.total_timesteps=300",
                                                      "eval.every_steps=300", "eval.episodes=2",
                                                      "checkpoint.every_steps=300", "algo.learning_starts=100"])
    return train(config, run_dir=str(root / "run"), progress=False)


TINY_RL2_REACH = """
name: tiny_so101_reach_rl2
env: {id: sim2real/SO101Reach-v0, obs_mode: state, control_mode: ee, reward_type: dense, max_episode_steps: 20}
randomizers:
  - group: dynamics
    params:
      - {name: dynamics.actuator.strength, range: [0.8, 1.2]}
policy: rl2
rl2: {episodes_per_trial: 3, rollout_steps: 60, seq_len: 20, num_minibatches: 1, epochs: 1,
      network: {hidden_size: 16, embed_size: 16}}
n_envs: 1
budget: {total_timesteps: 60}
seed: 0
"""


@pytest.fixture(scope="session")
def calibration_file(tmp_path_factory) -> str:
    """The SO-101's calibration from its spec (``sim2real calibrate --from-spec``), for the bus emulators."""
    from sim2real.cli import main

    path = tmp_path_factory.mktemp("cal") / "so101.json"
    assert main(["calibrate", "--from-spec", "--out", str(path)]) == 0
    return str(path)


@pytest.fixture(scope="session")
def tiny_rl2_run(tmp_path_factory) -> str:
    """A tiny RL² SO-101 Reach run (one 60-step iteration, trials of 3 episodes of 20 steps, dynamics randomized);
    quality does not matter where it is used."""
    from sim2real.cli import main

    root = tmp_path_factory.mktemp("rl2_run")
    (root / "launch.yaml").write_text(TINY_RL2_REACH, encoding="utf-8")
    assert main(["train", str(root / "launch.yaml"), "--run-dir", str(root / "run")]) == 0
    return str(root / "run")


@pytest.fixture
def threaded_emulator(tmp_path):
    """Factory ``threaded_emulator(build, **faults)``: the emulator ``build(profile_path)`` made from a reality
    profile (YAML file) with these ``faults``, serving in a thread of this process; all are stopped after the test."""
    import yaml

    running = []

    def start(build, **faults):
        path = tmp_path / f"reality-{len(running)}.yaml"
        path.write_text(yaml.safe_dump({"faults": faults}))
        emulator = build(str(path))
        running.append((emulator, emulator.start_thread()))
        return emulator

    yield start
    for emulator, thread in running:
        emulator.stop()
        thread.join(timeout=5)
