"""lightning_mad.audio: decoding, resampling, downmix, atomic writes and one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lightning_mad import audio
from lightning_mad.audio import AudioError, audio_info, load_audio, load_stems, to_mono, write_audio

FALCON = "musdb18/test/The Easton Ellises - Falcon 69.stem.mp4"
FALCON_SAMPLES = 268288


def _noise(channels=2, samples=4410, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (channels, samples)).astype(np.float32)


@pytest.mark.parametrize("suffix,subtype,tol", [(".wav", "FLOAT", 0), (".wav", "PCM_16", 2**-15),
                                                (".flac", "PCM_24", 2**-23)])
def test_write_then_load_roundtrip(tmp_path, suffix, subtype, tol):
    x = _noise()
    path = write_audio(tmp_path / f"x{suffix}", x, 22050, subtype=subtype)
    y = load_audio(path, None)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tol
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames, info.streams) == (22050, 2, x.shape[1], 1)


def test_mono_input_and_output(tmp_path):
    x = _noise(1)[0]
    y = load_audio(write_audio(tmp_path / "m.wav", x, 44100), 44100)
    assert y.shape == (1, x.size)
    np.testing.assert_array_equal(y[0], x)


def test_lossy_formats_load(tmp_path):
    x = _noise(2, 44100)
    for suffix, subtype in ((".ogg", "VORBIS"), (".mp3", "MPEG_LAYER_III")):
        try:
            sf.write(tmp_path / f"x{suffix}", x.T, 44100, subtype=subtype)
        except (sf.LibsndfileError, ValueError, TypeError):
            pytest.skip(f"this libsndfile cannot write {subtype}")
        y = load_audio(tmp_path / f"x{suffix}", 44100)
        assert y.shape[0] == 2 and abs(y.shape[1] - 44100) < 3000


def test_resample_16k_to_44k_keeps_length_and_frequency(tmp_path):
    rate, n, freq = 16000, 16000, 1000.0
    t = np.arange(n) / rate
    path = write_audio(tmp_path / "sine.wav", 0.5 * np.sin(2 * np.pi * freq * t), rate)
    y = load_audio(path, 44100)[0]
    assert y.shape == (round(n * 44100 / rate),)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    peak_hz = np.argmax(spectrum) * 44100 / y.size
    assert abs(peak_hz - freq) <= 1.0
    middle = y[2000:-2000]
    assert 0.48 < np.abs(middle).max() < 0.52  # amplitude kept, no aliasing images adding energy
    assert load_audio(path, None).shape == (1, n)


def test_to_mono_is_half_left_plus_right():
    x = np.array([[1.0, 2.0, -1.0], [3.0, 4.0, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(to_mono(x), [2.0, 3.0, -0.25])
    assert to_mono(x).dtype == np.float32
    np.testing.assert_array_equal(to_mono(x[0]), x[0])
    np.testing.assert_allclose(to_mono(np.ones((3, 4))), np.ones(4))
    with pytest.raises(ValueError):
        to_mono(np.zeros((1, 2, 3)))


def test_stem_mp4_streams_match_musdb(sample_root):
    path = sample_root / FALCON
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.streams) == (44100, 2, 5)
    stems = load_stems(path)
    assert list(stems) == ["mixture", "drums", "bass", "other", "vocals"]
    assert all(s.shape == (2, FALCON_SAMPLES) and s.dtype == np.float32 for s in stems.values())
    np.testing.assert_array_equal(load_audio(path), stems["mixture"])

    import musdb

    track = musdb.DB(root=str(sample_root / "musdb18"), subsets="test").tracks[0]
    for name in ("drums", "bass", "other", "vocals"):  # same stream order as musdb / stempeg
        # stempeg decodes through 16-bit PCM (clipped at full scale; a few encoder transients exceed it)
        np.testing.assert_allclose(np.clip(stems[name], -1, 1 - 2**-15), track.sources[name].audio.T, atol=2e-5)


def test_stem_mp4_matches_ffmpeg_decoded_wavs(sample_root, musdb_wav_root):
    stems = load_stems(sample_root / FALCON)
    folder = musdb_wav_root / "test/The Easton Ellises - Falcon 69"
    for name, x in stems.items():  # the WAVs are 16-bit: clipped at full scale
        np.testing.assert_allclose(np.clip(x, -1, 1 - 2**-15), load_audio(folder / f"{name}.wav"), atol=2**-15 + 1e-7)


def test_stem_mp4_resampled(sample_root):
    y = load_audio(sample_root / FALCON, 16000, stream=4)
    assert y.shape == (2, round(FALCON_SAMPLES * 16000 / 44100))
    with pytest.raises(AudioError, match="stream 7"):
        load_audio(sample_root / FALCON, stream=7)


def _assert_one_line(err: AudioError, path, words: str):
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert words in message


def test_errors_name_the_file(tmp_path):
    cases = {}
    cases["missing.wav"] = "no such file"
    (tmp_path / "folder.wav").mkdir()
    cases["folder.wav"] = "is a directory"
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty.wav"] = "empty file"
    (tmp_path / "text.wav").write_text("this is not audio\n")
    cases["text.wav"] = "not a readable audio file"
    (tmp_path / "text.mp4").write_text("this is not audio either\n")
    cases["text.mp4"] = "not a readable audio file"
    sf.write(tmp_path / "zero.wav", np.zeros((0, 2), np.float32), 44100)
    cases["zero.wav"] = "no samples"
    sf.write(tmp_path / "nan.wav", np.full((100, 1), np.nan, np.float32), 44100, subtype="FLOAT")
    cases["nan.wav"] = "NaN"
    full = write_audio(tmp_path / "full.wav", _noise(), 44100, "PCM_16")
    (tmp_path / "cut.wav").write_bytes(full.read_bytes()[:-5000])
    cases["cut.wav"] = "truncated"
    for name, words in cases.items():
        with pytest.raises(AudioError) as err:
            load_audio(tmp_path / name)
        _assert_one_line(err, tmp_path / name, words)
    with pytest.raises(AudioError) as err:
        audio_info(tmp_path / "text.wav")
    _assert_one_line(err, tmp_path / "text.wav", "not a readable audio file")


def test_truncated_stem_mp4(tmp_path, sample_root):
    data = (sample_root / FALCON).read_bytes()
    cut = tmp_path / "cut.stem.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as err:
        load_stems(cut)
    assert str(err.value).startswith(f"{cut}: ") and "\n" not in str(err.value)


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "out.wav"
    write_audio(target, _noise(), 44100)
    before = target.read_bytes()

    def broken_write(file, data, *args, **kwargs):
        with open(file, "wb") as f:  # a partial file under the temporary name, then a crash
            f.write(b"RIFF partial")
        raise OSError("disk full")

    monkeypatch.setattr(audio.sf, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_audio(target, _noise(seed=1), 44100)
    with pytest.raises(OSError):
        write_audio(tmp_path / "new.wav", _noise(), 44100)
    assert target.read_bytes() == before  # the old file is untouched
    assert not (tmp_path / "new.wav").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out.wav", "sub"]  # no temporary leftovers


def test_write_options(tmp_path):
    path = write_audio(tmp_path / "clip.wav", np.array([1.5, -1.5, 0.25]), 8000, subtype="PCM_16")
    np.testing.assert_array_equal(sf.read(path, dtype="int16")[0], [32767, -32768, 8192])
    assert sf.info(path).subtype == "PCM_16"
    with pytest.raises(ValueError, match="FLOAT"):
        write_audio(tmp_path / "x.flac", _noise(), 44100, subtype="FLOAT")
    with pytest.raises(ValueError, match="suffix"):
        write_audio(tmp_path / "x.mp3", _noise(), 44100)
    with pytest.raises(ValueError, match="channels, samples"):
        write_audio(tmp_path / "x.wav", _noise().T, 44100)
