"""One builder module per architecture of :data:`dnalm.kinds.archs.ARCHS`, named like it.

A builder turns a resolved architecture dict (:func:`dnalm.modeling.models.resolve_arch`)
into a transformers config; :mod:`dnalm.modeling.models` looks it up by name
(:func:`builder`) and does the rest. Each module defines

* ``MODEL_CLASS``: the transformers class (``...ForCausalLM`` or ``...ForMaskedLM``) that the
  saved folder loads with through the Auto classes;
* ``build_config(arch, common, special_ids)``: the transformers config; `common` holds the
  vocabulary size, the special token ids and ``tie_word_embeddings``;

and where the architecture needs them:

* ``check(arch, name)``: ConfigError for a resolved dict the architecture cannot build
  (`name`, e.g. ``modernbert/tiny``, for messages);
* ``forward_kwargs(model, positions, attn_implementation, dtype)``: the ``position_ids``
  and ``attention_mask`` of a packed batch, where the default (the positions as they are and
  :func:`dnalm.modeling.models.packed_attention_mask`) does not fit;
* ``model_context(config)``: usable positions, where that is not
  ``max_position_embeddings``.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def builder(name: str) -> ModuleType:
    """The builder module of architecture `name` (``dnalm.modeling.archs.<name>``)."""
    return importlib.import_module(f"{__name__}.{name}")
