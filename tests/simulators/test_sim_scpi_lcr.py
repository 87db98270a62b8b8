"""SCPI LCR meter simulator conformance against scpi-lcr.md."""

from __future__ import annotations

import cmath
import math
import re

import pytest

from simulators.faults import FaultConfig
from simulators.scpi_lcr import ScpiLcrSim, nr3
from simulators.world import SimulatedWorld

FIELD = r"[+-]\d\.\d{5}E[+-]\d{2}"


@pytest.fixture
def lcr(world: SimulatedWorld) -> ScpiLcrSim:
    return ScpiLcrSim(world)


def ask(sim: ScpiLcrSim, line: str) -> bytes:
    out = sim.feed(line.encode() + b"\n")
    assert isinstance(out, bytes)
    return out


def test_sheet_sequence(lcr: ScpiLcrSim) -> None:
    assert ask(lcr, "*RST;*CLS") == b""
    for line in (":FUNC:IMP ZTD", ":FREQ 1E3", ":VOLT 1", ":TRIG:SOUR BUS", ":INIT:CONT ON"):
        assert ask(lcr, line) == b""
    assert ask(lcr, ":TRIG") == b""
    assert ask(lcr, "*OPC?") == b"1\n"
    reply = ask(lcr, ":FETC?").decode()
    assert re.fullmatch(rf"{FIELD},{FIELD},\+0\n", reply), reply
    assert ask(lcr, ":SYST:ERR?") == b'0,"No error"\n'
    assert ask(lcr, ":FREQ 5E6") == b""
    assert ask(lcr, ":SYST:ERR?") == b'-222,"Data out of range"\n'
    assert ask(lcr, ":FREQ?") == b"+1.00000E+03\n"  # unchanged
    assert ask(lcr, ":BOGUS") == b""
    assert ask(lcr, ":SYST:ERR?") == b'-113,"Undefined header"\n'
    assert ask(lcr, ":SYST:ERR?") == b'0,"No error"\n'


def test_idn_and_no_data(lcr: ScpiLcrSim) -> None:
    assert ask(lcr, "*IDN?") == b"Keysight Technologies,E4980A,MY12345678,A.02.10\n"
    assert ask(lcr, ":FETC?") == b"+9.90000E+37,+9.90000E+37,-1\n"


def test_field_format() -> None:
    assert nr3(1001.12) == "+1.00112E+03"
    assert nr3(-0.012345) == "-1.23450E-02"
    assert len(nr3(9.9e37)) == 12
    assert nr3(1.0, long=True) == "+1.000000000E+00"


def test_ztd_matches_world_impedance(world: SimulatedWorld, lcr: ScpiLcrSim) -> None:
    world.dispense("precursor", 12.0, 100.0)
    ask(lcr, ":FUNC:IMP ZTD;:FREQ 2E3;:TRIG:SOUR BUS;:INIT")
    ask(lcr, "*TRG")
    magnitude, theta, status = ask(lcr, ":FETC?").decode().strip().split(",")
    sample = world.current_sample()
    assert sample.measured
    r_int = world.interfacial_resistance(sample)
    omega = 2 * math.pi * 2e3
    z = sample.series_resistance_ohm + r_int / (
        1 + (1j * omega * r_int * sample.capacitance_f) ** 0.9
    )
    assert float(magnitude) == pytest.approx(abs(z), rel=0.03)
    assert float(theta) == pytest.approx(math.degrees(cmath.phase(z)), abs=2.0)
    assert status == "+0"


def test_functions_consistent(lcr: ScpiLcrSim) -> None:
    z = complex(30.0, -40.0)
    lcr.frequency_hz = 1e3
    omega = 2 * math.pi * 1e3
    for fn, expected in {
        "RX": (30.0, -40.0),
        "ZTD": (50.0, math.degrees(math.atan2(-40, 30))),
        "ZTR": (50.0, math.atan2(-40, 30)),
        "CSRS": (1 / (omega * 40.0), 30.0),
        "CSD": (1 / (omega * 40.0), 0.75),
        "CPD": ((40 / 2500) / omega, (30 / 2500) / (40 / 2500)),
        "GB": (30 / 2500, 40 / 2500),
    }.items():
        lcr.function = fn
        assert lcr._compute(z) == pytest.approx(expected), fn


