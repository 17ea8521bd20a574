"""Lambda: status transitions of the state machine (`start_embedding` after a split, `fail` from every Catch)."""

from typing import Any

from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.handlers.composition import pipeline_services
from voice_onboarding.observability import MetricUnit, logger, metrics, tracer
from voice_onboarding.services import job_status


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = PipelineJob.model_validate(event["job"])
    logger.append_keys(job_id=job.job_id, kind=job.kind.value)
    action = event.get("action")
    services = pipeline_services()
    if action == "start_embedding":
        return job_status.start_embedding(services, job)
    if action == "fail":
        reason = job_status.fail_job(services, job, event.get("error"))
        # The full error (with any stack trace) goes to the logs; the voice gets the one-line reason.
        logger.error("pipeline job failed", extra={"reason": reason, "error": event.get("error")})
        metrics.add_dimension(name="kind", value=job.kind.value)
        metrics.add_metric(name="PipelineFailures", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()  # only this branch has a metric: no empty-metrics warning for the others
        return {"reason": reason}
    raise ValueError(f"unknown pipeline_status action {action!r}")
