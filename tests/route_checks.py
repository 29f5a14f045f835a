"""Helpers shared by the CPU tests of the GPU path (test_mixed_precision.py) and the CUDA tests (test_gpu.py):
one forward and backward of a model, the relative error of two results, and the losses of a few Lightning steps."""
from __future__ import annotations

import torch


def forward_and_grads(model: torch.nn.Module, x: torch.Tensor, **settings) -> dict[str, torch.Tensor]:
    """A training forward of ``model`` on ``x`` (B, T, N) with ``settings`` and the backward of a fixed weighted sum of
    its estimates: ``{"out:<key>": estimate, "grad:<parameter>": gradient}``, all float32 on the CPU."""
    model.zero_grad(set_to_none=True)
    out = model(x, **settings)
    keys = [k for k in ("vocals", "masker", "twin_masker", "h_dec_affine") if k in out]
    gen = torch.Generator().manual_seed(1)
    loss = sum((out[k].float() * torch.rand(out[k].shape, generator=gen).to(out[k].device)).sum() for k in keys)
    loss.backward()
    result = {f"out:{k}": out[k].detach().float().cpu() for k in keys}
    result.update({f"grad:{n}": p.grad.detach().float().cpu() for n, p in model.named_parameters()
                   if p.grad is not None})
    return result


def count_gru_calls(monkeypatch) -> list[bool]:
    """Patch ``nn.GRU.forward`` to record each call (whether gradients were on); returns the growing record."""
    calls: list[bool] = []
    original = torch.nn.GRU.forward

    def counted(self, *args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.GRU, "forward", counted)
    return calls


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||`` (Frobenius; 0 when both are zero)."""
    norm = float(b.double().norm())
    diff = float((a.double() - b.double()).norm())
    return diff / norm if norm > 0 else diff


def worst(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[str, float]:
    """The entry of ``a`` furthest from ``b``'s (same keys required) and its relative error."""
    assert a.keys() == b.keys(), set(a) ^ set(b)
    errors = {k: relative_error(a[k], b[k]) for k in a}
    key = max(errors, key=errors.get)
    return key, errors[key]


def train_losses(args: list[str], accelerator: str, precision: str, steps: int, seed: int = 0) -> list[float]:
    """The training losses of the first ``steps`` optimiser steps of the run configured by ``args`` (load_config
    arguments), on ``accelerator`` at Lightning ``precision``, from ``seed``: same weights, same batches for every
    accelerator and precision. No validation, checkpoint or logger."""
    import pytorch_lightning as pl

    from lightning_mad.config.load import load_config
    from lightning_mad.train import build_datamodule, build_system

    cfg = load_config([*args, f"seed={seed}", "logger.wandb=false"])
    pl.seed_everything(seed, workers=True)
    system = build_system(cfg)
    datamodule = build_datamodule(cfg, system)
    datamodule.num_workers, datamodule.pin_memory = 0, False  # the same batches in the main process

    losses: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=precision, max_steps=steps,
                         limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, num_sanity_val_steps=0,
                         gradient_clip_val=cfg.optim.grad_clip_norm, gradient_clip_algorithm="norm",
                         callbacks=[Record()])
    trainer.fit(system, datamodule=datamodule)
    return losses
