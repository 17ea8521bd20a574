"""Kyutai DSM TTS (delayed-streams model) through its `moshi` package: tts_type `kyutai`.

The voice is an *audio prefix*: the Mimi codes of a <= 10 s prompt, forced as the start of every generation
(what `TTSModel.simple_generate` does for `kyutai/tts-0.75b-en-public`). The artifact stores exactly that
tensor (`prefix`, [1 + n_q, frames], row 0 the null text stream) as safetensors, next to the prompt WAV that
moshi's own runtime takes as a voice (`file://prompt.wav`). English only; n_q is the checkpoint's own (16).

`kyutai/tts-1.6b-en_fr` takes voices as `speaker_wavs` embeddings made by an encoder Kyutai has not released:
it cannot take a voice from a sample, so the engine refuses multi-speaker checkpoints instead of using a
stock voice.

Weights: `KYUTAI_TTS_REPO` is a hub repo baked into the image at build time (download_weights.py, read with
HF_HUB_OFFLINE=1) or a local directory holding `config.json` and the files it names. A LoRA adapter made by
train_lora is loaded by moshi's own loader (`CheckpointInfo(lora_weights=...)`): `with_adapter`.
"""

import functools
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.engines.base import Engine, EngineUnavailable
from gpu_worker.engines.speaker_encoder import get_encoder
from voice_onboarding.contract.engines import KYUTAI

DEFAULT_REPO = "kyutai/tts-0.75b-en-public"
PREFIX_KEY = "prefix"
ADAPTER_CONFIG = "config.json"
ADAPTER_WEIGHTS = "lora.safetensors"


def settings() -> dict[str, Any]:
    return {
        "repo": os.environ.get("KYUTAI_TTS_REPO", DEFAULT_REPO),
        "device": os.environ.get("KYUTAI_DEVICE", "cuda"),
        "temp": float(os.environ.get("KYUTAI_TEMP", "0.6")),
        "cfg_coef": float(os.environ.get("KYUTAI_CFG_COEF", "2.0")),
        # Longest voice prompt: every prompt frame is also a generation step.
        "prompt_seconds": float(os.environ.get("KYUTAI_PROMPT_SECONDS", "10")),
        # Generation budget past the prompt: base + per word (then the text is cut, never looped forever).
        "gen_base_seconds": float(os.environ.get("KYUTAI_GEN_BASE_SECONDS", "2")),
        "gen_seconds_per_word": float(os.environ.get("KYUTAI_GEN_SECONDS_PER_WORD", "1")),
    }


def _unavailable(reason: str) -> EngineUnavailable:
    return EngineUnavailable(f"kyutai engine unavailable: {reason}")


def checkpoint_info(repo: str, config_path: Path | None = None, lora_weights: Path | None = None) -> Any:
    """moshi's CheckpointInfo for a hub repo or a local checkpoint directory (files named by its config.json)."""
    from moshi.models.loaders import CheckpointInfo

    local = Path(repo)
    if not local.is_dir():
        return CheckpointInfo.from_hf_repo(repo, config_path=config_path, lora_weights=lora_weights)
    config = json.loads((config_path or local / "config.json").read_text())
    mimi_config = config.get("mimi_config_name")
    return CheckpointInfo.from_hf_repo(
        str(local),
        moshi_weights=local / config.get("moshi_name", "model.safetensors"),
        mimi_weights=local / config["mimi_name"],
        tokenizer=local / config["tokenizer_name"],
        config_path=config_path or local / "config.json",
        mimi_config_path=local / mimi_config if mimi_config else None,
        lora_weights=lora_weights,
    )


def revision_of(path: Path) -> str | None:
    """The hub commit a cached file comes from (`.../snapshots/<commit>/file`), None for a local file."""
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


