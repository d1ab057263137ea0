"""The words captions use for the 80 COCO categories, and a caption built from instance labels.

`NOUNS`: category -> (singular forms, plural forms), the first of each being the one we write
(`noun`). The lexicon's objects (`vocabulary.py`) are built on these words; the copy-paste source
writes them (`label_caption`, and its caption edits through `swaps.py`).
"""

from __future__ import annotations

from imgdiff.language.articles import indefinite_article
from imgdiff.language.grammar import NUMBERS, listed

_WORDS = {
    "person": "person man woman boy girl child kid guy lady gentleman baby toddler player skier surfer "
    "skateboarder snowboarder rider batter catcher pitcher umpire tennis player adult teenager cyclist "
    "| people persons men women boys girls children kids guys ladies babies toddlers players skiers "
    "surfers skateboarders snowboarders riders adults teenagers cyclists",
    "bicycle": "bicycle bike | bicycles bikes",
    "car": "car sedan taxi cab suv | cars sedans taxis cabs",
    "motorcycle": "motorcycle motorbike scooter moped | motorcycles motorbikes scooters mopeds",
    "airplane": "airplane plane jet aircraft airliner jetliner aeroplane | airplanes planes jets airliners "
    "jetliners aeroplanes",
    "bus": "bus | buses busses",
    "train": "train locomotive | trains locomotives",
    "truck": "truck lorry pickup truck | trucks lorries",
    "boat": "boat ship sailboat canoe kayak yacht ferry | boats ships sailboats canoes kayaks yachts ferries",
    "traffic light": "traffic light stoplight stop light traffic signal | traffic lights stoplights "
    "stop lights traffic signals",
    "fire hydrant": "fire hydrant hydrant | fire hydrants hydrants",
    "stop sign": "stop sign | stop signs",
    "parking meter": "parking meter meter | parking meters meters",
    "bench": "bench | benches",
    "bird": "bird seagull gull pigeon duck parrot goose | birds seagulls gulls pigeons ducks parrots geese",
    "cat": "cat kitten kitty | cats kittens kitties",
    "dog": "dog puppy pup doggy | dogs puppies pups",
    "horse": "horse pony | horses ponies",
    "sheep": "sheep lamb | sheep lambs",
    "cow": "cow bull calf ox | cows cattle bulls calves oxen",
    "elephant": "elephant | elephants",
    "bear": "bear | bears",
    "zebra": "zebra | zebras",
    "giraffe": "giraffe | giraffes",
    "backpack": "backpack rucksack | backpacks rucksacks",
    "umbrella": "umbrella parasol | umbrellas parasols",
    "handbag": "handbag purse bag | handbags purses bags",
    "tie": "tie necktie | ties neckties",
    "suitcase": "suitcase luggage | suitcases",
    "frisbee": "frisbee | frisbees",
    "skis": "pair of skis | skis",
    "snowboard": "snowboard | snowboards",
    "sports ball": "ball soccer ball tennis ball football basketball volleyball | balls",
    "kite": "kite | kites",
    "baseball bat": "baseball bat bat | baseball bats bats",
    "baseball glove": "baseball glove glove mitt | baseball gloves gloves mitts",
    "skateboard": "skateboard | skateboards",
    "surfboard": "surfboard surf board | surfboards surf boards",
    "tennis racket": "tennis racket racket racquet | tennis rackets rackets racquets",
    "bottle": "bottle | bottles",
    "wine glass": "wine glass glass | wine glasses glasses",
    "cup": "cup mug | cups mugs",
    "fork": "fork | forks",
    "knife": "knife | knives",
    "spoon": "spoon | spoons",
    "bowl": "bowl | bowls",
    "banana": "banana | bananas",
    "apple": "apple | apples",
    "sandwich": "sandwich burger hamburger | sandwiches burgers hamburgers",
    "orange": "orange | oranges",
    "broccoli": "broccoli | broccoli",
    "carrot": "carrot | carrots",
    "hot dog": "hot dog hotdog | hot dogs hotdogs",
    "pizza": "pizza | pizzas",
    "donut": "donut doughnut | donuts doughnuts",
    "cake": "cake cupcake | cakes cupcakes",
    "chair": "chair stool | chairs stools",
    "couch": "couch sofa | couches sofas",
    "potted plant": "potted plant plant houseplant | potted plants plants houseplants",
    "bed": "bed | beds",
    "dining table": "table dining table desk | tables dining tables desks",
    "toilet": "toilet | toilets",
    "tv": "television tv | televisions tvs",
    "laptop": "laptop computer notebook | laptops computers notebooks",
    "mouse": "mouse | mice",
    "remote": "remote remote control controller | remotes remote controls controllers",
    "keyboard": "keyboard | keyboards",
    "cell phone": "cell phone phone cellphone smartphone mobile phone | cell phones phones cellphones "
    "smartphones",
    "microwave": "microwave microwave oven | microwaves microwave ovens",
    "oven": "oven stove stove top stovetop | ovens stoves stovetops",
    "toaster": "toaster toaster oven | toasters toaster ovens",
    "sink": "sink | sinks",
    "refrigerator": "refrigerator fridge | refrigerators fridges",
    "book": "book | books",
    "clock": "clock | clocks",
    "vase": "vase | vases",
    "scissors": "pair of scissors | scissors",
    "teddy bear": "teddy bear teddy | teddy bears teddies",
    "hair drier": "hair drier hair dryer blow dryer | hair driers hair dryers",
    "toothbrush": "toothbrush | toothbrushes",
}

