from collections.abc import Iterator

import pytest

from voice_onboarding.pipeline.context import using_services
from voice_onboarding.services.container import Services


@pytest.fixture
def pipeline(services: Services) -> Iterator[Services]:
    """The moto-backed services, used by the pipeline handlers; no waiting between polls."""
    services.settings = services.settings.model_copy(update={"local_wait_scale": 0.001})
    with using_services(services):
        yield services
