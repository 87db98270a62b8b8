"""A scripted fake port for byte-exact driver tests.

The script is a list of ``(expected written bytes, answer)`` pairs. Writes are accumulated and
matched against the expected bytes of the next pair in order; when a pair's expected bytes have all
been written, its answer becomes readable. A pair with empty expected bytes answers at once
(unsolicited output such as a power-up banner). An answer may also be an exception instance, which
the next read raises (a dropped connection).

Any write that does not match raises :class:`ProtocolMismatch` (an ``AssertionError``) inside the
driver call, and :meth:`ScriptedPort.assert_done` fails on leftover pairs or unmatched bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

Answer = bytes | BaseException
Pair = tuple[bytes, Answer]


class ProtocolMismatch(AssertionError):
    """The driver wrote something other than the script expected."""


class ScriptedPort:
    """Fake pyserial port driven by a script of (expected write, answer) pairs.

    Args:
        pairs: The script.
        timeout: Read timeout, s: an empty read sleeps this long, like a real port.
    """

    def __init__(self, pairs: Sequence[Pair], *, timeout: float = 0.002) -> None:
        self.timeout: float | None = timeout
        self._pairs: list[Pair] = list(pairs)
        self._pending = b""
        self._rx = bytearray()
        self._raise: BaseException | None = None
        self.written = b""
        self.closed = False
        self.resets = 0
        self._answer_unsolicited()

    # -- script handling -------------------------------------------------------------------

    def _queue(self, answer: Answer) -> None:
        if isinstance(answer, BaseException):
            self._raise = answer
        else:
            self._rx += answer

    def _answer_unsolicited(self) -> None:
        while self._pairs and self._pairs[0][0] == b"":
            self._queue(self._pairs.pop(0)[1])

    def write(self, data: bytes) -> int:
        if self.closed:
            raise OSError("port closed")
        data = bytes(data)
        self.written += data
        self._pending += data
        while self._pending:
            if not self._pairs:
                raise ProtocolMismatch(f"unexpected write {self._pending!r}: script exhausted")
            expected, answer = self._pairs[0]
            if self._pending.startswith(expected):
                self._pairs.pop(0)
                self._pending = self._pending[len(expected) :]
                self._queue(answer)
                self._answer_unsolicited()
            elif expected.startswith(self._pending):
                break  # a partial write; wait for the rest
            else:
                raise ProtocolMismatch(f"wrote {self._pending!r}, expected {expected!r}")
        return len(data)

    def assert_done(self) -> None:
        """Fail if pairs are left over or written bytes did not complete a pair."""
        assert not self._pending, f"unmatched bytes written: {self._pending!r}"
        assert not self._pairs, f"script not finished; left over: {self._pairs!r}"

    # -- pyserial-like reading -------------------------------------------------------------

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if self.closed:
            raise OSError("port closed")
        if not self._rx:
            if self._raise is not None:
                exc, self._raise = self._raise, None
                raise exc
            time.sleep(self.timeout or 0)
            return b""
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        out = bytearray()
        while not out.endswith(expected) and (size is None or len(out) < size):
            chunk = self.read(1)
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def reset_input_buffer(self) -> None:
        self.resets += 1
        self._rx.clear()

    def close(self) -> None:
        self.closed = True


@contextmanager
def expected_protocol(pairs: Sequence[Pair], *, timeout: float = 0.002) -> Iterator[ScriptedPort]:
    """Yield a :class:`ScriptedPort` and check at exit that the whole script was played."""
    port = ScriptedPort(pairs, timeout=timeout)
    yield port
    port.assert_done()
