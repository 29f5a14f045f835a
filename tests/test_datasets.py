"""Corpus datasets on real layouts: the Track contract, each corpus's scaling, errors, caching, the sample's splits."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from lightning_mad.audio import load_audio, load_stems, resample, to_mono, write_audio
from lightning_mad.data import (DatasetError, DSD100Dataset, MedleyDBDataset, MIR1KDataset, MUSDB18Dataset, Track,
                                build_dataset, collate_tracks, read_splits, sample_split)

FALCON = "The Easton Ellises - Falcon 69"
ROCK = "MusicDelta_80sRock"
STEM_FILES = {"drums": 1, "bass": 2, "other": 3, "vocals": 4}  # MedleyDB sample: STEM_0N = MUSDB stem


def mono_file(path, rate=44100) -> np.ndarray:
    return to_mono(load_audio(path, rate))


def assert_contract(track: Track, corpus: str, with_stems: bool):
    assert isinstance(track, Track) and track.corpus == corpus
    n = track.mixture.shape[0]
    for x in (track.mixture, track.vocals, track.accompaniment):
        assert x.dtype == torch.float32 and x.shape == (n,)
    assert (track.stems is not None) == with_stems
    if with_stems:
        assert list(track.stems) == ["bass", "drums", "other", "vocals"]
        assert all(s.shape == (n,) for s in track.stems.values())
        torch.testing.assert_close(track.stems["vocals"], track.vocals)


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def falcon(sample_root):
    """The bundled Falcon 69 streams, float32 (2, samples) at 44.1 kHz."""
    return load_stems(sample_root / "musdb18/test" / f"{FALCON}.stem.mp4")


@pytest.fixture(scope="module")
def dsd100_root(tmp_path_factory, falcon, sample_root):
    """DSD100 layout from the bundled audio: Dev/<Falcon 69> (16-bit WAVs), Test/<80s Rock> (the MedleyDB files)."""
    root = tmp_path_factory.mktemp("DSD100")
    dev_mix, dev_src = root / "Mixtures/Dev" / FALCON, root / "Sources/Dev" / FALCON
    write_audio(dev_mix / "mixture.wav", falcon["mixture"], 44100, "PCM_16")
    for stem in ("bass", "drums", "other", "vocals"):
        write_audio(dev_src / f"{stem}.wav", falcon[stem], 44100, "PCM_16")
    medley = sample_root / "medleydb/Audio" / ROCK
    (root / "Mixtures/Test/80s Rock").mkdir(parents=True)
    (root / "Sources/Test/80s Rock").mkdir(parents=True)
    shutil.copy(medley / f"{ROCK}_MIX.wav", root / "Mixtures/Test/80s Rock/mixture.wav")
    for stem, number in STEM_FILES.items():
        shutil.copy(medley / f"{ROCK}_STEMS/{ROCK}_STEM_0{number}.wav", root / f"Sources/Test/80s Rock/{stem}.wav")
    return root


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, copy_function=os.symlink)  # audio as symlinks: cheap, still a real layout
    return dst


# -------------------------------------------------------------------------------------------------------- DSD100
def test_dsd100_contract_and_scaling(dsd100_root):
    dev = DSD100Dataset(dsd100_root, split="Dev")
    assert dev.names == [FALCON] and len(dev) == 1
    track = dev[0]
    assert_contract(track, "dsd100", with_stems=True)
    assert track.native_rate == 44100
    src = dsd100_root / "Sources/Dev" / FALCON
    mix = load_audio(dsd100_root / "Mixtures/Dev" / FALCON / "mixture.wav")
    np.testing.assert_allclose(track.mixture.numpy(), 0.5 * (mix[0] + mix[1]), atol=1e-7)
    stems = {s: mono_file(src / f"{s}.wav") for s in ("bass", "drums", "other", "vocals")}
    for s, x in stems.items():
        np.testing.assert_allclose(track.stems[s].numpy(), x, atol=1e-7)
    np.testing.assert_allclose(track.accompaniment.numpy(), stems["bass"] + stems["drums"] + stems["other"], atol=1e-6)
    np.testing.assert_allclose((track.accompaniment + track.vocals).numpy(), sum(stems.values()), atol=1e-6)


def test_dsd100_sum_of_stems_and_int16_scale(dsd100_root):
    summed = DSD100Dataset(dsd100_root, split="Test", mixture="sum_of_stems")[0]
    plain = DSD100Dataset(dsd100_root, split="Test")[0]
    np.testing.assert_allclose(summed.mixture.numpy(), (summed.accompaniment + summed.vocals).numpy(), atol=1e-6)
    assert not torch.allclose(summed.mixture, plain.mixture, atol=1e-4)  # the MIX file is not the stem sum
    released = DSD100Dataset(dsd100_root, split="Test", read_scale="int16_32767")[0]
    raw = sf.read(dsd100_root / "Sources/Test/80s Rock/vocals.wav", dtype="int16")[0].astype(np.float64)
    np.testing.assert_allclose(released.vocals.numpy(), 0.5 * (raw[:, 0] + raw[:, 1]) / 32767, atol=1e-7)
    assert abs(float(released.vocals.abs().max() / plain.vocals.abs().max()) - 32768 / 32767) < 1e-6


def test_dsd100_errors(dsd100_root, tmp_path):
    with pytest.raises(DatasetError, match=r"expected Mixtures/Dev/<track>/mixture.wav") as err:
        DSD100Dataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    with pytest.raises(ValueError, match="split"):
        DSD100Dataset(dsd100_root, split="train")
    with pytest.raises(DatasetError, match="requested tracks not found"):
        DSD100Dataset(dsd100_root, tracks=["nope"])

    broken = copy_tree(dsd100_root, tmp_path / "broken")
    (broken / "Sources/Dev" / FALCON / "vocals.wav").unlink()
    with pytest.raises(DatasetError, match="missing vocals.wav") as err:
        DSD100Dataset(broken)
    assert str(broken / "Sources/Dev" / FALCON) in str(err.value) and "\n" not in str(err.value)

    short = copy_tree(dsd100_root, tmp_path / "short")
    bass = short / "Sources/Dev" / FALCON / "bass.wav"
    x = load_audio(bass)
    bass.unlink()
    write_audio(bass, x[:, :-100], 44100, "PCM_16")
    with pytest.raises(DatasetError, match="unequal length") as err:
        DSD100Dataset(short)[0]
    assert str(short / "Sources/Dev" / FALCON) in str(err.value)


# -------------------------------------------------------------------------------------------------------- MUSDB18
def test_musdb_stem_mp4_contract_and_scaling(sample_root, falcon):
    data = MUSDB18Dataset(sample_root / "musdb18", subset="test")
    assert data.names == [FALCON] and data.corpus == "musdb18"
    track = data[0]
    assert_contract(track, "musdb18", with_stems=True)
    # musdb (stempeg) decodes via 16-bit PCM, which clips the few encoder transients above full scale
    clip = lambda x: np.clip(x, -1, 1 - 2**-15)  # noqa: E731
    mix = clip(falcon["mixture"])
    np.testing.assert_allclose(track.mixture.numpy(), 0.5 * (mix[0] + mix[1]), atol=2e-5)
    stems = {s: to_mono(clip(falcon[s])) for s in ("bass", "drums", "other", "vocals")}
    np.testing.assert_allclose(track.accompaniment.numpy(), stems["bass"] + stems["drums"] + stems["other"],
                               atol=5e-5)
    np.testing.assert_allclose((track.accompaniment + track.vocals).numpy(), sum(stems.values()), atol=5e-5)


def test_musdb_trim(sample_root):
    full = MUSDB18Dataset(sample_root / "musdb18", subset="test")[0]
    trimmed = MUSDB18Dataset(sample_root / "musdb18", subset="test", trim_seconds={FALCON: 0.1})[0]
    assert trimmed.num_samples == full.num_samples - 2 * 4410
    torch.testing.assert_close(trimmed.vocals, full.vocals[4410:-4410])


    def mix_vs_stems_db(t):  # the encoder transients break mixture == sum of stems (musdb18 PROVENANCE.md)
        residual = t.mixture - t.vocals - t.accompaniment
        return float(10 * torch.log10(t.mixture.square().sum() / residual.square().sum()))

    assert mix_vs_stems_db(trimmed) > mix_vs_stems_db(full) + 3


def test_musdb_errors(sample_root, tmp_path):
    with pytest.raises(DatasetError, match=r"expected train/<track>.stem.mp4"):
        MUSDB18Dataset(tmp_path, subset="train")
    with pytest.raises(ValueError, match="subset='train'"):
        MUSDB18Dataset(sample_root / "musdb18", subset="test", split="valid")
    with pytest.raises(DatasetError, match="requested tracks not found"):
        MUSDB18Dataset(sample_root / "musdb18", subset="test", tracks=["Music Delta - 80s Rock"])


def test_musdb_hq_layout(tmp_path, falcon):
    folder = tmp_path / "test" / FALCON
    for name, x in falcon.items():
        write_audio(folder / f"{name}.wav", x, 44100, "PCM_16")
    track = MUSDB18Dataset(tmp_path, subset="test", is_wav=True)[0]
    assert_contract(track, "musdb18hq", with_stems=True)
    np.testing.assert_allclose(track.mixture.numpy(), mono_file(folder / "mixture.wav"), atol=1e-7)
    np.testing.assert_allclose(track.vocals.numpy(), mono_file(folder / "vocals.wav"), atol=1e-7)
    (folder / "bass.wav").unlink()
    with pytest.raises(DatasetError, match="missing bass.wav") as err:
        MUSDB18Dataset(tmp_path, subset="test", is_wav=True)
    assert str(folder) in str(err.value)


def test_musdb_hq_sample_matches_medleydb(musdb_wav_root, sample_root):
    root = musdb_wav_root
    train = MUSDB18Dataset(root, subset="train", split="train", is_wav=True)
    assert train.names == ["Music Delta - 80s Rock"]
    with pytest.raises(DatasetError, match="no tracks found"):  # not one of musdb's 14 validation tracks
        MUSDB18Dataset(root, subset="train", split="valid", is_wav=True)
    rock = train[0]
    assert_contract(rock, "musdb18hq", with_stems=True)
    medley = MedleyDBDataset(sample_root / "medleydb")[0]  # byte-identical WAVs (medleydb PROVENANCE.md)
    torch.testing.assert_close(rock.mixture, medley.mixture)
    torch.testing.assert_close(rock.vocals, medley.vocals)
    torch.testing.assert_close(rock.accompaniment, medley.accompaniment, atol=1e-6, rtol=0)
    test = MUSDB18Dataset(root, subset="test", is_wav=True)
    assert test.names == [FALCON]


# ------------------------------------------------------------------------------------------------------ MedleyDB
def test_medleydb_contract_and_scaling(sample_root):
    data = MedleyDBDataset(sample_root / "medleydb")
    assert data.names == [ROCK]
    track = data[0]
    assert_contract(track, "medleydb", with_stems=False)
    folder = sample_root / "medleydb/Audio" / ROCK
    stem = {s: mono_file(folder / f"{ROCK}_STEMS/{ROCK}_STEM_0{n}.wav") for s, n in STEM_FILES.items()}
    np.testing.assert_allclose(track.mixture.numpy(), mono_file(folder / f"{ROCK}_MIX.wav"), atol=1e-7)
    np.testing.assert_allclose(track.vocals.numpy(), stem["vocals"], atol=1e-7)
    np.testing.assert_allclose(track.accompaniment.numpy(), stem["drums"] + stem["bass"] + stem["other"], atol=1e-6)


def _medley_copy(sample_root, root: Path, name: str, **changes) -> Path:
    """A symlinked copy of the 80s Rock track under ``root/Audio/name`` with edited metadata."""
    src = sample_root / "medleydb/Audio" / ROCK
    folder = root / "Audio" / name
    folder.mkdir(parents=True)
    (folder / f"{ROCK}_STEMS").symlink_to(src / f"{ROCK}_STEMS")
    (folder / f"{ROCK}_MIX.wav").symlink_to(src / f"{ROCK}_MIX.wav")
    meta = yaml.safe_load((src / f"{ROCK}_METADATA.yaml").read_text())
    for key, value in changes.items():
        if key.startswith("S0"):
            meta["stems"][key]["instrument"] = value
        else:
            meta[key] = value
    (folder / f"{name}_METADATA.yaml").write_text(yaml.safe_dump(meta))
    return folder


def test_medleydb_selection_and_errors(sample_root, tmp_path):
    root = tmp_path / "medley"
    _medley_copy(sample_root, root, "A_Song")
    _medley_copy(sample_root, root, "B_Instrumental", instrumental="yes")
    _medley_copy(sample_root, root, "C_Bleeding", has_bleed="yes")
    assert MedleyDBDataset(root).names == ["A_Song"]  # instrumental and bleeding tracks skipped silently
    assert MedleyDBDataset(root, tracks=["A_Song", "B_Instrumental"]).names == ["A_Song"]
    with pytest.raises(DatasetError, match="no usable track"):
        MedleyDBDataset(root, tracks=["B_Instrumental"])

    meta = _medley_copy(sample_root, root, "D_NoSinger", S04="tambourine") / "D_NoSinger_METADATA.yaml"
    with pytest.raises(DatasetError, match="no stem is a voice") as err:
        MedleyDBDataset(root)
    assert str(err.value).startswith(f"MedleyDB {meta}:") and "\n" not in str(err.value)

    with pytest.raises(DatasetError, match=r"expected Audio/<track>/<track>_METADATA.yaml"):
        MedleyDBDataset(tmp_path / "nowhere")
    lone = tmp_path / "lone"
    missing = _medley_copy(sample_root, lone, "E_Missing")
    (missing / f"{ROCK}_MIX.wav").unlink()
    with pytest.raises(DatasetError, match=f"missing {ROCK}_MIX.wav") as err:
        MedleyDBDataset(lone)
    assert str(missing) in str(err.value)


def test_medleydb_mixing_coefficients(sample_root):
    plain = MedleyDBDataset(sample_root / "medleydb")[0]
    mixed = MedleyDBDataset(sample_root / "medleydb", mixing_coefficients={ROCK: {4: 0.5, 1: 2.0}})[0]
    torch.testing.assert_close(mixed.vocals, 0.5 * plain.vocals)
    torch.testing.assert_close(mixed.mixture, plain.mixture)
    assert not torch.allclose(mixed.accompaniment, plain.accompaniment)


# ------------------------------------------------------------------------------------------------------- MIR-1K
def test_mir1k_splits(sample_root):
    train = MIR1KDataset(sample_root / "mir1k", split="train")
    test = MIR1KDataset(sample_root / "mir1k", split="test")
    assert {n.split("_")[0] for n in train.names} == {"abjones", "amy"}
    assert not {n.split("_")[0] for n in test.names} & {"abjones", "amy"}
    assert len(train) + len(test) == len(list((sample_root / "mir1k/Wavfile").glob("*.flac")))
    assert MIR1KDataset(sample_root / "mir1k", singers=["Ani"]).names == ["Ani_1_01", "Ani_1_02"]


def test_mir1k_scaling(sample_root):
    path = sample_root / "mir1k/Wavfile/amy_1_01.flac"
    native = load_audio(path, None)
    left, right = resample(native, 16000, 44100)
    track = MIR1KDataset(sample_root / "mir1k", tracks=["amy_1_01"])[0]
    assert_contract(track, "mir1k", with_stems=False)
    assert track.native_rate == 16000 and track.num_samples == round(native.shape[1] * 44100 / 16000)
    np.testing.assert_allclose(track.accompaniment.numpy(), left, atol=1e-7)
    np.testing.assert_allclose(track.vocals.numpy(), right, atol=1e-7)
    np.testing.assert_allclose(track.mixture.numpy(), left + right, atol=1e-6)  # 0 dB: left + right, not halved
    loud = MIR1KDataset(sample_root / "mir1k", tracks=["amy_1_01"], snr_db=6.0)[0]
    np.testing.assert_allclose(loud.vocals.numpy(), 10 ** (6 / 20) * right, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(loud.mixture.numpy(), left + 10 ** (6 / 20) * right, rtol=1e-5, atol=1e-6)


def test_mir1k_errors(sample_root, tmp_path):
    with pytest.raises(DatasetError, match=r"expected Wavfile/") as err:
        MIR1KDataset(tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(DatasetError, match="not found"):
        MIR1KDataset(sample_root / "mir1k", split="train", tracks=["Ani_1_01"])
    (tmp_path / "Wavfile").mkdir()
    write_audio(tmp_path / "Wavfile/solo_1_01.wav", np.zeros((1, 1600)), 16000)
    with pytest.raises(DatasetError, match="expected 2 channels"):
        MIR1KDataset(tmp_path)[0]


# --------------------------------------------------------------------------------------------------------- cache
def test_decoded_once_and_disk_cache(sample_root, tmp_path, monkeypatch):
    calls = []
    original = MIR1KDataset._decode
    monkeypatch.setattr(MIR1KDataset, "_decode", lambda self, i: calls.append(i) or original(self, i))
    data = MIR1KDataset(sample_root / "mir1k", singers=["Ani"], cache_dir=tmp_path / "cache")
    first = [data[i] for i in range(len(data))] + [data[i] for i in range(len(data))]
    assert calls == [0, 1]  # each clip decoded once per process
    assert len(list((tmp_path / "cache").glob("*/meta.json"))) == 2

    again = MIR1KDataset(sample_root / "mir1k", singers=["Ani"], cache_dir=tmp_path / "cache")
    torch.testing.assert_close(again[1].mixture, first[1].mixture)
    assert calls == [0, 1]  # a new process-level dataset reads the .npy cache, no decoding
    assert isinstance(again.arrays(1).arrays["mixture"], np.memmap)

    louder = MIR1KDataset(sample_root / "mir1k", singers=["Ani"], snr_db=5.0, cache_dir=tmp_path / "cache")
    louder[0]
    assert calls == [0, 1, 0]  # other options, other key


# ---------------------------------------------------------------------------------------------- sample + splits
def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def test_sample_splits_are_disjoint_and_exist(sample_root):
    splits = read_splits(sample_root / "splits.yaml")
    assert set(splits) == {"train", "validation", "test"}
    seen: dict[str, str] = {}
    singers: dict[str, str] = {}
    for split, entries in splits.items():
        for entry in entries:
            root = sample_root / entry["root"]
            assert root.is_dir(), root
            for name in entry["tracks"]:
                if entry["corpus"] == "mir1k":
                    assert (root / "Wavfile" / f"{name}.flac").is_file(), name
                    singer = name.split("_")[0]
                    # the test singers choose nothing: train and validation hold only the training singers
                    assert (singer in ("abjones", "amy")) == (split != "test"), f"{name} in {split}"
                elif entry["corpus"] == "medleydb":
                    assert (root / "Audio" / name / f"{name}_METADATA.yaml").is_file(), name
                else:
                    assert (root / entry.get("subset", "test") / f"{name}.stem.mp4").is_file(), name
                key = _normalise(name)  # catches the same song under two corpora's spellings
                assert seen.setdefault(key, split) == split, f"{name} is in {seen[key]} and {split}"
    # the MUSDB copy of 80s Rock (musdb18/train, bundled for museval's regression test) is in no split
    assert all(e.get("subset", "test") == "test" for entries in splits.values() for e in entries
               if e["corpus"] == "musdb18")


def test_sample_split_datasets(sample_root):
    counts = {}
    for split in ("train", "validation", "test"):
        data = sample_split(split)
        counts[split] = len(data)
        assert len(set(data.names)) == len(data.names)
    assert counts == {"train": 92, "validation": 10, "test": 29}
    test = sample_split("test")
    falcon = test[test.names.index(FALCON)]
    assert_contract(falcon, "musdb18", with_stems=True)
    assert falcon.num_samples == 268288 - 2 * 4410  # trim_seconds: 0.1 from splits.yaml


def test_sample_size_limit(sample_root):
    total = sum(p.stat().st_size for p in sample_root.rglob("*") if p.is_file())
    assert total < 100e6, f"data/sample is {total / 1e6:.1f} MB"
    for sub in ("musdb18", "medleydb", "mir1k"):
        assert (sample_root / sub / "PROVENANCE.md").is_file()
    assert (sample_root / "LICENSE-AUDIO.md").is_file()


# ------------------------------------------------------------------------------------------ builder and collate
def test_build_dataset_from_specs(sample_root):
    from omegaconf import OmegaConf

    mir = build_dataset({"corpus": "mir1k", "root": "mir1k", "singers": ["Ani"]}, base_dir=sample_root)
    assert isinstance(mir, MIR1KDataset) and len(mir) == 2
    cfg = OmegaConf.create({"corpus": "musdb18", "root": str(sample_root / "musdb18"), "subset": "test"})
    assert build_dataset(cfg).names == [FALCON]
    assert len(build_dataset({"corpus": "sample", "root": None, "split": "validation"})) == 10
    assert build_dataset(mir) is mir
    with pytest.raises(DatasetError, match="unknown corpus"):
        build_dataset({"corpus": "ikala", "root": "x"})


def test_collate_whole_track(sample_root):
    track = MUSDB18Dataset(sample_root / "musdb18", subset="test")[0]
    batch = collate_tracks([track])
    assert batch["name"] == FALCON and batch["corpus"] == "musdb18"
    assert batch["mixture"].shape == (1, track.num_samples)
    assert batch["stems"].shape == (1, 4, track.num_samples)
    torch.testing.assert_close(batch["stems"][0, 3], track.vocals)
    torch.testing.assert_close(batch["stems"][0, 0], track.stems["bass"])
    with pytest.raises(ValueError, match="batch size 1"):
        collate_tracks([track, track])
