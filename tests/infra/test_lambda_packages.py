"""Each Lambda ships what it imports: its own dependency groups, ffmpeg and numpy once in layers, within budget.

infra/lambda_packages.py declares the packaging; these tests hold template.yaml, pyproject, the requirements
files and the code's imports to it, and (slow) check what `sam build` really produces.
"""

import ast
import re
import stat
import subprocess
import sys
import tomllib
from collections import defaultdict
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from benchmarks.cold_import import bundle_paths, import_ms, runtime_standin
from benchmarks.lambda_size import function_sizes, report, sam_build
from infra.cfn_template import REPO_ROOT, load_template, resources_of_type
from infra.lambda_packages import (
    FUNCTION_LAYERS,
    FUNCTIONS,
    LAMBDA_LIMIT,
    LAYER_GROUPS,
    LAYER_IMPORTS,
    ORCHESTRATION_BUDGET,
    RUNTIME_PROVIDED,
    budget,
    groups_of,
    requirements_file,
)
from packaging.requirements import Requirement

FUNCTIONS_DIR = REPO_ROOT / "functions"
PACKAGE_DIR = FUNCTIONS_DIR / "voice_onboarding"
GROUPS = sorted({group for _, groups in FUNCTIONS.values() for group in groups} | set(LAYER_GROUPS.values()))


def _requirement_lines(group: str) -> list[str]:
    lines = (FUNCTIONS_DIR / requirements_file(group)).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pyproject_group(group: str) -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] if group == "core" else project["optional-dependencies"][group]


@pytest.mark.parametrize("group", GROUPS)
def test_requirements_file_matches_its_pyproject_group(group):
    assert sorted(_requirement_lines(group)) == sorted(_pyproject_group(group))


def test_every_requirements_file_is_a_packaged_group():
    files = {path.name for path in FUNCTIONS_DIR.glob("requirements*.txt")}
    assert files == {requirements_file(group) for group in GROUPS}


def test_template_functions_are_the_packaged_ones_and_build_with_the_makefile():
    functions = resources_of_type("AWS::Serverless::Function")
    hint = "a function's packaging is declared in infra/lambda_packages.py FUNCTIONS (handler module, groups)"
    assert set(functions) == set(FUNCTIONS), hint
    for name, function in functions.items():
        assert function["Properties"]["Handler"].rsplit(".", 1)[0] == FUNCTIONS[name][0], f"{name}: {hint}"
        assert function.get("Metadata", {}).get("BuildMethod") == "makefile", f"{name}: BuildMethod makefile"


def test_layers_are_built_once_and_attached_only_where_declared():
    layers = resources_of_type("AWS::Serverless::LayerVersion")
    assert set(layers) == set(LAYER_GROUPS) == set(LAYER_IMPORTS)
    for name, layer in layers.items():
        assert layer["Metadata"]["BuildMethod"] == "makefile", name
        assert layer["Properties"]["CompatibleRuntimes"] == [load_template()["Globals"]["Function"]["Runtime"]]
    for name, function in resources_of_type("AWS::Serverless::Function").items():
        attached = tuple(layer["Ref"] for layer in function["Properties"].get("Layers", []))
        assert attached == FUNCTION_LAYERS.get(name, ()), name


def test_removing_a_runtime_provided_distribution_stays_inside_the_target(tmp_path):
    from infra.lambda_build import remove_distribution

    target, outside = tmp_path / "build" / "Fn", tmp_path / "bin" / "jp.py"
    (target / "jmespath").mkdir(parents=True)
    (target / "jmespath" / "__init__.py").write_text("")
    (target / "keep.py").write_text("")
    outside.parent.mkdir()
    outside.write_text("")
    info = target / "jmespath-1.1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("jmespath/__init__.py,,\n../../bin/jp.py,,\njmespath-1.1.0.dist-info/RECORD,,\n")
    assert remove_distribution(target, "JMESPath")
    assert sorted(path.name for path in target.iterdir()) == ["keep.py"]
    assert outside.exists()


# --- what the code imports, statically (function-level imports included: they run on some request) ---


