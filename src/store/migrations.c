#include "store/sqlite_internal.h"

#include "common/util.h"
#include "core/model.h"

_Static_assert(CK_OPERATOR_TENANT_ID == 1, "migration 1 inserts the operator tenant as id 1");

/* Version 1: everything store.h needs. The runner inserts the schema_migrations row before the
 * script, so the operator tenant takes its creation time from there (scripts cannot read the
 * clock). staging_order_id and production_order_id carry no foreign key because orders is
 * created after enrollments and PostgreSQL refuses forward references. */
static const char migration_1[] =
    "CREATE TABLE tenants ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL);"

    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  role TEXT NOT NULL,"
    "  name TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX tokens_tenant ON tokens(tenant_id, id);"

    "CREATE TABLE enrollments ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  cn TEXT NOT NULL,"
    "  sans TEXT NOT NULL,"
    "  subject_o TEXT,"
    "  subject_ou TEXT,"
    "  subject_l TEXT,"
    "  subject_st TEXT,"
    "  subject_c TEXT,"
    "  key_type TEXT NOT NULL,"
    "  validation TEXT NOT NULL,"
    "  issuer TEXT NOT NULL,"
    "  contacts TEXT NOT NULL,"
    "  lifetime TEXT,"
    "  renew_before TEXT,"
    "  deploy_before TEXT,"
    "  always_test_on_staging INTEGER NOT NULL DEFAULT 0,"
    "  staging_order_id INTEGER,"
    "  production_order_id INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  UNIQUE (tenant_id, name));"

    "CREATE TABLE orders ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  enrollment_id INTEGER NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,"
    "  state TEXT NOT NULL,"
    "  key_type TEXT NOT NULL,"
    "  sealed_key BLOB,"
    "  csr_pem TEXT,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    /* The final guard: two processes can never both create an open order for one enrollment. */
    "CREATE UNIQUE INDEX orders_one_open ON orders(enrollment_id)"
    "  WHERE state IN " CK_STORE_OPEN_ORDER_STATES ";"
    "CREATE INDEX orders_enrollment ON orders(enrollment_id, id);"
    "CREATE INDEX orders_tenant ON orders(tenant_id, id);"
    "CREATE INDEX orders_tenant_state ON orders(tenant_id, state, id);"

    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  enrollment_id INTEGER REFERENCES enrollments(id) ON DELETE CASCADE,"
    "  order_id INTEGER REFERENCES orders(id) ON DELETE CASCADE,"
    "  type TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  finished_at INTEGER,"
    "  error TEXT,"
    "  worker TEXT,"
    "  lease_until INTEGER);"
    "CREATE INDEX jobs_runnable ON jobs(state, id);"
    "CREATE INDEX jobs_tenant ON jobs(tenant_id, id);"
    "CREATE INDEX jobs_tenant_state ON jobs(tenant_id, state, id);"
    "CREATE INDEX jobs_enrollment ON jobs(enrollment_id, id);"
    "CREATE INDEX jobs_order ON jobs(order_id, id);"

    "CREATE TABLE job_logs ("
    "  id INTEGER PRIMARY KEY,"
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  at INTEGER NOT NULL,"
    "  level TEXT NOT NULL,"
    "  message TEXT NOT NULL);"
    "CREATE INDEX job_logs_job ON job_logs(job_id, id);"

    "CREATE TABLE job_artifacts ("
    "  id INTEGER PRIMARY KEY,"
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  data BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (job_id, name));"

    "INSERT INTO tenants (id, name, created_at)"
    "  SELECT 1, '" CK_OPERATOR_TENANT_NAME
    "', applied_at FROM schema_migrations WHERE version = 1;";

/* Version 2 (issue 3): certificates on orders, uploaded CSRs, events to poll, tenant roots.
 * cert_not_after stays NULL (read as 0) until a certificate is accepted. */
