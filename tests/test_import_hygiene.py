"""The core must stay usable without a terminal: it may never import Textual (or Rich)."""

import pkgutil
import subprocess
import sys

import tui.core


def test_core_modules_import_no_ui_library():
    modules = [f"tui.core.{m.name}" for m in pkgutil.iter_modules(tui.core.__path__)]
    assert "tui.core.engine" in modules
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imported_by(modules: list[str]) -> set[str]:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(","))


def test_core_has_no_web_stack_and_the_client_library_no_ui():
    """tui.core stays free of the server's aiohttp; tui.client (used by the console and the
    CLI verbs) is free of Textual and Rich, so a script can use it without a terminal."""
    import tui.client

    core = [f"tui.core.{m.name}" for m in pkgutil.iter_modules(tui.core.__path__)]
    assert "aiohttp" not in _imported_by(core)
    client = [f"tui.client.{m.name}" for m in pkgutil.iter_modules(tui.client.__path__)]
    assert "tui.client.connection" in client
    assert not _imported_by(client) & {"textual", "rich"}
