"""Every declared Param, one at a time, really changes the simulation (read back through PyBullet, the robot's
motor settings, rendered images or measured motion); nothing compounds over many resets; same seed, same world."""
from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import sim2real.envs  # noqa: F401  (registers the envs)
from randomizers.params import Param
from randomizers.textures import TextureSet
from randomizers.textures.pybullet_cache import PyBulletTextureCache
from randomizers.wrappers import (
    ActuationRandomizer, DynamicsRandomizer, SensingRandomizer, VisualRandomizer, randomizers_in,
)

ACTIONS = np.array([[1.0, 0.5, -0.5, 1.0], [0.5, -1.0, 0.2, 1.0], [-0.3, 0.8, 1.0, 1.0]])


def chain(tmp_path, obs_mode: str = "rgb") -> gym.Env:
    """Push with all four randomizers (visual inside sensing, as in launch files)."""
    env = gym.make("sim2real/PandaPush-v0", obs_mode=obs_mode, camera={"width": 32, "height": 32})
    env = DynamicsRandomizer(env)
    env = VisualRandomizer(env, textures=TextureSet(n_unique=50, size=16),
                           texture_cache=PyBulletTextureCache(256, cache_dir=tmp_path))
    return SensingRandomizer(ActuationRandomizer(env))


def space_of(env: gym.Env) -> dict[str, Param]:
    return {q.name: q for w in randomizers_in(env) for q in w.space}


def measure(env: gym.Env, seed: int = 0) -> dict[str, np.ndarray]:
    """Reset, run three fixed actions, and read back everything a Param may change."""
    u = env.unwrapped
    vector = "proprio" if u.obs_mode == "rgb" else "observation"
    obs, _ = env.reset(seed=seed)
    start = u.world.steps
    sensed, path = [obs[vector]], []
    for a in ACTIONS[:, :env.action_space.shape[0]]:
        obs, *_ = env.step(a)
        sensed.append(obs[vector])
        path.append(u.robot.read_state().ee_position)
    c, body, obj = u.world.client, u.robot.handle.body, u.world.bodies["object"]
    dyn = p.getDynamicsInfo(obj, -1, physicsClientId=c)
    engine = p.getPhysicsEngineParameters(physicsClientId=c)
    look = [s[7] for name in ("table", "floor") for s in p.getVisualShapeData(u.world.bodies[name], physicsClientId=c)]
    look += [s[7] for s in p.getVisualShapeData(body, physicsClientId=c)]
    distractors = [(name, p.getVisualShapeData(i, physicsClientId=c)[0][2:4], p.getBasePositionAndOrientation(
        i, physicsClientId=c)) for name, i in sorted(u.world.bodies.items()) if name.startswith("distractor")]
    flat = lambda x: np.hstack([np.ravel(np.asarray(v, dtype=float)) for v in x])  # noqa: E731
    return {
        "object_dynamics": flat([dyn[0], dyn[1], dyn[2], dyn[5], dyn[6], dyn[7]]),
        "object_shape": flat([p.getCollisionShapeData(obj, -1, physicsClientId=c)[0][3], dyn[3]]),
        "link_mass": flat([p.getDynamicsInfo(body, link, physicsClientId=c)[0] for link in range(7)]),
        "link_com": flat([p.getDynamicsInfo(body, link, physicsClientId=c)[3] for link in range(7)]),
        "forces": u.robot.forces.copy(),
        "gains": np.hstack([u.robot.position_gains, u.robot.velocity_gains]),
        "gravity": flat([engine[f"gravityAcceleration{a}"] for a in "XYZ"]),
        "timestep": flat([engine["fixedTimeStep"]]),
        "ee_path": np.hstack(path),
        "sim_time": flat([(u.world.steps - start) * u.world.physics.timestep]),  # s
        "sensed": np.hstack(sensed),
        "image": obs["image"].astype(float) if "image" in obs else np.zeros(0),
        "render": u.world.render(u.camera).astype(float) if vector == "proprio" else np.zeros(0),
        "look": flat(look),
        "distractors": np.array([repr(distractors)], dtype=object),
    }


