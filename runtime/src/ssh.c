/*
 * The SSH client of lcmcoord/ssh.h: one libssh2 session per VNFC, driven in non-blocking
 * mode so that each step waits in the engine's loop (a watch on the session's socket and a
 * timer at its deadline) while whatever else is in flight on the engine goes on. That is what lets
 * SIGTERM (through lcmc_engine_interrupt) stop a command in progress at once, and what keeps a VNFC
 * that stops answering from holding an LCM operation past its budget. libcurl opens the TCP
 * connection (its threaded resolver keeps name lookups under the deadline too, and it tries
 * every address); libssh2 then does the SSH protocol on that socket. The host key is checked
 * before any credential leaves the process, and libssh2's own memory, which holds copies of
 * the password and of decrypted keys, is wiped when libssh2 frees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "engine.h"
#include "events.h"
#include "lcmcoord/ssh.h"
#include "ssh.h"

#define DEFAULT_TIMEOUT    30.0
#define DEFAULT_MAX_OUTPUT ((size_t)1024 * 1024)
/* How long freeing a session waits for the server to take the disconnect message. */
#define GOODBYE_GRACE 1.0
/* A wait when libssh2 reports no direction to wait for: short, so nothing can stall. */
#define UNDIRECTED_WAIT 0.01

struct lcmc_ssh_session {
    lcmc_engine *engine;
    LIBSSH2_SESSION *ssh;
    int fd;
    char *host;
    int port;
    char *user;
    char *label; /* user@host:port */
    double timeout;
    size_t max_output;
    char fingerprint[LCMC_SSH_FINGERPRINT_SIZE];
    int handshaken;
    /* An operation was abandoned halfway (deadline, interrupt, lost connection): libssh2's
     * state is no longer fit for another command, only for freeing. */
    int unusable;
    /* Borrowed from the options during lcmc_ssh_connect only, for keyboard-interactive. */
    const char *password;
    /* The command running without a waiting caller (lcmc_ssh_exec_start), if any. */
    lcmc_ssh_exec_handle *running;
};

struct lcmc_ssh_result {
    lcmc_status status;
    lcmc_error error;
    int exit_status;
    char *exit_signal;
    lcmc_buffer out, err;
    int out_truncated, err_truncated;
    double elapsed;
};

/* ---- pure helpers (unit tested) ------------------------------------------------------ */

static int is_base64_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int lcmc__ssh_parse_sha256(const char *text, unsigned char digest[LCMC_SSH_SHA256_LENGTH])
{
    if (text == NULL)
        return -1;
    while (*text == ' ' || *text == '\t')
        text++;
    if (strncasecmp(text, "SHA256:", 7) == 0)
        text += 7;
    size_t length = strlen(text);
    while (length > 0 && (text[length - 1] == ' ' || text[length - 1] == '\t' ||
                          text[length - 1] == '\n' || text[length - 1] == '\r'))
        length--;
    /* 32 bytes are 43 base64 characters and one "=" of padding. */
    if (length == 44 && text[43] == '=')
        length = 43;
    if (length != 43)
        return -1;
    char padded[45];
    for (size_t i = 0; i < 43; i++) {
        if (!is_base64_char((unsigned char)text[i]))
            return -1;
        padded[i] = text[i];
    }
    padded[43] = '=';
    padded[44] = '\0';
    /* EVP_DecodeBlock decodes the padding as zero bits and counts it: 33 bytes, the last
     * of which holds the two spare bits of the 43rd character. Non-zero spare bits mean a
     * non-canonical encoding that another tool would print differently: refused. */
    unsigned char decoded[36];
    if (EVP_DecodeBlock(decoded, (const unsigned char *)padded, 44) != 33 || decoded[32] != 0)
        return -1;
    memcpy(digest, decoded, LCMC_SSH_SHA256_LENGTH);
    return 0;
}

void lcmc__ssh_format_sha256(const unsigned char digest[LCMC_SSH_SHA256_LENGTH],
                             char out[LCMC_SSH_FINGERPRINT_SIZE])
{
    unsigned char encoded[48];
    EVP_EncodeBlock(encoded, digest, LCMC_SSH_SHA256_LENGTH);
    /* ssh-keygen prints the 43 significant characters, without the "=". */
    memcpy(out, "SHA256:", 7);
    memcpy(out + 7, encoded, 43);
    out[50] = '\0';
}

int lcmc__ssh_digest_equal(const unsigned char a[LCMC_SSH_SHA256_LENGTH],
                           const unsigned char b[LCMC_SSH_SHA256_LENGTH])
{
    return CRYPTO_memcmp(a, b, LCMC_SSH_SHA256_LENGTH) == 0;
}

int lcmc__ssh_capture(lcmc_buffer *buf, int *truncated, const void *data, size_t length)
{
    size_t room = buf->cap > buf->length ? buf->cap - buf->length : 0;
    size_t kept = length < room ? length : room;
    if (kept < length)
        *truncated = 1;
    if (kept == 0)
        return 0;
    return lcmc__buffer_append(buf, data, kept);
}

/* ---- libssh2 memory: wiped when freed ------------------------------------------------ */

/* libssh2 copies the password into the packet it sends and keeps decrypted private keys in
 * its buffers; a size header lets these allocators overwrite every block before free. */
typedef union wiped_header {
    max_align_t align;
    size_t size;
} wiped_header;

static void *wiped_alloc(size_t count, void **abstract)
{
    (void)abstract;
    if (count > SIZE_MAX - sizeof(wiped_header))
        return NULL;
    wiped_header *h = malloc(sizeof *h + count);
    if (h == NULL)
        return NULL;
    h->size = count;
    return h + 1;
}

static void wiped_free(void *ptr, void **abstract)
{
    (void)abstract;
    if (ptr == NULL)
        return;
    wiped_header *h = (wiped_header *)ptr - 1;
    OPENSSL_cleanse(ptr, h->size);
    free(h);
}

static void *wiped_realloc(void *ptr, size_t count, void **abstract)
{
    if (ptr == NULL)
        return wiped_alloc(count, abstract);
    void *bigger = wiped_alloc(count, abstract);
    if (bigger == NULL)
        return NULL;
    size_t old = ((wiped_header *)ptr - 1)->size;
    memcpy(bigger, ptr, old < count ? old : count);
    wiped_free(ptr, abstract);
    return bigger;
}

/* ---- waiting ------------------------------------------------------------------------- */

static pthread_once_t ssh_init_once = PTHREAD_ONCE_INIT;
static int ssh_init_result;

static void ssh_global_init(void)
{
    /* Never undone with libssh2_exit: other users of libssh2 may share the process. */
    ssh_init_result = libssh2_init(0);
}

/* Sleeps in the engine's loop until `fd` is ready for `events`, the engine is interrupted,
 * or `until` (monotonic seconds, never after `deadline`) passes; whatever else is in flight
 * on the engine makes progress meanwhile. Returns LCMC_OK when it is time to try again,
 * LCMC_ECANCELLED or LCMC_EDEADLINE. */
static lcmc_status wait_fd(lcmc_engine *engine, int fd, short events, double until, double deadline)
{
    if (lcmc_engine_interrupted(engine))
        return LCMC_ECANCELLED;
    if (lcmc__now() >= deadline)
        return LCMC_EDEADLINE;
    lcmc_status s = lcmc__engine_wait_fd(engine, fd, events, until < deadline ? until : deadline);
    if (s == LCMC_ECANCELLED || lcmc_engine_interrupted(engine))
        return LCMC_ECANCELLED;
    /* Out of memory: let the next libssh2 call (or the deadline) report what is wrong. */
    return lcmc__now() >= deadline ? LCMC_EDEADLINE : LCMC_OK;
}

