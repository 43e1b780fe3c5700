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
