"""CDS extraction: from an annotated genome to one FASTA of coding sequences per sample, with a
QC table that accounts for every annotated CDS (kept or dropped, and why).

Input formats (the sample sheet's ``format`` column), and gene calling:

``gbff``
    GenBank flat file(s), gzip or plain, any number of records. Each ``CDS`` feature is
    extracted with Biopython (joins, ``complement``, mixed-strand trans-splicing, and joins
    across the origin of a circular record such as ``join(3981..5386,1..136)``), then
    trimmed by ``/codon_start``. Features that cannot be extracted are skipped with a warning
    naming the record, the feature's index and its locus_tag/gene: a location Biopython could
    not parse (``None``), a join into another record (``AL121804.2:40..610``), an ``order()``
    or imprecise location (``one-of``, ``(1.5)``; policy ``fuzzy_location``), a location past
    the record's end, or a record without sequence (CONTIG/WGS master records).
``fasta_gff``
    Genome FASTA (gzip, bgzip or plain) + GFF3 or GTF (see :mod:`dnalm.genome.gff` for grouping,
    phase and the GTF stop-codon rule). The FASTA is streamed once: validated (IUPAC DNA
    only) and written uncompressed, upper-case and with uniform line width into a temporary
    directory (``tmpdir``; :func:`run_cds` uses the output folder), where pyfaidx indexes it
    for random access; plain gzip cannot be indexed by pyfaidx and the source folder may be
    read-only, so this copy is always made, then deleted. A sequence id of the annotation
    that is not in the FASTA is an error (a ``chr`` prefix present on one side only is
    tolerated, with a warning).
``cds_fasta``
    CDS already extracted (Ensembl ``*.cds.all.fa``, NCBI ``*.ffn``/``cds_from_genomic.fna``).
    The first word of each header is the CDS id (a repeated id gets a ``_2``, ``_3`` suffix
    and a warning); NCBI bracket tags ``[transl_table=N]``, ``[pseudo=true]``,
    ``[partial=...]``, ``[locus_tag=...]``, ``[gene=...]``, ``[protein=...]`` are honoured.

``fasta`` + ``annotate`` (or ``annotate`` on gbff/fasta_gff)
    Genes called on the genome sequence by :mod:`dnalm.genome.genecall` (pyrodigal), one
    CDS per call (id ``{contig}_{n}``), ``evidence`` = predicted in the table, then the same
    QC as annotated CDS (a call running off a contig end is ``partial``). ``fasta`` without
    ``annotate`` has no CDS (SampleSheetError).

All sequences are upper-cased and U is read as T. IUPAC ambiguity codes are allowed and
counted (``n_ambiguous``); any other character is an :class:`InputFormatError` naming the
file, line and character.

**Genetic code** (column ``genetic_code``), highest priority first:

1. the sample sheet's ``genetic_code``, when given, for every CDS of the sample;
2. ``/transl_table`` of the feature (gbff), ``[transl_table=N]`` in the header (cds_fasta);
3. the default: 11 when the record is bacterial or archaeal (first taxonomy term Bacteria,
   Eubacteria, Archaea, Archaebacteria) or a plastid (source ``/organelle`` starting with
   ``plastid``/``chloroplast``, or ``chloroplast``/``plastid`` in the DEFINITION line);
   otherwise 1. For a mitochondrion (``/organelle="mitochondrion..."`` or DEFINITION) code 1
   is used with a warning, because mitochondrial codes vary (2 vertebrates, 3 yeasts, 4
   moulds, 5 invertebrates, ...): set ``genetic_code`` in the sheet. Phages without
   ``/transl_table`` get 1 by this rule (the translation is the same as 11; only
   alternative start codons differ). For fasta_gff without a sheet value: 1.

**QC** per CDS (codons read in frame from the first base after codon_start/phase):
``start_codon_ok`` (first codon is a start codon of the genetic code, Bio.Data.CodonTable),
``stop_codon_ok`` (length divisible by 3 and the last codon is a stop), ``len_div3``,
``internal_stop`` (a stop codon before the last codon, ignoring ``/transl_except`` sites
such as selenocysteine), ``translation_match`` (gbff with ``/translation`` only: the
translation with the CDS's genetic code, first codon read as M when it is a start codon,
``/transl_except`` applied and the terminal stop removed, equals ``/translation``; empty
when there is no ``/translation``), ``gc`` (G+C over unambiguous bases).

**Drop policy** (:class:`DropPolicy`). Every CDS gets a list of ``issues``; its ``status``
is ``kept`` or the first issue, in :data:`REASONS` order, that the policy drops. CDS without
a usable sequence are always dropped (:data:`ALWAYS_DROP`). Of the others, by default
``pseudo``, ``partial`` (``<``/``>`` ends, codon_start/phase > 1, NCBI/GENCODE partial
tags), ``fuzzy_location``, ``not_div3`` and ``internal_stop`` are dropped: a language model
of coding sequence should see complete, in-frame reading frames. ``no_start``, ``no_stop``,
``translation_mismatch``, ``ambiguous`` and ``too_short`` (``min_length``) are only flagged
unless the config adds them. Known limits: a ``/transl_except`` TERM that completes a stop
codon by polyadenylation (some mitochondria) is not applied, so such CDS are ``not_div3``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import gzip
import logging
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from dnalm.core.errors import InputFormatError, SampleSheetError
from dnalm.core.io import (
    atomic_write,
    refuse_overwrite,
    remove_stale_parts,
    write_fasta,
)
from dnalm.core.letters import reverse_complement
from dnalm.genome.cds_record import (
    DEFAULT_DROP,
    DEFAULT_HINT,
    DROP_HINTS,
    OPTIONAL_REASONS,
    Assembler,
    CandidateCds,
    CdsResult,
    DropPolicy,
    check_code,
    check_nonempty,
    clean_desc,
    codon_table,
    drop_warnings,
)
from dnalm.genome.contigs import iter_contigs, iter_fasta_checked, iter_named_fasta
from dnalm.genome.gbff import extract_gbff
from dnalm.genome.genecall import CALLERS, DEFAULT_CODE, call_genes
from dnalm.genome.gff import MAX_FRAMESHIFT_OVERLAP, read_cds_models
from dnalm.genome.qc import write_qc_summary
from dnalm.genome.samples import no_cds_message
from dnalm.kinds.formats import FORMATS, SAMPLE_FORMATS

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- fasta_gff


def _genome_copy_prefix(sample: str) -> str:
    """Name prefix of a sample's temporary genome copy (``+`` cannot occur in a sample ID,
    so one sample's prefix never matches another's copies)."""
    return ".dnalm-genome-" + re.sub(r"[^A-Za-z0-9_.-]", "_", sample) + "+"


def remove_stale_genome_copies(sample: str, tmpdir: str | os.PathLike) -> list[Path]:
    """Remove the genome copies a killed run of `sample` left in `tmpdir`."""
    prefix = _genome_copy_prefix(sample)
    stale = [p for p in Path(tmpdir).glob(glob.escape(prefix) + "*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
        log.info("sample %s: removed %s, left by an interrupted earlier run", sample, p)
    return stale


@contextlib.contextmanager
def _indexed_genome(path: Path, sample: str, tmpdir: str | os.PathLike | None):
    """Validated, uncompressed, upper-case copy of a genome FASTA, opened with pyfaidx."""
    import pyfaidx  # lazy: pyfaidx loads only for fasta_gff samples

    work = Path(tempfile.mkdtemp(prefix=_genome_copy_prefix(sample), dir=tmpdir))
    try:
        copy = work / "genome.fa"
        names: dict[str, int] = {}  # contig name -> header line
        with open(copy, "w", encoding="ascii") as out:
            for name, seq, hline in iter_named_fasta(path, sample):
                names[name] = hline
                if not seq:
                    continue  # pyfaidx cannot index empty records; nothing to extract anyway
                out.write(f">{name}\n")
                seq = seq.upper().replace("U", "T")
                for i in range(0, len(seq), 80):
                    out.write(seq[i : i + 80] + "\n")
        if not names:
            raise InputFormatError(f"sample {sample}: {path}: no FASTA records found")
        fasta = pyfaidx.Fasta(str(copy), as_raw=True, sequence_always_upper=True)
        try:
            yield fasta, names
        finally:
            fasta.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract_fasta_gff(
    sample: str,
    fasta_path: Path,
    ann_path: Path,
    code: int,
    asm: Assembler,
    tmpdir: str | os.PathLike | None,
) -> None:
    models = read_cds_models(ann_path)
    if not models:
        raise InputFormatError(
            f"sample {sample}: {ann_path}: no CDS rows; the annotation must have CDS features "
            "(GTF: CDS rows with transcript_id; GFF3: CDS rows with Parent)"
        )
    with _indexed_genome(fasta_path, sample, tmpdir) as (fasta, names):
        alias: dict[str, str] = {}
        for model in models:
            seqid = alias.get(model.seqid, model.seqid)
            if seqid not in fasta:
                other = model.seqid[3:] if model.seqid.startswith("chr") else "chr" + model.seqid
                if other in fasta:
                    log.warning(
                        "sample %s: annotation sequence id %r matched FASTA sequence %r",
                        sample,
                        model.seqid,
                        other,
                    )
                    alias[model.seqid] = seqid = other
                else:
                    shown = ", ".join(list(names)[:5]) + (", ..." if len(names) > 5 else "")
                    raise InputFormatError(
                        f"sample {sample}: {ann_path}:{model.line}: sequence id {model.seqid!r} "
                        f"is not in the genome FASTA {fasta_path} (its sequences: {shown}). "
                        "Use the annotation of the same assembly, or rename the sequences so "
                        "that column 1 matches the FASTA headers"
                    )
            length = len(fasta[seqid])
            if model.end > length:
                raise InputFormatError(
                    f"sample {sample}: {ann_path}:{model.line}: CDS of {model.transcript_id} "
                    f"ends at {model.end}, past the end of {seqid} ({length} bp) in "
                    f"{fasta_path}; annotation and genome are from different assemblies?"
                )
            cds = CandidateCds(
                record=model.seqid,
                feature=f"line{model.line}",
                id_candidates=[model.transcript_id, model.protein_id, model.gene_id],
                locus_tag=model.gene_id,
                gene=model.gene_name,
                product=model.product,
                protein_id=model.protein_id,
                start=model.start + 1,
                end=model.end,
                strand=model.strand,
                location=f"{model.seqid}:{model.location_string()}",
                genetic_code=code,
                partial5=model.partial5,
            )
            if model.pseudo:
                cds.issues.append("pseudo")
            if model.partial5 or model.partial3:
                cds.issues.append("partial")
            mixed = [p for p in model.problems if p.startswith("mixed_")]
            if mixed:
                log.warning(
                    "sample %s: %s:%d: CDS rows of %s are on different %s; skipped",
                    sample,
                    ann_path,
                    model.line,
                    model.transcript_id,
                    " and ".join(p.split("_")[1] + "s" for p in mixed),
                )
                cds.issues.append("inconsistent_segments")
                asm.add(cds)
                continue
            if "overlapping_rows" in model.problems:
                log.warning(
                    "sample %s: %s:%d: CDS rows of %s overlap by more than %d bases (a "
                    "duplicated or shifted row?); dropped as overlapping_segments",
                    sample,
                    ann_path,
                    model.line,
                    model.transcript_id,
                    MAX_FRAMESHIFT_OVERLAP,
                )
                cds.issues.append("overlapping_segments")
                asm.add(cds)
                continue
            pieces = [fasta[seqid][s:e] for s, e in model.segments]
            if model.strand == "-":
                pieces = [reverse_complement(p) for p in pieces]
            cds.seq = "".join(pieces)[model.phase :]
            asm.add(cds)


# --------------------------------------------------------------------------- cds_fasta

_BRACKET = re.compile(r"\[(\w+)=([^\]]*)\]")


def _extract_cds_fasta(sample: str, path: Path, sheet_code: int | None, asm: Assembler) -> None:
    n = 0
    for header, seq, hline in iter_fasta_checked(path, sample):
        n += 1
        words = header.split(maxsplit=1)
        ident = words[0] if words else f"cds{n}"
        desc = words[1] if len(words) > 1 else ""
        tags = {k.lower(): v for k, v in _BRACKET.findall(desc)}
        code = sheet_code
        cds = CandidateCds(
            record="",
            feature=f"line{hline}",
            id_candidates=[ident],
            locus_tag=tags.get("locus_tag", ""),
            gene=tags.get("gene", "") or (re.findall(r"gene_symbol:(\S+)", desc) or [""])[0],
            product=tags.get("protein", tags.get("product", "")),
            protein_id=tags.get("protein_id", ""),
            strand="+",
        )
        if code is None:
            try:
                code = int(tags["transl_table"]) if "transl_table" in tags else 1
                codon_table(code)
            except (KeyError, ValueError):
                log.warning(
                    "sample %s: %s:%d: unknown [transl_table=%s]",
                    sample,
                    path,
                    hline,
                    tags["transl_table"],
                )
                cds.issues.append("unknown_genetic_code")
                code = 1
        cds.genetic_code = code
        if tags.get("pseudo", "").lower() == "true":
            cds.issues.append("pseudo")
        if "partial" in tags:
            cds.issues.append("partial")
            cds.partial5 = "5" in tags["partial"]
        cds.seq = seq.upper().replace("U", "T")
        cds.start, cds.end = (1, len(seq)) if seq else (None, None)
        if desc:
            cds.extra_description.append(f"[source_header={clean_desc(desc)}]")
        asm.add(cds)
    if n == 0:
        raise InputFormatError(f"sample {sample}: {path}: no FASTA records ('>' headers) found")


# --------------------------------------------------------------------------- gene calling


def _extract_predicted(
    sample: str,
    fmt: str,
    src: Path,
    code: int | None,
    mode: str,
    asm: Assembler,
) -> None:
    """CDS called by pyrodigal on the genome sequence of `src` (any genome format)."""
    genes = call_genes(iter_contigs(fmt, src, sample), mode, code, sample)
    for gene in genes:
        cds = CandidateCds(
            record=gene.contig,
            feature=f"pyrodigal#{gene.index}",
            id_candidates=[gene.gene_id],
            start=gene.start,
            end=gene.end,
            strand=gene.strand,
            location=gene.location,
            seq=gene.sequence,
            genetic_code=DEFAULT_CODE if code is None else code,
            partial5=gene.partial5,
            evidence="predicted",
        )
        if gene.partial5 or gene.partial3:
            cds.issues.append("partial")
        cds.extra_description.append(
            f"[evidence=predicted pyrodigal {mode}, start {gene.start_type}, score {gene.score}]"
        )
        asm.add(cds)


# --------------------------------------------------------------------------- public API


#: CDS extractor by the file it reads (dnalm.kinds.formats.SampleFormat.cds), each called as
#: (sample, source, annotation, sheet genetic code, assembler, tmpdir, progress):
#: gbff - the CDS features of a GenBank file; gff - the CDS rows of a GFF3/GTF on a genome
#: FASTA (default code 1); records - every FASTA record is a CDS.
CDS_EXTRACTORS: dict[str, Callable[..., None]] = {
    "gbff": lambda sample, src, ann, code, asm, tmpdir, progress: extract_gbff(
        sample, src, code, asm, progress
    ),
    "gff": lambda sample, src, ann, code, asm, tmpdir, progress: _extract_fasta_gff(
        sample, src, ann, code or 1, asm, tmpdir
    ),
    "records": lambda sample, src, ann, code, asm, tmpdir, progress: _extract_cds_fasta(
        sample, src, code, asm
    ),
}


def extract_cds(
    sample: str,
    fmt: str,
    source: str | os.PathLike,
    annotation: str | os.PathLike | None = None,
    genetic_code: int | str | None = None,
    policy: DropPolicy | None = None,
    tmpdir: str | os.PathLike | None = None,
    progress: bool = False,
    annotate: str = "",
    annotate_mode: str = "single",
) -> CdsResult:
    """Extract and QC every CDS of one sample (see the module docstring for the rules).

    `fmt` is the sample sheet's format; `annotation` the GFF3/GTF for ``fasta_gff``;
    `genetic_code` the sheet's value (None/"" = not given). With `annotate` ("pyrodigal")
    the CDS are called on the genome sequence (:mod:`dnalm.genome.genecall`, mode
    `annotate_mode`) instead of read from the annotation, and marked ``evidence`` =
    predicted. Unextractable or odd CDS are recorded as dropped rows with warnings, never
    raised; malformed or empty files raise InputFormatError naming the file, line and
    sample."""
    policy = policy or DropPolicy()
    if fmt not in SAMPLE_FORMATS:
        raise SampleSheetError(f"sample {sample}: format {fmt!r} is not one of {list(FORMATS)}")
    desc = SAMPLE_FORMATS.get(fmt)
    if annotate and annotate not in CALLERS:
        raise SampleSheetError(
            f"sample {sample}: annotate {annotate!r} is not one of {list(CALLERS)}"
        )
    if not desc.has_cds and not annotate:
        raise SampleSheetError(
            no_cds_message(sample, "use the sample for genome corpora only", fmt)
        )
    if not desc.has_genome and annotate:
        raise SampleSheetError(
            f"sample {sample}: annotate {annotate} needs a genome sequence; format {fmt} has none"
        )
    code = check_code(genetic_code, sample)
    src = Path(source)
    check_nonempty(src, sample, "source")
    asm = Assembler(sample, policy, warn_duplicates=desc.cds_records)
    ann = Path(annotation) if annotation else None
    if desc.annotation and not annotate:
        if ann is None:
            raise SampleSheetError(
                f"sample {sample}: format {fmt} needs the annotation column (GFF3 or GTF)"
            )
        check_nonempty(ann, sample, "annotation")
    try:
        if annotate:
            _extract_predicted(sample, fmt, src, code, annotate_mode, asm)
        else:
            CDS_EXTRACTORS[desc.cds](sample, src, ann, code, asm, tmpdir, progress)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        files = f"{src}" + (f" or {ann}" if ann else "")
        raise InputFormatError(
            f"sample {sample}: {files} cannot be read ({type(err).__name__}: {err}); the file "
            "is truncated, corrupt or not text: download it again"
        ) from err
    if not asm.result.rows and annotate:
        raise InputFormatError(
            f"sample {sample}: {src}: {annotate} called no genes on this genome; is it a "
            "prokaryotic genome (gene calling with pyrodigal is for bacteria, archaea, "
            "plastids and phages)?"
        )
    if not asm.result.rows:
        raise InputFormatError(
            f"sample {sample}: {src}: no CDS annotated; use an annotated genome (GenBank with "
            "CDS features, or a GFF3/GTF with CDS rows)"
        )
    counts = asm.result.status_counts()
    dropped = ", ".join(f"{k} {v}" for k, v in counts.most_common() if k != "kept")
    log.info(
        "sample %s: %d CDS, %d kept%s",
        sample,
        len(asm.result.rows),
        counts.get("kept", 0),
        f"; dropped: {dropped}" if dropped else "",
    )
    for line in drop_warnings(counts, len(asm.result.rows)):
        log.warning("sample %s: %s", sample, line)
    return asm.result


def write_cds_outputs(
    result: CdsResult, fasta_path: str | os.PathLike, tsv_path: str | os.PathLike
) -> None:
    """Write the kept CDS (FASTA, gzip when the name ends in .gz) and the QC table (TSV),
    each atomically."""
    with atomic_write(fasta_path) as fh:
        write_fasta(
            fh, ((f"{r.cds_id} {r.description}".strip(), r.sequence) for r in result.records)
        )
    with atomic_write(tsv_path) as fh:
        result.write_tsv(fh)


def run_cds(
    sample: str,
    fmt: str,
    source: str | os.PathLike,
    fasta_out: str | os.PathLike,
    tsv_out: str | os.PathLike,
    annotation: str | os.PathLike | None = None,
    genetic_code: int | str | None = None,
    policy: DropPolicy | None = None,
    tmpdir: str | os.PathLike | None = None,
    allow_empty: bool = False,
    progress: bool = False,
    max_drop_fraction: float | None = None,
    annotate: str = "",
    annotate_mode: str = "single",
) -> CdsResult:
    """The workflow rule: extract, refuse a sample with no kept CDS (or, with
    `max_drop_fraction`, with more than that share of its CDS dropped), write both outputs.
    The genome copy of fasta_gff goes to `tmpdir`, by default the output FASTA's folder
    (a hidden ``.dnalm-genome-{sample}+*`` folder, removed afterwards). Temporary files that
    a killed earlier run of this sample left there are removed first."""
    if tmpdir is None:
        tmpdir = Path(fasta_out).parent
        tmpdir.mkdir(parents=True, exist_ok=True)
    remove_stale_genome_copies(sample, tmpdir)
    for out in (fasta_out, tsv_out):
        remove_stale_parts(out)
    result = extract_cds(
        sample,
        fmt,
        source,
        annotation,
        genetic_code,
        policy,
        tmpdir,
        progress,
        annotate=annotate,
        annotate_mode=annotate_mode,
    )
    if result.n_kept == 0 and not allow_empty:
        counts = ", ".join(f"{k}: {v}" for k, v in result.status_counts().most_common())
        raise InputFormatError(
            f"sample {sample}: none of the {len(result.rows)} CDS in {source} passed QC "
            f"({counts}); check the sample's genetic_code and the cds drop policy in the config"
        )
    total, dropped = len(result.rows), len(result.rows) - result.n_kept
    if max_drop_fraction is not None and total and dropped / total > max_drop_fraction:
        counts = result.status_counts()
        reasons = ", ".join(f"{k} {v}" for k, v in counts.most_common() if k != "kept")
        top = next((k for k, _ in counts.most_common() if k != "kept"), None)
        fix = DROP_HINTS.get(top, DEFAULT_HINT)
        raise InputFormatError(
            f"sample {sample}: {dropped} of {total} CDS ({100 * dropped / total:.0f}%) in "
            f"{source} were dropped ({reasons}), more than cds.max_drop_fraction "
            f"{max_drop_fraction}; likely fix: {fix}; or raise cds.max_drop_fraction"
        )
    write_cds_outputs(result, fasta_out, tsv_out)
    return result


# --------------------------------------------------------------------------- CLI


def register(subparsers) -> None:
    """Add the ``cds`` and ``cds-qc`` subcommands to the dnalm CLI."""
    p = subparsers.add_parser("cds", help="extract and QC the CDS of one sample")
    p.add_argument("--sample", required=True)
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    p.add_argument("--source", required=True, help="GBFF, genome FASTA or CDS FASTA")
    p.add_argument("--annotation", help="GFF3/GTF (format fasta_gff)")
    p.add_argument("--genetic-code", type=int, help="override every CDS's genetic code")
    p.add_argument(
        "--drop",
        nargs="*",
        default=sorted(DEFAULT_DROP),
        choices=OPTIONAL_REASONS,
        help=f"QC issues that drop a CDS (default: {' '.join(sorted(DEFAULT_DROP))})",
    )
    p.add_argument("--min-length", type=int, default=0, help="too_short below this many nt")
    p.add_argument(
        "--annotate", default="", choices=["", "pyrodigal"], help="call genes (e.g. pyrodigal)"
    )
    p.add_argument("--annotate-mode", default="single", choices=["single", "meta"])
    p.add_argument("--fasta-out", required=True)
    p.add_argument("--tsv-out", required=True)
    p.add_argument("--allow-empty", action="store_true", help="write outputs with 0 kept CDS")
    p.add_argument(
        "--max-drop-fraction",
        type=float,
        default=None,
        help="fail when more than this share of the CDS is dropped (default: no limit)",
    )
    p.set_defaults(func=_cli_cds)
    q = subparsers.add_parser("cds-qc", help="summarise CDS QC tables across samples")
    q.add_argument("tsv", nargs="+", help="per-sample CDS tables")
    q.add_argument("--summary", required=True, help="output TSV")
    q.set_defaults(func=_cli_qc)


def _cli_cds(args: argparse.Namespace) -> int:
    refuse_overwrite(
        {"--source": args.source, "--annotation": args.annotation},
        {"--fasta-out": args.fasta_out, "--tsv-out": args.tsv_out},
    )
    policy = DropPolicy(drop=frozenset(args.drop), min_length=args.min_length)
    run_cds(
        args.sample,
        args.fmt,
        args.source,
        args.fasta_out,
        args.tsv_out,
        annotation=args.annotation,
        genetic_code=args.genetic_code,
        policy=policy,
        allow_empty=args.allow_empty,
        max_drop_fraction=args.max_drop_fraction,
        annotate=args.annotate,
        annotate_mode=args.annotate_mode,
    )
    return 0


def _cli_qc(args: argparse.Namespace) -> int:
    refuse_overwrite({"TSV": args.tsv}, {"--summary": args.summary})
    write_qc_summary(args.tsv, args.summary)
    return 0
