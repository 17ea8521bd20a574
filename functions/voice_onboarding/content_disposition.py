"""`Content-Disposition` for a download whose filename derives from user data (a voice name may be
any Unicode text). HTTP header values are Latin-1 at best, so the name goes in twice, as RFC 6266
says: `filename*=UTF-8''…` (RFC 5987 percent-encoding, what current clients use) and a plain ASCII
`filename="…"` fallback for the rest. Starlette does the same only inside FileResponse (not reusable
for bytes or presigned S3 URLs), and werkzeug is no runtime dependency of the Lambdas.
"""

import re
import unicodedata
from urllib.parse import quote

# Kept in the quoted ASCII fallback; anything else (non-ASCII, quotes, backslashes, "%") becomes "_".
_FALLBACK_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+,=@!-]+")
# RFC 5987 attr-char beyond quote()'s always-safe "A-Za-z0-9_.-~".
_ATTR_CHARS = "!#$&+^`|"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    # Compatibility-decompose ("ﬁ" -> "fi", "Å" -> "A" + ring) and drop the combining marks.
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", filename) if not unicodedata.combining(c))
    fallback = _FALLBACK_UNSAFE.sub("_", decomposed).strip(" ")
    if not fallback.strip("._-"):
        fallback = "download"
    header = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe=_ATTR_CHARS)}"
    return header
