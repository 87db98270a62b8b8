"""Host-side instrument drivers: pyserial transport plus one module per instrument protocol.

Each driver opens its port with :func:`serial.serial_for_url`, so a device path, a pty path or
``socket://host:port`` work unchanged, and accepts an already-open port-like object (``port=``)
for tests. This package imports only the standard library and pyserial.

Errors share one root, :class:`DriverError`; limits are checked before any byte is sent
(:class:`SafetyLimitError`).
"""

from drivers._base import DriverRetry
from drivers.errors import (
    ConnectionLost,
    DeviceReportedError,
    DriverError,
    DriverTimeout,
    GarbledReply,
    SafetyLimitError,
)
from drivers.grbl import Grbl, GrblAlarm, GrblError, GrblStatus, TravelLimits
from drivers.ika_namur import IkaHotplate, IkaLimits
from drivers.mt_sics import MtSicsBalance
from drivers.ne1000 import NE1000, PumpAlarm, PumpCommandError, PumpLimits
from drivers.scpi_lcr import LcrLimits, LcrMeasurementError, LcrReading, ScpiLcr
from drivers.sqc310 import DepositionFault, DepositionLimits, RunState, Sqc310, Sqc310Error
from drivers.transport import Transport, retry_idempotent

__all__ = [
    "NE1000",
    "ConnectionLost",
    "DepositionFault",
    "DepositionLimits",
    "DeviceReportedError",
    "DriverError",
    "DriverRetry",
    "DriverTimeout",
    "GarbledReply",
    "Grbl",
    "GrblAlarm",
    "GrblError",
    "GrblStatus",
    "IkaHotplate",
    "IkaLimits",
    "LcrLimits",
    "LcrMeasurementError",
    "LcrReading",
    "MtSicsBalance",
    "PumpAlarm",
    "PumpCommandError",
    "PumpLimits",
    "RunState",
    "SafetyLimitError",
    "ScpiLcr",
    "Sqc310",
    "Sqc310Error",
    "Transport",
    "TravelLimits",
    "retry_idempotent",
]