def test_short_long_forms_case_and_path(lcr: ScpiLcrSim) -> None:
    assert ask(lcr, "frequency:cw 2khz;:FREQ?") == b"+2.00000E+03\n"
    assert ask(lcr, ":FUNCtion:IMPedance:TYPE rx;:FUNC:IMP?") == b"RX\n"
    assert ask(lcr, ":TRIG:SOUR BUS;SOUR?") == b"BUS\n"  # path stays at TRIG
    assert ask(lcr, "FREQ?;VOLT?") == b"+2.00000E+03;+1.00000E+00\n"
    assert ask(lcr, ":INIT:CONT?") == b"0\n"
    assert ask(lcr, ":FREQ MIN;:FREQ?") == b"+2.00000E+01\n"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (":FUNC:IMP XYZ", -141),
        (":FREQ 10", -222),
        (":FREQ abc", -104),
        (":FREQ 1 V", -131),
        (":FREQ", -109),
        (":VOLT 3", -222),
        ("*TRG", -211),
        (":TRIG", -211),
        (":FOO 1", -113),
        (":FREQ? 1", -108),
        (":FORM REAL", -221),
    ],
)
def test_errors_queued_and_not_executed(lcr: ScpiLcrSim, line: str, code: int) -> None:
    assert ask(lcr, line) == b""
    assert ask(lcr, ":SYST:ERR?").decode().startswith(f"{code},")
    assert ask(lcr, ":FREQ?;:FUNC:IMP?") == b"+1.00000E+03;CPD\n"


def test_query_error_gives_no_reply(lcr: ScpiLcrSim) -> None:
    assert ask(lcr, ":FOO?") == b""
    assert ask(lcr, ":FOO?;*OPC?") == b"1\n"


def test_esr_bits_and_cls(lcr: ScpiLcrSim) -> None:
    assert ask(lcr, "*ESR?") == b"128\n"  # power-on
    assert ask(lcr, "*ESR?") == b"0\n"  # cleared on read
    ask(lcr, ":FOO")
    ask(lcr, ":FREQ 1")
    assert ask(lcr, "*ESR?") == b"48\n"  # CME | EXE
    assert ask(lcr, "*STB?") == b"4\n"  # error queue not empty
    ask(lcr, "*CLS")
    assert ask(lcr, ":SYST:ERR?") == b'0,"No error"\n'


def test_error_queue_overflow(lcr: ScpiLcrSim) -> None:
    for _ in range(12):
        ask(lcr, ":FOO")
    codes = [ask(lcr, ":SYST:ERR?").split(b",")[0] for _ in range(11)]
    assert codes == [b"-113"] * 9 + [b"-350", b"0"]


def test_trigger_model(lcr: ScpiLcrSim) -> None:
    assert ask(lcr, ":INIT") == b""  # INT source: measures at once
    assert ask(lcr, ":FETC?").endswith(b",+0\n")
    ask(lcr, "*RST;:TRIG:SOUR BUS;:INIT")
    assert ask(lcr, ":INIT") == b""
    assert ask(lcr, ":SYST:ERR?") == b'-213,"Init ignored"\n'
    assert ask(lcr, ":FETC?") == b"+9.90000E+37,+9.90000E+37,-1\n"
    ask(lcr, "*TRG")
    assert ask(lcr, ":FETC?").endswith(b",+0\n")
    ask(lcr, "*TRG")  # not re-armed (INIT:CONT OFF)
    assert ask(lcr, ":SYST:ERR?") == b'-211,"Trigger ignored"\n'


def test_trg_returns_data_option(world: SimulatedWorld) -> None:
    sim = ScpiLcrSim(world, trg_returns_data=True)
    ask(sim, ":TRIG:SOUR BUS;:INIT:CONT ON")
    assert ask(sim, "*TRG").endswith(b",+0\n")


def test_frequency_follows_setting(world: SimulatedWorld, lcr: ScpiLcrSim) -> None:
    ask(lcr, ":FUNC:IMP RX;:TRIG:SOUR BUS;:INIT:CONT ON")
    values = {}
    for f in ("20", "1E6"):
        ask(lcr, f":FREQ {f};:TRIG")
        values[f] = [float(v) for v in ask(lcr, ":FETC?").split(b",")[:2]]
    assert values["20"][0] > values["1E6"][0]  # R_s + R_int at low f, R_s at high f


def test_busy_fault_queues_error(world: SimulatedWorld) -> None:
    sim = ScpiLcrSim(world, faults=FaultConfig(rate=1.0, kinds=("busy",)))
    assert ask(sim, "*IDN?") == b""
    assert sim.errors == [-200]
