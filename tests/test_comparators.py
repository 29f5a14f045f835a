"""Comparators of the poster (GRA, MIM-HW, CHA, MIM-DWF): parameter counts, shapes, Wiener filters, the CHA bug
switch, the losses learning on real audio (the bundled MUSDB18 excerpt), and whole-track separation through the shared
separator."""
import numpy as np
import pytest
import torch

from lightning_mad.data.registry import build_dataset, read_splits
from lightning_mad.inference.separator import Separator, separate_vocals
from lightning_mad.models import build_model, count_parameters, model_spec
from lightning_mad.models.comparators.cha import CHAConfig
from lightning_mad.models.comparators.gra import GRAConfig
from lightning_mad.models.comparators.mim_dwf import KerasGRU, MIMDWFConfig, hard_sigmoid
from lightning_mad.models.comparators.mim_hw import MIMHWConfig
from lightning_mad.models.wiener import (alpha_wiener_mask, generalized_wiener_mask, residual_magnitude,
                                         residual_total)
from lightning_mad.systems import SYSTEMS

TINY = ["tiny_gra", "tiny_mim_hw", "tiny_cha", "tiny_mim_dwf"]


# --- parameter counts (MAD-SPEC §9, §12) ---------------------------------------------------------------------------

def _full_size(name: str, **kwargs):
    """A full-size model on the meta device: shapes and counts without allocating or initialising weights."""
    with torch.device("meta"):
        return build_model(name, **kwargs)


def test_mim_dwf_parameter_count_is_keras_arithmetic():
    model = _full_size("mim_dwf")
    keras_gru = lambda i, h: 3 * (i * h + h * h + h)  # noqa: E731  (single bias per gate)
    per_model = 2 * keras_gru(1025, 1025) + keras_gru(2050, 1025) + 2 * (1025 * 1025 + 1025)
    assert per_model == 24_175_650
    assert count_parameters(model.voice) == count_parameters(model.background) == 24_175_650
    assert count_parameters(model) == 48_351_300
    # PyTorch's nn.GRU (two biases) would add 3H per GRU: 9 225 per model
    with torch.device("meta"):
        grus = (torch.nn.GRU(1025, 1025), torch.nn.GRU(1025, 1025), torch.nn.GRU(2050, 1025))
    torch_gru = sum(p.numel() for g in grus for p in g.parameters())
    assert torch_gru + 2 * (1025 * 1025 + 1025) == 24_175_650 + 9_225


def test_mim_hw_parameter_count():
    assert count_parameters(_full_size("mim_hw")) == 5 * 2 * (2049 ** 2 + 2049) == 42_004_500


def test_cha_parameter_count_with_and_without_the_bug():
    conv = 50 * 513 + 2 * 50 + 50 * 50 * 15 + 2 * 50  # two convolutions, each with conv bias + BiasLayer
    bottleneck, branch = 800 * 128 + 128, 128 * 800 + 800
    buggy = count_parameters(_full_size("cha"))
    assert buggy == conv + bottleneck + 3 * branch + 4 == 475_482  # "about 0.48 M": the unused 4th dense not counted
    fixed = count_parameters(_full_size("cha", reuse_second_branch_bug=False))
    assert fixed == buggy + branch == 578_682  # the fixed net uses the 4th dense layer
    assert count_parameters(_full_size("cha", n_sources=2)) == conv + bottleneck + 2 * branch + 2


def test_gra_parameter_count():
    n_in, h, n = 5 * 1025, 1025, 1025
    dense = lambda i, o: i * o + o  # noqa: E731
    assert count_parameters(_full_size("gra")) == dense(n_in, h) + 2 * dense(h, h) + dense(h, 2 * n) == 9_460_750


def test_representations_follow_the_spec():
    configs = {"gra": GRAConfig(), "mim_hw": MIMHWConfig(), "cha": CHAConfig(), "mim_dwf": MIMDWFConfig()}
    spec = {"gra": (2048, 2048, 512), "mim_hw": (2049, 4096, 512), "cha": (1024, 1024, 512),
            "mim_dwf": (1025, 2048, 256)}
    for name, (win, n_fft, hop) in spec.items():
        c = configs[name]
        assert (c.win_length, c.n_fft, c.hop) == (win, n_fft, hop), name
    assert (MIMDWFConfig().seq_len, MIMDWFConfig().context) == (18, 3)  # frames 3:15 estimated, stride 12
    assert (CHAConfig().seq_len, CHAConfig().n_sources) == (30, 4)
    mim_hw = build_model("tiny_mim_hw")
    assert mim_hw.stft.window.sum().item() == pytest.approx(1.0, rel=1e-5)  # w / sum(w) [code:wimp]
    assert (mim_hw.seq_len, mim_hw.context) == (1, 0)


