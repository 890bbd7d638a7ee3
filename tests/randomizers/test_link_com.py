"""Robot link centre-of-mass randomization: PyBullet cannot move a centre of mass in place, so the robot is
reloaded from a rewritten URDF; what the reload must keep (joint state, textures, other randomized dynamics) and
what it must not leak (offsets after randomization is switched off)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet as p

import sim2real.envs  # noqa: F401  (registers the envs)
from randomizers.wrappers import DynamicsRandomizer
from robots.pybullet_builder import urdf_path, urdf_with_com_offset
from robots.registry import get_robot_spec

COM = [f"dynamics.link.com_{a}" for a in "xyz"]


def _randomized(env_id: str = "sim2real/PandaReach-v0") -> gym.Env:
    space = DynamicsRandomizer.declare().select([*COM, "dynamics.link.mass"])
    for name in COM:
        space = space.with_range(name, -0.02, 0.02)
    return DynamicsRandomizer(gym.make(env_id), space)


def _links(env: gym.Env, field: int) -> np.ndarray:
    u = env.unwrapped
    body, c = u.robot.handle.body, u.world.client
    return np.array([p.getDynamicsInfo(body, link, physicsClientId=c)[field]
                     for link in range(-1, p.getNumJoints(body, physicsClientId=c))], dtype=float)


def test_offsets_read_back_on_every_link_with_the_other_dynamics_reapplied() -> None:
    env = _randomized()
    env.set_randomization_enabled(False)
    env.reset(seed=0)
    com0, mass0 = _links(env, 3), _links(env, 0)
    env.set_randomization_enabled(True)
    for seed in range(4):
        _, info = env.reset(seed=seed)
        values = info["randomization"]
        offset = np.array([values[n] for n in COM])
        assert np.abs(offset).max() > 0 and np.abs(offset).max() <= 0.02
        np.testing.assert_allclose(_links(env, 3) - com0, np.tile(offset, (len(com0), 1)), atol=1e-9)
        moving = mass0 > 0  # the fixed base keeps mass 0; every other link gets the sampled factor
        np.testing.assert_allclose(_links(env, 0)[moving], mass0[moving] * values["dynamics.link.mass"])
    env.set_randomization_enabled(False)
    env.reset(seed=9)
    np.testing.assert_array_equal(_links(env, 3), com0)  # nothing left over: back to the URDF's values
    env.close()


def test_same_seed_same_world_and_a_moved_com_changes_the_motion() -> None:
    def path(env: gym.Env, seed: int) -> np.ndarray:
        env.reset(seed=seed)
        return np.array([env.step(np.array([1.0, -0.5, 0.8], dtype=np.float32))[0]["observation"][:3]
                         for _ in range(15)])

    a, b = _randomized(), _randomized()
    np.testing.assert_array_equal(path(a, 3), path(b, 3))
    a.unwrapped.rebuild_robot((0.0, 0.0, 0.0))  # reference: the URDF's centres of mass, same seed otherwise
    a.set_randomization_values({name: 0.0 for name in COM})
    nominal = path(a, 3)
    a.set_randomization_values({name: 0.05 for name in COM})
    assert not np.array_equal(path(a, 3), nominal)


def test_reload_keeps_joint_state_and_looks_mid_episode() -> None:
    env = gym.make("sim2real/PandaReach-v0")
    u = env.unwrapped
    env.reset(seed=1)
    env.action_space.seed(0)
    for _ in range(5):
        env.step(env.action_space.sample())
    c = u.world.client
    plain = u.world.render(u.camera)
    texture = p.loadTexture(_texture_file(), physicsClientId=c)
    for link in range(-1, 8):  # colors everywhere, a texture on link 3
        p.changeVisualShape(u.robot.handle.body, link, rgbaColor=(0.2, 0.1 * (link + 2), 0.6, 1), physicsClientId=c)
    p.changeVisualShape(u.robot.handle.body, 3, textureUniqueId=texture, physicsClientId=c)
    before_state, before_image = u.robot.read_state(), u.world.render(u.camera)
    assert not np.array_equal(before_image, plain)  # the texture shows, so the check below can fail
    u.robot_listeners.append(lambda: p.changeVisualShape(u.robot.handle.body, 3, textureUniqueId=texture,
                                                         physicsClientId=c))  # what a visual randomizer does
    assert u.rebuild_robot((0.01, 0.0, -0.01)) and not u.rebuild_robot((0.01, 0.0, -0.01))
    after_state = u.robot.read_state()
    np.testing.assert_allclose(after_state.positions, before_state.positions)
    np.testing.assert_allclose(after_state.velocities, before_state.velocities, atol=1e-9)
    # same pose, colors and textures: the reloaded pose matches to ~1e-7 rad, which can move an edge pixel by one level
    diff = np.abs(u.world.render(u.camera).astype(int) - before_image.astype(int))
    assert diff.max() <= 2 and np.count_nonzero(diff) <= 10, (diff.max(), np.count_nonzero(diff))
    env.step(env.action_space.sample())  # the episode goes on with the reloaded body
    env.reset(seed=2)  # and the next reset retakes the snapshot for the new body
    env.close()


def _texture_file() -> str:
    import os
    import tempfile

    import cv2

    path = os.path.join(tempfile.mkdtemp(), "checker.png")
    cv2.imwrite(path, (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8))
    return path


def test_rewritten_urdf_moves_every_inertial_origin_and_resolves_meshes() -> None:
    import xml.etree.ElementTree as ET

    source = urdf_path(get_robot_spec("panda"))
    text = urdf_with_com_offset(source, (0.001, -0.002, 0.003))
    original, moved = ET.parse(source).getroot(), ET.fromstring(text)
    before = [np.array((i.find("origin").get("xyz") if i.find("origin") is not None else "0 0 0").split(),
                       dtype=float) for i in original.iter("inertial")]
    after = [np.array(i.find("origin").get("xyz").split(), dtype=float) for i in moved.iter("inertial")]
    assert len(before) == len(after) > 0
    np.testing.assert_allclose(np.array(after) - np.array(before), np.tile([0.001, -0.002, 0.003], (len(after), 1)))
    import os
    meshes = [m.get("filename") for m in moved.iter("mesh")]
    assert meshes and all(os.path.isabs(m) and os.path.exists(m) for m in meshes)


def test_reloads_flush_the_scene_periodically_and_keep_every_randomizer_applied(tmp_path, monkeypatch) -> None:
    # Each URDF load leaks PyBullet memory until resetSimulation: every n-th reload between episodes rebuilds
    # the scene, after which dynamics and visual values must still be in effect.
    import sim2real.envs.arm_env as arm_env
    from randomizers.textures import TextureSet
    from randomizers.textures.pybullet_cache import PyBulletTextureCache
    from randomizers.wrappers import VisualRandomizer

    monkeypatch.setattr(arm_env, "ROBOT_RELOADS_PER_FLUSH", 3)
    env = VisualRandomizer(_randomized(), VisualRandomizer.declare().select(["visual.color.jitter"]),
                           textures=TextureSet(n_unique=8, size=8), texture_cache=PyBulletTextureCache(64, tmp_path))
    rebuilds: list[int] = []
    env.unwrapped.scene_listeners.append(lambda: rebuilds.append(1))
    env.set_randomization_enabled(False)
    env.reset(seed=0)
    com0, mass0 = _links(env, 3), _links(env, 0)
    c = env.unwrapped.world.client
    nominal_look = [s[7] for s in p.getVisualShapeData(env.unwrapped.robot.handle.body, physicsClientId=c)]
    env.set_randomization_enabled(True)
    for seed in range(7):
        _, info = env.reset(seed=seed)
        values = info["randomization"]
        np.testing.assert_allclose(_links(env, 3) - com0, np.tile([values[n] for n in COM], (len(com0), 1)),
                                   atol=1e-9)
        np.testing.assert_allclose(_links(env, 0)[mass0 > 0], mass0[mass0 > 0] * values["dynamics.link.mass"])
        look = [s[7] for s in p.getVisualShapeData(env.unwrapped.robot.handle.body, physicsClientId=c)]
        assert look != nominal_look  # color jitter re-applied after every reload and flush
        env.step(env.action_space.sample())
    assert len(rebuilds) == 2  # reloads 3 and 6 of 7 flushed
