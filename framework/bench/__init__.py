"""Benchmarks shipped with the library: ``python -m framework.bench <ops|train|kernels>``.

Each subcommand is a module ``framework.bench.<name>`` with ``main(argv)``; they share the
timing and reporting helpers of :mod:`framework.bench.report` (``--json``, ``--compare``).
"""
