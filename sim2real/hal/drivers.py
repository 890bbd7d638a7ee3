"""Build a hardware :class:`Robot` from CLI-level choices (driver name, port, baud rate, calibration file)."""
from __future__ import annotations

from robots.calibration import Calibration
from robots.spec import RobotSpec
from sim2real.errors import UserError
from sim2real.hal.robot import Robot

DRIVERS = ("dynamixel", "feetech", "ros2")  # arms
FLIGHT_DRIVERS = ("crazyflie", "mavlink")  # multirotors (sim2real.hal.crazyflie, sim2real.hal.mavlink)


def load_calibration(path: str | None, spec: RobotSpec) -> Calibration:
    """A calibration file for ``spec`` (``sim2real calibrate`` writes them); user errors name the file."""
    if path is None:
        raise UserError("--calibration is required for servo buses (make one with `sim2real calibrate`)")
    try:
        with open(path, encoding="utf-8") as handle:
            calibration = Calibration.from_json(handle.read())
        calibration.check(spec)
    except OSError as err:
        raise UserError(f"{path}: cannot read calibration ({err.strerror})") from None
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
    return calibration


def make_robot(driver: str, spec: RobotSpec, base_position, port: str | None = None, baudrate: int = 1_000_000,
               calibration: str | None = None, bus_watchdog_s: float = 0.1, latency_ms: float = 16.0) -> Robot:
    """The hardware robot for ``driver``; nothing is opened until ``connect()``."""
    if driver == "ros2":
        from sim2real.hal.ros2 import Ros2Arm

        return Ros2Arm(spec, base_position)
    if driver not in DRIVERS:
        raise UserError(f"--driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
    if not port:
        raise UserError(f"--port is required for the {driver} driver (e.g. /dev/ttyUSB0)")
    from sim2real.hal.dynamixel import DynamixelBus
    from sim2real.hal.feetech import FeetechBus
    from sim2real.hal.servo_arm import ServoArm

    cal = load_calibration(calibration, spec)
    bus_class = DynamixelBus if driver == "dynamixel" else FeetechBus
    try:
        bus = bus_class(port, cal.ids, baudrate, latency_ms)
    except ValueError as err:
        raise UserError(f"--baud: {err}") from None
    return ServoArm(spec, bus, cal, base_position, bus_watchdog_s)
