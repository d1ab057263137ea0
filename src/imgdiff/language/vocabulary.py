"""The lexicon's objects: what captions call objects, grouped by what may replace what.

`objects()`: each object with its synonyms and plurals, in super-categories whose members can
replace each other plausibly ("a dog on a sofa" -> "a rabbit on a sofa"). They are the COCO
categories (`coco_words.NOUNS`; the person category split into man, woman, boy, ...) plus everyday
objects of the Objects365 list. Our super-categories are finer than COCO's twelve, kinds that fit
the same sentence: a bus may become a truck but not a bicycle, a bicycle a motorcycle, a bench a
couch, a baseball bat a golf club but not a frisbee, a surfboard a wakeboard but not skis. Synonyms
("dog", "puppy") are one object, so an edit never swaps a word for its synonym. A word names at
most one object. An object of a COCO category knows it (`category`), so the copy-paste source finds
its categories in captions with the same rules as the `edit` stage (`mentions.py`).
Also here: the words around object words that tell whether one is an object where it stands.
The objects are built on first use (plurals come from lemminflect).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from imgdiff.language.coco_words import NOUNS
from imgdiff.language.inflection import plural_of

# -- the lexicon's objects --------------------------------------------------------------------------
# Super-category -> (COCO categories, possibly none; further objects). Further objects are
# ";"-separated, their synonyms ","-separated; "word/plural" gives a plural that lemminflect would
# get wrong or that is the same word (a mass noun such as "lettuce").
_GROUPS: dict[str, tuple[str, str]] = {
    "road vehicle": ("car, truck, bus", "van; minivan; ambulance; fire truck, fire engine; tractor; jeep; "
                     "limousine, limo; police car"),
    "cycle": ("bicycle, motorcycle", "tricycle; unicycle"),
    "aircraft": ("airplane", "helicopter; hot air balloon; blimp; glider"),
    "watercraft": ("boat", "raft; jet ski; gondola; submarine"),
    "rail vehicle": ("train", "tram, streetcar, trolley"),
    "pet": ("cat, dog", "rabbit, bunny; hamster; squirrel; fox; raccoon; monkey"),
    "farm animal": ("horse, sheep, cow", "goat; pig; donkey; llama; alpaca"),
    "wild animal": ("elephant, bear, zebra, giraffe", "lion; tiger; rhinoceros/rhinoceroses, rhino; "
                    "hippopotamus/hippopotamuses, hippo; kangaroo; deer/deer; camel; moose/moose"),
    "bird": ("bird", "swan; owl; penguin; eagle; flamingo; peacock; crow; ostrich"),
    # What stands on a pole, and what stands on the pavement: street signs may hang from a pole.
    "pole fixture": ("traffic light, stop sign", "street light, street lamp, lamp post, lamppost; "
                     "street sign, road sign, sign"),
    "street fixture": ("fire hydrant, parking meter", "mailbox; trash can, garbage can, trash bin; "
                       "traffic cone; phone booth"),
    "seat": ("chair, couch, bench, bed", "armchair; recliner; rocking chair; hammock; ottoman"),
    # What people sit at, and what stores things: "a family at a table" is no family at a dresser.
    "table": ("dining table", "counter, countertop, counter top; kitchen island"),
    "storage": ("", "nightstand; cabinet; shelf/shelves, bookshelf/bookshelves; dresser"),
    "bathroom fixture": ("toilet", "bathtub, tub; shower; urinal"),
    "plant": ("potted plant", "flower; cactus/cacti; bouquet; bonsai tree"),
    "screen": ("tv, laptop", "monitor; tablet"),
    "computer part": ("mouse, keyboard", "webcam"),
    "handheld device": ("remote, cell phone", "camera; calculator; walkie talkie"),
    "kitchen appliance": ("oven, refrigerator, sink", "dishwasher; washing machine"),
    "countertop appliance": ("microwave, toaster", "blender; coffee maker; kettle"),
    "drinkware": ("bottle, wine glass, cup", "jar; teapot"),
    "dishware": ("bowl", "plate; tray; pot; pan"),
    "cutlery": ("fork, knife, spoon", "spatula; ladle; whisk"),
    "fruit": ("banana, apple, orange", "lemon; lime; strawberry; pear; peach; pineapple; watermelon; "
              "mango/mangoes; kiwi; avocado"),
    "vegetable": ("broccoli, carrot", "tomato/tomatoes; potato/potatoes; onion; cucumber; cabbage; "
                  "cauliflower/cauliflower; corn/corn; mushroom; eggplant; asparagus/asparagus; "
                  "lettuce/lettuce"),
    # Savoury dishes and baked sweets: a birthday cake may become a pie, not a taco.
    "dish": ("sandwich, hot dog, pizza", "burrito; taco; salad; quiche"),
    "baked good": ("donut, cake", "cookie; pie; muffin; bagel; croissant; pastry; pancake; waffle"),
    "carried item": ("backpack, handbag, suitcase, umbrella", "briefcase; basket; tote bag"),
    "wearable": ("tie, baseball glove", "hat; cap, baseball cap; helmet; pair of sunglasses/sunglasses; "
                 "pair of headphones/headphones; scarf; necklace; belt; bow tie"),
    # Boards by where they are ridden: a surfer's wave takes no pair of skis.
    "snow board": ("skis, snowboard", "sled"),
    "water board": ("surfboard", "wakeboard; paddle board; bodyboard"),
    "street board": ("skateboard", "hoverboard; kick scooter"),
    "flown": ("kite", "drone; model airplane"),
    # What is thrown or hit, and what one swings: a pitcher throws no tennis racket.
    "thrown": ("frisbee, sports ball", "boomerang"),
    "swung": ("baseball bat, tennis racket", "golf club; hockey stick"),
    "wall decor": ("clock", "mirror; painting; picture frame"),
    "table decor": ("vase", "lamp; candle"),
    "textile": ("", "pillow, cushion; blanket; rug; towel"),
    "reading": ("book", "magazine; newspaper"),
    "stationery": ("scissors", "pen; pencil; stapler"),
    "toy": ("teddy bear", "doll; toy car"),
    "grooming": ("hair drier, toothbrush", "comb; hairbrush; razor"),
}  # fmt: skip

# Lexicon-only synonyms of COCO categories: compounds that captions use, so the whole compound is
# replaced ("a coffee table" -> "a counter", not "a coffee counter"; "a polar bear" -> "a lion").
_MORE_SYNONYMS = {
    "dining table": "coffee table, picnic table, kitchen table, end table, side table, dining room table",
    "bench": "park bench",
    "potted plant": "flower pot, flowerpot",
    "teddy bear": "stuffed animal",
    "tennis racket": "tennis racquet",
    "tv": "flat screen tv, flat screen television, flatscreen tv",
    "remote": "game controller, video game controller, wii remote, wii controller, wii game controller",
    "oven": "stove top oven",
    "bus": "double decker bus",
    "bear": "polar bear, grizzly bear",
}

# The person category, split: (forms, plural override or "", gender, may be the new object).
# Roles ("skier", "baseball player") are only replaced: "a skier" -> "a woman" keeps the scene,
# "a woman" -> "a skier" would ask for a new activity.
_SPORTS = "baseball tennis soccer football frisbee hockey basketball volleyball ball"
_ROLES = "skier surfer skateboarder snowboarder rider batter catcher pitcher umpire cyclist chef"
_PEOPLE: list[tuple[str, str, Literal["m", "f", ""], bool]] = [
    ("man, guy, gentleman", "men, guys, gentlemen", "m", True),
    ("woman, lady", "women, ladies", "f", True),
    ("boy", "boys", "m", True),
    ("girl", "girls", "f", True),
    ("child, kid, toddler", "children, kids, toddlers", "", True),
    ("baby", "babies", "", False),
    ("person, adult, teenager", "people, persons, adults, teenagers", "", False),
    ("policeman, police officer", "policemen, police officers", "", False),
    (", ".join(["player"] + [f"{sport} player" for sport in _SPORTS.split()]), "", "", False),
    *((role, "", "", False) for role in _ROLES.split()),  # plurals by lemminflect
]
# Objects at home in two scenes: a sink is a kitchen appliance unless the caption is of a bathroom.
SCENES = {
    "sink": ("bathroom fixture", frozenset({"bathroom", "toilet", "bathtub", "tub", "shower", "urinal"}))
}
# Words never taken as the object to replace: "glasses" is as often spectacles as drinking glasses.
AMBIGUOUS = {"glasses"}
# Colour words that are objects only after a determiner or a number ("an orange", not "orange cat").
COLOURS = {"orange"}
# Two-word phrases whose second word is an object word but that name no such object.
NOT_OBJECTS = {
    "home plate", "license plate", "train car", "cable car", "hot plate", "bus stop sign", "truck bed",
    "flower bed", "toilet bowl",
}  # fmt: skip
# Words before a sport's object that make it the game, not a thing: "playing frisbee", "a game of".
GAMES = {"playing", "play", "plays", "played", "game of"}
# Nouns that make an object word before them a modifier: "bus stop", "clay court".
HEADS = {
    "stop", "stops", "station", "stations", "track", "tracks", "court", "courts", "field", "fields",
    "slope", "slopes", "park", "lot", "window", "windows", "seat", "seats", "box", "boxes", "slice",
    "slices", "pen", "enclosure", "exhibit", "food", "stand", "rack", "lane", "crossing", "game", "team",
    "shop", "store", "driver", "drivers", "helmet", "helmets", "ramp", "door", "doors", "wing", "wings",
    "trunk", "paper", "juice", "pie", "peel", "sauce", "ride", "rides", "race", "trail", "path", "sign",
    "signs", "poster", "display", "tower", "cart"
}  # fmt: skip


@dataclass(frozen=True)
class VocabObject:
    name: str  # the word we write (singular)
    group: str  # super-category: objects of one group may replace each other
    singular: tuple[str, ...]
    plural: tuple[str, ...]
    gender: Literal["m", "f", ""] = ""  # people only: which pronouns refer to it
    target: bool = True  # may be the new object of an edit
    category: str = ""  # its COCO category, if any ("person" for every person)

    def form(self, plural: bool) -> str:
        return (self.plural if plural else self.singular)[0]


Number = Literal["singular", "plural", "either"]


@cache
def objects() -> tuple[VocabObject, ...]:
    """Every object of the lexicon, in a fixed order."""
    out = [_person(*entry) for entry in _PEOPLE]
    for group, (coco, extra) in _GROUPS.items():
        for category in _list(coco, ","):
            singular, plural = (list(forms) for forms in NOUNS[category])
            for more in _list(_MORE_SYNONYMS.get(category, ""), ","):
                singular.append(more)
                plural.append(plural_of(more))
            out.append(VocabObject(singular[0], group, tuple(singular), tuple(plural), category=category))
        for entry in _list(extra, ";"):
            pairs = [_forms(word) for word in _list(entry, ",")]
            singular, plural = tuple(s for s, _ in pairs), tuple(p for _, p in pairs)
            out.append(VocabObject(singular[0], group, singular, plural))
    return tuple(out)


@cache
def forms() -> dict[str, tuple[VocabObject, Number]]:
    """Lower-case word or phrase -> (the object it names, its grammatical number)."""
    out: dict[str, tuple[VocabObject, Number]] = {}
    for obj in objects():
        for word in obj.singular + obj.plural:
            number: Number = (
                "either"
                if word in obj.singular and word in obj.plural
                else ("singular" if word in obj.singular else "plural")
            )
            if out.setdefault(word, (obj, number))[0] is not obj:
                raise ValueError(f"vocabulary: '{word}' names both {out[word][0].name} and {obj.name}")
    return out


@cache
def longest_form() -> int:
    """Words in the longest form: how far a caption scan looks ahead."""
    return max(len(word.split()) for word in forms())


def _person(singular: str, plural: str, gender: Literal["m", "f", ""], target: bool) -> VocabObject:
    names = _list(singular, ",")
    plurals = _list(plural, ",") or [plural_of(name) for name in names]
    return VocabObject(names[0], "person", tuple(names), tuple(plurals), gender, target, "person")


def _forms(word: str) -> tuple[str, str]:
    singular, _, plural = word.partition("/")
    return singular, plural or plural_of(singular)


def _list(text: str, sep: str) -> list[str]:
    return [part.strip() for part in text.split(sep) if part.strip()]
