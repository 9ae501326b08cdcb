"""``fw.utils.benchmark``: time statements the way ``torch.utils.benchmark`` does.

```python
from framework.utils import benchmark
t = benchmark.Timer("model(x)", globals={"model": model, "x": x}, label="MLP",
                    sub_label="batch 64", description="eager")
m = t.blocked_autorange(min_run_time=0.2)     # a Measurement: median, IQR, mean...
benchmark.Compare([m, m_compiled]).print()     # a table: rows sub_label, columns description
```

:class:`Timer` runs ``stmt`` in blocks sized so the timer's overhead is negligible and
returns a :class:`Measurement` (times per run of ``stmt``); :class:`Compare` prints many
measurements as one table grouped by ``label`` / ``sub_label`` / ``description``. The
default ``timer`` waits for the CUDA device once CUDA tensors exist in the process, so
GPU work is inside the measured time.
"""

from .utils.common import Measurement, TaskSpec, select_unit, trim_sigfig, unit_to_english
from .utils.compare import Colorize, Compare
from .utils.timer import Language, Timer, timer

__all__ = ["Timer", "timer", "Language", "Measurement", "TaskSpec", "Compare", "Colorize",
           "select_unit", "trim_sigfig", "unit_to_english"]
