"""Common plumbing of the drivers: owning a transport, closing it, context management."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from drivers.errors import SafetyLimitError
from drivers.transport import PortLike, Transport

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriverRetry:
    """An idempotent exchange that failed and is being sent again.

    Attributes:
        device: Name of the driver (device) that retries.
        what: The exchange, e.g. the command ``"DIA"`` or ``"status"``.
        error: The error of the failed attempt.
        attempt: Which repeat this is, counting from 1.
    """

    device: str
    what: str
    error: BaseException
    attempt: int


RetryListener = Callable[[DriverRetry], None]


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
        self._retry_listeners: list[RetryListener] = []
        self._listeners_lock = threading.Lock()
        self.transport = Transport(url, port=port, name=name, **settings)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ retries

    def add_retry_listener(self, listener: RetryListener) -> None:
        """Call ``listener`` with a :class:`DriverRetry` whenever an exchange is repeated.

        Retries are also logged as warnings; a listener sees them whatever the logging
        configuration (an application that keeps its console quiet can still record every
        one). Listeners run in the thread that talks to the instrument and must be quick;
        an error they raise is logged and ignored.
        """
        with self._listeners_lock:
            self._retry_listeners.append(listener)

    def remove_retry_listener(self, listener: RetryListener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        with self._listeners_lock:
            if listener in self._retry_listeners:
                self._retry_listeners.remove(listener)

    def _retried(self, what: str, error: BaseException, attempt: int) -> None:
        """``on_retry`` hook for :func:`~drivers.transport.retry_idempotent`."""
        with self._listeners_lock:
            listeners = list(self._retry_listeners)
        notice = DriverRetry(self.name, what, error, attempt)
        for listener in listeners:
            try:
                listener(notice)
            except Exception:  # noqa: BLE001 - a listener must not break the exchange
                _log.exception("%s: retry listener failed", self.name)

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
