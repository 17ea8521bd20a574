"""Build one function package or layer of template.yaml; `sam build` calls it through functions/Makefile.

    python infra/lambda_build.py <LogicalId> <ARTIFACTS_DIR> [--source DIR]

No Docker: pip fetches wheels for the Lambda platform whatever Python runs the build. python3.11 Lambdas run
on Amazon Linux 2 (glibc 2.26), so wheels up to manylinux_2_26; the pyproject caps (numpy<2.3,
imageio-ffmpeg<0.7) keep versions that publish such wheels. Then it drops what the runtime provides
(boto3 and its dependencies) and test suites, and precompiles bytecode (see compile_bytecode).
"""

import argparse
import compileall
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script by make

from infra.lambda_packages import (
    FUNCTIONS,
    LAYER_GROUPS,
    LAYER_IMPORTS,
    NO_DEPS,
    RUNTIME_PROVIDED,
    requirements_file,
)

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
# Pins for the Lambda platform only (the dev venv may resolve newer versions of the same groups).
LAMBDA_CONSTRAINTS = "constraints-lambda.txt"
LAMBDA_PYTHON = (3, 11)
PIP_PLATFORM = [
    "--only-binary=:all:",
    "--implementation", "cp",
    "--python-version", "3.11",
    "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux_2_24_x86_64",
    "--platform", "manylinux_2_26_x86_64",
]  # fmt: skip


