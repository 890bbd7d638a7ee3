"""The stock ROBOTIS PacketHandler against the emulated Protocol 2.0 bus."""
from __future__ import annotations

import time

import dynamixel_sdk as dx
import pytest

from sim2real.emulators.dynamixel import crc16, packet, stuff, unstuff


def test_crc_and_stuffing_match_the_reference_packet():
    assert packet(1, 0x01, b"") == bytes.fromhex("FFFFFD0001030001194E")  # ping id 1 (arms.md)
    assert stuff(b"\x01\xff\xff\xfd\x02") == b"\x01\xff\xff\xfd\xfd\x02"
    assert unstuff(stuff(b"\xff\xff\xfd\xff\xff\xfd")) == b"\xff\xff\xfd\xff\xff\xfd"
    assert crc16(b"") == 0


@pytest.fixture
def bus(emulator):
    em = emulator("dynamixel")
    port, handler = dx.PortHandler(em.port), dx.PacketHandler(2.0)
    assert port.openPort() and port.setBaudRate(57600)
    yield port, handler
    port.closePort()


def test_ping_every_servo_and_model_numbers(bus):
    port, ph = bus
    for servo_id in range(1, 7):
        model, result, error = ph.ping(port, servo_id)
        assert (model, result, error) == (1200, dx.COMM_SUCCESS, 0)
    assert ph.ping(port, 7)[1] == dx.COMM_RX_TIMEOUT
    found, result = ph.broadcastPing(port)
    assert result == dx.COMM_SUCCESS and sorted(found) == [1, 2, 3, 4, 5, 6]


ITEMS = [(8, 1, 1), (11, 1, 3), (20, 4, -5), (48, 4, 4000), (52, 4, 10), (64, 1, 1), (65, 1, 1), (84, 2, 640),
         (98, 1, 10), (112, 4, 100), (116, 4, 2100), (7, 1, 9)]  # ID last: servo 2 answers as 9 afterwards


def test_read_back_what_was_written(bus):
    port, ph = bus
    write = {1: ph.write1ByteTxRx, 2: ph.write2ByteTxRx, 4: ph.write4ByteTxRx}
    read = {1: ph.read1ByteTxRx, 2: ph.read2ByteTxRx, 4: ph.read4ByteTxRx}
    for address, size, value in ITEMS:
        raw = value & ((1 << (8 * size)) - 1)
        if address == 7:
            assert ph.write1ByteTxRx(port, 2, 64, 0) == (dx.COMM_SUCCESS, 0)  # EEPROM needs torque off
        assert write[size](port, 2, address, raw) == (dx.COMM_SUCCESS, 0), address
        got, result, error = read[size](port, value if address == 7 else 2, address)
        assert (got, result, error) == (raw, dx.COMM_SUCCESS, 0), address


def test_status_errors(bus):
    port, ph = bus
    _, result, error = ph.read1ByteTxRx(port, 1, 200)  # past the end of the table
    assert result == dx.COMM_SUCCESS and error == 7 and "not available" in ph.getRxPacketError(error)
    assert ph.write1ByteTxRx(port, 1, 0, 5) == (dx.COMM_SUCCESS, 7)  # Model_Number is read-only
    assert ph.write1ByteTxRx(port, 1, 65, 2) == (dx.COMM_SUCCESS, 4)  # LED accepts 0..1
    assert ph.write1ByteTxRx(port, 1, 11, 2) == (dx.COMM_SUCCESS, 4)  # operating mode 2 does not exist
    assert ph.write2ByteTxRx(port, 1, 116, 5) == (dx.COMM_SUCCESS, 5)  # half of a 4-byte item
    assert ph.write1ByteTxRx(port, 1, 64, 1) == (dx.COMM_SUCCESS, 0)
    assert ph.write1ByteTxRx(port, 1, 11, 3) == (dx.COMM_SUCCESS, 7)  # EEPROM while torque is on
    assert ph.write4ByteTxRx(port, 1, 116, 5000) == (dx.COMM_SUCCESS, 6)  # beyond Max_Position_Limit
    bad = bytearray(packet(1, 0x02, bytes([132, 0, 4, 0])))
    bad[-1] ^= 0xFF
    port.clearPort()
    port.writePort(bytes(bad))
    port.setPacketTimeout(20)
    status, result = ph.rxPacket(port, False)
    assert result == dx.COMM_SUCCESS and status[8] == 3  # CRC error reported


def test_sync_read_bulk_read_sync_write_and_reboot(bus):
    port, ph = bus
    for servo_id in range(1, 7):
        assert ph.write1ByteTxRx(port, servo_id, 64, 1) == (dx.COMM_SUCCESS, 0)
    writer = dx.GroupSyncWrite(port, ph, 116, 4)
    goals = {i: 2048 + 40 * i for i in range(1, 7)}
    for i, goal in goals.items():
        writer.addParam(i, list(goal.to_bytes(4, "little")))
    assert writer.txPacket() == dx.COMM_SUCCESS
    reader = dx.GroupSyncRead(port, ph, 116, 4)
    for i in goals:
        reader.addParam(i)
    assert reader.txRxPacket() == dx.COMM_SUCCESS
    assert {i: reader.getData(i, 116, 4) for i in goals} == goals
    bulk = dx.GroupBulkRead(port, ph)
    assert bulk.addParam(1, 132, 4) and bulk.addParam(3, 7, 1)
    assert bulk.txRxPacket() == dx.COMM_SUCCESS
    assert bulk.getData(3, 7, 1) == 3
    time.sleep(0.5)
    assert abs(bulk.txRxPacket() or bulk.getData(1, 132, 4) - goals[1]) < 20  # the joint got there
    assert ph.reboot(port, 2) == (dx.COMM_SUCCESS, 0)
    assert ph.read1ByteTxRx(port, 2, 64)[0] == 0  # torque off after reboot


def test_bus_watchdog_stops_the_servo_and_refuses_goals_until_cleared(bus):
    port, ph = bus
    assert ph.write1ByteTxRx(port, 1, 64, 1) == (dx.COMM_SUCCESS, 0)
    assert ph.write1ByteTxRx(port, 1, 98, 5) == (dx.COMM_SUCCESS, 0)  # 100 ms
    time.sleep(0.3)  # silence on the bus
    assert ph.read1ByteTxRx(port, 1, 98)[0] == 0xFF  # -1: tripped
    assert ph.write4ByteTxRx(port, 1, 116, 2300) == (dx.COMM_SUCCESS, 4)
    assert ph.write1ByteTxRx(port, 1, 98, 0) == (dx.COMM_SUCCESS, 0)
    assert ph.write4ByteTxRx(port, 1, 116, 2300) == (dx.COMM_SUCCESS, 0)
