"""NCBI assembly accessions: resolving ``GCF_``/``GCA_`` accessions (with or without a version)
through the ``genomes/all`` tree over HTTPS to the assembly folder, its
``_genomic.gbff.gz`` and its ``md5checksums.txt``."""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser

from dnalm.core.errors import DownloadError
from dnalm.genome.http import fetch_bytes, who_label

NCBI_BASE = "https://ftp.ncbi.nlm.nih.gov/genomes/all/"


# Suffixes of the files NCBI publishes in each assembly folder (after the folder name).
NCBI_FILES: dict[str, str] = {
    "gbff": "_genomic.gbff.gz",
    "fna": "_genomic.fna.gz",
    "gff": "_genomic.gff.gz",
    "gtf": "_genomic.gtf.gz",
    "cds_fasta": "_cds_from_genomic.fna.gz",
}


HEX_DIGESTS = {"md5": re.compile(r"^[0-9a-f]{32}$"), "sha256": re.compile(r"^[0-9a-f]{64}$")}

log = logging.getLogger(__name__)


_ACCESSION_PARTS = re.compile(r"^(GC[AF])_(\d{9})(?:\.(\d+))?$")


@dataclass(frozen=True)
class NcbiAssembly:
    """One resolved NCBI assembly version.

    accession: with version (``GCF_000005845.2``); name: the folder name
    (``GCF_000005845.2_ASM584v2``); folder_url ends in ``/``; gbff_url and md5: the
    ``_genomic.gbff.gz`` file and its published md5 (None when NCBI lists no GBFF);
    checksums: every file name in ``md5checksums.txt`` -> md5."""

    accession: str
    name: str
    folder_url: str
    gbff_url: str
    md5: str | None
    checksums: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def file_url(self, suffix: str) -> str:
        return self.folder_url + urllib.parse.quote(self.name + suffix)


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "a":
            for key, value in attrs:
                if key.lower() == "href" and value:
                    self.hrefs.append(value)


def _listing_names(html: str) -> list[str]:
    """Last path component of every link in an HTML directory index."""
    parser = _LinkParser()
    parser.feed(html)
    names = []
    for href in parser.hrefs:
        path = urllib.parse.urlsplit(href).path.rstrip("/")
        if path:
            names.append(urllib.parse.unquote(path.rsplit("/", 1)[-1]))
    return names


def parse_md5checksums(text: str) -> dict[str, str]:
    """``<md5>  ./<file name>`` lines -> {file name: md5}."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and HEX_DIGESTS["md5"].match(parts[0].lower()):
            name = parts[1].strip()
            name = name[2:] if name.startswith("./") else name
            out[name] = parts[0].lower()
    return out


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def resolve_ncbi_assembly(
    accession: str,
    ncbi_base_url: str = NCBI_BASE,
    *,
    sample: str = "",
    timeout: float = 60.0,
    retries: int = 4,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
) -> NcbiAssembly:
    """Find the folder of `accession` on NCBI's genomes server and read its md5 list.

    A versionless accession resolves to the highest version listed. Raises DownloadError
    when the accession or version is not there (listing the versions that are)."""
    m = _ACCESSION_PARTS.match(accession.strip())
    who = who_label(sample) if sample else f"accession {accession}"
    if not m:
        raise DownloadError(
            f"{who}: {accession!r} is not an NCBI assembly accession (GCF_ or GCA_ followed "
            "by 9 digits and an optional .version, e.g. GCF_000005845.2)"
        )
    prefix, digits, version = m.groups()
    listing_url = f"{_base(ncbi_base_url)}{prefix}/{digits[0:3]}/{digits[3:6]}/{digits[6:9]}/"
    fetch = {
        "who": who,
        "timeout": timeout,
        "retries": retries,
        "backoff": backoff,
        "max_backoff": max_backoff,
    }
    try:
        html = fetch_bytes(listing_url, **fetch).decode("utf-8", "replace")
    except DownloadError as err:
        raise DownloadError(
            f"{err} (looking up assembly {accession}: check that the accession exists; "
            "GCF_ is RefSeq and GCA_ GenBank)"
        ) from None
    folder_re = re.compile(rf"^{prefix}_{digits}\.(\d+)_(.+)$")
    versions: dict[int, str] = {}
    for name in _listing_names(html):
        fm = folder_re.match(name)
        if fm:
            versions[int(fm.group(1))] = name
    if not versions:
        raise DownloadError(
            f"{who}: no assembly folder for {prefix}_{digits} in {listing_url}; check the "
            "accession (GCF_ is RefSeq, GCA_ GenBank)"
        )
    if version is None:
        chosen = max(versions)
        log.info("%s: %s resolves to version %d (%s)", who, accession, chosen, versions[chosen])
    else:
        chosen = int(version)
        if chosen not in versions:
            have = ", ".join(f"{prefix}_{digits}.{v}" for v in sorted(versions))
            raise DownloadError(
                f"{who}: assembly {accession} not found in {listing_url}; available: {have}"
            )
    name = versions[chosen]
    folder_url = listing_url + urllib.parse.quote(name) + "/"
    checksums = parse_md5checksums(
        fetch_bytes(folder_url + "md5checksums.txt", **fetch).decode("utf-8", "replace")
    )
    if not checksums:
        raise DownloadError(f"{who}: {folder_url}md5checksums.txt lists no files")
    gbff = name + NCBI_FILES["gbff"]
    return NcbiAssembly(
        accession=f"{prefix}_{digits}.{chosen}",
        name=name,
        folder_url=folder_url,
        gbff_url=folder_url + urllib.parse.quote(gbff),
        md5=checksums.get(gbff),
        checksums=checksums,
    )
