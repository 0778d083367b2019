"""The promotion gate of a retrained model, and asking a running service to swap it in.

The gate compares the monitored metric on the parent's own held-out test pairs before and
after retraining: a model that lost more than ``tolerance`` (absolute) there has forgotten
what it knew and is refused, however much it gained on the new data.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from fusionrec.errors import FusionRecError


class PromotionError(FusionRecError, RuntimeError):
    """The service could not be asked to reload (unreachable, refused, wrong key)."""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    metric: str
    before: float
    after: float
    change: float       # after - before
    tolerance: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def promotion_gate(before: Mapping[str, float], after: Mapping[str, float], metric: str,
                   tolerance: float) -> GateResult:
    """Pass when ``after[metric]`` is at most ``tolerance`` worse than ``before[metric]``
    (worse = lower, or higher for loss metrics); a missing or NaN value fails."""
    from fusionrec.training.trainer import _higher_is_better

    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    b, a = float(before.get(metric, math.nan)), float(after.get(metric, math.nan))
    change = a - b
    drop = -change if _higher_is_better(metric) else change
    if math.isnan(b) or math.isnan(a):
        return GateResult(False, metric, b, a, change, tolerance,
                          f"refused: {metric} on the old test data is missing or NaN "
                          f"(before {b}, after {a})")
    if drop > tolerance + 1e-12:  # a drop of exactly the tolerance passes, float noise aside
        return GateResult(False, metric, b, a, change, tolerance,
                          f"refused: {metric} on the old test data fell from {b:.4f} to "
                          f"{a:.4f} ({drop:.4f} worse, tolerance {tolerance})")
    return GateResult(True, metric, b, a, change, tolerance,
                      f"passed: {metric} on the old test data {b:.4f} -> {a:.4f} "
                      f"(tolerance {tolerance})")


def refusal(run_dir: str | Path) -> str | None:
    """Why ``run_dir`` must not be swapped into a service, or ``None``: a retrained run whose
    ``retrain.json`` says ``"promoted": false`` (the gate refused it) is not served by reload."""
    from fusionrec.training.continual import REPORT_FILE

    path = Path(run_dir) / REPORT_FILE
    if not path.is_file():
        return None  # a run from `fusionrec train`: no gate to pass
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"{path} cannot be read ({error})"
    if report.get("promoted") is False:
        gate = (report.get("gate") or {}).get("message", "no gate message")
        return (f"{run_dir} was not promoted by the retrain gate ({gate}); {REPORT_FILE} "
                "says \"promoted\": false")
    return None


def request_reload(url: str, api_key: str | None, run_dir: str | Path,
                   timeout: float = 300.0) -> dict[str, Any]:
    """``POST {url}/v1/admin/reload`` with ``run_dir``; returns the service's answer."""
    import urllib.error
    import urllib.request

    endpoint = url.rstrip("/") + "/v1/admin/reload"
    body = json.dumps({"run_dir": str(Path(run_dir).resolve())}).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return {"url": endpoint, "status": response.status,
                    "response": json.loads(response.read() or b"null")}
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise PromotionError(f"{endpoint} answered {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise PromotionError(f"cannot reach {endpoint}: {getattr(error, 'reason', error)}") \
            from None
