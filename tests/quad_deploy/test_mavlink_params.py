"""What a ground station or MAVSDK asks a PX4 vehicle before anything else — the parameter protocol,
AUTOPILOT_VERSION, HOME_POSITION — answered by ``sim2real emulate mavlink`` to stock pymavlink; COM_OF_LOSS_T and
COM_ARM_WO_GPS set over the link change what the emulated vehicle does."""
from __future__ import annotations

import os
import struct
import time

import pytest

os.environ.setdefault("MAVLINK20", "1")
from pymavlink import mavutil  # noqa: E402

from sim2real.emulators.mavlink import HOME_ORIGIN  # noqa: E402
from test_mavlink_emulator import _command, _connect, _stream_position  # noqa: E402

M = mavutil.mavlink
OFFBOARD = (M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 6, 0)
EXPECTED = {"COM_ARM_WO_GPS": (M.MAV_PARAM_TYPE_INT32, 1), "COM_DISARM_LAND": (M.MAV_PARAM_TYPE_REAL32, 2.0),
            "COM_LKDOWN_TKO": (M.MAV_PARAM_TYPE_REAL32, 3.0), "COM_OF_LOSS_T": (M.MAV_PARAM_TYPE_REAL32, 1.0),
            "CBRK_FLIGHTTERM": (M.MAV_PARAM_TYPE_INT32, 121212), "FD_FAIL_P": (M.MAV_PARAM_TYPE_INT32, 60),
            "FD_FAIL_P_TTRI": (M.MAV_PARAM_TYPE_REAL32, 0.3), "FD_FAIL_R": (M.MAV_PARAM_TYPE_INT32, 60),
            "FD_FAIL_R_TTRI": (M.MAV_PARAM_TYPE_REAL32, 0.3)}


def _value(msg) -> float:
    """A PARAM_VALUE's value: INT32 bytewise in the float field (PX4's encoding), REAL32 as is."""
    if msg.param_type == M.MAV_PARAM_TYPE_INT32:
        return struct.unpack("<i", struct.pack("<f", msg.param_value))[0]
    return msg.param_value


def _param_values(master, count: int, timeout: float = 2.0) -> list:
    found, end = [], time.monotonic() + timeout
    while len(found) < count and time.monotonic() < end:
        msg = master.recv_match(type="PARAM_VALUE", blocking=True, timeout=0.2)
        if msg is not None:
            found.append(msg)
    return found


def _set(master, name: str, value: float, kind: int):
    wire = struct.unpack("<f", struct.pack("<i", int(value)))[0] if kind == M.MAV_PARAM_TYPE_INT32 else value
    master.mav.param_set_send(1, 1, name.encode(), wire, kind)
    reply = _param_values(master, 1)
    assert reply and reply[0].param_id == name, reply
    return reply[0]