def _module_file(module: str) -> Path | None:
    relative = Path(*module.split("."))
    for candidate in (FUNCTIONS_DIR / relative / "__init__.py", FUNCTIONS_DIR / relative.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports_of(module: str) -> set[str]:
    path = _module_file(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    nodes = [ast.parse(path.read_text())]
    while nodes:
        node = nodes.pop()
        if _is_type_checking(node):
            continue  # annotations only, never executed
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")}
        nodes.extend(ast.iter_child_nodes(node))
    return found


@cache
def _third_party_imports(handler_module: str) -> frozenset[str]:
    """Top-level third-party modules reachable from the handler through voice_onboarding's imports."""
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = [handler_module]
    while pending:
        module = pending.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            name = ".".join(parts[:depth])
            if name in seen or _module_file(name) is None:
                continue
            seen.add(name)
            for imported in _imports_of(name):
                top = imported.split(".")[0]
                if top == "voice_onboarding":
                    pending.append(imported)
                elif top not in sys.stdlib_module_names:
                    third_party.add(top)
    return frozenset(third_party)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _modules_of_groups(groups: tuple[str, ...]) -> frozenset[str]:
    """Top-level modules the groups' requirements and their dependencies install (here, in the dev venv)."""
    modules_by_dist: dict[str, set[str]] = defaultdict(set)
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            modules_by_dist[_normalized(dist)].add(module)
    seen: set[str] = set()
    pending = [Requirement(line) for group in groups for line in _requirement_lines(group)]
    while pending:
        requirement = pending.pop()
        if _normalized(requirement.name) in seen:
            continue
        seen.add(_normalized(requirement.name))
        for line in metadata.requires(requirement.name) or []:
            dependency = Requirement(line)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(dependency)
    return frozenset(module for dist in seen for module in modules_by_dist[dist])


# Imported only in local mode by the in-process GPU client, which the job-spine re-cut moves under infra/.
LOCAL_MODE_ONLY = {"gpu_worker"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_function_ships_every_third_party_module_its_code_imports(function):
    handler_module = FUNCTIONS[function][0]
    missing = _third_party_imports(handler_module) - _modules_of_groups(groups_of(function)) - LOCAL_MODE_ONLY
    assert not missing, f"{function} ({handler_module}) imports {sorted(missing)}, which its package and layers lack"


@pytest.mark.parametrize("function", sorted(name for name in FUNCTIONS if budget(name) == ORCHESTRATION_BUDGET))
def test_orchestration_functions_import_no_web_framework_or_audio_stack(function):
    imported = _third_party_imports(FUNCTIONS[function][0])
    assert not imported & {"fastapi", "starlette", "mangum", "numpy", "imageio_ffmpeg", "pydub", "yaml"}


# --- what `sam build` produces (slow: fetches wheels for the Lambda platform) ---


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    """One `sam build` for all the checks below; no container (pure wheels for the Lambda platform)."""
    root = tmp_path_factory.mktemp("sam")
    sam_build(root / "build", root / "cache")
    return root / "build"


@pytest.mark.slow
def test_sam_build_without_docker_lays_out_packages_and_layers(build_dir):
    assert (build_dir / "SplitFunction" / "voice_onboarding" / "handlers" / "split.py").exists()
    ffmpeg = list((build_dir / "FfmpegLayer" / "python" / "imageio_ffmpeg" / "binaries").glob("ffmpeg-linux-x86_64*"))
    assert ffmpeg, "ffmpeg binary missing from the layer"
    assert ffmpeg[0].stat().st_mode & stat.S_IXUSR, "the layer's ffmpeg is not executable"
    encoders = subprocess.run([ffmpeg[0], "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60)
    assert "libopus" in encoders.stdout
    assert (build_dir / "AnalysisLayer" / "python" / "numpy" / "__init__.py").exists()
    for function in FUNCTIONS:  # ffmpeg and numpy only in their layers, never copied into a function
        assert not (build_dir / function / "numpy").exists(), function
        assert not (build_dir / function / "imageio_ffmpeg").exists(), function


@pytest.mark.slow
def test_functions_ship_unchecked_bytecode_for_their_cold_start(build_dir):
    """Lambda's read-only disk cannot cache bytecode, and a zip round-trip breaks timestamp-checked pycs."""
    for function, (module, _groups) in FUNCTIONS.items():
        handler = build_dir / function / Path(*module.split(".")).parent / "__pycache__"
        pycs = list((build_dir / function).rglob("*.cpython-311.pyc"))
        assert list(handler.glob(f"{module.rsplit('.', 1)[1]}.cpython-311.pyc")), function
        # flags word after the magic: 0b01 = hash-based, 0b10 = check_source; unchecked hash is 0b01
        assert {int.from_bytes(pyc.read_bytes()[4:8], "little") for pyc in pycs} == {1}, function


@pytest.mark.slow
def test_runtime_provided_packages_are_left_out(build_dir):
    provided = {_normalized(name) for name in RUNTIME_PROVIDED}
    directories = [*(build_dir / name for name in FUNCTIONS), *(build_dir / name / "python" for name in LAYER_GROUPS)]
    for directory in directories:
        installed = {_normalized(info.stem.rsplit("-", 1)[0]) for info in directory.glob("*.dist-info")}
        assert not installed & provided, directory.name
        assert not (directory / "botocore").exists(), directory.name


@pytest.mark.slow
def test_every_function_fits_its_budget(build_dir):
    sizes = function_sizes(build_dir)
    print("\n".join(report(sizes)))
    assert set(sizes) == set(FUNCTIONS)
    for name, size in sizes.items():
        limit = min(budget(name), LAMBDA_LIMIT)
        assert size.total <= limit, f"{name}: {size.total / 1e6:.1f} MB unzipped, budget {limit / 1e6:.0f} MB"


@pytest.mark.slow
def test_split_runs_its_quality_models_from_its_package_and_layers_alone(build_dir, tmp_path):
    """The models load lazily, so the handler import does not prove them: run both on the Lambda's sys.path
    (onnxruntime 1.16.3, the only wheel for glibc 2.26, needs numpy 1.x: constraints-lambda.txt)."""
    paths = bundle_paths(build_dir, "SplitFunction", runtime_standin(tmp_path / "runtime"))
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]; import numpy as np, onnxruntime;"
        "from voice_onboarding.audio import models; signal = np.random.default_rng(0).normal(0, 0.1, 16000);"
        "print(onnxruntime.__version__, np.__version__, models.dnsmos(signal).ovrl,"
        " models.speech_probabilities(signal).shape)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code, *map(str, paths)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)


@pytest.mark.slow
def test_every_handler_imports_from_its_package_layers_and_the_runtime_alone(build_dir, tmp_path):
    """What Lambda's sys.path holds: the package, the layers, boto3 of the runtime. A missing dependency or an
    over-eager prune fails here, not on the first cold start."""
    runtime = runtime_standin(tmp_path / "runtime")
    for function, (module, _groups) in FUNCTIONS.items():
        paths = bundle_paths(build_dir, function, runtime)
        import_ms(module, paths, runs=1, isolated=True)  # raises with the traceback if the import fails
