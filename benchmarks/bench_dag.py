"""DAG-build time: a dry run of the real workflow against a minimal Snakefile of the same
per-sample shape, on a sample sheet of N local samples.

Usage:  python benchmarks/bench_dag.py [--samples N] [--snakemake PATH] [--profile FILE]
(default N: 10,000; default snakemake: the one next to this Python).

Both dry runs read the same sheet of N samples (format cds_fasta, each pointing at one
small local CDS FASTA written to a temporary folder, so no network is needed). The real
workflow runs with the default config (config/config.yaml) and that sheet; the minimal
Snakefile (embedded below) has the same per-sample chain (verify -> extract -> split),
then a gather job, a corpus per tokenizer, four models and a report. Snakemake's own cost
grows with the number of jobs; the ratio of the two CPU times shows what the workflow's
input functions, params and checks add on top. A ratio that grows with N means something
in them is superlinear (a loop over all samples inside a per-sample function). Target:
ratio <= 1.5 at 10,000 samples.

A third dry run gives the minimal Snakefile's per-sample rules the directives the workflow's
have (log, benchmark, group, conda, and a command that runs Python; until the per-sample
rules ran the library as a command, a `script:`): Snakemake handles each per job, so this is
the fair floor. At 10,000 samples on 2 cores: before the sample constraint was the ID pattern,
234.5 s against 44.6 s (5.3x, measured on a loaded machine); after, on an idle one, 97.1 s
against 47.9 s (2.0x) and 65.4 s with the same directives (1.5x), of which ~7.6 s was
dnalm.plan.load (mostly the per-row JSON-schema check of the sample sheet). Since the sheet
is checked once per distinct cell value and the jobs over many samples read the splits
through gather_splits' table (one input instead of 3 x N), on an idle machine: 70.0 s
against 37.0 s (1.9x) and 60.1 s with the same directives (1.17x).

Of those directives, `script:` is the costly one: Snakemake looks up each script job's
source (a URI parse per lookup, several per job). One directive at a time on the minimal
Snakefile at 2,000 samples (loaded machine): none 9.5 s, log 10.0 s, benchmark 9.9 s, group
9.0 s, conda 8.8 s, script 13.8 s, so about 0.7 ms per script job on top of the ~1.5 ms
any job costs. Three script jobs per sample therefore cannot come within 1.5x of three shell
jobs; the workflow now runs two per sample under splits.method identity (the default):
extract_cds also splits the sample it extracts (split_cds is its own job only under
mmseqs), verify_sources has one input function, and walk_figures, cds_qc_figure and
split_leakage wait for one table (gather_splits', the QC summary) instead of N per-sample
files. At 10,000 samples, one run each on a loaded machine (2 cores shared with other work,
so CPU seconds run higher than on an idle one, and ratios move by about 0.1 from run to
run): before, 84.6 s against 45.6 s (1.86x) and 69.6 s with the same directives (1.21x);
with the merged split, verify_sources and walk_figures, 62.1 s against 39.8 s (1.56x) and
64.8 s (0.96x); with cds_qc_figure and split_leakage too, 64.2 s against 43.9 s (1.46x)
and 68.6 s with the same directives (0.94x). At 2,000 samples (loaded): 1.94x before,
1.63x with the merged extraction and split alone.

The two per-sample rules now run the library as a command (`shell:` running `python -m
dnalm.genome.jobs`, no `script:`), so no job of the default config is a script job that
grows with the sheet; the third dry run's directives have a shell command in place of the
script since. At 10,000 samples, one run each: 48.9 s against 36.0 s (1.36x, within the
issue's target of 1.5x) and 43.1 s with the same directives (1.13x), load average 2.3 at
the start and 1.8 at the end (2 cores); the workflow before the change, run right after as
the load rose from 1.7 to 5.9: 68.5 s against 42.3 s (1.62x) and 75.0 s with the script
directive (0.91x). At 2,000 samples, the two back to back at a load of about 5: the
workflow's dry run 16.2 s before, 13.7 s after, but the identical minimal Snakefile took
12.0 s and 9.0 s in the two runs, so ratios at that size and load (1.35x and 1.53x) are
mostly noise.

--profile FILE runs the real dry run under cProfile and writes the stats to FILE (read
them with `python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MINIMAL_SNAKEFILE = """
import csv

with open(config["samples"]) as fh:
    SAMPLES = {
        row["sample"]: row
        for row in csv.DictReader((l for l in fh if not l.startswith("#")), delimiter="\\t")
    }
TOKENIZERS = ["nucleotide", "codon", "kmer6", "bpe"]
MODELS = {"gpt_nucleotide": "nucleotide", "gpt_codon": "codon", "mlm_kmer6": "kmer6",
          "mlm_bpe": "bpe"}

wildcard_constraints:
    sample="[^/]+",
    tok="|".join(TOKENIZERS),
    model="|".join(MODELS),


rule all:
    input:
        "results/report.txt",


rule verify:
    input:
        lambda wc: SAMPLES[wc.sample]["source"],
    output:
        "resources/genomes/{sample}/provenance.json",
    params:
        sample=lambda wc: SAMPLES[wc.sample],
    DIRECTIVES(verify)


