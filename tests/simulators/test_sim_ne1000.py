"""NE-1000 simulator conformance, byte for byte against ne1000.md."""

from __future__ import annotations

import binascii
import time

import pytest

from simulators.faults import FaultConfig
from simulators.ne1000 import NE1000Sim, format_number, safe_frame
from simulators.world import SimulatedWorld


def frame(text: str) -> bytes:
    """A basic-mode reply frame: STX text ETX."""
    return b"\x02" + text.encode() + b"\x03"


@pytest.fixture
def pump(slow_world: SimulatedWorld) -> NE1000Sim:
    """A pump whose power-up alarm has been acknowledged."""
    sim = NE1000Sim(slow_world)
    assert sim.feed(b"0VER\r") == frame("00A?R")
    return sim


def test_power_up_alarm_first_reply_then_cleared(slow_world: SimulatedWorld) -> None:
    sim = NE1000Sim(slow_world)
    assert sim.feed(b"0DIA10\r") == frame("00A?R")
    assert sim.feed(b"0DIA\r") == frame("00S26.59")  # the alarmed command was skipped
    assert sim.feed(b"0VER\r") == frame("00SNE1000V3.928")


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (b"0VER\r", "00SNE1000V3.928"),
        (b"0DIA26.59\r", "00S"),
        (b"0RAT5.0MM\r", "00S"),
        (b"0RAT9999MM\r", "00S?OOR"),
        (b"0VOLML\r", "00S"),
        (b"0VOL1.0\r", "00S"),
        (b"0DIRINF\r", "00S"),
        (b"0CLDINF\r", "00S"),
        (b"0FOO\r", "00S?"),
        (b"0\r", "00S"),
        (b"\r", "00S"),
        (b"0VER5\r", "00S?NA"),
        (b"0DIA90\r", "00S?OOR"),
        (b"0RATabc\r", "00S?"),
        (b"0RUN0\r", "00S?OOR"),
        (b"0RUN2\r", "00S?NA"),
        (b"0SAF256\r", "00S?OOR"),
        (b"0SAF\r", "00S0"),
        (b"0DIR\r", "00SINF"),
        (b"*ADR\r", "00S0"),
        (b"0CLD\r", "00S?"),
    ],
)
def test_sheet_examples(pump: NE1000Sim, sent: bytes, expected: str) -> None:
    assert pump.feed(sent) == frame(expected)


def test_queries_echo_settings_formatted(pump: NE1000Sim) -> None:
    assert pump.feed(b"0DIA26.59\r") == frame("00S")
    assert pump.feed(b"0DIA\r") == frame("00S26.59")
    assert pump.feed(b"0RAT5.0MM\r") == frame("00S")
    assert pump.feed(b"0RAT\r") == frame("00S5.000MM")
    assert pump.feed(b"0VOLML\r") + pump.feed(b"0VOL1.0\r") == frame("00S") * 2
    assert pump.feed(b"0VOL\r") == frame("00S1.000ML")
    assert pump.feed(b"0DIA26.594\r") == frame("00S")
    assert pump.feed(b"0DIA\r") == frame("00S26.59")  # truncated to 4 digits
    assert pump.feed(b"0DIA12345\r") == frame("00S?OOR")


def test_normalisation_spaces_case_control(pump: NE1000Sim) -> None:
    assert pump.feed(b"0 rat 5 mm\r\n") == frame("00S")
    assert pump.feed(b"0RAT\r") == frame("00S5.000MM")


def test_addressing(slow_world: SimulatedWorld) -> None:
    sim = NE1000Sim(slow_world, address=12)
    assert sim.feed(b"0VER\r") == b""  # not ours: silent
    assert sim.feed(b"12VER\r") == frame("12A?R")
    assert sim.feed(b"12VER\r") == frame("12SNE1000V3.928")
    assert sim.feed(b"VER\r") == frame("12SNE1000V3.928")  # no address: answered
    assert sim.feed(b"*ADR 7\r") == frame("07S")
    assert sim.feed(b"7DIA\r") == frame("07S26.59")
    assert sim.feed(b"*ADR 5 B 1234\r") == frame("07S?OOR")


