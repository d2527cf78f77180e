"""The operation cues of the offline parser, as data: how people say keep, modify and delete.

People rarely write "keep", "modify" or "remove". They say a thing "is what matters", "must look
like" the photos or "should always have" it (keep); that it "is up to the prompt", "doesn't
matter" or "can be anything" (modify); that it "must not be in the pictures", "shouldn't show
up" or should be "left out" (delete). Each phrasing is one entry here (entries are separated by
"|"); `cues` matches them on whole words, the longest at a place first, and applies negation
(the groups below say what a negator does to each kind of cue).
"""

from __future__ import annotations

from itertools import product

from .schema import Operation


def _phrases(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split("|") if p.strip())


# Words for the prompt: a thing "up to the prompt" is free (modify). Composed with the verbs that
# hand a thing to the prompt, so "set by my prompt" and "follows the prompt" both read.
_PROMPT = _phrases("the prompt | my prompt | the prompts | my prompts | prompt | prompts "
                   "| the text prompt | my text prompt | the text prompts")
_TO_PROMPT = _phrases("""up to | left to | leave to | follow | follows | following | from | by |
    via | through | with | in | per | to | set by | set in | set through | set via |
    controlled by | controlled through | controlled via | controlled with | controlled in |
    driven by | decided by | decided in | chosen by | chosen in | given in | described in |
    specified in | specified by | defined by | defined in | come from | comes from |
    depend on | depends on | depending on | according to | based on | listen to | listens to |
    respond to | responds to | obey | obeys | whatever is in | whatever's in | whatever""")
# Not "says": "the text says SALE" is about text in the picture.
_PROMPT_DECIDES = _phrases("""decide | decides | should decide | can decide | choose | chooses |
    pick | picks | control | controls | set | sets | determine | determines | handle | handles |
    dictate | dictates | should control | can control | should set | can set | should pick |
    can pick | should choose | can choose | should determine | should dictate | will decide |
    will control | gets to decide | gets to choose | get to decide""")
# The text, the caption or the user decide only with verbs that clearly hand the choice over.
_CHOOSERS = _phrases("the text | the caption | the captions | the description | the user | me "
                     "| the person prompting | whoever prompts")
_DECIDERS = _phrases("the text | the caption | the description | the user")  # "the user decides"
_HAND_OVER = _phrases("up to | left to | follow | follows | controlled by | set by | decided by "
                      "| chosen by | specified by | depends on | depending on")
# "whatever I ask for", "whatever the prompt says": the thing is the user's choice.
_WHO = _phrases("i | you | we | they | the user | the prompt | my prompt | the text | the caption")
_WANTS = _phrases("""ask for | asks for | want | wants | say | says | type | types | prompt |
    prompts | choose | chooses | pick | picks | like | need | needs | describe | describes |
    specify | specifies | decide | decides | request | requests""")
# The pictures themselves: a thing "in every picture" is there (keep), one that "must not be in
# the pictures" is not (delete). The picture words are part of the cue, never a concept.
_PICTURES = _phrases("""the pictures | the photos | the images | the generations | the outputs |
    the results | the renders | the shots | my pictures | my photos | my images | any picture |
    any photo | any image | any generation | any output | every picture | every photo |
    every image | every shot | every generation | each picture | each photo | each image |
    all pictures | all photos | all images | all the pictures | all the photos |
    all the images | the generated images | the final images | the picture | the photo |
    the image | the output | the result | the dataset | the training images |
    the training data | the training set""")
_BE_IN = _phrases("""be in | appear in | appears in | show up in | shows up in | be visible in |
    be seen in | make it into | end up in | ends up in | get into | be part of | turn up in |
    pop up in | in | into""")

_MODIFY_PROMPT = (*(f"{v} {n}" for v, n in product(_TO_PROMPT, _PROMPT)),
                  *(f"{n} {v}" for n, v in product((*_PROMPT, *_DECIDERS), _PROMPT_DECIDES)),
                  *(f"{v} {n}" for v, n in product(_HAND_OVER, _CHOOSERS)),
                  *(f"whatever {w} {x}" for w, x in product(_WHO, _WANTS)))
