"""Prompt Adapt throughput: Promptist rewriting evaluation prompts batched vs one prompt per
generate call, in the same run.

The model is GPT-2 small at full size (n_layer 12, n_embd 768, n_head 12, n_positions 1024,
vocab 50257: microsoft/Promptist's sizes) with random weights (GPT-2's own initialisation,
seed 0), written in Promptist's file layout with the tiny builder's code
(`intenttuner.tiny.prompt_adapter`: its config and tokenizer writers, the vocabulary filled up
to 50257 tokens with ``<|endoftext|>`` last, as in GPT-2) and loaded through the real loader,
fp32 on CPU. Nothing is downloaded. The prompts are the first ``--prompts`` of the 16 distinct
prompts of an evaluation plan (`build_plan`: stability, then controllability's two hair
colours, "a photo of vin with red hair, in a cafe"); the first 8 are 11-18 tokens with
" Rephrase:".

Decoding is the paper's, `GENERATION` as is: 8 beams, 75 new tokens, length penalty -1.

- batched: ``rephrase(prompts, batch_size=--batch)``: left-padded batches of 8 prompts, so
  8 x 8 = 64 sequences per decoding step;
- one at a time (the naive baseline): ``rephrase(prompts, batch_size=1)``, one generate call
  per prompt (8 sequences per step).

A random model never ends a rewrite early (its ``<|endoftext|>`` embedding row is zero, so that
logit is 0, the median of 50257 random ones: never among the best candidates), so every prompt
gets all 75 new tokens: the real worst case (the trained Promptist often stops sooner, which
makes both ways faster). Every generate call is checked for it (the rewrites that ended early
are counted and printed). The two ways take turns, ``--runs`` times; the medians (s, prompts/s)
and each run's times and ratio (one at a time / batched: above 1 means batching pays) are
printed, and whether both gave the same rewrites (left padding makes a batch rewrite each
prompt as it would alone; where fp32 rounding, which differs with the batch shape, flips a
near-tie between beams of the random model, the count of prompts that differ is printed).
Peak RSS: after loading (the folder is written in a spawned child, so its copy of the model
does not count), then reset (Linux clear_refs) before each turn: the peak while rephrasing,
the resident model included.

The default is 8 prompts (one batch), not the plan's 16: on the shared 2-core machine one
prompt alone took 19-37 s to rewrite, and 8 prompts with ``--runs 3`` took 17 minutes in all
(other work running), so all 16 (``--prompts 16``) would take over half an hour.

    .venv/bin/python -m bench.prompt_adapt [--prompts 8] [--batch 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script (python bench/prompt_adapt.py)
    sys.path.insert(0, str(ROOT))

NAME = "promptist-random"
# microsoft/Promptist's config.json sizes (GPT-2 small).
GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "n_ctx": 1024}
VOCAB = 50257  # GPT-2's: 50256 merged tokens, then <|endoftext|>
DESCRIPTION = ("trigger: vin. Keep his face. His hair colour should switch between red hair "
               "and blue hair. Never a necklace.")
# The library is imported inside the functions, after the path set-up above (as in
# bench/evaluate.py); the folder is built in a spawned child that imports this module.


def full_vocabulary(target: Path) -> int:
    """The tiny adapter's tokenizer files (a BPE learnt from prompt words, so prompts take
    about as many tokens as with GPT-2's), filled up to GPT-2's 50257 tokens with distinct
    filler words ("Ġt1234", decode only: no merge makes them) and ``<|endoftext|>`` moved to
    the last id, 50256, as in GPT-2. Every id the model can emit then decodes to text, so two
    rewrites are the same text only when they are the same tokens. Returns the eos id."""
    from intenttuner.tiny.prompt_adapter import EOS, write_tokenizer

    write_tokenizer(target)
    data = json.loads((target / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    del vocab[EOS]
    learnt = len(vocab)
    vocab.update({f"Ġt{i}": i for i in range(learnt, VOCAB - 1)})
    if len(vocab) != VOCAB - 1 or sorted(vocab.values()) != list(range(VOCAB - 1)):
        raise AssertionError("the filler tokens collide with learnt ones")
    vocab[EOS] = VOCAB - 1
    for token in data["added_tokens"]:  # <|endoftext|> only
        token["id"] = VOCAB - 1
    (target / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False),
                                           encoding="utf-8")
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return VOCAB - 1


def build(target: str) -> None:
    """Write the random full-size Promptist folder ``target`` (as `make_tiny` does, at
    GPT-2 small's sizes and initialisation). Runs in a child process."""
    import torch
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    from intenttuner.tiny.prompt_adapter import checkpoint_config

    folder = Path(target)
    folder.mkdir(parents=True)
    eos_id = full_vocabulary(folder)
    config = checkpoint_config({**GPT2_SMALL, "vocab_size": VOCAB}, eos_id)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config.from_dict(config))
    with torch.no_grad():
        model.get_input_embeddings().weight[eos_id] = 0  # never the likeliest token
    state = {name: t.contiguous() for name, t in model.state_dict().items()
             if name != "lm_head.weight"}  # tied to the embedding, left out as on the Hub
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    for name, data in (("config.json", config), ("generation_config.json", {
            "_from_model_config": True, "bos_token_id": eos_id, "eos_token_id": eos_id,
            "transformers_version": "4.27.0.dev0"})):
        (folder / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_folder(models_dir: Path) -> None:
    """`build` in a spawned child, so its copy of the model is not in this process's RSS."""
    from intenttuner.families.prompt_adapter_files import FOLDER

    child = multiprocessing.get_context("spawn").Process(
        target=build, args=(str(models_dir / FOLDER / NAME),))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"writing the random Promptist folder failed ({child.exitcode})")


