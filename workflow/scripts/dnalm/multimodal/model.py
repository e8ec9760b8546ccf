"""The DNA+text masked LM: the bi-modal embedding on a transformers BERT encoder.

:class:`DNATextConfig` is a ``BertConfig`` (model type ``dnalm_dnatext``) with the fields
of the DNA embedder; ``vocab_size`` is the unified vocabulary (text + DNA), ``text_vocab_size``
the offset of the DNA ids (0 for the DNA-only variant, whose ids are the DNA tokenizer's),
``dna_tokens`` the DNA vocabulary's token strings (the BPE-to-base map is rebuilt from them,
so a folder is self-contained).

:class:`DNATextForMaskedLM` embeds ids with
:class:`~dnalm.multimodal.embedding.BiModalEmbedding`, feeds them to ``BertModel`` as
``inputs_embeds`` with the modality mask as token type ids (BERT adds its learned absolute
positions on top), and scores every position over the unified vocabulary with BERT's MLM head
(not tied: DNA embeddings are computed, not a table). ``labels`` use -100 for unscored
positions, as in transformers.

:class:`DNATextPreTrainedTokenizer` is the unified tokenizer
(:class:`~dnalm.multimodal.tokenizer.DNATextTokenizer`, saved in the model folder's
``tokenizer/``) as a transformers tokenizer: :func:`save_auto_tokenizer` writes the folder's
``tokenizer_config.json`` that names it.

:func:`register` adds the config and model to ``AutoConfig`` / ``AutoModel`` /
``AutoModelForMaskedLM`` and the tokenizer to ``AutoTokenizer``; after it (the model loader
calls it for a folder of this type: :func:`dnalm.modeling.loader.register_model_types`) a
saved folder loads whole with ``AutoConfig``, ``AutoTokenizer`` and
``AutoModelForMaskedLM.from_pretrained(folder)``, and no ``trust_remote_code``. Importing
this module registers nothing.
"""

from __future__ import annotations

import copy
import os
from typing import Any, ClassVar

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedTokenizer,
)
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.bert.modeling_bert import BertOnlyMLMHead, BertPreTrainedModel

from dnalm.core.artifacts import DNATEXT_TOKENIZER_JSON
from dnalm.multimodal.embedding import BASES, BiModalEmbedding, DnaTokenEmbedder, dim_check
from dnalm.multimodal.tokenizer import TEXT_SPECIALS, DNATextTokenizer

MODEL_TYPE = "dnalm_dnatext"


