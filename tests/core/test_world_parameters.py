"""``critic_sees_world``: the critic of an RL² policy sees the trial's sampled randomization values (key ``world``),
the actor and exports never do; values follow the trial, not the episode."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import sim2real.envs  # noqa: F401  (registers the envs)
from policies.trial import TrialWrapper
from randomizers.wrappers import ActuationRandomizer, DynamicsRandomizer
from sim2real.cli import main
from sim2real.envs.privileged import WORLD_KEY, WorldParameters

ROTATION = "actuation.action_rotation"
LAUNCH = "launch/panda_reach_rl2_adapt.yaml"


def _rotated_reach() -> WorldParameters:
    env = ActuationRandomizer(gym.make("sim2real/PandaReach-v0"),
                              space=[{"name": ROTATION, "range": [-2.0, 2.0]}])
    return WorldParameters(env)


def test_world_is_the_sampled_value_scaled_by_the_hard_limits():
    env = _rotated_reach()
    try:
        index = env.names.index(ROTATION)
        obs, info = env.reset(seed=3)
        theta = info["randomization"][ROTATION]
        assert theta != 0.0 and env.observation_space.contains(obs)
        assert obs[WORLD_KEY][index] == pytest.approx(theta / math.pi, abs=1e-6)  # limits ±π → ±1
        obs, *_ = env.step(env.action_space.sample())
        assert obs[WORLD_KEY][index] == pytest.approx(theta / math.pi, abs=1e-6)
        env.env.set_randomization_values({ROTATION: -1.0})
        obs, _ = env.reset()
        assert obs[WORLD_KEY][index] == pytest.approx(-1.0 / math.pi, abs=1e-6)
    finally:
        env.close()


def test_world_keeps_the_trial_value_across_inner_episodes():
    env = TrialWrapper(_rotated_reach(), episodes_per_trial=2)
    try:
        index = env.env.names.index(ROTATION)
        obs, _ = env.reset(seed=5)
        first = obs[WORLD_KEY][index]
        seen = {round(float(first), 6)}
        terminated = False
        while not terminated:
            obs, _, terminated, _, info = env.step(env.action_space.sample())
            if not terminated:
                seen.add(round(float(obs[WORLD_KEY][index]), 6))
        assert seen == {round(float(first), 6)}  # the second episode ran in the same world
        obs, _ = env.reset()
        assert obs[WORLD_KEY][index] != pytest.approx(first)  # a new trial draws a new world
    finally:
        env.close()


def test_factor_params_are_scaled_by_half_their_hard_limit_span():
    env = WorldParameters(DynamicsRandomizer(gym.make("sim2real/PandaReach-v0"),
                                             space=[{"name": "dynamics.actuator.strength", "range": [0.5, 1.5]}]))
    try:
        obs, info = env.reset(seed=1)
        assert np.all(np.isfinite(obs[WORLD_KEY]))
        strength = info["randomization"]["dynamics.actuator.strength"]
        assert strength != 1.0
        index = env.names.index("dynamics.actuator.strength")  # hard limits ×[0.05, 5], nominal ×1
        assert obs[WORLD_KEY][index] == pytest.approx((strength - 1.0) / 2.475, abs=1e-6)
    finally:
        env.close()


def test_world_needs_randomizers():
    with pytest.raises(ValueError, match="no continuous randomization Param"):
        WorldParameters(gym.make("sim2real/PandaReach-v0"))


def test_rl2_with_world_critic_trains_and_the_actor_never_sees_the_world(tmp_path):
    from policies.checkpoint import load_policy
    from policies.runner import PolicyRunner

    run_dir = tmp_path / "rl2"
    smoke = ["budget.total_timesteps=150", "rl2.rollout_steps=150", "rl2.seq_len=50", "rl2.network.hidden_size=16",
             "rl2.network.embed_size=16", "n_envs=1", "rl2.num_minibatches=1", "env.max_episode_steps=50"]
    assert main(["train", LAUNCH, *smoke, "--run-dir", str(run_dir)]) == 0
    model, cfg = load_policy(run_dir / "checkpoint.pt")
    assert model.asymmetric and cfg.network.critic_keys == (WORLD_KEY,)
    runner = PolicyRunner.load(run_dir / "checkpoint.pt", deterministic=True)
    assert WORLD_KEY not in [p.key for p in runner.spec.obs_parts]
    env = gym.make("sim2real/PandaReach-v0")
    try:
        obs, _ = env.reset(seed=0)
        assert runner.act(obs).shape == (3,)  # a deployment has no world to give
    finally:
        env.close()


@pytest.mark.parametrize("overrides,fragment", [
    (["policy=mlp", "rl2=null"], "critic_sees_world: needs policy: rl2 and randomizers"),
    (["randomizers=[]"], "critic_sees_world: needs policy: rl2 and randomizers"),
    (["rl2.network.critic_keys=[world]"], "critic_sees_world: true (it sees `world`) instead"),
])
def test_world_critic_launch_errors_are_one_line(overrides, fragment, capsys):
    assert main(["train", LAUNCH, *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err
