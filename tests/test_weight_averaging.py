"""optim.ema_decay: checkpoints hold the exponential moving average of the weights, training itself is unchanged,
the average follows the weights before optim.ema_start, and a resumed run continues the average."""
from __future__ import annotations

import pytest
import torch

from lightning_mad.config.load import load_config
from lightning_mad.train import train

ARGS = ["experiment=tiny", "profile=quick", "data.val=[]", "trainer.val_check_interval=null",
        "logger.wandb=false", "trainer.enable_progress_bar=false"]
DECAY = 0.75


def _fit(tmp_path, name: str, *extra: str) -> dict:
    """The last checkpoint of a tiny seeded run: ``{"average": state_dict, "raw": current_model_state or the
    state_dict}``."""
    result = train(load_config([*ARGS, *extra, f"output_dir={tmp_path / name}"]))
    blob = torch.load(result["last_checkpoint"], map_location="cpu", weights_only=True)
    return {"average": blob["state_dict"], "raw": blob.get("current_model_state", blob["state_dict"]),
            "step": blob["global_step"]}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_checkpoint_holds_the_average_and_training_is_unchanged(tmp_path):
    one = _fit(tmp_path, "one", "optim.max_steps=1")
    two = _fit(tmp_path, "two", "optim.max_steps=2")
    ema = _fit(tmp_path, "ema", "optim.max_steps=2", f"optim.ema_decay={DECAY}")
    assert one["step"] == two["step"] - 1 == ema["step"] - 1 == 1
    assert _equal(ema["raw"], two["raw"])  # averaging does not touch the optimisation
    moved = [k for k in two["raw"] if two["raw"][k].is_floating_point() and not torch.equal(one["raw"][k],
                                                                                               two["raw"][k])]
    assert moved  # the second step changed weights, so the average differs from both
    for key in moved:  # first update copies w1; the second: DECAY * w1 + (1 - DECAY) * w2
        expected = DECAY * one["raw"][key] + (1 - DECAY) * two["raw"][key]
        torch.testing.assert_close(ema["average"][key], expected, rtol=1e-5, atol=1e-7)
        assert not torch.equal(ema["average"][key], two["raw"][key])


def test_before_the_start_step_the_average_is_the_weights(tmp_path):
    plain = _fit(tmp_path, "plain", "optim.max_steps=2")
    late = _fit(tmp_path, "late", "optim.max_steps=2", f"optim.ema_decay={DECAY}", "optim.ema_start=2")
    assert _equal(late["average"], plain["raw"]) and _equal(late["raw"], plain["raw"])


def test_a_resumed_run_continues_the_average(tmp_path):
    # epochs of 2 steps: the extended run resumes at an epoch boundary (a run stopped mid-epoch restarts that
    # epoch's excerpts when extended, with or without averaging)
    epoch = ["trainer.limit_train_batches=2", f"optim.ema_decay={DECAY}"]
    straight = _fit(tmp_path, "straight", "optim.max_steps=3", *epoch)
    _fit(tmp_path, "resumed", "optim.max_steps=2", *epoch)
    resumed = _fit(tmp_path, "resumed", "optim.max_steps=3", *epoch)  # the same run, extended by one step
    assert resumed["step"] == 3
    assert _equal(resumed["raw"], straight["raw"])
    for key, value in straight["average"].items():
        torch.testing.assert_close(resumed["average"][key], value, rtol=0, atol=0)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_the_open_interval_is_refused(decay):
    from lightning_mad.callbacks.averaging import ExponentialWeightAveraging

    with pytest.raises(ValueError, match="ema_decay"):
        ExponentialWeightAveraging(decay)
