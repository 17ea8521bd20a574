"""Scheduled Lambda: fail jobs stuck in_progress past their deadline."""

import os
from typing import Any

from voice_onboarding.observability import MetricUnit, logger, metrics, tracer
from voice_onboarding.services.container import Services, build_services
from voice_onboarding.services.sweeper import DEFAULT_STALE_AFTER_SECONDS, sweep

_services: Services | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _services
    _services = _services or build_services()
    stale_after = float(os.environ.get("SWEEPER_STALE_AFTER_SECONDS", DEFAULT_STALE_AFTER_SECONDS))
    failed = sweep(_services, stale_after)
    metrics.add_metric(name="StuckJobsFailed", unit=MetricUnit.Count, value=len(failed))
    return {"failed": failed}
