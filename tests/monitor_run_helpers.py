"""Helpers of the tests that train tiny monitored runs (tests/test_monitor_run.py,
test_monitor_resume.py, test_monitor_sampling.py): the intent they are scored by, a spec with
known-output stand-in scoring models, and a monitor that keeps every event it emits."""

from __future__ import annotations

from intenttuner.evaluation.evaluate import EvalModels
from intenttuner.monitor.monitor import TrainingMonitor
from intenttuner.monitor.settings import MonitorSettings, MonitorSpec
from tests.evaluation_helpers import ColourClip, MarkerDetector, MeanColourEncoder, intent

VINCENT = ("trigger: ohwx. Keep his face [1]. His hair colour should switch between red hair "
           "and blue hair. Never a necklace.")
SIZE = 32  # px: the tiny model samples fastest at the smallest size its UNet takes


def spec_of(description: str = VINCENT, **settings) -> MonitorSpec:
    values = dict(sample_every_steps=2, sample_steps=1, sample_size=SIZE)
    return MonitorSpec(intent=intent(description, [("red", (10, 10, 50, 50))]),
                       models=EvalModels(MarkerDetector(), MeanColourEncoder(), ColourClip()),
                       settings=MonitorSettings(**{**values, **settings}))


def monitored(spec, **kwargs) -> tuple[TrainingMonitor, list[tuple[str, dict]]]:
    """A monitor of ``spec`` and the list its events are emitted to, as (name, payload)."""
    events: list[tuple[str, dict]] = []
    monitor = TrainingMonitor(spec, emit=lambda e, d: events.append((e, d)), **kwargs)
    return monitor, events


def of(events, name) -> list[dict]:
    return [data for event, data in events if event == name]
