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

:func:`register` adds both to ``AutoConfig`` / ``AutoModel`` / ``AutoModelForMaskedLM``;
after it (the model loader calls it for a folder of this type:
:func:`dnalm.modeling.loader.register_model_types`) a saved folder loads with
``AutoModelForMaskedLM.from_pretrained(folder)`` and no ``trust_remote_code``. Importing
this module registers nothing.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, BertConfig, BertModel
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.bert.modeling_bert import BertOnlyMLMHead, BertPreTrainedModel

from dnalm.multimodal.embedding import BASES, BiModalEmbedding, DnaTokenEmbedder, dim_check

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


def register() -> None:
    """Register the config and model with the transformers Auto classes (idempotent)."""
    if MODEL_TYPE in CONFIG_MAPPING:
        return
    AutoConfig.register(MODEL_TYPE, DNATextConfig)
    AutoModel.register(DNATextConfig, DNATextForMaskedLM)
    AutoModelForMaskedLM.register(DNATextConfig, DNATextForMaskedLM)


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
