"""Bake the Kyutai TTS weights into the image at build time (HF cache under $HF_HOME, e.g. /models/hf).

At run time HF_HUB_OFFLINE=1, so `CheckpointInfo.from_hf_repo` resolves the same files from this cache
and a cold start never downloads. Resemblyzer's weights ship inside its wheel.

    HF_HOME=/models/hf KYUTAI_TTS_REPO=kyutai/tts-1.6b-en_fr python -m gpu_worker.download_weights
"""

import os
import sys


def main() -> int:
    from huggingface_hub import snapshot_download
    from moshi.models.loaders import CheckpointInfo

    from gpu_worker.engines.kyutai import DEFAULT_REPO

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        print("HF_HUB_OFFLINE=1: unset it for the download step", file=sys.stderr)
        return 2
    repo = os.environ.get("KYUTAI_TTS_REPO", DEFAULT_REPO)
    path = snapshot_download(repo, allow_patterns=["*.json", "*.safetensors", "*.model", "*.yaml"])
    # from_hf_repo also fetches files the config points to in other repos (codec, tokenizer).
    info = CheckpointInfo.from_hf_repo(repo)
    print(f"baked {repo} -> {path}; moshi={info.moshi_weights} mimi={info.mimi_weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
