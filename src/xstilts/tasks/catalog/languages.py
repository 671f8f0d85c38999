"""XTREME's evaluation languages per task (Hu et al., 2020, Table 1 / the XTREME repository)."""

from __future__ import annotations

XNLI = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX = ("de", "en", "es", "fr", "ja", "ko", "zh")
UDPOS = (
    "af", "ar", "bg", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu",
    "id", "it", "ja", "kk", "ko", "mr", "nl", "pt", "ru", "ta", "te", "th", "tl", "tr", "ur",
    "vi", "yo", "zh",
)  # fmt: skip
PANX = (
    "ar", "he", "vi", "id", "jv", "ms", "tl", "eu", "ml", "ta", "te", "af", "nl", "en", "de",
    "el", "bn", "hi", "mr", "ur", "fa", "fr", "it", "pt", "es", "bg", "ru", "ja", "ka", "ko",
    "th", "sw", "yo", "my", "zh", "kk", "tr", "et", "fi", "hu",
)  # fmt: skip
# XQuAD's official release also has Romanian (xquad.ro.json), added later and evaluated by
# XTREME-R (Ruder et al., 2021); XTREME's own table has the other 11.
XQUAD = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
MLQA = ("ar", "de", "en", "es", "hi", "vi", "zh")
TYDIQA = ("en", "ar", "bn", "fi", "id", "ko", "ru", "sw", "te")
BUCC = ("de", "fr", "ru", "zh")
TATOEBA = (
    "af", "ar", "bg", "bn", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu",
    "id", "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "nl", "pt", "ru", "sw", "ta", "te",
    "th", "tl", "tr", "ur", "vi", "zh",
)  # fmt: skip
