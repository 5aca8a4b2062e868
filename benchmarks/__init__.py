"""Benchmarks of kd2m_ref against POT, GeomLoss and naive code: ``kd2m-ref bench`` (see ``run.py``).

``impls.py`` the implementations compared and their conventions; ``speed.py``, ``accuracy.py``,
``memory.py`` the three measurements; ``figures.py`` the plots the book shows; ``gpu.sh`` one call on
a GPU machine. Results with provenance: ``results/<profile>-<device>/bench.json``.
"""
