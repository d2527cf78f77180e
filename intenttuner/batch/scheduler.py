"""The runs of a batch spread over the servers: one worker thread per server, each taking the
next run from a shared queue, so every server runs one prompt at a time and a sweep keeps them
all busy.

A server that goes away mid-run is dropped, and its run goes back to the front of the queue
for another server; a worker whose queue is empty waits while runs are still in flight
elsewhere, since one may come back. When no server is left, the runs still queued fail with
the reasons. A run that fails on its server (rejected prompt, a node's error, the timeout) is
recorded with its error, and the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import IntentTunerError
from .client import ComfyClient, ServerLost
from .execute import execute_run
from .overrides import RunPlan
from .results import FAILED, SUCCESS, RunRecord, flatten_scores, save_record, start_run

log = logging.getLogger("intenttuner.batch")
PROGRESS_EVERY = 10.0  # seconds between two step-progress lines of one run (node lines: all)


class Scheduler:
    """Runs ``plans`` on ``servers``, writing each run's folder under ``out``."""

    def __init__(self, servers: list[ComfyClient], out: Path, timeout: float,
                 progress: bool = True):
        self.servers = servers
        self.out = out
        self.timeout = timeout
        self.level = logging.INFO if progress else logging.DEBUG
        self._lock = threading.Condition()
        self._pending: deque[RunPlan] = deque()
        self._in_flight = 0
        self.records: dict[str, RunRecord] = {}
        self.dropped: dict[str, str] = {}  # server url -> why it left the batch
        self._lost: dict[str, list[str]] = {}  # run id -> servers lost while it ran

    def run(self, plans: list[RunPlan]) -> dict[str, RunRecord]:
        """Every plan's record, by run id."""
        self._pending.extend(plans)
        workers = [threading.Thread(target=self._work, args=(server,), daemon=True,
                                    name=f"batch {server.url}") for server in self.servers]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for plan in self._pending:  # every server was lost
            self._finish(plan, self._not_run(plan))
        return self.records

    def _work(self, server: ComfyClient) -> None:
        while (plan := self._next()) is not None:
            try:
                record = self._run(server, plan)
            except ServerLost as exc:
                self._lose(server, plan, str(exc))
                return
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()
            self._finish(plan, record)

    def _next(self) -> RunPlan | None:
        """The next run to start; None once the queue is empty and nothing in flight can come
        back to it."""
        with self._lock:
            while not self._pending and self._in_flight:
                self._lock.wait()
            if not self._pending:
                return None
            self._in_flight += 1
            return self._pending.popleft()

    def _lose(self, server: ComfyClient, plan: RunPlan, why: str) -> None:
        with self._lock:
            self.dropped[server.url] = why
            self._lost.setdefault(plan.run_id, []).append(server.url)
            self._pending.appendleft(plan)  # next for whichever server is free first
            self._in_flight -= 1
            self._lock.notify_all()
        log.warning("server %s lost (%s): it leaves the batch; %s goes back to the queue",
                    server.url, why, plan.run_id)

    def _run(self, server: ComfyClient, plan: RunPlan) -> RunRecord:
        folder = start_run(self.out, plan.run_id, plan.prompt)
        name = _short(server.url)
        say = _Progress(f"[{name}] {plan.run_id}", self.level)
        say("started", force=True)
        start = time.monotonic()
        with self._lock:
            lost = list(self._lost.get(plan.run_id, []))
        record = RunRecord(plan.run_id, plan.values, server=server.url, lost_servers=lost)
        try:
            outcome = execute_run(server, plan, folder, self.timeout, say)
        except ServerLost:
            raise
        except IntentTunerError as exc:  # the server answered, but not as expected
            record.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one broken run must not stop the batch
            log.exception("%s: unexpected error", plan.run_id)
            record.error = f"{type(exc).__name__}: {exc}"
        else:
            record.prompt_id, record.error = outcome.prompt_id, outcome.error
            record.files = outcome.files
            if outcome.error is None:
                record.status = SUCCESS
                record.scores = flatten_scores(outcome.outputs)
        record.seconds = round(time.monotonic() - start, 3)
        return record

    def _finish(self, plan: RunPlan, record: RunRecord) -> None:
        save_record(self.out, record)
        with self._lock:
            self.records[plan.run_id] = record
        name = _short(record.server) if record.server else "-"
        if record.status == SUCCESS:
            log.log(self.level, "[%s] %s: success in %.1f s (%d file(s))", name,
                    record.run_id, record.seconds, len(record.files))
        else:
            first = (record.error or "").splitlines()[0] if record.error else ""
            log.warning("[%s] %s: failed: %s", name, record.run_id, first)

    def _not_run(self, plan: RunPlan) -> RunRecord:
        start_run(self.out, plan.run_id, plan.prompt)
        reasons = "; ".join(f"{url}: {why}" for url, why in self.dropped.items())
        return RunRecord(plan.run_id, plan.values, status=FAILED,
                         lost_servers=list(self._lost.get(plan.run_id, [])),
                         error=f"not run: no server is left ({reasons or 'none given'})")


class _Progress:
    """The progress lines of one run, prefixed by server and run id so lines of several
    servers read apart; step counts at most every `PROGRESS_EVERY` seconds."""

    def __init__(self, prefix: str, level: int):
        self.prefix, self.level = prefix, level
        self.last = 0.0

    def __call__(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        step = "/" in text.rsplit(" ", 1)[-1]
        if step and not force and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        log.log(self.level, "%s: %s", self.prefix, text)


def _short(url: str) -> str:
    return urlsplit(url).netloc or url
