"""ItemKNN, KGCN and content-kNN on the real Last.FM KG data (slow tier)."""

from __future__ import annotations

import pytest

from conftest import shared_data_dir
from fusionrec.evaluation.evaluate import evaluate
from training_support import RUNNER

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ctr_split():
    from fusionrec.data.load import load_dataset
    from fusionrec.data.protocols import make_split

    dataset, _ = load_dataset("lastfm-kg", data_dir=shared_data_dir())
    return make_split(dataset, "ctr-kgcn", seed=0)


def test_item_knn_matches_an_independent_cosine_knn(ctr_split):
    """Oracle: item-item cosine over the binary training matrix by scikit-learn, a user's score
    for an item the sum of its similarities to the user's other training items; the AUC of
    those sums (calibration is increasing, so it keeps the AUC) must equal the model's."""
    import numpy as np
    from scipy import sparse
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics.pairwise import cosine_similarity

    from fusionrec.models.baselines.item_knn import ItemKNN

    metrics = evaluate(ItemKNN(k=0).fit(ctr_split), ctr_split, "test")
    features, positives = ctr_split.features, ctr_split.train.positives()
    matrix = sparse.csr_matrix((np.ones(len(positives)), (positives.user, positives.item)),
                               shape=(features.n_users, features.n_items))
    matrix.data[:] = 1.0  # binary even if a pair repeats
    similarity = cosine_similarity(matrix.T, dense_output=True)  # (n_items, n_items)
    np.fill_diagonal(similarity, 0.0)
    test = ctr_split.test
    sums = np.asarray([similarity[item, matrix[user].indices].sum()
                       for user, item in zip(test.user, test.item)])
    assert metrics["auc"] == pytest.approx(roc_auc_score(test.label, sums), abs=1e-6)
    # calibrated: the 0.5 threshold beats the majority class of a balanced test part
    majority = max(test.label.mean(), 1 - test.label.mean())
    assert metrics["accuracy"] > majority + 0.1


def test_kgcn_reaches_the_published_auc(ctr_split):
    from fusionrec.models.baselines.kg_baseline import KGCN

    model = KGCN(trainer={"epochs": 10, "patience": 3, "num_threads": 1},
                 runner=RUNNER).fit(ctr_split)
    assert evaluate(model, ctr_split, "test")["auc"] == pytest.approx(0.794, abs=0.03)


def test_content_knn_with_minilm_beats_chance(ctr_split, tmp_path):
    from fusionrec.models.baselines.content_knn import ContentKNN

    model = ContentKNN(encoder={"cache_dir": str(tmp_path)}).fit(ctr_split)
    assert evaluate(model, ctr_split, "test")["auc"] > 0.75  # 0.792 measured with MiniLM
