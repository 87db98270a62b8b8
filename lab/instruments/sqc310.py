"""INFICON SQC-310 deposition controllers: evaporate a film's material to a thickness.

The workcell entry says which material each film (source) holds::

    deposition: {kind: sqc310, url: /dev/ttyUSB2, station: deposition,
                 films: {1: LiF, 2: Li3N}, limits: {max_thickness_nm: 200}}

Before a run deposits anything, every configured film's name is read back from the
controller and compared with the workcell file: a mismatch (the wrong source loaded, or a
film renamed on the front panel) is refused before any deposit. ``set((material, nm))``
selects the film holding the material, sets the layer's final thickness, starts, polls the
run state and reads back the crystal thickness; a start is never blindly retried.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus

from drivers import DepositionLimits, Sqc310
from lab.errors import SafetyError, WorkcellError
from lab.instruments._base import DeviceContext, InstrumentKind
from lab.steps.deposit import MAX_THICKNESS_NM, films_of

if TYPE_CHECKING:
    from lab.spec import SafetyLimits
    from lab.workcell import DeviceEntry

LAYER = 1
"""Layer of the controller's active process that each deposit programs."""
SLOWEST_RATE_A_S = 0.1
"""Slowest deposition rate a layer's time-out allows for, Å/s."""
CONDITIONING_ALLOWANCE_S = 600.0
"""Source conditioning and shutter delay a layer's time-out allows for, s."""


class DepositionController(Device):
    """An SQC-310: ``set((material, thickness_nm))`` deposits one layer.

    Readings: ``material`` (the film's name as the controller reports it), ``film`` (its
    number) and ``thickness`` (crystal read-back at the end of the layer, nm).

    Args:
        driver: The connected driver.
        films: Film number to the material the workcell file says it holds.
        time_scale: Workcell seconds per real second.
    """

    material = Cpt(Signal, value="", kind="hinted")
    film = Cpt(Signal, value=0, kind="normal")
    thickness = Cpt(Signal, value=0.0, kind="hinted")

    def __init__(
        self,
        driver: Sqc310,
        *,
        name: str,
        films: dict[int, str],
        time_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self._driver = driver
        self.films = dict(films)
        self.time_scale = time_scale
        self._stop = threading.Event()
        super().__init__(name=name, **kwargs)

    def verify_films(self) -> dict[int, str]:
        """Read every configured film's name back and compare it with the workcell file.

        Returns:
            Film number to the name read back.

        Raises:
            WorkcellError: Naming the film, the name expected and the name read.
        """
        found = {}
        for number, expected in sorted(self.films.items()):
            got = self._driver.film_name(number).strip()
            found[number] = got
            if got != expected:
                raise WorkcellError(
                    f"{self.name}: film {number} is named '{got}' on the controller but the "
                    f"workcell file says it holds {expected}; check the source and fix the "
                    "films: map (nothing was deposited)"
                )
        return found

    def film_for(self, material: str) -> int:
        """The film holding ``material``.

        Raises:
            SafetyError: If no film holds it (nothing is sent).
        """
        for number, loaded in sorted(self.films.items()):
            if loaded == material:
                return number
        raise SafetyError(
            f"{self.name}: no film holds {material} (loaded: "
            f"{', '.join(sorted(self.films.values()))})"
        )

    def stage(self) -> list[object]:
        """Check every film's name before any deposit of the run."""
        self.verify_films()
        return super().stage()

    def set(self, request: tuple[str, float]) -> DeviceStatus:  # type: ignore[override]
        """Deposit ``request = (material, thickness_nm)``; finishes when the layer is done."""
        material, thickness_nm = str(request[0]), float(request[1])
        status = DeviceStatus(self)
        film = self.film_for(material)
        self._stop.clear()
        timeout = (CONDITIONING_ALLOWANCE_S + thickness_nm * 10.0 / SLOWEST_RATE_A_S) / max(
            self.time_scale, 1e-9
        )

        def work() -> None:
            try:
                got = self._driver.deposit(
                    LAYER,
                    film,
                    thickness_nm,
                    poll_s=0.02,
                    timeout_s=timeout + 5.0,
                    should_stop=self._stop.is_set,
                )
                self.material.put(self._driver.film_name(film).strip())
                self.film.put(film)
                self.thickness.put(float(got))
                if abs(got - thickness_nm) > max(0.05 * thickness_nm, 0.2):
                    raise WorkcellError(
                        f"{self.name}: the crystal read {got:.2f} nm of the {thickness_nm:.2f} nm "
                        f"asked for {material}; the layer did not reach its thickness"
                    )
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported through the status
                status.set_exception(exc)

        threading.Thread(target=work, name=f"{self.name}-deposit", daemon=True).start()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Stop a running layer (the shutter closes) when a plan is stopped or aborted."""
        self._stop.set()


class Sqc310Kind(InstrumentKind):
    """SQC-310 thin-film deposition controller (serial, binary packets with a CRC)."""

    name = "sqc310"
    doc = "deposition controller"
    limits_type = DepositionLimits
    simulator = "simulators.sqc310:Sqc310Sim"

    def simulated_devices(self) -> dict[str, dict[str, Any]]:
        """The simulated bench's deposition controller: one film per library material, and
        Li (film 26) for contacts, at the ``deposition`` station."""
        from lab.materials import modifiers

        films = {i + 1: m for i, m in enumerate([*modifiers(), "Li"])}
        entry = {"kind": self.name, "station": "deposition", "films": films}
        entry["rates_a_s"] = {"Li": 10.0}  # a thick contact goes faster than an interlayer
        return {"deposition": entry}

    def simulated_stations(self) -> dict[str, list[float]]:
        """The evaporator's port on the simulated deck, between dispense and hotplate."""
        return {"deposition": [-85.0, -40.0, 0.0]}

    def open(self, entry: DeviceEntry, limits: Any | None, **kw: Any) -> Any:
        """An :class:`drivers.Sqc310`."""
        return Sqc310(entry.url, limits=limits, **kw)

    def limits_from_safety(self, safety: SafetyLimits) -> Any | None:
        """Thickness cap."""
        cap = safety.value("max_deposit_thickness_nm", MAX_THICKNESS_NM)
        return DepositionLimits(max_thickness_nm=cap)

    def device(self, driver: Any, name: str, entry: DeviceEntry, ctx: DeviceContext) -> Any:
        """A :class:`DepositionController` with the entry's ``films:`` map."""
        return DepositionController(
            driver, name=name, films=films_of(entry), time_scale=ctx.time_scale
        )

    def check(self, driver: Any, entry: DeviceEntry) -> str:
        """Identify, read the run state, check every configured film's name (nothing runs)."""
        ident = driver.identify()
        state = driver.run_state()
        films = films_of(entry)
        device = DepositionController(driver, name="check", films=films)
        device.verify_films()
        return (
            f"{ident}; {state.description}; {len(films)} film(s) match the workcell file "
            f"({', '.join(f'{n}: {m}' for n, m in sorted(films.items())[:6])}"
            f"{', ...' if len(films) > 6 else ''})"
        )
