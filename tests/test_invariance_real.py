"""The invariance check of ``test_invariance`` on every real preset and protocol (slow tier):
deleting every held-out pair (and, cold protocols, everything users produced about a cold entity)
from the loaded data leaves what the fusion model reads unchanged."""

from __future__ import annotations

import pytest
from test_invariance import _differences, _model_inputs, _without_heldout
from test_protocols_real import PRESETS, split_or_skip

from fusionrec.data.protocols import PROTOCOLS, derive_features

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("preset", PRESETS)
def test_model_inputs_ignore_heldout_pairs_on_real_presets(preset, protocol):
    dataset, split = split_or_skip(preset, protocol)
    rebuilt = derive_features(_without_heldout(dataset, split), protocol, split.train,
                              split.valid, split.test)
    bad = _differences(_model_inputs(split.features), _model_inputs(rebuilt))
    assert not bad, f"{preset} {protocol}: inputs changed: {bad}"
