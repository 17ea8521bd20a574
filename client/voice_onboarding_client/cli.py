"""`voice-onboarding`: the command line for the voice onboarding API.

    export VOICE_API_URL=http://127.0.0.1:8000 VOICE_API_KEY=vk_local_dev_key
    voice-onboarding voices create my-partner speaker-1 recording.wav --wait --json

Exit codes: 0 ok, 1 API error or failed job (the reason on stderr), 2 usage. Progress goes to stderr;
with --json, stdout carries only the final JSON.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from voice_onboarding_client import models as m
from voice_onboarding_client.client import VoiceOnboardingClient
from voice_onboarding_client.errors import (
    ApiError,
    ConfigurationError,
    JobFailed,
    NothingToWaitFor,
    TransportError,
    WaitTimeout,
)

EXIT_OK, EXIT_API, EXIT_USAGE = 0, 1, 2
Handler = Callable[[VoiceOnboardingClient, argparse.Namespace, "Reporter"], Any]


class UsageError(Exception):
    """Bad local input (a missing file): exit code 2, like an argparse error."""


# --- progress reporting on stderr ---------------------------------------------------------------------
class Reporter:
    """Upload bars and per-stage progress lines on stderr: live on a terminal, one plain line per
    change otherwise (logs, CI)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True)
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, highlight=False)

    def stamp(self, message: str) -> None:
        self.log(f"[{time.monotonic() - self.started:6.1f}s] {message}")

    def upload(self, label: str) -> "UploadBar":
        return UploadBar(self, label)

    def stages(self, stages: Sequence[str]) -> "StageLines":
        return StageLines(self, stages)


class UploadBar:
    def __init__(self, reporter: Reporter, label: str) -> None:
        self.reporter = reporter
        self.label = label
        self.progress: Progress | None = None
        self.task: Any = None
        self.total = 0

    def __enter__(self) -> "UploadBar":
        if not self.reporter.quiet and self.reporter.console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=self.reporter.console,
                transient=True,
            )
            self.progress.start()
        return self

    def __call__(self, sent: int, total: int) -> None:
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task(self.label, total=total)
            # Once the bytes are out, the server still decodes and transcodes: say so, not a frozen bar.
            label = self.label if sent < total else f"{self.label}: sent, the server is processing"
            self.progress.update(self.task, completed=sent, description=label)
        elif self.total == 0 and sent > 0:
            self.reporter.stamp(f"{self.label}: {total / 1e6:.1f} MB")
        self.total = total

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.total and exc[0] is None:
            self.reporter.stamp(f"{self.label}: done")


class StageLines:
    """One line per job stage (splitting, embedding, clone, training): its status and current step."""

    def __init__(self, reporter: Reporter, stages: Sequence[str]) -> None:
        self.reporter = reporter
        self.stages = list(stages)
        self.last: dict[str, tuple[str, str | None]] = {}
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "StageLines":
        if not self.reporter.quiet and self.reporter.console.is_terminal:
            self.progress = Progress(
                SpinnerColumn(finished_text="✓"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.reporter.console,
            )
            self.progress.start()
        return self

    def update(self, stage: str, status: str, step: str | None) -> None:
        if self.last.get(stage) == (status, step):
            return
        self.last[stage] = (status, step)
        text = f"{stage}: {status}" + (f" ({step})" if step else "")
        if self.progress is None:
            self.reporter.stamp(text)
            return
        if stage not in self.tasks:
            if status in ("idle", "created"):
                return  # not started yet: no line
            self.tasks[stage] = self.progress.add_task(text, total=1)
        done = status in ("completed", "failed", "ready")
        self.progress.update(self.tasks[stage], description=text, completed=1 if done else 0)

    def voice(self, details: m.VoiceDetails) -> None:
        step = (details.progress or {}).get("step")
        job = (details.progress or {}).get("job")
        for stage in self.stages:
            status = getattr(details.status, stage)
            self.update(stage, status, step if job == stage and status == "in_progress" else None)

    def speaker(self, details: m.SpeakerDetails) -> None:
        step = (details.progress or {}).get("step")
        for stage in self.stages:
            status = details.status if stage == "clone" else details.training_status
            running = status in ("cloning", "in_progress")
            self.update(stage, status, step if running else None)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


# --- output ----------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return {"path": str(value)}
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return f"{len(value)} items"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v is not None and not isinstance(v, dict | list))
    return str(value)


