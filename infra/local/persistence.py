"""Crash-safe persistence of the embedded stack's storage (the moto DynamoDB table and S3 bucket).

Every write request that reaches moto marks the store dirty; a background thread flushes at most
`interval` seconds later, so a `kill -9` loses at most about that much acknowledged work:

- S3 is mirrored incrementally: the listing (ETag + LastModified) is compared with the manifest, and
  only new or changed objects are downloaded (one file each, named by a hash of the key) and deleted ones removed.
- The table is saved whole, under the DynamoDB write lock of infra.moto_atomic, so a snapshot never
  holds half of a transaction.
- Every file is written to a temporary name, fsynced, then renamed over the old one (and the directory
  fsynced): a crash leaves the previous snapshot or the new one, never a torn file. Objects are flushed
  before the table, so a restored item never points at an object the snapshot lacks.

Layout of the data directory: `table.json` (items, DynamoDB JSON), `objects.json` (key -> file, version,
content type, disposition, user metadata), `objects/<hh>/<sha256 of key>`.
"""

import hashlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from infra.moto_atomic import dynamodb_writes_paused

log = logging.getLogger(__name__)

TABLE_FILE = "table.json"
MANIFEST_FILE = "objects.json"
OBJECTS_DIR = "objects"
START_EXECUTION = "AWSStepFunctions.StartExecution"
# DynamoDB operations that only read: every other request to moto may change something.
_READ_TARGETS = ("GetItem", "BatchGetItem", "Query", "Scan", "Describe", "List")


