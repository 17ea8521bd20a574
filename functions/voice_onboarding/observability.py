"""One Logger, Tracer and Metrics for every handler (powertools), so logs, traces and metrics share
the service name and namespace set by the template (POWERTOOLS_SERVICE_NAME / _METRICS_NAMESPACE)."""

import os
from functools import cached_property, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "voice-onboarding"


def tracing_active() -> bool:
    """powertools' own rule: traces are recorded only inside Lambda (not SAM local, not tests, not the
    local stack) unless POWERTOOLS_TRACE_DISABLED is set."""
    return not Tracer._is_tracer_disabled()


class LazyTracer:
    """A powertools Tracer built on first use. Building one imports the X-Ray SDK and creates its
    sampling client (~0.2 s of every cold start), which is wasted wherever tracing is off; where it is
    on, the first decorated handler builds it at import, as an eager Tracer would."""

    def __init__(self, service: str) -> None:
        self.service = service

    @cached_property
    def tracer(self) -> Tracer:
        return Tracer(service=self.service)

    def capture_lambda_handler(self, lambda_handler: Any = None, **options: Any) -> Any:
        if lambda_handler is None:
            return partial(self.capture_lambda_handler, **options)
        if not tracing_active():
            return lambda_handler  # a disabled Tracer records nothing either
        return self.tracer.capture_lambda_handler(lambda_handler, **options)

    def capture_method(self, method: Any = None, **options: Any) -> Any:
        if method is None:
            return partial(self.capture_method, **options)
        if not tracing_active():
            return method
        return self.tracer.capture_method(method, **options)

    def __getattr__(self, name: str) -> Any:
        # put_annotation, put_metadata, provider...: the real Tracer (imports the SDK on first use).
        return getattr(self.tracer, name)


logger = Logger(service=SERVICE)
tracer = LazyTracer(SERVICE)
# The template sets the namespace; local mode and scripts get the same one, so flushing never fails.
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VoiceOnboarding"))

__all__ = ["SERVICE", "MetricUnit", "logger", "metrics", "tracer", "tracing_active"]