/* Waits for the session's socket in the direction libssh2 last blocked on. */
static lcmc_status wait_session(lcmc_ssh_session *s, double deadline)
{
    int directions = libssh2_session_block_directions(s->ssh);
    short events = 0;
    if (directions & LIBSSH2_SESSION_BLOCK_INBOUND)
        events |= CURL_WAIT_POLLIN;
    if (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        events |= CURL_WAIT_POLLOUT;
    if (events == 0)
        return wait_fd(s->engine, s->fd, CURL_WAIT_POLLIN, lcmc__now() + UNDIRECTED_WAIT, deadline);
    return wait_fd(s->engine, s->fd, events, deadline, deadline);
}

/* libssh2's description of its last error, for messages (never holds credentials). */
static const char *ssh_last_error(lcmc_ssh_session *s)
{
    char *message = NULL;
    libssh2_session_last_error(s->ssh, &message, NULL, 0);
    return message != NULL && *message != '\0' ? message : "unknown libssh2 error";
}

/* Fills err for a wait that ended without the socket becoming ready, `doing` naming the
 * step ("connecting", "running the command"...). */
static lcmc_status wait_failure(const lcmc_ssh_session *s, lcmc_status status, const char *doing,
                                double budget, lcmc_error *err)
{
    if (status == LCMC_ECANCELLED)
        lcmc__error_set(err, status, "SSH to %s cancelled while %s", s->label, doing);
    else
        lcmc__error_set(err, status, "SSH to %s: deadline of %g s passed while %s", s->label,
                        budget, doing);
    return status;
}

/* ---- connecting ---------------------------------------------------------------------- */

/* libcurl closes the sockets it opened through this, except the one the session keeps. */
static int close_socket(void *clientp, curl_socket_t item)
{
    const curl_socket_t *kept = clientp;
    if (item != *kept)
        close(item);
    return 0;
}

/* The connect-only transfer of tcp_connect, driven by the engine's loop: libcurl says which
 * sockets to watch and when to call it back (its socket and timer callbacks), the engine
 * watches and times them with everything else in flight, and an interrupt ends the wait. */
#define CONNECT_MAX_SOCKETS 8 /* libcurl's happy eyeballs opens two at a time */

typedef struct tcp_connecting {
    lcmc_engine *engine;
    CURLM *multi;
    lcmc_watch sockets[CONNECT_MAX_SOCKETS];
    lcmc_timer curl_timer; /* libcurl's own timeout */
    lcmc_timer deadline;
    int stop;     /* finished, or the deadline came */
    int finished; /* libcurl is done: `code` says how */
    int no_room;  /* more sockets than CONNECT_MAX_SOCKETS: reported as out of memory */
    CURLcode code;
} tcp_connecting;

static void connecting_check_done(tcp_connecting *c)
{
    int queued = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            c->code = msg->data.result;
            c->finished = c->stop = 1;
        }
    }
}

static void connecting_socket_ready(lcmc_watch *watch, short revents)
{
    tcp_connecting *c = watch->owner;
    int flags = 0;
    if (revents & CURL_WAIT_POLLIN)
        flags |= CURL_CSELECT_IN;
    if (revents & CURL_WAIT_POLLOUT)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(c->multi, watch->fd, flags, &running);
    connecting_check_done(c);
}

static void connecting_timer_fired(lcmc_timer *timer)
{
    tcp_connecting *c = timer->owner;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    connecting_check_done(c);
}

static void connecting_deadline(lcmc_timer *timer)
{
    ((tcp_connecting *)timer->owner)->stop = 1;
}

/* CURLMOPT_SOCKETFUNCTION: what libcurl wants to wait for on one of its sockets. */
static int connecting_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    tcp_connecting *c = userp;
    lcmc_watch *slot = NULL, *free_slot = NULL;
    for (int i = 0; i < CONNECT_MAX_SOCKETS; i++) {
        if (c->sockets[i].added && c->sockets[i].fd == (int)fd)
            slot = &c->sockets[i];
        else if (!c->sockets[i].added && free_slot == NULL)
            free_slot = &c->sockets[i];
    }
    if (slot)
        lcmc__watch_remove(c->engine, slot);
    if (what == CURL_POLL_REMOVE)
        return 0;
    if (slot == NULL)
        slot = free_slot;
    short events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= CURL_WAIT_POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= CURL_WAIT_POLLOUT;
    if (slot == NULL) {
        c->no_room = c->stop = 1;
        return -1;
    }
    lcmc__watch_init(slot, (int)fd, events, connecting_socket_ready, c);
    if (lcmc__watch_add(c->engine, slot) != 0) {
        c->no_room = c->stop = 1;
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants to be called back (-1: never). */
static int connecting_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    tcp_connecting *c = userp;
    if (timeout_ms < 0) {
        lcmc__timer_disarm(c->engine, &c->curl_timer);
        return 0;
    }
    return lcmc__timer_arm(c->engine, &c->curl_timer, lcmc__now() + (double)timeout_ms / 1000.0);
}

/* Opens the TCP connection with libcurl in connect-only mode on a multi handle of its own,
 * waiting in the engine's loop. */
static lcmc_status tcp_connect(lcmc_ssh_session *s, double deadline, double budget, lcmc_error *err)
{
    lcmc_engine *engine = s->engine;
    int bracket = strchr(s->host, ':') != NULL;
    char *url = lcmc__asprintf("http://%s%s%s:%d/", bracket ? "[" : "", s->host, bracket ? "]" : "",
                               s->port);
    CURL *easy = curl_easy_init();
    CURLM *multi = curl_multi_init();
    curl_socket_t kept = CURL_SOCKET_BAD;
    char curl_error[CURL_ERROR_SIZE] = "";
    lcmc_status status = LCMC_OK;
    tcp_connecting c;
    memset(&c, 0, sizeof c);
    if (url == NULL || easy == NULL || multi == NULL) {
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        status = LCMC_ENOMEM;
        goto done;
    }
    double connect_left = deadline - lcmc__now();
    if (!(connect_left <= LCMC_MAX_TIMEOUT))
        connect_left = LCMC_MAX_TIMEOUT; /* also NaN: (long) of a huge double is undefined */
    long left_ms = (long)ceil(connect_left * 1000.0);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    /* An HTTP proxy from the environment must not be what we connect to. */
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, left_ms > 0 ? left_ms : 1L);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, &kept);
    c.engine = engine;
    c.multi = multi;
    lcmc__timer_init(&c.curl_timer, connecting_timer_fired, &c);
    lcmc__timer_init(&c.deadline, connecting_deadline, &c);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, connecting_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &c);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, connecting_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &c);
    if (curl_multi_add_handle(multi, easy) != CURLM_OK ||
        lcmc__timer_arm(engine, &c.deadline, deadline) != 0) {
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        status = LCMC_ENOMEM;
        goto done;
    }
    int running = 0;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    connecting_check_done(&c);
    lcmc_status waited = lcmc__engine_run_until(engine, &c.stop);
    CURLcode code = c.code;
    if (c.no_room) {
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        status = LCMC_ENOMEM;
    } else if (waited == LCMC_ECANCELLED || (!c.finished && lcmc_engine_interrupted(engine))) {
        status = wait_failure(s, LCMC_ECANCELLED, "connecting", budget, err);
    } else if (!c.finished) {
        status = wait_failure(s, LCMC_EDEADLINE, "connecting", budget, err);
    }
    if (status == LCMC_OK) {
        if (code == CURLE_OK) {
            curl_socket_t fd = CURL_SOCKET_BAD;
            if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
                fd != CURL_SOCKET_BAD) {
                kept = fd;
                s->fd = fd;
                fcntl(fd, F_SETFD, FD_CLOEXEC);
            } else {
                lcmc__error_set(err, LCMC_ETRANSPORT, "cannot connect to %s: no socket", s->label);
                status = LCMC_ETRANSPORT;
            }
        } else if (code == CURLE_OPERATION_TIMEDOUT) {
            status = wait_failure(s, LCMC_EDEADLINE, "connecting", budget, err);
        } else if (code == CURLE_OUT_OF_MEMORY) {
            lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
            status = LCMC_ENOMEM;
        } else {
            lcmc__error_set(err, LCMC_ETRANSPORT, "cannot connect to %s: %s", s->label,
                            curl_error[0] ? curl_error : curl_easy_strerror(code));
            status = LCMC_ETRANSPORT;
        }
    }
done:
    if (multi != NULL && easy != NULL)
        curl_multi_remove_handle(multi, easy);
    curl_easy_cleanup(easy);
    curl_multi_cleanup(multi);
    /* Whatever libcurl did not take back itself leaves the engine with this frame. */
    for (int i = 0; i < CONNECT_MAX_SOCKETS; i++)
        lcmc__watch_remove(engine, &c.sockets[i]);
    if (c.engine != NULL) {
        lcmc__timer_disarm(engine, &c.curl_timer);
        lcmc__timer_disarm(engine, &c.deadline);
    }
    free(url);
    return status;
}

static const char *host_key_type_name(int type)
{
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return "ssh-dss";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return "ssh-ed25519";
    }
    return "unknown key type";
}

/* The known_hosts key type bits of a host key type: entries of another type never match
 * (as in OpenSSH, a host listed with an RSA key only is "unknown" when it shows ed25519). */
static int known_host_key_bits(int type)
{
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    }
    return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
}

