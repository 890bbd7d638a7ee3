"""The stock Feetech ``scservo_sdk`` against the emulated STS3215 bus."""
from __future__ import annotations

import scservo_sdk as sc

from sim2real.emulators.feetech import packet


def test_feetech_bus_with_the_stock_sdk(emulator):
    em = emulator("feetech")
    port, ph = sc.PortHandler(em.port), sc.PacketHandler(0)
    assert port.openPort() and port.setBaudRate(1_000_000)
    try:
        for servo_id in range(1, 7):
            assert ph.ping(port, servo_id) == (777, sc.COMM_SUCCESS, 0)
        assert ph.read2ByteTxRx(port, 3, 3) == (777, sc.COMM_SUCCESS, 0)
        assert ph.write1ByteTxRx(port, 1, 33, 0) == (sc.COMM_SUCCESS, 0x40)  # EEPROM while Lock = 1
        assert ph.write1ByteTxRx(port, 1, 55, 0) == (sc.COMM_SUCCESS, 0)
        assert ph.write1ByteTxRx(port, 1, 33, 0) == (sc.COMM_SUCCESS, 0)
        assert ph.write1ByteTxRx(port, 1, 56, 0) == (sc.COMM_SUCCESS, 0x40)  # Present_Position is read-only
        assert ph.write1ByteTxRx(port, 1, 40, 2) == (sc.COMM_SUCCESS, 0x08)  # torque enable is 0..1
        assert ph.write1ByteTxRx(port, 1, 40, 1) == (sc.COMM_SUCCESS, 0)
        writer = sc.GroupSyncWrite(port, ph, 42, 2)
        for servo_id in range(1, 7):
            assert ph.write1ByteTxRx(port, servo_id, 40, 1) == (sc.COMM_SUCCESS, 0)
            writer.addParam(servo_id, list((2048 + 30 * servo_id).to_bytes(2, "little")))
        assert writer.txPacket() == sc.COMM_SUCCESS
        reader = sc.GroupSyncRead(port, ph, 42, 2)
        for servo_id in range(1, 7):
            reader.addParam(servo_id)
        assert reader.txRxPacket() == sc.COMM_SUCCESS
        assert [reader.getData(i, 42, 2) for i in range(1, 7)] == [2048 + 30 * i for i in range(1, 7)]
        bad = bytearray(packet(1, 0x02, bytes([56, 2])))
        bad[-1] ^= 0xFF
        port.clearPort()
        port.writePort(bytes(bad))
        port.setPacketTimeout(8)
        assert ph.rxPacket(port)[1] == sc.COMM_RX_TIMEOUT  # wrong checksum: the servo stays silent
    finally:
        port.closePort()
