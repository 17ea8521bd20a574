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
        [sys.executable, "-m", "voice_onboarding_client", "--help"], capture_output=True, text=True, timeout=60
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
