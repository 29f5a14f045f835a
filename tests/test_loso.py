"""Leave-one-singer-out (LOSO) split of MIR-1K's training singers (data=mir1k_loso): the held-out singer is scored
and never trained on; the 17 test singers take no part."""
from __future__ import annotations

import pytest

from lightning_mad.config.load import load_config
from lightning_mad.data import DatasetError, MIR1KDataset
from lightning_mad.data.mir1k import singer_of
from lightning_mad.data.specs import split_dataset


def loso_config(sample_root, holdout):
    return load_config(["experiment=gru_nri", "profile=budget", "data=mir1k_loso",
                        f"data.root={sample_root / 'mir1k'}", f"data.holdout={holdout}"])


@pytest.mark.parametrize("holdout, trained, n_test", [("abjones", "amy", 43), ("amy", "abjones", 132)])
def test_loso_holds_the_singer_out(sample_root, holdout, trained, n_test):
    cfg = loso_config(sample_root, holdout)
    train, test = split_dataset(cfg, "train"), split_dataset(cfg, "test")
    assert {singer_of(n) for n in train.names} == {trained}
    assert {singer_of(n) for n in test.names} == {holdout}
    assert not set(train.names) & set(test.names)
    assert len(test) == n_test  # every clip of the held-out singer is scored
    assert list(cfg.data.val) == []  # nothing of the held-out singer (or anyone) validates
    assert list(cfg.data.protocols) == ["mir1k"]


def test_loso_rejects_a_singer_outside_the_training_split(sample_root):
    with pytest.raises(DatasetError, match="exclude_singers.*yifen"):
        split_dataset(loso_config(sample_root, "yifen"), "train")
    with pytest.raises(DatasetError, match="exclude_singers"):
        MIR1KDataset(sample_root / "mir1k", split="train", exclude_singers=["Amy"])
