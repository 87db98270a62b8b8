"""Units: values are converted with pint, never read as if in another unit."""

from __future__ import annotations

import math

import pytest

from lab.errors import SpecError
from lab.units import compatible, convert, parse_quantity


def test_volume_conversion() -> None:
    assert convert(0.05, "mL", "uL") == pytest.approx(50.0)
    assert convert(250.0, "uL", "mL") == pytest.approx(0.25)
    assert convert(3.0, "uL", "uL") == 3.0


def test_offset_temperatures_convert_correctly() -> None:
    assert convert(300.0, "K", "degC") == pytest.approx(26.85)
    assert convert(25.0, "degC", "K") == pytest.approx(298.15)
    assert convert(100.0, "°C", "K") == pytest.approx(373.15)
    assert convert(0.0, "degC", "degC") == 0.0


def test_rates_and_times() -> None:
    # 1 mL/h is 1000 uL per 60 min
    assert convert(1.0, "mL/h", "uL/min") == pytest.approx(1000.0 / 60.0)
    assert convert(100.0, "uL/min", "mL/h") == pytest.approx(6.0)
    assert convert(1.5, "h", "min") == pytest.approx(90.0)
    assert compatible("mL/h", "uL/min") and not compatible("mL", "uL/min")


@pytest.mark.parametrize(
    ("raw", "target", "expected"),
    [
        ("1 MHz", "Hz", 1.0e6),
        ("1MHz", "Hz", 1.0e6),
        ("20 Hz", "Hz", 20.0),
        ("10 mV", "V", 0.01),
        ("200 nm", "nm", 200.0),
        ("0.1 mL/min", "uL/min", 100.0),
        ("6 mL/h", "uL/min", 100.0),
        ("1e-3 L", "uL", 1000.0),
        ("-5 degC", "K", 268.15),
        (0.2, "nm", 0.2),
        (3, "Hz", 3.0),
    ],
)
def test_parse_quantity(raw: object, target: str, expected: float) -> None:
    value = parse_quantity(raw, target, "field")
    assert isinstance(value, float)
    assert value == pytest.approx(expected)


def test_incompatible_units_name_the_field() -> None:
    with pytest.raises(SpecError, match=r"^process\[0\]\.rate: mL cannot be converted to uL/min"):
        parse_quantity("0.1 mL", "uL/min", "process[0].rate")
    with pytest.raises(SpecError, match="thickness: nm cannot be converted to uL"):
        convert(1.0, "nm", "uL", "thickness")


@pytest.mark.parametrize("text", ["10 furlongz", "10 uL/minn"])
def test_bad_unit_text(text: str) -> None:
    with pytest.raises(SpecError, match=r"^opt: .* is not a unit pint knows"):
        parse_quantity(text, "uL", "opt")


def test_bad_unit_in_convert_and_compatible() -> None:
    with pytest.raises(SpecError, match="where: 'blorp' is not a unit"):
        convert(1.0, "blorp", "uL", "where")
    with pytest.raises(SpecError, match="is not a unit"):
        compatible("uL", "blorp")


@pytest.mark.parametrize("raw", ["fast", "", "uL 10", None, [1.0], True, {"v": 1}])
def test_not_a_quantity(raw: object) -> None:
    with pytest.raises(SpecError, match="^opt: expected a number in uL"):
        parse_quantity(raw, "uL", "opt")


@pytest.mark.parametrize("raw", [math.inf, math.nan, "1e999 uL"])
def test_not_finite(raw: object) -> None:
    with pytest.raises(SpecError, match="is not a finite number"):
        parse_quantity(raw, "uL", "opt")
