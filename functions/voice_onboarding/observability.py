"""One Logger, Tracer and Metrics for every handler (powertools), so logs, traces and metrics share
the service name and namespace set by the template (POWERTOOLS_SERVICE_NAME / _METRICS_NAMESPACE)."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "voice-onboarding"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
# The template sets the namespace; local mode and scripts get the same one, so flushing never fails.
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VoiceOnboarding"))

__all__ = ["SERVICE", "MetricUnit", "logger", "metrics", "tracer"]
