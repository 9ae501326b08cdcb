"""Generated Triton kernels: source assembly, the on-disk source cache, launch geometry
and launching.

A :class:`TritonKernel` owns the source of one generated kernel, the order of its
arguments (pointers, integer sizes/strides, scalars) and the iteration extents as sympy
expressions of the sizes. Sources are written atomically into ``$FW_CACHE_DIR/triton``
(keyed by their hash) and imported from there, because Triton reads a kernel's source
from its file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile

from framework import dtypes

from .triton_expr import (RSYM, XSYM, KernelBuilder, emit_persistent_rows, emit_pointwise,
                          emit_reduction, has_indirect_loads, row_tiles)
from .triton_index import as_expr
from .triton_ops import HELPER_ELEMENTS, HELPER_ELEMENTS_F64, HELPERS, helpers_used

GENERATED: dict[str, TritonKernel] = {}  # every kernel generated in this process, by name
AFTER_LAUNCH: list = []  # callables(kernel_name) run after each launch (debug checks)

MAX_R_PERSIST_GPU, MAX_R_PERSIST_INTERP = 16384, 1 << 16
TILE_GPU, TILE_INTERP = 4096, 1 << 16
LOOP_RBLOCK_GPU = 2048
# values of row-sized loads a thread may hold: 3 loads of 32 a thread (XBLOCK 4 x 1024
# columns on 4 warps) spilled on sm_90; 64 leaves the rest of 255 registers to the math
LIVE_PER_THREAD = 64
INT32_SAFE = 2 ** 31 - 2 ** 17  # room for the block overshoot of the last program


def interpreting() -> bool:
    """True when kernels run in Triton's interpreter (simulated device)."""
    try:
        import triton
        return bool(triton.knobs.runtime.interpret)
    except AttributeError:  # pragma: no cover - triton without knobs
        return os.environ.get("TRITON_INTERPRET", "0") == "1"


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def cache_dir() -> str:
    """Directory holding generated kernel sources."""
    root = os.environ.get("FW_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                           "framework")
    path = os.path.join(root, "triton")
    os.makedirs(path, exist_ok=True)
    return path


def _load_module(source: str, digest: str):
    name = f"fw_triton_{digest}"
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    path = os.path.join(cache_dir(), f"{name}.py")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)  # atomic: readers never see half a file
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _int_symbols(kb: KernelBuilder, extra) -> list[str]:
    syms = set()
    for e in kb._nodes.values():
        if e.kind == "load":
            syms |= e.data[1].free_symbols
        elif e.kind in ("index", "rand"):
            syms |= e.data[0].free_symbols
        elif e.kind == "cond":
            for item in e.data[0]:
                for x in item:
                    if x is not None:
                        syms |= x.free_symbols
    for st in kb.stores:
        syms |= st[1].free_symbols
    for x in extra:
        if x is not None:
            syms |= as_expr(x).free_symbols
    syms -= {XSYM, RSYM} | set(kb._dyn)
    return sorted(s.name for s in syms)


def _value_symbols(kb: KernelBuilder) -> list[str]:
    """Size symbols that enter values rather than addresses (iota starts, RNG offsets)."""
    syms = set()
    for e in kb._nodes.values():
        if e.kind in ("index", "rand"):
            syms |= e.data[0].free_symbols
    return sorted(s.name for s in syms - {XSYM, RSYM} - set(kb._dyn))


def sm_count() -> int:
    """Multiprocessors of the GPU (132 when it cannot be asked: an H100/H200)."""
    try:
        from framework.backends import cuda_runtime as rt
        cu = rt._cu()
        attr = cu.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
        return int(rt.check(cu.cuDeviceGetAttribute(attr, rt.init(0)["device"]),
                            "cuDeviceGetAttribute"))
    except Exception:  # simulated device, AOT compilation on a machine without a GPU
        return 132


def reduction_configs():
    """Autotuning configs of generated reduction kernels on a GPU: XBLOCK x num_warps with
    one program per block of rows, and capped grids whose programs stride over the rows,
    prefetching the next ones (XPROGS programs, XSTAGES pipeline stages). One row of 4096
    per program with 16 warps was the H200 sweep's best softmax geometry."""
    import triton
    sms = sm_count()
    plain = [triton.Config({"XBLOCK": xb, "XSTAGES": 1, "XPROGS": 0}, num_warps=w)
             for xb, w in ((1, 4), (1, 8), (1, 16), (4, 4), (8, 8), (16, 4), (64, 4))]
    strided = [triton.Config({"XBLOCK": 1, "XSTAGES": st, "XPROGS": sms * k}, num_warps=w)
               for k, st, w in ((4, 2, 8), (2, 2, 16), (8, 1, 8))]
    return plain + strided


