"""Cold import of every Lambda handler module: what a cold start pays before the first event.

    python benchmarks/cold_import.py                       # handler modules as the dev venv imports them
    python benchmarks/cold_import.py --build-dir .aws-sam/build   # from `sam build` output, as Lambda would

The figure is the one #12/#14 use: best of 5 fresh interpreters, the wall time of `import <handler module>`
measured inside the interpreter, so interpreter start-up ("a bare interpreter") is not counted.

With --build-dir, each interpreter sees only what Lambda would: the function's package, its layers' python/
directories, and boto3 with its dependencies (the runtime's, stood in for by this venv's copies), with
bytecode writes off as on Lambda's read-only file system. `import_ms` is shared with benchmarks/api_load.py
style measurements and with the packaging tests.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.lambda_packages import FUNCTION_LAYERS, FUNCTIONS, RUNTIME_PROVIDED  # noqa: E402

# Environment every template function has (Globals); values only need to be well formed.
LAMBDA_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TABLE_NAME": "voices",
    "BUCKET_NAME": "audio",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:voice-pipeline",
    "POWERTOOLS_SERVICE_NAME": "voice-onboarding",
    "POWERTOOLS_METRICS_NAMESPACE": "VoiceOnboarding",
}

_PROBE = (
    "import sys, time; sys.path[:0] = sys.argv[2:]; import importlib;"
    "start, cpu = time.perf_counter(), time.process_time(); importlib.import_module(sys.argv[1]);"
    "print((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000)"
)


def import_ms(module: str, paths: list[Path], runs: int = 5, isolated: bool = False) -> list[tuple[float, float]]:
    """(wall, CPU) milliseconds to import `module` in `runs` fresh interpreters, `paths` first on sys.path.
    CPU time is the steadier figure on a loaded machine. Isolated, the interpreter has no site-packages (-S)
    and cannot write bytecode (-B), as on Lambda's read-only disk."""
    flags = ["-I", "-S", "-B"] if isolated else ["-I"]
    command = [sys.executable, *flags, "-c", _PROBE, module, *(str(path) for path in paths)]
    env = {"PATH": os.environ.get("PATH", ""), **LAMBDA_ENV}
    timings = []
    for _ in range(runs):
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
        if result.returncode != 0:
            raise RuntimeError(f"import {module} failed:\n{result.stderr[-3000:]}")
        wall, cpu = result.stdout.strip().splitlines()[-1].split()
        timings.append((float(wall), float(cpu)))
    return timings


def runtime_standin(directory: Path) -> Path:
    """A directory holding only the distributions the Lambda runtime provides (boto3 and its dependencies),
    as links to this interpreter's copies."""
    from importlib import metadata

    directory.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PROVIDED:
        dist = metadata.distribution(name)
        top_levels = {Path(str(file)).parts[0] for file in dist.files or [] if not str(file).startswith("..")}
        for top in top_levels:
            source = Path(str(dist.locate_file(top)))
            link = directory / top
            if source.exists() and not link.exists():
                link.symlink_to(source, target_is_directory=source.is_dir())
    return directory


def bundle_paths(build_dir: Path, function: str, runtime: Path) -> list[Path]:
    """sys.path order on Lambda: /var/task, then each layer's /opt/python, then the runtime's packages."""
    layers = [build_dir / layer / "python" for layer in FUNCTION_LAYERS.get(function, ())]
    return [build_dir / function, *layers, runtime]


def main() -> None:
    parser = argparse.ArgumentParser(description="Cold import of each Lambda handler module")
    parser.add_argument("--build-dir", type=Path, help="`sam build` output to measure instead of the dev venv")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    where = f"from {args.build_dir}" if args.build_dir else "in the dev venv"
    print(f"Cold import of each handler module {where} (best of {args.runs} fresh interpreters; wall ms, best CPU ms)")
    with tempfile.TemporaryDirectory() as scratch:
        runtime = runtime_standin(Path(scratch) / "runtime")
        for function, (module, _groups) in FUNCTIONS.items():
            if args.build_dir:
                timings = import_ms(module, bundle_paths(args.build_dir, function, runtime), args.runs, isolated=True)
            else:
                timings = import_ms(module, [REPO / "functions"], args.runs)
            walls = sorted(wall for wall, _ in timings)
            best, median, cpu = walls[0], walls[len(walls) // 2], min(cpu for _, cpu in timings)
            print(f"  {function:<24} {module:<42} best {best:6.0f}  median {median:6.0f}  CPU {cpu:6.0f}")
    print(f"load average: {' '.join(f'{load:.1f}' for load in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
