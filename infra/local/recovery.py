"""What the deployed stack gets from AWS and the embedded one must do itself after a crash:

- jobs left `in_progress` by a dead local process (their executions lived in that process) are resumed on
  start: the input of every execution is journaled on disk (`ExecutionJournal`), and a job is started
  again from the stage it was in (a split-and-embed that had finished splitting restarts as an embed job);
  a job with no journaled input (or whose stages no job kind runs) is failed with a reason, so the voice
  or speaker unlocks and the job can be started again;
- the sweeper Lambda runs on the schedule template.yaml gives it (`rate(5 minutes)`).
"""

import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cfn_template import resources_of_type
from infra.local.persistence import write_atomically
from voice_onboarding.domain.jobs import JobKind, PipelineJob, Stage

log = logging.getLogger(__name__)

INTERRUPTED_REASON = "Interrupted: the local stack stopped while this job ran; start it again"
SWEEPER_RESOURCE = "SweeperFunction"
IN_PROGRESS = "in_progress"
JOB_OWNERS = ("voice", "speaker")  # items whose `<job>_status` fields are jobs
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


JOURNAL_FILE = "executions.json"


class ExecutionJournal:
    """The input of the latest execution started for each voice or speaker, kept on disk (written
    atomically when the execution starts): moto's executions die with the process, their inputs stay here
    for the next start to resume from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._jobs: dict[str, dict[str, Any]] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            self._jobs = {}

    def record(self, execution_input: str) -> None:
        """Journal a StartExecution's input (anything that is not a pipeline job is ignored)."""
        try:
            job = PipelineJob.model_validate_json(execution_input)
        except ValueError:
            return
        with self._lock:
            self._jobs[job.owner_id] = job.model_dump(mode="json")
            write_atomically(self.path, json.dumps(self._jobs).encode())

    def job_for(self, owner_id: str) -> PipelineJob | None:
        entry = self._jobs.get(owner_id)
        return PipelineJob.model_validate(entry) if entry else None

    def keep_only(self, owner_ids: set[str]) -> None:
        """Forget the jobs of every other owner (ended, failed, or deleted since)."""
        with self._lock:
            self._jobs = {owner: job for owner, job in self._jobs.items() if owner in owner_ids}
            write_atomically(self.path, json.dumps(self._jobs).encode())


def resumed_job(job: PipelineJob, in_progress: set[Stage]) -> PipelineJob | None:
    """The job that runs what `job` had left: its stages from the first one still in progress, as the job
    kind made of exactly those stages (same owner and parameters, a new job id). None if no stage of
    `job` is in progress, one in progress is not its, or no kind runs those stages."""
    stages = job.kind.stages
    if not in_progress or not in_progress <= set(stages):
        return None
    remaining = stages[min(stages.index(stage) for stage in in_progress) :]
    kind = next((kind for kind in JobKind if kind.stages == remaining), None)
    if kind is None:
        return None
    return PipelineJob.model_validate({**job.model_dump(mode="json", exclude={"job_id"}), "kind": kind.value})


def resume_interrupted_jobs(services: Any, journal: ExecutionJournal) -> list[str]:
    """Start again every job a dead process left in progress whose input the journal has (call before
    anything can start a new job, then `fail_interrupted_jobs` for the rest). Returns `PK/SK:<kind>` of each."""
    from voice_onboarding.services import executions

    resumed: list[str] = []
    kept: set[str] = set()
    table = services.settings.table_name
    for page in services.dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            entity = item.get("entity", {}).get("S")
            if entity not in JOB_OWNERS:
                continue
            owner_id = item.get(f"{entity}_id", {}).get("S", "")
            in_progress = {stage for stage in Stage if item.get(stage.status_field, {}).get("S") == IN_PROGRESS}
            journaled = journal.job_for(owner_id) if in_progress else None
            job = resumed_job(journaled, in_progress) if journaled else None
            if job is None:
                continue
            try:
                execution = services.dispatcher.start(job)
            except Exception:  # left for fail_interrupted_jobs
                log.exception("could not resume %s", job.job_id)
                continue
            executions.record_started(services, job, execution)
            kept.add(owner_id)
            resumed.append(f"{item['PK']['S']}/{item['SK']['S']}:{job.kind.value}")
    journal.keep_only(kept)
    if resumed:
        log.warning("resumed %d job(s) interrupted by the last stop: %s", len(resumed), ", ".join(resumed))
    return resumed


def fail_interrupted_jobs(
    dynamodb: Any, table_name: str, reason: str = INTERRUPTED_REASON, resumed: Iterable[str] = ()
) -> list[str]:
    """Fail every job `in_progress` in the table but the `resumed` ones (call before anything can start a
    new job). A job is a voice or speaker attribute `<job>_status`; failing it sets `<job>_error` and clears
    `progress`, as the sweeper does. Returns `PK/SK:<job>` of each."""
    failed: list[str] = []
    skipped = {entry.rsplit(":", 1)[0] for entry in resumed}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name):
        for item in page.get("Items", []):
            if item.get("entity", {}).get("S") not in JOB_OWNERS or f"{item['PK']['S']}/{item['SK']['S']}" in skipped:
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
