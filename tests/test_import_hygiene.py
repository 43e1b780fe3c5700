"""The core must stay usable without a terminal: it may never import Textual (or Rich)."""

import pkgutil
import subprocess
import sys

import tui.core


def _core_modules() -> list[str]:
    """Every module of tui.core, its sub-packages' included."""
    return [m.name for m in pkgutil.walk_packages(tui.core.__path__, "tui.core.") if not m.ispkg]


def test_core_modules_import_no_ui_library():
    modules = _core_modules()
    assert "tui.core.engine" in modules and "tui.core.running.supervisor" in modules
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imported_by(modules: list[str]) -> set[str]:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(","))


def test_core_has_no_web_stack_and_the_client_library_no_ui():
    """tui.core stays free of the server's aiohttp; tui.client (used by the console and the
    CLI verbs) is free of Textual and Rich, so a script can use it without a terminal."""
    import tui.client

    core = _core_modules()
    assert "aiohttp" not in _imported_by(core)
    client = [f"tui.client.{m.name}" for m in pkgutil.iter_modules(tui.client.__path__)]
    assert "tui.client.connection" in client
    assert not _imported_by(client) & {"textual", "rich"}


def test_storage_and_planning_do_not_import_the_engine():
    """The layers point one way: the engine uses storage, running and planning, never the reverse
    (history once imported the engine, which imports history)."""
    code = (
        "import sys, pkgutil, tui.core.storage, tui.core.planning, tui.core.running\n"
        "for pkg in (tui.core.storage, tui.core.planning, tui.core.running):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
        "        __import__(m.name)\n"
        "print('tui.core.engine' in sys.modules, 'tui.core.job' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_every_package_is_in_the_wheel():
    """pyproject.toml lists the packages a wheel carries: a sub-package left out imports fine from a
    checkout (and an editable install) and fails only once installed from a wheel."""
    import tomllib
    from pathlib import Path

    root = Path(tui.core.__file__).resolve().parents[2]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(root).parts) for init in (root / "tui").rglob("__init__.py")}
    assert found - listed == set()
