"""Hover-hold check at the computed hover RPM and the PID waypoint-tracking error table.

Hover hold: each vehicle starts at rest above the ground-effect reach with rotors at ``spec.hover_rpm`` and is
commanded that RPM for 5 s (motor lag, rotor drag and ground effect on); reported is the largest altitude and
horizontal deviation (m).

Waypoint tracking: ``<Vehicle>Waypoints-v0`` layouts (5 random targets each, seeds 0..N-1) flown by the onboard
position PID (``Position`` setpoints, one per target, ``hold`` seconds each), nominal and under the default
``quadrotor`` randomization. Per target: time to come within 5 cm (s; ``hold`` when never), overshoot past the
target along the path (m), and the final error after ``hold`` s (m).

    nice -n 10 .venv/bin/python benchmarks/quad_pid.py --episodes 10 --json benchmarks/figures/quad_pid.json
"""
from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np

import sim2real.envs  # noqa: F401
from randomizers.quadrotor import QuadrotorRandomizer
from robots.quadrotor import get_quadrotor_spec
from sim2real.hal.multirotor import Position
from sim2real.sim.quadrotor_physics import QuadrotorPhysics


def hover_hold(vehicle: str, seconds: float = 5.0) -> dict[str, float]:
    spec = get_quadrotor_spec(vehicle)
    model = QuadrotorPhysics(spec)
    z0 = spec.ground_effect_height + 0.5
    model.reset((0.0, 0.0, z0), rpm=spec.hover_rpm)
    worst_z = worst_xy = 0.0
    for _ in range(int(seconds * model.config.physics_hz)):
        model.step([spec.hover_rpm] * 4)
        x, y, z = model.kinematics().position
        worst_z, worst_xy = max(worst_z, abs(z - z0)), max(worst_xy, float(np.hypot(x, y)))
    model.close()
    return {"vehicle": vehicle, "altitude_m": z0, "hover_rpm": spec.hover_rpm, "max_dz_m": worst_z,
            "max_dxy_m": worst_xy}


def track(vehicle: str, episodes: int, hold: float, randomized: bool) -> dict[str, float]:
    name = {"crazyflie": "Crazyflie", "racer": "Racer"}[vehicle]
    env = QuadrotorRandomizer(gym.make(f"sim2real/{name}Waypoints-v0", action_mode="velocity"), enabled=randomized)
    robot = env.unwrapped.robot
    steps = int(hold * robot.config.control_hz)
    reach, overshoot, final = [], [], []
    for seed in range(episodes):
        env.reset(seed=seed)
        start = robot.read_state().position
        for target in env.unwrapped.task.targets:
            robot.send_command(Position(target))
            path = target - start
            direction = path / max(np.linalg.norm(path), 1e-9)
            reached, beyond = hold, 0.0
            for k in range(steps):
                robot.advance()
                position = robot.read_state().position
                error = float(np.linalg.norm(target - position))
                if error < 0.05 and reached == hold:
                    reached = (k + 1) / robot.config.control_hz
                beyond = max(beyond, float((position - target) @ direction))
            reach.append(reached)
            overshoot.append(beyond)
            final.append(error)
            start = target
    env.close()
    return {"vehicle": vehicle, "randomized": randomized, "targets": len(final),
            "reach_5cm_s_median": float(np.median(reach)), "reach_5cm_s_p90": float(np.percentile(reach, 90)),
            "never_reached": int(sum(r == hold for r in reach)),
            "overshoot_m_median": float(np.median(overshoot)), "overshoot_m_max": float(np.max(overshoot)),
            "final_error_m_mean": float(np.mean(final)), "final_error_m_max": float(np.max(final))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--hold", type=float, default=6.0, help="seconds per target")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    holds = [hover_hold(v) for v in ("crazyflie", "racer")]
    print("| vehicle | altitude (m) | hover rpm | max |Δz| over 5 s (m) | max horizontal drift (m) |")
    print("|---|---|---|---|---|")
    for h in holds:
        print(f"| {h['vehicle']} | {h['altitude_m']:.2f} | {h['hover_rpm']:.0f} | {h['max_dz_m']:.2e} "
              f"| {h['max_dxy_m']:.2e} |")
    rows = [track(v, args.episodes, args.hold, r) for v in ("crazyflie", "racer") for r in (False, True)]
    print("\n| vehicle | params | targets | time to 5 cm median / p90 (s) | never | overshoot median / max (m) "
          "| final error mean / max (m) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['vehicle']} | {'randomized' if r['randomized'] else 'nominal'} | {r['targets']} "
              f"| {r['reach_5cm_s_median']:.2f} / {r['reach_5cm_s_p90']:.2f} | {r['never_reached']} "
              f"| {r['overshoot_m_median']:.3f} / {r['overshoot_m_max']:.3f} "
              f"| {r['final_error_m_mean']:.4f} / {r['final_error_m_max']:.4f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"hover_hold": holds, "waypoints": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
