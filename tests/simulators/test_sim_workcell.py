"""The simulated workcell: ports, workcell file, end-to-end over raw pty/TCP I/O."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import tty
from pathlib import Path

import yaml

from simulators.workcell import DEMO_DEVICES, FULL_DEVICES, SimulatedWorkcell
from simulators.world import SimulatedWorld


def exchange(fd: int, data: bytes, terminator: bytes, timeout: float = 2.0) -> bytes:
    os.write(fd, data)
    reply = b""
    deadline = time.monotonic() + timeout
    while not reply.endswith(terminator) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            reply += os.read(fd, 1024)
    return reply


def test_demo_workcell_end_to_end(tmp_path: Path) -> None:
    world = SimulatedWorld(time_scale=1000.0, seed=5)
    with SimulatedWorkcell(DEMO_DEVICES, world=world) as cell:
        devices = cell.devices
        assert devices["pump_precursor"]["url"].startswith("/dev/pts/")
        assert devices["lcr"]["url"].startswith("socket://127.0.0.1:")
        path = cell.write_workcell(tmp_path / "workcell.yaml")
        written = yaml.safe_load(path.read_text())["devices"]
        assert written["pump_solvent"] == {
            "kind": "ne1000",
            "url": devices["pump_solvent"]["url"],
            "role": "solvent",
            "address": 0,
        }
        for name, volume in (
            ("pump_precursor", 12),
            ("pump_solvent", 6),
        ):
            fd = os.open(devices[name]["url"], os.O_RDWR | os.O_NOCTTY)
            try:
                tty.setraw(fd)
                assert exchange(fd, b"0VER\r", b"\x03") == b"\x0200A?R\x03"
                for cmd in (b"0DIA4.61\r", b"0RAT200UM\r", b"0VOLUL\r", b"0VOL%d\r" % volume):
                    assert exchange(fd, cmd, b"\x03") == b"\x0200S\x03"
                assert exchange(fd, b"0RUN\r", b"\x03") == b"\x0200I\x03"
            finally:
                os.close(fd)
        world.sleep(5.0)
        host, port = devices["lcr"]["url"].removeprefix("socket://").split(":")
        with socket.create_connection((host, int(port)), timeout=2) as sock:
            sock.sendall(b":FUNC:IMP RX;:TRIG:SOUR BUS;:INIT\n*TRG\n:FETC?\n")
            reply = b""
            while not reply.endswith(b"\n"):
                reply += sock.recv(1024)
        r, x, status = reply.decode().strip().split(",")
        assert status == "+0" and float(r) > 20 and float(x) < 0
        sample = world.samples[0]
        assert sample.measured
        assert abs(sample.params["precursor_volume_ul"] - 12) < 0.5
        assert abs(sample.params["solvent_volume_ul"] - 6) < 0.5
        assert cell.fault_log() == []


def test_faults_rate_applies_to_every_device() -> None:
    world = SimulatedWorld(time_scale=1000.0)
    cell = SimulatedWorkcell(DEMO_DEVICES, world=world, seed=1, faults_rate=1.0)
    cell.start()
    try:
        for sim in cell.sims.values():
            assert sim.faults.config.rate == 1.0
        seeds = {sim.faults.config.seed for sim in cell.sims.values()}
        assert len(seeds) == 3
        cell.sims["lcr"].feed(b"*IDN?\n")
        assert [row[0] for row in cell.fault_log()] == ["lcr"]
    finally:
        cell.stop()


def test_per_device_options_and_faults() -> None:
    world = SimulatedWorld()
    devices = {
        "p": {"kind": "ne1000", "role": "solvent", "address": 3, "url": "ignored", "extra": 1},
        "m": {"kind": "scpi_lcr", "faults": {"rate": 0.5, "kinds": ["busy"], "seed": 2}},
    }
    with SimulatedWorkcell(devices, world=world) as cell:
        pump = cell.sims["p"]
        assert pump.role == "solvent" and pump.address == 3  # type: ignore[attr-defined]
        assert cell.devices["p"]["url"] != "ignored" and cell.devices["p"]["extra"] == 1
        assert cell.sims["m"].faults.config.kinds == ("busy",)


def test_full_workcell_every_device_answers(tmp_path: Path) -> None:
    world = SimulatedWorld(time_scale=1000.0)
    with SimulatedWorkcell(FULL_DEVICES, world=world) as cell:
        devices = cell.devices
        assert {d["kind"] for d in devices.values()} == {
            "ne1000",
            "ika_namur",
            "mt_sics",
            "grbl",
            "scpi_lcr",
        }
        checks = {
            "hotplate": (b"IN_NAME\r\n", b"RCT digital\r\n"),
            "balance": (b"I4\r\n", b'I4 A "1126493049"\r\n'),
            "pump_solvent": (b"0VER\r", b"\x0200A?R\x03"),
        }
        for name, (sent, expected) in checks.items():
            fd = os.open(devices[name]["url"], os.O_RDWR | os.O_NOCTTY)
            try:
                assert exchange(fd, sent, expected[-1:]) == expected
            finally:
                os.close(fd)
        fd = os.open(devices["gantry"]["url"], os.O_RDWR | os.O_NOCTTY)
        try:
            banner = exchange(fd, b"", b"help]\r\n")
            assert banner == b"\r\nGrbl 1.1h ['$' for help]\r\n"
            assert exchange(fd, b"?", b">\r\n").startswith(b"<Idle|MPos:0.000,0.000,0.000")
        finally:
            os.close(fd)
        path = cell.write_workcell(tmp_path / "cell.yaml")
        assert set(yaml.safe_load(path.read_text())["devices"]) == set(FULL_DEVICES)


def test_python_m_simulators(tmp_path: Path) -> None:
    out = tmp_path / "workcell.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "--demo", "--workcell-out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "running" in line:
                break
        assert any(line.startswith("pump_precursor") and "/dev/pts/" in line for line in lines)
        devices = yaml.safe_load(out.read_text())["devices"]
        assert devices["lcr"]["url"].startswith("socket://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_fault_seeds_follow_workcell_seed() -> None:
    def seeds(seed: int) -> dict[str, int]:
        cell = SimulatedWorkcell(DEMO_DEVICES, world=SimulatedWorld(), seed=seed, faults_rate=0.1)
        return {name: cell._fault_config(name, entry).seed for name, entry in cell.entries.items()}  # type: ignore[union-attr]

    assert seeds(1) == seeds(1)
    assert seeds(1) != seeds(2)