# --- shapes and the separation interface -------------------------------------------------------------------------

@pytest.mark.parametrize("name", TINY)
def test_tiny_shapes_interface_and_config_round_trip(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    n_steps, ctx, n_bins = model.seq_len, model.context, model.stft.n_bins
    x = torch.rand(3, n_steps, n_bins)
    # MaD's settings are ignored: the separator passes a model only the settings it declares
    settings = Separator(model, overrides=dict(n_iter=10, tau=1e-3, stop_rule="batch", wiener_alpha=None))
    est = model.estimate(x, **settings.model_settings)
    assert est.shape == (3, n_steps - 2 * ctx, n_bins)
    assert torch.isfinite(est).all() and (est >= 0).all()
    rebuilt = type(model)(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval().estimate(x), est)


@pytest.mark.parametrize("name", ["tiny_gra", "tiny_cha", "tiny_mim_dwf", "tiny_mim_hw"])
def test_vocal_estimates_are_masks_of_the_mixture(name):
    """mask in [0, 1]: vocals <= |X|, so the separator's mixture - vocals is the (1 - mask)|X| accompaniment."""
    torch.manual_seed(1)
    model = build_model(name).eval()
    x = torch.rand(4, model.seq_len, model.stft.n_bins) * 3
    centre = x[:, model.context : model.seq_len - model.context]
    assert (model.estimate(x) <= centre * (1 + 1e-6) + 1e-12).all()


def test_mim_dwf_post_filters_and_alpha():
    torch.manual_seed(0)
    model = build_model("tiny_mim_dwf").eval()
    x = torch.rand(2, 8, 65)
    wiener2 = model.estimate(x)
    assert torch.equal(wiener2, model.estimate(x, wiener_alpha=2.0))
    assert not torch.allclose(wiener2, model.estimate(x, wiener_alpha=1.0))
    binary = model.estimate(x, post_filter="binary")
    centre = x[:, 2:6]
    assert torch.all((binary == 0) | (binary == centre))
    assert model.estimate(x, post_filter="none").shape == wiener2.shape


def test_mim_hw_vocal_estimate_modes():
    torch.manual_seed(0)
    model = build_model("tiny_mim_hw").eval()
    x = torch.rand(5, 1, 129)
    direct = model.estimate(x, vocal_estimate="direct")
    torch.testing.assert_close(direct, model(x)["vocals"])
    masked = model.estimate(x)  # alpha 1.3, released alphaWiener
    mask = alpha_wiener_mask(direct, residual_total(x, direct), 1.3)
    torch.testing.assert_close(masked, mask * x)
    assert not torch.allclose(masked, model.estimate(x, wiener_form="standard"))


# --- Wiener filters ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [1.0, 1.3, 2.0])
def test_generalized_wiener_mask_values(alpha):
    torch.manual_seed(0)
    v_hat, b_hat = torch.rand(3, 7, 33) * 3, torch.rand(3, 7, 33) * 3
    v_hat[0, 0, :4] = 0.0
    b_hat[0, 0, :2] = 0.0  # both zero on 2 bins: mask 1, as released
    mask = generalized_wiener_mask(v_hat, b_hat, alpha)
    assert ((mask >= 0) & (mask <= 1)).all()
    assert torch.all(mask[0, 0, :2] == 1.0)
    assert torch.all(mask[0, 0, 2:4] < 1e-12)  # no voice, some background: (0 + eps) / (|B|^a + eps) ~ 0
    expected = v_hat ** alpha / (v_hat ** alpha + b_hat ** alpha)
    expected[0, 0, :2] = 1.0
    torch.testing.assert_close(mask, expected)
    # one entry by hand: |S| = 3, |R| = 1 -> 3^a / (3^a + 1); |S| = |R| -> 1/2 for every alpha
    two = generalized_wiener_mask(torch.tensor([3.0, 0.7]), torch.tensor([1.0, 0.7]), alpha)
    assert two.tolist() == pytest.approx([3.0 ** alpha / (3.0 ** alpha + 1.0), 0.5], rel=1e-6)
    # a larger exponent sharpens the mask: up where the voice dominates, down where the background does
    sharper = generalized_wiener_mask(v_hat, b_hat, alpha + 0.5)
    louder, quieter = v_hat > 1.01 * b_hat, (b_hat > 1.01 * v_hat) & (v_hat > 0)  # zero voice: the eps floor
    assert louder.any() and quieter.any()
    assert torch.all(sharper[louder] > mask[louder]) and torch.all(sharper[quieter] < mask[quieter])


@pytest.mark.parametrize("alpha", [1.0, 1.3, 1.33])
def test_alpha_wiener_mask_of_mim_hw(alpha):
    torch.manual_seed(0)
    mix = torch.rand(4, 1, 65)
    s_hat = torch.rand_like(mix) * 1.5  # may exceed the mixture: the total is max(|X|, S)
    total = residual_total(mix, s_hat)
    torch.testing.assert_close(total, torch.maximum(mix, s_hat))
    assert (residual_magnitude(mix, s_hat) >= 0).all()
    assert residual_magnitude(torch.tensor([1.0, 0.5]), torch.tensor([0.25, 2.0])).tolist() == [0.75, 0.0]
    mask = alpha_wiener_mask(s_hat, total, alpha)
    assert ((mask >= 0) & (mask <= 1 + 1e-6)).all()
    over = s_hat >= mix  # the estimate reaches the mixture: the total is the estimate itself, the mask exactly 1
    assert over.any() and (~over).any()
    assert torch.all(mask[over] == 1.0) and torch.all(mask[~over] < 1.0)
    torch.testing.assert_close(mask, (s_hat / torch.maximum(mix, s_hat)) ** alpha)
    # by hand: |S| = 0.5 of a total 1 -> 0.5^a; a zero estimate -> (0 + eps) / (|X|^a + eps) ~ 0
    s_two = torch.tensor([0.5, 0.0])
    one = alpha_wiener_mask(s_two, residual_total(torch.tensor([1.0, 0.8]), s_two), alpha)
    assert one[0].item() == pytest.approx(0.5 ** alpha, rel=1e-6) and 0 <= one[1].item() < 1e-12


# --- Keras GRU and the CHA bug switch ----------------------------------------------------------------------------

def test_hard_sigmoid_and_keras_gru_step():
    assert hard_sigmoid(torch.tensor([-3.0, -2.5, 0.0, 1.0, 2.5, 9.0])).tolist() == pytest.approx(
        [0.0, 0.0, 0.5, 0.7, 1.0, 1.0])
    torch.manual_seed(0)
    gru = KerasGRU(2, 3)
    with torch.no_grad():
        gru.bias.normal_()
    x = torch.randn(1, 2, 2)
    out = gru(x)
    # reference, written out per gate (Keras 1: reset gate before the recurrent product, one bias)
    W, U, b = gru.weight_ih.detach(), gru.weight_hh.detach(), gru.bias.detach()
    h = torch.zeros(3)
    for t in range(2):
        z = hard_sigmoid(W[:3] @ x[0, t] + b[:3] + U[:3] @ h)
        r = hard_sigmoid(W[3:6] @ x[0, t] + b[3:6] + U[3:6] @ h)
        cand = torch.tanh(W[6:] @ x[0, t] + b[6:] + U[6:] @ (r * h))
        h = z * h + (1 - z) * cand
        torch.testing.assert_close(out[0, t], h)
    back = gru(x, go_backwards=True)  # processing order: row 0 has consumed the last frame only
    torch.testing.assert_close(back[0, 0], gru(x[:, 1:])[0, 0])


def test_mim_dwf_switches_change_the_function():
    x = torch.rand(2, 8, 65)
    outs = {}
    for kwargs in ({}, {"gate": "sigmoid"}, {"backward_alignment": "aligned"}):
        torch.manual_seed(3)
        outs[str(kwargs)] = build_model("tiny_mim_dwf", **kwargs).eval().estimate(x)
    values = list(outs.values())
    assert not torch.allclose(values[0], values[1]) and not torch.allclose(values[0], values[2])


def test_cha_bug_switch():
    torch.manual_seed(0)
    buggy = build_model("tiny_cha").eval()
    fixed = build_model("tiny_cha", reuse_second_branch_bug=False).eval()
    x = torch.rand(2, 10, 65)
    with torch.no_grad():
        buggy.output_bias.zero_()
        out = buggy(x)["outputs"]
    torch.testing.assert_close(out[:, 3], out[:, 1])  # "other" is rebuilt from the bass branch's dense output
    # the fixed net with the bug's weights and its 4th dense layer = a copy of the 2nd is the buggy function
    state = buggy.state_dict()
    state.update({k.replace("branches.1.", "branches.3."): v for k, v in state.items() if "branches.1." in k})
    fixed.load_state_dict(state)
    torch.testing.assert_close(fixed.estimate(x), buggy.estimate(x))
    with torch.no_grad():
        fixed.branches[3].weight.normal_(0, 0.5)  # a 4th branch of its own: a different function
    assert not torch.allclose(fixed.estimate(x), buggy.estimate(x))


def test_cha_masks_sum_to_one_and_sources_to_the_mixture():
    torch.manual_seed(0)
    for n_sources in (4, 2):
        model = build_model("tiny_cha", n_sources=n_sources).eval()
        x = torch.rand(2, 10, 65)
        out = model(x)
        assert out["masks"].shape == (2, n_sources, 10, 65)
        torch.testing.assert_close(out["masks"].sum(1), torch.ones(2, 10, 65))
        torch.testing.assert_close(out["sources"].sum(1), x)


# --- losses learn on real audio -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_track(sample_root) -> dict[str, torch.Tensor]:
    """The four mono stems of the bundled MUSDB18 excerpt (Falcon 69 .stem.mp4, ~5.9 s once trimmed), decoded by the
    project's loader with the ``test`` entry of ``data/sample/splits.yaml`` (its 0.1 s trim included)."""
    entry = next(e for e in read_splits(sample_root / "splits.yaml")["test"] if e["corpus"] == "musdb18")
    track = build_dataset(entry, base_dir=sample_root)[0]
    assert track.native_rate == 44100 and set(track.stems) == {"bass", "drums", "other", "vocals"}
    return track.stems


def _system(name: str, **loss_kwargs):
    cls_key, kwargs = model_spec(name)
    return SYSTEMS[cls_key](model_class=cls_key, model_kwargs=kwargs, loss={"kwargs": loss_kwargs},
                            optim={"name": "adam", "lr": 1e-3}, train_inference={}, inference={})


def _batch(system, stems: dict[str, torch.Tensor], n_batch: int) -> dict[str, torch.Tensor]:
    """Excerpts of the system's length at evenly spaced offsets -> magnitudes with the model's STFT."""
    length = system.excerpt_samples
    total = stems["vocals"].shape[0]
    starts = np.linspace(0, total - length, n_batch).astype(int)
    cut = lambda s: torch.stack([s[i : i + length] for i in starts])  # noqa: E731  (B, S)
    stack = torch.stack([cut(stems[k]) for k in ("bass", "drums", "other", "vocals")], dim=1)  # (B, 4, S)
    audio = {"mixture": stack.sum(1), "vocals": stack[:, 3], "accompaniment": stack[:, :3].sum(1), "stems": stack}
    with torch.no_grad():
        return {k: system.magnitudes(v) for k, v in audio.items()}


@pytest.mark.parametrize("name, n_batch", [("tiny_gra", 64), ("tiny_mim_hw", 64), ("tiny_cha", 16),
                                           ("tiny_mim_dwf", 16)])
def test_sequence_loss_decreases_with_adam(name, n_batch, real_track):
    torch.manual_seed(0)
    system = _system(name)
    seqs = _batch(system, real_track, n_batch)
    assert seqs["mixture"].shape == (n_batch, system.model.seq_len, system.model.stft.n_bins)
    assert seqs["stems"].shape[1:3] == (4, system.model.seq_len)
    optimizer = system.configure_optimizers()
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss, logs = system.sequence_loss(seqs)
        assert torch.isfinite(loss) and all(torch.isfinite(v) for v in logs.values())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("members, combine", [(["binary_mask", "soft_mask", "source_mask", "discriminative_mask"],
                                               "dnn"), (["binary_mask", "soft_mask"], "mean")])
def test_gra_ensembles_learn(members, combine, real_track):
    torch.manual_seed(0)
    cls_key, kwargs = model_spec("tiny_gra", members=members, combine=combine)
    system = SYSTEMS[cls_key](model_class=cls_key, model_kwargs=kwargs, loss={}, optim={"lr": 1e-3},
                              train_inference={}, inference={})
    seqs = _batch(system, real_track, 64)
    optimizer = system.configure_optimizers()
    first = None
    for _ in range(20):
        optimizer.zero_grad()
        loss, logs = system.sequence_loss(seqs)
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first
    assert set(logs) == {f"loss_{m}" for m in members} | ({"loss_combiner"} if combine == "dnn" else set())
    for name, p in system.model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("name, kwargs", [("tiny_gra", {}), ("tiny_mim_hw", {}), ("tiny_cha", {}),
                                          ("tiny_cha", {"reuse_second_branch_bug": False}), ("tiny_mim_dwf", {})])
def test_every_parameter_gets_a_finite_gradient(name, kwargs):
    torch.manual_seed(0)
    cls_key, model_kwargs = model_spec(name, **kwargs)
    system = SYSTEMS[cls_key](model_class=cls_key, model_kwargs=model_kwargs, loss={}, optim={},
                              train_inference={}, inference={})
    n_steps, n_bins = system.model.seq_len, system.model.stft.n_bins
    stems = torch.rand(8, 4, n_steps, n_bins)
    seqs = {"mixture": stems.sum(1), "vocals": stems[:, 3], "accompaniment": stems[:, :3].sum(1), "stems": stems}
    loss, _ = system.sequence_loss(seqs)
    loss.backward()
    for pname, p in system.model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_cha_needs_stems_for_four_sources_and_runs_two_without(real_track):
    system = _system("tiny_cha")
    seqs = _batch(system, real_track, 4)
    del seqs["stems"]
    with pytest.raises(ValueError, match="n_sources=2"):
        system.sequence_loss(seqs)
    cls_key, kwargs = model_spec("tiny_cha", n_sources=2)
    two = SYSTEMS[cls_key](model_class=cls_key, model_kwargs=kwargs, loss={}, optim={}, train_inference={},
                           inference={})
    loss, _ = two.sequence_loss(seqs)
    assert torch.isfinite(loss)
    # configured fallback: the 4-source net with the 2-source loss on vocals + summed accompaniment estimates
    fallback = _system("tiny_cha", without_stems="two_source")
    fallback.model.load_state_dict(system.model.state_dict())
    with pytest.warns(UserWarning, match="no stems"):
        loss, logs = fallback.sequence_loss(seqs)
    out = system.model(seqs["mixture"])["sources"]
    own = (out[:, 0] - seqs["vocals"]).pow(2).sum() * 0.3 ** 2
    torch.testing.assert_close(logs["vocals_error"], own.detach())
    assert torch.isfinite(loss)


def test_cha_adadelta_uses_lasagne_rho():
    cls_key, kwargs = model_spec("tiny_cha")
    system = SYSTEMS[cls_key](model_class=cls_key, model_kwargs=kwargs, loss={}, optim={"name": "adadelta",
                              "lr": 1.0}, train_inference={}, inference={})
    optimizer = system.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adadelta) and optimizer.param_groups[0]["rho"] == 0.95


