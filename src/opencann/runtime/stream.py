"""Streams and events.

A `Stream` is an in-order asynchronous queue of work run by its own worker thread; kernels release
the GIL while they run (ctypes calls do), so two streams run on two cores at once. An `Event`
marks a point in a stream: another stream can wait for it, the host can synchronise on it, and two
events give the time between them.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable


class StreamError(RuntimeError):
    """Work enqueued on a stream failed; raised at the next synchronisation, naming the work."""


class Stream:
    """An in-order queue of callables executed by a worker thread."""

    def __init__(self, device=None, name: str = "stream"):
        self.device = device
        self.name = name
        self._q: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._error_what = ""
        self._idle = threading.Condition()
        self._pending = 0
        self._worker = threading.Thread(target=self._loop, name=f"opencann-{name}", daemon=True)
        self._worker.start()

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, args, what = item
            if self._error is None:
                try:
                    fn(*args)
                except BaseException as e:  # noqa: BLE001 - reported at synchronize()
                    self._error, self._error_what = e, what
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def enqueue(self, fn: Callable, *args, what: str | None = None) -> None:
        """Run `fn(*args)` after everything enqueued before it. `what` names it in errors."""
        with self._idle:
            self._pending += 1
        self._q.put((fn, args, what or getattr(fn, "__name__", "work")))

    def query(self) -> bool:
        """True when all enqueued work has finished."""
        with self._idle:
            return self._pending == 0

    def synchronize(self) -> None:
        """Wait for all enqueued work; raise `StreamError` if any of it failed."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        if self._error is not None:
            err, what = self._error, self._error_what
            self._error = None
            raise StreamError(f"{self.name}: {what} failed: {type(err).__name__}: {err}") from err

    def wait_event(self, event: "Event") -> None:
        """Make later work on this stream wait until `event` has happened."""
        self.enqueue(event._done.wait, what=f"wait for {event.name}")

    def close(self) -> None:
        self._q.put(None)

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __repr__(self) -> str:
        return f"<Stream {self.name}>"


class Event:
    """A point in a stream's work, with the time it was reached."""

    def __init__(self, name: str = "event"):
        self.name = name
        self._done = threading.Event()
        self.timestamp: float | None = None

    def _mark(self) -> None:
        self.timestamp = time.perf_counter()
        self._done.set()

    def record(self, stream: Stream) -> None:
        """Happen once everything enqueued on `stream` so far has finished."""
        self._done.clear()
        self.timestamp = None
        stream.enqueue(self._mark, what=f"record {self.name}")

    def query(self) -> bool:
        return self._done.is_set()

    def synchronize(self, timeout: float | None = None) -> None:
        """Wait (on the host) until the event has happened."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"event {self.name} did not happen within {timeout} s")

    def elapsed_time(self, end: "Event") -> float:
        """Milliseconds from this event to `end` (both must have happened)."""
        self.synchronize()
        end.synchronize()
        return 1000.0 * (end.timestamp - self.timestamp)