def emit(result: Any, as_json: bool) -> None:
    data = _plain(result)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console = Console()
    if isinstance(data, list):
        if not data:
            console.print("(none)")
            return
        if not isinstance(data[0], dict):
            for item in data:
                console.print(str(item), markup=False)
            return
        # Scalar columns that have a value somewhere (creator fields are often empty).
        columns = [
            k
            for k, v in data[0].items()
            if not isinstance(v, dict | list) and any(row.get(k) not in (None, "") for row in data)
        ]
        table = Table(*columns)
        for row in data:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
    elif isinstance(data, dict):
        table = Table(show_header=False, box=None)
        for key, value in data.items():
            if value not in (None, "", [], {}):
                table.add_row(key, _cell(value))
        console.print(table)
    elif data is not None:
        console.print(str(data), markup=False)


# --- helpers ---------------------------------------------------------------------------------------
def _existing(path: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such file: {path}")
    return file


def _wait_voice(
    api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter, partner: str, name: str, stages: Sequence[str]
) -> m.VoiceDetails:
    with rep.stages(stages) as lines:
        return api.wait_voice(partner, name, stages=tuple(stages), timeout=args.timeout, on_progress=lines.voice)


def _wait_speaker(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter, job: str) -> m.SpeakerDetails:
    with rep.stages(["clone" if job == "clone" else "training"]) as lines:
        return api.wait_speaker(args.name, job=job, timeout=args.timeout, on_progress=lines.speaker)


# --- commands --------------------------------------------------------------------------------------
def voices_create(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter) -> Any:
    if args.file is None:
        voice = api.create_voice(
            args.partner, args.name, creator_name=args.creator_name, creator_email=args.creator_email
        )
    else:
        file = _existing(args.file)
        with rep.upload(f"uploading {file.name}") as bar:
            voice = api.create_voice(
                args.partner,
                args.name,
                file,
                creator_name=args.creator_name,
                creator_email=args.creator_email,
                on_upload_progress=bar,
            )
        rep.stamp(f"voice {voice.name} created")
    if args.wait and args.file is not None:
        return _wait_voice(api, args, rep, args.partner, voice.name, ("splitting", "embedding"))
    return voice


def voices_split(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter) -> Any:
    accepted = api.split_voice(
        args.partner, args.name, max_samples=args.max_samples, sample_duration=args.sample_duration
    )
    if args.wait:
        return _wait_voice(api, args, rep, args.partner, args.name, ("splitting",))
    return accepted


def voices_embed(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter) -> Any:
    accepted = api.embed_voice(args.partner, args.name, tts_type=args.tts_type)
    if args.wait:
        return _wait_voice(api, args, rep, args.partner, args.name, ("embedding",))
    return accepted


def voices_wait(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter) -> Any:
    stages = ("splitting", "embedding") if args.stage == "all" else (args.stage,)
    return _wait_voice(api, args, rep, args.partner, args.name, stages)


def _tts_type(api: VoiceOnboardingClient, args: argparse.Namespace) -> str:
    """Default to the engine the voice was embedded with (the API's default names the GPU engine)."""
    return args.tts_type or api.get_voice(args.partner, args.name).embedding_type


def speakers_create(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter) -> Any:
    reference = _existing(args.reference)
    with rep.upload(f"uploading {reference.name}") as bar:  # presigned above the direct limit
        created = api.create_speaker(
            args.name, args.language, reference, description=args.description, on_upload_progress=bar
        )
    if args.wait:
        return _wait_speaker(api, args, rep, "clone")
    return created


def dataset_upload(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter) -> Any:
    audio = _existing(args.audio)
    with rep.upload(f"uploading {audio.name}") as bar:  # presigned above the direct limit
        return api.upload_dataset_sample(args.name, audio, args.transcript, on_upload_progress=bar)


def train(api: VoiceOnboardingClient, args: argparse.Namespace, rep: Reporter) -> Any:
    hyper = {k: getattr(args, k) for k in ("rank", "alpha", "learning_rate", "steps", "dropout", "seed")}
    accepted = api.train_speaker(args.name, **hyper)
    if args.wait:
        return _wait_speaker(api, args, rep, "train")
    return accepted


# --- parser ----------------------------------------------------------------------------------------
def _common(defaults: bool) -> argparse.ArgumentParser:
    """Connection/output options, accepted before the command or after it (the leaf's copy must not
    overwrite a value given earlier, hence SUPPRESS there)."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("connection and output")
    group.add_argument("--url", default=default(None), help="API base URL (default: $VOICE_API_URL)")
    group.add_argument("--api-key", default=default(None), help="API key (default: $VOICE_API_KEY)")
    group.add_argument("--json", action="store_true", default=default(False), help="print JSON on stdout")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False), help="no progress on stderr")
    return parser


def _timeout(parser: argparse.ArgumentParser, seconds: float) -> None:
    parser.add_argument("--timeout", type=float, default=seconds, help=f"seconds to wait (default {seconds:.0f})")


def build_parser() -> argparse.ArgumentParser:
    common = _common(defaults=False)
    root = argparse.ArgumentParser(
        prog="voice-onboarding",
        description="Command line for the voice onboarding API (voices, samples, speakers, catalog).",
        epilog="Configuration: --url/--api-key or VOICE_API_URL/VOICE_API_KEY. "
        "Exit codes: 0 ok, 1 API error or failed job, 2 usage.",
        parents=[_common(defaults=True)],
    )
    groups = root.add_subparsers(dest="group", metavar="COMMAND", required=True)

    def group(name: str, help: str) -> Any:
        parser = groups.add_parser(name, help=help, description=help)
        return parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def command(parent: Any, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help, parents=[common])
        parser.set_defaults(handler=handler)
        return parser

    def output(parser: argparse.ArgumentParser, what: str) -> None:
        parser.add_argument("-o", "--output", default=".", help=f"file or directory to write {what} to (default .)")

    # voices
    voices = group("voices", "Voices: create from a recording, inspect, split, embed, wait")
    p = command(voices, "list", "List a partner's voices", lambda a, n, r: a.list_voices(n.partner))
    p.add_argument("partner")
    p = command(
        voices,
        "create",
        "Create a voice from a recording (any size: large files go to storage directly)",
        voices_create,
    )
    p.add_argument("partner")
    p.add_argument("name", help="voice name (1-255 chars)")
    p.add_argument("file", nargs="?", help="audio file; omit to create an empty voice")
    p.add_argument("--creator-name")
    p.add_argument("--creator-email")
    p.add_argument("--wait", action="store_true", help="wait until splitting and embedding completed (exit 1 if not)")
    _timeout(p, 3600)
    p = command(voices, "get", "Show a voice's details and status", lambda a, n, r: a.get_voice(n.partner, n.name))
    p.add_argument("partner")
    p.add_argument("name")
    p = command(voices, "delete", "Delete a voice and its audio", lambda a, n, r: a.delete_voice(n.partner, n.name))
    p.add_argument("partner")
    p.add_argument("name")
    p = command(voices, "cancel", "Stop the voice's running job", lambda a, n, r: a.cancel_voice_job(n.partner, n.name))
    p.add_argument("partner")
    p.add_argument("name")
    p = command(voices, "rename", "Rename a voice", lambda a, n, r: a.rename_voice(n.partner, n.name, n.new_name))
    p.add_argument("partner")
    p.add_argument("name")
    p.add_argument("new_name")
    p = command(voices, "split", "Re-split the original recording (replaces every sample)", voices_split)
    p.add_argument("partner")
    p.add_argument("name")
    p.add_argument("--max-samples", type=int, help="1-100 (server default 25)")
    p.add_argument("--sample-duration", type=int, help="seconds per sample, 5-60 (server default 15)")
    p.add_argument("--wait", action="store_true", help="wait until splitting ends")
    _timeout(p, 3600)
    p = command(voices, "embed", "Queue an embedding job", voices_embed)
    p.add_argument("partner")
    p.add_argument("name")
    p.add_argument("--tts-type", help="engine override (default: the voice's embedding_type)")
    p.add_argument("--wait", action="store_true", help="wait until embedding ends")
    _timeout(p, 3600)
    p = command(voices, "wait", "Wait for a voice's jobs to end, with progress (exit 1 if one failed)", voices_wait)
    p.add_argument("partner")
    p.add_argument("name")
    p.add_argument("--stage", choices=("all", "splitting", "embedding"), default="all")
    _timeout(p, 3600)
    p = command(
        voices,
        "preferred-sample",
        "Set the preferred sample (omit INDEX to clear it)",
        lambda a, n, r: a.set_preferred_sample(n.partner, n.name, n.index),
    )
    p.add_argument("partner")
    p.add_argument("name")
    p.add_argument("index", type=int, nargs="?")
    p = command(
        voices,
        "download-embedding",
        "Download the voice's embedding ZIP",
        lambda a, n, r: a.download_embedding(n.partner, n.name, n.output),
    )
    p.add_argument("partner")
    p.add_argument("name")
    output(p, "the ZIP")

    # samples
    samples = group("samples", "Samples of a voice: upload, download, delete, bundle")

    def samples_upload(a: VoiceOnboardingClient, n: argparse.Namespace, r: Reporter) -> Any:
        file = _existing(n.file)
        with r.upload(f"uploading {file.name}") as bar:
            return a.upload_sample(n.partner, n.voice, file, on_upload_progress=bar)

    p = command(samples, "upload", "Add a sample (converted to opus 96 kbps mono)", samples_upload)
    p.add_argument("partner")
    p.add_argument("voice")
    p.add_argument("file")
    p = command(
        samples,
        "download",
        "Download one sample (opus)",
        lambda a, n, r: a.download_sample(n.partner, n.voice, n.index, n.output),
    )
    p.add_argument("partner")
    p.add_argument("voice")
    p.add_argument("index", type=int)
    output(p, "the sample")
    p = command(samples, "delete", "Delete one sample", lambda a, n, r: a.delete_sample(n.partner, n.voice, n.index))
    p.add_argument("partner")
    p.add_argument("voice")
    p.add_argument("index", type=int)
    p = command(
        samples,
        "bundle",
        "Download every sample as a ZIP (with voice_info.json)",
        lambda a, n, r: a.download_bundle(n.partner, n.voice, n.output),
    )
    p.add_argument("partner")
    p.add_argument("voice")
    output(p, "the ZIP")

    # test samples
    tests = group("test-samples", "TTS test sentences made while embedding")
    p = command(
        tests,
        "list",
        "List a voice's test samples",
        lambda a, n, r: a.list_test_samples(n.partner, n.name, tts_type=_tts_type(a, n)),
    )
    p.add_argument("partner")
    p.add_argument("name", help="voice name")
    p.add_argument("--tts-type", help="engine folder (default: the voice's embedding_type)")
    p = command(
        tests,
        "download",
        "Download one test sample",
        lambda a, n, r: a.download_test_sample(n.partner, n.name, n.filename, n.output, tts_type=_tts_type(a, n)),
    )
    p.add_argument("partner")
    p.add_argument("name", help="voice name")
    p.add_argument("filename")
    p.add_argument("--tts-type", help="engine folder (default: the voice's embedding_type)")
    output(p, "the file")
    p = command(
        tests,
        "delete",
        "Delete a voice's test files of one engine",
        lambda a, n, r: a.delete_test_files(n.partner, n.name, n.tts_type),
    )
    p.add_argument("partner")
    p.add_argument("name", help="voice name")
    p.add_argument("tts_type")

    # speakers
    speakers = group("speakers", "Speakers: zero-shot clones from a reference clip")
    command(speakers, "list", "List your speakers", lambda a, n, r: a.list_speakers())
    p = command(speakers, "create", "Create a speaker from a 10-60 s reference clip (WAV or MP3)", speakers_create)
    p.add_argument("name", help="lowercase letters/digits joined by hyphens")
    p.add_argument("language", help="e.g. en-US, hi-IN")
    p.add_argument("reference", help="reference audio file")
    p.add_argument("--description")
    p.add_argument("--wait", action="store_true", help="wait until the clone is ready (exit 1 if it failed)")
    _timeout(p, 3600)
    p = command(
        speakers, "get", "Show a speaker, its clone/training state and adapters", lambda a, n, r: a.get_speaker(n.name)
    )
    p.add_argument("name")
    p = command(
        speakers, "delete", "Delete a speaker, its dataset and adapters", lambda a, n, r: a.delete_speaker(n.name)
    )
    p.add_argument("name")
    p = command(
        speakers, "cancel", "Stop the speaker's running clone or training", lambda a, n, r: a.cancel_speaker_job(n.name)
    )
    p.add_argument("name")
    p = command(
        speakers,
        "reference",
        "Download the speaker's reference clip",
        lambda a, n, r: a.download_reference(n.name, n.output),
    )
    p.add_argument("name")
    output(p, "the clip")
    p = command(
        speakers, "adapters", "List the speaker's LoRA adapter versions", lambda a, n, r: a.list_adapters(n.name)
    )
    p.add_argument("name")
    p = command(
        speakers,
        "wait",
        "Wait for the clone (or the latest training run) to end",
        lambda a, n, r: _wait_speaker(a, n, r, n.job),
    )
    p.add_argument("name")
    p.add_argument("--job", choices=("clone", "train"), default="clone")
    _timeout(p, 3 * 3600)

    # dataset
    dataset = group("dataset", "A speaker's LoRA dataset: samples with transcripts")
    p = command(dataset, "status", "Sample count, duration and readiness", lambda a, n, r: a.get_dataset(n.name))
    p.add_argument("name", help="speaker name")
    p = command(
        dataset,
        "upload",
        "Add a 5-30 s sample with its exact transcript",
        dataset_upload,
    )
    p.add_argument("name", help="speaker name")
    p.add_argument("audio", help="WAV or MP3, 5-30 s")
    p.add_argument("transcript", help="exact text spoken in the audio")
    p = command(dataset, "clear", "Remove every dataset sample", lambda a, n, r: a.clear_dataset(n.name))
    p.add_argument("name", help="speaker name")

    # train, deploy, undeploy, catalog: top-level verbs
    p = groups.add_parser(
        "train",
        help="Train a LoRA adapter on the speaker's dataset",
        description="Train a LoRA adapter",
        parents=[common],
    )
    p.set_defaults(handler=train)
    p.add_argument("name", help="speaker name")
    p.add_argument("--rank", type=int)
    p.add_argument("--alpha", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--steps", type=int)
    p.add_argument("--dropout", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--wait", action="store_true", help="wait until training ends (exit 1 if it failed)")
    _timeout(p, 3 * 3600)
    p = groups.add_parser(
        "deploy", help="Publish a speaker to the voice catalog", description="Publish a speaker", parents=[common]
    )
    p.set_defaults(handler=lambda a, n, r: a.deploy_speaker(n.name))
    p.add_argument("name", help="speaker name")
    p = groups.add_parser(
        "undeploy", help="Remove a speaker from the catalog", description="Remove from the catalog", parents=[common]
    )
    p.set_defaults(handler=lambda a, n, r: a.undeploy_speaker(n.name))
    p.add_argument("name", help="speaker name")
    p = groups.add_parser(
        "catalog", help="List the shared voice catalog", description="List the catalog", parents=[common]
    )
    p.set_defaults(handler=lambda a, n, r: a.list_catalog())

    # uploads (for curl users: stage a large file, then pass upload_id)
    uploads = group("uploads", "Presigned uploads for large files")
    p = command(
        uploads,
        "create",
        "Upload a file to storage; prints the upload_id for a create/sample request",
        lambda a, n, r: {"upload_id": a.upload_file(n.partner, _existing(n.file))},
    )
    p.add_argument("partner")
    p.add_argument("file")
    p = command(
        uploads,
        "speaker",
        "Upload a file to storage; prints the upload_id for a speaker create or dataset sample request",
        lambda a, n, r: {"upload_id": a.upload_file(None, _existing(n.file))},
    )
    p.add_argument("file")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error, 0 on --help
    reporter = Reporter(args.quiet)
    result: Any = None
    try:
        with VoiceOnboardingClient(args.url, args.api_key) as api:
            result = args.handler(api, args, reporter)
    except (ConfigurationError, UsageError) as error:
        print(f"voice-onboarding: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as error:
        print(f"error: {error.message} (HTTP {error.status_code})", file=sys.stderr)
        return EXIT_API
    except (JobFailed, WaitTimeout, NothingToWaitFor) as error:
        # The final state is still the answer a script wants on stdout.
        if error.resource is not None and args.json:
            emit(error.resource, True)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_API
    except TransportError as error:
        print(f"error: cannot reach the API: {error}", file=sys.stderr)
        return EXIT_API
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    emit(result, args.json)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