_PRESENT_IN_PICTURES = tuple(f"{b} {p}" for b, p in product(_BE_IN, _PICTURES))

# Keep cues that describe a state, not an action: negated they mean change ("should not be
# fixed", "isn't important", "doesn't have to look like", "isn't a must").
_KEEP_STATES = _phrases("""consistent | consistently | the same | same | stay the same |
    unchanged | stable | fixed | identical | always | faithful | faithfully | faithful to |
    true to | stay true to | stay | stays | remain | remains | accurate | accurately |
    recognisable | recognizable | recognisably | recognizably | look like | looks like |
    looking like | matters | it matters | that matters | what matters | matters most |
    essential | crucial | vital | critical | important | most important | is key | are key |
    on-model | on model | stay on-model | stay on model | must match | should match |
    to match | matches | matching | exactly like | just like | intact | untouched | locked |
    locked in | care about | care most about | care about most | the focus | a priority |
    the priority | always have | always has | always wears | always wear | always wearing |
    always with | must have | has to have | have to have | needs to have | need to have |
    resemble | resembles | be right | look right | exactly right | exact | precise |
    what counts | that counts | counts most | what matters most | the key thing |
    the whole point | the point of | the main thing | main focus | focus on | focused on |
    focuses on | focusing on | top priority | non-negotiable | stick to | resemblance |
    likeness | above all | as it is | as they are | as is | lock in | no matter what |
    whatever happens |
    at all times | every time | regardless of the prompt | no matter the prompt |
    independent of the prompt | in every prompt | a must | is a must | are a must |
    must-have | a must-have | must-haves | is a must-have | dealbreaker | a dealbreaker |
    deal-breaker | deal breaker | is a dealbreaker | is everything | are everything |
    means everything""")
# Keep cues that are actions or presence: negated they mean delete ("don't include any logos",
# "shouldn't be learned", "must not show up").
_KEEP_ACTIONS = _phrases("""keep | keeps | kept | keeping | preserve | preserves | preserved |
    preserving | maintain | maintains | maintained | retain | retains | retained | capture |
    captures | captured | capturing | reproduce | reproduces | reproduced | learn | learns |
    learned | learnt | pick up | picks up | picked up | memorise | memorize | remember |
    remembers | include | includes | included | carry over |
    part of the character | part of the subject | part of him | part of her | part of them |
    part of the design | part of the look | part of the product | part of the identity |
    part of who""")
# Presence: an instruction only with a modal or a negator before it ("the freckles should be in
# every image", "must not show up"); "it is in every shot" states a fact.
PRESENCE = frozenset((*_phrases("""appear | appears | show up | shows up | visible | be visible |
    be present | be there | wanted | needed | welcome | in every shot"""), *_PRESENT_IN_PICTURES))
# Words that make a presence cue an instruction.
MODALS = _phrases("""should | must | has to | have to | needs to | need to | always | want |
    wants | make sure | ensure | ensures | never | not | can't | cannot | won't | mustn't |
    shouldn't | don't | doesn't | isn't | aren't | do not | does not | is not | are not""")

_MODIFY = _phrases("""be able to change | switch between | choose between | pick between |
    free to | free to vary | free to change | be free | is free | are free | left free | change |
    changes | changed | changeable | changing | alter | altered | alterable | modify |
    modifiable | modified | adjust | adjustable | adjusted | vary | varies | varied | varying |
    variable | various | variation | variations | variety | a variety of | switch |
    switchable | switch up | switch out | swap | swappable | swap out | change up | different |
    differ | differs | diverse | customise | customize | customisable | customizable |
    control | controllable | editable | edit | alternate | alternative | interchangeable |
    replace | replaceable | flexible | tweak | touch | touched | any | either | anything |
    anything goes | can be anything | whatever | promptable | prompt-able | prompt-controlled |
    prompt controlled | prompt-driven | prompt driven | prompt-dependent | steerable |
    configurable | selectable | optional | open-ended | left open | kept open | stay open |
    stays open | random | randomly | randomised | randomized | mix up | mixed | mix and match |
    all kinds of | all sorts of | any kind of | a range of | range of | experiment with |
    play with | on demand | as needed | my choice | of my choice | of my choosing |
    be able to pick | be able to choose | able to pick | able to choose | able to set |
    able to control | able to vary | want to pick | want to choose | get to pick |
    get to choose | i pick | i choose | i decide | i'll decide | i'll pick | i'll choose |
    i'll specify | i'll describe | i can pick | i can choose | i can specify | let me pick |
    let me choose | let me decide | let me change | no matter | regardless of |
    irrespective of | unfixed | unlocked | can be any | could be any | may be any |
    can have any | can come in any | can be in any | can be different | can differ |
    can be whatever""")
