"""`lightning-mad separate` and the Python API: every input kind, the policies, and a corpus of bad inputs.

The corpus is generated here. Each bad input must give one line naming the file (exit code != 0 for the CLI, a
typed exception for the API) and leave no output file behind; inputs that are unusual but valid are separated.
"""
from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import lightning_mad
from lightning_mad.audio import AudioError, load_audio
from lightning_mad.cli import main
from lightning_mad.inference.api import load_model

RATE = 44100


def _tone(seconds=1.0, rate=RATE, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.05 * rng.standard_normal((len(t), channels))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny")


def run_cli(capsys, *args):
    code = main(["separate", *map(str, args), "--model", "tiny", "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ valid inputs of every kind -------------------
def _write_valid(kind: str, folder: Path, sample_mp4: Path) -> Path:
    if kind == "stem.mp4":
        dest = folder / "Falcon.stem.mp4"
        shutil.copy(sample_mp4, dest)
        return dest
    specs = {  # kind: (suffix, subtype, rate, channels, seconds)
        "wav16": (".wav", "PCM_16", RATE, 2, 1.0), "flac": (".flac", "PCM_16", RATE, 2, 1.0),
        "ogg": (".ogg", "VORBIS", RATE, 2, 1.0), "mp3": (".mp3", "MPEG_LAYER_III", RATE, 2, 1.0),
        "mono": (".wav", "PCM_16", RATE, 1, 1.0), "8bit": (".wav", "PCM_U8", RATE, 2, 0.5),
        "24bit": (".wav", "PCM_24", RATE, 2, 0.5), "float32": (".wav", "FLOAT", RATE, 2, 0.5),
        "6ch": (".wav", "PCM_16", RATE, 6, 0.5), "8k": (".wav", "PCM_16", 8000, 2, 1.0),
        "96k": (".wav", "PCM_16", 96000, 2, 0.5), "short": (".wav", "FLOAT", RATE, 1, 100 / RATE),
    }
    suffix, subtype, rate, channels, seconds = specs[kind]
    dest = folder / f"{kind}{suffix}"
    sf.write(dest, _tone(seconds, rate, channels), rate, subtype=subtype)
    return dest


VALID = ["wav16", "flac", "ogg", "mp3", "mono", "8bit", "24bit", "float32", "6ch", "8k", "96k", "short", "stem.mp4"]


@pytest.mark.parametrize("kind", VALID)
def test_every_input_kind_separates_and_sums_back(kind, tmp_path, sample_root, capsys):
    src = _write_valid(kind, tmp_path, sample_root / "musdb18/test/The Easton Ellises - Falcon 69.stem.mp4")
    code, out, err = run_cli(capsys, src, "-o", tmp_path / "out")
    assert code == 0, err
    name = src.name.split(".")[0]
    vocals, rate = sf.read(tmp_path / "out" / name / "vocals.wav", always_2d=True)
    accomp, _ = sf.read(tmp_path / "out" / name / "accompaniment.wav", always_2d=True)
    mixture = load_audio(src, None).T
    assert rate == sf.info(src).samplerate if kind != "stem.mp4" else rate == RATE
    assert vocals.shape == mixture.shape  # same channels and length as the input
    assert np.abs(vocals + accomp - mixture).max() < 1e-4


def test_integer_output_sums_within_one_quantisation_step(tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(1.0), RATE, subtype="PCM_16")
    for bits, fmt in (("16", "wav"), ("24", "flac")):
        code, _, err = run_cli(capsys, src, "-o", tmp_path / bits, "--bits", bits, "--format", fmt)
        assert code == 0, err
        v, _ = sf.read(tmp_path / bits / "in" / f"vocals.{fmt}", always_2d=True)
        a, _ = sf.read(tmp_path / bits / "in" / f"accompaniment.{fmt}", always_2d=True)
        m, _ = sf.read(src, always_2d=True)
        assert np.abs(v + a - m).max() <= 2.0 ** -(int(bits) - 1) + 1e-9
        assert sf.info(tmp_path / bits / "in" / f"vocals.{fmt}").subtype == f"PCM_{bits}"


def test_downmix_and_keep_model_rate(tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(1.0, 16000), 16000)
    code, _, err = run_cli(capsys, src, "-o", tmp_path / "o", "--downmix", "--keep-model-rate")
    assert code == 0, err
    v, rate = sf.read(tmp_path / "o" / "in" / "vocals.wav", always_2d=True)
    assert rate == RATE and v.shape[1] == 1 and abs(len(v) - RATE) <= 1


def test_python_api_matches_cli_and_silence_separates_to_silence(tmp_path, tiny, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(1.0), RATE, subtype="FLOAT")
    stems = lightning_mad.separate(str(src), model=tiny)
    assert run_cli(capsys, src, "-o", tmp_path / "o")[0] == 0
    v, _ = sf.read(tmp_path / "o" / "in" / "vocals.wav", always_2d=True)
    np.testing.assert_allclose(stems["vocals"].T, v, atol=1e-6)
    silent = lightning_mad.separate(np.zeros((2, 20000), np.float32), sample_rate=RATE, model=tiny)
    assert np.abs(silent["vocals"]).max() == 0 and np.abs(silent["accompaniment"]).max() == 0


# ------------------------------------------------------------------ bad inputs ----------------------------------
def _bad_inputs(folder: Path) -> dict[str, Path]:
    bad = {}
    bad["empty file"] = folder / "empty.wav"
    bad["empty file"].write_bytes(b"")
    bad["zero-length audio"] = folder / "zero.wav"
    with wave.open(str(bad["zero-length audio"]), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(RATE)
    good = folder / "good.wav"
    sf.write(good, _tone(0.5), RATE, subtype="PCM_16")
    bad["truncated header"] = folder / "truncated.wav"
    bad["truncated header"].write_bytes(good.read_bytes()[:20])
    bad["truncated data"] = folder / "truncated_data.wav"
    bad["truncated data"].write_bytes(good.read_bytes()[:-5000])
    bad["not audio"] = folder / "notes.wav"
    bad["not audio"].write_text("these are not samples\n" * 100)
    bad["directory"] = folder / "a_folder.wav"
    bad["directory"].mkdir()
    bad["missing file"] = folder / "missing.wav"
    nan = _tone(0.5)
    nan[100, 0] = np.nan
    bad["NaN samples"] = folder / "nan.wav"
    sf.write(bad["NaN samples"], nan, RATE, subtype="FLOAT")
    inf = _tone(0.5)
    inf[100, 1] = np.inf
    bad["inf samples"] = folder / "inf.wav"
    sf.write(bad["inf samples"], inf, RATE, subtype="FLOAT")
    bad["corrupt mp4"] = folder / "broken.stem.mp4"
    bad["corrupt mp4"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    return bad


def test_bad_inputs_give_one_line_naming_the_file_and_no_output(tmp_path, capsys):
    bad = _bad_inputs(tmp_path)
    assert len(bad) >= 10
    for problem, path in bad.items():
        out = tmp_path / "out"
        code, stdout, err = run_cli(capsys, path, "-o", out)
        lines = [l for l in err.strip().splitlines() if l.strip()]
        assert code != 0, problem
        assert len(lines) == 1 and path.name in lines[0], (problem, err)
        assert not list(out.glob("**/*.wav")), f"{problem}: output left behind"
        with pytest.raises(AudioError) as exc:  # the API raises a typed exception
            lightning_mad.separate(str(path), model="tiny")
        assert path.name in str(exc.value) and "\n" not in str(exc.value)


def test_unreadable_file_is_refused(tmp_path, monkeypatch, capsys):
    """Permissions cannot be tested as root: simulate an unreadable file through os.access."""
    import os

    path = tmp_path / "locked.wav"
    sf.write(path, _tone(0.5), RATE)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == path else real_access(p, mode))
    code, _, err = run_cli(capsys, path, "-o", tmp_path / "out")
    assert code != 0 and "locked.wav" in err and "not readable" in err


def test_one_bad_file_does_not_stop_the_others(tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(0.5), RATE)
    code, out, err = run_cli(capsys, tmp_path / "missing.wav", good, "-o", tmp_path / "out")
    assert code != 0 and "missing.wav" in err
    assert (tmp_path / "out" / "good" / "vocals.wav").is_file()


def test_bad_model_source_is_one_line(tmp_path, capsys):
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"junk")
    code = main(["separate", str(tmp_path / "x.wav"), "--model", str(junk), "-o", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "model.pt" in err and len(err.splitlines()) == 1


def test_train_then_separate_a_musdb_excerpt_end_to_end(tmp_path, sample_root, capsys):
    """The Foundation chain: `lightning-mad train` prints a checkpoint; `separate` with it writes two files whose
    sum is the mono mixture of the MUSDB excerpt (float output, within 1e-4)."""
    code = main(["train", "experiment=tiny", "profile=quick", f"output_dir={tmp_path / 'runs'}", "optim.max_epochs=1",
                 "trainer.limit_train_batches=2", "logger.wandb=false", "trainer.enable_progress_bar=false"])
    lines = [l for l in capsys.readouterr().out.strip().splitlines() if l.strip()]
    assert code == 0 and lines[-1].endswith(".ckpt"), lines[-3:]
    song = sample_root / "musdb18/test/The Easton Ellises - Falcon 69.stem.mp4"
    code = main(["separate", str(song), "--checkpoint", lines[-1], "-o", str(tmp_path / "out"), "--downmix", "--quiet"])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "out" / "The Easton Ellises - Falcon 69"
    vocals, rate = sf.read(folder / "vocals.wav")
    accompaniment, _ = sf.read(folder / "accompaniment.wav")
    mono = load_audio(song, None).mean(axis=0)
    assert rate == RATE and vocals.shape == mono.shape
    assert np.abs(vocals + accompaniment - mono).max() < 1e-4
    assert np.abs(vocals).max() > 0 and np.abs(accompaniment).max() > 0


def test_a_full_size_architecture_name_is_refused_without_random_weights(tmp_path, capsys):
    """``--model gru_nri`` (what an Open-Unmix or Demucs user types first) would write stems from random weights:
    refused in one line naming the shipped models and --checkpoint; --random-weights says it is meant."""
    song = tmp_path / "song.wav"
    sf.write(song, _tone(0.5), RATE)
    code = main(["separate", str(song), "--model", "gru_nri", "-o", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "mad-mir1k" in err and "--checkpoint" in err and "--random-weights" in err
    assert not (tmp_path / "out").exists()
    code = main(["separate", str(song), "--model", "gru_nri", "--random-weights", "-o", str(tmp_path / "out"),
                 "--quiet"])
    assert code == 0 and (tmp_path / "out" / "song" / "vocals.wav").is_file()