/* The fingerprint of a key known_hosts holds in base64, for the mismatch message. */
static void fingerprint_of_base64_key(const char *key, char out[LCMC_SSH_FINGERPRINT_SIZE])
{
    snprintf(out, LCMC_SSH_FINGERPRINT_SIZE, "(unreadable key)");
    size_t length = key != NULL ? strlen(key) : 0;
    if (length == 0 || length % 4 != 0 || length > 16384)
        return;
    unsigned char *blob = malloc(length);
    if (blob == NULL)
        return;
    int decoded = EVP_DecodeBlock(blob, (const unsigned char *)key, (int)length);
    if (decoded > 0) {
        /* EVP_DecodeBlock counts the padding as data. */
        decoded -= (key[length - 1] == '=') + (key[length - 2] == '=');
        unsigned char digest[LCMC_SSH_SHA256_LENGTH];
        if (EVP_Digest(blob, (size_t)decoded, digest, NULL, EVP_sha256(), NULL) == 1)
            lcmc__ssh_format_sha256(digest, out);
    }
    free(blob);
}

/* Reads an OpenSSH known_hosts file line by line, so that one line libssh2 cannot parse (a
 * key type it does not know) costs that line only, not every other entry. "@revoked" lines
 * go to `revoked`; "@cert-authority" lines are skipped (no host certificates here). */
static lcmc_status load_known_hosts(lcmc_ssh_session *s, const char *path, int is_default,
                                    LIBSSH2_KNOWNHOSTS *known, LIBSSH2_KNOWNHOSTS *revoked,
                                    lcmc_error *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (is_default && errno == ENOENT) {
            lcmc__log_as(s->engine, LCMC_LOG_DEBUG, LCMC_EVENT_SSH,
                         "ssh %s: no %s: no host key is known", s->label, path);
            return LCMC_OK;
        }
        lcmc__error_set(err, LCMC_EUSAGE, "cannot read the known_hosts file %s: %s", path,
                        strerror(errno));
        return LCMC_EUSAGE;
    }
    char *line = NULL;
    size_t allocated = 0;
    ssize_t length;
    unsigned long number = 0, skipped = 0;
    while ((length = getline(&line, &allocated, f)) > 0) {
        number++;
        const char *p = line + strspn(line, " \t");
        LIBSSH2_KNOWNHOSTS *into = known;
        if (*p == '@') {
            size_t marker = strcspn(p, " \t");
            if (marker == 8 && strncmp(p, "@revoked", 8) == 0) {
                into = revoked;
                p += marker + strspn(p + marker, " \t");
            } else {
                skipped++;
                continue;
            }
        }
        if (libssh2_knownhost_readline(into, p, strlen(p), LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
            skipped++;
    }
    free(line);
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        lcmc__error_set(err, LCMC_EUSAGE, "cannot read the known_hosts file %s", path);
        return LCMC_EUSAGE;
    }
    if (skipped > 0)
        lcmc__log_as(s->engine, LCMC_LOG_DEBUG, LCMC_EVENT_SSH,
                     "ssh %s: %lu of %lu lines of %s skipped (markers or key types not supported)",
                     s->label, skipped, number, path);
    return LCMC_OK;
}

/* Checks the server's host key against the pin or known_hosts. Runs after the handshake
 * and before authentication, so credentials only ever go to a verified server. */
static lcmc_status verify_host_key(lcmc_ssh_session *s, const lcmc_ssh_options *o,
                                   const unsigned char *pin, LIBSSH2_KNOWNHOSTS *known,
                                   LIBSSH2_KNOWNHOSTS *revoked, const char *known_path,
                                   lcmc_error *err)
{
    size_t key_length = 0;
    int type = LIBSSH2_HOSTKEY_TYPE_UNKNOWN;
    const char *key = libssh2_session_hostkey(s->ssh, &key_length, &type);
    const unsigned char *hash =
        (const unsigned char *)libssh2_hostkey_hash(s->ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (key == NULL || hash == NULL) {
        lcmc__error_set(err, LCMC_ETRANSPORT, "SSH server %s sent no usable host key: %s", s->label,
                        ssh_last_error(s));
        return LCMC_ETRANSPORT;
    }
    lcmc__ssh_format_sha256(hash, s->fingerprint);
    const char *type_name = host_key_type_name(type);

    if (pin != NULL) {
        if (lcmc__ssh_digest_equal(hash, pin)) {
            lcmc__log_as(s->engine, LCMC_LOG_DEBUG, LCMC_EVENT_SSH,
                         "ssh %s: host key %s %s matches the pin", s->label, type_name,
                         s->fingerprint);
            return LCMC_OK;
        }
        char expected[LCMC_SSH_FINGERPRINT_SIZE];
        lcmc__ssh_format_sha256(pin, expected);
        lcmc__error_set(err, LCMC_EAUTH,
                        "host key mismatch for %s: the server presented %s %s but the pinned "
                        "fingerprint is %s; refusing to connect (the VNFC may have a new key, "
                        "or the connection is intercepted)",
                        s->label, type_name, s->fingerprint, expected);
        return LCMC_EAUTH;
    }

    int typemask =
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | known_host_key_bits(type);
    struct libssh2_knownhost *entry = NULL;
    if (libssh2_knownhost_checkp(revoked, s->host, s->port, key, key_length, typemask, &entry) ==
        LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        lcmc__error_set(err, LCMC_EAUTH,
                        "host key of %s (%s %s) is marked @revoked in %s; refusing to connect",
                        s->label, type_name, s->fingerprint, known_path);
        return LCMC_EAUTH;
    }
    entry = NULL;
    int check =
        libssh2_knownhost_checkp(known, s->host, s->port, key, key_length, typemask, &entry);
    switch (check) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        lcmc__log_as(s->engine, LCMC_LOG_DEBUG, LCMC_EVENT_SSH,
                     "ssh %s: host key %s %s found in %s", s->label, type_name, s->fingerprint,
                     known_path);
        return LCMC_OK;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH: {
        char listed[LCMC_SSH_FINGERPRINT_SIZE];
        fingerprint_of_base64_key(entry != NULL ? entry->key : NULL, listed);
        lcmc__error_set(err, LCMC_EAUTH,
                        "host key mismatch for %s: the server presented %s %s but %s lists %s; "
                        "refusing to connect (the VNFC may have a new key, or the connection "
                        "is intercepted)",
                        s->label, type_name, s->fingerprint, known_path, listed);
        return LCMC_EAUTH;
    }
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        if (o->accept_unknown_host_key) {
            lcmc__log_as(s->engine, LCMC_LOG_WARN, LCMC_EVENT_SSH,
                         "ssh %s: accepting the unknown host key %s %s (not in %s) because "
                         "accept_unknown_host_key is set",
                         s->label, type_name, s->fingerprint, known_path);
            return LCMC_OK;
        }
        lcmc__error_set(err, LCMC_EAUTH,
                        "unknown host key for %s: %s %s is not in %s; add it there, pin it "
                        "with host_key_sha256, or set accept_unknown_host_key",
                        s->label, type_name, s->fingerprint, known_path);
        return LCMC_EAUTH;
    default:
        lcmc__error_set(err, LCMC_EAUTH, "cannot check the host key of %s against %s: %s", s->label,
                        known_path, ssh_last_error(s));
        return LCMC_EAUTH;
    }
}

/* Answers every hidden prompt with the password: servers that take passwords through PAM
 * often offer "keyboard-interactive" only. The answer goes through libssh2's allocator,
 * which frees (and wipes) it. */
static void answer_prompts(const char *name, int name_length, const char *instruction,
                           int instruction_length, int count,
                           const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
                           LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses, void **abstract)
{
    (void)name;
    (void)name_length;
    (void)instruction;
    (void)instruction_length;
    const lcmc_ssh_session *s = *abstract;
    for (int i = 0; i < count; i++) {
        responses[i].text = NULL;
        responses[i].length = 0;
        /* Only prompts that do not echo ask for a secret. */
        if (prompts[i].echo || s->password == NULL)
            continue;
        size_t length = strlen(s->password);
        char *copy = wiped_alloc(length + 1, NULL);
        if (copy == NULL)
            continue;
        memcpy(copy, s->password, length + 1);
        responses[i].text = copy;
        responses[i].length = (unsigned int)length;
    }
}

