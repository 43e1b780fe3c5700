"""The supervisor's pipe to the engine: events go in batches, in order, and nothing waits behind the end."""

from __future__ import annotations

import json
import threading
import time

from tui.core.running import supervisor


class Recorder:
    """A stand-in for the pipe: what was written, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self.lock:
            self.writes.append(data)
        return len(data)

    def flush(self) -> None:
        pass


def lines(recorder: Recorder) -> list[dict]:
    return [json.loads(line) for data in recorder.writes for line in data.splitlines()]


def test_events_travel_in_batches_and_the_end_flushes_them_in_order():
    out = Recorder()
    sup = supervisor.Supervisor({}, out)  # type: ignore[arg-type]
    for n in range(5):
        sup.emit({"t": "ev", "counter": n}, now=False)
    assert out.writes == []  # waiting for company
    sup.emit({"t": "end", "status": "successful"})
    assert len(out.writes) == 1  # one write, so one wake-up of the engine
    assert [m.get("counter") for m in lines(out)] == [0, 1, 2, 3, 4, None]
    assert lines(out)[-1]["t"] == "end"


def test_a_lone_event_is_not_held_for_long():
    out = Recorder()
    sup = supervisor.Supervisor({}, out)  # type: ignore[arg-type]
    sup.emit({"t": "ev", "counter": 1}, now=False)
    deadline = time.monotonic() + 5
    while not out.writes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lines(out) == [{"t": "ev", "counter": 1}]


def test_a_big_batch_goes_at_once():
    out = Recorder()
    sup = supervisor.Supervisor({}, out)  # type: ignore[arg-type]
    sup.emit({"t": "ev", "stdout": "x" * supervisor.BATCH_BYTES}, now=False)
    assert len(out.writes) == 1
