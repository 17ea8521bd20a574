"""`Idempotency-Key` on POST: a retried create or job submission replays the first response instead
of making a second voice or job. Records live in the same DynamoDB table, scoped per API key, for 24 h."""

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from voice_onboarding.observability import logger
from voice_onboarding.storage.api_keys_repo import hash_key

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Bodies above this are not stored (DynamoDB items are capped at 400 KB); such POSTs just run again.
MAX_STORED_BODY = 300_000
# Not worth replaying: the client fixes its key or waits, then retries for real.
_NOT_STORED_STATUSES = {401, 403, 429}


def _supplied_api_key(request: Request) -> str | None:
    return request.headers.get("x-api-key") or request.query_params.get("api_key")


def request_fingerprint(request: Request, body: bytes) -> str:
    """Hash of what the request asks for. Clients pick a fresh random multipart boundary for every
    attempt, so the boundary is neutralised: a faithful retry must hash the same."""
    content_type = request.headers.get("content-type", "")
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary:
        body = body.replace(boundary.group(1).encode(), b"BOUNDARY")
        content_type = content_type.replace(boundary.group(1), "BOUNDARY")
    # api_key is left out of the query: the record is already scoped by the key.
    query = sorted((k, v) for k, v in request.query_params.multi_items() if k != "api_key")
    parts = [request.method, request.url.path, repr(query), content_type.split(";")[0].strip().lower()]
    return hashlib.sha256("\n".join(parts).encode() + b"\n" + body).hexdigest()


async def idempotency_middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    idempotency_key = request.headers.get(HEADER)
    api_key = _supplied_api_key(request)
    if request.method != "POST" or not idempotency_key or not api_key:
        return await call_next(request)
    if len(idempotency_key) > MAX_KEY_LENGTH:
        return JSONResponse({"detail": f"{HEADER} must be at most {MAX_KEY_LENGTH} characters"}, status_code=422)

    from voice_onboarding.api.security import get_services

    services = get_services(request)
    store = services.idempotency
    scope = hash_key(api_key)  # per API key: two clients can never collide on a key
    request_hash = request_fingerprint(request, await request.body())
    existing = store.claim(scope, idempotency_key, request_hash, services.clock())
    if existing is not None:
        if existing.get("request_hash") != request_hash:
            return JSONResponse({"detail": f"{HEADER} was already used with a different request"}, status_code=409)
        if existing.get("state") != "completed":
            return JSONResponse(
                {"detail": f"A request with this {HEADER} is still being processed"},
                status_code=409,
                headers={"Retry-After": "1"},
            )
        return Response(
            base64.b64decode(existing["body"]),
            status_code=int(existing["status_code"]),
            media_type=existing["media_type"],
            headers={"Idempotent-Replayed": "true"},
        )

    try:
        response = await call_next(request)
    except BaseException:
        try:
            store.release(scope, idempotency_key)
        except (ClientError, BotoCoreError):
            pass  # the claim expires on its own; report the request's own failure
        raise
    chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
    payload = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
    try:
        if (
            response.status_code >= 500
            or response.status_code in _NOT_STORED_STATUSES
            or len(payload) > MAX_STORED_BODY
        ):
            store.release(scope, idempotency_key)  # let a retry run for real
        else:
            store.complete(scope, idempotency_key, response.status_code, response.media_type, payload)
    except (ClientError, BotoCoreError) as error:
        # The operation itself is done: answer it. The claim expires (IN_PROGRESS_EXPIRY_SECONDS) and a
        # retry then runs again, meeting the domain's own guards (409 for an existing voice).
        logger.warning("idempotency record not updated", extra={"error": type(error).__name__})
    return Response(payload, status_code=response.status_code, headers=dict(response.headers))
