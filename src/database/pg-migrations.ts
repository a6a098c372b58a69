/**
 * Schema migrations of the shared PostgreSQL database, applied in order at start under an advisory
 * lock (two instances starting together do not race). `schema_migrations` records how many have
 * run. Append; never edit one that has shipped.
 */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE approvals (
     seq             bigint GENERATED ALWAYS AS IDENTITY,
     id              text PRIMARY KEY,
     status          text NOT NULL CHECK (status IN ('pending', 'approved', 'executed', 'rejected', 'expired', 'failed')),
     agent_id        text NOT NULL,
     agent_version   text NOT NULL,
     role            text NOT NULL,
     tool            text NOT NULL,
     request_id      text NOT NULL,
     envelope        text NOT NULL,
     envelope_sha256 text NOT NULL,
     audit_id        text NOT NULL,
     created_at      bigint NOT NULL,
     expires_at      bigint NOT NULL,
     decided_by      text,
     decided_at      bigint,
     comment         text,
     result          text,
     error           text,
     claimed_by      text,
     claimed_at      bigint,
     lease_until     bigint
   );
   CREATE INDEX approvals_by_status ON approvals (status, created_at, seq);
   CREATE INDEX approvals_page ON approvals (created_at, seq);
   CREATE INDEX approvals_by_agent ON approvals (agent_id, status);`,
  // The audit log: one hash chain per instance, and each chain's head, written in one transaction.
  `CREATE TABLE audit_heads (
     instance_id text PRIMARY KEY,
     seq         bigint NOT NULL,
     hash        text NOT NULL
   );
   CREATE TABLE audit_records (
     instance_id text NOT NULL,
     seq         bigint NOT NULL,
     ts          timestamptz NOT NULL,
     audit_id    text NOT NULL,
     request_id  text,
     agent_id    text,
     hash        text NOT NULL,
     line        text NOT NULL,
     PRIMARY KEY (instance_id, seq)
   );
   CREATE INDEX audit_records_by_ts ON audit_records (ts);
   CREATE INDEX audit_records_by_audit_id ON audit_records (audit_id);
   CREATE INDEX audit_records_by_request_id ON audit_records (request_id);
   CREATE INDEX audit_records_by_agent_id ON audit_records (agent_id, ts);`,
  // Values every instance must agree on, such as the redaction marker key.
  `CREATE TABLE gateway_meta (key text PRIMARY KEY, value bytea NOT NULL);`,
  // One approval per (agent_id, request_id), so a request sent again never files a second one. A pair
  // filed twice before this rule keeps its first row as is; the later rows' request_id gets a
  // '#dup-<id>' suffix (their envelope keeps what was sent), so the index can be built.
  `UPDATE approvals a SET request_id = a.request_id || '#dup-' || a.id
     WHERE EXISTS (SELECT 1 FROM approvals b WHERE b.agent_id = a.agent_id AND b.request_id = a.request_id AND b.seq < a.seq);
   CREATE UNIQUE INDEX approvals_by_request ON approvals (agent_id, request_id);`,
  // Replay keys (agent_id/request_id → the first answer), shared by every instance and as durable as
  // the approvals: losing Redis does not let a call run twice.
  `CREATE TABLE replay_keys (
     key        text PRIMARY KEY,
     body_hash  text NOT NULL,
     state      text NOT NULL CHECK (state IN ('in_progress', 'done')),
     since      bigint NOT NULL,
     expires_at bigint NOT NULL,
     status     integer,
     body       text
   );
   CREATE INDEX replay_keys_by_expiry ON replay_keys (expires_at);`,
  // A new status, withdrawn (the agent took its request back before anyone decided).
  `ALTER TABLE approvals DROP CONSTRAINT approvals_status_check;
   ALTER TABLE approvals ADD CONSTRAINT approvals_status_check
     CHECK (status IN ('pending', 'approved', 'executed', 'rejected', 'expired', 'failed', 'withdrawn'));`,
  // The audit export: per instance and audit_sinks name, the last seq of that instance's chain the sink acknowledged.
  `CREATE TABLE audit_sink_cursors (
     instance_id text NOT NULL,
     sink        text NOT NULL,
     seq         bigint NOT NULL,
     PRIMARY KEY (instance_id, sink)
   );`,
];
