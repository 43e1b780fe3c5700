"""The README's promises that code can check: the two set-up commands and the keys table."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tui.console.commands import COMMANDS, key_label

README = (ROOT / "README.md").read_text()


def test_readme_starts_with_exactly_the_two_setup_commands():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert blocks[:2] == [
        "pip install -e . && playdeck sample_playbooks/jobs.yml\n",
        'pip install -e ".[test]" && python -m pytest\n',
    ]
    assert 'pip install -e ".[test]" && python -m pytest' in (ROOT / ".ci" / "run").read_text()
    assert (ROOT / "sample_playbooks" / "jobs.yml").is_file()


def test_keys_table_matches_the_command_list():
    for command in COMMANDS:
        row = next((line for line in README.splitlines() if f"| `{command.id}` |" in line), None)
        assert row is not None, f"{command.id} missing from the README keys table"
        assert row.startswith(f"| `{key_label(command.key)}` |"), row
