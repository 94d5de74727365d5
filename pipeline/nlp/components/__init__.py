"""spaCy components of codesuggest: one module per component, named for its factory (``cs_<name>``).

Importing a module registers its factory; :mod:`pipeline.nlp.assembly` imports them all.
"""
