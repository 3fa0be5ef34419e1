/*
 * base64.h - strict base64 (RFC 4648 section 4) for SASL (RFC 4954 4):
 * the alphabet only, length a multiple of 4, '=' padding only at the
 * end, and the unused bits of the last group zero, so that every
 * decoded string has exactly one encoding. Pure functions: any thread,
 * no allocation.
 */
#ifndef MXG_AUTH_BASE64_H
#define MXG_AUTH_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decodes n characters of in into out (cap octets; out may be NULL to
 * validate only). Returns the decoded length, -EINVAL when in is not
 * strict base64, -ENOSPC when out is too small. */
ssize_t auth_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

/* Encodes n octets into out (cap includes the terminating NUL). Returns
 * the length written without the NUL, or -ENOSPC. */
ssize_t auth_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Characters needed to encode n octets, without the NUL. */
static inline size_t auth_b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

#endif /* MXG_AUTH_BASE64_H */