def test_mim_dwf_clips_each_model_separately():
    system = _system("tiny_mim_dwf")
    for p in system.model.parameters():
        p.grad = torch.ones_like(p)
    system.configure_gradient_clipping(None, gradient_clip_val=0.35)
    for part in (system.model.voice, system.model.background):
        norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in part.parameters()))
        assert norm.item() == pytest.approx(0.35, rel=1e-4)


# --- whole-track separation through the shared separator ---------------------------------------------------------

class _Accompaniment(torch.nn.Module):
    """The complement of a model's vocal estimate, |X| - vocals = (1 - mask)|X|, with the same interface."""

    def __init__(self, model):
        super().__init__()
        self.model, self.stft, self.seq_len, self.context = model, model.stft, model.seq_len, model.context

    def estimate(self, x, **kwargs):
        return x[:, self.context : x.shape[1] - self.context] - self.model.estimate(x, **kwargs)


@pytest.mark.parametrize("name", TINY)
def test_separate_two_seconds(name, real_track):
    torch.manual_seed(0)
    model = build_model(name).eval()
    mixture = sum(s[: 2 * 44100] for s in real_track.values())
    settings = dict(batch_size=256, block_frames=256, n_iter=10, tau=1e-3)  # MaD's knobs are ignored
    vocals = separate_vocals(model, mixture, **settings)
    assert vocals.shape == mixture.shape and torch.isfinite(vocals).all()
    # a real split: neither silence nor the whole mixture (either would make the check below trivially true)
    assert 0.01 < (vocals.norm() / mixture.norm()).item() < 0.99
    accompaniment = mixture - vocals
    # the separator's accompaniment equals the synthesis of the (1 - mask)|X| accompaniment magnitude
    synthesised = separate_vocals(_Accompaniment(model), mixture, **settings)
    torch.testing.assert_close(synthesised, accompaniment, rtol=0, atol=2e-4)
