"""The guide's ORM implementation on SQLAlchemy 2: ``orm_today`` (as it stands) and ``orm_indexed``
(with the guide's recommendations). SQLAlchemy is imported only in the ORM processes, and it opens
only the ORM's own files."""

# No `from __future__ import annotations` here: SQLAlchemy reads the models' Mapped[...]
# annotations at class creation, and they name a module imported inside orm_models().
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.contenders.raw_apsw import RawApsw
from bench.contenders.shared import LEASE_SECONDS, RESULT, Bound, chunked, message_fingerprint
from bench.data import DataSpec, Payload, Progress
from bench.generate import ORM_LAYOUT, generate

COMPLETED = ("completed", "failed_validation")


def orm_models(indexed: bool) -> Any:
    """SQLAlchemy 2 models on the same tables; ``indexed`` adds the guide's recommended indexes.

    Without it only the indexes the guide lists as existing today are there: primary keys and
    ``planner_messages.agent_id`` (``index=True``).
    """
    from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    def now() -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    class Base(DeclarativeBase):
        pass

    class Planner(Base):
        __tablename__ = "planners"
        planner_id: Mapped[str] = mapped_column(String(32), primary_key=True)
        status: Mapped[str] = mapped_column(String(50), default="active")
        meta: Mapped[Any] = mapped_column("metadata", JSON, default=dict)
        created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
        updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)

    class Worker(Base):
        __tablename__ = "workers"
        worker_id: Mapped[str] = mapped_column(String(32), primary_key=True)
        planner_id: Mapped[str] = mapped_column(String(32), ForeignKey("planners.planner_id"))
        task_status: Mapped[str] = mapped_column(String(50), default="pending")
        description: Mapped[str] = mapped_column(Text, default="")
        acceptance_criteria: Mapped[Any] = mapped_column(JSON, default=list)
        task_context: Mapped[Any] = mapped_column(JSON, default=dict)
        input_images: Mapped[Any] = mapped_column(JSON, default=list)
        meta: Mapped[Any] = mapped_column("metadata", JSON, default=dict)
        result: Mapped[Any] = mapped_column(JSON, nullable=True)
        attempts: Mapped[int] = mapped_column(Integer, default=0)
        max_attempts: Mapped[int] = mapped_column(Integer, default=3)
        fence: Mapped[int] = mapped_column(Integer, default=0)
        lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
        lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
        updated_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
        created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
        updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)
        if indexed:  # "Recommended Index Additions", high priority
            __table_args__ = (
                Index("idx_workers_planner_status", "planner_id", "task_status"),
                Index("idx_workers_status", "task_status"),
            )

    class PlannerMessage(Base):
        __tablename__ = "planner_messages"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        agent_id: Mapped[str] = mapped_column(String(32), index=True)  # exists today
        role: Mapped[str] = mapped_column(String(50))
        content: Mapped[str] = mapped_column(Text)
        meta: Mapped[Any] = mapped_column("metadata", JSON, default=dict)
        created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
        if indexed:
            __table_args__ = (Index("idx_planner_messages_agent_time", "agent_id", "created_at"),)

    return Base, Planner, Worker, PlannerMessage, now


def _worker_dict(w: Any) -> dict[str, Any]:
    """The row as the guide's AgentDatabase hands it to the TaskManager (``worker['task_status']``)."""
    return {
        "worker_id": w.worker_id,
        "planner_id": w.planner_id,
        "task_status": w.task_status,
        "description": w.description,
        "acceptance_criteria": w.acceptance_criteria,
        "task_context": w.task_context,
        "input_images": w.input_images,
        "metadata": w.meta,
        "result": w.result,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    }


