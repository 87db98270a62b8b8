"""Campaign processes: steps and routes bound to parameters, with units, safety and a workcell."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.errors import SpecError
from lab.spec import Campaign, load_campaign, parse_campaign
from lab.workcell import check_campaign, measuring_device, parse_workcell

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "campaigns" / "demo.yaml"
INTERLAYER = ROOT / "campaigns" / "interlayer.yaml"
BENCH_INTERLAYER = ROOT / "benchmarks" / "interlayer.yaml"

BASE: dict[str, Any] = {
    "name": "t",
    "interface": {"substrate": "Li", "other_phase": "LLZO"},
    "parameters": [
        {"name": "volume_ul", "type": "continuous", "low": 1.0, "high": 50.0, "unit": "uL"}
    ],
    "process": [{"step": "dispense", "device": "precursor", "args": {"volume": "$volume_ul"}}],
    "objective": {"name": "r", "unit": "ohm*cm^2", "direction": "minimize"},
    "fidelities": [{"name": "full", "cost": 1.0, "route": "impedance_sweep"}],
    "budget": 5,
}


def campaign(**over: Any) -> dict[str, Any]:
    """A minimal valid campaign (one dispense step, one impedance sweep), with top keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(over))
    return data


def param(name: str, low: float, high: float, unit: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": "continuous", "low": low, "high": high, "unit": unit, **kw}


def step_args(spec: Campaign, i: int = 0) -> dict[str, Any]:
    return spec.bound_steps()[i][2]


def refused(data: dict[str, Any], *fragments: str) -> str:
    with pytest.raises(SpecError) as exc:
        parse_campaign(data)
    msg = str(exc.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


# --- the minimal campaign and what it binds ------------------------------------------------


def test_minimal_campaign_binds_its_process() -> None:
    spec = parse_campaign(campaign())
    [(where, kind, bindings)] = spec.bound_steps()
    assert where == "process[0] (dispense)" and kind.name == "dispense"
    assert bindings["volume"].param == "volume_ul"
    # the rate is not given: its default constant, in uL/min
    assert bindings["rate"].param is None and bindings["rate"].constant == 100.0
    assert bindings["volume"].value({"volume_ul": 12.5}, spec) == 12.5
    where, route, options = spec.bound_route(spec.target)
    assert where == "fidelities.full.options" and route.name == "impedance_sweep"
    assert {n: b.constant for n, b in options.items()} == {
        "freq_min": 20.0,
        "freq_max": 1.0e6,
        "points": 15,
        "ac_voltage": 0.01,
    }
    assert spec.max_consecutive_failures == 5


def test_step_label_names_the_step() -> None:
    data = campaign()
    data["process"][0]["label"] = "precursor coat"
    spec = parse_campaign(data)
    assert spec.bound_steps()[0][0] == "process[0] (dispense, precursor coat)"


@pytest.mark.parametrize("n", [0, 1001])
def test_max_consecutive_failures_bounds(n: int) -> None:
    refused(campaign(max_consecutive_failures=n), "max_consecutive_failures")


# --- every parameter is consumed ----------------------------------------------------------


def test_unconsumed_parameter_is_named() -> None:
    data = campaign()
    data["parameters"].append(param("spin_rpm", 100, 3000, "1/min"))
    refused(data, "parameter(s) spin_rpm", "fidelity 'full'", "fidelities.full.ignores")


def test_calculation_fidelity_consumes_every_parameter_it_sees() -> None:
    data = campaign(fidelities=[{"name": "calc", "cost": 0.1, "route": "calculation"}])
    data["parameters"].append(param("spin_rpm", 100, 3000, "1/min"))
    spec = parse_campaign(data)
    assert spec.bound_route(spec.target)[1].bench is False


def test_bench_fidelity_still_needs_the_process_to_consume() -> None:
    data = campaign(
        fidelities=[
            {"name": "calc", "cost": 0.1, "route": "calculation", "ignores": ["spin_rpm"]},
            {"name": "full", "cost": 1.0, "route": "impedance_sweep"},
        ]
    )
    data["parameters"].append(param("spin_rpm", 100, 3000, "1/min"))
    refused(data, "parameter(s) spin_rpm", "fidelity 'full' (route impedance_sweep)")
    # ignored by the calculation and made by the process: accepted
    data["parameters"][-1] = param("rate", 10, 200, "uL/min")
    data["process"][0]["args"]["rate"] = "$rate"
    data["fidelities"][0]["ignores"] = ["rate"]
    spec = parse_campaign(data)
    assert step_args(spec)["rate"].param == "rate"


def test_route_option_bound_to_a_parameter_consumes_it() -> None:
    data = campaign(
        fidelities=[
            {
                "name": "screen",
                "cost": 0.2,
                "route": "impedance_single",
                "options": {"frequency": "$freq_khz"},
            }
        ]
    )
    data["parameters"].append(param("freq_khz", 0.1, 10.0, "kHz"))
    spec = parse_campaign(data)
    _, _, options = spec.bound_route(spec.target)
    assert options["frequency"].value({"freq_khz": 2.5}, spec) == pytest.approx(2500.0)
    assert options["frequency"].domain(spec) == pytest.approx((100.0, 10000.0))
    # kHz up to 5000 is 5 MHz, above safety.max_frequency_hz
    data["parameters"][-1] = param("freq_khz", 0.1, 5000.0, "kHz")
    refused(data, "fidelities.screen.options.frequency", "safety.max_frequency_hz")


# --- unknown names -------------------------------------------------------------------------


def test_unknown_step_kind_lists_the_known_ones() -> None:
    data = campaign()
    data["process"][0]["step"] = "spin_coat"
    refused(
        data, "process[0].step", "unknown step kind 'spin_coat'", "anneal, deposit, dispense, move"
    )


def test_unknown_route_lists_the_known_ones() -> None:
    data = campaign()
    data["fidelities"][0]["route"] = "xrd"
    refused(
        data,
        "fidelities.full.route",
        "unknown route 'xrd'",
        "calculation, impedance_single, impedance_sweep",
    )


def test_unknown_step_argument() -> None:
    data = campaign()
    data["process"][0]["args"]["speed"] = 3
    refused(
        data, "process[0] (dispense): unknown argument(s) speed", "volume [uL]", "rate [uL/min]"
    )


def test_missing_required_argument() -> None:
    data = campaign()
    data["process"][0]["args"] = {"rate": 50}
    refused(data, "process[0] (dispense).volume: required")


def test_unknown_route_option() -> None:
    data = campaign()
    data["fidelities"][0]["options"] = {"frequency": "100 Hz"}
    refused(data, "fidelities.full.options: unknown argument(s) frequency", "freq_min [Hz]")


def test_dollar_name_of_a_missing_parameter() -> None:
    data = campaign()
    data["process"][0]["args"]["volume"] = "$volume_ml"
    refused(data, "process[0] (dispense).volume", "'$volume_ml' names no parameter", "volume_ul")


def test_categorical_bound_to_a_numeric_argument() -> None:
    data = campaign()
    data["parameters"].append({"name": "mat", "type": "categorical", "choices": ["LiF", "Au"]})
    data["process"][0]["args"]["rate"] = "$mat"
    refused(data, "process[0] (dispense).rate", "takes a number but 'mat' is categorical")


def test_continuous_bound_to_a_name_argument() -> None:
    data = campaign()
    data["process"].append(
        {"step": "deposit", "device": "evap", "args": {"material": "$volume_ul", "thickness": 10}}
    )
    refused(data, "process[1] (deposit).material", "takes a name but 'volume_ul' is continuous")


# --- units ---------------------------------------------------------------------------------


def test_parameter_unit_that_does_not_convert_is_refused() -> None:
    data = campaign(parameters=[param("volume_ul", 1, 50, "nm")])
    refused(data, "process[0] (dispense).volume", "'volume_ul' is in nm", "does not convert to uL")


def test_parameter_unit_pint_does_not_know_is_refused() -> None:
    data = campaign(parameters=[param("volume_ul", 1, 50, "microlitrez")])
    refused(data, "process[0] (dispense).volume", "'microlitrez' is not a unit")


def test_parameter_in_ml_is_converted_to_ul() -> None:
    data = campaign(
        parameters=[param("volume_ml", 0.001, 0.05, "mL")],
        safety={"max_dispense_volume_ul": 100},
    )
    data["process"][0]["args"]["volume"] = "$volume_ml"
    spec = parse_campaign(data)
    b = step_args(spec)["volume"]
    # 0.05 mL is 50 uL, never read as 0.05 uL
    assert b.value({"volume_ml": 0.05}, spec) == pytest.approx(50.0)
    assert b.value({"volume_ml": 0.002}, spec) == pytest.approx(2.0)
    assert b.domain(spec) == pytest.approx((1.0, 50.0))
    # the safe range is in the parameter's unit
    assert spec.safe_range("volume_ml") == pytest.approx((0.0, 0.1))
    # safety is checked in uL: 0.2 mL is 200 uL, above 100 uL
    data["parameters"][0]["high"] = 0.2
    refused(data, "reaches 200 uL", "safety.max_dispense_volume_ul=100 uL")


def test_temperature_in_kelvin_is_converted_to_celsius() -> None:
    data = campaign(safety={"max_temperature_c": 250})
    data["parameters"].append(param("anneal_k", 300.0, 500.0, "K"))
    data["process"].append(
        {
            "step": "anneal",
            "device": "hotplate",
            "args": {"temperature": "$anneal_k", "time": "1 h"},
        }
    )
    spec = parse_campaign(data)
    args = step_args(spec, 1)
    assert args["temperature"].value({"anneal_k": 400.0}, spec) == pytest.approx(126.85)
    assert args["time"].constant == pytest.approx(60.0)
    assert spec.safe_range("anneal_k") == pytest.approx((273.15, 523.15))
    # 600 K is 326.85 degC, above 250 degC
    data["parameters"][-1]["high"] = 600.0
    refused(data, "process[1] (anneal).temperature", "safety.max_temperature_c=250 degC")


@pytest.mark.parametrize("rate", ["100 uL/min", "0.1 mL/min", "6 mL/h", 100, 100.0])
def test_constant_with_unit_text(rate: Any) -> None:
    data = campaign()
    data["process"][0]["args"]["rate"] = rate
    b = step_args(parse_campaign(data))["rate"]
    assert b.param is None and b.constant == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("0.1 mL", "mL cannot be converted to uL/min"),
        ("fast", "expected a number in uL/min"),
        (True, "expected a number in uL/min"),
        ("2 mL/min", "the constant reaches 2000 uL/min, above safety.max_pump_rate_ul_min"),
        ("0 uL/min", "must stay above 0"),
    ],
)
def test_bad_constant_is_refused(rate: Any, expected: str) -> None:
    data = campaign()
    data["process"][0]["args"]["rate"] = rate
    refused(data, "process[0] (dispense).rate", expected)


