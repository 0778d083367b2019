"""Graph building and propagation with plain torch sparse ops.

- :mod:`~fusionrec.graph.adjacency`: normalised user–item, user–user and joint adjacencies
  (``SparseOperator``: CSR plus its transpose, differentiable products).
- :mod:`~fusionrec.graph.masking`: the same matrices with switchable edges, re-normalised cheaply.
- :mod:`~fusionrec.graph.kg`: knowledge-graph edges and fixed-size neighbour tables.
- :mod:`~fusionrec.graph.propagation`: LightGCN layer-mean propagation and relation-aware
  KG attention.
"""
