"""Request dependencies: the app's services and RunPod client, API-key authentication and partner
tenancy (the last two documented in OpenAPI)."""

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, APIKeyQuery

from voice_onboarding.domain.errors import AccessDenied, InvalidApiKey
from voice_onboarding.domain.partner import PARTNER_PATTERN, PARTNER_RULE, validate_partner
from voice_onboarding.services.container import Services
from voice_onboarding.storage.api_keys_repo import ApiKeyRecord

api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="Your API key")
api_key_query = APIKeyQuery(name="api_key", auto_error=False, description="Your API key (query form)")


def get_services(request: Request) -> Services:
    """The app's services: given to create_app, or built on first use by its factory (the Lambda's
    composition root), so importing the app builds no AWS client."""
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        factory = request.app.state.services_factory
        if factory is None:
            raise RuntimeError("the app was created without services")
        services = factory()
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_gpu_client(request: Request, services: ServicesDep) -> Any:
    """The RunPod client a cancel uses: the app's injected one (local stack, tests) or one from settings;
    None without a RunPod key (the run's policy still bounds it)."""
    injected = getattr(request.app.state, "gpu_client", None)
    if injected is not None:
        return injected
    try:
        from voice_onboarding.adapters.runpod import make_gpu_client

        return make_gpu_client(services.settings)
    except Exception:  # noqa: BLE001 - no RunPod key here: the run's policy still bounds it
        return None


GpuClientDep = Annotated[Any, Depends(get_gpu_client)]


def require_api_key(
    request: Request,
    services: ServicesDep,
    header_key: Annotated[str | None, Depends(api_key_header)],
    query_key: Annotated[str | None, Depends(api_key_query)],
) -> ApiKeyRecord:
    supplied = header_key or query_key
    if not supplied:
        raise InvalidApiKey()
    record = services.api_keys.lookup(supplied)
    if record is None:
        raise InvalidApiKey()
    # Only the short key id goes to logs, never the key.
    request.state.key_id = record.key_id
    return record


ApiKeyDep = Annotated[ApiKeyRecord, Depends(require_api_key)]


def require_partner(
    api_key: ApiKeyDep,
    # The pattern is documented (clients and the fuzzer see it) but checked below, so the 422 names
    # the rule in the usual {"detail": "..."} body instead of FastAPI's validation list.
    partner: Annotated[
        str, Path(description=PARTNER_RULE, json_schema_extra={"pattern": PARTNER_PATTERN, "maxLength": 128})
    ],
) -> str:
    validate_partner(partner)
    if not api_key.may_access(partner):
        raise AccessDenied()
    return partner


PartnerDep = Annotated[str, Depends(require_partner)]
