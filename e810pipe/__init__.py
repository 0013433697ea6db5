"""e810pipe: a software model of the Intel E810 (ice) receive pipeline.

The entry points the README uses::

    from e810pipe import Pipeline
    pipe = Pipeline.load(["os-default", "my.ddp"], cmds=["flow create 0 ..."])
    decision = pipe.process(scapy_packet_or_bytes)
"""

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)

from .errors import E810PipeError  # noqa: E402
from .package import Package, load_package  # noqa: E402
from .parser import Parser, ParseResult  # noqa: E402
from .pipeline import Decision, Pipeline, PipelineConfig  # noqa: E402

__all__ = [
    "Decision",
    "E810PipeError",
    "Package",
    "ParseResult",
    "Parser",
    "Pipeline",
    "PipelineConfig",
    "__version__",
    "load_package",
]
