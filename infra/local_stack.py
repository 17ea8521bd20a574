"""The embedded local stack: moto (DynamoDB, S3, Step Functions) in-process, tables/buckets and the state
machine from template.yaml, pipeline executions run by moto's Step Functions engine with the Lambda
handlers in-process (infra.local), and the API on uvicorn. No AWS account, Docker or GPU needed.

    python -m infra.local_stack [--port 8000]
    python -m infra.local_stack --storage-only --host 0.0.0.0   # moto alone, for `sam local`

Data persists in `.local-data/` while the stack runs (infra/local/persistence.py: a `kill -9` loses at
most about a second of writes); on start, jobs a dead process left running are resumed from the stage
they were in (or failed with a reason when their input was not journaled), and the sweeper runs on its
template.yaml schedule (infra/local/recovery.py).
"""

import argparse
import contextlib
import os
import signal
from pathlib import Path

from infra.cfn_template import REPO_ROOT
from infra.local.pipeline import LOCAL_GPU_POLL_SECONDS
from voice_onboarding.contract.engines import KYUTAI_POCKET, RESEMBLYZER

DEFAULT_DEV_KEY = "vk_local_dev_key"
DATA_DIR = REPO_ROOT / ".local-data"


def configure_environment(moto_port: int) -> None:
    """Point every boto3 client at the embedded moto server, with throwaway credentials."""
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    os.environ.setdefault("TABLE_NAME", "voice-onboarding-local")
    os.environ.setdefault("BUCKET_NAME", "voice-onboarding-local")
    os.environ.setdefault("DEFAULT_TTS_TYPE", local_tts_type())
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "voice-onboarding")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "VoiceOnboardingLocal")


