"""Rule fetch_external_model: resolve one models.external entry to a local snapshot (a hub
id is downloaded once into the Hugging Face cache, unless HF_HUB_OFFLINE is set) and record
the sha256 of its files in resources/external/{ename}/provenance.json (dnalm.core.hub)."""

import logging

from dnalm.core.hub import (
    check_folder_files,
    external_model,
    provenance,
    snapshot_folder,
    write_provenance,
)
from dnalm.core.smk import run_script

log = logging.getLogger("dnalm.fetch_external_model")


def main(smk):
    spec = dict(smk.params.entry)
    model = external_model(spec["name"], spec)
    folder = snapshot_folder(model, download=True)
    check_folder_files(model, folder)  # pickle-only, auto_map without the opt-in: refused
    record = provenance(model, folder)
    write_provenance(smk.output.record, record)
    files = record["files"]
    log.info(
        "%s: %s (%d code, %d weight, %d other files) -> %s",
        model.key,
        folder,
        len(files["code"]),
        len(files["weights"]),
        len(files["other"]),
        smk.output.record,
    )


run_script(snakemake, main)
