"""What a measurement route is: how one fidelity turns a made sample into the objective.

Each fidelity of a campaign names a route (``route: impedance_sweep``) with ``options:``
validated by that route's own arguments (:class:`~lab.steps.Arg`, with units and safety
limits, bound like step arguments to constants or ``$parameters``). A route declares the
instrument kinds it measures with, builds its Bluesky plan (on demand, importing Bluesky
inside :meth:`RouteKind.plan`) and analyses the run's raw readings into the objective
(:meth:`RouteKind.analyse`, pure computation).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

from lab.steps._base import Arg, StepContext

if TYPE_CHECKING:
    from lab.spec import Objective

__all__ = ["RouteKind"]


class RouteKind:
    """A registered measurement route. Subclasses set the attributes and methods.

    Attributes:
        name: Name used in the campaign file (``route: impedance_sweep``).
        doc: One line on what it does.
        bench: Whether it measures a sample on the bench (``False``: a calculation).
        instruments: Instrument kinds it measures with (bench routes).
        options: Its options.
        plan_name: ``plan_name`` of its measurement run (how a resume finds it).
    """

    name: str = ""
    doc: str = ""
    bench: bool = True
    instruments: tuple[str, ...] = ()
    options: tuple[Arg, ...] = ()
    plan_name: str = ""

    def check_options(self, values: Mapping[str, Any], where: str) -> None:
        """Consistency between options (e.g. a sweep's bounds in order).

        Raises:
            SpecError: Naming the options and the fix.
        """

    def check_values(self, values: Mapping[str, Any], ctx: StepContext, where: str) -> None:
        """Refuse option values outside physics or the safety limits (before any message)."""
        for a in self.options:
            a.check(values[a.name], ctx.safety, where)

    def configure(self, device: Any, values: Mapping[str, Any]) -> None:
        """Apply option values that are device settings (e.g. the AC level) before staging."""

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext, md: dict[str, Any]
    ) -> Generator[Any, Any, Any]:
        """The measurement run (a whole Bluesky run, with ``plan_name`` in its metadata)."""
        raise NotImplementedError

    def analyse(
        self, readings: list[dict[str, Any]], values: Mapping[str, Any], objective: Objective
    ) -> tuple[float, dict[str, Any], str]:
        """Raw readings of the measurement run to ``(objective value, raw data, method)``.

        Raises:
            AnalysisError: If the readings are missing or cannot be analysed.
        """
        raise NotImplementedError
