"""eaglet's PyTorch engine.

Driven by the TypeScript framework through `python -m eaglet_engine COMMAND --config FILE`: one JSON
config in (validated against the JSON Schemas generated from @eaglet/core's zod schemas), JSON-line
events out on stdout, logs on stderr.
"""

__version__ = "0.1.0"
