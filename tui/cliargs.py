"""Command-line parsing for the verbs: an argparse whose errors are one plain line and status 2,
returned to the caller rather than exiting from inside argparse (so a verb can say it its way)."""

from __future__ import annotations

import argparse


class ArgsError(Exception):
    """Bad input, already worded for the user (the program's name first)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArgsError(f"{self.prog}: {message}")
