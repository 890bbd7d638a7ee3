"""Servo calibration as data: how each joint's servo ticks map onto the spec's zero pose and positive direction.

``angle (rad) = direction * (ticks - offset) * 2π / ticks_per_turn``; ``min_ticks``/``max_ticks`` bound every goal
written to the servo (the mechanical range measured at calibration). Stored as JSON, one file per physical robot.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from robots.spec import RobotSpec

TICKS_PER_TURN = 4096  # Feetech STS3215 and Dynamixel X-series


@dataclass(frozen=True)
class JointCalibration:
    """One joint: servo bus id, tick reading at the joint's zero pose, direction ±1, allowed tick range."""

    joint: str
    servo_id: int
    offset: int
    direction: int
    min_ticks: int
    max_ticks: int

    def __post_init__(self) -> None:
        if self.direction not in (-1, 1):
            raise ValueError(f"joint {self.joint}: direction must be +1 or -1, got {self.direction}")
        if not 0 <= self.min_ticks < self.max_ticks < TICKS_PER_TURN:
            raise ValueError(f"joint {self.joint}: need 0 <= min_ticks < max_ticks < {TICKS_PER_TURN}")
        if not 0 <= self.servo_id <= 252:
            raise ValueError(f"joint {self.joint}: servo id {self.servo_id} outside 0..252")


@dataclass(frozen=True)
class Calibration:
    """Calibration of every joint of one robot, in spec joint order."""

    robot: str
    joints: tuple[JointCalibration, ...]
    ticks_per_turn: int = TICKS_PER_TURN

    @property
    def ids(self) -> list[int]:
        return [j.servo_id for j in self.joints]

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([j.offset for j in self.joints], dtype=float),
                np.array([j.direction for j in self.joints], dtype=float))

    def ticks_to_radians(self, ticks: np.ndarray) -> np.ndarray:
        """Joint angles (rad) from raw positions (ticks), spec order."""
        offset, direction = self._arrays()
        return direction * (np.asarray(ticks, dtype=float) - offset) * (2.0 * math.pi / self.ticks_per_turn)

    def radians_to_ticks(self, radians: np.ndarray) -> np.ndarray:
        """Goal ticks (int, clipped to each servo's range) for joint angles (rad)."""
        offset, direction = self._arrays()
        ticks = np.rint(offset + direction * np.asarray(radians, dtype=float) * self.ticks_per_turn / (2.0 * math.pi))
        return self.clip_ticks(ticks)

    def clip_ticks(self, ticks: np.ndarray) -> np.ndarray:
        """``ticks`` (rounded to int) inside each servo's recorded range ``min_ticks..max_ticks``: the only goals
        ever written to a servo."""
        low = np.array([j.min_ticks for j in self.joints])
        high = np.array([j.max_ticks for j in self.joints])
        return np.clip(np.rint(np.asarray(ticks, dtype=float)), low, high).astype(np.int64)

    def velocity_to_radians(self, ticks_per_second: np.ndarray) -> np.ndarray:
        """Joint velocities (rad/s) from tick rates (ticks/s)."""
        _, direction = self._arrays()
        return direction * np.asarray(ticks_per_second, dtype=float) * (2.0 * math.pi / self.ticks_per_turn)

    def check(self, spec: RobotSpec) -> None:
        """Raise ``ValueError`` unless this calibration names exactly the spec's joints, in order."""
        names = tuple(j.joint for j in self.joints)
        if self.robot != spec.name or names != spec.joint_names:
            raise ValueError(f"calibration is for {self.robot} {list(names)}, robot is {spec.name} "
                             f"{list(spec.joint_names)}")

    def to_json(self) -> str:
        return json.dumps({"robot": self.robot, "ticks_per_turn": self.ticks_per_turn,
                           "joints": [asdict(j) for j in self.joints]}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        """Parse a calibration file; ``ValueError`` names what is wrong."""
        try:
            data = json.loads(text)
            joints = tuple(JointCalibration(**j) for j in data["joints"])
            return cls(str(data["robot"]), joints, int(data.get("ticks_per_turn", TICKS_PER_TURN)))
        except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as err:  # RecursionError: nested too deep
            raise ValueError(f"not a calibration file ({err})") from None


def calibration_from_spec(spec: RobotSpec) -> Calibration:
    """The nominal calibration: zero pose at mid-travel (tick 2048), positive = counting up, range = spec limits.

    This is what the emulators' servos implement, so ``sim2real calibrate --from-spec`` matches them exactly.
    """
    mid = TICKS_PER_TURN // 2
    scale = TICKS_PER_TURN / (2.0 * math.pi)
    joints = []
    for joint, actuator in zip(spec.joints, (spec.actuator(n) for n in spec.joint_names)):
        if actuator.bus_id is None:
            raise ValueError(f"robot {spec.name}: joint {joint.name} has no servo bus id")
        low = max(0, int(math.floor(mid + joint.lower * scale)))
        high = min(TICKS_PER_TURN - 1, int(math.ceil(mid + joint.upper * scale)))
        joints.append(JointCalibration(joint.name, actuator.bus_id, mid, 1, low, high))
    return Calibration(spec.name, tuple(joints))
