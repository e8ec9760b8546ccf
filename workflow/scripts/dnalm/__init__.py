"""dnalm: train and evaluate DNA language models end to end.

The library behind the Snakemake workflow in ``workflow/``. Every rule's script is a thin
wrapper around a function of this package; the same functions are reachable from the
``dnalm`` command line.

Importing ``dnalm`` registers the DNA+text model (:mod:`dnalm.multimodal.model`, model type
``dnalm_dnatext``) with the transformers Auto classes, so ``AutoModelForMaskedLM`` loads its
folders without ``trust_remote_code``. To keep ``import dnalm`` light, the registration runs
at once when ``transformers`` is already imported, and otherwise right after its first
import (a one-shot import hook); :func:`register_models` runs it explicitly.
"""

import contextlib
import importlib.abc
import sys

__version__ = "0.1.0"


def register_models() -> None:
    """Register dnalm's own transformers model classes with the Auto classes."""
    from dnalm.multimodal.model import register

    register()


class _AfterTransformers(importlib.abc.MetaPathFinder):
    """Runs :func:`register_models` once, right after ``transformers`` is imported."""

    def find_spec(self, name, path, target=None):
        if name != "transformers":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            original(module)
            with contextlib.suppress(ImportError):  # no torch: the model cannot exist
                register_models()

        loader.exec_module = exec_module
        return spec


if "transformers" in sys.modules:
    with contextlib.suppress(ImportError):
        register_models()
elif not any(isinstance(f, _AfterTransformers) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterTransformers())
