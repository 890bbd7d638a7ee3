"""NED/FRD ↔ ENU/FLU conversions (sim2real.frames): known vectors and attitudes, and round trips."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim2real.frames import (attitude_enu_flu_to_ned_frd, attitude_ned_frd_to_enu_flu, enu_to_ned,
                             euler_to_quaternion, flu_to_frd, frd_to_flu, matrix_to_quaternion, ned_to_enu,
                             quaternion_to_euler, quaternion_to_matrix, wxyz, xyzw)


def test_vectors():
    assert np.allclose(enu_to_ned([1.0, 2.0, 3.0]), [2.0, 1.0, -3.0])  # east 1, north 2, up 3
    assert np.allclose(ned_to_enu(enu_to_ned([0.3, -0.2, 1.5])), [0.3, -0.2, 1.5])
    assert np.allclose(flu_to_frd([0.1, 0.2, 0.3]), [0.1, -0.2, -0.3])
    assert np.allclose(frd_to_flu(flu_to_frd([0.1, 0.2, 0.3])), [0.1, 0.2, 0.3])


@pytest.mark.parametrize("enu_yaw, ned_yaw", [(0.0, math.pi / 2), (math.pi / 2, 0.0), (math.pi, -math.pi / 2)])
def test_heading(enu_yaw, ned_yaw):
    """Facing east is yaw 0 in ENU and heading 90° in NED; facing north is 90° ENU and 0 NED."""
    q = attitude_enu_flu_to_ned_frd(euler_to_quaternion([0.0, 0.0, enu_yaw]))
    assert quaternion_to_euler(q)[2] == pytest.approx(ned_yaw, abs=1e-9)


def test_tilt_signs():
    """Nose down is +pitch about FLU's left axis and -pitch about FRD's right axis; right side down is +roll in
    both."""
    roll, pitch, _ = quaternion_to_euler(attitude_enu_flu_to_ned_frd(euler_to_quaternion([0.1, 0.2, 0.0])))
    assert roll == pytest.approx(0.1) and pitch == pytest.approx(-0.2)


def test_round_trips_and_body_vectors():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = euler_to_quaternion(rng.uniform([-3, -1.5, -3], [3, 1.5, 3]))
        assert np.allclose(quaternion_to_euler(q), quaternion_to_euler(matrix_to_quaternion(quaternion_to_matrix(q))))
        ned = attitude_enu_flu_to_ned_frd(q)
        back = attitude_ned_frd_to_enu_flu(ned)
        assert np.allclose(back, q) or np.allclose(back, -q)
        v_body = rng.normal(size=3)  # a body vector seen in the world is the same physical vector in both frames
        world_enu = quaternion_to_matrix(q) @ v_body
        world_ned = quaternion_to_matrix(ned) @ flu_to_frd(v_body)
        assert np.allclose(enu_to_ned(world_enu), world_ned)
        assert np.allclose(xyzw(wxyz(q)), q)
