"""The language layer: every rule about caption words, owned once and used by the `edit` stage, the
sources (copy-paste, captions, synthetic) and the template captions of `describe`.

- `text`: caption hygiene (`clean_caption`) and the words of a text;
- `grammar`: determiners, numbers, quantifiers, collectives, agreement words; a noun's number;
- `articles`: "a" or "an" (the `inflect` package), `with_article`;
- `inflection`: plurals and lemmas (lemminflect);
- `coco_words`: the words of the 80 COCO categories, a caption from instance labels;
- `vocabulary`: the lexicon's objects in their super-categories;
- `mentions`: where a caption names objects, and in which number;
- `swaps` / `removal`: replacing a mention by another object, dropping one.
"""
