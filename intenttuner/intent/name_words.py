"""Word lists of `names`: which words are never a name, and which a name may still be.

Kept apart from names.py so the patterns there stay readable; the choices are explained
beside each list.
"""

from __future__ import annotations

# Ordinary English words that are never taken for a name ("my dog Running", "my cat is cute"):
# function words, verbs, adjectives and the nouns of what a picture shows. names.py adds every
# word the parser's own lexicon knows.
COMMON = frozenset("""
a an the this that these those some any every each all both either neither no none not own
same other others another such what which who whom whose where when why how whatever here there
i me my mine we us our you your he him his she her it its they them their one ones
is are was were be been being am do does did doing done have has had having get gets got make
can could will would shall should may might must need needs let lets ought
and or but nor so yet if then than because since while though although unless until whether
about above across after against along among around as at before behind below beside between
beyond by down during except for from in inside into like near of off on onto out outside over
past per round through throughout to toward towards under underneath unlike up upon via with
within without also too very really just only even still again already always never often
ever sometimes usually maybe perhaps please thanks thank yes ok okay hello hi hey
everything everyone everybody someone somebody something anyone anybody anything nobody nothing
itself himself herself themselves myself yourself ourselves
look looks looking looked see seen seem seems show shows shown appear appears say says said
go goes going went come comes came take takes took give gave know knew think thought want
use used using try tried call calls work works feel feels keep kept stay stays remain remains
run runs running ran walk walks walking sit sits sitting sat stand stands standing stood lie
lying lay lays jump jumps jumping fly flying swim swimming sleep sleeps sleeping eat eats eating
drink play plays playing dance dancing sing smile smiles smiling laugh laughing cry crying bark
barks barking wags wagging purrs purring stares staring chases chasing fetches licks
growls meows hides waits wear wears wearing wore hold holds holding carry carrying wave waving
hug ride
riding drive driving pose poses posing posed face faces facing turn turned lean leaning wait
paint painted painting draw drawn drawing render rendered rendering photograph photographed
shoot shot shots train trained training tune tuned learn learned generate generated produce
match matches resemble resembles love loves like likes hate hates live lives living grow grows
cute small big large little tiny huge old young new good bad nice pretty beautiful handsome
ugly happy sad angry funny fluffy furry fuzzy soft hard long short tall thin fat slim curly
straight wavy messy neat clean dirty shiny dark light bright pale main real fake whole entire
certain favourite favorite lovely sweet adorable grumpy lazy sleepy playful friendly scruffy
floppy pointy round square flat sharp smooth rough wet dry hot cold warm cool fancy plain simple
classic modern vintage retro rare unique special usual typical original first second third last
next best better worst male female wooden metal leather plastic glass cotton silk denim striped
face hair eyes eye ears ear nose mouth lips teeth smile skin body arm arms leg legs hand hands
foot feet paw paws tail fur whiskers coat collar leash harness head neck shoulders back chest
belly cheek cheeks chin forehead eyebrows brows beard moustache mustache freckles mole tattoo
scar glasses sunglasses hat cap hood hoodie jacket shirt dress skirt pants trousers jeans shorts
socks scarf tie necklace earrings bracelet outfit clothes clothing costume uniform armour armor
helmet mask ribbon bow badge logo text watermark signature border frame background foreground
picture pictures photo photos image images dataset lora loras model models trigger token word
words name names nickname description concept concepts instruction instructions note notes
subject goal intent prompt prompts task request details summary example version type kind sort
design sheet reference references art artwork shot render sketch breed side view front top
bottom left right center centre middle day night time today year years age old looks part parts
version colour colours color colors shape size pose photoshoot session set series line range
yeah yep nope lol pls plz etc eg ie vs count important update edit context info
information requirements rules output input warning reminder overview brief spec specs feature
features changes constraints nb ps tldr todo idea ideas plan focus main needs
""".split())
PARTICLES = frozenset("da de del della di du van von der den la le al bin ibn el dos das ter "
                      "ten st".split())
# Words that follow a verb, not a name: a lower-case "name" before them is a verb.
OBJECT_WORDS = frozenset("the a an his her its their my our your at on in into onto to with "
                         "from him them it me us up down out around over like off away back "
                         "about".split())
NAMING_WORDS = frozenset({"named", "called", "nicknamed", "dubbed", "christened", "aka"})
POSSESSIVE_DETS = frozenset({"my", "our", "his", "her", "their", "your"})

# Popular pet names that are also words the parser knows ("bear", "blue", "socks"). Written
# with a capital right after "my dog" / "named", they are names: a lower-case one still is not
# ("my dog socks" may be a typo for anything). See names._is_name.
PET_NAMES = frozenset("""bear teddy kitty boots socks blue lady princess baby fluffy
buddy ginger shadow smokey smoky patch patches spot tiger angel sunny muffin cookie biscuit
peanut button buttons star sugar honey pumpkin mittens whiskers pickles lucky rusty goldie
snowball snowy duke king queen prince major chief bandit ranger scout coco cocoa mocha latte
pepper salt olive oliver daisy rosie rose lily poppy ruby pearl jasper amber jade sky storm
misty cloud bubbles fudge toffee caramel pudding bean beans noodle nugget tater tot""".split())

# The first word of a "Word: ..." / "Word - ..." label that only heads what follows ("Note:
# keep the face", "Goal - keep the logo"): the label is cut, it is neither a name nor a concept.
# Not a cue ("Keep: face"), nor "Name:" (it names the subject), nor a concept ("Hair: ...").
LABEL_WORDS = frozenset("""note notes nb ps p.s goal goals aim update updates edit edits
important context info information requirement requirements rule rules output input warning
reminder overview brief spec specs feature features change-log changelog constraint
constraints tldr tl;dr todo idea ideas plan focus summary details detail request task
instruction instructions intent description remark remarks comment comments extra bonus
also optional priority priorities must-haves wishes wish preference preferences
""".split())
# Words a label may hold besides its head ("Please note:", "Side note -", "Main goal:").
LABEL_QUALIFIERS = frozenset("""please side quick main my our the one last final small general
additional more other key top big short long very most""".split())
MONTHS = frozenset("""january february march april may june july august september october
november december jan feb mar apr jun jul aug sep sept oct nov dec""".split())
WEEKDAYS = frozenset("""monday tuesday wednesday thursday friday saturday sunday mon tue tues
wed thu thur thurs fri sat sun""".split())
