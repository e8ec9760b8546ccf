"""DNA and text in one model (DeepEmbed-DNABERT style).

* :mod:`~dnalm.multimodal.corpus`: the paired DNA-text corpus built from the CDS table
  (GenBank ``/product``, ``/gene``, ``/note``, ``/function`` and the sample's species),
  following the CDS splits;
* :mod:`~dnalm.multimodal.tokenizer`: :class:`DNATextTokenizer`, text tokens and DNA BPE
  tokens (inside ``<dna>...</dna>``) in one id space with a modality mask;
* :mod:`~dnalm.multimodal.embedding`: the bi-modal embedding (a text table; DNA tokens
  embedded from their bases by a small base-wise transformer with ALiBi or rotary
  positions);
* :mod:`~dnalm.multimodal.model`: :class:`DNATextConfig` and :class:`DNATextForMaskedLM`
  (a transformers BERT encoder fed with the bi-modal embedding), registered with the
  transformers Auto classes when ``dnalm`` is imported (see ``dnalm/__init__.py``);
* :mod:`~dnalm.multimodal.train` and :mod:`~dnalm.multimodal.evaluate`: the small MLM
  training loop and the evaluation table (what the text buys).
* :mod:`~dnalm.multimodal.probe_embed`: the species probe's embeddings of the three models
  (DNA only; regime ``dnatext``).
"""
