"""Campaign files: the demo validates; malformed files give errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.errors import SafetyError, SpecError
from lab.spec import load_campaign, parse_campaign

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "campaigns" / "demo.yaml"


def demo_data() -> dict:
    return yaml.safe_load(DEMO.read_text())


def test_demo_campaign_is_valid() -> None:
    spec = load_campaign(DEMO)
    assert spec.target.name == "full"
    assert spec.budget >= 8
    assert [p.name for p in spec.parameters] == [
        "precursor_volume_ul",
        "solvent_volume_ul",
        "precursor_rate_ul_min",
    ]
    params = {"precursor_volume_ul": 5.0, "solvent_volume_ul": 1.0, "precursor_rate_ul_min": 50.0}
    steps = [
        (kind.name, {a: b.value(params, spec) for a, b in bindings.items()})
        for _, kind, bindings in spec.bound_steps()
    ]
    assert steps == [
        ("dispense", {"volume": 5.0, "rate": 50.0}),
        ("dispense", {"volume": 1.0, "rate": 100.0}),
    ]


def _mutate(path: str, value: object) -> dict:
    data = demo_data()
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("bugdet", 3, "bugdet: unknown key"),
        ("parameters.0.lowe", 1, "parameters[0].lowe: unknown key"),
        ("budget", "ten", "budget:"),
        ("budget", -1, "budget:"),
        ("batch_size", 0, "batch_size:"),
        ("parameters.0.low", 50.0, "parameters[0]: bounds are inverted"),
        ("parameters.1.high", 0.0, "parameters[1]: bounds are inverted"),
        (
            "parameters.0.type",
            "discrete",
            "parameters[0] ('precursor_volume_ul'): type must be continuous (with low, high and "
            "unit) or categorical (with choices), not 'discrete'",
        ),
        ("objective.direction", "down", "objective.direction:"),
        ("objective", _DELETE, "objective: required key is missing"),
        ("fidelities", [], "fidelities:"),
        ("fidelities.0.cost", 0, "fidelities[0].cost:"),
        ("fidelities.0.route", "teleport", "fidelities.full.route: unknown route 'teleport'"),
        ("target_fidelity", "cheap", "target_fidelity 'cheap' is not one of"),
        ("parameters.0.high", 500.0, "above safety.max_dispense_volume_ul"),
        ("parameters.2.high", 5000.0, "above safety.max_pump_rate_ul_min"),
        ("safety.max_ac_voltage_v", 0.001, "above safety.max_ac_voltage_v=0.001 V"),
        ("fidelities.0.options.freq_min", 5.0, "below safety.min_frequency_hz=20 Hz"),
        ("process.0.step", "teleport", "process[0].step: unknown step kind 'teleport'"),
        ("process.1.args.volume", "$nothing", "'$nothing' names no parameter"),
        ("parameters.0.name", "Bad Name", "parameters[0].name:"),
        ("interface.substrate", "", "interface.substrate:"),
    ],
)
def test_malformed_campaign_names_the_field(path: str, value: object, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_campaign(_mutate(path, value), "bad.yaml")
    msg = str(info.value)
    assert msg.startswith("bad.yaml:")
    assert expected in msg


def test_duplicate_parameter_names() -> None:
    data = demo_data()
    data["parameters"].append(dict(data["parameters"][0]))
    with pytest.raises(SpecError, match="repeated: precursor_volume_ul"):
        parse_campaign(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "not valid YAML at line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("", "must be a YAML mapping"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(SpecError, match=expected):
        load_campaign(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such campaign file"):
        load_campaign(tmp_path / "nope.yaml")


def test_check_params_refuses_out_of_bounds() -> None:
    spec = load_campaign(DEMO)
    ok = {"precursor_volume_ul": 5.0, "solvent_volume_ul": 1.0, "precursor_rate_ul_min": 50.0}
    spec.check_params(ok)
    with pytest.raises(SafetyError, match="precursor_rate_ul_min"):
        spec.check_params({**ok, "precursor_rate_ul_min": 9000.0})
    with pytest.raises(SafetyError, match="lacks parameter"):
        spec.check_params({"precursor_volume_ul": 5.0})
    with pytest.raises(SafetyError, match="unknown parameters"):
        spec.check_params({**ok, "extra": 1.0})
    with pytest.raises(SafetyError, match="outside"):
        spec.check_params({**ok, "solvent_volume_ul": float("nan")})
