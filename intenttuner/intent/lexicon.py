"""Word lists of the offline intent parser, kept as data so adding a phrasing is one line.

The controlled language (documented in the README) is: "keep ...", "change / modify /
adjustable ...", "remove / delete / no / never ...", ``[n]`` references, "trigger: ...",
"domain: ...", plus the many ways people say those, which live in `cue_words`. Here: the words
that name no concept (function words, filler, words about the prompt or the model), how noun
phrases end, attributes, default values and domains.
"""

from __future__ import annotations

# The operation cues and negation live in `cue_words` (one phrasing a line); named here too so
# the word lists stay importable from one place.
from .cue_words import (  # noqa: F401  (re-exported)
    DELETE_VERBS,
    KEEP_STATES,
    NEGATION_WINDOW,
    NEGATORS,
    OPERATION_CUES,
    WEAK_CUES,
)
from .schema import Domain

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
# Prepositions that end a noun phrase: "the tattoo on his arm" → "tattoo", "the outfit between
# shots" → "outfit".
PHRASE_BREAKS = ("of", "on", "in", "at", "with", "from", "for", "by", "under", "over", "near",
                 "around", "behind", "above", "below", "across", "during", "between", "among",
                 "amongst", "within", "throughout", "into", "onto", "through", "via", "than",
                 "except", "besides", "beside", "inside", "outside", "against", "about",
                 "regarding", "like", "if", "unless", "because", "whether", "towards", "toward")
# A copula ends the noun phrase before it: what follows is said about it ("the car is the
# product" → car).
COPULAS = frozenset({"is", "are", "was", "were"})
# A relative clause starts at these ("the table it stands on", "the bag that she holds").
RELATIVES = frozenset({"that", "which", "who", "whom", "whose", "it", "he", "she", "they", "i",
                       "we", "you"})
DETERMINERS = frozenset({"the", "a", "an", "his", "her", "its", "their", "my", "our", "your",
                         "this", "that", "these", "those"})
# Words of how people write, not of what they mean: never a concept, never part of a name
# ("pls keep the face" → face). Kept apart from STOPWORDS, which the caption rules share.
FILLER = frozenset("""
pls plz please thx thanks thank esp especially particularly basically really maybe perhaps
probably possibly ideally definitely absolutely certainly kinda sorta just actually honestly
literally simply mostly mainly generally usually what which who whichever how why where
whatever though although ok okay fine good great nice cool yes yeah yep hmm um uh well anyway
think guess hope believe feel suppose mean know trying try tried use using let lets see seen
say says said tell stuff whole entire other another else everything everyone someone somebody
anyone i'm i've i'd i'll it's that's there's he's she's they're we're you're let's what's
here's wanna gonna gotta leave also still even sure mind super rather part parts bit bits
aspect aspects rest put puts putting used took taken made ever go goes
""".split())
# Filler of several words, taken out before the noun phrases are read.
FILLER_PHRASES = ("i'm trying to", "i am trying to", "trying to", "i think", "i guess",
                  "i believe", "i suppose", "i feel like", "i'd like to", "i would like to",
                  "i'd like", "i would like", "i want to", "i'd say", "if possible",
                  "if you can", "as much as possible", "kind of", "sort of", "for me", "to me",
                  "of course", "at least", "in general", "for sure", "i mean", "you know",
                  "i hope", "thank you", "i'm not sure", "not sure", "no idea", "by the way",
                  "btw", "imo", "tbh", "at all", "more or less", "a bit", "a little", "a lot",
                  "as well", "in particular")
# Words that start a new item of a list, like "and": "keep the face, esp the eyes" → face, eyes.
LIST_JOINERS = ("especially", "esp", "particularly", "in particular", "along with",
                "together with", "as well as", "plus", "and also", "not to mention")
# Words about the prompt, the model or the training itself, never what a picture shows: a noun
# phrase ending in one names no concept ("no name, use the default trigger" deletes nothing).
META_HEADS = frozenset("""prompt prompts caption captions model models lora loras training
trigger triggers token tokens default defaults name names result results output outputs
generation generations render renders dataset checkpoint description descriptions
instruction instructions reference references ref refs original originals shot shots
photoshoot shoot""".split())
META_PHRASES = frozenset({"trigger word", "trigger words", "text prompt", "prompt text",
                          "training images", "training data"})
# Verbs about the training that open a noun phrase's words: "Train a lora on Tokyo streets"
# names no concept ("the train" still does).
META_VERBS = frozenset({"train", "finetune", "fine-tune", "teach"})
# Pronouns a reference box may follow ("remove it [2]"): the box shows what the pronoun means,
# the last concept named.
PRONOUNS = frozenset("""it this that these those them they him her he she one""".split())

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
# Attributes every such thing has: one cannot be removed, only left free ("keep the hair style,
# not the colour" frees the hair colour).
INHERENT_ATTRIBUTES = frozenset({"colour", "color", "length", "style", "hairstyle", "shape",
                                 "size", "texture", "material", "expression", "age", "tone",
                                 "fit", "cut"})
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
