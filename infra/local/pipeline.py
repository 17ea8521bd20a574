"""The deployed state machine on moto's Step Functions engine, with its Lambda tasks run in-process.

The definition is the ASL file template.yaml deploys, with template.yaml's `DefinitionSubstitutions`
applied as CloudFormation would: `!GetAtt <Function>.Arn` becomes a local function ARN (served by
`InProcessLambda`), `!Ref <Parameter>` the parameter's default unless overridden. Locally only
`GpuFallbackPollSeconds` is overridden (a shorter Wait between GPU polls).

Two moto internals are used (checked with moto 5.2.5, pinned in pyproject.toml;
tests/infra/test_local_pipeline.py fails loudly if an upgrade moves them):
- the seam moto's engine gets its Lambda client from: `boto_client_for` as imported by
  `...state_task.lambda_eval_utils`;
- `CallbackEndpoint.setup_heartbeat_endpoint`: moto sets up a task's heartbeat timer after the task's
  Lambda returned, so a SendTaskSuccess sent by that Lambda itself (the GPU wait's poll, when the run has
  already ended) never wakes a wait with HeartbeatSeconds, which then times out. On AWS the token takes
  the outcome at once; locally the new timer is woken when the outcome is already there.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from infra.cfn_template import REPO_ROOT, load_template, resources_of_type
from infra.local.lambdas import ACCOUNT_ID, InProcessLambda, function_arn

STATE_MACHINE_RESOURCE = "VoicePipeline"
STATE_MACHINE_NAME = "voice-pipeline"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/voice-pipeline-local"
# The GPU wait's heartbeat period locally (600 s deployed): the in-process worker beats every third of it
# and its webhook ends the wait, so this only bounds how long a silent or lost run goes unnoticed.
LOCAL_GPU_POLL_SECONDS = 30
TERMINAL_STATUSES = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}

# Which Lambda client moto's engine uses; None = moto's own (which would need Docker).
_lambda_client: InProcessLambda | None = None
_seam_lock = threading.Lock()
_installed = False


def _state_machine() -> dict[str, Any]:
    return resources_of_type("AWS::Serverless::StateMachine")[STATE_MACHINE_RESOURCE]["Properties"]


def definition_text(parameters: dict[str, Any] | None = None, region: str = "us-east-1") -> str:
    """The ASL of template.yaml's state machine with its DefinitionSubstitutions resolved locally."""
    machine = _state_machine()
    defaults = {name: spec.get("Default") for name, spec in load_template()["Parameters"].items()}
    values = {**defaults, **(parameters or {})}
    text = (REPO_ROOT / machine["DefinitionUri"]).read_text()
    for name, source in machine["DefinitionSubstitutions"].items():
        if isinstance(source, dict) and "Fn::GetAtt" in source:
            target = source["Fn::GetAtt"]
            logical_id, attribute = target.split(".", 1) if isinstance(target, str) else target
            if attribute != "Arn":
                raise ValueError(f"substitution {name}: only !GetAtt <Function>.Arn is supported locally")
            value = function_arn(logical_id, region)
        elif isinstance(source, dict) and "Ref" in source:
            value = values[source["Ref"]]
        else:
            value = source
        text = text.replace("${" + name + "}", str(value))
    return text


def create_state_machine(sfn: Any, parameters: dict[str, Any] | None = None, region: str = "us-east-1") -> str:
    """Create (or update to the current definition) the pipeline state machine; returns its ARN."""
    definition = definition_text(parameters, region)
    arn = f"arn:aws:states:{region}:{ACCOUNT_ID}:stateMachine:{STATE_MACHINE_NAME}"
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        return str(
            sfn.create_state_machine(name=STATE_MACHINE_NAME, definition=definition, roleArn=ROLE_ARN, type="STANDARD")[
                "stateMachineArn"
            ]
        )
    sfn.update_state_machine(stateMachineArn=arn, definition=definition)
    return arn


def _engine_boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    if service == "lambda" and _lambda_client is not None:
        return _lambda_client
    return _moto_boto_client_for(region=region, service=service, state_credentials=state_credentials)


def _seam() -> Any:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    if not callable(getattr(lambda_eval_utils, "boto_client_for", None)):
        raise RuntimeError(
            "moto moved the seam its Step Functions engine gets a Lambda client from "
            "(lambda_eval_utils.boto_client_for); see infra/local/pipeline.py"
        )
    return lambda_eval_utils


_moto_boto_client_for: Any = None


def _heartbeat_sees_early_outcome() -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = CallbackEndpoint.setup_heartbeat_endpoint
    if getattr(original, "_early_outcome", False):
        return

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()  # the task's own Lambda already resumed it
        return endpoint

    setup_heartbeat_endpoint._early_outcome = True  # type: ignore[attr-defined]
    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint


def install_lambda_client(client: InProcessLambda | None) -> None:
    """Route the engine's Lambda tasks to `client` (process-wide: the engine runs executions on its own
    threads). None restores moto's client."""
    global _lambda_client, _installed, _moto_boto_client_for
    with _seam_lock:
        if not _installed:
            _heartbeat_sees_early_outcome()
            module = _seam()
            _moto_boto_client_for = module.boto_client_for
            module.boto_client_for = _engine_boto_client_for
            _installed = True
        _lambda_client = client


@contextmanager
def lambda_client(client: InProcessLambda) -> Iterator[InProcessLambda]:
    previous = _lambda_client
    install_lambda_client(client)
    try:
        yield client
    finally:
        install_lambda_client(previous)


def enable_execution_on_server(endpoint_url: str) -> None:
    """Make a moto server execute state machines (its default only records executions)."""
    import httpx

    response = httpx.post(
        f"{endpoint_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
    )
    response.raise_for_status()


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
    """describe_execution once the execution has ended."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL_STATUSES:
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout} s")
        time.sleep(0.05)


def executions(sfn: Any, state_machine_arn: str, status: str | None = None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(**kwargs):
        found.extend(page["executions"])
    return found


def wait_idle(sfn: Any, state_machine_arn: str, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Wait until no execution of the machine runs; returns every execution, described."""
    deadline = time.monotonic() + timeout
    while executions(sfn, state_machine_arn, "RUNNING"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"executions of {state_machine_arn} still running after {timeout} s")
        time.sleep(0.05)
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in executions(sfn, state_machine_arn)]


def state_names(sfn: Any, execution_arn: str) -> list[str]:
    """The states an execution entered, in order (from get_execution_history, as an operator sees them)."""
    names: list[str] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        names.extend(e["stateEnteredEventDetails"]["name"] for e in page["events"] if "stateEnteredEventDetails" in e)
    return names


def execution_output(described: dict[str, Any]) -> Any:
    return json.loads(described["output"]) if described.get("output") else None


def start_local_pipeline(
    endpoint_url: str,
    region: str = "us-east-1",
    poll_seconds: int = LOCAL_GPU_POLL_SECONDS,
    lambdas: InProcessLambda | None = None,
) -> str:
    """On an in-process moto server: execute state machines, serve Lambda tasks with this checkout's
    handlers, create the pipeline. Returns the state machine ARN (the API's STATE_MACHINE_ARN)."""
    import boto3

    enable_execution_on_server(endpoint_url)
    install_lambda_client(lambdas or InProcessLambda())
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint_url, region_name=region)
    return create_state_machine(sfn, {"GpuFallbackPollSeconds": poll_seconds}, region)
