"""Text for synthesis: checked, and split into sentences that are spoken one after another."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..errors import InputError

MAX_TEXT_CHARS = 2000
MAX_CHUNK_CHARS = 240  # longer sentences are cut at clause marks, then at spaces

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "no", "fig", "approx",
}  # fmt: skip
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)")
_CLAUSE_END = re.compile(r"[,;:—–][\"'”’)\]]*(?=\s)")


def check_text(text: str | None) -> str:
    """The text with whitespace collapsed; InputError when empty or over MAX_TEXT_CHARS."""
    text = " ".join((text or "").split())
    if not text:
        raise InputError("The text is empty: type what the voice should say.")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"The text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}. "
            "Split it and synthesise the parts one after another."
        )
    return text


def _cut_after(
    text: str, pattern: re.Pattern, keep: Callable[[str, re.Match], bool] = lambda text, match: True
) -> list[str]:
    pieces, start = [], 0
    for match in pattern.finditer(text):
        if keep(text, match):
            pieces.append(text[start : match.end()].strip())
            start = match.end()
    pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


def _is_sentence_end(text: str, match: re.Match) -> bool:
    """False after abbreviations ("Dr.") and single initials ("J. Smith")."""
    if match.group().rstrip("\"'”’)]") != ".":
        return True
    before = text[: match.start()].split()
    word = before[-1].lstrip("(\"'“‘").lower() if before else ""
    return not (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


def _cut_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in _cut_after(sentence, _CLAUSE_END):
        while len(clause) > max_chars:
            cut = clause.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if clause:
            pieces.append(clause)
    return _merge_short(pieces, max_chars)


def _merge_short(pieces: list[str], max_chars: int) -> list[str]:
    """Greedily rejoin neighbouring clauses while they fit, so cuts happen only where needed."""
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) + 1 + len(piece) <= max_chars:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def split_sentences(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Sentences in order (not cut at decimals, abbreviations or initials); a sentence longer
    than `max_chars` is cut at clause marks, then at spaces."""
    text = check_text(text)
    chunks: list[str] = []
    for sentence in _cut_after(text, _SENTENCE_END, _is_sentence_end):
        chunks.extend(_cut_long(sentence, max_chars))
    return chunks
