"""``python -m simulators``: run the simulated workcell until Ctrl-C or SIGTERM.

Starts every instrument (two pumps, hotplate, balance, gantry, LCR meter; ``--demo`` for the
pumps and the LCR meter only), prints each URL and writes a workcell file when
``--workcell-out`` is given.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from simulators.workcell import DEMO_DEVICES, FULL_DEVICES, SimulatedWorkcell
from simulators.world import SimulatedWorld


def main(argv: list[str] | None = None) -> int:
    """Run the simulated workcell; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    parser.add_argument("--workcell-out", help="write the workcell YAML file here")
    parser.add_argument("--time-scale", type=float, default=1.0, help="sim s per real s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults-rate", type=float, default=0.0, help="fault probability")
    parser.add_argument(
        "--truth", default="simulators.truths:demo_interface", help="module:function"
    )
    parser.add_argument("--demo", action="store_true", help="pumps and LCR meter only")
    args = parser.parse_args(argv)

    world = SimulatedWorld(args.truth, time_scale=args.time_scale, seed=args.seed)
    devices = DEMO_DEVICES if args.demo else FULL_DEVICES
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with SimulatedWorkcell(
        devices, world=world, seed=args.seed, faults_rate=args.faults_rate
    ) as workcell:
        for name, entry in workcell.devices.items():
            print(f"{name:16s} {entry['kind']:10s} {entry['url']}", flush=True)
        if args.workcell_out:
            path = workcell.write_workcell(args.workcell_out)
            print(f"workcell file: {path}", flush=True)
        print("simulated workcell running; Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
    print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
