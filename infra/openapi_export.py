"""Write the API's OpenAPI document, as the app serves it at /openapi.json, to a file:

    python -m infra.openapi_export docs/openapi.json      (make openapi)

tests/client/test_openapi.py fails when the committed document drifts from the app."""

import json
import sys
from pathlib import Path
from typing import Any

from infra.cfn_template import REPO_ROOT

DEFAULT_PATH = REPO_ROOT / "docs" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    from voice_onboarding.api.app import create_app

    return create_app().openapi()


def render(document: dict[str, Any] | None = None) -> str:
    return json.dumps(document or openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else DEFAULT_PATH
    target.write_text(render())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
