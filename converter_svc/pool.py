"""A process pool that survives its workers: a crashed worker fails one task, not the service."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from converter_svc.worker_process import ConversionOutcome, ConversionTask, convert, init_worker

log = logging.getLogger(__name__)


class WorkerCrashedError(RuntimeError):
    """The worker process died during the task (e.g. a decoder crash); the task may be retried."""


class ConversionPool:
    def __init__(self, *, mongo_uri: str, workers: int, environ: Mapping[str, str]) -> None:
        self._mongo_uri = mongo_uri
        self._workers = workers
        self._environ = dict(environ)
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            # spawn: a clean interpreter, no inherited pymongo/pika sockets or locks
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self._mongo_uri, self._environ),
        )

    def run(self, task: ConversionTask) -> ConversionOutcome:
        """Runs one conversion in a worker process and waits for it (blocking the caller)."""
        with self._lock:
            executor = self._executor
        try:
            return executor.submit(convert, task).result()
        except BrokenProcessPool as exc:
            with self._lock:
                if self._executor is executor:
                    log.error("a conversion worker died; starting a new pool")
                    self._executor = self._new_executor()
            raise WorkerCrashedError(f"the conversion worker died on job {task.job_id}") from exc

    def shutdown(self) -> None:
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=True)