# Freedom said through a negation: the negator is part of the cue, so nothing turns it around.
_MODIFY_NEGATED = _phrases("""doesn't matter | does not matter | don't matter | do not matter |
    not matter | doesn't really matter | don't really matter | matter less | matters less |
    less important | not important | not that important | not so important |
    not really important | unimportant | irrelevant | not relevant | don't care | do not care |
    doesn't care | does not care | don't care about | do not care about | i don't care about |
    don't really care | do not really care | don't really care about | not care about |
    couldn't care less | don't mind | do not mind | doesn't mind | don't really mind |
    i don't mind | not fussed | not bothered | not locked | not fixed | needn't be the same |
    doesn't have to be the same | does not have to be the same | don't have to be the same |
    no need to keep""")

_DELETE = _phrases("""get rid of | rid of | do not want | don't want | doesn't want |
    does not want | never want | wouldn't want | would not want | don't wanna |
    don't want to see | do not want to see | never want to see | don't need to see |
    rather not have | rather not see | prefer not to have | should not have | shouldn't have |
    must not have | mustn't have | never have | not include | free of | clear of | take out |
    take away | take off | leave out | leave off | left out | cut out | crop out | paint out |
    edit out | mask out | blur out | filter out | inpaint out | rub out | keep out | keep away |
    out of frame | out of the frame | out of shot | out of the shot | out of the picture |
    out of the pictures | out of the photos | out of the images | never | no | without |
    with no | remove | removed | removing | delete | deleted | deleting | exclude | excluded |
    excluding | avoid | avoided | erase | erased | drop | dropped | eliminate | eliminated |
    strip | strip out | clean up | clean off | scrub | hide | hidden | omit | omitted | skip |
    ditch | lose | ignore | ignored | disregard | forget | unlearn | unwanted | undesired |
    unnecessary | not wanted | not needed | no need for | not welcome | not allowed |
    never allowed | forbidden | banned | has to go | have to go | must go | needs to go |
    need to go | should go | can go | gotta go | be gone | gone | mustn't be there |
    must not be there | shouldn't be there | should not be there | disappear | disappears |
    vanish | vanishes | go away | goes away""")

# Cue words and phrases per operation; matched on whole words, longest first.
OPERATION_CUES: dict[Operation, tuple[str, ...]] = {
    Operation.DELETE: _DELETE,
    Operation.MODIFY: (*_MODIFY, *_MODIFY_NEGATED, *_MODIFY_PROMPT),
    Operation.KEEP: (*_KEEP_STATES, *_KEEP_ACTIONS, *PRESENCE),
}
KEEP_STATES = frozenset(_KEEP_STATES)

# Cues too vague to decide a clause on their own: they count only when no other cue is there
# ("any background" is modify, but in "keep the face in any light" the keep decides).
WEAK_CUES = frozenset((*_phrases("""any | different | either | various | always | same | fixed |
    learn | learns | accurate | accurately | capture | captured | stable | control |
    alternative | flexible | variety | included | matters | touch | touched | no matter what |
    whatever happens | at all times | every time | regardless of the prompt |
    no matter the prompt | independent of the prompt | in every prompt |
    remember | mixed | random | randomly | optional | edit | drop |
    skip | lose | forget | hide | hidden | strip | gone | can go | should go | above all"""),
                       *PRESENCE))
# Cues a negator does not turn around: "without any text" deletes, "never anything" is no
# instruction to keep. Cues holding a negator themselves ("doesn't matter") never turn either.
UNFLIPPABLE = frozenset(_phrases("""any | either | anything | whatever | anything goes |
    various | variety | a variety of | all kinds of | all sorts of | any kind of | random |
    randomly | mixed"""))
