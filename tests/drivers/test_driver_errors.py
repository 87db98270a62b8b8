"""The error hierarchy: builtin mix-ins, attributes, messages, pickling."""

from __future__ import annotations

import pickle

import pytest

from drivers.errors import (
    ConnectionLost,
    DeviceReportedError,
    DriverError,
    DriverTimeout,
    GarbledReply,
    SafetyLimitError,
)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (DriverTimeout, TimeoutError),
        (GarbledReply, ValueError),
        (DeviceReportedError, Exception),
        (SafetyLimitError, ValueError),
        (ConnectionLost, ConnectionError),
    ],
)
def test_hierarchy(cls: type[DriverError], builtin: type[BaseException]) -> None:
    err = cls("do X", device="pump1")
    assert isinstance(err, DriverError)
    assert isinstance(err, builtin)
    assert err.device == "pump1"
    assert str(err) == "pump1: do X"
    with pytest.raises(builtin):
        raise err


def test_message_without_device() -> None:
    assert str(DriverError("plain")) == "plain"
    assert DriverError("plain").device is None


def test_extra_attributes() -> None:
    assert DeviceReportedError("bad", device="lcr", code="-222").code == "-222"
    assert DriverTimeout("t", partial=b"\x02").partial == b"\x02"
    assert GarbledReply("g", reply=b"xx").reply == b"xx"


@pytest.mark.parametrize(
    "err",
    [
        DriverTimeout("t", device="d", partial=b"ab"),
        GarbledReply("g", device="d", reply=b"zz"),
        DeviceReportedError("e", device="d", code="OOR"),
        SafetyLimitError("s", device="d"),
        ConnectionLost("c", device="d"),
    ],
)
def test_pickle_round_trip(err: DriverError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.__dict__ == err.__dict__
