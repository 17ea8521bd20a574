"""One GPU run's lifetimes, all derived from its deadline, and its idempotency record.

RunPod counts a job's `ttl` from submission (queue time and execution both), and `executionTimeout`
from when a worker picks it up. The worker reads its inputs when it starts and writes its outputs
before it returns, so:

    queue budget      Q = QUEUE_TTL_SECONDS (cold starts pull a multi-GB image)
    deadline          D = the stage's deadline after submission (queue time included)
    executionTimeout  D - Q          a run that started late still ends by D
    ttl               D              RunPod drops the job when the pipeline gives up on it
    input URLs        Q + FETCH      valid until the latest moment a worker can start
    output URLs       D + UPLOAD     valid until the latest moment a worker can finish (clock skew margin)

A presigned URL also dies with the role session that signed it, whatever its expiry says, and a Lambda
role's session is not promised to last D. So the worker asks the API for each output's URL when it is
ready to upload (services/gpu_jobs/callbacks.py), signed then and valid for UPLOAD_URL_SECONDS; the URLs
in its input are the fallback when the API cannot be reached.

Heartbeat: with H the state machine's HeartbeatSeconds, the worker reports progress at least every H / 3;
a wait that hears nothing for H seconds ends, and its poll fails a run RunPod still calls IN_PROGRESS
whose worker has been silent for H (a dead worker is caught after H to 2H, not at D).
"""

from dataclasses import dataclass
from enum import StrEnum

QUEUE_TTL_SECONDS = 10 * 60
FETCH_MARGIN_SECONDS = 5 * 60
UPLOAD_MARGIN_SECONDS = 5 * 60
# A URL the worker asks for at upload time: one upload of one output.
UPLOAD_URL_SECONDS = 15 * 60
# The state machine's GpuHeartbeatSeconds parameter default (template.yaml), for a submit that got none.
DEFAULT_HEARTBEAT_SECONDS = 600
# SigV4 presigned URLs cannot outlive 7 days, nor RunPod's ttl.
MAX_URL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class RunLifetimes:
    deadline_seconds: int
    queue_ttl_seconds: int = QUEUE_TTL_SECONDS

    def __post_init__(self) -> None:
        if self.deadline_seconds <= self.queue_ttl_seconds:
            raise ValueError("a GPU deadline must leave time to execute after the queue budget")

    @property
    def execution_timeout_seconds(self) -> int:
        return self.deadline_seconds - self.queue_ttl_seconds

    @property
    def ttl_seconds(self) -> int:
        return self.deadline_seconds

    @property
    def input_url_seconds(self) -> int:
        return min(self.queue_ttl_seconds + FETCH_MARGIN_SECONDS, MAX_URL_SECONDS)

    @property
    def output_url_seconds(self) -> int:
        return min(self.deadline_seconds + UPLOAD_MARGIN_SECONDS, MAX_URL_SECONDS)

    def runpod_policy(self) -> dict[str, int]:
        """The `policy` of a RunPod `/run` request (milliseconds)."""
        return {"executionTimeout": self.execution_timeout_seconds * 1000, "ttl": self.ttl_seconds * 1000}


class RunState(StrEnum):
    SUBMITTING = "submitting"  # claimed; /run in flight or its outcome unknown
    SUBMITTED = "submitted"  # RunPod answered with a run id
    FINISHED = "finished"  # the execution was resumed with the run's outcome (webhook, poll or cancel)
