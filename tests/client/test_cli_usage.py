"""Every command of `voice-onboarding` answers --help, usage errors exit 2, API errors exit 1 with
the detail on stderr and no traceback (API errors against the in-process app)."""

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.client.conftest import child_env
from tests.conftest import PARTNER
from voice_onboarding_client import cli


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*prefix, name))
    return found


COMMANDS = _commands(cli.build_parser())


def test_the_issue_commands_exist() -> None:
    expected = {("voices", c) for c in ("create", "list", "get", "delete", "rename", "split", "embed", "wait")} | {
        ("samples", c) for c in ("upload", "download", "delete", "bundle")
    }
    expected |= {("test-samples", "list"), ("test-samples", "download")}
    expected |= {("speakers", c) for c in ("create", "list", "get", "delete", "reference")}
    expected |= {("dataset", c) for c in ("status", "upload", "clear")}
    expected |= {("train",), ("deploy",), ("undeploy",), ("catalog",)}
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "(root)")
def test_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: voice-onboarding {' '.join(command)}".rstrip())


def test_console_script_and_module_entry_point() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "client" / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["voice-onboarding"] == "voice_onboarding_client.cli:main"
    done = subprocess.run(
        [sys.executable, "-m", "voice_onboarding_client", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert done.returncode == 0 and "voices" in done.stdout


@pytest.mark.parametrize(
    "argv",
    [[], ["voices"], ["voices", "get", PARTNER], ["voices", "bogus"], ["samples", "download", "p", "v", "one"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_missing_configuration_and_missing_file_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VOICE_API_URL", raising=False)
    monkeypatch.delenv("VOICE_API_KEY", raising=False)
    assert cli.main(["voices", "list", PARTNER]) == 2
    assert "VOICE_API_URL" in capsys.readouterr().err
    monkeypatch.setenv("VOICE_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("VOICE_API_KEY", "vk_x")
    assert cli.main(["voices", "create", PARTNER, "v", str(tmp_path / "missing.wav")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.fixture
def in_process(app: Any, api_key: str, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The CLI's client talks to the in-process app."""
    http = TestClient(app, raise_server_exceptions=False)
    real = cli.VoiceOnboardingClient

    def connect(url: str | None, key: str | None) -> Any:
        return real("http://testserver", key or api_key, http_client=http)

    monkeypatch.setattr(cli, "VoiceOnboardingClient", connect)
    return http


def test_api_error_exits_1_with_the_detail_and_no_traceback(
    in_process: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["voices", "get", PARTNER, "nobody"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "error: Voice not found (HTTP 404)"
    assert cli.main(["voices", "list", PARTNER, "--api-key", "vk_wrong"]) == 1
    assert "Invalid API key (HTTP 401)" in capsys.readouterr().err


def test_json_output_is_only_json(in_process: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert cli.main(["voices", "create", PARTNER, "speaker-2", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "speaker-2" and created["status"] == {"splitting": "idle", "embedding": "idle"}
    assert cli.main(["--json", "voices", "list", PARTNER]) == 0
    assert [v["name"] for v in json.loads(capsys.readouterr().out)] == ["speaker-2"]
    assert cli.main(["voices", "rename", PARTNER, "speaker-2", "speaker-3"]) == 0
    assert "speaker-3" in capsys.readouterr().out


def test_every_resource_through_the_cli(
    in_process: TestClient,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    wav_tone: Path,
    dispatcher: Any,
) -> None:
    """Each command reaches its route and prints its answer (jobs are recorded, not run, here)."""
    import json
    import zipfile

    from tests import audio_factory

    def run(*argv: str) -> tuple[int, Any, str]:
        code = cli.main([*argv, "--json"])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    code, voice, _ = run("voices", "create", PARTNER, "v1", str(wav_tone))
    assert code == 0 and voice["status"]["splitting"] == "in_progress" and len(dispatcher.jobs) == 1
    code, _, err = run("voices", "split", PARTNER, "v1", "--max-samples", "5")
    assert code == 1 and "Voice is currently being processed (HTTP 409)" in err

    assert run("voices", "create", PARTNER, "v2")[0] == 0
    code, sample, _ = run("samples", "upload", PARTNER, "v2", str(wav_tone))
    assert code == 0 and sample["index"] == 1 and sample["duration"] == pytest.approx(3, abs=0.2)
    code, written, _ = run("samples", "download", PARTNER, "v2", "1", "-o", str(tmp_path))
    assert code == 0 and Path(written["path"]).read_bytes()[:4] == b"OggS"
    code, written, _ = run("samples", "bundle", PARTNER, "v2", "-o", str(tmp_path / "b.zip"))
    assert code == 0 and set(zipfile.ZipFile(written["path"]).namelist()) == {"1.opus", "voice_info.json"}
    assert run("voices", "preferred-sample", PARTNER, "v2", "1")[1]["preferred_sample_index"] == 1
    assert run("voices", "preferred-sample", PARTNER, "v2")[1]["preferred_sample_index"] is None
    assert run("test-samples", "list", PARTNER, "v2", "--tts-type", "kyutai") == (0, [], "")
    assert run("test-samples", "delete", PARTNER, "v2", "kyutai")[1] == {"detail": "Deleted 0 test files"}
    code, _, err = run("test-samples", "download", PARTNER, "v2", "test_1_1.opus", "-o", str(tmp_path))
    assert code == 1 and "(HTTP 404)" in err
    code, accepted, _ = run("voices", "embed", PARTNER, "v2")
    assert code == 0 and accepted["job"] == "embedding" and accepted["status"]["embedding"] == "in_progress"
    assert run("samples", "delete", PARTNER, "v2", "1")[0] == 1  # locked while embedding
    code, _, err = run("voices", "delete", PARTNER, "v2")
    assert code == 1 and "409" in err

    reference = audio_factory.tone(tmp_path / "ref.wav", 12.0)
    code, created, _ = run("speakers", "create", "aria", "en-US", str(reference), "--description", "test")
    assert code == 0 and created["name"] == "aria"
    assert [s["name"] for s in run("speakers", "list")[1]] == ["aria"]
    assert run("speakers", "get", "aria")[1]["status"] == "cloning"
    code, written, _ = run("speakers", "reference", "aria", "-o", str(tmp_path))
    assert code == 0 and Path(written["path"]).read_bytes()[:4] == b"RIFF"
    line = audio_factory.tone(tmp_path / "line.wav", 6.0)
    code, added, _ = run("dataset", "upload", "aria", str(line), "Hello there")
    assert code == 0 and added["transcript"] == "Hello there"
    assert run("dataset", "status", "aria")[1]["sample_count"] == 1
    assert run("dataset", "clear", "aria")[1]["sample_count"] == 0
    assert run("speakers", "adapters", "aria") == (0, [], "")
    assert run("deploy", "aria")[0] == 1  # the clone has not finished
    assert run("undeploy", "aria")[1]["deployed"] is False
    assert run("catalog") == (0, [], "")
    code, _, err = run("train", "aria", "--steps", "5")
    assert code == 1 and "HTTP 4" in err


def test_wait_on_a_failed_job_exits_1_with_the_reason(
    in_process: TestClient, capsys: pytest.CaptureFixture[str], wav_tone: Path, services: Any
) -> None:
    import json

    assert cli.main(["voices", "create", PARTNER, "v", str(wav_tone), "-q"]) == 0
    capsys.readouterr()
    services.voices.update(
        PARTNER, "v", {"splitting_status": "failed", "splitting_error": "Recording is too short", "progress": None}
    )

    assert cli.main(["voices", "wait", PARTNER, "v", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().endswith("error: splitting failed: Recording is too short")
    assert json.loads(captured.out)["status"]["splitting"] == "failed"  # the final state, as JSON only
