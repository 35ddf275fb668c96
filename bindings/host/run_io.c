/*
 * File handling of `lcmcoord run` (see run_io.h): bounded stdin reading that leaves no
 * unwiped copy behind (the VNFC parameters hold passwords), and the atomic record write, so
 * that a VNFM reading the record never sees half of one.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "run_io.h"

void lcmc_free_wiped(char *buffer, size_t length)
{
    if (buffer == NULL)
        return;
    OPENSSL_cleanse(buffer, length);
    free(buffer);
}

char *lcmc_read_all(FILE *in, size_t cap, size_t *length)
{
    /* read(2) on the descriptor, not fread: stdio would keep its own copy of the text (a
     * password, often) in a buffer it frees without wiping. */
    int fd = fileno(in);
    size_t size = 0;
    size_t capacity = 4096;
    char *buffer = malloc(capacity + 1);
    if (buffer == NULL)
        return NULL;
    for (;;) {
        if (size == capacity) {
            if (capacity >= cap) {
                lcmc_free_wiped(buffer, size);
                errno = EFBIG;
                return NULL;
            }
            /* Not realloc: it would leave the old block's copy behind, unwiped. */
            size_t grown_capacity = capacity * 2 < cap ? capacity * 2 : cap;
            char *grown = malloc(grown_capacity + 1);
            if (grown == NULL) {
                lcmc_free_wiped(buffer, size);
                errno = ENOMEM;
                return NULL;
            }
            memcpy(grown, buffer, size);
            lcmc_free_wiped(buffer, size);
            buffer = grown;
            capacity = grown_capacity;
        }
        ssize_t n = read(fd, buffer + size, capacity - size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            lcmc_free_wiped(buffer, size);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        size += (size_t)n;
    }
    buffer[size] = '\0';
    *length = size;
    return buffer;
}

/* The directory part of path, malloc'd (dirname may modify its argument). */
static char *directory_of(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return NULL;
    char *dir = strdup(dirname(copy));
    free(copy);
    return dir;
}

int lcmc_check_writable(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    char *dir = directory_of(path);
    if (dir == NULL)
        return -1;
    int rc = access(dir, W_OK | X_OK);
    int saved = errno;
    free(dir);
    errno = saved;
    return rc;
}

int lcmc_write_atomic(const char *path, const char *text)
{
    size_t tmp_len = strlen(path) + sizeof ".XXXXXX";
    char *tmp = malloc(tmp_len);
    if (tmp == NULL)
        return -1;
    snprintf(tmp, tmp_len, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int saved = errno;
        free(tmp);
        errno = saved;
        return -1;
    }
    /* mkstemp makes the file 0600; a record holds no secret and the VNFM may read it as
     * another user, so give it the permissions a plain create would. */
    mode_t mask = umask(0);
    umask(mask);
    int rc = fchmod(fd, 0666 & ~mask);
    FILE *out = rc == 0 ? fdopen(fd, "w") : NULL;
    if (out == NULL) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        errno = saved;
        return -1;
    }
    rc = fputs(text, out) < 0 || fputc('\n', out) == EOF || fflush(out) != 0 ||
                 fsync(fileno(out)) != 0
             ? -1
             : 0;
    int saved = errno;
    if (fclose(out) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    errno = saved;
    return rc;
}
