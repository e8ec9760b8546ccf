"""Rule verify_sources: check a sample's genome (and annotation) files and record where
they came from in resources/genomes/{sample}/provenance.json."""

import json
import os
from datetime import UTC, datetime

from dnalm import __version__
from dnalm.core.io import atomic_write, is_gzip
from dnalm.core.smk import run_script
from dnalm.genome.download import verify_file


def main(smk):
    s = smk.params.sample
    record = {"sample": s.sample, "species": s.species, "format": s.format, "files": {}}
    inputs = {"primary": (smk.input.primary, s.source, s.md5, s.sha256)}
    if s.annotation:
        inputs["annotation"] = (smk.input.annotation, s.annotation, s.annotation_md5, "")
    for which, (path, source, md5, sha256) in inputs.items():
        digests = verify_file(
            path, sample=s.sample, md5=md5 or None, sha256=sha256 or None, kind=which
        )
        record["files"][which] = {
            "source": source,
            "path": str(path),
            "size": digests.size,
            "mtime_ns": os.stat(path).st_mtime_ns,
            "md5": digests.md5,
            "sha256": digests.sha256,
            "checked": [n for n, v in (("md5", md5), ("sha256", sha256)) if v]
            + (["gzip integrity"] if is_gzip(path) else []),
        }
    record["verified_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    record["dnalm_version"] = __version__
    with atomic_write(smk.output[0]) as fh:
        json.dump(record, fh, indent=2)


run_script(snakemake, main)
