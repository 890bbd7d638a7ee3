"""The safety layer between any policy and any driver: nothing outside the limits ever reaches a robot.

Per step, :meth:`SafetyLayer.filter` turns the controller's joint targets into a safe command, in this order:
non-finite guard (hold the measured pose), joint position limits (with a margin), maximum change relative to the
measured position, rate limit on the change between consecutive commands (joint velocity limit × period; it holds
across the deployment's phases — going home, episodes — and the first command is limited relative to the measured
pose, which is what a connected arm holds), and a Cartesian workspace box for the end effector (the step is
shortened until the tool stays inside).
Every change is recorded as an :class:`Intervention`. Angles rad, positions m, times s.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robots.kinematic_model import KinematicModel
from robots.spec import RobotSpec
from sim2real.hal.types import JointCommand, RobotState


@dataclass(frozen=True)
class SafetyConfig:
    """Limits. ``max_step`` rad per step from the measured position; ``velocity_fraction`` of each joint's
    velocity limit bounds the command rate; ``workspace_low``/``high`` m (world frame)."""

    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray  # rad/s per joint
    max_step: float
    workspace_low: np.ndarray
    workspace_high: np.ndarray

    @classmethod
    def from_spec(cls, spec: RobotSpec, base_position, margin: float = 0.0, velocity_fraction: float = 0.75,
                  max_step: float = 0.25) -> "SafetyConfig":
        base = np.asarray(base_position, dtype=float)
        return cls(spec.lower + margin, spec.upper - margin, spec.max_velocity * velocity_fraction, max_step,
                   base + np.asarray(spec.workspace_low), base + np.asarray(spec.workspace_high))

    def contains(self, positions: np.ndarray) -> bool:
        return bool(np.all(positions >= self.lower - 1e-9) and np.all(positions <= self.upper + 1e-9))


@dataclass
class Intervention:
    """One change the safety layer made: what (``kind``), on which step, and how (``detail``)."""

    step: int
    kind: str
    detail: str

    def as_dict(self) -> dict:
        return {"step": self.step, "kind": self.kind, "detail": self.detail}


def _outside(position: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Distance (m) from ``position`` to the box; 0 inside."""
    return float(np.linalg.norm(np.maximum(low - position, 0.0) + np.maximum(position - high, 0.0)))


