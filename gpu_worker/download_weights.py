"""Bake the Kyutai weights into the image at build time (HF cache under $HF_HOME, e.g. /models/hf).

- DSM (`kyutai`): `CheckpointInfo.from_hf_repo` downloads exactly what the checkpoint's config names (LM,
  Mimi codec, text tokenizer, possibly from other repos). Public: no token needed.
- Pocket TTS (`kyutai-pocket`): one model per language in POCKET_LANGUAGES (default `english`; empty =
  none). Its voice-cloning weights are gated: the build needs an HF token that accepted kyutai/pocket-tts's
  terms, as a BuildKit secret (`--secret id=hf_token,env=HF_TOKEN`), never a layer. Without it pocket-tts
  falls back to weights that cannot clone, and this script fails rather than bake a useless model.

Everything is then resolved again in a subprocess with HF_HUB_OFFLINE=1, as the worker does at run time, so a
build whose cache is incomplete fails here rather than on a cold start. Resemblyzer's weights ship in its wheel.

    HF_HOME=/models/hf KYUTAI_TTS_REPO=kyutai/tts-0.75b-en-public POCKET_LANGUAGES=english,french \\
        python -m gpu_worker.download_weights
"""

import os
import subprocess
import sys

DEFAULT_REPO = "kyutai/tts-0.75b-en-public"
RESOLVE_DSM = "from moshi.models.loaders import CheckpointInfo as C; import sys; i = C.from_hf_repo(sys.argv[1]); print(i.moshi_weights, i.mimi_weights, i.tokenizer)"  # noqa: E501
RESOLVE_POCKET = "import sys, pocket_tts; m = pocket_tts.TTSModel.load_model(language=sys.argv[1]); assert m.has_voice_cloning, 'no voice-cloning weights'; print(sys.argv[1], 'ok')"  # noqa: E501


def _offline(code: str, arg: str) -> int:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    check = subprocess.run([sys.executable, "-c", code, arg], env=env, capture_output=True, text=True, check=False)
    if check.returncode != 0:
        print(f"offline resolution of {arg} failed:\n{check.stderr}", file=sys.stderr)
        return 1
    print(f"offline resolution ok: {check.stdout.strip()}")
    return 0


def main() -> int:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        print("HF_HUB_OFFLINE=1: unset it for the download step", file=sys.stderr)
        return 2
    from moshi.models.loaders import CheckpointInfo

    repo = os.environ.get("KYUTAI_TTS_REPO") or DEFAULT_REPO
    info = CheckpointInfo.from_hf_repo(repo)
    print(f"downloaded {repo}: moshi={info.moshi_weights} mimi={info.mimi_weights} tokenizer={info.tokenizer}")
    if _offline(RESOLVE_DSM, repo):
        return 1

    import pocket_tts

    for language in filter(None, (x.strip() for x in os.environ.get("POCKET_LANGUAGES", "english").split(","))):
        model = pocket_tts.TTSModel.load_model(language=language)
        if not model.has_voice_cloning:
            print(
                f"pocket-tts {language}: only the weights without voice cloning could be downloaded. Pass an HF "
                "token that accepted kyutai/pocket-tts's terms (--secret id=hf_token,env=HF_TOKEN), or build "
                "with POCKET_LANGUAGES= to leave kyutai-pocket out.",
                file=sys.stderr,
            )
            return 1
        if _offline(RESOLVE_POCKET, language):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
