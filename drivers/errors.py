"""Exceptions raised by the instrument drivers.

One root, :class:`DriverError`, with builtin mix-ins so that callers may catch either the driver
error or the matching builtin (``TimeoutError``, ``ValueError``, ``ConnectionError``)::

    DriverError(Exception)
    ├── DriverTimeout(DriverError, TimeoutError)       no (complete) reply in time
    ├── GarbledReply(DriverError, ValueError)          garbled, unexpected or truncated reply
    ├── DeviceReportedError(DriverError)               the device answered with an error code
    ├── SafetyLimitError(DriverError, ValueError)      refused before any byte was sent
    └── ConnectionLost(DriverError, ConnectionError)   port closed, unplugged or socket dropped

Every error carries ``device`` (the driver's name, e.g. ``"ne1000"``), and its message says what
went wrong and what to do about it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConnectionLost",
    "DeviceReportedError",
    "DriverError",
    "DriverTimeout",
    "GarbledReply",
    "SafetyLimitError",
]


class DriverError(Exception):
    """Root of all driver errors.

    Args:
        message: What went wrong and what to do about it.
        device: Name of the device (driver instance) that raised it, if known.

    Attributes:
        device: Name of the device, or None.
        message: The message without the device prefix.
    """

    def __init__(self, message: str = "", *, device: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.device = device

    def __str__(self) -> str:
        if self.device:
            return f"{self.device}: {self.message}"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes are restored from the instance dict, so errors survive pickling
        # (process pools, Prefect results).
        return (self.__class__, (self.message,), self.__dict__.copy())


class DriverTimeout(DriverError, TimeoutError):
    """No reply, or no complete reply, arrived within the timeout.

    Attributes:
        partial: Bytes received before the timeout (empty if nothing arrived).
    """

    def __init__(
        self, message: str = "", *, device: str | None = None, partial: bytes = b""
    ) -> None:
        super().__init__(message, device=device)
        self.partial = partial


class GarbledReply(DriverError, ValueError):
    """A reply arrived but was garbled, unexpected or truncated.

    Attributes:
        reply: The raw bytes received.
    """

    def __init__(self, message: str = "", *, device: str | None = None, reply: bytes = b"") -> None:
        super().__init__(message, device=device)
        self.reply = reply


class DeviceReportedError(DriverError):
    """The device understood the exchange and reported an error.

    Attributes:
        code: The device's error code as sent (e.g. ``"OOR"``, ``"-222"``, ``"ES"``, ``"9"``).
    """

    def __init__(self, message: str = "", *, device: str | None = None, code: str = "") -> None:
        super().__init__(message, device=device)
        self.code = code


class SafetyLimitError(DriverError, ValueError):
    """A command was refused by the driver's limits before any byte was sent."""


class ConnectionLost(DriverError, ConnectionError):
    """The port or socket is closed, unplugged or failed; reconnect before retrying."""
