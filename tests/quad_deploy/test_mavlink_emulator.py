"""Stock pymavlink against ``sim2real emulate mavlink`` (PX4-like) in its own process: heartbeat, stream rates,
SET_MESSAGE_INTERVAL, the OFFBOARD preconditions, arming ACKs, the offboard-loss failsafe."""
from __future__ import annotations

import os
import time

os.environ.setdefault("MAVLINK20", "1")
from pymavlink import mavutil  # noqa: E402

M = mavutil.mavlink
OFFBOARD = (M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 6, 0)


def _connect(em):
    master = mavutil.mavlink_connection(em.url, source_system=255, source_component=191, dialect="common")
    master.mav.heartbeat_send(M.MAV_TYPE_ONBOARD_CONTROLLER, M.MAV_AUTOPILOT_INVALID, 0, 0, M.MAV_STATE_ACTIVE)
    heartbeat = master.recv_match(type="HEARTBEAT", blocking=True, timeout=3)
    assert heartbeat is not None and heartbeat.autopilot == M.MAV_AUTOPILOT_PX4
    assert heartbeat.type == M.MAV_TYPE_QUADROTOR
    return master


def _command(master, command, *params):
    p = list(params) + [0.0] * (7 - len(params))
    master.mav.command_long_send(1, 1, command, 0, *p)
    ack = master.recv_match(type="COMMAND_ACK", blocking=True, timeout=2)
    assert ack is not None and ack.command == command
    return ack.result


def _rate(master, kind: str, seconds: float) -> float:
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        if master.recv_match(type=kind, blocking=True, timeout=0.1) is not None:
            count += 1
    return count / seconds


def _stream_position(master, z_ned: float, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        master.mav.set_position_target_local_ned_send(0, 1, 1, M.MAV_FRAME_LOCAL_NED, 0b0000_1111_1111_1000,
                                                      0, 0, z_ned, 0, 0, 0, 0, 0, 0, 0, 0)
        master.recv_match(blocking=True, timeout=0.05)


def test_streams_offboard_preconditions_arming_and_offboard_loss(quad_emulator):
    em = quad_emulator("mavlink")
    master = _connect(em)
    assert 20 < _rate(master, "LOCAL_POSITION_NED", 1.0) < 40  # PX4-like default 30 Hz
    assert _command(master, M.MAV_CMD_SET_MESSAGE_INTERVAL, M.MAVLINK_MSG_ID_LOCAL_POSITION_NED, 10_000) == 0
    assert _rate(master, "LOCAL_POSITION_NED", 1.0) > 80
    assert _command(master, M.MAV_CMD_SET_MESSAGE_INTERVAL, 999_999, 10_000) == M.MAV_RESULT_DENIED

    # OFFBOARD before any setpoint stream: rejected; arming in OFFBOARD is not possible either
    assert _command(master, M.MAV_CMD_DO_SET_MODE, *OFFBOARD) == M.MAV_RESULT_TEMPORARILY_REJECTED
    _stream_position(master, -1.0, 0.5)  # only 0.5 s of setpoints: still rejected
    assert _command(master, M.MAV_CMD_DO_SET_MODE, *OFFBOARD) == M.MAV_RESULT_TEMPORARILY_REJECTED
    _stream_position(master, -1.0, 0.7)  # now > 1 s at 20 Hz
    assert _command(master, M.MAV_CMD_DO_SET_MODE, *OFFBOARD) == M.MAV_RESULT_ACCEPTED
    assert _command(master, M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    _stream_position(master, -1.0, 3.5)
    position = master.recv_match(type="LOCAL_POSITION_NED", blocking=True, timeout=1)
    assert -1.1 < position.z < -0.85  # NED: 1 m up is z = -1
    heartbeat = master.recv_match(type="HEARTBEAT", blocking=True, timeout=2)
    assert heartbeat.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED and (heartbeat.custom_mode >> 16) & 0xFF == 6
    assert _command(master, M.MAV_CMD_COMPONENT_ARM_DISARM, 0) == M.MAV_RESULT_TEMPORARILY_REJECTED  # in the air

    # we go quiet: after COM_OF_LOSS_T (1 s) the vehicle lands on its own and disarms on the ground
    texts, end = [], time.monotonic() + 9.0
    armed = True
    while time.monotonic() < end and armed:
        msg = master.recv_match(type=["STATUSTEXT", "HEARTBEAT"], blocking=True, timeout=0.5)
        if msg is None:
            continue
        if msg.get_type() == "STATUSTEXT":
            texts.append(msg.text)
        elif msg.get_srcComponent() == 1:
            armed = bool(msg.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED)
    assert any("offboard" in t.lower() and "landing" in t.lower() for t in texts), texts
    assert not armed
    assert master.recv_match(type="LOCAL_POSITION_NED", blocking=True, timeout=1).z > -0.05
    modes = [r["mode"] for r in em.records() if r["kind"] == "mode"]
    assert modes == ["OFFBOARD", "AUTO.LAND"]
    master.close()
