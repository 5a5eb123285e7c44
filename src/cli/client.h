/* client.h — the command line's one HTTP client for the certkeep API (docs/API.md), on libcurl.
 *
 * The address comes from CERTKEEP_ADDR (default http://127.0.0.1:8443), the bearer token from
 * CERTKEEP_TOKEN, extra trust for https from CERTKEEP_CA_FILE. Every function that fails has
 * already told the user why on stderr ("certkeep: <message>") and returns the exit code to use
 * (docs/CLI.md): 1 when the API said no or could not be reached, 2 for a usage problem such as a
 * missing token. */
#ifndef CK_CLI_CLIENT_H
#define CK_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/util.h"

#define CK_CLIENT_DEFAULT_ADDR      "http://127.0.0.1:8443"
#define CK_CLIENT_CONNECT_TIMEOUT_S 10L
#define CK_CLIENT_TOTAL_TIMEOUT_S   120L
#define CK_CLIENT_MAX_BODY          ((size_t)64 * 1024 * 1024)

struct ck_client;

/* Reads the environment and prepares a connection; nothing is sent yet. */
int ck_client_open(struct ck_client **out);
void ck_client_free(struct ck_client *c);

struct ck_response {
    long status;
    char *body; /* NUL-terminated (the API's bytes may hold NULs: use len) */
    size_t len;
};
void ck_response_free(struct ck_response *r);

/* Sends METHOD path (which starts with "/v1/..."; build it with ck_api_path) with `body` as
 * JSON when not NULL. Fills *resp and returns 0 on a 2xx answer; otherwise prints the API's
 * error message and each of its details on stderr and returns CK_EXIT_FAILED. */
int ck_client_send(struct ck_client *c, const char *method, const char *path, const json_t *body,
                   struct ck_response *resp);

/* Like ck_client_send, but every HTTP answer is returned (0) with its status, for commands
 * that read the body of an error answer; only a failure to reach the API is printed. */
int ck_client_exchange(struct ck_client *c, const char *method, const char *path,
                       const json_t *body, struct ck_response *resp);

/* Prints an error answer on stderr: its message, then each of its details' messages. */
void ck_client_print_error(const struct ck_response *resp);

/* Like ck_client_send, and parses the answer as JSON into *out (NULL for an empty answer such
 * as 204). The caller owns *out. */
int ck_client_call(struct ck_client *c, const char *method, const char *path, const json_t *body,
                   json_t **out);

/* Builds a path from fmt, where each "%s" is replaced by its argument URL-encoded as one path
 * segment and "%lld" by a long long; other characters are copied. Returns NULL when out of
 * memory. The caller frees. */
char *ck_api_path(const char *fmt, ...);

/* One query parameter; left out when value is NULL. */
struct ck_query_param {
    const char *key;
    const char *value;
};

/* path followed by "?key=value&..." for the given parameters, values URL-encoded. NULL when out
 * of memory. The caller frees. */
char *ck_api_path_query(const char *path, const struct ck_query_param *params, size_t n);

/* Request bodies. Each sets obj[key] only when the value is given (not NULL, not empty list);
 * they print why and return CK_EXIT_USAGE when a value is not UTF-8 text. */
int ck_body_set_str(json_t *obj, const char *key, const char *value);
int ck_body_set_list(json_t *obj, const char *key, const ck_strv *values);

/* Shows an API answer the way every command does: pretty JSON with --json, else the human
 * view `show` (may be NULL when the answer has nothing to show, e.g. 204). */
typedef int (*ck_show_fn)(const json_t *answer);

/* Opens a client, calls METHOD path with body, shows the answer; returns the exit code. */
int ck_client_run(const struct ck_cli *cli, const char *method, const char *path,
                  const json_t *body, ck_show_fn show);

/* Like ck_client_run with GET, for a list route that answers in pages (docs/API.md, "Paging"):
 * follows each page's `next` cursor (CK_CLIENT_PAGE_LIMIT rows a page) and shows the rows of
 * every page under `key` as one answer. path may carry its own query already. */
#define CK_CLIENT_PAGE_LIMIT 1000
int ck_client_run_list(const struct ck_cli *cli, const char *path, const char *key,
                       ck_show_fn show);

/* GETs path and writes the answer's bytes to stdout unchanged (a CSR, an artifact). */
int ck_client_download(const char *path);

/* A command with no options whose arguments fill the path: each "%s" takes a NAME, each
 * "%lld" an ID (checked to be a number), in order. With `raw` the answer's bytes are written
 * to stdout as they are (ck_client_download); otherwise `show` shows it. `done` (may be NULL)
 * is printed with the first argument after success in the human view: "deleted enrollment" ->
 * "deleted enrollment shop". */
struct ck_simple_command {
    const char *usage;
    const char *method;
    const char *path;
    ck_show_fn show;
    const char *done;
    bool raw;
};
int ck_client_simple(const struct ck_cli *cli, int argc, char **argv,
                     const struct ck_simple_command *def);

#endif
