"""Tokenizers and token corpora (rules in tokenize.smk)."""
