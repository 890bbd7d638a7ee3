"""Excitation targets for an arm: per-joint steps and chirps around the home pose, a joint move against gravity,
then loaded swings: the shoulder and elbow thrown out to extended poses (where gravity pulls hardest on the
servos), held there, and swung between them as fast as the safety layer's rate limit lets the targets move (the
accelerations load the servos towards their torque limit; with ``sysid collect --rate-limit 1`` the targets move at
the joints' full speed limit).

The targets only *ask*; the deployment's safety layer still clamps every one of them (joint limits, rate limit,
step limit, workspace box), and the log records what was actually sent. Angles rad, times s, rates Hz.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robots.spec import RobotSpec


@dataclass(frozen=True)
class Excitation:
    """Shape of the routine: ``amplitude`` (rad) of each step and chirp around home (shrunk to stay 0.05 rad
    inside the joint limits), ``hold_s`` per step level, a chirp of ``chirp_s`` from ``chirp_hz[0]`` to
    ``chirp_hz[1]``; ``joints``: which joints to excite (default: the four that carry the arm; the wrist roll and
    gripper links are so light that their servos limit-cycle, which no replay follows in phase); ``loaded_poses``:
    (shoulder_lift, elbow_flex, wrist_flex) rad of the extended poses the loaded swings visit (each from home,
    held ``loaded_hold_s``, then swung between the first and the last ``loaded_swings`` times; empty: no loaded
    swings). The defaults keep the SO-101's tool inside its workspace box."""

    amplitude: float = 0.35
    hold_s: float = 0.8
    chirp_s: float = 2.5
    chirp_hz: tuple[float, float] = (0.3, 2.5)
    joints: tuple[str, ...] = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex")
    loaded_poses: tuple[tuple[float, float, float], ...] = ((1.2, 0.0, 1.6), (0.9, -0.4, 1.6), (0.9, 0.0, 0.8),
                                                            (0.5, 0.0, 1.6))
    loaded_hold_s: float = 1.0
    loaded_swings: int = 3

    def targets(self, spec: RobotSpec, rate_hz: float) -> np.ndarray:
        """(steps, joints) joint targets at ``rate_hz``, starting and ending at home."""
        home = np.asarray(spec.home, dtype=float)
        names = [n for n in self.joints if n in spec.joint_names]
        extended = self._loaded(spec, home)
        if not names and not extended:
            raise ValueError(f"none of the excitation joints {self.joints} is a joint of {spec.name}")
        period = 1.0 / rate_hz
        rows: list[np.ndarray] = []

        def hold(pose: np.ndarray, seconds: float) -> None:
            rows.extend([pose.copy()] * max(1, int(round(seconds * rate_hz))))

        hold(home, 0.4)
        for name in names:
            j = spec.joint_names.index(name)
            room = min(self.amplitude, spec.upper[j] - 0.05 - home[j], home[j] - spec.lower[j] - 0.05)
            amplitude = max(room, 0.0)
            for level in (1.0, -1.0, 0.0):
                pose = home.copy()
                pose[j] += level * amplitude
                hold(pose, self.hold_s)
            t = np.arange(int(round(self.chirp_s * rate_hz))) * period
            f0, f1 = self.chirp_hz
            phase = 2.0 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2.0 * self.chirp_s))
            for value in 0.6 * amplitude * np.sin(phase):
                pose = home.copy()
                pose[j] += value
                rows.append(pose)
            hold(home, 0.4)
        if names:  # shoulder and elbow together: the whole arm swung out and back against gravity
            reach = home.copy()
            for name, delta in (("shoulder_lift", 0.5), ("elbow_flex", -0.6)):
                if name in spec.joint_names:
                    j = spec.joint_names.index(name)
                    reach[j] = float(np.clip(home[j] + delta, spec.lower[j] + 0.05, spec.upper[j] - 0.05))
            for _ in range(2):
                hold(reach, self.hold_s)
                hold(home, self.hold_s)
        for pose in extended:
            hold(pose, self.loaded_hold_s)
            hold(home, self.loaded_hold_s / 2.0)
        if len(extended) >= 2:
            for _ in range(self.loaded_swings):
                hold(extended[0], self.loaded_hold_s / 2.0)
                hold(extended[-1], self.loaded_hold_s / 2.0)
            hold(home, self.loaded_hold_s)
        return np.array(rows)

    def _loaded(self, spec: RobotSpec, home: np.ndarray) -> list[np.ndarray]:
        """The extended poses (home with shoulder lift, elbow and wrist flex set, 0.05 rad inside the limits);
        none when the robot lacks those joints."""
        names = ("shoulder_lift", "elbow_flex", "wrist_flex")
        if not all(name in spec.joint_names for name in names):
            return []
        index = [spec.joint_names.index(name) for name in names]
        poses = []
        for angles in self.loaded_poses:
            pose = home.copy()
            pose[index] = np.clip(angles, spec.lower[index] + 0.05, spec.upper[index] - 0.05)
            poses.append(pose)
        return poses