def pip_install(groups: list[str], target: Path, source: Path) -> None:
    lines = [line.strip() for group in groups for line in (source / requirements_file(group)).read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    without_deps = [line for line in requirements if _normalized(_name(line)) in {_normalized(n) for n in NO_DEPS}]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts"]
    command += ["--no-compile", *PIP_PLATFORM, "--target", str(target)]  # compile_bytecode picks the modules
    command += ["--constraint", str(source / LAMBDA_CONSTRAINTS)]
    with_deps = [line for line in requirements if line not in without_deps]
    subprocess.run([*command, *with_deps], check=True)
    if without_deps:
        subprocess.run([*command, "--no-deps", *without_deps], check=True)


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def remove_distribution(target: Path, name: str) -> bool:
    """Uninstall one distribution from a --target directory by its RECORD (pip cannot uninstall there)."""
    for info in target.glob("*.dist-info"):
        if _normalized(info.name.removesuffix(".dist-info").rsplit("-", 1)[0]) != _normalized(name):
            continue
        root = target.resolve()
        for line in (info / "RECORD").read_text().splitlines():
            path = (target / line.split(",", 1)[0]).resolve()
            # Scripts are recorded as ../../bin/...: never delete anything outside the target.
            if path.is_relative_to(root) and path.is_file():
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
        for directory in sorted((p for p in target.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(directory.iterdir()):
                directory.rmdir()
        return True
    return False


# Files no Lambda runs: type stubs, what only compiling against a package needs (C headers, static
# libraries, Cython declarations), and numpy's extension modules that exist for its test suite (~3 MB).
UNUSED_AT_RUN_TIME = (
    *("*.pyi", "*.h", "*.a", "*.pxd", "numpy/_core/_simd.*.so", "numpy/_core/_*_tests.*.so"),
    # numpy 1.x (the Lambda build's, see constraints-lambda.txt) keeps _simd under core/, and has a deprecated
    # distutils; onnxruntime's model-conversion tooling is never used for inference
    # (not its _multiarray_tests: numpy 1.x's own import reads it).
    *("numpy/core/_simd.*.so", "numpy/distutils/**/*"),
    *("onnxruntime/transformers/**/*", "onnxruntime/quantization/**/*", "onnxruntime/tools/**/*"),
    # The quality models' wheels ship more models than the splitter reads (audio/models.py): DNSMOS P.835
    # sig_bak_ovr.onnx and Silero's 16k_op15 ONNX stay; the AEC/PLC/P.808 models, Silero's TorchScript,
    # half-precision, OpenVINO and other variants (~22 MB) go.
    *("speechmos/aecmos_models/*", "speechmos/plcmos_models/*", "speechmos/pdnsmos_models/*"),
    *("speechmos/dnsmos_models/model_v8.onnx", "speechmos/dnsmos_models/sig.onnx"),
    *("speechmos/dnsmos_models/bak_ovr.onnx", "silero_vad/data/*.jit", "silero_vad/data/*.safetensors"),
    *("silero_vad/data/silero_vad.onnx", "silero_vad/data/silero_vad_half.onnx"),
    *("silero_vad/data/silero_vad_op18_ifless.onnx", "silero_vad/data/silero_vad_openvino_16k.onnx"),
    "silero_vad/data/silero_vad_16k_sequence.onnx",
)


def prune(target: Path) -> None:
    """Test suites (numpy's are ~10 MB), build-time files, console scripts and stray caches."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for pattern in UNUSED_AT_RUN_TIME:
        for path in list(target.glob(pattern if "/" in pattern else f"**/{pattern}")):
            if path.is_file():
                path.unlink()
    for directory in sorted(target.rglob("*"), key=lambda p: -len(p.parts)):
        if not directory.is_dir():
            continue
        package_tests = directory.name == "tests" and (directory.parent / "__init__.py").exists()
        if package_tests or directory.name == "__pycache__":
            shutil.rmtree(directory)
        elif not any(directory.iterdir()):
            directory.rmdir()  # emptied by the patterns above


def compile_bytecode(target: Path, modules: list[str], layer: bool = False) -> None:
    """/var/task and /opt are read-only, so a module without a .pyc is compiled again at every cold start.
    Bytecode for the files that importing `modules` (a handler, a layer's packages) loads: for all of
    them it would add ~8 MB to an orchestration package. unchecked-hash pycs are used without comparing
    source timestamps, which a zip round-trip truncates."""
    if sys.version_info[:2] != LAMBDA_PYTHON:
        print(f"lambda_build: Python {sys.version_info[:2]} is not the runtime's 3.11; shipping no bytecode")
        return
    mode = compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH
    for path in cold_start_files(target, modules, layer):
        compileall.compile_file(path, quiet=1, force=True, invalidation_mode=mode)


def cold_start_files(target: Path, modules: list[str], layer: bool) -> list[Path]:
    """The files under target that importing the modules loads. The build interpreter's own site-packages
    stand in for the runtime's boto3 and for the layers (their files are not under target, so not listed)."""
    probe = (
        "import importlib, json, sys; sys.path.insert(0, sys.argv[1]);"
        "[importlib.import_module(module) for module in sys.argv[2:]];"
        "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"}
    # -B: the probe must not leave timestamp-checked pycs behind (compile_bytecode writes unchecked ones).
    command = [sys.executable, "-I", "-B", "-c", probe, str(target), *modules]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        if layer:  # what the functions import from a layer must import from it
            raise SystemExit(f"lambda_build: the layer's {modules} do not import:\n{result.stderr[-3000:]}")
        print(f"lambda_build: {modules} do not import here, shipping no bytecode for them:\n{result.stderr[-2000:]}")
        return []
    root = target.resolve()
    files = (Path(name).resolve() for name in json.loads(result.stdout.splitlines()[-1]) if name)
    return [path for path in files if path.suffix == ".py" and path.is_relative_to(root)]


def dependencies(groups: list[str], source: Path, cache_root: Path) -> Path:
    """The groups installed for the Lambda platform and pruned, once per `sam build`: five functions share
    the core alone. The cache lives in the build directory, which `sam build` empties at each start."""
    key = hashlib.sha256()
    for group in groups:
        key.update(group.encode() + (source / requirements_file(group)).read_bytes())
    key.update((source / LAMBDA_CONSTRAINTS).read_bytes())
    key.update(repr((PIP_PLATFORM, NO_DEPS, RUNTIME_PROVIDED, UNUSED_AT_RUN_TIME)).encode())
    cache_root.mkdir(parents=True, exist_ok=True)
    directory = cache_root / key.hexdigest()[:16]
    with (cache_root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # `sam build --parallel` builds functions concurrently
        if not directory.exists():
            staging = Path(tempfile.mkdtemp(dir=cache_root))
            pip_install(groups, staging, source)
            for name in RUNTIME_PROVIDED:
                remove_distribution(staging, name)
            prune(staging)
            staging.rename(directory)
    return directory


def build(logical_id: str, artifacts: Path, source: Path) -> None:
    if logical_id in FUNCTIONS:
        handler_module, groups = FUNCTIONS[logical_id]
        target, cold_start = artifacts, [handler_module]
        shutil.copytree(
            source / "voice_onboarding",
            target / "voice_onboarding",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
    elif logical_id in LAYER_GROUPS:
        groups = (LAYER_GROUPS[logical_id],)
        target = artifacts / "python"  # a layer's Python packages go under /opt/python
        cold_start = None
    else:
        raise SystemExit(f"lambda_build: {logical_id} is neither a function nor a layer of infra/lambda_packages.py")
    shutil.copytree(dependencies(list(groups), source, artifacts.parent / ".lambda-deps"), target, dirs_exist_ok=True)
    compile_bytecode(target, cold_start or list(LAYER_IMPORTS[logical_id]), layer=cold_start is None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logical_id")
    parser.add_argument("artifacts_dir", type=Path)
    parser.add_argument("--source", type=Path, default=FUNCTIONS_DIR, help="the functions/ directory to package")
    args = parser.parse_args()
    build(args.logical_id, args.artifacts_dir, args.source)


if __name__ == "__main__":
    main()
