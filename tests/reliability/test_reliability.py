"""The reliability benchmark (``benchmarks/reliability.py``) and the checks behind it.

* the quick benchmark runs end to end and reports 0 lost, 0 duplicated, 0 untyped errors,
  0 hangs and no unsafe set point on the wire (with the demo campaign's limits);
* every driver's reply parsing is fuzzed with hypothesis (random and mutated frames through a
  fake port): only typed errors, no hang;
* random proposals, many out of limits, through the campaign checks, plans, devices and
  drivers put no set point outside the limits on the simulators' wire;
* the benchmark's campaign files follow the process layer: an anneal is a parameter and the
  process step that consumes it, a gantry workcell gets the moves between stations, and the
  awkward limits are reached by the parameters the process caps with no constant past them;
* the benchmark's own counters are not vacuous: its wire parser, lost/duplicate audit and
  fault classification catch what they should.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "reliability.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reliability_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rel = _load()


# ------------------------------------------------------------------------------ end to end


def test_quick_benchmark_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quick"],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    shape = {
        "faults": {"completed": bool, "lost": int, "duplicated": int, "recorded": int},
        "kills": {"runs": int, "lost": int, "duplicated": int},
        "fuzz": {"cases": int, "untyped_errors": int, "hangs": int},
    }
    for part, keys in shape.items():
        for key, kind in keys.items():
            assert type(summary[part][key]) is kind, (part, key, summary[part][key])
    assert type(summary["unsafe_on_wire"]) is int

    faults = summary["faults"]
    assert faults["completed"], faults
    assert faults["lost"] == 0 and faults["duplicated"] == 0, faults
    assert faults["injected"] > 0
    accounted = ("recorded", "unrecordable", "masked", "missed")
    assert sum(faults[k] for k in accounted) == faults["injected"], faults

    kills = summary["kills"]
    assert kills["runs"] >= 1, kills
    assert kills["completed"] and kills["spent_once"], kills
    assert kills["lost"] == 0 and kills["duplicated"] == 0, kills

    fuzz = summary["fuzz"]
    assert fuzz["cases"] >= 5 * 20, fuzz
    assert fuzz["untyped_errors"] == 0 and fuzz["hangs"] == 0, fuzz

    unsafe = summary["unsafe_on_wire_detail"]
    assert unsafe["set_points_on_wire"] > 0
    assert unsafe["by_limits"]["demo_limits"] == 0, unsafe
    # With awkward non-round limits the drivers round some set points past them (see
    # test_set_points_are_not_rounded_past_the_limits): counted, not hidden.
    assert summary["unsafe_on_wire"] == sum(unsafe["by_limits"].values())

    printed = proc.stdout
    for figure in ("lost=0", "untyped_errors=0", "hangs=0", f"runs={kills['runs']}"):
        assert figure in printed, printed


# ------------------------------------------------------------------------------ fuzz


@pytest.mark.parametrize("kind", sorted(rel.FUZZ_OPS))
def test_fuzzed_replies_give_only_typed_errors_and_no_hang(kind: str) -> None:
    stats = rel.fuzz_driver(kind, examples=40, seed=20240611)
    assert stats.cases == 40
    assert stats.untyped_errors == 0, stats.untyped_examples
    assert stats.hangs == 0, stats.hang_examples
    assert stats.typed_errors > 0 and stats.returned > 0  # both paths were exercised


@pytest.mark.parametrize(
    ("mutation", "error"),
    [
        ("drop", "DriverTimeout"),
        ("read_error", "ConnectionLost"),
        ("write_error", "ConnectionLost"),
        ("truncate", "GarbledReply"),
    ],
)
def test_fuzz_port_faults_reach_the_driver(mutation: str, error: str) -> None:
    import drivers

    port = rel.FuzzPort(rel.make_fuzz_sim("ne1000", 0), [rel.Mutation(mutation, where=0.5)], 0.01)
    pump = rel.make_fuzz_driver("ne1000", port)
    with pytest.raises(getattr(drivers, error)):
        pump._exchange("VER", lambda status, data: data, repeatable=False)


# ------------------------------------------------------------------------------ unsafe on wire


def test_no_out_of_limit_set_point_reaches_the_wire() -> None:
    result = rel.run_unsafe(80, seed=7, limits=["demo_limits"])
    assert result["unsafe_on_wire"] == 0, result["_details"]["unsafe"]
    assert result["outcomes"].get("refused", 0) > 10  # many proposals were out of limits
    assert result["outcomes"].get("executed", 0) > 10  # and many reached the instruments
    assert result["outcomes"].get("failed", 0) == 0, result["_details"]["unexpected_failures"]
    by_path = result["outcomes_by_path"]
    assert by_path.get("campaign/executed", 0) > 0, by_path  # whole processes were made
    kinds = result["set_points_by_kind"]
    for what in ("pump rate uL/min", "pump volume uL", "hotplate set point degC"):
        assert kinds.get(what, 0) > 0, kinds
    assert kinds.get("LCR frequency Hz", 0) > 0 and kinds.get("gantry X mm", 0) > 0, kinds


@pytest.mark.parametrize("case", ["pump volume", "pump rate", "hotplate temperature"])
def test_set_points_are_not_rounded_past_the_limits(case: str) -> None:
    """A set point just inside the limit that the instrument's resolution would round past it
    is refused (limits apply to the number on the wire, after rounding)."""
    from drivers import NE1000, IkaHotplate, IkaLimits, PumpLimits, SafetyLimitError
    from simulators.workcell import SimulatedWorkcell
    from simulators.world import SimulatedWorld

    kind = "ika_namur" if case == "hotplate temperature" else "ne1000"
    world = SimulatedWorld(time_scale=1e5, seed=0)
    with SimulatedWorkcell({"dev": {"kind": kind}}, world=world) as cell:
        tap = rel.WireTap(cell.sims["dev"])
        url = cell.devices["dev"]["url"]
        if kind == "ne1000":
            limit = 77.77777 if case == "pump volume" else 333.3333
            pump = NE1000(url, limits=PumpLimits(max_volume_ul=77.77777, max_rate_ul_min=333.3333))
            with pump:
                pump.identify()  # acknowledges the power-up alarm
                with pytest.raises(SafetyLimitError):
                    if case == "pump volume":
                        pump.set_volume(77.7777, "UL")  # within the limit, 77.78 once rounded
                    else:
                        pump.set_rate(limit * (1 - 1e-7) / (1000 / 60), "MH")
                pump.set_volume(77.77, "UL")  # a value that survives rounding is accepted
        else:
            limit = 149.96
            with IkaHotplate(url, limits=IkaLimits(max_temp_c=limit)) as plate:
                with pytest.raises(SafetyLimitError):
                    plate.set_temperature(149.96)  # 150.0 once rounded to 1 decimal
                plate.set_temperature(149.9)
        data = tap.data
    lim = rel.Limits(
        max_rate_ul_min=333.3333,
        max_volume_ul=77.77777,
        max_temp_c=149.96,
        max_speed_rpm=1500.0,
        min_freq_hz=20.0,
        max_freq_hz=2e6,
        max_volt_v=1.0,
        travel=((-200.0, 200.0),) * 3,
        machine_travel=((-200.0, 0.0),) * 3,
    )
    points = rel.set_points_on_wire(kind, data, lim)
    assert points, data
    assert all(p["ok"] for p in points), points


# ------------------------------------------------------------------------------ campaign files


def _steps(data: dict) -> list[tuple[str, dict]]:
    return [(st["step"], st.get("args", {})) for st in data["process"]]


def test_anneal_adds_the_parameter_and_the_process_step(tmp_path: Path) -> None:
    import yaml

    from lab.spec import load_campaign
    from lab.workcell import check_campaign, parse_workcell
    from simulators.workcell import DEMO_DEVICES, FULL_DEVICES

    plain = load_campaign(rel.write_campaign(tmp_path / "a.yaml", budget=3, anneal=False))
    assert "anneal_temperature_c" not in plain.parameter_names
    assert all(st.step != "anneal" for st in plain.process)
    path = rel.write_campaign(tmp_path / "b.yaml", budget=3, anneal=True)
    spec = load_campaign(path)
    assert spec.budget == 3 and spec.initial_design <= 2
    assert spec.bound_parameter("anneal", "temperature") == "anneal_temperature_c"
    assert [st.device for st in spec.process if st.step == "anneal"] == ["hotplate"]
    assert yaml.safe_load(path.read_text())["process"][-1]["args"]["time"] == "10 min"

    # The console's in-process simulated workcell starts the hotplate only for such a step.
    from lab.console import simulated_devices

    assert "hotplate" in simulated_devices(spec)
    assert "hotplate" not in simulated_devices(plain)

    # On the full workcell (a gantry carrying the sample) the moves put each step, and the
    # measurement, at its device's station; the demo workcell needs none.
    url = {"url": "socket://127.0.0.1:1"}
    full = parse_workcell({"devices": {n: {**d, **url} for n, d in FULL_DEVICES.items()}})
    moved = load_campaign(
        rel.write_campaign(tmp_path / "c.yaml", budget=3, anneal=True, devices=FULL_DEVICES)
    )
    check_campaign(moved, full)
    stations = [st.args["station"] for st in moved.process if st.step == "move"]
    assert stations == ["dispense", "hotplate", "lcr"]
    demo = parse_workcell({"devices": {n: {**d, **url} for n, d in DEMO_DEVICES.items()}})
    check_campaign(plain, demo)
    assert rel.campaign_data(devices=DEMO_DEVICES)["process"] == rel.demo_data()["process"]


def test_odd_campaign_reaches_its_limits_and_no_constant_exceeds_them() -> None:
    from lab.spec import parse_campaign

    data = rel._odd_campaign()
    spec = parse_campaign(data, "odd")  # every constant and bound within the safety limits
    s = spec.safety
    assert s.max_pump_rate_ul_min == 333.3333 and s.max_temperature_c == 149.96
    assert "default_pump_rate_ul_min" not in data and "ac_voltage_v" not in data
    assert all("freq_min_hz" not in f and "freq_max_hz" not in f for f in data["fidelities"])
    # Each parameter that feeds a capped argument reaches the cap (found from the process).
    for p in spec.continuous:
        _, high = spec.safe_range(p.name)
        assert high is not None and p.high == pytest.approx(high), p.name
    assert spec.bound_parameter("anneal", "temperature") == "anneal_temperature_c"
    options = spec.bound_route(spec.target)[2]
    assert options["freq_min"].constant == pytest.approx(s.min_frequency_hz)
    assert options["freq_max"].constant == pytest.approx(s.max_frequency_hz)


def test_constants_past_a_limit_are_brought_onto_it() -> None:
    data = rel.demo_data()
    data["safety"] = {**data["safety"], "max_pump_rate_ul_min": 50.0, "min_frequency_hz": 100.0}
    data["process"][1]["args"]["rate"] = "0.2 mL/min"
    data["fidelities"][0]["options"]["freq_min"] = "20 Hz"
    rel._at_limits(data)
    assert data["process"][1]["args"]["rate"] == "50.0 uL/min"
    assert data["fidelities"][0]["options"]["freq_min"] == "100.0 Hz"
    rate = next(p for p in data["parameters"] if p["name"] == "precursor_rate_ul_min")
    assert rate["high"] == 50.0  # the parameter bound to the capped rate reaches the cap


# ------------------------------------------------------------------------------ the counters


def _limits() -> object:
    return rel.Limits(
        max_rate_ul_min=500.0,
        max_volume_ul=100.0,
        max_temp_c=250.0,
        max_speed_rpm=1500.0,
        min_freq_hz=20.0,
        max_freq_hz=2e6,
        max_volt_v=1.0,
        travel=((-200.0, 200.0),) * 3,
        machine_travel=((-200.0, 0.0),) * 3,
    )


@pytest.mark.parametrize(
    ("kind", "wire", "oks"),
    [
        ("ne1000", b"0DIA4.61\r0RAT500UM\r0RAT501UM\r0RAT30MH\r", [True, False, False]),
        (
            "ne1000",
            b"0VOLUL\r0VOL100\r0VOLML\r0VOL0.1\r0VOL0.101\r0VOL0\r",
            [True, True, False, False],
        ),
        (
            "ika_namur",
            b"OUT_SP_1 250\r\nOUT_SP_1 250.1\r\nOUT_SP_4 1600\r\nIN_SP_1\r\n",
            [True, False, False],
        ),
        (
            "scpi_lcr",
            b":FREQ 20\n:FREQ 19.99\n:VOLT 0.01\n:VOLT 2\n:FREQ?\n",
            [True, False, True, False],
        ),
        ("grbl", b"?G90 G1 X-10 Y-250 F3000\n", [True, False, True]),
    ],
)
def test_wire_parser_flags_out_of_limit_set_points(kind: str, wire: bytes, oks: list[bool]) -> None:
    points = rel.set_points_on_wire(kind, wire, _limits())
    assert [p["ok"] for p in points] == oks, points


def test_store_audit_counts_lost_duplicated_and_corrupted(tmp_path: Path) -> None:
    from lab.store import ExperimentState, Store

    db = f"sqlite:///{tmp_path / 'audit.db'}"
    store = Store(db)
    cid = store.create_campaign("audit", {}, 0, 6.0)
    proposal = {
        "params": {},
        "fidelity": "full",
        "cost": 1.0,
        "model_version": "m",
        "strategy": "s",
    }
    exps = store.add_experiments(cid, [{**proposal, "key": f"k{i}"} for i in range(6)])
    ids = [int(e.id) for e in exps]
    asked = [1000.0, 100.0]

    def run(exp_id: int, uid: str, plan: str, readings: list[tuple[float, float]]) -> None:
        store.add_run(uid, exp_id, {"plan_name": plan, "frequencies_hz": asked})
        for i, (f, z) in enumerate(readings):
            data = {"lcr_frequency": f, "lcr_z_real": z, "lcr_z_imag": -z}
            store.add_reading(uid, "primary", i + 1, data, {}, 0.0)
        store.close_run(uid, "success", None)

    def measure(exp_id: int, uid: str, n: int = 2) -> None:
        store.record_measurement(
            exp_id,
            name="r",
            value=1.0,
            unit="ohm",
            fidelity="full",
            instrument="lcr",
            method="m",
            run_uid=uid,
            raw={"frequency_hz": asked[:n]},
        )

    good = [(1000.0, 20.1), (100.0, 25.3)]
    for exp_id in ids:
        store.transition(exp_id, ExperimentState.RUNNING)
    a, b, c, d, e, f = ids
    run(a, "a-s1", "make_sample", [])
    run(a, "a-s2", "make_sample", [])  # the sample made twice: duplicated
    run(a, "a", "characterize", good)
    measure(a, "a")
    run(b, "b", "characterize", good)  # measured, never analysed: lost
    run(c, "c1", "characterize", good)
    run(c, "c2", "characterize", good)  # measured twice: duplicated
    measure(c, "c2")
    run(d, "d", "characterize", good)
    store.transition(d, ExperimentState.MEASURED)
    store.fail(d, "analysis: the fit did not converge")  # recorded, readings kept
    run(e, "e", "characterize", good[:1])  # one reading of two: lost
    measure(e, "e", n=1)
    run(f, "f", "characterize", [(1000.0, 20.1), (1000.0, 20.1)])  # stale, off frequency
    measure(f, "f")

    audit = rel.audit_campaign(db, cid)
    assert audit["lost"] == 2, audit["lost_detail"]
    assert audit["duplicate_syntheses"] == 1 and audit["duplicate_measurement_runs"] == 1
    assert audit["duplicated"] == 2
    assert audit["analysis_failed"] == 1
    assert audit["stale_readings"] == 1 and audit["off_frequency_readings"] == 1


@pytest.mark.parametrize(
    ("kind", "detail", "device_kind", "silent"),
    [
        ("drift", "offset now +0.0020", "ne1000", "drift"),
        ("no_reply", "dropped b''", "scpi_lcr", "no_op"),
        ("no_reply", "dropped b'1\\n'", "scpi_lcr", None),
        ("garbled", "empty reply", "ika_namur", "no_op"),
        ("garbled", "b'+1.000E+03\\n' -> b'+1.070E+03\\n'", "scpi_lcr", "undetectable_garble"),
        ("garbled", "b'+1.000E+03\\n' -> b'+1.0x0E+03\\n'", "scpi_lcr", None),
        ("truncated", "b'' -> b''", "ika_namur", "no_op"),
        ("truncated", "b'25.0 1\\r\\n' -> b'25'", "ika_namur", None),
        ("busy", "b''", "ika_namur", "unanswered_set_command"),
        ("busy", "b''", "scpi_lcr", None),
        ("disconnect", "link down 0.5 s", "grbl", None),
    ],
)
def test_fault_classification(kind: str, detail: str, device_kind: str, silent: str | None) -> None:
    assert rel.silent_by_nature(kind, detail, device_kind) == silent


def test_faults_and_records_are_matched_one_to_one() -> None:
    def record(device: str, t: float) -> object:
        return rel.Evidence(device, t, t - 2.0, t + 0.1, "driver_log", "")

    faults = [
        rel.Fault("pump", 10.0, "no_reply", "dropped b'x'"),
        rel.Fault("pump", 10.5, "garbled", "b'a' -> b'b'"),
        rel.Fault("pump", 30.0, "drift", "", silent="drift"),
        rel.Fault("lcr", 10.0, "no_reply", "dropped b'x'"),
    ]
    evidence = [record("pump", 11.0), record("pump", 11.6), record("lcr", 40.0)]
    rel.match_faults(faults, evidence)
    assert [f.matched is not None for f in faults] == [True, True, False, False]
    assert faults[0].matched is not faults[1].matched


def test_device_named_in_an_error() -> None:
    names = ["pump_precursor", "pump_solvent", "lcr", "gantry"]
    text = (
        'File "drivers/scpi_lcr.py"\ngantry=inst.gantry\ndrivers.errors.ConnectionLost: lcr: lost'
    )
    assert rel._device_named(text, names) == "lcr"
    assert (
        rel._device_named("FailedStatus: DeviceStatus(device=pump_solvent, done=True)", names)
        == "pump_solvent"
    )
    assert rel._device_named("nothing here", names) is None
