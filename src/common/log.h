/* log.h — one line per message on stderr: "2026-11-22T07:50:01Z info message".
 * Never log secrets: keys, tokens, master key, sealed blobs. */
#ifndef CK_COMMON_LOG_H
#define CK_COMMON_LOG_H

enum ck_log_level { CK_LOG_DEBUG, CK_LOG_INFO, CK_LOG_WARN, CK_LOG_ERROR };

/* The threshold is read once from CERTKEEP_LOG (debug|info|warn|error; default info). */
void ck_log(enum ck_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
