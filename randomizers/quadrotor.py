"""Quadrotor randomization (group ``quadrotor``): mass, inertia, kf/km, per-motor thrust asymmetry, motor time
constant, rotor drag, battery sag, command latency, IMU and position noise, wind.

Works on any env whose ``unwrapped.robot`` is a ``sim2real.sim.multirotor.SimMultirotor`` (duck-typed: its
``physics`` model attributes and noise/latency fields). Every application starts from the spec's nominal model,
so values never compound across episodes.
"""
from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from randomizers.params import Param, ParamSpace, Scalar
from randomizers.registry import register_group
from randomizers.wrappers.base import RandomizationWrapper, SpaceSpec

MOTORS = 4


class QuadrotorRandomizer(RandomizationWrapper):
    """Randomizes the vehicle model of a quadrotor env (see the module docstring for the handles it uses)."""

    GROUP = "quadrotor"

    @classmethod
    def declare(cls) -> ParamSpace:
        scale = dict(apply="scale", physical=True, unit="1")
        params = [
            Param("quadrotor.mass", range=(0.9, 1.1), hard_limits=(0.5, 2.0), **scale, description="mass factor"),
            Param("quadrotor.inertia", range=(0.85, 1.15), hard_limits=(0.3, 3.0), **scale,
                  description="inertia factor (all three principal moments)"),
            Param("quadrotor.kf", range=(0.9, 1.1), hard_limits=(0.5, 2.0), **scale,
                  description="thrust coefficient factor (all rotors)"),
            Param("quadrotor.km", range=(0.8, 1.2), hard_limits=(0.3, 3.0), **scale,
                  description="yaw-torque coefficient factor (all rotors)"),
            *[Param(f"quadrotor.motor{i}.thrust", range=(0.95, 1.05), hard_limits=(0.5, 1.5), **scale,
                    description=f"rotor {i} thrust and torque asymmetry factor") for i in range(MOTORS)],
            Param("quadrotor.motor.time_constant", range=(0.8, 1.5), hard_limits=(0.1, 6.0), **scale,
                  description="motor time-constant factor"),
            Param("quadrotor.drag", range=(0.5, 1.5), hard_limits=(0.0, 5.0), **scale, description="rotor-drag factor"),
            Param("quadrotor.battery.sag", nominal=0.0, range=(0.0, 0.004), hard_limits=(0.0, 0.1), physical=True,
                  unit="1/s", description="thrust lost per second of flight (factor 1 - sag·t, floor 0.5); "
                                          "0.004/s is 6 % over a 15 s episode"),
            Param("quadrotor.latency", nominal=0.0, range=(0.0, 0.02), hard_limits=(0.0, 0.2), physical=True,
                  unit="s", description="setpoint-to-controller delay, rounded to physics steps"),
            Param("quadrotor.sensor.position_noise_std", nominal=0.0, range=(0.0, 0.005), hard_limits=(0.0, 0.1),
                  physical=True, unit="m"),
            Param("quadrotor.sensor.velocity_noise_std", nominal=0.0, range=(0.0, 0.02), hard_limits=(0.0, 0.5),
                  physical=True, unit="m/s"),
            Param("quadrotor.sensor.gyro_noise_std", nominal=0.0, range=(0.0, 0.02), hard_limits=(0.0, 0.5),
                  physical=True, unit="rad/s", description="gyro noise, seen by the rate controller and the policy"),
            *[Param(f"quadrotor.wind.{axis}", nominal=0.0, range=(-r, r), hard_limits=(-10.0, 10.0), unit="m/s",
                    description=f"mean wind velocity, world {axis}") for axis, r in zip("xyz", (0.5, 0.5, 0.1))],
            Param("quadrotor.wind.gust_std", nominal=0.0, range=(0.0, 0.3), hard_limits=(0.0, 5.0), physical=True,
                  unit="m/s", description="gust std per axis (Ornstein-Uhlenbeck)"),
            Param("quadrotor.wind.gust_tau", nominal=1.0, range=(0.5, 2.0), hard_limits=(0.05, 20.0), physical=True,
                  unit="s", description="gust time constant"),
        ]
        return ParamSpace(params)

    def __init__(self, env: gym.Env, space: SpaceSpec = None, enabled: bool = True) -> None:
        self._robot = env.unwrapped.robot  # type: ignore[attr-defined]
        super().__init__(env, space, enabled)

    def apply_values(self, values: Mapping[str, Scalar], at_reset: bool) -> None:
        """Apply every current value (``self.values``) on top of the nominal model."""
        robot, sp, v = self._robot, self.space, {**self.space.nominal_values(), **self.values, **values}
        model, spec = robot.physics, robot.spec
        model.restore_nominal()

        def value(name: str, nominal):
            return sp.apply(name, nominal, v[name]) if name in sp else nominal

        model.set_mass_properties(value("quadrotor.mass", spec.mass),
                                  value("quadrotor.inertia", np.asarray(spec.inertia)))
        model.kf = np.full(MOTORS, value("quadrotor.kf", spec.kf))
        model.km = np.full(MOTORS, value("quadrotor.km", spec.km))
        model.asymmetry = np.array([value(f"quadrotor.motor{i}.thrust", 1.0) for i in range(MOTORS)], dtype=float)
        model.motor_time_constant = value("quadrotor.motor.time_constant", spec.motor_time_constant)
        model.drag = value("quadrotor.drag", model.drag)
        model.battery_sag = value("quadrotor.battery.sag", 0.0)
        model.wind.mean = np.array([value(f"quadrotor.wind.{axis}", 0.0) for axis in "xyz"], dtype=float)
        model.wind.gust_std = value("quadrotor.wind.gust_std", 0.0)
        model.wind.gust_tau = value("quadrotor.wind.gust_tau", 1.0)
        model.update_model()
        robot.latency = value("quadrotor.latency", 0.0)
        robot.position_noise_std = value("quadrotor.sensor.position_noise_std", 0.0)
        robot.velocity_noise_std = value("quadrotor.sensor.velocity_noise_std", 0.0)
        robot.gyro_noise_std = value("quadrotor.sensor.gyro_noise_std", 0.0)


register_group(QuadrotorRandomizer.GROUP, QuadrotorRandomizer.declare)
