"""The one rule for partner (tenant) names. A partner name is a URL path segment, the start of every
S3 key of the tenant and part of its DynamoDB keys, so it is kept to a plain, case-stable alphabet.
`*` is not a partner: it exists only in API-key grants, where it means "every partner"."""

import re

from voice_onboarding.domain.errors import InvalidRequest

PARTNER_PATTERN = r"^[a-z0-9_-]{1,128}$"
PARTNER_RULE = "Partner must be 1-128 characters: lowercase letters, digits, '-' or '_'"
ALL_PARTNERS = "*"  # the wildcard of key grants
_PARTNER = re.compile(PARTNER_PATTERN)


def is_partner_name(value: str) -> bool:
    return _PARTNER.fullmatch(value) is not None


def validate_partner(value: str) -> str:
    """422 naming the rule for anything else (the wildcard included: it is no partner)."""
    if not is_partner_name(value):
        raise InvalidRequest(PARTNER_RULE)
    return value


def validate_grant(value: str) -> str:
    """A key grant: a partner name or the wildcard."""
    if value != ALL_PARTNERS and not is_partner_name(value):
        raise ValueError(f"{PARTNER_RULE} (or '{ALL_PARTNERS}' for all partners): {value!r}")
    return value
