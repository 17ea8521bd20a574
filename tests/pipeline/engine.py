"""The pipeline on moto's Step Functions engine, for tests: the deployed ASL (template substitutions),
StartExecution through the API's real dispatcher, Lambda tasks served in-process by infra.local."""

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from infra.local.lambdas import Handler, InProcessLambda
from infra.local.pipeline import create_state_machine, execution_output, state_names, wait_for_execution, wait_idle

from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.services.container import Services


@dataclass
class Execution:
    arn: str
    status: str
    states: list[str]
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]


@dataclass
class Engine:
    services: Services
    sfn: Any
    arn: str
    lambdas: InProcessLambda
    # Retry intervals the engine asked for (tests do not sleep them).
    retry_sleeps: list[float] = field(default_factory=list)
    # Webhook URLs the in-process GPU worker called when its runs ended.
    webhooks: list[str] = field(default_factory=list)
    # Paths of the worker's callbacks (progress, upload-url), in call order.
    callbacks: list[str] = field(default_factory=list)
    # Upload URLs the API signed for workers at upload time.
    signed_urls: list[str] = field(default_factory=list)

    def override(self, logical_id: str, handler: Handler) -> None:
        """Serve one template function with `handler` (a failing or slow step)."""
        self.lambdas.overrides[logical_id] = handler

    def set_poll_seconds(self, seconds: int) -> None:
        """The GPU wait's heartbeat period (a wait that hears nothing for this long polls RunPod)."""
        create_state_machine(self.sfn, {"GpuFallbackPollSeconds": seconds})

    def start(self, job: PipelineJob) -> str:
        return self.services.dispatcher.start(job)

    def result(self, execution_arn: str, timeout: float = 300.0) -> Execution:
        described = wait_for_execution(self.sfn, execution_arn, timeout)
        history: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            history.extend(page["events"])
        return Execution(
            arn=execution_arn,
            status=described["status"],
            states=state_names(self.sfn, execution_arn),
            output=execution_output(described),
            error=described.get("error"),
            cause=described.get("cause"),
            history=history,
        )

    def run(self, job: PipelineJob, timeout: float = 300.0) -> Execution:
        """Start `job` as the API does and wait for its execution to end."""
        return self.result(self.start(job), timeout)

    def wait_idle(self, timeout: float = 900.0) -> list[dict[str, Any]]:
        return wait_idle(self.sfn, self.arn, timeout)


def record_retry_sleeps(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    """The engine sleeps a Retry's interval with time.sleep in retrier_decl: record it instead."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            sleeps.append(seconds)

    monkeypatch.setattr(retrier_decl, "time", _Time)


def shrink_timeout(monkeypatch: pytest.MonkeyPatch, declared: int, seconds: float) -> None:
    """Make every task whose definition says `TimeoutSeconds: declared` time out after `seconds`."""
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    original = TimeoutSeconds._eval_seconds

    def _eval_seconds(self: Any, env: Any) -> Any:
        return seconds if self.timeout_seconds == declared else original(self, env)

    monkeypatch.setattr(TimeoutSeconds, "_eval_seconds", _eval_seconds)


class Gate:
    """Blocks a handler until released (a step that hangs); release() at teardown unblocks leftovers."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()

    def wait(self, timeout: float = 30.0) -> None:
        self.entered.set()
        self._open.wait(timeout)

    def release(self) -> None:
        self._open.set()