class OrmBaseline:
    """The guide's implementation on SQLAlchemy 2's ORM, a session per operation.

    ``orm_today`` (baseline A) is the guide as it stands: the plain ``create_engine`` of
    "Current SQLAlchemy Setup" (no pragmas: rollback journal, synchronous=FULL), only today's
    indexes, and a TaskManager whose get_current_task / get_completed_task load all of a
    planner's workers and loop in Python ("Issue 1: Current Code"); its message history is
    pattern 3, ``WHERE agent_id = ? ORDER BY created_at``, of which the caller keeps the last 50.
    ``orm_indexed`` (baseline B) applies the guide's recommendations: its indexes, its pragmas
    and filtered queries.
    """

    operations = RawApsw.operations
    builds = True

    def __init__(self, path: Path, indexed: bool) -> None:
        self.path = path
        self.indexed = indexed
        self.name = "orm_indexed" if indexed else "orm_today"
        self.Base, self.Planner, self.Worker, self.Message, self.now = orm_models(indexed)
        self.engine: Any = None
        self.Session: Any = None
        self.lock_errors = 0

    def _engine(self) -> Any:
        from sqlalchemy import create_engine, event

        url = f"sqlite:///{self.path}"
        if not self.indexed:
            return create_engine(url)  # "Current SQLAlchemy Setup"
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def optimize_connection(dbapi_conn: Any, _record: Any) -> None:  # "Pragma Settings"
            for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = 10000", "temp_store = MEMORY"):
                dbapi_conn.execute(f"PRAGMA {pragma}")

        return engine

    def build(self, spec: DataSpec, progress: Progress) -> None:
        import sqlite3

        from sqlalchemy import create_engine

        engine = create_engine(f"sqlite:///{self.path}")
        self.Base.metadata.create_all(engine)  # the ORM's own DDL, as ensure_tables_exist() does
        engine.dispose()
        conn = sqlite3.connect(self.path, isolation_level=None)  # stdlib sqlite3: this file only
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA cache_size = -262144")
        generate(conn, ORM_LAYOUT, spec, progress)
        conn.close()

    def open(self) -> None:
        from sqlalchemy.orm import sessionmaker

        self.engine = self._engine()
        self.Session = sessionmaker(bind=self.engine)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    # -- the TaskManager ------------------------------------------------------------------------

    def get_workers_by_planner(self, planner_id: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        with self.Session() as session:
            workers = session.scalars(select(self.Worker).where(self.Worker.planner_id == planner_id)).all()
            return [_worker_dict(w) for w in workers]

    def current_task_today(self, planner_id: str) -> str | None:
        workers = self.get_workers_by_planner(planner_id)
        for worker in workers:
            if worker["task_status"] == "pending":
                return str(worker["worker_id"])
        return None

    def completed_task_today(self, planner_id: str) -> str | None:
        workers = self.get_workers_by_planner(planner_id)
        for worker in workers:
            if worker["task_status"] in COMPLETED:
                return str(worker["worker_id"])
        return None

    def first_task(self, planner_id: str, statuses: tuple[str, ...]) -> Any:
        from sqlalchemy import select

        W = self.Worker
        with self.Session() as session:
            query = (
                select(W).where(W.planner_id == planner_id, W.task_status.in_(statuses)).order_by(W.created_at).limit(1)
            )
            return session.scalars(query).first()

    # -- messages -----------------------------------------------------------------------------

    def latest_50(self, agent_id: str) -> list[Any]:
        from sqlalchemy import select

        M = self.Message
        with self.Session() as session:
            if not self.indexed:  # pattern 3: the whole history, oldest first; keep the tail
                return list(session.scalars(select(M).where(M.agent_id == agent_id).order_by(M.created_at)).all()[-50:])
            query = select(M).where(M.agent_id == agent_id).order_by(M.created_at.desc()).limit(50)
            return list(session.scalars(query).all())

    def page_before(self, cursor: tuple[str, datetime]) -> list[Any]:
        from sqlalchemy import select

        M = self.Message
        agent_id, created_at = cursor
        with self.Session() as session:
            query = (
                select(M)
                .where(M.agent_id == agent_id, M.created_at < created_at)
                .order_by(M.created_at.desc())
                .limit(50)
            )
            return list(session.scalars(query).all())

    def _cursor(self, agent_id: str, offset: int) -> tuple[str, datetime]:
        from sqlalchemy import select

        M = self.Message
        with self.Session() as session:
            return agent_id, session.scalar(
                select(M.created_at).where(M.agent_id == agent_id).order_by(M.created_at).offset(offset).limit(1)
            )

    def _message(self, agent_id: str, m: Payload) -> Any:
        return self.Message(agent_id=agent_id, role=m.role, content=m.content, meta=m.metadata, created_at=self.now())

    def append_one(self, agent_id: str, message: Payload) -> None:
        with self.Session() as session:
            session.add(self._message(agent_id, message))
            session.commit()

    def append_bulk(self, items: Sequence[tuple[str, Payload]]) -> None:
        with self.Session() as session:
            session.add_all([self._message(a, m) for a, m in items])
            session.commit()

    def append_turn(self, agent_id: str, turn: Sequence[Payload]) -> None:
        self.append_bulk([(agent_id, m) for m in turn])

    # -- operations ---------------------------------------------------------------------------

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        if op == "get_current_task":
            fn = self.current_task_today if not self.indexed else (lambda p: self.first_task(p, ("pending",)))
            return fn, keys
        if op == "get_completed_task":
            fn = self.completed_task_today if not self.indexed else (lambda p: self.first_task(p, COMPLETED))
            return fn, keys
        if op == "latest_50":
            return self.latest_50, keys
        if op == "keyset_page":
            return self.page_before, [self._cursor(a, spec.per_planner // 2) for a in keys]
        raise KeyError(op)

    def fingerprint(self, op: str, result: Any) -> Any:
        if op in ("get_current_task", "get_completed_task"):
            return result if isinstance(result, str) or result is None else result.worker_id
        return message_fingerprint([m.content for m in result])

    # -- claims -------------------------------------------------------------------------------

    def claim(self, owner: str) -> str | None:
        """The oldest pending task, taken with a compare-and-set UPDATE so two executors never
        both win it (the guide has no claim; this is the obvious ORM one)."""
        from sqlalchemy import select, update
        from sqlalchemy.exc import OperationalError

        W = self.Worker
        while True:
            with self.Session() as session:
                try:
                    worker_id = session.scalar(
                        select(W.worker_id).where(W.task_status == "pending").order_by(W.created_at).limit(1)
                    )
                    if worker_id is None:
                        return None
                    now = self.now()
                    taken = session.execute(
                        update(W)
                        .where(W.worker_id == worker_id, W.task_status == "pending")
                        .values(
                            task_status="claimed",
                            lease_owner=owner,
                            lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
                            fence=W.fence + 1,
                            attempts=W.attempts + 1,
                            updated_by=owner,
                            updated_at=now,
                        )
                    ).rowcount
                    session.commit()
                except OperationalError:  # "database is locked" past the busy timeout
                    self.lock_errors += 1
                    continue
            if taken == 1:
                return str(worker_id)

    def claim_id(self, claim: str) -> str:
        return claim

    def finish(self, worker_id: str) -> None:
        from sqlalchemy.exc import OperationalError

        while True:
            with self.Session() as session:
                try:
                    worker = session.get(self.Worker, worker_id)
                    worker.task_status = "completed"
                    worker.result = RESULT
                    worker.lease_owner = None
                    worker.lease_expires_at = None
                    session.commit()
                    return
                except OperationalError:
                    self.lock_errors += 1
                    time.sleep(0.001)

    def completed_and_reset(self, ids: Sequence[str]) -> int:
        from sqlalchemy import func, select, update

        W = self.Worker
        completed = 0
        with self.Session() as session:
            for chunk in chunked(ids):
                completed += session.scalar(
                    select(func.count()).select_from(W).where(W.worker_id.in_(chunk), W.task_status == "completed")
                )
                session.execute(
                    update(W)
                    .where(W.worker_id.in_(chunk))
                    .values(
                        task_status="pending",
                        result=None,
                        lease_owner=None,
                        lease_expires_at=None,
                        attempts=0,
                        updated_by=None,
                    )
                )
            session.commit()
        return completed
