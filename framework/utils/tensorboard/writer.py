"""``SummaryWriter`` and ``FileWriter``, as ``torch.utils.tensorboard.writer``."""

import os
import socket
import time
from datetime import datetime

from ...errors import ArgumentError
from . import summary as _summary
from ._record import EventFileWriter

_SESSION_LOG_START = 1

# PyTorch SummaryWriter methods this package does not build, and what each one lacks.
_NOT_BUILT = {
    "add_graph": "a GraphDef encoder for the traced model",
    "add_onnx_graph": "an ONNX-to-GraphDef converter",
    "add_tensor": "TensorProto encodings of every dtype",
    "add_audio": "the Summary.Audio message and a WAV encoder",
    "add_video": "a GIF encoder",
    "add_figure": "matplotlib rendering",
    "add_image_with_boxes": "box drawing",
    "add_embedding": "the projector plugin's config files",
    "add_pr_curve": "the pr_curves plugin data",
    "add_pr_curve_raw": "the pr_curves plugin data",
    "add_custom_scalars": "the custom_scalars plugin's layout protos",
    "add_custom_scalars_multilinechart": "the custom_scalars plugin's layout protos",
    "add_custom_scalars_marginchart": "the custom_scalars plugin's layout protos",
    "add_mesh": "the mesh plugin data",
}


def _tensorflow_bins() -> list[float]:
    """PyTorch's default histogram edges: +-1e-12 * 1.1**k up to 1e20, and 0."""
    v, buckets = 1e-12, []
    while v < 1e20:
        buckets.append(v)
        v *= 1.1
    return [-b for b in reversed(buckets)] + [0] + buckets


class FileWriter:
    """Writes Event and Summary messages to one event file in ``log_dir``."""

    def __init__(self, log_dir, max_queue: int = 10, flush_secs: float = 120,
                 filename_suffix: str = ""):
        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs,
                                            filename_suffix)

    def get_logdir(self) -> str:
        """The directory the event file is in."""
        return self.event_writer.get_logdir()

    def add_event(self, event: dict, step=None, walltime=None) -> None:
        """Add an Event (a dict of its fields), stamped with ``walltime`` (default: now)
        and ``step`` if given."""
        event = dict(event, wall_time=time.time() if walltime is None else float(walltime))
        if step is not None:
            event["step"] = int(step)
        self.event_writer.add_event(event)

    def add_summary(self, summary: dict, global_step=None, walltime=None) -> None:
        """Add a Summary (a dict of its fields) wrapped in an Event."""
        self.add_event({"summary": summary}, global_step, walltime)

    def flush(self) -> None:
        """Write the pending events to disk."""
        self.event_writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.event_writer.close()


