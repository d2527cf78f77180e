"""The evaluation subcommands of ``python -m intenttuner``: ``eval-prompts`` (the plan of an
intent) and ``evaluate`` (score images generated from it)."""

from __future__ import annotations

import sys
from pathlib import Path

from .cli_common import add_model_flags, use_models_dir


def add_parsers(sub) -> None:
    from .evaluation.prompts import PlanSettings

    prompts = sub.add_parser("eval-prompts", help="write the evaluation plan of an intent and "
                             "print its prompts")
    prompts.add_argument("intent", type=Path, metavar="INTENT_JSON",
                         help="an intent saved with its crops (Save Intent, Intent.save)")
    prompts.add_argument("--out", type=Path, required=True, metavar="PLAN_JSON",
                         help="the plan file to write (never overwritten)")
    for flag, field in (("--prompts-per-test", "prompts_per_test"),
                        ("--images-per-prompt", "images_per_prompt"), ("--seed", "seed")):
        prompts.add_argument(flag, type=int, metavar="N", default=getattr(PlanSettings, field),
                             help=f"{field} of the plan (default %(default)s)")

    evaluate = sub.add_parser("evaluate", help="score images generated from an evaluation plan")
    evaluate.add_argument("--plan", type=Path, required=True, help="the plan (eval-prompts)")
    evaluate.add_argument("--intent", type=Path, required=True,
                          help="the intent the plan was made from")
    evaluate.add_argument("--images", type=Path, required=True, metavar="DIR",
                          help="the generated images, each file name starting with its plan "
                               "item's id (stability-000.png, stability-000_00001_.png)")
    evaluate.add_argument("--label", help="the model's name in the report (default: the "
                                          "images folder's name)")
    evaluate.add_argument("--reference-images", type=Path, metavar="DIR",
                          help="the training images: kept concepts found there join the "
                               "intent's reference crops")
    evaluate.add_argument("--out", type=Path, metavar="DIR",
                          help="a new or empty folder for the results (default: a new "
                               "<images>-evaluation folder beside the images, numbered when "
                               "taken)")
    evaluate.add_argument("--models-dir", type=Path, help="the models root (as for train)")
    add_model_flags(evaluate)


def eval_prompts(args) -> int:
    from .evaluation.files import read_text, save_plan
    from .evaluation.prompts import PlanSettings, build_plan
    from .intent.schema import Intent

    intent = Intent.from_json(read_text(args.intent, "intent JSON"), what=str(args.intent))
    settings = PlanSettings(prompts_per_test=args.prompts_per_test,
                            images_per_prompt=args.images_per_prompt, seed=args.seed)
    plan = build_plan(intent, settings)
    save_plan(plan, args.out)
    for item in plan.items:
        print(f"{item.id}  seed {item.seed}  {item.prompt}")
    for note in plan.notes:
        print(f"note: {note}")
    first = plan.items[0].id
    print(f"plan: {args.out} ({len(plan.items)} images). Name each image after its item id "
          f"({first}.png, or {first}_00001_.png for several), then run: python -m "
          f"intenttuner evaluate --plan {args.out} --intent {args.intent} --images DIR")
    return 0


def evaluate(args) -> int:
    from .dataset.image_folder import load_image_folder
    from .evaluation.evaluate import evaluate
    from .evaluation.files import (
        load_generated,
        load_plan,
        output_folder,
        read_text,
        write_results,
    )
    from .evaluation.models import load_eval_models
    from .evaluation.pairing import check_intent
    from .intent.schema import Intent

    use_models_dir(args.models_dir)
    plan = load_plan(args.plan)
    intent = Intent.from_json(read_text(args.intent, "intent JSON"), what=str(args.intent))
    check_intent(plan, intent)
    generated = load_generated(plan, args.images)
    references = None
    if args.reference_images:
        loaded = load_image_folder(args.reference_images)
        if loaded.skipped:  # say which training images the references leave out, and why
            print(loaded.report(), file=sys.stderr)
        references = loaded.images
    out = output_folder(args.out, args.images)  # refused before minutes of scoring, not after
    models = load_eval_models(args.detector, args.identity_encoder, args.clip, args.quality,
                              args.quality_clip)
    label = args.label or args.images.resolve().name
    scores = evaluate(generated, intent, models, label, references)
    if args.out is None:  # numbered when the results are ready: a run started meanwhile may
        out = output_folder(None, args.images)  # have taken the number picked before scoring
    paths = write_results(out, generated, scores)
    print_scores(scores, len(generated))
    print(f"results: {out} ({', '.join(p.name for p in paths)})")
    return 0


def print_scores(scores, images: int) -> None:
    """The report's table as text (one line per column), each metric's concepts under it."""
    from .evaluation.preview import concept_line
    from .evaluation.report import COLUMNS, table_rows

    (row,) = table_rows([scores])
    width = max(len(column.title) for column in COLUMNS)
    print(f"{scores.label}: {images} images")
    for column in COLUMNS:
        value = row[column.key]
        text = f"{value:.3f}" if value is not None else row["missing"][column.key]
        print(f"  {column.title:<{width}}  {text}")
        if column.part is None:
            for concept in scores.results[column.metric.value].concepts:
                print(f"      {concept_line(concept)}")
    for result in scores.results.values():
        for warning in result.warnings:
            print(f"warning: {warning}")
