"""Model folders in the exact Hugging Face Hub layout, built at test time with random weights
(nothing is downloaded), for the external-model tests:

- :func:`nt_v1_folder`: a native ESM folder in the Nucleotide Transformer v1 shape
  (``EsmForMaskedLM``, absolute position embeddings, no token dropout, ``<cls>`` first) with
  the tokenizer files NT-v1 ships (``vocab.txt`` of the special tokens, the 4^6 6-mers and
  the single nucleotides, read by transformers' ``EsmTokenizer``), tiny sizes;
- :func:`remote_code_folder`: the NT-v2 shape, whose ``config.json`` has ``model_type: esm``
  *and* an ``auto_map`` to the folder's own ``esm_config.py`` / ``modeling_esm.py`` (a
  transformer with a gated MLP, as NT-v2's), so only the opt-in path can load it; `marker`:
  the module writes that file when it is imported (the malicious fixture);
- :func:`hub_cache`: a Hugging Face cache tree (``hub/models--org--name/blobs``,
  ``snapshots/<40-hex>/`` of relative links, ``refs/main``) holding a folder, so that
  ``org/name`` + revision resolves with ``HF_HUB_OFFLINE=1`` and ``HF_HOME`` pointing at it;
- :func:`pickle_only_folder`: ``config.json`` and a ``pytorch_model.bin`` that runs code
  (writes `marker`) when unpickled, and no safetensors;
- :func:`bert_bpe_folder`: DNABERT-2's tokenization (a ``tokenizer.json`` with a BPE model
  learnt from DNA by the ``tokenizers`` library, ``[CLS] ... [SEP]``, read by
  ``PreTrainedTokenizerFast``) on a standard ``BertForMaskedLM`` (without DNABERT-2's own
  attention code), two layers;
- :func:`causal_folder`: a native causal model (``GPT2LMHeadModel``) with a
  character-level ``tokenizer.json`` (``<s>`` first), two layers, for generation;
- :func:`remote_causal_folder`: a causal model with code of its own in HyenaDNA's shape
  (``config.json`` with a model type of its own, ``max_seq_len`` and an ``auto_map`` to the
  folder's ``configuration_dna_gpt.py`` / ``modeling_dna_gpt.py``, whose forward takes no
  cache, position ids or attention mask), the character-level tokenizer, for generation;
- :func:`workflow_externals`: the external fixtures of a workflow run and the config that
  uses them in every stage.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pickle
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (
    BertConfig,
    BertForMaskedLM,
    EsmConfig,
    EsmForMaskedLM,
    EsmTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
)

#: NT-v1's special tokens, in the order of its vocab.txt (ids 0-5)
SPECIALS = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")


def nt_vocab(k: int = 6) -> list[str]:
    """NT-v1's vocabulary: the special tokens, the 4^k k-mers (A, T, C, G order), then the
    single nucleotides and N (4105 tokens for k = 6)."""
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=k)]
    return [*SPECIALS, *kmers, "A", "T", "C", "G", "N"]


def write_nt_tokenizer(folder: Path, k: int = 6, max_length: int = 64) -> None:
    """The tokenizer files of an NT-v1 / NT-v2 repository: vocab.txt, tokenizer_config.json
    and special_tokens_map.json (EsmTokenizer)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(nt_vocab(k)) + "\n", encoding="utf-8")
    specials = {
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "cls_token": "<cls>",
        "eos_token": "<eos>",
        "bos_token": "<bos>",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {"tokenizer_class": "EsmTokenizer", "model_max_length": max_length, **specials},
            indent=2,
        )
    )