class KyutaiEngine(Engine):
    name = KYUTAI
    can_synthesize = True
    artifact_format = "moshi DSM audio prefix: safetensors {'prefix': int64 [1 + n_q, frames]} (+ prompt WAV)"

    def __init__(self, adapter: Path | None = None) -> None:
        cfg = settings()
        try:
            import torch
            from moshi.models.tts import TTSModel
        except ImportError as exc:
            raise _unavailable(f"moshi package not installed ({exc})") from exc
        if cfg["device"].startswith("cuda") and not torch.cuda.is_available():
            raise _unavailable("no CUDA device (set KYUTAI_DEVICE=cpu to force CPU)")
        try:
            info = checkpoint_info(
                cfg["repo"],
                config_path=adapter / ADAPTER_CONFIG if adapter else None,
                lora_weights=adapter / ADAPTER_WEIGHTS if adapter else None,
            )
            # n_q is the checkpoint's own: a prefix must have as many rows as the LM has codebooks.
            n_q = int((info.lm_config or {}).get("n_q", 16))
            dtype = torch.bfloat16 if cfg["device"].startswith("cuda") else torch.float32
            tts = TTSModel.from_checkpoint_info(info, n_q=n_q, temp=cfg["temp"], device=cfg["device"], dtype=dtype)
        except Exception as exc:
            raise _unavailable(
                f"cannot load {cfg['repo']} offline (weights baked at build time under $HF_HOME?): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if tts.multi_speaker:
            raise _unavailable(
                f"{cfg['repo']} conditions voices on precomputed speaker embeddings whose encoder is not public, "
                "so it cannot take a voice from a sample; use an audio-prefix checkpoint such as "
                f"{DEFAULT_REPO} (KYUTAI_TTS_REPO)"
            )
        if not tts.valid_cfg_conditionings:
            # Not CFG-distilled: CFG is applied at generation time (as simple_generate does).
            tts.cfg_coef = cfg["cfg_coef"]
        self.torch = torch
        self.tts = tts
        self.info = info
        self.cfg = cfg
        self.adapter = adapter
        self.sample_rate = int(tts.mimi.sample_rate)
        self.prompt_seconds = cfg["prompt_seconds"]
        self._lock = threading.Lock()  # one generation at a time: moshi's streaming state is per model
        get_encoder("cuda" if cfg["device"].startswith("cuda") else "cpu")

    def model_info(self) -> dict[str, Any]:
        return {
            "family": "kyutai-dsm",
            "runtime": "moshi 0.2.13 (TTSModel.generate(prefixes=[prefix])) or simple_generate(voice='file://prompt.wav')",
            "model_id": self.cfg["repo"],
            "revision": revision_of(self.info.moshi_weights),
            "model_sig": self.info.model_id,
            "n_q": self.tts.n_q,
            "frame_rate": self.tts.mimi.frame_rate,
            "prompt_max_seconds": self.prompt_seconds,
        }

    def condition_attributes(self) -> list[Any]:
        """What generate() is conditioned on: nothing, or the CFG value of a CFG-distilled checkpoint."""
        if self.tts.lm.condition_provider is None or not self.tts.lm.condition_provider.conditioners:
            return []
        distilled = self.tts.valid_cfg_conditionings
        coef = self.cfg["cfg_coef"] if self.cfg["cfg_coef"] in distilled else None
        return [self.tts.make_condition_attributes([], cfg_coef=coef)]

    def make_voice(self, prompt_wav: Path, dest: Path) -> None:
        from safetensors.torch import save_file

        prefix = self.tts.get_prefix(prompt_wav)  # Mimi codes of the prompt under a null text row
        save_file(
            {PREFIX_KEY: prefix.long().cpu().contiguous()}, str(dest), metadata={"sample_rate": str(self.sample_rate)}
        )

    def load_voice(self, artifact: Path) -> Any:
        from safetensors.torch import load_file

        prefix = load_file(str(artifact))[PREFIX_KEY].to(self.tts.lm.device)
        if prefix.shape[0] != self.tts.lm.num_codebooks:
            raise ValueError(f"voice has {prefix.shape[0]} rows, the model takes {self.tts.lm.num_codebooks}")
        return prefix

    def max_steps(self, prefix_frames: int, text: str) -> int:
        seconds = self.cfg["gen_base_seconds"] + self.cfg["gen_seconds_per_word"] * len(text.split())
        return prefix_frames + self.tts.delay_steps + math.ceil(seconds * self.tts.mimi.frame_rate)

    def synthesize(self, text: str, voice: Any) -> tuple[np.ndarray, int]:
        torch, tts = self.torch, self.tts
        prefix = voice
        entries = tts.prepare_script([text], padding_between=1)
        with self._lock, torch.no_grad():
            tts.max_gen_length = self.max_steps(prefix.shape[-1], text)
            result = tts.generate([entries], self.condition_attributes(), prefixes=[prefix])
            with tts.mimi.streaming(1):
                pcms = [torch.clip(tts.mimi.decode(f[:, 1:, :]), -1, 1) for f in result.frames[tts.delay_steps :]]
        # As simple_generate: drop two frames (a click), then the prompt; stop at the end step (None: the
        # budget ran out first, keep all that was generated).
        pcms = pcms[2:][prefix.shape[-1] : result.end_steps[0]]
        if not pcms:
            raise ValueError(f"kyutai generated no audio for {text[:40]!r}")
        audio = torch.cat([p[0, 0] for p in pcms]).float().cpu().numpy()
        return audio, self.sample_rate

    @functools.cached_property
    def _adapters(self) -> dict[str, "KyutaiEngine"]:
        return {}

    def with_adapter(self, adapter_dir: Path, key: str) -> "KyutaiEngine":
        """The engine with a train_lora adapter, loaded by moshi's loader; cached per `key` (speaker + version)."""
        if key not in self._adapters:
            self._adapters.clear()  # one adapted model at a time: each holds a full copy of the LM
            self._adapters[key] = KyutaiEngine(adapter=adapter_dir)
        return self._adapters[key]
