"""``trigger: x`` and ``domain: y`` written anywhere in a sentence, read by the offline parser.

- The key may be "trigger", "trigger word(s)", "token", "keyword", "activation word" or
  "instance token" (all trigger words), or "domain"; it is followed by ":", "=" or "is".
- A value ends where an instruction starts: at a separator before a part holding a cue
  ("trigger: zara, keep her face"), or, when the value's own part holds one ("trigger: sks keep
  his face", "Trigger = zzz no hat"), at its first cue or negator. A trigger value is then its
  first token: a trigger word is one token, the words after it are the instruction's.
- A remark about the trigger or the domain is no directive: "The default trigger is fine",
  "the domain is fine", "trigger: the default is fine". Ordinary words after "is" (or, after
  ":" / "=", several of them or a placeholder such as "default") say something about the value
  rather than give one. The remark is cut from the sentence with a note, so it is neither a
  concept ("domain") nor a trigger word ("the default is fine"). Words that name a domain
  ("domain is portrait") are a value, never a remark, though they are ordinary words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import lexicon as lx
from . import notes
from .classify import domain_from_name
from .cues import cue_matches, has_strong_cue
from .names import only_common_words

_DIRECTIVE = re.compile(r"\b(trigger\s+(?:words?|tokens?|phrase)|trigger|activation\s+(?:words?|"
                        r"tokens?|tags?|phrase)|instance\s+token|keyword|token|domain)\s*"
                        r"(?::|=|\bis\b)\s*", re.IGNORECASE)
# Values that stand for "no value of my own": "trigger: default", "token = none".
_PLACEHOLDERS = frozenset("default defaults none fine whatever any anything auto automatic "
                          "nothing same usual standard normal n/a na tbd".split())
_NEGATORS = "|".join(map(re.escape, sorted(lx.NEGATORS, key=len, reverse=True)))
_NEGATOR = re.compile(rf"(?<![\w'])(?:{_NEGATORS})(?![\w'])", re.IGNORECASE)
_FIRST_TOKEN = re.compile(r"\s*(\"[^\"]+\"|'[^']+'|\S+)")


@dataclass
class Directives:
    """What the directives of the sentences read so far said."""

    triggers: list[str] = field(default_factory=list)
    domain_text: str = ""
    notes: list[str] = field(default_factory=list)  # remarks read as such


def read_directives(sentence: str, found: Directives) -> str:
    """Apply the directives in ``sentence`` to ``found``; return what is left of it."""
    sentence = _cut_remarks(sentence, found)
    matches = list(_DIRECTIVE.finditer(sentence))
    if not matches:
        return sentence
    left = [sentence[:matches[0].start()].strip(" ,;")]
    if only_common_words(left[0]):
        left = []  # "The trigger: x" leaves no clause behind
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(sentence)
        key = _key(match)
        # "domain: pose/action" is one domain; "trigger: pepper/salt" two trigger words
        separators = r"[,;]" if key == "domain" else r",|;|/|\band\b"
        value, rest = _split_value(sentence[match.end():end], separators, key)
        left.append(rest)
        if key == "domain":
            found.domain_text = value.strip(" ,;\"'")
        else:
            found.triggers += [w.strip(" \"'") for w in re.split(separators, value)
                               if w.strip(" \"'")]
    return ", ".join(p for p in left if p)


def _key(match: re.Match) -> str:
    return "domain" if match.group(1).lower() == "domain" else "trigger"


def _cut_remarks(sentence: str, found: Directives) -> str:
    """``sentence`` without its remarks about the trigger or domain, each noted."""
    for match in reversed(list(_DIRECTIVE.finditer(sentence))):
        value = re.split(r"[,;.]", sentence[match.end():], maxsplit=1)[0]
        if not _is_remark(match, value.strip(" \"'")):
            continue
        start = max((m.end() for m in re.finditer(r"[,;]", sentence[:match.start()])),
                    default=0)
        end = match.end() + len(value)
        found.notes.insert(0, notes.directive_remark(sentence[start:end].strip(" ,;"),
                                                     _key(match)))
        sentence = (sentence[:start] + sentence[end:]).strip(" ,;")
    return sentence


def _is_remark(match: re.Match, value: str) -> bool:
    """Is ``value`` something said about the trigger / domain rather than one (module doc)?"""
    if _key(match) == "domain" and value and domain_from_name(value)[0] is not None:
        return False
    words = re.findall(r"[\w'/-]+", value.lower())
    content = [w for w in words if w not in _PLACEHOLDERS and w not in lx.META_HEADS]
    if not words or (content and not only_common_words(" ".join(content))):
        return False
    if match.group(0).rstrip().lower().endswith("is"):
        return True
    return len(words) >= 2 or words[0] in _PLACEHOLDERS


def _split_value(text: str, separators: str, key: str) -> tuple[str, str]:
    """(the directive's value, the instruction after it): the value ends before the first part
    that holds an operation cue, or inside that part at its cue (see the module doc)."""
    parts = re.split(f"({separators})", text)
    for i in range(0, len(parts), 2):
        if not has_strong_cue(parts[i]):
            continue
        lead, rest = _before_cue(parts[i], key)
        before = "".join(parts[:i]) if lead else "".join(parts[:max(i - 1, 0)])
        return before + lead, (rest + "".join(parts[i + 1:])).strip(" ,;")
    return text, ""


def _before_cue(part: str, key: str) -> tuple[str, str]:
    """(the value words at the start of ``part``, the instruction from its first cue on)."""
    starts = [start for _, start, _, _ in cue_matches(part)]
    starts += [m.start() for m in _NEGATOR.finditer(part)]
    position = min(starts, default=len(part))
    lead = part[:position]
    if key == "trigger" and (token := _FIRST_TOKEN.match(lead)):
        return token.group(1), lead[token.end():] + part[position:]
    return lead.strip(), part[position:]
