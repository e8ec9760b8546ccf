"""Zero-shot variant-effect scores from a trained model folder (``dnalm vep``, rules in
vep.smk). VCF reading, the SNV policy, simulation and baselines: :mod:`.variants`.

**Window.** Each SNV is scored in a window of ``window`` nucleotides of its contig, centred
on it (start = pos0 - window // 2, pos0 the 0-based position). The window is upper-cased.
For tokenizers of fixed-width, non-overlapping tokens (codon, k-mer) the start is moved
down to a multiple of the token width counted from the contig's first base, and the length
cut to whole tokens (still covering the site), so that a CDS contig is read in frame.
Windows running off a contig end: ``edge="error"`` (default) is an InputFormatError naming
the VCF line; ``edge="clip"`` cuts the window at the contig end (the variant is then off
centre; the same window is used for REF and ALT). Windows are encoded ``[BOS] tokens``,
with ``[EOS]`` only when the window reaches the contig's end (the reverse strand: its
start), so that an end token means what it meant in training.

**Causal (gpt) models:** score = log p(window with ALT) - log p(window with REF), each the
sum of the per-token log-likelihoods of :func:`dnalm.evaluation.inference.score_ids`
(sliding window when longer than the context).

**Masked (mlm) models:** masked-marginal score. The REF and ALT windows are tokenized; the
tokens they share at the start and at the end are context, the tokens in between (the ones
the substitution changes: one nucleotide, k-mer or codon token, the k overlapping k-mers
that contain the site, or the BPE tokens whose segmentation it changed) are replaced by
[MASK] in each. Score = sum of log p(ALT token) over the masked ALT positions minus the sum
of log p(REF token) over the masked REF positions; when both have the same number of tokens
the masked inputs are the same and one forward pass serves both. Several masked tokens are
scored independently (as in a pseudo-log-likelihood), not jointly. A window longer than
the model's context is cut, in tokens, to the context around the changed tokens (shared
context removed from both sides, [BOS] kept; a warning once).

Both scores are 0 when ALT equals REF and change sign when REF and ALT are swapped.
``rc_average``: the mean of the forward score and the score of the reverse-complemented
windows (columns score_forward, score_reverse).

Outputs: a TSV (chrom, pos, id, ref, alt, score, [score_forward, score_reverse,]
window_start, window_end (1-based, inclusive), line) and a copy of the VCF with INFO
``DNALM_LLR`` (Number=A).
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, refuse_overwrite
from dnalm.evaluation.inference import (
    LoadedModel,
    add_model_arguments,
    cli_external,
    ll_differences,
    load_lm,
    positive_int,
    score_ids,
    score_many,
)
from dnalm.evaluation.variants import (
    Variant,
    check_variants,
    load_contigs,
    read_vcf,
    write_vcf_copy,
)
from dnalm.kinds.tokenizers import token_width

log = logging.getLogger(__name__)

INFO_KEY = "DNALM_LLR"
EDGES = ("error", "clip")
_WARNED: list[bool] = []
#: SNVs whose windows are scored together (causal models)
VARIANT_BATCH = 512  # the context-cut warning is given once per process


def window_bounds(
    length: int, pos0: int, window: int, unit: int = 1, edge: str = "error", where: str = ""
) -> tuple[int, int]:
    """[start, end) of the scoring window of 0-based `pos0` on a contig of `length` bp
    (module docstring)."""
    if edge not in EDGES:
        raise ConfigError(f"vep edge must be one of {', '.join(EDGES)}, got {edge!r}")
    start = pos0 - window // 2
    end = start + window
    if start < 0 or end > length:
        if edge == "error":
            raise InputFormatError(
                f"{where}: the {window}-nt window around the variant runs off the contig "
                f"({length} bp; window {start + 1}..{end}); use a shorter window or edge clip"
            )
        start, end = max(0, start), min(length, end)
    start -= start % unit
    end = start + (end - start) // unit * unit
    if end <= pos0:
        end = min(length, end + unit)
    return start, end


def _masked_region(lm: LoadedModel, ids: list[int], lo: int, hi: int) -> list[int]:
    x = list(ids)
    for i in range(lo, hi):
        if ids[i] not in lm.special:
            x[i] = lm.mask_id
    return x


@torch.no_grad()
def _masked_logp(lm: LoadedModel, x: list[int]) -> torch.Tensor:
    t = torch.tensor([x], dtype=torch.long, device=lm.device)
    pos = torch.arange(len(x), device=lm.device)[None]
    return torch.log_softmax(lm.logits(t, pos)[0].float(), -1)  # (T, V)


def pair_score(lm: LoadedModel, ref_seq: str, alt_seq: str, eos: bool, where: str) -> float:
    """Score of `alt_seq` against `ref_seq` (two windows of the same length; module
    docstring), 0.0 when they are equal."""
    if ref_seq == alt_seq:
        return 0.0
    ref_ids = lm.encode(ref_seq, name=where, eos=eos)
    alt_ids = lm.encode(alt_seq, name=where, eos=eos)
    if lm.objective == "gpt":
        ref_ll, alt_ll = score_ids(lm, ref_ids), score_ids(lm, alt_ids)
        return float(np.nansum(alt_ll) - np.nansum(ref_ll))
    if lm.mask_id is None:
        raise ConfigError("the masked model's tokenizer has no mask token")
    head = 0
    while head < min(len(ref_ids), len(alt_ids)) and ref_ids[head] == alt_ids[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(ref_ids), len(alt_ids)) - head and ref_ids[-1 - tail] == alt_ids[-1 - tail]
    ):
        tail += 1
    excess = max(len(ref_ids), len(alt_ids)) - lm.context
    if excess > 0:  # cut the shared context, keeping [BOS] and the changed tokens
        keep = 1 if lm.bos_id is not None else 0
        cut_left = min(head - keep, max(excess - tail, (excess + 1) // 2))
        cut_right = excess - cut_left
        if cut_right > tail:
            raise ConfigError(
                f"{where}: the changed tokens do not fit the masked model's context {lm.context}"
            )
        if not _WARNED:
            log.warning(
                "masked model context %d tokens < window: windows are cut to the context "
                "around the variant",
                lm.context,
            )
            _WARNED.append(True)
        ref_ids = ref_ids[:keep] + ref_ids[keep + cut_left : len(ref_ids) - cut_right]
        alt_ids = alt_ids[:keep] + alt_ids[keep + cut_left : len(alt_ids) - cut_right]
        head -= cut_left
        tail -= cut_right
    # overlapping k-mers: the changed tokens are the k that contain the site, so the
    # base cannot be read from an unmasked neighbour
    ref_x = _masked_region(lm, ref_ids, head, len(ref_ids) - tail)
    alt_x = _masked_region(lm, alt_ids, head, len(alt_ids) - tail)
    ref_lp = _masked_logp(lm, ref_x)
    alt_lp = ref_lp if alt_x == ref_x else _masked_logp(lm, alt_x)
    ref_sum = sum(float(ref_lp[i, ref_ids[i]]) for i in range(head, len(ref_ids) - tail))
    alt_sum = sum(float(alt_lp[i, alt_ids[i]]) for i in range(head, len(alt_ids) - tail))
    return alt_sum - ref_sum


def pair_scores(lm: LoadedModel, pairs: Sequence[tuple[str, str, bool, str]]) -> list[float]:
    """:func:`pair_score` of each (ref, alt, eos, where) of `pairs`. For a causal model the
    windows of every pair are scored together, many to a forward pass with one copy to the
    host a batch: windows within the context by
    :func:`dnalm.evaluation.inference.ll_differences` (the tokens before the change run once
    for REF and ALT, both alleles in one forward pass, a REF window shared by several ALT
    alleles once), longer ones by :func:`dnalm.evaluation.inference.score_many`; every
    window of `pairs` is tokenized in one call."""
    if lm.objective != "gpt":
        return [pair_score(lm, *pair) for pair in pairs]
    todo = [i for i, (ref, alt, _, _) in enumerate(pairs) if ref != alt]
    seqs = [seq for i in todo for seq in pairs[i][:2]]
    names = [pairs[i][3] for i in todo for _ in (0, 1)]
    eos = [pairs[i][2] for i in todo for _ in (0, 1)]
    encoded = lm.encode_many(seqs, names, eos)  # every window in one call
    ids = {i: (encoded[2 * k], encoded[2 * k + 1]) for k, i in enumerate(todo)}
    out = [0.0] * len(pairs)
    # windows within the context: the tokens before the change run once for REF and ALT
    fit = [i for i in todo if max(map(len, ids[i])) <= lm.context]
    out_fit = ll_differences(lm, [ids[i] for i in fit])
    for i, d in zip(fit, out_fit, strict=True):
        out[i] = d
    # longer windows: the sliding window of score_ids, every window of the batch together
    rest = [i for i in todo if max(map(len, ids[i])) > lm.context]
    lls = score_many(lm, [x for i in rest for x in ids[i]])
    for k, i in enumerate(rest):
        out[i] = float(np.nansum(lls[2 * k + 1]) - np.nansum(lls[2 * k]))
    return out


def _windows(
    lm: LoadedModel, seq: str, v: Variant, window: int, edge: str, rc_average: bool, where: str
) -> tuple[list[tuple[str, str, bool, str]], tuple[int, int]]:
    """The (ref, alt, eos, where) window pairs of SNV `v` on contig `seq` (the forward
    strand, and with `rc_average` the reverse), and the window [start, end)."""
    pos0 = v.pos - 1
    start, end = window_bounds(len(seq), pos0, window, token_width(lm.spec), edge, where)
    ref = seq[start:end]
    alt = ref[: pos0 - start] + v.alt + ref[pos0 - start + 1 :]
    pairs = [(ref, alt, end == len(seq), where)]
    if rc_average:
        pairs.append((reverse_complement(ref), reverse_complement(alt), start == 0, where))
    return pairs, (start, end)


def score_variants(
    lm: LoadedModel,
    contigs: Mapping[str, str],
    variants: Sequence[Variant],
    window: int,
    edge: str = "error",
    rc_average: bool = False,
    wheres: Sequence[str] | None = None,
) -> list[tuple[float, list[float], tuple[int, int]]]:
    """:func:`score_variant` of each SNV of `variants` (on `contigs`, by name), their
    windows scored together (:func:`pair_scores`); `wheres`: each one's place for errors."""
    wheres = wheres if wheres is not None else [""] * len(variants)
    found = [
        _windows(lm, contigs[v.chrom], v, window, edge, rc_average, where)
        for v, where in zip(variants, wheres, strict=True)
    ]
    flat = iter(pair_scores(lm, [pair for pairs, _ in found for pair in pairs]))
    out = []
    for pairs, bounds in found:
        strands = [next(flat) for _ in pairs]
        out.append((float(np.mean(strands)), strands, bounds))
    return out


