"""Campaign files: the validated description of one optimisation campaign.

A campaign file is YAML. It names the interface being improved, the design space (continuous
process parameters with units and bounds, categorical choices), the objective and how it is
derived from raw data, the fidelities with their costs, the budget in cost units, safety limits
and the workcell. :func:`load_campaign` validates everything before anything runs and turns
every problem into a :class:`~lab.errors.SpecError` whose message names the field and the fix.

The ``process:`` section says how one sample is made: an ordered list of registered steps
(:data:`lab.steps.STEPS`), each on a device role of the workcell, with each argument bound to a
parameter (``$name``) or a constant; each fidelity names a registered route
(:data:`lab.routes.ROUTES`) with its own ``options:``. A parameter means what the step or
route bound to it does; nothing infers meaning from its name. Every parameter must be consumed
by a step, a route option or a fidelity's ``ignores``. See ``docs/campaign-file.md``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab.errors import SpecError

__all__ = [
    "Campaign",
    "CategoricalParameter",
    "ContinuousParameter",
    "Fidelity",
    "Objective",
    "SafetyLimits",
    "format_validation_error",
    "load_campaign",
    "parse_campaign",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Interface(_Strict):
    """The interface being optimised: ``substrate | modifier | other_phase``."""

    substrate: str = Field(min_length=1, description="Substrate or electrode, e.g. 'Li'.")
    other_phase: str = Field(min_length=1, description="Partner phase, e.g. 'LLZO'.")
    description: str = ""


class ContinuousParameter(_Strict):
    """A bounded continuous process parameter.

    Attributes:
        name: Identifier, e.g. ``precursor_volume_ul``.
        low: Lower bound in ``unit``.
        high: Upper bound in ``unit`` (strictly greater than ``low``).
        unit: Physical unit, e.g. ``uL``.
        scale: ``linear`` (default) or ``log``: how the optimiser spreads and models the
            values. ``log`` suits a parameter spanning decades whose effect goes with ratios,
            e.g. a film thickness from 0.5 to 50 nm; it needs ``low > 0``.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["continuous"] = "continuous"
    low: float
    high: float
    unit: str = Field(min_length=1)
    scale: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _ordered(self) -> ContinuousParameter:
        if not self.low < self.high:
            raise ValueError(
                f"bounds are inverted or empty (low={self.low}, high={self.high}): "
                "set low strictly below high"
            )
        if self.scale == "log" and self.low <= 0:
            raise ValueError(
                f"scale: log needs a positive low bound (low={self.low}): raise low above 0 "
                "or use scale: linear"
            )
        return self

    def to_unit(self, value: float) -> float:
        """Position of ``value`` in the box, 0 at ``low`` and 1 at ``high`` (on ``scale``)."""
        if self.scale == "log":
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: Any) -> Any:
        """Inverse of :meth:`to_unit`; ``u`` may be a float or a tensor (elementwise)."""
        if self.scale == "log":
            return self.low * (self.high / self.low) ** u
        return self.low + u * (self.high - self.low)


class CategoricalParameter(_Strict):
    """A categorical choice, e.g. the interlayer material."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["categorical"]
    choices: list[str] = Field(min_length=2)

    @field_validator("choices")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("choices must be unique")
        return v


Parameter = Annotated[ContinuousParameter | CategoricalParameter, Field(discriminator="type")]


class Objective(_Strict):
    """What is optimised and how it is derived from raw data.

    Attributes:
        name: Name of the objective, e.g. ``interfacial_resistance``.
        unit: Unit of the objective, e.g. ``ohm*cm^2``.
        direction: ``minimize`` or ``maximize``.
        electrode_area_cm2: Electrode area used to turn ohm into area-specific ohm*cm^2.
        log_transform: Model the logarithm of the objective (positive objectives only).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    unit: str = Field(min_length=1)
    direction: Literal["minimize", "maximize"]
    electrode_area_cm2: float = Field(default=1.0, gt=0)
    log_transform: bool = True


