"""The import rules of the architecture, as an executable check.

Rules (docs/decisions/0001-layering.md):

* ``drivers`` imports only the standard library and pyserial.
* ``simulators`` never imports ``drivers`` or ``lab``.
* Pure computation in ``lab`` (``spec``, ``workcell``, ``materials``, ``model``, ``optimize``,
  ``analysis``, ``errors``) imports no Prefect, Bluesky, Ophyd or database code, nor the
  ``lab`` modules that own them.
* ``devices``/``plans`` own Ophyd/Bluesky and import no Prefect or SQL; ``store`` owns SQL and
  imports no Prefect, Bluesky or Ophyd.
* The process layer (``steps``, ``routes``) and the shared ``registry``/``units`` are pure at
  import time (the campaign schema validates a process with them); step kinds and routes
  import Bluesky only inside the functions that build plans. ``instruments`` owns Ophyd
  like ``devices``.
* Only ``lab.flows`` and ``lab.console`` import Prefect.
* Only ``lab.console`` imports ``simulators``.
* Nothing imports ``tests``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

STDLIB = set(sys.stdlib_module_names) | {"__future__"}
ORCHESTRATION = {"prefect"}
BENCH = {"bluesky", "ophyd", "event_model"}
SQL = {"sqlmodel", "sqlalchemy", "alembic", "psycopg", "psycopg2"}
PURE_LAB = {"spec", "workcell", "materials", "model", "optimize", "analysis", "errors", "_runtime"}
PURE_LAB |= {"registry", "units"}
PROCESS_LAB = {"steps", "routes"}
IMPURE_LAB = {"store", "flows", "devices", "plans", "console", "report", "instruments"}
IMPURE_LAB |= {"control", "readmodel"}


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _local_imports(tree: ast.AST) -> set[int]:
    """``id`` of every import node inside a function body."""
    out: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            out |= {id(n) for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)}
    return out


def iter_imports(path: Path, module: str, *, local: bool = True) -> Iterator[tuple[int, str]]:
    """Yield ``(line, absolute module name)`` of every import in a file (``local=False``:
    only those outside function bodies)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip = set() if local else _local_imports(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield node.lineno, name


def violations_of(module: str, imported: str, *, local: bool = False) -> str | None:
    """The rule that ``module`` importing ``imported`` breaks, or ``None`` (``local``: the
    import is inside a function body)."""
    top = imported.split(".")[0]
    parts = module.split(".")
    if top == "tests" and parts[0] != "tests":
        return "nothing imports tests"
    if parts[0] == "drivers":
        if top not in STDLIB and top not in {"serial", "drivers"}:
            return "drivers may import only the standard library and pyserial"
    elif parts[0] == "simulators":
        if top in {"drivers", "lab"}:
            return "simulators never import drivers or lab"
    elif parts[0] == "lab":
        sub = parts[1] if len(parts) > 1 else ""
        lab_sub = imported.split(".")[1] if top == "lab" and "." in imported else ""
        if top == "simulators" and sub != "console":
            return "only lab.console starts simulators"
        if top in ORCHESTRATION and sub not in {"flows", "console"}:
            return "only lab.flows and lab.console import Prefect"
        if sub in PURE_LAB or sub == "":
            if top in BENCH | SQL | ORCHESTRATION or lab_sub in IMPURE_LAB:
                return f"lab.{sub or '__init__'} is pure computation: no Prefect, Bluesky, Ophyd or SQL"
        if sub in PROCESS_LAB:
            if top in SQL | ORCHESTRATION or lab_sub in IMPURE_LAB - {"plans"}:
                return f"lab.{sub} is pure: no Prefect, SQL, store, devices or instruments"
            if top in BENCH and not local:
                return f"lab.{sub} imports Bluesky only inside the functions that build plans"
            if lab_sub == "plans" and not local:
                return f"lab.{sub} imports lab.plans only inside the functions that build plans"
        if sub in PURE_LAB and lab_sub in PROCESS_LAB:
            return None
        if sub in {"devices", "plans", "instruments"} and (
            top in SQL or lab_sub in {"store", "flows", "console"}
        ):
            return "devices/plans import no SQL, store, flows or console"
        if sub == "store" and (top in BENCH or lab_sub in {"devices", "plans", "flows", "console"}):
            return "store imports no Bluesky/Ophyd, devices, plans, flows or console"
    return None


def check_layering(
    root: Path, packages: tuple[str, ...] = ("lab", "drivers", "simulators")
) -> list[str]:
    """Check every module of ``packages`` under ``root``.

    Returns:
        One line per violation, ``path:line: module imports X (rule)``.
    """
    problems = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            module = _module_name(root, path)
            top_level = set(iter_imports(path, module, local=False))
            for line, imported in iter_imports(path, module):
                rule = violations_of(module, imported, local=(line, imported) not in top_level)
                if rule:
                    problems.append(
                        f"{path.relative_to(root)}:{line}: {module} imports {imported} ({rule})"
                    )
    return problems
