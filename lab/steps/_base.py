"""What a process step is: named arguments with units, bound to parameters or constants.

A campaign's ``process:`` lists the steps that make one sample::

    - {step: deposit, device: deposition, args: {material: $modifier, thickness: $thickness_nm}}

Each step kind (a :class:`StepKind` in :data:`lab.steps.STEPS`) declares its arguments
(:class:`Arg`: unit, default, physical lower bound, the safety limit that caps it), the
instrument kinds it runs on, and builds the Bluesky plan stubs that do it. A value is bound
(:class:`Binding`) either to a campaign parameter (``$name``: converted from the parameter's
unit to the argument's) or to a constant (a number in the argument's unit, or text with a unit
such as ``"200 nm"``). Nothing here keys on a parameter's name: what a parameter does is what
the step bound to it does.

Step kinds build plans on demand (they import Bluesky inside :meth:`StepKind.plan`), so the
campaign schema can validate a process without importing the bench.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.errors import SafetyError, SpecError
from lab.units import convert, parse_quantity

if TYPE_CHECKING:
    from lab.spec import Campaign, SafetyLimits

__all__ = ["Arg", "Binding", "StepContext", "StepKind", "bind"]


@dataclass(frozen=True)
class Arg:
    """One argument of a step kind or option of a route.

    Attributes:
        name: Argument name in the campaign file.
        unit: Its unit (values are converted to it); ``None`` for a name (a material, a
            station) or a count.
        doc: What it means.
        default: Value when the file omits it (``None``: required).
        above: Values must be strictly above this (``None``: no bound), in ``unit``.
        at_least: Values must be at least this (``None``: no bound), in ``unit``.
        limit: Safety limit that caps the value (same unit): a field of
            :class:`~lab.spec.SafetyLimits`, or a limit this argument declares with
            ``limit_default``.
        limit_default: Default of a limit that is not a field of ``SafetyLimits``.
        floor: Field of :class:`~lab.spec.SafetyLimits` the value may not go below.
        integer: The value is a whole number (a count).
        device_limit: Field of the instrument's limits type that caps the value in the
            instrument's own limits (same unit), checked at launch against the limits in force.
    """

    name: str
    unit: str | None
    doc: str
    default: Any = None
    above: float | None = None
    at_least: float | None = None
    limit: str | None = None
    limit_default: float | None = None
    floor: str | None = None
    integer: bool = False
    device_limit: str | None = None

    @property
    def numeric(self) -> bool:
        """Whether the argument takes a number (else a name)."""
        return self.unit is not None or self.integer

    def bounds(self, safety: SafetyLimits) -> tuple[float | None, float | None]:
        """``(lowest, highest)`` allowed by physics and the safety limits, in ``unit``."""
        lo = self.at_least if self.at_least is not None else self.above
        if self.floor is not None:
            f = safety.value(self.floor)
            lo = f if lo is None or f is None else max(lo, f)
        hi = None if self.limit is None else safety.value(self.limit, self.limit_default)
        return lo, hi

    def check(self, value: Any, safety: SafetyLimits, where: str) -> None:
        """Refuse a value outside :meth:`bounds` (before anything reaches an instrument).

        Raises:
            SafetyError: Naming the argument, the value and the limit.
        """
        if not self.numeric:
            return
        v = float(value)
        unit = f" {self.unit}" if self.unit else ""
        if v != v:
            raise SafetyError(f"{where}: {self.name} is not a number")
        if self.above is not None and not v > self.above:
            raise SafetyError(f"{where}: {self.name}={v:g}{unit} must be above {self.above:g}")
        if self.at_least is not None and v < self.at_least:
            raise SafetyError(f"{where}: {self.name}={v:g}{unit} is below {self.at_least:g}")
        lo, hi = self.bounds(safety)
        if self.floor is not None and lo is not None and v < lo:
            raise SafetyError(
                f"{where}: {self.name}={v:g}{unit} is below safety.{self.floor}={lo:g}"
            )
        if hi is not None and v > hi:
            raise SafetyError(
                f"{where}: {self.name}={v:g}{unit} exceeds safety.{self.limit}={hi:g}"
            )


@dataclass(frozen=True)
class Binding:
    """The value of one argument: a campaign parameter or a constant.

    Attributes:
        arg: The argument bound.
        param: Name of the campaign parameter (``$name`` in the file), or ``None``.
        constant: The constant, in the argument's unit, when ``param`` is ``None``.
    """

    arg: Arg
    param: str | None = None
    constant: Any = None

    def value(self, params: Mapping[str, Any], spec: Campaign) -> Any:
        """The argument's value for one proposal, in the argument's unit."""
        if self.param is None:
            return self.constant
        raw = params[self.param]
        p = spec.parameter(self.param)
        unit = getattr(p, "unit", None)
        if self.arg.unit is not None and unit is not None:
            return convert(float(raw), unit, self.arg.unit, f"parameter '{self.param}'")
        return int(raw) if self.arg.integer else raw

    def domain(self, spec: Campaign) -> list[Any] | tuple[float, float]:
        """Every value the argument can take: ``(low, high)`` in its unit, or the names."""
        if self.param is None:
            c = self.constant
            return (float(c), float(c)) if self.arg.numeric else [c]
        p = spec.parameter(self.param)
        if getattr(p, "choices", None) is not None:
            return list(p.choices)  # type: ignore[union-attr]
        lo, hi = p.low, p.high  # type: ignore[union-attr]
        if self.arg.unit is not None:
            where = f"parameter '{self.param}'"
            lo = convert(lo, p.unit, self.arg.unit, where)  # type: ignore[union-attr]
            hi = convert(hi, p.unit, self.arg.unit, where)  # type: ignore[union-attr]
        return (min(lo, hi), max(lo, hi))


def bind(
    args: tuple[Arg, ...], raw: Mapping[str, Any], spec: Campaign, where: str
) -> dict[str, Binding]:
    """Bind the arguments a campaign file gives to their declared :class:`Arg`.

    Checks, naming ``where`` and the argument: unknown or missing arguments, ``$name`` of an
    unknown parameter, a categorical parameter on a numeric argument (or the reverse), a
    parameter whose unit does not convert to the argument's, and a constant that is not a
    number in (or a quantity convertible to) the argument's unit.

    Returns:
        Argument name to binding, for every argument (defaults filled in).

    Raises:
        SpecError: For any of the problems above.
    """
    known = {a.name: a for a in args}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SpecError(
            f"{where}: unknown argument(s) {', '.join(unknown)}; it takes "
            f"{', '.join(f'{a.name} [{a.unit}]' if a.unit else a.name for a in args)}"
        )
    out: dict[str, Binding] = {}
    for a in args:
        at = f"{where}.{a.name}"
        if a.name not in raw:
            if a.default is None:
                raise SpecError(f"{at}: required; bind it to a parameter ($name) or a constant")
            out[a.name] = Binding(a, constant=a.default)
            continue
        v = raw[a.name]
        if isinstance(v, str) and v.startswith("$"):
            name = v[1:]
            if name not in spec.parameter_names:
                raise SpecError(
                    f"{at}: '{v}' names no parameter (parameters: "
                    f"{', '.join(spec.parameter_names)})"
                )
            p = spec.parameter(name)
            categorical = getattr(p, "choices", None) is not None
            if a.numeric and categorical:
                raise SpecError(f"{at}: takes a number but '{name}' is categorical")
            if not a.numeric and not categorical:
                raise SpecError(f"{at}: takes a name but '{name}' is continuous")
            if a.unit is not None and not categorical:
                from lab.units import compatible

                if not compatible(p.unit, a.unit, at):  # type: ignore[union-attr]
                    raise SpecError(
                        f"{at}: parameter '{name}' is in {p.unit}, which does not convert to "  # type: ignore[union-attr]
                        f"{a.unit}: give the parameter a unit of the same kind"
                    )
            out[a.name] = Binding(a, param=name)
        elif a.unit is not None:
            out[a.name] = Binding(a, constant=parse_quantity(v, a.unit, at))
        elif a.integer:
            if isinstance(v, bool) or not isinstance(v, int):
                raise SpecError(f"{at}: expected a whole number, got {v!r}")
            out[a.name] = Binding(a, constant=v)
        else:
            if not isinstance(v, str | int) or isinstance(v, bool):
                raise SpecError(f"{at}: expected a name, got {v!r}")
            out[a.name] = Binding(a, constant=str(v))
    return out


@dataclass
class StepContext:
    """What a step's plan needs besides its device and values.

    Attributes:
        safety: Safety limits in force.
        time_scale: Workcell seconds per real second (waits are divided by it).
        stations: Device name to the station it works at (workcells with a gantry).
        location: Station the sample is at now, ``None`` when unknown or without a gantry.
        tracked: Whether the sample's location is tracked (the workcell has a gantry).
        index: Position of the step in the process, from 1.
    """

    safety: SafetyLimits
    time_scale: float = 1.0
    stations: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    tracked: bool = False
    index: int = 0


class StepKind:
    """A registered kind of process step. Subclasses set the attributes and :meth:`plan`.

    Attributes:
        name: Name used in the campaign file (``step: deposit``).
        doc: One line on what it does.
        instruments: Instrument kinds it can run on.
        args: Its arguments.
        moves_sample: The step moves the sample (its ``station`` argument) rather than acting
            on it at the device's station.
    """

    name: str = ""
    doc: str = ""
    instruments: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()
    moves_sample: bool = False

    def check_values(self, values: Mapping[str, Any], ctx: StepContext, where: str) -> None:
        """Refuse values outside physics or the safety limits (before any message)."""
        for a in self.args:
            a.check(values[a.name], ctx.safety, where)

    def check_device(self, entry: Any, domain: Mapping[str, Any], where: str) -> None:
        """Launch-time check of the workcell device against every value the step can take.

        Args:
            entry: The device's workcell entry.
            domain: Argument name to :meth:`Binding.domain`.
            where: Names the step in messages.

        Raises:
            SpecError: If the device cannot do what the step may ask.
        """

    def skip(self, values: Mapping[str, Any]) -> bool:
        """Whether these values make the step a no-op (e.g. a zero volume)."""
        return False

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext
    ) -> Generator[Any, Any, Any]:
        """Bluesky plan stubs that perform the step (inside the sample's run)."""
        raise NotImplementedError
