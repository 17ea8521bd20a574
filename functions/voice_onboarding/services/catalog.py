"""The shared voice catalog: deploy (publish) and undeploy speakers, list what is published.

A speaker's `voice_sample_uuid` (`vs_` + random) is assigned at its first deploy and kept across
undeploy/redeploy, so campaigns that reference it resolve to the same voice again. Deploy requires a
completed clone (status `ready`): a catalog entry must be usable by the flows that pick it. The entry names
the engine and the speaker's latest completed adapter version: synthesis for the voice loads that adapter
(moshi's loader, `KyutaiEngine.with_adapter` in the worker); a redeploy publishes a newer one.
"""

import secrets

from voice_onboarding.domain.errors import SpeakerNotFound, SpeakerNotReady
from voice_onboarding.domain.speaker import CatalogEntry, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.services.container import Services
from voice_onboarding.storage.optimistic import VersionConflict, retry_on_conflict


def new_voice_sample_uuid() -> str:
    return "vs_" + secrets.token_hex(8)


def deploy(services: Services, owner: str, name: str) -> SpeakerRecord:
    """Idempotent: deploying a deployed speaker refreshes its entry and keeps its uuid. A lost race (a
    concurrent first deploy set the uuid, or the speaker changed between our read and the transaction)
    is retried with the shared bounded backoff (storage/optimistic.py), then 503 + Retry-After."""
    return retry_on_conflict(lambda: _deploy_once(services, owner, name))


def _deploy_once(services: Services, owner: str, name: str) -> SpeakerRecord:
    speaker = _require_ready(services, owner, name)
    completed = [a for a in services.speakers.list_adapters(owner, name) if a.status == JobStatus.COMPLETED]
    entry = CatalogEntry(
        voice_sample_uuid=speaker.voice_sample_uuid or new_voice_sample_uuid(),
        name=speaker.name,
        language=speaker.language,
        description=speaker.description,
        owner=owner,
        speaker_id=speaker.speaker_id,
        deployed_at=utc_now_iso(),
        tts_type=speaker.tts_type,
        adapter_version=max((a.version for a in completed), default=None),
    )
    if services.catalog.publish(entry, speaker.speaker_id):
        return services.speakers.require(owner, name)
    # Why did the condition fail? Gone or no longer ready: say so. Otherwise it was a race: re-read.
    _require_ready(services, owner, name)
    raise VersionConflict()


def _require_ready(services: Services, owner: str, name: str) -> SpeakerRecord:
    speaker = services.speakers.require(owner, name)
    if speaker.clone_status != JobStatus.COMPLETED:
        raise SpeakerNotReady()
    return speaker


def undeploy(services: Services, owner: str, name: str) -> SpeakerRecord:
    """Remove the catalog entry; the speaker, its dataset and its uuid stay."""
    speaker = services.speakers.require(owner, name)
    if speaker.voice_sample_uuid and not services.catalog.unpublish(
        owner, name, speaker.speaker_id, speaker.voice_sample_uuid
    ):
        raise SpeakerNotFound()  # deleted (or re-created) between the read and the write
    return services.speakers.require(owner, name)


def list_catalog(services: Services) -> list[CatalogEntry]:
    return services.catalog.list()
