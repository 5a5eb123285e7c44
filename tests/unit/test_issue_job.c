/* The issue job with the local CA, through a real SQLite store: an order of an enrollment whose
 * issuer is local goes from start to issued by its jobs alone (csr, then issue), with the
 * policy's lifetime, a chain that verifies to the CA, and the same install path as an import. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "core/csr_job.h"
#include "core/issue_job.h"
#include "issuers/local_ca.h"
#include "store/store.h"
#include "temp_store.h"

static int setup(void **state)
{
    return tenant_store_setup(state, "issue");
}

/* As POST /v1/ca does: the key sealed under a provisional AAD is moved to the row's own. */
struct ca_ctx {
    const ck_master_key *mk;
    const struct ck_local_ca *ca;
};

static int reseal(void *ctx, int64_t id, const char *what, uint8_t **sealed, size_t *len,
                  ck_error *err)
{
    const struct ca_ctx *c = ctx;
    char aad[64];
    assert_string_equal(what, "key");
    EVP_PKEY *key = ck_unseal_private_key(c->mk, "certkeep/ca/new/key", c->ca->sealed_key,
                                          c->ca->sealed_key_len, err);
    assert_non_null(key);
    snprintf(aad, sizeof(aad), "certkeep/ca/%lld/key", (long long)id);
    int rc = ck_seal_private_key(c->mk, aad, key, sealed, len, err);
    EVP_PKEY_free(key);
    return rc;
}

static char *make_ca(struct tenant_store *f)
{
    struct ck_local_ca ca = {0};
    struct ck_local_ca_record rec = {0};
    ck_error err = {0};
    assert_int_equal(ck_local_ca_create(&f->mk, "lab CA", "new", ck_clock_now(), &ca, &err), 0);
    struct ca_ctx ctx = {.mk = &f->mk, .ca = &ca};
    assert_int_equal(
        ck_store_local_ca_create(f->db.st, f->tenant_id, ca.cert_pem, reseal, &ctx, &rec, &err), 0);
    char *pem = strdup(rec.cert_pem);
    ck_local_ca_record_free(&rec);
    ck_local_ca_free(&ca);
    return pem;
}

static int no_secret(void *ctx, int64_t id, const char *what, uint8_t **sealed, size_t *len,
                     ck_error *err)
{
    (void)ctx, (void)id, (void)what, (void)err;
    *sealed = NULL;
    *len = 0;
    return 0;
}

static void make_enrollment(struct tenant_store *f, const char *issuer, const char *lifetime)
{
    struct ck_issuer is = {.tenant_id = f->tenant_id, .name = "mine", .type = "local"};
    struct ck_enrollment e = {.tenant_id = f->tenant_id,
                              .name = "web",
                              .cn = "web.lab.test",
                              .key_type = CK_KEY_EC_P256,
                              .issuer = (char *)issuer,
                              .policy.lifetime = (char *)lifetime};
    ck_error err = {0};
    assert_int_equal(ck_store_issuer_create(f->db.st, &is, no_secret, NULL, &err), 0);
    assert_int_equal(ck_strv_push(&e.sans, "web.lab.test"), 0);
    assert_int_equal(ck_strv_push(&e.sans, "api.lab.test"), 0);
    assert_int_equal(ck_store_enrollment_create(f->db.st, &e, &err), 0);
    ck_strv_free(&e.sans);
}

/* Claims and runs every queued job (csr, then the issue job it queues); returns how many ran. */
static int run_jobs(struct tenant_store *f)
{
    struct ck_job job = {0};
    ck_error err = {0};
    int ran = 0;
    for (int i = 0; i < 10 && ck_store_job_claim(f->db.st, "test", 60, &job, &err) == 1; i++) {
        if (job.type == CK_JOB_CSR)
            ck_csr_job_run(f->db.st, &f->mk, &job);
        else if (job.type == CK_JOB_ISSUE)
            ck_issue_job_run(f->db.st, &f->mk, NULL, &job);
        else
            fail_msg("unexpected job type %s", ck_job_type_name(job.type));
        ck_job_free(&job);
        ran++;
    }
    return ran;
}

