"""Encoders, the unpadded forward pass, task heads, the multi-head model and its files.

* :mod:`~xstilts.models.encoder`: pretrained or tiny random XLM-R encoders.
* :mod:`~xstilts.models.packed`: :func:`~xstilts.models.packed.encode_packed` (no padding).
* :mod:`~xstilts.models.heads`: one head per task type.
* :mod:`~xstilts.models.model`: :class:`~xstilts.models.model.XstiltsModel` (encoder + heads).
* :mod:`~xstilts.models.model_io`: safetensors save/load of a stage's model.
* :mod:`~xstilts.models.tokenizer`: tokenizer loading and tiny tokenizer training.
"""
