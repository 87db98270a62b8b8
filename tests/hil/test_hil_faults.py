"""Fault tests over the real transports: every injected fault gives a typed error in bounded time.

Each device runs in its simulator on a real pty (TCP for the LCR meter) and the simulator's fault
injector damages its replies. Checked for every device and every fault kind that applies:

* the driver raises the typed error (:class:`DriverTimeout` for a lost reply,
  :class:`GarbledReply` for a garbled or cut reply, :class:`DeviceReportedError` for the device's
  busy/alarm answer, :class:`DriverTimeout` or :class:`ConnectionLost` for a dropped link);
* no call runs past its time-out: the elapsed time is bounded by the number of exchanges the
  driver is documented to make times its reply time-out, plus a scheduling margin;
* idempotent exchanges (queries, set points) are sent once more and succeed when the next reply
  is clean; the simulator heard the command exactly twice;
* commands that act (NE-1000 ``RUN``, GRBL moves, MT-SICS ``Z``) are never repeated: the
  simulator heard them exactly once and the world shows exactly one execution;
* ``drift`` is silent by nature (the reply is well-formed): readings carry exactly the injected
  offset and no error is raised.

Persistent faults (every exchange faulted) are configured the way a workcell file does it, with
the device entry's ``faults:`` mapping (``rate: 1.0``). One-off faults use
:class:`~tests.hil.helpers.ScriptedFaults` (the simulator's own injector with a scripted
decision), so "fault this exchange, then a clean one" is exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from drivers import (
    ConnectionLost,
    DeviceReportedError,
    DriverError,
    DriverTimeout,
    GarbledReply,
    GrblAlarm,
    PumpAlarm,
)
from tests.hil.helpers import (
    FAST_TIMEOUT,
    MARGIN,
    Stopwatch,
    WireLog,
    fault_kinds,
    model_impedance,
    open_driver,
    running_cell,
    script_faults,
)

T = FAST_TIMEOUT
GARBLE_SEED = 4
"""Injector seed for ``garbled``/``truncated``: the damage it draws is detectable (a garbled byte
that turns one digit into another is not, by any protocol here without a checksum)."""

ENTRIES: dict[str, dict[str, Any]] = {
    "pump": {"kind": "ne1000", "role": "precursor", "address": 0},
    "hotplate": {"kind": "ika_namur"},
    "balance": {"kind": "mt_sics"},
    "gantry": {"kind": "grbl"},
    "lcr": {"kind": "scpi_lcr"},
}
PTY_DEVICES = ("pump", "hotplate", "balance", "gantry")


def fast_driver(cell: Any, name: str) -> Any:
    """The device's driver with a short reply time-out (the balance's stability wait too)."""
    kwargs: dict[str, Any] = {"timeout": T}
    if name == "balance":
        kwargs["stable_timeout"] = T
    return open_driver(cell, name, **kwargs)


def truncation_error(cell: Any, device: str) -> type[DriverError]:
    """The error the last ``truncated`` fault must give: a reply cut to nothing is a lost reply
    (DriverTimeout), a partial one is GarbledReply."""
    cuts = [d for dev, _, k, d in cell.fault_log() if dev == device and k == "truncated"]
    return DriverTimeout if cuts[-1].endswith("-> b''") else GarbledReply


@dataclass(frozen=True)
class Query:
    """An idempotent query of one device and how to count it on the wire.

    Attributes:
        call: The driver call.
        heard: How many times the simulator received the query, from its wire log.
        exchanges: Reply time-outs one attempt can wait through (the LCR reads its error queue
            after a time-out).
        warm_up: Clean setup before the fault (clears the pump's power-up alarm, sets a value).
        check: Asserts the result of a successful call against the simulator or world.
    """

    call: Callable[[Any], Any]
    heard: Callable[[WireLog], int]
    exchanges: int
    warm_up: Callable[[Any], None]
    check: Callable[[Any, Any], None]


def _check_pump(cell: Any, diameter: float) -> None:
    assert diameter == cell.sims["pump"].diameter_mm == 26.59


def _check_hotplate(cell: Any, setpoint: float) -> None:
    assert setpoint == cell.sims["hotplate"].set_temp_c == 42.5


def _check_balance(cell: Any, weight: tuple[float, str]) -> None:
    assert weight[1] == "g"
    assert weight[0] == pytest.approx(cell.world.mass_on_balance_g(), abs=2e-4)


def _check_gantry(cell: Any, status: Any) -> None:
    assert status.state == "Idle"
    assert status.mpos == (-3.0, 0.0, 0.0) == tuple(cell.sims["gantry"].mpos)


def _check_lcr(cell: Any, frequency: float) -> None:
    assert frequency == cell.sims["lcr"].frequency_hz == 2500.0


def _gantry_warm_up(g: Any) -> None:
    g.move_to(x=-3.0, feed=600.0)
    g.wait_idle(timeout=2.0)


def _lcr_warm_up(lcr: Any) -> None:
    lcr.set_frequency(2500.0)
    lcr.frequency()  # a set command has no reply: read back so the meter has handled it


QUERIES: dict[str, Query] = {
    "pump": Query(
        call=lambda d: d.diameter(),
        heard=lambda log: log.count(b"0DIA", b"\r"),
        exchanges=1,
        warm_up=lambda d: d.identify(),
        check=_check_pump,
    ),
    "hotplate": Query(
        call=lambda d: d.temperature_setpoint(),
        heard=lambda log: log.count(b"IN_SP_1"),
        exchanges=1,
        warm_up=lambda d: d.set_temperature(42.5),
        check=_check_hotplate,
    ),
    "balance": Query(
        call=lambda d: d.weight_stable(),
        heard=lambda log: log.count(b"S"),
        exchanges=1,
        warm_up=lambda d: d.identify(),
        check=_check_balance,
    ),
    "gantry": Query(
        call=lambda d: d.status(),
        heard=lambda log: log.data.count(b"?"),
        exchanges=1,
        warm_up=_gantry_warm_up,
        check=_check_gantry,
    ),
    "lcr": Query(
        call=lambda d: d.frequency(),
        heard=lambda log: log.count(b":FREQ?"),
        exchanges=2,
        warm_up=_lcr_warm_up,
        check=_check_lcr,
    ),
}

# (device, kind) -> (error raised when every exchange is faulted, times the query was heard).
# Two hearings = one retry. "truncated" is GarbledReply, or DriverTimeout when the reply was cut
# to nothing (see truncation_error). A pty link that drops stays down longer than both attempts, so the
# retry is lost with it; a dropped TCP connection is ConnectionLost, never retried.
PERSISTENT: dict[tuple[str, str], tuple[type[DriverError], int]] = {
    ("pump", "no_reply"): (DriverTimeout, 2),
    ("pump", "garbled"): (GarbledReply, 2),
    ("pump", "truncated"): (GarbledReply, 2),
    ("pump", "busy"): (PumpAlarm, 2),  # A?S stall: the command was not executed, so repeated
    ("pump", "disconnect"): (DriverTimeout, 1),
    ("hotplate", "no_reply"): (DriverTimeout, 2),
    ("hotplate", "garbled"): (GarbledReply, 2),
    ("hotplate", "truncated"): (GarbledReply, 2),
    ("hotplate", "busy"): (DriverTimeout, 2),  # NAMUR has no error reply: a busy unit is silent
    ("hotplate", "disconnect"): (DriverTimeout, 1),
    ("balance", "no_reply"): (DriverTimeout, 2),
    ("balance", "garbled"): (GarbledReply, 2),
    ("balance", "truncated"): (GarbledReply, 2),
    ("balance", "busy"): (DeviceReportedError, 1),  # "S I": the balance said no; not repeated
    ("balance", "disconnect"): (DriverTimeout, 1),
    ("gantry", "no_reply"): (DriverTimeout, 2),
    ("gantry", "garbled"): (GarbledReply, 2),
    ("gantry", "truncated"): (GarbledReply, 2),
    ("gantry", "busy"): (DriverTimeout, 2),  # '?' is ignored in a critical alarm
    ("gantry", "disconnect"): (DriverTimeout, 1),
    ("lcr", "no_reply"): (DriverTimeout, 2),
    ("lcr", "garbled"): (GarbledReply, 2),
    ("lcr", "truncated"): (GarbledReply, 2),
    ("lcr", "busy"): (DriverTimeout, 2),  # -200 queued, but :SYST:ERR? is silenced too
    ("lcr", "disconnect"): (ConnectionLost, 1),
}


@pytest.mark.parametrize(
    ("device", "kind"), list(PERSISTENT), ids=[f"{d}-{k}" for d, k in PERSISTENT]
)
def test_persistent_fault_raises_typed_error_within_timeout(device: str, kind: str) -> None:
    error, heard = PERSISTENT[(device, kind)]
    faults = {"rate": 1.0, "kinds": [kind], "seed": GARBLE_SEED, "disconnect_s": 2.5 * T}
    query = QUERIES[device]
    with running_cell({device: {**ENTRIES[device], "faults": faults}}) as cell:
        log = WireLog(cell.sims[device])
        with (
            fast_driver(cell, device) as driver,
            Stopwatch() as sw,
            pytest.raises(DriverError) as info,
        ):
            query.call(driver)
        if kind == "truncated":
            error = truncation_error(cell, device)
        assert isinstance(info.value, error), repr(info.value)
        assert info.value.device == device
        assert query.heard(log) == heard, log.data
        assert set(fault_kinds(cell, device)) == {kind}
    # Every attempt waits at most its time-outs; nothing blocks beyond them.
    assert sw.elapsed < 2 * query.exchanges * T + MARGIN


@pytest.mark.parametrize(("seed", "expected"), [(0, DriverTimeout), (1, GarbledReply)])
def test_reply_truncated_to_nothing_reads_as_no_reply(
    seed: int, expected: type[DriverError]
) -> None:
    """A reply cut to zero bytes cannot be told from a lost one; a partial one is garbled."""
    faults = {"rate": 1.0, "kinds": ["truncated"], "seed": seed}
    with running_cell({"balance": {**ENTRIES["balance"], "faults": faults}}) as cell:
        with fast_driver(cell, "balance") as balance, pytest.raises(DriverError) as info:
            balance.weight_stable()
        last_cut = cell.fault_log()[-1][3].rpartition(" -> ")[2]
    assert (last_cut == "b''") == (expected is DriverTimeout), last_cut
    assert type(info.value) is expected, (last_cut, info.value)


RETRYABLE = [(device, kind) for device in ENTRIES for kind in ("no_reply", "garbled", "truncated")]
RETRYABLE += [("pump", "busy")]  # an alarm reply means "not executed": safe to send again
RETRYABLE += [(device, "disconnect") for device in PTY_DEVICES]  # link back before the retry


@pytest.mark.parametrize(("device", "kind"), RETRYABLE, ids=[f"{d}-{k}" for d, k in RETRYABLE])
def test_idempotent_query_is_retried_once_and_succeeds(device: str, kind: str) -> None:
    query = QUERIES[device]
    with running_cell({device: ENTRIES[device]}) as cell:
        with fast_driver(cell, device) as driver:
            query.warm_up(driver)
            log = WireLog(cell.sims[device])
            script_faults(cell, device, kind, seed=GARBLE_SEED, disconnect_s=0.5 * T)
            with Stopwatch() as sw:
                result = query.call(driver)
            query.check(cell, result)
        assert query.heard(log) == 2, log.data
        assert fault_kinds(cell, device) == [kind]
    assert sw.elapsed < query.exchanges * T + MARGIN


# ---------------------------------------------------------------- commands that act: never twice

RUN_ERRORS: dict[str, type[DriverError]] = {
    "no_reply": DriverTimeout,
    "garbled": GarbledReply,
    "truncated": GarbledReply,
    "busy": PumpAlarm,
    "disconnect": DriverTimeout,
}


@pytest.mark.parametrize("kind", list(RUN_ERRORS))
def test_pump_run_is_never_repeated(kind: str) -> None:
    with running_cell({"pump": ENTRIES["pump"]}, seed=2) as cell:
        sim, world = cell.sims["pump"], cell.world
        with fast_driver(cell, "pump") as pump:
            pump.identify()
            pump.set_diameter(4.61)
            pump.set_volume(5.0, "UL")
            pump.set_rate(100.0, "UM")
            pump.set_direction("INF")
            log = WireLog(sim)
            script_faults(cell, "pump", kind, seed=GARBLE_SEED, disconnect_s=0.5 * T)
            with Stopwatch() as sw, pytest.raises(DriverError) as info:
                pump.run()
            error = truncation_error(cell, "pump") if kind == "truncated" else RUN_ERRORS[kind]
            assert isinstance(info.value, error), repr(info.value)
            assert sw.elapsed < T + MARGIN
            assert log.count(b"0RUN", b"\r") == 1, log.data
            time.sleep(0.5 * T)  # let a dropped link come back
            assert pump.wait_until_stopped(timeout_s=2.0) == "S"
            infused, withdrawn, unit = pump.dispensed()
        dispensed = world.current_sample().params.get("precursor_volume_ul", 0.0)
        if kind == "busy":
            # The stall alarm replaced the reply: RUN was not carried out, and not repeated.
            assert (infused, withdrawn, dispensed) == (0.0, 0.0, 0.0)
        else:
            # RUN was carried out exactly once although its reply was lost or damaged.
            assert (infused, withdrawn, unit) == (5.0, 0.0, "UL")
            assert dispensed == pytest.approx(5.0 * sim.gain, abs=5 * (0.002 * 5.0 + 0.01))
        assert log.count(b"0RUN", b"\r") == 1


MOVE_ERRORS: dict[str, type[DriverError]] = {
    "no_reply": DriverTimeout,
    "garbled": GarbledReply,  # (a garbled "ok" that still ends in LF would read as data: timeout)
    "truncated": GarbledReply,
    "busy": GrblAlarm,
    "disconnect": DriverTimeout,
}


@pytest.mark.parametrize("kind", list(MOVE_ERRORS))
def test_gantry_relative_move_is_never_repeated(kind: str) -> None:
    with running_cell({"gantry": ENTRIES["gantry"]}) as cell:
        sim = cell.sims["gantry"]
        with fast_driver(cell, "gantry") as gantry:
            assert gantry.status().mpos == (0.0, 0.0, 0.0)
            log = WireLog(sim)
            # move_by reads the position first ('?', clean), then sends the move (faulted).
            script_faults(cell, "gantry", None, kind, seed=GARBLE_SEED, disconnect_s=0.5 * T)
            with Stopwatch() as sw, pytest.raises(DriverError) as info:
                gantry.move_by(dx=-2.0, feed=600.0)
            error = truncation_error(cell, "gantry") if kind == "truncated" else MOVE_ERRORS[kind]
            assert isinstance(info.value, error), repr(info.value)
            assert sw.elapsed < 2 * T + MARGIN
            assert log.count(b"G91 G1 X-2 F600", drop=b"?") == 1, log.data
            time.sleep(0.5 * T)
            if kind == "busy":
                # A hard-limit trip instead of "ok": the move never ran; reset and unlock.
                assert info.value.code == "ALARM:1" and gantry.last_alarm == 1
                assert sim.mpos == [0.0, 0.0, 0.0]
                assert gantry.soft_reset().startswith("Grbl 1.1")
                gantry.unlock()
                final = gantry.wait_idle(timeout=2.0)
                assert final.mpos == (0.0, 0.0, 0.0)
            else:
                # Relative, so a repeat would end at X-4: it ran exactly once.
                final = gantry.wait_idle(timeout=2.0)
                assert final.mpos == (-2.0, 0.0, 0.0)
        assert log.count_matching(rb"G91 G1 .*", drop=b"?") == 1


def test_balance_zero_is_not_repeated() -> None:
    with (
        running_cell({"balance": ENTRIES["balance"]}) as cell,
        fast_driver(cell, "balance") as balance,
    ):
        assert balance.weight_stable()[0] > 1.0
        log = WireLog(cell.sims["balance"])
        script_faults(cell, "balance", "no_reply")
        with Stopwatch() as sw, pytest.raises(DriverTimeout):
            balance.zero()
        assert sw.elapsed < T + MARGIN
        assert log.count(b"Z") == 1
        # The zero was carried out (its reply was lost): the pan now reads zero.
        assert balance.weight_stable()[0] == pytest.approx(0.0, abs=2e-4)


# ------------------------------------------------------------- device-reported busy, link drops


def test_hotplate_busy_set_point_is_caught_by_read_back() -> None:
    with running_cell({"hotplate": ENTRIES["hotplate"]}) as cell:
        sim = cell.sims["hotplate"]
        with fast_driver(cell, "hotplate") as hotplate:
            hotplate.set_temperature(40.0)
            log = WireLog(sim)
            script_faults(cell, "hotplate", "busy")  # the unit ignores OUT_SP_1 silently
            with Stopwatch() as sw, pytest.raises(DeviceReportedError) as info:
                hotplate.set_temperature(55.0)
            assert info.value.code == "IN_SP_1"
            assert sw.elapsed < T + MARGIN
            assert sim.set_temp_c == 40.0
            assert log.count(b"OUT_SP_1 55") == 1  # a set point is verified, not blindly resent
            hotplate.set_temperature(55.0)
            assert sim.set_temp_c == 55.0


def test_balance_busy_is_reported_then_clears() -> None:
    with (
        running_cell({"balance": ENTRIES["balance"]}) as cell,
        fast_driver(cell, "balance") as balance,
    ):
        balance.identify()
        script_faults(cell, "balance", "busy")
        with pytest.raises(DeviceReportedError) as info:
            balance.weight_immediate()
        assert info.value.code == "I"
        _check_balance(cell, balance.weight_stable())


def test_lcr_busy_query_reports_the_queued_error() -> None:
    with running_cell({"lcr": ENTRIES["lcr"]}) as cell, fast_driver(cell, "lcr") as lcr:
        lcr.identify()
        log = WireLog(cell.sims["lcr"])
        script_faults(cell, "lcr", "busy")  # silent, with -200 in the error queue
        with Stopwatch() as sw, pytest.raises(DeviceReportedError) as info:
            lcr.frequency()
        assert info.value.code == "-200"
        assert sw.elapsed < T + MARGIN
        assert log.count(b":FREQ?") == 1 and log.count(b":SYST:ERR?") == 1
        assert lcr.frequency() == 1000.0
        lcr.check_errors()


def test_lcr_dropped_connection_is_lost_until_reopened() -> None:
    with running_cell({"lcr": ENTRIES["lcr"]}) as cell:
        log = WireLog(cell.sims["lcr"])
        with fast_driver(cell, "lcr") as lcr:
            lcr.identify()
            script_faults(cell, "lcr", "disconnect")
            with Stopwatch() as sw, pytest.raises(ConnectionLost):
                lcr.frequency()
            with pytest.raises(ConnectionLost):
                lcr.frequency()
            assert sw.elapsed < T + MARGIN
        assert log.count(b":FREQ?") == 1  # never retried over a lost connection
        with fast_driver(cell, "lcr") as lcr:  # the meter keeps listening: reconnect
            assert lcr.frequency() == 1000.0


def test_lcr_driver_reconnects_after_a_dropped_connection() -> None:
    with running_cell({"lcr": ENTRIES["lcr"]}) as cell, fast_driver(cell, "lcr") as lcr:
        lcr.identify()
        script_faults(cell, "lcr", "disconnect")
        with pytest.raises(ConnectionLost):
            lcr.frequency()
        lcr.reconnect()  # the same driver object, a new connection
        assert lcr.frequency() == 1000.0
        assert fault_kinds(cell, "lcr") == ["disconnect"]


@pytest.mark.parametrize("device", PTY_DEVICES)
def test_serial_driver_reconnects_to_its_pty(device: str) -> None:
    query = QUERIES[device]
    with running_cell({device: ENTRIES[device]}) as cell, fast_driver(cell, device) as driver:
        query.warm_up(driver)
        driver.reconnect()
        query.warm_up(driver)  # reopening the port powers the simulated controller up again
        query.check(cell, query.call(driver))


@pytest.mark.parametrize("device", PTY_DEVICES)
def test_serial_link_drop_recovers_after_it_returns(device: str) -> None:
    """A pty link that stays down through both attempts times out; afterwards all is well."""
    query = QUERIES[device]
    with running_cell({device: ENTRIES[device]}) as cell, fast_driver(cell, device) as driver:
        query.warm_up(driver)
        script_faults(cell, device, "disconnect", disconnect_s=3 * T)
        with Stopwatch() as sw, pytest.raises(DriverTimeout):
            query.call(driver)
        assert sw.elapsed < 2 * T + MARGIN
        time.sleep(3 * T - sw.elapsed + 0.05)
        query.check(cell, query.call(driver))


# ------------------------------------------------------------------------------- drift: silent


def test_balance_drift_offsets_readings_without_error() -> None:
    faults = {"rate": 1.0, "kinds": ["drift"], "seed": 1, "drift_step": 0.01}
    with running_cell({"balance": {**ENTRIES["balance"], "faults": faults}}) as cell:
        injector = cell.sims["balance"].faults
        with fast_driver(cell, "balance") as balance:
            offsets = []
            for _ in range(3):
                # The offset in force when the command arrives; the fault then grows it.
                before = injector.drift
                value, _ = balance.weight_stable()
                offsets.append(value - cell.world.mass_on_balance_g())
                assert offsets[-1] == pytest.approx(before, abs=2e-4)
        assert [round(abs(o), 3) for o in offsets] == [0.0, 0.01, 0.02]
        assert fault_kinds(cell, "balance") == ["drift"] * 3


def test_hotplate_and_lcr_drift_scale_readings_without_error() -> None:
    faults = {"rate": 1.0, "kinds": ["drift"], "seed": 1, "drift_step": 0.01}
    devices = {name: {**ENTRIES[name], "faults": faults} for name in ("hotplate", "lcr")}
    with running_cell(devices) as cell:
        with fast_driver(cell, "hotplate") as hotplate:
            assert hotplate.temperature() == 25.0
            drift = cell.sims["hotplate"].faults.drift
            assert abs(drift) == pytest.approx(0.01)
            assert hotplate.temperature() == pytest.approx(25.0 * (1 + drift), abs=0.051)
        with fast_driver(cell, "lcr") as lcr:
            expected = model_impedance(cell.world, 1000.0)
            z = lcr.measure(1000.0)
        sim = cell.sims["lcr"]
        assert sim.last_z is not None
        assert abs(z - sim.last_z) <= 1e-4 * abs(sim.last_z)  # what the meter saw, drifted
        # Four messages went before the trigger, each growing the drift by 1 %.
        assert abs(z) / abs(expected) == pytest.approx(1 + 4 * math.copysign(0.01, drift), abs=0.02)
