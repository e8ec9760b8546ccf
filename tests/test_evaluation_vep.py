"""Zero-shot variant-effect scores (dnalm vep): antisymmetry, VCF errors, simulated classes."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from Bio.Seq import Seq

from dnalm.cli import main as cli_main
from dnalm.core.errors import InputFormatError
from dnalm.evaluation import variants as var
from dnalm.evaluation import vep
from dnalm.evaluation.inference import LoadedModel
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import make_corpus
from tests.support.vep_inputs import CONTIG, HEAD, TRAIN


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("vep")
    corpus = make_corpus(root / "corpus", n_seqs=(20, 5, 5))
    for objective in ("gpt", "mlm"):
        pretrain(corpus, root / objective, objective, "tiny", {"context": 40}, TRAIN)
    return {o: root / o for o in ("gpt", "mlm")}


def write(path, text):
    path.write_text(text)
    return path


def rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
@pytest.mark.parametrize("rc_average", [False, True])
def test_ref_equal_alt_is_zero_and_swapping_flips_the_sign(models, objective, rc_average, tmp_path):
    pos = 30  # 1-based; CONTIG[29] = "A"
    ref, alt = CONTIG[pos - 1], "G"
    mutant = CONTIG[: pos - 1] + alt + CONTIG[pos:]
    fa_ref = write(tmp_path / "ref.fa", f">c1\n{CONTIG}\n")
    fa_alt = write(tmp_path / "alt.fa", f">c1\n{mutant}\n")
    vcf1 = write(tmp_path / "a.vcf", HEAD + f"c1\t{pos}\tv\t{ref}\t{alt},{ref}\t.\t.\t.\n")
    vcf2 = write(tmp_path / "b.vcf", HEAD + f"c1\t{pos}\tv\t{alt}\t{ref}\t.\t.\t.\n")
    kw = {"window": 20, "rc_average": rc_average}
    assert vep.run_vep(models[objective], vcf1, fa_ref, tmp_path / "a.tsv", **kw) == 2
    vep.run_vep(models[objective], vcf2, fa_alt, tmp_path / "b.tsv", **kw)
    forward, same = (float(r["score"]) for r in rows(tmp_path / "a.tsv"))
    (backward,) = (float(r["score"]) for r in rows(tmp_path / "b.tsv"))
    assert same == 0.0
    assert forward != 0.0
    assert math.isclose(forward, -backward, rel_tol=1e-5, abs_tol=1e-6)


def test_masked_score_is_the_masked_marginal_at_the_site(models, tmp_path):
    lm = LoadedModel.from_folder(models["mlm"])
    ref_win, alt_win = "ACGTACGTAC", "ACGTTCGTAC"
    got = vep.pair_score(lm, ref_win, alt_win, eos=False, where="t")
    ids = lm.encode(ref_win, eos=False)
    site = 1 + 4  # after [BOS]
    x = list(ids)
    x[site] = lm.mask_id
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([x])).logits[0, site], -1)
    t_id, a_id = lm.encode("T", eos=False)[-1], lm.encode("A", eos=False)[-1]
    assert math.isclose(got, float(logp[t_id] - logp[a_id]), abs_tol=1e-5)


def test_causal_score_is_the_window_log_likelihood_ratio(models):
    lm = LoadedModel.from_folder(models["gpt"])
    ref_win, alt_win = "ACGTACGTAC", "ACGTTCGTAC"

    def ll(seq):
        ids = lm.encode(seq, eos=False)
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0], -1)
        return sum(float(logp[i - 1, ids[i]]) for i in range(1, len(ids)))

    got = vep.pair_score(lm, ref_win, alt_win, eos=False, where="t")
    assert math.isclose(got, ll(alt_win) - ll(ref_win), abs_tol=1e-4)


def test_window_bounds_centre_frame_and_edges():
    assert vep.window_bounds(100, 50, 20) == (40, 60)
    # codon frame from the contig start, whole tokens, site inside
    start, end = vep.window_bounds(100, 50, 20, unit=3)
    assert start % 3 == 0
    assert (end - start) % 3 == 0
    assert start <= 50 < end
    with pytest.raises(InputFormatError, match=r"x.vcf:7: the 20-nt window .* runs off"):
        vep.window_bounds(100, 3, 20, where="x.vcf:7")
    assert vep.window_bounds(100, 3, 20, edge="clip") == (0, 13)
    assert vep.window_bounds(100, 98, 20, edge="clip") == (88, 100)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("c1\t5\tv\tA", r":4: 4 tab-separated columns"),
        ("c1\tfive\tv\tA\tC\t.\t.\t.", r":4: POS 'five' is not a positive integer"),
        ("c1\t0\tv\tA\tC\t.\t.\t.", r":4: POS '0'"),
        ("c2\t5\tv\tT\tC\t.\t.\t.", r":4: contig 'c2' is not in"),
        ("c1\t5\tv\tA\tC\t.\t.\t.", r":4: REF A does not match the genome: c1:5 is T"),
        ("c1\t500\tv\tA\tC\t.\t.\t.", r":4: POS 500 is past the end"),
        ("c1\t3\tv\tG\tC\t.\t.\t.", r":4: the 20-nt window around the variant runs off"),
    ],
)
def test_bad_vcf_lines_are_named(models, tmp_path, line, message):
    fa = write(tmp_path / "g.fa", f">c1 description\n{CONTIG}\n")
    vcf = write(tmp_path / "in.vcf", HEAD + "c1\t20\tok\tA\tT\t.\t.\t.\n" + line + "\n")
    with pytest.raises(InputFormatError, match=message):
        vep.run_vep(models["gpt"], vcf, fa, tmp_path / "o.tsv", window=20)


def test_indels_are_skipped_and_counted_multiallelic_split(models, tmp_path):
    fa = write(tmp_path / "g.fa", f">c1\n{CONTIG}\n")
    body = (
        "c1\t20\ti1\tC\tCA\t.\t.\t.\n"  # insertion
        "c1\t21\ti2\tAT\tA\t.\t.\t.\n"  # deletion
        "c1\t22\tm\tT\tA,<DEL>,G\t.\t.\tDP=3\n"  # two SNV alleles and a symbolic one
        "c1\t23\tn\tA\tN\t.\t.\t.\n"
    )
    vcf = write(tmp_path / "in.vcf.gz", "")
    import gzip

    with gzip.open(vcf, "wt") as fh:
        fh.write(HEAD + body)
    parsed = var.read_vcf(vcf)
    assert parsed.skipped == {"indel": 2, "symbolic": 1, "ambiguous": 1}
    assert [(v.id, v.alt, v.allele) for v in parsed.variants] == [("m", "A", 0), ("m", "G", 2)]
    n = vep.run_vep(models["gpt"], vcf, fa, tmp_path / "o.tsv", tmp_path / "o.vcf", window=20)
    assert n == 2
    out = [ln for ln in (tmp_path / "o.vcf").read_text().splitlines() if not ln.startswith("#")]
    assert out[0].endswith("\t.")  # the indel line is unchanged
    info = out[2].split("\t")[7]
    assert info.startswith("DP=3;DNALM_LLR=")
    values = info.split("DNALM_LLR=")[1].split(",")
    assert len(values) == 3
    assert values[1] == "."
    scores = [float(r["score"]) for r in rows(tmp_path / "o.tsv")]
    assert [float(values[0]), float(values[2])] == pytest.approx(scores, abs=1e-5)
    assert "##INFO=<ID=DNALM_LLR,Number=A" in (tmp_path / "o.vcf").read_text()


def test_simulated_classes_are_what_they_claim(tmp_path):
    rng = np.random.default_rng(3)
    cds = []
    for i in range(6):
        body = "".join(rng.choice(list("ACGT"), 3 * 60))
        body = "".join(c for j in range(0, len(body), 3) if (c := body[j : j + 3]) not in
                       {"TAA", "TAG", "TGA"})  # fmt: skip
        cds.append((f"cds{i}", "ATG" + body + "TAA", 11))
    snvs = var.simulate_coding_snvs(cds, n=25, seed=7)
    assert snvs == var.simulate_coding_snvs(cds, n=25, seed=7)
    assert {c: sum(s.klass == c for s in snvs) for c in var.CLASSES} == dict.fromkeys(
        var.CLASSES, 25
    )
    seqs = {name: seq for name, seq, _ in cds}
    for s in snvs:
        seq = seqs[s.contig]
        assert seq[s.pos - 1] == s.ref != s.alt
        c0 = (s.pos - 1) // 3 * 3
        assert 3 <= c0 < len(seq) - 3  # neither the start nor the stop codon
        mutant = seq[: s.pos - 1] + s.alt + seq[s.pos :]
        ref_aa = str(Seq(seq[c0 : c0 + 3]).translate(table=11))
        alt_aa = str(Seq(mutant[c0 : c0 + 3]).translate(table=11))
        expected = "nonsense" if alt_aa == "*" else "synonymous" if alt_aa == ref_aa else "missense"
        assert s.klass == expected, s
    vcf, tsv = tmp_path / "sim.vcf", tmp_path / "sim.tsv"
    var.write_simulation(snvs, vcf, tsv, {"codon_usage": [0.0] * len(snvs)})
    parsed = var.read_vcf(vcf)
    assert [v.id for v in parsed.variants] == [s.id for s in snvs]
    fa = write(tmp_path / "cds.fa", "".join(f">{n}\n{s}\n" for n, s, _ in cds))
    var.check_variants(parsed, var.load_contigs(fa), fa)  # REF matches the contigs


def test_baselines():
    train = ["ATG" + "GCT" * 30 + "GCC" * 2 + "TAA"] * 3
    usage = var.CodonUsage().fit(train)
    seq = "ATGGCTGCTTAA"
    assert usage.score(seq, 5, "C") < 0  # GCT -> GCC: rarer codon
    assert usage.score(seq, 5, "T") == 0.0
    markov = var.NucleotideMarkov(2).fit(train)
    assert markov.score(seq, 5, "T") == 0.0
    assert markov.score(seq, 5, "A") < 0


def test_cli(models, tmp_path, capsys):
    fa = write(tmp_path / "g.fa", f">c1\n{CONTIG}\n")
    vcf = write(tmp_path / "in.vcf", HEAD + "c1\t10\tok\tC\tT\t.\t.\t.\n")
    out = tmp_path / "o.tsv"
    args = ["vep", "--model", str(models["mlm"]), "--vcf", str(vcf), "--fasta", str(fa)]
    assert cli_main([*args, "--out", str(out), "--window", "16", "--rc-average"]) == 0
    (row,) = rows(out)
    assert (row["chrom"], row["pos"], row["ref"], row["alt"]) == ("c1", "10", "C", "T")
    assert math.isclose(
        float(row["score"]), (float(row["score_forward"]) + float(row["score_reverse"])) / 2,
        abs_tol=1e-5,
    )  # fmt: skip
    assert (tmp_path / "o.dnalm.vcf").is_file()  # the default copy: OUT + .dnalm.vcf
    bad = write(tmp_path / "bad.vcf", HEAD + "c1\t10\tok\tA\tT\t.\t.\t.\n")
    assert cli_main([*args[:3], "--vcf", str(bad), "--fasta", str(fa), "--out", str(out)]) == 2
    assert "bad.vcf:3: REF A does not match" in capsys.readouterr().err


def test_a_failure_after_scored_lines_leaves_no_output(models, tmp_path, capsys):
    """The second SNV's window runs off the contig (edge error) after the first was scored:
    the error names that line, and neither the TSV nor the VCF copy is left behind."""
    fa = write(tmp_path / "g.fa", f">c1\n{CONTIG}\n")
    vcf = write(
        tmp_path / "in.vcf",
        HEAD + f"c1\t10\tok\t{CONTIG[9]}\tT\t.\t.\t.\nc1\t2\tedge\t{CONTIG[1]}\tT\t.\t.\t.\n",
    )
    out, out_vcf = tmp_path / "o.tsv", tmp_path / "o.vcf"
    args = ["vep", "--model", str(models["gpt"]), "--vcf", str(vcf), "--fasta", str(fa)]
    code = cli_main([*args, "--out", str(out), "--out-vcf", str(out_vcf), "--window", "16"])
    assert code == 2
    assert "in.vcf:4: the 16-nt window around the variant runs off the contig" in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "in.vcf"]


def test_simulation_check_on_real_cds_with_auroc_table_and_figure(shared_data, tmp_path):
    """The rule's path end to end on the shared E. coli CDS (half as held-out contigs, half
    as training sequences for the baselines), and the AUROC table's direction: a scorer
    that ranks every nonsense SNV below every synonymous one has AUROC 1."""
    from dnalm.core.io import read_fasta
    from dnalm.report.vep_plots import plot_vep_auroc

    records = list(read_fasta(shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"))
    test_fa, train_fa = tmp_path / "test.fa", tmp_path / "train.fa"
    test_fa.write_text("".join(f">{h}\n{s}\n" for h, s, _ in records[::2]))
    train_fa.write_text("".join(f">{h}\n{s}\n" for h, s, _ in records[1::2]))
    table = tmp_path / "cds.tsv"
    table.write_text(
        "cds_id\tgenetic_code\n" + "".join(f"{h.split()[0]}\t11\n" for h, _, _ in records)
    )
    vcf, sim = tmp_path / "v.vcf", tmp_path / "v.tsv"
    n = var.simulate_cds_variants([test_fa], [train_fa], table, vcf, sim, 40, seed=1)
    assert n == 120
    parsed = var.read_vcf(vcf)
    var.check_variants(parsed, var.load_contigs(test_fa), test_fa)
    simulated = rows(sim)
    perfect = tmp_path / "perfect.tsv"
    perfect.write_text(
        "id\tscore\n"
        + "".join(f"{r['id']}\t{-1.0 if r['class'] == 'nonsense' else 0.0}\n" for r in simulated)
    )
    auc = var.auroc_table(sim, {"perfect": perfect})
    got = {(r.scorer, r.comparison): r.auroc for r in auc.itertuples()}
    assert got[("perfect", "nonsense_vs_synonymous")] == 1.0
    assert got[("perfect", "missense_vs_synonymous")] == 0.5
    # stop codons are rare in the training CDS: codon usage flags nonsense SNVs
    assert got[("codon_usage", "nonsense_vs_synonymous")] > 0.9
    out = tmp_path / "auroc.tsv"
    auc.to_csv(out, sep="\t", index=False)
    png, svg = plot_vep_auroc(out, tmp_path / "auroc.png")
    assert png.stat().st_size > 0
    assert svg.is_file()


def test_masked_window_longer_than_the_context_is_cut_around_the_site(models):
    lm = LoadedModel.from_folder(models["mlm"])  # context 40
    ref = CONTIG[:60]
    alt = ref[:30] + ("C" if ref[30] != "C" else "G") + ref[31:]
    got = vep.pair_score(lm, ref, alt, eos=False, where="t")
    # 61 tokens, 21 too many: 11 cut on the left (after [BOS]), 10 on the right
    assert got == pytest.approx(vep.pair_score(lm, ref[11:50], alt[11:50], False, "t"), abs=1e-6)
