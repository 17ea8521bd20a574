"""`sam local` against the embedded storage, without Docker: events/env.json names every function and
only variables SAM will apply, and each event in events/ runs its function's handler (a fresh process
with env.json's variables, as in a SAM container) against moto served in-process like `make storage`."""

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from infra.cfn_template import REPO_ROOT, load_template, resources_of_type
from infra.local.lambdas import ACCOUNT_ID
from infra.local.persistence import TrackedMotoServer
from infra.local.pipeline import STATE_MACHINE_NAME
from infra.moto_atomic import make_moto_dynamodb_atomic
from infra.provisioning import provision

from tests.conftest import RecordingDispatcher
from tests.pipeline.helpers import job_for, make_voice
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services.container import Services, build_services
from voice_onboarding.settings import Settings

EVENTS = REPO_ROOT / "events"
ENV_FILE = EVENTS / "env.json"
# Which function each sample event is for (the README's `sam local invoke` list).
EVENT_FUNCTIONS = {
    "api_list_voices.json": "ApiFunction",
    "split.json": "SplitFunction",
    "gpu_submit_embed.json": "GpuSubmitFunction",
    "gpu_poll.json": "GpuPollFunction",
    "pipeline_fail.json": "PipelineStatusFunction",
    "sweeper_schedule.json": "SweeperFunction",
}
INVOKE = """
import importlib, json, sys
from infra.local.recovery import LocalLambdaContext
module, name = sys.argv[1].rsplit(".", 1)
result = getattr(importlib.import_module(module), name)(json.load(open(sys.argv[2])), LocalLambdaContext())
print("RESULT " + json.dumps(result))
"""


def _env_file() -> dict[str, dict[str, str]]:
    return json.loads(ENV_FILE.read_text())


def _declared(function: dict[str, Any]) -> set[str]:
    globals_env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    return set(globals_env) | set(((function["Properties"].get("Environment") or {}).get("Variables")) or {})


