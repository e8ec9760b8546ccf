"""The one choice of compute device for every stage (pretraining, fine-tuning, the one-hot
CNN, embeddings): :func:`select_device`; and whether a device runs bf16
(:func:`bf16_supported`); results gathered on the device and copied to the host at once
(:func:`cat_padded`, :func:`to_host`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dnalm.core.errors import ConfigError


def mps_available() -> bool:
    """True when Apple's Metal (MPS) backend can run here."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(
    device: str | torch.device | None = "auto", local_rank: int | None = None
) -> torch.device:
    """The torch device for `device`: "auto" (or None) picks CUDA when available, else
    Apple MPS when available, else the CPU; "cpu", "cuda", "cuda:1", "mps" are taken as they
    are, and a CUDA or MPS device that is not available is a ConfigError (not a failure at
    the first tensor). `local_rank` (a torchrun process's GPU) selects ``cuda:<local_rank>``
    when the choice is a bare CUDA device."""
    want = "auto" if device is None else str(device)
    if want == "auto":
        if torch.cuda.is_available():
            chosen = torch.device("cuda")
        elif mps_available():
            chosen = torch.device("mps")
        else:
            chosen = torch.device("cpu")
    else:
        try:
            chosen = torch.device(want)
        except RuntimeError as e:
            raise ConfigError(
                f"device {want!r} is not a device name; use auto, cpu, cuda, cuda:N or mps"
            ) from e
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {want!r} was requested but no CUDA device is available")
        if chosen.type == "mps" and not mps_available():
            raise ConfigError(f"device {want!r} was requested but Apple MPS is not available")
    if chosen.type == "cuda" and chosen.index is None and local_rank is not None:
        chosen = torch.device("cuda", local_rank)
    return chosen


def bf16_supported(device: str | torch.device) -> bool:
    """True when `device` is a CUDA GPU with bf16 arithmetic (compute capability 8.0 and
    newer: A100, H100, RTX 30xx/40xx): the one test behind ``precision: auto`` and the bf16
    autocast of inference. Older GPUs (V100, T4, RTX 20xx) emulate bf16 slowly or not at
    all, so they run fp32; the CPU and MPS run fp32 under "auto" as well."""
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return False
    # the device's own capability (cuda:N): a machine may mix GPU generations
    return tuple(torch.cuda.get_device_capability(dev)) >= (8, 0)


def to_host(tensors: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """NumPy copies of `tensors` (any devices, shapes and dtypes) made with one
    device-to-host copy, the one host synchronisation: their bytes are packed into one buffer
    on the device, copied, and cut apart again on the host."""
    if not tensors:
        return []
    flat = [t.detach().contiguous().reshape(-1).view(torch.uint8) for t in tensors]
    host = torch.cat([f.to(flat[0].device) for f in flat]).cpu()  # the one copy
    out, at = [], 0
    for t, f in zip(tensors, flat, strict=True):
        part = host[at : at + f.numel()].view(t.dtype).reshape(t.shape)
        out.append(part.numpy())
        at += f.numel()
    return out


def cat_padded(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """`parts` concatenated along axis 0, on their device, each padded with zeros along
    axis 1 to the widest when they have two or more axes of different widths there."""
    if parts[0].ndim >= 2 and len({p.shape[1] for p in parts}) > 1:
        width = max(p.shape[1] for p in parts)
        padded = []
        for p in parts:
            full = p.new_zeros((p.shape[0], width, *p.shape[2:]))
            full[:, : p.shape[1]] = p
            padded.append(full)
        parts = padded
    return torch.cat(list(parts))
