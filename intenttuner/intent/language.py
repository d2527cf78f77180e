"""Is a description English? The offline parser reads English only, and a German or Japanese
description read with English word lists yields garbage concepts ("No gafas" → delete "gafas").

A cheap test, no dependency: text mostly in a non-Latin script is not English; Latin-script
text is scored by its very common function and instruction words, English against German,
French, Spanish, Italian, Portuguese and Dutch. Only words that are not also common English
words count for the others ("die", "son", "me", "a", "no" do not), so an English description
with a foreign name or quoted phrase ("my cat Señor Bigotes", "the 'la vie en rose' print")
stays English: the foreign words must clearly outnumber the English ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_ENGLISH = frozenset("""the and of to is are his her its their with should must can be will
would it this that these those for from in on at not don't doesn't keep change remove no
never always same any without or but he she they them him my our your a an have has as by
want like look looks same different also only just when make sure""".split())
_FOREIGN: dict[str, frozenset[str]] = {name: frozenset(words.split()) for name, words in {
    "German": """der das und ist nicht mit ein eine einen einem einer sein seine ihr ihre
        soll sollen sollte muss müssen immer gleich bleiben bleibt keine kein ohne auch auf für
        von zu den dem des werden wird behalte behalten entferne entfernen ändern änderbar
        veränderbar austauschbar haare gesicht augen hund katze mein meine unser unsere oder
        aber wie sich brille hintergrund kleidung mütze bitte""",
    "French": """le la les de du en un et est une des que avec pas ne doit doivent toujours même
        mêmes sans garder garde gardez enlever supprimer retirer changer
        sa ses leur leurs dans sur cheveux visage yeux chien mon ma mes notre nos ou mais aucun
        aucune être peut peuvent lunettes chapeau vêtements""",
    "Spanish": """el la los las de en un y es una del con que su sus para debe deben siempre
        mismo misma sin mantener mantén mantenga quitar eliminar cambiar cambiable pelo cabello
        cara ojos perro gato mi mis nuestro nuestra pero ningún ninguna puede pueden está están
        muy gafas lentes gorra fondo barba ropa camisa""",
    "Italian": """il la lo gli un della dello delle degli è una con che suo sua suoi sue deve
        devono sempre stesso stessa senza mantieni mantenere rimuovi rimuovere togli cambiare
        capelli viso occhi gatto mio nostro nostra ma nessun nessuna può possono occhiali
        cappello sfondo""",
    "Portuguese": """de os uma com que dos das seu sua seus suas para deve devem sempre
        mesmo mesma sem manter mantenha remover tirar mudar cabelo rosto olhos cachorro gato
        meu minha nosso nossa mas nenhum nenhuma não pode podem está são óculos chapéu
        fundo""",
    "Dutch": """de het een en niet moet moeten altijd zelfde dezelfde hetzelfde
        zonder behoud behouden houd verwijder verwijderen veranderen haar zijn ogen gezicht
        hond kat mijn onze maar geen kan kunnen ook wel bril achtergrond baard""",
}.items()}
# Scripts whose text cannot be English, by the prefix of their characters' Unicode names.
_SCRIPTS = (("HIRAGANA", "Japanese"), ("KATAKANA", "Japanese"), ("HANGUL", "Korean"),
            ("CJK", "Chinese"), ("CYRILLIC", "Russian or another Cyrillic-script language"),
            ("GREEK", "Greek"), ("ARABIC", "Arabic"), ("HEBREW", "Hebrew"),
            ("DEVANAGARI", "Hindi"), ("THAI", "Thai"), ("BENGALI", "Bengali"),
            ("TAMIL", "Tamil"), ("ARMENIAN", "Armenian"), ("GEORGIAN", "Georgian"))
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Brackets and quotes: what is inside is a gloss or a title, not text in another language.
_GLOSS = re.compile(r"\([^()]*\)|\[[^\]]*\]|\"[^\"]*\"|'[^'\n]*'(?!\w)")


def foreign_language(text: str, *, min_words: int = 1) -> str | None:
    """The language ``text`` looks written in when that is clearly not English, else None
    (English, or too little to tell: fewer than ``min_words`` words)."""
    script = _script(text)
    if script:
        return script
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < min_words:
        return None
    english = sum(w in _ENGLISH for w in words)
    scores = {name: sum(w in vocabulary for w in words) for name, vocabulary in _FOREIGN.items()}
    best = max(scores, key=lambda name: scores[name])
    # Two foreign words at least, and clearly more than the English ones: a stray "de" or a
    # quoted foreign title in an English sentence does not make it foreign.
    if scores[best] >= 2 and scores[best] >= 2 * english:
        return best
    return None


def foreign_parts(sentence: str, exempt: Sequence[tuple[int, int]] = ()
                  ) -> list[tuple[int, int, str]]:
    """The foreign stretches of a sentence that reads English as a whole, as (start, end,
    language): a comma part that reads foreign on its own ("keep the face, *pelo cambiable*",
    two words are enough here, since the English parts around it say what English looks like),
    and a run of words in a non-Latin script ("*保持脸部* keep face"). A run in brackets or quotes
    is a gloss or a title ("Aiko (愛子)"), and one inside an ``exempt`` span (a name: "my cat
    小雪") is no foreign text either."""
    found: list[tuple[int, int, str]] = []
    for part in re.finditer(r"[^,;—]+", sentence):
        text = part.group(0)
        language = None if _script(text) else foreign_language(text, min_words=2)
        if language:
            found.append((part.start(), part.end(), language))
    glossed = [m.span() for m in _GLOSS.finditer(sentence)] + list(exempt)
    run: list[re.Match] = []
    for token in [*re.finditer(r"\S+", sentence), None]:
        inside = token is not None and any(s <= token.start() < e for s, e in glossed)
        if token is not None and not inside and _script(token.group(0)):
            run.append(token)
            continue
        if run and not any(s < run[-1].end() and run[0].start() < e for s, e, _ in found):
            words = sentence[run[0].start():run[-1].end()]
            found.append((run[0].start(), run[-1].end(), _script(words) or ""))
        run = []
    return sorted(found)


def description_language(sentences: list[str]) -> str | None:
    """The language of a whole description when it is clearly not English: the text as a
    whole reads foreign and no sentence of it reads as English. A description mixing English
    instructions with a foreign sentence is English (that sentence is checked on its own)."""
    language = foreign_language(" ".join(sentences))
    if language is None or any(_reads_english(s) for s in sentences):
        return None
    return language


def sentence_language(sentence: str, *, min_words: int = 1) -> str | None:
    """The language of a whole sentence when it is clearly not English and no comma part of it
    reads as English ("keep the face, pelo cambiable, sin gafas" is English with a Spanish
    part, see `foreign_parts`)."""
    language = foreign_language(sentence, min_words=min_words)
    return None if language is None or _reads_english(sentence) else language


def _reads_english(sentence: str) -> bool:
    """Does the sentence, or one of its comma parts, read as English?"""
    for part in (sentence, *re.split(r"[,;—]", sentence)):
        words = [w.lower() for w in _WORD.findall(part)]
        if foreign_language(part) is None and sum(w in _ENGLISH for w in words) >= 2:
            return True
    return False


def _script(text: str) -> str | None:
    """The non-Latin script most letters of ``text`` are in, when that is most of them (a
    name like 愛子 inside English text is not)."""
    counts: dict[str, int] = {}
    letters = 0
    for char in text:
        if not char.isalpha():
            continue
        letters += 1
        name = unicodedata.name(char, "")
        for prefix, language in _SCRIPTS:
            if name.startswith(prefix):
                counts[language] = counts.get(language, 0) + 1
                break
    if not counts:
        return None
    language = max(counts, key=lambda k: counts[k])
    # Japanese mixes kana with kanji: kana anywhere decides between Chinese and Japanese.
    if language == "Chinese" and counts.get("Japanese"):
        language = "Japanese"
    return language if sum(counts.values()) * 2 > letters else None
