"""Group commit for submissions: one writer thread turns concurrent submissions into one transaction.

Each commit costs a WAL write (and on PostgreSQL a round trip and a WAL flush); with many clients
submitting at once, paying it once per batch instead of once per job is what lets the API go past the
per-commit cost. A caller is answered only after the transaction holding its job has committed, so a 201
still means "durable" (see ``docs/control-plane.md``, Storage). Batches are as large as what queued up
while the previous one was committing (at most ``max_batch``): a lone submission is committed at once.

Under a steady stream that is not fast enough to queue up behind a commit (an open loop at 1,000/s, one
submission a millisecond), every batch would hold one or two jobs, and a transaction's fixed cost (on
SQLite about 0.4 ms of CPU, most of it the commit's WAL write, against 0.1 ms per job in a batch of 16)
would be paid per job. So when the writer finds a submission alone in its queue and the latest submission came
less than ``linger`` seconds after the one before it, it waits up to ``linger`` for more before it
commits; a submission after a quiet spell is still committed at once, and a backlog (a batch already) is
committed without waiting.

After a second with no submission, the writer adds the jobs not yet in SQLite's text index to it
(``SubmissionWrites.index_text``; under a stream, the submissions index them every ``TEXT_INDEX_EVERY``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelpool.storage.submissions import Submission, SubmissionWrites

log = logging.getLogger("accelpool.storage")

Result = tuple[str, bool] | Exception
Callback = Callable[[Result], None]
_STOP = object()


class SubmitBatcher:
    def __init__(
        self, store: SubmissionWrites, max_batch: int = 256, linger: float = 0.004, index_after: float = 1.0
    ) -> None:
        self.store, self.max_batch, self.linger = store, max_batch, linger
        self.index_after = index_after  # seconds without a submission before the text index catches up
        self._wrote = False  # jobs were queued since the text index last caught up
        self._q: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._last_put = float("-inf")
        self._gap = float("inf")  # seconds between the latest two submissions
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="accelpool-submit", daemon=True)
        self._thread.start()

    def put(self, item: Submission, done: Callback) -> None:
        """Queue ``item``; ``done`` is called from the writer thread with (job id, created) or the error."""
        if self._closed:
            raise RuntimeError("the store is closed")
        now = time.monotonic()
        self._gap, self._last_put = now - self._last_put, now
        self._q.put((item, done))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(_STOP)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                first = self._q.get(timeout=self.index_after if self._wrote else None)
            except queue.Empty:  # a quiet spell after submissions: bring the text index up to date
                self._wrote = False
                try:
                    self.store.index_text()
                except Exception:  # the next submissions index them (or the next quiet spell)
                    log.exception("indexing the new jobs' text failed")
                continue
            if first is _STOP:
                return
            batch = [first]
            until = 0.0
            while len(batch) < self.max_batch:
                try:
                    wait = until - time.monotonic()
                    nxt = self._q.get(timeout=wait) if wait > 0 else self._q.get_nowait()
                except queue.Empty:
                    # nothing queued behind the first: in a steady stream, wait a little for more (see the
                    # module's docstring); a backlog needs no wait, it is a batch already
                    if until == 0.0 and len(batch) == 1 and self._gap < self.linger:
                        until = time.monotonic() + self.linger
                        continue
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
            self._wrote = self._wrote or any(isinstance(r, tuple) and r[1] for r in results)
            for (_, done), r in zip(pairs, results, strict=True):
                try:
                    done(r)
                except Exception:  # a caller that went away must not stop the writer
                    log.exception("submission callback failed")
