/**
 * Schema migrations of the embedded SQLite database, applied in order at start.
 * PRAGMA user_version records how many have run. Append; never edit one that has shipped.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE approvals (
     id              TEXT PRIMARY KEY,
     status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'executed', 'rejected', 'expired', 'failed')),
     agent_id        TEXT NOT NULL,
     agent_version   TEXT NOT NULL,
     role            TEXT NOT NULL,
     tool            TEXT NOT NULL,
     request_id      TEXT NOT NULL,
     envelope        TEXT NOT NULL,
     envelope_sha256 TEXT NOT NULL,
     audit_id        TEXT NOT NULL,
     created_at      INTEGER NOT NULL,
     expires_at      INTEGER NOT NULL,
     decided_by      TEXT,
     decided_at      INTEGER,
     comment         TEXT,
     result          TEXT,
     error           TEXT
   );
   CREATE INDEX approvals_by_status ON approvals (status, created_at);
   CREATE INDEX approvals_by_agent ON approvals (agent_id, status);`,
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);`,
  `ALTER TABLE approvals ADD COLUMN claimed_by TEXT;
   ALTER TABLE approvals ADD COLUMN claimed_at INTEGER;
   ALTER TABLE approvals ADD COLUMN lease_until INTEGER;`,
  // One approval per (agent_id, request_id), so a request sent again never files a second one. A pair
  // filed twice before this rule keeps its first row as is; the later rows' request_id gets a
  // '#dup-<id>' suffix (their envelope keeps what was sent), so the index can be built.
  `UPDATE approvals SET request_id = request_id || '#dup-' || id
     WHERE rowid NOT IN (SELECT min(rowid) FROM approvals GROUP BY agent_id, request_id);
   CREATE UNIQUE INDEX approvals_by_request ON approvals (agent_id, request_id);`,
  // A new status, withdrawn (the agent took its request back). SQLite cannot change a CHECK in place:
  // the table is rebuilt, each row keeping its rowid (the listing's insertion order).
  `CREATE TABLE approvals_next (
     id              TEXT PRIMARY KEY,
     status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'executed', 'rejected', 'expired', 'failed', 'withdrawn')),
     agent_id        TEXT NOT NULL,
     agent_version   TEXT NOT NULL,
     role            TEXT NOT NULL,
     tool            TEXT NOT NULL,
     request_id      TEXT NOT NULL,
     envelope        TEXT NOT NULL,
     envelope_sha256 TEXT NOT NULL,
     audit_id        TEXT NOT NULL,
     created_at      INTEGER NOT NULL,
     expires_at      INTEGER NOT NULL,
     decided_by      TEXT,
     decided_at      INTEGER,
     comment         TEXT,
     result          TEXT,
     error           TEXT,
     claimed_by      TEXT,
     claimed_at      INTEGER,
     lease_until     INTEGER
   );
   INSERT INTO approvals_next (rowid, id, status, agent_id, agent_version, role, tool, request_id, envelope, envelope_sha256, audit_id, created_at, expires_at, decided_by, decided_at, comment, result, error, claimed_by, claimed_at, lease_until)
     SELECT rowid, id, status, agent_id, agent_version, role, tool, request_id, envelope, envelope_sha256, audit_id, created_at, expires_at, decided_by, decided_at, comment, result, error, claimed_by, claimed_at, lease_until FROM approvals;
   DROP TABLE approvals;
   ALTER TABLE approvals_next RENAME TO approvals;
   CREATE INDEX approvals_by_status ON approvals (status, created_at);
   CREATE INDEX approvals_by_agent ON approvals (agent_id, status);
   CREATE UNIQUE INDEX approvals_by_request ON approvals (agent_id, request_id);`,
];
