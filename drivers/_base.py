"""Common plumbing of the drivers: owning a transport, closing it, context management."""

from __future__ import annotations

import math
from types import TracebackType
from typing import Self

from drivers.errors import SafetyLimitError
from drivers.transport import PortLike, Transport


class Instrument:
    """Base of every driver: owns one :class:`~drivers.transport.Transport`.

    Args:
        url: Port URL for :func:`serial.serial_for_url`, or None when ``port`` is given.
        port: Already-open port-like object (tests), or None.
        name: Device name used in errors and logs.
        **settings: Serial settings and timeout passed to :class:`~drivers.transport.Transport`.

    Attributes:
        name: Device name.
        transport: The transport; its ``lock`` guards multi-message sequences.
    """

    def __init__(
        self, url: str | None, *, port: PortLike | None, name: str, **settings: object
    ) -> None:
        self.name = name
        self.transport = Transport(url, port=port, name=name, **settings)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the port. Safe to call twice."""
        self.transport.close()

    def reconnect(self) -> None:
        """Close the port and open it again with the same URL and settings.

        The way back from :class:`~drivers.errors.ConnectionLost` (a dropped socket, a serial
        adapter that was unplugged and plugged in again): the driver object, its limits and
        its name stay the same. Nothing is sent; state the instrument lost (set points, an
        armed trigger) must be set again by the caller.

        Raises:
            ConnectionLost: The port still cannot be opened.
            ValueError: The driver was built around a port object (``port=``).
        """
        self.transport.reopen()
        self._after_reconnect()

    def _after_reconnect(self) -> None:
        """Forget per-connection state after :meth:`reconnect` (drivers override it)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def _check_range(self, what: str, value: float, low: float, high: float, unit: str) -> float:
        """Return ``value`` as float, or raise SafetyLimitError if outside ``[low, high]``."""
        value = float(value)
        if not math.isfinite(value) or not low <= value <= high:
            raise SafetyLimitError(
                f"{what} {value:g} {unit} is outside the allowed range {low:g}–{high:g} {unit}; "
                "nothing was sent (change the value or the driver's limits)",
                device=self.name,
            )
        return value
