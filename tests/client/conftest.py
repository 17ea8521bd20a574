"""The embedded local stack (`python -m infra.local_stack`, as `make run` starts it) in a child process
on free ports, for tests that go over real HTTP: presigned POSTs to moto's S3, the pipeline, the CLI."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from infra.local.ports import free_port

REPO = Path(__file__).resolve().parents[2]
DEV_KEY = "vk_local_dev_key"
# Below the client's 5 MB direct limit, so a mid-sized upload meets the server's 413 first.
STACK_DIRECT_LIMIT = 2_000_000
STACK_INLINE_DOWNLOAD_LIMIT = 100_000


def child_env(**extra: str) -> dict[str, str]:
    """This process' environment minus the test suite's AWS/moto settings, with the repo's code
    (service, harness, client) first on the path."""
    dropped = ("TABLE_NAME", "BUCKET_NAME", "STATE_MACHINE_ARN", "VOICE_API_URL", "VOICE_API_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_")) and k not in dropped}
    path = [str(REPO / "functions"), str(REPO), str(REPO / "client"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    env.update(extra)
    return env


@dataclass
class LocalStack:
    url: str
    key: str
    log: Path

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `voice-onboarding ARGS` against this stack, as a user would in another terminal."""
        env = child_env(VOICE_API_URL=self.url, VOICE_API_KEY=self.key)
        return subprocess.run(
            [sys.executable, "-m", "voice_onboarding_client", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("local-stack")
    port, moto_port = free_port(), free_port()
    log = folder / "stack.log"
    env = child_env(
        MAX_DIRECT_UPLOAD_BYTES=str(STACK_DIRECT_LIMIT),
        # Bundles above this answer 307 to a presigned storage URL: the client follows it.
        MAX_INLINE_DOWNLOAD_BYTES=str(STACK_INLINE_DOWNLOAD_LIMIT),
        # The GPU wait's heartbeat period (600 s deployed): the real worker beats every 10 / 3 s, its webhook
        # ends the wait.
        LOCAL_GPU_POLL_SECONDS="10",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack", "--port", str(port), "--moto-port", str(moto_port),
             "--no-persist", "--data-dir", str(folder / "data")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"local stack exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"local stack did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield LocalStack(url=url, key=DEV_KEY, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)  # --no-persist: nothing to save
        except subprocess.TimeoutExpired:
            process.kill()
