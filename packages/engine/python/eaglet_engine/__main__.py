"""`python -m eaglet_engine COMMAND [--config FILE]`.

Exit code 0 only after a `done` event. Errors become an `error` event (code, message, hint,
traceback) and exit code 1; a second Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from . import config as config_mod
from . import events
from .errors import EngineError
from .signals import StopRequested, exit_with_parent

# command -> (module, config schema name or None). Modules import lazily: `env` must not pay for
# what `train` needs.
COMMANDS: dict[str, tuple[str, str | None]] = {
    "env": ("eaglet_engine.env", None),
    "worker": ("eaglet_engine.worker", "generation"),
    "train": ("eaglet_engine.train", "train"),
    "capture": ("eaglet_engine.capture", "capture"),
    "export": ("eaglet_engine.export_command", "export"),
    "hub": ("eaglet_engine.hub", "hub"),
    "build-demo": ("eaglet_engine.demo", "build-demo"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eaglet_engine")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", help="JSON config file (validated against the command's schema)")
    args = parser.parse_args(argv)

    events.redirect_stdout_to_stderr()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = StopRequested().install()
    exit_with_parent()
    module_name, schema_name = COMMANDS[args.command]
    try:
        cfg = None
        if schema_name is not None:
            if not args.config:
                raise EngineError(f"{args.command} needs --config FILE", code="EAGLET_CONFIG_INVALID")
            cfg = config_mod.load(args.config, schema_name)
        module = importlib.import_module(module_name)
        result = module.run(cfg, stop)
        events.done(stopped=bool(stop), result=result)
        return 0
    except EngineError as e:
        events.error(str(e), code=e.code, hint=e.hint)
        return 1
    except KeyboardInterrupt as e:
        events.error(f"interrupted: {e}", code="EAGLET_INTERRUPTED")
        return 130
    except Exception as e:  # noqa: BLE001 - every failure must reach the TS side as an event
        events.error(f"{type(e).__name__}: {e}", code="EAGLET_ENGINE_CRASH", traceback=traceback.format_exc())
        return 1


if __name__ == "__main__":
    sys.exit(main())
