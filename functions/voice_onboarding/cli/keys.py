"""Create, list and revoke API keys.

voice-keys create --name acme-prod --partner acme [--partner acme-staging]
voice-keys list
voice-keys revoke KEY_ID
"""

import argparse
import sys

from voice_onboarding.aws_clients import make_client
from voice_onboarding.domain.partner import validate_grant
from voice_onboarding.settings import get_settings
from voice_onboarding.storage.api_keys_repo import ApiKeyRepository


def _grant(value: str) -> str:
    try:
        return validate_grant(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voice-keys", description="Manage API keys")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", required=True, help="who the key is for")
    create.add_argument(
        "--partner",
        action="append",
        required=True,
        type=_grant,
        help="partner the key may access (1-128 lowercase letters, digits, '-', '_'); '*' = all",
    )
    commands.add_parser("list", help="list keys (ids only, never the key)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)

    settings = get_settings()
    repo = ApiKeyRepository(make_client("dynamodb", settings), settings.table_name)
    if args.command == "create":
        api_key, record = repo.create(args.name, args.partner)
        print(f"key_id: {record.key_id}\npartners: {', '.join(record.partners)}\napi_key: {api_key}")
        print("Store the key now: only its hash is kept.", file=sys.stderr)
    elif args.command == "list":
        for record in repo.list():
            state = "revoked" if record.revoked else "active"
            print(f"{record.key_id}\t{record.name}\t{','.join(record.partners)}\t{state}\t{record.created_at}")
    elif args.command == "revoke":
        if not repo.revoke_by_id(args.key_id):
            print(f"no key with id {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