def grid_size(xnumel: int, meta: dict) -> int:
    """Programs of a launch: one per XBLOCK rows, at most XPROGS for persistent rows."""
    n = (xnumel + meta["XBLOCK"] - 1) // meta["XBLOCK"]
    if meta.get("RPERSIST") and meta.get("XPROGS"):
        n = min(n, meta["XPROGS"])
    return n


def prune_reduction_configs(configs, named_args, row_tiles: int = 1, pipeline: bool = True,
                            **kwargs):
    """Keep configs whose tile (XBLOCK x RBLOCK) fits the register budget of a block and
    whose ``row_tiles`` row-sized loads fit a thread's registers (``LIVE_PER_THREAD``
    values), and without ``pipeline`` only unpipelined ones (XSTAGES 1); if none is
    left, the config with the fewest values a thread."""
    rblock = kwargs.get("RBLOCK", named_args.get("RBLOCK", 1))
    persistent = kwargs.get("RPERSIST", named_args.get("RPERSIST", True))
    xnumel = named_args.get("xnumel", 1)

    def live(c):  # values a thread holds for the row-sized loads
        return c.kwargs["XBLOCK"] * rblock * max(1, row_tiles) // (32 * c.num_warps)
    fits = [c for c in configs if c.kwargs["XBLOCK"] * rblock <= max(TILE_GPU, rblock)
            and c.kwargs["XBLOCK"] <= max(1, next_pow2(xnumel))
            and (persistent or not c.kwargs.get("XPROGS"))]  # looped rows ignore the cap
    keep = [c for c in fits if live(c) <= LIVE_PER_THREAD
            and (pipeline or c.kwargs.get("XSTAGES", 1) == 1)]
    return keep or [min(fits or configs, key=live)]


