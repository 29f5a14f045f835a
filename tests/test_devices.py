"""The device key: its default, its errors, and that it reaches the model loader of every command that separates
(evaluate, table with its listening examples and recurrent-inference sweep, mir1k-benchmark, separate). GPU
training's loader settings. Everything here runs on the CPU: the device a command asks for is recorded, the model
still loads on the CPU."""
import copy
import shutil

import pytest
import torch
import yaml

from lightning_mad import cli, devices
from lightning_mad.errors import ConfigError
from lightning_mad.inference import api

ASKED = "cuda:7"  # a device no test machine has: only the recorder sees it


def test_default_device_follows_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.default_device() == "cpu" and devices.resolve_device(None) == "cpu"
    assert devices.resolve_device("auto") == "cpu" and devices.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.default_device() == "cuda" and devices.resolve_device("") == "cuda"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal of CUDA where torch sees none")
@pytest.mark.parametrize("name, message", [("cuda", "sees no CUDA device"), ("cuda:1", "sees no CUDA device"),
                                           ("gpu0", "expected cpu, cuda or cuda:N")])
def test_unusable_device_is_a_one_line_error(name, message):
    with pytest.raises(ConfigError, match=message):
        devices.resolve_device(name)


@pytest.mark.parametrize("command", [["evaluate", "--help"], ["table", "--help"], ["mir1k-benchmark", "--help"]])
def test_help_states_the_device_default(command, capsys):
    assert cli.main(command) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "device=STR" in text and "default: cuda when available, else cpu" in text