static int offers(const char *methods, const char *method)
{
    size_t length = strlen(method);
    for (const char *p = methods; p != NULL && *p != '\0';) {
        size_t item = strcspn(p, ",");
        if (item == length && strncmp(p, method, length) == 0)
            return 1;
        p += item;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* One authentication call in non-blocking mode; `method` picks which. Returns libssh2's
 * final code, or 1 with *status set when the wait failed. */
enum auth_method { AUTH_KEY, AUTH_PASSWORD, AUTH_KBDINT };

static int try_auth(lcmc_ssh_session *s, const lcmc_ssh_options *o, enum auth_method method,
                    double deadline, lcmc_status *status)
{
    unsigned int user_length = (unsigned int)strlen(s->user);
    for (;;) {
        int rc;
        if (method == AUTH_KEY)
            rc = libssh2_userauth_publickey_fromfile_ex(s->ssh, s->user, user_length, NULL,
                                                        o->key_file, o->key_password);
        else if (method == AUTH_PASSWORD)
            rc = libssh2_userauth_password_ex(s->ssh, s->user, user_length, o->password,
                                              (unsigned int)strlen(o->password), NULL);
        else
            rc = libssh2_userauth_keyboard_interactive_ex(s->ssh, s->user, user_length,
                                                          answer_prompts);
        if (rc != LIBSSH2_ERROR_EAGAIN)
            return rc;
        *status = wait_session(s, deadline);
        if (*status != LCMC_OK)
            return 1;
    }
}

static lcmc_status authenticate(lcmc_ssh_session *s, const lcmc_ssh_options *o, double deadline,
                                double budget, lcmc_error *err)
{
    lcmc_status status = LCMC_OK;
    const char *list;
    for (;;) {
        list = libssh2_userauth_list(s->ssh, s->user, (unsigned int)strlen(s->user));
        if (list != NULL)
            break;
        if (libssh2_userauth_authenticated(s->ssh))
            return LCMC_OK; /* the server accepted "none" */
        if (libssh2_session_last_errno(s->ssh) != LIBSSH2_ERROR_EAGAIN) {
            lcmc__error_set(err, LCMC_ETRANSPORT,
                            "SSH server %s did not list its authentication methods: %s", s->label,
                            ssh_last_error(s));
            return LCMC_ETRANSPORT;
        }
        if ((status = wait_session(s, deadline)) != LCMC_OK)
            return wait_failure(s, status, "authenticating", budget, err);
    }
    /* The list lives in libssh2's session until the next call. */
    char *methods = lcmc__strdup(list);
    if (methods == NULL) {
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        return LCMC_ENOMEM;
    }
    const char *refused = NULL;
    int rc = LIBSSH2_ERROR_AUTHENTICATION_FAILED;
    if (o->key_file != NULL && offers(methods, "publickey")) {
        rc = try_auth(s, o, AUTH_KEY, deadline, &status);
        if (rc == 1)
            goto wait_failed;
        if (rc == LIBSSH2_ERROR_FILE) {
            lcmc__error_set(err, LCMC_EAUTH,
                            "cannot use the private key %s for %s: wrong passphrase, or a "
                            "format libssh2 cannot read",
                            o->key_file, s->label);
            status = LCMC_EAUTH;
            goto done;
        }
        if (rc == 0)
            goto done;
        refused = "the key";
    }
    if (o->password != NULL &&
        (offers(methods, "password") || offers(methods, "keyboard-interactive"))) {
        enum auth_method method = offers(methods, "password") ? AUTH_PASSWORD : AUTH_KBDINT;
        rc = try_auth(s, o, method, deadline, &status);
        if (rc == 1)
            goto wait_failed;
        if (rc == 0)
            goto done;
        if (rc == LIBSSH2_ERROR_PASSWORD_EXPIRED) {
            lcmc__error_set(err, LCMC_EAUTH, "the password of %s has expired", s->label);
            status = LCMC_EAUTH;
            goto done;
        }
        refused = refused != NULL ? "the key and the password" : "the password";
    }
    if (rc == 0)
        goto done;
    if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED && rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
        lcmc__error_set(err, LCMC_ETRANSPORT, "SSH authentication with %s failed: %s", s->label,
                        ssh_last_error(s));
        status = LCMC_ETRANSPORT;
    } else if (refused != NULL) {
        lcmc__error_set(err, LCMC_EAUTH, "SSH server %s refused %s", s->label, refused);
        status = LCMC_EAUTH;
    } else {
        lcmc__error_set(err, LCMC_EAUTH,
                        "SSH server %s accepts none of the configured authentication methods "
                        "(it offers: %s)",
                        s->label, methods);
        status = LCMC_EAUTH;
    }
    goto done;
wait_failed:
    wait_failure(s, status, "authenticating", budget, err);
done:
    free(methods);
    return status;
}

static int valid_host(const char *host)
{
    if (host == NULL || *host == '\0' || strlen(host) > 255 || *host == '-')
        return 0;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("/?#@[]\\", *p) != NULL)
            return 0;
    return 1;
}

static int valid_user(const char *user)
{
    if (user == NULL || *user == '\0' || strlen(user) > 255)
        return 0;
    for (const unsigned char *p = (const unsigned char *)user; *p; p++)
        if (*p < ' ' || *p == 0x7f)
            return 0;
    return 1;
}

static lcmc_status check_options(const lcmc_ssh_options *o, unsigned char *pin, lcmc_error *err)
{
    if (o->version != LCMC_SSH_OPTIONS_VERSION) {
        lcmc__error_set(err, LCMC_EUSAGE, "ssh options: unsupported version %u", o->version);
        return LCMC_EUSAGE;
    }
    const char *why = NULL;
    if (!valid_host(o->host))
        why = "host: a host name or address is required";
    else if (o->port < 0 || o->port > 65535)
        why = "port: must be between 1 and 65535";
    else if (!valid_user(o->user))
        why = "user: a user name is required";
    else if (o->password == NULL && o->key_file == NULL)
        why = "a password or a key file is required";
    else if (o->known_hosts != NULL && o->host_key_sha256 != NULL)
        why = "known_hosts and host_key_sha256 exclude each other";
    else if (o->host_key_sha256 != NULL && lcmc__ssh_parse_sha256(o->host_key_sha256, pin) != 0)
        why = "host_key_sha256: not a SHA-256 fingerprint (expected SHA256: and 43 base64 "
              "characters, as ssh-keygen -l prints)";
    else if (!isfinite(o->timeout) || o->timeout < 0)
        why = "timeout: must be a positive number of seconds";
    if (why != NULL) {
        lcmc__error_set(err, LCMC_EUSAGE, "ssh options: %s", why);
        return LCMC_EUSAGE;
    }
    if (o->key_file != NULL && access(o->key_file, R_OK) != 0) {
        lcmc__error_set(err, LCMC_EUSAGE, "cannot read the private key file %s: %s", o->key_file,
                        strerror(errno));
        return LCMC_EUSAGE;
    }
    return LCMC_OK;
}

/* Everything lcmc_ssh_connect does after the session struct exists; fills err on failure. */
static lcmc_status connect_session(lcmc_ssh_session *s, const lcmc_ssh_options *o, lcmc_error *err)
{
    lcmc_status status;
    unsigned char pin_digest[LCMC_SSH_SHA256_LENGTH];
    const unsigned char *pin = NULL;
    if ((status = check_options(o, pin_digest, err)) != LCMC_OK)
        return status;
    if (o->host_key_sha256 != NULL)
        pin = pin_digest;
    double budget = o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
    double deadline = lcmc__now() + budget;
    if (lcmc_engine_interrupted(s->engine))
        return wait_failure(s, LCMC_ECANCELLED, "connecting", budget, err);

    pthread_once(&ssh_init_once, ssh_global_init);
    if (ssh_init_result != 0) {
        lcmc__error_set(err, LCMC_ENOMEM, "cannot initialise libssh2");
        return LCMC_ENOMEM;
    }
    s->ssh = libssh2_session_init_ex(wiped_alloc, wiped_free, wiped_realloc, s);
    if (s->ssh == NULL) {
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        return LCMC_ENOMEM;
    }
    libssh2_session_set_blocking(s->ssh, 0);

    /* The host keys are read before connecting: a missing file is a mistake to report
     * without touching the network. */
    LIBSSH2_KNOWNHOSTS *known = NULL, *revoked = NULL;
    char *known_path = NULL;
    if (pin == NULL) {
        int is_default = o->known_hosts == NULL;
        const char *home = getenv("HOME");
        known_path = is_default ? lcmc__asprintf("%s/.ssh/known_hosts", home ? home : "")
                                : lcmc__strdup(o->known_hosts);
        known = libssh2_knownhost_init(s->ssh);
        revoked = libssh2_knownhost_init(s->ssh);
        if (known_path == NULL || known == NULL || revoked == NULL) {
            lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
            status = LCMC_ENOMEM;
            goto done;
        }
        if (!is_default || (home != NULL && *home != '\0'))
            status = load_known_hosts(s, known_path, is_default, known, revoked, err);
        if (status != LCMC_OK)
            goto done;
    }

    lcmc__log_as(s->engine, LCMC_LOG_INFO, LCMC_EVENT_SSH, "ssh: connecting to %s", s->label);
    if ((status = tcp_connect(s, deadline, budget, err)) != LCMC_OK)
        goto done;
    int rc;
    while ((rc = libssh2_session_handshake(s->ssh, s->fd)) == LIBSSH2_ERROR_EAGAIN) {
        if ((status = wait_session(s, deadline)) != LCMC_OK) {
            wait_failure(s, status, "in the SSH handshake", budget, err);
            goto done;
        }
    }
    if (rc != 0) {
        lcmc__error_set(err, LCMC_ETRANSPORT, "SSH handshake with %s failed: %s", s->label,
                        ssh_last_error(s));
        status = LCMC_ETRANSPORT;
        goto done;
    }
    s->handshaken = 1;
    status = verify_host_key(s, o, pin, known, revoked, known_path, err);
    if (status != LCMC_OK)
        goto done;
    s->password = o->password;
    status = authenticate(s, o, deadline, budget, err);
    s->password = NULL;
    if (status == LCMC_OK)
        lcmc__log_as(s->engine, LCMC_LOG_INFO, LCMC_EVENT_SSH, "ssh: connected to %s (host key %s)",
                     s->label, s->fingerprint);
done:
    if (known != NULL)
        libssh2_knownhost_free(known);
    if (revoked != NULL)
        libssh2_knownhost_free(revoked);
    free(known_path);
    return status;
}

