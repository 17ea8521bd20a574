"""Lambdas of the state machine's GPU loop: `submit` (POST /run), `poll` (GET /status), `finalize`."""

from typing import Any

from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.handlers.composition import gpu_client, pipeline_services
from voice_onboarding.observability import MetricUnit, logger, metrics, tracer
from voice_onboarding.services.gpu_jobs import runs


def _job(event: dict[str, Any]) -> PipelineJob:
    job = PipelineJob.model_validate(event["job"])
    logger.append_keys(job_id=job.job_id, kind=job.kind.value, stage=event.get("stage"))
    return job


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # the input holds presigned URLs
def submit(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = _job(event)
    services = pipeline_services()
    return runs.submit(services, gpu_client(services), job, event["stage"], event.get("heartbeat_seconds"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def poll(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = _job(event)
    services = pipeline_services()
    if event.get("task_token"):
        # The state machine's GpuAwait (.waitForTaskToken): register the token, check /status once.
        return runs.await_run(services, gpu_client(services), job, event["stage"], event["gpu"], event["task_token"])
    result = runs.poll(services, gpu_client(services), job, event["stage"], event["gpu"])
    if result["status"] in runs.FAILED_STATUSES:
        _emit("JobFailed", event["stage"], MetricUnit.Count, 1)
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = _job(event)
    services = pipeline_services()
    result = runs.finalize(services, job, event["stage"], event["gpu"])
    elapsed = runs.elapsed_seconds(services, event["stage"], event["gpu"])
    if elapsed is not None:
        _emit("JobDuration", event["stage"], MetricUnit.Seconds, elapsed)
    return result


def _emit(name: str, stage: str, unit: MetricUnit, value: float) -> None:
    # Flushed here rather than via log_metrics: most polls have no metric, and an empty flush warns.
    metrics.add_dimension(name="stage", value=stage)
    metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()
