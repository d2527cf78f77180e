"""What is wrong with a workflow, one finding at a time, and the error that lists them all."""

from __future__ import annotations

from dataclasses import dataclass

from intenttuner.errors import InputError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one node (``node_id`` empty: with the workflow as a whole)."""

    node_id: str
    node_type: str
    input: str | None
    message: str  # what is wrong and what to do
    title: str = ""  # the node's own title, when the user gave it one

    def __str__(self) -> str:
        if not self.node_id:
            return self.message
        name = f"{self.node_type} '{self.title}'" if self.title else self.node_type
        where = f"node {self.node_id} ({name})"
        if self.input is not None:
            where += f" input '{self.input}'"
        return f"{where}: {self.message}"


class WorkflowError(InputError):
    """A workflow that cannot be used as it is; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem], what: str = "the workflow"):
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"{what} has {count} problem{'s' if count != 1 else ''}:\n{lines}")
