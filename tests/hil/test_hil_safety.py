"""Out-of-limit set points never reach the wire.

Each driver is given tight safety limits and asked for unsafe values; the simulator's wire log
(every byte its handler was fed, see :class:`~tests.hil.helpers.WireLog`) must not contain the
command, the instrument's state must be unchanged, and the driver must still work afterwards.
"""

from __future__ import annotations

import math

import pytest

from drivers import IkaLimits, LcrLimits, PumpLimits, SafetyLimitError, TravelLimits
from tests.hil.helpers import WireLog, open_driver, running_cell

NAN, INF = math.nan, math.inf


def test_pump_refuses_unsafe_rate_volume_and_diameter_before_sending() -> None:
    limits = PumpLimits(max_rate_ul_min=500.0, max_volume_ul=100.0, max_diameter_mm=30.0)
    devices = {"pump": {"kind": "ne1000", "role": "precursor", "address": 0}}
    with running_cell(devices) as cell, open_driver(cell, "pump", limits=limits) as pump:
        sim, world = cell.sims["pump"], cell.world
        pump.identify()
        pump.set_diameter(4.61)
        rate = (sim.rate_value, sim.rate_units)
        log = WireLog(sim)
        unsafe = [
            lambda: pump.set_rate(600.0, "UM"),
            lambda: pump.set_rate(1.0, "MM"),  # 1000 µL/min
            lambda: pump.set_rate(0.0),
            lambda: pump.set_rate(NAN),
            lambda: pump.set_volume(0.2, "ML"),  # 200 µL
            lambda: pump.set_volume(0.0),  # would pump until stopped
            lambda: pump.set_volume(-5.0),
            lambda: pump.set_diameter(31.0),
            lambda: pump.set_diameter(INF),
            lambda: pump.dispense(150.0, 100.0),
            lambda: pump.dispense(50.0, 5000.0),
            lambda: pump.dispense(0.0, 100.0),
        ]
        for call in unsafe:
            with pytest.raises(SafetyLimitError):
                call()
        assert log.data == b""  # not a byte: no RAT, VOL, DIA, DIR nor RUN
        assert sim.phase == "S" and sim.diameter_mm == 4.61
        assert (sim.rate_value, sim.rate_units) == rate
        assert world.current_sample().params == {}
        pump.set_rate(500.0, "UM")  # the limit itself is allowed
        assert log.lines(b"\r") == [b"0RAT500UM"]


def test_hotplate_refuses_unsafe_temperature_and_speed_before_sending() -> None:
    limits = IkaLimits(max_temp_c=150.0, max_speed_rpm=800.0)
    with (
        running_cell({"hotplate": {"kind": "ika_namur"}}) as cell,
        open_driver(cell, "hotplate", limits=limits) as plate,
    ):
        sim = cell.sims["hotplate"]
        plate.set_temperature(60.0)
        log = WireLog(sim)
        for value in (150.1, 200.0, 1e6, -5.0, NAN, INF):
            with pytest.raises(SafetyLimitError):
                plate.set_temperature(value)
        for value in (801.0, -1.0, NAN):
            with pytest.raises(SafetyLimitError):
                plate.set_speed(value)
        assert log.data == b""
        assert sim.set_temp_c == 60.0 and sim.set_speed_rpm == 0.0 and not sim.heater_on
        plate.set_temperature(150.0)
        assert log.lines()[0] == b"OUT_SP_1 150"
        assert sim.set_temp_c == 150.0


def test_gantry_refuses_moves_outside_the_travel_before_sending() -> None:
    limits = TravelLimits(x=(-50.0, 0.0), y=(-50.0, 0.0), z=(-10.0, 0.0), max_feed_mm_min=1000.0)
    with (
        running_cell({"gantry": {"kind": "grbl"}}) as cell,
        open_driver(cell, "gantry", limits=limits) as gantry,
    ):
        sim = cell.sims["gantry"]
        gantry.move_to(x=-40.0, feed=600.0)
        gantry.wait_idle(timeout=2.0)
        log = WireLog(sim)
        unsafe = [
            lambda: gantry.move_to(x=-60.0, feed=600.0),
            lambda: gantry.move_to(x=5.0, feed=600.0),
            lambda: gantry.move_to(z=-11.0, feed=600.0),
            lambda: gantry.move_to(y=NAN, feed=600.0),
            lambda: gantry.move_to(x=-10.0, feed=5000.0),
            lambda: gantry.move_to(x=-10.0, feed=0.0),
            lambda: gantry.move_by(dx=-15.0, feed=600.0),  # -55: the position is read first
            lambda: gantry.move_by(dx=45.0, feed=600.0),
            lambda: gantry.move_by(dz=INF, feed=600.0),
        ]
        for call in unsafe:
            with pytest.raises(SafetyLimitError):
                call()
        # move_by read the position ('?', a real-time byte): no G-code line was sent at all.
        assert log.lines(drop=b"?") == []
        assert set(log.data) <= {ord("?")}
        assert sim.mpos == [-40.0, 0.0, 0.0] and sim.state() == "Idle"
        gantry.move_by(dx=-10.0, feed=600.0)  # to the limit itself
        assert gantry.wait_idle(timeout=2.0).mpos == (-50.0, 0.0, 0.0)
        assert log.lines(drop=b"?") == [b"G91 G1 X-10 F600"]


def test_lcr_refuses_unsafe_frequency_and_voltage_before_sending() -> None:
    limits = LcrLimits(min_frequency_hz=100.0, max_frequency_hz=1e5, max_voltage_vrms=1.0)
    with (
        running_cell({"lcr": {"kind": "scpi_lcr"}}) as cell,
        open_driver(cell, "lcr", limits=limits) as lcr,
    ):
        sim = cell.sims["lcr"]
        lcr.identify()
        log = WireLog(sim)
        unsafe = [
            lambda: lcr.set_frequency(2e5),
            lambda: lcr.set_frequency(50.0),
            lambda: lcr.set_frequency(NAN),
            lambda: lcr.set_voltage(1.5),
            lambda: lcr.set_voltage(-0.1),
            lambda: lcr.measure(1e6),
            lambda: lcr.sweep([1e3, 1e4, 1e6]),  # every point is checked before the first
        ]
        for call in unsafe:
            with pytest.raises(SafetyLimitError):
                call()
        assert log.data == b""
        assert sim.frequency_hz == 1000.0 and sim.voltage_v == 1.0
        assert not cell.world.current_sample().measured
        lcr.set_voltage(1.0)
        assert lcr.voltage() == 1.0
        assert log.lines() == [b":VOLT 1", b":VOLT?"]
