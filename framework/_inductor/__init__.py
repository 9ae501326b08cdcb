"""``fw._inductor``: the one ``torch._inductor`` helper that tutorials call,
``utils.fresh_inductor_cache`` (fw's compiler is not Inductor; see ``docs/compile.md``)."""

from . import utils  # noqa: F401
