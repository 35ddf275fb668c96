/*
 * The pure pieces of the SSH client (ssh.c) that the unit tests reach directly: reading a
 * pinned host key fingerprint in the forms operators paste, writing one the way ssh-keygen
 * does, comparing them, and keeping a capped copy of a command's output.
 */
#ifndef LCMCOORD_SSH_INTERNAL_H
#define LCMCOORD_SSH_INTERNAL_H

#include <stddef.h>

#include "internal.h"

#define LCMC_SSH_SHA256_LENGTH 32
/* "SHA256:" + 43 base64 characters (no padding, as ssh-keygen prints them) + NUL. */
#define LCMC_SSH_FINGERPRINT_SIZE 51

/* Reads a SHA-256 fingerprint: "SHA256:<base64>" (prefix in any case) or the base64 alone,
 * with or without its "=" padding, surrounding blanks ignored. Returns 0 and fills digest,
 * or -1 when the text is not exactly 32 bytes of canonical base64. */
LCMC_INTERNAL int lcmc__ssh_parse_sha256(const char *text,
                                         unsigned char digest[LCMC_SSH_SHA256_LENGTH]);
/* Writes "SHA256:<base64 without padding>". */
LCMC_INTERNAL void lcmc__ssh_format_sha256(const unsigned char digest[LCMC_SSH_SHA256_LENGTH],
                                           char out[LCMC_SSH_FINGERPRINT_SIZE]);
/* 1 when two digests are equal (in constant time: cheap, and one less thing to reason
 * about). */
LCMC_INTERNAL int lcmc__ssh_digest_equal(const unsigned char a[LCMC_SSH_SHA256_LENGTH],
                                         const unsigned char b[LCMC_SSH_SHA256_LENGTH]);
/* Appends what fits under buf->cap (which must be set) and drops the rest, setting
 * *truncated when anything was dropped. Returns -1 only when memory runs out. */
LCMC_INTERNAL int lcmc__ssh_capture(lcmc_buffer *buf, int *truncated, const void *data,
                                    size_t length);

#endif
