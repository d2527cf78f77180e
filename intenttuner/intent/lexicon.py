"""Word lists of the offline intent parser, kept as data so adding a phrasing is one line.

The controlled language (documented in the README) is: "keep ...", "change / modify /
adjustable ...", "remove / delete / no / never ...", ``[n]`` references, "trigger: ...",
"domain: ...", plus the common phrasings below.
"""

from __future__ import annotations

from .schema import Domain, Operation

# Cue words and phrases per operation; matched on whole words, longest first.
OPERATION_CUES: dict[Operation, tuple[str, ...]] = {
    Operation.DELETE: (
        "get rid of", "do not want", "don't want", "doesn't want", "does not want",
        "should not have", "shouldn't have", "must not have", "mustn't have", "not include",
        "free of", "take out", "leave out", "never", "no", "without", "remove", "removed",
        "removing", "delete", "deleted", "exclude", "excluded", "avoid", "erase", "drop",
        "eliminate", "strip", "clean up", "hide",
    ),
    Operation.MODIFY: (
        "be able to change", "switch between", "choose between", "pick between", "free to",
        "change", "changes", "changed", "changeable", "alter", "altered", "alterable", "changing",
        "modify", "modifiable", "modified", "adjust", "adjustable", "adjusted", "vary", "varies",
        "varied", "variable", "various", "switch", "switchable", "swap", "swappable", "different",
        "customise", "customize", "customisable", "customizable", "control", "controllable",
        "editable", "edit", "alternate", "alternative", "interchangeable", "replace",
        "replaceable", "flexible", "tweak", "any", "either", "anything", "whatever",
    ),
    Operation.KEEP: (
        "look like", "the same", "stay the same", "keep", "keeps", "kept", "keeping",
        "preserve", "preserved", "maintain", "maintained", "consistent", "consistently",
        "retain", "retained", "same", "unchanged", "stable", "always", "faithful",
        "faithfully", "identical", "fixed", "stay", "stays", "remain", "remains",
        "recognisable", "recognizable", "capture", "reproduce", "accurate", "accurately",
        "learn", "include", "includes",
    ),
}
# Keep cues that describe a state, not an action: negated they mean change ("should not be
# fixed"), while a negated keep action means delete ("don't include any logos").
KEEP_STATES = frozenset({
    "consistent", "consistently", "the same", "same", "stay the same", "unchanged", "stable",
    "fixed", "identical", "always", "faithful", "faithfully", "stay", "stays", "remain",
    "remains", "accurate", "accurately", "recognisable", "recognizable"})

# Cues too vague to decide a clause on their own: they count only when no other cue is there
# ("any background" is modify, but "keep the face, any background" splits on "keep").
WEAK_CUES = frozenset({"any", "different", "either", "various", "always", "same", "fixed",
                       "learn", "accurate", "accurately", "capture", "stable", "control",
                       "alternative", "flexible"})
# Delete cues that are actions, so a negator turns them around ("don't remove" = keep); the
# others ("no", "without") are negations themselves.
DELETE_VERBS = frozenset({"remove", "removed", "removing", "delete", "deleted", "drop",
                          "erase", "hide", "exclude", "excluded", "strip", "eliminate"})

# A negator just before a keep/modify cue flips it: "don't change" = keep, "don't keep" = delete.
NEGATORS = ("don't", "do not", "doesn't", "does not", "never", "not", "shouldn't",
            "should not", "mustn't", "must not", "cannot", "can't", "won't", "no", "without",
            "nothing")
# Words between a negator and the cue it flips ("nothing in the background should change").
NEGATION_WINDOW = 5

# Words that carry no concept: pronouns, determiners, auxiliaries, filler.
STOPWORDS = frozenset("""
a an the this that these those his her hers their theirs its it it's he she they him them i me
my mine we us our you your yours myself himself herself itself themselves
is are was were be been being am should must can could would will shall may might do does did
have has had having to also too very really just only please make sure let allow allowed
want wants wanted like would like need needs needed able always all every each some both
generated generation generations image images output outputs picture pictures photo photos
result results model lora when while across in on at for by with of from as into onto over
give gives giving gets get got wear wears wearing wore show shows showing appear appears
appearing look looks looking present there here so but and or then thing things one ones
time times freely easily well much more less lot lots way ways etc kind sort type both
doing done being gets exactly precisely perfectly completely fully totally strictly entirely
clearly visibly properly slightly quite nothing anything something
""".split())
# Prepositions that end a noun phrase: "the tattoo on his arm" → "tattoo".
PHRASE_BREAKS = ("of", "on", "in", "at", "with", "from", "for", "by", "under", "over", "near",
                 "around", "behind", "above", "below", "across", "during")

# Words that make a sentence context (who/what is trained) rather than a concept instruction.
CONTEXT_CUES = ("train", "training", "fine-tune", "finetune", "fine tune", "model of",
                "lora of", "lora for", "lora on", "dataset", "images of", "photos of",
                "pictures of", "called", "named", "name is", "known as", "is a", "are a",
                "this is", "these are", "subject", "i want a", "create a", "make a", "learn a",
                "teach")

POSSESSIVES = frozenset({"his", "her", "its", "their", "my", "our", "your"})
# Bare colour words name a state of the noun before them ("her hair should be red").
COLOUR_WORDS = frozenset("""red orange yellow green blue purple violet pink brown black white
grey gray silver gold golden blonde blond beige turquoise teal navy""".split())

