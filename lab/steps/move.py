"""``move``: the gantry carries the sample to a named station of the deck."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from lab.errors import SpecError
from lab.steps._base import Arg, StepContext, StepKind


class Move(StepKind):
    """Move the sample to ``station`` (a station of the gantry's ``stations:`` map)."""

    name = "move"
    doc = "the gantry carries the sample to a station"
    instruments = ("grbl",)
    args = (Arg("station", None, "station name from the gantry's stations: map"),)
    moves_sample = True

    def check_device(self, entry: Any, domain: Mapping[str, Any], where: str) -> None:
        """Every station the step can move to is defined for the gantry."""
        stations = (entry.model_extra or {}).get("stations") or {}
        for s in domain["station"]:
            if s not in stations:
                raise SpecError(
                    f"{where}: the gantry has no station '{s}' (stations: "
                    f"{', '.join(sorted(stations)) or 'none'}); add it under its stations: map"
                )

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext
    ) -> Generator[Any, Any, Any]:
        """Move and wait until the gantry is idle at the station."""
        from bluesky import plan_stubs as bps

        yield from bps.mv(device, device.station(str(values["station"])))
