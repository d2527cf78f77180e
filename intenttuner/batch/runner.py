"""`run_batch`: a saved workflow, its overrides and sweeps, run on one or several ComfyUI
servers, with a summary of the scores of every run.

In order, so a bad input is named before anything runs: the workflow file is read; every
server is asked for its /object_info (one that does not answer is dropped, and reported); a
UI-format workflow is converted to an API prompt with the first answering server's node types;
the prompt with each run's overrides is checked against every server's node types (a server
lacking one is dropped; with none left the problems are raised, each missing node type named
with its pack); the ``--set`` / ``--sweep`` values are checked and expanded into runs. Then
the runs go to the servers (`Scheduler`), ``--resume`` keeping the runs an earlier call
finished with the same prompt.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError
from ..workflows import WorkflowError, check_workflow, is_api_format, load_workflow, ui_to_api
from .client import ComfyClient, ServerError, ServerLost
from .overrides import RunPlan, expand, parse_override
from .results import BatchResult, RunRecord, check_out_folder, finished_record
from .scheduler import Scheduler
from .summary import write_summary

log = logging.getLogger("intenttuner.batch")


def run_batch(workflow_path: Path, servers: list[str], sets: list[str], sweeps: list[str],
              out: Path, *, resume: bool = False, timeout: float = 3600,
              progress: bool = True) -> BatchResult:
    """Run ``workflow_path`` once per combination of the ``sweeps`` (``NODE.INPUT=A,B,C``),
    with the ``sets`` (``NODE.INPUT=VALUE``) applied to every run, spread over ``servers``
    (one run at a time each); results under ``out`` (runs/<run_id>/ and summary.*).
    ``timeout``: seconds one run may take. `InputError` / `WorkflowError` for bad input, before
    any run; a failing run is a record with its error, not an exception."""
    if not servers:
        raise InputError("Give at least one ComfyUI server: --server http://HOST:PORT.")
    if timeout <= 0:
        raise InputError(f"--timeout {timeout:g}: give the seconds one run may take (> 0).")
    clients = list({c.url: c for c in (ComfyClient(url) for url in servers)}.values())
    workflow = load_workflow(Path(workflow_path))
    check_out_folder(out, resume)
    infos, dropped = probe(clients)
    prompt, first = reference_prompt(workflow, infos)
    plans = expand(prompt, [parse_override(s, "--set", prompt, first) for s in sets],
                   [parse_override(s, "--sweep", prompt, first) for s in sweeps])
    live = check_servers(plans, infos, dropped)
    out.mkdir(parents=True, exist_ok=True)
    kept = finished_runs(out, plans) if resume else {}
    todo = [plan for plan in plans if plan.run_id not in kept]
    log.log(logging.INFO if progress else logging.DEBUG,
            "batch %s: %d run(s) (%d kept from before) on %s", Path(workflow_path).name,
            len(plans), len(kept), ", ".join(c.url for c in live))
    scheduler = Scheduler(live, out, timeout, progress)
    done = scheduler.run(todo)
    dropped.update(scheduler.dropped)
    runs = [kept.get(plan.run_id) or done[plan.run_id] for plan in plans]
    paths = write_summary(out, runs, list(plans[0].values), f"Batch: {Path(workflow_path).name}")
    return BatchResult(runs, *paths, dropped_servers=dropped)


def finished_runs(out: Path, plans: list[RunPlan]) -> dict[str, RunRecord]:
    """The records --resume keeps: runs that succeeded before with the same prompt."""
    records = {plan.run_id: finished_record(out, plan.run_id, plan.prompt) for plan in plans}
    return {run_id: record for run_id, record in records.items() if record is not None}


def probe(clients: list[ComfyClient]) -> tuple[dict[str, dict], dict[str, str]]:
    """({url: object_info} of the servers that answer, {url: why not} of the others);
    `InputError` when none answers."""
    infos: dict[str, dict] = {}
    dropped: dict[str, str] = {}
    for client in clients:
        try:
            infos[client.url] = client.object_info()
        except (ServerLost, ServerError) as exc:
            dropped[client.url] = str(exc)
            log.warning("server %s is left out: %s", client.url, exc)
    if not infos:
        reasons = "; ".join(dropped.values())
        raise InputError(f"No ComfyUI server answered ({reasons}). Start ComfyUI (python "
                         "main.py --listen HOST --port PORT) or correct --server.")
    return infos, dropped


def reference_prompt(workflow: dict, infos: dict[str, dict]) -> tuple[dict, dict]:
    """(the API prompt, the /object_info it was read with): that of the first server that has
    every node type of the workflow (the override values are read by its node types). With
    none, the first server's problems are raised (`WorkflowError`, each missing node type named
    with its pack)."""
    error = None
    for info in infos.values():
        try:
            prompt = workflow if is_api_format(workflow) else ui_to_api(workflow, info)
        except WorkflowError as exc:
            error = error or exc
            continue
        missing = [p for p in check_workflow(prompt, info)
                   if p.node_type and p.node_type not in info]
        if not missing:
            return prompt, info
        error = error or WorkflowError(missing)
    raise error


def check_servers(plans: list[RunPlan], infos: dict[str, dict],
                  dropped: dict[str, str]) -> list[ComfyClient]:
    """The servers whose node types fit every run's prompt; the others go to ``dropped``. With
    none left, the problems the first server found are raised (`WorkflowError`)."""
    live, first_problems = [], None
    for url, info in infos.items():
        problems = list({str(p): p for plan in plans
                         for p in check_workflow(plan.prompt, info)}.values())
        if not problems:
            live.append(ComfyClient(url))
            continue
        first_problems = first_problems or problems
        dropped[url] = f"the workflow does not fit its nodes: {problems[0]}"
        log.warning("server %s is left out: %d problem(s) with the workflow there, first: %s",
                    url, len(problems), problems[0])
    if not live:
        raise WorkflowError(first_problems, f"the workflow on {next(iter(infos))}")
    return live


__all__ = ["BatchResult", "RunRecord", "run_batch"]
