"""``deposit``: the deposition controller coats the sample with a material to a thickness."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from lab.errors import SpecError
from lab.steps._base import Arg, StepContext, StepKind

MAX_THICKNESS_NM = 1000.0
"""Default of ``safety.max_deposit_thickness_nm``, the thickest single layer, nm."""


def films_of(entry: Any) -> dict[int, str]:
    """Film number to the material loaded in it, from a deposition device's ``films:`` map."""
    raw = (entry.model_extra or {}).get("films") or {}
    return {int(k): str(v) for k, v in raw.items()}


class Deposit(StepKind):
    """Select the film loaded with ``material``, deposit ``thickness``, read back what landed.

    The workcell file says which material each film (source) of the controller holds; a
    material no film holds is refused at launch, naming it.
    """

    name = "deposit"
    doc = "the deposition controller coats the sample with a material to a thickness"
    instruments = ("sqc310",)
    args = (
        Arg("material", None, "material to deposit (a film loaded on the controller)"),
        Arg(
            "thickness",
            "nm",
            "final thickness",
            above=0.0,
            limit="max_deposit_thickness_nm",
            limit_default=MAX_THICKNESS_NM,
            device_limit="max_thickness_nm",
        ),
    )

    def check_device(self, entry: Any, domain: Mapping[str, Any], where: str) -> None:
        """Every material the step can ask for is loaded in one of the controller's films."""
        loaded = set(films_of(entry).values())
        missing = [m for m in domain["material"] if m not in loaded]
        if missing:
            raise SpecError(
                f"{where}: no film of the deposition controller holds {', '.join(missing)} "
                f"(loaded: {', '.join(sorted(loaded)) or 'none'}); load it and add it to the "
                "device's films: map in the workcell file, or remove it from the campaign"
            )

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext
    ) -> Generator[Any, Any, Any]:
        """Deposit (finishes when the layer is done) and read the controller's read-back."""
        from bluesky import plan_stubs as bps

        yield from bps.mv(device, (str(values["material"]), float(values["thickness"])))
        yield from bps.trigger_and_read([device], name=f"step{ctx.index}_deposit")
