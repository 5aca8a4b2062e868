"""Benchmarks of kd2m_ref against POT, GeomLoss and naive code: ``kd2m-ref bench`` (see ``run.py``).

``impls.py`` the implementations compared and their conventions; ``speed.py``, ``accuracy.py``,
``memory.py`` the three measurements; ``figures.py`` the plots the book shows;
``scripts/gpu_check.sh`` runs them on a GPU machine in one call. Results with provenance: ``results/<profile>-<device>/bench.json``.
"""
