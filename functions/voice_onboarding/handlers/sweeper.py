"""Scheduled Lambda: fail jobs stuck in_progress past their deadline, and finish interrupted
S3 cleanups (cleanup markers; see services/cleanup.py)."""

from typing import Any

from voice_onboarding.handlers.composition import pipeline_services
from voice_onboarding.observability import MetricUnit, logger, metrics, tracer
from voice_onboarding.services import cleanup
from voice_onboarding.services.sweeper import sweep


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    services = pipeline_services()  # the sweeper starts no job: no dispatcher
    failed = sweep(services)
    cleaned = cleanup.drain(services)
    metrics.add_metric(name="StuckJobsFailed", unit=MetricUnit.Count, value=len(failed))
    metrics.add_metric(name="OrphanedObjectsCleaned", unit=MetricUnit.Count, value=len(cleaned))
    return {"failed": failed, "cleaned": cleaned}
