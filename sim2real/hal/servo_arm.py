"""An arm on a serial servo bus as a HAL :class:`Robot`: calibration maps ticks to the spec's joint angles and a
private kinematic model (same URDF as the simulator) gives the end-effector pose, velocity and IK steps."""
from __future__ import annotations

import numpy as np

from robots.calibration import Calibration
from robots.kinematic_model import KinematicModel
from robots.spec import RobotSpec
from sim2real.hal.model_arm import ModelArm
from sim2real.hal.servo_bus import BusError, ServoBus, ServosStopped
from sim2real.hal.types import JointCommand, RobotState


class ServoArm(ModelArm):
    """Position-controlled arm on ``bus``; world frame with the robot base at ``base_position`` (m).

    ``read_state`` never raises a :class:`BusError` once connected: when a read fails it returns the last good state
    with its old timestamp (so a watchdog sees it age) and counts the failure in ``read_errors``. Timestamps are on
    the bus's clock.

    ``bus_watchdog_s`` arms the servos' own watchdog on buses that have one, so they stop even if this process dies.
    Once the bus finds it expired (:mod:`sim2real.hal.servo_bus`; a read or a write after a long silence asks), the
    servos no longer follow: ``send_command`` raises :class:`ServosStopped` (reads still work). Before a loop
    commands, :meth:`take_control` re-arms servos whose watchdog expired while the host was idle on purpose (after
    connect, during a policy's warm-up, between deployments): they hold their present pose, then the watchdog is
    armed again.
    """

    def __init__(self, spec: RobotSpec, bus: ServoBus, calibration: Calibration, base_position=(0.0, 0.0, 0.0),
                 bus_watchdog_s: float = 0.1, read_retries: int = 1) -> None:
        calibration.check(spec)
        if calibration.ids != bus.ids:
            raise ValueError(f"calibration servo ids {calibration.ids} differ from the bus ids {bus.ids}")
        self.spec, self.bus, self.calibration = spec, bus, calibration
        self.base_position = tuple(base_position)
        self.bus_watchdog_s, self.read_retries = bus_watchdog_s, read_retries
        self.model: KinematicModel | None = None
        self.read_errors = 0
        self.rearms = 0  # times take_control found the bus watchdog expired and armed it again
        self.models: dict[int, str] = {}

    def connect(self) -> None:
        """Open the bus, check every servo answers, position mode, hold the present pose (clamped into the
        calibrated range: a joint resting just outside it is driven to its edge), torque on, watchdog. Lost or
        damaged replies are asked again (``bus.retries``)."""
        self.model = self.model or KinematicModel(self.spec, self.base_position)
        self.bus.open()
        try:
            self.models = self.bus.ping()
            if self.bus.has_watchdog:
                self.bus.set_watchdog(0.0)  # clears a watchdog left tripped by an earlier session
            self.bus.set_torque(False)
            self.bus.configure()
            reading = self._hold_present_pose()
            self.bus.set_torque(True)
            self._arm_watchdog()
            self._state(reading)
        except BusError:
            self.bus.close()
            raise

    def _hold_present_pose(self):
        """Read the servos and make their present pose (clamped into the calibrated range) the goal."""
        reading = self.bus.read()
        self.bus.write_goals(self.calibration.clip_ticks(reading.positions))
        return reading

    def _arm_watchdog(self) -> None:
        if self.bus.has_watchdog and self.bus_watchdog_s > 0:
            self.bus.set_watchdog(self.bus_watchdog_s)

    def take_control(self) -> None:
        """Before a loop starts commanding: if the bus watchdog expired while the host was idle (one sync read of
        the register asks), the servos hold their present pose and the watchdog is armed again. The expired servos
        were holding where their watchdog stopped them; clearing it makes goal writes count again and the next
        write holds the pose just read, so a servo that resumed toward its last accepted goal (a hold, or the
        last command of an earlier deployment, reached before the watchdog fired) moves for about one round trip
        at most. Raises :class:`BusError` if the bus does not answer."""
        if not (self.bus.has_watchdog and self.bus_watchdog_s > 0):
            return
        if self.bus.expired or self.bus.watchdog_tripped():
            reading = self.bus.read()
            self.bus.set_watchdog(0.0)
            self.bus.write_goals(self.calibration.clip_ticks(reading.positions))
            self._arm_watchdog()
            self._state(reading)
            self.rearms += 1

    def disconnect(self) -> None:
        """Close the port; torque stays on (the arm holds its last goal, or the bus watchdog stops it)."""
        self.bus.close()
        if self.model is not None:
            self.model.close()
            self.model = None

    def _state(self, reading) -> RobotState:
        q = self.calibration.ticks_to_radians(reading.positions)
        qd = self.calibration.velocity_to_radians(reading.velocities)
        efforts = reading.efforts * np.array([j.direction for j in self.calibration.joints])
        return self._make_state(q, qd, efforts, self.bus.clock())

    def _check_following(self) -> None:
        """:class:`ServosStopped` if the bus found servos whose watchdog expired."""
        if self.bus.expired:
            raise ServosStopped(self.bus.expiry)

    def read_state(self) -> RobotState:
        """The measured state; a failed sync read is tried again ``read_retries`` times (each counted in
        ``read_errors``), then the last good state is returned."""
        for _ in range(1 + self.read_retries):
            try:
                return self._state(self.bus.read(retries=0))
            except BusError:
                self.read_errors += 1
        if self._last is None:
            raise BusError(f"{self.bus.port_name}: no state read yet")
        return self._last

    def _goal_ticks(self, positions: np.ndarray) -> np.ndarray:
        """Joint targets (rad) clamped to the spec's limits and the calibrated servo range, in ticks."""
        targets = np.clip(np.asarray(positions, dtype=float), self.spec.lower, self.spec.upper)
        return self.calibration.radians_to_ticks(targets)

    def send_command(self, command: JointCommand) -> JointCommand:
        """Clamp to the spec's limits and the calibrated servo range, then sync-write; returns what was sent.
        :class:`ServosStopped` if the servos' bus watchdog expired (found before or by this write)."""
        self._check_following()
        ticks = self._goal_ticks(command.positions)
        self.bus.write_goals(ticks)
        self._check_following()
        return JointCommand(self.calibration.ticks_to_radians(ticks))

    def safe_stop(self) -> None:
        """Hold the last measured pose (one sync write, no reply awaited). Raises :class:`BusError` if the port is
        gone; servos with a bus watchdog then stop on their own. Servos whose bus watchdog expired ignore this
        write: their watchdog already stopped them where they were (torque on), and it is left expired (clearing
        it would let a servo resume toward its last accepted goal); the others hold the last measured pose. No
        watchdog check: the stop does not wait for a reply."""
        if self._last is not None:
            self.bus.write_goals(self._goal_ticks(self._last.positions), check=False)