def test_env_file_names_every_function_with_variables_sam_applies() -> None:
    functions = resources_of_type("AWS::Serverless::Function")
    env = _env_file()
    assert set(env) == set(functions)
    storage_port = re.search(r"^STORAGE_PORT \?= (\d+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert storage_port
    for name, variables in env.items():
        # sam local applies --env-vars only to variables the template declares for the function.
        assert set(variables) <= _declared(functions[name]), (name, set(variables) - _declared(functions[name]))
        assert variables["AWS_ENDPOINT_URL"] == f"http://host.docker.internal:{storage_port.group(1)}"
        assert variables["TABLE_NAME"] and variables["BUCKET_NAME"]
    # The state machine `make storage` creates on moto (infra.local.pipeline), as the API starts it.
    local_machine = f"arn:aws:states:us-east-1:{ACCOUNT_ID}:stateMachine:{STATE_MACHINE_NAME}"
    assert env["ApiFunction"]["STATE_MACHINE_ARN"] == local_machine


def test_every_event_is_documented_and_mapped() -> None:
    assert {p.name for p in EVENTS.glob("*.json")} - {"env.json"} == set(EVENT_FUNCTIONS)
    readme = (REPO_ROOT / "README.md").read_text()
    for event, function in EVENT_FUNCTIONS.items():
        assert f"sam local invoke {function} -e events/{event} --env-vars events/env.json" in readme


class FakeRunPod(BaseHTTPRequestHandler):
    """RunPod's /run and /status, enough for one submit and one poll."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._json({"id": "run-local-1", "status": "IN_QUEUE"})

    def do_GET(self) -> None:
        self._json({"id": "run-local-1", "status": "IN_PROGRESS"})

    def _json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def storage() -> Iterator[tuple[str, Services]]:
    """moto on a free port, provisioned from the template, as `make storage` serves it."""
    make_moto_dynamodb_atomic()
    server = TrackedMotoServer(None, ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    variables = _env_file()["SplitFunction"]
    settings = Settings(
        TABLE_NAME=variables["TABLE_NAME"], BUCKET_NAME=variables["BUCKET_NAME"], AWS_ENDPOINT_URL=endpoint
    )
    clients = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": "us-east-1"}
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, **clients)
    s3 = boto3.client("s3", endpoint_url=endpoint, **clients)
    provision(dynamodb, s3, settings.table_name, settings.bucket_name)
    services = build_services(settings, dynamodb=dynamodb, s3=s3, dispatcher=RecordingDispatcher())
    yield endpoint, services
    server.stop()


@pytest.fixture(scope="module")
def runpod() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRunPod)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _invoke(function: str, event: dict[str, Any], endpoint: str, tmp_path: Path, **extra: str) -> Any:
    """The function's handler in a fresh interpreter, with env.json's variables as sam local sets them."""
    handler = resources_of_type("AWS::Serverless::Function")[function]["Properties"]["Handler"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "STATE_MACHINE"))}
    env.update(_env_file()[function])
    env.update(
        AWS_ENDPOINT_URL=endpoint,  # host.docker.internal is this machine, seen from a container
        AWS_SAM_LOCAL="true", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local",
        PYTHONPATH=f"{REPO_ROOT / 'functions'}:{REPO_ROOT}", POWERTOOLS_LOG_LEVEL="WARNING", **extra,
    )  # fmt: skip
    event_file = tmp_path / f"{function}.json"
    event_file.write_text(json.dumps(event))
    done = subprocess.run(
        [sys.executable, "-c", INVOKE, handler, str(event_file)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def test_api_event(storage: tuple[str, Services], tmp_path: Path) -> None:
    endpoint, services = storage
    key, _ = services.api_keys.create("sam-local", ["my-partner"])
    make_voice(services, name="listed", embedding=JobStatus.IDLE)
    event = json.loads(json.dumps(_event("api_list_voices.json")).replace("REPLACE_WITH_KEY", key))
    response = _invoke("ApiFunction", event, endpoint, tmp_path)
    assert response["statusCode"] == 200, response
    assert "listed" in [v["name"] for v in json.loads(response["body"])]


def test_split_and_pipeline_fail_events(storage: tuple[str, Services], speech_recording: Any, tmp_path: Path) -> None:
    from voice_onboarding.services import voices

    endpoint, services = storage
    dispatcher: RecordingDispatcher = services.dispatcher  # type: ignore[assignment]
    voices.create_voice(services, "my-partner", "to-split", speech_recording.path, "recording.wav")
    event = _event("split.json") | {"job": dispatcher.jobs[-1].model_dump(mode="json")}
    _invoke("SplitFunction", event, endpoint, tmp_path)
    assert len(services.voices.require("my-partner", "to-split").samples) >= 2

    voices.create_voice(services, "my-partner", "to-fail", speech_recording.path, "recording.wav")
    event = _event("pipeline_fail.json") | {"job": dispatcher.jobs[-1].model_dump(mode="json")}
    _invoke("PipelineStatusFunction", event, endpoint, tmp_path)
    failed = services.voices.require("my-partner", "to-fail")
    assert failed.splitting_status == "failed" and "no speech" in (failed.splitting_error or "")


def test_gpu_submit_poll_and_sweeper_events(storage: tuple[str, Services], runpod: str, tmp_path: Path) -> None:
    endpoint, services = storage
    job = job_for(make_voice(services, name="to-embed")).model_dump(mode="json")
    gpu_env = {"RUNPOD_ENDPOINT_ID": "ep-local", "RUNPOD_API_KEY": "rp-local", "RUNPOD_BASE_URL": runpod}
    gpu = _invoke("GpuSubmitFunction", _event("gpu_submit_embed.json") | {"job": job}, endpoint, tmp_path, **gpu_env)
    assert gpu["run_id"] == "run-local-1"
    polled = _invoke(
        "GpuPollFunction", _event("gpu_poll.json") | {"job": job, "gpu": gpu}, endpoint, tmp_path, **gpu_env
    )
    assert polled["status"] == "IN_PROGRESS"
    swept = _invoke("SweeperFunction", _event("sweeper_schedule.json"), endpoint, tmp_path)
    assert swept == {"failed": [], "cleaned": []}
