"""``python -m framework.demo``: a fused-training speed experiment, end to end.

A small character-level GPT (:mod:`.model`) learns the framework's own source code
(:mod:`.corpus`), first eagerly and then through ``fw.compile`` (:mod:`.train`); the run
ends with a checkpoint round trip, an ONNX export checked in onnxruntime, samples, a loss
plot and a JSON of every figure (:mod:`.report`).
"""
