/*
 * liblcmcoord's SSH client: lets a CoordinateVNF program run commands on the VNFC itself
 * (drain traffic, reload, check health) with the ssh_ip, username and password the VNFM
 * passes in the VNFC parameters. Built on libssh2; every step (resolving, connecting, the
 * handshake, authentication, running a command, reading its output) is bounded by a
 * wall-clock deadline and stops promptly when the engine is interrupted
 * (lcmc_engine_interrupt), so a stuck VNFC can neither hang the LCM operation nor outlive a
 * SIGTERM.
 *
 * The host key is always verified before any credential is sent: against an OpenSSH
 * known_hosts file (hashed entries too) or a pinned SHA-256 fingerprint. An unknown key is
 * refused unless accept_unknown_host_key is set (then a warning with its fingerprint is
 * logged); a key that differs from the known or pinned one is always refused.
 *
 * Conventions are those of lcmcoord.h: lcmc_status results; the detail of a failed
 * lcmc_ssh_connect is lcmc_engine_last_error(engine), that of a failed command is
 * lcmc_ssh_result_error(result); messages never contain passwords or passphrases. A session
 * belongs to one engine, which must outlive it; like the engine, it is not thread-safe.
 */
#ifndef LCMCOORD_SSH_H
#define LCMCOORD_SSH_H

#include <stddef.h>

#include "lcmcoord/lcmcoord.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LCMC_SSH_OPTIONS_VERSION 1

typedef struct lcmc_ssh_options {
    unsigned int version; /* LCMC_SSH_OPTIONS_VERSION */
    /* Host name or address of the VNFC (an IPv6 address without brackets). Required. */
    const char *host;
    /* TCP port; 0: 22. */
    int port;
    /* User name. Required. */
    const char *user;
    /* Password, used for "password" or, when the server only offers that,
     * "keyboard-interactive" authentication. Read during lcmc_ssh_connect only. */
    const char *password;
    /* Private key file (PEM or OpenSSH format) for public key authentication, tried before
     * the password when both are given. */
    const char *key_file;
    /* Passphrase of an encrypted key_file. Read during lcmc_ssh_connect only. */
    const char *key_password;
    /* OpenSSH known_hosts file to verify the host key against; entries for a port other
     * than 22 are written "[host]:port". NULL with no host_key_sha256: $HOME/.ssh/known_hosts
     * (a missing file there holds no keys). */
    const char *known_hosts;
    /* Pinned SHA-256 fingerprint of the host key, as ssh-keygen -l prints it
     * ("SHA256:base64") or the base64 alone, padded or not. Excludes known_hosts. */
    const char *host_key_sha256;
    /* 1 accepts a host key that known_hosts does not list (logged as a warning with its
     * fingerprint). A key that contradicts known_hosts or the pin is refused regardless. */
    int accept_unknown_host_key;
    /* Deadline of lcmc_ssh_connect, and of each command run with no timeout of its own,
     * seconds; 0: 30. */
    double timeout;
    /* The most bytes of stdout, and of stderr, kept from one command; the rest is read and
     * dropped and the result marked truncated; 0: 1 MiB. */
    size_t max_output;
} lcmc_ssh_options;

#define LCMC_SSH_OPTIONS_INIT                                                                      \
    {                                                                                              \
        LCMC_SSH_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0             \
    }

typedef struct lcmc_ssh_session lcmc_ssh_session;
typedef struct lcmc_ssh_result lcmc_ssh_result;

/* Connects, verifies the host key and authenticates, all within options->timeout. On
 * failure *out is NULL and lcmc_engine_last_error(engine) says why: LCMC_EUSAGE (bad
 * options, unreadable key or known_hosts file), LCMC_ETRANSPORT (name resolution, connection
 * refused or reset, handshake failure), LCMC_EAUTH (host key unknown or mismatched, password
 * or key refused), LCMC_EDEADLINE, LCMC_ECANCELLED (engine interrupted), LCMC_ENOMEM. */
LCMC_API lcmc_status lcmc_ssh_connect(lcmc_engine *engine, const lcmc_ssh_options *options,
                                      lcmc_ssh_session **out);
/* lcmc_ssh_connect without waiting: `done(userdata, status, session)` runs once from the
 * engine's loop with what lcmc_ssh_connect would have returned (the session is then the
 * callee's; on failure it is NULL and lcmc_engine_last_error(engine) holds the detail
 * during the call). The connection is made on a thread of its own with a private engine, so
 * nothing on `engine` waits for it; its log events reach `engine` when it is done. The
 * options are copied (secrets wiped when freed). lcmc_engine_interrupt ends it with
 * LCMC_ECANCELLED. Returns LCMC_EUSAGE/LCMC_ENOMEM (then `done` is never called) or LCMC_OK
 * with *out a handle valid until `done` starts or lcmc_ssh_connect_cancel. */