lcmc_status lcmc_ssh_connect(lcmc_engine *engine, const lcmc_ssh_options *options,
                             lcmc_ssh_session **out)
{
    if (out == NULL)
        return LCMC_EUSAGE;
    *out = NULL;
    if (engine == NULL)
        return LCMC_EUSAGE;
    if (options == NULL) {
        lcmc__engine_set_last_error(engine, LCMC_EUSAGE, "ssh options: none given");
        return LCMC_EUSAGE;
    }
    lcmc_ssh_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        lcmc__engine_set_last_error(engine, LCMC_ENOMEM, "out of memory");
        return LCMC_ENOMEM;
    }
    s->engine = engine;
    s->fd = -1;
    s->port = options->port > 0 ? options->port : 22;
    s->timeout = options->timeout > 0 ? options->timeout : DEFAULT_TIMEOUT;
    s->max_output = options->max_output > 0 ? options->max_output : DEFAULT_MAX_OUTPUT;
    s->host = lcmc__strdup(options->host != NULL ? options->host : "");
    s->user = lcmc__strdup(options->user != NULL ? options->user : "");
    if (s->host != NULL && s->user != NULL) {
        int bracket = strchr(s->host, ':') != NULL;
        s->label = lcmc__asprintf("%s@%s%s%s:%d", s->user, bracket ? "[" : "", s->host,
                                  bracket ? "]" : "", s->port);
    }
    lcmc_error err = {0};
    lcmc_status status;
    if (s->label == NULL) {
        lcmc__error_set(&err, LCMC_ENOMEM, "out of memory");
        status = LCMC_ENOMEM;
    } else {
        status = connect_session(s, options, &err);
    }
    if (status != LCMC_OK) {
        lcmc__log_as(engine, LCMC_LOG_DEBUG, LCMC_EVENT_SSH, "ssh: %s",
                     err.message ? err.message : "failed");
        lcmc__engine_take_error(engine, &err);
        lcmc_ssh_session_free(s);
        return status;
    }
    *out = s;
    return LCMC_OK;
}

static void exec_closed_under(lcmc_ssh_exec_handle *h);

void lcmc_ssh_session_free(lcmc_ssh_session *s)
{
    if (s == NULL)
        return;
    if (s->running != NULL)
        exec_closed_under(s->running);
    if (s->ssh != NULL) {
        if (s->handshaken && !s->unusable && !lcmc_engine_interrupted(s->engine)) {
            double deadline = lcmc__now() + GOODBYE_GRACE;
            while (libssh2_session_disconnect_ex(s->ssh, SSH_DISCONNECT_BY_APPLICATION,
                                                 "closed by lcmcoord",
                                                 "") == LIBSSH2_ERROR_EAGAIN) {
                if (wait_session(s, deadline) != LCMC_OK)
                    break;
            }
        }
        /* With the socket shut, whatever libssh2 still wants to send or read fails at once
         * instead of asking to be called again: freeing cannot block or leak. */
        if (s->fd >= 0)
            shutdown(s->fd, SHUT_RDWR);
        for (int tries = 0; tries < 100; tries++)
            if (libssh2_session_free(s->ssh) != LIBSSH2_ERROR_EAGAIN)
                break;
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s->host);
    free(s->user);
    free(s->label);
    free(s);
}

const char *lcmc_ssh_session_label(const lcmc_ssh_session *s)
{
    return s != NULL ? s->label : NULL;
}

const char *lcmc_ssh_session_host_key_sha256(const lcmc_ssh_session *s)
{
    return s != NULL ? s->fingerprint : NULL;
}

/* ---- commands ------------------------------------------------------------------------ */

/* Reads both streams until the server's EOF. Output over the cap is read and dropped, so
 * that the command is never stalled by a full window. */
static lcmc_status read_output(lcmc_ssh_session *s, LIBSSH2_CHANNEL *channel, double deadline,
                               double budget, lcmc_ssh_result *r, lcmc_error *err)
{
    char chunk[16384];
    for (;;) {
        int progressed = 0;
        for (int stream = 0; stream < 2; stream++) {
            ssize_t n = libssh2_channel_read_ex(channel, stream == 0 ? 0 : SSH_EXTENDED_DATA_STDERR,
                                                chunk, sizeof chunk);
            if (n > 0) {
                progressed = 1;
                int rc = stream == 0
                             ? lcmc__ssh_capture(&r->out, &r->out_truncated, chunk, (size_t)n)
                             : lcmc__ssh_capture(&r->err, &r->err_truncated, chunk, (size_t)n);
                if (rc != 0) {
                    lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
                    return LCMC_ENOMEM;
                }
            } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
                lcmc__error_set(err, LCMC_ETRANSPORT,
                                "SSH connection to %s lost while reading the output: %s", s->label,
                                ssh_last_error(s));
                return LCMC_ETRANSPORT;
            }
        }
        /* A command that writes without pause never lets the socket wait below run: its
         * deadline and interrupts are checked here too. */
        if (lcmc_engine_interrupted(s->engine) || lcmc__now() >= deadline)
            return wait_failure(
                s, lcmc_engine_interrupted(s->engine) ? LCMC_ECANCELLED : LCMC_EDEADLINE,
                "running the command", budget, err);
        if (progressed)
            continue;
        if (libssh2_channel_eof(channel))
            return LCMC_OK;
        lcmc_status status = wait_session(s, deadline);
        if (status != LCMC_OK)
            return wait_failure(s, status, "running the command", budget, err);
    }
}

/* Repeats a channel call while libssh2 asks to, waiting in between. */
#define CHANNEL_STEP(call, doing)                                                                  \
    do {                                                                                           \
        while ((rc = (call)) == LIBSSH2_ERROR_EAGAIN) {                                            \
            if ((status = wait_session(s, deadline)) != LCMC_OK)                                   \
                return wait_failure(s, status, doing, budget, err);                                \
        }                                                                                          \
    } while (0)

static lcmc_status run_command(lcmc_ssh_session *s, const char *command, double deadline,
                               double budget, lcmc_ssh_result *r, lcmc_error *err)
{
    lcmc_status status;
    int rc;
    LIBSSH2_CHANNEL *channel;
    while ((channel = libssh2_channel_open_session(s->ssh)) == NULL) {
        if (libssh2_session_last_errno(s->ssh) != LIBSSH2_ERROR_EAGAIN) {
            lcmc__error_set(err, LCMC_ETRANSPORT, "cannot open an SSH channel to %s: %s", s->label,
                            ssh_last_error(s));
            return LCMC_ETRANSPORT;
        }
        if ((status = wait_session(s, deadline)) != LCMC_OK)
            return wait_failure(s, status, "opening a channel", budget, err);
    }
    /* From here a failure leaves the channel to libssh2_session_free. */
    CHANNEL_STEP(libssh2_channel_exec(channel, command), "starting the command");
    if (rc != 0) {
        lcmc__error_set(err, LCMC_ETRANSPORT, "SSH server %s refused to run the command: %s",
                        s->label, ssh_last_error(s));
        return LCMC_ETRANSPORT;
    }
    if ((status = read_output(s, channel, deadline, budget, r, err)) != LCMC_OK)
        return status;
    /* The exit status arrives before the server closes the channel. */
    CHANNEL_STEP(libssh2_channel_close(channel), "closing the channel");
    CHANNEL_STEP(libssh2_channel_wait_closed(channel), "closing the channel");
    char *signal_name = NULL;
    size_t signal_length = 0;
    libssh2_channel_get_exit_signal(channel, &signal_name, &signal_length, NULL, NULL, NULL, NULL);
    if (signal_name != NULL && signal_length > 0) {
        r->exit_signal = malloc(signal_length + 1);
        if (r->exit_signal != NULL) {
            memcpy(r->exit_signal, signal_name, signal_length);
            r->exit_signal[signal_length] = '\0';
        }
        r->exit_status = -1;
    } else {
        r->exit_status = libssh2_channel_get_exit_status(channel);
    }
    if (signal_name != NULL)
        libssh2_free(s->ssh, signal_name);
    CHANNEL_STEP(libssh2_channel_free(channel), "closing the channel");
    return LCMC_OK;
}