def nt_v1_folder(folder: Path, *, k: int = 6, seed: int = 3, context: int = 64) -> Path:
    """A native EsmForMaskedLM folder in NT-v1's shape (random weights, hidden size 8, one
    layer) with its 6-mer EsmTokenizer; model.safetensors only."""
    folder = Path(folder)
    write_nt_tokenizer(folder, k, context - 2)
    config = EsmConfig(
        vocab_size=len(nt_vocab(k)),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=context + 2,
        position_embedding_type="absolute",  # NT-v1; NT-v2 is rotary
        emb_layer_norm_before=False,
        token_dropout=False,
        pad_token_id=1,
        mask_token_id=2,
        layer_norm_eps=1e-12,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = EsmForMaskedLM(config)
    model.save_pretrained(str(folder))  # config.json + model.safetensors
    assert EsmTokenizer.from_pretrained(str(folder)).vocab_size == config.vocab_size
    return folder


CONFIG_MODULE = '''\
"""Configuration of a tiny transformer with a gated MLP (the Nucleotide Transformer v2
shape: model_type esm, its own code through auto_map)."""

from transformers import PretrainedConfig


class EsmConfig(PretrainedConfig):
    model_type = "esm"

    def __init__(self, vocab_size=4105, hidden_size=8, num_hidden_layers=1,
                 num_attention_heads=2, intermediate_size=16, max_position_embeddings=66,
                 add_bias_fnn=False, layer_norm_eps=1e-12, pad_token_id=1, mask_token_id=2,
                 **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.add_bias_fnn = add_bias_fnn
        self.layer_norm_eps = layer_norm_eps
        self.mask_token_id = mask_token_id
'''

MODELING_MODULE = '''\
"""A tiny transformer encoder with a gated (SwiGLU) MLP, as the Nucleotide Transformer v2."""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput

from .esm_config import EsmConfig
{marker}

class GatedMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        bias = config.add_bias_fnn
        self.fc1 = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=bias)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)

    def forward(self, x):
        a, b = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(nn.functional.silu(a) * b)


class EsmLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        h = config.hidden_size
        self.attention_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dense = nn.Linear(h, h)
        self.mlp_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.mlp = GatedMLP(config)
        self.heads = config.num_attention_heads

    def forward(self, x, mask):
        b, t, h = x.shape  # (B, T, C)
        y = self.attention_norm(x)
        q, k, v = (
            f(y).view(b, t, self.heads, h // self.heads).transpose(1, 2)
            for f in (self.query, self.key, self.value)
        )
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.dense(a.transpose(1, 2).reshape(b, t, h))
        return x + self.mlp(self.mlp_norm(x))


class EsmPreTrainedModel(PreTrainedModel):
    config_class = EsmConfig
    base_model_prefix = "esm"

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()


class EsmModel(EsmPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size
        )
        self.layer = nn.ModuleList(EsmLayer(config) for _ in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.word_embeddings

    def forward(self, input_ids, attention_mask=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos)[None]
        states = [x]
        for layer in self.layer:
            x = layer(x, attention_mask)
            states.append(x)
        x = self.final_norm(x)
        states[-1] = x
        return BaseModelOutput(
            last_hidden_state=x, hidden_states=tuple(states) if output_hidden_states else None
        )


class EsmForMaskedLM(EsmPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.esm = EsmModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.esm.word_embeddings

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        out = self.esm(input_ids, attention_mask, output_hidden_states=output_hidden_states)
        logits = self.lm_head(out.last_hidden_state)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100
            )
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
'''

#: NT-v2's auto_map: its config and model classes are the repository's own code
AUTO_MAP = {
    "AutoConfig": "esm_config.EsmConfig",
    "AutoModel": "modeling_esm.EsmModel",
    "AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM",
}
CODE_FILES = ("esm_config.py", "modeling_esm.py")


#: the auto_map of InstaDeepAI/nucleotide-transformer-v2-50m-multi-species's config.json
#: (its commit c8e88fd "Update config.json"): no AutoModel key, so AutoModel falls back to
#: transformers' own EsmModel (model_type esm), not the repository's code
NT_V2_AUTO_MAP = {
    "AutoConfig": "esm_config.EsmConfig",
    "AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM",
    "AutoModelForTokenClassification": "modeling_esm.EsmForTokenClassification",
    "AutoModelForSequenceClassification": "modeling_esm.EsmForSequenceClassification",
}
#: its architectures, from the same commit
NT_V2_ARCHITECTURES = [
    "EsmForMaskedLM",
    "EsmForTokenClassification",
    "EsmForSequenceClassification",
]


def remote_code_folder(
    folder: Path,
    *,
    marker: Path | None = None,
    k: int = 6,
    seed: int = 5,
    context: int = 64,
    auto_map: dict | None = None,
    architectures: list[str] | None = None,
) -> Path:
    """A folder in NT-v2's shape: ``config.json`` with ``model_type: esm`` and an
    ``auto_map`` to ``esm_config.py`` and ``modeling_esm.py`` (written here), random weights
    in model.safetensors, the 6-mer EsmTokenizer. With `marker`, importing modeling_esm.py
    writes that file (what a hostile module could do at import)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_nt_tokenizer(folder, k, context - 2)
    line = f"open({str(marker)!r}, 'w').write('imported')\n" if marker else ""
    (folder / "esm_config.py").write_text(CONFIG_MODULE)
    (folder / "modeling_esm.py").write_text(MODELING_MODULE.format(marker=line))
    sizes = {
        "vocab_size": len(nt_vocab(k)),
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "max_position_embeddings": context + 2,
        "add_bias_fnn": False,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 1,
        "mask_token_id": 2,
    }
    # the weights, built from the module itself so that names and shapes are its own
    namespace: dict = {}
    exec(compile(CONFIG_MODULE, "esm_config.py", "exec"), namespace)  # our text
    cfg = namespace["EsmConfig"](**sizes)
    modeling = MODELING_MODULE.format(marker="").replace("from .esm_config import EsmConfig", "")
    model_ns = {"EsmConfig": namespace["EsmConfig"]}
    exec(compile(modeling, "modeling_esm.py", "exec"), model_ns)
    torch.manual_seed(seed)
    model = model_ns["EsmForMaskedLM"](cfg)
    save_file(
        {k_: v.contiguous() for k_, v in model.state_dict().items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = {
        "architectures": architectures or ["EsmForMaskedLM"],
        "auto_map": auto_map or AUTO_MAP,
        "model_type": "esm",
        **sizes,
        "position_embedding_type": "rotary",
        "transformers_version": "4.32.0.dev0",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


class _RunsCode:
    """Unpickling this writes `path` (a pickle is a program)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('unpickled')",))


def pickle_only_folder(folder: Path, marker: Path) -> Path:
    """A model folder whose only weights are a ``pytorch_model.bin`` that writes `marker`
    when unpickled (config.json of an ordinary ESM model, NT tokenizer files)."""
    folder = Path(folder)
    write_nt_tokenizer(folder, 6)
    config = EsmConfig(vocab_size=len(nt_vocab(6)), hidden_size=8, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=16)  # fmt: skip
    config.save_pretrained(str(folder))
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"esm.embeddings.word_embeddings.weight": _RunsCode(marker)}, fh)
    return folder


