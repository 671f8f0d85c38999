"""Tasks: specs (data), task types (code), readers (file formats) and the catalog."""

from xstilts.tasks.registry import get_task, list_tasks, register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

__all__ = ["SplitSource", "TaskSpec", "TaskType", "get_task", "list_tasks", "register_task"]
