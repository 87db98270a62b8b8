"""MT-SICS balance simulator conformance against mt-sics.md."""

from __future__ import annotations

import re

import pytest

from simulators.faults import FaultConfig
from simulators.mt_sics import MtSicsSim
from simulators.world import SimulatedWorld

WEIGHT = r"(-?\d+\.\d{4})"


@pytest.fixture
def balance(world: SimulatedWorld) -> MtSicsSim:
    world.sleep(5.0)  # let the fresh substrate settle
    return MtSicsSim(world)


def weight(reply: bytes, prefix: str) -> float:
    m = re.fullmatch(rf"{prefix} +{WEIGHT} g\r\n", reply.decode())
    assert m, reply
    return float(m.group(1))


def test_identification(balance: MtSicsSim) -> None:
    assert balance.feed(b"I2\r\n") == b'I2 A "XS204 Excellence 220.0090 g"\r\n'
    assert balance.feed(b"I4\r\n") == b'I4 A "1126493049"\r\n'
    assert balance.feed(b"@\r\n") == b'I4 A "1126493049"\r\n'
    lines = balance.feed(b"I0\r\n").decode().split("\r\n")[:-1]
    assert lines[0] == 'I0 B 0 "@"' and lines[-1].startswith("I0 A ")
    assert all(line.startswith("I0 B ") for line in lines[:-1])


def test_stable_weight_field_layout(balance: MtSicsSim, world: SimulatedWorld) -> None:
    reply = balance.feed(b"S\r\n")
    assert re.fullmatch(r"S S {1,}\d+\.\d{4} g\r\n", reply.decode())
    assert len(reply.decode().split(" g")[0]) == len("S S ") + 10
    assert weight(reply, "S S") == pytest.approx(world.mass_on_balance_g(), abs=2e-4)


@pytest.mark.parametrize(
    ("sent", "reply"),
    [
        (b"s\r\n", b"ES\r\n"),
        (b"XYZ\r\n", b"ES\r\n"),
        (b"SIR\r\n", b"ES\r\n"),
        (b"S 1\r\n", b"ES\r\n"),
        (b"S\xd3\r\n", b"ET\r\n"),
        (b"TAC\r\n", b"TAC A\r\n"),
        (b"TA 1 kg\r\n", b"TA L\r\n"),
        (b"TA abc g\r\n", b"TA L\r\n"),
    ],
)
def test_refusals(balance: MtSicsSim, sent: bytes, reply: bytes) -> None:
    assert balance.feed(sent) == reply


def test_zero_and_tare(balance: MtSicsSim, world: SimulatedWorld) -> None:
    assert balance.feed(b"Z\r\n") == b"Z A\r\n"
    assert abs(weight(balance.feed(b"S\r\n"), "S S")) < 2e-4
    world.dispense("precursor", 20.0, 100.0)
    world.sleep(5.0)
    assert weight(balance.feed(b"S\r\n"), "S S") == pytest.approx(0.020, abs=3e-4)
    tare = weight(balance.feed(b"T\r\n"), "T S")
    assert tare == pytest.approx(0.020, abs=3e-4)
    assert abs(weight(balance.feed(b"S\r\n"), "S S")) < 2e-4
    assert weight(balance.feed(b"TA\r\n"), "TA A") == pytest.approx(tare)
    assert balance.feed(b"TA 1.5 g\r\n") == b"TA A     1.5000 g\r\n"


def test_immediate_commands_report_dynamic(balance: MtSicsSim, world: SimulatedWorld) -> None:
    world.dispense("solvent", 10.0, 100.0)
    assert balance.feed(b"SI\r\n").startswith(b"S D ")
    assert balance.feed(b"ZI\r\n") == b"ZI D\r\n"
    assert balance.feed(b"TI\r\n").startswith(b"TI D ")
    world.sleep(5.0)
    assert balance.feed(b"SI\r\n").startswith(b"S S ")


def test_stable_command_waits_for_stability(world: SimulatedWorld) -> None:
    balance = MtSicsSim(world, settle_time_s=3.0)
    world.dispense("precursor", 5.0, 100.0)
    assert balance.feed(b"S\r\n").startswith(b"S S ")  # waited ~3 s sim (3 ms real)
    slow = MtSicsSim(world, settle_time_s=30.0, stability_timeout_s=2.0)
    world.dispense("precursor", 5.0, 100.0)
    assert slow.feed(b"S\r\n") == b"S I\r\n"
    assert slow.feed(b"Z\r\n") == b"Z I\r\n"


def test_overload(balance: MtSicsSim, world: SimulatedWorld) -> None:
    world.dispense("precursor", 300_000.0, 100.0)  # 300 g of liquid
    world.sleep(5.0)
    assert balance.feed(b"S\r\n") == b"S +\r\n"
    assert balance.feed(b"SI\r\n") == b"S +\r\n"
    assert balance.feed(b"Z\r\n") == b"Z +\r\n"


def test_busy_fault(world: SimulatedWorld) -> None:
    sim = MtSicsSim(world, faults=FaultConfig(rate=1.0, kinds=("busy",)))
    assert sim.feed(b"SI\r\n") == b"S I\r\n"
    assert sim.feed(b"Z\r\n") == b"Z I\r\n"
    assert sim.feed(b"@\r\n") == b"I4 I\r\n"


def test_announce_on_connect(world: SimulatedWorld) -> None:
    assert MtSicsSim(world).on_connect() == b""
    assert MtSicsSim(world, announce_on_connect=True).on_connect() == b'I4 A "1126493049"\r\n'