class DNATextConfig(BertConfig):
    """BERT config plus the DNA embedder's fields (module docstring)."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        text_vocab_size: int = 0,
        dna_tokens: list[str] | None = None,
        max_bpe_len: int = 16,
        base_dim: int = 32,
        base_layers: int = 1,
        base_heads: int = 2,
        base_positions: str = "alibi",
        pooling: str = "mean",
        trainable_map: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("tie_word_embeddings", False)
        kwargs.setdefault("type_vocab_size", 2)
        super().__init__(**kwargs)
        self.text_vocab_size = int(text_vocab_size)
        self.dna_tokens = list(dna_tokens or [])
        self.max_bpe_len = int(max_bpe_len)
        self.base_dim = int(base_dim)
        self.base_layers = int(base_layers)
        self.base_heads = int(base_heads)
        self.base_positions = base_positions
        self.pooling = pooling
        self.trainable_map = bool(trainable_map)
        self.vocab_size = self.text_vocab_size + len(self.dna_tokens) or self.vocab_size


class DNATextForMaskedLM(BertPreTrainedModel):
    """Bi-modal embedding + BERT encoder + MLM head over the unified vocabulary."""

    config_class = DNATextConfig
    base_model_prefix = "bert"
    _tied_weights_keys: ClassVar[dict[str, str]] = {}

    def __init__(self, config: DNATextConfig) -> None:
        super().__init__(config)
        dim_check(config.hidden_size, config.num_attention_heads)
        dna = DnaTokenEmbedder(
            config.dna_tokens,
            config.hidden_size,
            max_bpe_len=config.max_bpe_len,
            base_dim=config.base_dim,
            base_layers=config.base_layers,
            base_heads=config.base_heads,
            positions=config.base_positions,
            pooling=config.pooling,
            trainable_map=config.trainable_map,
        )
        self.embed = BiModalEmbedding(config.text_vocab_size, dna, config.hidden_size)
        inner = copy.deepcopy(config)
        inner.vocab_size = 1  # BERT's own token table is unused (inputs_embeds)
        self.bert = BertModel(inner, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_input_embeddings(self):  # the unified ids have no single table
        return None

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def modality(self, input_ids: torch.Tensor) -> torch.Tensor:
        """1 where `input_ids` are DNA tokens, 0 for text (the modality mask)."""
        return (input_ids >= self.config.text_vocab_size).long()

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ):
        """The BERT encoder's output over the bi-modal embeddings (no MLM head); the modality
        mask is derived from the ids when not given."""
        if modality_mask is None:
            modality_mask = self.modality(input_ids)
        return self.bert(
            inputs_embeds=self.embed(input_ids),
            attention_mask=attention_mask,
            token_type_ids=modality_mask,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> MaskedLMOutput:
        kwargs.pop("token_type_ids", None)
        out = self.encode(input_ids, attention_mask, modality_mask, output_hidden_states)
        logits = self.cls(out.last_hidden_state)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(
                logits.float().view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100
            )
        return MaskedLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


#: the folder of the unified tokenizer inside a DNA+text model folder
TOKENIZER_SUBDIR = "tokenizer"


class DNATextPreTrainedTokenizer(PreTrainedTokenizer):
    """The DNA+text tokenizer (``tokenizer/`` of a model folder) behind the transformers
    tokenizer interface, so that ``AutoTokenizer.from_pretrained(folder)`` loads it (after
    :func:`register`). ``tokenizer(sentence)`` gives the ids of
    :meth:`DNATextTokenizer.encode` (``[CLS] ... [SEP]``, DNA inside ``<dna>...</dna>``);
    ``decode`` is :meth:`DNATextTokenizer.decode`. Token strings are the text tokenizer's
    and the DNA tokens' bases (a DNA token whose string is also a text token's is written
    ``[dna]<string>``). The model takes ``input_ids`` and ``attention_mask``; it derives
    the modality mask from the ids."""

    vocab_files_names: ClassVar[dict[str, str]] = {
        "dnatext_file": f"{TOKENIZER_SUBDIR}/{DNATEXT_TOKENIZER_JSON}"
    }
    model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]

    def __init__(self, dnatext_file: str, **kwargs: Any) -> None:
        self.dnatext = DNATextTokenizer.load(os.path.dirname(dnatext_file))
        tok = self.dnatext
        self._tokens: list[str] = []
        taken: set[str] = set()
        for i in range(tok.vocab_size):
            t = tok.token(i)
            if t in taken:  # a DNA token spelled like a text token (or a DNA special)
                t = f"[dna]{t}"
            self._tokens.append(t)
            taken.add(t)
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        pad, unk, cls, sep, mask = TEXT_SPECIALS
        for key, value in (
            ("pad_token", pad), ("unk_token", unk), ("cls_token", cls), ("sep_token", sep),
            ("mask_token", mask),
        ):  # fmt: skip
            kwargs.setdefault(key, value)
        kwargs.setdefault("model_max_length", tok.model_max_length)
        kwargs.setdefault("special_tokens_pattern", "cls_sep")
        super().__init__(**kwargs)

    @property
    def vocab_size(self) -> int:
        return self.dnatext.vocab_size

    def get_vocab(self) -> dict[str, int]:
        return dict(self._ids)

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        ids = self.dnatext.encode(text, add_special_tokens=False)["input_ids"]
        return [self._tokens[i] for i in ids]

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return self.tokenize(text)

    def _convert_token_to_id(self, token: str) -> int:
        return self._ids.get(token, self.dnatext.unk_id)

    def _convert_id_to_token(self, index: int) -> str:
        return self._tokens[index]

    def _decode(self, token_ids, skip_special_tokens: bool = False, **kwargs: Any) -> str:
        ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        return self.dnatext.decode(ids, skip_special_tokens=skip_special_tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None):
        """The unified tokenizer's folder (``tokenizer/``) inside `save_directory`."""
        folder = self.dnatext.save(os.path.join(save_directory, TOKENIZER_SUBDIR))
        return (str(folder / DNATEXT_TOKENIZER_JSON),)


def save_auto_tokenizer(model_dir: str | os.PathLike) -> None:
    """Write the ``tokenizer_config.json`` (and special tokens) of a DNA+text model folder
    whose unified tokenizer is saved in ``tokenizer/``, naming
    :class:`DNATextPreTrainedTokenizer`: the folder then loads with ``AutoTokenizer`` after
    :func:`register`."""
    folder = os.fspath(model_dir)
    hf = DNATextPreTrainedTokenizer(os.path.join(folder, TOKENIZER_SUBDIR, DNATEXT_TOKENIZER_JSON))
    hf.save_pretrained(folder)


def register() -> None:
    """Register the config, model and tokenizer with the transformers Auto classes
    (idempotent)."""
    if MODEL_TYPE in CONFIG_MAPPING:
        return
    AutoConfig.register(MODEL_TYPE, DNATextConfig)
    AutoModel.register(DNATextConfig, DNATextForMaskedLM)
    AutoModelForMaskedLM.register(DNATextConfig, DNATextForMaskedLM)
    AutoTokenizer.register(DNATextConfig, tokenizer_class=DNATextPreTrainedTokenizer)


def build_config(
    tokens: list[str], text_vocab_size: int, arch: dict[str, Any], max_len: int
) -> DNATextConfig:
    """A config from the ``dnatext`` config's ``model`` block (hidden_size, layers, heads,
    base_* and pooling keys) for DNA token strings `tokens`."""
    longest = max((len(t) for t in tokens if set(t) <= set(BASES)), default=1)
    return DNATextConfig(
        text_vocab_size=text_vocab_size,
        dna_tokens=tokens,
        max_bpe_len=int(arch.get("max_bpe_len") or longest),
        base_dim=int(arch.get("base_dim", 32)),
        base_layers=int(arch.get("base_layers", 1)),
        base_heads=int(arch.get("base_heads", 2)),
        base_positions=arch.get("base_positions", "alibi"),
        pooling=arch.get("pooling", "mean"),
        trainable_map=bool(arch.get("trainable_map", False)),
        hidden_size=int(arch.get("hidden_size", 64)),
        num_hidden_layers=int(arch.get("num_hidden_layers", 2)),
        num_attention_heads=int(arch.get("num_attention_heads", 2)),
        intermediate_size=int(arch.get("intermediate_size", 4 * arch.get("hidden_size", 64))),
        max_position_embeddings=int(max_len),
        pad_token_id=0,
    )
