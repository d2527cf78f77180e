"""Which domain the user's own words point to: "anime OC" → character, "packshot" → product.

Users rarely write one of the eight domain names; they write what they have ("my beagle", "an
oil painting look", "product photos for the shop"). This module holds those words as data and
reads them two ways:

- `read_domain`: the free text after "domain:" → the nearest known domain, or None when it names
  none (the caller then guesses from the description and says so: never an error, since a
  wrong domain only changes caption wording and default probes).
- `DOMAIN_WORDS`: the words `classify.guess_domain` scores when no domain was written.

`SUBJECT_NOUNS` are the nouns a name can follow ("my beagle Pepper", "our perfume Lumière");
they live here because the noun also says the domain (`domain_of_noun`).

"3D render" (and "3D", "CGI", "Blender"...) is ambiguous: people train both 3D characters and a
3D-render look. It reads as *character* when the description names its subject (a named subject
rendered in 3D is a character) and as *style* otherwise.
"""

from __future__ import annotations

import re

from . import lexicon as lx
from .schema import Domain


def _words(text: str) -> tuple[str, ...]:
    """Comma-separated phrases of a data block below."""
    return tuple(w.strip() for w in text.split(",") if w.strip())


# The nouns a named subject can be, per domain. "my <noun> <Name>" / "<Name> the <noun>".
SUBJECT_NOUNS: dict[Domain, tuple[str, ...]] = {
    Domain.PORTRAIT: _words("""man, woman, girl, boy, guy, lady, gentleman, person, friend,
        best friend, wife, husband, partner, boyfriend, girlfriend, fiance, fiancé, fiancee,
        fiancée, son, daughter, kid, child, baby, toddler, teenager, mother, father, mom, mum,
        mommy, mummy, dad, daddy, grandma, grandpa, grandmother, grandfather, granny, aunt,
        uncle, niece, nephew, cousin, brother, sister, sibling, twin, colleague, coworker,
        boss, client, bride, groom, actor, actress, singer, influencer, model, grandson,
        granddaughter"""),
    Domain.CHARACTER: _words("""character, original character, oc, mascot, vtuber, persona,
        avatar, fursona, hero, heroine, protagonist, villain, waifu, husbando, anime character,
        game character, cartoon character, comic character, 3d character, elf, knight, wizard,
        witch, warrior, princess, prince, creature, monster, dragon, sona, mage, sorcerer,
        sorceress, ninja, samurai, pirate, cyborg, vampire, goddess, catgirl, kitsune"""),
    Domain.OBJECT: _words("""dog, puppy, pup, doggo, cat, kitten, kitty, pet, bird, parrot,
        budgie, horse, pony, rabbit, bunny, hamster, guinea pig, ferret, turtle, tortoise,
        lizard, snake, fish, goldfish, cow, goat, pig, chicken, duck, beagle, corgi, labrador,
        lab, golden retriever, retriever, poodle, husky, pug, dachshund, bulldog, french
        bulldog, frenchie, shiba, shiba inu, shih tzu, chihuahua, terrier, spaniel, collie,
        border collie, german shepherd, shepherd, greyhound, whippet, dalmatian, rottweiler,
        doberman, boxer, samoyed, pomeranian, maltese, schnauzer, maine coon, siamese, ragdoll,
        tabby, calico, sphynx, toy, plush, plushie, stuffed animal, teddy, teddy bear,
        figurine, action figure, doll, car, truck, motorbike, motorcycle, bike, bicycle,
        scooter, boat, van, robot, statue, sculpture, guitar, violin, plant"""),
    Domain.PRODUCT: _words("""product, perfume, fragrance, bottle, sneaker, sneakers, shoe,
        shoes, boot, boots, bag, handbag, backpack, purse, wallet, watch, mug, cup, chair,
        lamp, phone, smartphone, headphones, earbuds,
        speaker, laptop, camera, lipstick, serum, cream, candle, soap, brand, label, tea,
        coffee, beer, wine, gin, whisky, chocolate"""),
    Domain.SCENE: _words("""house, home, cabin, cottage, castle, cafe, café, restaurant, bar,
        shop, store, hotel, studio, garden, village, town, city, island, beach"""),
}

