"""The state machine definition: shape, error handling, and that every Task maps to a real handler."""

import json
import re
from typing import Any

import pytest
from infra.cfn_template import REPO_ROOT, resources_of_type
from infra.local.lambdas import resolve_handler, template_functions

MACHINE = resources_of_type("AWS::Serverless::StateMachine")["VoicePipeline"]["Properties"]
ASL_PATH = REPO_ROOT / MACHINE["DefinitionUri"]
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# DefinitionSubstitutions name -> the Handler of the template function it points at.
FUNCTION_HANDLERS = {
    name: template_functions()[source["Fn::GetAtt"].split(".")[0]]["handler"]
    for name, source in MACHINE["DefinitionSubstitutions"].items()
    if isinstance(source, dict) and "Fn::GetAtt" in source
}
DEFINITION: dict[str, Any] = json.loads(ASL_PATH.read_text())
STATES: dict[str, Any] = DEFINITION["States"]
TASKS = {name: s for name, s in STATES.items() if s["Type"] == "Task"}
FAILURE_HANDLER = "MarkFailed"
LAMBDA_TRANSIENT = {"Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.SdkClientException"}


def _function(state: dict[str, Any]) -> str:
    match = re.fullmatch(r"\$\{(\w+)\}", state["Parameters"]["FunctionName"])
    assert match, state["Parameters"]["FunctionName"]
    return match.group(1)


def _transitions(state: dict[str, Any]) -> list[str]:
    targets = [state["Next"]] if "Next" in state else []
    targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    return targets + ([state["Default"]] if "Default" in state else [])


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_transitions(STATES[name]))
    return seen


def test_every_state_is_reachable_from_the_start() -> None:
    assert _reachable(DEFINITION["StartAt"]) == set(STATES)


def test_first_state_moves_the_input_under_job() -> None:
    first = STATES[DEFINITION["StartAt"]]
    assert first["Type"] == "Pass" and first["Parameters"]["job.$"] == "$"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_invokes_a_mapped_importable_handler(name: str) -> None:
    state = TASKS[name]
    assert state["Resource"] in (LAMBDA_INVOKE, LAMBDA_INVOKE + ".waitForTaskToken")
    function = _function(state)
    assert function in FUNCTION_HANDLERS
    assert callable(resolve_handler(FUNCTION_HANDLERS[function]))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_has_timeout_retry_and_catch(name: str) -> None:
    state = TASKS[name]
    if name == "GpuAwait":  # heartbeats (period from the template parameter) bound it; the timeout is a backstop
        assert state["HeartbeatSecondsPath"] == "$.config.heartbeat_seconds"
        assert state["TimeoutSeconds"] >= 3 * 3600 + 600  # longer than any run's deadline (train_lora, 3 h + queue)
    else:
        assert 0 < state["TimeoutSeconds"] <= 960
    retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
    assert LAMBDA_TRANSIENT <= retried
    for retrier in state["Retry"]:
        assert retrier["BackoffRate"] >= 1.5 and retrier["MaxAttempts"] >= 2
    catch_all = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
    assert catch_all, f"{name} has no States.ALL catch"
    if name == FAILURE_HANDLER:
        assert STATES[catch_all[0]["Next"]]["Type"] == "Fail"
    else:
        assert catch_all[0] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILURE_HANDLER}


def test_split_errors_are_never_retried() -> None:
    for retrier in TASKS["Split"]["Retry"]:
        assert not {"SplitError", "States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"])


def test_failure_handler_marks_failed_then_fails_the_execution() -> None:
    handler = TASKS[FAILURE_HANDLER]
    assert FUNCTION_HANDLERS[_function(handler)] == "voice_onboarding.handlers.pipeline_status.handler"
    assert handler["Parameters"]["Payload"] == {"action": "fail", "job.$": "$.job", "error.$": "$.error"}
    assert STATES[handler["Next"]]["Type"] == "Fail"
    # Every path into the failure handler carries $.error: a Catch, or a Pass that builds one.
    for name, state in STATES.items():
        if state.get("Next") == FAILURE_HANDLER:
            assert state["Type"] == "Pass" and state["ResultPath"] == "$.error", name


def test_gpu_loop_terminal_statuses() -> None:
    check = STATES["GpuCheck"]
    routes: dict[str, str] = {}
    for choice in check["Choices"]:
        for rule in choice.get("Or", [choice]):
            assert rule["Variable"] == "$.gpu.status"
            routes[rule["StringEquals"]] = choice["Next"]
    assert routes == {
        "COMPLETED": "GpuFinalize",
        "FAILED": "GpuFailed",
        "CANCELLED": "GpuFailed",
        "TIMED_OUT": "GpuFailed",
    }
    assert check["Default"] == "GpuAwait" and STATES["GpuSubmit"]["Next"] == "GpuAwait"
    assert STATES["GpuFinalize"]["Next"] == "Done"


def test_gpu_wait_is_a_task_token_resumed_by_the_webhook_and_polled_slowly() -> None:
    wait = STATES["GpuAwait"]
    assert wait["Resource"].endswith(".waitForTaskToken")
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert FUNCTION_HANDLERS[_function(wait)] == "voice_onboarding.handlers.gpu_dispatch.poll"
    # A period with no heartbeat is not a failure: the state is entered again, and its poll decides (one
    # fallback poll per silent period). Nothing else ends the wait but the webhook or a poll.
    silent = ["States.HeartbeatTimeout", "States.Timeout"]
    timeout = {"ErrorEquals": silent, "ResultPath": "$.await_timeout", "Next": "GpuAwaitAgain"}
    assert wait["Catch"][0] == timeout and STATES["GpuAwaitAgain"]["Next"] == "GpuAwait"
    assert wait["ResultPath"] == "$.gpu" and wait["Next"] == "GpuCheck"
    # The worker learns the period from its submit (its keep-alive beats three times per period).
    assert STATES["GpuSubmit"]["Parameters"]["Payload"]["heartbeat_seconds.$"] == "$.config.heartbeat_seconds"


def test_substitutions_match_the_template() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    assert used == set(MACHINE["DefinitionSubstitutions"])
    assert used - {"GpuFallbackPollSeconds"} == set(FUNCTION_HANDLERS)


def test_every_allowed_heartbeat_period_deploys() -> None:
    """Step Functions refuses a HeartbeatSeconds not below the task's TimeoutSeconds: every value the
    template parameter allows stays below GpuAwait's backstop timeout, and leaves the worker's keep-alive
    (a third of the period) well above one request per 10 s."""
    from infra.cfn_template import load_template

    parameter = load_template()["Parameters"]["GpuFallbackPollSeconds"]
    assert parameter["MaxValue"] < STATES["GpuAwait"]["TimeoutSeconds"]
    assert parameter["MinValue"] / 3 >= 10 and parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]
