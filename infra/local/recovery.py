"""What the deployed stack gets from AWS and the embedded one must do itself after a crash:

- jobs left `in_progress` by a dead local process (their executions lived in that process) are failed
  on start with a reason, so the voice or speaker unlocks and the job can be started again;
- the sweeper Lambda runs on the schedule template.yaml gives it (`rate(5 minutes)`).
"""

import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from infra.cfn_template import resources_of_type

log = logging.getLogger(__name__)

INTERRUPTED_REASON = "Interrupted: the local stack stopped while this job ran; start it again"
SWEEPER_RESOURCE = "SweeperFunction"
IN_PROGRESS = "in_progress"
JOB_OWNERS = ("voice", "speaker")  # items whose `<job>_status` fields are jobs
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def fail_interrupted_jobs(dynamodb: Any, table_name: str, reason: str = INTERRUPTED_REASON) -> list[str]:
    """Fail every job `in_progress` in the table (call before anything can start a new one). A job is
    a voice or speaker attribute `<job>_status`; failing it sets `<job>_error` and clears `progress`,
    as the sweeper does. Returns `PK/SK:<job>` of each."""
    failed: list[str] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name):
        for item in page.get("Items", []):
            if item.get("entity", {}).get("S") not in JOB_OWNERS:
                continue
            for attribute, value in item.items():
                if attribute.endswith("_status") and value.get("S") == IN_PROGRESS:
                    if _fail(dynamodb, table_name, item, attribute.removesuffix("_status"), reason):
                        failed.append(f"{item['PK']['S']}/{item['SK']['S']}:{attribute.removesuffix('_status')}")
    if failed:
        log.warning("failed %d job(s) interrupted by the last stop: %s", len(failed), ", ".join(failed))
    return failed


def _fail(dynamodb: Any, table_name: str, item: dict[str, Any], job: str, reason: str) -> bool:
    try:
        dynamodb.update_item(
            TableName=table_name,
            Key={"PK": item["PK"], "SK": item["SK"]},
            # version: the optimistic-lock guard of read-modify-write callers; every write bumps it.
            UpdateExpression="SET #status = :failed, #error = :reason, #version = if_not_exists(#version, :zero) + :one"
            " REMOVE progress",
            ConditionExpression="#status = :in_progress",
            ExpressionAttributeNames={"#status": f"{job}_status", "#error": f"{job}_error", "#version": "version"},
            ExpressionAttributeValues={
                ":failed": {"S": "failed"},
                ":reason": {"S": reason},
                ":in_progress": {"S": IN_PROGRESS},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
            },
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def sweeper_interval_seconds() -> float:
    """The sweeper's schedule in template.yaml, as seconds between runs."""
    events = resources_of_type("AWS::Serverless::Function")[SWEEPER_RESOURCE]["Properties"]["Events"]
    for event in events.values():
        if event.get("Type") == "Schedule":
            match = _RATE.fullmatch(event["Properties"]["Schedule"])
            if not match:
                raise ValueError(f"unsupported sweeper schedule: {event['Properties']['Schedule']}")
            return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]
    raise ValueError(f"{SWEEPER_RESOURCE} has no Schedule event in template.yaml")


@dataclass
class LocalLambdaContext:
    """The attributes powertools reads from a Lambda context."""

    function_name: str = "voice-onboarding-sweeper-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:voice-onboarding-sweeper-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class SweeperSchedule:
    """Invokes the sweeper Lambda's handler in-process every `interval` seconds (first run after one
    interval, as a fresh EventBridge rule would)."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = sweeper_interval_seconds() if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def run_once(self) -> Any:
        from voice_onboarding.handlers import sweeper

        return sweeper.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, LocalLambdaContext())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # the next run retries, as the schedule would
                log.exception("local sweeper run failed")