/* The result of a command about to run, or NULL when memory ran out. */
static lcmc_ssh_result *result_new(const lcmc_ssh_session *s)
{
    lcmc_ssh_result *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->exit_status = -1;
    r->out.cap = r->err.cap = s->max_output;
    return r;
}

/* Whether the command may start: LCMC_OK (logged), or the failure set in r->error. */
static lcmc_status exec_may_start(lcmc_ssh_session *s, const char *command, double budget,
                                  lcmc_ssh_result *r)
{
    if (s->unusable) {
        lcmc__error_set(&r->error, LCMC_ETRANSPORT,
                        "the SSH session to %s is unusable after an earlier failure; connect "
                        "again",
                        s->label);
        return LCMC_ETRANSPORT;
    }
    if (s->running != NULL) {
        lcmc__error_set(&r->error, LCMC_EUSAGE,
                        "the SSH session to %s is running another command; wait for it or "
                        "connect again",
                        s->label);
        return LCMC_EUSAGE;
    }
    if (lcmc_engine_interrupted(s->engine))
        return wait_failure(s, LCMC_ECANCELLED, "starting the command", budget, &r->error);
    if (lcmc__log_enabled(s->engine, LCMC_LOG_DEBUG)) {
        char *shown = lcmc__one_line(command, strlen(command), 200);
        lcmc__log_as(s->engine, LCMC_LOG_DEBUG, LCMC_EVENT_SSH, "ssh %s: running: %s", s->label,
                     shown ? shown : "");
        free(shown);
    }
    return LCMC_OK;
}

/* Records how the command ended, and logs it. */
static void exec_ended(lcmc_ssh_session *s, lcmc_ssh_result *r, lcmc_status status, double start)
{
    r->status = status;
    r->elapsed = lcmc__now() - start;
    if (status == LCMC_OK) {
        lcmc__log_as(s->engine, LCMC_LOG_INFO, LCMC_EVENT_SSH, "ssh %s: command %s %d after %.3f s",
                     s->label, r->exit_signal ? "killed by signal" : "exited",
                     r->exit_signal ? -1 : r->exit_status, r->elapsed);
        if (r->out_truncated || r->err_truncated)
            lcmc__log_as(s->engine, LCMC_LOG_INFO, LCMC_EVENT_SSH,
                         "ssh %s: output over %zu bytes dropped (%s%s%s)", s->label, s->max_output,
                         r->out_truncated ? "stdout" : "",
                         r->out_truncated && r->err_truncated ? ", " : "",
                         r->err_truncated ? "stderr" : "");
    } else {
        lcmc__log_as(s->engine, LCMC_LOG_INFO, LCMC_EVENT_SSH, "ssh %s: %s", s->label,
                     r->error.message ? r->error.message : lcmc_strerror(status));
    }
}

lcmc_status lcmc_ssh_exec(lcmc_ssh_session *s, const char *command, double timeout,
                          lcmc_ssh_result **out)
{
    if (out == NULL)
        return LCMC_EUSAGE;
    *out = NULL;
    if (s == NULL || command == NULL || isnan(timeout))
        return LCMC_EUSAGE;
    lcmc_ssh_result *r = result_new(s);
    if (r == NULL)
        return LCMC_ENOMEM;
    *out = r;
    double budget = timeout > 0 ? timeout : s->timeout;
    double start = lcmc__now();
    lcmc_status status = exec_may_start(s, command, budget, r);
    if (status == LCMC_OK) {
        status = run_command(s, command, start + budget, budget, r, &r->error);
        /* Every failure there abandons a channel, or libssh2 halfway through a step. */
        if (status != LCMC_OK)
            s->unusable = 1;
    }
    exec_ended(s, r, status, start);
    return status;
}

/* ---- commands without a waiting caller ------------------------------------------------------
 * The steps of run_command as a state machine: each step is tried, and when libssh2 asks to
 * be called again the session's socket is watched (in the direction libssh2 names) with a
 * timer at the deadline; the loop calls back and the step is tried again. */

enum exec_step { STEP_OPEN, STEP_EXEC, STEP_READ, STEP_CLOSE, STEP_WAIT_CLOSED, STEP_FREE };

/* At most this many chunks are read in one turn, so that a command writing without pause
 * cannot hold the loop. */
#define READS_PER_TURN 64

struct lcmc_ssh_exec_handle {
    lcmc_op op; /* first: the engine's interrupt finds us through it */
    lcmc_engine *engine;
    lcmc_ssh_session *s; /* NULL once the session was freed under it */
    char *command;
    lcmc_ssh_result *r;
    double start, deadline, budget;
    LIBSSH2_CHANNEL *channel;
    enum exec_step step;
    lcmc_watch watch;
    lcmc_timer timer;
    lcmc_deferred deferred;
    lcmc_ssh_exec_done_fn *done;
    void *userdata;
};

static const char *step_doing(enum exec_step step)
{
    switch (step) {
    case STEP_OPEN:
        return "opening a channel";
    case STEP_EXEC:
        return "starting the command";
    case STEP_READ:
        return "running the command";
    default:
        return "closing the channel";
    }
}

static void exec_deliver(lcmc_deferred *d)
{
    lcmc_ssh_exec_handle *h =
        (lcmc_ssh_exec_handle *)((char *)d - offsetof(lcmc_ssh_exec_handle, deferred));
    lcmc_ssh_exec_done_fn *done = h->done;
    void *userdata = h->userdata;
    lcmc_ssh_result *r = h->r;
    free(h->command);
    free(h);
    done(userdata, r->status, r);
}

/* Stops waiting and detaches the command from its session. */
static void exec_detach(lcmc_ssh_exec_handle *h)
{
    lcmc__watch_remove(h->engine, &h->watch);
    lcmc__timer_disarm(h->engine, &h->timer);
    lcmc__op_unregister(h->engine, &h->op);
    if (h->s != NULL && h->s->running == h)
        h->s->running = NULL;
}

/* The command ended (status LCMC_OK) or failed (the detail already in h->r->error). */
static void exec_finish(lcmc_ssh_exec_handle *h, lcmc_status status)
{
    exec_detach(h);
    if (h->s != NULL) {
        /* Every failure abandons a channel, or libssh2 halfway through a step. */
        if (status != LCMC_OK)
            h->s->unusable = 1;
        exec_ended(h->s, h->r, status, h->start);
    } else {
        h->r->status = status;
        h->r->elapsed = lcmc__now() - h->start;
    }
    lcmc__defer(h->engine, &h->deferred, exec_deliver);
}

static void exec_fail_wait(lcmc_ssh_exec_handle *h, lcmc_status status)
{
    exec_finish(h, wait_failure(h->s, status, step_doing(h->step), h->budget, &h->r->error));
}

static void exec_closed_under(lcmc_ssh_exec_handle *h)
{
    lcmc__error_set(&h->r->error, LCMC_ETRANSPORT, "the SSH session to %s was closed while %s",
                    h->s->label, step_doing(h->step));
    lcmc_ssh_session *s = h->s;
    exec_detach(h);
    /* Its channel goes with the session. */
    h->s = NULL;
    s->unusable = 1;
    h->r->status = LCMC_ETRANSPORT;
    h->r->elapsed = lcmc__now() - h->start;
    lcmc__log_as(s->engine, LCMC_LOG_INFO, LCMC_EVENT_SSH, "ssh %s: %s", s->label,
                 h->r->error.message ? h->r->error.message : "closed");
    lcmc__defer(h->engine, &h->deferred, exec_deliver);
}

static void exec_advance(lcmc_ssh_exec_handle *h);

static void exec_ready(lcmc_watch *watch, short revents)
{
    (void)revents;
    lcmc_ssh_exec_handle *h = watch->owner;
    lcmc__watch_remove(h->engine, &h->watch);
    lcmc__timer_disarm(h->engine, &h->timer);
    exec_advance(h);
}

static void exec_timer(lcmc_timer *timer)
{
    lcmc_ssh_exec_handle *h = timer->owner;
    lcmc__watch_remove(h->engine, &h->watch);
    if (lcmc__now() >= h->deadline) {
        exec_fail_wait(h, LCMC_EDEADLINE);
        return;
    }
    exec_advance(h); /* an undirected wait, or the next share of a long read */
}

static void exec_interrupted(lcmc_op *op)
{
    exec_fail_wait((lcmc_ssh_exec_handle *)op, LCMC_ECANCELLED);
}