# --- safety limits -------------------------------------------------------------------------


def test_parameter_above_a_safety_limit_is_refused() -> None:
    refused(
        campaign(safety={"max_dispense_volume_ul": 20}),
        "process[0] (dispense).volume",
        "parameter 'volume_ul' reaches 50 uL",
        "safety.max_dispense_volume_ul=20 uL",
    )


def test_parameter_below_physics_is_refused() -> None:
    refused(
        campaign(parameters=[param("volume_ul", -5, 50, "uL")]),
        "process[0] (dispense).volume",
        "goes down to -5 uL; it must be at least 0",
    )


def test_deposit_thickness_capped_by_its_safety_limit() -> None:
    data = campaign(safety={"max_deposit_thickness_nm": 100})
    data["process"].append(
        {"step": "deposit", "device": "evap", "args": {"material": "Li", "thickness": "0.2 um"}}
    )
    refused(data, "process[1] (deposit).thickness", "safety.max_deposit_thickness_nm=100 nm")
    data["process"][1]["args"]["thickness"] = "50 nm"
    assert step_args(parse_campaign(data), 1)["thickness"].constant == 50.0


# --- route options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"freq_min": "1 MHz", "freq_max": "100 Hz"},
            "fidelities.full.options: freq_min=1e+06 Hz is not below freq_max=100 Hz",
        ),
        ({"freq_min": "5 Hz"}, "fidelities.full.options.freq_min: the constant goes down to 5 Hz"),
        ({"freq_max": "5 MHz"}, "safety.max_frequency_hz"),
        ({"ac_voltage": "2 V"}, "safety.max_ac_voltage_v"),
        ({"points": 2.5}, "fidelities.full.options.points: expected a whole number"),
        ({"points": 2}, "must be at least 3"),
        ({"points": 500}, "at most 201 frequencies"),
        ({"freq_min": "20 nm"}, "nm cannot be converted to Hz"),
    ],
)
def test_route_options_are_validated(options: dict[str, Any], expected: str) -> None:
    data = campaign()
    data["fidelities"][0]["options"] = options
    refused(data, expected)


