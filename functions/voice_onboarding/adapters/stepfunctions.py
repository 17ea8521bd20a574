"""The job dispatcher: one Step Functions execution per job (moto's engine runs them in the local stack)."""

import json
from typing import Any

from voice_onboarding.domain.jobs import PipelineJob


class StepFunctionsDispatcher:
    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self.sfn = sfn_client
        self.state_machine_arn = state_machine_arn

    def start(self, job: PipelineJob) -> str:
        # The execution name is the job id: Step Functions refuses a duplicate name, which makes
        # a retried start idempotent.
        response = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=f"{job.kind.value}-{job.job_id}"[:80],
            input=json.dumps(job.model_dump(mode="json")),
        )
        return str(response["executionArn"])
