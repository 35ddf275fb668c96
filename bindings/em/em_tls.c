/*
 * TLS for the EM simulator: loading the server certificate, key and client CA named on the
 * command line (checked with GnuTLS up front, so a bad file is a clear startup error rather
 * than a daemon that refuses to start), and inspecting a connection's TLS session for what
 * the protocol logic needs: the version, whether the client presented a certificate,
 * whether it chains to --client-ca and may be used by a TLS client, its subject CN and its
 * x5t#S256 thumbprint. libmicrohttpd only *requests* a client certificate, so the verdict
 * is ours to take here, per connection, and the caller answers 401 when it is negative.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/sha.h>

#include "em.h"

#define PEM_MAX (1024 * 1024)

static char *read_pem(const char *flag, const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s '%s': %s", flag, file, strerror(errno));
        return NULL;
    }
    char *buf = em_xmalloc(PEM_MAX + 1);
    size_t n = fread(buf, 1, PEM_MAX + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || n == 0 || n > PEM_MAX) {
        snprintf(err, errlen, "cannot read %s '%s': %s", flag, file,
                 failed ? "read error"
                 : n    ? "larger than 1 MiB"
                        : "empty file");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    free(s);
}

void em_tls_files_free(struct em_tls_files *f)
{
    free(f->cert);
    wipe_free(f->key); /* a private key */
    free(f->ca);
    memset(f, 0, sizeof *f);
}

int em_tls_load(const struct em_options *opt, struct em_tls_files *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!(out->cert = read_pem("--tls-cert", opt->tls_cert, err, errlen)) ||
        !(out->key = read_pem("--tls-key", opt->tls_key, err, errlen)) ||
        (opt->client_ca && !(out->ca = read_pem("--client-ca", opt->client_ca, err, errlen)))) {
        em_tls_files_free(out);
        return -1;
    }
    /* Try them on a throw-away credentials object: libmicrohttpd only says "failed". */
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        snprintf(err, errlen, "cannot set up GnuTLS credentials");
        em_tls_files_free(out);
        return -1;
    }
    gnutls_datum_t cert = {(unsigned char *)out->cert, (unsigned)strlen(out->cert)};
    gnutls_datum_t key = {(unsigned char *)out->key, (unsigned)strlen(out->key)};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        snprintf(err, errlen, "--tls-cert '%s' / --tls-key '%s': %s", opt->tls_cert, opt->tls_key,
                 gnutls_strerror(rc));
    } else if (out->ca) {
        gnutls_datum_t ca = {(unsigned char *)out->ca, (unsigned)strlen(out->ca)};
        int n = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (n <= 0) {
            rc = -1;
            snprintf(err, errlen, "--client-ca '%s': %s", opt->client_ca,
                     n < 0 ? gnutls_strerror(n) : "no certificate in the file");
        }
    }
    gnutls_certificate_free_credentials(cred);
    if (rc < 0) {
        em_tls_files_free(out);
        return -1;
    }
    return 0;
}

void em_x5t_s256(const unsigned char *der, size_t len, char out[EM_THUMBPRINT_LEN + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(der, len, digest);
    em_base64url(digest, sizeof digest, out);
}

static void subject_cn(const gnutls_datum_t *der, char *buf, size_t len)
{
    gnutls_x509_crt_t crt;
    buf[0] = '\0';
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    size_t size = len;
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0 ||
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) < 0)
        buf[0] = '\0';
    gnutls_x509_crt_deinit(crt);
}

void em_tls_inspect(void *session_ptr, struct em_peer *peer)
{
    gnutls_session_t session = session_ptr;
    memset(peer, 0, sizeof *peer);
    peer->inspected = true;
    const char *version = gnutls_protocol_get_name(gnutls_protocol_get_version(session));
    snprintf(peer->version, sizeof peer->version, "%s", version ? version : "unknown");

    unsigned count = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &count);
    if (!chain || count == 0) {
        snprintf(peer->problem, sizeof peer->problem, "no client certificate was presented");
        return;
    }
    peer->cert_present = true;
    em_x5t_s256(chain[0].data, chain[0].size, peer->thumbprint);
    subject_cn(&chain[0], peer->subject_cn, sizeof peer->subject_cn);

    /* The trust list is the one libmicrohttpd loaded from --client-ca; the key purpose
     * check refuses a certificate whose extended key usage excludes TLS clients. */
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID,
                                     (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers(session, &purpose, 1, &status);
    if (rc < 0) {
        snprintf(peer->problem, sizeof peer->problem,
                 "the client certificate cannot be checked: %s", gnutls_strerror(rc));
        return;
    }
    if (status != 0) {
        gnutls_datum_t text = {NULL, 0};
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0 &&
            text.data) {
            snprintf(peer->problem, sizeof peer->problem, "the client certificate is refused: %s",
                     (const char *)text.data);
            gnutls_free(text.data);
            size_t n = strlen(peer->problem);
            while (n && peer->problem[n - 1] == ' ')
                peer->problem[--n] = '\0';
        } else {
            snprintf(peer->problem, sizeof peer->problem, "the client certificate is refused");
        }
        return;
    }
    peer->cert_verified = true;
}
