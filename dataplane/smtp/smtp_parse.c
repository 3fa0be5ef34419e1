/*
 * smtp_parse.c - RFC 5321/6531/3461/4954 syntax helpers (see smtp_parse.h).
 *
 * Pure functions: callable from any thread, no allocation, and every read
 * is bounded by the length argument (inputs are not NUL-terminated).
 */
#include "smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>

static inline bool is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext */
static inline bool is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

bool
smtp_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x |= 0x20;
		if (y >= 'A' && y <= 'Z')
			y |= 0x20;
		if (x != y)
			return false;
	}
	return true;
}

bool
smtp_parse_u64(const char *p, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)p[i]))
			return false;
		unsigned d = (unsigned)(p[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

bool
smtp_valid_utf8(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1; cp = c & 0x1f; min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2; cp = c & 0x0f; min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* sub-domain = Let-dig [Ldh-str]; octets >= 0x80 count as letters (U-label,
 * whose UTF-8 validity is checked separately). */
bool
smtp_valid_domain(const char *p, size_t n, bool utf8)
{
	size_t lab = 0;
	unsigned char prev = '.';

	if (n == 0 || n > SMTP_MAX_DOMAIN)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (lab == 0 || prev == '-')
				return false;
			lab = 0;
		} else if (c == '-') {
			if (lab == 0)
				return false;
			lab++;
		} else if (is_alpha(c) || is_digit(c) || (utf8 && c >= 0x80)) {
			lab++;
		} else {
			return false;
		}
		if (lab > 63)
			return false;
		prev = c;
	}
	if (prev == '.' || prev == '-')
		return false;
	if (utf8 && !smtp_valid_utf8((const uint8_t *)p, n))
		return false;
	return true;
}

/* Snum 3("." Snum), Snum = 1*3DIGIT representing 0-255 */
static bool
valid_ipv4(const char *p, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t d = 0;
		unsigned v = 0;
		if (part > 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		while (i < n && is_digit((unsigned char)p[i]) && d < 4) {
			v = v * 10 + (unsigned)(p[i] - '0');
			i++;
			d++;
		}
		if (d == 0 || d > 3 || v > 255)
			return false;
	}
	return i == n;
}

bool
smtp_valid_addr_literal(const char *p, size_t n)
{
	char buf[64];

	if (n < 3 || p[0] != '[' || p[n - 1] != ']')
		return false;
	p++;
	n -= 2;
	if (n > 0 && is_digit((unsigned char)p[0]))
		return valid_ipv4(p, n);
	if (n > 5 && smtp_ieq(p, "IPv6:", 5)) {
		if (n - 5 >= sizeof(buf))
			return false;
		memcpy(buf, p + 5, n - 5);
		buf[n - 5] = 0;
		unsigned char a6[16];
		return inet_pton(AF_INET6, buf, a6) == 1;
	}
	/* General-address-literal = Standardized-tag ":" 1*dcontent */
	size_t i = 0;
	while (i < n && (is_alpha((unsigned char)p[i]) ||
			 is_digit((unsigned char)p[i]) || p[i] == '-'))
		i++;
	if (i == 0 || i >= n || p[i] != ':' || p[i - 1] == '-' || i + 1 == n)
		return false;
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!((c >= 33 && c <= 90) || (c >= 94 && c <= 126)))
			return false;
	}
	return true;
}

bool
smtp_valid_xtext(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '+') {
			if (n - i < 3)
				return false;
			for (int j = 1; j <= 2; j++) {
				unsigned char h = (unsigned char)p[i + (size_t)j];
				if (!is_digit(h) && !(h >= 'A' && h <= 'F'))
					return false;
			}
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

bool
smtp_valid_base64(const char *p, size_t n)
{
	size_t pad = 0;

	if (n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '=') {
			pad++;
			if (i + 2 < n || pad > 2)
				return false;
		} else if (pad || !(is_alpha(c) || is_digit(c) || c == '+' ||
				    c == '/')) {
			return false;
		}
	}
	return true;
}

/* Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2, RFC 6531 3.3) */
static int
parse_local(const char *p, size_t n, size_t *used)
{
	size_t i = 0;

	if (n == 0)
		return SMTP_PATH_ESYNTAX;
	if (p[0] == '"') {
		for (i = 1; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c == '"') {
				*used = i + 1;
				return SMTP_PATH_OK;
			}
			if (c == '\\') {
				if (i + 1 >= n)
					return SMTP_PATH_ESYNTAX;
				unsigned char q = (unsigned char)p[i + 1];
				if (q < 32 || q > 126)
					return SMTP_PATH_ESYNTAX;
				i++;
			} else if (!((c >= 32 && c <= 126) || c >= 0x80)) {
				return SMTP_PATH_ESYNTAX;
			}
		}
		return SMTP_PATH_ESYNTAX;
	}
	bool need = true; /* an atom character must come next */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (need)
				return SMTP_PATH_ESYNTAX;
			need = true;
		} else if (is_atext(c) || c >= 0x80) {
			need = false;
		} else {
			break;
		}
	}
	if (need)
		return SMTP_PATH_ESYNTAX;
	*used = i;
	return SMTP_PATH_OK;
}

