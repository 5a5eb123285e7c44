/* daemon.h — the daemon's commands: `certkeep init`, `certkeep serve`, and the operator's offline
 * `certkeep key export`. Each takes the arguments after "certkeep" (argv[0] is the command name)
 * and returns the process exit code (0 ok, 1 failed, 2 usage). */
#ifndef CK_SERVER_DAEMON_H
#define CK_SERVER_DAEMON_H

/* Usage texts of the daemon's commands, each ending in a newline. */
extern const char ck_daemon_usage_init[];
extern const char ck_daemon_usage_serve[];
extern const char ck_daemon_usage_key[];

int ck_daemon_cmd_init(int argc, char **argv);
int ck_daemon_cmd_serve(int argc, char **argv);
int ck_daemon_cmd_key_export(int argc, char **argv);

#endif
