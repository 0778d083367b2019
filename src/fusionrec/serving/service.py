"""``Service``: the settings, event store and current engine of one running app.

The engine reference is swapped whole (``reload``): a request reads ``service.engine`` once
and keeps using that engine, so a swap never drops or mixes a request. Writes hold
``write_lock`` from validation through the durable store write to the engine update, so the
order in the store is the order the engine saw, and a reload replays what it missed.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from fusionrec.serving.engine import Engine, load_run
from fusionrec.serving.metrics import ServiceMetrics
from fusionrec.serving.settings import ServeSettings
from fusionrec.serving.store import Event, EventStore, WriteBatch, open_store

log = logging.getLogger(__name__)


class Service:
    def __init__(self, settings: ServeSettings, store: EventStore | None = None,
                 metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ServiceMetrics()
        self.store = store if store is not None else open_store(settings.database_url)
        self.write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.run_dir = settings.run_dir
        self.engine, self.replayed_to = self._build(self.run_dir)
        self.metrics.observe_engine(self.engine)

    def _build(self, run_dir: str) -> tuple[Engine, int]:
        """A new engine over ``run_dir`` with every stored write replayed into it."""
        s = self.settings
        engine = Engine(load_run(run_dir, s.data_dir), s.candidates, s.threads,
                        s.text_cold_start, s.index)
        events = self.store.events()
        engine.updater.apply(WriteBatch(tuple(events), tuple(self.store.users()),
                                        tuple(self.store.items())))
        return engine, (events[-1].event_id if events else 0)

    def record(self, batch: WriteBatch) -> tuple[Event, ...]:
        """Validate, persist (durably), then apply ``batch``; returns the stored events."""
        with self.write_lock:
            engine = self.engine
            engine.updater.validate(batch, self.settings.max_text_chars)
            written = self.store.write(batch)
            engine.updater.apply(WriteBatch(written, batch.users, batch.items))
            if written:
                self.replayed_to = max(self.replayed_to, written[-1].event_id)
        self.metrics.events.inc(len(written))
        self.metrics.observe_engine(engine)
        return written

    def reload(self, run_dir: str | None = None) -> dict:
        """Load ``run_dir`` (default: the current one) and swap it in atomically; requests keep
        being answered by the old engine until the swap."""
        from fusionrec.serving.engine import RequestError
        from fusionrec.training.promotion import refusal

        run_dir = str(run_dir or self.run_dir)
        if not Path(run_dir).is_dir():
            raise FileNotFoundError(f"run folder {run_dir} does not exist")
        refused = refusal(run_dir)
        if refused:
            self.metrics.reloads.labels("failed").inc()
            raise RequestError(409, f"reload refused: {refused}")
        with self._reload_lock:  # one reload at a time
            started = time.perf_counter()
            try:
                engine, upto = self._build(run_dir)  # slow part, outside the write lock
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            with self.write_lock:  # catch up on writes made while building, then swap
                missed = tuple(self.store.events(after_id=upto))
                engine.updater.apply(WriteBatch(missed))
                self.engine, self.run_dir = engine, run_dir
                self.replayed_to = missed[-1].event_id if missed else upto
            self.metrics.reloads.labels("ok").inc()
            self.metrics.observe_engine(engine)
            log.info("reloaded %s in %.1fs", run_dir, time.perf_counter() - started)
            return {"run_dir": run_dir, "seconds": round(time.perf_counter() - started, 3),
                    "replayed_events": self.replayed_to}

    def forget(self, user_id: str) -> dict:
        """Forget ``user_id`` everywhere this service keeps them: the event store, the run
        folder (when the model was trained with them; see :mod:`fusionrec.privacy.forget`)
        and memory (the engine is rebuilt from the cleaned folder and store)."""
        from fusionrec.privacy.forget import forget_user
        from fusionrec.serving.engine import RequestError

        with self._reload_lock, self.write_lock:  # the order reload() takes them in
            user = self.engine.users.get(user_id)
            if user is None or self.engine.users.ids[user] != user_id:
                raise RequestError(404, f"unknown user {user_id!r}")
            run = None
            if not self.engine.users.is_new(user):
                report = forget_user(self.run_dir, user_id, store=self.store,
                                     data_dir=self.settings.data_dir)
                counts, run = report.store, report.to_dict()
            else:  # known only from posted events: the store is all there is
                counts = self.store.forget_user(user_id)
            self.engine, self.replayed_to = self._build(self.run_dir)
        self.metrics.observe_engine(self.engine)
        log.info("forgot one user (%s)", counts)
        return {"store": counts, "run": run}

    def close(self) -> None:
        self.store.close()
