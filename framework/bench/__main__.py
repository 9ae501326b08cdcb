"""``python -m framework.bench <subcommand> [options]``: dispatch to
``framework.bench.<subcommand>.main(argv)``."""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "ops": "eager op overhead vs raw NumPy (small and large ops)",
    "train": "training-step throughput",
    "kernels": "generated / hand-written kernels",
    "attention": "fused (flash) attention vs the math path on cuda",
    "func": "vmap's batched evaluation (per-sample grads, jacrev) vs loops",
}


def _usage() -> str:
    lines = ["usage: python -m framework.bench <subcommand> [--json [FILE]] [--compare FILE]",
             "", "subcommands:"]
    lines += [f"  {name:<8} {what}" for name, what in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark subcommand; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"framework.bench.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"framework.bench.{name}":
            raise
        print(f"benchmark {name!r} is not available in this build (no module "
              f"framework/bench/{name}.py)", file=sys.stderr)
        return 2
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
