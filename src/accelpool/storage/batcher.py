"""Group commit for submissions: one writer thread turns concurrent submissions into one transaction.

Each commit costs a WAL write (and on PostgreSQL a round trip and a WAL flush); with many clients
submitting at once, paying it once per batch instead of once per job is what lets the API go past the
per-commit cost. A caller is answered only after the transaction holding its job has committed, so a 201
still means "durable" (see ``docs/control-plane.md``, Storage). Batches are as large as what queued up
while the previous one was committing (at most ``max_batch``): a lone submission is committed at once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelpool.storage.submissions import Submission, SubmissionWrites

log = logging.getLogger("accelpool.storage")

Result = tuple[str, bool] | Exception
Callback = Callable[[Result], None]
_STOP = object()


class SubmitBatcher:
    def __init__(self, store: SubmissionWrites, max_batch: int = 256) -> None:
        self.store, self.max_batch = store, max_batch
        self._q: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="accelpool-submit", daemon=True)
        self._thread.start()

    def put(self, item: Submission, done: Callback) -> None:
        """Queue ``item``; ``done`` is called from the writer thread with (job id, created) or the error."""
        if self._closed:
            raise RuntimeError("the store is closed")
        self._q.put((item, done))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(_STOP)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._q.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            pairs: list[tuple[Submission, Callback]] = batch  # type: ignore[assignment]
            items = [p[0] for p in pairs]
            results: list[Result]
            try:
                results = list(self.store.submit_many(items))
            except Exception as exc:  # the whole transaction failed: every caller hears it
                log.exception("submission batch of %d failed", len(items))
                results = [exc] * len(items)
            for (_, done), r in zip(pairs, results, strict=True):
                try:
                    done(r)
                except Exception:  # a caller that went away must not stop the writer
                    log.exception("submission callback failed")