def test_route_frequency_below_safety_minimum() -> None:
    data = campaign(safety={"min_frequency_hz": 50})
    # the sweep's default freq_min (20 Hz) is now below the limit
    refused(data, "fidelities.full.options.freq_min", "below safety.min_frequency_hz=50 Hz")
    data["fidelities"][0]["options"] = {"freq_min": "50 Hz"}
    spec = parse_campaign(data)
    _, _, options = spec.bound_route(spec.target)
    assert options["freq_min"].constant == 50.0


def test_route_options_with_units_are_converted() -> None:
    data = campaign()
    data["fidelities"][0]["options"] = {
        "freq_min": "0.1 kHz",
        "freq_max": "1 MHz",
        "ac_voltage": "10 mV",
    }
    spec = parse_campaign(data)
    _, _, options = spec.bound_route(spec.target)
    assert options["freq_min"].constant == pytest.approx(100.0)
    assert options["freq_max"].constant == pytest.approx(1.0e6)
    assert options["ac_voltage"].constant == pytest.approx(0.01)


# --- the example campaigns -----------------------------------------------------------------


@pytest.mark.parametrize("path", [DEMO, INTERLAYER, BENCH_INTERLAYER])
def test_example_campaigns_load(path: Path) -> None:
    spec = load_campaign(path)
    assert spec.process and spec.target.name == "full"
    assert spec.bound_route(spec.target)[1].name == "impedance_sweep"


