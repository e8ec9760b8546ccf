"""Fine-tuning of pretrained models and the baselines beside them (rules in finetune.smk)."""