# Delete cues that are actions, so a negator turns them around ("don't remove" = keep, "never
# lose the scar" = keep); the others ("no", "without", "unwanted") are negations themselves.
DELETE_VERBS = frozenset(_phrases("""remove | removed | removing | delete | deleted | deleting |
    drop | dropped | erase | erased | hide | hidden | exclude | excluded | excluding | strip |
    strip out | eliminate | eliminated | omit | omitted | skip | ditch | lose | ignore |
    ignored | disregard | forget | take out | take away | take off | leave out | leave off |
    cut out | crop out | paint out | edit out | mask out | blur out | filter out | get rid of |
    avoid | avoided | scrub | clean up | disappear | disappears | vanish | vanishes | go away |
    goes away"""))
# Delete cues that are bare negations: before another cue they are its negator, not a delete
# ("no changes to her face" is keep, "without changing his face" is keep).
NEGATION_CUES = frozenset({"no", "never", "without", "with no"})
# Negations a negator turns into keep: "never without her scarf" always has the scarf.
NEGATED_ABSENCE = frozenset({"without", "with no"})
# Words that may stand between that negator and "without" ("should never *be* without").
DOUBLE_NEGATION_GAP = ("be", "been", "ever", "go", "goes", "really", "seen", "appear", "appears")
# A choice between values is a change, but only with the "or" of the values after it: "the
# background can be a beach or a forest", "either marble or wood". Alone, "can be" is no cue
# and "either" a weak one.
CHOICE_CUES = ("can be", "could be", "may be", "might be", "can also be", "could also be")

# A negator just before a keep/modify cue flips it: "don't change" = keep, "don't keep" = delete.
NEGATORS = _phrases("""don't | do not | doesn't | does not | didn't | never | not | shouldn't |
    should not | mustn't | must not | cannot | can't | won't | wouldn't | isn't | aren't |
    wasn't | weren't | hasn't | haven't | needn't | no | without | nothing | nor | nobody |
    no one | none | neither""")
# Negators that say nothing about the thing: "I'm not sure the hair should change" is not keep.
NOT_NEGATING = _phrases("not sure | not certain | not only | not just | no idea | not a fan "
                        "| no doubt")
# Words between a negator and the cue it flips ("nothing in the background should change").
NEGATION_WINDOW = 5

# Two-part cues: first word(s), up to `max gap` words of the concept, then the second part
# ("keep the text out of the pictures", "I don't want his face to change").
_DONT_WANT = _phrases("don't want | do not want | doesn't want | does not want | never want "
                      "| wouldn't want | would not want")
DONT_WANT = frozenset(_DONT_WANT)
SPLIT_CUES: tuple[tuple[tuple[str, ...], tuple[str, ...], Operation, int], ...] = (
    (_phrases("keep | leave | take | cut | crop | paint | edit | mask | blur | filter | get "
              "| strip | clean"),
     ("out", "away", "off", "out of frame", "out of shot", "out of it",
      *(f"out of {p}" for p in _PICTURES)), Operation.DELETE, 6),
    (("leave",), ("alone", "untouched"), Operation.KEEP, 6),
    (("get",), ("right", "exactly right"), Operation.KEEP, 6),
    (_DONT_WANT, _phrases("""to change | to be changed | to vary | to differ | to look different |
        to be different | to be altered | to be touched | changed | altered | changing |
        touched | messed with | to move"""), Operation.KEEP, 8),
    (_DONT_WANT, _phrases("""to stay the same | to be the same | to be fixed | fixed | locked |
        baked in | to always be the same"""), Operation.MODIFY, 8),
)

# Deletions that read the same whatever is listed: "no text, watermarks and logos" removes all
# three, while "no gradients, soft shadows" leaves the soft shadows to their own clause.
ARTEFACTS = frozenset("""text texts watermark watermarks logo logos signature signatures
border borders frame frames caption captions date dates timestamp timestamps stamp stamps
username usernames copyright handle handles url urls subtitles letters lettering writing words
label labels sticker stickers tag tags artifacts artefacts noise grain blur glare lens flare
flares reflections vignette people person crowd crowds bystanders hands fingers duplicates
""".split())