def test_param_list_read_set_round_trip(quad_emulator):
    em = quad_emulator("mavlink")
    master = _connect(em)
    master.mav.param_request_list_send(1, 1)
    listed = _param_values(master, len(EXPECTED))
    assert {m.param_id: (m.param_type, pytest.approx(_value(m), rel=1e-6)) for m in listed} == EXPECTED  # float32
    assert sorted(m.param_index for m in listed) == list(range(len(EXPECTED)))
    assert {m.param_count for m in listed} == {len(EXPECTED)}

    master.mav.param_request_read_send(1, 1, b"COM_OF_LOSS_T", -1)  # by name
    by_name = _param_values(master, 1)[0]
    master.mav.param_request_read_send(1, 1, b"", by_name.param_index)  # by index
    by_index = _param_values(master, 1)[0]
    assert by_name.param_id == by_index.param_id == "COM_OF_LOSS_T" and by_index.param_value == 1.0

    assert _value(_set(master, "COM_OF_LOSS_T", 0.3, M.MAV_PARAM_TYPE_REAL32)) == \
        struct.unpack("<f", struct.pack("<f", 0.3))[0]
    refused = _set(master, "COM_OF_LOSS_T", 500.0, M.MAV_PARAM_TYPE_REAL32)  # outside 0..60: the value kept
    assert abs(_value(refused) - 0.3) < 1e-6
    assert _value(_set(master, "COM_ARM_WO_GPS", 0, M.MAV_PARAM_TYPE_INT32)) == 0
    master.mav.param_request_list_send(1, 1)
    again = {m.param_id: _value(m) for m in _param_values(master, len(EXPECTED))}
    assert again["COM_ARM_WO_GPS"] == 0 and abs(again["COM_OF_LOSS_T"] - 0.3) < 1e-6
    # COM_ARM_WO_GPS 0: the emulated vehicle has no GPS fix, so arming is denied
    assert _command(master, M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_DENIED
    master.close()


def _offboard_loss_delay(em, master, loss_s: float) -> float:
    """Set COM_OF_LOSS_T, enter OFFBOARD on the ground, go quiet: emulated seconds from the last setpoint to the
    failsafe's mode change (the emulator's journal)."""
    _set(master, "COM_OF_LOSS_T", loss_s, M.MAV_PARAM_TYPE_REAL32)
    _stream_position(master, 0.0, 1.2)
    assert _command(master, M.MAV_CMD_DO_SET_MODE, *OFFBOARD) == M.MAV_RESULT_ACCEPTED
    _stream_position(master, 0.0, 0.3)
    end = time.monotonic() + loss_s + 0.6
    while time.monotonic() < end:  # quiet, but reading what the vehicle streams (a full socket buffer drops replies)
        master.recv_match(blocking=True, timeout=0.05)
    journal = em.records()
    last = [r["t"] for r in journal if r["kind"] == "setpoint"][-1]
    failsafe = [r["t"] for r in journal if r["kind"] == "mode" and r["mode"] == "AUTO.LOITER" and r["t"] > last]
    assert failsafe, [r for r in journal if r["kind"] == "mode"]
    assert _command(master, M.MAV_CMD_DO_SET_MODE, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 3, 0) == 0  # POSCTL again
    return failsafe[0] - last


def test_com_of_loss_t_sets_the_offboard_loss_delay(quad_emulator):
    em = quad_emulator("mavlink")
    master = _connect(em)
    for loss_s in (0.3, 1.5):
        delay = _offboard_loss_delay(em, master, loss_s)
        print(f"COM_OF_LOSS_T {loss_s} s: failsafe {delay:.4f} s after the last setpoint (emulator time)")
        assert abs(delay - loss_s) < 0.02, (loss_s, delay)  # one physics step (1/240 s) and the journal's rounding
    master.close()


def test_autopilot_version_and_home_position_answered(quad_emulator):
    em = quad_emulator("mavlink")
    master = _connect(em)
    for command, params in ((M.MAV_CMD_REQUEST_MESSAGE, (M.MAVLINK_MSG_ID_AUTOPILOT_VERSION,)),
                            (M.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES, (1,))):
        master.mav.command_long_send(1, 1, command, 0, *params, *[0.0] * (7 - len(params)))
        version = master.recv_match(type="AUTOPILOT_VERSION", blocking=True, timeout=2)
        assert version is not None, command
        assert version.capabilities & M.MAV_PROTOCOL_CAPABILITY_MAVLINK2
        assert version.capabilities & M.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
        assert version.capabilities & M.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET
        assert not version.capabilities & M.MAV_PROTOCOL_CAPABILITY_MISSION_INT  # no missions in the emulation
        assert version.flight_sw_version >> 24 == 1
        ack = master.recv_match(type="COMMAND_ACK", blocking=True, timeout=2)
        assert ack.command == command and ack.result == M.MAV_RESULT_ACCEPTED
    for command, params in ((M.MAV_CMD_REQUEST_MESSAGE, (M.MAVLINK_MSG_ID_HOME_POSITION,)),
                            (M.MAV_CMD_GET_HOME_POSITION, ())):
        master.mav.command_long_send(1, 1, command, 0, *params, *[0.0] * (7 - len(params)))
        home = master.recv_match(type="HOME_POSITION", blocking=True, timeout=2)
        assert home is not None, command
        assert abs(home.x) < 0.01 and abs(home.y) < 0.01 and -0.05 < home.z < 0.0  # NED: on the ground at the origin
        assert abs(home.latitude - HOME_ORIGIN[0] * 1e7) < 5 and abs(home.longitude - HOME_ORIGIN[1] * 1e7) < 5
        ack = master.recv_match(type="COMMAND_ACK", blocking=True, timeout=2)
        assert ack.command == command and ack.result == M.MAV_RESULT_ACCEPTED
    master.close()
