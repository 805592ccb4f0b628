"""The trainer as a process (cloud/training/trainer.py): its own one-line reason becomes the run's,
a missing training install is named as such, a stuck trainer is stopped, and the command is the
one an engineer would type."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.training.schemas import TeachParameters
from cloud.training.trainer import TrainerError, run_trainer, train_argv


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_trainers_own_reason_is_the_runs_and_its_output_tail_is_kept(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "for i in range(100): print('line', i)\n"
        "sys.stderr.write('factory-models train defect: data/train/good: 5 image(s)\\n')\n"
        "sys.exit(2)\n"
    )
    with pytest.raises(TrainerError) as refused:
        run_trainer(python(script), tmp_path, lambda _tail: None)
    assert str(refused.value) == "factory-models train defect: data/train/good: 5 image(s)"
    lines = refused.value.tail.splitlines()
    assert lines[-1] == "factory-models train defect: data/train/good: 5 image(s)"
    assert len(lines) == 40  # the tail, not the whole output
    assert lines[0] == "line 61"


def test_a_worker_without_the_training_install_says_so(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match=r"not installed where the Celery worker runs"):
        run_trainer([sys.executable, "-m", "domain_models_not_here.cli"], tmp_path, lambda _t: None)


def test_a_clean_exit_returns_the_tail(tmp_path: Path) -> None:
    assert (
        run_trainer(python("print('wrote x.manifest.json')"), tmp_path, lambda _t: None)
        == "wrote x.manifest.json"
    )


def test_a_trainer_past_its_time_is_stopped(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match=r"ran past 1 s and was stopped"):
        run_trainer(python("import time; time.sleep(600)"), tmp_path, lambda _t: None, timeout_s=1.0)


def test_the_command_is_factory_models_train_defect_with_the_runs_parameters(tmp_path: Path) -> None:
    argv = train_argv(tmp_path / "data", tmp_path / "out", "m", "1.0.1", TeachParameters(seed=3, coreset=50))
    assert argv[:5] == [sys.executable, "-m", "domain_models.cli", "train", "defect"]
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags == {
        "--data": str(tmp_path / "data"), "--out": str(tmp_path / "out"), "--name": "m", "--version": "1.0.1",
        "--seed": "3", "--frr": "0.01", "--coreset": "50", "--max-images": "200", "--width": "256",
        "--height": "192", "--threads": "2", "--threshold-folds": "5",
    }  # fmt: skip


def test_one_threshold_fold_is_refused_before_a_run_is_queued() -> None:
    with pytest.raises(ValidationError, match="1 fold scores nothing out of fold"):
        TeachParameters(threshold_folds=1)
    assert TeachParameters(threshold_folds=0).threshold_folds == 0