def write_atomically(path: Path, data: bytes | Iterator[bytes]) -> None:
    """Write to a temporary sibling, fsync it, rename it over `path`, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as out:
        for chunk in [data] if isinstance(data, bytes) else data:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def is_write_request(environ: dict[str, Any]) -> bool:
    """Whether a request to moto may change stored data (conservative: unknown means yes)."""
    method = environ.get("REQUEST_METHOD", "GET")
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB_"):
        return not target.split(".", 1)[-1].startswith(_READ_TARGETS)
    return True


class TrackedMotoServer(ThreadedMotoServer):
    """moto's threaded server, marking `persistence` (once set) dirty on every write request and handing
    each Step Functions StartExecution's input to `journal` (once set: infra/local/recovery.py)."""

    def __init__(self, persistence: "LocalPersistence | None", ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.persistence = persistence
        self.journal: Any = None

    def _track_writes(self, app: Any) -> Any:
        def tracked(environ: dict[str, Any], start_response: Any) -> Any:
            if self.persistence is not None and is_write_request(environ):
                self.persistence.mark_dirty()
            if self.journal is not None and environ.get("HTTP_X_AMZ_TARGET") == START_EXECUTION:
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(body)  # moto reads it next
                try:
                    self.journal.record(json.loads(body)["input"])
                except (ValueError, KeyError, TypeError, OSError):  # the job starts anyway; it cannot resume
                    log.warning("execution input not journaled", exc_info=True)
            return app(environ, start_response)

        return tracked

    def _server_entry(self) -> None:
        # ThreadedMotoServer._server_entry (moto 5.2.5) with the app wrapped; the rest is moto's.
        app = self._track_writes(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


class LocalPersistence:
    def __init__(
        self, data_dir: Path, dynamodb: Any, s3: Any, table_name: str, bucket_name: str, interval: float = 0.5
    ) -> None:
        self.data_dir = data_dir
        self.dynamodb = dynamodb
        self.s3 = s3
        self.table_name = table_name
        self.bucket_name = bucket_name
        self.interval = interval
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._manifest: dict[str, dict[str, Any]] = self._read_manifest()
        # Figures for benchmarks/local_persistence.py: flushes done and seconds spent in them.
        self.flushes = 0
        self.flush_seconds = 0.0

    # --- restore ---------------------------------------------------------------------------------

    def restore(self) -> int:
        """Load the last snapshot into the (freshly provisioned) table and bucket; returns the item count."""
        for key, entry in self._manifest.items():
            path = self.data_dir / entry["file"]
            if not path.exists():
                continue  # a crash between the object and the manifest write: the manifest is older
            extra = {k: entry[k] for k in ("ContentType", "ContentDisposition", "Metadata") if entry.get(k)}
            with path.open("rb") as body:
                self.s3.put_object(Bucket=self.bucket_name, Key=key, Body=body, **extra)
        # The restored objects are the saved ones: adopt their new LastModified instead of copying them again.
        for key, version in self._listing().items():
            if key in self._manifest:
                self._manifest[key]["version"] = version
        self._restore_legacy_objects()
        table_file = self.data_dir / TABLE_FILE
        if not table_file.exists():
            return 0
        items = json.loads(table_file.read_text())
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending = {self.table_name: requests}
            while pending:
                pending = self.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return len(items)

    def _restore_legacy_objects(self) -> None:
        """Snapshots written before the manifest existed: objects/<key> files, saved on clean exits."""
        objects_dir = self.data_dir / OBJECTS_DIR
        if self._manifest or not objects_dir.exists():
            return
        for path in objects_dir.rglob("*"):
            if path.is_file():
                self.s3.upload_file(str(path), self.bucket_name, path.relative_to(objects_dir).as_posix())
        self.mark_dirty()  # rewrite them in the current layout

    # --- flushing --------------------------------------------------------------------------------

    def mark_dirty(self) -> None:
        self._dirty.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-persistence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is pending (a clean exit loses nothing)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self._dirty.is_set():
            self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._dirty.wait(self.interval) and not self._stop.is_set():
                # Coalesce a burst of writes into one flush, within the interval of the first one.
                self._stop.wait(self.interval / 2)
                try:
                    self.flush()
                except Exception:  # keep saving later: the stack must not die of one failed flush
                    log.exception("local persistence flush failed; retrying")
                    self._dirty.set()
                    self._stop.wait(self.interval)

    def flush(self) -> None:
        """One snapshot: changed S3 objects, then the whole table."""
        with self._flush_lock:
            started = time.perf_counter()
            self._dirty.clear()  # writes arriving during the flush mark it dirty again
            self._flush_objects()
            self._flush_table()
            self.flushes += 1
            self.flush_seconds += time.perf_counter() - started

    def _flush_objects(self) -> None:
        listed = self._listing()
        changed = False
        for key, version in listed.items():
            if self._manifest.get(key, {}).get("version") == version:
                continue
            try:
                response = self.s3.get_object(Bucket=self.bucket_name, Key=key)
            except self.s3.exceptions.NoSuchKey:
                continue  # deleted since the listing; the next flush sees it gone
            file = f"{OBJECTS_DIR}/{_file_name(key)}"
            write_atomically(self.data_dir / file, response["Body"].iter_chunks(1 << 20))
            self._manifest[key] = {
                "file": file,
                "version": version,
                "ContentType": response.get("ContentType"),
                "ContentDisposition": response.get("ContentDisposition"),
                "Metadata": response.get("Metadata") or {},
            }
            changed = True
        for key in set(self._manifest) - set(listed):
            (self.data_dir / self._manifest.pop(key)["file"]).unlink(missing_ok=True)
            changed = True
        if changed:
            write_atomically(self.data_dir / MANIFEST_FILE, json.dumps(self._manifest).encode())

    def _listing(self) -> dict[str, str]:
        """key -> ETag and LastModified: a rewrite with the same bytes but new metadata counts as a change."""
        listed: dict[str, str] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name):
            for obj in page.get("Contents", []):
                listed[obj["Key"]] = f"{obj['ETag']} {obj['LastModified'].isoformat()}"
        return listed

    def _flush_table(self) -> None:
        items: list[dict[str, Any]] = []
        # No write lands while the table is read: a TransactWriteItems is in the snapshot whole or not at all.
        with dynamodb_writes_paused():
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table_name):
                items.extend(page.get("Items", []))
        write_atomically(self.data_dir / TABLE_FILE, json.dumps(items).encode())

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        path = self.data_dir / MANIFEST_FILE
        return json.loads(path.read_text()) if path.exists() else {}


def _file_name(key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{digest[:2]}/{digest}"