rule extract:
    input:
        primary=lambda wc: SAMPLES[wc.sample]["source"],
        provenance="resources/genomes/{sample}/provenance.json",
    output:
        fasta="results/cds/{sample}.fa.gz",
        tsv="results/cds/{sample}.tsv",
    params:
        sample=lambda wc: SAMPLES[wc.sample],
    DIRECTIVES(extract)


rule split:
    input:
        "results/cds/{sample}.fa.gz",
    output:
        train="results/splits/{sample}/train.fa.gz",
        validation="results/splits/{sample}/validation.fa.gz",
        test="results/splits/{sample}/test.fa.gz",
        assignment="results/splits/{sample}/assignment.tsv",
    DIRECTIVES(split)


rule gather:
    input:
        expand("results/splits/{sample}/assignment.tsv", sample=sorted(SAMPLES)),
    output:
        "results/splits/assignment.tsv",
    shell:
        "touch {output}"


rule corpus:
    input:
        splits=expand(
            "results/splits/{sample}/{split}.fa.gz",
            sample=sorted(SAMPLES),
            split=["train", "validation", "test"],
        ),
        assignment="results/splits/assignment.tsv",
    output:
        directory("results/corpus/cds/{tok}"),
    shell:
        "mkdir -p {output}"


rule pretrain:
    input:
        lambda wc: f"results/corpus/cds/{MODELS[wc.model]}",
    output:
        "results/models/{model}/metrics.json",
    shell:
        "touch {output}"


rule report:
    input:
        expand("results/models/{model}/metrics.json", model=sorted(MODELS)),
    output:
        "results/report.txt",
    shell:
        "touch {output}"
"""


SHELL = '''shell:
        "touch {output}"'''

# what the workflow's per-sample rules also carry: a log, a benchmark file, a job group, a
# conda environment and a command that runs Python, each of which Snakemake handles per job
WORKFLOW_DIRECTIVES = '''log:
        "results/logs/NAME/{sample}.log",
    benchmark:
        "results/benchmarks/NAME/{sample}.tsv"
    group:
        "sample_data"
    conda:
        "ENV"
    shell:
        "python SCRIPT --sample {wildcards.sample:q} --log {log:q}"'''


def minimal_snakefile(directives: bool, script: Path) -> str:
    """The minimal Snakefile; `directives`: its per-sample rules as the workflow's are."""
    text = MINIMAL_SNAKEFILE
    for name in ("verify", "extract", "split"):
        body = WORKFLOW_DIRECTIVES if directives else SHELL
        body = body.replace("NAME", name).replace("SCRIPT", str(script))
        body = body.replace("ENV", str(REPO / "envs" / "data.yaml"))
        text = text.replace(f"DIRECTIVES({name})", body)
    return text


def write_sheet(folder: Path, n: int) -> Path:
    """A sample sheet of `n` cds_fasta samples, all reading one small local CDS FASTA."""
    fasta = folder / "cds.fa.gz"
    with gzip.open(fasta, "wt") as fh:
        fh.write(">cds1\nATGAAACCCGGGTTTTAA\n>cds2\nATGGCTGCTGCTTAA\n")
    sheet = folder / "samples.tsv"
    with open(sheet, "w") as fh:
        fh.write("sample\tspecies\tsource\tformat\tpretrain\tspecies_task\n")
        for i in range(n):
            fh.write(f"s{i:06d}\tSpecies {i}\t{fasta}\tcds_fasta\ttrue\ttrue\n")
    return sheet


def cpu_seconds(cmd: list[str], cwd: Path) -> float:
    """User + system CPU seconds of `cmd` (a child process); stops on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--snakemake", default=str(Path(sys.executable).with_name("snakemake")))
    parser.add_argument("--profile", type=Path, help="cProfile stats of the real dry run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_dag_") as tmp:
        tmp = Path(tmp)
        sheet = write_sheet(tmp, args.samples)
        common = ["-n", "--quiet", "--cores", "1", "--config", f"samples={sheet}"]
        real_cmd = [
            args.snakemake,
            "--snakefile",
            str(REPO / "workflow" / "Snakefile"),
            "--configfile",
            str(REPO / "config" / "config.yaml"),
            "--directory",
            str(tmp / "real"),
            *common,
        ]
        if args.profile:
            real_cmd = [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(args.profile.resolve()),
                *real_cmd,
            ]
        (tmp / "real").mkdir()
        real = cpu_seconds(real_cmd, REPO)
        script = tmp / "job.py"
        script.write_text("pass\n")
        minimal = {}
        for directives in (False, True):
            folder = tmp / f"minimal_{directives}"
            folder.mkdir()
            (folder / "Snakefile").write_text(minimal_snakefile(directives, script))
            minimal[directives] = cpu_seconds(
                [args.snakemake, "--snakefile", str(folder / "Snakefile"), *common], folder
            )
    print(f"samples: {args.samples}")
    print(f"dnalm workflow dry run:                      {real:8.1f} s CPU")
    print(f"minimal Snakefile dry run (shell rules):     {minimal[False]:8.1f} s CPU")
    print(f"minimal Snakefile, the workflow's directives: {minimal[True]:7.1f} s CPU")
    print(f"ratio to the minimal Snakefile:              {real / minimal[False]:8.2f}x")
    print(f"ratio to it with the workflow's directives:  {real / minimal[True]:8.2f}x")


if __name__ == "__main__":
    main()
