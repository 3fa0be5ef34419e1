/*
 * base64.c - strict base64 for SASL exchanges (see base64.h). Hostile
 * input: every character is checked, nothing is read past n.
 */
#include <errno.h>

#include "auth/base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t auth_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (n % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;

		for (int k = 0; k < 4; k++) {
			char c = in[i + (size_t)k];

			if (c == '=') {
				/* Padding: only in the last group, only in
				 * its last two places, and then to the end. */
				if (i + 4 != n || k < 2)
					return -EINVAL;
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad)
				return -EINVAL; /* data after '=' */
			v[k] = val(c);
			if (v[k] < 0)
				return -EINVAL;
		}
		/* Non-zero bits the padding would drop: a second encoding
		 * of the same octets; refused. */
		if (pad == 2 && (v[1] & 0x0f))
			return -EINVAL;
		if (pad == 1 && (v[2] & 0x03))
			return -EINVAL;
		uint8_t b[3] = {
			(uint8_t)(v[0] << 2 | v[1] >> 4),
			(uint8_t)((v[1] & 0x0f) << 4 | v[2] >> 2),
			(uint8_t)((v[2] & 0x03) << 6 | v[3]),
		};
		size_t nb = 3 - pad;

		if (out) {
			if (o + nb > cap)
				return -ENOSPC;
			for (size_t k = 0; k < nb; k++)
				out[o + k] = b[k];
		}
		o += nb;
	}
	return (ssize_t)o;
}

ssize_t auth_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t need = auth_b64_len(n);
	size_t o = 0;

	if (need + 1 > cap)
		return -ENOSPC;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			w |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			w |= in[i + 2];
		out[o++] = alphabet[(w >> 18) & 63];
		out[o++] = alphabet[(w >> 12) & 63];
		out[o++] = i + 1 < n ? alphabet[(w >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[w & 63] : '=';
	}
	out[o] = 0;
	return (ssize_t)o;
}
