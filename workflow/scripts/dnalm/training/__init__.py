"""The training core shared by pretraining and fine-tuning (device, precision, optimizer
groups, schedule, early stopping, curves, checkpoints) and pretraining itself (pretrain.smk)."""
