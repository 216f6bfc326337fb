#include "storage/schema.h"

/*
 * Ids are AUTOINCREMENT: an id is never given to a new agent, version or job
 * after its owner was deleted, so work keyed by a stale id cannot land on a
 * newcomer. Times are integer milliseconds since the Unix epoch (UTC); the HTTP layer
 * prints them as ISO-8601. JSON documents are stored as TEXT.
 */
const char *const storage_migrations[] = {
    /* 1: agents, their material, jobs, the execution log, model versions and
     * the passage index. */
    "CREATE TABLE agents ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL,"
    "  stage TEXT,"
    "  progress INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  base_model TEXT,"
    "  description TEXT,"
    "  source TEXT NOT NULL,"
    "  deployed_version_id INTEGER,"
    "  statistics TEXT,"
    "  inference_count INTEGER NOT NULL DEFAULT 0,"
    "  inference_errors INTEGER NOT NULL DEFAULT 0,"
    "  prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX agents_by_status ON agents(status, user_id);"
    "CREATE TABLE materials ("
    "  agent_id INTEGER PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,"
    "  body TEXT NOT NULL);"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL,"
    "  start_stage INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL,"
    "  params TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX jobs_by_state ON jobs(state, id);"
    "CREATE INDEX jobs_by_agent ON jobs(agent_id);"
    /* One job per agent at a time, enforced where concurrent requests meet. */
    "CREATE UNIQUE INDEX jobs_one_active ON jobs(agent_id) WHERE state IN ('queued', 'running');"
    "CREATE TABLE executions ("
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  task_index INTEGER NOT NULL,"
    "  task_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  expected_output TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  inputs TEXT NOT NULL DEFAULT '{}',"
    "  output TEXT,"
    "  job_id INTEGER,"
    "  was_replayed INTEGER NOT NULL DEFAULT 0,"
    "  started_at INTEGER,"
    "  finished_at INTEGER,"
    "  duration_ms INTEGER,"
    "  timestamp INTEGER NOT NULL,"
    "  PRIMARY KEY (agent_id, task_index)) WITHOUT ROWID;"
    "CREATE TABLE units ("
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  ord INTEGER NOT NULL,"
    "  question TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  answer TEXT,"
    "  category TEXT,"
    "  probe TEXT,"
    "  PRIMARY KEY (agent_id, ord)) WITHOUT ROWID;"
    "CREATE TABLE versions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  params TEXT NOT NULL,"
    "  persona TEXT NOT NULL,"
    "  fewshot TEXT NOT NULL,"
    "  metrics TEXT,"
    "  quality REAL,"
    "  passages INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL,"
    "  note TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  deployed_at INTEGER,"
    "  UNIQUE (agent_id, name));"
    /* The passage index: `scope` holds the tokens a<agent id> and v<version id>
     * so that one query reaches one version and one delete reaches one agent. */
    "CREATE VIRTUAL TABLE passages USING fts5("
    "  scope, question, body, answer UNINDEXED, category UNINDEXED, ord UNINDEXED,"
    "  tokenize = 'unicode61 remove_diacritics 2');"
    "PRAGMA user_version = 1;",
    /* 2: one row per inference call (the prompt text only when configured). */
    "CREATE TABLE inferences ("
    "  id INTEGER PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  backend TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  latency_ms INTEGER NOT NULL,"
    "  prompt_tokens INTEGER NOT NULL,"
    "  output_tokens INTEGER NOT NULL,"
    "  retries INTEGER NOT NULL,"
    "  prompt TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX inferences_by_agent ON inferences(agent_id, id);"
    "PRAGMA user_version = 2;",
    /* 3: iterative training runs, their iterations, and feedback. */
    "CREATE TABLE trainings ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  iterations INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  done_iterations INTEGER NOT NULL DEFAULT 0,"
    "  best_iteration INTEGER,"
    "  version_id INTEGER,"
    "  trained_data TEXT,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  finished_at INTEGER);"
    "CREATE INDEX trainings_by_agent ON trainings(agent_id, id);"
    "CREATE TABLE training_iterations ("
    "  training_id INTEGER NOT NULL REFERENCES trainings(id) ON DELETE CASCADE,"
    "  iteration INTEGER NOT NULL,"
    "  params TEXT NOT NULL,"
    "  metrics TEXT NOT NULL,"
    "  duration_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (training_id, iteration)) WITHOUT ROWID;"
    "CREATE TABLE feedback ("
    "  id INTEGER PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  prompt TEXT NOT NULL,"
    "  response TEXT NOT NULL,"
    "  feedback TEXT NOT NULL,"
    "  rating INTEGER,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX feedback_by_agent ON feedback(agent_id, id);"
    "PRAGMA user_version = 3;",
    /* 4: training groups (POST /api/v1/agents/start-training): one row per
     * group, and each of its training runs points at it. Deleting an agent
     * deletes its runs; the group row stays, with the agent count it began with. */
    "CREATE TABLE training_groups ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  cycles INTEGER NOT NULL,"
    "  total_agents INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  stopped_at INTEGER);"
    "ALTER TABLE trainings ADD COLUMN group_id INTEGER REFERENCES training_groups(id);"
    "CREATE INDEX trainings_by_group ON trainings(group_id) WHERE group_id IS NOT NULL;"
    "PRAGMA user_version = 4;",
    /* 5: the one-row table /health writes to when it must find out whether
     * the disk takes writes again. (This version also switches the file to
     * incremental auto-vacuum; storage_open does that, outside any
     * transaction, as SQLite requires.) */
    ("CREATE TABLE write_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, pad BLOB);"
     "PRAGMA user_version = 5;"),
    /* 6: each version owns its retrieval index. The shared FTS5 table made
     * one agent's term statistics (and its cost) depend on every other
     * agent's material; now a version's passages, one postings blob per term
     * and its statistics are rows keyed by the version, gone by cascade with
     * it. Plain tables and blobs, so the layout carries over to PostgreSQL
     * (bytea). The postings' encoding and the ranking are model/index.c's.
     * Agents and versions get a text-analysis language ('en' for what came
     * before: English is what the old tokenizer served).
     *
     * The old passages move over as they are; their terms and statistics are
     * built in C at the next start (pipeline_reindex), which finds them by
     * their missing version_index row. */
    "ALTER TABLE agents ADD COLUMN language TEXT NOT NULL DEFAULT 'en';"
    "ALTER TABLE agents ADD COLUMN language_requested TEXT;"
    "ALTER TABLE versions ADD COLUMN language TEXT NOT NULL DEFAULT 'en';"
    "CREATE TABLE version_passages ("
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    "  ord INTEGER NOT NULL,"
    "  question TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  answer TEXT,"
    "  category TEXT,"
    "  PRIMARY KEY (version_id, ord)) WITHOUT ROWID;"
    "CREATE TABLE version_terms ("
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    "  term TEXT NOT NULL,"
    "  postings BLOB NOT NULL,"
    "  PRIMARY KEY (version_id, term)) WITHOUT ROWID;"
    /* No row: the version is not indexed yet. `lengths` holds each passage's
     * field lengths at fixed width, so a query finds a passage's by offset. */
    "CREATE TABLE version_index ("
    "  version_id INTEGER PRIMARY KEY REFERENCES versions(id) ON DELETE CASCADE,"
    "  passages INTEGER NOT NULL,"
    "  question_terms INTEGER NOT NULL,"
    "  body_terms INTEGER NOT NULL,"
    "  lengths BLOB NOT NULL);"
    /* scope is 'a<agent id> v<version id>'; rows whose version is gone
     * (none should exist) are not copied and go with the FTS5 table. */
    "INSERT OR IGNORE INTO version_passages (version_id, ord, question, body, answer, category)"
    "  SELECT v.id, CAST(p.ord AS INTEGER), p.question, p.body, p.answer, p.category"
    "  FROM passages p JOIN versions v"
    "    ON v.id = CAST(substr(p.scope, instr(p.scope, ' v') + 2) AS INTEGER);"
    "DROP TABLE passages;"
    "PRAGMA user_version = 6;",
    /* 7: API tokens and the audit log (issue 11). A token's scopes are the
     * bit mask of api/request.h's ad_scope; `agents` is a JSON array of
     * user_ids, NULL for every agent. A token has one secret row per
     * rotation: the newest is open-ended, a rotated one ends at
     * valid_until. Only SHA-256 hashes of secrets are stored; the public
     * prefix is the lookup key. Audit rows are paged newest first by id
     * (the primary key), or by action then id. */
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL,"
    "  scopes INTEGER NOT NULL,"
    "  agents TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER,"
    "  revoked_at INTEGER,"
    "  last_used_at INTEGER,"
    "  rate_limit_per_min INTEGER,"
    "  max_concurrent_inferences INTEGER,"
    "  created_by TEXT NOT NULL);"
    "CREATE TABLE token_secrets ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    "  prefix TEXT NOT NULL UNIQUE,"
    "  hash BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  valid_until INTEGER);"
    "CREATE INDEX token_secrets_by_token ON token_secrets(token_id, id);"
    "CREATE TABLE audit_log ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT,"
    "  detail TEXT,"
    "  request_id TEXT);"
    "CREATE INDEX audit_log_by_action ON audit_log(action, id);"
    "PRAGMA user_version = 7;",
    /* 8: deployments (issue 11): each puts one version of one agent live,
     * or records why not, with its events in order. At most one live per
     * agent, enforced where concurrent switches meet; agents.deployed_version_id
     * stays what inference reads, and every switch writes both in one unit of
     * work. A deployment keeps its version's name, metrics and quality as
     * they were when it was made. replaced_id is the deployment that was live
     * when this one went live. */
    "CREATE TABLE deployments ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  version_id INTEGER REFERENCES versions(id) ON DELETE SET NULL,"
    "  model TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  live_at INTEGER,"
    "  metrics TEXT,"
    "  quality REAL,"
    "  reason TEXT,"
    "  forced INTEGER NOT NULL DEFAULT 0,"
    "  replaced_id INTEGER REFERENCES deployments(id) ON DELETE SET NULL);"
    "CREATE INDEX deployments_by_agent ON deployments(agent_id, id);"
    "CREATE UNIQUE INDEX deployments_one_live ON deployments(agent_id) WHERE status = 'live';"
    "CREATE TABLE deployment_events ("
    "  deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  detail TEXT,"
    "  PRIMARY KEY (deployment_id, seq)) WITHOUT ROWID;"
    /* A database from before has a serving version and no record of it: one
     * live deployment each, made by "system". The UUID v4 is made here with
     * randomblob because a migration is plain SQL run once, and these rows
     * exist before any C runs (PostgreSQL would use gen_random_uuid()); every
     * later id comes from ad_uuid_v4. */
    "INSERT INTO deployments (uuid, agent_id, version_id, model, status, created_by, created_at,"
    "  updated_at, live_at, metrics, quality, reason, forced)"
    "  SELECT lower(substr(x.h, 1, 8) || '-' || substr(x.h, 9, 4) || '-4' || substr(x.h, 14, 3)"
    "      || '-8' || substr(x.h, 18, 3) || '-' || substr(x.h, 21, 12)),"
    "    x.aid, v.id, v.name, 'live', 'system', coalesce(v.deployed_at, v.created_at),"
    "    coalesce(v.deployed_at, v.created_at), coalesce(v.deployed_at, v.created_at), v.metrics,"
    "    CASE WHEN v.metrics IS NULL THEN NULL ELSE v.quality END,"
    "    'recorded when deployments were introduced', 0"
    /* randomblob in the per-agent subquery: one value per row. */
    "  FROM (SELECT id AS aid, deployed_version_id AS vid, hex(randomblob(16)) AS h FROM agents"
    "        WHERE deployed_version_id IS NOT NULL) x"
    "  JOIN versions v ON v.id = x.vid;"
    "INSERT INTO deployment_events (deployment_id, seq, at, event, message)"
    "  SELECT id, 1, live_at, 'live', 'live: ' || model || ' was serving when deployments were introduced'"
    "  FROM deployments;"
    "PRAGMA user_version = 8;",
    /* 9: idempotency keys (issue 11): one row per (caller, key), the
     * request's fingerprint (hex SHA-256 of method, path, query and body) and
     * the answer once done. `id` follows time, so the maintenance thread
     * prunes rows past their 24 hours by id windows like the other logs; a
     * row taken over (expired, or running past its lease) is deleted and
     * inserted again to keep that order, under a new id, so the late answer
     * of the request that lost it cannot land on the new owner's row. */
    "CREATE TABLE idempotency_keys ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  caller TEXT NOT NULL,"
    "  idem_key TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('running', 'done')),"
    "  status INTEGER,"
    "  content_type TEXT,"
    "  location TEXT,"
    "  body BLOB,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (caller, idem_key));"
    "PRAGMA user_version = 9;",
    /* 10: what GET status needs to tell how long the pipeline has left
     * (issue 12), without touching the material: its size in bytes, and the
     * wall-clock time (ms) the running job is expected to end, NULL when no
     * pipeline job runs. The size is backfilled in bytes: length() of TEXT
     * counts characters. */
    "ALTER TABLE agents ADD COLUMN material_bytes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN eta_at INTEGER;"
    "UPDATE agents SET material_bytes = coalesce((SELECT length(CAST(m.body AS BLOB))"
    "  FROM materials m WHERE m.agent_id = agents.id), 0);"
    "PRAGMA user_version = 10;",
    /* 11: several replicas on one database (issue 13). A running job is held
     * by a lease: the replica that claimed it (lease_owner) and the wall ms
     * its lease ends unless a heartbeat renews it (lease_expires_at); a job
     * whose lease ended is claimed again by another replica. rate_windows
     * is the per-caller request window the replicas share (server/limits.h):
     * one row per caller, the window's start (wall ms) and its count. */
    "ALTER TABLE jobs ADD COLUMN lease_owner TEXT;"
    "ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER;"
    "CREATE TABLE rate_windows ("
    "  caller TEXT PRIMARY KEY,"
    "  window_start INTEGER NOT NULL,"
    "  count INTEGER NOT NULL);"
    "PRAGMA user_version = 11;",
};

const size_t storage_migration_count = sizeof(storage_migrations) / sizeof(storage_migrations[0]);