# Two-word entries above that are one phrase; everything else is split on spaces.
_PHRASES = {
    "tennis player", "pickup truck", "traffic light", "stop light", "traffic signal", "traffic lights",
    "stop lights", "traffic signals", "fire hydrant", "fire hydrants", "stop sign", "stop signs",
    "parking meter", "parking meters", "pair of skis", "soccer ball", "tennis ball", "baseball bat",
    "baseball bats", "baseball glove", "baseball gloves", "surf board", "surf boards", "tennis racket",
    "tennis rackets", "wine glass", "wine glasses", "hot dog", "hot dogs", "potted plant", "potted plants",
    "dining table", "dining tables", "remote control", "remote controls", "cell phone", "cell phones",
    "mobile phone", "pair of scissors", "teddy bear", "teddy bears", "hair drier", "hair dryer",
    "blow dryer", "hair driers", "hair dryers", "microwave oven", "microwave ovens", "toaster oven",
    "toaster ovens", "stove top",
}  # fmt: skip


def _split(text: str) -> list[str]:
    """Words of a `_WORDS` half, keeping the known phrases together."""
    words, out = text.split(), []
    i = 0
    while i < len(words):
        three, two = " ".join(words[i : i + 3]), " ".join(words[i : i + 2])
        size = 3 if three in _PHRASES else 2 if two in _PHRASES else 1
        out.append(" ".join(words[i : i + size]))
        i += size
    return out


def _nouns() -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for name, text in _WORDS.items():
        singular, plural = text.split("|")
        out[name] = (_split(singular), _split(plural))
    return out


NOUNS: dict[str, tuple[list[str], list[str]]] = _nouns()  # category -> (singular forms, plural forms)


def noun(category: str, plural: bool = False) -> str:
    """The word we write for a category (its COCO name when it is not a COCO category)."""
    forms = NOUNS.get(category)
    if forms is None:
        return category
    return forms[1 if plural else 0][0]


def label_caption(counts: dict[str, int]) -> str:
    """'a photo with a dog, two people and a car' from {category: count} (in the order given);
    a count over ten, or -1 (a crowd), reads 'many'."""
    parts = []
    for category, count in counts.items():
        if count == 1:
            word = noun(category)
            parts.append(f"{indefinite_article(word)} {word}")
        elif count > 1 or count == -1:
            number = NUMBERS[count] if 1 < count <= 10 else "many"
            parts.append(f"{number} {noun(category, plural=True)}")
    return f"a photo with {listed(parts)}" if parts else "a photo"
