"""Task heads grafted onto a backbone: one registry, one contract (see :class:`Head`)."""

from graftlab.heads import multitask  # noqa: F401  (registers the multi-task head)

from graftlab.heads.heads import (
    ConvHead,
    Head,
    LinearHead,
    MLPHead,
    SequenceHead,
    TokenHead,
    check_head_task,
    create_head,
    list_heads,
    register_head,
)

__all__ = ["ConvHead", "Head", "LinearHead", "MLPHead", "SequenceHead", "TokenHead",
           "check_head_task", "create_head", "list_heads", "register_head"]
