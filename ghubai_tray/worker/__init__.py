"""The worker: everything that runs on the asyncio loop (see :mod:`.worker`)."""

from ghubai_tray.worker.hub_supervisor import (
    BACKOFF_CAP,
    BACKOFF_FIRST,
    RECONNECT_SPREAD,
    backoff_delay,
    reconnect_delay,
)
from ghubai_tray.worker.requests import MAX_PENDING_REFUSALS, REQUEST_TARGETS
from ghubai_tray.worker.runtime import blocking_calls_pending, run_in_new_loop
from ghubai_tray.worker.worker import Worker, server_for

__all__ = ["BACKOFF_CAP", "BACKOFF_FIRST", "MAX_PENDING_REFUSALS", "RECONNECT_SPREAD",
           "REQUEST_TARGETS", "Worker", "backoff_delay", "blocking_calls_pending",
           "reconnect_delay", "run_in_new_loop", "server_for"]