/* Waits for the socket in the direction libssh2 last blocked on (0 s: just the next turn). */
static void exec_wait(lcmc_ssh_exec_handle *h, int next_turn)
{
    int directions = libssh2_session_block_directions(h->s->ssh);
    short events = 0;
    if (directions & LIBSSH2_SESSION_BLOCK_INBOUND)
        events |= CURL_WAIT_POLLIN;
    if (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        events |= CURL_WAIT_POLLOUT;
    double until = h->deadline;
    if (next_turn)
        until = lcmc__now();
    else if (events == 0)
        until = lcmc__now() + UNDIRECTED_WAIT;
    if (until > h->deadline)
        until = h->deadline;
    if (!next_turn && events != 0) {
        lcmc__watch_init(&h->watch, h->s->fd, events, exec_ready, h);
        if (lcmc__watch_add(h->engine, &h->watch) != 0) {
            lcmc__error_set(&h->r->error, LCMC_ENOMEM, "out of memory");
            exec_finish(h, LCMC_ENOMEM);
            return;
        }
    }
    if (lcmc__timer_arm(h->engine, &h->timer, until) != 0) {
        lcmc__error_set(&h->r->error, LCMC_ENOMEM, "out of memory");
        exec_finish(h, LCMC_ENOMEM);
    }
}

/* Reads what is there: 1 when the server's EOF came, 0 to wait, -1 when it failed (ended),
 * 2 when the turn's share was read and more may be waiting. */
static int exec_read(lcmc_ssh_exec_handle *h)
{
    char chunk[16384];
    lcmc_ssh_result *r = h->r;
    for (int turn = 0; turn < READS_PER_TURN; turn++) {
        int progressed = 0;
        for (int stream = 0; stream < 2; stream++) {
            ssize_t n = libssh2_channel_read_ex(
                h->channel, stream == 0 ? 0 : SSH_EXTENDED_DATA_STDERR, chunk, sizeof chunk);
            if (n > 0) {
                progressed = 1;
                int rc = stream == 0
                             ? lcmc__ssh_capture(&r->out, &r->out_truncated, chunk, (size_t)n)
                             : lcmc__ssh_capture(&r->err, &r->err_truncated, chunk, (size_t)n);
                if (rc != 0) {
                    lcmc__error_set(&r->error, LCMC_ENOMEM, "out of memory");
                    exec_finish(h, LCMC_ENOMEM);
                    return -1;
                }
            } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
                lcmc__error_set(&r->error, LCMC_ETRANSPORT,
                                "SSH connection to %s lost while reading the output: %s",
                                h->s->label, ssh_last_error(h->s));
                exec_finish(h, LCMC_ETRANSPORT);
                return -1;
            }
        }
        if (lcmc__now() >= h->deadline) {
            exec_fail_wait(h, LCMC_EDEADLINE);
            return -1;
        }
        if (!progressed)
            return libssh2_channel_eof(h->channel) ? 1 : 0;
    }
    return 2;
}

static void exec_advance(lcmc_ssh_exec_handle *h)
{
    lcmc_ssh_session *s = h->s;
    int rc;
    for (;;) {
        switch (h->step) {
        case STEP_OPEN:
            h->channel = libssh2_channel_open_session(s->ssh);
            if (h->channel == NULL) {
                if (libssh2_session_last_errno(s->ssh) == LIBSSH2_ERROR_EAGAIN) {
                    exec_wait(h, 0);
                    return;
                }
                lcmc__error_set(&h->r->error, LCMC_ETRANSPORT,
                                "cannot open an SSH channel to %s: %s", s->label,
                                ssh_last_error(s));
                exec_finish(h, LCMC_ETRANSPORT);
                return;
            }
            h->step = STEP_EXEC;
            break;
        case STEP_EXEC:
            /* From here a failure leaves the channel to libssh2_session_free. */
            if ((rc = libssh2_channel_exec(h->channel, h->command)) == LIBSSH2_ERROR_EAGAIN) {
                exec_wait(h, 0);
                return;
            }
            if (rc != 0) {
                lcmc__error_set(&h->r->error, LCMC_ETRANSPORT,
                                "SSH server %s refused to run the command: %s", s->label,
                                ssh_last_error(s));
                exec_finish(h, LCMC_ETRANSPORT);
                return;
            }
            h->step = STEP_READ;
            break;
        case STEP_READ:
            rc = exec_read(h);
            if (rc < 0)
                return;
            if (rc == 0 || rc == 2) {
                exec_wait(h, rc == 2);
                return;
            }
            h->step = STEP_CLOSE;
            break;
        case STEP_CLOSE:
            /* The exit status arrives before the server closes the channel. */
            if (libssh2_channel_close(h->channel) == LIBSSH2_ERROR_EAGAIN) {
                exec_wait(h, 0);
                return;
            }
            h->step = STEP_WAIT_CLOSED;
            break;
        case STEP_WAIT_CLOSED: {
            if (libssh2_channel_wait_closed(h->channel) == LIBSSH2_ERROR_EAGAIN) {
                exec_wait(h, 0);
                return;
            }
            char *signal_name = NULL;
            size_t signal_length = 0;
            libssh2_channel_get_exit_signal(h->channel, &signal_name, &signal_length, NULL, NULL,
                                            NULL, NULL);
            if (signal_name != NULL && signal_length > 0) {
                h->r->exit_signal = malloc(signal_length + 1);
                if (h->r->exit_signal != NULL) {
                    memcpy(h->r->exit_signal, signal_name, signal_length);
                    h->r->exit_signal[signal_length] = '\0';
                }
                h->r->exit_status = -1;
            } else {
                h->r->exit_status = libssh2_channel_get_exit_status(h->channel);
            }
            if (signal_name != NULL)
                libssh2_free(s->ssh, signal_name);
            h->step = STEP_FREE;
            break;
        }
        case STEP_FREE:
            if (libssh2_channel_free(h->channel) == LIBSSH2_ERROR_EAGAIN) {
                exec_wait(h, 0);
                return;
            }
            h->channel = NULL;
            exec_finish(h, LCMC_OK);
            return;
        }
        if (lcmc_engine_interrupted(h->engine)) {
            exec_fail_wait(h, LCMC_ECANCELLED);
            return;
        }
    }
}

lcmc_status lcmc_ssh_exec_start(lcmc_ssh_session *s, const char *command, double timeout,
                                lcmc_ssh_exec_done_fn *done, void *userdata,
                                lcmc_ssh_exec_handle **out)
{
    if (out != NULL)
        *out = NULL;
    if (s == NULL || command == NULL || isnan(timeout) || done == NULL || out == NULL)
        return LCMC_EUSAGE;
    lcmc_ssh_exec_handle *h = calloc(1, sizeof *h);
    if (h == NULL)
        return LCMC_ENOMEM;
    h->r = result_new(s);
    h->command = lcmc__strdup(command);
    if (h->r == NULL || h->command == NULL) {
        lcmc_ssh_result_free(h->r);
        free(h->command);
        free(h);
        return LCMC_ENOMEM;
    }
    h->engine = s->engine;
    h->s = s;
    h->done = done;
    h->userdata = userdata;
    h->op.interrupt = exec_interrupted;
    h->budget = timeout > 0 ? timeout : s->timeout;
    h->start = lcmc__now();
    h->deadline = h->start + h->budget;
    h->step = STEP_OPEN;
    lcmc__timer_init(&h->timer, exec_timer, h);
    lcmc__watch_init(&h->watch, s->fd, 0, exec_ready, h);
    *out = h;
    lcmc_status status = exec_may_start(s, command, h->budget, h->r);
    if (status != LCMC_OK) {
        /* Said by the callback, from the loop, like every other outcome. */
        h->s = NULL;
        exec_ended(s, h->r, status, h->start);
        lcmc__defer(h->engine, &h->deferred, exec_deliver);
        return LCMC_OK;
    }
    s->running = h;
    lcmc__op_register(h->engine, &h->op);
    exec_advance(h);
    return LCMC_OK;
}

void lcmc_ssh_exec_cancel(lcmc_ssh_exec_handle *h)
{
    if (h == NULL)
        return;
    if (h->s != NULL && h->s->running == h)
        h->s->unusable = 1; /* its channel is abandoned halfway */
    exec_detach(h);
    lcmc__defer_cancel(h->engine, &h->deferred);
    lcmc_ssh_result_free(h->r);
    free(h->command);
    free(h);
}

void lcmc_ssh_result_free(lcmc_ssh_result *r)
{
    if (r == NULL)
        return;
    lcmc__error_clear(&r->error);
    free(r->exit_signal);
    lcmc__buffer_free(&r->out);
    lcmc__buffer_free(&r->err);
    free(r);
}

lcmc_status lcmc_ssh_result_status(const lcmc_ssh_result *r)
{
    return r != NULL ? r->status : LCMC_EUSAGE;
}

const lcmc_error *lcmc_ssh_result_error(const lcmc_ssh_result *r)
{
    return r != NULL && r->status != LCMC_OK ? &r->error : NULL;
}

