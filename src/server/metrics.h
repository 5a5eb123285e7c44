/* metrics.h — private to src/server: what GET /metrics shows (issue 6, item 6), rendered in the
 * Prometheus text format (common/prom.h). Pure: the handler reads the numbers (the store's
 * ck_store_metrics_read, the edge's handshake counters) and this writes them.
 *
 * Families (docs/API.md, "Metrics"):
 *   certkeep_certificate_expiry_timestamp_seconds{tenant,enrollment}  gauge, production notAfter
 *   certkeep_orders{tenant,state}                                      gauge
 *   certkeep_job_failures_total{type}                                  counter, failed jobs
 *   certkeep_webhook_delivery_failures_total{tenant}                   counter, failed attempts
 *   certkeep_watch_endpoints{tenant,status}                            gauge, last probe status
 *   certkeep_edge_handshakes_total{listener}                           counter, this daemon
 *   certkeep_edge_handshake_errors_total{listener}                     counter, this daemon */
#ifndef CK_SERVER_METRICS_H
#define CK_SERVER_METRICS_H

#include <stdint.h>

#include "common/prom.h"
#include "core/model.h"
#include "store/store.h"

struct ck_edge_counts {
    uint64_t handshakes[2], errors[2]; /* indexed by enum ck_environment */
    uint64_t cache_hits[2], cache_misses[2];
    uint64_t cache_entries[2], cache_capacity[2];
};

/* Appends every family to out (check ck_prom_text for an allocation failure). */
void ck_metrics_render(const struct ck_store_metrics *m, const struct ck_edge_counts *edge,
                       struct ck_prom *out);

#endif
