"""Fixed CCG supertag inventory for the ``ccg`` task (the last label is the catch-all).

The CCGbank supertag set is open-ended (about 1,300 categories in sections 02-21; the usual
tagger inventory is the 425 that occur at least 10 times). CCGbank is licensed and not present
here, so this list holds frequent CCGbank categories written out by hand; any other category is
tagged ``<UNK>`` by the reader and the number of such tokens is logged per file. Regenerate the
list from sections 02-21 (frequency >= 10) once CCGbank is available and bump the task version.
"""

from __future__ import annotations

UNKNOWN_TAG = "<UNK>"

CCG_SUPERTAGS: tuple[str, ...] = (
    # nouns, determiners, noun modifiers
    "N", "N/N", "NP", "NP[nb]/N", "NP\\NP", "N\\N", "(N/N)/(N/N)", "(N/N)\\(N/N)", "N/PP",
    "N[num]", "NP/NP", "(NP\\NP)/NP", "(NP\\NP)/(S[dcl]\\NP)", "(NP\\NP)/(S[dcl]/NP)",
    "(NP\\NP)/S[dcl]", "(NP[nb]/N)\\NP", "(NP\\NP)/(NP\\NP)", "NP[expl]", "NP[thr]",
    "(NP\\NP)\\(NP\\NP)", "(N/N)\\NP", "N/N[num]", "(N\\N)/NP",
    # punctuation and coordination
    ",", ".", ":", ";", "LRB", "RRB", "LQU", "RQU", "conj", "conj/conj",
    # prepositions and particles
    "PP/NP", "PP", "PP/(S[ng]\\NP)", "PP/PP", "(S\\NP)\\(S\\NP)",
    "((S\\NP)\\(S\\NP))/NP", "((S\\NP)\\(S\\NP))/((S\\NP)\\(S\\NP))",
    "((S\\NP)\\(S\\NP))/S[dcl]", "((S\\NP)\\(S\\NP))/(S[ng]\\NP)", "((S\\NP)\\(S\\NP))/N[num]",
    "((S\\NP)\\(S\\NP))/N", "(S\\NP)/(S\\NP)", "((S\\NP)/(S\\NP))/((S\\NP)/(S\\NP))",
    "S/S", "(S/S)/NP", "(S/S)/S[dcl]", "(S/S)/(S[ng]\\NP)", "(S/S)/(S/S)", "S\\S",
    "(S\\S)/NP", "(S\\S)/S[dcl]",
    # verbs: declarative
    "S[dcl]\\NP", "(S[dcl]\\NP)/NP", "(S[dcl]\\NP)/PP", "((S[dcl]\\NP)/PP)/NP",
    "((S[dcl]\\NP)/NP)/NP", "(S[dcl]\\NP)/S[dcl]", "(S[dcl]\\NP)/S[em]",
    "(S[dcl]\\NP)/(S[b]\\NP)", "(S[dcl]\\NP)/(S[pt]\\NP)", "(S[dcl]\\NP)/(S[pss]\\NP)",
    "(S[dcl]\\NP)/(S[adj]\\NP)", "(S[dcl]\\NP)/(S[ng]\\NP)", "(S[dcl]\\NP)/(S[to]\\NP)",
    "(S[dcl]\\S[dcl])\\NP", "(S[dcl]\\S[dcl])/NP", "S[dcl]\\S[dcl]", "S[dcl]/S[dcl]",
    "(S[dcl]\\NP)/(S[dcl]\\NP)", "S[dcl]",
    # verbs: bare, to-infinitive, participles
    "S[b]\\NP", "(S[b]\\NP)/NP", "(S[b]\\NP)/PP", "((S[b]\\NP)/PP)/NP", "((S[b]\\NP)/NP)/NP",
    "(S[b]\\NP)/S[dcl]", "(S[b]\\NP)/(S[to]\\NP)", "(S[b]\\NP)/(S[adj]\\NP)",
    "(S[b]\\NP)/(S[pss]\\NP)", "(S[b]\\NP)/(S[pt]\\NP)", "(S[b]\\NP)/(S[ng]\\NP)",
    "(S[to]\\NP)/(S[b]\\NP)", "S[ng]\\NP", "(S[ng]\\NP)/NP", "(S[ng]\\NP)/PP",
    "((S[ng]\\NP)/PP)/NP", "(S[ng]\\NP)/S[dcl]", "(S[ng]\\NP)/(S[to]\\NP)",
    "(S[ng]\\NP)/(S[adj]\\NP)", "S[pt]\\NP", "(S[pt]\\NP)/NP", "(S[pt]\\NP)/PP",
    "(S[pt]\\NP)/(S[pss]\\NP)", "(S[pt]\\NP)/S[dcl]", "(S[pt]\\NP)/(S[to]\\NP)",
    "S[pss]\\NP", "(S[pss]\\NP)/PP", "(S[pss]\\NP)/NP", "(S[pss]\\NP)/(S[to]\\NP)",
    # adjectives
    "S[adj]\\NP", "(S[adj]\\NP)/PP", "(S[adj]\\NP)/(S[to]\\NP)", "(S[adj]\\NP)/(S[adj]\\NP)",
    "(S[adj]\\NP)\\NP", "(S[adj]\\NP)/S[em]",
    # complementizers, questions, relative pronouns
    "S[em]/S[dcl]", "S[qem]/S[dcl]", "S[qem]/(S[dcl]\\NP)", "(NP\\NP)/(S[q]/NP)",
    "S[wq]/(S[q]/NP)", "S[wq]/(S[dcl]\\NP)", "(S[q]/(S[b]\\NP))/NP", "S[q]/(S[b]\\NP)",
    "S[intj]", "S[frg]", "NP/(S[to]\\NP)",
    UNKNOWN_TAG,
)  # fmt: skip