#: config.json of zhihan1996/DNABERT-2-117M (commit faf3caf: an auto_map to its own BERT
#: code, no model_type, no architectures), with the sizes made tiny
DNABERT2_CONFIG = {
    "alibi_starting_size": 64,
    "attention_probs_dropout_prob": 0.0,
    "auto_map": {
        "AutoConfig": "configuration_bert.BertConfig",
        "AutoModel": "bert_layers.BertModel",
        "AutoModelForMaskedLM": "bert_layers.BertForMaskedLM",
        "AutoModelForSequenceClassification": "bert_layers.BertForSequenceClassification",
    },
    "hidden_size": 8,
    "num_attention_heads": 2,
    "num_hidden_layers": 1,
    "intermediate_size": 16,
    "max_position_embeddings": 64,
    "vocab_size": 40,
    "transformers_version": "4.28.0",
}
#: its code files (the repository's tree at main)
DNABERT2_CODE = ("bert_layers.py", "bert_padding.py", "configuration_bert.py",
                 "flash_attn_triton.py")  # fmt: skip


def dnabert2_folder(folder: Path, marker: Path) -> Path:
    """A folder with zhihan1996/DNABERT-2-117M's files: its config.json shape, its four code
    files (each writes `marker` when imported), a BPE tokenizer.json, and, as there, only
    ``pytorch_model.bin`` weights (here a pickle that writes `marker` when read)."""
    folder = Path(folder)
    specials = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                "pad_token": "[PAD]", "mask_token": "[MASK]"}  # fmt: skip
    _write_fast_tokenizer(folder, bpe_tokenizer(), specials, 64)
    (folder / "config.json").write_text(json.dumps(DNABERT2_CONFIG, indent=2))
    line = f"open({str(marker)!r}, 'w').write('imported')\n"
    for name in DNABERT2_CODE:
        (folder / name).write_text(line)
    (folder / "generation_config.json").write_text('{"_from_model_config": true}\n')
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"bert.embeddings.word_embeddings.weight": _RunsCode(marker)}, fh)
    return folder


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file (what the Hub cache names a small file's blob by)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hub_cache(
    hf_home: Path, repo_id: str, folder: Path, revision: str, *, main: bool = True
) -> Path:
    """Put `folder`'s files into the Hugging Face cache under `hf_home` as the Hub client
    lays them out (``hub/models--org--name/blobs/<id>``, ``snapshots/<revision>/<file>`` a
    relative link to the blob, ``refs/main`` holding `revision` when `main`). Returns the
    snapshot folder."""
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    for f in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob_id = (
            hashlib.sha256(data).hexdigest()
            if f.suffix in (".safetensors", ".bin")
            else git_blob_sha1(data)
        )
        blob = repo / "blobs" / blob_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(f, blob)
        link = snapshot / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if main:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
    return snapshot