def test_separate_help_states_the_device_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["separate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--device" in text and "default: cuda when available, else cpu" in text


@pytest.fixture
def asked(monkeypatch):
    """The devices the commands ask the loader for (the model itself loads on the CPU); resolve_device passes the
    asked name through, so a CUDA name reaches the loader on a machine without CUDA."""
    seen = []
    real = api.load_model

    def recording_load(source=None, device="cpu", **kwargs):
        seen.append(str(device))
        return real(source, "cpu", **kwargs)

    monkeypatch.setattr(api, "load_model", recording_load)
    monkeypatch.setattr(devices, "resolve_device", lambda name=None: "default" if name is None else name)
    return seen


EVAL_ARGS = ["model=tiny", "data=sample", "tracks=Kenshin_4_10", "workers=0", "logger.wandb=false",
             "inference.phase_iterations=1"]


def test_evaluate_passes_the_device(asked, tmp_path, capsys):
    assert cli.main(["evaluate", *EVAL_ARGS, f"output_dir={tmp_path / 'a'}", f"device={ASKED}"]) == 0
    assert cli.main(["evaluate", *EVAL_ARGS, f"output_dir={tmp_path / 'b'}"]) == 0
    assert asked == [ASKED, "default"]


def test_separate_passes_the_device(asked, tmp_path, sample_root, capsys):
    clip = sample_root / "mir1k" / "Wavfile" / "Kenshin_4_10.flac"
    assert cli.main(["separate", str(clip), "--model", "tiny", "-o", str(tmp_path), "--device", ASKED,
                     "--quiet"]) == 0
    assert cli.main(["separate", str(clip), "--model", "tiny", "-o", str(tmp_path), "--quiet"]) == 0
    assert asked == [ASKED, "default"]


def test_separate_default_device_is_the_cpu_without_cuda(monkeypatch, tmp_path, sample_root, capsys):
    seen = []
    real = api.load_model
    monkeypatch.setattr(api, "load_model", lambda source=None, device="cpu", **kwargs:
                        seen.append(device) or real(source, device, **kwargs))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    clip = sample_root / "mir1k" / "Wavfile" / "Kenshin_4_10.flac"
    assert cli.main(["separate", str(clip), "--model", "tiny", "-o", str(tmp_path), "--quiet"]) == 0
    assert seen == ["cpu"]


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    """One finished tiny training run (one batch), handed to the table and the benchmark instead of training."""
    from lightning_mad.config.load import load_config
    from lightning_mad.train import train

    out = tmp_path_factory.mktemp("device_runs")
    cfg = load_config(["experiment=tiny", "profile=quick", f"output_dir={out}", "optim.max_epochs=1",
                       "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "logger.wandb=false",
                       "trainer.enable_progress_bar=false"])
    return train(cfg)


def _reuse(monkeypatch, result, tmp_path):
    """``train`` replaced by a copy of ``result`` in a fresh run folder (so each row writes its own eval files)."""
    import lightning_mad.train as train_module

    def fake_train(cfg):
        run = tmp_path / "runs" / str(cfg.experiment)
        if not run.exists():
            shutil.copytree(result["run_dir"], run)
        out = copy.deepcopy(result)
        out["run_dir"] = str(run)
        out["best_checkpoint"] = str(run / "checkpoints" / (result["best_checkpoint"].split("/")[-1]))
        return out

    monkeypatch.setattr(train_module, "train", fake_train)


def test_table_passes_the_device_to_evaluation_examples_and_sweep(asked, tiny_result, tmp_path, monkeypatch,
                                                                     capsys):
    _reuse(monkeypatch, tiny_result, tmp_path)
    registry = tmp_path / "table.yaml"
    registry.write_text(yaml.safe_dump({"rows": [{"name": "TINY", "experiment": "tiny", "ri_sweep": True}]}))
    args = ["table", "profile=quick", "data=sample", f"registry={registry}", f"out={tmp_path / 'results'}",
            "tracks=Kenshin_4_10", "workers=0", "oracles=false", "logger.wandb=false",
            "inference.phase_iterations=1", f"device={ASKED}"]
    assert cli.main(args) == 0
    # evaluate, the listening examples, the recurrent-inference sweep
    assert asked == [ASKED] * 3
    assert list((tmp_path / "results" / "ri_sweep").rglob("test_epoch*.csv"))


def test_mir1k_benchmark_passes_the_device(asked, tiny_result, tmp_path, monkeypatch, project_root, capsys):
    monkeypatch.chdir(project_root)
    _reuse(monkeypatch, tiny_result, tmp_path)
    registry = tmp_path / "mir1k.yaml"
    registry.write_text(yaml.safe_dump({"rows": [{"name": "TINY", "experiment": "tiny"}]}))
    args = ["mir1k-benchmark", f"registry={registry}", f"out={tmp_path / 'results'}", "limit=1", "workers=0",
            "logger.wandb=false", f"device={ASKED}"]
    assert cli.main(args) == 0
    assert asked == [ASKED] * 2  # evaluate, the listening examples


# --- GPU training: loader workers and pinned memory ----------------------------------------------------------------
def test_loader_settings_pin_and_add_workers_on_a_gpu_trainer_only(monkeypatch):
    from lightning_mad.data.datamodule import MAX_GPU_WORKERS, loader_settings

    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert loader_settings("cpu", 2, 0) == (0, False) and loader_settings("cpu", 1, 3) == (3, False)
    assert loader_settings("gpu", 1, 0) == (MAX_GPU_WORKERS, True)
    assert loader_settings("cuda", 1, 2) == (2, True)  # a given worker count is kept
    assert loader_settings("gpu", -1, 0) == (2, True)  # 16 cores over the 8 visible GPUs
    assert loader_settings("gpu", [0, 1, 2, 3, 4, 5, 6, 7], 0) == (2, True)
    assert loader_settings("gpu", "0,1", 0) == (MAX_GPU_WORKERS, True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert loader_settings("auto", 1, 0) == (0, False)


def test_gpu_trainer_presets_build_a_pinned_loader_with_workers(monkeypatch):
    """trainer=gpu / trainer=ddp are GPU presets (gpu: one device; ddp: every visible one, NCCL DDP), and the
    DataModule they get pins its batches and has loader workers; the CPU preset's does neither."""
    from lightning_mad.config.load import load_config
    from lightning_mad.train import build_datamodule, build_system

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = load_config(["experiment=tiny", "trainer=gpu", "data=sample"])
    ddp = load_config(["experiment=tiny", "trainer=ddp", "data=sample"])
    assert (gpu.trainer.accelerator, gpu.trainer.devices, gpu.trainer.strategy) == ("gpu", 1, "auto")
    assert (ddp.trainer.accelerator, ddp.trainer.devices, ddp.trainer.strategy) == ("gpu", -1, "ddp")
    assert load_config(["profile=paper", "data=sample"]).trainer.preset == "gpu"
    for cfg, pinned in ((gpu, True), (ddp, True), (load_config(["experiment=tiny", "data=sample"]), False)):
        dm = build_datamodule(cfg, build_system(cfg))
        assert dm.pin_memory is pinned and (dm.num_workers > 0) is pinned
