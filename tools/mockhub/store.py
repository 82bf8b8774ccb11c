"""Everything the hub knows, in SQLite in the state folder, so a restart keeps it.

One connection shared by the server threads under a lock; agents are JSON documents (their
credentials change shape with rotations), received data are plain rows that tests query.
File contents live beside the database in files/<client_id>/<sha256>.
"""

import json
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (client_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jtis (client_id TEXT, jti TEXT, exp INTEGER, PRIMARY KEY (client_id, jti));
CREATE TABLE IF NOT EXISTS tokens (jti TEXT PRIMARY KEY, client_id TEXT, iat INTEGER, exp INTEGER,
    revoked INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS exchanges (id INTEGER PRIMARY KEY, client_id TEXT, at REAL, size INTEGER,
    items INTEGER, dropped INTEGER);
CREATE TABLE IF NOT EXISTS timeseries (id INTEGER PRIMARY KEY, client_id TEXT, exchange_id INTEGER,
    timestamp TEXT, datapoint TEXT, value TEXT, quality TEXT);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, client_id TEXT, exchange_id INTEGER,
    source TEXT, doc TEXT);
CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, client_id TEXT, exchange_id INTEGER,
    name TEXT, size INTEGER, sha256 TEXT, file_type TEXT, creation_date TEXT, source TEXT, path TEXT);
CREATE TABLE IF NOT EXISTS custom (id INTEGER PRIMARY KEY, client_id TEXT, exchange_id INTEGER,
    type TEXT, version TEXT, content_type TEXT, size INTEGER, sha256 TEXT, details TEXT);
CREATE TABLE IF NOT EXISTS dsc_history (id INTEGER PRIMARY KEY, client_id TEXT, etag TEXT, at REAL,
    source TEXT, doc TEXT);
CREATE TABLE IF NOT EXISTS mappings (id TEXT PRIMARY KEY, client_id TEXT, doc TEXT);
CREATE TABLE IF NOT EXISTS dropped (id INTEGER PRIMARY KEY, client_id TEXT, exchange_id INTEGER,
    at REAL, item INTEGER, kind TEXT, location TEXT, reason TEXT);
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, client_id TEXT, at REAL, endpoint TEXT,
    status INTEGER, reason TEXT);
CREATE TABLE IF NOT EXISTS diagnostics (id TEXT PRIMARY KEY, client_id TEXT, status TEXT);
"""


class Store:
    def __init__(self, state_dir):
        self.dir = Path(state_dir)
        self.files_dir = self.dir / "files"
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(self.dir / "mockhub.sqlite3"), check_same_thread=False,
                                  isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self):
        with self.lock:
            self.db.close()

    def query(self, sql, args=()):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def execute(self, sql, args=()):
        with self.lock:
            return self.db.execute(sql, args)

    def transaction(self):
        """`with store.transaction() as db:` - all or nothing, under the store lock."""
        return _Transaction(self)

    # agents

    def agent(self, client_id):
        rows = self.query("SELECT doc FROM agents WHERE client_id=?", (client_id,))
        return json.loads(rows[0][0]) if rows else None

    def agents(self):
        return [json.loads(r[0]) for r in self.query("SELECT doc FROM agents ORDER BY rowid")]

    def put_agent(self, doc, db=None):
        (db or self).execute("INSERT OR REPLACE INTO agents (client_id, doc) VALUES (?, ?)",
                             (doc["client_id"], json.dumps(doc)))

    def write_file(self, client_id, sha, content):
        d = self.files_dir / client_id
        d.mkdir(parents=True, exist_ok=True)
        path = d / sha
        if not path.exists():
            tmp = d / (sha + ".tmp")
            tmp.write_bytes(content)
            tmp.replace(path)
        return str(path)


class _Transaction:
    def __init__(self, store):
        self.store = store

    def __enter__(self):
        self.store.lock.acquire()
        self.store.db.execute("BEGIN")
        return self.store.db

    def __exit__(self, exc_type, exc, tb):
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store.lock.release()
        return False
