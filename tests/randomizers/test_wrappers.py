"""Wrappers on the real arm envs: each Param changes the simulation (read back via PyBullet), nothing compounds,
same seed same values, off switch gives nominals, per-env setters work through the chain."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import sim2real.envs  # noqa: F401  (registers the envs)
from randomizers.params import ParamSpecError, UnknownParamError
from randomizers.textures import TextureSet
from randomizers.wrappers import (
    ActuationRandomizer, DynamicsRandomizer, SensingRandomizer, VisualRandomizer,
)


def _obj(env: gym.Env) -> tuple:
    u = env.unwrapped
    return p.getDynamicsInfo(u.world.bodies["object"], -1, physicsClientId=u.world.client)


def test_dynamics_change_sim_stay_in_range_and_never_compound() -> None:
    env = DynamicsRandomizer(gym.make("sim2real/PandaPush-v0"))
    u, c = env.unwrapped, env.unwrapped.world.client
    nominal_mass, nominal_friction = _obj(env)[0], _obj(env)[1]
    nominal_forces = u.robot.forces.copy()
    link1 = p.getDynamicsInfo(u.robot.handle.body, 1, physicsClientId=c)[0]
    space = env.space
    masses = []
    for episode in range(30):
        _, info = env.reset(seed=episode)
        v = info["randomization"]
        for name, value in v.items():
            assert space[name].low <= value <= space[name].high
        info_obj = _obj(env)
        assert info_obj[0] == pytest.approx(nominal_mass * v["dynamics.object.mass"])
        assert info_obj[1] == pytest.approx(nominal_friction * v["dynamics.object.friction"])
        assert info_obj[5] == pytest.approx(v["dynamics.object.restitution"])
        assert p.getDynamicsInfo(u.robot.handle.body, 1, physicsClientId=c)[0] == \
            pytest.approx(link1 * v["dynamics.link.mass"])
        np.testing.assert_allclose(u.robot.forces, np.maximum(
            nominal_forces * v["dynamics.actuator.strength"] - v["dynamics.joint.friction"], 0.0))
        dt = p.getPhysicsEngineParameters(physicsClientId=c)["fixedTimeStep"]
        assert dt == pytest.approx(u.world.physics.timestep)
        masses.append(info_obj[0])
        env.step(env.action_space.sample())
    assert np.ptp(masses) > 0.5 * nominal_mass  # really varies
    env.set_randomization_enabled(False)
    _, info = env.reset(seed=0)
    assert _obj(env)[0] == nominal_mass and _obj(env)[1] == nominal_friction  # no drift after 30 resets
    np.testing.assert_array_equal(u.robot.forces, nominal_forces)
    assert p.getDynamicsInfo(u.robot.handle.body, 1, physicsClientId=c)[0] == link1


def test_dynamics_gravity_and_behaviour_change() -> None:
    env = DynamicsRandomizer(gym.make("sim2real/PandaReach-v0"))
    assert not any(n.startswith("dynamics.object.") for n in env.space.names)  # Reach has no object
    env.set_randomization_values({"dynamics.gravity.z": 1.5, "dynamics.actuator.strength": 0.05})
    _, info = env.reset(seed=0)
    assert info["randomization"]["dynamics.gravity.z"] == 1.5
    u = env.unwrapped
    action = np.ones(env.action_space.shape)
    weak = [env.step(action)[0]["observation"][:3] for _ in range(5)][-1]
    env.clear_randomization_values()
    env.set_randomization_enabled(False)
    env.reset(seed=0)
    strong = [env.step(action)[0]["observation"][:3] for _ in range(5)][-1]
    assert np.linalg.norm(weak - strong) > 1e-3  # 5 % motor strength moves the arm differently
    with pytest.raises(ParamSpecError, match="outside hard limits"):
        env.set_randomization_values({"dynamics.actuator.strength": 50.0})
    with pytest.raises(UnknownParamError, match="dynamics.link.mass"):
        env.set_randomization_values({"dynamics.nope": 1.0})
    assert u.world.client >= 0


def test_joint_damping_slows_the_arm() -> None:
    # PyBullet does not report changed joint damping (getJointInfo shows the URDF value): check the motion.
    def travel(damping: float) -> float:
        env = DynamicsRandomizer(gym.make("sim2real/PandaReach-v0"))
        env.set_randomization_enabled(False)
        env.reset(seed=0)
        env.set_randomization_enabled(True)
        env.set_randomization_values({n: env.space[n].nominal for n in env.space.names})
        env.set_randomization_values({"dynamics.joint.damping": damping})
        start = env.reset(seed=0)[0]["observation"][:3]
        for _ in range(3):
            end = env.step(np.ones(env.action_space.shape))[0]["observation"][:3]
        env.close()
        return float(np.linalg.norm(end - start))

    assert travel(10.0) < travel(0.0) - 0.003  # position control fights it, but the arm is measurably slower


def test_same_seed_same_values_and_trajectory() -> None:
    def run(seed: int) -> tuple[list, np.ndarray]:
        env = SensingRandomizer(ActuationRandomizer(DynamicsRandomizer(gym.make("sim2real/PandaPush-v0"))))
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        for _ in range(5):
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        env.close()
        return [info["randomization"]], obs["observation"]

    a, b, c = run(3), run(3), run(4)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert a[0] != c[0]


def test_actuation_latency_holds_actions() -> None:
    env = ActuationRandomizer(gym.make("sim2real/PandaReach-v0"))
    env.set_randomization_values({"actuation.latency": 2, "actuation.noise_std": 0.0, "actuation.repeat": 1})
    env.reset(seed=0)
    applied = []
    for k in range(4):
        env.step(np.full(env.action_space.shape, 0.1 * (k + 1)))
        applied.append(float(env._last_applied[0]))
    assert applied == pytest.approx([0.0, 0.0, 0.1, 0.2])
    env.set_randomization_values({"actuation.latency": 0, "actuation.noise_std": 0.5})
    env.reset(seed=0)
    env.step(np.zeros(env.action_space.shape))
    noisy = env._last_applied
    assert np.abs(noisy).max() > 0 and np.abs(noisy).max() <= 1.0


def test_actuation_repeat_runs_inner_steps() -> None:
    env = ActuationRandomizer(gym.make("sim2real/PandaReach-v0"))
    env.set_randomization_values({"actuation.repeat": 3, "actuation.latency": 0})
    env.reset(seed=0)
    u = env.unwrapped
    before = u.world.steps
    env.step(np.zeros(env.action_space.shape))
    assert u.world.steps - before == 3 * u.world.physics.substeps


def test_sensing_noise_bias_delay_and_interval_resampling() -> None:
    env = SensingRandomizer(gym.make("sim2real/PandaReach-v0"),
                            space=[{"name": "sensing.obs.delay", "resample": "steps", "resample_k": 2}])
    clean = gym.make("sim2real/PandaReach-v0")
    env.set_randomization_values({"sensing.obs.noise_std": 0.0, "sensing.obs.bias_std": 0.05,
                                  "sensing.obs.delay": 0, "sensing.obs.dropout": 0.0})
    obs, _ = env.reset(seed=1)
    ref, _ = clean.reset(seed=1)
    bias = obs["observation"] - ref["observation"]
    assert np.abs(bias).max() > 1e-3
    np.testing.assert_array_equal(obs["desired_goal"], ref["desired_goal"])
    action = np.full(env.action_space.shape, 0.5)
    o2, *_ = env.step(action)
    r2, *_ = clean.step(action)
    np.testing.assert_allclose(o2["observation"] - r2["observation"], bias, atol=1e-6)  # constant in an episode
    env.clear_randomization_values()
    env.set_randomization_values({"sensing.obs.bias_std": 0.0, "sensing.obs.noise_std": 0.0, "sensing.obs.delay": 1})
    first, _ = env.reset(seed=2)
    o1, _, _, _, info = env.step(action)
    np.testing.assert_array_equal(o1["observation"], first["observation"])  # one step late
    o2, _, _, _, info = env.step(action)
    assert "randomization" in info  # resampled at step 2 (pinned value re-applied)
    assert not np.array_equal(o2["observation"], o1["observation"])


def test_visual_textures_render_and_switch_off(tmp_path) -> None:
    from randomizers.textures.pybullet_cache import PyBulletTextureCache

    base = gym.make("sim2real/PandaReach-v0", obs_mode="rgb", camera={"width": 48, "height": 48})
    env = VisualRandomizer(base, textures=TextureSet(n_unique=20, size=16),
                           texture_cache=PyBulletTextureCache(64, cache_dir=tmp_path))
    env.set_randomization_enabled(False)
    nominal_img = env.reset(seed=0)[0]["image"].astype(float)
    env.set_randomization_enabled(True)
    diffs, cams = [], []
    for s in range(4):
        obs, info = env.reset(seed=s)
        v = info["randomization"]
        assert len(v["visual.textures"]) == len(env.surfaces)  # probability 1 by default
        diffs.append(np.abs(obs["image"].astype(float) - nominal_img).mean())
        cams.append(env.unwrapped.camera.eye)
        assert env.unwrapped.camera.fov == pytest.approx(60.0 + v["visual.camera.fov"])
    assert min(diffs) > 5.0 and len(set(cams)) == 4
    env.set_randomization_enabled(False)
    again = env.reset(seed=0)[0]["image"].astype(float)
    assert np.abs(again - nominal_img).mean() < 0.5  # textures removed, colors and camera restored
    state_env = VisualRandomizer(gym.make("sim2real/PandaReach-v0"))
    assert not any(n.startswith("visual.camera.") for n in state_env.space.names)


def test_launch_overrides_and_space_export() -> None:
    env = SensingRandomizer(DynamicsRandomizer(gym.make("sim2real/PandaPush-v0"),
                                               space=[{"name": "dynamics.object.mass", "range": [0.9, 1.1]}]))
    exported = env.get_randomization_space()
    names = [e["name"] for e in exported["params"]]
    assert "dynamics.object.mass" in names and "sensing.obs.noise_std" in names
    mass = next(e for e in exported["params"] if e["name"] == "dynamics.object.mass")
    assert mass["range"] == [0.9, 1.1]
    env.set_randomization_ranges({"dynamics.object.mass": (1.2, 1.3)})
    _, info = env.reset(seed=0)
    assert 1.2 <= info["randomization"]["dynamics.object.mass"] <= 1.3
    with pytest.raises(UnknownParamError):
        DynamicsRandomizer(gym.make("sim2real/PandaPush-v0"), space=[{"name": "dynamics.bogus", "range": [0, 1]}])


def test_values_are_kept_between_episodes_of_a_trial():
    """RL² trials: ``options["randomize"] = False`` keeps the values; a plain reset draws new ones."""
    import gymnasium as gym

    import sim2real  # noqa: F401
    from randomizers.wrappers.dynamics import DynamicsRandomizer

    env = DynamicsRandomizer(gym.make("sim2real/PandaPush-v0"))
    _, info = env.reset(seed=3)
    first = dict(info["randomization"])
    _, info = env.reset(options={"randomize": False})
    assert info["randomization"] == first
    _, info = env.reset()
    assert info["randomization"] != first
