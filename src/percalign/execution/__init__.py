"""The work that the commands, the trust analysis and the study's steps share, and where it runs.

``tasks`` holds the units of work as tasks that only compute (invert a part of a run, a
validity null, judge a run, train a model); ``run_folders`` the one way a run folder is made
from them; ``backends`` runs tasks in this process, in worker processes or on Ray; ``serve``
serves a survey on a loopback port for simulated participants.
"""
