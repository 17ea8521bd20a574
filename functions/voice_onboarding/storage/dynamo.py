"""Plain-Python <-> DynamoDB attribute conversion (floats go through Decimal, as DynamoDB requires), update
expressions, and the one way a repository makes a conditional write (`conditional_update`)."""

from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from botocore.exceptions import ClientError


@cache
def _converters() -> tuple[Any, Any]:
    # Imported on first use: `boto3.dynamodb` imports all of boto3, which a cold start defers to its
    # first request.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _to_decimal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_decimal(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_decimal(v) for v in value]
    return value


def _from_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_decimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_decimal(v) for v in value]
    if isinstance(value, set):
        return {_from_decimal(v) for v in value}
    return value


def serialize(value: Any) -> dict[str, Any]:
    return _converters()[0].serialize(_to_decimal(value))  # type: ignore[no-any-return]


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """Serialize a flat mapping into a DynamoDB item; None values are omitted (DynamoDB has no null keys)."""
    return {k: serialize(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_decimal(_converters()[1].deserialize(v)) for k, v in item.items()}


def is_conditional_failure(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


def conditional_update(write: Callable[..., dict[str, Any]], **request: Any) -> dict[str, Any] | None:
    """One conditional write (`db.update_item`, `db.put_item` or `db.delete_item` with its request):
    its response, or None when its condition failed. Any other error propagates."""
    try:
        return write(**request)
    except ClientError as error:
        if is_conditional_failure(error):
            return None
        raise


def update_expression(
    set_fields: dict[str, Any], remove_fields: tuple[str, ...] = ()
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """SET/REMOVE expression for top-level attributes (None means REMOVE), bumping `version`,
    the optimistic-lock guard of read-modify-write callers."""
    names: dict[str, str] = {"#version": "version"}
    values: dict[str, Any] = {":one": serialize(1), ":zero": serialize(0)}
    set_parts = ["#version = if_not_exists(#version, :zero) + :one"]
    remove_parts: list[str] = []
    for i, (field, value) in enumerate(set_fields.items()):
        names[f"#f{i}"] = field
        if value is None:
            remove_parts.append(f"#f{i}")
        else:
            values[f":v{i}"] = serialize(value)
            set_parts.append(f"#f{i} = :v{i}")
    for j, field in enumerate(remove_fields):
        names[f"#r{j}"] = field
        remove_parts.append(f"#r{j}")
    expression = "SET " + ", ".join(set_parts)
    if remove_parts:
        expression += " REMOVE " + ", ".join(remove_parts)
    return expression, names, values
