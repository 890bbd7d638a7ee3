"""Crazyflie motor command (PWM 0..65535) ↔ thrust (N): a per-motor quadratic, the form of Bitcraze's published
system identification of the Crazyflie 2.x (J. Förster, ETH Zürich 2015):

    thrust per motor [N] = quadratic·pwm² + linear·pwm + offset,   0 < pwm ≤ 65535;   pwm 0: motor stopped, 0 N.

The fit's offset (0.55 mN per motor, under 1 % of a motor's hover thrust) is the thrust of a barely spinning motor;
a motor at pwm 0 is stopped, so the map is 0 N there and the fit everywhere else, and the inverse gives pwm 0 for
any thrust a spinning motor cannot make that small. The commander sends one PWM for all four motors, so collective
thrust is four times the per-motor value.

The driver's map is a calibration (``--calibration FILE`` for ``deploy --driver crazyflie``, a YAML mapping
``thrust_map: {quadratic: …, linear: …, offset: …}`` in N per motor), the emulator's is the vehicle's physics; both
default to :data:`CRAZYFLIE_2X`, so a wrong calibration shows in a rehearsal as it would on the real vehicle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from robots.quadrotor import QuadrotorSpec
from sim2real.errors import UserError
from sim2real.user_files import read_yaml_mapping

PWM_MAX = 65535
MOTORS = 4


@dataclass(frozen=True)
class ThrustMap:
    """Per-motor thrust (N) = ``quadratic``·pwm² + ``linear``·pwm + ``offset`` for 0 < pwm ≤ 65535, 0 N at pwm 0.

    Coefficients must be finite and non-negative with ``quadratic`` or ``linear`` positive, so thrust rises with
    pwm and every thrust has one pwm (``ValueError`` otherwise)."""

    quadratic: float
    linear: float
    offset: float

    def __post_init__(self) -> None:
        values = (self.quadratic, self.linear, self.offset)
        if not all(math.isfinite(v) and v >= 0 for v in values) or not (self.quadratic > 0 or self.linear > 0):
            raise ValueError(f"thrust map {values}: coefficients must be finite and >= 0, quadratic or linear > 0")

    def thrust(self, pwm: float) -> float:
        """Collective thrust (N) of all four motors at ``pwm`` (clipped to 0..65535)."""
        pwm = min(float(pwm), PWM_MAX)
        if pwm <= 0:
            return 0.0
        return MOTORS * ((self.quadratic * pwm + self.linear) * pwm + self.offset)

    def pwm(self, thrust: float) -> float:
        """The pwm (not rounded, not clipped above) at which the four motors make ``thrust`` N; 0 below the
        smallest thrust a spinning motor makes."""
        need = thrust / MOTORS - self.offset
        if not need > 0:
            return 0.0
        a, b = self.quadratic, self.linear
        if a == 0:
            return need / b
        return 2.0 * need / (b + math.sqrt(b * b + 4.0 * a * need))  # the positive root, stable for small a

    def scaled(self, factor: float) -> ThrustMap:
        """The same curve with every thrust multiplied by ``factor``."""
        return ThrustMap(self.quadratic * factor, self.linear * factor, self.offset * factor)

    @classmethod
    def linear_to(cls, max_thrust: float) -> ThrustMap:
        """A linear map reaching collective ``max_thrust`` (N) at pwm 65535 (no offset)."""
        return cls(0.0, max_thrust / MOTORS / PWM_MAX, 0.0)


CRAZYFLIE_2X = ThrustMap(quadratic=2.130295e-11, linear=1.032633e-6, offset=5.484560e-4)


def thrust_map_for(spec: QuadrotorSpec) -> ThrustMap:
    """The PWM map of ``spec``'s motors: :data:`CRAZYFLIE_2X` for the Crazyflie; for any other vehicle the same
    curve scaled so that pwm 65535 gives the spec's maximum thrust (no published fit for it)."""
    if spec.name == "crazyflie":
        return CRAZYFLIE_2X
    return CRAZYFLIE_2X.scaled(spec.max_thrust / CRAZYFLIE_2X.thrust(PWM_MAX))


def load_thrust_map(path: str) -> ThrustMap:
    """The ``thrust_map`` of a Crazyflie calibration YAML (N per motor); one-line :class:`UserError` for a file that
    cannot be read or does not hold a valid map."""
    names = [f.name for f in fields(ThrustMap)]
    section = read_yaml_mapping(path, "Crazyflie calibration").get("thrust_map")
    if (not isinstance(section, dict) or set(section) != set(names)
            or not all(isinstance(section[n], (int, float)) and not isinstance(section[n], bool) for n in names)):
        raise UserError(f"{path}: a Crazyflie calibration holds thrust_map: with the numbers {', '.join(names)} "
                        f"(N per motor: quadratic·pwm² + linear·pwm + offset)")
    try:
        return ThrustMap(**{n: float(section[n]) for n in names})
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