@dataclass
class SafetyLayer:
    """Filters commands for one robot; ``kinematics`` evaluates the tool position of candidate targets."""

    config: SafetyConfig
    kinematics: KinematicModel
    period: float  # s, control period (rate limit)
    interventions: list[Intervention] = field(default_factory=list)
    _previous: np.ndarray | None = None
    _step: int = 0

    def _note(self, kind: str, detail: str) -> None:
        self.interventions.append(Intervention(self._step, kind, detail))

    def check_action(self, action: np.ndarray, step: int) -> np.ndarray:
        """The policy's action with non-finite entries replaced by 0 and clipped to [-1, 1]."""
        self._step = step
        action = np.asarray(action, dtype=float)
        if not np.all(np.isfinite(action)):
            self._note("nan_action", f"non-finite action {action.tolist()} replaced by 0")
            action = np.nan_to_num(action, nan=0.0, posinf=0.0, neginf=0.0)
        clipped = np.clip(action, -1.0, 1.0)
        if np.any(clipped != action):
            self._note("action_clip", f"action {np.round(action, 3).tolist()} clipped to [-1, 1]")
        return clipped

    def filter(self, command: JointCommand, state: RobotState, step: int) -> JointCommand:
        """A command every limit accepts, starting from ``command``; interventions are recorded."""
        self._step = step
        c = self.config
        measured = np.clip(state.positions, c.lower, c.upper)
        target = np.asarray(command.positions, dtype=float).copy()
        if not np.all(np.isfinite(target)):
            self._note("nan_command", "non-finite joint targets: holding the measured pose")
            self._previous = measured.copy()
            return JointCommand(measured.copy())
        clipped = np.clip(target, c.lower, c.upper)
        if np.any(clipped != target):
            joints = np.flatnonzero(clipped != target).tolist()
            self._note("joint_limit", f"joints {joints} clamped to their limits")
        target = clipped
        step_limit = np.minimum(c.max_step, c.max_velocity * self.period * 2.0)
        limited = np.clip(target, measured - step_limit, measured + step_limit)
        if np.any(limited != target):
            self._note("max_step", f"change from measured capped at {np.round(step_limit, 3).tolist()} rad")
        target = limited
        previous = measured if self._previous is None else self._previous
        rate = c.max_velocity * self.period
        limited = np.clip(target, previous - rate, previous + rate)
        if np.any(limited != target):
            self._note("rate_limit", f"command change capped at {np.round(rate, 3).tolist()} rad/step")
        target = np.clip(limited, c.lower, c.upper)
        target = self._workspace(target, measured)
        self._previous = target
        return JointCommand(target)

    def _workspace(self, target: np.ndarray, measured: np.ndarray) -> np.ndarray:
        """Shorten the move measured → target until the tool is inside the box (or no farther out than now)."""
        c = self.config
        tool = self.kinematics.forward(target)[0]
        if _outside(tool, c.workspace_low, c.workspace_high) == 0.0:
            return target
        allowed = _outside(self.kinematics.forward(measured)[0], c.workspace_low, c.workspace_high)
        low, high = 0.0, 1.0  # fraction of the move; 0 (stay) is accepted by construction
        for _ in range(12):
            mid = (low + high) / 2.0
            if _outside(self.kinematics.forward(measured + mid * (target - measured))[0],
                        c.workspace_low, c.workspace_high) <= allowed:
                low = mid
            else:
                high = mid
        self._note("workspace", f"tool {np.round(tool, 3).tolist()} outside the box: move shortened to {low:.3f}")
        return measured + low * (target - measured)


# --- multirotors ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MultirotorSafetyConfig:
    """Setpoint ranges and the flight envelope of a multirotor. Thrust N, rates rad/s, angles rad, speeds m/s,
    geofence m (world ENU). ``trip_tilt`` (rad): a measured tilt beyond it ends the flight (safe stop)."""

    max_thrust: float
    max_body_rate: float
    max_tilt: float
    max_speed: float
    geofence_low: np.ndarray
    geofence_high: np.ndarray
    trip_tilt: float = 1.2

    @classmethod
    def from_spec(cls, spec, geofence_low, geofence_high) -> "MultirotorSafetyConfig":
        """Ranges of a :class:`robots.quadrotor.QuadrotorSpec`: thrust 0..max_thrust, rates ±max_body_rate,
        tilt ±max_tilt, speed ≤ max_speed — the ranges the policy's normalized actions map onto."""
        return cls(spec.max_thrust, spec.max_body_rate, spec.max_tilt, spec.max_speed,
                   np.asarray(geofence_low, dtype=float), np.asarray(geofence_high, dtype=float))


