"""GRBL gantries: carry the sample between the deck's stations (``move`` steps)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus

from drivers import Grbl, TravelLimits
from lab.errors import WorkcellError
from lab.instruments._base import DeviceContext, InstrumentKind

if TYPE_CHECKING:
    from lab.workcell import DeviceEntry

_log = logging.getLogger(__name__)


class Gantry(Device):
    """A GRBL gantry. ``set((x, y, z))`` moves (mm, machine coordinates) and finishes when idle.

    Args:
        driver: The connected driver.
        stations: Station name to ``(x, y, z)`` in mm (``dispense``, ``hotplate``, ``lcr``...).
        feed_mm_min: Feed rate of moves, mm/min.
        time_scale: Workcell seconds per real second.
    """

    x = Cpt(Signal, value=0.0, kind="hinted")
    y = Cpt(Signal, value=0.0, kind="hinted")
    z = Cpt(Signal, value=0.0, kind="hinted")

    def __init__(
        self,
        driver: Any,
        *,
        name: str,
        stations: dict[str, tuple[float, float, float]] | None = None,
        feed_mm_min: float = 3000.0,
        time_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self._driver = driver
        self._stopped = threading.Event()
        self._moving = threading.Event()
        self.stations = dict(stations or {})
        self.feed_mm_min = feed_mm_min
        self.time_scale = time_scale
        super().__init__(name=name, **kwargs)

    def station(self, name: str) -> tuple[float, float, float]:
        """Coordinates of a named station.

        Raises:
            WorkcellError: If the workcell defines no such station.
        """
        try:
            return self.stations[name]
        except KeyError:
            raise WorkcellError(
                f"{self.name}: no station '{name}' (stations: {sorted(self.stations)}); add it "
                f"under the gantry's 'stations:' in the workcell file"
            ) from None

    def _update(self, pos: Any) -> None:
        if pos is not None:
            for sig, v in zip((self.x, self.y, self.z), pos, strict=True):
                sig.put(float(v))

    def set(self, target: tuple[float, float, float]) -> DeviceStatus:  # type: ignore[override]
        """Move to ``(x, y, z)`` mm; the status finishes when GRBL reports Idle there.

        A move cut short by :meth:`stop` fails its status (the gantry is not at the target).
        """
        status = DeviceStatus(self)
        x, y, z = (float(v) for v in target)
        self._stopped.clear()
        self._moving.set()

        def work() -> None:
            try:
                self._driver.move_to(x, y, z, feed=self.feed_mm_min)
                travel = 60.0 * 400.0 / self.feed_mm_min / self.time_scale + 10.0
                st = self._driver.wait_idle(timeout=travel)
                self._update(st.mpos)
                if self._stopped.is_set():
                    raise WorkcellError(
                        f"{self.name}: the move to {(x, y, z)} was stopped at {st.mpos}"
                    )
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported through the status
                status.set_exception(exc)
            finally:
                self._moving.clear()

        threading.Thread(target=work, name=f"{self.name}-move", daemon=True).start()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Abandon the current move when a plan is stopped or aborted.

        Feed hold, then (once the axes have stopped) a soft reset, as the GRBL sheet says to
        abandon a move: the position is kept and the controller is left ``Idle``, so the next
        move on the same connection runs (a feed hold alone would leave it in ``Hold`` with
        the old move queued). The RunEngine calls this at the end of every run, also after
        a successful one: without a move in progress nothing is sent. Errors are logged, not
        raised: the RunEngine is stopping.
        """
        if not self._moving.is_set():
            return
        self._stopped.set()
        try:
            st = self._driver.cancel_motion()
            self._update(st.mpos)
        except Exception as exc:  # noqa: BLE001 - the RunEngine is already stopping
            _log.warning("%s: stopping the gantry: %s", self.name, exc)


class GrblKind(InstrumentKind):
    """GRBL 1.1 gantry (serial, G-code)."""

    name = "grbl"
    doc = "gantry"
    limits_type = TravelLimits
    simulator = "simulators.grbl:GrblSim"

    def open(self, entry: DeviceEntry, limits: Any | None, **kw: Any) -> Any:
        """A :class:`drivers.Grbl`."""
        return Grbl(entry.url, limits=limits, **kw)

    def device(self, driver: Any, name: str, entry: DeviceEntry, ctx: DeviceContext) -> Any:
        """A :class:`Gantry` with the entry's ``stations:`` map."""
        stations = (entry.model_extra or {}).get("stations") or {}
        return Gantry(
            driver,
            name=name,
            stations={k: tuple(map(float, v)) for k, v in stations.items()},
            time_scale=ctx.time_scale,
        )

    def check(self, driver: Any, entry: DeviceEntry) -> str:
        """Status, unlock an alarm, jog X +1/-1 mm."""
        return _check_gantry(driver)


def _check_gantry(d: Grbl) -> str:
    st = d.status()
    if st.state == "Alarm":
        d.unlock()
        st = d.status()
    before = st.mpos
    d.move_by(1.0, 0.0, 0.0, feed=300.0)
    d.wait_idle(timeout=10.0)
    d.move_by(-1.0, 0.0, 0.0, feed=300.0)
    after = d.wait_idle(timeout=10.0)
    return f"state {st.state}, moved X +1/-1 mm from {before} back to {after.mpos}"
