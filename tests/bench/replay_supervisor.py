"""A stand-in for `tui.core.running.supervisor` that replays events instead of running Ansible.

    PLAYDECK_SUPERVISOR_MODULE=tests.bench.replay_supervisor

Same protocol as the real supervisor (it *is* the real one, with only `run()`
replaced): it reads the JSON config line, honours `{"cmd": "stop"}`, deadlines,
SIGTERM and end of input, writes the attempt's `output.log` and `events.jsonl`
through `AttemptFiles` (one event at a time, flushed, as the real one does), and
sends each event over stdout trimmed by `trim_event`, then the `end` line.

What it replays, from the environment (or, per job, from the same names in lower
case as extra vars, e.g. `playdeck_replay_lines`, which win over the environment):
  PLAYDECK_REPLAY_EVENTS=path   a recorded events.jsonl (e.g. an attempt's own);
  PLAYDECK_REPLAY_REPEAT=N      play that recording N times over, as one long run
                                (counters renumbered; playbook_on_start only first,
                                playbook_on_stats only last);
  PLAYDECK_REPLAY_LINES=N       or N synthetic `runner_on_ok` events, one coloured
                                line of stdout each, a `playbook_on_task_start`
                                before every HOSTS of them (HOSTS hosts take turns);
  PLAYDECK_REPLAY_RATE=R        events per second (default: as fast as possible);
  PLAYDECK_REPLAY_GO_FILE=path  wait (stoppable) until this file exists before the first event,
                                so a benchmark can start every job's flood at once;
  PLAYDECK_REPLAY_AUTOGROUP_NICE=N  a what-if, not something the real supervisor does: also
                                give this process's session (its kernel autogroup) nice N.
Every synthetic line carries `seq NNNNNNN`, so a reader can check that each of the
N lines reached the log on disk, once and in order (see `count_seq_lines`).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from tui.core.running import supervisor
from tui.core.storage.logstore import AttemptFiles

HOSTS = 25  # synthetic hosts; one task_start per round of them
PLAY = "Synthetic replay"
SEQ = re.compile(r"\bseq (\d{7})\b")
_SEQ_BYTES = re.compile(rb"\bseq (\d{7})\b")
_OK = "\x1b[0;32m"
_CHANGED = "\x1b[0;33m"
_RESET = "\x1b[0m"


def setting(config: dict[str, Any], name: str) -> str | None:
    """`PLAYDECK_REPLAY_<NAME>`: an extra var of the job first, then the environment."""
    extra = (config.get("kwargs") or {}).get("extravars") or {}
    value = extra.get(f"playdeck_replay_{name.lower()}")
    if value is None:
        value = os.environ.get(f"PLAYDECK_REPLAY_{name.upper()}")
    return None if value in (None, "") else str(value)


# -- event sources ----------------------------------------------------------


def load_recording(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def repeated(events: list[dict[str, Any]], repeat: int) -> Iterator[dict[str, Any]]:
    """The recording `repeat` times over, as one long playbook run."""
    pid = os.getpid()  # a recorded pid now belongs to nobody (or to someone else)
    counter = 0
    for copy in range(repeat):
        for event in events:
            name = event.get("event")
            if name == "playbook_on_start" and copy > 0:
                continue
            if name == "playbook_on_stats" and copy < repeat - 1:
                continue
            counter += 1
            yield {**event, "counter": counter, "pid": pid}


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "+00:00"


def synthetic(lines: int) -> Iterator[dict[str, Any]]:
    """`lines` runner_on_ok events shaped like ansible-runner's, one coloured stdout line each."""
    pid = os.getpid()
    playbook = "/srv/playbooks/synthetic.yml"
    counter = 0
    counts: dict[str, list[int]] = {}

    def event(kind: str, stdout: str, **data: Any) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        uuid = f"00000000-0000-4000-8000-{counter:012d}"
        return {
            "uuid": uuid,
            "counter": counter,
            "stdout": stdout,
            "start_line": counter,
            "end_line": counter + 1,
            "runner_ident": "attempt",
            "event": kind,
            "pid": pid,
            "created": _stamp(),
            "event_data": {
                "playbook": playbook,
                "playbook_uuid": "5e9f0000-0000-4000-8000-000000000001",
                **data,
                "uuid": uuid,
            },
        }

    play = {"play": PLAY, "play_uuid": "5e9f0000-0000-4000-8000-000000000002", "play_pattern": "all"}
    yield event("playbook_on_start", "")
    yield event("playbook_on_play_start", f"\r\nPLAY [{PLAY}] " + "*" * 60, name=PLAY, pattern="all", **play)
    task: dict[str, Any] = {}
    for seq in range(lines):
        round_, slot = divmod(seq, HOSTS)
        if slot == 0:
            name = f"Step {round_ + 1}: check service state"
            task = {
                **play,
                "task": name,
                "task_uuid": f"5e9f0000-0000-4000-8000-{round_ + 3:012d}",
                "task_action": "ansible.builtin.command",
                "resolved_action": "ansible.builtin.command",
                "task_args": "",
                "task_path": f"{playbook}:{round_ + 10}",
            }
            yield event(
                "playbook_on_task_start", f"\r\nTASK [{name}] " + "*" * 50, name=name, is_conditional=False, **task
            )
        host = f"host{slot + 1:02d}.example.internal"
        changed = seq % 7 == 3
        ms = (seq * 37) % 250
        msg = f"seq {seq:07d} INFO request handled in {ms} ms"
        colour, word = (_CHANGED, "changed") if changed else (_OK, "ok")
        stdout = f'{colour}{word}: [{host}] => {{"msg": "{msg}"}}{_RESET}'
        tally = counts.setdefault(host, [0, 0])
        tally[0] += 1
        tally[1] += changed
        yield event(
            "runner_on_ok",
            stdout,
            host=host,
            remote_addr=host,
            duration=0.012,
            start=_stamp(),
            end=_stamp(),
            event_loop=None,
            res={"changed": changed, "msg": msg, "_ansible_verbose_always": True, "_ansible_no_log": False},
            **task,
        )
    recap = (
        "\r\nPLAY RECAP "
        + "*" * 69
        + "".join(
            f"\r\n{_OK}{host:<26}{_RESET} : {_OK}ok={ok:<4}{_RESET} changed={ch:<4} unreachable=0    failed=0"
            for host, (ok, ch) in counts.items()
        )
    )
    yield event(
        "playbook_on_stats",
        recap,
        ok={h: c[0] for h, c in counts.items()},
        changed={h: c[1] for h, c in counts.items()},
        dark={},
        failures={},
        ignored={},
        rescued={},
        skipped={},
        processed={h: 1 for h in counts},
        artifact_data={},
    )


