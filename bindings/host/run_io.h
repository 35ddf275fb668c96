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

/* Reads all of `in` (at most `cap` bytes, through its descriptor: nothing may have been
 * read from it with stdio) into a NUL-terminated malloc'd buffer, wiping every
 * intermediate copy. Returns NULL with errno set on failure (EFBIG when over the cap). Free
 * the buffer with lcmc_free_wiped when it may hold secrets. */
char *lcmc_read_all(FILE *in, size_t cap, size_t *length);

/* 0 when a file can be created at `path` (its directory exists and is writable, and `path`
 * is not a directory); -1 with errno set otherwise. */
int lcmc_check_writable(const char *path);

/* Replaces `path` with `text` plus a newline, atomically. 0, or -1 with errno set. */
int lcmc_write_atomic(const char *path, const char *text);

/* Overwrites `length` bytes of `buffer` (OPENSSL_cleanse, which the compiler cannot drop)
 * and frees it. NULL is fine. */
void lcmc_free_wiped(char *buffer, size_t length);

#endif
