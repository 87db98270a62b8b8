"""SCPI LCR meter driver against its simulator over a real TCP socket: every public method,
measurements checked against the world's impedance model of the sample."""

from __future__ import annotations

import cmath
import math
import socket

import pytest

from drivers import DeviceReportedError, LcrMeasurementError
from tests.hil.helpers import model_impedance, open_driver, running_cell

LCR = {"lcr": {"kind": "scpi_lcr"}}
NOISE = 5 * 0.005  # five standard deviations of the world's 0.5 % complex noise
NR3 = 1e-4  # 6 significant digits on the wire


def test_identity_settings_and_read_back() -> None:
    with running_cell(LCR) as cell, open_driver(cell, "lcr", timeout=0.3) as lcr:
        sim = cell.sims["lcr"]
        assert lcr.identify() == {
            "manufacturer": "Keysight Technologies",
            "model": "E4980A",
            "serial": "MY12345678",
            "firmware": "A.02.10",
        }
        lcr.clear()
        lcr.reset()
        assert lcr.function() == "CPD"
        assert lcr.frequency() == 1000.0
        assert lcr.voltage() == 1.0
        assert lcr.trigger_source() == "INT"
        lcr.set_function("ztd")
        lcr.set_frequency(2500.0)
        lcr.set_voltage(0.5)
        lcr.set_trigger_source("bus")
        lcr.set_continuous(True)
        assert lcr.function() == "ZTD" == sim.function
        assert lcr.frequency() == 2500.0 == sim.frequency_hz
        assert lcr.voltage() == 0.5 == sim.voltage_v
        assert lcr.trigger_source() == "BUS" == sim.trigger_source
        assert sim.continuous is True
        assert lcr.query("*OPC?") == "1"
        assert lcr.opc() is True
        assert lcr.next_error() == (0, "No error")


def test_errors_of_the_meter_are_reported() -> None:
    with running_cell(LCR) as cell, open_driver(cell, "lcr", timeout=0.3) as lcr:
        lcr.reset()
        with pytest.raises(LcrMeasurementError) as info:
            lcr.fetch()  # nothing measured since *RST
        assert info.value.status == -1
        assert lcr.fetch(check=False).status == -1
        lcr.write(":FREQ 5")  # below 20 Hz: the meter queues -222 and keeps 1 kHz
        with pytest.raises(DeviceReportedError) as info:
            lcr.check_errors()
        assert info.value.code == "-222"
        lcr.check_errors()  # drained
        with pytest.raises(DeviceReportedError) as info:
            lcr.query(":BOGUS?")  # a failing query sends no reply; the queue explains it
        assert info.value.code == "-113"
        assert cell.sims["lcr"].frequency_hz == 1000.0


def test_trigger_and_fetch_in_ztd() -> None:
    with running_cell(LCR, seed=2) as cell, open_driver(cell, "lcr") as lcr:
        sim = cell.sims["lcr"]
        lcr.set_function("ZTD")
        lcr.set_trigger_source("BUS")
        lcr.set_continuous(True)
        lcr.set_frequency(1000.0)
        lcr.trigger()
        assert lcr.opc() is True
        reading = lcr.fetch()
        assert reading.ok and reading.bin is None
        assert sim.last_z is not None
        assert reading.a == pytest.approx(abs(sim.last_z), rel=NR3)
        assert reading.b == pytest.approx(math.degrees(cmath.phase(sim.last_z)), abs=1e-3)


def test_measure_at_1khz_equals_the_world_impedance_model() -> None:
    with running_cell(LCR, seed=5) as cell, open_driver(cell, "lcr") as lcr:
        sim, world = cell.sims["lcr"], cell.world
        expected = model_impedance(world, 1000.0)
        z = lcr.measure(1000.0)
        assert sim.last_z is not None
        assert abs(z - sim.last_z) <= NR3 * abs(sim.last_z)  # exactly what the meter measured
        assert abs(z / expected - 1) < NOISE  # the world's model within its noise
        assert world.current_sample().measured


def test_sweep_follows_the_model_at_every_frequency() -> None:
    freqs = [100.0, 1e3, 1e4, 1e5]
    with running_cell(LCR, seed=6) as cell, open_driver(cell, "lcr") as lcr:
        zs = lcr.sweep(freqs)
        for f, z in zip(freqs, zs, strict=True):
            assert abs(z / model_impedance(cell.world, f) - 1) < NOISE, f
        # An RC interface: |Z| falls with frequency towards the series resistance.
        assert [abs(z) for z in zs] == sorted((abs(z) for z in zs), reverse=True)


def test_socket_writes_are_not_held_back_by_nagle() -> None:
    """measure() writes four set commands before its first query; with Nagle's algorithm on,
    each waits for the meter's delayed ACK (40 ms on Linux): 44 ms per call instead of < 1 ms.
    The timing itself is measured by benchmarks/hil_roundtrip.py; here the option is checked."""
    with running_cell(LCR) as cell, open_driver(cell, "lcr") as lcr:
        sock = lcr.transport.port._socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert lcr.measure(1000.0) != 0
