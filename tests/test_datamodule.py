"""SeparationDataModule and the excerpt samplers: shapes, determinism, the released grid, DDP sharding."""
from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from lightning_mad.data import (RandomExcerpts, RandomExcerptSampler, ReleasedExcerpts, ReleasedSampler,
                                SeparationDataModule, TrackDataset)
from lightning_mad.data.cache import CachedTrack
from lightning_mad.data.excerpts import released_groups

SAMPLE_TRAIN = [{"corpus": "sample", "split": "train"}]
FALCON = {"corpus": "musdb18", "root": "musdb18", "subset": "test"}


class ConstantTracks(TrackDataset):
    """In-memory tracks whose every sample equals the track number + 1, so each excerpt shows where it came from."""

    corpus = "synthetic"

    def __init__(self, names: list[str], lengths: list[int], has_stems: bool = False):
        super().__init__()
        self.names, self.lengths, self.has_stems = list(names), list(lengths), has_stems

    def _sources(self, index):
        return []

    def _decode(self, index):
        value = np.full(self.lengths[index], index + 1, dtype=np.float32)
        arrays = {"mixture": value, "vocals": 0.25 * value, "accompaniment": 0.75 * value}
        if self.has_stems:
            arrays |= {"bass": 0.25 * value, "drums": 0.25 * value, "other": 0.25 * value}
        return CachedTrack(arrays, 44100)


def track_values(mixture: torch.Tensor) -> set[int]:
    return {int(v) for v in torch.unique(mixture) if v != 0}


@pytest.fixture(scope="module")
def sample_dm(sample_root):
    dm = SeparationDataModule(SAMPLE_TRAIN, val=[{"corpus": "sample", "split": "validation"}],
                              test=[FALCON], base_dir=sample_root, excerpt_samples=2048, batch_size=4,
                              excerpts_per_epoch=8, seed=3)
    dm.setup("fit")
    dm.setup("test")
    return dm


# ------------------------------------------------------------------------------------------------------- batches
def test_training_batch_shapes(sample_dm):
    batches = list(sample_dm.train_dataloader())
    assert len(batches) == 2
    for batch in batches:
        assert set(batch) == {"mixture", "vocals", "accompaniment"}  # MedleyDB / MIR-1K have no 4-stem split
        for x in batch.values():
            assert x.shape == (4, 2048) and x.dtype == torch.float32
        assert batch["mixture"].abs().sum() > 0