typedef struct lcmc_ssh_connect_handle lcmc_ssh_connect_handle;
typedef void lcmc_ssh_connect_done_fn(void *userdata, lcmc_status status,
                                      lcmc_ssh_session *session);
LCMC_API lcmc_status lcmc_ssh_connect_start(lcmc_engine *engine, const lcmc_ssh_options *options,
                                            lcmc_ssh_connect_done_fn *done, void *userdata,
                                            lcmc_ssh_connect_handle **out);
/* Stops it (returning promptly: the connection in progress is interrupted and its thread
 * waited for); `done` is never called. Accepts NULL. */
LCMC_API void lcmc_ssh_connect_cancel(lcmc_ssh_connect_handle *connect);
/* Disconnects (briefly waiting for the server to take the goodbye, not at all once the
 * engine is interrupted) and frees the session. Accepts NULL. */
LCMC_API void lcmc_ssh_session_free(lcmc_ssh_session *session);
/* "user@host:port", for messages. */
LCMC_API const char *lcmc_ssh_session_label(const lcmc_ssh_session *session);
/* The server's host key fingerprint, "SHA256:base64" as ssh-keygen prints it. */
LCMC_API const char *lcmc_ssh_session_host_key_sha256(const lcmc_ssh_session *session);

/* Runs `command` through the user's shell on the server, waits for it to end and collects
 * its exit status, stdout and stderr, all within `timeout` seconds (<= 0: the session's).
 * *out always holds a result (except on LCMC_EUSAGE and LCMC_ENOMEM); on failure
 * lcmc_ssh_result_error says why and the output read so far is kept. A command that runs
 * and exits non-zero is a success here. After any failure (LCMC_EDEADLINE, LCMC_ECANCELLED,
 * LCMC_ETRANSPORT...) the session is left unusable (later commands fail with
 * LCMC_ETRANSPORT): connect again. The remote command is not killed by a deadline: only its
 * channel is abandoned. */
LCMC_API lcmc_status lcmc_ssh_exec(lcmc_ssh_session *session, const char *command, double timeout,
                                   lcmc_ssh_result **out);
/* lcmc_ssh_exec without waiting (lcmcoord.h, "Running the engine from callbacks"): the
 * command runs while the engine's loop turns, and `done(userdata, status, result)` runs once
 * from the loop with what lcmc_ssh_exec would have returned; the result is then the callee's
 * (lcmc_ssh_result_free; never NULL). One command at a time per session: a second one ends
 * with LCMC_EUSAGE (said by its callback). Freeing the session while the command runs ends
 * it with LCMC_ETRANSPORT. Returns LCMC_EUSAGE/LCMC_ENOMEM (then `done` is never called) or
 * LCMC_OK with *out a handle valid until `done` starts or lcmc_ssh_exec_cancel. */
typedef struct lcmc_ssh_exec_handle lcmc_ssh_exec_handle;
typedef void lcmc_ssh_exec_done_fn(void *userdata, lcmc_status status, lcmc_ssh_result *result);
LCMC_API lcmc_status lcmc_ssh_exec_start(lcmc_ssh_session *session, const char *command,
                                         double timeout, lcmc_ssh_exec_done_fn *done,
                                         void *userdata, lcmc_ssh_exec_handle **out);
/* Abandons the command's channel (the session is then unusable, as after a failure; the
 * remote command is not killed): `done` is never called. Accepts NULL. */
LCMC_API void lcmc_ssh_exec_cancel(lcmc_ssh_exec_handle *exec);
LCMC_API void lcmc_ssh_result_free(lcmc_ssh_result *result);
LCMC_API lcmc_status lcmc_ssh_result_status(const lcmc_ssh_result *result);
LCMC_API const lcmc_error *lcmc_ssh_result_error(const lcmc_ssh_result *result);
/* The command's exit status, or -1 when it reported none (killed by a signal, or failed). */
LCMC_API int lcmc_ssh_result_exit_status(const lcmc_ssh_result *result);
/* The name of the signal that killed the command without the "SIG" ("KILL"), or NULL. */
LCMC_API const char *lcmc_ssh_result_exit_signal(const lcmc_ssh_result *result);
/* Output, NUL-terminated ("" when none); *length (if not NULL) counts the bytes, which may
 * include NULs. */
LCMC_API const char *lcmc_ssh_result_stdout(const lcmc_ssh_result *result, size_t *length);
LCMC_API const char *lcmc_ssh_result_stderr(const lcmc_ssh_result *result, size_t *length);
/* 1 when the command wrote more than max_output bytes there and the rest was dropped. */
LCMC_API int lcmc_ssh_result_stdout_truncated(const lcmc_ssh_result *result);
LCMC_API int lcmc_ssh_result_stderr_truncated(const lcmc_ssh_result *result);
/* Seconds the command took, channel opening included. */
LCMC_API double lcmc_ssh_result_elapsed(const lcmc_ssh_result *result);

#ifdef __cplusplus
}
#endif

#endif
