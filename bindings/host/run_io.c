/*
 * File handling of `lcmcoord run` (see run_io.h): bounded stdin reading and the atomic
 * record write, so that a VNFM reading the record never sees half of one.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run_io.h"

char *lcmc_read_all(FILE *in, size_t cap, size_t *length)
{
    size_t size = 0;
    size_t capacity = 4096;
    char *buffer = malloc(capacity + 1);
    if (buffer == NULL)
        return NULL;
    for (;;) {
        if (size == capacity) {
            if (capacity >= cap) {
                free(buffer);
                errno = EFBIG;
                return NULL;
            }
            capacity = capacity * 2 < cap ? capacity * 2 : cap;
            char *grown = realloc(buffer, capacity + 1);
            if (grown == NULL) {
                free(buffer);
                return NULL;
            }
            buffer = grown;
        }
        size_t n = fread(buffer + size, 1, capacity - size, in);
        size += n;
        if (n == 0) {
            if (ferror(in)) {
                int saved = errno != 0 ? errno : EIO;
                free(buffer);
                errno = saved;
                return NULL;
            }
            break;
        }
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