static const char migration_2[] =
    "ALTER TABLE orders ADD COLUMN csr_uploaded INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE orders ADD COLUMN cert_pem TEXT;"
    "ALTER TABLE orders ADD COLUMN chain_pem TEXT;"
    "ALTER TABLE orders ADD COLUMN findings_json TEXT;"
    "ALTER TABLE orders ADD COLUMN cert_not_after INTEGER;"

    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  type TEXT NOT NULL,"
    "  enrollment_id INTEGER REFERENCES enrollments(id) ON DELETE CASCADE,"
    "  order_id INTEGER REFERENCES orders(id) ON DELETE CASCADE,"
    "  message TEXT NOT NULL,"
    "  data_json TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  confirmed_at INTEGER);"
    /* The poll query: a tenant's unconfirmed events (confirmed_at IS NULL) by id. */
    "CREATE INDEX events_poll ON events(tenant_id, confirmed_at, id);"
    "CREATE INDEX events_tenant ON events(tenant_id, id);"
    /* Cascading deletes of orders and enrollments look events up by these. */
    "CREATE INDEX events_order ON events(order_id, id);"
    "CREATE INDEX events_enrollment ON events(enrollment_id);"

    "CREATE TABLE roots ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  subject TEXT NOT NULL,"
    "  sha256_fingerprint TEXT NOT NULL,"
    "  pem TEXT NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (tenant_id, sha256_fingerprint));";

/* Version 3 (issue 4): staging and production. The edge polls edge_generation (one row) to learn
 * cheaply whether what it serves may have changed; every write that moves a staging or
 * production pointer bumps it in its own transaction. Targets go with their enrollment. */
static const char migration_3[] =
    "ALTER TABLE orders ADD COLUMN staging_acked_at INTEGER;"
    "ALTER TABLE orders ADD COLUMN deploy_not_before INTEGER;"
    "ALTER TABLE orders ADD COLUMN staged_at INTEGER;"
    "ALTER TABLE orders ADD COLUMN deployed_at INTEGER;"
    "ALTER TABLE jobs ADD COLUMN params_json TEXT;"

    "CREATE TABLE edge_generation ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  generation INTEGER NOT NULL);"
    "INSERT INTO edge_generation (id, generation) VALUES (1, 0);"

    "CREATE TABLE targets ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  enrollment_id INTEGER NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,"
    "  environment TEXT NOT NULL,"
    "  directory TEXT NOT NULL,"
    "  reload_command TEXT,"
    "  timeout_seconds INTEGER NOT NULL,"
    "  probe_endpoint TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX targets_enrollment ON targets(enrollment_id, id);"
    "CREATE INDEX targets_tenant ON targets(tenant_id, id);";

/* Version 4 (issue 5): issuers, DNS providers, local CAs, ACME state, http-01 tokens. Sealed
 * secrets are nullable because the store writes them by UPDATE after the INSERT (their AAD
 * names the row's id). local_cas.tenant_id carries no foreign key: 0 is the shared CA, which
 * belongs to no tenants row (the store checks other ids itself). */
static const char migration_4[] =
    "CREATE TABLE issuers ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  directory_url TEXT,"
    "  ca_bundle_pem TEXT,"
    "  eab_kid TEXT,"
    "  sealed_eab_hmac BLOB,"
    "  contacts TEXT NOT NULL,"
    "  account_url TEXT,"
    "  sealed_account_key BLOB,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (tenant_id, name));"

    "CREATE TABLE dns_providers ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  mode TEXT NOT NULL,"
    "  server TEXT,"
    "  zone TEXT,"
    "  tsig_name TEXT,"
    "  tsig_alg TEXT,"
    "  sealed_tsig_secret BLOB,"
    "  hook_path TEXT,"
    "  check_servers TEXT NOT NULL,"
    "  ttl INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (tenant_id, name));"

    "CREATE TABLE local_cas ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL UNIQUE,"
    "  cert_pem TEXT NOT NULL,"
    "  sealed_key BLOB,"
    "  created_at INTEGER NOT NULL);"

    "CREATE TABLE http01_tokens ("
    "  token TEXT NOT NULL PRIMARY KEY,"
    "  key_authorization TEXT NOT NULL,"
    "  order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE INDEX http01_tokens_order ON http01_tokens(order_id);"

    "ALTER TABLE enrollments ADD COLUMN challenge TEXT;"
    "ALTER TABLE enrollments ADD COLUMN dns TEXT;"
    "ALTER TABLE orders ADD COLUMN acme_state_json TEXT;";

