"""template.yaml is how users deploy: check it is real, consistent with the code, and buildable."""

import importlib
import json
import os
import re
import shutil
import subprocess

import pytest
from infra.cfn_template import REPO_ROOT, load_template, resources_of_type

from voice_onboarding.settings import Settings

TOOLS_BIN = REPO_ROOT / ".venv-tools" / "bin"
# Settings that exist for local mode and tests only; Lambda provides AWS_REGION itself.
LOCAL_ONLY_SETTINGS = {"AWS_ENDPOINT_URL", "RUNPOD_API_KEY", "AWS_REGION"}


def _tool(name: str) -> str:
    path = TOOLS_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    pytest.skip(f"{name} not installed (make test installs it into .venv-tools; it could not be installed here)")


def _tool_env() -> dict[str, str]:
    return {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


def _functions() -> dict[str, dict]:
    return resources_of_type("AWS::Serverless::Function")


def _function_env(function: dict) -> set[str]:
    globals_env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    own_env = ((function["Properties"].get("Environment") or {}).get("Variables")) or {}
    return set(globals_env) | set(own_env)


@pytest.mark.parametrize("logical_id", sorted(_functions()))
def test_every_handler_in_the_template_imports(logical_id):
    handler = _functions()[logical_id]["Properties"]["Handler"]
    module_name, function_name = handler.rsplit(".", 1)
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function_name)), handler


def test_every_setting_the_code_reads_is_defined_for_every_function():
    aliases = {str(field.validation_alias) for field in Settings.model_fields.values()}
    needed = aliases - LOCAL_ONLY_SETTINGS
    for logical_id, function in _functions().items():
        missing = {name for name in needed if name not in _function_env(function)}
        # Settings with a default that is right in AWS need not be set.
        missing = {name for name in missing if Settings.model_fields[_field_for(name)].is_required()}
        assert not missing, f"{logical_id} lacks {missing}"


def _field_for(alias: str) -> str:
    return next(name for name, field in Settings.model_fields.items() if field.validation_alias == alias)


def test_table_and_bucket_names_and_state_machine_reach_the_api():
    api_env = _function_env(_functions()["ApiFunction"])
    assert {"TABLE_NAME", "BUCKET_NAME", "STATE_MACHINE_ARN"} <= api_env


def test_state_machine_substitutions_cover_the_definition():
    machine = resources_of_type("AWS::Serverless::StateMachine")["VoicePipeline"]["Properties"]
    definition = (REPO_ROOT / machine["DefinitionUri"]).read_text()
    json.loads(re.sub(r'"?\$\{(\w+)\}"?', "1", definition))  # valid JSON once substituted
    placeholders = set(re.findall(r"\$\{(\w+)\}", definition))
    assert placeholders == set(machine["DefinitionSubstitutions"]), placeholders ^ set(
        machine["DefinitionSubstitutions"]
    )


def test_runpod_key_is_a_secret_reference_not_plain_text():
    parameters = load_template()["Parameters"]
    assert "RunPodApiKeySecretArn" in parameters
    assert not any("ApiKey" in name and name != "RunPodApiKeySecretArn" for name in parameters)


def test_cfn_lint_is_clean():
    result = subprocess.run(
        [_tool("cfn-lint"), "template.yaml"], cwd=REPO_ROOT, capture_output=True, text=True, env=_tool_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_is_clean():
    result = subprocess.run(
        [_tool("sam"), "validate", "--lint"], cwd=REPO_ROOT, capture_output=True, text=True, env=_tool_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
