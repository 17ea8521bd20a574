"""Scheduled Lambda: fail jobs stuck in_progress past their deadline, and finish interrupted
S3 cleanups (cleanup markers; see services/cleanup.py)."""

from typing import Any

from voice_onboarding.observability import MetricUnit, logger, metrics, tracer
from voice_onboarding.services import cleanup
from voice_onboarding.services.container import Services, build_services
from voice_onboarding.services.sweeper import sweep

_services: Services | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _services
    _services = _services or build_services()
    failed = sweep(_services)
    cleaned = cleanup.drain(_services)
    metrics.add_metric(name="StuckJobsFailed", unit=MetricUnit.Count, value=len(failed))
    metrics.add_metric(name="OrphanedObjectsCleaned", unit=MetricUnit.Count, value=len(cleaned))
    return {"failed": failed, "cleaned": cleaned}
