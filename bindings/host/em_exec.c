/*
 * `lcmcoord em`: the EM simulator is its own program, lcmcoord-em, so that the `lcmcoord` a
 * VNFM runs links no server library (libmicrohttpd, GnuTLS). This subcommand replaces the
 * process with that program (execv), with the same arguments: the exit status, the output
 * and the signals (a test's SIGTERM, an operator's Ctrl-C) are the simulator's own, as when
 * it was built in. The program is looked for at a fixed place relative to this one
 * (LCMCOORD_EM_FROM_BIN, set by the build: libexec/lcmcoord/ next to bin/), the same in the
 * build tree and in an install moved anywhere; no PATH search, so which simulator runs never
 * depends on the environment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subcommands.h"

#ifndef LCMCOORD_EM_FROM_BIN
#define LCMCOORD_EM_FROM_BIN "../libexec/lcmcoord"
#endif
#define EM_PROGRAM "lcmcoord-em"

/* Exit statuses when the program cannot be run at all, as shells give them. */
#define EXIT_NOT_FOUND      127
#define EXIT_NOT_EXECUTABLE 126

/* The absolute path of the running program (malloc'd), or NULL with errno set. */
static char *own_path(void)
{
    for (size_t size = 256; size <= 65536; size *= 2) {
        char *path = malloc(size);
        if (path == NULL)
            return NULL;
        ssize_t n = readlink("/proc/self/exe", path, size);
        if (n < 0) {
            free(path);
            return NULL;
        }
        if ((size_t)n < size) {
            path[n] = '\0';
            return path;
        }
        free(path);
    }
    errno = ENAMETOOLONG;
    return NULL;
}

/* <directory of the running program>/LCMCOORD_EM_FROM_BIN/lcmcoord-em (malloc'd), or NULL
 * with errno set. */
static char *em_program_path(void)
{
    char *self = own_path();
    if (self == NULL)
        return NULL;
    char *slash = strrchr(self, '/');
    if (slash == NULL) { /* the kernel gives absolute paths; never the case */
        free(self);
        errno = ENOENT;
        return NULL;
    }
    *slash = '\0';
    /* Each leading "../" goes up one directory here, so that an error names a plain path
     * (/usr/libexec/lcmcoord/lcmcoord-em); /proc/self/exe is canonical, without "." or "..". */
    const char *relative = LCMCOORD_EM_FROM_BIN;
    while (strncmp(relative, "../", 3) == 0 && (slash = strrchr(self, '/')) != NULL) {
        *slash = '\0';
        relative += 3;
    }
    size_t size = strlen(self) + strlen(relative) + sizeof "//" EM_PROGRAM;
    char *path = malloc(size);
    if (path != NULL)
        snprintf(path, size, "%s/%s/%s", self, relative, EM_PROGRAM);
    free(self);
    return path;
}

int lcmc_em_exec(int argc, char **argv)
{
    (void)argc;
    char *path = em_program_path();
    if (path == NULL) {
        fprintf(stderr,
                "lcmcoord em: cannot find the lcmcoord program's own directory "
                "(/proc/self/exe): %s\n",
                strerror(errno));
        return EXIT_NOT_FOUND;
    }
    /* argv is main's, from "em" on: its own argv[0] becomes the program's path. */
    argv[0] = path;
    execv(path, argv);
    int saved = errno;
    fprintf(stderr, "lcmcoord em: cannot run the EM simulator %s: %s\n", path, strerror(saved));
    free(path);
    return saved == ENOENT || saved == ENOTDIR ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
}
