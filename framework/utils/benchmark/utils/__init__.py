"""The pieces of ``fw.utils.benchmark`` (``common``: Measurement, ``timer``: Timer,
``compare``: Compare), at torch's module paths."""
