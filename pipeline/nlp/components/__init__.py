"""spaCy components of codesuggest, one module each; importing this package registers them."""

from pipeline.components import (  # noqa: F401
    attributes,
    candidates,
    context,
    mentions,
    sections,
    sentences,
)