def test_network_burst(pump: NE1000Sim) -> None:
    assert pump.feed(b"0RAT1MM*1RAT2MM\r") == frame("00S")
    assert pump.feed(b"0RAT\r") == frame("00S1.000MM")


def test_split_and_joined_input(pump: NE1000Sim) -> None:
    assert pump.feed(b"0V") == b""
    assert pump.feed(b"ER\r0DIA\r") == frame("00SNE1000V3.928") + frame("00S26.59")


def test_number_format() -> None:
    assert [format_number(x) for x in (5, 26.59, 1500, 0.125, 9.9996, 0)] == [
        "5.000",
        "26.59",
        "1500",
        "0.125",
        "10.00",
        "0.000",
    ]


def test_rate_limits_follow_diameter(pump: NE1000Sim) -> None:
    assert pump.feed(b"0DIA4.61\r") == frame("00S")
    high = pump.rate_limits_ul_min()[1]
    assert high == pytest.approx(3.14159 * 4.61**2 / 4 * 51, rel=1e-4)
    assert pump.feed(b"0RAT800UM\r") == frame("00S")
    assert pump.feed(b"0RAT900UM\r") == frame("00S?OOR")
    assert pump.feed(b"0RAT\r") == frame("00S800.0UM")
    assert pump.feed(b"0VOL\r")[-3:] == b"UL\x03"  # small syringe: µL units


def test_pump_run_in_simulated_time() -> None:
    world = SimulatedWorld(time_scale=100.0, seed=2)
    sim = NE1000Sim(world, role="precursor", volume_error=0.0)
    for cmd in (b"0VER\r", b"0DIA4.61\r", b"0RAT120UM\r", b"0VOLUL\r", b"0VOL10\r"):
        sim.feed(cmd)
    t0 = time.monotonic()
    assert sim.feed(b"0RUN\r") == frame("00I")  # 10 µL at 120 µL/min = 5 s sim = 50 ms real
    assert sim.feed(b"0\r") == frame("00I")
    assert world.current_sample().params == {}
    while sim.feed(b"0\r") == frame("00I"):
        time.sleep(0.002)
    elapsed = time.monotonic() - t0
    assert 0.045 < elapsed < 3.0
    assert sim.feed(b"0\r") == frame("00S")
    assert sim.feed(b"0DIS\r") == frame("00SI10.00W0.000UL")
    params = world.current_sample().params
    assert params["precursor_volume_ul"] == pytest.approx(10.0, abs=0.05)
    assert params["precursor_rate_ul_min"] == pytest.approx(120.0)


def test_completion_credited_without_polling() -> None:
    world = SimulatedWorld(time_scale=1000.0, seed=2)
    sim = NE1000Sim(world, volume_error=0.05, seed=11)
    for cmd in (b"0VER\r", b"0DIA4.61\r", b"0RAT600UM\r", b"0VOLUL\r", b"0VOL20\r", b"0RUN\r"):
        sim.feed(cmd)
    world.sleep(3.0)
    volume = world.current_sample().params["precursor_volume_ul"]
    assert volume == pytest.approx(20.0 * sim.gain, abs=0.1)
    assert volume != pytest.approx(20.0, abs=0.01)  # the pump's own gain error