def evaluation_prompts(n: int) -> list[str]:
    """The first ``n`` distinct prompts of an evaluation plan for `DESCRIPTION`."""
    from intenttuner.evaluation.prompts import PlanSettings, build_plan
    from intenttuner.intent.parse import parse_intent

    plan = build_plan(parse_intent(DESCRIPTION, [], ""),
                      PlanSettings(prompts_per_test=4, images_per_prompt=1))
    prompts = list(dict.fromkeys(item.prompt for item in plan.items))
    if n > len(prompts):
        raise SystemExit(f"--prompts {n}: the plan has {len(prompts)} distinct prompts")
    return prompts[:n]


def count_new_tokens(adapter) -> list[int]:
    """Record, for every generate call the adapter makes from now on, the new tokens of each
    returned rewrite before its first end of text (75 for every one means none ended early).
    The model's ``generate`` is wrapped on the instance; what it computes is unchanged."""
    model = adapter.module()
    generate, counts = model.generate, []
    eos = adapter.tokenizer.eos_token_id

    def recording(*args, **kwargs):
        output = generate(*args, **kwargs)
        for row in output[:, kwargs["input_ids"].shape[1]:].tolist():
            counts.append(row.index(eos) if eos in row else len(row))
        return output

    model.generate = recording
    return counts


def main() -> None:
    import torch

    from bench.timing import peak_rss_gib, reset_peak, rss_summary, timed
    from intenttuner import runtime
    from intenttuner.families.prompt_adapter import GENERATION
    from intenttuner.loading import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="of the plan's 16")
    parser.add_argument("--batch", type=int, default=8, help="prompts per generate call")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    prompts = evaluation_prompts(args.prompts)
    with tempfile.TemporaryDirectory() as tmp:
        runtime.set_runtime(runtime.TorchRuntime(models_dir=Path(tmp)))
        write_folder(Path(tmp))
        adapter = load_model("prompt_adapter", NAME, precision="fp32")
        rss = {"loaded": peak_rss_gib()}
        tokens = [adapter.count_tokens(p) for p in prompts]
        new_tokens = count_new_tokens(adapter)

        rewrites: dict[str, list[str]] = {}

        def one_at_a_time() -> None:
            rewrites["one"] = adapter.rephrase(prompts, batch_size=1)

        def batched() -> None:
            rewrites["batch"] = adapter.rephrase(prompts, batch_size=args.batch)

        ways = {"one": one_at_a_time, "batch": batched}
        # Alternating, run by run: a slow spell of the shared machine then slows both ways
        # alike instead of whichever was being timed.
        samples: dict[str, list[float]] = {name: [] for name in ways}
        differ: list[int] = []
        resets = True
        for _ in range(args.runs):
            for name, way in ways.items():
                resets = reset_peak() and resets
                samples[name].append(timed(way, 1))
                rss[name] = max(rss.get(name, 0.0), peak_rss_gib())
            differ.append(sum(a != b for a, b in zip(rewrites["one"], rewrites["batch"],
                                                      strict=True)))
        device = runtime.get_runtime().torch_device()
    one, batch = (statistics.median(samples[name]) for name in ways)
    per_run = "; ".join(f"{a:.1f} s / {b:.1f} s = {a / b:.2f}" for a, b in
                        zip(samples["one"], samples["batch"], strict=True))
    n, full = len(prompts), GENERATION["max_new_tokens"]
    same = ("yes" if not any(differ) else
            f"NO ({max(differ)} of {n} prompts differ; per run {', '.join(map(str, differ))})")
    ended = sum(count < full for count in new_tokens)
    print(f"Promptist at GPT-2 small's size (12 layers, 768 wide, 12 heads, vocab {VOCAB}; "
          f"random weights), fp32 {device}, {torch.get_num_threads()} threads")
    worst = "all tokens generated: the worst case" if not ended else "NOT the worst case"
    print(f"{n} evaluation prompts ({min(tokens)}-{max(tokens)} tokens with ' Rephrase:'), "
          f"{GENERATION['num_beams']} beams, {full} new tokens; rewrites ending early: "
          f"{ended} of {len(new_tokens)} ({worst})")
    print(f"  one at a time  {one:7.2f} s  ({n / one:5.3f} prompts/s)   median of {args.runs}")
    print(f"  batch {args.batch:<3}      {batch:7.2f} s  ({n / batch:5.3f} prompts/s)")
    print(f"  -> {one / batch:4.2f}x (one at a time / batched; per run {per_run}); "
          f"same rewrites: {same}")
    print(rss_summary("after loading", {"loaded": rss["loaded"], "one at a time": rss["one"],
                                        "batched": rss["batch"]}, resets,
                      time.perf_counter() - started))
    runtime.set_runtime(runtime.TorchRuntime())


if __name__ == "__main__":
    main()
