"""Object restitution is a physical property of the object-table contact, not just a number PyBullet stores:
Bullet multiplies both bodies' restitutions, so this fails if the table's own restitution is 0."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet as p

import sim2real.envs  # noqa: F401  (registers the envs)
from randomizers.wrappers import DynamicsRandomizer


def _rebound(restitution: float) -> float:
    """Highest point (m above its resting height) the cube reaches after being dropped from 10 cm."""
    env = DynamicsRandomizer(gym.make("sim2real/PandaPush-v0"),
                             DynamicsRandomizer.declare().select(["dynamics.object.restitution"]))
    env.set_randomization_values({"dynamics.object.restitution": restitution})
    env.reset(seed=0)
    world = env.unwrapped.world
    c, cube = world.client, world.bodies["object"]
    rest = p.getBasePositionAndOrientation(cube, physicsClientId=c)[0]
    p.resetBasePositionAndOrientation(cube, (0.1, 0.2, rest[2] + 0.1), (0, 0, 0, 1), physicsClientId=c)
    heights, landed = [], False
    for _ in range(400):
        p.stepSimulation(physicsClientId=c)
        z = p.getBasePositionAndOrientation(cube, physicsClientId=c)[0][2] - rest[2]
        landed = landed or z < 0.002
        heights.append(z if landed else 0.0)
    env.close()
    return max(heights)


def test_restitution_makes_the_object_bounce_off_the_table() -> None:
    dead, lively = _rebound(0.0), _rebound(0.8)
    assert dead < 0.003
    assert lively > 0.03  # ~0.8^2 of the 10 cm drop in theory; Bullet loses some
    assert np.isfinite([dead, lively]).all()
