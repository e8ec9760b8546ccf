"""dnalm: train and evaluate DNA language models end to end.

The library behind the Snakemake workflow in ``workflow/``. Every rule's script is a thin
wrapper around a function of this package; the same functions are reachable from the
``dnalm`` command line.
"""

__version__ = "0.1.0"