def test_bound_parameter_finds_what_a_step_consumes() -> None:
    spec = load_campaign(INTERLAYER)
    assert spec.bound_parameter("deposit", "material") == "modifier"
    assert spec.bound_parameter("deposit", "thickness") == "thickness_nm"
    assert spec.bound_parameter("anneal", "temperature") == "anneal_temperature_c"
    assert spec.bound_parameter("anneal", "time") == "anneal_time_min"
    # a constant is no parameter; neither is a step the process lacks
    assert spec.bound_parameter("move", "station") is None
    assert spec.bound_parameter("dispense", "volume") is None
    demo = load_campaign(DEMO)
    assert demo.bound_parameter("deposit", "material") is None
    assert demo.bound_parameter("dispense", "rate") == "precursor_rate_ul_min"


def test_safe_range_of_the_example_campaigns() -> None:
    spec = load_campaign(INTERLAYER)
    assert spec.safe_range("thickness_nm") == pytest.approx((0.0, 500.0))
    assert spec.safe_range("anneal_temperature_c") == pytest.approx((0.0, 300.0))
    assert spec.safe_range("anneal_time_min") == (0.0, None)
    demo = load_campaign(DEMO)
    assert demo.safe_range("precursor_volume_ul") == pytest.approx((0.0, 100.0))
    assert demo.safe_range("precursor_rate_ul_min") == pytest.approx((0.0, 500.0))
    with pytest.raises(SpecError, match="unknown parameter 'nope'"):
        demo.safe_range("nope")


def test_interlayer_process_in_order() -> None:
    spec = load_campaign(INTERLAYER)
    kinds = [k.name for _, k, _ in spec.bound_steps()]
    assert kinds == ["move", "deposit", "move", "anneal", "move", "deposit", "move"]
    contact = step_args(spec, 5)
    assert contact["material"].constant == "Li" and contact["thickness"].constant == 200.0


# --- the workcell ----------------------------------------------------------------------------


def interlayer_materials() -> list[str]:
    return [*load_campaign(INTERLAYER).parameter("modifier").choices, "Li"]  # type: ignore[union-attr]


