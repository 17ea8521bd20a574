"""infra.local: the seam into moto's Step Functions engine, and the local stack's pipeline as the AWS CLI
sees it (a moto server in this process, executions run by moto's engine)."""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import boto3
import pytest
from infra.cfn_template import REPO_ROOT
from infra.local.lambdas import InProcessLambda
from infra.local.pipeline import (
    definition_text,
    install_lambda_client,
    start_local_pipeline,
    state_names,
    wait_for_execution,
)
from infra.local.ports import free_port

CHECKED_MOTO = "5.2.5"


def test_moto_is_pinned_to_the_version_whose_seam_was_checked() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert f"moto[server,dynamodb,s3,stepfunctions]=={CHECKED_MOTO}" in pyproject
    assert version("moto") == CHECKED_MOTO, "moto changed: re-check infra/local/pipeline.py's seam, then the pin"


def test_the_engine_gets_its_lambda_client_where_infra_local_replaces_it() -> None:
    """If this fails after a moto upgrade, moto moved the seam: the engine no longer asks
    lambda_eval_utils.boto_client_for for its Lambda client (see infra/local/pipeline.py)."""
    from moto import mock_aws
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    assert callable(lambda_eval_utils.boto_client_for), "moto moved lambda_eval_utils.boto_client_for"
    seen: list[dict[str, Any]] = []
    lambdas = InProcessLambda({"PipelineStatusFunction": lambda event, context: seen.append(event) or {"ok": True}})
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "PipelineStatusFunction", "Payload": {"n.$": "$.n"}},
                "ResultSelector": {"ok.$": "$.Payload.ok"},
                "End": True,
            }
        },
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="seam", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        install_lambda_client(lambdas)
        try:
            execution = sfn.start_execution(stateMachineArn=arn, name="seam-1", input='{"n": 7}')["executionArn"]
            described = wait_for_execution(sfn, execution, timeout=30)
        finally:
            install_lambda_client(None)
    assert seen == [{"n": 7}], f"the engine did not call the in-process Lambda client: {described}"
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"ok": True}


def test_local_definition_is_the_deployed_one_with_local_substitutions() -> None:
    text = definition_text({"GpuFallbackPollSeconds": 2})
    assert "${" not in text
    definition = json.loads(text)
    deployed = json.loads((REPO_ROOT / "infra/statemachine/voice_pipeline.asl.json").read_text())
    assert definition.keys() == deployed.keys() and definition["States"].keys() == deployed["States"].keys()
    assert definition["States"]["GpuSubmit"]["Parameters"]["FunctionName"].endswith(":function:GpuSubmitFunction")
    assert "StringToJson('2')" in definition["States"]["Init"]["Parameters"]["config"]["heartbeat_seconds.$"]


@pytest.fixture
def moto_server() -> Iterator[str]:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = dict(default_user_config["stepfunctions"])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        install_lambda_client(None)
        default_user_config["stepfunctions"] = saved
        server.stop()


def _gpu_run(status: str) -> Any:
    return lambda event, context: {"run_id": "r1", "status": status, "deadline": None, "output": {}, "error": None}


def test_local_stack_executions_are_visible_to_the_aws_api(moto_server: str) -> None:
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )

    def run_ended(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # The GPU wait's Lambda: the run is over, so it resumes the execution's task token itself.
        outcome = {**event["gpu"], "status": "COMPLETED", "output": {}, "error": None}
        sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(outcome))
        return {"waiting": False}

    lambdas = InProcessLambda(
        {
            "GpuSubmitFunction": _gpu_run("IN_QUEUE"),
            "GpuPollFunction": run_ended,
            "GpuFinalizeFunction": lambda event, context: {},
        }
    )
    arn = start_local_pipeline(moto_server, poll_seconds=60, lambdas=lambdas)
    job = {"job_id": "j1", "kind": "embed", "partner": "p", "name": "v", "voice_id": "vid", "params": {}}
    execution = sfn.start_execution(stateMachineArn=arn, name="embed-j1", input=json.dumps(job))["executionArn"]
    assert wait_for_execution(sfn, execution, timeout=60)["status"] == "SUCCEEDED"
    assert list(lambdas.invocations) == ["GpuSubmitFunction", "GpuPollFunction", "GpuFinalizeFunction"]

    [listed] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert listed["name"] == "embed-j1" and listed["status"] == "SUCCEEDED"
    assert state_names(sfn, execution)[-4:] == ["GpuAwait", "GpuCheck", "GpuFinalize", "Done"]

    aws = shutil.which("aws")
    if aws:  # the README's commands, as a user runs them
        history = subprocess.run(
            [aws, "--endpoint-url", moto_server, "stepfunctions", "get-execution-history"]
            + ["--execution-arn", execution],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
            timeout=60,
        )
        assert "GpuFinalize" in history.stdout
