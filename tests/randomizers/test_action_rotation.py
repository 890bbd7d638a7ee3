"""``actuation.action_rotation``: a yaw of the command frame. Declared (nominal, default range, limits, unit, CLI),
applied exactly to the action, read back as the direction the tool really moves, reproducible by seed, and
reported in ``info["randomization"]``."""
from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import sim2real.envs  # noqa: F401  (registers the envs)
from randomizers.wrappers import ActuationRandomizer
from sim2real.cli import main

NAME = "actuation.action_rotation"
QUIET = {"actuation.latency": 0, "actuation.noise_std": 0.0, "actuation.period_jitter": 0.0, "actuation.repeat": 1}


def reach(full_circle: bool = True) -> ActuationRandomizer:
    space = [{"name": NAME, "range": [-math.pi, math.pi]}] if full_circle else None
    return ActuationRandomizer(gym.make("sim2real/PandaReach-v0"), space=space)


def test_declared_off_by_default_and_listed(capsys) -> None:
    q = ActuationRandomizer.declare()[NAME]
    assert q.nominal == 0.0 and q.range == (0.0, 0.0) and q.unit == "rad"
    assert q.limits == pytest.approx((-math.pi, math.pi))
    assert main(["randomizers", "list", "sim2real/PandaReach-v0", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[NAME]["unit"] == "rad" and not rows[NAME]["rgb_only"]


def test_action_is_rotated_in_the_xy_plane_then_clipped() -> None:
    env = reach()
    env.set_randomization_values({**QUIET, NAME: 0.7})
    env.reset(seed=0)
    env.step(np.array([0.5, 0.2, -0.3]))
    c, s = math.cos(0.7), math.sin(0.7)
    np.testing.assert_allclose(env._last_applied, [c * 0.5 - s * 0.2, s * 0.5 + c * 0.2, -0.3], atol=1e-6)
    env.set_randomization_values({NAME: math.pi / 4})
    env.reset(seed=0)
    env.step(np.array([1.0, 1.0, 0.0]))  # length √2 along +y after the rotation: clipped to the bound
    np.testing.assert_allclose(env._last_applied, [0.0, 1.0, 0.0], atol=1e-6)


def test_latency_delays_the_rotated_command() -> None:
    env = reach()
    env.set_randomization_values({**QUIET, NAME: math.pi / 2, "actuation.latency": 1})
    env.reset(seed=0)
    env.step(np.array([0.4, 0.0, 0.0]))
    np.testing.assert_allclose(env._last_applied, [0.0, 0.0, 0.0], atol=1e-9)
    env.step(np.zeros(3))
    np.testing.assert_allclose(env._last_applied, [0.0, 0.4, 0.0], atol=1e-6)


@pytest.mark.parametrize("theta", [0.0, math.pi / 2, -2.0, math.pi])
def test_the_tool_moves_in_the_rotated_direction(theta: float) -> None:
    env = reach()
    env.set_randomization_values({**QUIET, NAME: theta})
    obs, info = env.reset(seed=0)
    assert info["randomization"][NAME] == theta
    start = obs["observation"][:3].copy()
    for _ in range(3):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0]))  # "move along +x" in the policy's frame
    moved = obs["observation"][:3] - start
    assert np.linalg.norm(moved[:2]) > 0.08  # m: the arm really went somewhere
    error = math.remainder(math.atan2(moved[1], moved[0]) - theta, 2 * math.pi)
    assert abs(error) < 0.1  # rad, read back from the measured end-effector displacement


def test_sampled_per_seed_reproducibly_and_reported() -> None:
    env, twin = reach(), reach()
    for e in (env, twin):
        e.set_randomization_values(QUIET)
    values = [env.reset(seed=seed)[1]["randomization"][NAME] for seed in range(20)]
    assert values == [twin.reset(seed=seed)[1]["randomization"][NAME] for seed in range(20)]
    assert all(-math.pi <= v <= math.pi for v in values)
    assert np.ptp(values) > math.pi  # really spread over the circle
    off = reach(full_circle=False)
    assert {off.reset(seed=seed)[1]["randomization"][NAME] for seed in range(5)} == {0.0}


def test_needs_two_action_components() -> None:
    env = reach()
    env.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    env.set_randomization_values({NAME: 0.5})
    with pytest.raises(ValueError, match="action_rotation needs a vector action space"):
        env.reset(seed=0)