PROBES: dict[str, str] = {
    **{f"dynamics.object.{k}": "object_dynamics" for k in
       ("mass", "friction", "spinning_friction", "rolling_friction", "restitution")},
    "dynamics.object.scale": "object_shape", **{f"dynamics.object.com_{a}": "object_shape" for a in "xyz"},
    "dynamics.link.mass": "link_mass", **{f"dynamics.link.com_{a}": "link_com" for a in "xyz"},
    "dynamics.joint.damping": "ee_path", "dynamics.joint.friction": "forces",
    "dynamics.actuator.strength": "forces", "dynamics.actuator.position_gain": "gains",
    "dynamics.actuator.velocity_gain": "gains", **{f"dynamics.gravity.{a}": "gravity" for a in "xyz"},
    "dynamics.timestep": "timestep",
    "actuation.action_rotation": "ee_path", "actuation.latency": "ee_path", "actuation.noise_std": "ee_path",
    "actuation.repeat": "sim_time",
    "actuation.period_jitter": "sim_time",
    **{f"sensing.obs.{k}": "sensed" for k in ("noise_std", "bias_std", "delay", "dropout")},
    **{f"sensing.image.{k}": "image" for k in ("noise_std", "salt_pepper", "blur_sigma", "jpeg_quality")},
    "visual.texture.probability": "look", "visual.color.jitter": "look",
    **{f"visual.light.{k}": "render" for k in
       ("azimuth", "elevation", "color_r", "color_g", "color_b", "ambient", "diffuse", "specular")},
    **{f"visual.distractor.{k}": "distractors" for k in ("count", "shape", "size", "x", "y", "yaw")},
    **{f"visual.camera.{k}": "render" for k in ("x", "y", "z", "target_x", "target_y", "target_z", "fov")},
}


def off_nominal(q: Param):
    """A value inside the hard limits that differs from the nominal: the range's high, its low, or the limit."""
    if q.is_categorical:
        return next(c for c in q.choices if c != q.nominal)
    return next(v for v in (q.high, q.low, q.limits[1]) if v != q.nominal and np.isfinite(v))


def _seen_in_images(name: str) -> bool:
    return name.startswith(("visual.", "sensing.image."))


@pytest.mark.parametrize("obs_mode", ["state", "rgb"])
def test_every_param_changes_the_simulation(tmp_path, obs_mode: str) -> None:
    # Rendering costs ~40 ms a frame, so only what shows in images is probed with camera observations.
    env = chain(tmp_path, obs_mode)
    space = space_of(env)
    if obs_mode == "rgb":
        assert sorted(space) == sorted(PROBES), "a Param without a probe (or a probe without a Param)"
    nominal = {n: q.nominal for n, q in space.items()}
    baselines: dict[bool, dict[str, np.ndarray]] = {}
    for name, q in space.items():
        if _seen_in_images(name) != (obs_mode == "rgb"):
            continue
        context = {"visual.distractor.count": 1} if name.startswith("visual.distractor.") and \
            name != "visual.distractor.count" else {}
        key = bool(context)
        if key not in baselines:
            env.set_randomization_values({**nominal, **context})
            baselines[key] = measure(env)
        env.set_randomization_values({**nominal, **context, name: off_nominal(q)})
        changed = measure(env)[PROBES[name]]
        same = baselines[key][PROBES[name]]
        differs = changed.shape != same.shape or not np.array_equal(changed, same)
        assert differs, f"{name} = {off_nominal(q)} left {PROBES[name]} unchanged"
    env.close()