def score_variant(
    lm: LoadedModel,
    seq: str,
    v: Variant,
    window: int,
    edge: str = "error",
    rc_average: bool = False,
    where: str = "",
) -> tuple[float, list[float], tuple[int, int]]:
    """(score, per-strand scores, window [start, end)) of SNV `v` on contig `seq`."""
    return score_variants(lm, {v.chrom: seq}, [v], window, edge, rc_average, [where])[0]


def run_vep(
    model_dir: str | Path,
    vcf_path: str | Path,
    fasta: str | Path,
    out_tsv: str | Path,
    out_vcf: str | Path | None = None,
    window: int = 128,
    edge: str = "error",
    rc_average: bool = False,
    device: str = "cpu",
    external: Mapping | None = None,
) -> int:
    """Score every SNV of `vcf_path` on the contigs of `fasta` with the model in
    `model_dir` (or the external model `external`, ``{"entry", "record"}``); write the TSV
    and (when `out_vcf`) the annotated VCF copy. Returns the number of scored alleles."""
    if window < 1:
        raise ConfigError(f"vep window must be a positive number of nucleotides, got {window}")
    vcf = read_vcf(vcf_path)
    names: list[str] = []
    contigs = load_contigs(fasta, {v.chrom for v in vcf.variants}, seen=names)
    check_variants(vcf, contigs, fasta, names)
    lm = load_lm(model_dir, device, external)
    scores: dict[Variant, float] = {}
    with atomic_write(out_tsv) as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        strand_cols = ["score_forward", "score_reverse"] if rc_average else []
        w.writerow(["chrom", "pos", "id", "ref", "alt", "score", *strand_cols,
                    "window_start", "window_end", "line"])  # fmt: skip
        found = []
        for s in range(0, len(vcf.variants), VARIANT_BATCH):  # windows scored together
            batch = vcf.variants[s : s + VARIANT_BATCH]
            wheres = [f"{vcf_path}:{v.line}" for v in batch]
            found += score_variants(lm, contigs, batch, window, edge, rc_average, wheres)
        for v, (score, strands, (start, end)) in zip(vcf.variants, found, strict=True):
            scores[v] = score
            extra = [f"{s:.6f}" for s in strands] if rc_average else []
            w.writerow([v.chrom, v.pos, v.id, v.ref, v.alt, f"{score:.6f}", *extra,
                        start + 1, end, v.line])  # fmt: skip
    if out_vcf:
        write_vcf_copy(vcf, out_vcf, scores, INFO_KEY)
    return len(scores)