def test_training_batches_with_stems(sample_root):
    dm = SeparationDataModule([FALCON], base_dir=sample_root, excerpt_samples=1000, batch_size=2,
                              excerpts_per_epoch=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["stems"].shape == (2, 4, 1000)
    torch.testing.assert_close(batch["stems"][:, 3], batch["vocals"])  # (bass, drums, other, vocals)
    torch.testing.assert_close(batch["stems"][:, :3].sum(1), batch["accompaniment"], atol=1e-5, rtol=0)


def test_val_and_test_loaders_are_whole_tracks(sample_dm):
    val = list(sample_dm.val_dataloader())
    names = sample_dm.datasets["val"].names
    assert [b["name"] for b in val] == names  # deterministic, dataset order
    assert [b["name"] for b in sample_dm.val_dataloader()] == names
    for batch, index in zip(val, range(len(names))):
        n = sample_dm.datasets["val"].num_samples(index)
        assert batch["mixture"].shape == batch["vocals"].shape == batch["accompaniment"].shape == (1, n)
        assert batch["corpus"] == "mir1k" and "stems" not in batch
    (test,) = list(sample_dm.test_dataloader())
    assert test["stems"].shape == (1, 4, test["mixture"].shape[1])
    assert SeparationDataModule(SAMPLE_TRAIN, val=[]).val_dataloader() == []


def test_prepare_data_fills_the_disk_cache(sample_root, tmp_path):
    ani = [{"corpus": "mir1k", "root": "mir1k", "singers": ["Ani"]}]
    tammy = [{"corpus": "mir1k", "root": "mir1k", "singers": ["tammy"]}]
    dm = SeparationDataModule(ani, val=tammy, base_dir=sample_root, cache_dir=tmp_path, excerpt_samples=512)
    dm.prepare_data()
    assert len(list(tmp_path.glob("*/meta.json"))) == 4  # 2 training + 2 validation clips
    assert dm.datasets == {"train": None, "val": None, "test": None}  # no state left behind
    dm.setup("fit")
    assert isinstance(dm.excerpts().tracks.arrays(0).arrays["mixture"], np.memmap)  # read back, not decoded


# ------------------------------------------------------------------------------------------------ random scheme
def test_random_excerpts_repeat_per_epoch_and_differ_across_epochs(sample_dm):
    excerpts = sample_dm.excerpts()
    draws = lambda epoch: [excerpts.draw(epoch, i) for i in range(16)]  # noqa: E731
    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
    torch.testing.assert_close(excerpts[(5, 3)]["mixture"], excerpts[(5, 3)]["mixture"])
    other_seed = RandomExcerpts(sample_dm.datasets["train"], 2048, seed=4)
    assert [other_seed.draw(0, i) for i in range(16)] != draws(0)

    def epoch_batches(epoch, num_workers):
        loader = sample_dm.train_dataloader()
        loader = torch.utils.data.DataLoader(loader.dataset, batch_size=4, sampler=loader.sampler,
                                             num_workers=num_workers)
        loader.sampler.set_epoch(epoch)
        return torch.cat([b["mixture"] for b in loader])

    first = epoch_batches(2, num_workers=0)
    torch.testing.assert_close(first, epoch_batches(2, num_workers=2))  # workers do not change the draws
    assert not torch.equal(first, epoch_batches(3, num_workers=0))


def test_random_weighting_offsets_and_padding():
    tracks = ConstantTracks(["short", "long"], [300, 9000])
    excerpts = RandomExcerpts(tracks, excerpt_samples=1000, seed=0)
    picks = [excerpts.draw(0, i) for i in range(3000)]
    share_long = np.mean([t == 1 for t, _ in picks])
    assert abs(share_long - 9000 / 9300) < 0.02  # probability proportional to length
    assert all(0 <= off <= 8000 for t, off in picks if t == 1) and all(off == 0 for t, off in picks if t == 0)
    index = next(i for i, (t, _) in enumerate(picks) if t == 0)
    short = excerpts[(0, index)]["mixture"]
    assert torch.all(short[:300] == 1) and torch.all(short[300:] == 0)  # zero-padded at the end
    uniform = RandomExcerpts(tracks, excerpt_samples=1000, seed=0, weighting="uniform")
    assert abs(np.mean([uniform.draw(0, i)[0] == 1 for i in range(3000)]) - 0.5) < 0.05


def test_random_sampler_shards_across_ranks():
    keys = [list(RandomExcerptSampler(101, rank=r, world_size=2)) for r in (0, 1)]
    assert len(keys[0]) == len(keys[1]) == 50
    assert not set(keys[0]) & set(keys[1])
    assert {i for _, i in keys[0] + keys[1]} == set(range(100))
    sampler = RandomExcerptSampler(8, rank=1, world_size=2)
    sampler.set_epoch(7)
    assert list(sampler) == [(7, 1), (7, 3), (7, 5), (7, 7)]
    with pytest.raises(ValueError, match="rank 2"):
        RandomExcerptSampler(8, rank=2, world_size=2)


# ---------------------------------------------------------------------------------------------- released scheme
LENGTHS = {"delta": 5000, "alpha": 3000, "charlie": 4100, "bravo": 2500, "echo": 7000}


def released(batch_size=4, rank=0, world_size=1, stride=400, samples=600):
    tracks = ConstantTracks(list(LENGTHS), list(LENGTHS.values()))
    excerpts = ReleasedExcerpts(tracks, excerpt_samples=samples)
    sampler = ReleasedSampler(excerpts.group_lengths, samples, stride, batch_size, seed=1, rank=rank,
                              world_size=world_size)
    return tracks, excerpts, sampler


def test_released_groups_sorted_by_name():
    tracks, excerpts, _ = released()
    assert [[tracks.names[i] for i in g] for g in excerpts.groups] == [["alpha", "bravo", "charlie", "delta"],
                                                                       ["echo"]]
    assert excerpts.group_lengths == [3000 + 2500 + 4100 + 5000, 7000]
    assert released_groups(["b", "a", "c"], 2) == [[1, 0], [2]]


def test_released_grid_batches_and_boundaries():
    tracks, excerpts, sampler = released()
    for group, length in enumerate(excerpts.group_lengths):
        grid = sampler.grid(group)
        padded = (length // 400 + 1) * 400
        n_windows = (padded - 600) // 400 + 1
        assert len(grid) == n_windows - n_windows % 4  # trailing windows cut to whole batches
        assert np.all(grid % 400 == 0) and np.all(np.diff(grid) == 400) and grid[0] == 0
        assert grid[-1] + 600 <= padded
    keys = list(sampler)
    assert len(keys) == len(sampler) and len(keys) % 4 == 0
    loader = torch.utils.data.DataLoader(excerpts, batch_size=4, sampler=sampler)
    straddles = 0
    for batch_index, batch in enumerate(loader):
        assert batch["mixture"].shape == (4, 600)  # every batch full
        assert len({g for g, _ in keys[4 * batch_index: 4 * batch_index + 4]}) == 1  # one group per batch
        straddles += sum(len(track_values(m)) > 1 for m in batch["mixture"])
    assert straddles > 0  # windows run across track boundaries of the concatenated group
    # a window at 2800 in group 0 covers alpha (index 1: value 2) up to 3000, then bravo (index 3: value 4)
    window = excerpts[(0, 2800)]["mixture"]
    assert torch.all(window[:200] == 2) and torch.all(window[200:] == 4)
    tail = excerpts[(1, 6800)]["mixture"]  # the last window of echo (7000 samples) runs into the zero padding
    assert torch.all(tail[:200] == 5) and torch.all(tail[200:] == 0)
    torch.testing.assert_close(excerpts[(0, 2800)]["vocals"], 0.25 * window)


def test_released_epochs_shuffle_the_same_grid():
    _, _, sampler = released()
    first = list(sampler)
    assert first == list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == sorted(first)
    assert [g for g, _ in second] == sorted(g for g, _ in second)  # groups keep their fixed order


def test_released_sampler_shards_across_ranks():
    keys = [list(released(batch_size=2, rank=r, world_size=2)[2]) for r in (0, 1)]
    assert len(keys[0]) == len(keys[1]) > 0
    assert not set(keys[0]) & set(keys[1])
    single = set(released(batch_size=2)[2])
    assert set(keys[0]) | set(keys[1]) <= single
    for rank_keys in keys:  # each rank's consecutive pairs are batches inside one group
        assert all(rank_keys[i][0] == rank_keys[i + 1][0] for i in range(0, len(rank_keys), 2))


# ----------------------------------------------------------------------------------------------- with Lightning
class Recorder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[int, float]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, float(batch["mixture"].double().sum())))
        return self.weight * batch["mixture"].mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(sampler: str) -> list[tuple[int, float]]:
    tracks = ConstantTracks(list(LENGTHS), list(LENGTHS.values()))
    dm = SeparationDataModule([tracks], excerpt_samples=600, excerpt_stride=400, batch_size=4,
                              excerpts_per_epoch=8, sampler=sampler, seed=5)
    model = Recorder()
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, accelerator="cpu")
    trainer.fit(model, dm)
    return model.seen


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
@pytest.mark.parametrize("sampler", ["random", "released"])
def test_trainer_sets_epoch_and_runs_repeat(sampler):
    seen = _fit(sampler)
    by_epoch = [[s for e, s in seen if e == epoch] for epoch in (0, 1)]
    assert len(by_epoch[0]) == len(by_epoch[1]) > 0
    assert by_epoch[0] != by_epoch[1]  # Lightning called set_epoch: epoch 1 differs
    assert _fit(sampler) == seen  # a rerun with the same seed repeats every batch


def test_bad_sampler_name():
    with pytest.raises(ValueError, match="sampler"):
        SeparationDataModule(SAMPLE_TRAIN, sampler="shuffled")


def test_an_epoch_without_a_whole_batch_is_an_error(sample_root):
    """Partial batches are dropped, so too few excerpts would train on nothing without saying so."""
    dm = SeparationDataModule([FALCON], base_dir=sample_root, excerpt_samples=1000, batch_size=16,
                              excerpts_per_epoch=8)
    dm.setup("fit")
    with pytest.raises(ValueError, match="no batch of 16"):
        dm.train_dataloader()