def test_values_stay_in_range_never_compound_and_follow_the_seed(tmp_path) -> None:
    env = chain(tmp_path)
    space = space_of(env)
    env.set_randomization_enabled(False)
    before = measure(env)
    env.set_randomization_enabled(True)
    for seed in range(15):
        _, info = env.reset(seed=seed)
        for name, value in info["randomization"].items():
            if name in space and not space[name].is_categorical:
                assert space[name].low <= value <= space[name].high, name
        for d in info["randomization"]["visual.distractors"]:
            assert space["visual.distractor.size"].low <= d["size"] <= space["visual.distractor.size"].high
            assert d["shape"] in space["visual.distractor.shape"].choices
        env.step(env.action_space.sample())
    env.set_randomization_enabled(False)
    after = measure(env)
    for key in before:  # nothing drifted: the nominal world is bit-identical after 15 randomized episodes
        assert before[key].shape == after[key].shape and np.array_equal(before[key], after[key]), key

    twin, other = chain(tmp_path), chain(tmp_path)
    env.set_randomization_enabled(True)
    a, b, c = (e.reset(seed=7)[1]["randomization"] for e in (env, twin, other))
    assert a == b
    ma, mb = measure(env, seed=7), measure(twin, seed=7)
    assert all(np.array_equal(ma[k], mb[k]) for k in ma)
    assert measure(other, seed=8)["object_dynamics"].tolist() != ma["object_dynamics"].tolist()


def _pinned_rgb(tmp_path, **values) -> tuple[gym.Env, Callable[[], np.ndarray]]:
    env = SensingRandomizer(gym.make("sim2real/PandaReach-v0", obs_mode="rgb", camera={"width": 48, "height": 48}))
    env.set_randomization_values({**{q.name: q.nominal for q in env.space}, **values})
    u = env.unwrapped
    return env, lambda: u.world.render(u.camera)


def test_dropout_keeps_stale_values_inside_the_wrapper(tmp_path) -> None:
    env, _ = _pinned_rgb(tmp_path, **{"sensing.obs.dropout": 1.0})
    first = env.reset(seed=0)[0]["proprio"]
    for _ in range(3):
        obs, *_ = env.step(np.ones(env.action_space.shape))
    np.testing.assert_array_equal(obs["proprio"], first)  # every element stale: nothing new gets through
    truth = env.unwrapped.task.robot_observation(env.unwrapped.robot.read_state())
    assert np.abs(truth - first).max() > 1e-3  # while the arm did move
    env.set_randomization_values({"sensing.obs.dropout": 0.5})
    env.reset(seed=0)
    stale = fresh = 0
    previous = None
    for _ in range(12):
        obs, *_ = env.step(np.ones(env.action_space.shape))
        truth = env.unwrapped.task.robot_observation(env.unwrapped.robot.read_state())
        if previous is not None:
            kept = obs["proprio"] == previous
            stale += int(kept.sum())
            fresh += int(np.isclose(obs["proprio"], truth, atol=1e-6).sum())
        previous = obs["proprio"]
    assert stale > 10 and fresh > 10  # roughly half and half


@pytest.mark.parametrize("values,check", [
    ({"sensing.image.noise_std": 20.0}, lambda img, clean: 15.0 < np.std(img - clean) < 25.0),
    ({"sensing.image.salt_pepper": 0.2},
     lambda img, clean: np.mean(np.all((img == 0) | (img == 255), axis=-1)) > 0.15),
    ({"sensing.image.blur_sigma": 2.0},
     lambda img, clean: np.abs(np.diff(img, axis=1)).mean() < 0.7 * np.abs(np.diff(clean, axis=1)).mean()),
    ({"sensing.image.jpeg_quality": 5},
     lambda img, clean: 0.5 < np.abs(img - clean).mean() and abs(img.mean() - clean.mean()) < 5.0),
])
def test_image_corruptions_inside_the_wrapper(tmp_path, values, check) -> None:
    env, render = _pinned_rgb(tmp_path, **values)
    obs, _ = env.reset(seed=0)
    clean = render().astype(float)
    assert check(obs["image"].astype(float), clean)
    obs, *_ = env.step(np.zeros(env.action_space.shape))
    assert check(obs["image"].astype(float), render().astype(float))  # every step, not only at reset
