"""Machine-checked derivations of the formulas partitionnet implements.

Each module ``partitionnet.derivations.<name>`` proves a group of results from the sources
(the book's section 47.25, the convolution chapter, the lecture notes and
slides) and exposes ``run(*, latex=False) -> list[Check]``;
:mod:`partitionnet.derivations.registry` runs them all (``partitionnet verify``).
"""
