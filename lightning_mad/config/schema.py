"""Typed defaults of every run (OmegaConf structured config). YAML files in ``experiments/`` override them.

Each field that reproduces a quirk of the authors' released code names its source in MAD-SPEC (§13.N).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from lightning_mad.inference.settings import InferenceSettings


@dataclass
class ModelSection:
    name: str = "gru_ris_l"  # a key of lightning_mad.models.MODEL_PRESETS
    kwargs: dict = field(default_factory=dict)  # constructor overrides of this experiment


@dataclass
class TrainInferenceSection:
    """Recurrent inference inside MaD's training step (None = the model family's inference default)."""

    n_iter: Optional[int] = None  # re-applications of the decoder (up to n_iter + 1 passes, spec §3 / §13.13)
    tau: Optional[float] = None  # MSE stopping threshold
    stop_rule: Optional[str] = None  # "batch" = released code (§13.13); "sequence" = per-sequence stopping


@dataclass
class LossSection:
    target: str = "released_irm"  # §13.1: "released_irm" | "voice_magnitude"
    clip_input: bool = True  # §13.2: mixture magnitude clipped to [0, 1] in training only
    masker_loss_gate: bool = True  # §13.3: masker KL added only when L_mask >= 1.5 and L_den >= 0.25 [code:mss]
    mask_loss_threshold: float = 1.5
    good_loss_threshold: float = 0.25
    diag_l1: float = 1e-2  # lambda_1: L1 of the mask layer's main diagonal
    diag_l1_grad: bool = False  # §13.4: False = computed on .data (no gradient) as released
    denoiser_l2: float = 1e-4  # lambda_2: squared Frobenius norm of the denoiser decoder weight
    # MaD's distance D of both terms: "kl" = generalised KL (the paper's, MAD-SPEC §5) | "l1" = L1 of magnitudes
    divergence: str = "kl"
    kwargs: dict = field(default_factory=dict)  # loss settings of other model families (comparators)


@dataclass
class OptimSection:
    name: str = "adam"  # "adam" | "adadelta" (CHA) ; PyTorch defaults otherwise
    lr: float = 1e-4
    batch_size: int = 16
    grad_clip_norm: float = 0.5
    max_epochs: int = 100
    max_steps: int = -1  # > 0: stop after this many optimiser steps (replays a budgeted run exactly)
    excerpts_per_epoch: int = 2048  # random sampler only; the released sampler covers its whole grid
    # learning-rate schedule over optimiser steps: "constant" (the paper's) | "cosine" (lr -> lr * min_factor
    # along a half cosine) | "step" (lr * decay_factor from decay_at * schedule_steps on, Park et al.'s x0.2)
    schedule: str = "constant"
    schedule_steps: int = 0  # steps the schedule spans; 0 = optim.max_steps
    decay_at: float = 0.8  # "step": fraction of schedule_steps where the rate drops
    decay_factor: float = 0.2  # "step": the drop
    min_factor: float = 0.0  # "cosine": final rate / lr
    # > 0: validation, checkpoints and the trained network hold an exponential moving average of the weights,
    # w_avg <- ema_decay * w_avg + (1 - ema_decay) * w after each optimiser step from step ema_start on
    # (lightning_mad/callbacks/averaging.py); 0 = off, as in the released code
    ema_decay: float = 0.0
    ema_start: int = 0


@dataclass
class AugmentSection:
    """Training-data augmentation of the random sampler (none in the released code; all off by default).

    Seeded per excerpt (``default_rng([seed, epoch, index])``), so an epoch repeats exactly.
    """

    gain_db: float = 0.0  # > 0: each source (vocals, accompaniment) scaled by a uniform gain in [-g, +g] dB
    remix: float = 0.0  # probability that the vocals come from one clip and the accompaniment from another
    independent_offsets: bool = False  # remixed sources start at independent random offsets
    # vocals transposed by resampling with probability transpose_p, by a uniform shift in +-transpose_semitones
    transpose_semitones: float = 0.0
    transpose_p: float = 0.0
    snr_db: list = field(default_factory=list)  # [low, high]: vocals scaled by a uniform gain in that range (dB)


@dataclass
class DataSection:
    preset: str = "sample"  # experiments/presets/data/<preset>.yaml
    root: Optional[str] = None
    medleydb_root: Optional[str] = None  # second corpus of the paper's training set
    # MedleyDB's per-stem mixing coefficients (medleydb's mixing_coefficients.yaml): the stems are stored unscaled,
    # so without them the vocal reference differs from the voice inside the MIX by a per-track gain. Presets that
    # train on MedleyDB refuse to start while it is null; "none" accepts unscaled stems explicitly.
    medleydb_mixing_coefficients: Optional[str] = None
    test_mixture: str = "file"  # DSD100 test mixture: "file" | "sum_of_stems" (§13.10, [code:mss])
    read_scale: str = "float"  # DSD100 wav scale: "float" (/32768) | "int16_32767" (released code)
    train: list = field(default_factory=list)  # dataset specs {corpus, root, split, ...}
    val: list = field(default_factory=list)
    test: list = field(default_factory=list)
    sampler: str = "random"  # "random" | "released" (§13.15: groups of 4 tracks, sequences straddle tracks)
    num_workers: int = 0
    cache_dir: Optional[str] = None
    split: str = "test"  # split scored by `lightning-mad evaluate`
    protocols: list = field(default_factory=list)  # default evaluation protocols of this data preset (first = primary)
    holdout: Optional[str] = None  # data=mir1k_loso: the held-out (scored) training singer, abjones | amy
    augment: AugmentSection = field(default_factory=AugmentSection)


@dataclass
class TrainerSection:
    preset: str = "cpu"  # experiments/presets/trainer/<preset>.yaml
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    fast_dev_run: Any = False
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    log_every_n_steps: int = 10
    check_val_every_n_epoch: Optional[int] = 1  # None: val_check_interval (an int) counts batches across epochs
    # None: once per epoch; "DD:HH:MM:SS" (or a float fraction / int batches as Lightning takes it): by time
    val_check_interval: Any = None
    # wall-clock budget "DD:HH:MM:SS" (validation included) on the run's Timer; None = no budget
    max_time: Optional[str] = None
    deterministic: bool = False
    enable_progress_bar: bool = True


@dataclass
class LoggerSection:
    wandb: bool = True
    offline: bool = True  # upload later with `wandb sync`
    project: str = "lightning_mad"
    tags: list = field(default_factory=list)
    group: Optional[str] = None  # W&B group; None = the experiment (the table sets table-<registry>-<profile>-<data>)
    name: Optional[str] = None  # W&B run name; None = the run folder's name (the table sets "<row> seed<N>")


@dataclass
class CheckpointSection:
    enabled: bool = True
    every_n_epochs: int = 1
    # copies of the best checkpoint (so far) as training passes these minutes: checkpoints/best-at-<m>min.ckpt
    snapshot_minutes: list = field(default_factory=list)


@dataclass
class ValidationSection:
    """The separation-quality metric that selects the best checkpoint (``val/sdr_vocals``, maximised)."""

    metric: str = "sdr"  # "sdr": global SDR of whole clips (no BSS Eval projection) | "si_sdr"
    max_seconds: Optional[float] = 30.0  # first seconds of each validation clip that are separated and scored


@dataclass
class RISweepSection:
    every_n_val_epochs: int = 0  # >0: sweep iter/tau on validation tracks every N epochs (RIS models only)
    metric: str = "fast"  # "fast" (cheap global SDR) | "museval"
    max_tracks: Optional[int] = 4


@dataclass
class Config:
    experiment: str = "gru_ris_l"
    description: str = ""
    profile: str = "quick"  # experiments/presets/profile/<name>.yaml: paper | quick | debug
    fidelity: str = "released_code"  # experiments/presets/fidelity/<name>.yaml: released_code | clean
    seed: int = 218  # [code:mss]
    output_dir: str = "runs"
    run_name: Optional[str] = None  # default: <experiment>-<profile>-<data preset>-seed<seed>
    model: ModelSection = field(default_factory=ModelSection)
    train_inference: TrainInferenceSection = field(default_factory=TrainInferenceSection)
    # lightning_mad.inference.settings.InferenceSettings: None = the model family's default
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    data: DataSection = field(default_factory=DataSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    logger: LoggerSection = field(default_factory=LoggerSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    ri_sweep: RISweepSection = field(default_factory=RISweepSection)
    validation: ValidationSection = field(default_factory=ValidationSection)