int lcmc_ssh_result_exit_status(const lcmc_ssh_result *r)
{
    return r != NULL ? r->exit_status : -1;
}

const char *lcmc_ssh_result_exit_signal(const lcmc_ssh_result *r)
{
    return r != NULL ? r->exit_signal : NULL;
}

static const char *buffer_text(const lcmc_buffer *buf, size_t *length)
{
    if (length != NULL)
        *length = buf->data != NULL ? buf->length : 0;
    return buf->data != NULL ? buf->data : "";
}

const char *lcmc_ssh_result_stdout(const lcmc_ssh_result *r, size_t *length)
{
    static const lcmc_buffer empty;
    return buffer_text(r != NULL ? &r->out : &empty, length);
}

const char *lcmc_ssh_result_stderr(const lcmc_ssh_result *r, size_t *length)
{
    static const lcmc_buffer empty;
    return buffer_text(r != NULL ? &r->err : &empty, length);
}

int lcmc_ssh_result_stdout_truncated(const lcmc_ssh_result *r)
{
    return r != NULL && r->out_truncated;
}

int lcmc_ssh_result_stderr_truncated(const lcmc_ssh_result *r)
{
    return r != NULL && r->err_truncated;
}

double lcmc_ssh_result_elapsed(const lcmc_ssh_result *r)
{
    return r != NULL ? r->elapsed : 0;
}

/* ---- connecting without a waiting caller --------------------------------------------------
 * The handshake and authentication are long chains of libssh2 steps; rather than a second
 * copy of them as a state machine, lcmc_ssh_connect runs as it is on a worker thread with an
 * engine of its own, and the session moves to the caller's engine when it is made. The
 * worker's log events are kept and handed to the caller's engine then, in order, on its own
 * thread. Cancelling interrupts the worker's engine, which makes the connect return at once
 * (every step of it watches for that), and waits for the thread. */

typedef struct kept_event {
    lcmc_event_type type;
    lcmc_log_level level;
    char *message;
} kept_event;

struct lcmc_ssh_connect_handle {
    lcmc_op op; /* first: the engine's interrupt finds us through it */
    lcmc_engine *engine;
    lcmc_engine *worker;
    pthread_t thread;
    int thread_started;
    int held;                 /* counted in the engine's work from other threads */
    lcmc_ssh_options options; /* own copies of the strings */
    lcmc_status status;
    lcmc_ssh_session *session;
    kept_event *events;
    size_t event_count, event_allocated;
    lcmc_deferred deferred;
    lcmc_ssh_connect_done_fn *done;
    void *userdata;
};

static void keep_event(void *userdata, const lcmc_event *event)
{
    lcmc_ssh_connect_handle *h = userdata;
    if (h->event_count == h->event_allocated) {
        size_t grown = h->event_allocated ? h->event_allocated * 2 : 8;
        kept_event *bigger = realloc(h->events, grown * sizeof *bigger);
        if (bigger == NULL)
            return;
        h->events = bigger;
        h->event_allocated = grown;
    }
    char *message = lcmc__strdup(event->message);
    if (message == NULL)
        return;
    h->events[h->event_count++] = (kept_event){event->type, event->level, message};
}

static void connect_deliver(lcmc_deferred *d);

static void *connect_on_worker(void *arg)
{
    lcmc_ssh_connect_handle *h = arg;
    h->status = lcmc_ssh_connect(h->worker, &h->options, &h->session);
    /* Thread-safe: the rest happens on the caller's engine. */
    lcmc__defer(h->engine, &h->deferred, connect_deliver);
    return NULL;
}

static void free_option_strings(lcmc_ssh_options *o)
{
    free((char *)o->host);
    free((char *)o->user);
    lcmc__free_secret((char *)o->password);
    free((char *)o->key_file);
    lcmc__free_secret((char *)o->key_password);
    free((char *)o->known_hosts);
    free((char *)o->host_key_sha256);
    memset(o, 0, sizeof *o);
}

static int copy_option_string(const char **dst, const char *src)
{
    *dst = NULL;
    return src == NULL || (*dst = lcmc__strdup(src)) != NULL;
}

/* Ends the worker (it returns promptly once its engine is interrupted) and frees all but
 * the session. */
static void connect_handle_free(lcmc_ssh_connect_handle *h)
{
    if (h->thread_started)
        pthread_join(h->thread, NULL);
    if (h->held)
        lcmc__engine_hold(h->engine, -1);
    lcmc__op_unregister(h->engine, &h->op);
    lcmc__defer_cancel(h->engine, &h->deferred);
    for (size_t i = 0; i < h->event_count; i++)
        free(h->events[i].message);
    free(h->events);
    free_option_strings(&h->options);
    lcmc_engine_free(h->worker);
    free(h);
}

static void connect_deliver(lcmc_deferred *d)
{
    lcmc_ssh_connect_handle *h =
        (lcmc_ssh_connect_handle *)((char *)d - offsetof(lcmc_ssh_connect_handle, deferred));
    pthread_join(h->thread, NULL);
    h->thread_started = 0;
    for (size_t i = 0; i < h->event_count; i++) {
        lcmc_event event = lcmc__event_make(h->events[i].type, h->events[i].level, NULL);
        event.message = h->events[i].message;
        lcmc__event_deliver(h->engine, &event);
    }
    lcmc_ssh_session *s = h->session;
    lcmc_status status = h->status;
    if (s != NULL)
        s->engine = h->engine; /* the session is the caller's engine's from now on */
    else
        lcmc__engine_take_error(h->engine, (lcmc_error *)lcmc_engine_last_error(h->worker));
    lcmc_ssh_connect_done_fn *done = h->done;
    void *userdata = h->userdata;
    connect_handle_free(h);
    done(userdata, status, s);
}

static void connect_interrupted(lcmc_op *op)
{
    /* It then ends with LCMC_ECANCELLED, through the usual callback. */
    lcmc_engine_interrupt(((lcmc_ssh_connect_handle *)op)->worker);
}

lcmc_status lcmc_ssh_connect_start(lcmc_engine *engine, const lcmc_ssh_options *o,
                                   lcmc_ssh_connect_done_fn *done, void *userdata,
                                   lcmc_ssh_connect_handle **out)
{
    if (out != NULL)
        *out = NULL;
    if (engine == NULL || done == NULL || out == NULL)
        return LCMC_EUSAGE;
    if (o == NULL) {
        lcmc__engine_set_last_error(engine, LCMC_EUSAGE, "ssh options: none given");
        return LCMC_EUSAGE;
    }
    pthread_once(&ssh_init_once, ssh_global_init);
    lcmc_ssh_connect_handle *h = calloc(1, sizeof *h);
    if (h == NULL)
        return LCMC_ENOMEM;
    h->engine = engine;
    h->done = done;
    h->userdata = userdata;
    h->op.interrupt = connect_interrupted;
    h->options = *o;
    int copied = copy_option_string(&h->options.host, o->host) &&
                 copy_option_string(&h->options.user, o->user) &&
                 copy_option_string(&h->options.password, o->password) &&
                 copy_option_string(&h->options.key_file, o->key_file) &&
                 copy_option_string(&h->options.key_password, o->key_password) &&
                 copy_option_string(&h->options.known_hosts, o->known_hosts) &&
                 copy_option_string(&h->options.host_key_sha256, o->host_key_sha256);
    if (!copied || lcmc_engine_new(&h->worker) != LCMC_OK) {
        connect_handle_free(h);
        return LCMC_ENOMEM;
    }
    lcmc_log_level max = LCMC_LOG_ERROR;
    for (int level = LCMC_LOG_DEBUG; level >= LCMC_LOG_ERROR; level--)
        if (lcmc__log_enabled(engine, (lcmc_log_level)level)) {
            max = (lcmc_log_level)level;
            break;
        }
    lcmc_engine_set_events(h->worker, keep_event, h, max);
    if (lcmc_engine_interrupted(engine))
        lcmc_engine_interrupt(h->worker);
    else
        lcmc__op_register(engine, &h->op);
    if (pthread_create(&h->thread, NULL, connect_on_worker, h) != 0) {
        connect_handle_free(h);
        return LCMC_ENOMEM;
    }
    h->thread_started = 1;
    h->held = 1;
    lcmc__engine_hold(engine, +1);
    *out = h;
    return LCMC_OK;
}

void lcmc_ssh_connect_cancel(lcmc_ssh_connect_handle *h)
{
    if (h == NULL)
        return;
    lcmc_engine_interrupt(h->worker);
    if (h->thread_started) {
        pthread_join(h->thread, NULL);
        h->thread_started = 0;
    }
    lcmc_ssh_session_free(h->session); /* made after all: not wanted */
    connect_handle_free(h);
}
