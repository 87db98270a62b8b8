"""The layering rules hold for the whole code base, and the check catches violations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.layering import check_layering, violations_of

ROOT = Path(__file__).resolve().parents[1]


def test_code_base_respects_layering() -> None:
    problems = check_layering(ROOT)
    assert problems == [], "\n".join(problems)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for pkg in ("lab", "drivers", "simulators"):
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(
    ("path", "source", "rule"),
    [
        ("drivers/ne1000.py", "import numpy\n", "standard library and pyserial"),
        ("drivers/ne1000.py", "from lab.spec import Campaign\n", "standard library and pyserial"),
        ("simulators/pump.py", "from drivers.ne1000 import NE1000\n", "never import drivers"),
        ("simulators/pump.py", "import lab.spec\n", "never import drivers"),
        ("lab/optimize/x.py", "from prefect import flow\n", "only lab.flows"),
        ("lab/optimize/x.py", "import sqlmodel\n", "pure computation"),
        ("lab/analysis/x.py", "from ..store import Store\n", "pure computation"),
        ("lab/spec.py", "from bluesky import RunEngine\n", "pure computation"),
        ("lab/flows.py", "from simulators.world import SimulatedWorld\n", "only lab.console"),
        ("lab/store/x.py", "import ophyd\n", "store imports no"),
        ("lab/devices.py", "from lab.store import Store\n", "devices/plans"),
        ("lab/plans.py", "from tests.layering import check_layering\n", "nothing imports tests"),
        ("lab/steps/x.py", "from bluesky import plan_stubs\n", "only inside the functions"),
        ("lab/routes/x.py", "from lab.store import Store\n", "lab.routes is pure"),
        ("lab/units.py", "import ophyd\n", "pure computation"),
    ],
)
def test_check_catches_violation(tmp_path: Path, path: str, source: str, rule: str) -> None:
    root = _tree(tmp_path, {path: source})
    problems = check_layering(root)
    assert len(problems) == 1
    assert rule in problems[0]
    assert path in problems[0]


def test_allowed_imports_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "lab/steps/x.py": "from lab.units import convert\n\n\ndef plan():\n"
            "    from bluesky import plan_stubs\n    from lab.plans import make_sample\n",
            "lab/spec.py": "from lab.steps import STEPS\n",
            "drivers/ne1000.py": "import serial\nimport threading\nfrom .errors import DriverError\n",
            "simulators/world.py": "import numpy as np\nimport yaml\n",
            "lab/flows.py": "from prefect import flow\nfrom lab.store import Store\n",
            "lab/console.py": "from simulators.world import SimulatedWorld\n",
            "lab/devices.py": "from drivers import NE1000\nfrom ophyd import Device\n",
        },
    )
    assert check_layering(root) == []


def test_relative_imports_are_resolved() -> None:
    assert violations_of("lab.optimize._optimizer", "lab.store") is not None
    assert violations_of("lab.optimize._optimizer", "lab.spec") is None