@dataclass
class MultirotorSafetyLayer:
    """Filters multirotor setpoints: nothing outside :class:`MultirotorSafetyConfig` reaches a driver.

    Per setpoint: non-finite values → hold the measured position (clipped into the geofence); thrust clipped to
    0..max_thrust; body rates and yaw rate clipped to ±max_body_rate; roll and pitch to ±max_tilt; velocity scaled
    to max_speed, with components that would leave the geofence zeroed at its boundary; positions clipped into the
    geofence; rotor speeds clipped to 0..max_rpm. :meth:`breach` says when the *measured* state must end the flight.
    """

    config: MultirotorSafetyConfig
    max_rpm: float
    interventions: list[Intervention] = field(default_factory=list)
    _step: int = 0

    def _note(self, kind: str, detail: str) -> None:
        self.interventions.append(Intervention(self._step, kind, detail))

    def check_action(self, action: np.ndarray, step: int) -> np.ndarray:
        """The policy's normalized action, non-finite entries → 0, clipped to [-1, 1] (as for arms)."""
        return SafetyLayer.check_action(self, action, step)  # type: ignore[arg-type]  (same two fields used)

    def breach(self, position: np.ndarray, rotation: np.ndarray) -> str | None:
        """Why the measured state must end the flight (outside the geofence, tilted past ``trip_tilt``), or None."""
        c = self.config
        if not np.all(np.isfinite(position)):
            return "non-finite position estimate"
        if np.any(position < c.geofence_low) or np.any(position > c.geofence_high):
            return f"outside the geofence at {np.round(position, 3).tolist()} m"
        tilt = float(np.arccos(np.clip(rotation[2, 2], -1.0, 1.0)))
        if tilt > c.trip_tilt:
            return f"tilted {np.degrees(tilt):.0f} deg (limit {np.degrees(c.trip_tilt):.0f})"
        return None

    def filter(self, setpoint, state, step: int):
        """A setpoint every limit accepts, starting from ``setpoint`` (a :mod:`sim2real.hal.multirotor` setpoint)."""
        from sim2real.hal.multirotor import AttitudeThrust, Ctbr, MotorRpm, Position, Velocity

        self._step = step
        c = self.config
        values = np.concatenate([np.atleast_1d(np.asarray(v, dtype=float)) for v in vars(setpoint).values()])
        if not np.all(np.isfinite(values)):
            hold = np.clip(np.nan_to_num(state.position), c.geofence_low, c.geofence_high)
            self._note("nan_setpoint", f"non-finite {type(setpoint).__name__}: holding {np.round(hold, 3).tolist()}")
            return Position(hold, 0.0)
        if isinstance(setpoint, Ctbr):
            thrust = self._clip("thrust", setpoint.thrust, 0.0, c.max_thrust)
            rates = self._clip("body_rate", setpoint.body_rates, -c.max_body_rate, c.max_body_rate)
            return Ctbr(float(thrust), rates)
        if isinstance(setpoint, AttitudeThrust):
            thrust = self._clip("thrust", setpoint.thrust, 0.0, c.max_thrust)
            roll, pitch = self._clip("tilt", np.array([setpoint.roll, setpoint.pitch]), -c.max_tilt, c.max_tilt)
            yaw_rate = self._clip("body_rate", setpoint.yaw_rate, -c.max_body_rate, c.max_body_rate)
            return AttitudeThrust(float(thrust), float(roll), float(pitch), float(yaw_rate))
        if isinstance(setpoint, Velocity):
            return Velocity(self._velocity(np.asarray(setpoint.velocity, dtype=float), state.position),
                            float(self._clip("body_rate", setpoint.yaw_rate, -c.max_body_rate, c.max_body_rate)))
        if isinstance(setpoint, Position):
            return Position(self._clip("geofence", np.asarray(setpoint.position, dtype=float), c.geofence_low,
                                       c.geofence_high),
                            float(self._clip("body_rate", setpoint.yaw_rate, -c.max_body_rate, c.max_body_rate)))
        if isinstance(setpoint, MotorRpm):
            return MotorRpm(self._clip("rpm", np.asarray(setpoint.rpm, dtype=float), 0.0, self.max_rpm))
        raise TypeError(f"unsupported setpoint {type(setpoint).__name__}")

    def _clip(self, kind: str, value, low, high):
        clipped = np.clip(value, low, high)
        if np.any(clipped != value):
            self._note(kind, f"{kind} {np.round(value, 3).tolist()} clipped to its range")
        return clipped

    def _velocity(self, velocity: np.ndarray, position: np.ndarray) -> np.ndarray:
        c = self.config
        speed = float(np.linalg.norm(velocity))
        if speed > c.max_speed:
            self._note("speed", f"speed {speed:.2f} m/s scaled to {c.max_speed:g}")
            velocity = velocity * (c.max_speed / speed)
        outward = ((position <= c.geofence_low) & (velocity < 0)) | ((position >= c.geofence_high) & (velocity > 0))
        if np.any(outward):
            self._note("geofence", f"velocity components {np.flatnonzero(outward).tolist()} toward the fence zeroed")
            velocity = np.where(outward, 0.0, velocity)
        return velocity
