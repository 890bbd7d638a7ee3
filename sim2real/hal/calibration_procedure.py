"""Interactive calibration on hardware: zero pose → offsets, a small positive move per joint → directions, and a
sweep through every joint's range → tick limits. Torque is off throughout (the arm is moved by hand)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from robots.calibration import Calibration, JointCalibration
from robots.spec import RobotSpec
from sim2real.hal.servo_bus import ServoBus

MIN_MOVE_TICKS = 40  # a deliberate hand move; smaller changes are treated as "did not move"


def calibrate_interactively(spec: RobotSpec, bus: ServoBus, ask: Callable[[str], None],
                            sweeping: Callable[[], bool], say: Callable[[str], None] = print) -> Calibration:
    """``ask(prompt)`` blocks until the person confirms; ``sweeping()`` is True until they end the range sweep."""
    bus.open()
    try:
        bus.ping()
        bus.set_torque(False)
        ask("Move the arm to its zero pose (" + "; ".join(f"{j.name}: {j.zero}" for j in spec.joints)
            + ") and press Enter")
        zero = bus.read().positions.astype(int)
        directions = []
        for i, joint in enumerate(spec.joints):
            ask(f"Move {joint.name} a little in its positive direction ({joint.positive}) and press Enter")
            delta = int(bus.read().positions[i]) - zero[i]
            if abs(delta) < MIN_MOVE_TICKS:
                raise ValueError(f"{joint.name} moved only {delta} ticks; run calibrate again and move it further")
            directions.append(1 if delta > 0 else -1)
        say("Now move every joint slowly through its whole range; press Enter when done")
        low, high = zero.copy(), zero.copy()
        while sweeping():
            ticks = bus.read().positions.astype(int)
            low, high = np.minimum(low, ticks), np.maximum(high, ticks)
    finally:
        bus.close()
    joints = tuple(JointCalibration(j.name, servo_id, int(z), d, int(lo), int(hi))
                   for j, servo_id, z, d, lo, hi in zip(spec.joints, bus.ids, zero, directions, low, high))
    return Calibration(spec.name, joints)
