/*
 * Fuzz target: the Authorization header `lcmcoord serve` is sent (serve_auth_check), with HTTP
 * Basic against a users file and Bearer JWTs against a JWKS loaded once: scheme splitting,
 * base64 of Basic credentials, b64token syntax, the JWT's three segments, its header JSON, key
 * selection and the claims. Checked with and without a client certificate thumbprint. The
 * users file holds a bcrypt hash of the cheapest cost so a well-formed Basic input stays fast.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "serve_auth.h"

/* A P-256 public key (its private half was thrown away): tokens naming it reach libjwt. */
static const char jwks[] = "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"ec-1\",\"crv\":\"P-256\","
                           "\"x\":\"nPFEQ-iatzl8nYr2N3NqArXrbYhW-EoTFQgpJI5_x5A\","
                           "\"y\":\"JIuX5jeIG7Rz-fbxNQCXWXXT5ddiNPL15snvL-yMb3w\"}]}";

static void quiet(void *ud, const char *line)
{
    (void)ud;
    (void)line;
}

static int write_temp(char *path, const char *text)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static struct serve_auth *load_once(void)
{
    static struct serve_auth *auth;
    if (auth)
        return auth;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE], users[512];
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    if (!crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof setting))
        abort();
    snprintf(users, sizeof users, "u:%s\n", crypt_rn("pw", setting, &data, sizeof data));
    char users_path[] = "/tmp/fuzz_serve_auth_users.XXXXXX";
    char jwks_path[] = "/tmp/fuzz_serve_auth_jwks.XXXXXX";
    if (write_temp(users_path, users) != 0 || write_temp(jwks_path, jwks) != 0)
        abort();
    struct serve_auth_config cfg = {.users_file = users_path,
                                    .jwks_file = jwks_path,
                                    .jwt_audience = "lcmcoord",
                                    .warn = quiet};
    char err[256];
    auth = serve_auth_load(&cfg, err, sizeof err);
    unlink(users_path);
    unlink(jwks_path);
    if (!auth) {
        fprintf(stderr, "fuzz_serve_auth: %s\n", err);
        abort();
    }
    return auth;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct serve_auth *auth = load_once();
    char *header = fuzz_string(data, size);
    if (!header)
        return 0;
    struct serve_identity id;
    serve_auth_check(auth, header, NULL, &id);
    serve_auth_check(auth, header, "nPFEQ-iatzl8nYr2N3NqArXrbYhW-EoTFQgpJI5_x5A", &id);
    free(header);
    return 0;
}
