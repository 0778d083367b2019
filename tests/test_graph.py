"""Adjacency building and propagation on toy graphs with hand-checked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusionrec.data.schema import KnowledgeGraph, Vocabulary
from fusionrec.graph.adjacency import (bipartite_adjacency, interaction_matrix, social_adjacency,
                                       social_bipartite_adjacency, sparse_from_edges)
from fusionrec.graph.kg import kg_edges, neighbour_table
from fusionrec.graph.masking import MaskableMatrix
from fusionrec.graph.propagation import KGPropagation, RelationAttention, propagate

# 2 users, 3 items: u0-i0, u0-i1, u1-i1 (i2 isolated). Degrees: u0 2, u1 1, i0 1, i1 2, i2 0.
USERS, ITEMS = np.array([0, 0, 1]), np.array([0, 1, 1])


def test_bipartite_adjacency_is_lightgcn_symmetric_normalised():
    adj = bipartite_adjacency(USERS, ITEMS, n_users=2, n_items=3).to_dense()
    expected = torch.zeros(5, 5)
    expected[0, 2] = expected[2, 0] = 1 / math.sqrt(2 * 1)  # u0-i0
    expected[0, 3] = expected[3, 0] = 1 / math.sqrt(2 * 2)  # u0-i1
    expected[1, 3] = expected[3, 1] = 1 / math.sqrt(1 * 2)  # u1-i1
    torch.testing.assert_close(adj, expected)


def test_duplicate_interactions_count_once():
    adj = bipartite_adjacency([0, 0, 0], [1, 1, 0], n_users=1, n_items=2).to_dense()
    assert adj[0, 2].item() == pytest.approx(1 / math.sqrt(2))


def test_propagate_is_layer_mean():
    adj = bipartite_adjacency(USERS, ITEMS, n_users=2, n_items=3)
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
    one_hop = torch.tensor([[3 / math.sqrt(2) + 4 / 2], [4 / math.sqrt(2)],
                            [1 / math.sqrt(2)], [1 / 2 + 2 / math.sqrt(2)], [0.0]])
    torch.testing.assert_close(propagate(adj, x, 1), (x + one_hop) / 2)
    torch.testing.assert_close(propagate(adj, x, 0), x)
    dense = adj.to_dense()
    torch.testing.assert_close(propagate(adj, x, 3), (x + dense @ x + dense @ dense @ x
                                                      + dense @ dense @ dense @ x) / 4)


def test_sparse_product_gradient_matches_dense():
    adj = social_adjacency([0, 1, 2], [1, 2, 0], n_users=4, directed=True, norm="row")
    x = torch.randn(4, 3, requires_grad=True)
    (adj @ x).pow(2).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    (adj.to_dense() @ x2).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_row_normalised_interaction_matrix_is_a_mean():
    r = interaction_matrix(USERS, ITEMS, n_users=2, n_items=3).to_dense()
    torch.testing.assert_close(r, torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]))


def test_social_adjacency_mirrors_undirected_edges():
    adj = social_adjacency([0, 1], [1, 2], n_users=3, norm="row").to_dense()
    torch.testing.assert_close(adj, torch.tensor([[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]]))
    loops = social_adjacency([0], [1], n_users=2, self_loops=True, norm="none").to_dense()
    torch.testing.assert_close(loops, torch.ones(2, 2))


def test_social_bipartite_adjacency_holds_both_edge_kinds():
    adj = social_bipartite_adjacency(USERS, ITEMS, [0], [1], n_users=2, n_items=3).to_dense()
    # u0: i0, i1, u1 -> degree 3; u1: i1, u0 -> 2; i0: 1; i1: 2.
    assert adj[0, 1].item() == pytest.approx(1 / math.sqrt(3 * 2))
    assert adj[1, 3].item() == pytest.approx(1 / math.sqrt(2 * 2))
    assert adj[2, 0].item() == pytest.approx(1 / math.sqrt(1 * 3))
    torch.testing.assert_close(adj, adj.T)


def test_out_of_range_edges_fail():
    with pytest.raises(ValueError, match="out of range"):
        sparse_from_edges([0], [3], (2, 3))


def _toy_kg() -> KnowledgeGraph:
    # entities 0,1 are items 0,1; entity 2 a genre, 3 a country. Item 2 has no link.
    return KnowledgeGraph(head=np.array([0, 1, 0]), relation=np.array([0, 0, 1]),
                          tail=np.array([2, 2, 3]), entities=Vocabulary(("a", "b", "g", "c")),
                          relations=Vocabulary(("genre", "origin")),
                          link_item=np.array([0, 1]), link_entity=np.array([0, 1]))


def test_kg_edges_add_inverses_and_entities_for_unlinked_items():
    edges = kg_edges(_toy_kg(), n_items=3)
    assert edges.n_entities == 5 and edges.n_relations == 2
    assert edges.item_entity.tolist() == [0, 1, 4]
    triples = set(zip(edges.head.tolist(), edges.relation.tolist(), edges.tail.tolist()))
    assert triples == {(0, 0, 2), (1, 0, 2), (0, 1, 3), (2, 0, 0), (2, 0, 1), (3, 1, 0)}
    assert edges.degree().tolist() == [2, 1, 2, 1, 0]
    new = kg_edges(_toy_kg(), n_items=3, inverse="new")
    assert new.n_relations == 4 and (3, 3, 0) in set(
        zip(new.head.tolist(), new.relation.tolist(), new.tail.tolist()))


def test_neighbour_table_caps_and_pads():
    edges = kg_edges(_toy_kg(), n_items=3)
    table = neighbour_table(edges, k=1, seed=0)
    assert table.mask.sum(1).tolist() == [1, 1, 1, 1, 0]
    full = neighbour_table(edges, k=3, seed=0)
    assert full.mask.sum(1).tolist() == [2, 1, 2, 1, 0]
    assert sorted(full.entity[0][full.mask[0]].tolist()) == [2, 3]
    assert sorted(full.entity[2][full.mask[2]].tolist()) == [0, 1]
    assert full.relation[0][full.entity[0] == 3].tolist() == [1]


def _identity_attention() -> RelationAttention:
    step = RelationAttention(dim=2, n_relations=1, activation="none")
    with torch.no_grad():
        step.relation.weight.zero_()
        step.linear.weight.copy_(torch.eye(2))
        step.linear.bias.zero_()
    return step


def test_relation_attention_hand_checked():
    step = _identity_attention()
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    own = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    neighbours = torch.tensor([[[2.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]])
    relations = torch.zeros(2, 2, dtype=torch.long)
    mask = torch.tensor([[True, True], [False, False]])
    a = math.exp(2 / math.sqrt(2)) / (math.exp(2 / math.sqrt(2)) + 1)
    weights = step.attention(query, neighbours, relations, mask)
    torch.testing.assert_close(weights, torch.tensor([[a, 1 - a], [0.0, 0.0]]))
    out = step(query, own, neighbours, relations, mask)
    torch.testing.assert_close(out, torch.tensor([[2 * a, 1.0], [0.0, 1.0]]))


def test_relation_attention_prefers_the_relation_the_query_likes():
    step = _identity_attention()
    with torch.no_grad():
        step.relation = torch.nn.Embedding(2, 2)
        step.relation.weight.copy_(torch.tensor([[5.0, 0.0], [-5.0, 0.0]]))
    query = torch.tensor([[1.0, 0.0]])
    neighbours = torch.zeros(1, 2, 2)
    weights = step.attention(query, neighbours, torch.tensor([[0, 1]]), torch.ones(1, 2).bool())
    assert weights[0, 0] > 0.99


def test_kg_propagation_shapes_and_user_queries():
    edges = kg_edges(_toy_kg(), n_items=3)
    table = neighbour_table(edges, k=2)
    torch.manual_seed(0)
    prop = KGPropagation(dim=4, n_relations=edges.n_relations, layers=2)
    x = torch.randn(edges.n_entities, 4)
    assert prop(x, table).shape == (5, 4)
    users = torch.randn(3, 4)
    out = prop.for_query(users, x, edges.item_entity, table)
    assert out.shape == (3, 4)
    # The unlinked item (entity 4) has no neighbours: its result ignores the query.
    other = prop.for_query(-users, x, edges.item_entity, table)
    torch.testing.assert_close(out[2], other[2])
    assert not torch.allclose(out[0], other[0])


def test_maskable_matrix_equals_rebuilding_from_the_kept_edges():
    users, items = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 1, 2])
    pair = np.arange(5)
    n = 3 + 3
    full = MaskableMatrix.build(np.r_[users, items + 3], np.r_[items + 3, users],
                                np.r_[pair, pair], (n, n), "sym")
    torch.testing.assert_close(full.operator().to_dense(),
                               bipartite_adjacency(users, items, 3, 3).to_dense())
    keep = torch.tensor([True, False, True, True, False])
    op = full.operator(keep)
    torch.testing.assert_close(op.to_dense(), bipartite_adjacency(
        users[keep.numpy()], items[keep.numpy()], 3, 3).to_dense())
    torch.testing.assert_close(op.transpose.to_dense(), op.to_dense().T)
    row = MaskableMatrix.build(users, items, pair, (3, 3), "row").operator(keep).to_dense()
    torch.testing.assert_close(row, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 1, 0]]))


def test_maskable_matrix_keeps_fixed_entries_and_merges_repeats():
    # Entry (0, 1) is a fixed edge (-1) given twice; (1, 0) belongs to edge 0.
    m = MaskableMatrix.build([0, 0, 1], [1, 1, 0], [-1, -1, 0], (2, 2), "none")
    assert len(m.row) == 2
    torch.testing.assert_close(m.operator(torch.tensor([False])).to_dense(),
                               torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
