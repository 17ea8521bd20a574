"""What each Lambda package and layer of template.yaml holds, and the size budgets they must keep.

Stdlib only: `sam build` runs infra/lambda_build.py (through functions/Makefile) with whatever Python
is at hand. The dependency groups are pyproject's: "core" is [project].dependencies, the others are
optional-dependency groups, each mirrored by functions/requirements[-group].txt (a test keeps them equal).
"""

# Each function's handler module (as template.yaml's Handler; a test keeps them equal) and the dependency
# groups it ships in its own package, on top of the voice_onboarding package. Orchestration functions
# ship the core alone: pydantic, pydantic-settings, powertools (+ X-Ray SDK), httpx.
FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ApiFunction": ("voice_onboarding.handlers.api", ("core", "api")),
    "SplitFunction": ("voice_onboarding.handlers.split", ("core",)),
    "GpuSubmitFunction": ("voice_onboarding.handlers.gpu_dispatch", ("core",)),
    "GpuPollFunction": ("voice_onboarding.handlers.gpu_dispatch", ("core",)),
    "GpuFinalizeFunction": ("voice_onboarding.handlers.gpu_dispatch", ("core",)),
    "PipelineStatusFunction": ("voice_onboarding.handlers.pipeline_status", ("core",)),
    "SweeperFunction": ("voice_onboarding.handlers.sweeper", ("core",)),
}

# Heavy groups live once in a layer (deployed once, shared), attached only to the functions that use them:
# ffmpeg (API sample transcoding, split) and audio analysis (numpy; the quality models' onnxruntime join it).
LAYER_GROUPS: dict[str, str] = {
    "FfmpegLayer": "ffmpeg",
    "AnalysisLayer": "analysis",
}
# What the functions import from each layer: the build imports these (and fails if they do not import)
# to ship their bytecode. speechmos and silero_vad are not imported at all, only their ONNX files read.
LAYER_IMPORTS: dict[str, tuple[str, ...]] = {
    "FfmpegLayer": ("imageio_ffmpeg",),
    "AnalysisLayer": ("numpy", "onnxruntime"),
}

# Distributions the Lambda python3.11 runtime already provides (/var/runtime): the build leaves them out.
# botocore alone is ~25 MB unzipped, more than everything else an orchestration function ships.
# Every API we call (DynamoDB conditional/transactional writes, S3 presigning, Step Functions,
# Secrets Manager, AWS_ENDPOINT_URL) predates the runtime's boto3 by years, and AWS patches it.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")

# Distributions installed without the dependencies they declare, because the Lambdas use only a part of
# them: silero-vad declares torch but only its ONNX files are read; onnxruntime's InferenceSession needs
# none of sympy, protobuf, coloredlogs, flatbuffers (~70 MB). The bundle import test covers the result.
NO_DEPS = ("silero-vad", "onnxruntime")

# Unzipped bytes a function may reach, its layers included (Lambda's hard limit is 250 MB).
# Orchestration: the package and its core dependencies. Audio (any function with a layer): ffmpeg, numpy
# and the quality models (onnxruntime ~19 MB, DNSMOS and Silero ONNX ~2.5 MB once pruned) reach ~168 MB
# for the split function; the budget keeps ~90 MB of Lambda's limit free.
MB = 1_000_000
ORCHESTRATION_BUDGET = 20 * MB
AUDIO_BUDGET = 175 * MB
LAMBDA_LIMIT = 250 * 1024 * 1024


def budget(function: str) -> int:
    return AUDIO_BUDGET if FUNCTION_LAYERS.get(function) else ORCHESTRATION_BUDGET


# Functions that use a layer, by the groups the layer brings. Kept here (not only in template.yaml) so
# the tests can check the template attaches exactly these.
FUNCTION_LAYERS: dict[str, tuple[str, ...]] = {
    "ApiFunction": ("FfmpegLayer",),
    "SplitFunction": ("FfmpegLayer", "AnalysisLayer"),
}


def groups_of(function: str) -> tuple[str, ...]:
    """Every dependency group a function can import: its own package's and its layers'."""
    layered = tuple(LAYER_GROUPS[layer] for layer in FUNCTION_LAYERS.get(function, ()))
    return FUNCTIONS[function][1] + layered


def requirements_file(group: str) -> str:
    return "requirements.txt" if group == "core" else f"requirements-{group}.txt"
