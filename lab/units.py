"""Physical units: parsing, conversion and quantities written with their unit.

Every step argument and route option declares its unit; a campaign parameter bound to it must
carry a unit convertible to that one, and its values are converted (``unit: mL`` on a dispensed
volume becomes µL, never read as µL). Conversion uses :mod:`pint`, so offset units such as
``degC`` and ``K`` convert correctly.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from lab.errors import SpecError

__all__ = ["compatible", "convert", "parse_quantity", "registry"]

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.+?)\s*$")


@functools.cache
def registry() -> Any:
    """The one :class:`pint.UnitRegistry` of the process."""
    import pint

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def _unit(text: str, where: str) -> Any:
    try:
        return registry().Unit(text.strip().replace("°C", "degC"))
    except Exception:  # noqa: BLE001 - pint raises several types for a bad unit
        raise SpecError(
            f"{where}: '{text}' is not a unit pint knows (e.g. uL, mL, nm, degC, min, Hz, V)"
        ) from None


def compatible(unit: str, target: str, where: str = "unit") -> bool:
    """Whether a value in ``unit`` can be converted to ``target``."""
    return _unit(unit, where).dimensionality == _unit(target, where).dimensionality


def convert(value: float, unit: str, target: str, where: str = "value") -> float:
    """Convert ``value`` from ``unit`` to ``target``.

    Args:
        value: The magnitude in ``unit``.
        unit: Its unit, e.g. ``mL``.
        target: The unit wanted, e.g. ``uL``.
        where: Field named in error messages.

    Raises:
        SpecError: If either unit is unknown or they measure different things.
    """
    if unit == target:
        return float(value)
    src, dst = _unit(unit, where), _unit(target, where)
    if src.dimensionality != dst.dimensionality:
        raise SpecError(
            f"{where}: {unit} cannot be converted to {target} (they measure different things): "
            f"give the value in a unit of the same kind as {target}"
        )
    return float(registry().Quantity(float(value), src).to(dst).magnitude)


def parse_quantity(raw: Any, target: str, where: str) -> float:
    """A number in ``target``, from a bare number (already in ``target``) or text with a unit.

    ``"1 MHz"`` with target ``Hz`` gives ``1e6``; ``0.2`` with target ``nm`` gives ``0.2``.

    Raises:
        SpecError: If ``raw`` is neither, or its unit does not convert to ``target``.
    """
    if isinstance(raw, bool):
        raise SpecError(f"{where}: expected a number in {target}, got {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str) and (m := _QUANTITY.match(raw)):
        value = convert(float(m.group(1)), m.group(2), target, where)
    else:
        raise SpecError(
            f"{where}: expected a number in {target} or a quantity such as '10 {target}', "
            f"got {raw!r}"
        )
    if not math.isfinite(value):
        raise SpecError(f"{where}: {raw!r} is not a finite number")
    return value