def default_out_vcf(out: str | Path) -> str:
    """The annotated VCF's path when ``--out-vcf`` is not given: OUT minus its suffix plus
    ``.dnalm.vcf`` (``x.tsv`` -> ``x.dnalm.vcf``), never the ``x.vcf`` a user's input is
    likely to be called."""
    return str(Path(out).with_suffix("")) + ".dnalm.vcf"


def _cmd_vep(args) -> int:
    out_vcf = args.out_vcf or default_out_vcf(args.out)
    refuse_overwrite(
        {"--model": args.model, "--vcf": args.vcf, "--fasta": args.fasta},
        {"--out": args.out, "--out-vcf": out_vcf},
    )
    with cli_external(args) as external:
        n = run_vep(
            args.model,
            args.vcf,
            args.fasta,
            args.out,
            out_vcf,
            window=args.window,
            edge=args.edge,
            rc_average=args.rc_average,
            device=args.device,
            external=external,
        )
    print(f"scored {n} SNV alleles: {args.out}, {out_vcf}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """`dnalm vep`."""
    p = subparsers.add_parser(
        "vep", help="zero-shot variant-effect scores (log-likelihood ratio alt vs ref)"
    )
    add_model_arguments(p, "trained model folder (gpt or mlm)")
    p.add_argument("--vcf", required=True, help="VCF (plain or gzip); SNVs are scored")
    p.add_argument("--fasta", required=True, help="genome FASTA the VCF positions refer to")
    p.add_argument("--out", required=True, help="output TSV")
    p.add_argument(
        "--out-vcf", help=f"VCF copy with INFO {INFO_KEY} (default OUT minus suffix + .dnalm.vcf)"
    )
    p.add_argument("--window", type=positive_int, default=128, help="window in nt (default 128)")
    p.add_argument("--edge", choices=EDGES, default="error",
                   help="window off a contig end: error (default) or clip")  # fmt: skip
    p.add_argument("--rc-average", action="store_true",
                   help="mean of the forward and reverse-complement scores")  # fmt: skip
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_vep)