/* Version 5 (issue 6): webhooks and their delivery log. last_event_id is the fan-out cursor: the
 * worker turns the tenant's events after it into deliveries, so no code that writes events needs
 * to know about webhooks; a new webhook starts at the newest event (it gets what happens next).
 * A delivery is retried until acknowledged: there is no "failed" state, only pending and
 * delivered. lease_until keeps two daemons from sending the same delivery at once. */
static const char migration_5[] =
    "CREATE TABLE webhooks ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  url TEXT NOT NULL,"
    "  sealed_secret BLOB,"
    "  active INTEGER NOT NULL DEFAULT 1,"
    "  last_event_id INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX webhooks_tenant ON webhooks(tenant_id, id);"

    "CREATE TABLE webhook_deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    "  event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
    "  state TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL,"
    "  last_status INTEGER,"
    "  last_error TEXT,"
    "  delivered_at INTEGER,"
    "  lease_holder TEXT,"
    "  lease_until INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (webhook_id, event_id));"
    /* The worker's claim query: pending deliveries by due time. */
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);"
    "CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);";

/* Version 6 (issue 6, expiry monitoring): the endpoints each enrollment names to watch (a JSON
 * list of "HOST:PORT[/SNI]"), and the last probe of every watched endpoint. Rows are keyed by
 * the endpoint's text ("production/NAME" for the production listener). lease_holder and
 * lease_until let one daemon of several probe an endpoint and raise its event; checked_at says
 * when it is due again. */
static const char migration_6[] =
    "ALTER TABLE enrollments ADD COLUMN watch TEXT NOT NULL DEFAULT '[]';"

    "CREATE TABLE watch_status ("
    "  enrollment_id INTEGER NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,"
    "  endpoint TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'none',"
    "  detail TEXT,"
    "  served_serial TEXT,"
    "  served_not_after INTEGER,"
    "  checked_at INTEGER NOT NULL DEFAULT 0,"
    "  changed_at INTEGER NOT NULL DEFAULT 0,"
    "  lease_holder TEXT,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (enrollment_id, endpoint));";

/* Version 7 (issue 6, ACME Renewal Information, RFC 9773): per production certificate (its
 * order), what its CA last said about when to renew it. next_check_at is when to ask again (at
 * most twice a day); lease_until lets one daemon of several ask. A failed check keeps the last
 * window it had. */
static const char migration_7[] =
    "CREATE TABLE ari_status ("
    "  order_id INTEGER PRIMARY KEY REFERENCES orders(id) ON DELETE CASCADE,"
    "  cert_id TEXT,"
    "  offered INTEGER NOT NULL DEFAULT 0,"
    "  window_start INTEGER,"
    "  window_end INTEGER,"
    "  explanation_url TEXT,"
    "  last_error TEXT,"
    "  checked_at INTEGER NOT NULL DEFAULT 0,"
    "  next_check_at INTEGER NOT NULL DEFAULT 0,"
    "  lease_until INTEGER NOT NULL DEFAULT 0);";

/* Version 8 (scale): orders by state across tenants, for the scheduler's count of orders in
 * flight (every tick) and the worker's sweep of orders left at csr_ready; without it both walk
 * every order ever made. */
static const char migration_8[] = "CREATE INDEX orders_state ON orders(state, id);";

static const char *const migrations[] = {migration_1, migration_2, migration_3, migration_4,
                                         migration_5, migration_6, migration_7, migration_8};

const char *const *ck_store_migrations(size_t *count)
{
    *count = CK_ARRAY_LEN(migrations);
    return migrations;
}