#: a commit hash for the fixtures (any 40 hex digits)
REVISION = "0123456789abcdef0123456789abcdef01234567"


def fixture_code_hashes(folder: Path) -> dict[str, str]:
    """sha256 of each code file of a remote-code folder (to compare with a record)."""
    return {
        name: hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest() for name in CODE_FILES
    }


#: the special tokens of the BPE fixture, in id order (DNABERT-2's)
BPE_SPECIALS = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")


def _write_fast_tokenizer(folder: Path, tok, specials: dict[str, str], max_length: int) -> None:
    """tokenizer.json (a ``tokenizers.Tokenizer``) and the tokenizer_config.json that makes
    AutoTokenizer read it as a PreTrainedTokenizerFast, as the Hub repositories have them."""
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length}
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, **specials}, indent=2))


def bpe_tokenizer(vocab_size: int = 40, seed: int = 0):
    """A BPE ``tokenizers.Tokenizer`` learnt from random DNA (DNABERT-2's kind: BPE merges of
    nucleotides, ``[CLS] $A [SEP]``), with `vocab_size` tokens, specials first."""
    import numpy as np
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    rng = np.random.default_rng(seed)
    texts = ["".join(rng.choice(list("ACGT"), size=200)) for _ in range(50)]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(BPE_SPECIALS),
        initial_alphabet=list("ACGTN"),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def bert_bpe_folder(folder: Path, *, seed: int = 7, context: int = 64) -> Path:
    """A native BertForMaskedLM folder with DNABERT-2's tokenization (a BPE tokenizer.json
    read by PreTrainedTokenizerFast), random weights, hidden size 8, two layers."""
    folder = Path(folder)
    tok = bpe_tokenizer()
    specials = {
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "mask_token": "[MASK]",
    }
    _write_fast_tokenizer(folder, tok, specials, context)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=context,
        pad_token_id=tok.token_to_id("[PAD]"),
    )
    torch.manual_seed(seed)
    BertForMaskedLM(config).save_pretrained(str(folder))
    return folder


#: GPN's tokenizer vocabulary (songlab-cal/gpn examples/ss/basic_example.ipynb prints
#: ``tokenizer.get_vocab()`` of songlab/gpn-brassicales: lower-case nucleotides)
GPN_VOCAB = {"[PAD]": 0, "[MASK]": 1, "[UNK]": 2, "a": 3, "c": 4, "g": 5, "t": 6}


