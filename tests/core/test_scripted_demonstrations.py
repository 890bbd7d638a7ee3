"""Scripted controllers solve their tasks in simulation, and ``algo.demonstrations`` puts whole scripted episodes
into an off-policy learner's (HER) replay buffer before learning."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sim2real  # noqa: F401  (registers the envs)
from sim2real.tasks.scripted import ScriptedExpert


@pytest.mark.parametrize("env_id,episodes,least", [("sim2real/SO101Push-v0", 10, 0.7),
                                                   ("sim2real/PandaPush-v0", 10, 0.6),
                                                   ("sim2real/SO101Reach-v0", 5, 1.0)])
def test_scripted_controller_solves_its_task(env_id, episodes, least):
    env = gym.make(env_id)
    expert = ScriptedExpert(env.unwrapped.task)
    wins = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=50 + episode)
        for _ in range(50):
            action = expert.act(obs)
            assert action.dtype == np.float32 and np.all(np.abs(action) <= 1.0)
            obs, _, _, _, info = env.step(action)
        wins.append(info["is_success"])
    env.close()
    assert np.mean(wins) >= least, wins


def test_no_scripted_controller_for_pick_and_place():
    env = gym.make("sim2real/SO101PickAndPlace-v0")
    with pytest.raises(ValueError, match="no scripted controller"):
        ScriptedExpert(env.unwrapped.task)
    env.close()


def test_demonstrations_fill_the_her_buffer_with_whole_scripted_episodes(tmp_path):
    from sim2real.demonstrations import add_demonstrations, clone_actor
    from sim2real.launch import resolve
    from sim2real.train import build_model, make_vec_env

    config = resolve("launch/so101_push_state_for_vision.yaml", ["n_envs=1", "randomizers=[]"])
    env = make_vec_env(config, 1)
    try:
        model = build_model(config, env, None)
        demos = add_demonstrations(model, config, 3)
        buffer = model.replay_buffer
        assert buffer.size() == 3 * 50 and demos.success_rate >= 2 / 3  # three whole 50-step episodes, mostly solved
        assert demos.actions.shape == (150, 3) and demos.observations["observation"].shape == (150, 9)
        assert np.all(buffer.ep_length[:150, 0] == 50)  # every stored transition belongs to a finished episode
        cubes = buffer.observations["achieved_goal"][:150, 0]
        assert np.linalg.norm(cubes[49] - cubes[0]) > 0.02  # the scripted episodes moved the cube
        assert np.sum(buffer.rewards[:150, 0] == 0.0) > 0  # and reached the goal (sparse reward 0)
        assert model.num_timesteps == 0  # not counted in the budget

        def imitation_error() -> float:
            actions, _ = model.predict(demos.observations, deterministic=True)
            return float(np.mean((actions - demos.actions) ** 2))

        before = imitation_error()
        clone_actor(model, demos, steps=300, batch_size=64)
        assert imitation_error() < before / 3, (before, imitation_error())  # the actor now acts like the script
    finally:
        env.close()


def test_demonstrations_need_a_scripted_task_in_ee_state_mode():
    from sim2real.errors import UserError
    from sim2real.launch import resolve

    with pytest.raises(UserError, match="algo.demonstrations: the scripted controllers") as refused:
        resolve("launch/so101_push_state_for_vision.yaml", ["env.control_mode=joints"])
    assert "\n" not in str(refused.value)
    with pytest.raises(UserError, match="algo.bc_steps: behavior cloning needs demonstrations"):
        resolve("launch/so101_push_state_for_vision.yaml", ["algo.demonstrations=0", "algo.bc_steps=10"])
    switched = resolve("launch/so101_push_state_for_vision.yaml", ["algo.name=ppo"])  # dropped, with a note
    assert "demonstrations" not in switched["algo"] and "bc_steps" not in switched["algo"]
    with pytest.raises(UserError, match="does not apply to ppo"):  # an off-policy option, like the buffer's
        resolve("launch/so101_push_state_for_vision.yaml", ["algo.name=ppo", "algo.demonstrations=5"])
