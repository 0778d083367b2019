"""The peer-library side of the hand-over: code that runs inside the peer virtualenv
(``.venv-peer``, see ``benchmarks/peer/requirements.txt``), which has numpy, scipy, implicit and
cornac but neither FusionRec nor torch.

Nothing here may import ``fusionrec``: ``run_peer.py`` is started by file path
(``.venv-peer/bin/python .../peer_side/run_peer.py``) and finds ``exchange.py`` beside it.
FusionRec imports the same two modules as ``fusionrec.experiments.peer_side.*`` to write the
split and read the outputs back (``fusionrec.experiments.peers``).
"""
