"""Inventory loading against the real ansible-inventory: shape, operator-facing errors, and a responsive loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import INVENTORY, pids_with_cmdline, run, until
from tui.core.planning.inventory import Inventory, InventoryError, _detail, _parse, limit_for, load_inventory


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_sample_inventory():
    inv = run(load_inventory(INVENTORY))
    assert isinstance(inv, Inventory)
    assert inv.source == INVENTORY
    assert {"all", "ungrouped", "web", "db", "cache", "lb", "dc2"} <= set(inv.groups)
    assert inv.groups["all"].children == ["ungrouped", "web", "db", "cache", "lb", "dc2"]
    assert inv.groups["web"].hosts == ["web01", "web02", "web03"]
    assert inv.hosts_in("web") == ["web01", "web02", "web03"]
    assert "ghost01" in inv.hosts_in("all")
    assert inv.hosts_in("all") == inv.hosts
    assert len(inv.hosts) == 8
    assert inv.hostvars["web03"]["app_port"] == 8081
    assert inv.hostvars["web01"]["app_port"] == 8080  # group vars merged in, as a playbook sees them
    assert inv.host_groups("web01") == ["web"]
    assert inv.host_groups("nosuchhost") == []
    with pytest.raises(KeyError):
        inv.hosts_in("nosuchgroup")


def test_nested_groups_shared_hosts_and_hosts_without_vars(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {"loner": None},
                    "children": {
                        "prod": {"children": {"web": None, "db": None}},
                        "web": {"hosts": {"w1": None, "both": None}},
                        "db": {"hosts": {"d1": {"x": 1}, "both": None}},
                    },
                }
            }
        )
    )
    inv = run(load_inventory(path))
    assert inv.hosts == ["both", "d1", "loner", "w1"]
    assert inv.hosts_in("prod") == ["both", "d1", "w1"]
    assert inv.host_groups("both") == ["db", "web"]
    assert inv.host_groups("loner") == ["ungrouped"]
    assert inv.hostvars["w1"] == {}  # ansible leaves var-less hosts out of _meta.hostvars
    assert inv.hostvars["d1"] == {"x": 1}


def test_malformed_ini_is_an_error_naming_the_path(tmp_path):
    path = tmp_path / "broken.ini"
    path.write_text("[web\nweb01\n")
    with pytest.raises(InventoryError) as err:
        run(load_inventory(path))
    message = str(err.value)
    assert str(path) in message
    assert "Failed to parse" in message  # ansible's own reason is passed on
    assert "\x1b[" not in message


def test_malformed_yaml_is_an_error(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("all: [\n")
    with pytest.raises(InventoryError, match="YAML parsing failed") as err:
        run(load_inventory(path))
    assert str(path) in str(err.value)


def test_missing_path(tmp_path):
    path = tmp_path / "nope.ini"
    with pytest.raises(InventoryError, match="not found") as err:
        run(load_inventory(path))
    assert str(path) in str(err.value)


def test_failing_inventory_script(tmp_path):
    path = _script(tmp_path / "inventory.sh", "echo 'cmdb is down' >&2\nexit 1\n")
    with pytest.raises(InventoryError) as err:
        run(load_inventory(path))
    assert str(path) in str(err.value)
    assert "cmdb is down" in str(err.value)


def test_inventory_without_hosts(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("all:\n  children:\n    web:\n      hosts:\n")
    with pytest.raises(InventoryError, match="has no hosts"):
        run(load_inventory(path))


def test_timeout_kills_the_script_and_its_children(tmp_path):
    path = _script(tmp_path / "slow.sh", "sleep 4321\n")
    with pytest.raises(InventoryError, match="did not finish within 5s") as err:
        run(load_inventory(path, timeout=5))
    assert str(path) in str(err.value)
    run(until(lambda: not pids_with_cmdline("sleep 4321"), timeout=5, what="the script's sleep to be gone"))


def test_cancelled_load_leaves_no_process(tmp_path):
    started = tmp_path / "started"
    path = _script(tmp_path / "slow.sh", f"touch '{started}'\nsleep 4322\n")

    async def main() -> None:
        task = asyncio.create_task(load_inventory(path))
        await until(started.exists, timeout=60, what="the inventory script to start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    run(until(lambda: not pids_with_cmdline("sleep 4322"), timeout=5, what="the script's sleep to be gone"))
    assert pids_with_cmdline(str(path)) == []


def test_5000_hosts_load_while_the_loop_stays_responsive(tmp_path):
    groups = {
        f"g{g:02d}": {
            "vars": {"tier": g % 3},
            "hosts": {f"h{g:02d}-{i:03d}.example.com": {"idx": i, "rack": f"r{i % 10}"} for i in range(100)},
        }
        for g in range(50)
    }
    path = tmp_path / "big.yml"
    path.write_text(yaml.safe_dump({"all": {"children": groups}}))

    async def main() -> tuple[Inventory, float, float, int]:
        done = asyncio.Event()
        max_gap = 0.0
        ticks = 0

        async def ticker() -> None:
            nonlocal max_gap, ticks
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                max_gap = max(max_gap, now - last)
                last = now
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = time.perf_counter()
        try:
            inv = await load_inventory(path)
        finally:
            elapsed = time.perf_counter() - start
            done.set()
            await tick_task
        return inv, elapsed, max_gap, ticks

    inv, elapsed, max_gap, ticks = run(main())
    print(f"\n5000-host load: {elapsed:.2f}s, max loop gap {max_gap * 1000:.1f} ms over {ticks} ticks")
    assert len(inv.hosts) == 5000
    assert len(inv.hosts_in("all")) == 5000
    assert len(inv.groups) == 52  # 50 + all + ungrouped
    assert inv.hosts_in("g07")[0] == "h07-000.example.com"
    assert inv.hostvars["h49-099.example.com"] == {"idx": 99, "rack": "r9", "tier": 1}
    assert max_gap < 0.5, f"event loop blocked for {max_gap:.2f}s while loading"


def test_output_that_is_not_json():
    with pytest.raises(InventoryError, match="not JSON") as err:
        _parse(Path("/inv/hosts"), b"Traceback (most recent call last):\n")
    assert "/inv/hosts" in str(err.value)
    with pytest.raises(InventoryError, match="not an inventory"):
        _parse(Path("/inv/hosts"), b"[1, 2]")


def test_stderr_detail_is_cleaned_and_capped():
    raw = b"\x1b[0;31m[WARNING]: bad thing\x1b[0m\n\n<<< caused by >>>\n[WARNING]: bad thing\n" + b"x" * 80 + b"\n"
    assert _detail(raw) == "[WARNING]: bad thing\n" + "x" * 80
    long = b"\n".join(b"line %d " % i + b"y" * 50 for i in range(200))
    out = _detail(long)
    assert len(out) <= 1502 and out.endswith("\u2026") and out.startswith("line 0 ")


def test_limit_for():
    assert limit_for([]) is None
    assert limit_for(["", "  "]) is None
    assert limit_for(["web", "db01"]) == "web,db01"
    assert limit_for(["db01", "web", "db01", " web "]) == "db01,web"
    assert limit_for(iter(["web"])) == "web"
    assert limit_for("web") == "web"  # a lone string is one name, not its letters