class SummaryWriter:
    """Writes scalars, histograms, images, text and hyperparameters to TensorBoard event
    files in ``log_dir`` (default ``runs/{%b%d_%H-%M-%S}_{hostname}{comment}``), as
    ``torch.utils.tensorboard.SummaryWriter``. ``purge_step`` hides events of steps >=
    it left by an earlier, crashed run in the same ``log_dir``. Events reach disk every
    ``flush_secs`` seconds, when ``max_queue`` are pending, and on ``flush()``/``close()``.
    Use it as a context manager to close it."""

    def __init__(self, log_dir=None, comment: str = "", purge_step=None, max_queue: int = 10,
                 flush_secs: float = 120, filename_suffix: str = ""):
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", stamp + "_" + socket.gethostname() + comment)
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()
        self.default_bins = _tensorflow_bins()

    def _get_file_writer(self) -> FileWriter:
        """The writer of ``log_dir``; after ``close()`` a new one, in a new file."""
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs,
                                          self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                step = self.purge_step
                self.file_writer.add_event({"step": step, "file_version": "brain.Event:2"})
                self.file_writer.add_event(
                    {"step": step, "session_log": {"status": _SESSION_LOG_START}})
                self.purge_step = None
        return self.file_writer

    def get_logdir(self) -> str:
        """The directory event files are written to."""
        return self.log_dir

    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """Log one number (a float, int, NumPy scalar or one-element fw.Tensor)."""
        summary = _summary.scalar(tag, scalar_value, new_style=new_style,
                                  double_precision=double_precision)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None,
                    walltime=None) -> None:
        """Log several numbers in one chart ``main_tag``: each key gets its own run,
        ``{log_dir}/{main_tag with / as _}_{key}``, as in PyTorch."""
        walltime = time.time() if walltime is None else walltime
        logdir = self._get_file_writer().get_logdir()
        for tag, value in tag_scalar_dict.items():
            run = logdir + "/" + main_tag.replace("/", "_") + "_" + tag
            writer = self.all_writers.get(run)
            if writer is None:
                writer = FileWriter(run, self.max_queue, self.flush_secs,
                                    self.filename_suffix)
                self.all_writers[run] = writer
            writer.add_summary(_summary.scalar(main_tag, value), global_step, walltime)

    def add_histogram(self, tag: str, values, global_step=None, bins="tensorflow",
                      walltime=None, max_bins=None) -> None:
        """Log the histogram of ``values``. ``bins="tensorflow"`` (the default) uses
        PyTorch's fixed exponential edges; any ``np.histogram`` bins value works too."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        self._get_file_writer().add_summary(
            _summary.histogram(tag, values, bins, max_bins=max_bins), global_step, walltime)

    def add_histogram_raw(self, tag: str, min, max, num, sum, sum_squares,
                          bucket_limits, bucket_counts, global_step=None,
                          walltime=None) -> None:
        """Log a histogram given by its statistics and right bucket edges and counts."""
        if len(bucket_limits) != len(bucket_counts):
            raise ArgumentError(f"add_histogram_raw({tag!r}): {len(bucket_limits)} bucket "
                                f"limits but {len(bucket_counts)} bucket counts")
        self._get_file_writer().add_summary(
            _summary.histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits,
                                   bucket_counts), global_step, walltime)

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None,
                  dataformats: str = "CHW") -> None:
        """Log one image (PNG): float data in [0, 1], uint8 in [0, 255]; ``dataformats``
        one of CHW, HWC, HW, ... (1-channel and 2-d images are shown as gray RGB)."""
        self._get_file_writer().add_summary(
            _summary.image(tag, img_tensor, dataformats=dataformats), global_step, walltime)

    def add_images(self, tag: str, img_tensor, global_step=None, walltime=None,
                   dataformats: str = "NCHW") -> None:
        """Log a batch of images as one grid image, 8 per row (NCHW or NHWC, C 1 or 3)."""
        self._get_file_writer().add_summary(
            _summary.image(tag, img_tensor, dataformats=dataformats), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """Log a (Markdown) string for the text dashboard, under ``tag/text_summary``."""
        self._get_file_writer().add_summary(_summary.text(tag, text_string), global_step,
                                            walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None,
                    run_name=None, global_step=None) -> None:
        """Log a set of hyperparameters and their final metrics for the HParams
        dashboard, in a new run ``{log_dir}/{run_name or time.time()}``."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise ArgumentError("add_hparams: hparam_dict and metric_dict should be "
                                "dictionaries")
        exp, ssi, sei = _summary.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        run_name = run_name or str(time.time())
        logdir = os.path.join(self._get_file_writer().get_logdir(), run_name)
        with SummaryWriter(log_dir=logdir) as w_hp:
            for s in (exp, ssi, sei):
                w_hp.file_writer.add_summary(s, global_step)
            for k, v in metric_dict.items():
                w_hp.add_scalar(k, v, global_step)

    def flush(self) -> None:
        """Write every pending event of every run to disk."""
        for writer in (self.all_writers or {}).values():
            writer.flush()

    def close(self) -> None:
        """Flush and close every event file (later calls open new files)."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()

    def __getattr__(self, name):
        if name in _NOT_BUILT:
            raise NotImplementedError(f"SummaryWriter.{name} is not built in framework: it "
                                      f"needs {_NOT_BUILT[name]}")
        raise AttributeError(f"'SummaryWriter' object has no attribute {name!r}")
