"""Writing a converted SNN for other tools: :mod:`snnx.export.nir` (the Neuromorphic Intermediate Representation).

Nothing here is needed to convert or simulate; the ``nir`` package is optional (``pip install 'snnx[nir]'``)
and is imported only when a graph is written or read.
"""
