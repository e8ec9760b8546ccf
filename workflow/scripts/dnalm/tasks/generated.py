"""Generated sequences as one side of a sequence classification task: TSTR / TRTS.

*Train on synthetic, test on real* (TSTR) trains a classifier on a language model's samples
and scores it on natural sequences; *train on real, test on synthetic* (TRTS) does the
reverse. Both ask whether the model's samples carry the class signal of the natural
sequences: here the species of the held-out CDS whose prefix prompted each sample.

A sequence task names a generation set with ``generated: {model, role, set, keep_prompt}``
(config/README.md). The set is ``results/generate/{model}/samples.fa.gz`` (or
``markov.fa.gz``, the count-model baseline given the same prompts), written by
:mod:`dnalm.generation.run`: record ``prefix{i}`` continues the first ``prompt_nt`` nt of the
held-out CDS named by its ``prefix_id=`` tag, free samples (``prefix_id=-``) have no prompt
and so no species, and are left out. The prompting CDS come from the test splits of the
model's corpus, one FASTA per sample, whose species the sample sheet gives; a CDS id that
occurs in two of them is renamed ``{id}#{file index}`` as the generation stage does.

By default the prompt is cut off (``keep_prompt: false``): the first ``prompt_nt`` nt are
natural sequence and would hand the classifier the real species signal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, header_tags, read_fasta, read_fasta_files
from dnalm.kinds.tasks import BUILTIN_TASKS, SEQUENCE_TASK_KINDS

log = logging.getLogger(__name__)

ROLES = ("train", "test")
SETS = ("samples", "markov")


def prompt_species(prompt_fastas: Sequence[tuple[str | os.PathLike, str]]) -> dict[str, str]:
    """{CDS id: species} of the prompting test FASTAs ((path, species) in the generation
    stage's order), ids made unique as :func:`dnalm.generation.sequences.read_sequences`
    makes them."""
    paths = [path for path, _ in prompt_fastas]
    return {sid: str(prompt_fastas[i][1]) for i, sid, _seq, _line in read_fasta_files(paths)}


def generated_rows(
    fasta: str | os.PathLike,
    species_of: dict[str, str],
    *,
    prompt_nt: int,
    keep_prompt: bool = False,
) -> pd.DataFrame:
    """One row (id, sequence, label, prompt_id) per prompted record of a generation set,
    labelled with its prompt's species; the prompt's `prompt_nt` nt cut off unless
    `keep_prompt`. A prompt id not among the prompting CDS is an error naming the record."""
    if prompt_nt < 0:
        raise ConfigError(f"prompt_nt must be >= 0, got {prompt_nt}")
    rows, n_free, n_empty = [], 0, 0
    for header, seq, line in read_fasta(fasta):
        rid, tags = header_tags(header)
        if not rid:
            raise InputFormatError(f"{fasta}:{line}: FASTA record without an id")
        pid = tags.get("prefix_id", "-")
        if pid in ("-", ""):
            n_free += 1
            continue
        if pid not in species_of:
            raise InputFormatError(
                f"{fasta}:{line}: record {rid} was prompted by {pid!r}, which is not in "
                "the prompting test FASTAs; was the set generated from another corpus?"
            )
        body = seq if keep_prompt else seq[prompt_nt:]
        if not body:
            n_empty += 1
            continue
        rows.append({"id": rid, "sequence": body, "label": species_of[pid], "prompt_id": pid})
    if n_free or n_empty:
        log.info(
            "%s: left out %d free sample(s) (no prompt, no species) and %d sample(s) with "
            "nothing after the prompt",
            fasta,
            n_free,
            n_empty,
        )
    if not rows:
        raise InputFormatError(f"{fasta}: no prompted sample with sequence beyond its prompt")
    return pd.DataFrame(rows, columns=["id", "sequence", "label", "prompt_id"])


def write_generated_table(
    out_tsv: str | os.PathLike,
    fasta: str | os.PathLike,
    prompt_fastas: Sequence[tuple[str | os.PathLike, str]],
    *,
    prompt_nt: int,
    keep_prompt: bool = False,
) -> Path:
    """:func:`generated_rows` written as a task table (TSV: id, sequence, label, prompt_id)
    that :func:`dnalm.tasks.sequence.build_sequence_task` reads as `table` or `test_table`."""
    df = generated_rows(
        fasta, prompt_species(prompt_fastas), prompt_nt=prompt_nt, keep_prompt=keep_prompt
    )
    with atomic_write(out_tsv) as fh:
        df.to_csv(fh, sep="\t", index=False)
    log.info("%s: %d generated sequences, %s", fasta, len(df), df["label"].value_counts().to_dict())
    return Path(out_tsv)


def check_generated_task(name: str, cfg: dict) -> dict | None:
    """The task's ``generated`` entry with defaults, or None; ConfigError naming the key when
    the task is not a classification, the role or set is unknown, or the real side is not the
    other split (role train: the real sequences are test_table / test_fasta_by_class; role
    test: table / fasta_by_class)."""
    gen = cfg.get("generated")
    if not gen:
        return None
    where = f"tasks.sequence_tasks.{name}.generated"
    gen = {"role": "train", "set": "samples", "keep_prompt": False, **dict(gen)}
    if not gen.get("model"):
        raise ConfigError(f"{where}: name the causal model whose samples are used (model)")
    kind = BUILTIN_TASKS.get("generated").kind
    if cfg.get("kind", SEQUENCE_TASK_KINDS[0]) != kind:
        raise ConfigError(f"{where}: generated sequences are labelled by species; kind must be "
                          f"{kind}")  # fmt: skip
    if gen["role"] not in ROLES:
        raise ConfigError(f"{where}.role: {gen['role']!r} is not one of {list(ROLES)}")
    if gen["set"] not in SETS:
        raise ConfigError(f"{where}.set: {gen['set']!r} is not one of {list(SETS)}")
    train_keys = [k for k in ("table", "fasta_by_class") if cfg.get(k)]
    test_keys = [k for k in ("test_table", "test_fasta_by_class") if cfg.get(k)]
    if gen["role"] == "train" and (train_keys or not test_keys):
        raise ConfigError(
            f"{where}: role train (TSTR) trains on the generated sequences; give the real "
            f"ones as test_table or test_fasta_by_class only (found {train_keys or 'no test'})"
        )
    if gen["role"] == "test" and (test_keys or not train_keys):
        raise ConfigError(
            f"{where}: role test (TRTS) tests on the generated sequences; give the real ones "
            f"as table or fasta_by_class only (found {test_keys or 'no training set'})"
        )
    return gen


__all__ = [
    "ROLES",
    "SETS",
    "check_generated_task",
    "generated_rows",
    "prompt_species",
    "write_generated_table",
]
