"""playdeck: a terminal console that runs many Ansible jobs at once.

`tui.core` holds everything that does not need a terminal (specs, engine,
results, logs) and never imports Textual; the console is a thin layer on it.
"""

__version__ = "0.1.0"
