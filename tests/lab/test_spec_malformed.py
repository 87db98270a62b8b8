"""More malformed campaign files: each is refused with a message naming the field and the fix.

Together with ``test_spec.py`` this gives the suite well over 30 malformed campaign files. Each
one is checked twice: :func:`lab.spec.parse_campaign` / :func:`lab.spec.load_campaign` raise a
:class:`~lab.errors.SpecError` naming the field, and ``lab campaign validate FILE`` exits with
status 2 and a short message without a traceback.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from lab.console import app
from lab.errors import SpecError
from lab.spec import load_campaign, parse_campaign

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())
runner = CliRunner()

DELETE = object()
APPEND = object()


def mutated(path: str, value: Any, how: object = None) -> dict[str, Any]:
    """The demo campaign with the value at a dotted ``path`` replaced, deleted or appended to."""
    data = copy.deepcopy(DEMO)
    node: Any = data
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    key: Any = int(last) if last.isdigit() else last
    if how is APPEND:
        node[key].append(value)
    elif value is DELETE:
        del node[key]
    else:
        node[key] = value
    return data


CATEGORICAL = {"name": "material", "type": "categorical"}

# (id, path, value, how, expected text naming the field and the problem)
CASES: list[tuple[str, str, Any, object, str]] = [
    ("name-with-spaces", "name", "demo interlayer!", None, "name: String should match"),
    ("name-empty", "name", "", None, "name: String should"),
    ("parameters-empty", "parameters", [], None, "parameters: List should have at least 1"),
    (
        "parameters-mapping",
        "parameters",
        {"a": 1},
        None,
        "parameters: Input should be a valid list",
    ),
    ("parameter-not-mapping", "parameters.0", "precursor_volume_ul", None, "parameters[0]:"),
    ("parameter-unit-empty", "parameters.0.unit", "", None, "parameters[0].unit:"),
    ("parameter-low-text", "parameters.0.low", "small", None, "parameters[0].low:"),
    (
        "rate-low-zero",
        "parameters.2.low",
        0.0,
        None,
        "process[0] (dispense).rate: parameter 'precursor_rate_ul_min' goes down to 0 uL/min; "
        "it must stay above 0 uL/min",
    ),
    (
        "volume-negative",
        "parameters.1.low",
        -5.0,
        None,
        "process[1] (dispense).volume: parameter 'solvent_volume_ul' goes down to -5 uL",
    ),
    (
        "parameter-unconsumed",
        "parameters",
        {"name": "stir_rpm", "type": "continuous", "low": 0.0, "high": 500.0, "unit": "1/min"},
        APPEND,
        "parameter(s) stir_rpm: consumed by no process step, route option or 'ignores'",
    ),
    (
        "volume-in-nm",
        "parameters.0.unit",
        "nm",
        None,
        "parameter 'precursor_volume_ul' is in nm, which does not convert to uL",
    ),
    (
        "volume-in-mL-converted-then-too-large",
        "parameters.0.unit",
        "mL",
        None,
        "parameter 'precursor_volume_ul' reaches 40000 uL, above safety.max_dispense_volume_ul",
    ),
    (
        "categorical-one-choice",
        "parameters",
        {**CATEGORICAL, "choices": ["LiF"]},
        APPEND,
        "parameters[3].choices: List should have at least 2",
    ),
    (
        "categorical-repeated-choice",
        "parameters",
        {**CATEGORICAL, "choices": ["LiF", "LiF"]},
        APPEND,
        "parameters[3].choices: choices must be unique",
    ),
    (
        "anneal-above-safety",
        "process",
        {"step": "anneal", "device": "hotplate", "args": {"temperature": "400 degC"}},
        APPEND,
        "process[2] (anneal).temperature: the constant reaches 400 degC, above "
        "safety.max_temperature_c=250 degC",
    ),
    (
        "parameter-type-missing",
        "parameters",
        {"name": "anneal_temperature_c", "low": 50.0, "high": 200.0, "unit": "degC"},
        APPEND,
        "parameters[3] ('anneal_temperature_c'): type is missing: add type: continuous (with low,"
        " high and unit) or categorical (with choices)",
    ),
    (
        "parameter-type-deleted",
        "parameters.0.type",
        DELETE,
        None,
        "parameters[0] ('precursor_volume_ul'): type is missing: add type: continuous",
    ),
    (
        "parameter-type-missing-no-name",
        "parameters",
        {"choices": ["a", "b"]},
        APPEND,
        "parameters[3]: type is missing: add type: continuous (with low, high and unit) or "
        "categorical (with choices)",
    ),
    (
        "parameter-type-unknown",
        "parameters.1.type",
        "float",
        None,
        "parameters[1] ('solvent_volume_ul'): type must be continuous (with low, high and unit)"
        " or categorical (with choices), not 'float'",
    ),
    (
        "electrode-area-zero",
        "objective.electrode_area_cm2",
        0,
        None,
        "objective.electrode_area_cm2:",
    ),
    ("objective-name-missing", "objective.name", DELETE, None, "objective.name: required key"),
    ("objective-unit-empty", "objective.unit", "", None, "objective.unit:"),
    ("interface-missing", "interface", DELETE, None, "interface: required key is missing"),
    ("interface-unknown-key", "interface.substrat", "Li", None, "interface.substrat: unknown key"),
    (
        "sweep-too-few-points",
        "fidelities.0.options.points",
        2,
        None,
        "fidelities.full.options.points: the constant goes down to 2; it must be at least 3",
    ),
    (
        "sweep-inverted",
        "fidelities.0.options.freq_min",
        "2 MHz",
        None,
        "fidelities.full.options: freq_min=2e+06 Hz is not below freq_max=1e+06 Hz: swap them",
    ),
    (
        "sweep-unknown-option",
        "fidelities.0.options.freq_min_hz",
        20,
        None,
        "fidelities.full.options: unknown argument(s) freq_min_hz",
    ),
    (
        "fidelity-repeated",
        "fidelities",
        dict(DEMO["fidelities"][0]),
        APPEND,
        "fidelity names must be unique",
    ),
    (
        "screening-outside-safety",
        "fidelities",
        {"name": "screen", "cost": 0.1, "route": "impedance_single", "options": {"frequency": 5}},
        APPEND,
        "fidelities.screen.options.frequency: the constant goes down to 5 Hz, below "
        "safety.min_frequency_hz=20 Hz",
    ),
    (
        "safety-frequency-inverted",
        "safety.min_frequency_hz",
        3.0e6,
        None,
        "safety.min_frequency_hz must be below safety.max_frequency_hz",
    ),
    ("safety-voltage-too-high", "safety.max_ac_voltage_v", 50, None, "safety.max_ac_voltage_v:"),
    ("safety-rate-zero", "safety.max_pump_rate_ul_min", 0, None, "safety.max_pump_rate_ul_min:"),
    (
        "safety-unknown-key",
        "safety.max_pressure_bar",
        2,
        None,
        "safety.max_pressure_bar: unknown key",
    ),
    (
        "constant-rate-above-safety",
        "process.1.args.rate",
        "0.9 mL/min",
        None,
        "process[1] (dispense).rate: the constant reaches 900 uL/min, above "
        "safety.max_pump_rate_ul_min=500 uL/min",
    ),
    ("approval-unknown", "approval", "manual", None, "approval:"),
    ("initial-design-zero", "initial_design", 0, None, "initial_design:"),
    ("batch-too-large", "batch_size", 65, None, "batch_size:"),
    ("syringe-too-thin", "syringe_diameter_mm", 0.05, None, "syringe_diameter_mm:"),
    (
        "ac-voltage-zero",
        "fidelities.0.options.ac_voltage",
        0,
        None,
        "fidelities.full.options.ac_voltage: the constant goes down to 0 V; it must stay above 0 V",
    ),
    ("budget-null", "budget", None, None, "budget:"),
    ("workcell-empty", "workcell", "", None, "workcell:"),
]


@pytest.mark.parametrize(
    ("path", "value", "how", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_malformed_campaign_is_refused(
    tmp_path: Path, path: str, value: Any, how: object, expected: str
) -> None:
    data = mutated(path, value, how)
    with pytest.raises(SpecError) as info:
        parse_campaign(data, "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml:"), message
    assert expected in message, message

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    result = runner.invoke(app, ["campaign", "validate", str(bad)])
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 8, result.output


# (id, file bytes, expected text)
FILES: list[tuple[str, bytes, str]] = [
    ("tab-indentation", b"name: demo\n\tbudget: 3\n", "not valid YAML at line 2"),
    ("scalar-document", b"42\n", "must be a YAML mapping"),
    ("not-utf8", b"name: \xff\xfe demo\n", "cannot read the campaign file"),
    ("unclosed-quote", b'name: "demo\nbudget: 3\n', "not valid YAML"),
    ("two-documents", b"name: a\n---\nname: b\n", "not valid YAML"),
]


@pytest.mark.parametrize(
    ("content", "expected"), [pytest.param(*case[1:], id=case[0]) for case in FILES]
)
def test_unreadable_campaign_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=expected):
        load_campaign(path)
    result = runner.invoke(app, ["campaign", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_a_folder_is_not_a_campaign_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the campaign file"):
        load_campaign(tmp_path)


def test_every_problem_is_listed_at_once() -> None:
    data = mutated("budget", -1)
    data["batch_size"] = 0
    data["approvals"] = "auto"
    with pytest.raises(SpecError) as info:
        parse_campaign(data, "bad.yaml")
    message = str(info.value)
    assert message.splitlines()[0] == "bad.yaml: 3 problems"
    for field in ("budget:", "batch_size:", "approvals: unknown key"):
        assert field in message


def test_at_least_thirty_malformed_files_in_the_suite() -> None:
    import tests.lab.test_spec as older

    older_cases = [
        m.args
        for m in older.test_malformed_campaign_names_the_field.pytestmark
        if m.name == "parametrize"
    ]
    n_older = len(older_cases[0][1]) + 1  # + the repeated parameter names
    n_older += len(
        next(m.args[1] for m in older.test_unreadable_files.pytestmark if m.name == "parametrize")
    )
    assert len(CASES) + len(FILES) + 2 + n_older >= 30
