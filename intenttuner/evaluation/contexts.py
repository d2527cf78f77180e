"""The neutral contexts evaluation prompts place a subject in, per domain, as plain data.

A context must vary what the intent leaves free and nothing it constrains, so each domain has:

- ``places``: where the subject is (DreamBooth's recontextualisation prompts: "in the snow",
  "on the beach", ...). Only places: DreamBooth's outfit and property prompts ("wearing a red
  hat", "a purple {}", "cube shaped") are left out on purpose, since they change the very
  things a user keeps or modifies. No time of day, weather-as-light or medium either ("at
  sunset", "neon-lit", "a painting of"): those would fight a kept lighting or style.
- ``views``: only how the subject is framed (shot size, angle), no place, light or medium. A
  whole-image concept (background, lighting, style, pose: imagery granularity) is a quality
  of the picture itself, and a place prescribes it ("on the beach" is a background and a
  light); so prompts about such a concept, kept or modified, use views instead.
- ``plain``: the subject as bare as the training captions had it ("a photo of vincent"), where
  a deleted concept the trigger word absorbed is most likely to come back (the leakage test).

A context never names a word of the intent's concepts or values (`avoiding`): "with a city in
the background" would prompt a modified background, "in the jungle" fights a "jungle"/"desert"
value. Wording per domain: the style domain's trigger is a style, so the context is what the
picture shows ("a lighthouse on a rocky coast"; its views are the same subjects, content being
all a style prompt varies); the pose domain's trigger is a pose that a performer (the context)
takes; every other domain says "a photo of {trigger}, {context}". Character and style prompts
say "a picture" (a character may be drawn; "photo" would push it towards photorealism), and so
do prompts about a whole-image concept in every domain ("a photo of" would prejudge a
"watercolor painting" value or a lighting).

The object domain's places are DreamBooth's recontextualisation prompts (Ruiz et al. 2023,
github.com/google/dreambooth, dataset/prompts_and_classes.txt) less "the Eiffel Tower",
"autumn leaves" (a season's light) and "an ocean of milk"; the other domains' are in its spirit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..intent.lexicon import STOPWORDS
from ..intent.schema import Domain, Intent

PICTURE = "a picture"  # the medium-neutral head of character, style and whole-image prompts


@dataclass(frozen=True)
class DomainWording:
    # How a prompt reads; slots: {medium} ("a photo"), {trigger}, {value} (the value clause of
    # a controllability prompt, "" otherwise: " with black hair"), {context}. A trailing ", "
    # (an empty context) is dropped.
    template: str
    medium: str  # "a photo" or `PICTURE`
    places: tuple[str, ...]
    views: tuple[str, ...]
    plain: tuple[str, ...] = ("",)  # the bare subject; "" = no context at all
    person: bool = False  # the subject wears things ("wearing a striped jacket")


_PHOTO = "{medium} of {trigger}{value}, {context}"
_PEOPLE_VIEWS = ("close-up portrait", "head and shoulders", "upper body", "full body",
                 "from the side", "three-quarter view", "looking at the camera",
                 "looking away from the camera")
_PEOPLE_PLACES = ("on a city street", "in a cafe", "on the beach", "in a park", "in the snow",
                  "in a library", "in a kitchen", "in front of a brick wall", "in a forest",
                  "on a mountain trail", "in an office", "in a subway station",
                  "in a field of flowers", "in a museum", "on a boat", "in the desert")
_STYLE_SUBJECTS = ("a lighthouse on a rocky coast", "a bowl of fruit on a table",
                   "a fox in a forest", "a busy market street", "a portrait of an old man",
                   "a sailing boat on a lake", "a mountain village", "a cat on a windowsill",
                   "a bicycle leaning against a wall", "a castle on a hill",
                   "a vase of sunflowers", "a steam train crossing a bridge",
                   "a woman reading a book", "a city skyline", "a cup of coffee",
                   "a field of wheat")
_THING_VIEWS = ("close-up", "from the front", "from the side", "from above",
                "from a low angle", "three-quarter view", "from behind", "macro shot")

WORDINGS: dict[Domain, DomainWording] = {
    Domain.PORTRAIT: DomainWording(_PHOTO, "a photo", _PEOPLE_PLACES, _PEOPLE_VIEWS,
                                   person=True),
    Domain.CHARACTER: DomainWording(
        _PHOTO, PICTURE, ("in a classroom", "on a rooftop", "in a castle hall", "in a forest",
                          "on a city street", "on the beach", "in a cafe", "in a train station",
                          "in a field of flowers", "in the snow", "in a library",
                          "on a mountain top", "in a market", "in a spaceship corridor",
                          "in a bedroom", "by a river"), _PEOPLE_VIEWS, person=True),
    Domain.PRODUCT: DomainWording(
        _PHOTO, "a photo", ("on a marble countertop", "on a wooden table", "in a kitchen",
                            "on a bathroom shelf", "on a desk next to a laptop",
                            "on a stone ledge outdoors", "on the sand of a beach",
                            "on a store shelf", "on a picnic blanket in a park", "in the snow",
                            "on a windowsill", "on a bed of moss", "on a glass table",
                            "in a hand", "on a cobblestone street", "on a pile of books"),
        _THING_VIEWS),
    Domain.OBJECT: DomainWording(
        _PHOTO, "a photo", ("in the jungle", "in the snow", "on the beach",
                            "on a cobblestone street", "on pink fabric", "on a wooden floor",
                            "with a city in the background", "with a mountain in the background",
                            "with a blue house in the background", "on a purple rug in a forest",
                            "with a wheat field in the background", "floating on water",
                            "on green grass with sunflowers around it", "on a mirror",
                            "on the sidewalk of a crowded street", "on a dirt road"),
        _THING_VIEWS),
    Domain.SCENE: DomainWording(
        # The subject is a place, so it cannot be moved: what changes is what is in it.
        _PHOTO, "a photo", ("with a few people", "with a cat", "with a dog", "with a bicycle",
                            "with potted plants", "with a vase of flowers",
                            "decorated for a party", "with balloons", "in winter", "in autumn",
                            "in spring", "with an old man reading", "with a woman walking",
                            "with boxes stacked up", "with a red chair", "with birds"),
        ("wide-angle view", "from a low angle", "from above", "from the entrance",
         "from a distance", "eye-level view", "panoramic view", "from a corner")),
    Domain.STYLE: DomainWording(
        # The content is the free variable; the views are the same subjects.
        "{medium} of {context} in the style of {trigger}{value}", PICTURE, _STYLE_SUBJECTS,
        _STYLE_SUBJECTS, plain=("a landscape", "a woman", "a house")),
    Domain.POSE: DomainWording(
        # The trigger is a pose: a performer (the context) takes it.
        "{medium} of {context}{value}, {trigger} pose", "a photo",
        ("a man on a rooftop", "a woman on the beach", "a knight in a castle courtyard",
         "an astronaut on the moon", "a woman in a park", "a man on a city street",
         "a dancer on a stage", "a soldier in the desert", "a woman in a forest",
         "a man in the snow", "a robot in a factory", "an old man in a garden",
         "a woman in an office", "a man on a mountain top", "a superhero on a bridge",
         "a woman in a library"),
        ("a man", "a woman", "an old man", "a young woman", "a dancer", "an astronaut",
         "a knight", "a robot"), plain=("a person", "a man", "a woman"), person=True),
    Domain.OTHER: DomainWording(
        # Could be a person or a thing: places that suit both.
        _PHOTO, "a photo", ("on a city street", "in a park", "on the beach", "in the snow",
                            "in a forest", "in a kitchen", "in the desert", "by a lake",
                            "in a garden", "in a library", "on a wooden table",
                            "in a museum"), _THING_VIEWS),
}


def wording(domain: Domain) -> DomainWording:
    return WORDINGS[domain]


def render(words: DomainWording, trigger: str, context: str, value: str = "",
           medium: str | None = None) -> str:
    """The prompt for ``trigger`` in ``context``; ``value``: a value clause (" with black
    hair"); ``medium``: instead of the domain's ("a picture" for whole-image concepts)."""
    text = words.template.format(medium=medium or words.medium, trigger=trigger, value=value,
                                 context=context)
    return text.removesuffix(", ")


def intent_words(intent: Intent) -> frozenset[str]:
    """The content words of every concept's name, detector phrase and values (stemmed)."""
    texts = [t for c in intent.concepts for t in (c.name, c.phrase, *(v.text for v in c.values))]
    return frozenset(w for text in texts for w in _stems(text))


def avoiding(contexts: tuple[str, ...], words: frozenset[str]) -> list[str]:
    """``contexts`` (deduplicated, in order) without those that share a word with ``words``."""
    kept: list[str] = []
    for context in contexts:
        if context not in kept and not (set(_stems(context)) & words):
            kept.append(context)
    return kept


def _stems(text: str) -> list[str]:
    # Lower-case content words of three letters or more, a plural "s" cut ("jackets" meets
    # "jacket"); function words ("with", "the") are no reason to drop a context.
    found = [w for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in STOPWORDS]
    return [w[:-1] if w.endswith("s") and not w.endswith("ss") and len(w) > 3 else w
            for w in found]
