"""``SimMultirotor``: the PyBullet quadrotor behind the HAL :class:`Multirotor` interface.

Setpoints go through a latency queue (``latency`` s, rounded to physics steps) to the onboard
:class:`FlightController`, which runs every physics step. The state estimate returned by :meth:`read_state` adds
position, velocity and gyro noise (std ``position_noise_std`` m, ``velocity_noise_std`` m/s, ``gyro_noise_std``
rad/s); the rate controller sees the same gyro noise.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from robots.quadrotor import QuadrotorSpec
from sim2real.hal.multirotor import Ctbr, Multirotor, MultirotorState, Position, Setpoint
from sim2real.sim.flight_controller import FlightController, Gains
from sim2real.sim.quadrotor_physics import Kinematics, QuadPhysicsConfig, QuadrotorPhysics


class SimMultirotor(Multirotor):
    """Simulated quadrotor; call :meth:`advance` to run physics (the env does this once per control step)."""

    def __init__(self, spec: QuadrotorSpec, config: QuadPhysicsConfig = QuadPhysicsConfig(),
                 gains: Gains | None = None) -> None:
        self.spec, self.config = spec, config
        self.physics = QuadrotorPhysics(spec, config)
        self.controller = FlightController(spec, config.dt, gains)
        self.latency = 0.0
        self.position_noise_std = self.velocity_noise_std = self.gyro_noise_std = 0.0
        self.rng = np.random.default_rng(0)
        self.connected = False
        self._queue: deque[tuple[int, Setpoint]] = deque()
        self._active: Setpoint = Ctbr(0.0, np.zeros(3))

    # --- HAL ------------------------------------------------------------------------------------------------
    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def close(self) -> None:
        self.disconnect()
        self.physics.close()

    def reset(self, position, quaternion=(0.0, 0.0, 0.0, 1.0), velocity=(0.0, 0.0, 0.0), body_rates=(0.0, 0.0, 0.0),
              rpm: float | None = None, rng: np.random.Generator | None = None) -> None:
        """Place the vehicle (world ENU) with rotors at ``rpm`` (default: hover) and hold a hover CTBR setpoint."""
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.physics.reset(position, quaternion, velocity, body_rates,
                           self.spec.hover_rpm if rpm is None else rpm, self.rng)
        self.controller.reset()
        self._queue.clear()
        self._active = Ctbr(self.spec.weight, np.zeros(3))

    @property
    def latency_steps(self) -> int:
        return int(round(self.latency / self.config.dt))

    def send_command(self, setpoint: Setpoint) -> Setpoint:
        """Queue ``setpoint``; it reaches the flight controller ``latency`` seconds (of simulated time) later."""
        delay = self.latency_steps
        if delay == 0:
            self._queue.clear()
            self._active = setpoint
        else:
            self._queue.append((self.physics.steps + delay, setpoint))
        return setpoint

    def advance(self, steps: int | None = None) -> None:
        """Run ``steps`` physics steps (default: one control period) with the controller in the loop."""
        physics, controller, queue = self.physics, self.controller, self._queue
        gyro = self.gyro_noise_std
        for _ in range(self.config.substeps if steps is None else steps):
            while queue and queue[0][0] <= physics.steps:
                self._active = queue.popleft()[1]
            kin = physics.kinematics()
            measured = kin
            if gyro > 0:
                noise = self.rng.normal(0.0, gyro, 3)
                rates = kin.body_rates
                measured = kin._replace(body_rates=(rates[0] + noise[0], rates[1] + noise[1], rates[2] + noise[2]))
            physics.step(controller.update(self._active, measured), kin)

    def true_kinematics(self) -> Kinematics:
        """Noise-free state from PyBullet."""
        return self.physics.kinematics()

    def read_state(self, kin: Kinematics | None = None) -> MultirotorState:
        """State estimate (with the configured noise) from ``kin`` (default: read PyBullet now)."""
        kin = self.physics.kinematics() if kin is None else kin
        position, velocity, rates = np.array(kin.position), np.array(kin.velocity), np.array(kin.body_rates)
        if self.position_noise_std > 0:
            position += self.rng.normal(0.0, self.position_noise_std, 3)
        if self.velocity_noise_std > 0:
            velocity += self.rng.normal(0.0, self.velocity_noise_std, 3)
        if self.gyro_noise_std > 0:
            rates += self.rng.normal(0.0, self.gyro_noise_std, 3)
        return MultirotorState(position, velocity, np.array(kin.quaternion), rates, self.physics.rpm,
                               self.physics.time, kin.rotation)

    def safe_stop(self) -> None:
        """Hover in place: hold the current position (the flight controller keeps running)."""
        self._queue.clear()
        self._active = Position(np.array(self.physics.kinematics().position))