def interlayer_workcell(
    materials: list[str] | None = None, drop: str | None = None, **extra: Any
) -> Any:
    mats = interlayer_materials() if materials is None else materials
    devices: dict[str, Any] = {
        "gantry": {
            "kind": "grbl",
            "url": "loop://",
            "stations": {"deposition": [0, 0, 0], "hotplate": [1, 0, 0], "lcr": [2, 0, 0]},
        },
        "evaporator": {
            "kind": "sqc310",
            "url": "loop://",
            "role": "deposition",
            "station": "deposition",
            "films": {i + 1: m for i, m in enumerate(mats)},
        },
        "hotplate": {"kind": "ika_namur", "url": "loop://", "station": "hotplate"},
        "lcr": {"kind": "scpi_lcr", "url": "loop://", "station": "lcr"},
    }
    if drop is not None:
        del devices[drop]
    devices.update(extra)
    return parse_workcell({"devices": devices})


def test_interlayer_campaign_fits_a_full_workcell() -> None:
    spec = load_campaign(INTERLAYER)
    wc = interlayer_workcell()
    check_campaign(spec, wc, "wc.yaml")
    # the deposit steps name the controller by its role
    assert wc.resolve("deposition") == "evaporator" and wc.resolve("hotplate") == "hotplate"
    assert wc.resolve("nothing") is None
    assert measuring_device(spec, spec.target, wc) == "lcr"


@pytest.mark.parametrize(("missing", "where"), [("LiF", "process[1]"), ("Li", "process[5]")])
def test_a_material_no_film_holds_is_named(missing: str, where: str) -> None:
    spec = load_campaign(INTERLAYER)
    wc = interlayer_workcell([m for m in interlayer_materials() if m != missing])
    with pytest.raises(SpecError, match=rf"no film of the deposition controller holds {missing} "):
        check_campaign(spec, wc, "wc.yaml")
    with pytest.raises(SpecError, match=rf"^{where.replace('[', '.').replace(']', '.')}"):
        check_campaign(spec, wc, "wc.yaml")


def test_a_missing_device_role_is_named() -> None:
    spec = load_campaign(INTERLAYER)
    with pytest.raises(SpecError, match="wc.yaml has no device named or with role 'hotplate'") as e:
        check_campaign(spec, interlayer_workcell(drop="hotplate"), "wc.yaml")
    assert "ika_namur" in str(e.value) and str(e.value).startswith("process[3] (anneal)")
    wrong = {"kind": "mt_sics", "url": "loop://", "station": "hotplate"}
    with pytest.raises(SpecError, match="device 'hotplate' is a mt_sics; a anneal step runs on"):
        check_campaign(spec, interlayer_workcell(hotplate=wrong), "wc.yaml")


def test_a_station_the_gantry_lacks_is_named() -> None:
    spec = load_campaign(INTERLAYER)
    gantry = {"kind": "grbl", "url": "loop://", "stations": {"deposition": [0, 0, 0]}}
    with pytest.raises(SpecError, match="the gantry has no station 'hotplate'"):
        check_campaign(spec, interlayer_workcell(gantry=gantry), "wc.yaml")


def test_a_step_not_preceded_by_a_move_is_refused() -> None:
    data = load_campaign(INTERLAYER).model_dump()
    # drop the move to the hotplate: the anneal would run with the sample at the deposition
    data["process"] = [s for s in data["process"] if s["args"].get("station") != "hotplate"]
    spec = parse_campaign(data)
    with pytest.raises(SpecError, match="process.2. .anneal.: runs on 'hotplate' at station") as e:
        check_campaign(spec, interlayer_workcell(), "wc.yaml")
    assert "sample is at 'deposition'" in str(e.value)
    assert "add a move step (step: move, args: {station: hotplate})" in str(e.value)


def test_a_measurement_away_from_the_sample_is_refused() -> None:
    data = load_campaign(INTERLAYER).model_dump()
    data["process"] = data["process"][:-1]  # no final move to the impedance meter
    spec = parse_campaign(data)
    with pytest.raises(SpecError, match="^fidelities.screening: runs on 'lcr' at station 'lcr'"):
        check_campaign(spec, interlayer_workcell(), "wc.yaml")