# Free-text words and phrases → domain, beyond the subject nouns.
_PHRASES: dict[Domain, tuple[str, ...]] = {
    Domain.CHARACTER: _words("""anime, manga, oc, ocs, original character, vtuber, chibi,
        cartoon, comic, webtoon, manhwa, game character, video game, video game character,
        character, characters, mascot, waifu, fursona, 2d, 2d character, cel shaded,
        cel-shaded, pixar character, disney character, pokemon, pokémon, sprite, toon"""),
    Domain.PRODUCT: _words("""product, products, product photo, product photos, product
        photography, product shot, product shots, packshot, packshots, pack shot, e-commerce,
        ecommerce, online shop, webshop, catalogue, catalog, brand, branding, merchandise,
        merch, advertising, advert, ad campaign, commercial, packaging, cosmetics, skincare,
        fashion item, furniture, gadget"""),
    Domain.STYLE: _words("""style, styles, art style, artstyle, painting, paintings, oil
        painting, oil paintings, watercolour, watercolor, watercolours, watercolors, gouache,
        acrylic, ink, ink wash, sumi-e, lineart, line art, sketch, sketches, pencil, charcoal,
        illustration, illustrations, illustration style, aesthetic, aesthetics, look, artist,
        painter, brushwork, impressionist, impressionism, cubism, cubist, art nouveau, art
        deco, ukiyo-e, pixel art, low poly, vaporwave, synthwave, film look, photographic
        style, color grading, colour grading, filter, art, artwork, drawing style"""),
    Domain.POSE: _words("""pose, poses, posing, stance, posture, action, actions, dance, dance
        move, dance moves, gesture, gestures, movement, yoga, yoga pose, kick, jump, jumping,
        landing, martial arts, fighting stance, hand sign, sitting pose, body position"""),
    Domain.OBJECT: _words("""object, objects, thing, item, pet, pets, animal, animals, dog
        breed, cat breed, breed, vehicle, toy, toys, figurine, figurines, collectible"""),
    Domain.SCENE: _words("""scene, scenes, place, places, location, room, bedroom, living room,
        kitchen, bathroom, office, interior, interiors, interior design, landscape,
        landscapes, cityscape, city, street, town, architecture, building, buildings,
        environment, landmark, park, forest, mountain, mountains, lake, countryside"""),
    Domain.PORTRAIT: _words("""person, people, portrait, portraits, headshot, headshots,
        selfie, selfies, face, faces, me, myself, my face, photos of me, real person, human,
        humans, family, couple"""),
}
# Rendering words that say "3D" but not whether a character or a look is meant (see above).
_RENDER_3D = _words("3d, 3d render, 3d renders, 3d rendering, 3d model, 3d art, cgi, cg, "
                    "blender, octane, unreal engine, cinema 4d, c4d")
# Words fine after "domain:" but too common in descriptions to guess from: "should look the
# same", "train a model", "keep the camera angle", "a lab coat".
_NOT_GUESSED = frozenset({"look", "me", "art", "thing", "item", "filter", "action", "actions",
                          "movement", "style", "styles", "model", "lab", "camera", "label",
                          "bar", "home", "boxer", "shepherd", "plant", "fish", "cream",
                          "tea", "coffee", "prince", "princess", "boot", "boots", "speaker",
                          "client", "twin", "sona", "pup", "kick", "jump"})
# Ties go to the more specific domain (a character is also a person, a product an object).
_PRIORITY = lx.DOMAIN_PRIORITY


def _all_words(domain: Domain) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*SUBJECT_NOUNS.get(domain, ()), *_PHRASES.get(domain, ()))))


# What guess_domain scores per domain (the too common ones left out).
DOMAIN_WORDS: dict[Domain, tuple[str, ...]] = {
    d: tuple(w for w in _all_words(d) if w not in _NOT_GUESSED) for d in _PRIORITY}


def render_3d_domain(named: bool) -> Domain:
    """What "3D render" means: a named subject is a 3D character, otherwise a 3D look."""
    return Domain.CHARACTER if named else Domain.STYLE


def count_3d(text: str) -> int:
    """How many 3D-rendering words ``text`` holds (scored by the caller, see above)."""
    return len(_hits(text.lower(), _RENDER_3D))


def read_domain(value: str, *, named: bool = False) -> Domain | None:
    """The known domain nearest to the free text ``value`` ("anime OC" → character), or None
    when it names none. ``named``: the description names its subject (for "3D render")."""
    text = value.lower().strip(" .\"'")
    try:
        return Domain(text)
    except ValueError:
        pass
    scores = {d: len(_hits(text, _all_words(d))) for d in _PRIORITY}
    scores[render_3d_domain(named)] += count_3d(text)
    best = max(_PRIORITY, key=lambda d: (scores[d], -_PRIORITY.index(d)))
    return best if scores[best] else None


def domain_of_noun(noun: str) -> Domain | None:
    """The domain of a named subject's noun ("beagle" → object), None when unknown."""
    lowered = noun.lower()
    for domain in _PRIORITY:
        if lowered in SUBJECT_NOUNS.get(domain, ()) or lowered.rstrip("s") in \
                SUBJECT_NOUNS.get(domain, ()):
            return domain
    return None


def _hits(text: str, phrases: tuple[str, ...]) -> list[str]:
    """The phrases found in ``text`` as whole words, longest first, each stretch counted once
    ("oil painting" is one hit, not also "painting")."""
    found = []
    for phrase in sorted(phrases, key=len, reverse=True):
        pattern = rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
        if re.search(pattern, text):
            found.append(phrase)
            text = re.sub(pattern, " ", text)
    return found
