"""Mettler Toledo MT-SICS balance simulator (levels 0/1), from ``mt-sics.md``.

Framing: upper-case ASCII commands, parameters separated by spaces, lines ended by CR LF (a bare
CR or LF also ends a line); every reply line ends with CR LF. Weight replies are
``<ID> <status> <value right-justified in 10> <unit>``, e.g. ``S S     1.5123 g`` (4 decimals:
readability 0.1 mg).

Implemented commands:
    ``S`` (stable weight), ``SI`` (immediate), ``Z``, ``ZI``, ``T``, ``TI``, ``TA`` (query or
    preset ``TA <value> g``), ``TAC``, ``I0`` (multi-line ``I0 B``…``I0 A``), ``I1``, ``I2``,
    ``I3``, ``I4``, ``I10``, ``@`` (reset without zeroing; tare cleared; answers
    ``I4 A "<SNR>"``).

Refused, as the sheet says the balance does:
    unknown or lower-case commands → ``ES``; a received byte with the 8th bit set (what a
    parity/framing error looks like on a pty) → ``ET``; unexpected parameters → ``ES``; a bad
    ``TA`` preset → ``TA L``; overload → ``<ID> +``, underload → ``<ID> -``; zeroing outside ±2 %
    of capacity → ``Z +``/``Z -``. ``SIR``, ``SR``, ``ZC``, ``TC``… are not in ``I0`` and answer
    ``ES`` (as the WXS205SDU does for ``ZC``/``TC``).

Stability and timing (simulated time):
    The reading is stable once the mass on the pan has not changed for ``settle_time_s``
    (3 s). ``S``, ``Z`` and ``T`` wait for stability up to ``stability_timeout_s`` (10 s) and
    then answer ``… I``; the wait blocks the port as on the real balance (never the world).
    Unstable readings carry a decaying wobble; stable ones 0.03 mg of noise. A ``busy`` fault
    answers ``<ID> I``; a ``drift`` fault offsets the gross weight by 1 g per unit of drift
    (2 mg per event by default).

Options: ``announce_on_connect`` sends ``I4 A "<SNR>"`` when the host opens the port, which a
third-party comment reports for some balances at power-up (off by default).
"""

from __future__ import annotations

from simulators._base import DeviceSim
from simulators.faults import Disconnect, FaultConfig, FaultInjector
from simulators.world import SimulatedWorld

COMMANDS_LEVELS = {
    "@": 0,
    "I0": 0,
    "I1": 0,
    "I2": 0,
    "I3": 0,
    "I4": 0,
    "S": 0,
    "SI": 0,
    "Z": 0,
    "T": 1,
    "TA": 1,
    "TAC": 1,
    "TI": 1,
    "ZI": 1,
    "I10": 2,
}
"""Implemented commands and their MT-SICS level, in ``I0`` order."""

ZERO_RANGE = 0.02
"""Zeroing range, fraction of capacity either side of the power-on zero."""


