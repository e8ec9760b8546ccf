"""Model architectures: the language models and their presets, task heads, the one-hot CNN,
and the one loader of model folders."""
