"""dnalm: train and evaluate DNA language models end to end.

The library behind the Snakemake workflow in ``workflow/``. Every rule's script is a thin
wrapper around a function of this package; the same functions are reachable from the
``dnalm`` command line.

Importing ``dnalm`` (or any of its modules) changes nothing outside it: dnalm's own
transformers model types (the DNA+text model, :mod:`dnalm.multimodal.model`) are registered
with the Auto classes explicitly, where model folders are loaded
(:func:`dnalm.modeling.loader.register_model_types`).
"""

__version__ = "0.1.0"
