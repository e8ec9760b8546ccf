"""Errors meant for the user: one clear message that names the file, line or sample at
fault and says how to fix it. Anything else that escapes is a bug in dnalm."""


class DnalmError(Exception):
    """Base class of every error dnalm raises on purpose for bad input or bad config."""


class SampleSheetError(DnalmError):
    """The sample sheet (config/samples.tsv or the sheet named by `samples`) is invalid."""


class ConfigError(DnalmError):
    """A config value is invalid."""


class DownloadError(DnalmError):
    """A download failed for good (after retries), or its content failed verification."""


class InputFormatError(DnalmError):
    """An input file (GBFF, FASTA, GFF/GTF, task table) is malformed."""


class TrainingDivergedError(DnalmError):
    """A training or validation loss became NaN or infinite (pretraining, fine-tuning, the
    one-hot CNN); the message names the step and says what to change."""
