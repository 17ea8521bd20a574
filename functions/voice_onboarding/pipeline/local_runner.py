"""Local mode: run pipeline jobs in-process on a background thread (no Step Functions, no AWS)."""

import threading
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Logger

from voice_onboarding.pipeline.jobs import PipelineJob
from voice_onboarding.settings import Settings

logger = Logger(service="voice-onboarding", child=True)


def execute_job(job: PipelineJob, settings: Settings) -> None:
    """Walk the pipeline for `job` with the same handlers the state machine calls."""
    raise NotImplementedError(f"the {job.kind.value} pipeline is not available in local mode yet")


class LocalDispatcher:
    # One worker: jobs are CPU-heavy and the laptop has few cores; they queue like a Step Functions
    # execution waiting for a Lambda slot would.
    def __init__(self, settings: Settings, max_workers: int = 1) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pipeline")
        self._lock = threading.Lock()

    def start(self, job: PipelineJob) -> str:
        self._executor.submit(self._run, job)
        return f"local:{job.job_id}"

    def _run(self, job: PipelineJob) -> None:
        try:
            execute_job(job, self.settings)
        except Exception as error:
            logger.exception("local pipeline job failed", extra={"job_id": job.job_id})
            _mark_failed(job, self.settings, str(error))

    def wait_idle(self) -> None:
        """Block until queued jobs finish (tests and shutdown)."""
        self._executor.submit(lambda: None).result()


def _mark_failed(job: PipelineJob, settings: Settings, reason: str) -> None:
    from voice_onboarding.domain.voice import JobStatus
    from voice_onboarding.services.container import build_services

    services = build_services(settings, dispatcher=_NoDispatch())
    voice = services.voices.get(job.partner, job.name)
    if voice is None:
        return
    for status_field in ("splitting", "embedding"):
        if getattr(voice, f"{status_field}_status") == JobStatus.IN_PROGRESS:
            services.voices.finish_job(job.partner, job.name, status_field, JobStatus.FAILED, error=reason[:500])


class _NoDispatch:
    def start(self, job: PipelineJob) -> str:
        raise RuntimeError("dispatch from inside a pipeline step is not allowed")