def events_for(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    path = setting(config, "events")
    if path:
        return repeated(load_recording(path), int(setting(config, "repeat") or 1))
    return synthetic(int(setting(config, "lines") or 1000))


def count_seq_lines(log: Path) -> tuple[int, bool]:
    """(synthetic lines found in an output.log, whether they were exactly seq 0..n-1 in order)."""
    found, in_order = 0, True
    with open(log, "rb") as fh:
        for line in fh:
            match = _SEQ_BYTES.search(line)
            if match is not None:
                in_order = in_order and int(match.group(1)) == found
                found += 1
    return found, in_order


# -- the supervisor ---------------------------------------------------------


class ReplaySupervisor(supervisor.Supervisor):
    """The real supervisor's stopping, watching and output; only the source of events differs."""

    def run(self) -> None:
        status, rc, error = "successful", 0, None
        try:
            self.files = AttemptFiles(Path(self.config["dir"]))
            if self.reason is None:
                if not self.replay(events_for(self.config), float(setting(self.config, "rate") or 0)):
                    status, rc = "canceled", 254  # what ansible-runner reports after a cancel
        except OSError as exc:
            status, rc, error = "error", None, f"cannot write the attempt's files: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 - a broken recording ends the job visibly
            status, rc, error = "error", None, f"replay failed: {type(exc).__name__}: {exc}"
        self.runner_returned()
        self.finish(status, rc, error, set())

    def replay(self, events: Iterator[dict[str, Any]], rate: float) -> bool:
        """Send every event (False if stopped first), paced at `rate` per second when rate > 0."""
        go = setting(self.config, "go_file")
        while go and not os.path.exists(go):
            with self.cond:
                self.cond.wait(0.01)
            if self.reason is not None:
                return False
        start = time.monotonic()
        for n, event in enumerate(events):
            if self.reason is not None:
                return False
            if rate > 0:
                ahead = start + n / rate - time.monotonic()
                if ahead > 0:
                    with self.cond:
                        self.cond.wait(ahead)  # a stop request wakes us
                    if self.reason is not None:
                        return False
            self.on_event(event)  # the real path: events.jsonl + output.log, then trim_event to stdout
        return self.reason is None


def autogroup_nice(value: int) -> bool:
    """Where the kernel groups CPU time by session (sched_autogroup_enabled=1), a process's nice
    only ranks it within its session; a session leader can lower its whole session's share."""
    if os.getsid(0) != os.getpid():  # not our own session: never renice the caller's
        return False
    try:
        with open("/proc/self/autogroup", "w") as fh:
            fh.write(str(value))
        return True
    except OSError:
        return False


def main() -> int:
    nice = os.environ.get("PLAYDECK_REPLAY_AUTOGROUP_NICE")
    if nice:
        autogroup_nice(int(nice))
    # the real main (subreaper, PDEATHSIG, nice, signals, the command reader and the watcher),
    # running our class: this process only, never the console that imports this module
    supervisor.Supervisor = ReplaySupervisor  # type: ignore[misc]
    return supervisor.main()


if __name__ == "__main__":
    raise SystemExit(main())
