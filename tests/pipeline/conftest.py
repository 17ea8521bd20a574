from collections.abc import Iterator

import pytest

from voice_onboarding.pipeline.context import using_services
from voice_onboarding.services.container import Services


@pytest.fixture
def pipeline(services: Services) -> Iterator[Services]:
    """The moto-backed services, used by the pipeline handlers; (almost) no waiting between polls and the
    CPU engine by default, as in local mode."""
    services.settings = services.settings.model_copy(
        update={"local_wait_scale": 0.001, "default_tts_type": "resemblyzer"}
    )
    with using_services(services):
        yield services
