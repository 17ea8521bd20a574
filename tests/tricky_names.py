"""Voice names that are valid but hard: non-ASCII, right-to-left, emoji, very long, dots, spaces,
quotes and URL metacharacters. Shared by the every-route name test and the stateful fuzzer."""

VOICE_NAMES = [
    "голос-😀",
    "שלום עולם",  # right-to-left
    "مرحبا\u200f بالعالم",  # Arabic with a right-to-left mark
    "名前 テスト",
    "a.b.c",
    "...",
    ".hidden",
    "with  spaces",
    "quote\"and'apos",
    "`tick` ;semi, comma= <angle> {brace} [bracket] |pipe| ^caret~",
    "query?and#hash&amp+plus",
    "ß-ﬁ-Å",
    "x" * 255,
    "😀" * 254,  # 1016 bytes: the longest emoji name the table key allows
]
