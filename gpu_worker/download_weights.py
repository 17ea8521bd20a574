"""Bake the Kyutai TTS weights into the image at build time (HF cache under $HF_HOME, e.g. /models/hf).

`CheckpointInfo.from_hf_repo` downloads exactly what the checkpoint's config names (LM, Mimi codec,
text tokenizer, possibly from other repos). The script then resolves them again in a subprocess with
HF_HUB_OFFLINE=1, as the worker does at run time, so a build whose cache is incomplete fails here
rather than on a cold start. Resemblyzer's weights ship inside its wheel.

    HF_HOME=/models/hf KYUTAI_TTS_REPO=kyutai/tts-0.75b-en-public python -m gpu_worker.download_weights
"""

import os
import subprocess
import sys

RESOLVE = "from moshi.models.loaders import CheckpointInfo as C; import sys; i = C.from_hf_repo(sys.argv[1]); print(i.moshi_weights, i.mimi_weights, i.tokenizer)"  # noqa: E501


def main() -> int:
    from moshi.models.loaders import CheckpointInfo

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        print("HF_HUB_OFFLINE=1: unset it for the download step", file=sys.stderr)
        return 2
    repo = os.environ.get("KYUTAI_TTS_REPO")
    if not repo:
        from gpu_worker.engines.kyutai import DEFAULT_REPO

        repo = DEFAULT_REPO
    info = CheckpointInfo.from_hf_repo(repo)
    print(f"downloaded {repo}: moshi={info.moshi_weights} mimi={info.mimi_weights} tokenizer={info.tokenizer}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    check = subprocess.run([sys.executable, "-c", RESOLVE, repo], env=env, capture_output=True, text=True, check=False)
    if check.returncode != 0:
        print(f"offline resolution of {repo} failed:\n{check.stderr}", file=sys.stderr)
        return 1
    print(f"offline resolution ok: {check.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
