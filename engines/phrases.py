"""A box's phrase in its prompt (layout boxes, the video's subject): as words, to check it is
there, and as the prompt's token positions, found with the pipeline's own tokenizer so
multi-token words, repeated words and punctuation come out right."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import InputError

_EDGE_PUNCTUATION = " \t\n.,;:!?\"'()[]{}"


def clean_phrase(phrase: str) -> str:
    """A box label as typed, without surrounding spaces or punctuation ("a cat." -> "a cat")."""
    return phrase.strip(_EDGE_PUNCTUATION)


def words(text: str) -> list[str]:
    """The text's words, lower-cased, without punctuation."""
    return re.findall(r"[^\W_]+", text.lower())


def contains_words(text: str, phrase: str) -> bool:
    """Whether the phrase's words come one after another in the text."""
    text_words, phrase_words = words(text), words(phrase)
    n = len(phrase_words)
    return any(text_words[i : i + n] == phrase_words for i in range(len(text_words) - n + 1))


def phrase_token_ids(tokenizer, phrase: str) -> list[int]:
    """The phrase's token ids as they appear inside a prompt (no start/end tokens)."""
    return list(tokenizer(clean_phrase(phrase), add_special_tokens=False).input_ids)


def find_occurrences(sequence: Sequence[int], part: Sequence[int]) -> list[int]:
    """Start positions of non-overlapping occurrences of `part` in `sequence`, left to right."""
    starts, n, i = [], len(part), 0
    while n and i + n <= len(sequence):
        if list(sequence[i : i + n]) == list(part):
            starts.append(i)
            i += n
        else:
            i += 1
    return starts


def box_token_indices(tokenizer, prompt: str, phrases: Sequence[str]) -> list[tuple[int, ...]]:
    """For each box phrase, the positions of its tokens in the encoded prompt (position 0 is
    the start token, as in the text encoder's output the UNet attends to).

    Boxes with the same phrase take its occurrences in the prompt in order ("a cat ... a cat"
    with two "cat" boxes: the first box gets the first "cat"); boxes beyond the number of
    occurrences share the last one. A phrase not in the prompt, or only past the encoder's
    token limit, is an InputError naming it.
    """
    prompt_ids = list(tokenizer(prompt, add_special_tokens=True).input_ids)
    limit = tokenizer.model_max_length - 1  # the last position holds the end token
    used: dict[tuple[int, ...], int] = {}
    indices = []
    for phrase in phrases:
        part = phrase_token_ids(tokenizer, phrase)
        if not part:
            raise InputError(f"The box phrase {phrase!r} has no words; label it with prompt words.")
        starts = find_occurrences(prompt_ids, part)
        if not starts:
            raise InputError(
                f"The phrase {clean_phrase(phrase)!r} is not in the prompt as the tokenizer "
                f"splits it ({prompt!r}); use the exact words of the prompt (e.g. 'cats' and "
                "'cat' differ)."
            )
        starts = [s for s in starts if s + len(part) <= limit]
        if not starts:
            raise InputError(
                f"The phrase {clean_phrase(phrase)!r} comes after the text encoder's "
                f"{tokenizer.model_max_length}-token limit; shorten the prompt or move it earlier."
            )
        key = tuple(part)
        occurrence = min(used.get(key, 0), len(starts) - 1)
        used[key] = used.get(key, 0) + 1
        indices.append(tuple(range(starts[occurrence], starts[occurrence] + len(part))))
    return indices
