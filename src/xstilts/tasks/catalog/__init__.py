"""The task catalog: every module here registers its tasks at import (see ``registry``).

One small module per task or tight family. Paths are relative to the data root, which holds
``xtreme/`` (XTREME's ``download/`` layout) and ``english/`` (the intermediate tasks).
"""
