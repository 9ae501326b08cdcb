"""The protobuf message types a TensorBoard event file needs, with TensorFlow's and
TensorBoard's field numbers.

Sources: tensorflow/core/util/event.proto (Event, SessionLog),
tensorflow/core/framework/summary.proto (Summary, Summary.Value, Summary.Image,
HistogramProto, SummaryMetadata), tensor.proto and tensor_shape.proto (TensorProto,
TensorShapeProto), tensorboard/plugins/hparams/{api,plugin_data}.proto and
google/protobuf/struct.proto (the hparams plugin). Only the fields this package writes or
reads are declared; the decoder skips the others.
"""

from ._wire import Field, declare

declare("Event", [
    Field(1, "wall_time", "double"),
    Field(2, "step", "int64"),
    Field(3, "file_version", "string", oneof=True),
    Field(4, "graph_def", "bytes", oneof=True),
    Field(5, "summary", "message", "Summary", oneof=True),
    Field(7, "session_log", "message", "SessionLog", oneof=True),
])
declare("SessionLog", [  # status: 0 unspecified, 1 START, 2 STOP, 3 CHECKPOINT
    Field(1, "status", "enum"),
    Field(2, "checkpoint_path", "string"),
    Field(3, "msg", "string"),
])
declare("Summary", [Field(1, "value", "message", "Summary.Value", repeated=True)])
declare("Summary.Value", [
    Field(1, "tag", "string"),
    Field(2, "simple_value", "float", oneof=True),
    Field(4, "image", "message", "Summary.Image", oneof=True),
    Field(5, "histo", "message", "HistogramProto", oneof=True),
    Field(8, "tensor", "message", "TensorProto", oneof=True),
    Field(9, "metadata", "message", "SummaryMetadata"),
])
declare("Summary.Image", [  # colorspace: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    Field(1, "height", "int32"),
    Field(2, "width", "int32"),
    Field(3, "colorspace", "int32"),
    Field(4, "encoded_image_string", "bytes"),
])
declare("HistogramProto", [
    Field(1, "min", "double"),
    Field(2, "max", "double"),
    Field(3, "num", "double"),
    Field(4, "sum", "double"),
    Field(5, "sum_squares", "double"),
    Field(6, "bucket_limit", "double", repeated=True),
    Field(7, "bucket", "double", repeated=True),
])
declare("SummaryMetadata", [
    Field(1, "plugin_data", "message", "SummaryMetadata.PluginData"),
    Field(2, "display_name", "string"),
    Field(3, "summary_description", "string"),
])
declare("SummaryMetadata.PluginData", [
    Field(1, "plugin_name", "string"),
    Field(2, "content", "bytes"),
])
declare("TensorProto", [  # dtype: tensorflow DataType (1 DT_FLOAT, 2 DT_DOUBLE, 7 DT_STRING)
    Field(1, "dtype", "enum"),
    Field(2, "tensor_shape", "message", "TensorShapeProto"),
    Field(5, "float_val", "float", repeated=True),
    Field(6, "double_val", "double", repeated=True),
    Field(8, "string_val", "bytes", repeated=True),
])
declare("TensorShapeProto", [Field(2, "dim", "message", "TensorShapeProto.Dim", repeated=True)])
declare("TensorShapeProto.Dim", [Field(1, "size", "int64"), Field(2, "name", "string")])

DT_FLOAT, DT_DOUBLE, DT_STRING = 1, 2, 7

# ---- the hparams plugin (tensorboard.hparams) and google.protobuf.Value
declare("HParamsPluginData", [
    Field(1, "version", "int32"),
    Field(2, "experiment", "message", "hparams.Experiment", oneof=True),
    Field(3, "session_start_info", "message", "hparams.SessionStartInfo", oneof=True),
    Field(4, "session_end_info", "message", "hparams.SessionEndInfo", oneof=True),
])
declare("hparams.Experiment", [
    Field(1, "description", "string"),
    Field(2, "user", "string"),
    Field(3, "time_created_secs", "double"),
    Field(4, "hparam_infos", "message", "hparams.HParamInfo", repeated=True),
    Field(5, "metric_infos", "message", "hparams.MetricInfo", repeated=True),
    Field(6, "name", "string"),
])
declare("hparams.HParamInfo", [  # type: 1 DATA_TYPE_STRING, 2 _BOOL, 3 _FLOAT64
    Field(1, "name", "string"),
    Field(2, "display_name", "string"),
    Field(3, "description", "string"),
    Field(4, "type", "enum"),
    Field(5, "domain_discrete", "message", "google.protobuf.ListValue", oneof=True),
])
declare("hparams.MetricInfo", [
    Field(1, "name", "message", "hparams.MetricName"),
    Field(3, "display_name", "string"),
    Field(4, "description", "string"),
])
declare("hparams.MetricName", [Field(1, "group", "string"), Field(2, "tag", "string")])
declare("hparams.SessionStartInfo", [
    Field(1, "hparams", "map", "hparams.SessionStartInfo.HparamsEntry"),
    Field(2, "model_uri", "string"),
    Field(3, "monitor_url", "string"),
    Field(4, "group_name", "string"),
    Field(5, "start_time_secs", "double"),
])
declare("hparams.SessionStartInfo.HparamsEntry", [
    Field(1, "key", "string", oneof=True),  # map entries always write key and value
    Field(2, "value", "message", "google.protobuf.Value"),
])
declare("hparams.SessionEndInfo", [  # status: 1 STATUS_SUCCESS
    Field(1, "status", "enum"),
    Field(2, "end_time_secs", "double"),
])
declare("google.protobuf.Value", [
    Field(2, "number_value", "double", oneof=True),
    Field(3, "string_value", "string", oneof=True),
    Field(4, "bool_value", "bool", oneof=True),
    Field(6, "list_value", "message", "google.protobuf.ListValue", oneof=True),
])
declare("google.protobuf.ListValue", [
    Field(1, "values", "message", "google.protobuf.Value", repeated=True),
])