def gpn_folder(folder: Path, *, model_type: str = "GPN", context: int = 64) -> Path:
    """A folder in the shape of songlab/gpn-brassicales: config.json with a model type that
    only the ``gpn`` package registers (gpn/model.py registers GPN, ConvNet and
    GPNRoFormer), no ``auto_map`` (no code of its own), model.safetensors, and a character
    tokenizer.json with GPN's vocabulary. The weights are one random tensor: nothing may
    load them."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder = Path(folder)
    tok = Tokenizer(models.WordLevel(vocab=GPN_VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    specials = {"pad_token": "[PAD]", "mask_token": "[MASK]", "unk_token": "[UNK]"}
    _write_fast_tokenizer(folder, tok, specials, context)
    config = {
        "architectures": [f"{model_type}ForMaskedLM"],
        "model_type": model_type,
        "vocab_size": len(GPN_VOCAB),
        "hidden_size": 8,
        "n_layers": 2,
        "transformers_version": "4.30.0",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    save_file({"model.embedding.weight": torch.zeros(len(GPN_VOCAB), 8)},
              str(folder / "model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    return folder


#: the character-level fixture's vocabulary, in id order
CHAR_VOCAB = ("<pad>", "<s>", "</s>", "<unk>", "A", "C", "G", "T", "N")


def _write_char_tokenizer(folder: Path, context: int) -> dict[str, int]:
    """The character-level tokenizer.json of the causal fixtures (one token a nucleotide,
    ``<s>`` put first, no end token added) and its tokenizer_config.json; the vocabulary."""
    from tokenizers import Tokenizer, models, processors

    vocab = {t: i for i, t in enumerate(CHAR_VOCAB)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.add_special_tokens(["<pad>", "<s>", "</s>", "<unk>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
    )
    specials = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>",
                "unk_token": "<unk>"}  # fmt: skip
    _write_fast_tokenizer(folder, tok, specials, context)
    return vocab


def causal_folder(folder: Path, *, seed: int = 11, context: int = 128) -> Path:
    """A native GPT2LMHeadModel folder with a character-level tokenizer.json (one token a
    nucleotide, ``<s>`` first), random weights, hidden size 8, two layers."""
    folder = Path(folder)
    vocab = _write_char_tokenizer(folder, context)
    config = GPT2Config(
        vocab_size=len(CHAR_VOCAB),
        n_embd=8,
        n_layer=2,
        n_head=2,
        n_positions=context,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    return folder


CAUSAL_CONFIG_MODULE = '''\
"""Configuration of a tiny causal DNA language model with code of its own (the shape of
HyenaDNA's Hub repositories: model_type of its own, max_seq_len, auto_map)."""

from transformers import PretrainedConfig


class DnaGptConfig(PretrainedConfig):
    model_type = "dna_gpt_remote"

    def __init__(self, vocab_size=9, d_model=8, n_layer=2, n_head=2, d_inner=16,
                 max_seq_len=128, layer_norm_epsilon=1e-5, pad_token_id=0, bos_token_id=1,
                 eos_token_id=2, **kwargs):
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id,
                         eos_token_id=eos_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.n_layer = n_layer
        self.n_head = n_head
        self.d_inner = d_inner
        self.max_seq_len = max_seq_len
        self.layer_norm_epsilon = layer_norm_epsilon
'''

CAUSAL_MODELING_MODULE = '''\
"""A tiny causal transformer language model. Its forward takes what HyenaDNA's takes
(input_ids, inputs_embeds, labels, output_hidden_states, return_dict): no attention mask,
no position ids and no cache, so every call runs the whole sequence."""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput

from .configuration_dna_gpt import DnaGptConfig
{marker}

class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.ln_1 = nn.LayerNorm(d, eps=config.layer_norm_epsilon)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=config.layer_norm_epsilon)
        self.fc_in = nn.Linear(d, config.d_inner)
        self.fc_out = nn.Linear(config.d_inner, d)
        self.heads = config.n_head

    def forward(self, x):
        b, t, d = x.shape  # (B, T, C)
        q, k, v = (
            y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
            for y in self.qkv(self.ln_1(x)).chunk(3, dim=-1)
        )
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc_out(nn.functional.gelu(self.fc_in(self.ln_2(x))))


class DnaGptPreTrainedModel(PreTrainedModel):
    config_class = DnaGptConfig
    base_model_prefix = "backbone"

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()


