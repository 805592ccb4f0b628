"""The ``defect`` domain of ``factory-models``: train / evaluate / quantize / export.

Torch is imported only by ``train``; the other commands run with onnxruntime alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from domain_models.cli_options import add_evaluate_arguments
from domain_models.common import PipelineError

# Mirrors TrainConfig.type_flag's default (importing train here would import torch).
DEFAULT_TYPE_FLAG = 0.9

if TYPE_CHECKING:
    from domain_models.anomaly.train import TrainConfig
    from domain_models.anomaly.type_eval import TypeReport


TRAIN_HELP = """\
Few-shot defect model from an MVTec AD folder:

  DATA/train/good/*.png           good parts to fit on (at least 13)
  DATA/calibration/good/*.png     optional: more good parts, for the threshold only
  DATA/test/good, test/<type>     optional: held-out parts, evaluated after training
  DATA/train/<type>/*.png         optional: a few labelled defects per type (>= 3 each;
                                  or --labelled DIR with DIR/<type>/*.png instead)

With labelled defects a supervised head names the type of each part the anomaly threshold
flags (labels good, anomaly, <types...>); a part it is unsure of, or a kind nobody labelled,
stays 'anomaly'. The output says whether labelled defects were found and used.

OUT/MODEL_CARD.md is written with the measured figures; edit its "To fill in" section before
pushing. `quantize defect` adds its INT8 verdict to that card.
"""


class _DescriptionAndDefaults(argparse.RawDescriptionHelpFormatter):
    """The layout of TRAIN_HELP kept as written, and each option's default shown where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if unset or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def _probability_or_off(text: str) -> float | None:
    if text == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1) or 'off', got {text!r}") from None


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Options of ``command`` for the defect (anomaly) domain."""
    if command == "train":
        parser.description = TRAIN_HELP
        parser.formatter_class = _DescriptionAndDefaults
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--data",
            type=Path,
            help="MVTec AD folder (train/good; optional train/<type> labelled)",
        )
        source.add_argument(
            "--dataset",
            dest="dataset_id",
            metavar="ID",
            help="A cloud dataset (capture id): downloaded, each file checked against its SHA-256",
        )
        parser.add_argument(
            "--cloud",
            default=None,
            metavar="URL",
            help="API of --dataset (default: $FACTORY_API_URL, else http://127.0.0.1:8000); "
            "the token comes from $FACTORY_API_TOKEN",
        )
        parser.add_argument(
            "--dataset-dir",
            type=Path,
            default=None,
            help="Keep the --dataset download here, absent or empty (default: a temporary folder)",
        )
        parser.add_argument("--out", type=Path, required=True, help="Folder for the release files")
        parser.add_argument("--seed", type=int, default=0, help="Split and coreset seed")
        parser.add_argument("--max-images", type=int, default=200, help="Use at most this many good images")
        parser.add_argument("--frr", type=float, default=0.01, help="False-reject rate the threshold targets")
        parser.add_argument(
            "--threshold-folds",
            type=int,
            default=0,
            metavar="K",
            help=(
                "Set the threshold on every train/good image, each scored by a model fit on the other "
                "K-1 folds, and fit the released model on all of them (default 0: hold out a fifth). "
                "For a few hundred images or fewer: K=5 sets it on five times as many images"
            ),
        )
        parser.add_argument("--width", type=int, default=256, help="Model input width")
        parser.add_argument("--height", type=int, default=192, help="Model input height")
        parser.add_argument("--coreset", type=int, default=1000, help="Memory-bank patches")
        parser.add_argument("--name", default="defect-patchcore", help="Model name")
        parser.add_argument("--version", default="1.0.0", help="Model version")
        parser.add_argument("--threads", type=int, default=2, help="CPU threads")
        parser.add_argument(
            "--labelled",
            type=Path,
            default=None,
            help=(
                "Optional labelled defects, <type>/*.png (at least 3 per type), for a supervised type "
                "head that names the type of a flagged part (default: DATA/train/<type>/ if present; "
                "parts the head is unsure of, and unseen kinds, stay 'anomaly')"
            ),
        )
        parser.add_argument(
            "--type-confidence",
            type=float,
            default=0.5,
            help="Least type probability that names a flagged part's type (else 'anomaly')",
        )
        parser.add_argument(
            "--type-flag",
            type=_probability_or_off,
            default=DEFAULT_TYPE_FLAG,
            help=(
                f"Also flag a part below the anomaly threshold when the head names a type with at "
                f"least this probability (default {DEFAULT_TYPE_FLAG}; 'off': the threshold alone "
                "decides; 'evaluate' prints the trade-off)"
            ),
        )
    elif command == "evaluate":
        add_evaluate_arguments(parser, "MVTec AD folder (test/ is used)", data_default=None)
    elif command == "quantize":
        parser.add_argument("--model", type=Path, required=True, help="FP32 <name>.manifest.json")
        parser.add_argument("--data", type=Path, required=True, help="The MVTec folder it was trained on")
        parser.add_argument("--tolerance", type=float, default=1.0, help="Largest allowed drop, in points")
        parser.add_argument(
            "--out", type=Path, default=None, help="Folder for INT8 (default: beside the model)"
        )
        parser.add_argument("--calib-images", type=int, default=64, help="Good images for activation ranges")
    elif command == "export":
        parser.add_argument("--model", type=Path, required=True, help="<name>.manifest.json")
        parser.add_argument("--out", type=Path, required=True, help="Folder to package the release into")
    else:
        raise ValueError(f"defect domain: unknown command {command!r}")


def _train(args: argparse.Namespace) -> int:
    if args.dataset_id is None:
        if args.cloud is not None or args.dataset_dir is not None:
            raise PipelineError("--cloud and --dataset-dir go with --dataset ID, not --data DIR")
        return _train_folder(args)
    # The download's folder is the run's --data; a temporary one goes once the release is written.
    with tempfile.TemporaryDirectory(prefix="factory-dataset-") as scratch:
        target = args.dataset_dir or Path(scratch) / args.dataset_id
        args.cloud = download_into(args.dataset_id, args.cloud, target)
        args.data = target
        return _train_folder(args)


def download_into(dataset_id: str, cloud: str | None, target: Path) -> str:
    """Download ``dataset_id`` into ``target``; the cloud URL used (recorded in the card's command)."""
    from domain_models.dataset_download import TOKEN_ENV, cloud_url, download_dataset

    url = cloud_url(cloud, os.environ)
    facts = download_dataset(dataset_id, url, os.environ.get(TOKEN_ENV), target)
    sys.stdout.write(f"dataset {dataset_id} from {url}: {len(facts['files'])} files checked into {target}\n")
    return url


def _train_folder(args: argparse.Namespace) -> int:
    from domain_models.anomaly.data import MIN_TRAIN_GOOD, open_mvtec

    # The folder first, before anything slow (torch takes seconds to import) or beside the point.
    open_mvtec(args.data, min_train=MIN_TRAIN_GOOD, need_test=False)
    from domain_models.anomaly.draft_card import TrainFacts, reproduce_command, write_train_card
    from domain_models.anomaly.evaluate import format_report
    from domain_models.anomaly.train import train_run

    try:
        cfg = _train_config(args)
    except ValidationError as exc:
        details = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise PipelineError(f"invalid options: {details}") from None
    from domain_models.anomaly.labelled import find_labelled

    labelled = find_labelled(cfg.data, cfg.labelled)
    if labelled is None:
        sys.stdout.write(
            f"no labelled defects ({args.data / 'train'}/<type>/ or --labelled): few-shot only, "
            "labels good/anomaly\n"
        )
    else:
        sys.stdout.write(f"type head: {labelled.describe()}\n")
    outcome = train_run(cfg)
    manifest = outcome.manifest
    sys.stdout.write(f"wrote {manifest}\n")
    types = None
    if outcome.report is not None:
        sys.stdout.write(format_report(outcome.report, f"{manifest.name} on {args.data}"))
        if labelled is not None:
            types = _write_types(manifest, args.data, args.threads)
    facts = TrainFacts(
        data=cfg.data,
        available=outcome.available,
        fitted=outcome.fitted,
        held_out=outcome.held_out,
        calibration=outcome.calibration,
        cross_fitted=outcome.cross_fitted,
        folds=outcome.folds,
        labelled=labelled.describe() if labelled is not None else None,
        coreset=cfg.coreset,
        frr=cfg.frr,
        command=reproduce_command(vars(args), type_head=labelled is not None),
    )
    card = write_train_card(manifest, facts, outcome.report, types)
    sys.stdout.write(f"wrote {card} (measured figures; fill in its last section before pushing)\n")
    return 0


def _write_types(manifest_path: Path, data: Path, threads: int, json_path: Path | None = None) -> TypeReport:
    """The type head's figures on DATA/test (labelled defects never fitted on)."""
    from domain_models.anomaly.data import open_mvtec
    from domain_models.anomaly.evaluate import open_model
    from domain_models.anomaly.type_eval import evaluate_types, format_types

    manifest, onnx_path = open_model(manifest_path)
    report = evaluate_types(onnx_path, manifest, open_mvtec(data, min_train=0), threads)
    sys.stdout.write(format_types(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report


def _train_config(args: argparse.Namespace) -> TrainConfig:
    from domain_models.anomaly.train import TrainConfig

    # Every train flag is named after its TrainConfig field; fields without a flag keep their default.
    given = vars(args)
    return TrainConfig.model_validate(
        {name: given[name] for name in TrainConfig.model_fields if name in given}
    )


def _evaluate(args: argparse.Namespace) -> int:
    from domain_models.anomaly.data import open_mvtec
    from domain_models.anomaly.evaluate import evaluate_onnx, format_report, open_model
    from protocol.inference import DEFECT_KEY, TYPE_OUTPUT

    manifest, onnx_path = open_model(args.model)
    if manifest.preprocessing is None:
        raise PipelineError(f"{args.model}: no preprocessing")
    folder = open_mvtec(args.data, min_train=0)
    report = evaluate_onnx(
        onnx_path, manifest.preprocessing, manifest.thresholds[DEFECT_KEY], folder, args.threads
    )
    sys.stdout.write(format_report(report, f"{manifest.name} {manifest.version} on {args.data}"))
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    if TYPE_OUTPUT in {o.name for o in manifest.outputs}:
        types_json = args.json.with_suffix(".types.json") if args.json else None
        _write_types(args.model, args.data, args.threads, types_json)
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from domain_models.anomaly.draft_card import record_int8
    from domain_models.anomaly.quantize import quantize_model

    result = quantize_model(
        args.model, args.data, args.tolerance, args.out, args.calib_images, latency_threads=(1, 2)
    )
    for c in result.checks:
        sys.stdout.write(c.describe() + "\n")
    # Passed or refused, the card says so: a user looking for the INT8 file finds why there is none.
    card = record_int8(args.model, result)
    if result.manifest is None:
        sys.stderr.write(
            f"quantize: INT8 refused, {result.reason()}; no INT8 model written (the refusal is recorded in {card})\n"
        )
        return 1
    beside_int8 = result.manifest.parent / card.name
    if beside_int8.resolve() != card.resolve():
        # The INT8 release went to another folder (--out): it ships with the card too.
        shutil.copyfile(card, beside_int8)
        card = beside_int8
    sys.stdout.write(f"wrote {result.manifest}; INT8 section in {card}\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from domain_models.anomaly.evaluate import open_model

    manifest, onnx_path = open_model(args.model)  # verifies hashes and the graph's I/O
    args.out.mkdir(parents=True, exist_ok=True)
    names = [onnx_path.name, args.model.name, *manifest.files]
    card = args.model.parent / "MODEL_CARD.md"
    if card.is_file():
        names.append(card.name)
    for name in names:
        src = args.model.parent / name
        if src.resolve() != (args.out / name).resolve():
            shutil.copyfile(src, args.out / name)
    sys.stdout.write(f"packaged {len(names)} files of {manifest.name} {manifest.version} into {args.out}\n")
    return 0


_RUNNERS = {"train": _train, "evaluate": _evaluate, "quantize": _quantize, "export": _export}


def run(command: str, args: argparse.Namespace) -> int:
    """Run one command; a user-fixable problem is one line on stderr and exit code 2."""
    try:
        return _RUNNERS[command](args)
    except PipelineError as exc:
        sys.stderr.write(f"factory-models {command} defect: {exc}\n")
        return 2
