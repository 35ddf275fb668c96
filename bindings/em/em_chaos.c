/*
 * The catalogue of `lcmcoord em --chaos`: every way the simulator can misbehave on purpose
 * to prove a client against a broken or hostile EM, by name. Three kinds share one
 * namespace: raw-socket misbehaviours (em_chaos_raw.c) for what libmicrohttpd cannot be
 * made to send, Lua scenarios built from scripts/em/chaos/ for wrong but well-formed
 * answers, and bad server certificates, which only need the ordinary EM and a check that
 * the certificate given is really as bad as the name says. docs/reliability.md lists every
 * name with what a client is expected to do about it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "em.h"

#define CATALOGUE_MAX 128

static const struct em_chaos cert_table[] = {
    {"tls-expired-cert", EM_CHAOS_CERT,
     "HTTPS with a certificate whose validity has ended (give it with --tls-cert/--tls-key)", NULL,
     false, true, NULL, 0},
    {"tls-wrong-host-cert", EM_CHAOS_CERT,
     "HTTPS with a certificate for another host name (give it with --tls-cert/--tls-key)", NULL,
     false, true, NULL, 0},
    {"tls-self-signed-cert", EM_CHAOS_CERT,
     "HTTPS with a self-signed certificate (give it with --tls-cert/--tls-key)", NULL, false, true,
     NULL, 0},
};

static struct em_chaos catalogue[CATALOGUE_MAX];
static size_t catalogue_n;
static pthread_once_t catalogue_once = PTHREAD_ONCE_INIT;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct em_chaos *)a)->name, ((const struct em_chaos *)b)->name);
}

static void add(const struct em_chaos *c)
{
    /* The table is sized with room to spare; running out is a build mistake worth a crash
     * in the tests rather than a silently missing entry. */
    if (catalogue_n == CATALOGUE_MAX)
        abort();
    catalogue[catalogue_n++] = *c;
}

static void build(void)
{
    for (size_t i = 0; i < em_chaos_raw_count; i++)
        add(&em_chaos_raw_table[i]);
    for (size_t i = 0; i < sizeof cert_table / sizeof cert_table[0]; i++)
        add(&cert_table[i]);
    for (size_t i = 0; i < em_chaos_script_count; i++) {
        const struct em_chaos_script *s = &em_chaos_scripts[i];
        struct em_chaos c = {s->name, EM_CHAOS_SCENARIO,       s->description, NULL, false,
                             false,   (const char *)s->source, s->len};
        add(&c);
    }
    qsort(catalogue, catalogue_n, sizeof catalogue[0], by_name);
}

size_t em_chaos_count(void)
{
    pthread_once(&catalogue_once, build);
    return catalogue_n;
}

const struct em_chaos *em_chaos_at(size_t i)
{
    return i < em_chaos_count() ? &catalogue[i] : NULL;
}

const struct em_chaos *em_chaos_find(const char *name)
{
    for (size_t i = 0; i < em_chaos_count(); i++)
        if (strcmp(catalogue[i].name, name) == 0)
            return &catalogue[i];
    return NULL;
}

void em_chaos_list(FILE *out)
{
    size_t width = 0;
    for (size_t i = 0; i < em_chaos_count(); i++)
        if (strlen(catalogue[i].name) > width)
            width = strlen(catalogue[i].name);
    for (size_t i = 0; i < em_chaos_count(); i++)
        fprintf(out, "%-*s  %s\n", (int)width, catalogue[i].name, catalogue[i].description);
}

int em_chaos_check_cert(const struct em_chaos *chaos, const char *cert_pem, char *err,
                        size_t errlen)
{
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) {
        snprintf(err, errlen, "cannot set up GnuTLS");
        return -1;
    }
    gnutls_datum_t pem = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    int rc = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM);
    const char *wrong = NULL;
    if (rc < 0) {
        snprintf(err, errlen, "--chaos %s: cannot read --tls-cert: %s", chaos->name,
                 gnutls_strerror(rc));
        gnutls_x509_crt_deinit(crt);
        return -1;
    }
    /* A good certificate here would make a "the client refused it" test pass for the
     * wrong reason, or fail confusingly: insist on the fault the name promises. */
    if (strcmp(chaos->name, "tls-expired-cert") == 0) {
        if (gnutls_x509_crt_get_expiration_time(crt) >= time(NULL))
            wrong = "has not expired";
    } else if (strcmp(chaos->name, "tls-wrong-host-cert") == 0) {
        if (gnutls_x509_crt_check_hostname(crt, "localhost") ||
            gnutls_x509_crt_check_hostname(crt, "127.0.0.1"))
            wrong = "is valid for localhost or 127.0.0.1";
    } else if (strcmp(chaos->name, "tls-self-signed-cert") == 0) {
        if (!gnutls_x509_crt_check_issuer(crt, crt))
            wrong = "is not self-signed";
    }
    gnutls_x509_crt_deinit(crt);
    if (wrong) {
        snprintf(err, errlen, "--chaos %s: the --tls-cert certificate %s", chaos->name, wrong);
        return -1;
    }
    return 0;
}
