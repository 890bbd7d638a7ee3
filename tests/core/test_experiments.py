"""The physics-experiment envs (issue 24): blocks, masses vs difficulty, answer scoring, budget, towers' glue."""
import json
import math

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest
from gymnasium.utils.env_checker import check_env

import sim2real  # noqa: F401
from sim2real.envs.experiment_env import EXPERIMENT_ENVS, ExperimentRandomizer
from sim2real.tasks.experiment_scripted import KnockDown, PokeAll
from sim2real.tasks.experiments import (ANSWER_GATE, EASY_MASS_RATIO, HARD_MASS_RATIO, LIGHTEST_FRACTION, MAX_TOWER,
                                        heavier_masses, mass_ratio, tower_groups, tower_height_limit)


def _answer(env, choice: int | None) -> np.ndarray:
    """An action that holds the arm still and answers ``choice`` (or does not answer with None)."""
    task = env.unwrapped.task
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[-(1 + task.n_choices)] = -1.0 if choice is None else 1.0
    if choice is not None:
        action[-task.n_choices + choice] = 1.0
    return action


def _play(env, player, seed: int):
    obs, _ = env.reset(seed=seed)
    player.reset()
    while True:
        obs, reward, terminated, truncated, info = env.step(player.act(obs))
        if terminated or truncated:
            return reward, info