class MtSicsSim(DeviceSim):
    """Simulated MT-SICS analytical balance (XS204-like: 220 g x 0.1 mg).

    Args:
        world: Shared simulated world (the pan holds its current sample).
        faults: Fault settings or injector.
        seed: Seed of the reading noise.
        settle_time_s: Time for a reading to become stable after a load change, simulated s.
        stability_timeout_s: Longest wait of ``S``/``Z``/``T`` for stability, simulated s.
        capacity_g: Weighing capacity, g.
        decimals: Decimals of the weight value (4 = 0.1 mg).
        balance_type: Type text of ``I2`` (model and capacity).
        serial_number: ``I4`` serial number.
        announce_on_connect: Send ``I4 A "<SNR>"`` when the host opens the port.
        station: Deck station of the pan (None: it weighs the sample wherever it is; elsewhere
            the pan is empty).
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        faults: FaultConfig | FaultInjector | None = None,
        seed: int | None = None,
        settle_time_s: float = 3.0,
        stability_timeout_s: float = 10.0,
        capacity_g: float = 220.0,
        decimals: int = 4,
        balance_type: str = "XS204 Excellence 220.0090 g",
        serial_number: str = "1126493049",
        announce_on_connect: bool = False,
        station: str | None = None,
    ) -> None:
        super().__init__(
            world, faults=faults, seed=seed, seed_parts=(serial_number,), station=station
        )
        self.settle_time_s = settle_time_s
        self.stability_timeout_s = stability_timeout_s
        self.capacity_g = capacity_g
        self.decimals = decimals
        self.balance_type = balance_type
        self.serial_number = serial_number
        self.announce_on_connect = announce_on_connect
        self.zero_g = 0.0
        self.tare_g = 0.0
        self._buffer = bytearray()

    # -- weighing ------------------------------------------------------------------------------
    def _unstable_for(self) -> float:
        """Simulated seconds until the reading is stable (0 when stable). Under the lock."""
        since = self.world.sim_time() - self.world.last_mass_change(station=self.station)
        return max(0.0, self.settle_time_s - since)

    def _gross(self) -> float:
        """Gross reading, g: pan load, drift, noise and the settling wobble. Under the lock."""
        load = self.world.mass_on_balance_g(station=self.station) + self.faults.drift
        wobble = self._unstable_for()
        noise = 3e-5 + 2e-3 * wobble / max(self.settle_time_s, 1e-9)
        return load + noise * float(self.rng.standard_normal())

    def _weight_text(self, value: float) -> str:
        return f"{value:10.{self.decimals}f} g"

    def _range_status(self, gross: float) -> str | None:
        if gross > self.capacity_g:
            return "+"
        if gross < -ZERO_RANGE * self.capacity_g:
            return "-"
        return None

    def _wait_stable(self) -> bool:
        """Block (without the lock) until stable or timed out; True when stable."""
        with self.world.lock:
            wait = self._unstable_for()
        if wait <= 0:
            return True
        if wait > self.stability_timeout_s:
            self.world.sleep(self.stability_timeout_s)
            return False
        self.world.sleep(wait)
        with self.world.lock:
            return self._unstable_for() <= 0

    # -- byte stream ----------------------------------------------------------------------------
    def on_connect(self) -> bytes:
        """Optional power-up announcement."""
        return f'I4 A "{self.serial_number}"\r\n'.encode() if self.announce_on_connect else b""

    def feed(self, data: bytes) -> bytes | Disconnect | None:
        """Consume bytes from the host; return the replies (CR LF terminated).

        ``S``, ``Z`` and ``T`` may block until the reading is stable.
        """
        out = bytearray()
        self._buffer += data
        while (end := next((i for i, b in enumerate(self._buffer) if b in b"\r\n"), -1)) >= 0:
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if not raw.strip():
                continue
            result = self._command(raw)
            if isinstance(result, Disconnect):
                self._buffer.clear()
                return Disconnect(result.seconds, bytes(out) + result.before)
            if result:
                out += result
        if len(self._buffer) > 256:
            self._buffer.clear()
        return bytes(out)

    def _command(self, raw: bytes) -> bytes | Disconnect | None:
        kind = self.faults.draw()
        if any(b & 0x80 for b in raw):
            lines = ["ET"]
        else:
            line = raw.decode("ascii").strip()
            words = line.split(" ", 1)
            command, arg = words[0], (words[1].strip() if len(words) > 1 else "")
            if command not in COMMANDS_LEVELS:
                lines = ["ES"]
            elif kind == "busy":
                lines = [f"{'I4' if command == '@' else 'S' if command == 'SI' else command} I"]
            else:
                lines = self._execute(command, arg)
        reply = "".join(f"{line}\r\n" for line in lines).encode("ascii")
        return self.faults.transform(kind, reply)

    # -- commands --------------------------------------------------------------------------------
    def _execute(self, command: str, arg: str) -> list[str]:
        if arg and command != "TA":
            return ["ES"]
        if command in ("S", "Z", "T"):
            stable = self._wait_stable()
            with self.world.lock:
                if not stable:
                    return [f"{command} I"]
                return [self._stable_command(command)]
        with self.world.lock:
            return self._immediate_command(command, arg)

    def _stable_command(self, command: str) -> str:
        gross = self._gross()
        status = self._range_status(gross)
        if command == "S":
            if status:
                return f"S {status}"
            return f"S S {self._weight_text(gross - self.zero_g - self.tare_g)}"
        if command == "Z":
            if abs(gross) > ZERO_RANGE * self.capacity_g:
                return "Z +" if gross > 0 else "Z -"
            self.zero_g, self.tare_g = gross, 0.0
            return "Z A"
        net = gross - self.zero_g
        if status or net > self.capacity_g:
            return "T +"
        if net < 0:
            return "T -"
        self.tare_g = net
        return f"T S {self._weight_text(net)}"

    def _immediate_command(self, command: str, arg: str) -> list[str]:
        stability = "S" if self._unstable_for() <= 0 else "D"
        if command == "SI":
            gross = self._gross()
            status = self._range_status(gross)
            if status:
                return [f"S {status}"]
            return [f"S {stability} {self._weight_text(gross - self.zero_g - self.tare_g)}"]
        if command == "ZI":
            gross = self._gross()
            if abs(gross) > ZERO_RANGE * self.capacity_g:
                return ["ZI +" if gross > 0 else "ZI -"]
            self.zero_g, self.tare_g = gross, 0.0
            return [f"ZI {stability}"]
        if command == "TI":
            net = self._gross() - self.zero_g
            if net > self.capacity_g:
                return ["TI +"]
            if net < 0:
                return ["TI -"]
            self.tare_g = net
            return [f"TI {stability} {self._weight_text(net)}"]
        if command == "TA":
            if not arg:
                return [f"TA A {self._weight_text(self.tare_g)}"]
            parts = arg.split()
            try:
                value = float(parts[0])
            except ValueError:
                return ["TA L"]
            if len(parts) != 2 or parts[1] != "g" or not 0 <= value <= self.capacity_g:
                return ["TA L"]
            self.tare_g = value
            return [f"TA A {self._weight_text(value)}"]
        if command == "TAC":
            self.tare_g = 0.0
            return ["TAC A"]
        if command == "I0":
            names = list(COMMANDS_LEVELS)
            return [
                f'I0 {"A" if i == len(names) - 1 else "B"} {COMMANDS_LEVELS[n]} "{n}"'
                for i, n in enumerate(names)
            ]
        if command == "I1":
            return ['I1 A "012" "2.20" "2.20" "1.00" "1.00"']
        if command == "I2":
            return [f'I2 A "{self.balance_type}"']
        if command == "I3":
            return ['I3 A "2.20.0.1"']
        if command == "I10":
            return ['I10 A "Balance"']
        if command in ("I4", "@"):
            if command == "@":
                self.tare_g = 0.0
            return [f'I4 A "{self.serial_number}"']
        raise AssertionError(command)
