"""A small Amazon States Language interpreter: enough of ASL to run `voice_pipeline.asl.json` in-process.

Supported: Pass, Task, Choice, Wait, Succeed, Fail; InputPath, Parameters (with `.$` paths and the
intrinsics below), ResultSelector, ResultPath, OutputPath; Retry (IntervalSeconds, MaxAttempts,
BackoffRate, MaxDelaySeconds) and Catch; state and execution TimeoutSeconds. Anything else raises
`AslUnsupported` when the definition is loaded, so the local path never silently diverges from AWS.
Task invocation is injected: the runner decides what a Task's resource means.
"""

import copy
import json
import re
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

STATE_TYPES = {"Pass", "Task", "Choice", "Wait", "Succeed", "Fail"}
INTRINSICS = {"States.StringToJson", "States.Format", "States.JsonToString"}
CHOICE_OPERATORS = {
    "StringEquals",
    "BooleanEquals",
    "NumericEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "IsPresent",
    "IsNull",
}
_MISSING = object()


class AslUnsupported(ValueError):
    """The definition uses a feature this interpreter does not implement."""


class StatesError(Exception):
    """A state failed with an ASL error name (e.g. `States.Timeout`, or a Lambda's errorType)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


# (resource, parameters after path resolution, timeout seconds) -> task result
TaskInvoker = Callable[[str, Any, float | None], Any]


@dataclass
class ExecutionResult:
    status: str  # SUCCEEDED | FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[str] = field(default_factory=list)


# ---- JSONPath (the reference-path subset ASL allows: $, $.a.b, $.a[0]) --------------------------

_PATH_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")


def _path_parts(path: str) -> list[str | int]:
    if not path.startswith("$"):
        raise AslUnsupported(f"path must start with $: {path!r}")
    parts: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if not match:
            raise AslUnsupported(f"unsupported JSONPath {path!r}")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    return parts


def get_path(data: Any, path: str) -> Any:
    value = data
    for part in _path_parts(path):
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise StatesError("States.Runtime", f"path {path!r} does not exist in the state input")
    return value


def _has_path(data: Any, path: str) -> bool:
    try:
        get_path(data, path)
    except StatesError:
        return False
    return True


def set_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath semantics: None discards the result, `$` replaces the input, else merge at the path."""
    if path is None:
        return data
    parts = _path_parts(path)
    if not parts:
        return value
    root = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = root
    for part in parts[:-1]:
        if not isinstance(part, str):
            raise AslUnsupported(f"ResultPath with an index: {path!r}")
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[str(parts[-1])] = value
    return root


# ---- Parameters / ResultSelector templates, with intrinsic functions ----------------------------

_INTRINSIC = re.compile(r"^(States\.\w+)\((.*)\)$", re.DOTALL)


def _split_args(text: str) -> list[str]:
    args, depth, quoted, current = [], 0, False, ""
    for ch in text:
        if ch == "'" and not current.endswith("\\"):
            quoted = not quoted
        if not quoted and ch == "(":
            depth += 1
        if not quoted and ch == ")":
            depth -= 1
        if ch == "," and not quoted and depth == 0:
            args.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        args.append(current.strip())
    return args


def _intrinsic(expression: str, data: Any) -> Any:
    match = _INTRINSIC.match(expression.strip())
    if not match:
        raise AslUnsupported(f"not an intrinsic function: {expression!r}")
    name, raw_args = match.groups()
    args: list[Any] = []
    for arg in _split_args(raw_args):
        if arg.startswith("'"):
            args.append(arg[1:-1].replace("\\'", "'"))
        elif arg.startswith("$"):
            args.append(get_path(data, arg))
        elif arg.startswith("States."):
            args.append(_intrinsic(arg, data))
        else:
            args.append(json.loads(arg))
    if name == "States.StringToJson":
        return json.loads(args[0])
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.Format":
        template, values = str(args[0]), list(args[1:])
        return re.sub(r"\{\}", lambda _m: str(values.pop(0)), template)
    raise AslUnsupported(f"intrinsic {name} is not supported locally")