/* Domain or address literal at p, ending at one of the stop octets. */
static size_t
domain_span(const char *p, size_t n)
{
	size_t i = 0;

	if (n > 0 && p[0] == '[') {
		while (i < n && p[i] != ']')
			i++;
		return i < n ? i + 1 : 0;
	}
	while (i < n && p[i] != '>' && p[i] != ',' && p[i] != ':' &&
	       p[i] != ' ')
		i++;
	return i;
}

/* Mailbox (RFC 5321 4.1.2) at p[0..n): Local-part "@" ( Domain /
 * address-literal ), or with SMTP_PATH_FORWARD a bare "postmaster"
 * followed by the end or '>'. *used gets the octets taken; the domain
 * ends at the first '>', ',', ':' or ' ' (or its literal's ']'). UTF-8
 * validity is checked by the caller over the whole address. */
static int
parse_mailbox(const char *p, size_t n, unsigned flags, size_t *used,
	      bool *postmaster)
{
	size_t i, lused, d;

	*postmaster = false;
	if (parse_local(p, n, &lused) != SMTP_PATH_OK)
		return SMTP_PATH_ESYNTAX;
	if (lused > SMTP_MAX_LOCAL)
		return SMTP_PATH_ETOOLONG;
	i = lused;
	if ((flags & SMTP_PATH_FORWARD) && lused == 10 &&
	    smtp_ieq(p, "postmaster", 10) && (i == n || p[i] == '>')) {
		*postmaster = true;
		*used = i;
		return SMTP_PATH_OK;
	}
	if (i >= n || p[i] != '@')
		return SMTP_PATH_ESYNTAX;
	i++;
	d = domain_span(p + i, n - i);
	if (d == 0)
		return SMTP_PATH_ESYNTAX;
	if (d > SMTP_MAX_DOMAIN)
		return SMTP_PATH_ETOOLONG;
	if (p[i] == '[' ? !smtp_valid_addr_literal(p + i, d)
			: !smtp_valid_domain(p + i, d, true))
		return SMTP_PATH_ESYNTAX;
	*used = i + d;
	return SMTP_PATH_OK;
}

static bool
has_8bit(const char *p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)p[k] >= 0x80)
			return true;
	return false;
}

bool
smtp_valid_mailbox(const char *p, size_t n, unsigned flags)
{
	size_t used;
	bool pm;

	if (n == 0)
		return (flags & SMTP_PATH_REVERSE) != 0;
	/* RFC 5321 4.5.3.1.3: the path, "<" and ">" included, is at most
	 * 256 octets */
	if (n > SMTP_MAX_PATH - 2)
		return false;
	if (parse_mailbox(p, n, flags, &used, &pm) != SMTP_PATH_OK ||
	    used != n)
		return false;
	return !has_8bit(p, n) || smtp_valid_utf8((const uint8_t *)p, n);
}

int
smtp_parse_path(const char *p, size_t n, unsigned flags, size_t *used,
		struct smtp_path *out)
{
	size_t i = 1, mused, d, mb, alen;
	bool pm;
	int rc;

	out->addr[0] = 0;
	out->len = 0;
	out->null = out->postmaster = out->utf8 = false;
	if (n < 2 || p[0] != '<')
		return SMTP_PATH_ESYNTAX;
	if (p[1] == '>') {
		if (!(flags & SMTP_PATH_REVERSE))
			return SMTP_PATH_ESYNTAX;
		out->null = true;
		*used = 2;
		return SMTP_PATH_OK;
	}
	/* A-d-l ":" : source route, checked then ignored (RFC 5321 4.1.2) */
	if (p[i] == '@') {
		for (;;) {
			i++; /* '@' */
			d = domain_span(p + i, n - i);
			if (d == 0 || !smtp_valid_domain(p + i, d, true))
				return SMTP_PATH_ESYNTAX;
			i += d;
			if (i < n && p[i] == ',') {
				i++;
				if (i >= n || p[i] != '@')
					return SMTP_PATH_ESYNTAX;
				continue;
			}
			if (i < n && p[i] == ':') {
				i++;
				break;
			}
			return SMTP_PATH_ESYNTAX;
		}
	}
	mb = i;
	/* a bare <postmaster> only without a source route */
	rc = parse_mailbox(p + mb, n - mb,
			   mb == 1 ? flags : flags & ~SMTP_PATH_FORWARD,
			   &mused, &pm);
	if (rc != SMTP_PATH_OK)
		return rc;
	i = mb + mused;
	if (i >= n || p[i] != '>')
		return SMTP_PATH_ESYNTAX;
	i++;
	if (pm) {
		memcpy(out->addr, p + mb, 10);
		out->addr[10] = 0;
		out->len = 10;
		out->postmaster = true;
		*used = i;
		return SMTP_PATH_OK;
	}
	if (i > SMTP_MAX_PATH)
		return SMTP_PATH_ETOOLONG;
	alen = mused;
	memcpy(out->addr, p + mb, alen);
	out->addr[alen] = 0;
	out->len = (uint16_t)alen;
	out->utf8 = has_8bit(out->addr, alen);
	if (out->utf8 && !smtp_valid_utf8((const uint8_t *)out->addr, alen))
		return SMTP_PATH_ESYNTAX;
	*used = i;
	return SMTP_PATH_OK;
}
