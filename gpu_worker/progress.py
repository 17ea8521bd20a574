"""Progress reporting: RunPod progress updates when running under RunPod, console log always."""

import logging
import os
from typing import Any

log = logging.getLogger("gpu_worker")


class Progress:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        # progress_update POSTs to RunPod's job-done URL; outside RunPod (local mode, tests,
        # --test_input) there is no such URL, so only log.
        self.remote = bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT")) and "id" in job

    def __call__(self, message: str) -> None:
        log.info("job %s: %s", self.job.get("id", "local"), message)
        if not self.remote:
            return
        try:
            import runpod

            runpod.serverless.progress_update(self.job, message)
        except Exception:
            log.warning("progress update failed", exc_info=True)