class Fidelity(_Strict):
    """One way of evaluating a proposal, with its cost.

    Attributes:
        name: ``calculation``, ``screening`` or ``full`` (or another name).
        cost: Cost of one evaluation in budget units (the target fidelity usually costs 1).
        route: A registered route (:data:`lab.routes.ROUTES`): ``impedance_sweep``,
            ``impedance_single``, ``calculation``...
        options: The route's options (each with its unit; constants or ``$parameter``).
        device: Workcell device role the route measures with (default: the one device of a
            kind the route uses).
        ignores: Continuous parameters this fidelity does not see, e.g. a calculation of the
            ideal interface ignores the anneal (``[anneal_temperature_c, anneal_time_min]``).
            Its proposals hold them at the middle of their (safe) range, and the optimiser's
            model does not learn from its values how the objective depends on them. Not
            allowed on the target fidelity.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    cost: float = Field(gt=0)
    route: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    device: str | None = None
    ignores: list[str] = Field(default_factory=list)


class Step(_Strict):
    """One step of the process that makes a sample.

    Attributes:
        step: A registered step kind (:data:`lab.steps.STEPS`): ``dispense``, ``deposit``,
            ``anneal``, ``move``...
        device: The workcell device role it runs on (a device name or a device's ``role``).
        args: Argument name to a constant (in the argument's unit, or text with a unit such
            as ``"200 nm"``) or ``$parameter``.
        label: What the step is for, shown in logs (e.g. ``Li contact``).
    """

    step: str = Field(min_length=1)
    device: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    label: str = ""


class SafetyLimits(_Strict):
    """Hard limits: no set point outside them ever reaches an instrument.

    Attributes:
        max_pump_rate_ul_min: Highest syringe-pump rate in uL/min.
        max_dispense_volume_ul: Largest single dispense in uL.
        max_temperature_c: Highest hotplate set point in degC.
        min_frequency_hz: Lowest impedance-meter frequency in Hz.
        max_frequency_hz: Highest impedance-meter frequency in Hz.
        max_ac_voltage_v: Highest impedance-meter AC level in Vrms.

    Step kinds and routes may declare further limits (e.g. the ``deposit`` step's
    ``max_deposit_thickness_nm``, nm), each with its default: the campaign file may set any
    limit a registered step argument or route option names (:meth:`value`); other keys are
    refused as unknown.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    max_pump_rate_ul_min: float = Field(default=1000.0, gt=0)
    max_dispense_volume_ul: float = Field(default=200.0, gt=0)
    max_temperature_c: float = Field(default=300.0, gt=0)
    min_frequency_hz: float = Field(default=20.0, gt=0)
    max_frequency_hz: float = Field(default=2.0e6, gt=0)
    max_ac_voltage_v: float = Field(default=1.0, gt=0, le=20.0)

    def value(self, name: str, default: float | None = None) -> float | None:
        """The limit called ``name``: a field, a limit the file sets, else ``default``."""
        if name in type(self).model_fields:
            return float(getattr(self, name))
        extra = (self.model_extra or {}).get(name)
        return default if extra is None else float(extra)


class Campaign(_Strict):
    """A validated campaign file. See the module docstring for the meaning of names."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    interface: Interface
    parameters: list[Parameter] = Field(min_length=1)
    objective: Objective
    fidelities: list[Fidelity] = Field(min_length=1)
    target_fidelity: str | None = None
    budget: float = Field(gt=0, description="Total budget in cost units.")
    batch_size: int = Field(default=1, ge=1, le=64)
    initial_design: int = Field(default=4, ge=1, le=256)
    approval: Literal["auto", "batch"] = "auto"
    process: list[Step] = Field(default_factory=list)
    syringe_diameter_mm: float = Field(default=4.61, gt=0.1, le=80.0)
    safety: SafetyLimits = SafetyLimits()
    workcell: str = Field(default="simulated", min_length=1)
    max_consecutive_failures: int = Field(default=5, ge=1, le=1000)
    simulated_truth: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter names must be unique; repeated: {', '.join(dupes)}")
        fids = [f.name for f in self.fidelities]
        if len(set(fids)) != len(fids):
            raise ValueError("fidelity names must be unique")
        if self.target_fidelity is not None and self.target_fidelity not in fids:
            raise ValueError(
                f"target_fidelity '{self.target_fidelity}' is not one of the fidelities "
                f"({', '.join(fids)})"
            )
        kinds = {p.name: isinstance(p, ContinuousParameter) for p in self.parameters}
        for f in self.fidelities:
            for name in f.ignores:
                if name not in kinds:
                    raise ValueError(
                        f"fidelity '{f.name}' ignores '{name}', which is not a parameter "
                        f"({', '.join(kinds)})"
                    )
                if not kinds[name]:
                    raise ValueError(
                        f"fidelity '{f.name}' ignores '{name}': only continuous parameters can "
                        "be ignored (a categorical choice is part of what is evaluated)"
                    )
        if self.target.ignores:
            raise ValueError(
                f"the target fidelity '{self.target.name}' ignores {', '.join(self.target.ignores)}"
                ": the target must see every parameter; remove its `ignores`"
            )
        s = self.safety
        if s.min_frequency_hz >= s.max_frequency_hz:
            raise ValueError("safety.min_frequency_hz must be below safety.max_frequency_hz")
        self._check_safety_extras()
        self._check_process()
        return self

    def _check_safety_extras(self) -> None:
        """Extra safety keys must be limits a registered step argument or route option names,
        set to a positive number."""
        from lab.routes import ROUTES
        from lab.steps import STEPS

        declared = {
            name
            for registry in (STEPS, ROUTES)
            for entry in (registry.get(n) for n in registry)
            for a in (*getattr(entry, "args", ()), *getattr(entry, "options", ()))
            for name in (a.limit, a.floor)
            if name
        }
        for key, value in (self.safety.model_extra or {}).items():
            if key not in declared:
                raise SpecError(
                    f"safety.{key}: unknown key: remove it or check its spelling (limits: "
                    f"{', '.join(sorted(set(type(self.safety).model_fields) | declared))})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise SpecError(f"safety.{key}: must be a number above 0 (got {value!r})")

    def _check_process(self) -> None:
        """Bind every step and route, check bounds against the safety limits, and that every
        parameter is consumed (raises :class:`SpecError`, a ``ValueError``)."""
        made: set[str] = set()
        for where, kind, bindings in self.bound_steps():
            self._check_bounds(where, kind.args, bindings)
            made |= {b.param for b in bindings.values() if b.param}
        for f in self.fidelities:
            where, route, bindings = self.bound_route(f)
            self._check_bounds(where, route.options, bindings)
            constants = {n: b.constant for n, b in bindings.items() if b.param is None}
            if len(constants) == len(bindings):
                route.check_options(constants, where)
            # A bench route measures the sample the process made; a calculation evaluates
            # the proposal itself. Either way it must see every parameter it does not ignore.
            consumed = {b.param for b in bindings.values() if b.param} | set(f.ignores)
            consumed |= made if route.bench else set(self.parameter_names)
            unused = [n for n in self.parameter_names if n not in consumed]
            if unused:
                raise SpecError(
                    f"parameter(s) {', '.join(unused)}: consumed by no process step, route "
                    f"option or 'ignores' of fidelity '{f.name}' (route {f.route}): bind each "
                    f"to a step argument in process: (e.g. args: {{thickness: ${unused[0]}}}), "
                    f"list it in fidelities.{f.name}.ignores, or remove it from parameters"
                )

    def _check_bounds(self, where: str, args: Any, bindings: dict[str, Any]) -> None:
        for a in args:
            b = bindings[a.name]
            if not a.numeric:
                continue
            lo, hi = b.domain(self)
            low, high = a.bounds(self.safety)
            what = f"parameter '{b.param}'" if b.param else "the constant"
            unit = f" {a.unit}" if a.unit else ""
            fix = "lower its high bound or raise the limit" if b.param else "lower it"
            if high is not None and hi > high + 1e-9 * max(1.0, abs(high)):
                raise SpecError(
                    f"{where}.{a.name}: {what} reaches {hi:g}{unit}, above "
                    f"safety.{a.limit}={high:g}{unit}: {fix}"
                )
            if a.floor is not None and low is not None and lo < low - 1e-9 * max(1.0, abs(low)):
                raise SpecError(
                    f"{where}.{a.name}: {what} goes down to {lo:g}{unit}, below "
                    f"safety.{a.floor}={low:g}{unit}: raise it or lower the limit"
                )
            if a.above is not None and not lo > a.above:
                raise SpecError(
                    f"{where}.{a.name}: {what} goes down to {lo:g}{unit}; it must stay above "
                    f"{a.above:g}{unit}"
                )
            if a.at_least is not None and lo < a.at_least:
                raise SpecError(
                    f"{where}.{a.name}: {what} goes down to {lo:g}{unit}; it must be at least "
                    f"{a.at_least:g}{unit}"
                )

    def bound_steps(self) -> list[tuple[str, Any, dict[str, Any]]]:
        """The process as ``(where, step kind, argument bindings)``, in order.

        ``where`` names the step as the campaign file does, e.g. ``process[0] (deposit)``.

        Raises:
            SpecError: For an unknown step kind or a bad argument.
        """
        from lab.steps import STEPS, bind

        out = []
        for i, st in enumerate(self.process):
            where = f"process[{i}] ({st.step}{', ' + st.label if st.label else ''})"
            try:
                kind = STEPS.get(st.step)
            except SpecError as exc:
                raise SpecError(f"process[{i}].step: {exc}") from None
            out.append((where, kind, bind(kind.args, st.args, self, where)))
        return out

    def bound_route(self, fidelity: Fidelity) -> tuple[str, Any, dict[str, Any]]:
        """``(where, route, option bindings)`` of one fidelity (``where`` names its options).

        Raises:
            SpecError: For an unknown route or a bad option.
        """
        from lab.routes import ROUTES
        from lab.steps import bind

        where = f"fidelities.{fidelity.name}"
        try:
            route = ROUTES.get(fidelity.route)
        except SpecError as exc:
            raise SpecError(f"{where}.route: {exc}") from None
        where = f"{where}.options"
        return where, route, bind(route.options, fidelity.options, self, where)

    def bound_parameter(self, step: str, arg: str) -> str | None:
        """The parameter bound to argument ``arg`` of the first ``step`` of the process.

        Lets computation find, e.g., which parameter is the deposited material
        (``bound_parameter("deposit", "material")``) without reading parameter names.
        """
        for _, kind, bindings in self.bound_steps():
            if kind.name == step and arg in bindings and bindings[arg].param:
                return bindings[arg].param
        return None

    def safe_range(self, name: str) -> tuple[float | None, float | None]:
        """``(lowest, highest)`` value of a continuous parameter allowed by the safety limits
        of every step argument and route option bound to it, in the parameter's unit."""
        from lab.units import convert

        p = self.parameter(name)
        lo: float | None = None
        hi: float | None = None
        bound = [(k.args, b) for _, k, b in self.bound_steps()]
        bound += [(r.options, b) for r, b in (self.bound_route(f)[1:] for f in self.fidelities)]
        for args, bindings in bound:
            for a in args:
                if bindings[a.name].param != name or a.unit is None:
                    continue
                low, high = a.bounds(self.safety)
                if high is not None:
                    v = convert(high, a.unit, p.unit, name)  # type: ignore[union-attr]
                    hi = v if hi is None else min(hi, v)
                if low is not None:
                    v = convert(low, a.unit, p.unit, name)  # type: ignore[union-attr]
                    lo = v if lo is None else max(lo, v)
        return lo, hi

    def parameter(self, name: str) -> ContinuousParameter | CategoricalParameter:
        """The parameter called ``name``.

        Raises:
            SpecError: If there is none.
        """
        for p in self.parameters:
            if p.name == name:
                return p
        raise SpecError(f"unknown parameter '{name}'; the campaign has {self.parameter_names}")

    @property
    def parameter_names(self) -> list[str]:
        """Names of the parameters in file order."""
        return [p.name for p in self.parameters]

    @property
    def target(self) -> Fidelity:
        """The fidelity whose value is optimised (the named target, else the most costly)."""
        if self.target_fidelity is not None:
            return next(f for f in self.fidelities if f.name == self.target_fidelity)
        return max(self.fidelities, key=lambda f: f.cost)

    def fidelity(self, name: str) -> Fidelity:
        """Return the fidelity called ``name``.

        Raises:
            SpecError: If the campaign has no such fidelity.
        """
        for f in self.fidelities:
            if f.name == name:
                return f
        raise SpecError(f"unknown fidelity '{name}'; the campaign has {self.fidelity_names}")

    @property
    def fidelity_names(self) -> list[str]:
        """Names of the fidelities in file order."""
        return [f.name for f in self.fidelities]

    @property
    def continuous(self) -> list[ContinuousParameter]:
        """The continuous parameters in file order."""
        return [p for p in self.parameters if isinstance(p, ContinuousParameter)]

    @property
    def categorical(self) -> list[CategoricalParameter]:
        """The categorical parameters in file order."""
        return [p for p in self.parameters if isinstance(p, CategoricalParameter)]

    def check_params(self, params: dict[str, Any]) -> None:
        """Check one proposal against the design space and the safety limits.

        Args:
            params: Parameter name to value (units of the campaign file).

        Raises:
            SafetyError: If a value is missing, outside its bounds, or unsafe.
        """
        from lab.errors import SafetyError

        for p in self.parameters:
            if p.name not in params:
                raise SafetyError(f"proposal lacks parameter '{p.name}'")
            v = params[p.name]
            if isinstance(p, CategoricalParameter):
                if v not in p.choices:
                    raise SafetyError(f"parameter '{p.name}'={v!r} is not one of {p.choices}")
                continue
            v = float(v)
            if not (p.low <= v <= p.high) or v != v:
                raise SafetyError(
                    f"parameter '{p.name}'={v} {p.unit} is outside [{p.low}, {p.high}]"
                )
        unknown = set(params) - {p.name for p in self.parameters}
        if unknown:
            raise SafetyError(f"proposal has unknown parameters: {sorted(unknown)}")


_PARAMETER_TYPES: dict[str, str] = {
    "continuous": "with low, high and unit",
    "categorical": "with choices",
}
"""The ``type`` of a campaign parameter and the keys each type takes."""


def _tag_message(error: Any) -> str:
    """The fix for a missing or unknown ``type`` (the tag of a discriminated union)."""
    ctx = error.get("ctx", {})
    key = str(ctx.get("discriminator", "'type'")).strip("'")
    expected = ctx.get("expected_tags")
    tags = [t.strip().strip("'") for t in expected.split(",")] if expected else []
    if not tags or set(tags) == set(_PARAMETER_TYPES):
        allowed = " or ".join(f"{t} ({hint})" for t, hint in _PARAMETER_TYPES.items())
    else:
        allowed = " or ".join(tags)
    if error["type"] == "union_tag_not_found":
        return f"{key} is missing: add {key}: {allowed}"
    return f"{key} must be {allowed}, not {ctx.get('tag')!r}"


def format_validation_error(err: ValidationError, source: str) -> str:
    """Turn a pydantic error into short lines naming each field and the fix.

    Args:
        err: The validation error.
        source: File name (or other origin) shown in the header line.

    Returns:
        A message such as ``"campaigns/x.yaml: 1 problem\\n  - budget: ..."``.
    """
    lines = []
    for e in err.errors():
        loc = ".".join(
            f"[{p}]" if isinstance(p, int) else str(p)
            for p in e["loc"]
            if p not in ("continuous", "categorical")
        ).replace(".[", "[")
        loc = loc or "(top level)"
        kind = e["type"]
        if kind == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling"
        elif kind == "missing":
            msg = "required key is missing: add it"
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            item = e.get("input")
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                loc += f" ('{item['name']}')"
            msg = _tag_message(e)
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if (
                "input" in e
                and kind not in ("value_error", "assertion_error")
                and not isinstance(e["input"], dict | list)
            ):
                msg += f" (got {e['input']!r})"
        if (
            loc == "(top level)"
            and kind == "value_error"
            and msg.startswith(("process[", "fidelities.", "parameter(s) ", "safety."))
        ):
            lines.append(f"  - {msg}")  # the message names its own field
            continue
        lines.append(f"  - {loc}: {msg}")
    n = len(lines)
    return f"{source}: {n} problem{'s' if n != 1 else ''}\n" + "\n".join(lines)


def parse_campaign(data: Any, source: str = "<campaign>") -> Campaign:
    """Validate an already-parsed campaign mapping.

    Args:
        data: The mapping read from YAML.
        source: Origin shown in error messages.

    Raises:
        SpecError: If the data is not a valid campaign.
    """
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: a campaign file must be a YAML mapping of keys (name, parameters, ...),"
            f" not {type(data).__name__}"
        )
    try:
        return Campaign.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source)) from None


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Read a YAML file, turning every I/O or syntax problem into a :class:`SpecError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{p}: no such {what}; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{p}: cannot read the {what} ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{p}: not valid YAML{where}: {problem}") from None


def load_campaign(path: str | Path) -> Campaign:
    """Load and validate a campaign file.

    Args:
        path: Path of the YAML file.

    Returns:
        The validated campaign.

    Raises:
        SpecError: If the file is missing, not YAML, or not a valid campaign.
    """
    return parse_campaign(read_yaml(path, "campaign file"), str(path))
