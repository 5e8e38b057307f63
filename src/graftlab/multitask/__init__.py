"""Multi-task grafting: one backbone, named task heads, one forward pass for every task.

Task types (:mod:`.tasks`, a registry: classification, regression; tokens in :mod:`.tokens`),
the estimator (:class:`MultiTaskGrafter`) and :func:`join_tasks`, which joins data sets
labelled for different tasks into one.
"""

from graftlab.multitask.estimator import MultiTaskGrafter, TaskSet
from graftlab.multitask.join import join_tasks
from graftlab.multitask.tasks import TASK_TYPES, TaskType, make_task, register_task_type
from graftlab.multitask.tokens import TokensTask

__all__ = ["TASK_TYPES", "MultiTaskGrafter", "TaskSet", "TaskType", "TokensTask", "join_tasks",
           "make_task", "register_task_type"]
