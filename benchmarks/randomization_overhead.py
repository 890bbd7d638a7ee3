"""Cost of domain randomization on env throughput, measured side by side in one run (repeats interleaved,
medians reported).

  * state observations, PandaPush: the plain env vs dynamics + actuation + sensing randomizers at their default
    ranges, everything resampled every reset (target: <= 10 % slower), and with rolling friction randomized too
    (off by default: it makes the contact solver itself slower);
  * camera observations (84x84), PandaReach: the plain env vs texture swaps on every surface every reset
    (1,000 procedural textures, target: <= 20 % slower), and vs the full visual randomizer (textures, colors,
    lighting, 0-5 distractors, camera pose).

Slowdowns are medians over repeats of the paired ratio (each randomized block against the plain block run just
before it, both from the same reset seed; repeat r uses seed r, so the repeats cover different sampled worlds).
Throughput is env steps/s with random actions and a reset at every episode end (50 steps), so per-reset costs
count. ``--clock cpu`` (default) times the process's own CPU time (``time.thread_time``), which other jobs on a
shared machine disturb far less than wall time (``--clock wall``). Time inside ``stepSimulation`` is measured too, which splits a slowdown into the randomizers' own work
(applying values at reset, per-step wrapper code) and the physics of the sampled worlds (e.g. rolling friction
makes Bullet's contact solver slower). Textures are loaded into PyBullet once before timing (the cold cost per
texture is reported separately).

    nice -n 10 .venv/bin/python benchmarks/randomization_overhead.py [--repeats 11] [--clock cpu|wall] [--out FILE]
    nice -n 10 .venv/bin/python benchmarks/randomization_overhead.py --one-at-a-time --repeats 6
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import gymnasium as gym

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from env_throughput import rate_with_reset  # noqa: E402  (same measurement as the env throughput benchmark)

import sim2real.envs  # noqa: E402,F401  (registers the envs)
from randomizers.launch import wrap  # noqa: E402
from randomizers.params import ParamSpace  # noqa: E402
from randomizers.textures import TextureSet  # noqa: E402
from randomizers.textures.pybullet_cache import PyBulletTextureCache  # noqa: E402
from randomizers.wrappers import VisualRandomizer  # noqa: E402

STATE_GROUPS = [{"group": "dynamics"}, {"group": "actuation"}, {"group": "sensing"}]
ROLLING = [{"group": "dynamics", "params": [{"name": "dynamics.object.rolling_friction", "range": [0, 0.005]}]},
           *STATE_GROUPS[1:]]
TEXTURE_PARAMS = ("visual.texture.probability", "visual.color.jitter")


def visual(env: gym.Env, full: bool, textures: TextureSet) -> VisualRandomizer:
    """Visual randomizer with all its textures already loaded; ``full=False``: only texture/color Params."""
    space = None if full else VisualRandomizer.declare().select(TEXTURE_PARAMS)
    out = VisualRandomizer(env, space, textures=textures, texture_cache=PyBulletTextureCache(capacity=4096))
    client = env.unwrapped.world.client
    for key in textures:
        out.cache.texture_id(client, key, textures.image)
    return out


def physics_timer(env: gym.Env, clock=time.perf_counter) -> list[float]:
    """Accumulate the seconds of ``clock`` spent in ``world.step`` (the ``stepSimulation`` loop) into the
    returned cell."""
    world = env.unwrapped.world
    inner, spent = world.step, [0.0]

    def timed(substeps: int | None = None) -> None:
        start = clock()
        inner(substeps)
        spent[0] += clock() - start

    world.step = timed
    return spent


def without_physics(env: gym.Env) -> gym.Env:
    """``env`` with ``world.step`` a no-op: what is left is the code around the physics (resets included)."""
    env.unwrapped.world.step = lambda substeps=None: None
    return env


GROUPS_ONE_AT_A_TIME = {
    "object mass": ["dynamics.object.mass"], "object scale": ["dynamics.object.scale"],
    "object centre of mass": [f"dynamics.object.com_{a}" for a in "xyz"],
    "object friction": ["dynamics.object.friction", "dynamics.object.spinning_friction"],
    "object restitution": ["dynamics.object.restitution"], "link mass": ["dynamics.link.mass"],
    "joint damping + friction": ["dynamics.joint.damping", "dynamics.joint.friction"],
    "actuator strength": ["dynamics.actuator.strength"], "position gain": ["dynamics.actuator.position_gain"],
    "velocity gain": ["dynamics.actuator.velocity_gain"], "gravity": [f"dynamics.gravity.{a}" for a in "xyz"],
    "timestep": ["dynamics.timestep"],
}


def one_at_a_time(repeats: int, steps: int, clock) -> None:
    """Physics cost of each dynamics Param group alone (default ranges), as a share of a plain PandaPush step."""
    from randomizers.wrappers import DynamicsRandomizer

    declared = DynamicsRandomizer.declare()
    envs = {"plain": gym.make("sim2real/PandaPush-v0")}
    envs.update({k: DynamicsRandomizer(gym.make("sim2real/PandaPush-v0"), declared.select(v))
                 for k, v in GROUPS_ONE_AT_A_TIME.items()})
    timers = {k: physics_timer(env, clock) for k, env in envs.items()}
    seconds: dict[str, list[float]] = {k: [] for k in envs}
    physics: dict[str, list[float]] = {k: [] for k in envs}
    for repeat in range(repeats):
        for name, env in envs.items():
            before = timers[name][0]
            seconds[name].append(1.0 / rate_with_reset(env, steps, seed=repeat, clock=clock))
            physics[name].append((timers[name][0] - before) / steps)
    plain = statistics.median(seconds["plain"])
    print(f"{'Param group (alone)':26s} {'slower':>7s} {'physics, % of a plain step':>27s}")
    for name in GROUPS_ONE_AT_A_TIME:
        slower = statistics.median(a / b for a, b in zip(seconds[name], seconds["plain"])) - 1.0
        extra = statistics.median(a - b for a, b in zip(physics[name], physics["plain"])) / plain
        print(f"{name:26s} {100 * slower:6.1f}% {100 * extra:26.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--state-steps", type=int, default=600, help="env steps per state measurement")
    parser.add_argument("--rgb-steps", type=int, default=100, help="env steps per camera measurement")
    parser.add_argument("--textures", type=int, default=1000, help="unique textures (n_unique)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="what a second is (default cpu)")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="instead: the physics cost of each dynamics Param group alone (PandaPush)")
    parser.add_argument("--out", default="benchmarks/figures/randomization_overhead.json")
    args = parser.parse_args()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    if args.one_at_a_time:
        one_at_a_time(args.repeats, 1000, clock)
        return

    textures = TextureSet(n_unique=args.textures, size=64)
    t0 = time.perf_counter()
    rgb = lambda: gym.make("sim2real/PandaReach-v0", obs_mode="rgb")  # noqa: E731
    envs: dict[str, tuple[gym.Env, int]] = {
        "state_plain": (gym.make("sim2real/PandaPush-v0"), args.state_steps),
        "state_randomized": (wrap(gym.make("sim2real/PandaPush-v0"), STATE_GROUPS), args.state_steps),
        "state_randomized_rolling": (wrap(gym.make("sim2real/PandaPush-v0"), ROLLING), args.state_steps),
        "rgb_plain": (rgb(), args.rgb_steps),
        "rgb_textures": (visual(rgb(), False, textures), args.rgb_steps),
    }
    cold_ms = (time.perf_counter() - t0) / args.textures * 1e3  # generating + loading dominates building envs
    envs["rgb_visual_full"] = (visual(rgb(), True, textures), args.rgb_steps)
    envs["stub_plain"] = (without_physics(gym.make("sim2real/PandaPush-v0")), args.state_steps)
    envs["stub_randomized"] = (without_physics(wrap(gym.make("sim2real/PandaPush-v0"), STATE_GROUPS)),
                               args.state_steps)
    samples: dict[str, list[float]] = {k: [] for k in envs}
    other: dict[str, list[float]] = {k: [] for k in envs}  # seconds per step outside stepSimulation
    timers = {k: physics_timer(env, clock) for k, (env, _) in envs.items()}
    for env, steps in envs.values():  # warm-up: first resets, caches, lazy imports
        rate_with_reset(env, min(steps, 60))
    for repeat in range(args.repeats):
        for name, (env, steps) in envs.items():
            before = timers[name][0]
            rate = rate_with_reset(env, steps, seed=repeat, clock=clock)
            samples[name].append(rate)
            other[name].append(1.0 / rate - (timers[name][0] - before) / steps)
    med = {k: statistics.median(v) for k, v in samples.items()}
    med_other = {k: statistics.median(v) for k, v in other.items()}

    rows = [
        ("state obs, PandaPush", "dynamics + actuation + sensing (default ranges)", "state_randomized", 0.10),
        ("state obs, PandaPush", "the same + rolling friction 0-0.005 m", "state_randomized_rolling", 0.10),
        ("rgb obs 84x84, PandaReach", f"texture swaps ({args.textures} textures)", "rgb_textures", 0.20),
        ("rgb obs 84x84, PandaReach", "full visual (+ light, distractors, camera)", "rgb_visual_full", 0.20),
    ]
    print(f"clock: {args.clock} time")
    print(f"{'setting':27s} {'randomization, every reset':49s} {'plain':>7s} {'random.':>7s} {'slower':>7s} "
          f"{'own work':>8s} {'target':>6s}")
    # the randomizers' code measured directly: physics stubbed out in both, relative to a real plain step
    code = statistics.median((1.0 / r - 1.0 / q) * p for r, q, p in zip(
        samples["stub_randomized"], samples["stub_plain"], samples["state_plain"]))
    results = []
    for setting, what, key, target in rows:
        plain = "state_plain" if key.startswith("state") else "rgb_plain"
        # paired per repeat (the two ran back to back), then the median: robust to load on shared machines
        slower = 1.0 - statistics.median(r / q for r, q in zip(samples[key], samples[plain]))
        own = statistics.median((a - b) * q for a, b, q in zip(other[key], other[plain], samples[plain]))
        print(f"{setting:27s} {what:49s} {med[plain]:7.1f} {med[key]:7.1f} {100 * slower:6.1f}% {100 * own:7.1f}% "
              f"{100 * target:5.0f}%")
        results.append({"setting": setting, "randomization": what, "plain_steps_per_s": med[plain],
                        "randomized_steps_per_s": med[key], "slowdown": slower, "own_work": own, "target": target})
    print(f"randomizer code alone (state, physics stubbed out in both): {100 * code:.1f}% of a plain step")
    print(f"cold texture cost (generate PNG + load into PyBullet, once per texture and env): {cold_ms:.1f} ms")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"args": vars(args), "medians": med, "samples": samples, "results": results, "code_only": code,
                   "cold_texture_ms": cold_ms}, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
