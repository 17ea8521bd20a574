"""Table keys and S3 object keys: the single source of the storage layout."""

from voice_onboarding.contract.engines import capabilities

VOICE_SK_PREFIX = "VOICE#"


def tenant_pk(partner: str) -> str:
    return f"TENANT#{partner}"


def voice_sk(name: str) -> str:
    return f"{VOICE_SK_PREFIX}{name}"


def voice_prefix(partner: str, voice_id: str) -> str:
    return f"{partner}/{voice_id}/"


def original_key(partner: str, voice_id: str) -> str:
    return f"{voice_prefix(partner, voice_id)}original.opus"


def sample_key(partner: str, voice_id: str, index: int) -> str:
    return f"{voice_prefix(partner, voice_id)}samples/{index}.opus"


def samples_prefix(partner: str, voice_id: str) -> str:
    return f"{voice_prefix(partner, voice_id)}samples/"


def test_samples_prefix(partner: str, voice_id: str, tts_type: str) -> str:
    return f"{voice_prefix(partner, voice_id)}test/{tts_type}/"


def embedding_zip_key(partner: str, voice_id: str, tts_type: str) -> str:
    return f"{voice_prefix(partner, voice_id)}embeddings/{tts_type}.zip"


SPEAKER_SK_PREFIX = "SPEAKER#"
CATALOG_PK = "CATALOG"


def speaker_sk(name: str) -> str:
    return f"{SPEAKER_SK_PREFIX}{name}"


def dataset_sample_sk(name: str, sample_id: str) -> str:
    # '#' after the name keeps "aria" from matching "aria-custom" in prefix queries.
    return f"{SPEAKER_SK_PREFIX}{name}#SAMPLE#{sample_id}"


def dataset_samples_prefix(name: str) -> str:
    return f"{SPEAKER_SK_PREFIX}{name}#SAMPLE#"


def catalog_sk(voice_sample_uuid: str) -> str:
    return f"VS#{voice_sample_uuid}"


def speaker_prefix(owner: str, speaker_id: str) -> str:
    return f"{owner}/speakers/{speaker_id}/"


def speaker_reference_key(owner: str, speaker_id: str, extension: str) -> str:
    return f"{speaker_prefix(owner, speaker_id)}reference.{extension}"


def dataset_sample_key(owner: str, speaker_id: str, sample_id: str, extension: str) -> str:
    return f"{speaker_prefix(owner, speaker_id)}dataset/{sample_id}.{extension}"


def speaker_conditioning_key(owner: str, speaker_id: str, tts_type: str) -> str:
    """The clone job's output: a Kyutai voice artifact (.safetensors) or a similarity vector (.npy)."""
    extension = capabilities(tts_type).conditioning_extension
    return f"{speaker_prefix(owner, speaker_id)}conditioning/{tts_type}.{extension}"


def adapter_key(owner: str, speaker_id: str, version: int) -> str:
    return f"{speaker_prefix(owner, speaker_id)}adapters/v{version}/adapter.zip"


def adapter_evaluation_key(owner: str, speaker_id: str, version: int) -> str:
    return f"{speaker_prefix(owner, speaker_id)}adapters/v{version}/evaluation.opus"


def adapter_metadata_key(owner: str, speaker_id: str, version: int) -> str:
    # Hyperparameters + evaluation next to the weights, so an adapter folder is self-describing.
    return f"{speaker_prefix(owner, speaker_id)}adapters/v{version}/metadata.json"


def adapter_prefix(owner: str, speaker_id: str, version: int) -> str:
    return f"{speaker_prefix(owner, speaker_id)}adapters/v{version}/"


def speaker_children_prefix(name: str) -> str:
    """Every item that belongs to one speaker (dataset samples, adapter versions), not the speaker."""
    return f"{SPEAKER_SK_PREFIX}{name}#"


def adapter_sk(name: str, version: int) -> str:
    # Zero-padded so versions sort numerically in a query.
    return f"{SPEAKER_SK_PREFIX}{name}#ADAPTER#{version:06d}"


def adapters_prefix(name: str) -> str:
    return f"{SPEAKER_SK_PREFIX}{name}#ADAPTER#"


def rate_limit_pk(subject: str, route: str) -> str:
    return f"RATE#{subject}#{route}"


def rate_limit_sk(window_start: int) -> str:
    return f"WINDOW#{window_start}"


def staged_upload_key(partner: str, upload_id: str) -> str:
    # Under uploads/: the bucket's lifecycle rule expires anything abandoned there.
    return f"uploads/{partner}/{upload_id}"


def bundle_key(partner: str, voice_id: str, bundle_id: str) -> str:
    return f"{voice_prefix(partner, voice_id)}bundles/{bundle_id}.zip"


def sample_staging_key(partner: str, token: str) -> str:
    # Under uploads/ too: if the compensating delete fails, the lifecycle rule still removes it.
    return f"uploads/{partner}/staging/{token}.opus"


# Cleanup markers (PK=CLEANUP, SK=S3 key or prefix): S3 objects that must go unless a live voice owns them.
CLEANUP_PK = "CLEANUP"


IDEMPOTENCY_SK = "IDEMPOTENCY"


def idempotency_pk(scope: str, idempotency_key: str) -> str:
    return f"IDEMPOTENCY#{scope}#{idempotency_key}"
