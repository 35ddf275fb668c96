/*
 * `lcmcoord em` and `lcmcoord serve`: the EM simulator and the EM server are programs of their
 * own, lcmcoord-em and lcmcoord-serve, so that the `lcmcoord` a VNFM runs links no server
 * library (libmicrohttpd, GnuTLS, SQLite, libpq). This subcommand replaces the
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

/* <directory of the running program>/LCMCOORD_EM_FROM_BIN/<program> (malloc'd), or NULL
 * with errno set. */
static char *program_path(const char *program)
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
    size_t size = strlen(self) + strlen(relative) + strlen(program) + sizeof "//";
    char *path = malloc(size);
    if (path != NULL)
        snprintf(path, size, "%s/%s/%s", self, relative, program);
    free(self);
    return path;
}

/* Replaces this process with `program`; returns only on failure. */
static int exec_program(char **argv, const char *program, const char *subcommand, const char *what)
{
    char *path = program_path(program);
    if (path == NULL) {
        fprintf(stderr,
                "lcmcoord %s: cannot find the lcmcoord program's own directory "
                "(/proc/self/exe): %s\n",
                subcommand, strerror(errno));
        return EXIT_NOT_FOUND;
    }
    /* argv is main's, from the subcommand on: its own argv[0] becomes the program's path. */
    argv[0] = path;
    execv(path, argv);
    int saved = errno;
    fprintf(stderr, "lcmcoord %s: cannot run the %s %s: %s\n", subcommand, what, path,
            strerror(saved));
    free(path);
    return saved == ENOENT || saved == ENOTDIR ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
}

int lcmc_em_exec(int argc, char **argv)
{
    (void)argc;
    return exec_program(argv, "lcmcoord-em", "em", "EM simulator");
}

int lcmc_serve_exec(int argc, char **argv)
{
    (void)argc;
    return exec_program(argv, "lcmcoord-serve", "serve", "EM server");
}
