"""Compile kernels in subprocesses without the interpreter (used by :mod:`triton_kernels.aot`).

With ``TRITON_INTERPRET=1`` every ``@triton.jit`` function (Triton's own ``tl.max``/``tl.sum``
included) is an interpreter object that ``triton.compile`` cannot take, so compilation runs
in ``python -m triton_kernels.aot_worker JOBS REPORTS`` with the interpreter off. Kernels
are found again by module and qualified name (or, failing the import, by source file).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import fields


def _kernel_ref(fn) -> tuple[str, str, str]:
    raw = getattr(fn, "fn", fn)
    return raw.__module__, raw.__qualname__, inspect.getsourcefile(raw)


def _resolve_kernel(ref):
    module_name, qualname, path = ref
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # e.g. a generated file loaded by path
        spec = importlib.util.spec_from_file_location(f"_aot_{abs(hash(path))}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def run_isolated(jobs, workers: int = 1) -> list:
    """Compile each ``(fn, request)`` of ``jobs`` in ``workers`` subprocesses; return reports.

    ``request`` holds the keyword arguments of ``aot._compile_report``. Compilation failures
    come back as reports whose ``error`` is set.
    """
    from .aot import CompileError, ResourceReport

    workers = max(1, min(workers, len(jobs)))
    chunks = [list(range(i, len(jobs), workers)) for i in range(workers)]
    path = os.pathsep.join(p for p in sys.path if p)
    env = dict(os.environ, TRITON_INTERPRET="0", PYTHONPATH=path)
    reports: list = [None] * len(jobs)
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for w, chunk in enumerate(chunks):
            src, dst = os.path.join(tmp, f"jobs{w}.pkl"), os.path.join(tmp, f"reports{w}.pkl")
            with open(src, "wb") as fh:
                pickle.dump([(_kernel_ref(jobs[i][0]), jobs[i][1]) for i in chunk], fh)
            cmd = [sys.executable, "-m", "triton_kernels.aot_worker", src, dst]
            log = open(os.path.join(tmp, f"log{w}.txt"), "w+b")  # closed after the wait below
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
            procs.append((chunk, dst, log, proc))
        for chunk, dst, log, proc in procs:
            proc.wait()
            log.seek(0)
            err = log.read().decode(errors="replace")
            log.close()
            if proc.returncode != 0 or not os.path.exists(dst):
                raise CompileError(f"AOT subprocess failed ({proc.returncode}): {err[-4000:]}")
            with open(dst, "rb") as fh:
                for i, values in zip(chunk, pickle.load(fh)):
                    reports[i] = ResourceReport(**values)
    return reports


def serve(in_path: str, out_path: str) -> None:
    """Subprocess entry point: compile the jobs pickled in ``in_path``; reports to ``out_path``."""
    from .aot import _compile_report, _failed_report

    with open(in_path, "rb") as fh:
        jobs = pickle.load(fh)
    results = []
    for ref, req in jobs:
        try:
            report = _compile_report(_resolve_kernel(ref), **req)
        except Exception as exc:  # returned to the parent as a report with .error set
            report = _failed_report(req, f"{req.get('name') or ref[1]}: {exc}")
        values = {f.name: getattr(report, f.name) for f in fields(report)}
        values.pop("compiled")  # Triton's kernel object stays in the subprocess
        results.append(values)
    with open(out_path, "wb") as fh:
        pickle.dump(results, fh)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
