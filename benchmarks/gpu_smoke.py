"""One command that exercises every GPU path of the workflow's library on one GPU, then
measures bench_arch.py's MFU at an ~85M shape; prints one PASS / FAIL / SKIP line per path
and the MFU per architecture. Meant to finish within about 8 minutes on one H100.

Paths (each on tiny synthetic data; the models are small except the MFU step):

* ``arch:<name>``: every architecture of dnalm.kinds.archs pretrains a few steps (bf16
  autocast on a GPU with bf16 support; Mamba without its CUDA kernels gets its warning or
  refusal, which is then the line's text), on packed windows (padded for state-space models);
* ``flex+compile``: GPT (OPT) on packed windows with flex attention and torch.compile;
* ``ddp+resume``, ``fsdp2+resume``: torchrun with 2 processes (NCCL on 2 GPUs; with fewer
  GPUs the wrappers run on the CPU with gloo, said on the line), then the same command again,
  which resumes from the last checkpoint;
* ``lora``: LoRA fine-tuning of the pretrained GPT on a classification task;
* ``embed``, ``generate``, ``score``, ``vep``: embeddings, sampling, per-token
  log-likelihoods and variant-effect scores with the pretrained GPT;
* ``attribution``: ISM, gradient x input and integrated gradients of the LoRA run;
* ``dnatext``: the DNA+text model trained a few steps on the device;
* ``bench_arch``: ``benchmarks/bench_arch.py`` at 12 layers x 12 heads x 768 wide (about
  85M non-embedding parameters), batch 16 x 1024 tokens, bf16, packed windows with dense and
  flex attention; its MFU per architecture is printed.

``--cpu`` is the reduced mode the test suite runs (tests/test_benchmarks_gpu.py): tiny sizes,
fp32, gloo, flex+compile skipped (no flex backward on CPU), bench_arch at a toy shape (no
MFU). It keeps this script working where no GPU is.

    python benchmarks/gpu_smoke.py                 # on a GPU machine
    python benchmarks/gpu_smoke.py --cpu           # anywhere (about a minute)

The exit status is 1 when any path failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
sys.path[:0] = [str(SCRIPTS), str(REPO)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from dnalm.core.artifacts import METRICS_JSON, RUN_JSON  # noqa: E402
from dnalm.core.smk import quiet_library_progress_bars  # noqa: E402
from dnalm.kinds.archs import ARCHS  # noqa: E402
from dnalm.tokenization import build as dtok  # noqa: E402

BLOCK = 64


class Skip(Exception):
    """The path does not apply on this machine (the line says why)."""


# --------------------------------------------------------------------------- data


def write_corpus(folder: Path, packing: str, seed: int = 0) -> Path:
    """A nucleotide corpus in the corpus contract's one-array-per-split layout: Markov-chain
    sequences as [BOS] nts [EOS], packed (positions restart per sequence) or padded (one
    sequence per window)."""
    tok = dtok.build_tokenizer({"type": "nucleotide"})
    ids = tok.special_ids
    rng = np.random.default_rng(seed)
    meta = {
        "tokenizer": "nucleotide",
        "tokenizer_hash": tok.hash,
        "vocab_size": tok.vocab_size,
        "block_size": BLOCK,
        "packing": packing,
        **{k: ids.get(k) for k in ("pad_id", "unk_id", "bos_id", "eos_id", "sep_id", "mask_id")},
    }
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 160), ("validation", 24), ("test", 24)):
        seqs = [
            "".join(rng.choice(list("ACGT"), int(rng.integers(20, BLOCK - 2)))) for _ in range(n)
        ]
        rows_t, rows_p, cur_t, cur_p = [], [], [], []
        for s in seqs:
            seq_ids = [ids["bos_id"], *tok.encode(s).tolist(), ids["eos_id"]]
            if packing == "padded" or len(cur_t) + len(seq_ids) > BLOCK:
                if cur_t:
                    rows_t.append(cur_t + [ids["pad_id"]] * (BLOCK - len(cur_t)))
                    rows_p.append(cur_p + [0] * (BLOCK - len(cur_p)))
                cur_t, cur_p = [], []
            cur_t += seq_ids
            cur_p += list(range(len(seq_ids)))
        rows_t.append(cur_t + [ids["pad_id"]] * (BLOCK - len(cur_t)))
        rows_p.append(cur_p + [0] * (BLOCK - len(cur_p)))
        tokens, positions = np.array(rows_t, np.uint16), np.array(rows_p, np.uint16)
        np.save(folder / f"{split}.tokens.npy", tokens)
        np.save(folder / f"{split}.positions.npy", positions)
        meta[split] = {
            "n_windows": len(rows_t),
            "n_tokens": int((tokens != ids["pad_id"]).sum()),
            "n_sequences": n,
            "n_dropped_short": 0,
            "nt_per_token": 1.0,
            "nucleotides": sum(map(len, seqs)),
        }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    tok.save(folder / "tokenizer")
    return folder


def class_table(n: int = 96, length: int = 40) -> pd.DataFrame:
    """GC-rich against AT-rich sequences (a task any model learns in a few steps)."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        label = "gc" if i % 2 else "at"
        p = [0.15, 0.35, 0.35, 0.15] if label == "gc" else [0.35, 0.15, 0.15, 0.35]
        split = "train" if i < 0.7 * n else ("validation" if i < 0.85 * n else "test")
        rows.append(
            {
                "id": f"s{i}",
                "sequence": "".join(rng.choice(list("ACGT"), length, p=p)),
                "split": split,
                "label": label,
            }
        )
    df = pd.DataFrame(rows)
    df.attrs["kind"] = "classification"
    df.attrs["labels"] = ["at", "gc"]
    return df


