"""Stage `edit`, method `lexicon`: swap one object noun phrase for another object of its
super-category, without weights ("a dog on a sofa" -> "a rabbit on a sofa").

The caption's objects are found by the language layer (`imgdiff.language.mentions`: longest phrase
first, modifiers, compounds, games, possessives and number), replaced by one of `swaps.targets` (an
object of the same super-category that may be a new object, that the caption does not name already
and that no sibling edit used, fitting the caption's gendered pronouns) with `swaps.replace` (same
number, "a"/"an" fixed, a leading capital kept, modifiers kept: "a red car" -> "a red van", which
keeps the two prompts aligned word for word). The child's seed picks which object to replace and by
what.
"""

from __future__ import annotations

import random

from imgdiff.language.mentions import find_mentions
from imgdiff.language.swaps import replace, targets
from imgdiff.language.text import words
from imgdiff.record import Edit, Record
from imgdiff.stages.edit import CHECKED, REFERENCE, EditSettings, EditStage


class LexiconEdit(EditStage):
    method = "lexicon"
    version = 3  # 3: one language layer (hyphenated modifiers are one word); 2: finer kinds, compounds whole
    Settings = EditSettings
    PRESETS = {"paper": dict(CHECKED), "reference": dict(REFERENCE)}

    def __call__(self, records: list[Record]) -> list[Record]:
        return self.finish([(record, self._children(record)) for record in records])

    def _children(self, record: Record) -> list[Record]:
        caption = record.caption_a
        if not words(caption):
            record.reject(self.name, "empty_caption: the record has no caption_a to edit")
            return []
        mentions, named = find_mentions(caption)
        if not mentions:
            record.reject(self.name, f"no_object: no object of the vocabulary in {caption[:60]!r}")
            return []
        context = set(words(caption))
        children: list[Record] = []
        used: set[str] = set()
        for k in range(self.settings.n_edits):
            options = [(m, targets(m.obj, named | used, context)) for m in mentions]
            options = [(m, found) for m, found in options if found]
            if not options:
                break
            child = self.child(record, k)
            rng = random.Random(child.seed)
            mention, found = options[rng.randrange(len(options))]
            target = found[rng.randrange(len(found))]
            used.add(target.name)
            child.caption_b, new = replace(caption, mention, target)
            child.edit = Edit(old=caption[mention.start : mention.end], new=new)
            children.append(child)
        if not children:
            names = ", ".join(sorted({m.obj.name for m in mentions}))
            record.reject(self.name, f"no_alternative: nothing of the same kind can replace {names}")
        return children
