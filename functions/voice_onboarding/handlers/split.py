"""Lambda `split` (a Step Functions task): event {"job": VoiceJob} -> {"sample_count": n}.

A SplitError propagates with its type name, so the state machine's Catch routes it to the failure
handler (and its Retry never repeats it), which stores its message as the user-facing reason."""

from collections.abc import Callable
from typing import Any

from voice_onboarding.domain.jobs import VoiceJob
from voice_onboarding.handlers.composition import pipeline_services
from voice_onboarding.observability import MetricUnit, logger, metrics, tracer
from voice_onboarding.services.container import Services
from voice_onboarding.services.splitting import run_split

Splitter = Callable[[Services, VoiceJob], int]


def process(event: dict[str, Any], services: Services, split: Splitter = run_split) -> dict[str, Any]:
    """The handler's work, with its collaborators injectable (tests pass moto services or a fake split)."""
    job = VoiceJob.model_validate(event["job"])
    logger.append_keys(job_id=job.job_id, voice=job.name, partner=job.partner)
    count = split(services, job)
    metrics.add_metric(name="SamplesProduced", unit=MetricUnit.Count, value=count)
    return {"sample_count": count}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Shared with the other pipeline handlers: build_services() once per warm Lambda (module-level
    # cache, no job dispatcher), overridable by the local harness and tests via composition.override().
    return process(event, pipeline_services())