def local_tts_type() -> str:
    """Pocket TTS (real test samples, CPU) where its gated voice-cloning weights are in the HF cache or an
    HF_TOKEN can fetch them; otherwise resemblyzer, whose weights ship in its wheel (the DSM needs a GPU)."""
    from gpu_worker.engines.pocket import cloning_weights_present

    return KYUTAI_POCKET if cloning_weights_present() else RESEMBLYZER


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and freed memory
    stays in the arena that had it: with moto's and the pipeline's hundreds of short threads the
    process' RSS crept up (+90 MB over 4 minutes of soak, benchmarks/soak.py) with no object growing.
    Two arenas keep it flat. Set before any thread starts; a no-op where libc has no mallopt."""
    import ctypes
    import ctypes.util

    m_arena_max = -8  # glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(m_arena_max, arenas)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5055")))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where data persists between runs")
    parser.add_argument("--no-persist", action="store_true", help="start empty and save nothing")
    parser.add_argument(
        "--gpu-poll-seconds",
        type=int,
        default=int(os.environ.get("LOCAL_GPU_POLL_SECONDS", str(LOCAL_GPU_POLL_SECONDS))),
        help="the GPU wait's heartbeat period: a period with no worker heartbeat polls the run and fails a "
        "silent worker (template parameter GpuFallbackPollSeconds, 600 deployed)",
    )
    parser.add_argument(
        "--storage-only", action="store_true", help="serve only the storage (moto on --host:--moto-port), no API"
    )
    args = parser.parse_args(argv)

    import logging
    import sys

    from infra.local.persistence import LocalPersistence, TrackedMotoServer
    from infra.local.recovery import (
        JOURNAL_FILE,
        ExecutionJournal,
        SweeperSchedule,
        fail_interrupted_jobs,
        resume_interrupted_jobs,
    )
    from infra.moto_atomic import make_moto_dynamodb_atomic
    from infra.moto_memory import forget_finished_step_functions_threads, stop_moto_instance_tracking

    limit_malloc_arenas()
    make_moto_dynamodb_atomic()
    # Else every item version, deleted S3 object and Step Functions worker thread stays in memory.
    stop_moto_instance_tracking()
    forget_finished_step_functions_threads()
    configure_environment(args.moto_port)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    persistence: LocalPersistence | None = None
    # Storage alone serves containers (sam local): on --host. With the API, moto stays on loopback.
    moto_host = args.host if args.storage_only else "127.0.0.1"
    moto_server = TrackedMotoServer(None, ip_address=moto_host, port=args.moto_port)
    moto_server.start()

    from infra.local.pipeline import start_local_pipeline

    # In-process GPU runs report their end to this API's webhook route, as RunPod does deployed.
    os.environ.setdefault("PUBLIC_API_URL", f"http://{args.host}:{args.port}")

    # Before any Settings are read: the API's dispatcher starts executions of this machine.
    os.environ["STATE_MACHINE_ARN"] = start_local_pipeline(
        os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_REGION"], poll_seconds=args.gpu_poll_seconds
    )

    import uvicorn

    from infra.local.gpu import InProcessGpuClient
    from infra.provisioning import provision
    from voice_onboarding.api.app import create_app
    from voice_onboarding.handlers.composition import override
    from voice_onboarding.services.container import build_services
    from voice_onboarding.settings import get_settings

    settings = get_settings()
    # The pipeline's GPU steps run the worker in-process on CPU (no RunPod endpoint locally), in both
    # modes (the storage-only process runs the pipeline too): held for the life of the process.
    harness = contextlib.ExitStack()
    harness.enter_context(override(gpu_client=InProcessGpuClient()))
    services = build_services(settings)
    provision(services.dynamodb, services.s3, settings.table_name, settings.bucket_name, settings.aws_region)
    restored = 0
    resumed: list[str] = []
    if not args.no_persist:
        persistence = LocalPersistence(
            args.data_dir, services.dynamodb, services.s3, settings.table_name, settings.bucket_name
        )
        restored = persistence.restore()
        moto_server.persistence = persistence  # from here on, every write to moto is saved
        persistence.start()
        moto_server.journal = ExecutionJournal(args.data_dir / JOURNAL_FILE)  # every execution's input
        resumed = resume_interrupted_jobs(services, moto_server.journal)
    interrupted = fail_interrupted_jobs(services.dynamodb, settings.table_name, resumed=resumed)
    sweeper = SweeperSchedule()
    sweeper.start()
    dev_key = os.environ.get("LOCAL_API_KEY", DEFAULT_DEV_KEY)
    services.api_keys.register(dev_key, name="local-dev", partners=["*"])
    saved = "not saved (--no-persist)" if args.no_persist else f"saved to {args.data_dir}"
    storage = (
        f"  Storage:  moto at {settings.aws_endpoint_url}, {restored} items restored, {saved}\n"
        f"  Recovery: {len(resumed)} interrupted job(s) resumed, {len(interrupted)} interrupted job(s) failed"
        f" (no input to resume from); sweeper every {sweeper.interval:g} s\n"
    )
    if args.storage_only:
        _serve_storage_only(args, storage, settings.table_name, settings.bucket_name)
        sweeper.stop()
        if persistence:
            persistence.stop()
        moto_server.stop()
        harness.close()
        return

    base = f"http://{args.host}:{args.port}"
    print(
        f"\nVoice onboarding API (local mode)\n"
        f"  API:      {base}/api/voices/my-partner\n"
        f"  Docs:     {base}/docs\n"
        f"  API key:  {dev_key}   (X-Api-Key header or ?api_key=; access to every partner)\n"
        f"{storage}"
        f"  Example:  curl -H 'X-Api-Key: {dev_key}' {base}/api/voices/my-partner\n"
        f"  Pipeline: aws --endpoint-url {settings.aws_endpoint_url} stepfunctions list-executions "
        f"--state-machine-arn {settings.state_machine_arn}\n",
        flush=True,
    )
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so the
    # last flush below still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(create_app(services), host=args.host, port=args.port, log_level="warning")
    finally:
        # Ignore a second Ctrl-C while saving.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sweeper.stop()
        if persistence:
            persistence.stop()
            print(f"Local data saved to {args.data_dir}", flush=True)
        moto_server.stop()
        harness.close()


def _serve_storage_only(args: argparse.Namespace, storage: str, table: str, bucket: str) -> None:
    """Block until Ctrl-C/SIGTERM, serving moto to `sam local` containers."""
    import threading

    print(
        f"\nEmbedded storage for sam local (moto: DynamoDB, S3, the pipeline on Step Functions)\n{storage}"
        f"  Listening on {args.host}:{args.moto_port}; from a SAM container: "
        f"http://host.docker.internal:{args.moto_port} (events/env.json)\n"
        f"  Table {table}, bucket {bucket}\n",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
