/*
 * The file handling of `lcmcoord run`, kept apart from its Lua wiring: reading the VNFC
 * parameters from stdin with a size cap, and writing the record file atomically (a temporary
 * file in the same directory, then rename), with a check before the script runs that the
 * record can be written at all.
 */
#ifndef LCMCOORD_HOST_RUN_IO_H
#define LCMCOORD_HOST_RUN_IO_H

#include <stddef.h>
#include <stdio.h>

/* Reads all of `in` (at most `cap` bytes) into a NUL-terminated malloc'd buffer. Returns
 * NULL with errno set on failure (EFBIG when over the cap). */
char *lcmc_read_all(FILE *in, size_t cap, size_t *length);

/* 0 when a file can be created at `path` (its directory exists and is writable, and `path`
 * is not a directory); -1 with errno set otherwise. */
int lcmc_check_writable(const char *path);

/* Replaces `path` with `text` plus a newline, atomically. 0, or -1 with errno set. */
int lcmc_write_atomic(const char *path, const char *text);

#endif