# --------------------------------------------------------------------------- the paths


class Smoke:
    def __init__(self, args, work: Path) -> None:
        self.args, self.work = args, work
        self.cpu = args.cpu
        self.device = "cpu" if self.cpu else "cuda"
        self.precision = "fp32" if self.cpu else "auto"
        self.packed = write_corpus(work / "corpus_packed", "packed")
        self.padded = write_corpus(work / "corpus_padded", "padded")
        self.gpt: Path | None = None  # the pretrained OPT folder the later paths use
        self.lora: Path | None = None
        self.results: list[tuple[str, str, float, str]] = []

    def train_cfg(self, steps: int) -> dict:
        return {
            "max_steps": steps,
            "micro_batch_size": 4 if self.cpu else 16,
            "eval_interval": steps,
            "eval_batches": 1,
            "log_interval": 1,
            "warmup_steps": 1,
            "threads": 1 if self.cpu else 4,
            "test_eval": False,
            "device": self.device,
            "precision": self.precision,
        }

    def run(self, name: str, fn: Callable[[], str | None]) -> None:
        t0 = time.perf_counter()
        try:
            note = fn() or ""
            status = "PASS"
        except Skip as why:
            status, note = "SKIP", str(why)
        except Exception as err:  # a smoke test reports every path, then fails at the end
            status, note = "FAIL", f"{type(err).__name__}: {err}"
            traceback.print_exc(file=sys.stderr)
        secs = time.perf_counter() - t0
        self.results.append((name, status, secs, note))
        print(f"{status} {name} ({secs:.1f} s){': ' + note if note else ''}", flush=True)

    # ---- pretraining

    def arch(self, name: str) -> str:
        from dnalm.training.pretrain import pretrain

        kind = ARCHS.get(name)
        corpus = self.padded if kind.no_packing else self.packed
        out = self.work / "models" / name
        rec = pretrain(
            corpus, out, kind.objective, "tiny", {}, self.train_cfg(3), resume=False, arch=name
        )
        if name == "opt":
            self.gpt = out
        return f"{rec.get('precision', '?')}, {'padded' if kind.no_packing else 'packed'}"

    def flex_compile(self) -> str:
        if self.cpu:
            raise Skip("CUDA only: FlexAttention has no backward on the CPU")
        from dnalm.training.pretrain import pretrain

        cfg = {**self.train_cfg(4), "compile": True}
        pretrain(
            self.packed,
            self.work / "models" / "flex",
            "gpt",
            "tiny",
            {"attn_implementation": "flex_attention"},
            cfg,
            resume=False,
            arch="opt",
        )
        return "opt, packed windows, flex_attention, torch.compile"

    def distributed(self) -> None:
        """ddp+resume and fsdp2+resume: both launched at once, then both rerun (resume)."""
        gpus = 0 if self.cpu else torch.cuda.device_count()
        on_gpu = gpus >= 2
        where = (
            "2 GPUs, NCCL"
            if on_gpu
            else "2 CPU processes, gloo" + ("" if self.cpu else " (fewer than 2 GPUs here)")
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(REPO)]),
            "OMP_NUM_THREADS": "1",
        }
        if not on_gpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        outs = {s: self.work / "models" / f"dist_{s}" for s in ("ddp", "fsdp")}

        def command(strategy: str, port: int) -> list[str]:
            sets = {
                **self.train_cfg(4),
                "eval_interval": 2,
                "device": "cuda" if on_gpu else "cpu",
                "precision": self.precision if on_gpu else "fp32",
            }
            return [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=1",
                "--nproc-per-node=2",
                f"--master-port={port}",
                "-m",
                "dnalm.training.pretrain",
                "--corpus",
                str(self.packed),
                "--out",
                str(outs[strategy]),
                "--objective",
                "gpt",
                "--preset",
                "tiny",
                "--strategy",
                strategy,
                *[a for k, v in sets.items() for a in ("--train-set", f"{k}={v}")],
            ]

        logs: dict[str, str] = {}
        for attempt in ("train", "resume"):
            t0 = time.perf_counter()
            procs = {
                s: subprocess.Popen(
                    command(s, 29611 + i),
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for i, s in enumerate(outs)
            }
            for s, p in procs.items():
                out, _ = p.communicate(timeout=600)
                logs[(s, attempt)] = out
                if p.returncode:
                    raise RuntimeError(f"{s} {attempt} exited {p.returncode}:\n{out[-3000:]}")
            logs[attempt] = f"{time.perf_counter() - t0:.1f}"
        for s in outs:
            name = "ddp+resume" if s == "ddp" else "fsdp2+resume"
            ok = "resumed from" in logs[(s, "resume")] or "picked up" in logs[(s, "resume")]
            rec = json.loads((outs[s] / RUN_JSON).read_text())
            status = "PASS" if ok and rec.get("world_size") == 2 else "FAIL"
            note = f"{where}, world {rec.get('world_size')}, rerun resumed: {ok}"
            self.results.append((name, status, float(logs["train"]) + float(logs["resume"]), note))
            print(f"{status} {name}: {note}", flush=True)

    # ---- the pretrained GPT's users

    def need_gpt(self) -> Path:
        if self.gpt is None:
            raise RuntimeError("no pretrained OPT folder (arch:opt failed)")
        return self.gpt

    def lora_run(self) -> str:
        from dnalm.finetuning.finetune import finetune

        out = self.work / "finetune" / "lora"
        finetune(
            self.need_gpt(),
            class_table(),
            out,
            {
                "regime": "lora",
                "max_epochs": 1,
                "max_steps": 4,
                "batch_size": 8,
                "device": self.device,
                "precision": self.precision,
                "threads": 1,
                "warmup_steps": 1,
            },
            task_name="gc_vs_at",
        )
        if not (out / METRICS_JSON).is_file():
            raise RuntimeError(f"no {METRICS_JSON} in {out}")
        self.lora = out
        return f"LoRA adapters on the pretrained OPT, {METRICS_JSON} written"

    def embed(self) -> str:
        from dnalm.evaluation.embed import embed_table, load_embeddings

        out = self.work / "embed" / "gpt.npz"
        embed_table(self.need_gpt(), class_table(), out, device=self.device)
        return f"{len(load_embeddings(out).ids)} sequences"

    def generate(self) -> str:
        from dnalm.evaluation.inference import LoadedModel
        from dnalm.generation.sampling import generate

        lm = LoadedModel.from_folder(self.need_gpt(), self.device)
        seqs = generate(lm, "ATG", n=4, max_new_tokens=40, seed=0)
        if len(seqs) != 4:
            raise RuntimeError(f"{len(seqs)} sequences")
        return f"4 x {len(seqs[0])} nt"

    def fasta(self) -> Path:
        path = self.work / "contigs.fa"
        rng = np.random.default_rng(3)
        seqs = {f"c{i}": "".join(rng.choice(list("ACGT"), 200)) for i in range(3)}
        path.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
        self.contigs = seqs
        return path

    def score(self) -> str:
        from dnalm.evaluation.inference import score_fasta

        out = self.work / "score"
        out.mkdir(exist_ok=True)
        n = score_fasta(
            self.need_gpt(),
            self.fasta(),
            out / "tokens.tsv",
            out / "totals.tsv",
            device=self.device,
        )
        return f"{n} sequences"

    def vep(self) -> str:
        from dnalm.evaluation.vep import run_vep

        fasta = self.fasta()
        lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
        for i, pos in enumerate((60, 100, 140)):
            ref = self.contigs["c0"][pos - 1]
            alt = "A" if ref != "A" else "C"
            lines.append(f"c0\t{pos}\tv{i}\t{ref}\t{alt}\t.\t.\t.")
        vcf = self.work / "snvs.vcf"
        vcf.write_text("\n".join(lines) + "\n")
        n = run_vep(
            self.need_gpt(), vcf, fasta, self.work / "vep.tsv", window=32, device=self.device
        )
        return f"{n} alleles"

    def attribution(self) -> str:
        from dnalm.interpretation.run import interpret_run

        if self.lora is None:
            raise RuntimeError("no LoRA run (lora failed)")
        summary = interpret_run(
            self.lora,
            class_table(),
            self.work / "interpret",
            {"n_windows": 2, "ig_steps": 2, "device": self.device},
            task_name="gc_vs_at",
        )
        return f"{len(summary)} summary rows"

    def dnatext(self) -> str:
        from dnalm.multimodal.model import DNATextForMaskedLM, build_config
        from dnalm.multimodal.tokenizer import DNATextTokenizer, train_wordpiece
        from dnalm.multimodal.train import Vocab, train_mlm

        rng = np.random.default_rng(5)
        dna = dtok.build_tokenizer(
            {"type": "bpe", "vocab_size": 64},
            ["".join(rng.choice(list("ACGT"), 300)) for _ in range(20)],
        )
        texts = ["dna polymerase subunit", "ribosomal protein l2", "atp synthase alpha"] * 8
        tok = DNATextTokenizer(train_wordpiece(texts, 120), dna)
        sentences = [f"<dna>{''.join(rng.choice(list('ACGT'), 60))}</dna> {t}" for t in texts]
        cfg = build_config(
            tok.dna_token_strings(),
            tok.offset,
            {"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1},
            96,
        )
        model = DNATextForMaskedLM(cfg)
        rows = [e["input_ids"] for e in tok.encode_batch(sentences)]
        hist = train_mlm(
            model,
            rows,
            Vocab.of_dnatext(tok),
            {"steps": 3, "batch_size": 4, "max_len": 96},
            device=self.device,
        )
        return f"loss {hist[-1]['loss']:.3f} on {next(model.parameters()).device}"

    # ---- MFU

    def bench_arch(self) -> str:
        out = self.work / "bench_arch.json"
        if self.cpu:
            shape = [
                "--archs",
                "opt",
                "--n-layer",
                "1",
                "--n-head",
                "2",
                "--d-model",
                "32",
                "--batch",
                "2",
                "--block",
                "64",
                "--steps",
                "1",
                "--warmup",
                "1",
                "--repeats",
                "1",
            ]
        else:
            shape = [
                "--device",
                "cuda",
                "--dtype",
                "bf16",
                "--attn",
                "dense,flex",
                "--n-layer",
                "12",
                "--n-head",
                "12",
                "--d-model",
                "768",
                "--batch",
                "16",
                "--block",
                "1024",
                "--steps",
                "5",
                "--warmup",
                "3",
                "--repeats",
                "1",
                "--threads",
                "4",
            ]
        # in this process (torch is imported already), with bench_arch's own command line
        spec = importlib.util.spec_from_file_location(
            "bench_arch", REPO / "benchmarks" / "bench_arch.py"
        )
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        argv, sys.argv = sys.argv, ["bench_arch.py", *shape, "--json", str(out)]
        try:
            bench.main()
        except SystemExit as stop:
            if stop.code:
                raise RuntimeError(f"bench_arch.py stopped: {stop.code}") from None
        finally:
            sys.argv = argv
        rows = json.loads(out.read_text())
        for r in rows:
            mfu = f"MFU {r['mfu']:.1%}" if "mfu" in r else f"{r['tok_s']:,.0f} tok/s"
            print(f"MFU {r['model']} {r['windows']}: {mfu}", flush=True)
        return f"{len(rows)} rows"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="reduced CPU mode (tiny, fp32, gloo)")
    ap.add_argument("--keep", help="work folder to keep (default: a temporary one)")
    ap.add_argument("--only", help="comma-separated path names to run (default: all)")
    ap.add_argument("--skip", help="comma-separated path names not to run")
    args = ap.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --cpu for the reduced CPU mode")
    quiet_library_progress_bars()
    torch.set_num_threads(1 if args.cpu else max(1, min(8, os.cpu_count() or 1)))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_smoke_") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        smoke = Smoke(args, work)
        device = "cpu" if args.cpu else torch.cuda.get_device_name(0)
        print(f"gpu_smoke on {device}, torch {torch.__version__}", flush=True)
        paths: list[tuple[str, Callable[[], str | None]]] = [
            *[(f"arch:{a}", lambda a=a: smoke.arch(a)) for a in ARCHS.names()],
            ("flex+compile", smoke.flex_compile),
            ("lora", smoke.lora_run),
            ("embed", smoke.embed),
            ("generate", smoke.generate),
            ("score", smoke.score),
            ("vep", smoke.vep),
            ("attribution", smoke.attribution),
            ("dnatext", smoke.dnatext),
            ("ddp+fsdp2", smoke.distributed),
            ("bench_arch", smoke.bench_arch),
        ]
        only = set(args.only.split(",")) if args.only else None
        skip = set(args.skip.split(",")) if args.skip else set()
        unknown = ((only or set()) | skip) - {name for name, _ in paths}
        if unknown:
            sys.exit(f"--only/--skip: unknown path(s) {sorted(unknown)}")
        for name, fn in paths:
            if (only is None or name in only) and name not in skip:
                smoke.run(name, fn)
    failed = [r for r in smoke.results if r[1] == "FAIL"]
    print(
        f"gpu_smoke: {len(smoke.results) - len(failed)} of {len(smoke.results)} paths passed "
        f"or skipped, {len(failed)} failed, {time.perf_counter() - t0:.0f} s"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
