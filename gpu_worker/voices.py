"""A voice from a recording: prompt selection -> the engine's artifact on disk -> reloaded as a runtime would."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_worker import audio
from gpu_worker.engines import Engine, get_engine
from gpu_worker.prompt import Prompt, select_prompt

PROMPT_NAME = "prompt.wav"


@dataclass
class VoiceFiles:
    prompt: Prompt
    prompt_path: Path
    artifact_path: Path


def engine_for(tts_type: str, language: str | None = None) -> Engine:
    """The cached engine of `tts_type`, speaking `language` when it has one model per language."""
    engine = get_engine(tts_type)
    with_language = getattr(engine, "with_language", None)
    return with_language(language) if with_language else engine


def make_voice_files(engine: Engine, source: Path, workdir: Path) -> VoiceFiles:
    """Writes `prompt.wav` (PCM 16-bit at the engine's rate) and the engine's artifact under `workdir`."""
    import soundfile as sf

    assert engine.prompt_seconds is not None, f"{engine.name} takes no voice prompt"
    workdir.mkdir(parents=True, exist_ok=True)
    prompt = select_prompt(audio.load_mono(source, engine.sample_rate), engine.sample_rate, engine.prompt_seconds)
    prompt_path = workdir / PROMPT_NAME
    # PCM 16-bit: the WAV every runtime reads (pocket-tts's reader refuses float WAVs).
    sf.write(prompt_path, prompt.wav, engine.sample_rate, subtype="PCM_16")
    artifact_path = workdir / engine.artifact_name
    engine.make_voice(prompt_path, artifact_path)
    return VoiceFiles(prompt, prompt_path, artifact_path)


def reload_voice(engine: Engine, artifact_path: Path) -> Any:
    """The stored artifact, loaded back from its file: what every test sample is spoken with."""
    return engine.load_voice(artifact_path)


def prompt_manifest(files: VoiceFiles) -> dict[str, Any]:
    p = files.prompt
    return {
        "seconds": round(p.seconds, 3),
        "source_start_seconds": round(p.start_seconds, 3),
        "source_end_seconds": round(p.end_seconds, 3),
        "cut": p.cut,
        "source_loudness_lufs": None if p.loudness_lufs is None else round(p.loudness_lufs, 2),
    }
