"""Gene completion by a causal model (:mod:`dnalm.generation.genecomp` judges it): the
continuations of each prompt are sampled together with the model's cache
(:func:`dnalm.generation.sampling.sample_batch`), seeded, up to the prompt's budget; the
judge reads each up to its first in-frame stop codon of the sample's genetic code (so a
non-standard code's stop is not missed, and a standard stop that codes an amino acid there
is read through)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from dnalm.core.device import select_device
from dnalm.core.errors import InputFormatError
from dnalm.evaluation.inference import LoadedModel, load_lm
from dnalm.generation.genecomp import Completer, run_source
from dnalm.generation.sampling import encode_prefix, sample_batch


def model_completer(lm: LoadedModel, unit: int, temperature: float) -> Completer:
    """A completer sampling from `lm` (`unit`: nt per token of its tokenizer)."""

    def complete(prompts, budgets, n, seed) -> list[list[str]]:
        gen = torch.Generator(device=lm.device).manual_seed(seed)
        out = []
        for prompt, budget in zip(prompts, budgets, strict=True):
            ids = encode_prefix(lm, prompt)
            done = sample_batch(
                lm, [ids] * n, math.ceil(budget / unit), temperature, None, gen, stop_codon=False
            )
            reps = []
            for seq, _reason in done:
                if not seq.upper().startswith(prompt):
                    raise InputFormatError(
                        f"the model's tokenizer does not give the prompt back as it was "
                        f"(prompt {prompt[:30]}... of {len(prompt)} nt); gene completion needs "
                        "a tokenizer that decodes what it encodes"
                    )
                reps.append(seq[len(prompt) : len(prompt) + budget].upper())
            out.append(reps)
        return out

    return complete


def run_model(
    model: str,
    model_dir: str | os.PathLike,
    samples: Sequence[str],
    splits: Mapping[str, Sequence[str | os.PathLike]],
    settings: Mapping,
    out_tsv: str | os.PathLike,
    *,
    unit: int,
    device: str = "cpu",
    external: Mapping | None = None,
) -> pd.DataFrame:
    """The gene-completion table of one model (`external`: a models.external entry sampled
    instead of `model_dir`)."""
    lm = load_lm(model_dir, str(select_device(device)), external)
    complete = model_completer(lm, unit, float(settings["temperature"]))
    return run_source(model, lambda _train: complete, samples, splits, settings, out_tsv, unit=unit)