def small_workcell(gantry: bool) -> Any:
    devices: dict[str, Any] = {
        "pump": {"kind": "ne1000", "url": "loop://", "role": "precursor", "station": "dispense"},
        "lcr": {"kind": "scpi_lcr", "url": "loop://", "station": "lcr"},
    }
    if gantry:
        devices["gantry"] = {
            "kind": "grbl",
            "url": "loop://",
            "stations": {"dispense": [0, 0, 0], "lcr": [1, 0, 0]},
        }
    return parse_workcell({"devices": devices})


def test_first_step_needs_a_move_with_a_gantry() -> None:
    spec = parse_campaign(campaign())
    with pytest.raises(SpecError, match="process.0. .dispense.: runs on 'pump' at station") as e:
        check_campaign(spec, small_workcell(gantry=True), "wc.yaml")
    assert "not at any station" in str(e.value) and "station: dispense" in str(e.value)
    # without a gantry nothing carries the sample: stations are not followed
    check_campaign(spec, small_workcell(gantry=False), "wc.yaml")
    # moves first, and to the meter after: accepted
    data = campaign()
    data["process"] = [
        {"step": "move", "device": "gantry", "args": {"station": "dispense"}},
        *data["process"],
        {"step": "move", "device": "gantry", "args": {"station": "lcr"}},
    ]
    check_campaign(parse_campaign(data), small_workcell(gantry=True), "wc.yaml")


def test_calculation_fidelity_is_refused_at_launch() -> None:
    spec = load_campaign(BENCH_INTERLAYER)
    with pytest.raises(SpecError, match="^fidelities.calculation: route 'calculation' is a calc"):
        check_campaign(spec, interlayer_workcell(), "wc.yaml")


def test_measuring_device_ambiguity() -> None:
    spec = load_campaign(INTERLAYER)
    second = {"kind": "scpi_lcr", "url": "loop://", "station": "lcr", "role": "meter"}
    wc = interlayer_workcell(lcr2=second)
    with pytest.raises(SpecError, match=r"workcell has 2 \(lcr, lcr2\): name one with device:"):
        measuring_device(spec, spec.target, wc)
    with pytest.raises(SpecError, match="fidelities.screening: route impedance_single"):
        check_campaign(spec, wc, "workcell")
    # named by device name or by role
    assert measuring_device(spec, spec.target.model_copy(update={"device": "lcr"}), wc) == "lcr"
    assert measuring_device(spec, spec.target.model_copy(update={"device": "meter"}), wc) == "lcr2"
    # a named device that is no impedance meter
    hot = spec.target.model_copy(update={"device": "hotplate"})
    with pytest.raises(SpecError, match="fidelities.full.device: wc has no scpi_lcr"):
        measuring_device(spec, hot, wc, "wc")
    with pytest.raises(SpecError, match=r"has 0 \(none\): add one"):
        measuring_device(spec, spec.target, interlayer_workcell(drop="lcr"))


def test_fidelity_device_in_the_campaign_file() -> None:
    data = load_campaign(INTERLAYER).model_dump()
    for f in data["fidelities"]:
        f["device"] = "meter"
    spec = parse_campaign(data)
    second = {"kind": "scpi_lcr", "url": "loop://", "station": "lcr", "role": "meter"}
    wc = interlayer_workcell(lcr2=second)
    check_campaign(spec, wc, "wc.yaml")
    assert {measuring_device(spec, f, wc) for f in spec.fidelities} == {"lcr2"}


def test_a_step_kind_declares_its_own_safety_limit() -> None:
    """``max_deposit_thickness_nm`` is the deposit step's limit, not a schema field: the file
    may set it, its default applies otherwise, and an undeclared limit is refused."""
    spec = load_campaign(INTERLAYER)
    assert spec.safety.value("max_deposit_thickness_nm") == 500.0
    data = yaml.safe_load(INTERLAYER.read_text())
    del data["safety"]["max_deposit_thickness_nm"]
    assert parse_campaign(data).safe_range("thickness_nm") == (0.0, 1000.0)
    data["safety"]["max_deposit_thickness_mm"] = 1
    with pytest.raises(SpecError, match="safety.max_deposit_thickness_mm: unknown key"):
        parse_campaign(data)
    data["safety"] = {"max_deposit_thickness_nm": -5}
    with pytest.raises(
        SpecError, match="safety.max_deposit_thickness_nm: must be a number above 0"
    ):
        parse_campaign(data)
