"""Rule download_task_file: fetch a task or BED file the config gives as a URL to
resources/task_files/{id}/{name}, atomically, retried and checked against its checksum."""

from dnalm.core.smk import run_script
from dnalm.genome.taskfiles import fetch


def main(smk):
    fetch(smk.params.spec, smk.output[0], smk.params.cfg)


run_script(snakemake, main)