def test_pause_resume_stop(slow_world: SimulatedWorld) -> None:
    sim = NE1000Sim(slow_world)
    for cmd in (b"0VER\r", b"0DIA4.61\r", b"0RAT600UM\r", b"0VOLUL\r", b"0VOL100\r"):
        sim.feed(cmd)
    assert sim.feed(b"0RUN\r") == frame("00I")
    assert sim.feed(b"0DIA5\r") == frame("00I?NA")
    assert sim.feed(b"0RAT10MM\r") == frame("00I?NA")  # units cannot change while pumping
    assert sim.feed(b"0DIRWDR\r") == frame("00I?NA")  # finite volume: no direction change
    time.sleep(0.05)
    assert sim.feed(b"0STP\r") == frame("00P")
    delivered = slow_world.current_sample().params["precursor_volume_ul"]
    assert 0.3 < delivered < 20.0
    assert sim.feed(b"0RUN\r") == frame("00I")
    assert sim.feed(b"0STP\r") == frame("00P")
    assert sim.feed(b"0STP\r") == frame("00S")
    assert sim.feed(b"0RUN\r") == frame("00I")  # a new program: the full volume again
    assert sim.feed(b"0STP\r") + sim.feed(b"0STP\r") == frame("00P") + frame("00S")


def test_withdraw_counts_but_does_not_dispense() -> None:
    world = SimulatedWorld(time_scale=1000.0)
    sim = NE1000Sim(world)
    for cmd in (b"0VER\r", b"0DIA4.61\r", b"0RAT600UM\r", b"0VOLUL\r", b"0VOL5\r", b"0DIRWDR\r"):
        sim.feed(cmd)
    assert sim.feed(b"0RUN\r") == frame("00W")
    world.sleep(1.0)
    assert sim.feed(b"0DIS\r") == frame("00SI0.000W5.000UL")
    assert world.current_sample().params == {}
    assert sim.feed(b"0CLDWDR\r") == frame("00S")
    assert sim.feed(b"0DIS\r") == frame("00SI0.000W0.000UL")


def test_purge(slow_world: SimulatedWorld) -> None:
    sim = NE1000Sim(slow_world)
    sim.feed(b"0VER\r")
    assert sim.feed(b"0PUR\r") == frame("00X")
    assert sim.feed(b"0RUN\r") == frame("00X")
    assert sim.feed(b"0STP\r") == frame("00S")


def test_safe_mode_framing_and_escape(pump: NE1000Sim) -> None:
    assert safe_frame(b"SAF0") == bytes([2, 8]) + b"SAF0" + bytes([0x55, 0x43, 3])
    assert pump.feed(safe_frame(b"0SAF10")) == safe_frame(b"00S")  # answered in the new mode
    assert pump.feed(b"0VER\r") == b""  # basic text ignored in safe mode
    assert pump.feed(safe_frame(b"0VER")) == safe_frame(b"00SNE1000V3.928")
    bad = bytearray(safe_frame(b"0VER"))
    bad[-2] ^= 0xFF
    assert pump.feed(bytes(bad)) == safe_frame(b"00S?COM")
    assert pump.feed(bytes([2, 8]) + b"SAF0" + bytes([0x55, 0x43, 3])) == frame("00S")
    assert pump.feed(b"0SAF\r") == frame("00S0")


def test_safe_packet_crc_matches_sheet() -> None:
    packet = safe_frame(b"00S")
    assert packet[1] == 7 and binascii.crc_hqx(b"00S", 0) == int.from_bytes(packet[5:7], "big")


def test_safe_mode_timeout_alarm(slow_world: SimulatedWorld) -> None:
    sim = NE1000Sim(slow_world)
    sim.feed(b"0VER\r")
    assert sim.feed(safe_frame(b"0SAF1")) == safe_frame(b"00S")
    assert sim.poll() == b""
    sim._last_packet -= 2.0  # 2 s of silence
    assert sim.poll() == safe_frame(b"00A?T")
    assert sim.poll() == b""  # sent once; not cleared by the unsolicited message
    assert sim.feed(safe_frame(b"0VER")) == safe_frame(b"00A?T")
    assert sim.feed(safe_frame(b"0VER")) == safe_frame(b"00SNE1000V3.928")


def test_stall_fault_is_an_alarm(slow_world: SimulatedWorld) -> None:
    sim = NE1000Sim(slow_world, faults=FaultConfig(rate=1.0, kinds=("busy",)))
    assert sim.feed(b"0VER\r") == frame("00A?S")
    assert sim.faults.log[0][1] == "busy"