static int64_t start_order(struct tenant_store *f)
{
    struct ck_enrollment e = {0};
    int64_t order_id, job_id;
    ck_error err = {0};
    assert_int_equal(ck_store_enrollment_get(f->db.st, f->tenant_id, "web", &e, &err), 0);
    assert_int_equal(ck_store_order_create(f->db.st, f->tenant_id, e.id, &order_id, &job_id, &err),
                     0);
    ck_enrollment_free(&e);
    return order_id;
}

static X509 *pem_cert(const char *pem)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *cert = PEM_read_bio_X509(in, NULL, NULL, NULL);
    BIO_free(in);
    assert_non_null(cert);
    return cert;
}

static void test_local_order_is_issued_by_its_jobs(void **state)
{
    struct tenant_store *f = *state;
    struct ck_order o = {0};
    ck_error err = {0};
    char *root_pem = make_ca(f);
    make_enrollment(f, "mine", "40s");
    int64_t id = start_order(f);
    assert_int_equal(run_jobs(f), 2); /* csr, then issue: nothing else */
    assert_int_equal(ck_store_order_get(f->db.st, f->tenant_id, id, &o, &err), 0);
    assert_string_equal(ck_order_state_name(o.state), "issued");
    assert_non_null(o.cert_pem);
    X509 *leaf = pem_cert(o.cert_pem);
    X509 *root = pem_cert(root_pem);
    EVP_PKEY *root_key = X509_get0_pubkey(root);
    assert_int_equal(X509_verify(leaf, root_key), 1);
    /* 40 s from now, as the policy asks (the CA backdates notBefore, not notAfter). */
    int64_t left = o.cert_not_after - ck_clock_now();
    assert_true(left > 30 && left <= 40);
    /* No expires_soon warning to acknowledge for a lifetime that was asked for. */
    assert_null(strstr(o.findings_json, "expires_soon"));
    X509_free(root);
    X509_free(leaf);
    ck_order_free(&o);
    free(root_pem);
}

static void test_without_a_ca_the_order_fails_saying_why(void **state)
{
    struct tenant_store *f = *state;
    struct ck_order o = {0};
    ck_error err = {0};
    make_enrollment(f, "mine", NULL);
    int64_t id = start_order(f);
    assert_int_equal(run_jobs(f), 2);
    assert_int_equal(ck_store_order_get(f->db.st, f->tenant_id, id, &o, &err), 0);
    assert_string_equal(ck_order_state_name(o.state), "failed");
    assert_non_null(o.error);
    assert_non_null(strstr(o.error, "CA"));
    ck_order_free(&o);
}

static void test_manual_issuer_queues_no_issue_job(void **state)
{
    struct tenant_store *f = *state;
    struct ck_order o = {0};
    ck_error err = {0};
    make_enrollment(f, "manual", NULL);
    int64_t id = start_order(f);
    assert_int_equal(run_jobs(f), 1);
    assert_int_equal(ck_store_order_get(f->db.st, f->tenant_id, id, &o, &err), 0);
    assert_string_equal(ck_order_state_name(o.state), "csr_ready");
    ck_order_free(&o);
}

static void test_validation_view(void **state)
{
    (void)state;
    json_t *none = ck_issue_validation_json(NULL);
    assert_true(json_is_null(none));
    json_decref(none);
    json_t *bad = ck_issue_validation_json("{not json");
    assert_true(json_is_null(bad));
    json_decref(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_order_is_issued_by_its_jobs, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_without_a_ca_the_order_fails_saying_why, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_manual_issuer_queues_no_issue_job, setup,
                                        tenant_store_teardown),
        cmocka_unit_test(test_validation_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