@pytest.mark.parametrize("env_id", sorted(EXPERIMENT_ENVS))
def test_experiment_envs_pass_the_gymnasium_checker(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_mass_ratio_follows_difficulty_and_the_heaviest_is_unique():
    assert mass_ratio(0.0) == pytest.approx(EASY_MASS_RATIO) and mass_ratio(1.0) == pytest.approx(HARD_MASS_RATIO)
    assert all(mass_ratio(a) > mass_ratio(b) for a, b in zip(np.linspace(0, 0.9, 10), np.linspace(0.1, 1, 10)))
    rng = np.random.default_rng(0)
    for difficulty in (0.0, 0.3, 1.0):
        for _ in range(50):
            masses = np.sort(heavier_masses(5, difficulty, 0.2, rng))
            assert masses[-1] / masses[-2] == pytest.approx(mass_ratio(difficulty))
            assert masses[-2] == pytest.approx(0.2) and masses[0] >= LIGHTEST_FRACTION * 0.2 - 1e-12
    heaviest = [int(np.argmax(heavier_masses(3, 0.5, 1.0, rng))) for _ in range(600)]
    assert np.bincount(heaviest, minlength=3).min() > 150  # the heavy block's place tells nothing


def test_heavier_blocks_spawn_at_rest_with_the_drawn_masses():
    env = ExperimentRandomizer(gym.make("sim2real/SO101Heavier-v0"))
    base = env.unwrapped
    env.set_randomization_values({"experiment.difficulty": 1.0, "experiment.block.mass": 2.0})
    obs, info = env.reset(seed=3)
    task, world = base.task, base.world
    half = task.layout.object_size / 2
    positions = np.array([world.pose(n)[0] for n in task.block_names])
    np.testing.assert_allclose(positions[:, 2], half, atol=1e-6)
    assert np.all(positions[:, 0] > base.robot.read_state().ee_position[0] + half)  # in front of the tool
    assert np.all(np.diff(positions[:, 1]) > task.layout.object_size)  # a row, not touching
    masses = [p.getDynamicsInfo(world.bodies[n], -1, physicsClientId=world.client)[0] for n in task.block_names]
    np.testing.assert_allclose(masses, task.masses)
    ordered = np.sort(masses)
    assert ordered[-1] / ordered[-2] == pytest.approx(HARD_MASS_RATIO)
    assert ordered[-2] == pytest.approx(2.0 * task.layout.object_mass)
    assert info["correct_answer"] == int(np.argmax(masses)) and not info["answered"]
    np.testing.assert_allclose(obs[6:6 + 12].reshape(3, 4)[:, :3], positions, atol=1e-6)  # no mass in sight
    assert obs.shape == (6 + 4 * 3 + 1,) and obs[-1] == 1.0


def test_block_colours_are_drawn_per_block_independently_of_mass():
    env = ExperimentRandomizer(gym.make("sim2real/PandaHeavier-v0"))
    base = env.unwrapped
    looks = []
    for seed in range(4):
        env.reset(seed=seed)
        colours = [p.getVisualShapeData(base.world.bodies[n], physicsClientId=base.world.client)[0][7][:3]
                   for n in base.task.block_names]
        assert len({tuple(np.round(c, 6)) for c in colours}) == 3  # every block looks different
        looks.append(colours[base.task.correct])
    assert len({tuple(np.round(c, 6)) for c in looks}) == 4  # the heaviest has no colour of its own


def test_answer_scores_plus_one_or_minus_one_and_ends_the_episode():
    env = gym.make("sim2real/PandaHeavier-v0")
    _, info = env.reset(seed=0)
    right = info["correct_answer"]
    _, reward, terminated, truncated, info = env.step(_answer(env, right))
    assert (reward, terminated, truncated, info["is_success"], info["answer"]) == (1.0, True, False, True, right)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(_answer(env, (right + 1) % 3))
    assert (reward, terminated, info["is_success"], info["answered"]) == (-1.0, True, False, True)
    env.reset(seed=0)
    gate_below = _answer(env, right)
    gate_below[-4] = ANSWER_GATE - 0.01  # not above the gate: no answer
    assert env.step(gate_below)[1:3] == (0.0, False)
    nan = np.full(env.action_space.shape, np.nan, dtype=np.float32)  # a NaN action holds and never answers
    _, reward, terminated, _, info = env.step(nan)
    assert (reward, terminated, info["answered"]) == (0.0, False, False)


def test_the_budget_ends_an_unanswered_episode_as_wrong_and_the_time_limit_truncates():
    env = gym.make("sim2real/SO101Heavier-v0", budget=6)
    obs, _ = env.reset(seed=1)
    rewards = []
    for step in range(6):
        obs, reward, terminated, truncated, info = env.step(_answer(env, None))
        rewards.append(reward)
        assert obs[-1] == pytest.approx(1 - (step + 1) / 6)
        assert terminated == (step == 5)
    assert rewards == [0.0] * 5 + [-1.0] and not info["answered"] and not info["is_success"]
    short = gym.make("sim2real/SO101Heavier-v0", max_episode_steps=4)
    short.reset(seed=1)
    for _ in range(4):
        _, reward, terminated, truncated, _ = short.step(_answer(short, None))
    assert (reward, terminated, truncated) == (0.0, False, True)


def test_poke_all_feels_the_heaviest_block():
    """The contact force tells the masses apart: the scripted experimenter is always right on easy worlds, and it
    counts every block as poked."""
    env = ExperimentRandomizer(gym.make("sim2real/PandaHeavier-v0"))
    env.set_randomization_values({"experiment.difficulty": 0.0})
    player = PokeAll(env.unwrapped.task)
    for seed in range(4):
        reward, info = _play(env, player, seed)
        assert reward == 1.0 and info["poked"] == 3


def test_tower_heights_and_body_counts_follow_difficulty():
    assert [tower_height_limit(d) for d in (0.0, 0.5, 1.0)] == [2, 4, MAX_TOWER]
    rng = np.random.default_rng(0)
    groups = [tower_groups(5, rng) for _ in range(400)]
    assert all(g[0] == 0 and all(b - a in (0, 1) for a, b in zip(g, g[1:])) for g in groups)
    glued = np.mean([a == b for g in groups for a, b in zip(g, g[1:])])
    assert abs(glued - 0.5) < 0.05


def test_glued_tower_blocks_move_as_one_body_and_the_count_is_the_answer():
    env = ExperimentRandomizer(gym.make("sim2real/PandaTowers-v0"))
    env.set_randomization_values({"experiment.difficulty": 1.0})
    base = env.unwrapped
    player = KnockDown(base.task)
    seen_glued = seen_loose = 0
    for seed in range(12):
        _, info = env.reset(seed=seed)
        task, world = base.task, base.world
        if not (task.height >= 3 and len(set(task.groups)) >= 2):
            continue
        assert info["correct_answer"] == len(set(task.groups)) - 1
        start = [world.pose(n)[0] for n in task.block_names]
        reward, info = _play(env, player, seed)
        moved = False
        for level in range(1, task.height):
            lower, upper = (world.pose(task.block_names[i]) for i in (level - 1, level))
            rotation = np.array(p.getMatrixFromQuaternion(lower[1])).reshape(3, 3)
            offset = np.linalg.norm(rotation.T @ (upper[0] - lower[0]) - (0, 0, task.layout.object_size))
            if task.groups[level] == task.groups[level - 1]:
                assert offset < 0.003  # glued: still stacked as it was
                seen_glued += 1
            else:
                seen_loose += 1
            moved |= np.linalg.norm(world.pose(task.block_names[level])[0] - start[level]) > 0.02
        assert moved  # the tower was knocked over
        for level in range(task.height, MAX_TOWER):  # the spare blocks stay held under the table
            np.testing.assert_allclose(world.pose(task.block_names[level])[0], start[level], atol=1e-3)
        if seen_glued and seen_loose >= 2:
            break
    assert seen_glued and seen_loose


def test_experiment_params_are_listed_and_difficulty_is_a_curriculum_param():
    from randomizers.registry import default_space

    space = default_space("experiment")
    difficulty = space["experiment.difficulty"]
    assert difficulty.limits == (0.0, 1.0) and not math.isinf(difficulty.limits[1])
    assert {"experiment.block.mass", "experiment.block.friction", "experiment.block.color_r"} <= set(space.names)


def test_rl2_smoke_trains_and_its_run_plays_an_episode(tmp_path):
    from sim2real.cli import main
    from sim2real.policy_files import load_policy

    launch = tmp_path / "heavier.yaml"
    launch.write_text("env: {id: sim2real/SO101Heavier-v0, max_episode_steps: 50}\n"
                      "randomizers: [{group: experiment}]\npolicy: rl2\n"
                      "rl2: {episodes_per_trial: 1, rollout_steps: 50, seq_len: 25, epochs: 1, num_minibatches: 1, "
                      "network: {hidden_size: 16, encoder_sizes: [16]}}\n"
                      "n_envs: 2\nbudget: {total_timesteps: 200}\neval: {every_steps: 100000, episodes: 1}\n")
    run_dir = tmp_path / "run"
    assert main(["train", str(launch), "--run-dir", str(run_dir)]) == 0
    policy, config = load_policy(str(run_dir), None)
    env = gym.make(config["env"]["id"])
    obs, _ = env.reset(seed=0)
    policy.reset_trial()
    for _ in range(50):
        action = policy.act(obs)
        assert action.shape == env.action_space.shape
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(reward, terminated, truncated)
        if terminated or truncated:
            break
    assert terminated or truncated


@pytest.mark.parametrize("name", ["so101_heavier_rl2", "so101_heavier_ppo", "so101_heavier_rl2_bc", "panda_heavier_rl2",
                                  "so101_towers_rl2"])
def test_shipped_experiment_launch_files_resolve(name):
    from sim2real.launch import resolve

    config = resolve(name)
    assert config["env"]["id"] in EXPERIMENT_ENVS and config["randomizers"][0]["group"] == "experiment"


def test_randomizers_list_shows_the_experiment_group(capsys):
    from sim2real.cli import main

    assert main(["randomizers", "list", "sim2real/PandaTowers-v0", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert "experiment.difficulty" in names and "dynamics.actuator.strength" in names


def test_poke_until_sure_stops_early_on_easy_worlds_and_stays_right():
    env = ExperimentRandomizer(gym.make("sim2real/SO101Heavier-v0"))
    env.set_randomization_values({"experiment.difficulty": 0.0})
    player = PokeAll(env.unwrapped.task, stop_ratio=2.0)
    poked = []
    for seed in range(4):
        reward, info = _play(env, player, seed)
        assert reward == 1.0
        poked.append(info["poked"])
    assert min(poked) == 2 and max(poked) <= 3  # the heavy block among the first two: no third poke
