"""Sample formats: what each value of the sample sheet's ``format`` column is, declared once.

A :class:`SampleFormat` names the readers that make a sample of that format: how its genome
sequence is read from the ``source`` file (``genome``), how its CDS are extracted
(``cds``), where its feature table comes from (``features``), whether it needs the
``annotation`` column, and which file of an NCBI assembly an accession gives it. The sheet
checks (:mod:`dnalm.genome.samples`), the CDS extraction (:mod:`dnalm.genome.cds`), the
contig reader (:mod:`dnalm.genome.contigs`), the feature tables (:mod:`dnalm.genome.features`)
and the workflow's input functions read these fields instead of comparing format names.

The readers are keyed by the kind of *file* they read (``gbff``, ``fasta``, ``gff``,
``records``), not by format: ``dnalm.genome.cds.CDS_EXTRACTORS``,
``dnalm.genome.contigs.GENOME_READERS`` and ``dnalm.genome.features.FEATURE_READERS``. A new
format made of files the workflow already reads is one descriptor here; one with a new kind
of file also needs that file's reader. The sample-sheet schema's enum is checked against
this registry by tests/test_kinds.py.

Torch-free: common.smk reads it at DAG build.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnalm.kinds import Kind, Registry


@dataclass(frozen=True)
class SampleFormat(Kind):
    """One sample-sheet format (see the module docstring)."""

    #: reader of the genome sequence in `source` (a key of contigs.GENOME_READERS); None: the
    #: format has no genome sequence (no contigs, genome corpora or gene calling)
    genome: str | None
    #: extractor of its CDS without gene calling (a key of cds.CDS_EXTRACTORS); None: the
    #: format has no CDS of its own (gene calling, `annotate`, gives them)
    cds: str | None
    #: reader of its feature table with genes (a key of features.FEATURE_READERS); None: no
    #: annotated features (gene calling gives them)
    features: str | None
    #: the GFF3/GTF in the `annotation` column is required (and only allowed here)
    annotation: bool = False
    #: the file of an NCBI assembly an accession gives (a key of dnalm.genome.ncbi.NCBI_FILES);
    #: None: an accession cannot be this format
    ncbi_file: str | None = None
    #: the source's records are CDS themselves (duplicate records are warned about)
    cds_records: bool = False
    #: how the sheet describes what the format is, in errors
    label: str = ""

    @property
    def has_genome(self) -> bool:
        return self.genome is not None

    @property
    def has_cds(self) -> bool:
        """CDS without gene calling."""
        return self.cds is not None

    @property
    def has_features(self) -> bool:
        """An annotated feature table without gene calling."""
        return self.features is not None


SAMPLE_FORMATS: Registry[SampleFormat] = Registry("sample format")

SAMPLE_FORMATS.register(
    SampleFormat(
        name="gbff",
        summary="annotated GenBank flat file (sequence and CDS features)",
        genome="gbff",
        cds="gbff",
        features="gbff",
        ncbi_file="gbff",
        label="a GBFF",
    )
)
SAMPLE_FORMATS.register(
    SampleFormat(
        name="fasta_gff",
        summary="genome FASTA plus a GFF3/GTF in the annotation column",
        genome="fasta",
        cds="gff",
        features="gff",
        annotation=True,
    )
)
SAMPLE_FORMATS.register(
    SampleFormat(
        name="cds_fasta",
        summary="coding sequences, one per FASTA record (no genome)",
        genome=None,
        cds="records",
        features=None,
        cds_records=True,
    )
)
SAMPLE_FORMATS.register(
    SampleFormat(
        name="fasta",
        summary="genome FASTA without annotation (CDS only from gene calling)",
        genome="fasta",
        cds=None,
        features=None,
        ncbi_file="fna",
        label="a genome FASTA",
    )
)

#: the format names, in declaration order
FORMATS: tuple[str, ...] = SAMPLE_FORMATS.names()
#: formats that carry a genome sequence
GENOME_FORMATS: tuple[str, ...] = tuple(f.name for f in SAMPLE_FORMATS if f.has_genome)


def formats_where(test) -> list[str]:
    """The names of the formats whose descriptor passes `test`, for error messages."""
    return [f.name for f in SAMPLE_FORMATS if test(f)]