class TritonKernel:
    """One generated kernel: source, argument order, extents and launch heuristics."""

    def __init__(self, kb: KernelBuilder, xnumel, rnumel=None, label: str = "kernel"):
        self.kb = kb
        self.reduction = kb.reduction
        self.xnumel = as_expr(xnumel)
        self.rnumel = as_expr(rnumel) if rnumel is not None else None
        self.pointers = list(kb.bufs)
        self.int_args = _int_symbols(kb, [self.xnumel, self.rnumel])
        self.value_syms = _value_symbols(kb)
        self._extent_syms = None  # size symbols of xnumel/rnumel (sorted), on first use
        self._extents: dict = {}  # their values -> (xnumel, rnumel)
        self.force: dict | None = None  # launch constants to use instead of the heuristic
        self._launches: dict = {}  # (extents, index64, geometry) -> (fn, grid, kwargs)
        self.scalar_args = list(kb.scalars)
        self.row_tiles = row_tiles(kb) if kb.reduction else 0
        # pipelining rows whose loads include an indirect one (cross-entropy's target
        # logit) spilled on sm_90 (12 B at 4096 columns, 8 warps): such kernels are not
        self.pipeline = not has_indirect_loads(kb)
        self.label = label
        # scans keep running totals in registers: smaller blocks, no autotuning
        self.scan = any(n.kind == "scan" for n in kb._nodes.values())
        self.interpret = interpreting()
        self.source, self.name = self._assemble()
        self._pointer_fns: dict = {}  # frozenset of scalar names read from memory -> jit fn
        # elements a thread of a pointwise launch: fewer for the special-function helpers
        # that keep many float64 values live (triton_ops.HELPER_ELEMENTS)
        wide = any(b.dtype is dtypes.float64 for b in kb.bufs.values())
        asks = [HELPER_ELEMENTS.get(h) or (wide and HELPER_ELEMENTS_F64.get(h))
                for h in helpers_used(self.source)]
        self.per_thread = min([4] + [n for n in asks if n])
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:16]
        self.module = _load_module(self.source, digest)
        self.fn = getattr(self.module, self.name)
        GENERATED.setdefault(self.name + "_" + digest, self)

    def _assemble(self, in_memory=frozenset()):
        """(source, kernel name); scalars named in ``in_memory`` are passed as pointers to
        one element (``<name>_ptr``) and loaded first (a CUDA graph's device scalars)."""
        params = self.pointers + self.int_args + \
            [f"{s}_ptr" if s in in_memory else s for s in self.scalar_args] + ["xnumel"]
        consts = ["XBLOCK: tl.constexpr", "INDEX64: tl.constexpr"]
        if self.reduction:
            params.append("rnumel")
            consts[1:1] = ["RBLOCK: tl.constexpr", "RPERSIST: tl.constexpr",
                           "XSTAGES: tl.constexpr", "XPROGS: tl.constexpr"]
        body = [f"{s} = tl.load({s}_ptr)" for s in self.scalar_args if s in in_memory]
        body += ["pid = tl.program_id(0)", "if INDEX64:", "    pid = pid.to(tl.int64)"]
        if self.reduction:
            # persistent rows: each program strides over blocks of rows, so a grid capped
            # at XPROGS programs can prefetch the next rows while reducing these (XSTAGES)
            head, rows = emit_persistent_rows(self.kb)
            body += ["if RPERSIST:"] + ["    " + line for line in head]
            body += ["    for xstart in tl.range(pid * XBLOCK, xnumel, XBLOCK * "
                     "tl.num_programs(0), num_stages=XSTAGES):",
                     "        xindex = xstart + tl.arange(0, XBLOCK)[:, None]",
                     "        xmask = xindex < xnumel"]
            body += ["        " + line for line in rows]
            body += ["else:", "    xindex = pid * XBLOCK + tl.arange(0, XBLOCK)[:, None]",
                     "    xmask = xindex < xnumel"]
            body += ["    " + line for line in emit_reduction(self.kb, False)]
        else:
            body += ["xindex = pid * XBLOCK + tl.arange(0, XBLOCK)", "xmask = xindex < xnumel"]
            body += emit_pointwise(self.kb)
        text = "\n".join("    " + line for line in body)
        name = "".join(ch if ch.isalnum() else "_" for ch in self.label)[:60]
        name = f"triton_{'red' if self.reduction else 'poi'}_{name}"
        by_value = [s for s in self.scalar_args if s not in in_memory]
        nodsp = ", ".join(repr(s) for s in by_value)
        deco = f"@triton.jit(do_not_specialize=[{nodsp}])" if by_value else "@triton.jit"
        if self.reduction and not self.interpret and not self.scan:
            deco = ("@triton.autotune(configs=reduction_configs(), key=['xnumel', 'rnumel', "
                    "'RBLOCK', 'RPERSIST'], prune_configs_by={'early_config_prune': "
                    f"functools.partial(prune_reduction_configs, row_tiles={self.row_tiles}, "
                    f"pipeline={self.pipeline})"
                    "})\n" + deco)
        sig = ", ".join(params + consts)
        src = f"{deco}\ndef {name}({sig}):\n{text}\n"
        helpers = "".join(HELPERS[h] for h in helpers_used(src))
        if "_atan2(" in src and "_atan(" not in helpers:
            helpers = HELPERS["_atan2"] + helpers
        header = ("import functools\n\nimport triton\nimport triton.language as tl\n"
                  "from compiler.codegen.triton_launch import (prune_reduction_configs,  "
                  "# noqa: F401\n    reduction_configs)\n")
        return f"{header}{helpers}\n\n{src}", name

    # -- launching ---------------------------------------------------------------------
    def extents(self, sizes: dict) -> tuple[int, int]:
        """(xnumel, rnumel) for the given size-symbol values (memoised per size values)."""
        if self._extent_syms is None:
            exprs = [self.xnumel] + ([self.rnumel] if self.rnumel is not None else [])
            self._extent_syms = sorted({s for e in exprs for s in e.free_symbols}, key=str)
        key = tuple(sizes[s.name] for s in self._extent_syms)
        got = self._extents.get(key)
        if got is None:
            subs = dict(zip(self._extent_syms, key))
            x = int(self.xnumel.xreplace(subs))
            r = int(self.rnumel.xreplace(subs)) if self.rnumel is not None else 1
            got = self._extents[key] = (x, r)
        return got

    def geometry(self, xnumel: int, rnumel: int) -> dict:
        """Launch constants: block sizes and num_warps (a heuristic; autotuned on a GPU)."""
        interp = self.interpret
        if not self.reduction:
            if interp:
                return dict(XBLOCK=min(next_pow2(xnumel), 1 << 16), num_warps=4)
            # 4 elements a thread (one 16-byte access for fp32): 8 a thread spilled the
            # local array of precise sin/cos on sm_90, and timed the same on an H200; fewer
            # for kernels calling igamma, zeta, or float64 Bessel/Airy (they spilled)
            return dict(XBLOCK=256 * self.per_thread, num_warps=8)
        max_r = MAX_R_PERSIST_INTERP if interp else \
            (min(4096, MAX_R_PERSIST_GPU) if self.scan else MAX_R_PERSIST_GPU)
        tile = TILE_INTERP if interp else TILE_GPU
        persist = rnumel <= max_r
        loop_rblock = 1024 if self.scan else LOOP_RBLOCK_GPU
        rblock = next_pow2(rnumel) if persist else (max_r if interp else loop_rblock)
        xblock = max(1, min(next_pow2(xnumel), max(1, tile // rblock), 64))
        if not persist and not interp:  # rows past 16K elements: one row per program
            xblock = 1
        elems = xblock * rblock
        warps = 4 if elems <= 1024 else (8 if elems <= 4096 else 16)
        return dict(XBLOCK=xblock, RBLOCK=rblock, RPERSIST=persist, num_warps=warps,
                    XSTAGES=1, XPROGS=0)

    def needs_index64(self, buffers: dict, sizes: dict, xnumel: int, rnumel: int) -> bool:
        """True when some index of this launch may pass int32: the iteration space, the
        furthest element of any buffer, or a size used as a value (iota, RNG offsets).

        Every address the kernel forms lies inside its buffer's allocation, and each term
        of an address is bounded by that reach, so 32-bit math is exact below 2**31.
        """
        reach = xnumel * max(rnumel, 1)
        for buf in buffers.values():
            alloc = getattr(buf, "alloc", None)
            if alloc is not None:  # a view never reaches past its allocation
                reach = max(reach, alloc.nbytes // buf.dtype.itemsize)
            else:
                reach = max(reach, sum(abs(int(st)) * (int(n) - 1)
                                       for n, st in zip(buf.shape, buf.stride()) if n > 0) + 1)
        for s in self.value_syms:
            reach = max(reach, abs(int(sizes[s])) + xnumel * max(rnumel, 1))
        return reach >= INT32_SAFE

    def __call__(self, buffers: dict, sizes: dict, scalars: dict | None = None,
                 index64: bool = False) -> None:
        """Launch over ``buffers`` (name -> device buffer) with integer ``sizes``."""
        xnumel, rnumel = self.extents(sizes)
        if xnumel == 0:
            return
        args = [buffers[p] for p in self.pointers] + [int(sizes[s]) for s in self.int_args]
        scalars = scalars if scalars is not None else self.kb.scalars
        values = [scalars[s] for s in self.scalar_args]
        # a scalar given as a one-element device buffer is read from memory, so a CUDA
        # graph replays the kernel with the value the buffer holds at replay time
        in_memory = frozenset(s for s, v in zip(self.scalar_args, values)
                              if hasattr(v, "data_ptr")) if values else frozenset()
        args += values + [xnumel]
        if self.reduction:
            args.append(rnumel)
        index64 = bool(index64) or self.needs_index64(buffers, sizes, xnumel, rnumel)
        g = self.geometry(xnumel, rnumel)
        key = (xnumel, rnumel, index64, in_memory, *g.values())
        launch = self._launches.get(key) if self.force is None else None
        if launch is None:
            launch = self._first_launch(args, xnumel, rnumel, index64, g,
                                        self._jit(in_memory))
            if self.force is None:
                self._launches[key] = launch
        else:
            self._launch(*launch, args)
        for hook in AFTER_LAUNCH:
            hook(self.name)

    def _jit(self, in_memory: frozenset):
        """The jitted kernel reading the scalars named in ``in_memory`` from memory (the
        plain kernel when there are none), made once per set."""
        if not in_memory:
            return self.fn
        fn = self._pointer_fns.get(in_memory)
        if fn is None:
            source, name = self._assemble(in_memory)
            digest = hashlib.sha256(source.encode()).hexdigest()[:16]
            fn = self._pointer_fns[in_memory] = getattr(_load_module(source, digest), name)
        return fn

    def _first_launch(self, args, xnumel: int, rnumel: int, index64: bool, g: dict, jit=None):
        """Launch once choosing the geometry (heuristic, ``force``, or the autotuner) and
        return ``(fn, grid, kwargs)`` for later launches of the same extents: they skip
        the heuristic and the autotuner's Python dispatch."""
        jit = self.fn if jit is None else jit
        g = dict(g, **(self.force or {}))
        kwargs = dict(INDEX64=index64)
        if self.reduction:
            kwargs.update(RBLOCK=g["RBLOCK"], RPERSIST=g["RPERSIST"])
        autotuned = self.reduction and not self.interpret and not self.scan
        if autotuned and self.force is None:
            jit[lambda meta: (grid_size(xnumel, meta),)](*args, **kwargs)
            kwargs.update(jit.best_config.all_kwargs())
            return jit.fn, (grid_size(xnumel, kwargs),), kwargs
        kwargs.update(XBLOCK=g["XBLOCK"], num_warps=g["num_warps"])
        if self.reduction:
            kwargs.update(XSTAGES=g["XSTAGES"], XPROGS=g["XPROGS"])
        if "num_stages" in g:
            kwargs["num_stages"] = g["num_stages"]
        grid = (grid_size(xnumel, kwargs),)
        fn = jit.fn if autotuned else jit
        self._launch(fn, grid, kwargs, args)
        return fn, grid, kwargs

    def _launch(self, fn, grid, kwargs, args) -> None:
        if self.interpret:
            import numpy as np
            with np.errstate(all="ignore"):  # the interpreter computes masked-off lanes too
                fn[grid](*args, **kwargs)
        else:
            fn[grid](*args, **kwargs)

    def aot_specs(self) -> list:
        """Specs for every launch configuration a GPU can pick: the heuristic's, and for
        reductions each autotuning config (persistent at 1024 columns and at the 4096 of
        the benchmarks, and looped)."""
        if not self.reduction:
            return [self.aot_spec(xnumel=1 << 24)]
        specs = []
        for persist, rnumel in ((True, 1024), (True, 4096), (False, 1 << 17)):
            specs.append(self.aot_spec(xnumel=8192, rnumel=rnumel, persistent=persist))
            if self.scan:
                continue
            rblock = next_pow2(rnumel) if persist else LOOP_RBLOCK_GPU
            for cfg in prune_reduction_configs(reduction_configs(), {"xnumel": 8192},
                                               row_tiles=self.row_tiles, RBLOCK=rblock,
                                               RPERSIST=persist, pipeline=self.pipeline):
                spec = self.aot_spec(xnumel=8192, rnumel=rnumel, persistent=persist)
                consts = dict(spec.constexprs, **cfg.kwargs)
                specs.append(type(spec)(spec.fn, spec.types, consts, cfg.num_warps,
                                        spec.num_stages, label=f"{self.name}[XBLOCK="
                                        f"{cfg.kwargs['XBLOCK']},w={cfg.num_warps},"
                                        f"progs={cfg.kwargs['XPROGS']},"
                                        f"stages={cfg.kwargs['XSTAGES']},"
                                        f"{'persistent' if persist else 'looped'}]",
                                        divisible=()))
        return specs

    def aot_spec(self, xnumel: int = 1 << 20, rnumel: int = 1024, persistent=None,
                 in_memory=frozenset()):
        """A ``triton_kernels.aot.KernelSpec`` for the GPU geometry of these extents (of
        the variant reading the scalars named in ``in_memory`` from device memory)."""
        from triton_kernels.aot import KernelSpec, pointer_type
        saved, self.interpret = self.interpret, False
        try:
            g = self.geometry(xnumel, rnumel)
        finally:
            self.interpret = saved
        types = {p: pointer_type(self.kb.bufs[p].dtype.np) for p in self.pointers}
        for s in self.int_args + ["xnumel", "rnumel"]:
            types[s] = "i32"
        for s, v in self.kb.scalars.items():
            types[s] = "fp32" if isinstance(v, float) else "i64"
        consts = dict(XBLOCK=g["XBLOCK"], INDEX64=False)
        if self.reduction:
            persist = g["RPERSIST"] if persistent is None else persistent
            loop_rblock = 1024 if self.scan else LOOP_RBLOCK_GPU
            consts.update(RBLOCK=g["RBLOCK"] if persist == g["RPERSIST"] else
                          (next_pow2(rnumel) if persist else loop_rblock), RPERSIST=persist,
                          XSTAGES=g["XSTAGES"], XPROGS=g["XPROGS"])
        else:
            types.pop("rnumel")
        for name in in_memory:  # the graph's device scalars: float32 in memory
            del types[name]
            types[f"{name}_ptr"] = "*fp32"
        jit = self._jit(frozenset(in_memory))
        fn = jit.fn if hasattr(jit, "configs") else jit  # strip the autotuner
        label = self.name + ("[scalars in memory]" if in_memory else "")
        return KernelSpec(fn, types, consts, g["num_warps"], 1 if self.reduction else 3,
                          label=label, divisible=())
