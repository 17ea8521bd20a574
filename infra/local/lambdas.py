"""The Lambda functions of template.yaml, invoked in-process.

moto's Step Functions engine runs `arn:aws:states:::lambda:invoke` tasks through a boto3 Lambda client
(moto itself would need Docker to run a function). `InProcessLambda` is a client with the one method the
engine calls, `invoke(FunctionName=..., Payload=...)`, answering as Lambda's Invoke API does: the handler's
JSON result as a byte stream, or `FunctionError: "Unhandled"` with `{"errorType", "errorMessage",
"stackTrace"}` when the handler raises (the engine turns that into the Task error `errorType`, which the
state machine's Retry/Catch match).
"""

import importlib
import io
import json
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from infra.cfn_template import load_template, resources_of_type

logger = Logger(service="voice-onboarding", child=True)

ACCOUNT_ID = "123456789012"  # moto's default account
Handler = Callable[[dict[str, Any], Any], Any]


def function_arn(logical_id: str, region: str = "us-east-1") -> str:
    """The ARN a local function gets (SAM would name it `<stack>-<LogicalId>-<suffix>`)."""
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{logical_id}"


def template_functions() -> dict[str, dict[str, Any]]:
    """Logical id -> {"handler": dotted path, "timeout": seconds} for every function in template.yaml."""
    default_timeout = load_template()["Globals"]["Function"].get("Timeout", 3)
    return {
        logical_id: {
            "handler": resource["Properties"]["Handler"],
            "timeout": resource["Properties"].get("Timeout", default_timeout),
        }
        for logical_id, resource in resources_of_type("AWS::Serverless::Function").items()
    }


def resolve_handler(dotted: str) -> Handler:
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
        return function_arn(self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        if self.timeout_seconds is None:
            return 900_000
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def lambda_error_payload(error: BaseException) -> dict[str, Any]:
    """What the Python Lambda runtime returns for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": uuid.uuid4().hex,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


class InProcessLambda:
    """A Lambda client whose functions are this checkout's handlers, mapped by template.yaml's logical ids.

    `overrides` replaces a handler by logical id (tests inject failures or slow steps this way).
    """

    def __init__(self, overrides: dict[str, Handler] | None = None) -> None:
        self.functions = template_functions()
        self.overrides: dict[str, Handler] = dict(overrides or {})
        # Logical ids, in call order; the latest ones only, so a long-running stack does not grow it forever.
        self.invocations: deque[str] = deque(maxlen=1000)

    def _logical_id(self, function_name: str) -> str:
        # An ARN (…:function:Name[:qualifier]) or a bare name.
        name = function_name.split(":function:", 1)[-1].split(":", 1)[0]
        if name not in self.functions:
            raise LookupError(f"no function {name!r} in template.yaml")
        return name

    def invoke(self, FunctionName: str, Payload: bytes | str | None = None, **_: Any) -> dict[str, Any]:
        logical_id = self._logical_id(FunctionName)
        self.invocations.append(logical_id)
        spec = self.functions[logical_id]
        event = json.loads(Payload or b"{}")
        try:
            handler = self.overrides.get(logical_id) or resolve_handler(spec["handler"])
            result = handler(event, LocalLambdaContext(logical_id, spec["timeout"]))
            body, function_error = json.dumps(result).encode(), None
        except Exception as error:  # noqa: BLE001 (the Lambda runtime reports every exception the same way)
            body, function_error = json.dumps(lambda_error_payload(error)).encode(), "Unhandled"
        finally:
            # One process hosts every "Lambda" locally: keep this task's log keys (function_name, job_id)
            # out of the log lines that follow on this thread.
            logger.clear_state()
        response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": io.BytesIO(body)}
        if function_error:
            response["FunctionError"] = function_error
        return response
