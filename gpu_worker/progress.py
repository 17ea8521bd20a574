"""Progress reporting: RunPod progress updates when running under RunPod, the API's progress callback
(the run's heartbeat, shown on the voice or speaker) when the job has one, console log always."""

import logging
import os
from typing import Any

from gpu_worker.callback import Callback, JobCancelled

log = logging.getLogger("gpu_worker")


class Progress:
    def __init__(self, job: dict[str, Any], callback: Callback | None = None) -> None:
        self.job = job
        self.callback = callback
        # progress_update POSTs to RunPod's job-done URL; outside RunPod (local mode, tests,
        # --test_input) there is no such URL, so only log.
        self.remote = bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT")) and "id" in job

    def __call__(self, message: str) -> None:
        log.info("job %s: %s", self.job.get("id", "local"), message)
        if self.callback is not None:
            if self.callback.cancelled:
                # The API said the run is over (a user cancelled it): stop before the next step, so a
                # cancelled training frees its GPU instead of running to its end.
                raise JobCancelled("cancelled")
            self.callback.progress(message)
        if not self.remote:
            return
        try:
            import runpod

            runpod.serverless.progress_update(self.job, message)
        except Exception:
            log.warning("progress update failed", exc_info=True)
