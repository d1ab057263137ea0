"""Stage `remove`: object removal, the paper's second data type (METHOD.md 5).

Method `inpaint` (`inpaint.py`) turns each pair that `regions` (method `semantic`, which stores the
segmenter's masks) kept into removal children: per image of the pair, up to `per_image` changed
objects, each painted out by an `inpainter` model. A child is a pair (the image with the object, the
image without it) that the export writes as a multiple-choice question: "Which image has <object>
in the red box?".
"""
