"""Kyutai Pocket TTS (`pocket-tts`, ~100M parameters, runs on CPU): tts_type `kyutai-pocket`.

Pocket TTS's own audio -> voice path: `get_state_for_audio_prompt(prompt.wav)` encodes the prompt and runs
the flow LM over it; `export_model_state` writes that state as safetensors, and any Pocket TTS runtime
reloads it with `get_state_for_audio_prompt("voice.safetensors")` (or `pocket-tts generate --voice`).
A voice state belongs to the model that made it: one model per language (english, french, german,
portuguese, italian, spanish, dutch), and the manifest names which.

Weights: the voice-cloning weights are gated on the hub; the image bakes them at build time
(download_weights.py, HF token as a BuildKit secret) and reads them offline. A model loaded without them
(pocket-tts falls back to its no-cloning weights) cannot take a voice from audio: the engine refuses it.
`POCKET_TTS_CONFIG` (a YAML path) replaces the per-language configs (tests: a tiny random model).
"""

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.engines.base import Engine, EngineUnavailable
from gpu_worker.engines.speaker_encoder import get_encoder
from voice_onboarding.contract.engines import KYUTAI_POCKET

# ISO 639-1 -> pocket-tts language config (the `language=` of TTSModel.load_model).
LANGUAGES = {
    "en": "english",
    "fr": "french",
    "de": "german",
    "pt": "portuguese",
    "it": "italian",
    "es": "spanish",
    "nl": "dutch",
}


def cloning_weights_present(language: str = "english", cache_dir: str | None = None) -> bool:
    """Whether Pocket TTS can clone voices here without a prompt for credentials: its voice-cloning weights and
    tokenizer are in the HF cache, or an HF_TOKEN is set (pocket-tts downloads them on first use). Reads the
    wheel's YAML without importing pocket_tts (no torch), for the local stack's start-up."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("pocket_tts")
    if spec is None or not spec.submodule_search_locations:
        return False
    if os.environ.get("HF_TOKEN"):
        return True
    from huggingface_hub import try_to_load_from_cache

    config = yaml.safe_load(
        (Path(next(iter(spec.submodule_search_locations))) / "config" / f"{language}.yaml").read_text()
    )
    for source in (config.get("weights_path"), config["flow_lm"]["lookup_table"].get("tokenizer_path")):
        if not source or not source.startswith("hf://"):
            return False
        path, _, revision = source.removeprefix("hf://").partition("@")
        parts = path.split("/")
        cached = try_to_load_from_cache(
            "/".join(parts[:2]), "/".join(parts[2:]), cache_dir=cache_dir, revision=revision or None
        )
        if not isinstance(cached, str):
            return False
    return True


def _unavailable(reason: str) -> EngineUnavailable:
    return EngineUnavailable(f"kyutai-pocket engine unavailable: {reason}")


def import_pocket_tts() -> Any:
    """Imports pocket_tts without its import-time `torch.set_num_threads(1)` leaking into the worker."""
    import torch

    threads = torch.get_num_threads()
    try:
        import pocket_tts
    except ImportError as exc:
        raise _unavailable(f"pocket-tts package not installed ({exc})") from exc
    finally:
        torch.set_num_threads(threads)
    return pocket_tts


class PocketEngine(Engine):
    name = KYUTAI_POCKET
    can_synthesize = True
    sample_rate = 24_000
    artifact_format = "pocket-tts voice state: export_model_state safetensors (get_state_for_audio_prompt reloads it)"

    def __init__(self, language: str = "en") -> None:
        self.pocket = import_pocket_tts()
        self.config = os.environ.get("POCKET_TTS_CONFIG") or None
        self.prompt_seconds = float(os.environ.get("POCKET_PROMPT_SECONDS", "10"))
        self.device = os.environ.get("POCKET_DEVICE", "cpu")
        self._models: dict[str, Any] = {}
        self._lock = threading.RLock()  # model() is called under it from synthesize
        self.language = language
        self.model(language)  # load now: a missing weight fails the job (or the fitness check) up front
        get_encoder()

    def model(self, language: str | None = None) -> Any:
        code = (language or self.language).split("-")[0].lower()
        if code not in LANGUAGES:
            raise ValueError(f"kyutai-pocket does not speak {language!r}; it speaks {', '.join(sorted(LANGUAGES))}")
        with self._lock:
            if code not in self._models:
                try:
                    if self.config:
                        tts = self.pocket.TTSModel.load_model(config=self.config)
                    else:
                        tts = self.pocket.TTSModel.load_model(language=LANGUAGES[code])
                except Exception as exc:
                    raise _unavailable(
                        f"cannot load the {LANGUAGES[code]} model offline (weights baked at build time under "
                        f"$HF_HOME?): {type(exc).__name__}: {exc}"
                    ) from exc
                if not tts.has_voice_cloning:
                    raise _unavailable(
                        "only the weights without voice cloning are present (the cloning weights are gated: "
                        "bake them with an HF token that accepted kyutai/pocket-tts's terms)"
                    )
                self._models[code] = tts.to(self.device)
            return self._models[code]

    def with_language(self, language: str | None) -> "PocketEngine":
        """This engine speaking `language` (its model loaded on first use)."""
        if not language:
            return self
        self.model(language)
        view = object.__new__(PocketEngine)
        view.__dict__.update(self.__dict__)
        view.language = language.split("-")[0].lower()
        return view

    def model_info(self) -> dict[str, Any]:
        tts = self.model()
        cfg = tts.config
        return {
            "family": "kyutai-pocket",
            "runtime": "pocket-tts 4.0.1: TTSModel.load_model(language=...)"
            ".get_state_for_audio_prompt('voice.safetensors')",
            "language": self.language,
            "model_id": str(tts.origin.stem if tts.origin else self.config),
            # The weights' hub path carries the revision ("hf://repo/file@commit").
            "weights": cfg.weights_path,
            "revision": cfg.weights_path.rsplit("@", 1)[1] if cfg.weights_path and "@" in cfg.weights_path else None,
            "prompt_max_seconds": self.prompt_seconds,
        }

    def make_voice(self, prompt_wav: Path, dest: Path) -> None:
        state = self.model().get_state_for_audio_prompt(Path(prompt_wav))
        self.pocket.export_model_state(state, dest)

    def load_voice(self, artifact: Path) -> Any:
        return self.model().get_state_for_audio_prompt(Path(artifact))

    def synthesize(self, text: str, voice: Any) -> tuple[np.ndarray, int]:
        with self._lock:  # generate_audio is not thread-safe
            audio = self.model().generate_audio(voice, text, copy_state=True)
        wav = audio.float().cpu().numpy().reshape(-1)
        if wav.size == 0:
            raise ValueError(f"kyutai-pocket generated no audio for {text[:40]!r}")
        return wav, self.sample_rate