# Attribute nouns: "<object> <attribute>" is an attribute of the object ("hair colour").
ATTRIBUTE_NOUNS = ("colour", "color", "length", "style", "hairstyle", "shape", "size",
                   "pattern", "material", "texture", "expression", "age", "tone", "cut",
                   "fit", "print", "design", "finish", "brand")
# Attribute nouns whose object is implied: an expression is the face's, a tone the skin's.
OBJECT_OF = {"expression": "face", "facial expression": "face", "hairstyle": "hair",
             "age": "face", "tone": "skin"}
PLURAL_OBJECTS = {"eye": "eyes"}  # "eye colour" is seen on both eyes
# Nouns of whole-image qualities (imagery granularity).
IMAGERY_NOUNS = ("lighting", "light", "background", "atmosphere", "mood", "palette",
                 "brushwork", "brushstrokes", "brush strokes", "composition", "blur", "bokeh",
                 "grain", "noise", "colour scheme", "color scheme", "vibe", "art style",
                 "painting style", "drawing style", "illustration style", "style", "pose",
                 "posture", "stance", "gesture", "action", "landing", "camera angle", "angle",
                 "perspective", "framing", "weather", "season", "time of day", "setting",
                 "scenery", "environment", "rendering", "linework", "line art", "shading")
# Words after which an attribute noun has no object of its own (e.g. "art style").
IMAGERY_QUALIFIERS = ("art", "painting", "drawing", "illustration", "photographic", "camera",
                      "colour", "color", "line", "overall", "visual")

# Default values for modify concepts given without any ("hair colour should be adjustable"):
# they drive captions and controllability probes, and the preview says they were assumed.
DEFAULT_VALUES: dict[str, tuple[str, ...]] = {
    "hair colour": ("black hair", "blonde hair"),
    "hair color": ("black hair", "blonde hair"),
    "hairstyle": ("short hair", "long hair"),
    "hair style": ("short hair", "long hair"),
    "hair length": ("short hair", "long hair"),
    "hair": ("short hair", "long hair"),
    "eye colour": ("blue eyes", "brown eyes"),
    "eye color": ("blue eyes", "brown eyes"),
    "expression": ("smiling", "serious expression"),
    "facial expression": ("smiling", "serious expression"),
    "background": ("plain white background", "busy city street background"),
    "lighting": ("soft daylight", "dramatic night lighting"),
    "outfit": ("casual t-shirt and jeans", "formal suit"),
    "clothes": ("casual t-shirt and jeans", "formal suit"),
    "clothing": ("casual t-shirt and jeans", "formal suit"),
    "costume": ("casual clothes", "armour"),
    "pose": ("standing", "sitting"),
    "season": ("summer", "winter"),
    "weather": ("sunny weather", "rainy weather"),
    "time of day": ("daytime", "night"),
    "age": ("young", "elderly"),
    "camera angle": ("front view", "side view"),
    "angle": ("front view", "side view"),
    "style": ("photograph", "watercolor painting"),
    "art style": ("photograph", "watercolor painting"),
}
# "<object> colour" without values: probe two colours of the object.
GENERIC_COLOUR_VALUES = ("red", "blue")

# Domain keywords; the description's subject sentence counts most (see classify.guess_domain).
DOMAIN_CUES: dict[Domain, tuple[str, ...]] = {
    Domain.CHARACTER: ("character", "anime", "manga", "cartoon", "2d", "3d character", "mascot",
                       "chibi", "comic", "vtuber", "oc", "game character", "waifu"),
    Domain.STYLE: ("style", "painting", "painter", "painted", "brushwork", "watercolor",
                   "watercolour", "oil painting", "artist", "aesthetic", "art style",
                   "drawn", "illustration style", "ukiyo-e", "impressionist"),
    Domain.POSE: ("pose", "posture", "stance", "landing", "gesture", "jumping", "dancing",
                  "yoga", "action", "kick", "running", "sitting pose"),
    Domain.PRODUCT: ("product", "bottle", "shoe", "sneaker", "sneakers", "bag", "handbag",
                     "watch", "perfume", "packaging", "logo", "brand", "mug", "cup", "lamp",
                     "chair", "phone", "headphones", "jewelry", "jewellery", "catalog",
                     "catalogue", "e-commerce", "ecommerce"),
    Domain.PORTRAIT: ("man", "woman", "person", "guy", "girl", "boy", "lady", "gentleman",
                      "face", "portrait", "selfie", "myself", "wife", "husband", "actor",
                      "actress", "grandmother", "grandfather", "people", "headshot"),
    Domain.OBJECT: ("dog", "cat", "puppy", "kitten", "pet", "toy", "plush", "figurine", "car",
                    "robot", "bird", "horse", "doll", "teddy", "object", "animal"),
    Domain.SCENE: ("room", "landscape", "city", "street", "interior", "scene", "place",
                   "building", "garden", "kitchen", "beach", "forest"),
}
# Other names accepted after "domain:".
DOMAIN_ALIASES = {"2d character": Domain.CHARACTER, "anime": Domain.CHARACTER,
                  "painting style": Domain.STYLE, "art style": Domain.STYLE,
                  "pose/action": Domain.POSE, "action": Domain.POSE, "person": Domain.PORTRAIT,
                  "face": Domain.PORTRAIT}
DOMAIN_PRIORITY = (Domain.CHARACTER, Domain.STYLE, Domain.POSE, Domain.PRODUCT,
                   Domain.PORTRAIT, Domain.OBJECT, Domain.SCENE)

DEFAULT_TRIGGER = "ohwx"  # a rare token, the community's usual placeholder
