"""World-side support for randomization: lighting without extra renders, rebuilt bodies (size, centre of mass)
that keep their look and rest on the table, and the scene rebuild that flushes the texture cache."""
from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import sim2real.envs  # noqa: F401  (registers the envs)
from randomizers.textures import TextureSet
from randomizers.textures.pybullet_cache import PyBulletTextureCache
from randomizers.wrappers import DynamicsRandomizer, VisualRandomizer
from sim2real.sim.world import Lighting


def _render_raw(world, camera) -> np.ndarray:
    """getCameraImage without any light argument: PyBullet's own default light."""
    view = p.computeViewMatrix(camera.eye, camera.target, camera.up)
    proj = p.computeProjectionMatrixFOV(camera.fov, camera.width / camera.height, camera.near, camera.far)
    rgba = p.getCameraImage(camera.width, camera.height, view, proj, renderer=p.ER_TINY_RENDERER,
                            physicsClientId=world.client)[2]
    return np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[:, :, :3]


def test_default_lighting_is_pybullets_and_changes_render() -> None:
    env = gym.make("sim2real/PandaReach-v0", obs_mode="rgb", camera={"width": 32, "height": 32})
    u = env.unwrapped
    env.reset(seed=0)
    nominal = u.world.render(u.camera)
    np.testing.assert_array_equal(nominal, _render_raw(u.world, u.camera))  # before any light argument
    u.world.lighting = replace(Lighting(), direction=(1.0, -1.0, 0.3), ambient=0.2)
    assert np.abs(u.world.render(u.camera).astype(float) - nominal).mean() > 5.0
    u.world.lighting = Lighting()  # PyBullet keeps the last light it was given: each render must pass all of it
    np.testing.assert_array_equal(u.world.render(u.camera), nominal)


def test_rebuilt_object_keeps_look_rests_on_table_and_keeps_snapshots() -> None:
    env = gym.make("sim2real/PandaPush-v0")
    u = env.unwrapped
    world, c = u.world, u.world.client
    env.reset(seed=0)
    p.changeVisualShape(world.bodies["object"], -1, rgbaColor=[0.9, 0.1, 0.1, 1.0], physicsClientId=c)
    version = world.layout_version
    assert world.rebuild("object", 1.5, (0.01, 0.0, 0.0))
    assert not world.rebuild("object", 1.5, (0.01, 0.0, 0.0))  # unchanged: nothing rebuilt
    obj = world.bodies["object"]
    assert world.layout_version == version  # same id back: the reset snapshot still fits, no 3 ms re-save
    assert p.getCollisionShapeData(obj, -1, physicsClientId=c)[0][3] == pytest.approx((0.06, 0.06, 0.06))
    assert p.getDynamicsInfo(obj, -1, physicsClientId=c)[3] == pytest.approx((0.01, 0.0, 0.0))
    assert p.getVisualShapeData(obj, physicsClientId=c)[0][7] == pytest.approx((0.9, 0.1, 0.1, 1.0))
    env.reset(seed=1)
    for _ in range(15):
        env.step(np.zeros(env.action_space.shape))
    position, _ = world.pose("object")  # geometric centre, not the shifted centre of mass
    assert position[2] == pytest.approx(0.03, abs=1e-3)  # a 6 cm cube resting on the table, not sunk into it
    world.add_shape("extra", "sphere", (0.02,), (1, 1, 1, 1), (0.0, 0.2, 0.02))
    assert world.layout_version != version
    env.reset(seed=2)  # re-snapshots instead of failing restoreState (which needs the same bodies)
    world.remove("extra")
    env.reset(seed=3)


def test_texture_cache_flush_rebuilds_scene_and_reapplies_dynamics(tmp_path) -> None:
    base = gym.make("sim2real/PandaPush-v0", obs_mode="rgb", camera={"width": 24, "height": 24})
    cache = PyBulletTextureCache(capacity=30, cache_dir=tmp_path)
    env = VisualRandomizer(DynamicsRandomizer(base), textures=TextureSet(n_unique=10_000, size=8),
                           texture_cache=cache)
    env.set_randomization_values({"dynamics.object.mass": 3.0, "dynamics.actuator.strength": 0.5,
                                  "dynamics.object.scale": 1.2})
    u = env.unwrapped
    nominal_forces = u.robot.forces.copy()
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        obs, *_ = env.step(env.action_space.sample())
    assert cache.flushes >= 1  # ~15 new textures a reset, room for 30
    c, obj = u.world.client, u.world.bodies["object"]
    assert p.getDynamicsInfo(obj, -1, physicsClientId=c)[0] == pytest.approx(3.0 * u.task.layout.object_mass)
    assert p.getCollisionShapeData(obj, -1, physicsClientId=c)[0][3][0] == pytest.approx(0.048)
    np.testing.assert_allclose(u.robot.forces, np.maximum(nominal_forces * 0.5 - info["randomization"][
        "dynamics.joint.friction"], 0.0))
    assert p.getNumBodies(physicsClientId=c) == len(u.world.bodies) + 1  # + the robot: nothing left over
    assert cache.loaded(c) <= 30 and obs["image"].std() > 0
