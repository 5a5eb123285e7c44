/* metrics.c — GET /metrics's text (metrics.h). */
#include "server/metrics.h"

#include <string.h>

static void counts(struct ck_prom *out, const char *name, const char *key_label,
                   const struct ck_metric_count *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ck_prom_label labels[2];
        size_t k = 0;
        if (c[i].tenant != NULL)
            labels[k++] = (struct ck_prom_label){"tenant", c[i].tenant};
        if (key_label != NULL && c[i].key != NULL)
            labels[k++] = (struct ck_prom_label){key_label, c[i].key};
        ck_prom_sample(out, name, labels, k, c[i].value);
    }
}

/* Every job type appears, failed or not, so a rate() has a series from the start. */
static void job_failures(struct ck_prom *out, const struct ck_store_metrics *m)
{
    static const char name[] = "certkeep_job_failures_total";
    ck_prom_family(out, name, "counter", "Jobs that failed, by job type (every tenant).");
    for (int t = 0; t < CK_JOB_TYPE_COUNT; t++) {
        const char *type = ck_job_type_name((enum ck_job_type)t);
        int64_t value = 0;
        for (size_t i = 0; i < m->n_job_failures; i++)
            if (m->job_failures[i].key != NULL && strcmp(m->job_failures[i].key, type) == 0)
                value = m->job_failures[i].value;
        const struct ck_prom_label label = {"type", type};
        ck_prom_sample(out, name, &label, 1, value);
    }
}

/* One sample per listener environment. */
static void per_listener(struct ck_prom *out, const char *name, const char *type, const char *help,
                         const uint64_t values[2])
{
    ck_prom_family(out, name, type, help);
    for (int env = CK_ENV_STAGING; env <= CK_ENV_PRODUCTION; env++) {
        const struct ck_prom_label label = {"listener",
                                            ck_environment_name((enum ck_environment)env)};
        ck_prom_sample(out, name, &label, 1, (int64_t)values[env]);
    }
}

static void edge(struct ck_prom *out, const struct ck_edge_counts *e)
{
    per_listener(out, "certkeep_edge_handshakes_total", "counter",
                 "TLS handshakes completed on the edge listeners of this daemon.", e->handshakes);
    per_listener(out, "certkeep_edge_handshake_errors_total", "counter",
                 "Connections to the edge listeners of this daemon that closed before their "
                 "TLS handshake completed (unknown or missing SNI, protocol errors, timeouts).",
                 e->errors);
}

static void edge_cache(struct ck_prom *out, const struct ck_edge_counts *e)
{
    per_listener(out, "certkeep_edge_cache_hits_total", "counter",
                 "Handshakes whose certificate was already parsed (serve --edge-cache).",
                 e->cache_hits);
    per_listener(out, "certkeep_edge_cache_misses_total", "counter",
                 "Handshakes that parsed their certificate and opened its key first.",
                 e->cache_misses);
    per_listener(out, "certkeep_edge_cache_entries", "gauge",
                 "Parsed certificates the edge holds now.", e->cache_entries);
    per_listener(out, "certkeep_edge_cache_capacity", "gauge",
                 "Parsed certificates the edge may hold (serve --edge-cache).", e->cache_capacity);
}

void ck_metrics_render(const struct ck_store_metrics *m, const struct ck_edge_counts *e,
                       struct ck_prom *out)
{
    static const char expiry[] = "certkeep_certificate_expiry_timestamp_seconds";
    ck_prom_family(out, expiry, "gauge",
                   "When the production certificate of each enrollment expires (notAfter), in "
                   "seconds since the Unix epoch.");
    for (size_t i = 0; i < m->n_expiries; i++) {
        const struct ck_prom_label labels[] = {{"tenant", m->expiries[i].tenant},
                                               {"enrollment", m->expiries[i].key}};
        ck_prom_sample(out, expiry, labels, 2, m->expiries[i].value);
    }
    ck_prom_family(out, "certkeep_orders", "gauge", "Orders by tenant and state.");
    counts(out, "certkeep_orders", "state", m->orders, m->n_orders);
    job_failures(out, m);
    ck_prom_family(out, "certkeep_webhook_delivery_failures_total", "counter",
                   "Webhook delivery attempts that were not acknowledged with a 2xx, by tenant.");
    counts(out, "certkeep_webhook_delivery_failures_total", NULL, m->webhook_failures,
           m->n_webhook_failures);
    ck_prom_family(out, "certkeep_watch_endpoints", "gauge",
                   "Watched endpoints by tenant and the status of their last probe.");
    counts(out, "certkeep_watch_endpoints", "status", m->watch, m->n_watch);
    edge(out, e);
    edge_cache(out, e);
}