def resolve_template(template: Any, data: Any, context: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        resolved: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise AslUnsupported(f"{key} must be a path string")
                if value.startswith("$$"):
                    resolved[key[:-2]] = get_path(context, value[1:])
                elif value.startswith("$"):
                    resolved[key[:-2]] = get_path(data, value)
                else:
                    resolved[key[:-2]] = _intrinsic(value, data)
            else:
                resolved[key] = resolve_template(value, data, context)
        return resolved
    if isinstance(template, list):
        return [resolve_template(v, data, context) for v in template]
    return template


# ---- Choice ------------------------------------------------------------------------------------


def _rule_matches(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule:
        return all(_rule_matches(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(_rule_matches(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not _rule_matches(rule["Not"], data)
    variable = rule["Variable"]
    if "IsPresent" in rule:
        return _has_path(data, variable) == rule["IsPresent"]
    value = get_path(data, variable) if _has_path(data, variable) else _MISSING
    if value is _MISSING:
        # AWS fails the execution when a compared variable is absent.
        raise StatesError("States.Runtime", f"Choice variable {variable} is missing")
    if "IsNull" in rule:
        return (value is None) == rule["IsNull"]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    comparisons: dict[str, Callable[[Any], bool]] = {
        "StringEquals": lambda expected: isinstance(value, str) and value == expected,
        "BooleanEquals": lambda expected: isinstance(value, bool) and value == expected,
        "NumericEquals": lambda expected: number and value == expected,
        "NumericLessThan": lambda expected: number and value < expected,
        "NumericLessThanEquals": lambda expected: number and value <= expected,
        "NumericGreaterThan": lambda expected: number and value > expected,
        "NumericGreaterThanEquals": lambda expected: number and value >= expected,
    }
    for operator, compare in comparisons.items():
        if operator in rule:
            return compare(rule[operator])
    raise AslUnsupported(f"unsupported Choice rule {rule}")


# ---- Validation ----------------------------------------------------------------------------------


def _walk_rules(rule: dict[str, Any]) -> list[dict[str, Any]]:
    nested = rule.get("And") or rule.get("Or") or ([rule["Not"]] if "Not" in rule else [])
    return [rule, *[r for n in nested for r in _walk_rules(n)]]


def _walk_templates(template: Any) -> list[str]:
    """Every intrinsic-function expression used in a Parameters/ResultSelector template."""
    found: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str) and value.startswith("States."):
                found.append(value)
            else:
                found.extend(_walk_templates(value))
    elif isinstance(template, list):
        for value in template:
            found.extend(_walk_templates(value))
    return found


def transitions(state: dict[str, Any]) -> list[str]:
    """Every state name this state can move to (Next, Choices, Default, Catch)."""
    targets = [state["Next"]] if "Next" in state else []
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def validate(definition: dict[str, Any]) -> None:
    states = definition.get("States") or {}
    if definition.get("StartAt") not in states:
        raise AslUnsupported("StartAt names no state")
    for name, state in states.items():
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            raise AslUnsupported(f"{name}: state type {kind!r} is not supported locally")
        for target in transitions(state):
            if target not in states:
                raise AslUnsupported(f"{name}: transition to unknown state {target!r}")
        if kind not in ("Choice", "Succeed", "Fail") and "Next" not in state and not state.get("End"):
            raise AslUnsupported(f"{name}: neither Next nor End")
        for choice in state.get("Choices", []):
            for rule in _walk_rules(choice):
                if "Variable" in rule and not CHOICE_OPERATORS & rule.keys():
                    raise AslUnsupported(f"{name}: unsupported Choice operator in {rule}")
        for template in (state.get("Parameters"), state.get("ResultSelector")):
            for expression in _walk_templates(template):
                match = _INTRINSIC.match(expression)
                if not match or match.group(1) not in INTRINSICS:
                    raise AslUnsupported(f"{name}: intrinsic {expression!r} is not supported locally")
        if kind == "Wait" and not ({"Seconds", "SecondsPath"} & state.keys()):
            raise AslUnsupported(f"{name}: only Seconds/SecondsPath waits are supported locally")


# ---- Execution -----------------------------------------------------------------------------------


def _matches(error_equals: list[str], error: str) -> bool:
    if "States.ALL" in error_equals:
        return True
    if "States.TaskFailed" in error_equals and error != "States.Timeout":
        return True
    return error in error_equals


class Interpreter:
    def __init__(
        self,
        definition: dict[str, Any],
        invoke: TaskInvoker,
        wait_scale: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        validate(definition)
        self.definition = definition
        self.invoke = invoke
        self.wait_scale = wait_scale
        self.sleep = sleep
        self.monotonic = monotonic

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.sleep(seconds * self.wait_scale)  # sleep(0) still yields to other threads

    def run(self, execution_input: Any, execution_name: str = "local") -> ExecutionResult:
        states = self.definition["States"]
        context = {"Execution": {"Name": execution_name, "Input": execution_input}}
        deadline = self.definition.get("TimeoutSeconds")
        started = self.monotonic()
        data = execution_input
        name = self.definition["StartAt"]
        history: list[str] = []
        while True:
            if deadline is not None and self.monotonic() - started > deadline:
                return ExecutionResult("FAILED", error="States.Timeout", cause="execution timed out", history=history)
            history.append(name)
            state = states[name]
            kind = state["Type"]
            if kind == "Succeed":
                return ExecutionResult("SUCCEEDED", output=self._output(state, data), history=history)
            if kind == "Fail":
                # `output` is not part of a failed execution on AWS; locally it keeps $.error for diagnosis.
                return ExecutionResult(
                    "FAILED", output=data, error=state.get("Error"), cause=state.get("Cause"), history=history
                )
            try:
                if kind == "Choice":
                    name = self._choose(state, data)
                    continue
                if kind == "Task":
                    data = self._task(state, data, context)
                elif kind == "Pass":
                    data = self._pass(state, data, context)
                elif kind == "Wait":
                    effective = self._input(state, data)
                    seconds = state.get("Seconds")
                    self._wait(float(get_path(effective, state["SecondsPath"]) if seconds is None else seconds))
                    data = self._output(state, data)
            except StatesError as error:
                target = self._catch(state, error)
                if target is None:
                    return ExecutionResult("FAILED", error=error.error, cause=error.cause, history=history)
                catcher_path, name = target
                data = set_path(data, catcher_path, {"Error": error.error, "Cause": error.cause})
                continue
            if state.get("End"):
                return ExecutionResult("SUCCEEDED", output=data, history=history)
            name = state["Next"]

    @staticmethod
    def _input(state: dict[str, Any], data: Any) -> Any:
        path = state.get("InputPath", "$")
        return {} if path is None else get_path(data, path)

    @staticmethod
    def _output(state: dict[str, Any], data: Any) -> Any:
        path = state.get("OutputPath", "$")
        return {} if path is None else get_path(data, path)

    def _effective(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        effective = self._input(state, data)
        if "Parameters" in state:
            effective = resolve_template(state["Parameters"], effective, context)
        return effective

    def _pass(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        result = state["Result"] if "Result" in state else self._effective(state, data, context)
        return self._output(state, set_path(data, state.get("ResultPath", "$"), result))

    def _choose(self, state: dict[str, Any], data: Any) -> str:
        effective = self._input(state, data)
        for choice in state["Choices"]:
            if _rule_matches(choice, effective):
                return str(choice["Next"])
        if "Default" not in state:
            raise StatesError("States.NoChoiceMatched", "no Choice rule matched and there is no Default")
        return str(state["Default"])

    def _task(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        effective = self._effective(state, data, context)
        attempts: dict[int, int] = {}
        while True:
            try:
                result = self._invoke_with_timeout(state, effective)
                break
            except StatesError as error:
                delay = self._retry_delay(state, error, attempts)
                if delay is None:
                    raise
                self._wait(delay)
        if "ResultSelector" in state:
            result = resolve_template(state["ResultSelector"], result, context)
        return self._output(state, set_path(data, state.get("ResultPath", "$"), result))

    def _invoke_with_timeout(self, state: dict[str, Any], effective: Any) -> Any:
        timeout = state.get("TimeoutSeconds")
        if timeout is None:
            return self.invoke(state["Resource"], effective, None)
        # The task runs on its own thread so a hung handler still times out like on AWS; the thread
        # itself cannot be killed and finishes in the background (its writes are conditional).
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asl-task")
        try:
            future = pool.submit(self.invoke, state["Resource"], effective, float(timeout))
            return future.result(timeout=float(timeout))
        except FutureTimeout:
            raise StatesError("States.Timeout", f"task timed out after {timeout} seconds") from None
        finally:
            pool.shutdown(wait=False)

    @staticmethod
    def _retry_delay(state: dict[str, Any], error: StatesError, attempts: dict[int, int]) -> float | None:
        for i, retrier in enumerate(state.get("Retry", [])):
            if not _matches(retrier["ErrorEquals"], error.error):
                continue
            count = attempts.get(i, 0)
            if count >= retrier.get("MaxAttempts", 3):
                return None
            attempts[i] = count + 1
            delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** count
            return float(min(delay, retrier.get("MaxDelaySeconds", delay)))
        return None

    @staticmethod
    def _catch(state: dict[str, Any], error: StatesError) -> tuple[str | None, str] | None:
        for catcher in state.get("Catch", []):
            if _matches(catcher["ErrorEquals"], error.error):
                return catcher.get("ResultPath", "$"), str(catcher["Next"])
        return None


def lambda_error(exc: BaseException) -> StatesError:
    """What Step Functions reports when a Lambda raises: Error = errorType, Cause = the error JSON
    (with its stack trace, as on AWS, so the failure handler must cope with one)."""
    error_type = type(exc).__name__
    cause = {
        "errorMessage": str(exc),
        "errorType": error_type,
        "stackTrace": traceback.format_exception(exc)[-5:],
    }
    return StatesError(error_type, json.dumps(cause))
