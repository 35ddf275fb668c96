/*
 * The line editor of `lcmcoord repl`, loaded when the REPL starts and never before. The
 * editor (repl_edit.c, libedit through its readline API) is built as a module of its own,
 * lcmcoord-edit.so, next to lcmcoord-em (LCMCOORD_EM_FROM_BIN: libexec/lcmcoord/, the same
 * relative way in the build tree and in an install moved anywhere). `lcmcoord run`, the
 * program a VNFM starts for every coordination, then maps neither libedit nor what it
 * brings (libtinfo, libbsd, libmd): 364 KiB of its peak RSS (docs/benchmarks.md). The
 * functions below are the editor's interface (repl.h); the first call loads the module and
 * each forwards to its function of the same name. A module that cannot be loaded ends the
 * REPL with one line naming it and the loader's reason.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repl.h"
#include "host.h"

#ifndef LCMCOORD_EM_FROM_BIN
#define LCMCOORD_EM_FROM_BIN "../libexec/lcmcoord"
#endif
#define EDIT_MODULE "lcmcoord-edit.so"

static struct {
    void (*open)(lcmc_repl *repl);
    void (*close)(void);
    char *(*read)(lcmc_repl *repl, const char *prompt, int *interrupted);
    int (*take_interrupt)(void);
    void (*remember)(lcmc_repl *repl, const char *chunk);
    int (*is_secret)(const char *line);
} editor;

/* <directory of the running program>/LCMCOORD_EM_FROM_BIN/lcmcoord-edit.so (malloc'd), or
 * NULL. /proc/self/exe is canonical, so each leading "../" is one directory up. */
static char *module_path(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    const char *relative = LCMCOORD_EM_FROM_BIN;
    while (strncmp(relative, "../", 3) == 0 && (slash = strrchr(self, '/')) != NULL) {
        *slash = '\0';
        relative += 3;
    }
    size_t size = strlen(self) + strlen(relative) + sizeof "//" EDIT_MODULE;
    char *path = malloc(size);
    if (path != NULL)
        snprintf(path, size, "%s/%s/%s", self, relative, EDIT_MODULE);
    return path;
}

static void *symbol(void *module, const char *name, const char *path)
{
    void *found = dlsym(module, name);
    if (found == NULL) {
        fprintf(stderr, "lcmcoord repl: the line editor %s has no %s\n", path, name);
        exit(LCMC_EXIT_REFUSED);
    }
    return found;
}

static void load(void)
{
    if (editor.open != NULL)
        return;
    char *path = module_path();
    if (path == NULL) {
        fprintf(stderr, "lcmcoord repl: cannot find the line editor %s: %s\n", EDIT_MODULE,
                strerror(errno ? errno : ENOENT));
        exit(LCMC_EXIT_REFUSED);
    }
    void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        const char *why = dlerror();
        fprintf(stderr, "lcmcoord repl: cannot load the line editor: %s\n",
                why != NULL ? why : path);
        exit(LCMC_EXIT_REFUSED);
    }
    /* POSIX's way from dlsym's object pointer to a function pointer: copy the bytes. */
    void *p;
#define BIND(field, name)                                                                          \
    p = symbol(module, name, path);                                                                \
    memcpy(&editor.field, &p, sizeof p)
    BIND(close, "lcmc_edit_close");
    BIND(read, "lcmc_edit_read");
    BIND(take_interrupt, "lcmc_edit_take_interrupt");
    BIND(remember, "lcmc_edit_remember");
    BIND(is_secret, "lcmc_edit_is_secret");
    BIND(open, "lcmc_edit_open"); /* last: it marks the editor loaded */
#undef BIND
    free(path);
}

void lcmc_edit_open(lcmc_repl *repl)
{
    load();
    editor.open(repl);
}

void lcmc_edit_close(void)
{
    load();
    editor.close();
}

char *lcmc_edit_read(lcmc_repl *repl, const char *prompt, int *interrupted)
{
    load();
    return editor.read(repl, prompt, interrupted);
}

int lcmc_edit_take_interrupt(void)
{
    load();
    return editor.take_interrupt();
}

void lcmc_edit_remember(lcmc_repl *repl, const char *chunk)
{
    load();
    editor.remember(repl, chunk);
}

int lcmc_edit_is_secret(const char *line)
{
    load();
    return editor.is_secret(line);
}
