"""Table keys and S3 object keys: the single source of the storage layout."""

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
    return f"{speaker_prefix(owner, speaker_id)}conditioning/{tts_type}.npy"


def adapter_key(owner: str, speaker_id: str, version: int) -> str:
    return f"{speaker_prefix(owner, speaker_id)}adapters/v{version}/adapter.zip"


def adapter_evaluation_key(owner: str, speaker_id: str, version: int) -> str:
    return f"{speaker_prefix(owner, speaker_id)}adapters/v{version}/evaluation.opus"


def staged_upload_key(partner: str, upload_id: str) -> str:
    # Under uploads/: the bucket's lifecycle rule expires anything abandoned there.
    return f"uploads/{partner}/{upload_id}"


def bundle_key(partner: str, voice_id: str, bundle_id: str) -> str:
    return f"{voice_prefix(partner, voice_id)}bundles/{bundle_id}.zip"
