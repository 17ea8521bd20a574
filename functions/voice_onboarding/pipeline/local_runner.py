"""Local mode: run pipeline jobs in-process on a background thread (no Step Functions, no AWS).

The job walks the SAME ASL file the deployed state machine uses (`pipeline.asl` interprets it); each
Task's `FunctionName` substitution is mapped to the handler function SAM deploys under that name.
"""

import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from voice_onboarding.pipeline.asl import ExecutionResult, Interpreter, StatesError, lambda_error
from voice_onboarding.pipeline.jobs import PipelineJob
from voice_onboarding.settings import Settings

logger = Logger(service="voice-onboarding", child=True)

ASL_PATH = Path(__file__).resolve().parents[3] / "infra" / "statemachine" / "voice_pipeline.asl.json"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

# DefinitionSubstitutions of template.yaml -> the `Handler` of the function SAM deploys for it.
FUNCTION_HANDLERS: dict[str, str] = {
    "SplitFunctionArn": "voice_onboarding.handlers.split.handler",
    "GpuSubmitFunctionArn": "voice_onboarding.handlers.gpu_dispatch.submit",
    "GpuPollFunctionArn": "voice_onboarding.handlers.gpu_dispatch.poll",
    "GpuFinalizeFunctionArn": "voice_onboarding.handlers.gpu_dispatch.finalize",
    "PipelineStatusFunctionArn": "voice_onboarding.handlers.pipeline_status.handler",
}
_LOCAL_ARN = "arn:aws:lambda:local:000000000000:function:"


@cache
def _load_definition_text(path: Path) -> str:
    return path.read_text()


def load_definition(settings: Settings, path: Path = ASL_PATH) -> dict[str, Any]:
    """The ASL with its substitutions applied as SAM would, but pointing at local function names."""
    substitutions = {name: f"{_LOCAL_ARN}{name}" for name in FUNCTION_HANDLERS}
    substitutions["GpuPollIntervalSeconds"] = str(settings.gpu_poll_interval_seconds)
    text = _load_definition_text(path)
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    return dict(json.loads(text))


def resolve_handler(dotted: str) -> Callable[[dict[str, Any], Any], Any]:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]


@dataclass
class LocalLambdaContext:
    """The attributes powertools' inject_lambda_context reads from a real Lambda context."""

    function_name: str
    timeout_seconds: float | None = None
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"{_LOCAL_ARN}{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        if self.timeout_seconds is None:
            return 900_000
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def invoke_task(resource: str, parameters: Any, timeout: float | None) -> Any:
    """`lambda:invoke` locally: call the mapped handler; raise what Step Functions would report."""
    if resource != LAMBDA_INVOKE:
        raise StatesError("States.Runtime", f"resource {resource} is not supported locally")
    function = str(parameters["FunctionName"]).removeprefix(_LOCAL_ARN)
    if function not in FUNCTION_HANDLERS:
        raise StatesError("Lambda.ResourceNotFoundException", f"no local handler for {function}")
    try:
        handler = resolve_handler(FUNCTION_HANDLERS[function])
    except (ImportError, AttributeError) as error:
        # A handler that is not in this checkout fails its jobs with a clear reason, not a crash.
        raise StatesError(
            "Lambda.ResourceNotFoundException",
            json.dumps({"errorMessage": f"{FUNCTION_HANDLERS[function]} is not available: {error}"}),
        ) from error
    payload = json.loads(json.dumps(parameters.get("Payload", {})))  # JSON round trip, as over the wire
    try:
        result = handler(payload, LocalLambdaContext(function, timeout))
    except Exception as error:
        raise lambda_error(error) from error
    finally:
        # One process hosts every "Lambda" locally: keep this task's context keys (function_name,
        # job_id) out of the API's log lines that follow.
        logger.clear_state()
    return {"StatusCode": 200, "Payload": json.loads(json.dumps(result))}


def execute_job(job: PipelineJob, settings: Settings, sleep: Callable[[float], None] | None = None) -> ExecutionResult:
    """Walk the pipeline for `job` through the state machine definition, in this thread."""
    interpreter = Interpreter(load_definition(settings), invoke_task, wait_scale=settings.local_wait_scale)
    if sleep is not None:
        interpreter.sleep = sleep
    result = interpreter.run(job.model_dump(mode="json"), execution_name=f"{job.kind.value}-{job.job_id}")
    logger.info(
        "local pipeline finished",
        extra={"job_id": job.job_id, "status": result.status, "states": result.history, "error": result.error},
    )
    return result


class LocalDispatcher:
    # One worker: jobs are CPU-heavy and the laptop has few cores; they queue like a Step Functions
    # execution waiting for a Lambda slot would.
    def __init__(self, settings: Settings, max_workers: int = 1) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pipeline")
        self._lock = threading.Lock()
        self.results: dict[str, ExecutionResult] = {}

    def start(self, job: PipelineJob) -> str:
        self._executor.submit(self._run, job)
        return f"local:{job.job_id}"

    def _run(self, job: PipelineJob) -> None:
        try:
            result = execute_job(job, self.settings)
        except Exception as error:
            logger.exception("local pipeline job crashed", extra={"job_id": job.job_id})
            result = ExecutionResult("FAILED", error=type(error).__name__, cause=str(error))
        with self._lock:
            self.results[job.job_id] = result
        if result.status != "SUCCEEDED":
            # The state machine's failure handler normally did this already; it is conditional on the
            # stage still being in_progress, so repeating it is harmless and covers a crash of the
            # interpreter or of the failure handler itself.
            _mark_failed(job, result)

    def wait_idle(self) -> None:
        """Block until queued jobs finish (tests and shutdown)."""
        self._executor.submit(lambda: None).result()


def _mark_failed(job: PipelineJob, result: ExecutionResult) -> None:
    from voice_onboarding.pipeline import status
    from voice_onboarding.pipeline.context import pipeline_services

    # The Fail state keeps the execution data: prefer the error the failure handler was given.
    error = (result.output or {}).get("error") if isinstance(result.output, dict) else None
    try:
        status.fail_job(pipeline_services(), job, error or {"Error": result.error, "Cause": result.cause})
    except Exception:
        logger.exception("could not mark a failed local job as failed", extra={"job_id": job.job_id})