class DnaGptModel(DnaGptPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.d_model)
        self.positions = nn.Embedding(config.max_seq_len, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids=None, inputs_embeds=None, output_hidden_states=None,
                return_dict=None):
        if inputs_embeds is None:
            inputs_embeds = self.embeddings(input_ids)
        pos = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)
        x = inputs_embeds + self.positions(pos)[None]
        states = [x]
        for layer in self.layers:
            x = layer(x)
            states.append(x)
        x = self.ln_f(x)
        states[-1] = x
        return BaseModelOutput(
            last_hidden_state=x, hidden_states=tuple(states) if output_hidden_states else None
        )


class DnaGptForCausalLM(DnaGptPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.backbone = DnaGptModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.backbone.embeddings

    def forward(self, input_ids=None, inputs_embeds=None, labels=None,
                output_hidden_states=None, return_dict=None):
        out = self.backbone(input_ids, inputs_embeds, output_hidden_states=output_hidden_states)
        logits = self.lm_head(out.last_hidden_state)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
            )
        return CausalLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
'''

#: the auto_map of the remote-code causal fixture (HyenaDNA's names these three Auto classes)
CAUSAL_AUTO_MAP = {
    "AutoConfig": "configuration_dna_gpt.DnaGptConfig",
    "AutoModel": "modeling_dna_gpt.DnaGptModel",
    "AutoModelForCausalLM": "modeling_dna_gpt.DnaGptForCausalLM",
}
CAUSAL_CODE_FILES = ("configuration_dna_gpt.py", "modeling_dna_gpt.py")


def remote_causal_folder(
    folder: Path, *, context: int = 128, marker: Path | None = None, seed: int = 13
) -> Path:
    """A causal DNA language model with code of its own, in the shape of HyenaDNA's Hub
    repositories: ``config.json`` with ``model_type: dna_gpt_remote`` (which transformers
    does not know), ``max_seq_len`` and an ``auto_map`` to ``configuration_dna_gpt.py`` /
    ``modeling_dna_gpt.py`` (written here: a small causal transformer whose forward takes no
    attention mask, position ids or cache), so only trust_remote_code loads it; the
    character-level tokenizer.json of :func:`causal_folder`; random weights in
    model.safetensors. With `marker`, importing modeling_dna_gpt.py writes that file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _write_char_tokenizer(folder, context)
    line = f"open({str(marker)!r}, 'w').write('imported')\n" if marker else ""
    (folder / "configuration_dna_gpt.py").write_text(CAUSAL_CONFIG_MODULE)
    (folder / "modeling_dna_gpt.py").write_text(CAUSAL_MODELING_MODULE.format(marker=line))
    sizes = {
        "vocab_size": len(CHAR_VOCAB),
        "d_model": 8,
        "n_layer": 2,
        "n_head": 2,
        "d_inner": 16,
        "max_seq_len": context,
        "layer_norm_epsilon": 1e-5,
        "pad_token_id": vocab["<pad>"],
        "bos_token_id": vocab["<s>"],
        "eos_token_id": vocab["</s>"],
    }
    # the weights, built from the module itself so that names and shapes are its own
    namespace: dict = {}
    exec(compile(CAUSAL_CONFIG_MODULE, "configuration_dna_gpt.py", "exec"), namespace)
    cfg = namespace["DnaGptConfig"](**sizes)
    modeling = CAUSAL_MODELING_MODULE.format(marker="").replace(
        "from .configuration_dna_gpt import DnaGptConfig", ""
    )
    model_ns = {"DnaGptConfig": namespace["DnaGptConfig"]}
    exec(compile(modeling, "modeling_dna_gpt.py", "exec"), model_ns)  # our text
    torch.manual_seed(seed)
    model = model_ns["DnaGptForCausalLM"](cfg)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = {
        "architectures": ["DnaGptForCausalLM"],
        "auto_map": CAUSAL_AUTO_MAP,
        "model_type": "dna_gpt_remote",
        **sizes,
        "transformers_version": "4.35.0",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


#: the hub id of the pinned remote-code fixture in :func:`workflow_externals`' cache
REMOTE_REPO_ID = "org/nt-v2-tiny"
#: the hub id of the pinned remote-code causal fixture there
REMOTE_CAUSAL_REPO_ID = "org/dna-gpt-remote"


def workflow_externals(
    base: Path,
    *,
    tasks: list[str] | None = None,
    vep_models: list[str] = (),
    generate_models: list[str] = (),
    context: int = 256,
) -> dict:
    """External models for a workflow run, built under `base`, and the config that uses them
    in every stage. Returns ``{"config": ..., "env": ...}``:

    - ``config``: ``models.external`` with ``ext_nt`` (a native ESM folder in NT-v1's shape,
      6-mer tokenizer), ``ext_v2`` (NT-v2's shape with its own code, from a Hugging Face
      cache tree as ``org/nt-v2-tiny`` at :data:`REVISION`, ``trust_remote_code: true``),
      ``ext_gpt`` (a native character-level GPT-2, objective gpt) and ``ext_rgpt`` (a causal
      model with its own code, :func:`remote_causal_folder`, from the same cache tree as
      ``org/dna-gpt-remote`` at :data:`REVISION`, ``trust_remote_code: true``, objective
      gpt); ``finetune.runs`` ext_nt_frozen and ext_v2_lora (on `tasks`; None: every task);
      ``probe.external`` ext_nt and ext_v2; ``vep.models`` (`vep_models`, the caller's own,
      plus the four externals) and ``generate.models`` (`generate_models` plus ext_gpt and
      ext_rgpt; generation needs a pretrain.models entry as generate.reference_model, whose
      corpus prompts it);
    - ``env``: ``HF_HOME`` (the cache tree) and ``HF_HUB_OFFLINE=1``, for the snakemake run.

    Lists replace the caller's (a config merge does not append): pass the caller's own
    models in `vep_models` and `generate_models`."""
    base = Path(base)
    home = base / "hf_home"
    nt = nt_v1_folder(base / "ext_nt", context=context)
    hub_cache(home, REMOTE_REPO_ID, remote_code_folder(base / "ext_v2_src", context=context),
              REVISION)  # fmt: skip
    gpt = causal_folder(base / "ext_gpt", context=context)
    hub_cache(home, REMOTE_CAUSAL_REPO_ID,
              remote_causal_folder(base / "ext_rgpt_src", context=context), REVISION)  # fmt: skip
    only = {"tasks": list(tasks)} if tasks is not None else {}
    config = {
        "models": {
            "external": {
                "ext_nt": {"source": str(nt), "objective": "mlm"},
                "ext_v2": {"source": REMOTE_REPO_ID, "revision": REVISION,
                           "objective": "mlm", "trust_remote_code": True},
                "ext_gpt": {"source": str(gpt), "objective": "gpt"},
                "ext_rgpt": {"source": REMOTE_CAUSAL_REPO_ID, "revision": REVISION,
                             "objective": "gpt", "trust_remote_code": True},
            }
        },
        "finetune": {
            "runs": {
                "ext_nt_frozen": {"model": "ext_nt", "regime": "frozen", **only},
                "ext_v2_lora": {"model": "ext_v2", "regime": "lora", **only},
            }
        },
        "probe": {"external": {"ext_nt": {"model": "ext_nt"}, "ext_v2": {"model": "ext_v2"}}},
        "vep": {"models": [*vep_models, "ext_nt", "ext_v2", "ext_gpt", "ext_rgpt"]},
        "generate": {"models": [*generate_models, "ext_gpt", "ext_rgpt"]},
    }  # fmt: skip
    return {"config": config, "env": {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}}


__all__ = [
    "AUTO_MAP",
    "BPE_SPECIALS",
    "CAUSAL_AUTO_MAP",
    "CAUSAL_CODE_FILES",
    "CHAR_VOCAB",
    "CODE_FILES",
    "REVISION",
    "bert_bpe_folder",
    "bpe_tokenizer",
    "causal_folder",
    "hub_cache",
    "nt_v1_folder",
    "nt_vocab",
    "pickle_only_folder",
    "remote_causal_folder",
    "remote_code_folder",
    "workflow_externals",
]
